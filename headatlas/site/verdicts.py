"""How the site reads one claim result record: its verdict, the evidence that decided it in
words a reader can check, its data variants and the spread of its values across them.

This is the one place verdict semantics live. A record (headatlas/claims/results.py) carries
the protocol's verdict, decided by headatlas/claims/runtime.py:

- ``holds``: every check passed on every held-out variant, beyond its null, its control failing.
- ``absent``: a check's whole interval lies on the wrong side of its threshold.
- ``inconclusive``: an interval straddles a threshold, or the null or the control also passes.
- ``not applicable``: the model cannot do the task the claim needs (the reason gives the figure).
- ``error``: the test crashed or broke the protocol; never read as a head being absent.
- ``not run``: the weights could not be had.

The site adds one reading of its own, **near miss**: an absent or inconclusive verdict whose
decisive check misses its threshold (or the edge of its layer band) by no more than the check's
tolerance. It is not a pass; it says the head type is there in all but a margin the claim itself
treats as noise between runs.

Every verdict is read for the role of its model (`role`):

- ``calibration``: the catalogue's default model, the one the thresholds were written against.
  A claim that does not hold there is a broken claim.
- ``held-out``: any other model of the literature. Whatever the verdict, it is a finding.
- ``control``: a random-weights twin. Every claim must *not* hold there; a claim that holds on
  random weights does not tell a trained head from noise.

Only ``holds`` on a calibration or held-out model is ever drawn as passing (green). A record
without a ``verdict`` predates the protocol: it is shown as stale, never as any verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NO_RESULT = "no result recorded yet"

CALIBRATION, HELD_OUT, CONTROL, TOY = "calibration", "held-out", "control", "toy"

#: Every verdict key the site shows, best first (the order counts are listed in).
ORDER = ["holds", "near miss", "inconclusive", "absent", "not applicable", "error", "not run", "stale", "none"]

#: Badge class per verdict key.
CSS = {"holds": "ha-holds", "near miss": "ha-near-miss", "inconclusive": "ha-inconclusive", "absent": "ha-absent",
       "not applicable": "ha-not-applicable", "error": "ha-error", "not run": "ha-not-run", "stale": "ha-none",
       "none": "ha-none"}

#: What each verdict means, for legends and the glossary (the protocol's own words where it has them).
MEANING = {
    "holds": "every check passed on every held-out data variant, beyond its null, with its control failing",
    "near miss": "not a pass: the check that decided the verdict misses its threshold (or its layer band) by no "
                 "more than its tolerance",
    "inconclusive": "an interval straddles a threshold, or the null or the control also passes",
    "absent": "a check's whole interval lies on the wrong side of its threshold",
    "not applicable": "the model does not do the task the claim needs (the reason gives the figure)",
    "error": "the test crashed or broke the protocol; never read as a head being absent",
    "not run": "the weights could not be had on the machine that ran it",
    "stale": "the record predates the claim protocol and carries no verdict; re-run the claim",
    "none": "no result recorded yet",
}

#: What each term used in the tables means (the glossary page and the hover text of table headers).
TERMS = {
    "calibration model": "the catalogue's default model; the claims' thresholds were written against it, so a "
                         "claim that does not hold there is broken",
    "held-out model": "any other model of the literature; the thresholds were not tuned on it, so its verdicts "
                      "are the atlas's findings",
    "toy model": "a small model the atlas trains itself on CPU for the head types only toy models show; its "
                 "claims are written for it, so it is neither calibration nor held-out",
    "random-weights twin": "the calibration model's architecture with every weight matrix redrawn at random; "
                           "a control: no claim may hold on it",
    "selection": "the data the claim's heads are chosen on; the checks are read on other, held-out data",
    "held-out variant": "one of the data sets the chosen heads are judged on, none of them used to choose the heads",
    "interval": "the 95% bootstrap interval of a value averaged over prompts; a check reads its conservative end",
    "null": "the same measure over many matched head sets or over every head; the value must lie beyond the "
            "stated percentile of it",
    "control": "the same measure where the effect should be missing (other heads, or data without the effect); "
               "it must fail the same check",
    "tolerance": "how far a checked value may move between runs before CI calls it a change; also the margin of "
                 "a near miss",
    "committed value": "the value of the same check in the results committed to the repository, which a new "
                       "run is compared with",
    "relative depth": "where a layer sits in the model: layer / (layers - 1), 0 for the first layer and 1 for "
                      "the last, so heads of models with different numbers of layers can be compared",
    "decisive check": "the check that decided the verdict: the first that did not hold, or the first check when "
                      "all hold",
}


@dataclass(frozen=True)
class Verdict:
    key: str             # one of ORDER
    css: str             # badge class
    label: str           # badge text
    reason: str          # one line: why it is not a plain pass; empty when it holds
    evidence: str = ""   # the decisive check in words, e.g. "top_head_score 0.42 [0.38, 0.45] vs null ..."
    role: str = HELD_OUT

    @property
    def passing(self) -> bool:
        """Drawn green: holds on a model of the literature (never on a random-weights twin)."""
        return self.key == "holds" and self.role != CONTROL

    @property
    def as_required(self) -> bool:
        """On a random-weights twin: the claim does not hold, as it must not."""
        return self.role == CONTROL and self.key in ("absent", "near miss", "inconclusive")

    @property
    def title(self) -> str:
        """Hover text: the evidence and the reason."""
        return "; ".join(p for p in (self.evidence, self.reason) if p)


def role(model: str, default_model: str | None, twins: dict[str, str] | None = None,
         toys: set[str] | frozenset[str] = frozenset()) -> str:
    """calibration (the default model), control (a random-weights twin), toy (a model trained
    here for the toy-model claims, which are written for it: neither calibration nor held-out)
    or held-out."""
    if twins and model in twins:
        return CONTROL
    if model in toys:
        return TOY
    return CALIBRATION if model == default_model else HELD_OUT


def verdict(record: dict | None, role_: str = HELD_OUT) -> Verdict:
    if record is None:
        return Verdict("none", CSS["none"], NO_RESULT, "", "", role_)
    if "verdict" not in record:
        was = record.get("status")
        return Verdict("stale", CSS["stale"], "stale record",
                       "recorded before the claim protocol" + (f" (old status {was!r})" if was else "")
                       + f"; re-run {rerun(record.get('claim_id', '<id>'), record.get('model', '<model>'))}",
                       "", role_)
    key = str(record.get("verdict"))
    if key not in CSS or key in ("near miss", "stale", "none"):
        return Verdict("error", CSS["error"], f"unknown verdict {key!r}", one_line(record.get("reason") or ""),
                       "", role_)
    c = decisive(record)
    ev = evidence(c, multi=is_multi(record)) if c else ""
    reason = ""
    if key in ("absent", "inconclusive"):
        gap = miss(c) if c else None
        reason = not_holding(record, c) if c else one_line(record.get("reason") or "no reason recorded")
        if gap is not None and c is not None and isinstance(c.get("tolerance"), (int, float)) \
                and gap <= float(c["tolerance"]) + 1e-12:
            reason = (f"{reason}: a miss of {num(gap)}, within its tolerance of {num(c['tolerance'])} "
                      f"(the protocol's verdict: {key})")
            key = "near miss"
    elif key in ("not applicable", "error", "not run"):
        reason = one_line(record.get("reason") or "no reason recorded").removeprefix("not run: ")
    label = key
    css = CSS[key]
    if role_ == CONTROL:
        if key == "holds":
            label, css = "holds on random weights", CSS["error"]
            reason = "the claim holds on a random-weights twin: its checks do not tell a trained model from noise"
        elif key in ("absent", "near miss", "inconclusive"):
            label, css = f"{key}: as required", "ha-control-ok"
    return Verdict(key, css, label, reason, ev, role_)


def rerun(claim_id: str, model: str) -> str:
    """The command that re-runs one claim on one model."""
    return f"headatlas verify --claim {claim_id} --model {model}"


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


def ordinal(q: Any) -> str:
    """99 -> '99th', 1 -> '1st', 2.5 -> '2.5th'."""
    n = num(q)
    if not n.isdigit():
        return f"{n}th"
    i = int(n)
    suffix = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suffix}"


def span(values: list[float]) -> str:
    """'0.406–0.437', or one value when they all agree to 3 digits."""
    if not values:
        return "—"
    lo, hi = num(min(values)), num(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def head_label(head: Any) -> str:
    """'21.2' -> 'L21H2' (any other text unchanged)."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(head))
    return f"L{m[1]}H{m[2]}" if m else str(head)


