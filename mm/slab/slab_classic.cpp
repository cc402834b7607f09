// SLAB. Control flow and numbers follow mm/slab.c of 6.1 (cache layout,
// cache_grow_begin/end, the per-CPU array caches, the shared arrays, the
// three slab lists per node, free_block and cache_reap); the code is the
// model's own. The freelist index arrays live in simulated RAM, so a client
// write into one really corrupts it.
//
// Where the model differs from the kernel (single threaded, no memcg):
//  - Debug (SLAB_RED_ZONE, SLAB_POISON, SLAB_STORE_USER) is honoured per
//    cache as a CONFIG_DEBUG_SLAB kernel would (constructors of poisoned
//    caches run at allocation, the limit of debug caches is capped at 32);
//    caches without debug flags behave as in the non-debug Debian build.
//  - Every cache gets its final tunables at creation: the boot phase with
//    one-entry arrays until kmem_cache_init_late() is not modeled.
//  - No alien caches: a free of an object of another node goes straight to
//    free_block() on that node (what the kernel does without n->alien, e.g.
//    with "noaliencache"). No mempolicy/cpuset spreading, no pfmemalloc.
//  - SLAB_TYPESAFE_BY_RCU slabs are freed at once (no grace period).
//  - The array caches and kmem_cache_node structures are host-side state,
//    not kmalloc objects; the OFF_SLAB freelists are real objects of their
//    kmalloc cache but not traced, and count as the kernel's own (no leak).
//  - Before a slab hands out objects, its free index entries are checked
//    (in range, distinct, neither allocated nor cached): a corrupt array is
//    reported (slab.freeptr) and rebuilt where the kernel would hand out
//    garbage.
#include "mm/slab/slab_classic.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>

#include "mm/mm.h"

namespace mmfuzz::mm {
namespace slab_classic {

unsigned slab_obj_min_size(const Mm& mm) {
  return std::min(mm.slab.kmalloc_min_size(), 16u);
}

unsigned freelist_idx_size(const Mm& mm) {
  return (mm.profile.page_size() >> 8) <= slab_obj_min_size(mm) ? 1u : 2u;
}

bool obj_to_index(const kmem_cache& s, const page& p, vaddr_t objp, unsigned* idx) {
  if (objp < p.slab.s_mem || !s.size) return false;
  const std::uint64_t off = objp - p.slab.s_mem;
  if (off % s.size) return false;
  const std::uint64_t i = off / s.size;
  if (i >= s.num) return false;
  *idx = static_cast<unsigned>(i);
  return true;
}

unsigned get_free_obj(const Mm& mm, const page& p, unsigned i) {
  const unsigned w = freelist_idx_size(mm);
  const phys_addr_t pa = mm.__pa(p.slab.freelist + std::uint64_t{i} * w);
  return w == 1 ? mm.ram.load<std::uint8_t>(pa) : mm.ram.load<std::uint16_t>(pa);
}

}  // namespace slab_classic

namespace {

using namespace slab_classic;

// include/linux/gfp.h
constexpr gfp_t GFP_CONSTRAINT_MASK = __GFP_HARDWALL | __GFP_THISNODE;
constexpr gfp_t GFP_RECLAIM_MASK = __GFP_RECLAIM | __GFP_HIGH | __GFP_IO | __GFP_FS | __GFP_NOWARN |
                                   __GFP_RETRY_MAYFAIL | __GFP_NOFAIL | __GFP_NORETRY |
                                   __GFP_MEMALLOC | __GFP_NOMEMALLOC | __GFP_ATOMIC;
constexpr gfp_t GFP_SLAB_BUG_MASK = __GFP_DMA32 | __GFP_HIGHMEM;

// gfp_exact_node() of a NUMA kernel (CONFIG_NUMA=y in the modeled config).
constexpr gfp_t gfp_exact_node(gfp_t flags) {
  return (flags | __GFP_THISNODE | __GFP_NOWARN) & ~(__GFP_RECLAIM | __GFP_NOFAIL);
}

enum class Mgmt { on_slab, objfreelist, off_slab };

class SlabClassic final : public SlabAllocator {
 public:
  explicit SlabClassic(Slab& sl)
      : SlabAllocator(sl),
        mm_(sl.mm()),
        idx_size_(freelist_idx_size(mm_)),
        obj_max_num_((1u << (8 * idx_size_)) - 1),
        // kmem_cache_init(): bigger slabs only with more than 32 MiB of RAM.
        slab_max_order_(
            mm_.page_alloc.totalram_pages > ((32ull << 20) >> mm_.profile.page_shift) ? 1u : 0u),
        kmalloc_max_order_(sl.kmalloc_shift_high() - mm_.profile.page_shift) {}

  const char* name() const override { return "slab"; }
  bool create(kmem_cache& s) override;
  vaddr_t alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) override;
  void free(kmem_cache& s, vaddr_t obj) override;
  void free_object(kmem_cache& s, const ObjectRef& ref) override {
    cache_free(s, ref.slab, ref.index, ref.object);
  }
  int shrink(kmem_cache& s) override;
  bool shutdown(kmem_cache& s) override { return shrink(s) == 0; }
  void release(kmem_cache& s) override;
  SlabInfo slabinfo(const kmem_cache& s) const override;
  unsigned ksize(const kmem_cache& s) const override { return s.object_size; }
  std::optional<ObjectRef> find_object(vaddr_t addr) const override;
  bool find_object_in(pfn_t slab, vaddr_t addr, ObjectRef* out) const override;
  void tick() override;
  vaddr_t object_start(const kmem_cache& s, pfn_t head, unsigned i) const override {
    return index_to_obj(s, mm_.pfn_to_page(head), i) + s.obj_offset;
  }

 private:
  page& pg(pfn_t pfn) { return mm_.pfn_to_page(pfn); }
  std::uint64_t slab_bytes(const kmem_cache& s) const {
    return mm_.profile.page_size() << s.gfporder;
  }
  int numa_mem_id() const { return mm_.cpu_to_node(mm_.cpu()); }
  kmem_cache_node& node_of(kmem_cache& s, pfn_t slab) { return s.node[pg(slab).nid]; }
  pfn_t slab_of(vaddr_t objp) const { return sl_.slab_head(mm_.virt_to_pfn(objp)); }
  // obj_to_index(): a reciprocal multiply, as the kernel divides.
  unsigned index_of(const kmem_cache& s, pfn_t slab, vaddr_t objp) const {
    return reciprocal_divide(static_cast<std::uint32_t>(objp - mm_.pfn_to_page(slab).slab.s_mem),
                             s.reciprocal_size);
  }
  void list_del(pfn_t slab) {
    if (pg(slab).lru.next != LIST_NIL) sl_.lists.del(slab);
  }

  // RAM
  std::uint64_t load64(vaddr_t va) const { return mm_.ram.load64(mm_.__pa(va)); }
  void store64(vaddr_t va, std::uint64_t v) { mm_.ram.store64(mm_.__pa(va), v); }
  void set_free_obj(pfn_t slab, unsigned i, unsigned val) {
    const phys_addr_t pa = mm_.__pa(pg(slab).slab.freelist + std::uint64_t{i} * idx_size_);
    if (idx_size_ == 1)
      mm_.ram.store(pa, static_cast<std::uint8_t>(val));
    else
      mm_.ram.store(pa, static_cast<std::uint16_t>(val));
  }

