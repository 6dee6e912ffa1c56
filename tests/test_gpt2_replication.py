"""The GPT-2 small replication claims' logic, exercised on a tiny random GPT-2 with planted
attention: the published heads must be found where planted, and missed where not."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import planting_hooks, tiny_gpt2

from headatlas import prompts
from headatlas.catalogue import find_root, load_catalogue
from headatlas.claims import ClaimRun
from headatlas.methods import scoring

ROOT = find_root(Path(__file__).parent)
CLAIMS = {"previous-token-gpt2-published": "previous_token",
          "duplicate-token-gpt2-published": "duplicate_token",
          "induction-gpt2-published": "induction"}


def _claim_module():
    spec = importlib.util.spec_from_file_location("claim_gpt2_published", ROOT / "claims/claim_gpt2_published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_on_tiny(claim_id: str, plant_at: list[tuple[int, int]]) -> ClaimRun:
    """Run the claim on a tiny random GPT-2 in which the heads `plant_at` are made to show the
    claim's attention pattern on each data variant's tokens (planted anew per variant)."""
    cat = load_catalogue(ROOT)
    entry, spec = cat.claims[claim_id]
    model = tiny_gpt2()
    kind = spec.params["score"]

    def from_spec_planted(m, data_spec):
        data = prompts.from_spec(m, data_spec)
        model.bridge.reset_hooks(including_permanent=True)
        for name, fn in planting_hooks(kind, data.tokens, plant_at):
            model.bridge.add_hook(name, fn, is_permanent=True)
        return data

    module = _claim_module()
    module.prompts = SimpleNamespace(from_spec=from_spec_planted)
    try:
        run = ClaimRun(entry, spec, "tiny-gpt2", model)
        module._replicate(run)
        return run
    finally:
        model.bridge.reset_hooks(including_permanent=True)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_planted_published_heads_pass(claim_id):
    published = load_catalogue(ROOT).claims[claim_id][1].params["published"]
    run = _run_on_tiny(claim_id, [scoring.parse_head(h) for h in published])
    assert run.check_results, "the claim should have evaluated its checks"
    assert run.verdict == "holds", run.check_results
    assert all(c["null"]["beats"] for c in run.check_results if "null" in c)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_heads_planted_elsewhere_fail(claim_id):
    run = _run_on_tiny(claim_id, [(1, 1), (2, 3)])
    assert run.verdict in ("absent", "inconclusive"), run.check_results
