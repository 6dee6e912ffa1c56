"""Shared test helpers: the session's real model and tiny randomly initialised models."""

from __future__ import annotations

import functools

import torch

from headatlas.methods import scoring
from headatlas.models import LoadedModel, _boot, load_model


def smollm2() -> LoadedModel:
    """The embedded default model (memoized by headatlas.models: one load per session)."""
    return load_model("smollm2-135m")


@functools.lru_cache(maxsize=1)
def tiny_gpt2() -> LoadedModel:
    """A randomly initialised GPT-2 with GPT-2 small's head grid (7 of its 12 layers are enough
    for the published indices used here), booted through the same bridge path as real models."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = smollm2().tokenizer
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=7, n_head=12, n_embd=96, n_positions=128, vocab_size=len(tok),
                     attn_implementation="eager")
    bridge = _boot("tiny-gpt2", GPT2LMHeadModel(cfg).eval(), tok)
    return LoadedModel("tiny-gpt2", bridge, tok, None, "random-init-seed-0", 0.0)


def planting_hooks(kind: str, tokens: torch.Tensor, heads: list[tuple[int, int]]):
    """Forward hooks that overwrite the given heads' attention with the ideal `kind` pattern
    (rows without a target attend to position 0), so a detector must find exactly them."""
    ideal = scoring.PATTERNS[kind](tokens).clone()
    empty = ideal.sum(-1) == 0
    ideal[..., 0] += empty.float()
    ideal = ideal / ideal.sum(-1, keepdim=True)
    hooks = []
    for layer, head in heads:
        def plant(pattern, hook, head=head):
            pattern = pattern.clone()
            pattern[:, head] = ideal[: pattern.shape[0]].to(pattern.dtype)
            return pattern
        hooks.append((f"blocks.{layer}.attn.hook_pattern", plant))
    return hooks
