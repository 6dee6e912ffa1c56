"""The generated site: built with `mkdocs build --strict` from the catalogue and fake results,
then read back as HTML, so each test checks what a reader would actually see."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from headatlas.catalogue import find_root, load_catalogue
from headatlas.site.pages import badge, slug

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = find_root(Path(__file__).parent)  # the catalogue the site is built from (honours HEADATLAS_ROOT)


class Tags(HTMLParser):
    """Collects the attributes of every start tag, by tag name."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: dict[str, list[dict]] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.setdefault(tag, []).append(dict(attrs))


def page(site: Path, uri: str) -> str:
    return (site / uri / "index.html").read_text(encoding="utf-8")


def section(html: str, start: str, end: str | None = None) -> str:
    """The HTML between the heading with id `start` and the next one with id `end`."""
    i = html.index(f'id="{start}"')
    return html[i:html.index(f'id="{end}"', i)] if end else html[i:]


def table_row(html: str, text: str) -> str:
    rows = [r for r in re.findall(r"<tr>.*?</tr>", html, flags=re.S) if text in r]
    assert len(rows) == 1, f"expected one table row containing {text!r}, found {len(rows)}"
    return rows[0]


def edit_link(html: str) -> str:
    return next(a["href"] for a in Tags(html).tags["a"] if a.get("rel") == "edit")


# ---------------------------------------------------------------------------- the main build


def test_build_is_strict_and_takes_seconds(built_site):
    assert (built_site.path / "index.html").is_file()
    assert built_site.seconds < 60, f"building the site took {built_site.seconds:.1f} s"


def test_induction_page_shows_each_status_with_its_own_badge(built_site):
    html = page(built_site.path, "heads/induction")
    scoring = section(html, "induction-scoring--smollm2-135m", "induction-scoring--gemma-3-270m")
    ablation = section(html, "induction-mean-ablation", "induction-gpt2-published")
    assert re.search(r'<span class="ha-badge ha-pass"[^>]*>reproduced</span>', scoring)
    # a failure on the default model is a broken claim: red "fail", never passing
    assert re.search(r'<span class="ha-badge ha-fail"[^>]*>fail</span>', ablation) and "ha-pass" not in ablation
    assert "<strong>Why:</strong> loss_increase = 0.42 fails <code>loss_increase &gt;= 1</code>." in ablation
    assert "loss_increase = 0.42 is below the threshold 1" in ablation  # the recorded reason, in the run details


def test_fail_on_another_model_is_not_found_with_the_failed_check(built_site):
    html = page(built_site.path, "heads/induction")
    gemma = section(html, "induction-scoring--gemma-3-270m", "induction-mean-ablation")
    assert re.search(r'<span class="ha-badge ha-not-found" title="[^"]*relative depth 0.294[^"]*">not found</span>', gemma)
    assert "ha-pass" not in gemma and "ha-fail" not in gemma
    assert "the top heads sit at relative depth 0.294, outside the layer band 0.3–0.8" in gemma
    assert "(all 3 data variants)" in gemma


def test_result_shows_measured_values_against_thresholds(built_site):
    scoring = section(page(built_site.path, "heads/induction"), "induction-scoring--smollm2-135m",
                      "induction-scoring--gemma-3-270m")
    row = table_row(scoring.split("Data variants:")[0], "best_score &gt;= 0.25")
    assert "<strong>0.432</strong>" in row            # the primary variant's value is the headline
    assert "0.41–0.446" in row                        # its spread over the variants
    assert 'title="control_best_score">0.0123</span>' in row and "✓ fails 3/3" in row
    gauge = re.search(r'<svg class="ha-gauge".*?</svg>', scoring, flags=re.S).group(0)
    assert "best_score &gt;= 0.25: measured 0.432, 0.41, 0.446" in gauge
    assert gauge.count("<circle") == 3 and "ha-gauge-control" in gauge
    assert "abcdef012345" in scoring  # short weights hash
    assert re.search(r'last refreshed <strong class="ha-refreshed"><time datetime="2026-01-02T03:04:05\+00:00"[^>]*>'
                     r"2026-01-02</time>", scoring)


