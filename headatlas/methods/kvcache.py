"""Per-head key-value cache compression written as an attention mask.

A head whose cache is compressed (StreamingLLM's window, RazorAttention's non-retrieval heads)
keeps only the first `sink` keys and the `window` most recent ones; a head that keeps its full
cache sees the whole context. On a whole sequence run at once, that is the same as letting the
compressed head take its softmax over those keys only: its attention pattern is zeroed outside
them and renormalised. Nothing is cached or evicted for real, so the result is what a model with
that cache would compute, at the cost of a full forward pass.

Many compression configurations can share one batched pass: `keep` says, per batch row, which
heads keep their full cache (rows of one configuration repeated over the prompts, as in
ablation.mean_ablation_set_hooks), so a null over many random head sets costs one pass.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

Hook = tuple[str, Callable]
Head = tuple[int, int]


def sink_window(n: int, sink: int, window: int) -> torch.Tensor:
    """[q, k] bool: the keys a compressed head may read at each query of an n-token sequence:
    the first `sink` positions and the `window` most recent ones (the query itself included),
    never a later key."""
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None]
    return ((k < sink) | (k > q - window)) & (k <= q)


def keep_table(head_sets: Sequence[Iterable[Head]], n_layers: int, n_heads: int) -> torch.Tensor:
    """[n_sets, layer, head] bool: True for the heads of each set (the heads that keep their full
    cache in that configuration). An empty set compresses every head."""
    out = torch.zeros(len(head_sets), n_layers, n_heads, dtype=torch.bool)
    for s, heads in enumerate(head_sets):
        for layer, head in heads:
            out[s, int(layer), int(head)] = True
    return out


def compress_hooks(keep: torch.Tensor, sink: int, window: int, n_prompts: int = 1) -> list[Hook]:
    """Hooks restricting every head NOT kept to sink + window (its pattern zeroed elsewhere and
    renormalised: a softmax over those keys only). Kept heads see the full context.

    keep: [n_configs, layer, head] bool (see keep_table). The batch must repeat its `n_prompts`
    prompts once per configuration, configuration-major: rows c*n_prompts ... (c+1)*n_prompts-1
    run configuration c. With one configuration every row runs it."""
    n_configs, n_layers, _ = keep.shape
    rows = keep.repeat_interleave(n_prompts, dim=0)                       # [rows, layer, head]
    hooks = []
    for layer in range(n_layers):
        full = rows[:, layer]                                             # [rows, head]
        if bool(full.all()):
            continue                                                      # nothing compressed here

        def restrict(pattern, hook, full=full):
            n = pattern.shape[-1]
            local = sink_window(n, sink, window).to(pattern.device)
            if full.shape[0] not in (1, pattern.shape[0]):
                raise ValueError(f"the batch has {pattern.shape[0]} rows; the compression "
                                 f"configurations expect {full.shape[0]}")
            allowed = local[None, None] | full.to(pattern.device)[:, :, None, None]
            p = pattern * allowed.to(pattern.dtype)
            return p / p.sum(-1, keepdim=True).clamp(min=1e-12)

        hooks.append((f"blocks.{layer}.attn.hook_pattern", restrict))
    return hooks
