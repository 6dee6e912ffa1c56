"""Sentiment summarizers (Tigges et al. 2023): heads that write the review's sentiment onto a
summary token, the full stop closing the review, from where later positions read it.

Pairs of reviews differ only in their sentiment words; the metric is "logit(' great') -
logit(' terrible'), signed by the review's sentiment" (its mean is the separation; flipping every
sentiment word negates it).

Selection (other prompts, seed 100): a first-order (attribution-patching) estimate of how much
patching each head's output at the full stop, from the opposite-sentiment review, removes; the
top k are frozen. On each held-out variant (other seeds and templates):
1. Everything the full stop passes on: its residual stream at every layer taken from the
   opposite-sentiment review; the share of the separation this removes is what any set of heads
   writing there can carry at most. The control position is " it", the token right before the
   full stop: it comes after the adjective and the verb, so it can read the whole review just
   as the full stop can, but it is not a summary token.
2. The frozen heads' outputs patched at the full stop only: the share of what the full stop
   passes on that they carry (ratio of means, bootstrapped), against 19 head sets drawn from the
   same layers (19 sets), patched in one batched pass; and, as a control, the same heads patched at " it".
"""

import functools

import torch
from _facts import columns, head_set, last_residual, set_edit_hooks

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods import stats
from headatlas.methods.patching import z_gradients
from headatlas.methods.replacement import cache_z
from headatlas.methods.scoring import attention_patterns, fmt_head, relative_depth
from headatlas.prompts.tasks import sentiment_prompts

MIN_RIGHT = 0.75  # share of held-out reviews the model must already separate the right way


def separation_metric(data):
    """logits at the final position [batch, vocab] -> the mean signed separation (a scalar)."""
    def separation(logits):
        return ((logits[:, data.positive_answer] - logits[:, data.negative_answer]) * data.sign).mean()
    return separation


def summary_attribution(bridge, data):
    """[layer, head] first-order estimate of the drop in separation when the head's output at the
    summary position is replaced by its output on the opposite-sentiment review."""
    n_layers = bridge.cfg.n_layers
    z_flip = cache_z(bridge, data.flipped)[:, :, data.summary_pos]        # [layer, batch, head, d]
    zs, grads, _ = z_gradients(bridge, data.tokens, separation_metric(data))
    p = data.summary_pos
    return -torch.stack([((z_flip[layer] - zs[layer][:, p]) * grads[layer][:, p]).sum((0, 2))
                         for layer in range(n_layers)])


def column_hooks(bridge, data, position):
    """Replace one position's residual stream at every layer by the flipped review's."""
    n_layers = bridge.cfg.n_layers
    resid: dict[int, torch.Tensor] = {}

    def keep(x, hook, layer):
        resid[layer] = x[:, position].detach().clone()
        return x

    with torch.inference_mode():
        bridge.run_with_hooks(data.flipped, return_type=None, fwd_hooks=[
            (f"blocks.{layer}.hook_resid_pre", functools.partial(keep, layer=layer)) for layer in range(n_layers)])

    def patch(x, hook, layer):
        x = x.clone()
        x[:, position] = resid[layer].to(x.dtype)
        return x
    return [(f"blocks.{layer}.hook_resid_pre", functools.partial(patch, layer=layer)) for layer in range(n_layers)]


