"""Trained toy models as models of the atlas: a spec (task, architecture, optimiser, steps, seed)
in catalogue/models.yaml -> a small transformer trained deterministically on CPU, cached by the
spec's hash under headatlas.models.cache_root()/toy/<hash>/.

Four tasks, each the synthetic setting a head type was found in:

- `induction`: a random block repeated once, then filler (Olsson et al.; see methods.toy).
  Roles: a layer-0 previous-token head and a layer-1 induction head.
- `parity`: bits x_1..x_n, an end-of-input marker, then the running parity s_1..s_n written out
  as chain-of-thought (Cabannes et al.). Role: the iteration head, which at output step t
  attends to input position t.
- `bigram`: a global Markov chain (the same for every seed) in which a few trigger tokens are
  followed by a sequence-specific token instead (Bietti et al.). Embeddings stay frozen at
  their random start, so what is learned sits in the attention weights. Roles: the global-
  bigram memory head (its OV circuit, read over the vocabulary, returns each token's trained
  successor) and the induction head for the in-context bigrams.
- `backcopy`: Bigram-Backcopy (Guo et al.): a global Markov chain after a BOS token, except that
  a trigger token is followed by a copy of the token before it. Role: the active-dormant head,
  which copies on triggers and parks on BOS elsewhere.

Every evaluation step records each role's best head and score, so formation steps can be read
from the curve; the weights at each evaluation step are kept as checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import torch
from torch import nn

from headatlas.methods import toy as _toy

TOY_FORMAT = 1
FORM_THRESHOLD = 0.5   # a role has formed when its head's score first exceeds this
# ... except the previous-token head of `induction`, whose score (attention to q - 1 averaged over
# every position, filler included) levels off near 0.5 in every seed; 0.3 marks its rise.
FORM_THRESHOLDS = {"previous_token": 0.3}
# Roles read from a whole layer, not one head: the associative memory is the layer's summed OV map
# (Bietti et al.'s layers have one head each; with several heads the memory is shared among them).
# Their score table has one column per layer and their "head" is written "L.*".
LAYER_ROLES = ("memory",)
TASKS = ("induction", "parity", "bigram", "backcopy")


# ----------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class ToySpec:
    task: str
    task_params: dict
    architecture: dict
    optimiser: dict
    steps: int
    seed: int
    eval_every: int = 25

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "task_params": dict(self.task_params), "architecture": dict(self.architecture),
                "optimiser": dict(self.optimiser), "steps": int(self.steps), "seed": int(self.seed),
                "eval_every": int(self.eval_every)}

    @property
    def sha256(self) -> str:
        blob = json.dumps({"format": TOY_FORMAT, "spec": self.as_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_(self, **changes) -> "ToySpec":
        d = self.as_dict()
        d.update(changes)
        return ToySpec(**d)

    @classmethod
    def from_source(cls, src) -> "ToySpec":
        return cls(task=src.task, task_params=dict(src.task_params or {}), architecture=dict(src.architecture),
                   optimiser=dict(src.optimiser), steps=int(src.steps), seed=int(src.seed),
                   eval_every=int(src.eval_every or 25))


# ----------------------------------------------------------------------------- model


class ToyTransformer(nn.Module):
    """Token + learned positional embeddings, n_layers of causal multi-head attention (each
    followed by a ReLU MLP when d_mlp > 0), no layer norm, unembedding.

    forward(tokens, zero_heads=()) -> (logits, cache) with cache["pattern"][l] [b, h, q, k],
    cache["v"][l] [b, s, h, d_head] and cache["head_out"][l] [b, s, h, d_model] (each head's
    write to the residual stream)."""

    def __init__(self, vocab: int, d_model: int, n_heads: int, n_layers: int, n_ctx: int, d_mlp: int = 0,
                 init_embed: float = 0.5, freeze_embeddings: bool = False):
        super().__init__()
        self.cfg = SimpleNamespace(n_layers=n_layers, n_heads=n_heads, d_model=d_model, d_head=d_model // n_heads,
                                   d_vocab=vocab, n_ctx=n_ctx, d_mlp=d_mlp)
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(n_ctx, d_model)
        self.qkv = nn.ModuleList([nn.Linear(d_model, 3 * d_model, bias=False) for _ in range(n_layers)])
        self.out = nn.ModuleList([nn.Linear(d_model, d_model, bias=False) for _ in range(n_layers)])
        self.mlp = nn.ModuleList([nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))
                                  for _ in range(n_layers)]) if d_mlp else None
        self.unembed = nn.Linear(d_model, vocab, bias=False)
        nn.init.normal_(self.embed.weight, std=init_embed)
        nn.init.normal_(self.pos.weight, std=init_embed)
        if freeze_embeddings:  # Bietti et al.: embeddings and unembedding stay at their random init
            for p in (self.embed.weight, self.pos.weight, self.unembed.weight):
                p.requires_grad_(False)

    def w_ov(self, layer: int, head: int) -> torch.Tensor:
        """The head's OV map [d_model (in), d_model (out)]: x @ w_ov is what it writes for input x."""
        dh, d = self.d_head, self.cfg.d_model
        w_v = self.qkv[layer].weight[2 * d + head * dh: 2 * d + (head + 1) * dh]      # [dh, d]
        w_o = self.out[layer].weight[:, head * dh: (head + 1) * dh]                  # [d, dh]
        return w_v.T @ w_o.T

    def forward(self, tokens: torch.Tensor, zero_heads: Sequence[tuple[int, int]] = ()):
        b, s = tokens.shape
        x = self.embed(tokens) + self.pos(torch.arange(s))
        mask = torch.ones(s, s, dtype=torch.bool).tril()
        cache: dict[str, list] = {"pattern": [], "v": [], "head_out": []}
        d = self.cfg.d_model
        for layer in range(self.cfg.n_layers):
            q, k, v = self.qkv[layer](x).view(b, s, 3, self.n_heads, self.d_head).unbind(2)
            scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.d_head)
            pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)
            drop = [h for (zl, h) in zero_heads if zl == layer]
            if drop:
                keep = torch.ones(self.n_heads)
                keep[drop] = 0
                z = z * keep[None, None, :, None]
            w_o = self.out[layer].weight.view(d, self.n_heads, self.d_head)
            head_out = torch.einsum("bqhd,mhd->bqhm", z, w_o)
            cache["pattern"].append(pattern)
            cache["v"].append(v)
            cache["head_out"].append(head_out)
            x = x + head_out.sum(2)
            if self.mlp is not None:
                x = x + self.mlp[layer](x)
        return self.unembed(x), cache


