// The page allocator. Control flow and policy follow Linux 6.1 mm/page_alloc.c
// (5.10 where the profile says so); the code is the model's own.
#include "mm/page_alloc/page_alloc.h"

#include <algorithm>
#include <cstdio>

#include "mm/mm.h"

// Fast-path functions used only in this file: forced inline (-O2 would not).
#define MMFUZZ_HOT [[gnu::always_inline]] inline

namespace mmfuzz::mm {
namespace {

// Fallback order when a migrate type's free lists are empty.
constexpr int kFallbacks[MIGRATE_TYPES][3] = {
    {MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_TYPES},    // UNMOVABLE
    {MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_TYPES},  // MOVABLE
    {MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_TYPES},      // RECLAIMABLE
    {MIGRATE_TYPES, 0, 0},                                    // HIGHATOMIC
    {MIGRATE_TYPES, 0, 0},                                    // CMA
    {MIGRATE_TYPES, 0, 0},                                    // ISOLATE
};

constexpr int POISON_NONE = 0x100;  // free_reserved_area(): no poison

}  // namespace

PageAlloc::PageAlloc(Mm& mm)
    : mm_(mm),
      pcp_v61_(mm.profile.pcp == PcpModel::v6_1),
      thp_(mm.profile.thp),
      init_on_alloc_(mm.profile.init_on_alloc),
      init_on_free_(mm.profile.init_on_free),
      costly_order_(mm.profile.page_alloc_costly_order),
      max_order_(mm.profile.max_order),
      pageblock_order_(mm.profile.pageblock_order),
      nr_pcp_lists_(mm.profile.pcp == PcpModel::v6_1
                        ? MIGRATE_PCPTYPES * (mm.profile.page_alloc_costly_order + 1) +
                              (mm.profile.thp ? 1u : 0u)
                        : static_cast<unsigned>(MIGRATE_PCPTYPES)) {
  if (max_order_ > MAX_ORDER_LIMIT || max_order_ > kVmEventOrders || nr_pcp_lists_ > MAX_PCP_LISTS)
    throw ConfigError("profile exceeds the model's MAX_ORDER or pcp list bound");
}

// ---------------------------------------------------------------- lists

std::uint64_t PageAlloc::list_length(page_list head, std::uint64_t limit) const {
  return lists_.length(head, limit, mm_.sparse.end_pfn() - mm_.sparse.base_pfn());
}

// __find_buddy_pfn() + page_is_buddy(): the buddy at `order`, if it is free
// at that order in the same zone.
MMFUZZ_HOT pfn_t PageAlloc::find_buddy_page_pfn(pfn_t pfn, unsigned order) const {
  const pfn_t buddy_pfn = pfn ^ (pfn_t{1} << order);
  if (!mm_.sparse.pfn_valid(buddy_pfn)) return NO_PAGE;
  const page& p = pg(pfn);
  const page& b = pg(buddy_pfn);
  if (!PageBuddy(b) || buddy_order(b) != order) return NO_PAGE;
  if (b.zone != p.zone || b.nid != p.nid) return NO_PAGE;
  return buddy_pfn;
}

// ---------------------------------------------------------------- helpers

unsigned PageAlloc::pindex_to_order(unsigned pindex) const {
  if (!pcp_v61_) return 0;
  const unsigned low = MIGRATE_PCPTYPES * (costly_order_ + 1);
  return pindex >= low ? pageblock_order_ : pindex / MIGRATE_PCPTYPES;
}

// Is pfn inside a free buddy block (is_free_buddy_page())?
bool PageAlloc::is_free_buddy_page(pfn_t pfn) const {
  for (unsigned order = 0; order < max_order_; ++order) {
    const pfn_t head = pfn & ~((pfn_t{1} << order) - 1);
    if (!mm_.sparse.pfn_valid(head)) break;
    const page& p = pg(head);
    if (PageBuddy(p) && buddy_order(p) >= order) return true;
  }
  return false;
}

// The head of the allocated or pcp block that covers pfn, or NO_PAGE.
pfn_t PageAlloc::owning_block(pfn_t pfn, page_owner_state state) const {
  for (unsigned order = 0; order < max_order_; ++order) {
    const pfn_t head = pfn & ~((pfn_t{1} << order) - 1);
    if (!mm_.sparse.pfn_valid(head)) break;
    const page_owner& o = owner(head);
    if (o.state == state && o.order == order) return head;
  }
  return NO_PAGE;
}

void PageAlloc::touched(pfn_t pfn, std::uint64_t nr) {
  if (mm_.observed()) mm_.notify([&](MmObserver& o) { o.pages_touched(pfn, nr); });
}

void PageAlloc::report_misuse(MisuseKind kind, pfn_t pfn, unsigned order, const char* api,
                              std::string detail, vaddr_t addr) {
  Misuse m;
  m.kind = kind;
  m.pfn = pfn;
  m.order = order;
  m.addr = addr;
  m.api = api;
  m.detail = std::move(detail);
  mm_.notify([&](MmObserver& o) { o.misuse(m); });
}

// ---------------------------------------------------------------- allocation

pfn_t PageAlloc::alloc_pages(gfp_t gfp, unsigned order) {
  return __alloc_pages(gfp, order, numa_node_id());
}

pfn_t PageAlloc::alloc_pages_node(int nid, gfp_t gfp, unsigned order) {
  if (nid == NUMA_NO_NODE) nid = numa_node_id();
  if (nid < 0 || static_cast<std::size_t>(nid) >= node_data.size()) {
    report_misuse(MisuseKind::page_bad_gfp, NO_PAGE, order, "alloc_pages_node",
                  "node " + std::to_string(nid) + " is not online");
    return NO_PAGE;
  }
  return __alloc_pages(gfp, order, nid);
}

unsigned PageAlloc::alloc_flags_nofragment(const zone* z, gfp_t gfp) const {
  unsigned alloc_flags = gfp & __GFP_KSWAPD_RECLAIM;  // == ALLOC_KSWAPD
  if (!z || z->zone_idx != ZONE_NORMAL) return alloc_flags;
  if (node_data.size() > 1 &&
      !node_data[static_cast<std::size_t>(z->node)].node_zones[ZONE_DMA32].populated_zone())
    return alloc_flags;
  return alloc_flags | ALLOC_NOFRAGMENT;
}

pfn_t PageAlloc::__alloc_pages(gfp_t gfp, unsigned order, int preferred_nid) {
  if (order >= max_order_) {
    // WARN_ON_ONCE_GFP(): callers that pass __GFP_NOWARN expect the failure.
    if (!(gfp & __GFP_NOWARN))
      report_misuse(
          MisuseKind::page_bad_order, NO_PAGE, order, "alloc_pages",
          "order " + std::to_string(order) + " >= MAX_ORDER " + std::to_string(max_order_));
    ++nr_alloc_failures;
    mm_.count_vm_event(PGALLOC_FAIL);
    return NO_PAGE;
  }
  if (!gfp_zone_valid(gfp)) {
    report_misuse(MisuseKind::page_bad_gfp, NO_PAGE, order, "alloc_pages",
                  "contradictory GFP mask " + format_gfp(gfp));
    return NO_PAGE;
  }
  alloc_context ac;
  ac.highest_zoneidx = gfp_zone(gfp);
  const pglist_data& pgdat = node_data[static_cast<std::size_t>(preferred_nid)];
  ac.zl = &pgdat.node_zonelists[(gfp & __GFP_THISNODE) ? ZONELIST_NOFALLBACK : ZONELIST_FALLBACK];
  ac.migratetype = page_group_by_mobility_disabled_ ? MIGRATE_UNMOVABLE : gfp_migratetype(gfp);
  for (const auto& zr : ac.zl->_zonerefs) {
    if (zr.zone_idx <= ac.highest_zoneidx) {
      ac.preferred_zoneref = zr;
      ac.have_preferred = true;
      break;
    }
  }
  unsigned alloc_flags = ALLOC_WMARK_LOW;
  if (gfp_migratetype(gfp) == MIGRATE_MOVABLE) alloc_flags |= ALLOC_CMA;
  pfn_t pfn = NO_PAGE;
  if (ac.have_preferred) {
    alloc_flags |= alloc_flags_nofragment(&zone_of(ac.preferred_zoneref), gfp);
    pfn = get_page_from_freelist(gfp, order, alloc_flags, ac);
    if (pfn == NO_PAGE) pfn = __alloc_pages_slowpath(gfp, order, ac);
  } else {
    warn_alloc(gfp, order, preferred_nid, false);
  }
  if (mm_.observed())
    mm_.notify([&](MmObserver& o) { o.mm_page_alloc(pfn, order, gfp, ac.migratetype); });
  return pfn;
}

MMFUZZ_HOT long PageAlloc::__zone_watermark_unusable_free(const zone& z, unsigned order,
                                                          unsigned alloc_flags) const {
  const bool alloc_harder = alloc_flags & (ALLOC_HARDER | ALLOC_OOM);
  long unusable_free = (1L << order) - 1;
  if (!alloc_harder) unusable_free += static_cast<long>(z.nr_reserved_highatomic);
  if (!(alloc_flags & ALLOC_CMA)) unusable_free += z.zone_page_state(NR_FREE_CMA_PAGES);
  return unusable_free;
}

bool PageAlloc::__zone_watermark_ok(const zone& z, unsigned order, std::uint64_t mark,
                                    int highest_zoneidx, unsigned alloc_flags,
                                    long free_pages) const {
  long min = static_cast<long>(mark);
  const bool alloc_harder = alloc_flags & (ALLOC_HARDER | ALLOC_OOM);
  free_pages -= __zone_watermark_unusable_free(z, order, alloc_flags);
  if (alloc_flags & ALLOC_HIGH) min -= min / 2;
  if (alloc_harder) {
    if (alloc_flags & ALLOC_OOM)
      min -= min / 2;
    else
      min -= min / 4;
  }
  if (free_pages <= min + z.lowmem_reserve[static_cast<std::size_t>(highest_zoneidx)]) return false;
  if (!order) return true;
  for (unsigned o = order; o < max_order_; ++o) {
    const free_area& area = z.free_area_[o];
    if (!area.nr_free) continue;
    for (int mt = 0; mt < MIGRATE_PCPTYPES; ++mt)
      if (!list_empty(area.free_list[static_cast<std::size_t>(mt)])) return true;
    if ((alloc_flags & ALLOC_CMA) && !list_empty(area.free_list[MIGRATE_CMA])) return true;
    if (alloc_harder && !list_empty(area.free_list[MIGRATE_HIGHATOMIC])) return true;
  }
  return false;
}

MMFUZZ_HOT bool PageAlloc::zone_watermark_fast(const zone& z, unsigned order, std::uint64_t mark,
                                               int highest_zoneidx, unsigned alloc_flags,
                                               gfp_t gfp) const {
  const long free_pages = z.zone_page_state(NR_FREE_PAGES);
  if (!order) {
    long usable_free = free_pages;
    const long reserved = __zone_watermark_unusable_free(z, 0, alloc_flags);
    usable_free -= std::min(usable_free, reserved);
    if (usable_free >
        static_cast<long>(mark) + z.lowmem_reserve[static_cast<std::size_t>(highest_zoneidx)])
      return true;
  }
  if (__zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, free_pages)) return true;
  // GFP_ATOMIC order-0 ignores boosting at the min watermark.
  if (!order && (gfp & __GFP_ATOMIC) && z.watermark_boost &&
      (alloc_flags & ALLOC_WMARK_MASK) == WMARK_MIN)
    return __zone_watermark_ok(z, order, z._watermark[WMARK_MIN], highest_zoneidx, alloc_flags,
                               free_pages);
  return false;
}

