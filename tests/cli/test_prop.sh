#!/usr/bin/env bash
# mmfuzz prop, end to end (docs/properties.md):
#   test_prop.sh MMFUZZ WORK_DIR CASE
# CASE clean: every property holds on the unmodified model for a fixed seed,
#   writes summary.md and junit.xml, and replays the saved counterexamples.
# CASE <planted defect>:<property>: with the defect planted the property
#   fails, its reproducer is written to the corpus folder, replays alone with
#   the same signature, and the next run replays it first and fails again.
# CASE corpus: the checked-in counterexamples (SOURCE_DIR/corpus/regressions/
#   props, 4th argument) are replayed and pass on the fixed model.
# CASE errors: bad inputs exit 2 with one line on stderr and write nothing.
set -u
mmfuzz=${1:?usage: test_prop.sh MMFUZZ WORK_DIR CASE}
work=${2:?}
case=${3:?}
rm -rf "$work"
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

bad() {
  local what=$1
  shift
  "$mmfuzz" prop "$@" --corpus "$work/db" --out "$work/out" >"$work/stdout" 2>"$work/err"
  local rc=$?
  [ $rc -eq 2 ] || fail "$what: exit $rc, want 2"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$what: stderr is not one line: $(cat "$work/err")"
  [ ! -e "$work/db" ] && [ ! -e "$work/out" ] || fail "$what: wrote output"
}

case $case in
corpus)
  src=${4:?corpus needs SOURCE_DIR}
  "$mmfuzz" prop --seed 1 --runs 1 --corpus "$src/corpus/regressions/props" >"$work/stdout" 2>&1
  rc=$?
  [ $rc -eq 0 ] || fail "checked-in counterexamples fail: $(cat "$work/stdout")"
  n=$(ls "$src"/corpus/regressions/props/*.program | wc -l)
  got=$(grep -o '([0-9]* saved replayed)' "$work/stdout" | tr -dc '0-9\n' | awk '{s += $1} END {print s + 0}')
  [ "${got:-0}" -eq "$n" ] || fail "replayed ${got:-0} of $n saved counterexamples: $(cat "$work/stdout")"
  ;;
errors)
  bad "unknown property" no_such_property --runs 1
  bad "bad --runs" --runs 0
  bad "bad --runs text" --runs many
  bad "bad --seed" --seed 12x --runs 1
  bad "bad --generator" --generator fancy --runs 1
  bad "bad --plant" --plant no_such_defect --runs 1
  bad "bad --max-size" --max-size 0 --runs 1
  bad "unknown flag" --frobnicate
  bad "missing profile" --profile "$work/no-such.json" --runs 1
  printf 'not json\n' >"$work/garbage.json"
  bad "garbage profile" --profile "$work/garbage.json" --runs 1
  printf '{"format": "mmfuzz-profile-9"}\n' >"$work/future.json"
  bad "unknown profile format" --profile "$work/future.json" --runs 1
  ;;
clean)
  "$mmfuzz" prop --seed 20261207 --runs 30 --jobs 2 --corpus "$work/db" --out "$work/out" \
    >"$work/stdout" 2>"$work/err"
  rc=$?
  [ $rc -eq 0 ] || fail "clean run: exit $rc: $(cat "$work/stdout" "$work/err")"
  n=$("$mmfuzz" prop --list | wc -l)
  [ "$(grep -c '^ok ' "$work/stdout")" -eq "$n" ] || fail "not every property ran: $(cat "$work/stdout")"
  grep -q '^| mm |' "$work/out/summary.md" || fail "summary.md lacks the mm property"
  grep -q 'tests="'"$n"'" failures="0"' "$work/out/junit.xml" || fail "junit.xml: $(head -3 "$work/out/junit.xml")"
  [ ! -e "$work/db" ] || fail "a clean run wrote counterexamples"
  ;;
*:*)
  defect=${case%%:*}
  prop=${case#*:}
  "$mmfuzz" prop "$prop" --seed 1 --runs 200 --plant "$defect" --corpus "$work/db" \
    >"$work/stdout" 2>"$work/err"
  rc=$?
  [ $rc -eq 1 ] || fail "planted $defect: exit $rc, want 1: $(cat "$work/stdout" "$work/err")"
  sig=$(awk '$1 == "FAIL" { print $3; exit }' "$work/stdout")
  repro=$(awk '$1 == "reproducer:" { print $2; exit }' "$work/stdout")
  [ -n "$sig" ] && [ -f "$repro" ] || fail "no signature or reproducer: $(cat "$work/stdout")"
  [ "$(dirname "$repro")" = "$work/db" ] || fail "reproducer outside the corpus folder: $repro"
  ops=$(grep -vc '^#' "$repro")
  [ "$ops" -le 10 ] || fail "reproducer has $ops ops, want <= 10"
  "$mmfuzz" replay "$repro" >"$work/replay" 2>&1
  rc=$?
  [ $rc -eq 1 ] || fail "replay: exit $rc, want 1"
  grep -qF "signature: $sig" "$work/replay" || fail "replay lacks signature $sig: $(tail -5 "$work/replay")"
  # The next run replays the saved counterexample first and fails on it.
  "$mmfuzz" prop "$prop" --seed 2 --runs 5 --plant "$defect" --corpus "$work/db" >"$work/again" 2>&1
  rc=$?
  [ $rc -eq 1 ] || fail "second run: exit $rc, want 1"
  grep -q "a saved counterexample still fails" "$work/again" || fail "second run did not replay the saved one: $(cat "$work/again")"
  # Without the defect the saved Program is not replayed (it needs the defect).
  "$mmfuzz" prop "$prop" --seed 2 --runs 5 --corpus "$work/db" >"$work/clean" 2>&1 ||
    fail "run without the defect failed: $(cat "$work/clean")"
  ;;
esac
[ $fails -eq 0 ] && echo "prop $case: ok"
exit $((fails > 0))
