// Post-conditions on what each op returned, from reference models of what a
// caller may rely on ("oracle.*", docs/properties.md). The invariants check
// the model's state against itself; these check the ops' results against
// the kernel's contract, knowing nothing of the model's internals beyond
// what a caller can see (an address, a pfn, a read's bytes, a pool's
// element count, a page-table walk):
//   oracle.overlap   live allocations (objects, pool elements, pages, areas) never share a byte
//   oracle.contents  a read returns the bytes last written (or zeroed) since the allocation
//   oracle.ksize     kmalloc and kmem_cache_alloc give at least the bytes asked for
//   oracle.kmalloc_size  kmalloc's bytes_alloc is the size class kmalloc_index() picks
//   oracle.kmalloc_type  kmalloc is served by the cache type its gfp picks (kmalloc_type():
//                    dma-kmalloc-, kmalloc-rcl-, kmalloc-cg- or kmalloc-; the free's name=)
//   oracle.zone      what /proc/zoneinfo shows follows 6.1's formulas: the min, low and
//                    high watermarks from min_free_kbytes, the lowmem reserves (protection)
//                    from lowmem_reserve_ratio, pcp high and batch from the zone's size
//   oracle.page      an allocated page is not free (PageBuddy) and holds a reference
//   oracle.mempool   the reserve is lent only when empty-handed, refilled below min_nr,
//                    and sleepers are served in the order they slept
//   oracle.vmap      an area maps every page (vmap: its pages, ioremap: its range),
//                    its guard page is unmapped, and a freed area is unmapped
// Enabled by ExecOptions::oracle (the Program header's `oracle: on`): the
// properties' Programs carry it, so their failures replay and shrink alike.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mm/slab/slab.h"
#include "program/program.h"

namespace mmfuzz::prog {

class Executor;

// The bytes_alloc kmalloc(size) reports on a 6.1 kernel (kmalloc_index()'s
// size class, SLOB's size header, whole pages for large kmalloc).
std::uint64_t kmalloc_size_class(mm::SlabVariant v, std::uint64_t size, unsigned kmalloc_min,
                                 unsigned page_shift, unsigned max_order);

// The kmalloc cache type 6.1's kmalloc_type() picks for a gfp mask, with
// CONFIG_ZONE_DMA and CONFIG_MEMCG_KMEM as Debian's arm64 kernel has them:
// "dma" (__GFP_DMA), else "rcl" (__GFP_RECLAIMABLE), else "cg"
// (__GFP_ACCOUNT), else "normal". The oracle and replay's fidelity measure
// hold the model to it.
const char* kernel_kmalloc_type(mm::gfp_t gfp);

class Oracle {
 public:
  explicit Oracle(Executor& ex);
  ~Oracle();
  Oracle(const Oracle&) = delete;
  Oracle& operator=(const Oracle&) = delete;

  // Around each op the Executor runs (before(): what the op may change).
  void before(const Op& op);
  void after(const Op& op);

 private:
  struct Write {
    std::uint64_t off, len;
    std::uint64_t op;  // the op that wrote (or zeroed) them
    std::uint8_t byte;
  };
  struct Live {                        // what the oracle holds for one live handle
    std::uint64_t start = 0, end = 0;  // its bytes, as virtual addresses
    bool device = false;               // ioremap: reads are the device's
    std::vector<Write> writes;         // newest last
  };
  using Key = std::uint64_t;  // space and handle
  static Key key(Space s, Handle h) { return (static_cast<Key>(s) << 62) | h; }

  void touched(const Op& op, std::vector<std::pair<Space, Handle>>& out) const;
  void reconcile(const Op& op, Space s, Handle h);
  bool current(Space s, Handle h, std::uint64_t& start, std::uint64_t& end) const;
  void add(const Op& op, Space s, Handle h, std::uint64_t start, std::uint64_t end);
  void remove(Key k);
  void on_alloc(const Op& op, Space s, Handle h, Live& l);
  void check_access(const Op& op);
  void check_kmalloc(const Op& op);
  void check_kmalloc_type(const Op& op);
  void check_zones(const Op& op);
  void check_cache_alloc(const Op& op);
  void check_page(const Op& op, Handle h);
  void check_area_mapped(const Op& op, Handle h);
  void check_area_unmapped(const Op& op, std::uint64_t start, std::uint64_t end);
  void check_mempool(const Op& op);
  void fail(const Op& op, const char* id, const char* subsystem, std::string title,
            std::vector<std::string> details = {}, std::uint64_t addr = 0);

  Executor& ex_;
  std::map<std::uint64_t, Key> by_start_;  // live ranges, by start address
  std::unordered_map<Key, Live> live_;
  std::unordered_map<Handle, std::uint64_t> exact_size_;         // alloc_pages_exact handles
  std::unordered_map<std::uint32_t, std::uint64_t> cache_size_;  // object size asked at create
  // Before the op: the pool's reserve, its sleepers, a split's old order.
  int pool_curr_ = 0, pool_min_ = 0;
  std::uint32_t pool_id_ = 0;
  bool pool_element_ = false;  // mempool_free: the object is an element of that pool
  std::vector<std::uint64_t> sleeper_tickets_;
  unsigned split_order_ = 0;
  bool zones_checked_ = false;  // at the first op: boot set them
  // Sleepers per pool, in the order they slept: (ticket, handle).
  std::map<std::uint32_t, std::vector<std::pair<std::uint64_t, Handle>>> queues_;
};

}  // namespace mmfuzz::prog
