"""What a running claim sees (`ClaimRun`) and how its measurements become a verdict.

The protocol lives here, not in each claim's discipline:

1. Selection and test are different data. A claim chooses its heads on the selection set
   (`run.selection_data`, the spec's `selection:` overrides), freezes them with `run.select()`,
   then measures them on each held-out data variant (`run.variants()`). Values recorded before
   `select()` are selection values: they are kept in the record, and a check that reads one is
   refused. Claims whose heads come from the weights alone (`selection: weights`) or from the
   literature (`selection: published`) skip the split, and say so.
2. Nulls, not one draw. `run.null(name, samples)` records the distribution of the same measure
   over many matched head sets (or over all heads); a check naming it must lie beyond its
   stated percentile, and the record keeps the percentile, p-value and z.
3. Intervals. A per-prompt measurement (`run.measure(x=[...])`) is averaged with a seeded
   bootstrap 95% interval; a check reads the interval's conservative end.
4. Verdicts that say what happened: holds / absent / inconclusive / not applicable / error /
   not run (see `VERDICTS`). Deciding whether a verdict may change is the plugin's job (CI
   guards committed verdicts); this module only decides what the measurements say.

The checks, thresholds, nulls and controls are read from the claim's spec in heads/<id>.yaml,
so the statement the site shows and the verdict the runtime reaches are the same fact, stated
once.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
from importlib import metadata
from typing import Any, Iterable, Iterator

import torch

from headatlas.catalogue import Check, ClaimSpec, HeadEntry
from headatlas.claims.results import VERDICTS
from headatlas.methods import stats
from headatlas.models import LoadedModel

DEFAULT_VARIANT = "default"

class NotApplicable(Exception):
    """The model cannot do the task the claim needs (e.g. it knows too few facts). The message
    must give the measured figure, e.g. 'knows 1 of 40 capitals; the claim needs 8'."""


class ProtocolError(Exception):
    """The claim test broke the protocol (checked a selection value, never concluded, ...)."""


def claim(claim_id: str):
    """Mark a test function as the implementation of the claim `claim_id` of some head entry."""
    import pytest

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
    """(name, data) for each held-out variant of a claim's data; the first is the primary one."""
    base = {k: v for k, v in data.items() if k != "variants"}
    variants = data.get("variants")
    if not variants:
        return [(DEFAULT_VARIANT, base)]
    out = []
    for v in variants:
        overrides = {k: val for k, val in v.items() if k != "name"}
        out.append((str(v["name"]), {**base, **overrides}))
    return out


def _finite(name: str, v: float) -> float:
    v = float(v)
    if math.isnan(v):
        raise ValueError(f"measured value {name} is NaN")
    if math.isinf(v):
        raise ValueError(f"measured value {name} is {v}; a finite number is expected")
    return v


def _estimate(name: str, value: Any) -> stats.Estimate:
    """A measured value as an Estimate: numbers are exact, per-prompt values are bootstrapped."""
    if isinstance(value, stats.Estimate):
        est = value
    elif isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        v = float(value)
        est = stats.Estimate(v, v, v, 1)
    else:
        t = torch.as_tensor(value, dtype=torch.float64).flatten()
        if t.numel() == 0:
            raise ValueError(f"measured value {name} has no per-prompt values")
        bad = t[~torch.isfinite(t)]
        if bad.numel():
            raise ValueError(f"measured value {name} has non-finite per-prompt values ({bad[0].item()})")
        est = stats.bootstrap_mean(t)
    for part in (est.value, est.low, est.high):
        _finite(name, part)
    return est


def _fmt_heads(heads: Iterable) -> list[str]:
    return [f"{int(layer)}.{int(head)}" for layer, head in heads]


