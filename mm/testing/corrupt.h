// Test-only corruption API: breaks the model's state on purpose so every
// checker can be shown to fire (a checker that cannot fail is a defect).
// Never linked into the tool or the fuzzers.
#pragma once

#include <cstdint>
#include <unordered_map>

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
  void set_watermark(int nid, int zid, int wmark, std::uint64_t v) {
    zone_of(nid, zid)._watermark[static_cast<std::size_t>(wmark)] = v;
  }
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

// The kernel VM layer: page-table descriptors, the TLB, vmalloc bookkeeping.
// Raw edits: no TLB maintenance, no counters kept in step, no observer told.
class VmCorruptor {
 public:
  explicit VmCorruptor(Mm& mm) : mm_(mm), pt_(mm.pgtable), vm_(mm.vmalloc) {}

  // ---- descriptors
  // The walk of va (entry = the last descriptor read; leaf when mapped).
  PgWalk walk(vaddr_t va) const { return pt_.walk(va); }
  // The descriptor address of the leaf mapping va (0 when unmapped).
  phys_addr_t leaf_entry(vaddr_t va) const;
  // The descriptor address at `level` on the way to va (0 when the walk stops above it).
  phys_addr_t entry_at(vaddr_t va, int level) const;
  pteval_t read_desc(phys_addr_t entry) const { return pt_.read_desc(entry); }
  void write_desc(phys_addr_t entry, pteval_t v) { pt_.write_desc(entry, v); }
  void set_bits(phys_addr_t entry, pteval_t bits) { write_desc(entry, read_desc(entry) | bits); }
  void clear_bits(phys_addr_t entry, pteval_t bits) { write_desc(entry, read_desc(entry) & ~bits); }
  // Maps one page at va through the normal table code (tables allocated and
  // accounted as usual), bypassing vmalloc's bookkeeping.
  bool map_page(vaddr_t va, pfn_t pfn, pteval_t prot);
  // Copies the table page the `level` descriptor on the way to va points at
  // into `to` (any page of RAM) and repoints that descriptor there. The old
  // table keeps its PG_table; the new page's type is left as it is.
  phys_addr_t move_table(vaddr_t va, int level, phys_addr_t to);

  // ---- table pages
  void set_page_table(pfn_t pfn) { mm_.pfn_to_page(pfn).set_type(PG_table); }
  void clear_page_table(pfn_t pfn) { mm_.pfn_to_page(pfn).clear_type(PG_table); }
  void add_nr_pagetable(int nid, long delta) {
    mm_.page_alloc.node_data[static_cast<std::size_t>(nid)].vm_stat[NR_PAGETABLE] += delta;
  }
  void set_nr_tables(std::uint64_t v) { pt_.nr_tables = v; }

  // ---- TLB
  // Plants (or overwrites) cpu's cached translation of the page at va.
  void plant_tlb(int cpu, vaddr_t va, phys_addr_t pa, pteval_t attrs);

  // ---- vmalloc
  vmap_area* busy_area(vaddr_t start);  // the busy area starting at start, or null
  vm_struct* vm(vaddr_t start);         // its vm_struct, or null
  vmap_area* lazy_area(vaddr_t start);  // the lazily freed area starting at start, or null
  void add_free_range(vaddr_t start, vaddr_t end) { vm_.free_[start] = end; }
  void set_nr_vmalloc_pages(std::uint64_t v) { vm_.nr_vmalloc_pages = v; }
  void set_vmap_lazy_nr(std::uint64_t v) { vm_.vmap_lazy_nr = v; }

 private:
  Mm& mm_;
  PageTables& pt_;
  Vmalloc& vm_;
};

// mempool reserves. Raw edits: no allocator is told, no ledger kept.
class MempoolCorruptor {
 public:
  explicit MempoolCorruptor(Mm& mm) : pools_(mm.mempools) {}
  // The last reserve element leaves the pool, neither lent nor freed.
  vaddr_t drop_element(mempool_id id);
  // e joins the reserve without coming from mempool_free().
  void add_element(mempool_id id, vaddr_t e);

 private:
  mempool_t& pool(mempool_id id) { return *pools_.pools_.at(id - 1); }
  Mempools& pools_;
};

}  // namespace mmfuzz::mm
