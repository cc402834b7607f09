#!/usr/bin/env bash
# The property generators side by side with a libFuzzer campaign
# (docs/properties.md, "Generators compared"):
#   (1) allocator states reached in the same budget: `mmfuzz prop` with the
#       trace-shaped and the uniform generator, every property, SECONDS_RUN
#       each; beside them the six model fuzz targets under libFuzzer,
#       SECONDS_RUN / 6 each (MMFUZZ_REACH sums their counters). The model's
#       event counters (reach.json) grouped as the issue names them, per
#       minute of run time;
#   (2) time to find each planted defect: per defect and generator, every
#       property with PER_PROP seconds, and every model fuzz target with
#       PER_PROP * properties / 6 seconds; the first to fail and its own
#       time (as if they ran side by side), or "-" within budget.
#
#   bench/prop_compare.sh                 # SECONDS_RUN=60 PER_PROP=5 SEED=1
#   SECONDS_RUN=120 bench/prop_compare.sh --reach-only
# Environment: MMFUZZ (default build/default/bin/mmfuzz), SECONDS_RUN,
# PER_PROP, SEED, DEFECTS (space-separated; default: every planted defect),
# PROFILE (a `mmfuzz profile` JSON for the shaped generator; default the
# built-in one), FUZZ_BUILD (default build/fuzz-fast, `cmake --preset
# fuzz-fast && cmake --build --preset fuzz-fast`; no libFuzzer column
# without its bin/fuzz_* ).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mmfuzz="${MMFUZZ:-$root/build/default/bin/mmfuzz}"
secs="${SECONDS_RUN:-60}"
per_prop="${PER_PROP:-5}"
seed="${SEED:-1}"
[ -x "$mmfuzz" ] || { echo "prop_compare: no mmfuzz at $mmfuzz (build it first)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
nprops=$("$mmfuzz" prop --list | wc -l)
fuzz_build="${FUZZ_BUILD:-$root/build/fuzz-fast}"
targets="page_alloc slub slab slob vm mm"
lf=1
for t in $targets; do [ -x "$fuzz_build/bin/fuzz_$t" ] || lf=0; done
[ $lf = 1 ] || echo "prop_compare: no libFuzzer targets in $fuzz_build/bin: no libFuzzer column" >&2

# fuzz_run T SECONDS DIR [PLANT]: one libFuzzer run of target T from its
# seeds, its counters in DIR/reach-T.json; a crash's signature and the
# seconds until it in DIR/crash-T.
fuzz_run() {
  local t=$1 s=$2 d=$3 plant=${4:-} start
  mkdir -p "$d/queue-$t" "$d/art-$t"
  start=$(date +%s.%N)
  MMFUZZ_PLANT="$plant" MMFUZZ_REACH="$d/reach-$t.json" "$fuzz_build/bin/fuzz_$t" \
    -max_total_time="$s" -seed="$seed" -rss_limit_mb=2560 -timeout=20 \
    -artifact_prefix="$d/art-$t/" "$d/queue-$t" "$root/corpus/seeds/$t" >"$d/log-$t" 2>&1 || true
  local sig
  sig=$(grep -m1 '^MMFUZZ-SIGNATURE:' "$d/log-$t" | cut -d' ' -f2 || true)
  [ -n "$sig" ] && echo "$(awk "BEGIN { print $(date +%s.%N) - $start }") $t $sig" >"$d/crash-$t"
  return 0
}

# Side by side (one core each): the machine is shared and noisy, and both
# see the same noise.
# args GEN: the generator flags (the profile goes to the shaped one only).
args() {
  echo "--generator $1"
  [ "$1" = shaped ] && [ -n "${PROFILE:-}" ] && echo "--profile $PROFILE"
  return 0
}
for gen in shaped uniform; do
  "$mmfuzz" prop $(args "$gen") --seed "$seed" --time "$secs" --jobs 1 \
    --corpus "$work/db-$gen" --out "$work/reach-$gen" >/dev/null &
done
# The third process: the three share the two cores alike.
if [ $lf = 1 ]; then
  (for t in $targets; do fuzz_run "$t" $((secs / 6)) "$work/lf"; done) &
fi
wait

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
groups = [
    ("slab churn (slabs allocated + freed)", ["slub_alloc_slab", "slub_free_slab", "slab_grow", "slab_destroy", "slob_page_alloc", "slob_page_free"]),
    ("SLUB cpu-partial moves", ["slub_cpu_partial_alloc", "slub_cpu_partial_free", "slub_cpu_partial_drain"]),
    ("SLUB node-partial moves", ["slub_cpu_partial_node", "slub_alloc_from_partial", "slub_free_add_partial", "slub_free_remove_partial"]),
    ("fallback steals", ["buddy_fallback", "buddy_steal_pageblock"]),
    ("pcp refills + drains", ["pcp_refill", "pcp_free_bulk", "drain_all_pages"]),
    ("SLAB array refills + flushes", ["slab_array_refill", "slab_refill_shared", "slab_flusharray", "slab_reap_drain"]),
    ("SLOB page-list rotations", ["slob_list_rotate"]),
    ("mempool reserve lent + refilled", ["mempool_alloc_reserve", "mempool_free_refill"]),
    ("lazy vmap purges", ["vmalloc_lazy_purge"]),
    ("allocation slow path / failures", ["pgalloc_slowpath", "pgalloc_fail"]),
]
import glob
runs = {}
def add(gen, runs_of):
    tot, secs = {}, 0.0
    for p in runs_of:
        secs += p["seconds"]
        for k, v in p["events"].items():
            tot[k] = tot.get(k, 0) + v
    runs[gen] = (tot, secs)
for gen in ("shaped", "uniform"):
    add(gen, json.load(open(f"{work}/reach-{gen}/reach.json")).values())
lf = sorted(glob.glob(f"{work}/lf/reach-*.json"))
if lf:
    add("libFuzzer", [json.load(open(f)) for f in lf])
gens = list(runs)
def per_min(gen, keys):
    tot, secs = runs[gen]
    return sum(tot.get(k, 0) for k in keys) * 60.0 / max(secs, 1e-9)
print("| state (per minute of run time) | " + " | ".join(gens) + " | shaped / uniform |")
print("|---|" + "---:|" * (len(gens) + 1))
for name, keys in groups:
    v = [per_min(g, keys) for g in gens]
    s, u = v[0], v[1]
    print(f"| {name} | " + " | ".join(f"{x:,.0f}" for x in v) + f" | {s / u if u else float('inf'):.2f} |")
for kind in ("split", "merge"):
    row = []
    for gen in gens:
        tot, _ = runs[gen]
        row.append(str(sum(1 for k, v in tot.items() if k.startswith(f"buddy_{kind}_order") and v)))
    print(f"| buddy {kind} orders reached (distinct) | " + " | ".join(row) + " | |")
for gen in gens:
    tot, _ = runs[gen]
    print(f"<!-- {gen}: {sum(1 for v in tot.values() if v)} counters non-zero, {runs[gen][1]:.0f} s -->")
EOF

[ "${1:-}" = --reach-only ] && exit 0
defects="${DEFECTS:-buddy_skip_merge slub_freelist_off_by_one vmalloc_no_guard vfree_leaves_pte redzone_not_rearmed watermark_nowait_harder pcp_refill_count_blocks mempool_free_skips_refill slab_flusharray_drops_object slob_units_double_count slob_zero_short}"
echo
if [ $lf = 1 ]; then
  echo "| planted defect | shaped: first property, seconds | uniform: first property, seconds | libFuzzer: first target, seconds |"
  echo "|---|---|---|---|"
else
  echo "| planted defect | shaped: first property, seconds | uniform: first property, seconds |"
  echo "|---|---|---|"
fi
for d in $defects; do
  row="| $d |"
  rm -rf "$work/find-shaped" "$work/find-uniform" "$work/find-lf"
  for gen in shaped uniform; do
    "$mmfuzz" prop $(args "$gen") --seed "$seed" --time $((per_prop * nprops)) --jobs 1 \
      --plant "$d" --corpus "$work/find-$gen/db" --out "$work/find-$gen/out" >/dev/null &
  done
  if [ $lf = 1 ]; then
    (for t in $targets; do fuzz_run "$t" $((per_prop * nprops / 6)) "$work/find-lf" "$d"; done) &
  fi
  wait || true
  for gen in shaped uniform; do
    row+=" $(python3 - "$work/find-$gen/out/reach.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
hits = sorted((p["seconds"], n, p["signature"]) for n, p in d.items() if p["failed"])
print(f"{hits[0][1]} ({hits[0][2].split('|')[0]}), {hits[0][0]:.2f} s" if hits else "-")
EOF
) |"
  done
  if [ $lf = 1 ]; then
    first=$(cat "$work"/find-lf/crash-* 2>/dev/null | sort -n | head -1 || true)
    if [ -n "$first" ]; then
      set -- $first
      row+=" $2 (${3%%|*}), $(printf %.2f "$1") s |"
    else
      row+=" - |"
    fi
  fi
  echo "$row"
done
