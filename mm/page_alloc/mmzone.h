// Nodes, zones, free areas and per-CPU page lists (include/linux/mmzone.h).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "mm/page_alloc/gfp.h"
#include "mm/phys/page.h"
#include "mm/phys/page_list.h"
#include "mm/types.h"

namespace mmfuzz::mm {

inline constexpr unsigned MAX_ORDER_LIMIT = 16;  // array bound; the profile's MAX_ORDER is <= this
inline constexpr unsigned MAX_PCP_LISTS = 16;    // NR_PCP_LISTS bound
inline constexpr int MAX_ZONELISTS = 2;
inline constexpr int ZONELIST_FALLBACK = 0;
inline constexpr int ZONELIST_NOFALLBACK = 1;

enum zone_watermarks : int { WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO, NR_WMARK };

enum zone_stat_item : int {
  NR_FREE_PAGES,
  NR_ZONE_INACTIVE_ANON,
  NR_ZONE_ACTIVE_ANON,
  NR_ZONE_INACTIVE_FILE,
  NR_ZONE_ACTIVE_FILE,
  NR_ZONE_UNEVICTABLE,
  NR_ZONE_WRITE_PENDING,
  NR_MLOCK,
  NR_BOUNCE,
  NR_ZSPAGES,
  NR_FREE_CMA_PAGES,
  NR_VM_ZONE_STAT_ITEMS
};
const char* zone_stat_name(int item);

enum numa_stat_item : int {
  NUMA_HIT,
  NUMA_MISS,
  NUMA_FOREIGN,
  NUMA_INTERLEAVE_HIT,
  NUMA_LOCAL,
  NUMA_OTHER,
  NR_VM_NUMA_EVENT_ITEMS
};
const char* numa_stat_name(int item);

// The node counters /proc/zoneinfo prints under "per-node stats" (6.1 order).
enum node_stat_item : int {
  NR_INACTIVE_ANON,
  NR_ACTIVE_ANON,
  NR_INACTIVE_FILE,
  NR_ACTIVE_FILE,
  NR_UNEVICTABLE,
  NR_SLAB_RECLAIMABLE_B,
  NR_SLAB_UNRECLAIMABLE_B,
  NR_ISOLATED_ANON,
  NR_ISOLATED_FILE,
  WORKINGSET_NODES,
  WORKINGSET_REFAULT_ANON,
  WORKINGSET_REFAULT_FILE,
  WORKINGSET_ACTIVATE_ANON,
  WORKINGSET_ACTIVATE_FILE,
  WORKINGSET_RESTORE_ANON,
  WORKINGSET_RESTORE_FILE,
  WORKINGSET_NODERECLAIM,
  NR_ANON_MAPPED,
  NR_FILE_MAPPED,
  NR_FILE_PAGES,
  NR_FILE_DIRTY,
  NR_WRITEBACK,
  NR_WRITEBACK_TEMP,
  NR_SHMEM,
  NR_SHMEM_THPS,
  NR_SHMEM_PMDMAPPED,
  NR_FILE_THPS,
  NR_FILE_PMDMAPPED,
  NR_ANON_THPS,
  NR_VMSCAN_WRITE,
  NR_VMSCAN_IMMEDIATE,
  NR_DIRTIED,
  NR_WRITTEN,
  NR_THROTTLED_WRITTEN,
  NR_KERNEL_MISC_RECLAIMABLE,
  NR_FOLL_PIN_ACQUIRED,
  NR_FOLL_PIN_RELEASED,
  NR_KERNEL_STACK_KB,
  NR_PAGETABLE,
  NR_SECONDARY_PAGETABLE,
  NR_SWAPCACHE,
  PGPROMOTE_SUCCESS,
  PGPROMOTE_CANDIDATE,
  NR_VM_NODE_STAT_ITEMS
};
const char* node_stat_name(int item);

struct free_area {
  std::array<page_list, MIGRATE_TYPES> free_list{};
  std::uint64_t nr_free = 0;
  // The model's per-list ledger (the kernel keeps only nr_free): lets the
  // checkers verify per-migratetype counts. A free page's index holds its list.
  std::array<std::uint64_t, MIGRATE_TYPES> nr_free_mt{};
};

struct per_cpu_pages {
  int count = 0;  // pages on the lists
  int high = 0;   // free down to batch when count reaches high
  int batch = 1;  // refill / free chunk
  int free_factor = 0;
  std::array<page_list, MAX_PCP_LISTS> lists{};
};

struct zone {
  std::array<std::uint64_t, NR_WMARK> _watermark{};
  std::uint64_t watermark_boost = 0;
  std::uint64_t nr_reserved_highatomic = 0;
  std::array<long, MAX_NR_ZONES> lowmem_reserve{};
  int node = 0;
  int zone_idx = 0;
  const char* name = "";
  std::vector<per_cpu_pages> per_cpu_pageset;  // one per CPU
  std::vector<int> stat_threshold;             // per CPU ("vm stats threshold")
  int pageset_high = 0;
  int pageset_batch = 1;
  pfn_t zone_start_pfn = 0;
  std::uint64_t managed_pages = 0;
  std::uint64_t spanned_pages = 0;
  std::uint64_t present_pages = 0;
  std::uint64_t cma_pages = 0;
  std::array<free_area, MAX_ORDER_LIMIT> free_area_{};  // the kernel's zone->free_area
  bool boosted_watermark = false;                       // ZONE_BOOSTED_WATERMARK
  std::array<long, NR_VM_ZONE_STAT_ITEMS> vm_stat{};
  std::array<std::uint64_t, NR_VM_NUMA_EVENT_ITEMS> vm_numa_event{};

  pfn_t zone_end_pfn() const { return zone_start_pfn + spanned_pages; }
  bool zone_spans_pfn(pfn_t pfn) const { return pfn >= zone_start_pfn && pfn < zone_end_pfn(); }
  bool populated_zone() const { return present_pages != 0; }
  bool managed_zone() const { return managed_pages != 0; }
  std::uint64_t wmark_pages(int i) const {
    return _watermark[static_cast<std::size_t>(i)] + watermark_boost;
  }
  std::uint64_t min_wmark_pages() const { return wmark_pages(WMARK_MIN); }
  std::uint64_t low_wmark_pages() const { return wmark_pages(WMARK_LOW); }
  std::uint64_t high_wmark_pages() const { return wmark_pages(WMARK_HIGH); }
  long zone_page_state(int item) const { return vm_stat[static_cast<std::size_t>(item)]; }
};

struct zoneref {
  int node = 0;
  int zone_idx = 0;
};

struct zonelist {
  std::vector<zoneref> _zonerefs;
};

struct pglist_data {
  std::array<zone, MAX_NR_ZONES> node_zones;
  std::array<zonelist, MAX_ZONELISTS> node_zonelists;
  int nr_zones = 0;
  int node_id = 0;
  pfn_t node_start_pfn = 0;
  std::uint64_t node_present_pages = 0;
  std::uint64_t node_spanned_pages = 0;
  std::array<long, NR_VM_NODE_STAT_ITEMS> vm_stat{};
  int kswapd_failures = 0;
  std::uint64_t kswapd_wakeups = 0;  // the model's kswapd runs at the next tick
};

}  // namespace mmfuzz::mm
