// The Executor's slab ops: kmalloc and kmem_cache families, krealloc,
// kvmalloc, mempools.
#include <fmt/format.h>

#include <algorithm>

#include "invariants/trace.h"
#include "mm/util.h"
#include "program/executor.h"

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

// A free naming a handle whose object the Program already freed (and did
// not allocate again): trace.double_free, the ops' own view, before the
// model judges the free. Not when the model refused the earlier free (the
// object stayed allocated), nor under record_misuse off (fuzzers).
void Executor::invalid(const char* call, Handle h, const std::string& why) {
  if (!engine_ || !opts_.record_misuse) return;
  if (!wants(inv::trace_finding_id(inv::TraceFinding::invalid))) return;
  engine_->report(inv::trace_violation(inv::TraceFinding::invalid, call, h, why));
}

void Executor::allocated_again(Space space, Handle h, const char* call) {
  if (!h || !engine_ || !opts_.record_misuse) return;
  const bool live = space == Space::page ? pages_.count(h) && pages_[h].live
                                         : objects_.count(h) && objects_[h].live;
  if (!live) return;
  const auto k =
      space == Space::page ? inv::TraceFinding::page_double_alloc : inv::TraceFinding::double_alloc;
  if (wants(inv::trace_finding_id(k))) engine_->report(inv::trace_violation(k, call, h));
}

// The object a free names; a handle no op ever bound is a free of a pointer
// never allocated (trace.unknown_free), and the op is skipped.
Executor::Object* Executor::freed_object(Handle h, const char* call) {
  Object* o = bound_object(h);
  if (!o && !objects_.count(h) && engine_ && opts_.record_misuse &&
      wants(inv::trace_finding_id(inv::TraceFinding::unknown_free)))
    engine_->report(inv::trace_violation(inv::TraceFinding::unknown_free, call, h));
  return o;
}

void Executor::freed_again(Handle h, const Object& o, const char* call) {
  if (o.live || o.free_refused || ZERO_OR_NULL_PTR(o.addr) || !engine_ || !opts_.record_misuse)
    return;
  if (!wants(inv::trace_finding_id(inv::TraceFinding::double_free))) return;
  engine_->report(inv::trace_violation(inv::TraceFinding::double_free, call, h));
}

void Executor::run(const Kmalloc& a) {
  if (a.obj && a.size > mm_.slab.kmalloc_max_size()) {
    res_.failed = true;
    invalid("kmalloc", a.obj,
            fmt::format("a successful kmalloc of {} bytes: KMALLOC_MAX_SIZE is {}", a.size,
                        mm_.slab.kmalloc_max_size()));
    return;
  }
  allocated_again(Space::object, a.obj, "kmalloc");
  const vaddr_t p = mm_.slab.kmalloc_node(a.size, a.gfp, a.node);
  res_.failed = p == 0;
  res_.addr = p;
  if (a.obj == 0) {
    mm_.slab.kfree(p);
    return;
  }
  bind_object(a.obj, {.addr = p, .size = a.size, .live = p != 0});
}

void Executor::run(const Kfree& a) {
  if (a.obj == 0) {
    mm_.slab.kfree(0);  // kfree(NULL)
    return;
  }
  Object* o = freed_object(a.obj, "kfree");
  if (!o) return;
  freed_again(a.obj, *o, "kfree");
  kill_object(*o);
  const std::size_t reports = nr_reports();
  mm_.slab.kfree(o->addr);
  o->free_refused = nr_reports() != reports;
}

void Executor::run(const KfreeSensitive& a) {
  if (a.obj == 0) {
    mm_.slab.kfree_sensitive(0);
    return;
  }
  Object* o = freed_object(a.obj, "kfree_sensitive");
  if (!o) return;
  freed_again(a.obj, *o, "kfree_sensitive");
  kill_object(*o);
  const std::size_t reports = nr_reports();
  mm_.slab.kfree_sensitive(o->addr);
  o->free_refused = nr_reports() != reports;
}

void Executor::run(const Krealloc& a) {
  const auto it = objects_.find(a.obj);
  const Object old = it == objects_.end() ? Object{} : it->second;  // unbound: NULL
  const vaddr_t p = mm_.slab.krealloc(old.addr, a.new_size, a.gfp);
  res_.addr = p;
  if (a.new_size == 0) {  // freed; the caller holds ZERO_SIZE_PTR
    bind_object(a.obj, {.addr = p});
    return;
  }
  res_.failed = p == 0;
  if (!p) return;  // the old object stays the handle's
  Object o = old;
  if (p != old.addr || old.kind != ObjKind::cache) o = {.addr = p};
  o.size = a.new_size;
  o.live = true;
  bind_object(a.obj, o);
}

