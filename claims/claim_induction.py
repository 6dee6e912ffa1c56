"""Induction heads: they exist in the middle layers, attend by content, and carry copying."""

from _scoring import measure_scoring_claim

from headatlas import prompts
from headatlas.claims import claim
from headatlas.methods import ablation, scoring, stats


@claim("induction-scoring")
def test_induction_heads(run):
    measure_scoring_claim(run, "induction", control="fresh-second-block")


@claim("induction-mean-ablation")
def test_mean_ablating_induction_heads_breaks_copying(run):
    model, p = run.model, run.params
    k = int(p["k"])
    sel = prompts.from_spec(model, run.selection_data)
    scores = scoring.head_scores(model.bridge, sel.tokens, ["induction"])["induction"]
    top = scoring.top_heads(scores, k)
    run.select(top, top_induction_score=scores[top[0]])
    nulls = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                    seed=int(p["null_seed"]), exclude=top)
    for data_spec in run.variants():
        data = prompts.from_spec(model, data_spec)
        fresh = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab,
                                               n_prompts=data.tokens.shape[0], block_len=data.block_len,
                                               seed=data.seed, fresh_second_block=True)
        reference = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab,
                                                   n_prompts=data.tokens.shape[0], block_len=data.block_len,
                                                   seed=int(data_spec["reference_seed"]))
        means = ablation.head_output_means(model.bridge, reference.tokens, range(model.n_layers))
        # Loss on predicting the second block's tokens (positions whose target lies in it).
        span = slice(data.second_block.start, data.second_block.stop - 1)

        def repeated_loss(tokens, heads):
            hooks = ablation.mean_ablation_hooks(heads, means)
            return ablation.token_losses(model.bridge, tokens, hooks, positions=span).mean(1)

        base = repeated_loss(data.tokens, [])
        run.measure(baseline_loss=base, loss_increase=repeated_loss(data.tokens, top) - base,
                    control_loss_increase=repeated_loss(fresh.tokens, top) - repeated_loss(fresh.tokens, []))
        # The null: every matched set ablated in one batched pass over the same prompts.
        n = data.tokens.shape[0]
        hooks = ablation.mean_ablation_set_hooks(nulls, means, n)
        losses = ablation.token_losses(model.bridge, data.tokens.repeat(len(nulls), 1), hooks, positions=span)
        run.null("matched_sets", losses.mean(1).view(len(nulls), n).mean(1) - base.mean())
        if run.is_primary:
            run.artifact(ablated_heads=[scoring.fmt_head(*h) for h in top],
                         null_example_heads=[scoring.fmt_head(*h) for h in nulls[0].tolist()])
    run.conclude()
