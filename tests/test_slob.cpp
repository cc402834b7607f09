// SLOB: the heap as simulated RAM holds it, the kmem_cache and kmalloc APIs,
// the seed 003 example against SLOB's layout rules, KASAN-style checks,
// misuse of frees, and every invariant of the SLOB checker.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/slab/slob.h"
#include "mm/testing/corrupt.h"
#include "tests/sweep_ids.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;

namespace {

using mmfuzz::testing::Ids;
using mmfuzz::testing::sweep_ids;

struct Recorder : MmObserver {
  std::vector<Misuse> misuses;
  void misuse(const Misuse& m) override { misuses.push_back(m); }
  std::set<std::string> ids() const {
    std::set<std::string> s;
    for (const auto& m : misuses) s.insert(misuse_id(m.kind));
    return s;
  }
};

MmConfig slob_config() {
  MmConfig cfg;
  cfg.machine = small_machine(64 * SZ_1M);
  cfg.slab.variant = SlabVariant::slob;
  cfg.vmalloc = false;  // the vmap_area objects would take the first small page
  return cfg;
}

std::vector<std::uint8_t> bytes(Mm& mm, vaddr_t va, std::size_t n) {
  std::vector<std::uint8_t> b(n);
  mm.ram.read(mm.__pa(va), b);
  return b;
}

std::int16_t s16(Mm& mm, vaddr_t va) {
  const auto b = bytes(mm, va, 2);
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(b[0] | (b[1] << 8)));
}

void put_s16(Mm& mm, vaddr_t va, std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  const std::uint8_t b[2] = {static_cast<std::uint8_t>(u & 0xff),
                             static_cast<std::uint8_t>(u >> 8)};
  mm.ram.write(mm.__pa(va), b);
}

std::uint32_t u32(Mm& mm, vaddr_t va) {
  const auto b = bytes(mm, va, 4);
  std::uint32_t v;
  std::memcpy(&v, b.data(), 4);
  return v;
}

long slab_bytes(const Mm& mm) {
  long n = 0;
  for (const auto& nd : mm.page_alloc.node_data) n += nd.vm_stat[NR_SLAB_UNRECLAIMABLE_B];
  return n;
}

std::vector<pfn_t> list_pages(Mm& mm, int l) {
  const SlobAllocator* a = slob_allocator(mm.slab);
  std::vector<pfn_t> out;
  const page_list head = a->slob_list(l);
  for (std::uint32_t id = mm.slab.lists.L(head).next; id != head; id = mm.slab.lists.L(id).next)
    out.push_back(mm.slab.lists.pfn_of(id));
  return out;
}

int list_of(Mm& mm, pfn_t pfn) {
  for (int l = 0; l < slob::kNrLists; ++l) {
    const auto v = list_pages(mm, l);
    if (std::find(v.begin(), v.end(), pfn) != v.end()) return l;
  }
  return slob::kNoList;
}

class SlobTest : public ::testing::Test {
 protected:
  SlobTest() : mm(slob_config()), sl(mm.slab), a(*slob_allocator(mm.slab)) { mm.attach(&rec); }
  pfn_t pfn(vaddr_t v) const { return mm.virt_to_pfn(v); }
  page& pg(vaddr_t v) { return mm.pfn_to_page(mm.virt_to_pfn(v)); }
  vaddr_t base(vaddr_t v) const { return mm.page_address(mm.virt_to_pfn(v)); }
  Mm mm;
  Slab& sl;
  SlobAllocator& a;
  Recorder rec;
};

// ---------------------------------------------------------------- boot

