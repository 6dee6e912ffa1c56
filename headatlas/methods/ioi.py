"""One measuring forward pass over indirect-object (IOI) prompts, and the interventions the IOI
claims need, built on the generic methods (frozen-scale direct logit attribution in
logit_attribution, path patching in patching).

`ioi_pass` reads, at the final position END of every prompt: logit(IO) - logit(S) (from two
unembedding columns, never the full vocabulary), every head's direct logit attribution (DLA)
to it with every norm's scale frozen, the part of it that comes through attending to each name
(a head's output at END is the attention-weighted sum of its value vectors, so the IO term is
attn(END -> IO) x DLA(value at IO): the "IO-copy" term), every head's attention from END to
IO, S1 and S2, and the upstream rows the circuit's earlier classes are read from.

A batch may repeat the prompts (rows g*n ... (g+1)*n-1 are copy g), so many interventions (one
per head set of a null) share one forward pass; the positions and answers repeat with them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from headatlas.methods import logit_attribution as la
from headatlas.prompts.ioi import IOIData

Head = tuple[int, int]


class _Stop(Exception):
    """Raised from the unembedding's input hook: nothing after the final norm is computed."""


def run_hooks(bridge, tokens: torch.Tensor, hooks: Sequence, stop_at_unembed: bool = True) -> None:
    """A forward pass for its hooks only, stopped before the unembedding."""
    hooks = list(hooks)
    if stop_at_unembed:
        def stop(x, hook):
            raise _Stop
        hooks.append(("unembed.hook_in", stop))
    with torch.inference_mode():
        try:
            bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
        except _Stop:
            pass


