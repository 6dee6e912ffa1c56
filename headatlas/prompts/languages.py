"""Cross-lingual questions about a passage, in English and French, in the model's chat format:
the data of the coherence-head claim (does the reply open in the language it was asked in?).

Each country gives four requests: the passage (which names its capital) in English or French,
and the question in English or French. Capitals are spelt alike in both languages, so the only
thing that tells the languages of a prompt apart is the wording around the country and the city.
The reply's language is read from the model's first reply token: the log-sum-exp of the logits
of words that open French replies ("La", "Selon", "Oui", ...) minus that of words that open
English ones ("The", "According", "Yes", ...), each taken as its first token in the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts.requests import ChatFormat, chat_prompts

# (English name, French name as a subject, French "of <country>", capital spelt alike in both)
COUNTRIES: tuple[tuple[str, str, str, str], ...] = (
    ("France", "La France", "de la France", "Paris"), ("Germany", "L'Allemagne", "de l'Allemagne", "Berlin"),
    ("Spain", "L'Espagne", "de l'Espagne", "Madrid"), ("Japan", "Le Japon", "du Japon", "Tokyo"),
    ("Canada", "Le Canada", "du Canada", "Ottawa"), ("Norway", "La Norvège", "de la Norvège", "Oslo"),
    ("Ireland", "L'Irlande", "de l'Irlande", "Dublin"), ("Finland", "La Finlande", "de la Finlande", "Helsinki"),
    ("Sweden", "La Suède", "de la Suède", "Stockholm"), ("Kenya", "Le Kenya", "du Kenya", "Nairobi"),
    ("Peru", "Le Pérou", "du Pérou", "Lima"), ("Chile", "Le Chili", "du Chili", "Santiago"),
    ("Colombia", "La Colombie", "de la Colombie", "Bogota"), ("Venezuela", "Le Venezuela", "du Venezuela", "Caracas"),
    ("Australia", "L'Australie", "de l'Australie", "Canberra"), ("Turkey", "La Turquie", "de la Turquie", "Ankara"),
    ("Hungary", "La Hongrie", "de la Hongrie", "Budapest"), ("Thailand", "La Thaïlande", "de la Thaïlande", "Bangkok"),
    ("Senegal", "Le Sénégal", "du Sénégal", "Dakar"), ("Morocco", "Le Maroc", "du Maroc", "Rabat"),
    ("Tunisia", "La Tunisie", "de la Tunisie", "Tunis"), ("Vietnam", "Le Vietnam", "du Vietnam", "Hanoi"),
    ("Ecuador", "L'Équateur", "de l'Équateur", "Quito"), ("Uruguay", "L'Uruguay", "de l'Uruguay", "Montevideo"),
    ("Argentina", "L'Argentine", "de l'Argentine", "Buenos Aires"), ("Uganda", "L'Ouganda", "de l'Ouganda", "Kampala"),
    ("Ghana", "Le Ghana", "du Ghana", "Accra"), ("Nigeria", "Le Nigeria", "du Nigeria", "Abuja"),
    ("Latvia", "La Lettonie", "de la Lettonie", "Riga"), ("Estonia", "L'Estonie", "de l'Estonie", "Tallinn"),
    ("Lithuania", "La Lituanie", "de la Lituanie", "Vilnius"), ("Croatia", "La Croatie", "de la Croatie", "Zagreb"),
    ("Serbia", "La Serbie", "de la Serbie", "Belgrade"), ("Bulgaria", "La Bulgarie", "de la Bulgarie", "Sofia"),
    ("Qatar", "Le Qatar", "du Qatar", "Doha"), ("Pakistan", "Le Pakistan", "du Pakistan", "Islamabad"),
    ("Mali", "Le Mali", "du Mali", "Bamako"), ("Rwanda", "Le Rwanda", "du Rwanda", "Kigali"),
    ("Slovakia", "La Slovaquie", "de la Slovaquie", "Bratislava"), ("Zambia", "La Zambie", "de la Zambie", "Lusaka"),
)

# template -> language -> (passage, question); {c} English name, {s} French subject, {o} French
# "of <country>", {k} capital
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "country-is": {
        "en": ("{c} is a country whose capital city is {k}.", "What is the capital of {c}? Answer in one sentence."),
        "fr": ("{s} est un pays dont la capitale est {k}.", "Quelle est la capitale {o} ? Réponds en une phrase."),
    },
    "government": {
        "en": ("The government of {c} sits in {k}, the country's capital.",
               "Which city is the capital of {c}? Please answer briefly."),
        "fr": ("Le gouvernement {o} siège à {k}, la capitale du pays.",
               "Quelle ville est la capitale {o} ? Réponds brièvement, s'il te plaît."),
    },
    "city-is": {
        "en": ("{k} is the capital of {c}.", "Tell me the capital of {c}."),
        "fr": ("{k} est la capitale {o}.", "Dis-moi quelle est la capitale {o}."),
    },
}
LANGUAGES = ("en", "fr")

# words that open a reply in each language; each is read as its first token
OPENINGS: dict[str, tuple[str, ...]] = {
    "en": ("The", "According", "It", "Its", "Based", "Yes", "This", "In", "As", "Sure", "Certainly"),
    "fr": ("La", "Le", "Selon", "Sa", "Il", "Elle", "C'est", "D'après", "Oui", "Cette", "Bien", "En",
           "Dans"),
}


@dataclass(frozen=True)
class LanguagePrompts:
    """Prompts in blocks of four per (template, country): passage en, question en / passage en,
    question fr / passage fr, question en / passage fr, question fr."""

    ids: list[list[int]]            # each prompt's tokens, ending where the reply starts
    country: torch.Tensor           # [n] index into COUNTRIES
    passage_fr: torch.Tensor        # [n] bool: the passage is in French
    question_fr: torch.Tensor       # [n] bool: the question is in French
    opening_ids: dict[str, torch.Tensor]   # language -> token ids that open a reply in it
    template: str

    @property
    def cross(self) -> torch.Tensor:
        """[n] bool: passage and question are in different languages."""
        return self.passage_fr != self.question_fr


def opening_ids(tokenizer) -> dict[str, torch.Tensor]:
    """First tokens of each language's opening words; a token shared by both languages, or of
    fewer than two letters ("C" of "C'est"), is dropped."""
    first = {lang: {} for lang in OPENINGS}
    for lang, words in OPENINGS.items():
        for w in words:
            ids = tokenizer.encode(w, add_special_tokens=False)
            piece = tokenizer.decode(ids[:1])
            if sum(ch.isalpha() for ch in piece) >= 2:
                first[lang][ids[0]] = piece
    shared = set(first["en"]) & set(first["fr"])
    return {lang: torch.tensor(sorted(set(ids) - shared)) for lang, ids in first.items()}


def country_half(split_seed: int, half: str) -> list[int]:
    """A seeded split of the countries: 'select' (the first 18 after shuffling) or 'test' (the rest)."""
    order = torch.randperm(len(COUNTRIES), generator=torch.Generator().manual_seed(split_seed)).tolist()
    if half not in ("select", "test"):
        raise ValueError(f"half must be 'select' or 'test', not {half!r}")
    return sorted(order[:18]) if half == "select" else sorted(order[18:])


def request_text(template: str, country: int, passage: str, question: str) -> str:
    c, s, o, k = COUNTRIES[country]
    fields = dict(c=c, s=s, o=o, k=k)
    return (TEMPLATES[template][passage][0].format(**fields) + "\n\n"
            + TEMPLATES[template][question][1].format(**fields))


def language_prompts(tokenizer, fmt: ChatFormat, *, template: str, half: str, split_seed: int) -> LanguagePrompts:
    """Four requests per country of the half (passage and question each in English or French);
    template "all" gives every template's requests, one template after another."""
    if template != "all" and template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(TEMPLATES)} or 'all'")
    texts, country, p_fr, q_fr = [], [], [], []
    for t in (list(TEMPLATES) if template == "all" else [template]):
        for i in country_half(split_seed, half):
            for passage in LANGUAGES:
                for question in LANGUAGES:
                    texts.append(request_text(t, i, passage, question))
                    country.append(i)
                    p_fr.append(passage == "fr")
                    q_fr.append(question == "fr")
    chat = chat_prompts(tokenizer, texts, fmt)
    return LanguagePrompts(chat.ids, torch.tensor(country), torch.tensor(p_fr), torch.tensor(q_fr),
                           opening_ids(tokenizer), template)


def from_spec(tokenizer, fmt: ChatFormat, spec: dict) -> LanguagePrompts:
    return language_prompts(tokenizer, fmt, template=spec["template"], half=spec["half"],
                            split_seed=int(spec.get("split_seed", 0)))
