"""Semantic induction heads (Ren et al. 2024): when such a head attends to the head token of a
relation (a country, a word), its output raises the tail token (the country's capital, the
word's antonym) rather than the token it attends to.

Per relation, from the weights alone: each head's full OV circuit (ov_logits: the token's
residual after block 0 in a one-token context, the head's V and O, the final norm's effective
gain, the unembedding) restricted to the relation's tokens. The candidates for a head token are every
tail of the relation AND the head token itself, so a head that merely copies what it attends to
ranks the attended token first and scores nothing: the head must raise the related token more
than the token it attends to. Relation score = share of head tokens whose own tail the head
ranks first among these candidates.

Selection and test: each relation's pairs are split in two by a seeded permutation; the heads
are chosen on one half (per relation, before anything is judged) and judged frozen on the
other half, against the same score of every head of the model on that half.
"""

import statistics

import torch

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods.scoring import fmt_head, head_rank, relative_depth, top_heads
from headatlas.methods.weights import ov_logits
from headatlas.prompts.tasks import FV_TASKS
from headatlas.prompts.tokens import single_token


def _pairs(tok, relation: str, split_seed: int, half: int):
    """(head-token ids, tail ids) of one half of the relation's single-token pairs."""
    pairs = [(single_token(tok, " " + s), single_token(tok, " " + a)) for s, a in FV_TASKS[relation]]
    pairs = [(s, a) for s, a in pairs if s is not None and a is not None and s != a]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(split_seed)).tolist()
    cut = len(pairs) // 2
    chosen = order[:cut] if half == 0 else order[cut:]
    return [pairs[i] for i in sorted(chosen)]


def relation_hits(model, data: dict, control_seed: int) -> dict:
    """Per head and per head token of the data's half of the relation: whether the OV circuit
    ranks the token's own tail first (hits), the attended token itself first (copies), and
    another head token's tail first under a derangement of the pairs (shuffled); [layer, head, n]."""
    pairs = _pairs(model.tokenizer, str(data["relation"]), int(data["split_seed"]), int(data["half"]))
    src = torch.tensor([s for s, _ in pairs])
    cands = sorted({s for s, _ in pairs} | {a for _, a in pairs})
    gold = torch.tensor([cands.index(a) for _, a in pairs])
    own = torch.tensor([cands.index(s) for s, _ in pairs])
    # Candidates of head token i: every tail of the relation and token i itself (the other head
    # tokens are masked out, unless they are tails too).
    tail_ids = {a for _, a in pairs}
    allowed = torch.tensor([[c in tail_ids or c == s for c in cands] for s, _ in pairs])   # [n_src, n_cand]
    logits = ov_logits(model.bridge, src, torch.tensor(cands))             # [layer, head, n_src, n_cand]
    best = logits.masked_fill(~allowed, float("-inf")).argmax(-1)          # [layer, head, n_src]
    gen = torch.Generator().manual_seed(control_seed)
    perm = torch.randperm(len(pairs), generator=gen)
    while bool((gold[perm] == gold).any()):                                # no pair keeps its own tail
        perm = torch.randperm(len(pairs), generator=gen)
    return {"hits": (best == gold).float(), "copies": (best == own).float(),
            "shuffled": (best == gold[perm]).float(), "n_pairs": len(pairs), "n_candidates": len(tail_ids) + 1}


def _relation_data(run, relation: str) -> dict:
    return {**run.selection_data, "relation": relation}


@claim("semantic-induction-ov")
def test_semantic_induction_heads(run):
    model, p = run.model, run.params
    k, cseed = int(p["top_k"]), int(p["control_seed"])
    # The relations the variants judge (their names only): heads are chosen for each, on its
    # selection half, before any held-out half is read.
    relations = [str(d["relation"]) for _, d in spec_variants(run.spec.data)]
    chosen, values = {}, {}
    for rel in dict.fromkeys(relations):
        sel = relation_hits(model, _relation_data(run, rel), cseed)
        scores = sel["hits"].mean(-1)
        chosen[rel] = top_heads(scores, k)
        values[f"{rel}_selection_score"] = scores[chosen[rel][0]]
    run.select(chosen[relations[0]], groups=chosen, **values)
    for data in run.variants():
        rel = str(data["relation"])
        heads = chosen[rel]
        best = heads[0]
        held = relation_hits(model, data, cseed)
        scores = held["hits"].mean(-1)                                     # [layer, head]
        copy_scores = held["copies"].mean(-1)
        run.measure(best_score=held["hits"][best], shuffled_best_score=held["shuffled"][best],
                    best_head_copy_score=held["copies"][best],
                    best_copy_head_relation_score=scores[top_heads(copy_scores, 1)[0]],
                    best_head_rank=head_rank(scores, *best), n_pairs=held["n_pairs"],
                    chance=1 / held["n_candidates"],
                    top_heads_depth=statistics.median(relative_depth(la, model.n_layers) for la, _ in heads))
        run.null("all_heads", scores.flatten())
        if run.is_primary:
            run.artifact(scores=scores.tolist(),
                         score_name=f"relation score ({rel}, OV circuit, held-out pairs)",
                         top_heads=[fmt_head(*h) for h in heads])
    run.conclude()
