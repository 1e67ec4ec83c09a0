"""PostgreSQL and MariaDB fixtures: a private database per test run."""
