"""Shared body of the three attention-pattern scoring claims (previous, duplicate, induction):
select the top heads on the selection prompts, then judge those frozen heads on held-out
prompts against the same score over every head of the model."""

from __future__ import annotations

import statistics

from headatlas import prompts
from headatlas.claims import ClaimRun
from headatlas.methods import scoring


def head_scores_per_prompt(model, data_spec: dict, kind: str):
    """(data, per-prompt scores [batch, layer, head]) of one score on one data spec."""
    data = prompts.from_spec(model, data_spec)
    patterns = scoring.attention_patterns(model.bridge, data.tokens)
    return data, scoring.pattern_score_per_prompt(patterns, scoring.PATTERNS[kind](data.tokens))


def measure_scoring_claim(run: ClaimRun, kind: str, control: str | None) -> None:
    """Select on run.selection_data, measure every held-out variant, conclude.

    control: None, or "fresh-second-block": the frozen top head scored on the same positional
    stripe in prompts whose second block is fresh random tokens (no repetition, no effect)."""
    model = run.model
    _, sel = head_scores_per_prompt(model, run.selection_data, kind)
    sel_scores = sel.mean(0)
    top = scoring.top_heads(sel_scores, int(run.params["top_k"]))
    run.select(top, top_head_selection_score=sel_scores[top[0]])
    depth = statistics.median(scoring.relative_depth(layer, model.n_layers) for layer, _ in top)
    best = top[0]
    for _ in run.variants():
        data, per_prompt = head_scores_per_prompt(model, run.data, kind)
        scores = per_prompt.mean(0)
        # The frozen best head, per held-out prompt (bootstrapped); the null is the same score of
        # every head of the model on the same prompts.
        run.measure(top_head_score=per_prompt[:, best[0], best[1]], top_heads_depth=depth,
                    top_head_rank=scoring.head_rank(scores, *best))
        run.null("all_heads", scores.flatten())
        if run.is_primary:  # the heatmap shows the primary held-out variant
            run.artifact(scores=scores.tolist(), score_name=f"{kind.replace('_', '-')} score",
                         top_heads=[scoring.fmt_head(*h) for h in top])
        if control == "fresh-second-block":
            fresh = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab,
                                                   n_prompts=data.tokens.shape[0], block_len=data.block_len,
                                                   seed=data.seed, fresh_second_block=True)
            offset = data.block_len - (1 if kind == "induction" else 0)
            stripe = scoring.offset_stripe(fresh.tokens, offset, start=data.second_block.start)
            ctrl = scoring.pattern_score(scoring.attention_patterns(model.bridge, fresh.tokens), stripe)
            run.measure(control_top_head_score=ctrl[best])
        elif control is not None:
            raise ValueError(f"unknown control {control!r}")
    run.conclude()
