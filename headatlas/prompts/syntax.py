"""Seeded English sentences whose dependency arcs are known by construction, for scoring
syntactic heads in causal models.

A sentence is built from a template of phrase slots ("S P D V O ." : a subject noun phrase, a
preposition, a distractor noun phrase, the main verb, its object noun phrase, a full stop). Every
word is one token with its leading space in the tokenizer at hand (words that are not are left
out of the lists for that tokenizer), so the position of every word is known, and so is each arc
of the three relations a causal model can follow from the later word back to the earlier one:

- `det`: a noun attends to its determiner, with 0 to `max_adjectives` adjectives in between;
- `nsubj`: the main verb attends to its subject noun, with one or more nouns in between (in a
  prepositional phrase or a relative clause), so the nearest noun is never the subject;
- `obj`: the main verb's object noun attends back to the verb, across its determiner and any
  adjectives.

For each arc the record keeps the query position (the later word), the gold position (the word it
is linked to) and, for `nsubj`, the nearest noun before the verb that is not its subject (the
distractor a head tracking "the last noun" would pick). Prompts of one batch differ in length;
rows are padded on the right, which a causal model never attends to from the real tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.prompts.tokens import bos_prefix, encode, single_token

# (singular, plural)
SYNTAX_NOUNS = [
    ("dog", "dogs"), ("cat", "cats"), ("man", "men"), ("woman", "women"), ("boy", "boys"), ("girl", "girls"),
    ("king", "kings"), ("queen", "queens"), ("bird", "birds"), ("horse", "horses"), ("teacher", "teachers"),
    ("doctor", "doctors"), ("farmer", "farmers"), ("child", "children"), ("friend", "friends"),
    ("baker", "bakers"), ("cook", "cooks"), ("guard", "guards"), ("pilot", "pilots"), ("nurse", "nurses"),
    ("student", "students"), ("singer", "singers"), ("driver", "drivers"), ("sailor", "sailors"),
    ("soldier", "soldiers"), ("lawyer", "lawyers"), ("judge", "judges"), ("artist", "artists"),
    ("writer", "writers"), ("player", "players"), ("box", "boxes"), ("door", "doors"), ("table", "tables"),
    ("car", "cars"), ("book", "books"), ("key", "keys"), ("tree", "trees"), ("house", "houses"),
    ("river", "rivers"), ("road", "roads"), ("window", "windows"), ("chair", "chairs"), ("bottle", "bottles"),
    ("letter", "letters"), ("garden", "gardens"), ("bag", "bags"), ("cup", "cups"), ("coat", "coats"),
    ("hat", "hats"), ("map", "maps"), ("ship", "ships"), ("ball", "balls"), ("shoe", "shoes"),
    ("clock", "clocks"), ("lamp", "lamps"), ("desk", "desks"), ("bed", "beds"), ("wall", "walls"),
    ("gate", "gates"), ("bridge", "bridges"), ("tower", "towers"), ("lake", "lakes"), ("hill", "hills"),
    ("field", "fields"), ("park", "parks"), ("shop", "shops"), ("room", "rooms"),
]
SYNTAX_ADJECTIVES = [
    "old", "new", "big", "small", "red", "green", "tall", "young", "happy", "dark", "quiet", "heavy", "cold",
    "bright", "short", "long", "little", "strong", "clean", "empty", "warm", "brown", "white", "black", "blue",
]
# (past, present singular, present plural): the past carries no number, the present agrees.
SYNTAX_VERBS = [
    ("saw", "sees", "see"), ("found", "finds", "find"), ("took", "takes", "take"), ("made", "makes", "make"),
    ("left", "leaves", "leave"), ("held", "holds", "hold"), ("kept", "keeps", "keep"), ("met", "meets", "meet"),
    ("liked", "likes", "like"), ("moved", "moves", "move"), ("pushed", "pushes", "push"),
    ("watched", "watches", "watch"), ("followed", "follows", "follow"), ("touched", "touches", "touch"),
    ("helped", "helps", "help"), ("called", "calls", "call"), ("pulled", "pulls", "pull"),
    ("carried", "carries", "carry"), ("painted", "paints", "paint"), ("cleaned", "cleans", "clean"),
    ("visited", "visits", "visit"), ("opened", "opens", "open"), ("loved", "loves", "love"),
    ("sold", "sells", "sell"), ("bought", "buys", "buy"), ("chose", "chooses", "choose"),
    ("broke", "breaks", "break"), ("closed", "closes", "close"), ("washed", "washes", "wash"),
]
SYNTAX_PREPOSITIONS = ["near", "behind", "with", "under", "beside", "above", "from", "by", "inside"]
# Sentence-initial prepositions of the lead-in phrase (written without a leading space).
SYNTAX_LEADS = ["Near", "Behind", "Under", "Beside", "Above", "Inside", "After", "Before"]
# (singular, plural) determiners
SYNTAX_DETERMINERS = [("the", "the"), ("this", "these"), ("each", "some")]

# Slots: S subject NP, O object NP of the main verb, D another NP (a distractor), P preposition,
# V main verb, v verb of a relative clause, L sentence-initial preposition; anything else is a
# literal word ("that") or punctuation ("," "."). A V belongs to the last S before it, an O to the
# last V before it.
SYNTAX_TEMPLATES: dict[str, str] = {
    "pp": "S P D V O .",                        # The dog near the old box saw the cat.
    "pp-two": "S P D P D V O .",                # The dog near the box by the lamp saw the cat.
    "lead-pp": "L D , S P D V O .",             # Near the lake, the dog by the box saw the cat.
    "subj-rel": "S that v D V O .",             # The dog that saw the cat chased the bird.
    "obj-rel": "S that D v V O .",              # The dog that the cat saw chased the bird.
    "two-sentences": "S P D V O . S P D V O .",  # two sentences; arcs in both
}
RELATIONS = ("det", "nsubj", "obj")


@dataclass(frozen=True)
class DependencyArcs:
    tokens: torch.Tensor                 # [batch, pos], right-padded
    lengths: torch.Tensor                # [batch] real tokens per row (BOS included)
    arcs: dict[str, torch.Tensor]        # relation -> [n_arcs, 3]: (row, query position, gold position)
    distractors: dict[str, torch.Tensor]  # relation -> [n_arcs]: nearest other noun before the query (-1: none)
    templates: list[str]                 # the template of each row
    words: list[list[str]]               # each row's words and punctuation, one per token after BOS
    has_bos: bool
    seed: int


def _one(tokenizer, word: str, initial: bool = False) -> bool:
    """Whether `word` is one token where it stands: capitalised without a space at the start of
    a sentence, else with its leading space."""
    return single_token(tokenizer, word.capitalize() if initial else " " + word) is not None


def dependency_prompts(tokenizer, *, templates: list[str] | str = "pp", n_prompts: int = 96, seed: int = 0,
                       max_adjectives: int = 2, tense: str = "past") -> DependencyArcs:
    """`n_prompts` sentences cycling through `templates` (row i uses templates[i % len]).

    Nouns and verbs are drawn without repetition inside a row, each noun phrase gets 0 to
    `max_adjectives` distinct adjectives (uniformly), all from a generator seeded with `seed`.
    Words that are not one token in this tokenizer (in every form used) are left out.

    tense "past": verbs in the past tense, nouns singular: nothing but word order and the
    sentence's structure links a verb to its subject. tense "present": the main verb agrees with
    its subject, whose number alternates over rows, and every noun between the subject and its
    verb has the other number (an agreement attractor, as in "The key to the cabinets opens");
    a relative clause's verb agrees with its own subject."""
    names = [templates] if isinstance(templates, str) else list(templates)
    unknown = [t for t in names if t not in SYNTAX_TEMPLATES]
    if not names or unknown:
        raise ValueError(f"unknown template(s) {unknown or names!r}; known: {sorted(SYNTAX_TEMPLATES)}")
    if tense not in ("past", "present"):
        raise ValueError(f"unknown tense {tense!r}; known: past, present")
    nouns = [n for n in SYNTAX_NOUNS if all(_one(tokenizer, w) for w in n)]
    verbs = [v for v in SYNTAX_VERBS if all(_one(tokenizer, w) for w in v)]
    adjs = [a for a in SYNTAX_ADJECTIVES if _one(tokenizer, a)]
    preps = [w for w in SYNTAX_PREPOSITIONS if _one(tokenizer, w)]
    leads = [w for w in SYNTAX_LEADS if _one(tokenizer, w, initial=True)]
    dets = [d for d in SYNTAX_DETERMINERS if all(_one(tokenizer, w) and _one(tokenizer, w, initial=True) for w in d)]
    if min(len(nouns), len(adjs), len(verbs)) < 12 or not preps or not leads or not dets:
        raise ValueError("too few single-token words for this tokenizer to build dependency prompts")
    gen = torch.Generator().manual_seed(seed)

    def draw(n: int) -> int:
        return int(torch.randint(n, (1,), generator=gen))

    bos = bos_prefix(tokenizer)
    rows, row_words, used_templates = [], [], []
    arcs: dict[str, list[tuple[int, int, int]]] = {r: [] for r in RELATIONS}
    dist: dict[str, list[int]] = {r: [] for r in RELATIONS}
    for i in range(n_prompts):
        name = names[i % len(names)]
        seq, words = list(bos), []
        noun_iter = iter(torch.randperm(len(nouns), generator=gen).tolist())
        verb_iter = iter(torch.randperm(len(verbs), generator=gen).tolist())
        nouns_here: list[tuple[int, int]] = []   # (position, plural) of each noun so far in the sentence
        subj = verb = -1
        subj_plural = bool(i // len(names) % 2)  # alternates over the rows of one template
        start = True  # the next word opens a sentence: capitalised, no leading space
        prev = ""

        def word(w: str) -> int:
            nonlocal start
            text = w.capitalize() if start else " " + w
            seq.append(single_token(tokenizer, text))
            words.append(text)
            start = False
            return len(seq) - 1

        for slot in SYNTAX_TEMPLATES[name].split():
            if slot in ("S", "O", "D"):
                if tense == "past":
                    plural = False
                elif slot == "S":
                    plural = subj_plural
                elif slot == "D" and subj >= 0:
                    plural = not subj_plural    # between the subject and its verb: an attractor
                else:
                    plural = bool(draw(2))
                det_pos = word(dets[draw(len(dets))][plural])
                for j in torch.randperm(len(adjs), generator=gen)[:draw(max_adjectives + 1)].tolist():
                    word(adjs[j])
                noun_pos = word(nouns[next(noun_iter)][plural])
                arcs["det"].append((i, noun_pos, det_pos))
                dist["det"].append(-1)
                if slot == "S":
                    subj = noun_pos
                elif slot == "O":
                    arcs["obj"].append((i, noun_pos, verb))
                    dist["obj"].append(-1)
                nouns_here.append((noun_pos, plural))
            elif slot in ("V", "v"):
                forms = verbs[next(verb_iter)]
                if slot == "V":
                    agree = subj_plural
                else:  # a relative clause's verb: "S that v" has S as subject, "S that D v" has D
                    agree = subj_plural if prev == "that" else nouns_here[-1][1]
                pos = word(forms[0] if tense == "past" else forms[2 if agree else 1])
                if slot == "V":
                    verb = pos
                    arcs["nsubj"].append((i, pos, subj))
                    between = [p for p, _ in nouns_here if p > subj]
                    dist["nsubj"].append(max(between) if between else -1)
            elif slot == "P":
                word(preps[draw(len(preps))])
            elif slot == "L":
                word(leads[draw(len(leads))])
            elif slot in (",", "."):
                piece = encode(tokenizer, slot)
                if len(piece) != 1:
                    raise ValueError(f"{slot!r} is not one token for this tokenizer")
                seq += piece
                words.append(slot)
                if slot == ".":
                    start, subj, verb, nouns_here = True, -1, -1, []
            else:
                if not _one(tokenizer, slot):
                    raise ValueError(f"{slot!r} is not one token for this tokenizer")
                word(slot)
            prev = slot
        rows.append(seq)
        row_words.append(words)
        used_templates.append(name)
    width = max(len(r) for r in rows)
    pad = encode(tokenizer, ".")[0]
    tokens = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    return DependencyArcs(tokens, torch.tensor([len(r) for r in rows]),
                          {r: torch.tensor(a, dtype=torch.long).reshape(-1, 3) for r, a in arcs.items()},
                          {r: torch.tensor(d, dtype=torch.long) for r, d in dist.items()},
                          used_templates, row_words, bool(bos), seed)


def from_spec(tokenizer, data: dict) -> DependencyArcs:
    """A claim's `data:` mapping (generator: dependency-arcs) -> its prompts."""
    if data.get("generator") != "dependency-arcs":
        raise ValueError(f"unknown data generator {data.get('generator')!r}; known: dependency-arcs")
    return dependency_prompts(tokenizer, templates=data["templates"], n_prompts=int(data["n_prompts"]),
                              seed=int(data["seed"]), max_adjectives=int(data.get("max_adjectives", 2)),
                              tense=str(data.get("tense", "past")))
