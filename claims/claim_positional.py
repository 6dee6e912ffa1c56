"""Positional heads (Voita et al. 2019): a head whose strongest attention lands on one relative
offset whatever the tokens are. Previous-token heads (offset 1) have their own entry, so the
claim is about the best positional head at another offset."""

import torch
from _attn import fmt, forward_reduce, random_heads

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import scoring


def _offsets(pattern: torch.Tensor, q_from: int) -> torch.Tensor:
    """Offset (query - key) of each query's strongest key, the first token excluded (it is the
    attention sink, not a position): [batch, head, q] -> [head, batch * n_queries]."""
    top = pattern[:, :, q_from:, 1:].argmax(-1) + 1
    off = torch.arange(q_from, pattern.shape[2])[None, None] - top
    return off.permute(1, 0, 2).reshape(pattern.shape[1], -1)


def _all_offsets(bridge, tokens, q_from):
    return forward_reduce(bridge, tokens, {"o": lambda p: _offsets(p, q_from)})["o"]   # [layer, head, n]


def _tokens(run, kind, seed, n_tokens):
    model, n = run.model, int(run.data["n_prompts"])
    if kind == "text":
        return patterns.sentence_text(model.tokenizer, corpus="filler", n_prompts=n, n_tokens=n_tokens, seed=seed)
    return patterns.random_token_text(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=n, n_tokens=n_tokens,
                                          seed=seed, repeat=kind == "repeated")


@claim("positional-offset")
def test_positional_heads(run):
    p, model = run.params, run.model
    q_from = int(p["query_from"])
    # Choose the head on a reference set of random tokens (not any variant's data).
    ref = _all_offsets(model.bridge, _tokens(run, "random", int(p["reference_seed"]), int(run.data["n_tokens"])), q_from)
    mode = ref.mode(-1).values                                           # [layer, head]
    ref_score = (ref == mode[..., None]).float().mean(-1)
    candidates = torch.where(mode != 1, ref_score, torch.zeros_like(ref_score))
    layer, head = scoring.top_heads(candidates, 1)[0]
    offset = int(mode[layer, head])
    control = random_heads(model, int(p["control_k"]), int(p["control_seed"]), exclude=[(layer, head)])
    for _ in run.variants():
        d = run.data
        offs = _all_offsets(model.bridge, _tokens(run, str(d["kind"]), int(d["seed"]), int(d["n_tokens"])), q_from)
        own_mode = offs.mode(-1).values
        score = (offs == own_mode[..., None]).float().mean(-1)          # each head at its own modal offset
        at_ref = float((offs[layer, head] == offset).float().mean())
        run.measure(positional_score=at_ref, offset=offset,
                    control_best_score=max(float(score[h]) for h in control),
                    n_positional_heads=int((score >= float(p["positional_min"])).sum()),
                    n_positional_heads_not_previous=int(((score >= float(p["positional_min"])) & (own_mode != 1)).sum()))
        if run.is_primary:
            run.artifact(scores=score.tolist(), score_name="share of queries whose strongest key is at the head's usual offset",
                         top_heads=fmt(scoring.top_heads(score, 10)), chosen_head=scoring.fmt_head(layer, head),
                         chosen_offset=offset, modal_offsets=own_mode.tolist(), control_heads=fmt(control))
    run.conclude()
