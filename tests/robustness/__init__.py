"""Fuzzing and faults: hostile webhooks, a broker that stops, a ledger that fails, a strict broker ACL."""
