"""Streaming heads (Xiao et al. StreamingLLM; DuoAttention): many heads attend almost only to the
first tokens (the attention sink) and a recent window. The defining property is the sink's:
restricting those heads to sink + window keeps the model's loss, while keeping the window without
the sink (or with as many other keys in its place) raises it."""

import torch
from _attn import by_layer, fmt, forward_reduce

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import ablation


def _windows(n: int, sink: int, window: int, shift: int = 0) -> torch.Tensor:
    """[q, k] bool: the first `sink` keys plus the `window` keys ending `shift` before the query.
    shift = 0 is the sink + recent window; shift > 0 moves both blocks into the middle of the
    context (same number of keys)."""
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None]
    if shift == 0:
        return ((k < sink) | (k > q - window)) & (k <= q)
    return ((k >= shift) & (k < shift + sink)) | ((k > q - shift - window) & (k <= q - shift))


def key_masks(n: int, sink: int, window: int, moved: torch.Tensor) -> torch.Tensor:
    """[2 + n_sets, q, k] bool masks of the keys a restricted head may see: sink + window, the
    window alone (sink dropped), then for each row of `moved` [n_sets, sink] the window plus those
    keys in the sink's place (the null)."""
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None]
    win = (k > q - window) & (k <= q)
    out = [_windows(n, sink, window), win]
    for keys in moved:
        extra = torch.zeros(n, dtype=torch.bool)
        extra[keys] = True
        out.append(win | (extra[None] & (k <= q)))
    return torch.stack(out)


def restrict_hooks(heads, keep: torch.Tensor) -> list:
    """Hooks restricting `heads` to the keys of `keep` [batch, q, k] (one mask per row), the
    pattern renormalised over them: a softmax over only those keys."""
    hooks = []
    for layer, hs in by_layer(heads).items():
        def f(pattern, hook, hs=hs):
            pattern = pattern.clone()
            sub = pattern[:, hs] * keep[:, None].to(pattern.dtype)
            pattern[:, hs] = sub / sub.sum(-1, keepdim=True).clamp(min=1e-12)
            return pattern
        hooks.append((f"blocks.{layer}.attn.hook_pattern", f))
    return hooks


def _texts(run, d):
    return patterns.sentence_text(run.model.tokenizer, corpus=str(d["corpus"]), n_prompts=int(d["n_prompts"]),
                                  n_tokens=int(d["n_tokens"]), seed=int(d["seed"]))


def _shares(run, d):
    """Each head's attention share on sink + window over the queries from query_from: [layer, head]."""
    p = run.params
    sink, window, q0 = int(p["sink"]), int(d["window"]), int(p["query_from"])
    tokens = _texts(run, d)
    local = _windows(tokens.shape[1], sink, window)[q0:]
    return forward_reduce(run.model.bridge, tokens,
                          {"s": lambda pat: (pat[:, :, q0:] * local).sum(-1).mean((0, 2))})["s"]


@claim("streaming-sink-window")
def test_streaming_heads(run):
    model, p = run.model, run.params
    cut = float(p["share_min"])
    share = _shares(run, run.selection_data)
    streaming = [(la, h) for la in range(model.n_layers) for h in range(model.n_heads) if share[la, h] >= cut]
    run.select(streaming, selection_streaming_share=len(streaming) / (model.n_layers * model.n_heads))
    for d in run.variants():
        _measure(run, d, streaming)
    run.conclude()


def _measure(run, d, streaming):
    model, p = run.model, run.params
    sink, window, n_sets = int(p["sink"]), int(d["window"]), int(p["null_sets"])
    total = model.n_layers * model.n_heads
    held = _shares(run, d)
    still = sum(1 for h in streaming if float(held[h]) >= float(p["share_min"]))
    tokens = _texts(run, d)
    b, n = tokens.shape
    last = int(p["loss_last"])
    span = slice(n - 1 - last, n - 1)
    # The null's keys: `sink` positions drawn from after the sink and before the window of the
    # first scored query, so no scored query sees them in its window anyway.
    gen = torch.Generator().manual_seed(int(p["null_seed"]))
    lo, hi = sink, n - 1 - last - window
    moved = torch.stack([lo + torch.randperm(hi - lo, generator=gen)[:sink] for _ in range(n_sets)])
    masks = key_masks(n, sink, window, moved)                                  # [2 + n_sets, q, k]
    if not streaming:
        zeros = torch.zeros(b)
        run.measure(streaming_share=0.0, held_out_streaming_heads=0, baseline_loss=0.0,
                    sink_window_loss_increase=zeros, sink_drop_loss_increase=zeros)
        run.null("moved_sink", torch.zeros(n_sets))
        return
    base = ablation.token_losses(model.bridge, tokens, positions=span).mean(1)          # [b]
    losses = []
    chunk = max(1, int(p["masks_per_pass"]))
    for s in range(0, masks.shape[0], chunk):
        m = masks[s: s + chunk]
        keep = m.repeat_interleave(b, 0)                                       # rows: mask-major
        rows = tokens.repeat(m.shape[0], 1)
        out = ablation.token_losses(model.bridge, rows, restrict_hooks(streaming, keep), positions=span)
        losses.append(out.mean(1).view(m.shape[0], b))
    losses = torch.cat(losses) - base[None]                                    # [2 + n_sets, b]
    run.measure(streaming_share=still / total, held_out_streaming_heads=still, baseline_loss=base,
                sink_window_loss_increase=losses[0], sink_drop_loss_increase=losses[1])
    run.null("moved_sink", losses[2:].mean(1))
    if run.is_primary:
        run.artifact(scores=held.tolist(), score_name=f"attention share on the first {sink} + last {window} tokens",
                     top_heads=fmt(sorted(streaming, key=lambda h: -float(held[h]))[:10]),
                     effects={"labels": ["sink + window", "window only", f"window + {sink} other keys (median of {n_sets})"],
                              "values": [float(losses[0].mean()), float(losses[1].mean()), float(losses[2:].mean(1).median())],
                              "ylabel": "loss increase (nats), streaming heads restricted"})
