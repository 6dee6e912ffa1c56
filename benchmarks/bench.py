"""Speed benchmarks of Head Atlas (run by hand, not in the test suite: figures depend on the machine).

    python benchmarks/bench.py            # all
    python benchmarks/bench.py --skip-install
    python benchmarks/bench.py --claims-only   # the claim suite as the tests run it
    python benchmarks/bench.py --claims-only --full-matrix   # every portable claim on every model
    python benchmarks/bench.py --first-loads   # adds the first load of each embedded model

Measures, each in a fresh subprocess where it matters:
- install: scripts/bootstrap.sh into a brand-new virtual environment (pip step only)
- first model load (GGUF dequantized into an empty cache) and cached load; with --first-loads,
  the first load of every embedded pretrained model
- `pytest claims/` wall time after the models are cached (every claim on every model it
  declares, against a copy of the committed results so drift checks and expected failures
  behave as in CI), with per-model totals, per-claim durations and the run's peak memory
- catalogue validation time
Prints a table and writes benchmarks/last-run.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED = ["smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
PY = sys.executable


def timed(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if out.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return elapsed, out.stdout


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


LOAD = """
import time, json
t0 = time.perf_counter()
from headatlas.models import load_model
t1 = time.perf_counter()
m = load_model('smollm2-135m', progress=False)
print(json.dumps({'imports_s': t1 - t0, 'load_s': m.load_seconds, 'from_cache': m.from_cache}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--claims-only", action="store_true", help="only time the claim suite")
    ap.add_argument("--full-matrix", action="store_true",
                    help="time every portable claim on every model (the main command's run), not the test suite's sample")
    ap.add_argument("--first-loads", action="store_true",
                    help="also time the first load (assemble, check, dequantize) of every embedded pretrained model")
    args = ap.parse_args()
    res: dict[str, float | str] = {}

    if not (args.skip_install or args.claims_only):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
            secs, _ = timed(["bash", "scripts/bootstrap.sh"], env={"HEADATLAS_NO_BROWSER": "1"}, cwd=work)
            res["fresh install (bootstrap, pip step), s"] = secs
            res["virtual environment size, MB"] = du(work / ".venv") / 1e6

    if not args.claims_only:
        with tempfile.TemporaryDirectory() as cache:
            env = {"HEADATLAS_CACHE": cache}
            _, out = timed([PY, "-c", LOAD], env=env)
            first = json.loads(out.strip().splitlines()[-1])
            _, out = timed([PY, "-c", LOAD], env=env)
            cached = json.loads(out.strip().splitlines()[-1])
            assert not first["from_cache"] and cached["from_cache"]
            res["first load (dequantize + cache), s"] = first["load_s"]
            res["cached load, s"] = cached["load_s"]
            res["library imports (torch, transformers, TransformerLens), s"] = cached["imports_s"]
            res["model cache size, MB"] = du(Path(cache)) / 1e6
        if args.first_loads:
            for name in EMBEDDED:
                with tempfile.TemporaryDirectory() as cache:
                    _, out = timed([PY, "-c", LOAD.replace("'smollm2-135m'", repr(name))], env={"HEADATLAS_CACHE": cache})
                    res[f"first load of {name} (empty cache), s"] = json.loads(out.strip().splitlines()[-1])["load_s"]
                    res[f"cache of {name}, MB"] = du(Path(cache)) / 1e6

    # The claim suite as CI runs it: every claim on each model it declares, with the committed
    # results copied aside so drift checks and expected failures apply and nothing is overwritten.
    results = Path(tempfile.mkdtemp())
    for path in (ROOT / "results").glob("*.json"):
        shutil.copy(path, results / path.name)
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    secs, out = timed([PY, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider"]
                      + (["--full-matrix"] if args.full_matrix else []),
                      env={"HEADATLAS_RESULTS": str(results)})
    what = "the whole matrix" if args.full_matrix else "the test suite's claims (test_sample on slow models)"
    res[f"pytest claims/, {what} (cached models, incl. process start and loads), s"] = secs
    res["pytest claims/ summary"] = out.strip().splitlines()[-1]
    # ru_maxrss of the children is the largest child's peak (kB on Linux): the claim run's.
    res["peak memory of the claim run, GB"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    per_model: dict[str, float] = {}
    for path in results.glob("*.json"):
        for cid, rec in json.loads(path.read_text())["records"].items():
            # only records this run wrote: pairs the suite left out keep their committed durations
            if rec.get("verdict") == "not run" or not rec.get("duration_s") or rec.get("time", "") < started:
                continue
            per_model[rec["model"]] = per_model.get(rec["model"], 0.0) + rec["duration_s"]
            res[f"  claim {cid} [{rec['model']}] ({rec['verdict']}), s"] = rec["duration_s"]
    for model, total in sorted(per_model.items()):
        res[f"claims on {model}, sum of claim durations, s"] = total
    shutil.rmtree(results, ignore_errors=True)

    if args.claims_only:
        report(res)
        return
    secs, _ = timed([PY, "-m", "headatlas.cli", "validate"])
    res["headatlas validate (process incl. imports), s"] = secs

    report(res)


def report(res: dict) -> None:
    width = max(map(len, res))
    for k, v in res.items():
        print(f"{k:<{width}}  {v:8.2f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    (ROOT / "benchmarks" / "last-run.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
