"""Tests for Arcade Pay."""
