"""Correct-letter heads (Lieberum et al. 2023): when a model answers a multiple-choice question
with the label of an option, a few late heads at the answer position attend to the label of the
correct option and write that label to the output; patching their outputs from the same question
with the options rotated (the right answer under another letter) moves the model's choice.

Protocol: heads are chosen on selection prompts (another template and seed) by attention to the
correct label x direct logit attribution to it, frozen, then judged on three held-out sets. The
nulls are the same statistics of 999 head sets matched by layer to the chosen ones (one pass
gives every head's attention and attribution). The patching effect of the chosen heads is
measured with no null of its own: on the 1.5B model each matched set would cost a forward pass
of every prompt, about 10 minutes per variant here."""

import torch
from _attn import fmt, forward_reduce, head_dla, median_depth, patch_z_hooks, unembed_rows
from _mcqa import clean_pass, prompt_options, share_on_correct

from headatlas.claims import claim
from headatlas.methods import scoring, stats
from headatlas.prompts import patterns


def _prompts(model, d: dict, rotate: int = 0):
    return patterns.mcqa_prompts(model.tokenizer, **prompt_options(d, rotate))


def _label_logits(bridge, final: torch.Tensor, label_ids: torch.Tensor) -> torch.Tensor:
    return unembed_rows(bridge, final)[:, label_ids]                        # [batch, n_options]


def gated_measure(run, data: dict, rotate: int, min_acc: float, what: str, held_out: bool) -> dict:
    """_measure on one data spec; the claim is not applicable, with the accuracy, where the model
    picks `what` in fewer than min_acc of the prompts."""
    m = _measure(run.model, data, rotate, min_acc)
    if m["accuracy"] < min_acc:
        where = f"of the held-out prompts ({run.variant})" if held_out else "of the selection prompts (chance 25%)"
        run.not_applicable(f"picks {what} in {m['accuracy']:.0%} {where}; the claim needs {min_acc:.0%}")
    return m


def patched_diff(model, m: dict, heads) -> torch.Tensor:
    """logit(correct label) - logit(the label the rotation makes correct) per prompt, with the
    heads' outputs at the answer position patched in from the rotated question (`m` from
    _measure)."""
    out = forward_reduce(model.bridge, m["q"].tokens, fwd_hooks=patch_z_hooks(heads, m["corrupt"]["z"], -1),
                         final_at=-1)
    rows = torch.arange(out["final"].shape[0])
    lp = _label_logits(model.bridge, out["final"], m["q"].label_ids)
    return lp[rows, m["q"].answer] - lp[rows, m["r"].answer]


def _measure(model, d: dict, rotate: int, min_accuracy: float = 0.0):
    """Clean pass (attention to each option label from the answer position, every head's output
    there, the final residual), the rotated pass's head outputs, and the logit difference between
    the correct label and the label the rotation makes correct. Below `min_accuracy` only the
    accuracy is returned: the claim is not applicable, and the rest would be wasted."""
    bridge = model.bridge
    clean = clean_pass(model, d)                       # shared with the amplification and gatherer claims
    q, lab, accuracy = clean["q"], clean["label_logits"], clean["accuracy"]
    rows = torch.arange(q.tokens.shape[0])
    if accuracy < min_accuracy:
        return {"accuracy": accuracy}
    r = _prompts(model, d, rotate)
    corrupt = forward_reduce(bridge, r.tokens, z_at=-1, final_at=-1)
    correct, other = q.label_ids[q.answer], q.label_ids[r.answer]
    out = {"q": q, "r": r, "clean": clean, "corrupt": corrupt, "correct": correct, "other": other,
           "accuracy": accuracy,
           "ld": lab[rows, q.answer] - lab[rows, r.answer],
           "ld_corrupt": (lambda lc: lc[rows, q.answer] - lc[rows, r.answer])(
               _label_logits(bridge, corrupt["final"], q.label_ids))}
    out["to_correct"], out["selectivity"] = share_on_correct(clean["labels"], q.answer)   # [layer, batch, head]
    out["dla"] = head_dla(bridge, clean["z"], clean["scale"], correct, other, per_prompt=True,
                          post_scale=clean["post_scale"])  # [layer, batch, head]
    return out


@claim("correct-letter-patching")
def test_correct_letter_heads(run):
    model, p = run.model, run.params
    k, min_acc, rotate = int(p["k"]), float(p["min_accuracy"]), int(p["rotate"])

    # Selection: attention to the correct label x the head's direct push on it, on selection prompts.
    s = gated_measure(run, run.selection_data, rotate, min_acc, "the correct letter (first of the four labels)", False)
    score = s["to_correct"].mean(1) * s["dla"].mean(1).clamp(min=0)
    heads = scoring.top_heads(score, k)
    run.select(heads, top_selection_score=score[heads[0]])
    sets = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                   seed=int(p["null_seed"]), exclude=heads)
    hv = torch.tensor(heads)

    for data in run.variants():
        m = gated_measure(run, data, rotate, min_acc, "the correct letter", True)
        sel, dla, ld = m["selectivity"], m["dla"], m["ld"]
        patched = patched_diff(model, m, heads)
        gap = ld - m["ld_corrupt"]
        set_dla = dla[sets[..., 0], :, sets[..., 1]].sum(1)                 # [n_sets, batch]
        run.measure(accuracy=m["accuracy"], clean_logit_diff=ld, corrupted_logit_diff=m["ld_corrupt"],
                    label_selectivity=sel[hv[:, 0], :, hv[:, 1]].mean(0),
                    correct_label_attention=m["to_correct"][hv[:, 0], :, hv[:, 1]].mean(0),
                    dla_share=stats.bootstrap_ratio(dla[hv[:, 0], :, hv[:, 1]].sum(0), ld),
                    patched_gap_fraction=stats.bootstrap_ratio(ld - patched, gap),
                    top_heads_depth=median_depth(heads, model.n_layers))
        run.null("matched_sets_selectivity", sel[sets[..., 0], :, sets[..., 1]].mean(1).mean(1))
        run.null("matched_sets_dla", set_dla.mean(1) / ld.mean())
        if run.is_primary:
            per_head = (m["to_correct"].mean(1) * dla.mean(1).clamp(min=0))
            run.artifact(scores=per_head.tolist(),
                         score_name="attention to the correct label x direct logit attribution to it (held-out)",
                         top_heads=fmt(heads), label_selectivity=sel.mean(1).tolist(),
                         effects={"labels": [f"patch correct-letter heads {', '.join(fmt(heads))}"],
                                  "values": [float((ld - patched).mean() / gap.mean())],
                                  "ylabel": "fraction of the clean-rotated logit-difference gap moved"})
    run.conclude()
