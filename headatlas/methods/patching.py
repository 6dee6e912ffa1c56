"""Activation patching (per head, on hook_z), path patching and attribution patching.

Convention ("noising", as in Wang et al.'s IOI work): the model runs on the clean prompts and
a head's activation is taken from the corrupted prompts; a head matters when the metric moves.
`denoise=True` flips it (run corrupted, restore clean activations). Metrics map logits
[batch, pos, vocab] to one value per prompt; results are means over prompts.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import torch

from headatlas.methods.replacement import (Heads, Metric, all_heads, cache_z, chunked_replacement, head_grid,
                                        position_mask, run_metric, z_replacement_hooks)
from headatlas.methods.weights import kv_group


@dataclass
class PatchingResult:
    patched: torch.Tensor   # [layer, head] mean metric with that head patched (NaN: not run)
    clean: float            # metric of the unpatched run
    corrupted: float        # metric of the source prompts

    @property
    def effect(self) -> torch.Tensor:
        """patched - clean."""
        return self.patched - self.clean

    @property
    def normalized(self) -> torch.Tensor:
        """0 = no change, 1 = the head alone moves the metric all the way to the other run's value."""
        return (self.patched - self.clean) / (self.corrupted - self.clean)


def _runs(clean: torch.Tensor, corrupted: torch.Tensor, denoise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompts run, prompts whose activations are patched in)."""
    if clean.shape != corrupted.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupted.shape)} prompts differ in shape")
    return (corrupted, clean) if denoise else (clean, corrupted)


def activation_patching(bridge, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, *,
                        heads: Heads | None = None, positions=None, denoise: bool = False,
                        chunk: int = 8) -> PatchingResult:
    """Patch each head's hook_z alone; `chunk` heads share one forward pass (batch repeated)."""
    run, source = _runs(clean, corrupted, denoise)
    heads = all_heads(bridge) if heads is None else list(heads)
    values = cache_z(bridge, source)
    base = float(run_metric(bridge, run, metric).mean())
    other = float(run_metric(bridge, source, metric).mean())
    patched = chunked_replacement(bridge, run, metric, heads, values, positions, chunk)
    return PatchingResult(head_grid(bridge, heads, patched), base, other)


def activation_patching_loop(bridge, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, *,
                             heads: Heads | None = None, positions=None, denoise: bool = False) -> PatchingResult:
    """Reference implementation: one forward pass per head, no batching tricks."""
    run, source = _runs(clean, corrupted, denoise)
    heads = all_heads(bridge) if heads is None else list(heads)
    values = cache_z(bridge, source)
    base = float(run_metric(bridge, run, metric).mean())
    other = float(run_metric(bridge, source, metric).mean())
    patched = [run_metric(bridge, run, metric, z_replacement_hooks([h], values, positions)).mean() for h in heads]
    return PatchingResult(head_grid(bridge, heads, torch.stack(patched)), base, other)


# ----------------------------------------------------------------------------- attribution patching


@dataclass
class AttributionResult:
    estimate: torch.Tensor   # [layer, head] first-order estimate of patched - clean
    clean: float
    seconds: float = 0.0


def attribution_patching(bridge, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, *,
                         positions=None, denoise: bool = False) -> AttributionResult:
    """Nanda's attribution patching: (z_source - z_run) . d metric / d z_run, for every head at
    once from two forward passes and one backward pass. A linear approximation: it is good when
    patching one head changes the model little, and misses saturation (e.g. softmax) effects."""
    t0 = time.perf_counter()
    run, source = _runs(clean, corrupted, denoise)
    z_src = cache_z(bridge, source)
    n_layers = bridge.cfg.n_layers
    zs: list = [None] * n_layers

    def leaf(x, hook):
        # Start the graph at the embedding so gradients reach hook_z whether or not the
        # parameters require grad; autograd.grad below then never touches parameter .grad.
        return x.detach().requires_grad_(True)

    def keep(z, hook):
        zs[int(hook.name.split(".")[1])] = z
        return z

    hooks = [("hook_embed", leaf)] + [(f"blocks.{layer}.attn.hook_z", keep) for layer in range(n_layers)]
    with torch.enable_grad():
        logits = bridge.run_with_hooks(run, fwd_hooks=hooks)
        value = metric(logits.float()).mean()
        grads = torch.autograd.grad(value, zs)
    b, s = run.shape
    mask = position_mask(positions, b, s)[..., None, None].float()
    est = torch.stack([((z_src[layer] - zs[layer].detach()) * grads[layer] * mask).sum((0, 1, 3)) for layer in range(n_layers)])
    # metric(...).mean() already divides by the batch size, so the sum over prompts is the mean effect.
    return AttributionResult(est, float(value.detach()), time.perf_counter() - t0)


