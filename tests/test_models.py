"""Model registry and loading: names, offline Hub behaviour, and the conversion cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headatlas import models
from headatlas.catalogue import find_root, load_model_registry

ROOT = find_root(Path(__file__).parent)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(models.ModelError) as exc:
        models.resolve("gpt5")
    message = str(exc.value)
    assert "unknown model 'gpt5'" in message
    for name in load_model_registry(ROOT):
        assert name in message


def test_hub_model_offline_is_weights_unavailable_quickly(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty local Hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    model, reason = models.try_load("hub:openai-community/gpt2-medium")
    assert model is None
    assert reason.startswith("weights unavailable offline")
    assert time.perf_counter() - t0 < 20


def test_unreachable_hub_is_detected(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    assert models.hub_reachable(timeout=2) is False


def test_cache_marker_checks(tmp_path):
    sha = "a" * 64
    d = tmp_path / "m"
    d.mkdir()
    assert not models._cache_ok(d, sha)  # no marker: a partial conversion
    (d / "model.safetensors").write_bytes(b"x" * 10)
    (d / models.MARKER).write_text(json.dumps({"format": models.CACHE_FORMAT, "gguf_sha256": sha,
                                               "files": {"model.safetensors": 10}}))
    assert models._cache_ok(d, sha)
    assert not models._cache_ok(d, "b" * 64)  # converted from another GGUF
    (d / "model.safetensors").write_bytes(b"x" * 5)  # truncated
    assert not models._cache_ok(d, sha)
    (d / models.MARKER).write_text("{not json")
    assert not models._cache_ok(d, sha)


def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path):
    """Run in a subprocess with its own cache dir: a truncated weights file must be rebuilt."""
    import shutil

    from helpers import smollm2

    source = Path(smollm2().extra["cache_dir"])  # start from a good cache: skip one conversion
    shutil.copytree(source, tmp_path / "models" / source.name)
    code = f"""
import os, sys
from headatlas import models
m = models.load_model('smollm2-135m', progress=False)
print('first', m.from_cache)
d = m.extra['cache_dir']
w = os.path.join(d, 'model.safetensors')
with open(w, 'r+b') as fh:
    fh.truncate(1000)
