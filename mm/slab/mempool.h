// mempool (mm/mempool.c): a reserve of preallocated elements in front of a
// slab cache, kmalloc or the page allocator. Pools are named by id.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "mm/slab/slab.h"
#include "mm/types.h"

namespace mmfuzz::mm {

class Mm;

using mempool_id = std::uint32_t;  // 0 is NULL

// The kernel's helper pairs (mempool_alloc_slab/free_slab, kmalloc, pages).
enum class MempoolKind { slab, kmalloc, pages };

struct mempool_t {
  mempool_id id = 0;
  MempoolKind kind = MempoolKind::slab;
  cache_id cache = 0;      // slab: the kmem_cache (pool_data)
  std::uint64_t size = 0;  // kmalloc: the element size
  unsigned order = 0;      // pages: the page order
  int min_nr = 0;
  std::vector<vaddr_t> elements;      // the reserve: curr_nr = elements.size()
  std::deque<std::uint64_t> waiters;  // tickets of mempool_alloc() calls that would sleep
  bool destroyed = false;
};

// A mempool_alloc() that would sleep in the kernel: it completes when a later
// mempool_free() refills the pool, handing that element to the oldest waiter.
struct MempoolWait {
  std::uint64_t ticket = 0;
  mempool_id pool = 0;
  vaddr_t element = 0;  // set when the wait completes
};

class Mempools {
 public:
  explicit Mempools(Mm& mm);
  // mempool_create(): 0 if the reserve cannot be filled (or bad arguments).
  mempool_id mempool_create(int min_nr, MempoolKind kind, cache_id cache, std::uint64_t size,
                            unsigned order,
                            gfp_t gfp = 0x400u | 0x800u | 0x40u | 0x80u /* GFP_KERNEL */);
  mempool_id mempool_create_slab_pool(int min_nr, cache_id cache) {
    return mempool_create(min_nr, MempoolKind::slab, cache, 0, 0);
  }
  mempool_id mempool_create_kmalloc_pool(int min_nr, std::uint64_t size) {
    return mempool_create(min_nr, MempoolKind::kmalloc, 0, size, 0);
  }
  mempool_id mempool_create_page_pool(int min_nr, unsigned order) {
    return mempool_create(min_nr, MempoolKind::pages, 0, 0, order);
  }
  // An element, or 0 (atomic context, empty pool), or 0 with *wait filled in
  // when the kernel would sleep (see MempoolWait).
  vaddr_t mempool_alloc(mempool_id pool, gfp_t gfp, MempoolWait* wait = nullptr);
  void mempool_free(mempool_id pool, vaddr_t element);
  int mempool_resize(mempool_id pool, int new_min_nr);
  void mempool_destroy(mempool_id pool);

  const mempool_t* pool(mempool_id id) const {
    return id && id <= pools_.size() ? pools_[id - 1].get() : nullptr;
  }
  // Waits that completed since the last call (in order).
  std::vector<MempoolWait> take_completed();
  std::size_t size() const { return pools_.size(); }

 private:
  Mm& mm_;
  std::vector<std::unique_ptr<mempool_t>> pools_;
  std::vector<MempoolWait> completed_;
  std::uint64_t next_ticket_ = 1;
};

}  // namespace mmfuzz::mm
