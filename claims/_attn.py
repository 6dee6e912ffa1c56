"""Shared measuring code of the attention-head claims of the "attn" group (retrieval, streaming,
positional, subword-merge, letter-mover, successor, MCQA option heads).

Helpers only: pick control heads, read logits at a few positions (never the full vocabulary at
every position, which is gigabytes for Gemma's 262k tokens), and remember a per-model result
that two claims of one entry share (for example the retrieval scores the masking claim reuses),
keyed by everything the result depends on.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

import torch

from headatlas.methods import scoring, weights
from headatlas.methods.ablation import final_residual

Head = tuple[int, int]

_MEMO: dict[str, Any] = {}


def memo(key_parts: Iterable[Any], compute: Callable[[], Any]) -> Any:
    """compute() once per session for the same key (model name, data, params...)."""
    key = json.dumps(list(key_parts), sort_keys=True, default=str)
    if key not in _MEMO:
        _MEMO[key] = compute()
    return _MEMO[key]


def fmt(heads: Iterable[Head]) -> list[str]:
    return [scoring.fmt_head(*h) for h in heads]


def all_heads(model) -> list[Head]:
    return [(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)]


def median_depth(heads: Sequence[Head], n_layers: int) -> float:
    depths = sorted(scoring.relative_depth(layer, n_layers) for layer, _ in heads)
    mid = len(depths) // 2
    return depths[mid] if len(depths) % 2 else (depths[mid - 1] + depths[mid]) / 2


def logits_at(bridge, tokens: torch.Tensor, positions: torch.Tensor, fwd_hooks=()) -> torch.Tensor:
    """Logits at chosen positions only: positions [batch, n] (or [batch]) -> [batch, n, vocab]."""
    x = final_residual(bridge, tokens, fwd_hooks)
    pos = positions if positions.ndim == 2 else positions[:, None]
    xs = x.gather(1, pos[..., None].expand(-1, -1, x.shape[-1]))
    with torch.inference_mode():
        return torch.cat([bridge.unembed(xs[i: i + 1]).float() for i in range(xs.shape[0])])


def by_layer(heads: Iterable[Head]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for layer, head in heads:
        out.setdefault(int(layer), []).append(int(head))
    return out


class _Done(Exception):
    """Raised from the last hook a pass needs, so nothing after it (above all the unembedding,
    [batch, pos, 262k] for Gemma) is computed."""


def forward_reduce(bridge, tokens: torch.Tensor, reducers: dict[str, Callable] | None = None, *,
                   fwd_hooks=(), z_at: int | None = None, final_at: int | None = None) -> dict[str, Any]:
    """One forward pass that keeps only what a claim reads, and stops as early as it can:
    - reducers: name -> fn(pattern [batch, head, q, k]) applied to every layer's attention,
      returned stacked over layers as out[name];
    - z_at: every head's output before W_O (hook_z) at that position: out["z"] [layer, batch, head, d_head],
      and, in a model that normalises the attention output (Gemma), that norm's scale there:
      out["post_scale"] [layer, batch] (None elsewhere), which head_dla / head_direct_out need;
    - final_at: the normalised residual entering the unembedding and the final norm's scale at
      that position: out["final"] [batch, d_model], out["scale"] [batch, 1].
    Hooks in fwd_hooks (edits) run before the readers."""
    n_layers = bridge.cfg.n_layers
    reducers = reducers or {}
    out: dict[str, Any] = {name: [None] * n_layers for name in reducers}
    zs: list = [None] * n_layers
    stop = "final" if final_at is not None else ("z" if z_at is not None else "pattern")

    def on_pattern(pattern, hook, layer):
        p = pattern.detach().float()
        for name, fn in reducers.items():
            out[name][layer] = fn(p)
        if stop == "pattern" and layer == n_layers - 1:
            raise _Done
        return pattern

    post = z_at is not None and weights.has_post_attn_norm(bridge)
    posts: list = [None] * n_layers

    def on_z(z, hook, layer):
        zs[layer] = z[:, z_at].detach().float().clone()
        if stop == "z" and layer == n_layers - 1 and not post:
            raise _Done
        return z

    def on_post(x, hook, layer):
        posts[layer] = x[:, z_at].detach().float().reshape(x.shape[0]).clone()
        if stop == "z" and layer == n_layers - 1:
            raise _Done
        return x

    def on_scale(x, hook):
        out["scale"] = x[:, final_at].detach().float().clone()
        return x

    def on_final(x, hook):
        out["final"] = x[:, final_at].detach().float().clone()
        raise _Done

    hooks = list(fwd_hooks)
    if reducers:
        hooks += [(f"blocks.{i}.attn.hook_pattern", lambda p, hook, i=i: on_pattern(p, hook, i)) for i in range(n_layers)]
    if z_at is not None:
        hooks += [(f"blocks.{i}.attn.hook_z", lambda z, hook, i=i: on_z(z, hook, i)) for i in range(n_layers)]
    if post:
        hooks += [(f"blocks.{i}.ln1_post.hook_scale", lambda x, hook, i=i: on_post(x, hook, i)) for i in range(n_layers)]
    if final_at is not None:
        hooks += [("ln_final.hook_scale", on_scale), ("unembed.hook_in", on_final)]
    with torch.inference_mode():
        try:
            bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
        except _Done:
            pass
    for name in reducers:
        out[name] = torch.stack(out[name])
    if z_at is not None:
        out["z"] = torch.stack(zs)
        out["post_scale"] = torch.stack(posts) if post else None
    return out


def unembed_rows(bridge, x: torch.Tensor) -> torch.Tensor:
    """Logits for a few residual vectors [n, d_model] -> [n, vocab]."""
    with torch.inference_mode():
        return bridge.unembed(x[:, None]).float()[:, 0]


def head_dla(bridge, z: torch.Tensor, scale: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor,
             per_prompt: bool = False, post_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Direct logit attribution of every head to logit[correct] - logit[wrong] from hook_z at the
    read position (z [layer, batch, head, d_head]) with the norms' scales frozen (as in
    headatlas.methods.logit_attribution): [layer, head], mean over prompts (or, with per_prompt,
    [layer, batch, head]). post_scale: forward_reduce's out["post_scale"] (Gemma's post-attention
    norm; None for models without it)."""
    w_u = bridge.W_U.detach()
    direction = (w_u[:, correct] - w_u[:, wrong]).T                          # [batch, d_model]
    dla = (head_direct_out(bridge, z, scale, post_scale) * direction[None, :, None]).sum(-1)
    return dla if per_prompt else dla.mean(1)


