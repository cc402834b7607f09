#!/usr/bin/env bash
# Every failure becomes a Program that `mmfuzz replay FILE` reproduces alone,
# with the signature its finder saw (docs/program-format.md):
#   (a) every file of corpus/regressions/: its "# expect:" signatures, or
#       clean when it has none;
#   (b) every crash of the planted-defect self-test campaigns (their output
#       folders, given): reproducer.program (the shrinker's) gives each of its
#       "# expect:" signatures, the crash folder's among them, under `mmfuzz
#       replay` and under its fuzz target, with no flag and no MMFUZZ_PLANT;
#   (c) a short builtin campaign on the model targets without a plant: any
#       crash it finds must reproduce the same way.
#
#   test_reproduce.sh BUILD_DIR SOURCE_DIR WORK_DIR [SELFTEST_OUT_DIR ...]
set -u
build=${1:?usage: test_reproduce.sh BUILD_DIR SOURCE_DIR WORK_DIR [SELFTEST_OUT_DIR ...]}
src=${2:?}
work=${3:?}
shift 3
mmfuzz="$build/bin/mmfuzz"
mkdir -p "$work"
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# replay FILE: runs `mmfuzz replay FILE`, no flag; sets rc and writes to
# $work/sigs the signatures it reported ("sig S") and the expected ones
# ("expect S seen|missing"), read off its report.
replay() {
  "$mmfuzz" replay "$1" >"$work/replay.out" 2>"$work/replay.err"
  rc=$?
  sed -n -e 's/^signature: /sig /p' \
    -e 's/^expected signature \(.*\): seen$/expect \1 seen/p' \
    -e 's/^expected signature \(.*\): NOT SEEN$/expect \1 missing/p' "$work/replay.out" >"$work/sigs"
}

t0=$(date +%s.%N)
# ---- (a) the regressions ----
nreg=0
while IFS= read -r f; do
  nreg=$((nreg + 1))
  replay "$f"
  out=$(cat "$work/sigs")
  if [ "$rc" = 2 ] && grep -q "no kmem events in" "$work/replay.err"; then
    echo "ok:   $f holds no kmem event (a fuzz input): exit 2 with one line"
  elif [ "$rc" = 2 ]; then
    fail "mmfuzz replay $f: exit 2: $(head -1 "$work/replay.err")"
  elif echo "$out" | grep -q '^expect '; then
    echo "$out" | grep '^expect .* missing$' | while read -r _ sig _; do echo "  $f: $sig not seen"; done
    if echo "$out" | grep -q '^expect .* missing$' || [ "$rc" != 1 ]; then
      fail "$f does not reproduce its expected signatures (exit $rc)"
    else
      echo "ok:   $f reproduces $(echo "$out" | grep -c '^expect ') expected signature(s)"
    fi
  elif [ "$rc" != 0 ]; then
    fail "$f: a clean regression (no '# expect:') replays with violations: $(echo "$out" | grep '^sig ' | tr '\n' ' ')"
  else
    echo "ok:   $f replays clean"
  fi
done < <(find "$src/corpus/regressions" -type f ! -name 'known-signatures.txt' ! -name 'README*' | sort)
[ "$nreg" -gt 0 ] || fail "no regression files under $src/corpus/regressions"

t1=$(date +%s.%N)
# ---- the fuzz targets read the header too ----
# A bad header in a Program file is a usage error: one line, exit 2.
printf '# mmfuzz program v2\n# slab: slub2\nmmfuzz_tick:\n' >"$work/bad.program"
"$build/bin/fuzz_slub" "$work/bad.program" >/dev/null 2>"$work/err"
rc=$?
if [ "$rc" != 2 ] || [ "$(wc -l <"$work/err")" != 1 ] || ! grep -q "bad.program:2: header slab" "$work/err"; then
  fail "fuzz_slub on a bad header: exit $rc, stderr: $(head -3 "$work/err")"
else
  echo "ok:   fuzz_slub bad.program -> 2: $(cat "$work/err")"
fi
# MMFUZZ_PLANT over the header's planted defect: applied and said.
printf '# mmfuzz program v2\n# machine: fuzz\n# planted: none\nmmfuzz_tick:\n' >"$work/tick.program"
MMFUZZ_PLANT=buddy_skip_merge "$build/bin/fuzz_slub" "$work/tick.program" >/dev/null 2>"$work/err"
rc=$?
if [ "$rc" = 0 ] && grep -q "MMFUZZ_PLANT buddy_skip_merge overrides the program's planted: none" "$work/err"; then
  echo "ok:   fuzz_slub reports MMFUZZ_PLANT over the header"
elif [ "$rc" = 2 ] && grep -q "unknown planted defect\|MMFUZZ_PLANTED_DEFECTS" "$work/err"; then
  echo "ok:   this build has no planted defects"