def build(spec: ToySpec) -> ToyTransformer:
    a = spec.architecture
    return ToyTransformer(int(a["vocab"]), int(a["d_model"]), int(a["n_heads"]), int(a["n_layers"]), int(a["n_ctx"]),
                          int(a.get("d_mlp", 0)), float(a.get("init_embed", 0.5)), bool(a.get("freeze_embeddings", False)))


# ----------------------------------------------------------------------------- tasks


def _successors(vocab: int, seed: int, avoid: Sequence[int] = ()) -> torch.Tensor:
    """Each token's preferred successor in the global Markov chain (a fixed random map)."""
    gen = torch.Generator().manual_seed(seed)
    allowed = torch.tensor([t for t in range(vocab) if t not in set(avoid)])
    return allowed[torch.randint(len(allowed), (vocab,), generator=gen)]


def _markov_step(prev: torch.Tensor, succ: torch.Tensor, p_succ: float, allowed: torch.Tensor,
                 gen: torch.Generator, triggers: torch.Tensor, p_trigger: float) -> torch.Tensor:
    """Next tokens: a random trigger with probability p_trigger, else the successor of `prev`
    with probability p_succ, else uniform over `allowed`."""
    n = prev.shape[0]
    take = torch.rand(n, generator=gen) < p_succ
    rand = allowed[torch.randint(len(allowed), (n,), generator=gen)]
    jump = torch.rand(n, generator=gen) < p_trigger
    trig = triggers[torch.randint(len(triggers), (n,), generator=gen)]
    return torch.where(jump, trig, torch.where(take, succ[prev], rand))


