"""Coherence heads (Guo et al. 2024): heads whose output carries the language the answer should be
in, and along whose direction a shift keeps a cross-lingual answer in the language of the question.

Guo et al. find them in cross-lingual retrieval-augmented QA: passage and question in different
languages, a probe per head for whether the answer is in the target language, then a shift of
the best heads along that direction. The data here is the project's own
(headatlas.prompts.languages): a one-sentence passage naming a country's capital and a question
about it, each in English or French, in the model's chat format. The label is the question's
language, the language the answer should be in. The reply's language is read at the reply's
first token: log-sum-exp of the logits of French reply openings minus that of English ones.

- Selection (18 countries, one template): per-head logistic probes on hook_z at the last prompt
  position (the token before the reply) for the question's language, ranked by 4-fold
  cross-validated accuracy with whole countries held out (ties broken by the probability given
  to the right class); the top k are frozen, with each head's mass-mean direction (French
  question minus English question) from the selection prompts.
- Held out (the other 22 countries, three templates): on the cross-lingual prompts (passage in
  one language, question in the other) the chosen heads are shifted by alpha standard deviations
  along their direction, toward the question's language, at the last position; the rise of the
  question language's margin over the passage's is compared with 19 layer-matched sets shifted
  along their own directions in the same batched pass.
The probes' held-out accuracy is recorded, not checked: the question's language is written in
the prompt, so any head that reads the question can carry it; what tells coherence heads apart
in the source is that shifting them moves the answer's language.

The second claim (coherence-heads-probe-steering) uses the source's own label instead: whether
the reply's first token leans to the question's language, on the cross-lingual prompts, where
the small models often answer in the passage's language. Heads are chosen by probes for that
outcome (selection countries, all three templates); held out, their probes must beat layer-
matched sets, and a shift along each head's coherent-minus-incoherent direction (taken within
each question language, then averaged) must raise the question language's margin on the
prompts that lean the wrong way, more than matched sets shifted the same way.
"""

from __future__ import annotations

import _probe_steer as ps
import torch
from _attn import forward_reduce, memo
from _facts import columns

from headatlas.claims import claim
from headatlas.claims.runtime import spec_variants
from headatlas.methods import probing, steering
from headatlas.methods.refusal import by_length
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts import languages
from headatlas.prompts import requests as rq


def prompts_for(run, data_spec: dict) -> languages.LanguagePrompts:
    model = run.model
    fmt = rq.chat_format(model.tokenizer, model.info.family if model.info else None)
    return languages.from_spec(model.tokenizer, fmt, data_spec)


def opening_lse(bridge, final: torch.Tensor, ids: dict[str, torch.Tensor]) -> torch.Tensor:
    """[n, 2]: log-sum-exp of the logits of English (column 0) and French (column 1) openings."""
    return torch.stack([columns(bridge, final, ids[lang]).logsumexp(-1) for lang in languages.LANGUAGES], -1)


def french_margin(lse: torch.Tensor) -> torch.Tensor:
    return lse[..., 1] - lse[..., 0]


def clean_pass(run, data_spec: dict) -> dict:
    """One data spec's prompts and clean pass (one batch per prompt length): z [layer, head, n,
    d_head] at the last position and the French-minus-English opening margin [n]."""
    model = run.model

    def compute():
        s = prompts_for(run, data_spec)
        n = len(s.ids)
        z = torch.zeros(model.n_layers, model.n_heads, n, model.bridge.cfg.d_head)
        margin = torch.zeros(n)
        for group in by_length(s.ids):
            out = forward_reduce(model.bridge, torch.tensor([s.ids[i] for i in group]), z_at=-1, final_at=-1)
            z[:, :, group] = out["z"].permute(0, 2, 1, 3)
            margin[group] = french_margin(opening_lse(model.bridge, out["final"], s.opening_ids))
        return {"data": s, "z": z, "french_margin": margin}

    return memo(("coherence-pass", model.name, {k: v for k, v in data_spec.items() if k != "name"}), compute)


