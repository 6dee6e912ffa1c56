"""Constant heads (Lieberum et al. 2023): at the answer position of a multiple-choice question, a
head spreads its attention evenly over the option labels, whichever option is correct."""

import torch
from _attn import fmt, forward_reduce, unembed_rows

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import scoring


@claim("constant-option-attention")
def test_constant_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    q = patterns.mcqa_prompts(model.tokenizer, n_prompts=int(d["n_prompts"]), n_shots=int(d["n_shots"]),
                                  template=str(d["template"]), seed=int(d["seed"]))
    n_opt = q.letter_pos.shape[1]

    def labels(pattern):                                   # -> [head, batch, n_options]
        row = pattern[:, :, -1]
        return row.gather(2, q.letter_pos[:, None].expand(-1, pattern.shape[1], -1)).permute(1, 0, 2)

    out = forward_reduce(model.bridge, q.tokens, {"a": labels}, final_at=-1)
    a = out["a"]                                                                   # [layer, head, batch, n]
    # Even mass: n x the attention on the least-attended label, per prompt. Equals the total
    # attention on the labels when it is spread evenly, 0 when any option is left out.
    even = (n_opt * a.min(-1).values).mean(-1)
    mass = a.sum(-1)
    share = a / mass[..., None].clamp(min=1e-12)
    correct_share = share.gather(-1, q.answer[None, None, :, None].expand(*share.shape[:3], 1))[..., 0].mean(-1)
    best = scoring.top_heads(even, 1)[0]
    logits = unembed_rows(model.bridge, out["final"])
    accuracy = float((logits[:, q.label_ids].argmax(-1) == q.answer).float().mean())
    run.measure(even_mass=even[best], control_even_mass_p95=torch.quantile(even.flatten(), float(p["control_quantile"])),
                label_mass=mass[best].mean(), correct_label_excess=abs(float(correct_share[best]) - 1 / n_opt),
                answer_accuracy=accuracy, chance_accuracy=1 / n_opt,
                uniform_label_mass=n_opt / q.tokens.shape[1])
    if run.is_primary:
        run.artifact(scores=even.tolist(), score_name="attention mass spread evenly over the option labels",
                     top_heads=fmt(scoring.top_heads(even, 5)))