  // layout
  unsigned cache_estimate(unsigned order, std::uint64_t size, Mgmt m, std::uint64_t* left) const;
  std::uint64_t calculate_slab_order(kmem_cache& s, std::uint64_t size, Mgmt m,
                                     slab_flags_t flags) const;
  bool set_objfreelist_slab_cache(kmem_cache& s, std::uint64_t size, slab_flags_t flags) const;
  bool set_off_slab_cache(kmem_cache& s, std::uint64_t size, slab_flags_t flags) const;
  bool set_on_slab_cache(kmem_cache& s, std::uint64_t size, slab_flags_t flags) const;
  void enable_cpucache(kmem_cache& s);

  // slabs
  pfn_t cache_grow_begin(kmem_cache& s, gfp_t flags, int nodeid);
  void cache_grow_end(kmem_cache& s, pfn_t slab);
  void cache_init_objs(kmem_cache& s, pfn_t slab);
  bool shuffle_freelist(kmem_cache& s, pfn_t slab);
  vaddr_t slab_get_obj(kmem_cache& s, pfn_t slab);
  void check_freelist(kmem_cache& s, pfn_t slab);
  std::vector<std::uint8_t> busy_objects(const kmem_cache& s, pfn_t slab) const;
  long repair_freelist(kmem_cache& s, pfn_t slab);
  bool slab_put_obj(kmem_cache& s, pfn_t slab, vaddr_t objp);
  void fixup_slab_list(kmem_cache& s, kmem_cache_node& n, pfn_t slab, std::vector<vaddr_t>& poison);
  void fixup_objfreelist_debug(kmem_cache& s, const std::vector<vaddr_t>& poison);
  pfn_t get_first_slab(kmem_cache_node& n);
  void slab_destroy(kmem_cache& s, pfn_t slab);
  void slabs_destroy(kmem_cache& s, std::vector<pfn_t>& list) {
    for (pfn_t slab : list) slab_destroy(s, slab);
    list.clear();
  }
  vaddr_t freelist_alloc(kmem_cache& s, gfp_t gfp, int nid);

  // allocation
  vaddr_t do_cache_alloc(kmem_cache& s, gfp_t flags, int nodeid);
  vaddr_t cache_alloc(kmem_cache& s, gfp_t flags);
  vaddr_t cache_alloc_refill(kmem_cache& s, gfp_t flags);
  vaddr_t cache_alloc_node(kmem_cache& s, gfp_t flags, int nodeid);
  vaddr_t fallback_alloc(kmem_cache& s, gfp_t flags);
  int alloc_block(kmem_cache& s, array_cache& ac, pfn_t slab, int batchcount);
  vaddr_t cache_alloc_debugcheck_after(kmem_cache& s, vaddr_t objp);

  // freeing
  void cache_free(kmem_cache& s, pfn_t slab, unsigned idx, vaddr_t obj);
  void cache_free_debugcheck(kmem_cache& s, vaddr_t objp);
  void cache_flusharray(kmem_cache& s, array_cache& ac);
  void free_block(kmem_cache& s, const vaddr_t* objpp, unsigned nr, int node,
                  std::vector<pfn_t>& list);
  void drain_array_locked(kmem_cache& s, array_cache& ac, int node, bool free_all,
                          std::vector<pfn_t>& list);
  void drain_array(kmem_cache& s, array_cache* ac, int node);
  unsigned drain_freelist(kmem_cache& s, kmem_cache_node& n, unsigned tofree);
  void cache_reap(int cpu);

  // debug
  void poison_obj(const kmem_cache& s, vaddr_t objp, std::uint8_t val) {
    const phys_addr_t pa = mm_.__pa(objp + s.obj_offset);
    mm_.ram.fill(pa, s.object_size, val);
    mm_.ram.fill(pa + s.object_size - 1, 1, POISON_END);
  }
  bool check_poison_obj(kmem_cache& s, vaddr_t objp, const char* api);
  void slab_error(kmem_cache& s, MisuseKind kind, vaddr_t addr, vaddr_t objp, const char* function,
                  const char* msg);

  Mm& mm_;
  const unsigned idx_size_;     // sizeof(freelist_idx_t)
  const unsigned obj_max_num_;  // SLAB_OBJ_MAX_NUM
  const unsigned slab_max_order_;
  const unsigned kmalloc_max_order_;  // KMALLOC_MAX_ORDER
  std::uint64_t jiffies_ = 0;         // model time: REAPTIMEOUT_AC per tick

 public:
  void restore_from(const SlabAllocator& snap) override {
    static_assert(sizeof(SlabClassic) == 48, "SlabClassic changed: update its restore_from");
    jiffies_ = static_cast<const SlabClassic&>(snap).jiffies_;
  }
};

// ---------------------------------------------------------------- layout

unsigned SlabClassic::cache_estimate(unsigned order, std::uint64_t size, Mgmt m,
                                     std::uint64_t* left) const {
  const std::uint64_t slab_size = mm_.profile.page_size() << order;
  const std::uint64_t per = m == Mgmt::on_slab ? size + idx_size_ : size;
  *left = slab_size % per;
  return static_cast<unsigned>(slab_size / per);
}

std::uint64_t SlabClassic::calculate_slab_order(kmem_cache& s, std::uint64_t size, Mgmt m,
                                                slab_flags_t flags) const {
  std::uint64_t left_over = 0;
  for (unsigned order = 0; order <= kmalloc_max_order_; ++order) {
    std::uint64_t remainder;
    const unsigned num = cache_estimate(order, size, m, &remainder);
    if (!num) continue;
    if (num > obj_max_num_) break;  // more objects than freelist_idx_t can name
    if (m == Mgmt::off_slab) {
      const std::uint64_t freelist_size = std::uint64_t{num} * idx_size_;
      const kmem_cache* fc = sl_.cache(sl_.kmalloc_slab(freelist_size, 0));
      if (!fc) continue;
      if (OFF_SLAB(*fc)) continue;  // would loop in cache_grow_begin()
      // Worth it only if the freelist object is small against the object
      // (cachep->size is still the size the creator asked for here).
      if (fc->size > s.size / 2) continue;
    }
    s.num = num;
    s.gfporder = order;
    left_over = remainder;
    if (flags & SLAB_RECLAIM_ACCOUNT) break;  // VFS-reclaimable: keep the order low
    if (order >= slab_max_order_) break;
    if (left_over * 8 <= (mm_.profile.page_size() << order)) break;  // acceptable waste
  }
  return left_over;
}

bool SlabClassic::set_objfreelist_slab_cache(kmem_cache& s, std::uint64_t size,
                                             slab_flags_t flags) const {
  s.num = 0;
  // slab_want_init_on_free(): the freelist would end up in an allocated object.
  if (mm_.profile.init_on_free && !s.ctor.present &&
      !(s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON)))
    return false;
  if (s.ctor.present || (flags & SLAB_TYPESAFE_BY_RCU)) return false;
  const std::uint64_t left = calculate_slab_order(s, size, Mgmt::objfreelist, flags);
  if (!s.num) return false;
  if (std::uint64_t{s.num} * idx_size_ > s.object_size) return false;
  s.colour = static_cast<unsigned>(left / s.colour_off);
  return true;
}

