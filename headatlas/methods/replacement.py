"""Replacement methods: zero, mean and resample ablation of any set of heads at all or chosen
positions, and the effect of ablating each head alone (vectorised: several heads per forward
pass, checked against a plain loop). Everything acts on hook_z, a head's output before W_O.

Metrics map logits [batch, pos, vocab] to one value per prompt; effects are means over prompts.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import torch

Hook = tuple[str, Callable]
Heads = Sequence[tuple[int, int]]
Metric = Callable[[torch.Tensor], torch.Tensor]   # logits [batch, pos, vocab] -> [batch]


def all_heads(bridge) -> list[tuple[int, int]]:
    return [(layer, head) for layer in range(bridge.cfg.n_layers) for head in range(bridge.cfg.n_heads)]


def cache_z(bridge, tokens: torch.Tensor, fwd_hooks: Sequence[Hook] = ()) -> torch.Tensor:
    """Every head's output before W_O (hook_z) from one forward pass: [layer, batch, pos, head, d_head]."""
    n_layers = bridge.cfg.n_layers
    store: list = [None] * n_layers

    def keep(z, hook):
        store[int(hook.name.split(".")[1])] = z.detach().clone()
        return z

    hooks = list(fwd_hooks) + [(f"blocks.{layer}.attn.hook_z", keep) for layer in range(n_layers)]
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    return torch.stack(store)


def position_mask(positions, batch: int, seq: int) -> torch.Tensor:
    """None -> every position; ints (negative allowed) -> those positions in every prompt;
    a [batch, pos] or [pos] bool tensor -> itself. Returns a [batch, pos] bool mask."""
    if positions is None:
        return torch.ones(batch, seq, dtype=torch.bool)
    if isinstance(positions, torch.Tensor) and positions.dtype == torch.bool:
        return positions.expand(batch, seq).clone() if positions.ndim == 1 else positions.clone()
    mask = torch.zeros(batch, seq, dtype=torch.bool)
    idx = torch.as_tensor(positions, dtype=torch.long).flatten() % seq
    mask[:, idx] = True
    return mask


def _by_layer(heads: Heads) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for layer, head in heads:
        out[int(layer)].append(int(head))
    return out


def z_replacement_hooks(heads: Heads, values: torch.Tensor | None, positions=None) -> list[Hook]:
    """Hooks setting the given heads' hook_z to `values` ([layer, batch or 1, pos, head, d_head];
    None = zeros) at the chosen positions. Values with batch 1 broadcast over the batch."""
    hooks = []
    for layer, hs in _by_layer(heads).items():
        def replace(z, hook, layer=layer, hs=hs):
            b, s = z.shape[:2]
            mask = position_mask(positions, b, s)[..., None, None]          # [b, s, 1, 1]
            new = torch.zeros_like(z[:, :, hs]) if values is None else \
                values[layer][:, :s, hs].to(z.dtype).expand(b, s, len(hs), z.shape[-1])
            z = z.clone()
            z[:, :, hs] = torch.where(mask, new, z[:, :, hs])
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", replace))
    return hooks


def mean_z(bridge, reference_tokens: torch.Tensor, per_position: bool = True) -> torch.Tensor:
    """Mean hook_z over a reference batch: [layer, 1, pos, head, d_head] (per position), or the
    mean over prompts and positions broadcast to every position (per_position=False)."""
    z = cache_z(bridge, reference_tokens)
    m = z.mean(1, keepdim=True)
    if not per_position:
        m = z.mean((1, 2), keepdim=True).expand_as(m).clone()
    return m


def resample_z(bridge, reference_tokens: torch.Tensor, n_prompts: int, seed: int = 0) -> torch.Tensor:
    """Resample-ablation values: for each of n_prompts, the activations of a reference prompt
    drawn at random with replacement (as in causal scrubbing). [layer, n_prompts, pos, head, d_head]"""
    z = cache_z(bridge, reference_tokens)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(z.shape[1], (n_prompts,), generator=gen)
    return z[:, idx]


def ablation_values(bridge, tokens: torch.Tensor, method: str, reference: torch.Tensor | None = None,
                    seed: int = 0) -> torch.Tensor | None:
    """Replacement values for `method` in zero | mean | resample (None for zero)."""
    if method not in ("zero", "mean", "resample"):
        raise ValueError(f"unknown ablation {method!r}; known: zero, mean, resample")
    if method == "zero":
        return None
    if reference is None:
        raise ValueError(f"{method} ablation needs reference tokens")
    if reference.shape[1] < tokens.shape[1]:
        raise ValueError(f"reference prompts ({reference.shape[1]} tokens) are shorter than the "
                         f"ablated prompts ({tokens.shape[1]})")
    if method == "mean":
        return mean_z(bridge, reference)
    return resample_z(bridge, reference, tokens.shape[0], seed)


