"""Replacement methods: ablation, activation patching, path patching, attribution patching.

Vectorised results are checked against plain per-head loops, path patching against an exact
decomposition in an attention-only model, attribution patching against exact patching."""

from __future__ import annotations

import pytest
import torch
from helpers import smollm2, tiny_gpt2
from test_methods_fixtures import attn_only_gpt2, one_thread  # noqa: F401 (fixture)

from headatlas import prompts
from headatlas.methods import ablation, patching, replacement
from headatlas.prompts import probes
from headatlas.prompts.tasks import sentiment_prompts
from headatlas.methods.logit_attribution import logit_diff_metric

pytestmark = pytest.mark.usefixtures("one_thread")


def last_logit_metric(token: int):
    return lambda logits: logits[:, -1, token]


def random_prompts(model, n=3, s=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(300, 5000, (n, s), generator=gen)


# ----------------------------------------------------------------------------- ablation


def test_zero_ablation_hook_zeroes_only_the_chosen_heads_and_positions():
    b = tiny_gpt2().bridge
    tokens = random_prompts(None)
    seen = {}

    def look(z, hook):
        seen["z"] = z.detach().clone()
        return z
    hooks = replacement.z_replacement_hooks([(2, 3), (2, 5)], None, positions=[-1]) + [("blocks.2.attn.hook_z", look)]
    with torch.inference_mode():
        b.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    z = seen["z"]
    assert z[:, -1, [3, 5]].abs().max() == 0
    assert z[:, :-1, [3, 5]].abs().max() > 0            # earlier positions untouched
    assert z[:, -1, 4].abs().max() > 0


def test_attention_knockout_blocks_only_its_own_sets_heads_from_the_chosen_keys():
    b = tiny_gpt2().bridge
    tokens = random_prompts(None, n=2)
    seen = {}

    def look(p, hook):
        seen["p"] = p.detach().clone()
        return p
    sets = torch.tensor([[[2, 3]], [[2, 5]]])                                # two sets of one head
    hooks = ablation.attention_knockout_set_hooks(sets, 2, query=9, keys=(4, 7))
    hooks.append(("blocks.2.attn.hook_pattern", look))
    with torch.inference_mode():
        b.run_with_hooks(tokens.repeat(2, 1), fwd_hooks=hooks, return_type=None)
    p = seen["p"]                                                            # [rows, head, q, k]
    assert p[:2, 3, 9, 4:7].abs().max() == 0 and p[2:, 5, 9, 4:7].abs().max() == 0
    assert p[:2, 3, 9].sum(-1).sub(1).abs().max() < 1e-5                     # renormalised
    assert p[2:, 3, 9, 4:7].abs().max() > 0 and p[:2, 5, 9, 4:7].abs().max() > 0   # other set's rows kept
    assert p[:2, 3, 8, 4:7].abs().max() > 0                                  # other queries kept
    with pytest.raises(ValueError, match="non-empty"):
        ablation.attention_knockout_set_hooks(sets, 2, query=9, keys=(5, 5))


def test_ablating_later_positions_leaves_earlier_logits_unchanged():
    b = tiny_gpt2().bridge
    tokens = random_prompts(None)
    with torch.inference_mode():
        base = b(tokens)
        out = b.run_with_hooks(tokens, fwd_hooks=replacement.z_replacement_hooks([(1, 0), (3, 2)], None, positions=[8, 9]))
    torch.testing.assert_close(out[:, :8], base[:, :8])
    assert (out[:, 8:] - base[:, 8:]).abs().max() > 0


def test_mean_ablation_matches_the_existing_claims_code_path():
    """The new general hooks reproduce head_output_means + mean_ablation_hooks (used by claims)."""
    model = tiny_gpt2()
    ref = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=4, block_len=6, seed=3)
    tokens = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=2, block_len=6, seed=4).tokens
    heads = [(1, 2), (5, 7)]
    old = ablation.token_losses(model.bridge, tokens,
                                ablation.mean_ablation_hooks(heads, ablation.head_output_means(model.bridge, ref.tokens, [1, 5])))
    new = ablation.token_losses(model.bridge, tokens,
                                replacement.z_replacement_hooks(heads, replacement.mean_z(model.bridge, ref.tokens)))
    torch.testing.assert_close(new, old)


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_vectorised_ablation_effects_equal_the_per_head_loop(method):
    model = tiny_gpt2()
    tokens = random_prompts(None, n=2, s=8, seed=1)
    reference = random_prompts(None, n=5, s=8, seed=2)
    metric = last_logit_metric(1234)
    heads = [(l, h) for l in range(7) for h in (0, 5, 11)]
    fast = replacement.ablation_effects(model.bridge, tokens, metric, method, reference=reference, heads=heads,
                                     positions=[-1, -2], chunk=7, seed=3)
    slow = replacement.ablation_effects_loop(model.bridge, tokens, metric, method, reference=reference, heads=heads,
                                          positions=[-1, -2], seed=3)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4, equal_nan=True)
    assert torch.isnan(fast).sum() == 7 * 12 - len(heads)
    assert fast.nan_to_num().abs().max() > 0


