"""Figures drawn at build time: score heatmaps and attention patterns (PNG), effects charts, check
gauges, circuit graphs and the stage diagram (SVG).

Everything is drawn locally (matplotlib with the Agg backend, or plain SVG text), so the site
needs no CDN script and every figure shows exactly the data it was built from.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import textwrap
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


# Set by the mkdocs hook to <repo>/.cache/headatlas-site: PNGs already drawn from the same data
# by the same code are reused, so rebuilds (tests, `mkdocs serve`) skip matplotlib. None: no cache.
CACHE_DIR: Path | None = None
_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def cached(draw):
    """Memoize a PNG-drawing function on disk, keyed by this module's code and the arguments."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        if CACHE_DIR is None:
            return draw(*args, **kwargs)
        blob = json.dumps([draw.__name__, _CODE, matplotlib.__version__, args, kwargs], sort_keys=True, default=str)
        path = Path(CACHE_DIR) / f"{hashlib.sha256(blob.encode()).hexdigest()}.png"
        try:
            return path.read_bytes()
        except OSError:
            pass
        png = draw(*args, **kwargs)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{id(png)}.tmp")
            tmp.write_bytes(png)
            tmp.replace(path)
        except OSError:
            pass
        return png

    return wrapper


def _png(fig) -> bytes:
    """PNG bytes without a timestamp or version in the metadata, so rebuilds are identical."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _split(head: str) -> tuple[int, int]:
    """'5.1' -> (5, 1); anything else -> (-1, -1), which no plot draws."""
    layer, _, head_ = str(head).partition(".")
    return (int(layer), int(head_)) if layer.isdigit() and head_.isdigit() else (-1, -1)


@cached
def heatmap_png(scores: list[list[float]], *, title: str, score_name: str, top_heads: list[str],
                published: list[str] = (), band: tuple[float, float] | None = None) -> bytes:
    """A layer x head score matrix, with the top heads boxed and ranked, the published heads
    dotted and the entry's layer band dashed, so a reader can see where the claim's heads sit."""
    n_layers, n_heads = len(scores), len(scores[0])
    fig, ax = plt.subplots(figsize=(1.8 + 0.42 * n_heads, 1.4 + 0.2 * n_layers))
    im = ax.imshow(scores, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03).set_label(score_name)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(n_heads))
    ax.set_yticks(range(0, n_layers, 1 if n_layers <= 16 else 2))
    ax.tick_params(labelsize=7)
    for rank, h in enumerate(top_heads, 1):
        layer, head = _split(h)
        if 0 <= layer < n_layers and 0 <= head < n_heads:
            ax.add_patch(Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, ec="red", lw=1.6))
            ax.text(head, layer, f"{rank}", color="white", fontsize=7, ha="center", va="center", fontweight="bold",
                    path_effects=[patheffects.withStroke(linewidth=1.5, foreground="black")])
    for h in published:
        layer, head = _split(h)
        if 0 <= layer < n_layers and 0 <= head < n_heads:
            ax.plot(head, layer, "o", ms=4, mfc="white", mec="black", mew=0.8)
    if band is not None:
        for edge in band:
            ax.axhline(edge * (n_layers - 1), color="white", ls="--", lw=0.8, alpha=0.8)
    return _png(fig)


def stage_svg(stages: list[tuple[str, str, int, str]]) -> str:
    """The four-stage framework as inline SVG: one linked box per stage (id, name, number of
    head entries, href), left to right in the order the model runs them."""
    w, h, gap, pad = 190, 110, 34, 10
    width = pad * 2 + len(stages) * w + (len(stages) - 1) * gap
    parts = [f'<svg class="ha-stages" viewBox="0 0 {width} {h + 2 * pad}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="ha-stages-title">',
             '<title id="ha-stages-title">The four stages: ' + escape(" → ".join(s[1] for s in stages)) + "</title>",
             '<defs><marker id="ha-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>']
    for i, (sid, name, count, href) in enumerate(stages):
        x = pad + i * (w + gap)
        parts.append(
            f'<a href="{escape(href)}" class="ha-stage-box ha-stage-{escape(sid)}">'
            f'<rect x="{x}" y="{pad}" width="{w}" height="{h}" rx="10"/>'
            f'<text x="{x + w / 2}" y="{pad + 38}" text-anchor="middle" class="ha-stage-id">{escape(sid)}</text>'
            f'<text x="{x + w / 2}" y="{pad + 64}" text-anchor="middle" class="ha-stage-name">{escape(name)}</text>'
            f'<text x="{x + w / 2}" y="{pad + 88}" text-anchor="middle" class="ha-stage-count">'
            f'{count} head {"entry" if count == 1 else "entries"}</text></a>')
        if i:
            parts.append(f'<line x1="{x - gap + 3}" y1="{pad + h / 2}" x2="{x - 4}" y2="{pad + h / 2}" '
                         'stroke="currentColor" stroke-width="2" marker-end="url(#ha-arrow)"/>')
    parts.append("</svg>")
    return "".join(parts)


@cached
def attention_png(tokens: list[str], pattern: list[list[float]], *, title: str) -> bytes:
    """One head's attention pattern on one prompt: query tokens down, key tokens across."""
    n_q, n_k = len(pattern), len(pattern[0])
    keys = [_token_label(t) for t in tokens[:n_k]]
    queries = [_token_label(t) for t in tokens[:n_q]]
    size = 0.9 + 0.2 * max(n_q, n_k)
    fig, ax = plt.subplots(figsize=(min(size + 1.2, 11), min(size, 10)))
    im = ax.imshow(pattern, cmap="Blues", vmin=0, vmax=max(1e-9, max(max(r) for r in pattern)),
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).set_label("attention")
    fontsize = 7 if max(n_q, n_k) <= 40 else 5
    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(queries)), queries, fontsize=fontsize)
    ax.set_xlabel("key (attended-to token)")
    ax.set_ylabel("query (current token)")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def _token_label(token: str) -> str:
    """A token as a tick label: visible whitespace, short, no mathtext."""
    text = str(token).replace("\n", "\\n").replace("\t", "\\t").replace("$", r"\$")
    text = text.replace(" ", "·") if text.strip() == "" or text.startswith(" ") else text
    return text if len(text) <= 14 else text[:13] + "…"


