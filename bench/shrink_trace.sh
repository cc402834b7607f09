#!/usr/bin/env bash
# The shrinker on the bundled real trace with one bug inserted near its end
# (tests/cli/inject_bug.py), once and repeated to about 4 M events: ops left,
# candidates and seconds (wall, the whole command: replay of the input, the
# Program form's run, the shrink, the final check). Markdown on stdout.
#
#   bench/shrink_trace.sh [BUILD_DIR] [REPEATS...]     (default: build/default 1 10)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build/default}
shift || true
repeats=${*:-1 10}
mmfuzz=$build/bin/mmfuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zstdcat "$here/corpus/traces/arm64-6.1-boot-shell.trace.zst" >"$work/base.trace"
echo "| bug | events | ops before | ops after | candidates | shrink s | wall s | max RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in $repeats; do
  for bug in double_kfree wrong_cache redzone wrong_order; do
    python3 "$here/tests/cli/inject_bug.py" "$work/base.trace" "$bug" "$work/t.trace" "$r"
    events=$(grep -vc '^#' "$work/t.trace")
    /usr/bin/time -f '%e %M' -o "$work/time" "$mmfuzz" shrink "$work/t.trace" -o "$work/t.min" \
      --jobs "$(nproc)" --json "$work/t.json" --quiet >/dev/null
    read -r wall rss <"$work/time"
    python3 - "$work/t.json" "$bug" "$events" "$wall" "$rss" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
bug, events, wall, rss = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"| {bug} | {events:,} | {j['ops_before']:,} | {j['ops_after']} | {j['candidates']} "
      f"| {j['seconds']:.2f} | {wall:.2f} | {rss // 1024} |")
PY
    rm -f "$work/t.trace"
  done
done
