"""Three more multiple-choice head types of Lieberum et al. (2023), on the correct-letter claim's
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
- Single-letter heads attend to one particular letter whichever option is right, and raise it.
  The labels are listed in a shuffled order ("(C) dog (A) pen ..."), so a head tied to a letter
  is told from one tied to a place in the list. Each head's letter is the one it attends to most
  on the selection prompts; judged by the share of its label attention on that letter on
  prompts where that letter is wrong, and by its direct attribution to that letter's logit over
  the other three.

Heads are chosen on selection prompts (another seed), frozen, and judged on three held-out
templates. Attribution and attention come from one clean pass per (model, data), shared with
the correct-letter claim (claims/_mcqa.py); their nulls are the same statistics of 999 head sets
matched by layer. The ablation checks have no null of their own: a matched set costs a forward
pass of every prompt, about as long as the whole claim on the 1.5B model."""

import torch
from _attn import fmt, forward_reduce, median_depth, patch_z_hooks, unembed_rows
from _mcqa import clean_pass, label_logit_parts, share_on_correct
from _mcqa import margin as letter_margin

from headatlas.claims import claim
from headatlas.methods import scoring, stats


def _dla_margin(run, c: dict) -> torch.Tensor:
    """Every head's direct logit attribution to the margin, [layer, batch, head]: its part of the
    correct letter's logit minus the mean of its parts of the other three."""
    parts = label_logit_parts(run.model, c)                                        # [layer, batch, head, option]
    pick = c["q"].answer[None, :, None, None].expand(*parts.shape[:3], 1)
    right = parts.gather(-1, pick)[..., 0]
    return right - (parts.sum(-1) - right) / (parts.shape[-1] - 1)


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
        _gate(run, c, f"held-out prompts ({run.variant})")
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
        _gate(run, c, f"held-out prompts ({run.variant})")
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


def _own_letter(values: torch.Tensor, letter: torch.Tensor) -> torch.Tensor:
    """values [layer, batch, head, option] read at each head's own letter (letter [layer, head]):
    [layer, batch, head]."""
    pick = letter[:, None, :, None].expand(-1, values.shape[1], -1, 1)
    return values.gather(-1, pick)[..., 0]


def _mean_where(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Per-prompt mean over a head set's heads where `keep`: values, keep [..., k, batch] ->
    [..., batch] (NaN for a prompt where no head is kept)."""
    return (values * keep).sum(-2) / keep.sum(-2)


@claim("single-letter-attention")
def test_single_letter_heads(run):
    k = int(run.params["k"])
    s = clean_pass(run.model, run.selection_data)
    _gate(run, s, "selection prompts")
    att = s["labels"].mean(1)                                                      # [layer, head, option]
    letter = att.argmax(-1)                                                        # each head's letter, fixed here
    best = att.max(-1).values
    score = best - (att.sum(-1) - best) / (att.shape[-1] - 1)                      # [layer, head]
    heads = scoring.top_heads(score, k)
    labels = s["q"].labels
    run.select(heads, top_selection_letter_excess=score[heads[0]])
    run.artifact(head_letters={name: labels[int(letter[h])] for name, h in zip(fmt(heads), heads)})
    sets, hv = _matched_sets(run, heads), torch.tensor(heads)

    for data in run.variants():
        c = clean_pass(run.model, data)
        _gate(run, c, f"held-out prompts ({run.variant})")
        share = _own_letter(c["labels"] / c["labels"].sum(-1, keepdim=True).clamp(min=1e-6), letter)
        parts = label_logit_parts(run.model, c)                                    # [layer, batch, head, option]
        own = _own_letter(parts, letter)
        writes = own - (parts.sum(-1) - own) / (parts.shape[-1] - 1)               # own letter over the others
        elsewhere = (c["q"].answer[None, :, None] != letter[:, None, :]).float()   # its letter is a wrong option
        chosen_share = _mean_where(share[hv[:, 0], :, hv[:, 1]], elsewhere[hv[:, 0], :, hv[:, 1]])
        run.measure(accuracy=c["accuracy"],
                    own_letter_share_when_wrong=chosen_share[~chosen_share.isnan()],
                    own_letter_share=share[hv[:, 0], :, hv[:, 1]].mean(0),
                    own_letter_attention=_own_letter(c["labels"], letter)[hv[:, 0], :, hv[:, 1]].mean(0),
                    own_letter_dla=writes[hv[:, 0], :, hv[:, 1]].sum(0),
                    top_heads_depth=median_depth(heads, run.model.n_layers))
        null_share = _mean_where(share[sets[..., 0], :, sets[..., 1]], elsewhere[sets[..., 0], :, sets[..., 1]])
        run.null("matched_sets_share", null_share.nanmean(-1))
        run.null("matched_sets_dla", writes[sets[..., 0], :, sets[..., 1]].sum(1).mean(-1))
        if run.is_primary:
            run.artifact(scores=share.mean(1).tolist(), top_heads=fmt(heads),
                         score_name="share of option-label attention on the head's own letter (held-out; "
                                    "letters chosen on the selection prompts)")
    run.conclude()
