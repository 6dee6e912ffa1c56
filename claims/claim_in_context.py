"""In-context heads (Yu and Ananiadou 2024): in few-shot classification with arbitrary labels,
a few deep heads read the answer at the last position. Their query-key product scores how
similar the query is to each demonstration and their value-output path copies the label written
after it, so the answer is a similarity-weighted vote over the demonstrations' labels.

Prompts (headatlas.prompts.tasks.icl_prompts): eight demonstrations 'word: label', four of each
class (countries and animals, or positive and negative adjectives), labelled " foo" / " bar" (or
the other way round), then a query word of either class. The model can only know which label a
class has from the demonstrations. The words of each class are split in two by name: heads are
chosen on prompts built from one half and judged on prompts built from the other.

- Selection: each head's direct logit attribution at the last position to logit(query's label)
  - logit(other label), every norm's scale frozen (headatlas.methods.logit_attribution), averaged
  over the selection prompts; the top k are frozen with run.select.
- Held out (other words, other seeds, the labels swapped, another pair of classes):
  1. the defining property: attention from the last position to the label tokens of the
     demonstrations of the query's class minus that to the labels of the other class (summed over
     the four labels of each), averaged over the k heads, against 999 layer-matched head sets;
  2. the causal check: the k heads mean-ablated at the last position (their output there replaced
     by its mean over the variant's prompts), the fall of logit(query's label) - logit(other
     label), against 19 layer-matched sets ablated in the same batched pass.
The chosen heads' summed attribution, their total attention to all the labels and the accuracy
with and without them are recorded alongside.

A model that ranks the right label above the other on fewer than `min_accuracy` of the selection
prompts cannot do the task and is not applicable.
"""

from __future__ import annotations

import statistics

import torch
from _attn import forward_reduce, memo
from _facts import reduce_logits, set_edit_hooks

from headatlas.claims import claim
from headatlas.methods import logit_attribution as la
from headatlas.methods import stats
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts.tasks import ICLPrompts, icl_prompts

Head = tuple[int, int]


def build(run, spec: dict) -> ICLPrompts:
    return icl_prompts(run.model.tokenizer, spec["task"], half=spec["half"], split_seed=int(spec["split_seed"]),
                       n_prompts=int(spec["n_prompts"]), n_demos=int(spec["n_demos"]), seed=int(spec["seed"]),
                       swap_labels=bool(spec.get("swap_labels", False)))


