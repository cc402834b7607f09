// Circular doubly linked lists of struct pages through page->lru, with
// sentinel heads, as list_head lists are in the kernel. The buddy allocator,
// pcp lists and slab lists each own a PageLists (a page is on one list at a
// time, as in the kernel). Links are 32-bit ids: pages are memmap offsets,
// heads are LIST_HEAD_BASE + index into this set's sentinels.
#pragma once

#include <cstdint>
#include <vector>

#include "mm/phys/page.h"
#include "mm/phys/sparse.h"
#include "mm/types.h"

namespace mmfuzz::mm {

using page_list = std::uint32_t;  // the id of a list head sentinel

class PageLists {
 public:
  // dirty: Sparse::memmap_dirty(), marked by the writable L().
  void bind(page* memmap, pfn_t base, std::uint64_t* dirty) {
    memmap_ = memmap;
    base_ = base;
    dirty_ = dirty;
  }
  page_list new_list() {
    const auto id = static_cast<std::uint32_t>(LIST_HEAD_BASE + heads_.size());
    heads_.push_back({id, id});
    return id;
  }
  std::size_t nr_heads() const { return heads_.size(); }
  // Snapshots: the list heads of `snap` (the links live in the memmap).
  void restore_from(const PageLists& snap) { heads_ = snap.heads_; }

  list_head& L(std::uint32_t id) {
    if (id >= LIST_HEAD_BASE) return heads_[id - LIST_HEAD_BASE];
    Sparse::mark_dirty(dirty_, id);
    return memmap_[id].lru;
  }
  const list_head& L(std::uint32_t id) const {
    return id >= LIST_HEAD_BASE ? heads_[id - LIST_HEAD_BASE] : memmap_[id].lru;
  }
  std::uint32_t id_of(pfn_t pfn) const { return static_cast<std::uint32_t>(pfn - base_); }
  pfn_t pfn_of(std::uint32_t id) const { return base_ + id; }

  bool empty(page_list head) const { return L(head).next == head; }
  void add(page_list head, pfn_t pfn) {  // list_add: at the head
    const std::uint32_t id = id_of(pfn);
    list_head& h = L(head);
    const std::uint32_t next = h.next;
    list_head& n = L(id);
    n.next = next;
    n.prev = head;
    L(next).prev = id;
    h.next = id;
  }
  void add_tail(page_list head, pfn_t pfn) {
    const std::uint32_t id = id_of(pfn);
    list_head& h = L(head);
    const std::uint32_t prev = h.prev;
    list_head& n = L(id);
    n.prev = prev;
    n.next = head;
    L(prev).next = id;
    h.prev = id;
  }
  void del(pfn_t pfn) {
    list_head& n = L(id_of(pfn));
    L(n.prev).next = n.next;
    L(n.next).prev = n.prev;
    n.next = n.prev = LIST_NIL;
  }
  void move_tail(pfn_t pfn, page_list head) {
    del(pfn);
    add_tail(head, pfn);
  }
  pfn_t first(page_list head) const {
    const std::uint32_t id = L(head).next;
    return id == head ? NO_PAGE : pfn_of(id);
  }
  pfn_t last(page_list head) const {
    const std::uint32_t id = L(head).prev;
    return id == head ? NO_PAGE : pfn_of(id);
  }
  // Is id a link this set may follow: a page of the memmap or one of its heads.
  bool valid_id(std::uint32_t id, std::uint64_t nr_pages) const {
    if (id == LIST_NIL) return false;
    return id >= LIST_HEAD_BASE ? id - LIST_HEAD_BASE < heads_.size() : id < nr_pages;
  }
  // Entries up to limit; limit + 1 when longer or when a link is broken.
  std::uint64_t length(page_list head, std::uint64_t limit, std::uint64_t nr_pages) const {
    std::uint64_t n = 0;
    for (std::uint32_t id = L(head).next; id != head && n <= limit; id = L(id).next) {
      if (!valid_id(id, nr_pages) || id >= LIST_HEAD_BASE) return limit + 1;
      ++n;
    }
    return n;
  }

 private:
  page* memmap_ = nullptr;
  pfn_t base_ = 0;
  std::uint64_t* dirty_ = nullptr;
  std::vector<list_head> heads_;
};

}  // namespace mmfuzz::mm
