// SLOB (mm/slob.c of 6.1): a K&R-style first-fit heap over order-0 pages
// with three partial-page lists, free blocks encoded in simulated RAM as the
// kernel encodes them, and kmalloc with a size header in front of small
// objects. The class is public so the invariant checker and the tests can
// read the model's own shadow of the heap.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "mm/slab/slab.h"

namespace mmfuzz::mm {

namespace slob {

// SLOB_BREAK1 and SLOB_BREAK2: the size limits of the small and medium lists.
inline constexpr unsigned SLOB_BREAK1 = 256;
inline constexpr unsigned SLOB_BREAK2 = 1024;
// sizeof(struct slob_rcu): an rcu_head (two pointers) and an int, padded.
inline constexpr unsigned SLOB_RCU_SIZE = 24;
inline constexpr unsigned SLOB_RCU_SIZE_OFFSET = 16;  // offsetof(struct slob_rcu, size)
// arch_slab_minalign() on arm64 without KASAN_HW_TAGS: __alignof__(long long).
inline constexpr unsigned ARCH_SLAB_MINALIGN = 8;

enum SlobList : int { kSmall, kMedium, kLarge, kNrLists, kNoList = -1 };
const char* list_name(int l);  // "free_slob_small", ...

// One block the model knows about: a live object (or one waiting for its RCU
// grace period) or a recently freed one.
struct Block {
  vaddr_t start = 0;            // first byte of the block (the kmalloc size header)
  vaddr_t object = 0;           // what the caller got
  std::uint64_t bytes = 0;      // SLOB_UNITS(size) * SLOB_UNIT, or PAGE_SIZE << order
  std::uint32_t size = 0;       // kmalloc: the size in the header; caches: c->size
  std::uint32_t requested = 0;  // KASAN: bytes accessible from object
  std::uint32_t object_size = 0;
  cache_id cache = 0;  // the kmalloc pseudo cache for kmalloc blocks
  bool kmalloc = false;
  bool rcu_pending = false;  // kmem_cache_free()d, kmem_rcu_free() not run yet
  std::uint16_t alloc_cpu = 0, free_cpu = 0;
  std::uint32_t alloc_seq = 0, alloc_site = 0, free_seq = 0, free_site = 0;
  vaddr_t end() const { return start + bytes; }
};

// The model's shadow of one SLOB page, or of the pages of one page-backed
// object (a kmem_cache object of PAGE_SIZE or more, or a large kmalloc).
struct PageShadow {
  pfn_t head = NO_PAGE;
  unsigned order = 0;
  bool slob_page = false;    // a SLOB heap page (PG_slab) rather than a page-backed object
  int list = kNoList;        // the list the page went on when it last became partially free
  std::vector<Block> live;   // sorted by start, non-overlapping
  std::vector<Block> freed;  // recently freed blocks, oldest first, bounded
};

// A freed block whose page went back to the page allocator.
struct Orphan {
  pfn_t head = NO_PAGE;
  unsigned order = 0;
  Block block;
};

struct RcuPending {
  pfn_t head = NO_PAGE;
  vaddr_t start = 0;
};

}  // namespace slob

class SlobAllocator final : public SlabAllocator {
 public:
  // Records of freed blocks kept per page and for released pages.
  static constexpr std::size_t kFreedPerPage = 32;
  static constexpr std::size_t kMaxOrphans = 256;
  // Callbacks waiting for a grace period before the oldest runs at once
  // (the model's stand-in for RCU forcing a grace period under load).
  static constexpr std::size_t kMaxRcuPending = 1024;

  explicit SlobAllocator(Slab& sl);
  const char* name() const override { return "slob"; }
  bool create(kmem_cache& s) override;
  vaddr_t alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) override;
  void free(kmem_cache& s, vaddr_t obj) override;
  int shrink(kmem_cache& s) override;
  bool shutdown(kmem_cache& s) override;
  void release(kmem_cache& s) override;
  SlabInfo slabinfo(const kmem_cache& s) const override;
  unsigned ksize(const kmem_cache& s) const override;
  std::optional<ObjectRef> find_object(vaddr_t addr) const override;
  void restore_from(const SlabAllocator& snap) override;
  void tick() override;  // an RCU grace period: the pending kmem_rcu_free() calls run
  void for_each_allocated(const std::function<void(const LiveObject&)>& f) const override;
  bool own_kmalloc() const override { return true; }
  // 6.1 traces the size header too (size + minalign), whole pages for large ones.
  std::uint64_t kmalloc_bytes_alloc(std::uint64_t size) const override {
    if (size < page_size_ - minalign_) return size + minalign_;
    return page_size_ << fls64((size - 1) / page_size_);
  }
  vaddr_t kmalloc(std::uint64_t size, gfp_t gfp, int node) override;
  void kfree(vaddr_t obj) override;

