"""Seeded prompt sets for the task-level head types: in-context tasks for function-vector heads,
ToyMovieReview sentiment prompts for the summarization motif, and factual-recall prompts for
subject, relation, mover and mixed heads.

Every prompt is assembled from separately tokenized pieces, and only words that are one token
(with their leading space) in the model's tokenizer are used, so all prompts of a batch have the
same length and the positions a measurement needs are known by construction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from headatlas.prompts.tokens import bos_prefix, encode, single_token

# ----------------------------------------------------------------------------- in-context tasks

FV_TASKS: dict[str, list[tuple[str, str]]] = {
    "antonym": [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("up", "down"), ("old", "young"),
                ("good", "bad"), ("high", "low"), ("happy", "sad"), ("light", "dark"), ("rich", "poor"),
                ("hard", "soft"), ("long", "short"), ("open", "closed"), ("wet", "dry"), ("early", "late"),
                ("strong", "weak"), ("full", "empty"), ("true", "false"), ("left", "right"), ("day", "night"),
                ("in", "out"), ("win", "lose"), ("love", "hate"), ("black", "white"), ("first", "last"),
                ("top", "bottom"), ("north", "south"), ("east", "west"), ("thick", "thin"),
                ("clean", "dirty"), ("cheap", "expensive"), ("loud", "quiet")],
    "country-capital": [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Germany", "Berlin"),
                        ("Spain", "Madrid"), ("Russia", "Moscow"), ("China", "Beijing"), ("Egypt", "Cairo"),
                        ("England", "London"), ("Greece", "Athens"), ("Austria", "Vienna"),
                        ("Canada", "Ottawa"), ("Ireland", "Dublin"), ("Poland", "Warsaw"),
                        ("Portugal", "Lisbon"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
                        ("Kenya", "Nairobi"), ("Cuba", "Havana"), ("Peru", "Lima"), ("India", "Delhi"),
                        ("Iran", "Tehran"), ("Hungary", "Budapest"), ("Finland", "Helsinki"),
                        ("Denmark", "Copenhagen"), ("Belgium", "Brussels"), ("Chile", "Santiago"),
                        ("Australia", "Canberra")],
    "country-language": [("France", "French"), ("Germany", "German"), ("Italy", "Italian"),
                         ("Spain", "Spanish"), ("Japan", "Japanese"), ("China", "Chinese"),
                         ("Russia", "Russian"), ("Greece", "Greek"), ("Poland", "Polish"),
                         ("Portugal", "Portuguese"), ("Sweden", "Swedish"), ("Turkey", "Turkish"),
                         ("Finland", "Finnish"), ("Denmark", "Danish"), ("Norway", "Norwegian"),
                         ("Hungary", "Hungarian"), ("Korea", "Korean"), ("Egypt", "Arabic"),
                         ("Brazil", "Portuguese"), ("Mexico", "Spanish"), ("Netherlands", "Dutch"),
                         ("Thailand", "Thai"), ("Vietnam", "Vietnamese"), ("Iran", "Persian")],
}


@dataclass(frozen=True)
class TaskPrompts:
    """In-context prompts for one task: demonstrations then a query, answer = one token."""

    tokens: torch.Tensor   # [batch, pos]
    answer: torch.Tensor   # [batch] token id of the query's correct answer


@dataclass(frozen=True)
class TaskSplit:
    """A task's usable pairs split in two: `demo` pairs build the few-shot prompts the function
    vector is averaged over; `held_out` pairs are the zero-shot queries it is tested on."""

    demo: list[tuple[str, str]]
    held_out: list[tuple[str, str]]


def _template_parts(template: str) -> tuple[str, str, str]:
    """'Q: {x}\\nA: {y}\\n\\n' -> ('Q:', '\\nA:', '\\n\\n'): text before x, between x and y,
    after y. x and y are written with a leading space and must be single tokens."""
    if "{x}" not in template or "{y}" not in template:
        raise ValueError(f"a task template needs {{x}} and {{y}}: {template!r}")
    pre, rest = template.split("{x}", 1)
    mid, post = rest.split("{y}", 1)
    return pre.rstrip(" "), mid.rstrip(" "), post


def task_split(tokenizer, task: str, seed: int) -> TaskSplit:
    """Pairs whose input and answer are both one token with a leading space, shuffled with
    `seed` and split in half."""
    if task not in FV_TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(FV_TASKS)}")
    pairs = [(x, y) for x, y in FV_TASKS[task]
             if single_token(tokenizer, " " + x) is not None and single_token(tokenizer, " " + y) is not None]
    random.Random(seed).shuffle(pairs)
    half = len(pairs) // 2
    if half < 6:
        raise ValueError(f"task {task!r} keeps only {len(pairs)} single-token pairs in this tokenizer")
    return TaskSplit(pairs[:half], pairs[half:])


def _line(tokenizer, parts, x: str, y: str | None) -> list[int]:
    pre, mid, post = parts
    ids = encode(tokenizer, pre) if pre else []
    ids += [single_token(tokenizer, " " + x)] + encode(tokenizer, mid)
    if y is not None:
        ids += [single_token(tokenizer, " " + y)] + encode(tokenizer, post)
    return ids


def task_prompts(tokenizer, pairs: list[tuple[str, str]], template: str, *, n_prompts: int, n_demos: int,
                 seed: int, shuffle_labels: bool = False) -> TaskPrompts:
    """n_prompts few-shot prompts: n_demos demonstrations and a query drawn without repetition
    from `pairs`. With shuffle_labels the demonstrations' answers are permuted among themselves
    (no demonstration keeps its own answer), Todd et al.'s corrupted context."""
    parts = _template_parts(template)
    rng = random.Random(seed)
    rows, answers = [], []
    for _ in range(n_prompts):
        chosen = rng.sample(pairs, n_demos + 1)
        demos, (qx, qy) = chosen[:-1], chosen[-1]
        ys = [y for _, y in demos]
        if shuffle_labels:
            perm = list(range(n_demos))
            while any(i == p for i, p in enumerate(perm)):   # a derangement
                rng.shuffle(perm)
            ys = [ys[p] for p in perm]
        seq = bos_prefix(tokenizer)
        for (x, _), y in zip(demos, ys):
            seq += _line(tokenizer, parts, x, y)
        seq += _line(tokenizer, parts, qx, None)
        rows.append(seq)
        answers.append(single_token(tokenizer, " " + qy))
    if len({len(r) for r in rows}) != 1:
        raise ValueError("task prompts came out with different lengths")
    return TaskPrompts(torch.tensor(rows), torch.tensor(answers))