bool SlabClassic::set_off_slab_cache(kmem_cache& s, std::uint64_t size, slab_flags_t flags) const {
  s.num = 0;
  if (flags & SLAB_NOLEAKTRACE) return false;  // no recursion into kmemleak
  const std::uint64_t left = calculate_slab_order(s, size, Mgmt::off_slab, flags);
  if (!s.num) return false;
  // Room for the freelist in the slab after all: keep it on-slab.
  if (left >= std::uint64_t{s.num} * idx_size_) return false;
  s.colour = static_cast<unsigned>(left / s.colour_off);
  return true;
}

bool SlabClassic::set_on_slab_cache(kmem_cache& s, std::uint64_t size, slab_flags_t flags) const {
  s.num = 0;
  const std::uint64_t left = calculate_slab_order(s, size, Mgmt::on_slab, flags);
  if (!s.num) return false;
  s.colour = static_cast<unsigned>(left / s.colour_off);
  return true;
}

// __kmem_cache_create(): s->size and s->align come from the common layer
// (the size asked for and calculate_alignment()).
bool SlabClassic::create(kmem_cache& s) {
  slab_flags_t flags = s.flags & ~CFLGS_OBJFREELIST_SLAB;
  std::uint64_t size = round_up(s.size, BYTES_PER_WORD);
  unsigned ralign = BYTES_PER_WORD;
  if (flags & SLAB_RED_ZONE) {
    ralign = REDZONE_ALIGN;
    size = round_up(size, REDZONE_ALIGN);  // keeps the second red zone aligned
  }
  if (ralign < s.align) ralign = s.align;  // caller mandated alignment
  // The red zone words need 8-byte alignment of the object end: with a
  // larger alignment SLAB drops red zoning and the user word.
  if (ralign > 8) flags &= ~(SLAB_RED_ZONE | SLAB_STORE_USER);
  s.align = ralign;
  s.colour_off = std::max(mm_.profile.cache_line_size, s.align);
  s.obj_offset = 0;
  if (flags & SLAB_RED_ZONE) {
    s.obj_offset += 8;  // the first red zone word
    size += 2 * 8;
  }
  if (flags & SLAB_STORE_USER) size += (flags & SLAB_RED_ZONE) ? REDZONE_ALIGN : BYTES_PER_WORD;
  size = round_up(size, s.align);
  // Byte-sized freelist indexes need at least SLAB_OBJ_MIN_SIZE per object.
  if (idx_size_ == 1 && size < slab_obj_min_size(mm_))
    size = round_up(slab_obj_min_size(mm_), s.align);

  s.off_slab = false;
  s.freelist_cache = 0;
  if (set_objfreelist_slab_cache(s, size, flags)) {
    flags |= CFLGS_OBJFREELIST_SLAB;
  } else if (set_off_slab_cache(s, size, flags)) {
    s.off_slab = true;
  } else if (!set_on_slab_cache(s, size, flags)) {
    return false;  // -E2BIG
  }
  s.freelist_size = s.num * idx_size_;
  if (s.off_slab) s.freelist_cache = sl_.kmalloc_slab(s.freelist_size, 0);
  s.flags = flags;
  s.allocflags = __GFP_COMP;
  if (flags & SLAB_CACHE_DMA) s.allocflags |= GFP_DMA;
  if (flags & SLAB_CACHE_DMA32) s.allocflags |= GFP_DMA32;
  if (flags & SLAB_RECLAIM_ACCOUNT) s.allocflags |= __GFP_RECLAIMABLE;
  s.size = static_cast<unsigned>(size);
  s.reciprocal_size = reciprocal_value_of(s.size);
  for (auto& n : s.node) {
    n.slabs_partial = sl_.lists.new_list();
    n.slabs_full = sl_.lists.new_list();
    n.slabs_free = sl_.lists.new_list();
    n.total_slabs = n.free_slabs = n.free_objects = 0;
    n.colour_next = 0;
    n.free_touched = false;
    // kmem_cache_node_init(): the first node reap one REAPTIMEOUT_NODE away
    // (the kernel adds the cache's address modulo REAPTIMEOUT_NODE).
    n.next_reap = jiffies_ + REAPTIMEOUT_NODE;
  }
  enable_cpucache(s);
  return true;
}

// enable_cpucache() + do_tune_cpucache() + setup_kmem_cache_nodes().
void SlabClassic::enable_cpucache(kmem_cache& s) {
  // cache_random_seq_create(): a random permutation of the object indexes.
  s.random_seq.clear();
  if (s.num >= 2) {
    s.random_seq.resize(s.num);
    for (unsigned i = 0; i < s.num; ++i) s.random_seq[i] = i;
    for (unsigned i = s.num - 1; i > 0; --i) {
      const auto j = static_cast<unsigned>(sl_.next_random() % (i + 1));
      std::swap(s.random_seq[i], s.random_seq[j]);
    }
  }
  unsigned limit;
  if (s.size > 131072)
    limit = 1;
  else if (s.size > mm_.profile.page_size())
    limit = 8;
  else if (s.size > 1024)
    limit = 24;
  else if (s.size > 256)
    limit = 54;
  else
    limit = 120;
  const unsigned shared = s.size <= mm_.profile.page_size() && mm_.nr_cpus() > 1 ? 8 : 0;
  if (s.debug() && limit > 32) limit = 32;  // DEBUG: short irq-off periods
  const unsigned batchcount = (limit + 1) / 2;
  s.limit = limit;
  s.batchcount = batchcount;
  s.shared = shared;
  s.array.assign(mm_.nr_cpus(), array_cache{});
  for (auto& ac : s.array) {
    ac.limit = limit;
    ac.batchcount = batchcount;
    ac.entry.assign(limit, 0);
  }
  for (unsigned nid = 0; nid < s.node.size(); ++nid) {
    kmem_cache_node& n = s.node[nid];
    unsigned cpus = 0;
    for (unsigned cpu = 0; cpu < mm_.nr_cpus(); ++cpu)
      cpus += mm_.cpu_to_node(static_cast<int>(cpu)) == static_cast<int>(nid);
    n.free_limit = std::uint64_t{1 + cpus} * batchcount + s.num;
    n.shared.reset();
    if (shared) {
      n.shared.emplace();
      n.shared->limit = shared * batchcount;
      n.shared->batchcount = BOOT_BATCH_SHARED_MAGIC;
      n.shared->entry.assign(n.shared->limit, 0);
    }
  }
}

void SlabClassic::release(kmem_cache& s) {
  s.random_seq.clear();
  s.array.clear();
  for (auto& n : s.node) n.shared.reset();
}

// ---------------------------------------------------------------- slabs

