#include "program/generate.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <optional>

#include "program/build.h"

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

MachineFacts MachineFacts::of(const Mm& m) {
  MachineFacts f;
  f.nr_cpus = m.nr_cpus();
  f.nr_nodes = m.machine.nr_nodes;
  f.page_size = m.profile.page_size();
  f.totalram_pages = m.page_alloc.totalram_pages;
  f.max_order = m.page_alloc.max_order();
  f.pageblock_order = m.profile.pageblock_order;
  f.slab = m.slab.initialized();
  f.vmalloc = m.vmalloc.initialized();
  if (f.slab) {
    f.kmalloc_max_cache_size = m.slab.kmalloc_max_cache_size();
    f.kmalloc_max_size = m.slab.kmalloc_max_size();
  }
  for (const IoDevice& d : m.vmalloc.devices()) f.devices.emplace_back(d.start, d.end);
  f.free_blocks.assign(f.max_order, 0);
  for (const pglist_data& pgdat : m.page_alloc.node_data)
    for (const zone& z : pgdat.node_zones)
      if (z.populated_zone())
        for (unsigned o = 0; o < f.max_order; ++o) f.free_blocks[o] += z.free_area_[o].nr_free;
  return f;
}

namespace {

const gfp_t kPageGfps[] = {GFP_KERNEL,
                           GFP_KERNEL_ACCOUNT,
                           GFP_ATOMIC,
                           GFP_NOWAIT,
                           GFP_NOIO,
                           GFP_NOFS,
                           GFP_USER,
                           GFP_HIGHUSER_MOVABLE,
                           GFP_KERNEL | __GFP_RECLAIMABLE,
                           GFP_DMA | GFP_KERNEL,
                           GFP_DMA32 | GFP_KERNEL,
                           GFP_KERNEL | __GFP_COMP,
                           GFP_KERNEL | __GFP_ZERO,
                           GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN};
const gfp_t kSlabGfps[] = {GFP_KERNEL,
                           GFP_KERNEL_ACCOUNT,
                           GFP_ATOMIC,
                           GFP_NOWAIT,
                           GFP_NOFS,
                           GFP_KERNEL | __GFP_RECLAIMABLE,
                           GFP_KERNEL | GFP_DMA,
                           GFP_KERNEL | __GFP_ZERO};
const gfp_t kPoolGfps[] = {GFP_KERNEL, GFP_NOIO, GFP_ATOMIC, GFP_NOWAIT};
// __vmalloc() callers' masks.
const gfp_t kVmallocGfps[] = {GFP_KERNEL | __GFP_ZERO, GFP_KERNEL_ACCOUNT, GFP_NOFS};

struct CacheSpec {
  const char* name;
  unsigned size, align;
  slab_flags_t flags;
  bool ctor;
};
constexpr CacheSpec kCaches[] = {
    {"workload_small", 24, 0, 0, false},
    {"workload_hw", 200, 0, SLAB_HWCACHE_ALIGN, false},
    {"workload_reclaim", 1000, 0, SLAB_RECLAIM_ACCOUNT, false},
    {"workload_ctor", 72, 8, SLAB_ACCOUNT, true},
    {"workload_rcu", 320, 0, SLAB_TYPESAFE_BY_RCU, false},
};
constexpr std::size_t kNrCaches = std::size(kCaches);
constexpr std::size_t kNrPools = 3;
constexpr int kNone = -1;

// Writes a workload: the live set it tracks is what it allocated, assuming
// every allocation succeeds (a failed one leaves an unbound handle: the
// Executor skips the ops that name it).
class Workload {
 public:
  Workload(const WorkloadSpec& s, const MachineFacts& m)
      : s_(s),
        m_(m),
        rng_{s.seed},
        page_cap_(m.totalram_pages * 3 / 4),
        slab_cap_(m.totalram_pages / 8 * m.page_size),
        vm_cap_(m.totalram_pages / 16) {}
  Program run();

 private:
  enum class AreaKind : std::uint8_t { vmalloc, vmap, ioremap };
  struct PageRec {
    Handle h;
    unsigned order;
    bool compound;
  };
  struct ObjRec {
    Handle h;
    std::uint64_t size;
    int cache;        // kCaches index (kmem_cache_alloc) or kNone
    int pool;         // pool slot (mempool_alloc) or kNone
    bool kv = false;  // kvmalloc: freed with kvfree
  };
  struct PoolRec {
    Handle h = 0;
    bool live = false;
    std::uint64_t elem_size = 0;
    int cache = kNone;  // slab pools: the cache under it
  };
  struct AreaRec {
    Handle h;
    std::uint64_t size;
    std::uint64_t pages;  // counted against the vmalloc cap
    AreaKind kind;
  };

