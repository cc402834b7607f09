// The Executor's kernel-VM ops: the vmalloc family, vmap, ioremap and the io
// accessors.
#include <algorithm>

#include "program/executor.h"

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

namespace {
// vmap ops map at most this many pages.
constexpr std::uint64_t kMaxVmapPages = 4096;
}  // namespace

void Executor::run(const Vmalloc& a) {
  mm::Vmalloc& vm = mm_.vmalloc;
  if (!vm.initialized()) {
    skip("no vmalloc in this model");
    return;
  }
  vaddr_t p = 0;
  switch (a.api) {
    case VmallocApi::vzalloc:
      p = a.node >= 0 ? vm.vzalloc_node(a.size, a.node) : vm.vzalloc(a.size);
      break;
    case VmallocApi::vmalloc_32:
      p = vm.vmalloc_32(a.size);
      break;
    case VmallocApi::module_alloc:
      p = vm.module_alloc(a.size);
      break;
    default:
      p = a.gfp ? vm.__vmalloc(a.size, a.gfp)
                : (a.node >= 0 ? vm.vmalloc_node(a.size, a.node) : vm.vmalloc(a.size));
  }
  res_.failed = p == 0;
  res_.addr = p;
  bind_area(a.area, {p, a.size, 0, p != 0, {}});
}

void Executor::run(const Vmap& a) {
  mm::Vmalloc& vm = mm_.vmalloc;
  if (!vm.initialized()) {
    skip("no vmalloc in this model");
    return;
  }
  std::vector<pfn_t> pfns;
  const std::uint64_t n = std::clamp<std::uint64_t>(a.nr_pages, 1, kMaxVmapPages);
  for (std::uint64_t i = 0; i < n; ++i) {
    const pfn_t p = mm_.page_alloc.alloc_pages(GFP_KERNEL, 0);
    if (p == NO_PAGE) break;
    pfns.push_back(p);
  }
  const vaddr_t p = pfns.size() == n ? vm.vmap(pfns) : 0;
  if (!p)
    for (const pfn_t pfn : pfns) mm_.page_alloc.__free_pages(pfn, 0);
  res_.failed = p == 0;
  res_.addr = p;
  bind_area(a.area, {p, n * mm_.profile.page_size(), 1, p != 0,
                     p ? std::move(pfns) : std::vector<pfn_t>{}});
}

void Executor::run(const Ioremap& a) {
  mm::Vmalloc& vm = mm_.vmalloc;
  if (!vm.initialized()) {
    skip("no vmalloc in this model");
    return;
  }
  const vaddr_t p = a.api == IoremapApi::ioremap_wc   ? vm.ioremap_wc(a.phys, a.size)
                    : a.api == IoremapApi::ioremap_np ? vm.ioremap_np(a.phys, a.size)
                                                      : vm.ioremap(a.phys, a.size);
  res_.failed = p == 0;
  res_.addr = p;
  bind_area(a.area, {p, a.size, 2, p != 0, {}});
}

void Executor::run(const Vfree& a) {
  Area* ar = bound_area(a.area);
  if (!ar) return;
  kill_area(*ar);
  mm_.vmalloc.vfree(ar->addr);
}

void Executor::run(const Vunmap& a) {
  Area* ar = bound_area(a.area);
  if (!ar) return;
  const bool was_live = ar->live;
  kill_area(*ar);
  mm_.vmalloc.vunmap(ar->addr);
  // The pages were the vmap op's own: free them once, with the mapping.
  if (was_live)
    for (const pfn_t p : ar->pfns) mm_.page_alloc.__free_pages(p, 0);
  ar->pfns.clear();
}

void Executor::run(const Iounmap& a) {
  Area* ar = bound_area(a.area);
  if (!ar) return;
  kill_area(*ar);
  mm_.vmalloc.iounmap(ar->addr);
}

void Executor::run(const IoRead& a) {
  const Area* ar = bound_area(a.area);
  if (!ar) return;
  mm::Vmalloc& vm = mm_.vmalloc;
  const vaddr_t p = ar->addr + a.offset;
  switch (a.api) {
    case IoReadApi::readb:
      res_.addr = vm.readb(p);
      return;
    case IoReadApi::readw:
      res_.addr = vm.readw(p);
      return;
    case IoReadApi::readl:
      res_.addr = vm.readl(p);
      return;
    case IoReadApi::ioread8:
      res_.addr = vm.ioread8(p);
      return;
    case IoReadApi::ioread16:
      res_.addr = vm.ioread16(p);
      return;
    case IoReadApi::ioread32:
      res_.addr = vm.ioread32(p);
      return;
  }
}

void Executor::run(const IoWrite& a) {
  const Area* ar = bound_area(a.area);
  if (!ar) return;
  mm::Vmalloc& vm = mm_.vmalloc;
  const vaddr_t p = ar->addr + a.offset;
  switch (a.api) {
    case IoWriteApi::writeb:
      vm.writeb(static_cast<std::uint8_t>(a.value), p);
      return;
    case IoWriteApi::writew:
      vm.writew(static_cast<std::uint16_t>(a.value), p);
      return;
    case IoWriteApi::writel:
      vm.writel(a.value, p);
      return;
    case IoWriteApi::iowrite8:
      vm.iowrite8(static_cast<std::uint8_t>(a.value), p);
      return;
    case IoWriteApi::iowrite16:
      vm.iowrite16(static_cast<std::uint16_t>(a.value), p);
      return;
    case IoWriteApi::iowrite32:
      vm.iowrite32(a.value, p);
      return;
  }
}

}  // namespace mmfuzz::prog
