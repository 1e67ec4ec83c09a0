"""Mermaid diagrams that need no JavaScript: each fence is shown as its pre-rendered SVG.

The pages keep their diagrams as ```` ```mermaid ```` fences (GitHub renders those too).
At build time each fence is replaced by an image of ``docs/diagrams/<id>.svg``, where
``<id>`` is a hash of the fence's source, so the site needs no script from a CDN and reads
the same offline. A fence whose SVG is missing (a new or edited diagram) fails the build,
naming the command that renders it::

    .venv/bin/python docs/docgen/diagrams.py            # renders what is missing, deletes orphans

Rendering drives Chromium through Playwright with Mermaid's own JavaScript
(``--mermaid PATH`` to a ``mermaid.min.js``; by default ``npm pack mermaid@11`` fetches it
into a temporary folder). Only people who change a diagram need either.
"""

from __future__ import annotations

import argparse
import hashlib
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
DIAGRAMS = DOCS / "diagrams"
FENCE = re.compile(r"^```mermaid[ \t]*\n(?P<source>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
RENDER_COMMAND = ".venv/bin/python docs/docgen/diagrams.py"


def diagram_id(source: str) -> str:
    """Return the name of the SVG rendered from ``source``."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


def caption(source: str) -> str:
    """Return a diagram's description: its first ``%%`` comment line, if any."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("%%") and not stripped.startswith("%%{"):
            return stripped.lstrip("%").strip()
    return "Diagram"


def substitute(markdown: str, page_path: str) -> tuple[str, list[str]]:
    """Replace every mermaid fence of a page by its SVG; return the text and the missing IDs."""
    missing: list[str] = []
    page_dir = posixpath.dirname(page_path)

    def image(match: re.Match[str]) -> str:
        source = match.group("source")
        name = diagram_id(source)
        if not (DIAGRAMS / f"{name}.svg").is_file():
            missing.append(name)
        target = posixpath.relpath(f"diagrams/{name}.svg", page_dir or ".")
        text = caption(source)
        return f'<figure class="diagram" markdown>\n![{text}]({target})\n<figcaption>{text}</figcaption>\n</figure>'

    return FENCE.sub(image, markdown), missing


def intrinsic_size(svg: str) -> str:
    """Give the SVG the width and height of its view box.

    Mermaid writes ``width="100%"`` for inline SVG; shown through ``<img>``, such an SVG
    has no size of its own and browsers draw it at an arbitrary small one.
    """
    box = re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', svg)
    if box is None:
        return svg
    width, height = (round(float(value)) for value in box.groups())
    head, rest = svg.split(">", 1)
    head = re.sub(r'\swidth="[^"]*"', "", head)
    head = re.sub(r'\sstyle="max-width:[^"]*"', "", head)
    return f'{head} width="{width}" height="{height}">{rest}'


def sources() -> dict[str, str]:
    """Return every diagram's source in the docs, by ID."""
    found: dict[str, str] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            found[diagram_id(match.group("source"))] = match.group("source")
    return found


def _mermaid_js(given: str | None, scratch: Path) -> Path:
    if given:
        return Path(given)
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to fetch mermaid (or pass --mermaid PATH/TO/mermaid.min.js)")
    subprocess.run([npm, "pack", "mermaid@11", "--silent"], cwd=scratch, check=True)  # noqa: S603
    archive = next(scratch.glob("mermaid-*.tgz"))
    shutil.unpack_archive(archive, scratch)
    return scratch / "package" / "dist" / "mermaid.min.js"


def render_missing(mermaid_js: str | None = None) -> None:
    """Render the SVG of every diagram that has none, and delete SVGs no page uses."""
    from playwright.sync_api import sync_playwright

    wanted = sources()
    DIAGRAMS.mkdir(exist_ok=True)
    for stale in DIAGRAMS.glob("*.svg"):
        if stale.stem not in wanted:
            stale.unlink()
            print(f"deleted {stale.relative_to(DOCS.parent)}")
    todo = {name: source for name, source in wanted.items() if not (DIAGRAMS / f"{name}.svg").exists()}
    if not todo:
        return
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        script = _mermaid_js(mermaid_js, Path(scratch))
        chromium = shutil.which("chromium")
        browser = playwright.chromium.launch(executable_path=chromium) if chromium else playwright.chromium.launch()
        page = browser.new_page()
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(path=str(script))
        page.evaluate(
            """() => mermaid.initialize({
                startOnLoad: false, securityLevel: "strict", theme: "neutral",
                htmlLabels: false, flowchart: {htmlLabels: false}, fontFamily: "sans-serif",
            })"""
        )
        for name, source in todo.items():
            svg = page.evaluate("async ([id, text]) => (await mermaid.render(id, text)).svg", [f"d{name}", source])
            (DIAGRAMS / f"{name}.svg").write_text(intrinsic_size(svg), encoding="utf-8")
            print(f"rendered {DIAGRAMS.relative_to(DOCS.parent)}/{name}.svg ({caption(source)})")
        browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--mermaid", help="path to mermaid.min.js (default: fetched with npm pack)")
    render_missing(parser.parse_args().mermaid)
