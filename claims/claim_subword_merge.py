"""Subword-merge heads: from a word's later pieces they attend to its earlier pieces, and not
to the previous token when that token belongs to another word."""

import torch
from _attn import fmt, forward_reduce, median_depth

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import attention, scoring


@claim("subword-merge-scoring")
def test_subword_merge_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, d = run.model, run.data
    w = patterns.word_text(model.tokenizer, kind=str(d["kind"]), n_prompts=int(d["n_prompts"]),
                               n_words=int(d["n_words"]), seed=int(d["seed"]))
    wid = w.word_ids
    s = wid.shape[1]
    # Word-initial tokens whose previous token is the end of another word (BOS excluded): there
    # a head that merely looks one token back still attends to the previous token.
    crossing = torch.zeros_like(wid, dtype=torch.bool)
    crossing[:, 2:] = (wid[:, 2:] != wid[:, 1:-1]) & (wid[:, 1:-1] >= 0)
    idx = torch.arange(1, s)

    def scores(pattern):                                   # -> [2, head]
        merge = attention.subword_merge_score(pattern, wid)
        prev = torch.zeros(pattern.shape[0], pattern.shape[1], s)
        prev[:, :, 1:] = pattern[:, :, idx, idx - 1]
        across = (prev * crossing[:, None]).sum((0, 2)) / crossing.sum().clamp(min=1)
        return torch.stack([merge, across])

    out = forward_reduce(model.bridge, w.tokens, {"s": scores})["s"]    # [layer, 2, head]
    merge, across = out[:, 0], out[:, 1]
    selectivity = merge - across
    k = int(run.params["top_k"])
    top = scoring.top_heads(selectivity, k)
    best = top[0]
    n_pieces = int(attention.same_word_pattern(wid).sum(-1).gt(0).sum())
    run.measure(merge_score=merge[best], control_previous_across_words=across[best],
                top_heads_depth=median_depth(top, model.n_layers), n_later_pieces=n_pieces,
                n_word_starts=int(crossing.sum()))
    if run.is_primary:
        run.artifact(scores=selectivity.tolist(),
                     score_name="attention to earlier pieces of the same word minus attention to the previous token across a word boundary",
                     top_heads=fmt(top), merge_scores=merge.tolist(), across_scores=across.tolist())
        n = min(s, 32)
        layer, head = best
        pat = forward_reduce(model.bridge, w.tokens[:1, :n], {"p": lambda p: p[0]})["p"][layer, head]
        run.artifact(attention_example={"tokens": [model.tokenizer.decode([t]) for t in w.tokens[0, :n].tolist()],
                                        "pattern": [[round(float(x), 3) for x in row] for row in pat],
                                        "head": scoring.fmt_head(layer, head)})
