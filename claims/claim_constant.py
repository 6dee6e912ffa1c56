"""Constant heads (Lieberum et al. 2023): at the answer position of a multiple-choice question, a
head spreads its attention evenly over the option labels, whichever option is correct.

The head is chosen on selection prompts (another seed) and judged, frozen, on held-out prompts
of three templates, against the same score of every head of the model on those prompts."""

import torch
from _attn import fmt, forward_reduce, unembed_rows

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import scoring, stats


def label_attention(model, d: dict) -> dict:
    """Per head and prompt, the answer position's attention to each option label, and the
    model's answer accuracy: a [layer, head, batch, n_options], answer [batch], accuracy."""
    q = patterns.mcqa_prompts(model.tokenizer, n_prompts=int(d["n_prompts"]), n_shots=int(d["n_shots"]),
                              template=str(d["template"]), seed=int(d["seed"]))

    def labels(pattern):                                   # -> [head, batch, n_options]
        row = pattern[:, :, -1]
        return row.gather(2, q.letter_pos[:, None].expand(-1, pattern.shape[1], -1)).permute(1, 0, 2)

    out = forward_reduce(model.bridge, q.tokens, {"a": labels}, final_at=-1)
    logits = unembed_rows(model.bridge, out["final"])
    accuracy = float((logits[:, q.label_ids].argmax(-1) == q.answer).float().mean())
    return {"a": out["a"], "answer": q.answer, "accuracy": accuracy, "n_pos": q.tokens.shape[1]}


def _even(a: torch.Tensor) -> torch.Tensor:
    """Even mass per prompt: n x the attention on the least-attended label. Equals the total
    attention on the labels when it is spread evenly, 0 when any option is left out."""
    return a.shape[-1] * a.min(-1).values


@claim("constant-option-attention")
def test_constant_heads(run):
    model = run.model
    sel = label_attention(model, run.selection_data)
    sel_even = _even(sel["a"]).mean(-1)                                        # [layer, head]
    best = scoring.top_heads(sel_even, 1)[0]
    run.select([best], top_head_selection_even_mass=sel_even[best])
    for data in run.variants():
        m = label_attention(model, data)
        a, n_opt = m["a"], m["a"].shape[-1]
        even = _even(a)                                                         # [layer, head, batch]
        head = a[best]                                                          # [batch, n_options]
        mass = head.sum(-1)
        correct_share = head.gather(-1, m["answer"][:, None])[:, 0] / mass.clamp(min=1e-12)
        excess = stats.bootstrap(correct_share, lambda x: (x.mean() - 1 / n_opt).abs())
        run.measure(even_mass=even[best], label_mass=mass, correct_label_excess=excess,
                    best_head_rank=scoring.head_rank(even.mean(-1), *best),
                    best_head_depth=scoring.relative_depth(best[0], model.n_layers),
                    answer_accuracy=m["accuracy"], chance_accuracy=1 / n_opt,
                    uniform_label_mass=n_opt / m["n_pos"])
        run.null("all_heads", even.mean(-1).flatten())
        if run.is_primary:
            run.artifact(scores=even.mean(-1).tolist(), score_name="attention mass spread evenly over the option labels",
                         top_heads=fmt(scoring.top_heads(even.mean(-1), 5)), selected_head=fmt([best]))
    run.conclude()
