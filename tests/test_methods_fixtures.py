"""Constructed models with known answers for the method tests (and tests that they are as built).

- `hand_set_gpt2()`: a 2-layer GPT-2 whose weights are zero except for chosen token embeddings
  (orthonormal, centred) and two layer-1 heads whose OV circuits are written by hand: head 1.0
  maps each token of SET to the next one (a successor head), head 1.1 maps every token to minus
  itself (a copy-suppression head).
- `attn_only_gpt2(n_layers)`: a random GPT-2 with its MLPs zeroed, i.e. attention-only, so
  path-patching decompositions are exact.
Both are booted through the same TransformerBridge path as the real models.
"""

from __future__ import annotations

import functools

import pytest
import torch
from helpers import smollm2

from headatlas.models import LoadedModel, _boot

@pytest.fixture(scope="module")
def one_thread():
    """Run a test module's tensor work on one thread, then restore the setting. On a shared
    2-core machine, two torch threads competing with other processes spin instead of working:
    the method tests took 584 s of wall time (248 s CPU) under load 8-10, and 48 s with one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SET_WORDS = [" Monday", " Tuesday", " Wednesday", " Thursday", " Friday", " Saturday"]


def set_ids() -> list[int]:
    tok = smollm2().tokenizer
    return [tok.encode(w, add_special_tokens=False)[0] for w in SET_WORDS]


@functools.lru_cache(maxsize=1)
def hand_set_gpt2() -> LoadedModel:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = smollm2().tokenizer
    d, n_heads, d_head = 16, 2, 8
    cfg = GPT2Config(n_layer=2, n_head=n_heads, n_embd=d, n_positions=32, vocab_size=len(tok),
                     attn_implementation="eager")
    hf = GPT2LMHeadModel(cfg).eval()
    ids = set_ids()
    n = len(ids)
    # n orthonormal vectors orthogonal to the all-ones direction (LayerNorm centring keeps them).
    g = torch.Generator().manual_seed(0)
    basis = torch.cat([torch.ones(d, 1), torch.randn(d, n, generator=g)], 1)
    q, _ = torch.linalg.qr(basis)
    e = q[:, 1:].T.contiguous()                       # [n, d]
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()
        for m in hf.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.fill_(1.0)
        hf.transformer.wte.weight[ids] = e               # lm_head is tied: W_U = W_E^T
        attn = hf.transformer.h[1].attn
        # GPT-2 Conv1D: c_attn.weight [d, 3d] = [q | k | v]; head h uses columns h*d_head:(h+1)*d_head.
        # Head 0: v_j = <x, e_j> (j < n-1); W_O row j = e_{j+1}  =>  OV(e_i) = e_{i+1}.
        for j in range(n - 1):
            attn.c_attn.weight[:, 2 * d + j] = e[j]
            attn.c_proj.weight[j] = e[j + 1]
        # Head 1: v_j = <x, e_j>, W_O row j = -e_j  =>  OV(e_i) = -e_i  (j < d_head).
        for j in range(min(n, d_head)):
            attn.c_attn.weight[:, 2 * d + d_head + j] = e[j]
            attn.c_proj.weight[d_head + j] = -e[j]
    bridge = _boot("hand-set-gpt2", hf, tok)
    return LoadedModel("hand-set-gpt2", bridge, tok, None, "hand-set", 0.0)


@functools.lru_cache(maxsize=4)
def attn_only_gpt2(n_layers: int = 2, n_heads: int = 4, d_model: int = 32, seed: int = 0) -> LoadedModel:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = smollm2().tokenizer
    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=n_layers, n_head=n_heads, n_embd=d_model, n_positions=64, vocab_size=len(tok),
                     attn_implementation="eager", initializer_range=0.2)
    hf = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for block in hf.transformer.h:
            block.mlp.c_proj.weight.zero_()
            block.mlp.c_proj.bias.zero_()
    bridge = _boot(f"attn-only-gpt2-{n_layers}", hf, tok)
    return LoadedModel(bridge.cfg.model_name, bridge, tok, None, "random-init-mlp-zeroed", 0.0)


# ----------------------------------------------------------------------------- the fixtures are as built

pytestmark = pytest.mark.usefixtures("one_thread")



def test_hand_set_model_ov_is_the_successor_map():
    b = hand_set_gpt2().bridge
    ids = torch.tensor(set_ids())
    e = b.W_E[ids].detach()
    w_v, w_o = b.W_V[1, 0].detach(), b.W_O[1, 0].detach()
    out = e @ w_v @ w_o
    torch.testing.assert_close(out[:-1], e[1:], atol=1e-5, rtol=0)


def test_attn_only_model_mlps_write_nothing():
    b = attn_only_gpt2().bridge
    _, cache = b.run_with_cache(torch.tensor([[1, 2, 3, 4]]))
    assert cache["blocks.0.hook_mlp_out"].abs().max() == 0
