"""Arcade Pay's money path without Home Assistant.

The wire protocol, the ledger, delivery of credits and Stripe. Nothing here imports Home
Assistant (tests/core/test_layers.py enforces it), so that it can be tested and benchmarked on
its own, and the cabinet agent shares protocol.py.
"""
