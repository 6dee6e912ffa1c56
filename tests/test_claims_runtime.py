"""The claim protocol: verdicts from intervals, nulls and controls; the selection/held-out
split; the CI guard on committed verdicts; the results files.

The plugin tests run a fake claim (no model) in a scratch copy of the project, with the model
loader replaced, so every branch of the guard is exercised in a second."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import torch

from headatlas.catalogue import CatalogueError, find_root, load_catalogue
from headatlas.claims import ClaimRun
from headatlas.claims.results import ResultStore
from headatlas.claims.runtime import ProtocolError
from headatlas.methods import stats

ROOT = find_root(Path(__file__).parent)
CLAIM = "induction-scoring"          # checks: top_head_score >= 0.25 (null all_heads 99th, control), depth in band
NULL = torch.linspace(0.0, 0.2, 270)  # a null whose 99th percentile is about 0.198


def _run(claim_id=CLAIM, baseline=None) -> ClaimRun:
    entry, spec = load_catalogue(ROOT).claims[claim_id]
    return ClaimRun(entry, spec, "smollm2-135m", None, baseline)


def _measure_all(run: ClaimRun, score, control=0.01, depth=0.55, null=NULL) -> None:
    run.select([(18, 6), (17, 3), (16, 1)], top_head_selection_score=0.44)
    for _ in run.variants():
        run.measure(top_head_score=score, control_top_head_score=control, top_heads_depth=depth)
        run.null("all_heads", null)


def _decisive(run):
    return next(c for c in run.check_results if c["decisive"])


# ----------------------------------------------------------------------------- verdicts


def test_holds_when_the_interval_clears_the_threshold_the_null_and_the_control_fails():
    run = _run()
    _measure_all(run, torch.full((16,), 0.44) + torch.linspace(-0.02, 0.02, 16))
    assert run.conclude() == "holds"
    first = run.check_results[0]
    assert first["outcome"] == "holds" and first["interval"][0] > 0.25
    assert first["null"]["beats"] and first["null"]["p"] == pytest.approx(1 / 271)
    assert first["control_holds"] is False


def test_absent_when_the_whole_interval_lies_below_the_threshold():
    run = _run()
    _measure_all(run, torch.full((16,), 0.10) + torch.linspace(-0.01, 0.01, 16))
    assert run.conclude() == "absent"
    assert "fails 'top_head_score >= 0.25'" in run.reason


def test_inconclusive_when_the_interval_straddles_the_threshold():
    run = _run()
    _measure_all(run, torch.tensor([0.05, 0.45] * 8))  # mean 0.25, wide interval
    assert run.conclude() == "inconclusive"
    assert "straddles 0.25" in run.reason


def test_inconclusive_when_the_value_does_not_beat_the_null():
    run = _run()
    _measure_all(run, torch.full((16,), 0.44), null=torch.linspace(0.0, 0.6, 270))
    assert run.conclude() == "inconclusive"
    assert "does not beat the null's 99th percentile" in run.reason


def test_inconclusive_when_the_control_also_passes():
    run = _run()
    _measure_all(run, torch.full((16,), 0.44), control=0.3)
    assert run.conclude() == "inconclusive"
    assert "control control_top_head_score = 0.3 also passes" in run.reason


def test_absent_outside_the_layer_band():
    run = _run()
    _measure_all(run, torch.full((16,), 0.44), depth=0.95)
    assert run.conclude() == "absent"
    assert _decisive(run)["measure"] == "top_heads_depth"


def _knockout_run(attention, drop):
    """The colored-objects content-gatherer claim (attention check, then a knock-out check marked
    `knockout: true`), with every variant measured alike."""
    run = _run("content-gatherer-question-object")
    run.select([(18, 6), (17, 3), (16, 1)], top_selection_question_attention=0.5)
    for _ in run.variants():
        run.measure(question_object_attention=attention, knockout_margin_drop=drop, top_heads_depth=0.6)
        run.null("matched_sets_question_attention", torch.linspace(0.0, 0.1, 999))
        run.null("matched_sets_knockout_drop", torch.linspace(-0.05, 0.05, 19))
    return run


def test_a_knockout_that_falls_short_reads_inconclusive_not_absent():
    run = _knockout_run(torch.full((16,), 0.4), torch.full((16,), 0.02) + torch.linspace(-0.01, 0.01, 16))
    assert run.conclude() == "inconclusive"
    assert "fails 'knockout_margin_drop >= 0.2'" in run.reason and "weak evidence of absence" in run.reason
    assert _decisive(run)["measure"] == "knockout_margin_drop"


def test_a_knockout_short_fall_does_not_hide_an_absent_defining_property():
    run = _knockout_run(torch.full((16,), 0.05) + torch.linspace(-0.01, 0.01, 16), torch.full((16,), 0.02))
    assert run.conclude() == "absent"
    assert _decisive(run)["measure"] == "question_object_attention"


def test_an_ordinary_ablation_check_that_falls_short_still_reads_absent():
    entry, spec = load_catalogue(ROOT).claims["content-gatherer-question-object"]
    knockout = [c for c in spec.checks if c.knockout]
    assert [c.measure for c in knockout] == ["knockout_margin_drop"]
    entry, spec = load_catalogue(ROOT).claims["safety-head-ablation"]
    assert not any(c.knockout for c in spec.checks)   # there the ablation effect is the definition


def test_one_absent_variant_makes_the_claim_absent_and_every_variant_is_recorded():
    run = _run()
    run.select([(18, 6)])
    for i, _ in enumerate(run.variants()):
        run.measure(top_head_score=0.44 if i != 1 else 0.1, control_top_head_score=0.01, top_heads_depth=0.55)
        run.null("all_heads", NULL)
    assert run.conclude() == "absent"
    assert run.reason.startswith("[25 tokens seed 1]")
    rec = run.record(dt.datetime.now(dt.timezone.utc), 1.0)
    assert [v["top_head_score"] for v in rec["variants"].values()] == [0.44, 0.1, 0.44]
    assert rec["measured"]["top_head_score"] == 0.44  # the primary variant
    assert rec["selection"]["heads"] == ["18.6"] and rec["selection"]["data"] == {"seed": 10}


# ----------------------------------------------------------------------------- the split


def test_a_check_may_not_read_a_value_measured_during_selection():
    run = _run()
    run.measure(top_head_score=0.44)  # before select(): a selection value
    run.select([(18, 6)])
    for _ in run.variants():
        run.measure(control_top_head_score=0.01, top_heads_depth=0.55)
        run.null("all_heads", NULL)
    with pytest.raises(ProtocolError, match="reads a value measured during selection"):
        run.conclude()


def test_held_out_variants_need_frozen_heads_first():
    run = _run()
    with pytest.raises(ProtocolError, match="before any heads were selected"):
        next(run.variants())


def test_heads_cannot_be_reselected_inside_a_variant():
    run = _run()
    run.select([(18, 6)])
    with pytest.raises(ProtocolError, match="inside variants"):
        for _ in run.variants():
            run.select([(1, 1)])


def test_selection_data_differs_from_every_held_out_variant():
    run = _run()
    run.select([(0, 0)])
    held_out = list(run.variants())
    assert len(held_out) == 3 and all(d != run.selection_data for d in held_out)


def test_the_validator_refuses_a_selection_set_equal_to_a_held_out_variant(tmp_path):
    from headatlas.catalogue import ClaimSpec

    spec = load_catalogue(ROOT).claims[CLAIM][1].model_dump()
    spec["selection"] = {"seed": 1, "block_len": 25}  # the second variant's data
    with pytest.raises(ValueError, match="equals the test data of variant '25 tokens seed 1'"):
        ClaimSpec.model_validate(spec)


def test_a_claim_must_say_where_its_heads_come_from():
    from pydantic import ValidationError

    from headatlas.catalogue import ClaimSpec

    spec = load_catalogue(ROOT).claims[CLAIM][1].model_dump()
    del spec["selection"]
    with pytest.raises(ValidationError, match="selection"):
        ClaimSpec.model_validate(spec)


def test_a_claim_without_a_null_is_refused():
    from headatlas.catalogue import ClaimSpec

    spec = load_catalogue(ROOT).claims[CLAIM][1].model_dump()
    for c in spec["checks"]:
        c["beats_null"] = None
    with pytest.raises(ValueError, match="needs a null distribution"):
        ClaimSpec.model_validate(spec)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused(bad):
    run = _run()
    run.select([(18, 6)])
    for _ in run.variants():
        with pytest.raises(ValueError, match="top_head_score"):
            run.measure(top_head_score=bad)
        with pytest.raises(ValueError, match="non-finite"):
            run.measure(top_head_score=[0.4, bad, 0.5])
        break


def test_a_null_needs_enough_samples():
    run = _run()
    run.select([(18, 6)])
    for _ in run.variants():
        with pytest.raises(ProtocolError, match="at least 19"):
            run.null("all_heads", [0.1] * 5)
        break


def test_a_check_that_was_never_measured_is_a_protocol_error():
    run = _run()
    run.select([(18, 6)])
    for _ in run.variants():
        run.measure(control_top_head_score=0.01, top_heads_depth=0.5)
        run.null("all_heads", NULL)
    with pytest.raises(ProtocolError, match="never measured 'top_head_score'"):
        run.conclude()


def test_drift_beyond_tolerance_from_the_committed_value_is_reported():
    entry, spec = load_catalogue(ROOT).claims[CLAIM]
    names = [v["name"] for v in spec.data["variants"]]
    base = {"verdict": "holds", "data": spec.data, "params": spec.params,
            "variants": {n: {"top_head_score": 0.44, "top_heads_depth": 0.55} for n in names}}
    run = ClaimRun(entry, spec, "smollm2-135m", None, base)
    _measure_all(run, 0.47)
    run.conclude()
    assert run.drift() == []  # within the tolerance of 0.05
    run = ClaimRun(entry, spec, "smollm2-135m", None, base)
    _measure_all(run, 0.36)
    run.conclude()
    assert any("top_head_score drifted from the committed 0.44 to 0.36" in d for d in run.drift())


# ----------------------------------------------------------------------------- statistics


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    x = torch.linspace(0, 1, 40)
    a, b = stats.bootstrap_mean(x), stats.bootstrap_mean(x)
    assert a == b
    assert a.low < a.value < a.high and a.value == pytest.approx(0.5)
    assert 0.35 < a.low < 0.5 < a.high < 0.65


def test_bootstrap_ratio_resamples_prompts_together():
    num, den = torch.tensor([1.0, 2.0, 3.0, 4.0] * 5), torch.tensor([2.0, 4.0, 6.0, 8.0] * 5)
    est = stats.bootstrap_ratio(num, den)
    assert est.value == est.low == est.high == pytest.approx(0.5)  # paired: every resample is 0.5


def test_auc_reads_separation_not_the_threshold():
    truth = torch.tensor([1, 1, 1, 0, 0, 0])
    margin = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    assert stats.auc(margin, truth) == pytest.approx(1.0)
    assert stats.auc(margin - 10.0, truth) == pytest.approx(1.0)   # says No to everything, still separates
    assert stats.auc(-margin, truth) == pytest.approx(0.0)
    assert stats.auc(torch.zeros(6), truth) == pytest.approx(0.5)   # ties count half
    assert stats.auc(torch.tensor([1.0, 0.0, 3.0, 2.0]), torch.tensor([1, 1, 0, 0])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="each class"):
        stats.auc(margin, torch.ones(6))


def test_empirical_p_has_the_plus_one_correction():
    assert stats.empirical_p(5.0, torch.zeros(999)) == pytest.approx(0.001)
    assert stats.empirical_p(-1.0, torch.zeros(999)) == pytest.approx(1.0)


def test_matched_head_sets_keep_layers_exclude_the_claimed_heads_and_are_seeded():
    heads = [(3, 0), (7, 2)]
    sets = stats.matched_head_sets(heads, n_layers=10, n_heads=4, n_sets=200, seed=1, exclude=heads)
    assert sets.shape == (200, 2, 2)
    assert (sets[:, 0, 0] == 3).all() and (sets[:, 1, 0] == 7).all()
    assert not any(tuple(h) in heads for h in sets.reshape(-1, 2).tolist())
    assert torch.equal(sets, stats.matched_head_sets(heads, 10, 4, 200, seed=1, exclude=heads))
    same_layer = stats.matched_head_sets([(3, 0), (3, 1)], 10, 4, 100, seed=0, exclude=[(3, 0), (3, 1)])
    assert all(tuple(s[0]) != tuple(s[1]) for s in same_layer.tolist())


# ----------------------------------------------------------------------------- results files


def _record(claim_id, model, verdict, time="2026-01-01T00:00:00+00:00"):
    run = _run()
    run.set_outcome(verdict, "")
    rec = run.record(dt.datetime.fromisoformat(time), 1.0)
    rec.update(claim_id=claim_id, model=model)
    return rec


def test_results_store_merges_and_writes_atomically(tmp_path):
    store = ResultStore(tmp_path)
    store.write([_record("a", "m1", "holds"), _record("b", "m1", "absent")])
    store.write([_record("a", "m1", "not run", "2026-02-01T00:00:00+00:00"), _record("a", "hub:x/y", "holds")])
    doc = store.load("m1")
    assert {k: r["verdict"] for k, r in doc["records"].items()} == {"a": "not run", "b": "absent"}
    assert doc["updated"] == "2026-02-01T00:00:00+00:00"
    assert store.load("hub:x/y")["records"]["a"]["verdict"] == "holds"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub_x__y.json", "m1.json"]  # no temp files left
    umask = os.umask(0o022)
    try:
        store.write([_record("c", "m1", "holds")])
    finally:
        os.umask(umask)
    assert (tmp_path / "m1.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


def test_unknown_verdict_is_refused(tmp_path):
    rec = _record("a", "m1", "holds")
    rec["verdict"] = "pass"
    with pytest.raises(ValueError, match="bad verdict 'pass'"):
        ResultStore(tmp_path).write([rec])
    assert not list(tmp_path.iterdir())


def test_corrupt_results_file_is_a_clear_error(tmp_path):
    (tmp_path / "m1.json").write_text("{")
    with pytest.raises(ValueError, match="m1.json: not valid JSON"):
        ResultStore(tmp_path).load("m1")


# ----------------------------------------------------------------------------- the plugin's guard

FAKE_CLAIM = '''
import os
from headatlas.claims import claim

@claim("previous-token-scoring")
def test_fake(run):
    mode = os.environ["FAKE_MODE"].split(",")[["smollm2-135m", "gemma-3-270m", "smollm2-135m-random"].index(run.model_name)]
    if mode == "crash":
        raise TypeError("boom")
    if mode == "silent":
        return
    if mode == "na":
        run.not_applicable("knows 0 of 40 facts")
    run.select([(16, 0)])
    for _ in run.variants():
        value = 0.9 if mode == "holds" else 0.1
        run.measure(top_head_score=[value] * 8, top_heads_depth=0.5)
        run.null("all_heads", [0.05 * i / 270 for i in range(270)])
    run.conclude()
'''


@pytest.fixture
def scratch(pytester, monkeypatch, tmp_path):
    """A copy of the project whose only claim test is FAKE_CLAIM, with a model loader that
    'loads' every model instantly (or, for names in FAKE_MISSING, finds no weights)."""
    import headatlas.models as models

    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(ROOT / name, pytester.path / name)
    (pytester.path / "claims" / "claim_fake.py").write_text(textwrap.dedent(FAKE_CLAIM))
    # The fake claim answers for two models and the twin: narrow the claim's model list to those.
    entry = pytester.path / "heads" / "previous-token.yaml"
    text = entry.read_text()
    listed = "models: [smollm2-135m, gemma-3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b]"
    assert listed in text
    entry.write_text(text.replace(listed, "models: [smollm2-135m, gemma-3-270m]", 1))
    results = tmp_path / "results"
    monkeypatch.setenv("HEADATLAS_RESULTS", str(results))
    monkeypatch.setenv("HEADATLAS_ROOT", str(pytester.path))
    registry = load_catalogue(ROOT).models
    missing: set[str] = set()

    def fake_load(name):
        if name in missing:
            return None, f"the PyPI package for {name} is not installed"
        return models.LoadedModel(name, None, None, registry[name], "f" * 64, 0.0), ""

    monkeypatch.setattr(models, "try_load", fake_load)

    class Scratch:
        def run(self, modes: str, *args: str):
            monkeypatch.setenv("FAKE_MODE", modes)
            return pytester.runpytest_inprocess("-p", "headatlas.claims.plugin", "-o", "python_files=claim_*.py",
                                               "claims/claim_fake.py", "-p", "no:cacheprovider", *args)

        def records(self, model):
            return json.loads(ResultStore(results).path(model).read_text())["records"]

    s = Scratch()
    s.missing = missing
    return s


def test_without_committed_results_every_claim_fails_and_says_how_to_record_them(scratch):
    out = scratch.run("holds,absent,absent")
    out.assert_outcomes(failed=3)
    assert "there is no committed result for it" in out.stdout.str()


def test_committed_absent_is_a_result_and_passes_again_a_change_fails(scratch):
    scratch.run("holds,absent,absent", "--accept").assert_outcomes(passed=3)
    assert {m: scratch.records(m)["previous-token-scoring"]["verdict"]
            for m in ("smollm2-135m", "gemma-3-270m", "smollm2-135m-random")} == \
        {"smollm2-135m": "holds", "gemma-3-270m": "absent", "smollm2-135m-random": "absent"}
    scratch.run("holds,absent,absent").assert_outcomes(passed=3)          # the same verdicts: green
    out = scratch.run("absent,holds,absent")                                # two verdicts changed
    out.assert_outcomes(passed=1, failed=2)
    assert "verdict changed from the committed 'holds' to 'absent'" in out.stdout.str()


def test_the_summary_gives_the_time_per_model_over_the_claims_run(scratch):
    out = scratch.run("holds,absent,absent", "--accept")
    line = next(l for l in out.stdout.lines if l.startswith("time per model"))
    for model in ("smollm2-135m", "gemma-3-270m", "smollm2-135m-random"):
        assert f"{model} 0 s over 1 claims" in line


def test_a_test_that_never_concludes_is_an_error_not_a_pass(scratch):
    scratch.run("holds,absent,absent", "--accept")
    out = scratch.run("silent,absent,absent")
    out.assert_outcomes(passed=2, failed=1)
    rec = scratch.records("smollm2-135m")["previous-token-scoring"]
    assert rec["verdict"] == "error" and "without calling run.conclude()" in rec["reason"]


def test_a_crash_on_a_model_committed_as_absent_is_an_error_not_absent(scratch):
    scratch.run("holds,absent,absent", "--accept")
    out = scratch.run("holds,crash,absent")
    out.assert_outcomes(passed=2, failed=1)
    rec = scratch.records("gemma-3-270m")["previous-token-scoring"]
    assert rec["verdict"] == "error" and rec["reason"] == "TypeError: boom"


def test_not_applicable_is_recorded_with_its_reason(scratch):
    scratch.run("holds,na,absent", "--accept").assert_outcomes(passed=3)
    rec = scratch.records("gemma-3-270m")["previous-token-scoring"]
    assert rec["verdict"] == "not applicable" and rec["reason"] == "knows 0 of 40 facts"


def test_a_claim_that_holds_on_the_random_weights_twin_fails_even_with_accept(scratch):
    out = scratch.run("holds,absent,holds", "--accept")
    out.assert_outcomes(passed=2, failed=1)
    assert "random-weights twin" in out.stdout.str()


def test_missing_weights_of_an_embedded_model_fail_instead_of_skipping(scratch):
    scratch.missing.add("smollm2-135m")
    out = scratch.run("holds,absent,absent", "--accept")
    out.assert_outcomes(passed=2, errors=1)
    rec = scratch.records("smollm2-135m")["previous-token-scoring"]
    assert rec["verdict"] == "not run" and "not installed" in rec["reason"]


def test_weights_gone_where_a_verdict_was_committed_fails(scratch):
    scratch.run("holds,absent,absent", "--accept")
    scratch.missing.add("gemma-3-270m")
    out = scratch.run("holds,absent,absent")
    out.assert_outcomes(passed=2, errors=1)


def _gemma_unsampled(models) -> str:
    """catalogue/models.yaml without Gemma's own test_skip, so a test can set the field it tests."""
    text = re.sub(r"\n  test_skip: \[[^\]]*\]", "", models.read_text())
    assert "test_skip" not in text.split("\ngemma-3-270m:\n", 1)[1].split("\n\n", 1)[0]
    return text


