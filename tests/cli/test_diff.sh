#!/usr/bin/env bash
# Differential runs from the command line (docs/properties.md):
#   test_diff.sh MMFUZZ WORK_DIR
# A generated workload under `# diff: slab` replays clean (exit 0); with the
# planted slob_zero_short and a reused kzalloc spliced in, it exits 1 with
# diff.contents|read|diff; `mmfuzz shrink` reduces it to a few ops that keep
# the key and the signature and replay alone; bad diff headers exit 2 with
# one line.
set -u
mmfuzz=${1:?usage: test_diff.sh MMFUZZ WORK_DIR}
work=${2:?}
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
L='           <...>-0       [000] .....     0.000000:'
sig='diff.contents|read|diff'

# bad NAME FILE [ARGS]: exit 2, one line on stderr.
bad() {
  local what=$1 file=$2
  shift 2
  "$mmfuzz" replay "$file" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  [ $rc -eq 2 ] || fail "$what: exit $rc, want 2"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$what: stderr is not one line: $(cat "$work/err")"
}

# A clean workload agrees across SLUB, SLAB and SLOB.
"$mmfuzz" workload --small --ram 32M --ops 1500 --seed 5 -o "$work/clean.program" --no-run \
  >/dev/null || fail "workload: exit $?"
sed -i 's/^# planted: none$/# planted: none\n# diff: slab/' "$work/clean.program"
grep -q '^# diff: slab$' "$work/clean.program" || fail "no diff key in the workload"
"$mmfuzz" replay "$work/clean.program" --json "$work/clean.json" >"$work/clean.out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "clean diff replay: exit $rc: $(tail -5 "$work/clean.out")"
grep -q 'configurations: SLUB, SLAB, SLOB' "$work/clean.out" || fail "configurations not named"
grep -q '"diff": "slab"' "$work/clean.json" || fail "json without diff"

# Errors: a bad value, slab none, a profile that cannot boot the machine,
# --report.
printf '# mmfuzz program v2\n# diff: slub\n' >"$work/badval.program"
bad "bad diff value" "$work/badval.program"
printf '# mmfuzz program v2\n# slab: none\n# diff: slab\n' >"$work/noslab.program"
bad "diff slab without slab" "$work/noslab.program"
printf '# mmfuzz program v2\n# machine: small\n# diff: profile\n%s mmfuzz_tick:\n' "$L" \
  >"$work/noboot.program"
bad "5.10 on 16 MiB" "$work/noboot.program"
bad "--report" "$work/clean.program" --report "$work/report"

# A broken configuration: SLOB's planted slob_zero_short, visible only by
# comparison. Skipped in builds without planted defects.
printf '# mmfuzz program v2\n# machine: small\n# planted: slob_zero_short\n%s mmfuzz_tick:\n' \
  "$L" >"$work/probe.program"
if ! "$mmfuzz" replay "$work/probe.program" --quiet 2>/dev/null; then
  echo "built without planted defects: the disagreement cases are skipped"
  [ $fails -eq 0 ] && echo "diff: ok"
  exit $((fails > 0))
fi
sed 's/^# planted: none$/# planted: slob_zero_short/' "$work/clean.program" >"$work/plain.program"
"$mmfuzz" replay "$work/plain.program" --quiet
[ $? -eq 0 ] || fail "the planted defect alone (no reused kzalloc) disagrees"
{
  grep '^#' "$work/plain.program"
  grep -v '^#' "$work/plain.program" | head -700
  cat <<P
$L kmalloc: call_site=0x0 ptr=0000000007000001 bytes_req=64 bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false
$L mmfuzz_write: ptr=0000000007000001 offset=0 len=64 byte=0xff
$L kfree: call_site=0x0 ptr=0000000007000001
$L kmalloc: call_site=0x0 ptr=0000000007000002 bytes_req=64 bytes_alloc=0 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false
$L mmfuzz_read: ptr=0000000007000002 offset=0 len=64
$L kfree: call_site=0x0 ptr=0000000007000002
P
  grep -v '^#' "$work/plain.program" | tail -n +701
} >"$work/broken.program"
"$mmfuzz" replay "$work/broken.program" --json "$work/broken.json" >"$work/broken.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "broken diff replay: exit $rc, want 1"
grep -q "^signature: $sig\$" "$work/broken.out" || fail "no $sig: $(tail -5 "$work/broken.out")"
grep -q 'SLUB read 0x00 at offset 56, SLAB read 0x00 at offset 56, SLOB read 0xff at offset 56' \
  "$work/broken.out" || fail "the message does not name the configurations and values"
grep -q '"invariant": "diff.contents"' "$work/broken.json" || fail "json without the finding"

out="$work/broken.min.program"
"$mmfuzz" shrink "$work/broken.program" -o "$out" --jobs 2 >"$work/shrink.out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "shrink: exit $rc: $(tail -5 "$work/shrink.out")"
grep -q "signature $sig\$" "$work/shrink.out" || fail "shrink did not keep $sig"
n=$(grep -vc '^#' "$out")
[ "$n" -le 6 ] && [ "$n" -ge 4 ] || fail "$n ops left, want 4 to 6"
grep -q '^# diff: slab$' "$out" || fail "the shrunk Program lost its diff key"
grep -q "^# expect: $sig\$" "$out" || fail "the shrunk Program does not expect $sig"
"$mmfuzz" replay "$out" >"$work/min.out" 2>&1
[ $? -eq 1 ] || fail "replay of the shrunk Program: exit $?, want 1"
grep -q "^expected signature $sig: seen\$" "$work/min.out" || fail "the shrunk Program does not fire $sig alone"

[ $fails -eq 0 ] && echo "diff: ok"
exit $((fails > 0))
