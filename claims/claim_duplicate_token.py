"""Duplicate-token heads exist, attend by content, and sit early-to-middle."""

from _scoring import measure_scoring_claim

from headatlas.claims import claim


@claim("duplicate-token-scoring")
def test_duplicate_token_heads(run):
    measure_scoring_claim(run, "duplicate_token", control="fresh-second-block")