TEST_F(SlobTest, BootsWithOnlyTheKmemCacheCache) {
  EXPECT_EQ(sl.variant, SlabVariant::slob);
  EXPECT_STREQ(sl.allocator->name(), "slob");
  EXPECT_TRUE(sl.allocator->own_kmalloc());
  ASSERT_EQ(sl.slab_caches.size(), 1u);
  EXPECT_EQ(sl.cache(sl.slab_caches[0])->name, "kmem_cache");
  for (const auto& row : sl.kmalloc_caches)
    for (cache_id id : row) EXPECT_EQ(id, 0u);
  EXPECT_EQ(a.unit(), 2u);
  EXPECT_EQ(a.units_per_page(), 2048u);
  EXPECT_EQ(a.minalign(), 128u);  // ARCH_KMALLOC_MINALIGN = ARCH_DMA_MINALIGN on arm64 6.1
  const std::string info = procfs::slabinfo(mm);
  EXPECT_NE(info.find("kmem_cache"), std::string::npos);
  EXPECT_EQ(info.find("kmalloc-"), std::string::npos) << info;
  EXPECT_EQ(slab_bytes(mm), 4096) << "the boot cache's own struct kmem_cache: one page";
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// KMALLOC_MIN_SIZE 8: kmalloc's header and alignment shrink to 8 bytes.
TEST(SlobKmallocMin, EightByteMinimumShrinksTheHeader) {
  MmConfig cfg = slob_config();
  cfg.slab.kmalloc_min_size = 8;
  Mm mm(cfg);
  const SlobAllocator& a = *slob_allocator(mm.slab);
  EXPECT_EQ(a.minalign(), 8u);
  const vaddr_t p = mm.slab.kmalloc(20, GFP_KERNEL);
  const vaddr_t q = mm.slab.kmalloc(20, GFP_KERNEL);
  ASSERT_NE(p, 0u);
  EXPECT_EQ(p % 8, 0u);
  // Back to back: 8 header bytes + 20 bytes, rounded to units, then q's header.
  EXPECT_LT(q > p ? q - p : p - q, 64u);
  mm.slab.kfree(p);
  mm.slab.kfree(q);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- the heap in RAM

TEST_F(SlobTest, FreeBlocksAreEncodedInRamAsSlobDoes) {
  // 14 bytes (7 units) aligned to 8: the second object leaves a one-unit gap.
  const cache_id c = sl.kmem_cache_create("enc", 14, 8, 0);
  ASSERT_NE(c, 0u);
  const vaddr_t x = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t b = base(x);
  ASSERT_EQ(x, b) << "the first small object opens a fresh page";
  EXPECT_TRUE(PageSlab(pg(x)));
  EXPECT_TRUE(pg(x).test(PG_private)) << "PG_slob_free: on a list";
  EXPECT_EQ(pg(x).slab.inuse, 2048 - 7);
  // The rest of the page: one block of 2041 units at unit 7, next = page end.
  EXPECT_EQ(s16(mm, b + 14), 2041);
  EXPECT_EQ(s16(mm, b + 16), 2048);
  EXPECT_EQ(pg(x).slab.freelist, b + 14);
  const vaddr_t y = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(y, b + 16);
  // A one-unit block holds minus the offset of the next free block (unit 15).
  EXPECT_EQ(s16(mm, b + 14), -15);
  EXPECT_EQ(s16(mm, b + 30), 2048 - 15);
  EXPECT_EQ(s16(mm, b + 32), 2048);
  EXPECT_EQ(pg(x).slab.inuse, 2048 - 14);
  // Freeing x merges it with the one-unit block behind it.
  sl.kmem_cache_free(c, x);
  EXPECT_EQ(pg(y).slab.freelist, b);
  EXPECT_EQ(s16(mm, b), 8);
  EXPECT_EQ(s16(mm, b + 2), 15);
  EXPECT_EQ(pg(y).slab.inuse, 2048 - 7);
  // Freeing y empties the page: it goes back to the page allocator.
  const long before = slab_bytes(mm);
  const pfn_t p = pfn(y);
  sl.kmem_cache_free(c, y);
  EXPECT_FALSE(PageSlab(mm.pfn_to_page(p)));
  EXPECT_FALSE(mm.pfn_to_page(p).test(PG_private));
  EXPECT_EQ(slab_bytes(mm), before - 4096);
  EXPECT_EQ(a.shadow_of(p), nullptr);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, FreeMergesWithBothNeighbours) {
  const cache_id c = sl.kmem_cache_create("merge", 32, 8, 0);
  std::vector<vaddr_t> o;
  for (int i = 0; i < 5; ++i) o.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  const vaddr_t b = base(o[0]);
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(o[static_cast<std::size_t>(i)], b + 32u * static_cast<unsigned>(i));
  sl.kmem_cache_free(c, o[1]);
  sl.kmem_cache_free(c, o[3]);
  EXPECT_EQ(pg(b).slab.freelist, b + 32);
  EXPECT_EQ(s16(mm, b + 32), 16);
  EXPECT_EQ(s16(mm, b + 34), 48);  // next: o[3] at unit 48
  sl.kmem_cache_free(c, o[2]);     // joins o[1] before and o[3] after
  EXPECT_EQ(s16(mm, b + 32), 48);
  EXPECT_EQ(s16(mm, b + 34), 80);  // then the tail after o[4]
  EXPECT_EQ(pg(b).slab.inuse, 2048 - 32);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, ListsBySize) {
  // kmalloc(n) takes n + 128 bytes: < 256 small, < 1024 medium, else large.
  const vaddr_t s = sl.kmalloc(100, GFP_KERNEL);
  const vaddr_t m = sl.kmalloc(200, GFP_KERNEL);
  const vaddr_t l = sl.kmalloc(1000, GFP_KERNEL);
  EXPECT_EQ(list_of(mm, pfn(s)), slob::kSmall);
  EXPECT_EQ(list_of(mm, pfn(m)), slob::kMedium);
  EXPECT_EQ(list_of(mm, pfn(l)), slob::kLarge);
  const cache_id c = sl.kmem_cache_create("c255", 255, 8, 0);
  const cache_id d = sl.kmem_cache_create("c256", 256, 8, 0);
  EXPECT_EQ(list_of(mm, pfn(sl.kmem_cache_alloc(c, GFP_KERNEL))), slob::kSmall);
  EXPECT_EQ(list_of(mm, pfn(sl.kmem_cache_alloc(d, GFP_KERNEL))), slob::kMedium);
}

TEST_F(SlobTest, TheListRotationHeuristic) {
  // 2000-byte objects: two to a page, 48 units left over.
  const cache_id c = sl.kmem_cache_create("big", 2000, 8, 0);
  std::vector<vaddr_t> o;
  for (int i = 0; i < 4; ++i) o.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  const pfn_t p1 = pfn(o[0]), p2 = pfn(o[2]);
  ASSERT_EQ(pfn(o[1]), p1);
  ASSERT_EQ(pfn(o[3]), p2);
  auto order = [&] {
    std::vector<pfn_t> v;
    for (pfn_t p : list_pages(mm, slob::kLarge))
      if (p == p1 || p == p2) v.push_back(p);
    return v;
  };
  EXPECT_EQ(order(), (std::vector<pfn_t>{p2, p1})) << "new pages go to the head";
  sl.kmem_cache_free(c, o[0]);
  const vaddr_t again = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(again, o[0]) << "p2 has no room, p1 does";
  EXPECT_EQ(list_pages(mm, slob::kLarge).front(), p1) << "list_rotate_to_front()";
  EXPECT_EQ(order(), (std::vector<pfn_t>{p1, p2}));
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, FullPagesLeaveTheListAndComeBackOnFree) {
  const cache_id c = sl.kmem_cache_create("half", 2048, 8, 0);
  const vaddr_t x = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t y = sl.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_EQ(pfn(x), pfn(y));
  EXPECT_EQ(pg(x).slab.inuse, 0);
  EXPECT_FALSE(pg(x).test(PG_private));
  EXPECT_EQ(list_of(mm, pfn(x)), slob::kNoList);
  sl.kmem_cache_free(c, y);
  EXPECT_TRUE(pg(x).test(PG_private));
  EXPECT_EQ(list_of(mm, pfn(x)), slob::kLarge) << "the list of the freed block's size";
  EXPECT_EQ(pg(x).slab.freelist, y);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- kmem_cache

TEST_F(SlobTest, CreateKeepsSizeAndAlignmentAndNeverMerges) {
  const cache_id c = sl.kmem_cache_create("c100", 100, 0, SLAB_HWCACHE_ALIGN);
  const cache_id d = sl.kmem_cache_create("d100", 100, 0, SLAB_HWCACHE_ALIGN);
  ASSERT_NE(c, 0u);
  EXPECT_NE(c, d) << "SLOB does not merge caches";
  EXPECT_EQ(sl.cache(c)->size, 100u);
  EXPECT_EQ(sl.cache(c)->align, 64u);
  const cache_id r = sl.kmem_cache_create("rcu", 100, 0, SLAB_TYPESAFE_BY_RCU);
  EXPECT_EQ(sl.cache(r)->size, 124u) << "room for struct slob_rcu";
  EXPECT_EQ(sl.cache(r)->object_size, 100u);
  EXPECT_EQ(sl.kmem_cache_size(r), 100u);
}

TEST_F(SlobTest, ObjectsHonourTheCacheAlignment) {
  for (unsigned align : {8u, 32u, 64u, 256u, 1024u}) {
    const cache_id c = sl.kmem_cache_create("al" + std::to_string(align), 40 + align / 4, align, 0);
    ASSERT_NE(c, 0u);
    for (int i = 0; i < 40; ++i) {
      const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
      ASSERT_NE(o, 0u);
      EXPECT_EQ(o % align, 0u) << align;
      EXPECT_EQ(pfn(o), pfn(o + sl.cache(c)->size - 1)) << "an object never spans pages";
    }
  }
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, AllocFreeReusesFirstFitAndTracksTheObject) {
  const cache_id c = sl.kmem_cache_create("ff", 64, 0, 0);
  const vaddr_t keep = sl.kmem_cache_alloc(c, GFP_KERNEL);  // the page stays
  mm.op_seq = 7;
  mm.call_site = 42;
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const auto ref = sl.find_object(o + 10);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->object, o);
  EXPECT_EQ(ref->cache, c);
  EXPECT_EQ(ref->slab, pfn(o));
  EXPECT_EQ(ref->size, 64u);
  EXPECT_TRUE(ref->allocated);
  const slob::Block* b = a.live_block(o);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->alloc_seq, 7u);
  EXPECT_EQ(b->alloc_site, 42u);
  mm.op_seq = 8;
  sl.kmem_cache_free(c, o);
  EXPECT_FALSE(sl.find_object(o)->allocated) << "a recently freed block is remembered";
  EXPECT_EQ(a.shadow_of(pfn(o))->freed.back().free_seq, 8u);
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), o);
  sl.kmem_cache_free(c, keep);
}

