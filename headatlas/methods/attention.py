"""Attention-pattern scores beyond the detector patterns of `scoring`: retrieval (Wu et al. 2024),
negative attention (Yu et al. 2024), constant/uniform attention over options, subword merging,
rare-token attention, and attention along dependency arcs with its fixed-offset baseline
(Voita et al. 2019, Clark et al. 2019).

Every score is a pure function of one layer's attention [batch, head, query, key] (so a planted
pattern gives a known answer) returning [head]; `layer_scores` runs them for all layers from a
single forward pass, reducing each layer's pattern as soon as it is computed so long contexts
do not keep 30 full pattern tensors alive.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

Hook = tuple[str, Callable]
Reducer = Callable[[torch.Tensor], torch.Tensor]   # [batch, head, q, k] -> [head] (or [head, ...])


def layer_scores(bridge, tokens: torch.Tensor, reducers: Mapping[str, Reducer],
                 fwd_hooks: Sequence[Hook] = ()) -> dict[str, torch.Tensor]:
    """Several pattern scores for every head from one forward pass: {name: [layer, head]}."""
    n_layers = bridge.cfg.n_layers
    store: dict[str, list] = {name: [None] * n_layers for name in reducers}

    def reduce(pattern, hook):
        layer = int(hook.name.split(".")[1])
        p = pattern.detach().float()
        for name, fn in reducers.items():
            store[name][layer] = fn(p)
        return pattern

    hooks = list(fwd_hooks) + [(f"blocks.{layer}.attn.hook_pattern", reduce) for layer in range(n_layers)]
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    return {name: torch.stack(v) for name, v in store.items()}


def row_score(pattern: torch.Tensor, detection: torch.Tensor) -> torch.Tensor:
    """Mean, over query rows that have at least one target key, of the attention on the targets.
    pattern [batch, head, q, k], detection [batch, q, k] (0/1) -> [head]. Unlike
    scoring.pattern_score, rows without targets do not dilute the score."""
    det = detection.to(pattern.dtype)
    rows = det.sum(-1) > 0                                        # [batch, q]
    mass = (pattern * det[:, None]).sum(-1)                       # [batch, head, q]
    n = rows.sum().clamp(min=1)
    return (mass * rows[:, None]).sum((0, 2)) / n


# ----------------------------------------------------------------------------- retrieval


def retrieval_score(pattern: torch.Tensor, tokens: torch.Tensor, needle_start: torch.Tensor,
                    answer_start: torch.Tensor, needle_len: int) -> torch.Tensor:
    """Wu et al. 2024: at decoding step j (query answer_start + j - 1, generating needle token j),
    a hit when the head's top-1 key lies inside the needle and holds the token being generated.
    Score = hits / needle length, averaged over prompts. -> [head]"""
    b, h = pattern.shape[:2]
    steps = torch.arange(needle_len)
    queries = answer_start[:, None] + steps[None] - 1                        # [batch, L]
    targets = tokens.gather(1, answer_start[:, None] + steps[None])          # [batch, L]
    rows = pattern.gather(2, queries[:, None, :, None].expand(b, h, needle_len, pattern.shape[-1]))
    top = rows.argmax(-1)                                                    # [batch, head, L]
    inside = (top >= needle_start[:, None, None]) & (top < needle_start[:, None, None] + needle_len)
    attended = tokens.gather(1, top.reshape(b, -1)).reshape(b, h, needle_len)
    hits = inside & (attended == targets[:, None])
    return hits.float().mean((0, 2))


# ----------------------------------------------------------------------------- negative attention


def negative_attention_score(pattern: torch.Tensor, yes_pos: torch.Tensor, no_pos: torch.Tensor,
                             query_start: torch.Tensor | None = None, eps: float = 1e-9) -> torch.Tensor:
    """Yu et al. 2024: NAS = sum_i (A[i,Yes] + A[i,No]) * log(A[i,No] / A[i,Yes]), summed over the
    query positions i from `query_start` (the first position after the instruction that names the
    options; by default right after the later option) to the end, averaged over prompts.
    Positive: the head attends to "No" more than to "Yes", weighted by how much it attends to
    either. Starting after the instruction matters: the token right after "No" would otherwise
    hand every previous-token head a large score. -> [head]"""
    b, h, q, _ = pattern.shape
    idx = torch.arange(b)
    a_yes = pattern[idx, :, :, yes_pos]          # advanced indexing: [batch, head, q]
    a_no = pattern[idx, :, :, no_pos]
    if query_start is None:
        query_start = torch.maximum(yes_pos, no_pos) + 1
    query_mask = torch.arange(q)[None] >= torch.as_tensor(query_start).reshape(-1, 1)   # [batch, q]
    terms = (a_yes + a_no) * torch.log((a_no + eps) / (a_yes + eps))
    return (terms * query_mask[:, None].to(terms.dtype)).sum(-1).mean(0)


# ----------------------------------------------------------------------------- constant / uniform


def option_attention(pattern: torch.Tensor, option_positions: torch.Tensor, query: int = -1,
                     eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """Lieberum et al.'s constant heads spread attention evenly over the options of a
    multiple-choice prompt whatever the answer. Returns (normalized entropy of the attention
    restricted to the option positions and renormalized: 1 = uniform, 0 = one option; and the
    total attention mass on the options, which says whether the entropy means anything), each
    [head], averaged over prompts, read at the `query` position."""
    b, h, q, _ = pattern.shape
    row = pattern[:, :, query]                                               # [batch, head, k]
    a = row.gather(2, option_positions[:, None].expand(b, h, option_positions.shape[1]))
    mass = a.sum(-1)
    p = a / (mass[..., None] + eps)
    ent = -(p * (p + eps).log()).sum(-1) / torch.log(torch.tensor(float(option_positions.shape[1])))
    return ent.mean(0), mass.mean(0)


# ----------------------------------------------------------------------------- subwords, rare tokens


def same_word_pattern(word_ids: torch.Tensor) -> torch.Tensor:
    """[batch, pos] word index (-1 = not a word) -> [batch, q, k]: 1 where key is an earlier
    sub-token of the query's own word."""
    s = word_ids.shape[1]
    same = (word_ids[:, :, None] == word_ids[:, None, :]) & (word_ids[:, :, None] >= 0)
    return (same & torch.ones(s, s, dtype=torch.bool).tril(-1)).float()


