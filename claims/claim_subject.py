"""Subject heads (Chughtai et al. 2024): from the final position of a factual prompt, a head
attends to the subject and what it reads there raises the subject's own attribute.

Per data variant (relation template), on the facts the model gets right:
- each head's output at the final position is split by source token (attention weight times the
  value vector at that key, through W_O); the part read from the subject token is passed through
  the final norm (its scale frozen) onto W_U[correct] - mean W_U[the relation's other answers]:
  how much the head, from the subject alone, prefers this subject's attribute over the other
  attributes of the same kind (a relation-only signal cannot do that);
- the k heads with the largest such subject-sourced attribution are chosen on one half of the
  subjects and measured on the other half;
- control: the same heads' subject-sourced output scored against a different subject's
  attribute (answers permuted among the held-out subjects).
"""

import functools
import random
import statistics

import torch

from headatlas.claims import claim
from headatlas.methods.ablation import final_residual
from headatlas.methods.scoring import fmt_head, random_heads, relative_depth
from headatlas.methods.weights import final_ln_linear, kv_group
from headatlas.prompts.tasks import fact_prompts, subset


MIN_KNOWN = 4  # two facts to select heads on, two to test (a derangement needs at least two)


def last_logits(bridge, tokens, hooks=()):
    x = final_residual(bridge, tokens, hooks)[:, -1:]
    with torch.inference_mode():
        return bridge.unembed(x)[:, 0].float()


def known_facts(bridge, data):
    """Only the prompts whose top prediction is the correct attribute."""
    return subset(data, last_logits(bridge, data.tokens).argmax(-1) == data.answer)


def source_split(bridge, tokens, sources):
    """Each head's final-position output read from the `sources` positions only, through the
    final norm with the final position's scale frozen: [batch, layer, head, d_model]; and each
    head's attention from the final position to those positions: [batch, layer, head]."""
    n_layers = bridge.cfg.n_layers
    group = kv_group(bridge)
    w_o = bridge.W_O.detach()
    store = {}

    def keep(x, hook, key):
        store[key] = x.detach()
        return x

    hooks = [(f"blocks.{layer}.attn.hook_{kind}", functools.partial(keep, key=(kind, layer)))
             for layer in range(n_layers) for kind in ("pattern", "v")]
    hooks.append(("ln_final.hook_scale", functools.partial(keep, key="scale")))
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    mask = torch.zeros(tokens.shape[1])
    mask[sources] = 1.0
    outs, atts = [], []
    for layer in range(n_layers):
        a = store[("pattern", layer)][:, :, -1].float() * mask              # [batch, head, key]
        v = store[("v", layer)].float().repeat_interleave(group, dim=2)     # [batch, key, head, d_head]
        outs.append(torch.einsum("bhk,bkhd,hdm->bhm", a, v, w_o[layer].float()))
        atts.append(a.sum(-1))
    scale = store["scale"][:, -1].float()                                   # [batch, 1]
    out = final_ln_linear(bridge, torch.stack(outs, 1), scale[:, None, None, :])
    return out, torch.stack(atts, 1)


def attribute_direction(bridge, answer, candidates):
    """W_U[answer] - mean W_U[candidates]: [batch, d_model]."""
    w_u = bridge.W_U.detach().float()
    return w_u[:, answer].T - w_u[:, candidates].mean(1)[None]


@claim("subject-heads-dla")
def test_subject_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    bridge = model.bridge
    n_layers, n_heads = model.n_layers, model.n_heads
    data = known_facts(bridge, fact_prompts(model.tokenizer, d["template"]))
    n = len(data.subjects)
    if n < MIN_KNOWN:
        run.measure(n_known=n)
        raise AssertionError(f"the model predicts the correct attribute for only {n} of the facts; the claim "
                             f"needs at least {MIN_KNOWN} (half to choose heads, half to test them)")
    order = list(range(n))
    random.Random(int(d["seed"])).shuffle(order)
    sel, test = sorted(order[: n // 2]), sorted(order[n // 2:])

    out, att = source_split(bridge, data.tokens, [data.subject_pos])
    dla = (out * attribute_direction(bridge, data.answer, data.candidates)[:, None, None]).sum(-1)  # [batch, layer, head]
    k = int(p["k"])
    sel_score = dla[sel].mean(0)
    top = [(int(i) // n_heads, int(i) % n_heads) for i in torch.argsort(sel_score.flatten(), descending=True)[:k]]
    control = random_heads(n_layers, n_heads, k, int(p["control_seed"]), exclude=top)

    # Control: the held-out subjects' answers permuted (no subject keeps its own).
    perm = list(range(len(test)))
    rng = random.Random(int(p["control_seed"]))
    while any(i == j for i, j in enumerate(perm)):
        rng.shuffle(perm)
    wrong = data.answer[test][perm]
    wrong_dla = (out[test] * attribute_direction(bridge, wrong, data.candidates)[:, None, None]).sum(-1)

    def total(values, heads):
        return float(sum(values[:, layer, head].mean() for layer, head in heads))

    run.measure(
        n_known=n, n_test=len(test),
        subject_dla=total(dla[test], top), shuffled_answer_dla=total(wrong_dla, top),
        control_heads_dla=total(dla[test], control),
        subject_attention=total(att[test], top) / k, control_subject_attention=total(att[test], control) / k,
        top_heads_depth=statistics.median(relative_depth(layer, n_layers) for layer, _ in top),
    )
    if run.is_primary:
        run.artifact(scores=dla.mean(0).tolist(), score_name="subject-sourced attribution to the correct attribute (logits)",
                     top_heads=[fmt_head(*h) for h in top], control_heads=[fmt_head(*h) for h in control],
                     subjects=data.subjects)
