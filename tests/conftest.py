"""Shared pytest fixtures. Keep each group in its own section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from headatlas.claims.results import ResultStore

# ============================================================================ site
# One built site shared by tests/test_site.py and tests/test_browser.py: building takes a few
# seconds, so it is built once per session, from the real catalogue and fake results.

SITE_ROOT = Path(__file__).resolve().parent.parent
FAKE_SHA = "abcdef0123456789" + "0" * 48


@dataclass
class BuiltSite:
    path: Path      # the built site
    results: Path   # the results directory it was built from
    seconds: float  # wall time of `mkdocs build --strict`


def fake_record(claim_id: str, head_id: str, model: str, status: str, *, checks: list[dict],
                scores: list[list[float]] | None = None, top_heads: list[str] = (), reason: str = "",
                variants: dict[str, dict] | None = None, artifacts: dict | None = None,
                time: str = "2026-01-02T03:04:05+00:00") -> dict:
    """A result record shaped like the claim runner's (see headatlas/claims/results.py and
    headatlas/claims/runtime.py): with `variants`, checks carry their variant's name."""
    art = {"scores": scores, "score_name": f"{head_id} score", "top_heads": list(top_heads)} if scores else {}
    art.update(artifacts or {})
    data = {"generator": "repeated-random-tokens", "seed": 0, "block_len": 40}
    rec = {"claim_id": claim_id, "head_id": head_id, "model": model,
           "weights_sha256": FAKE_SHA if status != "not run" else None,
           "data": data, "params": {"top_k": 3},
           "measured": {c["measure"]: c["value"] for c in checks if c.get("variant") in (None, "40 tokens seed 0")},
           "checks": checks, "artifacts": art, "status": status, "reason": reason,
           "versions": {"python": "3.11"}, "time": time, "duration_s": 1.5}
    if variants:
        data["variants"] = [{"name": "40 tokens seed 0"}, {"name": "25 tokens seed 1", "block_len": 25, "seed": 1},
                            {"name": "60 tokens seed 2", "block_len": 60, "seed": 2}]
        rec["variants"] = variants
    return rec


VARIANTS = ["40 tokens seed 0", "25 tokens seed 1", "60 tokens seed 2"]


def _variant_checks(best: list[float], control: list[float], depth: list[float], band=(0.3, 0.8)) -> list[dict]:
    out = []
    for name, b, c, d in zip(VARIANTS, best, control, depth):
        out += [{"check": "best_score >= 0.25", "measure": "best_score", "value": b, "holds": b >= 0.25,
                 "control": "control_best_score", "control_value": c, "control_holds": c >= 0.25,
                 "tolerance": 0.05, "variant": name},
                {"check": f"top_heads_depth in [{band[0]:g}, {band[1]:g}]", "measure": "top_heads_depth", "value": d,
                 "holds": band[0] <= d <= band[1], "tolerance": 0.1, "variant": name}]
    return out


