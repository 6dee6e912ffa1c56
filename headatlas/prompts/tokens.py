"""Tokenizer helpers every prompt generator shares: prompts are assembled from separately
tokenized pieces, so positions are known by construction and words that are not single tokens
in a given tokenizer can be dropped rather than silently split."""

from __future__ import annotations


def encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def single_token(tokenizer, text: str) -> int | None:
    """The token id if `text` is exactly one token, else None."""
    ids = encode(tokenizer, text)
    return ids[0] if len(ids) == 1 else None


def bos_prefix(tokenizer) -> list[int]:
    """The BOS token every prompt starts with, as a list: [bos], or [] where the model has none.

    A tokenizer that adds a BOS itself (Gemma) gets it, and so does one that declares a BOS it
    does not add (SmolLM2's `<|im_start|>`; GPT-2's `<|endoftext|>`, which TransformerLens
    prepends too): the committed results were measured with it. The exception is a declared BOS
    that the tokenizer does not add and that is also its padding token: that is what a GGUF
    names when the model has no BOS at all (Qwen2.5, whose own tokenizer has `bos_token: null`,
    gets `<|endoftext|>`), and prepending it derails the model ("The capital of France is" ->
    " the" instead of " Paris" on Qwen2.5-Coder-0.5B)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return []
    if adds_bos(tokenizer):
        return [bos]
    if bos == getattr(tokenizer, "pad_token_id", None):
        return []
    return [bos]


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS in front of a text by itself (its own setting)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("x")["input_ids"]
    return bool(ids) and ids[0] == bos


def single_token_words(tokenizer, words: list[str], prefix: str = " ") -> list[tuple[str, int]]:
    """The words that are one token with `prefix` in front, with their ids (order kept)."""
    out = []
    for w in words:
        t = single_token(tokenizer, prefix + w)
        if t is not None:
            out.append((w, t))
    return out
