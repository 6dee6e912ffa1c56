"""The pieces of the truthfulness claims: true/false statements, grouped cross-validated probes,
mass-mean directions and the batched head-set shift."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from headatlas.methods import probing, steering
from headatlas.prompts import tasks as pt
from tests.helpers import smollm2


@pytest.fixture(scope="module")
def tok():
    return smollm2().tokenizer


def facts(tok, template="capital", n=8):
    data = pt.fact_prompts(tok, template)
    keep = torch.zeros(len(data.subjects), dtype=torch.bool)
    keep[:n] = True
    return pt.subset(data, keep)


@pytest.mark.parametrize("per_fact", [1, 3])
def test_truth_statements_balance_labels_and_attribute_tokens(tok, per_fact):
    f = facts(tok)
    d = pt.truth_statements(tok, f, seed=0, per_fact=per_fact, suffix=" This statement is")
    n = len(f.subjects)
    assert d.tokens.shape[0] == 2 * per_fact * n and d.subjects == f.subjects
    assert d.label.tolist() == [1, 0] * (per_fact * n)                  # pairs: true then false
    true_attr = dict(zip(range(n), f.answer.tolist()))
    for row, lab, fact, attr in zip(d.tokens, d.label.tolist(), d.fact.tolist(), d.attribute.tolist()):
        assert row[d.attribute_pos] == attr
        assert (attr == true_attr[fact]) == (lab == 1)                    # a false row never states the truth
        assert row[: d.attribute_pos].tolist() == f.tokens[fact].tolist()
        assert tok.decode(row[d.end_pos]) == "."
        assert tok.decode(row[d.end_pos + 1:]) == " This statement is"
    # every attribute is stated as often falsely as truly: the token alone cannot tell the label
    counts = Counter((a, lab) for a, lab in zip(d.attribute.tolist(), d.label.tolist()))
    for a in set(d.attribute.tolist()):
        assert counts[(a, 1)] == counts[(a, 0)] == per_fact
    # each fact's false attributes are distinct
    for fact in range(n):
        wrong = [a for a, lab, fa in zip(d.attribute.tolist(), d.label.tolist(), d.fact.tolist()) if fa == fact and not lab]
        assert len(set(wrong)) == per_fact
    again = pt.truth_statements(tok, f, seed=0, per_fact=per_fact, suffix=" This statement is")
    assert torch.equal(again.tokens, d.tokens)
    other = pt.truth_statements(tok, f, seed=1, per_fact=per_fact, suffix=" This statement is")
    assert not torch.equal(other.tokens, d.tokens)


def test_truth_statements_never_call_a_shared_attribute_false(tok):
    # Portugal and Brazil share " Portuguese", Spain and Mexico " Spanish": a false statement
    # must not give a country its own language through the other country.
    d = pt.truth_statements(tok, facts(tok, "language", n=24), seed=0, per_fact=4)
    answer = {}
    for fact, lab, a in zip(d.fact.tolist(), d.label.tolist(), d.attribute.tolist()):
        if lab:
            answer[fact] = a
    for fact, lab, a in zip(d.fact.tolist(), d.label.tolist(), d.attribute.tolist()):
        assert lab or a != answer[fact]


def test_truth_statements_need_enough_facts(tok):
    with pytest.raises(ValueError):
        pt.truth_statements(tok, facts(tok, n=3), seed=0, per_fact=3)


def planted(n_groups=20, per_group=4, d=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    groups = torch.arange(n_groups).repeat_interleave(per_group)
    labels = torch.tensor([1, 0] * (n_groups * per_group // 2))
    feats = torch.randn(2, 3, len(labels), d, generator=gen)
    feats[1, 2, :, 4] += 2.5 * (labels.float() * 2 - 1)                # head 1.2 carries the label
    return feats, labels, groups


def test_group_folds_never_split_a_group():
    groups = torch.arange(10).repeat_interleave(3)
    folds = probing.group_folds(groups, 4, seed=0)
    assert sorted(torch.cat(folds).tolist()) == list(range(30))
    for f in folds:
        for g in groups[f].unique():
            assert set((groups == g).nonzero().flatten().tolist()) <= set(f.tolist())
    with pytest.raises(ValueError):
        probing.group_folds(groups, 11, seed=0)


def test_grouped_cv_and_held_out_probes_find_the_planted_head():
    feats, labels, groups = planted()
    correct, prob = probing.grouped_cv(feats, labels, groups, folds=4, seed=0)
    acc = correct.mean(-1)
    assert acc.shape == (2, 3) and prob.shape == correct.shape
    assert acc[1, 2] >= 0.95 and prob.mean(-1)[1, 2] > 0.8
    assert torch.cat([acc.flatten()[:5]]).max() < 0.8
    assert ((prob > 0.5).float() == correct).all()                       # binary: right class iff p > 0.5
    probes = probing.fit_probes(feats, labels, seed=0)
    test, test_labels, _ = planted(seed=1)
    held = probes.correct(test, test_labels).mean(-1)
    assert held[1, 2] >= 0.95 and held.flatten()[:5].max() < 0.8


def test_rank_heads_puts_the_planted_head_first_and_weights_rows():
    feats, labels, groups = planted()
    top, cv = probing.rank_heads(feats, labels, groups, k=2, folds=4, seed=0)
    assert top[0] == (1, 2) and len(top) == 2 and cv.shape == (2, 3)
    correct, _ = probing.grouped_cv(feats, labels, groups, folds=4, seed=0)
    assert torch.equal(cv, correct.mean(-1))                             # no weights: plain accuracy
    weights = torch.where(labels.bool(), 2.0, 0.0)                        # only the rows of one class count
    _, weighted = probing.rank_heads(feats, labels, groups, k=1, folds=4, seed=0, row_weights=weights)
    assert torch.allclose(weighted, (correct * weights).mean(-1))


def test_matched_shift_sets_put_the_chosen_heads_first_with_their_own_vectors():
    unit = torch.nn.functional.normalize(torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    sigma = torch.arange(12, dtype=torch.float).view(4, 3) + 1
    sets, vectors = steering.matched_shift_sets([(1, 2), (3, 0)], unit, sigma, 5.0, 4, 3, n_sets=19, seed=0)
    assert sets.shape == (20, 2, 2) and vectors.shape == (20, 2, 5)
    assert sets[0].tolist() == [[1, 2], [3, 0]]
    assert (sets[1:, 0, 0] == 1).all() and (sets[1:, 1, 0] == 3).all()   # same layers
    assert not ((sets[1:, 0] == torch.tensor([1, 2])).all(-1)).any()      # the chosen heads are excluded
    for s in (0, 7):
        for j in range(2):
            layer, head = sets[s, j].tolist()
            assert torch.allclose(vectors[s, j], 5.0 * sigma[layer, head] * unit[layer, head])


def test_probe_heads_unchanged_by_the_fit_refactor():
    # probe_heads now trains through fit_probes; with a linearly planted label it still finds it,
    # and train accuracy is measured on the training rows.
    feats, labels, _ = planted()
    res = probing.probe_heads(feats, labels, seed=0)
    assert res.accuracy[1, 2] >= 0.95 and res.n_train + res.n_test == len(labels)


def test_mass_mean_direction_points_from_false_to_true():
    feats, labels, _ = planted()
    unit, sigma = steering.mass_mean_directions(feats, labels)
    assert unit.shape == (2, 3, 6) and sigma.shape == (2, 3)
    assert torch.allclose(unit.norm(dim=-1), torch.ones(2, 3))
    assert unit[1, 2, 4] > 0.95                                           # the planted coordinate, true side positive
    proj = (feats[1, 2] @ unit[1, 2])
    assert abs(float(proj.std()) - float(sigma[1, 2])) < 1e-5
    with pytest.raises(ValueError):
        steering.mass_mean_directions(feats, torch.ones_like(labels))


def test_stratified_direction_ignores_what_the_strata_differ_by():
    """Label 1 is commoner in stratum 1, which sits far along coordinate 0, and is the only
    label of stratum 2, which sits far along coordinate 2; the label itself moves coordinate 1.
    The plain mass-mean direction points mostly elsewhere, the stratified one along coordinate 1
    (stratum 2, without both labels, is left out)."""
    gen = torch.Generator().manual_seed(0)
    strata = torch.tensor([0] * 40 + [1] * 40 + [2] * 10)
    labels = torch.cat([torch.arange(40) < 10, torch.arange(40) < 30, torch.ones(10, dtype=torch.bool)])
    x = 0.1 * torch.randn(90, 4, generator=gen)
    x[:, 0] += 5.0 * (strata == 1)
    x[:, 1] += 1.0 * labels
    x[80:, 2] += 50.0                                                   # stratum 2: one label only
    plain, _ = steering.mass_mean_directions(x, labels)
    unit, sigma = steering.stratified_mass_mean_directions(x, labels, strata, min_each=2)
    assert float(plain[1]) < 0.2 and float(plain[0]) > 0.1
    assert float(unit[1]) > 0.99 and abs(float(unit[2])) < 0.05
    assert abs(float(sigma) - float((x @ unit).std())) < 1e-5
    with pytest.raises(ValueError, match="no stratum"):
        steering.stratified_mass_mean_directions(x, labels, strata, min_each=41)


def test_head_set_addition_hooks_shift_only_their_rows_heads_and_positions():
    sets = torch.tensor([[[0, 1], [1, 0]], [[0, 2], [1, 0]]])              # 2 sets of 2 heads
    vectors = torch.arange(1, 1 + 2 * 2 * 3, dtype=torch.float).view(2, 2, 3)
    n, pos, start = 2, 5, 3
    hooks = dict(steering.head_set_addition_hooks(sets, vectors, n, start, row_sign=torch.tensor([1.0, -1.0])))
    z = torch.zeros(2 * n, pos, 4, 3)
    out0 = hooks["blocks.0.attn.hook_z"](z, None)
    assert out0[:, :start].abs().sum() == 0                               # nothing before `start`
    assert torch.equal(out0[0, start:, 1], vectors[0, 0].expand(pos - start, 3))
    assert torch.equal(out0[1, start:, 1], -vectors[0, 0].expand(pos - start, 3))   # row sign
    assert out0[:n, :, 2].abs().sum() == 0 and out0[n:, :, 1].abs().sum() == 0    # each set its own head
    assert torch.equal(out0[2, start:, 2], vectors[1, 0].expand(pos - start, 3))
    out1 = hooks["blocks.1.attn.hook_z"](z, None)
    assert torch.equal(out1[3, -1, 0], -vectors[1, 1])
    assert out1[:, :, 1:].abs().sum() == 0
