"""Which fact questions a model answers right in each phrasing (run by hand, not a test).

    python scripts/measure/facts_by_phrasing.py smollm2-135m [more models]

For the capital and language prompts of the knowledge claims (headatlas.prompts.tasks
FACT_TEMPLATES, read through claims/_facts.known_facts: right = the answer token is the top
prediction), prints per phrasing how many of the subjects are answered right, and over the four
capital phrasings how many subjects are right in all, in some, and how many answers are wrong.
These are the figures the accuracy and consistency entries give for having no claim.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "claims"))

from _facts import known_facts  # noqa: E402

from headatlas.models import load_model  # noqa: E402

CAPITAL = ["capital", "capital-city", "capital-course", "capital-known"]
LANGUAGE = ["language", "language-course"]


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    for name in names:
        model = load_model(name, progress=False)
        right, asked = {}, {}
        for t in CAPITAL + LANGUAGE:
            facts, n = known_facts(model, t)
            right[t], asked[t] = set(facts.subjects), n
        some = set().union(*(right[t] for t in CAPITAL))
        every = set.intersection(*(right[t] for t in CAPITAL))
        wrong = sum(asked[t] - len(right[t]) for t in CAPITAL)
        print(f"{name}: " + ", ".join(f"{t} {len(right[t])}/{asked[t]}" for t in CAPITAL + LANGUAGE))
        print(f"  capital, four phrasings: right in all {len(every)}, in some {len(some)}, "
              f"right in some and wrong in others {len(some - every)}; wrong answers {wrong} of "
              f"{sum(asked[t] for t in CAPITAL)}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["smollm2-135m"])
