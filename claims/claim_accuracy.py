"""Accuracy heads (Guo et al. 2024; Yin et al. 2024): heads whose output predicts whether the
model's answer will be right, and along whose right-minus-wrong direction a shift makes it right
more often.

No question-answering set with gold answers is at hand offline, so the task is one the project
writes itself: two-digit sums after three solved examples (headatlas.prompts.arithmetic). The
label is the model's own outcome: whether the digit it ranks first at the answer position is the
first digit of the sum. Only models that get some sums right and some wrong can be probed; the
Qwen2.5-Coder models get nearly all right, SmolLM2 and Gemma about a third to a half.

- Selection (another seed): per-head logistic probes on hook_z at the last position (the "=")
  are ranked by 4-fold cross-validated balanced accuracy (headatlas.methods.probing); the top k
  are frozen, their probes trained on every selection sum, and each head's mass-mean direction
  (mean output on sums it got right minus on sums it got wrong) taken there.
- Held out (other seeds and templates): the chosen probes' balanced accuracy against 999 head
  sets from the same layers; and Li et al.'s shift (alpha standard deviations along each chosen
  head's direction, added at the last position) on the sums the model gets wrong: the rise of
  the right digit's logit over the digit the model chose, against 19 matched sets shifted
  along their own directions in the same batched pass.
"""

from __future__ import annotations

import torch
from _attn import forward_reduce, memo
from _facts import columns

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods import probing, stats, steering
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts import arithmetic


def sums(run, data_spec: dict) -> dict:
    """One data spec's sums and their clean pass: z [layer, head, batch, d_head] at the last
    position, digit logits [batch, 10], the model's pick and whether it is right."""
    model = run.model

    def compute():
        s = arithmetic.from_spec(model.tokenizer, data_spec)
        out = forward_reduce(model.bridge, s.clean, z_at=-1, final_at=-1)
        digits = columns(model.bridge, out["final"], s.digit_ids)
        pick = digits.argmax(-1)
        right = s.digit_ids[pick] == s.correct
        return {"data": s, "z": out["z"].permute(0, 2, 1, 3).contiguous(), "digits": digits, "pick": pick,
                "right": right}

    return memo(("accuracy-sums", model.name, {k: v for k, v in data_spec.items() if k != "name"}), compute)


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-row weights whose weighted mean of correctness is the balanced accuracy: n / (2 n_class)."""
    labels = labels.bool()
    n, n_right = len(labels), int(labels.sum())
    return torch.where(labels, n / (2 * n_right), n / (2 * (n - n_right)))


def require_both_outcomes(run, share_min: float) -> None:
    """Not applicable unless the model gets at least share_min of the sums right and as many wrong,
    on the selection sums and on every held-out variant."""
    for name, d in [("selection", run.selection_data)] + spec_variants(run.spec.data):
        right = float(sums(run, d)["right"].float().mean())
        if not share_min <= right <= 1 - share_min:
            run.not_applicable(f"ranks the right first digit first on {right:.0%} of the {name} sums "
                               f"({d['template']}); the claim needs {share_min:.0%} to {1 - share_min:.0%}, "
                               f"so that both outcomes can be probed")


@claim("accuracy-heads-probe-steering")
def test_accuracy_heads(run):
    model, p = run.model, run.params
    require_both_outcomes(run, float(p["min_share"]))
    sel = sums(run, run.selection_data)
    labels = sel["right"].long()
    n = len(labels)
    kw = dict(seed=int(p["probe_seed"]), steps=int(p["probe_steps"]), weight_decay=float(p["weight_decay"]))
    top, cv = probing.rank_heads(sel["z"], labels, torch.arange(n), k=int(p["k"]), folds=int(p["folds"]),
                                 row_weights=class_weights(sel["right"]), **kw)   # cv: balanced accuracy
    probes = probing.fit_probes(sel["z"], labels, **kw)
    unit, sigma = steering.mass_mean_directions(sel["z"], sel["right"])
    run.select(top, selection_cv_balanced_accuracy=float(sum(cv[h] for h in top)) / len(top),
               selection_all_heads_median_cv=float(cv.median()), selection_right_share=sel["right"].float())
    rows, cols = [h[0] for h in top], [h[1] for h in top]
    sets = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                   seed=int(p["null_seed"]), exclude=top)
    small, vectors = steering.matched_shift_sets(top, unit, sigma, float(p["alpha"]), model.n_layers, model.n_heads,
                                                 n_sets=int(p["steering_sets"]), seed=int(p["null_seed"]))
    for d in run.variants():
        test = sums(run, d)
        s, right = test["data"], test["right"]
        w = class_weights(right)
        hit = probes.correct(test["z"], right.long())                         # [layer, head, batch]
        balanced = (hit * w).mean(-1)
        wrong = (~right).nonzero().flatten()
        n_wrong = len(wrong)
        last = s.clean.shape[1] - 1
        out = forward_reduce(model.bridge, s.clean[wrong].repeat(len(small), 1), final_at=-1,
                             fwd_hooks=steering.head_set_addition_hooks(small, vectors, n_wrong, last))
        digits = columns(model.bridge, out["final"], s.digit_ids).view(len(small), n_wrong, 10)
        target = (s.digit_ids[None] == s.correct[wrong, None]).float().argmax(-1)   # index of the right digit
        pick = test["pick"][wrong]

        def margin(dg):
            return dg[..., torch.arange(n_wrong), target] - dg[..., torch.arange(n_wrong), pick]
        rise = margin(digits) - margin(test["digits"][wrong])[None]            # [1 + sets, wrong sums]
        fixed = (digits[0].argmax(-1) == target).float()
        run.measure(right_share=right.float(), n_wrong=n_wrong,
                    chosen_heads_balanced_accuracy=hit[rows, cols].mean(0) * w,
                    all_heads_median_balanced_accuracy=float(balanced.median()),
                    best_head_balanced_accuracy=float(balanced.max()),
                    steering_margin_rise=rise[0], steering_fixed_share=fixed,
                    top_heads_depth=float(torch.tensor([relative_depth(la, model.n_layers) for la, _ in top]).median()))
        run.null("matched_sets_accuracy", stats.set_means(balanced, sets))
        run.null("matched_sets_steering", rise[1:].mean(1))
        if run.is_primary:
            run.artifact(scores=balanced.tolist(), score_name="held-out balanced accuracy of the head's probe "
                                                               "for whether the model's first digit is right",
                         selection_scores=cv.tolist(), top_heads=[fmt_head(*h) for h in top],
                         null_example_heads=[fmt_head(*h) for h in sets[0].tolist()], alpha=float(p["alpha"]))
    run.conclude()
