"""Arithmetic heads (Zhang et al. 2024; Nikankin et al. 2024): when a model completes a two-digit
sum ("27+15="), a few heads at the last position attend to the operands and carry them there,
and patching those heads' outputs from a prompt with another operand moves the answer.

Protocol: the heads are chosen on selection prompts (another seed) by their attention from the
last position to the test sum's operand digits x a first-order estimate of how much patching
that head alone from the corrupted prompts lowers logit(right first digit) - logit(the corrupted
sum's first digit) (attribution patching: (z_corrupted - z_clean) . gradient, one backward pass),
frozen, then judged on held-out prompts of three formats. The null for each judged value is the
same value of head sets matched by layer to the chosen ones: 999 sets for the attention, 19 sets
for the patching, all patched in one batched pass. Patching at the last position changes nothing
before it, so the patched passes start from the clean run's residual stream at the first layer
that holds a chosen head."""

import torch
from _attn import _Done, fmt, forward_reduce, median_depth, patch_z_hooks, unembed_rows
from claim_letter_mover import _logit_diff, _patch_sets_hooks

from headatlas.claims import claim
from headatlas.methods import scoring, stats
from headatlas.methods.patching import z_gradients
from headatlas.prompts import arithmetic


def _operand_attention(s: arithmetic.Sums, query: int):
    """Reducer: attention from `query` to the test sum's operand tokens, summed: [head, batch]."""
    def reduce(pattern):
        rows = pattern[:, :, query, :]                                   # [batch, head, key]
        idx = s.operand_pos[:, None, :].expand(-1, rows.shape[1], -1)
        return rows.gather(2, idx).sum(-1).T
    return reduce


def _clean_pass(bridge, s: arithmetic.Sums, resid_layers=()) -> dict:
    """One pass over the clean prompts with the sum's first digit appended: attention to the
    operands, hook_z and the final residual at the answer cue (position -2), the prediction of the
    second digit at -1 (teacher-forced), and the residual stream entering each of `resid_layers`
    (without the appended token) for the patched passes."""
    tokens = torch.cat([s.clean, s.correct[:, None]], 1)
    keep: dict[int, torch.Tensor] = {}

    def grab(x, hook):
        keep[int(hook.name.split(".")[1])] = x[:, :-1].detach().clone()
        return x
    hooks = [(f"blocks.{layer}.hook_resid_pre", grab) for layer in resid_layers]
    out = forward_reduce(bridge, tokens, {"operands": _operand_attention(s, -2)}, fwd_hooks=hooks,
                         z_at=-2, final_at=slice(-2, None))
    final = out["final"]                                                  # [batch, 2, d_model]
    out["ld"] = _logit_diff(bridge, final[:, 0], s.correct, s.wrong)
    first = unembed_rows(bridge, final[:, 0]).argmax(-1)
    second = unembed_rows(bridge, final[:, 1]).argmax(-1)
    out["first_right"] = (first == s.correct).float()
    out["sum_right"] = ((first == s.correct) & (second == s.second)).float()
    out["resid"] = keep
    return out


def _corrupt_pass(bridge, s: arithmetic.Sums) -> dict:
    out = forward_reduce(bridge, s.corrupted, z_at=-1, final_at=-1)
    out["ld"] = _logit_diff(bridge, out["final"], s.correct, s.wrong)
    return out


def _final_from(bridge, resid: torch.Tensor, layer: int, fwd_hooks) -> torch.Tensor:
    """The normalised final residual at the last position of a pass that starts at `layer` from
    the residual stream `resid` [batch, pos, d_model] (every layer before it is unchanged by a
    patch at the last position of later layers)."""
    out = {}

    def on_final(x, hook):
        out["final"] = x[:, -1].detach().float().clone()
        raise _Done

    with torch.inference_mode():
        try:
            bridge.run_with_hooks(resid, start_at_layer=layer, return_type=None,
                                  fwd_hooks=list(fwd_hooks) + [("unembed.hook_in", on_final)])
        except _Done:
            pass
    return out["final"]


def _patched_ld(bridge, clean: dict, corrupt: dict, s: arithmetic.Sums, heads, layer: int) -> torch.Tensor:
    final = _final_from(bridge, clean["resid"][layer], layer, patch_z_hooks(heads, corrupt["z"], -1))
    return _logit_diff(bridge, final, s.correct, s.wrong)


def _gate(run, acc: float, first: float, where: str, min_acc: float) -> None:
    if acc < min_acc:
        run.not_applicable(f"writes the exact sum (both digits, greedy) for {acc:.0%} of the {where} "
                           f"(first digit right for {first:.0%}); the claim needs {min_acc:.0%}")


