"""A new user's first five minutes: extras named, every SQL scheme, missing schemas, read-only CLI (issue 13)."""