void Executor::run(const KmemCacheCreate& a) {
  slab_ctor ctor;
  ctor.present = a.ctor;
  ctor.fill = a.ctor_fill;
  const cache_id c = mm_.slab.kmem_cache_create(
      strings_.str(a.name), static_cast<unsigned>(std::min<std::uint64_t>(a.size, 0xffffffffu)),
      static_cast<unsigned>(a.align), a.flags, ctor);
  res_.failed = c == 0;
  // The name binds what this create returned: after a failure, nothing (a
  // destroyed cache of that name is not the Program's any more).
  if (c)
    caches_[a.name] = c;
  else
    caches_.erase(a.name);
}

void Executor::run(const KmemCacheAlloc& a) {
  const cache_id c = cache_of(a.name);
  if (!c) {  // its kmem_cache_create failed: so did this allocation
    skip("unknown cache");
    if (a.obj) bind_object(a.obj, {.kind = ObjKind::cache});
    return;
  }
  allocated_again(Space::object, a.obj, "kmem_cache_alloc");
  const vaddr_t p = mm_.slab.kmem_cache_alloc_node(c, a.gfp, a.node);
  res_.failed = p == 0;
  res_.addr = p;
  if (a.obj == 0) {
    if (p) mm_.slab.kmem_cache_free(c, p);
    return;
  }
  bind_object(a.obj, {.addr = p,
                      .size = mm_.slab.kmem_cache_size(c),
                      .cache = c,
                      .kind = ObjKind::cache,
                      .live = p != 0});
}

void Executor::run(const KmemCacheFree& a) {
  Object* o = freed_object(a.obj, "kmem_cache_free");
  if (!o) return;
  freed_again(a.obj, *o, "kmem_cache_free");
  const cache_id named = a.name ? cache_of(a.name) : 0;
  kill_object(*o);
  const std::size_t reports = nr_reports();
  mm_.slab.kmem_cache_free(named ? named : o->cache, o->addr);
  o->free_refused = nr_reports() != reports;
}

void Executor::run(const KmemCacheAllocBulk& a) {
  const cache_id c = cache_of(a.name);
  const std::uint32_t nr = std::min(a.nr, kMaxBulk);
  if (!c) {  // its kmem_cache_create failed: so did this allocation
    skip("unknown cache");
    for (std::uint32_t i = 0; i < nr; ++i) bind_object(a.obj + i, {.kind = ObjKind::cache});
    return;
  }
  bulk_.assign(nr, 0);
  const std::size_t n = mm_.slab.kmem_cache_alloc_bulk(c, a.gfp, nr, bulk_.data());
  res_.failed = n == 0 && nr > 0;
  res_.addr = n ? bulk_[0] : 0;
  const unsigned size = mm_.slab.kmem_cache_size(c);
  for (std::uint32_t i = 0; i < nr; ++i) {
    const vaddr_t p = n ? bulk_[i] : 0;  // all or nothing
    bind_object(a.obj + i,
                {.addr = p, .size = size, .cache = c, .kind = ObjKind::cache, .live = p != 0});
  }
}

void Executor::run(const KmemCacheFreeBulk& a) {
  // No name: kfree_bulk(), each object to its own cache.
  const cache_id c = a.name ? cache_of(a.name) : 0;
  if (a.name && !c) {
    skip("unknown cache");
    return;
  }
  bulk_.clear();
  for (std::uint32_t i = 0; i < std::min(a.nr, kMaxBulk); ++i) {
    const auto it = objects_.find(a.obj + i);
    if (it == objects_.end() || it->second.addr == 0) continue;
    kill_object(it->second);
    if (c)
      bulk_.push_back(it->second.addr);
    else if (it->second.cache)
      mm_.slab.kmem_cache_free(it->second.cache, it->second.addr);
    else
      mm_.slab.kfree(it->second.addr);
  }
  if (c) {
    if (bulk_.empty()) {
      skip("unbound object handle");
      return;
    }
    mm_.slab.kmem_cache_free_bulk(c, bulk_.size(), bulk_.data());
  }
}

void Executor::run(const KmemCacheShrink& a) {
  if (const cache_id c = cache_of(a.name))
    mm_.slab.kmem_cache_shrink(c);
  else
    skip("unknown cache");
}

