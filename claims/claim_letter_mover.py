"""Letter-mover heads (García-Carrasco et al. 2024): when the model writes the third letter of an
acronym, a few late heads attend to the third word and copy its initial; patching them from
prompts with another third word removes much of the model's preference for the right letter.

Protocol: the heads are chosen on selection prompts (another seed) by attention to the third
word x direct logit attribution to its initial, frozen, then judged on held-out prompts of three
templates. The null for each judged value is the same value of head sets matched by layer to the
chosen ones (same count, each head drawn from the same layer as a chosen one): 999 sets for the
attention (one pass gives every head's attention), 19 sets for the patching, all patched in one
batched pass."""

import torch
from _attn import fmt, forward_reduce, head_dla, median_depth, patch_z_hooks, unembed_rows

from headatlas.prompts import patterns
from headatlas.claims import claim
from headatlas.methods import scoring, stats


def _prompts(model, d: dict):
    return patterns.acronym_prompts(model.tokenizer, n_prompts=int(d["n_prompts"]), template=str(d["template"]),
                                    seed=int(d["seed"]))


def _logit_diff(bridge, final: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor, chunk: int = 64):
    """logit[correct] - logit[wrong] per row of final residuals [n, d_model], unembedding a chunk
    of rows at a time (Gemma's vocabulary is 262k wide)."""
    out = []
    for i in range(0, final.shape[0], chunk):
        lg = unembed_rows(bridge, final[i: i + chunk])
        r = torch.arange(lg.shape[0])
        out.append(lg[r, correct[i: i + chunk]] - lg[r, wrong[i: i + chunk]])
    return torch.cat(out)


def _patch_sets_hooks(sets: torch.Tensor, z: torch.Tensor, position: int, n: int) -> list:
    """Hooks for one pass over the prompts repeated once per head set (rows s*n ... s*n+n-1 belong
    to set s of sets [n_sets, k, 2]): each set's heads get their hook_z at `position` from z
    [layer, batch, head, d_head] (the corrupted run's outputs)."""
    n_sets = sets.shape[0]
    n_heads = z.shape[2]
    masks: dict[int, torch.Tensor] = {}
    for s in range(n_sets):
        for layer, head in sets[s].tolist():
            m = masks.setdefault(layer, torch.zeros(n_sets, n_heads, dtype=torch.bool))
            m[s, head] = True
    hooks = []
    for layer, m in masks.items():
        rows = m.repeat_interleave(n, 0)                                   # [n_sets * n, head]
        src = z[layer].repeat(n_sets, 1, 1)                                # [n_sets * n, head, d_head]

        def f(x, hook, rows=rows, src=src):
            x = x.clone()
            x[:, position] = torch.where(rows[..., None], src.to(x.dtype), x[:, position])
            return x
        hooks.append((f"blocks.{layer}.attn.hook_z", f))
    return hooks


def _clean_corrupt(model, a):
    bridge = model.bridge
    rows = torch.arange(a.clean.shape[0])
    third = lambda pat: pat[rows, :, -1, a.word_pos[:, 2]].T            # noqa: E731  [head, batch]
    clean = forward_reduce(bridge, a.clean, {"third": third}, z_at=-1, final_at=-1)
    corrupt = forward_reduce(bridge, a.corrupted, z_at=-1, final_at=-1)
    clean["ld"] = _logit_diff(bridge, clean["final"], a.correct, a.wrong)
    corrupt["ld"] = _logit_diff(bridge, corrupt["final"], a.correct, a.wrong)
    return clean, corrupt


def _accuracy(model, a, final) -> float:
    lg = unembed_rows(model.bridge, final)[:, a.letter_ids]
    return float((a.letter_ids[lg.argmax(-1)] == a.correct).float().mean())


