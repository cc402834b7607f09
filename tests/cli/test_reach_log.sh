#!/usr/bin/env bash
# MMFUZZ_REACH: a fuzz target sums the model's event counters over every
# input it runs and writes them as JSON at exit (bench/prop_compare.sh's
# libFuzzer column); unset, it writes nothing.
set -u
target=${1:?usage: test_reach_log.sh fuzz_target seed_dir out_dir}
seeds=${2:?}
out=${3:?}
rm -rf "$out" && mkdir -p "$out"
fails=0
MMFUZZ_REACH="$out/reach.json" "$target" "$seeds" >/dev/null 2>&1 || { echo "FAIL: replaying $seeds"; fails=1; }
python3 - "$out/reach.json" "$(find "$seeds" -maxdepth 1 -type f | wc -l)" <<'PY' || fails=1
import json, sys
j = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert j["executions"] == n, f"executions {j['executions']}, want {n}"
assert j["seconds"] > 0, j["seconds"]
ev = j["events"]
assert any(k.startswith(("buddy_split", "pcp_")) for k in ev), f"no page allocator events: {sorted(ev)}"
assert all(isinstance(v, int) and v > 0 for v in ev.values()), "zero or non-integer counters"
print(f"ok:   {n} inputs, {len(ev)} counters")
PY
# A bad path is not the target's failure: the inputs still run, exit 0,
# with one line saying the counters were not written, and no partial file.
MMFUZZ_REACH="$out/no/such/dir/reach.json" "$target" "$seeds" >/dev/null 2>"$out/err" || { echo "FAIL: an unwritable MMFUZZ_REACH failed the run"; fails=1; }
grep -q "MMFUZZ_REACH: cannot write" "$out/err" || { echo "FAIL: no message for an unwritable MMFUZZ_REACH"; fails=1; }
[ -z "$(find "$out" -name '*.tmp')" ] || { echo "FAIL: a temporary file was left"; fails=1; }
exit $fails