def task_prompt_pairs(tokenizer, pairs: list[tuple[str, str]], template: str, *, n_prompts: int,
                      n_demos: int, seed: int) -> tuple[TaskPrompts, TaskPrompts]:
    """(clean, shuffled): n_prompts few-shot prompts and, row for row, the same demonstrations
    and query with the demonstrations' answers deranged, so a per-prompt gap between correct
    and shuffled demonstrations is defined."""
    parts = _template_parts(template)
    rng = random.Random(seed)
    clean, shuffled, answers = [], [], []
    for _ in range(n_prompts):
        chosen = rng.sample(pairs, n_demos + 1)
        demos, (qx, qy) = chosen[:-1], chosen[-1]
        perm = list(range(n_demos))
        while any(i == p for i, p in enumerate(perm)):   # a derangement
            rng.shuffle(perm)
        for rows, ys in ((clean, [y for _, y in demos]), (shuffled, [demos[p][1] for p in perm])):
            seq = bos_prefix(tokenizer)
            for (x, _), y in zip(demos, ys):
                seq += _line(tokenizer, parts, x, y)
            rows.append(seq + _line(tokenizer, parts, qx, None))
        answers.append(single_token(tokenizer, " " + qy))
    if len({len(r) for r in clean}) != 1:
        raise ValueError("task prompts came out with different lengths")
    answer = torch.tensor(answers)
    return TaskPrompts(torch.tensor(clean), answer), TaskPrompts(torch.tensor(shuffled), answer)


