"""The indirect-object-identification (IOI) circuit: name movers, their self-repair (backup name
movers), negative name movers, copy suppression and S-inhibition, measured on one shared IOI
dataset per data variant (Wang et al. 2022; McDougall et al. 2023).

Every IOI claim reads the same few forward passes per model and data variant (cached below):
the clean prompts (attention from END to the names, every head's direct logit attribution (DLA)
and how much of it comes through attending to each name), the ABC-corrupted prompts (their mean
head outputs are the mean-ablation values and their outputs the patching source), and a few
interventions (name movers or control heads ablated; path patching into the name movers'
queries). The claims differ only in what they read and check.

Direct logit attribution is exact here: with every norm's scale frozen at its value in the
forward pass (the final norm, and Gemma's post-attention norm), the final residual is a sum of
components, so a head's share of logit(IO) - logit(S) is its output at END mapped linearly to
the logits. Through which name it comes follows from the same linearity: a head's output at END
is the attention-weighted sum of its value vectors, so the term of the IO position is
attn(END -> IO) * DLA(value at IO) ("IO-copy DLA").
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from headatlas.prompts import ioi as ioi_prompts
from headatlas.claims import claim
from headatlas.methods import ov, scoring, weights
from headatlas.methods.scoring import fmt_head, parse_head, relative_depth

Head = tuple[int, int]


# ============================================================================ measurement library


class _Stop(Exception):
    """Raised from the unembedding's input hook: logits are computed only at END, afterwards."""


def _stop(x, hook):
    raise _Stop


def logit_direction(bridge, io: torch.Tensor, s: torch.Tensor, final_scale: torch.Tensor) -> torch.Tensor:
    """[b, d_model] d such that a residual-stream component c at END adds c . d to
    logit(IO) - logit(S) with the final norm's scale frozen: W_U[IO] - W_U[S] through the norm's
    gain and scale, centred for LayerNorm (its centring is linear: c - mean(c))."""
    w_u = bridge.W_U.detach().float()
    d = (w_u[:, io] - w_u[:, s]).T * weights.final_gain(bridge) / final_scale.reshape(-1, 1)
    if weights.is_layernorm(bridge):
        d = d - d.mean(-1, keepdim=True)
    return d


def has_post_attn_norm(bridge) -> bool:
    """Gemma-style blocks normalise the attention output before adding it to the residual."""
    return "blocks.0.ln1_post.hook_scale" in bridge.hook_dict


def _run(bridge, tokens: torch.Tensor, hooks: list) -> None:
    with torch.inference_mode():
        try:
            bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
        except _Stop:
            pass


@dataclass
class Pass:
    """What one forward pass over IOI prompts yields (per prompt)."""

    logit_diff: torch.Tensor   # [b] logit(IO) - logit(S) at END
    dla: torch.Tensor          # [b, layer, head] direct logit attribution to it
    dla_src: torch.Tensor      # [b, layer, head, 3] the part coming through attention to IO, S1, S2
    attn: torch.Tensor         # [b, layer, head, 3] attention from END to IO, S1, S2
    z_end: list                # per layer [b, head, d_head]: outputs at END
    z_all: list | None = None  # per layer [b, pos, head, d_head] when asked for
    scales: dict = field(default_factory=dict)
    upstream: torch.Tensor | None = None  # [b, layer, head, 3] attention S2->S1, S2->S1+1, S1+1->S1

    def mean(self, name: str) -> torch.Tensor:
        return getattr(self, name).mean(0)