  // ---- geometry ----
  unsigned unit() const { return unit_; }                  // SLOB_UNIT: sizeof(slobidx_t)
  unsigned units_per_page() const { return page_units_; }  // SLOB_UNITS(PAGE_SIZE)
  std::uint64_t units(std::uint64_t bytes) const { return (bytes + unit_ - 1) / unit_; }
  unsigned minalign() const { return minalign_; }  // kmalloc's header and alignment
  // Objects of s an empty page holds, placed first fit with s's alignment.
  unsigned objects_per_page(const kmem_cache& s) const;

  // ---- state, for the checker, views and tests ----
  page_list slob_list(int l) const { return lists_[static_cast<std::size_t>(l)]; }
  cache_id kmalloc_cache() const { return kmalloc_cache_; }
  const std::map<pfn_t, slob::PageShadow>& pages() const { return pages_; }
  // The shadow covering pfn (its head's), or nullptr.
  const slob::PageShadow* shadow_of(pfn_t pfn) const;
  // Tests corrupt the shadow through this.
  slob::PageShadow* shadow_of(pfn_t pfn) {
    return const_cast<slob::PageShadow*>(std::as_const(*this).shadow_of(pfn));
  }
  const std::deque<slob::Orphan>& orphans() const { return orphans_; }
  const std::deque<slob::RcuPending>& rcu_pending() const { return rcu_; }
  // The live block containing addr, with its history, or nullptr.
  const slob::Block* live_block(vaddr_t addr) const;

  // Free blocks as simulated RAM holds them (slob_units(), slob_next()).
  std::int32_t read_idx(vaddr_t va) const;
  std::int32_t block_units(vaddr_t b) const {
    const std::int32_t u = read_idx(b);
    return u > 0 ? u : 1;
  }
  vaddr_t block_next(vaddr_t b) const;
  vaddr_t page_base(vaddr_t va) const { return va & ~(page_size_ - 1); }
  // The free blocks a page must have: the gaps between its live blocks, as
  // (unit offset, units). SLOB merges neighbours, so they are maximal.
  std::vector<std::pair<unsigned, unsigned>> expected_free(const slob::PageShadow& ps) const;

 private:
  page& pg(pfn_t pfn);
  vaddr_t addr(pfn_t pfn) const;

  // simulated RAM
  void write_idx(vaddr_t va, std::int32_t v);
  void set_slob(vaddr_t s, std::int32_t size, vaddr_t next);
  bool slob_last(vaddr_t s) const { return (block_next(s) & (page_size_ - 1)) == 0; }

  // the heap
  int list_for(std::uint64_t size) const {
    return size < slob::SLOB_BREAK1 ? slob::kSmall
                                    : (size < slob::SLOB_BREAK2 ? slob::kMedium : slob::kLarge);
  }
  void set_slob_page_free(pfn_t pfn, int list);
  void clear_slob_page_free(pfn_t pfn);
  void list_rotate_to_front(pfn_t pfn, page_list head);
  pfn_t slob_new_pages(gfp_t gfp, unsigned order, int node, bool slob_page);
  void slob_free_pages(pfn_t pfn, unsigned order);
  vaddr_t slob_page_alloc(pfn_t pfn, std::uint64_t size, unsigned align, unsigned align_offset,
                          bool* removed);
  vaddr_t slob_alloc(std::uint64_t size, gfp_t gfp, unsigned align, int node,
                     unsigned align_offset);
  void slob_free(vaddr_t block, std::uint64_t size);
  // The RAM free list of a page against the shadow; a client's write into
  // free memory is reported (slab.freeptr) and the list rewritten.
  void verify_free_list(pfn_t pfn, const char* api);

  // the shadow
  slob::Block& add_live(pfn_t head, slob::Block b);
  void record_freed(slob::PageShadow& ps, slob::Block b);
  void forget_orphans(pfn_t head, unsigned order);
  slob::Block make_block(vaddr_t start, vaddr_t object, std::uint64_t bytes, std::uint32_t size,
                         std::uint32_t requested, std::uint32_t object_size, cache_id cache,
                         bool kmalloc) const;
  // Frees a live block of the shadow (the object was validated).
  void free_block(pfn_t head, vaddr_t start);
  void run_rcu(std::size_t n);
  std::optional<ObjectRef> ref_of(pfn_t head, const slob::Block& b, bool allocated) const;
  const slob::Orphan* find_orphan(vaddr_t addr) const;

  Mm& mm_;
  std::uint64_t page_size_;
  unsigned unit_, page_units_, minalign_;
  page_list lists_[slob::kNrLists];
  cache_id kmalloc_cache_ = 0;
  std::map<pfn_t, slob::PageShadow> pages_;
  std::deque<slob::Orphan> orphans_;
  std::deque<slob::RcuPending> rcu_;
  // The block find_object() last found, for ksize() (see there).
  mutable pfn_t last_head_ = NO_PAGE;
  mutable vaddr_t last_start_ = 0;
};

// The SLOB allocator of a slab layer, or nullptr when another one runs.
const SlobAllocator* slob_allocator(const Slab& sl);
SlobAllocator* slob_allocator(Slab& sl);

}  // namespace mmfuzz::mm