pfn_t PageAlloc::get_page_from_freelist(gfp_t gfp, unsigned order, unsigned alloc_flags,
                                        alloc_context& ac) {
  for (;;) {
    const bool no_fallback = alloc_flags & ALLOC_NOFRAGMENT;
    bool retry = false;
    for (const auto& zr : ac.zl->_zonerefs) {
      if (zr.zone_idx > ac.highest_zoneidx) continue;
      zone& z = zone_of(zr);
      if (no_fallback && node_data.size() > 1 &&
          (zr.node != ac.preferred_zoneref.node || zr.zone_idx != ac.preferred_zoneref.zone_idx)) {
        // Leaving the local node: locality beats fragmentation avoidance.
        if (zr.node != ac.preferred_zoneref.node) {
          alloc_flags &= ~ALLOC_NOFRAGMENT;
          retry = true;
          break;
        }
      }
      const std::uint64_t mark = z.wmark_pages(static_cast<int>(alloc_flags & ALLOC_WMARK_MASK));
      if (!(alloc_flags & ALLOC_NO_WATERMARKS) &&
          !zone_watermark_fast(z, order, mark, ac.highest_zoneidx, alloc_flags, gfp))
        continue;  // node_reclaim_mode is 0
      const bool observed = mm_.observed();
      WatermarkPass seen;
      if (observed) {
        seen.free_pages = z.zone_page_state(NR_FREE_PAGES);
        seen.free_cma_pages = z.zone_page_state(NR_FREE_CMA_PAGES);
        seen.nr_reserved_highatomic = z.nr_reserved_highatomic;
        seen.watermark_boost = z.watermark_boost;
      }
      const pfn_t pfn =
          rmqueue(zone_of(ac.preferred_zoneref), z, order, gfp, alloc_flags, ac.migratetype);
      if (pfn != NO_PAGE) {
        prep_new_page(pfn, order, gfp);
        if (observed) {
          seen.pfn = pfn;
          seen.order = order;
          seen.gfp = gfp;
          seen.alloc_flags = alloc_flags;
          seen.nid = z.node;
          seen.zone_idx = z.zone_idx;
          mm_.notify([&](MmObserver& o) { o.zone_watermark_pass(seen); });
        }
        if (order && (alloc_flags & ALLOC_HARDER)) reserve_highatomic_pageblock(pfn, z);
        return pfn;
      }
    }
    if (retry) continue;
    if (no_fallback) {
      alloc_flags &= ~ALLOC_NOFRAGMENT;
      continue;
    }
    return NO_PAGE;
  }
}

pfn_t PageAlloc::__alloc_pages_slowpath(gfp_t gfp, unsigned order, alloc_context& ac) {
  mm_.count_vm_event(PGALLOC_SLOWPATH);
  const bool can_direct_reclaim = gfp & __GFP_DIRECT_RECLAIM;
  const bool costly_order = order > costly_order_;
  if ((gfp & (__GFP_ATOMIC | __GFP_DIRECT_RECLAIM)) == (__GFP_ATOMIC | __GFP_DIRECT_RECLAIM))
    gfp &= ~__GFP_ATOMIC;

  // gfp_to_alloc_flags()
  unsigned alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
  alloc_flags |= gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM);  // == ALLOC_HIGH, ALLOC_KSWAPD
  // Planted defect (fuzz self-test): every allocation that cannot sleep is
  // treated as __GFP_ATOMIC, so GFP_NOWAIT dips below the min watermark too.
  bool atomic = gfp & __GFP_ATOMIC;
  if (mm_.planted(PlantedDefect::watermark_nowait_harder)) [[unlikely]]
    atomic = !(gfp & __GFP_DIRECT_RECLAIM);
  if (atomic) {
    if (!(gfp & __GFP_NOMEMALLOC)) alloc_flags |= ALLOC_HARDER;
    alloc_flags &= ~ALLOC_CPUSET;
  }
  if (gfp_migratetype(gfp) == MIGRATE_MOVABLE) alloc_flags |= ALLOC_CMA;

  auto wake_all_kswapds = [&] {
    for (const auto& zr : ac.zl->_zonerefs)
      if (zr.zone_idx <= ac.highest_zoneidx)
        node_data[static_cast<std::size_t>(zr.node)].kswapd_wakeups++;
  };
  if (alloc_flags & ALLOC_KSWAPD) wake_all_kswapds();

  pfn_t pfn = get_page_from_freelist(gfp, order, alloc_flags & ~ALLOC_NO_WATERMARKS, ac);
  if (pfn != NO_PAGE) return pfn;

  bool drained = false;
  for (int loops = 0;; ++loops) {
    if (alloc_flags & ALLOC_KSWAPD) wake_all_kswapds();
    unsigned reserve_flags = 0;
    if (!(gfp & __GFP_NOMEMALLOC) && (gfp & __GFP_MEMALLOC)) reserve_flags = ALLOC_NO_WATERMARKS;
    if (reserve_flags) {
      alloc_flags = reserve_flags;
      if (gfp_migratetype(gfp) == MIGRATE_MOVABLE) alloc_flags |= ALLOC_CMA;
    }
    pfn = get_page_from_freelist(gfp, order, alloc_flags, ac);
    if (pfn != NO_PAGE) return pfn;
    if (!can_direct_reclaim) break;
    // Direct reclaim finds nothing to reclaim in the model; before giving up
    // it releases highatomic reserves and drains the pcp lists.
    if (!drained) {
      unreserve_highatomic_pageblock(ac, false);
      drain_all_pages();
      drained = true;
      pfn = get_page_from_freelist(gfp, order, alloc_flags, ac);
      if (pfn != NO_PAGE) return pfn;
    }
    if (gfp & __GFP_NORETRY) break;
    if (costly_order && !(gfp & __GFP_RETRY_MAYFAIL)) break;
    // should_reclaim_retry(): before OOM, exhaust the highatomic reserves.
    if (loops < 64 && unreserve_highatomic_pageblock(ac, true)) continue;
    // __alloc_pages_may_oom(): nothing to kill; __GFP_NOFAIL may use reserves.
    if (gfp & __GFP_NOFAIL) {
      pfn = get_page_from_freelist(gfp, order, ALLOC_NO_WATERMARKS | (alloc_flags & ALLOC_CMA), ac);
      if (pfn != NO_PAGE) return pfn;
    }
    break;
  }
  if (gfp & __GFP_NOFAIL) {
    pfn = get_page_from_freelist(gfp, order, ALLOC_HARDER | (alloc_flags & ALLOC_CMA), ac);
    if (pfn != NO_PAGE) return pfn;
  }
  warn_alloc(gfp, order, ac.preferred_zoneref.node, gfp & __GFP_NOFAIL);
  return NO_PAGE;
}