// An OFF_SLAB freelist: kmalloc_node() of freelist_size, here straight from
// the freelist cache. The object is the kernel's own, not a Program's.
vaddr_t SlabClassic::freelist_alloc(kmem_cache& s, gfp_t gfp, int nid) {
  kmem_cache* fc = sl_.cache(s.freelist_cache);
  if (!fc) return 0;
  const vaddr_t obj = alloc(*fc, gfp, nid, s.freelist_size);
  if (!obj) return 0;
  const pfn_t slab = slab_of(obj);
  if (auto* sh = sl_.shadow(slab)) {
    ObjectTrack& t = (*sh)[index_of(*fc, slab, obj - fc->obj_offset)];
    t.alloc_seq = 0;
    t.alloc_site = 0;
  }
  return obj;
}

pfn_t SlabClassic::cache_grow_begin(kmem_cache& s, gfp_t flags, int nodeid) {
  flags &= ~GFP_SLAB_BUG_MASK;  // kmalloc_fix_flags()
  const gfp_t local_flags = flags & (GFP_CONSTRAINT_MASK | GFP_RECLAIM_MASK);
  // kmem_getpages()
  const pfn_t slab = sl_.alloc_slab_page(s, local_flags | s.allocflags, nodeid, s.gfporder, s.num);
  if (slab == NO_PAGE) return NO_PAGE;
  page& p = pg(slab);
  kmem_cache_node& n = s.node[p.nid];
  // The colour of this slab, and the next one's.
  n.colour_next++;
  if (n.colour_next >= s.colour) n.colour_next = 0;
  std::uint64_t offset = n.colour_next;
  if (offset >= s.colour) offset = 0;
  offset *= s.colour_off;
  // alloc_slabmgmt()
  const vaddr_t addr = mm_.page_address(slab);
  p.slab.s_mem = addr + offset;
  p.slab.inuse = 0;  // active
  p.slab.objects = static_cast<std::uint16_t>(s.num);
  vaddr_t freelist = 0;
  if (OFF_SLAB(s)) {
    freelist = freelist_alloc(s, local_flags & ~GFP_CONSTRAINT_MASK, p.nid);
    if (!freelist) {
      sl_.free_slab_page(s, slab, s.gfporder);
      return NO_PAGE;
    }
  } else if (!OBJFREELIST_SLAB(s)) {
    freelist = addr + slab_bytes(s) - s.freelist_size;  // the last bytes of the slab
  }
  pg(slab).slab.freelist = freelist;
  cache_init_objs(s, slab);
  mm_.count_vm_event(SLAB_GROW);
  return slab;
}

void SlabClassic::cache_init_objs(kmem_cache& s, pfn_t slab) {
  page& p = pg(slab);
  // cache_init_objs_debug(), and the constructor.
  for (unsigned i = 0; i < s.num; ++i) {
    const vaddr_t objp = index_to_obj(s, p, i);
    if (s.flags & SLAB_STORE_USER) store64(dbg_userword(s, objp), 0);
    if (s.flags & SLAB_RED_ZONE) {
      store64(dbg_redzone1(s, objp), RED_INACTIVE);
      store64(dbg_redzone2(s, objp), RED_INACTIVE);
    }
    // With poisoning the constructor runs at allocation time instead.
    if (s.ctor.present && !(s.flags & SLAB_POISON))
      mm_.ram.fill(mm_.__pa(objp + s.obj_offset), s.object_size, s.ctor.fill);
    if (s.flags & SLAB_POISON) poison_obj(s, objp, POISON_FREE);
  }
  const bool shuffled = shuffle_freelist(s, slab);
  if (!shuffled && OBJFREELIST_SLAB(s))
    p.slab.freelist = index_to_obj(s, p, s.num - 1) + s.obj_offset;
  if (!shuffled)
    for (unsigned i = 0; i < s.num; ++i) set_free_obj(slab, i, i);
}

// SLAB_FREELIST_RANDOM: the free order from the precomputed permutation,
// starting at a random position.
bool SlabClassic::shuffle_freelist(kmem_cache& s, pfn_t slab) {
  unsigned count = s.num;
  if (count < 2 || s.random_seq.size() != s.num) return false;
  page& p = pg(slab);
  unsigned pos = static_cast<unsigned>(sl_.next_random() % count);
  const unsigned wrap = count;
  auto next_random_slot = [&] {
    if (pos >= wrap) pos = 0;
    return s.random_seq[pos++];
  };
  unsigned objfreelist = 0;
  if (OBJFREELIST_SLAB(s)) {
    objfreelist = next_random_slot();
    p.slab.freelist = index_to_obj(s, p, objfreelist) + s.obj_offset;
    count--;
  }
  for (unsigned i = 0; i < count; ++i) set_free_obj(slab, i, next_random_slot());
  if (OBJFREELIST_SLAB(s)) set_free_obj(slab, s.num - 1, objfreelist);
  return true;
}

// The free part of the index array of a slab about to give out objects.
// The array is in RAM, where a client's stray write (a use after free of an
// OBJFREELIST object, an overflow into the slab's tail) can reach it; the
// kernel would hand out whatever it finds. The model checks that the free
// part names distinct objects that are neither allocated nor cached, and
// reports and rebuilds a corrupt one, so it never hands out an object twice.
void SlabClassic::check_freelist(kmem_cache& s, pfn_t slab) {
  page& p = pg(slab);
  if (p.slab.inuse >= s.num) return;
  std::vector<std::uint8_t> busy = busy_objects(s, slab);
  for (unsigned i = p.slab.inuse; i < s.num; ++i) {
    const unsigned idx = get_free_obj(mm_, p, i);
    if (idx < s.num && !busy[idx]) {
      busy[idx] = 1;  // a second copy is corrupt too
      continue;
    }
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "freelist of slab %llx (cache %s) is corrupt: entry %u names object %u (num %u)",
                  static_cast<unsigned long long>(mm_.page_address(slab)), s.name.c_str(), i, idx,
                  s.num);
    const vaddr_t holder = OBJFREELIST_SLAB(s) ? p.slab.freelist : 0;
    sl_.report(MisuseKind::slab_freeptr, &s, p.slab.freelist + std::uint64_t{i} * idx_size_, holder,
               "slab_get_obj", buf, 0, false, "Freelist corrupt");
    const long delta = repair_freelist(s, slab);
    kmem_cache_node& n = node_of(s, slab);
    n.free_objects = static_cast<std::uint64_t>(static_cast<long>(n.free_objects) + delta);
    return;
  }
}

// Objects of a slab that are not free for the taking: allocated (the
// shadow) or sitting in a per-CPU or shared array.
std::vector<std::uint8_t> SlabClassic::busy_objects(const kmem_cache& s, pfn_t slab) const {
  const page& p = mm_.pfn_to_page(slab);
  std::vector<std::uint8_t> busy(s.num, 0);
  if (const auto* sh = sl_.shadow(slab))
    for (unsigned i = 0; i < s.num && i < sh->size(); ++i) busy[i] = (*sh)[i].allocated;
  auto mark = [&](const array_cache& ac) {
    for (unsigned k = 0; k < ac.avail && k < ac.entry.size(); ++k) {
      unsigned i;
      if (slab_of(ac.entry[k]) == slab && obj_to_index(s, p, ac.entry[k], &i)) busy[i] = 1;
    }
  };
  for (const auto& ac : s.array) mark(ac);
  for (const auto& n : s.node)
    if (n.shared) mark(*n.shared);
  return busy;
}

