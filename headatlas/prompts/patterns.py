"""Seeded prompt sets for the attention-pattern claims of the "attn" group: multiple-choice
questions with letter options, acronyms, Yes/No questions with both option orders, text whose
word segmentation is known, and plain token streams for positional and sink heads.

Like headatlas.prompts.probes, prompts are assembled from separately tokenized pieces whose
lengths are checked, so every prompt of a batch has the same length and the positions a score
needs (option letters, words, the Yes/No tokens) are known by construction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from headatlas.prompts.probes import FILLER
from headatlas.prompts.tokens import bos_prefix, encode, single_token, single_token_words
from headatlas.prompts import sampleable_token_ids

# ----------------------------------------------------------------------------- multiple choice

# Category -> members; every word is checked to be one token (with its leading space) and
# words failing that are dropped for the tokenizer at hand.
MC_CATEGORIES: dict[str, list[str]] = {
    "fruit": ["apple", "pear", "lemon", "grape", "peach", "banana", "cherry", "orange"],
    "animal": ["dog", "cat", "horse", "lion", "tiger", "sheep", "bear", "mouse"],
    "color": ["red", "blue", "green", "yellow", "black", "white", "brown", "purple"],
    "country": ["France", "Germany", "Japan", "China", "India", "Spain", "Italy", "Canada"],
    "number": ["two", "three", "four", "five", "six", "seven", "eight", "ten"],
}
MC_DISTRACTORS = ["table", "chair", "river", "stone", "paper", "window", "road", "music", "door",
                  "wall", "cloud", "shoe", "book", "glass", "floor", "box"]

# (demonstration/question block, option line, answer line). {cat}, {a} (its article), {L} (label)
# and {w} (word) are filled in; the label is the token the model must produce after the answer cue.
MC_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "question": ("Question: Which of these is {a} {cat}?\n", "{L}. {w}\n", "Answer:"),
    "parens": ("Which word names {a} {cat}?\n", "({L}) {w}\n", "The answer is ("),
    "inline": ("Pick the {cat}.", " {L}: {w}.", " Answer:"),
}


# Wiegreffe et al.'s synthetic Colors task: objects whose usual colour everyone knows, so a
# failure is one of using the answer format, not of knowledge. Object -> colour; objects that are
# not one token (with a leading space) in a tokenizer are dropped. Every colour word is a single
# token in the four tokenizers here; the wrong options are other colours of this list.
COLOR_OBJECTS: dict[str, str] = {
    "tomatoes": "red", "strawberries": "red", "blood": "red", "cherries": "red", "roses": "red",
    "grass": "green", "lettuce": "green", "spinach": "green", "broccoli": "green", "peas": "green",
    "frogs": "green", "snow": "white", "milk": "white", "sugar": "white", "salt": "white",
    "teeth": "white", "chalk": "white", "cotton": "white", "coal": "black", "charcoal": "black",
    "tar": "black", "ink": "black", "crows": "black", "chocolate": "brown", "coffee": "brown",
    "cocoa": "brown", "soil": "brown", "mud": "brown", "cinnamon": "brown", "carrots": "orange",
    "oranges": "orange", "pumpkins": "orange", "bananas": "yellow", "lemons": "yellow",
    "sunflowers": "yellow", "sky": "blue", "ocean": "blue", "blueberries": "blue",
    "lavender": "purple", "pigs": "pink",
}
COLORS = ["red", "green", "white", "black", "brown", "orange", "yellow", "blue", "purple", "pink"]

# Question blocks of the Colors task ({x}: the object), keyed like MC_TEMPLATES, whose option
# lines and answer cues they share.
COLOR_BLOCKS: dict[str, str] = {
    "question": "Question: What is the color of {x}?\n",
    "parens": "What is the usual color of {x}?\n",
    "inline": "Color of {x}?",
}
MC_TASKS = ("category", "color")


def color_objects(tokenizer, half: str = "all") -> list[str]:
    """The Colors objects that are single tokens here. `half` "select" / "test" keeps every
    other object of each colour (first, third, ... / second, fourth, ...), so heads chosen on one
    half are judged on objects they were not chosen on, with every colour in both halves."""
    if half not in ("all", "select", "test"):
        raise ValueError(f"unknown half {half!r}; expected 'all', 'select' or 'test'")
    kept = [o for o in COLOR_OBJECTS if single_token(tokenizer, " " + o) is not None]
    if half == "all":
        return kept
    seen: dict[str, int] = {}
    out = []
    for o in kept:
        i = seen[COLOR_OBJECTS[o]] = seen.get(COLOR_OBJECTS[o], -1) + 1
        if (i % 2 == 0) == (half == "select"):
            out.append(o)
    return out


@dataclass(frozen=True)
class MCQA:
    tokens: torch.Tensor            # [batch, pos]
    letter_pos: torch.Tensor        # [batch, n_options] positions of the test question's labels, by letter
    word_pos: torch.Tensor          # [batch, n_options] positions of the words those labels name, by letter
    answer: torch.Tensor            # [batch] index of the correct letter (0 = A)
    label_ids: torch.Tensor         # [n_options] token ids the model emits for each label
    labels: list[str]
    subjects: tuple[str, ...] = ()  # [batch] the test question's category or Colors object


def mcqa_prompts(tokenizer, *, n_prompts: int = 24, n_options: int = 4, n_shots: int = 3,
                 template: str = "question", seed: int = 0, balanced: bool = True, rotate: int = 0,
                 shuffle_labels: bool = False, task: str = "category", half: str = "all") -> MCQA:
    """Few-shot "which of these is a <category>" questions with letter-labelled options.

    Each prompt: n_shots solved questions, then the test question and the answer cue. Exactly
    one option belongs to the category, the others are everyday objects.

    `task="color"` asks instead for the usual colour of an object (Wiegreffe et al.'s Colors
    task, COLOR_OBJECTS): the options are four colours, one right; demonstrations and test
    questions take their objects from `half` (see color_objects), test objects in a seeded
    cycle so each appears about equally often. With `balanced`, the
    correct position of the test questions cycles through all options (then the batch is
    shuffled), so a head or a model that always favours one letter is at chance.

    `rotate` moves the test question's options down by that many places (wrapping), leaving
    every other token as it is: the same prompts with the correct answer under another letter,
    the corrupted run of a patching experiment.

    `shuffle_labels` lists each question's labels in a random order ("(C) dog (A) pen ..."),
    demonstrations included, so a letter no longer stands for a place in the list: what a head
    does for "B" can be told from what it does for the second option. Balance then cycles the
    correct letter. Positions and the answer are always indexed by letter (A first).
    """
    if template not in MC_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(MC_TEMPLATES)}")
    if task not in MC_TASKS:
        raise ValueError(f"unknown multiple-choice task {task!r}; known: {list(MC_TASKS)}")
    block, line, cue = MC_TEMPLATES[template]
    gen = torch.Generator().manual_seed(seed)
    labels = [chr(ord("A") + i) for i in range(n_options)]
    cats = {c: [w for w in ws if single_token(tokenizer, " " + w) is not None]
            for c, ws in MC_CATEGORIES.items()}
    cats = {c: ws for c, ws in cats.items() if len(ws) >= 2 and single_token(tokenizer, " " + c) is not None}
    distract = [w for w in MC_DISTRACTORS if single_token(tokenizer, " " + w) is not None]
    objects = color_objects(tokenizer, half) if task == "color" else []
    if task == "color" and len(objects) < n_shots + 1:
        raise ValueError(f"only {len(objects)} Colors objects are single tokens in this half; need {n_shots + 1}")

    def draw(key: str) -> tuple[str, str, list[str]]:
        """The question block, the right option and the wrong ones for a category / an object."""
        if task == "color":
            right = COLOR_OBJECTS[key]
            others = [c for c in COLORS if c != right]
            wrong = [others[j] for j in torch.randperm(len(others), generator=gen)[: n_options - 1].tolist()]
            return COLOR_BLOCKS[template].format(x=key), right, wrong
        right = cats[key][int(torch.randint(len(cats[key]), (1,), generator=gen))]
        wrong = [distract[j] for j in torch.randperm(len(distract), generator=gen)[: n_options - 1].tolist()]
        return block.format(cat=key, a="an" if key[0] in "aeiou" else "a"), right, wrong
    # The label as emitted after the cue: " A" after "Answer:", "A" after "(".
    emit_space = not cue.endswith("(")
    label_ids = [single_token(tokenizer, (" " if emit_space else "") + lab) for lab in labels]
    if any(i is None for i in label_ids):
        raise ValueError("option labels are not single tokens for this tokenizer")

    def piece(text: str) -> list[int]:
        return encode(tokenizer, text) if text else []

    pre, post = line.split("{L}")
    mid, end = post.split("{w}")
    # A space before the label or the word belongs to that token, as the tokenizer would have it.
    lab_sp, pre = (" ", pre[:-1]) if pre.endswith(" ") else ("", pre)
    word_sp, mid = (" ", mid[:-1]) if mid.endswith(" ") else ("", mid)
    label_tok = [single_token(tokenizer, lab_sp + lab) for lab in labels]
    if any(t is None for t in label_tok):
        raise ValueError(f"option labels are not single tokens in line {line!r}")

    def question(head: str, right: str, wrong: list[str], k: int, shift: int = 0,
                 perm: list[int] | None = None) -> tuple[list[int], list[int], list[int]]:
        """The question (block text `head`) with the right word at place k (before `shift`);
        `perm[p]` is the letter shown at place p. Returns the tokens and, by letter, the label and
        word positions."""
        perm = perm or list(range(n_options))
        seq = piece(head)
        lpos, wpos = [0] * n_options, [0] * n_options
        words = wrong[:k] + [right] + wrong[k:]
        if shift:
            words = words[-shift:] + words[:-shift]
        for p, w in enumerate(words):
            seq += piece(pre)
            lpos[perm[p]] = len(seq)
            seq += [label_tok[perm[p]]] + piece(mid)
            wpos[perm[p]] = len(seq)
            seq += piece(word_sp + w) + piece(end)
        return seq, lpos, wpos

    def shuffled() -> list[int] | None:
        return torch.randperm(n_options, generator=gen).tolist() if shuffle_labels else None

    order = torch.randperm(n_prompts, generator=gen).tolist()
    rows, lps, wps, answers, subjects = [], [], [], [], []
    keys = objects if task == "color" else list(cats)
    cycle = torch.randperm(len(objects), generator=gen).tolist() if task == "color" else []
    for i in range(n_prompts):
        seq = list(bos_prefix(tokenizer))
        # Demonstrations: other categories (objects of other colours) than the test question's,
        # answers at random positions.
        if task == "color":
            test_key = objects[cycle[i % len(objects)]]
            demo_keys = [o for o in keys if COLOR_OBJECTS[o] != COLOR_OBJECTS[test_key]]
        else:
            test_key = keys[int(torch.randint(len(keys), (1,), generator=gen))]
            demo_keys = [c for c in keys if c != test_key]
        demo_keys = [demo_keys[j] for j in torch.randperm(len(demo_keys), generator=gen).tolist()][:n_shots]
        for c in demo_keys:
            head, right, wrong = draw(c)
            k = int(torch.randint(n_options, (1,), generator=gen))
            perm = shuffled()
            q, _, _ = question(head, right, wrong, k, perm=perm)
            close = encode(tokenizer, ")") if cue.endswith("(") else []
            shown = perm[k] if perm else k
            seq += q + encode(tokenizer, cue) + [label_ids[shown]] + close + encode(tokenizer, "\n\n" if "\n" in block else " ")
        head, right, wrong = draw(test_key)
        k = order[i] % n_options if balanced else int(torch.randint(n_options, (1,), generator=gen))
        perm = shuffled()
        if perm and balanced:
            k = perm.index(k)                       # balance the correct letter, not its place
        q, lpos, wpos = question(head, right, wrong, k, rotate % n_options, perm)
        k = (k + rotate) % n_options
        lps.append([len(seq) + p for p in lpos])
        wps.append([len(seq) + p for p in wpos])
        seq += q + encode(tokenizer, cue)
        rows.append(seq)
        answers.append(perm[k] if perm else k)
        subjects.append(test_key)
    _equal(rows, f"multiple-choice prompts ({template})")
    return MCQA(torch.tensor(rows), torch.tensor(lps), torch.tensor(wps), torch.tensor(answers),
                torch.tensor(label_ids), labels, tuple(subjects))


def _equal(rows: list[list[int]], what: str) -> None:
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{what}: pieces tokenized to different lengths {sorted({len(r) for r in rows})}")


# ----------------------------------------------------------------------------- colored objects

# Merullo et al.'s Colored Objects task: three coloured objects are listed, then the colour of
# one of them is asked for and the model must name it. Objects are split in two halves by name
# (seeded) so heads chosen on one half are judged on objects they were not chosen on; colours
# are shared. Words that are not one token (with a leading space) in a tokenizer are dropped.
CO_OBJECTS = ["pen", "cup", "ball", "book", "hat", "shoe", "key", "box", "lamp", "chair", "mug", "bag",
              "sock", "plate", "bowl", "card", "coin", "phone", "clock", "car", "bike", "kite", "fork",
              "spoon", "bottle", "pencil", "shirt", "coat", "ring", "brush", "toy", "bucket", "candle",
              "scarf", "glove", "basket"]
CO_COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "purple", "pink", "gray"]

# (opening, item, last-item joiner, question before the object, after the object). Each item is
# " a {colour} {object}"; the question's object sits at a different distance from the last
# position in each template, so a head that reads a fixed offset cannot follow it.
CO_TEMPLATES: dict[str, tuple[str, str, str, str, str]] = {
    "table": ("On the table, I see", ",", " and", ". What color is the", "? Answer:"),
    "qa": ("Q: There is", ",", " and", " on the desk. What is the color of the", "?\nA:"),
    "cloze": ("In the box there are", ",", " and", ". The color of the", " is"),
}


@dataclass(frozen=True)
class ColoredObjects:
    """Colored Objects prompts, all of one length. Positions are the same in every row."""

    tokens: torch.Tensor        # [batch, pos]
    colors: torch.Tensor        # [batch, n_objects] colour token of each listed object, in order
    answer: torch.Tensor        # [batch] index of the asked-for object in the list
    color_pos: list[int]        # position of each listed object's colour
    object_pos: list[int]       # position of each listed object
    question_pos: int           # position of the object named in the question
    question_span: tuple[int, int]  # [start, end): from just after the list to the question's object, inclusive
    objects: tuple[str, ...]    # the asked-for object of each row

    @property
    def correct(self) -> torch.Tensor:
        """[batch] token of the asked-for object's colour."""
        return self.colors.gather(1, self.answer[:, None])[:, 0]