void PageAlloc::warn_alloc(gfp_t gfp, unsigned order, int nid, bool nofail) {
  ++nr_alloc_failures;
  mm_.count_vm_event(PGALLOC_FAIL);
  if ((gfp & __GFP_NOWARN) && !nofail) return;
  ++nr_alloc_warnings;
  AllocFailure f{order, gfp, nid, nofail, mm_.op_seq};
  if (alloc_warnings.size() < kMaxRecordedWarnings) alloc_warnings.push_back(f);
  mm_.notify([&](MmObserver& o) { o.page_alloc_failure(f); });
}

MMFUZZ_HOT pfn_t PageAlloc::rmqueue(zone& preferred, zone& z, unsigned order, gfp_t /*gfp*/,
                                    unsigned alloc_flags, int migratetype) {
  pfn_t pfn = NO_PAGE;
  if (pcp_allowed_order(order) && ((alloc_flags & ALLOC_CMA) || migratetype != MIGRATE_MOVABLE))
    pfn = rmqueue_pcplist(preferred, z, order, alloc_flags, migratetype);
  if (pfn == NO_PAGE) pfn = rmqueue_buddy(preferred, z, order, alloc_flags, migratetype);
  if (z.boosted_watermark) {
    z.boosted_watermark = false;
    node_data[static_cast<std::size_t>(z.node)].kswapd_wakeups++;
  }
  return pfn;
}

MMFUZZ_HOT pfn_t PageAlloc::rmqueue_pcplist(zone& preferred, zone& z, unsigned order,
                                            unsigned alloc_flags, int migratetype) {
  per_cpu_pages& pcp = z.per_cpu_pageset[static_cast<std::size_t>(mm_.cpu())];
  pcp.free_factor >>= 1;
  const page_list list = pcp.lists[order_to_pindex(migratetype, order)];
  if (list_empty(list)) {
    int batch = pcp.batch;
    if (pcp_v61_ && batch > 1) batch = std::max(batch >> order, 2);
    const int alloced = rmqueue_bulk(z, order, batch, list, migratetype, alloc_flags);
    // Planted defect (fuzz self-test): the refill counts blocks, not pages,
    // as the count did when only order-0 pages sat on pcp lists.
    if (mm_.planted(PlantedDefect::pcp_refill_count_blocks)) [[unlikely]]
      pcp.count += alloced;
    else
      pcp.count += alloced << order;
    if (list_empty(list)) return NO_PAGE;
  }
  const pfn_t pfn = list_first_entry(list);
  list_del(pfn);
  pcp.count -= 1 << order;
  owner_mut(pfn).state = PAGE_OWNER_NONE;
  zone_statistics(preferred, z);
  return pfn;
}

pfn_t PageAlloc::rmqueue_buddy(zone& preferred, zone& z, unsigned order, unsigned alloc_flags,
                               int migratetype) {
  pfn_t pfn = NO_PAGE;
  if (order > 0 && (alloc_flags & ALLOC_HARDER))
    pfn = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC);
  if (pfn == NO_PAGE) pfn = __rmqueue(z, order, migratetype, alloc_flags);
  if (pfn == NO_PAGE) return NO_PAGE;
  __mod_zone_freepage_state(z, -(1L << order), static_cast<int>(pg(pfn).index));
  zone_statistics(preferred, z);
  return pfn;
}

int PageAlloc::rmqueue_bulk(zone& z, unsigned order, int count, page_list list, int migratetype,
                            unsigned alloc_flags) {
  mm_.count_vm_event(PCP_REFILL);
  int allocated = 0, i = 0;
  for (; i < count; ++i) {
    const pfn_t pfn = __rmqueue(z, order, migratetype, alloc_flags);
    if (pfn == NO_PAGE) break;
    list_add_tail(list, pfn);
    page_owner& o = owner_mut(pfn);
    o.state = PAGE_OWNER_PCP;
    o.order = static_cast<std::uint8_t>(order);
    ++allocated;
    if (is_migrate_cma(static_cast<int>(pg(pfn).index)))
      z.vm_stat[NR_FREE_CMA_PAGES] -= 1L << order;
  }
  z.vm_stat[NR_FREE_PAGES] -= static_cast<long>(i) << order;
  return allocated;
}

pfn_t PageAlloc::__rmqueue(zone& z, unsigned order, int migratetype, unsigned alloc_flags) {
  // Balance movable allocations between regular and CMA areas.
  if ((alloc_flags & ALLOC_CMA) &&
      z.zone_page_state(NR_FREE_CMA_PAGES) > z.zone_page_state(NR_FREE_PAGES) / 2) {
    const pfn_t pfn = __rmqueue_smallest(z, order, MIGRATE_CMA);
    if (pfn != NO_PAGE) return pfn;
  }
  for (;;) {
    pfn_t pfn = __rmqueue_smallest(z, order, migratetype);
    if (pfn != NO_PAGE) return pfn;
    if (alloc_flags & ALLOC_CMA) {
      pfn = __rmqueue_smallest(z, order, MIGRATE_CMA);
      if (pfn != NO_PAGE) return pfn;
    }
    if (!__rmqueue_fallback(z, static_cast<int>(order), migratetype, alloc_flags)) return NO_PAGE;
  }
}

pfn_t PageAlloc::__rmqueue_smallest(zone& z, unsigned order, int migratetype) {
  for (unsigned current_order = order; current_order < max_order_; ++current_order) {
    const pfn_t pfn = list_first_entry(
        z.free_area_[current_order].free_list[static_cast<std::size_t>(migratetype)]);
    if (pfn == NO_PAGE) continue;
    del_page_from_free_list(pfn, z, current_order);
    expand(z, pfn, order, current_order, migratetype);
    pg(pfn).index = static_cast<std::uint32_t>(migratetype);  // set_pcppage_migratetype
    if (mm_.observed()) {
      const bool refill = pcp_allowed_order(order) && migratetype < MIGRATE_PCPTYPES;
      mm_.notify(
          [&](MmObserver& o) { o.mm_page_alloc_zone_locked(pfn, order, migratetype, refill); });
    }
    return pfn;
  }
  return NO_PAGE;
}

void PageAlloc::expand(zone& z, pfn_t pfn, unsigned low, unsigned high, int migratetype) {
  std::uint64_t size = std::uint64_t{1} << high;
  while (high > low) {
    mm_.count_vm_event(static_cast<vm_event_item>(BUDDY_SPLIT + high));
    high--;
    size >>= 1;
    add_to_free_list(pfn + size, z, high, migratetype, false);
    page& b = pg(pfn + size);
    b.private_ = high;
    b.set_type(PG_buddy);
  }
}

bool PageAlloc::can_steal_fallback(unsigned order, int start_mt) const {
  if (order >= pageblock_order_) return true;
  return order >= pageblock_order_ / 2 || start_mt == MIGRATE_RECLAIMABLE ||
         start_mt == MIGRATE_UNMOVABLE || page_group_by_mobility_disabled_;
}

int PageAlloc::find_suitable_fallback(const free_area& area, unsigned order, int migratetype,
                                      bool only_stealable, bool* can_steal) const {
  if (area.nr_free == 0) return -1;
  *can_steal = false;
  for (int i = 0;; ++i) {
    const int fallback_mt = kFallbacks[migratetype][i];
    if (fallback_mt == MIGRATE_TYPES) break;
    if (list_empty(area.free_list[static_cast<std::size_t>(fallback_mt)])) continue;
    if (can_steal_fallback(order, migratetype)) *can_steal = true;
    if (!only_stealable) return fallback_mt;
    if (*can_steal) return fallback_mt;
  }
  return -1;
}

bool PageAlloc::boost_watermark(zone& z) {
  const std::uint64_t pb = mm_.profile.pageblock_nr_pages();
  if (!mm_.profile.watermark_boost_factor) return false;
  if (pb * 4 > z.managed_pages) return false;
  std::uint64_t max_boost = z._watermark[WMARK_HIGH] * mm_.profile.watermark_boost_factor / 10000;
  if (!max_boost) return false;
  max_boost = std::max(pb, max_boost);
  z.watermark_boost = std::min(z.watermark_boost + pb, max_boost);
  return true;
}

std::uint64_t PageAlloc::move_freepages_block(zone& z, pfn_t pfn, int migratetype,
                                              int* num_movable) {
  if (num_movable) *num_movable = 0;
  const std::uint64_t nr = mm_.profile.pageblock_nr_pages();
  pfn_t start = pfn & ~(nr - 1);
  const pfn_t end = start + nr - 1;
  if (!z.zone_spans_pfn(start)) start = pfn;
  if (!z.zone_spans_pfn(end)) return 0;
  std::uint64_t moved = 0;
  for (pfn_t p = start; p <= end;) {
    page& pp = pg(p);
    if (!PageBuddy(pp)) {
      // LRU and __PageMovable pages would count as movable; the model has none.
      ++p;
      continue;
    }
    const unsigned order = buddy_order(pp);
    move_to_free_list(p, z, order, migratetype);
    p += pfn_t{1} << order;
    moved += std::uint64_t{1} << order;
  }
  touched(start, nr);
  return moved;
}

void PageAlloc::change_pageblock_range(pfn_t pfn, unsigned start_order, int migratetype) {
  std::uint64_t nr_pageblocks = std::uint64_t{1} << (start_order - pageblock_order_);
  while (nr_pageblocks--) {
    set_pageblock_migratetype(pfn, migratetype);
    pfn += mm_.profile.pageblock_nr_pages();
  }
}

