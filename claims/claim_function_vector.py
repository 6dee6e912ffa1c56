"""Function-vector heads (Todd et al. 2024): a few heads' task-averaged outputs carry the task.

Selection (seed 100, pooled over the three tasks of the held-out variants, as Todd et al. pool
their average indirect effect over tasks): for each task, each head's output (hook_z) at the last
position averaged over few-shot prompts (its task-conditioned mean), and a first-order
(attribution-patching) estimate of each head's indirect effect: the change in P(correct) when its
mean replaces its own output at the last position of prompts whose demonstration labels are
shuffled. The k heads with the largest average estimate are frozen.

On each held-out variant (task + template, other seeds):
1. The frozen heads' means, from that task's few-shot prompts, patched together into shuffled-
   label prompts: the share they recover of the gap in P(correct) between correct and shuffled
   demonstrations of the same prompts (ratio of means, bootstrapped).
2. The function vector: their means added (each at its own layer, last position) to zero-shot
   prompts for the held-out half of the task's pairs, never used in any demonstration: the gain
   in how often the correct answer enters the model's top n predictions.
Both against 19 head sets drawn from the same layers, each with its own means, edited in one
batched pass; and where the heads sit, against the entry's layer band.
"""

import statistics

import torch
from _facts import answer_prob, answer_rank, head_set, last_residual, set_edit_hooks

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods import stats
from headatlas.methods.patching import z_gradients
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts.tasks import task_prompt_pairs, task_split, zero_shot_prompts

MIN_RIGHT = 0.5  # share of clean few-shot queries the model must answer right (top-1)


def mean_outputs(bridge, tokens):
    """Every head's hook_z at the last position, averaged over prompts: [layer, head, d_head]."""
    n_layers = bridge.cfg.n_layers
    zs: list = [None] * n_layers

    def keep(z, hook):
        zs[int(hook.name.split(".")[1])] = z[:, -1].detach().float().mean(0)
        return z

    last_residual(bridge, tokens, [(f"blocks.{layer}.attn.hook_z", keep) for layer in range(n_layers)])
    return torch.stack(zs)


def indirect_effect_estimate(bridge, tokens, answer, means):
    """First-order estimate, for every head, of the change in mean P(answer) when the head's
    last-position hook_z is replaced by `means` [layer, head, d_head]: (mean - z) . dP/dz."""
    def mean_prob(logits):
        return logits.softmax(-1)[torch.arange(len(answer)), answer].mean()

    zs, grads, _ = z_gradients(bridge, tokens, mean_prob)
    return torch.stack([((means[layer][None] - zs[layer][:, -1]) * grads[layer][:, -1]).sum(-1).mean(0)
                        for layer in range(bridge.cfg.n_layers)])


def task_data(run, d, seed_offset=0):
    """Clean and shuffled few-shot prompts (paired), the demonstrations' mean head outputs, and
    the clean top-1 accuracy check (not applicable below MIN_RIGHT)."""
    model = run.model
    split = task_split(model.tokenizer, d["task"], int(d["split_seed"]))
    kw = dict(n_prompts=int(d["n_prompts"]), n_demos=int(d["n_demos"]))
    few, _ = task_prompt_pairs(model.tokenizer, split.demo, d["template"], seed=int(d["seed"]), **kw)
    clean, shuffled = task_prompt_pairs(model.tokenizer, split.demo, d["template"],
                                        seed=int(d["seed"]) + 2 + seed_offset, **kw)
    few_x = last_residual(model.bridge, few.tokens)
    right = int((answer_rank(model.bridge, few_x, few.answer) == 0).sum())
    if right < MIN_RIGHT * len(few.answer):
        run.not_applicable(f"answers {right} of {len(few.answer)} few-shot {d['task']} queries right; "
                           f"needs at least {MIN_RIGHT:.0%}")
    return split, clean, shuffled, mean_outputs(model.bridge, few.tokens)


