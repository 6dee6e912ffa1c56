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


def fake_check(check: str, measure: str, value: float, outcome: str, *, variant: str = "default",
               interval: list[float] | None = None, threshold: float | None = None, tolerance: float = 0.05,
               why: str = "", null: dict | None = None, control: tuple[str, float, bool] | None = None,
               decisive: bool = False) -> dict:
    """One entry of a record's `checks`, shaped like runtime.ClaimRun._check_one's."""
    c = {"variant": variant, "check": check, "measure": measure, "value": value, "tolerance": tolerance,
         "outcome": outcome, "why": why, "decisive": decisive}
    if interval is not None:
        c["interval"] = interval
    if threshold is not None:
        c["threshold"] = threshold
    if null is not None:
        c["null"] = {"name": "all_heads", "n": 270, "percentile": 99, "p": 0.004, "z": 6.1, "median": 0.01,
                     "beats": True, **null}
    if control is not None:
        c["control"], c["control_value"], c["control_holds"] = control
    return c


def fake_record(claim_id: str, head_id: str, model: str, verdict: str, *, checks: list[dict],
                scores: list[list[float]] | None = None, top_heads: list[str] = (), reason: str = "",
                variants: dict[str, dict] | None = None, artifacts: dict | None = None,
                selection: dict | None = None, time: str = "2026-01-02T03:04:05+00:00") -> dict:
    """A result record shaped like the claim runtime's (see headatlas/claims/results.py and
    headatlas/claims/runtime.py): verdict, selection, per-variant values, intervals, nulls and
    checks with their outcome and the decisive one marked."""
    art = {"scores": scores, "score_name": f"{head_id} score", "top_heads": list(top_heads)} if scores else {}
    art.update(artifacts or {})
    data = {"generator": "repeated-random-tokens", "seed": 0, "block_len": 40}
    if variants:
        data["variants"] = [{"name": "40 tokens seed 0"}, {"name": "25 tokens seed 1", "block_len": 25, "seed": 1},
                            {"name": "60 tokens seed 2", "block_len": 60, "seed": 2}]
    else:
        variants = {"default": {c["measure"]: c["value"] for c in checks}} if checks else {}
    primary = next(iter(variants), None)
    intervals = {}
    for c in checks:
        if "interval" in c:
            intervals.setdefault(c["variant"], {})[c["measure"]] = c["interval"]
    nulls = {c["variant"]: {c["null"]["name"]: {"n": 270, "mean": 0.02, "sd": 0.01, "p1": 0.0, "p5": 0.0,
                                                "p50": c["null"]["median"], "p95": 0.04, "p99": c["null"]["at"],
                                                "min": 0.0, "max": 0.3}}
             for c in checks if "null" in c}
    return {"claim_id": claim_id, "head_id": head_id, "model": model,
            "weights_sha256": FAKE_SHA if verdict != "not run" else None, "method": "scoring",
            "data": data, "params": {"top_k": 3},
            "selection": selection if selection is not None else {"data": {"seed": 10}, "heads": list(top_heads)},
            "verdict": verdict, "reason": reason,
            "measured": variants.get(primary, {}) if primary else {}, "variants": variants,
            "intervals": intervals, "nulls": nulls, "checks": checks, "artifacts": art,
            "versions": {"python": "3.11"}, "time": time, "duration_s": 1.5}


VARIANTS = ["40 tokens seed 0", "25 tokens seed 1", "60 tokens seed 2"]