def test_resample_ablation_with_the_prompts_themselves_is_a_no_op():
    model = tiny_gpt2()
    tokens = random_prompts(None, n=1, s=8)
    metric = last_logit_metric(99)
    base = replacement.run_metric(model.bridge, tokens, metric)
    # a reference batch of one prompt, the prompt itself: every draw is the prompt's own activations
    out = replacement.ablate(model.bridge, tokens, [(0, 0), (3, 4), (6, 11)], metric, "resample", reference=tokens)
    torch.testing.assert_close(out, base)


def test_ablation_rejects_unknown_methods_and_short_references():
    b = tiny_gpt2().bridge
    tokens = random_prompts(None, n=1, s=8)
    with pytest.raises(ValueError, match="unknown ablation"):
        replacement.ablation_values(b, tokens, "gaussian", tokens)
    with pytest.raises(ValueError, match="shorter"):
        replacement.ablation_values(b, tokens, "mean", tokens[:, :4])


# ----------------------------------------------------------------------------- activation patching


def ioi(model, n=4, seed=0):
    d = probes.ioi_prompts(model.tokenizer, n_prompts=n, seed=seed)
    return d, logit_diff_metric(d.correct, d.wrong)


def test_vectorised_activation_patching_equals_the_loop_on_tiny_gpt2():
    model = tiny_gpt2()
    d, metric = ioi(model)
    fast = patching.activation_patching(model.bridge, d.clean, d.corrupted, metric, chunk=12)
    slow = patching.activation_patching_loop(model.bridge, d.clean, d.corrupted, metric)
    torch.testing.assert_close(fast.patched, slow.patched, atol=1e-5, rtol=1e-4)
    assert fast.clean == pytest.approx(slow.clean) and fast.corrupted == pytest.approx(slow.corrupted)
    den = patching.activation_patching(model.bridge, d.clean, d.corrupted, metric, denoise=True, heads=[(3, 3)])
    assert den.clean == pytest.approx(slow.corrupted)      # denoising runs the corrupted prompts


def test_vectorised_activation_patching_equals_the_loop_on_smollm2_gqa():
    model = smollm2()
    d, metric = ioi(model, n=2)
    heads = [(0, 1), (9, 4), (17, 3), (23, 3), (29, 8)]
    fast = patching.activation_patching(model.bridge, d.clean, d.corrupted, metric, heads=heads, chunk=5)
    slow = patching.activation_patching_loop(model.bridge, d.clean, d.corrupted, metric, heads=heads)
    torch.testing.assert_close(fast.patched, slow.patched, atol=1e-3, rtol=1e-4, equal_nan=True)
    assert fast.clean - fast.corrupted > 1.0           # the corruption removes the IOI signal


def test_patching_identical_prompts_or_a_later_position_changes_nothing():
    model = tiny_gpt2()
    d, metric = ioi(model, n=2)
    same = patching.activation_patching(model.bridge, d.clean, d.clean, metric, heads=[(1, 1), (6, 2)])
    torch.testing.assert_close(same.effect[[1, 6], [1, 2]], torch.zeros(2), atol=1e-5, rtol=0)
    # metric read at position 5: patching positions 6.. cannot reach it (causal attention)
    early = lambda logits: logits[:, 5, 100]
    later = torch.zeros(d.clean.shape[1], dtype=torch.bool)
    later[6:] = True
    res = patching.activation_patching(model.bridge, d.clean, d.corrupted, early, positions=later)
    assert res.effect.abs().max() < 1e-5


# ----------------------------------------------------------------------------- path patching


def test_path_patching_through_all_receivers_and_logits_equals_activation_patching():
    """In an attention-only 2-layer model, a layer-0 sender reaches the logits only directly and
    through layer-1 q/k/v: patching all those paths at once must equal patching the sender."""
    model = attn_only_gpt2(2)
    b = model.bridge
    d, metric = ioi(model, n=3)
    receivers = [(1, h, c) for h in range(b.cfg.n_heads) for c in "qkv"] + ["logits"]
    senders = [(0, h) for h in range(b.cfg.n_heads)]
    path = patching.path_patching(b, d.clean, d.corrupted, metric, senders, receivers, chunk=2)
    act = patching.activation_patching_loop(b, d.clean, d.corrupted, metric, heads=senders)
    torch.testing.assert_close(path, act.patched[0], atol=1e-5, rtol=1e-4)
    assert (act.effect[0].abs() > 1e-4).any()


