"""The catalogue validator: the real catalogue is valid, and each kind of mistake is reported
with its file, its field and what was expected, never as a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from headatlas.catalogue import CatalogueError, find_root, load_catalogue

ROOT = find_root(Path(__file__).parent)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch copy of the catalogue and claims that a test may break."""
    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def problems(root: Path) -> list[str]:
    cat = load_catalogue(root, strict=False)
    return [str(p) for p in cat.problems]


def test_the_real_catalogue_is_valid():
    # Its speed is measured by benchmarks/bench.py, not asserted here: a timed test fails on a busy machine.
    cat = load_catalogue(ROOT)
    assert cat.heads and not cat.problems and not cat.warnings
    assert {"previous-token", "duplicate-token", "induction"} <= set(cat.heads)


def test_strict_loading_raises_with_every_problem(project):
    edit(project / "heads/induction.yaml", lambda d: d.update(stage="XX", papers=["nobody2099"]))
    with pytest.raises(CatalogueError) as exc:
        load_catalogue(project)
    assert len(exc.value.problems) >= 1
    assert "heads/induction.yaml" in str(exc.value)


@pytest.mark.parametrize("change, field, expected", [
    (lambda d: d.pop("summary"), "summary", "required field is missing"),
    (lambda d: d.update(stage="Reasoning"), "stage", "'KR', 'ICI', 'LR' or 'EP'"),
    (lambda d: d.update(sumary="typo"), "sumary", "unknown field"),
    (lambda d: d.update(papers=["nobody2099"]), "papers[0]", "unknown citation key 'nobody2099'"),
    (lambda d: d.update(methods=["vibes"]), "methods[0]", "unknown method 'vibes'"),
    (lambda d: d.update(subgroup="general-tasks"), "subgroup", "unknown sub-group"),
    (lambda d: d["reported_in"][0].update(model="gpt5"), "reported_in[0].model", "unknown model 'gpt5'; known models:"),
    (lambda d: d["reported_in"][0].update(heads=["5-5"]), "reported_in[0].heads", "layer.head"),
    (lambda d: d["reported_in"][0].update(heads=["12.0"]), "reported_in[0].heads", "does not exist in gpt2"),
    (lambda d: d["claims"][0].update(models=["gpt5"]), "claims[0].models[0]", "unknown model 'gpt5'"),
    (lambda d: d["claims"][0]["checks"][0].update(threshold="high"), "claims[0].checks[0].threshold", "valid number"),
    (lambda d: [c.pop("beats_null", None) for c in d["claims"][0]["checks"]], "claims[0]", "needs a null distribution"),
    (lambda d: d["claims"][0].pop("selection"), "claims[0].selection", "required field is missing"),
    (lambda d: d["claims"][0].update(selection={"seed": 0}), "claims[0]", "equals the test data of variant"),
    (lambda d: d["related"][0].update(head="nonexistent-head"), "related[0].head", "unknown head id"),
    (lambda d: d["layer_band"].update(relative=[0.9, 0.1]), "layer_band.relative", "low <= high"),
    (lambda d: d.update(id="induction-head"), "id", "must match the file name"),
    (lambda d: d["claims"][0].update(test="claims/claim_missing.py"), "claims[0].test", "does not exist"),
    (lambda d: d["claims"][0]["data"]["variants"][1].pop("name"), "claims[0].data", "non-empty string `name`"),
    (lambda d: d["claims"][0]["data"]["variants"][1].update(name=d["claims"][0]["data"]["variants"][0]["name"]),
     "claims[0].data", "names must be unique"),
    (lambda d: d["claims"][0]["data"].pop("variants"), "claims[0].data.variants", "at least 3 data variants"),
    (lambda d: d["claims"][0].update(method="probing"), "claims[0].method", "not one of the entry's methods"),
])
def test_each_mistake_names_file_field_and_expectation(project, change, field, expected):
    edit(project / "heads/induction.yaml", change)
    found = problems(project)
    matching = [p for p in found if p.startswith(f"heads/induction.yaml: {field}") and expected in p]
    assert matching, f"expected a problem at {field!r} mentioning {expected!r}; got {found}"


def _circuit(d: list, **change) -> None:
    d[0].update(change)


