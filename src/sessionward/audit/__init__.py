"""``sessionward audit URL``: checks any live site against the session-security checklist.

A tool of its own: it shares only :mod:`sessionward.core.errors` with the library and
speaks HTTP through httpx (the ``audit`` extra).
"""