def test_path_patching_to_logits_of_a_last_layer_head_equals_activation_patching():
    model = attn_only_gpt2(2)
    b = model.bridge
    d, metric = ioi(model, n=3)
    senders = [(1, h) for h in range(b.cfg.n_heads)]
    path = patching.path_patching_senders(b, d.clean, d.corrupted, metric, ["logits"], senders=senders)
    act = patching.activation_patching_loop(b, d.clean, d.corrupted, metric, heads=senders)
    torch.testing.assert_close(path.patched[1], act.patched[1], atol=1e-5, rtol=1e-4)


def test_path_patching_chunked_equals_one_at_a_time_and_checks_layers():
    model = tiny_gpt2()
    d, metric = ioi(model, n=2)
    receivers = [(5, 2, "q"), (6, 0, "v"), "logits"]
    senders = [(0, 0), (2, 3), (4, 11)]
    a = patching.path_patching(model.bridge, d.clean, d.corrupted, metric, senders, receivers, chunk=3)
    c = torch.stack([patching.path_patching(model.bridge, d.clean, d.corrupted, metric, [s], receivers, chunk=1)[0]
                     for s in senders])
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="not after sender"):
        patching.path_patching(model.bridge, d.clean, d.corrupted, metric, [(5, 0)], [(5, 2, "q")])


def test_path_patching_runs_on_smollm2_with_grouped_kv_receivers():
    model = smollm2()
    d, metric = ioi(model, n=2)
    res = patching.path_patching(model.bridge, d.clean, d.corrupted, metric, [(2, 1), (10, 4)],
                                 [(20, 3, "k"), (20, 4, "v"), (23, 3, "q")], chunk=2)
    assert res.shape == (2,) and torch.isfinite(res).all()


# ----------------------------------------------------------------------------- attribution patching


def test_attribution_patching_tracks_exact_patching_on_tiny_gpt2():
    model = tiny_gpt2()
    d, metric = ioi(model)
    att = patching.attribution_patching(model.bridge, d.clean, d.corrupted, metric)
    exact = patching.activation_patching(model.bridge, d.clean, d.corrupted, metric, chunk=12)
    r = torch.corrcoef(torch.stack([att.estimate.flatten(), exact.effect.flatten()]))[0, 1]
    assert r > 0.95, f"attribution vs exact correlation {r:.3f}"
    assert att.clean == pytest.approx(exact.clean, abs=1e-4)
    assert not any(p.grad is not None for p in model.bridge.parameters()), "parameters must not collect grads"


def test_z_gradients_give_the_same_estimate_as_attribution_patching():
    """The claims' last-position gradient helper agrees with the library's attribution patching
    on the same metric, source and run, and leaves no gradients on the parameters."""
    model = tiny_gpt2()
    d, metric = ioi(model)
    att = patching.attribution_patching(model.bridge, d.clean, d.corrupted, metric)
    zs, grads, value = patching.z_gradients(model.bridge, d.clean, lambda last: metric(last[:, None]).mean())
    z_src = replacement.cache_z(model.bridge, d.corrupted)
    est = torch.stack([((z_src[layer] - zs[layer]) * grads[layer]).sum((0, 1, 3)) for layer in range(len(zs))])
    torch.testing.assert_close(est, att.estimate, atol=1e-5, rtol=1e-4)
    assert value == pytest.approx(att.clean, abs=1e-4)
    assert not any(p.grad is not None for p in model.bridge.parameters())


def test_attribution_then_exact_confirms_the_top_candidates_on_smollm2():
    model = smollm2()
    d, metric = ioi(model, n=2)
    check = patching.attribution_then_exact(model.bridge, d.clean, d.corrupted, metric, top_k=6, chunk=6)
    assert len(check.candidates) == 6 and set(check.exact) == set(check.candidates)
    exact = patching.activation_patching_loop(model.bridge, d.clean, d.corrupted, metric, heads=check.candidates[:2])
    for h in check.candidates[:2]:
        assert check.exact[h] == pytest.approx(float(exact.effect[h]), abs=1e-3)
    assert check.correlation > 0.5


