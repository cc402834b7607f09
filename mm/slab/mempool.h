// mempool (mm/mempool.c, 6.1): a reserve of preallocated elements in front of
// a slab cache, kmalloc or the page allocator. Pools are named by id and
// elements by their kernel virtual address (page pools: the linear-map
// address of the first page).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mm/observer.h"
#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"
#include "mm/types.h"

namespace mmfuzz::mm {

class Mm;

using mempool_id = std::uint32_t;  // 0 is NULL

// The kernel's helper pairs: mempool_alloc_slab/mempool_free_slab,
// mempool_kmalloc/mempool_kfree, mempool_alloc_pages/mempool_free_pages.
enum class MempoolKind { slab, kmalloc, pages };
const char* mempool_kind_name(MempoolKind k);

// sizeof(mempool_t) on arm64 6.1 without lockdep: lock, min_nr, curr_nr,
// elements, pool_data, alloc, free, wait (a wait_queue_head_t).
inline constexpr std::uint64_t kSizeofMempool = 72;

// A caller asleep in mempool_alloc() on pool->wait.
struct MempoolWaiter {
  std::uint64_t ticket = 0;
  gfp_t gfp = 0;  // the caller's mask with __GFP_NOMEMALLOC|__GFP_NORETRY|__GFP_NOWARN
};

struct mempool_t {
  mempool_id id = 0;
  MempoolKind kind = MempoolKind::slab;
  cache_id cache = 0;      // slab: the kmem_cache (pool_data)
  std::uint64_t size = 0;  // kmalloc: the element size (pool_data)
  unsigned order = 0;      // pages: the page order (pool_data)
  int min_nr = 0;
  // The reserve, elements[0..curr_nr): add_element() appends and
  // remove_element() takes the last one (LIFO).
  std::vector<vaddr_t> elements;
  std::deque<MempoolWaiter> waiters;  // pool->wait, oldest first
  bool destroyed = false;
  // The kernel's own allocations for the pool (0 without a slab layer):
  // the mempool_t (kzalloc) and the elements array (kmalloc_array).
  vaddr_t self_obj = 0;
  vaddr_t elements_obj = 0;
  // The model's ledger for the checkers (slab.mempool); the kernel keeps
  // neither. nr_out: elements callers hold (mempool_alloc() handed them out,
  // mempool_free() has not taken them back). shortfall: elements the pool
  // is short of min_nr for reasons of its own (a grown pool the allocator
  // could not fill, reserve elements dropped as freed behind its back).
  // mempool_free() refills before it frees, so a correct pool keeps
  // curr_nr + nr_out + shortfall >= min_nr, and curr_nr <= min_nr.
  std::int64_t nr_out = 0;
  std::int64_t shortfall = 0;

  int curr_nr() const { return static_cast<int>(elements.size()); }
};

// A mempool_alloc() that would sleep in the kernel. It completes when a later
// mempool_free() refills the reserve: that element goes to the oldest waiter
// (FIFO by ticket) and the completed wait is queued for take_completed().
struct MempoolWait {
  std::uint64_t ticket = 0;
  mempool_id pool = 0;
  vaddr_t element = 0;  // set when the wait completes
};

class Mempools {
 public:
  explicit Mempools(Mm& mm);
  Mempools(const Mempools&) = delete;
  Mempools& operator=(const Mempools&) = delete;

  // mempool_create_node(): 0 (NULL) if the pool or its reserve cannot be
  // allocated; whatever was preallocated is freed again.
  mempool_id mempool_create(int min_nr, MempoolKind kind, cache_id cache, std::uint64_t size,
                            unsigned order, gfp_t gfp = GFP_KERNEL);
  mempool_id mempool_create_slab_pool(int min_nr, cache_id cache) {
    return mempool_create(min_nr, MempoolKind::slab, cache, 0, 0);
  }
  mempool_id mempool_create_kmalloc_pool(int min_nr, std::uint64_t size) {
    return mempool_create(min_nr, MempoolKind::kmalloc, 0, size, 0);
  }
  mempool_id mempool_create_page_pool(int min_nr, unsigned order) {
    return mempool_create(min_nr, MempoolKind::pages, 0, 0, order);
  }
  // An element; or 0 (the allocator failed, the reserve is empty and the
  // caller cannot sleep); or 0 with *wait filled in when the kernel would
  // sleep (see MempoolWait). *wait is reset (ticket 0) in the other cases.
  vaddr_t mempool_alloc(mempool_id pool, gfp_t gfp, MempoolWait* wait = nullptr);
  void mempool_free(mempool_id pool, vaddr_t element);
  // 0, or -ENOMEM when the larger elements array cannot be allocated, or
  // -EINVAL after a misuse report (BUG_ON(new_min_nr <= 0), no live pool).
  int mempool_resize(mempool_id pool, int new_min_nr);
  void mempool_destroy(mempool_id pool);

  const mempool_t* pool(mempool_id id) const {
    return id && id <= pools_.size() ? pools_[id - 1].get() : nullptr;
  }
  // Waits that completed since the last call, in completion order.
  std::vector<MempoolWait> take_completed();
  // Snapshots (mm/snapshot.cpp): copies `snap`'s state; same configuration.
  void restore_from(const Mempools& snap);
  std::size_t size() const { return pools_.size(); }  // pools ever created (ids 1..size())

 private:
  mempool_t* live_pool(mempool_id id, const char* api);
  vaddr_t pool_alloc(const mempool_t& p, gfp_t gfp);    // pool->alloc()
  void pool_free(const mempool_t& p, vaddr_t element);  // pool->free()
  void add_element(mempool_t& p, vaddr_t element) { p.elements.push_back(element); }
  vaddr_t remove_element(mempool_t& p, const char* api);
  // What KASAN would say about handing `element` to the pool (poisoning it):
  // nothing for a live allocation start, else the misuse.
  std::optional<MisuseKind> bad_element(const mempool_t& p, vaddr_t element,
                                        std::string* why) const;
  void complete(mempool_t& p, vaddr_t element);
  void serve_waiters(mempool_t& p, const char* api);
  void free_reserve(mempool_t& p, int keep, const char* api);
  void report(MisuseKind kind, const char* api, std::string detail, const mempool_t* p = nullptr,
              vaddr_t addr = 0);

  friend class MempoolCorruptor;
  Mm& mm_;
  std::vector<std::unique_ptr<mempool_t>> pools_;
  std::vector<MempoolWait> completed_;
  std::uint64_t next_ticket_ = 1;
};

}  // namespace mmfuzz::mm