def test_result_has_a_table_per_data_variant_and_the_spread(built_site):
    scoring = section(page(built_site.path, "heads/induction"), "induction-scoring--smollm2-135m",
                      "induction-scoring--gemma-3-270m")
    variants = scoring[scoring.index("Data variants:"):]
    for name, value in (("40 tokens seed 0", "0.432"), ("25 tokens seed 1", "0.41"), ("60 tokens seed 2", "0.446")):
        assert name in variants
        assert f"<td>{value}</td>" in variants, value
    assert "<code>block_len=25, seed=1</code>" in variants  # what each variant changes
    spread = table_row(variants, "<code>control_best_score</code>")
    assert "0.0101–0.0145" in spread  # min–max of a measured value over the variants


def test_head_page_shows_when_it_was_last_refreshed(built_site):
    html = page(built_site.path, "heads/induction")
    facts = html[:html.index('id="summary"')]
    assert "Last refreshed" in facts and "2026-01-03" in facts  # the newest record (gemma's)
    assert "No result" not in facts


def test_heatmap_is_a_png_next_to_the_page(built_site):
    page_dir = built_site.path / "heads" / "induction"
    imgs = [i for i in Tags(page(built_site.path, "heads/induction")).tags["img"] if "ha-heatmap" in i.get("class", "")]
    assert len(imgs) == 2, "two records with scores (smollm2 and gemma), so two heatmaps"
    png = (page_dir / imgs[0]["src"]).resolve()
    assert png.is_file(), png
    assert png.read_bytes().startswith(PNG)
    assert png.stat().st_size > 5000  # a real figure, not an empty image


def test_attention_example_and_effects_become_figures(built_site):
    tags = Tags(page(built_site.path, "heads/induction")).tags["img"]
    page_dir = built_site.path / "heads" / "induction"
    for cls, name in (("ha-attention", "induction-scoring-smollm2-135m-attention.png"),
                      ("ha-effects", "induction-mean-ablation-smollm2-135m-effects.png")):
        imgs = [i for i in tags if cls in i.get("class", "")]
        assert len(imgs) == 1, cls
        assert imgs[0]["src"].endswith(name)
        assert (page_dir / imgs[0]["src"]).resolve().read_bytes().startswith(PNG)
    # records without those artifacts (gemma) get no such figure, and no error
    assert not (built_site.path / "heads" / "induction-scoring-gemma-3-270m-attention.png").exists()


def test_not_run_is_shown_as_not_run_never_as_passing(built_site):
    published = section(page(built_site.path, "heads/induction"), "induction-gpt2-published")
    assert re.search(r'<span class="ha-badge ha-not-run"[^>]*>not run</span>', published)
    assert "ha-pass" not in published
    assert "weights unavailable offline (fake reason for the site test)" in published
    row = table_row(page(built_site.path, "claims"), "induction-gpt2-published")
    assert "ha-not-run" in row and "ha-pass" not in row
    assert "ha-not-run" in table_row(page(built_site.path, "models/gpt2"), "induction-gpt2-published")


def test_claims_page_lists_every_claim_on_every_model(built_site):
    html = page(built_site.path, "claims")
    cat = load_catalogue(ROOT)
    for claim_id, (_, spec) in cat.claims.items():
        for model in spec.models:
            assert re.search(rf"<tr>(?:(?!</tr>).)*{claim_id}(?:(?!</tr>).)*>{model}</a>", html, flags=re.S), \
                (claim_id, model)
    rows = [r for r in re.findall(r"<tr>.*?</tr>", html, flags=re.S) if ">induction-mean-ablation<" in r]
    assert "ha-fail" in next(r for r in rows if ">smollm2-135m<" in r)
    assert "no result recorded yet" in next(r for r in rows if ">gemma-3-270m<" in r)  # no fake record for it
    gemma = next(r for r in re.findall(r"<tr>.*?</tr>", html, flags=re.S)
                 if ">induction-scoring<" in r and ">gemma-3-270m<" in r)
    assert "ha-not-found" in gemma and "ha-pass" not in gemma
    assert "relative depth 0.294" in gemma  # the reason, next to the badge
    assert "<td>0.405–0.437</td>" in gemma  # the spread of the key value over the data variants