def ioi_pass(bridge, d: ioi_prompts.IOIData, tokens: torch.Tensor | None = None, fwd_hooks: Sequence = (),
             keep_z: bool = False) -> Pass:
    """One forward pass over the clean prompts (or `tokens`, same template and positions) under
    `fwd_hooks`; logits only at END."""
    tokens = d.clean if tokens is None else tokens
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    b, end = tokens.shape[0], d.end
    idx = torch.arange(b)
    slots = [d.io_pos, d.s1_pos, d.s2_pos]
    post = has_post_attn_norm(bridge)
    st: dict[str, Any] = {"z": [None] * n_layers, "att": [None] * n_layers, "v": [None] * n_layers,
                          "post": [None] * n_layers, "zall": [None] * n_layers}

    def layer_of(hook) -> int:
        return int(hook.name.split(".")[1])

    def k_pattern(p, hook):
        row = p[:, :, end].float()                                            # [b, head, key]
        st["att"][layer_of(hook)] = torch.stack([row[idx, :, q] for q in slots], -1)
        # Rows the upstream classes are read from: duplicate-token (S2 -> S1), induction
        # (S2 -> S1+1) and previous-token (S1+1 -> S1) attention.
        st.setdefault("up", [None] * n_layers)[layer_of(hook)] = torch.stack(
            [p[idx, :, d.s2_pos, d.s1_pos], p[idx, :, d.s2_pos, d.s1_pos + 1], p[idx, :, d.s1_pos + 1, d.s1_pos]], -1).float()
        return p

    def k_v(v, hook):
        vv = torch.stack([v[idx, q] for q in slots], 1).float()               # [b, 3, kv, d_head]
        g = n_heads // vv.shape[2]
        st["v"][layer_of(hook)] = vv.repeat_interleave(g, dim=2) if g > 1 else vv
        return v

    def k_z(z, hook):
        st["z"][layer_of(hook)] = z[:, end].detach().float().clone()
        if keep_z:
            st["zall"][layer_of(hook)] = z.detach().clone()
        return z

    def k_post(x, hook):
        st["post"][layer_of(hook)] = x[:, end].detach().float().clone()
        return x

    def k_final_scale(x, hook):
        st["final"] = x[:, end].detach().float().clone()
        return x

    def k_resid(x, hook):
        st["resid"] = x[:, end].detach().clone()
        raise _Stop

    hooks = list(fwd_hooks)
    for layer in range(n_layers):
        hooks += [(f"blocks.{layer}.attn.hook_pattern", k_pattern), (f"blocks.{layer}.attn.hook_v", k_v),
                  (f"blocks.{layer}.attn.hook_z", k_z)]
        if post:
            hooks.append((f"blocks.{layer}.ln1_post.hook_scale", k_post))
    hooks += [("ln_final.hook_scale", k_final_scale), ("unembed.hook_in", k_resid)]
    _run(bridge, tokens, hooks)
    with torch.inference_mode():
        logits = bridge.unembed(st["resid"][:, None])[:, 0].float()
        ld = logits[idx, d.io] - logits[idx, d.s]
        w_o = weights.head_weights(bridge)["W_O"].float()                     # [layer, head, d_head, d_model]
        d_model = w_o.shape[-1]
        direction = logit_direction(bridge, d.io, d.s, st["final"])          # [b, d_model]
        dla, src = [], []
        for layer in range(n_layers):
            out = torch.einsum("bhd,hdm->bhm", st["z"][layer], w_o[layer])
            vout = torch.einsum("bphd,hdm->bphm", st["v"][layer], w_o[layer])  # [b, 3, head, d_model]
            if post:
                g = weights.norm_gain(bridge.blocks[layer].ln1_post, d_model) / st["post"][layer].reshape(b, 1)
                out = out * g[:, None]
                vout = vout * g[:, None, None]
            dla.append((out * direction[:, None]).sum(-1))
            src.append((vout * direction[:, None, None]).sum(-1).transpose(1, 2) * st["att"][layer])
    return Pass(ld, torch.stack(dla, 1), torch.stack(src, 1), torch.stack(st["att"], 1), st["z"],
                st["zall"] if keep_z else None, {"final": st["final"], "post": st["post"] if post else None},
                torch.stack(st["up"], 1))


def z_outputs(bridge, tokens: torch.Tensor) -> list:
    """Every head's hook_z at every position, per layer [b, pos, head, d_head]."""
    n_layers = bridge.cfg.n_layers
    store: list = [None] * n_layers

    def keep(z, hook):
        store[int(hook.name.split(".")[1])] = z.detach().clone()
        return z

    _run(bridge, tokens, [(f"blocks.{layer}.attn.hook_z", keep) for layer in range(n_layers)] + [("unembed.hook_in", _stop)])
    return store


def replace_z_hooks(heads: Sequence[Head], values: list, position: int | None = None) -> list:
    """Hooks setting the heads' hook_z to values[layer] ([b or 1, pos, head, d_head]) at every
    position, or only at `position`."""
    by_layer: dict[int, list[int]] = defaultdict(list)
    for layer, head in heads:
        by_layer[int(layer)].append(int(head))
    hooks = []
    for layer, hs in by_layer.items():
        def replace(z, hook, layer=layer, hs=hs):
            z = z.clone()
            v = values[layer].to(z.dtype)
            if position is None:
                z[:, :, hs] = v[:, :, hs].expand(z.shape[0], -1, -1, -1)
            else:
                z[:, position, hs] = v[:, position, hs].expand(z.shape[0], -1, -1)
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", replace))
    return hooks


