"""Claim result records and the per-model results files the site reads.

One JSON file per model, `results/<model>.json`, maps claim id -> the latest record. Writes
merge into the existing file and replace it atomically, so a crash never leaves half a file
and running one claim does not erase the others.

A record:
    claim_id, head_id, model, weights_sha256, data, params,
    selection: {data | from, heads, groups, values}  how and on what the heads were chosen
    measured:  {name: number}           the primary held-out variant's values
    variants:  {variant: {name: number}}, intervals: {variant: {name: [low, high]}}
    nulls:     {variant: {name: {n, mean, sd, p1, p5, p50, p95, p99, min, max}}}
    checks:    [{variant, check, measure, value, interval, threshold, outcome, why, null, control...}]
    artifacts: {scores: [[layer x head]], score_name, top_heads: ["L.H"], ...}
    verdict:   one of runtime.VERDICTS;  reason: what decided it
    versions:  {python, torch, transformers, transformer_lens, headatlas}
    time (UTC ISO 8601), duration_s
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from headatlas.yamlio import write_json_atomic

#: Every verdict a record can carry, and what it means (the site's glossary reads these too).
VERDICTS = {
    "holds": "every check passed on every held-out variant, beyond its null and with its control failing",
    "absent": "a check's whole interval lies on the wrong side of its threshold",
    "inconclusive": "an interval straddles a threshold, or the null or the control also passes",
    "not applicable": "the model does not do the task the claim needs (the reason gives the figure)",
    "error": "the test crashed or broke the protocol; never read as a head being absent",
    "not run": "the weights cannot be had on this machine",
}


def results_dir(root: Path) -> Path:
    """Where results live: $HEADATLAS_RESULTS, else <root>/results."""
    return Path(os.environ.get("HEADATLAS_RESULTS") or root / "results")


class ResultStore:
    """Read and merge-write the per-model results files in one directory."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, model: str) -> Path:
        safe = model.replace("/", "__").replace(":", "_")
        return self.directory / f"{safe}.json"

    def load(self, model: str) -> dict[str, Any]:
        try:
            data = json.loads(self.path(model).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"model": model, "updated": None, "records": {}}
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path(model)}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                             "delete it or restore it from git") from None
        return data

    def all(self) -> dict[str, dict[str, Any]]:
        """model name -> results document, for every results file present."""
        if not self.directory.is_dir():
            return {}
        out = {}
        for path in sorted(self.directory.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            out[data["model"]] = data
        return out

    def latest(self, claim_id: str) -> list[dict[str, Any]]:
        """Every model's latest record of one claim."""
        return [doc["records"][claim_id] for doc in self.all().values() if claim_id in doc["records"]]

    def write(self, records: list[dict[str, Any]]) -> None:
        by_model: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            if r.get("verdict") not in VERDICTS:
                raise ValueError(f"bad verdict {r.get('verdict')!r} in record of {r['claim_id']}; "
                                 f"expected one of {', '.join(VERDICTS)}")
            by_model.setdefault(r["model"], []).append(r)
        for model, recs in by_model.items():
            doc = self.load(model)
            for r in recs:
                doc["records"][r["claim_id"]] = r
            doc["updated"] = max(r["time"] for r in doc["records"].values())
            write_json_atomic(self.path(model), doc)
