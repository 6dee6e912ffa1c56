"""Letter-mover heads (García-Carrasco et al. 2024): when the model writes the third letter of an
acronym, a few late heads attend to the third word and copy its initial; patching them from
prompts with another third word removes much of the model's preference for the right letter."""

import torch
from _attn import fmt, forward_reduce, head_dla, median_depth, patch_z_hooks, random_heads, unembed_rows

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import scoring


@claim("letter-mover-patching")
def test_letter_mover_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    bridge = model.bridge
    a = patterns.acronym_prompts(model.tokenizer, n_prompts=int(d["n_prompts"]), template=str(d["template"]),
                                     seed=int(d["seed"]))
    n = a.clean.shape[0]
    rows = torch.arange(n)

    # Clean pass: each head's attention from the last position to the third word, its output
    # there (for the direct logit attribution to logit(right initial) - logit(corrupting
    # initial)) and the model's logits at that position. Corrupted pass: the outputs to patch in.
    clean = forward_reduce(bridge, a.clean, {"third": lambda pat: pat[rows, :, -1, a.word_pos[:, 2]].mean(0)},
                           z_at=-1, final_at=-1)
    corrupt = forward_reduce(bridge, a.corrupted, z_at=-1, final_at=-1)
    third = clean["third"]
    dla = head_dla(bridge, clean["z"], clean["scale"], a.correct, a.wrong)
    mover_score = third * dla.clamp(min=0)                 # attends to the word AND writes its letter
    k = int(p["k"])
    movers = scoring.top_heads(mover_score, k)
    control = random_heads(model, k, int(p["control_seed"]), exclude=movers)

    def logit_diff(final):
        lg = unembed_rows(bridge, final)
        return lg[rows, a.correct] - lg[rows, a.wrong], lg

    clean_ld, lg = logit_diff(clean["final"])
    corrupt_ld, _ = logit_diff(corrupt["final"])
    gap = float((clean_ld - corrupt_ld).mean())

    def patched(heads):
        out = forward_reduce(bridge, a.clean, fwd_hooks=patch_z_hooks(heads, corrupt["z"], -1), final_at=-1)
        ld, _ = logit_diff(out["final"])
        return float((clean_ld - ld).mean()) / gap

    letters = lg[:, a.letter_ids]
    accuracy = float((a.letter_ids[letters.argmax(-1)] == a.correct).float().mean())
    moved, ctrl = patched(movers), patched(control)
    run.measure(accuracy=accuracy, clean_logit_diff=clean_ld.mean(), corrupted_logit_diff=corrupt_ld.mean(),
                mover_attention=min(float(third[h]) for h in movers),
                control_attention=max(float(third[h]) for h in control),
                patched_gap_fraction=moved, control_patched_gap_fraction=ctrl,
                top_heads_depth=median_depth(movers, model.n_layers))
    if run.is_primary:
        run.artifact(scores=mover_score.tolist(),
                     score_name="attention to the third word x direct logit attribution to its initial",
                     top_heads=fmt(movers), control_heads=fmt(control), attention_to_third_word=third.tolist(),
                     effects={"labels": [f"patch letter movers {', '.join(fmt(movers))}", f"patch {k} random heads"],
                              "values": [moved, ctrl],
                              "ylabel": "fraction of the clean-corrupted logit-difference gap removed"})
