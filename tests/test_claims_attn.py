"""The attn group's prompt generators (headatlas.prompts.patterns) put the tokens a score reads where
they say, and the claims' small pattern helpers give known answers on hand-made patterns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import smollm2

from headatlas.prompts import patterns as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "claims"))


@pytest.fixture(scope="module")
def tok():
    return smollm2().tokenizer


def dec(tok, ids) -> str:
    return tok.decode([int(i) for i in ids])


@pytest.mark.parametrize("template", sorted(pa.MC_TEMPLATES))
def test_mcqa_label_and_word_positions(tok, template):
    q = pa.mcqa_prompts(tok, n_prompts=8, n_shots=2, template=template, seed=3)
    assert q.tokens.shape[0] == 8
    for i in range(8):
        labels = [dec(tok, [q.tokens[i, p]]).strip("( ") for p in q.letter_pos[i]]
        assert labels == q.labels
        # the correct option's word is a member of the asked category
        word = dec(tok, [q.tokens[i, q.word_pos[i, q.answer[i]]]]).strip()
        assert any(word in ws for ws in pa.MC_CATEGORIES.values())
    assert sorted(q.answer.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]      # balanced answer positions
    assert all(dec(tok, [t]).strip() in q.labels for t in q.label_ids)


@pytest.mark.parametrize("template", sorted(pa.MC_TEMPLATES))
def test_mcqa_rotation_moves_only_the_test_options(tok, template):
    q = pa.mcqa_prompts(tok, n_prompts=8, n_shots=2, template=template, seed=3)
    r = pa.mcqa_prompts(tok, n_prompts=8, n_shots=2, template=template, seed=3, rotate=1)
    assert torch.equal(r.answer, (q.answer + 1) % 4)                       # the right word one place down
    rows = torch.arange(8)
    assert torch.equal(q.tokens[rows, q.word_pos[rows, q.answer]], r.tokens[rows, r.word_pos[rows, r.answer]])
    changed = (q.tokens != r.tokens)
    assert changed.any(1).all()
    assert not changed[:, : int(q.letter_pos.min())].any()                 # demonstrations untouched
    assert set(changed.nonzero()[:, 1].tolist()) <= set(q.word_pos.flatten().tolist())


@pytest.mark.parametrize("template", sorted(pa.CO_TEMPLATES))
def test_colored_objects_positions_name_the_asked_object_and_its_colour(tok, template):
    q = pa.colored_objects_prompts(tok, template=template, n_prompts=9, seed=4, half="test")
    assert sorted(q.answer.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]          # the asked place cycles
    start, end = q.question_span
    assert start < q.question_pos < end == q.question_pos + 1 < q.tokens.shape[1]
    for i in range(9):
        listed = [dec(tok, [q.tokens[i, p]]).strip() for p in q.object_pos]
        colours = [dec(tok, [q.tokens[i, p]]).strip() for p in q.color_pos]
        assert len(set(listed)) == 3 and len(set(colours)) == 3
        asked = dec(tok, [q.tokens[i, q.question_pos]]).strip()
        assert asked == q.objects[i] == listed[int(q.answer[i])]
        assert dec(tok, [q.correct[i]]).strip() == colours[int(q.answer[i])]
        assert [dec(tok, [c]).strip() for c in q.colors[i]] == colours


def test_colored_objects_halves_share_no_object_and_the_object_moves_with_the_template(tok):
    select, _ = pa.colored_object_words(tok, "select")
    test, colours = pa.colored_object_words(tok, "test")
    assert select and test and not set(select) & set(test) and len(colours) >= 3
    offsets = {t: pa.colored_objects_prompts(tok, template=t, n_prompts=3).tokens.shape[1] - 1
               - pa.colored_objects_prompts(tok, template=t, n_prompts=3).question_pos for t in pa.CO_TEMPLATES}
    assert len(set(offsets.values())) == len(offsets)                       # no fixed offset fits all
    with pytest.raises(ValueError, match="unknown colored-objects template"):
        pa.colored_objects_prompts(tok, template="nope")


@pytest.mark.parametrize("template", sorted(pa.MC_TEMPLATES))
def test_mcqa_shuffled_labels_are_indexed_by_letter(tok, template):
    q = pa.mcqa_prompts(tok, n_prompts=16, n_shots=2, template=template, seed=3, shuffle_labels=True)
    for i in range(16):
        # letter_pos[:, j] holds letter j wherever it stands; its word follows it
        assert [dec(tok, [q.tokens[i, p]]).strip("( ") for p in q.letter_pos[i]] == q.labels
        assert (q.word_pos[i] > q.letter_pos[i]).all()
        word = dec(tok, [q.tokens[i, q.word_pos[i, q.answer[i]]]]).strip()
        assert any(word in ws for ws in pa.MC_CATEGORIES.values())
    # the letters change places (a letter is no longer a place in the list) ...
    order = q.letter_pos.argsort(1)
    assert len({tuple(o) for o in order.tolist()}) > 4
    assert (order != torch.arange(4)).any(1).float().mean() > 0.5
    # ... the correct letter stays balanced, and the demonstrations are shuffled too
    assert sorted(q.answer.tolist()) == sorted([0, 1, 2, 3] * 4)
    demo = dec(tok, q.tokens[0, : int(q.letter_pos[0].min())])
    assert demo != dec(tok, pa.mcqa_prompts(tok, n_prompts=16, n_shots=2, template=template, seed=3)
                       .tokens[0, : int(q.letter_pos[0].min())])


def test_color_objects_halves_split_every_colour(tok):
    select, test = pa.color_objects(tok, "select"), pa.color_objects(tok, "test")
    assert not set(select) & set(test)
    assert sorted(select + test) == sorted(pa.color_objects(tok))
    by_colour = {}
    for o in pa.color_objects(tok):
        by_colour.setdefault(pa.COLOR_OBJECTS[o], []).append(o)
    for colour, objs in by_colour.items():         # a colour with two objects or more is in both halves
        if len(objs) >= 2:
            assert any(pa.COLOR_OBJECTS[o] == colour for o in select)
            assert any(pa.COLOR_OBJECTS[o] == colour for o in test)
    with pytest.raises(ValueError, match="unknown half"):
        pa.color_objects(tok, "train")


@pytest.mark.parametrize("template", sorted(pa.MC_TEMPLATES))
def test_color_task_asks_held_out_objects_with_their_colour_as_the_answer(tok, template):
    q = pa.mcqa_prompts(tok, n_prompts=16, n_shots=3, template=template, seed=3, task="color", half="test")
    held_out = set(pa.color_objects(tok, "test"))
    asked = []
    for i in range(16):
        text = dec(tok, q.tokens[i, : int(q.letter_pos[i].min())])
        obj = [o for o in pa.COLOR_OBJECTS if f" {o}?" in text.rsplit("\n\n", 1)[-1].rsplit(".", 1)[-1]]
        assert len(obj) == 1 and obj[0] in held_out
        asked.append(obj[0])
        options = [dec(tok, [q.tokens[i, p]]).strip() for p in q.word_pos[i]]
        assert options[int(q.answer[i])] == pa.COLOR_OBJECTS[obj[0]]        # the right letter names its colour
        assert len(set(options)) == 4 and set(options) <= set(pa.COLORS)
        # demonstrations come from the same half, never of the asked object's colour
        demos = [o for o in pa.COLOR_OBJECTS if f" {o}?" in text and o != obj[0]]
        assert demos and set(demos) <= held_out
        assert all(pa.COLOR_OBJECTS[o] != pa.COLOR_OBJECTS[obj[0]] for o in demos)
    assert sorted(q.answer.tolist()) == sorted([0, 1, 2, 3] * 4)
    assert len(set(asked)) >= 8                                            # objects cycle, not one repeated
    r = pa.mcqa_prompts(tok, n_prompts=16, n_shots=3, template=template, seed=3, task="color", half="test", rotate=1)
    assert torch.equal(r.answer, (q.answer + 1) % 4)
    assert not (q.tokens != r.tokens)[:, : int(q.letter_pos.min())].any()
    with pytest.raises(ValueError, match="unknown multiple-choice task"):
        pa.mcqa_prompts(tok, task="colour")


@pytest.mark.parametrize("rotate", [1, 2, 3])
def test_rotated_colors_question_keeps_each_colour_under_the_shifted_letter(tok, rotate):
    """The consistency claim's pairing: the colour under letter c in the original question is
    under letter (c + rotate) mod 4 in the rotated one, the object asked is the same, and
    `subjects` names it."""
    q = pa.mcqa_prompts(tok, n_prompts=12, n_shots=3, template="question", seed=5, task="color", half="select")
    r = pa.mcqa_prompts(tok, n_prompts=12, n_shots=3, template="question", seed=5, task="color", half="select",
                        rotate=rotate)
    assert q.subjects == r.subjects and len(q.subjects) == 12
    assert set(q.subjects) <= set(pa.color_objects(tok, "select"))
    for i in range(12):
        assert f" {q.subjects[i]}?" in dec(tok, q.tokens[i].tolist())
        for c in range(4):
            before = dec(tok, [q.tokens[i, q.word_pos[i, c]]])
            after = dec(tok, [r.tokens[i, r.word_pos[i, (c + rotate) % 4]]])
            assert before == after


def test_target_margin_is_positive_exactly_when_the_target_letter_wins():
    from claim_consistency import target_margin
    letters = torch.tensor([[1.0, 3.0, 2.0, 0.0], [1.0, 3.0, 2.0, 0.0], [5.0, 5.0, 0.0, 0.0]])
    got = target_margin(letters, torch.tensor([1, 2, 0]))
    assert torch.allclose(got, torch.tensor([1.0, -1.0, 0.0]))               # a tie is not a win


def test_class_weights_turn_a_mean_into_a_balanced_accuracy():
    from _probe_steer import class_weights
    outcome = torch.tensor([True] * 6 + [False] * 2)
    right = torch.tensor([1.0] * 6 + [0.0, 1.0])          # every commoner row right, half the rarer ones
    assert float((right * class_weights(outcome)).mean()) == pytest.approx((1.0 + 0.5) / 2)
    assert float((torch.ones(8) * class_weights(outcome)).mean()) == pytest.approx(1.0)


@pytest.mark.parametrize("no_first", [False, True])
def test_yes_no_option_positions(tok, no_first):
    d = pa.yes_no_prompts(tok, n_prompts=6, template="answer-with", no_first=no_first, seed=0)
    rows = torch.arange(6)
    assert (d.tokens[rows, d.yes_pos] == d.yes_id).all()
    assert (d.tokens[rows, d.no_pos] == d.no_id).all()
    assert ((d.no_pos < d.yes_pos) == no_first).all()
    assert (d.query_start > torch.maximum(d.yes_pos, d.no_pos)).all()
    assert sorted(d.truth.tolist()) == [0, 0, 0, 1, 1, 1]


def test_acronym_prompts_answer_is_the_third_words_initial(tok):
    a = pa.acronym_prompts(tok, n_prompts=6, template="the-parens", seed=0)
    for i in range(6):
        third = dec(tok, [a.clean[i, a.word_pos[i, 2]]]).strip()
        assert dec(tok, [a.correct[i]]) == third[0]
        assert dec(tok, [a.wrong[i]]) == dec(tok, [a.corrupted[i, a.word_pos[i, 2]]]).strip()[0]
        assert a.correct[i] != a.wrong[i]
        differ = (a.clean[i] != a.corrupted[i]).nonzero().flatten().tolist()
        assert differ == [int(a.word_pos[i, 2])]                       # only the third word changes
        assert dec(tok, a.clean[i, -4:]).endswith(".")


def test_needle_copy_matches_the_needle(tok):
    nd = pa.needle_prompts(tok, 49152, n_prompts=3, haystack_sentences=4, needle_len=5, template="note", seed=1)
    for i in range(3):
        ns, an = int(nd.needle_start[i]), int(nd.answer_start[i])
        assert nd.tokens[i, ns:ns + 5].tolist() == nd.tokens[i, an:an + 5].tolist()
        assert an + 5 == nd.tokens.shape[1]


@pytest.mark.parametrize("kind", ["made-up", "real", "mixed"])
def test_word_ids_group_the_pieces_of_each_word(tok, kind):
    w = pa.word_text(tok, kind=kind, n_prompts=2, n_words=20, seed=0)
    for i in range(2):
        ids = w.word_ids[i].tolist()
        assert ids[0] == -1 and ids[1:] == sorted(ids[1:])
        for wid in set(ids) - {-1}:
            pieces = [t for t, j in zip(w.tokens[i].tolist(), ids) if j == wid]
            assert dec(tok, pieces).startswith(" ")                    # a word starts with its space
            assert " " not in dec(tok, pieces)[1:]


def test_random_token_text_repeats_its_first_half(tok):
    t = pa.random_token_text(tok, 49152, n_prompts=2, n_tokens=21, seed=0, repeat=True)
    assert t.shape == (2, 21)
    assert (t[:, 1:11] == t[:, 11:21]).all()


def test_streaming_windows():
    from claim_streaming import _windows

    w = _windows(10, sink=2, window=3)
    assert w[9].nonzero().flatten().tolist() == [0, 1, 7, 8, 9]
    assert w[1].nonzero().flatten().tolist() == [0, 1]
    c = _windows(10, sink=2, window=3, shift=4)
    assert c[9].nonzero().flatten().tolist() == [3, 4, 5]             # window ending 4 back
    assert c[9].sum() <= w[9].sum()


def test_positional_offsets_of_a_planted_head():
    from claim_positional import _offsets

    s = 12
    p = torch.zeros(1, 2, s, s)
    p[:, :, :, 0] = 0.6                                                  # a sink the score ignores
    for q in range(s):
        p[0, 0, q, q] += 0.4                                             # head 0: the query itself
        p[0, 1, q, max(q - 2, 0)] += 0.4                                 # head 1: two back
    off = _offsets(p, q_from=4)
    assert off[0].tolist() == [0] * 8
    assert off[1].tolist() == [2] * 8


def test_positional_offset_mass_of_a_planted_head():
    from claim_positional import offset_mass

    s = 12
    p = torch.zeros(1, 2, s, s)
    p[:, :, :, 0] = 0.6
    for q in range(s):
        p[0, 0, q, q] += 0.4                                             # head 0: the query itself
        p[0, 1, q, max(q - 2, 0)] += 0.4                                 # head 1: two back
    m = offset_mass(p, q_from=4, max_offset=3)
    assert m.shape == (1, 2, 4)
    assert torch.allclose(m[0, 0], torch.tensor([0.4, 0.0, 0.0, 0.0]))
    assert torch.allclose(m[0, 1], torch.tensor([0.0, 0.0, 0.4, 0.0]))


def test_streaming_key_masks():
    from claim_streaming import key_masks

    m = key_masks(12, sink=2, window=3, moved=torch.tensor([[4, 5]]))
    assert m.shape == (3, 12, 12)
    assert m[0, 11].nonzero().flatten().tolist() == [0, 1, 9, 10, 11]   # sink + window
    assert m[1, 11].nonzero().flatten().tolist() == [9, 10, 11]         # window only
    assert m[2, 11].nonzero().flatten().tolist() == [4, 5, 9, 10, 11]   # window + moved keys
    assert m[2, 3].nonzero().flatten().tolist() == [1, 2, 3]            # never a future key


def test_subword_merge_sums_of_a_planted_head():
    from claim_subword_merge import merge_sums

    wid = torch.tensor([[-1, 0, 0, 1, 2, 2, 2]])                         # BOS, w0 in 2, w1, w2 in 3
    p = torch.zeros(1, 2, 7, 7)
    for q in range(7):
        p[0, 0, q, max(q - 1, 0)] = 1.0                                  # head 0: previous token
        p[0, 1, q, 0] = 1.0                                              # head 1: first token only
    s = merge_sums(p, wid)
    # later pieces: positions 2, 5, 6; word starts after another word: positions 3, 4
    assert s[0, 0].tolist() == [3.0, 3.0, 2.0, 2.0]
    assert s[0, 1].tolist() == [0.0, 3.0, 0.0, 2.0]


def test_greedy_copy_attention_matches_a_plain_greedy_loop():
    from _attn import forward_reduce, greedy_copy_attention, unembed_rows

    model = smollm2()
    bridge = model.bridge
    ctx = torch.tensor([[1, 504, 3012, 278, 2530, 30, 504, 3012]])
    draft = torch.tensor([[278, 2530, 9999, 30]])
    gen, tops = greedy_copy_attention(bridge, ctx, draft, lambda rows: rows.argmax(-1))
    seq = ctx
    for j in range(draft.shape[1]):
        out = forward_reduce(bridge, seq, {"t": lambda p: p[:, :, -1].argmax(-1)}, final_at=-1)
        nxt = unembed_rows(bridge, out["final"]).argmax(-1)
        assert int(nxt[0]) == int(gen[0, j])
        assert torch.equal(out["t"], tops[j])
        seq = torch.cat([seq, nxt[:, None]], 1)


def test_yes_no_in_a_chat_turn(tok):
    """In the chat format the question is the user's turn, the prompt ends where the reply starts,
    and the answer is read on "Yes"/"No" without a space while the options stay " Yes"/" No"."""
    from headatlas.prompts.requests import CHAT_FORMATS

    fmt = CHAT_FORMATS["SmolLM2"]
    d = pa.yes_no_prompts(tok, n_prompts=6, template="reply", no_first=True, seed=0, chat=fmt)
    rows = torch.arange(6)
    assert (d.tokens[rows, d.yes_pos] == d.yes_id).all() and (d.tokens[rows, d.no_pos] == d.no_id).all()
    assert dec(tok, [d.answer_yes_id]) == "Yes" and dec(tok, [d.answer_no_id]) == "No"
    assert d.answer_yes_id != d.yes_id
    text = dec(tok, d.tokens[0])
    assert text.startswith(fmt.before) and text.endswith(fmt.after) and "Reply:" not in text
    plain = pa.yes_no_prompts(tok, n_prompts=6, template="reply", no_first=True, seed=0)
    assert (plain.answer_yes_id, plain.answer_no_id) == (plain.yes_id, plain.no_id)
    assert torch.equal(plain.truth, d.truth)                                 # the same questions


def test_evening_out_the_option_attention_zeroes_nas_and_nothing_else(tok):
    """The negative-heads edit: in each head set's rows, only its heads' attention to " Yes" and
    " No" after the instruction changes, to the mean of the two; rows keep their totals."""
    from claim_negative import _nas, even_out_hooks

    q = pa.yes_no_prompts(tok, n_prompts=4, template="reply", seed=0)
    n, n_pos = 4, q.tokens.shape[1]
    sets = torch.tensor([[[0, 1]], [[0, 2]]])                       # two sets of one head, layer 0
    pattern = torch.softmax(torch.randn(2 * n, 3, n_pos, n_pos, generator=torch.Generator().manual_seed(0)), -1)
    (name, edit), = even_out_hooks(sets, q, n)
    assert name == "blocks.0.attn.hook_pattern"
    out = edit(pattern, None)
    assert torch.allclose(out.sum(-1), pattern.sum(-1))
    qq = pa.YesNo(q.tokens.repeat(2, 1), q.yes_pos.repeat(2), q.no_pos.repeat(2), q.query_start.repeat(2),
                  q.truth.repeat(2), q.yes_id, q.no_id, q.answer_yes_id, q.answer_no_id)
    nas_before, nas_after = _nas(pattern, qq), _nas(out, qq)
    assert torch.allclose(nas_after[:n, 1], torch.zeros(n), atol=1e-5)       # set 0 edits head 1
    assert torch.allclose(nas_after[n:, 2], torch.zeros(n), atol=1e-5)       # set 1 edits head 2
    assert (nas_before[:n, 1].abs() > 1e-3).all()
    assert torch.equal(out[:n, [0, 2]], pattern[:n, [0, 2]]) and torch.equal(out[n:, [0, 1]], pattern[n:, [0, 1]])
    first = int(q.query_start.min())
    assert torch.equal(out[:, :, :first], pattern[:, :, :first])               # the instruction's queries untouched


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma-3-270m"])
def test_head_dla_from_forward_reduce_matches_the_library_dla(name):
    """The claims' per-position head DLA (forward_reduce's z, final scale and, in Gemma, the
    post-attention norm's scale) equals headatlas.methods.logit_attribution's frozen-scale DLA.
    Without the post-attention norm Gemma's heads come out many times too small or large."""
    from _attn import forward_reduce, head_dla

    from headatlas.methods import logit_attribution as la
    from headatlas.models import load_model

    model = load_model(name)
    b = model.bridge
    a = pa.acronym_prompts(model.tokenizer, n_prompts=3)
    out = forward_reduce(b, a.clean, z_at=-1, final_at=-1)
    assert (out["post_scale"] is not None) == la.has_post_attn_norm(b) == (name == "gemma-3-270m")
    mine = head_dla(b, out["z"], out["scale"], a.correct, a.wrong, per_prompt=True, post_scale=out["post_scale"])
    direction = la.frozen_logit_direction(b, a.correct, a.wrong, out["scale"])
    post_hooks, post = la.post_scale_hooks(b)
    store = {}

    def keep(z, hook):
        store[int(hook.name.split(".")[1])] = z[:, -1].detach().float().clone()
        return z

    with torch.inference_mode():
        b.run_with_hooks(a.clean, fwd_hooks=post_hooks + [(f"blocks.{i}.attn.hook_z", keep)
                                                          for i in range(b.cfg.n_layers)], return_type=None)
    ref = la.head_dla_from_z(b, [store[i] for i in range(b.cfg.n_layers)], direction, post)   # [batch, layer, head]
    assert torch.allclose(mine.permute(1, 0, 2), ref, atol=1e-3 * float(ref.abs().max()))


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma-3-270m"])
def test_source_split_over_every_position_is_the_heads_whole_output(name):
    """The subject claim's split of each head's final-position output by source token, summed
    over every source, is the head's whole direct output (Gemma's post-attention norm included)."""
    from _attn import forward_reduce, head_direct_out
    from claim_subject import source_split

    from headatlas.models import load_model

    model = load_model(name)
    b = model.bridge
    a = pa.acronym_prompts(model.tokenizer, n_prompts=3)
    out, att = source_split(b, a.clean, list(range(a.clean.shape[1])))
    r = forward_reduce(b, a.clean, z_at=-1, final_at=-1)
    ref = head_direct_out(b, r["z"], r["scale"], r["post_scale"]).permute(1, 0, 2, 3)
    assert torch.allclose(out, ref, atol=1e-4 * float(ref.abs().max()))
    assert torch.allclose(att.sum(-1), torch.full_like(att.sum(-1), float(model.n_heads)), atol=1e-4)


