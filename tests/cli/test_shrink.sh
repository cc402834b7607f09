#!/usr/bin/env bash
# mmfuzz shrink, end to end (docs/shrinking.md):
#   test_shrink.sh MMFUZZ SOURCE_DIR WORK_DIR CASE
# CASE double_kfree | wrong_cache | redzone | wrong_order: the bundled real
#   trace with that bug inserted near its end shrinks to a Program of at most
#   10 ops that `mmfuzz replay` reproduces alone with the signature, and the
#   --gtest and --json outputs are written.
# CASE errors: bad inputs exit 2 with one line and write nothing.
set -u
mmfuzz=${1:?usage: test_shrink.sh MMFUZZ SOURCE_DIR WORK_DIR CASE}
src=${2:?}
work=${3:?}
case=${4:?}
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

expect_sig() {
  case $1 in
  double_kfree) echo 'trace.double_free|kfree|trace' ;;
  wrong_cache) echo 'slab.wrong_cache|kmem_cache_free|slab' ;;
  redzone) echo 'kasan.out_of_bounds|write|kasan' ;;
  wrong_order) echo 'page_alloc.wrong_order|free_pages|page_alloc' ;;
  esac
}

# bad CMD...: exit 2, one line on stderr, no output file.
bad() {
  local what=$1
  shift
  rm -f "$work/out.program"
  "$mmfuzz" shrink "$@" -o "$work/out.program" >"$work/out" 2>"$work/err"
  local rc=$?
  [ $rc -eq 2 ] || fail "$what: exit $rc, want 2"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$what: stderr is not one line: $(cat "$work/err")"
  [ ! -e "$work/out.program" ] || fail "$what: wrote an output file"
}

if [ "$case" = errors ]; then
  printf '# mmfuzz program v2\n# machine: fuzz\n# slab: slub\n' >"$work/clean.program"
  printf '           <...>-0       [000] .....     0.000000: kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=8 bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false\n' >>"$work/clean.program"
  bad "no violation" "$work/clean.program"
  bad "missing file" "$work/does-not-exist.trace"
  printf '# mmfuzz program v2\n# machine: nosuch\n' >"$work/badhdr.program"
  bad "bad header" "$work/badhdr.program"
  printf '# mmfuzz program v2\nthis is not an op\n' >"$work/malformed.program"
  bad "malformed program" "$work/malformed.program"
  printf 'xyz' >"$work/bytes"
  bad "unknown target" "$work/bytes" --target nosuch
  # A double free, then a signature it does not fire.
  sed 's/bytes_req=8/bytes_req=8/' "$work/clean.program" >"$work/df.program"
  printf '           <...>-0       [000] .....     0.000000: kfree: call_site=0x0 ptr=0000000000000001\n' >>"$work/df.program"
  printf '           <...>-0       [000] .....     0.000000: kfree: call_site=0x0 ptr=0000000000000001\n' >>"$work/df.program"
  bad "unknown signature" "$work/df.program" --signature 'no.such|kfree|slab'
  # ... and shrinks it: the kmalloc and both kfrees stay.
  "$mmfuzz" shrink "$work/df.program" -o "$work/df.min.program" --quiet >"$work/out" 2>&1 ||
    fail "double free program: exit $?: $(cat "$work/out")"
  n=$(grep -vc '^#' "$work/df.min.program")
  [ "$n" -eq 3 ] || fail "double free program: $n ops, want 3"
  [ $fails -eq 0 ] && echo "shrink errors: ok"
  exit $((fails > 0))
fi

sig=$(expect_sig "$case")
[ -n "$sig" ] || { echo "unknown case $case"; exit 2; }
zstdcat "$src/corpus/traces/arm64-6.1-boot-shell.trace.zst" >"$work/base.trace" || exit 2
python3 "$src/tests/cli/inject_bug.py" "$work/base.trace" "$case" "$work/$case.trace" || exit 2
rm -f "$work/base.trace"
out="$work/$case.min.program"
"$mmfuzz" shrink "$work/$case.trace" -o "$out" --jobs 2 --gtest "$work/test_$case.cpp" \
  --json "$work/$case.json" >"$work/shrink.out" 2>"$work/shrink.err"
rc=$?
cat "$work/shrink.out"
[ $rc -eq 0 ] || fail "shrink exit $rc: $(cat "$work/shrink.err")"
grep -q "signature $sig\$" "$work/shrink.out" || fail "shrink did not keep $sig"
n=$(grep -vc '^#' "$out")
[ "$n" -le 10 ] || fail "$n ops left, want at most 10"
[ "$n" -ge 1 ] || fail "no ops left"
"$mmfuzz" replay "$out" >"$work/replay.out" 2>&1
[ $? -eq 1 ] || fail "replay of the result: exit $?, want 1 (violations)"
grep -qxF "expected signature $sig: seen" "$work/replay.out" || fail "replay does not reproduce $sig"
grep -qF "TEST(Regression, test_$case)" "$work/test_$case.cpp" || fail "no GoogleTest written"
grep -qF "\"$sig\"" "$work/test_$case.cpp" || fail "the GoogleTest does not assert $sig"
grep -q '"ops_after"' "$work/$case.json" || fail "no JSON summary"
rm -f "$work/$case.trace"
[ $fails -eq 0 ] && echo "shrink $case: $n ops, ok"
exit $((fails > 0))
