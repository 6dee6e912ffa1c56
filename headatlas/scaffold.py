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
    data:
      generator: repeated-random-tokens
      n_prompts: 16
      block_len: 40
      seed: 0
      variants:  # the claim holds only if it holds on each (ICI and LR claims need at least 3)
        - {{name: 40 tokens seed 0}}
        - {{name: 25 tokens seed 1, block_len: 25, seed: 1}}   # TODO other templates or seeds
        - {{name: 60 tokens seed 2, block_len: 60, seed: 2}}
    params: {{}}
    checks:
      - measure: TODO_measured_value
        op: ">="
        threshold: 0.0        # TODO a threshold you can justify
        control: TODO_control_value
        tolerance: 0.05
        why: TODO why this threshold separates the effect from its absence
    control: TODO the negative control (random heads, shuffled prompts, another head ablated)
    sources: [zheng2024survey]
"""

TEST = '''\
"""Claim test for the {id} head (scaffolded by `headatlas new {id}`)."""

from headatlas.claims import claim


@claim("{id}-claim")
def test_{module}(run):
    # For each data variant (`for _ in run.variants():`), measure with run.model (a loaded
    # TransformerBridge model) on data built from run.data and record values with
    # run.measure(...), including the negative control's. Then call run.conclude(), which
    # applies the checks written in heads/{id}.yaml to every variant.
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
