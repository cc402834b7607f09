// SLAB (mm/slab.c of 6.1): the layout facts the allocator and its checker
// share. A SLAB slab is: an optional colour offset, num slots of s->size
// bytes from s_mem (the object itself sits obj_offset into its slot, after
// the left red zone word), and a freelist index array (freelist_idx_t per
// object) at the end of the slab (on-slab), inside a free object
// (OBJFREELIST_SLAB) or in a kmalloc object (OFF_SLAB). The index array
// lives in simulated RAM: entries [active, num) name the free objects.
#pragma once

#include <cstdint>

#include "mm/phys/page.h"
#include "mm/slab/slab.h"

namespace mmfuzz::mm {

class Mm;

namespace slab_classic {

// Internal cache flag (mm/slab.c): the freelist lives in a free object.
// CFLGS_OFF_SLAB is kept in kmem_cache::off_slab instead: its bit
// (0x80000000) is SLUB's __OBJECT_POISON in this model.
inline constexpr slab_flags_t CFLGS_OBJFREELIST_SLAB = 0x40000000u;

inline constexpr unsigned BYTES_PER_WORD = 8;
inline constexpr unsigned REDZONE_ALIGN = 8;  // max(BYTES_PER_WORD, __alignof__(u64))
inline constexpr int BATCHREFILL_LIMIT = 16;
inline constexpr unsigned BOOT_BATCH_SHARED_MAGIC = 0xbaadf00d;  // shared arrays' batchcount

// Time, in jiffies of the modeled kernel (CONFIG_HZ=250). One model tick is
// one REAPTIMEOUT_AC period: every CPU's cache_reap() runs once.
inline constexpr std::uint64_t HZ = 250;
inline constexpr std::uint64_t REAPTIMEOUT_AC = 2 * HZ;
inline constexpr std::uint64_t REAPTIMEOUT_NODE = 4 * HZ;

inline bool OBJFREELIST_SLAB(const kmem_cache& s) {
  return s.flags & CFLGS_OBJFREELIST_SLAB;
}
inline bool OFF_SLAB(const kmem_cache& s) {
  return s.off_slab;
}

// SLAB_OBJ_MIN_SIZE: KMALLOC_MIN_SIZE capped at 16.
unsigned slab_obj_min_size(const Mm& mm);
// sizeof(freelist_idx_t): one byte when (PAGE_SIZE >> BITS_PER_BYTE) <=
// SLAB_OBJ_MIN_SIZE (every 4K-page kernel), else two.
unsigned freelist_idx_size(const Mm& mm);

// index_to_obj(): the slot of object i (the object is obj_offset further on).
inline vaddr_t index_to_obj(const kmem_cache& s, const page& p, unsigned i) {
  return p.slab.s_mem + std::uint64_t{s.size} * i;
}
// obj_to_index() of a slot start; false if objp is no slot of this slab.
bool obj_to_index(const kmem_cache& s, const page& p, vaddr_t objp, unsigned* idx);

// get_free_obj(): entry i of the slab's freelist index array, from RAM.
unsigned get_free_obj(const Mm& mm, const page& p, unsigned i);

// The debug words of a slot (dbg_redzone1/2(), dbg_userword()).
inline vaddr_t dbg_redzone1(const kmem_cache& s, vaddr_t objp) {
  return objp + s.obj_offset - 8;
}
inline vaddr_t dbg_redzone2(const kmem_cache& s, vaddr_t objp) {
  return objp + s.size - 8 - ((s.flags & SLAB_STORE_USER) ? REDZONE_ALIGN : 0);
}
inline vaddr_t dbg_userword(const kmem_cache& s, vaddr_t objp) {
  return objp + s.size - BYTES_PER_WORD;
}

}  // namespace slab_classic
}  // namespace mmfuzz::mm
