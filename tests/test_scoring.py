"""Head scores: agreement with TransformerLens's head detector, and planted heads are found."""

from __future__ import annotations

import pytest
import torch
from helpers import planting_hooks, smollm2, tiny_gpt2
from transformer_lens.head_detector import detect_head

from headatlas import prompts
from headatlas.methods import scoring

TEXT = "The quick brown fox jumps over the lazy dog near the old river bank today. " * 2


@pytest.mark.parametrize("ours, theirs", [("previous_token", "previous_token_head"),
                                          ("duplicate_token", "duplicate_token_head"),
                                          ("induction", "induction_head")])
def test_scores_agree_with_transformerlens_head_detector(ours, theirs):
    model = smollm2()
    tokens = model.bridge.to_tokens(TEXT)
    mine = scoring.head_scores(model.bridge, tokens, [ours])[ours]
    reference = detect_head(model.bridge, TEXT, theirs)
    assert mine.shape == reference.shape == (30, 9)
    assert reference.max() > 0.2, "the text should give this pattern something to find"
    torch.testing.assert_close(mine, reference.to(mine.dtype), atol=1e-4, rtol=0)


def test_batched_scores_are_the_mean_of_single_prompt_scores():
    model = smollm2()
    data = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=3, block_len=8, seed=5)
    batched = scoring.head_scores(model.bridge, data.tokens, ["induction"])["induction"]
    singles = torch.stack([scoring.head_scores(model.bridge, data.tokens[i:i + 1], ["induction"])["induction"]
                           for i in range(3)]).mean(0)
    torch.testing.assert_close(batched, singles, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", sorted(scoring.PATTERNS))
def test_a_planted_head_is_the_top_head(kind):
    model = tiny_gpt2()
    data = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=4, block_len=12, seed=0)
    scores = scoring.head_scores(model.bridge, data.tokens, [kind],
                                 fwd_hooks=planting_hooks(kind, data.tokens, [(3, 7)]))[kind]
    assert scoring.top_heads(scores, 1) == [(3, 7)]
    unplanted = scoring.head_scores(model.bridge, data.tokens, [kind])[kind]
    assert scores[3, 7] > unplanted[3, 7] + 0.2


def test_unknown_score_name_is_an_error():
    with pytest.raises(ValueError, match="unknown score"):
        scoring.head_scores(tiny_gpt2().bridge, torch.zeros(1, 4, dtype=torch.long), ["eval('x')"])


def test_detection_patterns_on_a_hand_made_sequence():
    tokens = torch.tensor([[7, 8, 9, 7, 8]])
    dup = scoring.duplicate_token_pattern(tokens)[0]
    ind = scoring.induction_pattern(tokens)[0]
    prev = scoring.previous_token_pattern(tokens)[0]
    assert dup[3].tolist() == [1, 0, 0, 0, 0] and dup[4].tolist() == [0, 1, 0, 0, 0]
    assert ind[3].tolist() == [0, 1, 0, 0, 0] and ind[4].tolist() == [0, 0, 1, 0, 0]
    assert prev[4].tolist() == [0, 0, 0, 1, 0] and prev[0].sum() == 0


def test_random_heads_is_seeded_and_respects_exclude_and_where():
    """The shared random-heads control: the same seed draws the same heads, excluded heads and
    heads failing `where` are never drawn, and different seeds draw different sets."""
    top = [(0, 0), (1, 2)]
    a = scoring.random_heads(4, 3, 5, seed=1, exclude=top)
    assert a == scoring.random_heads(4, 3, 5, seed=1, exclude=top)
    assert len(set(a)) == 5 and not set(a) & set(top)
    assert a != scoring.random_heads(4, 3, 5, seed=2, exclude=top)
    early = scoring.random_heads(4, 3, 10, seed=1, where=lambda layer, _: layer < 2)
    assert sorted(early) == [(layer, head) for layer in range(2) for head in range(3)]  # k larger than the pool