vaddr_t SlabClassic::slab_get_obj(kmem_cache& s, pfn_t slab) {
  page& p = pg(slab);
  if (p.slab.inuse >= s.num) return 0;
  const vaddr_t objp = index_to_obj(s, p, get_free_obj(mm_, p, p.slab.inuse));
  p.slab.inuse++;
  return objp;
}

// The free part of a slab's index array, rebuilt: every object the shadow
// calls free and no array caches. Returns the change in free objects.
long SlabClassic::repair_freelist(kmem_cache& s, pfn_t slab) {
  page& p = pg(slab);
  const std::vector<std::uint8_t> busy = busy_objects(s, slab);
  std::vector<unsigned> free;
  for (unsigned i = 0; i < s.num; ++i)
    if (!busy[i]) free.push_back(i);
  if (OBJFREELIST_SLAB(s)) {
    // The array stays in (or moves to) a free object, the last to go out.
    unsigned holder = s.num;
    if (p.slab.freelist) obj_to_index(s, p, p.slab.freelist - s.obj_offset, &holder);
    const auto it = std::find(free.begin(), free.end(), holder);
    if (it != free.end()) std::rotate(it, it + 1, free.end());
    p.slab.freelist = free.empty() ? 0 : index_to_obj(s, p, free.back()) + s.obj_offset;
  }
  const long before = static_cast<long>(s.num) - p.slab.inuse;
  p.slab.inuse = static_cast<std::uint16_t>(s.num - free.size());
  for (std::size_t j = 0; j < free.size(); ++j)
    set_free_obj(slab, p.slab.inuse + static_cast<unsigned>(j), free[j]);
  return static_cast<long>(free.size()) - before;
}

bool SlabClassic::slab_put_obj(kmem_cache& s, pfn_t slab, vaddr_t objp) {
  page& p = pg(slab);
  const unsigned objnr = index_of(s, slab, objp);
  // The DEBUG double free check (debug caches only, as CONFIG_DEBUG_SLAB
  // would have it); the kernel BUG()s, the model drops the object.
  if (s.debug() && p.slab.freelist) {
    for (unsigned i = p.slab.inuse; i < s.num; ++i)
      if (get_free_obj(mm_, p, i) == objnr) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "slab: double free detected in cache '%s', objp %llx",
                      s.name.c_str(), static_cast<unsigned long long>(objp));
        sl_.report(MisuseKind::slab_double_free, &s, objp + s.obj_offset, objp + s.obj_offset,
                   "slab_put_obj", buf, 0, false, "double free detected");
        return false;
      }
  }
  if (!p.slab.inuse) return false;  // nothing to give back (a corrupted count)
  p.slab.inuse--;
  if (!p.slab.freelist) p.slab.freelist = objp + s.obj_offset;  // OBJFREELIST: a full slab
  set_free_obj(slab, p.slab.inuse, objnr);
  return true;
}

void SlabClassic::fixup_slab_list(kmem_cache& s, kmem_cache_node& n, pfn_t slab,
                                  std::vector<vaddr_t>& poison) {
  page& p = pg(slab);
  list_del(slab);
  if (p.slab.inuse == s.num) {
    sl_.lists.add(n.slabs_full, slab);
    if (OBJFREELIST_SLAB(s)) {
      // The object that held the freelist goes out with the last allocation.
      if (s.flags & SLAB_POISON) poison.push_back(p.slab.freelist - s.obj_offset);
      p.slab.freelist = 0;
    }
  } else {
    sl_.lists.add(n.slabs_partial, slab);
  }
}

void SlabClassic::fixup_objfreelist_debug(kmem_cache& s, const std::vector<vaddr_t>& poison) {
  for (vaddr_t objp : poison) poison_obj(s, objp, POISON_FREE);
}

void SlabClassic::cache_grow_end(kmem_cache& s, pfn_t slab) {
  if (slab == NO_PAGE) return;
  kmem_cache_node& n = node_of(s, slab);
  std::vector<vaddr_t> poison;
  n.total_slabs++;
  if (!pg(slab).slab.inuse) {
    list_del(slab);
    sl_.lists.add_tail(n.slabs_free, slab);
    n.free_slabs++;
  } else {
    fixup_slab_list(s, n, slab, poison);
  }
  n.free_objects += s.num - pg(slab).slab.inuse;
  fixup_objfreelist_debug(s, poison);
}

pfn_t SlabClassic::get_first_slab(kmem_cache_node& n) {
  pfn_t slab = sl_.lists.first(n.slabs_partial);
  if (slab == NO_PAGE) {
    n.free_touched = true;
    slab = sl_.lists.first(n.slabs_free);
    if (slab != NO_PAGE) n.free_slabs--;
  }
  return slab;
}

void SlabClassic::slab_destroy(kmem_cache& s, pfn_t slab) {
  mm_.count_vm_event(SLAB_DESTROY);
  page& p = pg(slab);
  const vaddr_t freelist = p.slab.freelist;
  // slab_destroy_debugcheck()
  if (s.flags & (SLAB_POISON | SLAB_RED_ZONE)) {
    if (OBJFREELIST_SLAB(s) && (s.flags & SLAB_POISON) && freelist)
      poison_obj(s, freelist - s.obj_offset, POISON_FREE);
    for (unsigned i = 0; i < s.num; ++i) {
      const vaddr_t objp = index_to_obj(s, p, i);
      if (s.flags & SLAB_POISON) check_poison_obj(s, objp, "slab_destroy");
      if (s.flags & SLAB_RED_ZONE) {
        if (load64(dbg_redzone1(s, objp)) != RED_INACTIVE)
          slab_error(s, MisuseKind::slab_redzone, dbg_redzone1(s, objp), objp,
                     "slab_destroy_debugcheck", "start of a freed object was overwritten");
        if (load64(dbg_redzone2(s, objp)) != RED_INACTIVE)
          slab_error(s, MisuseKind::slab_redzone, dbg_redzone2(s, objp), objp,
                     "slab_destroy_debugcheck", "end of a freed object was overwritten");
      }
    }
  }
  // kmem_freepages(); an OFF_SLAB freelist is kfree()d after.
  sl_.free_slab_page(s, slab, s.gfporder);
  if (OFF_SLAB(s) && freelist)
    if (kmem_cache* fc = sl_.cache(s.freelist_cache)) free(*fc, freelist);
}

// ---------------------------------------------------------------- allocation

int SlabClassic::alloc_block(kmem_cache& s, array_cache& ac, pfn_t slab, int batchcount) {
  while (pg(slab).slab.inuse < s.num && batchcount--) {
    const vaddr_t objp = slab_get_obj(s, slab);
    if (!objp) break;
    ac.entry[ac.avail++] = objp;
  }
  return batchcount;
}

// transfer_objects()
unsigned transfer_objects(array_cache& to, array_cache& from, unsigned max) {
  const unsigned nr = std::min({from.avail, max, to.limit - to.avail});
  if (!nr) return 0;
  std::copy(from.entry.begin() + (from.avail - nr), from.entry.begin() + from.avail,
            to.entry.begin() + to.avail);
  from.avail -= nr;
  to.avail += nr;
  return nr;
}

