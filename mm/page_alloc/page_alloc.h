// The zoned buddy allocator with per-CPU page lists (mm/page_alloc.c).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mm/observer.h"
#include "mm/page_alloc/gfp.h"
#include "mm/page_alloc/mmzone.h"
#include "mm/page_alloc/page_owner.h"
#include "mm/phys/page_list.h"
#include "mm/types.h"

namespace mmfuzz::mm {

class Mm;

// alloc_flags (mm/internal.h, 6.1 values)
inline constexpr unsigned ALLOC_WMARK_MIN = WMARK_MIN;
inline constexpr unsigned ALLOC_WMARK_LOW = WMARK_LOW;
inline constexpr unsigned ALLOC_WMARK_HIGH = WMARK_HIGH;
inline constexpr unsigned ALLOC_NO_WATERMARKS = 0x04;
inline constexpr unsigned ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1;
inline constexpr unsigned ALLOC_OOM = 0x08;
inline constexpr unsigned ALLOC_HARDER = 0x10;
inline constexpr unsigned ALLOC_HIGH = 0x20;
inline constexpr unsigned ALLOC_CPUSET = 0x40;
inline constexpr unsigned ALLOC_CMA = 0x80;
inline constexpr unsigned ALLOC_NOFRAGMENT = 0x100;
inline constexpr unsigned ALLOC_KSWAPD = 0x800;

struct alloc_context {
  const zonelist* zl = nullptr;
  zoneref preferred_zoneref{};
  bool have_preferred = false;
  int migratetype = MIGRATE_UNMOVABLE;
  int highest_zoneidx = ZONE_NORMAL;
};

// The reserved CMA area (one, as cma= makes).
struct cma_area {
  phys_addr_t base = 0;
  std::uint64_t count = 0;  // pages
  bool active = false;
};

class PageAlloc {
 public:
  explicit PageAlloc(Mm& mm);

  // ---- API (include/linux/gfp.h) ----
  pfn_t alloc_pages(gfp_t gfp, unsigned order);
  pfn_t alloc_pages_node(int nid, gfp_t gfp, unsigned order);
  pfn_t alloc_page(gfp_t gfp) { return alloc_pages(gfp, 0); }
  vaddr_t __get_free_pages(gfp_t gfp, unsigned order);
  vaddr_t __get_free_page(gfp_t gfp) { return __get_free_pages(gfp, 0); }
  vaddr_t get_zeroed_page(gfp_t gfp) { return __get_free_pages(gfp | __GFP_ZERO, 0); }
  void __free_pages(pfn_t pfn, unsigned order);
  void free_pages(vaddr_t addr, unsigned order);
  void __free_page(pfn_t pfn) { __free_pages(pfn, 0); }
  void free_page(vaddr_t addr) { free_pages(addr, 0); }
  vaddr_t alloc_pages_exact(std::uint64_t size, gfp_t gfp);
  void free_pages_exact(vaddr_t addr, std::uint64_t size);
  void split_page(pfn_t pfn, unsigned order);
  void get_page(pfn_t pfn);
  void put_page(pfn_t pfn);

  void drain_local_pages(int cpu);  // this CPU's pcp lists, every zone
  void drain_all_pages();
  // Deferred work of kswapd: the model reclaims nothing but resets boosts.
  void kswapd_run();
  // Snapshots (mm/snapshot.cpp): copies `snap`'s state; same configuration.
  // page_owner of [first, end) pfns only: nothing owns a page outside RAM.
  // page_owner is copied for the dirty pfn ranges (Sparse::take_dirty()).
  void restore_from(const PageAlloc& snap, const std::vector<std::pair<pfn_t, pfn_t>>& dirty);

  // ---- state ----
  std::vector<pglist_data> node_data;  // NODE_DATA(nid)
  std::uint64_t min_free_kbytes = 1024;
  long user_min_free_kbytes = -1;
  std::uint64_t totalreserve_pages = 0;
  std::uint64_t totalram_pages = 0;
  std::uint64_t totalcma_pages = 0;
  cma_area cma;
  std::uint64_t nr_alloc_failures = 0;  // every failed allocation
  std::uint64_t nr_alloc_warnings = 0;  // those that warned (no __GFP_NOWARN)
  // The first warnings, as warn_alloc() would print them (bounded).
  static constexpr std::size_t kMaxRecordedWarnings = 16;
  std::vector<AllocFailure> alloc_warnings;
  std::uint64_t pgalloc = 0;  // vm events PGALLOC (all zones)
  std::uint64_t pgfree = 0;

