// The narrow interface through which the model tells the outside world what
// it did. Event names are the kernel's tracepoint names. Checkers, the
// executor and trace writers attach here; the model knows nothing of them.
#pragma once

#include <cstdint>
#include <string>

#include "mm/types.h"

namespace mmfuzz::mm {

// Misuse of an API by its caller (a Program), reported the way the kernel's
// own debug checks (bad_page, VM_BUG_ON, KASAN, SLUB debug) would. The model
// refuses the operation and stays consistent.
enum class MisuseKind {
  page_double_free,         // freeing pages that are already free (buddy or pcp)
  page_wrong_order,         // freeing with an order other than the allocation's
  page_free_tail,           // freeing a page inside an allocation that is not its head
  page_free_reserved,       // freeing a PG_reserved page (memblock, kernel image)
  page_bad_pfn,             // a pfn or address that is no page of this machine
  page_refcount_underflow,  // put_page() on a page whose count is already zero
  page_bad_state,           // flags that must be clear at free time are set
  page_bad_gfp,             // contradictory zone modifiers or mobility bits
  page_bad_order,           // order >= MAX_ORDER
  page_split_compound,      // split_page() of a compound page
  page_free_kmalloc,        // freeing a large kmalloc's pages with the page allocator, not kfree()
  // slab layer
  slab_double_free,      // freeing an object that is already free
  slab_invalid_free,     // freeing something that is not an object start
  slab_wrong_cache,      // kmem_cache_free() with another cache than the object's
  slab_bad_cache,        // a cache id that is no cache (or a boot cache to destroy)
  slab_cache_destroyed,  // use of a cache after kmem_cache_destroy()
  slab_destroy_busy,     // kmem_cache_destroy() while objects remain
  slab_bad_create,       // kmem_cache_create() with impossible arguments
  slab_redzone,          // debug: a red zone overwritten
  slab_poison,           // debug: poison of a free object overwritten (use after free)
  slab_padding,          // debug: object or slab padding overwritten
  slab_freeptr,          // a free pointer that points nowhere valid (corrupted freelist)
  kasan_out_of_bounds,   // access beyond the requested object (slab-out-of-bounds)
  kasan_use_after_free,  // access to a freed object or page
  kasan_wild_access,     // access to no object at all (wild-memory-access, null-ptr-deref)
  // kernel VM (vmalloc, ioremap, kmap, page tables)
  vmalloc_bad_free,         // vfree() of an address that is not the start of a vmalloc area
  vmalloc_double_free,      // vfree()/vunmap() of an area that was already freed
  vmalloc_vunmap_vmalloc,   // vunmap() of a vmalloc()ed area (its pages would leak)
  vmalloc_sleep_in_atomic,  // vmalloc family (might_sleep) in atomic context
  vmalloc_bad_vmap,         // vmap() of a page that is not allocated
  ioremap_ram,              // ioremap() of RAM (arm64 refuses)
  ioremap_no_device,        // ioremap() of a physical range no device claims
  ioremap_bad_iounmap,      // iounmap() of an address that is not an ioremap area
  ioremap_bad_access,       // io accessor on an address that is no device mapping, or unaligned
  kmap_unbalanced,          // kunmap*() without a matching kmap*()
  kmap_nesting,             // kunmap_local/atomic out of LIFO order, or kmap stack overflow
  vm_fault,                 // access to an unmapped or read-only kernel address (oops)
  // mm/util.c
  kvmalloc_too_large,  // kvmalloc() of more than INT_MAX bytes without __GFP_NOWARN
};
inline constexpr int kNrMisuseKinds = static_cast<int>(MisuseKind::kvmalloc_too_large) + 1;
inline constexpr MisuseKind kFirstVmMisuse = MisuseKind::vmalloc_bad_free;
const char* misuse_id(MisuseKind k);  // "page_alloc.double_free", ...

struct Misuse {
  MisuseKind kind = MisuseKind::page_bad_state;
  pfn_t pfn = NO_PAGE;  // the page the caller named
  unsigned order = 0;   // the order the caller passed
  vaddr_t addr = 0;     // the address the caller passed, if any
  std::string api;      // "__free_pages", "free_pages", ...
  std::string detail;   // one line, kernel style ("page dumped because: ...")
  // Slab objects and client accesses.
  std::string what;   // KASAN bug type ("slab-out-of-bounds") or SLUB's "Right Redzone overwritten"
  std::string cache;  // the object's cache
  vaddr_t object = 0;  // the object start
  std::uint64_t object_size = 0;
  std::uint64_t access_len = 0;
  bool is_write = false;
};

struct AllocFailure {
  unsigned order = 0;
  gfp_t gfp = 0;
  int nid = NUMA_NO_NODE;
  bool nofail = false;  // __GFP_NOFAIL: the kernel would loop forever here
  std::uint32_t op_seq = 0;
};
// warn_alloc()'s line: "mmfuzz: page allocation failure: order:10,
// mode:0xcc0(GFP_KERNEL), nodemask=(null)".
std::string format_alloc_failure(const AllocFailure& f);

// get_page_from_freelist() handed out a block: what the zone's counters were
// when its watermark check (zone_watermark_fast()) let the allocation
// through, before rmqueue() took the pages. The checkers judge it against
// the watermark the gfp mask entitles the caller to.
struct WatermarkPass {
  pfn_t pfn = NO_PAGE;
  unsigned order = 0;
  gfp_t gfp = 0;
  unsigned alloc_flags = 0;  // what the allocator used (ALLOC_*)
  int nid = 0, zone_idx = 0;
  long free_pages = 0;      // NR_FREE_PAGES
  long free_cma_pages = 0;  // NR_FREE_CMA_PAGES
  std::uint64_t nr_reserved_highatomic = 0;
  std::uint64_t watermark_boost = 0;
};

class MmObserver {
 public:
  virtual ~MmObserver() = default;
  // trace events (include/trace/events/kmem.h)
  virtual void mm_page_alloc(pfn_t, unsigned /*order*/, gfp_t, int /*migratetype*/) {}
  virtual void mm_page_free(pfn_t, unsigned /*order*/) {}
  virtual void mm_page_alloc_zone_locked(pfn_t, unsigned /*order*/, int /*mt*/,
                                         bool /*percpu_refill*/) {}
  virtual void mm_page_pcpu_drain(pfn_t, unsigned /*order*/, int /*mt*/) {}
  virtual void mm_page_alloc_extfrag(pfn_t, unsigned /*alloc_order*/, unsigned /*fallback_order*/,
                                     int /*alloc_mt*/, int /*fallback_mt*/,
                                     bool /*change_ownership*/) {}
  // A successful allocation and the zone state its watermark check saw.
  virtual void zone_watermark_pass(const WatermarkPass&) {}
  // warn_alloc(): "page allocation failure: order:N, mode:..."
  virtual void page_alloc_failure(const AllocFailure&) {}
  // include/trace/events/kmem.h (6.1): the slab layer's events.
  virtual void kmalloc(vaddr_t /*ptr*/, std::uint64_t /*bytes_req*/, std::uint64_t /*bytes_alloc*/,
                       gfp_t, int /*node*/, bool /*accounted*/) {}
  virtual void kmem_cache_alloc(vaddr_t /*ptr*/, std::uint64_t /*bytes_req*/,
                                std::uint64_t /*bytes_alloc*/, gfp_t, int /*node*/,
                                bool /*accounted*/) {}
  virtual void kfree(vaddr_t /*ptr*/) {}
  virtual void kmem_cache_free(vaddr_t /*ptr*/, const std::string& /*cache name*/) {}
  // include/trace/events/vmalloc.h (6.3+): the vmap_area life cycle.
  virtual void alloc_vmap_area(vaddr_t /*addr*/, std::uint64_t /*size*/, std::uint64_t /*align*/,
                               vaddr_t /*vstart*/, vaddr_t /*vend*/, bool /*failed*/) {}
  virtual void free_vmap_area_noflush(vaddr_t /*va_start*/, std::uint64_t /*nr_lazy*/,
                                      std::uint64_t /*nr_lazy_max*/) {}
  virtual void purge_vmap_area_lazy(vaddr_t /*start*/, vaddr_t /*end*/, std::uint64_t /*npurged*/) {
  }
  // A vmalloc/vmap/ioremap area was mapped or unmapped (incremental checks).
  virtual void vm_area_changed(vaddr_t /*start*/, vaddr_t /*end*/) {}
  virtual void misuse(const Misuse&) {}
  // Pages whose allocator state changed without one of the events above
  // (pageblock moves, merges during boot). Lets incremental checks stay local.
  virtual void pages_touched(pfn_t, std::uint64_t /*nr_pages*/) {}
};

}  // namespace mmfuzz::mm
