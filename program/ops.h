// The arguments of each op kind, one struct per kernel call, named as the
// call. An Op (program.h) holds one of them in a std::variant beside its
// provenance; OpKind is the variant's index.
//
// Field names follow conventions generic code relies on (the fuzz mutator's
// cross-over, Program equality): handles are `obj` (object space), `page`
// (page space), `area` (area space) or `pool`; client accesses name theirs
// `h` with a `space`; a cache name is `name` (an interned string id).
// Everything here is trivially copyable: replay copies millions of Ops.
#pragma once

#include <cstdint>
#include <type_traits>
#include <variant>

namespace mmfuzz::prog {

using Handle = std::uint64_t;
using StrId = std::uint32_t;  // an interned string (StringTable); 0: none
using Gfp = std::uint32_t;    // a GFP mask (mm::gfp_t)

// Handle spaces for write/read (Write::space, Read::space).
enum class Space : std::uint8_t { object, page, area };

// The flavours of a call family that share one op.
enum class VmallocApi : std::uint8_t { vmalloc, vzalloc, vmalloc_32, module_alloc };
enum class IoremapApi : std::uint8_t { ioremap, ioremap_wc, ioremap_np };
enum class PoolKind : std::uint8_t { slab, kmalloc, pages };
enum class KmapApi : std::uint8_t { kmap, kmap_atomic, kmap_local_page };
enum class KunmapApi : std::uint8_t { kunmap, kunmap_atomic, kunmap_local };  // pairs KmapApi
enum class IoReadApi : std::uint8_t { readb, readw, readl, ioread8, ioread16, ioread32 };
enum class IoWriteApi : std::uint8_t { writeb, writew, writel, iowrite8, iowrite16, iowrite32 };
// Bytes an io accessor moves (IoReadApi and IoWriteApi share the order).
inline unsigned io_width(std::uint8_t api) {
  static constexpr unsigned kWidth[] = {1, 2, 4, 1, 2, 4};
  return kWidth[api % 6];
}

// ---- page allocator ----
// alloc_pages(gfp, order) / alloc_pages_node(node, gfp, order).
struct AllocPages {
  Handle page = 0;  // 0: the trace saw it fail
  std::uint8_t order = 0;
  std::int8_t expect_mt = -1;  // the migratetype the trace saw (-1: unknown)
  Gfp gfp = 0;
  std::int32_t node = -1;
  bool operator==(const AllocPages&) const = default;
};
// __free_pages(page, order), or free_pages(page_address(page), order).
struct FreePages {
  Handle page = 0;
  std::uint8_t order = 0;
  bool by_addr = false;
  bool operator==(const FreePages&) const = default;
};
// split_page(page, order of the allocation): handles page+1 .. page+2^order-1
// then name the tail pages.
struct SplitPage {
  Handle page = 0;
  bool operator==(const SplitPage&) const = default;
};
struct GetPage {
  Handle page = 0;
  bool operator==(const GetPage&) const = default;
};
// put_page(): dropping the last reference frees the page.
struct PutPage {
  Handle page = 0;
  bool operator==(const PutPage&) const = default;
};
// alloc_pages_exact(size, gfp): the handle names the first page.
struct AllocPagesExact {
  Handle page = 0;
  std::uint64_t size = 0;
  Gfp gfp = 0;
  bool operator==(const AllocPagesExact&) const = default;
};
struct FreePagesExact {
  Handle page = 0;
  std::uint64_t size = 0;
  bool operator==(const FreePagesExact&) const = default;
};
// kmap(page) / kmap_atomic(page) / kmap_local_page(page).
struct Kmap {
  Handle page = 0;
  KmapApi api = KmapApi::kmap;
  bool operator==(const Kmap&) const = default;
};
// kunmap(page) / kunmap_atomic(addr) / kunmap_local(addr), addr the page's.
struct Kunmap {
  Handle page = 0;
  KunmapApi api = KunmapApi::kunmap;
  bool operator==(const Kunmap&) const = default;
};

// ---- slab ----
// kmalloc(size, gfp) / kmalloc_node(size, gfp, node).
struct Kmalloc {
  Handle obj = 0;  // 0: the trace saw it fail
  std::uint64_t size = 0;
  Gfp gfp = 0;
  std::int32_t node = -1;
  std::uint64_t expect_bytes_alloc = 0;  // what the trace saw (0: unknown)
  bool operator==(const Kmalloc&) const = default;
};
struct Kfree {
  Handle obj = 0;  // 0: kfree(NULL)
  bool operator==(const Kfree&) const = default;
};
// kfree(obj) after zeroing its ksize() bytes.
struct KfreeSensitive {
  Handle obj = 0;
  bool operator==(const KfreeSensitive&) const = default;
};
// obj = krealloc(obj, new_size, gfp): an unbound handle is krealloc(NULL),
// which allocates; new_size 0 frees. On failure the handle keeps the old
// object, as `new = krealloc(p, ...); if (new) p = new;` does.
struct Krealloc {
  Handle obj = 0;
  std::uint64_t new_size = 0;
  Gfp gfp = 0;
  bool operator==(const Krealloc&) const = default;
};
struct KmemCacheCreate {
  StrId name = 0;
  std::uint32_t flags = 0;  // SLAB_* flags
  std::uint64_t size = 0;
  std::uint64_t align = 0;
  bool ctor = false;           // a constructor, filling objects with ctor_fill
  std::uint8_t ctor_fill = 0;  // (the model's stand-in for what a constructor does)
  bool operator==(const KmemCacheCreate&) const = default;
};
// kmem_cache_alloc(cache, gfp) / kmem_cache_alloc_node(cache, gfp, node).
struct KmemCacheAlloc {
  Handle obj = 0;  // 0: the trace saw it fail
  StrId name = 0;
  Gfp gfp = 0;
  std::int32_t node = -1;
  std::uint64_t bytes_req = 0;           // as traced: the cache decides the size
  std::uint64_t expect_bytes_alloc = 0;  // what the trace saw (0: unknown)
  bool operator==(const KmemCacheAlloc&) const = default;
};
// kmem_cache_free(cache, obj); no name: the cache the object came from.
struct KmemCacheFree {
  Handle obj = 0;
  StrId name = 0;
  bool operator==(const KmemCacheFree&) const = default;
};
// kmem_cache_alloc_bulk(cache, gfp, nr, p): handles obj .. obj+nr-1.
struct KmemCacheAllocBulk {
  Handle obj = 0;
  StrId name = 0;
  Gfp gfp = 0;
  std::uint32_t nr = 0;
  bool operator==(const KmemCacheAllocBulk&) const = default;
};
// kmem_cache_free_bulk(cache, nr, p): handles obj .. obj+nr-1.
struct KmemCacheFreeBulk {
  Handle obj = 0;
  StrId name = 0;
  std::uint32_t nr = 0;
  bool operator==(const KmemCacheFreeBulk&) const = default;
};
struct KmemCacheShrink {
  StrId name = 0;
  bool operator==(const KmemCacheShrink&) const = default;
};
struct KmemCacheDestroy {
  StrId name = 0;
  bool operator==(const KmemCacheDestroy&) const = default;
};
// kvmalloc_node(size, gfp, node) (kvzalloc: gfp with __GFP_ZERO): a
// linear-map or a vmalloc address.
struct Kvmalloc {
  Handle obj = 0;
  std::uint64_t size = 0;
  Gfp gfp = 0;
  std::int32_t node = -1;
  bool operator==(const Kvmalloc&) const = default;
};
struct Kvfree {
  Handle obj = 0;
  bool operator==(const Kvfree&) const = default;
};

// ---- mempool (mm/mempool.c) ----
// kind slab names a cache, kmalloc an element size, pages an order.
struct MempoolCreate {
  Handle pool = 0;
  std::int32_t min_nr = 0;
  PoolKind kind = PoolKind::slab;
  std::uint8_t order = 0;
  StrId name = 0;
  Gfp gfp = 0;
  std::uint64_t size = 0;
  bool operator==(const MempoolCreate&) const = default;
};
// A blocking gfp on an empty pool sleeps: obj is bound when a later
// mempool_free() hands the sleeper an element.
struct MempoolAlloc {
  Handle obj = 0;
  Handle pool = 0;
  Gfp gfp = 0;
  bool operator==(const MempoolAlloc&) const = default;
};
struct MempoolFree {
  Handle obj = 0;
  Handle pool = 0;
  bool operator==(const MempoolFree&) const = default;
};
struct MempoolResize {
  Handle pool = 0;
  std::int32_t new_min_nr = 0;
  bool operator==(const MempoolResize&) const = default;
};
struct MempoolDestroy {
  Handle pool = 0;
  bool operator==(const MempoolDestroy&) const = default;
};

// ---- kernel VM ----
// The vmalloc family; gfp (only __vmalloc takes one) and node when set.
struct Vmalloc {
  Handle area = 0;
  std::uint64_t size = 0;
  VmallocApi api = VmallocApi::vmalloc;
  Gfp gfp = 0;
  std::int32_t node = -1;
  bool operator==(const Vmalloc&) const = default;
};
struct Vfree {
  Handle area = 0;
  bool operator==(const Vfree&) const = default;
};
// Allocates nr_pages pages, then vmap()s them.
struct Vmap {
  Handle area = 0;
  std::uint64_t nr_pages = 0;
  bool operator==(const Vmap&) const = default;
};
// vunmap(), then frees the vmap op's pages.
struct Vunmap {
  Handle area = 0;
  bool operator==(const Vunmap&) const = default;
};
struct Ioremap {
  Handle area = 0;
  std::uint64_t phys = 0;
  std::uint64_t size = 0;
  IoremapApi api = IoremapApi::ioremap;
  bool operator==(const Ioremap&) const = default;
};
struct Iounmap {
  Handle area = 0;
  bool operator==(const Iounmap&) const = default;
};
// readb/readw/readl, ioread8/16/32 at area + offset.
struct IoRead {
  Handle area = 0;
  std::uint64_t offset = 0;
  IoReadApi api = IoReadApi::readl;
  bool operator==(const IoRead&) const = default;
};
// writeb/writew/writel, iowrite8/16/32 of value at area + offset.
struct IoWrite {
  Handle area = 0;
  std::uint64_t offset = 0;
  std::uint32_t value = 0;
  IoWriteApi api = IoWriteApi::writel;
  bool operator==(const IoWrite&) const = default;
};

// ---- client accesses of an object's, page's or area's bytes (through the
// page tables for areas) ----
struct Write {
  Handle h = 0;
  std::uint64_t offset = 0;
  std::uint64_t len = 0;
  Space space = Space::object;
  std::uint8_t byte = 0;  // the value written
  bool operator==(const Write&) const = default;
};
struct Read {
  Handle h = 0;
  std::uint64_t offset = 0;
  std::uint64_t len = 0;
  Space space = Space::object;
  bool operator==(const Read&) const = default;
};

// ---- machine ----
struct Tick {  // a timer tick: kswapd, cache_reap, lazy vmap purge
  bool operator==(const Tick&) const = default;
};
struct DrainAllPages {  // the pcp lists back to the buddy lists
  bool operator==(const DrainAllPages&) const = default;
};
struct Check {  // a full invariant sweep now
  bool operator==(const Check&) const = default;
};

// The kinds, in the order of OpArgs. The first 25 keep the numbers they had
// before the typed arguments (the fuzz byte format picks kinds in this
// order); new kinds are appended.
enum class OpKind : std::uint8_t {
  alloc_pages,
  free_pages,
  split_page,
  kmalloc,
  kfree,
  kmem_cache_create,
  kmem_cache_alloc,
  kmem_cache_free,
  kmem_cache_shrink,
  kmem_cache_destroy,
  mempool_create,
  mempool_alloc,
  mempool_free,
  mempool_destroy,
  vmalloc,
  vfree,
  vmap,
  vunmap,
  ioremap,
  iounmap,
  write,
  read,
  tick,
  drain_all_pages,
  check,
  get_page,
  put_page,
  alloc_pages_exact,
  free_pages_exact,
  kmap,
  kunmap,
  krealloc,
  kfree_sensitive,
  kmem_cache_alloc_bulk,
  kmem_cache_free_bulk,
  mempool_resize,
  kvmalloc,
  kvfree,
  ioread,
  iowrite,
};
inline constexpr int kNrOpKinds = static_cast<int>(OpKind::iowrite) + 1;

using OpArgs =
    std::variant<AllocPages, FreePages, SplitPage, Kmalloc, Kfree, KmemCacheCreate, KmemCacheAlloc,
                 KmemCacheFree, KmemCacheShrink, KmemCacheDestroy, MempoolCreate, MempoolAlloc,
                 MempoolFree, MempoolDestroy, Vmalloc, Vfree, Vmap, Vunmap, Ioremap, Iounmap, Write,
                 Read, Tick, DrainAllPages, Check, GetPage, PutPage, AllocPagesExact,
                 FreePagesExact, Kmap, Kunmap, Krealloc, KfreeSensitive, KmemCacheAllocBulk,
                 KmemCacheFreeBulk, MempoolResize, Kvmalloc, Kvfree, IoRead, IoWrite>;

namespace detail {
template <class T, class V>
struct IndexOf;
template <class T, class... Ts>
struct IndexOf<T, std::variant<Ts...>> {
  static constexpr std::size_t value = [] {
    constexpr bool same[] = {std::is_same_v<T, Ts>...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i)
      if (same[i]) return i;
    return sizeof...(Ts);
  }();
};
}  // namespace detail

// The OpKind of an argument struct.
template <class T>
inline constexpr OpKind kind_of = static_cast<OpKind>(detail::IndexOf<T, OpArgs>::value);

static_assert(std::variant_size_v<OpArgs> == kNrOpKinds);
static_assert(std::is_trivially_copyable_v<OpArgs>);
static_assert(kind_of<Check> == OpKind::check && kind_of<Tick> == OpKind::tick);
static_assert(kind_of<Write> == OpKind::write && kind_of<Vmalloc> == OpKind::vmalloc);
static_assert(kind_of<MempoolCreate> == OpKind::mempool_create);
static_assert(kind_of<Kunmap> == OpKind::kunmap && kind_of<Krealloc> == OpKind::krealloc);
static_assert(kind_of<IoWrite> == OpKind::iowrite && kind_of<Kvmalloc> == OpKind::kvmalloc);

}  // namespace mmfuzz::prog