def test_transfer_matrix_has_a_row_per_head_with_claims_and_a_column_per_model(built_site):
    html = page(built_site.path, "transfer")
    cat = load_catalogue(ROOT)
    header = re.search(r"<thead>.*?</thead>", html, flags=re.S).group(0)
    for model in ("smollm2-135m", "gemma-3-270m", "gpt2"):  # every model with a results file
        assert f">{model}</a>" in header, model
    assert ">gpt2-medium<" not in header  # in the catalogue, but no results file
    rows = re.findall(r"<tr>.*?</tr>", html.split("<tbody>")[1].split("</tbody>")[0], flags=re.S)
    assert len(rows) == sum(1 for e in cat.heads.values() if e.claims)
    induction = table_row(html, ">Induction head</a>")
    cells = re.findall(r"<td>.*?</td>", induction, flags=re.S)
    smollm2, gemma, gpt2 = cells[2:5]
    assert "ha-not-found" in smollm2 or "ha-fail" in smollm2  # ablation fails on the default model
    assert ">fail<" in smollm2 and "top 18.6, 17.3, 17.4" in smollm2 and "best_score 0.432 (0.41–0.446)" in smollm2
    assert ">not found<" in gemma and 'title="induction-scoring: not found: the top heads sit' in gemma
    assert ">not run<" in gpt2
    for cell_html in (smollm2, gemma, gpt2):
        assert "ha-pass" not in cell_html
        note = re.search(r'href="#(tf-\d+)"', cell_html).group(1)
        assert f'<li id="{note}">' in html  # each non-reproduced cell has a footnote with the reason
    assert "weights unavailable offline (fake reason for the site test)" in html
    previous = table_row(html, ">Previous-token head</a>")
    assert ">reproduced<" in re.findall(r"<td>.*?</td>", previous, flags=re.S)[2]


def test_model_page_grid_colours_heads_by_type_and_links_them(built_site):
    html = page(built_site.path, "models/smollm2-135m")
    grid = re.search(r'<table class="ha-grid".*?</table>', html, flags=re.S).group(0)
    rows = re.findall(r"<tr>.*?</tr>", grid.split("<tbody>")[1], flags=re.S)
    assert len(rows) == 30 and all(r.count("<td") == 9 for r in rows)
    # the induction record's best head, 18.6, is coloured as induction and links to its page
    cell_18_6 = re.findall(r"<td.*?</td>", rows[18], flags=re.S)[6]
    assert 'href="../../heads/induction/"' in cell_18_6 and "0.43" in cell_18_6 and ">IND<" in cell_18_6
    assert 'title="18.6: Induction head 0.432' in cell_18_6
    # previous-token from its claim record, successor from the scan; a weak cell stays blank
    assert 'href="../../heads/previous-token/"' in re.findall(r"<td.*?</td>", rows[16], flags=re.S)[0]
    assert 'href="../../heads/successor/"' in re.findall(r"<td.*?</td>", rows[25], flags=re.S)[2]
    assert "ha-cell-empty" in re.findall(r"<td.*?</td>", rows[0], flags=re.S)[0]
    legend = html[html.index('class="ha-legend"'):]
    legend = legend[:legend.index("</ul>")]
    for hid in ("induction", "previous-token", "successor"):
        assert f'href="../../heads/{hid}/"' in legend, hid
    assert "headatlas scan" in legend  # where the successor scores came from
    assert "<code>option_attention</code>" in html  # a scan score that names no head entry is listed, not used
    assert "Last refreshed" in html and "2026-01-02" in html


def test_model_page_without_scores_says_how_to_get_them(built_site):
    html = page(built_site.path, "models/gpt2")
    assert "ha-grid" not in html and "No score matrix recorded for this model yet" in html


def test_edit_links_open_the_source_file(built_site):
    repo = "https://github.com/head-atlas/head-atlas/edit/main/"
    assert edit_link(page(built_site.path, "heads/induction")) == repo + "heads/induction.yaml"
    assert edit_link(page(built_site.path, "methods/scoring")) == repo + "catalogue/methods.yaml"
    assert edit_link((built_site.path / "index.html").read_text()) == repo + "docs/index.md"


