// mempool (mm/mempool.c, Linux 6.1). The reserve is a stack of elements the
// pool preallocated (or got back through mempool_free()); mempool_alloc()
// prefers the underlying allocator and falls back on the reserve. Where the
// kernel would sleep the model hands out a ticket instead (MempoolWait).
//
// With KASAN the kernel poisons an element while it sits in the reserve
// (kasan_poison_element()), so a double free into the pool, a pointer that is
// no allocation, or an element freed behind the pool's back is reported.
// The model cannot poison, so it checks the same things explicitly.
#include "mm/slab/mempool.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "mm/mm.h"

namespace mmfuzz::mm {

namespace {
constexpr int kENOMEM = 12;
constexpr int kEINVAL = 22;
constexpr std::uint64_t kSizeofPointer = 8;

std::string hex0x(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

const char* mempool_kind_name(MempoolKind k) {
  switch (k) {
    case MempoolKind::slab:
      return "slab";
    case MempoolKind::kmalloc:
      return "kmalloc";
    case MempoolKind::pages:
      return "page";
  }
  return "?";
}

Mempools::Mempools(Mm& mm) : mm_(mm) {}

void Mempools::report(MisuseKind kind, const char* api, std::string detail, const mempool_t* p,
                      vaddr_t addr) {
  if (!mm_.observed()) return;
  Misuse m;
  m.kind = kind;
  m.api = api;
  m.detail = std::move(detail);
  m.addr = addr;
  if (kind == MisuseKind::kasan_use_after_free) {
    m.what = "use-after-free";
    m.access_len = 1;
  }
  if (p && p->kind == MempoolKind::pages) m.order = p->order;
  if (addr && mm_.virt_addr_valid(addr)) {
    m.pfn = mm_.virt_to_pfn(addr);
    if (const auto ref = mm_.slab.find_object(addr)) {
      m.object = ref->object;
      if (const kmem_cache* s = mm_.slab.cache(ref->cache)) {
        m.cache = s->name;
        m.object_size = s->object_size;
      }
    }
  }
  if (m.cache.empty() && p && p->kind == MempoolKind::slab)
    if (const kmem_cache* s = mm_.slab.cache(p->cache)) m.cache = s->name;
  mm_.notify([&](MmObserver& o) { o.misuse(m); });
}

mempool_t* Mempools::live_pool(mempool_id id, const char* api) {
  mempool_t* p = id && id <= pools_.size() ? pools_[id - 1].get() : nullptr;
  if (!p) {
    report(MisuseKind::slab_bad_cache, api,
           std::string(api) + "() on mempool " + std::to_string(id) + ", which is no mempool");
    return nullptr;
  }
  if (p->destroyed) {
    report(MisuseKind::slab_bad_cache, api,
           std::string(api) + "() on mempool " + std::to_string(id) +
               " after mempool_destroy() (use after free)",
           p);
    return nullptr;
  }
  return p;
}

// pool->alloc(gfp_mask, pool->pool_data)
vaddr_t Mempools::pool_alloc(const mempool_t& p, gfp_t gfp) {
  switch (p.kind) {
    case MempoolKind::slab:
      return mm_.slab.kmem_cache_alloc(p.cache, gfp);
    case MempoolKind::kmalloc:
      return mm_.slab.kmalloc(p.size, gfp);
    case MempoolKind::pages: {
      const pfn_t pfn = mm_.page_alloc.alloc_pages(gfp, p.order);
      return pfn == NO_PAGE ? 0 : mm_.page_address(pfn);
    }
  }
  return 0;
}

// pool->free(element, pool->pool_data): the underlying allocator checks it.
void Mempools::pool_free(const mempool_t& p, vaddr_t element) {
  switch (p.kind) {
    case MempoolKind::slab:
      mm_.slab.kmem_cache_free(p.cache, element);
      break;
    case MempoolKind::kmalloc:
      mm_.slab.kfree(element);
      break;
    case MempoolKind::pages:
      mm_.page_alloc.free_pages(element, p.order);
      break;
  }
}

std::optional<MisuseKind> Mempools::bad_element(const mempool_t& p, vaddr_t e,
                                                std::string* why) const {
  if (p.kind == MempoolKind::pages) {
    if (!mm_.virt_addr_valid(e)) {
      *why = "element " + hex0x(e) + " is not a linear-map address of RAM";
      return MisuseKind::page_bad_pfn;
    }
    const pfn_t pfn = mm_.virt_to_pfn(e);
    if (mm_.page_address(pfn) != e) {
      *why = "element " + hex0x(e) + " is not a page address";
      return MisuseKind::page_bad_pfn;
    }
    const PageAlloc& pa = mm_.page_alloc;
    const pfn_t head = pa.owning_block(pfn, PAGE_OWNER_ALLOCATED);
    // Pages the slab layer owns are not the pool's to keep or free.
    if (head == pfn && mm_.slab.large_kmalloc_size(pfn)) {
      *why = "element " + hex0x(e) + " is a large kmalloc, not pages of the pool's allocator";
      return MisuseKind::page_free_kmalloc;
    }
    if (head != NO_PAGE && PageSlab(mm_.pfn_to_page(head))) {
      *why = "element " + hex0x(e) + " lies in a slab page";
      return MisuseKind::page_bad_state;
    }
    if (head == pfn) {
      if (pa.owner(pfn).order == p.order) return std::nullopt;
      *why = "element " + hex0x(e) + " is an order-" + std::to_string(pa.owner(pfn).order) +
             " allocation, the pool's pages are order " + std::to_string(p.order);
      return MisuseKind::page_wrong_order;
    }
    if (head != NO_PAGE) {
      *why = "element " + hex0x(e) + " is inside an allocation, not its head";
      return MisuseKind::page_free_tail;
    }
    *why = "element " + hex0x(e) + " is a free page";
    return MisuseKind::page_double_free;
  }
  if (p.kind == MempoolKind::kmalloc && ZERO_OR_NULL_PTR(e)) return std::nullopt;  // kmalloc(0)
  if (const auto ref = mm_.slab.find_object(e)) {
    if (ref->object != e) {
      *why = "element " + hex0x(e) + " is inside the object at " + hex0x(ref->object);
      return MisuseKind::slab_invalid_free;
    }
    if (!ref->allocated) {
      *why = "element " + hex0x(e) + " is a free object";
      return MisuseKind::slab_double_free;
    }
    if (p.kind == MempoolKind::slab && ref->cache != p.cache) {
      *why = "element " + hex0x(e) + " is an object of another cache than the pool's";
      return MisuseKind::slab_wrong_cache;
    }
    return std::nullopt;
  }
  // kmalloc pools may hold large kmallocs (pages straight from the buddy).
  if (p.kind == MempoolKind::kmalloc && mm_.virt_addr_valid(e)) {
    const pfn_t head = mm_.slab.slab_head(mm_.virt_to_pfn(e)) == NO_PAGE
                           ? mm_.page_alloc.owning_block(mm_.virt_to_pfn(e), PAGE_OWNER_ALLOCATED)
                           : NO_PAGE;
    if (head != NO_PAGE && mm_.page_address(head) == e && mm_.slab.large_kmalloc_size(head))
      return std::nullopt;
  }
  *why = "element " + hex0x(e) + " is no " + (p.kind == MempoolKind::slab ? "slab" : "kmalloc") +
         " object";
  return MisuseKind::slab_invalid_free;
}

// remove_element(): the last element added. One that is no longer a live
// allocation (freed behind the pool's back) is reported and dropped: 0.
vaddr_t Mempools::remove_element(mempool_t& p, const char* api) {
  const vaddr_t e = p.elements.back();
  p.elements.pop_back();
  std::string why;
  if (bad_element(p, e, &why)) {
    report(MisuseKind::kasan_use_after_free, api,
           std::string(api) + ": reserve element of mempool " + std::to_string(p.id) +
               " was freed while in the pool: " + why,
           &p, e);
    p.shortfall++;
    return 0;
  }
  return e;
}

void Mempools::complete(mempool_t& p, vaddr_t element) {
  const MempoolWaiter w = p.waiters.front();
  p.waiters.pop_front();
  p.nr_out++;
  completed_.push_back({w.ticket, p.id, element});
}

// wake_up(&pool->wait): the oldest sleeper takes an element of the reserve.
void Mempools::serve_waiters(mempool_t& p, const char* api) {
  while (!p.waiters.empty() && !p.elements.empty())
    if (const vaddr_t e = remove_element(p, api)) {
      mm_.count_vm_event(MEMPOOL_ALLOC_RESERVE);
      complete(p, e);
    }
}

// Frees reserve elements to the underlying allocator down to `keep`.
void Mempools::free_reserve(mempool_t& p, int keep, const char* api) {
  while (p.curr_nr() > keep)
    if (const vaddr_t e = remove_element(p, api)) pool_free(p, e);
}

mempool_id Mempools::mempool_create(int min_nr, MempoolKind kind, cache_id cache,
                                    std::uint64_t size, unsigned order, gfp_t gfp) {
  const bool have_slab = mm_.slab.initialized();
  if (kind == MempoolKind::kmalloc && !have_slab) {
    report(MisuseKind::slab_bad_cache, "mempool_create_kmalloc_pool",
           "a kmalloc mempool needs the slab layer, which is off");
    return 0;
  }
  auto p = std::make_unique<mempool_t>();
  p->id = static_cast<mempool_id>(pools_.size() + 1);
  p->kind = kind;
  p->cache = cache;
  p->size = size;
  p->order = order;
  p->min_nr = min_nr;
  auto release = [&] {
    free_reserve(*p, 0, "mempool_create");  // mempool_exit()
    if (p->elements_obj) mm_.slab.kfree(p->elements_obj);
    if (p->self_obj) mm_.slab.kfree(p->self_obj);
  };
  if (have_slab) {
    p->self_obj = mm_.slab.kzalloc(kSizeofMempool, gfp);  // kzalloc_node(sizeof(*pool))
    if (!p->self_obj) return 0;
    // kmalloc_array_node(min_nr, sizeof(void *)): a negative min_nr
    // becomes a huge size_t and overflows, so the pool is not created.
    p->elements_obj = mm_.slab.kmalloc_array(
        static_cast<std::uint64_t>(static_cast<std::int64_t>(min_nr)), kSizeofPointer, gfp);
    if (!p->elements_obj) {
      release();
      return 0;
    }
  } else if (min_nr < 0) {
    return 0;
  }
  p->elements.reserve(static_cast<std::size_t>(std::max(min_nr, 0)));
  while (p->curr_nr() < p->min_nr) {
    const vaddr_t e = pool_alloc(*p, gfp);
    if (!e) {
      release();
      return 0;
    }
    add_element(*p, e);
  }
  pools_.push_back(std::move(p));
  return pools_.back()->id;
}

vaddr_t Mempools::mempool_alloc(mempool_id id, gfp_t gfp, MempoolWait* wait) {
  if (wait) *wait = {};
  mempool_t* p = live_pool(id, "mempool_alloc");
  if (!p) return 0;
  if (gfp & __GFP_ZERO) {
    // VM_WARN_ON_ONCE(gfp_mask & __GFP_ZERO): reserve elements are not
    // zeroed. The kernel warns once and passes the flag on; the model reports
    // every such call and strips the flag.
    report(MisuseKind::slab_bad_cache, "mempool_alloc",
           "mempool_alloc() with __GFP_ZERO: elements from the reserve are not zeroed "
           "(VM_WARN_ON_ONCE(gfp_mask & __GFP_ZERO))",
           p);
    gfp &= ~__GFP_ZERO;
  }
  gfp |= __GFP_NOMEMALLOC;  // don't allocate emergency reserves
  gfp |= __GFP_NORETRY;     // don't loop in __alloc_pages
  gfp |= __GFP_NOWARN;      // failures are OK
  gfp_t gfp_temp = gfp & ~(__GFP_DIRECT_RECLAIM | __GFP_IO);
  for (;;) {  // repeat_alloc
    if (const vaddr_t e = pool_alloc(*p, gfp_temp)) {
      p->nr_out++;
      return e;
    }
    while (!p->elements.empty())
      if (const vaddr_t e = remove_element(*p, "mempool_alloc")) {
        p->nr_out++;
        mm_.count_vm_event(MEMPOOL_ALLOC_RESERVE);
        return e;
      }
    // The first round ran without direct reclaim or IO; with an empty
    // reserve, retry at once with the caller's mask.
    if (gfp_temp == gfp) break;
    gfp_temp = gfp;
  }
  // We must not sleep if !__GFP_DIRECT_RECLAIM.
  if (!(gfp & __GFP_DIRECT_RECLAIM)) return 0;
  // The kernel sleeps on pool->wait until mempool_free() returns an element.
  // A caller that passes no MempoolWait cannot be woken later, so the model
  // treats it as one that may not sleep: NULL.
  if (!wait) return 0;
  p->waiters.push_back({next_ticket_++, gfp});
  *wait = {p->waiters.back().ticket, id, 0};
  return 0;
}

void Mempools::mempool_free(mempool_id id, vaddr_t element) {
  if (!element) return;  // mempool_free(NULL, pool) is a no-op
  mempool_t* p = live_pool(id, "mempool_free");
  if (!p) return;
  // KASAN finds a reserve element poisoned: freeing it again is a double free.
  if (std::find(p->elements.begin(), p->elements.end(), element) != p->elements.end()) {
    report(
        p->kind == MempoolKind::pages ? MisuseKind::page_double_free : MisuseKind::slab_double_free,
        "mempool_free",
        "mempool_free(): element " + hex0x(element) + " is already in the reserve of mempool " +
            std::to_string(p->id),
        p, element);
    return;
  }
  // Planted defect (fuzz self-test): the reserve is refilled only while it
  // is more than one element short.
  int want = p->min_nr;
  if (mm_.planted(PlantedDefect::mempool_free_skips_refill)) [[unlikely]]
    --want;
  if (p->curr_nr() < want) {
    std::string why;
    if (const auto kind = bad_element(*p, element, &why)) {
      report(*kind, "mempool_free", "mempool_free(): " + why, p, element);
      return;
    }
    add_element(*p, element);
    p->nr_out = std::max<std::int64_t>(p->nr_out - 1, 0);
    mm_.count_vm_event(MEMPOOL_FREE_REFILL);
    serve_waiters(*p, "mempool_free");  // wake_up(&pool->wait)
    return;
  }
  p->nr_out = std::max<std::int64_t>(p->nr_out - 1, 0);
  pool_free(*p, element);
  // Only a pool with min_nr == 0 can have sleepers here (otherwise they take
  // every element that refills the reserve). Nothing wakes them but the
  // 5 s timeout of io_schedule_timeout(), after which they retry the
  // allocator with their full mask; the model runs that retry now.
  while (!p->waiters.empty()) {
    const vaddr_t e = pool_alloc(*p, p->waiters.front().gfp);
    if (!e) break;
    complete(*p, e);
  }
}

int Mempools::mempool_resize(mempool_id id, int new_min_nr) {
  mempool_t* p = live_pool(id, "mempool_resize");
  if (!p) return -kEINVAL;
  if (new_min_nr <= 0) {
    report(MisuseKind::slab_bad_cache, "mempool_resize",
           "mempool_resize() to " + std::to_string(new_min_nr) +
               " elements: kernel BUG (BUG_ON(new_min_nr <= 0))",
           p);
    return -kEINVAL;
  }
  if (new_min_nr <= p->min_nr) {
    free_reserve(*p, new_min_nr, "mempool_resize");
    p->min_nr = new_min_nr;
    return 0;
  }
  // Grow: first the larger elements array; only its failure is -ENOMEM.
  if (mm_.slab.initialized()) {
    const vaddr_t new_elements =
        mm_.slab.kmalloc_array(static_cast<std::uint64_t>(new_min_nr), kSizeofPointer, GFP_KERNEL);
    if (!new_elements) return -kENOMEM;
    mm_.slab.kfree(p->elements_obj);
    p->elements_obj = new_elements;
  }
  p->min_nr = new_min_nr;
  // Then the new elements. When the allocator fails the kernel stops and
  // still returns 0: min_nr stays raised and later mempool_free() calls
  // refill the reserve.
  while (p->curr_nr() < p->min_nr) {
    const vaddr_t e = pool_alloc(*p, GFP_KERNEL);
    if (!e) break;
    add_element(*p, e);
  }
  p->shortfall += std::max<std::int64_t>(0, p->min_nr - (p->curr_nr() + p->nr_out + p->shortfall));
  // Resize does not wake sleepers; their 5 s timeout retry would find these
  // elements, which the model hands over now.
  serve_waiters(*p, "mempool_resize");
  return 0;
}

void Mempools::mempool_destroy(mempool_id id) {
  if (!id) return;  // mempool_destroy(NULL) is a no-op
  mempool_t* p = live_pool(id, "mempool_destroy");
  if (!p) return;
  if (!p->waiters.empty()) {
    report(MisuseKind::slab_bad_cache, "mempool_destroy",
           "mempool_destroy() of mempool " + std::to_string(id) + " while " +
               std::to_string(p->waiters.size()) +
               " caller(s) sleep in mempool_alloc() on it (use after free)",
           p);
    return;
  }
  free_reserve(*p, 0, "mempool_destroy");  // mempool_exit()
  if (p->elements_obj) mm_.slab.kfree(p->elements_obj);
  if (p->self_obj) mm_.slab.kfree(p->self_obj);
  p->elements_obj = p->self_obj = 0;
  p->elements.clear();
  p->elements.shrink_to_fit();
  p->destroyed = true;
}

std::vector<MempoolWait> Mempools::take_completed() {
  return std::exchange(completed_, {});
}

}  // namespace mmfuzz::mm