else
  fail "MMFUZZ_PLANT over a header: exit $rc, stderr: $(head -3 "$work/err")"
fi

# ---- crash folders of a campaign ----
ncrash=0
nrepro=0
# check_campaign DIR [shrunk]: every crashes/*/ of a campaign output
# reproduces; with shrunk, through a reproducer mmfuzz shrink made (at most
# 16 ops: buddy_skip_merge shows only when frees overflow a pcp list and it
# drains, and one campaign's crash shrank to 15 ops none of whose
# allocation/free pairs can go; the others shrink to 1-3).
check_campaign() {
  local d sigs got target missing
  for d in "$1"/crashes/*/; do
    [ -f "$d/report.txt" ] || continue
    ncrash=$((ncrash + 1))
    if [ ! -f "$d/reproducer.program" ]; then
      fail "$d: no reproducer.program"
      continue
    fi
    # What it must reproduce: its "# expect:" signatures (the shrinker's one,
    # or every signature of the crash when it is the crash's own Program),
    # among them the crash folder's.
    sigs=$(sed -n 's/^# expect: //p' "$d/reproducer.program" | sort -u)
    dirsig=$(sed -n 's/^# signature: //p' "$d/report.txt" | head -1)
    if [ -z "$dirsig" ] || ! grep -qxF -- "$dirsig" <<<"$sigs"; then
      fail "$d/reproducer.program: does not expect the crash's signature '$dirsig'"
      continue
    fi
    replay "$d/reproducer.program"
    got=$(sed -n 's/^sig //p' "$work/sigs" | sort -u)
    missing=$(comm -23 <(echo "$sigs") <(echo "$got"))
    if [ -n "$missing" ]; then
      fail "$d/reproducer.program: mmfuzz replay (exit $rc) misses $(echo $missing)"
      continue
    fi
    # Its fuzz target, given the Program alone (no MMFUZZ_PLANT), crashes alike.
    target=$(sed -n 's/^# target: //p' "$d/reproducer.program" | head -1)
    if [ -x "$build/bin/fuzz_$target" ]; then
      got=$(env -u MMFUZZ_PLANT "$build/bin/fuzz_$target" "$d/reproducer.program" 2>&1 |
        sed -n 's/^MMFUZZ-SIGNATURE: //p' | sort -u)
      missing=$(comm -23 <(echo "$sigs") <(echo "$got"))
      if [ -n "$missing" ]; then
        fail "$d/reproducer.program: fuzz_$target misses $(echo $missing)"
        continue
      fi
    else
      fail "$d/reproducer.program: no fuzz target '$target' in $build/bin"
      continue
    fi
    # A self-test crash's reproducer is the shrinker's: a few ops.
    if [ "${2:-}" = shrunk ]; then
      local n
      n=$(grep -vc '^#' "$d/reproducer.program")
      if [ ! -f "$d/shrink.json" ]; then
        fail "$d: not shrunk (no shrink.json; see summary.md)"
        continue
      elif [ "$n" -gt 16 ]; then
        fail "$d/reproducer.program: $n ops after shrinking, want at most 16"
        continue
      fi
    fi
    nrepro=$((nrepro + 1))
    echo "ok:   $d reproduces $(echo "$sigs" | wc -l) signature(s)"
  done
}

t2=$(date +%s.%N)
# ---- (b) the self-test campaigns ----
for camp in "$@"; do
  if ! ls "$camp"/crashes/*/report.txt >/dev/null 2>&1; then
    fail "$camp: the self-test campaign left no crash"
    continue
  fi
  check_campaign "$camp" shrunk
done
nplanted=$ncrash

t3=$(date +%s.%N)
# ---- (c) a short campaign without a plant ----
camp="$work/unplanted"
python3 "$src/ci/campaign.py" --engine builtin --no-build --build-dir "$build" --corpus "$src/corpus" \
  --targets page_alloc,slub,slab,slob,vm,mm --time 1 --jobs 2 --seed 1 --no-minimize \
  --out "$camp" >"$work/campaign.log" 2>&1
crc=$?
if [ "$crc" = 2 ]; then
  fail "the unplanted campaign failed: $(tail -1 "$work/campaign.log")"
else
  check_campaign "$camp"
fi
nunplanted=$((ncrash - nplanted))
t4=$(date +%s.%N)
printf 'time: regressions %.1fs, fuzz target checks %.1fs, self-test crashes %.1fs, unplanted campaign %.1fs\n' \
  "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t3 - $t2" | bc)" "$(echo "$t4 - $t3" | bc)"

echo "regressions: $nreg files replayed"
echo "reproducers: $nrepro of $ncrash reproduce their signatures under mmfuzz replay and their fuzz target ($nplanted from ${#} self-test campaign(s), $nunplanted from the unplanted campaign)"
echo "$fails failure(s)"
[ "$fails" = 0 ]