def steered_margins(run, s: languages.LanguagePrompts, rows: torch.Tensor, sets: torch.Tensor,
                    vectors: torch.Tensor, row_sign: torch.Tensor | None = None) -> torch.Tensor:
    """The French-minus-English margin of prompts `rows` with each head set's shift added at the
    last position (steering.head_set_addition_hooks; row_sign flips it per prompt), one batched
    pass per prompt length. -> [n_sets, len(rows)]."""
    bridge = run.model.bridge
    out = torch.zeros(len(sets), len(rows))
    for group in by_length([s.ids[int(i)] for i in rows]):
        idx = rows[group]
        tokens = torch.tensor([s.ids[int(i)] for i in idx])
        sign = None if row_sign is None else row_sign[group]
        final = forward_reduce(bridge, tokens.repeat(len(sets), 1), final_at=-1,
                               fwd_hooks=steering.head_set_addition_hooks(sets, vectors, len(idx),
                                                                          tokens.shape[1] - 1, sign))["final"]
        out[:, group] = french_margin(opening_lse(bridge, final, s.opening_ids)).view(len(sets), len(idx))
    return out


def question_moves_reply(margin: torch.Tensor) -> torch.Tensor:
    """Per (template, country, passage language): whether asking in French gives a larger
    French-minus-English margin than asking in English. The prompts come in blocks of four
    (passage en/fr x question en/fr), so margin.view(-1, 2, 2) is [block, passage, question].
    -> [n_pairs] bool."""
    m = margin.view(-1, 2, 2)
    return (m[..., 1] > m[..., 0]).flatten()


def require_language_following(run, share_min: float) -> None:
    """Not applicable unless, on the selection prompts and on every held-out variant, the
    question's language moves the reply's opening toward that language for at least share_min of
    the (country, passage) pairs."""
    for name, d in [("selection", run.selection_data)] + spec_variants(run.spec.data):
        out = clean_pass(run, d)
        share = float(question_moves_reply(out["french_margin"]).float().mean())
        if share < share_min:
            run.not_applicable(f"asking in French rather than English moves the reply's first token toward "
                               f"French for {share:.0%} of the passages of {ps.set_label(name, d)}; the claim "
                               f"needs {share_min:.0%}, a model whose reply follows the question's language")


@claim("coherence-heads-language-steering")
def test_coherence_heads(run):
    model, p = run.model, run.params
    require_language_following(run, float(p["min_share"]))
    sel = clean_pass(run, run.selection_data)
    labels = sel["data"].question_fr.long()
    kw = dict(seed=int(p["probe_seed"]), steps=int(p["probe_steps"]), weight_decay=float(p["weight_decay"]))
    top, cv = probing.rank_heads(sel["z"], labels, sel["data"].country, k=int(p["k"]), folds=int(p["folds"]), **kw)
    probes = probing.fit_probes(sel["z"], labels, **kw)
    unit, sigma = steering.mass_mean_directions(sel["z"], sel["data"].question_fr)
    run.select(top, selection_cv_accuracy=float(sum(cv[h] for h in top)) / len(top),
               selection_all_heads_median_cv=float(cv.median()),
               selection_heads_at_full_cv=int((cv == 1).sum()))
    rows, cols = [h[0] for h in top], [h[1] for h in top]
    sets, vectors = steering.matched_shift_sets(top, unit, sigma, float(p["alpha"]), model.n_layers, model.n_heads,
                                                n_sets=int(p["steering_sets"]), seed=int(p["null_seed"]))
    for d in run.variants():
        test = clean_pass(run, d)
        s, margin = test["data"], test["french_margin"]
        toward = torch.where(s.question_fr, 1.0, -1.0)                       # +1: the question is in French
        coherent = toward * margin                                           # the question language's margin
        hit = probes.correct(test["z"], s.question_fr.long())               # [layer, head, n]
        cross = s.cross.nonzero().flatten()
        steered = toward[cross][None] * steered_margins(run, s, cross, sets, vectors, toward[cross])
        rise = steered - coherent[cross][None]                               # [1 + sets, cross prompts]
        run.measure(coherence_margin_rise=rise[0],
                    cross_coherent_share=(coherent[cross] > 0).float(),
                    cross_coherent_share_steered=(steered[0] > 0).float(),
                    same_language_coherent_share=(coherent[~s.cross] > 0).float(),
                    question_moves_reply_share=question_moves_reply(margin).float(),
                    chosen_heads_probe_accuracy=hit[rows, cols].mean(0),
                    all_heads_median_probe_accuracy=float(hit.mean(-1).median()),
                    top_heads_depth=float(torch.tensor([relative_depth(la, model.n_layers) for la, _ in top]).median()))
        run.null("matched_sets_steering", rise[1:].mean(1))
        if run.is_primary:
            run.artifact(scores=hit.mean(-1).tolist(),
                         score_name="held-out accuracy of the head's probe for the question's language",
                         selection_scores=cv.tolist(), top_heads=[fmt_head(*h) for h in top],
                         null_example_heads=[fmt_head(*h) for h in sets[1].tolist()], alpha=float(p["alpha"]),
                         opening_tokens={lang: [model.tokenizer.decode([int(t)]) for t in ids]
                                         for lang, ids in s.opening_ids.items()})
    run.conclude()


