"""The built site in a real browser: a reader goes from the home page to the induction head
page and sees its status badges and heatmap; every page loads without a console error; every
internal link resolves; the key pages show the elements they exist for; a phone-width screen
scrolls wide tables inside their box, never the page; search works offline.

Uses Debian's /usr/bin/chromium through Playwright (no browser download). Elements are checked
by visibility and bounding box in screenshots taken along the way, not by pixel diffs.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}

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


def _watch(pg, base_url):
    pg.errors, pg.offsite = [], []
    pg.on("console", lambda m: pg.errors.append(f"{pg.url}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda exc: pg.errors.append(f"{pg.url}: {exc}"))
    pg.on("request", lambda r: None if r.url.startswith((base_url, "data:", "blob:")) else pg.offsite.append(r.url))
    return pg


@pytest.fixture
def page(browser, base_url):
    """A fresh page that records console errors, uncaught exceptions and off-site requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield _watch(context.new_page(), base_url)
    context.close()


@pytest.fixture
def phone(browser, base_url):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    yield _watch(context.new_page(), base_url)
    context.close()


def shot(pg, tmp_path: Path, name: str) -> Path:
    """Take a screenshot (kept in pytest's tmp dir for a human to look at after a failure)."""
    path = tmp_path / f"{name}.png"
    pg.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 0
    return path


def in_view(pg, locator) -> None:
    """Scroll the element into view and assert it is visible with a real box inside the viewport."""
    locator.scroll_into_view_if_needed()
    assert locator.is_visible()
    box = locator.bounding_box()
    vw, vh = pg.viewport_size["width"], pg.viewport_size["height"]
    assert box and box["width"] > 0 and box["height"] > 0, box
    assert box["x"] < vw and box["y"] < vh and box["x"] + box["width"] > 0 and box["y"] + box["height"] > 0, box


# ---------------------------------------------------------------------------- crawling


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key) and not (tag == "a" and key == "src"):
                self.urls.append(a[key])


@pytest.fixture(scope="module")
def crawl(base_url):
    """Every page reachable from the home page, and every internal href/src with its HTTP status."""
    pages, status, queue = [], {}, [base_url]
    while queue:
        url = queue.pop()
        if url in status:
            continue
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                status[url] = resp.status
                body = resp.read() if resp.headers.get_content_type() == "text/html" else None
        except urllib.error.HTTPError as exc:
            status[url] = exc.code
            continue
        if body is None:
            continue
        pages.append(url)
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        for ref in parser.urls:
            target = urldefrag(urljoin(url, ref)).url
            if target.startswith(base_url) and target not in status:
                queue.append(target)
            elif urlparse(target).scheme in ("http", "https") and urlparse(target).hostname in ("127.0.0.1", "localhost"):
                status.setdefault(target, "other local port")
    return pages, status


def test_every_internal_link_resolves(crawl, built_site, base_url):
    pages, status = crawl
    broken = {u: s for u, s in status.items() if s != 200}
    assert not broken, broken
    # the crawl reached every page of the built site (nothing is orphaned from the navigation)
    built = {base_url + p.relative_to(built_site.path).as_posix().removesuffix("index.html")
             for p in built_site.path.rglob("index.html")}
    assert built <= set(pages), sorted(built - set(pages))[:10]


def test_every_page_loads_without_console_errors(crawl, page):
    pages, _ = crawl
    assert len(pages) > 50
    for url in pages:
        page.goto(url, wait_until="load")
    assert page.errors == [], page.errors[:10]
    assert page.offsite == [], page.offsite[:10]


# ---------------------------------------------------------------------------- key pages


