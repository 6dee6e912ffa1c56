"""Toy models as atlas models: spec hashing, the cache, loading through headatlas.models, and the
committed seed study (results/seeds/<task>.json) re-checked on one seed.

The re-check trains seed 0 of each task, the seed the claims use, so a CI run that has already
run the claims reads it from the cache. Training is deterministic on one CPU thread; the
tolerances only allow for a different CPU or PyTorch build: the role's layer must match and its
formation step may move by at most two evaluation intervals."""

from __future__ import annotations

import json

import pytest
import torch

from headatlas.catalogue import find_root, load_model_registry
from headatlas.methods import toymodels

ROOT = find_root()
TOYS = {n: i for n, i in load_model_registry().items() if i.source.kind == "toy"}
RECHECK_SEED = 0
STEP_TOLERANCE_EVALS = 2


def test_spec_hash_names_everything_that_shapes_the_weights():
    spec = toymodels.ToySpec.from_source(TOYS["toy-induction"].source)
    assert spec.sha256 == toymodels.ToySpec.from_source(TOYS["toy-induction"].source).sha256
    for change in ({"seed": 1}, {"steps": 0}, {"optimiser": {**spec.optimiser, "lr": 0.001}}):
        assert spec.with_(**change).sha256 != spec.sha256


def test_tiny_spec_trains_caches_and_reloads_identically(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADATLAS_CACHE", str(tmp_path))
    spec = toymodels.ToySpec.from_source(TOYS["toy-backcopy"].source).with_(steps=20, eval_every=10)
    first = toymodels.load(spec)
    assert not first.from_cache and (toymodels.cache_dir(spec) / "weights.pt").is_file()
    again = toymodels.load(spec)
    assert again.from_cache  # read back, not retrained (the reload time is a benchmark figure)
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    assert sorted(again.checkpoints()) == [0, 10, 20]
    retrained, _ = toymodels.train(spec)     # deterministic: the same weights from scratch
    for a, b in zip(first.model.state_dict().values(), retrained.model.state_dict().values()):
        assert torch.equal(a, b)


def test_loaded_toy_model_looks_like_an_atlas_model(tmp_path, monkeypatch):
    from headatlas.models import load_toy

    monkeypatch.setenv("HEADATLAS_CACHE", str(tmp_path))
    untrained = load_toy("toy-parity", TOYS["toy-parity"], progress=False, steps=0)
    assert (untrained.n_layers, untrained.n_heads) == (2, 10) and untrained.tokenizer is None
    spec = toymodels.ToySpec.from_source(TOYS["toy-parity"].source).with_(steps=0)
    assert untrained.weights_sha256 == spec.sha256


@pytest.mark.parametrize("task", ["induction", "parity", "bigram", "backcopy"])
def test_one_seed_reproduces_the_committed_seed_table(task):
    path = toymodels.seeds_path(ROOT, task)
    if not path.is_file():
        pytest.skip(f"no committed seed study for {task} (run `headatlas seeds`)")
    table = json.loads(path.read_text())
    row = next(s for s in table["seeds"] if s["seed"] == RECHECK_SEED)
    info = load_model_registry()[table["model"]]
    spec = toymodels.ToySpec.from_source(info.source).with_(seed=RECHECK_SEED)
    assert spec.sha256 == row["sha256"], "the registry's spec changed since the table was recorded: rerun `headatlas seeds`"
    roles = toymodels.roles_of(toymodels.load(spec))
    tol = STEP_TOLERANCE_EVALS * spec.eval_every
    for role, want in row["roles"].items():
        got = roles[role]
        assert got["layer"] == want["layer"], f"{task} {role}: layer {got['layer']}, table says {want['layer']}"
        if want["formed_step"] is None:
            assert got["formed_step"] is None
        else:
            assert got["formed_step"] is not None and abs(got["formed_step"] - want["formed_step"]) <= tol
        assert abs(got["score"] - want["score"]) <= 0.1


def test_a_memory_shared_by_a_layers_heads_is_read_from_the_layer_not_from_one_head():
    """A successor map planted in layer 0's OV maps, split across its four heads (each holds a
    rank-d_head slice): the layer readout recalls every token; no single head recalls them all."""
    from headatlas.methods.toymodels import ToyTransformer, layer_memory_readout, memory_recall

    torch.manual_seed(0)
    vocab, d, heads = 16, 32, 4
    model = ToyTransformer(vocab, d, heads, 2, 8, 0, 0.5, True)
    succ = torch.randperm(vocab)
    target = torch.zeros(vocab, vocab)
    target[torch.arange(vocab), succ] = 10.0
    emb, unembed_t = model.embed.weight.detach(), model.unembed.weight.detach().T        # [V, d], [d, V]
    memory = torch.linalg.pinv(emb) @ target @ torch.linalg.pinv(unembed_t)             # [d, d]
    with torch.no_grad():
        model.qkv[0].weight[2 * d:] = memory.T                  # W_V of head h: memory[:, h-slice].T
        model.out[0].weight.copy_(torch.eye(d))                 # W_O of head h: identity columns
        model.qkv[1].weight[2 * d:] = 0.0
    assert torch.equal(layer_memory_readout(model)[0], succ)
    assert (layer_memory_readout(model)[1] == succ).float().mean() < 0.5
    per_head = memory_recall(model, succ)[0].mean(-1)
    assert per_head.max() < 1.0


def test_the_seed_study_scores_memory_per_layer_as_the_claim_reads_it(tmp_path, monkeypatch):
    """The memory role is a layer's summed OV map (as in associative-memory-toy-bigram), one score
    per layer over the non-trigger tokens and written "L.*"; the curve is re-read from the
    checkpoints, so it carries the same score the table does."""
    monkeypatch.setenv("HEADATLAS_CACHE", str(tmp_path))
    spec = toymodels.ToySpec.from_source(TOYS["toy-bigram"].source).with_(steps=20, eval_every=10)
    run = toymodels.load(spec)
    data = toymodels.batch(spec, 8, 0)
    scores = toymodels.role_scores(spec, run.model, data)
    assert scores["memory"].shape == (spec.architecture["n_layers"], 1)
    assert scores["induction"].shape == (spec.architecture["n_layers"], spec.architecture["n_heads"])
    succ, triggers = data["successor"], set(spec.task_params["triggers"])
    tokens = torch.tensor([t for t in range(len(succ)) if t not in triggers])
    want = (toymodels.layer_memory_readout(run.model, tokens) == succ[tokens]).float().mean(-1)
    assert torch.allclose(scores["memory"][:, 0], want)
    roles = toymodels.roles_of(run)
    assert roles["memory"]["head"] == f"{roles['memory']['layer']}.*"
    curve = toymodels.role_curve(run)
    assert [p["step"] for p in curve] == [0, 10, 20]
    assert curve[-1]["memory"] == pytest.approx(roles["memory"]["score"], abs=1e-4)


def test_seed_page_has_a_table_and_a_curve_per_task_and_names_layer_roles():
    from headatlas.site import seeds as seed_page

    studies = seed_page.load_studies(ROOT / "results")
    text, files = seed_page.page(studies)
    assert set(studies) == {"induction", "parity", "bigram", "backcopy"}
    for task, study in studies.items():
        assert f"## {task} ({study['model']})" in text
        assert f"seeds/{task}.png" in dict(files) and dict(files)[f"seeds/{task}.png"][:4] == b"\x89PNG"
        for s in study["seeds"]:
            assert f"| {s['seed']} | " in text
    start = text.index("## bigram")
    bigram = text[start:text.find("\n## ", start + 1)]
    assert "**memory**: layer 0 in 100% of 5 seeds; read from the whole layer" in bigram
    assert "0.* (" in bigram
