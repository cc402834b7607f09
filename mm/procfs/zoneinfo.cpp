#include <algorithm>
#include <cstdio>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

namespace {

// pgdat->kswapd_failures at which the node counts as unreclaimable.
constexpr int MAX_RECLAIM_RETRIES = 16;

// On SMP a counter can read negative while per-CPU deltas are unfolded; the
// kernel's readers clamp it to 0 before printing it unsigned.
unsigned long long clamp_stat(long x) {
  return x < 0 ? 0 : static_cast<unsigned long long>(x);
}

// The THP counters are kept in base pages but shown in huge pages.
bool vmstat_item_print_in_thp(const Mm& mm, int item) {
  if (!mm.profile.thp) return false;
  return item == NR_ANON_THPS || item == NR_FILE_THPS || item == NR_SHMEM_THPS ||
         item == NR_SHMEM_PMDMAPPED || item == NR_FILE_PMDMAPPED;
}

bool is_zone_first_populated(const pglist_data& pgdat, const zone& z) {
  for (const zone& candidate : pgdat.node_zones)
    if (candidate.populated_zone()) return &candidate == &z;
  return false;
}

void print_node_stats(std::string& m, const Mm& mm, const pglist_data& pgdat) {
  // A PMD maps one table of 8-byte entries: 2^(PAGE_SHIFT - 3) pages.
  const unsigned hpage_pmd_order = mm.profile.page_shift - 3;
  seq_printf(m, "\n  per-node stats");
  for (int i = 0; i < NR_VM_NODE_STAT_ITEMS; ++i) {
    unsigned long long pages = clamp_stat(pgdat.vm_stat[static_cast<std::size_t>(i)]);
    // The model keeps the slab counters in bytes, as their _B names say.
    if (i == NR_SLAB_RECLAIMABLE_B || i == NR_SLAB_UNRECLAIMABLE_B) pages >>= mm.profile.page_shift;
    if (vmstat_item_print_in_thp(mm, i)) pages >>= hpage_pmd_order;
    seq_printf(m, "\n      %-12s %llu", node_stat_name(i), pages);
  }
}

void zoneinfo_show_print(std::string& m, const Mm& mm, const pglist_data& pgdat, const zone& z) {
  seq_printf(m, "Node %d, zone %8s", pgdat.node_id, z.name);
  if (is_zone_first_populated(pgdat, z)) print_node_stats(m, mm, pgdat);
  seq_printf(m,
             "\n  pages free     %llu"
             "\n        boost    %llu"
             "\n        min      %llu"
             "\n        low      %llu"
             "\n        high     %llu"
             "\n        spanned  %llu"
             "\n        present  %llu"
             "\n        managed  %llu"
             "\n        cma      %llu",
             clamp_stat(z.zone_page_state(NR_FREE_PAGES)),
             static_cast<unsigned long long>(z.watermark_boost),
             static_cast<unsigned long long>(z.min_wmark_pages()),
             static_cast<unsigned long long>(z.low_wmark_pages()),
             static_cast<unsigned long long>(z.high_wmark_pages()),
             static_cast<unsigned long long>(z.spanned_pages),
             static_cast<unsigned long long>(z.present_pages),
             static_cast<unsigned long long>(z.managed_pages),
             static_cast<unsigned long long>(z.cma_pages));
  seq_printf(m, "\n        protection: (%ld", z.lowmem_reserve[0]);
  for (std::size_t i = 1; i < z.lowmem_reserve.size(); ++i)
    seq_printf(m, ", %ld", z.lowmem_reserve[i]);
  m += ')';
  if (!z.populated_zone()) {
    m += '\n';
    return;
  }
  for (int i = 0; i < NR_VM_ZONE_STAT_ITEMS; ++i)
    seq_printf(m, "\n      %-12s %llu", zone_stat_name(i), clamp_stat(z.zone_page_state(i)));
  for (int i = 0; i < NR_VM_NUMA_EVENT_ITEMS; ++i)
    seq_printf(m, "\n      %-12s %llu", numa_stat_name(i),
               static_cast<unsigned long long>(z.vm_numa_event[static_cast<std::size_t>(i)]));
  seq_printf(m, "\n  pagesets");
  for (std::size_t cpu = 0; cpu < z.per_cpu_pageset.size(); ++cpu) {
    const per_cpu_pages& pcp = z.per_cpu_pageset[cpu];
    seq_printf(m,
               "\n    cpu: %i"
               "\n              count: %i"
               "\n              high:  %i"
               "\n              batch: %i",
               static_cast<int>(cpu), pcp.count, pcp.high, pcp.batch);
    const int threshold = cpu < z.stat_threshold.size() ? z.stat_threshold[cpu] : 0;
    seq_printf(m, "\n  vm stats threshold: %d", threshold);
  }
  seq_printf(m,
             "\n  node_unreclaimable:  %u"
             "\n  start_pfn:           %llu",
             pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES ? 1u : 0u,
             static_cast<unsigned long long>(z.zone_start_pfn));
  m += '\n';
}

}  // namespace

// zoneinfo_show(): every zone of every node, populated or not.
std::string zoneinfo(const Mm& mm) {
  std::string m;
  for (const pglist_data& pgdat : mm.page_alloc.node_data)
    for (const zone& z : pgdat.node_zones) zoneinfo_show_print(m, mm, pgdat, z);
  return m;
}

}  // namespace mmfuzz::mm::procfs