void Executor::run(const KmemCacheDestroy& a) {
  if (const cache_id c = cache_of(a.name))
    mm_.slab.kmem_cache_destroy(c);
  else
    skip("unknown cache");
}

void Executor::run(const Kvmalloc& a) {
  allocated_again(Space::object, a.obj, "kvmalloc");
  const vaddr_t p = mm::kvmalloc_node(mm_, a.size, a.gfp, a.node);
  res_.failed = p == 0;
  res_.addr = p;
  if (a.obj == 0) {
    mm::kvfree(mm_, p);
    return;
  }
  bind_object(a.obj, {.addr = p,
                      .size = a.size,
                      .kind = ObjKind::kvmalloc,
                      .live = p != 0,
                      .vmalloc = p && mm_.vmalloc.is_vmalloc_addr(p)});
}

void Executor::run(const Kvfree& a) {
  if (a.obj == 0) return;  // kvfree(NULL)
  Object* o = freed_object(a.obj, "kvfree");
  if (!o) return;
  freed_again(a.obj, *o, "kvfree");
  kill_object(*o);
  const std::size_t reports = nr_reports();
  mm::kvfree(mm_, o->addr);
  o->free_refused = nr_reports() != reports;
}

// ---- mempool ----

void Executor::run(const MempoolCreate& a) {
  const auto kind =
      static_cast<MempoolKind>(std::min<std::uint8_t>(static_cast<std::uint8_t>(a.kind), 2));
  cache_id c = 0;
  if (kind == MempoolKind::slab && !(c = cache_of(a.name))) {
    skip("unknown cache");
    return;
  }
  const mempool_id id = mm_.mempools.mempool_create(std::clamp(a.min_nr, 0, 1 << 20), kind, c,
                                                    a.size, a.order, a.gfp ? a.gfp : GFP_KERNEL);
  res_.failed = id == 0;
  pools_[a.pool] = id;
}

void Executor::run(const MempoolAlloc& a) {
  const mempool_id id = bound_pool(a.pool);
  if (!id) return;
  allocated_again(Space::object, a.obj, "mempool_alloc");
  MempoolWait wait;
  const vaddr_t p = mm_.mempools.mempool_alloc(id, a.gfp, &wait);
  res_.failed = p == 0 && !wait.ticket;
  res_.blocked = wait.ticket != 0;
  res_.addr = p;
  bind_object(
      a.obj, {.addr = p, .pool = id, .kind = ObjKind::pool, .live = p != 0, .ticket = wait.ticket});
  if (wait.ticket) sleepers_[wait.ticket] = a.obj;
}

void Executor::run(const MempoolFree& a) {
  const mempool_id id = bound_pool(a.pool);
  if (!id) return;
  if (const auto it = objects_.find(a.obj); it != objects_.end() && !it->second.addr &&
                                            it->second.ticket &&
                                            sleepers_.count(it->second.ticket)) {
    free_on_wake_.insert(it->second.ticket);  // still asleep: freed when it wakes
    return;
  }
  Object* o = bound_object(a.obj);
  if (!o) return;
  kill_object(*o);
  const std::size_t reports = nr_reports();
  mm_.mempools.mempool_free(id, o->addr);
  o->free_refused = nr_reports() != reports;  // refused: still the caller's to free
  wake_mempool_sleepers();
}

void Executor::run(const MempoolResize& a) {
  const mempool_id id = bound_pool(a.pool);
  if (!id) return;
  res_.failed = mm_.mempools.mempool_resize(id, a.new_min_nr) != 0;
  wake_mempool_sleepers();
}

void Executor::run(const MempoolDestroy& a) {
  if (const mempool_id id = bound_pool(a.pool)) mm_.mempools.mempool_destroy(id);
}

// The element a mempool_free (or resize) handed to a sleeping mempool_alloc
// becomes its handle's. A handle rebound while asleep gets nothing.
// A sleeper the Program already freed frees its element at once, which may
// wake the next one.
void Executor::wake_mempool_sleepers() {
  for (bool again = true; again;) {
    again = false;
    for (const MempoolWait& w : mm_.mempools.take_completed()) {
      const auto it = sleepers_.find(w.ticket);
      if (it == sleepers_.end()) continue;
      const Handle h = it->second;
      sleepers_.erase(it);
      bind_object(h, {.addr = w.element, .pool = w.pool, .kind = ObjKind::pool, .live = true});
      if (!free_on_wake_.erase(w.ticket)) continue;
      kill_object(objects_[h]);
      mm_.mempools.mempool_free(w.pool, w.element);
      again = true;
    }
  }
}

}  // namespace mmfuzz::prog
