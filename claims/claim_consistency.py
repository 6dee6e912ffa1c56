"""Consistency heads (Yang et al. 2024): heads whose output tells whether the model will give the
same answer to prompts that mean the same, and along whose direction a shift makes it do so.

Yang et al. label pairs of paraphrased prompts by whether the model's answers agree, probe every
head's last-token output for that label, and add to the best heads a bias along the direction of
consistent answers. The paraphrase here is the one multiple-choice answering is known to fail:
the same question with its options in another order. Each Colors question (Wiegreffe et al.'s
task, headatlas.prompts.patterns.mcqa_prompts) is asked with its options as written and rotated
down by one, two and three places; every other token is the same. A rotated question is
consistent when the model picks, by its top letter, the colour it picked in the original order.

- Selection (half of the objects, one template): per-head logistic probes on hook_z at the answer
  position of the rotated questions for consistency, ranked by balanced accuracy under
  cross-validation with whole objects held out; the top k are frozen with their probes and each
  head's consistent-minus-inconsistent direction, taken within each target letter (the letter
  the original colour sits under after rotation) and averaged, so the direction does not point
  at a letter the model favours.
- Held out (the other objects, three templates): the chosen heads' probes must beat layer-matched
  head sets; on the inconsistent rotated questions, a shift of the chosen heads by alpha standard
  deviations along their directions must raise the original colour's letter over the best other
  letter, more than layer-matched sets shifted along their own directions in the same pass.
"""

from __future__ import annotations

import _probe_steer as ps
import torch
from _attn import forward_reduce, memo, unembed_rows

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods import steering
from headatlas.prompts import patterns


def rotation_pairs(run, d: dict) -> dict:
    """One data spec's questions in the original order and rotated by each of d["rotations"],
    one clean pass each, read at the answer position. For the rotated questions, stacked over
    rotations ([n_pairs] = len(rotations) x n_prompts): z [layer, head, n_pairs, d_head], the
    target letter (where the originally chosen colour now stands), the margin of that letter over
    the best other letter, consistency (margin > 0), the object (for grouped folds), and the
    accuracy of the original questions."""
    model = run.model

    def compute():
        opts = {"n_prompts": int(d["n_prompts"]), "n_shots": int(d["n_shots"]), "template": str(d["template"]),
                "seed": int(d["seed"]), "task": "color", "half": str(d["half"])}
        base = patterns.mcqa_prompts(model.tokenizer, **opts)
        first = unembed_rows(model.bridge, forward_reduce(model.bridge, base.tokens, final_at=-1)["final"])
        chosen = first[:, base.label_ids].argmax(-1)                          # [n] letter picked in the original
        z, margin, target, tokens = [], [], [], []
        for r in d["rotations"]:
            q = patterns.mcqa_prompts(model.tokenizer, **opts, rotate=int(r))
            out = forward_reduce(model.bridge, q.tokens, z_at=-1, final_at=-1)
            letters = unembed_rows(model.bridge, out["final"])[:, q.label_ids]
            t = (chosen + int(r)) % letters.shape[1]
            z.append(out["z"].permute(0, 2, 1, 3))                             # [layer, head, n, d_head]
            margin.append(target_margin(letters, t))
            target.append(t)
            tokens.append(q.tokens)
        objects = sorted(set(base.subjects))
        group = torch.tensor([objects.index(o) for o in base.subjects]).repeat(len(d["rotations"]))
        margin = torch.cat(margin)
        return {"z": torch.cat(z, 2), "margin": margin, "consistent": margin > 0, "target": torch.cat(target),
                "tokens": torch.cat(tokens), "group": group, "label_ids": base.label_ids,
                "accuracy": float((chosen == base.answer).float().mean())}

    key = {k: v for k, v in d.items() if k != "name"}
    return memo(("consistency-pairs", model.name, key), compute)


def target_margin(letters: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """logit(target letter) - the largest logit among the other letters: [n, options], [n] -> [n];
    positive exactly when the target letter is the model's top letter."""
    rows = torch.arange(letters.shape[0])
    on = letters[rows, target]
    rest = letters.clone()
    rest[rows, target] = -torch.inf
    return on - rest.max(-1).values


def steered_margins(run, c: dict, rows: torch.Tensor, sets: torch.Tensor, vectors: torch.Tensor,
                    chunk: int = 16) -> torch.Tensor:
    """The target letter's margin on rotated questions `rows` with each head set's shift added at
    the answer position, every set batched in one pass per `chunk` questions: [n_sets, len(rows)]."""
    bridge = run.model.bridge
    out = []
    for part in rows.split(chunk):
        tokens = c["tokens"][part]
        hooks = steering.head_set_addition_hooks(sets, vectors, len(part), tokens.shape[1] - 1)
        final = forward_reduce(bridge, tokens.repeat(len(sets), 1), fwd_hooks=hooks, final_at=-1)["final"]
        letters = unembed_rows(bridge, final)[:, c["label_ids"]]
        out.append(target_margin(letters, c["target"][part].repeat(len(sets))).view(len(sets), len(part)))
    return torch.cat(out, 1)


def require_both_outcomes(run, share_min: float, each_min: int) -> None:
    """Not applicable unless between share_min and 1 - share_min of the rotated questions are
    consistent, on the selection set and on every held-out set, with at least each_min of each
    outcome among the selection pairs: a model that always keeps or always changes its answer
    gives nothing to probe."""
    for name, d in [("selection", run.selection_data)] + spec_variants(run.spec.data):
        c = rotation_pairs(run, d)
        kept, n = int(c["consistent"].sum()), len(c["consistent"])
        if not share_min <= kept / n <= 1 - share_min:
            run.not_applicable(f"keeps its colour when the options are rotated on {kept} of the {n} rotated questions "
                               f"of {ps.set_label(name, d)} ({kept / n:.1%}; the original questions {c['accuracy']:.0%} right); the "
                               f"claim needs {share_min:.0%} to {1 - share_min:.0%}, so that both outcomes can be probed")
    c = rotation_pairs(run, run.selection_data)
    n_yes = int(c["consistent"].sum())
    n_no = len(c["consistent"]) - n_yes
    if min(n_yes, n_no) < each_min:
        run.not_applicable(f"of the rotated selection questions {n_yes} keep the colour and {n_no} change it; "
                           f"the claim needs {each_min} of each")


@claim("consistency-heads-probe-steering")
def test_consistency_heads(run):
    p = run.params
    require_both_outcomes(run, float(p["min_share"]), int(p["each_min"]))
    sel = rotation_pairs(run, run.selection_data)
    unit, sigma = steering.stratified_mass_mean_directions(sel["z"], sel["consistent"], sel["target"],
                                                           min_each=int(p["stratum_min"]))
    chosen = ps.choose(run, sel["z"], sel["consistent"], sel["group"], unit, sigma,
                       selection_consistent_share=sel["consistent"].float(), selection_accuracy=sel["accuracy"])
    for d in run.variants():
        c = rotation_pairs(run, d)
        probe = ps.held_out_probes(chosen, c["z"], c["consistent"])
        wrong = probe["wrong"]
        steered = steered_margins(run, c, wrong, chosen.shift_sets, chosen.vectors)
        rise = steered - c["margin"][wrong][None]                            # [1 + sets, inconsistent pairs]
        ps.record(run, chosen, probe, rise, "held-out balanced accuracy of the head's probe for whether the model "
                                            "keeps its answer when the options are rotated",
                  consistent_share=c["consistent"].float(), n_inconsistent=len(wrong), original_accuracy=c["accuracy"],
                  consistency_margin_rise=rise[0], fixed_share=(steered[0] > 0).float())
    run.conclude()
