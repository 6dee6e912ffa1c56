"""Successor heads (Gould et al. 2023): a head whose OV circuit maps an ordinal token to the next
one ("Monday" -> "Tuesday", "3" -> "4"). Read from the weights, no prompts needed."""

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


def _hits(bridge, resid: torch.Tensor, ids: torch.Tensor, shift: int, w) -> tuple[torch.Tensor, int]:
    """Per head, how many tokens i of the set have token i+shift ranked first by the OV circuit
    among the set's tokens: ([layer, head], number of pairs)."""
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
            logits = torch.einsum("hnd,hdm,mk->hnk", v, w["W_O"][layer], w_u)
            out.append((logits.argmax(-1)[:, ok] == (src + shift)[ok]).float().sum(-1))
    return torch.stack(out), int(ok.sum())


@claim("successor-ov-score")
def test_successor_heads(run):
    model = run.model
    sets = probes.ordinal_sets(model.tokenizer)
    w = weights.head_weights(model.bridge)
    for _ in run.variants():
        succ, pred, n_pairs, chance = 0, 0, 0, 0.0
        per_set = {}
        for s in sets:
            ids = torch.tensor(s.token_ids)
            resid = _effective_embedding(model.bridge, model.tokenizer, s.token_ids, str(run.data["context"]))
            h, n = _hits(model.bridge, resid, ids, 1, w)
            hp, _ = _hits(model.bridge, resid, ids, -1, w)
            succ, pred, n_pairs = succ + h, pred + hp, n_pairs + n
            chance += n / len(ids)
            per_set[s.name] = h / n
        scores, predecessor = succ / n_pairs, pred / n_pairs
        best = scoring.top_heads(scores, 1)[0]
        run.measure(best_score=scores[best], control_best_predecessor_score=predecessor.max(),
                    chance=chance / n_pairs, n_pairs=n_pairs,
                    best_head_predecessor_score=predecessor[best])
        if run.is_primary:
            run.artifact(scores=scores.tolist(), score_name="succession score (share of ordinal pairs ranked top-1)",
                         top_heads=fmt(scoring.top_heads(scores, 5)),
                         per_set_best_head={k: round(float(v[best]), 3) for k, v in per_set.items()},
                         ordinal_sets={s.name: s.words for s in sets})
    run.conclude()
