#!/usr/bin/env bash
# The property generators side by side (docs/properties.md, "Measured"):
#   (1) allocator states reached in the same budget: `mmfuzz prop` with the
#       trace-shaped and the uniform generator, every property, SECONDS each
#       run; the model's event counters (reach.json) grouped as the issue
#       names them, per minute of run time;
#   (2) time to find each planted defect: per defect and generator, every
#       property with PER_PROP seconds; the first property to fail and its
#       time (as if the properties ran side by side), or "-" within budget.
#
#   bench/prop_compare.sh                 # SECONDS=60 PER_PROP=5 SEED=1
#   SECONDS_RUN=120 bench/prop_compare.sh --reach-only
# Environment: MMFUZZ (default build/default/bin/mmfuzz), SECONDS_RUN,
# PER_PROP, SEED, DEFECTS (space-separated; default: every planted defect).
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

# Side by side (one core each): the machine is shared and noisy, and both
# see the same noise.
for gen in shaped uniform; do
  "$mmfuzz" prop --generator "$gen" --seed "$seed" --time "$secs" --jobs 1 \
    --corpus "$work/db-$gen" --out "$work/reach-$gen" >/dev/null &
done
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
runs = {}
for gen in ("shaped", "uniform"):
    d = json.load(open(f"{work}/reach-{gen}/reach.json"))
    tot, secs = {}, 0.0
    for p in d.values():
        secs += p["seconds"]
        for k, v in p["events"].items():
            tot[k] = tot.get(k, 0) + v
    runs[gen] = (tot, secs)
def per_min(gen, keys):
    tot, secs = runs[gen]
    return sum(tot.get(k, 0) for k in keys) * 60.0 / max(secs, 1e-9)
print("| state (per minute of run time) | shaped | uniform | shaped / uniform |")
print("|---|---:|---:|---:|")
for name, keys in groups:
    s, u = per_min("shaped", keys), per_min("uniform", keys)
    print(f"| {name} | {s:,.0f} | {u:,.0f} | {s / u if u else float('inf'):.2f} |")
for kind in ("split", "merge"):
    row = []
    for gen in ("shaped", "uniform"):
        tot, _ = runs[gen]
        row.append(sum(1 for k, v in tot.items() if k.startswith(f"buddy_{kind}_order") and v))
    print(f"| buddy {kind} orders reached (distinct) | {row[0]} | {row[1]} | |")
for gen in ("shaped", "uniform"):
    tot, _ = runs[gen]
    print(f"<!-- {gen}: {sum(1 for v in tot.values() if v)} counters non-zero, {runs[gen][1]:.0f} s -->")
EOF

[ "${1:-}" = --reach-only ] && exit 0
defects="${DEFECTS:-buddy_skip_merge slub_freelist_off_by_one vmalloc_no_guard vfree_leaves_pte redzone_not_rearmed watermark_nowait_harder pcp_refill_count_blocks mempool_free_skips_refill slab_flusharray_drops_object slob_units_double_count slob_zero_short}"
echo
echo "| planted defect | shaped: first property, seconds | uniform: first property, seconds |"
echo "|---|---|---|"
for d in $defects; do
  row="| $d |"
  rm -rf "$work/find-shaped" "$work/find-uniform"
  for gen in shaped uniform; do
    "$mmfuzz" prop --generator "$gen" --seed "$seed" --time $((per_prop * nprops)) --jobs 1 \
      --plant "$d" --corpus "$work/find-$gen/db" --out "$work/find-$gen/out" >/dev/null &
  done
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
  echo "$row"
done
