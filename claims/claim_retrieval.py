"""Retrieval heads (Wu et al. 2024): a few heads copy a needle from the context, and masking
them breaks the copy while masking as many other heads does not."""

import torch
from _attn import forward_reduce, fmt, logits_at, median_depth, memo, random_heads

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import attention, replacement, scoring


def _needle(run):
    d = run.data
    return patterns.needle_prompts(run.model.tokenizer, run.model.bridge.cfg.d_vocab,
                                       n_prompts=int(d["n_prompts"]), haystack_sentences=int(d["haystack_sentences"]),
                                       needle_len=int(d["needle_len"]), template=str(d["template"]),
                                       seed=int(d["seed"]))


def _scores(run, nd):
    """Retrieval score of every head, [layer, head], one forward pass (shared by both claims)."""
    def compute():
        return forward_reduce(run.model.bridge, nd.tokens, {
            "r": lambda p: attention.retrieval_score(p, nd.tokens, nd.needle_start, nd.answer_start, nd.needle_len)})["r"]
    d = {k: v for k, v in run.data.items() if k != "variants"}
    return memo([run.model_name, "retrieval-scores", d], compute)


@claim("retrieval-scoring")
def test_retrieval_heads(run):
    for _ in run.variants():
        nd = _needle(run)
        scores = _scores(run, nd)
        p = run.params
        top = scoring.top_heads(scores, int(p["top_k"]))
        control = random_heads(run.model, int(p["top_k"]), int(p["control_seed"]), exclude=top)
        run.measure(best_score=scores.max(),
                    share_above_half=(scores >= 0.5).float().mean(),
                    top_heads_depth=median_depth(top, run.model.n_layers),
                    control_best_score=max(float(scores[h]) for h in control))
        if run.is_primary:
            run.artifact(scores=scores.tolist(), score_name="retrieval score", top_heads=fmt(top),
                         control_heads=fmt(control))
    run.conclude()


@claim("retrieval-masking")
def test_masking_retrieval_heads_breaks_the_copy(run):
    for _ in run.variants():
        nd = _needle(run)
        scores = _scores(run, nd)
        p = run.params
        k = int(p["k"])
        top = scoring.top_heads(scores, k)
        control = random_heads(run.model, k, int(p["control_seed"]), exclude=top,
                               where=lambda layer, head: float(scores[layer, head]) < float(p["non_retrieval_below"]))
        steps = torch.arange(nd.needle_len)
        queries = nd.answer_start[:, None] + steps[None] - 1          # position predicting needle token j
        targets = nd.tokens.gather(1, queries + 1)

        def copy_accuracy(heads):
            hooks = replacement.z_replacement_hooks(heads, None) if heads else []
            logits = logits_at(run.model.bridge, nd.tokens, queries, hooks)
            return float((logits.argmax(-1) == targets).float().mean())

        base = copy_accuracy([])
        masked, ctrl = copy_accuracy(top), copy_accuracy(control)
        run.measure(baseline_accuracy=base, accuracy_drop=base - masked, control_accuracy_drop=base - ctrl)
        if run.is_primary:
            run.artifact(ablated_heads=fmt(top), control_heads=fmt(control),
                         effects={"labels": ["none", f"top {k} retrieval heads", f"{k} random other heads"],
                                  "values": [base, masked, ctrl], "ylabel": "needle copy accuracy (top-1)"})
    run.conclude()
