"""Shared body of the three attention-pattern scoring claims (previous, duplicate, induction)."""

from __future__ import annotations

import statistics


from headatlas import prompts
from headatlas.claims import ClaimRun
from headatlas.methods import scoring


def measure_scoring_claim(run: ClaimRun, kind: str, control: str) -> None:
    """Run a scoring claim over every data variant, then apply its checks."""
    for _ in run.variants():
        _measure_variant(run, kind, control)
    run.conclude()


def _measure_variant(run: ClaimRun, kind: str, control: str) -> None:
    """Score every head for `kind`, record best score, top heads' depth and the control value.

    control: "random-heads" (best score among randomly drawn heads) or "fresh-second-block"
    (the top heads scored on the same positional stripe in prompts with no repetition).
    """
    model = run.model
    data = prompts.from_spec(model, run.data)
    patterns = scoring.attention_patterns(model.bridge, data.tokens)
    scores = scoring.pattern_score(patterns, scoring.PATTERNS[kind](data.tokens))
    k = int(run.params["top_k"])
    top = scoring.top_heads(scores, k)
    depth = statistics.median(scoring.relative_depth(layer, model.n_layers) for layer, _ in top)
    run.measure(best_score=scores.max(), top_heads_depth=depth)
    if run.is_primary:  # the heatmap shows the primary variant
        run.artifact(scores=scores.tolist(), score_name=f"{kind.replace('_', '-')} score",
                     top_heads=[scoring.fmt_head(*h) for h in top])

    if control == "random-heads":
        # Random heads among the rest: the threshold must separate the top heads from them.
        heads = scoring.random_heads(model.n_layers, model.n_heads, k, int(run.params["control_seed"]), exclude=top)
        run.measure(control_best_score=max(float(scores[h]) for h in heads))
        if run.is_primary:
            run.artifact(control_heads=[scoring.fmt_head(*h) for h in heads])
    elif control == "fresh-second-block":
        fresh = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab,
                                               n_prompts=data.tokens.shape[0], block_len=data.block_len,
                                               seed=data.seed, fresh_second_block=True)
        offset = data.block_len - (1 if kind == "induction" else 0)
        stripe = scoring.offset_stripe(fresh.tokens, offset, start=data.second_block.start)
        ctrl = scoring.pattern_score(scoring.attention_patterns(model.bridge, fresh.tokens), stripe)
        run.measure(control_best_score=max(float(ctrl[h]) for h in top))
        # The same stripe on the repeated prompts, for comparison on the site.
        real = scoring.pattern_score(patterns, scoring.offset_stripe(data.tokens, offset,
                                                                      start=data.second_block.start))
        run.measure(stripe_score_repeated=max(float(real[h]) for h in top))
    else:
        raise ValueError(f"unknown control {control!r}")