def test_every_entry_has_its_page_and_citations_resolve(built_site):
    cat = load_catalogue(ROOT)
    for hid, entry in cat.heads.items():
        assert re.search(rf"<h1[^>]*>{re.escape(entry.name)}", page(built_site.path, f"heads/{hid}")), hid
    for kind, ids in (("methods", cat.methods), ("stages", cat.stages), ("models", cat.models)):
        for i in ids:
            assert (built_site.path / kind / slug(i) / "index.html").is_file(), (kind, i)
    bib = page(built_site.path, "bibliography")
    for key in cat.bibliography:
        assert f'id="{key}"' in bib
    assert 'href="../../bibliography/#olsson2022induction"' in page(built_site.path, "heads/induction")


def test_heads_table_is_sortable_and_lists_every_head(built_site):
    html = page(built_site.path, "heads")
    assert 'class="ha-sortable"' in html and "javascripts/table.js" in html
    assert (built_site.path / "javascripts" / "table.js").is_file()
    for hid in load_catalogue(ROOT).heads:
        assert f'href="../{hid}/"' in html or f'href="{hid}/"' in html, hid


def test_stage_diagram_links_all_four_stages(built_site):
    html = page(built_site.path, "stages")
    start = html.index('<svg class="ha-stages"')
    svg = html[start:html.index("</svg>", start)]
    for sid in ("KR", "ICI", "LR", "EP"):
        assert f'href="{sid}/"' in svg
    assert "Knowledge Recalling" in svg


def test_site_loads_nothing_from_the_network(built_site):
    """No page, stylesheet or script fetches anything from another host: only plain outbound
    links (<a href>, e.g. to papers) may point off-site."""
    remote = ("http:", "https:", "//")
    html_files = list(built_site.path.rglob("*.html"))
    assert len(html_files) > 50
    for html_file in html_files:
        text = html_file.read_text(encoding="utf-8")
        tags = Tags(text)
        fetched = [t.get("src", "") for name in ("script", "img", "iframe", "source", "audio", "video", "embed")
                   for t in tags.tags.get(name, [])]
        fetched += [t.get("href", "") for t in tags.tags.get("link", [])
                    if t.get("rel") not in ("canonical", "alternate")]
        fetched += re.findall(r"""url\(\s*['"]?([^'")]+)""", text)
        fetched += re.findall(r"""(?:import\s*\(\s*|from\s+|\.src\s*=\s*)['"]([^'"]+)""", text)
        assert not [u for u in fetched if u.strip().startswith(remote)], (html_file, fetched)
        assert "fonts.googleapis" not in text and "cdn." not in text.lower(), html_file
    for css in list(built_site.path.rglob("*.css")):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"""(@import|url\()\s*['"]?(https?:)?//""", text), css


def test_notebooks_are_pages_with_their_outputs(built_site):
    for name in ("find-induction-heads", "trace-ioi-circuit"):
        html = page(built_site.path, f"notebooks/{name}")
        assert 'class="jp-Notebook' in html, name
        assert re.search(r'<img[^>]+src="data:image/png;base64,', html), f"{name} has no plotted output"
        assert "cdnjs" not in html and "MathJax.Hub" not in html, name  # CDN scripts stripped


def test_verdicts_follow_the_status_semantics():
    from headatlas.site.verdicts import verdict

    fail = {"status": "fail", "reason": "x", "checks": [
        {"check": "best_score >= 0.25", "measure": "best_score", "value": 0.1, "holds": False}]}
    assert verdict({"status": "pass"}, "m", "m").label == "reproduced"
    assert (verdict(fail, "m", "m").css, verdict(fail, "m", "m").label) == ("ha-fail", "fail")
    other = verdict(fail, "other", "m")
    assert (other.css, other.label) == ("ha-not-found", "not found")
    assert other.reason == "best_score = 0.1 fails `best_score >= 0.25`"
    assert verdict({"status": "not run", "reason": "not run: offline"}, "m", "m").reason == "offline"
    assert verdict(None, "m", "m").label == "no result recorded yet"
    for record in (fail, {"status": "not run"}, {"status": "PASS"}, None):
        assert not verdict(record, "other", "m").passing and verdict(record, "other", "m").css != "ha-pass"


def test_badge_only_draws_the_exact_pass_status_as_passing():
    assert "ha-pass" in badge("pass")
    for status in ("PASS", "passed", "not run", "fail", None, ""):
        assert "ha-pass" not in badge(status)


