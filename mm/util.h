// mm/util.c (6.1): the kmalloc/vmalloc glue. kvmalloc_node() tries the slab
// layer first and falls back to vmalloc for sizes above a page; kvfree()
// frees either.
#pragma once

#include <cstdint>

#include "mm/page_alloc/gfp.h"
#include "mm/types.h"

namespace mmfuzz::mm {

class Mm;

// 0 (NULL) when both fail. Masks that are not GFP_KERNEL-compatible (no
// reclaim, IO or FS) only try kmalloc: vmalloc allocates its page tables
// with GFP_KERNEL. Sizes above INT_MAX fail, with a warning unless
// __GFP_NOWARN.
vaddr_t kvmalloc_node(Mm& mm, std::uint64_t size, gfp_t flags, int node);
inline vaddr_t kvmalloc(Mm& mm, std::uint64_t size, gfp_t flags) {
  return kvmalloc_node(mm, size, flags, NUMA_NO_NODE);
}
inline vaddr_t kvzalloc(Mm& mm, std::uint64_t size, gfp_t flags) {
  return kvmalloc_node(mm, size, flags | __GFP_ZERO, NUMA_NO_NODE);
}
// is_vmalloc_addr(addr) ? vfree(addr) : kfree(addr).
void kvfree(Mm& mm, vaddr_t addr);

}  // namespace mmfuzz::mm
