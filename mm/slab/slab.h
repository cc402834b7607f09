// The slab layer: kmem_cache, kmalloc and client accesses, shared by the
// three allocators (SLUB, SLAB, SLOB) behind one API, as mm/slab_common.c
// shares them in the kernel. Caches are named by id and objects by their
// simulated kernel virtual address: never host pointers.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mm/observer.h"
#include "mm/page_alloc/gfp.h"
#include "mm/phys/page_list.h"
#include "mm/profile.h"
#include "mm/reciprocal_div.h"
#include "mm/types.h"

namespace mmfuzz::mm {

class Mm;

// ---- flags (include/linux/slab.h, 6.1) ----
using slab_flags_t = std::uint32_t;
inline constexpr slab_flags_t SLAB_CONSISTENCY_CHECKS = 0x00000100u;
inline constexpr slab_flags_t SLAB_RED_ZONE = 0x00000400u;
inline constexpr slab_flags_t SLAB_POISON = 0x00000800u;
inline constexpr slab_flags_t SLAB_KMALLOC = 0x00001000u;
inline constexpr slab_flags_t SLAB_HWCACHE_ALIGN = 0x00002000u;
inline constexpr slab_flags_t SLAB_CACHE_DMA = 0x00004000u;
inline constexpr slab_flags_t SLAB_CACHE_DMA32 = 0x00008000u;
inline constexpr slab_flags_t SLAB_STORE_USER = 0x00010000u;
inline constexpr slab_flags_t SLAB_RECLAIM_ACCOUNT = 0x00020000u;
inline constexpr slab_flags_t SLAB_PANIC = 0x00040000u;
inline constexpr slab_flags_t SLAB_TYPESAFE_BY_RCU = 0x00080000u;
inline constexpr slab_flags_t SLAB_MEM_SPREAD = 0x00100000u;
inline constexpr slab_flags_t SLAB_TRACE = 0x00200000u;
inline constexpr slab_flags_t SLAB_NOLEAKTRACE = 0x00800000u;
inline constexpr slab_flags_t SLAB_FAILSLAB = 0x02000000u;
inline constexpr slab_flags_t SLAB_ACCOUNT = 0x04000000u;
// Internal to SLUB: the object itself is poisoned (POISON and no ctor/RCU).
inline constexpr slab_flags_t __OBJECT_POISON = 0x80000000u;

inline constexpr slab_flags_t SLAB_DEBUG_FLAGS =
    SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_CONSISTENCY_CHECKS | SLAB_TRACE;
// Caches with these flags are never merged (SLAB_NEVER_MERGE).
inline constexpr slab_flags_t SLAB_NEVER_MERGE = SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER |
                                                 SLAB_TRACE | SLAB_TYPESAFE_BY_RCU |
                                                 SLAB_NOLEAKTRACE | SLAB_FAILSLAB;
// Flags that must agree for a merge (SLAB_MERGE_SAME).
inline constexpr slab_flags_t SLAB_MERGE_SAME =
    SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_ACCOUNT;

std::string format_slab_flags(slab_flags_t flags);  // "SLAB_HWCACHE_ALIGN|SLAB_PANIC", "0" for none
std::optional<slab_flags_t> parse_slab_flags(std::string_view text, std::string* error = nullptr);

// ---- poison and red zone bytes (include/linux/poison.h) ----
inline constexpr std::uint8_t POISON_INUSE = 0x5a;  // SLUB padding, SLAB/SLUB fresh slab
inline constexpr std::uint8_t POISON_FREE = 0x6b;
inline constexpr std::uint8_t POISON_END = 0xa5;
inline constexpr std::uint8_t SLUB_RED_INACTIVE = 0xbb;
inline constexpr std::uint8_t SLUB_RED_ACTIVE = 0xcc;
inline constexpr std::uint64_t RED_INACTIVE = 0x09F911029D74E35BULL;  // SLAB's red zone words
inline constexpr std::uint64_t RED_ACTIVE = 0xD84156C5635688C0ULL;

using cache_id = std::uint32_t;  // 0 is NULL
inline constexpr vaddr_t ZERO_SIZE_PTR = 16;
inline constexpr bool ZERO_OR_NULL_PTR(vaddr_t x) {
  return x <= ZERO_SIZE_PTR;
}

// A constructor, as a Program can express one: it fills the object.
struct slab_ctor {
  bool present = false;
  std::uint8_t fill = 0;
};

// ---- kmalloc caches (include/linux/slab.h, 6.1) ----
enum kmalloc_cache_type : int {
  KMALLOC_NORMAL,
  KMALLOC_CGROUP,
  KMALLOC_RECLAIM,
  KMALLOC_DMA,
  NR_KMALLOC_TYPES
};
inline constexpr unsigned KMALLOC_SHIFT_MAX_INDEX = 26;  // array bound (SLAB: shift up to 25)

// ---- per-CPU and per-node state ----
struct kmem_cache_cpu {     // SLUB
  vaddr_t freelist = 0;     // next free object of the cpu slab
  pfn_t slab = NO_PAGE;     // the cpu slab
  pfn_t partial = NO_PAGE;  // first slab of the cpu partial chain
  std::uint64_t tid = 0;
};

struct array_cache {  // SLAB
  unsigned avail = 0, limit = 0, batchcount = 0;
  bool touched = false;
  std::vector<vaddr_t> entry;
};

struct kmem_cache_node {
  // SLUB
  page_list partial = 0;
  std::uint64_t nr_partial = 0;
  page_list full = 0;  // debug caches only
  // SLAB
  page_list slabs_partial = 0, slabs_full = 0, slabs_free = 0;
  std::uint64_t total_slabs = 0, free_slabs = 0, free_objects = 0, free_limit = 0;
  unsigned colour_next = 0;
  bool free_touched = false;          // SLAB: slabs_free was used since the last reap
  std::optional<array_cache> shared;  // copyable: snapshots copy caches
  std::uint64_t next_reap = 0;
  // both
  std::uint64_t nr_slabs = 0;       // SLUB nr_slabs (debug statistics, always kept)
  std::uint64_t total_objects = 0;  // SLUB total_objects
};

struct kmem_cache {
  cache_id id = 0;
  std::string name;
  unsigned object_size = 0;          // what the creator asked for
  unsigned size = 0;                 // the slot: object plus metadata and alignment
  reciprocal_value reciprocal_size;  // of size: obj_to_index() without a divide
  unsigned align = 0;
  slab_flags_t flags = 0;
  slab_ctor ctor;
  int refcount = 1;  // merged aliases hold references
  bool destroyed = false;
  bool kmalloc = false;
  unsigned useroffset = 0, usersize = 0;
  std::vector<std::string> aliases;  // names merged into this cache
  // The kernel's own objects for this cache: its struct kmem_cache (in the
  // kmem_cache cache) and, for SLUB, one kmem_cache_node per node.
  vaddr_t self_obj = 0;
  std::vector<vaddr_t> node_objs;