# ---------------------------------------------------------------------------- a variant catalogue


@pytest.fixture(scope="module")
def variant_site(tmp_path_factory, build_site):
    """A scratch catalogue with an entry without claims, a circuit and a benchmark, and no
    results at all: what a fresh checkout looks like before `headatlas verify` has run."""
    root = tmp_path_factory.mktemp("root")
    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(ROOT / name, root / name)
    prev = root / "heads" / "previous-token.yaml"
    data = yaml.safe_load(prev.read_text())
    data["claims"] = []
    data["no_claim_reason"] = "Scoring it needs a probe we have not written yet (test reason)."
    data["benchmarks"] = ["test-bench"]
    prev.write_text(yaml.safe_dump(data, sort_keys=False))
    benchmarks = root / "catalogue" / "benchmarks.yaml"
    existing = yaml.safe_load(benchmarks.read_text()) if benchmarks.exists() else []
    benchmarks.write_text(yaml.safe_dump(existing + [{
        "id": "test-bench", "name": "Test bench", "kind": "mechanism-exploration", "task": "Copying",
        "description": "A benchmark for the site test.", "papers": ["olsson2022induction"]}]))
    (root / "catalogue" / "circuits.yaml").write_text(yaml.safe_dump([{
        "id": "ioi", "name": "IOI circuit", "model": "gpt2", "source": "wang2023ioi",
        "version_note": "Test circuit.",
        "classes": {"previous token": ["2.2", "4.11"], "induction": ["5.5", "6.9"], "name mover": ["9.9", "10.0"]},
        "class_heads": {"previous token": "previous-token", "induction": "induction"}}]))
    empty = tmp_path_factory.mktemp("no-results")
    return build_site(tmp_path_factory.mktemp("variant-site"), HEADATLAS_ROOT=str(root),
                      HEADATLAS_RESULTS=str(empty / "absent"))


def test_entry_without_claims_says_so(variant_site):
    html = page(variant_site.path, "heads/previous-token")
    assert "No executable claim yet" in html
    assert "Scoring it needs a probe we have not written yet (test reason)." in html
    assert "ha-heatmap" not in html


def test_without_results_every_claim_says_no_result_yet(variant_site):
    html = page(variant_site.path, "claims")
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)[1:]
    assert rows and all("no result recorded yet" in r for r in rows)
    assert "ha-pass" not in html and "ha-fail" not in html
    assert not list((variant_site.path / "heads").glob("*.png"))
    assert "No results recorded yet" in page(variant_site.path, "transfer")  # no results file, no columns
    model = page(variant_site.path, "models/smollm2-135m")  # no records and no scan: no grid, no error
    assert "ha-grid" not in model and "No score matrix recorded for this model yet" in model


def test_circuit_graph_and_benchmark_pages_appear_when_defined(variant_site, built_site):
    png = variant_site.path / "circuits" / "ioi.png"
    assert png.read_bytes().startswith(PNG)
    assert 'src="../ioi.png"' in page(variant_site.path, "circuits/ioi")
    bench = page(variant_site.path, "benchmarks/test-bench")
    assert 'href="../../heads/previous-token/"' in bench
    if not load_catalogue(ROOT).circuits:
        assert not (built_site.path / "circuits").exists()


def test_raw_html_links_work_with_and_without_directory_urls():
    from headatlas.site.pages import SiteBuilder

    cat = load_catalogue(ROOT)
    pretty, plain_urls = SiteBuilder(cat, {}), SiteBuilder(cat, {}, directory_urls=False)
    assert pretty.url("models/gpt2.md", "heads/induction.md") == "../../heads/induction/"
    assert pretty.url("transfer.md", "heads/induction.md", "induction-scoring") == "../heads/induction/#induction-scoring"
    assert pretty.url("heads/index.md", "index.md") == "../"
    assert plain_urls.url("models/gpt2.md", "heads/induction.md") == "../heads/induction.html"
    assert plain_urls.url("transfer.md", "claims.md") == "claims.html"


