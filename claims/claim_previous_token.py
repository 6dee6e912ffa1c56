"""Previous-token heads exist and sit early-to-middle (claim previous-token-scoring)."""

from _scoring import measure_scoring_claim

from headatlas.claims import claim


@claim("previous-token-scoring")
def test_previous_token_heads(run):
    measure_scoring_claim(run, "previous_token", control=None)
