"""Mover heads (Yao et al. 2024): heads that carry the subject's information to the final
position of a factual prompt, where the attribute is predicted.

Prompts put a gap of several tokens between the subject and the final position ("The capital
of France is, of course,"): with the subject right before the final token, attending to it is
previous-token attention, which every prompt has. Only facts the model gets right count (one
memoised pass per model and template, claims/_facts.py); countries are split in two by name.

On the selection half: the k heads in the entry's layer band that attend most from the final
position to the subject are the movers, frozen. On each held-out variant (other countries, three
templates): zero-ablating their output at the final position only must take away most of the
correct attribute's probability (ratio of means, bootstrapped), more than for 19 head sets drawn
from the same layers, ablated in one batched pass.
"""

import torch
from _facts import answer_prob, facts_for, last_residual, set_edit_hooks

from headatlas.claims import claim
from headatlas.methods import stats
from headatlas.methods.scoring import fmt_head, relative_depth
from claim_subject import source_split

MIN_KNOWN = 8  # known facts in each half (selection, and each held-out variant)


def band_heads(scores, n_layers, band, k):
    """The k highest-scoring heads whose layer lies in the relative-depth band."""
    n_heads = scores.shape[1]
    ranked = [(int(i) // n_heads, int(i) % n_heads) for i in torch.argsort(scores.flatten(), descending=True)]
    return [h for h in ranked if band[0] <= relative_depth(h[0], n_layers) <= band[1]][:k]


def ablated_sets(bridge, tokens, sets, readout):
    """readout(final residual [rows, d_model]) for the clean prompts and for each head set
    zero-ablated at the final position: ([n], [n_sets, n])."""
    n = tokens.shape[0]
    clean = readout(last_residual(bridge, tokens), torch.arange(n))
    x = last_residual(bridge, tokens.repeat(len(sets), 1), set_edit_hooks(sets, n, -1, "zero"))
    return clean, readout(x, torch.arange(n).repeat(len(sets))).view(len(sets), n)


@claim("mover-heads-ablation")
def test_mover_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge
    k = int(p["k"])
    sel = facts_for(run, run.selection_data, MIN_KNOWN)
    _, att = source_split(bridge, sel.tokens, [sel.subject_pos])
    sel_att = att.mean(0)                                                   # [layer, head]
    top = band_heads(sel_att, model.n_layers, run.entry.layer_band.relative, k)
    run.select(top, selection_mover_attention=float(sum(sel_att[h] for h in top) / k),
               n_selection_facts=len(sel.subjects))
    nulls = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                    seed=int(p["null_seed"]), exclude=top)
    sets = torch.cat([torch.tensor([[list(h) for h in top]]), nulls])       # set 0: the movers
    for data_spec in run.variants():
        facts = facts_for(run, data_spec, MIN_KNOWN)
        _, att = source_split(bridge, facts.tokens, [facts.subject_pos])
        answer = facts.answer

        def readout(x, idx):
            return answer_prob(bridge, x, answer[idx])

        clean, ablated = ablated_sets(bridge, facts.tokens, sets, readout)
        run.measure(n_known=len(facts.subjects), clean_prob=clean,
                    prob_kept=stats.bootstrap_ratio(ablated[0], clean),
                    mover_attention=att[:, [h[0] for h in top], [h[1] for h in top]].mean(1))
        run.null("matched_sets", ablated[1:].mean(1) / clean.mean())
        if run.is_primary:
            kept_null = float((ablated[1:].mean(1) / clean.mean()).median())
            run.artifact(scores=att.mean(0).tolist(), score_name="attention from the final position to the subject",
                         top_heads=[fmt_head(*h) for h in top],
                         null_example_heads=[fmt_head(*h) for h in nulls[0].tolist()],
                         effects={"labels": [f"mover heads ({', '.join(fmt_head(*h) for h in top)})",
                                             f"median of {len(nulls)} matched sets"],
                                  "values": [float(ablated[0].mean() / clean.mean()), kept_null],
                                  "ylabel": "share of the correct attribute's probability kept after zero-ablation"})
    run.conclude()
