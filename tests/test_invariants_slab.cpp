// The incremental checks of what a SLUB free just wrote: the freed object's
// free pointer (slab.freelist) and, in debug caches, its re-armed red zones
// and poison (slab.rearm). Each fires on a free corrupted on purpose inside
// the op, stays quiet when the model reported misuse in that op (the bytes
// may be the Program's), and a healthy workload is clean.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "mm/slab/slub.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;

namespace {

using Ids = std::set<std::string>;

class SlabFreeInvariants : public ::testing::Test {
 protected:
  void SetUp() override {
    MmConfig cfg;
    cfg.machine = small_machine(16 * SZ_1M);
    cfg.slab.variant = SlabVariant::slub;
    cfg.vmalloc = false;
    mm = std::make_unique<Mm>(cfg);
    inv::CheckOptions o;
    o.capture_stacks = false;
    engine = std::make_unique<inv::CheckEngine>(*mm, o);
  }
  Slab& sl() { return mm->slab; }
  const kmem_cache& cache(cache_id c) { return *sl().cache(c); }
  Ids ids() const {
    Ids s;
    for (const auto& v : engine->violations()) s.insert(v.invariant);
    return s;
  }
  std::string text() const {
    std::string t;
    for (const auto& v : engine->violations()) t += v.to_text(false);
    return t;
  }
  void store(vaddr_t va, std::uint64_t v) { mm->ram.store64(mm->__pa(va), v); }
  void fill(vaddr_t va, std::uint64_t len, std::uint8_t b) { mm->ram.fill(mm->__pa(va), len, b); }
  // An op that frees obj, then lets `damage` act before the checks run.
  template <class F>
  void free_op(cache_id c, vaddr_t obj, F damage) {
    engine->begin_op(++op_, "kmem_cache_free");
    sl().kmem_cache_free(c, obj);
    damage();
    engine->end_op();
  }
  std::unique_ptr<Mm> mm;
  std::unique_ptr<inv::CheckEngine> engine;
  std::int64_t op_ = 0;
};

TEST_F(SlabFreeInvariants, CleanFreesOnEveryPath) {
  const cache_id plain = sl().kmem_cache_create("plain", 96, 0, 0);
  const cache_id debug = sl().kmem_cache_create(
      "debug", 40, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_CONSISTENCY_CHECKS);
  std::vector<std::pair<cache_id, vaddr_t>> live;
  std::uint64_t x = 7;
  for (int i = 0; i < 3000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    engine->begin_op(++op_, "op");
    mm->set_cpu(static_cast<int>((x >> 41) % mm->nr_cpus()));
    if (live.empty() || (x >> 33) % 5 < 3) {
      const cache_id c = (x >> 20) & 1 ? plain : debug;
      const vaddr_t o = sl().kmem_cache_alloc(c, GFP_KERNEL);
      if (o) live.emplace_back(c, o);
    } else {
      const auto k = static_cast<std::size_t>((x >> 12) % live.size());
      sl().kmem_cache_free(live[k].first, live[k].second);
      live.erase(live.begin() + static_cast<long>(k));
    }
    engine->end_op();
  }
  engine->finish();
  EXPECT_TRUE(engine->clean()) << text();
}

TEST_F(SlabFreeInvariants, FreelistFiresOnAGarbageFreePointer) {
  const cache_id c = sl().kmem_cache_create("victim", 96, 0, 0);
  const vaddr_t a = sl().kmem_cache_alloc(c, GFP_KERNEL);
  sl().kmem_cache_alloc(c, GFP_KERNEL);
  // The free stores its pointer somewhere else: the slot keeps junk.
  free_op(c, a, [&] { store(a + cache(c).offset, 0x4141414141414141ull); });
  EXPECT_EQ(ids(), Ids{"slab.freelist"}) << text();
  EXPECT_EQ(engine->violations()[0].kind, inv::ViolationKind::invariant);
}

TEST_F(SlabFreeInvariants, FreelistFiresOnAFreePointerToAnAllocatedObject) {
  const cache_id c = sl().kmem_cache_create("victim", 96, 0, 0);
  const vaddr_t a = sl().kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t b = sl().kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_EQ(sl().find_object(a)->slab, sl().find_object(b)->slab);
  free_op(c, a, [&] {
    const vaddr_t at = a + cache(c).offset;
    store(at, slub::freelist_ptr(cache(c), b, at));  // b is live
  });
  EXPECT_EQ(ids(), Ids{"slab.freelist"}) << text();
}

TEST_F(SlabFreeInvariants, FreelistIsQuietWhenTheOpWasMisuse) {
  const vaddr_t a = sl().kmalloc(96, GFP_KERNEL);
  sl().kmalloc(96, GFP_KERNEL);
  sl().kfree(a);
  // The Program smashed the free object's pointer (a use after free), then
  // kfree()s it again: the double free is the report, not the pointer.
  store(a + cache(sl().find_object(a)->cache).offset, 0x4141414141414141ull);
  engine->begin_op(++op_, "kfree");
  sl().kfree(a);
  engine->end_op();
  EXPECT_EQ(ids(), Ids{"slab.double_free"}) << text();
}

TEST_F(SlabFreeInvariants, RearmFiresOnARightRedZoneLeftActive) {
  const cache_id c =
      sl().kmem_cache_create("debug", 40, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER);
  const vaddr_t a = sl().kmem_cache_alloc(c, GFP_KERNEL);
  const kmem_cache& s = cache(c);
  free_op(c, a, [&] { fill(a + s.object_size, s.inuse - s.object_size, SLUB_RED_ACTIVE); });
  EXPECT_EQ(ids(), Ids{"slab.rearm"}) << text();
  EXPECT_EQ(engine->violations()[0].kind, inv::ViolationKind::invariant);
  EXPECT_NE(engine->violations()[0].title.find("Right Redzone not re-armed"), std::string::npos)
      << text();
}

TEST_F(SlabFreeInvariants, RearmFiresOnPoisonNotRestored) {
  const cache_id c = sl().kmem_cache_create("debug", 40, 0, SLAB_POISON);
  const vaddr_t a = sl().kmem_cache_alloc(c, GFP_KERNEL);
  free_op(c, a, [&] { fill(a + 8, 4, 0x00); });
  EXPECT_EQ(ids(), Ids{"slab.rearm"}) << text();
}

// What a Program did to the red zone before the free is SLUB debug's
// report (misuse), never slab.rearm: the free re-arms it or refuses.
TEST_F(SlabFreeInvariants, RearmIsQuietAfterAProgramsOverflow) {
  for (const slab_flags_t extra : {slab_flags_t{0}, SLAB_CONSISTENCY_CHECKS}) {
    engine->clear();
    const std::string name = extra ? "checked" : "unchecked";
    const cache_id c =
        sl().kmem_cache_create(name, 40, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | extra);
    const vaddr_t a = sl().kmem_cache_alloc(c, GFP_KERNEL);
    engine->begin_op(++op_, "write");
    sl().fill(a + 40, 4, 0x77);  // slab-out-of-bounds into the right red zone
    engine->end_op();
    free_op(c, a, [] {});
    const Ids got = ids();
    EXPECT_FALSE(got.count("slab.rearm")) << name << "\n" << text();
    EXPECT_TRUE(got.count("kasan.out_of_bounds")) << name << "\n" << text();
    if (extra) {
      EXPECT_TRUE(got.count("slab.redzone")) << text();  // the free refused it
    }
  }
}

}  // namespace
