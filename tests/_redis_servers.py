"""Private redis-server processes (standalone and cluster) for the test session."""
