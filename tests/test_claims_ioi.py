"""The IOI measuring pass (headatlas/methods/ioi.py), its prompts (headatlas/prompts/ioi.py) and
the claims' GPT-2 replication logic (claims/claim_ioi.py): prompts built as documented, the
logit difference the model's own, direct logit attribution exact, path patching a no-op when
source and clean agree and batched groups equal to separate runs, the cheap logits path
patching equal to the generic one, and the GPT-2 small replication checks exercised on a tiny
random 12-layer GPT-2 with the published heads planted (they must be found) or planted
elsewhere (they must not)."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from helpers import smollm2
from test_methods_fixtures import one_thread  # noqa: F401 (fixture)

from headatlas.catalogue import find_root, load_catalogue
from headatlas.methods import ioi as mioi
from headatlas.methods import logit_attribution as la
from headatlas.methods import patching, weights
from headatlas.prompts import ioi as ioi_prompts
from headatlas.claims import ClaimRun
from headatlas.models import LoadedModel, _boot

ROOT = find_root(Path(__file__).parent)
pytestmark = pytest.mark.usefixtures("one_thread")


def claim_ioi():
    """The claim module, imported by path (claims/ is not a package)."""
    if "claim_ioi" not in sys.modules:
        spec = importlib.util.spec_from_file_location("claim_ioi", ROOT / "claims/claim_ioi.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["claim_ioi"] = module
        spec.loader.exec_module(module)
    return sys.modules["claim_ioi"]


# ============================================================================ prompts


@pytest.mark.parametrize("template", sorted(ioi_prompts.IOI_TEMPLATES))
def test_ioi_prompts_put_the_names_where_they_say(template):
    tok = smollm2().tokenizer
    d = ioi_prompts.ioi_dataset(tok, template=template, n_prompts=8, seed=3)
    idx = torch.arange(d.n)
    assert d.clean.shape == d.corrupted.shape and d.end == d.clean.shape[1] - 1
    assert torch.equal(d.clean[idx, d.io_pos], d.io)
    assert torch.equal(d.clean[idx, d.s1_pos], d.s) and torch.equal(d.clean[idx, d.s2_pos], d.s)
    assert (d.io != d.s).all()
    assert d.abba.sum() == d.n // 2 and torch.equal(d.abba, d.io_pos < d.s1_pos)
    # ABC: exactly the three name positions differ, holding three names new to the prompt.
    diff = d.clean != d.corrupted
    for i in range(d.n):
        where = set(diff[i].nonzero().flatten().tolist())
        assert where == {int(d.io_pos[i]), int(d.s1_pos[i]), int(d.s2_pos[i])}
        new = d.corrupted[i, sorted(where)].tolist()
        assert len(set(new)) == 3 and not set(new) & {int(d.io[i]), int(d.s[i])}
    # Pieces tokenized apart give the tokens of the whole sentence.
    for row in d.clean[:3]:
        text = tok.decode(row[1:].tolist())
        assert tok.encode(text, add_special_tokens=False) == row[1:].tolist()


def test_ioi_prompts_are_seeded_and_reject_bad_templates():
    tok = smollm2().tokenizer
    a = ioi_prompts.ioi_dataset(tok, template="store-drink", n_prompts=6, seed=1)
    b = ioi_prompts.ioi_dataset(tok, template="store-drink", n_prompts=6, seed=1)
    c = ioi_prompts.ioi_dataset(tok, template="store-drink", n_prompts=6, seed=2)
    assert torch.equal(a.clean, b.clean) and not torch.equal(a.clean, c.clean)
    with pytest.raises(ValueError, match="slots"):
        ioi_prompts.ioi_dataset(tok, template="When{A} met{B}, she waved to", n_prompts=2, seed=0)
    with pytest.raises(ValueError, match="generator"):
        ioi_prompts.from_spec(smollm2(), {"generator": "repeated-random-tokens"})


# ============================================================================ attribution and patching


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_ioi_pass_reads_the_models_own_logit_difference(which):
    model = tiny_gpt2_12() if which == "tiny" else smollm2()
    d = ioi_prompts.ioi_dataset(model.tokenizer, template="store-drink", n_prompts=3, seed=0)
    pas = mioi.ioi_pass(model.bridge, d)
    with torch.inference_mode():
        logits = model.bridge(d.clean)[:, d.end].float()
    idx = torch.arange(d.n)
    assert torch.allclose(pas.logit_diff, logits[idx, d.io] - logits[idx, d.s], atol=1e-3)


def test_head_dla_is_exact_and_its_io_part_is_all_of_it_when_the_head_attends_only_to_the_io():
    model = tiny_gpt2_12()
    d = ioi_prompts.ioi_dataset(model.tokenizer, template="store-drink", n_prompts=4, seed=0)
    layer, head = 11, 4

    def only_io(p, hook):
        p = p.clone()
        p[torch.arange(d.n), head, d.end] = 0.0
        p[torch.arange(d.n), head, d.end, d.io_pos] = 1.0
        return p

    pas = mioi.ioi_pass(model.bridge, d, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", only_io)])
    assert torch.allclose(pas.dla_src[:, layer, head, 0], pas.dla[:, layer, head], atol=1e-5)
    assert torch.allclose(pas.attn[:, layer, head, 0], torch.ones(d.n))
    # Zeroing that last-layer head at END (the last MLP, which reads it, frozen) moves the
    # residual at END by minus its output: through the frozen-scale direction, minus its DLA.
    kept = {}

    def keep(x, hook):
        kept["mlp"] = x.detach().clone()
        return x

    mioi.run_hooks(model.bridge, d.clean, [(f"blocks.{layer}.attn.hook_pattern", only_io), (f"blocks.{layer}.hook_mlp_out", keep)])

    def zero_head(z, hook):
        z = z.clone()
        z[:, d.end, head] = 0.0
        return z

    zeroed = mioi.ioi_pass(model.bridge, d, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", only_io),
                                                       (f"blocks.{layer}.attn.hook_z", zero_head),
                                                       (f"blocks.{layer}.hook_mlp_out", lambda x, hook: kept["mlp"])])
    change = ((zeroed.resid - pas.resid) * pas.direction).sum(-1)
    assert torch.allclose(change, -pas.dla[:, layer, head], atol=1e-4)
    # The frozen-scale direct effect of patching is a difference of attributions, nothing more.
    zeros = [torch.zeros_like(z) for z in pas.z_end]
    assert torch.allclose(la.head_dla_from_z(model.bridge, zeros, pas.direction)[:, layer, head], torch.zeros(d.n))


def test_dla_of_every_head_adds_up_to_the_attention_layers_on_smollm2():
    model = smollm2()
    d = ioi_prompts.ioi_dataset(model.tokenizer, template="store-drink", n_prompts=2, seed=0)
    pas = mioi.ioi_pass(model.bridge, d)
    with torch.inference_mode():
        _, cache = model.bridge.run_with_cache(d.clean, names_filter=lambda n: n in ("blocks.29.hook_attn_out", "ln_final.hook_scale"))
        gain = weights.final_gain(model.bridge)
        w_u = model.bridge.W_U.detach()
        direction = (w_u[:, d.io] - w_u[:, d.s]).T * gain / cache["ln_final.hook_scale"][:, d.end].reshape(2, 1)
        block = (cache["blocks.29.hook_attn_out"][:, d.end] * direction).sum(-1)
    assert torch.allclose(pas.dla[:, 29].sum(-1), block, atol=1e-3)


def test_query_path_patching_from_the_clean_prompts_changes_nothing_and_groups_batch():
    model = tiny_gpt2_12()
    d = ioi_prompts.ioi_dataset(model.tokenizer, template="store-drink", n_prompts=3, seed=0)
    clean = mioi.ioi_pass(model.bridge, d, keep_z=True)
    senders, receivers = [(3, 1), (5, 2)], [(9, 9), (10, 0)]
    same = mioi.query_path_patch(model.bridge, d, clean.z_all, clean.z_all, [senders], receivers)
    assert torch.allclose(same.logit_diff, clean.logit_diff, atol=1e-5)
    other = mioi.ioi_pass(model.bridge, d, tokens=d.corrupted, keep_z=True).z_all
    moved = mioi.query_path_patch(model.bridge, d, clean.z_all, other, [senders], receivers)
    # Only the receivers' attention may move: every earlier head's pattern is untouched.
    assert torch.allclose(moved.attn[:, :9], clean.attn[:, :9], atol=1e-6)
    assert not torch.allclose(moved.attn[:, 9, 9], clean.attn[:, 9, 9], atol=1e-6)
    # Several sender groups in one batch give what each gives alone.
    both = mioi.query_path_patch(model.bridge, d, clean.z_all, other, [senders, [(4, 7)]], receivers)
    alone = mioi.query_path_patch(model.bridge, d, clean.z_all, other, [[(4, 7)]], receivers)
    assert torch.allclose(both.by_copy("logit_diff", d.n)[0], moved.logit_diff, atol=1e-4)
    assert torch.allclose(both.by_copy("logit_diff", d.n)[1], alone.logit_diff, atol=1e-4)


def test_logits_path_patching_agrees_with_the_generic_path_patching():
    """methods.ioi.logits_path_patch (residual + head output change through the final norm, no
    forward pass) equals patching.path_patching with the "logits" receiver at END."""
    model = tiny_gpt2_12()
    b = model.bridge
    d = ioi_prompts.ioi_dataset(model.tokenizer, template="store-drink", n_prompts=3, seed=0)
    clean = mioi.ioi_pass(b, d, keep_z=True)
    src = mioi.ioi_pass(b, d, tokens=d.corrupted, keep_z=True)
    fast = mioi.logits_path_patch(b, clean, src.z_end, [[(6, 3)], [(11, 0)], [(6, 3), (11, 0)]], d).mean(1)
    metric = la.logit_diff_metric(d.io, d.s, position=d.end)
    slow = patching.path_patching(b, d.clean, d.corrupted, metric, [(6, 3), (11, 0)], ["logits"], positions=[d.end])
    assert torch.allclose(fast[:2], slow.float(), atol=1e-4)
    same = mioi.logits_path_patch(b, clean, clean.z_end, [[(6, 3)]], d)
    assert torch.allclose(same[0], clean.logit_diff, atol=1e-4)


def test_end_only_ablation_hooks_batch_head_sets():
    model = tiny_gpt2_12()
    d = ioi_prompts.ioi_dataset(model.tokenizer, template="store-drink", n_prompts=3, seed=0)
    src = mioi.ioi_pass(model.bridge, d, tokens=d.corrupted, keep_z=True)
    means = [z.mean(0, keepdim=True) for z in src.z_all]
    sets = [[(10, 1), (11, 2)], [(8, 5)]]
    both = mioi.ioi_pass(model.bridge, d, tokens=d.clean.repeat(2, 1), fwd_hooks=mioi.z_hooks_at(sets, means, d.end, d.n))
    for i, s in enumerate(sets):
        one = mioi.ioi_pass(model.bridge, d, fwd_hooks=mioi.z_hooks_at([s], means, d.end, d.n))
        assert torch.allclose(both.by_copy("logit_diff", d.n)[i], one.logit_diff, atol=1e-4)
        # Only END is touched: an earlier position's output of an ablated head is its clean one.
    clean = mioi.ioi_pass(model.bridge, d)
    assert not torch.allclose(both.by_copy("logit_diff", d.n)[0], clean.logit_diff, atol=1e-4)


# ============================================================================ GPT-2 replication logic


@functools.lru_cache(maxsize=3)
def tiny_gpt2_12(suppress: tuple[int, int] | None = None) -> LoadedModel:
    """A random GPT-2 with GPT-2 small's full 12 x 12 head grid (d_head 32). With `suppress`, that
    head's OV circuit is set by hand to minus a projection (W_V = A, W_O = -A^T for an
    orthonormal A): attending to a token, it writes minus that token's own direction."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = smollm2().tokenizer
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=12, n_head=12, n_embd=384, n_positions=64, vocab_size=len(tok),
                     attn_implementation="eager")
    hf = GPT2LMHeadModel(cfg).eval()
    name = "tiny-gpt2-12"
    if suppress is not None:
        layer, head = suppress
        d, d_head = cfg.n_embd, cfg.n_embd // cfg.n_head
        a, _ = torch.linalg.qr(torch.randn(d, d_head, generator=torch.Generator().manual_seed(1)))
        attn = hf.transformer.h[layer].attn
        with torch.no_grad():
            cols = slice(2 * d + head * d_head, 2 * d + (head + 1) * d_head)
            attn.c_attn.weight[:, cols] = a
            attn.c_attn.bias[cols] = 0.0
            attn.c_proj.weight[head * d_head:(head + 1) * d_head] = -a.T
        name += f"-suppress-{layer}.{head}"
    bridge = _boot(name, hf, tok)
    return LoadedModel(name, bridge, tok, None, "random-init-seed-0", 0.0)


