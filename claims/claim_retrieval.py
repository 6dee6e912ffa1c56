"""Retrieval heads (Wu et al. 2024): while the model copies a needle out of a long context with
its own greedy generation, a few heads put their top-1 attention on the very needle token being
written; masking them breaks the copy more than masking as many other heads of the same layers.

Scores follow Wu et al.: at each decoding step of the model's own (greedy) copy, a head scores a
hit when its top-1 attended position lies inside the needle and holds the token being generated;
score = hits / needle length. In a small model the copy step is induction-like, so the test also
measures how many of the retrieval heads are the model's top induction heads (not checked: a
recorded fact about the model)."""

import torch
from _attn import fmt, greedy_copy_attention, logits_at, median_depth, memo

from headatlas import prompts
from headatlas.claims import claim
from headatlas.methods import ablation, scoring, stats
from headatlas.prompts import patterns


def _needle(model, d):
    return patterns.needle_prompts(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=int(d["n_prompts"]),
                                   haystack_sentences=int(d["haystack_sentences"]), needle_len=int(d["needle_len"]),
                                   template=str(d["template"]), seed=int(d["seed"]))


def _copy_positions(nd):
    steps = torch.arange(nd.needle_len)
    queries = nd.answer_start[:, None] + steps[None] - 1          # position predicting needle token j
    return queries, nd.tokens.gather(1, queries + 1)


def _teacher_forced_accuracy(model, nd, hooks=()) -> torch.Tensor:
    """Per-prompt share of needle tokens that are the model's top-1 prediction given the true prefix."""
    queries, targets = _copy_positions(nd)
    logits = logits_at(model.bridge, nd.tokens, queries, hooks)
    return (logits.argmax(-1) == targets).float().mean(1)


def generation_scores(run, d):
    """Wu et al.'s retrieval score of every head from the model's own greedy copy of the needle:
    (needle, per-prompt scores [batch, layer, head], per-prompt greedy copy accuracy [batch],
    teacher-forced accuracy [batch]). Memoised per model and data (both claims share it)."""
    model = run.model

    def compute():
        nd = _needle(model, d)
        if not bool((nd.answer_start == nd.answer_start[0]).all()):
            raise ValueError("needle prompts must end their question at one position")
        c = int(nd.answer_start[0])
        needle = nd.tokens[:, c:]
        tf = _teacher_forced_accuracy(model, nd)
        if float(tf.mean()) < float(run.params["min_copy_accuracy"]):
            return nd, None, None, tf                  # the model does not copy: no generation
        gen, tops = greedy_copy_attention(model.bridge, nd.tokens[:, :c], needle, lambda rows: rows.argmax(-1))
        b, L = needle.shape
        hits = torch.zeros(b, model.n_layers, model.n_heads)
        for j in range(L):
            top = tops[j]                                                       # [layer, batch, head]
            inside = (top >= nd.needle_start[None, :, None]) & (top < nd.needle_start[None, :, None] + L)
            ctx = torch.cat([nd.tokens[:, :c], gen[:, :j]], 1)
            attended = ctx.gather(1, top.clamp(max=ctx.shape[1] - 1).permute(1, 0, 2).reshape(b, -1))
            attended = attended.view(b, model.n_layers, model.n_heads)
            hits += (inside.permute(1, 0, 2) & (attended == gen[:, j, None, None])).float()
        return nd, hits / L, (gen == needle).float().mean(1), tf
    key = {k: v for k, v in d.items() if k not in ("variants", "name")}
    return memo([run.model_name, "retrieval-generation-scores", key], compute)


def _applicable(run, copy_acc, tf, where):
    need = float(run.params["min_copy_accuracy"])
    if copy_acc is None or float(copy_acc.mean()) < need:
        got = float(tf.mean()) if copy_acc is None else float(copy_acc.mean())
        run.not_applicable(f"copies {got:.2f} of the needle tokens on the {where} "
                           f"(top-1{' teacher-forced' if copy_acc is None else ' greedy'}); the claim needs {need:g}")


def induction_top(run, k):
    """The model's top-k induction heads on the induction-scoring claim's selection data."""
    model, p = run.model, run.params

    def compute():
        rep = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab, n_prompts=16,
                                             block_len=40, seed=int(p["induction_seed"]))
        return scoring.head_scores(model.bridge, rep.tokens, ["induction"])["induction"]
    scores = memo([run.model_name, "induction-scores", int(p["induction_seed"])], compute)
    return scoring.top_heads(scores, k)


