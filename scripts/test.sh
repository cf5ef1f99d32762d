#!/usr/bin/env bash
# The test command: set everything up from a fresh machine, then run the test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k bootstrap`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-dev.sh
exec .venv/bin/python -m pytest "$@"