@claim("function-vector-heads")
def test_function_vector_heads(run):
    model, p = run.model, run.params
    bridge = model.bridge
    k, top_n = int(p["k"]), int(p["top_n"])

    # Selection: pooled over the held-out variants' tasks and templates, on selection seeds.
    sd = run.selection_data
    est = torch.zeros(model.n_layers, model.n_heads)
    tasks = [{**v, "seed": sd["seed"]} for _, v in spec_variants(run.spec.data)] if sd.get("tasks") == "pooled" else [sd]
    for _, d in spec_variants(run.spec.data):   # can the model do each held-out task at all?
        task_data(run, d)
    for d in tasks:
        _, _, shuffled, means = task_data(run, d)
        est += indirect_effect_estimate(bridge, shuffled.tokens, shuffled.answer, means) / len(tasks)
    order = torch.argsort(est.flatten(), descending=True)[:k]
    top = [(int(i) // model.n_heads, int(i) % model.n_heads) for i in order]
    run.select(top, top_head_selection_estimate=est[top[0]])
    depth = statistics.median(relative_depth(layer, model.n_layers) for layer, _ in top)
    nulls = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                    seed=int(p["null_seed"]), exclude=top)
    sets = torch.cat([head_set(top), nulls])                                 # set 0: the chosen heads
    for d in run.variants():
        split, clean, shuffled, means = task_data(run, d)
        zero = zero_shot_prompts(model.tokenizer, split.held_out, d["template"])
        n, nz = len(clean.answer), len(zero.answer)
        p_clean = answer_prob(bridge, last_residual(bridge, clean.tokens), clean.answer)
        p_shuf = answer_prob(bridge, last_residual(bridge, shuffled.tokens), shuffled.answer)
        if float((p_clean - p_shuf).mean()) <= 0:
            run.not_applicable(f"correct demonstrations do not raise P(correct) over shuffled ones "
                               f"({float(p_clean.mean()):.3g} vs {float(p_shuf.mean()):.3g})")
        values = {layer: means[layer] for layer in range(model.n_layers)}
        x = last_residual(bridge, shuffled.tokens.repeat(len(sets), 1), set_edit_hooks(sets, n, -1, "set", values))
        p_patched = answer_prob(bridge, x, shuffled.answer.repeat(len(sets))).view(len(sets), n)
        base_rank = answer_rank(bridge, last_residual(bridge, zero.tokens), zero.answer)
        x = last_residual(bridge, zero.tokens.repeat(len(sets), 1), set_edit_hooks(sets, nz, -1, "add", values))
        fv_rank = answer_rank(bridge, x, zero.answer.repeat(len(sets))).view(len(sets), nz)
        gain = (fv_rank < top_n).double() - (base_rank < top_n).double()[None]   # [set, query]
        run.measure(
            few_shot_prob=p_clean, shuffled_prob=p_shuf,
            recovered_fraction=stats.bootstrap_ratio(p_patched[0] - p_shuf, p_clean - p_shuf),
            zero_shot_top_n=(base_rank < top_n).double(), fv_top_n_gain=gain[0],
            fv_accuracy=(fv_rank[0] == 0).double(), top_heads_depth=depth, n_held_out=nz,
        )
        run.null("matched_sets_recovered", (p_patched[1:] - p_shuf).mean(1) / (p_clean - p_shuf).mean())
        run.null("matched_sets_zero_shot", gain[1:].mean(1))
        if run.is_primary:
            run.artifact(scores=est.tolist(),
                         score_name="indirect effect on P(correct) (first-order estimate, selection prompts)",
                         top_heads=[fmt_head(*h) for h in top],
                         null_example_heads=[fmt_head(*h) for h in nulls[0].tolist()],
                         effects={"labels": [f"top {k} heads", f"median of {len(nulls)} matched sets"],
                                  "values": [float(gain[0].mean()), float(gain[1:].mean(1).median())],
                                  "ylabel": f"gain in zero-shot top-{top_n} accuracy on held-out words"})
    run.conclude()
