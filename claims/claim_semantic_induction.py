"""Semantic induction heads (Ren et al. 2024): when such a head attends to the head token of a
relation (a country, a word), its output raises the tail token (the country's capital, the
word's antonym) rather than the token it attends to.

Per data variant (relation), from the weights alone: each head's full OV circuit restricted to
the relation's tokens, from each head token (its residual after block 0 in a one-token context)
to the logits of all tails of the relation. Relation score = share of head tokens whose own
tail the head ranks first among the tails. Control: the same score with the pairs shuffled
(each head token scored against another head token's tail), maximised over all heads.
"""

import statistics

import torch

from headatlas.claims import claim
from headatlas.prompts.tokens import single_token
from headatlas.methods.scoring import fmt_head, relative_depth, top_heads
from headatlas.methods.weights import ov_logits
from headatlas.prompts.tasks import FV_TASKS


@claim("semantic-induction-ov")
def test_semantic_induction_heads(run):
    for _ in run.variants():
        _measure(run)
    run.conclude()


def _measure(run):
    model, p, d = run.model, run.params, run.data
    tok = model.tokenizer
    pairs = [(s, a) for s, a in FV_TASKS[d["relation"]]
             if single_token(tok, " " + s) is not None and single_token(tok, " " + a) is not None]
    src = torch.tensor([single_token(tok, " " + s) for s, _ in pairs])
    tails = sorted({single_token(tok, " " + a) for _, a in pairs})
    gold = torch.tensor([tails.index(single_token(tok, " " + a)) for _, a in pairs])
    ov = ov_logits(model.bridge, src, torch.tensor(tails))                 # [layer, head, n_src, n_tail]
    best = ov.argmax(-1)
    scores = (best == gold).float().mean(-1)                               # [layer, head]
    gen = torch.Generator().manual_seed(int(p["control_seed"]))
    perm = torch.randperm(len(pairs), generator=gen)
    while bool((gold[perm] == gold).any()):                                # no pair keeps its own tail
        perm = torch.randperm(len(pairs), generator=gen)
    shuffled = (best == gold[perm]).float().mean(-1)
    k = int(p["top_k"])
    top = top_heads(scores, k)
    run.measure(n_pairs=len(pairs), chance=1 / len(tails), best_score=scores.max(),
                shuffled_best_score=shuffled.max(),
                top_heads_depth=statistics.median(relative_depth(layer, model.n_layers) for layer, _ in top))
    if run.is_primary:
        run.artifact(scores=scores.tolist(), score_name=f"relation score ({d['relation']}, OV circuit)",
                     top_heads=[fmt_head(*h) for h in top])