  unsigned max_order() const { return max_order_; }
  unsigned pageblock_order() const { return pageblock_order_; }
  unsigned nr_pcp_lists() const { return nr_pcp_lists_; }
  bool pcp_allowed_order(unsigned order) const;
  unsigned order_to_pindex(int migratetype, unsigned order) const;
  unsigned pindex_to_order(unsigned pindex) const;

  zone& page_zone(pfn_t pfn);
  const zone& page_zone(pfn_t pfn) const;
  zone& zone_of(const zoneref& z) {
    return node_data[static_cast<std::size_t>(z.node)]
        .node_zones[static_cast<std::size_t>(z.zone_idx)];
  }
  int get_pageblock_migratetype(pfn_t pfn) const;
  void set_pageblock_migratetype(pfn_t pfn, int mt);
  bool is_free_buddy_page(pfn_t pfn) const;
  const page_owner& owner(pfn_t pfn) const;
  int numa_node_id() const;

  // ---- boot (called by Mm in start_kernel order) ----
  void free_area_init(const std::vector<pfn_t>& max_zone_pfn);
  void build_all_zonelists();
  void setup_per_cpu_pageset();
  void memblock_free_all();
  void cma_activate();
  void init_per_zone_wmark_min();
  void set_recommended_min_free_kbytes();
  // free_reserved_area(): kernel init memory and the initrd.
  std::uint64_t free_reserved_area(phys_addr_t start, phys_addr_t end, int poison);
  std::uint64_t nr_free_zone_pages(int offset) const;  // vm_total_pages
  void setup_per_zone_wmarks();

  // ---- lists, for checkers and views ----
  // A list link: a page's lru or a list head sentinel.
  const list_head& L(std::uint32_t id) const { return lists_.L(id); }
  bool list_empty(page_list head) const { return L(head).next == head; }
  pfn_t list_first_entry(page_list head) const;
  pfn_t list_last_entry(page_list head) const;
  // Entries up to limit; limit + 1 when longer or when a link is broken.
  std::uint64_t list_length(page_list head, std::uint64_t limit) const;
  std::size_t nr_list_heads() const { return lists_.nr_heads(); }
  // The head of the allocated (or pcp) block covering pfn, or NO_PAGE.
  pfn_t owning_block(pfn_t pfn, page_owner_state state) const;

  friend class PageAllocCorruptor;

 private:
  friend class Mm;
  // allocation
  pfn_t __alloc_pages(gfp_t gfp, unsigned order, int preferred_nid);
  pfn_t get_page_from_freelist(gfp_t gfp, unsigned order, unsigned alloc_flags, alloc_context& ac);
  pfn_t __alloc_pages_slowpath(gfp_t gfp, unsigned order, alloc_context& ac);
  bool zone_watermark_fast(const zone& z, unsigned order, std::uint64_t mark, int highest_zoneidx,
                           unsigned alloc_flags, gfp_t gfp) const;
  bool __zone_watermark_ok(const zone& z, unsigned order, std::uint64_t mark, int highest_zoneidx,
                           unsigned alloc_flags, long free_pages) const;
  long __zone_watermark_unusable_free(const zone& z, unsigned order, unsigned alloc_flags) const;
  unsigned alloc_flags_nofragment(const zone* z, gfp_t gfp) const;
  pfn_t rmqueue(zone& preferred, zone& z, unsigned order, gfp_t gfp, unsigned alloc_flags,
                int migratetype);
  pfn_t rmqueue_pcplist(zone& preferred, zone& z, unsigned order, unsigned alloc_flags,
                        int migratetype);
  pfn_t rmqueue_buddy(zone& preferred, zone& z, unsigned order, unsigned alloc_flags,
                      int migratetype);
  int rmqueue_bulk(zone& z, unsigned order, int count, page_list list, int migratetype,
                   unsigned alloc_flags);
  pfn_t __rmqueue(zone& z, unsigned order, int migratetype, unsigned alloc_flags);
  pfn_t __rmqueue_smallest(zone& z, unsigned order, int migratetype);
  bool __rmqueue_fallback(zone& z, int order, int start_migratetype, unsigned alloc_flags);
  int find_suitable_fallback(const free_area& area, unsigned order, int migratetype,
                             bool only_stealable, bool* can_steal) const;
  bool can_steal_fallback(unsigned order, int start_mt) const;
  void steal_suitable_fallback(zone& z, pfn_t pfn, unsigned alloc_flags, int start_type,
                               bool whole_block);
  bool boost_watermark(zone& z);
  std::uint64_t move_freepages_block(zone& z, pfn_t pfn, int migratetype, int* num_movable);
  void change_pageblock_range(pfn_t pfn, unsigned start_order, int migratetype);
  void reserve_highatomic_pageblock(pfn_t pfn, zone& z);
  bool unreserve_highatomic_pageblock(const alloc_context& ac, bool force);
  void expand(zone& z, pfn_t pfn, unsigned low, unsigned high, int migratetype);
  void prep_new_page(pfn_t pfn, unsigned order, gfp_t gfp);
  void prep_compound_page(pfn_t pfn, unsigned order);
  void zone_statistics(zone& preferred, zone& z);
  void warn_alloc(gfp_t gfp, unsigned order, int nid, bool nofail);

