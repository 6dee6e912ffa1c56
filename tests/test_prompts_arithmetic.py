"""The addition prompts of the arithmetic-head claim: seeded, the target is the first digit of
the sum, the operand positions hold the test sum's operands, the corrupted twin changes one
operand and the first digit of the answer; and the claim's patched passes, which start from a
cached residual stream, give what a full patched pass gives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from headatlas.prompts import arithmetic as pa
from tests.helpers import smollm2, tiny_gpt2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "claims"))


@pytest.fixture(scope="module")
def tok():
    return smollm2().tokenizer


def decode(tok, ids):
    return "".join(tok.decode([i]) for i in ids)


def test_sum_prompts_are_seeded(tok):
    a = pa.sum_prompts(tok, n_prompts=6, template="plain", seed=3)
    b = pa.sum_prompts(tok, n_prompts=6, template="plain", seed=3)
    c = pa.sum_prompts(tok, n_prompts=6, template="plain", seed=4)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert not torch.equal(a.clean, c.clean)


@pytest.mark.parametrize("template", sorted(pa.SUM_TEMPLATES))
def test_answer_digits_operand_positions_and_corruption(tok, template):
    s = pa.sum_prompts(tok, n_prompts=8, n_shots=2, template=template, seed=0)
    question, _ = pa.SUM_TEMPLATES[template]
    assert s.clean.shape == s.corrupted.shape and s.operand_pos.shape == (8, 4)
    for i in range(8):
        a, b = int(s.a[i]), int(s.b[i])
        assert 10 <= a <= 49 and 10 <= b <= 49
        text = decode(tok, s.clean[i].tolist())
        assert text.endswith(question.format(a=a, b=b))
        # the positions hold a's two digits, then b's
        assert decode(tok, s.clean[i, s.operand_pos[i]].tolist()) == f"{a}{b}"
        # targets: the first and second digit of the sum, each one token
        assert tok.decode([int(s.correct[i])]) == str(a + b)[0]
        assert tok.decode([int(s.second[i])]) == str(a + b)[1]
        # appending the answer gives the text the model would write
        full = decode(tok, s.clean[i].tolist() + [int(s.correct[i]), int(s.second[i])])
        assert full.endswith(question.format(a=a, b=b) + str(a + b))
        # the corrupted prompt replaces operand a (even rows) or b (odd rows) and nothing else
        which, r = int(s.changed[i]), int(s.corrupt_value[i])
        assert which == i % 2
        a2, b2 = (r, b) if which == 0 else (a, r)
        assert decode(tok, s.corrupted[i].tolist()).endswith(question.format(a=a2, b=b2))
        differ = (s.clean[i] != s.corrupted[i]).nonzero().flatten()
        assert set(differ.tolist()) <= set(s.operand_pos[i, 2 * which: 2 * which + 2].tolist())
        assert tok.decode([int(s.wrong[i])]) == str(a2 + b2)[0] != str(a + b)[0]


def test_solved_lines_are_right_and_bad_settings_are_refused(tok):
    s = pa.sum_prompts(tok, n_prompts=3, n_shots=3, template="spaced", seed=1)
    lines = decode(tok, s.clean[0].tolist()).split("\n")[:-1]
    assert len(lines) == 3
    for line in lines:
        left, right = line.split(" = ")
        x, y = left.split(" + ")
        assert int(x[-2:]) + int(y) == int(right)
    with pytest.raises(ValueError):
        pa.sum_prompts(tok, template="nope")
    with pytest.raises(ValueError):
        pa.sum_prompts(tok, low=10, high=60)


def test_patched_pass_from_a_cached_layer_equals_the_full_patched_pass():
    from _attn import forward_reduce, patch_z_hooks
    from claim_arithmetic import _final_from
    from claim_letter_mover import _patch_sets_hooks

    bridge = tiny_gpt2().bridge
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(100, 5000, (3, 9), generator=gen)
    corrupt = clean.clone()
    corrupt[:, 4] = torch.randint(100, 5000, (3,), generator=gen)
    z = forward_reduce(bridge, corrupt, z_at=-1)["z"]
    keep = {}

    def grab(x, hook):
        keep["resid"] = x.detach().clone()
        return x
    forward_reduce(bridge, clean, fwd_hooks=[("blocks.3.hook_resid_pre", grab)], final_at=-1)
    heads = [(3, 1), (5, 7)]
    full = forward_reduce(bridge, clean, fwd_hooks=patch_z_hooks(heads, z, -1), final_at=-1)["final"]
    torch.testing.assert_close(_final_from(bridge, keep["resid"], 3, patch_z_hooks(heads, z, -1)), full,
                               atol=1e-4, rtol=1e-4)
    sets = torch.tensor([heads, [(3, 0), (6, 2)]])
    batched = _final_from(bridge, keep["resid"].repeat(2, 1, 1), 3, _patch_sets_hooks(sets, z, -1, 3))
    torch.testing.assert_close(batched[:3], full, atol=1e-4, rtol=1e-4)
