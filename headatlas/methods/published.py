"""Compare a model's head scores with published head indices (replication checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from headatlas.methods import scoring


@dataclass
class PublishedCheck:
    measured: dict[str, Any]
    null: torch.Tensor
    artifacts: dict[str, Any] = field(default_factory=dict)


def check_published_heads(bridge, tokens: torch.Tensor, score: str, published: Sequence[str], *,
                          fwd_hooks=()) -> PublishedCheck:
    """Rank and score of each published head against every head of the model.

    weakest_published_score: per-prompt scores of the published head with the lowest mean score
    (for a bootstrap interval); worst_published_rank: the lowest rank among the published heads;
    null: the mean score of every head (the distribution the published heads must stand out of).
    """
    patterns = scoring.attention_patterns(bridge, tokens, fwd_hooks)
    per_prompt = scoring.pattern_score_per_prompt(patterns, scoring.PATTERNS[score](tokens))
    scores = per_prompt.mean(0)
    n_layers, n_heads = scores.shape
    heads = [scoring.parse_head(h) for h in published]
    for layer, head in heads:
        if layer >= n_layers or head >= n_heads:
            raise ValueError(f"published head {layer}.{head} does not exist in a {n_layers}x{n_heads} model")
    ranks = [scoring.head_rank(scores, *h) for h in heads]
    weakest = min(heads, key=lambda h: float(scores[h]))
    return PublishedCheck(
        measured={"worst_published_rank": max(ranks),
                  "weakest_published_score": per_prompt[:, weakest[0], weakest[1]]},
        null=scores.flatten(),
        artifacts={"scores": scores.tolist(), "score_name": f"{score.replace('_', '-')} score",
                   "published_heads": list(published), "published_ranks": ranks,
                   "top_heads": [scoring.fmt_head(*h) for h in scoring.top_heads(scores, 10)]},
    )