def run_metric(bridge, tokens: torch.Tensor, metric: Metric, fwd_hooks: Sequence[Hook] = ()) -> torch.Tensor:
    """metric(logits) under the given hooks: [batch]."""
    with torch.inference_mode():
        logits = bridge.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks))
        return metric(logits.float()).detach()


def ablate(bridge, tokens: torch.Tensor, heads: Heads, metric: Metric, method: str = "mean", *,
           reference: torch.Tensor | None = None, positions=None, seed: int = 0) -> torch.Tensor:
    """Metric with all the given heads ablated together: [batch]."""
    values = ablation_values(bridge, tokens, method, reference, seed)
    return run_metric(bridge, tokens, metric, z_replacement_hooks(heads, values, positions))


def chunked_replacement(bridge, tokens: torch.Tensor, metric: Metric, heads: Heads,
                        values: torch.Tensor | None, positions=None, chunk: int = 8) -> torch.Tensor:
    """Mean metric with each head replaced alone, `chunk` heads per forward pass: the batch is
    repeated once per head and copy i has head i replaced. -> [n_heads]"""
    heads = [tuple(map(int, h)) for h in heads]
    b, s = tokens.shape
    mask = position_mask(positions, b, s)
    out = []
    for start in range(0, len(heads), chunk):
        part = heads[start:start + chunk]
        k = len(part)
        by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i, (layer, head) in enumerate(part):
            by_layer[layer].append((i, head))
        hooks = []
        for layer, items in by_layer.items():
            def replace(z, hook, layer=layer, items=items):
                shape = z.shape
                z = z.clone().view(k, b, *shape[1:])
                for i, head in items:
                    new = torch.zeros_like(z[i, :, :, head]) if values is None else \
                        values[layer][:, :s, head].to(z.dtype).expand(b, s, shape[-1])
                    z[i, :, :, head] = torch.where(mask[..., None], new, z[i, :, :, head])
                return z.view(shape)
            hooks.append((f"blocks.{layer}.attn.hook_z", replace))
        with torch.inference_mode():
            logits = bridge.run_with_hooks(tokens.repeat(k, 1), fwd_hooks=hooks).float()
            out += [metric(logits[i * b:(i + 1) * b]).mean() for i in range(k)]
            del logits
    return torch.stack(out)


def head_grid(bridge, heads: Heads, values: torch.Tensor) -> torch.Tensor:
    """Scatter per-head values into a [layer, head] grid, NaN elsewhere."""
    grid = torch.full((bridge.cfg.n_layers, bridge.cfg.n_heads), float("nan"))
    for (layer, head), v in zip(heads, values):
        grid[layer, head] = v
    return grid


def ablation_effects(bridge, tokens: torch.Tensor, metric: Metric, method: str = "mean", *,
                     reference: torch.Tensor | None = None, heads: Heads | None = None, positions=None,
                     chunk: int = 8, seed: int = 0) -> torch.Tensor:
    """Change in the mean metric when each head is ablated alone: [layer, head] (NaN for heads not
    asked for). Vectorised over heads; `ablation_effects_loop` is the plain reference."""
    heads = all_heads(bridge) if heads is None else list(heads)
    values = ablation_values(bridge, tokens, method, reference, seed)
    base = run_metric(bridge, tokens, metric).mean()
    return head_grid(bridge, heads, chunked_replacement(bridge, tokens, metric, heads, values, positions, chunk) - base)


def ablation_effects_loop(bridge, tokens: torch.Tensor, metric: Metric, method: str = "mean", *,
                          reference: torch.Tensor | None = None, heads: Heads | None = None, positions=None,
                          seed: int = 0) -> torch.Tensor:
    """The same as `ablation_effects`, one forward pass per head (the slow, obvious version)."""
    heads = all_heads(bridge) if heads is None else list(heads)
    values = ablation_values(bridge, tokens, method, reference, seed)
    base = run_metric(bridge, tokens, metric).mean()
    effects = [run_metric(bridge, tokens, metric, z_replacement_hooks([h], values, positions)).mean() - base
               for h in heads]
    return head_grid(bridge, heads, torch.stack(effects))
