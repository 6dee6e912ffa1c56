"""Simplified-model training: a 2-layer attention-only transformer learns induction on CPU.

Olsson et al. (2022) saw induction heads form in a sudden phase change: loss on repeated text
drops at the same time as a layer-1 head starts attending to the token after the previous copy
of the current token, helped by a layer-0 previous-token head (K-composition). This module
reproduces that in a model small enough to train in well under two minutes.

Sequences are a random block of random length repeated once, then random filler. The block
length and so the offset of the repeat vary between sequences, so a fixed positional stripe
cannot solve the task: only the previous-token + induction circuit can.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn


class AttnOnlyTransformer(nn.Module):
    """Token + learned positional embeddings, n_layers of multi-head causal attention (no MLPs,
    no layer norm), unembedding. forward(tokens) -> (logits, [pattern per layer [b, h, q, k]])."""

    def __init__(self, vocab: int = 64, d_model: int = 64, n_heads: int = 4, n_layers: int = 2, n_ctx: int = 48,
                 init_embed: float = 0.5):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(n_ctx, d_model)
        self.qkv = nn.ModuleList([nn.Linear(d_model, 3 * d_model, bias=False) for _ in range(n_layers)])
        self.out = nn.ModuleList([nn.Linear(d_model, d_model, bias=False) for _ in range(n_layers)])
        self.unembed = nn.Linear(d_model, vocab, bias=False)
        # Linear layers keep PyTorch's default init (std ~ 1/sqrt(fan_in)); embeddings get unit-
        # scale rows split between token and position, so attention is not flat at the start.
        nn.init.normal_(self.embed.weight, std=init_embed)
        nn.init.normal_(self.pos.weight, std=init_embed)

    def forward(self, tokens: torch.Tensor, zero_heads: Sequence[tuple[int, int]] = ()):
        """zero_heads: (layer, head) pairs whose output is zero-ablated."""
        b, s = tokens.shape
        x = self.embed(tokens) + self.pos(torch.arange(s))
        mask = torch.ones(s, s, dtype=torch.bool).tril()
        patterns = []
        for layer, (qkv, out) in enumerate(zip(self.qkv, self.out)):
            q, k, v = qkv(x).view(b, s, 3, self.n_heads, self.d_head).unbind(2)
            scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.d_head)
            pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            patterns.append(pattern)
            z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)
            for zl, zh in zero_heads:
                if zl == layer:
                    z = z.clone()
                    z[:, :, zh] = 0
            x = x + out(z.reshape(b, s, -1))
        return self.unembed(x), patterns


def repeated_batch(gen: torch.Generator, batch: int, n_ctx: int, vocab: int,
                   min_block: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens [batch, n_ctx] and block lengths [batch]: block, block, random filler."""
    lengths = torch.randint(min_block, n_ctx // 2 + 1, (batch,), generator=gen)
    tokens = torch.randint(vocab, (batch, n_ctx), generator=gen)
    pos = torch.arange(n_ctx)
    src = (pos[None] - lengths[:, None]).clamp(min=0)
    second = (pos[None] >= lengths[:, None]) & (pos[None] < 2 * lengths[:, None])
    return torch.where(second, tokens.gather(1, src), tokens), lengths


def induction_masks(lengths: torch.Tensor, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Query positions whose next token induction can predict ([batch, q]: T <= q <= 2T - 2) and
    the key an induction head should attend to from each (q - T + 1)."""
    pos = torch.arange(n_ctx)
    rows = (pos[None] >= lengths[:, None]) & (pos[None] <= 2 * lengths[:, None] - 2)
    target = (pos[None] - lengths[:, None] + 1).clamp(min=0)
    return rows, target


@dataclass
class TrainingRun:
    model: AttnOnlyTransformer
    eval_data: tuple[torch.Tensor, torch.Tensor]       # the held-out (tokens, block lengths) of the curve
    curve: list[dict] = field(default_factory=list)   # step, loss, repeat_loss, induction, previous_token
    phase_change_step: int | None = None               # first evaluation with induction score > 0.5
    seconds: float = 0.0
    induction_head: tuple[int, int] | None = None      # best layer-1 head at the end
    previous_token_head: tuple[int, int] | None = None  # best layer-0 head at the end


@torch.no_grad()
def evaluate(model: AttnOnlyTransformer, tokens: torch.Tensor, lengths: torch.Tensor,
             zero_heads: Sequence[tuple[int, int]] = ()) -> dict:
    """Loss on all and on induction-predictable positions; per-head induction score (attention
    to q - T + 1 on predictable rows) and previous-token score (attention to q - 1)."""
    logits, patterns = model(tokens, zero_heads)
    b, s = tokens.shape
    loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                                       reduction="none").view(b, s - 1)
    rows, target = induction_masks(lengths, s)
    rows = rows[:, : s - 1]
    repeat_loss = float((loss * rows).sum() / rows.sum())
    ind, prev = [], []
    for p in patterns:
        on_target = p.gather(-1, target[:, None, :, None].expand(b, p.shape[1], s, 1))[..., 0]   # [b, h, q]
        r = rows.float()
        ind.append((on_target[..., : s - 1] * r[:, None]).sum((0, 2)) / r.sum())
        prev.append(p.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 2)))
    return {"loss": float(loss.mean()), "repeat_loss": repeat_loss,
            "induction": torch.stack(ind), "previous_token": torch.stack(prev)}


def train_induction(*, steps: int = 800, batch: int = 32, vocab: int = 64, n_ctx: int = 40, d_model: int = 64,
                    n_heads: int = 4, lr: float = 5e-3, eval_every: int = 25, seed: int = 0,
                    time_limit: float = 120.0, threads: int | None = 1) -> TrainingRun:
    """Train the 2-layer attention-only model and record the curve; stops at `time_limit` s.
    One thread by default: at this size, thread start-up costs more than it saves (about
    1 s per 100 steps on one core)."""
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(steps, batch, vocab, n_ctx, d_model, n_heads, lr, eval_every, seed, time_limit)
    finally:
        torch.set_num_threads(old_threads)


def _train(steps, batch, vocab, n_ctx, d_model, n_heads, lr, eval_every, seed, time_limit) -> TrainingRun:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AttnOnlyTransformer(vocab, d_model, n_heads, 2, n_ctx)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    eval_tokens, eval_lengths = repeated_batch(torch.Generator().manual_seed(seed + 1), 128, n_ctx, vocab)
    run = TrainingRun(model, (eval_tokens, eval_lengths))
    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step % eval_every == 0 or step == steps:
            m = evaluate(model, eval_tokens, eval_lengths)
            run.curve.append({"step": step, "loss": m["loss"], "repeat_loss": m["repeat_loss"],
                              "induction": float(m["induction"][1].max()),
                              "previous_token": float(m["previous_token"][0].max()),
                              "seconds": time.perf_counter() - t0})
            if run.phase_change_step is None and run.curve[-1]["induction"] > 0.5:
                run.phase_change_step = step
            if step == steps or time.perf_counter() - t0 > time_limit:
                break
        tokens, _ = repeated_batch(gen, batch, n_ctx, vocab)
        with torch.enable_grad():
            logits, _ = model(tokens)
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    run.seconds = time.perf_counter() - t0
    m = evaluate(model, eval_tokens, eval_lengths)
    run.induction_head = (1, int(m["induction"][1].argmax()))
    run.previous_token_head = (0, int(m["previous_token"][0].argmax()))
    return run