  // freeing
  bool check_free(pfn_t pfn, unsigned order, const char* api, vaddr_t addr);
  void free_pages_common(pfn_t pfn, unsigned order, const char* api, vaddr_t addr);
  bool free_pages_prepare(pfn_t pfn, unsigned order);
  void free_the_page(pfn_t pfn, unsigned order);
  void free_unref_page(pfn_t pfn, unsigned order);
  void free_unref_page_commit(zone& z, per_cpu_pages& pcp, pfn_t pfn, int migratetype,
                              unsigned order);
  void __free_pages_ok(pfn_t pfn, unsigned order, bool to_tail);
  void __free_one_page(pfn_t pfn, zone& z, unsigned order, int migratetype, bool to_tail);
  void free_pcppages_bulk(zone& z, int count, per_cpu_pages& pcp, unsigned pindex);
  int nr_pcp_free(per_cpu_pages& pcp, int high, int batch, bool free_high) const;
  int nr_pcp_high(const per_cpu_pages& pcp, bool free_high) const;
  void __free_pages_core(pfn_t pfn, unsigned order);
  void drain_zone_pages(zone& z, per_cpu_pages& pcp);
  void report_misuse(MisuseKind kind, pfn_t pfn, unsigned order, const char* api,
                     std::string detail, vaddr_t addr = 0);

  // free lists
  page_list new_list() { return lists_.new_list(); }
  list_head& L(std::uint32_t id) { return lists_.L(id); }
  void list_add(page_list head, pfn_t pfn);
  void list_add_tail(page_list head, pfn_t pfn);
  void list_del(pfn_t pfn);
  void add_to_free_list(pfn_t pfn, zone& z, unsigned order, int mt, bool tail);
  void move_to_free_list(pfn_t pfn, zone& z, unsigned order, int mt);
  void del_page_from_free_list(pfn_t pfn, zone& z, unsigned order);
  void __mod_zone_freepage_state(zone& z, long nr_pages, int migratetype);
  pfn_t find_buddy_page_pfn(pfn_t pfn, unsigned order) const;

  // pcp setup
  int zone_batchsize(const zone& z) const;
  int zone_highsize(const zone& z, int batch, int cpu_online) const;
  void zone_set_pageset_high_and_batch(zone& z, int cpu_online);
  void __setup_per_zone_wmarks();
  void calculate_totalreserve_pages();
  void setup_per_zone_lowmem_reserve();
  void refresh_zone_stat_thresholds();
  void calculate_min_free_kbytes();
  std::uint64_t nr_free_buffer_pages() const;

  void touched(pfn_t pfn, std::uint64_t nr);
  page& pg(pfn_t pfn);
  const page& pg(pfn_t pfn) const;
  page_owner& owner_mut(pfn_t pfn);

  Mm& mm_;
  // Copies of hot profile fields and of the memmap geometry: the fast paths
  // read these instead of chasing mm_.profile / mm_.sparse.
  page* memmap_ = nullptr;                 // struct page of memmap_base_
  std::uint64_t* memmap_dirty_ = nullptr;  // Sparse::memmap_dirty()
  pfn_t memmap_base_ = 0;
  bool pcp_v61_;
  bool thp_;
  bool init_on_alloc_;
  bool init_on_free_;
  unsigned costly_order_;
  unsigned max_order_;
  unsigned pageblock_order_;
  unsigned nr_pcp_lists_;
  std::vector<std::uint8_t> pageblock_flags_;  // migratetype per pageblock
  std::vector<page_owner> page_owner_;         // per pfn
  PageLists lists_;                            // buddy and pcp lists
  bool page_group_by_mobility_disabled_ = false;
};

}  // namespace mmfuzz::mm
