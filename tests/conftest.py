"""Shared pytest fixtures. Keep each group in its own section."""

from __future__ import annotations

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
                scores: list[list[float]] | None = None, top_heads: list[str] = (), reason: str = "") -> dict:
    """A result record shaped like the claim runner's (see headatlas/claims/results.py)."""
    artifacts = {"scores": scores, "score_name": "induction score", "top_heads": list(top_heads)} if scores else {}
    return {"claim_id": claim_id, "head_id": head_id, "model": model,
            "weights_sha256": FAKE_SHA if status != "not run" else None,
            "data": {"generator": "repeated-random-tokens", "seed": 0}, "params": {"top_k": 3},
            "measured": {c["measure"]: c["value"] for c in checks}, "checks": checks, "artifacts": artifacts,
            "status": status, "reason": reason, "versions": {"python": "3.11"},
            "time": "2026-01-02T03:04:05+00:00", "duration_s": 1.5}


def write_fake_results(directory: Path) -> None:
    """A pass, a fail and a not-run record, all of the induction head."""
    scores = [[0.01] * 9 for _ in range(30)]
    scores[18][6], scores[17][3], scores[17][4] = 0.4321, 0.35, 0.34
    ResultStore(directory).write([
        fake_record("induction-scoring", "induction", "smollm2-135m", "pass", scores=scores,
                    top_heads=["18.6", "17.3", "17.4"], checks=[
                        {"check": "best_score >= 0.25", "measure": "best_score", "value": 0.4321, "holds": True,
                         "control": "control_best_score", "control_value": 0.0123, "control_holds": False},
                        {"check": "top_heads_depth in [0.3, 0.8]", "measure": "top_heads_depth", "value": 0.59,
                         "holds": True, "control": None, "control_value": None, "control_holds": None}]),
        fake_record("induction-mean-ablation", "induction", "smollm2-135m", "fail",
                    reason="loss_increase = 0.42 is below the threshold 1", checks=[
                        {"check": "loss_increase >= 1", "measure": "loss_increase", "value": 0.42, "holds": False,
                         "control": "control_loss_increase", "control_value": 0.1, "control_holds": False}]),
        fake_record("induction-gpt2-published", "induction", "gpt2", "not run", checks=[],
                    reason="not run: weights unavailable offline (fake reason for the site test)"),
    ])


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
    """The real catalogue with fake results: a pass, a fail and a not-run record."""
    results = tmp_path_factory.mktemp("results")
    write_fake_results(results)
    return build_site(tmp_path_factory.mktemp("site"), HEADATLAS_RESULTS=str(results))

# ============================================================================ (end of site)
