"""The site builds in strict mode, quickly, and reads offline from disk."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import yaml  # type: ignore[import-untyped]

from .conftest import ROOT, BuiltSite

MAX_BUILD_SECONDS = 30


def nav_pages() -> list[str]:
    """Return every page the navigation of ``mkdocs.yml`` names."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return re.findall(r"([\w/.-]+\.md)\s*$", text.split("\nnav:", 1)[1], flags=re.MULTILINE)


class _Resources(HTMLParser):
    """Collects what a page loads: scripts, stylesheets, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and found.get("src"):
            self.loaded.append(str(found["src"]))
        if tag == "link" and found.get("rel") in ("stylesheet", "preload", "modulepreload", "icon"):
            self.loaded.append(str(found.get("href")))


def test_the_site_builds_in_strict_mode_within_the_time_budget(built_site: BuiltSite) -> None:
    assert built_site.returncode == 0, built_site.output[-4000:]
    assert "WARNING" not in built_site.output, built_site.output[-4000:]
    assert built_site.seconds < MAX_BUILD_SECONDS


def test_every_page_of_the_navigation_is_built_as_a_plain_html_file(built_site: BuiltSite) -> None:
    pages = nav_pages()
    assert len(pages) >= 35
    for page in pages:
        # use_directory_urls: false, so that the site opens from disk with file:// links.
        assert (built_site.directory / page.replace(".md", ".html")).is_file(), page


def test_no_page_loads_anything_from_the_network(built_site: BuiltSite) -> None:
    for path in sorted(built_site.directory.rglob("*.html")):
        parser = _Resources()
        parser.feed(path.read_text(encoding="utf-8"))
        remote = [url for url in parser.loaded if re.match(r"(https?:)?//", url)]
        assert not remote, f"{path.relative_to(built_site.directory)} loads {remote}"


def test_search_works_from_disk_with_the_index_bundled_as_a_script(built_site: BuiltSite) -> None:
    assert (built_site.directory / "search" / "search_index.js").read_text(encoding="utf-8").startswith("var __index")
    assert "assets/javascripts/iframe-worker-shim.js" in built_site.page("index.html")


def test_the_mkdocs_configuration_keeps_strict_and_offline_settings() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    assert config["use_directory_urls"] == "false"
    assert config["strict"] == "true"
    assert config["theme"]["font"] == "false"


def test_the_changelog_page_is_the_changelog_file(built_site: BuiltSite) -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    first_entry = next(line for line in changelog.splitlines() if line.startswith("- "))
    words = first_entry[2:].split()[:4]
    assert " ".join(words) in re.sub(r"\s+", " ", built_site.page("changelog.html"))


def test_generated_reference_pages_hold_what_the_code_defines(built_site: BuiltSite) -> None:
    from sessionward.core.events import EventName

    events = built_site.page("reference/events.html")
    assert all(member.name in events for member in EventName)
    cli = built_site.page("reference/cli.html")
    for command in ("sessionward sessions purge", "sessionward store init", "sessionward audit", "--store"):
        assert command in cli
    assert "sessionward_store_latency_seconds" in built_site.page("reference/metrics.html")
    schema = re.sub(r"<[^>]+>", "", built_site.page("operations/sql.html"))
    assert "CREATE TABLE sessionward_sessions" in schema