TEST_F(SlobTest, ConstructorsFillEveryNewObject) {
  const cache_id c = sl.kmem_cache_create("ctor", 48, 0, 0, slab_ctor{true, 0x5c});
  const vaddr_t keep = sl.kmem_cache_alloc(c, GFP_KERNEL);  // the page stays
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, o, 48), std::vector<std::uint8_t>(48, 0x5c));
  ASSERT_TRUE(sl.fill(o, 48, 0x11));
  sl.kmem_cache_free(c, o);
  const vaddr_t p = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(p, o);
  EXPECT_EQ(bytes(mm, p, 48), std::vector<std::uint8_t>(48, 0x5c))
      << "SLOB runs ctor on every alloc";
  EXPECT_EQ(bytes(mm, keep, 48), std::vector<std::uint8_t>(48, 0x5c));
}

TEST_F(SlobTest, BulkAllocationAndFree) {
  const cache_id c = sl.kmem_cache_create("bulk", 72, 0, 0);
  vaddr_t objs[20];
  ASSERT_EQ(sl.kmem_cache_alloc_bulk(c, GFP_KERNEL, 20, objs), 20u);
  std::set<vaddr_t> distinct(objs, objs + 20);
  EXPECT_EQ(distinct.size(), 20u);
  EXPECT_EQ(sl.allocator->slabinfo(*sl.cache(c)).active_objs, 20u);
  sl.kmem_cache_free_bulk(c, 20, objs);
  EXPECT_EQ(sl.allocator->slabinfo(*sl.cache(c)).active_objs, 0u);
  for (vaddr_t o : objs) EXPECT_FALSE(sl.find_object(o) && sl.find_object(o)->allocated);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlobTest, DestroyRefusesWhileObjectsRemain) {
  const long baseline = slab_bytes(mm);
  const cache_id c = sl.kmem_cache_create("busy", 300, 0, 0);
  std::vector<vaddr_t> o;
  for (int i = 0; i < 30; ++i) o.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  sl.kmem_cache_destroy(c);
  EXPECT_EQ(rec.ids(), Ids{"slab.destroy_busy"});
  EXPECT_FALSE(sl.cache(c)->destroyed);
  rec.misuses.clear();
  for (vaddr_t v : o) sl.kmem_cache_free(c, v);
  EXPECT_EQ(sl.kmem_cache_shrink(c), 0);
  sl.kmem_cache_destroy(c);
  EXPECT_TRUE(sl.cache(c)->destroyed);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(slab_bytes(mm), baseline) << "every page went back, the struct kmem_cache too";
  sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(rec.ids(), Ids{"slab.cache_destroyed"});
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, DestroyForgetsTheFreedObjectsOfTheCache) {
  inv::CheckOptions opt;
  opt.capture_stacks = false;
  inv::CheckEngine e(mm, opt);
  const vaddr_t keep = sl.kmalloc(10, GFP_KERNEL);  // shares the page
  const cache_id c = sl.kmem_cache_create("gone", 24, 0, 0);
  std::vector<vaddr_t> o;
  for (int i = 0; i < 5; ++i) o.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  e.begin_op(1, "kmem_cache_destroy");
  for (vaddr_t v : o) sl.kmem_cache_free(c, v);
  ASSERT_TRUE(sl.find_object(o[0]));
  sl.kmem_cache_destroy(c);
  e.end_op();
  EXPECT_TRUE(e.clean()) << (e.clean() ? "" : e.violations()[0].to_text(false));
  const auto ref = sl.find_object(o[0]);
  EXPECT_FALSE(ref && sl.cache(ref->cache)->destroyed) << "no record names the dead cache";
  std::uint8_t b[1];
  EXPECT_FALSE(sl.read(o[0], b)) << "still no place for the caller";
  sl.kfree(keep);
}

TEST_F(SlobTest, PageSizedObjectsComeStraightFromThePageAllocator) {
  const long baseline = slab_bytes(mm);
  const cache_id c = sl.kmem_cache_create("pages", 5000, 0, 0);
  const long with_cache = slab_bytes(mm);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_NE(o, 0u);
  EXPECT_EQ(o, base(o));
  // The kernel leaves these plain pages; the model marks them a compound
  // PG_slab block so the slab layer's object checks reach them.
  EXPECT_TRUE(PageSlab(pg(o)));
  EXPECT_TRUE(PageHead(pg(o)));
  EXPECT_EQ(pg(o).slab.cache, c);
  EXPECT_EQ(mm.page_alloc.owner(pfn(o)).order, 1);
  std::uint8_t b[8] = {};
  EXPECT_TRUE(sl.write(o + 4992, b));
  EXPECT_FALSE(sl.write(o + 4996, b)) << "KASAN bounds from the object size";
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  sl.kfree(o);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"}) << "kfree() of a kmem_cache object";
  rec.misuses.clear();
  EXPECT_EQ(slab_bytes(mm), with_cache + 8192);
  const auto info = sl.allocator->slabinfo(*sl.cache(c));
  EXPECT_EQ(info.pagesperslab, 2u);
  EXPECT_EQ(info.active_objs, 1u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
  sl.kmem_cache_free(c, o);
  EXPECT_FALSE(PageSlab(pg(o)));
  EXPECT_EQ(slab_bytes(mm), with_cache);
  EXPECT_TRUE(rec.misuses.empty());
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(rec.ids().size(), 1u);
  EXPECT_TRUE(rec.ids().count("slab.double_free") || rec.ids().count("slab.invalid_free"))
      << "the pages are gone: what the slab layer says depends on it";
  sl.kmem_cache_destroy(c);
  EXPECT_EQ(slab_bytes(mm), baseline);
}

TEST_F(SlobTest, TypesafeByRcuFreesAfterAGracePeriod) {
  const cache_id c = sl.kmem_cache_create("rcu", 100, 0, SLAB_TYPESAFE_BY_RCU);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t keep = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(u32(mm, o + 124 - 24 + 16), 124u) << "slob_rcu->size in the footer";
  EXPECT_EQ(a.rcu_pending().size(), 1u);
  EXPECT_FALSE(sl.find_object(o)->allocated);
  EXPECT_EQ(sweep_ids(mm), Ids{});
  const vaddr_t n = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_NE(n, o) << "not reusable before the grace period";
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
  rec.misuses.clear();
  sl.tick();
  EXPECT_TRUE(a.rcu_pending().empty());
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), o) << "freed by kmem_rcu_free()";
  sl.kmem_cache_free(c, keep);
  sl.kmem_cache_free(c, n);
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(a.rcu_pending().size(), 3u);
  sl.kmem_cache_destroy(c);  // rcu_barrier() first
  EXPECT_TRUE(sl.cache(c)->destroyed);
  EXPECT_TRUE(a.rcu_pending().empty());
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, RcuBacklogIsBounded) {
  const cache_id c = sl.kmem_cache_create("rcu2", 16, 0, SLAB_TYPESAFE_BY_RCU);
  std::vector<vaddr_t> o;
  for (std::size_t i = 0; i < SlobAllocator::kMaxRcuPending + 10; ++i)
    o.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  for (vaddr_t v : o) sl.kmem_cache_free(c, v);
  EXPECT_EQ(a.rcu_pending().size(), SlobAllocator::kMaxRcuPending);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, RcuFooterCorruptionIsReportedAndTheBlockStillFreed) {
  const cache_id c = sl.kmem_cache_create("rcu3", 64, 0, SLAB_TYPESAFE_BY_RCU);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t keep = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, o);
  const std::uint8_t junk[4] = {1, 2, 3, 4};
  mm.ram.write(mm.__pa(o + 88 - 24 + 16), junk);
  sl.tick();
  EXPECT_EQ(rec.ids(), Ids{"slab.freeptr"});
  EXPECT_TRUE(a.rcu_pending().empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
  sl.kmem_cache_free(c, keep);
}