void PageAlloc::steal_suitable_fallback(zone& z, pfn_t pfn, unsigned alloc_flags, int start_type,
                                        bool whole_block) {
  const unsigned current_order = buddy_order(pg(pfn));
  const int old_block_type = get_pageblock_migratetype(pfn);
  const std::uint64_t pb = mm_.profile.pageblock_nr_pages();
  if (!is_migrate_highatomic(old_block_type)) {
    if (current_order >= pageblock_order_) {
      change_pageblock_range(pfn, current_order, start_type);
      mm_.count_vm_event(BUDDY_STEAL_PAGEBLOCK);
    } else {
      if (boost_watermark(z) && (alloc_flags & ALLOC_KSWAPD)) z.boosted_watermark = true;
      if (whole_block) {
        int movable_pages = 0;
        const std::uint64_t free_pages = move_freepages_block(z, pfn, start_type, &movable_pages);
        std::uint64_t alike_pages;
        if (start_type == MIGRATE_MOVABLE)
          alike_pages = static_cast<std::uint64_t>(movable_pages);
        else if (old_block_type == MIGRATE_MOVABLE)
          alike_pages = pb - (free_pages + static_cast<std::uint64_t>(movable_pages));
        else
          alike_pages = 0;
        if (free_pages) {
          if (free_pages + alike_pages >= (pb >> 1) || page_group_by_mobility_disabled_) {
            set_pageblock_migratetype(pfn, start_type);
            mm_.count_vm_event(BUDDY_STEAL_PAGEBLOCK);
          }
          return;
        }
      }
    }
  }
  move_to_free_list(pfn, z, current_order, start_type);
}

bool PageAlloc::__rmqueue_fallback(zone& z, int order, int start_migratetype,
                                   unsigned alloc_flags) {
  int min_order = order;
  if (alloc_flags & ALLOC_NOFRAGMENT) min_order = static_cast<int>(pageblock_order_);
  bool can_steal = false;
  int fallback_mt = -1;
  int current_order = static_cast<int>(max_order_) - 1;
  for (; current_order >= min_order; --current_order) {
    fallback_mt = find_suitable_fallback(z.free_area_[static_cast<std::size_t>(current_order)],
                                         static_cast<unsigned>(current_order), start_migratetype,
                                         false, &can_steal);
    if (fallback_mt == -1) continue;
    // Movable allocations that cannot steal the whole block split the
    // smallest page instead of the largest.
    if (!can_steal && start_migratetype == MIGRATE_MOVABLE && current_order > order) {
      for (current_order = order; current_order < static_cast<int>(max_order_); ++current_order) {
        fallback_mt = find_suitable_fallback(z.free_area_[static_cast<std::size_t>(current_order)],
                                             static_cast<unsigned>(current_order),
                                             start_migratetype, false, &can_steal);
        if (fallback_mt != -1) break;
      }
      if (current_order == static_cast<int>(max_order_)) return false;
    }
    break;
  }
  if (fallback_mt == -1 || current_order < min_order) return false;
  mm_.count_vm_event(BUDDY_FALLBACK);
  const pfn_t pfn = list_first_entry(z.free_area_[static_cast<std::size_t>(current_order)]
                                         .free_list[static_cast<std::size_t>(fallback_mt)]);
  steal_suitable_fallback(z, pfn, alloc_flags, start_migratetype, can_steal);
  if (mm_.observed()) {
    const bool change_ownership = get_pageblock_migratetype(pfn) == start_migratetype;
    mm_.notify([&](MmObserver& o) {
      o.mm_page_alloc_extfrag(pfn, static_cast<unsigned>(order),
                              static_cast<unsigned>(current_order), start_migratetype, fallback_mt,
                              change_ownership);
    });
  }
  return true;
}

void PageAlloc::reserve_highatomic_pageblock(pfn_t pfn, zone& z) {
  const std::uint64_t pb = mm_.profile.pageblock_nr_pages();
  const std::uint64_t max_managed = z.managed_pages / 100 + pb;
  if (z.nr_reserved_highatomic >= max_managed) return;
  const int mt = get_pageblock_migratetype(pfn);
  if (!migratetype_is_mergeable(mt)) return;
  z.nr_reserved_highatomic += pb;
  set_pageblock_migratetype(pfn, MIGRATE_HIGHATOMIC);
  move_freepages_block(z, pfn, MIGRATE_HIGHATOMIC, nullptr);
}

bool PageAlloc::unreserve_highatomic_pageblock(const alloc_context& ac, bool force) {
  const std::uint64_t pb = mm_.profile.pageblock_nr_pages();
  for (const auto& zr : ac.zl->_zonerefs) {
    if (zr.zone_idx > ac.highest_zoneidx) continue;
    zone& z = zone_of(zr);
    if (!force && z.nr_reserved_highatomic <= pb) continue;
    for (unsigned order = 0; order < max_order_; ++order) {
      const pfn_t pfn = list_first_entry(z.free_area_[order].free_list[MIGRATE_HIGHATOMIC]);
      if (pfn == NO_PAGE) continue;
      if (is_migrate_highatomic(get_pageblock_migratetype(pfn)))
        z.nr_reserved_highatomic -= std::min(pb, z.nr_reserved_highatomic);
      set_pageblock_migratetype(pfn, ac.migratetype);
      if (move_freepages_block(z, pfn, ac.migratetype, nullptr)) return true;
    }
  }
  return false;
}

MMFUZZ_HOT void PageAlloc::zone_statistics(zone& preferred, zone& z) {
  const int local_stat = z.node == numa_node_id() ? NUMA_LOCAL : NUMA_OTHER;
  if (z.node == preferred.node) {
    z.vm_numa_event[NUMA_HIT]++;
  } else {
    z.vm_numa_event[NUMA_MISS]++;
    preferred.vm_numa_event[NUMA_FOREIGN]++;
  }
  z.vm_numa_event[static_cast<std::size_t>(local_stat)]++;
}

MMFUZZ_HOT void PageAlloc::prep_new_page(pfn_t pfn, unsigned order, gfp_t gfp) {
  page& p = pg(pfn);
  p.private_ = 0;
  p._refcount = 1;  // set_page_refcounted
  if (init_on_alloc_ || (gfp & __GFP_ZERO)) mm_.ram.zero_pages(pfn, std::uint64_t{1} << order);
  page_owner& o = owner_mut(pfn);
  o.state = PAGE_OWNER_ALLOCATED;
  o.order = static_cast<std::uint8_t>(order);
  o.gfp_mask = gfp;
  o.alloc_seq = mm_.op_seq;
  o.call_site = mm_.call_site;
  o.cpu = static_cast<std::uint16_t>(mm_.cpu());
  if (order && (gfp & __GFP_COMP)) prep_compound_page(pfn, order);
  pgalloc += std::uint64_t{1} << order;
}

void PageAlloc::prep_compound_page(pfn_t pfn, unsigned order) {
  pg(pfn).set(PG_head);
  const std::uint64_t nr = std::uint64_t{1} << order;
  for (std::uint64_t i = 1; i < nr; ++i) pg(pfn + i).compound_head = (pfn << 1) | 1;
  pg(pfn + 1).compound_order = static_cast<std::uint8_t>(order);
}

vaddr_t PageAlloc::__get_free_pages(gfp_t gfp, unsigned order) {
  const pfn_t pfn = alloc_pages(gfp & ~__GFP_HIGHMEM, order);
  return pfn == NO_PAGE ? 0 : mm_.page_address(pfn);
}

vaddr_t PageAlloc::alloc_pages_exact(std::uint64_t size, gfp_t gfp) {
  if (size == 0 || size > (mm_.profile.page_size() << (max_order_ - 1))) {
    report_misuse(MisuseKind::page_bad_order, NO_PAGE, 0, "alloc_pages_exact",
                  "size " + std::to_string(size) + " has no order below MAX_ORDER");
    return 0;
  }
  const unsigned order = fls64((size - 1) >> mm_.profile.page_shift);  // get_order()
  gfp &= ~__GFP_COMP;
  const vaddr_t addr = __get_free_pages(gfp, order);
  if (!addr) return 0;
  // make_alloc_exact(): split, keep the pages that cover size, free the rest.
  const pfn_t pfn = mm_.virt_to_pfn(addr);
  const std::uint64_t nr = (size + mm_.profile.page_size() - 1) >> mm_.profile.page_shift;
  const std::uint64_t total = std::uint64_t{1} << order;
  const page_owner head = owner(pfn);
  for (std::uint64_t i = 0; i < total; ++i) {
    page_owner& o = owner_mut(pfn + i);
    o = head;
    o.order = 0;
  }
  for (std::uint64_t i = 1; i < nr; ++i) pg(pfn + i)._refcount = 1;
  for (std::uint64_t i = nr; i < total; ++i) __free_pages_ok(pfn + i, 0, true);
  return addr;
}

void PageAlloc::free_pages_exact(vaddr_t addr, std::uint64_t size) {
  const vaddr_t end = addr + round_up(size, mm_.profile.page_size());
  for (; addr < end; addr += mm_.profile.page_size()) free_page(addr);
}

// ---------------------------------------------------------------- freeing