def _variant_checks(best: list[float], control: list[float], depth: list[float], band=(0.3, 0.8),
                    decisive: tuple[int, int] = (0, 0)) -> list[dict]:
    """Two checks on each variant; `decisive` = (variant index, check index) of the decisive one."""
    out = []
    for i, (name, b, c, d) in enumerate(zip(VARIANTS, best, control, depth)):
        low, high = round(b - 0.03, 4), round(b + 0.02, 4)
        out.append(fake_check("top_head_score >= 0.25", "top_head_score", b, "holds" if low >= 0.25 else "absent",
                              variant=name, interval=[low, high], threshold=0.25, null={"at": 0.05},
                              control=("control_top_head_score", c, c >= 0.25), decisive=(i, 0) == decisive))
        inside = band[0] <= d <= band[1]
        out.append(fake_check(f"top_heads_depth in [{band[0]:g}, {band[1]:g}]", "top_heads_depth", d,
                              "holds" if inside else "absent", variant=name, tolerance=0.1,
                              why="" if inside else f"top_heads_depth = {d:.3g} lies outside the layer band",
                              decisive=(i, 1) == decisive))
    return out


def write_fake_results(directory: Path) -> None:
    """The induction head on four models, in the claim protocol's records:

    - smollm2-135m (the calibration model): induction-scoring holds on three held-out variants;
      induction-mean-ablation is absent, decided by its second check (its effects chart has a bar,
      "together", whose value is its first check's, so the chart draws that check's threshold,
      interval and null band); previous-token-scoring holds
      and chose 17.3, which induction-scoring chose too (one head, two types).
    - gemma-3-270m (held-out): induction-scoring is a near miss (the heads sit at relative depth
      0.294, 0.006 outside the band, within the check's tolerance of 0.1); previous-token-scoring
      is inconclusive (the value does not beat its null).
    - gpt2: the published-heads claim did not run.
    - smollm2-135m-random (the random-weights twin): induction-scoring is absent, as required;
      previous-token-scoring holds, which it must not.
    Plus a scan of smollm2-135m with one more head type and a score that names no head entry."""
    scores = [[0.01] * 9 for _ in range(30)]
    scores[18][6], scores[17][3], scores[17][4] = 0.4321, 0.35, 0.34
    prev = [[0.02] * 9 for _ in range(30)]
    prev[16][0], prev[2][1] = 0.88, 0.7
    tokens = ["<s>", " a", " b", " c", " a", " b", " c"]
    pattern = [[1.0 if k == max(0, q - 2) else 0.0 for k in range(7)] for q in range(7)]
    good = [0.4321, 0.4102, 0.4455]
    ResultStore(directory).write([
        fake_record("induction-scoring", "induction", "smollm2-135m", "holds", scores=scores,
                    top_heads=["18.6", "17.3", "17.4"],
                    checks=_variant_checks(good, [0.0123, 0.0145, 0.0101], [0.59, 0.59, 0.6]),
                    variants={n: {"top_head_score": b, "control_top_head_score": c, "top_heads_depth": d}
                              for n, b, c, d in zip(VARIANTS, good, [0.0123, 0.0145, 0.0101], [0.59, 0.59, 0.6])},
                    artifacts={"attention_example": {"tokens": tokens, "pattern": pattern, "head": "18.6"}}),
        fake_record("induction-mean-ablation", "induction", "smollm2-135m", "absent",
                    reason="loss_ratio = 1.2 [1.1, 1.3] fails 'loss_ratio >= 2'", top_heads=["18.6", "17.3", "17.4"],
                    selection={"data": {"seed": 10}, "heads": ["18.6", "17.3", "17.4"],
                               "groups": {"previous-token heads": ["16.0"], "control": ["3.1", "9.2"]}},
                    artifacts={"effects": {"labels": ["18.6", "17.3", "17.4", "18.6, 17.3 and 17.4 together",
                                                      "control 3.1", "control 9.2"],
                                           "values": [0.3, 0.1, 0.02, 0.42, 0.01, 0.0], "ylabel": "loss increase (nats)",
                                           "control": [False, False, False, False, True, True]}},
                    checks=[fake_check("loss_increase >= 0.1", "loss_increase", 0.42, "holds", interval=[0.38, 0.45],
                                       threshold=0.1, control=("control_loss_increase", 0.01, False),
                                       null={"at": 0.05}),
                            fake_check("loss_ratio >= 2", "loss_ratio", 1.2, "absent", interval=[1.1, 1.3],
                                       threshold=2, tolerance=0.2, decisive=True,
                                       why="loss_ratio = 1.2 [1.1, 1.3] fails 'loss_ratio >= 2'")]),
        fake_record("previous-token-scoring", "previous-token", "smollm2-135m", "holds", scores=prev,
                    top_heads=["16.0", "17.3"],
                    checks=[fake_check("top_head_score >= 0.5", "top_head_score", 0.88, "holds", interval=[0.85, 0.9],
                                       threshold=0.5, null={"at": 0.1}, control=("control_top_head_score", 0.13, False),
                                       decisive=True)]),
        fake_record("induction-scoring", "induction", "gemma-3-270m", "absent", scores=[[0.01] * 4 for _ in range(18)],
                    top_heads=["5.1", "11.2", "5.2"], time="2026-01-03T00:00:00+00:00",
                    reason="[40 tokens seed 0] top_heads_depth = 0.294 lies outside the layer band",
                    checks=_variant_checks([0.419, 0.405, 0.437], [0.0068, 0.0092, 0.0051], [0.294, 0.294, 0.294],
                                           decisive=(0, 1)),
                    variants={n: {"top_head_score": b, "top_heads_depth": 0.294}
                              for n, b in zip(VARIANTS, [0.419, 0.405, 0.437])}),
        fake_record("previous-token-scoring", "previous-token", "gemma-3-270m", "inconclusive", top_heads=["2.3"],
                    reason="top_head_score = 0.6 does not beat the null's 99th percentile 0.65",
                    checks=[fake_check("top_head_score >= 0.5", "top_head_score", 0.6, "inconclusive",
                                       interval=[0.55, 0.64], threshold=0.5, decisive=True,
                                       null={"at": 0.65, "beats": False, "p": 0.03},
                                       why="top_head_score = 0.6 does not beat the null's 99th percentile 0.65")]),
        fake_record("induction-gpt2-published", "induction", "gpt2", "not run", checks=[],
                    selection={"from": "published"},
                    reason="not run: weights unavailable offline (fake reason for the site test)"),
        fake_record("induction-scoring", "induction", "smollm2-135m-random", "absent", top_heads=["3.3"],
                    reason="top_head_score = 0.02 [0.01, 0.03] fails 'top_head_score >= 0.25'",
                    checks=[fake_check("top_head_score >= 0.25", "top_head_score", 0.02, "absent", interval=[0.01, 0.03],
                                       threshold=0.25, decisive=True, null={"at": 0.03, "beats": False})]),
        fake_record("previous-token-scoring", "previous-token", "smollm2-135m-random", "holds", top_heads=["0.1"],
                    checks=[fake_check("top_head_score >= 0.5", "top_head_score", 0.97, "holds", interval=[0.96, 0.98],
                                       threshold=0.5, decisive=True, null={"at": 0.2})]),
    ])
    succ = [[0.0] * 9 for _ in range(30)]
    succ[25][2] = 0.9
    (directory / "scans").mkdir(parents=True, exist_ok=True)
    (directory / "scans" / "smollm2-135m.json").write_text(json.dumps({
        "model": "smollm2-135m", "time": "2026-01-04T00:00:00+00:00",
        "scores": {"induction": [[0.0] * 9 for _ in range(30)], "successor": succ,
                   "option_attention": [[0.5] * 9 for _ in range(30)]}}))