def test_code_text_halves_use_disjoint_names(tok):
    sel = pa.code_text(tok, n_prompts=6, n_tokens=80, seed=4, half="select")
    test = pa.code_text(tok, n_prompts=6, n_tokens=80, seed=4, half="test")
    assert sel.shape == test.shape == (6, 80)
    assert torch.equal(sel, pa.code_text(tok, n_prompts=6, n_tokens=80, seed=4, half="select"))   # seeded

    def names(x, pool):
        text = " ".join(dec(tok, row) for row in x)
        return {w for w in pool if f"{w}(" in text or f" {w} " in text or f"({w}" in text or f" {w}." in text}
    assert names(sel, pa.CODE_NAMES + pa.CODE_FUNCS) <= set(pa.CODE_NAMES[0::2] + pa.CODE_FUNCS[0::2])
    assert names(test, pa.CODE_NAMES + pa.CODE_FUNCS) <= set(pa.CODE_NAMES[1::2] + pa.CODE_FUNCS[1::2])
    assert names(test, pa.CODE_NAMES)                                      # the check above saw some names
    with pytest.raises(ValueError, match="unknown half"):
        pa.code_text(tok, half="train")


def test_sink_and_output_match_a_direct_computation():
    from claim_active_dormant import sink_and_output

    model = smollm2()
    tokens = pa.code_text(model.tokenizer, n_prompts=2, n_tokens=24, seed=0)
    got = sink_and_output(model.bridge, tokens, start=5)
    _, cache = model.bridge.run_with_cache(tokens)
    for layer in (0, 17):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        z = cache[f"blocks.{layer}.attn.hook_z"]
        want_sink = pattern[:, :, 5:, 0].mean(-1)                                      # [batch, head]
        want_norm = torch.einsum("bphd,hdm->bphm", z[:, 5:], model.bridge.W_O[layer]).norm(dim=-1).mean(1)
        assert torch.allclose(got["sink"][:, layer], want_sink, atol=1e-5)
        assert torch.allclose(got["norm"][:, layer], want_norm, rtol=1e-4)


