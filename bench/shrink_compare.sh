#!/usr/bin/env bash
# Crash minimizers side by side on the planted defects' crashes: how many ops
# the reproducer keeps and how long it takes,
#   (a) mmfuzz shrink (Program-level: drops and simplifies ops),
#   (b) afl-tmin on the AFL++ build of the target (build/afl, preset afl),
#   (c) libFuzzer -minimize_crash=1 on the libFuzzer build (build/fuzz, preset fuzz).
# The byte minimizers' outputs are decoded to ops by the driver build of the
# target (build/default/bin/fuzz_<t> FILE prints the crash's Program), so
# every column counts the same thing: the ops of the reproducing Program.
# A column whose tool or build is missing says n/a (notes below the table).
#
#   bench/shrink_compare.sh                     # one crash per planted defect, a markdown table
#   bench/shrink_compare.sh --out DIR           # keep the crashes and the minimizers' outputs in DIR
#   bench/shrink_compare.sh CRASH:TARGET:DEFECT ...   # given crash files instead
#
# The crashes: the builtin driver fuzzing the defect's target from
# corpus/seeds/<t>/ (MMFUZZ_PLANT=<defect>, -seed=SEED, as the fuzz self-test
# does; fuzz/selftest.cmake has the table), the first crash file it writes.
# Environment: TIME (seconds per minimizer and crash, default 60), SEED
# (default 1), LIBFUZZER_RUNS (-runs per minimize step, default 10000),
# MMFUZZ (the mmfuzz binary), DEFAULT_BUILD, FUZZ_BUILD, AFL_BUILD (build
# folders; default build/default, build/fuzz, build/afl).
# Exit status 1 with one line on stderr when the driver build or a crash is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
default_build="${DEFAULT_BUILD:-$root/build/default}"
fuzz_build="${FUZZ_BUILD:-$root/build/fuzz}"
afl_build="${AFL_BUILD:-$root/build/afl}"
mmfuzz="${MMFUZZ:-$default_build/bin/mmfuzz}"
time_budget="${TIME:-60}"
seed="${SEED:-1}"
lf_runs="${LIBFUZZER_RUNS:-10000}"
out=""

# defect, the target that reaches it (fuzz/selftest.cmake)
planted=(
  "buddy_skip_merge page_alloc"
  "slub_freelist_off_by_one slub"
  "redzone_not_rearmed slub"
  "vmalloc_no_guard vm"
  "vfree_leaves_pte vm"
)

die() {
  echo "bench/shrink_compare.sh: error: $*" >&2
  exit 1
}

