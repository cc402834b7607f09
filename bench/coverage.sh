#!/usr/bin/env bash
# What a fuzz campaign reaches of the model (issue 18): a libFuzzer campaign
# over the six model targets, then its corpus replayed by a build with
# clang's source-based coverage, twice: as found, and with every input's
# machine prefix removed (all on the 16 MiB single-zone machine), so the
# report shows what the other machines (zones, NUMA, CMA) add.
#   bench/coverage.sh [SECONDS] [OUT.md]
# SECONDS (default 60) is split evenly over the targets; OUT.md defaults to
# docs/coverage.md. The unmodified model (no planted defects).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out_md=${2:-docs/coverage.md}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 6 ]; then
  echo "coverage.sh: SECONDS must be a whole number of at least 6, not '$secs'" >&2
  exit 2
fi
for tool in clang++-14 llvm-profdata-14 llvm-cov-14; do
  command -v $tool >/dev/null || { echo "coverage.sh: $tool missing (apt-get install clang-14 llvm-14)" >&2; exit 2; }
done
targets=(page_alloc slub slab slob vm mm)
per=$((secs / ${#targets[@]}))
cmake --preset coverage >/dev/null
cmake --build --preset coverage -j "$(nproc)" >/dev/null
bin=build/coverage/bin
work=build/coverage/campaign
rm -rf "$work"
mkdir -p "$work"

for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts"
  # A crash ends a target's campaign early; its corpus so far still counts.
  LLVM_PROFILE_FILE=/dev/null "$bin/fuzz_$t" -max_total_time="$per" -seed=1 \
    -artifact_prefix="$work/artifacts/$t-" "$work/corpus/$t" "corpus/seeds/$t" \
    >"$work/$t.campaign.log" 2>&1 || true
done

# replay KIND: every corpus input once, under coverage.
replay() {
  local kind=$1 t
  mkdir -p "$work/$kind"
  for t in "${targets[@]}"; do
    LLVM_PROFILE_FILE="$work/$kind/$t.profraw" "$bin/fuzz_$t" -runs=0 "$work/$kind-corpus/$t" \
      >"$work/$kind/$t.log" 2>&1 || true
  done
  llvm-profdata-14 merge -sparse "$work/$kind"/*.profraw -o "$work/$kind.profdata"
  local objs=()
  for t in "${targets[@]}"; do objs+=(-object "$bin/fuzz_$t"); done
  llvm-cov-14 export -format=text -instr-profile="$work/$kind.profdata" "${objs[@]:1}" \
    >"$work/$kind.json"
}
mkdir -p "$work/all-corpus" "$work/fuzz-only-corpus"
for t in "${targets[@]}"; do
  cp -r "$work/corpus/$t" "$work/all-corpus/$t"
  mkdir -p "$work/fuzz-only-corpus/$t"
  # The same inputs with the machine prefix (0xfe M) cut: machine "fuzz".
  python3 - "$work/corpus/$t" "$work/fuzz-only-corpus/$t" <<'EOF'
import os, sys
src, dst = sys.argv[1:3]
for name in os.listdir(src):
    b = open(os.path.join(src, name), "rb").read()
    if len(b) >= 2 and b[0] == 0xFE:
        b = b[2:]
    open(os.path.join(dst, name), "wb").write(b)
EOF
done
replay all
replay fuzz-only

inputs=$(find "$work/corpus" -type f | wc -l)
on_machines=$(find "$work/corpus" -type f -exec sh -c 'head -c1 "$1" | od -An -tx1 | grep -q fe' _ {} \; -print | wc -l)
python3 bench/coverage_report.py "$work/all.json" "$work/fuzz-only.json" \
  --command "bench/coverage.sh $secs" --seconds "$secs" --inputs "$inputs" \
  --on-machines "$on_machines" >"$out_md.tmp"
mv "$out_md.tmp" "$out_md"
echo "coverage.sh: wrote $out_md ($inputs corpus inputs, $on_machines on another machine)"
