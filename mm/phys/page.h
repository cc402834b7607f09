// struct page, one per page frame, and its flag helpers. Field names follow
// include/linux/mm_types.h; list links are page-frame offsets rather than
// host pointers so the whole memmap can be copied for snapshots.
#pragma once

#include <cstdint>

#include "mm/types.h"

namespace mmfuzz::mm {

// enum pageflags of 6.1 (bit numbers as the kernel has them).
enum pageflags : unsigned {
  PG_locked,
  PG_referenced,
  PG_uptodate,
  PG_dirty,
  PG_lru,
  PG_active,
  PG_workingset,
  PG_waiters,
  PG_error,
  PG_slab,
  PG_owner_priv_1,
  PG_arch_1,
  PG_reserved,
  PG_private,
  PG_private_2,
  PG_writeback,
  PG_head,
  PG_mappedtodisk,
  PG_reclaim,
  PG_swapbacked,
  PG_unevictable,
  PG_mlocked,
  PG_hwpoison,
  PG_young,
  PG_idle,
  PG_arch_2,
  __NR_PAGEFLAGS,
};

// Page types live in page_type (the _mapcount union): a type is set when its
// bit is clear, so an untyped page reads as _mapcount == -1.
inline constexpr std::uint32_t PAGE_TYPE_BASE = 0xf0000000u;
inline constexpr std::uint32_t PG_buddy = 0x00000080u;
inline constexpr std::uint32_t PG_offline = 0x00000100u;
inline constexpr std::uint32_t PG_table = 0x00000200u;
inline constexpr std::uint32_t PG_guard = 0x00000400u;

// Flags that must be clear when a page is freed (PAGE_FLAGS_CHECK_AT_FREE).
inline constexpr std::uint64_t PAGE_FLAGS_CHECK_AT_FREE =
    (1ull << PG_lru) | (1ull << PG_locked) | (1ull << PG_private) | (1ull << PG_private_2) |
    (1ull << PG_writeback) | (1ull << PG_reserved) | (1ull << PG_slab) | (1ull << PG_active) |
    (1ull << PG_unevictable) | (1ull << PG_mlocked);

inline constexpr std::uint32_t LIST_NIL = ~std::uint32_t{0};

// A link of a circular doubly linked list. Ids below LIST_HEAD_BASE are pages
// (pfn - memmap base); ids from LIST_HEAD_BASE up are list heads (sentinels).
inline constexpr std::uint32_t LIST_HEAD_BASE = 0x80000000u;
struct list_head {
  std::uint32_t next = LIST_NIL;
  std::uint32_t prev = LIST_NIL;
};

struct page {
  std::uint64_t flags = 0;
  list_head lru;                    // buddy_list / pcp_list share it, as in the kernel
  std::uint64_t private_ = 0;       // buddy order while PageBuddy (page->private)
  std::uint64_t compound_head = 0;  // tail pages: (head pfn << 1) | 1
  std::uint32_t index = 0;          // pcp migratetype while on a pcp list
  std::int32_t _refcount = 0;
  std::int32_t _mapcount = -1;      // page_type shares this word
  std::uint8_t compound_order = 0;  // in the first tail page, as the kernel keeps it
  std::uint8_t zone = 0;            // the kernel packs zone and node into flags
  std::uint16_t nid = 0;
  // struct slab, which overlays the head page of a slab in 6.1.
  struct slab_fields {
    std::uint64_t freelist =
        0;                    // SLUB: first free object; SLAB: its freelist array; SLOB: free units
    std::uint64_t s_mem = 0;  // SLAB: the first object
    std::uint32_t cache = 0;  // slab_cache: the kmem_cache id
    std::uint32_t next = LIST_NIL;  // SLUB: the next slab on a cpu partial chain (memmap offset)
    std::uint16_t inuse = 0;        // SLUB inuse, SLAB active, SLOB free units
    std::uint16_t objects = 0;
    std::int16_t slabs = 0;  // SLUB cpu partial: slabs in the chain from here
    std::uint8_t frozen = 0;
  } slab;

  std::uint32_t page_type() const { return static_cast<std::uint32_t>(_mapcount); }
  bool has_type(std::uint32_t t) const {
    return (page_type() & (PAGE_TYPE_BASE | t)) == PAGE_TYPE_BASE;
  }
  void set_type(std::uint32_t t) { _mapcount = static_cast<std::int32_t>(page_type() & ~t); }
  void clear_type(std::uint32_t t) { _mapcount = static_cast<std::int32_t>(page_type() | t); }

  bool test(pageflags f) const { return (flags >> f) & 1; }
  void set(pageflags f) { flags |= 1ull << f; }
  void clear(pageflags f) { flags &= ~(1ull << f); }
};

inline bool PageBuddy(const page& p) {
  return p.has_type(PG_buddy);
}
inline bool PageTable(const page& p) {
  return p.has_type(PG_table);
}
inline bool PageReserved(const page& p) {
  return p.test(PG_reserved);
}
inline bool PageSlab(const page& p) {
  return p.test(PG_slab);
}
inline bool PageHead(const page& p) {
  return p.test(PG_head);
}
inline bool PageTail(const page& p) {
  return p.compound_head & 1;
}
inline bool PageCompound(const page& p) {
  return PageHead(p) || PageTail(p);
}
inline unsigned buddy_order(const page& p) {
  return static_cast<unsigned>(p.private_);
}

const char* pageflag_name(unsigned bit);

}  // namespace mmfuzz::mm
