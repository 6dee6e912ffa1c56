"""OV-circuit scores read from weights alone: successor heads (Gould et al. 2023), copy
suppression (McDougall et al. 2023) and its opposite, copying.

All use `weights.ov_circuit`: a token's effective embedding (by default the residual after
block 0 for the token alone; see `weights.effective_embedding`), the head's own input norm,
W_V W_O, the final norm's gain, W_U. No forward pass over prompts is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from headatlas.prompts import sampleable_token_ids
from headatlas.methods.weights import ov_circuit


@dataclass
class SuccessorScores:
    scores: torch.Tensor               # [layer, head] share of pairs ranked top-1
    per_set: dict[str, torch.Tensor]   # set name -> [layer, head]
    n_pairs: int


def successor_scores(bridge, sets: Sequence, *, through: str = "block0") -> SuccessorScores:
    """Share of ordinal pairs (t_i -> t_{i+1}) for which the head's OV circuit, given t_i, ranks
    t_{i+1} first among the tokens of t_i's own sequence (t_i itself included, so a copying
    head does not score). `sets`: objects with .name and .token_ids (data.ordinal_sets)."""
    hits_total, n_total, per_set = None, 0, {}
    for s in sets:
        ids = torch.tensor(s.token_ids)
        logits = torch.stack([x for _, x in ov_circuit(bridge, ids, ids, through=through)])  # [L, H, n, n]
        pred = logits[:, :, :-1].argmax(-1)                                                   # [L, H, n-1]
        hits = (pred == torch.arange(1, len(ids))).float().sum(-1)
        per_set[s.name] = hits / (len(ids) - 1)
        hits_total = hits if hits_total is None else hits_total + hits
        n_total += len(ids) - 1
    if not n_total:
        raise ValueError("no ordinal pairs: every set is empty")
    return SuccessorScores(hits_total / n_total, per_set, n_total)


@dataclass
class OVDiagonal:
    token_ids: torch.Tensor   # [n] the tokens read
    rank: torch.Tensor        # [layer, head, n] rank of a token's own logit in its row, 0 = lowest
    zscore: torch.Tensor      # [layer, head, n] own logit's z-score within its row


def ov_diagonal(bridge, token_ids: torch.Tensor, *, through: str = "block0") -> OVDiagonal:
    """Where each token's own logit falls among the n tokens' logits when the head attends to it."""
    ranks, zs = [], []
    for _, logits in ov_circuit(bridge, token_ids, token_ids, through=through):   # [H, n, n]
        diag = logits.diagonal(dim1=-2, dim2=-1)                                   # [H, n]
        ranks.append((logits < diag[..., None]).sum(-1))
        zs.append((diag - logits.mean(-1)) / logits.std(-1).clamp(min=1e-12))
    return OVDiagonal(torch.as_tensor(token_ids), torch.stack(ranks), torch.stack(zs))


def default_vocab_sample(tokenizer, vocab_size: int, n: int = 1000, seed: int = 0) -> torch.Tensor:
    """A seeded sample of ordinary tokens: specials and the first 256 ids (single bytes in byte-
    level BPE) excluded, ids below 20 000 (the commoner merges) preferred."""
    pool = sampleable_token_ids(tokenizer, vocab_size)
    pool = pool[(pool >= min(256, vocab_size // 4)) & (pool < max(20000, vocab_size // 2))]
    gen = torch.Generator().manual_seed(seed)
    return pool[torch.randperm(len(pool), generator=gen)[:n]].sort().values


def copy_suppression_scores(diag: OVDiagonal, bottom_frac: float = 0.01) -> torch.Tensor:
    """Fraction of tokens whose own logit is among the lowest `bottom_frac` of the sampled tokens'
    logits (bottom 10 of 1000 by default): a copy-suppression head pushes down what it attends to.
    Chance level is bottom_frac. -> [layer, head]"""
    k = max(1, round(bottom_frac * diag.rank.shape[-1]))
    return (diag.rank < k).float().mean(-1)


def copying_scores(diag: OVDiagonal, top_frac: float = 0.01) -> torch.Tensor:
    """Fraction of tokens whose own logit is among the highest `top_frac`: a copying head
    (induction, duplicate-copying, name movers) raises what it attends to. -> [layer, head]"""
    n = diag.rank.shape[-1]
    k = max(1, round(top_frac * n))
    return (diag.rank >= n - k).float().mean(-1)