  std::uint64_t below(std::uint64_t n) { return rng_.below(n); }
  template <class T, std::size_t N>
  T pick(const T (&a)[N]) {
    return a[below(N)];
  }
  int node() {
    return m_.nr_nodes > 1 && below(8) == 0 ? static_cast<int>(below(m_.nr_nodes)) : -1;
  }
  template <class T>
  static T drop(std::vector<T>& v, std::size_t k) {
    const T x = v[k];
    v[k] = v.back();
    v.pop_back();
    return x;
  }

  void page_step();
  void alloc_pages();
  void free_page(std::size_t k);
  void split_page(std::size_t k);
  void page_access(std::size_t k);
  void page_ref(std::size_t k);
  void page_exact();
  void page_kmap(std::size_t k);
  void bulk_alloc(std::size_t k);
  void krealloc(std::size_t k);
  void slab_step();
  std::uint64_t kmalloc_size();
  void kmalloc();
  void cache_alloc();
  void add_object(const ObjRec& o);
  void free_object(std::size_t k);
  void object_access(std::size_t k);
  void ensure_cache(std::size_t k);
  void destroy_cache(std::size_t k);
  void pool_step();
  void create_pool(std::size_t slot);
  void destroy_pool(std::size_t slot);
  void vm_step();
  void vmalloc();
  void vmap();
  void ioremap();
  void free_area(std::size_t k);
  void area_access();
  void teardown();

