"""MkDocs hooks: the generated parts of the documentation, and the checks that keep it true.

A page asks for generated content with a directive on a line of its own::

    <!-- docgen: settings -->

and the hook replaces it at build time with what the code says today (see
:data:`DIRECTIVES`). Anything that cannot be generated, or that the code contradicts
(a setting without a description, an ASVS row citing a test that does not exist, a
diagram never rendered, a demo route the page does not name), is logged as a warning,
which fails the build in strict mode (``mkdocs build --strict``, as the test suite runs it).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
if str(DOCS) not in sys.path:
    sys.path.insert(0, str(DOCS))

from docgen import asvs, cli, demo_api, diagrams, schema, settings, telemetry  # noqa: E402

log = logging.getLogger("mkdocs.plugins.sessionward")

DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)<!-- docgen: (?P<name>[a-z0-9-]+)(?: (?P<argument>[a-z0-9_-]+))? -->[ \t]*$", re.MULTILINE
)


def _settings(argument: str | None, errors: list[str]) -> str:
    return settings.render(errors)


DIRECTIVES: dict[str, Callable[[str | None, list[str]], str]] = {
    "settings": _settings,
    "variables": lambda argument, errors: settings.render_variables(),
    "presets": lambda argument, errors: settings.render_presets(),
    "cli": lambda argument, errors: cli.render(),
    "events": lambda argument, errors: telemetry.render_events(),
    "end-reasons": lambda argument, errors: telemetry.render_end_reasons(),
    "metrics": lambda argument, errors: telemetry.render_metrics(),
    "sql-schema": lambda argument, errors: schema.render(argument or "postgresql"),
    "asvs": lambda argument, errors: asvs.render(errors),
    "asvs-counts": lambda argument, errors: asvs.render_counts(errors),
    "demo-routes": lambda argument, errors: demo_api.render_routes(),
}
"""Directive name -> function(argument, errors) returning Markdown."""


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Expand the directives and diagrams of a page, and run its checks."""
    source_path: str = page.file.src_uri
    errors: list[str] = []

    def expand(match: re.Match[str]) -> str:
        name = match.group("name")
        generate = DIRECTIVES.get(name)
        if generate is None:
            errors.append(f"unknown directive 'docgen: {name}'")
            return ""
        try:
            generated = generate(match.group("argument"), errors)
        except Exception as error:
            errors.append(f"'docgen: {name}' failed: {type(error).__name__}: {error}")
            return ""
        indent = match.group("indent")
        # Inside a tab or an admonition the generated lines keep the directive's indentation.
        return "\n".join(indent + line if line else line for line in generated.splitlines())

    markdown = DIRECTIVE.sub(expand, markdown)
    markdown, missing = diagrams.substitute(markdown, source_path)
    for name in missing:
        errors.append(f"diagram {name} has not been rendered: run {diagrams.RENDER_COMMAND}")
    if source_path == "reference/demo-api.md":
        errors.extend(demo_api.undocumented_routes(markdown))
    for error in errors:
        log.warning("%s: %s", source_path, error)
    return markdown


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]+)</code>")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Show the docstrings' Sphinx cross-reference roles as plain code in the API pages."""
    if not page.file.src_uri.startswith("reference/"):
        return html

    def code(match: re.Match[str]) -> str:
        target = match.group(2)
        shown = target.rsplit(".", 1)[-1] if match.group(1) else target
        return f"<code>{shown}</code>"

    return _ROLE.sub(code, html)