@pytest.mark.parametrize("change, field, expected", [
    (lambda d: d[0]["edges"].append(["induction", "name movers"]), "edges[9]",
     "unknown class 'name movers'; an edge joins two of the circuit's classes (name mover,"),
    (lambda d: d[0]["edges"].append(["copy heads", "lm head"]), "edges[9]", "unknown classes ['copy heads', 'lm head']"),
    (lambda d: _circuit(d, outputs=[]), "edges[6]", "under outputs"),  # [name mover, logits] without the output
    (lambda d: d[0]["edges"].append(["logits", "induction"]), "edges[9]", "an output: information flows into it"),
    (lambda d: d[0]["edges"].append(["induction", "induction"]), "edges[9]", "an edge from 'induction' to itself"),
    (lambda d: d[0]["edges"].append(["induction", "S-inhibition"]), "edges[9]", "repeats the edge"),
    (lambda d: d[0]["edges"].append(["induction"]), "[0].edges", "edges[9]: an edge is [from, to], two class names"),
    (lambda d: _circuit(d, outputs=["induction"]), "outputs[0]", "is a class of heads"),
])
def test_circuit_edges_name_the_circuits_own_classes(project, change, field, expected):
    """The IOI circuit's information flow is data (catalogue/circuits.yaml `edges`): an edge that
    names a class the circuit does not have is refused, naming the file, the edge and the classes."""
    cid = load_catalogue(ROOT).circuits
    assert any(c.edges for c in cid.values())  # the real circuit has its edges
    edit(project / "catalogue/circuits.yaml", change)
    found = problems(project)
    matching = [p for p in found if p.startswith("catalogue/circuits.yaml: ") and field in p and expected in p]
    assert matching, f"expected a problem at {field!r} mentioning {expected!r}; got {found}"


@pytest.mark.parametrize("change, field, expected", [
    (lambda d: d["qwen2.5-coder-0.5b"].pop("family"), "qwen2.5-coder-0.5b", "give a family and a size together"),
    (lambda d: d["qwen2.5-coder-0.5b"].update(size="half a billion"), "qwen2.5-coder-0.5b.size", "should match pattern"),
    (lambda d: d["smollm2-135m-random"].update(family="SmolLM2", size="135M"), "smollm2-135m-random",
     "a random-weights twin is a control"),
    (lambda d: d["qwen2.5-coder-1.5b"].update(size="0.5B"), "qwen2.5-coder-1.5b.size",
     "'qwen2.5-coder-0.5b' is already the 0.5B model of family 'Qwen2.5-Coder'"),
])
def test_model_families_name_family_and_size(project, change, field, expected):
    """Families (catalogue/models.yaml `family`, `size`) order a family page by size: both are given
    together, a size reads like 0.5B, a twin has none, and a family lists each size once."""
    models = load_catalogue(ROOT).models
    assert models["qwen2.5-coder-0.5b"].family == models["qwen2.5-coder-1.5b"].family
    assert models["qwen2.5-coder-0.5b"].parameters == 5e8 < models["qwen2.5-coder-1.5b"].parameters
    edit(project / "catalogue/models.yaml", change)
    found = problems(project)
    matching = [p for p in found if p.startswith(f"catalogue/models.yaml: {field}") and expected in p]
    assert matching, f"expected a problem at {field!r} mentioning {expected!r}; got {found}"


def test_malformed_yaml_names_file_and_line(project):
    (project / "heads/induction.yaml").write_text("id: induction\nname: [unclosed\nstage: LR\n")
    found = problems(project)
    assert any(p.startswith("heads/induction.yaml: line") and "malformed YAML" in p for p in found), found


def test_python_tag_is_reported_and_never_executed(project, tmp_path):
    marker = tmp_path / "pwned"
    (project / "heads/induction.yaml").write_text(
        f"id: !!python/object/apply:os.system ['touch {marker}']\nname: x\n")
    found = problems(project)
    assert any("heads/induction.yaml: line 1" in p and "!!python/object/apply:os.system is not allowed" in p
               for p in found), found
    assert not marker.exists()


def test_duplicate_keys_are_reported(project):
    path = project / "heads/induction.yaml"
    path.write_text(path.read_text() + "\nstage: KR\n")
    assert any("duplicate key 'stage'" in p for p in problems(project))