vaddr_t SlabClassic::cache_alloc_refill(kmem_cache& s, gfp_t flags) {
  mm_.count_vm_event(SLAB_ARRAY_REFILL);
  const int node = numa_mem_id();
  array_cache& ac = s.array[static_cast<std::size_t>(mm_.cpu())];
  int batchcount = static_cast<int>(ac.batchcount);
  // Little recent activity: only a partial refill, against refill bouncing.
  if (!ac.touched && batchcount > BATCHREFILL_LIMIT) batchcount = BATCHREFILL_LIMIT;
  kmem_cache_node& n = s.node[static_cast<std::size_t>(node)];
  array_cache* shared = n.shared ? &*n.shared : nullptr;
  std::vector<vaddr_t> poison;
  if (n.free_objects || (shared && shared->avail)) {
    if (shared && transfer_objects(ac, *shared, static_cast<unsigned>(batchcount))) {
      shared->touched = true;
      mm_.count_vm_event(SLAB_REFILL_SHARED);
    } else {
      while (batchcount > 0) {
        const pfn_t slab = get_first_slab(n);
        if (slab == NO_PAGE) break;  // must_grow
        check_freelist(s, slab);
        batchcount = alloc_block(s, ac, slab, batchcount);
        fixup_slab_list(s, n, slab, poison);
      }
      n.free_objects -= ac.avail;
    }
    fixup_objfreelist_debug(s, poison);
  }
  if (!ac.avail) {  // direct_grow
    const pfn_t slab = cache_grow_begin(s, gfp_exact_node(flags), node);
    if (!ac.avail && slab != NO_PAGE) alloc_block(s, ac, slab, batchcount);
    cache_grow_end(s, slab);
    if (!ac.avail) return 0;
  }
  ac.touched = true;
  return ac.entry[--ac.avail];
}

// ____cache_alloc(): the per-CPU array first.
vaddr_t SlabClassic::cache_alloc(kmem_cache& s, gfp_t flags) {
  array_cache& ac = s.array[static_cast<std::size_t>(mm_.cpu())];
  if (ac.avail) {
    ac.touched = true;
    return ac.entry[--ac.avail];
  }
  return cache_alloc_refill(s, flags);
}

// ____cache_alloc_node(): one object straight from a node's slabs.
vaddr_t SlabClassic::cache_alloc_node(kmem_cache& s, gfp_t flags, int nodeid) {
  kmem_cache_node& n = s.node[static_cast<std::size_t>(nodeid)];
  pfn_t slab = get_first_slab(n);
  if (slab != NO_PAGE) {
    check_freelist(s, slab);
    std::vector<vaddr_t> poison;
    const vaddr_t obj = slab_get_obj(s, slab);
    if (obj) n.free_objects--;
    fixup_slab_list(s, n, slab, poison);
    fixup_objfreelist_debug(s, poison);
    if (obj) return obj;
  }
  slab = cache_grow_begin(s, gfp_exact_node(flags), nodeid);
  vaddr_t obj = 0;
  if (slab != NO_PAGE) obj = slab_get_obj(s, slab);  // not counted in free_objects yet
  cache_grow_end(s, slab);
  return obj ? obj : fallback_alloc(s, flags);
}

// fallback_alloc(): objects of any node, else a new slab wherever the page
// allocator finds one (nodes in order from the local one).
vaddr_t SlabClassic::fallback_alloc(kmem_cache& s, gfp_t flags) {
  if (flags & __GFP_THISNODE) return 0;
  const int local = numa_mem_id();
  const int nr = static_cast<int>(s.node.size());
  for (int tries = 0; tries < 4; ++tries) {
    for (int k = 0; k < nr; ++k) {
      const int nid = (local + k) % nr;
      if (s.node[static_cast<std::size_t>(nid)].free_objects)
        if (const vaddr_t obj = cache_alloc_node(s, gfp_exact_node(flags), nid)) return obj;
    }
    const pfn_t slab = cache_grow_begin(s, flags, local);
    cache_grow_end(s, slab);
    if (slab == NO_PAGE) return 0;
    if (const vaddr_t obj = cache_alloc_node(s, gfp_exact_node(flags), pg(slab).nid)) return obj;
  }
  return 0;
}

// __do_cache_alloc() of a NUMA kernel.
vaddr_t SlabClassic::do_cache_alloc(kmem_cache& s, gfp_t flags, int nodeid) {
  const int slab_node = numa_mem_id();
  vaddr_t objp = 0;
  if (nodeid == NUMA_NO_NODE || nodeid == slab_node) {
    objp = cache_alloc(s, flags);
    nodeid = slab_node;
  }
  // The local node may have run out: ____cache_alloc_node() may fall back.
  if (!objp) objp = cache_alloc_node(s, flags, nodeid);
  return objp;
}

bool SlabClassic::check_poison_obj(kmem_cache& s, vaddr_t objp, const char* api) {
  const vaddr_t realobj = objp + s.obj_offset;
  std::vector<std::uint8_t> buf(s.object_size);
  mm_.ram.read(mm_.__pa(realobj), buf);
  unsigned first = s.object_size, last = 0, bad = 0;
  for (unsigned i = 0; i < s.object_size; ++i) {
    const std::uint8_t exp = i == s.object_size - 1 ? POISON_END : POISON_FREE;
    if (buf[i] == exp) continue;
    first = std::min(first, i);
    last = i;
    ++bad;
  }
  if (!bad) return true;
  char line[256];
  std::snprintf(line, sizeof line,
                "Slab corruption (Not tainted): %s start=%llx, len=%u: %u bytes at offsets "
                "%u..%u, first 0x%02x instead of 0x%02x",
                s.name.c_str(), static_cast<unsigned long long>(realobj), s.object_size, bad, first,
                last, buf[first], first == s.object_size - 1 ? POISON_END : POISON_FREE);
  sl_.report(MisuseKind::slab_poison, &s, realobj + first, realobj, api, line, 0, false,
             "Slab corruption");
  return false;
}

void SlabClassic::slab_error(kmem_cache& s, MisuseKind kind, vaddr_t addr, vaddr_t objp,
                             const char* function, const char* msg) {
  char line[320];
  if (s.flags & SLAB_RED_ZONE)
    std::snprintf(line, sizeof line,
                  "slab error in %s(): cache `%s': %s; %llx: redzone 1:0x%llx, redzone 2:0x%llx",
                  function, s.name.c_str(), msg, static_cast<unsigned long long>(objp),
                  static_cast<unsigned long long>(load64(dbg_redzone1(s, objp))),
                  static_cast<unsigned long long>(load64(dbg_redzone2(s, objp))));
  else
    std::snprintf(line, sizeof line, "slab error in %s(): cache `%s': %s", function, s.name.c_str(),
                  msg);
  sl_.report(kind, &s, addr, objp + s.obj_offset, function, line, 0, false, msg);
}

