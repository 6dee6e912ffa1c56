"""Indirect-object-identification (IOI) prompts with every name position known, and their
ABC-corrupted twins (Wang et al. 2022).

A clean prompt names two people, the indirect object IO and the subject S, then repeats S:
"When Mary and John went to the store, John gave a drink to" -> " Mary". Half the prompts put
IO first (ABBA order), half put S first (BABA), so neither position is a cue. Its corrupted twin
replaces the three name mentions by three other, distinct names ("When Alice and Bob went to the
store, Carl gave a drink to"): the same template and positions with no repeated name, Wang et
al.'s "ABC" distribution, whose mean activations serve for mean ablation and whose activations
are the source in patching.

Prompts are assembled from separately tokenized pieces (template text and single-token names),
so every prompt of a template has the same length and the IO, S1, S2 and END positions are
known by construction rather than searched for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts.tokens import bos_prefix

# Each template has slots {A} and {B} for the first two mentions (IO and S in some order) and {S}
# for the repeated subject; the prompt ends right before the answer.
IOI_TEMPLATES: dict[str, str] = {
    "store-drink": "When{A} and{B} went to the store,{S} gave a drink to",
    "park-ball": "After{A} and{B} arrived at the park,{S} threw the ball to",
    "office-letter": "While{A} and{B} were working at the office,{S} handed a letter to",
    "dinner-book": "When{A} and{B} had dinner at the restaurant,{S} passed the book to",
    "school-bag": "Then{A} and{B} walked to school, and{S} gave a bag to",
}

# First names that are one token with a leading space in both SmolLM2's and Gemma-3's
# tokenizers; `ioi_dataset` re-checks this for the tokenizer at hand.
IOI_NAMES = ["Mary", "John", "Alice", "Bob", "Tom", "James", "Sarah", "Anna", "David", "Paul", "Kate",
             "Mike", "Lisa", "Emma", "Jack", "Lucy", "Michael", "Daniel", "Peter", "Mark", "Sam", "Ben",
             "Adam", "Ryan", "Kevin", "Steve", "Chris", "Eric", "Laura", "Rachel", "Amy", "Emily",
             "Helen", "Susan", "Linda", "Karen", "Jane", "Alex", "George", "Henry", "Frank", "Joe",
             "Anne", "Maria", "Julia", "Grace", "Rose", "Harry", "Robert", "William", "Richard",
             "Thomas", "Andrew", "Brian", "Scott", "Sophie", "Claire", "Jennifer", "Ruth", "Carl"]


@dataclass(frozen=True)
class IOIData:
    """A batch of clean IOI prompts of one template and their ABC-corrupted twins."""

    template: str
    clean: torch.Tensor      # [batch, pos]
    corrupted: torch.Tensor  # [batch, pos] the three name mentions replaced by three other names
    io: torch.Tensor         # [batch] token of the indirect object (the answer)
    s: torch.Tensor          # [batch] token of the subject (the competitor)
    io_pos: torch.Tensor     # [batch] position of the IO mention
    s1_pos: torch.Tensor     # [batch] position of the first S mention
    s2_pos: torch.Tensor     # [batch] position of the repeated S mention
    end: int                 # the final position, where the answer is predicted
    abba: torch.Tensor       # [batch] bool: IO named first

    @property
    def n(self) -> int:
        return self.clean.shape[0]

    def strings(self, tokenizer, i: int = 0) -> list[str]:
        """Prompt i of the clean batch, token by token (for attention plots)."""
        return [tokenizer.decode([t]) for t in self.clean[i].tolist()]


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def usable_names(tokenizer, names: list[str] = IOI_NAMES) -> list[tuple[str, int]]:
    """(name, id) for the names that are one token with a leading space, order kept."""
    out = []
    for n in names:
        ids = _encode(tokenizer, " " + n)
        if len(ids) == 1:
            out.append((n, ids[0]))
    return out


def _pieces(template: str) -> list[str]:
    """Split a template into text pieces and slot names: "When{A} and{B}..." ->
    ["When", "{A}", " and", "{B}", ...]."""
    out, rest = [], template
    while "{" in rest:
        i = rest.index("{")
        j = rest.index("}", i)
        if i:
            out.append(rest[:i])
        out.append(rest[i:j + 1])
        rest = rest[j + 1:]
    if rest:
        out.append(rest)
    return out


def ioi_dataset(tokenizer, *, template: str, n_prompts: int, seed: int,
                names: list[str] = IOI_NAMES) -> IOIData:
    """n_prompts clean/ABC pairs of one template (a key of IOI_TEMPLATES or a template string);
    exactly half ABBA, half BABA (alternating), names drawn with a seeded generator."""
    text = IOI_TEMPLATES.get(template, template)
    pieces = _pieces(text)
    if sorted(p for p in pieces if p.startswith("{")) != ["{A}", "{B}", "{S}"]:
        raise ValueError(f"template {text!r} needs exactly the slots {{A}}, {{B}} and {{S}}")
    pool = usable_names(tokenizer, names)
    if len(pool) < 6:
        raise ValueError(f"only {len(pool)} of the names are single tokens for this tokenizer")
    prefix = bos_prefix(tokenizer)
    encoded = {p: _encode(tokenizer, p) for p in pieces if not p.startswith("{")}
    gen = torch.Generator().manual_seed(seed)

    def build(fill: dict[str, int]) -> tuple[list[int], dict[str, int]]:
        seq, where = list(prefix), {}
        for p in pieces:
            if p.startswith("{"):
                where[p[1]] = len(seq)
                seq.append(fill[p[1]])
            else:
                seq += encoded[p]
        return seq, where

    clean, corrupt, io, s, io_pos, s1_pos, s2_pos, abba = [], [], [], [], [], [], [], []
    for i in range(n_prompts):
        pick = torch.randperm(len(pool), generator=gen)[:5].tolist()
        t_io, t_s, c1, c2, c3 = (pool[j][1] for j in pick)
        first_io = i % 2 == 0
        seq, where = build({"A": t_io if first_io else t_s, "B": t_s if first_io else t_io, "S": t_s})
        cor, _ = build({"A": c1, "B": c2, "S": c3})
        clean.append(seq)
        corrupt.append(cor)
        io.append(t_io)
        s.append(t_s)
        io_pos.append(where["A"] if first_io else where["B"])
        s1_pos.append(where["B"] if first_io else where["A"])
        s2_pos.append(where["S"])
        abba.append(first_io)
    return IOIData(text, torch.tensor(clean), torch.tensor(corrupt), torch.tensor(io), torch.tensor(s),
                   torch.tensor(io_pos), torch.tensor(s1_pos), torch.tensor(s2_pos), len(clean[0]) - 1,
                   torch.tensor(abba))


def from_spec(model, data: dict) -> IOIData:
    """Build a claim's IOI data from its `data:` mapping (generator: ioi)."""
    if data.get("generator") != "ioi":
        raise ValueError(f"unknown data generator {data.get('generator')!r}; expected ioi")
    return ioi_dataset(model.tokenizer, template=str(data["template"]), n_prompts=int(data["n_prompts"]),
                       seed=int(data["seed"]))
