"""Speed benchmarks of Head Atlas (run by hand, not in the test suite: figures depend on the machine).

    python benchmarks/bench.py            # all
    python benchmarks/bench.py --skip-install

Measures, each in a fresh subprocess where it matters:
- install: scripts/bootstrap.sh into a brand-new virtual environment (pip step only)
- first model load (GGUF dequantized into an empty cache) and cached load
- `pytest claims/` wall time after the model is cached, and per-claim durations
- catalogue validation time
Prints a table and writes benchmarks/last-run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    args = ap.parse_args()
    res: dict[str, float | str] = {}

    if not args.skip_install:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
            secs, _ = timed(["bash", "scripts/bootstrap.sh"], env={"HEADATLAS_NO_BROWSER": "1"}, cwd=work)
            res["fresh install (bootstrap, pip step), s"] = secs
            res["virtual environment size, MB"] = du(work / ".venv") / 1e6

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

    results = Path(tempfile.mkdtemp())
    secs, out = timed([PY, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider"],
                      env={"HEADATLAS_RESULTS": str(results)})
    res["pytest claims/ (cached model, incl. process start and load), s"] = secs
    for path in results.glob("*.json"):
        for cid, rec in json.loads(path.read_text())["records"].items():
            res[f"  claim {cid} [{rec['model']}] ({rec['status']}), s"] = rec["duration_s"]
    shutil.rmtree(results, ignore_errors=True)

    secs, _ = timed([PY, "-m", "headatlas.cli", "validate"])
    res["headatlas validate (process incl. imports), s"] = secs

    width = max(map(len, res))
    for k, v in res.items():
        print(f"{k:<{width}}  {v:8.2f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    (ROOT / "benchmarks" / "last-run.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
