"""Mover heads (Yao et al. 2024): heads that carry the subject's information to the final
position of a factual prompt, where the attribute is predicted.

Per data variant (relation template), on the facts the model gets right: the k heads in the
entry's layer band that attend most from the final position to the subject token are the
movers. Zero-ablating their output at the final position only (nothing else changes) must
take away most of the correct attribute's probability; k random heads are the control.
"""

import torch
from claim_subject import known_facts, last_logits, source_split

from headatlas.claims import claim
from headatlas.methods.replacement import z_replacement_hooks
from headatlas.methods.scoring import fmt_head, random_heads, relative_depth
from headatlas.prompts.tasks import fact_prompts


def band_heads(scores, n_layers, band, k):
    """The k highest-scoring heads whose layer lies in the relative-depth band."""
    n_heads = scores.shape[1]
    ranked = [(int(i) // n_heads, int(i) % n_heads) for i in torch.argsort(scores.flatten(), descending=True)]
    return [h for h in ranked if band[0] <= relative_depth(h[0], n_layers) <= band[1]][:k]


@claim("mover-heads-ablation")
def test_mover_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    bridge = model.bridge
    n_layers, n_heads = model.n_layers, model.n_heads
    data = known_facts(bridge, fact_prompts(model.tokenizer, d["template"]))
    _, att = source_split(bridge, data.tokens, [data.subject_pos])
    att = att.mean(0)                                                       # [layer, head]
    k = int(p["k"])
    top = band_heads(att, n_layers, run.entry.layer_band.relative, k)
    control = random_heads(n_layers, n_heads, k, int(p["control_seed"]), exclude=top)
    idx = torch.arange(len(data.answer))

    def prob(heads=()):
        hooks = z_replacement_hooks(heads, None, positions=[-1]) if heads else ()
        return float(last_logits(bridge, data.tokens, hooks).softmax(-1)[idx, data.answer].mean())

    clean = prob()
    kept, control_kept = prob(top) / clean, prob(control) / clean
    run.measure(n_known=len(data.answer), clean_prob=clean,
                prob_kept=kept, control_prob_kept=control_kept,
                mover_attention=float(sum(att[h] for h in top) / k),
                control_attention=float(sum(att[h] for h in control) / k))
    if run.is_primary:
        run.artifact(scores=att.tolist(), score_name="attention from the final position to the subject",
                     top_heads=[fmt_head(*h) for h in top], control_heads=[fmt_head(*h) for h in control],
                     effects={"labels": [f"mover heads ({', '.join(fmt_head(*h) for h in top)})", f"random {k} heads"],
                              "values": [kept, control_kept],
                              "ylabel": "share of the correct attribute's probability kept after zero-ablation"})
