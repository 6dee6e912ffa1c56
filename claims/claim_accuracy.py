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

import _probe_steer as ps
import torch
from _attn import forward_reduce, memo
from _facts import columns

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods import steering
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
    unit, sigma = steering.mass_mean_directions(sel["z"], sel["right"])
    chosen = ps.choose(run, sel["z"], sel["right"], torch.arange(len(sel["right"])), unit, sigma,
                       selection_right_share=sel["right"].float())
    small, vectors = chosen.shift_sets, chosen.vectors
    for d in run.variants():
        test = sums(run, d)
        s, right = test["data"], test["right"]
        probe = ps.held_out_probes(chosen, test["z"], right)
        wrong = probe["wrong"]
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
        ps.record(run, chosen, probe, rise, "held-out balanced accuracy of the head's probe for whether the "
                                            "model's first digit is right",
                  right_share=right.float(), n_wrong=n_wrong, steering_margin_rise=rise[0], steering_fixed_share=fixed)
    run.conclude()