_CONTROL_LABEL = re.compile(r"\b(control|random|matched sets?|null|baseline|none)\b", re.I)


def is_control_label(label: str) -> bool:
    """A bar that is a comparison, not the treatment: 'control heads', '5 random heads', 'median of 39
    matched sets', 'none'."""
    return bool(_CONTROL_LABEL.search(str(label)))


def _svg(fig) -> str:
    """SVG text with real <text> (not glyph paths), no date and stable ids, so rebuilds are identical."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "headatlas"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def effects_svg(labels: list[str], values: list[float], *, xlabel: str, title: str,
                control: list[bool] | None = None, intervals: list | None = None,
                threshold: tuple[float, ...] = (), threshold_label: str = "",
                null_band: tuple[float, float] | None = None, null_label: str = "",
                null_at: float | None = None) -> str:
    """A horizontal bar per labelled effect, the labels wrapped beside the bars, as SVG.

    Treatment bars are indigo, control bars grey; each bar is labelled with its value and, where
    known, its 95% interval (also drawn as a whisker). `threshold` draws the check's threshold as a
    dashed line (two lines for a band), `null_band` shades the null distribution's 5th-95th
    percentiles and `null_at` marks the percentile the value must beat. The threshold line, null
    band and bars carry ids (ha-threshold, ha-null-band, ...) so the SVG can be checked."""
    n = len(values)
    control = [bool(control[i]) if control and i < len(control) else is_control_label(labels[i]) for i in range(n)]
    wrapped = [textwrap.fill(str(x), 30) for x in labels]
    lines = [w.count("\n") + 1 for w in wrapped]
    height = 0.9 + sum(0.2 + 0.17 * k for k in lines)
    fig, ax = plt.subplots(figsize=(7.2, max(1.8, height)))
    ys, y = [], 0.0
    for k in lines:
        step = 0.6 + 0.35 * k
        ys.append(y + step / 2)
        y += step
    extent = [0.0, *values, *threshold, *(null_band or ()), *([null_at] if null_at is not None else [])]
    for iv in intervals or []:
        if iv:
            extent += list(iv)
    lo, hi = min(extent), max(extent)
    span = (hi - lo) or 1.0
    if null_band:
        ax.axvspan(null_band[0], null_band[1], color="#9e9e9e", alpha=0.22, lw=0, gid="ha-null-band")
    if null_at is not None:
        ax.axvline(null_at, color="#616161", ls=":", lw=1.3, gid="ha-null-at")
    for i, (v, yy) in enumerate(zip(values, ys)):
        ax.barh(yy, v, height=0.5, color="#9e9e9e" if control[i] else "#3949ab", gid=f"ha-bar-{i}")
        iv = (intervals or [None] * n)[i] if intervals and i < len(intervals) else None
        text = num(v)
        if iv:
            ax.errorbar(v, yy, xerr=[[v - iv[0]], [iv[1] - v]], fmt="none", ecolor="black", elinewidth=1, capsize=3)
            text += f" [{num(iv[0])}, {num(iv[1])}]"
        right = max(v, iv[1] if iv else v)
        left = min(v, iv[0] if iv else v)
        if v >= 0:
            ax.text(right + 0.015 * span, yy, text, va="center", ha="left", fontsize=8.5)
        else:
            ax.text(left - 0.015 * span, yy, text, va="center", ha="right", fontsize=8.5)
    for j, t in enumerate(threshold):
        ax.axvline(t, color="#c62828", ls="--", lw=1.6, gid=f"ha-threshold{'-' + str(j) if j else ''}")
    ax.axvline(0, color="black", lw=0.7)
    ax.set_yticks(ys, wrapped, fontsize=8.5)
    ax.set_ylim(y, 0)
    pad = 0.28 * span
    ax.set_xlim(lo - (pad if lo < 0 else 0.04 * span), hi + pad)
    ax.set_xlabel(textwrap.fill(xlabel, 70), fontsize=9)
    ax.set_title(title, fontsize=10, loc="left", pad=6 + 12 * bool(threshold) + 12 * bool(null_band))
    ax.tick_params(axis="x", labelsize=8)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    top = ax.get_xaxis_transform()  # x in data, y in axes (1 = above the first bar)
    for j, t in enumerate(threshold):
        ax.text(t, 1.0, (threshold_label or f"threshold {num(t)}") if j == 0 else num(t), transform=top,
                color="#c62828", fontsize=8, ha="center", va="bottom", gid="ha-threshold-label")
    if null_band:
        ax.annotate(null_label or "null: 5th-95th pct", ((null_band[0] + null_band[1]) / 2, 1.0), xycoords=top,
                    xytext=(0, 12 if threshold else 0), textcoords="offset points", color="#424242", fontsize=7.5,
                    ha="center", va="bottom", style="italic")
    return _svg(fig)


def gauge_svg(check: str, parsed: tuple[str, str, float, float], values: list[float],
              controls: list[float]) -> str:
    """A small inline SVG of one check: the passing range shaded, the threshold as a line, each
    data variant's value as a dot (the primary one filled), the negative control as a cross."""
    _, op, lo_t, hi_t = parsed
    points = [lo_t, hi_t, *values, *controls]
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.12 or abs(hi) * 0.2 or 1.0
    lo, hi = lo - pad, hi + pad
    w, h, x0, x1 = 240, 34, 8, 232

    def x(v: float) -> float:
        return round(x0 + (v - lo) / (hi - lo) * (x1 - x0), 1)

    region = {">=": (lo_t, hi), ">": (lo_t, hi), "<=": (lo, hi_t), "<": (lo, hi_t), "in": (lo_t, hi_t)}[op]
    label = (f"{check}: measured {', '.join(num(v) for v in values)}"
             + (f"; negative control {', '.join(num(v) for v in controls)}" if controls else "")
             + "; the shaded range passes")
    parts = [f'<svg class="ha-gauge" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>',
             f'<rect x="{x(region[0])}" y="5" width="{max(0.5, x(region[1]) - x(region[0]))}" height="14" '
             'class="ha-gauge-pass"/>',
             f'<line x1="{x0}" y1="12" x2="{x1}" y2="12" class="ha-gauge-axis"/>']
    for t in sorted({lo_t, hi_t}):
        parts.append(f'<line x1="{x(t)}" y1="3" x2="{x(t)}" y2="21" class="ha-gauge-threshold"/>'
                     f'<text x="{x(t)}" y="31" text-anchor="middle" class="ha-gauge-label">{escape(num(t))}</text>')
    for c in controls:
        parts.append(f'<path d="M{x(c) - 3.5},{8.5} l7,7 m0,-7 l-7,7" class="ha-gauge-control"/>')
    for i, v in reversed(list(enumerate(values))):
        ok = {">=": v >= lo_t, ">": v > lo_t, "<=": v <= hi_t, "<": v < hi_t, "in": lo_t <= v <= hi_t}[op]
        cls = ("ha-gauge-value" if i == 0 else "ha-gauge-variant") + ("" if ok else " ha-gauge-miss")
        parts.append(f'<circle cx="{x(v)}" cy="12" r="{4.2 if i == 0 else 3.2}" class="{cls}"/>')
    parts.append("</svg>")
    return "".join(parts)