@claim("letter-mover-patching")
def test_letter_mover_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge
    k = int(p["k"])
    min_acc = float(p["min_accuracy"])

    # Selection: attention from the last position to the third word x each head's direct logit
    # attribution to logit(right initial) - logit(corrupting initial), on the selection prompts.
    sa = _prompts(model, run.selection_data)
    clean, _ = _clean_corrupt(model, sa)
    acc = _accuracy(model, sa, clean["final"])
    if acc < min_acc:
        run.not_applicable(f"writes the right third initial (first among 26 capitals) in {acc:.0%} of the "
                           f"selection prompts; the claim needs {min_acc:.0%}")
    dla = head_dla(bridge, clean["z"], clean["scale"], sa.correct, sa.wrong, post_scale=clean["post_scale"])
    mover_score = clean["third"].mean(-1) * dla.clamp(min=0)            # attends to the word AND writes its letter
    movers = scoring.top_heads(mover_score, k)
    run.select(movers, top_mover_selection_score=mover_score[movers[0]])
    att_sets = stats.matched_head_sets(movers, model.n_layers, model.n_heads, n_sets=int(p["attention_null_sets"]),
                                       seed=int(p["null_seed"]), exclude=movers)
    patch_sets = att_sets[: int(p["patch_null_sets"])]
    mv = torch.tensor(movers)

    for data in run.variants():
        a = _prompts(model, data)
        n = a.clean.shape[0]
        clean, corrupt = _clean_corrupt(model, a)
        acc = _accuracy(model, a, clean["final"])
        if acc < min_acc:
            run.not_applicable(f"writes the right third initial in {acc:.0%} of the held-out prompts "
                               f"({run.data}); the claim needs {min_acc:.0%}")
        third = clean["third"]                                             # [layer, head, batch]
        gap = clean["ld"] - corrupt["ld"]                                  # per prompt

        out = forward_reduce(bridge, a.clean, fwd_hooks=patch_z_hooks(movers, corrupt["z"], -1), final_at=-1)
        moved = clean["ld"] - _logit_diff(bridge, out["final"], a.correct, a.wrong)
        # The null: every matched set patched in one pass over the prompts repeated once per set.
        out = forward_reduce(bridge, a.clean.repeat(len(patch_sets), 1),
                             fwd_hooks=_patch_sets_hooks(patch_sets, corrupt["z"], -1, n), final_at=-1)
        ld = _logit_diff(bridge, out["final"], a.correct.repeat(len(patch_sets)), a.wrong.repeat(len(patch_sets)))
        null_moved = (clean["ld"].repeat(len(patch_sets)) - ld).view(len(patch_sets), n).mean(1) / gap.mean()
        run.measure(accuracy=acc, clean_logit_diff=clean["ld"], corrupted_logit_diff=corrupt["ld"],
                    patched_gap_fraction=stats.bootstrap_ratio(moved, gap),
                    mover_attention=stats.bootstrap(third[mv[:, 0], mv[:, 1]].T, lambda x: x.mean(0).min()),
                    top_heads_depth=median_depth(movers, model.n_layers))
        run.null("matched_sets_patching", null_moved)
        run.null("matched_sets_attention", third[att_sets[..., 0], att_sets[..., 1]].mean(-1).min(1).values)
        if run.is_primary:
            score = third.mean(-1) * head_dla(bridge, clean["z"], clean["scale"], a.correct, a.wrong,
                                                  post_scale=clean["post_scale"]).clamp(min=0)
            run.artifact(scores=score.tolist(),
                         score_name="attention to the third word x direct logit attribution to its initial (held-out)",
                         top_heads=fmt(movers), attention_to_third_word=third.mean(-1).tolist(),
                         null_example_heads=fmt(patch_sets[0].tolist()),
                         effects={"labels": [f"patch letter movers {', '.join(fmt(movers))}",
                                             f"patch {k} layer-matched heads (median of {len(patch_sets)} sets)"],
                                  "values": [float(moved.mean() / gap.mean()), float(null_moved.median())],
                                  "ylabel": "fraction of the clean-corrupted logit-difference gap removed"})
    run.conclude()
