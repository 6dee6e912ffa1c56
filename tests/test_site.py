"""The generated site: built with `mkdocs build --strict` from the catalogue and fake results,
then read back as HTML, so each test checks what a reader would actually see."""

from __future__ import annotations

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
    scoring = section(html, "induction-scoring", "induction-mean-ablation")
    ablation = section(html, "induction-mean-ablation", "induction-gpt2-published")
    assert '<span class="ha-badge ha-pass">pass</span>' in scoring
    assert '<span class="ha-badge ha-fail">fail</span>' in ablation and "ha-pass" not in ablation
    assert "loss_increase = 0.42 is below the threshold 1" in ablation  # the reason it failed


def test_result_shows_measured_values_against_thresholds(built_site):
    scoring = section(page(built_site.path, "heads/induction"), "induction-scoring", "induction-mean-ablation")
    row = table_row(scoring, "control_best_score</code> = 0.0123")
    assert "best_score &gt;= 0.25" in row and "<td>0.432</td>" in row
    assert "abcdef012345" in scoring  # short weights hash
    assert "2026-01-02" in scoring


def test_heatmap_is_a_png_next_to_the_page(built_site):
    page_dir = built_site.path / "heads" / "induction"
    imgs = [i for i in Tags(page(built_site.path, "heads/induction")).tags["img"] if "ha-heatmap" in i.get("class", "")]
    assert len(imgs) == 1, "one record with scores, so one heatmap"
    png = (page_dir / imgs[0]["src"]).resolve()
    assert png.is_file(), png
    assert png.read_bytes().startswith(PNG)
    assert png.stat().st_size > 5000  # a real figure, not an empty image


def test_not_run_is_shown_as_not_run_never_as_passing(built_site):
    published = section(page(built_site.path, "heads/induction"), "induction-gpt2-published")
    assert '<span class="ha-badge ha-not-run">not run</span>' in published
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
    assert "ha-fail" in table_row(html, ">induction-mean-ablation<")
    assert "no result recorded yet" in table_row(html, ">previous-token-scoring<")  # no fake record for it


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
    for html_file in [built_site.path / "index.html", built_site.path / "heads/induction/index.html"]:
        tags = Tags(html_file.read_text())
        srcs = [t.get("src", "") for t in tags.tags.get("script", [])] + \
               [t.get("href", "") for t in tags.tags.get("link", []) if t.get("rel") == "stylesheet"]
        assert not [s for s in srcs if s.startswith(("http:", "https:", "//"))], srcs
        assert "fonts.googleapis" not in html_file.read_text()


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


def test_circuit_graph_and_benchmark_pages_appear_when_defined(variant_site, built_site):
    png = variant_site.path / "circuits" / "ioi.png"
    assert png.read_bytes().startswith(PNG)
    assert 'src="../ioi.png"' in page(variant_site.path, "circuits/ioi")
    bench = page(variant_site.path, "benchmarks/test-bench")
    assert 'href="../../heads/previous-token/"' in bench
    if not load_catalogue(ROOT).circuits:
        assert not (built_site.path / "circuits").exists()
