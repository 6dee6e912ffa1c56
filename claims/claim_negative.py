"""Negative heads (Yu et al. 2024): in a Yes/No question whose instruction names both options, a
head that attends more to " No" than to " Yes" and so pulls the answer toward No, whatever the
question. Yu et al. rank heads by the negative attention score (NAS) and correct the bias by
adjusting only those heads.

The questions are the user's turn of the model's chat format and the answer is the first token
of its reply (the first runs, on raw text ending in "Answer:", found no model answering 70%
right; in the chat format Qwen2.5-Coder-1.5B does). Each question is asked twice, with the
options listed "Yes or No" and "No or Yes", so a head tied to the word " No" is told from one
tied to the later option. Heads are chosen on selection prompts (another template and seed) by
the smaller of their two NAS values, frozen, and judged on held-out templates: their NAS in both
orders against head sets matched by layer, and the answer's shift toward Yes when their
attention to the two options is evened out (NAS set to zero), against the same edit on matched
sets, all sets in one batched pass."""

import torch
from _attn import fmt, forward_reduce, median_depth, memo, unembed_rows

from headatlas.claims import claim
from headatlas.methods import scoring, stats
from headatlas.prompts import patterns, requests


def _prompts(model, d: dict, no_first: bool) -> patterns.YesNo:
    chat = requests.chat_format(model.tokenizer, model.info.family if model.info else None) if d.get("chat") else None
    return patterns.yes_no_prompts(model.tokenizer, n_prompts=int(d["n_prompts"]), template=str(d["template"]),
                                   no_first=no_first, seed=int(d["seed"]), chat=chat)


def _nas(pattern: torch.Tensor, q: patterns.YesNo) -> torch.Tensor:
    """Yu et al.'s NAS, sum over the queries after the instruction of (a_yes + a_no) * log(a_no /
    a_yes): pattern [batch, head, q, k] -> [batch, head]."""
    rows = torch.arange(pattern.shape[0])
    a_yes = pattern[rows, :, :, q.yes_pos].clamp(min=1e-9)                    # [batch, head, q]
    a_no = pattern[rows, :, :, q.no_pos].clamp(min=1e-9)
    after = (torch.arange(pattern.shape[2])[None] >= q.query_start[:, None]).float()[:, None]
    return ((a_yes + a_no) * (a_no / a_yes).log() * after).sum(-1)


def both_orders(model, d: dict) -> dict:
    """The questions in both option orders (same questions, row for row), one clean pass each:
    NAS [order, layer, batch, head], logit(Yes) - logit(No) at the answer [order, batch], and
    over both orders the accuracy, the share answered No and the AUC of logit(Yes) - logit(No)
    for telling true statements from false ones."""

    def compute():
        out = {"nas": [], "yes_minus_no": [], "q": []}
        for no_first in (False, True):
            q = _prompts(model, d, no_first)
            r = forward_reduce(model.bridge, q.tokens, {"nas": lambda p, q=q: _nas(p, q)}, final_at=-1)
            logits = unembed_rows(model.bridge, r["final"])
            out["nas"].append(r["nas"])
            out["yes_minus_no"].append(logits[:, q.answer_yes_id] - logits[:, q.answer_no_id])
            out["q"].append(q)
        out["nas"] = torch.stack(out["nas"])
        out["yes_minus_no"] = torch.stack(out["yes_minus_no"])
        truth = torch.stack([q.truth for q in out["q"]]).bool()
        out["accuracy"] = float(((out["yes_minus_no"] > 0) == truth).float().mean())
        out["no_rate"] = float((out["yes_minus_no"] < 0).float().mean())
        out["auc"] = stats.auc(out["yes_minus_no"], truth)
        return out

    key = {k: d[k] for k in ("n_prompts", "template", "seed")} | {"chat": bool(d.get("chat"))}
    return memo([model.name, "yes-no-both-orders", key], compute)