// cache_alloc_debugcheck_after(): objp is the slot; returns the object.
vaddr_t SlabClassic::cache_alloc_debugcheck_after(kmem_cache& s, vaddr_t objp) {
  if (s.flags & SLAB_POISON) {
    check_poison_obj(s, objp, "cache_alloc_debugcheck_after");
    poison_obj(s, objp, POISON_INUSE);
  }
  if (s.flags & SLAB_STORE_USER) store64(dbg_userword(s, objp), mm_.call_site);
  if (s.flags & SLAB_RED_ZONE) {
    const std::uint64_t rz1 = load64(dbg_redzone1(s, objp)), rz2 = load64(dbg_redzone2(s, objp));
    if (rz1 != RED_INACTIVE || rz2 != RED_INACTIVE)
      slab_error(s, MisuseKind::slab_redzone,
                 rz1 != RED_INACTIVE ? dbg_redzone1(s, objp) : dbg_redzone2(s, objp), objp,
                 "cache_alloc_debugcheck_after",
                 "double free, or memory outside object was overwritten");
    store64(dbg_redzone1(s, objp), RED_ACTIVE);
    store64(dbg_redzone2(s, objp), RED_ACTIVE);
  }
  const vaddr_t obj = objp + s.obj_offset;
  if (s.ctor.present && (s.flags & SLAB_POISON))
    mm_.ram.fill(mm_.__pa(obj), s.object_size, s.ctor.fill);
  return obj;
}

vaddr_t SlabClassic::alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) {
  if (s.array.empty()) return 0;
  const vaddr_t objp = do_cache_alloc(s, gfp, node);
  if (!objp) return 0;
  const pfn_t slab = slab_of(objp);
  const vaddr_t obj = cache_alloc_debugcheck_after(s, objp);
  sl_.mark_allocated(slab, index_of(s, slab, objp), orig_size);
  return obj;
}

// ---------------------------------------------------------------- freeing

// cache_free_debugcheck(): objp is the slot.
void SlabClassic::cache_free_debugcheck(kmem_cache& s, vaddr_t objp) {
  if (s.flags & SLAB_RED_ZONE) {
    // verify_redzone_free()
    const std::uint64_t rz1 = load64(dbg_redzone1(s, objp)), rz2 = load64(dbg_redzone2(s, objp));
    if (!(rz1 == RED_ACTIVE && rz2 == RED_ACTIVE)) {
      if (rz1 == RED_INACTIVE && rz2 == RED_INACTIVE)
        slab_error(s, MisuseKind::slab_double_free, objp + s.obj_offset, objp,
                   "cache_free_debugcheck", "double free detected");
      else
        slab_error(s, MisuseKind::slab_redzone,
                   rz1 != RED_ACTIVE ? dbg_redzone1(s, objp) : dbg_redzone2(s, objp), objp,
                   "cache_free_debugcheck", "memory outside object was overwritten");
    }
    store64(dbg_redzone1(s, objp), RED_INACTIVE);
    store64(dbg_redzone2(s, objp), RED_INACTIVE);
  }
  if (s.flags & SLAB_STORE_USER) store64(dbg_userword(s, objp), mm_.call_site);
  if (s.flags & SLAB_POISON) poison_obj(s, objp, POISON_FREE);
}

void SlabClassic::free(kmem_cache& s, vaddr_t obj) {
  const pfn_t slab = slab_of(obj - s.obj_offset);
  if (slab == NO_PAGE) return;
  cache_free(s, slab, index_of(s, slab, obj - s.obj_offset), obj);
}

// __cache_free() + ___cache_free() of object idx (at obj) of slab.
void SlabClassic::cache_free(kmem_cache& s, pfn_t slab, unsigned idx, vaddr_t obj) {
  if (s.array.empty()) return;
  // init_on_free clears the object first.
  if (mm_.profile.init_on_free && !s.ctor.present &&
      !(s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON)))
    mm_.ram.zero(mm_.__pa(obj), s.object_size);
  const vaddr_t objp = obj - s.obj_offset;
  cache_free_debugcheck(s, objp);
  sl_.mark_freed(slab, idx);
  // An object of another node goes back to its own node's slabs (the model
  // keeps no alien caches).
  const int slab_node = pg(slab).nid;
  if (mm_.machine.nr_nodes > 1 && slab_node != numa_mem_id()) {
    std::vector<pfn_t> list;
    free_block(s, &objp, 1, slab_node, list);
    slabs_destroy(s, list);
    return;
  }
  array_cache& ac = s.array[static_cast<std::size_t>(mm_.cpu())];
  if (ac.avail >= ac.limit) cache_flusharray(s, ac);
  // __free_one(): SLAB_FREELIST_HARDENED catches a trivial double free.
  if (ac.avail > 0 && ac.entry[ac.avail - 1] == objp) {
    sl_.report(MisuseKind::slab_double_free, &s, obj, obj, "__free_one",
               "WARNING: __free_one(): ac->avail > 0 && ac->entry[ac->avail - 1] == objp", 0, false,
               "double free detected");
    return;
  }
  ac.entry[ac.avail++] = objp;
}

void SlabClassic::cache_flusharray(kmem_cache& s, array_cache& ac) {
  mm_.count_vm_event(SLAB_FLUSHARRAY);
  unsigned batchcount = ac.batchcount;
  const int node = numa_mem_id();
  kmem_cache_node& n = s.node[static_cast<std::size_t>(node)];
  std::vector<pfn_t> list;
  // To the shared array while it has room, else back onto the slabs.
  array_cache* shared = n.shared ? &*n.shared : nullptr;
  if (shared && shared->limit > shared->avail)
    batchcount = std::min(batchcount, shared->limit - shared->avail);
  else
    shared = nullptr;
  // Planted defect (fuzz self-test): the objects handed on stop one short of
  // batchcount, but the array still drops batchcount of them below.
  unsigned handed = batchcount;
  if (mm_.planted(PlantedDefect::slab_flusharray_drops_object) && handed > 1) [[unlikely]]
    --handed;
  if (shared) {
    std::copy(ac.entry.begin(), ac.entry.begin() + handed, shared->entry.begin() + shared->avail);
    shared->avail += handed;
  } else {
    free_block(s, ac.entry.data(), handed, node, list);
  }
  ac.avail -= batchcount;
  std::copy(ac.entry.begin() + batchcount, ac.entry.begin() + batchcount + ac.avail,
            ac.entry.begin());
  slabs_destroy(s, list);
}

// free_block(): objects back onto their slabs; free slabs beyond the node's
// free_limit leave for `list` (slabs_destroy() frees them).
void SlabClassic::free_block(kmem_cache& s, const vaddr_t* objpp, unsigned nr, int node,
                             std::vector<pfn_t>& list) {
  for (unsigned i = 0; i < nr; ++i) {
    const vaddr_t objp = objpp[i];
    const pfn_t slab = slab_of(objp);
    if (slab == NO_PAGE || pg(slab).slab.cache != s.id) continue;
    kmem_cache_node& n = node_of(s, slab);
    if (!slab_put_obj(s, slab, objp)) continue;
    n.free_objects++;
    list_del(slab);
    if (!pg(slab).slab.inuse) {
      sl_.lists.add(n.slabs_free, slab);
      n.free_slabs++;
    } else {
      // To the end of the partial list: the most time for its other
      // objects to come back too.
      sl_.lists.add_tail(n.slabs_partial, slab);
    }
  }
  kmem_cache_node& n = s.node[static_cast<std::size_t>(node)];
  while (n.free_objects > n.free_limit && !sl_.lists.empty(n.slabs_free)) {
    n.free_objects -= s.num;
    const pfn_t slab = sl_.lists.last(n.slabs_free);
    sl_.lists.del(slab);
    list.push_back(slab);
    n.free_slabs--;
    n.total_slabs--;
  }
}

