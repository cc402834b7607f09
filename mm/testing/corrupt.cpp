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

// ------------------------------------------------------------ VmCorruptor

phys_addr_t VmCorruptor::leaf_entry(vaddr_t va) const {
  const PgWalk w = pt_.walk(va);
  return w.leaf ? w.entry : 0;
}

phys_addr_t VmCorruptor::entry_at(vaddr_t va, int level) const {
  const PgWalk w = pt_.walk(va);
  if (level < 0 || level > w.level) return 0;
  return w.table[static_cast<std::size_t>(level)] + level_index(va, level) * 8ull;
}

bool VmCorruptor::map_page(vaddr_t va, pfn_t pfn, pteval_t prot) {
  const pfn_t one[1] = {pfn};
  return pt_.map_pages(va, one, prot);
}

phys_addr_t VmCorruptor::move_table(vaddr_t va, int level, phys_addr_t to) {
  const phys_addr_t entry = entry_at(va, level);
  if (!entry) return 0;
  const pteval_t d = read_desc(entry);
  const phys_addr_t from = d & PTE_ADDR_MASK;
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i)
    write_desc(to + i * 8ull, read_desc(from + i * 8ull));
  write_desc(entry, (d & ~PTE_ADDR_MASK) | (to & PTE_ADDR_MASK));
  return from;
}

void VmCorruptor::plant_tlb(int cpu, vaddr_t va, phys_addr_t pa, pteval_t attrs) {
  // PageTables hands out its TLB read-only; the object itself is not const
  // (mm_ is a mutable Mm), so writing through it is well defined.
  auto& t = const_cast<std::unordered_map<vaddr_t, TlbEntry>&>(pt_.tlb(cpu));
  const std::uint64_t ps = mm_.profile.page_size();
  t[va & ~(ps - 1)] = TlbEntry{pa & ~(ps - 1), attrs & ~PTE_ADDR_MASK, mm_.op_seq};
}

vmap_area* VmCorruptor::busy_area(vaddr_t start) {
  auto it = vm_.busy_.find(start);
  return it == vm_.busy_.end() ? nullptr : &it->second;
}

vm_struct* VmCorruptor::vm(vaddr_t start) {
  vmap_area* a = busy_area(start);
  return a && a->vm ? &*a->vm : nullptr;
}

vmap_area* VmCorruptor::lazy_area(vaddr_t start) {
  auto it = vm_.purge_.find(start);
  return it == vm_.purge_.end() ? nullptr : &it->second;
}

vaddr_t MempoolCorruptor::drop_element(mempool_id id) {
  mempool_t& p = pool(id);
  const vaddr_t e = p.elements.back();
  p.elements.pop_back();
  return e;
}

void MempoolCorruptor::add_element(mempool_id id, vaddr_t e) {
  pool(id).elements.push_back(e);
}

}  // namespace mmfuzz::mm
