#!/usr/bin/env bash
# Executions per second of each model fuzz target under each engine, one
# after the other on the same machine (issue 18: where libFuzzer's slowdown
# against the plain driver goes):
#   driver          build/default    the plain driver, gcc -O2, no sanitizers
#   libfuzzer       build/fuzz-fast  libFuzzer, clang -O2, no sanitizers
#   libfuzzer+asan  build/fuzz       libFuzzer with ASan+UBSan (the campaigns' build)
# Each run: SECONDS (default 10) from the target's seeds, seed 1, a fresh
# corpus folder. Builds are not made here: build the presets first
# (cmake --build --preset default / fuzz-fast / fuzz). Prints a markdown
# table with each engine's slowdown against the driver.
#   bench/engine_compare.sh [SECONDS [ENGINE...]]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "engine_compare.sh: SECONDS must be a positive whole number, not '$secs'" >&2
  exit 2
fi
shift || true
targets=(page_alloc slub slab slob vm mm)
declare -A dir_of=([driver]=build/default [libfuzzer]=build/fuzz-fast [libfuzzer+asan]=build/fuzz)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(driver libfuzzer libfuzzer+asan)
engines=()
for n in "${names[@]}"; do
  [ -n "${dir_of[$n]:-}" ] || { echo "engine_compare.sh: unknown engine '$n' (driver, libfuzzer, libfuzzer+asan)" >&2; exit 2; }
  engines+=("$n:${dir_of[$n]}")
done
[ "${names[0]}" = driver ] || { echo "engine_compare.sh: the first engine must be driver (the baseline)" >&2; exit 2; }
for e in "${engines[@]}"; do
  for t in "${targets[@]}"; do
    [ -x "${e#*:}/bin/fuzz_$t" ] || { echo "engine_compare.sh: ${e#*:}/bin/fuzz_$t missing: build its preset first" >&2; exit 2; }
  done
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# execs/s of one run, from the driver's or libFuzzer's last words.
rate() {
  python3 - "$1" "$secs" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
m = re.search(r"(\d+) execs in ([\d.]+) s", text)          # the plain driver
if m:
    print(f"{int(m.group(1)) / float(m.group(2)):.0f}")
    sys.exit()
m = re.findall(r"Done (\d+) runs in (\d+) second", text)   # libFuzzer
if m:
    runs, s = m[-1]
    print(f"{int(runs) / max(int(s), 1):.0f}")
    sys.exit()
print("?")
EOF
}

head="| target |" sep="|---|"
for n in "${names[@]}"; do head+=" $n |" sep+="---:|"; done
for n in "${names[@]:1}"; do head+=" driver / $n |" sep+="---:|"; done
echo "$head"
echo "$sep"
ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print(f'{float(a)/float(b):.1f}' if a!='?' and b not in ('?','0') else '?')" "$1" "$2"; }
for t in "${targets[@]}"; do
  row=()
  for e in "${engines[@]}"; do
    name=${e%%:*} dir=${e#*:}
    c="$work/$name-$t"
    mkdir -p "$c"
    cp corpus/seeds/$t/* "$c/" 2>/dev/null || true
    "$dir/bin/fuzz_$t" -max_total_time="$secs" -seed=1 -artifact_prefix="$work/" "$c" \
      >"$work/$name-$t.log" 2>&1 || true
    row+=("$(rate "$work/$name-$t.log")")
  done
  line="| $t |"
  for r in "${row[@]}"; do line+=" $r |"; done
  for r in "${row[@]:1}"; do line+=" $(ratio "${row[0]}" "$r") |"; done
  echo "$line"
done