def subword_merge_score(pattern: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
    """Attention from a word's later sub-tokens to its earlier sub-tokens, averaged over the
    sub-tokens that have an earlier piece: heads that assemble split words score near 1."""
    return row_score(pattern, same_word_pattern(word_ids))


def rarest_token_pattern(tokens: torch.Tensor, rarity: torch.Tensor | None = None,
                         exclude: torch.Tensor | None = None) -> torch.Tensor:
    """[batch, q, k]: 1 on the rarest earlier token(s) (ties all marked), the query itself and
    `exclude` positions ([batch, pos] bool, e.g. BOS) left out. `rarity` maps token id -> higher
    is rarer; by default the token id, a proxy for BPE vocabularies whose later merges are rarer."""
    r = (tokens.float() if rarity is None else rarity.float()[tokens]).clone()
    if exclude is not None:
        r[exclude] = float("-inf")
    s = tokens.shape[1]
    earlier = torch.ones(s, s, dtype=torch.bool).tril(-1)                       # key < query
    cand = torch.where(earlier[None], r[:, None, :], torch.tensor(float("-inf")))  # [batch, q, k]
    best = cand.max(-1, keepdim=True).values
    return ((cand == best) & torch.isfinite(best)).float()


def rare_token_score(pattern: torch.Tensor, tokens: torch.Tensor, rarity: torch.Tensor | None = None,
                     exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Attention on the rarest earlier token of the context (Voita et al.'s rare-word heads),
    averaged over query positions. -> [head]"""
    return row_score(pattern, rarest_token_pattern(tokens, rarity, exclude))


def bos_mask(tokens: torch.Tensor, tokenizer) -> torch.Tensor:
    """[batch, pos] True at special tokens (BOS and the like): attention sinks, not content."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return torch.isin(tokens, torch.tensor(sorted(special), dtype=tokens.dtype)) if special else torch.zeros_like(tokens, dtype=torch.bool)


# ----------------------------------------------------------------------------- dependency arcs


def arc_attention(pattern: torch.Tensor, arcs: torch.Tensor, first_key: int = 0) -> torch.Tensor:
    """Where each head looks from the query word of each dependency arc: pattern [batch, head, q,
    k], arcs [n, 3] (row, query position, gold position) -> [n, head, 2] holding the key the head
    attends to most (keys before `first_key`, e.g. a BOS attention sink, left out) and the
    attention it puts on the gold position. A head "gets the arc right" when the first equals
    the gold position (Clark et al.'s most-attended-to word)."""
    rows = pattern[arcs[:, 0], :, arcs[:, 1]]                               # [n, head, k]
    top = rows[..., first_key:].argmax(-1) + first_key
    gold = rows.gather(2, arcs[:, 2][:, None, None].expand(-1, rows.shape[1], 1))[..., 0]
    return torch.stack([top.to(rows.dtype), gold], -1)


def offset_hits(arcs: torch.Tensor, offset: int) -> torch.Tensor:
    """The fixed-offset baseline: [n] 1 where always attending `offset` tokens back from the query
    lands on the gold position of the arc, else 0."""
    return ((arcs[:, 1] - arcs[:, 2]) == offset).float()


def best_offset(arcs: torch.Tensor, max_offset: int) -> tuple[int, float]:
    """The offset in 1..max_offset whose baseline gets the most arcs right, and its accuracy."""
    acc = torch.stack([offset_hits(arcs, k).mean() for k in range(1, max_offset + 1)])
    k = int(acc.argmax())
    return k + 1, float(acc[k])
