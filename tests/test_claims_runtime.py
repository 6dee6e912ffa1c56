"""The claims runtime: verdicts from checks and controls, records, and the results files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from headatlas.catalogue import find_root, load_catalogue
from headatlas.claims import ClaimRun
from headatlas.claims.results import ResultStore

ROOT = find_root(Path(__file__).parent)


def _run(claim_id="induction-scoring") -> ClaimRun:
    entry, spec = load_catalogue(ROOT).claims[claim_id]
    return ClaimRun(entry, spec, "smollm2-135m", None)


def measure_all(run: ClaimRun, **values) -> None:
    """The same values for every data variant of the claim."""
    for _ in run.variants():
        run.measure(**values)


def test_claim_passes_when_checks_hold_and_control_fails():
    run = _run()
    measure_all(run, best_score=0.44, control_best_score=0.01, top_heads_depth=0.55)
    run.conclude()
    assert [c["holds"] for c in run.check_results] == [True, True] * 3  # 3 data variants
    assert run.check_results[0]["control_holds"] is False


def test_claim_fails_when_the_effect_is_absent():
    run = _run()
    measure_all(run, best_score=0.1, control_best_score=0.01, top_heads_depth=0.55)
    with pytest.raises(AssertionError, match="best_score = 0.1 fails 'best_score >= 0.25'"):
        run.conclude()


def test_claim_fails_when_its_negative_control_also_passes():
    run = _run()
    measure_all(run, best_score=0.44, control_best_score=0.3, top_heads_depth=0.55)
    with pytest.raises(AssertionError, match="negative control control_best_score = 0.3 also passes"):
        run.conclude()


def test_claim_fails_outside_the_layer_band():
    run = _run()
    measure_all(run, best_score=0.44, control_best_score=0.01, top_heads_depth=0.95)
    with pytest.raises(AssertionError, match=r"top_heads_depth = 0.95 fails 'top_heads_depth in \[0.3, 0.8\]'"):
        run.conclude()


def test_a_check_that_was_never_measured_is_an_error():
    run = _run()
    measure_all(run, best_score=0.44)
    with pytest.raises(AssertionError, match="never measured"):
        run.conclude()


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        _run().measure(best_score=float("nan"))


def _record(claim_id, model, status, time="2026-01-01T00:00:00+00:00"):
    run = _run()
    rec = run.record(status, "", dt.datetime.fromisoformat(time), 1.0)
    rec.update(claim_id=claim_id, model=model)
    return rec


def test_results_store_merges_and_writes_atomically(tmp_path):
    store = ResultStore(tmp_path)
    store.write([_record("a", "m1", "pass"), _record("b", "m1", "fail")])
    store.write([_record("a", "m1", "not run", "2026-02-01T00:00:00+00:00"), _record("a", "hub:x/y", "pass")])
    doc = store.load("m1")
    assert {k: r["status"] for k, r in doc["records"].items()} == {"a": "not run", "b": "fail"}
    assert doc["updated"] == "2026-02-01T00:00:00+00:00"
    assert store.load("hub:x/y")["records"]["a"]["status"] == "pass"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub_x__y.json", "m1.json"]  # no temp files left


def test_bad_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="bad status"):
        ResultStore(tmp_path).write([_record("a", "m1", "passed")])
    assert not list(tmp_path.iterdir())


def test_corrupt_results_file_is_a_clear_error(tmp_path):
    (tmp_path / "m1.json").write_text("{")
    with pytest.raises(ValueError, match="m1.json: not valid JSON"):
        ResultStore(tmp_path).load("m1")


def test_claims_on_absent_weights_are_recorded_as_not_run(pytester, monkeypatch, tmp_path):
    """Run the real GPT-2 replication claims in a scratch project with the Hub unreachable."""
    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(ROOT / name, pytester.path / name)
    results = tmp_path / "results"
    monkeypatch.setenv("HEADATLAS_RESULTS", str(results))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    outcome = pytester.runpytest_subprocess("-p", "headatlas.claims.plugin", "claims/claim_gpt2_published.py")
    outcome.assert_outcomes(skipped=3)
    records = json.loads((results / "gpt2.json").read_text())["records"]
    assert {r["status"] for r in records.values()} == {"not run"}
    assert all("weights unavailable offline" in r["reason"] for r in records.values())
    assert len(records) == 3


def _baseline_record(run: ClaimRun, **measured) -> dict:
    return {"data": run.spec.data, "params": run.spec.params, "measured": measured}


def test_drift_beyond_tolerance_from_the_committed_value_fails():
    entry, spec = load_catalogue(ROOT).claims["induction-scoring"]
    base = {"data": spec.data, "params": spec.params, "measured": {"best_score": 0.44, "top_heads_depth": 0.58}}
    run = ClaimRun(entry, spec, "smollm2-135m", None, base)
    measure_all(run, best_score=0.47, control_best_score=0.01, top_heads_depth=0.59)
    run.conclude()  # within tolerance (0.05 and 0.1)
    assert run.check_results[0]["committed_value"] == 0.44
    run = ClaimRun(entry, spec, "smollm2-135m", None, base)
    measure_all(run, best_score=0.36, control_best_score=0.01, top_heads_depth=0.59)
    with pytest.raises(AssertionError, match="best_score drifted from the committed 0.44 to 0.36"):
        run.conclude()


def test_no_drift_check_when_the_spec_changed():
    entry, spec = load_catalogue(ROOT).claims["induction-scoring"]
    base = {"data": {**spec.data, "seed": 99}, "params": spec.params, "measured": {"best_score": 0.3}}
    run = ClaimRun(entry, spec, "smollm2-135m", None, base)
    measure_all(run, best_score=0.44, control_best_score=0.01, top_heads_depth=0.59)
    run.conclude()
    assert "committed_value" not in run.check_results[0]


def test_one_failing_variant_fails_the_claim_and_every_variant_is_recorded():
    run = _run()
    for i, _ in enumerate(run.variants()):
        run.measure(best_score=0.44 if i != 1 else 0.2, control_best_score=0.01, top_heads_depth=0.55)
    with pytest.raises(AssertionError, match=r"\[25 tokens seed 1\] best_score = 0.2 fails"):
        run.conclude()
    rec = run.record("fail", "", dt.datetime.now(dt.timezone.utc), 1.0)
    assert [v["best_score"] for v in rec["variants"].values()] == [0.44, 0.2, 0.44]
    assert rec["measured"]["best_score"] == 0.44  # the primary variant


def test_a_variant_left_unmeasured_is_an_error():
    run = _run()
    run.measure(best_score=0.44, control_best_score=0.01, top_heads_depth=0.55)
    with pytest.raises(AssertionError, match="never measured data variant"):
        run.conclude()
