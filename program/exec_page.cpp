// The Executor's page-allocator ops: alloc_pages and its frees, split_page,
// page references, alloc_pages_exact, the kmap family.
#include <fmt/format.h>

#include "invariants/trace.h"
#include "program/executor.h"

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

void Executor::run(const AllocPages& a) {
  PageAlloc& pa = mm_.page_alloc;
  // An allocation the op says succeeded cannot have this order: the trace is
  // corrupt (or the kernel is). One that failed runs: the model warns as
  // __alloc_pages() does.
  if (a.order >= pa.max_order() && a.page) {
    res_.failed = true;
    invalid(
        "mm_page_alloc", a.page,
        fmt::format("a successful order-{} allocation: MAX_ORDER is {}", a.order, pa.max_order()));
    return;
  }
  allocated_again(Space::page, a.page, "mm_page_alloc");
  const pfn_t p =
      a.node >= 0 ? pa.alloc_pages_node(a.node, a.gfp, a.order) : pa.alloc_pages(a.gfp, a.order);
  res_.failed = p == NO_PAGE;
  if (a.page == 0) {  // the trace saw it fail: keep the model's state alike
    if (p != NO_PAGE) pa.__free_pages(p, a.order);
    return;
  }
  bind_pages(a.page, {p, a.order, p != NO_PAGE});
}

void Executor::run(const FreePages& a) {
  if (a.order >= mm_.page_alloc.max_order() && !pages_.count(a.page)) {
    invalid("mm_page_free", a.page,
            fmt::format("an order-{} free: MAX_ORDER is {}", a.order, mm_.page_alloc.max_order()));
    return;
  }
  Pages* rec = bound_pages(a.page);
  if (!rec) return;
  bind_pages(a.page, {rec->pfn, rec->order, false});
  if (a.by_addr)
    mm_.page_alloc.free_pages(mm_.page_address(rec->pfn), a.order);
  else
    mm_.page_alloc.__free_pages(rec->pfn, a.order);
}

void Executor::run(const SplitPage& a) {
  const auto it = pages_.find(a.page);
  if (it == pages_.end() || !it->second.live) {
    skip("unbound page handle");
    return;
  }
  const Pages head = it->second;
  mm_.page_alloc.split_page(head.pfn, head.order);
  it->second.order = 0;
  for (pfn_t i = 1; i < (pfn_t{1} << head.order); ++i)
    bind_pages(a.page + i, {head.pfn + i, 0, true});
}

void Executor::run(const GetPage& a) {
  if (const Pages* rec = bound_pages(a.page)) mm_.page_alloc.get_page(rec->pfn);
}

void Executor::run(const PutPage& a) {
  Pages* rec = bound_pages(a.page);
  if (!rec) return;
  const Pages p = *rec;
  mm_.page_alloc.put_page(p.pfn);
  // The handle is the caller's reference: dead once the page is freed.
  if (mm_.pfn_valid(p.pfn) && mm_.pfn_to_page(p.pfn)._refcount <= 0)
    bind_pages(a.page, {p.pfn, p.order, false});
}

void Executor::run(const AllocPagesExact& a) {
  const vaddr_t addr = mm_.page_alloc.alloc_pages_exact(a.size, a.gfp);
  res_.failed = addr == 0;
  res_.addr = addr;
  if (a.page == 0) {
    if (addr) mm_.page_alloc.free_pages_exact(addr, a.size);
    return;
  }
  bind_pages(a.page, {addr ? mm_.virt_to_pfn(addr) : NO_PAGE, 0, addr != 0});
}

void Executor::run(const FreePagesExact& a) {
  Pages* rec = bound_pages(a.page);
  if (!rec) return;
  bind_pages(a.page, {rec->pfn, rec->order, false});
  mm_.page_alloc.free_pages_exact(mm_.page_address(rec->pfn), a.size);
}

void Executor::run(const Kmap& a) {
  const Pages* rec = bound_pages(a.page);
  if (!rec) return;
  mm::Vmalloc& vm = mm_.vmalloc;
  switch (a.api) {
    case KmapApi::kmap:
      res_.addr = vm.kmap(rec->pfn);
      return;
    case KmapApi::kmap_atomic:
      res_.addr = vm.kmap_atomic(rec->pfn);
      return;
    case KmapApi::kmap_local_page:
      res_.addr = vm.kmap_local_page(rec->pfn);
      return;
  }
}

void Executor::run(const Kunmap& a) {
  const Pages* rec = bound_pages(a.page);
  if (!rec) return;
  mm::Vmalloc& vm = mm_.vmalloc;
  switch (a.api) {
    case KunmapApi::kunmap:
      vm.kunmap(rec->pfn);
      return;
    case KunmapApi::kunmap_atomic:
      vm.kunmap_atomic(mm_.page_address(rec->pfn));
      return;
    case KunmapApi::kunmap_local:
      vm.kunmap_local(mm_.page_address(rec->pfn));
      return;
  }
}

void Executor::run(const DrainAllPages&) {
  mm_.page_alloc.drain_all_pages();
}

}  // namespace mmfuzz::prog