@claim("arithmetic-operand-patching")
def test_arithmetic_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge
    k = int(p["k"])
    min_acc = float(p["min_accuracy"])

    # Selection: attention from the answer cue to the operand digits x the first-order estimate
    # of how far patching the head alone (from the corrupted prompts) lowers the logit difference.
    sa = arithmetic.from_spec(model.tokenizer, run.selection_data)
    clean = _clean_pass(bridge, sa, range(model.n_layers))
    _gate(run, float(clean["sum_right"].mean()), float(clean["first_right"].mean()), "selection prompts", min_acc)
    corrupt = _corrupt_pass(bridge, sa)
    r = torch.arange(sa.clean.shape[0])
    zs, grads, _ = z_gradients(bridge, sa.clean, lambda last: (last[r, sa.correct] - last[r, sa.wrong]).mean())
    est = torch.stack([((corrupt["z"][la] - zs[la][:, -1]) * grads[la][:, -1]).sum((0, 2))
                       for la in range(model.n_layers)])                 # [layer, head] change of mean ld
    attention = clean["operands"].mean(-1)                               # [layer, head]
    score = attention * (-est).clamp(min=0)
    heads = scoring.top_heads(score, k)
    first_layer = min(layer for layer, _ in heads)
    sel_gap = clean["ld"] - corrupt["ld"]
    sel_moved = clean["ld"] - _patched_ld(bridge, clean, corrupt, sa, heads, first_layer)
    hv = torch.tensor(heads)
    run.measure(selection_sum_accuracy=clean["sum_right"], selection_first_digit_accuracy=clean["first_right"],
                selection_patched_gap_fraction=stats.bootstrap_ratio(sel_moved, sel_gap),
                selection_operand_attention=float(attention[hv[:, 0], hv[:, 1]].min()))
    run.select(heads, top_head_selection_score=score[heads[0]])
    run.artifact(selection_scores=score.tolist(),
                 selection_score_name="attention to the operands x estimated drop in logit difference when "
                                      "the head alone is patched (selection prompts)",
                 selection_patch_estimate=est.tolist())
    att_sets = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(p["attention_null_sets"]),
                                       seed=int(p["null_seed"]), exclude=heads)
    patch_sets = att_sets[: int(p["patch_null_sets"])]

    for data in run.variants():
        s = arithmetic.from_spec(model.tokenizer, data)
        n = s.clean.shape[0]
        clean = _clean_pass(bridge, s, [first_layer])
        acc, first = float(clean["sum_right"].mean()), float(clean["first_right"].mean())
        _gate(run, acc, first, f"held-out prompts ({data['template']}, seed {data['seed']})", min_acc)
        corrupt = _corrupt_pass(bridge, s)
        ops = clean["operands"]                                           # [layer, head, batch]
        gap = clean["ld"] - corrupt["ld"]
        moved = clean["ld"] - _patched_ld(bridge, clean, corrupt, s, heads, first_layer)
        # The null: every matched set patched in one pass over the prompts repeated once per set.
        final = _final_from(bridge, clean["resid"][first_layer].repeat(len(patch_sets), 1, 1), first_layer,
                            _patch_sets_hooks(patch_sets, corrupt["z"], -1, n))
        ld = _logit_diff(bridge, final, s.correct.repeat(len(patch_sets)), s.wrong.repeat(len(patch_sets)))
        null_moved = (clean["ld"].repeat(len(patch_sets)) - ld).view(len(patch_sets), n).mean(1) / gap.mean()
        run.measure(sum_accuracy=clean["sum_right"], first_digit_accuracy=clean["first_right"],
                    clean_logit_diff=clean["ld"], corrupted_logit_diff=corrupt["ld"],
                    patched_gap_fraction=stats.bootstrap_ratio(moved, gap),
                    operand_attention=stats.bootstrap(ops[hv[:, 0], hv[:, 1]].T, lambda x: x.mean(0).min()),
                    top_heads_depth=median_depth(heads, model.n_layers))
        run.null("matched_sets_patching", null_moved)
        run.null("matched_sets_attention", ops[att_sets[..., 0], att_sets[..., 1]].mean(-1).min(1).values)
        if run.is_primary:
            run.artifact(scores=ops.mean(-1).tolist(),
                         score_name="attention from the answer cue to the operand digits (held-out)",
                         top_heads=fmt(heads), null_example_heads=fmt(patch_sets[0].tolist()),
                         effects={"labels": [f"patch arithmetic heads {', '.join(fmt(heads))}",
                                             f"patch {k} layer-matched heads (median of {len(patch_sets)} sets)"],
                                  "values": [float(moved.mean() / gap.mean()), float(null_moved.median())],
                                  "ylabel": "fraction of the clean-corrupted logit-difference gap removed"})
    run.conclude()
