"""How the site reads one claim result record: its verdict, the reason in a reader's words,
its data variants and the spread of its values across them.

Status semantics (the only place they are decided):

- ``pass``: the claim was reproduced on the model ("reproduced", green).
- ``fail`` on the catalogue's default model: the claim is broken ("fail", red): the model it
  was written and checked against no longer shows what the claim states.
- ``fail`` on any other model: a recorded result, not a broken build: the head type, as the
  claim defines it, was not found there ("not found", orange), with the check that failed.
- ``not run``: the claim could not run, for example because the weights were unavailable
  ("not run", grey), with the reason.

Only the exact status ``pass`` is ever drawn as passing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NO_RESULT = "no result recorded yet"


@dataclass(frozen=True)
class Verdict:
    key: str     # "reproduced" | "fail" | "not found" | "not run" | "none"
    css: str     # badge class
    label: str   # badge text
    reason: str  # one line, empty when reproduced

    @property
    def passing(self) -> bool:
        return self.key == "reproduced"


def verdict(record: dict | None, model: str, default_model: str | None) -> Verdict:
    if record is None:
        return Verdict("none", "ha-none", NO_RESULT, "")
    status = record.get("status")
    if status == "pass":
        return Verdict("reproduced", "ha-pass", "reproduced", "")
    if status == "fail":
        reason = failure_summary(record)
        if model == default_model:
            return Verdict("fail", "ha-fail", "fail", reason)
        return Verdict("not found", "ha-not-found", "not found", reason)
    if status == "not run":
        return Verdict("not run", "ha-not-run", "not run",
                       one_line(record.get("reason") or "no reason recorded").removeprefix("not run: "))
    return Verdict("none", "ha-none", f"unknown status {status!r}", one_line(record.get("reason") or ""))


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def num(value: Any) -> str:
    """A number for prose and tables: 3 significant digits, integers as integers."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, (int, float)):
        if float(value).is_integer():
            return f"{value:g}"
        return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.2g}"
    return str(value)


def span(values: list[float]) -> str:
    """'0.406–0.437', or one value when they all agree to 3 digits."""
    if not values:
        return "—"
    lo, hi = num(min(values)), num(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


# ---------------------------------------------------------------------------- variants


def variant_names(record: dict) -> list[str]:
    """The record's data variants in the order the claim declares them; the first is primary."""
    declared = [str(v.get("name")) for v in ((record.get("data") or {}).get("variants") or [])
                if isinstance(v, dict) and v.get("name") is not None]
    measured = list((record.get("variants") or {}).keys())
    return declared + [n for n in measured if n not in declared]


def variant_overrides(record: dict) -> dict[str, dict[str, Any]]:
    return {str(v.get("name")): {k: x for k, x in v.items() if k != "name"}
            for v in ((record.get("data") or {}).get("variants") or []) if isinstance(v, dict)}


def base_data(record: dict) -> dict[str, Any]:
    return {k: v for k, v in (record.get("data") or {}).items() if k != "variants"}


def primary(record: dict) -> str | None:
    names = variant_names(record)
    return names[0] if names else None


def is_multi(record: dict) -> bool:
    return len(variant_names(record)) > 1


def primary_checks(record: dict) -> list[dict]:
    """The checks of the primary variant (all checks when the record has no variants)."""
    checks = record.get("checks") or []
    first = primary(record)
    tagged = [c for c in checks if c.get("variant") is not None]
    if not tagged or first is None:
        return checks
    return [c for c in checks if c.get("variant") in (None, first)]


def checks_by_name(record: dict) -> dict[str, list[dict]]:
    """check text -> that check's result on every variant, in the record's order."""
    out: dict[str, list[dict]] = {}
    for c in record.get("checks") or []:
        out.setdefault(str(c.get("check", c.get("measure"))), []).append(c)
    return out


def measure_spread(record: dict) -> dict[str, list[float]]:
    """measure -> its value on each variant (primary first); empty without variants."""
    by_variant = record.get("variants") or {}
    if len(by_variant) < 2:
        return {}
    out: dict[str, list[float]] = {}
    for name in variant_names(record):
        for measure, value in (by_variant.get(name) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(measure, []).append(float(value))
    return out


def check_values(results: list[dict], key: str) -> list[float]:
    return [float(c[key]) for c in results
            if isinstance(c.get(key), (int, float)) and not isinstance(c.get(key), bool)]


def headline(record: dict) -> tuple[str, str, str]:
    """(check text, primary value, spread across variants) of the record's first check."""
    checks = primary_checks(record)
    if not checks:
        return "", "—", ""
    first = checks[0]
    name = str(first.get("check", first.get("measure")))
    values = check_values(checks_by_name(record).get(name, []), "value")
    return name, num(first.get("value")), span(values) if len(values) > 1 else ""


# ---------------------------------------------------------------------------- reasons

_BAND = re.compile(r"^(?P<m>\S+) in \[(?P<lo>[^,\]]+), (?P<hi>[^\]]+)\]$")
_CMP = re.compile(r"^(?P<m>\S+) (?P<op>>=|<=|>|<) (?P<t>\S+)$")


def parse_check(text: str) -> tuple[str, str, float, float] | None:
    """'best_score >= 0.25' -> ('best_score', '>=', 0.25, 0.25); 'x in [0.3, 0.8]' -> ('x', 'in', 0.3, 0.8)."""
    try:
        if m := _BAND.match(text.strip()):
            return m["m"], "in", float(m["lo"]), float(m["hi"])
        if m := _CMP.match(text.strip()):
            return m["m"], m["op"], float(m["t"]), float(m["t"])
    except ValueError:
        return None
    return None


def _of(n: int, total: int) -> str:
    if total <= 1:
        return ""
    return f" (all {total} data variants)" if n == total else f" ({n} of {total} data variants)"


def failure_summary(record: dict) -> str:
    """Which check failed, in one line, from the record's checks; the recorded reason otherwise."""
    parts = []
    for name, results in checks_by_name(record).items():
        total = len(results)
        measure = str(results[0].get("measure", name))
        failed = [c for c in results if c.get("holds") is False]
        if failed:
            values = span(check_values(failed, "value"))
            parsed = parse_check(name)
            if parsed and parsed[1] == "in" and measure == "top_heads_depth":
                what = (f"the top heads sit at relative depth {values}, outside the layer band "
                        f"{num(parsed[2])}–{num(parsed[3])} (`{name}`)")
            elif parsed and parsed[1] == "in":
                what = f"{measure} = {values}, outside [{num(parsed[2])}, {num(parsed[3])}]"
            else:
                what = f"{measure} = {values} fails `{name}`"
            parts.append(what + _of(len(failed), total))
        leaky = [c for c in results if c.get("control_holds") is True]
        if leaky:
            parts.append(f"the negative control {leaky[0].get('control')} = {span(check_values(leaky, 'control_value'))} "
                         f"also passes `{name}`, so the check does not tell the heads apart{_of(len(leaky), total)}")
        tol = results[0].get("tolerance")
        drifted = [c for c in results if isinstance(c.get("committed_value"), (int, float)) and isinstance(tol, (int, float))
                   and isinstance(c.get("value"), (int, float)) and abs(c["value"] - c["committed_value"]) > tol + 1e-12]
        if drifted:
            c = drifted[0]
            parts.append(f"{measure} drifted from the committed {num(c['committed_value'])} to {num(c['value'])}, "
                         f"beyond its tolerance of {num(tol)}{_of(len(drifted), total)}")
    if parts:
        return "; ".join(parts)
    return one_line(record.get("reason") or "no reason recorded")
