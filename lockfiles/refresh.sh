#!/usr/bin/env bash
# Re-lock the reference requirements for the built-in kaggle-gpu target against the public index.
# Only index pages and metadata are fetched (the kernel's torch/CUDA stack is held, never downloaded).
#   bash lockfiles/refresh.sh                   # kaggle-gpu
#   TARGET=kernel.json bash lockfiles/refresh.sh  # a snapshot taken in the kernel
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3
target="${TARGET:-kaggle-gpu}"
# optional in the kernel: imagecodecs (Pillow reads LZW), cc3d (offlinepack score labels components with scipy)
# vesuvius/: what `offlinepack run` needs (the README's kernel recipe); nnunetv2/: nnunetv2's own predictor,
# kept as the size reference (BENCHMARKS.md, scripts/bench_lock_size.py)
for set in vesuvius nnunetv2; do
    "$python" -m offlinepack lock "$here/$set/requirements.in" --target "$target" -o "$here/$set/pylock.toml" \
        --portable --optional imagecodecs --optional connected-components-3d "$@"
done
# The quickstart's demo lock, for the demo kernel's snapshot (lockfiles/demo/target.json; to re-take it,
# see lockfiles/demo/README.md).
"$python" -m offlinepack lock "$here/demo/requirements.in" --target "$here/demo/target.json" -o "$here/demo/pylock.toml" --portable