  // SLUB
  unsigned offset = 0;  // free pointer offset in the object
  unsigned inuse = 0;   // object + red zone: where metadata begins
  unsigned red_left_pad = 0;
  unsigned order = 0, objects = 0;          // oo
  unsigned min_order = 0, min_objects = 0;  // min
  unsigned min_partial = 0;
  unsigned cpu_partial = 0, cpu_partial_slabs = 0;
  std::uint64_t random = 0;          // SLAB_FREELIST_HARDENED key
  std::vector<unsigned> random_seq;  // SLAB_FREELIST_RANDOM order
  gfp_t allocflags = 0;
  std::vector<kmem_cache_cpu> cpu_slab;
  std::vector<kmem_cache_node> node;

  // SLAB
  unsigned num = 0, gfporder = 0, colour = 0, colour_off = 0, freelist_size = 0, obj_offset = 0;
  bool off_slab = false;
  cache_id freelist_cache = 0;
  unsigned batchcount = 0, limit = 0, shared = 0;
  std::vector<array_cache> array;  // per CPU

  bool restore_dirty = true;  // changed since the last snapshot restore (Slab::cache())

  std::string_view display_name() const { return name; }
  bool debug() const { return flags & SLAB_DEBUG_FLAGS; }
};

// What an address is, as KASAN and kfree need to know it.
struct ObjectRef {
  cache_id cache = 0;
  pfn_t slab = NO_PAGE;  // head page of the slab (SLOB: the page)
  vaddr_t object = 0;    // object start (after any left red zone)
  unsigned index = 0;
  unsigned size = 0;  // object_size: the usable object
  bool allocated = false;
  std::uint32_t requested = 0;  // bytes the caller asked for (kmalloc)
};

// Per-object shadow of a slab: allocation state and history (KASAN's and
// SLUB's view of who allocated and freed each object).
struct ObjectTrack {
  std::uint32_t alloc_seq = 0, free_seq = 0;
  std::uint32_t alloc_site = 0, free_site = 0;
  std::uint32_t requested = 0;
  std::uint16_t alloc_cpu = 0, free_cpu = 0;
  bool allocated = false;
};

struct SlabInfo {  // one /proc/slabinfo line
  std::uint64_t active_objs = 0, num_objs = 0;
  unsigned objsize = 0, objperslab = 0, pagesperslab = 0;
  unsigned limit = 0, batchcount = 0, sharedfactor = 0;
  std::uint64_t active_slabs = 0, num_slabs = 0, shared_avail = 0;
};

class Slab;

// One allocator behind the kmem_cache API (mm/slub.c, mm/slab.c, mm/slob.c).
class SlabAllocator {
 public:
  explicit SlabAllocator(Slab& sl) : sl_(sl) {}
  virtual ~SlabAllocator() = default;
  virtual const char* name() const = 0;
  // __kmem_cache_create: compute the layout. False: the cache cannot exist.
  virtual bool create(kmem_cache& s) = 0;
  virtual vaddr_t alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) = 0;
  // The allocator marks the object's shadow (Slab::mark_allocated/freed).
  // free() gets a validated, allocated object of s.
  virtual void free(kmem_cache& s, vaddr_t obj) = 0;
  // free() of an object find_object() already resolved: spares the fast
  // path a second lookup.
  virtual void free_object(kmem_cache& s, const ObjectRef& ref) { free(s, ref.object); }
  virtual int shrink(kmem_cache& s) = 0;
  // __kmem_cache_shutdown: flush; false while objects remain.
  virtual bool shutdown(kmem_cache& s) = 0;
  virtual void release(kmem_cache& s) = 0;
  virtual SlabInfo slabinfo(const kmem_cache& s) const = 0;
  virtual unsigned ksize(const kmem_cache& s) const = 0;
  // The object an address inside a slab page belongs to.
  virtual std::optional<ObjectRef> find_object(vaddr_t addr) const = 0;
  // find_object() of an address known to lie in the slab whose head page is
  // head (the free fast path). False when it is no object.
  virtual bool find_object_in(pfn_t head, vaddr_t addr, ObjectRef* out) const {
    (void)head;
    const auto r = find_object(addr);
    if (r) *out = *r;
    return r.has_value();
  }
  virtual void tick() {}
  // Snapshots: the allocator's own state (SLUB and SLAB keep theirs in the
  // caches and the memmap).
  virtual void restore_from(const SlabAllocator& /*snap*/) {}
  // Where object i of a slab starts (after any left red zone or SLAB's
  // debug word): SLUB's layout by default.
  virtual vaddr_t object_start(const kmem_cache& s, pfn_t head, unsigned i) const;
  // Every object callers hold, with its history (the leak report). The
  // default walks the PG_slab pages and the object shadow.
  struct LiveObject {
    cache_id cache = 0;
    vaddr_t object = 0;
    std::uint32_t requested = 0, alloc_seq = 0, alloc_site = 0;
  };
  virtual void for_each_allocated(const std::function<void(const LiveObject&)>& f) const;
  // kmalloc that does not go through kmalloc caches (SLOB).
  virtual bool own_kmalloc() const { return false; }
  virtual vaddr_t kmalloc(std::uint64_t /*size*/, gfp_t /*gfp*/, int /*node*/) { return 0; }
  // What the kmalloc event of an own kmalloc reports as bytes_alloc.
  virtual std::uint64_t kmalloc_bytes_alloc(std::uint64_t size) const { return size; }
  virtual void kfree(vaddr_t /*obj*/) {}

