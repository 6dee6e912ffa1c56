"""Attention-pattern scores: previous-token, duplicate-token and induction.

Definitions follow TransformerLens's head detector ("mul" measure): a 0/1 lower-triangular
detection pattern D per prompt, and score = sum(A * D) / sum(A) for a head's attention A,
averaged over prompts. Unlike that detector, patterns are built from a plain table of named
functions (no `eval`), whole batches are scored from one forward pass, and every argument is
honoured.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

Hook = tuple[str, Callable]


def previous_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """[batch, pos] -> [batch, pos, pos]: 1 where the key is the query's previous position."""
    b, s = tokens.shape
    d = torch.zeros(s, s)
    d[1:, :-1] = torch.eye(s - 1)
    return d.expand(b, s, s).clone()


def duplicate_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """1 where an earlier key holds the same token as the query (the query itself excluded)."""
    s = tokens.shape[1]
    same = (tokens[:, :, None] == tokens[:, None, :]).float()
    return torch.tril(same * (1 - torch.eye(s)))


def induction_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """1 on the key right after an earlier copy of the query's token (duplicate shifted by one)."""
    dup = duplicate_token_pattern(tokens)
    out = torch.zeros_like(dup)
    out[:, :, 1:] = dup[:, :, :-1]
    return torch.tril(out)


def offset_stripe(tokens: torch.Tensor, offset: int, start: int) -> torch.Tensor:
    """1 where key = query - offset for queries at positions >= start: a fixed positional stripe,
    used as a control that a content-matching head must fail."""
    b, s = tokens.shape
    d = torch.zeros(s, s)
    for q in range(max(start, offset), s):
        d[q, q - offset] = 1.0
    return d.expand(b, s, s).clone()


PATTERNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "previous_token": previous_token_pattern,
    "duplicate_token": duplicate_token_pattern,
    "induction": induction_pattern,
}


class _PatternsDone(Exception):
    """Raised from the last pattern hook to end a forward pass early."""


def attention_patterns(bridge, tokens: torch.Tensor, fwd_hooks: Sequence[Hook] = ()) -> torch.Tensor:
    """All heads' attention in one forward pass: [batch, layer, head, query, key]."""
    n_layers = bridge.cfg.n_layers
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]
    store: dict[str, torch.Tensor] = {}

    def keep(pattern, hook):
        store[hook.name] = pattern.detach()
        if len(store) == n_layers:
            # Nothing after the last attention pattern is needed; skipping the unembedding
            # matters for large vocabularies (Gemma's 262k tokens).
            raise _PatternsDone
        return pattern

    # Hooks that edit patterns run first, so what is kept is what the model used.
    hooks = list(fwd_hooks) + [(n, keep) for n in names]
    with torch.inference_mode():
        try:
            bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
        except _PatternsDone:
            pass
    return torch.stack([store[f"blocks.{layer}.attn.hook_pattern"] for layer in range(bridge.cfg.n_layers)], dim=1)


def pattern_score_per_prompt(patterns: torch.Tensor, detection: torch.Tensor) -> torch.Tensor:
    """[batch, layer, head, q, k] x [batch, q, k] -> [batch, layer, head]: sum(A * D) / sum(A)
    per prompt (what a bootstrap over prompts resamples)."""
    det = detection.to(patterns.dtype)[:, None, None]
    return (patterns * det).sum((-1, -2)) / patterns.sum((-1, -2))


def pattern_score(patterns: torch.Tensor, detection: torch.Tensor) -> torch.Tensor:
    """[batch, layer, head, q, k] x [batch, q, k] -> [layer, head]: mean over prompts of
    sum(A * D) / sum(A)."""
    return pattern_score_per_prompt(patterns, detection).mean(0)


def head_scores(bridge, tokens: torch.Tensor, kinds: Iterable[str] = tuple(PATTERNS),
                fwd_hooks: Sequence[Hook] = ()) -> dict[str, torch.Tensor]:
    """Several named scores for every head from a single forward pass."""
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; known: {sorted(PATTERNS)}")
    patterns = attention_patterns(bridge, tokens, fwd_hooks)
    return {k: pattern_score(patterns, PATTERNS[k](tokens)) for k in kinds}


def top_heads(scores: torch.Tensor, k: int) -> list[tuple[int, int]]:
    """The k highest-scoring (layer, head) pairs, best first."""
    n_heads = scores.shape[1]
    idx = torch.argsort(scores.flatten(), descending=True)[:k]
    return [(int(i) // n_heads, int(i) % n_heads) for i in idx]


def random_heads(n_layers: int, n_heads: int, k: int, seed: int, exclude: Iterable[tuple[int, int]] = (),
                 where: Callable[[int, int], bool] | None = None) -> list[tuple[int, int]]:
    """k heads drawn at random (torch generator seeded with `seed`) from the heads not in
    `exclude` that satisfy `where`, taken in (layer, head) order: the random-heads negative
    control the claims share, so the same seed draws the same heads in every claim."""
    skip = {tuple(h) for h in exclude}
    pool = [(layer, head) for layer in range(n_layers) for head in range(n_heads)
            if (layer, head) not in skip and (where is None or where(layer, head))]
    gen = torch.Generator().manual_seed(seed)
    return [pool[i] for i in torch.randperm(len(pool), generator=gen)[:k].tolist()]


def head_rank(scores: torch.Tensor, layer: int, head: int) -> int:
    """1-based rank of one head among all heads (1 = highest score)."""
    return int((scores > scores[layer, head]).sum()) + 1


def relative_depth(layer: int, n_layers: int) -> float:
    """Layer as a fraction of depth: 0 for the first layer, 1 for the last."""
    return layer / max(n_layers - 1, 1)


def parse_head(name: str) -> tuple[int, int]:
    layer, head = name.split(".")
    return int(layer), int(head)


def fmt_head(layer: int, head: int) -> str:
    return f"{layer}.{head}"