// ---------------------------------------------------------------- kmalloc

TEST_F(SlobTest, KmallocPutsTheSizeInAHeaderInFront) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  ASSERT_NE(p, 0u);
  EXPECT_EQ(p % 128, 0u) << "the object is minalign-aligned, the header before it";
  EXPECT_EQ(u32(mm, p - 128), 100u);
  EXPECT_TRUE(PageSlab(pg(p)));
  const auto ref = sl.find_object(p);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->object, p);
  EXPECT_EQ(sl.cache(ref->cache)->name, "kmalloc");
  EXPECT_EQ(ref->requested, 100u);
  EXPECT_EQ(ref->size, 100u);
  EXPECT_EQ(pg(p).slab.inuse, 2048 - (100 + 128) / 2);
  sl.kfree(p);
  EXPECT_FALSE(sl.find_object(p)->allocated);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sl.kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
  sl.kfree(ZERO_SIZE_PTR);
  sl.kfree(0);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlobTest, KmallocPowersOfTwoAreNaturallyAligned) {
  for (std::uint64_t size : {256u, 512u, 1024u, 2048u}) {
    for (int i = 0; i < 3; ++i) {
      const vaddr_t p = sl.kmalloc(size, GFP_KERNEL);
      ASSERT_NE(p, 0u);
      EXPECT_EQ(p % size, 0u) << size;
      EXPECT_EQ(u32(mm, p - 128), size);
    }
  }
  const vaddr_t odd = sl.kmalloc(300, GFP_KERNEL);
  EXPECT_EQ(odd % 128, 0u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, KmallocFromPageSizeMinusMinalignUsesPages) {
  const long before = slab_bytes(mm);
  const vaddr_t small = sl.kmalloc(4096 - 128 - 1, GFP_KERNEL);
  EXPECT_TRUE(PageSlab(pg(small)));
  const vaddr_t one = sl.kmalloc(4096 - 128, GFP_KERNEL);
  EXPECT_FALSE(PageSlab(pg(one)));
  EXPECT_FALSE(PageHead(pg(one))) << "order 0: no __GFP_COMP";
  const vaddr_t two = sl.kmalloc(5000, GFP_KERNEL);
  EXPECT_EQ(two, base(two));
  EXPECT_TRUE(PageHead(pg(two))) << "order 1: a compound page";
  EXPECT_EQ(slab_bytes(mm), before + 4096 * 4);
  EXPECT_FALSE(sl.find_object(two)) << "a large kmalloc is no slab object";
  EXPECT_EQ(sl.large_kmalloc_size(pfn(two)), 5000u);
  EXPECT_EQ(sl.ksize(two), 8192u);
  EXPECT_EQ(sl.ksize(one), 4096u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
  sl.kfree(two);
  sl.kfree(one);
  sl.kfree(small);
  EXPECT_EQ(slab_bytes(mm), before);
  EXPECT_TRUE(sl.large_kmallocs().empty());
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, KzallocZeroesAndPlainKmallocDoesNot) {
  const vaddr_t keep = sl.kmalloc(64, GFP_KERNEL);  // the page stays
  const vaddr_t p = sl.kmalloc(64, GFP_KERNEL);
  ASSERT_TRUE(sl.fill(p, 64, 0xaa));
  sl.kfree(p);
  // SLOB has no init_on_alloc: the old bytes are still there.
  const vaddr_t q = sl.kmalloc(64, GFP_KERNEL);
  ASSERT_EQ(q, p);
  EXPECT_EQ(bytes(mm, q + 8, 56), std::vector<std::uint8_t>(56, 0xaa));
  ASSERT_TRUE(sl.fill(q, 64, 0xbb));
  sl.kfree(q);
  const vaddr_t z = sl.kzalloc(64, GFP_KERNEL);
  ASSERT_EQ(z, p);
  EXPECT_EQ(bytes(mm, z, 64), std::vector<std::uint8_t>(64, 0));
  EXPECT_EQ(u32(mm, z - 128), 64u) << "the header is written after the memset";
  const vaddr_t cz = sl.kcalloc(10, 10, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, cz, 100), std::vector<std::uint8_t>(100, 0));
  const cache_id c = sl.kmem_cache_create("zc", 40, 0, 0);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_TRUE(sl.fill(o, 40, 0xcc));
  sl.kmem_cache_free(c, o);
  const vaddr_t oz = sl.kmem_cache_zalloc(c, GFP_KERNEL);
  EXPECT_EQ(oz, o);
  EXPECT_EQ(bytes(mm, oz, 40), std::vector<std::uint8_t>(40, 0));
  sl.kfree(keep);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlobTest, KsizeIsTheHeaderRoundedToUnitsAndUnpoisons) {
  const vaddr_t p = sl.kmalloc(101, GFP_KERNEL);
  const std::uint8_t b[1] = {7};
  std::uint8_t in[1];
  EXPECT_FALSE(sl.read(p + 101, in));
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  EXPECT_EQ(sl.ksize(p), 102u);  // SLOB_UNITS(101) * SLOB_UNIT
  EXPECT_TRUE(sl.write(p + 101, b)) << "ksize() handed the caller all 102";
  EXPECT_FALSE(sl.read(p + 102, in)) << "the next block (free here) begins";
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  const cache_id c = sl.kmem_cache_create("ks", 50, 0, 0);
  EXPECT_EQ(sl.ksize(sl.kmem_cache_alloc(c, GFP_KERNEL)), 50u);
  sl.kfree(p);
  EXPECT_EQ(sl.ksize(p), 0u);
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
}

TEST_F(SlobTest, KreallocKeepsContentsAndFollowsKsize) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  std::vector<std::uint8_t> data(100);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i + 1);
  ASSERT_TRUE(sl.write(p, data));
  EXPECT_EQ(sl.krealloc(p, 100, GFP_KERNEL), p) << "ksize 100 still fits";
  EXPECT_EQ(sl.krealloc(p, 60, GFP_KERNEL), p);
  const vaddr_t q = sl.krealloc(p, 101, GFP_KERNEL);
  ASSERT_NE(q, p);
  EXPECT_EQ(bytes(mm, q, 100), data);
  EXPECT_FALSE(sl.find_object(p)->allocated);
  EXPECT_EQ(u32(mm, q - 128), 101u);
  // Into a large kmalloc and within it.
  const vaddr_t big = sl.krealloc(q, 6000, GFP_KERNEL);
  ASSERT_NE(big, 0u);
  EXPECT_FALSE(PageSlab(pg(big)));
  EXPECT_EQ(bytes(mm, big, 100), data);
  EXPECT_EQ(sl.krealloc(big, 8000, GFP_KERNEL), big) << "an order-1 page holds 8192";
  const vaddr_t bigger = sl.krealloc(big, 9000, GFP_KERNEL);
  ASSERT_NE(bigger, big);
  EXPECT_EQ(bytes(mm, bigger, 100), data);
  EXPECT_EQ(sl.krealloc(bigger, 0, GFP_KERNEL), ZERO_SIZE_PTR);
  const vaddr_t r = sl.krealloc(0, 50, GFP_KERNEL);
  EXPECT_TRUE(sl.find_object(r)->allocated);
  sl.kfree(r);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_TRUE(sl.large_kmallocs().empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, KfreeSensitiveAndKmemdup) {
  const vaddr_t p = sl.kmalloc(30, GFP_KERNEL);
  ASSERT_TRUE(sl.fill(p, 30, 0x77));
  const vaddr_t d = sl.kmemdup(p, 30, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, d, 30), std::vector<std::uint8_t>(30, 0x77));
  sl.kfree_sensitive(p);
  EXPECT_EQ(bytes(mm, p + 8, 22), std::vector<std::uint8_t>(22, 0)) << "memzero_explicit()";
  sl.kfree(d);
  EXPECT_TRUE(rec.misuses.empty());
}