 protected:
  Slab& sl_;
};

std::unique_ptr<SlabAllocator> make_slub(Slab& sl);
std::unique_ptr<SlabAllocator> make_slab(Slab& sl);
std::unique_ptr<SlabAllocator> make_slob(Slab& sl);
const char* slab_variant_name(SlabVariant v);
std::optional<SlabVariant> parse_slab_variant(std::string_view s);

struct SlabConfig {
  // Off: no slab layer at all (page-allocator-only tests and fuzz targets;
  // the kernel itself cannot do without it).
  bool enabled = true;
  std::optional<SlabVariant> variant;          // default: the profile's
  slab_flags_t debug_flags = 0;                // slub_debug= for every cache
  bool nomerge = false;                        // slab_nomerge
  std::uint64_t random_seed = 0x6d6d66757a7a;  // freelist hardening/randomisation
  // KMALLOC_MIN_SIZE (= ARCH_KMALLOC_MINALIGN): the profile's (128 on arm64
  // 6.1) unless set; 8 is what arm64 kernels since 6.5 use, bringing back
  // kmalloc-8 ... kmalloc-64, kmalloc-96 and kmalloc-192.
  std::optional<unsigned> kmalloc_min_size;
};

// The slab layer of one Mm: caches, the kmalloc caches, the active
// allocator, the per-object shadow, and the client-access checks.
class Slab {
 public:
  explicit Slab(Mm& mm);
  ~Slab();
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  // kmem_cache_init(): the boot caches and the kmalloc caches (mm_init).
  void kmem_cache_init(const SlabConfig& cfg);
  bool initialized() const { return allocator != nullptr; }