// What bad_page(), VM_BUG_ON_PAGE() and page_owner would catch, before any
// state changes. Returns false (and reports) for a misuse.
MMFUZZ_HOT bool PageAlloc::check_free(pfn_t pfn, unsigned order, const char* api, vaddr_t addr) {
  if (!mm_.sparse.pfn_valid(pfn)) {
    report_misuse(MisuseKind::page_bad_pfn, pfn, order, api, "pfn is not a page of this machine",
                  addr);
    return false;
  }
  if (order >= max_order_) {
    report_misuse(MisuseKind::page_bad_order, pfn, order, api, "order >= MAX_ORDER", addr);
    return false;
  }
  const page& p = pg(pfn);
  const page_owner& o = owner(pfn);
  char buf[160];
  if (o.state == PAGE_OWNER_ALLOCATED) {
    if (o.order != order) {
      std::snprintf(buf, sizeof buf, "freeing order %u of a block allocated at order %u", order,
                    o.order);
      report_misuse(MisuseKind::page_wrong_order, pfn, order, api, buf, addr);
      return false;
    }
    if (p._refcount <= 0) {
      report_misuse(MisuseKind::page_refcount_underflow, pfn, order, api,
                    "nonzero _refcount expected", addr);
      return false;
    }
    if (p._refcount == 1 && (p.flags & PAGE_FLAGS_CHECK_AT_FREE)) {
      report_misuse(MisuseKind::page_bad_state, pfn, order, api,
                    "PAGE_FLAGS_CHECK_AT_FREE flag(s) set", addr);
      return false;
    }
    // A large kmalloc is a plain compound page: the kernel frees it quietly
    // and its slab accounting goes wrong; the model refuses (kfree() takes
    // it off the slab layer's list before it frees the pages).
    if (p._refcount == 1 && !mm_.slab.large_kmallocs().empty() && mm_.slab.large_kmalloc_size(pfn))
        [[unlikely]] {
      report_misuse(MisuseKind::page_free_kmalloc, pfn, order, api,
                    "the pages of a live large kmalloc: kfree() it", addr);
      return false;
    }
    return true;
  }
  if (PageReserved(p)) {
    report_misuse(MisuseKind::page_free_reserved, pfn, order, api,
                  "freeing a PG_reserved page (memblock reservation or kernel image)", addr);
    return false;
  }
  if (PageBuddy(p) || is_free_buddy_page(pfn)) {
    report_misuse(MisuseKind::page_double_free, pfn, order, api,
                  "page is already free in the buddy allocator", addr);
    return false;
  }
  if (owning_block(pfn, PAGE_OWNER_PCP) != NO_PAGE) {
    report_misuse(MisuseKind::page_double_free, pfn, order, api,
                  "page is already free on a per-cpu list", addr);
    return false;
  }
  const pfn_t head = PageTail(p) ? (p.compound_head >> 1) : owning_block(pfn, PAGE_OWNER_ALLOCATED);
  if (head != NO_PAGE) {
    std::snprintf(buf, sizeof buf,
                  "pfn 0x%llx is inside the order-%u allocation at pfn 0x%llx, not its head",
                  static_cast<unsigned long long>(pfn), owner(head).order,
                  static_cast<unsigned long long>(head));
    report_misuse(MisuseKind::page_free_tail, pfn, order, api, buf, addr);
    return false;
  }
  report_misuse(MisuseKind::page_bad_state, pfn, order, api, "page is neither allocated nor free",
                addr);
  return false;
}

void PageAlloc::__free_pages(pfn_t pfn, unsigned order) {
  free_pages_common(pfn, order, "__free_pages", 0);
}

void PageAlloc::free_pages_common(pfn_t pfn, unsigned order, const char* api, vaddr_t addr) {
  if (!check_free(pfn, order, api, addr)) return;
  page& p = pg(pfn);
  if (--p._refcount == 0) {
    free_the_page(pfn, order);
  } else if (!PageHead(p)) {
    // Someone else holds the first page: free the rest (__free_pages()).
    owner_mut(pfn).order = 0;
    while (order-- > 0) {
      page_owner& t = owner_mut(pfn + (pfn_t{1} << order));
      t = owner(pfn);
      t.order = static_cast<std::uint8_t>(order);
      free_the_page(pfn + (pfn_t{1} << order), order);
    }
  }
}

void PageAlloc::free_pages(vaddr_t addr, unsigned order) {
  if (addr == 0) return;
  if (!mm_.virt_addr_valid(addr)) {
    report_misuse(MisuseKind::page_bad_pfn, NO_PAGE, order, "free_pages",
                  "not a linear-map address of RAM", addr);
    return;
  }
  free_pages_common(mm_.virt_to_pfn(addr), order, "free_pages", addr);
}

void PageAlloc::split_page(pfn_t pfn, unsigned order) {
  if (!mm_.sparse.pfn_valid(pfn)) {
    report_misuse(MisuseKind::page_bad_pfn, pfn, order, "split_page",
                  "pfn is not a page of this machine");
    return;
  }
  const page& p = pg(pfn);
  if (PageCompound(p)) {
    report_misuse(MisuseKind::page_split_compound, pfn, order, "split_page",
                  "VM_BUG_ON_PAGE(PageCompound(page))");
    return;
  }
  const page_owner head = owner(pfn);
  if (head.state != PAGE_OWNER_ALLOCATED || head.order != order || p._refcount <= 0) {
    report_misuse(
        MisuseKind::page_wrong_order, pfn, order, "split_page",
        "split_page() of something that is not an order-" + std::to_string(order) + " allocation");
    return;
  }
  for (std::uint64_t i = 0; i < (std::uint64_t{1} << order); ++i) {
    page_owner& o = owner_mut(pfn + i);
    o = head;
    o.order = 0;
    if (i) pg(pfn + i)._refcount = 1;
  }
}

void PageAlloc::get_page(pfn_t pfn) {
  if (!mm_.sparse.pfn_valid(pfn)) {
    report_misuse(MisuseKind::page_bad_pfn, pfn, 0, "get_page",
                  "pfn is not a page of this machine");
    return;
  }
  if (PageTail(pg(pfn))) pfn = pg(pfn).compound_head >> 1;
  page& p = pg(pfn);
  if (p._refcount <= 0) {
    report_misuse(MisuseKind::page_bad_state, pfn, 0, "get_page",
                  "get_page() on a page with refcount 0");
    return;
  }
  p._refcount++;
}

void PageAlloc::put_page(pfn_t pfn) {
  if (!mm_.sparse.pfn_valid(pfn)) {
    report_misuse(MisuseKind::page_bad_pfn, pfn, 0, "put_page",
                  "pfn is not a page of this machine");
    return;
  }
  if (PageTail(pg(pfn))) pfn = pg(pfn).compound_head >> 1;
  page& p = pg(pfn);
  if (p._refcount <= 0) {
    report_misuse(MisuseKind::page_refcount_underflow, pfn, 0, "put_page",
                  "put_page() on a page whose refcount is already 0");
    return;
  }
  const unsigned order = PageHead(p) ? pg(pfn + 1).compound_order : 0;
  if (p._refcount == 1) {
    const page_owner& o = owner(pfn);
    if (!PageHead(p) && o.state == PAGE_OWNER_ALLOCATED && o.order != 0) {
      report_misuse(MisuseKind::page_wrong_order, pfn, 0, "put_page",
                    "last put_page() of a non-compound order-" + std::to_string(o.order) +
                        " block would free only its first page");
      return;
    }
    if (!check_free(pfn, order, "put_page", 0)) return;
  }
  if (--p._refcount == 0) free_the_page(pfn, order);
}

MMFUZZ_HOT bool PageAlloc::free_pages_prepare(pfn_t pfn, unsigned order) {
  if (mm_.observed()) mm_.notify([&](MmObserver& o) { o.mm_page_free(pfn, order); });
  page& head = pg(pfn);
  if (order && PageHead(head)) {
    const std::uint64_t nr = std::uint64_t{1} << order;
    for (std::uint64_t i = 1; i < nr; ++i) pg(pfn + i).compound_head = 0;
    pg(pfn + 1).compound_order = 0;
  }
  head.flags = 0;  // PAGE_FLAGS_CHECK_AT_PREP
  page_owner& o = owner_mut(pfn);
  o.state = PAGE_OWNER_NONE;
  o.free_seq = mm_.op_seq;
  if (init_on_free_) mm_.ram.zero_pages(pfn, std::uint64_t{1} << order);
  pgfree += std::uint64_t{1} << order;
  return true;
}

MMFUZZ_HOT void PageAlloc::free_the_page(pfn_t pfn, unsigned order) {
  if (pcp_allowed_order(order))
    free_unref_page(pfn, order);
  else
    __free_pages_ok(pfn, order, false);
}

MMFUZZ_HOT void PageAlloc::free_unref_page(pfn_t pfn, unsigned order) {
  if (!free_pages_prepare(pfn, order)) return;
  int migratetype = get_pageblock_migratetype(pfn);
  pg(pfn).index = static_cast<std::uint32_t>(migratetype);  // set_pcppage_migratetype
  if (migratetype >= MIGRATE_PCPTYPES) {
    if (is_migrate_isolate(migratetype)) {
      __free_one_page(pfn, page_zone(pfn), order, migratetype, false);
      return;
    }
    migratetype = MIGRATE_MOVABLE;  // HIGHATOMIC and CMA go to the movable list
  }
  zone& z = page_zone(pfn);
  free_unref_page_commit(z, z.per_cpu_pageset[static_cast<std::size_t>(mm_.cpu())], pfn,
                         migratetype, order);
}

