"""Relation heads (Chughtai et al. 2024; Yao et al. 2024): heads that read the relation words
of a factual prompt ("capital of", "official language of") from the final position and make the
model answer with an attribute of the right kind.

Per data variant (relation template), on the facts the model gets right: the k heads in the
entry's layer band that attend most from the final position to the relation words. The measure
is the category preference: the mean logit over the relation's answers (all capitals) minus the
mean logit over another relation's answers (all languages), which no subject-specific signal
can produce. Zero-ablating the k heads at the final position must lower it; k random heads are
the control. Their direct contribution read from the relation words (attribution through the
unembedding) is recorded too.
"""

from claim_mover import band_heads
from claim_subject import known_facts, last_logits, source_split

from headatlas.claims import claim
from headatlas.methods.replacement import z_replacement_hooks
from headatlas.methods.scoring import fmt_head, random_heads


@claim("relation-heads-ablation")
def test_relation_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    from headatlas.prompts.tasks import fact_prompts

    model, p, d = run.model, run.params, run.data
    bridge = model.bridge
    n_layers, n_heads = model.n_layers, model.n_heads
    data = known_facts(bridge, fact_prompts(model.tokenizer, d["template"]))
    out, att = source_split(bridge, data.tokens, data.relation_pos)
    w_u = bridge.W_U.detach().float()
    category = w_u[:, data.candidates].mean(1) - w_u[:, data.other_candidates].mean(1)
    direct = (out * category).sum(-1).mean(0)                              # [layer, head]
    att = att.mean(0)
    k = int(p["k"])
    top = band_heads(att, n_layers, run.entry.layer_band.relative, k)
    control = random_heads(n_layers, n_heads, k, int(p["control_seed"]), exclude=top)

    def preference(heads=()):
        hooks = z_replacement_hooks(heads, None, positions=[-1]) if heads else ()
        logits = last_logits(bridge, data.tokens, hooks)
        return float((logits[:, data.candidates].mean(1) - logits[:, data.other_candidates].mean(1)).mean())

    clean = preference()
    drop, control_drop = clean - preference(top), clean - preference(control)
    run.measure(n_known=len(data.answer), category_preference=clean,
                preference_drop=drop, control_preference_drop=control_drop,
                relation_attention=float(sum(att[h] for h in top) / k),
                control_attention=float(sum(att[h] for h in control) / k),
                direct_category_attribution=float(sum(direct[h] for h in top)),
                max_direct_category_attribution=float(direct.max()))
    if run.is_primary:
        run.artifact(scores=att.tolist(), score_name="attention from the final position to the relation words",
                     top_heads=[fmt_head(*h) for h in top], control_heads=[fmt_head(*h) for h in control],
                     effects={"labels": [f"relation heads ({', '.join(fmt_head(*h) for h in top)})", f"random {k} heads"],
                              "values": [drop, control_drop],
                              "ylabel": "drop of the category preference (logits) after zero-ablation"})