models.load_model.cache_clear()
m2 = models.load_model('smollm2-135m', progress=False)
print('second', m2.from_cache, os.path.getsize(w) > 10**8)
models.load_model.cache_clear()
m3 = models.load_model('smollm2-135m', progress=False)
print('third', m3.from_cache)
"""
    env = dict(os.environ, HEADATLAS_CACHE=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.split()[0] in ("first", "second", "third")]
    assert lines == ["first True", "second False True", "third True"], out.stdout


def test_gguf_checksum_mismatch_is_an_error(monkeypatch, tmp_path):
    registry = load_model_registry(ROOT)
    info = registry["smollm2-135m"]
    bad = info.model_copy(update={"source": info.source.model_copy(update={"sha256": "0" * 64})})
    with pytest.raises(models.ModelError, match="sha256 is b179c952"):
        models._convert(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- chunked GGUFs


def _chunk_source(tmp_path: Path, monkeypatch, parts: list[bytes], *, prefix: str = "fakechunk"):
    """Fake raw-chunk packages <prefix>_part<n>/data/part<nn>.bin on sys.path, and the
    `pypi-gguf-chunks` source that names them (sizes and sha256s of the parts as given)."""
    import hashlib
    import importlib

    from headatlas.catalogue import ModelSource

    site = tmp_path / "site"
    for n, blob in enumerate(parts, start=1):
        pkg = site / f"{prefix}_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    whole = b"".join(parts)
    return ModelSource(kind="pypi-gguf-chunks", package=f"{prefix}-part{{n}}", version="1.0",
                       module=f"{prefix}_part{{n}}", file="data/part{n:02d}.bin",
                       sha256=hashlib.sha256(whole).hexdigest(), size=len(whole),
                       chunks=[{"size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for b in parts])


def _part(tmp_path: Path, n: int, prefix: str = "fakechunk") -> Path:
    return tmp_path / "site" / f"{prefix}_part{n}" / "data" / f"part{n:02d}.bin"


PARTS = [bytes([i]) * (1000 + 37 * i) for i in range(1, 5)]


def test_chunks_assemble_in_order_and_verify(tmp_path, monkeypatch):
    src = _chunk_source(tmp_path, monkeypatch, PARTS)
    assert [p[1] for p in src.chunk_parts()] == [f"fakechunk-part{n}" for n in range(1, 5)]
    out = models._gguf_path(src, tmp_path, progress=True)
    assert out.read_bytes() == b"".join(PARTS)
    assert models.sha256_file(out) == src.sha256 and out.stat().st_size == src.size


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "swapped"])
def test_a_bad_chunk_names_its_package_and_leaves_no_cache(tmp_path, monkeypatch, damage):
    src = _chunk_source(tmp_path, monkeypatch, PARTS)
    info = load_model_registry(ROOT)["qwen2.5-coder-0.5b"].model_copy(update={"source": src})
    p2, p3 = _part(tmp_path, 2), _part(tmp_path, 3)
    if damage == "truncated":
        p2.write_bytes(PARTS[1][:-10])
        expect = r"part 2 of 4 of the GGUF, fakechunk-part2 .* is truncated: 1064 bytes"
    elif damage == "corrupted":
        p2.write_bytes(PARTS[1][:-1] + b"\xff")
        expect = r"part 2 of 4 of the GGUF, fakechunk-part2 .* is corrupted"
    else:  # two parts of the same size in each other's place: the first one copied is named
        swapped = _chunk_source(tmp_path / "same", monkeypatch, [b"a" * 500, b"b" * 500], prefix="fakeswap")
        info = info.model_copy(update={"source": swapped})
        a, b = _part(tmp_path / "same", 1, "fakeswap"), _part(tmp_path / "same", 2, "fakeswap")
        a.write_bytes(b"b" * 500)
        b.write_bytes(b"a" * 500)
        expect = r"part 1 of 2 of the GGUF, fakeswap-part1 .* is corrupted"
    cache = tmp_path / "cache" / "models"
    with pytest.raises(models.ModelError, match=expect) as exc:
        models._convert(info, cache / "qwen-fake", progress=False)
    assert "reinstall fake" in str(exc.value)
    assert list(cache.iterdir()) == []  # neither the cache nor the temp dir it was built in
    assert p3.read_bytes() == PARTS[2]


def test_a_missing_chunk_package_is_weights_unavailable(tmp_path, monkeypatch):
    import shutil

    src = _chunk_source(tmp_path, monkeypatch, PARTS)
    shutil.rmtree(tmp_path / "site" / "fakechunk_part3")
    info = load_model_registry(ROOT)["qwen2.5-coder-0.5b"].model_copy(update={"source": src})
    with pytest.raises(models.WeightsUnavailable, match=r"fakechunk-part3==1.0 is not installed"):
        models._convert(info, tmp_path / "cache" / "models" / "x", progress=False)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_whole_file_is_checked_after_its_parts(tmp_path, monkeypatch):
    src = _chunk_source(tmp_path, monkeypatch, PARTS)
    info = load_model_registry(ROOT)["qwen2.5-coder-0.5b"].model_copy(
        update={"source": src.model_copy(update={"sha256": "0" * 64})})
    with pytest.raises(models.ModelError, match=r"sha256 is .* reinstall fakechunk-part1 \.\.\. fakechunk-part4"):
        models._convert(info, tmp_path / "cache" / "models" / "x", progress=False)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_chunk_source_schema():
    from pydantic import ValidationError

    from headatlas.catalogue import ModelSource

    good = dict(kind="pypi-gguf-chunks", package="p-part{n}", version="1", module="p_part{n}",
                file="data/part{n:02d}.bin", sha256="a" * 64, size=3,
                chunks=[{"size": 1, "sha256": "b" * 64}, {"size": 2, "sha256": "c" * 64}])
    assert ModelSource(**good).chunk_parts()[1][1:4] == ("p-part2", "p_part2", "data/part02.bin")
    with pytest.raises(ValidationError, match="needs: chunks"):
        ModelSource(**{**good, "chunks": None})
    with pytest.raises(ValidationError, match="add up to 3, not to size 4"):
        ModelSource(**{**good, "size": 4})
    with pytest.raises(ValidationError, match=r"package: .* pattern with \{n\}"):
        ModelSource(**{**good, "package": "p-part1"})


QWEN = {"qwen2.5-coder-0.5b": (6, 491400064, 24, 14), "qwen2.5-coder-1.5b": (22, 1117320768, 28, 12)}


@pytest.mark.parametrize("name", sorted(QWEN))
def test_qwen_entries_match_their_installed_packages(name):
    """Cheap: sizes only (a full check reads 1.6 GB); skipped where the packages are absent."""
    info = load_model_registry(ROOT)[name]
    n_parts, size, n_layers, n_heads = QWEN[name]
    assert (len(info.source.chunks), info.source.size, info.n_layers, info.n_heads) == QWEN[name]
    for n, package, module, file, chunk in info.source.chunk_parts():
        try:
            path = models._package_dir(module, package) / file
        except models.WeightsUnavailable:
            pytest.skip(f"{package} is not installed")
        assert path.stat().st_size == chunk.size, package


# ----------------------------------------------------------------------------- BOS per tokenizer


def _tokenizer(name: str, tmp_path_factory):
    """The tokenizer of an embedded model: from its converted cache when there is one (fast),
    else from its GGUF (assembled into a temp dir); skipped if the packages are not installed."""
    from transformers import AutoTokenizer

    info = load_model_registry(ROOT)[name]
    directory = models.cache_root() / "models" / f"{name}-{info.source.sha256[:12]}"
    if models._cache_ok(directory, info.source.sha256):
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
    work = tmp_path_factory.mktemp(name)
    try:
        gguf = models._gguf_path(info.source, work)
    except models.WeightsUnavailable as exc:
        pytest.skip(str(exc))
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


# What the prompt builders prepended before the Qwen models came (the committed results of
# SmolLM2 and Gemma depend on it), and what Qwen must get: nothing.
BOS = {"smollm2-135m": [1], "gemma-3-270m": [2], "qwen2.5-coder-0.5b": [], "qwen2.5-coder-1.5b": []}


@pytest.mark.parametrize("name", list(BOS))
def test_bos_prefix_follows_each_tokenizer(name, tmp_path_factory):
    from headatlas.prompts import repeated_random_tokens
    from headatlas.prompts.tokens import adds_bos, bos_prefix

    tok = _tokenizer(name, tmp_path_factory)
    assert tok.bos_token_id is not None  # every one declares a BOS, Qwen's GGUF included
    assert bos_prefix(tok) == BOS[name]
    # The tokenizer's own setting: Gemma adds its BOS; SmolLM2 and Qwen add none.
    assert adds_bos(tok) == (name == "gemma-3-270m")
    data = repeated_random_tokens(tok, len(tok), n_prompts=2, block_len=5, seed=0)
    assert data.has_bos == bool(BOS[name]) and data.tokens.shape[1] == 10 + len(BOS[name])


def test_bos_prefix_rules_on_stub_tokenizers():
    from headatlas.prompts.tokens import bos_prefix

    class Tok:
        def __init__(self, bos, pad, adds):
            self.bos_token_id, self.pad_token_id, self.adds = bos, pad, adds

        def __call__(self, text):
            return {"input_ids": ([self.bos_token_id] if self.adds else []) + [7]}

    assert bos_prefix(Tok(None, None, False)) == []
    assert bos_prefix(Tok(5, 5, True)) == [5]    # added by the tokenizer itself: kept
    assert bos_prefix(Tok(5, None, False)) == [5]  # GPT-2's <|endoftext|>: kept, as before
    assert bos_prefix(Tok(5, 5, False)) == []    # the padding token named as BOS: none


# ----------------------------------------------------------------------------- device and dtype


def test_run_settings_default_to_cpu_float32_and_read_the_environment(monkeypatch):
    monkeypatch.delenv("HEADATLAS_DEVICE", raising=False)
    monkeypatch.delenv("HEADATLAS_DTYPE", raising=False)
    assert models.run_settings() == ("cpu", "float32")
    monkeypatch.setenv("HEADATLAS_DEVICE", "cuda:1")
    monkeypatch.setenv("HEADATLAS_DTYPE", "bfloat16")
    assert models.run_settings() == ("cuda:1", "bfloat16")
    assert models.run_settings("cpu", "float16") == ("cpu", "float16")
    with pytest.raises(models.ModelError, match="unknown dtype 'int8'"):
        models.run_settings(dtype="int8")


def test_bfloat16_load_reports_its_dtype():
    import torch

    from helpers import smollm2

    ref = smollm2()
    assert (ref.device, ref.dtype) == ("cpu", "float32")
    assert ref.weights_sha256 == ref.info.source.sha256  # float32: the identity is unchanged
    m = models._load_packaged("smollm2-135m", ref.info, progress=False, dtype="bfloat16")
    assert (m.device, m.dtype) == ("cpu", "bfloat16")
    assert m.weights_sha256 == ref.info.source.sha256 + "+bfloat16"
    assert {p.dtype for p in m.bridge.parameters()} == {torch.bfloat16}
    ids = torch.tensor([[1] + m.tokenizer.encode("The capital of France is", add_special_tokens=False)])
    with torch.no_grad():
        low = m.bridge(ids, prepend_bos=False)[0, -1]
        high = ref.bridge(ids, prepend_bos=False)[0, -1]
    assert low.dtype == torch.bfloat16
    assert low.float().argmax() == high.argmax()


def test_verify_passes_device_and_dtype_to_the_claims_run(monkeypatch):
    from headatlas import cli
    from headatlas.claims import runner

    seen = {}

    def fake_run_claims(cat, **kwargs):
        seen.update(device=os.environ.get("HEADATLAS_DEVICE"), dtype=os.environ.get("HEADATLAS_DTYPE"))
        return [], 0

    monkeypatch.setattr(runner, "run_claims", fake_run_claims)
    monkeypatch.setenv("HEADATLAS_DEVICE", "")
    monkeypatch.setenv("HEADATLAS_DTYPE", "")
    assert cli.main(["verify", "--json", "--dtype", "bfloat16"]) == 0
    assert seen == {"device": "cpu", "dtype": "bfloat16"}
    assert cli.main(["verify", "--json"]) == 0
    assert seen == {"device": "cpu", "dtype": "float32"}


def test_scan_passes_device_and_dtype_to_the_loader_and_records_the_dtype(monkeypatch, tmp_path):
    import torch

    from headatlas import cli, scan

    calls = []

    class Fake:
        name, n_layers, n_heads, dtype = "smollm2-135m", 1, 1, "bfloat16"

    def fake_load(name, progress=True, *, device=None, dtype=None):
        calls.append((name, device, dtype))
        return Fake()

    monkeypatch.setattr(models, "load_model", fake_load)
    monkeypatch.setattr(scan, "scan_model", lambda m: scan.ScanResult(m.name, {"x": torch.zeros(1, 1)}, {},
                                                                    dtype=m.dtype))
    out = tmp_path / "scan.json"
    assert cli.main(["scan", "smollm2-135m", "--dtype", "bfloat16", "--out", str(out)]) == 0
    assert calls == [("smollm2-135m", "cpu", "bfloat16")]
    assert json.loads(out.read_text())["dtype"] == "bfloat16"
    assert "dtype" not in scan.ScanResult("m", {}, {}).to_json()  # float32: the JSON is unchanged
