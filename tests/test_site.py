"""The generated site: built with `mkdocs build --strict` from the catalogue and fake results,
then read back as HTML, so each test checks what a reader would actually see."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
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


# ---------------------------------------------------------------------------- the main build


def test_build_is_strict(built_site):
    # (its time is a benchmark figure, not an assertion: a timed test fails on a busy machine)
    assert (built_site.path / "index.html").is_file()


def test_induction_page_shows_each_verdict_with_its_own_badge(built_site):
    html = page(built_site.path, "heads/induction")
    scoring = section(html, "induction-scoring--smollm2-135m", "induction-scoring--gemma-3-270m")
    ablation = section(html, "induction-mean-ablation", "induction-gpt2-published")
    assert re.search(r'<span class="ha-badge ha-holds"[^>]*>holds</span>', scoring)
    assert "(<abbr" in scoring and ">calibration model</abbr>)" in scoring
    # absent on the calibration model is a broken claim: never green, and said so
    assert re.search(r'<span class="ha-badge ha-absent"[^>]*>absent</span>', ablation) and "ha-holds" not in ablation
    assert "Absent on the calibration model" in ablation
    # the evidence is the decisive check (the second one), not the first
    assert "<strong>Evidence</strong>" in ablation
    assert "loss_ratio 1.2 [1.1, 1.3]; needs &gt;= 2" in ablation
    assert "<strong>Why:</strong> loss_ratio = 1.2 fails <code>loss_ratio &gt;= 2</code>." in ablation
    assert "<code>loss_ratio &gt;= 2</code> (decisive)" in ablation
    assert "<code>headatlas verify --claim induction-mean-ablation --model smollm2-135m</code>" in ablation


def test_near_miss_on_a_held_out_model_gives_the_miss_and_the_tolerance(built_site):
    html = page(built_site.path, "heads/induction")
    gemma = section(html, "induction-scoring--gemma-3-270m", "induction-mean-ablation")
    badge_ = re.search(r'<span class="ha-badge ha-near-miss" title="([^"]*)">near miss</span>', gemma)
    assert badge_, gemma[:500]
    assert "top_heads_depth 0.294; needs to lie in the layer band [0.3, 0.8]" in badge_.group(1)
    assert "a miss of 0.006, within its tolerance of 0.1" in badge_.group(1)
    assert "the protocol&#x27;s verdict: absent" in badge_.group(1)
    assert "ha-holds" not in gemma and "calibration model" not in gemma.split("</p>")[0]
    assert ">held-out</abbr>" in gemma
    assert "Near miss on gemma-3-270m (held-out)" in gemma
    assert "(all 3 data variants)" in gemma


def test_result_shows_evidence_against_null_threshold_and_control(built_site):
    scoring = section(page(built_site.path, "heads/induction"), "induction-scoring--smollm2-135m",
                      "induction-scoring--gemma-3-270m")
    evidence = re.search(r'<p class="ha-evidence">(.*?)</p>', scoring, flags=re.S).group(1)
    assert ("top_head_score 0.432 [0.402, 0.452] vs null 99th pct 0.05 (p = 0.004); needs &gt;= 0.25; "
            "control control_top_head_score 0.0123 fails, as it must") in evidence
    row = table_row(scoring.split("Held-out data variants:")[0], "top_head_score &gt;= 0.25")
    assert "<strong>0.432</strong> [0.402, 0.452]" in row   # the primary variant's value and its interval
    assert "0.41–0.446" in row                              # its spread over the variants
    assert "✓ beats 99th pct 0.05" in row and "✓ holds 3/3" in row
    assert 'title="control_top_head_score">0.0123</span>' in row and "✓ fails 3/3" in row
    assert "±0.05" in row
    header = re.search(r"<thead>.*?</thead>", scoring.split("Held-out data variants:")[0], flags=re.S).group(0)
    for word in ("interval", "null", "control", "tolerance"):
        assert re.search(rf'<abbr title="[^"]+">{word}</abbr>', header), word
    gauge = re.search(r'<svg class="ha-gauge".*?</svg>', scoring, flags=re.S).group(0)
    assert "top_head_score &gt;= 0.25: measured 0.432, 0.41, 0.446" in gauge
    assert gauge.count("<circle") == 3 and "ha-gauge-control" in gauge
    assert "abcdef012345" in scoring  # short weights hash
    assert re.search(r'last refreshed <strong class="ha-refreshed"><time datetime="2026-01-02T03:04:05\+00:00"[^>]*>'
                     r"2026-01-02</time>", scoring)


def test_a_knockout_check_says_on_its_page_that_falling_short_reads_inconclusive(built_site):
    html = page(built_site.path, "heads/content-gatherer")
    knock = table_row(html, "<code>knockout_margin_drop &gt;= 0.2</code>")
    assert "Knock-out check" in knock and "reads inconclusive, not absent" in knock
    plain = table_row(html, "<code>question_object_attention &gt;= 0.2</code>")
    assert "Knock-out check" not in plain


def test_result_has_a_table_per_data_variant_and_the_spread(built_site):
    scoring = section(page(built_site.path, "heads/induction"), "induction-scoring--smollm2-135m",
                      "induction-scoring--gemma-3-270m")
    variants = scoring[scoring.index("Held-out data variants:"):]
    for name, value in (("40 tokens seed 0", "0.432 [0.402, 0.452]"), ("25 tokens seed 1", "0.41 [0.38, 0.43]"),
                        ("60 tokens seed 2", "0.446 [0.415, 0.466]")):
        assert name in variants
        assert f"<td>{value}</td>" in variants, value
    assert "<code>block_len=25, seed=1</code>" in variants  # what each variant changes
    assert "✓ holds (decisive)" in variants
    spread = table_row(variants, "<code>control_top_head_score</code>")
    assert "0.0101–0.0145" in spread  # min–max of a measured value over the variants


def test_head_page_shows_when_it_was_last_refreshed(built_site):
    html = page(built_site.path, "heads/induction")
    facts = html[:html.index('id="claims"')]
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
    for cls, name, magic in (("ha-attention", "induction-scoring-smollm2-135m-attention.png", PNG),
                             ("ha-effects", "induction-mean-ablation-smollm2-135m-effects.svg", b"<?xml")):
        imgs = [i for i in tags if cls in i.get("class", "")]
        assert len(imgs) == 1, cls
        assert imgs[0]["src"].endswith(name)
        assert (page_dir / imgs[0]["src"]).resolve().read_bytes().startswith(magic)
    svg = (page_dir / imgs[0]["src"]).resolve().read_text()
    # horizontal bars with value labels; the check whose value is a bar gives the dashed threshold
    # line, that bar's interval and the null band; controls are grey
    assert 'id="ha-threshold"' in svg and 'id="ha-null-band"' in svg and 'id="ha-null-at"' in svg
    assert "0.42 [0.38, 0.45]" in svg and "needs &gt;= 0.1" in svg
    assert "together" in svg and "control 9.2" in svg  # labels are text, wrapped, never truncated
    grey = re.search(r'<g id="ha-bar-5">.*?</g>', svg, flags=re.S).group(0)
    assert "#9e9e9e" in grey and "#3949ab" in re.search(r'<g id="ha-bar-0">.*?</g>', svg, flags=re.S).group(0)
    caption = page(built_site.path, "heads/induction")
    assert "dashed red line: the check&#x27;s threshold" in caption or "dashed red line: the check's threshold" in caption
    # records without those artifacts (gemma) get no such figure, and no error
    assert not (built_site.path / "heads" / "induction-scoring-gemma-3-270m-attention.png").exists()


def test_not_run_is_shown_as_not_run_never_as_passing(built_site):
    html = page(built_site.path, "heads/induction")
    # said once per page, with its reason, where the page says where the head holds; no date for a run
    # that never happened
    lead = html[:html.index('id="claims"')]
    where = table_row(lead, "Where it holds")
    assert re.search(r'>gpt2</a> <span class="ha-badge ha-not-run"[^>]*>not run</span>', where)
    assert "weights unavailable offline (fake reason for the site test)" in where
    assert len(re.findall(r'class="ha-badge ha-not-run"', html)) == 1
    assert re.sub(r'title="[^"]*"', "", html).count("weights unavailable offline") == 1
    published = section(html, "induction-gpt2-published", "papers")
    assert "ha-holds" not in published and "ha-refreshed" not in published
    assert "headatlas verify --claim induction-gpt2-published --model gpt2" in published
    row = table_row(page(built_site.path, "claims"), "induction-gpt2-published")
    assert "ha-not-run" in row and "ha-holds" not in row
    assert "ha-not-run" in table_row(page(built_site.path, "models/gpt2"), "induction-gpt2-published")


def test_claims_page_lists_every_claim_on_every_model(built_site):
    html = page(built_site.path, "claims")
    cat = load_catalogue(ROOT)
    for claim_id, (_, spec) in cat.claims.items():
        for model in spec.models:
            row = re.search(rf"<tr>(?:(?!</tr>).)*{claim_id}(?:(?!</tr>).)*>{model}</a>(?:(?!</tr>).)*</tr>", html,
                            flags=re.S)
            assert row, (claim_id, model)
            # every claim shows the command that re-runs it
            assert f"headatlas verify --claim {claim_id} --model {model}" in row.group(0), (claim_id, model)
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    ablation = [r for r in rows if ">induction-mean-ablation<" in r]
    smollm2 = next(r for r in ablation if ">smollm2-135m<" in r)
    assert "ha-absent" in smollm2 and ">calibration<" in smollm2
    # the decisive check (the record's second), not the first
    assert "loss_ratio 1.2 [1.1, 1.3]; needs &gt;= 2" in smollm2 and "loss_increase" not in smollm2
    assert "no result recorded yet" in next(r for r in ablation if ">gemma-3-270m<" in r)  # no fake record for it
    gemma = next(r for r in rows if ">induction-scoring<" in r and ">gemma-3-270m<" in r)
    assert "ha-near-miss" in gemma and "ha-holds" not in gemma and ">held-out<" in gemma
    assert "outside the layer band 0.3–0.8" in gemma  # the reason, next to the badge
    twin = next(r for r in rows if ">previous-token-scoring<" in r and ">smollm2-135m-random<" in r)
    assert "holds on random weights" in twin and "ha-error" in twin and "ha-holds" not in twin
    assert "twin: must not hold" in twin


def test_claims_page_headlines_held_out_counts(built_site):
    html = page(built_site.path, "claims")
    intro = html[html.index("<h1"):html.index('class="ha-sortable')]
    assert re.search(r'On <abbr title="[^"]+">held-out models</abbr>: <strong>0 holds of 3</strong> '
                     r"\(1 near miss, 1 inconclusive, 1 not run\)", intro), intro
    assert "smollm2-135m: 2 holds of 3 (1 absent)" in intro
    assert "(must not hold): 1 of 2 hold" in intro


def test_transfer_matrix_has_a_row_per_head_with_claims_and_a_column_per_model(built_site):
    html = page(built_site.path, "transfer")
    cat = load_catalogue(ROOT)
    header = re.search(r"<thead>.*?</thead>", html, flags=re.S).group(0).replace("<wbr>", "")
    models = re.findall(r">([a-z0-9.-]+)</a>", header)
    # the calibration model first, the held-out models, then the random-weights twin as a control
    assert models == ["smollm2-135m", "gemma-3-270m", "gpt2", "smollm2-135m-random"], models
    assert ">calibration model</abbr>" in header and ">held-out</abbr>" in header
    assert "random-weights twin: must not hold" in header
    assert ">gpt2-medium<" not in header  # in the catalogue, but no results file
    rows = re.findall(r"<tr>.*?</tr>", html.split("<tbody>")[1].split("</tbody>")[0], flags=re.S)
    assert len(rows) == sum(1 for e in cat.heads.values() if e.claims)
    induction = table_row(html, ">Induction head</a>")
    cells = re.findall(r"<td[^>]*>.*?</td>", induction, flags=re.S)
    smollm2, gemma, gpt2, twin = cells[2:6]
    # each cell names its model (shown where a row becomes a card on a phone, the header being hidden)
    assert [re.search(r'data-model="([^"]+)"', c).group(1) for c in cells[2:6]] == models
    assert 'class="ha-tf-label"><a href="../models/gemma-3-270m/">gemma-<wbr>3-<wbr>270m</a>' in gemma
    assert ">partly holds<" in smollm2  # scoring holds, ablation is absent
    assert "heads L18H6, L17H3, L17H4" in smollm2 and "top_head_score 0.432 (0.41–0.446)" in smollm2
    assert ">near miss<" in gemma and "a miss of 0.006, within its tolerance of 0.1" in gemma
    assert ">not run<" in gpt2
    assert ">absent: as required<" in twin and "ha-control-ok" in twin
    for cell_html in (smollm2, gemma, gpt2, twin):
        assert "ha-holds" not in cell_html
    for cell_html in (smollm2, gemma, gpt2):
        note = re.search(r'href="#(tf-\d+)"', cell_html).group(1)
        assert f'<li id="{note}">' in html  # each cell that does not hold has a footnote with the evidence
    assert "weights unavailable offline (fake reason for the site test)" in html
    previous = re.findall(r"<td[^>]*>.*?</td>", table_row(html, ">Previous-token head</a>"), flags=re.S)
    assert ">holds<" in previous[2] and "ha-holds" in previous[2]
    assert ">inconclusive<" in previous[3]
    assert ">holds on random weights<" in previous[5] and "ha-error" in previous[5]


def test_model_page_grid_colours_heads_by_type_and_links_them(built_site):
    html = page(built_site.path, "models/smollm2-135m")
    grid = re.search(r'<table class="ha-grid".*?</table>', html, flags=re.S).group(0)
    rows = re.findall(r"<tr>.*?</tr>", grid.split("<tbody>")[1], flags=re.S)
    assert len(rows) == 30 and all(r.count("<td") == 9 for r in rows)
    # the induction record's best head, 18.6, is coloured as induction and links to its page
    cell_18_6 = re.findall(r"<td.*?</td>", rows[18], flags=re.S)[6]
    assert 'href="../../heads/induction/"' in cell_18_6 and "0.43" in cell_18_6 and ">IND<" in cell_18_6
    assert 'title="L18H6: Induction head 0.432' in cell_18_6
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
    assert "calibration model</abbr>" in html


def test_twin_model_page_says_it_is_a_control(built_site):
    html = page(built_site.path, "models/smollm2-135m-random")
    assert ">random-weights twin</abbr> of" in html and "no claim may hold on it" in html
    assert "holds on random weights" in html
    models = page(built_site.path, "models")
    assert "random-weights twin: must not hold" in table_row(models, ">smollm2-135m-random</a>")


def test_head_pages_share_heads_from_the_records_selections(built_site):
    induction = page(built_site.path, "heads/induction")
    facts = induction[:induction.index('id="claims"')]
    row = table_row(facts, "Shares heads with")
    shared_previous = row[row.index('href="../previous-token/"'):]
    assert "previous-token-scoring</code> holds" in shared_previous and "L17H3" in shared_previous.split("<br>")[0]
    previous = page(built_site.path, "heads/previous-token")
    back = table_row(previous[:previous.index('id="claims"')], "Shares heads with")
    assert 'href="../induction/"' in back and "L17H3" in back[back.index('href="../induction/"'):]
    assert "L16H0" not in back  # chosen as previous-token twice (its own claim and a group): one type, not shared
    assert "smollm2-135m-random" not in row + back  # the twin's choices are noise, not membership


def test_glossary_defines_the_table_words(built_site):
    html = page(built_site.path, "glossary")
    for word in ("Tolerance", "Committed value", "Control", "Null", "Interval", "Calibration model",
                 "Held-out model", "Random-weights twin"):
        assert re.search(rf"<h3[^>]*>{word}", html), word
    for key in ("holds", "near miss", "inconclusive", "absent", "not applicable", "error", "not run"):
        assert re.search(rf'<span class="ha-badge [^"]+">{key}</span>', html), key
    assert "L21H2 is head 2 of layer 21" in html


def test_model_page_without_scores_says_how_to_get_them(built_site):
    html = page(built_site.path, "models/gpt2")
    assert "ha-grid" not in html and "No score matrix recorded for this model yet" in html


def test_no_edit_links_to_a_repository_that_does_not_exist(built_site):
    """The project names no public repository: no page links to one to edit or view its source."""
    for html in (page(built_site.path, "heads/induction"), page(built_site.path, "methods/scoring"),
                 (built_site.path / "index.html").read_text()):
        assert not any(a.get("rel") == "edit" for a in Tags(html).tags["a"])
        assert "github.com/head-atlas" not in html and 'class="md-source"' not in html


def test_claim_test_files_have_source_pages(built_site):
    html = page(built_site.path, "heads/induction")
    link = re.search(r'<a href="([^"]*source/claims/claim_induction/)"><code>claims/claim_induction.py</code></a>', html)
    assert link, "the Test row links to the source page"
    src = page(built_site.path, "source/claims/claim_induction")
    code = re.search(r'<div class="highlight"><pre>(.*?)</pre>', src, flags=re.S).group(1)
    shown = unescape(re.sub(r"<[^>]+>", "", code))
    assert shown.strip() == (ROOT / "claims" / "claim_induction.py").read_text().strip()  # the whole file
    assert 'href="../../../heads/induction/#induction-scoring"' in src


def test_notebooks_can_be_downloaded(built_site):
    for name in ("find-induction-heads", "trace-ioi-circuit"):
        html = page(built_site.path, f"notebooks/{name}")
        assert f'<a href="{name}.ipynb" download>' in html
        nb = built_site.path / "notebooks" / name / f"{name}.ipynb"
        assert json.loads(nb.read_text())["cells"], nb


def test_bibliography_disambiguates_same_author_year(built_site):
    html = page(built_site.path, "bibliography")
    assert "et al.." not in html and "et al.." not in page(built_site.path, "heads/induction")
    cat = load_catalogue(ROOT)
    shorts: dict[str, list[str]] = {}
    for key, ref in cat.bibliography.items():
        shorts.setdefault(ref.short, []).append(key)
    clash = sorted(next(keys for keys in shorts.values() if len(keys) > 1))
    short = cat.bibliography[clash[0]].short
    assert f">{short[:-1]}a)" in html and f">{short[:-1]}b)" in html


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
    assert 'class="ha-sortable ha-index"' in html and "javascripts/table.js" in html
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


def _check(value, check="top_head_score >= 0.25", outcome="absent", tolerance=0.05, **kw):
    return {"variant": "default", "check": check, "measure": check.split()[0], "value": value,
            "tolerance": tolerance, "outcome": outcome, "why": "", "decisive": True, **kw}


def test_verdicts_follow_the_protocol():
    from headatlas.site.verdicts import CALIBRATION, CONTROL, HELD_OUT, verdict

    holds = {"verdict": "holds", "checks": [_check(0.42, outcome="holds", interval=[0.38, 0.45],
                                                   null={"percentile": 99, "at": 0.05, "p": 0.001, "beats": True})]}
    v = verdict(holds, HELD_OUT)
    assert (v.key, v.css, v.label, v.passing) == ("holds", "ha-holds", "holds", True)
    assert v.evidence == "top_head_score 0.42 [0.38, 0.45] vs null 99th pct 0.05 (p = 0.001); needs >= 0.25"
    absent = {"verdict": "absent", "checks": [_check(0.1, interval=[0.08, 0.12])]}
    assert verdict(absent, HELD_OUT).label == "absent" and not verdict(absent, HELD_OUT).passing
    assert verdict(absent, HELD_OUT).reason == "top_head_score = 0.1 fails `top_head_score >= 0.25`"
    for key in ("not applicable", "error", "not run"):
        v = verdict({"verdict": key, "reason": "not run: why", "checks": []}, CALIBRATION)
        assert (v.key, v.label, v.reason, v.passing) == (key, key, "why", False)
    assert verdict(None).label == "no result recorded yet"
    # an old record (status, no verdict) is stale, never read as any verdict
    stale = verdict({"status": "pass", "claim_id": "c", "model": "m"})
    assert stale.key == "stale" and not stale.passing and "headatlas verify --claim c --model m" in stale.reason
    assert verdict({"verdict": "HOLDS", "checks": []}).key == "error"
    # on the random-weights twin, holding is the failure and not holding is as required
    assert verdict(holds, CONTROL).label == "holds on random weights" and not verdict(holds, CONTROL).passing
    assert verdict(holds, CONTROL).css == "ha-error"
    assert verdict(absent, CONTROL).label == "absent: as required" and verdict(absent, CONTROL).as_required


def test_near_miss_is_a_miss_within_the_tolerance_of_the_decisive_check():
    from headatlas.site.verdicts import verdict

    near = {"verdict": "absent", "checks": [
        _check(0.5, "other >= 0", outcome="holds", decisive=False),
        _check(0.22, interval=[0.2, 0.24])]}
    v = verdict(near)
    assert (v.key, v.css, v.label, v.passing) == ("near miss", "ha-near-miss", "near miss", False)
    assert "a miss of 0.03, within its tolerance of 0.05 (the protocol's verdict: absent)" in v.reason
    assert verdict({"verdict": "absent", "checks": [_check(0.19)]}).key == "absent"  # misses by 0.06 > 0.05
    assert verdict({"verdict": "absent", "checks": [_check(0.2)]}).key == "near miss"  # exactly the tolerance
    band = {"verdict": "absent", "checks": [_check(0.294, "top_heads_depth in [0.3, 0.8]", tolerance=0.1)]}
    assert verdict(band).key == "near miss"
    assert verdict({"verdict": "absent", "checks": [_check(0.95, "top_heads_depth in [0.3, 0.8]",
                                                           tolerance=0.1)]}).key == "absent"
    lower = {"verdict": "absent", "checks": [_check(-1.9, "nnm_ov_self_z <= -2", tolerance=0.2)]}
    assert verdict(lower).key == "near miss"
    # inconclusive because the null is not beaten: the value passes its threshold, so no near miss
    null = {"verdict": "inconclusive", "checks": [_check(0.6, outcome="inconclusive", why="does not beat the null",
                                                         null={"percentile": 99, "at": 0.65, "beats": False})]}
    assert verdict(null).key == "inconclusive" and verdict(null).reason == "does not beat the null"
    # only the decisive check counts: a near first check does not make a far decisive one near
    far = {"verdict": "absent", "checks": [_check(0.24, outcome="absent", decisive=False), _check(0.01)]}
    assert verdict(far).key == "absent"


def test_badges_draw_only_holding_verdicts_as_passing():
    from headatlas.site.pages import vbadge
    from headatlas.site.verdicts import CSS, HELD_OUT, Verdict

    assert "ha-holds" not in badge() and "ha-holds" not in badge("no claim yet")
    for key, css in CSS.items():
        assert ("ha-holds" in vbadge(Verdict(key, css, key, "", "", HELD_OUT))) == (key == "holds")


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
    models = root / "catalogue" / "models.yaml"  # a test sample may not name the removed claim
    models.write_text(models.read_text().replace("previous-token-scoring, ", ""))
    benchmarks = root / "catalogue" / "benchmarks.yaml"
    existing = yaml.safe_load(benchmarks.read_text()) if benchmarks.exists() else []
    benchmarks.write_text(yaml.safe_dump(existing + [{
        "id": "test-bench", "name": "Test bench", "kind": "mechanism-exploration", "task": "Copying",
        "description": "A benchmark for the site test.", "papers": ["olsson2022induction"]}]))
    (root / "catalogue" / "circuits.yaml").write_text(yaml.safe_dump([{
        "id": "ioi", "name": "IOI circuit", "model": "gpt2", "source": "wang2023ioi",
        "version_note": "Test circuit.",
        "classes": {"previous token": ["2.2", "4.11"], "induction": ["5.5", "6.9"], "name mover": ["9.9", "10.0"]},
        "class_heads": {"previous token": "previous-token", "induction": "induction"},
        "outputs": ["logits"], "edges": [["previous token", "induction"], ["induction", "name mover"],
                                         ["name mover", "logits"]],
        "flow_note": "Test flow note."}]))
    empty = tmp_path_factory.mktemp("no-results")
    return build_site(tmp_path_factory.mktemp("variant-site"), HEADATLAS_ROOT=str(root),
                      HEADATLAS_RESULTS=str(empty / "absent"))


def test_entry_without_claims_says_so(variant_site):
    html = page(variant_site.path, "heads/previous-token")
    assert "No claim yet" in html and 'class="ha-badge ha-none"' in html
    assert "Scoring it needs a probe we have not written yet (test reason)." in html
    assert "ha-heatmap" not in html


def test_without_results_every_claim_says_no_result_yet(variant_site):
    html = page(variant_site.path, "claims")
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)[1:]
    assert rows and all("no result recorded yet" in r for r in rows)
    assert "ha-holds" not in html and "ha-absent" not in html
    assert not list((variant_site.path / "heads").glob("*.png"))
    assert "No results recorded yet" in page(variant_site.path, "transfer")  # no results file, no columns
    model = page(variant_site.path, "models/smollm2-135m")  # no records and no scan: no grid, no error
    assert "ha-grid" not in model and "No score matrix recorded for this model yet" in model


def test_circuit_graph_and_benchmark_pages_appear_when_defined(variant_site, built_site):
    html = page(variant_site.path, "circuits/ioi")
    svg = re.search(r'<svg class="ha-circuit-svg".*?</svg>', html, flags=re.S).group(0)
    # information flow, not "related entries": previous token -> induction, name mover -> logits
    assert 'data-from="previous token" data-to="induction"' in svg
    assert 'data-from="name mover" data-to="logits"' in svg
    assert svg.count('class="ha-flow-edge"') == 3  # the circuit's own edges (catalogue/circuits.yaml), no others
    assert 'href="../../heads/induction/"' in svg
    assert "as traced by" in html and ": test flow note. " in html  # the flow note from the data
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
        "claim_id": claim, "model": "smollm2-135m", "verdict": "absent", "checks": [], "reason": "x",
        "time": "2026-01-02T03:04:05Z",
        "artifacts": {circuit.found_by.artifact: found}}}}}
    site = SiteBuilder(cat, results)
    files = {g.src_uri: g.content for g in site.pages()}
    md = files[f"circuits/{cid}.md"]
    found_svg = md.split("## As found in smollm2-135m")[1]
    assert f'data-class="{first}"' in found_svg and "3.1  3.2" in found_svg
    assert 'class="ha-flow-missing"' in found_svg  # a class with no head found is drawn dashed
    row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
    assert all(f"`{h}`" in row for h in published[first])   # published heads
    assert "`3.1`, `3.2`" in row and "(depth 0.1" in row       # found heads, with relative depth
    assert "*none found*" in next(line for line in md.splitlines() if line.startswith(f"| {rest[0]} |"))
    assert "ha-absent" in md and "ha-holds" not in md.split("## Published circuit")[0]
    # the arrows are the circuit's edges from catalogue/circuits.yaml, in the published picture and as found
    published_svg = md.split("## Published circuit")[1].split("## As found in")[0]
    drawn = re.findall(r'class="ha-flow-edge" data-from="([^"]+)" data-to="([^"]+)"', published_svg)
    assert drawn == [tuple(e) for e in circuit.edges] and len(drawn) >= 5
    assert len(re.findall(r'class="ha-flow-edge"', found_svg)) == len(circuit.edges)
    # Without any record of the finding claim, the page is the published circuit alone.
    alone = {g.src_uri: g.content for g in SiteBuilder(cat, {}).pages()}
    assert "side by side" not in alone[f"circuits/{cid}.md"]
    assert "## As found in" not in alone[f"circuits/{cid}.md"]


def test_committed_results_put_the_default_models_ioi_circuit_on_the_circuit_page():
    from headatlas.site.pages import SiteBuilder

    cat = load_catalogue(ROOT)
    cid, circuit = next((k, c) for k, c in cat.circuits.items() if c.found_by)
    results = {p.stem: json.loads(p.read_text()) for p in (ROOT / "results").glob("*.json")}
    found = results["smollm2-135m"]["records"][circuit.found_by.claim]["artifacts"][circuit.found_by.artifact]
    md = SiteBuilder(cat, results).circuit_page(cid)
    assert "## As found in smollm2-135m" in md
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
        if e.claims:  # a row of the matrix (raw HTML)
            assert f'<a href="../heads/{e.id}/">{e.name}</a>' in matrix and link not in rest
        else:
            row = next(line for line in rest.splitlines() if line.startswith(f"| {link} |"))
            assert first_sentence(e.no_claim_reason).split()[0] in row
    assert first_sentence("No claim: the set (Smith et al. 2020) is missing. A claim needs it.") == \
        "No claim: the set (Smith et al. 2020) is missing."


def _grid_results(cs_name: str = "OV own-token logit z-score (negative = suppresses the attended token)",
                  extra: dict | None = None) -> dict:
    """smollm2-shaped score matrices like the committed ones that were mislabelled: copy
    suppression's OV self-score is most negative at 24.4 (-4.07), strongly positive (copying)
    at 22.7, 23.2 and 24.5; backup name mover peaks at 24.4 too."""
    import random

    rnd = random.Random(0)
    cs = [[round(rnd.uniform(-0.8, 0.8), 3) for _ in range(9)] for _ in range(30)]
    cs[24][4], cs[23][3] = -4.07, -3.1
    cs[22][7], cs[23][2], cs[24][5] = 2.9, 4.16, 3.5
    bnm = [[round(rnd.uniform(-0.01, 0.01), 4) for _ in range(9)] for _ in range(30)]
    bnm[24][4], bnm[28][0] = 0.158, 0.09
    nm = [[round(rnd.uniform(-0.02, 0.02), 4) for _ in range(9)] for _ in range(30)]
    nm[23][0] = 0.31
    art = {"scores": cs, "score_name": cs_name, "top_heads": ["24.4", "23.3"], **(extra or {})}
    recs = {"copy-suppression-ov": {"claim_id": "copy-suppression-ov", "head_id": "copy-suppression", "verdict": "holds",
                                    "checks": [], "artifacts": art},
            "backup-name-mover-self-repair": {"claim_id": "backup-name-mover-self-repair", "head_id": "backup-name-mover",
                                              "verdict": "holds", "checks": [],
                                              "artifacts": {"scores": bnm, "score_name": "rise", "top_heads": ["24.4"]}},
            "name-mover-scoring": {"claim_id": "name-mover-scoring", "head_id": "name-mover", "verdict": "holds",
                                   "checks": [], "artifacts": {"scores": nm, "score_name": "io", "top_heads": ["23.0"]}}}
    return {"smollm2-135m": {"model": "smollm2-135m", "records": recs}}


def _grid_cells(md: str) -> dict[str, tuple[str, str]]:
    """'L.H' -> (cell labels, raw score shown) for every coloured cell of a grid."""
    grid = re.search(r'<table class="ha-grid".*?</table>', md, flags=re.S).group(0)
    out = {}
    for layer, row in enumerate(re.findall(r"<tr>.*?</tr>", grid.split("<tbody>")[1], flags=re.S)):
        for head, td in enumerate(re.findall(r"<td.*?</td>", row, flags=re.S)):
            m = re.search(r'class="ha-cell-type">(.*?)</span><span class="ha-cell-score">([^<]*)<', td)
            if m:
                out[f"{layer}.{head}"] = (m.group(1).replace("<wbr>", ""), m.group(2))
    return out


@pytest.mark.parametrize("cs_name, extra", [
    ("OV own-token logit z-score (negative = suppresses the attended token)", None),  # named and ranked so
    ("OV own-token logit z-score", None),                                             # the top heads alone say so
    ("OV score", {"stronger": "lower", "top_heads": []}),                             # the artifact says so
])
def test_grid_negates_lower_is_stronger_scores_before_normalising(cs_name, extra):
    """Copy suppression is a negative OV self-score: the grid must name the head with the most
    negative score (24.4, -4.07), never the copying heads with large positive scores."""
    from headatlas.site.pages import SiteBuilder

    site = SiteBuilder(load_catalogue(ROOT), _grid_results(cs_name, extra))
    md = "\n".join(site.grid_section("smollm2-135m", "models/smollm2-135m.md"))
    cells = _grid_cells(md)
    label = site.type_labels["copy-suppression"]
    assert label in cells["24.4"][0].split("/") and cells["24.4"][1] in ("-4.07", "0.16")
    for head in ("22.7", "23.2", "24.5"):  # +2.9 to +4.2: copying, not copy suppression
        assert label not in cells.get(head, ("", ""))[0].split("/"), (head, cells.get(head))
    assert "lower is stronger" in md
    # 24.4 stands out on backup name mover too: one head, two types, both named
    assert site.type_labels["backup-name-mover"] in cells["24.4"][0].split("/")
    # every type in the legend says how many heads it names
    legend = md[md.index('class="ha-legend"'):]
    assert legend.count("names 1 head") + legend.count("names 2 heads") >= 3


def test_grid_legend_says_when_a_type_names_no_head():
    from headatlas.site.atlas import ScoreMap, cell_types

    strong = ScoreMap("a", "a", "scan", [[0.0, 0.0, 0.0, 9.0], [0.0, 0.0, 0.0, 0.0]])
    weak = ScoreMap("b", "b", "scan", [[0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    assert cell_types([strong, weak]) == {"a": ["0.3"], "b": ["0.3"]}  # both stand out on the same head
    lower = ScoreMap("c", "c", "scan", [[0.0, 0.1, 0.0, -3.0], [0.2, 0.0, 3.0, 0.0]], lower=True)
    assert cell_types([lower]) == {"c": ["0.3"]}
    assert ScoreMap("c", "c", "scan", lower.scores).normalised()[1][2] == 1.0  # the old, wrong reading


def test_a_type_sharing_many_heads_is_one_line_naming_eight_of_them():
    from headatlas.site.pages import SiteBuilder

    many = [f"{layer}.{head}" for layer in (17, 18) for head in range(6)]          # 12 heads
    results = {"smollm2-135m": {"records": {
        "global-retrieval-cache": {"claim_id": "global-retrieval-cache", "head_id": "global-retrieval",
                                   "verdict": "holds", "checks": [], "selection": {"heads": many}},
        "induction-scoring": {"claim_id": "induction-scoring", "head_id": "induction", "verdict": "holds",
                              "checks": [], "selection": {"heads": many[:10]}}}}}
    site = SiteBuilder(load_catalogue(ROOT), results)
    row = site.shares_fact(site.cat.heads["induction"], "heads/induction.md")
    assert row.count("global-retrieval.md") == 1                                   # one line for the type
    assert "L17H0, L17H1" in row and "L18H1 and 2 more" in row and "L18H2" not in row


def test_membership_is_one_table_and_pages_cannot_contradict_it():
    from headatlas.site.pages import SiteBuilder

    def rec(claim, hid, heads, groups=None):
        return {"claim_id": claim, "head_id": hid, "verdict": "holds", "checks": [],
                "selection": {"heads": heads, **({"groups": groups} if groups else {})}}
    results = {"smollm2-135m": {"records": {
        "copy-suppression-ov": rec("copy-suppression-ov", "copy-suppression", ["24.4", "23.3"]),
        "negative-name-mover-scoring": rec("negative-name-mover-scoring", "negative-name-mover", ["24.4"],
                                           {"backup name movers": ["28.0"], "control": ["3.1"]}),
        "backup-name-mover-self-repair": rec("backup-name-mover-self-repair", "backup-name-mover", ["28.0", "23.3"])}},
        "smollm2-135m-random": {"records": {
            "copy-suppression-ov": rec("copy-suppression-ov", "copy-suppression", ["28.0"])}}}
    site = SiteBuilder(load_catalogue(ROOT), results)
    table = site.membership["smollm2-135m"]
    assert set(table["24.4"]) == {"copy-suppression", "negative-name-mover"}
    assert set(table["28.0"]) == {"backup-name-mover"}  # from its own claim and from a named group
    assert "3.1" not in table                           # a control group names no head type
    assert "smollm2-135m-random" not in site.membership  # the twin is a control
    assert set(site.shares("copy-suppression")["smollm2-135m"]) == {"24.4", "23.3"}
    assert site.check_membership() == []
    head = site.head_page(site.cat.heads["copy-suppression"])
    row = head[head.index("Shares heads with"):].split("\n")[0].rstrip(" |")
    nnm = row[row.index("(negative-name-mover.md)"):].split(";")[0]
    assert "`negative-name-mover-scoring`" in nnm and nnm.endswith(": L24H4")      # one line per other type
    bnm = row[row.index("(backup-name-mover.md)"):].split(";")[0].split("<br>")[0]
    assert bnm.endswith(": L23H3")
    # a page that says a head is shared while the other page does not is a build error
    site.shares = lambda hid, orig=site.shares: ({} if hid == "negative-name-mover" else orig(hid))
    problems = site.check_membership()
    assert problems and "L24H4" in problems[0]
    with pytest.raises(ValueError, match="contradict"):
        site.pages()


def test_near_duplicate_entries_link_each_other_and_say_why(built_site):
    correct, letter = page(built_site.path, "heads/correct"), page(built_site.path, "heads/correct-letter")
    for html, other in ((correct, "correct-letter"), (letter, "correct")):
        lead = html[:html.index('id="claims"')]
        assert "Near-duplicate entry" in lead and f'href="../{other}/"' in lead
        assert "two papers found them with different methods" in lead
    index = page(built_site.path, "heads")
    row = re.search(r"<tr [^>]*>(?:(?!</tr>).)*>Correct-letter head</a></td>.*?</tr>", index, flags=re.S).group(0)
    assert "Near-duplicate of <a" in row and 'href="correct/"' in row


def test_head_page_leads_with_what_the_head_does_and_where_it_holds(built_site):
    html = page(built_site.path, "heads/induction")
    lead = html[:html.index('id="claims"')]
    assert lead.index('class="ha-lead"') < lead.index("Where it holds") < lead.index("ha-lead-figure")
    assert lead.count("<img") == 1  # one figure before the claims
    # checks, variants and provenance are collapsed (pymdownx.details), one click away
    claims = html[html.index('id="claims"'):]
    assert claims.count("<details") >= 6 and "<details open" not in claims.split("Held-out data variants")[0]


# ---------------------------------------------------------------------------- scale within a family


def test_family_page_sets_the_sizes_side_by_side(family_site):
    """Qwen2.5-Coder 0.5B and 1.5B (one family in catalogue/models.yaml, fake records from
    write_family_results): per head type the verdict at each size, the heads chosen as LxHy with
    their relative depth, the decisive value, and what appears, moves or vanishes with scale."""
    html = page(family_site.path, "families/qwen2.5-coder")
    assert "Scale within a family: Qwen2.5-Coder" in html
    summary = html[html.index('id="what-changes-with-scale"'):html.index('id="head-type-by-head-type"')]
    for kind, head in (("Appears", "Previous-token head"), ("Vanishes", "Duplicate-token head"), ("Moves", "Induction head"),
                       ("Stays", "Successor head"), ("Not comparable yet", "Constant head")):
        item = next(li for li in re.findall(r"<li>.*?</li>", summary, flags=re.S) if f"<strong>{kind}</strong>" in li)
        assert f">{head}</a>" in item, (kind, item)
    assert "absent → holds" in summary and "holds → absent" in summary
    assert "depth 0.59 → 0.72, deeper by 0.14" in summary
    assert "appears 1; vanishes 1; moves 1; stays 1; holds at neither 0; not comparable yet: 1" in summary
    header = re.search(r"<thead>.*?</thead>", html, flags=re.S).group(0).replace("<wbr>", "")
    assert header.index("qwen2.5-coder-0.5b") < header.index("qwen2.5-coder-1.5b")  # smallest first
    assert "0.5B → 1.5B" in header
    row = table_row(html, ">Induction head</a>")
    small, large, change = re.findall(r"<td[^>]*>.*?</td>", row, flags=re.S)[2:5]
    assert ">holds<" in small and "heads L14H3, L13H2 · depth 0.59" in small
    assert "top_head_score 0.41; needs &gt;= 0.25" in small
    assert "heads L20H1, L19H4 · depth 0.72" in large and "top_head_score 0.47" in large
    assert 'data-change="moves"' in change
    assert "<strong>not comparable</strong>" in table_row(html, ">Constant head</a>")
    assert "no result on 1.5B" in table_row(html, ">Constant head</a>")
    # the rows are the head types with a verdict at some size; a head type run on neither has no row
    assert ">Retrieval head</a>" not in html.split("<tbody>")[1]
    # linked from the transfer matrix, which now has seven model columns, and from the navigation
    transfer = page(family_site.path, "transfer")
    assert 'href="../families/qwen2.5-coder/"' in transfer
    columns = re.findall(r'<th data-model="([^"]+)"', transfer)
    assert columns == ["smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gpt2",
                       "toy-induction", "smollm2-135m-random"], columns
    assert "--ha-tf-min:63.5em" in transfer
    index = page(family_site.path, "families")
    assert 'href="qwen2.5-coder/"' in index and "No family has two models" not in index


def test_without_two_sizes_with_results_the_family_page_says_so(built_site):
    html = page(built_site.path, "families")
    assert "No family has two models with results yet" in html
    assert not (built_site.path / "families" / "qwen2.5-coder").exists()
    assert "no family has two sizes with results yet" in page(built_site.path, "transfer")


def test_families_come_from_the_catalogue_and_are_ordered_by_size(one_check):
    """Any family with two models with results gets a page: here SmolLM2-135M and Gemma-3-270M made
    one test family (sizes out of catalogue order), with records of two claims each."""
    from headatlas.site.pages import SiteBuilder

    cat = load_catalogue(ROOT)
    cat.models["smollm2-135m"] = cat.models["smollm2-135m"].model_copy(update={"family": "Test", "size": "1.5B"})
    cat.models["gemma-3-270m"] = cat.models["gemma-3-270m"].model_copy(update={"family": "Test", "size": "270M"})
    recs = [one_check("induction-scoring", "induction", "smollm2-135m", "holds", ["18.6"], 0.43),  # depth 0.62
            one_check("induction-scoring", "induction", "gemma-3-270m", "absent", ["5.1"], 0.1),
            one_check("previous-token-scoring", "previous-token", "smollm2-135m", "holds", ["16.0"], 0.8, 0.5),
            one_check("previous-token-scoring", "previous-token", "gemma-3-270m", "holds", ["2.3"], 0.7, 0.5)]
    results = {}
    for r in recs:
        results.setdefault(r["model"], {"model": r["model"], "records": {}})["records"][r["claim_id"]] = r
    site = SiteBuilder(cat, results)
    assert site.families() == {"Test": ["gemma-3-270m", "smollm2-135m"]}
    files = {g.src_uri: g.content for g in site.pages()}
    md = files["families/test.md"]
    assert "Test at 2 sizes with results: 270M" in md and "one of these sizes: its verdicts are not held-out" in md
    # induction's other claims have no result on smollm2-135m: partly holds there
    assert "**Appears** at 1.5B" in md and "[Induction head](../heads/induction.md): absent → partly holds" in md
    # previous-token holds at both, its heads at depth 0.12 (2/17) and 0.55 (16/29): it moves
    assert "**Moves**" in md and "depth 0.12 → 0.55, deeper by 0.43" in md
    nav = next(x for x in site.nav() if "Scale within a family" in x)["Scale within a family"]
    assert nav == ["families/index.md", {"Test": "families/test.md"}]


@pytest.mark.parametrize("reason, key", [
    ("Measured and absent on the default model: the best head gives 0.08.", "measured-absent"),
    ("No claim: the effect is absent on SmolLM2-135M.", "measured-absent"),
    ("No claim: the effect is not concentrated in a few heads on SmolLM2-135M.", "measured-unclear"),
    ("No claim runs here: SmolLM2-135M does not do the task (0 of 20).", "task-not-done"),
    ("No claim runs here: the data set is not available.", "no-claim"),
])
def test_an_entry_without_a_claim_gets_its_status_from_its_reason(reason, key):
    from headatlas.site.pages import SiteBuilder

    site = SiteBuilder(load_catalogue(find_root(Path(__file__).parent)), {})
    entry = next(e for e in site.cat.heads.values() if not e.claims)
    assert site.no_claim_status(entry.model_copy(update={"no_claim_reason": reason}))[0] == key
