"""Content gatherers on Merullo et al.'s Colored Objects task (2024): "On the table, I see a red
pen, a blue cup and a green ball. What color is the cup? Answer:" -> " blue". In their GPT-2
medium circuit, duplicate heads find the listed object, mover heads copy the right colour, and
content gatherers (middle layers) bring the question's object to the last position; keeping
those heads from attending to the question drops accuracy to chance while other heads do not.

Prompts: headatlas.prompts.patterns.colored_objects_prompts (three objects of three colours,
the asked-for object's place cycling through the list; objects split in two halves by name).

- Selection (one template, the 'select' half of the objects, its own seed): each head's attention
  from the last position to the object named in the question, averaged over the prompts; the
  top k are frozen with run.select.
- Held out (the other objects, three templates that put the question's object at different
  distances from the last position, other seeds):
  1. the defining property: the k heads' attention from the last position to the question's
     object, against 999 layer-matched head sets;
  2. the causal check of the paper: the k heads' attention from the last position to the
     question span (everything after the list up to and including the question's object: in
     the Q/A template that includes " on the desk.") knocked out and renormalised over the
     rest; the share of the right colour's margin over the other two listed colours that is lost,
     against 19 layer-matched sets knocked out in the same batched pass.
The heads' attention to the right colour in the list (what a mover head reads) and the accuracy
with and without them are recorded alongside.

A model that picks the asked-for colour among the three listed ones on fewer than
`min_accuracy` of the prompts of any set cannot do the task and is not applicable.
"""

from __future__ import annotations

import torch
from _attn import fmt, forward_reduce, median_depth, memo, unembed_rows

from headatlas.claims import claim
from headatlas.methods import scoring, stats
from headatlas.methods.ablation import attention_knockout_set_hooks
from headatlas.prompts.patterns import ColoredObjects, colored_objects_prompts


def build(run, spec: dict) -> ColoredObjects:
    return colored_objects_prompts(run.model.tokenizer, template=spec["template"], n_prompts=int(spec["n_prompts"]),
                                   seed=int(spec["seed"]), half=spec["half"], split_seed=int(spec["split_seed"]))


def listed_logits(bridge, final: torch.Tensor, colors: torch.Tensor, answer: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The listed colours' logits [rows, n_objects] and the asked-for place [rows], for final
    residuals of prompts (colours [batch, n_objects], answer [batch]) repeated rows / batch times."""
    times = final.shape[0] // len(colors)
    return unembed_rows(bridge, final).gather(1, colors.repeat(times, 1)), answer.repeat(times)


def color_margin(listed: torch.Tensor, answer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logit(asked-for colour) - mean logit of the other listed colours, and whether the
    asked-for colour has the highest logit of the listed ones: ([rows], [rows])."""
    right = listed.gather(1, answer[:, None])[:, 0]
    return right - (listed.sum(1) - right) / (listed.shape[1] - 1), (listed.argmax(1) == answer).float()


def clean_pass(bridge, data: ColoredObjects) -> dict[str, torch.Tensor]:
    """One pass, read at the last position: attention [batch, layer, head] to the question's
    object and to the asked-for object's colour in the list; the margin [batch]; whether the
    asked-for colour wins among the listed ones [batch]."""
    rows = torch.arange(len(data.tokens))
    color_at = torch.tensor(data.color_pos)[data.answer]
    out = forward_reduce(bridge, data.tokens, {
        "question": lambda p: p[:, :, -1, data.question_pos],
        "color": lambda p: p[rows, :, -1, color_at]}, final_at=-1)
    margin, right = color_margin(*listed_logits(bridge, out["final"], data.colors, data.answer))
    return {"question": out["question"].permute(1, 0, 2), "color": out["color"].permute(1, 0, 2),
            "margin": margin, "right": right}


def data_and_pass(run, spec: dict) -> tuple[ColoredObjects, dict[str, torch.Tensor]]:
    spec = {k: v for k, v in spec.items() if k != "name"}

    def compute():
        data = build(run, spec)
        return data, clean_pass(run.model.bridge, data)
    return memo(("colored-objects", run.model.name, spec), compute)


def knocked_out(bridge, data: ColoredObjects, sets: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The margin and whether the right colour wins, on the first n prompts with each head set
    [n_sets, k, 2] kept from attending to the question span at the last position, every set in
    one batched pass: ([n_sets, n], [n_sets, n])."""
    hooks = attention_knockout_set_hooks(sets, n, query=data.tokens.shape[1] - 1, keys=data.question_span)
    out = forward_reduce(bridge, data.tokens[:n].repeat(len(sets), 1), fwd_hooks=hooks, final_at=-1)
    margin, right = color_margin(*listed_logits(bridge, out["final"], data.colors[:n], data.answer[:n]))
    return margin.view(len(sets), n), right.view(len(sets), n)


def _gate(run, clean: dict, where: str) -> None:
    need = float(run.params["min_accuracy"])
    accuracy = float(clean["right"].mean())
    if accuracy < need:
        run.not_applicable(f"names the asked-for colour (of the three listed) in {int(clean['right'].sum())} of "
                           f"{len(clean['right'])} {where} ({accuracy:.0%}; chance 33%); the claim needs {need:.0%}")


@claim("content-gatherer-question-object")
def test_content_gatherer_question_object(run):
    model, p = run.model, run.params
    k = int(p["k"])
    _, sel = data_and_pass(run, run.selection_data)
    _gate(run, sel, "selection prompts")
    score = sel["question"].mean(0)                                          # [layer, head]
    heads = scoring.top_heads(score, k)
    run.select(heads, top_selection_question_attention=score[heads[0]],
               selection_accuracy=float(sel["right"].mean()))
    big = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                  seed=int(p["null_seed"]), exclude=heads)
    small = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(p["knockout_sets"]),
                                    seed=int(p["null_seed"]), exclude=heads)
    sets = torch.cat([torch.tensor([[list(h) for h in heads]]), small])
    rows, cols = [h[0] for h in heads], [h[1] for h in heads]
    n = int(p["knockout_prompts"])
    for spec in run.variants():
        data, c = data_and_pass(run, spec)
        _gate(run, c, f"held-out prompts ({run.variant})")
        margin, right = knocked_out(model.bridge, data, sets, n)
        clean = c["margin"][:n]
        run.measure(accuracy=c["right"], clean_margin=clean, knocked_out_margin=margin[0],
                    accuracy_knocked_out=right[0],
                    question_object_attention=c["question"][:, rows, cols].mean(1),
                    right_color_attention=c["color"][:, rows, cols].mean(1),
                    knockout_margin_drop=stats.bootstrap_ratio(clean - margin[0], clean),
                    top_heads_depth=median_depth(heads, model.n_layers))
        run.null("matched_sets_question_attention", stats.set_means(c["question"].mean(0), big))
        run.null("matched_sets_knockout_drop", (clean[None] - margin[1:]).mean(1) / clean.mean())
        if run.is_primary:
            tok = model.tokenizer
            run.artifact(scores=c["question"].mean(0).tolist(), top_heads=fmt(heads),
                         score_name="attention from the last position to the question's object (held-out)",
                         example_prompt=tok.decode(data.tokens[0].tolist()),
                         effects={"labels": [f"knock out {', '.join(fmt(heads))}'s attention to the question",
                                             f"median of {len(small)} layer-matched sets"],
                                  "values": [float((clean - margin[0]).mean() / clean.mean()),
                                             float((clean[None] - margin[1:]).mean(1).median() / clean.mean())],
                                  "ylabel": "fraction of the right colour's margin lost"})
    run.conclude()
