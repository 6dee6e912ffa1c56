"""Prompt generators of the task group's claims (function vectors, sentiment summarization,
factual recall): positions and answers are right by construction."""

from __future__ import annotations

import pytest
import torch

from headatlas.prompts import tasks as pt
from tests.helpers import smollm2


@pytest.fixture(scope="module")
def tok():
    return smollm2().tokenizer


def decode(tok, ids):
    return [tok.decode([i]) for i in ids]


def test_task_split_is_disjoint_and_single_token(tok):
    split = pt.task_split(tok, "antonym", seed=0)
    assert not set(split.demo) & set(split.held_out)
    for x, y in split.demo + split.held_out:
        assert len(tok.encode(" " + x, add_special_tokens=False)) == 1
        assert len(tok.encode(" " + y, add_special_tokens=False)) == 1


@pytest.mark.parametrize("template", ["Q: {x}\nA: {y}\n\n", "{x}: {y}\n", "input: {x} output: {y}\n"])
def test_task_prompts_end_with_the_query_and_shuffle_every_label(tok, template):
    split = pt.task_split(tok, "country-capital", seed=0)
    clean = pt.task_prompts(tok, split.demo, template, n_prompts=6, n_demos=4, seed=3)
    shuffled = pt.task_prompts(tok, split.demo, template, n_prompts=6, n_demos=4, seed=3, shuffle_labels=True)
    pairs = dict(split.demo)
    for row, ans in zip(clean.tokens.tolist(), clean.answer.tolist()):
        text = tok.decode(row)
        query = [x for x, y in split.demo if tok.encode(" " + y, add_special_tokens=False)[0] == ans]
        assert any(text.rstrip().endswith(template.split("{y}")[0].format(x=x).rstrip()) for x in query)
        # every demonstration of a clean prompt is a true pair
        demos = [x for x in pairs if template.format(x=x, y=pairs[x]).strip() in text]
        assert len(demos) >= 4
    # The first shuffled prompt has the same demonstrations and query, with every answer moved.
    row, srow = clean.tokens[0].tolist(), shuffled.tokens[0].tolist()
    assert shuffled.answer[0] == clean.answer[0]
    assert sorted(row) == sorted(srow) and row != srow
    stext = tok.decode(srow)
    assert not [x for x in pairs if template.format(x=x, y=pairs[x]).strip() in stext]


def test_zero_shot_prompts_have_no_demonstrations(tok):
    split = pt.task_split(tok, "antonym", seed=0)
    z = pt.zero_shot_prompts(tok, split.held_out, "Q: {x}\nA: {y}\n\n")
    assert z.tokens.shape[0] == len(split.held_out)
    assert tok.decode(z.tokens[0].tolist()).endswith(f"Q: {split.held_out[0][0]}\nA:")


@pytest.mark.parametrize("template", sorted(pt.SENTIMENT_TEMPLATES))
def test_sentiment_positions(tok, template):
    d = pt.sentiment_prompts(tok, template, n_pairs=4, seed=0)
    for row, flip, lab in zip(d.tokens.tolist(), d.flipped.tolist(), d.label.tolist()):
        words = decode(tok, row)
        adj, verb = words[d.adj_pos].strip(), words[d.verb_pos].strip()
        kind = "positive" if lab else "negative"
        assert adj in pt.SENTIMENT_ADJECTIVES[kind] and verb in pt.SENTIMENT_VERBS[kind]
        assert words[d.summary_pos] == "." and words[d.comma_pos] == ","
        # the flipped partner differs exactly at the two sentiment words
        diff = [i for i, (a, b) in enumerate(zip(row, flip)) if a != b]
        assert set(diff) <= {d.adj_pos, d.verb_pos} and d.adj_pos in diff
    assert d.sign.tolist() == [1.0, -1.0] * 4


@pytest.mark.parametrize("template", sorted(pt.FACT_TEMPLATES))
def test_fact_prompts_positions(tok, template):
    d = pt.fact_prompts(tok, template)
    rel_words = pt.FACT_TEMPLATES[template][0].split("{s}")[0].split()[1:]
    for row, subj in zip(d.tokens.tolist(), d.subjects):
        words = decode(tok, row)
        assert words[d.subject_pos].strip() == subj
        assert [words[i].strip() for i in d.relation_pos] == rel_words
    assert not set(d.candidates.tolist()) & set(d.other_candidates.tolist())
    kept = pt.subset(d, torch.arange(len(d.subjects)) % 2 == 0)
    assert kept.subjects == d.subjects[::2]


def test_task_prompt_pairs_share_demos_and_query(tok):
    split = pt.task_split(tok, "antonym", seed=0)
    clean, shuffled = pt.task_prompt_pairs(tok, split.demo, "Q: {x}\nA: {y}\n\n", n_prompts=6, n_demos=4, seed=2)
    assert torch.equal(clean.answer, shuffled.answer)
    pairs = dict(split.demo)
    for row, srow in zip(clean.tokens.tolist(), shuffled.tokens.tolist()):
        # the same tokens, moved: every demonstration's answer changes place, the query stays
        assert sorted(row) == sorted(srow) and row != srow and row[-3:] == srow[-3:]
        text, stext = tok.decode(row), tok.decode(srow)
        assert len([x for x in pairs if f"Q: {x}\nA: {pairs[x]}\n" in text]) >= 4
        assert not [x for x in pairs if f"Q: {x}\nA: {pairs[x]}\n" in stext]