// ---------------------------------------------------------------- seed 003

TEST_F(SlobTest, SeedExample74BytesHwcacheAligned) {
  const cache_id c = sl.kmem_cache_create("sample", 74, 0, SLAB_HWCACHE_ALIGN);
  ASSERT_NE(c, 0u);
  const long baseline = slab_bytes(mm);
  // SLOB's layout from first principles: 74 bytes are 37 two-byte units;
  // SLAB_HWCACHE_ALIGN with a 64-byte line aligns a 74-byte object to 64.
  // First fit puts object k of a page at the first 64-aligned offset after
  // object k-1's end: 0, 128, 256, ... while offset + 74 <= 4096.
  const unsigned unit = 2, units = (74 + unit - 1) / unit, align = 64;
  unsigned per_page = 0;
  for (unsigned at = 0; at + units * unit <= 4096;
       at = (at + units * unit + align - 1) / align * align)
    ++per_page;
  ASSERT_EQ(per_page, 32u);
  const unsigned n = 1000, pages = (n + per_page - 1) / per_page;  // 32
  std::vector<vaddr_t> objs;
  std::map<pfn_t, unsigned> per;
  for (unsigned i = 0; i < n; ++i) {
    const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
    ASSERT_NE(o, 0u);
    ASSERT_EQ(o % 64, 0u);
    objs.push_back(o);
    per[pfn(o)]++;
  }
  EXPECT_EQ(per.size(), pages);
  for (const auto& [p, k] : per) EXPECT_LE(k, per_page);
  EXPECT_EQ(slab_bytes(mm) - baseline, static_cast<long>(pages) * 4096);
  // The model's slabinfo line for SLOB.
  const std::string text = procfs::slabinfo(mm);
  const auto at = text.find("\nsample ");
  ASSERT_NE(at, std::string::npos) << text;
  std::istringstream line(text.substr(at + 1));
  std::string name, colon, tun, slabdata;
  unsigned long active, total, objsize, objperslab, pagesperslab, limit, batch, shared, aslabs,
      nslabs, avail;
  line >> name >> active >> total >> objsize >> objperslab >> pagesperslab >> colon >> tun >>
      limit >> batch >> shared >> colon >> slabdata >> aslabs >> nslabs >> avail;
  EXPECT_EQ(active, n);
  EXPECT_EQ(objsize, 74u);
  EXPECT_EQ(objperslab, per_page);
  EXPECT_EQ(pagesperslab, 1u);
  EXPECT_EQ(nslabs, pages);
  EXPECT_EQ(aslabs, pages);
  EXPECT_EQ(total, std::uint64_t{pages} * per_page);
  EXPECT_EQ(limit + batch + shared + avail, 0u);
  const std::string meminfo = procfs::meminfo(mm);
  EXPECT_NE(meminfo.find("SReclaimable:          0 kB"), std::string::npos) << meminfo;
  EXPECT_EQ(sweep_ids(mm), Ids{});
  // Every other object freed: no page empties.
  for (std::size_t i = 0; i < objs.size(); i += 2) sl.kmem_cache_free(c, objs[i]);
  auto info = sl.allocator->slabinfo(*sl.cache(c));
  EXPECT_EQ(info.active_objs, n / 2);
  EXPECT_EQ(info.num_slabs, pages);
  EXPECT_EQ(slab_bytes(mm) - baseline, static_cast<long>(pages) * 4096);
  for (std::size_t i = 1; i < objs.size(); i += 2) sl.kmem_cache_free(c, objs[i]);
  info = sl.allocator->slabinfo(*sl.cache(c));
  EXPECT_EQ(info.active_objs, 0u);
  EXPECT_EQ(info.num_slabs, 0u);
  EXPECT_EQ(slab_bytes(mm), baseline) << "empty pages go back at once";
  EXPECT_TRUE(rec.misuses.empty());
  sl.kmem_cache_destroy(c);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- KASAN

TEST_F(SlobTest, KasanOutOfBoundsPastAKmallocObject) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  std::uint8_t b[8] = {};
  EXPECT_TRUE(sl.read(p, b));
  EXPECT_TRUE(sl.write(p + 92, b));
  EXPECT_FALSE(sl.write(p + 96, b));
  ASSERT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  EXPECT_EQ(rec.misuses.back().addr, p + 100) << "the first bad byte";
  EXPECT_EQ(rec.misuses.back().what, "slab-out-of-bounds");
  rec.misuses.clear();
  EXPECT_FALSE(sl.read(p - 4, b)) << "the size header is not the caller's";
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  // Free space of a SLOB page nobody ever allocated.
  EXPECT_FALSE(sl.read(base(p) + 4000, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  // A large kmalloc: the requested size bounds it too.
  const vaddr_t l = sl.kmalloc(5000, GFP_KERNEL);
  EXPECT_TRUE(sl.write(l + 4992, b));
  EXPECT_FALSE(sl.write(l + 4996, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
}

TEST_F(SlobTest, KasanUseAfterFree) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  const vaddr_t keep = sl.kmalloc(100, GFP_KERNEL);  // the page stays
  sl.kfree(p);
  std::uint8_t b[4] = {};
  EXPECT_FALSE(sl.read(p + 10, b));
  ASSERT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  EXPECT_EQ(rec.misuses.back().object, p);
  rec.misuses.clear();
  const cache_id c = sl.kmem_cache_create("uaf", 40, 0, 0);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t o2 = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, o);
  EXPECT_FALSE(sl.read(o, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  rec.misuses.clear();
  sl.kmem_cache_free(c, o2);
  sl.kfree(keep);
  // Once the page is gone, the page allocator's view takes over.
  ASSERT_FALSE(PageSlab(pg(keep)));
  mm.page_alloc.drain_all_pages();
  EXPECT_FALSE(sl.read(keep, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
}

TEST_F(SlobTest, UseAfterFreeWriteCorruptsTheFreeListAndIsCaught) {
  const cache_id c = sl.kmem_cache_create("fl", 64, 0, 0);
  const vaddr_t x = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t y = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t z = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, y);  // a free block between x and z
  const std::vector<std::uint8_t> junk(4, 0x41);
  EXPECT_FALSE(sl.write(y, junk));  // KASAN sees it at once
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  EXPECT_EQ(s16(mm, y), 0x4141) << "and the bytes really land on the free block";
  EXPECT_TRUE(sweep_ids(mm).count("slab.freelist")) << "the checker sees the broken list";
  rec.misuses.clear();
  // SLOB's view: the next allocation on the page walks the list.
  const vaddr_t n = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(rec.ids(), Ids{"slab.freeptr"});
  EXPECT_EQ(n, y) << "the model rebuilt the list from its shadow";
  EXPECT_EQ(sweep_ids(mm), Ids{});
  sl.kmem_cache_free(c, x);
  sl.kmem_cache_free(c, z);
  sl.kmem_cache_free(c, n);
}

TEST_F(SlobTest, OutOfBoundsWriteIntoTheNextFreeBlockIsCaught) {
  const vaddr_t keep = sl.kmalloc(100, GFP_KERNEL);
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  const vaddr_t q = sl.kmalloc(100, GFP_KERNEL);
  sl.kfree(q);
  // p's block is 228 bytes (114 units); the free block after it starts
  // 100 bytes past p: an overflow of p rewrites its units field.
  const std::vector<std::uint8_t> junk(4, 0x7f);
  EXPECT_FALSE(sl.write(p + 100, junk));
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  sl.kfree(p);  // slob_free() walks the page's free list
  EXPECT_EQ(rec.ids(), Ids{"slab.freeptr"});
  EXPECT_EQ(sweep_ids(mm), Ids{});
  sl.kfree(keep);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, TheKmallocPseudoCacheIsNoCache) {
  const cache_id k = a.kmalloc_cache();
  ASSERT_NE(sl.cache(k), nullptr);
  EXPECT_EQ(std::count(sl.slab_caches.begin(), sl.slab_caches.end(), k), 0) << "not in slabinfo";
  EXPECT_EQ(sl.kmem_cache_alloc(k, GFP_KERNEL), 0u);
  EXPECT_EQ(rec.ids(), Ids{"slab.bad_cache"});
  rec.misuses.clear();
  const vaddr_t p = sl.kmalloc(10, GFP_KERNEL);
  sl.kmem_cache_free(k, p);
  EXPECT_EQ(rec.ids(), Ids{"slab.bad_cache"});
  EXPECT_TRUE(sl.find_object(p)->allocated);
  rec.misuses.clear();
  sl.kmem_cache_destroy(k);
  EXPECT_EQ(rec.ids(), Ids{"slab.bad_cache"});
  EXPECT_FALSE(sl.cache(k)->destroyed);
}

TEST_F(SlobTest, IncrementalChecksStayQuiet) {
  inv::CheckOptions o;
  o.capture_stacks = false;
  o.full_every = 50;
  inv::CheckEngine e(mm, o);
  const cache_id c = sl.kmem_cache_create("inc", 90, 0, SLAB_HWCACHE_ALIGN);
  std::vector<vaddr_t> v;
  SplitMix64 r{5};
  for (int i = 0; i < 600; ++i) {
    e.begin_op(i, "op");
    if (v.empty() || r.below(3)) {
      v.push_back(r.below(2) ? sl.kmem_cache_alloc(c, GFP_KERNEL)
                             : sl.kmalloc(1 + r.below(3000), GFP_KERNEL));
    } else {
      const auto k = r.below(v.size());
      const vaddr_t x = v[k];
      v.erase(v.begin() + static_cast<long>(k));
      if (const auto ref = sl.find_object(x); ref && ref->cache == c)
        sl.kmem_cache_free(c, x);
      else
        sl.kfree(x);
    }
    e.end_op();
  }
  e.finish();
  std::string text;
  for (const auto& vi : e.violations()) text += vi.to_text(false);
  EXPECT_TRUE(e.clean()) << text;
  EXPECT_GT(e.nr_sweeps(), 10u);
}

TEST(SlobNuma, NodeRequestsGetPagesOfThatNode) {
  MmConfig cfg = slob_config();
  cfg.machine.nr_nodes = 2;
  cfg.machine.nr_cpus = 4;
  Mm mm(cfg);
  Recorder rec;
  mm.attach(&rec);
  Slab& sl = mm.slab;
  const vaddr_t a0 = sl.kmalloc_node(100, GFP_KERNEL, 0);
  const vaddr_t a1 = sl.kmalloc_node(100, GFP_KERNEL, 1);
  const vaddr_t b1 = sl.kmalloc_node(100, GFP_KERNEL, 1);
  EXPECT_EQ(mm.pfn_to_page(mm.virt_to_pfn(a0)).nid, 0);
  EXPECT_EQ(mm.pfn_to_page(mm.virt_to_pfn(a1)).nid, 1);
  EXPECT_EQ(mm.virt_to_pfn(b1), mm.virt_to_pfn(a1)) << "the node's partial page";
  const vaddr_t l1 = sl.kmalloc_node(10000, GFP_KERNEL, 1);
  EXPECT_EQ(mm.pfn_to_page(mm.virt_to_pfn(l1)).nid, 1);
  // Each node accounts its own pages.
  EXPECT_EQ(mm.page_alloc.node_data[1].vm_stat[NR_SLAB_UNRECLAIMABLE_B], 4096 + 16384);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- misuse of frees

TEST_F(SlobTest, DoubleAndInvalidFrees) {
  const vaddr_t p = sl.kmalloc(50, GFP_KERNEL);
  const vaddr_t keep = sl.kmalloc(50, GFP_KERNEL);
  sl.kfree(p);
  sl.kfree(p);
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
  rec.misuses.clear();
  sl.kfree(keep + 8);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  const cache_id c = sl.kmem_cache_create("mis", 64, 0, 0);
  const cache_id d = sl.kmem_cache_create("other", 64, 0, 0);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kfree(o);  // no size header in front of a kmem_cache object
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  sl.kmem_cache_free(d, o);
  EXPECT_EQ(rec.ids(), Ids{"slab.wrong_cache"});
  rec.misuses.clear();
  sl.kmem_cache_free(c, keep);
  EXPECT_EQ(rec.ids(), Ids{"slab.wrong_cache"});
  rec.misuses.clear();
  sl.kmem_cache_free(c, o);
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
  rec.misuses.clear();
  const vaddr_t page = mm.page_alloc.__get_free_page(GFP_KERNEL);
  sl.kfree(page);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  sl.kmem_cache_free(c, page);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  const vaddr_t big = sl.kmalloc(10000, GFP_KERNEL);
  sl.kfree(big + 4096);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  sl.kfree(big);
  sl.kfree(big);
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
  rec.misuses.clear();
  sl.kfree(0xffff800012345000ull);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  EXPECT_EQ(sweep_ids(mm), Ids{}) << "misuse was refused: the model is intact";
  sl.kfree(keep);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, DoubleFreeOfTheLastObjectOfAReleasedPage) {
  const vaddr_t p = sl.kmalloc(3000, GFP_KERNEL);  // alone on a large-list page
  const pfn_t pp = pfn(p);
  sl.kfree(p);
  ASSERT_FALSE(PageSlab(mm.pfn_to_page(pp)));
  sl.kfree(p);
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
}

TEST_F(SlobTest, CorruptedSizeHeaderIsReportedAndTheObjectKept) {
  const vaddr_t p = sl.kmalloc(40, GFP_KERNEL);
  const std::uint8_t bad[4] = {0xff, 0x0f, 0, 0};
  EXPECT_FALSE(sl.write(p - 128, bad));  // an underflow over the header
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  EXPECT_TRUE(sweep_ids(mm).count("slab.redzone")) << "sweeps see the damage";
  rec.misuses.clear();
  sl.kfree(p);
  EXPECT_EQ(rec.ids(), Ids{"slab.redzone"});
  EXPECT_TRUE(sl.find_object(p)->allocated) << "not freed with a size it cannot trust";
  EXPECT_EQ(u32(mm, p - 128), 40u) << "the header is restored";
  rec.misuses.clear();
  sl.kfree(p);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlobTest, OddAlignmentThatCannotFitIsRefused) {
  // A cache aligned beyond the page: SLOB would BUG() when the page is not
  // aligned for it; the model reports and fails the allocation instead.
  const cache_id c = sl.kmem_cache_create("huge-align", 64, 16384, 0);
  ASSERT_NE(c, 0u);
  int ok = 0, refused = 0;
  for (int i = 0; i < 8; ++i) {
    const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
    if (o) {
      EXPECT_EQ(o % 16384, 0u);
      ++ok;
    } else {
      ++refused;
    }
  }
  EXPECT_EQ(static_cast<std::size_t>(refused), rec.misuses.size()) << "one BUG report each";
  for (const auto& m : rec.misuses) EXPECT_EQ(misuse_id(m.kind), std::string("slab.bad_cache"));
  EXPECT_EQ(sweep_ids(mm), Ids{}) << "a refused page goes back whole";
}

// ---------------------------------------------------------------- invariants

class SlobInvariants : public SlobTest {
 protected:
  SlobInvariants() {
    c = sl.kmem_cache_create("victim", 40, 8, 0);
    for (int i = 0; i < 300; ++i) objs.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
    for (std::size_t i = 0; i < objs.size(); i += 3) sl.kmem_cache_free(c, objs[i]);
    for (int i = 0; i < 20; ++i)
      km.push_back(sl.kmalloc(16 + 37 * static_cast<unsigned>(i), GFP_KERNEL));
    big = sl.kmalloc(9000, GFP_KERNEL);
    victim = pfn(objs[1]);
  }
  page& vp() { return mm.pfn_to_page(victim); }
  // Free blocks of the victim page, from RAM.
  std::vector<std::pair<vaddr_t, int>> free_blocks() {
    std::vector<std::pair<vaddr_t, int>> out;
    for (vaddr_t cur = vp().slab.freelist;;) {
      out.emplace_back(cur, a.block_units(cur));
      const vaddr_t next = a.block_next(cur);
      if ((next & 4095) == 0) break;
      cur = next;
    }
    return out;
  }
  cache_id c = 0;
  std::vector<vaddr_t> objs, km;
  vaddr_t big = 0;
  pfn_t victim = NO_PAGE;
};

TEST_F(SlobInvariants, CleanAfterTheSetup) {
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{}) << text;
  EXPECT_TRUE(vp().test(PG_private));
  EXPECT_GE(free_blocks().size(), 3u);
}

TEST_F(SlobInvariants, ListsFiresOnPgSlobFree) {
  vp().clear(PG_private);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlobInvariants, ListsFiresOnAPageOffItsList) {
  sl.lists.del(victim);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlobInvariants, ListsFiresOnAPageOnTheWrongList) {
  sl.lists.del(victim);
  sl.lists.add(a.slob_list(slob::kLarge), victim);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlobInvariants, ListsFiresOnAFullPageOnAList) {
  // Fill the victim page completely, then put it back on its list.
  const cache_id t = sl.kmem_cache_create("tiny", 8, 8, 0);
  while (vp().slab.inuse) {
    const vaddr_t o = sl.kmem_cache_alloc(t, GFP_KERNEL);
    ASSERT_NE(o, 0u);
  }
  ASSERT_EQ(sweep_ids(mm), Ids{});
  sl.lists.add(a.slob_list(slob::kSmall), victim);
  vp().set(PG_private);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlobInvariants, CountsFiresOnFreeUnits) {
  vp().slab.inuse++;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlobInvariants, CountsFiresOnSlabAccounting) {
  mm.page_alloc.node_data[0].vm_stat[NR_SLAB_UNRECLAIMABLE_B] += 4096;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlobInvariants, CountsFiresOnLostUnits) {
  // The first free block moves up a unit in RAM, and the page counts one
  // unit less: that unit is now neither free nor live.
  const auto fb = free_blocks();
  const auto [first, units] = fb.front();
  ASSERT_GT(units, 2);
  ASSERT_EQ(vp().slab.freelist, first);
  const vaddr_t next = a.block_next(first);
  put_s16(mm, first + 2, static_cast<std::int16_t>(units - 1));
  put_s16(mm, first + 4, static_cast<std::int16_t>((next - mm.page_address(victim)) / 2));
  vp().slab.freelist = first + 2;
  vp().slab.inuse--;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlobInvariants, CountsFiresOnAnRcuBlockWithoutCallback) {
  a.shadow_of(pfn(objs[1]))->live.front().rcu_pending = true;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlobInvariants, CountsFiresOnALargeKmallocTheSlabLayerForgot) {
  auto& large = const_cast<std::vector<std::pair<pfn_t, std::uint64_t>>&>(sl.large_kmallocs());
  ASSERT_EQ(large.size(), 1u);
  large.clear();
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlobInvariants, FreelistFiresOnAListGoingBackwards) {
  // The third free block points back at the second. (Not at the first: that
  // one starts the page, and offset 0 reads as the end of the list.)
  const auto fb = free_blocks();
  ASSERT_GE(fb.size(), 3u);
  const auto [third, units] = fb[2];
  const auto back = static_cast<std::int16_t>((fb[1].first - mm.page_address(victim)) / 2);
  if (units > 1)
    put_s16(mm, third + 2, back);
  else
    put_s16(mm, third, static_cast<std::int16_t>(-back));
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.freelist"}) << text;
}

TEST_F(SlobInvariants, FreelistFiresOnUnmergedNeighbours) {
  // Split the first free block in two adjacent ones: the same units.
  const auto fb = free_blocks();
  const auto [first, units] = fb.front();
  ASSERT_GT(units, 8);
  const vaddr_t next = a.block_next(first);
  const vaddr_t base_va = mm.page_address(victim);
  put_s16(mm, first, 4);
  put_s16(mm, first + 2, static_cast<std::int16_t>((first + 8 - base_va) / 2));
  put_s16(mm, first + 8, static_cast<std::int16_t>(units - 4));
  put_s16(mm, first + 10, static_cast<std::int16_t>((next - base_va) / 2));
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.freelist"});
}

TEST_F(SlobInvariants, OverlapFiresOnAFreeBlockOverALiveOne) {
  // The first free block grows two units into the live block after it.
  const auto fb = free_blocks();
  const auto [first, units] = fb.front();
  ASSERT_GT(units, 1);
  ASSERT_NE(a.live_block(first + static_cast<unsigned>(units) * 2), nullptr);
  put_s16(mm, first, static_cast<std::int16_t>(units + 2));
  vp().slab.inuse = static_cast<std::uint16_t>(vp().slab.inuse + 2);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.overlap"});
}

TEST_F(SlobInvariants, OverlapFiresOnLiveBlocksOverlapping) {
  slob::PageShadow* sh = a.shadow_of(victim);
  // Two neighbouring live blocks: the first grows into the second.
  std::size_t i = 0;
  while (i + 1 < sh->live.size() && sh->live[i].end() != sh->live[i + 1].start) ++i;
  ASSERT_LT(i + 1, sh->live.size());
  sh->live[i].bytes += 4;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.overlap"});
}

TEST_F(SlobInvariants, OverlapFiresWhenAPageBackedObjectIsNotAllocated) {
  PageAllocCorruptor(mm).set_owner(pfn(big), PAGE_OWNER_NONE, 0);
  EXPECT_TRUE(sweep_ids(mm).count("slab.overlap")) << "(the buddy checker sees the owner too)";
}

TEST_F(SlobInvariants, PagesFiresOnAStrayPgSlabPage) {
  const vaddr_t page = mm.page_alloc.__get_free_page(GFP_KERNEL);
  mm.pfn_to_page(pfn(page)).set(PG_slab);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.pages"});
}

TEST_F(SlobInvariants, CleanAfterFreeingEverything) {
  const long boot = 4096;  // the kmem_cache boot cache's page, with two struct kmem_cache now
  for (std::size_t i = 0; i < objs.size(); ++i)
    if (i % 3) sl.kmem_cache_free(c, objs[i]);
  for (vaddr_t p : km) sl.kfree(p);
  sl.kfree(big);
  sl.kmem_cache_destroy(c);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(slab_bytes(mm), boot);
  EXPECT_EQ(a.pages().size(), 1u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- random workload

TEST(SlobWorkload, RandomMixSweepsClean) {
  Mm mm(slob_config());
  Recorder rec;
  mm.attach(&rec);
  Slab& sl = mm.slab;
  const long baseline = slab_bytes(mm);
  struct Obj {
    vaddr_t p;
    cache_id c;  // 0: kmalloc
  };
  std::vector<cache_id> caches;
  const unsigned aligns[] = {0, 8, 16, 64, 128, 512};
  SplitMix64 r{2024};
  for (int i = 0; i < 8; ++i) {
    const unsigned size = 8 + static_cast<unsigned>(r.below(i == 7 ? 6000 : 1500));
    const slab_flags_t f =
        (i % 3 == 0 ? SLAB_HWCACHE_ALIGN : 0) | (i == 5 ? SLAB_TYPESAFE_BY_RCU : 0);
    caches.push_back(sl.kmem_cache_create("w" + std::to_string(i), size, aligns[r.below(6)], f,
                                          slab_ctor{i == 2, 0x3c}));
    ASSERT_NE(caches.back(), 0u);
  }
  std::vector<Obj> live;
  for (int op = 0; op < 20000; ++op) {
    mm.op_seq = static_cast<std::uint32_t>(op + 1);
    mm.set_cpu(static_cast<int>(r.below(mm.nr_cpus())));
    const auto k = r.below(10);
    if (live.empty() || k < 5) {
      if (r.below(2)) {
        const std::uint64_t size = r.below(8) ? 1 + r.below(1200) : 1 + r.below(9000);
        const vaddr_t p = r.below(4) ? sl.kmalloc(size, GFP_KERNEL) : sl.kzalloc(size, GFP_KERNEL);
        ASSERT_NE(p, 0u);
        live.push_back({p, 0});
      } else {
        const cache_id c = caches[r.below(caches.size())];
        const vaddr_t p = sl.kmem_cache_alloc(c, GFP_KERNEL);
        ASSERT_NE(p, 0u);
        live.push_back({p, c});
      }
    } else if (k < 9) {
      const auto i = r.below(live.size());
      const Obj o = live[i];
      live.erase(live.begin() + static_cast<long>(i));
      if (o.c)
        sl.kmem_cache_free(o.c, o.p);
      else
        sl.kfree(o.p);
    } else {
      const auto i = r.below(live.size());
      if (!live[i].c) {
        const vaddr_t q = sl.krealloc(live[i].p, 1 + r.below(5000), GFP_KERNEL);
        ASSERT_NE(q, 0u);
        live[i].p = q;
      } else {
        sl.tick();
      }
    }
    if (op % 2500 == 0) {
      std::string text;
      ASSERT_EQ(sweep_ids(mm, &text), Ids{}) << "op " << op << "\n" << text;
    }
  }
  EXPECT_TRUE(rec.misuses.empty())
      << misuse_id(rec.misuses.front().kind) << " " << rec.misuses.front().detail;
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{}) << text;
  for (const Obj& o : live) {
    if (o.c)
      sl.kmem_cache_free(o.c, o.p);
    else
      sl.kfree(o.p);
  }
  for (cache_id c : caches) sl.kmem_cache_destroy(c);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(slab_bytes(mm), baseline) << "every page back to the page allocator";
  EXPECT_EQ(sweep_ids(mm, &text), Ids{}) << text;
}

TEST(SlobWorkload, SameProgramSameAddresses) {
  auto run = [] {
    Mm mm(slob_config());
    std::vector<vaddr_t> out;
    SplitMix64 r{42};
    for (int i = 0; i < 3000; ++i) {
      if (out.empty() || r.below(3)) {
        out.push_back(mm.slab.kmalloc(1 + r.below(3000), GFP_KERNEL));
      } else {
        const auto k = r.below(out.size());
        mm.slab.kfree(out[k]);
        out.erase(out.begin() + static_cast<long>(k));
      }
    }
    return out;
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
