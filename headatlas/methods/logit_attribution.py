"""Direct logit attribution (DLA) and logit-difference metrics.

A head's direct effect on the logit difference between two tokens is its output at the read
position, passed through the final norm with that position's scale frozen at its value in the
forward pass (so the map is linear and components add up), dotted with W_U[:, correct] -
W_U[:, wrong]. Name-mover and copy-suppression heads are found this way (Wang et al. 2022;
McDougall et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.methods.weights import (final_ln_linear, has_post_attn_norm, head_weights, is_layernorm,  # noqa: F401
                                       optional_param)


def _at(x: torch.Tensor, position) -> torch.Tensor:
    """x [batch, pos, ...] read at one position per prompt (int, or [batch] tensor)."""
    if isinstance(position, int):
        return x[:, position]
    return x[torch.arange(x.shape[0]), torch.as_tensor(position)]


def logit_diff(logits: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor, position=-1) -> torch.Tensor:
    """logit[correct] - logit[wrong] at the read position: [batch]."""
    last = _at(logits, position)
    idx = torch.arange(last.shape[0])
    return last[idx, correct] - last[idx, wrong]


def logit_diff_metric(correct: torch.Tensor, wrong: torch.Tensor, position=-1):
    """A metric for patching/ablation: logits -> logit difference per prompt."""
    return lambda logits: logit_diff(logits, correct, wrong, position)


def prob_metric(correct: torch.Tensor, position=-1):
    """Probability of the correct token per prompt."""
    def metric(logits):
        p = _at(logits, position).softmax(-1)
        return p[torch.arange(p.shape[0]), correct]
    return metric


@dataclass
class DLA:
    heads: torch.Tensor      # [layer, head]
    attn_bias: torch.Tensor  # [layer] b_O
    mlp: torch.Tensor        # [layer]
    embed: float             # token (+ positional) embedding
    norm_bias: float         # final LayerNorm bias (0 for RMSNorm)
    unembed_bias: float      # b_U difference
    logit_diff: float        # the model's actual mean logit difference

    @property
    def total(self) -> float:
        """Sum of every component: equals logit_diff (the check that nothing was left out)."""
        return float(self.heads.sum() + self.attn_bias.sum() + self.mlp.sum()) + self.embed + \
            self.norm_bias + self.unembed_bias


def component_dla(bridge, tokens: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor,
                  position=-1) -> DLA:
    """DLA of every head and every other residual-stream component, means over prompts."""
    n_layers = bridge.cfg.n_layers
    names = ["ln_final.hook_scale", "ln_final.hook_in", "hook_embed"] + \
        [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)] + \
        [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
    has_pos = "hook_pos_embed" in bridge.hook_dict
    if has_pos:
        names.append("hook_pos_embed")
    store: dict[str, torch.Tensor] = {}

    def keep(x, hook):
        store[hook.name] = _at(x.detach(), position).float()
        return x

    alias = {}
    for n in names:
        alias[bridge.hook_dict[n].name] = n
    with torch.inference_mode():
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[(n, keep) for n in names])
    store = {alias.get(k, k): v for k, v in store.items()}
    scale = store["ln_final.hook_scale"]                               # [batch, 1]
    w_u = bridge.W_U.detach()
    direction = (w_u[:, correct] - w_u[:, wrong]).T                    # [batch, d_model]
    w = head_weights(bridge)

    def dla(x):                                                        # [batch, ..., d_model] -> [batch, ...]
        s = scale.view(scale.shape[0], *([1] * (x.ndim - 1)))
        d = direction.view(direction.shape[0], *([1] * (x.ndim - 2)), -1)
        return (final_ln_linear(bridge, x, s) * d).sum(-1)

    heads = torch.stack([dla(torch.einsum("bhd,hdm->bhm", store[f"blocks.{layer}.attn.hook_z"], w["W_O"][layer]))
                         for layer in range(n_layers)], 1).mean(0)     # [layer, head]
    attn_bias = torch.stack([dla(w["b_O"][layer].expand(tokens.shape[0], -1)).mean() for layer in range(n_layers)])
    mlp = torch.stack([dla(store[f"blocks.{layer}.hook_mlp_out"]).mean() for layer in range(n_layers)])
    emb = store["hook_embed"] + store.get("hook_pos_embed", 0)   # rotary models never fire hook_pos_embed
    ln_b = 0.0
    if is_layernorm(bridge) and getattr(bridge.ln_final, "b", None) is not None:
        ln_b = float((bridge.ln_final.b.detach() * direction).sum(-1).mean())
    b_u = optional_param(bridge, "b_U")
    ub = float((b_u[correct] - b_u[wrong]).mean()) if b_u is not None else 0.0
    return DLA(heads, attn_bias, mlp, float(dla(emb).mean()), ln_b, ub,
               float(logit_diff(logits.float(), correct, wrong, position).mean()))


def head_dla(bridge, tokens: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor, position=-1) -> torch.Tensor:
    """Direct logit attribution of each head to logit[correct] - logit[wrong]: [layer, head]."""
    return component_dla(bridge, tokens, correct, wrong, position).heads


# ----------------------------------------------------------------------------- frozen-scale DLA at one position


def post_scale_hooks(bridge, position: int = -1) -> tuple[list, list | None]:
    """Hooks that keep, per layer, the post-attention norm's scale at one position ([batch]), for
    head_dla_from_z's post_scale; ([], None) for a model without that norm."""
    if not has_post_attn_norm(bridge):
        return [], None
    scales: list = [None] * bridge.cfg.n_layers

    def keep(x, hook, layer):
        scales[layer] = x[:, position].detach().float().reshape(x.shape[0]).clone()
        return x

    return [(f"blocks.{i}.ln1_post.hook_scale", lambda x, hook, i=i: keep(x, hook, i))
            for i in range(bridge.cfg.n_layers)], scales


