"""End-to-end harness: the whole system as real processes."""