def dla_planting_hooks(model, datasets, heads: dict[tuple[int, int], float]):
    """Hooks writing, at END of every clean prompt of `datasets`, an output along
    W_U[IO] - W_U[S] (as far as the head's W_O can reach it) with the given sign and size for
    each head, so a DLA check must find them. The prompts are recognised by their tokens, which
    a hook on the embedding's input records; other prompts are left alone."""
    w_o = model.bridge.W_O.detach()
    w_u = model.bridge.W_U.detach()
    answers = {tuple(row.tolist()): (int(io), int(s), d.end) for d in datasets
               for row, io, s in zip(d.clean, d.io, d.s)}
    seen = {}

    def record(tokens, hook):
        seen["tokens"] = tokens.detach().clone()
        return tokens

    hooks = [("embed.hook_in", record)]
    for (layer, head), size in heads.items():
        def plant(x, hook, layer=layer, head=head, size=size):
            x = x.clone()
            for i, row in enumerate(seen["tokens"]):
                if tuple(row.tolist()) in answers:
                    io, s, end = answers[tuple(row.tolist())]
                    z = (w_u[:, io] - w_u[:, s]) @ torch.linalg.pinv(w_o[layer, head])
                    x[i, end, head] = (size * z / z.norm()).to(x.dtype)
            return x
        hooks.append((f"blocks.{layer}.attn.hook_z", plant))
    return hooks


