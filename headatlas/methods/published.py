"""Compare a model's head scores with published head indices (replication checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from headatlas.methods import scoring


@dataclass
class PublishedCheck:
    measured: dict[str, float]
    artifacts: dict[str, Any] = field(default_factory=dict)


def check_published_heads(bridge, tokens: torch.Tensor, score: str, published: Sequence[str], *,
                          control_seed: int, fwd_hooks=()) -> PublishedCheck:
    """Rank and score of each published head, and the same for as many random other heads.

    worst_published_rank / weakest_published_score describe the published heads;
    control_worst_rank / control_weakest_score describe the random draw (the negative control).
    """
    scores = scoring.head_scores(bridge, tokens, [score], fwd_hooks=fwd_hooks)[score]
    n_layers, n_heads = scores.shape
    heads = [scoring.parse_head(h) for h in published]
    for layer, head in heads:
        if layer >= n_layers or head >= n_heads:
            raise ValueError(f"published head {layer}.{head} does not exist in a {n_layers}x{n_heads} model")
    others = [i for i in range(n_layers * n_heads) if (i // n_heads, i % n_heads) not in heads]
    gen = torch.Generator().manual_seed(control_seed)
    drawn = [others[i] for i in torch.randperm(len(others), generator=gen)[: len(heads)].tolist()]
    control = [(i // n_heads, i % n_heads) for i in drawn]
    ranks = [scoring.head_rank(scores, *h) for h in heads]
    c_ranks = [scoring.head_rank(scores, *h) for h in control]
    return PublishedCheck(
        measured={
            "worst_published_rank": max(ranks),
            "weakest_published_score": min(float(scores[h]) for h in heads),
            "control_worst_rank": max(c_ranks),
            "control_weakest_score": min(float(scores[h]) for h in control),
        },
        artifacts={"scores": scores.tolist(), "score_name": f"{score.replace('_', '-')} score",
                   "published_heads": list(published), "published_ranks": ranks,
                   "control_heads": [scoring.fmt_head(*h) for h in control],
                   "top_heads": [scoring.fmt_head(*h) for h in scoring.top_heads(scores, 10)]},
    )