def test_bad_bibliography_entry(project):
    edit(project / "catalogue/bibliography.yaml", lambda d: d["wang2023ioi"].update(year="recent", url="nope"))
    found = problems(project)
    assert any(p.startswith("catalogue/bibliography.yaml: wang2023ioi.year") for p in found), found
    assert any(p.startswith("catalogue/bibliography.yaml: wang2023ioi.url") for p in found), found


def test_unused_citation_is_a_warning(project):
    edit(project / "catalogue/bibliography.yaml", lambda d: d.update(
        lonely2020={"authors": ["A. Lonely"], "title": "T", "year": 2020, "venue": "V", "url": "https://x.org"}))
    cat = load_catalogue(project, strict=False)
    assert not cat.problems
    assert [str(w) for w in cat.warnings] == ["catalogue/bibliography.yaml: lonely2020: unused citation key"]


def test_all_problems_are_reported_at_once(project):
    edit(project / "heads/induction.yaml", lambda d: d.update(papers=["nobody2099"]))
    edit(project / "heads/previous-token.yaml", lambda d: d.update(methods=["vibes"]))
    found = problems(project)
    assert any("heads/induction.yaml" in p for p in found) and any("heads/previous-token.yaml" in p for p in found)


def _validate_cli(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HEADATLAS_ROOT=str(root), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "headatlas.cli", "validate"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_validate_exit_codes_and_no_traceback(project):
    ok = _validate_cli(project)
    assert ok.returncode == 0, ok.stderr
    (project / "heads/induction.yaml").write_text("id: !!python/object/new:os.system ['true']\n")
    edit(project / "heads/previous-token.yaml", lambda d: d.update(stage="XX"))
    bad = _validate_cli(project)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr + bad.stdout
    assert "heads/induction.yaml: line 1" in bad.stderr
    assert "heads/previous-token.yaml: stage" in bad.stderr


def test_scaffolded_entry_is_rejected_until_written(project):
    from headatlas.scaffold import scaffold

    made = scaffold("successor-like", project)
    assert [str(p) for p in made] == ["heads/successor-like.yaml", "claims/claim_successor_like.py"]
    found = problems(project)
    assert any(p.startswith("heads/successor-like.yaml: name") and "TODO" in p for p in found), found
    with pytest.raises(ValueError, match="already exists"):
        scaffold("successor-like", project)
    with pytest.raises(ValueError, match="not a valid id"):
        scaffold("Bad Name", project)


def test_scaffolded_claim_test_fails(project, pytester):
    """Even with the TODOs filled in, the scaffolded claim test raises until it is written."""
    from headatlas.scaffold import scaffold

    scaffold("successor-like", project)
    entry = project / "heads/successor-like.yaml"
    entry.write_text(entry.read_text().replace("TODO_measured_value", "v")
                     .replace("TODO_control_value", "c").replace("TODO", "x"))
    assert not problems(project)
    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(project / name, pytester.path / name)
    result = pytester.runpytest_subprocess("-p", "headatlas.claims.plugin", "--no-record",
                                           "claims/claim_successor_like.py")
    result.assert_outcomes(failed=2)  # the model and its random-weights twin
    result.stdout.fnmatch_lines(["*NotImplementedError: claim successor-like-claim is scaffolded but not written yet*"])
    text = (project / "claims/claim_successor_like.py").read_text()
    assert "run.select(" in text and "run.variants()" in text and "run.null(" in text
    spec = load_catalogue(project).claims["successor-like-claim"][1]
    assert spec.selection == {"seed": 10} and any(c.beats_null for c in spec.checks)


def test_cli_verify_shows_verdicts_with_evidence_and_exits_like_ci(tmp_path):
    """`headatlas verify` on a claim whose committed verdicts it reproduces: exit 0 (CI's rule),
    the verdict and the held-out value with its interval and null percentile in the table."""
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    committed = json.loads((results / "smollm2-135m.json").read_text())["records"]["previous-token-scoring"]
    out = subprocess.run([sys.executable, "-m", "headatlas.cli", "verify", "--claim", "previous-token-scoring",
                          "--model", "smollm2-135m"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HEADATLAS_RESULTS": str(results), "COLUMNS": "250"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert committed["verdict"] in out.stdout
    assert "top_head_score" in out.stdout and "vs null 99th pct" in out.stdout
    assert "Traceback" not in out.stderr
