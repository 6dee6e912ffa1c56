"""Mixed heads (Chughtai et al. 2024): a head whose output at the final position of a factual
prompt is the sum of a subject-head-like part, read from the subject, that raises this subject's
own attribute, and a relation-head-like part, read from the relation words, that raises
attributes of the relation's kind.

Same prompts and split as the subject, mover and relation claims (claims/_facts.py): facts the
model gets right, countries split in two by name. Each head's final-position output is split by
source token (claim_subject.source_splits, one pass) and projected through the final norm (scale frozen)
onto the unembedding:

- subject part: the subject-sourced output on W_U[answer] - mean W_U[the relation's answers],
  as a share of the model's own margin logit(answer) - mean logit(the relation's answers);
- relation part: the relation-sourced output on mean W_U[the relation's answers] - mean W_U[the
  other relation's answers], as a share of the model's own category preference.

A mixed head is one whose weaker part is large. The head with the largest weaker share on the
selection half is chosen and frozen; on held-out countries in three templates its weaker share
(both ratios of means recomputed per bootstrap resample) must reach the threshold and beat the
same value of every other head of the model.
"""

import torch
from _facts import columns, facts_for
from claim_mover import MIN_KNOWN
from claim_subject import attribute_direction, source_splits

from headatlas.claims import claim
from headatlas.methods import stats
from headatlas.methods.scoring import fmt_head, relative_depth


def parts(bridge, facts) -> dict[str, torch.Tensor]:
    """Per prompt: every head's subject part and relation part in logits [batch, layer, head],
    its attention to the subject and to the relation words, and the model's own attribute margin
    and category preference [batch]."""
    w_u = bridge.W_U.detach().float()
    ((out_s, att_s), (out_r, att_r)), final = source_splits(bridge, facts.tokens, [[facts.subject_pos], facts.relation_pos])
    category = w_u[:, facts.candidates].mean(1) - w_u[:, facts.other_candidates].mean(1)
    lg = columns(bridge, final, torch.cat([facts.candidates, facts.other_candidates]))
    n_own = len(facts.candidates)
    which = (facts.candidates[None] == facts.answer[:, None]).float().argmax(1)          # answer among candidates
    answer_logit = lg[:, :n_own].gather(1, which[:, None])[:, 0]
    return {"subject": (out_s * attribute_direction(bridge, facts.answer, facts.candidates)[:, None, None]).sum(-1),
            "relation": (out_r * category).sum(-1),
            "subject_attention": att_s, "relation_attention": att_r,
            "margin": answer_logit - lg[:, :n_own].mean(1),
            "preference": lg[:, :n_own].mean(1) - lg[:, n_own:].mean(1)}


def weaker_share(subject: torch.Tensor, relation: torch.Tensor, margin: torch.Tensor,
                 preference: torch.Tensor) -> torch.Tensor:
    """min(mean subject part / mean margin, mean relation part / mean preference) over prompts
    (dim 0), for every head at once."""
    return torch.minimum(subject.mean(0) / margin.mean(), relation.mean(0) / preference.mean())


@claim("mixed-heads-source-split")
def test_mixed_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge

    # Select: the head whose weaker part is largest on the selection half of the countries.
    sel = facts_for(run, run.selection_data, MIN_KNOWN)
    s = parts(bridge, sel)
    score = weaker_share(s["subject"], s["relation"], s["margin"], s["preference"])      # [layer, head]
    flat = int(score.flatten().argmax())
    layer, head = divmod(flat, model.n_heads)
    run.select([(layer, head)], selection_weaker_share=score[layer, head], n_selection_facts=len(sel.subjects))

    # Measure on held-out countries, three templates.
    for data_spec in run.variants():
        facts = facts_for(run, data_spec, MIN_KNOWN)
        m = parts(bridge, facts)
        rows = torch.stack([m["subject"][:, layer, head], m["margin"], m["relation"][:, layer, head],
                            m["preference"]], 1)                                        # [batch, 4]
        run.measure(
            n_known=len(facts.subjects),
            weaker_share=stats.bootstrap(rows, lambda x: torch.minimum(x[:, 0].mean() / x[:, 1].mean(),
                                                                       x[:, 2].mean() / x[:, 3].mean())),
            subject_share=stats.bootstrap_ratio(rows[:, 0], rows[:, 1]),
            relation_share=stats.bootstrap_ratio(rows[:, 2], rows[:, 3]),
            subject_part=rows[:, 0], relation_part=rows[:, 2],
            attribute_margin=m["margin"], category_preference=m["preference"],
            subject_attention=m["subject_attention"][:, layer, head],
            relation_attention=m["relation_attention"][:, layer, head],
            top_heads_depth=relative_depth(layer, model.n_layers))
        shares = weaker_share(m["subject"], m["relation"], m["margin"], m["preference"])     # [layer, head]
        every = shares.flatten()
        run.null("all_other_heads", torch.cat([every[:flat], every[flat + 1:]]))
        if run.is_primary:
            run.artifact(scores=shares.tolist(),
                         score_name="weaker of the subject share and the relation share (held-out)",
                         top_heads=[fmt_head(layer, head)], subjects=facts.subjects,
                         subject_share_by_head=(m["subject"].mean(0) / m["margin"].mean()).tolist(),
                         relation_share_by_head=(m["relation"].mean(0) / m["preference"].mean()).tolist())

    # Conclude.
    run.conclude()
