"""Assembling the demo: settings, store, users, routes, middleware and the lifespan.

The store is set up explicitly when the application starts (``store.setup()``) and
closed when it stops; in between a background task purges expired sessions, so the
store's size follows the number of live sessions, not the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from sessionward.core.clock import Clock
from sessionward.core.errors import StoreError
from sessionward.core.events import EventBus, JsonAuditLogger
from sessionward.demo.api import JsonApi
from sessionward.demo.context import DemoContext, RecentEvents
from sessionward.demo.defences import middleware
from sessionward.demo.pages import Pages
from sessionward.demo.settings import load_settings
from sessionward.demo.users import UserDirectory
from sessionward.io.manager import SessionManager
from sessionward.stores import open_store

logger = logging.getLogger("sessionward.demo")

HERE = Path(__file__).parent
PURGE_BATCH = 500


def create_app(
    store_url: str | None = None,
    debug: bool = False,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    *,
    audit_stream: IO[str] | None = None,
) -> Starlette:
    """Build the demo application.

    Args:
        store_url: The session store's URL; ``None`` reads ``SESSIONWARD_STORE`` or uses
            the embedded SQLite default.
        debug: Development mode: serve ``GET /api/session/debug`` and show tracebacks.
        environ: The ``SESSIONWARD_*`` variables; the process environment when ``None``.
        clock: The session clock (a ManualClock in tests).
        audit_stream: Where to write the JSON-lines audit log, if anywhere.

    Raises:
        ConfigError: naming the variable or setting that is malformed.
    """
    settings = load_settings(environ, store_url=store_url, debug=debug)
    store = open_store(settings.store_url)
    events = EventBus(environ=environ)  # SESSIONWARD_APP_ID names the app in the audit log
    recent = RecentEvents()
    events.subscribe(recent)
    if audit_stream is not None:
        events.subscribe(JsonAuditLogger(audit_stream, app_id=events.app_id))
    manager = SessionManager(store, settings.policy, clock=clock, events=events)
    context = DemoContext(
        settings=settings,
        manager=manager,
        users=UserDirectory(settings.users),
        templates=Jinja2Templates(directory=HERE / "templates"),
        recent=recent,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.setup()
        purger = asyncio.create_task(purge_forever(manager, settings.purge_interval_s))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await store.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not_found" if status == 404 else "method_not_allowed"}, status_code=status)
        return PlainTextResponse("Not Found" if status == 404 else "Method Not Allowed", status_code=status)

    app = Starlette(
        debug=debug,
        routes=[
            *JsonApi(context).routes(),
            *Pages(context).routes(),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=middleware(manager),
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.state.demo = context
    return app


async def purge_once(manager: SessionManager, batch_size: int = PURGE_BATCH) -> int:
    """Remove every expired session and tombstone, batch by batch; return how many went."""
    total = 0
    while True:
        removed = await manager.call_store(lambda: manager.store.purge_expired(manager.clock(), batch_size))
        total += removed
        if removed < batch_size:
            return total


async def purge_forever(manager: SessionManager, interval_s: float) -> None:
    """Purge expired sessions every ``interval_s`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            removed = await purge_once(manager)
        except StoreError as error:
            # An outage is reported and retried next time; it must not stop the purger.
            logger.warning("purging expired sessions failed: %s", error)
            continue
        if removed:
            logger.info("purged %d expired session entries", removed)