def zero_shot_prompts(tokenizer, pairs: list[tuple[str, str]], template: str) -> TaskPrompts:
    """One query per pair with no demonstrations: [BOS] + 'Q: x\\nA:'."""
    parts = _template_parts(template)
    rows = [bos_prefix(tokenizer) + _line(tokenizer, parts, x, None) for x, _ in pairs]
    return TaskPrompts(torch.tensor(rows), torch.tensor([single_token(tokenizer, " " + y) for _, y in pairs]))


# ----------------------------------------------------------------------------- sentiment

# Positive and negative adjectives and verbs for ToyMovieReview (Tigges et al. 2023). The answer
# words " great" / " terrible" are kept out of the adjective lists, so the model cannot score by
# copying an adjective it has just read: it must map the review's sentiment to the answer.
SENTIMENT_ADJECTIVES = {
    "positive": ["good", "excellent", "wonderful", "amazing", "fantastic", "perfect", "brilliant", "beautiful",
                 "lovely", "superb", "fun", "nice", "awesome", "incredible", "delightful", "enjoyable"],
    "negative": ["bad", "awful", "horrible", "boring", "poor", "dull", "stupid", "weak", "ugly", "disappointing",
                 "dreadful", "silly", "annoying", "lousy", "bland", "messy"],
}
SENTIMENT_VERBS = {"positive": ["loved", "enjoyed", "liked"], "negative": ["hated"]}
SENTIMENT_ANSWERS = {"positive": " great", "negative": " terrible"}
SENTIMENT_TEMPLATES = {
    "movie": "I thought this movie was {adj}, I {verb} it. Conclusion: This movie is",
    "film": "I found this film {adj}, and I {verb} it. In short, the film was",
    "show": "The show was {adj}, we {verb} it. Overall, this show is",
}


@dataclass(frozen=True)
class SentimentPrompts:
    """Pairs of reviews differing only in the sentiment words: row 2i positive, row 2i + 1
    negative; `flipped` holds each row's opposite-sentiment partner (for patching)."""

    tokens: torch.Tensor     # [batch, pos]
    flipped: torch.Tensor    # [batch, pos]
    label: torch.Tensor      # [batch] 1 positive, 0 negative
    positive_answer: int
    negative_answer: int
    adj_pos: int             # position of the adjective
    verb_pos: int            # position of the verb
    summary_pos: int         # position of the full stop that closes the review
    comma_pos: int           # position of the comma right after the adjective

    @property
    def sign(self) -> torch.Tensor:
        return self.label.float() * 2 - 1


def sentiment_prompts(tokenizer, template: str, *, n_pairs: int, seed: int) -> SentimentPrompts:
    """ToyMovieReview-style prompts; `template` is a key of SENTIMENT_TEMPLATES or a string
    with {adj} and {verb} and one full stop after {verb}."""
    text = SENTIMENT_TEMPLATES.get(template, template)
    pos = [w for w in SENTIMENT_ADJECTIVES["positive"] if single_token(tokenizer, " " + w)]
    neg = [w for w in SENTIMENT_ADJECTIVES["negative"] if single_token(tokenizer, " " + w)]
    pv = [w for w in SENTIMENT_VERBS["positive"] if single_token(tokenizer, " " + w)]
    nv = [w for w in SENTIMENT_VERBS["negative"] if single_token(tokenizer, " " + w)]
    pa, na = (single_token(tokenizer, SENTIMENT_ANSWERS[k]) for k in ("positive", "negative"))
    if None in (pa, na) or not (pos and neg and pv and nv):
        raise ValueError("this tokenizer lacks single-token sentiment words")
    head, rest = text.split("{adj}", 1)
    mid, tail = rest.split("{verb}", 1)
    stop = tail.index(".")
    pieces = [encode(tokenizer, head.rstrip(" ")), encode(tokenizer, mid.rstrip(" ")),
              encode(tokenizer, tail[:stop]), encode(tokenizer, "."), encode(tokenizer, tail[stop + 1:])]
    b = bos_prefix(tokenizer)

    def build(adj, verb):
        return (b + pieces[0] + [single_token(tokenizer, " " + adj)] + pieces[1] +
                [single_token(tokenizer, " " + verb)] + pieces[2] + pieces[3] + pieces[4])

    adj_pos = len(b) + len(pieces[0])
    verb_pos = adj_pos + 1 + len(pieces[1])
    summary_pos = verb_pos + 1 + len(pieces[2])
    comma = encode(tokenizer, ",")
    if pieces[1][: len(comma)] != comma:
        raise ValueError(f"template {template!r} has no comma right after the adjective")
    rng = random.Random(seed)
    rows, flipped, label = [], [], []
    for _ in range(n_pairs):
        p = build(rng.choice(pos), rng.choice(pv))
        n = build(rng.choice(neg), rng.choice(nv))
        rows += [p, n]
        flipped += [n, p]
        label += [1, 0]
    return SentimentPrompts(torch.tensor(rows), torch.tensor(flipped), torch.tensor(label), pa, na,
                            adj_pos, verb_pos, summary_pos, adj_pos + 1)


