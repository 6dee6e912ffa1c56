"""The dependency-arc generator (headatlas.prompts.syntax) puts each arc on the words it names,
is deterministic in its seed, and the syntactic claims choose their heads on other templates
than they are judged on; the arc scores give known answers on planted patterns."""

from __future__ import annotations

import pytest
import torch
from helpers import smollm2

from headatlas.catalogue import load_catalogue
from headatlas.claims.runtime import spec_variants
from headatlas.methods import attention
from headatlas.prompts import syntax as sx

DETS = {w for pair in sx.SYNTAX_DETERMINERS for w in pair}
NOUNS = {w: plural for pair in sx.SYNTAX_NOUNS for plural, w in enumerate(pair)}  # word -> 1 if plural
VERBS = {w: form for triple in sx.SYNTAX_VERBS for form, w in enumerate(triple)}  # 0 past, 1 sing., 2 plural
ADJS = set(sx.SYNTAX_ADJECTIVES)


@pytest.fixture(scope="module")
def tok():
    return smollm2().tokenizer


def word_at(d: sx.DependencyArcs, row: int, pos: int) -> str:
    return d.words[row][pos - (1 if d.has_bos else 0)].strip().lower()


@pytest.mark.parametrize("template", sorted(sx.SYNTAX_TEMPLATES))
@pytest.mark.parametrize("tense", ["past", "present"])
def test_arcs_point_at_the_words_they_name(tok, template, tense):
    d = sx.dependency_prompts(tok, templates=[template], n_prompts=12, seed=5, tense=tense)
    bos = 1 if d.has_bos else 0
    for i in range(12):
        n = int(d.lengths[i])
        assert n == bos + len(d.words[i])
        assert tok.decode(d.tokens[i, bos:n].tolist()) == "".join(d.words[i])   # words are the tokens
    sentences = sx.SYNTAX_TEMPLATES[template].count(".")
    for rel in sx.RELATIONS:
        per_row = torch.bincount(d.arcs[rel][:, 0], minlength=12)
        expected = sx.SYNTAX_TEMPLATES[template].split().count("V") if rel != "det" else \
            sum(sx.SYNTAX_TEMPLATES[template].split().count(s) for s in "SOD")
        assert (per_row == expected).all(), rel
        assert (d.arcs[rel][:, 2] < d.arcs[rel][:, 1]).all()                   # the head word comes first
    for row, q, g in d.arcs["det"].tolist():
        assert word_at(d, row, q) in NOUNS and word_at(d, row, g) in DETS
        assert all(word_at(d, row, p) in ADJS for p in range(g + 1, q))         # 0-2 adjectives between
        assert q - g <= 3
    for row, q, g in d.arcs["obj"].tolist():
        assert word_at(d, row, q) in NOUNS and word_at(d, row, g) in VERBS
        assert word_at(d, row, g + 1) in DETS
    for (row, q, g), near in zip(d.arcs["nsubj"].tolist(), d.distractors["nsubj"].tolist()):
        assert word_at(d, row, q) in VERBS and word_at(d, row, g) in NOUNS
        # the nearest noun before the verb is another noun, between the subject and the verb
        assert g < near < q and word_at(d, row, near) in NOUNS
        assert not any(word_at(d, row, p) in NOUNS for p in range(near + 1, q))
        # the subject is the first noun of its clause after any lead-in phrase: a determiner
        # opens its phrase right after the sentence start, "," or "."
        start = g - 1
        while word_at(d, row, start) in ADJS:
            start -= 1
        assert word_at(d, row, start) in DETS
        assert start == bos or word_at(d, row, start - 1) in {",", "."}
        if tense == "present":
            verb, subj = VERBS[word_at(d, row, q)], NOUNS[word_at(d, row, g)]
            assert verb == 1 + subj                                             # agreement
            assert NOUNS[word_at(d, row, near)] != subj                          # an attractor
        else:
            assert VERBS[word_at(d, row, q)] == 0
    assert sum(w == "." for w in d.words[0]) == sentences


