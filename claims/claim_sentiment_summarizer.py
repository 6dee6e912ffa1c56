"""Sentiment summarizers (Tigges et al. 2023): heads that write the review's sentiment onto a
summary token, the full stop closing the review, from where later positions read it.

Per data variant (ToyMovieReview-style template), with pairs of reviews that differ only in
their sentiment words and the metric "logit(' great') - logit(' terrible'), signed by the
review's sentiment" (its mean is the separation; flipping every sentiment word negates it):
1. Everything the summary position passes on: the full stop's residual stream at every layer
   taken from the opposite-sentiment review. The share of the separation this removes is what
   any set of heads writing there can carry at most. The same for the comma after the
   adjective, a punctuation mark that is not where this model summarizes (the control).
2. Candidate heads: a first-order (attribution-patching) estimate, on selection prompts, of how
   much patching each head's output at the full stop alone removes; the top k are the summarizers.
3. On held-out prompts: patch the k heads' outputs at the full stop only, and k random heads'
   as the control; record how much of the separation each removes and where the k heads attend.
"""

import functools

import torch

from headatlas.claims import claim
from headatlas.methods.ablation import final_residual
from headatlas.methods.patching import z_gradients
from headatlas.methods.replacement import cache_z, z_replacement_hooks
from headatlas.methods.scoring import attention_patterns, fmt_head, random_heads
from headatlas.prompts.tasks import sentiment_prompts


def _separation(bridge, data, hooks=()):
    x = final_residual(bridge, data.tokens, hooks)[:, -1:]
    with torch.inference_mode():
        logits = bridge.unembed(x)[:, 0].float()
    return float(((logits[:, data.positive_answer] - logits[:, data.negative_answer]) * data.sign).mean())


def summary_attribution(bridge, data):
    """[layer, head] first-order estimate of the drop in separation when the head's output at the
    summary position is replaced by its output on the opposite-sentiment review."""
    n_layers = bridge.cfg.n_layers
    z_flip = cache_z(bridge, data.flipped)[:, :, data.summary_pos]        # [layer, batch, head, d]

    def separation(logits):
        return ((logits[:, data.positive_answer] - logits[:, data.negative_answer]) * data.sign).mean()

    zs, grads, _ = z_gradients(bridge, data.tokens, separation)
    p = data.summary_pos
    return -torch.stack([((z_flip[layer] - zs[layer][:, p]) * grads[layer][:, p]).sum((0, 2))
                         for layer in range(n_layers)])


def _column_hooks(bridge, data, position):
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


@claim("sentiment-summarizer-patching")
def test_sentiment_summarizers(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    bridge, tok = model.bridge, model.tokenizer
    n_layers, n_heads = model.n_layers, model.n_heads
    select = sentiment_prompts(tok, d["template"], n_pairs=int(d["n_pairs"]), seed=int(d["seed"]))
    test = sentiment_prompts(tok, d["template"], n_pairs=int(d["n_pairs"]), seed=int(d["seed"]) + 1)

    est = summary_attribution(bridge, select)
    k = int(p["k"])
    order = torch.argsort(est.flatten(), descending=True)
    top = [(int(i) // n_heads, int(i) % n_heads) for i in order[:k]]
    control = random_heads(n_layers, n_heads, k, int(p["control_seed"]), exclude=top)

    rows: dict[int, torch.Tensor] = {}

    def keep_row(pattern, hook, layer):
        rows[layer] = pattern[:, :, test.summary_pos].detach().clone()      # [batch, head, key]
        return pattern

    base = _separation(bridge, test, [(f"blocks.{layer}.attn.hook_pattern", functools.partial(keep_row, layer=layer))
                                      for layer in range(n_layers)])
    column = 1 - _separation(bridge, test, _column_hooks(bridge, test, test.summary_pos)) / base
    comma = 1 - _separation(bridge, test, _column_hooks(bridge, test, test.comma_pos)) / base
    z_flip = cache_z(bridge, test.flipped)

    def removed(heads):
        hooks = z_replacement_hooks(heads, z_flip, positions=[test.summary_pos])
        return 1 - _separation(bridge, test, hooks) / base

    heads_removed, control_removed = removed(top), removed(control)
    summary_rows = torch.stack([rows[layer] for layer in range(n_layers)], 1)   # [batch, layer, head, key]
    on_words = summary_rows[..., [test.adj_pos, test.verb_pos]].sum(-1).mean(0)
    run.measure(
        separation=base, summary_position_share=column, comma_position_share=comma,
        heads_removed=heads_removed, control_removed=control_removed,
        heads_share_of_position=heads_removed / column if column > 0 else float("nan"),
        control_share_of_position=control_removed / column if column > 0 else float("nan"),
        heads_attention_to_sentiment_words=float(sum(on_words[h] for h in top) / k),
        control_attention_to_sentiment_words=float(sum(on_words[h] for h in control) / k),
    )
    if run.is_primary:
        words = [tok.decode([t]) for t in test.tokens[0].tolist()]
        lh = top[0]
        patterns = attention_patterns(bridge, test.tokens[:1])
        run.artifact(scores=est.tolist(), score_name="separation removed by patching the head at the full stop (first-order)",
                     top_heads=[fmt_head(*h) for h in top], control_heads=[fmt_head(*h) for h in control],
                     effects={"labels": ["full-stop position (all layers)", f"top {k} heads", f"random {k} heads"],
                              "values": [column, heads_removed, control_removed],
                              "ylabel": "share of the sentiment separation removed"},
                     attention_example={"tokens": words, "head": fmt_head(*lh),
                                        "pattern": patterns[0, lh[0], lh[1]].tolist()})
