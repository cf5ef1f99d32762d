#!/usr/bin/env bash
# The quickstart: the README's kernel recipe on the bundled demo model, from a fresh machine to a kernel
# folder that has been replayed offline to a valid submission.zip:
#   1. set up offlinepack (the user's machine)                          scripts/setup-dev.sh
#   2. the model dataset: only what `run` loads, checked on CPU          offlinepack model pack
#   3. the wheel dataset for the kernel (lockfiles/demo, its target)     offlinepack build
#   4. the kernel: notebook + kernel-metadata.json                       offlinepack kernel init
#   5. the kernel replayed here: static checks, then every cell with a   offlinepack rehearse
#      real Jupyter kernel, /kaggle/input read-only, no network, on a demo competition volume
# Everything lands in ./quickstart-out (override with OFFLINEPACK_QUICKSTART_DIR), temporary files included
# (quickstart-out/tmp); the user cache ($OFFLINEPACK_CACHE, else $XDG_CACHE_HOME/offlinepack, else
# ~/.cache/offlinepack) keeps downloaded wheels, offlinepack's own wheel and the rehearsal's base environment,
# which makes a second run fast.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${OFFLINEPACK_QUICKSTART_DIR:-quickstart-out}
OWNER=${KAGGLE_USERNAME:-you}
TARGET=lockfiles/demo/target.json   # a snapshot of the kernel (bootstrap.py snapshot): Python 3.11, torch, numpy...
mkdir -p "$WORK/tmp"
export TMPDIR; TMPDIR=$(cd "$WORK/tmp" && pwd)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
STARTED=$(now); STEP_STARTED=$STARTED; TIMES=""
step() {
    [ -n "${STEP_NAME:-}" ] && TIMES+="${STEP_NAME} $(since "$STEP_STARTED") s, "
    STEP_NAME=${1%% *}; STEP_STARTED=$(now)
    printf '\n== %s\n' "$*"
}

step "1/5 offlinepack on this machine"
bash scripts/setup-dev.sh
OP=.venv/bin/offlinepack

step "2/5 model dataset from the bundled demo U-Net: $WORK/model"
"$OP" model pack offlinepack/demo/unet -o "$WORK/model" --dataset-id "$OWNER/offlinepack-demo-model" --force

step "3/5 wheel dataset for the kernel ($TARGET): $WORK/wheelhouse"
rm -rf "$WORK/wheelhouse"
"$OP" build lockfiles/demo/pylock.toml --target "$TARGET" -o "$WORK/wheelhouse" \
    --dataset-id "$OWNER/offlinepack-demo" --title "offlinepack demo wheels"

step "4/5 the kernel folder: $WORK/kernel"
# (mirroring buys the synthetic-sheet demo model nothing and costs 8x on a CPU)
"$OP" kernel init -o "$WORK/kernel" --wheels "$OWNER/offlinepack-demo" --model "$OWNER/offlinepack-demo-model" \
    --id "$OWNER/vesuvius-offlinepack" --run-args "--mirror-axes none" --force

step "5/5 rehearsal: the kernel replayed offline on a demo competition volume"
# a competition-like folder (test_images/<id>.tif + test.csv) standing in for the competition's data
.venv/bin/python -c "from offlinepack.demo import write_demo_input; write_demo_input('$WORK/competition')"
# the previous rehearsal (a venv, ~2000 files) is deleted in the background: a second of unlinking nobody waits for
if [ -e "$WORK/rehearsal" ]; then
    old=$(mktemp -d "$TMPDIR/old-rehearsal.XXXXXX")
    mv "$WORK/rehearsal" "$old/" && { rm -rf "$old" & }
fi
status=0
"$OP" rehearse "$WORK/kernel" --target "$TARGET" --work "$WORK/rehearsal" \
    --dataset "$OWNER/offlinepack-demo=$WORK/wheelhouse" --dataset "$OWNER/offlinepack-demo-model=$WORK/model" \
    --competition-data "$WORK/competition" || status=$?
if [ "$status" -gt 1 ]; then
    echo "the rehearsal says the kernel would fail (exit $status)" >&2
    exit "$status"
fi
step "done"
echo "steps: ${TIMES%, }; total $(since "$STARTED") s"
echo "done: $WORK/rehearsal/working/submission.zip; to run it on Kaggle:"
echo "  kaggle datasets create -p $WORK/model && kaggle datasets create -p $WORK/wheelhouse"
echo "  kaggle kernels push -p $WORK/kernel"
