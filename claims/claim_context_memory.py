"""Context and memory heads in knowledge conflicts (Jin et al. 2024; the head-attribution set-up
of Yu, Merullo and Pavlick 2023).

A fact the model answers correctly is stated with a wrong attribute and then asked again:
"The capital of France is Rome. The capital of France is". At the final position two answers
compete: the one in the context (" Rome") and the remembered one (" Paris"). Only facts the model
gets right without the context are used (one memoised pass per model and template,
claims/_facts.py), and the countries are split in two by name, as in the factual-recall claims:
heads are chosen on the selection half and judged on the held-out half, in three relation
templates, with other counterfactual attributes.

- Each head's direct logit attribution at the final position to logit(context answer) -
  logit(remembered answer), every norm's scale frozen (headatlas.methods.logit_attribution), and
  its attention from the final position to the counterfactual attribute in the context sentence.
- Context heads: the k heads with the largest mean attribution on the selection half. Memory
  heads: the k heads with the most negative one. Both are frozen before any held-out prompt.
- Held out: the k heads' summed attribution (per fact, bootstrapped), against 999 head sets
  drawn from the same layers; the context heads' attention to the in-context answer, against
  999 such sets; and the causal check: the k heads mean-ablated at the final position (their
  output replaced by its mean over the variant's prompts) in one batched pass with 19 matched
  head sets. Ablating context heads must lower the preference for the context answer; ablating
  memory heads must raise it.

A value is averaged per fact (over its counterfactuals) before the bootstrap, so the resampled
units are independent facts. A model that knows fewer than `min_known` facts in a half, or whose
top prediction is one of the two answers on fewer than `min_follow` of the conflict prompts
(it takes up neither the context nor its memory), is not applicable.
"""

from __future__ import annotations

import statistics

import torch
from _attn import forward_reduce, memo
from _facts import facts_for, reduce_logits, set_edit_hooks

from headatlas.claims import claim
from headatlas.methods import logit_attribution as la
from headatlas.methods import stats
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts.tasks import ConflictPrompts, conflict_prompts

Head = tuple[int, int]


# ----------------------------------------------------------------------------- measuring


