#!/usr/bin/env bash
# The quickstart, from a fresh machine to a validated submission.zip on built-in defaults:
#   1. set up offlinepack (the user's machine)              scripts/setup-dev.sh
#   2. make a kernel-like Python with a preinstalled stack  (the role Kaggle's image plays)
#   3. build a wheelhouse for it from the demo lock          offlinepack build
#   4. lay it out like /kaggle/input, read-only
#   5. in the "kernel", with no network: bootstrap installs what is missing, checks, and runs
#      the bundled demo model on the bundled sample volume   bootstrap.py run
#   6. validate the submission                               offlinepack validate
# Everything lands in ./quickstart-out (override with OFFLINEPACK_QUICKSTART_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${OFFLINEPACK_QUICKSTART_DIR:-quickstart-out}
DATASET=offlinepack-demo
step() { printf '\n== %s\n' "$*"; }

step "1/6 offlinepack on this machine"
bash scripts/setup-dev.sh
OP=.venv/bin/offlinepack

step "2/6 a kernel-like Python ($WORK/kernel) with the stack in lockfiles/demo/kernel-preinstalled.txt"
mkdir -p "$WORK"
if [ -d "$WORK/kaggle" ]; then chmod -R u+w "$WORK/kaggle"; fi
rm -rf "$WORK/kernel" "$WORK/kaggle" "$WORK/wheelhouse"
"${OFFLINEPACK_DEV_PYTHON:-python3.11}" -m venv "$WORK/kernel"
# (this machine's pip configuration names local folders that may not exist: keep their warnings out)
"$WORK/kernel/bin/python" -m pip install --quiet -r lockfiles/demo/kernel-preinstalled.txt 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }

step "3/6 wheelhouse for that kernel (lockfiles/demo/pylock.toml, target lockfiles/demo/target.json)"
"$OP" build lockfiles/demo/pylock.toml --target lockfiles/demo/target.json -o "$WORK/wheelhouse" \
    --dataset-id "${KAGGLE_USERNAME:-you}/$DATASET" --title "offlinepack demo wheels"

step "4/6 attached like a Kaggle dataset: $WORK/kaggle/input/$DATASET (read-only)"
mkdir -p "$WORK/kaggle/input/$DATASET" "$WORK/kaggle/working"
cp "$WORK"/wheelhouse/* "$WORK/kaggle/input/$DATASET/"
chmod -R a-w "$WORK/kaggle/input"

step "5/6 in the kernel, offline: bootstrap installs what is missing, then runs the demo pipeline"
NO_NET="unshare -rn"
if ! unshare -rn true 2>/dev/null; then
    NO_NET=""
    echo "(network namespaces are not permitted here: running with the network on)"
fi
status=0
$NO_NET "$WORK/kernel/bin/python" "$WORK/kaggle/input/$DATASET/bootstrap.py" --kaggle-root "$WORK/kaggle" \
    run -o "$WORK/kaggle/working/submission.zip" || status=$?
if [ "$status" -gt 1 ]; then
    echo "the kernel run failed (exit $status)" >&2
    exit "$status"
fi

step "6/6 validate $WORK/kaggle/working/submission.zip (ids and shapes from the run's ledger beside it)"
"$OP" validate "$WORK/kaggle/working/submission.zip"
echo
echo "done: $WORK/kaggle/working/submission.zip"