def frozen_logit_direction(bridge, correct: torch.Tensor, wrong: torch.Tensor, final_scale: torch.Tensor) -> torch.Tensor:
    """[batch, d_model] d such that a residual-stream component c at the read position adds c . d
    to logit[correct] - logit[wrong] with the final norm's scale frozen at `final_scale` ([batch]
    or [batch, 1], its hook_scale there): W_U[correct] - W_U[wrong] through the norm's gain and
    scale, centred for LayerNorm (its centring is linear: c - mean(c))."""
    from headatlas.methods.weights import final_gain

    w_u = bridge.W_U.detach().float()
    d = (w_u[:, correct] - w_u[:, wrong]).T * final_gain(bridge) / final_scale.float().reshape(-1, 1)
    if is_layernorm(bridge):
        d = d - d.mean(-1, keepdim=True)
    return d


def head_dla_from_z(bridge, z: list, direction: torch.Tensor, post_scale: list | None = None) -> torch.Tensor:
    """Direct logit attribution of every head from its hook_z at the read position, with every
    norm's scale frozen: z per layer [batch, head, d_head]; direction from
    `frozen_logit_direction`; post_scale per layer [batch] (Gemma's post-attention norm scale
    there), or None. -> [batch, layer, head]. Because the map is linear in z, the direct effect
    of patching heads (their output reaching the logits from other prompts while every scale
    stays frozen) is the difference of this attribution between the two z's: it is not a
    separate measurement."""
    from headatlas.methods.weights import post_attn_gain

    w_o = bridge.W_O.detach().float()
    d_model = w_o.shape[-1]
    out = []
    for layer, zl in enumerate(z):
        o = torch.einsum("bhd,hdm->bhm", zl.float(), w_o[layer])
        if post_scale is not None:
            o = o * (post_attn_gain(bridge, layer) / post_scale[layer].float().reshape(-1, 1))[:, None]
        out.append((o * direction[:, None]).sum(-1))
    return torch.stack(out, 1)


def logit_diff_from_residual(bridge, resid: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """logit[correct] - logit[wrong] from the residual stream before the final norm at the read
    position: resid [..., batch, d_model] -> [..., batch]. The norm recomputes its scale (nothing
    frozen), and only the two unembedding columns are read, never the full vocabulary."""
    shape = resid.shape
    with torch.inference_mode():
        x = bridge.ln_final(resid.reshape(-1, 1, shape[-1]).to(bridge.W_U.dtype))[:, 0].float()
    x = x.reshape(shape)
    w_u = bridge.W_U.detach().float()
    out = (x * (w_u[:, correct] - w_u[:, wrong]).T).sum(-1)
    b_u = optional_param(bridge, "b_U")
    if b_u is not None:
        out = out + (b_u[correct] - b_u[wrong]).float()
    return out
