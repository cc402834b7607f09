// SLUB (mm/slub.c of 6.1): object layout, free pointers in simulated RAM
// (SLAB_FREELIST_HARDENED), randomised freelists (SLAB_FREELIST_RANDOM),
// cpu slabs, cpu partial chains, node partial lists and SLUB debug.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/observer.h"
#include "mm/slab/slab.h"

namespace mmfuzz::mm {

inline constexpr unsigned SLUB_TRACK_SIZE = 32;  // struct track with STACKDEPOT
inline constexpr unsigned MAX_OBJS_PER_PAGE = 32767;

// What SLUB debug's check_object() and slab_pad_check() find, without
// changing anything: the allocator reports and restores, the checkers report.
struct SlubFinding {
  MisuseKind kind;
  const char*
      what;  // "Left Redzone", "Right Redzone", "Poison", "End Poison", "Object padding", ...
  vaddr_t fault = 0;  // first bad byte
  vaddr_t end = 0;    // one past the last bad byte
  std::uint8_t first = 0, expected = 0;
  std::uint64_t offset = 0;  // of the fault from the object (or slab) start
  std::uint8_t fill = 0;     // the value restore_bytes() writes back
};

namespace slub {

// Layout helpers (pure functions of the cache).
inline bool freeptr_outside_object(const kmem_cache& s) {
  return s.offset >= s.inuse;
}
inline unsigned get_info_end(const kmem_cache& s) {
  return freeptr_outside_object(s) ? s.inuse + 8 : s.inuse;
}
inline unsigned track_offset(const kmem_cache& s) {
  return get_info_end(s);
}
inline unsigned size_from_object(const kmem_cache& s) {
  return (s.flags & SLAB_RED_ZONE) ? s.size - s.red_left_pad : s.size;
}
unsigned calculate_order(unsigned size, unsigned nr_cpus, unsigned max_order, unsigned page_shift);

// The object at index i of a slab, and back.
inline vaddr_t object_at(const Mm& mm, const kmem_cache& s, pfn_t slab, unsigned i) {
  return mm.page_address(slab) + std::uint64_t{i} * s.size + s.red_left_pad;
}
inline bool object_index(const Mm& mm, const kmem_cache& s, pfn_t slab, vaddr_t obj,
                         unsigned* index) {
  const std::uint64_t off = obj - (mm.page_address(slab) + s.red_left_pad);  // wraps below
  if (off >= std::uint64_t{mm.pfn_to_page(slab).slab.objects} * s.size) return false;
  const unsigned i = reciprocal_divide(static_cast<std::uint32_t>(off), s.reciprocal_size);
  if (std::uint64_t{i} * s.size != off) return false;
  *index = i;
  return true;
}
// A free pointer is NULL or an object start of this slab (check_valid_pointer()).
inline bool check_valid_pointer(const Mm& mm, const kmem_cache& s, pfn_t slab, vaddr_t p) {
  unsigned idx;
  return p == 0 || object_index(mm, s, slab, p, &idx);
}
// freelist_ptr(): SLAB_FREELIST_HARDENED's obfuscation.
inline std::uint64_t freelist_ptr(const kmem_cache& s, std::uint64_t ptr, vaddr_t ptr_addr) {
  return ptr ^ s.random ^ __builtin_bswap64(ptr_addr);
}
// The free pointer stored in obj, de-obfuscated (get_freepointer()).
inline vaddr_t get_freepointer(const Mm& mm, const kmem_cache& s, vaddr_t obj) {
  const vaddr_t at = obj + s.offset;
  return freelist_ptr(s, mm.ram.load64(mm.__pa(at)), at);
}

std::vector<SlubFinding> check_object(const Mm& mm, const kmem_cache& s, pfn_t slab, vaddr_t object,
                                      std::uint8_t val);
std::vector<SlubFinding> check_slab_padding(const Mm& mm, const kmem_cache& s, pfn_t slab);
// SLUB's line under the title: "0x...-0x... @offset=N. First byte 0x.. instead of 0x.."
std::string finding_line(const SlubFinding& f);

// The tracks SLAB_STORE_USER keeps after the object.
struct Track {
  std::uint64_t addr = 0;  // call site
  std::uint32_t handle = 0;
  int cpu = 0, pid = 0;
  std::uint64_t when = 0;  // the op sequence number in the model
};
Track get_track(const Mm& mm, const kmem_cache& s, vaddr_t object, bool free);

}  // namespace slub
}  // namespace mmfuzz::mm
