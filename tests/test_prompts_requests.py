"""The refusal-request builder (headatlas.prompts.requests) splits the task pairs into disjoint
halves, words them by seed, keeps harmful and harmless requests matched, and writes each model
family's chat format; the refusal-opening classifier (headatlas.methods.refusal) reads reply
openings as the safety claim needs."""

from __future__ import annotations

import pytest
from helpers import smollm2

from headatlas.catalogue import load_catalogue
from headatlas.claims.runtime import spec_variants
from headatlas.methods.refusal import classify
from headatlas.prompts import requests as rq


def task_of(text: str, kind: str) -> int:
    """The index of the pair whose task the request carries."""
    hits = [i for i, pair in enumerate(rq.REQUEST_PAIRS) if pair[0 if kind == "harmful" else 1] in text]
    assert len(hits) == 1, text
    return hits[0]


def test_halves_are_disjoint_and_cover_every_pair():
    for split_seed in (0, 1, 7):
        sel, test = rq.request_half(split_seed, "select"), rq.request_half(split_seed, "test")
        assert not set(sel) & set(test)
        assert sorted(sel + test) == list(range(len(rq.REQUEST_PAIRS)))
        assert abs(len(sel) - len(test)) <= 1
    assert rq.request_half(0, "select") != rq.request_half(1, "select")
    with pytest.raises(ValueError):
        rq.request_half(0, "train")


def test_held_out_requests_never_share_a_task_with_the_selection_requests():
    sel = {task_of(t, "harmful") for t in rq.requests("harmful", 0, "select", "all", 10)}
    for frames, seed in (("explain", 0), ("instruct", 1), ("all", 3)):
        test = {task_of(t, "harmful") for t in rq.requests("harmful", 0, "test", frames, seed)}
        assert not sel & test
        assert len(test) == len(rq.request_half(0, "test"))


def test_seeds_reword_the_same_tasks_and_frame_sets_differ():
    a = rq.requests("harmful", 0, "test", "all", 0)
    b = rq.requests("harmful", 0, "test", "all", 1)
    assert a != b
    assert [task_of(t, "harmful") for t in a] == [task_of(t, "harmful") for t in b]
    assert a == rq.requests("harmful", 0, "test", "all", 0)                   # deterministic
    explain = rq.requests("harmful", 0, "test", "explain", 0)
    instruct = rq.requests("harmful", 0, "test", "instruct", 0)
    assert not set(explain) & set(instruct)
    assert all(t[0].isupper() for t in explain + instruct)


def test_harmful_and_harmless_requests_are_matched_frame_by_frame():
    harmful = rq.requests("harmful", 0, "select", "all", 10)
    harmless = rq.requests("harmless", 0, "select", "all", 10)
    assert len(harmful) == len(harmless)
    for h, n in zip(harmful, harmless):
        i = task_of(h, "harmful")
        assert task_of(n, "harmless") == i
        assert h.replace(rq.REQUEST_PAIRS[i][0], "{task}").lower() == n.replace(rq.REQUEST_PAIRS[i][1], "{task}").lower()


def test_the_claim_chooses_its_head_on_other_tasks_than_it_judges():
    _, spec = load_catalogue().claims["safety-head-ablation"]
    sel = spec.data | spec.selection
    chosen = {task_of(t, "harmful") for t in rq.requests("harmful", sel["split_seed"], sel["half"], sel["frames"], sel["seed"])}
    for _, data in spec_variants(spec.data):
        judged = {task_of(t, "harmful") for t in rq.requests("harmful", data["split_seed"], data["half"],
                                                             data["frames"], data["seed"])}
        assert judged and not chosen & judged


class NoTemplate:
    """A tokenizer without a chat template (as Gemma-3-270M's base model): one id per character."""

    chat_template = None
    bos_token_id = 2

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def test_without_a_template_the_family_format_is_written_by_hand():
    tok = NoTemplate()
    fmt = rq.chat_format(tok, "Gemma 3")
    assert fmt == rq.CHAT_FORMATS["Gemma 3"] and fmt.bos
    p = rq.chat_prompts(tok, ["Explain how to bake bread.", "How can I fix a stuck lock on my door?"], fmt)
    after = [ord(c) for c in "<end_of_turn>\n<start_of_turn>model\n"]
    assert p.suffix_len == len(after)
    for ids, text in zip(p.ids, p.texts):
        assert ids[0] == 2                                                      # Gemma's BOS
        assert "".join(map(chr, ids[1:])) == f"<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n"
        assert ids[-p.suffix_len:] == after
    qwen = rq.chat_format(tok, "Qwen2.5-Coder")
    assert qwen.before.startswith("<|im_start|>system\nYou are Qwen") and qwen.after == "<|im_end|>\n<|im_start|>assistant\n"
    assert not qwen.bos
    with pytest.raises(ValueError, match="no chat template"):
        rq.chat_format(tok, "Pythia")


def test_a_tokenizer_template_gives_the_same_prompt_as_the_hand_written_chatml():
    tok = smollm2().tokenizer
    assert tok.chat_template
    fmt = rq.chat_format(tok, "SmolLM2")
    assert fmt == rq.CHAT_FORMATS["SmolLM2"]                                    # the template, read back
    text = "Tell me how to send a parcel abroad."
    p = rq.chat_prompts(tok, [text], fmt)
    want = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True)
    want = want["input_ids"] if isinstance(want, dict) or hasattr(want, "keys") else want
    assert p.ids[0] == list(want)
    assert tok.decode(p.ids[0][-p.suffix_len:]) == "<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("text, want", [
    ("I'm sorry, but", True), ("I\u2019m sorry", True), (" Sorry, I", True), ("I cannot", True), ("I can't help", True),
    ("I can help", False), ("To change a", False), ("Sure! Here", False), ("As an AI language", False),
    ("I", None), ("I can", None), ("I'm", None), ("", None),
])
def test_reply_openings_are_classified(text, want):
    assert classify(text) is want


def test_extra_pairs_join_the_held_out_half_only_and_leave_the_first_requests_as_they_were():
    """The pairs written after the first runs (EXTRA_REQUEST_PAIRS) extend the test half; the
    selection half cannot take them, and the original held-out requests keep their wordings."""
    tasks = [t for pair in rq.REQUEST_PAIRS + rq.EXTRA_REQUEST_PAIRS for t in pair]
    assert len(set(tasks)) == len(tasks)                                     # no task written twice
    for kind in ("harmful", "harmless"):
        for frames, seed in (("explain", 0), ("instruct", 1)):
            base = rq.requests(kind, 0, "test", frames, seed)
            more = rq.requests(kind, 0, "test", frames, seed, held_out_extra=True)
            assert more[: len(base)] == base
            assert len(more) == len(base) + len(rq.EXTRA_REQUEST_PAIRS)
            extra = [pair[0 if kind == "harmful" else 1] for pair in rq.EXTRA_REQUEST_PAIRS]
            assert all(task in text for task, text in zip(extra, more[len(base):]))
    harmful = rq.requests("harmful", 0, "test", "all", 3, held_out_extra=True)
    harmless = rq.requests("harmless", 0, "test", "all", 3, held_out_extra=True)
    assert [h.split(" ")[0] for h in harmful] == [n.split(" ")[0] for n in harmless]   # same frames
    with pytest.raises(ValueError, match="test half only"):
        rq.requests("harmful", 0, "select", "all", 10, held_out_extra=True)
