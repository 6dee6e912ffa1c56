"""Scan a model: every scoring method for every head, at most one forward pass per dataset.

Pattern scores share forward passes (each dataset's pass feeds every score that reads it, and
each layer's attention is reduced as soon as it is computed); OV-circuit scores read weights
only. The result is written as JSON for the site's per-model pages:
    {"model", "time", "duration_s", "scores": {method: [[layer x head]]},
     "methods": {method: description}, "data": {dataset: parameters}, "seconds": {stage: s}}
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from headatlas import prompts
from headatlas.methods import attention, ov, scoring
from headatlas.prompts import patterns, probes

METHODS: dict[str, str] = {
    "previous_token": "attention to the previous token (TransformerLens detector, repeated random tokens)",
    "duplicate_token": "attention to earlier copies of the current token (repeated random tokens)",
    "induction": "attention to the token after an earlier copy of the current token (repeated random tokens)",
    "subword_merge": "attention from a word's later sub-tokens to its earlier sub-tokens (text with made-up words)",
    "rare_token": "attention to the rarest earlier token, rarity = token id (text with made-up words)",
    "retrieval": "Wu et al. 2024 retrieval score: top-1 attention on the needle token being copied",
    "negative_attention": "Yu et al. 2024 NAS: attention to 'No' over 'Yes' in Yes/No prompts (positive = toward No)",
    "constant_attention": "normalized entropy of attention over the option letters of multiple-choice prompts",
    "option_attention": "total attention on the option letters of multiple-choice prompts (read with constant_attention)",
    "successor": "Gould et al. 2023: share of ordinal pairs whose successor the OV circuit ranks first",
    "copy_suppression": "share of tokens whose own logit the OV circuit puts in the bottom 1%",
    "copying": "share of tokens whose own logit the OV circuit puts in the top 1%",
}


@dataclass
class ScanResult:
    model: str
    scores: dict[str, torch.Tensor]
    data: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    time: str = ""
    skipped: dict[str, str] = field(default_factory=dict)   # stage -> why (e.g. a tokenizer lacks " Yes")
    dtype: str = "float32"                                  # recorded in the JSON when not float32

    @property
    def duration(self) -> float:
        return sum(self.seconds.values())

    def to_json(self) -> dict:
        return {"model": self.model, "time": self.time, "duration_s": round(self.duration, 3),
                "scores": {k: [[round(float(x), 6) for x in row] for row in v.tolist()] for k, v in self.scores.items()},
                "methods": {k: METHODS.get(k, "") for k in self.scores},
                "data": self.data, "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "skipped": self.skipped, **({"dtype": self.dtype} if self.dtype != "float32" else {})}


def _detector(kind: str, tokens: torch.Tensor):
    det = scoring.PATTERNS[kind](tokens)
    return lambda p: scoring.pattern_score(p[:, None], det)[0]


def scan(bridge, tokenizer, *, name: str = "", seed: int = 0, n_vocab_sample: int = 500) -> ScanResult:
    """All scores for all heads. Datasets are seeded and small: the scan is meant to take seconds."""
    d_vocab = bridge.cfg.d_vocab
    scores: dict[str, torch.Tensor] = {}
    info: dict[str, Any] = {}
    secs: dict[str, float] = {}
    skipped: dict[str, str] = {}

    def timed(stage):
        """Time a stage; a stage whose data cannot be built for this tokenizer (ValueError) is
        recorded as skipped instead of failing the whole scan."""
        class T:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, kind, exc, tb):
                secs[stage] = time.perf_counter() - self.t
                if kind is not None and issubclass(kind, ValueError):
                    skipped[stage] = str(exc)
                    return True
                return False
        return T()

    with timed("repeated_tokens"):
        rep = prompts.repeated_random_tokens(tokenizer, d_vocab, n_prompts=8, block_len=20, seed=seed)
        scores.update(attention.layer_scores(bridge, rep.tokens, {k: _detector(k, rep.tokens) for k in scoring.PATTERNS}))
        info["repeated_tokens"] = {"generator": "repeated-random-tokens", "n_prompts": 8, "block_len": 20, "seed": seed}

    with timed("split_words"):
        words = patterns.word_text(tokenizer, kind="mixed", n_prompts=4, n_words=24, seed=seed)
        special = attention.bos_mask(words.tokens, tokenizer)
        scores.update(attention.layer_scores(bridge, words.tokens, {
            "subword_merge": lambda p: attention.subword_merge_score(p, words.word_ids),
            "rare_token": lambda p: attention.rare_token_score(p, words.tokens, None, special)}))
        info["split_words"] = {"generator": "word-text", "kind": "mixed", "n_prompts": 4, "seq_len": words.tokens.shape[1],
                               "seed": seed}

    with timed("needle"):
        nd = patterns.needle_prompts(tokenizer, d_vocab, n_prompts=4, haystack_sentences=8, seed=seed)
        scores.update(attention.layer_scores(bridge, nd.tokens, {
            "retrieval": lambda p: attention.retrieval_score(p, nd.tokens, nd.needle_start, nd.answer_start, nd.needle_len)}))
        info["needle"] = {"generator": "needle-in-a-haystack", "n_prompts": 4, "needle_len": nd.needle_len,
                          "seq_len": nd.tokens.shape[1], "seed": seed}

    with timed("yes_no"):
        yn = patterns.yes_no_prompts(tokenizer, n_prompts=12, seed=seed)
        scores.update(attention.layer_scores(bridge, yn.tokens, {
            "negative_attention": lambda p: attention.negative_attention_score(p, yn.yes_pos, yn.no_pos, yn.query_start)}))
        info["yes_no"] = {"generator": "yes-no-prompts", "n_prompts": 12, "seed": seed}

    with timed("multiple_choice"):
        mc = patterns.mcqa_prompts(tokenizer, n_prompts=12, n_shots=2, seed=seed)
        out = attention.layer_scores(bridge, mc.tokens, {"both": lambda p: torch.stack(attention.option_attention(p, mc.letter_pos))})
        scores["constant_attention"], scores["option_attention"] = out["both"][:, 0], out["both"][:, 1]
        info["multiple_choice"] = {"generator": "mcqa", "n_prompts": 12, "n_options": 4, "n_shots": 2, "seed": seed}

    with timed("successor"):
        sets = probes.ordinal_sets(tokenizer)
        succ = ov.successor_scores(bridge, sets)
        scores["successor"] = succ.scores
        info["ordinal_sets"] = {s.name: s.words for s in sets}

    with timed("ov_diagonal"):
        ids = ov.default_vocab_sample(tokenizer, d_vocab, n=n_vocab_sample, seed=seed)
        diag = ov.ov_diagonal(bridge, ids)
        scores["copy_suppression"] = ov.copy_suppression_scores(diag)
        scores["copying"] = ov.copying_scores(diag)
        info["vocab_sample"] = {"n_tokens": len(ids), "seed": seed, "bottom_top_frac": 0.01}

    return ScanResult(name, {k: v.float() for k, v in scores.items()}, info, secs,
                      _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), skipped)


def scan_model(model) -> ScanResult:
    """Scan a headatlas.models.LoadedModel."""
    result = scan(model.bridge, model.tokenizer, name=model.name)
    result.dtype = getattr(model, "dtype", "float32")
    return result


def default_path(root: Path, model: str) -> Path:
    """results/scans/<model>.json, with characters unsafe in file names replaced."""
    return root / "results" / "scans" / (re.sub(r"[^A-Za-z0-9._-]+", "_", model) + ".json")


def write_scan(result: ScanResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1))
    tmp.replace(path)
    return path