def test_rare_word_prompts_mark_both_words_and_query_after_them(tok):
    r = pa.rare_word_prompts(tok, n_prompts=8, n_tokens=96, corpus="story", half="test", seed=1)
    assert r.tokens.shape == r.rare.shape == r.common.shape == r.queries.shape == (8, 96)
    for i in range(8):
        rare = dec(tok, r.tokens[i][r.rare[i]]).strip()
        common = dec(tok, r.tokens[i][r.common[i]]).strip()
        assert rare in pa.LONG_WORDS[1::2] and common in pa.COMMON[1::2]          # the held-out halves
        text = dec(tok, r.tokens[i])
        assert f"The word was {rare}." in text and f"The word was {common}." in text
        rare_at, common_at = r.rare[i].nonzero()[:, 0], r.common[i].nonzero()[:, 0]
        assert (rare_at[0] < common_at[0]) == (i % 2 == 0)                      # the order alternates
        first = int(r.queries[i].nonzero()[0, 0])
        assert first > max(int(rare_at[-1]), int(common_at[-1])) and r.queries[i, first:].all()
        assert int(r.queries[i].sum()) >= 16
    sel = pa.rare_word_prompts(tok, n_prompts=8, n_tokens=96, corpus="filler", half="select", seed=1)
    assert {dec(tok, sel.tokens[i][sel.rare[i]]).strip() for i in range(8)} <= set(pa.LONG_WORDS[0::2])
    with pytest.raises(ValueError, match="raise n_tokens"):
        pa.rare_word_prompts(tok, n_tokens=40)
