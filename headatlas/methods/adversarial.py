"""Gradient-guided token substitution: adversarial inputs found in embedding space.

An attack on a discrete prompt in the manner of HotFlip (Ebrahimi et al. 2018), as vulnerable-head
studies use it (García-Carrasco et al. 2024 search the embedding space of GPT-2 small's acronym
prompts): take the gradient of the quantity to lower with respect to the token embeddings, rank
every allowed replacement of the token at one position by the first-order change it predicts,
(e_candidate - e_current) . gradient, then run the best few exactly and keep the one that lowers
it most. The allowed replacements are the caller's (for example words with the same initial, so
that the right answer does not change). Ranking needs only e_candidate . gradient, so a constant
scale applied to the embedding (Gemma multiplies by sqrt(d_model)) does not change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

# objective(logits at the final position [n, vocab], row of each logit row in the batch [n]) -> [n]:
# the per-prompt quantity the attack lowers (for example the right answer's margin).
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def margin_objective(choice_ids: torch.Tensor, right: torch.Tensor) -> Objective:
    """logit(right choice) - logsumexp(the other choices) per prompt, where the answer is one of a
    fixed set of tokens (choice_ids [c]; right [batch] the right one's token id): the quantity an
    attack on a choice lowers (below 0 the right choice is no longer ranked first)."""
    def objective(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        lg = logits[:, choice_ids]                                             # [n, c]
        is_right = choice_ids[None] == right[rows][:, None]
        return lg[is_right] - lg.masked_fill(is_right, float("-inf")).logsumexp(-1)
    return objective


class _Stop(Exception):
    pass


def _final_logits(bridge, tokens: torch.Tensor, hooks: list) -> torch.Tensor:
    """Logits at the last position only (a full [batch, pos, vocab] is gigabytes for Gemma)."""
    store = {}

    def grab(x, hook):
        store["x"] = x[:, -1:]
        raise _Stop

    try:
        bridge.run_with_hooks(tokens, fwd_hooks=hooks + [("unembed.hook_in", grab)], return_type=None)
    except _Stop:
        pass
    return bridge.unembed(store["x"]).float()[:, 0]


def embedding_gradient(bridge, tokens: torch.Tensor, objective: Objective) -> torch.Tensor:
    """d objective / d token embedding at every position, [batch, pos, d_model] (the objective of
    each prompt depends on its own row only, so one backward pass of the sum gives all rows)."""
    store = {}

    def leaf(x, hook):
        store["emb"] = x.detach().requires_grad_(True)
        return store["emb"]

    with torch.enable_grad():
        logits = _final_logits(bridge, tokens, [("hook_embed", leaf)])
        value = objective(logits, torch.arange(tokens.shape[0])).sum()
        (grad,) = torch.autograd.grad(value, store["emb"])
    return grad.detach().float()


@dataclass(frozen=True)
class Substitution:
    tokens: torch.Tensor        # [batch, pos] each prompt with its worst replacement found
    replaced_by: torch.Tensor   # [batch] the token put at the position
    before: torch.Tensor        # [batch] objective on the original prompts
    after: torch.Tensor         # [batch] objective on the adversarial prompts
    tried: int                  # replacements run exactly per prompt


def worst_substitution(bridge, tokens: torch.Tensor, position: torch.Tensor, candidates: list[torch.Tensor],
                       objective: Objective, *, top: int = 8, chunk: int = 256) -> Substitution:
    """For each prompt (row of tokens), the replacement of the token at position[row] among
    candidates[row] (token ids) that lowers objective most: the `top` candidates with the most
    negative first-order estimate are run exactly (batched) and the lowest kept. The
    original token is never a candidate. All replacements are single tokens, so lengths stay.
    Every prompt tries as many as the prompt with the fewest candidates allows; the exact runs go
    `chunk` rows at a time."""
    n = tokens.shape[0]
    rows = torch.arange(n)
    grad = embedding_gradient(bridge, tokens, objective)[rows, position]            # [batch, d_model]
    w_e = bridge.W_E.detach().float()
    picks = []
    for r in range(n):
        cand = candidates[r][candidates[r] != tokens[r, position[r]]]
        if cand.numel() == 0:
            raise ValueError(f"prompt {r} has no candidate replacement at position {int(position[r])}")
        est = w_e[cand] @ grad[r]                                                  # ranking only
        picks.append(cand[torch.argsort(est)[: min(top, cand.numel())]])
    width = min(p.numel() for p in picks)
    picks = torch.stack([p[:width] for p in picks])                                 # [batch, width]
    trial = tokens.repeat_interleave(width, 0).clone()
    trial_rows = rows.repeat_interleave(width)
    trial[torch.arange(n * width), position.repeat_interleave(width)] = picks.flatten()
    with torch.inference_mode():
        before = objective(_final_logits(bridge, tokens, []), rows)
        tried = torch.cat([objective(_final_logits(bridge, trial[i: i + chunk], []), trial_rows[i: i + chunk])
                           for i in range(0, trial.shape[0], chunk)]).view(n, width)
    best = tried.argmin(1)
    chosen = picks[rows, best]
    adv = tokens.clone()
    adv[rows, position] = chosen
    return Substitution(adv, chosen, before, tried[rows, best], width)