# ---------------------------------------------------------------------------- checks


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def decisive(record: dict) -> dict | None:
    """The check that decided the verdict (decisive: true); the first check when none says so."""
    checks = record.get("checks") or []
    return next((c for c in checks if c.get("decisive") is True), checks[0] if checks else None)


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


def passes(parsed: tuple[str, str, float, float], v: float) -> bool:
    _, op, lo, hi = parsed
    return {">=": v >= lo, ">": v > lo, "<=": v <= hi, "<": v < hi, "in": lo <= v <= hi}[op]


def miss(c: dict) -> float | None:
    """How far a check's value lies on the wrong side of its threshold (or outside its layer
    band); None when the value itself passes or the check cannot be read."""
    parsed = parse_check(str(c.get("check", "")))
    v = c.get("value")
    if parsed is None or not is_number(v) or passes(parsed, float(v)):
        return None
    _, op, lo, hi = parsed
    v = float(v)
    if op == "in":
        return lo - v if v < lo else v - hi
    return abs(v - lo)


def needs(check_text: str) -> str:
    """'best_score >= 0.25' -> 'needs >= 0.25'; a band -> 'needs to lie in the layer band [0.3, 0.8]'."""
    parsed = parse_check(check_text)
    if parsed is None:
        return f"needs {check_text}" if check_text else ""
    _, op, lo, hi = parsed
    if op == "in":
        return f"needs to lie in the layer band [{num(lo)}, {num(hi)}]"
    return f"needs {op} {num(lo)}"


