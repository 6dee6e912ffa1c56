"""Two more multiple-choice head types of Lieberum et al. (2023), on the correct-letter claim's
data (headatlas.prompts.patterns.mcqa_prompts): few-shot four-option questions whose correct
option cycles through the letters, answered at the last position.

- Amplification heads write the chosen letter: late heads chosen by their direct logit
  attribution to the correct letter over the mean of the other three. Judged by the share of
  the correct letter's margin they write directly, and by the margin lost when they are
  mean-ablated at the answer position.
- Content gatherers bring the correct option's content, its word rather than its letter, to the
  answer position: heads chosen by attention from there to the correct option's word over the
  other options' words. Judged by the share of their option-word attention that goes to the
  correct word, and by the margin lost when they are mean-ablated.

Heads are chosen on selection prompts (another seed), frozen, and judged on three held-out
templates. Attribution and attention come from one clean pass per (model, data), shared with
the correct-letter claim (claims/_mcqa.py); their nulls are the same statistics of 999 head sets
matched by layer. The ablation checks have no null of their own: a matched set costs a forward
pass of every prompt, about as long as the whole claim on the 1.5B model."""

import torch
from _attn import fmt, forward_reduce, head_dla, median_depth, patch_z_hooks, unembed_rows
from _mcqa import clean_pass, share_on_correct
from _mcqa import margin as letter_margin

from headatlas.claims import claim
from headatlas.methods import scoring, stats


def _dla_margin(run, c: dict) -> torch.Tensor:
    """Every head's direct logit attribution to the margin, [layer, batch, head]: the mean over the
    three wrong letters of its attribution to logit(correct) - logit(wrong)."""
    q, n = c["q"], len(c["q"].label_ids)
    right = q.label_ids[q.answer]
    parts = [head_dla(run.model.bridge, c["z"], c["scale"], right, q.label_ids[(q.answer + k) % n], per_prompt=True)
             for k in range(1, n)]
    return torch.stack(parts).mean(0)


def _gate(run, c: dict, where: str) -> None:
    need = float(run.params["min_accuracy"])
    if c["accuracy"] < need:
        run.not_applicable(f"picks the correct letter in {c['accuracy']:.0%} of the {where} (chance 25%); "
                           f"the claim needs {need:.0%}")


def _ablated_margin(run, c: dict, heads) -> torch.Tensor:
    """The margin with the heads' outputs at the answer position replaced by their mean over the
    prompts (mean ablation: what the head writes on average stays, what it writes for this
    question goes)."""
    mean_z = c["z"].mean(1, keepdim=True).expand_as(c["z"])
    out = forward_reduce(run.model.bridge, c["q"].tokens, fwd_hooks=patch_z_hooks(heads, mean_z, -1), final_at=-1)
    return letter_margin(unembed_rows(run.model.bridge, out["final"])[:, c["q"].label_ids], c["q"].answer)


def _matched_sets(run, heads):
    return stats.matched_head_sets(heads, run.model.n_layers, run.model.n_heads, n_sets=int(run.params["null_sets"]),
                                   seed=int(run.params["null_seed"]), exclude=heads)


@claim("amplification-heads-dla")
def test_amplification_heads(run):
    k = int(run.params["k"])
    s = clean_pass(run.model, run.selection_data)
    _gate(run, s, "selection prompts")
    score = _dla_margin(run, s).mean(1)                                            # [layer, head]
    heads = scoring.top_heads(score, k)
    run.select(heads, top_selection_dla=score[heads[0]])
    sets, hv = _matched_sets(run, heads), torch.tensor(heads)

    for data in run.variants():
        c = clean_pass(run.model, data)
        _gate(run, c, f"held-out prompts ({data.get('name', data)})")
        dla, margin = _dla_margin(run, c), c["margin"]
        chosen = dla[hv[:, 0], :, hv[:, 1]].sum(0)                                 # [batch]
        ablated = _ablated_margin(run, c, heads)
        on_label, label_share = share_on_correct(c["labels"], c["q"].answer)
        run.measure(accuracy=c["accuracy"], clean_margin=margin, ablated_margin=ablated,
                    dla_share=stats.bootstrap_ratio(chosen, margin),
                    ablated_margin_drop=stats.bootstrap_ratio(margin - ablated, margin),
                    correct_label_attention=on_label[hv[:, 0], :, hv[:, 1]].mean(0),
                    correct_label_share=label_share[hv[:, 0], :, hv[:, 1]].mean(0),
                    top_heads_depth=median_depth(heads, run.model.n_layers))
        run.null("matched_sets_dla", dla[sets[..., 0], :, sets[..., 1]].sum(1).mean(1) / margin.mean())
        if run.is_primary:
            run.artifact(scores=dla.mean(1).tolist(), top_heads=fmt(heads),
                         score_name="direct logit attribution to the correct letter's margin (held-out)",
                         effects={"labels": [f"mean-ablate amplification heads {', '.join(fmt(heads))}"],
                                  "values": [float((margin - ablated).mean() / margin.mean())],
                                  "ylabel": "fraction of the correct letter's margin lost"})
    run.conclude()


@claim("content-gatherer-attention")
def test_content_gatherer_heads(run):
    k = int(run.params["k"])
    s = clean_pass(run.model, run.selection_data)
    _gate(run, s, "selection prompts")
    on, _ = share_on_correct(s["words"], s["q"].answer)
    others = (s["words"].sum(-1) - on) / (s["words"].shape[-1] - 1)
    score = (on - others).mean(1)                                                  # [layer, head]
    heads = scoring.top_heads(score, k)
    run.select(heads, top_selection_word_contrast=score[heads[0]])
    sets, hv = _matched_sets(run, heads), torch.tensor(heads)

    for data in run.variants():
        c = clean_pass(run.model, data)
        _gate(run, c, f"held-out prompts ({data.get('name', data)})")
        on_word, share = share_on_correct(c["words"], c["q"].answer)
        ablated = _ablated_margin(run, c, heads)
        margin = c["margin"]
        run.measure(accuracy=c["accuracy"], clean_margin=margin, ablated_margin=ablated,
                    correct_word_share=share[hv[:, 0], :, hv[:, 1]].mean(0),
                    correct_word_attention=on_word[hv[:, 0], :, hv[:, 1]].mean(0),
                    ablated_margin_drop=stats.bootstrap_ratio(margin - ablated, margin),
                    top_heads_depth=median_depth(heads, run.model.n_layers))
        run.null("matched_sets_word_share", share[sets[..., 0], :, sets[..., 1]].mean(1).mean(1))
        if run.is_primary:
            run.artifact(scores=share.mean(1).tolist(), top_heads=fmt(heads),
                         score_name="share of option-word attention on the correct option's word (held-out)",
                         effects={"labels": [f"mean-ablate content gatherers {', '.join(fmt(heads))}"],
                                  "values": [float((margin - ablated).mean() / margin.mean())],
                                  "ylabel": "fraction of the correct letter's margin lost"})
    run.conclude()