def colored_object_words(tokenizer, half: str, split_seed: int = 0) -> tuple[list[str], list[str]]:
    """(objects of `half`, colours): single-token words only; objects split by a seeded shuffle
    into 'select' and 'test' halves ('all' keeps both)."""
    if half not in ("select", "test", "all"):
        raise ValueError(f"half must be 'select', 'test' or 'all', not {half!r}")
    objects = sorted(w for w, _ in single_token_words(tokenizer, CO_OBJECTS))
    random.Random(int(split_seed)).shuffle(objects)
    cut = len(objects) // 2
    objects = {"select": objects[:cut], "test": objects[cut:], "all": objects}[half]
    return objects, [w for w, _ in single_token_words(tokenizer, CO_COLORS)]


def colored_objects_prompts(tokenizer, *, template: str = "table", n_prompts: int = 48, n_objects: int = 3,
                            seed: int = 0, half: str = "all", split_seed: int = 0) -> ColoredObjects:
    """[BOS] + the template with n_objects distinct objects of distinct colours; the asked-for
    object's place cycles through the list (row i asks for object i mod n_objects)."""
    if template not in CO_TEMPLATES:
        raise ValueError(f"unknown colored-objects template {template!r}; known: {sorted(CO_TEMPLATES)}")
    objects, colors = colored_object_words(tokenizer, half, split_seed)
    if len(objects) < n_objects or len(colors) < n_objects:
        raise ValueError(f"the {half} half keeps {len(objects)} single-token objects and {len(colors)} "
                         f"colours; {n_objects} of each are needed")
    opening, sep, last, before, after = CO_TEMPLATES[template]
    enc = {s: encode(tokenizer, s) for s in (opening, sep, last, before, after, " a")}
    rng = random.Random(int(seed))
    rows, cols, answers, asked = [], [], [], []
    for i in range(n_prompts):
        objs, cs = rng.sample(objects, n_objects), rng.sample(colors, n_objects)
        q = i % n_objects
        seq, color_pos, object_pos = bos_prefix(tokenizer) + enc[opening], [], []
        for j, (o, c) in enumerate(zip(objs, cs)):
            if j:
                seq += enc[last] if j == n_objects - 1 else enc[sep]
            seq += enc[" a"]
            color_pos.append(len(seq))
            seq += [single_token(tokenizer, " " + c)]
            object_pos.append(len(seq))
            seq += [single_token(tokenizer, " " + o)]
        start = len(seq)
        seq += enc[before]
        question_pos = len(seq)
        seq += [single_token(tokenizer, " " + objs[q])] + enc[after]
        rows.append(seq)
        cols.append([single_token(tokenizer, " " + c) for c in cs])
        answers.append(q)
        asked.append(objs[q])
    _equal(rows, f"colored-objects template {template!r}")
    return ColoredObjects(torch.tensor(rows), torch.tensor(cols), torch.tensor(answers), color_pos, object_pos,
                          question_pos, (start, question_pos + 1), tuple(asked))


