#include "invariants/buddy.h"

#include <fmt/format.h>

#include <algorithm>

#include "invariants/page_report.h"
#include "mm/mm.h"

namespace mmfuzz::inv {

using mm::NO_PAGE;

namespace {

const char* kBuddyAligned = "buddy.aligned";
const char* kBuddyOverlap = "buddy.overlap";
const char* kBuddyCoalesced = "buddy.coalesced";
const char* kBuddyMetadata = "buddy.metadata";
const char* kBuddyCounts = "buddy.counts";
const char* kBuddyPcp = "buddy.pcp";
const char* kBuddyRefcount = "buddy.refcount";
const char* kBuddyAccounting = "buddy.accounting";
const char* kBuddyWatermark = "buddy.watermark";
const char* kBuddyMergeable = "buddy.mergeable";

const char* state_name(std::uint8_t s) {
  switch (s) {
    case 1:
    case 2:
      return "a free block";
    case 3:
      return "a pcp block";
    case 4:
      return "an allocated block";
    case 5:
      return "a reserved page";
    default:
      return "nothing";
  }
}

std::string zone_label(const mm::zone& z) {
  return fmt::format("Node {}, zone {}", z.node, z.name);
}

void buddy_bug(const mm::Mm& m, Reporter& r, const char* id, std::uint64_t pfn, std::string msg) {
  if (!r.enabled(id)) return;
  r.report(page_violation(m, ViolationKind::invariant, id,
                          fmt::format("BUG: mmfuzz invariant {}: {}", id, msg), pfn, {}));
}

}  // namespace

const std::vector<std::string>& BuddyChecker::invariants() const {
  static const std::vector<std::string> ids = {
      kBuddyAligned, kBuddyOverlap,  kBuddyCoalesced,  kBuddyMetadata,  kBuddyCounts,
      kBuddyPcp,     kBuddyRefcount, kBuddyAccounting, kBuddyWatermark, kBuddyMergeable};
  return ids;
}

// The buddy of a free block must not be free at the same order, unless the
// kernel refuses that merge (pageblocks of non-mergeable migrate types).
static bool missed_merge(const mm::Mm& m, std::uint64_t pfn, unsigned order,
                         std::uint64_t* buddy_out) {
  const auto& pa = m.page_alloc;
  if (order + 1 >= pa.max_order()) return false;
  // Below MAX_ORDER the buddy lies in pfn's section (Mm checks the geometry).
  const std::uint64_t buddy = pfn ^ (std::uint64_t{1} << order);
  const mm::page& b = m.pfn_to_page(buddy);
  const mm::page& p = m.pfn_to_page(pfn);
  if (!mm::PageBuddy(b) || mm::buddy_order(b) != order || b.zone != p.zone || b.nid != p.nid)
    return false;
  if (order >= pa.pageblock_order()) {
    const int mt = pa.get_pageblock_migratetype(pfn), bmt = pa.get_pageblock_migratetype(buddy);
    if (mt != bmt && (!mm::migratetype_is_mergeable(mt) || !mm::migratetype_is_mergeable(bmt)))
      return false;
  }
  *buddy_out = buddy;
  return true;
}

// A free block above pageblock order spans pageblocks that __free_one_page()
// may merge: one migrate type, or only mergeable ones (UNMOVABLE, MOVABLE,
// RECLAIMABLE; never CMA, HIGHATOMIC or ISOLATE with another type).
static void check_mergeable(const mm::Mm& m, Reporter& r, std::uint64_t pfn, unsigned order) {
  const auto& pa = m.page_alloc;
  const unsigned pb = pa.pageblock_order();
  if (order <= pb) return;
  const int first = pa.get_pageblock_migratetype(pfn);
  bool mixed = false, fixed = !mm::migratetype_is_mergeable(first);
  int other = first;
  for (std::uint64_t b = pfn; b < pfn + (std::uint64_t{1} << order); b += std::uint64_t{1} << pb) {
    const int mt = pa.get_pageblock_migratetype(b);
    mixed = mixed || mt != first;
    if (mt != first) other = mt;
    fixed = fixed || !mm::migratetype_is_mergeable(mt);
  }
  if (mixed && fixed)
    buddy_bug(m, r, kBuddyMergeable, pfn,
              fmt::format("free block pfn {:#x} order {} merged {} and {} pageblocks", pfn, order,
                          mm::migratetype_name(first), mm::migratetype_name(other)));
}

// Claims the pages of a free or pcp block in state_, reporting pages that
// something else already claimed and pages with a reference.
void BuddyChecker::mark_block(const mm::Mm& m, Reporter& r, std::uint64_t pfn, unsigned order,
                              std::uint8_t state) {
  const char* what = state == S_PCP ? "pcp" : "free";
  const std::uint64_t nr = std::uint64_t{1} << order;
  bool overlapped = false, refbad = false;
  for (std::uint64_t i = 0; i < nr; ++i) {
    auto& s = state_[pfn + i - base_];
    if (s != S_NONE && !overlapped) {
      overlapped = true;
      buddy_bug(m, r, kBuddyOverlap, pfn,
                fmt::format("{} block pfn {:#x} order {} overlaps {} at pfn {:#x}", what, pfn,
                            order, state_name(s), pfn + i));
    }
    if (state != S_FREE_HEAD)
      s = state;
    else if (i == 0 || s != S_FREE_HEAD)  // keep the mark of a nested head
      s = i == 0 ? S_FREE_HEAD : S_FREE;
    const mm::page& p = m.pfn_to_page(pfn + i);
    if (p._refcount != 0 && !refbad) {
      refbad = true;
      buddy_bug(m, r, kBuddyRefcount, pfn + i,
                fmt::format("{} page pfn {:#x} has refcount {}", what, pfn + i, p._refcount));
    }
    if (state == S_FREE_HEAD && i && mm::PageBuddy(p) && !overlapped) {
      overlapped = true;
      buddy_bug(
          m, r, kBuddyOverlap, pfn + i,
          fmt::format("free block pfn {:#x} order {} contains another free block head at pfn {:#x}",
                      pfn, order, pfn + i));
    }
  }
}

void BuddyChecker::full(const mm::Mm& m, Reporter& r) {
  const auto& pa = m.page_alloc;
  const auto& sp = m.sparse;
  const std::uint64_t base = sp.base_pfn();
  base_ = base;
  state_.assign(sp.end_pfn() - base, S_NONE);
  auto st = [&](std::uint64_t pfn) -> std::uint8_t& { return state_[pfn - base]; };
  const unsigned max_order = pa.max_order();
  std::uint64_t total_managed = 0;

  for (const auto& pgdat : pa.node_data) {
    for (const auto& z : pgdat.node_zones) {
      total_managed += z.managed_pages;
      if (!z.populated_zone()) continue;
      const std::uint64_t limit = z.spanned_pages + 1;
      long free_pages = 0, cma_pages = 0;
      std::vector<std::uint64_t> heads;
      // ---- free lists
      for (unsigned order = 0; order < max_order; ++order) {
        const mm::free_area& area = z.free_area_[order];
        std::uint64_t in_order = 0;
        for (int mt = 0; mt < mm::MIGRATE_TYPES; ++mt) {
          const mm::page_list head = area.free_list[static_cast<std::size_t>(mt)];
          std::uint32_t prev = head;
          std::uint64_t n = 0;
          for (std::uint32_t id = pa.L(head).next; id != head; prev = id, id = pa.L(id).next) {
            const bool bad_id =
                id == mm::LIST_NIL || (id < mm::LIST_HEAD_BASE && id >= sp.end_pfn() - base) ||
                (id >= mm::LIST_HEAD_BASE && id - mm::LIST_HEAD_BASE >= pa.nr_list_heads()) ||
                id >= mm::LIST_HEAD_BASE;
            if (bad_id || ++n > limit) {
              buddy_bug(m, r, kBuddyMetadata, NO_PAGE,
                        fmt::format("{}: free_list[{}][{}] is corrupt ({})", zone_label(z), order,
                                    mm::migratetype_name(mt), bad_id ? "broken link" : "cycle"));
              break;
            }
            const std::uint64_t pfn = sp.link_to_pfn(id);
            const mm::page& p = m.pfn_to_page(pfn);
            if (pa.L(id).prev != prev)
              buddy_bug(m, r, kBuddyMetadata, pfn,
                        fmt::format("{}: free_list[{}][{}] back link of pfn {:#x} is wrong",
                                    zone_label(z), order, mm::migratetype_name(mt), pfn));
            if (!mm::PageBuddy(p))
              buddy_bug(m, r, kBuddyMetadata, pfn,
                        fmt::format("pfn {:#x} is on free_list[{}][{}] without PageBuddy", pfn,
                                    order, mm::migratetype_name(mt)));
            else if (mm::buddy_order(p) != order)
              buddy_bug(
                  m, r, kBuddyMetadata, pfn,
                  fmt::format("pfn {:#x} is on the order-{} free list but its buddy order is {}",
                              pfn, order, mm::buddy_order(p)));
            if (p.index != static_cast<std::uint32_t>(mt))
              buddy_bug(m, r, kBuddyMetadata, pfn,
                        fmt::format("pfn {:#x} is on free_list[{}] but recorded as on {}", pfn,
                                    mm::migratetype_name(mt), mm::migratetype_name(int(p.index))));
            const std::uint64_t nr = std::uint64_t{1} << order;
            if (pfn & (nr - 1))
              buddy_bug(m, r, kBuddyAligned, pfn,
                        fmt::format("free block pfn {:#x} order {} is not aligned to its order",
                                    pfn, order));
            if (!z.zone_spans_pfn(pfn) || !z.zone_spans_pfn(pfn + nr - 1) || p.zone != z.zone_idx ||
                p.nid != z.node)
              buddy_bug(m, r, kBuddyAligned, pfn,
                        fmt::format("free block pfn {:#x} order {} is not inside {}", pfn, order,
                                    zone_label(z)));
            if (pfn < base || pfn + nr > sp.end_pfn())
              continue;  // beyond the memmap: nothing to mark
            // CMA pages sit on the CMA list and only there.
            const int pb_mt = pa.get_pageblock_migratetype(pfn);
            if ((mt == mm::MIGRATE_CMA) != (pb_mt == mm::MIGRATE_CMA))
              buddy_bug(m, r, kBuddyMetadata, pfn,
                        fmt::format("free block pfn {:#x} on the {} list lies in a {} pageblock",
                                    pfn, mm::migratetype_name(mt), mm::migratetype_name(pb_mt)));
            mark_block(m, r, pfn, order, S_FREE_HEAD);
            check_mergeable(m, r, pfn, order);
            heads.push_back(pfn);
            if (mt != mm::MIGRATE_ISOLATE) free_pages += static_cast<long>(nr);
            if (mt == mm::MIGRATE_CMA) cma_pages += static_cast<long>(nr);
          }
          if (n != area.nr_free_mt[static_cast<std::size_t>(mt)])
            buddy_bug(m, r, kBuddyCounts, NO_PAGE,
                      fmt::format("{}: free_list[{}][{}] holds {} blocks but its count says {}",
                                  zone_label(z), order, mm::migratetype_name(mt), n,
                                  area.nr_free_mt[static_cast<std::size_t>(mt)]));
          in_order += n;
        }
        if (in_order != area.nr_free)
          buddy_bug(m, r, kBuddyCounts, NO_PAGE,
                    fmt::format("{}: free_area[{}].nr_free is {} but the lists hold {} blocks",
                                zone_label(z), order, area.nr_free, in_order));
      }
      if (free_pages != z.vm_stat[mm::NR_FREE_PAGES])
        buddy_bug(m, r, kBuddyCounts, NO_PAGE,
                  fmt::format("{}: NR_FREE_PAGES is {} but the free lists hold {} pages",
                              zone_label(z), z.vm_stat[mm::NR_FREE_PAGES], free_pages));
      if (cma_pages != z.vm_stat[mm::NR_FREE_CMA_PAGES])
        buddy_bug(m, r, kBuddyCounts, NO_PAGE,
                  fmt::format("{}: NR_FREE_CMA_PAGES is {} but the CMA lists hold {} pages",
                              zone_label(z), z.vm_stat[mm::NR_FREE_CMA_PAGES], cma_pages));

      // ---- per-CPU lists
      for (std::size_t cpu = 0; cpu < z.per_cpu_pageset.size(); ++cpu) {
        const mm::per_cpu_pages& pcp = z.per_cpu_pageset[cpu];
        long held = 0;
        for (unsigned pindex = 0; pindex < pa.nr_pcp_lists(); ++pindex) {
          const unsigned order = pa.pindex_to_order(pindex);
          const std::uint64_t nr = std::uint64_t{1} << order;
          const mm::page_list head = pcp.lists[pindex];
          std::uint64_t n = 0;
          for (std::uint32_t id = pa.L(head).next; id != head; id = pa.L(id).next) {
            if (id == mm::LIST_NIL || id >= mm::LIST_HEAD_BASE || id >= sp.end_pfn() - base ||
                ++n > limit) {
              buddy_bug(
                  m, r, kBuddyPcp, NO_PAGE,
                  fmt::format("{}: cpu {} pcp list {} is corrupt", zone_label(z), cpu, pindex));
              break;
            }
            const std::uint64_t pfn = sp.link_to_pfn(id);
            const mm::page& p = m.pfn_to_page(pfn);
            const mm::page_owner& o = pa.owner(pfn);
            if (mm::PageBuddy(p))
              buddy_bug(m, r, kBuddyPcp, pfn,
                        fmt::format("pfn {:#x} on cpu {}'s pcp list is also PageBuddy", pfn, cpu));
            if (o.state != mm::PAGE_OWNER_PCP || o.order != order)
              buddy_bug(
                  m, r, kBuddyPcp, pfn,
                  fmt::format("pfn {:#x} on cpu {}'s order-{} pcp list is not recorded as such",
                              pfn, cpu, order));
            if (p.index >= mm::MIGRATE_TYPES || p.index == mm::MIGRATE_ISOLATE)
              buddy_bug(
                  m, r, kBuddyPcp, pfn,
                  fmt::format("pfn {:#x} on a pcp list has pcp migratetype {}", pfn, p.index));
            if ((pfn & (nr - 1)) || !z.zone_spans_pfn(pfn) || !z.zone_spans_pfn(pfn + nr - 1)) {
              buddy_bug(m, r, kBuddyAligned, pfn,
                        fmt::format("pcp block pfn {:#x} order {} misaligned or outside {}", pfn,
                                    order, zone_label(z)));
              continue;
            }
            mark_block(m, r, pfn, order, S_PCP);
            held += static_cast<long>(nr);
          }
        }
        if (held != pcp.count)
          buddy_bug(m, r, kBuddyPcp, NO_PAGE,
                    fmt::format("{}: cpu {} pcp count is {} but its lists hold {} pages",
                                zone_label(z), cpu, pcp.count, held));
      }

      // ---- allocated blocks, reserved pages, stray PageBuddy
      for (std::uint64_t pfn = z.zone_start_pfn; pfn < z.zone_end_pfn(); ++pfn) {
        if (!m.pfn_valid(pfn)) continue;
        const mm::page_owner& o = pa.owner(pfn);
        if (o.state != mm::PAGE_OWNER_ALLOCATED) continue;
        const std::uint64_t nr = std::uint64_t{1} << o.order;
        if (m.pfn_to_page(pfn)._refcount <= 0)
          buddy_bug(m, r, kBuddyRefcount, pfn,
                    fmt::format("allocated block pfn {:#x} order {} has refcount {}", pfn, o.order,
                                m.pfn_to_page(pfn)._refcount));
        bool overlapped = false;
        for (std::uint64_t i = 0; i < nr && pfn + i < z.zone_end_pfn(); ++i) {
          auto& s = st(pfn + i);
          if (s != S_NONE && !overlapped) {
            overlapped = true;
            buddy_bug(m, r, kBuddyOverlap, pfn + i,
                      fmt::format("allocated block pfn {:#x} order {} overlaps {} at pfn {:#x}",
                                  pfn, o.order, state_name(s), pfn + i));
          }
          if (s == S_NONE) s = S_ALLOC;
        }
      }
      // Every present page is counted once, whatever claims it.
      long free_distinct = 0, pcp_distinct = 0, alloc_distinct = 0, reserved_pages = 0, unknown = 0;
      std::uint64_t first_unknown = NO_PAGE;
      for (const auto& reg : m.memblock.memory.regions) {
        const std::uint64_t s0 =
            std::max<std::uint64_t>(reg.base >> m.profile.page_shift, z.zone_start_pfn);
        const std::uint64_t e0 =
            std::min<std::uint64_t>(reg.end() >> m.profile.page_shift, z.zone_end_pfn());
        for (std::uint64_t pfn = s0; pfn < e0; ++pfn) {
          const mm::page& p = m.pfn_to_page(pfn);
          auto& s = st(pfn);
          if (mm::PageBuddy(p) && s != S_FREE_HEAD)
            buddy_bug(m, r, kBuddyMetadata, pfn,
                      fmt::format("pfn {:#x} is PageBuddy (order {}) but on no free list", pfn,
                                  mm::buddy_order(p)));
          if (mm::PageReserved(p)) {
            if (s != S_NONE)
              buddy_bug(m, r, kBuddyOverlap, pfn,
                        fmt::format("reserved page pfn {:#x} is also {}", pfn, state_name(s)));
            ++reserved_pages;
            continue;
          }
          switch (s) {
            case S_FREE:
            case S_FREE_HEAD:
              ++free_distinct;
              break;
            case S_PCP:
              ++pcp_distinct;
              break;
            case S_ALLOC:
              ++alloc_distinct;
              break;
            default:
              if (first_unknown == NO_PAGE) first_unknown = pfn;
              ++unknown;
          }
        }
      }
      // ---- coalescing
      for (std::uint64_t pfn : heads) {
        std::uint64_t buddy = 0;
        const unsigned order = mm::buddy_order(m.pfn_to_page(pfn));
        if (pfn < (pfn ^ (std::uint64_t{1} << order)) && missed_merge(m, pfn, order, &buddy))
          buddy_bug(
              m, r, kBuddyCoalesced, pfn,
              fmt::format("free block pfn {:#x} order {} and its buddy pfn {:#x} are both free "
                          "at order {}",
                          pfn, order, buddy, order));
      }
      // ---- accounting
      if (free_distinct + pcp_distinct + alloc_distinct != static_cast<long>(z.managed_pages))
        buddy_bug(m, r, kBuddyAccounting, NO_PAGE,
                  fmt::format("{}: managed {} != free {} + pcp {} + allocated {}", zone_label(z),
                              z.managed_pages, free_distinct, pcp_distinct, alloc_distinct));
      if (reserved_pages != static_cast<long>(z.present_pages - z.managed_pages))
        buddy_bug(m, r, kBuddyAccounting, NO_PAGE,
                  fmt::format("{}: present {} - managed {} != reserved pages {}", zone_label(z),
                              z.present_pages, z.managed_pages, reserved_pages));
      if (unknown)
        buddy_bug(
            m, r, kBuddyAccounting, first_unknown,
            fmt::format("{}: {} pages are neither free, on a pcp list, allocated nor reserved "
                        "(first pfn {:#x})",
                        zone_label(z), unknown, first_unknown));
    }
  }
  if (total_managed != pa.totalram_pages)
    buddy_bug(m, r, kBuddyAccounting, NO_PAGE,
              fmt::format("totalram_pages {} != sum of managed pages {}", pa.totalram_pages,
                          total_managed));
}

// Local checks of the free block (if any) covering pfn: O(MAX_ORDER).
void BuddyChecker::check_block_at(const mm::Mm& m, std::uint64_t pfn, Reporter& r) {
  if (!m.pfn_valid(pfn)) return;
  const auto& pa = m.page_alloc;
  const auto& sp = m.sparse;
  for (unsigned o = 0; o < pa.max_order(); ++o) {
    const std::uint64_t head = pfn & ~((std::uint64_t{1} << o) - 1);  // same section as pfn
    const mm::page& p = m.pfn_to_page(head);
    if (!mm::PageBuddy(p)) continue;
    const unsigned k = mm::buddy_order(p);
    if (pfn - head >= (std::uint64_t{1} << std::min(k, 63u))) continue;  // does not cover pfn
    if (k >= pa.max_order()) {
      buddy_bug(m, r, kBuddyMetadata, head,
                fmt::format("PageBuddy pfn {:#x} has order {} >= MAX_ORDER", head, k));
      return;
    }
    if (head & ((std::uint64_t{1} << k) - 1))
      buddy_bug(m, r, kBuddyAligned, head,
                fmt::format("free block pfn {:#x} order {} is not aligned to its order", head, k));
    const mm::zone& z = pa.page_zone(head);
    if (!z.zone_spans_pfn(head + (std::uint64_t{1} << k) - 1))
      buddy_bug(m, r, kBuddyAligned, head,
                fmt::format("free block pfn {:#x} order {} leaves {}", head, k, zone_label(z)));
    const std::uint32_t id = sp.pfn_to_link(head);
    const mm::list_head& l = pa.L(id);
    if (l.next == mm::LIST_NIL || l.prev == mm::LIST_NIL || pa.L(l.next).prev != id ||
        pa.L(l.prev).next != id)
      buddy_bug(m, r, kBuddyMetadata, head,
                fmt::format("PageBuddy pfn {:#x} is not properly linked on a free list", head));
    if (p._refcount != 0)
      buddy_bug(m, r, kBuddyRefcount, head,
                fmt::format("free page pfn {:#x} has refcount {}", head, p._refcount));
    check_mergeable(m, r, head, k);
    std::uint64_t buddy = 0;
    if (missed_merge(m, head, k, &buddy))
      buddy_bug(
          m, r, kBuddyCoalesced, head,
          fmt::format("free block pfn {:#x} order {} and its buddy pfn {:#x} are both free at "
                      "order {}",
                      head, k, buddy, k));
    const mm::page_owner& ow = pa.owner(pfn);
    if (ow.state == mm::PAGE_OWNER_ALLOCATED)
      buddy_bug(m, r, kBuddyOverlap, pfn,
                fmt::format("allocated pfn {:#x} lies inside free block pfn {:#x} order {}", pfn,
                            head, k));
    return;
  }
  // Not free: an allocation head must hold a reference.
  const mm::page_owner& ow = pa.owner(pfn);
  if (ow.state == mm::PAGE_OWNER_ALLOCATED && m.pfn_to_page(pfn)._refcount <= 0)
    buddy_bug(m, r, kBuddyRefcount, pfn,
              fmt::format("allocated block pfn {:#x} order {} has refcount {}", pfn, ow.order,
                          m.pfn_to_page(pfn)._refcount));
}

void BuddyChecker::check_zone_counters(const mm::Mm& m, int nid, int zid, Reporter& r) {
  const auto& pa = m.page_alloc;
  const mm::zone& z =
      pa.node_data[static_cast<std::size_t>(nid)].node_zones[static_cast<std::size_t>(zid)];
  // O(MAX_ORDER); the per-type ledger is summed by the full sweep.
  long free_pages = 0;
  for (unsigned o = 0; o < pa.max_order(); ++o) {
    const mm::free_area& area = z.free_area_[o];
    free_pages += static_cast<long>((area.nr_free - area.nr_free_mt[mm::MIGRATE_ISOLATE]) << o);
  }
  if (free_pages != z.vm_stat[mm::NR_FREE_PAGES])
    buddy_bug(m, r, kBuddyCounts, NO_PAGE,
              fmt::format("{}: NR_FREE_PAGES is {} but free_area holds {} pages", zone_label(z),
                          z.vm_stat[mm::NR_FREE_PAGES], free_pages));
  for (std::size_t cpu = 0; cpu < z.per_cpu_pageset.size(); ++cpu)
    if (z.per_cpu_pageset[cpu].count < 0)
      buddy_bug(m, r, kBuddyPcp, NO_PAGE,
                fmt::format("{}: cpu {} pcp count is negative ({})", zone_label(z), cpu,
                            z.per_cpu_pageset[cpu].count));
  // The current CPU's pcp count against its lists, O(lists): every list
  // that holds a block holds at least 2^order pages, and a count of zero
  // means every list is empty (the sweep sums the lists).
  const auto cpu = static_cast<std::size_t>(m.cpu());
  if (cpu >= z.per_cpu_pageset.size() || z.per_cpu_pageset[cpu].count < 0) return;
  const mm::per_cpu_pages& pcp = z.per_cpu_pageset[cpu];
  long least = 0;
  for (unsigned pindex = 0; pindex < pa.nr_pcp_lists(); ++pindex)
    if (!pa.list_empty(pcp.lists[pindex])) least += 1L << pa.pindex_to_order(pindex);
  if (pcp.count < least || (pcp.count != 0 && least == 0))
    buddy_bug(m, r, kBuddyPcp, NO_PAGE,
              fmt::format(
                  "{}: cpu {} pcp count is {} but its lists hold {}", zone_label(z), cpu, pcp.count,
                  least ? fmt::format("at least {} pages", least) : std::string("nothing")));
}

// A successful allocation against the watermark its gfp mask entitles it
// to: the slow path's (gfp_to_alloc_flags()): WMARK_MIN with the zone's
// boost (order-0 __GFP_ATOMIC ignores the boost), __GFP_HIGH takes half of
// it, a __GFP_ATOMIC caller that cannot reclaim (and is not
// __GFP_NOMEMALLOC) a quarter of the rest and the highatomic reserve; CMA
// pages serve movable allocations only; lowmem_reserve of the highest zone
// the mask allows comes on top. __GFP_MEMALLOC and __GFP_NOFAIL may go below
// every watermark.
void BuddyChecker::check_watermark(const mm::Mm& m, const mm::WatermarkPass& w, Reporter& r) {
  using namespace mm;
  const gfp_t gfp = w.gfp;
  if ((gfp & __GFP_NOFAIL) || ((gfp & __GFP_MEMALLOC) && !(gfp & __GFP_NOMEMALLOC))) return;
  const auto& pa = m.page_alloc;
  if (w.nid < 0 || static_cast<std::size_t>(w.nid) >= pa.node_data.size() || w.zone_idx < 0 ||
      w.zone_idx >= MAX_NR_ZONES)
    return;
  const zone& z = pa.node_data[static_cast<std::size_t>(w.nid)]
                      .node_zones[static_cast<std::size_t>(w.zone_idx)];
  const bool atomic = (gfp & __GFP_ATOMIC) && !(gfp & __GFP_DIRECT_RECLAIM);
  long min = static_cast<long>(z._watermark[WMARK_MIN]);
  if (!atomic || w.order) min += static_cast<long>(w.watermark_boost);
  if (gfp & __GFP_HIGH) min -= min / 2;
  const bool harder = atomic && !(gfp & __GFP_NOMEMALLOC);
  if (harder) min -= min / 4;
  long unusable = (1L << w.order) - 1;
  if (!harder) unusable += static_cast<long>(w.nr_reserved_highatomic);
  if (gfp_migratetype(gfp) != MIGRATE_MOVABLE) unusable += w.free_cma_pages;
  const long reserve = z.lowmem_reserve[static_cast<std::size_t>(gfp_zone(gfp))];
  if (w.free_pages - unusable > min + reserve) return;
  buddy_bug(
      m, r, kBuddyWatermark, w.pfn,
      fmt::format("order-{} {} allocation (pfn {:#x}) from {} passed its watermark check with "
                  "{} free pages, {} of them usable, but its gfp mask entitles it to no less "
                  "than {} (+ lowmem_reserve {}); the allocator used alloc_flags {:#x}",
                  w.order, format_gfp(gfp), w.pfn, zone_label(z), w.free_pages,
                  w.free_pages - unusable, min, reserve, w.alloc_flags));
}

void BuddyChecker::incremental(const mm::Mm& m, const TouchLog& touched, Reporter& r) {
  const auto& pa = m.page_alloc;
  if (r.enabled(kBuddyWatermark))
    for (const auto& w : touched.watermarks) check_watermark(m, w, r);
  std::uint32_t zones_seen = 0;  // bit per (node, zone), nodes < 8
  // Neighbouring ranges (a pcp batch, one split) share ancestors: each pfn
  // is checked once per call. seen_ is a small open-addressed set of this
  // call's pfns (entries stamped with the call); when full, pfns are
  // simply checked again.
  if (++stamp_ == 0) {
    seen_ = {};
    stamp_ = 1;
  }
  unsigned nr_seen = 0;
  const auto check_once = [&](std::uint64_t pfn) {
    if (nr_seen < kSeen * 3 / 4) {
      for (std::size_t i = (pfn * 0x9e3779b97f4a7c15ull) >> 56;; i = (i + 1) % kSeen) {
        auto& e = seen_[i];
        if (e.second != stamp_) {
          e = {pfn, stamp_};
          ++nr_seen;
          break;
        }
        if (e.first == pfn) return;
      }
    }
    check_block_at(m, pfn, r);
  };
  for (const auto& [pfn, nr] : touched.ranges) {
    if (!m.pfn_valid(pfn)) continue;
    check_once(pfn);
    // The blocks a split left behind are buddies of pfn's ancestors.
    const unsigned top = pa.max_order();
    for (unsigned o = 0; o + 1 < top; ++o) {
      const std::uint64_t sib = (pfn & ~((std::uint64_t{1} << o) - 1)) ^ (std::uint64_t{1} << o);
      if (mm::PageBuddy(m.pfn_to_page(sib))) check_once(sib);  // same section as pfn
    }
    if (nr > 1 && m.pfn_valid(pfn + nr - 1)) check_once(pfn + nr - 1);
    const mm::page& p = m.pfn_to_page(pfn);
    const unsigned bit = (p.nid & 7u) * mm::MAX_NR_ZONES + p.zone;
    if (!(zones_seen & (1u << bit))) {
      zones_seen |= 1u << bit;
      check_zone_counters(m, p.nid, p.zone, r);
    }
  }
}

}  // namespace mmfuzz::inv
