"""GPT-2 small replication: the published previous-token, duplicate and induction heads."""

from headatlas import prompts
from headatlas.claims import claim
from headatlas.methods.published import check_published_heads


def _replicate(run):
    for _ in run.variants():
        data = prompts.from_spec(run.model, run.data)
        result = check_published_heads(run.model.bridge, data.tokens, run.params["score"],
                                       run.params["published"], control_seed=int(run.params["control_seed"]))
        run.measure(**result.measured)
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