def batch(spec: ToySpec, n: int, seed: int | torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of the spec's task: tokens [n, s], loss_mask [n, s] (positions whose next token is
    trained and scored) and the task's role targets."""
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    a, p = spec.architecture, spec.task_params
    vocab, n_ctx = int(a["vocab"]), int(a["n_ctx"])
    if spec.task == "induction":
        tokens, lengths = _toy.repeated_batch(gen, n, n_ctx, vocab)
        rows, target = _toy.induction_masks(lengths, n_ctx)
        return {"tokens": tokens, "loss_mask": torch.ones_like(tokens, dtype=torch.bool), "lengths": lengths,
                "induction_rows": rows, "induction_target": target}
    if spec.task == "parity":
        n_min, n_max = int(p["n_min"]), int(p["n_max"])
        eoi, pad = 2, 3
        lengths = torch.randint(n_min, n_max + 1, (n,), generator=gen)
        bits = torch.randint(2, (n, n_max), generator=gen)
        tokens = torch.full((n, n_ctx), pad)
        mask = torch.zeros(n, n_ctx, dtype=torch.bool)
        key = torch.zeros(n, n_ctx, dtype=torch.long)
        for i, m in enumerate(lengths.tolist()):
            x = bits[i, :m]
            tokens[i, :m] = x
            tokens[i, m] = eoi
            tokens[i, m + 1: 2 * m + 1] = x.cumsum(0) % 2
            mask[i, m: 2 * m] = True                              # query n+t-1 predicts s_t
            key[i, m: 2 * m] = torch.arange(m)                    # ... from input x_t at t-1
        return {"tokens": tokens, "loss_mask": mask, "lengths": lengths, "iteration_target": key}
    if spec.task == "bigram":
        triggers = torch.tensor(p["triggers"])
        succ = _successors(vocab, int(p["markov_seed"]), avoid=p["triggers"])
        allowed = torch.arange(vocab)
        tokens = torch.zeros(n, n_ctx, dtype=torch.long)
        outputs = torch.randint(vocab, (n, len(triggers)), generator=gen)   # per-sequence trigger outputs
        tokens[:, 0] = torch.randint(vocab, (n,), generator=gen)
        for t in range(1, n_ctx):
            prev = tokens[:, t - 1]
            nxt = _markov_step(prev, succ, float(p["p_succ"]), allowed, gen, triggers, float(p.get("p_trigger", 0)))
            is_trig = (prev[:, None] == triggers[None]).float()
            chosen = (is_trig * outputs).sum(1).long()
            tokens[:, t] = torch.where(is_trig.any(1), chosen, nxt)
        # in-context rows: a trigger seen before; its target key is the position after its first copy
        rows = torch.zeros(n, n_ctx, dtype=torch.bool)
        target = torch.zeros(n, n_ctx, dtype=torch.long)
        trig = (tokens[..., None] == triggers).any(-1)
        for i in range(n):
            first: dict[int, int] = {}
            for t in range(n_ctx - 1):
                if trig[i, t]:
                    tok = int(tokens[i, t])
                    if tok in first:
                        rows[i, t], target[i, t] = True, first[tok] + 1
                    else:
                        first[tok] = t
        return {"tokens": tokens, "loss_mask": torch.ones_like(tokens, dtype=torch.bool), "trigger": trig,
                "induction_rows": rows, "induction_target": target, "successor": succ}
    if spec.task == "backcopy":
        bos = 0
        triggers = torch.tensor(p["triggers"])
        normal = torch.tensor([t for t in range(1, vocab) if t not in set(p["triggers"])])
        succ = _successors(vocab, int(p["markov_seed"]), avoid=[bos, *p["triggers"]])
        allowed = torch.arange(1, vocab)
        tokens = torch.zeros(n, n_ctx, dtype=torch.long)
        tokens[:, 1] = normal[torch.randint(len(normal), (n,), generator=gen)]
        for t in range(2, n_ctx):
            prev = tokens[:, t - 1]
            nxt = _markov_step(prev, succ, float(p["p_succ"]), allowed, gen, triggers, float(p.get("p_trigger", 0)))
            is_trig = (prev[:, None] == triggers[None]).any(1)
            tokens[:, t] = torch.where(is_trig, tokens[:, t - 2], nxt)
        trig = (tokens[..., None] == triggers).any(-1)
        trig[:, -1] = False
        mask = torch.ones_like(tokens, dtype=torch.bool)
        mask[:, 0] = False
        return {"tokens": tokens, "loss_mask": mask, "trigger": trig, "successor": succ}
    raise ValueError(f"unknown toy task {spec.task!r}; expected one of {TASKS}")


