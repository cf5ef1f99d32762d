#!/usr/bin/env bash
# Sets up .venv for development and tests on a fresh machine (idempotent, re-run any time).
# Python 3.11: the CPU build of torch 2.13.0 that tests use is available for it.
# OFFLINEPACK_TORCH_INDEX_URL: an index for the torch install only (e.g. PyTorch's CPU wheel index), passed to
# pip as --index-url; without it pip's own configuration decides, and a machine without a local CPU wheel
# then downloads the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${OFFLINEPACK_DEV_PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

# pip's output (warnings about unreachable configured indexes included) goes to a log: nothing on success,
# its last lines and the log's path on failure
LOG=.venv/setup-dev.log
: > "$LOG"
pip_quiet() {
    if ! .venv/bin/python -m pip "$@" >>"$LOG" 2>&1; then
        echo "error: pip $* failed; its last lines (all of it in $LOG):" >&2
        tail -n 25 "$LOG" >&2
        return 1
    fi
}

# the installs are skipped when their inputs are what they were at the last successful run
STAMP=.venv/setup-dev.stamp
inputs=$(cat scripts/setup-dev.sh pyproject.toml tests/requirements-extra.txt tests/requirements-nodeps.txt 2>/dev/null
         .venv/bin/python --version; echo "torch-index=${OFFLINEPACK_TORCH_INDEX_URL:-}")
digest=$(printf '%s' "$inputs" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$digest" ]; then
    up_to_date=1
else
    up_to_date=0
    rm -f "$STAMP"
    pip_quiet install --quiet --upgrade pip
    # torch first, pinned: a bare `torch` would pull a multi-GB CUDA build.
    torch_index=()
    if [ -n "${OFFLINEPACK_TORCH_INDEX_URL:-}" ]; then
        torch_index=(--index-url "$OFFLINEPACK_TORCH_INDEX_URL")
    fi
    pip_quiet install --quiet ${torch_index[@]+"${torch_index[@]}"} "torch==2.13.0"
    pip_quiet install --quiet -e ".[lock,run,test,kit,score]"
    if [ -s tests/requirements-extra.txt ]; then
        pip_quiet install --quiet -r tests/requirements-extra.txt
    fi
    # packages whose declared dependencies would drag in torchvision/timm or a CUDA torch
    if [ -s tests/requirements-nodeps.txt ]; then
        pip_quiet install --quiet --no-deps -r tests/requirements-nodeps.txt
    fi
    .venv/bin/python -m pip check >>"$LOG" 2>&1 || true
    echo "$digest" > "$STAMP"
fi
# the tests' independent Betti-matching reference: the compiled module inside this wheel, loaded from the file by
# tests/support/betti_reference.py (no deps: the wheel declares torch; never installed, never shipped)
PY_TAG=$(.venv/bin/python -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
if ! ls .venv/reference-wheels/topolosses-0.2.0-"$PY_TAG"-*.whl >/dev/null 2>&1; then
    pip_quiet download --quiet --no-deps "topolosses==0.2.0" -d .venv/reference-wheels 2>/dev/null \
        || echo "warning: could not download topolosses==0.2.0; the Betti-matching reference tests will skip" >&2
fi
if [ "$up_to_date" = 1 ]; then
    echo "dev environment up to date: .venv ($(.venv/bin/python --version)); delete $STAMP to reinstall"
else
    echo "dev environment ready: .venv ($(.venv/bin/python --version))"
fi