  // ---- kmem_cache API; 0 is NULL ----
  cache_id kmem_cache_create(std::string_view name, unsigned size, unsigned align,
                             slab_flags_t flags, slab_ctor ctor = {});
  vaddr_t kmem_cache_alloc(cache_id c, gfp_t gfp) {
    return kmem_cache_alloc_node(c, gfp, NUMA_NO_NODE);
  }
  vaddr_t kmem_cache_alloc_node(cache_id c, gfp_t gfp, int node);
  vaddr_t kmem_cache_zalloc(cache_id c, gfp_t gfp) { return kmem_cache_alloc(c, gfp | __GFP_ZERO); }
  void kmem_cache_free(cache_id c, vaddr_t obj);
  std::size_t kmem_cache_alloc_bulk(cache_id c, gfp_t gfp, std::size_t nr, vaddr_t* out);
  void kmem_cache_free_bulk(cache_id c, std::size_t nr, const vaddr_t* objs);
  int kmem_cache_shrink(cache_id c);
  void kmem_cache_destroy(cache_id c);
  unsigned kmem_cache_size(cache_id c) const;

  // ---- kmalloc family ----
  vaddr_t kmalloc(std::uint64_t size, gfp_t gfp) { return kmalloc_node(size, gfp, NUMA_NO_NODE); }
  vaddr_t kmalloc_node(std::uint64_t size, gfp_t gfp, int node);
  vaddr_t kzalloc(std::uint64_t size, gfp_t gfp) { return kmalloc(size, gfp | __GFP_ZERO); }
  vaddr_t kmalloc_array(std::uint64_t n, std::uint64_t size, gfp_t gfp);
  vaddr_t kcalloc(std::uint64_t n, std::uint64_t size, gfp_t gfp) {
    return kmalloc_array(n, size, gfp | __GFP_ZERO);
  }
  vaddr_t krealloc(vaddr_t p, std::uint64_t new_size, gfp_t gfp);
  void kfree(vaddr_t p);
  void kfree_sensitive(vaddr_t p);
  std::uint64_t ksize(vaddr_t p);
  vaddr_t kmemdup(vaddr_t src, std::uint64_t len, gfp_t gfp);
  vaddr_t kstrdup(vaddr_t str, gfp_t gfp);

  // ---- client accesses: what buggy kernel code does with object bytes ----
  // Checked at once against the object (KASAN's view); the bytes land in
  // simulated RAM either way. False if the access was reported.
  // Reports what KASAN would and writes anyway (corruption tests rely on
  // it), unless only_if_valid: then a refused write changes nothing.
  bool write(vaddr_t addr, std::span<const std::uint8_t> bytes, bool only_if_valid = false);
  bool fill(vaddr_t addr, std::uint64_t len, std::uint8_t byte);
  bool read(vaddr_t addr, std::span<std::uint8_t> out);

  // Periodic work (SLAB's cache_reap).
  void tick();
  // Snapshots (mm/snapshot.cpp): copies `snap`'s state; same configuration.
  void restore_from(const Slab& snap);

  // ---- state (read by checkers and views) ----
  SlabVariant variant = SlabVariant::slub;
  SlabConfig config;
  std::vector<std::unique_ptr<kmem_cache>> caches;  // id - 1
  std::vector<cache_id> slab_caches;                // list order: newest first, as slabinfo prints
  std::array<std::array<cache_id, KMALLOC_SHIFT_MAX_INDEX>, NR_KMALLOC_TYPES> kmalloc_caches{};
  cache_id kmem_cache_cache = 0, kmem_cache_node_cache = 0;
  std::unique_ptr<SlabAllocator> allocator;
  PageLists lists;  // slab lists through page->lru

