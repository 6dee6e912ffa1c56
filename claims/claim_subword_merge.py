"""Subword-merge heads: from a word's later pieces they attend to its earlier pieces, and not
to the previous token when that token belongs to another word. Heads are chosen on selection
text and judged, frozen, on held-out text against every head of the model."""

import torch
from _attn import fmt, forward_reduce, median_depth

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import attention, scoring, stats


def _words(run, d):
    return patterns.word_text(run.model.tokenizer, kind=str(d["kind"]), n_prompts=int(d["n_prompts"]),
                              n_words=int(d["n_words"]), seed=int(d["seed"]))


def merge_sums(pattern: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
    """Per prompt and head, [batch, head, 4]: (attention from later pieces of a word to its earlier
    pieces, summed over those queries; number of those queries; attention to the previous token
    at word-initial tokens whose previous token ends another word, summed; number of those)."""
    s = word_ids.shape[1]
    same = attention.same_word_pattern(word_ids)                              # [batch, q, k]
    rows = same.sum(-1) > 0                                                   # [batch, q]
    merge = ((pattern * same[:, None]).sum(-1) * rows[:, None]).sum(-1)       # [batch, head]
    crossing = torch.zeros_like(word_ids, dtype=torch.bool)
    crossing[:, 2:] = (word_ids[:, 2:] != word_ids[:, 1:-1]) & (word_ids[:, 1:-1] >= 0)
    idx = torch.arange(1, s)
    prev = torch.zeros(pattern.shape[0], pattern.shape[1], s)
    prev[:, :, 1:] = pattern[:, :, idx, idx - 1]
    across = (prev * crossing[:, None]).sum(-1)                               # [batch, head]
    b, h = merge.shape
    return torch.stack([merge, rows.sum(-1)[:, None].expand(b, h).float(), across,
                        crossing.sum(-1)[:, None].expand(b, h).float()], -1)


def _scores(run, d):
    """(words, merge [batch, layer, head], across [batch, layer, head] as sums, counts [batch, 2])."""
    w = _words(run, d)
    out = forward_reduce(run.model.bridge, w.tokens, {"s": lambda p: merge_sums(p, w.word_ids)})["s"]
    out = out.permute(1, 0, 2, 3)                                             # [batch, layer, head, 4]
    return w, out


def _means(sums):
    """Per-head means over prompts: merge score, previous-token score across words."""
    tot = sums.sum(0)
    return tot[..., 0] / tot[..., 1].clamp(min=1), tot[..., 2] / tot[..., 3].clamp(min=1)


def _selectivity(rows: torch.Tensor) -> torch.Tensor:
    """Merge score minus previous-token-across-words score of per-prompt sums [batch, 4]."""
    return rows[:, 0].sum() / rows[:, 1].sum().clamp(min=1) - rows[:, 2].sum() / rows[:, 3].sum().clamp(min=1)


@claim("subword-merge-scoring")
def test_subword_merge_heads(run):
    model = run.model
    k = int(run.params["top_k"])
    _, sel = _scores(run, run.selection_data)
    merge, across = _means(sel)
    top = scoring.top_heads(merge - across, k)
    best = top[0]
    run.select(top, selection_selectivity=(merge - across)[best])
    depth = median_depth(top, model.n_layers)
    for d in run.variants():
        w, sums = _scores(run, d)
        merge, across = _means(sums)
        selectivity = merge - across
        b = sums[:, best[0], best[1]]                                             # [batch, 4]
        # Ratios of sums over prompts, bootstrapped by resampling prompts.
        run.measure(merge_score=stats.bootstrap_ratio(b[:, 0], b[:, 1]),
                    control_previous_across_words=stats.bootstrap_ratio(b[:, 2], b[:, 3]),
                    selectivity=stats.bootstrap(b, _selectivity), selectivity_rank=scoring.head_rank(selectivity, *best),
                    top_heads_depth=depth, n_later_pieces=int(b[:, 1].sum()), n_word_starts=int(b[:, 3].sum()))
        run.null("all_heads", selectivity.flatten())
        if run.is_primary:
            run.artifact(scores=selectivity.tolist(),
                         score_name="attention to earlier pieces of the same word minus attention to the previous token across a word boundary",
                         top_heads=fmt(top), merge_scores=merge.tolist(), across_scores=across.tolist())
            n = min(w.tokens.shape[1], 32)
            layer, head = best
            pat = forward_reduce(model.bridge, w.tokens[:1, :n], {"p": lambda p: p[0]})["p"][layer, head]
            run.artifact(attention_example={"tokens": [model.tokenizer.decode([t]) for t in w.tokens[0, :n].tolist()],
                                            "pattern": [[round(float(x), 3) for x in row] for row in pat],
                                            "head": scoring.fmt_head(layer, head)})
    run.conclude()
