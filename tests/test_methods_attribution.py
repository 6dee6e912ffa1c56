"""Direct logit attribution, directional steering and linear probes."""

from __future__ import annotations

import pytest
import torch
from helpers import smollm2, tiny_gpt2
from test_methods_fixtures import one_thread  # noqa: F401 (fixture)

from headatlas.methods import logit_attribution as la, probing, replacement, steering
from headatlas.prompts import probes

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- DLA


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_component_dla_adds_up_to_the_logit_difference(which):
    model = tiny_gpt2() if which == "tiny" else smollm2()
    d = probes.ioi_prompts(model.tokenizer, n_prompts=4)
    dla = la.component_dla(model.bridge, d.clean, d.correct, d.wrong)
    assert dla.heads.shape == (model.n_layers, model.n_heads)
    assert dla.total == pytest.approx(dla.logit_diff, abs=1e-3 * max(1.0, abs(dla.logit_diff)))


def test_head_dla_is_the_effect_of_removing_the_head_with_the_final_scale_frozen():
    """With the final norm's scale and the last MLP frozen, zeroing a last-layer head at the read
    position changes the logit difference by exactly minus its DLA."""
    model = tiny_gpt2()
    b = model.bridge
    last = b.cfg.n_layers - 1
    d = probes.ioi_prompts(model.tokenizer, n_prompts=3)
    dla = la.component_dla(b, d.clean, d.correct, d.wrong)
    _, cache = b.run_with_cache(d.clean)
    scale = cache["ln_final.hook_scale"].detach()
    mlp = cache[f"blocks.{last}.hook_mlp_out"].detach()
    metric = la.logit_diff_metric(d.correct, d.wrong)
    frozen = [("ln_final.hook_scale", lambda x, hook: scale), (f"blocks.{last}.hook_mlp_out", lambda x, hook: mlp)]
    base = replacement.run_metric(b, d.clean, metric, frozen).mean()
    for head in (0, 5, 11):
        hooks = replacement.z_replacement_hooks([(last, head)], None, positions=[-1]) + frozen
        change = replacement.run_metric(b, d.clean, metric, hooks).mean() - base
        assert float(change) == pytest.approx(-float(dla.heads[last, head]), abs=1e-5)


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_frozen_scale_dla_from_z_equals_component_dla_and_the_residual_gives_the_logit_difference(which):
    """head_dla_from_z (one position, the final scale frozen) is component_dla's head grid, and
    logit_diff_from_residual reads the model's own logit difference from the residual there."""
    model = tiny_gpt2() if which == "tiny" else smollm2()
    b = model.bridge
    d = probes.ioi_prompts(model.tokenizer, n_prompts=3)
    store = {}

    def keep(x, hook):
        store[hook.name] = x[:, -1].detach().float().clone()
        return x

    names = ["ln_final.hook_scale", "ln_final.hook_in"] + [f"blocks.{layer}.attn.hook_z" for layer in range(b.cfg.n_layers)]
    with torch.inference_mode():
        logits = b.run_with_hooks(d.clean, fwd_hooks=[(n, keep) for n in names])
    alias = {b.hook_dict[n].name: n for n in names}
    store = {alias.get(k, k): v for k, v in store.items()}
    direction = la.frozen_logit_direction(b, d.correct, d.wrong, store["ln_final.hook_scale"])
    z = [store[f"blocks.{layer}.attn.hook_z"] for layer in range(b.cfg.n_layers)]
    post = None
    if la.has_post_attn_norm(b):
        pytest.skip("no post-attention norm in these models")
    dla = la.head_dla_from_z(b, z, direction, post).mean(0)
    ref = la.component_dla(b, d.clean, d.correct, d.wrong).heads
    assert torch.allclose(dla, ref, atol=1e-4)
    ld = la.logit_diff_from_residual(b, store["ln_final.hook_in"], d.correct, d.wrong)
    assert torch.allclose(ld, la.logit_diff(logits.float(), d.correct, d.wrong), atol=1e-3)


def test_logit_diff_reads_one_position_per_prompt():
    logits = torch.zeros(2, 3, 5)
    logits[0, 2, 1], logits[0, 2, 3] = 4.0, 1.0
    logits[1, 1, 1], logits[1, 1, 3] = 2.0, 5.0
    assert la.logit_diff(logits, torch.tensor([1, 1]), torch.tensor([3, 3])).tolist() == [3.0, 0.0]
    assert la.logit_diff(logits, torch.tensor([1, 1]), torch.tensor([3, 3]), torch.tensor([2, 1])).tolist() == [3.0, -3.0]


# ----------------------------------------------------------------------------- steering