# ----------------------------------------------------------------------------- yes / no

YES_NO_FACTS: list[tuple[str, str]] = [  # (member, category)
    ("apple", "fruit"), ("pear", "fruit"), ("lemon", "fruit"), ("grape", "fruit"),
    ("dog", "animal"), ("cat", "animal"), ("horse", "animal"), ("lion", "animal"),
    ("red", "color"), ("blue", "color"), ("green", "color"), ("yellow", "color"),
    ("rose", "flower"), ("oak", "tree"), ("pine", "tree"), ("tulip", "flower"),
]

# Instruction naming both options ({first} / {second} are " Yes" and " No" in some order), then
# the question ({x}: subject, {c}: category) and the answer cue.
YES_NO_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "answer-with": ("Answer with{first} or{second}.", " Question: Is a {x} a kind of {c}?", " Answer:"),
    "reply": ("Reply{first} or{second} only.", " Is {x} a {c}?", " Reply:"),
    "true-statement": ("Say{first} or{second}: is this statement true?", " A {x} is a {c}.", " Answer:"),
}


@dataclass(frozen=True)
class YesNo:
    tokens: torch.Tensor      # [batch, pos]
    yes_pos: torch.Tensor     # [batch] position of the " Yes" option token in the instruction
    no_pos: torch.Tensor      # [batch]
    query_start: torch.Tensor  # [batch] first position after the instruction
    truth: torch.Tensor       # [batch] 1 if the right answer is Yes
    yes_id: int               # the option tokens in the instruction
    no_id: int
    answer_yes_id: int        # the tokens the answer starts with (the option tokens unless in a chat reply)
    answer_no_id: int