def readout(bridge, final: torch.Tensor, ctx: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
    """[n, 3] from normalised final residuals [n, d_model]: logit(ctx) - logit(mem), whether the
    top prediction is the context answer, whether it is the remembered one."""
    def f(lg, r):
        top = lg.argmax(-1)
        diff = lg.gather(1, ctx[r, None])[:, 0] - lg.gather(1, mem[r, None])[:, 0]
        return torch.stack([diff, (top == ctx[r]).float(), (top == mem[r]).float()], 1)
    return reduce_logits(bridge, final, f)


def conflict_pass(bridge, prompts: ConflictPrompts) -> dict[str, torch.Tensor]:
    """One forward pass over the conflict prompts, read at the final position:
    dla [batch, layer, head] to logit(context) - logit(memory), every norm scale frozen;
    ctx_own / mem_own [batch, layer, head]: the same to one answer minus the mean logit of the
    relation's answers;
    ctx_att / subj_att [batch, layer, head]: attention to the counterfactual attribute in the
    context and to the subject of the question; z [layer, batch, head, d_head]; read [batch, 3]
    (see `readout`)."""
    hooks, post_scale = la.post_scale_hooks(bridge)
    cpos, spos = prompts.context_answer_pos, prompts.subject_pos
    out = forward_reduce(bridge, prompts.tokens,
                         {"ctx_att": lambda p: p[:, :, -1, cpos], "subj_att": lambda p: p[:, :, -1, spos]},
                         fwd_hooks=hooks, z_at=-1, final_at=-1)
    z = list(out["z"])
    direction = la.frozen_logit_direction(bridge, prompts.context_answer, prompts.memory_answer, out["scale"])
    dla = la.head_dla_from_z(bridge, z, direction, post_scale)
    # Each answer against the relation's average answer (the direction is linear in the wrong
    # token, so the mean of the per-candidate directions is the direction to their mean).
    own = {}
    for key, answer in (("ctx_own", prompts.context_answer), ("mem_own", prompts.memory_answer)):
        d = torch.stack([la.frozen_logit_direction(bridge, answer, c.expand_as(answer), out["scale"])
                         for c in prompts.candidates]).mean(0)
        own[key] = la.head_dla_from_z(bridge, z, d, post_scale)
    return {"dla": dla, **own, "ctx_att": out["ctx_att"].permute(1, 0, 2), "subj_att": out["subj_att"].permute(1, 0, 2),
            "z": out["z"], "read": readout(bridge, out["final"], prompts.context_answer, prompts.memory_answer)}


def per_fact(values: torch.Tensor, prompts: ConflictPrompts) -> torch.Tensor:
    """Per-row values [batch, ...] averaged over each fact's counterfactuals: [n_facts, ...]."""
    return values.reshape(-1, prompts.per_fact, *values.shape[1:]).mean(1)


def conflict_data(run, data_spec: dict) -> tuple[ConflictPrompts, dict[str, torch.Tensor]]:
    """The conflict prompts of one data spec (its half of the known facts) and their clean pass,
    computed once per session for both claims; not applicable when the model takes up neither
    answer."""
    p = run.params

    def compute():
        facts = facts_for(run, data_spec, int(p["min_known"]))
        prompts = conflict_prompts(run.model.tokenizer, facts, data_spec["template"],
                                   seed=int(data_spec["seed"]), per_fact=int(data_spec["per_fact"]))
        return prompts, conflict_pass(run.model.bridge, prompts)

    key = ("conflict", run.model.name, {k: v for k, v in data_spec.items() if k != "name"}, p["min_known"])
    prompts, clean = memo(key, compute)
    follow = float(clean["read"][:, 1:].sum(1).mean())
    if follow < float(p["min_follow"]):
        run.not_applicable(
            f"on the {data_spec['half']} half of '{data_spec['template']}' its top prediction is the context's "
            f"answer for {int(clean['read'][:, 1].sum())} and the remembered one for {int(clean['read'][:, 2].sum())} "
            f"of {len(prompts.subjects)} conflict prompts ({follow:.2f}); needs at least {float(p['min_follow']):g}")
    return prompts, clean


def ablation_sets(bridge, prompts: ConflictPrompts, clean: dict, sets: torch.Tensor) -> torch.Tensor:
    """logit(context) - logit(memory) on the first counterfactual of each fact, with each head set
    [n_sets, k, 2] mean-ablated at the final position (its heads' hook_z there replaced by their
    mean over all of the variant's conflict prompts), every set in one batched pass:
    [n_sets, n_facts]. One counterfactual per fact keeps the pass small on the larger models."""
    rows = torch.arange(0, prompts.tokens.shape[0], prompts.per_fact)
    tokens, n = prompts.tokens[rows], len(rows)
    mean_z = clean["z"].mean(1)                                              # [layer, head, d_head]
    hooks = set_edit_hooks(sets, n, -1, "set", mean_z)
    out = forward_reduce(bridge, tokens.repeat(len(sets), 1), fwd_hooks=hooks, final_at=-1)
    ctx, mem = prompts.context_answer[rows].repeat(len(sets)), prompts.memory_answer[rows].repeat(len(sets))
    return readout(bridge, out["final"], ctx, mem)[:, 0].view(len(sets), n)


# ----------------------------------------------------------------------------- the two claims


def ranked(run, sign: int) -> tuple[list[Head], float, int]:
    """The k heads whose mean attribution to logit(context) - logit(memory), times `sign`, is
    largest on the selection half, with their summed score and the number of selection facts."""
    model, k = run.model, int(run.params["k"])
    prompts, clean = conflict_data(run, run.selection_data)
    score = sign * clean["dla"].mean(0)                                      # [layer, head]
    order = torch.argsort(score.flatten(), descending=True)[:k]
    top = [(int(i) // model.n_heads, int(i) % model.n_heads) for i in order]
    return top, float(sum(score[h] for h in top)), len(prompts.subjects) // prompts.per_fact


def choose(run, sign: int) -> tuple[list[Head], list[Head]]:
    """(the claimed heads, the other side's heads), both chosen on the selection half; the claimed
    ones are frozen with run.select. The other side's heads are kept out of the null sets, so a
    null set never gains by holding a head that pushes the opposite way."""
    top, score, n = ranked(run, sign)
    other, _, _ = ranked(run, -sign)
    run.select(top, groups={"opposite side (kept out of the nulls)": other}, selection_set_dla=score,
               n_selection_facts=n)
    return top, other


def judge(run, chosen: tuple[list[Head], list[Head]], sign: int, name: str) -> None:
    """Measure the frozen heads on every held-out variant; `sign` +1 for context heads (their
    attribution and ablation effect counted toward the context answer), -1 for memory heads."""
    top, other = chosen
    model, p = run.model, run.params
    bridge = model.bridge
    depth = statistics.median(relative_depth(layer, model.n_layers) for layer, _ in top)
    big = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                  seed=int(p["null_seed"]), exclude=top + other)
    small = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["ablation_sets"]),
                                    seed=int(p["null_seed"]), exclude=top + other)
    sets = torch.cat([torch.tensor([[list(h) for h in top]]), small])       # set 0: the chosen heads
    rows, cols = [h[0] for h in top], [h[1] for h in top]
    for data_spec in run.variants():
        prompts, clean = conflict_data(run, data_spec)
        read = clean["read"]
        ablated = ablation_sets(bridge, prompts, clean, sets)               # [1 + n_sets, n_facts]
        first = read[::prompts.per_fact, 0]                                  # the same rows, clean
        effect = sign * (first[None] - ablated)                              # >0: the claimed side lost ground
        dla = sign * clean["dla"]
        run.measure(**{
            "n_facts": len(prompts.subjects) // prompts.per_fact,
            "context_rate": per_fact(read[:, 1], prompts),
            "memory_rate": per_fact(read[:, 2], prompts),
            "context_preference": per_fact(read[:, 0], prompts),
            f"{name}_dla": per_fact(dla[:, rows, cols].sum(1), prompts),
            f"{name}_context_attention": per_fact(clean["ctx_att"][:, rows, cols].mean(1), prompts),
            f"{name}_subject_attention": per_fact(clean["subj_att"][:, rows, cols].mean(1), prompts),
            f"{name}_context_answer_dla": per_fact(clean["ctx_own"][:, rows, cols].sum(1), prompts),
            f"{name}_memory_answer_dla": per_fact(clean["mem_own"][:, rows, cols].sum(1), prompts),
            f"{name}_ablation_effect": effect[0],
            "context_wins_clean": (first > 0).float(),
            "context_wins_ablated": (ablated[0] > 0).float(),
            "top_heads_depth": depth,
        })
        run.null("matched_sets_dla", stats.set_sums(dla.mean(0), big))
        run.null("matched_sets_attention", stats.set_means(clean["ctx_att"].mean(0), big))
        run.null("matched_sets_ablation", effect[1:].mean(1))
        if run.is_primary:
            run.artifact(scores=dla.mean(0).tolist(),
                         score_name=("direct logit attribution to logit(context answer) - logit(remembered answer)"
                                     if sign > 0 else
                                     "direct logit attribution to logit(remembered answer) - logit(context answer)"),
                         top_heads=[fmt_head(*h) for h in top], subjects=prompts.subjects[::prompts.per_fact],
                         null_example_heads=[fmt_head(*h) for h in big[0].tolist()])
    run.conclude()


@claim("context-heads-dla")
def test_context_heads(run):
    judge(run, choose(run, +1), +1, "context_heads")


@claim("memory-heads-dla")
def test_memory_heads(run):
    judge(run, choose(run, -1), -1, "memory_heads")
