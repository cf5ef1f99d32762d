#!/usr/bin/env bash
# Prepares gpu-prepared/ (git-ignored, < 50 MiB) on this online CPU machine for scripts/gpu_check.py on
# the offline GPU machine, whose Python is captured in tests/data/fixtures/gpu-kernel (CPython 3.12, CUDA torch):
#
#   gpu-prepared/wheelhouse/  `offlinepack lock` + `offlinepack build` of lockfiles/vesuvius/requirements.in for
#                             that target: what bootstrap.py installs there (dynamic-network-architectures,
#                             connected-components-3d, imagecodecs, offlinepack's own wheel)
#   gpu-prepared/extras/      no-deps wheels that only the nnunetv2 comparison needs and the image lacks
#                             (nnunetv2 and its import-time needs; SimpleITK is replaced by a stub module,
#                             since only nnU-Net's file I/O uses it)
#
# Usage: bash scripts/gpu_prepare.sh [OUT_DIR]   (needs the dev venv: bash scripts/setup-dev.sh)
# Then, on the GPU machine (no network): python3 scripts/gpu_check.py --prepared gpu-prepared --out OUT
# With the device tool: carry ["gpu-prepared"] (the working tree plus it must stay under 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-gpu-prepared}
TARGET=tests/data/fixtures/gpu-kernel
PY=.venv/bin/python
[ -x "$PY" ] || { echo "error: no .venv; run: bash scripts/setup-dev.sh" >&2; exit 2; }

# nnunetv2 2.7.0 goes with the dynamic-network-architectures 0.4.2 that the lock keeps for the image's timm
# (0.4.4, needed by nnunetv2 2.8, requires timm<1.0.23). Import-time needs found by importing the
# predictor in a Python with only the image's packages; httpx, msgpack, scipy... are in the image.
EXTRAS_BUILT=("nnunetv2==2.7.0" "acvl-utils==0.2.6" "batchgenerators==0.25.5")
EXTRAS_BINARY=("blosc2==4.15.0" "ndindex==1.10.1" "nibabel==5.4.2")

work="$OUT.tmp"
rm -rf "$work"
mkdir -p "$work/extras"

"$PY" -m offlinepack lock lockfiles/vesuvius/requirements.in --target "$TARGET" -o "$work/pylock.toml"
"$PY" -m offlinepack build "$work/pylock.toml" --target "$TARGET" -o "$work/wheelhouse" --dataset-id offlinepack/gpu-check

"$PY" -m pip wheel --quiet --no-deps -w "$work/extras" "${EXTRAS_BUILT[@]}" 2>&1 | { grep -v "^WARNING: Location" || true; }
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$work/extras" "${EXTRAS_BINARY[@]}" 2>&1 | { grep -v "^WARNING: Location" || true; }

size_kib=$(du -sk "$work" | cut -f1)
if [ "$size_kib" -gt $((50 * 1024)) ]; then
    echo "error: $work is $((size_kib / 1024)) MiB, over the 50 MiB budget (working tree + carried folders <= 64 MiB)" >&2
    exit 1
fi
rm -rf "$OUT"
mv "$work" "$OUT"
echo "prepared $OUT ($((size_kib / 1024)) MiB):"
ls -l "$OUT/wheelhouse" "$OUT/extras" | grep -v "^total"
