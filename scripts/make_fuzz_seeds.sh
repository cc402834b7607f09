#!/usr/bin/env bash
# Regenerates the model targets' seed corpora (corpus/seeds/<target>/) from
# windows of the bundled real trace: each window becomes a Program (mmfuzz
# convert) and is encoded for every model target (fuzz_encode). Also
# regenerates corpus/profiles/arm64-6.1-boot-shell.profile.json, the built-in
# profile of the decode tables and the property generators (rebuild after).
#   scripts/make_fuzz_seeds.sh [BUILD_DIR]   (default: build/default)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/default}
mmfuzz=$build/bin/mmfuzz
encode=$build/bin/fuzz_encode
for b in "$mmfuzz" "$encode"; do
  [ -x "$b" ] || { echo "make_fuzz_seeds: $b missing: build it first (cmake --build $build)" >&2; exit 2; }
done
trace=corpus/traces/arm64-6.1-boot-shell.trace.zst
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$mmfuzz" profile "$trace" -o corpus/profiles/arm64-6.1-boot-shell.profile.json >/dev/null

# Windows of 300 trace lines at spread-out offsets (boot, initcalls, shell).
zstdcat "$trace" >"$tmp/all.trace"
lines=$(wc -l <"$tmp/all.trace")
n=0
for off in 2000 20000 60000 120000 200000 280000 350000 $((lines - 400)); do
  sed -n "${off},$((off + 299))p" "$tmp/all.trace" >"$tmp/w$n.trace"
  "$mmfuzz" convert "$tmp/w$n.trace" -o "$tmp/w$n.program" >/dev/null
  n=$((n + 1))
done
for t in page_alloc slub slab slob vm mm; do
  mkdir -p corpus/seeds/$t
  rm -f corpus/seeds/$t/trace-* corpus/seeds/$t/hand-*
  # Hand-written Programs for what the trace does not show (vmalloc events
  # are 6.3+): corpus/seeds/hand/*.program.
  for p in corpus/seeds/hand/*.program; do
    out=corpus/seeds/$t/hand-$(basename "$p" .program)
    "$encode" "$t" "$p" "$out" >/dev/null
    [ -s "$out" ] || rm -f "$out"
  done
  for ((i = 0; i < n; i++)); do
    "$encode" "$t" "$tmp/w$i.program" "corpus/seeds/$t/trace-w$i" >/dev/null
    # Drop windows that leave nothing for this target.
    [ -s "corpus/seeds/$t/trace-w$i" ] || rm -f "corpus/seeds/$t/trace-w$i"
  done
  # The same window on each other machine of fuzz_machines() (fuzz/decoder.h):
  # the prefix 0xfe M picks machine M.
  rm -f corpus/seeds/$t/machine-*
  m=1
  for name in zones numa cma zones-numa-cma; do
    if [ -s "corpus/seeds/$t/trace-w1" ]; then
      { printf "\\xfe\\x$(printf %02x $m)"; cat "corpus/seeds/$t/trace-w1"; } >"corpus/seeds/$t/machine-$name"
    fi
    m=$((m + 1))
  done
done
echo "make_fuzz_seeds: $(find corpus/seeds -path '*/trace-w*' | wc -l) seeds from $n windows"