void SlabClassic::drain_array_locked(kmem_cache& s, array_cache& ac, int node, bool free_all,
                                     std::vector<pfn_t>& list) {
  if (!ac.avail) return;
  unsigned tofree = free_all ? ac.avail : (ac.limit + 4) / 5;
  if (tofree > ac.avail) tofree = (ac.avail + 1) / 2;
  free_block(s, ac.entry.data(), tofree, node, list);
  ac.avail -= tofree;
  std::copy(ac.entry.begin() + tofree, ac.entry.begin() + tofree + ac.avail, ac.entry.begin());
}

// drain_array(): only an array that saw no use since the last reap.
void SlabClassic::drain_array(kmem_cache& s, array_cache* ac, int node) {
  if (!ac || !ac->avail) return;
  if (ac->touched) {
    ac->touched = false;
    return;
  }
  std::vector<pfn_t> list;
  drain_array_locked(s, *ac, node, false, list);
  mm_.count_vm_event(SLAB_REAP_DRAIN);
  slabs_destroy(s, list);
}

unsigned SlabClassic::drain_freelist(kmem_cache& s, kmem_cache_node& n, unsigned tofree) {
  unsigned nr_freed = 0;
  while (nr_freed < tofree && !sl_.lists.empty(n.slabs_free)) {
    const pfn_t slab = sl_.lists.last(n.slabs_free);
    sl_.lists.del(slab);
    n.free_slabs--;
    n.total_slabs--;
    n.free_objects -= s.num;
    slab_destroy(s, slab);
    nr_freed++;
  }
  return nr_freed;
}

// ---------------------------------------------------------------- maintenance

// __kmem_cache_shrink(): drain every array, release every free slab.
int SlabClassic::shrink(kmem_cache& s) {
  if (s.array.empty()) return 0;
  // drain_cpu_caches(): do_drain() on each CPU, then the shared arrays.
  for (unsigned cpu = 0; cpu < s.array.size(); ++cpu) {
    array_cache& ac = s.array[cpu];
    std::vector<pfn_t> list;
    free_block(s, ac.entry.data(), ac.avail, mm_.cpu_to_node(static_cast<int>(cpu)), list);
    ac.avail = 0;
    slabs_destroy(s, list);
  }
  for (std::size_t nid = 0; nid < s.node.size(); ++nid) {
    kmem_cache_node& n = s.node[nid];
    if (!n.shared) continue;
    std::vector<pfn_t> list;
    drain_array_locked(s, *n.shared, static_cast<int>(nid), true, list);
    slabs_destroy(s, list);
  }
  int ret = 0;
  for (auto& n : s.node) {
    drain_freelist(s, n, UINT_MAX);
    ret += !sl_.lists.empty(n.slabs_full) || !sl_.lists.empty(n.slabs_partial);
  }
  return ret ? 1 : 0;
}

// cache_reap() as the reap work of `cpu` runs it.
void SlabClassic::cache_reap(int cpu) {
  const int node = mm_.cpu_to_node(cpu);
  for (cache_id id : std::vector<cache_id>(sl_.slab_caches)) {
    kmem_cache* s = sl_.cache(id);
    if (!s || s->destroyed || s->array.empty()) continue;
    kmem_cache_node& n = s->node[static_cast<std::size_t>(node)];
    drain_array(*s, &s->array[static_cast<std::size_t>(cpu)], node);
    if (n.next_reap > jiffies_) continue;  // time_after(n->next_reap, jiffies)
    n.next_reap = jiffies_ + REAPTIMEOUT_NODE;
    drain_array(*s, n.shared ? &*n.shared : nullptr, node);
    if (n.free_touched) {
      n.free_touched = false;
    } else {
      const std::uint64_t per = 5 * std::uint64_t{s->num};
      drain_freelist(*s, n, static_cast<unsigned>((n.free_limit + per - 1) / per));
    }
  }
}

// One model tick is one REAPTIMEOUT_AC period: the reap work of every CPU
// runs once, in CPU order; node-wide reaping comes every REAPTIMEOUT_NODE.
void SlabClassic::tick() {
  jiffies_ += REAPTIMEOUT_AC;
  for (unsigned cpu = 0; cpu < mm_.nr_cpus(); ++cpu) cache_reap(static_cast<int>(cpu));
}

SlabInfo SlabClassic::slabinfo(const kmem_cache& s) const {
  SlabInfo i;
  std::uint64_t free_slabs = 0, free_objs = 0;
  for (const auto& n : s.node) {
    i.num_slabs += n.total_slabs;
    free_slabs += n.free_slabs;
    free_objs += n.free_objects;
    if (n.shared) i.shared_avail += n.shared->avail;
  }
  i.num_objs = i.num_slabs * s.num;
  i.active_slabs = i.num_slabs - free_slabs;
  i.active_objs = i.num_objs - free_objs;
  i.objsize = s.size;
  i.objperslab = s.num;
  i.pagesperslab = 1u << s.gfporder;
  i.limit = s.limit;
  i.batchcount = s.batchcount;
  i.sharedfactor = s.shared;
  return i;
}

std::optional<ObjectRef> SlabClassic::find_object(vaddr_t addr) const {
  const pfn_t slab = sl_.slab_head(mm_.virt_to_pfn(addr));
  ObjectRef r;
  if (slab == NO_PAGE || !find_object_in(slab, addr, &r)) return std::nullopt;
  return r;
}

bool SlabClassic::find_object_in(pfn_t slab, vaddr_t addr, ObjectRef* out) const {
  const page& p = mm_.pfn_to_page(slab);
  const kmem_cache* s = sl_.cache(p.slab.cache);
  if (!s || !s->size || addr < p.slab.s_mem) return false;  // below s_mem: the colour
  const std::uint64_t off = addr - p.slab.s_mem;
  if (off >= std::uint64_t{s->num} * s->size) return false;  // an on-slab freelist, the tail
  const unsigned i = reciprocal_divide(static_cast<std::uint32_t>(off), s->reciprocal_size);
  ObjectRef& r = *out;
  r = ObjectRef{};
  r.cache = s->id;
  r.slab = slab;
  r.index = i;
  r.object = p.slab.s_mem + std::uint64_t{i} * s->size + s->obj_offset;
  r.size = s->object_size;
  if (const auto* sh = sl_.shadow(slab); sh && i < sh->size()) {
    r.allocated = (*sh)[i].allocated;
    r.requested = (*sh)[i].requested;
  }
  return true;
}

}  // namespace

std::unique_ptr<SlabAllocator> make_slab(Slab& sl) {
  return std::make_unique<SlabClassic>(sl);
}

}  // namespace mmfuzz::mm
