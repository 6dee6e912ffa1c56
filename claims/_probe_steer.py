"""The probe-and-steer design (Li et al.'s ITI recipe) shared by the accuracy-head, coherence-head
(source label) and consistency-head claims, which differ only in the outcome they probe and how
they read the steered answer.

Selection: per-head probes for a binary outcome of the model's own, ranked by grouped cross-
validated balanced accuracy; the top k are frozen with their probes, 999 layer-matched head sets
for the probe null, and 19 matched sets with their shift vectors (each head alpha of its own
standard deviations along its own direction) for the steering null. Held out: the chosen probes'
balanced accuracy against the null sets, and the rise of the claim's margin under the shift
against the matched shifted sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.methods import probing, stats, steering
from headatlas.methods.scoring import fmt_head, relative_depth

Head = tuple[int, int]


def set_label(name: str, data_spec: dict) -> str:
    """How a gate's message names a data set: 'the selection set (template all)' or 'the held-out
    set "<variant name>"'."""
    if name == "selection":
        return f"the selection set (template {data_spec['template']})"
    return f'the held-out set "{name}"'


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-row weights whose weighted mean of correctness is the balanced accuracy: n / (2 n_class)."""
    labels = labels.bool()
    n, n_right = len(labels), int(labels.sum())
    return torch.where(labels, n / (2 * n_right), n / (2 * (n - n_right)))


@dataclass(frozen=True)
class Chosen:
    top: list[Head]
    cv: torch.Tensor                # [layer, head] selection balanced accuracy under grouped CV
    probes: probing.Probes          # trained on every selection row
    null_sets: torch.Tensor         # [n, k, 2] layer-matched sets for the probe null
    shift_sets: torch.Tensor        # [1 + n, k, 2]: the chosen heads, then matched sets
    vectors: torch.Tensor           # [1 + n, k, d_head] each head's shift


def choose(run, z: torch.Tensor, outcome: torch.Tensor, groups: torch.Tensor, unit: torch.Tensor,
           sigma: torch.Tensor, **selection_values) -> Chosen:
    """Rank, fit and freeze (run.select) on the selection rows: z [layer, head, n, d_head], outcome
    [n] bool, groups [n] for the folds, unit / sigma each head's direction and spread."""
    model, p = run.model, run.params
    labels = outcome.long()
    kw = dict(seed=int(p["probe_seed"]), steps=int(p["probe_steps"]), weight_decay=float(p["weight_decay"]))
    top, cv = probing.rank_heads(z, labels, groups, k=int(p["k"]), folds=int(p["folds"]),
                                 row_weights=class_weights(outcome), **kw)
    probes = probing.fit_probes(z, labels, **kw)
    run.select(top, selection_cv_balanced_accuracy=float(sum(cv[h] for h in top)) / len(top),
               selection_all_heads_median_cv=float(cv.median()), **selection_values)
    null_sets = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                        seed=int(p["null_seed"]), exclude=top)
    shift_sets, vectors = steering.matched_shift_sets(top, unit, sigma, float(p["alpha"]), model.n_layers,
                                                      model.n_heads, n_sets=int(p["steering_sets"]),
                                                      seed=int(p["null_seed"]))
    return Chosen(top, cv, probes, null_sets, shift_sets, vectors)


def held_out_probes(chosen: Chosen, z: torch.Tensor, outcome: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every selection-trained probe on held-out rows: `balanced` [layer, head] balanced accuracy,
    `chosen` [n] the chosen heads' mean correctness per row times its class weight (its mean is
    their balanced accuracy, so it bootstraps over rows), `wrong` the rows with outcome False."""
    w = class_weights(outcome)
    hit = chosen.probes.correct(z, outcome.long())                           # [layer, head, n]
    rows, cols = [h[0] for h in chosen.top], [h[1] for h in chosen.top]
    return {"balanced": (hit * w).mean(-1), "chosen": hit[rows, cols].mean(0) * w,
            "wrong": (~outcome).nonzero().flatten()}


def record(run, chosen: Chosen, probe: dict[str, torch.Tensor], rise: torch.Tensor, score_name: str,
           **measures) -> None:
    """Measures, nulls and site evidence of one held-out variant. rise [1 + n_sets, rows]: the
    margin's rise under each shift set (row 0 the chosen heads); `measures` adds the claim's own,
    the rise among them under the name its check reads."""
    model = run.model
    balanced = probe["balanced"]
    run.measure(chosen_heads_balanced_accuracy=probe["chosen"],
                all_heads_median_balanced_accuracy=float(balanced.median()),
                best_head_balanced_accuracy=float(balanced.max()),
                top_heads_depth=float(torch.tensor([relative_depth(la, model.n_layers) for la, _ in chosen.top]).median()),
                **measures)
    run.null("matched_sets_accuracy", stats.set_means(balanced, chosen.null_sets))
    run.null("matched_sets_steering", rise[1:].mean(1))
    if run.is_primary:
        run.artifact(scores=balanced.tolist(), score_name=score_name, selection_scores=chosen.cv.tolist(),
                     top_heads=[fmt_head(*h) for h in chosen.top],
                     null_example_heads=[fmt_head(*h) for h in chosen.null_sets[0].tolist()],
                     alpha=float(run.params["alpha"]))
