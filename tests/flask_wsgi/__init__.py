"""Flask and WSGI: the sync side (issue 7)."""
