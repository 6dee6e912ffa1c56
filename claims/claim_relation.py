"""Relation heads (Chughtai et al. 2024; Yao et al. 2024): heads that read the relation words
of a factual prompt ("capital of", "official language of") from the final position and make the
model answer with an attribute of the right kind.

Same prompts and split as the mover and subject claims (claims/_facts.py): facts the model gets
right, countries split by name. On the selection half: the k heads in the entry's layer band
that attend most from the final position to the relation words, frozen. On each held-out variant
the measure is the category preference: the mean logit over the relation's answers (all
capitals) minus the mean logit over another relation's answers (all languages), which no
subject-specific signal can produce. Zero-ablating the k heads at the final position must lower
it, by more than zero-ablating 19 head sets drawn from the same layers (one batched pass). Their
attention to the relation words is judged against 999 such sets; their direct contribution read
from the relation words (attribution through the unembedding) is recorded.
"""

import torch
from _facts import columns, facts_for
from claim_mover import MIN_KNOWN, ablated_sets, band_heads
from claim_subject import source_split

from headatlas.claims import claim
from headatlas.methods import stats
from headatlas.methods.scoring import fmt_head


@claim("relation-heads-ablation")
def test_relation_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge
    k = int(p["k"])
    sel = facts_for(run, run.selection_data, MIN_KNOWN)
    _, att = source_split(bridge, sel.tokens, sel.relation_pos)
    sel_att = att.mean(0)
    top = band_heads(sel_att, model.n_layers, run.entry.layer_band.relative, k)
    run.select(top, selection_relation_attention=float(sum(sel_att[h] for h in top) / k),
               n_selection_facts=len(sel.subjects))
    nulls = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                    seed=int(p["null_seed"]), exclude=top)
    att_sets = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=999,
                                       seed=int(p["null_seed"]), exclude=top)
    sets = torch.cat([torch.tensor([[list(h) for h in top]]), nulls])
    rows, cols = [h[0] for h in top], [h[1] for h in top]
    w_u = bridge.W_U.detach().float()
    for data_spec in run.variants():
        facts = facts_for(run, data_spec, MIN_KNOWN)
        out, att = source_split(bridge, facts.tokens, facts.relation_pos)
        ids = torch.cat([facts.candidates, facts.other_candidates])
        n_own = len(facts.candidates)

        def preference(x, idx):
            lg = columns(bridge, x, ids)
            return lg[:, :n_own].mean(1) - lg[:, n_own:].mean(1)

        clean, ablated = ablated_sets(bridge, facts.tokens, sets, preference)
        category = w_u[:, facts.candidates].mean(1) - w_u[:, facts.other_candidates].mean(1)
        direct = (out * category).sum(-1)                                      # [batch, layer, head]
        run.measure(n_known=len(facts.subjects), category_preference=clean,
                    preference_drop=clean - ablated[0],
                    relation_attention=att[:, rows, cols].mean(1),
                    direct_category_attribution=direct[:, rows, cols].sum(1),
                    max_direct_category_attribution=float(direct.mean(0).max()))
        run.null("matched_sets", clean.mean() - ablated[1:].mean(1))
        run.null("matched_sets_attention", stats.set_means(att.mean(0), att_sets))
        if run.is_primary:
            run.artifact(scores=att.mean(0).tolist(), score_name="attention from the final position to the relation words",
                         top_heads=[fmt_head(*h) for h in top],
                         null_example_heads=[fmt_head(*h) for h in nulls[0].tolist()],
                         effects={"labels": [f"relation heads ({', '.join(fmt_head(*h) for h in top)})",
                                             f"median of {len(nulls)} matched sets"],
                                  "values": [float((clean - ablated[0]).mean()),
                                             float((clean.mean() - ablated[1:].mean(1)).median())],
                                  "ylabel": "drop of the category preference (logits) after zero-ablation"})
    run.conclude()