# ----------------------------------------------------------------------------- role scores


ROLES = {
    "induction": ("previous_token", "induction"),
    "parity": ("iteration",),
    "bigram": ("memory", "induction"),
    "backcopy": ("active_dormant",),
}


def _attn_to(pattern: torch.Tensor, key: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean attention [b, h] to key[b, q] on query rows[b, q] (nan-free: rows>0)."""
    b, h, s, _ = pattern.shape
    on = pattern.gather(-1, key[:, None, :, None].expand(b, h, s, 1))[..., 0]     # [b, h, q]
    r = rows.float()[:, None]
    return (on * r).sum(-1) / r.sum(-1).clamp(min=1)


def memory_recall(model: ToyTransformer, succ: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Per head and per input token: 1 when the head's OV circuit, read as an associative memory
    over the vocabulary (W_U W_OV e_i), returns the trained successor of token i as its top
    entry. [n_layers, n_heads, n_tokens]."""
    L, H = model.cfg.n_layers, model.cfg.n_heads
    idx = torch.arange(model.cfg.d_vocab) if tokens is None else tokens
    emb = model.embed.weight[idx]
    out = torch.zeros(L, H, len(idx))
    with torch.no_grad():
        for layer in range(L):
            for head in range(H):
                read = emb @ model.w_ov(layer, head) @ model.unembed.weight.T        # [n, vocab]
                out[layer, head] = (read.argmax(-1) == succ[idx]).float()
    return out


def layer_memory_readout(model: ToyTransformer, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Per layer and input token i, the top entry of the layer's attention OV map (its heads' OV
    maps summed) read as an associative memory over the vocabulary: argmax W_U W_OV e_i.
    [n_layers, n_tokens]. Bietti et al.'s layers have one head each, so their "head" memory is
    this layer map; with several heads per layer the memory is shared among them."""
    idx = torch.arange(model.cfg.d_vocab) if tokens is None else tokens
    emb = model.embed.weight[idx]
    out = torch.zeros(model.cfg.n_layers, len(idx), dtype=torch.long)
    with torch.no_grad():
        for layer in range(model.cfg.n_layers):
            w = sum(model.w_ov(layer, h) for h in range(model.cfg.n_heads))
            out[layer] = (emb @ w @ model.unembed.weight.T).argmax(-1)
    return out


@torch.no_grad()
def per_sequence_scores(spec: ToySpec, model: ToyTransformer, data: dict, cache: dict | None = None) -> dict:
    """Each role's score per sequence and head ([b, L, H]); memory recall is per layer and token
    ([L, 1, n_tokens], trigger tokens left out), as the associative-memory claim reads it."""
    if cache is None:
        _, cache = model(data["tokens"])
    pats = cache["pattern"]
    tokens = data["tokens"]
    b, s = tokens.shape
    out = {}
    if spec.task in ("induction", "bigram"):
        out["induction"] = torch.stack([_attn_to(p, data["induction_target"], data["induction_rows"]) for p in pats], 1)
    if spec.task == "induction":
        prev_key = (torch.arange(s) - 1).clamp(min=0).expand(b, s)
        rows = torch.ones(b, s, dtype=torch.bool)
        rows[:, 0] = False
        out["previous_token"] = torch.stack([_attn_to(p, prev_key, rows) for p in pats], 1)
    if spec.task == "parity":
        out["iteration"] = torch.stack([_attn_to(p, data["iteration_target"], data["loss_mask"]) for p in pats], 1)
    if spec.task == "bigram":
        succ = data["successor"]
        triggers = set(spec.task_params["triggers"])   # a trigger's successor changes per sequence
        tokens = torch.tensor([t for t in range(len(succ)) if t not in triggers])
        out["memory"] = (layer_memory_readout(model, tokens) == succ[tokens]).float()[:, None, :]
    if spec.task == "backcopy":
        prev_key = (torch.arange(s) - 1).clamp(min=0).expand(b, s)
        active = torch.stack([_attn_to(p, prev_key, data["trigger"]) for p in pats], 1)
        rows = ~data["trigger"]
        rows[:, 0] = False
        sink = torch.stack([_attn_to(p, torch.zeros_like(prev_key), rows) for p in pats], 1)
        out["active"], out["sink"] = active, sink
        out["active_dormant"] = torch.minimum(active, sink)   # a head must do both to score
    return out


def role_scores(spec: ToySpec, model: ToyTransformer, data: dict, cache: dict | None = None) -> dict[str, torch.Tensor]:
    """Each role's score per head [L, H] (means over sequences), or per layer [L, 1] for the
    LAYER_ROLES (means over tokens)."""
    per = per_sequence_scores(spec, model, data, cache)
    out = {}
    for role in ROLES[spec.task]:
        out[role] = per[role].mean(-1) if role == "memory" else per[role].mean(0)
    return out


@torch.no_grad()
def losses(model: ToyTransformer, data: dict, zero_heads: Sequence[tuple[int, int]] = ()) -> dict[str, torch.Tensor]:
    """Per-sequence mean loss and accuracy on the scored positions (plus the logits' cache)."""
    logits, cache = model(data["tokens"], zero_heads)
    tokens, mask = data["tokens"], data["loss_mask"][:, :-1]
    lp = nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    acc = (logits[:, :-1].argmax(-1) == tokens[:, 1:]).float()
    m = mask.float()
    n = m.sum(1).clamp(min=1)
    out = {"loss": (lp * m).sum(1) / n, "accuracy": (acc * m).sum(1) / n, "cache": cache}
    if "induction_rows" in data:
        r = data["induction_rows"][:, :-1].float()
        out["repeat_loss"] = (lp * r).sum(1) / r.sum(1).clamp(min=1)
    return out


# ----------------------------------------------------------------------------- training


@dataclass
class Trained:
    spec: ToySpec
    model: ToyTransformer
    curve: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    from_cache: bool = False
    checkpoints_path: Path | None = None

    def checkpoints(self) -> dict[int, dict]:
        """{step: state_dict} at every evaluation step of training."""
        if self.checkpoints_path is None or not self.checkpoints_path.exists():
            return {}
        return torch.load(self.checkpoints_path, weights_only=True)

    def model_at(self, step: int) -> ToyTransformer:
        m = build(self.spec)
        m.load_state_dict(self.checkpoints()[step])
        return m.eval()


def head_label(role: str, layer: int, head: int) -> str:
    return f"{layer}.*" if role in LAYER_ROLES else f"{layer}.{head}"


def _best_roles(spec, model, data, cache=None) -> dict[str, Any]:
    """Each role's best score and the head (or layer) holding it: the columns of a curve point."""
    out: dict[str, Any] = {}
    for role, sc in role_scores(spec, model, data, cache).items():
        flat = int(sc.flatten().argmax())
        out[role] = float(sc.flatten()[flat])
        out[f"{role}_head"] = head_label(role, flat // sc.shape[1], flat % sc.shape[1])
    return out


def _eval_point(spec, model, data, step, t0) -> dict:
    res = losses(model, data)
    point = {"step": step, "loss": float(res["loss"].mean()), "accuracy": float(res["accuracy"].mean()),
             "seconds": round(time.perf_counter() - t0, 2)}
    if "repeat_loss" in res:
        point["repeat_loss"] = float(res["repeat_loss"].mean())
    point.update(_best_roles(spec, model, data, res["cache"]))
    return point


def train(spec: ToySpec, progress: bool = False, label: str = "") -> tuple[Trained, dict[int, dict]]:
    """Train from scratch (deterministic: seeded, one CPU thread); returns the run and checkpoints."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(spec.seed)
        model = build(spec)
        gen = torch.Generator().manual_seed(spec.seed)
        eval_data = batch(spec, 256, 10_000 + spec.seed)
        o = spec.optimiser
        if o.get("name", "adamw") != "adamw":
            raise ValueError(f"unknown optimiser {o.get('name')!r}; only adamw is implemented")
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=float(o["lr"]),
                                weight_decay=float(o.get("weight_decay", 0.01)), betas=tuple(o.get("betas", (0.9, 0.999))))
        bsz = int(o["batch"])
        run = Trained(spec, model)
        ckpts: dict[int, dict] = {}
        bar = task = None
        if progress and spec.steps:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            bar = Progress(TextColumn(f"[headatlas] training {label or spec.task}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                           console=Console(stderr=True), transient=True)
            task = bar.add_task("train", total=spec.steps, loss="?")
            bar.start()
        t0 = time.perf_counter()
        try:
            for step in range(spec.steps + 1):
                if step % spec.eval_every == 0 or step == spec.steps:
                    model.eval()
                    run.curve.append(_eval_point(spec, model, eval_data, step, t0))
                    ckpts[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    if bar:
                        bar.update(task, loss=f"{run.curve[-1]['loss']:.3f}")
                if step == spec.steps:
                    break
                model.train()
                data = batch(spec, bsz, gen)
                logits, _ = model(data["tokens"])
                mask = data["loss_mask"][:, :-1]
                lp = nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), data["tokens"][:, 1:], reduction="none")
                loss = (lp * mask).sum() / mask.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if bar:
                    bar.update(task, advance=1)
        finally:
            if bar:
                bar.stop()
        run.seconds = time.perf_counter() - t0
        model.eval()
        return run, ckpts
    finally:
        torch.set_num_threads(old)


def cache_dir(spec: ToySpec) -> Path:
    from headatlas.models import cache_root

    return cache_root() / "toy" / spec.sha256[:24]


def load(spec: ToySpec, progress: bool = False, label: str = "") -> Trained:
    """The trained model of a spec: from the cache when its files check out, else trained and
    cached (written to a temporary folder, then renamed into place)."""
    where = cache_dir(spec)
    meta_path = where / "spec.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("sha256") == spec.sha256:
                model = build(spec)
                model.load_state_dict(torch.load(where / "weights.pt", weights_only=True))
                model.eval()
                return Trained(spec, model, meta["curve"], meta["train_seconds"], True, where / "checkpoints.pt")
        except Exception:  # a broken cache is rebuilt, not trusted
            pass
    run, ckpts = train(spec, progress, label)
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=where.parent))
    try:
        torch.save(run.model.state_dict(), tmp / "weights.pt")
        torch.save(ckpts, tmp / "checkpoints.pt")
        (tmp / "spec.json").write_text(json.dumps({"sha256": spec.sha256, "spec": spec.as_dict(), "curve": run.curve,
                                                   "train_seconds": round(run.seconds, 2)}, indent=1))
        if where.exists():
            shutil.rmtree(where)
        os.replace(tmp, where)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    run.checkpoints_path = where / "checkpoints.pt"
    return run


# ----------------------------------------------------------------------------- seeds


def roles_of(run: Trained) -> dict[str, dict[str, Any]]:
    """Each role's head at the end of training (best score on the evaluation batch), its score,
    and the step at which that head's score first exceeded FORM_THRESHOLD (None: never)."""
    spec, ck = run.spec, None
    data = batch(spec, 256, 10_000 + spec.seed)
    final = role_scores(spec, run.model, data)
    out = {}
    for role, sc in final.items():
        flat = int(sc.flatten().argmax())
        layer, head = flat // sc.shape[1], flat % sc.shape[1]
        formed = None
        if ck is None:
            ck = run.checkpoints()
        for step in sorted(ck):
            m = build(spec)
            m.load_state_dict(ck[step])
            if float(role_scores(spec, m, data)[role][layer, head]) > FORM_THRESHOLDS.get(role, FORM_THRESHOLD):
                formed = step
                break
        out[role] = {"head": head_label(role, layer, head), "layer": layer, "score": round(float(sc[layer, head]), 4),
                     "formed_step": formed}
    return out


def role_curve(run: Trained) -> list[dict]:
    """The training curve with each role's best score and head read again from the checkpoints,
    on the evaluation batch roles_of uses: a change in how a role is scored then reaches the curve
    without retraining. Loss and accuracy stay as recorded during training."""
    spec, ck = run.spec, run.checkpoints()
    data = batch(spec, 256, 10_000 + spec.seed)
    out = []
    for point in run.curve:
        point = {k: v for k, v in point.items() if k != "seconds"}
        if point["step"] in ck:
            m = build(spec)
            m.load_state_dict(ck[point["step"]])
            point.update({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in _best_roles(spec, m.eval(), data).items()})
        out.append(point)
    return out


def _agreement(per_seed: list[dict], role: str) -> dict[str, Any]:
    """How often seeds give a role to the same layer (and the same head index), and the spread
    of its formation step. Head indices within a layer are interchangeable at initialisation
    (permuting them gives the same function), so the layer is the comparable fact."""
    from collections import Counter

    layers = Counter(s["roles"][role]["layer"] for s in per_seed)
    heads = Counter(s["roles"][role]["head"] for s in per_seed)
    formed = sorted(s["roles"][role]["formed_step"] for s in per_seed if s["roles"][role]["formed_step"] is not None)
    n = len(per_seed)
    modal_layer, n_layer = layers.most_common(1)[0]
    modal_head, n_head = heads.most_common(1)[0]
    return {"seeds": n, "modal_layer": modal_layer, "layer_agreement": round(n_layer / n, 3),
            "modal_head": modal_head, "head_agreement": round(n_head / n, 3), "formed": len(formed),
            "formed_step": ({"min": formed[0], "median": formed[len(formed) // 2], "max": formed[-1]} if formed else None)}


def seed_study(name: str, seeds: Sequence[int], progress: bool = True) -> dict[str, Any]:
    """Train the registry's toy model `name` once per seed (cached) and record, per seed, which
    layer and head takes each role and at which step it forms; plus how often seeds agree."""
    from headatlas.catalogue import load_model_registry

    info = load_model_registry()[name]
    base = ToySpec.from_source(info.source)
    per_seed = []
    for seed in seeds:
        spec = base.with_(seed=int(seed))
        run = load(spec, progress=progress, label=f"{name} seed {seed}")
        roles = roles_of(run)
        curve = role_curve(run)
        per_seed.append({"seed": int(seed), "sha256": spec.sha256, "train_seconds": round(run.seconds, 1),
                         "roles": roles, "curve": curve})
    study = {k: v for k, v in base.as_dict().items() if k != "seed"}
    return {"model": name, "task": base.task, "spec": study,
            "form_threshold": {r: FORM_THRESHOLDS.get(r, FORM_THRESHOLD) for r in ROLES[base.task]},
            "roles": list(ROLES[base.task]), "seeds": per_seed,
            "agreement": {role: _agreement(per_seed, role) for role in ROLES[base.task]}}


def seeds_path(root: Path, task: str) -> Path:
    return root / "results" / "seeds" / f"{task}.json"
