"""Helpers of the letter-mover, semantic-induction and successor claims: the batched patching of
many head sets gives what patching each set alone gives, the relation pairs split into disjoint
selection and held-out halves, and the successor sequences split as the claim states."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from helpers import smollm2, tiny_gpt2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "claims"))


def test_batched_set_patching_matches_patching_each_set():
    from _attn import forward_reduce, patch_z_hooks
    from claim_letter_mover import _patch_sets_hooks

    bridge = tiny_gpt2().bridge
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(100, 5000, (3, 9), generator=gen)
    corrupt = clean.clone()
    corrupt[:, 4] = torch.randint(100, 5000, (3,), generator=gen)
    z = forward_reduce(bridge, corrupt, z_at=-1)["z"]
    sets = torch.tensor([[[2, 1], [5, 3]], [[2, 7], [6, 0]], [[0, 0], [0, 4]]])
    batched = forward_reduce(bridge, clean.repeat(len(sets), 1), final_at=-1,
                             fwd_hooks=_patch_sets_hooks(sets, z, -1, clean.shape[0]))["final"]
    for s in range(len(sets)):
        alone = forward_reduce(bridge, clean, final_at=-1,
                               fwd_hooks=patch_z_hooks([tuple(h) for h in sets[s].tolist()], z, -1))["final"]
        torch.testing.assert_close(batched[s * 3: s * 3 + 3], alone, atol=1e-4, rtol=1e-4)
    unpatched = forward_reduce(bridge, clean, final_at=-1)["final"]
    assert not torch.allclose(batched[:3], unpatched, atol=1e-4)


def test_relation_halves_are_disjoint_and_cover_the_pairs():
    from claim_semantic_induction import _pairs

    tok = smollm2().tokenizer
    for rel in ("country-capital", "country-language", "antonym"):
        a, b = _pairs(tok, rel, 0, 0), _pairs(tok, rel, 0, 1)
        assert not set(a) & set(b)
        assert abs(len(a) - len(b)) <= 1 and len(a) >= 10
        assert _pairs(tok, rel, 0, 0) == a                     # seeded


def test_successor_selection_and_held_out_sequences_differ():
    from claim_successor import _sets

    tok = smollm2().tokenizer
    held = _sets(tok, ["ordinals", "days", "months"])
    sel = _sets(tok, ["numbers", "number_words", "letters", "capital_letters"])
    assert {s.name for s in held} == {"ordinals", "days", "months"}
    assert not {t for s in held for t in s.token_ids} & {t for s in sel for t in s.token_ids}
