"""Induction heads: they exist in the middle layers, attend by content, and carry copying."""

import torch
from _scoring import measure_scoring_claim

from headatlas import prompts
from headatlas.claims import claim
from headatlas.methods import ablation, scoring


@claim("induction-scoring")
def test_induction_heads(run):
    measure_scoring_claim(run, "induction", control="fresh-second-block")


@claim("induction-mean-ablation")
def test_mean_ablating_induction_heads_breaks_copying(run):
    for _ in run.variants():
        _measure_ablation(run)
    run.conclude()


def _measure_ablation(run):
    model, p = run.model, run.params
    data = prompts.from_spec(model, run.data)
    reference = prompts.repeated_random_tokens(model.tokenizer, model.bridge.cfg.d_vocab,
                                               n_prompts=data.tokens.shape[0], block_len=data.block_len,
                                               seed=int(run.data["reference_seed"]))
    scores = scoring.head_scores(model.bridge, data.tokens, ["induction"])["induction"]
    k = int(p["k"])
    top = scoring.top_heads(scores, k)
    pool = [(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)
            if scores[layer, head] < float(p["non_induction_below"])]
    gen = torch.Generator().manual_seed(int(p["control_seed"]))
    control = [pool[i] for i in torch.randperm(len(pool), generator=gen)[:k].tolist()]

    means = ablation.head_output_means(model.bridge, reference.tokens, range(model.n_layers))
    # Loss on predicting the second block's tokens (positions whose target lies in it).
    span = slice(data.second_block.start, data.second_block.stop - 1)

    def repeated_loss(heads):
        hooks = ablation.mean_ablation_hooks(heads, means)
        return float(ablation.token_losses(model.bridge, data.tokens, hooks, positions=span).mean())

    base = repeated_loss([])
    run.measure(baseline_loss=base, loss_increase=repeated_loss(top) - base,
                control_loss_increase=repeated_loss(control) - base)
    if run.is_primary:
        run.artifact(ablated_heads=[scoring.fmt_head(*h) for h in top],
                     control_heads=[scoring.fmt_head(*h) for h in control])