# ----------------------------------------------------------------------------- factual recall

# Relation templates: "The" + relation words + subject + " is". The relation words are the
# tokens between "The" and the subject; the subject is one token (a country name).
FACT_TEMPLATES: dict[str, tuple[str, str, str]] = {
    # name: (template, task whose pairs give subject -> answer, task of the competing category)
    "capital": ("The capital of {s} is", "country-capital", "country-language"),
    "capital-city": ("The capital city of {s} is", "country-capital", "country-language"),
    "language": ("The official language of {s} is", "country-language", "country-capital"),
    # The same relations with a gap of several tokens between the subject and the final position,
    # so that attending from the final position to the subject is not previous-token attention.
    "capital-course": ("The capital of {s} is, of course,", "country-capital", "country-language"),
    "capital-known": ("The capital of {s} is known as", "country-capital", "country-language"),
    "language-course": ("The official language of {s} is, of course,", "country-language", "country-capital"),
}


@dataclass(frozen=True)
class FactPrompts:
    """One prompt per subject; all of equal length."""

    tokens: torch.Tensor        # [batch, pos]
    answer: torch.Tensor        # [batch] the correct attribute's token
    subjects: list[str]
    subject_pos: int            # position of the subject token
    relation_pos: list[int]     # positions of the relation words
    candidates: torch.Tensor    # distinct answer tokens of this relation (over all subjects)
    other_candidates: torch.Tensor  # answer tokens of the competing relation


def fact_prompts(tokenizer, template: str) -> FactPrompts:
    """Prompts for every subject whose name and answer are single tokens (leading space)."""
    text, task, other_task = FACT_TEMPLATES[template]
    head, tail = text.split("{s}")
    pre = bos_prefix(tokenizer) + encode(tokenizer, head.rstrip(" "))
    post = encode(tokenizer, tail)
    first = len(bos_prefix(tokenizer)) + 1                       # after "The"
    rows, answers, subjects = [], [], []
    for s, a in FV_TASKS[task]:
        ts, ta = single_token(tokenizer, " " + s), single_token(tokenizer, " " + a)
        if ts is None or ta is None or s in subjects:
            continue
        rows.append(pre + [ts] + post)
        answers.append(ta)
        subjects.append(s)
    others = sorted({t for _, a in FV_TASKS[other_task] if (t := single_token(tokenizer, " " + a)) is not None})
    return FactPrompts(torch.tensor(rows), torch.tensor(answers), subjects, len(pre),
                       list(range(first, len(pre))), torch.tensor(sorted(set(answers))), torch.tensor(others))


def subset(data: FactPrompts, keep: torch.Tensor) -> FactPrompts:
    """The prompts where `keep` ([batch] bool) is true; candidate sets unchanged."""
    idx = keep.nonzero().flatten()
    return FactPrompts(data.tokens[idx], data.answer[idx], [data.subjects[i] for i in idx.tolist()],
                       data.subject_pos, data.relation_pos, data.candidates, data.other_candidates)


# ----------------------------------------------------------------------------- knowledge conflict


