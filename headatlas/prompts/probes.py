"""Seeded probe datasets for the detection methods: ordinal sequences, needle-in-a-haystack copies,
Yes/No and multiple-choice prompts, text with split words, and IOI prompt pairs.

Prompts are assembled from separately tokenized pieces whose length is checked, so that every
prompt of a batch has the same length and the positions a score needs (needle span, option
tokens, word boundaries) are known exactly instead of searched for afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts import sampleable_token_ids
from headatlas.prompts.tokens import bos_prefix, encode, single_token, single_token_words

# ----------------------------------------------------------------------------- ordinal sequences

ORDINAL_SEQUENCES: dict[str, list[str]] = {
    "numbers": [str(i) for i in range(1, 21)],
    "number_words": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                     "eleven", "twelve"],
    "ordinals": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
                 "tenth"],
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"],
    "letters": list("abcdefghijklmnopqrstuvwxyz"),
    "capital_letters": list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
}


@dataclass(frozen=True)
class OrdinalSet:
    name: str
    words: list[str]        # the surface forms, in order
    token_ids: list[int]    # one token each


def ordinal_sets(tokenizer, sequences: dict[str, list[str]] = ORDINAL_SEQUENCES,
                 min_len: int = 3) -> list[OrdinalSet]:
    """Each sequence in the surface form (with or without a leading space) that keeps the longest
    run of consecutive single-token items: successor pairs must be consecutive. SmolLM2 splits
    digits, so its numbers are 1..9 without a space; GPT-2 keeps " 1".." 20"."""
    out = []
    for name, items in sequences.items():
        best: tuple[int, int, str] = (0, 0, "")
        for prefix in (" ", ""):
            ids = [single_token(tokenizer, prefix + w) for w in items]
            start = 0
            for i in range(len(ids) + 1):
                if i == len(ids) or ids[i] is None:
                    if i - start > best[1] - best[0]:
                        best = (start, i, prefix)
                    start = i + 1
        lo, hi, prefix = best
        if hi - lo >= min_len:
            words = items[lo:hi]
            ids = [single_token(tokenizer, prefix + w) for w in words]
            if len(set(ids)) == len(ids):
                out.append(OrdinalSet(name, [prefix + w for w in words], ids))
    return out


# ----------------------------------------------------------------------------- text pieces

FILLER = [
    " The river ran past the mill and turned toward the hills.",
    " Farmers brought their grain to town on the first day of the week.",
    " A small bakery on the corner sold bread until noon.",
    " The old bridge was repaired after the spring floods.",
    " Children walked to school along the narrow road by the lake.",
    " In the evening the market square filled with music and lights.",
    " The library kept its oldest maps in a locked room upstairs.",
    " Rain fell for three days and the fields turned green again.",
    " A train from the coast arrived late every Friday night.",
    " The teacher wrote the lesson on the board in careful letters.",
    " Most houses in the village had gardens with apple trees.",
    " The post office closed early during the winter months.",
]

COMMON_WORDS = ["house", "water", "music", "garden", "window", "river", "market", "letter", "table",
                "school", "teacher", "village", "forest", "mountain", "city", "road", "bread", "horse",
                "paper", "stone", "ocean", "flower", "doctor", "summer", "winter", "island"]

SYLLABLES = ["bla", "zor", "quin", "trex", "vol", "mup", "dra", "snik", "plo", "gath", "wib", "yon",
             "frel", "kest", "ubo", "zan", "thrim", "oct", "lux", "pem"]


# ----------------------------------------------------------------------------- needle in a haystack


@dataclass(frozen=True)
class NeedleData:
    """[BOS] haystack + cue + needle + haystack + question + cue + needle (the answer, teacher-forced).

    At decoding step j the model, at position answer_start + j - 1, generates needle token j."""

    tokens: torch.Tensor        # [batch, pos]
    needle_start: torch.Tensor  # [batch] first position of the needle in the context
    answer_start: torch.Tensor  # [batch] first position of the copied needle
    needle_len: int


def needle_prompts(tokenizer, vocab_size: int, *, n_prompts: int = 4, haystack_sentences: int = 8,
                   needle_len: int = 8, seed: int = 0, max_len: int | None = None) -> NeedleData:
    """A needle of random tokens hidden at a random depth of filler text, then asked for back.
    Random needle tokens make the answer recoverable only by copying from the needle. With
    `max_len` (a model's context), the haystack shrinks until the prompts fit."""
    while True:
        out = _needle_prompts(tokenizer, vocab_size, n_prompts, haystack_sentences, needle_len, seed)
        if max_len is None or out.tokens.shape[1] <= max_len:
            return out
        if haystack_sentences <= 2:
            raise ValueError(f"needle prompts need more than {max_len} tokens")
        haystack_sentences -= 1


def _needle_prompts(tokenizer, vocab_size: int, n_prompts: int, haystack_sentences: int, needle_len: int,
                    seed: int) -> NeedleData:
    gen = torch.Generator().manual_seed(seed)
    pool = sampleable_token_ids(tokenizer, vocab_size)
    pool = pool[pool >= min(256, len(pool) - 1)] if len(pool) > 1000 else pool
    cue = encode(tokenizer, " The secret passkey is")
    question = encode(tokenizer, " What is the secret passkey? Answer: The secret passkey is")
    rows, ns, ans = [], [], []
    for _ in range(n_prompts):
        order = torch.randperm(len(FILLER), generator=gen).tolist()
        sents = [FILLER[order[i % len(FILLER)]] for i in range(haystack_sentences)]
        depth = int(torch.randint(1, haystack_sentences, (1,), generator=gen))
        needle = pool[torch.randint(len(pool), (needle_len,), generator=gen)].tolist()
        before = [t for s in sents[:depth] for t in encode(tokenizer, s)]
        after = [t for s in sents[depth:] for t in encode(tokenizer, s)]
        seq = bos_prefix(tokenizer) + before + cue
        ns.append(len(seq))
        seq += needle + encode(tokenizer, ".") + after + question
        ans.append(len(seq))
        rows.append(seq + needle)
    width = max(len(r) for r in rows)
    # Equal lengths: pad at the front with filler tokens and shift positions accordingly.
    pad = encode(tokenizer, FILLER[0])
    out = []
    for i, r in enumerate(rows):
        extra = width - len(r)
        if extra:
            filler = (pad * (extra // max(len(pad), 1) + 1))[:extra]
            b = len(bos_prefix(tokenizer))
            r = r[:b] + filler + r[b:]
            ns[i] += extra
            ans[i] += extra
        out.append(r)
    return NeedleData(torch.tensor(out), torch.tensor(ns), torch.tensor(ans), needle_len)


# ----------------------------------------------------------------------------- option prompts


@dataclass(frozen=True)
class OptionPrompts:
    tokens: torch.Tensor            # [batch, pos]
    option_positions: torch.Tensor  # [batch, n_options] positions of the option tokens
    option_names: list[str]
    answer: torch.Tensor            # [batch] index of the correct option
    query_start: torch.Tensor       # [batch] first position after the instruction / option list


YES_NO_FACTS = [  # (subject, category, true?) with single-token words in most tokenizers
    ("apple", "fruit", True), ("dog", "animal", True), ("rose", "flower", True), ("car", "fruit", False),
    ("cat", "animal", True), ("table", "animal", False), ("oak", "tree", True), ("stone", "fruit", False),
    ("lion", "animal", True), ("chair", "flower", False), ("pear", "fruit", True), ("river", "animal", False),
]


def yes_no_prompts(tokenizer, *, n_prompts: int = 12, seed: int = 0) -> OptionPrompts:
    """"Answer Yes or No." questions; options are the " Yes" and " No" tokens in the instruction,
    as in Yu et al.'s negative-attention setting."""
    gen = torch.Generator().manual_seed(seed)
    facts = [f for f in YES_NO_FACTS if single_token(tokenizer, " " + f[0]) and single_token(tokenizer, " " + f[1])]
    head = encode(tokenizer, " Answer with")
    yes, orr, no = encode(tokenizer, " Yes"), encode(tokenizer, " or"), encode(tokenizer, " No")
    if len(yes) != 1 or len(no) != 1:
        raise ValueError("this tokenizer does not keep ' Yes' and ' No' as single tokens")
    rows, pos, answer, starts = [], [], [], []
    for i in torch.randint(len(facts), (n_prompts,), generator=gen).tolist():
        subj, cat, truth = facts[i]
        pre = bos_prefix(tokenizer) + head
        instruction = pre + yes + orr + no + encode(tokenizer, ".")
        seq = instruction + encode(tokenizer, " Question: Is a") + encode(tokenizer, " " + subj) + \
            encode(tokenizer, " a kind of") + encode(tokenizer, " " + cat) + encode(tokenizer, "? Answer:")
        rows.append(seq)
        pos.append([len(pre), len(pre) + 2])
        answer.append(0 if truth else 1)
        starts.append(len(instruction))
    _check_equal(rows, "yes/no prompts")
    return OptionPrompts(torch.tensor(rows), torch.tensor(pos), ["Yes", "No"], torch.tensor(answer), torch.tensor(starts))


MC_CATEGORIES = {"animal": ["dog", "cat", "horse", "lion", "bird"],
                 "fruit": ["apple", "pear", "lemon", "grape", "peach"],
                 "color": ["red", "blue", "green", "yellow", "black"]}
MC_DISTRACTORS = ["table", "chair", "river", "stone", "paper", "window", "road", "music"]


def multiple_choice_prompts(tokenizer, *, n_prompts: int = 12, n_options: int = 4, seed: int = 0) -> OptionPrompts:
    """Question: Which of these is a(n) {category}?  A. w  B. w  C. w  D. w  Answer:
    Option positions are the letter labels (A, B, C, D), which Lieberum et al.'s constant heads
    attend to uniformly whatever the answer."""
    gen = torch.Generator().manual_seed(seed)
    letters = [chr(ord("A") + i) for i in range(n_options)]
    cats = {c: [w for w, _ in single_token_words(tokenizer, ws)] for c, ws in MC_CATEGORIES.items()}
    distract = [w for w, _ in single_token_words(tokenizer, MC_DISTRACTORS)]
    rows, pos, answer, starts = [], [], [], []
    for _ in range(n_prompts):
        cat = list(cats)[int(torch.randint(len(cats), (1,), generator=gen))]
        right = cats[cat][int(torch.randint(len(cats[cat]), (1,), generator=gen))]
        wrong = [distract[i] for i in torch.randperm(len(distract), generator=gen)[: n_options - 1].tolist()]
        k = int(torch.randint(n_options, (1,), generator=gen))
        words = wrong[:k] + [right] + wrong[k:]
        seq = bos_prefix(tokenizer) + encode(tokenizer, "Question: Which of these is a") + \
            encode(tokenizer, " " + cat) + encode(tokenizer, "?\n")
        p = []
        for letter, w in zip(letters, words):
            p.append(len(seq))
            lt = encode(tokenizer, letter)
            if len(lt) != 1:
                raise ValueError(f"option label {letter!r} is not one token")
            seq += lt + encode(tokenizer, ".") + encode(tokenizer, " " + w) + encode(tokenizer, "\n")
        starts.append(len(seq))
        seq += encode(tokenizer, "Answer:")
        rows.append(seq)
        pos.append(p)
        answer.append(k)
    _check_equal(rows, "multiple-choice prompts")
    return OptionPrompts(torch.tensor(rows), torch.tensor(pos), letters, torch.tensor(answer), torch.tensor(starts))


# ----------------------------------------------------------------------------- words split into pieces


@dataclass(frozen=True)
class WordText:
    tokens: torch.Tensor    # [batch, pos]
    word_ids: torch.Tensor  # [batch, pos] index of the word each token belongs to; -1 for BOS


def split_word_text(tokenizer, *, n_prompts: int = 4, n_words: int = 24, p_pseudo: float = 0.35,
                    seed: int = 0) -> WordText:
    """Common words with made-up words (random syllables) mixed in. Made-up words split into
    several sub-tokens (for subword-merge heads) and their pieces are rare tokens (for rare-token
    heads), so one forward pass serves both scores. Word identity is known by construction:
    every word is tokenized on its own, with its leading space."""
    gen = torch.Generator().manual_seed(seed)
    rows, wids = [], []
    for _ in range(n_prompts):
        seq, wid = list(bos_prefix(tokenizer)), [-1] * len(bos_prefix(tokenizer))
        for w in range(n_words):
            if float(torch.rand(1, generator=gen)) < p_pseudo:
                n_syl = int(torch.randint(2, 4, (1,), generator=gen))
                word = "".join(SYLLABLES[i] for i in torch.randint(len(SYLLABLES), (n_syl,), generator=gen).tolist())
            else:
                word = COMMON_WORDS[int(torch.randint(len(COMMON_WORDS), (1,), generator=gen))]
            ids = encode(tokenizer, " " + word)
            seq += ids
            wid += [w] * len(ids)
        rows.append(seq)
        wids.append(wid)
    width = min(len(r) for r in rows)  # cut to the shortest; a cut word just loses its tail
    return WordText(torch.tensor([r[:width] for r in rows]), torch.tensor([w[:width] for w in wids]))


def natural_text(tokenizer, *, n_prompts: int = 4, n_sentences: int = 6, seed: int = 0) -> torch.Tensor:
    """Filler sentences in a seeded order, cut to a common length: [batch, pos]."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_prompts):
        order = torch.randperm(len(FILLER), generator=gen).tolist()[:n_sentences]
        rows.append(bos_prefix(tokenizer) + [t for i in order for t in encode(tokenizer, FILLER[i])])
    width = min(len(r) for r in rows)
    return torch.tensor([r[:width] for r in rows])


# ----------------------------------------------------------------------------- IOI


IOI_TEMPLATES = [
    "When{A} and{B} went to the store,{S} gave a drink to",
    "When{A} and{B} went to the park,{S} gave a ball to",
    "Then,{A} and{B} had a long argument, and afterwards{S} said to",
    "After{A} and{B} went to the office,{S} gave a letter to",
]
IOI_NAMES = ["Mary", "John", "Alice", "Bob", "Tom", "James", "Sarah", "Anna", "David", "Paul", "Kate",
             "Mike", "Lisa", "Emma", "Jack", "Lucy"]


@dataclass(frozen=True)
class ContrastPrompts:
    """Clean and corrupted prompts of equal length and the two answer tokens per prompt."""

    clean: torch.Tensor      # [batch, pos]
    corrupted: torch.Tensor  # [batch, pos]
    correct: torch.Tensor    # [batch] token the clean prompt should predict
    wrong: torch.Tensor      # [batch] the competing token


def ioi_prompts(tokenizer, *, n_prompts: int = 8, templates: list[str] | None = None, seed: int = 0) -> ContrastPrompts:
    """Indirect-object prompts (answer: the indirect object A; competitor: the subject B, who
    appears twice). The corruption swaps the second subject mention for a third name (Wang et
    al.'s ABC distribution), which removes the duplicate that the circuit keys on. Templates
    that tokenize to different lengths than the first are dropped."""
    gen = torch.Generator().manual_seed(seed)
    names = [(n, t) for n, t in single_token_words(tokenizer, IOI_NAMES)]
    templates = list(templates or IOI_TEMPLATES)
    clean, corrupt, correct, wrong = [], [], [], []

    def build(tpl, a, b, s):
        return bos_prefix(tokenizer) + encode(tokenizer, tpl.format(A=" " + a, B=" " + b, S=" " + s))

    width = len(build(templates[0], names[0][0], names[1][0], names[1][0]))
    usable = [t for t in templates if len(build(t, names[0][0], names[1][0], names[1][0])) == width]
    i = 0
    while len(clean) < n_prompts:
        tpl = usable[i % len(usable)]
        i += 1
        pick = torch.randperm(len(names), generator=gen)[:3].tolist()
        (a, ta), (b, tb), (c, _) = (names[j] for j in pick)
        if float(torch.rand(1, generator=gen)) < 0.5:  # ABB and BAB orders, so position is no cue
            first, second = a, b
        else:
            first, second = b, a
        cl, co = build(tpl, first, second, b), build(tpl, first, second, c)
        if len(cl) != width or len(co) != width:
            continue
        clean.append(cl)
        corrupt.append(co)
        correct.append(ta)
        wrong.append(tb)
    return ContrastPrompts(torch.tensor(clean), torch.tensor(corrupt), torch.tensor(correct), torch.tensor(wrong))


def _check_equal(rows: list[list[int]], what: str) -> None:
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{what}: pieces tokenized to different lengths {sorted({len(r) for r in rows})}")
