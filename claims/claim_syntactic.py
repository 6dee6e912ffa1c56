"""Syntactic heads (Voita et al. 2019, Clark et al. 2019), restricted to what a causal model can
show: from the later word of a dependency arc, a head attends to the earlier word it is linked to,
more accurately than any rule that always looks a fixed number of tokens back.

Sentences come from templates whose arcs are known by construction (headatlas.prompts.syntax).
A head gets an arc right when, from the query word, the key it attends to most (the BOS attention
sink left out) is the gold word: Clark et al.'s most-attended-to word. The baseline is the best
fixed offset, chosen with hindsight on the same held-out sentences (the most favourable position
rule there is). For each relation the head with the best accuracy on the selection sentences
(other templates, another seed) is frozen and judged on held-out templates against every head of
the model on the same arcs.

Two claims share the measurement: determiner and object arcs, and the subject arc across
intervening nouns, where the nearest noun is never the subject.
"""

import torch
from _attn import fmt, forward_reduce, memo

from headatlas.claims import claim
from headatlas.methods import attention, scoring
from headatlas.prompts import syntax


def arc_scores(run, data: dict) -> tuple[syntax.DependencyArcs, dict[str, torch.Tensor]]:
    """(prompts, relation -> [layer, n_arcs, head, 2]: each head's most-attended key and its
    attention on the gold word), from one forward pass per model and data set."""

    def compute():
        d = syntax.from_spec(run.model.tokenizer, data)
        arcs = torch.cat([d.arcs[r] for r in syntax.RELATIONS])
        first_key = 1 if d.has_bos else 0
        out = forward_reduce(run.model.bridge, d.tokens,
                             {"a": lambda p: attention.arc_attention(p, arcs, first_key)})["a"]
        per, i = {}, 0
        for r in syntax.RELATIONS:
            n = d.arcs[r].shape[0]
            per[r], i = out[:, i:i + n], i + n
        return d, per

    return memo([run.model_name, "dependency-arcs", {k: v for k, v in data.items() if k != "variants"}], compute)


def _hits(scores: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """[layer, n_arcs, head]: 1 where the head's most-attended key is the gold position."""
    return (scores[..., 0] == gold[None, :, None]).float()


def _per_prompt(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Mean over each prompt's arcs: values [n_arcs] -> [prompts that have an arc]."""
    tot = torch.zeros(n_rows).index_add_(0, rows, values.float())
    cnt = torch.zeros(n_rows).index_add_(0, rows, torch.ones_like(values, dtype=torch.float))
    keep = cnt > 0
    return tot[keep] / cnt[keep]


def _select(run, relations):
    d, per = arc_scores(run, run.selection_data)
    chosen, values = {}, {}
    for r in relations:
        acc = _hits(per[r], d.arcs[r][:, 2]).mean(1)                       # [layer, head]
        chosen[r] = scoring.top_heads(acc, 1)[0]
        values[f"{r}_selection_accuracy"] = acc[chosen[r]]
    run.select([chosen[r] for r in relations], groups={r: [chosen[r]] for r in relations}, **values)
    return chosen


def _measure(run, relations, chosen):
    model, max_offset = run.model, int(run.params["max_offset"])
    for data in run.variants():
        d, per = arc_scores(run, data)
        n_rows = d.tokens.shape[0]
        scores = {}
        for r in relations:
            arcs = d.arcs[r]
            rows = arcs[:, 0]
            hits = _hits(per[r], arcs[:, 2])                               # [layer, n_arcs, head]
            acc = hits.mean(1)                                             # [layer, head]
            layer, head = chosen[r]
            k, _ = attention.best_offset(arcs, max_offset)
            base = attention.offset_hits(arcs, k)
            mine = hits[layer, :, head]
            values = {
                f"{r}_accuracy": _per_prompt(mine, rows, n_rows),
                f"{r}_offset_baseline": _per_prompt(base, rows, n_rows),
                f"{r}_margin": _per_prompt(mine - base, rows, n_rows),
                f"{r}_gold_attention": _per_prompt(per[r][layer, :, head, 1], rows, n_rows),
                f"{r}_best_offset": k,
                f"{r}_rank": scoring.head_rank(acc, layer, head),
                f"{r}_head_depth": scoring.relative_depth(layer, model.n_layers),
                f"{r}_n_arcs": arcs.shape[0],
            }
            if r == "nsubj":
                nearest = d.distractors[r]
                values["nsubj_nearest_noun_rate"] = _per_prompt(
                    (per[r][layer, :, head, 0] == nearest).float(), rows, n_rows)
            run.measure(**values)
            run.null(f"{r}_all_heads", acc.flatten())
            scores[r] = acc
        if run.is_primary:
            r0 = relations[0]
            layer, head = chosen[r0]
            n = int(d.lengths[0])
            pat = forward_reduce(model.bridge, d.tokens[:1, :n], {"p": lambda p: p[0]})["p"][layer, head]
            run.artifact(scores=scores[r0].tolist(),
                         score_name=f"{r0} arc accuracy (the most-attended word is the gold word)",
                         top_heads=fmt([chosen[r0]]),
                         relation_heads={r: scoring.fmt_head(*chosen[r]) for r in relations},
                         attention_example={"tokens": [model.tokenizer.decode([t]) for t in d.tokens[0, :n].tolist()],
                                            "pattern": [[round(float(x), 3) for x in row] for row in pat],
                                            "head": scoring.fmt_head(layer, head)})


@claim("syntactic-det-obj-scoring")
def test_determiner_and_object_heads(run):
    relations = ["det", "obj"]
    chosen = _select(run, relations)
    _measure(run, relations, chosen)
    run.conclude()


@claim("syntactic-subject-scoring")
def test_subject_heads(run):
    relations = ["nsubj"]
    chosen = _select(run, relations)
    _measure(run, relations, chosen)
    run.conclude()
