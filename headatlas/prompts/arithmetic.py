"""Seeded two-operand addition prompts for the arithmetic-head claims.

A prompt is a few solved sums, one a line ("12+34=46"), then a test sum cut right before its
answer ("27+15="). Its corrupted twin is the same prompt with one operand of the test sum
replaced by another number, chosen so that the first digit of the answer changes; patching a
head's output from the twin into the clean run then shows whether that head carries the operand
the answer depends on.

The claims need tokenizers that write every digit as its own token (Qwen2.5, Gemma 3 and
SmolLM2 all do), so the answer's first token is a single digit and the operands' digits have
known positions. Prompts are assembled from separately tokenized pieces and each is checked
against the tokenizer's encoding of the whole text, so the model sees its natural tokenization.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts.tokens import bos_prefix, encode

# template -> (the test sum up to the answer, with {a} and {b}; what follows it in a solved line, with {c})
SUM_TEMPLATES: dict[str, tuple[str, str]] = {
    "plain": ("{a}+{b}=", "{c}\n"),
    "spaced": ("{a} + {b} = ", "{c}\n"),
    "question": ("What is {a} plus {b}? ", "{c}\n"),
}


@dataclass(frozen=True)
class Sums:
    clean: torch.Tensor        # [batch, pos] solved sums, then the test sum up to its answer
    corrupted: torch.Tensor    # [batch, pos] the same with one operand of the test sum replaced
    operand_pos: torch.Tensor  # [batch, n] positions of the test sum's operand tokens (a's, then b's)
    a: torch.Tensor            # [batch] operands of the test sum
    b: torch.Tensor
    changed: torch.Tensor      # [batch] which operand the corrupted prompt replaces: 0 = a, 1 = b
    corrupt_value: torch.Tensor  # [batch] the number that replaces it
    correct: torch.Tensor      # [batch] token of the first digit of a + b (the target)
    second: torch.Tensor       # [batch] token of the second digit of a + b
    wrong: torch.Tensor        # [batch] token of the first digit of the corrupted sum
    digit_ids: torch.Tensor    # [10] the tokens of 0 ... 9

    @property
    def sums(self) -> torch.Tensor:
        return self.a + self.b


def digit_ids(tokenizer) -> list[int]:
    """The token of each digit 0-9; raises when a digit is not one token on its own."""
    out = []
    for d in range(10):
        ids = encode(tokenizer, str(d))
        if len(ids) != 1:
            raise ValueError(f"digit {d} is not a single token for this tokenizer")
        out.append(ids[0])
    return out


def sum_prompts(tokenizer, *, n_prompts: int = 16, n_shots: int = 3, template: str = "plain", seed: int = 0,
                low: int = 10, high: int = 49) -> Sums:
    """`n_shots` solved sums and one test sum per prompt, all operands drawn uniformly from
    [low, high] (two digits; high + high < 100, so every answer has two digits). The corrupted
    prompt replaces operand a in even-numbered prompts and b in odd-numbered ones by another
    number from the range whose sum with the other operand has a different first digit."""
    if template not in SUM_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(SUM_TEMPLATES)}")
    if not (10 <= low < high <= 99 and 2 * high < 100):
        raise ValueError(f"operands must have two digits and sum to under 100; got [{low}, {high}]")
    question, answer = SUM_TEMPLATES[template]
    digits = digit_ids(tokenizer)
    gen = torch.Generator().manual_seed(seed)
    bos = bos_prefix(tokenizer)

    def draw() -> int:
        return int(torch.randint(low, high + 1, (1,), generator=gen))

    def assemble(pieces: list[tuple[str, str | None]]) -> tuple[list[int], dict[str, list[int]]]:
        """Token ids of the pieces in order, and the positions of the named ones."""
        ids, where = list(bos), {}
        for text, name in pieces:
            t = encode(tokenizer, text)
            if name is not None:
                where[name] = list(range(len(ids), len(ids) + len(t)))
            ids += t
        text = "".join(p for p, _ in pieces)
        if ids[len(bos):] != encode(tokenizer, text):
            raise ValueError(f"{text!r} does not tokenize as its pieces do; this tokenizer merges across them")
        return ids, where

    def test_pieces(a: int, b: int) -> list[tuple[str, str | None]]:
        pre, rest = question.split("{a}")
        mid, post = rest.split("{b}")
        return [(pre, None), (str(a), "a"), (mid, None), (str(b), "b"), (post, None)]

    clean, corrupt, pos, av, bv, changed, cval, correct, second, wrong = ([] for _ in range(10))
    for i in range(n_prompts):
        shots: list[tuple[str, str | None]] = []
        for _ in range(n_shots):
            x, y = draw(), draw()
            shots.append((question.format(a=x, b=y) + answer.format(c=x + y), None))
        a, b = draw(), draw()
        which = i % 2
        while True:
            r = draw()
            s2 = (r + b) if which == 0 else (a + r)
            if str(s2)[0] != str(a + b)[0]:
                break
        ids, where = assemble(shots + test_pieces(a, b))
        ids2, _ = assemble(shots + test_pieces(r, b) if which == 0 else shots + test_pieces(a, r))
        clean.append(ids)
        corrupt.append(ids2)
        pos.append(where["a"] + where["b"])
        av.append(a)
        bv.append(b)
        changed.append(which)
        cval.append(r)
        correct.append(digits[int(str(a + b)[0])])
        second.append(digits[int(str(a + b)[1])])
        wrong.append(digits[int(str(s2)[0])])
    if len({len(r) for r in clean + corrupt}) != 1 or len({len(p) for p in pos}) != 1:
        raise ValueError(f"sum prompts ({template}) tokenized to different lengths")
    t = torch.tensor
    return Sums(t(clean), t(corrupt), t(pos), t(av), t(bv), t(changed), t(cval), t(correct), t(second),
                t(wrong), t(digits))


def from_spec(tokenizer, data: dict) -> Sums:
    """A claim's sums from its `data:` mapping (generator: sums)."""
    if data.get("generator") != "sums":
        raise ValueError(f"unknown data generator {data.get('generator')!r}; expected sums")
    return sum_prompts(tokenizer, n_prompts=int(data["n_prompts"]), n_shots=int(data["n_shots"]),
                       template=str(data["template"]), seed=int(data["seed"]),
                       low=int(data.get("low", 10)), high=int(data.get("high", 49)))
