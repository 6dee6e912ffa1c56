"""Weight access for circuit-level methods (OV circuits, direct logit attribution, flow graphs).

TransformerBridge exposes TransformerLens-style stacked weights (W_Q, W_K, W_V, W_O, W_E, W_U)
without folding layer norms into them (models.py boots bridges unprocessed). So every function
here applies the layer norms' gains itself, and expands grouped-query K/V weights to one copy
per query head (query head h reads KV head h // (n_heads // n_kv_heads), as the bridge's own
OV/QK properties do).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch


def optional_param(bridge, name: str) -> torch.Tensor | None:
    """A stacked parameter such as b_V, or None for bias-free checkpoints (the bridge raises)."""
    try:
        value = getattr(bridge, name)
    except AttributeError:
        return None
    return value


def kv_group(bridge) -> int:
    """How many query heads share one key/value head (1 without grouped-query attention)."""
    n_kv = getattr(bridge.cfg, "n_key_value_heads", None) or bridge.cfg.n_heads
    return bridge.cfg.n_heads // n_kv


def expand_kv(w: torch.Tensor, group: int, dim: int) -> torch.Tensor:
    """Repeat grouped K/V tensors along their head axis so it indexes query heads."""
    return w if group == 1 else w.repeat_interleave(group, dim=dim)


def is_layernorm(bridge) -> bool:
    """LayerNorm (centres, has a bias) rather than RMSNorm."""
    return str(getattr(bridge.cfg, "normalization_type", "LN")).upper().startswith("LN")


def head_weights(bridge) -> dict[str, torch.Tensor]:
    """W_V [layer, head, d_model, d_head] (KV heads expanded), b_V [layer, head, d_head],
    W_O [layer, head, d_head, d_model], b_O [layer, d_model] (zeros for bias-free models).
    Read afresh on each call, so edited weights are never served stale."""
    g = kv_group(bridge)
    with torch.no_grad():
        w_v = expand_kv(bridge.W_V.detach(), g, 1)            # [layer, head, d_model, d_head]
        b_v = optional_param(bridge, "b_V")
        b_v = expand_kv(b_v.detach(), g, 1) if b_v is not None else torch.zeros(w_v.shape[0], w_v.shape[1], w_v.shape[3])
        b_o = optional_param(bridge, "b_O")
        return {"W_V": w_v, "b_V": b_v, "W_O": bridge.W_O.detach(),
                "b_O": b_o.detach() if b_o is not None else torch.zeros(w_v.shape[0], w_v.shape[2])}


def norm_gain(module, d_model: int) -> torch.Tensor:
    """A norm's effective per-dimension gain, read off the module itself so that (1 + w) gains
    (Gemma), plain w gains (Llama) and LayerNorm (GPT-2) need no special case: for an input x
    of mean 0 and RMS 1, LayerNorm and RMSNorm both give x * gain + bias, so
    (norm(x) - norm(-x)) / 2x is the gain. Never read `.w` directly: Gemma's is gain - 1."""
    x = torch.ones(d_model)
    x[1::2] = -1.0
    x = x - x.mean()
    x = x / x.pow(2).mean().sqrt()
    with torch.inference_mode():
        plus, minus = module(x.reshape(1, 1, -1)), module(-x.reshape(1, 1, -1))
        return ((plus - minus).reshape(-1).float() / (2 * x)).clone()


def final_gain(bridge) -> torch.Tensor:
    """The final norm's effective gain [d_model]."""
    return norm_gain(bridge.ln_final, bridge.cfg.d_model)


def has_post_attn_norm(bridge) -> bool:
    """Gemma-style blocks normalise the attention output before adding it to the residual."""
    return "blocks.0.ln1_post.hook_scale" in bridge.hook_dict


def post_attn_gain(bridge, layer: int) -> torch.Tensor:
    """The gain of the norm a layer's attention output passes before the residual stream, [d_model]
    (Gemma's post-attention norm); ones for models without one, so multiplying by it changes
    nothing there. Its scale depends on the whole attention output at a position: a reading that
    freezes it divides by hook_scale; a weights-only reading (OV circuits) leaves it out, as one
    positive scale per row changes no rank within the row."""
    if not has_post_attn_norm(bridge):
        return torch.ones(bridge.cfg.d_model)
    return norm_gain(bridge.blocks[layer].ln1_post, bridge.cfg.d_model)


