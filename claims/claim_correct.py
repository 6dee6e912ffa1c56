"""Correct heads (Wiegreffe et al. 2024): in formatted multiple-choice answering, a sparse set of
heads at the answer position whose output, projected onto the vocabulary, promotes the symbol of
the chosen answer, and whose outputs carry the choice: patching them from the same question with
the answer under another symbol moves the prediction.

Data: Wiegreffe et al.'s synthetic Colors task (headatlas.prompts.patterns, task "color"):
"What is the color of snow?" with four colours as options, so a model that fails fails at the
format, not at the fact. The objects are split in two: heads are chosen on the selection half
(another template and seed), frozen, and judged on the other half's objects in three templates.

- Selection: the k heads with the largest direct logit attribution to logit(correct symbol) -
  logit(the symbol the rotation makes correct), the vocabulary projection of their output.
- Held out: that attribution's share of the logit difference (bootstrapped ratio of means),
  against 999 head sets matched by layer (one pass gives every head's attribution); patching
  the k heads' outputs from the rotated question (the same prompt, every option one place down)
  and the fraction of the clean-rotated gap that moves. The patching has no null of its own, as
  in the correct-letter claim: on the 1.5B model a matched set costs a pass of every prompt.
"""

import torch
from _attn import fmt, median_depth
from claim_correct_letter import gated_measure, patched_diff

from headatlas.claims import claim
from headatlas.methods import scoring, stats


@claim("correct-head-colors")
def test_correct_heads(run):
    model, p = run.model, run.params
    k, min_acc, rotate = int(p["k"]), float(p["min_accuracy"]), int(p["rotate"])

    # Select: the heads whose direct output most promotes the correct symbol, on selection objects.
    s = gated_measure(run, run.selection_data, rotate, min_acc, "the right colour's letter", False)
    score = s["dla"].mean(1)                                                 # [layer, head]
    heads = scoring.top_heads(score, k)
    run.select(heads, selection_accuracy=s["accuracy"], top_selection_dla=score[heads[0]])
    sets = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                   seed=int(p["null_seed"]), exclude=heads)
    hv = torch.tensor(heads)

    # Measure on held-out objects and templates.
    for data in run.variants():
        m = gated_measure(run, data, rotate, min_acc, "the right colour's letter", True)
        dla, ld = m["dla"], m["ld"]
        patched = patched_diff(model, m, heads)
        gap = ld - m["ld_corrupt"]
        run.measure(accuracy=m["accuracy"], clean_logit_diff=ld, corrupted_logit_diff=m["ld_corrupt"],
                    dla_share=stats.bootstrap_ratio(dla[hv[:, 0], :, hv[:, 1]].sum(0), ld),
                    patched_gap_fraction=stats.bootstrap_ratio(ld - patched, gap),
                    correct_label_attention=m["to_correct"][hv[:, 0], :, hv[:, 1]].mean(0),
                    top_heads_depth=median_depth(heads, model.n_layers))
        run.null("matched_sets_dla", dla[sets[..., 0], :, sets[..., 1]].sum(1).mean(1) / ld.mean())
        if run.is_primary:
            run.artifact(scores=dla.mean(1).tolist(),
                         score_name="direct logit attribution to the correct symbol over the rotated one (held-out)",
                         top_heads=fmt(heads),
                         effects={"labels": [f"patch correct heads {', '.join(fmt(heads))}"],
                                  "values": [float((ld - patched).mean() / gap.mean())],
                                  "ylabel": "fraction of the clean-rotated logit-difference gap moved"})

    # Conclude.
    run.conclude()