class _StopAtUnembed(Exception):
    pass


def z_gradients(bridge, tokens: torch.Tensor, last_metric, last: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """Every layer's hook_z [batch, pos, head, d_head] on `tokens`, and the gradient of
    last_metric(logits at the final position [batch, vocab]) -> scalar with respect to each.
    The forward pass stops before the unembedding and unembeds the final position only, which
    matters for a 262k-token vocabulary. With `last` > 0 the metric gets the logits of the last
    `last` positions instead ([batch, last, vocab]), e.g. a teacher-forced continuation. The
    gradients feed first-order patching estimates: (z_source - z) . grad, for any source and
    any positions."""
    n_layers = bridge.cfg.n_layers
    zs: list = [None] * n_layers
    store = {}

    def leaf(x, hook):
        return x.detach().requires_grad_(True)  # gradients reach hook_z whether or not parameters require grad

    def keep(z, hook):
        zs[int(hook.name.split(".")[1])] = z
        return z

    def grab(x, hook):
        store["x"] = x
        raise _StopAtUnembed

    hooks = [("hook_embed", leaf)] + [(f"blocks.{layer}.attn.hook_z", keep) for layer in range(n_layers)]
    with torch.enable_grad():
        try:
            bridge.run_with_hooks(tokens, fwd_hooks=hooks + [("unembed.hook_in", grab)], return_type=None)
        except _StopAtUnembed:
            pass
        logits = bridge.unembed(store["x"][:, -max(last, 1):]).float()
        value = last_metric(logits if last else logits[:, 0])
        grads = torch.autograd.grad(value, zs)
    return [z.detach() for z in zs], list(grads), float(value.detach())


@dataclass
class AttributionCheck:
    estimate: torch.Tensor                        # [layer, head] attribution estimate
    candidates: list[tuple[int, int]]             # top-k heads by |estimate|
    exact: dict[tuple[int, int], float]           # exact patching effect of each candidate
    correlation: float                            # Pearson r of estimate vs exact over candidates
    extra: dict = field(default_factory=dict)


def attribution_then_exact(bridge, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, *,
                           top_k: int = 10, positions=None, denoise: bool = False, chunk: int = 8) -> AttributionCheck:
    """Screen every head with attribution patching, then confirm the top-k by exact patching."""
    att = attribution_patching(bridge, clean, corrupted, metric, positions=positions, denoise=denoise)
    n_heads = att.estimate.shape[1]
    order = torch.argsort(att.estimate.abs().flatten(), descending=True)[:top_k]
    cands = [(int(i) // n_heads, int(i) % n_heads) for i in order]
    exact = activation_patching(bridge, clean, corrupted, metric, heads=cands, positions=positions,
                                denoise=denoise, chunk=chunk)
    ex = {h: float(exact.effect[h]) for h in cands}
    a = torch.tensor([float(att.estimate[h]) for h in cands])
    e = torch.tensor([ex[h] for h in cands])
    r = float(torch.corrcoef(torch.stack([a, e]))[0, 1]) if len(cands) > 1 else float("nan")
    return AttributionCheck(att.estimate, cands, ex, r, {"clean": exact.clean, "corrupted": exact.corrupted})


def top_k_overlap(a: torch.Tensor, b: torch.Tensor, k: int = 10, absolute: bool = True) -> float:
    """Share of the k top heads of score grid `a` that are also among the k top heads of `b`."""
    fa, fb = (a.abs(), b.abs()) if absolute else (a, b)
    ta = set(torch.argsort(torch.nan_to_num(fa.flatten(), nan=-1e30), descending=True)[:k].tolist())
    tb = set(torch.argsort(torch.nan_to_num(fb.flatten(), nan=-1e30), descending=True)[:k].tolist())
    return len(ta & tb) / k


# ----------------------------------------------------------------------------- path patching

Receiver = tuple[int, int, str] | str   # (layer, head, "q" | "k" | "v") or "logits"


def _parse_receivers(receivers) -> tuple[list[tuple[int, int, str]], bool]:
    qkv, logits = [], False
    for r in receivers:
        if r == "logits":
            logits = True
        else:
            layer, head, comp = r
            if comp not in ("q", "k", "v"):
                raise ValueError(f"receiver component must be q, k or v, not {comp!r}")
            qkv.append((int(layer), int(head), comp))
    return qkv, logits


class _StopAfterReceivers(Exception):
    pass


def receiver_patch_hooks(bridge, clean: torch.Tensor, z_clean, z_src, sender_groups: Sequence[Heads],
                         receivers: Sequence[tuple[int, int, str]], *, positions=None,
                         fwd_hooks: Sequence = ()) -> list:
    """Step 1 of path patching, batched over groups of senders: for each group g, run the clean
    prompts with the group's hook_z taken from `z_src` at `positions` and every other head
    frozen at its clean hook_z (MLPs and norms recompute), and record the receivers' q/k/v.
    Returns the hooks of step 2 for a batch `clean.repeat(len(sender_groups), 1)`: rows
    g*b ... (g+1)*b-1 get group g's recorded q/k/v at the receivers (every position: only the
    patched positions and those after them can differ) and compute everything else freely.

    z_clean, z_src: per layer [b, pos, head, d_head] (a list, or cache_z's stacked tensor).
    On grouped-query models a k or v receiver is the key/value head its query head shares."""
    groups = [[tuple(map(int, h)) for h in g] for g in sender_groups]
    qkv = [(int(a), int(b), c) for a, b, c in receivers]
    for g in groups:
        for sl, sh in g:
            for rl, rh, _ in qkv:
                if rl <= sl:
                    raise ValueError(f"receiver {rl}.{rh} is not after sender {sl}.{sh}")
    n, (b, s) = len(groups), clean.shape
    mask = position_mask(positions, b, s)
    last = max(r[0] for r in qkv)
    sites = sorted({(r[0], r[2]) for r in qkv})
    captured: dict[tuple[int, str], torch.Tensor] = {}

    def freeze(z, hook):
        layer = int(hook.name.split(".")[1])
        base = z_clean[layer].to(z.dtype)
        new = base.repeat(n, 1, 1, 1).view(n, b, s, *base.shape[2:]).clone()
        for i, g in enumerate(groups):
            for sl, sh in g:
                if sl == layer:
                    new[i, :, :, sh] = torch.where(mask[..., None], z_src[layer][:, :, sh].to(z.dtype), base[:, :, sh])
        return new.view(n * b, s, *base.shape[2:])

    def record(x, hook, key=None):
        captured[key] = x.detach().clone()
        return x

    def stop(z, hook):  # the last receiver layer's hook_z fires after its q, k and v
        raise _StopAfterReceivers

    hooks = list(fwd_hooks) + [(f"blocks.{layer}.attn.hook_z", freeze) for layer in range(last)]
    hooks += [(f"blocks.{rl}.attn.hook_{c}", functools.partial(record, key=(rl, c))) for rl, c in sites]
    hooks.append((f"blocks.{last}.attn.hook_z", stop))
    with torch.inference_mode():
        try:
            bridge.run_with_hooks(clean.repeat(n, 1), fwd_hooks=hooks, return_type=None)
        except _StopAfterReceivers:
            pass
    group = kv_group(bridge)
    by_site: dict[tuple[int, str], set[int]] = defaultdict(set)
    for rl, rh, c in qkv:
        by_site[(rl, c)].add(rh if c == "q" else rh // group)
    out = []
    for (rl, c), idx in sorted(by_site.items()):
        def patch(x, hook, key=(rl, c), idx=sorted(idx)):
            x = x.clone()
            x[:, :, idx] = captured[key][:, :, idx].to(x.dtype)
            return x
        out.append((f"blocks.{rl}.attn.hook_{c}", patch))
    return out


def head_output_delta(bridge, z_from, z_to, heads: Heads, post_scale=None, w_o: torch.Tensor | None = None) -> torch.Tensor:
    """What the residual stream gains when `heads`' hook_z changes from z_from to z_to, summed
    over the heads: sum of (z_to - z_from) W_O. z_*: per layer [..., head, d_head] (any leading
    shape, e.g. [b, pos] or one position [b]). Gemma-style blocks normalise the attention output
    before adding it: pass `post_scale` (per layer, the post-attention norm's hook_scale with
    z's leading shape, e.g. [b]) to apply that norm with its scale frozen (gain / scale).
    `w_o`: bridge.W_O, when the caller already holds it (reading it stacks every layer).
    -> [..., d_model]."""
    from headatlas.methods.weights import norm_gain

    w_o = bridge.W_O.detach() if w_o is None else w_o
    total = None
    for layer, head in heads:
        layer, head = int(layer), int(head)
        d = torch.einsum("...d,dm->...m", (z_to[layer][..., head, :] - z_from[layer][..., head, :]).float(),
                         w_o[layer, head].float())
        if post_scale is not None:
            gain = norm_gain(bridge.blocks[layer].ln1_post, d.shape[-1])
            d = d * gain / post_scale[layer].float()[..., None]
        total = d if total is None else total + d
    if total is None:
        raise ValueError("no heads given")
    return total


def path_patching(bridge, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric,
                  senders: Heads, receivers: Sequence[Receiver], *, positions=None, chunk: int = 4,
                  z_clean: torch.Tensor | None = None, z_corr: torch.Tensor | None = None) -> torch.Tensor:
    """Wang et al.'s path patching, one sender at a time (chunked): the effect of each sender head
    on the metric through the given receivers only. -> [n_senders] mean metric (clean run with
    only those paths carrying the corrupted sender).

    Receivers: (layer, head, "q"|"k"|"v") inputs of later heads, and/or "logits" (the sender's
    direct path to the unembedding). Step 1 (`receiver_patch_hooks`): run clean with the
    sender's hook_z from the corrupted prompts and every other head frozen at its clean hook_z
    (MLPs recompute), and record the receivers' q/k/v. Step 2: run clean with only those q/k/v
    replaced, plus, for "logits", the sender's output change (`head_output_delta`) added to the
    final residual stream, whose norm then recomputes.
    On grouped-query models, a k or v receiver is the key/value head its query head shares, so
    patching it reaches every query head of that group.
    """
    qkv, to_logits = _parse_receivers(receivers)
    senders = [tuple(map(int, s)) for s in senders]
    for (sl, sh) in senders:
        for (rl, rh, _) in qkv:
            if rl <= sl:
                raise ValueError(f"receiver {rl}.{rh} is not after sender {sl}.{sh}")
    z_clean = cache_z(bridge, clean) if z_clean is None else z_clean
    z_corr = cache_z(bridge, corrupted) if z_corr is None else z_corr
    b, s = clean.shape
    mask = position_mask(positions, b, s)
    out = []
    for start in range(0, len(senders), chunk):
        part = senders[start:start + chunk]
        k = len(part)
        hooks = receiver_patch_hooks(bridge, clean, z_clean, z_corr, [[h] for h in part], qkv,
                                     positions=positions) if qkv else []
        if to_logits:
            masked = [torch.where(mask[..., None, None], z_corr[layer], z_clean[layer]) for layer in range(len(z_clean))]
            delta = torch.stack([head_output_delta(bridge, z_clean, masked, [h]) for h in part])  # [k, b, s, d_model]

            def add(x, hook, delta=delta):
                return x + delta.reshape(k * b, s, -1).to(x.dtype)
            hooks.append(("ln_final.hook_in", add))
        with torch.inference_mode():
            logits = bridge.run_with_hooks(clean.repeat(k, 1), fwd_hooks=hooks).float()
            out += [metric(logits[i * b:(i + 1) * b]).mean() for i in range(k)]
            del logits
    return torch.stack(out)


def path_patching_senders(bridge, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric,
                          receivers: Sequence[Receiver], *, senders: Heads | None = None, positions=None,
                          chunk: int = 4) -> PatchingResult:
    """Path patching for every possible sender (heads in layers before the earliest receiver;
    every head for "logits" alone): [layer, head] grid of metrics, NaN where not a sender."""
    qkv, _ = _parse_receivers(receivers)
    first = min((r[0] for r in qkv), default=bridge.cfg.n_layers)
    senders = [h for h in all_heads(bridge) if h[0] < first] if senders is None else list(senders)
    z_clean, z_corr = cache_z(bridge, clean), cache_z(bridge, corrupted)
    vals = path_patching(bridge, clean, corrupted, metric, senders, receivers, positions=positions,
                         chunk=chunk, z_clean=z_clean, z_corr=z_corr)
    base = float(run_metric(bridge, clean, metric).mean())
    other = float(run_metric(bridge, corrupted, metric).mean())
    return PatchingResult(head_grid(bridge, senders, vals), base, other)


# ----------------------------------------------------------------------------- reading one key position


def value_at(bridge, tokens: torch.Tensor, key_pos: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, every query head's value vector at `key_pos` ([b, head, d_head], grouped
    key/value heads expanded) and attention column to it ([b, head, q]), from one pass."""
    n_layers, group = bridge.cfg.n_layers, kv_group(bridge)
    vs: list = [None] * n_layers
    cols: list = [None] * n_layers

    def keep_v(v, hook):
        vs[int(hook.name.split(".")[1])] = v[:, key_pos].detach().float().repeat_interleave(group, dim=1)
        return v

    def keep_col(p, hook):
        cols[int(hook.name.split(".")[1])] = p[..., key_pos].detach().float()
        return p

    hooks = []
    for layer in range(n_layers):
        hooks += [(f"blocks.{layer}.attn.hook_v", keep_v), (f"blocks.{layer}.attn.hook_pattern", keep_col)]
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    return vs, cols


def value_swap_estimate(bridge, tokens: torch.Tensor, source: torch.Tensor, key_pos: int, last_metric) -> torch.Tensor:
    """[layer, head] first-order estimate of how much last_metric drops when each head, keeping
    its attention pattern, reads at `key_pos` the value it would read on `source` (same length):
    -(sum over queries of A[q, key_pos] * (v_source - v)) . dmetric/dz[q]."""
    v_src, _ = value_at(bridge, source, key_pos)
    v, cols = value_at(bridge, tokens, key_pos)
    _, grads, _ = z_gradients(bridge, tokens, last_metric)
    return -torch.stack([torch.einsum("bhq,bhd,bqhd->h", cols[layer], v_src[layer] - v[layer], grads[layer].float())
                         for layer in range(bridge.cfg.n_layers)])


def value_swap_hooks(bridge, head_sets: torch.Tensor, n_prompts: int, key_pos: int, v_source: Sequence[torch.Tensor]) -> list:
    """Hooks for a batch that repeats n_prompts prompts once per head set ([n_sets, k, 2]): in
    the rows of set s, each of its heads reads at `key_pos` the value v_source[layer] ([n_prompts,
    head, d_head], from value_at on other prompts) instead of its own, with its attention pattern
    and everything else of the pass unchanged. Grouped key/value heads are swapped for the one
    query head only (its output is edited, not the shared value). Why: the content a head takes
    from one token is what a summary reader reads; patching its whole output would also move
    what it takes from every other token."""
    n_sets, group = head_sets.shape[0], kv_group(bridge)
    by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s in range(n_sets):
        for layer, head in head_sets[s].tolist():
            by_layer[layer].append((s, head))
    state: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)

    def keep(x, hook, layer=None, name=None):
        state[layer][name] = x.detach()
        return x

    hooks = []
    for layer, pairs in by_layer.items():
        def edit(z, hook, layer=layer, pairs=pairs):
            mask = torch.zeros(n_sets, z.shape[2], dtype=z.dtype, device=z.device)
            for s, head in pairs:
                mask[s, head] = 1
            mask = mask.repeat_interleave(n_prompts, 0)                            # [rows, head]
            v = state[layer]["v"][:, key_pos].repeat_interleave(group, dim=1)       # [rows, head, d]
            src = v_source[layer].to(z.dtype).repeat(n_sets, 1, 1)
            col = state[layer]["pattern"][..., key_pos]                             # [rows, head, q]
            delta = torch.einsum("rhq,rhd->rqhd", col * mask[..., None], src - v)
            return z + delta
        hooks += [(f"blocks.{layer}.attn.hook_v", functools.partial(keep, layer=layer, name="v")),
                  (f"blocks.{layer}.attn.hook_pattern", functools.partial(keep, layer=layer, name="pattern")),
                  (f"blocks.{layer}.attn.hook_z", edit)]
    return hooks
