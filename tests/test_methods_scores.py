"""Scoring methods: hand-made patterns with known scores, planted heads, hand-set OV circuits,
and the weight path checked against the forward pass."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import planting_hooks, smollm2, tiny_gpt2
from test_methods_fixtures import hand_set_gpt2, one_thread, set_ids  # noqa: F401 (fixture)

from headatlas import prompts
from headatlas.methods import attention, ov, scoring, weights
from headatlas.prompts import patterns, probes
from headatlas.prompts.probes import OrdinalSet

pytestmark = pytest.mark.usefixtures("one_thread")


def one_hot_rows(b: int, h: int, s: int, targets: torch.Tensor) -> torch.Tensor:
    """[b, h, s, s] pattern with every row q attending fully to key targets[q] (clamped causal)."""
    p = torch.zeros(b, h, s, s)
    for q in range(s):
        p[:, :, q, min(int(targets[q]), q)] = 1.0
    return p


# ----------------------------------------------------------------------------- retrieval


def test_retrieval_score_counts_top1_hits_inside_the_needle():
    # tokens: [0] bos, needle 10 11 12 at 2..4, filler, answer 10 11 12 at 8..10
    tokens = torch.tensor([[1, 5, 10, 11, 12, 6, 7, 8, 10, 11, 12]])
    s = tokens.shape[1]
    ns, ans, L = torch.tensor([2]), torch.tensor([8]), 3
    perfect = torch.zeros(1, 3, s, s)
    perfect[:, :, :, 0] = 1.0
    # head 0: at step j (query 7 + j) attends to needle token j: all hits
    # head 1: attends to needle token j + 1: in the needle, wrong token: no hits
    # head 2: hits on step 0 only
    for j in range(L):
        q = 7 + j
        perfect[0, :, q] = 0
        perfect[0, 0, q, 2 + j] = 1
        perfect[0, 1, q, 2 + (j + 1) % L] = 1
        perfect[0, 2, q, 2 if j == 0 else 1] = 1
    got = attention.retrieval_score(perfect, tokens, ns, ans, L)
    torch.testing.assert_close(got, torch.tensor([1.0, 0.0, 1 / 3]))


def test_retrieval_matches_a_copy_outside_the_needle_as_a_miss():
    tokens = torch.tensor([[1, 10, 5, 10, 11, 6, 10, 11]])   # token 10 also at position 1 (outside)
    p = torch.zeros(1, 1, 8, 8)
    p[0, 0, :, 0] = 1
    p[0, 0, 5] = 0
    p[0, 0, 5, 1] = 1            # step 0: attends to the outside copy of the right token
    p[0, 0, 6] = 0
    p[0, 0, 6, 4] = 1            # step 1: right token inside the needle
    got = attention.retrieval_score(p, tokens, torch.tensor([3]), torch.tensor([6]), 2)
    assert got.tolist() == [0.5]


def test_retrieval_heads_on_smollm2_are_its_induction_heads():
    """Retrieval heads copy from context; in a small model the best ones are induction heads."""
    model = smollm2()
    nd = patterns.needle_prompts(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=2, haystack_sentences=4, seed=1)
    got = attention.layer_scores(model.bridge, nd.tokens, {
        "r": lambda p: attention.retrieval_score(p, nd.tokens, nd.needle_start, nd.answer_start, nd.needle_len)})["r"]
    assert got.shape == (30, 9)
    assert got.max() >= 0.75
    rep = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=4, block_len=20, seed=0)
    ind = scoring.head_scores(model.bridge, rep.tokens, ["induction"])["induction"]
    assert set(scoring.top_heads(got, 3)) & set(scoring.top_heads(ind, 5))


# ----------------------------------------------------------------------------- negative attention


def test_negative_attention_score_formula():
    s = 6
    p = torch.zeros(1, 2, s, s)
    p[..., 0] = 1.0
    yes, no = torch.tensor([1]), torch.tensor([2])
    for q in (3, 4, 5):
        p[0, :, q] = 0
        p[0, 0, q, 1], p[0, 0, q, 2], p[0, 0, q, 0] = 0.1, 0.6, 0.3    # towards No
        p[0, 1, q, 1], p[0, 1, q, 2], p[0, 1, q, 0] = 0.25, 0.25, 0.5  # balanced
    got = attention.negative_attention_score(p, yes, no)
    expected = 3 * (0.7 * math.log(0.6 / 0.1))
    torch.testing.assert_close(got, torch.tensor([expected, 0.0]), atol=1e-5, rtol=1e-5)
    # only queries from query_start on count
    got2 = attention.negative_attention_score(p, yes, no, query_start=torch.tensor([5]))
    torch.testing.assert_close(got2[0], torch.tensor(expected / 3), atol=1e-5, rtol=1e-5)
    # swapping the options flips the sign
    torch.testing.assert_close(attention.negative_attention_score(p, no, yes), -got, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- constant attention


def test_option_attention_entropy_is_1_when_uniform_and_0_on_one_option():
    s = 10
    opts = torch.tensor([[2, 4, 6, 8]])
    p = torch.zeros(1, 3, s, s)
    p[0, 0, -1, [2, 4, 6, 8]] = 0.2          # uniform over options, 0.8 mass
    p[0, 0, -1, 0] = 0.2
    p[0, 1, -1, 4] = 1.0                     # one option
    p[0, 2, -1, [2, 4]] = 0.5                # two of four
    ent, mass = attention.option_attention(p, opts)
    torch.testing.assert_close(ent, torch.tensor([1.0, 0.0, 0.5]), atol=1e-5, rtol=0)
    torch.testing.assert_close(mass, torch.tensor([0.8, 1.0, 1.0]))


# ----------------------------------------------------------------------------- subwords, rare tokens


def test_same_word_pattern_and_subword_merge_score():
    word_ids = torch.tensor([[-1, 0, 1, 1, 1, 2]])
    d = attention.same_word_pattern(word_ids)[0]
    assert d[3].tolist() == [0, 0, 1, 0, 0, 0]
    assert d[4].tolist() == [0, 0, 1, 1, 0, 0]
    assert d[1].sum() == 0 and d[5].sum() == 0
    s = 6
    merge = torch.zeros(1, 1, s, s)
    merge[0, 0, :, 0] = 1
    merge[0, 0, 3] = torch.tensor([0, 0, 1.0, 0, 0, 0])
    merge[0, 0, 4] = torch.tensor([0, 0, 0.5, 0.5, 0, 0])
    prev = one_hot_rows(1, 1, s, torch.arange(s) - 1)      # attends to previous token
    got = attention.subword_merge_score(torch.cat([merge, prev], 1), word_ids)
    torch.testing.assert_close(got, torch.tensor([1.0, 1.0]))   # both look inside the word here
    word_ids2 = torch.tensor([[-1, 0, 0, 1, 1, 1]])                # now query 3 starts a new word
    got2 = attention.subword_merge_score(prev, word_ids2)
    # rows with an earlier same-word piece: 2 (prev=1 hit), 4 (prev=3 hit), 5 (prev=4 hit)
    torch.testing.assert_close(got2, torch.tensor([1.0]))


def test_rarest_token_pattern_marks_the_rarest_earlier_token():
    tokens = torch.tensor([[1, 50, 900, 20, 700, 30]])
    exclude = torch.tensor([[True, False, False, False, False, False]])
    d = attention.rarest_token_pattern(tokens, exclude=exclude)[0]
    assert d[0].sum() == 0 and d[1].sum() == 0           # nothing earlier (BOS excluded)
    assert d[2].tolist() == [0, 1, 0, 0, 0, 0]           # only 50 is earlier
    assert d[5].tolist() == [0, 0, 1, 0, 0, 0]           # 900 is the rarest so far
    counts = torch.zeros(1000)
    counts[[50, 900, 20, 700, 30]] = torch.tensor([5.0, 1.0, 9.0, 0.5, 3.0])
    d2 = attention.rarest_token_pattern(tokens, rarity=-counts, exclude=exclude)[0]  # rarer = fewer counts
    assert d2[5].tolist() == [0, 0, 0, 0, 1, 0]          # 700 has the fewest counts
    p = one_hot_rows(1, 1, 6, torch.tensor([0, 0, 1, 2, 2, 2]))
    got = attention.rare_token_score(p, tokens, exclude=exclude)
    # rows with a target: 2..5; hits at 2 (->1), 3 (->2), 4 (->2), 5 (->2)
    assert got.tolist() == [1.0]


def test_layer_scores_agree_with_the_existing_detector_scores():
    """One reducing pass gives the same numbers as scoring.head_scores (the TransformerLens peer)."""
    model = tiny_gpt2()
    rep = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=3, block_len=10, seed=2)
    hooks = planting_hooks("induction", rep.tokens, [(4, 5)])
    ref = scoring.head_scores(model.bridge, rep.tokens, list(scoring.PATTERNS), fwd_hooks=hooks)
    det = {k: scoring.PATTERNS[k](rep.tokens) for k in scoring.PATTERNS}
    mine = attention.layer_scores(model.bridge, rep.tokens,
                                  {k: (lambda p, k=k: scoring.pattern_score(p[:, None], det[k])[0]) for k in det},
                                  fwd_hooks=hooks)
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k], atol=1e-6, rtol=0)
    assert scoring.top_heads(mine["induction"], 1) == [(4, 5)]


# ----------------------------------------------------------------------------- OV circuits


def test_hand_set_successor_head_scores_one_and_others_zero():
    model = hand_set_gpt2()
    sets = [OrdinalSet("days", [], set_ids())]
    for through in ("raw", "block0"):
        got = ov.successor_scores(model.bridge, sets, through=through)
        assert got.n_pairs == len(set_ids()) - 1
        assert got.scores[1, 0] == 1.0
        assert got.scores[1, 1] == 0.0 and got.scores[0].max() == 0.0


def test_hand_set_copy_suppression_and_copying():
    model = hand_set_gpt2()
    diag = ov.ov_diagonal(model.bridge, torch.tensor(set_ids()), through="raw")
    cs, cp = ov.copy_suppression_scores(diag), ov.copying_scores(diag)
    assert cs[1, 1] == 1.0 and cs[1, 0] < 1.0
    assert cp[1, 1] == 0.0
    assert (diag.zscore[1, 1] < -1.5).all()


def test_successor_scores_on_smollm2_are_well_formed():
    model = smollm2()
    sets = probes.ordinal_sets(model.tokenizer)
    assert {s.name for s in sets} >= {"days", "months", "letters", "numbers"}
    assert next(s for s in sets if s.name == "numbers").words[:3] == ["1", "2", "3"]   # digits split: no space
    got = ov.successor_scores(model.bridge, sets)
    assert got.scores.shape == (30, 9)
    assert 0 <= float(got.scores.min()) and float(got.scores.max()) <= 1
    # the best head beats a successor-blind head (chance is ~1/|set| per set) by a margin
    assert got.scores.max() > 2 * got.scores.median()


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_ov_circuit_equals_the_forward_pass(which):
    """A one-token prompt makes every head attend fully to that token; the head's output at
    layer 1, through the final norm's gain and W_U, must equal the weight-path OV logits
    (checks the norm handling and, on SmolLM2, the grouped-query K/V expansion)."""
    model = tiny_gpt2() if which == "tiny" else smollm2()
    b = model.bridge
    src = torch.tensor([400, 1234, 5000])
    dst = torch.tensor([400, 1234, 5000, 77, 9000])
    logits = weights.ov_logits(b, src, dst, layers=[1])[0]                        # [head, 3, 5]
    _, cache = b.run_with_cache(src[:, None], prepend_bos=False)
    z = cache["blocks.1.attn.hook_z"][:, 0].detach()                               # [3, head, d_head]
    out = torch.einsum("nhd,hdm->hnm", z, b.W_O[1].detach())
    ref = weights.final_ln_linear(b, out) @ b.W_U.detach()[:, dst]
    torch.testing.assert_close(logits, ref, atol=1e-3, rtol=1e-3)


def test_effective_embedding_block0_is_the_residual_after_block_0():
    b = tiny_gpt2().bridge
    ids = torch.tensor([10, 20, 30])
    emb = weights.effective_embedding(b, ids, "block0")
    _, cache = b.run_with_cache(ids[:, None], prepend_bos=False)
    torch.testing.assert_close(emb, cache["blocks.0.hook_resid_post"][:, 0].detach())
    torch.testing.assert_close(weights.effective_embedding(b, ids, "raw"), b.W_E[ids].detach())
