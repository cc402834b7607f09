#include "program/build.h"

#include "mm/page_alloc/gfp.h"

namespace mmfuzz::prog {

namespace {
std::uint8_t u8(unsigned v) {
  return static_cast<std::uint8_t>(v);
}
}  // namespace

void ProgramBuilder::push(OpArgs a) {
  p_.ops.push_back(Op{.args = a, .cpu = cpu_});
}

void ProgramBuilder::set_call_site(std::string_view caller) {
  p_.ops.back().call_site = p_.strings.intern(caller);
}

Handle ProgramBuilder::fresh_page() {
  const Handle h = next_page_;
  next_page_ += kPageHandleStride;
  return h;
}

// ---- page allocator ----

Handle ProgramBuilder::alloc_pages(unsigned order, std::uint32_t gfp, int node) {
  const Handle h = fresh_page();
  push(AllocPages{.page = h, .order = u8(order), .gfp = gfp, .node = node});
  return h;
}

void ProgramBuilder::free_pages(Handle page, unsigned order) {
  push(FreePages{.page = page, .order = u8(order)});
}

void ProgramBuilder::free_pages_addr(Handle page, unsigned order) {
  push(FreePages{.page = page, .order = u8(order), .by_addr = true});
}

void ProgramBuilder::split_page(Handle page) {
  push(SplitPage{page});
}

void ProgramBuilder::get_page(Handle page) {
  push(GetPage{page});
}

void ProgramBuilder::put_page(Handle page) {
  push(PutPage{page});
}

Handle ProgramBuilder::alloc_pages_exact(std::uint64_t size, std::uint32_t gfp) {
  const Handle h = fresh_page();
  push(AllocPagesExact{.page = h, .size = size, .gfp = gfp});
  return h;
}

void ProgramBuilder::free_pages_exact(Handle page, std::uint64_t size) {
  push(FreePagesExact{.page = page, .size = size});
}

void ProgramBuilder::kmap(Handle page) {
  push(Kmap{page, KmapApi::kmap});
}
void ProgramBuilder::kunmap(Handle page) {
  push(Kunmap{page, KunmapApi::kunmap});
}
void ProgramBuilder::kmap_atomic(Handle page) {
  push(Kmap{page, KmapApi::kmap_atomic});
}
void ProgramBuilder::kunmap_atomic(Handle page) {
  push(Kunmap{page, KunmapApi::kunmap_atomic});
}
void ProgramBuilder::kmap_local_page(Handle page) {
  push(Kmap{page, KmapApi::kmap_local_page});
}
void ProgramBuilder::kunmap_local(Handle page) {
  push(Kunmap{page, KunmapApi::kunmap_local});
}

// ---- slab ----

Handle ProgramBuilder::kmalloc(std::uint64_t size, std::uint32_t gfp, int node) {
  const Handle h = next_object_++;
  push(Kmalloc{.obj = h, .size = size, .gfp = gfp, .node = node});
  return h;
}

void ProgramBuilder::kfree(Handle obj) {
  push(Kfree{obj});
}

void ProgramBuilder::kfree_sensitive(Handle obj) {
  push(KfreeSensitive{obj});
}

Handle ProgramBuilder::krealloc(Handle obj, std::uint64_t new_size, std::uint32_t gfp) {
  if (!obj) obj = next_object_++;
  push(Krealloc{.obj = obj, .new_size = new_size, .gfp = gfp});
  return obj;
}

Handle ProgramBuilder::kvmalloc(std::uint64_t size, std::uint32_t gfp, int node) {
  const Handle h = next_object_++;
  push(Kvmalloc{.obj = h, .size = size, .gfp = gfp, .node = node});
  return h;
}

Handle ProgramBuilder::kvzalloc(std::uint64_t size, std::uint32_t gfp, int node) {
  return kvmalloc(size, gfp | mm::__GFP_ZERO, node);
}

void ProgramBuilder::kvfree(Handle obj) {
  push(Kvfree{obj});
}

void ProgramBuilder::kmem_cache_create(std::string_view name, std::uint64_t size,
                                       std::uint64_t align, std::uint32_t slab_flags,
                                       std::optional<std::uint8_t> ctor_fill) {
  push(KmemCacheCreate{.name = p_.strings.intern(name),
                       .flags = slab_flags,
                       .size = size,
                       .align = align,
                       .ctor = ctor_fill.has_value(),
                       .ctor_fill = ctor_fill.value_or(0)});
}

Handle ProgramBuilder::kmem_cache_alloc(std::string_view name, std::uint32_t gfp, int node) {
  const Handle h = next_object_++;
  push(KmemCacheAlloc{.obj = h, .name = p_.strings.intern(name), .gfp = gfp, .node = node});
  return h;
}

void ProgramBuilder::kmem_cache_free(std::string_view name, Handle obj) {
  push(KmemCacheFree{.obj = obj, .name = p_.strings.intern(name)});
}

Handle ProgramBuilder::kmem_cache_alloc_bulk(std::string_view name, std::uint32_t gfp,
                                             std::uint32_t nr) {
  const Handle first = next_object_;
  next_object_ += nr ? nr : 1;
  push(KmemCacheAllocBulk{.obj = first, .name = p_.strings.intern(name), .gfp = gfp, .nr = nr});
  return first;
}

void ProgramBuilder::kmem_cache_free_bulk(std::string_view name, Handle first, std::uint32_t nr) {
  push(KmemCacheFreeBulk{.obj = first, .name = p_.strings.intern(name), .nr = nr});
}

void ProgramBuilder::kmem_cache_shrink(std::string_view name) {
  push(KmemCacheShrink{p_.strings.intern(name)});
}

void ProgramBuilder::kmem_cache_destroy(std::string_view name) {
  push(KmemCacheDestroy{p_.strings.intern(name)});
}

// ---- mempool ----

Handle ProgramBuilder::mempool_create(int min_nr, PoolKind kind, std::string_view cache,
                                      std::uint64_t size, unsigned order, std::uint32_t gfp) {
  const Handle h = next_pool_++;
  push(MempoolCreate{.pool = h,
                     .min_nr = min_nr < 0 ? 0 : min_nr,
                     .kind = kind,
                     .order = u8(order),
                     .name = p_.strings.intern(cache),
                     .gfp = gfp,
                     .size = size});
  return h;
}

Handle ProgramBuilder::mempool_alloc(Handle pool, std::uint32_t gfp) {
  const Handle h = next_object_++;
  push(MempoolAlloc{.obj = h, .pool = pool, .gfp = gfp});
  return h;
}

void ProgramBuilder::mempool_free(Handle pool, Handle obj) {
  push(MempoolFree{.obj = obj, .pool = pool});
}

void ProgramBuilder::mempool_resize(Handle pool, int new_min_nr) {
  push(MempoolResize{.pool = pool, .new_min_nr = new_min_nr});
}

void ProgramBuilder::mempool_destroy(Handle pool) {
  push(MempoolDestroy{pool});
}

// ---- kernel VM ----

Handle ProgramBuilder::vmalloc(std::uint64_t size, VmallocApi api, std::uint32_t gfp, int node) {
  const Handle h = next_area_++;
  push(Vmalloc{.area = h, .size = size, .api = api, .gfp = gfp, .node = node});
  return h;
}

void ProgramBuilder::vfree(Handle area) {
  push(Vfree{area});
}

Handle ProgramBuilder::vmap(std::uint64_t nr_pages) {
  const Handle h = next_area_++;
  push(Vmap{.area = h, .nr_pages = nr_pages});
  return h;
}

void ProgramBuilder::vunmap(Handle area) {
  push(Vunmap{area});
}

Handle ProgramBuilder::ioremap(std::uint64_t phys, std::uint64_t size, IoremapApi api) {
  const Handle h = next_area_++;
  push(Ioremap{.area = h, .phys = phys, .size = size, .api = api});
  return h;
}

void ProgramBuilder::iounmap(Handle area) {
  push(Iounmap{area});
}

void ProgramBuilder::io_read(Handle area, std::uint64_t offset, IoReadApi api) {
  push(IoRead{.area = area, .offset = offset, .api = api});
}

void ProgramBuilder::io_write(Handle area, std::uint64_t offset, std::uint32_t value,
                              IoWriteApi api) {
  push(IoWrite{.area = area, .offset = offset, .value = value, .api = api});
}

void ProgramBuilder::readb(Handle area, std::uint64_t offset) {
  io_read(area, offset, IoReadApi::readb);
}
void ProgramBuilder::readw(Handle area, std::uint64_t offset) {
  io_read(area, offset, IoReadApi::readw);
}
void ProgramBuilder::readl(Handle area, std::uint64_t offset) {
  io_read(area, offset, IoReadApi::readl);
}
void ProgramBuilder::ioread8(Handle area, std::uint64_t offset) {
  io_read(area, offset, IoReadApi::ioread8);
}
void ProgramBuilder::ioread16(Handle area, std::uint64_t offset) {
  io_read(area, offset, IoReadApi::ioread16);
}
void ProgramBuilder::ioread32(Handle area, std::uint64_t offset) {
  io_read(area, offset, IoReadApi::ioread32);
}
void ProgramBuilder::writeb(Handle area, std::uint64_t offset, std::uint8_t value) {
  io_write(area, offset, value, IoWriteApi::writeb);
}
void ProgramBuilder::writew(Handle area, std::uint64_t offset, std::uint16_t value) {
  io_write(area, offset, value, IoWriteApi::writew);
}
void ProgramBuilder::writel(Handle area, std::uint64_t offset, std::uint32_t value) {
  io_write(area, offset, value, IoWriteApi::writel);
}
void ProgramBuilder::iowrite8(Handle area, std::uint64_t offset, std::uint8_t value) {
  io_write(area, offset, value, IoWriteApi::iowrite8);
}
void ProgramBuilder::iowrite16(Handle area, std::uint64_t offset, std::uint16_t value) {
  io_write(area, offset, value, IoWriteApi::iowrite16);
}
void ProgramBuilder::iowrite32(Handle area, std::uint64_t offset, std::uint32_t value) {
  io_write(area, offset, value, IoWriteApi::iowrite32);
}

// ---- client accesses, machine ----

void ProgramBuilder::write(Space space, Handle h, std::uint64_t offset, std::uint64_t len,
                           std::uint8_t byte) {
  push(Write{.h = h, .offset = offset, .len = len, .space = space, .byte = byte});
}

void ProgramBuilder::read(Space space, Handle h, std::uint64_t offset, std::uint64_t len) {
  push(Read{.h = h, .offset = offset, .len = len, .space = space});
}

void ProgramBuilder::tick() {
  push(Tick{});
}

void ProgramBuilder::drain_all_pages() {
  push(DrainAllPages{});
}

void ProgramBuilder::check() {
  push(Check{});
}

}  // namespace mmfuzz::prog
