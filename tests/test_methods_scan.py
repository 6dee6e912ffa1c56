"""The scan (every score for every head) and the `headatlas scan` command."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from helpers import smollm2, tiny_gpt2
from test_methods_fixtures import one_thread  # noqa: F401 (fixture)

from headatlas import cli, prompts, scan
from headatlas.methods import scoring

pytestmark = pytest.mark.usefixtures("one_thread")


@functools.lru_cache(maxsize=1)
def smollm2_scan() -> scan.ScanResult:
    return scan.scan_model(smollm2())


def test_scan_covers_every_method_with_one_forward_pass_per_dataset():
    model = tiny_gpt2()
    calls = []
    original = model.bridge.run_with_hooks

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.bridge.run_with_hooks = counting
    try:
        result = scan.scan(model.bridge, model.tokenizer, name="tiny")
    finally:
        del model.bridge.run_with_hooks
    assert set(result.scores) == set(scan.METHODS)
    for name, s in result.scores.items():
        assert s.shape == (7, 12), name
        assert torch.isfinite(s).all(), name
    pattern_datasets = {"repeated_tokens", "split_words", "needle", "yes_no", "multiple_choice"}
    assert len(calls) == len(pattern_datasets) and pattern_datasets <= set(result.seconds)
    assert not result.skipped


def test_scan_scores_match_the_single_method_functions_on_smollm2():
    result = smollm2_scan()
    rep = prompts.repeated_random_tokens(smollm2().tokenizer, 49152, n_prompts=8, block_len=20, seed=0)
    ind = scoring.head_scores(smollm2().bridge, rep.tokens, ["induction"])["induction"]
    torch.testing.assert_close(result.scores["induction"], ind, atol=1e-5, rtol=0)
    # heads known from the claims: strong induction heads in layers 17-18 are also retrieval heads
    top_ind = set(scoring.top_heads(result.scores["induction"], 5))
    assert top_ind & set(scoring.top_heads(result.scores["retrieval"], 5))
    for name in ("constant_attention", "copy_suppression", "copying", "successor", "retrieval", "subword_merge"):
        s = result.scores[name]
        assert float(s.min()) >= -1e-6 and float(s.max()) <= 1 + 1e-6, name


def test_cli_scan_writes_json_for_every_head(tmp_path, monkeypatch):
    # The scan itself is tested above; reuse its result instead of scanning a second time.
    monkeypatch.setattr(scan, "scan_model", lambda model: smollm2_scan())
    out = tmp_path / "scan.json"
    assert cli.main(["scan", "smollm2-135m", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "smollm2-135m" and doc["time"]
    assert set(doc["scores"]) == set(scan.METHODS)
    assert all(len(v) == 30 and all(len(r) == 9 for r in v) for v in doc["scores"].values())
    assert doc["data"]["repeated_tokens"]["seed"] == 0 and "days" in doc["data"]["ordinal_sets"]
    assert set(doc["methods"]) == set(scan.METHODS)


def test_cli_scan_unknown_model_is_a_clear_error(capsys):
    assert cli.main(["scan", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "Traceback" not in err


def test_default_scan_path_is_safe_for_hub_names(tmp_path):
    p = scan.default_path(tmp_path, "hub:org/model-1.0")
    assert p.parent == tmp_path / "results" / "scans" and "/" not in p.name and ":" not in p.name
