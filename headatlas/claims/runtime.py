"""What a running claim sees (`ClaimRun`) and how its measurements become a verdict.

A claim test only measures. The checks, thresholds and the control each must fail are read
from the claim's spec in heads/<id>.yaml, so the statement the site shows and the assertion
pytest makes are the same fact, stated once.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
from importlib import metadata
from typing import Any

import pytest

from headatlas.catalogue import ClaimSpec, HeadEntry
from headatlas.models import LoadedModel


def claim(claim_id: str):
    """Mark a test function as the implementation of the claim `claim_id` of some head entry."""
    return pytest.mark.claim(claim_id)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "transformer-lens", "headatlas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


class ClaimRun:
    """One claim on one model: its spec, the loaded model, and what the test measured."""

    def __init__(self, entry: HeadEntry, spec: ClaimSpec, model_name: str, model: LoadedModel | None,
                 baseline: dict[str, Any] | None = None):
        self.entry = entry
        # The committed record of this claim on this model, if any: measured values may not
        # drift from it by more than each check's tolerance (a dependency upgrade that changes
        # behaviour is caught, not hidden). Only comparable when data and params are unchanged.
        self.baseline = baseline if baseline and baseline.get("data") == spec.data \
            and baseline.get("params") == spec.params and baseline.get("measured") else None
        self.spec = spec
        self.model_name = model_name
        self.model = model
        self.measured: dict[str, float] = {}
        self.artifacts: dict[str, Any] = {}
        self.check_results: list[dict[str, Any]] = []

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def data(self) -> dict[str, Any]:
        return self.spec.data

    def measure(self, **values: float) -> None:
        """Record measured numbers (the values the checks and the site read)."""
        for k, v in values.items():
            v = float(v)
            if math.isnan(v):
                raise ValueError(f"measured value {k} is NaN")
            self.measured[k] = v

    def artifact(self, **values: Any) -> None:
        """Record supporting evidence for the site (score matrices, chosen heads...)."""
        self.artifacts.update(values)

    def conclude(self) -> None:
        """Evaluate every check and its control; raise AssertionError listing what failed."""
        band = self.entry.layer_band.relative
        failures = []
        self.check_results = []
        for chk in self.spec.checks:
            if chk.measure not in self.measured:
                raise AssertionError(f"the claim test never measured {chk.measure!r}, which its check needs")
            value = self.measured[chk.measure]
            holds = chk.holds(value, band)
            res: dict[str, Any] = {"check": chk.describe(band), "measure": chk.measure, "value": value,
                                   "holds": holds, "tolerance": chk.tolerance}
            if not holds:
                failures.append(f"{chk.measure} = {value:.4g} fails '{chk.describe(band)}'")
            if self.baseline and chk.measure in self.baseline["measured"]:
                before = self.baseline["measured"][chk.measure]
                res["committed_value"] = before
                if abs(value - before) > chk.tolerance + 1e-12:
                    failures.append(f"{chk.measure} drifted from the committed {before:.4g} to {value:.4g}, "
                                    f"beyond its tolerance of {chk.tolerance:g}")
            if chk.control:
                if chk.control not in self.measured:
                    raise AssertionError(f"the claim test never measured its control {chk.control!r}")
                cvalue = self.measured[chk.control]
                cholds = chk.holds(cvalue, band)
                res.update(control=chk.control, control_value=cvalue, control_holds=cholds)
                if cholds:
                    failures.append(f"negative control {chk.control} = {cvalue:.4g} also passes "
                                    f"'{chk.describe(band)}', so the check does not discriminate")
            self.check_results.append(res)
        if failures:
            raise AssertionError("; ".join(failures))

    def record(self, status: str, reason: str, started: _dt.datetime, duration: float) -> dict[str, Any]:
        return {
            "claim_id": self.spec.id,
            "head_id": self.entry.id,
            "model": self.model_name,
            "weights_sha256": self.model.weights_sha256 if self.model else None,
            "method": self.spec.method,
            "data": self.spec.data,
            "params": self.spec.params,
            "measured": self.measured,
            "checks": self.check_results,
            "artifacts": self.artifacts,
            "status": status,
            "reason": reason,
            "versions": library_versions(),
            "time": started.isoformat(timespec="seconds"),
            "duration_s": round(duration, 3),
        }
