"""Summary readers (Tigges et al. 2023): later heads that take the review's sentiment from the
summary token, the full stop closing the review, rather than from the sentiment words, and
carry it to the answer.

Same reviews and metric as the sentiment-summarizer claim: pairs differ only in their sentiment
words; the metric is logit(' great') - logit(' terrible'), signed by the review's sentiment.

A head "reads" the full stop through the value vector it takes from there. The edit that
isolates this is a value swap: the head keeps its attention pattern and everything else of the
pass, but the value it reads at the full stop is the one it would read on the opposite-sentiment
review (`headatlas.methods.patching.value_swap_hooks`).

Selection (other reviews, seed 100): a first-order estimate of each head's value-swap effect;
the top k are frozen. On each held-out variant (other seeds and templates):
1. Everything the full stop passes on, as in the summarizer claim (its residual stream at every
   layer from the opposite review), with the token " it" before it as the control position.
2. The frozen heads' value swap at the full stop, as a share of what the full stop passes on
   (ratio of means, bootstrapped), against head sets drawn from the same layers, all swapped in
   one batched pass; and, as a control, the same heads' value swap at " it".
"""

import torch
from _facts import head_set
from claim_sentiment_summarizer import (per_review, require_separation, reviews, select_top, separation_metric,
                                        summary_artifact, summary_columns)

from headatlas.claims import claim
from headatlas.methods import stats
from headatlas.methods.patching import value_at, value_swap_estimate, value_swap_hooks
from headatlas.methods.scoring import attention_patterns, relative_depth


def swapped(bridge, data, sets: torch.Tensor, key_pos: int) -> torch.Tensor:
    """Signed separation per review with each set's heads reading the opposite review's value at
    key_pos: [set, review]."""
    n = data.tokens.shape[0]
    v_flip, _ = value_at(bridge, data.flipped, key_pos)
    hooks = value_swap_hooks(bridge, sets, n, key_pos, v_flip)
    return per_review(bridge, data, data.tokens.repeat(len(sets), 1), hooks).view(len(sets), n)


@claim("summary-reader-value-swap")
def test_summary_readers(run):
    model = run.model
    bridge, tok = model.bridge, model.tokenizer
    k = int(run.params["k"])
    select = require_separation(run)
    est = value_swap_estimate(bridge, select.tokens, select.flipped, select.summary_pos, separation_metric(select))
    top, nulls, sets = select_top(run, est)
    idx = ([h[0] for h in top], [h[1] for h in top])
    for d in run.variants():
        test = reviews(tok, d)
        stop = test.summary_pos
        base, column, control_column, control_pos, measures = summary_columns(bridge, test)
        removed = base[None] - swapped(bridge, test, sets, stop)             # [set, review]
        removed_at_it = base - swapped(bridge, test, head_set(top), control_pos)[0]
        patterns = attention_patterns(bridge, test.tokens)                   # [batch, layer, head, q, k]
        final = patterns[:, :, :, -1][:, idx[0], idx[1]]                     # [batch, k heads, key]
        run.measure(
            **measures,
            readers_removed=stats.bootstrap_ratio(removed[0], base),
            readers_share_of_position=stats.bootstrap_ratio(removed[0], column),
            control_share_of_position=stats.bootstrap_ratio(removed_at_it, column),
            readers_attention_to_summary=final[..., stop].mean(1),
            readers_attention_to_sentiment_words=final[..., [test.adj_pos, test.verb_pos]].sum(-1).mean(1),
            top_heads_depth=float(torch.tensor([relative_depth(la, model.n_layers) for la, _ in top]).median()),
        )
        run.null("matched_sets", removed[1:].mean(1) / column.mean())
        if run.is_primary:
            share = lambda removed_per_review: float(removed_per_review.mean() / base.mean())  # noqa: E731
            summary_artifact(run, test, est, "separation removed by swapping the value the head reads at the "
                             "full stop (first-order, selection reviews)", top, nulls, patterns,
                             [("full-stop position (all layers)", share(column)),
                              ("' it' position (all layers)", share(control_column)),
                              (f"top {k} heads reading the full stop", share(removed[0])),
                              ("the same heads reading ' it'", share(removed_at_it)),
                              (f"median of {len(nulls)} matched sets", float((removed[1:].mean(1) / base.mean()).median()))])
    run.conclude()