def yes_no_prompts(tokenizer, *, n_prompts: int = 16, template: str = "answer-with", no_first: bool = False,
                   seed: int = 0, chat=None) -> YesNo:
    """Yes/No questions whose instruction names both options (Yu et al.'s binary-decision
    setting). Half the statements are true (a member of the category) and half false (a member
    of another category). `no_first` lists " No" before " Yes", so a head tied to the option's
    position can be told from one tied to the word "No".

    With `chat` (a headatlas.prompts.requests.ChatFormat) the instruction and question are the
    user's turn and the answer is the first token of the assistant's reply ("Yes" / "No", no
    space before them); the template's answer cue is left out."""
    if template not in YES_NO_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(YES_NO_TEMPLATES)}")
    instr, question, cue = YES_NO_TEMPLATES[template]
    yes, no = single_token(tokenizer, " Yes"), single_token(tokenizer, " No")
    if yes is None or no is None:
        raise ValueError("this tokenizer does not keep ' Yes' and ' No' as single tokens")
    answer_yes, answer_no = yes, no
    if chat is not None:
        answer_yes, answer_no = single_token(tokenizer, "Yes"), single_token(tokenizer, "No")
        if answer_yes is None or answer_no is None:
            raise ValueError("this tokenizer does not keep 'Yes' and 'No' as single tokens")
    facts = [(x, c) for x, c in YES_NO_FACTS
             if single_token(tokenizer, " " + x) is not None and single_token(tokenizer, " " + c) is not None]
    cats = sorted({c for _, c in facts})
    gen = torch.Generator().manual_seed(seed)
    first, second = (no, yes) if no_first else (yes, no)
    pre, rest = instr.split("{first}")
    mid, post = rest.split("{second}")
    rows, ypos, npos, starts, truth = [], [], [], [], []
    for i in range(n_prompts):
        x, c = facts[int(torch.randint(len(facts), (1,), generator=gen))]
        true = i % 2 == 0
        if not true:
            others = [k for k in cats if k != c]
            c = others[int(torch.randint(len(others), (1,), generator=gen))]
        if chat is None:
            seq = list(bos_prefix(tokenizer)) + encode(tokenizer, pre)
        else:
            seq = ([tokenizer.bos_token_id] if chat.bos else []) + encode(tokenizer, chat.before + pre)
        p1 = len(seq)
        seq += [first] + encode(tokenizer, mid)
        p2 = len(seq)
        seq += [second] + encode(tokenizer, post)
        starts.append(len(seq))
        q1, q2 = question.split("{x}")
        q2a, q2b = q2.split("{c}")
        # The space before a word belongs to the word's token.
        seq += encode(tokenizer, q1.rstrip(" ")) + encode(tokenizer, " " + x)
        seq += encode(tokenizer, q2a.rstrip(" ")) + encode(tokenizer, " " + c) + encode(tokenizer, q2b)
        seq += encode(tokenizer, cue) if chat is None else encode(tokenizer, chat.after)
        rows.append(seq)
        ypos.append(p2 if no_first else p1)
        npos.append(p1 if no_first else p2)
        truth.append(int(true))
    _equal(rows, f"yes/no prompts ({template})")
    perm = torch.randperm(n_prompts, generator=gen)
    return YesNo(torch.tensor(rows)[perm], torch.tensor(ypos)[perm], torch.tensor(npos)[perm],
                 torch.tensor(starts)[perm], torch.tensor(truth)[perm], yes, no, answer_yes, answer_no)


# ----------------------------------------------------------------------------- acronyms

ACRONYM_WORDS = [
    "Central", "Processing", "Unit", "Chief", "Executive", "Officer", "National", "Security", "Agency",
    "Federal", "Bureau", "General", "Public", "Health", "Service", "Research", "Development", "Program",
    "Market", "Value", "Energy", "Water", "Power", "System", "Control", "Network", "Data", "Center",
    "Bank", "World", "Trade", "Union", "Board", "Council", "Science", "Technology", "Design", "Analysis",
    "Support", "Management", "Quality", "Business", "Digital", "Media", "Global", "Local", "Open",
    "Project", "Policy", "Finance", "Group", "Training", "Learning", "Machine", "Human", "Resource",
    "Customer", "Product", "Sales", "Account", "Memory", "Access", "Random", "Key", "Light", "Sound",
    "Image", "Video", "Mobile", "Internet", "Foundation", "Institute", "Language", "Model", "Total",
    "Annual", "Budget", "Income", "Tax", "Youth", "Zone", "Justice", "Ocean", "Volunteer", "Island",
]