rows=()
while (($#)); do
  case "$1" in
    --out)
      (($# >= 2)) || die "--out needs a DIR"
      out="$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *:*:*)
      rows+=("$1")
      shift
      ;;
    *) die "unknown argument '$1' (CRASH:TARGET:DEFECT, --out DIR)" ;;
  esac
done

[[ -x "$default_build/bin/fuzz_page_alloc" ]] ||
  die "$default_build/bin/fuzz_* not built (cmake --build --preset default --target fuzz_targets)"
if [[ -z "$out" ]]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/shrink_compare.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# decode TARGET DEFECT FILE: "<ops> <first signature>" of the file's crash
# under the driver build ("- -" when it does not crash there).
decode() {
  local t="$1" d="$2" f="$3" log
  log="$f.decoded.txt"
  (MMFUZZ_PLANT="$d" "$default_build/bin/fuzz_$t" "$f" >"$log" 2>&1 || true) 2>/dev/null
  local sig ops
  sig="$(sed -n 's/^MMFUZZ-SIGNATURE: //p' "$log" | head -n 1)"
  if [[ -z "$sig" ]]; then
    echo "- -"
    return
  fi
  ops="$(awk '/^==MMFUZZ== program:/ { p = 1; next } /^==MMFUZZ== end program/ { p = 0 } p' "$log" |
    grep -cv -e '^#' -e '^[[:space:]]*$' || true)"
  echo "$ops $sig"
}

# ops CELL for a byte minimizer's output: "<ops> / <secs> s", marked when
# its crash's first signature is another one than the input's.
cell() {
  local ops="$1" sig="$2" want="$3" s="$4"
  if [[ "$ops" == "-" ]]; then
    echo "no crash / $s s"
  elif [[ "$sig" != "$want" ]]; then
    echo "$ops / $s s (other signature: \`${sig//|/\\|}\`)"
  else
    echo "$ops / $s s"
  fi
}

notes=()
have_shrink=0
if [[ -x "$mmfuzz" ]] && "$mmfuzz" --help 2>/dev/null | grep -qE '^[[:space:]]+shrink[[:space:]]'; then
  have_shrink=1
else
  notes+=("mmfuzz shrink: n/a, ${mmfuzz#"$root"/} has no shrink subcommand (or is not built)")
fi
have_afl=0
if ! command -v afl-tmin >/dev/null; then
  notes+=("afl-tmin: n/a, afl-tmin not installed (scripts/deps.sh installs AFL++)")
elif [[ ! -d "$afl_build/bin" ]]; then
  notes+=("afl-tmin: n/a, no AFL++ build in ${afl_build#"$root"/} (cmake --preset afl && cmake --build --preset afl)")
else
  have_afl=1
fi
have_lf=0
if [[ ! -d "$fuzz_build/bin" ]]; then
  notes+=("libFuzzer: n/a, no libFuzzer build in ${fuzz_build#"$root"/} (cmake --preset fuzz && cmake --build --preset fuzz)")
else
  have_lf=1
fi

# No crash files given: make one per planted defect.
if ((${#rows[@]} == 0)); then
  for p in "${planted[@]}"; do
    read -r d t <<<"$p"
    dir="$out/$d"
    rm -rf "$dir"
    mkdir -p "$dir/artifacts"
    (MMFUZZ_PLANT="$d" "$default_build/bin/fuzz_$t" -max_total_time=60 -seed="$seed" \
      -artifact_prefix="$dir/artifacts/" "$root/corpus/seeds/$t" >"$dir/fuzz.log" 2>&1 || true) 2>/dev/null
    crash="$(find "$dir/artifacts" -name 'crash-*' -type f | sort | head -n 1)"
    [[ -n "$crash" ]] || die "fuzz_$t found no crash for $d in 60 s (log: $dir/fuzz.log)"
    cp "$crash" "$dir/crash"
    rows+=("$dir/crash:$t:$d")
  done
  notes+=("crashes: the first crash file of fuzz_<t> (builtin driver, ${default_build#"$root"/}) from corpus/seeds/<t>/ with -seed=$seed and MMFUZZ_PLANT=<defect>")
fi
notes+=("ops: the Program's ops (its non-comment lines); byte minimizers' outputs decoded by ${default_build#"$root"/}/bin/fuzz_<t>; seconds are wall time, budget $time_budget s each")
notes+=("shrink keeps the signature; afl-tmin and libFuzzer (-runs=$lf_runs per step) keep any crash: \"other signature\" marks a result whose first signature is not the crash's")

table=()
table+=("| defect | target | signature | ops in crash (bytes) | mmfuzz shrink ops / s | afl-tmin ops / s | libFuzzer -minimize_crash ops / s |")
table+=("|---|---|---|---:|---:|---:|---:|")
for row in "${rows[@]}"; do
  crash="${row%%:*}"
  rest="${row#*:}"
  t="${rest%%:*}"
  d="${rest#*:}"
  [[ -f "$crash" ]] || die "no crash file $crash"
  [[ -x "$default_build/bin/fuzz_$t" ]] || die "$default_build/bin/fuzz_$t not built"
  dir="$out/$d"
  mkdir -p "$dir"
  read -r ops0 sig < <(decode "$t" "$d" "$crash")
  [[ "$ops0" != "-" ]] || die "$crash does not crash fuzz_$t with MMFUZZ_PLANT=$d"
  bytes="$(stat -c %s "$crash")"

  # (a) mmfuzz shrink
  a="n/a"
  if ((have_shrink)); then
    s0="$(now)"
    # The fuzz target's environment: MMFUZZ_PLANT switches the defect on.
    if MMFUZZ_PLANT="$d" "$mmfuzz" shrink "$crash" --target "$t" -o "$dir/shrink.program" --signature "$sig" \
      --time "$time_budget" --json "$dir/shrink.json" >"$dir/shrink.log" 2>&1; then
      s="$(secs "$s0" "$(now)")"
      n="$(grep -cv -e '^#' -e '^[[:space:]]*$' "$dir/shrink.program" || true)"
      "$mmfuzz" replay "$dir/shrink.program" >"$dir/shrink.replay.txt" 2>&1 || true
      if grep -qxF "signature: $sig" "$dir/shrink.replay.txt"; then
        a="$n / $s s"
      else
        a="$n / $s s (does not replay)"
      fi
    else
      a="failed: $(tail -n 1 "$dir/shrink.log" | tr '|' '/')"
    fi
  fi

  # (b) afl-tmin
  b="n/a"
  if ((have_afl)); then
    if [[ ! -x "$afl_build/bin/fuzz_$t" ]]; then
      b="n/a (no fuzz_$t in ${afl_build#"$root"/})"
    else
      s0="$(now)"
      rm -f "$dir/afl-tmin.out"
      rc=0
      MMFUZZ_PLANT="$d" AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
        timeout "$time_budget" afl-tmin -i "$crash" -o "$dir/afl-tmin.out" -m none -t 5000 \
        -- "$afl_build/bin/fuzz_$t" >"$dir/afl-tmin.log" 2>&1 || rc=$?
      s="$(secs "$s0" "$(now)")"
      if [[ -f "$dir/afl-tmin.out" ]]; then
        read -r n nsig < <(decode "$t" "$d" "$dir/afl-tmin.out")
        b="$(cell "$n" "$nsig" "$sig" "$s")"
      elif ((rc == 124)); then
        b="no result in $s s (the budget)"
      else
        b="failed: $(tail -n 1 "$dir/afl-tmin.log" | tr '|' '/')"
      fi
    fi
  fi

  # (c) libFuzzer -minimize_crash=1
  c="n/a"
  if ((have_lf)); then
    if [[ ! -x "$fuzz_build/bin/fuzz_$t" ]]; then
      c="n/a (no fuzz_$t in ${fuzz_build#"$root"/})"
    else
      s0="$(now)"
      rm -f "$dir/libfuzzer.out"
      # The minimize loop starts a step (-runs mutations, -max_total_time
      # each) as long as the last one found a smaller crash, whatever the
      # time: the budget is kept by stopping it; each step leaves its
      # smaller crash in -exact_artifact_path.
      rc=0
      (cd "$dir" && MMFUZZ_PLANT="$d" timeout "$time_budget" "$fuzz_build/bin/fuzz_$t" \
        -minimize_crash=1 -runs="$lf_runs" -max_total_time="$time_budget" \
        -exact_artifact_path="$dir/libfuzzer.out" -rss_limit_mb=2560 -timeout=20 \
        "$crash" >"$dir/libfuzzer.log" 2>&1) || rc=$?
      s="$(secs "$s0" "$(now)")"
      # Nothing smaller found: the crash stays as it was.
      [[ -f "$dir/libfuzzer.out" ]] || cp "$crash" "$dir/libfuzzer.out"
      read -r n nsig < <(decode "$t" "$d" "$dir/libfuzzer.out")
      c="$(cell "$n" "$nsig" "$sig" "$s")"
      ((rc != 124)) || c+=" (stopped at the budget)"
    fi
  fi
  table+=("| $d | $t | \`${sig//|/\\|}\` | $ops0 ($bytes) | $a | $b | $c |")
done

printf '%s\n' "${table[@]}"
if ((${#notes[@]})); then
  echo
  printf -- '- %s\n' "${notes[@]}"
fi