MMFUZZ_HOT int PageAlloc::nr_pcp_high(const per_cpu_pages& pcp, bool free_high) const {
  if (!pcp.high || free_high) return 0;
  return pcp.high;  // ZONE_RECLAIM_ACTIVE is never set: the model has no reclaim
}

int PageAlloc::nr_pcp_free(per_cpu_pages& pcp, int high, int batch, bool free_high) const {
  if (free_high) return pcp.count;
  if (high < batch) return 1;
  const int min_nr_free = batch;
  const int max_nr_free = high - batch;
  batch <<= pcp.free_factor;
  if (batch < max_nr_free) pcp.free_factor++;
  return std::clamp(batch, min_nr_free, std::max(min_nr_free, max_nr_free));
}

MMFUZZ_HOT void PageAlloc::free_unref_page_commit(zone& z, per_cpu_pages& pcp, pfn_t pfn,
                                                  int migratetype, unsigned order) {
  const unsigned pindex = order_to_pindex(migratetype, order);
  list_add(pcp.lists[pindex], pfn);
  page_owner& o = owner_mut(pfn);
  o.state = PAGE_OWNER_PCP;
  o.order = static_cast<std::uint8_t>(order);
  pcp.count += 1 << order;
  if (!pcp_v61_) {
    if (pcp.count >= pcp.high) free_pcppages_bulk(z, pcp.batch, pcp, pindex);
    return;
  }
  const bool free_high = pcp.free_factor && order && order <= costly_order_;
  const int high = nr_pcp_high(pcp, free_high);
  if (pcp.count >= high)
    free_pcppages_bulk(z, nr_pcp_free(pcp, high, pcp.batch, free_high), pcp, pindex);
}

void PageAlloc::free_pcppages_bulk(zone& z, int count, per_cpu_pages& pcp, unsigned pindex) {
  mm_.count_vm_event(PCP_FREE_BULK);
  count = std::min(pcp.count, count);
  auto release = [&](pfn_t pfn, unsigned order) {
    int mt = static_cast<int>(pg(pfn).index);
    list_del(pfn);
    owner_mut(pfn).state = PAGE_OWNER_NONE;
    pcp.count -= 1 << order;
    if (is_migrate_isolate(get_pageblock_migratetype(pfn))) mt = MIGRATE_ISOLATE;
    __free_one_page(pfn, z, order, mt, false);
    if (mm_.observed()) mm_.notify([&](MmObserver& o) { o.mm_page_pcpu_drain(pfn, order, mt); });
    return 1 << order;
  };
  if (!pcp_v61_) {
    int migratetype = 0, batch_free = 0;
    while (count > 0) {
      page_list list = 0;
      int tries = 0;
      do {
        batch_free++;
        if (++migratetype == MIGRATE_PCPTYPES) migratetype = 0;
        list = pcp.lists[static_cast<std::size_t>(migratetype)];
      } while (list_empty(list) && ++tries <= MIGRATE_PCPTYPES);
      if (list_empty(list)) return;  // count disagrees with the lists: leave it to the checkers
      if (batch_free == MIGRATE_PCPTYPES) batch_free = count;
      do {
        count -= release(list_last_entry(list), 0);
      } while (count > 0 && --batch_free && !list_empty(list));
    }
    return;
  }
  int p = static_cast<int>(pindex) - 1;
  const int nr_lists = static_cast<int>(nr_pcp_lists_);
  while (count > 0) {
    page_list list = 0;
    int tries = 0;
    do {
      if (++p > nr_lists - 1) p = 0;
      list = pcp.lists[static_cast<std::size_t>(p)];
    } while (list_empty(list) && ++tries <= nr_lists);
    if (list_empty(list)) return;
    const unsigned order = pindex_to_order(static_cast<unsigned>(p));
    do {
      count -= release(list_last_entry(list), order);
    } while (count > 0 && !list_empty(list));
  }
}

void PageAlloc::__free_pages_ok(pfn_t pfn, unsigned order, bool to_tail) {
  if (!free_pages_prepare(pfn, order)) return;
  __free_one_page(pfn, page_zone(pfn), order, get_pageblock_migratetype(pfn), to_tail);
}

void PageAlloc::__free_one_page(pfn_t pfn, zone& z, unsigned order, int migratetype, bool to_tail) {
  if (!is_migrate_isolate(migratetype)) __mod_zone_freepage_state(z, 1L << order, migratetype);
  const pfn_t orig = pfn;
  const unsigned orig_order = order;
  pfn_t buddy_pfn = pfn ^ (pfn_t{1} << order);
  while (order < max_order_ - 1) {
    buddy_pfn = pfn ^ (pfn_t{1} << order);
    if (find_buddy_page_pfn(pfn, order) == NO_PAGE) break;
    // Planted defect (fuzz self-test): a high-order (pcp) block stops merging
    // at PAGE_ALLOC_COSTLY_ORDER, as if the loop were bounded by the largest
    // pcp order, leaving two free order-3 buddies side by side.
    if (mm_.planted(PlantedDefect::buddy_skip_merge) && orig_order && order == costly_order_)
        [[unlikely]]
      break;
    if (order >= pageblock_order_) {
      // No merging between pageblocks without fallbacks (CMA, isolate,
      // highatomic) and normal ones.
      const int buddy_mt = get_pageblock_migratetype(buddy_pfn);
      if (migratetype != buddy_mt &&
          (!migratetype_is_mergeable(migratetype) || !migratetype_is_mergeable(buddy_mt)))
        break;
    }
    del_page_from_free_list(buddy_pfn, z, order);
    mm_.count_vm_event(static_cast<vm_event_item>(BUDDY_MERGE + order));
    pfn &= buddy_pfn;
    order++;
  }
  page& p = pg(pfn);
  p.private_ = order;
  p.set_type(PG_buddy);
  if (!to_tail && order < max_order_ - 2) {
    // buddy_merge_likely(): if the next-higher buddy is free, this block is
    // likely to merge soon, so keep it at the tail.
    const pfn_t higher = buddy_pfn & pfn;
    to_tail = find_buddy_page_pfn(higher, order + 1) != NO_PAGE;
  }
  add_to_free_list(pfn, z, order, migratetype, to_tail);
  if (pfn != orig) touched(pfn, std::uint64_t{1} << order);
}

void PageAlloc::drain_zone_pages(zone& z, per_cpu_pages& pcp) {
  if (pcp.count) free_pcppages_bulk(z, pcp.count, pcp, 0);
}

void PageAlloc::drain_local_pages(int cpu) {
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones)
      if (z.populated_zone()) drain_zone_pages(z, z.per_cpu_pageset[static_cast<std::size_t>(cpu)]);
}

void PageAlloc::drain_all_pages() {
  mm_.count_vm_event(DRAIN_ALL_PAGES);
  for (unsigned cpu = 0; cpu < mm_.nr_cpus(); ++cpu) drain_local_pages(static_cast<int>(cpu));
}

void PageAlloc::kswapd_run() {
  for (auto& pgdat : node_data) {
    if (!pgdat.kswapd_wakeups) continue;
    pgdat.kswapd_wakeups = 0;
    for (auto& z : pgdat.node_zones) z.watermark_boost = 0;
  }
}

// ---------------------------------------------------------------- boot

void PageAlloc::__free_pages_core(pfn_t pfn, unsigned order) {
  const std::uint64_t nr = std::uint64_t{1} << order;
  for (std::uint64_t i = 0; i < nr; ++i) {
    page& p = pg(pfn + i);
    p.clear(PG_reserved);
    p._refcount = 0;
  }
  page_zone(pfn).managed_pages += nr;
  __free_pages_ok(pfn, order, true);  // bypass the pcp lists, to the tail
}

void PageAlloc::memblock_free_all() {
  const unsigned shift = mm_.profile.page_shift;
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones) z.managed_pages = 0;
  // reserve_bootmem_region()
  std::uint64_t reserved = 0;
  for (const auto& r : mm_.memblock.reserved.regions) {
    for (pfn_t pfn = r.base >> shift; pfn < (r.end() + mm_.profile.page_size() - 1) >> shift;
         ++pfn) {
      if (!mm_.sparse.pfn_valid(pfn) || !mm_.memblock.is_memory(pfn << shift)) continue;
      page& p = pg(pfn);
      if (!PageReserved(p)) {
        p.set(PG_reserved);
        ++reserved;
      }
    }
  }
  mm_.boot_reserved_pages = reserved;
  for (const auto& r : mm_.memblock.free_ranges()) {
    pfn_t start = (r.start + mm_.profile.page_size() - 1) >> shift;
    const pfn_t end = r.end >> shift;
    while (start < end) {
      unsigned order = std::min(max_order_ - 1,
                                static_cast<unsigned>(__builtin_ctzll(start | (pfn_t{1} << 63))));
      while (start + (pfn_t{1} << order) > end) order--;
      __free_pages_core(start, order);
      start += pfn_t{1} << order;
    }
  }
  totalram_pages = 0;
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones) totalram_pages += z.managed_pages;
}