@pytest.mark.parametrize("template", ["capital-course", "capital-known", "language-course"])
def test_gap_fact_templates_keep_the_subject_away_from_the_final_position(tok, template):
    d = pt.fact_prompts(tok, template)
    assert d.tokens.shape[1] - 1 - d.subject_pos >= 3


@pytest.mark.parametrize("template", ["capital", "capital-city", "language"])
def test_conflict_prompts_state_a_wrong_attribute_then_ask_again(tok, template):
    facts = pt.fact_prompts(tok, template)
    d = pt.conflict_prompts(tok, facts, template, seed=3, per_fact=2)
    assert d.tokens.shape[0] == 2 * len(facts.subjects) and d.per_fact == 2
    assert d.subjects == [s for s in facts.subjects for _ in range(2)]
    assert d.memory_answer.tolist() == [a for a in facts.answer.tolist() for _ in range(2)]
    # the counterfactual is another answer of the same relation, never the true one
    assert (d.context_answer != d.memory_answer).all()
    assert set(d.context_answer.tolist()) <= set(d.candidates.tolist()) == set(facts.candidates.tolist())
    # the two counterfactuals of one fact differ
    assert (d.context_answer[0::2] != d.context_answer[1::2]).all()
    for row, subj, ctx in zip(d.tokens.tolist(), d.subjects, d.context_answer.tolist()):
        words = decode(tok, row)
        assert words[d.context_subject_pos].strip() == subj == words[d.subject_pos].strip()
        assert row[d.context_answer_pos] == ctx
        assert words[d.context_answer_pos + 1] == "."
        # the question is the fact prompt itself, after the context sentence
        question = pt.FACT_TEMPLATES[template][0].format(s=subj)
        assert tok.decode(row[d.context_answer_pos + 2:]).strip() == question
        assert tok.decode(row[d.context_subject_pos + 1:d.context_answer_pos]).strip() == question.split(subj)[1].strip()
    # seeded: the same seed gives the same prompts, another seed other counterfactuals
    again = pt.conflict_prompts(tok, facts, template, seed=3, per_fact=2)
    other = pt.conflict_prompts(tok, facts, template, seed=4, per_fact=2)
    assert torch.equal(again.tokens, d.tokens)
    assert not torch.equal(other.context_answer, d.context_answer)


# ----------------------------------------------------------------------------- in-context classification


@pytest.mark.parametrize("task", sorted(pt.ICL_CLASSES))
def test_icl_word_halves_are_disjoint_single_tokens(tok, task):
    sel, test = pt.icl_words(tok, task, "select", 0), pt.icl_words(tok, task, "test", 0)
    for c in (0, 1):
        assert sel[c] and test[c] and not set(sel[c]) & set(test[c])
        assert set(sel[c]) | set(test[c]) <= set(pt.ICL_CLASSES[task][c])
        for w in sel[c] + test[c]:
            assert len(tok.encode(" " + w, add_special_tokens=False)) == 1
    # another split seed gives another split
    assert pt.icl_words(tok, task, "select", 1) != sel


@pytest.mark.parametrize("swap", [False, True])
def test_icl_prompts_positions_labels_and_balance(tok, swap):
    d = pt.icl_prompts(tok, "country-animal", half="test", split_seed=0, n_prompts=8, n_demos=6, seed=4,
                       swap_labels=swap)
    foo, bar = (tok.encode(s, add_special_tokens=False)[0] for s in pt.ICL_LABELS)
    assert d.labels == ((bar, foo) if swap else (foo, bar))
    words = pt.icl_words(tok, "country-animal", "test", 0)
    assert d.query_class.tolist() == [0, 1] * 4
    for i, row in enumerate(d.tokens.tolist()):
        # each demonstration's label token is the label of its word's class
        for j, (wp, lp) in enumerate(zip(d.word_pos, d.label_pos)):
            c = int(d.demo_class[i, j])
            assert tok.decode([row[wp]]).strip() in words[c]
            assert row[lp] == d.labels[c]
        assert sorted(d.demo_class[i].tolist()) == [0, 0, 0, 1, 1, 1]
        query = tok.decode([row[d.query_pos]]).strip()
        assert query == d.queries[i] and query in words[int(d.query_class[i])]
        assert query not in [tok.decode([row[p]]).strip() for p in d.word_pos]
        assert d.query_pos == len(row) - 2 and tok.decode([row[-1]]) == ":"
        assert d.correct[i] == d.labels[int(d.query_class[i])] and d.wrong[i] != d.correct[i]
    assert d.same_class.sum(1).tolist() == [3] * 8
    # demonstration order differs between rows (seeded shuffle), and the seed fixes it
    assert len({tuple(r) for r in d.demo_class.tolist()}) > 1
    again = pt.icl_prompts(tok, "country-animal", half="test", split_seed=0, n_prompts=8, n_demos=6, seed=4,
                           swap_labels=swap)
    assert torch.equal(again.tokens, d.tokens)


def test_icl_prompts_refuse_odd_demos_and_unknown_tasks(tok):
    with pytest.raises(ValueError, match="even"):
        pt.icl_prompts(tok, "sentiment", half="select", split_seed=0, n_prompts=2, n_demos=5, seed=0)
    with pytest.raises(ValueError, match="unknown"):
        pt.icl_words(tok, "colours", "select", 0)
    with pytest.raises(ValueError, match="half"):
        pt.icl_words(tok, "sentiment", "train", 0)