@dataclass
class Pass:
    """What one forward pass over IOI prompts yields (per row)."""

    logit_diff: torch.Tensor   # [rows] logit(IO) - logit(S) at END
    dla: torch.Tensor          # [rows, layer, head] direct logit attribution to it (scales frozen)
    dla_src: torch.Tensor      # [rows, layer, head, 3] the part coming through attention to IO, S1, S2
    attn: torch.Tensor         # [rows, layer, head, 3] attention from END to IO, S1, S2
    z_end: list                # per layer [rows, head, d_head]: outputs at END
    resid: torch.Tensor        # [rows, d_model] residual stream entering the final norm at END
    direction: torch.Tensor    # [rows, d_model] frozen-scale logit direction at END
    post_scale: list | None    # per layer [rows] Gemma's post-attention norm scale at END
    upstream: torch.Tensor     # [rows, layer, head, 3] attention S2->S1, S2->S1+1, S1+1->S1
    z_all: list | None = None  # per layer [rows, pos, head, d_head] when asked for
    extra: dict = field(default_factory=dict)

    def mean(self, name: str) -> torch.Tensor:
        return getattr(self, name).mean(0)

    def by_copy(self, name: str, n: int) -> torch.Tensor:
        """A per-row field regrouped by copy of the prompts: [copies, n, ...]."""
        x = getattr(self, name)
        return x.view(x.shape[0] // n, n, *x.shape[1:])


def ioi_pass(bridge, d: IOIData, tokens: torch.Tensor | None = None, fwd_hooks: Sequence = (),
             keep_z: bool = False) -> Pass:
    """One forward pass over the clean prompts (or `tokens`: same template and positions, and
    possibly several copies of the batch) under `fwd_hooks`."""
    tokens = d.clean if tokens is None else tokens
    rows, end = tokens.shape[0], d.end
    if rows % d.n:
        raise ValueError(f"{rows} rows are not whole copies of {d.n} prompts")
    reps = rows // d.n
    io, s = d.io.repeat(reps), d.s.repeat(reps)
    io_pos, s1_pos, s2_pos = d.io_pos.repeat(reps), d.s1_pos.repeat(reps), d.s2_pos.repeat(reps)
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    idx = torch.arange(rows)
    slots = [io_pos, s1_pos, s2_pos]
    post = la.has_post_attn_norm(bridge)
    st: dict[str, Any] = {k: [None] * n_layers for k in ("z", "att", "up", "v", "post", "zall")}

    def layer_of(hook) -> int:
        return int(hook.name.split(".")[1])

    def k_pattern(p, hook):
        layer = layer_of(hook)
        row = p[:, :, end].float()                                            # [rows, head, key]
        st["att"][layer] = torch.stack([row[idx, :, q] for q in slots], -1)
        st["up"][layer] = torch.stack([p[idx, :, s2_pos, s1_pos], p[idx, :, s2_pos, s1_pos + 1],
                                       p[idx, :, s1_pos + 1, s1_pos]], -1).float()
        return p

    def k_v(v, hook):
        vv = torch.stack([v[idx, q] for q in slots], 1).float()               # [rows, 3, kv, d_head]
        g = n_heads // vv.shape[2]
        st["v"][layer_of(hook)] = vv.repeat_interleave(g, dim=2) if g > 1 else vv
        return v

    def k_z(z, hook):
        st["z"][layer_of(hook)] = z[:, end].detach().float().clone()
        if keep_z:
            st["zall"][layer_of(hook)] = z.detach().clone()
        return z

    def k_post(x, hook):
        st["post"][layer_of(hook)] = x[:, end].detach().float().reshape(rows).clone()
        return x

    def k_final_scale(x, hook):
        st["final"] = x[:, end].detach().float().reshape(rows).clone()
        return x

    def k_resid(x, hook):
        st["resid"] = x[:, end].detach().float().clone()
        return x

    hooks = list(fwd_hooks)
    for layer in range(n_layers):
        hooks += [(f"blocks.{layer}.attn.hook_pattern", k_pattern), (f"blocks.{layer}.attn.hook_v", k_v),
                  (f"blocks.{layer}.attn.hook_z", k_z)]
        if post:
            hooks.append((f"blocks.{layer}.ln1_post.hook_scale", k_post))
    hooks += [("ln_final.hook_in", k_resid), ("ln_final.hook_scale", k_final_scale)]
    run_hooks(bridge, tokens, hooks)
    direction = la.frozen_logit_direction(bridge, io, s, st["final"])
    post_scale = st["post"] if post else None
    dla = la.head_dla_from_z(bridge, st["z"], direction, post_scale)
    # The value vectors at IO, S1, S2 through the same frozen map: the three source terms.
    src = torch.stack([la.head_dla_from_z(bridge, [v[:, i] for v in st["v"]], direction, post_scale)
                       for i in range(3)], -1)
    att = torch.stack(st["att"], 1)
    ld = la.logit_diff_from_residual(bridge, st["resid"], io, s)
    return Pass(ld, dla, src * att, att, st["z"], st["resid"], direction, post_scale, torch.stack(st["up"], 1),
                st["zall"] if keep_z else None)


def z_hooks_at(head_sets: Sequence[Sequence[Head]], values: list, position: int, n: int) -> list:
    """Hooks for a batch of len(head_sets) copies of n prompts: in copy g, the heads of
    head_sets[g] get hook_z = values[layer][:, position] ([n or 1, head, d_head] rows of the
    same prompts, e.g. ABC means) at `position` only. One forward pass, many interventions."""
    by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for g, heads in enumerate(head_sets):
        for layer, head in heads:
            by_layer[int(layer)].append((g, int(head)))
    hooks = []
    for layer, pairs in by_layer.items():
        def replace(z, hook, layer=layer, pairs=pairs):
            z = z.clone()
            v = values[layer][:, position].to(z.dtype)
            for g, h in pairs:
                z[g * n:(g + 1) * n, position, h] = v[:, h].expand(n, -1)
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", replace))
    return hooks


def query_path_patch(bridge, d: IOIData, z_clean: list, z_src: list, sender_groups: Sequence[Sequence[Head]],
                     receivers: Sequence[Head]) -> Pass:
    """Wang et al.'s path patching from each group of senders (their outputs at END taken from
    the source prompts) into the receivers' queries at END, one copy of the prompts per group,
    measured in one pass (patching.receiver_patch_hooks does step 1)."""
    from headatlas.methods.patching import receiver_patch_hooks

    hooks = receiver_patch_hooks(bridge, d.clean, z_clean, z_src, sender_groups,
                                 [(layer, head, "q") for layer, head in receivers], positions=[d.end])
    return ioi_pass(bridge, d, tokens=d.clean.repeat(len(sender_groups), 1), fwd_hooks=hooks)


def logits_path_patch(bridge, clean: Pass, z_src_end: list, head_sets: Sequence[Sequence[Head]],
                      d: IOIData) -> torch.Tensor:
    """Path patching into the logits (Wang et al.'s test for name movers) for each head set:
    the set's outputs at END as on the source prompts reach the final norm, everything else as
    on the clean prompts; the final norm recomputes its scale (Gemma's post-attention norm keeps
    its clean scale). -> [sets, n] logit(IO) - logit(S). No forward pass: the residual at END
    plus the heads' output change, through the final norm and two unembedding columns."""
    from headatlas.methods.patching import head_output_delta

    w_o = bridge.W_O.detach()
    each: dict[Head, torch.Tensor] = {}
    for heads in head_sets:
        for h in heads:
            h = (int(h[0]), int(h[1]))
            if h not in each:
                each[h] = head_output_delta(bridge, clean.z_end, z_src_end, [h], clean.post_scale, w_o=w_o)
    deltas = torch.stack([sum(each[(int(a), int(b))] for a, b in heads) for heads in head_sets])   # [sets, n, d_model]
    return la.logit_diff_from_residual(bridge, clean.resid[None] + deltas, d.io, d.s)