def test_rows_pad_on_the_right(tok):
    d = sx.dependency_prompts(tok, templates=["pp", "pp-two"], n_prompts=8, seed=0)
    assert d.templates == ["pp", "pp-two"] * 4
    short = int(d.lengths.argmin())
    assert int(d.lengths[short]) < d.tokens.shape[1]
    for rel in sx.RELATIONS:
        assert (d.arcs[rel][:, 1] < d.lengths[d.arcs[rel][:, 0]]).all()       # no arc reads padding


def test_seeded_determinism(tok):
    a = sx.dependency_prompts(tok, templates=["pp", "obj-rel"], n_prompts=10, seed=3, tense="present")
    b = sx.dependency_prompts(tok, templates=["pp", "obj-rel"], n_prompts=10, seed=3, tense="present")
    c = sx.dependency_prompts(tok, templates=["pp", "obj-rel"], n_prompts=10, seed=4, tense="present")
    assert torch.equal(a.tokens, b.tokens) and a.words == b.words
    assert all(torch.equal(a.arcs[r], b.arcs[r]) for r in sx.RELATIONS)
    assert a.words != c.words


def test_words_that_split_are_left_out(tok):
    class Splitting:
        """The real tokenizer, except that ' dog' and ' old' come out as two tokens."""

        def __init__(self, inner):
            self.inner = inner
            self.bos_token_id, self.pad_token_id = inner.bos_token_id, inner.pad_token_id

        def __call__(self, text):
            return self.inner(text)

        def encode(self, text, add_special_tokens=False):
            ids = self.inner.encode(text, add_special_tokens=add_special_tokens)
            return ids + ids if text in (" dog", " old") else ids

    d = sx.dependency_prompts(Splitting(tok), templates=["pp-two"], n_prompts=40, seed=0)
    words = {w.strip().lower() for row in d.words for w in row}
    assert "dog" not in words and "dogs" not in words and "old" not in words
    assert "cat" in words or "cats" in words


def test_unknown_template_is_refused(tok):
    with pytest.raises(ValueError, match="unknown template"):
        sx.dependency_prompts(tok, templates=["no-such"], n_prompts=2)


def test_syntactic_claims_select_on_other_templates_than_they_judge():
    cat = load_catalogue()
    ids = [c for c in cat.claims if c.startswith("syntactic-")]
    assert ids
    for cid in ids:
        _, spec = cat.claims[cid]
        assert spec.data["generator"] == "dependency-arcs"
        chosen_on = set(spec.selection["templates"])
        variants = spec_variants(spec.data)
        assert len(variants) >= 3
        for _, data in variants:
            assert not chosen_on & set(data["templates"]), cid
            assert data["seed"] != spec.selection["seed"], cid


def test_arc_attention_and_offset_baseline_on_a_planted_pattern():
    # 1 row, 6 positions, 2 heads: head 0 attends from 4 to 1 (the gold word), head 1 from 4 to
    # the BOS sink (0) most and to 3 next; from 5 both heads attend to 2.
    p = torch.zeros(1, 2, 6, 6)
    p[0, 0, 4, [0, 1, 3]] = torch.tensor([0.3, 0.6, 0.1])
    p[0, 1, 4, [0, 1, 3]] = torch.tensor([0.7, 0.1, 0.2])
    p[0, :, 5, [0, 2]] = torch.tensor([0.4, 0.6])
    arcs = torch.tensor([[0, 4, 1], [0, 5, 2]])
    out = attention.arc_attention(p, arcs, first_key=1)
    assert out[..., 0].tolist() == [[1.0, 3.0], [2.0, 2.0]]                    # the sink left out
    assert torch.allclose(out[..., 1], torch.tensor([[0.6, 0.1], [0.6, 0.6]]))
    assert attention.arc_attention(p, arcs, first_key=0)[0, 1, 0] == 0        # with it, head 1 picks it
    assert attention.offset_hits(arcs, 3).tolist() == [1.0, 1.0]
    arcs = torch.tensor([[0, 4, 1], [0, 5, 2], [0, 5, 4]])
    assert attention.best_offset(arcs, 4) == (3, pytest.approx(2 / 3))
