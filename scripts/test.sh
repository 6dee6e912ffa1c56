#!/usr/bin/env bash
# The tests: set up, then run the library tests and the claim tests in one pytest session
# (one model load). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
exec python -m pytest "$@"
