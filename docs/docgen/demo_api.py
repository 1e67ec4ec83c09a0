"""The demo's JSON API, read from its routes: the page must name every one of them."""

from __future__ import annotations

import inspect
import re
from types import SimpleNamespace
from typing import Any


def routes() -> list[tuple[str, str, str]]:
    """Return ``(method, path, summary)`` for every route of the demo's JSON API, debug included."""
    from sessionward.demo.api import JsonApi

    context: Any = SimpleNamespace(settings=SimpleNamespace(debug=True))
    found: list[tuple[str, str, str]] = []
    for route in JsonApi(context).routes():
        methods = sorted(set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"})
        summary = (inspect.getdoc(route.endpoint) or "").split("\n", 1)[0]
        # "``GET /api/x``: what it does" -> "what it does"
        summary = re.sub(r"^``[^`]+``:\s*", "", summary).replace("``", "`")
        found.extend((method, route.path, summary) for method in methods)
    return found


def render_routes() -> str:
    """Return the table of routes with each handler's summary."""
    out = ["| method | path | what it does |", "|---|---|---|"]
    out.extend(f"| `{method}` | `{path}` | {summary} |" for method, path, summary in routes())
    return "\n".join(out) + "\n"


def undocumented_routes(markdown: str) -> list[str]:
    """Return an error for each route whose ``METHOD /path`` the hand-written page does not name."""
    text = markdown.split("<!-- generated -->", 1)[0]
    return [
        f"the demo route {method} {path} is not described on this page"
        for method, path, _ in routes()
        if f"{method} {path}" not in text
    ]
