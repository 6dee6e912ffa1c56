"""Truthfulness heads (Li et al. 2023, inference-time intervention): per-head linear probes on
each head's output at the end of a statement tell true statements from false ones; a few heads do
it best, and shifting their outputs along the truthful direction moves the model's truthfulness.

TruthfulQA is not available offline, so the statements are built from facts the model answers
correctly (claims/_facts.py): "The capital of France is Paris." is true, "The capital of France is
Rome." is false, where every false attribute is another known fact's true one, so each attribute
token is in as many true statements as false ones and the token alone cannot tell the label
(headatlas.prompts.tasks.truth_statements). Every statement is followed by " This statement is",
where the model's own judgement is read as logit(" true") - logit(" false"); the probes read the
full stop that ends the statement, before the suffix (a causal model's output there does not see
the suffix). The countries are split in two by name: heads are chosen and probes trained on the
selection half (capital template), and judged on the other countries in three templates.

- Probe claim: per-head logistic probes on hook_z at the full stop (headatlas.methods.probing).
  Heads are ranked by cross-validated accuracy inside the selection half (folds never split a
  country); the top k are frozen. Probes trained on the whole selection half are then tested on
  the held-out statements: the chosen heads' mean accuracy per held-out fact (bootstrapped over
  facts) against 999 layer-matched head sets' mean accuracy.
- Steering claim (the causal part): each chosen head's mass-mean truthful direction (mean hook_z
  of true minus false statements on the selection half, unit length) times alpha times the
  standard deviation of the selection outputs along it (Li et al.'s shift) is added to the head's
  output from the full stop to the last token of held-out false statements (each fact's first),
  and the rise of logit(" true") - logit(" false") is measured per fact. 19 layer-matched head sets, each shifted along
  its own mass-mean direction by the same alpha in its own standard deviations, run in the same
  batched pass. A model whose own judgement does not tell true from false on the selection half
  is not applicable for this claim only.

For a random-weights twin the statements are those of the model it twins (it knows no fact
itself, and the control asks whether the same statements give the effect without training).
"""

from __future__ import annotations

import statistics

import torch
from _attn import forward_reduce, memo
from _facts import columns, facts_for

from headatlas.claims import claim
from headatlas.methods import probing, stats, steering
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.models import load_model, resolve
from headatlas.prompts.tasks import TruthStatements, truth_statements
from headatlas.prompts.tokens import single_token

Head = tuple[int, int]

JUDGEMENT = " This statement is"
ANSWERS = (" true", " false")


# ----------------------------------------------------------------------------- data


def fact_source(run):
    """The model whose known facts the statements are built from: the model itself, or for a
    random-weights twin the model it twins."""
    _, info = resolve(run.model.name)
    twin_of = info.source.twin_of if info is not None and info.source.kind == "random-twin" else None
    return load_model(twin_of) if twin_of else run.model


class _Source:
    """A stand-in run for facts_for: the fact source model with the claim's not_applicable."""

    def __init__(self, run, model):
        self.model, self.not_applicable = model, run.not_applicable


def statements(run, data_spec: dict) -> tuple[TruthStatements, dict[str, torch.Tensor]]:
    """The statements of one data spec (its half of the known facts, its template) and their
    clean pass: z [layer, head, batch, d_head] at the full stop; judge [batch] =
    logit(" true") - logit(" false") after the suffix. Memoised per session for both claims."""
    p = run.params

    def compute():
        facts = facts_for(_Source(run, fact_source(run)), data_spec, int(p["min_known"]))
        data = truth_statements(run.model.tokenizer, facts, seed=int(data_spec["seed"]),
                                per_fact=int(data_spec["per_fact"]), suffix=JUDGEMENT)
        out = forward_reduce(run.model.bridge, data.tokens, z_at=data.end_pos, final_at=-1)
        return data, {"z": out["z"].permute(0, 2, 1, 3).contiguous(), "judge": judge(run, out["final"])}

    key = ("truth", run.model.name, {k: v for k, v in data_spec.items() if k != "name"}, p["min_known"])
    return memo(key, compute)


def judge(run, final: torch.Tensor) -> torch.Tensor:
    """logit(" true") - logit(" false") from final residuals [n, d_model]: [n]."""
    ids = torch.tensor([single_token(run.model.tokenizer, a) for a in ANSWERS])
    lg = columns(run.model.bridge, final, ids)
    return lg[:, 0] - lg[:, 1]


def per_fact(values: torch.Tensor, data: TruthStatements) -> torch.Tensor:
    """Per-row values [..., batch] averaged over each fact's rows (as many true as false): [..., n_facts]."""
    return values.reshape(*values.shape[:-1], -1, 2 * data.per_fact).mean(-1)


# ----------------------------------------------------------------------------- selection