def _one_check(claim_id: str, head_id: str, model: str, verdict: str, heads: list[str], value: float,
               threshold: float = 0.25, measure: str = "top_head_score") -> dict:
    """A record with one decisive check, its interval wholly above (holds) or below (absent) the
    threshold, or straddling it (inconclusive)."""
    low, high = {"holds": (value - 0.02, value + 0.02), "absent": (value - 0.02, min(value + 0.02, threshold - 0.01)),
                 "inconclusive": (threshold - 0.02, threshold + 0.02)}[verdict]
    why = "" if verdict == "holds" else f"{measure} = {value:g} fails '{measure} >= {threshold:g}'"
    return fake_record(claim_id, head_id, model, verdict, top_heads=heads, reason=why,
                       checks=[fake_check(f"{measure} >= {threshold:g}", measure, value, verdict,
                                          interval=[round(low, 4), round(high, 4)], threshold=threshold,
                                          null={"at": 0.05}, decisive=True, why=why)])


@pytest.fixture
def one_check():
    """The one-decisive-check record factory, for tests that build their own results (a fixture
    because claims/ has a conftest too, so `from conftest import ...` depends on collection order)."""
    return _one_check


def write_family_results(directory: Path) -> None:
    """write_fake_results, plus the Qwen2.5-Coder pair (one family at two sizes, catalogue/models.yaml)
    and a toy model: seven model columns in the transfer matrix. From 0.5B (24 layers) to 1.5B (28):

    - induction-scoring holds at both, its heads deeper at 1.5B (depth 0.59 -> 0.72): moves;
    - previous-token-scoring is absent at 0.5B and holds at 1.5B: appears;
    - duplicate-token-scoring holds at 0.5B and is absent at 1.5B: vanishes;
    - successor-ov-score holds at both at about the same depth (0.52 -> 0.52): stays;
    - constant-option-attention has run on 0.5B only: not comparable yet."""
    write_fake_results(directory)
    q5, q15 = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
    ResultStore(directory).write([
        _one_check("induction-scoring", "induction", q5, "holds", ["14.3", "13.2"], 0.41),
        _one_check("induction-scoring", "induction", q15, "holds", ["20.1", "19.4"], 0.47),
        _one_check("previous-token-scoring", "previous-token", q5, "absent", ["2.1"], 0.31, threshold=0.5),
        _one_check("previous-token-scoring", "previous-token", q15, "holds", ["3.5"], 0.72, threshold=0.5),
        _one_check("duplicate-token-scoring", "duplicate-token", q5, "holds", ["1.0", "3.4"], 0.46),
        _one_check("duplicate-token-scoring", "duplicate-token", q15, "absent", ["2.2"], 0.12),
        _one_check("successor-ov-score", "successor", q5, "holds", ["12.1"], 0.9, threshold=0.5,
                   measure="successor_score"),
        _one_check("successor-ov-score", "successor", q15, "holds", ["14.0"], 0.95, threshold=0.5,
                   measure="successor_score"),
        _one_check("constant-option-attention", "constant", q5, "inconclusive", ["10.2"], 0.1, threshold=0.1,
                   measure="even_mass"),
        _one_check("induction-toy-phase-change", "induction", "toy-induction", "holds", ["1.4"], 0.9,
                   threshold=0.5, measure="phase_change"),
    ])
    # a scan of the 0.5B (24 layers x 14 heads): its model page has a grid 14 heads wide
    ind = [[0.0] * 14 for _ in range(24)]
    ind[14][3], ind[13][2], ind[9][13] = 0.41, 0.38, 0.35
    prev = [[0.0] * 14 for _ in range(24)]
    prev[2][1], prev[3][12] = 0.31, 0.6
    (directory / "scans" / f"{q5}.json").write_text(json.dumps({
        "model": q5, "time": "2026-01-04T00:00:00+00:00", "scores": {"induction": ind, "previous-token": prev}}))


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


@pytest.fixture(scope="session")
def family_site(tmp_path_factory, build_site) -> BuiltSite:
    """The real catalogue with the fake results plus the Qwen2.5-Coder pair and a toy model (see
    write_family_results): many model columns, and one family at two sizes."""
    results = tmp_path_factory.mktemp("family-results")
    write_family_results(results)
    return build_site(tmp_path_factory.mktemp("family-site"), HEADATLAS_RESULTS=str(results))


def pytest_configure(config):
    # tests/test_notebooks.py re-executes docs/notebooks/*.ipynb (1-2 minutes): `-m "not notebooks"` skips it.
    config.addinivalue_line("markers", "notebooks: slow; re-executes every notebook in docs/notebooks/")


# ============================================================================ (end of site)
