// Stateful property of the slab layer, per allocator: random kmalloc,
// kmem_cache and krealloc sequences against a reference model of live
// objects. Live objects never overlap, their contents survive until they are
// freed, ksize() covers the request, and no checker fires.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <iterator>
#include <map>
#include <memory>

#include "invariants/checker.h"
#include "mm/mm.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::mm;

struct Obj {
  std::uint64_t size;  // bytes the caller owns
  std::uint8_t fill;   // what it wrote there
  cache_id cache;      // 0: kmalloc
};

struct Sut {
  Sut(SlabVariant v, slab_flags_t debug)
      : mm(std::make_unique<Mm>(config(v, debug))), engine(*mm, opts()) {
    caches.push_back(mm->slab.kmem_cache_create("prop_small", 24, 0, 0));
    caches.push_back(mm->slab.kmem_cache_create("prop_aligned", 74, 0, SLAB_HWCACHE_ALIGN));
    caches.push_back(mm->slab.kmem_cache_create("prop_ctor", 200, 0, 0, {true, 0x3c}));
  }
  static MmConfig config(SlabVariant v, slab_flags_t debug) {
    MmConfig cfg;
    cfg.machine = small_machine(32 * SZ_1M);
    cfg.slab.variant = v;
    cfg.slab.debug_flags = debug;
    return cfg;
  }
  static inv::CheckOptions opts() {
    inv::CheckOptions o;
    o.capture_stacks = false;
    o.full_every = 25;
    return o;
  }
  void begin(const char* op) { engine.begin_op(step++, op); }
  void end(const char* op) {
    engine.end_op();
    if (!engine.clean())
      RC_FAIL(std::string(op) + ":\n" + engine.violations().front().to_text(false));
  }
  // The new object must not overlap any live one; fill it with a pattern.
  void adopt(vaddr_t p, std::uint64_t size, cache_id c) {
    RC_ASSERT(p != 0u);
    auto next = live.lower_bound(p);
    if (next != live.end()) RC_ASSERT(p + size <= next->first);
    if (next != live.begin()) {
      auto prev = std::prev(next);
      RC_ASSERT(prev->first + prev->second.size <= p);
    }
    const auto fill = static_cast<std::uint8_t>(0x40 + (step & 0x3f));
    RC_ASSERT(mm->slab.fill(p, size, fill));
    live[p] = {size, fill, c};
  }
  // Contents are intact until the owner frees them.
  void check_contents(vaddr_t p, const Obj& o) {
    std::vector<std::uint8_t> b(o.size);
    RC_ASSERT(mm->slab.read(p, b));
    for (auto x : b) RC_ASSERT(x == o.fill);
  }
  std::unique_ptr<Mm> mm;
  inv::CheckEngine engine;
  std::vector<cache_id> caches;
  std::map<vaddr_t, Obj> live;
  std::int64_t step = 0;
};

struct Model {};
using Cmd = rc::state::Command<Model, Sut>;

const gfp_t kGfps[] = {GFP_KERNEL, GFP_KERNEL_ACCOUNT, GFP_KERNEL | __GFP_RECLAIMABLE, GFP_ATOMIC,
                       GFP_KERNEL | __GFP_ZERO};

struct Kmalloc : Cmd {
  std::uint64_t size =
      *rc::gen::weightedOneOf<std::uint64_t>({{6, rc::gen::inRange<std::uint64_t>(1, 300)},
                                              {3, rc::gen::inRange<std::uint64_t>(300, 5000)},
                                              {1, rc::gen::inRange<std::uint64_t>(5000, 40000)}});
  std::size_t gfp = *rc::gen::inRange<std::size_t>(0, std::size(kGfps));
  void run(const Model&, Sut& s) const override {
    s.begin("kmalloc");
    const vaddr_t p = s.mm->slab.kmalloc(size, kGfps[gfp] | __GFP_NOWARN);
    if (p) {
      RC_ASSERT(s.mm->slab.ksize(p) >= size);
      s.adopt(p, size, 0);
    }
    s.end("kmalloc");
  }
  void show(std::ostream& os) const override {
    os << "kmalloc(" << size << ", " << format_gfp(kGfps[gfp]) << ")";
  }
};

struct CacheAlloc : Cmd {
  std::size_t which = *rc::gen::inRange<std::size_t>(0, 3);
  void run(const Model&, Sut& s) const override {
    s.begin("kmem_cache_alloc");
    const cache_id c = s.caches[which];
    const vaddr_t p = s.mm->slab.kmem_cache_alloc(c, GFP_KERNEL | __GFP_NOWARN);
    if (p) s.adopt(p, s.mm->slab.kmem_cache_size(c), c);
    s.end("kmem_cache_alloc");
  }
  void show(std::ostream& os) const override { os << "kmem_cache_alloc(cache #" << which << ")"; }
};