def direct_effect(bridge, clean: Pass, d: ioi_prompts.IOIData, heads: Sequence[Head], source: list) -> float:
    """Path patching into the logits only (Wang et al.'s test for name movers), with the norms'
    scales frozen at their clean values: the mean drop of logit(IO) - logit(S) when the heads'
    outputs at END reach the unembedding as they are on the source prompts (per prompt; same
    template and positions) instead of as on the clean ones. Exact and linear, so one clean pass
    and the source's outputs suffice."""
    with torch.inference_mode():
        w_o = weights.head_weights(bridge)["W_O"].float()
        d_model = w_o.shape[-1]
        b = d.n
        direction = logit_direction(bridge, d.io, d.s, clean.scales["final"])
        total = torch.zeros(b)
        for layer, head in heads:
            delta = (clean.z_end[layer][:, head] - source[layer][:, d.end, head].float()) @ w_o[layer, head]
            if clean.scales["post"] is not None:
                delta = delta * weights.norm_gain(bridge.blocks[layer].ln1_post, d_model) / clean.scales["post"][layer].reshape(b, 1)
            total += (delta * direction).sum(-1)
    return float(total.mean())


def path_patch_queries(bridge, d: ioi_prompts.IOIData, clean_z: list, source_z: list, senders: Sequence[Head],
                       receivers: Sequence[Head]) -> Pass:
    """Wang et al.'s path patching from a group of senders into the receivers' queries at END:
    (1) run the clean prompts with the senders' outputs at END taken from the source prompts and
    every other head frozen at its clean output, and record the receivers' queries at END;
    (2) run the clean prompts with only those queries replaced, everything else computed freely.
    Returns the second pass (logit difference, DLA, attention of every head)."""
    end = d.end
    send = defaultdict(list)
    for layer, head in senders:
        send[int(layer)].append(int(head))
    recv = defaultdict(list)
    for layer, head in receivers:
        recv[int(layer)].append(int(head))
    last = max(recv)
    captured: dict[int, torch.Tensor] = {}

    def freeze(z, hook):
        layer = int(hook.name.split(".")[1])
        new = clean_z[layer].to(z.dtype).clone()
        for h in send.get(layer, []):
            new[:, end, h] = source_z[layer][:, end, h].to(z.dtype)
        return new

    def record(q, hook):
        layer = int(hook.name.split(".")[1])
        captured[layer] = q[:, end].detach().clone()
        if layer == last:
            raise _Stop
        return q

    hooks = [(f"blocks.{layer}.attn.hook_z", freeze) for layer in range(last)]
    hooks += [(f"blocks.{layer}.attn.hook_q", record) for layer in sorted(recv)]
    _run(bridge, d.clean, hooks)

    def patch(q, hook):
        layer = int(hook.name.split(".")[1])
        q = q.clone()
        q[:, end, recv[layer]] = captured[layer][:, recv[layer]].to(q.dtype)
        return q

    return ioi_pass(bridge, d, fwd_hooks=[(f"blocks.{layer}.attn.hook_q", patch) for layer in recv])


