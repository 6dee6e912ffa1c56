"""Function-vector heads (Todd et al. 2024): a few heads' task-averaged outputs carry the task.

Per data variant (task + template):
1. Few-shot prompts from one half of the task's pairs; each head's output (hook_z) at the last
   position, averaged over them: the head's task-conditioned mean output.
2. Indirect effect of each head: the change in P(correct) when its mean output replaces its own
   at the last position of prompts whose demonstration labels are shuffled. All heads at once by
   a first-order (attribution-patching) estimate from one forward and backward pass; the top k
   heads are the function-vector heads.
3. Exact test on other shuffled-label prompts: patching the k heads' means together recovers
   part of the gap between shuffled and clean demonstrations; k random heads as the control.
4. Zero-shot prompts for the held-out half of the pairs: adding the k heads' mean outputs (each
   at its own layer, last position) brings the correct answer into the model's top predictions;
   the same with k random heads' mean outputs is the control.
"""

import statistics

import torch

from headatlas.claims import claim
from headatlas.methods.ablation import final_residual
from headatlas.methods.patching import z_gradients

from headatlas.methods.scoring import fmt_head, random_heads, relative_depth
from headatlas.prompts.tasks import task_prompts, task_split, zero_shot_prompts


class _Stop(Exception):
    pass


def _last_logits(bridge, tokens, hooks=()):
    x = final_residual(bridge, tokens, hooks)[:, -1:]
    with torch.inference_mode():
        return bridge.unembed(x)[:, 0].float()


def _prob(logits, answer):
    return logits.softmax(-1)[torch.arange(len(answer)), answer]


def _z_hooks(heads, means, mode):
    """Replace ('set') or add to ('add') the heads' hook_z at the last position with their means."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    hooks = []
    for layer, hs in by_layer.items():
        def edit(z, hook, layer=layer, hs=hs):
            z = z.clone()
            value = means[layer][hs].to(z.dtype)
            z[:, -1, hs] = z[:, -1, hs] + value if mode == "add" else value
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", edit))
    return hooks


def indirect_effect_estimate(bridge, tokens, answer, means):
    """First-order estimate, for every head, of the change in mean P(answer) when the head's
    last-position hook_z is replaced by `means` [layer, head, d_head]: (mean - z) . dP/dz.
    Returns ([layer, head] estimate, [batch] P(answer) of the unpatched run)."""
    probs = {}

    def mean_prob(logits):
        probs["p"] = _prob(logits, answer)
        return probs["p"].mean()

    zs, grads, _ = z_gradients(bridge, tokens, mean_prob)
    est = torch.stack([((means[layer][None] - zs[layer][:, -1]) * grads[layer][:, -1]).sum((0, 2))
                       for layer in range(bridge.cfg.n_layers)])
    return est, probs["p"].detach()


@claim("function-vector-heads")
def test_function_vector_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    bridge, tok = model.bridge, model.tokenizer
    n_layers, n_heads = model.n_layers, model.n_heads
    split = task_split(tok, d["task"], int(d["split_seed"]))
    kw = dict(n_prompts=int(d["n_prompts"]), n_demos=int(d["n_demos"]))
    seed = int(d["seed"])
    few = task_prompts(tok, split.demo, d["template"], seed=seed, **kw)
    select = task_prompts(tok, split.demo, d["template"], seed=seed + 1, shuffle_labels=True, **kw)
    evaluate = task_prompts(tok, split.demo, d["template"], seed=seed + 2, shuffle_labels=True, **kw)
    zero = zero_shot_prompts(tok, split.held_out, d["template"])

    # 1. Mean head outputs at the last position of few-shot prompts, and the clean P(correct).
    store = {}

    def grab(x, hook):
        store["x"] = x.detach()
        raise _Stop

    zs: list = [None] * n_layers

    def keep(z, hook):
        zs[int(hook.name.split(".")[1])] = z[:, -1].detach().clone()
        return z
    with torch.inference_mode():
        try:
            bridge.run_with_hooks(few.tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", keep) for layer in range(n_layers)]
                                  + [("unembed.hook_in", grab)], return_type=None)
        except _Stop:
            pass
        few_prob = _prob(bridge.unembed(store["x"][:, -1:])[:, 0].float(), few.answer)
    means = torch.stack(zs).mean(1)                                   # [layer, head, d_head]

    # 2. Indirect effects on shuffled-label prompts; top k heads.
    est, _ = indirect_effect_estimate(bridge, select.tokens, select.answer, means)
    k = int(p["k"])
    order = torch.argsort(est.flatten(), descending=True)
    top = [(int(i) // n_heads, int(i) % n_heads) for i in order[:k]]
    control = random_heads(n_layers, n_heads, k, int(p["control_seed"]), exclude=top)

    # 3. Exact patching of the k heads' means into held-out shuffled-label prompts.
    shuffled = float(_prob(_last_logits(bridge, evaluate.tokens), evaluate.answer).mean())
    clean = float(few_prob.mean())
    gap = clean - shuffled

    def recovered(heads):
        patched = float(_prob(_last_logits(bridge, evaluate.tokens, _z_hooks(heads, means, "set")), evaluate.answer).mean())
        return (patched - shuffled) / gap if gap > 0 else float("nan")

    # 4. Function vector added to zero-shot prompts of held-out pairs.
    base = _last_logits(bridge, zero.tokens)

    def zero_shot(heads):
        logits = _last_logits(bridge, zero.tokens, _z_hooks(heads, means, "add")) if heads else base
        idx = torch.arange(len(zero.answer))
        logp = logits.log_softmax(-1)[idx, zero.answer]
        rank = (logits > logits[idx, zero.answer][:, None]).sum(-1)     # 0 = the top prediction
        return float(logp.mean()), float((rank == 0).float().mean()), float((rank < top_n).float().mean())

    top_n = int(p["top_n"])
    base_logp, base_acc, base_topn = zero_shot([])
    top_logp, top_acc, top_topn = zero_shot(top)
    ctrl_logp, ctrl_acc, ctrl_topn = zero_shot(control)
    rec_top, rec_ctrl = recovered(top), recovered(control)
    run.measure(
        few_shot_prob=clean, shuffled_prob=shuffled,
        recovered_fraction=rec_top, control_recovered_fraction=rec_ctrl,
        zero_shot_accuracy=base_acc, fv_accuracy=top_acc, control_fv_accuracy=ctrl_acc,
        fv_logprob_gain=top_logp - base_logp, control_fv_logprob_gain=ctrl_logp - base_logp,
        zero_shot_top_n=base_topn, fv_top_n_gain=top_topn - base_topn, control_fv_top_n_gain=ctrl_topn - base_topn,
        top_heads_depth=statistics.median(relative_depth(layer, n_layers) for layer, _ in top),
        n_held_out=len(zero.answer),
    )
    if run.is_primary:
        run.artifact(scores=est.tolist(), score_name="indirect effect on P(correct) (first-order estimate)",
                     top_heads=[fmt_head(*h) for h in top], control_heads=[fmt_head(*h) for h in control],
                     effects={"labels": [f"top {k} heads", f"random {k} heads"],
                              "values": [top_topn - base_topn, ctrl_topn - base_topn],
                              "ylabel": f"gain in zero-shot top-{top_n} accuracy on held-out words"})