def test_a_sampled_model_runs_only_its_sample_unless_the_full_matrix_is_asked(scratch, pytester):
    models = pytester.path / "catalogue" / "models.yaml"
    text = _gemma_unsampled(models)
    assert "\ngemma-3-270m:\n" in text
    models.write_text(text.replace("\ngemma-3-270m:\n", "\ngemma-3-270m:\n  test_sample: []\n", 1))
    out = scratch.run("holds,absent,absent", "--accept")
    out.assert_outcomes(passed=2, deselected=1)  # the suite leaves gemma to the main command
    out = scratch.run("holds,absent,absent", "--accept", "--full-matrix")
    out.assert_outcomes(passed=3)
    assert scratch.records("gemma-3-270m")["previous-token-scoring"]["verdict"] == "absent"
    models.write_text(text.replace("\ngemma-3-270m:\n", "\ngemma-3-270m:\n  test_sample: [previous-token-scoring]\n", 1))
    scratch.run("holds,absent,absent").assert_outcomes(passed=3)  # in the sample: it runs


def test_a_skipped_claim_is_left_to_the_main_command_on_that_model_only(scratch, pytester):
    models = pytester.path / "catalogue" / "models.yaml"
    text = _gemma_unsampled(models)
    models.write_text(text.replace("\ngemma-3-270m:\n", "\ngemma-3-270m:\n  test_skip: [previous-token-scoring]\n", 1))
    out = scratch.run("holds,absent,absent", "--accept")
    out.assert_outcomes(passed=2, deselected=1)  # gemma's run is left out, the other models' stay
    scratch.run("holds,absent,absent", "--accept", "--full-matrix").assert_outcomes(passed=3)
    models.write_text(text.replace("\ngemma-3-270m:\n", "\ngemma-3-270m:\n  test_skip: [induction-scoring]\n", 1))
    scratch.run("holds,absent,absent").assert_outcomes(passed=3)  # another claim skipped: this one runs


