#!/usr/bin/env bash
# `make test` on a fresh clone, idle or beside a CPU hog that saturates every core.
#
#   bash benchmarks/make_test_under_load.sh idle     # fresh clone, make test, wall time
#   bash benchmarks/make_test_under_load.sh loaded   # the same beside one busy loop per core
#
# The hog processes are started and stopped by this script (also on Ctrl-C or failure).
# It clones the current commit into a temporary folder, so the working tree is not touched,
# keeps the log in /tmp/evgrid-make-test-MODE.log, and reports the wall time and whether the clone was left clean (git status --porcelain).
set -euo pipefail
mode=${1:-idle}
case "$mode" in idle|loaded) ;; *) echo "usage: $0 idle|loaded" >&2; exit 2;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/evgrid-load-XXXXXX)
hogs=()
cleanup() {
    for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
git clone --quiet "$repo" "$work/evgrid"
# shared/ beside the clone, as CI lays it out, if the repo has one beside it
[ -d "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
if [ "$mode" = loaded ]; then
    for _ in $(seq "$(nproc)"); do python3 -c "while True: pass" & hogs+=($!); done
    echo "started ${#hogs[@]} busy loops: ${hogs[*]}"
fi
start=$(date +%s)
status=0
(cd "$work/evgrid" && make test) > "$work/make_test.log" 2>&1 || status=$?
wall=$(( $(date +%s) - start ))
cp "$work/make_test.log" "/tmp/evgrid-make-test-$mode.log"
tail -5 "$work/make_test.log"
dirty=$(cd "$work/evgrid" && git status --porcelain)
echo "mode=$mode exit=$status wall=${wall}s ($((wall / 60)) min $((wall % 60)) s) clean=$([ -z "$dirty" ] && echo yes || echo "no: $dirty")"
exit "$status"