def top_by(score: torch.Tensor, k: int, allowed=None) -> list[Head]:
    """The k (layer, head) with the highest score (optionally among `allowed`), best first."""
    n_heads = score.shape[1]
    out = []
    for i in torch.argsort(score.flatten(), descending=True).tolist():
        h = (i // n_heads, i % n_heads)
        if allowed is None or h in allowed:
            out.append(h)
        if len(out) == k:
            break
    return out


def ov_self_zscores(bridge, token_ids: torch.Tensor, heads: Sequence[Head] | None = None) -> torch.Tensor:
    """For every head, the mean over tokens of the z-score of a token's own logit within the row
    of logits the head's OV circuit writes when it attends fully to that token (McDougall et
    al.'s copy-suppression test: strongly negative = suppresses what it attends to; strongly
    positive = copies it). Token input: the residual after block 0 for the token alone
    (weights.effective_embedding); the head's own input norm, W_V W_O, Gemma's post-attention
    norm gain and the final norm's gain are applied (positive per-row scales do not change
    z-scores). -> [layer, head] (NaN for heads not asked for)."""
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    want = None if heads is None else {(int(a), int(b)) for a, b in heads}
    out = torch.full((n_layers, n_heads), float("nan"))
    resid = weights.effective_embedding(bridge, ids)
    w = weights.head_weights(bridge)
    d_model = resid.shape[-1]
    w_u = bridge.W_U.detach()[:, ids].float() * weights.final_gain(bridge)[:, None]
    if weights.is_layernorm(bridge):
        w_u = w_u - w_u.mean(0, keepdim=True)
    post = has_post_attn_norm(bridge)
    with torch.inference_mode():
        for layer in range(n_layers):
            hs = [h for h in range(n_heads) if want is None or (layer, h) in want]
            if not hs:
                continue
            x = bridge.blocks[layer].ln1(resid).float()
            v = torch.einsum("nm,hmd->hnd", x, w["W_V"][layer, hs].float()) + w["b_V"][layer, hs][:, None].float()
            o = torch.einsum("hnd,hdm->hnm", v, w["W_O"][layer, hs].float())
            if post:
                o = o * weights.norm_gain(bridge.blocks[layer].ln1_post, d_model)
            logits = o @ w_u                                                  # [h, n, n]
            diag = logits.diagonal(dim1=-2, dim2=-1)
            z = (diag - logits.mean(-1)) / logits.std(-1).clamp(min=1e-12)
            out[layer, hs] = z.mean(-1)
    return out


# ============================================================================ the shared analysis


def _key(model, data: dict, params: dict | None = None) -> tuple:
    return (model.name, json.dumps(data, sort_keys=True), json.dumps(params or {}, sort_keys=True))


_CACHE: dict[tuple, Any] = {}


def _cached(kind: str, key: tuple, make):
    k = (kind,) + key
    if k not in _CACHE:
        _CACHE[k] = make()
    return _CACHE[k]


@dataclass
class Base:
    """Clean and corrupted passes of one data variant: everything the scoring claims read."""

    data: ioi_prompts.IOIData
    clean: Pass
    corrupted_z: list          # per layer [b, pos, head, d_head] on the ABC prompts
    means: list                # per layer [1, pos, head, d_head] ABC means (mean-ablation values)
    ld_corrupted: float

    @property
    def ld(self) -> float:
        return float(self.clean.logit_diff.mean())

    @property
    def dla(self) -> torch.Tensor:
        return self.clean.mean("dla")

    @property
    def io_copy(self) -> torch.Tensor:
        """[layer, head] DLA through attention to the IO token: the name-mover score."""
        return self.clean.mean("dla_src")[..., 0]

    @property
    def attn(self) -> torch.Tensor:
        return self.clean.mean("attn")


def base(model, data: dict) -> Base:
    def make():
        d = ioi_prompts.from_spec(model, data)
        clean = ioi_pass(model.bridge, d, keep_z=True)
        corrupted = ioi_pass(model.bridge, d, tokens=d.corrupted, keep_z=True)
        means = [z.mean(0, keepdim=True) for z in corrupted.z_all]
        return Base(d, clean, corrupted.z_all, means, float(corrupted.logit_diff.mean()))
    return _cached("base", _key(model, data), make)


def name_movers(b: Base, k: int) -> list[Head]:
    """The k heads with the largest positive IO-copy DLA."""
    return top_by(b.io_copy, k)


def negative_name_movers(b: Base, k: int) -> list[Head]:
    """The k heads with the most negative IO-copy DLA."""
    return top_by(-b.io_copy, k)


def quiet_heads(b: Base, below: float, exclude: Sequence[Head], min_layer: int = 0) -> list[Head]:
    """Heads from layer `min_layer` on whose |DLA| and |IO-copy DLA| are below `below` x the
    logit difference: candidates for a control that has no direct effect."""
    lim = below * abs(b.ld)
    n_layers, n_heads = b.dla.shape
    return [(layer, head) for layer in range(min_layer, n_layers) for head in range(n_heads)
            if (layer, head) not in exclude and abs(float(b.dla[layer, head])) < lim
            and abs(float(b.io_copy[layer, head])) < lim]


def ablated(model, data: dict, heads: Sequence[Head]) -> Pass:
    """The clean prompts with `heads` mean-ablated (ABC means, every position)."""
    heads = tuple(sorted(heads))

    def make():
        b = base(model, data)
        return ioi_pass(model.bridge, b.data, fwd_hooks=replace_z_hooks(heads, b.means))
    return _cached("ablated", _key(model, data, {"heads": heads}), make)


def query_patched(model, data: dict, senders: Sequence[Head], receivers: Sequence[Head]) -> Pass:
    senders, receivers = tuple(sorted(senders)), tuple(sorted(receivers))

    def make():
        b = base(model, data)
        return path_patch_queries(model.bridge, b.data, b.clean.z_all, b.corrupted_z, senders, receivers)
    return _cached("query", _key(model, data, {"s": senders, "r": receivers}), make)


def heads_str(heads: Sequence[Head]) -> list[str]:
    return [fmt_head(*h) for h in heads]


def depth(heads: Sequence[Head], n_layers: int) -> float:
    return statistics.median(relative_depth(layer, n_layers) for layer, _ in heads)


def _mean_at(x: torch.Tensor, heads: Sequence[Head]) -> float:
    return float(torch.stack([x[h] for h in heads]).mean())


def _sum_at(x: torch.Tensor, heads: Sequence[Head]) -> float:
    return float(torch.stack([x[h] for h in heads]).sum())


def attention_example(model, d: ioi_prompts.IOIData, head: Head, prompt: int = 0) -> dict:
    """One clean prompt's attention pattern of one head, for the site's plot."""
    layer, h = head
    store = {}

    def keep(p, hook):
        store["p"] = p[0, h].detach().float().clone()
        raise _Stop

    _run(model.bridge, d.clean[prompt: prompt + 1], [(f"blocks.{layer}.attn.hook_pattern", keep)])
    return {"tokens": d.strings(model.tokenizer, prompt), "pattern": [[round(float(x), 4) for x in row] for row in store["p"]],
            "head": fmt_head(layer, h)}


def _ioi_context(run, b: Base) -> None:
    """Values every IOI claim records, so the site can show the task was solved."""
    run.measure(logit_diff=b.ld, logit_diff_corrupted=b.ld_corrupted,
                accuracy=float((b.clean.logit_diff > 0).float().mean()))


# ============================================================================ name movers


def _name_mover_scoring(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    k = int(p["name_movers"])
    nms = name_movers(b, k)
    ctrl = scoring.random_heads(model.n_layers, model.n_heads, k, int(p["control_seed"]), exclude=nms)
    att = b.attn
    io_minus_s = att[..., 0] - att[..., 1] - att[..., 2]
    run.measure(nm_attention_io=_mean_at(att[..., 0], nms), control_attention_io=_mean_at(att[..., 0], ctrl),
                nm_io_minus_s=_mean_at(io_minus_s, nms),
                nm_dla_share=_sum_at(b.dla, nms) / b.ld, control_dla_share=_sum_at(b.dla, ctrl) / b.ld,
                nm_depth=depth(nms, model.n_layers))
    if run.is_primary:
        run.artifact(scores=(b.io_copy / b.ld).tolist(),
                     score_name="IO-copy direct logit attribution (share of logit(IO) - logit(S))",
                     top_heads=heads_str(nms), control_heads=heads_str(ctrl),
                     attention_example=attention_example(model, b.data, nms[0]),
                     circuit=ioi_circuit(model, run.data, p))


def ioi_circuit(model, data: dict, p: dict) -> dict[str, list[str]]:
    """The IOI circuit's classes as found on this model and data (GPT-2's class names, so the
    site can set it beside catalogue/circuits.yaml). Name movers and negative name movers are the
    heads the claims below test. S-inhibition: the candidates (END -> S2 attention) whose own
    path patching into the name movers' queries lowers the logit difference by at least
    `sinh_min_effect` of it. Backup name movers: heads that did not push the IO down on clean
    prompts (IO-copy term >= 0) and whose IO-copy term rises by at least `backup_min_rise` of the
    logit difference when the name movers are mean-ablated (a negative name mover that merely
    suppresses less is not counted). Upstream classes: heads with at least
    `upstream_min_attention` of their attention on their pattern (S2 -> S1 duplicate token,
    S2 -> S1+1 induction, S1+1 -> S1 previous token) in the layers before the S-inhibition
    candidates, at most 3 each."""
    b = base(model, data)
    k = int(p["name_movers"])
    nms = name_movers(b, k)
    nnm = negative_name_movers(b, int(p["negative_name_movers"]))
    cands = s_inhibition_candidates(b, nms, int(p["s_inhibition"]))
    sinh = [h for h, e in zip(cands, s_inhibition_effects(model, data, cands, nms))
            if e >= float(p["sinh_min_effect"])]
    rise = backup_copy_rise(model, data, b, nms)
    backups = [h for h in top_by(rise, 5) if float(rise[h]) >= float(p["backup_min_rise"])]
    up = b.clean.upstream.mean(0)                                   # [layer, head, 3]
    first = min(layer for layer, _ in cands)
    lim = float(p["upstream_min_attention"])

    def upstream(i: int) -> list[str]:
        score = up[..., i].clone()
        score[first:] = -1
        return heads_str([h for h in top_by(score, 3) if float(score[h]) >= lim])

    return {"name mover": heads_str(nms), "backup name mover": heads_str(backups),
            "negative name mover": heads_str(nnm), "S-inhibition": heads_str(sinh),
            "induction": upstream(1), "duplicate token": upstream(0), "previous token": upstream(2)}


@claim("name-mover-scoring")
def test_name_movers(run):
    for _ in run.variants():
        _name_mover_scoring(run)
    run.conclude()


def _name_mover_path_patching(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    k = int(p["name_movers"])
    nms = name_movers(b, k)
    ctrl = scoring.random_heads(model.n_layers, model.n_heads, k, int(p["control_seed"]), exclude=nms)
    share = direct_effect(model.bridge, b.clean, b.data, nms, b.corrupted_z) / b.ld
    run.measure(nm_direct_effect_share=share,
                control_direct_effect_share=direct_effect(model.bridge, b.clean, b.data, ctrl, b.corrupted_z) / b.ld)
    if run.is_primary:
        each = [direct_effect(model.bridge, b.clean, b.data, [h], b.corrupted_z) / b.ld for h in nms + ctrl]
        run.artifact(top_heads=heads_str(nms), control_heads=heads_str(ctrl),
                     effects={"labels": heads_str(nms) + ["name movers together"] + [f"{h} (control)" for h in heads_str(ctrl)],
                              "values": each[:k] + [share] + each[k:],
                              "ylabel": "share of logit(IO) - logit(S) removed by path patching into the logits"})


@claim("name-mover-path-patching")
def test_name_movers_direct_path(run):
    for _ in run.variants():
        _name_mover_path_patching(run)
    run.conclude()


# ============================================================================ backup name movers (self-repair)


def same_depth_control(model, b: Base, nms: Sequence[Head], p: dict, k: int) -> list[Head]:
    """Random heads from the name movers' first layer on whose direct effect and IO-copy term are
    both below `quiet_below` of the logit difference: ablating them removes as little direct
    effect as possible at the same depth, without touching the heads upstream that feed the
    name movers (ablating those changes the name movers' input, a different experiment)."""
    first = min(layer for layer, _ in nms)
    exclude = list(nms) + negative_name_movers(b, int(p["negative_name_movers"]))
    quiet = set(quiet_heads(b, float(p["quiet_below"]), exclude, min_layer=first))
    return scoring.random_heads(model.n_layers, model.n_heads, k, int(p["control_seed"]), where=lambda *h: h in quiet)


def backup_copy_rise(model, data: dict, b: Base, nms: Sequence[Head]) -> torch.Tensor:
    """[layer, head] rise of each head's IO-copy term when the name movers are mean-ablated, as a
    share of the logit difference, for heads whose clean IO-copy term is >= 0 (-inf elsewhere and
    for the name movers): how much a head starts copying the IO, Wang et al.'s backup name
    movers, as opposed to a negative name mover suppressing it less."""
    rise = (ablated(model, data, nms).mean("dla_src")[..., 0] - b.io_copy) / b.ld
    rise[b.io_copy < 0] = float("-inf")
    for h in nms:
        rise[h] = float("-inf")
    return rise


def _self_repair(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    k = int(p["name_movers"])
    nms = name_movers(b, k)
    ctrl = same_depth_control(model, b, nms, p, k)
    abl, cabl = ablated(model, run.data, nms), ablated(model, run.data, ctrl)
    direct = direct_effect(model.bridge, b.clean, b.data, nms, b.means)     # what ablation removes directly
    total = b.ld - float(abl.logit_diff.mean())
    rise = abl.mean("dla") - b.dla
    crise = cabl.mean("dla") - b.dla
    for h in nms:
        rise[h] = 0.0
    for h in ctrl:
        crise[h] = 0.0
    pos_rise = rise.clamp(min=0)
    negative_before = b.dla < 0
    run.measure(direct_effect_share=direct / b.ld, total_effect_share=total / b.ld,
                compensation=1.0 - total / direct,
                rise_share=float(pos_rise.sum()) / b.ld, control_rise_share=float(crise.clamp(min=0).sum()) / b.ld,
                rise_from_negative_heads=float(pos_rise[negative_before].sum() / pos_rise.sum().clamp(min=1e-9)),
                backup_copy_rise_share=float(backup_copy_rise(model, run.data, b, nms).max()))
    if run.is_primary:
        top = top_by(rise, 5)
        run.artifact(scores=(rise / b.ld).tolist(),
                     score_name="rise of direct logit attribution when the name movers are mean-ablated (share of logit difference)",
                     top_heads=heads_str(top), ablated_heads=heads_str(nms), control_heads=heads_str(ctrl),
                     effects={"labels": [f"{h} ({'negative' if float(b.dla[parse_head(h)]) < 0 else 'positive'} before)" for h in heads_str(top)],
                              "values": [float(rise[h]) / b.ld for h in top],
                              "ylabel": "rise of direct effect after ablating the name movers (share of logit difference)"})


@claim("backup-name-mover-self-repair")
def test_self_repair(run):
    for _ in run.variants():
        _self_repair(run)
    run.conclude()


# ============================================================================ negative name movers, copy suppression


def _negative_name_mover(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    nnm = negative_name_movers(b, int(p["negative_name_movers"]))
    ctrl = scoring.random_heads(model.n_layers, model.n_heads, int(p["control_heads"]), int(p["control_seed"]), exclude=nnm)
    run.measure(nnm_attention_io=_mean_at(b.attn[..., 0], nnm), control_attention_io=_mean_at(b.attn[..., 0], ctrl),
                nnm_io_copy_share=_mean_at(b.io_copy, nnm) / b.ld, control_io_copy_share=_mean_at(b.io_copy, ctrl) / b.ld,
                nnm_dla_share=_mean_at(b.dla, nnm) / b.ld, nnm_depth=depth(nnm, model.n_layers))
    if run.is_primary:
        run.artifact(scores=(-b.io_copy / b.ld).tolist(),
                     score_name="negative IO-copy direct logit attribution (share of logit difference removed)",
                     top_heads=heads_str(negative_name_movers(b, 3)), control_heads=heads_str(ctrl),
                     attention_example=attention_example(model, b.data, nnm[0]))


@claim("negative-name-mover-scoring")
def test_negative_name_movers(run):
    for _ in run.variants():
        _negative_name_mover(run)
    run.conclude()


def vocab_sample(model, p: dict) -> torch.Tensor:
    return ov.default_vocab_sample(model.tokenizer, model.bridge.cfg.d_vocab, n=int(p["vocab_n"]), seed=int(p["vocab_seed"]))


def ov_scores(model, p: dict) -> torch.Tensor:
    """Own-token OV z-scores of every head over the vocabulary sample (weights only; cached)."""
    return _cached("ov", _key(model, {}, {"n": p["vocab_n"], "seed": p["vocab_seed"]}),
                   lambda: ov_self_zscores(model.bridge, vocab_sample(model, p)))


def _copy_suppression_ov(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    (nnm,) = negative_name_movers(b, 1)
    z = ov_scores(model, p)
    ctrl = scoring.random_heads(model.n_layers, model.n_heads, int(p["control_heads"]), int(p["control_seed"]), exclude=[nnm])
    nms = name_movers(b, int(p["name_movers"]))
    run.measure(nnm_ov_self_z=float(z[nnm]), control_ov_self_z=_mean_at(z, ctrl),
                nnm_ov_rank=int((z < z[nnm]).sum()) + 1, name_mover_ov_self_z=_mean_at(z, nms))
    if run.is_primary:
        run.artifact(scores=z.tolist(), score_name="OV own-token logit z-score (negative = suppresses the attended token)",
                     top_heads=heads_str(top_by(-z, 5)), negative_name_mover=fmt_head(*nnm),
                     control_heads=heads_str(ctrl),
                     effects={"labels": [f"{fmt_head(*nnm)} (negative name mover)"] + [f"{h} (name mover)" for h in heads_str(nms)]
                              + [f"{h} (control)" for h in heads_str(ctrl)],
                              "values": [float(z[nnm])] + [float(z[h]) for h in nms] + [float(z[h]) for h in ctrl],
                              "ylabel": "OV own-token logit z-score"})


@claim("copy-suppression-ov")
def test_copy_suppression_ov(run):
    for _ in run.variants():
        _copy_suppression_ov(run)
    run.conclude()


def _copy_suppression_prediction(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    k = int(p["name_movers"])
    nms = name_movers(b, k)
    (nnm,) = negative_name_movers(b, 1)
    ctrl = same_depth_control(model, b, nms, p, k)
    before = float(b.attn[nnm][0])
    after = float(ablated(model, run.data, nms).mean("attn")[nnm][0])
    after_ctrl = float(ablated(model, run.data, ctrl).mean("attn")[nnm][0])
    run.measure(nnm_attention_io=before, attention_ratio=after / before, control_attention_ratio=after_ctrl / before)
    if run.is_primary:
        run.artifact(negative_name_mover=fmt_head(*nnm), ablated_heads=heads_str(nms), control_heads=heads_str(ctrl),
                     effects={"labels": ["clean", "name movers ablated", "control heads ablated"],
                              "values": [before, after, after_ctrl],
                              "ylabel": f"attention of {fmt_head(*nnm)} from END to the IO"})


@claim("copy-suppression-prediction")
def test_copy_suppression_follows_the_prediction(run):
    for _ in run.variants():
        _copy_suppression_prediction(run)
    run.conclude()


# ============================================================================ S-inhibition


def s_inhibition_candidates(b: Base, nms: Sequence[Head], k: int) -> list[Head]:
    """The k heads in the layers before the first name mover that attend most from END to S2."""
    first = min(layer for layer, _ in nms)
    s2 = b.attn[..., 2].clone()
    s2[first:] = -1
    return top_by(s2, k)


def s_inhibition_effects(model, data: dict, cands: Sequence[Head], nms: Sequence[Head]) -> list[float]:
    """Each candidate alone, path-patched into the name movers' queries: share of the logit
    difference lost."""
    b = base(model, data)
    return [1.0 - float(query_patched(model, data, [h], nms).logit_diff.mean()) / b.ld for h in cands]


def _nm_preference(pas: Pass, nms: Sequence[Head]) -> float:
    a = pas.mean("attn")
    return _mean_at(a[..., 0] - a[..., 1] - a[..., 2], nms)


def _s_inhibition(run) -> None:
    model, p = run.model, run.params
    b = base(model, run.data)
    _ioi_context(run, b)
    nms = name_movers(b, int(p["name_movers"]))
    k = int(p["s_inhibition"])
    sinh = s_inhibition_candidates(b, nms, k)
    first = min(layer for layer, _ in nms)
    ctrl = scoring.random_heads(model.n_layers, model.n_heads, k, int(p["control_seed"]), exclude=sinh,
                                where=lambda layer, _: layer < first)
    patched, cpatched = query_patched(model, run.data, sinh, nms), query_patched(model, run.data, ctrl, nms)
    copy0 = _sum_at(b.io_copy, nms)

    def copy_drop(pas):
        return 1.0 - _sum_at(pas.mean("dla_src")[..., 0], nms) / copy0

    run.measure(sinh_attention_s2=_mean_at(b.attn[..., 2], sinh), nm_preference_clean=_nm_preference(b.clean, nms),
                nm_preference_patched=_nm_preference(patched, nms), control_nm_preference_patched=_nm_preference(cpatched, nms),
                nm_io_copy_drop=copy_drop(patched), control_nm_io_copy_drop=copy_drop(cpatched),
                ld_drop_share=1.0 - float(patched.logit_diff.mean()) / b.ld,
                control_ld_drop_share=1.0 - float(cpatched.logit_diff.mean()) / b.ld,
                sinh_depth=depth(sinh, model.n_layers))
    if run.is_primary:
        each = s_inhibition_effects(model, run.data, sinh, nms)
        run.artifact(scores=b.attn[..., 2].tolist(), score_name="attention from END to the repeated subject S2",
                     top_heads=heads_str(sinh), receivers=heads_str(nms), control_heads=heads_str(ctrl),
                     attention_example=attention_example(model, b.data, sinh[0]),
                     effects={"labels": heads_str(sinh) + ["together", "control heads together"],
                              "values": each + [1.0 - float(patched.logit_diff.mean()) / b.ld,
                                                1.0 - float(cpatched.logit_diff.mean()) / b.ld],
                              "ylabel": "share of logit difference lost, path patching into the name movers' queries"})


@claim("inhibition-path-patching")
def test_s_inhibition(run):
    for _ in run.variants():
        _s_inhibition(run)
    run.conclude()


# ============================================================================ GPT-2 small replication


def published_score(model, data: dict, p: dict) -> tuple[torch.Tensor, str]:
    """[layer, head] score the published heads should top, and its name:
    dla: DLA on logit(IO) - logit(S) as a share of it (name movers);
    negative-dla: minus that (negative name movers);
    ov-suppression: minus the OV own-token z-score over a vocabulary sample (copy suppression)."""
    kind = p["score"]
    if kind in ("dla", "negative-dla"):
        b = base(model, data)
        share = b.dla / b.ld
        return (share, "direct logit attribution (share of logit difference)") if kind == "dla" else \
            (-share, "negative direct logit attribution (share of logit difference)")
    if kind == "ov-suppression":
        return -ov_scores(model, {**p, **data}), "minus the OV own-token logit z-score"
    raise ValueError(f"unknown published-head score {kind!r}")


def published_heads_check(model, data: dict, p: dict) -> tuple[dict[str, float], dict[str, Any]]:
    """Rank and score of each published head under `published_score`, and the same for as many
    random other heads (the control). Ranks are 1-based, 1 = highest score."""
    score, name = published_score(model, data, p)
    n_layers, n_heads = score.shape
    heads = [parse_head(h) for h in p["published"]]
    for layer, head in heads:
        if layer >= n_layers or head >= n_heads:
            raise ValueError(f"published head {layer}.{head} does not exist in a {n_layers}x{n_heads} model")
    ctrl = scoring.random_heads(n_layers, n_heads, len(heads), int(p["control_seed"]), exclude=heads)

    def rank(h):
        return int((score > score[h]).sum()) + 1

    measured = {"worst_published_rank": max(rank(h) for h in heads), "control_worst_rank": max(rank(h) for h in ctrl),
                "weakest_published_score": min(float(score[h]) for h in heads),
                "control_weakest_score": min(float(score[h]) for h in ctrl)}
    artifacts = {"scores": score.tolist(), "score_name": name, "published_heads": list(p["published"]),
                 "published_ranks": [rank(h) for h in heads], "control_heads": heads_str(ctrl),
                 "top_heads": heads_str(top_by(score, 10))}
    return measured, artifacts


def _replicate(run) -> None:
    for _ in run.variants():
        measured, artifacts = published_heads_check(run.model, run.data, run.params)
        run.measure(**measured)
        if run.is_primary:
            run.artifact(**artifacts)
    run.conclude()


@claim("name-mover-gpt2-published")
def test_gpt2_name_movers(run):
    _replicate(run)


@claim("negative-name-mover-gpt2-published")
def test_gpt2_negative_name_movers(run):
    _replicate(run)


@claim("copy-suppression-gpt2-published")
def test_gpt2_copy_suppression(run):
    _replicate(run)
