// Inline definitions of PageAlloc's small helpers. Included at the end of
// mm/mm.h, where Mm is complete, so every user gets them inlined.
#pragma once

namespace mmfuzz::mm {

inline void PageAlloc::list_add(page_list head, pfn_t pfn) {
  lists_.add(head, pfn);
}

inline void PageAlloc::list_add_tail(page_list head, pfn_t pfn) {
  lists_.add_tail(head, pfn);
}

inline void PageAlloc::list_del(pfn_t pfn) {
  lists_.del(pfn);
}

inline pfn_t PageAlloc::list_first_entry(page_list head) const {
  return lists_.first(head);
}

inline pfn_t PageAlloc::list_last_entry(page_list head) const {
  return lists_.last(head);
}

inline void PageAlloc::add_to_free_list(pfn_t pfn, zone& z, unsigned order, int mt, bool tail) {
  free_area& area = z.free_area_[order];
  if (tail)
    list_add_tail(area.free_list[static_cast<std::size_t>(mt)], pfn);
  else
    list_add(area.free_list[static_cast<std::size_t>(mt)], pfn);
  area.nr_free++;
  area.nr_free_mt[static_cast<std::size_t>(mt)]++;
  pg(pfn).index = static_cast<std::uint32_t>(mt);
}

inline void PageAlloc::move_to_free_list(pfn_t pfn, zone& z, unsigned order, int mt) {
  free_area& area = z.free_area_[order];
  page& p = pg(pfn);
  list_del(pfn);
  list_add_tail(area.free_list[static_cast<std::size_t>(mt)], pfn);
  area.nr_free_mt[p.index]--;
  area.nr_free_mt[static_cast<std::size_t>(mt)]++;
  p.index = static_cast<std::uint32_t>(mt);
}

inline void PageAlloc::del_page_from_free_list(pfn_t pfn, zone& z, unsigned order) {
  free_area& area = z.free_area_[order];
  list_del(pfn);
  page& p = pg(pfn);
  p.clear_type(PG_buddy);
  p.private_ = 0;
  area.nr_free--;
  area.nr_free_mt[p.index]--;
}

inline void PageAlloc::__mod_zone_freepage_state(zone& z, long nr_pages, int migratetype) {
  z.vm_stat[NR_FREE_PAGES] += nr_pages;
  if (is_migrate_cma(migratetype)) z.vm_stat[NR_FREE_CMA_PAGES] += nr_pages;
}

inline bool PageAlloc::pcp_allowed_order(unsigned order) const {
  if (!pcp_v61_) return order == 0;
  if (order <= costly_order_) return true;
  return thp_ && order == pageblock_order_;
}

inline unsigned PageAlloc::order_to_pindex(int migratetype, unsigned order) const {
  if (!pcp_v61_) return static_cast<unsigned>(migratetype);
  if (order > costly_order_) return MIGRATE_PCPTYPES * (costly_order_ + 1);
  return MIGRATE_PCPTYPES * order + static_cast<unsigned>(migratetype);
}

inline zone& PageAlloc::page_zone(pfn_t pfn) {
  const page& p = pg(pfn);
  return node_data[p.nid].node_zones[p.zone];
}

inline const zone& PageAlloc::page_zone(pfn_t pfn) const {
  const page& p = pg(pfn);
  return node_data[p.nid].node_zones[p.zone];
}

inline int PageAlloc::get_pageblock_migratetype(pfn_t pfn) const {
  return pageblock_flags_[(pfn - memmap_base_) >> pageblock_order_];
}

inline void PageAlloc::set_pageblock_migratetype(pfn_t pfn, int mt) {
  pageblock_flags_[(pfn - memmap_base_) >> pageblock_order_] = static_cast<std::uint8_t>(mt);
}

inline const page_owner& PageAlloc::owner(pfn_t pfn) const {
  return page_owner_[pfn - memmap_base_];
}

inline page_owner& PageAlloc::owner_mut(pfn_t pfn) {
  Sparse::mark_dirty(memmap_dirty_, pfn - memmap_base_);
  return page_owner_[pfn - memmap_base_];
}

inline page& PageAlloc::pg(pfn_t pfn) {
  Sparse::mark_dirty(memmap_dirty_, pfn - memmap_base_);
  return memmap_[pfn - memmap_base_];
}

inline const page& PageAlloc::pg(pfn_t pfn) const {
  return memmap_[pfn - memmap_base_];
}

inline int PageAlloc::numa_node_id() const {
  return mm_.cpu_to_node(mm_.cpu());
}

}  // namespace mmfuzz::mm
