"""Positional heads (Voita et al. 2019): a head whose attention goes to one relative offset
whatever the tokens are. Previous-token heads (offset 1) have their own entry, and offset 0 (the
query's own token) is not a relative position in Voita et al.'s sense, so the claim is about the
head that puts the most attention MASS on one offset of 2 or more tokens back."""

import torch
from _attn import fmt, forward_reduce

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import scoring


def _offsets(pattern: torch.Tensor, q_from: int) -> torch.Tensor:
    """Offset (query - key) of each query's strongest key, the first token excluded (it is the
    attention sink, not a position): [batch, head, q] -> [head, batch * n_queries]."""
    top = pattern[:, :, q_from:, 1:].argmax(-1) + 1
    off = torch.arange(q_from, pattern.shape[2])[None, None] - top
    return off.permute(1, 0, 2).reshape(pattern.shape[1], -1)


def offset_mass(pattern: torch.Tensor, q_from: int, max_offset: int) -> torch.Tensor:
    """Attention mass each query puts on the key `d` tokens back, averaged over the queries from
    q_from on, for d = 0 .. max_offset: [batch, head, q, k] -> [batch, head, max_offset + 1]."""
    q = torch.arange(q_from, pattern.shape[2])
    return torch.stack([pattern[:, :, q, q - d].mean(-1) for d in range(max_offset + 1)], -1)


def _reduce(bridge, tokens, q_from, max_offset):
    """Per layer: offset mass [layer, batch, head, D] and argmax offsets [layer, head, n]."""
    out = forward_reduce(bridge, tokens, {"m": lambda p: offset_mass(p, q_from, max_offset),
                                          "o": lambda p: _offsets(p, q_from)})
    return out["m"], out["o"]


def _tokens(run, kind, seed, n_tokens):
    model, n = run.model, int(run.data["n_prompts"])
    if kind == "text":
        return patterns.sentence_text(model.tokenizer, corpus="filler", n_prompts=n, n_tokens=n_tokens, seed=seed)
    return patterns.random_token_text(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=n, n_tokens=n_tokens,
                                      seed=seed, repeat=kind == "repeated")


@claim("positional-offset")
def test_positional_heads(run):
    p, model = run.params, run.model
    q_from, max_off, min_off = int(p["query_from"]), int(p["max_offset"]), int(p["min_offset"])
    sel = run.selection_data
    mass, _ = _reduce(model.bridge, _tokens(run, str(sel["kind"]), int(sel["seed"]), int(sel["n_tokens"])),
                      q_from, max_off)
    cand = mass.mean(1)[..., min_off:]                                   # [layer, head, offsets >= min_off]
    best_off = cand.argmax(-1)
    layer, head = scoring.top_heads(cand.max(-1).values, 1)[0]
    offset = int(best_off[layer, head]) + min_off
    run.select([(layer, head)], offset=offset, selection_mass=cand[layer, head].max())
    for d in run.variants():
        mass, offs = _reduce(model.bridge, _tokens(run, str(d["kind"]), int(d["seed"]), int(d["n_tokens"])),
                             q_from, max_off)
        m = mass.mean(1)                                                 # [layer, head, D]
        # The null: every head of the model at its own best offset (>= min_off) on the same data,
        # which favours the null (each head gets its best offset, the chosen head a frozen one).
        best_any = m[..., min_off:].max(-1).values
        run.measure(offset_mass=mass[layer, :, head, offset], offset=offset,
                    argmax_share=(offs[layer, head] == offset).float().mean(),
                    head_rank=scoring.head_rank(best_any, layer, head))
        run.null("all_heads", best_any.flatten())
        if run.is_primary:
            run.artifact(scores=best_any.tolist(),
                         score_name=f"attention mass on the head's best offset of {min_off} to {max_off} tokens back",
                         top_heads=fmt(scoring.top_heads(best_any, 10)), chosen_head=scoring.fmt_head(layer, head),
                         chosen_offset=offset, best_offsets=(m[..., min_off:].argmax(-1) + min_off).tolist())
    run.conclude()
