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

using Handle = std::uint64_t;

inline constexpr Handle kPageHandleStride = 4096;

// vmalloc flavours (Op byte of OpKind::vmalloc) and ioremap flavours.
enum class VmallocApi : std::uint8_t { vmalloc, vzalloc, vmalloc_32, module_alloc };
enum class IoremapApi : std::uint8_t { ioremap, ioremap_wc, ioremap_np };
enum class PoolKind : std::uint8_t { slab, kmalloc, pages };

class ProgramBuilder {
 public:
  ProgramBuilder() = default;

  // The CPU the following ops run on (smp_processor_id()).
  void set_cpu(int cpu) { cpu_ = static_cast<std::int16_t>(cpu); }

  // page allocator
  Handle alloc_pages(unsigned order, std::uint32_t gfp, int node = -1);
  void free_pages(Handle page, unsigned order);
  void split_page(Handle page);
  // slab
  Handle kmalloc(std::uint64_t size, std::uint32_t gfp, int node = -1);
  void kfree(Handle obj);  // 0: kfree(NULL)
  void kmem_cache_create(std::string_view name, std::uint64_t size, std::uint64_t align,
                         std::uint32_t slab_flags, std::optional<std::uint8_t> ctor_fill = {});
  Handle kmem_cache_alloc(std::string_view name, std::uint32_t gfp, int node = -1);
  void kmem_cache_free(std::string_view name, Handle obj);
  void kmem_cache_shrink(std::string_view name);
  void kmem_cache_destroy(std::string_view name);
  // mempool: kind slab names a cache, kmalloc an element size, pages an order
  Handle mempool_create(int min_nr, PoolKind kind, std::string_view cache, std::uint64_t size,
                        unsigned order, std::uint32_t gfp);
  Handle mempool_alloc(Handle pool, std::uint32_t gfp);
  void mempool_free(Handle pool, Handle obj);
  void mempool_destroy(Handle pool);
  // kernel VM
  Handle vmalloc(std::uint64_t size, VmallocApi api = VmallocApi::vmalloc, std::uint32_t gfp = 0,
                 int node = -1);
  void vfree(Handle area);
  Handle vmap(std::uint64_t nr_pages);
  void vunmap(Handle area);
  Handle ioremap(std::uint64_t phys, std::uint64_t size, IoremapApi api = IoremapApi::ioremap);
  void iounmap(Handle area);
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
  Op& push(OpKind k);
  Program p_;
  std::int16_t cpu_ = 0;
  Handle next_object_ = 1, next_page_ = kPageHandleStride, next_area_ = 1, next_pool_ = 1;
};

}  // namespace mmfuzz::prog
