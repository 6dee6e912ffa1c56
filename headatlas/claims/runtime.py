"""What a running claim sees (`ClaimRun`) and how its measurements become a verdict.

A claim test only measures. The checks, thresholds and the control each must fail are read
from the claim's spec in heads/<id>.yaml, so the statement the site shows and the assertion
pytest makes are the same fact, stated once.

Data variants: a spec's `data.variants` lists overrides of the base data (other templates,
lengths, seeds). The test measures every variant; the claim holds only if every variant
passes every check, and the record keeps each variant's values so the site can show the spread.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
from importlib import metadata
from typing import Any, Iterator

import pytest

from headatlas.catalogue import ClaimSpec, HeadEntry
from headatlas.models import LoadedModel

DEFAULT_VARIANT = "default"


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


def spec_variants(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, data) for each variant of a claim's data; the first is the primary one."""
    base = {k: v for k, v in data.items() if k != "variants"}
    variants = data.get("variants")
    if not variants:
        return [(DEFAULT_VARIANT, base)]
    out = []
    for v in variants:
        overrides = {k: val for k, val in v.items() if k != "name"}
        out.append((str(v["name"]), {**base, **overrides}))
    return out


class ClaimRun:
    """One claim on one model: its spec, the loaded model, and what the test measured."""

    def __init__(self, entry: HeadEntry, spec: ClaimSpec, model_name: str, model: LoadedModel | None,
                 baseline: dict[str, Any] | None = None):
        self.entry = entry
        self.spec = spec
        self.model_name = model_name
        self.model = model
        # The committed record of this claim on this model, if any: measured values may not
        # drift from it by more than each check's tolerance (a dependency upgrade that changes
        # behaviour is caught, not hidden). Only comparable when data and params are unchanged.
        self.baseline = baseline if baseline and baseline.get("data") == spec.data \
            and baseline.get("params") == spec.params and baseline.get("measured") else None
        self.by_variant: dict[str, dict[str, float]] = {}
        self.artifacts: dict[str, Any] = {}
        self.check_results: list[dict[str, Any]] = []
        self._current = DEFAULT_VARIANT
        self._current_data: dict[str, Any] | None = None

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def data(self) -> dict[str, Any]:
        """The data of the variant being measured (the primary one outside `variants()`)."""
        return self._current_data if self._current_data is not None else spec_variants(self.spec.data)[0][1]

    @property
    def measured(self) -> dict[str, float]:
        """The primary variant's values."""
        if not self.by_variant:
            return {}
        return self.by_variant[spec_variants(self.spec.data)[0][0]]

    @property
    def is_primary(self) -> bool:
        return self._current in (DEFAULT_VARIANT, spec_variants(self.spec.data)[0][0])

    def variants(self) -> Iterator[dict[str, Any]]:
        """Iterate over the data variants; measurements made meanwhile belong to the current one."""
        try:
            for name, data in spec_variants(self.spec.data):
                self._current, self._current_data = name, data
                yield data
        finally:
            self._current, self._current_data = DEFAULT_VARIANT, None

    def measure(self, **values: float) -> None:
        """Record measured numbers (the values the checks and the site read)."""
        name = self._current if self._current != DEFAULT_VARIANT else spec_variants(self.spec.data)[0][0]
        target = self.by_variant.setdefault(name, {})
        for k, v in values.items():
            v = float(v)
            if math.isnan(v):
                raise ValueError(f"measured value {k} is NaN")
            target[k] = v

    def artifact(self, **values: Any) -> None:
        """Record supporting evidence for the site (score matrices, chosen heads...)."""
        self.artifacts.update(values)

    def _baseline_values(self, variant: str) -> dict[str, float]:
        if not self.baseline:
            return {}
        if "variants" in self.baseline:
            return self.baseline["variants"].get(variant, {})
        return self.baseline["measured"] if variant == spec_variants(self.spec.data)[0][0] else {}

    def conclude(self) -> None:
        """Evaluate every check and its control on every variant; raise AssertionError listing
        what failed."""
        band = self.entry.layer_band.relative
        names = [n for n, _ in spec_variants(self.spec.data)]
        missing = [n for n in names if n not in self.by_variant]
        if missing:
            raise AssertionError(f"the claim test never measured data variant(s) {missing}")
        failures = []
        self.check_results = []
        for name in names:
            measured = self.by_variant[name]
            before_values = self._baseline_values(name)
            tag = f"[{name}] " if len(names) > 1 else ""
            for chk in self.spec.checks:
                if chk.measure not in measured:
                    raise AssertionError(f"the claim test never measured {chk.measure!r}, which its check needs")
                value = measured[chk.measure]
                holds = chk.holds(value, band)
                res: dict[str, Any] = {"check": chk.describe(band), "measure": chk.measure, "value": value,
                                       "holds": holds, "tolerance": chk.tolerance}
                if len(names) > 1:
                    res["variant"] = name
                if not holds:
                    failures.append(f"{tag}{chk.measure} = {value:.4g} fails '{chk.describe(band)}'")
                if chk.measure in before_values:
                    before = before_values[chk.measure]
                    res["committed_value"] = before
                    if abs(value - before) > chk.tolerance + 1e-12:
                        failures.append(f"{tag}{chk.measure} drifted from the committed {before:.4g} to "
                                        f"{value:.4g}, beyond its tolerance of {chk.tolerance:g}")
                if chk.control:
                    if chk.control not in measured:
                        raise AssertionError(f"the claim test never measured its control {chk.control!r}")
                    cvalue = measured[chk.control]
                    cholds = chk.holds(cvalue, band)
                    res.update(control=chk.control, control_value=cvalue, control_holds=cholds)
                    if cholds:
                        failures.append(f"{tag}negative control {chk.control} = {cvalue:.4g} also passes "
                                        f"'{chk.describe(band)}', so the check does not discriminate")
                self.check_results.append(res)
        if failures:
            raise AssertionError("; ".join(failures))

    def record(self, status: str, reason: str, started: _dt.datetime, duration: float) -> dict[str, Any]:
        rec = {
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
        if len(self.by_variant) > 1 or "variants" in self.spec.data:
            rec["variants"] = self.by_variant
        return rec