def test_top_k_overlap():
    a = torch.tensor([[5.0, -4.0, 0.1], [3.0, 0.0, 0.2]])
    b = torch.tensor([[1.0, 2.0, 0.0], [0.0, 3.0, 0.0]])
    assert patching.top_k_overlap(a, b, k=2) == 0.5
    assert patching.top_k_overlap(a, a, k=3) == 1.0


# ----------------------------------------------------------------------------- value swap


def _final_logits(bridge, tokens, hooks=()):
    with torch.inference_mode():
        return bridge.run_with_hooks(tokens, fwd_hooks=list(hooks))[:, -1].float()


def test_value_swap_of_a_whole_kv_group_equals_patching_the_shared_value():
    """On grouped-query SmolLM2, swapping the value every query head of one key/value group reads
    at a position equals patching that key/value head's value there; a swap from the prompts
    themselves changes nothing; one head of the group alone gives a smaller, nonzero change."""
    model = smollm2()
    b = model.bridge
    d = sentiment_prompts(model.tokenizer, "movie", n_pairs=3, seed=5)
    p, layer, kv = d.summary_pos, 5, 1
    group = b.cfg.n_heads // b.cfg.n_key_value_heads
    assert group > 1
    whole = torch.tensor([[[layer, kv * group + i] for i in range(group)]])
    v_flip, _ = patching.value_at(b, d.flipped, p)
    swapped = _final_logits(b, d.tokens, patching.value_swap_hooks(b, whole, d.tokens.shape[0], p, v_flip))
    raw = {}

    def keep(x, hook):
        raw["v"] = x[:, p, kv].clone()
        return x
    with torch.inference_mode():
        b.run_with_hooks(d.flipped, return_type=None, fwd_hooks=[(f"blocks.{layer}.attn.hook_v", keep)])

    def patch(x, hook):
        x = x.clone()
        x[:, p, kv] = raw["v"]
        return x
    direct = _final_logits(b, d.tokens, [(f"blocks.{layer}.attn.hook_v", patch)])
    base = _final_logits(b, d.tokens)
    assert (swapped - base).abs().max() > 1e-2
    assert torch.allclose(swapped, direct, atol=1e-3)
    v_self, _ = patching.value_at(b, d.tokens, p)
    same = _final_logits(b, d.tokens, patching.value_swap_hooks(b, whole, d.tokens.shape[0], p, v_self))
    assert torch.allclose(same, base, atol=1e-4)
    one = _final_logits(b, d.tokens, patching.value_swap_hooks(b, whole[:, :1], d.tokens.shape[0], p, v_flip))
    assert 0 < (one - base).abs().max() < (swapped - base).abs().max()


def test_value_swap_sets_in_one_batch_equal_separate_passes_and_the_estimate_tracks_them():
    """Rows of a batched null (one head set per block of rows) get the same logits as running
    each set alone, and the first-order estimate of the top single heads' swaps is within 30%
    (plus 0.01 logit) of their exact effect."""
    model = smollm2()
    b = model.bridge
    d = sentiment_prompts(model.tokenizer, "film", n_pairs=3, seed=6)
    p, n = d.summary_pos, d.tokens.shape[0]
    v_flip, _ = patching.value_at(b, d.flipped, p)
    sets = torch.tensor([[[20, 1], [24, 3]], [[20, 4], [24, 0]], [[12, 2], [12, 7]]])
    batched = _final_logits(b, d.tokens.repeat(3, 1), patching.value_swap_hooks(b, sets, n, p, v_flip)).view(3, n, -1)
    for s in range(3):
        alone = _final_logits(b, d.tokens, patching.value_swap_hooks(b, sets[s:s + 1], n, p, v_flip))
        assert torch.allclose(batched[s], alone, atol=1e-3)

    def separation(logits):
        return ((logits[:, d.positive_answer] - logits[:, d.negative_answer]) * d.sign).mean()
    est = patching.value_swap_estimate(b, d.tokens, d.flipped, p, separation)
    assert est.shape == (model.n_layers, model.n_heads)
    heads = [divmod(int(i), model.n_heads) for i in torch.argsort(est.flatten(), descending=True)[:4]]
    base = float(separation(_final_logits(b, d.tokens)))
    exact = []
    for layer, head in heads:
        out = _final_logits(b, d.tokens, patching.value_swap_hooks(b, torch.tensor([[[layer, head]]]), n, p, v_flip))
        exact.append(base - float(separation(out)))
    for (layer, head), e in zip(heads, exact):
        assert e == pytest.approx(float(est[layer, head]), abs=0.3 * abs(float(est[layer, head])) + 0.01)
