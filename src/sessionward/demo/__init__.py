"""The sessionward demo: every defence of the library, visible in a browser.

``create_app`` builds the Starlette application (for tests and embedding); ``serve``
runs it under uvicorn (``sessionward demo``, ``python -m sessionward.demo``).
"""

from sessionward.core.extras import needs_extra

with needs_extra("demo", "the demo"):
    from sessionward.demo.app import create_app
    from sessionward.demo.server import serve

__all__ = ["create_app", "serve"]
