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