# ----------------------------------------------------------------------------- the source's label


def cross_pass(run, data_spec: dict) -> dict:
    """The cross-lingual prompts of a spec: indices, z, the question language's margin and whether
    the reply leans to the question's language (the label)."""
    out = clean_pass(run, data_spec)
    s = out["data"]
    idx = s.cross.nonzero().flatten()
    toward = torch.where(s.question_fr, 1.0, -1.0)
    margin = (toward * out["french_margin"])[idx]
    return {"data": s, "idx": idx, "z": out["z"][:, :, idx], "margin": margin, "coherent": margin > 0,
            "toward": toward[idx], "question_fr": s.question_fr[idx]}


def require_both_outcomes(run, share_min: float, per_language_min: int) -> None:
    """Not applicable unless the reply leans to the question's language on between share_min and
    1 - share_min of the cross-lingual prompts of the selection set and of every held-out set,
    with at least per_language_min of each outcome per question language in the selection set."""
    for name, d in [("selection", run.selection_data)] + spec_variants(run.spec.data):
        c = cross_pass(run, d)
        share = float(c["coherent"].float().mean())
        if not share_min <= share <= 1 - share_min:
            run.not_applicable(f"the first reply token leans to the question's language on {share:.0%} of the "
                               f"cross-lingual prompts of {ps.set_label(name, d)}; the claim needs {share_min:.0%} "
                               f"to {1 - share_min:.0%}, so that both outcomes can be probed")
    c = cross_pass(run, run.selection_data)
    for lang, rows in (("French", c["question_fr"]), ("English", ~c["question_fr"])):
        n_yes, n_no = int(c["coherent"][rows].sum()), int((~c["coherent"])[rows].sum())
        if min(n_yes, n_no) < per_language_min:
            run.not_applicable(f"of the cross-lingual selection prompts asked in {lang}, {n_yes} lean to "
                               f"{lang} and {n_no} do not; the claim needs {per_language_min} of each")


@claim("coherence-heads-probe-steering")
def test_coherence_heads_probe(run):
    p = run.params
    require_both_outcomes(run, float(p["min_share"]), int(p["per_language_min"]))
    sel = cross_pass(run, run.selection_data)
    unit, sigma = steering.stratified_mass_mean_directions(sel["z"], sel["coherent"], sel["question_fr"].long())
    chosen = ps.choose(run, sel["z"], sel["coherent"], sel["data"].country[sel["idx"]], unit, sigma,
                       selection_coherent_share=sel["coherent"].float())
    for d in run.variants():
        test = cross_pass(run, d)
        probe = ps.held_out_probes(chosen, test["z"], test["coherent"])
        wrong = probe["wrong"]
        steered = test["toward"][wrong][None] * steered_margins(run, test["data"], test["idx"][wrong],
                                                                chosen.shift_sets, chosen.vectors)
        rise = steered - test["margin"][wrong][None]                         # [1 + sets, incoherent prompts]
        ps.record(run, chosen, probe, rise, "held-out balanced accuracy of the head's probe for whether the reply's "
                                            "first token leans to the question's language",
                  coherent_share=test["coherent"].float(), n_incoherent=len(wrong),
                  coherence_margin_rise=rise[0], fixed_share=(steered[0] > 0).float())
    run.conclude()