# {w1} {w2} {w3}: the words; {a}/{b}: their initials already written; the model must give the third.
ACRONYM_TEMPLATES: dict[str, tuple[str, str]] = {
    "the-parens": ("The{w1}{w2}{w3}", " ({a}.{b}."),
    "a-parens": ("A{w1}{w2}{w3}", " ({a}.{b}."),
    "welcome": ("Welcome to the{w1}{w2}{w3}", " ({a}.{b}."),
    "brackets": ("The{w1}{w2}{w3}", " [{a}.{b}."),
    "abbreviated": ("The{w1}{w2}{w3}", ", or {a}.{b}."),
    "known-as": ("Our{w1}{w2}{w3}", " is known as the {a}.{b}."),
}


@dataclass(frozen=True)
class Acronyms:
    clean: torch.Tensor         # [batch, pos]
    corrupted: torch.Tensor     # [batch, pos] the third word swapped for one with another initial
    word_pos: torch.Tensor      # [batch, 3] positions of the three words
    correct: torch.Tensor       # [batch] token of the third word's initial (the answer)
    wrong: torch.Tensor         # [batch] token of the corrupting word's initial
    letter_ids: torch.Tensor    # [26] capital letter tokens


def acronym_prompts(tokenizer, *, n_prompts: int = 16, template: str = "the-parens", seed: int = 0) -> Acronyms:
    """Three capitalised words, then their acronym written with dots up to the third letter
    ("The Board Mobile Zone (B.M." -> "Z"), after García-Carrasco et al.'s three-letter acronym
    task. Words are single tokens with distinct initials; the corrupted prompt replaces the
    third word by a word with yet another initial, so heads that move the right letter can be
    found by patching."""
    if template not in ACRONYM_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(ACRONYM_TEMPLATES)}")
    head, tail = ACRONYM_TEMPLATES[template]
    words = [w for w in ACRONYM_WORDS if single_token(tokenizer, " " + w) is not None]
    letter_ids = [single_token(tokenizer, chr(65 + i)) for i in range(26)]
    if any(i is None for i in letter_ids):
        raise ValueError("capital letters are not single tokens for this tokenizer")
    gen = torch.Generator().manual_seed(seed)
    pre = head.split("{w1}")[0]
    t_pre, t_post = tail.split("{a}")
    t_mid, t_end = t_post.split("{b}")
    clean, corrupt, wpos, correct, wrong = [], [], [], [], []
    while len(clean) < n_prompts:
        pick = [words[j] for j in torch.randperm(len(words), generator=gen)[:4].tolist()]
        w1, w2, w3, w4 = pick
        if len({w[0] for w in pick}) < 4:
            continue
        rows = []
        for third in (w3, w4):
            seq = list(bos_prefix(tokenizer)) + (encode(tokenizer, pre) if pre else [])
            pos = []
            for w in (w1, w2, third):
                pos.append(len(seq))
                seq += encode(tokenizer, " " + w)
            seq += encode(tokenizer, t_pre) + [letter_ids[ord(w1[0]) - 65]] + encode(tokenizer, t_mid) + \
                [letter_ids[ord(w2[0]) - 65]] + encode(tokenizer, t_end)
            rows.append((seq, pos))
        clean.append(rows[0][0])
        corrupt.append(rows[1][0])
        wpos.append(rows[0][1])
        correct.append(letter_ids[ord(w3[0]) - 65])
        wrong.append(letter_ids[ord(w4[0]) - 65])
    _equal(clean + corrupt, f"acronym prompts ({template})")
    return Acronyms(torch.tensor(clean), torch.tensor(corrupt), torch.tensor(wpos), torch.tensor(correct),
                    torch.tensor(wrong), torch.tensor(letter_ids))


def same_initial_words(tokenizer) -> list[torch.Tensor]:
    """Every token of the vocabulary that reads as a capitalised word with a leading space
    (" Sound", " Saturn": a space, a capital, two or more lowercase letters), grouped by initial:
    list index i holds those starting with chr(65 + i). These are the replacements an attack on an
    acronym's third word may use: any of them keeps the right answer, its initial."""
    import re

    word = re.compile(r"^ [A-Z][a-z]{2,}$")
    groups: list[list[int]] = [[] for _ in range(26)]
    for tid in range(len(tokenizer)):
        text = tokenizer.decode([tid])
        if word.match(text) and single_token(tokenizer, text) == tid:
            groups[ord(text[1]) - 65].append(tid)
    return [torch.tensor(g, dtype=torch.long) for g in groups]


# ----------------------------------------------------------------------------- needle in a haystack

# (cue before the needle in the context, question that ends with the same cue before the copy)
NEEDLE_TEMPLATES: dict[str, tuple[str, str]] = {
    "passkey": (" The secret passkey is", " What is the secret passkey? The secret passkey is"),
    "magic-word": (" My magic word is", " Which magic word did I mention? My magic word is"),
    "note": (" Note to self:", " Now repeat the note to self. Note to self:"),
}


@dataclass(frozen=True)
class Needle:
    """[BOS] haystack + cue + needle + haystack + question + needle (teacher-forced copy).
    At step j the model, at position answer_start + j - 1, must produce needle token j."""

    tokens: torch.Tensor        # [batch, pos]
    needle_start: torch.Tensor  # [batch]
    answer_start: torch.Tensor  # [batch]
    needle_len: int


