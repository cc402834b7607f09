// Planted defects for the fuzzing self-test (issue: fuzz-selftest). Each is a
// real-looking bug in the model that the checkers must catch once a fuzzer
// drives the model into it. Compiled in only with MMFUZZ_PLANTED_DEFECTS
// (a test-only build option); selected at run time by MmConfig::planted.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mmfuzz::mm {

// Each hook is one predictable branch on Mm::planted(); the comment says
// where it sits and what catches it (tests/test_planted.cpp).
enum class PlantedDefect : std::uint8_t {
  none,
  // page_alloc.cpp __free_one_page(): a block freed at order 1..3 (the
  // high-order pcp lists) stops merging at PAGE_ALLOC_COSTLY_ORDER, leaving
  // two free order-3 buddies. buddy.coalesced.
  buddy_skip_merge,
  // slub.cpp Slub::free_object(), the do_slab_free() fast path: for objects
  // with the free pointer mid-object it is stored one word past s->offset,
  // so the slot SLUB reads keeps the object's old bytes. slab.freelist at the
  // free (slab.counts in a later sweep).
  slub_freelist_off_by_one,
  // vmalloc.cpp Vmalloc::get_vm_area() (__get_vm_area_node()): the guard
  // page is not added; areas touch and the vm_struct's "guard" is the
  // area's last mapped page. vmalloc.guard.
  vmalloc_no_guard,
  // vmalloc.cpp unmap_vm_area() (remove_vm_area() of vfree/vunmap/iounmap):
  // the guard page is subtracted twice, so the area's last PTE stays mapped
  // on a page being freed. pgtable.free_page_mapped and vmalloc.guard.
  vfree_leaves_pte,
  // slub.cpp Slub::free_debug_processing(): init_object() on free re-poisons
  // but leaves the right red zone at SLUB_RED_ACTIVE (SLAB_RED_ZONE caches).
  // slab.rearm at the free (sweeps alone see only SLUB's misuse report).
  redzone_not_rearmed,
  // page_alloc.cpp __alloc_pages_slowpath(), gfp_to_alloc_flags(): every
  // allocation that cannot sleep gets ALLOC_HARDER, not only __GFP_ATOMIC
  // ones, so GFP_NOWAIT takes pages below the min watermark (and from the
  // highatomic reserve). buddy.watermark at the allocation (incremental only:
  // a sweep cannot see what the zone held when a past check passed).
  watermark_nowait_harder,
  // page_alloc.cpp rmqueue_pcplist(): a refill of a high-order pcp list adds
  // the number of blocks rmqueue_bulk() took to pcp->count, not the pages,
  // as when only order-0 pages sat on pcp lists. buddy.pcp (incremental once
  // the count goes negative or disagrees with empty lists; sweeps always).
  pcp_refill_count_blocks,
  // mempool.cpp Mempools::mempool_free(): the reserve is refilled only while
  // curr_nr + 1 < min_nr, so once an element was lent the pool stays one
  // short and the next caller under pressure finds no reserve. slab.mempool
  // at the free (incremental and sweeps).
  mempool_free_skips_refill,
  // slab_classic.cpp cache_flusharray(): one object fewer than batchcount is
  // handed to the shared array (or free_block()) while avail drops by
  // batchcount, so an object leaves the per-CPU array for nowhere. slab.counts
  // ("neither on its freelist nor cached") in a sweep.
  slab_flusharray_drops_object,
  // slob.cpp slob_free(): a block freed just below the page's first free
  // block adds that block's units to sp->units again when it merges with
  // it, so the page claims more free units than its free list holds (and
  // than it has). slab.pages and slab.counts in a sweep.
  slob_units_double_count,
  // slob.cpp SlobAllocator::slob_alloc(): __GFP_ZERO clears the block but
  // its last word, so a kzalloc() that reuses a freed block returns 8 bytes
  // of the old object. No invariant sees it (the bytes are the caller's);
  // a reference model of the contents does (`oracle: on`: oracle.contents)
  // and so does comparing SLOB with SLUB and SLAB (`diff: slab`:
  // diff.contents), which it is planted for (tests/test_differential.cpp),
  // not for the fuzzers.
  slob_zero_short,
};
inline constexpr int kNrPlantedDefects = 12;

const char* planted_defect_name(PlantedDefect d);
std::optional<PlantedDefect> parse_planted_defect(std::string_view name);

#ifdef MMFUZZ_PLANTED_DEFECTS
inline constexpr bool kPlantedDefects = true;
#else
inline constexpr bool kPlantedDefects = false;
#endif

}  // namespace mmfuzz::mm