void PageAlloc::cma_activate() {
  if (!cma.count) return;
  const pfn_t base = cma.base >> mm_.profile.page_shift;
  const std::uint64_t pb = mm_.profile.pageblock_nr_pages();
  for (pfn_t pfn = base; pfn < base + cma.count; pfn += pb) {
    // init_cma_reserved_pageblock()
    for (std::uint64_t i = 0; i < pb; ++i) {
      page& p = pg(pfn + i);
      p.clear(PG_reserved);
      p._refcount = 0;
    }
    set_pageblock_migratetype(pfn, MIGRATE_CMA);
    pg(pfn)._refcount = 1;
    page_owner& o = owner_mut(pfn);
    o.state = PAGE_OWNER_ALLOCATED;
    o.order = static_cast<std::uint8_t>(pageblock_order_);
    __free_pages(pfn, pageblock_order_);
    zone& z = page_zone(pfn);
    z.managed_pages += pb;
    z.cma_pages += pb;
    totalram_pages += pb;
    totalcma_pages += pb;
  }
  cma.active = true;
}

std::uint64_t PageAlloc::free_reserved_area(phys_addr_t start, phys_addr_t end, int poison) {
  const std::uint64_t ps = mm_.profile.page_size();
  start = round_up(start, ps);
  end = round_down(end, ps);
  std::uint64_t pages = 0;
  for (phys_addr_t pa = start; pa < end; pa += ps, ++pages) {
    const pfn_t pfn = pa >> mm_.profile.page_shift;
    if (poison != POISON_NONE) mm_.ram.fill(pa, ps, static_cast<std::uint8_t>(poison));
    // free_reserved_page()
    page& p = pg(pfn);
    p.clear(PG_reserved);
    p._refcount = 0;
    page_zone(pfn).managed_pages++;
    totalram_pages++;
    free_the_page(pfn, 0);
  }
  return pages;
}

void PageAlloc::free_area_init(const std::vector<pfn_t>& max_zone_pfn) {
  const auto& p = mm_.profile;
  const unsigned shift = p.page_shift;
  Sparse& sp = mm_.sparse;
  const std::uint64_t span = sp.end_pfn() - sp.base_pfn();
  memmap_ = &sp.pfn_to_page(sp.base_pfn());
  memmap_base_ = sp.base_pfn();
  memmap_dirty_ = sp.memmap_dirty();
  lists_.bind(memmap_, memmap_base_, memmap_dirty_);
  pageblock_flags_.assign((span >> pageblock_order_) + 1, MIGRATE_MOVABLE);
  page_owner_.assign(span, page_owner{});

  // Zone boundaries: each zone starts where the previous one ends.
  std::array<pfn_t, MAX_NR_ZONES> lo{}, hi{};
  pfn_t start = mm_.memblock.start_of_DRAM() >> shift;
  for (int i = 0; i < ZONE_MOVABLE; ++i) {
    const pfn_t end = std::max(max_zone_pfn[static_cast<std::size_t>(i)], start);
    lo[static_cast<std::size_t>(i)] = start;
    hi[static_cast<std::size_t>(i)] = end;
    start = end;
  }
  char buf[160];
  mm_.boot_log.emplace_back("Zone ranges:");
  for (int i = 0; i < ZONE_MOVABLE; ++i) {
    const auto zi = static_cast<std::size_t>(i);
    if (lo[zi] == hi[zi])
      std::snprintf(buf, sizeof buf, "  %-8s empty", zone_name(i));
    else
      std::snprintf(buf, sizeof buf, "  %-8s [mem %#018llx-%#018llx]", zone_name(i),
                    static_cast<unsigned long long>(lo[zi] << shift),
                    static_cast<unsigned long long>((hi[zi] << shift) - 1));
    mm_.boot_log.emplace_back(buf);
  }
  mm_.boot_log.emplace_back("Movable zone start for each node");
  mm_.boot_log.emplace_back("Early memory node ranges");

  const unsigned nr_nodes = mm_.machine.nr_nodes;
  node_data.assign(nr_nodes, pglist_data{});
  auto memory_in = [&](int nid, pfn_t s, pfn_t e) {
    std::uint64_t n = 0;
    for (const auto& r : mm_.memblock.memory.regions) {
      if (r.nid != nid) continue;
      const pfn_t rs = std::max<pfn_t>(s, (r.base + p.page_size() - 1) >> shift);
      const pfn_t re = std::min<pfn_t>(e, r.end() >> shift);
      if (re > rs) n += re - rs;
    }
    return n;
  };
  for (const auto& r : mm_.memblock.memory.regions) {
    std::snprintf(buf, sizeof buf, "  node %3d: [mem %#018llx-%#018llx]", r.nid,
                  static_cast<unsigned long long>(r.base),
                  static_cast<unsigned long long>(r.end() - 1));
    mm_.boot_log.emplace_back(buf);
  }
  for (unsigned nid = 0; nid < nr_nodes; ++nid) {
    pglist_data& pgdat = node_data[nid];
    pgdat.node_id = static_cast<int>(nid);
    pfn_t ns = ~pfn_t{0}, ne = 0;
    for (const auto& r : mm_.memblock.memory.regions) {
      if (r.nid != static_cast<int>(nid)) continue;
      ns = std::min<pfn_t>(ns, r.base >> shift);
      ne = std::max<pfn_t>(ne, r.end() >> shift);
    }
    if (ne == 0) ns = 0;
    pgdat.node_start_pfn = ns;
    pgdat.node_spanned_pages = ne - ns;
    for (int j = 0; j < MAX_NR_ZONES; ++j) {
      zone& z = pgdat.node_zones[static_cast<std::size_t>(j)];
      z.node = static_cast<int>(nid);
      z.zone_idx = j;
      z.name = zone_name(j);
      pfn_t zs = std::clamp(lo[static_cast<std::size_t>(j)], ns, ne);
      pfn_t ze = std::clamp(hi[static_cast<std::size_t>(j)], ns, ne);
      if (j == ZONE_MOVABLE || ze <= zs) zs = ze = (j == ZONE_MOVABLE ? 0 : zs);
      z.zone_start_pfn = zs;
      z.spanned_pages = ze - zs;
      z.present_pages = memory_in(static_cast<int>(nid), zs, ze);
      // calc_memmap_size(): the memmap is charged to the zone it describes.
      std::uint64_t pages = z.spanned_pages;
      if (z.spanned_pages > z.present_pages + (z.present_pages >> 4)) pages = z.present_pages;
      const std::uint64_t memmap_pages =
          round_up(pages * p.struct_page_size, p.page_size()) >> shift;
      std::uint64_t freesize = z.present_pages;
      if (freesize >= memmap_pages) freesize -= memmap_pages;
      z.managed_pages = freesize;
      pgdat.node_present_pages += z.present_pages;
      for (auto& area : z.free_area_)
        for (auto& l : area.free_list) l = new_list();
      z.per_cpu_pageset.assign(mm_.nr_cpus(), per_cpu_pages{});
      for (auto& pcp : z.per_cpu_pageset) {
        for (auto& l : pcp.lists) l = new_list();
        pcp.high = 0;  // the boot pageset: frees go straight to the buddy lists
        pcp.batch = 1;
      }
      z.stat_threshold.assign(mm_.nr_cpus(), 0);
      if (z.populated_zone()) pgdat.nr_zones = j + 1;
    }
    std::snprintf(buf, sizeof buf, "Initmem setup node %u [mem %#018llx-%#018llx]", nid,
                  static_cast<unsigned long long>(ns << shift),
                  static_cast<unsigned long long>((ne << shift) - 1));
    mm_.boot_log.emplace_back(buf);
  }

  // memmap_init(): every page of a present section gets its zone and node;
  // holes are reserved (init_unavailable_range).
  auto zone_for = [&](pfn_t pfn) {
    for (int j = ZONE_MOVABLE - 1; j >= 0; --j)
      if (pfn >= lo[static_cast<std::size_t>(j)] &&
          lo[static_cast<std::size_t>(j)] != hi[static_cast<std::size_t>(j)])
        return j;
    return 0;
  };
  for (auto nr : sp.present_sections()) {
    const pfn_t s = nr << sp.section_shift();
    const pfn_t e = s + (pfn_t{1} << sp.section_shift());
    for (pfn_t pfn = s; pfn < e; ++pfn) {
      page& pg0 = pg(pfn);
      pg0._refcount = 1;
      pg0._mapcount = -1;
      pg0.zone = static_cast<std::uint8_t>(zone_for(pfn));
      int nid = 0;
      for (const auto& r : mm_.memblock.memory.regions)
        if ((pfn << shift) >= r.base && (pfn << shift) < r.end()) nid = r.nid;
      pg0.nid = static_cast<std::uint16_t>(nid);
      if (!mm_.memblock.is_memory(pfn << shift)) pg0.set(PG_reserved);
    }
  }
}

