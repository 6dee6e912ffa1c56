"""Seeded datasets that claims and methods run on; every generator is deterministic in its seed.

One home for every prompt generator:
- this module: repeated random-token blocks (previous-token, duplicate-token, induction scores)
- `tokens`: tokenizer helpers the generators share (single-token checks, BOS prefix)
- `probes`: the small fixed probe sets of the method library and `headatlas scan`
- `ioi`: indirect-object-identification prompts with their corrupted counterparts
- `patterns`: prompts for attention-pattern claims (multiple choice, acronyms, needles, text streams)
- `tasks`: prompts for task claims (function-vector tasks, factual recall, movie reviews)
- `syntax`: sentences whose dependency arcs are known by construction (syntactic heads)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts.tokens import bos_prefix


@dataclass(frozen=True)
class RepeatedTokens:
    """A batch of [BOS] + block + block, where block is uniform random tokens.

    With `fresh_second_block` the second block is new random tokens instead of a copy: the same
    positions, none of the repetition. That is the shuffled-prompt control of the scoring claims.
    """

    tokens: torch.Tensor  # [batch, 1 + 2 * block_len], long
    block_len: int
    seed: int
    has_bos: bool

    @property
    def first_block(self) -> slice:
        return slice(1 if self.has_bos else 0, (1 if self.has_bos else 0) + self.block_len)

    @property
    def second_block(self) -> slice:
        start = (1 if self.has_bos else 0) + self.block_len
        return slice(start, start + self.block_len)


def sampleable_token_ids(tokenizer, vocab_size: int) -> torch.Tensor:
    """Token ids a random prompt may use: every id except the tokenizer's special tokens."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    ids = torch.arange(vocab_size)
    if special:
        keep = torch.tensor([i not in special for i in range(vocab_size)])
        ids = ids[keep]
    return ids


def repeated_random_tokens(tokenizer, vocab_size: int, *, n_prompts: int, block_len: int, seed: int,
                           fresh_second_block: bool = False) -> RepeatedTokens:
    """Build the repeated-random-tokens dataset used to score previous/duplicate/induction heads."""
    gen = torch.Generator().manual_seed(seed)
    pool = sampleable_token_ids(tokenizer, vocab_size)
    first = pool[torch.randint(len(pool), (n_prompts, block_len), generator=gen)]
    if fresh_second_block:
        second = pool[torch.randint(len(pool), (n_prompts, block_len), generator=gen)]
    else:
        second = first
    parts = [first, second]
    bos = bos_prefix(tokenizer)
    if bos:
        parts.insert(0, torch.full((n_prompts, 1), bos[0], dtype=torch.long))
    return RepeatedTokens(torch.cat(parts, dim=1).long(), block_len, seed, bool(bos))


def from_spec(model, data: dict) -> RepeatedTokens:
    """Build a claim's dataset from its `data:` mapping in the head entry."""
    kind = data.get("generator")
    if kind != "repeated-random-tokens":
        raise ValueError(f"unknown data generator {kind!r}; known: repeated-random-tokens")
    return repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=int(data["n_prompts"]),
                                  block_len=int(data["block_len"]), seed=int(data["seed"]))