def _replicate_on_tiny(claim_id: str, model: LoadedModel, planted: dict | None = None) -> ClaimRun:
    C = claim_ioi()
    C._CACHE.clear()
    entry, spec = load_catalogue(ROOT).claims[claim_id]
    if planted:
        from headatlas.claims.runtime import spec_variants
        datasets = [ioi_prompts.from_spec(model, data) for _, data in spec_variants(spec.data)]
        for name, fn in dla_planting_hooks(model, datasets, planted):
            model.bridge.add_hook(name, fn, is_permanent=True)
    try:
        run = ClaimRun(entry, spec, model.name, model)
        C._replicate(run)
        return run
    finally:
        model.bridge.reset_hooks(including_permanent=True)
        C._CACHE.clear()


def _all_pass(run: ClaimRun) -> bool:
    return run.verdict == "holds"


def test_planted_name_movers_are_found_and_others_are_not():
    nms = {(9, 9): 20.0, (9, 6): 20.0, (10, 0): 20.0}
    assert _all_pass(_replicate_on_tiny("name-mover-gpt2-published", tiny_gpt2_12(), nms))
    elsewhere = {(2, 3): 20.0, (4, 5): 20.0, (6, 7): 20.0}
    run = _replicate_on_tiny("name-mover-gpt2-published", tiny_gpt2_12(), elsewhere)
    assert run.verdict != "holds", run.check_results


def test_planted_negative_name_movers_are_found_and_others_are_not():
    # Positive name movers keep the logit difference positive, as in GPT-2.
    base = {(9, 9): 30.0, (9, 6): 30.0, (10, 0): 30.0}
    run = _replicate_on_tiny("negative-name-mover-gpt2-published", tiny_gpt2_12(),
                             {**base, (10, 7): -15.0, (11, 10): -15.0})
    assert _all_pass(run), run.check_results
    run = _replicate_on_tiny("negative-name-mover-gpt2-published", tiny_gpt2_12(),
                             {**base, (3, 7): -15.0, (5, 10): -15.0})
    assert run.verdict != "holds", run.check_results


def test_planted_copy_suppression_head_is_found_and_others_are_not():
    run = _replicate_on_tiny("copy-suppression-gpt2-published", tiny_gpt2_12(suppress=(10, 7)))
    assert _all_pass(run), run.check_results
    run = _replicate_on_tiny("copy-suppression-gpt2-published", tiny_gpt2_12(suppress=(4, 2)))
    assert run.verdict != "holds", run.check_results
