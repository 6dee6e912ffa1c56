"""In which language does a chat model open its reply to a French question about an English
passage? (run by hand, not a test)

    python scripts/measure/reply_language.py smollm2-135m [more models]

Twelve countries; the passage gives the capital in English, the question asks for it in French,
in the model's chat format (headatlas.prompts.requests.chat_format). Four greedy tokens are read
and only the first word is kept, classed as French or English by a short word list; a reply that
is only the city's name counts as neither. The coherence claim's entry quotes these figures:
the models seldom answer in the wrong language, which is what coherence heads are steered against.
"""

from __future__ import annotations

import sys

import torch

from headatlas.models import load_model
from headatlas.prompts import requests as rq
from headatlas.prompts.tokens import encode

PAIRS = [("France", "la France", "Paris"), ("Germany", "l'Allemagne", "Berlin"), ("Italy", "l'Italie", "Rome"),
         ("Spain", "l'Espagne", "Madrid"), ("Japan", "le Japon", "Tokyo"), ("Egypt", "l'Égypte", "Cairo"),
         ("Canada", "le Canada", "Ottawa"), ("Russia", "la Russie", "Moscow"), ("Greece", "la Grèce", "Athens"),
         ("Portugal", "le Portugal", "Lisbon"), ("Poland", "la Pologne", "Warsaw"), ("Norway", "la Norvège", "Oslo")]
FRENCH = {"la", "le", "les", "l", "l'", "paris", "c'est", "c", "selon", "d'après", "d", "oui", "elle", "il", "sa",
          "capitale", "pour"}
ENGLISH = {"the", "according", "it", "its", "based", "capital", "yes", "for"}


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    for name in names:
        model = load_model(name, progress=False)
        fmt = rq.chat_format(model.tokenizer, model.info.family if model.info else None)
        counts = {"French": 0, "English": 0, "neither": 0}
        for en_name, fr_name, capital in PAIRS:
            text = (f"Passage: {en_name} is a country whose capital city is {capital}. Its largest city is also "
                    f"{capital}.\nQuestion : Quelle est la capitale de {fr_name} ? Réponds en une phrase.")
            ids = (([model.tokenizer.bos_token_id] if fmt.bos else []) + encode(model.tokenizer, fmt.before)
                   + encode(model.tokenizer, text) + encode(model.tokenizer, fmt.after))
            x = torch.tensor([ids])
            with torch.inference_mode():
                for _ in range(4):
                    x = torch.cat([x, model.bridge(x)[0, -1].argmax()[None, None]], 1)
            word = model.tokenizer.decode(x[0, len(ids):]).strip().split(" ")[0].lower().strip(".,:!")
            kind = "French" if word in FRENCH or word.startswith("l'") else "English" if word in ENGLISH else "neither"
            counts[kind] += 1
        print(f"{name}: first word of the reply " + ", ".join(f"{k} {v}" for k, v in counts.items())
              + f" (of {len(PAIRS)})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["smollm2-135m"])