def chosen(run) -> dict:
    """Heads ranked by grouped cross-validated probe accuracy on the selection half; the top k,
    probes trained on the whole selection half, and every head's mass-mean direction and sigma.
    Memoised so both claims choose the same heads."""
    p, model = run.params, run.model

    def compute():
        data, clean = statements(run, run.selection_data)
        kw = dict(seed=int(p["probe_seed"]), steps=int(p["probe_steps"]), weight_decay=float(p["weight_decay"]))
        top, cv = probing.rank_heads(clean["z"], data.label, data.fact, k=int(p["k"]), folds=int(p["folds"]), **kw)
        unit, sigma = steering.mass_mean_directions(clean["z"], data.label)
        j = clean["judge"].view(-1, 2)
        return {"top": top, "cv": cv, "probes": probing.fit_probes(clean["z"], data.label, **kw),
                "unit": unit, "sigma": sigma, "n_facts": len(data.subjects),
                "judge_pairs": (j[:, 0] > j[:, 1]).float()}

    return memo(("truth-chosen", model.name, run.selection_data, {k: v for k, v in p.items()}), compute)


def freeze(run, sel: dict) -> list[Head]:
    top = sel["top"]
    run.select(top, selection_cv_accuracy=float(sum(sel["cv"][h] for h in top)) / len(top),
               selection_all_heads_median_cv=float(sel["cv"].median()), n_selection_facts=sel["n_facts"],
               selection_judgement_accuracy=sel["judge_pairs"])
    return top


def depth(run, top: list[Head]) -> float:
    return statistics.median(relative_depth(layer, run.model.n_layers) for layer, _ in top)


# ----------------------------------------------------------------------------- the claims


@claim("truthfulness-probe")
def test_truthfulness_probe(run):
    model, p = run.model, run.params
    sel = chosen(run)
    top = freeze(run, sel)
    rows, cols = [h[0] for h in top], [h[1] for h in top]
    sets = stats.matched_head_sets(top, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                   seed=int(p["null_seed"]), exclude=top)
    for data_spec in run.variants():
        data, clean = statements(run, data_spec)
        correct = sel["probes"].correct(clean["z"], data.label)             # [layer, head, batch]
        acc = correct.mean(-1)
        run.measure(n_facts=len(data.subjects),
                    chosen_heads_accuracy=per_fact(correct[rows, cols].mean(0), data),
                    all_heads_median_accuracy=float(acc.median()),
                    best_head_accuracy=float(acc.max()),
                    top_heads_depth=depth(run, top))
        run.null("matched_sets_accuracy", stats.set_means(acc, sets))
        if run.is_primary:
            run.artifact(scores=acc.tolist(), score_name="held-out accuracy of the head's truth probe",
                         selection_scores=sel["cv"].tolist(), top_heads=[fmt_head(*h) for h in top],
                         subjects=data.subjects, null_example_heads=[fmt_head(*h) for h in sets[0].tolist()])
    run.conclude()


@claim("truthfulness-steering")
def test_truthfulness_steering(run):
    model, p = run.model, run.params
    sel = chosen(run)
    judged = float(sel["judge_pairs"].mean())
    if judged < float(p["min_judge"]):
        run.not_applicable(
            f"its own judgement (logit(' true') - logit(' false') after '{JUDGEMENT.strip()}') is higher for the "
            f"true statement than for the false one in {int(sel['judge_pairs'].sum())} of {len(sel['judge_pairs'])} "
            f"selection pairs ({judged:.2f}); needs at least {float(p['min_judge']):g}")
    top = freeze(run, sel)
    alpha = float(p["alpha"])
    sets, vectors = steering.matched_shift_sets(top, sel["unit"], sel["sigma"], alpha, model.n_layers, model.n_heads,
                                                n_sets=int(p["steering_sets"]), seed=int(p["null_seed"]))
    for data_spec in run.variants():
        data, clean = statements(run, data_spec)
        rows = torch.arange(1, data.tokens.shape[0], 2 * data.per_fact)   # each fact's first false statement
        n = len(rows)
        hooks = steering.head_set_addition_hooks(sets, vectors, n, data.end_pos)
        out = forward_reduce(model.bridge, data.tokens[rows].repeat(len(sets), 1), fwd_hooks=hooks, final_at=-1)
        effect = judge(run, out["final"]).view(len(sets), n) - clean["judge"][rows][None]   # [1 + n_sets, n_facts]
        j = clean["judge"].view(-1, 2)
        run.measure(n_facts=len(data.subjects),
                    judgement_accuracy=per_fact((j[:, 0] > j[:, 1]).float().repeat_interleave(2), data),
                    true_minus_false_judgement=per_fact(clean["judge"] * (2 * data.label.float() - 1) * 2, data),
                    steering_effect=effect[0],
                    top_heads_depth=depth(run, top))
        run.null("matched_sets_steering", effect[1:].mean(1))
        if run.is_primary:
            run.artifact(top_heads=[fmt_head(*h) for h in top], alpha=alpha,
                         null_example_heads=[fmt_head(*h) for h in sets[1].tolist()])
    run.conclude()