def test_grid_normalisation_lets_a_skewed_score_win_only_where_it_stands_out():
    from headatlas.site.atlas import ScoreMap

    # an entropy-like score that most heads score high on, and a sparse one with one clear head
    flat = ScoreMap("constant", "c", "scan", [[0.9, 0.92, 0.91, 0.95], [0.93, 0.9, 0.99, 0.92]])
    sparse = ScoreMap("induction", "i", "scan", [[0.0, 0.01, 0.0, 0.4], [0.0, 0.0, 0.02, 0.0]])
    assert flat.normalised()[0][0] == 0.0 and flat.normalised()[1][2] == 1.0
    assert sparse.normalised()[0][3] == 1.0 and sparse.normalised()[0][1] < 0.5
    assert ScoreMap("x", "x", "scan", [[0.5, 0.5], [0.5, 0.5]]).normalised() is None


def test_circuit_page_sets_the_found_circuit_beside_the_published_one():
    """The circuit a claim records as an artifact appears next to the published one, class by
    class, with that claim's verdict; a class with no head found says so."""
    from headatlas.site.pages import SiteBuilder

    cat = load_catalogue(ROOT)
    cid, circuit = next((k, c) for k, c in cat.circuits.items() if c.found_by)
    claim = circuit.found_by.claim
    published = dict(circuit.classes)
    first, *rest = list(published)
    found = {first: ["3.1", "3.2"], **{cls: [] for cls in rest}}
    results = {"smollm2-135m": {"records": {claim: {
        "claim_id": claim, "model": "smollm2-135m", "status": "fail", "time": "2026-01-02T03:04:05Z",
        "artifacts": {circuit.found_by.artifact: found}}}}}
    site = SiteBuilder(cat, results)
    files = {g.src_uri: g.content for g in site.pages()}
    assert files[f"circuits/{cid}-smollm2-135m.png"].startswith(PNG)
    md = files[f"circuits/{cid}.md"]
    row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
    assert all(f"`{h}`" in row for h in published[first])   # published heads
    assert "`3.1`, `3.2`" in row and "(depth 0.1" in row       # found heads, with relative depth
    assert "*none found*" in next(line for line in md.splitlines() if line.startswith(f"| {rest[0]} |"))
    assert "ha-fail" in md and "ha-pass" not in md.split("## Published circuit")[0]
    # Without any record of the finding claim, the page is the published circuit alone.
    alone = {g.src_uri: g.content for g in SiteBuilder(cat, {}).pages()}
    assert "side by side" not in alone[f"circuits/{cid}.md"]
    assert not any(k.startswith(f"circuits/{cid}-") for k in alone)


def test_committed_results_put_the_default_models_ioi_circuit_on_the_circuit_page():
    from headatlas.site.pages import SiteBuilder

    cat = load_catalogue(ROOT)
    cid, circuit = next((k, c) for k, c in cat.circuits.items() if c.found_by)
    results = {p.stem: json.loads(p.read_text()) for p in (ROOT / "results").glob("*.json")}
    found = results["smollm2-135m"]["records"][circuit.found_by.claim]["artifacts"][circuit.found_by.artifact]
    md = SiteBuilder(cat, results).circuit_page(cid)
    assert f"({cid}-smollm2-135m.png)" in md
    for cls, heads in found.items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {cls} |"))
        assert all(f"`{h}`" in row for h in heads)


def test_transfer_page_accounts_for_every_head_type():
    """Entries with claims are rows of the matrix; the others are listed below it with the
    first sentence of their reason, so no head type silently disappears from the page."""
    from headatlas.site.pages import SiteBuilder, first_sentence

    cat = load_catalogue(ROOT)
    results = {p.stem: json.loads(p.read_text()) for p in (ROOT / "results").glob("*.json")}
    md = SiteBuilder(cat, results).transfer_page()
    assert "## Head types without a claim" in SiteBuilder(cat, {}).transfer_page()
    matrix, _, rest = md.partition("## Head types without a claim")
    for e in cat.heads.values():
        link = f"[{e.name}](heads/{e.id}.md)"
        if e.claims:
            assert link in matrix and link not in rest
        else:
            row = next(line for line in rest.splitlines() if line.startswith(f"| {link} |"))
            assert first_sentence(e.no_claim_reason).split()[0] in row
    assert first_sentence("No claim: the set (Smith et al. 2020) is missing. A claim needs it.") == \
        "No claim: the set (Smith et al. 2020) is missing."
