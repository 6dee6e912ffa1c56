"""The per-model head-type grid: every head of a model coloured by the head type it scores
highest on, from the score matrices the claim records and `headatlas scan` wrote.

Scores of different types live on different scales (an induction score of 0.4 is a strong
head; a normalized entropy of 0.9 may be typical), so each type is normalised within the model
before types are compared: norm = (score - p90) / (max - p90), clipped to [0, 1], where p90 is
the 90th percentile of that score over the model's heads: a head counts for a type only when it
stands out from most heads on that type's score. Some scores are stronger the *lower* they are
(an OV own-token z-score of -4 is a copy-suppression head; +4 is a copying head): those are
negated before normalising, so the strongest head of every type is the one that gets norm 1
(see `lower_is_stronger`). A head is coloured by the type with the highest norm when that norm
is at least `SHOW_AT`; every type that reaches `SHOW_AT` on it is named in the cell (one head
can be of many types), the cell shows the raw score of the first, and its tooltip every type's
score.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from html import escape
from typing import Callable

# `headatlas scan` method -> head entry id, where the names differ. A method that names no head
# entry (an auxiliary measure) is listed under the grid but not used to colour it.
SCAN_HEADS = {
    "previous_token": "previous-token",
    "duplicate_token": "duplicate-token",
    "induction": "induction",
    "subword_merge": "subword-merge",
    "rare_token": "rare-words",
    "retrieval": "retrieval",
    "negative_attention": "negative",
    "constant_attention": "constant",
    "successor": "successor",
    "copy_suppression": "copy-suppression",
}
SHOW_AT = 0.5
TAIL = 0.9  # normalise from the 90th percentile of a score's values in the model
# Okabe-Ito, then Paul Tol's muted colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#999999",
           "#882255", "#44AA99", "#117733", "#AA4499", "#DDCC77", "#332288"]


@dataclass
class ScoreMap:
    """One score type's layer x head matrix on one model."""

    head_id: str | None  # the head entry the score detects, if any
    name: str            # e.g. "induction score"
    source: str          # "claim <id>" or "scan"
    scores: list[list[float]]
    time: str = ""
    lower: bool = False  # lower scores are stronger (negated before normalising)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.scores), len(self.scores[0]) if self.scores else 0

    @property
    def flat(self) -> list[float]:
        return [float(v) for row in self.scores for v in row]

    def normalised(self) -> list[list[float]] | None:
        """(score - p90) / (max - p90), clipped to [0, 1], where p90 is the score that 90% of the
        model's heads reach: only heads that stand out from the rest on this score get above 0,
        whatever the score's scale or skew. None when the top heads do not stand out at all."""
        sign = -1.0 if self.lower else 1.0
        flat = sorted(sign * v for v in self.flat)
        base, top = flat[int(TAIL * (len(flat) - 1))], flat[-1]
        if not top > base:
            return None
        return [[min(1.0, max(0.0, (sign * float(v) - base) / (top - base))) for v in row] for row in self.scores]

    def standout(self, layer: int, head: int) -> float:
        """How far a head stands out on this score, in units of the spread between the median
        and the 90th percentile (orders types that tie on norm)."""
        sign = -1.0 if self.lower else 1.0
        flat = sorted(sign * v for v in self.flat)
        med, base = flat[len(flat) // 2], flat[int(TAIL * (len(flat) - 1))]
        return (sign * float(self.scores[layer][head]) - med) / ((base - med) or 1e-12)


_LOWER_HINT = re.compile(r"\b(negative|lower|more negative)\s*=", re.I)


def lower_is_stronger(artifacts: dict) -> bool:
    """Whether a recorded score matrix is stronger the lower it is, in this order:
    the artifact says so (`stronger: lower|higher`); else the claim's own top heads say so (they
    score below the median: the claim ranked them from the bottom); else the score's name says
    so ('... (negative = suppresses ...)')."""
    said = str(artifacts.get("stronger", "")).lower()
    if said in ("lower", "higher"):
        return said == "lower"
    scores = artifacts.get("scores")
    flat = sorted(float(v) for row in scores for v in row) if valid_matrix(scores) else []
    picked = []
    for h in artifacts.get("top_heads") or []:
        m = re.fullmatch(r"(\d+)\.(\d+)", str(h))
        if m and flat and int(m[1]) < len(scores) and int(m[2]) < len(scores[0]):
            picked.append(float(scores[int(m[1])][int(m[2])]))
    if picked and flat:
        med = flat[len(flat) // 2]
        below, above = sum(v < med for v in picked), sum(v > med for v in picked)
        if below != above:
            return below > above
    return bool(_LOWER_HINT.search(str(artifacts.get("score_name", ""))))


def valid_matrix(m) -> bool:
    return (isinstance(m, list) and m and all(isinstance(r, list) and r for r in m)
            and len({len(r) for r in m}) == 1
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in m for v in r))


def score_maps(model: str, records: dict[str, dict], scan: dict | None, heads: dict) -> tuple[list[ScoreMap], list[str]]:
    """The score types available for a model: claim records' artifacts.scores first (one per
    head entry), then the scan's scores for head types no record covers. Also returns the names
    of scan scores tied to no head entry."""
    maps: dict[str, ScoreMap] = {}
    for claim_id, r in sorted(records.items()):
        art = r.get("artifacts") or {}
        hid = r.get("head_id")
        if valid_matrix(art.get("scores")) and hid and hid not in maps:
            maps[hid] = ScoreMap(hid, str(art.get("score_name") or f"{hid} score"), f"claim {claim_id}",
                                 art["scores"], str(r.get("time", "")), lower_is_stronger(art))
    unused = []
    for method, matrix in sorted(((scan or {}).get("scores") or {}).items()):
        hid = SCAN_HEADS.get(method, method.replace("_", "-"))
        if hid not in heads:
            unused.append(method)
        elif hid not in maps and valid_matrix(matrix):
            maps[hid] = ScoreMap(hid, method.replace("_", " ") + " score", "scan", matrix, str(scan.get("time", "")))
    if maps:  # every matrix must be the model's layer x head shape; drop the odd one out
        shape = Counter(m.shape for m in maps.values()).most_common(1)[0][0]
        maps = {k: m for k, m in maps.items() if m.shape == shape}
    return list(maps.values()), unused


def abbreviations(head_ids: list[str]) -> dict[str, str]:
    """Short unique labels: initials of hyphenated ids (PT, DT), else the first letters (IND)."""
    out: dict[str, str] = {}
    for hid in head_ids:
        parts = [p for p in hid.split("-") if p]
        base = "".join(p[0] for p in parts).upper() if len(parts) > 1 else hid[:3].upper()
        label, i = base, 2
        while label in out.values():
            label, i = f"{base}{i}", i + 1
        out[hid] = label
    return out


def _rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return ",".join(str(int(h[i:i + 2], 16)) for i in (0, 2, 4))


def rank_types(usable: list[ScoreMap], norms: dict, layer: int, head: int) -> list[tuple[float, ScoreMap]]:
    """The types of one head, strongest first: by norm, ties by how far the head stands out."""
    return sorted(((norms[m.head_id][layer][head], m) for m in usable),
                  key=lambda t: (-round(t[0], 6), -t[1].standout(layer, head)))


def cell_types(maps: list[ScoreMap]) -> dict[str, list[str]]:
    """head type -> the heads ('L.H') it is named on in the grid (norm at least SHOW_AT)."""
    norms = {m.head_id: m.normalised() for m in maps}
    usable = [m for m in maps if norms[m.head_id] is not None]
    out: dict[str, list[str]] = {m.head_id: [] for m in maps}
    if not usable:
        return out
    n_layers, n_heads = maps[0].shape
    for layer in range(n_layers):
        for head in range(n_heads):
            for n, m in rank_types(usable, norms, layer, head):
                if n >= SHOW_AT:
                    out[m.head_id].append(f"{layer}.{head}")
    return out


def grid_html(maps: list[ScoreMap], colours: dict[str, str], labels: dict[str, str], names: dict[str, str],
              head_href: Callable[[str], str], caption: str) -> str:
    """The layer x head grid as an HTML table (one line per row), in a horizontally scrolling box."""
    n_layers, n_heads = maps[0].shape
    norms = {m.head_id: m.normalised() for m in maps}
    usable = [m for m in maps if norms[m.head_id] is not None]
    out = ['<div class="ha-scroll ha-grid-wrap" markdown="0">',
           f'<table class="ha-grid" aria-label="{escape(caption)}"><caption>{escape(caption)}</caption>',
           "<thead><tr><th scope=\"col\">Layer</th>"
           + "".join(f'<th scope="col">H{h}</th>' for h in range(n_heads)) + "</tr></thead><tbody>"]
    for layer in range(n_layers):
        depth = layer / max(n_layers - 1, 1)
        cells = [f'<th scope="row" title="relative depth {depth:.2f}">L{layer}</th>']
        for head in range(n_heads):
            ranked = rank_types(usable, norms, layer, head)
            detail = "; ".join(f"{names.get(m.head_id, m.head_id)} {m.scores[layer][head]:.3g} (norm {n:.2f}"
                               + (", lower is stronger" if m.lower else "") + ")" for n, m in ranked[:4])
            title = f"L{layer}H{head}: " + (detail or "no score")
            shown = [m for n, m in ranked if n >= SHOW_AT]
            if shown:
                n, m = ranked[0]
                alpha = round(0.3 + 0.6 * n, 2)
                text = "/".join(labels[x.head_id] for x in shown[:3]) + (f"+{len(shown) - 3}" if len(shown) > 3 else "")
                cells.append(
                    f'<td class="ha-cell" style="--ha-rgb:{_rgb(colours[m.head_id])};--ha-a:{alpha}" '
                    f'data-types="{escape(" ".join(x.head_id for x in shown))}">'
                    f'<a href="{escape(head_href(m.head_id))}" title="{escape(title)}">'
                    f'<span class="ha-cell-type">{escape(text).replace("/", "/<wbr>")}</span>'
                    f'<span class="ha-cell-score">{m.scores[layer][head]:.2f}</span></a></td>')
            else:
                cells.append(f'<td class="ha-cell ha-cell-empty" title="{escape(title)}"></td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody></table>", "</div>"]
    return "\n".join(out)