class ClaimRun:
    """One claim on one model: its spec, the loaded model, and what the test measured."""

    def __init__(self, entry: HeadEntry, spec: ClaimSpec, model_name: str, model: LoadedModel | None,
                 baseline: dict[str, Any] | None = None):
        self.entry = entry
        self.spec = spec
        self.model_name = model_name
        self.model = model
        self.baseline = baseline
        self.by_variant: dict[str, dict[str, float]] = {}
        self.intervals: dict[str, dict[str, list[float]]] = {}
        self.nulls: dict[str, dict[str, torch.Tensor]] = {}
        self.selection_values: dict[str, float] = {}
        self.selected_heads: list[tuple[int, int]] | None = None
        self.selected_groups: dict[str, list[tuple[int, int]]] = {}
        self.artifacts: dict[str, Any] = {}
        self.check_results: list[dict[str, Any]] = []
        self.verdict: str | None = None
        self.reason: str = ""
        self._current: str | None = None
        self._current_data: dict[str, Any] | None = None

    # ------------------------------------------------------------------ data

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def splits(self) -> bool:
        """Whether heads are chosen on data (and so must be judged on other data)."""
        return isinstance(self.spec.selection, dict)

    @property
    def selection_data(self) -> dict[str, Any]:
        """The data the heads are chosen on: the base data with the spec's `selection` overrides."""
        if not self.splits:
            raise ProtocolError(f"claim {self.spec.id} declares selection: {self.spec.selection!r}; "
                                "it has no selection data")
        base = {k: v for k, v in self.spec.data.items() if k != "variants"}
        return {**base, **self.spec.selection}

    @property
    def data(self) -> dict[str, Any]:
        """The data of the held-out variant being measured (the primary one outside `variants()`)."""
        return self._current_data if self._current_data is not None else spec_variants(self.spec.data)[0][1]

    @property
    def primary(self) -> str:
        return spec_variants(self.spec.data)[0][0]

    @property
    def variant(self) -> str:
        """The name of the held-out variant being measured (the primary one outside `variants()`),
        for messages such as a not-applicable reason."""
        return self._current if self._current is not None else self.primary

    @property
    def is_primary(self) -> bool:
        return self._current in (None, self.primary)

    @property
    def measured(self) -> dict[str, float]:
        """The primary variant's values."""
        return self.by_variant.get(self.primary, {})

    # ------------------------------------------------------------------ selection

    def select(self, heads: Iterable, groups: dict[str, Iterable] | None = None, **values: Any) -> None:
        """Freeze the heads chosen on the selection set (and any further named groups), with the
        values they were chosen by. These values are recorded but no check may read them."""
        if self._current is not None:
            raise ProtocolError("select() inside variants(): heads are chosen once, on the selection "
                                "set, before any held-out variant is measured")
        if self.selected_heads is not None:
            raise ProtocolError("select() called twice; pass every group in one call")
        self.selected_heads = [(int(a), int(b)) for a, b in heads]
        self.selected_groups = {k: [(int(a), int(b)) for a, b in v] for k, v in (groups or {}).items()}
        for k, v in values.items():
            self.selection_values[k] = _estimate(k, v).value

    @property
    def heads(self) -> list[tuple[int, int]]:
        if self.selected_heads is None:
            raise ProtocolError("no heads selected yet: call run.select(...) first")
        return self.selected_heads

    # ------------------------------------------------------------------ test

    def variants(self) -> Iterator[dict[str, Any]]:
        """Iterate over the held-out variants; what is measured meanwhile belongs to the current one."""
        if self.splits and self.selected_heads is None:
            raise ProtocolError("held-out variants measured before any heads were selected: choose "
                                "them on run.selection_data and freeze them with run.select() first")
        try:
            for name, data in spec_variants(self.spec.data):
                self._current, self._current_data = name, data
                yield data
        finally:
            self._current, self._current_data = None, None

    def _target(self) -> str | None:
        if self._current is not None:
            return self._current
        if self.splits:
            return None  # before the split: a selection value
        return self.primary

    def measure(self, **values: Any) -> None:
        """Record measured values: numbers, Estimates, or per-prompt values (averaged with a
        seeded bootstrap 95% interval). Before `select()` they are selection values."""
        variant = self._target()
        for k, v in values.items():
            est = _estimate(k, v)
            if variant is None:
                self.selection_values[k] = est.value
                continue
            self.by_variant.setdefault(variant, {})[k] = est.value
            if est.n > 1:
                self.intervals.setdefault(variant, {})[k] = [est.low, est.high]

    def null(self, name: str, samples: Any) -> None:
        """Record a null distribution (the same measure over many matched head sets, or over all
        heads) on the current held-out variant."""
        variant = self._target()
        if variant is None:
            raise ProtocolError(f"null {name!r} recorded before heads were selected; nulls belong to held-out data")
        t = torch.as_tensor(samples, dtype=torch.float64).detach().flatten()
        if t.numel() < 19:
            raise ProtocolError(f"null {name!r} has {t.numel()} samples; at least 19 are needed "
                                "for a 95th percentile to mean anything")
        if not torch.isfinite(t).all():
            raise ValueError(f"null {name!r} has non-finite samples")
        self.nulls.setdefault(variant, {})[name] = t

    def not_applicable(self, reason: str) -> None:
        """Stop: the model does not do the task. `reason` must give the measured figure."""
        raise NotApplicable(reason)

    def artifact(self, **values: Any) -> None:
        """Record supporting evidence for the site (score matrices, chosen heads...)."""
        self.artifacts.update(values)

    # ------------------------------------------------------------------ verdict

    def _check_one(self, chk: Check, variant: str, band: tuple[float, float]) -> dict[str, Any]:
        measured = self.by_variant.get(variant, {})
        if chk.measure not in measured:
            if chk.measure in self.selection_values:
                raise ProtocolError(f"check on {chk.measure!r} reads a value measured during selection; "
                                    "checks read held-out values only")
            raise ProtocolError(f"the claim test never measured {chk.measure!r} on variant {variant!r}, "
                                "which its check needs")
        value = measured[chk.measure]
        low, high = self.intervals.get(variant, {}).get(chk.measure, [value, value])
        res: dict[str, Any] = {"variant": variant, "check": chk.describe(band), "measure": chk.measure,
                               "value": value, "tolerance": chk.tolerance}
        if [low, high] != [value, value]:
            res["interval"] = [low, high]
        if chk.op == "in-layer-band":
            ok = chk.holds(value, band)
            res.update(outcome="holds" if ok else "absent",
                       why="" if ok else f"{chk.measure} = {value:.3g} lies outside the layer band")
            return res
        res["threshold"] = chk.threshold
        conservative, optimistic = (low, high) if chk.upper else (high, low)
        if not chk.holds(optimistic, band):
            outcome, why = "absent", (f"{chk.measure} = {value:.3g} [{low:.3g}, {high:.3g}] fails "
                                      f"'{chk.describe(band)}'")
        elif not chk.holds(conservative, band):
            outcome, why = "inconclusive", (f"the interval of {chk.measure} [{low:.3g}, {high:.3g}] "
                                            f"straddles {chk.threshold:g}")
        else:
            outcome, why = "holds", ""
        if outcome == "absent" and chk.knockout:
            outcome, why = "inconclusive", (why + "; a knock-out effect that falls short is weak evidence of "
                                            "absence (later heads can make up for it), so it reads inconclusive")
        if chk.beats_null:
            samples = self.nulls.get(variant, {}).get(chk.beats_null)
            if samples is None:
                raise ProtocolError(f"the claim test never recorded the null {chk.beats_null!r} on variant {variant!r}")
            q = chk.percentile if chk.upper else 100 - chk.percentile
            at = stats.percentile(samples, q)
            beats = value > at if chk.upper else value < at
            res["null"] = {"name": chk.beats_null, "n": samples.numel(), "percentile": q, "at": at,
                           "p": stats.empirical_p(value, samples, greater=chk.upper),
                           "z": _clip(stats.z_score(value, samples)), "median": stats.percentile(samples, 50),
                           "beats": beats}
            if outcome == "holds" and not beats:
                outcome, why = "inconclusive", (f"{chk.measure} = {value:.3g} does not beat the null's "
                                                f"{q:g}th percentile {at:.3g}")
        if chk.control:
            if chk.control not in measured:
                raise ProtocolError(f"the claim test never measured its control {chk.control!r} on {variant!r}")
            cvalue = measured[chk.control]
            cholds = chk.holds(cvalue, band)
            res.update(control=chk.control, control_value=cvalue, control_holds=cholds)
            if outcome == "holds" and cholds:
                outcome, why = "inconclusive", (f"the control {chk.control} = {cvalue:.3g} also passes "
                                                f"'{chk.describe(band)}'")
        res.update(outcome=outcome, why=why)
        return res

    def conclude(self) -> str:
        """Evaluate every check, its null and its control on every held-out variant; set and
        return the verdict. Absent and inconclusive are results, not exceptions."""
        band = self.entry.layer_band.relative
        names = [n for n, _ in spec_variants(self.spec.data)]
        missing = [n for n in names if n not in self.by_variant]
        if missing:
            raise ProtocolError(f"the claim test never measured held-out variant(s) {missing}")
        if self.splits and self.selected_heads is None:
            raise ProtocolError("the claim never froze its heads with run.select()")
        self.check_results = [self._check_one(chk, name, band) for name in names for chk in self.spec.checks]
        outcomes = [r["outcome"] for r in self.check_results]
        for verdict in ("absent", "inconclusive"):
            if verdict in outcomes:
                decisive = outcomes.index(verdict)
                self.verdict = verdict
                r = self.check_results[decisive]
                self.reason = (f"[{r['variant']}] " if len(names) > 1 else "") + r["why"]
                break
        else:
            decisive = 0
            self.verdict, self.reason = "holds", ""
        for i, r in enumerate(self.check_results):
            r["decisive"] = i == decisive
        return self.verdict

    def drift(self) -> list[str]:
        """Checked values that moved from the committed record by more than their tolerance."""
        if not self.baseline:
            return []
        before = self.baseline.get("variants") or {self.primary: self.baseline.get("measured", {})}
        out = []
        for r in self.check_results:
            old = before.get(r["variant"], {}).get(r["measure"])
            if old is None:
                continue
            r["committed_value"] = old
            if abs(r["value"] - old) > r["tolerance"] + 1e-12:
                out.append(f"[{r['variant']}] {r['measure']} drifted from the committed {old:.4g} to "
                           f"{r['value']:.4g}, beyond its tolerance of {r['tolerance']:g}")
        return out

    def set_outcome(self, verdict: str, reason: str) -> None:
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        self.verdict, self.reason = verdict, reason

    def record(self, started: _dt.datetime, duration: float) -> dict[str, Any]:
        if self.splits:
            selection: dict[str, Any] = {"data": self.spec.selection}
        else:
            selection = {"from": self.spec.selection}
        if self.selected_heads is not None:
            selection["heads"] = _fmt_heads(self.selected_heads)
        if self.selected_groups:
            selection["groups"] = {k: _fmt_heads(v) for k, v in self.selected_groups.items()}
        if self.selection_values:
            selection["values"] = self.selection_values
        rec = {
            "claim_id": self.spec.id,
            "head_id": self.entry.id,
            "model": self.model_name,
            "weights_sha256": self.model.weights_sha256 if self.model else None,
            "method": self.spec.method,
            "data": self.spec.data,
            "params": self.spec.params,
            "selection": selection,
            "verdict": self.verdict or "error",
            "reason": self.reason,
            "measured": self.measured,
            "variants": self.by_variant,
            "intervals": self.intervals,
            "nulls": {v: {k: _summary(t) for k, t in d.items()} for v, d in self.nulls.items()},
            "checks": self.check_results,
            "artifacts": self.artifacts,
            "versions": library_versions(),
            "time": started.isoformat(timespec="seconds"),
            "duration_s": round(duration, 3),
        }
        return rec


def _clip(z: float) -> float:
    return max(-1e6, min(1e6, z))


def _summary(t: torch.Tensor) -> dict[str, float]:
    q = torch.quantile(t, torch.tensor([0.01, 0.05, 0.5, 0.95, 0.99], dtype=t.dtype)).tolist()
    return {"n": t.numel(), "mean": float(t.mean()), "sd": float(t.std()) if t.numel() > 1 else 0.0,
            "p1": q[0], "p5": q[1], "p50": q[2], "p95": q[3], "p99": q[4],
            "min": float(t.min()), "max": float(t.max())}
