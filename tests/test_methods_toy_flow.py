"""Simplified-model training (induction phase change) and information-flow graphs."""

from __future__ import annotations

import functools

import pytest
import torch
from helpers import smollm2, tiny_gpt2
from test_methods_fixtures import one_thread  # noqa: F401 (fixture)

from headatlas.methods import flow, toy
from headatlas.prompts import probes

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- toy training


@functools.lru_cache(maxsize=1)
def trained():
    return toy.train_induction(seed=0)


def test_repeated_batches_repeat_the_block_at_its_own_offset():
    tokens, lengths = toy.repeated_batch(torch.Generator().manual_seed(0), 5, 30, 50)
    for t, n in zip(tokens, lengths.tolist()):
        assert torch.equal(t[:n], t[n:2 * n])
    rows, target = toy.induction_masks(lengths, 30)
    n = int(lengths[0])
    assert rows[0].nonzero().flatten().tolist() == list(range(n, 2 * n - 1))
    assert int(target[0, n]) == 1


def test_induction_heads_form_in_a_phase_change():
    run = trained()
    assert run.seconds < 120
    first, last = run.curve[0], run.curve[-1]
    # loss on repeated tokens: from chance (ln 64 = 4.16) to well below
    assert first["repeat_loss"] > 3.9 and last["repeat_loss"] < 1.5
    # an induction head appears in layer 1 and a previous-token head in layer 0
    assert first["induction"] < 0.15 and last["induction"] > 0.6
    assert last["previous_token"] > 0.3 and last["previous_token"] > 3 * first["previous_token"]
    # a phase change: most of the drop happens within a few evaluation steps
    assert run.phase_change_step is not None
    drops = [a["repeat_loss"] - b["repeat_loss"] for a, b in zip(run.curve, run.curve[1:])]
    total = first["repeat_loss"] - last["repeat_loss"]
    assert sum(sorted(drops, reverse=True)[:4]) > 0.5 * total, "the loss should fall suddenly, not steadily"


def test_ablating_the_previous_token_head_breaks_induction():
    """K-composition: the layer-1 induction head needs the layer-0 previous-token head."""
    run = trained()
    tokens, lengths = run.eval_data
    whole = toy.evaluate(run.model, tokens, lengths)
    cut = toy.evaluate(run.model, tokens, lengths, zero_heads=[run.previous_token_head])
    ih = run.induction_head[1]
    assert cut["induction"][1, ih] < 0.5 * whole["induction"][1, ih]
    assert cut["repeat_loss"] > whole["repeat_loss"] + 0.5


# ----------------------------------------------------------------------------- information flow


def test_contribution_importances_are_a_distribution_and_respect_attention():
    gen = torch.Generator().manual_seed(0)
    s, h, dh, dm = 4, 2, 3, 6
    resid = torch.randn(s, dm, generator=gen)
    pattern = torch.zeros(h, s, s)
    pattern[:, torch.arange(s), torch.arange(s)] = 1.0      # every head attends to itself
    pattern[1, 3] = torch.tensor([1.0, 0, 0, 0])            # except head 1 at query 3 -> key 0
    v = torch.randn(s, h, dh, generator=gen)
    w_o = torch.randn(h, dh, dm, generator=gen)
    imp = flow.contribution_importance(resid, pattern, v, w_o, torch.zeros(dm))
    torch.testing.assert_close(imp.sum(-1), torch.ones(s))
    heads = imp[:, 1:].view(s, h, s)
    assert heads[3, 1, 1:].abs().max() == 0 and heads[3, 0, :3].abs().max() == 0
    # a contribution equal to the whole output has importance 1
    imp2 = flow.contribution_importance(torch.zeros(s, dm), pattern, v, w_o * torch.tensor([1.0, 0.0])[:, None, None],
                                        torch.zeros(dm))
    assert torch.allclose(imp2[:, 1:].view(s, h, s)[torch.arange(s), 0, torch.arange(s)][:3], torch.ones(3))


def test_flow_graph_with_planted_previous_token_heads():
    """If every layer-0 head attends to the previous token, every layer-0 head edge goes j -> j + 1."""
    model = tiny_gpt2()
    b = model.bridge
    tokens = torch.tensor([[1, 500, 600, 700, 800, 900]])
    s = tokens.shape[1]
    prev = torch.zeros(s, s)
    prev[0, 0] = 1
    prev[torch.arange(1, s), torch.arange(s - 1)] = 1

    def plant(pattern, hook):
        return prev.expand_as(pattern).clone().to(pattern.dtype)

    g = flow.information_flow(b, tokens, threshold=0.0, fwd_hooks=[("blocks.0.attn.hook_pattern", plant)])
    layer0 = [e for e in g.head_edges() if e["dst"][0] == 1]
    assert layer0, "some layer-0 edges must survive a zero threshold"
    assert all(e["src"][1] == max(e["dst"][1] - 1, 0) for e in layer0)
    assert all(e["weight"] > 0 for e in layer0)


def test_flow_graph_is_connected_to_the_target_and_thresholds_prune():
    model = smollm2()
    d = probes.ioi_prompts(model.tokenizer, n_prompts=1)
    g = flow.information_flow(model.bridge, d.clean[0], threshold=0.04)
    s = d.clean.shape[1]
    assert g.target == (30, s - 1)
    nodes = set(g.nodes)
    for e in g.edges:
        assert e["dst"] in nodes and e["src"] in nodes and e["dst"][0] == e["src"][0] + 1
    reach = {g.target}
    for layer in reversed(range(31)):
        reach |= {e["src"] for e in g.edges if e["dst"] in reach and e["dst"][0] == layer}
    assert nodes == reach, "every node lies on a route to the prediction"
    torch.testing.assert_close(g.importance.sum(-1), torch.ones(30, s), atol=1e-4, rtol=0)
    tighter = flow.information_flow(model.bridge, d.clean[0], threshold=0.1)
    key = lambda e: (e["src"], e["dst"], e["head"])
    assert {key(e) for e in tighter.edges} <= {key(e) for e in g.edges}
    # the final position reads from earlier tokens through some head
    assert any(e["src"][1] != e["dst"][1] for e in g.head_edges())