@dataclass(frozen=True)
class ConflictPrompts:
    """A fact stated with a wrong attribute, then asked again: "The capital of France is Rome.
    The capital of France is". Rows are grouped by fact: `per_fact` counterfactuals each, in the
    order of the facts they were built from."""

    tokens: torch.Tensor          # [batch, pos]
    memory_answer: torch.Tensor   # [batch] the true attribute (the model's own answer without context)
    context_answer: torch.Tensor  # [batch] the counterfactual attribute the context sentence states
    subjects: list[str]           # the subject of each row
    per_fact: int                 # counterfactual rows per fact
    context_answer_pos: int       # position of the counterfactual attribute in the context sentence
    context_subject_pos: int      # position of the subject in the context sentence
    subject_pos: int              # position of the subject in the question (the second sentence)
    candidates: torch.Tensor      # the relation's answers the counterfactuals are drawn from


def conflict_prompts(tokenizer, facts: FactPrompts, template: str, *, seed: int,
                     per_fact: int = 1) -> ConflictPrompts:
    """Knowledge-conflict prompts from factual prompts `facts` of FACT_TEMPLATES[template] (for
    example the facts a model answers correctly): [BOS] + the template filled with the subject and
    a counterfactual attribute, a full stop, then the template again as the question. The
    counterfactual attributes of a fact are `per_fact` distinct answers of the same relation
    (facts.candidates) other than the true one, drawn with `seed`."""
    text = FACT_TEMPLATES[template][0]
    head, tail = text.split("{s}")
    bos = bos_prefix(tokenizer)
    first = encode(tokenizer, head.rstrip(" "))
    again = encode(tokenizer, " " + head.strip(" "))
    post, stop = encode(tokenizer, tail), encode(tokenizer, ".")
    pool = facts.candidates.tolist()
    rng = random.Random(seed)
    rows, memory, context, subjects = [], [], [], []
    for s, true in zip(facts.subjects, facts.answer.tolist()):
        ts = single_token(tokenizer, " " + s)
        wrong = rng.sample([c for c in pool if c != true], per_fact)
        for w in wrong:
            rows.append(bos + first + [ts] + post + [w] + stop + again + [ts] + post)
            memory.append(true)
            context.append(w)
            subjects.append(s)
    context_subject_pos = len(bos) + len(first)
    context_answer_pos = context_subject_pos + 1 + len(post)
    subject_pos = context_answer_pos + 1 + len(stop) + len(again)
    return ConflictPrompts(torch.tensor(rows, dtype=torch.long).view(len(rows), -1), torch.tensor(memory, dtype=torch.long),
                           torch.tensor(context, dtype=torch.long), subjects, per_fact, context_answer_pos,
                           context_subject_pos, subject_pos, facts.candidates)


# ----------------------------------------------------------------------------- in-context classification

# Two-class word pools for in-context classification with arbitrary labels (Yu and Ananiadou
# 2024 use " foo" / " bar"): the model cannot know which class a label stands for, only read it
# off the demonstrations. A pool's words are split in two by name, so heads chosen on one half
# of the words are judged on prompts built from the other half.
ICL_CLASSES: dict[str, tuple[list[str], list[str]]] = {
    "country-animal": (
        ["France", "Japan", "Italy", "Germany", "Spain", "Russia", "China", "Egypt", "Greece", "Canada",
         "Ireland", "Poland", "Norway", "Sweden", "Kenya", "Cuba", "Peru", "India", "Iran", "Brazil",
         "Mexico", "Turkey", "Chile", "Korea", "Austria", "Portugal", "Denmark", "Finland"],
        ["dog", "cat", "horse", "cow", "pig", "sheep", "lion", "tiger", "bear", "wolf", "fox", "mouse",
         "rabbit", "deer", "goat", "duck", "eagle", "snake", "frog", "monkey", "elephant", "whale",
         "shark", "owl", "chicken", "rat", "bird", "fish"]),
    "sentiment": (SENTIMENT_ADJECTIVES["positive"], SENTIMENT_ADJECTIVES["negative"]),
    "fruit-vehicle": (
        ["apple", "banana", "orange", "grape", "lemon", "cherry", "peach", "pear", "mango", "melon",
         "plum", "berry", "strawberry", "pineapple", "coconut", "lime", "kiwi", "apricot"],
        ["car", "bus", "truck", "train", "plane", "boat", "ship", "bike", "taxi", "van", "tractor",
         "jet", "helicopter", "motorcycle", "scooter", "tram", "subway", "yacht"]),
}
ICL_LABELS = (" foo", " bar")


