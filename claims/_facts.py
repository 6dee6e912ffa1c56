"""Shared measuring code of the task-group claims (factual recall: subject, relation and mover
heads; also function-vector and sentiment-summarizer heads for the batched head-set edits).

- Which facts the model knows: one memoised pass per model and template (`known_facts`), shared
  by the subject, relation and mover claims.
- The split of subjects into a selection half and a held-out half, by subject name, so the
  heads are chosen on some countries and judged on others, in every template.
- Head-set edits batched over many head sets in one forward pass (the nulls), and last-position
  readouts that never build full [batch, pos, vocab] logits.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import torch
from _attn import memo

from headatlas.methods.ablation import final_residual
from headatlas.prompts.tasks import FV_TASKS, FactPrompts, fact_prompts, subset

Head = tuple[int, int]

CHUNK = 64  # rows unembedded at once (a [64, 262k] float block is 67 MB for Gemma)


# ----------------------------------------------------------------------------- readouts


def last_residual(bridge, tokens: torch.Tensor, hooks=()) -> torch.Tensor:
    """The normalised residual entering the unembedding at the final position: [batch, d_model]."""
    return final_residual(bridge, tokens, hooks)[:, -1]


def reduce_logits(bridge, x: torch.Tensor, fn: Callable[[torch.Tensor, slice], torch.Tensor]) -> torch.Tensor:
    """fn(logits [chunk, vocab], rows) -> [chunk, ...] over chunks of final residuals x [n, d_model]."""
    out = []
    with torch.inference_mode():
        for i in range(0, x.shape[0], CHUNK):
            rows = slice(i, min(i + CHUNK, x.shape[0]))
            out.append(fn(bridge.unembed(x[rows][:, None]).float()[:, 0], rows))
    return torch.cat(out)


def answer_prob(bridge, x: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """P(answer) at each row: [n]."""
    return reduce_logits(bridge, x, lambda lg, r: lg.softmax(-1).gather(1, answer[r, None])[:, 0])


def answer_rank(bridge, x: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """How many tokens score above the answer (0 = top prediction): [n]."""
    def f(lg, r):
        return (lg > lg.gather(1, answer[r, None])).sum(-1)
    return reduce_logits(bridge, x, f)


def columns(bridge, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Logits of the given token ids only: [n, len(ids)]."""
    return reduce_logits(bridge, x, lambda lg, r: lg[:, ids])


# ----------------------------------------------------------------------------- head-set edits


def set_edit_hooks(head_sets: torch.Tensor, n_prompts: int, position: int, mode: str = "zero",
                   values: torch.Tensor | None = None) -> list:
    """Hooks for a batch that repeats n_prompts prompts once per head set ([n_sets, k, 2]): in
    rows s*n_prompts ... (s+1)*n_prompts-1 the heads of set s are edited at `position` only.
    mode "zero": set hook_z to zero; "set": to values[layer] ([n_prompts, head, d_head]);
    "add": add values[layer] ([head, d_head] or [n_prompts, head, d_head])."""
    n_sets = head_sets.shape[0]
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for s in range(n_sets):
        for layer, head in head_sets[s].tolist():
            by_layer.setdefault(layer, []).append((s, head))
    hooks = []
    for layer, pairs in by_layer.items():
        def edit(z, hook, layer=layer, pairs=pairs):
            mask = torch.zeros(n_sets, z.shape[2], dtype=torch.bool)
            for s, head in pairs:
                mask[s, head] = True
            mask = mask.repeat_interleave(n_prompts, 0)[:, :, None].to(z.device)   # [rows, head, 1]
            z = z.clone()
            cur = z[:, position]
            if mode == "zero":
                new = torch.zeros_like(cur)
            else:
                v = values[layer].to(z.dtype)
                v = v.expand(n_prompts, *v.shape[-2:]) if v.ndim == 2 else v
                v = v.repeat(n_sets, 1, 1)
                new = v if mode == "set" else cur + v
            z[:, position] = torch.where(mask, new, cur)
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", edit))
    return hooks


def head_set(heads: Sequence[Head]) -> torch.Tensor:
    """One head set as a [1, k, 2] tensor for set_edit_hooks."""
    return torch.tensor([[list(h) for h in heads]], dtype=torch.long)


# ----------------------------------------------------------------------------- facts


def _last_argmax(bridge, tokens: torch.Tensor) -> torch.Tensor:
    return reduce_logits(bridge, last_residual(bridge, tokens), lambda lg, r: lg.argmax(-1))


def known_facts(model, template: str) -> tuple[FactPrompts, int]:
    """(the prompts whose top prediction is the correct attribute, number of facts asked);
    computed once per model and template in a session."""
    def compute():
        data = fact_prompts(model.tokenizer, template)
        return subset(data, _last_argmax(model.bridge, data.tokens) == data.answer), len(data.subjects)
    return memo(("known-facts", model.name, template), compute)


def selection_half(split_seed: int) -> set[str]:
    """The subjects (country names) heads are chosen on; the others are held out. Drawn by name
    over every country of the fact tasks, so a country is on the same side in every template."""
    names = sorted({x for task in ("country-capital", "country-language") for x, _ in FV_TASKS[task]})
    random.Random(int(split_seed)).shuffle(names)
    return set(names[: len(names) // 2])


def facts_for(run, data_spec: dict, min_known: int) -> FactPrompts:
    """The known facts of one data spec's template, restricted to its half of the subjects
    ('select' or 'test'); not applicable if fewer than min_known remain."""
    known, asked = known_facts(run.model, data_spec["template"])
    chosen = selection_half(int(data_spec["split_seed"]))
    want = data_spec["half"] == "select"
    keep = torch.tensor([(s in chosen) == want for s in known.subjects], dtype=torch.bool)
    facts = subset(known, keep) if keep.numel() else known
    n = len(facts.subjects)
    if n < min_known:
        run.not_applicable(f"knows {n} of the facts in the {data_spec['half']} half of '{data_spec['template']}' "
                           f"({len(known.subjects)} of {asked} in all); needs at least {min_known}")
    return facts
