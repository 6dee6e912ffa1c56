"""The cross-lingual question builder (headatlas.prompts.languages) gives four requests per
country (passage and question each in English or French), splits the countries into disjoint
halves, and reads reply openings through token sets that do not overlap."""

from __future__ import annotations

import pytest
from helpers import smollm2

from headatlas.prompts import languages
from headatlas.prompts import requests as rq


def test_halves_are_disjoint_and_cover_every_country():
    for split_seed in (0, 3):
        sel, test = languages.country_half(split_seed, "select"), languages.country_half(split_seed, "test")
        assert not set(sel) & set(test)
        assert sorted(sel + test) == list(range(len(languages.COUNTRIES)))
        assert len(sel) == 18
    assert languages.country_half(0, "select") != languages.country_half(1, "select")
    with pytest.raises(ValueError, match="half"):
        languages.country_half(0, "train")


def test_requests_put_passage_and_question_in_the_stated_languages():
    i = [c[0] for c in languages.COUNTRIES].index("Japan")
    assert languages.request_text("country-is", i, "en", "fr") == (
        "Japan is a country whose capital city is Tokyo.\n\nQuelle est la capitale du Japon ? Réponds en une phrase.")
    assert languages.request_text("city-is", i, "fr", "en") == "Tokyo est la capitale du Japon.\n\nTell me the capital of Japan."


def test_every_country_gets_the_four_language_pairs():
    tok = smollm2().tokenizer
    fmt = rq.chat_format(tok, "SmolLM2")
    s = languages.language_prompts(tok, fmt, template="government", half="test", split_seed=0)
    assert len(s.ids) == 4 * 22
    for c in s.country.unique():
        rows = s.country == c
        pairs = {(bool(p), bool(q)) for p, q in zip(s.passage_fr[rows], s.question_fr[rows])}
        assert pairs == {(False, False), (False, True), (True, False), (True, True)}
    assert int(s.cross.sum()) == 2 * 22
    tail = tok.encode(fmt.after, add_special_tokens=False)
    assert all(ids[-len(tail):] == tail for ids in s.ids)      # every prompt ends where the reply starts
    with pytest.raises(ValueError, match="unknown template"):
        languages.language_prompts(tok, fmt, template="nope", half="test", split_seed=0)


def test_opening_tokens_are_disjoint_and_readable():
    tok = smollm2().tokenizer
    ids = languages.opening_ids(tok)
    assert not set(ids["en"].tolist()) & set(ids["fr"].tolist())
    en = {tok.decode([t]) for t in ids["en"].tolist()}
    fr = {tok.decode([t]) for t in ids["fr"].tolist()}
    assert {"The", "According"} <= en and {"La", "Le"} <= fr
    assert all(sum(ch.isalpha() for ch in piece) >= 2 for piece in en | fr)


def test_prompts_come_in_blocks_of_four_and_all_gives_every_template():
    """The claims read margin.view(-1, 2, 2) as [block, passage, question]."""
    tok = smollm2().tokenizer
    fmt = rq.chat_format(tok, "SmolLM2")
    one = languages.language_prompts(tok, fmt, template="city-is", half="select", split_seed=0)
    every = languages.language_prompts(tok, fmt, template="all", half="select", split_seed=0)
    assert len(every.ids) == len(languages.TEMPLATES) * len(one.ids) == 3 * 4 * 18
    blocks = every.passage_fr.view(-1, 2, 2), every.question_fr.view(-1, 2, 2), every.country.view(-1, 4)
    assert not blocks[0][:, 0].any() and blocks[0][:, 1].all()          # passage: en, en, fr, fr
    assert not blocks[1][..., 0].any() and blocks[1][..., 1].all()      # question: en, fr, en, fr
    assert (blocks[2] == blocks[2][:, :1]).all()                         # one country per block
    assert every.ids[-len(one.ids):] == one.ids                          # "city-is" comes last
