"""Running the demo under uvicorn: ``sessionward demo`` and ``python -m sessionward.demo``.

Start-up problems end the process with one clear line and exit code 2 (bad settings) or
1 (the store cannot be reached), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence

from sessionward.cli_common import redact_url
from sessionward.demo.app import create_app
from sessionward.errors import ConfigError, StoreError
from sessionward.stores import open_store


def serve(host: str = "127.0.0.1", port: int = 8000, store_url: str | None = None, debug: bool = False) -> None:
    """Serve the demo until interrupted.

    Args:
        host: The address to listen on.
        port: The TCP port.
        store_url: The session store's URL; ``None`` reads ``SESSIONWARD_STORE`` or uses
            ``sqlite:///./.sessionward/sessions.db``.
        debug: Serve the development-only debug endpoint.
    """
    try:
        app = create_app(store_url, debug, audit_stream=sys.stderr)
    except ConfigError as error:
        print(f"sessionward demo: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:  # e.g. the SQLite file's folder cannot be created
        print(f"sessionward demo: cannot open the session store: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    url = app.state.demo.settings.store_url
    try:
        asyncio.run(_check_store(url))
    except (StoreError, OSError) as error:
        print(f"sessionward demo: the session store {redact_url(url)} is not usable: {error}", file=sys.stderr)
        raise SystemExit(1) from None

    import uvicorn

    # Everything built so far (modules, classes, the app) lives as long as the process:
    # taken out of the cyclic collector's sight, a full collection no longer walks its
    # ~60 000 objects while every request in flight waits (25-30 ms each time; it is
    # what set the p99 latency of writing requests). See benchmarks/README.md.
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        # The session middleware decides which proxies to believe (SESSIONWARD_TRUSTED_PROXIES);
        # uvicorn's own X-Forwarded-For handling would let any local client spoof its address.
        proxy_headers=False,
        server_header=False,
        log_level="debug" if debug else "info",
    )


async def _check_store(url: str) -> None:
    # Set the store up once before serving, so a bad URL or a down database is one line
    # of error here instead of a lifespan traceback inside uvicorn.
    store = open_store(url)
    try:
        await store.setup()
    finally:
        await store.close()


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sessionward.demo [--host H] [--port P] [--store URL] [--debug]``."""
    parser = argparse.ArgumentParser(prog="python -m sessionward.demo", description="Serve the sessionward demo.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--store", default=None, help="session store URL (default $SESSIONWARD_STORE or SQLite)")
    parser.add_argument("--debug", action="store_true", help="serve the development-only /api/session/debug")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0-65535)")
    print(f"sessionward demo on http://{_display_host(args.host)}:{args.port}/", file=sys.stderr)
    serve(args.host, args.port, args.store, args.debug)
