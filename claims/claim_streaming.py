"""Streaming heads (Xiao et al.; DuoAttention): many heads attend almost only to the first
tokens (the attention sink) and a recent window, and restricting them to that costs nothing."""

import torch
from _attn import by_layer, fmt, forward_reduce, random_heads

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import ablation


def _windows(n: int, sink: int, window: int, shift: int = 0) -> torch.Tensor:
    """[q, k] bool: the first `sink` keys plus the `window` keys ending `shift` before the query.
    shift = 0 is the sink + recent window; shift > 0 moves both blocks into the middle of the
    context (same number of keys), the control."""
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None]
    if shift == 0:
        return ((k < sink) | (k > q - window)) & (k <= q)
    return ((k >= shift) & (k < shift + sink)) | ((k > q - shift - window) & (k <= q - shift))


def _texts(run, seed):
    d = run.data
    return patterns.sentence_text(run.model.tokenizer, corpus=str(d["corpus"]), n_prompts=int(d["n_prompts"]),
                                      n_tokens=int(d["n_tokens"]), seed=seed)


@claim("streaming-sink-window")
def test_streaming_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    sink, window, q0 = int(p["sink"]), int(d["window"]), int(p["query_from"])
    scoring_tokens = _texts(run, int(d["score_seed"]))
    n = scoring_tokens.shape[1]
    local = _windows(n, sink, window)[q0:]
    middle = _windows(n, sink, window, shift=int(p["control_shift"]))[q0:]

    def shares(pattern):                              # [batch, head, q, k] -> [3, head]
        rows = pattern[:, :, q0:]
        return torch.stack([(rows * local).sum(-1).mean((0, 2)), (rows * middle).sum(-1).mean((0, 2)),
                            rows[..., 0].mean((0, 2))])

    s = forward_reduce(model.bridge, scoring_tokens, {"s": shares})["s"]      # [layer, 3, head]
    share, ctrl_share, first = s[:, 0], s[:, 1], s[:, 2]
    cut = float(p["share_min"])
    streaming = [(la, h) for la in range(model.n_layers) for h in range(model.n_heads) if share[la, h] >= cut]
    others = random_heads(model, len(streaming), int(p["control_seed"]), exclude=streaming)

    # Held-out texts (another seed): restrict heads to sink + window, renormalised.
    tokens = _texts(run, int(d["seed"]))
    keep = _windows(tokens.shape[1], sink, window)

    def restrict(heads):
        hooks = []
        for layer, hs in by_layer(heads).items():
            def f(pattern, hook, hs=hs):
                pattern = pattern.clone()
                sub = pattern[:, hs] * keep.to(pattern.dtype)
                pattern[:, hs] = sub / sub.sum(-1, keepdim=True).clamp(min=1e-12)
                return pattern
            hooks.append((f"blocks.{layer}.attn.hook_pattern", f))
        return hooks

    # Loss on the last predictions only: their queries see the most distant context (and the
    # full-vocabulary unembedding, costly for Gemma, is needed only there).
    span = slice(tokens.shape[1] - 1 - int(p["loss_last"]), tokens.shape[1] - 1)

    def loss(heads):
        return float(ablation.token_losses(model.bridge, tokens, restrict(heads) if heads else [], positions=span).mean())

    base = loss([])
    run.measure(streaming_share=len(streaming) / (model.n_layers * model.n_heads),
                control_streaming_share=float((ctrl_share >= cut).float().mean()),
                first_token_share_mean=float(first.mean()),
                uniform_first_token_share=float((1.0 / torch.arange(q0 + 1, n + 1).float()).mean()),
                baseline_loss=base,
                loss_increase=loss(streaming) - base if streaming else 0.0,
                control_loss_increase=loss(others) - base if others else 0.0)
    if run.is_primary:
        run.artifact(scores=share.tolist(), score_name=f"attention share on the first {sink} + last {window} tokens",
                     top_heads=fmt(sorted(streaming, key=lambda h: -float(share[h]))[:10]),
                     first_token_share=first.tolist(), control_heads=fmt(others))