  // Every change to a cache goes through here: it marks the cache for the
  // next snapshot restore.
  kmem_cache* cache(cache_id id) {
    kmem_cache* c = id && id <= caches.size() ? caches[id - 1].get() : nullptr;
    if (c) c->restore_dirty = true;
    return c;
  }
  const kmem_cache* cache(cache_id id) const {
    return id && id <= caches.size() ? caches[id - 1].get() : nullptr;
  }
  cache_id find_cache(std::string_view name) const;  // by name or alias, 0 if none
  unsigned kmalloc_min_size() const { return kmalloc_min_; }
  unsigned kmalloc_shift_low() const { return shift_low_; }
  unsigned kmalloc_shift_high() const { return shift_high_; }
  unsigned kmalloc_index(std::uint64_t size) const;  // 0: size 0; ~0u: too large
  std::uint64_t kmalloc_size(unsigned index) const;  // size of kmalloc cache index
  cache_id kmalloc_slab(std::uint64_t size, gfp_t gfp) const;
  std::uint64_t kmalloc_max_cache_size() const { return std::uint64_t{1} << shift_high_; }
  // KMALLOC_MAX_SIZE: the largest kmalloc the page allocator can serve.
  std::uint64_t kmalloc_max_size() const;

  // The object an address belongs to (kfree, KASAN), if it is in a slab.
  std::optional<ObjectRef> find_object(vaddr_t addr) const;
  // Large kmallocs: requested size by head pfn.
  std::optional<std::uint64_t> large_kmalloc_size(pfn_t head) const;
  const std::vector<std::pair<pfn_t, std::uint64_t>>& large_kmallocs() const { return large_; }

  // ---- for the allocators ----
  // A new slab: pages from the page allocator, PG_slab, slab_cache,
  // NR_SLAB_*_B accounting and an object shadow. NO_PAGE on failure.
  pfn_t alloc_slab_page(kmem_cache& s, gfp_t gfp, int node, unsigned order, unsigned nr_objects);
  void free_slab_page(kmem_cache& s, pfn_t head, unsigned order);
  std::vector<ObjectTrack>* shadow(pfn_t head) const;
  void mark_allocated(pfn_t head, unsigned index, std::uint32_t requested);
  void mark_freed(pfn_t head, unsigned index);
  std::uint64_t next_random() { return rng_.next(); }
  Mm& mm() { return mm_; }
  const Mm& mm() const { return mm_; }
  // For reports: the cache of a slab page.
  const kmem_cache* slab_cache_of(pfn_t head) const;
  pfn_t slab_head(pfn_t pfn) const;  // compound head of a slab page, NO_PAGE if not a slab

  // Misuse reporting (shared with the allocators).
  void report(MisuseKind kind, const kmem_cache* s, vaddr_t addr, vaddr_t object, std::string api,
              std::string detail, std::uint64_t access_len = 0, bool is_write = false,
              std::string what = {});

 private:
  cache_id create_cache(std::string name, unsigned size, unsigned align, slab_flags_t flags,
                        slab_ctor ctor, unsigned useroffset, unsigned usersize, bool kmalloc);
  cache_id find_mergeable(unsigned size, unsigned align, slab_flags_t flags,
                          const slab_ctor& ctor) const;
  void create_kmalloc_caches();
  bool alloc_bookkeeping(kmem_cache& s);
  void free_bookkeeping(kmem_cache& s);
  vaddr_t kmalloc_large(std::uint64_t size, gfp_t gfp, int node);
  void free_large_kmalloc(pfn_t head, vaddr_t obj);
  vaddr_t slab_alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size,
                     bool from_kmalloc);
  bool check_free(kmem_cache* expect, vaddr_t obj, pfn_t head, const char* api, ObjectRef* out);
  bool check_free_slow(kmem_cache* expect, vaddr_t obj, pfn_t head, const char* api,
                       ObjectRef* out);
  void kmalloc_bad_args(gfp_t gfp, int node);
  void misuse(MisuseKind kind, vaddr_t addr, const char* api, const char* detail);
  std::uint64_t ksize_raw(vaddr_t p);
  void post_alloc_init(const kmem_cache& s, vaddr_t obj, gfp_t gfp);
  bool access(vaddr_t addr, std::uint64_t len, bool is_write);

  Mm& mm_;
  unsigned kmalloc_min_ = 128, shift_low_ = 7, shift_high_ = 13;
  bool own_kmalloc_ = false;  // allocator->own_kmalloc(), off the fast path
  std::vector<std::unique_ptr<std::vector<ObjectTrack>>> shadow_;  // by slab head pfn offset
  // Shadows handed out since the last snapshot restore (shadow() marks them).
  mutable std::vector<std::uint8_t> shadow_touched_;
  mutable std::vector<std::uint32_t> shadow_touched_list_;
  void touch_shadow(pfn_t off) const {
    if (shadow_touched_[off]) return;
    shadow_touched_[off] = 1;
    shadow_touched_list_.push_back(static_cast<std::uint32_t>(off));
  }
  std::vector<std::pair<pfn_t, std::uint64_t>> large_;  // sorted: large kmalloc sizes
  SplitMix64 rng_;
};

}  // namespace mmfuzz::mm
