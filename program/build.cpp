#include "program/build.h"

namespace mmfuzz::prog {

Op& ProgramBuilder::push(OpKind k) {
  Op& op = p_.ops.emplace_back();
  op.kind = k;
  op.cpu = cpu_;
  return op;
}

Handle ProgramBuilder::alloc_pages(unsigned order, std::uint32_t gfp, int node) {
  Op& op = push(OpKind::alloc_pages);
  op.h = next_page_;
  next_page_ += kPageHandleStride;
  op.order = static_cast<std::uint8_t>(order);
  op.gfp = gfp;
  op.node = node;
  return op.h;
}

void ProgramBuilder::free_pages(Handle page, unsigned order) {
  Op& op = push(OpKind::free_pages);
  op.h = page;
  op.order = static_cast<std::uint8_t>(order);
}

void ProgramBuilder::split_page(Handle page) {
  push(OpKind::split_page).h = page;
}

Handle ProgramBuilder::kmalloc(std::uint64_t size, std::uint32_t gfp, int node) {
  Op& op = push(OpKind::kmalloc);
  op.h = next_object_++;
  op.size = size;
  op.gfp = gfp;
  op.node = node;
  return op.h;
}

void ProgramBuilder::kfree(Handle obj) {
  push(OpKind::kfree).h = obj;
}

void ProgramBuilder::kmem_cache_create(std::string_view name, std::uint64_t size,
                                       std::uint64_t align, std::uint32_t slab_flags,
                                       std::optional<std::uint8_t> ctor_fill) {
  Op& op = push(OpKind::kmem_cache_create);
  op.name = p_.strings.intern(name);
  op.size = size;
  op.arg = align;
  op.flags = slab_flags;
  if (ctor_fill) {
    op.flags2 |= kCtorFlag;
    op.byte = *ctor_fill;
  }
}

Handle ProgramBuilder::kmem_cache_alloc(std::string_view name, std::uint32_t gfp, int node) {
  Op& op = push(OpKind::kmem_cache_alloc);
  op.h = next_object_++;
  op.name = p_.strings.intern(name);
  op.gfp = gfp;
  op.node = node;
  return op.h;
}

void ProgramBuilder::kmem_cache_free(std::string_view name, Handle obj) {
  Op& op = push(OpKind::kmem_cache_free);
  op.h = obj;
  op.name = p_.strings.intern(name);
}

void ProgramBuilder::kmem_cache_shrink(std::string_view name) {
  push(OpKind::kmem_cache_shrink).name = p_.strings.intern(name);
}

void ProgramBuilder::kmem_cache_destroy(std::string_view name) {
  push(OpKind::kmem_cache_destroy).name = p_.strings.intern(name);
}

Handle ProgramBuilder::mempool_create(int min_nr, PoolKind kind, std::string_view cache,
                                      std::uint64_t size, unsigned order, std::uint32_t gfp) {
  Op& op = push(OpKind::mempool_create);
  op.h2 = next_pool_++;
  op.arg = static_cast<std::uint64_t>(min_nr < 0 ? 0 : min_nr);
  op.byte = static_cast<std::uint8_t>(kind);
  op.name = p_.strings.intern(cache);
  op.size = size;
  op.order = static_cast<std::uint8_t>(order);
  op.gfp = gfp;
  return op.h2;
}

Handle ProgramBuilder::mempool_alloc(Handle pool, std::uint32_t gfp) {
  Op& op = push(OpKind::mempool_alloc);
  op.h = next_object_++;
  op.h2 = pool;
  op.gfp = gfp;
  return op.h;
}

void ProgramBuilder::mempool_free(Handle pool, Handle obj) {
  Op& op = push(OpKind::mempool_free);
  op.h = obj;
  op.h2 = pool;
}

void ProgramBuilder::mempool_destroy(Handle pool) {
  push(OpKind::mempool_destroy).h2 = pool;
}

Handle ProgramBuilder::vmalloc(std::uint64_t size, VmallocApi api, std::uint32_t gfp, int node) {
  Op& op = push(OpKind::vmalloc);
  op.h = next_area_++;
  op.size = size;
  op.byte = static_cast<std::uint8_t>(api);
  op.gfp = gfp;
  op.node = node;
  return op.h;
}

void ProgramBuilder::vfree(Handle area) {
  push(OpKind::vfree).h = area;
}

Handle ProgramBuilder::vmap(std::uint64_t nr_pages) {
  Op& op = push(OpKind::vmap);
  op.h = next_area_++;
  op.size = nr_pages;
  return op.h;
}

void ProgramBuilder::vunmap(Handle area) {
  push(OpKind::vunmap).h = area;
}

Handle ProgramBuilder::ioremap(std::uint64_t phys, std::uint64_t size, IoremapApi api) {
  Op& op = push(OpKind::ioremap);
  op.h = next_area_++;
  op.arg = phys;
  op.size = size;
  op.byte = static_cast<std::uint8_t>(api);
  return op.h;
}

void ProgramBuilder::iounmap(Handle area) {
  push(OpKind::iounmap).h = area;
}

void ProgramBuilder::write(Space space, Handle h, std::uint64_t offset, std::uint64_t len,
                           std::uint8_t byte) {
  Op& op = push(OpKind::write);
  op.space = space;
  op.h = h;
  op.arg = offset;
  op.size = len;
  op.byte = byte;
}

void ProgramBuilder::read(Space space, Handle h, std::uint64_t offset, std::uint64_t len) {
  Op& op = push(OpKind::read);
  op.space = space;
  op.h = h;
  op.arg = offset;
  op.size = len;
}

void ProgramBuilder::tick() {
  push(OpKind::tick);
}

void ProgramBuilder::drain_all_pages() {
  push(OpKind::drain_all_pages);
}

void ProgramBuilder::check() {
  push(OpKind::check);
}

}  // namespace mmfuzz::prog