def test_steering_with_alpha_zero_is_a_no_op_and_signs_oppose():
    model = tiny_gpt2()
    d = probes.ioi_prompts(model.tokenizer, n_prompts=3)
    metric = la.logit_diff_metric(d.correct, d.wrong)
    direction = steering.contrast_direction(model.bridge, d.clean, d.corrupted, 5, 3)
    res = steering.steering_effect(model.bridge, d.clean, 5, 3, direction, metric, alphas=(-0.1, 0.0, 0.1), positions=[-1])
    assert float(res.change[1]) == pytest.approx(0.0, abs=1e-6)
    assert float(res.change[0]) * float(res.change[2]) < 0       # small steps: opposite signs


def test_adding_the_contrast_direction_to_a_negative_prompt_equals_patching_the_positive_one():
    """With one prompt per side, z_neg + (z_pos - z_neg) = z_pos: steering at alpha = 1 must
    reproduce activation patching of that head at that position."""
    model = tiny_gpt2()
    d = probes.ioi_prompts(model.tokenizer, n_prompts=1)
    metric = la.logit_diff_metric(d.correct, d.wrong)
    layer, head = 4, 7
    direction = steering.contrast_direction(model.bridge, d.clean, d.corrupted, layer, head, position=-1)
    steered = steering.steering_effect(model.bridge, d.corrupted, layer, head, direction, metric, alphas=(1.0,),
                                       positions=[-1]).metric[0]
    z_clean = replacement.cache_z(model.bridge, d.clean)
    patched = replacement.run_metric(model.bridge, d.corrupted, metric,
                                     replacement.z_replacement_hooks([(layer, head)], z_clean, positions=[-1])).mean()
    assert float(steered) == pytest.approx(float(patched), abs=1e-5)


def test_direction_ablation_removes_the_component():
    model = tiny_gpt2()
    tokens = probes.ioi_prompts(model.tokenizer, n_prompts=2).clean
    direction = torch.randn(model.bridge.cfg.d_head)
    seen = {}

    def look(z, hook):
        seen["z"] = z.detach().clone()
        return z
    hooks = steering.direction_ablation_hooks(2, 1, direction) + [("blocks.2.attn.hook_z", look)]
    with torch.inference_mode():
        model.bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    assert (seen["z"][:, :, 1] @ direction).abs().max() < 1e-5
    assert (seen["z"][:, :, 0] @ direction).abs().max() > 1e-3


# ----------------------------------------------------------------------------- probing


def test_probe_finds_the_one_head_that_carries_the_label():
    gen = torch.Generator().manual_seed(0)
    n, d = 120, 8
    labels = torch.randint(2, (n,), generator=gen)
    feats = torch.randn(3, 4, n, d, generator=gen)
    feats[1, 2, :, 5] += 3.0 * (labels.float() * 2 - 1)           # head 1.2 encodes the label linearly
    res = probing.probe_heads(feats, labels, seed=0)
    assert res.accuracy.shape == (3, 4)
    assert res.accuracy[1, 2] >= 0.95
    others = torch.cat([res.accuracy.flatten()[:6], res.accuracy.flatten()[7:]])
    assert others.max() < 0.8                                       # noise: near chance on held-out data
    again = probing.probe_heads(feats, labels, seed=0)
    assert torch.equal(res.accuracy, again.accuracy)                # fixed seed: deterministic


def test_probe_split_is_stratified_and_disjoint():
    labels = torch.tensor([0] * 10 + [1] * 20)
    tr, te = probing.split_indices(labels, 0.3, seed=1)
    assert set(tr.tolist()).isdisjoint(te.tolist()) and len(tr) + len(te) == 30
    assert (labels[te] == 0).sum() == 3 and (labels[te] == 1).sum() == 6


def test_probing_smollm2_heads_for_the_current_token_class():
    """Whether the last token is a day or a month name: a layer-0 head output (which mixes in the
    current token's value) should carry it nearly perfectly."""
    model = smollm2()
    tok = model.tokenizer
    days = [" Monday", " Tuesday", " Wednesday", " Thursday", " Friday", " Saturday", " Sunday"]
    months = [" January", " February", " March", " April", " June", " July", " August"]
    words = [" We", " They", " I", " She", " He"]
    rows, labels = [], []
    for i, w in enumerate(words):
        for lab, group in ((0, days), (1, months)):
            for x in group:
                rows.append([1] + tok.encode(w + " met on", add_special_tokens=False) + tok.encode(x, add_special_tokens=False))
                labels.append(lab)
    tokens = torch.tensor(rows)
    feats = probing.head_features(model.bridge, tokens)
    assert feats.shape == (30, 9, len(rows), 64)
    res = probing.probe_heads(feats[:2], torch.tensor(labels), seed=0)
    assert res.accuracy.max() >= 0.9
