"""GPT-2 small replication: the published previous-token, duplicate and induction heads."""

from headatlas import prompts
from headatlas.claims import claim
from headatlas.methods import scoring
from headatlas.methods.published import check_published_heads


def _replicate(run):
    # The heads are the published ones (selection: published): no selection set to hold out.
    run.select([scoring.parse_head(h) for h in run.params["published"]])
    for _ in run.variants():
        data = prompts.from_spec(run.model, run.data)
        result = check_published_heads(run.model.bridge, data.tokens, run.params["score"],
                                       run.params["published"])
        run.measure(**result.measured)
        run.null("all_heads", result.null)
        if run.is_primary:
            run.artifact(**result.artifacts)
    run.conclude()


@claim("previous-token-gpt2-published")
def test_gpt2_previous_token_heads(run):
    _replicate(run)


@claim("duplicate-token-gpt2-published")
def test_gpt2_duplicate_token_heads(run):
    _replicate(run)


@claim("induction-gpt2-published")
def test_gpt2_induction_heads(run):
    _replicate(run)
