"""Successor heads (Gould et al. 2023): a head whose OV circuit maps an ordinal token to the next
one ("Monday" -> "Tuesday", "3" -> "4"). Read from the weights, no prompts needed.

Succession score of a head on a set of ordinal sequences: the share of the sequences' tokens
(each but the last) whose successor the head's OV circuit ranks first among the members of
their own sequence. The head is chosen on some sequences (the selection set: numbers, number
words, letters) and judged, frozen, on others (ordinals, days, months), so the score it is
judged by is not the one it was picked for.
"""

import torch
from _attn import fmt

from headatlas.claims import claim
from headatlas.methods import scoring, weights
from headatlas.prompts import probes
from headatlas.prompts.tokens import bos_prefix, encode


def _effective_embedding(bridge, tokenizer, ids: list[int], context: str) -> torch.Tensor:
    """Residual stream after block 0 at a token seen after a short context: [n, d_model].
    "alone": the token is the whole context; "bos": after the BOS token; any other string: after
    that text (e.g. "The"). Gould et al. read OV circuits from the token after the first MLP."""
    if context == "alone":
        prefix: list[int] = []
    elif context == "bos":
        prefix = bos_prefix(tokenizer)
    else:
        prefix = bos_prefix(tokenizer) + encode(tokenizer, context)
    tokens = torch.tensor([prefix + [i] for i in ids])
    with torch.inference_mode():
        out = bridge(tokens, stop_at_layer=1, prepend_bos=False)
    return out[:, -1].detach().clone()


def _hits(bridge, resid: torch.Tensor, ids: torch.Tensor, shift: int, w) -> torch.Tensor:
    """Per head and per token i of the set that has a token i+shift: whether the OV circuit
    ranks token i+shift first among the set's tokens: [layer, head, n_pairs] (0/1). The output
    goes through the post-attention norm's gain where the model has one and the final norm's
    effective gain (weights.final_gain: 1 + w for Gemma)."""
    w_u = bridge.W_U.detach()[:, ids] * weights.final_gain(bridge)[:, None]
    if weights.is_layernorm(bridge):
        w_u = w_u - w_u.mean(0, keepdim=True)
    n = len(ids)
    src = torch.arange(n)
    ok = (src + shift >= 0) & (src + shift < n)
    out = []
    with torch.inference_mode():
        for layer in range(bridge.cfg.n_layers):
            x = bridge.blocks[layer].ln1(resid)
            v = torch.einsum("nm,hmd->hnd", x, w["W_V"][layer]) + w["b_V"][layer][:, None]
            logits = torch.einsum("hnd,hdm,mk->hnk", v, w["W_O"][layer] * weights.post_attn_gain(bridge, layer), w_u)
            out.append((logits.argmax(-1)[:, ok] == (src + shift)[ok]).float())
    return torch.stack(out)


def _sets(tokenizer, names):
    sets = probes.ordinal_sets(tokenizer)
    unknown = set(names) - set(probes.ORDINAL_SEQUENCES)
    if unknown:
        raise ValueError(f"unknown ordinal sequences {sorted(unknown)}; known: {sorted(probes.ORDINAL_SEQUENCES)}")
    return [s for s in sets if s.name in names]


def succession(model, data: dict, w) -> dict:
    """Per-pair hits of every head for the successor and the predecessor on the data's
    sequences, read in the data's context: succ/pred [layer, head, n_pairs], chance [n_pairs]."""
    succ, pred, chance, per_set = [], [], [], {}
    for s in _sets(model.tokenizer, list(data["sequences"])):
        ids = torch.tensor(s.token_ids)
        resid = _effective_embedding(model.bridge, model.tokenizer, s.token_ids, str(data["context"]))
        h = _hits(model.bridge, resid, ids, 1, w)
        succ.append(h)
        pred.append(_hits(model.bridge, resid, ids, -1, w))
        chance += [1 / len(ids)] * h.shape[-1]
        per_set[s.name] = h.mean(-1)
    if not succ:
        raise ValueError(f"none of the sequences {data['sequences']} has a run of single tokens")
    return {"succ": torch.cat(succ, -1), "pred": torch.cat(pred, -1), "chance": torch.tensor(chance),
            "per_set": per_set}


@claim("successor-ov-score")
def test_successor_heads(run):
    model = run.model
    w = weights.head_weights(model.bridge)
    sel = succession(model, run.selection_data, w)
    sel_scores = sel["succ"].mean(-1)
    best = scoring.top_heads(sel_scores, 1)[0]
    run.select([best], top_head_selection_score=sel_scores[best], selection_pairs=sel["succ"].shape[-1])
    for data in run.variants():
        held = succession(model, data, w)
        scores = held["succ"].mean(-1)                                     # [layer, head]
        # The frozen head, per held-out pair (bootstrapped); the null is the same score of every
        # head of the model on the same held-out pairs; the control is the same head asked for the
        # predecessor instead.
        run.measure(best_score=held["succ"][best], best_head_predecessor_score=held["pred"][best],
                    chance=held["chance"].mean(), n_pairs=held["succ"].shape[-1],
                    best_head_rank=scoring.head_rank(scores, *best),
                    best_head_depth=scoring.relative_depth(best[0], model.n_layers))
        run.null("all_heads", scores.flatten())
        if run.is_primary:
            run.artifact(scores=scores.tolist(),
                         score_name="succession score on held-out sequences (share of ordinal pairs ranked top-1)",
                         top_heads=fmt(scoring.top_heads(scores, 5)), selected_head=fmt([best]),
                         selection_top_heads=fmt(scoring.top_heads(sel_scores, 5)),
                         per_set_selected_head={k: round(float(v[best]), 3) for k, v in
                                                {**sel["per_set"], **held["per_set"]}.items()})
    run.conclude()
