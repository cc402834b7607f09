// ProgramBuilder: how generators write Programs (mmfuzz workload, the
// RapidCheck properties, tests). One method per op, named as the kernel
// names the call; allocating methods return a fresh handle of their space,
// so callers never fill Op fields or pick handle numbers themselves.
//
// Handles are numbered per space from 1. Page handles step by
// kPageHandleStride so that split_page's tail pages (h+1 .. h+2^order-1)
// never collide with another allocation's handle.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "program/program.h"

namespace mmfuzz::prog {

// Handle, VmallocApi, IoremapApi and PoolKind are in program/ops.h.
inline constexpr Handle kPageHandleStride = 4096;

class ProgramBuilder {
 public:
  ProgramBuilder() = default;

  // The CPU the following ops run on (smp_processor_id()).
  void set_cpu(int cpu) { cpu_ = static_cast<std::int16_t>(cpu); }
  // The caller the last op names (provenance only). The text form carries it
  // on kmalloc, kfree, kmem_cache_alloc and kmem_cache_free lines: set it on
  // those, or the Program does not read back equal.
  void set_call_site(std::string_view caller);

  // page allocator
  Handle alloc_pages(unsigned order, std::uint32_t gfp, int node = -1);
  void free_pages(Handle page, unsigned order);
  void split_page(Handle page);
  void free_pages_addr(Handle page, unsigned order);  // free_pages(page_address(page), order)
  void get_page(Handle page);
  void put_page(Handle page);  // the last reference frees the page
  Handle alloc_pages_exact(std::uint64_t size, std::uint32_t gfp);
  void free_pages_exact(Handle page, std::uint64_t size);
  void kmap(Handle page);
  void kunmap(Handle page);
  void kmap_atomic(Handle page);
  void kunmap_atomic(Handle page);  // kunmap_atomic(page_address(page))
  void kmap_local_page(Handle page);
  void kunmap_local(Handle page);  // kunmap_local(page_address(page))
  // slab
  Handle kmalloc(std::uint64_t size, std::uint32_t gfp, int node = -1);
  void kfree(Handle obj);  // 0: kfree(NULL)
  void kfree_sensitive(Handle obj);
  // obj = krealloc(obj, new_size, gfp); obj 0: krealloc(NULL) on a fresh
  // handle. Returns the handle.
  Handle krealloc(Handle obj, std::uint64_t new_size, std::uint32_t gfp);
  Handle kvmalloc(std::uint64_t size, std::uint32_t gfp, int node = -1);
  Handle kvzalloc(std::uint64_t size, std::uint32_t gfp, int node = -1);  // gfp | __GFP_ZERO
  void kvfree(Handle obj);
  void kmem_cache_create(std::string_view name, std::uint64_t size, std::uint64_t align,
                         std::uint32_t slab_flags, std::optional<std::uint8_t> ctor_fill = {});
  Handle kmem_cache_alloc(std::string_view name, std::uint32_t gfp, int node = -1);
  void kmem_cache_free(std::string_view name, Handle obj);
  // The handles first .. first+nr-1 (the first returned).
  Handle kmem_cache_alloc_bulk(std::string_view name, std::uint32_t gfp, std::uint32_t nr);
  void kmem_cache_free_bulk(std::string_view name, Handle first, std::uint32_t nr);
  void kmem_cache_shrink(std::string_view name);
  void kmem_cache_destroy(std::string_view name);
  // mempool: kind slab names a cache, kmalloc an element size, pages an order
  Handle mempool_create(int min_nr, PoolKind kind, std::string_view cache, std::uint64_t size,
                        unsigned order, std::uint32_t gfp);
  Handle mempool_alloc(Handle pool, std::uint32_t gfp);
  void mempool_free(Handle pool, Handle obj);
  void mempool_resize(Handle pool, int new_min_nr);
  void mempool_destroy(Handle pool);
  // kernel VM
  Handle vmalloc(std::uint64_t size, VmallocApi api = VmallocApi::vmalloc, std::uint32_t gfp = 0,
                 int node = -1);
  void vfree(Handle area);
  Handle vmap(std::uint64_t nr_pages);
  void vunmap(Handle area);
  Handle ioremap(std::uint64_t phys, std::uint64_t size, IoremapApi api = IoremapApi::ioremap);
  void iounmap(Handle area);
  // io accessors at area + offset
  void readb(Handle area, std::uint64_t offset);
  void readw(Handle area, std::uint64_t offset);
  void readl(Handle area, std::uint64_t offset);
  void ioread8(Handle area, std::uint64_t offset);
  void ioread16(Handle area, std::uint64_t offset);
  void ioread32(Handle area, std::uint64_t offset);
  void writeb(Handle area, std::uint64_t offset, std::uint8_t value);
  void writew(Handle area, std::uint64_t offset, std::uint16_t value);
  void writel(Handle area, std::uint64_t offset, std::uint32_t value);
  void iowrite8(Handle area, std::uint64_t offset, std::uint8_t value);
  void iowrite16(Handle area, std::uint64_t offset, std::uint16_t value);
  void iowrite32(Handle area, std::uint64_t offset, std::uint32_t value);
  // client accesses of an object's, page's or area's bytes
  void write(Space space, Handle h, std::uint64_t offset, std::uint64_t len, std::uint8_t byte);
  void read(Space space, Handle h, std::uint64_t offset, std::uint64_t len);
  // machine
  void tick();
  void drain_all_pages();
  void check();

  const Op& last() const { return p_.ops.back(); }
  const Program& program() const { return p_; }
  Program take() { return std::move(p_); }

 private:
  void push(OpArgs a);
  Handle fresh_page();
  void io_read(Handle area, std::uint64_t offset, IoReadApi api);
  void io_write(Handle area, std::uint64_t offset, std::uint32_t value, IoWriteApi api);
  Program p_;
  std::int16_t cpu_ = 0;
  Handle next_object_ = 1, next_page_ = kPageHandleStride, next_area_ = 1, next_pool_ = 1;
};

}  // namespace mmfuzz::prog