def write_fake_results(directory: Path) -> None:
    """The induction head on three models: on smollm2-135m (the default model) scoring is
    reproduced on three data variants and mean ablation fails; on gemma-3-270m scoring is not
    found (depth outside the band); on gpt2 the published-heads claim did not run. Plus a scan
    of smollm2-135m with one more head type and a score that names no head entry."""
    scores = [[0.01] * 9 for _ in range(30)]
    scores[18][6], scores[17][3], scores[17][4] = 0.4321, 0.35, 0.34
    prev = [[0.02] * 9 for _ in range(30)]
    prev[16][0], prev[2][1] = 0.88, 0.7
    tokens = ["<s>", " a", " b", " c", " a", " b", " c"]
    pattern = [[1.0 if k == max(0, q - 2) else 0.0 for k in range(7)] for q in range(7)]
    ResultStore(directory).write([
        fake_record("induction-scoring", "induction", "smollm2-135m", "pass", scores=scores,
                    top_heads=["18.6", "17.3", "17.4"],
                    checks=_variant_checks([0.4321, 0.4102, 0.4455], [0.0123, 0.0145, 0.0101], [0.59, 0.59, 0.6]),
                    variants={n: {"best_score": b, "control_best_score": c, "top_heads_depth": d}
                              for n, b, c, d in zip(VARIANTS, [0.4321, 0.4102, 0.4455], [0.0123, 0.0145, 0.0101],
                                                    [0.59, 0.59, 0.6])},
                    artifacts={"attention_example": {"tokens": tokens, "pattern": pattern, "head": "18.6"}}),
        fake_record("induction-mean-ablation", "induction", "smollm2-135m", "fail",
                    reason="loss_increase = 0.42 is below the threshold 1",
                    artifacts={"effects": {"labels": ["18.6", "17.3", "17.4", "control 3.1", "control 9.2"],
                                           "values": [0.3, 0.1, 0.02, 0.01, 0.0], "ylabel": "loss increase (nats)",
                                           "control": [False, False, False, True, True]}},
                    checks=[{"check": "loss_increase >= 1", "measure": "loss_increase", "value": 0.42, "holds": False,
                             "control": "control_loss_increase", "control_value": 0.1, "control_holds": False}]),
        fake_record("previous-token-scoring", "previous-token", "smollm2-135m", "pass", scores=prev,
                    top_heads=["16.0", "2.1"],
                    checks=[{"check": "best_score >= 0.5", "measure": "best_score", "value": 0.88, "holds": True,
                             "control": "control_best_score", "control_value": 0.13, "control_holds": False}]),
        fake_record("induction-scoring", "induction", "gemma-3-270m", "fail", scores=[[0.01] * 4 for _ in range(18)],
                    top_heads=["5.1", "11.2", "5.2"], time="2026-01-03T00:00:00+00:00",
                    reason="[40 tokens seed 0] top_heads_depth = 0.2941 fails 'top_heads_depth in [0.3, 0.8]'",
                    checks=_variant_checks([0.419, 0.405, 0.437], [0.0068, 0.0092, 0.0051], [0.294, 0.294, 0.294]),
                    variants={n: {"best_score": b, "top_heads_depth": 0.294}
                              for n, b in zip(VARIANTS, [0.419, 0.405, 0.437])}),
        fake_record("induction-gpt2-published", "induction", "gpt2", "not run", checks=[],
                    reason="not run: weights unavailable offline (fake reason for the site test)"),
    ])
    succ = [[0.0] * 9 for _ in range(30)]
    succ[25][2] = 0.9
    (directory / "scans").mkdir(parents=True, exist_ok=True)
    (directory / "scans" / "smollm2-135m.json").write_text(json.dumps({
        "model": "smollm2-135m", "time": "2026-01-04T00:00:00+00:00",
        "scores": {"induction": [[0.0] * 9 for _ in range(30)], "successor": succ,
                   "option_attention": [[0.5] * 9 for _ in range(30)]}}))


@pytest.fixture(scope="session")
def build_site():
    """Build the site with `mkdocs build --strict` in a subprocess, with extra environment."""

    def build(dest: Path, **env: str) -> BuiltSite:
        full_env = {**os.environ, "PYTHONPATH": str(SITE_ROOT), "NO_MKDOCS_2_WARNING": "1", **env}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                               "-f", str(SITE_ROOT / "mkdocs.yml"), "-d", str(dest)],
                              cwd=SITE_ROOT, env=full_env, capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - t0
        assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
        return BuiltSite(dest, Path(env.get("HEADATLAS_RESULTS", "")), seconds)

    return build


@pytest.fixture(scope="session")
def built_site(tmp_path_factory, build_site) -> BuiltSite:
    """The real catalogue with fake results (see write_fake_results) and a fake scan."""
    results = tmp_path_factory.mktemp("results")
    write_fake_results(results)
    return build_site(tmp_path_factory.mktemp("site"), HEADATLAS_RESULTS=str(results))


def pytest_configure(config):
    # tests/test_notebooks.py re-executes docs/notebooks/*.ipynb (1-2 minutes): `-m "not notebooks"` skips it.
    config.addinivalue_line("markers", "notebooks: slow; re-executes every notebook in docs/notebooks/")


# ============================================================================ (end of site)