def test_test_sample_and_test_skip_are_checked(tmp_path):
    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(ROOT / name, tmp_path / name)
    models = tmp_path / "catalogue" / "models.yaml"
    text = _gemma_unsampled(models)
    models.write_text(text.replace("\ngemma-3-270m:\n", "\ngemma-3-270m:\n  test_skip: [no-such-claim]\n", 1))
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path)
    assert any(p.field == "gemma-3-270m.test_skip[0]" and "no-such-claim" in p.message for p in err.value.problems)
    models.write_text(text.replace("\ngemma-3-270m:\n",
                                   "\ngemma-3-270m:\n  test_sample: [induction-scoring]\n  test_skip: [induction-scoring]\n", 1))
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path)
    assert any(p.field == "gemma-3-270m.test_skip" and "not both" in p.message for p in err.value.problems)


def test_a_test_sample_naming_an_unknown_claim_is_refused(tmp_path):
    for name in ("heads", "catalogue", "claims"):
        shutil.copytree(ROOT / name, tmp_path / name)
    models = tmp_path / "catalogue" / "models.yaml"
    models.write_text(models.read_text().replace("\ngemma-3-270m:\n", "\ngemma-3-270m:\n  test_sample: [no-such-claim]\n", 1))
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path)
    assert any(p.field == "gemma-3-270m.test_sample[0]" and "no-such-claim" in p.message
               for p in err.value.problems)


def test_claims_on_absent_hub_weights_are_recorded_as_not_run(pytester, monkeypatch, tmp_path):
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
    assert {r["verdict"] for r in records.values()} == {"not run"}
    assert all("weights unavailable offline" in r["reason"] for r in records.values())
    assert len(records) == 3
