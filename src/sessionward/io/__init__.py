"""The async I/O layer: one request's exchange with the store, and the manager around it.

Built on :mod:`sessionward.core`; the generated :mod:`sessionward._sync` package is its
blocking twin. Framework adapters (``asgi``, ``wsgi``, ``flask``…) build on this layer.
"""