struct Free : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.begin("free");
    if (!s.live.empty()) {
      auto it = std::next(s.live.begin(), static_cast<long>(k % s.live.size()));
      s.check_contents(it->first, it->second);
      if (it->second.cache)
        s.mm->slab.kmem_cache_free(it->second.cache, it->first);
      else
        s.mm->slab.kfree(it->first);
      s.live.erase(it);
    }
    s.end("free");
  }
  void show(std::ostream& os) const override { os << "free(live #" << k << ")"; }
};

struct Krealloc : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  std::uint64_t size = *rc::gen::inRange<std::uint64_t>(1, 6000);
  void run(const Model&, Sut& s) const override {
    s.begin("krealloc");
    for (auto it = s.live.begin(); it != s.live.end(); ++it) {
      if (it->second.cache) continue;  // krealloc is for kmalloc memory
      if (k % 3) {
        if (++it == s.live.end()) break;
        if (it->second.cache) continue;
      }
      const vaddr_t p = it->first;
      const Obj o = it->second;
      s.check_contents(p, o);
      const vaddr_t q = s.mm->slab.krealloc(p, size, GFP_KERNEL | __GFP_NOWARN);
      if (!q) break;  // the old object stays
      s.live.erase(p);
      // The first min(old, new) bytes moved with it.
      std::vector<std::uint8_t> b(std::min(o.size, size));
      RC_ASSERT(s.mm->slab.read(q, b));
      for (auto x : b) RC_ASSERT(x == o.fill);
      s.adopt(q, size, 0);
      break;
    }
    s.end("krealloc");
  }
  void show(std::ostream& os) const override {
    os << "krealloc(live #" << k << ", " << size << ")";
  }
};

struct Housekeeping : Cmd {
  int what = *rc::gen::inRange(0, 4);
  void run(const Model&, Sut& s) const override {
    s.begin("housekeeping");
    switch (what) {
      case 0:
        s.mm->set_cpu(1 - s.mm->cpu());
        break;
      case 1:
        s.mm->tick();
        break;
      case 2:
        for (cache_id c : s.caches) s.mm->slab.kmem_cache_shrink(c);
        break;
      default:
        s.mm->page_alloc.drain_all_pages();
        break;
    }
    s.end("housekeeping");
  }
  void show(std::ostream& os) const override {
    static const char* const names[] = {"switch_cpu", "tick", "kmem_cache_shrink",
                                        "drain_all_pages"};
    os << names[what];
  }
};

void run_property(SlabVariant v, slab_flags_t debug = 0) {
  Sut s(v, debug);
  rc::state::check(Model{}, s,
                   rc::state::gen::execOneOfWithArgs<Kmalloc, Kmalloc, CacheAlloc, Free, Free,
                                                     Krealloc, Housekeeping>());
  s.begin("teardown");
  for (const auto& [p, o] : s.live) {
    s.check_contents(p, o);
    if (o.cache)
      s.mm->slab.kmem_cache_free(o.cache, p);
    else
      s.mm->slab.kfree(p);
  }
  s.live.clear();
  for (cache_id c : s.caches) s.mm->slab.kmem_cache_destroy(c);
  s.end("teardown");
  s.engine.finish();
  if (!s.engine.clean()) RC_FAIL(s.engine.violations().front().to_text(false));
}

RC_GTEST_PROP(SlabState, SlubKeepsObjectsApartAndIntact, ()) {
  run_property(SlabVariant::slub);
}

// slub_debug=FZPU: red zones, poison and tracking around every object.
RC_GTEST_PROP(SlabState, SlubDebugKeepsObjectsApartAndIntact, ()) {
  run_property(SlabVariant::slub,
               SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER);
}

RC_GTEST_PROP(SlabState, SlabKeepsObjectsApartAndIntact, ()) {
  run_property(SlabVariant::slab);
}

// SLAB's debug layout: red zone words, user word, poison.
RC_GTEST_PROP(SlabState, SlabDebugKeepsObjectsApartAndIntact, ()) {
  run_property(SlabVariant::slab, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER);
}

RC_GTEST_PROP(SlabState, SlobKeepsObjectsApartAndIntact, ()) {
  run_property(SlabVariant::slob);
}

}  // namespace