def label_diff(bridge, final: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """logit(correct) - logit(wrong) from normalised final residuals [n, d_model]: [n]."""
    return reduce_logits(bridge, final, lambda lg, r: lg.gather(1, correct[r, None])[:, 0]
                         - lg.gather(1, wrong[r, None])[:, 0])


def clean_pass(bridge, data: ICLPrompts) -> dict[str, torch.Tensor]:
    """One pass over the prompts, read at the last position: dla [batch, layer, head] to
    logit(correct) - logit(wrong), every norm scale frozen; same / other [batch, layer, head]:
    attention summed over the labels of the demonstrations of the query's class / of the other
    class; z [layer, batch, head, d_head]; diff [batch]."""
    hooks, post_scale = la.post_scale_hooks(bridge)
    same = data.same_class.float()                                           # [batch, n_demos]
    lp = data.label_pos

    def to_labels(p, mask):                                                  # p [batch, head, q, k]
        return (p[:, :, -1, lp] * mask[:, None]).sum(-1)
    out = forward_reduce(bridge, data.tokens, {"same": lambda p: to_labels(p, same),
                                               "other": lambda p: to_labels(p, 1 - same)},
                         fwd_hooks=hooks, z_at=-1, final_at=-1)
    direction = la.frozen_logit_direction(bridge, data.correct, data.wrong, out["scale"])
    dla = la.head_dla_from_z(bridge, list(out["z"]), direction, post_scale)
    return {"dla": dla, "same": out["same"].permute(1, 0, 2), "other": out["other"].permute(1, 0, 2),
            "z": out["z"], "diff": label_diff(bridge, out["final"], data.correct, data.wrong)}


def data_and_pass(run, spec: dict) -> tuple[ICLPrompts, dict[str, torch.Tensor]]:
    spec = {k: v for k, v in spec.items() if k != "name"}

    def compute():
        data = build(run, spec)
        return data, clean_pass(run.model.bridge, data)
    return memo(("icl", run.model.name, spec), compute)


def ablated_diffs(bridge, data: ICLPrompts, clean: dict, sets: torch.Tensor, n: int) -> torch.Tensor:
    """logit(correct) - logit(wrong) on the first n prompts with each head set [n_sets, k, 2]
    mean-ablated at the last position (hook_z there replaced by its mean over all the variant's
    prompts), every set in one batched pass: [n_sets, n]."""
    mean_z = clean["z"].mean(1)                                              # [layer, head, d_head]
    hooks = set_edit_hooks(sets, n, -1, "set", mean_z)
    out = forward_reduce(bridge, data.tokens[:n].repeat(len(sets), 1), fwd_hooks=hooks, final_at=-1)
    diff = label_diff(bridge, out["final"], data.correct[:n].repeat(len(sets)), data.wrong[:n].repeat(len(sets)))
    return diff.view(len(sets), n)


@claim("in-context-label-voting")
def test_in_context_heads(run):
    model, p = run.model, run.params
    bridge, k = model.bridge, int(p["k"])
    data, clean = data_and_pass(run, run.selection_data)
    accuracy = float((clean["diff"] > 0).float().mean())
    if accuracy < float(p["min_accuracy"]):
        run.not_applicable(
            f"ranks the right label above the other on {int((clean['diff'] > 0).sum())} of "
            f"{len(clean['diff'])} selection prompts ({accuracy:.2f}; foo/bar labels, "
            f"{data.demo_class.shape[1]} demonstrations); needs at least {float(p['min_accuracy']):g}")
    score = clean["dla"].mean(0)                                             # [layer, head]
    order = torch.argsort(score.flatten(), descending=True)[:k]
    top = [(int(i) // model.n_heads, int(i) % model.n_heads) for i in order]
    gap_sel = (clean["same"] - clean["other"]).mean(0)
    run.select(top, selection_set_dla=float(sum(score[h] for h in top)), selection_accuracy=accuracy,
               selection_same_minus_other=float(sum(gap_sel[h] for h in top)) / k)
    depth = statistics.median(relative_depth(layer, model.n_layers) for layer, _ in top)
    big = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                  seed=int(p["null_seed"]), exclude=top)
    small = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["ablation_sets"]),
                                    seed=int(p["null_seed"]), exclude=top)
    sets = torch.cat([torch.tensor([[list(h) for h in top]]), small])
    rows, cols = [h[0] for h in top], [h[1] for h in top]
    n_abl = int(p["ablation_prompts"])
    for spec in run.variants():
        data, clean = data_and_pass(run, spec)
        gap = clean["same"] - clean["other"]                                 # [batch, layer, head]
        ablated = ablated_diffs(bridge, data, clean, sets, n_abl)            # [1 + n_sets, n_abl]
        effect = clean["diff"][None, :n_abl] - ablated
        run.measure(
            accuracy=(clean["diff"] > 0).float(),
            label_logit_difference=clean["diff"],
            heads_dla=clean["dla"][:, rows, cols].sum(1),
            heads_same_minus_other_label_attention=gap[:, rows, cols].mean(1),
            heads_label_attention=(clean["same"] + clean["other"])[:, rows, cols].mean(1),
            heads_ablation_effect=effect[0],
            accuracy_ablated=(ablated[0] > 0).float(),
            accuracy_clean_ablated_prompts=(clean["diff"][:n_abl] > 0).float(),
            top_heads_depth=depth,
        )
        run.null("matched_sets_dla", stats.set_sums(clean["dla"].mean(0), big))
        run.null("matched_sets_attention_gap", stats.set_means(gap.mean(0), big))
        run.null("matched_sets_ablation", effect[1:].mean(1))
        if run.is_primary:
            tok = model.tokenizer
            run.artifact(scores=clean["dla"].mean(0).tolist(),
                         score_name="direct logit attribution to logit(query's label) - logit(other label)",
                         top_heads=[fmt_head(*h) for h in top],
                         null_example_heads=[fmt_head(*h) for h in big[0].tolist()],
                         example_prompt=tok.decode(data.tokens[0].tolist()),
                         attention_gap=gap.mean(0).tolist())
    run.conclude()
