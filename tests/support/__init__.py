"""Helpers shared across the test suite.

- ``services``: PostgreSQL and MariaDB fixtures (a private database per run).
- ``redis_servers``: private ``redis-server`` processes and a local cluster.
- ``store_factories``: every store backend behind one fixture.
- ``interleave``: gates that pause a request between its read and its write.
- ``helpers``: small shared helpers (clocks, cookies, policies).
- ``control_characters``: hostile text for terminal- and log-injection tests.
"""