def num(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.3g}"


def flow_rows(classes: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Classes in rows, top to bottom in the order information flows: a class sits one row above
    the nearest row of the classes it feeds (so every edge spans one row where it can), sinks such
    as the logits at the bottom; in the given order within a row."""
    nodes = list(dict.fromkeys([*classes, *(x for e in edges for x in e)]))
    height: dict[str, int] = {}

    def h(c: str, seen=()) -> int:  # longest path from c to a sink
        if c not in height:
            succ = [b for a, b in edges if a == c and b not in seen]
            height[c] = 1 + max((h(b, (*seen, c)) for b in succ), default=-1)
        return height[c]

    top = max((h(c) for c in nodes), default=0)
    rows: dict[int, list[str]] = {}
    for c in nodes:
        rows.setdefault(top - h(c), []).append(c)
    return [rows[k] for k in sorted(rows)]


def circuit_svg(classes: dict[str, list[str]], edges: list[tuple[str, str]], *, title: str,
                hrefs: dict[str, str] | None = None, palette: tuple[str, ...] = (), colours: list[str] = ()) -> str:
    """A circuit as inline SVG: one box per class of heads (its name, its heads as layer.head, a link
    to its head entry), in rows from top to bottom in the order information flows, with an arrow
    for each edge [from, to] (the circuit's `edges` in catalogue/circuits.yaml); a node that is not
    a class, such as the logits, is a rounded output box. A class with no head is drawn dashed, 'none
    found'. Sized to be read at page width (about 700 px) without scaling the text down."""
    hrefs = hrefs or {}
    rows = flow_rows(list(classes), edges)
    w, hgap, vgap, pad, line, per_line = 210, 24, 40, 8, 18, 4

    def box_h(c: str) -> float:
        return 40 if c not in classes else 36 + line * max(1, -(-len(classes[c]) // per_line))

    widest = max(len(r) for r in rows)
    width = pad * 2 + widest * w + (widest - 1) * hgap
    row_h = [max(box_h(c) for c in r) for r in rows]
    height = pad * 2 + 28 + sum(row_h) + vgap * (len(rows) - 1)
    pos: dict[str, tuple[float, float, float]] = {}
    y = pad + 28
    for r, rh in zip(rows, row_h):
        x = pad + (width - 2 * pad - (len(r) * w + (len(r) - 1) * hgap)) / 2
        for c in r:
            pos[c] = (x, y, box_h(c))
            x += w + hgap
        y += rh + vgap
    parts = [f'<svg class="ha-circuit-svg" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             '<defs><marker id="ha-flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>',
             f'<text x="{pad}" y="{pad + 15}" class="ha-circuit-title">{escape(title)}</text>']
    for a, b in edges:
        if a in pos and b in pos:
            xa, ya, ha = pos[a]
            xb, yb, _ = pos[b]
            x1, y1, x2, y2 = xa + w / 2, ya + ha, xb + w / 2, yb - 2
            mid = (y1 + y2) / 2
            parts.append(f'<path class="ha-flow-edge" data-from="{escape(a)}" data-to="{escape(b)}" '
                         f'd="M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}" '
                         'fill="none" stroke="currentColor" stroke-width="1.6" marker-end="url(#ha-flow-arrow)"/>')
    for c, (x, y, h) in pos.items():
        if c not in classes:  # an output node such as the logits
            parts.append(f'<g class="ha-flow-out"><rect x="{x:.1f}" y="{y:.1f}" width="{w}" height="{h}" rx="20"/>'
                         f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 5:.1f}" text-anchor="middle" '
                         f'class="ha-flow-name">{escape(c)}</text></g>')
            continue
        hs = classes[c]
        k = palette.index(c) if c in palette else len(palette) + list(classes).index(c)
        colour = colours[k % len(colours)] if colours else "#3949ab"
        body = [f'<rect x="{x:.1f}" y="{y:.1f}" width="{w}" height="{h}" rx="8" style="--ha-class:{colour}"'
                + (' class="ha-flow-missing"' if not hs else "") + "/>",
                f'<text x="{x + 10:.1f}" y="{y + 21:.1f}" class="ha-flow-name">{escape(c)}</text>']
        lines = [hs[i:i + per_line] for i in range(0, len(hs), per_line)] or [["none found"]]
        for j, row in enumerate(lines):
            body.append(f'<text x="{x + 10:.1f}" y="{y + 40 + j * line:.1f}" class="ha-flow-heads">'
                        f"{escape('  '.join(row))}</text>")
        g = f'<g class="ha-flow-class" data-class="{escape(c)}">{"".join(body)}</g>'
        parts.append(f'<a href="{escape(hrefs[c])}">{g}</a>' if c in hrefs else g)
    parts.append("</svg>")
    return "".join(parts)