def _select(run, k):
    nd, per_prompt, copy_acc, tf = generation_scores(run, run.selection_data)
    _applicable(run, copy_acc, tf, "selection set")
    scores = per_prompt.mean(0)
    top = scoring.top_heads(scores, k)
    ind = induction_top(run, k)
    run.select(top, groups={"top_induction_heads": ind}, top_retrieval_score=scores[top[0]],
               selection_copy_accuracy=copy_acc, induction_overlap=len(set(top) & set(ind)) / k)
    return top, ind


@claim("retrieval-scoring")
def test_retrieval_heads(run):
    model, p = run.model, run.params
    k = int(p["top_k"])
    top, ind = _select(run, k)
    best = top[0]
    depth = median_depth(top, model.n_layers)
    for d in run.variants():
        nd, per_prompt, copy_acc, tf = generation_scores(run, d)
        if copy_acc is None:  # not even teacher-forced copying: the task is not done at all
            _applicable(run, copy_acc, tf, f"held-out {d.get('template')} prompts")
        scores = per_prompt.mean(0)
        # The frozen best head per held-out prompt; the null is the same score of every head.
        run.measure(best_score=per_prompt[:, best[0], best[1]],
                    share_above_half=(scores >= 0.5).float().mean(),
                    top_heads_depth=depth, greedy_copy_accuracy=copy_acc,
                    context_tokens=int(nd.answer_start[0]),
                    induction_overlap=len(set(top) & set(ind)) / k,
                    best_head_rank=scoring.head_rank(scores, *best))
        run.null("all_heads", scores.flatten())
        if run.is_primary:
            run.artifact(scores=scores.tolist(), score_name="retrieval score (Wu et al., own greedy copy)",
                         top_heads=fmt(top), top_induction_heads=fmt(ind))
    run.conclude()


@claim("retrieval-masking")
def test_masking_retrieval_heads_breaks_the_copy(run):
    model, p = run.model, run.params
    k = int(p["k"])
    top, ind = _select(run, k)
    n_sets = int(p["null_sets"])
    nulls = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=n_sets,
                                    seed=int(p["null_seed"]), exclude=top)
    for d in run.variants():
        nd = _needle(model, d)
        n, width = nd.tokens.shape
        zeros = {la: torch.zeros(width, model.n_heads, model.bridge.cfg.d_head) for la in range(model.n_layers)}
        base = _teacher_forced_accuracy(model, nd)
        if float(base.mean()) < float(p["min_copy_accuracy"]):
            run.not_applicable(f"copies {float(base.mean()):.2f} of the held-out needle tokens (top-1, teacher-"
                               f"forced); the claim needs {float(p['min_copy_accuracy']):g}")
        masked = _teacher_forced_accuracy(model, nd, ablation.mean_ablation_hooks(top, zeros))
        # The null: every matched set zeroed, in batches of sets over the same prompts.
        drops = []
        chunk = max(1, int(p["null_chunk"]))
        for s in range(0, n_sets, chunk):
            sets = nulls[s: s + chunk]
            hooks = ablation.mean_ablation_set_hooks(sets, zeros, n)
            m = _teacher_forced_accuracy(model, _repeat(nd, len(sets)), hooks)
            drops.append(base.mean() - m.view(len(sets), n).mean(1))
        run.measure(baseline_accuracy=base, accuracy_drop=base - masked,
                    induction_overlap=len(set(top) & set(ind)) / k)
        run.null("matched_sets", torch.cat(drops))
        if run.is_primary:
            run.artifact(ablated_heads=fmt(top), top_induction_heads=fmt(ind),
                         null_example_heads=fmt(nulls[0].tolist()),
                         effects={"labels": ["none", f"top {k} retrieval heads", f"median of {n_sets} layer-matched sets"],
                                  "values": [float(base.mean()), float(masked.mean()),
                                             float(base.mean() - torch.cat(drops).median())],
                                  "ylabel": "needle copy accuracy (top-1, teacher-forced)"})
    run.conclude()


def _repeat(nd, times):
    return patterns.Needle(nd.tokens.repeat(times, 1), nd.needle_start.repeat(times),
                           nd.answer_start.repeat(times), nd.needle_len)