def final_ln_linear(bridge, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """The final norm as a linear map of one residual-stream component: centre (LayerNorm),
    divide by a frozen scale if given (else leave unscaled), times the gain. No bias: a bias is
    not any component's contribution."""
    if is_layernorm(bridge):
        x = x - x.mean(-1, keepdim=True)
    if scale is not None:
        x = x / scale
    return x * final_gain(bridge)


def unembed_directions(bridge, token_ids: torch.Tensor) -> torch.Tensor:
    """Columns of W_U for the given tokens: [d_model, n]."""
    return bridge.W_U.detach()[:, token_ids]


def effective_embedding(bridge, token_ids: torch.Tensor, through: str = "block0") -> torch.Tensor:
    """Residual-stream vector a token contributes when seen by later layers: [n, d_model].

    "raw": the embedding row (plus nothing: rotary models have no positional embedding).
    "block0": the residual after block 0 when the model sees the token alone (a one-token
    context). Gould et al. and McDougall et al. read OV circuits after the first MLP because in
    many models the raw embedding is a poor input to later heads; a one-token context also lets
    attention 0 attend only to the token itself, so no other token leaks in.
    """
    token_ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    if through == "raw":
        return bridge.W_E.detach()[token_ids]
    if through != "block0":
        raise ValueError(f"unknown embedding {through!r}; known: raw, block0")
    with torch.inference_mode():
        out = bridge(token_ids[:, None], stop_at_layer=1, prepend_bos=False)
    return out[:, 0].detach().clone()


def ov_output(bridge, resid: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
    """What each head writes when it attends fully to a residual vector: [layer, head, n, d_model].

    The input passes through the head's own layer norm (ln1 of its layer, exactly as in the
    forward pass), then W_V (+b_V) and W_O."""
    w = head_weights(bridge)
    layers = list(range(bridge.cfg.n_layers)) if layers is None else list(layers)
    outs = []
    with torch.inference_mode():
        for layer in layers:
            x = bridge.blocks[layer].ln1(resid)
            v = torch.einsum("nm,hmd->hnd", x, w["W_V"][layer]) + w["b_V"][layer][:, None]
            outs.append(torch.einsum("hnd,hdm->hnm", v, w["W_O"][layer]))
    return torch.stack(outs)


def ov_circuit(bridge, src_ids: torch.Tensor, dst_ids: torch.Tensor, *, through: str = "block0",
               layers: Sequence[int] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Full OV circuit restricted to tokens, one layer at a time: yields (layer, [head, n_src, n_dst])
    logits each head's output adds to the destination tokens when it attends fully to a source
    token. Output passes through the post-attention norm's gain where the model has one (Gemma)
    and the final norm's gain (centred for LayerNorm), but not their scales: one positive scale
    per row leaves ranks and z-scores within a row unchanged. Layer by layer
    because the full [layer, head, n, n] tensor for a thousand tokens would not fit in memory."""
    resid = effective_embedding(bridge, src_ids, through)
    w = head_weights(bridge)
    layers = list(range(bridge.cfg.n_layers)) if layers is None else list(layers)
    w_u = bridge.W_U.detach()[:, torch.as_tensor(dst_ids, dtype=torch.long).flatten()]
    w_u = w_u * final_gain(bridge)[:, None]
    if is_layernorm(bridge):
        w_u = w_u - w_u.mean(0, keepdim=True)   # (x - mean x) @ M == x @ (M - row mean of M)
    with torch.inference_mode():
        for layer in layers:
            x = bridge.blocks[layer].ln1(resid)
            v = torch.einsum("nm,hmd->hnd", x, w["W_V"][layer]) + w["b_V"][layer][:, None]
            ou = torch.einsum("hdm,mk->hdk", w["W_O"][layer] * post_attn_gain(bridge, layer).to(w_u.dtype), w_u)
            yield layer, torch.einsum("hnd,hdk->hnk", v, ou)


def ov_logits(bridge, src_ids: torch.Tensor, dst_ids: torch.Tensor, *, through: str = "block0",
              layers: Sequence[int] | None = None) -> torch.Tensor:
    """All layers of `ov_circuit` stacked: [layer, head, n_src, n_dst] (for small token sets)."""
    return torch.stack([x for _, x in ov_circuit(bridge, src_ids, dst_ids, through=through, layers=layers)])
