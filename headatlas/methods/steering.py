"""Modification: add or subtract a direction in one head's output and measure an output metric.

Directions live in the head's hook_z space (d_head), i.e. before W_O: adding alpha * d to a
head's z adds alpha * d @ W_O[head] to the residual stream through that head alone. The usual
direction is a contrast mean: mean z over prompts with a property minus mean z over prompts
without it (as in steering-vector and "truthfulness head" work such as Li et al.'s ITI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from headatlas.methods.replacement import Hook, Metric, cache_z, position_mask, run_metric
from headatlas.methods.stats import matched_head_sets


def contrast_direction(bridge, positive: torch.Tensor, negative: torch.Tensor, layer: int, head: int,
                       position=-1) -> torch.Tensor:
    """Mean hook_z of the head over `positive` prompts minus over `negative` prompts, read at
    `position` (an int; None = mean over all positions). -> [d_head]"""
    def mean_at(tokens):
        z = cache_z(bridge, tokens)[layer][:, :, head]                  # [batch, pos, d_head]
        return z.mean((0, 1)) if position is None else z[:, position].mean(0)
    return mean_at(positive) - mean_at(negative)


def steering_hooks(layer: int, head: int, direction: torch.Tensor, alpha: float = 1.0,
                   positions=None) -> list[Hook]:
    """Add alpha * direction to the head's z at the chosen positions (negative alpha subtracts)."""
    def add(z, hook):
        b, s = z.shape[:2]
        mask = position_mask(positions, b, s)[..., None].to(z.dtype)   # [b, s, 1]
        z = z.clone()
        z[:, :, head] = z[:, :, head] + alpha * mask * direction.to(z.dtype)
        return z
    return [(f"blocks.{layer}.attn.hook_z", add)]


def direction_ablation_hooks(layer: int, head: int, direction: torch.Tensor, positions=None) -> list[Hook]:
    """Project the direction out of the head's z (directional ablation)."""
    unit = direction / direction.norm().clamp(min=1e-12)

    def remove(z, hook):
        b, s = z.shape[:2]
        mask = position_mask(positions, b, s)[..., None].to(z.dtype)
        z = z.clone()
        coef = (z[:, :, head] * unit).sum(-1, keepdim=True)
        z[:, :, head] = z[:, :, head] - mask * coef * unit
        return z
    return [(f"blocks.{layer}.attn.hook_z", remove)]


@dataclass
class SteeringResult:
    alphas: torch.Tensor     # [n]
    metric: torch.Tensor     # [n] mean metric at each alpha
    baseline: float          # metric without steering

    @property
    def change(self) -> torch.Tensor:
        return self.metric - self.baseline


def steering_effect(bridge, tokens: torch.Tensor, layer: int, head: int, direction: torch.Tensor,
                    metric: Metric, alphas: Sequence[float] = (-1.0, 0.0, 1.0), positions=None) -> SteeringResult:
    """Mean metric when alpha * direction is added to the head's output, for each alpha."""
    base = float(run_metric(bridge, tokens, metric).mean())
    vals = [run_metric(bridge, tokens, metric, steering_hooks(layer, head, direction, a, positions)).mean()
            for a in alphas]
    return SteeringResult(torch.tensor(list(alphas), dtype=torch.float), torch.stack(vals), base)


# ----------------------------------------------------------------------------- mass-mean directions, batched


def mass_mean_directions(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Li et al.'s mass-mean shift per head: from features [..., n, d_head] and binary labels
    [n], the unit direction of mean(label 1) - mean(label 0) and the standard deviation of the
    features projected on it (over all n rows). -> (unit [..., d_head], sigma [...])."""
    labels = torch.as_tensor(labels).bool()
    if labels.all() or not labels.any():
        raise ValueError("a mass-mean direction needs rows of both labels")
    x = features.float()
    diff = x[..., labels, :].mean(-2) - x[..., ~labels, :].mean(-2)
    unit = diff / diff.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    sigma = (x * unit[..., None, :]).sum(-1).std(-1)
    return unit, sigma


def stratified_mass_mean_directions(features: torch.Tensor, labels: torch.Tensor, strata: torch.Tensor,
                                    min_each: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The mass-mean direction taken within each stratum and then averaged, so that it does not
    point at whatever the strata differ by when the label leans with them (a language, an answer
    letter). Strata with fewer than min_each rows of either label are left out. features [..., n,
    d_head], labels [n] (binary), strata [n] (ints) -> (unit [..., d_head], sigma [...]: the
    standard deviation of all rows along it)."""
    labels = torch.as_tensor(labels).bool()
    strata = torch.as_tensor(strata)
    x = features.float()
    diffs = []
    for value in torch.unique(strata).tolist():
        pos, neg = labels & (strata == value), ~labels & (strata == value)
        if int(pos.sum()) >= min_each and int(neg.sum()) >= min_each:
            diffs.append(x[..., pos, :].mean(-2) - x[..., neg, :].mean(-2))
    if not diffs:
        raise ValueError(f"no stratum has {min_each} rows of each label")
    diff = torch.stack(diffs).mean(0)
    unit = diff / diff.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return unit, (x * unit[..., None, :]).sum(-1).std(-1)


def head_set_addition_hooks(head_sets: torch.Tensor, vectors: torch.Tensor, n_prompts: int,
                            start: int, row_sign: torch.Tensor | None = None) -> list[Hook]:
    """Hooks for a batch that repeats n_prompts prompts once per head set: in rows
    s*n_prompts ... (s+1)*n_prompts-1, vectors[s, j] ([n_sets, k, d_head]) is added to the
    hook_z of head head_sets[s, j] ([n_sets, k, 2] of (layer, head)) at every position from
    `start` on (ITI's shift, applied from the end of a statement to the token its judgement is
    read at). row_sign [n_prompts] (+1 / -1) flips the shift per prompt, the same in every set."""
    n_sets = head_sets.shape[0]
    by_layer: dict[int, list[tuple[int, int, int]]] = {}
    for s in range(n_sets):
        for j, (layer, head) in enumerate(head_sets[s].tolist()):
            by_layer.setdefault(layer, []).append((s, j, head))
    hooks = []
    for layer, items in by_layer.items():
        def add(z, hook, items=items):
            shift = torch.zeros(n_sets, z.shape[2], z.shape[3], dtype=z.dtype, device=z.device)
            for s, j, head in items:
                shift[s, head] += vectors[s, j].to(z.dtype)
            shift = shift.repeat_interleave(n_prompts, 0)                   # [rows, head, d_head]
            if row_sign is not None:
                shift = shift * row_sign.to(shift).repeat(n_sets)[:, None, None]
            z = z.clone()
            z[:, start:] = z[:, start:] + shift[:, None]
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", add))
    return hooks


def matched_shift_sets(heads: Sequence[tuple[int, int]], unit: torch.Tensor, sigma: torch.Tensor, alpha: float,
                       n_layers: int, n_heads: int, n_sets: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The chosen heads as set 0 and n_sets layer-matched random sets after it ([1 + n_sets, k, 2]),
    with the vector each head is shifted by: alpha of its own standard deviations along its own
    unit direction (unit [layer, head, d_head], sigma [layer, head]) -> [1 + n_sets, k, d_head].
    For head_set_addition_hooks: every set is pushed the same way, each along its own direction."""
    others = matched_head_sets(heads, n_layers, n_heads, n_sets=n_sets, seed=seed, exclude=heads)
    sets = torch.cat([torch.tensor([[list(h) for h in heads]]), others])
    return sets, alpha * sigma[sets[..., 0], sets[..., 1], None] * unit[sets[..., 0], sets[..., 1]]
