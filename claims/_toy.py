"""Shared helpers of the claims on trained toy models (catalogue/models.yaml, source kind `toy`).

The model under test is `run.model.bridge` (a headatlas.methods.toymodels.ToyTransformer); its
training run (curve, checkpoints) is `run.model.extra["toy"]`. The control is the untrained twin:
the same spec with steps 0, i.e. the same architecture at its seeded initialisation, measured
the same way on the same held-out batch.
"""

from __future__ import annotations

import functools

import torch

from headatlas.methods import toymodels
from headatlas.models import load_toy


def trained(run) -> toymodels.Trained:
    return run.model.extra["toy"]


@functools.lru_cache(maxsize=8)
def _twin(name: str):
    from headatlas.catalogue import load_model_registry

    return load_toy(name, load_model_registry()[name], progress=False, steps=0)


def twin(run) -> toymodels.ToyTransformer:
    """The untrained twin of the run's toy model (the spec at steps 0)."""
    return _twin(run.model_name).bridge


def batch(run, data: dict) -> dict:
    """A held-out (or selection) batch of the model's task: data's n_seqs sequences, data's seed."""
    return toymodels.batch(trained(run).spec, int(data["n_seqs"]), int(data["seed"]))


def best_head(scores: torch.Tensor) -> tuple[int, int]:
    flat = int(scores.flatten().argmax())
    return flat // scores.shape[1], flat % scores.shape[1]


def depth(layer: int, n_layers: int) -> float:
    return layer / max(n_layers - 1, 1)
