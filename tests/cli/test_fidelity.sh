#!/usr/bin/env bash
# Fidelity as a test oracle (cli/fidelity_baseline.h). One case per call:
#   test_fidelity.sh MMFUZZ SRC WORK CASE
#   boot-shell, pressure: the bundled trace agrees at least as its baseline
#   fires:  a policy change (KMALLOC_MIN_SIZE 8: other kmalloc caches)
#           lowers agreement: exit 1, the measure named on stderr
#   errors: a missing, malformed or foreign baseline, two traces: exit 2,
#           one line; --fidelity-record writes what --fidelity-baseline reads
set -u
mmfuzz=$1 src=$2 work=$3 case=$4
rm -rf "$work" && mkdir -p "$work"
traces=$src/corpus/traces base=$src/corpus/fidelity
fail() { echo "FAIL: $*"; exit 1; }
expect_rc() {  # expect_rc WANT DESC CMD...
  local want=$1 desc=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  [ "$rc" = "$want" ] || { cat "$work/err"; fail "$desc: exit $rc, want $want"; }
}
one_line() { [ "$(wc -l <"$work/err")" = 1 ] || { cat "$work/err"; fail "$1: not one line"; }; }
case $case in
  boot-shell)
    expect_rc 0 "boot-shell at its baseline" "$mmfuzz" replay --quiet \
      "$traces/arm64-6.1-boot-shell.trace.zst" --fidelity-baseline "$base/arm64-6.1-boot-shell.json" ;;
  pressure)
    expect_rc 0 "pressure at its baseline" "$mmfuzz" replay --quiet --ram 256M \
      "$traces/arm64-6.1-pressure.trace.zst" --fidelity-baseline "$base/arm64-6.1-pressure.json" ;;
  fires)
    expect_rc 1 "KMALLOC_MIN_SIZE 8 against the 6.1 baseline" "$mmfuzz" replay --quiet \
      --kmalloc-min 8 "$traces/arm64-6.1-boot-shell.trace.zst" \
      --fidelity-baseline "$base/arm64-6.1-boot-shell.json"
    grep -q "fidelity below its baseline.*kmalloc size class" "$work/err" ||
      { cat "$work/err"; fail "the measure that fell is not named"; }
    one_line "fires" ;;
  errors)
    t=$traces/arm64-6.1-boot-shell.trace.zst
    expect_rc 2 "missing baseline" "$mmfuzz" replay --quiet "$t" --fidelity-baseline "$work/none.json"
    one_line "missing"
    echo '{not json' >"$work/bad.json"
    expect_rc 2 "malformed baseline" "$mmfuzz" replay --quiet "$t" --fidelity-baseline "$work/bad.json"
    one_line "malformed"
    echo '{"format": "mmfuzz-fidelity-1", "metrics": {"no such measure": {"agree": 1, "total": 1}}}' >"$work/odd.json"
    expect_rc 2 "unknown measure" "$mmfuzz" replay --quiet "$t" --fidelity-baseline "$work/odd.json"
    one_line "unknown measure"
    echo '{"format": "mmfuzz-fidelity-1", "metrics": {"mm_page_alloc migratetype": {"agree": 2, "total": 1}}}' >"$work/odd.json"
    expect_rc 2 "agree > total" "$mmfuzz" replay --quiet "$t" --fidelity-baseline "$work/odd.json"
    one_line "agree > total"
    expect_rc 2 "two traces" "$mmfuzz" replay --quiet "$t" "$t" --fidelity-baseline "$base/arm64-6.1-boot-shell.json"
    one_line "two traces"
    expect_rc 0 "record" "$mmfuzz" replay --quiet --small "$t" --fidelity-record "$work/rec.json"
    [ -s "$work/rec.json" ] && [ ! -e "$work/rec.json.tmp" ] || fail "record: no file, or a temporary left"
    expect_rc 0 "its own record" "$mmfuzz" replay --quiet --small "$t" --fidelity-baseline "$work/rec.json" ;;
  *) fail "unknown case $case" ;;
esac
echo "ok: fidelity $case"
