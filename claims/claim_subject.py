"""Subject heads (Chughtai et al. 2024): from the final position of a factual prompt, a head
attends to the subject and what it reads there raises the subject's own attribute.

Prompts put a gap of several tokens between the subject and the final position ("The capital
of France is, of course,"), so reading the subject is not previous-token attention. Only facts
the model gets right are used (one memoised pass per model and template, claims/_facts.py),
and the countries are split in two by name: heads are chosen on the selection half, frozen, and
judged on the held-out half in every template.

- Each head's output at the final position is split by source token (attention weight times the
  value vector at that key, through W_O); the part read from the subject token is passed through
  the final norm (its scale frozen) onto W_U[correct] - mean W_U[the relation's other answers]:
  how much the head, from the subject alone, prefers this subject's attribute over the other
  attributes of the same kind (a relation-only signal cannot do that).
- The k heads with the largest such subject-sourced attribution on the selection half are the
  subject heads. On held-out subjects: their summed attribution per prompt (bootstrapped), a null
  of 999 head sets matched by layer, and the control of the same heads' output scored against
  another held-out subject's attribute (answers permuted).
"""

import functools
import random
import statistics

import torch
from _facts import facts_for

from headatlas.claims import claim
from headatlas.methods import stats, weights
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.methods.weights import final_ln_linear, kv_group

MIN_KNOWN = 8  # known facts in each half (selection, and each held-out variant)


def source_split(bridge, tokens, sources):
    """Each head's final-position output read from the `sources` positions only, through the
    post-attention norm where the model has one and the final norm, their scales at the final
    position frozen: [batch, layer, head, d_model]; and each
    head's attention from the final position to those positions: [batch, layer, head]."""
    return source_splits(bridge, tokens, [sources])[0][0]


def source_splits(bridge, tokens, groups):
    """source_split for several groups of source positions from one forward pass: a list of
    (output, attention) pairs, one per group, and the normalised residual entering the
    unembedding at the final position [batch, d_model]."""
    n_layers = bridge.cfg.n_layers
    group = kv_group(bridge)
    w_o = bridge.W_O.detach()
    store = {}

    def keep(x, hook, key):
        store[key] = x.detach()
        return x

    hooks = [(f"blocks.{layer}.attn.hook_{kind}", functools.partial(keep, key=(kind, layer)))
             for layer in range(n_layers) for kind in ("pattern", "v")]
    hooks += [("ln_final.hook_scale", functools.partial(keep, key="scale")),
              ("unembed.hook_in", functools.partial(keep, key="final"))]
    post = weights.has_post_attn_norm(bridge)   # Gemma: each attention output is normalised first
    if post:
        hooks += [(f"blocks.{layer}.ln1_post.hook_scale", functools.partial(keep, key=("post", layer)))
                  for layer in range(n_layers)]
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    scale = store["scale"][:, -1].float()                                   # [batch, 1]
    splits = []
    for sources in groups:
        mask = torch.zeros(tokens.shape[1])
        mask[sources] = 1.0
        outs, atts = [], []
        for layer in range(n_layers):
            a = store[("pattern", layer)][:, :, -1].float() * mask          # [batch, head, key]
            v = store[("v", layer)].float().repeat_interleave(group, dim=2)  # [batch, key, head, d_head]
            o = torch.einsum("bhk,bkhd,hdm->bhm", a, v, w_o[layer].float())
            if post:  # the post-attention norm's gain, its scale at the final position frozen
                o = o * weights.post_attn_gain(bridge, layer) / store[("post", layer)][:, -1].float().reshape(-1, 1, 1)
            outs.append(o)
            atts.append(a.sum(-1))
        out = final_ln_linear(bridge, torch.stack(outs, 1), scale[:, None, None, :])
        splits.append((out, torch.stack(atts, 1)))
    return splits, store["final"][:, -1].float()


def attribute_direction(bridge, answer, candidates):
    """W_U[answer] - mean W_U[candidates]: [batch, d_model]."""
    w_u = bridge.W_U.detach().float()
    return w_u[:, answer].T - w_u[:, candidates].mean(1)[None]


def subject_dla(bridge, facts, answer=None):
    """Per-prompt subject-sourced attribution of every head [batch, layer, head], and attention
    to the subject [batch, layer, head]."""
    out, att = source_split(bridge, facts.tokens, [facts.subject_pos])
    direction = attribute_direction(bridge, facts.answer if answer is None else answer, facts.candidates)
    return (out * direction[:, None, None]).sum(-1), att, out


@claim("subject-heads-dla")
def test_subject_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge
    k = int(p["k"])
    sel = facts_for(run, run.selection_data, MIN_KNOWN)
    sel_dla, _, _ = subject_dla(bridge, sel)
    sel_score = sel_dla.mean(0)
    order = torch.argsort(sel_score.flatten(), descending=True)[:k]
    top = [(int(i) // model.n_heads, int(i) % model.n_heads) for i in order]
    run.select(top, top_head_selection_dla=sel_score[top[0]], n_selection_facts=len(sel.subjects))
    depth = statistics.median(relative_depth(layer, model.n_layers) for layer, _ in top)
    sets = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                   seed=int(p["null_seed"]), exclude=top)
    rows, cols = torch.tensor([h[0] for h in top]), torch.tensor([h[1] for h in top])
    for data_spec in run.variants():
        facts = facts_for(run, data_spec, MIN_KNOWN)
        dla, att, out = subject_dla(bridge, facts)
        # Control: the held-out subjects' answers permuted (no subject keeps its own).
        n = len(facts.subjects)
        perm = list(range(n))
        rng = random.Random(int(p["control_seed"]))
        while any(i == j for i, j in enumerate(perm)):
            rng.shuffle(perm)
        wrong = facts.answer[perm]
        wrong_dla = (out * attribute_direction(bridge, wrong, facts.candidates)[:, None, None]).sum(-1)
        run.measure(
            n_known=n,
            subject_dla=dla[:, rows, cols].sum(1), shuffled_answer_dla=wrong_dla[:, rows, cols].sum(1),
            subject_attention=att[:, rows, cols].mean(1), top_heads_depth=depth,
        )
        run.null("matched_sets_dla", stats.set_sums(dla.mean(0), sets))
        run.null("matched_sets_attention", stats.set_means(att.mean(0), sets))
        if run.is_primary:
            run.artifact(scores=dla.mean(0).tolist(),
                         score_name="subject-sourced attribution to the correct attribute (logits)",
                         top_heads=[fmt_head(*h) for h in top], subjects=facts.subjects,
                         null_example_heads=[fmt_head(*h) for h in sets[0].tolist()])
    run.conclude()
