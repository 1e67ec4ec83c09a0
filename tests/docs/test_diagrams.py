"""Every diagram of the docs is shown from an SVG rendered from its current source.

The pages keep Mermaid source (readable, and rendered by GitHub); the site shows the SVG
named after a hash of that source, so a diagram edited without rendering it again fails
here (and fails the strict build).
"""

from __future__ import annotations

import hashlib
import re

from .code_blocks import DOCS

FENCE = re.compile(r"^```mermaid[ \t]*\n(?P<source>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
DIAGRAMS = DOCS / "diagrams"


def sources() -> dict[str, str]:
    found: dict[str, str] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            source = match.group("source")
            found[hashlib.sha256(source.strip().encode()).hexdigest()[:16]] = source
    return found


def test_every_diagram_has_its_rendered_svg() -> None:
    wanted = sources()
    assert len(wanted) >= 5
    missing = sorted(name for name in wanted if not (DIAGRAMS / f"{name}.svg").is_file())
    assert missing == [], "render them with: .venv/bin/python docs/docgen/diagrams.py"


def test_no_svg_is_left_from_a_diagram_that_changed() -> None:
    orphans = sorted(path.name for path in DIAGRAMS.glob("*.svg") if path.stem not in sources())
    assert orphans == []


def test_every_diagram_says_what_it_shows_and_needs_no_network() -> None:
    for name, source in sources().items():
        assert source.lstrip().startswith("%%"), f"diagram {name} has no %% description for its alt text"
        svg = (DIAGRAMS / f"{name}.svg").read_text(encoding="utf-8")
        assert svg.startswith("<svg")
        assert "xmlns=" in svg
        assert not re.search(r"(href|src)=\"https?://", svg)
