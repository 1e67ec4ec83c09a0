"""The store conformance suite and per-backend store tests."""
