"""Seeded probe datasets of the method library: ordinal sequences, filler text, and IOI prompt
pairs as generic clean/corrupted contrasts for the patching methods. (The claims' prompt sets,
which the scan also uses, live in `patterns`, `tasks` and `ioi`.)

Prompts are assembled from separately tokenized pieces whose length is checked, so that every
prompt of a batch has the same length and the positions a score needs (needle span, option
tokens, word boundaries) are known exactly instead of searched for afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts.tokens import bos_prefix, encode, single_token, single_token_words

# ----------------------------------------------------------------------------- ordinal sequences

ORDINAL_SEQUENCES: dict[str, list[str]] = {
    "numbers": [str(i) for i in range(1, 21)],
    "number_words": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                     "eleven", "twelve"],
    "ordinals": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
                 "tenth"],
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"],
    "letters": list("abcdefghijklmnopqrstuvwxyz"),
    "capital_letters": list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
}


@dataclass(frozen=True)
class OrdinalSet:
    name: str
    words: list[str]        # the surface forms, in order
    token_ids: list[int]    # one token each


def ordinal_sets(tokenizer, sequences: dict[str, list[str]] = ORDINAL_SEQUENCES,
                 min_len: int = 3) -> list[OrdinalSet]:
    """Each sequence in the surface form (with or without a leading space) that keeps the longest
    run of consecutive single-token items: successor pairs must be consecutive. SmolLM2 splits
    digits, so its numbers are 1..9 without a space; GPT-2 keeps " 1".." 20"."""
    out = []
    for name, items in sequences.items():
        best: tuple[int, int, str] = (0, 0, "")
        for prefix in (" ", ""):
            ids = [single_token(tokenizer, prefix + w) for w in items]
            start = 0
            for i in range(len(ids) + 1):
                if i == len(ids) or ids[i] is None:
                    if i - start > best[1] - best[0]:
                        best = (start, i, prefix)
                    start = i + 1
        lo, hi, prefix = best
        if hi - lo >= min_len:
            words = items[lo:hi]
            ids = [single_token(tokenizer, prefix + w) for w in words]
            if len(set(ids)) == len(ids):
                out.append(OrdinalSet(name, [prefix + w for w in words], ids))
    return out


# ----------------------------------------------------------------------------- text pieces

FILLER = [
    " The river ran past the mill and turned toward the hills.",
    " Farmers brought their grain to town on the first day of the week.",
    " A small bakery on the corner sold bread until noon.",
    " The old bridge was repaired after the spring floods.",
    " Children walked to school along the narrow road by the lake.",
    " In the evening the market square filled with music and lights.",
    " The library kept its oldest maps in a locked room upstairs.",
    " Rain fell for three days and the fields turned green again.",
    " A train from the coast arrived late every Friday night.",
    " The teacher wrote the lesson on the board in careful letters.",
    " Most houses in the village had gardens with apple trees.",
    " The post office closed early during the winter months.",
]


# ----------------------------------------------------------------------------- IOI


IOI_TEMPLATES = [
    "When{A} and{B} went to the store,{S} gave a drink to",
    "When{A} and{B} went to the park,{S} gave a ball to",
    "Then,{A} and{B} had a long argument, and afterwards{S} said to",
    "After{A} and{B} went to the office,{S} gave a letter to",
]
IOI_NAMES = ["Mary", "John", "Alice", "Bob", "Tom", "James", "Sarah", "Anna", "David", "Paul", "Kate",
             "Mike", "Lisa", "Emma", "Jack", "Lucy"]


@dataclass(frozen=True)
class ContrastPrompts:
    """Clean and corrupted prompts of equal length and the two answer tokens per prompt."""

    clean: torch.Tensor      # [batch, pos]
    corrupted: torch.Tensor  # [batch, pos]
    correct: torch.Tensor    # [batch] token the clean prompt should predict
    wrong: torch.Tensor      # [batch] the competing token


def ioi_prompts(tokenizer, *, n_prompts: int = 8, templates: list[str] | None = None, seed: int = 0) -> ContrastPrompts:
    """Indirect-object prompts (answer: the indirect object A; competitor: the subject B, who
    appears twice). The corruption swaps the second subject mention for a third name (Wang et
    al.'s ABC distribution), which removes the duplicate that the circuit keys on. Templates
    that tokenize to different lengths than the first are dropped."""
    gen = torch.Generator().manual_seed(seed)
    names = [(n, t) for n, t in single_token_words(tokenizer, IOI_NAMES)]
    templates = list(templates or IOI_TEMPLATES)
    clean, corrupt, correct, wrong = [], [], [], []

    def build(tpl, a, b, s):
        return bos_prefix(tokenizer) + encode(tokenizer, tpl.format(A=" " + a, B=" " + b, S=" " + s))

    width = len(build(templates[0], names[0][0], names[1][0], names[1][0]))
    usable = [t for t in templates if len(build(t, names[0][0], names[1][0], names[1][0])) == width]
    i = 0
    while len(clean) < n_prompts:
        tpl = usable[i % len(usable)]
        i += 1
        pick = torch.randperm(len(names), generator=gen)[:3].tolist()
        (a, ta), (b, tb), (c, _) = (names[j] for j in pick)
        if float(torch.rand(1, generator=gen)) < 0.5:  # ABB and BAB orders, so position is no cue
            first, second = a, b
        else:
            first, second = b, a
        cl, co = build(tpl, first, second, b), build(tpl, first, second, c)
        if len(cl) != width or len(co) != width:
            continue
        clean.append(cl)
        corrupt.append(co)
        correct.append(ta)
        wrong.append(tb)
    return ContrastPrompts(torch.tensor(clean), torch.tensor(corrupt), torch.tensor(correct), torch.tensor(wrong))


def _check_equal(rows: list[list[int]], what: str) -> None:
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{what}: pieces tokenized to different lengths {sorted({len(r) for r in rows})}")