void PageAlloc::build_all_zonelists() {
  const int nr = static_cast<int>(node_data.size());
  char buf[160];
  for (int nid = 0; nid < nr; ++nid) {
    pglist_data& pgdat = node_data[static_cast<std::size_t>(nid)];
    // find_next_best_node(): with equal distances, the nodes after this one
    // come first, then those before it.
    std::vector<int> order;
    for (int i = 0; i < nr; ++i) order.push_back((nid + i) % nr);
    auto add_node = [&](zonelist& zl, int n) {
      for (int j = MAX_NR_ZONES - 1; j >= 0; --j)
        if (node_data[static_cast<std::size_t>(n)]
                .node_zones[static_cast<std::size_t>(j)]
                .managed_zone())
          zl._zonerefs.push_back({n, j});
    };
    pgdat.node_zonelists[ZONELIST_FALLBACK]._zonerefs.clear();
    pgdat.node_zonelists[ZONELIST_NOFALLBACK]._zonerefs.clear();
    for (int n : order) add_node(pgdat.node_zonelists[ZONELIST_FALLBACK], n);
    add_node(pgdat.node_zonelists[ZONELIST_NOFALLBACK], nid);
    std::string line = "Fallback order for Node " + std::to_string(nid) + ": ";
    for (int n : order) line += std::to_string(n) + " ";
    mm_.boot_log.push_back(line);
  }
  const std::uint64_t vm_total_pages = nr_free_zone_pages(gfp_zone(GFP_HIGHUSER_MOVABLE));
  page_group_by_mobility_disabled_ =
      vm_total_pages < mm_.profile.pageblock_nr_pages() * MIGRATE_TYPES;
  std::snprintf(buf, sizeof buf, "Built %d zonelists, mobility grouping %s.  Total pages: %llu", nr,
                page_group_by_mobility_disabled_ ? "off" : "on",
                static_cast<unsigned long long>(vm_total_pages));
  mm_.boot_log.emplace_back(buf);
}

std::uint64_t PageAlloc::nr_free_zone_pages(int offset) const {
  std::uint64_t sum = 0;
  const zonelist& zl =
      node_data[static_cast<std::size_t>(numa_node_id())].node_zonelists[ZONELIST_FALLBACK];
  for (const auto& zr : zl._zonerefs) {
    if (zr.zone_idx > offset) continue;
    const zone& z = node_data[static_cast<std::size_t>(zr.node)]
                        .node_zones[static_cast<std::size_t>(zr.zone_idx)];
    const std::uint64_t size = z.managed_pages, high = z.high_wmark_pages();
    if (size > high) sum += size - high;
  }
  return sum;
}

std::uint64_t PageAlloc::nr_free_buffer_pages() const {
  return nr_free_zone_pages(gfp_zone(GFP_USER));
}

int PageAlloc::zone_batchsize(const zone& z) const {
  // About a thousandth of the zone, at most 1 MiB (5.10 and 6.1 alike).
  std::uint64_t batch =
      std::min<std::uint64_t>(z.managed_pages >> 10, SZ_1M / mm_.profile.page_size());
  batch /= 4;
  if (batch < 1) batch = 1;
  return static_cast<int>(rounddown_pow_of_two(batch + batch / 2)) - 1;
}

int PageAlloc::zone_highsize(const zone& z, int batch, int cpu_online) const {
  const std::uint64_t total_pages = z.low_wmark_pages();
  int nr_split_cpus = cpu_online;
  for (unsigned cpu = 0; cpu < mm_.nr_cpus(); ++cpu)
    if (mm_.cpu_to_node(static_cast<int>(cpu)) == z.node) ++nr_split_cpus;
  if (!nr_split_cpus) nr_split_cpus = static_cast<int>(mm_.nr_cpus());
  const int high = static_cast<int>(total_pages / static_cast<std::uint64_t>(nr_split_cpus));
  return std::max(high, batch << 2);
}

void PageAlloc::zone_set_pageset_high_and_batch(zone& z, int cpu_online) {
  int new_batch, new_high;
  if (pcp_v61_) {
    new_batch = std::max(1, zone_batchsize(z));
    new_high = zone_highsize(z, new_batch, cpu_online);
  } else {
    new_batch = std::max(1, zone_batchsize(z));
    new_high = 6 * zone_batchsize(z);
  }
  if (z.pageset_high == new_high && z.pageset_batch == new_batch) return;
  z.pageset_high = new_high;
  z.pageset_batch = new_batch;
  for (auto& pcp : z.per_cpu_pageset) {
    pcp.high = new_high;
    pcp.batch = new_batch;
  }
}

void PageAlloc::setup_per_cpu_pageset() {
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones) {
      if (!z.populated_zone()) continue;
      z.pageset_high = z.pageset_batch = -1;  // force the first update
      zone_set_pageset_high_and_batch(z, 0);
    }
}

void PageAlloc::__setup_per_zone_wmarks() {
  const std::uint64_t pages_min = min_free_kbytes >> (mm_.profile.page_shift - 10);
  std::uint64_t lowmem_pages = 0;
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones) lowmem_pages += z.managed_pages;  // no highmem on arm64
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones) {
      std::uint64_t tmp = lowmem_pages ? pages_min * z.managed_pages / lowmem_pages : 0;
      z._watermark[WMARK_MIN] = tmp;
      tmp = std::max(tmp >> 2, z.managed_pages * mm_.profile.watermark_scale_factor / 10000);
      z.watermark_boost = 0;
      z._watermark[WMARK_LOW] = z._watermark[WMARK_MIN] + tmp;
      z._watermark[WMARK_HIGH] = z._watermark[WMARK_LOW] + tmp;
      z._watermark[WMARK_PROMO] = z._watermark[WMARK_HIGH] + tmp;
    }
  calculate_totalreserve_pages();
}

void PageAlloc::setup_per_zone_wmarks() {
  __setup_per_zone_wmarks();
  // The watermarks changed, so do pcp high and batch (zone_pcp_update()).
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones)
      if (z.populated_zone()) zone_set_pageset_high_and_batch(z, 0);
}

void PageAlloc::calculate_totalreserve_pages() {
  std::uint64_t reserve_pages = 0;
  for (auto& pgdat : node_data)
    for (int i = 0; i < MAX_NR_ZONES; ++i) {
      const zone& z = pgdat.node_zones[static_cast<std::size_t>(i)];
      long max = 0;
      for (int j = i; j < MAX_NR_ZONES; ++j)
        max = std::max(max, z.lowmem_reserve[static_cast<std::size_t>(j)]);
      std::uint64_t m = static_cast<std::uint64_t>(max) + z.high_wmark_pages();
      reserve_pages += std::min(m, z.managed_pages);
    }
  totalreserve_pages = reserve_pages;
}

void PageAlloc::setup_per_zone_lowmem_reserve() {
  for (auto& pgdat : node_data)
    for (int i = 0; i < MAX_NR_ZONES - 1; ++i) {
      zone& z = pgdat.node_zones[static_cast<std::size_t>(i)];
      const unsigned ratio = mm_.profile.lowmem_reserve_ratio[static_cast<std::size_t>(i)];
      const bool clear = !ratio || !z.managed_pages;
      std::uint64_t managed_pages = 0;
      for (int j = i + 1; j < MAX_NR_ZONES; ++j) {
        managed_pages += pgdat.node_zones[static_cast<std::size_t>(j)].managed_pages;
        z.lowmem_reserve[static_cast<std::size_t>(j)] =
            clear ? 0 : static_cast<long>(managed_pages / ratio);
      }
    }
  calculate_totalreserve_pages();
}

void PageAlloc::refresh_zone_stat_thresholds() {
  const unsigned cpus = mm_.nr_cpus();
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones) {
      if (!z.populated_zone()) continue;
      // calculate_normal_threshold()
      const std::uint64_t mem = z.managed_pages >> (27 - mm_.profile.page_shift);
      int threshold = static_cast<int>(2 * fls64(cpus) * (1 + fls64(mem)));
      threshold = std::min(125, threshold);
      for (auto& t : z.stat_threshold) t = threshold;
    }
}

void PageAlloc::calculate_min_free_kbytes() {
  const std::uint64_t lowmem_kbytes = nr_free_buffer_pages() * (mm_.profile.page_size() >> 10);
  const auto new_min = static_cast<long>(int_sqrt(lowmem_kbytes * 16));
  if (new_min > user_min_free_kbytes)
    min_free_kbytes = static_cast<std::uint64_t>(std::clamp(new_min, 128L, 262144L));
}

void PageAlloc::init_per_zone_wmark_min() {
  calculate_min_free_kbytes();
  setup_per_zone_wmarks();
  refresh_zone_stat_thresholds();
  setup_per_zone_lowmem_reserve();
}

void PageAlloc::set_recommended_min_free_kbytes() {
  int nr_zones = 0;
  for (auto& pgdat : node_data)
    for (auto& z : pgdat.node_zones)
      if (z.populated_zone() && z.zone_idx <= gfp_zone(GFP_USER)) ++nr_zones;
  const std::uint64_t pb = mm_.profile.pageblock_nr_pages();
  std::uint64_t recommended_min = pb * static_cast<std::uint64_t>(nr_zones) * 2;
  recommended_min +=
      pb * static_cast<std::uint64_t>(nr_zones) * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
  recommended_min = std::min(recommended_min, nr_free_buffer_pages() / 20);
  recommended_min <<= (mm_.profile.page_shift - 10);
  if (recommended_min > min_free_kbytes) {
    if (user_min_free_kbytes >= 0)
      mm_.boot_log.push_back("raising min_free_kbytes from " + std::to_string(min_free_kbytes) +
                             " to " + std::to_string(recommended_min) +
                             " to help transparent hugepage allocations");
    min_free_kbytes = recommended_min;
  }
  setup_per_zone_wmarks();
}

}  // namespace mmfuzz::mm
