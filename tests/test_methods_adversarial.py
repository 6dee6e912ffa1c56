"""Gradient-guided substitution (headatlas.methods.adversarial) and the words it may use."""

from __future__ import annotations

import pytest
import torch
from helpers import smollm2, tiny_gpt2
from test_methods_fixtures import one_thread  # noqa: F401 (fixture)

from headatlas.methods import adversarial
from headatlas.prompts import patterns

pytestmark = pytest.mark.usefixtures("one_thread")


def _objective(target: int):
    return lambda logits, rows: logits[:, target] - logits.logsumexp(-1)


def test_same_initial_words_are_capitalised_single_tokens_grouped_by_initial():
    tok = smollm2().tokenizer
    groups = patterns.same_initial_words(tok)
    assert len(groups) == 26
    for i, ids in enumerate(groups):
        for t in ids[:50].tolist():
            text = tok.decode([t])
            assert text[:2] == " " + chr(65 + i) and text[2:].isalpha() and text[2:].islower(), text
    assert tok.encode(" Sound", add_special_tokens=False)[0] in groups[ord("S") - 65].tolist()


def test_embedding_gradient_predicts_a_small_change_of_the_embedding():
    """The first-order change grad . delta matches the objective's change when delta is added to
    one position's embedding (float32, small step)."""
    model = tiny_gpt2()
    b = model.bridge
    tokens = torch.tensor([[11, 523, 97, 1402, 77, 305]])
    objective = _objective(42)
    grad = adversarial.embedding_gradient(b, tokens, objective)
    assert grad.shape == (1, 6, b.cfg.d_model)
    delta = torch.randn(b.cfg.d_model, generator=torch.Generator().manual_seed(0)) * 1e-3

    def run(shift):
        def add(x, hook):
            x = x.clone()
            x[:, 3] += shift
            return x
        with torch.inference_mode():
            logits = b.run_with_hooks(tokens, fwd_hooks=[("hook_embed", add)])[:, -1].float()
        return float(objective(logits, torch.arange(1))[0])

    assert run(delta) - run(0.0) == pytest.approx(float(grad[0, 3] @ delta), rel=0.05, abs=1e-6)


def test_worst_substitution_keeps_the_exact_worst_of_what_it_tried():
    """With every candidate tried, the chosen one is the brute-force argmin; the original token is
    never used; `after` is the objective of the returned prompts."""
    model = tiny_gpt2()
    b = model.bridge
    tokens = torch.tensor([[11, 523, 97, 1402, 77, 305], [15, 88, 641, 23, 909, 4]])
    position = torch.tensor([2, 3])
    cands = [torch.tensor([97, 300, 301, 302, 303]), torch.tensor([500, 501, 23, 502])]
    objective = _objective(42)
    sub = adversarial.worst_substitution(b, tokens, position, cands, objective, top=10)
    assert sub.tried == 3                                       # the narrower row, original left out
    for r in range(2):
        assert int(sub.replaced_by[r]) != int(tokens[r, position[r]])
        assert int(sub.tokens[r, position[r]]) == int(sub.replaced_by[r])
        keep = torch.ones(6, dtype=torch.bool)
        keep[position[r]] = False
        assert torch.equal(sub.tokens[r, keep], tokens[r, keep])
    with torch.inference_mode():
        after = objective(b(sub.tokens)[:, -1].float(), torch.arange(2))
    assert torch.allclose(after, sub.after, atol=1e-4)
    # brute force over row 0's four candidates
    with torch.inference_mode():
        trial = tokens[:1].repeat(4, 1)
        trial[:, 2] = torch.tensor([300, 301, 302, 303])
        exact = objective(b(trial)[:, -1].float(), torch.zeros(4, dtype=torch.long))
    ranked = torch.tensor([300, 301, 302, 303])[exact.argsort()]
    w_e = b.W_E.detach().float()
    grad = adversarial.embedding_gradient(b, tokens[:1], objective)[0, 2]
    tried = torch.tensor([300, 301, 302, 303])[torch.argsort(w_e[torch.tensor([300, 301, 302, 303])] @ grad)[:3]]
    assert int(sub.replaced_by[0]) == min(tried.tolist(), key=lambda t: ranked.tolist().index(t))


def test_margin_objective_is_the_right_choice_over_the_others():
    logits = torch.zeros(2, 10)
    logits[0, 3], logits[0, 5], logits[0, 7] = 4.0, 1.0, 1.0                 # right 3: margin 4 - log(2e)
    logits[1, 5], logits[1, 3] = 2.0, 3.0                                      # right 5, beaten by 3
    choices = torch.tensor([3, 5, 7])
    m = adversarial.margin_objective(choices, torch.tensor([3, 5]))(logits, torch.arange(2))
    assert m[0] == pytest.approx(4.0 - (1.0 + torch.log(torch.tensor(2.0)).item()), abs=1e-5)
    assert m[1] < 0