  const WorkloadSpec& s_;
  const MachineFacts& m_;
  SplitMix64 rng_;
  ProgramBuilder b_;
  std::uint64_t page_cap_, slab_cap_, vm_cap_;
  std::vector<PageRec> pages_;
  std::uint64_t live_pages_ = 0;
  std::vector<ObjRec> objs_;
  std::uint64_t slab_bytes_ = 0;
  std::array<bool, kNrCaches> cache_live_{};
  std::array<PoolRec, kNrPools> pools_{};
  std::vector<AreaRec> areas_;
  std::uint64_t vm_pages_ = 0;
};

Program Workload::run() {
  std::uint64_t next_check = s_.check_every;
  while (b_.program().ops.size() < s_.ops) {
    const std::uint64_t part = below(100);
    if (m_.slab && part < s_.slab_percent)
      slab_step();
    else if (m_.vmalloc && part < std::uint64_t{s_.slab_percent} + s_.vm_percent)
      vm_step();
    else
      page_step();
    if (next_check && b_.program().ops.size() >= next_check) {
      b_.check();
      next_check += s_.check_every;
    }
  }
  teardown();
  return b_.take();
}

// ---- page allocator ----

void Workload::page_step() {
  const std::uint64_t dice = below(100);
  if (dice < 45 || pages_.empty()) return alloc_pages();
  if (dice < 80) return free_page(below(pages_.size()));
  if (dice < 84) return split_page(below(pages_.size()));
  if (dice < 88) return page_access(below(pages_.size()));
  if (dice < 89) return page_ref(below(pages_.size()));
  if (dice < 90) return page_exact();
  if (dice < 91) return page_kmap(below(pages_.size()));
  if (dice < 96) return b_.set_cpu(static_cast<int>(below(m_.nr_cpus)));
  if (dice < 98) return b_.drain_all_pages();
  b_.tick();
}

void Workload::alloc_pages() {
  unsigned order = 0;
  const std::uint64_t r = below(100);
  if (r >= 70) order = static_cast<unsigned>(r < 90 ? 1 + below(3) : below(m_.max_order));
  gfp_t gfp = pick(kPageGfps);
  if (below(50) == 0) {
    order = m_.pageblock_order;
    gfp = GFP_TRANSHUGE_LIGHT;
  }
  const std::uint64_t nr = std::uint64_t{1} << order;
  if (live_pages_ + nr > page_cap_) {  // keep a quarter of RAM free
    if (!pages_.empty()) free_page(below(pages_.size()));
    return;
  }
  pages_.push_back({b_.alloc_pages(order, gfp, node()), order, order && (gfp & __GFP_COMP)});
  live_pages_ += nr;
}

void Workload::free_page(std::size_t k) {
  const PageRec p = drop(pages_, k);
  // A quarter through the address, as free_pages(addr, order) callers do.
  if (below(4) == 0)
    b_.free_pages_addr(p.h, p.order);
  else
    b_.free_pages(p.h, p.order);
  live_pages_ -= std::uint64_t{1} << p.order;
}

void Workload::split_page(std::size_t k) {
  if (!pages_[k].order || pages_[k].compound) return;
  const PageRec p = drop(pages_, k);
  b_.split_page(p.h);
  for (Handle i = 0; i < (Handle{1} << p.order); ++i) pages_.push_back({p.h + i, 0, false});
}

// A client write or read inside the allocation, through the linear map.
void Workload::page_access(std::size_t k) {
  const PageRec& p = pages_[k];
  const std::uint64_t size = m_.page_size << p.order;
  const std::uint64_t off = below(size);
  const std::uint64_t len = 1 + below(std::min(size - off, m_.page_size));
  if (below(2))
    b_.write(Space::page, p.h, off, len, static_cast<std::uint8_t>(rng_.next()));
  else
    b_.read(Space::page, p.h, off, len);
}

// A reference taken and dropped (get_page/put_page): the page stays.
void Workload::page_ref(std::size_t k) {
  b_.get_page(pages_[k].h);
  b_.put_page(pages_[k].h);
}

// alloc_pages_exact()/free_pages_exact(): a short-lived buffer of a few pages.
void Workload::page_exact() {
  const std::uint64_t size = 1 + below(4 * m_.page_size);
  const Handle h = b_.alloc_pages_exact(size, GFP_KERNEL);
  b_.free_pages_exact(h, size);
}

// One of the kmap flavours around an access, released in order.
void Workload::page_kmap(std::size_t k) {
  const Handle h = pages_[k].h;
  switch (below(3)) {
    case 0:
      b_.kmap(h);
      b_.kunmap(h);
      return;
    case 1:
      b_.kmap_atomic(h);
      b_.kunmap_atomic(h);
      return;
    default:
      b_.kmap_local_page(h);
      b_.kunmap_local(h);
  }
}

// ---- slab layer ----

void Workload::slab_step() {
  const std::uint64_t dice = below(100);
  if (dice < 38 || objs_.empty()) return kmalloc();
  if (dice < 68) return free_object(below(objs_.size()));
  if (dice < 80) return cache_alloc();
  if (dice < 89) return pool_step();
  if (dice < 96) return object_access(below(objs_.size()));
  if (dice < 98) {
    const std::size_t k = below(kNrCaches);
    ensure_cache(k);
    return b_.kmem_cache_shrink(kCaches[k].name);
  }
  destroy_cache(below(kNrCaches));
}

// Mostly small, as real kmalloc traffic is; now and then past the largest
// kmalloc cache into the page allocator (never past what it can serve).
std::uint64_t Workload::kmalloc_size() {
  const std::uint64_t r = below(100);
  if (r < 70) return 1 + below(256);
  if (r < 92) return 257 + below(4096 - 256);
  if (r < 99) return 4097 + below(m_.kmalloc_max_cache_size);
  return 1 + below(std::min(16 * m_.kmalloc_max_cache_size, m_.kmalloc_max_size));
}

void Workload::kmalloc() {
  const std::uint64_t size = kmalloc_size();
  const gfp_t gfp = pick(kSlabGfps);
  if (slab_bytes_ + size > slab_cap_) {
    if (!objs_.empty()) free_object(below(objs_.size()));
    return;
  }
  // kvmalloc() now and then: kmalloc first, vmalloc when that cannot serve.
  if (below(16) == 0) return add_object({b_.kvmalloc(size, GFP_KERNEL), size, kNone, kNone, true});
  add_object({b_.kmalloc(size, gfp, node()), size, kNone, kNone});
}

void Workload::cache_alloc() {
  const std::size_t k = below(kNrCaches);
  ensure_cache(k);
  if (below(8) == 0) return bulk_alloc(k);
  // kmem_cache_zalloc() now and then.
  const gfp_t gfp = below(4) ? GFP_KERNEL : GFP_KERNEL | __GFP_ZERO;
  add_object({b_.kmem_cache_alloc(kCaches[k].name, gfp, node()), kCaches[k].size,
              static_cast<int>(k), kNone});
}

// kmem_cache_alloc_bulk(): half given back at once with free_bulk, half
// kept and freed one by one later.
void Workload::bulk_alloc(std::size_t k) {
  const auto nr = static_cast<std::uint32_t>(2 + below(6));
  const Handle first = b_.kmem_cache_alloc_bulk(kCaches[k].name, GFP_KERNEL, nr);
  if (below(2)) return b_.kmem_cache_free_bulk(kCaches[k].name, first, nr);
  for (Handle i = 0; i < nr; ++i)
    add_object({first + i, kCaches[k].size, static_cast<int>(k), kNone});
}

// krealloc() of a kmalloc object to a new small size: the handle follows it.
// The generator does not see results, and a failed krealloc leaves the old
// object: later accesses stay within the smaller of the two sizes.
void Workload::krealloc(std::size_t k) {
  ObjRec& o = objs_[k];
  const std::uint64_t size = 1 + below(2048);
  o.h = b_.krealloc(o.h, size, GFP_KERNEL);
  if (size < o.size) {
    slab_bytes_ -= o.size - size;
    o.size = size;
  }
}

void Workload::add_object(const ObjRec& o) {
  objs_.push_back(o);
  slab_bytes_ += o.size;
}

void Workload::free_object(std::size_t k) {
  const ObjRec o = drop(objs_, k);
  slab_bytes_ -= o.size;
  if (o.pool != kNone)
    b_.mempool_free(pools_[static_cast<std::size_t>(o.pool)].h, o.h);
  else if (o.cache != kNone)
    b_.kmem_cache_free(kCaches[o.cache].name, o.h);
  else if (o.kv)
    b_.kvfree(o.h);
  else if (below(8) == 0)
    b_.kfree_sensitive(o.h);
  else
    b_.kfree(o.h);
}

// What correct kernel code does with its object: write it whole, read it.
void Workload::object_access(std::size_t k) {
  if (objs_[k].cache == kNone && objs_[k].pool == kNone && !objs_[k].kv && below(4) == 0)
    krealloc(k);
  const ObjRec& o = objs_[k];
  b_.write(Space::object, o.h, 0, o.size, static_cast<std::uint8_t>(rng_.next()));
  if (below(2)) b_.read(Space::object, o.h, 0, o.size);
}

// The workload's cache k, created on first use (again after a destroy).
void Workload::ensure_cache(std::size_t k) {
  if (cache_live_[k]) return;
  const CacheSpec& c = kCaches[k];
  b_.kmem_cache_create(c.name, c.size, c.align, c.flags,
                       c.ctor ? std::optional<std::uint8_t>(0x3c) : std::nullopt);
  cache_live_[k] = true;
}

// Destroys a cache once it is empty: its pools and objects go first.
void Workload::destroy_cache(std::size_t k) {
  if (!cache_live_[k]) return;
  for (std::size_t slot = 0; slot < kNrPools; ++slot)
    if (pools_[slot].live && pools_[slot].cache == static_cast<int>(k)) destroy_pool(slot);
  for (std::size_t i = objs_.size(); i-- > 0;)
    if (objs_[i].cache == static_cast<int>(k)) free_object(i);
  b_.kmem_cache_destroy(kCaches[k].name);
  cache_live_[k] = false;
}

// ---- mempools ----

void Workload::pool_step() {
  const std::size_t slot = below(kNrPools);
  PoolRec& p = pools_[slot];
  if (!p.live) return create_pool(slot);
  const std::uint64_t r = below(10);
  if (r < 6) {
    if (slab_bytes_ + p.elem_size > slab_cap_) return;
    return add_object(
        {b_.mempool_alloc(p.h, pick(kPoolGfps)), p.elem_size, kNone, static_cast<int>(slot)});
  }
  if (r < 8) {
    for (std::size_t i = objs_.size(); i-- > 0;)
      if (objs_[i].pool == static_cast<int>(slot)) return free_object(i);
    return;
  }
  if (r < 9) return b_.mempool_resize(p.h, static_cast<int>(1 + below(6)));
  destroy_pool(slot);
}

void Workload::create_pool(std::size_t slot) {
  PoolRec& p = pools_[slot];
  const int min_nr = 1 + static_cast<int>(below(8));
  p = PoolRec{};
  p.live = true;
  switch (below(3)) {
    case 0: {
      const std::size_t k = below(kNrCaches);
      ensure_cache(k);
      p.cache = static_cast<int>(k);
      p.elem_size = kCaches[k].size;
      p.h = b_.mempool_create(min_nr, PoolKind::slab, kCaches[k].name, 0, 0, GFP_KERNEL);
      return;
    }
    case 1:
      p.elem_size = 1 + below(1024);
      p.h = b_.mempool_create(min_nr, PoolKind::kmalloc, "", p.elem_size, 0, GFP_KERNEL);
      return;
    default: {
      const auto order = static_cast<unsigned>(below(3));
      p.elem_size = m_.page_size << order;
      p.h = b_.mempool_create(min_nr, PoolKind::pages, "", 0, order, GFP_KERNEL);
    }
  }
}

// Its elements go back first (mempool_destroy() frees only the reserve).
void Workload::destroy_pool(std::size_t slot) {
  for (std::size_t i = objs_.size(); i-- > 0;)
    if (objs_[i].pool == static_cast<int>(slot)) free_object(i);
  b_.mempool_destroy(pools_[slot].h);
  pools_[slot].live = false;
}

// ---- kernel VM ----

void Workload::vm_step() {
  const std::uint64_t dice = below(100);
  if (dice < 30 || areas_.empty()) return vmalloc();
  if (dice < 55) return free_area(below(areas_.size()));
  if (dice < 65) return vmap();
  if (dice < 85) return area_access();
  if (dice < 92) return ioremap();
  b_.tick();  // kswapd, cache_reap, the lazy vmap purge once due
}

// 1..8 pages, sometimes up to 64, now and then 600 (the page array is
// itself vmalloc'd): every flavour of the vmalloc family.
void Workload::vmalloc() {
  std::uint64_t pages = 1 + below(below(4) == 0 ? 64 : 8);
  if (below(40) == 0) pages = 600;
  if (vm_pages_ + pages > vm_cap_) {
    if (!areas_.empty()) free_area(below(areas_.size()));
    return;
  }
  const std::uint64_t size = pages * m_.page_size - below(m_.page_size);
  const std::uint64_t r = below(12);
  Handle h = 0;
  if (r < 4)
    h = b_.vmalloc(size, VmallocApi::vzalloc, 0, node());
  else if (r < 9)
    h = b_.vmalloc(size, VmallocApi::vmalloc, 0, node());
  else if (r < 10)
    h = b_.vmalloc(size, VmallocApi::vmalloc_32);
  else if (r < 11)
    h = b_.vmalloc(size, VmallocApi::module_alloc);
  else
    h = b_.vmalloc(size, VmallocApi::vmalloc, pick(kVmallocGfps));
  areas_.push_back({h, size, pages, AreaKind::vmalloc});
  vm_pages_ += pages;
}

void Workload::vmap() {
  const std::uint64_t n = 1 + below(8);
  if (vm_pages_ + n > vm_cap_) return;
  areas_.push_back({b_.vmap(n), n * m_.page_size, n, AreaKind::vmap});
  vm_pages_ += n;
}

// A device's registers, at most 16 pages of them, by every ioremap flavour.
void Workload::ioremap() {
  if (m_.devices.empty()) return b_.tick();
  const auto [start, end] = m_.devices[below(m_.devices.size())];
  const std::uint64_t span = std::min(end - start, 16 * m_.page_size);
  if (span < 4) return b_.tick();  // a machine file's odd device: no register to map
  const std::uint64_t off = 4 * below(span / 4);
  const std::uint64_t size = 1 + below(std::min(span - off, 4 * m_.page_size));
  const auto api = static_cast<IoremapApi>(below(3));
  areas_.push_back({b_.ioremap(start + off, size, api), size, 0, AreaKind::ioremap});
}

void Workload::free_area(std::size_t k) {
  const AreaRec a = drop(areas_, k);
  vm_pages_ -= a.pages;
  switch (a.kind) {
    case AreaKind::vmalloc:
      return b_.vfree(a.h);
    case AreaKind::vmap:
      return b_.vunmap(a.h);
    case AreaKind::ioremap:
      return b_.iounmap(a.h);
  }
}

// A client write through the page tables, read back (RAM areas: the io
// accessors are not ops).
void Workload::area_access() {
  const std::size_t n = areas_.size();
  const std::size_t k0 = below(n);
  for (std::size_t i = 0; i < n; ++i) {
    const AreaRec& a = areas_[(k0 + i) % n];
    if (a.kind == AreaKind::ioremap) continue;
    const std::uint64_t off = below(a.size);
    const std::uint64_t len = 1 + below(std::min<std::uint64_t>(a.size - off, 256));
    b_.write(Space::area, a.h, off, len, static_cast<std::uint8_t>(rng_.next()));
    b_.read(Space::area, a.h, off, len);
    return;
  }
  vmalloc();
}

// Everything goes back: objects, pools, caches, areas, pages, then the pcp
// lists.
void Workload::teardown() {
  while (!objs_.empty()) free_object(objs_.size() - 1);
  for (std::size_t slot = 0; slot < kNrPools; ++slot)
    if (pools_[slot].live) destroy_pool(slot);
  for (std::size_t k = 0; k < kNrCaches; ++k)
    if (cache_live_[k]) destroy_cache(k);
  while (!areas_.empty()) free_area(areas_.size() - 1);
  while (!pages_.empty()) free_page(pages_.size() - 1);
  b_.drain_all_pages();
}

}  // namespace

Program generate_workload(const WorkloadSpec& spec, const MachineFacts& m) {
  return Workload(spec, m).run();
}

}  // namespace mmfuzz::prog