def head_direct_out(bridge, z: torch.Tensor, scale: torch.Tensor, post_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Every head's output at the read position as the unembedding sees it: hook_z [layer, batch,
    head, d_head] through W_O, through the post-attention norm where the model has one (its
    scale [layer, batch] frozen, its gain applied) and through the final norm with its scale
    [batch, 1] frozen: [layer, batch, head, d_model]."""
    w_o = weights.head_weights(bridge)["W_O"]                               # [layer, head, d_head, d_model]
    out = torch.einsum("lbhd,lhdm->lbhm", z, w_o)
    if weights.has_post_attn_norm(bridge):
        if post_scale is None:
            raise ValueError("this model normalises each attention output: pass forward_reduce's post_scale")
        gain = torch.stack([weights.post_attn_gain(bridge, i) for i in range(out.shape[0])])   # [layer, d_model]
        out = out * gain[:, None, None, :] / post_scale[:, :, None, None]
    return weights.final_ln_linear(bridge, out, scale[None, :, None, :] if scale.ndim == 2 else scale)


def patch_z_hooks(heads: Iterable[Head], z: torch.Tensor, position: int) -> list:
    """Hooks writing the given heads' hook_z at one position from z [layer, batch, head, d_head]."""
    hooks = []
    for layer, hs in by_layer(heads).items():
        def f(x, hook, layer=layer, hs=hs):
            x = x.clone()
            x[:, position, hs] = z[layer][:, hs].to(x.dtype)
            return x
        hooks.append((f"blocks.{layer}.attn.hook_z", f))
    return hooks


def greedy_copy_attention(bridge, context: torch.Tensor, draft: torch.Tensor,
                          reducer: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, list]:
    """The model's own greedy continuation of `context` [batch, c] for draft.shape[1] steps, with
    what `reducer` reads from each layer's attention rows at the decoding queries.

    No KV cache: each pass re-runs the whole sequence. The draft (e.g. the true needle) is what
    a pass assumes the model will write; a pass verifies every step of it at once and accepts
    the steps up to and including the first one where the model's argmax differs (that step
    gets the model's token). So the result is exactly the greedy generation, in 1 + (number of
    steps that depart from the draft) passes instead of one pass per token.

    reducer: fn(rows [batch, head, steps, key]) -> [batch, head, steps, ...], applied per layer to
    the rows of queries c-1 ... c+steps-2 (query c-1+j generates token j).
    Returns (generated [batch, steps], per step j the reduced value of the pass that produced
    it: a list over steps of [layer, batch, head, ...])."""
    b, c = context.shape
    steps = draft.shape[1]
    gen = draft.clone()
    done = torch.zeros(b, dtype=torch.long)          # steps already final, per prompt
    kept: list = [None] * steps
    while int(done.min()) < steps:
        active = (done < steps).nonzero().flatten()                        # only unfinished prompts
        seq = torch.cat([context[active], gen[active, :-1]], 1)
        out = forward_reduce(bridge, seq, {"r": lambda p: reducer(p[:, :, c - 1:])}, final_at=slice(c - 1, None))
        x = out["final"]                                                   # [active, steps, d_model]
        pred = unembed_rows(bridge, x.reshape(len(active) * steps, -1)).argmax(-1).view(len(active), steps)
        red = out["r"]                                                     # [layer, active, head, steps, ...]
        for a, i in enumerate(active.tolist()):
            s0 = int(done[i])
            wrong = (pred[a, s0:] != gen[i, s0:]).nonzero().flatten()
            last = s0 + int(wrong[0]) if wrong.numel() else steps - 1
            gen[i, last] = pred[a, last]
            for j in range(s0, last + 1):
                if kept[j] is None:
                    kept[j] = red.new_zeros((red.shape[0], b) + tuple(red.shape[2:3]) + tuple(red.shape[4:]))
                kept[j][:, i] = red[:, a, :, j]
            done[i] = last + 1
    return gen, kept