def test_home_to_induction_page_shows_badges_and_heatmap(page, base_url, tmp_path):
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

    refreshed = page.locator(".ha-facts .ha-refreshed").first
    in_view(page, refreshed)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", refreshed.inner_text().strip())

    badge = page.locator("#induction-scoring--smollm2-135m ~ p .ha-badge.ha-holds").first
    in_view(page, badge)
    assert badge.inner_text().strip() == "holds"
    colour = badge.evaluate("b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(46, 125, 50)", colour  # the only green badge
    evidence = page.locator("#induction-scoring--smollm2-135m ~ p.ha-evidence").first
    in_view(page, evidence)
    assert "top_head_score 0.432 [0.402, 0.452] vs null 99th pct 0.05" in evidence.inner_text()
    assert "needs >= 0.25" in evidence.inner_text()
    shot(page, tmp_path, "induction-badge")
    near = page.locator("#induction-scoring--gemma-3-270m ~ p .ha-badge.ha-near-miss").first
    in_view(page, near)
    assert near.inner_text().strip() == "near miss"
    assert "within its tolerance of 0.1" in near.get_attribute("title")
    assert near.evaluate("b => getComputedStyle(b).backgroundColor") != colour
    absent = page.locator("#induction-mean-ablation--smollm2-135m ~ p .ha-badge.ha-absent").first
    in_view(page, absent)
    assert absent.inner_text().strip() == "absent"
    in_view(page, page.locator(".ha-badge.ha-not-run").first)
    tolerance = page.locator("th abbr", has_text="tolerance").first
    in_view(page, tolerance)
    assert "near miss" in tolerance.get_attribute("title")
    in_view(page, page.locator("svg.ha-gauge").first)

    for selector in ("img.ha-heatmap", "img.ha-attention", "img.ha-effects"):
        img = page.locator(selector).first
        in_view(page, img)
        page.wait_for_function("img => img.complete", arg=img.element_handle())
        assert img.evaluate("img => img.naturalWidth") > 0, selector
    shot(page, tmp_path, "induction-figures")

    assert page.errors == [], page.errors
    assert page.offsite == [], page.offsite


def test_model_page_shows_the_head_type_grid(page, base_url, tmp_path):
    page.goto(base_url + "models/smollm2-135m/")
    grid = page.locator("table.ha-grid")
    in_view(page, grid)
    assert page.locator("table.ha-grid tbody tr").count() == 30
    cell = page.locator("table.ha-grid tbody tr").nth(18).locator("td").nth(6)
    in_view(page, cell)
    assert cell.locator(".ha-cell-type").inner_text() == "IND"
    colour = cell.evaluate("td => getComputedStyle(td).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
    in_view(page, page.locator("ul.ha-legend"))
    shot(page, tmp_path, "model-grid")
    cell.locator("a").click()
    page.wait_for_url("**/heads/induction/")
    in_view(page, page.locator("table").first)  # the claim results table
    assert page.errors == [], page.errors


def test_claims_and_transfer_pages_show_their_tables(page, base_url, tmp_path):
    page.goto(base_url + "claims/")
    in_view(page, page.locator(".ha-sortable table"))
    assert page.locator(".ha-sortable tbody tr").count() >= 5
    in_view(page, page.locator(".ha-sortable .ha-badge.ha-near-miss").first)
    twin = page.locator(".ha-sortable .ha-badge.ha-error", has_text="holds on random weights").first
    in_view(page, twin)
    rerun = page.locator(".ha-sortable code.ha-cmd", has_text="--claim induction-mean-ablation --model smollm2-135m")
    in_view(page, rerun.first)
    assert "held-out models" in page.locator("article p").first.inner_text()
    shot(page, tmp_path, "claims")

    page.goto(base_url + "transfer/")
    table = page.locator(".ha-transfer table")
    in_view(page, table)
    headers = table.locator("thead th").all_inner_texts()
    assert any("smollm2-135m" in h for h in headers) and any("gpt2" in h for h in headers)
    assert any("must not hold" in h for h in headers)  # the random-weights twin, a control column
    note_link = table.locator("sup a").first
    in_view(page, note_link)
    shot(page, tmp_path, "transfer")
    note_link.click()
    target = page.locator("ol.ha-notes li:target")
    in_view(page, target)
    assert page.errors == [], page.errors


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


def test_search_finds_the_induction_page(page, base_url):
    page.goto(base_url)
    page.locator("label.md-search__icon, .md-search__input").first.click()
    box = page.locator("input.md-search__input")
    box.press_sequentially("induction", delay=30)  # the search reacts to key presses, as a reader types
    first = page.locator(".md-search-result__item > a").first
    first.wait_for(state="visible", timeout=15000)
    # the induction head's own page is the top result (head pages carry a search boost)
    assert "/heads/induction/" in first.get_attribute("href"), first.get_attribute("href")
    assert page.offsite == [], page.offsite
    first.click()
    page.wait_for_url("**/heads/induction/**")
    assert page.locator("h1").first.inner_text().startswith("Induction head")


# ---------------------------------------------------------------------------- phone width


@pytest.mark.parametrize("path", ["", "heads/induction/", "models/smollm2-135m/", "transfer/", "claims/",
                                  "notebooks/find-induction-heads/"])
def test_phone_width_does_not_scroll_the_page_sideways(phone, base_url, path, tmp_path):
    phone.goto(base_url + path, wait_until="load")
    width = phone.evaluate("document.documentElement.scrollWidth")
    body = phone.evaluate("document.body.scrollWidth")
    assert width <= PHONE["width"] and body <= PHONE["width"], (path, width, body)
    # wide tables are scrollable inside their own box instead
    for table in phone.locator("article table").all()[:5]:
        if table.evaluate("t => t.scrollWidth > t.getBoundingClientRect().width + 1 || "
                          "t.getBoundingClientRect().width > innerWidth"):
            box = table.evaluate("t => { let e = t.parentElement; while (e && getComputedStyle(e).overflowX"
                                 " !== 'auto' && getComputedStyle(e).overflowX !== 'scroll') e = e.parentElement;"
                                 " return e ? e.getBoundingClientRect().width : null; }")
            assert box is not None and box <= PHONE["width"], (path, box)
    shot(phone, tmp_path, "phone-" + (path.strip("/").replace("/", "-") or "home"))
    assert phone.errors == [], phone.errors
