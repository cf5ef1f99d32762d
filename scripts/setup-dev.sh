#!/usr/bin/env bash
# Sets up .venv for development and tests on a fresh machine (idempotent, re-run any time).
# Python 3.11: the CPU build of torch 2.13.0 that tests use is available for it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${OFFLINEPACK_DEV_PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: a bare `torch` would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[lock,run,test,kit,score]" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
if [ -s tests/requirements-extra.txt ]; then
    .venv/bin/python -m pip install --quiet -r tests/requirements-extra.txt
fi
# packages whose declared dependencies would drag in torchvision/timm or a CUDA torch
if [ -s tests/requirements-nodeps.txt ]; then
    .venv/bin/python -m pip install --quiet --no-deps -r tests/requirements-nodeps.txt
fi
# the tests' independent Betti-matching reference: the compiled module inside this wheel, loaded from the file by
# tests/support/betti_reference.py (no deps: the wheel declares torch; never installed, never shipped)
PY_TAG=$(.venv/bin/python -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
if ! ls .venv/reference-wheels/topolosses-0.2.0-"$PY_TAG"-*.whl >/dev/null 2>&1; then
    .venv/bin/python -m pip download --quiet --no-deps "topolosses==0.2.0" -d .venv/reference-wheels \
        || echo "warning: could not download topolosses==0.2.0; the Betti-matching reference tests will skip" >&2
fi
.venv/bin/python -m pip check >/dev/null || true
echo "dev environment ready: .venv ($(.venv/bin/python --version))"
