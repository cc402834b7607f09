#include "mm/testing/corrupt.h"

namespace mmfuzz::mm {

pfn_t PageAllocCorruptor::find_free_block(unsigned order, int mt) const {
  for (const auto& pgdat : pa_.node_data)
    for (const auto& z : pgdat.node_zones)
      for (int t = 0; t < MIGRATE_TYPES; ++t) {
        if (mt >= 0 && t != mt) continue;
        const pfn_t pfn =
            pa_.list_first_entry(z.free_area_[order].free_list[static_cast<std::size_t>(t)]);
        if (pfn != NO_PAGE) return pfn;
      }
  return NO_PAGE;
}

void PageAllocCorruptor::set_page_buddy(pfn_t pfn, unsigned order) {
  page& p = page_of(pfn);
  p.set_type(PG_buddy);
  p.private_ = order;
}

void PageAllocCorruptor::set_reserved(pfn_t pfn, bool on) {
  if (on)
    page_of(pfn).set(PG_reserved);
  else
    page_of(pfn).clear(PG_reserved);
}

void PageAllocCorruptor::set_owner(pfn_t pfn, page_owner_state state, unsigned order) {
  page_owner& o = pa_.owner_mut(pfn);
  o.state = state;
  o.order = static_cast<std::uint8_t>(order);
}

void PageAllocCorruptor::remove_free_block(pfn_t pfn) {
  const page& p = page_of(pfn);
  const unsigned order = buddy_order(p);
  const int mt = static_cast<int>(p.index);
  zone& z = pa_.page_zone(pfn);
  pa_.del_page_from_free_list(pfn, z, order);
  pa_.__mod_zone_freepage_state(z, -(1L << order), mt);
}

void PageAllocCorruptor::insert_free_block(pfn_t pfn, unsigned order, int mt) {
  zone& z = pa_.page_zone(pfn);
  pa_.add_to_free_list(pfn, z, order, mt, false);
  set_page_buddy(pfn, order);
  pa_.__mod_zone_freepage_state(z, 1L << order, mt);
}

void PageAllocCorruptor::split_free_block(pfn_t pfn) {
  const page& p = page_of(pfn);
  const unsigned order = buddy_order(p);
  const int mt = static_cast<int>(p.index);
  remove_free_block(pfn);
  insert_free_block(pfn, order - 1, mt);
  insert_free_block(pfn + (pfn_t{1} << (order - 1)), order - 1, mt);
}

}  // namespace mmfuzz::mm
