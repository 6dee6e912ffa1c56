"""The seed-study page: for each toy task (results/seeds/<task>.json, written by `headatlas
seeds`), which layer and head takes each role in each seed, when it forms, a training-curve plot
over seeds, and how often the seeds agree."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from headatlas.site.figures import _png, cached, plt

log = logging.getLogger("mkdocs.hooks.headatlas")
PAGE = "seeds.md"


def load_studies(results: Path) -> dict[str, dict]:
    out = {}
    folder = results / "seeds"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data.get("seeds"), list):
                raise ValueError("no 'seeds' list")
            out[str(data.get("task") or path.stem)] = data
        except (ValueError, AttributeError) as exc:
            log.warning(f"headatlas: skipping seed study {path}: {exc}")
    return out


@cached
def curves_png(task: str, roles: list[str], seeds: list[dict], thresholds: dict | None = None) -> bytes:
    fig, axes = plt.subplots(1, len(roles) + 1, figsize=(3.4 * (len(roles) + 1), 2.8), dpi=110)
    loss_key = "repeat_loss" if any("repeat_loss" in p for s in seeds for p in s["curve"]) else "loss"
    for s in seeds:
        steps = [p["step"] for p in s["curve"]]
        axes[0].plot(steps, [p[loss_key] for p in s["curve"]], lw=1.2, label=f"seed {s['seed']}")
        for ax, role in zip(axes[1:], roles):
            ax.plot(steps, [p[role] for p in s["curve"]], lw=1.2)
    axes[0].set_title(f"{task}: {loss_key.replace('_', ' ')}", fontsize=9)
    axes[0].legend(fontsize=7)
    for ax, role in zip(axes[1:], roles):
        ax.set_title(f"best {role.replace('_', ' ')} score", fontsize=9)
        ax.axhline((thresholds or {}).get(role, 0.5), color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("training step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def page(studies: dict[str, dict]) -> tuple[str, list[tuple[str, bytes]]]:
    lines = ["# Seed study: do toy models trained from different seeds divide the labour alike?", "",
             "Each toy model of the atlas (catalogue/models.yaml, source kind `toy`) is trained again from "
             "several seeds, everything else fixed. For each seed the table names the head that takes each "
             "role at the end of training (best score on a fixed evaluation batch) and the training step at "
             "which that head's score first exceeded the formation threshold (the dashed line in the plots). Heads within one layer are "
             "interchangeable at initialisation (permuting them gives the same function), so the layer is the "
             "comparable fact; the head index is shown for completeness. Written by `headatlas seeds`; "
             "`tests/test_toy_seeds.py` retrains one seed and checks it against this table.", ""]
    files = []
    if not studies:
        lines.append("No seed study has been recorded yet: run `headatlas seeds`.")
    for task, st in studies.items():
        roles = st["roles"]
        lines += [f"## {task} ({st['model']})", ""]
        for role in roles:
            a = st["agreement"][role]
            fs = a["formed_step"]
            same_head = ("read from the whole layer (its heads' OV maps summed)" if str(a["modal_head"]).endswith(".*")
                         else f"the same head index ({a['modal_head']}) in {a['head_agreement']:.0%}")
            lines.append(f"- **{role.replace('_', ' ')}**: layer {a['modal_layer']} in {a['layer_agreement']:.0%} of "
                         f"{a['seeds']} seeds; {same_head}; "
                         f"formed in {a['formed']} of {a['seeds']}"
                         + (f", at step {fs['min']} to {fs['max']} (median {fs['median']})." if fs else "."))
        lines += ["", "| seed | " + " | ".join(f"{r.replace('_', ' ')} head (score, formed at)" for r in roles)
                  + " | training s |", "|---|" + "---|" * len(roles) + "---|"]
        for s in st["seeds"]:
            cells = [f"{s['roles'][r]['head']} ({s['roles'][r]['score']:.2f}, "
                     f"{s['roles'][r]['formed_step'] if s['roles'][r]['formed_step'] is not None else 'never'})"
                     for r in roles]
            lines.append(f"| {s['seed']} | " + " | ".join(cells) + f" | {s['train_seconds']:.0f} |")
        img = f"seeds/{task}.png"
        th = st.get("form_threshold")
        files.append((img, curves_png(task, roles, st["seeds"], th if isinstance(th, dict) else None)))
        lines += ["", f"![Training curves of {task} over seeds]({img})", ""]
    return "\n".join(lines) + "\n", files
