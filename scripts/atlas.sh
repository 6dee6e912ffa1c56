#!/usr/bin/env bash
# The main job: set up, serve the site from the committed evidence at once, then re-verify every
# claim on the embedded models (progress bar), refreshing results/; the served pages rebuild as
# new results land (mkdocs.yml watches results/ and heads/). Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
headatlas validate
mkdocs build --strict --quiet
echo "[atlas] serving the committed evidence on http://127.0.0.1:8000 while the claims re-run"
echo "[atlas] (every claim on every model: a few hours on a 2-core CPU with the Qwen models; pages refresh as results land)"
mkdocs serve --quiet -a 127.0.0.1:8000 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT INT TERM
# --accept: record what the models show now (a changed verdict shows in `git diff results/`).
if headatlas verify --accept; then
  echo "[atlas] every claim ran; results/ is up to date (git diff results/ shows what changed)"
else
  echo "[atlas] some claims errored or hold on the random-weights twin; the site and the table above show which"
fi
headatlas seeds || echo "[atlas] the toy seed study failed; results/seeds/ keeps the committed table"
echo "[atlas] still serving on http://127.0.0.1:8000 (Ctrl-C stops it)"
wait "$server"
