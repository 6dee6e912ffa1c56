"""`headatlas new <id>`: scaffold a head entry and its claim test.

The scaffold is deliberately unfinished: the YAML holds TODO placeholders that the validator
rejects, and the claim test raises until its measurement is written, so nothing scaffolded can
pass by accident.
"""

from __future__ import annotations

import re
from pathlib import Path

from headatlas.catalogue import ID_PATTERN

ENTRY = """\
# Scaffolded by `headatlas new {id}`. Replace every TODO; `headatlas validate` refuses them.
id: {id}
name: TODO human-readable name, e.g. "Successor head"
aliases: []
stage: ICI            # KR, ICI, LR or EP (see catalogue/stages.yaml)
subgroup: overall-structure  # a sub-group id of that stage in catalogue/stages.yaml
summary: >-
  TODO two to four sentences in your own words: what the head attends to, what it writes, and
  why that matters.
papers: [zheng2024survey]     # TODO keys of catalogue/bibliography.yaml (add new papers there)
methods: [scoring]            # ids from catalogue/methods.yaml
layer_band:
  relative: [0.0, 1.0]        # TODO fraction of depth where the literature finds it
  note: TODO where the papers report it
reported_in: []               # [{{model: gpt2, heads: ["5.5"], source: <key>, task: ...}}]
related: []                   # [{{head: <entry id>, relation: ...}}]
claims:
  - id: {id}-claim
    statement: TODO what the claim asserts, precisely enough to be false
    test: claims/claim_{module}.py
    models: [smollm2-135m]
    method: scoring
    data:                     # the HELD-OUT data the frozen heads are judged on
      generator: repeated-random-tokens
      n_prompts: 16
      block_len: 40
      seed: 0
      variants:  # held-out test sets; the claim holds only if it holds on each (ICI and LR need 3)
        - {{name: 40 tokens seed 0}}
        - {{name: 25 tokens seed 1, block_len: 25, seed: 1}}   # TODO other templates or seeds
        - {{name: 60 tokens seed 2, block_len: 60, seed: 2}}
    selection: {{seed: 10}}     # the data the heads are CHOSEN on: must differ from every variant
                              # ('weights' if heads come from the weights alone)
    params: {{top_k: 3}}
    checks:
      - measure: TODO_measured_value   # measured per prompt on held-out data: read at the
        op: ">="                       # conservative end of its bootstrap 95% interval
        threshold: 0.0        # TODO a threshold you can justify
        beats_null: matched_sets       # the null the test records with run.null(...)
        percentile: 99        # the value must lie beyond this percentile of the null
        tolerance: 0.05
        why: TODO why this threshold separates the effect from its absence
    control: >-
      TODO the null (the same measure over many matched head sets, or over all heads) and any
      control on data without the effect (then add `control: <measured name>` to the check)
    sources: [zheng2024survey]
"""

TEST = '''\
"""Claim test for the {id} head (scaffolded by `headatlas new {id}`).

Select, measure on held-out data, conclude: heads are chosen on run.selection_data and frozen
with run.select(); every held-out variant then measures those heads and records the null.
"""

from headatlas.claims import claim
from headatlas.methods import stats


@claim("{id}-claim")
def test_{module}(run):
    model = run.model  # a loaded TransformerBridge model (model.bridge, model.tokenizer)
    # 1. Select on the selection set (never on held-out data):
    #    heads = <top heads by your score on data built from run.selection_data>
    #    run.select(heads, <name>=<the value they were chosen by>)
    # 2. Judge the frozen heads on every held-out variant, against a null:
    #    for data in run.variants():
    #        run.measure(TODO_measured_value=<per-prompt values of the frozen heads>)
    #        sets = stats.matched_head_sets(run.heads, model.n_layers, model.n_heads, seed=0,
    #                                       exclude=run.heads)
    #        run.null("matched_sets", <the same measure for each head set>)
    #    If the model cannot do the task: run.not_applicable("<the measured figure>").
    # 3. run.conclude() applies the checks of heads/{id}.yaml and sets the verdict.
    raise NotImplementedError("claim {id}-claim is scaffolded but not written yet")
'''


def scaffold(head_id: str, root: Path) -> list[Path]:
    if not re.match(ID_PATTERN, head_id):
        raise ValueError(f"{head_id!r} is not a valid id: use lower-case words joined by '-', e.g. 'successor'")
    module = head_id.replace("-", "_")
    entry = root / "heads" / f"{head_id}.yaml"
    test = root / "claims" / f"claim_{module}.py"
    for path in (entry, test):
        if path.exists():
            raise ValueError(f"{path.relative_to(root)} already exists; not overwriting it")
    entry.write_text(ENTRY.format(id=head_id, module=module), encoding="utf-8")
    test.write_text(TEST.format(id=head_id, module=module), encoding="utf-8")
    return [entry.relative_to(root), test.relative_to(root)]
