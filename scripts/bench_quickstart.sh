#!/usr/bin/env bash
# Quickstart wall time: one run with the caches this repository keeps for it emptied (the setup-dev stamp and
# the rehearsal's base environment: what every run paid before they existed), then N warm runs (default 3).
# Prints a markdown table row per run: which, wall seconds, CPU seconds (user + system, all child processes: less
# sensitive to a shared machine's load than wall time), the 1-minute load average before and after, the steps.
#   bash scripts/bench_quickstart.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
bash scripts/setup-dev.sh >/dev/null
# the cache rule of `build` and the rehearsal
CACHE=$(.venv/bin/python -c 'from offlinepack.wheelhouse.cache import default_cache_dir; print(default_cache_dir())')
mkdir -p "${OFFLINEPACK_QUICKSTART_DIR:-quickstart-out}"
LOG=${OFFLINEPACK_QUICKSTART_DIR:-quickstart-out}/bench-quickstart.log
TIMES=${OFFLINEPACK_QUICKSTART_DIR:-quickstart-out}/bench-times.txt
trap 'rm -f "$TIMES"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
measure() {
    local which=$1 before wall user sys
    before=$(load)
    TIMEFORMAT='%R %U %S'
    { time bash scripts/quickstart.sh >"$LOG" 2>&1 || { echo "quickstart failed; see $LOG" >&2; exit 1; }; } 2>"$TIMES"
    read -r wall user sys <"$TIMES"
    echo "| $which | $wall | $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }') | $before / $(load) |" \
         "$(grep '^steps:' "$LOG" | sed 's/^steps: //') |"
}
echo "quickstart: $(nproc) cores, $(.venv/bin/python --version 2>/dev/null || echo 'no .venv yet'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "| run | wall s | CPU s | load average (1 min) before / after | steps |"
echo "|---|---|---|---|---|"
rm -f .venv/setup-dev.stamp
rm -rf "$CACHE/rehearsal-base"
measure "cold (no setup stamp, no cached base environment)"
for i in $(seq "$RUNS"); do
    measure "warm $i"
done
