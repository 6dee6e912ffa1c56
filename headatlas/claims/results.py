"""Claim result records and the per-model results files the site reads.

One JSON file per model, `results/<model>.json`, maps claim id -> the latest record. Writes
merge into the existing file and replace it atomically, so a crash never leaves half a file
and running one claim does not erase the others.

A record:
    claim_id, head_id, model, weights_sha256, data, params,
    measured:  {name: number}           the values the checks read
    checks:    [{check, measure, value, holds, control, control_value, control_holds}]
    artifacts: {scores: [[layer x head]], score_name, top_heads: ["L.H"], ...}
    status:    "pass" | "fail" | "not run";  reason: why (failed check / missing weights)
    versions:  {python, torch, transformers, transformer_lens, headatlas}
    time (UTC ISO 8601), duration_s
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from headatlas.yamlio import write_json_atomic

STATUSES = ("pass", "fail", "not run")


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
            if r["status"] not in STATUSES:
                raise ValueError(f"bad status {r['status']!r} in record of {r['claim_id']}")
            by_model.setdefault(r["model"], []).append(r)
        for model, recs in by_model.items():
            doc = self.load(model)
            for r in recs:
                doc["records"][r["claim_id"]] = r
            doc["updated"] = max(r["time"] for r in doc["records"].values())
            write_json_atomic(self.path(model), doc)
