"""The built site in a real browser: a reader goes from the home page to the induction head
page and sees its status badge and heatmap, the table script works, the pages log no console
error and nothing is fetched from anywhere but the site itself.

Uses Debian's /usr/bin/chromium through Playwright (no browser download)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def base_url(built_site):
    """The built site served on a free port of 127.0.0.1 for the duration of the module."""
    handler = functools.partial(_QuietHandler, directory=str(built_site.path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh page that records console errors, uncaught exceptions and off-site requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors, pg.offsite = [], []
    pg.on("console", lambda m: pg.errors.append(f"{pg.url}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda exc: pg.errors.append(f"{pg.url}: {exc}"))
    pg.on("request", lambda r: None if r.url.startswith((base_url, "data:")) else pg.offsite.append(r.url))
    yield pg
    context.close()


def test_home_to_induction_page_shows_badge_and_heatmap(page, base_url):
    page.goto(base_url)
    page.get_by_role("article").get_by_role("link", name="All heads").click()
    page.wait_for_url("**/heads/")

    # The table script adds a filter box; filtering hides rows but keeps the induction row.
    total = page.locator(".ha-sortable tbody tr").count()
    page.get_by_placeholder("Filter rows…").fill("induction")
    shown = page.locator(".ha-sortable tbody tr:not([hidden])")
    assert 1 <= shown.count() < total
    shown.get_by_role("link", name="Induction head", exact=True).click()
    page.wait_for_url("**/heads/induction/")
    page.wait_for_load_state("load")

    badge = page.locator("#induction-scoring ~ p .ha-badge.ha-pass").first
    assert badge.is_visible()
    assert badge.inner_text().strip() == "pass"
    assert page.locator(".ha-badge.ha-not-run").first.is_visible()

    img = page.locator("img.ha-heatmap").first
    img.scroll_into_view_if_needed()
    assert img.is_visible()
    page.wait_for_function("img => img.complete", arg=img.element_handle())
    assert img.evaluate("img => img.naturalWidth") > 0

    assert page.errors == [], page.errors
    assert page.offsite == [], page.offsite


def test_heads_table_sorts_and_filters(page, base_url):
    page.goto(base_url + "heads/")
    names = lambda: page.locator(".ha-sortable tbody tr:not([hidden]) td:first-child").all_inner_texts()  # noqa: E731
    header = page.locator(".ha-sortable th").first
    header.click()
    ascending = names()
    assert ascending == sorted(ascending, key=str.lower) and len(ascending) >= 2
    header.click()
    assert names() == ascending[::-1]
    page.get_by_placeholder("Filter rows…").fill("no head has this text")
    assert names() == []
    assert "0 of" in page.locator(".ha-count").inner_text()
    assert page.errors == [], page.errors


def test_pages_log_no_console_errors(page, base_url):
    for path in ["", "claims/", "stages/", "bibliography/", "models/gpt2/", "methods/scoring/"]:
        page.goto(base_url + path)
        page.wait_for_load_state("networkidle")
    assert page.errors == [], page.errors
    assert page.offsite == [], page.offsite
