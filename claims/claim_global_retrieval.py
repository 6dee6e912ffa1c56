"""Global retrieval heads (RazorAttention, Tang et al. 2024): the heads found without task data,
as echo heads (attending to the earlier copy of the current token) and induction heads
(attending to the token after it) on repeated random tokens, are the ones that need the whole
context. Keeping the full key-value cache only for them, and cutting every other head down to the
first tokens plus a recent window, keeps most of the model's long-range copying; keeping it for
as many random heads of the same depth does not.

The cache is compressed as an attention mask (headatlas.methods.kvcache): a compressed head's
softmax runs over the sink and the window only. RazorAttention's compensation token (the average
of the dropped keys and values) is not modelled, so the compression here is the harsher one."""

import torch
from _attn import fmt, median_depth

from headatlas import prompts
from headatlas.claims import claim
from headatlas.methods import kvcache, scoring, stats
from headatlas.methods.ablation import final_residual
from headatlas.prompts import patterns


def _copy_data(model, d):
    return patterns.long_copy_prompts(model.tokenizer, model.bridge.cfg.d_vocab, kind=str(d["kind"]),
                                      n_prompts=int(d["n_prompts"]), items=int(d["items"]), gap=int(d["gap"]),
                                      lead=int(d["lead"]), seed=int(d["seed"]))


def _accuracy(bridge, tokens, scored, keep, sink, window, per_pass):
    """Per-prompt top-1 accuracy on the scored copy positions (teacher-forced) under each
    compression configuration of keep [n_configs, layer, head]: [n_configs, n_prompts]. The
    configurations run `per_pass` at a time, each pass one batch of repeated prompts."""
    n = tokens.shape[0]
    targets = tokens.gather(1, scored + 1)
    out = []
    for s in range(0, keep.shape[0], per_pass):
        chunk = keep[s: s + per_pass]
        c = chunk.shape[0]
        x = final_residual(bridge, tokens.repeat(c, 1), kvcache.compress_hooks(chunk, sink, window, n))
        pos = scored.repeat(c, 1)
        xs = x.gather(1, pos[..., None].expand(-1, -1, x.shape[-1]))
        tgt = targets.repeat(c, 1)
        with torch.inference_mode():
            hit = torch.stack([(bridge.unembed(xs[i: i + 1]).argmax(-1)[0] == tgt[i]).float().mean()
                               for i in range(xs.shape[0])])
        out.append(hit.view(c, n))
    return torch.cat(out)


def _select(run):
    """RazorAttention's data-free choice: the top share of heads by induction score plus the top
    share by echo (duplicate-token) score, on repeated random tokens."""
    model, p = run.model, run.params
    total = model.n_layers * model.n_heads
    sel = prompts.from_spec(model, run.selection_data)
    scores = scoring.head_scores(model.bridge, sel.tokens, ["induction", "duplicate_token"])
    induction = scoring.top_heads(scores["induction"], max(1, round(float(p["induction_share"]) * total)))
    echo = scoring.top_heads(scores["duplicate_token"], max(1, round(float(p["echo_share"]) * total)))
    kept = list(induction) + [h for h in echo if h not in induction]
    run.select(kept, groups={"induction": induction, "echo": echo},
               top_induction_score=scores["induction"][induction[0]],
               top_echo_score=scores["duplicate_token"][echo[0]], kept_share=len(kept) / total)
    return kept, scores


@claim("global-retrieval-cache")
def test_global_retrieval_heads_keep_copying(run):
    model, p = run.model, run.params
    L, H = model.n_layers, model.n_heads
    sink, window, need = int(p["sink"]), int(p["window"]), float(p["min_copy_accuracy"])
    kept, sel_scores = _select(run)
    nulls = stats.matched_head_sets(kept, L, H, n_sets=int(p["null_sets"]), seed=int(p["null_seed"]),
                                    exclude=kept, match="band", band=int(p["null_band"]))
    everything = [(la, h) for la in range(L) for h in range(H)]
    for d in run.variants():
        data = _copy_data(model, d)
        if data.min_distance <= window:
            raise ValueError(f"the copy source lies {data.min_distance} positions back, inside the "
                             f"{window}-token window: compression would not touch it")
        # (a) full cache first: a model that cannot copy is not applicable (the random twin).
        full = _accuracy(model.bridge, data.tokens, data.scored, kvcache.keep_table([everything], L, H),
                         sink, window, 1)[0]
        if float(full.mean()) < need:
            run.not_applicable(f"copies {float(full.mean()):.2f} of the tokens of {d.get('name', d['kind'])} "
                               f"with its full cache (top-1, teacher-forced); the claim needs {need:g}")
        # (b) every head compressed, (c) the retrieval heads kept, (e) only the retrieval heads
        # compressed, then (d) the null: each matched random set kept instead.
        retrieval_compressed = [h for h in everything if h not in set(kept)]
        configs = [[], kept, retrieval_compressed] + [s.tolist() for s in nulls]
        acc = _accuracy(model.bridge, data.tokens, data.scored, kvcache.keep_table(configs, L, H),
                        sink, window, int(p["configs_per_pass"]))
        none, ret, rc, null = acc[0], acc[1], acc[2], acc[3:]
        lost = float((full - none).mean())
        if lost <= 0:
            run.not_applicable(f"compressing every head to {sink} sink + {window} window tokens keeps all "
                               f"its copying ({float(none.mean()):.2f} vs {float(full.mean()):.2f}): nothing to retain")
        run.measure(full_cache_accuracy=full, compressed_accuracy=none, retrieval_kept_accuracy=ret,
                    compression_accuracy_drop=full - none,
                    retained_fraction=stats.bootstrap_ratio(ret - none, full - none),
                    retrieval_compressed_drop=full - rc, copy_distance=data.min_distance)
        run.null("matched_sets", (null.mean(1) - none.mean()) / lost)
        if run.is_primary:
            run.artifact(scores=sel_scores["induction"].tolist(),
                         score_name="induction score (repeated random tokens, selection set)",
                         top_heads=fmt(kept[:10]), kept_heads=fmt(kept), kept_median_depth=median_depth(kept, L),
                         null_example_heads=fmt(nulls[0].tolist()),
                         effects={"labels": ["full cache", "all compressed", f"{len(kept)} retrieval heads kept",
                                             f"{len(kept)} random heads kept (median of {len(nulls)})",
                                             "only retrieval heads compressed"],
                                  "values": [float(full.mean()), float(none.mean()), float(ret.mean()),
                                             float(null.mean(1).median()), float(rc.mean())],
                                  "ylabel": "copy accuracy (top-1, teacher-forced)"})
    run.conclude()