def needle_prompts(tokenizer, vocab_size: int, *, n_prompts: int = 6, haystack_sentences: int = 12,
                   needle_len: int = 8, template: str = "passkey", seed: int = 0) -> Needle:
    """A needle of random ordinary tokens at a random depth of filler text, asked for back with
    the cue repeated, so the answer can only come from copying the needle. Like
    headatlas.prompts.probes.needle_prompts, with a choice of cue/question templates; rows are
    padded at the front with filler to one length."""
    if template not in NEEDLE_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(NEEDLE_TEMPLATES)}")
    cue_text, question_text = NEEDLE_TEMPLATES[template]
    gen = torch.Generator().manual_seed(seed)
    pool = sampleable_token_ids(tokenizer, vocab_size)
    # Ordinary tokens: skip single bytes and the rarest merges of very large vocabularies.
    pool = pool[(pool >= 256) & (pool < min(vocab_size, 50000))]
    cue, question = encode(tokenizer, cue_text), encode(tokenizer, question_text)
    bos = bos_prefix(tokenizer)
    rows, ns, ans = [], [], []
    for _ in range(n_prompts):
        order = torch.randperm(len(FILLER), generator=gen).tolist()
        sents = [FILLER[order[i % len(FILLER)]] for i in range(haystack_sentences)]
        depth = int(torch.randint(1, haystack_sentences, (1,), generator=gen))
        needle = pool[torch.randint(len(pool), (needle_len,), generator=gen)].tolist()
        before = [t for s in sents[:depth] for t in encode(tokenizer, s)]
        after = [t for s in sents[depth:] for t in encode(tokenizer, s)]
        seq = before + cue
        ns.append(len(seq))
        seq += needle + encode(tokenizer, ".") + after + question
        ans.append(len(seq))
        rows.append(seq + needle)
    width = max(len(r) for r in rows)
    pad = encode(tokenizer, FILLER[0])
    out = []
    for i, r in enumerate(rows):
        extra = width - len(r)
        filler = (pad * (extra // max(len(pad), 1) + 1))[:extra]
        out.append(bos + filler + r)
        ns[i] += len(bos) + extra
        ans[i] += len(bos) + extra
    return Needle(torch.tensor(out), torch.tensor(ns), torch.tensor(ans), needle_len)


# ----------------------------------------------------------------------------- running text

STORY = [
    " Mara packed a small bag and left the house before sunrise.",
    " The bus to the harbour was nearly empty that morning.",
    " She bought a cup of tea and watched the fishing boats come in.",
    " An old sailor told her the weather would turn by noon.",
    " By lunchtime dark clouds had gathered over the water.",
    " She walked back along the cliffs as the wind grew stronger.",
    " A shepherd was moving his flock down from the high field.",
    " He waved and pointed to a path that led to the village.",
    " The first drops of rain fell as she reached the church.",
    " Inside, a choir was practising a song for the festival.",
    " She sat at the back and listened until the storm had passed.",
    " In the evening she wrote a long letter to her brother.",
]

CORPORA: dict[str, list[str]] = {"filler": FILLER, "story": STORY}


def sentence_text(tokenizer, *, corpus: str = "filler", n_prompts: int = 2, n_tokens: int = 192,
                  seed: int = 0) -> torch.Tensor:
    """[BOS] + sentences of a small corpus in seeded random order, cut to n_tokens: [batch, n_tokens].
    Sentences recur within a text, so later tokens can be predicted from far back in the context
    (which heads that keep only a recent window cannot do)."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; known: {sorted(CORPORA)}")
    sents = CORPORA[corpus]
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_prompts):
        seq = list(bos_prefix(tokenizer))
        while len(seq) < n_tokens:
            seq += encode(tokenizer, sents[int(torch.randint(len(sents), (1,), generator=gen))])
        rows.append(seq[:n_tokens])
    return torch.tensor(rows)


# Python source built from seeded templates, for heads whose behaviour depends on the domain of
# the text (active-dormant heads: Guo et al. find one in Llama 2 active on code and dormant on
# prose). Names alternate between two halves so heads chosen on one are judged on the other.
CODE_NAMES = ["count", "total", "value", "items", "index", "result", "data", "name", "size", "width",
              "height", "offset", "buffer", "key", "node", "path", "line", "text", "score", "limit",
              "start", "stop", "step", "state"]
CODE_FUNCS = ["compute", "update", "parse", "load", "merge", "scale", "clean", "build", "fetch", "split",
              "check", "render", "apply", "reset", "store", "format"]
CODE_BLOCKS = [
    "def {f}({a}, {b}):\n    {x} = {a} + {b}\n    if {x} > {n}:\n        return {x} - {n}\n    return {x}\n\n",
    "def {f}({a}):\n    {x} = []\n    for {b} in range({n}):\n        {x}.append({a} * {b})\n    return {x}\n\n",
    "class {F}:\n    def __init__(self, {a}):\n        self.{a} = {a}\n        self.{x} = {n}\n\n",
    "{x} = {f}({n}, {m})\nprint({x})\n",
    "for {a} in range({n}):\n    if {a} % {m} == 0:\n        {x} += {a}\n",
    "{x} = {{\"{a}\": {n}, \"{b}\": {m}}}\n{x}[\"{a}\"] += 1\n",
    "while {a} < {n}:\n    {a} = {a} + {m}\n    {b} = {a} // 2\n",
    "import {f}\n{x} = {f}.{b}({a}, {n})\n",
]
TEXT_HALVES = ("all", "select", "test")


def half_slice(half: str) -> slice:
    """Every entry of a word list ("all"), or every other one: even places ("select") or odd
    ones ("test"), so what is chosen on one half is judged on words it never saw."""
    if half not in TEXT_HALVES:
        raise ValueError(f"unknown half {half!r}; expected one of {TEXT_HALVES}")
    return {"all": slice(None), "select": slice(0, None, 2), "test": slice(1, None, 2)}[half]


def code_text(tokenizer, *, n_prompts: int = 8, n_tokens: int = 96, seed: int = 0, half: str = "all") -> torch.Tensor:
    """[BOS] + seeded Python snippets (CODE_BLOCKS with names and numbers filled in), cut to
    n_tokens: [batch, n_tokens]. `half` "select" / "test" draws names from every other entry of
    CODE_NAMES and CODE_FUNCS (even / odd places)."""
    pick = half_slice(half)
    names, funcs = CODE_NAMES[pick], CODE_FUNCS[pick]
    gen = torch.Generator().manual_seed(seed)

    def draw(pool: list[str]) -> str:
        return pool[int(torch.randint(len(pool), (1,), generator=gen))]

    rows = []
    for _ in range(n_prompts):
        seq = list(bos_prefix(tokenizer))
        while len(seq) < n_tokens:
            block = CODE_BLOCKS[int(torch.randint(len(CODE_BLOCKS), (1,), generator=gen))]
            a, b, x = (names[j] for j in torch.randperm(len(names), generator=gen)[:3].tolist())
            f = draw(funcs)
            seq += encode(tokenizer, block.format(f=f, F=f.capitalize(), a=a, b=b, x=x,
                                                  n=int(torch.randint(2, 100, (1,), generator=gen)),
                                                  m=int(torch.randint(2, 10, (1,), generator=gen))))
        rows.append(seq[:n_tokens])
    return torch.tensor(rows)


def random_token_text(tokenizer, vocab_size: int, *, n_prompts: int = 4, n_tokens: int = 64, seed: int = 0,
                      repeat: bool = False) -> torch.Tensor:
    """[BOS] + uniformly random ordinary tokens ([batch, n_tokens]); with `repeat`, the second half
    repeats the first, which invites content-based (duplicate, induction) attention."""
    gen = torch.Generator().manual_seed(seed)
    pool = sampleable_token_ids(tokenizer, vocab_size)
    bos = bos_prefix(tokenizer)
    n = n_tokens - len(bos)
    if repeat:
        half = pool[torch.randint(len(pool), (n_prompts, n // 2), generator=gen)]
        body = torch.cat([half, half, pool[torch.randint(len(pool), (n_prompts, n - 2 * (n // 2)), generator=gen)]], 1)
    else:
        body = pool[torch.randint(len(pool), (n_prompts, n), generator=gen)]
    return torch.cat([torch.tensor([bos] * n_prompts, dtype=torch.long).reshape(n_prompts, len(bos)), body.long()], 1)


# ----------------------------------------------------------------------------- words in pieces

# Long, uncommon English words: most byte-pair vocabularies split them into several pieces.
LONG_WORDS = [
    "photosynthesis", "kaleidoscope", "onomatopoeia", "archaeologist", "parliamentarian", "thermodynamics",
    "circumnavigate", "hippopotamus", "chrysanthemum", "encyclopaedia", "ventriloquist", "metamorphosis",
    "procrastinate", "juxtaposition", "quintessential", "serendipitous", "idiosyncratic", "incomprehensible",
    "magnanimous", "obstreperous", "perspicacious", "sesquipedalian", "antediluvian", "lugubrious",
    "crepuscular", "pusillanimous", "grandiloquent", "perfunctory", "recalcitrant", "unfathomable",
    "xylophonist", "zoologically", "bureaucratization", "counterintuitively", "electroencephalogram",
    "misappropriation", "overcompensating", "phantasmagorical", "reconnaissance", "subterranean",
]
COMMON = ["house", "water", "music", "garden", "window", "river", "market", "letter", "table", "school",
          "teacher", "village", "forest", "mountain", "city", "road", "bread", "horse", "paper", "stone"]
SYLLABLES = ["bla", "zor", "quin", "trex", "vol", "mup", "dra", "snik", "plo", "gath", "wib", "yon",
             "frel", "kest", "ubo", "zan", "thrim", "oct", "lux", "pem"]


@dataclass(frozen=True)
class RareWords:
    tokens: torch.Tensor       # [batch, pos]
    rare: torch.Tensor         # [batch, pos] True at the tokens of the rare word
    common: torch.Tensor       # [batch, pos] True at the tokens of the common word
    queries: torch.Tensor      # [batch, pos] True at the positions after both words (where heads are read)


RARE_FRAME = " The word was{w}."


def rare_word_prompts(tokenizer, *, n_prompts: int = 16, n_tokens: int = 96, corpus: str = "filler",
                      half: str = "all", seed: int = 0) -> RareWords:
    """Running text (sentences of `corpus`) into which two sentences of the same frame are
    inserted, " The word was photosynthesis." and " The word was house.": one with an uncommon
    long word (LONG_WORDS), one with an everyday word (COMMON), in a seeded order, both in the
    first part of the text (at least 16 positions follow them). Only the word differs between the two, so a head that prefers the
    rare word from the positions after both prefers it for its rarity, not its place or frame.
    `half` "select" / "test" takes every other word of both lists (even / odd places)."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; known: {sorted(CORPORA)}")
    pick = half_slice(half)
    rares, commons = LONG_WORDS[pick], [w for w in COMMON[pick] if single_token(tokenizer, " " + w) is not None]
    sents = CORPORA[corpus]
    gen = torch.Generator().manual_seed(seed)

    def sentence() -> list[int]:
        return encode(tokenizer, sents[int(torch.randint(len(sents), (1,), generator=gen))])

    rows, rare_m, common_m, query_m = [], [], [], []
    for i in range(n_prompts):
        rare = rares[int(torch.randint(len(rares), (1,), generator=gen))]
        common = commons[int(torch.randint(len(commons), (1,), generator=gen))]
        order = [("rare", rare), ("common", common)] if i % 2 == 0 else [("common", common), ("rare", rare)]
        seq, marks = list(bos_prefix(tokenizer)), {}
        seq += sentence()
        for kind, word in order:
            pre, post = RARE_FRAME.split("{w}")
            seq += encode(tokenizer, pre)
            w = encode(tokenizer, " " + word)
            marks[kind] = list(range(len(seq), len(seq) + len(w)))
            seq += w + encode(tokenizer, post) + sentence()
        first_query = len(seq)                    # queries: after both frames and the sentence that follows
        while len(seq) < n_tokens:
            seq += sentence()
        if n_tokens - first_query < 16:
            raise ValueError(f"only {n_tokens - first_query} positions follow the inserted words; raise n_tokens ({n_tokens})")
        seq = seq[:n_tokens]
        mask = lambda idx: [j in idx for j in range(n_tokens)]  # noqa: E731
        rows.append(seq)
        rare_m.append(mask(set(marks["rare"])))
        common_m.append(mask(set(marks["common"])))
        query_m.append([j >= first_query for j in range(n_tokens)])
    t = torch.tensor
    return RareWords(t(rows), t(rare_m), t(common_m), t(query_m))


@dataclass(frozen=True)
class Words:
    tokens: torch.Tensor    # [batch, pos]
    word_ids: torch.Tensor  # [batch, pos] index of the word each token belongs to; -1 for BOS


def word_text(tokenizer, *, kind: str = "made-up", n_prompts: int = 4, n_words: int = 40, p_split: float = 0.4,
              seed: int = 0) -> Words:
    """A stream of space-separated words, common one-token words mixed with words that split into
    several pieces: made-up words of 2-3 random syllables (kind "made-up") or long real words
    ("real"), or both ("mixed"). Each word is tokenized on its own with its leading space, so
    which tokens form one word is known by construction. Rows are cut to the shortest."""
    if kind not in ("made-up", "real", "mixed"):
        raise ValueError(f"unknown kind {kind!r}; known: made-up, real, mixed")
    gen = torch.Generator().manual_seed(seed)
    rows, wids = [], []
    for _ in range(n_prompts):
        seq = list(bos_prefix(tokenizer))
        wid = [-1] * len(seq)
        for w in range(n_words):
            if float(torch.rand(1, generator=gen)) < p_split:
                real = kind == "real" or (kind == "mixed" and float(torch.rand(1, generator=gen)) < 0.5)
                if real:
                    word = LONG_WORDS[int(torch.randint(len(LONG_WORDS), (1,), generator=gen))]
                else:
                    n_syl = int(torch.randint(2, 4, (1,), generator=gen))
                    word = "".join(SYLLABLES[i] for i in torch.randint(len(SYLLABLES), (n_syl,), generator=gen).tolist())
            else:
                word = COMMON[int(torch.randint(len(COMMON), (1,), generator=gen))]
            ids = encode(tokenizer, " " + word)
            seq += ids
            wid += [w] * len(ids)
        rows.append(seq)
        wids.append(wid)
    width = min(len(r) for r in rows)
    return Words(torch.tensor([r[:width] for r in rows]), torch.tensor([w[:width] for w in wids]))


# ----------------------------------------------------------------------------- long-context copying

COPY_KINDS = ("random-tokens", "words", "key-value")
COPY_WORDS = sorted({w for ws in MC_CATEGORIES.values() for w in ws} | set(MC_DISTRACTORS) | set(COMMON))


@dataclass(frozen=True)
class LongCopy:
    """[BOS] + filler lead + passage + filler gap + second passage. The second passage repeats
    the first (kinds "random-tokens" and "words") or asks each key of the first's key-value pairs
    again in another order (kind "key-value"). Position p of `scored` is scored on predicting
    tokens[p + 1], a token that can only come from the first passage, `gap` or more tokens back."""

    tokens: torch.Tensor    # [batch, pos]
    scored: torch.Tensor    # [batch, m] positions whose next token is scored
    min_distance: int       # fewest positions from a scored query back to the key an induction
                            # head must read (the token after the earlier copy of the query's token)


def long_copy_prompts(tokenizer, vocab_size: int, *, kind: str = "random-tokens", n_prompts: int = 6,
                      items: int = 16, gap: int = 32, lead: int = 6, seed: int = 0) -> LongCopy:
    """Copying across a long gap, with the answer known by construction.

    kind "random-tokens": the passage is `items` random ordinary tokens; "words": `items`
    distinct common words (one token each, none that occurs in the filler); "key-value": `items`
    pairs " key value," of distinct words, asked again in a shuffled order, the value scored.
    Copy kinds score every passage token after the first (the first cannot be foreseen). The
    lead and the gap are filler sentences cut to `lead` and `gap` tokens."""
    if kind not in COPY_KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(COPY_KINDS)}")
    gen = torch.Generator().manual_seed(seed)
    filler_ids = {t for s in FILLER for t in encode(tokenizer, s)}
    words = torch.tensor([t for _, t in single_token_words(tokenizer, COPY_WORDS) if t not in filler_ids])
    pool = sampleable_token_ids(tokenizer, vocab_size)
    pool = pool[(pool >= 256) & (pool < min(vocab_size, 50000))]
    pool = pool[~torch.isin(pool, torch.tensor(sorted(filler_ids)))]
    need = 2 * items if kind == "key-value" else items
    if kind != "random-tokens" and len(words) < need:
        raise ValueError(f"only {len(words)} usable one-token words; kind {kind!r} with {items} items needs {need}")
    sep = encode(tokenizer, ",")
    bos = bos_prefix(tokenizer)
    rows, scored = [], []
    for _ in range(n_prompts):
        order = torch.randperm(len(FILLER), generator=gen).tolist()
        stream: list[int] = []
        i = 0
        while len(stream) < lead + gap:
            stream += encode(tokenizer, FILLER[order[i % len(FILLER)]])
            i += 1
        head, middle = stream[:lead], stream[lead: lead + gap]
        if kind == "random-tokens":
            first = pool[torch.randint(len(pool), (items,), generator=gen)].tolist()
            second, marks = list(first), list(range(items - 1))
        elif kind == "words":
            first = words[torch.randperm(len(words), generator=gen)[:items]].tolist()
            second, marks = list(first), list(range(items - 1))
        else:
            drawn = words[torch.randperm(len(words), generator=gen)[:need]].tolist()
            pairs = [(drawn[2 * j], drawn[2 * j + 1]) for j in range(items)]
            first = [t for k, v in pairs for t in [k, v] + sep]
            asked = [pairs[j] for j in torch.randperm(items, generator=gen).tolist()]
            second = [t for k, v in asked for t in [k, v] + sep]
            marks = [j * (2 + len(sep)) for j in range(items)]           # each key: predict its value
        start = len(bos) + lead + len(first) + gap
        rows.append(bos + head + first + middle + second)
        scored.append([start + m for m in marks])
    tokens = torch.tensor(rows)
    pos = torch.tensor(scored)
    return LongCopy(tokens, pos, _min_distance(tokens, pos))


def _min_distance(tokens: torch.Tensor, scored: torch.Tensor) -> int:
    """Fewest positions from a scored query back to the key after the latest earlier occurrence
    of the query's token (where an induction head must look)."""
    best = tokens.shape[1]
    for b in range(tokens.shape[0]):
        for p in scored[b].tolist():
            earlier = (tokens[b, :p] == tokens[b, p]).nonzero().flatten()
            if earlier.numel():
                best = min(best, p - (int(earlier[-1]) + 1))
    return int(best)
