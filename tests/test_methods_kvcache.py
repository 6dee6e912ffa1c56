"""headatlas.methods.kvcache: cache compression as an attention mask. A window as long as the
sequence changes nothing; a compressed head attends only to the sink and the window while a
kept head keeps its pattern; many configurations batched in one pass give what each gives alone;
and the long-copy prompts put the copy source beyond the window."""

from __future__ import annotations

import torch
from helpers import smollm2, tiny_gpt2

from headatlas.methods import kvcache, scoring
from headatlas.methods.ablation import final_residual
from headatlas.prompts import patterns


def _tokens(b=2, n=24, seed=0):
    return torch.randint(100, 5000, (b, n), generator=torch.Generator().manual_seed(seed))


def test_sink_window_mask():
    m = kvcache.sink_window(8, 2, 3)
    assert m[7].tolist() == [True, True, False, False, False, True, True, True]
    assert m[1].tolist() == [True, True] + [False] * 6                    # causal
    assert not m.triu(1).any()


def test_window_as_long_as_the_sequence_changes_nothing():
    bridge = tiny_gpt2().bridge
    tokens = _tokens()
    n = tokens.shape[1]
    keep = kvcache.keep_table([[]], bridge.cfg.n_layers, bridge.cfg.n_heads)   # every head compressed
    plain = final_residual(bridge, tokens)
    masked = final_residual(bridge, tokens, kvcache.compress_hooks(keep, sink=1, window=n))
    torch.testing.assert_close(masked, plain, atol=1e-5, rtol=1e-5)
    short = final_residual(bridge, tokens, kvcache.compress_hooks(keep, sink=1, window=3))
    assert not torch.allclose(short, plain, atol=1e-3)


def test_compressed_heads_see_only_sink_and_window_kept_heads_everything():
    model = smollm2()
    bridge = model.bridge
    tokens = _tokens(n=40)
    sink, window = 4, 8
    kept = [(3, 1), (17, 4)]
    keep = kvcache.keep_table([kept], model.n_layers, model.n_heads)
    hooks = kvcache.compress_hooks(keep, sink, window)
    masked = scoring.attention_patterns(bridge, tokens, hooks)       # edits run before the read
    outside = ~kvcache.sink_window(tokens.shape[1], sink, window)
    for layer, head in [(0, 0), (3, 0), (17, 5), (29, 8)]:
        assert float(masked[:, layer, head][:, outside].abs().max()) == 0.0
        torch.testing.assert_close(masked[:, layer, head].sum(-1), torch.ones(2, tokens.shape[1]))
    # a kept head's own row is untouched; its input differs only through earlier compressed layers
    layer0_plain = scoring.attention_patterns(bridge, tokens)[:, 0, 1]
    keep0 = kvcache.keep_table([[(0, 1)]], model.n_layers, model.n_heads)
    layer0_kept = scoring.attention_patterns(bridge, tokens, kvcache.compress_hooks(keep0, sink, window))[:, 0, 1]
    torch.testing.assert_close(layer0_kept, layer0_plain)
    assert float(masked[:, 3, 1][:, outside].sum()) > 0                  # kept: still reads far keys


def test_batched_configurations_match_each_alone():
    bridge = tiny_gpt2().bridge
    L, H = bridge.cfg.n_layers, bridge.cfg.n_heads
    tokens = _tokens(b=3, n=20, seed=1)
    configs = [[], [(1, 2), (4, 7)], [(h // H, h % H) for h in range(L * H)]]
    keep = kvcache.keep_table(configs, L, H)
    batched = final_residual(bridge, tokens.repeat(len(configs), 1), kvcache.compress_hooks(keep, 2, 4, tokens.shape[0]))
    for c in range(len(configs)):
        alone = final_residual(bridge, tokens, kvcache.compress_hooks(keep[c: c + 1], 2, 4))
        torch.testing.assert_close(batched[c * 3: c * 3 + 3], alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batched[6:], final_residual(bridge, tokens), atol=1e-5, rtol=1e-5)  # all kept


def test_long_copy_prompts_put_the_source_beyond_the_gap():
    tok = smollm2().tokenizer
    vocab = smollm2().bridge.cfg.d_vocab
    for kind, items in [("random-tokens", 12), ("words", 12), ("key-value", 6)]:
        d = patterns.long_copy_prompts(tok, vocab, kind=kind, n_prompts=3, items=items, gap=24, seed=0)
        assert d.min_distance >= 24
        targets = d.tokens.gather(1, d.scored + 1)
        for b in range(3):
            for p, t in zip(d.scored[b].tolist(), targets[b].tolist()):
                assert t in d.tokens[b, : p - 24].tolist()                 # the answer lies far back
        again = patterns.long_copy_prompts(tok, vocab, kind=kind, n_prompts=3, items=items, gap=24, seed=0)
        assert torch.equal(again.tokens, d.tokens)                         # seeded
