"""Vulnerable heads (García-Carrasco et al. 2024): adversarial inputs to the three-letter acronym
task fool the model through a few heads of its circuit, the letter movers.

The attack (headatlas.methods.adversarial): the acronym's third word is replaced by another
vocabulary word with the same initial, so the right answer does not change; among every such word
(hundreds per letter), the eight that the gradient with respect to the embedding says lower the
right initial's margin most are run, and the worst kept. The margin is logit(right initial) minus
the log-sum-exp of the other 25 capitals.

Logit attribution on the attacked prompts: per prompt, the direction is the right initial minus
the capital the attacked prompt ranks highest among the others; each head's direct attribution
along it (final norm's scale frozen per run) on the original minus on the attacked prompt is what
the attack takes away through that head, and the model's own logit difference along it, original
minus attacked, is the total the attack takes away.

Protocol: the `k` heads that lose most on the selection prompts (seed 10) are chosen and frozen;
on held-out prompts of three templates (each attacked afresh) their share of the total is read at
the lower end of its bootstrap interval and must beat 999 layer-matched sets at the 99th
percentile; the heads must attend to the third word as letter movers do (the paper's account of
why the attack passes through them) and sit in the entry's band; and the attack must flip the
model's answer on a stated share of the prompts, or there is no vulnerability to locate.
"""

import torch
from _attn import fmt, forward_reduce, head_dla, median_depth, memo, unembed_rows

from headatlas.claims import claim
from headatlas.methods import adversarial, scoring, stats
from headatlas.prompts import patterns


def _attack(model, d: dict):
    """The prompts of one data spec, their attacked twins and what the attribution reads."""
    tok = model.tokenizer
    a = patterns.acronym_prompts(tok, n_prompts=int(d["n_prompts"]), template=str(d["template"]), seed=int(d["seed"]))
    words = memo(("same-initial-words", model.name), lambda: patterns.same_initial_words(tok))
    third = a.word_pos[:, 2]
    initial = [int((a.letter_ids == c).nonzero()) for c in a.correct.tolist()]
    sub = adversarial.worst_substitution(model.bridge, a.clean, third, [words[i] for i in initial],
                                         adversarial.margin_objective(a.letter_ids, a.correct), top=int(d.get("top", 8)))
    rows = torch.arange(a.clean.shape[0])
    pick = lambda pat: pat[rows, :, -1, third].T                                # noqa: E731  [head, batch]
    clean = forward_reduce(model.bridge, a.clean, {"third": pick}, z_at=-1, final_at=-1)
    adv = forward_reduce(model.bridge, sub.tokens, z_at=-1, final_at=-1)
    # The capital the attacked prompt ranks highest besides the right one: the direction of the failure.
    lg_adv = unembed_rows(model.bridge, adv["final"])[:, a.letter_ids]
    answer_adv = a.letter_ids[lg_adv.argmax(-1)]
    rival = a.letter_ids[lg_adv.masked_fill(a.letter_ids[None] == a.correct[:, None], float("-inf")).argmax(-1)]
    answer_clean = a.letter_ids[unembed_rows(model.bridge, clean["final"])[:, a.letter_ids].argmax(-1)]
    w_u = model.bridge.W_U.detach().float()
    diff = lambda final: (final * (w_u[:, a.correct] - w_u[:, rival]).T).sum(-1)  # noqa: E731  unembedding is linear
    lost = (head_dla(model.bridge, clean["z"], clean["scale"], a.correct, rival, True, clean["post_scale"])
            - head_dla(model.bridge, adv["z"], adv["scale"], a.correct, rival, True, adv["post_scale"]))  # [layer, batch, head]
    return dict(
        accuracy=float((answer_clean == a.correct).float().mean()),
        flipped=((answer_clean == a.correct) & (answer_adv != a.correct)).float(),
        right_clean=(answer_clean == a.correct),
        total_lost=diff(clean["final"]) - diff(adv["final"]),                   # [batch]
        head_lost=lost.permute(1, 0, 2),                                        # [batch, layer, head]
        third_attention=clean["third"],                                         # [layer, head, batch]
        margin_before=sub.before, margin_after=sub.after,
        replaced=[tok.decode([int(t)]) for t in sub.replaced_by], tried=sub.tried,
    )


@claim("vulnerable-heads-attack")
def test_vulnerable_heads(run):
    model, p = run.model, run.params
    k, min_acc = int(p["k"]), float(p["min_accuracy"])

    s = _attack(model, run.selection_data)
    if s["accuracy"] < min_acc:
        run.not_applicable(f"writes the right third initial (first among 26 capitals) in {s['accuracy']:.0%} of "
                           f"the selection prompts; the claim needs {min_acc:.0%}")
    lost = s["head_lost"][s["right_clean"]].mean(0)                           # [layer, head]
    heads = scoring.top_heads(lost, k)
    run.select(heads, selection_share_of_attack=float(lost[tuple(torch.tensor(heads).T)].sum()
                                                      / s["total_lost"][s["right_clean"]].mean()),
               selection_flip_rate=float(s["flipped"].mean()))
    sets = stats.matched_head_sets(heads, model.n_layers, model.n_heads, n_sets=int(p["null_sets"]),
                                   seed=int(p["null_seed"]), exclude=heads)
    hv = torch.tensor(heads)

    for data in run.variants():
        v = _attack(model, data)
        if v["accuracy"] < min_acc:
            run.not_applicable(f"writes the right third initial in {v['accuracy']:.0%} of the held-out prompts "
                               f"({run.variant}); the claim needs {min_acc:.0%}")
        ok = v["right_clean"]                                                   # attacks on answers it got right
        head_lost, total = v["head_lost"][ok], v["total_lost"][ok]              # [n, layer, head], [n]
        mine = head_lost[:, hv[:, 0], hv[:, 1]].sum(-1)
        null = head_lost[:, sets[..., 0], sets[..., 1]].sum(-1).mean(0) / total.mean()   # [n_sets]
        third = v["third_attention"][:, :, ok]
        run.measure(accuracy=v["accuracy"], n_attacked=int(ok.sum()),
                    flip_rate=stats.bootstrap_mean(v["flipped"][ok]),
                    margin_before=v["margin_before"][ok], margin_after=v["margin_after"][ok],
                    logit_diff_lost=total,
                    vulnerable_share=stats.bootstrap_ratio(mine, total),
                    vulnerable_third_word_attention=stats.bootstrap(third[hv[:, 0], hv[:, 1]].T,
                                                                    lambda x: x.mean(0).min()),
                    top_heads_depth=median_depth(heads, model.n_layers))
        run.null("matched_sets_share", null)
        run.null("matched_sets_attention", third[sets[..., 0], sets[..., 1]].mean(-1).min(1).values)
        if run.is_primary:
            share = head_lost.mean(0) / total.mean()
            run.artifact(scores=share.tolist(),
                         score_name="share of the attack's logit-difference loss each head carries directly (held-out)",
                         top_heads=fmt(heads), null_example_heads=fmt(sets[0].tolist()),
                         replacements=v["replaced"][:8],
                         effects={"labels": [f"vulnerable heads {', '.join(fmt(heads))}",
                                             f"{k} layer-matched heads (median of {len(sets)} sets)"],
                                  "values": [float(mine.mean() / total.mean()), float(null.median())],
                                  "ylabel": "share of the attack's loss carried directly"})
    run.conclude()