def per_review(bridge, data, tokens, hooks=()):
    """Signed separation per row: [rows]; rows repeat the reviews when tokens does."""
    lg = columns(bridge, last_residual(bridge, tokens, hooks),
                 torch.tensor([data.positive_answer, data.negative_answer]))
    sign = data.sign.repeat(tokens.shape[0] // data.tokens.shape[0])
    return (lg[:, 0] - lg[:, 1]) * sign


def reviews(tok, d: dict):
    return sentiment_prompts(tok, d["template"], n_pairs=int(d["n_pairs"]), seed=int(d["seed"]))


def require_separation(run):
    """Stop as not applicable unless the model separates MIN_RIGHT of the reviews the right way,
    on the selection set and on every held-out variant; returns the selection reviews."""
    bridge, tok = run.model.bridge, run.model.tokenizer
    sd = run.selection_data
    for name, d in [("selection", sd)] + spec_variants(run.spec.data):
        data = reviews(tok, d)
        n_right = int((per_review(bridge, data, data.tokens) > 0).sum())
        if n_right < MIN_RIGHT * data.tokens.shape[0]:
            run.not_applicable(f"separates {n_right} of {data.tokens.shape[0]} reviews ({name}) the right way; "
                               f"needs at least {MIN_RIGHT:.0%}")
    return reviews(tok, sd)


def select_top(run, est: torch.Tensor):
    """Freeze the k heads with the largest selection estimate ([layer, head]); returns them, the
    layer-matched null sets and both stacked for one batched pass ([1 + n_sets, k, 2])."""
    model, p = run.model, run.params
    order = torch.argsort(est.flatten(), descending=True)[:int(p["k"])]
    top = [(int(i) // model.n_heads, int(i) % model.n_heads) for i in order]
    run.select(top, top_head_selection_estimate=est[top[0]])
    nulls = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                    seed=int(p["null_seed"]), exclude=top)
    return top, nulls, torch.cat([head_set(top), nulls])


def summary_columns(bridge, test):
    """Per review: the separation, what the full stop passes on (separation removed when its
    residual stream at every layer is the opposite review's), the same at the control position
    " it" (after the verb, so it has read the whole review too, but not a summary token), and
    that position; with the measures both summary claims record from them."""
    base = per_review(bridge, test, test.tokens)
    control_pos = test.summary_pos - 1
    column = base - per_review(bridge, test, test.tokens, column_hooks(bridge, test, test.summary_pos))
    control_column = base - per_review(bridge, test, test.tokens, column_hooks(bridge, test, control_pos))
    measures = dict(separation=base, summary_position_share=stats.bootstrap_ratio(column, base),
                    control_position_share=stats.bootstrap_ratio(control_column, base))
    return base, column, control_column, control_pos, measures


def summary_artifact(run, test, est, score_name: str, top, nulls, patterns, bars: list[tuple[str, float]]) -> None:
    """The site's evidence for both summary claims: the selection score map, the chosen and an
    example null set, bars of the separation removed, and the top head's attention on the first
    held-out review."""
    tok, lh = run.model.tokenizer, top[0]
    run.artifact(scores=est.tolist(), score_name=score_name,
                 top_heads=[fmt_head(*h) for h in top],
                 null_example_heads=[fmt_head(*h) for h in nulls[0].tolist()],
                 effects={"labels": [b[0] for b in bars], "values": [b[1] for b in bars],
                          "ylabel": "share of the sentiment separation removed"},
                 attention_example={"tokens": [tok.decode([t]) for t in test.tokens[0].tolist()],
                                    "head": fmt_head(*lh), "pattern": patterns[0, lh[0], lh[1]].tolist()})


@claim("sentiment-summarizer-patching")
def test_sentiment_summarizers(run):
    model = run.model
    bridge, tok = model.bridge, model.tokenizer
    k = int(run.params["k"])
    select = require_separation(run)
    est = summary_attribution(bridge, select)
    top, nulls, sets = select_top(run, est)
    for d in run.variants():
        test = reviews(tok, d)
        n = test.tokens.shape[0]
        base, column, control_column, control_pos, measures = summary_columns(bridge, test)
        z_flip = cache_z(bridge, test.flipped)
        at_stop = {layer: z_flip[layer][:, test.summary_pos] for layer in range(model.n_layers)}
        at_it = {layer: z_flip[layer][:, control_pos] for layer in range(model.n_layers)}
        patched = per_review(bridge, test, test.tokens.repeat(len(sets), 1),
                             set_edit_hooks(sets, n, test.summary_pos, "set", at_stop)).view(len(sets), n)
        removed = base[None] - patched                                       # [set, review]
        removed_at_it = base - per_review(bridge, test, test.tokens,
                                          set_edit_hooks(head_set(top), n, control_pos, "set", at_it))
        patterns = attention_patterns(bridge, test.tokens)                   # [batch, layer, head, q, k]
        rows = patterns[:, :, :, test.summary_pos]                           # [batch, layer, head, key]
        on_words = rows[..., [test.adj_pos, test.verb_pos]].sum(-1)
        idx = ([h[0] for h in top], [h[1] for h in top])
        run.measure(
            **measures,
            heads_removed=stats.bootstrap_ratio(removed[0], base),
            heads_share_of_position=stats.bootstrap_ratio(removed[0], column),
            control_share_of_position=stats.bootstrap_ratio(removed_at_it, column),
            heads_attention_to_sentiment_words=on_words[:, idx[0], idx[1]].mean(1),
            top_heads_depth=float(torch.tensor([relative_depth(la, model.n_layers) for la, _ in top]).median()),
        )
        run.null("matched_sets", removed[1:].mean(1) / column.mean())
        if run.is_primary:
            share = lambda removed_per_review: float(removed_per_review.mean() / base.mean())  # noqa: E731
            summary_artifact(run, test, est, "separation removed by patching the head at the full stop "
                             "(first-order, selection prompts)", top, nulls, patterns,
                             [("full-stop position (all layers)", share(column)),
                              ("' it' position (all layers)", share(control_column)),
                              (f"top {k} heads at the full stop", share(removed[0])),
                              (f"median of {len(nulls)} matched sets", float((removed[1:].mean(1) / base.mean()).median()))])
    run.conclude()
