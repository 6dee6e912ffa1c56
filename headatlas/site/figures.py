"""Figures drawn at build time: score heatmaps and circuit graphs (PNG), the stage diagram (SVG).

Everything is drawn locally (matplotlib with the Agg backend, or plain SVG text), so the site
needs no CDN script and every figure shows exactly the data it was built from.
"""

from __future__ import annotations

import io
from html import escape

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


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


def circuit_png(classes: dict[str, list[str]], edges: list[tuple[str, str]], *, title: str,
                n_layers: int | None = None) -> bytes:
    """A circuit as boxes of heads, one class per row from the earliest class (top) to the latest,
    each box at the mean layer of its heads, with arrows from earlier to later classes wherever
    `edges` relates them."""
    depth = {c: sum(_split(h)[0] for h in hs) / len(hs) if hs else 0.0 for c, hs in classes.items()}
    order = sorted(classes, key=lambda c: (depth[c], c))
    pos = {c: (depth[c], -i) for i, c in enumerate(order)}
    right = max(n_layers or 0, max(depth.values(), default=0) + 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.7 * right), 1.0 + 0.75 * len(order)))
    colours = plt.get_cmap("tab10")
    boxes = {}
    for i, c in enumerate(order):
        hs = classes[c]
        label = c + "".join(("\n" if j % 4 == 0 else " ") + h for j, h in enumerate(hs))
        boxes[c] = ax.text(*pos[c], label, ha="center", va="center", fontsize=8, zorder=2,
                           bbox=dict(boxstyle="round,pad=0.35", fc=colours(i % 10), alpha=0.4, ec="black"))
    for a, b in edges:
        if a in boxes and b in boxes:
            src, dst = sorted((a, b), key=order.index)
            bend = 0.2 + 0.25 * (order.index(dst) - order.index(src) - 1)  # longer arcs swing clear of boxes between
            ax.annotate("", xy=pos[dst], xytext=pos[src], zorder=3,  # after the boxes: clips to them
                        arrowprops=dict(arrowstyle="-|>", lw=1.2, color="black", connectionstyle=f"arc3,rad={bend}",
                                        patchA=boxes[src].get_bbox_patch(), patchB=boxes[dst].get_bbox_patch()))
    ax.set_xlim(-1.5, right + 0.5)
    ax.set_ylim(-len(order) + 0.4, 0.6)
    ax.set_yticks([])
    ax.set_xlabel("layer (mean of the class's heads)")
    ax.set_title(title, fontsize=10)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
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
