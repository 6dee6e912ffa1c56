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
    bos = getattr(tokenizer, "bos_token_id", None)
    return [bos] if bos is not None else []


def single_token_words(tokenizer, words: list[str], prefix: str = " ") -> list[tuple[str, int]]:
    """The words that are one token with `prefix` in front, with their ids (order kept)."""
    out = []
    for w in words:
        t = single_token(tokenizer, prefix + w)
        if t is not None:
            out.append((w, t))
    return out
