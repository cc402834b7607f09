// Test-only corruption API: breaks the model's state on purpose so every
// checker can be shown to fire (a checker that cannot fail is a defect).
// Never linked into the tool or the fuzzers.
#pragma once

#include <cstdint>

#include "mm/mm.h"

namespace mmfuzz::mm {

class PageAllocCorruptor {
 public:
  explicit PageAllocCorruptor(Mm& mm) : mm_(mm), pa_(mm.page_alloc) {}

  // Finders.
  // The first free block of exactly `order` (any zone, any type), or NO_PAGE.
  pfn_t find_free_block(unsigned order, int mt = -1) const;

  // Raw edits: exactly one field changes, no ledger is kept consistent.
  void set_refcount(pfn_t pfn, int v) { page_of(pfn)._refcount = v; }
  void set_page_buddy(pfn_t pfn, unsigned order);  // PageBuddy + private, not linked
  void clear_page_buddy(pfn_t pfn) { page_of(pfn).clear_type(PG_buddy); }
  void set_buddy_order(pfn_t pfn, unsigned order) { page_of(pfn).private_ = order; }
  void set_page_zone(pfn_t pfn, int zone) { page_of(pfn).zone = static_cast<std::uint8_t>(zone); }
  void set_reserved(pfn_t pfn, bool on);
  void set_nr_free(int nid, int zid, unsigned order, std::uint64_t v) {
    zone_of(nid, zid).free_area_[order].nr_free = v;
  }
  void set_zone_stat(int nid, int zid, int item, long v) {
    zone_of(nid, zid).vm_stat[static_cast<std::size_t>(item)] = v;
  }
  void set_pcp_count(int nid, int zid, int cpu, int v) {
    zone_of(nid, zid).per_cpu_pageset[static_cast<std::size_t>(cpu)].count = v;
  }
  void set_managed_pages(int nid, int zid, std::uint64_t v) { zone_of(nid, zid).managed_pages = v; }
  void set_pageblock_migratetype(pfn_t pfn, int mt) { pa_.set_pageblock_migratetype(pfn, mt); }
  void set_owner(pfn_t pfn, page_owner_state state, unsigned order);
  void unlink(pfn_t pfn) { pa_.list_del(pfn); }  // off its list, nothing else
  void break_next_link(pfn_t pfn) { page_of(pfn).lru.next = LIST_NIL; }

  // Ledger-consistent surgery: lists, nr_free, the per-type ledger and
  // NR_FREE_PAGES / NR_FREE_CMA_PAGES stay in agreement, so only the
  // structural property under test breaks.
  void remove_free_block(pfn_t pfn);                          // leak it
  void insert_free_block(pfn_t pfn, unsigned order, int mt);  // anywhere, any alignment
  void split_free_block(pfn_t pfn);  // order k -> two free order k-1 halves

 private:
  page& page_of(pfn_t pfn) { return mm_.pfn_to_page(pfn); }
  zone& zone_of(int nid, int zid) {
    return pa_.node_data[static_cast<std::size_t>(nid)].node_zones[static_cast<std::size_t>(zid)];
  }
  Mm& mm_;
  PageAlloc& pa_;
};

}  // namespace mmfuzz::mm