@dataclass(frozen=True)
class ICLPrompts:
    """Few-shot classification prompts with arbitrary labels: n_demos demonstrations (half of
    each class, in a seeded order), then a query word of either class (balanced over the rows).
    All rows have the same length; `label_pos` are the positions of the demonstrations' label
    tokens, the same in every row."""

    tokens: torch.Tensor        # [batch, pos]
    demo_class: torch.Tensor    # [batch, n_demos] class (0/1) of each demonstration
    query_class: torch.Tensor   # [batch] class of the query word
    correct: torch.Tensor       # [batch] token of the label the demonstrations give the query's class
    wrong: torch.Tensor         # [batch] token of the other label
    label_pos: list[int]        # position of each demonstration's label token
    word_pos: list[int]         # position of each demonstration's word
    query_pos: int              # position of the query word
    labels: tuple[int, int]     # label token of class 0 and class 1
    queries: list[str]          # the query word of each row

    @property
    def same_class(self) -> torch.Tensor:
        """[batch, n_demos] True where the demonstration is of the query's class."""
        return self.demo_class == self.query_class[:, None]


def icl_words(tokenizer, task: str, half: str, split_seed: int) -> tuple[list[str], list[str]]:
    """The words of each class that are one token with a leading space, restricted to one half
    ('select' or 'test') of a seeded split made per class by name."""
    if task not in ICL_CLASSES:
        raise ValueError(f"unknown classification task {task!r}; known: {sorted(ICL_CLASSES)}")
    if half not in ("select", "test"):
        raise ValueError(f"half must be 'select' or 'test', not {half!r}")
    out = []
    for words in ICL_CLASSES[task]:
        names = sorted(w for w in dict.fromkeys(words) if single_token(tokenizer, " " + w) is not None)
        random.Random(int(split_seed)).shuffle(names)
        cut = len(names) // 2
        out.append(names[:cut] if half == "select" else names[cut:])
    return out[0], out[1]


def icl_prompts(tokenizer, task: str, *, half: str, split_seed: int, n_prompts: int, n_demos: int,
                seed: int, swap_labels: bool = False, template: str = "{x}:{y}\n") -> ICLPrompts:
    """In-context classification prompts: [BOS] + n_demos lines 'x: label' + the query line up
    to its label. Class 0 is labelled ICL_LABELS[0] (" foo") and class 1 ICL_LABELS[1] (" bar"),
    or the other way round with swap_labels. Each prompt has n_demos // 2 demonstrations of each
    class, shuffled with `seed`; the query word is never one of its demonstrations; rows
    alternate the query's class. Words come from icl_words(task, half, split_seed)."""
    if n_demos % 2:
        raise ValueError("n_demos must be even (half of the demonstrations per class)")
    pools = icl_words(tokenizer, task, half, split_seed)
    per = n_demos // 2
    if min(len(p) for p in pools) < per + 1:
        raise ValueError(f"task {task!r} keeps {[len(p) for p in pools]} single-token words in the "
                         f"{half} half; {per + 1} per class are needed")
    names = [single_token(tokenizer, s) for s in ICL_LABELS]
    if None in names:
        raise ValueError(f"the labels {ICL_LABELS} are not single tokens in this tokenizer")
    labels = (names[1], names[0]) if swap_labels else (names[0], names[1])
    parts = _template_parts(template)
    rng = random.Random(int(seed))
    rows, demo_cls, query_cls, queries = [], [], [], []
    for i in range(n_prompts):
        qc = i % 2
        query = rng.choice(pools[qc])
        demos = [(w, 0) for w in rng.sample(pools[0], per + 1) if w != query][:per]
        demos += [(w, 1) for w in rng.sample(pools[1], per + 1) if w != query][:per]
        rng.shuffle(demos)
        seq = bos_prefix(tokenizer)
        for w, c in demos:
            seq += _line(tokenizer, parts, w, ICL_LABELS[c ^ int(swap_labels)].strip())
        seq += _line(tokenizer, parts, query, None)
        rows.append(seq)
        demo_cls.append([c for _, c in demos])
        query_cls.append(qc)
        queries.append(query)
    if len({len(r) for r in rows}) != 1:
        raise ValueError("classification prompts came out with different lengths")
    pre, mid, post = parts
    n_pre, n_mid, n_post = (len(encode(tokenizer, s)) if s else 0 for s in (pre, mid, post))
    line = n_pre + 1 + n_mid + 1 + n_post
    start = len(bos_prefix(tokenizer))
    word_pos = [start + j * line + n_pre for j in range(n_demos)]
    label_pos = [p + 1 + n_mid for p in word_pos]
    query_pos = start + n_demos * line + n_pre
    qc_t = torch.tensor(query_cls)
    lab = torch.tensor(labels)
    return ICLPrompts(torch.tensor(rows), torch.tensor(demo_cls), qc_t, lab[qc_t], lab[1 - qc_t],
                      label_pos, word_pos, query_pos, labels, queries)


