"""The built site in a real browser: a reader goes from the home page to the induction head
page and sees its status badges and heatmap; every page loads without a console error; every
internal link resolves; the key pages show the elements they exist for; a phone-width screen
scrolls wide tables inside their box, never the page; with many model columns nothing on the key
pages overflows at phone width (the transfer matrix becomes one card per head type); search works
offline.

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


def _serve(path: Path):
    handler = functools.partial(_QuietHandler, directory=str(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="module")
def base_url(built_site):
    """The built site served on a free port of 127.0.0.1 for the duration of the module."""
    server, thread = _serve(built_site.path)
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def family_url(family_site):
    """The site with seven model columns and one family at two sizes (conftest.write_family_results)."""
    server, thread = _serve(family_site.path)
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
    lead = page.locator("img.ha-lead-figure")  # one figure near the top, before the claims
    in_view(page, lead)
    assert lead.bounding_box()["y"] < page.locator("#claims").bounding_box()["y"]
    # checks, data variants, figures and provenance are one click away
    checks = page.locator("details", has_text="Checks, data variants, figures and provenance on smollm2-135m").first
    assert not checks.locator("table").first.is_visible()
    checks.locator("summary").first.click()
    tolerance = page.locator("th abbr", has_text="tolerance").first
    in_view(page, tolerance)
    assert "near miss" in tolerance.get_attribute("title")
    in_view(page, page.locator("svg.ha-gauge").first)

    page.locator("#induction-mean-ablation--smollm2-135m ~ details summary").first.click()
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


@pytest.mark.parametrize("path", ["", "heads/", "heads/induction/", "models/smollm2-135m/", "transfer/", "claims/",
                                  "notebooks/find-induction-heads/", "circuits/ioi-gpt2-small/"])
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


def test_phone_width_keeps_every_column_of_the_head_index_on_screen(phone, base_url, tmp_path):
    """At 390 px the index is one card per head: the verdicts are on screen, not in a sideways scroll."""
    phone.goto(base_url + "heads/", wait_until="load")
    row = _index_row(phone, "Induction head")
    for cell in (row.locator("td.ha-verdicts"), row.locator("td.ha-desc"), row.locator(".ha-mv").last):
        cell.scroll_into_view_if_needed()
        box = cell.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    # notebook code cells use the width of the screen
    phone.goto(base_url + "notebooks/find-induction-heads/", wait_until="load")
    widths = phone.evaluate("Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-editor'))"
                            ".map(e => e.getBoundingClientRect().width)")
    assert widths and min(widths) > 0.75 * PHONE["width"], widths
    shot(phone, tmp_path, "phone-notebook")


# ---------------------------------------------------------------------------- the head index


@functools.cache
def _without_claim() -> tuple[tuple[str, str, str], ...]:
    """(name, badge label, badge class) of every entry without a claim, from the real catalogue
    (entries gain claims over time, so the tests take whatever statuses their reasons give:
    measured and absent, measured but not established, task not done, or no claim yet; each
    status is checked against a written reason in tests/test_site.py)."""
    from headatlas.catalogue import find_root, load_catalogue
    from headatlas.site.pages import SiteBuilder

    site = SiteBuilder(load_catalogue(find_root(Path(__file__).parent)), {})
    out = tuple((e.name, *site.no_claim_status(e)[1:]) for e in sorted(site.cat.heads.values(), key=lambda e: e.name)
                if not e.claims)
    assert out, "every entry has a claim: these index tests need a new way to reach the no-claim badges"
    return out


def _index_row(page, name: str):
    return page.locator(".ha-index tbody tr").filter(has=page.locator("td:first-child",
                                                                      has_text=re.compile(f"^{re.escape(name)}$")))


def test_head_index_has_a_description_and_a_badge_per_model(page, base_url):
    page.goto(base_url + "heads/")
    row = _index_row(page, "Induction head")
    assert row.locator("td.ha-desc").inner_text().startswith("Completes patterns of the form [A][B] ... [A] -> [B].")
    models = row.locator(".ha-mv").evaluate_all("els => els.map(e => e.dataset.model)")
    # the models with results first (calibration, held-out, twin), then claim models without any
    assert models[:4] == ["smollm2-135m", "gemma-3-270m", "gpt2", "smollm2-135m-random"], models
    for m in models[4:]:
        assert row.locator(f'.ha-mv[data-model="{m}"] .ha-badge').inner_text() == "no result"
    assert row.locator(".ha-mv[data-model=gemma-3-270m] .ha-badge.ha-near-miss").is_visible()
    assert row.locator(".ha-mv[data-model=gpt2] .ha-badge.ha-not-run").is_visible()
    # an entry without a claim shows why in its badge (measured and absent is not "no claim yet")
    for name, label, css in _without_claim():
        assert _index_row(page, name).locator(f".ha-badge.{css}").inner_text() == label
    # near-duplicates link each other
    assert _index_row(page, "Correct-letter head").get_by_role("link", name="Correct head (MCQA)").is_visible()
    assert _index_row(page, "Correct head (MCQA)").get_by_role("link", name="Correct-letter head").is_visible()
    assert page.errors == [], page.errors


def test_head_index_filters_by_stage_status_and_model(page, base_url):
    page.goto(base_url + "heads/")
    shown = page.locator(".ha-index tbody tr:not([hidden])")
    total = shown.count()
    page.select_option("select[data-facet=stage]", "LR")
    stages = shown.evaluate_all("rows => rows.map(r => r.dataset.stage)")
    assert stages and set(stages) == {"LR"} and len(stages) < total
    assert "Induction head" in shown.all_inner_texts()[0] or any("Induction head" in t for t in shown.all_inner_texts())
    page.select_option("select[data-facet=stage]", "")
    page.select_option("select[data-facet=model]", "gemma-3-270m")
    page.select_option("select[data-facet=status]", "near miss")
    names = shown.locator("td:first-child").all_inner_texts()
    assert names == ["Induction head"], names
    page.select_option("select[data-facet=status]", "inconclusive")
    assert shown.locator("td:first-child").all_inner_texts() == ["Previous-token head"]
    # the text filter and the facets combine
    page.get_by_placeholder("Filter rows…").fill("induction")
    assert shown.count() == 0
    page.get_by_placeholder("Filter rows…").fill("")
    assert shown.locator("td:first-child").all_inner_texts() == ["Previous-token head"]
    page.select_option("select[data-facet=model]", "")
    _, label, css = _without_claim()[0]
    page.select_option("select[data-facet=status]", label)
    names = shown.locator("td:first-child").all_inner_texts()
    assert sorted(names) == sorted(n for n, lab, _ in _without_claim() if lab == label), names
    assert shown.locator(f".ha-badge.{css}").count() == len(names)
    page.select_option("select[data-facet=status]", "")
    assert shown.count() == total
    assert page.errors == [], page.errors


def test_charts_draw_thresholds_and_circuits_draw_the_flow(page, base_url):
    page.goto(base_url + "heads/induction/")
    img = page.locator("img.ha-effects").first
    src = img.evaluate("i => i.src")
    svg = page.request.get(src).text()
    assert 'id="ha-threshold"' in svg and 'id="ha-null-band"' in svg
    page.goto(base_url + "circuits/ioi-gpt2-small/")
    svg = page.locator("svg.ha-circuit-svg").first
    in_view(page, svg)
    edges = svg.locator("path.ha-flow-edge").evaluate_all("ps => ps.map(p => p.dataset.from + ' > ' + p.dataset.to)")
    for edge in ("previous token > induction", "induction > S-inhibition", "duplicate token > S-inhibition",
                 "S-inhibition > name mover", "name mover > logits"):
        assert edge in edges, edges
    # readable at page width: the class names are drawn at 11 px or more
    size = svg.locator(".ha-flow-name").first.evaluate("t => t.getBoundingClientRect().height")
    assert size >= 11, size
    assert page.errors == [], page.errors


# ---------------------------------------------------------------------------- many models, one family


# Boxes that scroll sideways, outside the collapsed details a reader opens on purpose (dense check
# tables may scroll there): [class, scrollWidth, clientWidth] of each.
_INNER_SCROLL = """Array.from(document.querySelectorAll('article .md-typeset__scrollwrap, article .ha-scroll'))
    .filter(e => !e.closest('details') && e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
    .map(e => [e.className, e.scrollWidth, e.clientWidth])"""


@pytest.mark.parametrize("path", ["transfer/", "heads/", "heads/induction/", "models/smollm2-135m/",
                                  "models/qwen2.5-coder-0.5b/", "families/qwen2.5-coder/"])
def test_phone_width_nothing_overflows_with_many_models(browser, family_url, path, tmp_path):
    """At 390 px, with seven model columns: no page scrolls sideways and no table or grid outside
    the collapsed details scrolls inside its box (the transfer matrix and the family page are cards,
    the head-type grid squeezes 14 heads into the screen)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    phone = _watch(context.new_page(), family_url)
    phone.goto(family_url + path, wait_until="load")
    width = phone.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= PHONE["width"], (path, width)
    assert phone.evaluate(_INNER_SCROLL) == [], path
    outside = phone.evaluate("""Array.from(document.querySelectorAll('article .ha-badge, article table.ha-grid td'))
        .filter(e => !e.closest('details') && e.offsetParent !== null)
        .map(e => e.getBoundingClientRect()).filter(r => r.left < -0.5 || r.right > innerWidth + 0.5).length""")
    assert outside == 0, path
    shot(phone, tmp_path, "phone-many-" + path.strip("/").replace("/", "-"))
    assert phone.errors == [], phone.errors
    context.close()


def test_phone_transfer_matrix_is_one_card_per_head_type(browser, family_url, tmp_path):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    phone = _watch(context.new_page(), family_url)
    phone.goto(family_url + "transfer/", wait_until="load")
    assert not phone.locator(".ha-transfer thead").is_visible()  # the header row is hidden on a card ...
    # successor: one claim, which holds on the synthetic 1.5B (induction's ablation has no 1.5B result there)
    name = phone.locator("td.ha-tf-head", has_text=re.compile("^Successor head$"))
    card = phone.locator(".ha-transfer tbody tr").filter(has=name)
    cell = card.locator('td[data-model="qwen2.5-coder-1.5b"]')
    in_view(phone, cell)
    label = cell.locator(".ha-tf-label")  # ... so each cell names its model
    assert label.is_visible() and label.inner_text().replace("\u200b", "").startswith("qwen2.5-coder-1.5b")
    badge = cell.locator(".ha-badge").first
    box = badge.bounding_box()
    assert badge.inner_text() == "holds" and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert not card.locator("td.ha-tf-none").first.is_visible()  # models where no claim runs are left out
    shot(phone, tmp_path, "phone-transfer-cards")
    context.close()


def test_desktop_transfer_matrix_fits_seven_model_columns(page, family_url, tmp_path):
    page.goto(family_url + "transfer/", wait_until="load")
    table = page.locator(".ha-transfer table")
    in_view(page, table)
    headers = table.locator("thead th")
    assert headers.count() == 2 + 7
    assert page.evaluate(_INNER_SCROLL) == []
    right = max(b["x"] + b["width"] for b in (h.bounding_box() for h in headers.all()))
    assert right <= page.viewport_size["width"], right
    assert not page.locator(".ha-transfer .ha-tf-label").first.is_visible()  # the column header names the model
    shot(page, tmp_path, "transfer-seven-models")
    page.goto(family_url + "families/qwen2.5-coder/", wait_until="load")
    change = page.locator('td.ha-fam-change[data-change="moves"]')
    in_view(page, change)
    assert "deeper by" in change.inner_text()
    assert page.errors == [], page.errors
