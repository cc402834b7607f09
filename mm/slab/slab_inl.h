// Inline definitions of the slab layer's hot helpers (every kmalloc and
// kfree runs them). Included at the end of mm/mm.h, where Mm is complete.
#pragma once

namespace mmfuzz::mm {

inline std::vector<ObjectTrack>* Slab::shadow(pfn_t head) const {
  const pfn_t off = head - mm_.sparse.base_pfn();
  if (off >= shadow_.size()) return nullptr;
  touch_shadow(off);
  return shadow_[off].get();
}

inline void Slab::mark_allocated(pfn_t head, unsigned index, std::uint32_t requested) {
  auto* sh = shadow(head);
  if (!sh || index >= sh->size()) return;
  ObjectTrack& t = (*sh)[index];
  t.allocated = true;
  t.requested = requested;
  t.alloc_seq = mm_.op_seq;
  t.alloc_site = mm_.call_site;
  t.alloc_cpu = static_cast<std::uint16_t>(mm_.cpu());
}

inline void Slab::mark_freed(pfn_t head, unsigned index) {
  auto* sh = shadow(head);
  if (!sh || index >= sh->size()) return;
  ObjectTrack& t = (*sh)[index];
  t.allocated = false;
  t.free_seq = mm_.op_seq;
  t.free_site = mm_.call_site;
  t.free_cpu = static_cast<std::uint16_t>(mm_.cpu());
}

inline pfn_t Slab::slab_head(pfn_t pfn) const {
  if (!mm_.pfn_valid(pfn)) return NO_PAGE;
  const page& p = mm_.pfn_to_page(pfn);
  if (!PageTail(p)) return PageSlab(p) ? pfn : NO_PAGE;
  const pfn_t head = p.compound_head >> 1;
  return mm_.pfn_valid(head) && PageSlab(mm_.pfn_to_page(head)) ? head : NO_PAGE;
}

inline const kmem_cache* Slab::slab_cache_of(pfn_t head) const {
  return head == NO_PAGE ? nullptr : cache(mm_.pfn_to_page(head).slab.cache);
}

}  // namespace mmfuzz::mm