def evidence(c: dict, multi: bool = False) -> str:
    """One check as a reader can verify it:
    'top_head_score 0.42 [0.38, 0.45] vs null 99th pct 0.05; needs >= 0.25; control 0.01 fails (must fail)'."""
    text = (f"[{c['variant']}] " if multi and c.get("variant") else "") + f"{c.get('measure', '?')} {num(c.get('value'))}"
    iv = c.get("interval")
    if isinstance(iv, (list, tuple)) and len(iv) == 2:
        text += f" [{num(iv[0])}, {num(iv[1])}]"
    null = c.get("null")
    if isinstance(null, dict) and "at" in null:
        text += f" vs null {ordinal(null.get('percentile', 99))} pct {num(null['at'])}"
        if is_number(null.get("p")):
            text += f" (p = {num(null['p'])})"
    text += "; " + needs(str(c.get("check", "")))
    if c.get("control") is not None and is_number(c.get("control_value")):
        text += (f"; control {c['control']} {num(c['control_value'])} "
                 + ("passes (it must fail)" if c.get("control_holds") else "fails, as it must"))
    return text


def not_holding(record: dict, c: dict) -> str:
    """Why the decisive check did not hold, in one line, with how many variants it failed on."""
    name = str(c.get("check", c.get("measure")))
    same = [x for x in record.get("checks") or [] if str(x.get("check", x.get("measure"))) == name]
    bad = [x for x in same if x.get("outcome") == c.get("outcome")]
    parsed = parse_check(name)
    measure = str(c.get("measure", name))
    if c.get("outcome") == "absent" or (parsed and miss(c) is not None):
        values = span(check_values(bad, "value"))
        if parsed and parsed[1] == "in":
            what = f"{measure} = {values}, outside the layer band {num(parsed[2])}–{num(parsed[3])}"
        else:
            what = f"{measure} = {values} fails `{name}`"
    else:
        what = one_line(c.get("why") or record.get("reason") or "no reason recorded")
    return what + _of(len(bad), len(same))


def _of(n: int, total: int) -> str:
    if total <= 1:
        return ""
    return f" (all {total} data variants)" if n == total else f" ({n} of {total} data variants)"


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
            if is_number(value):
                out.setdefault(measure, []).append(float(value))
    return out


def check_values(results: list[dict], key: str) -> list[float]:
    return [float(c[key]) for c in results if is_number(c.get(key))]


def headline(record: dict) -> tuple[str, str, str]:
    """(check text, value, spread across variants) of the record's decisive check."""
    c = decisive(record)
    if c is None:
        return "", "—", ""
    name = str(c.get("check", c.get("measure")))
    values = check_values(checks_by_name(record).get(name, []), "value")
    return name, num(c.get("value")), span(values) if len(values) > 1 else ""
