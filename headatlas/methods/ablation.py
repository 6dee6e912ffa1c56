"""Replacement methods: mean ablation of chosen heads, attention knock-out (a head kept from
reading some positions), and the per-token loss they change."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import torch

Hook = tuple[str, Callable]


def head_output_means(bridge, reference_tokens: torch.Tensor, layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """Per-position mean of every head's output (hook_z) over a reference batch: {layer: [pos, head, d_head]}."""
    store: dict[int, torch.Tensor] = {}

    def keep(z, hook):
        store[int(hook.name.split(".")[1])] = z.detach().mean(0)
        return z

    hooks = [(f"blocks.{layer}.attn.hook_z", keep) for layer in sorted(set(layers))]
    with torch.inference_mode():
        bridge.run_with_hooks(reference_tokens, fwd_hooks=hooks, return_type=None)
    return store


def mean_ablation_hooks(heads: Sequence[tuple[int, int]], means: dict[int, torch.Tensor]) -> list[Hook]:
    """Hooks replacing the given heads' outputs by their reference means (all positions)."""
    by_layer: dict[int, list[int]] = defaultdict(list)
    for layer, head in heads:
        by_layer[layer].append(head)
    hooks = []
    for layer, hs in by_layer.items():
        mean = means[layer]

        def replace(z, hook, hs=hs, mean=mean):
            z = z.clone()
            z[:, :, hs] = mean[None, : z.shape[1], hs].to(z.dtype)
            return z

        hooks.append((f"blocks.{layer}.attn.hook_z", replace))
    return hooks


def _heads_by_layer(head_sets: torch.Tensor) -> dict[int, list[tuple[int, int]]]:
    """{layer: [(set index, head), ...]} for head sets [n_sets, k, 2]: what a per-set hook on
    that layer must edit."""
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s in range(head_sets.shape[0]):
        for layer, head in head_sets[s].tolist():
            out[layer].append((s, head))
    return out


def mean_ablation_set_hooks(head_sets: torch.Tensor, means: dict[int, torch.Tensor], n_prompts: int) -> list[Hook]:
    """Hooks for a batch that repeats `n_prompts` prompts once per head set ([n_sets, k, 2]):
    rows s*n_prompts ... (s+1)*n_prompts-1 have head set s mean-ablated. Many ablations, one
    forward pass: how a null over matched head sets stays cheap."""
    n_sets = head_sets.shape[0]
    hooks = []
    for layer, pairs in _heads_by_layer(head_sets).items():
        mask = torch.zeros(n_sets, means[layer].shape[1], dtype=torch.bool)
        for s, head in pairs:
            mask[s, head] = True
        row_mask = mask.repeat_interleave(n_prompts, dim=0)           # [rows, head]
        mean = means[layer]

        def replace(z, hook, row_mask=row_mask, mean=mean):
            m = row_mask[:, None, :, None].to(z.device)
            return torch.where(m, mean[None, : z.shape[1]].to(z.dtype), z)

        hooks.append((f"blocks.{layer}.attn.hook_z", replace))
    return hooks


def attention_knockout_set_hooks(head_sets: torch.Tensor, n_prompts: int, query: int,
                                 keys: tuple[int, int]) -> list[Hook]:
    """Hooks for a batch that repeats `n_prompts` prompts once per head set ([n_sets, k, 2]): in
    set s's rows, its heads' attention from position `query` to the positions [keys[0], keys[1])
    is set to zero and the rest of that row renormalised, so the head reads everything else as
    before but not those positions (the "blocked attention" of Merullo et al.). Nothing else
    changes; rows of other sets are untouched."""
    n_sets = head_sets.shape[0]
    start, end = keys
    if not 0 <= start < end:
        raise ValueError(f"knock-out keys must be a non-empty [start, end) range, not {keys}")
    hooks = []
    for layer, pairs in _heads_by_layer(head_sets).items():
        def block(pattern, hook, pairs=pairs):
            mask = torch.zeros(n_sets, pattern.shape[1], dtype=torch.bool)
            for s, head in pairs:
                mask[s, head] = True
            m = mask.repeat_interleave(n_prompts, dim=0).to(pattern.device)     # [rows, head]
            row = pattern[:, :, query]                                          # [rows, head, key]
            kept = row.clone()
            kept[..., start:end] = 0
            kept = kept / kept.sum(-1, keepdim=True).clamp_min(torch.finfo(kept.dtype).tiny)
            pattern = pattern.clone()
            pattern[:, :, query] = torch.where(m[..., None], kept, row)
            return pattern

        hooks.append((f"blocks.{layer}.attn.hook_pattern", block))
    return hooks


class _ResidualDone(Exception):
    """Raised from the unembedding's input hook to end a forward pass early."""


def final_residual(bridge, tokens: torch.Tensor, fwd_hooks: Sequence[Hook] = ()) -> torch.Tensor:
    """The normalized residual stream entering the unembedding, [batch, pos, d_model]."""
    store: dict[str, torch.Tensor] = {}

    def keep(x, hook):
        store["x"] = x.detach()
        raise _ResidualDone

    with torch.inference_mode():
        try:
            bridge.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + [("unembed.hook_in", keep)], return_type=None)
        except _ResidualDone:
            pass
    return store["x"]


def token_losses(bridge, tokens: torch.Tensor, fwd_hooks: Sequence[Hook] = (),
                 positions: slice | None = None) -> torch.Tensor:
    """Next-token cross-entropy, [batch, n] for predicting positions `positions` (default all:
    position i predicts token i+1).

    Logits are computed only where needed and one prompt at a time: a full [batch, pos, vocab]
    tensor is gigabytes for Gemma's 262k-token vocabulary.
    """
    x = final_residual(bridge, tokens, fwd_hooks)[:, :-1]
    targets = tokens[:, 1:]
    if positions is not None:
        x, targets = x[:, positions], targets[:, positions]
    out = []
    with torch.inference_mode():
        for i in range(x.shape[0]):
            logp = bridge.unembed(x[i: i + 1]).float().log_softmax(-1)
            out.append(-logp.gather(-1, targets[i: i + 1, :, None])[..., 0])
    return torch.cat(out)