# ----------------------------------------------------------------------------- true and false statements


@dataclass(frozen=True)
class TruthStatements:
    """Statements of facts, true and false: "The capital of France is Paris." and "The capital of
    France is Rome.", optionally followed by a suffix the model's judgement is read after ("...
    Rome. This statement is"). Rows come in pairs, true then false, `per_fact` pairs per fact,
    facts in the order given. Each false attribute is another fact's true attribute, and every
    fact's attribute is used as a false one exactly `per_fact` times, so every attribute token
    is in as many true rows as false ones: the token alone does not tell the label."""

    tokens: torch.Tensor      # [batch, pos]
    label: torch.Tensor       # [batch] 1 true, 0 false
    fact: torch.Tensor        # [batch] index of the row's fact in `subjects`
    attribute: torch.Tensor   # [batch] the attribute token the statement gives
    subjects: list[str]       # one per fact
    per_fact: int             # (true, false) pairs per fact
    end_pos: int              # position of the full stop that ends the statement
    attribute_pos: int        # position of the attribute token


def truth_statements(tokenizer, facts: FactPrompts, *, seed: int, per_fact: int = 1,
                     suffix: str = "") -> TruthStatements:
    """True and false statements from factual prompts `facts` (FACT_TEMPLATES prompts ending just
    before the attribute, e.g. the facts a model answers correctly): the prompt, the attribute
    token, a full stop, then `suffix`. The facts are put in a cycle in a seeded random order;
    the false attributes of a fact are the true attributes of the facts `per_fact` seeded
    distinct steps ahead in the cycle, and a cycle is redrawn while any false attribute would
    be the fact's own attribute token (two countries can share a language)."""
    n = len(facts.subjects)
    if per_fact < 1 or per_fact > n - 1:
        raise ValueError(f"per_fact must be between 1 and {n - 1} for {n} facts; got {per_fact}")
    answers = facts.answer.tolist()
    rng = random.Random(seed)
    for _ in range(1000):
        order = list(range(n))
        rng.shuffle(order)
        steps = rng.sample(range(1, n), per_fact)
        at = {f: q for q, f in enumerate(order)}
        wrong = [[answers[order[(at[f] + s) % n]] for s in steps] for f in range(n)]
        if all(w != answers[f] for f in range(n) for w in wrong[f]):
            break
    else:
        raise ValueError("no cycle of the facts gives every fact false attributes other than its own")
    stop, tail = encode(tokenizer, "."), encode(tokenizer, suffix) if suffix else []
    rows, label, fact, attribute = [], [], [], []
    for f in range(n):
        prompt = facts.tokens[f].tolist()
        for w in wrong[f]:
            for a, lab in ((answers[f], 1), (w, 0)):
                rows.append(prompt + [a] + stop + tail)
                label.append(lab)
                fact.append(f)
                attribute.append(a)
    attribute_pos = facts.tokens.shape[1]
    return TruthStatements(torch.tensor(rows, dtype=torch.long), torch.tensor(label), torch.tensor(fact),
                           torch.tensor(attribute), list(facts.subjects), per_fact,
                           attribute_pos + len(stop), attribute_pos)