def even_out_hooks(head_sets: torch.Tensor, q: patterns.YesNo, n_prompts: int) -> list:
    """Hooks for a batch repeating `n_prompts` prompts once per head set ([n_sets, k, 2]): in set
    s's rows, its heads' attention to " Yes" and to " No" is replaced by the mean of the two at
    every query after the instruction (the row's total is unchanged; NAS becomes zero)."""
    n_sets = head_sets.shape[0]
    rows = torch.arange(n_sets * n_prompts)
    yes, no, start = q.yes_pos.repeat(n_sets), q.no_pos.repeat(n_sets), q.query_start.repeat(n_sets)
    hooks = []
    for layer in sorted({int(x) for x in head_sets[..., 0].flatten()}):
        heads = [(s, int(h)) for s in range(n_sets) for lay, h in head_sets[s].tolist() if lay == layer]

        def edit(pattern, hook, heads=heads):
            mask = torch.zeros(n_sets, pattern.shape[1], dtype=torch.bool)
            for s, h in heads:
                mask[s, h] = True
            m = mask.repeat_interleave(n_prompts, dim=0)                          # [rows, head]
            after = torch.arange(pattern.shape[2])[None] >= start[:, None]         # [rows, q]
            sel = (m[:, :, None] & after[:, None, :])                              # [rows, head, q]
            p = pattern.clone()
            a_yes, a_no = p[rows, :, :, yes], p[rows, :, :, no]                    # [rows, head, q]
            mid = (a_yes + a_no) / 2
            p[rows, :, :, yes] = torch.where(sel, mid, a_yes)
            p[rows, :, :, no] = torch.where(sel, mid, a_no)
            return p

        hooks.append((f"blocks.{layer}.attn.hook_pattern", edit))
    return hooks


def evened_shift(model, c: dict, sets: torch.Tensor) -> torch.Tensor:
    """logit(Yes) - logit(No) after evening out each head set's option attention, minus the clean
    value, per set and question, both orders side by side: [n_sets, 2 * batch]."""
    shifts = []
    for order, q in enumerate(c["q"]):
        n = q.tokens.shape[0]
        r = forward_reduce(model.bridge, q.tokens.repeat(len(sets), 1), fwd_hooks=even_out_hooks(sets, q, n), final_at=-1)
        logits = unembed_rows(model.bridge, r["final"])
        edited = (logits[:, q.answer_yes_id] - logits[:, q.answer_no_id]).view(len(sets), n)
        shifts.append(edited - c["yes_minus_no"][order][None])
    return torch.cat(shifts, 1)


def _gate(run, c: dict, where: str) -> None:
    """The model must tell true statements from false ones by logit(Yes) - logit(No), whatever
    its leaning: an accuracy gate would turn away the negatively biased models the type is about
    (a model that knows the answers but says No too often)."""
    need = float(run.params["min_auc"])
    if c["auc"] < need:
        run.not_applicable(f"tells true from false statements with an AUC of {c['auc']:.2f} on the {where} "
                           f"(chance 0.5; right on {c['accuracy']:.0%} in both option orders, says No to "
                           f"{c['no_rate']:.0%}); the claim needs {need:g}")


@claim("negative-heads-nas")
def test_negative_heads(run):
    model, k = run.model, int(run.params["k"])
    s = both_orders(model, run.selection_data)
    _gate(run, s, "selection questions")
    score = s["nas"].mean(2).min(0).values                                      # [layer, head]: the weaker order
    heads = scoring.top_heads(score, k)
    run.select(heads, top_selection_nas_min_order=score[heads[0]])
    hv = torch.tensor(heads)
    big = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(run.params["null_sets"]),
                                  seed=int(run.params["null_seed"]), exclude=heads)
    small = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(run.params["edit_sets"]),
                                    seed=int(run.params["null_seed"]), exclude=heads)
    sets = torch.cat([hv[None], small])                                          # set 0: the chosen heads

    for data in run.variants():
        c = both_orders(model, data)
        _gate(run, c, f"held-out questions ({run.variant})")
        nas = c["nas"]                                                           # [order, layer, batch, head]
        weaker = nas.min(0).values                                               # [layer, batch, head]
        shift = evened_shift(model, c, sets)                                     # [1 + n_sets, 2 * batch]
        run.measure(accuracy=c["accuracy"], no_rate=c["no_rate"], auc=c["auc"],
                    nas_weaker_order=weaker[hv[:, 0], :, hv[:, 1]].mean(0),
                    nas_yes_first=nas[0][hv[:, 0], :, hv[:, 1]].mean(0),
                    nas_no_first=nas[1][hv[:, 0], :, hv[:, 1]].mean(0),
                    evened_shift_to_yes=shift[0],
                    top_heads_depth=median_depth(heads, model.n_layers))
        run.null("matched_sets_nas", weaker[big[..., 0], :, big[..., 1]].mean(1).mean(-1))
        run.null("matched_sets_shift", shift[1:].mean(-1))
        if run.is_primary:
            run.artifact(scores=weaker.mean(1).tolist(), top_heads=fmt(heads),
                         score_name="negative attention score, the smaller of the two option orders (held-out)",
                         effects={"labels": [f"even out the option attention of {', '.join(fmt(heads))}"],
                                  "values": [float(shift[0].mean())],
                                  "ylabel": "shift of logit(Yes) - logit(No) at the answer"})
    run.conclude()
