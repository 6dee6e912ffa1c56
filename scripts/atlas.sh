#!/usr/bin/env bash
# The main job: set up, verify every claim on the embedded models (refreshing results/), build the site and
# serve it on http://127.0.0.1:8000 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
headatlas validate
headatlas verify || echo "[atlas] some claims did not pass; the site shows which"
mkdocs build --strict
exec mkdocs serve --no-livereload -a 127.0.0.1:8000
