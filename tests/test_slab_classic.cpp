// SLAB (mm/slab.c of 6.1): cache layout, slabs and their freelist index
// arrays, the per-CPU and shared arrays, cache_reap, debug detection, the
// kmem_cache and kmalloc APIs over SLAB, and the SLAB structure invariants.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/slab/slab_classic.h"
#include "tests/sweep_ids.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;
using namespace mmfuzz::mm::slab_classic;

namespace {

using mmfuzz::testing::Ids;
using mmfuzz::testing::sweep_ids;

struct Recorder : MmObserver {
  std::vector<Misuse> misuses;
  void misuse(const Misuse& m) override { misuses.push_back(m); }
  Ids ids() const {
    Ids s;
    for (const auto& m : misuses) s.insert(misuse_id(m.kind));
    return s;
  }
  const Misuse* find(MisuseKind k) const {
    for (const auto& m : misuses)
      if (m.kind == k) return &m;
    return nullptr;
  }
};

MmConfig slab_config(std::uint64_t ram = 64 * SZ_1M, unsigned nodes = 1, unsigned cpus = 2) {
  MmConfig cfg;
  cfg.machine = small_machine(ram);
  cfg.machine.nr_nodes = nodes;
  cfg.machine.nr_cpus = cpus;
  cfg.slab.variant = SlabVariant::slab;
  return cfg;
}

std::vector<std::uint8_t> bytes(const Mm& mm, vaddr_t va, std::size_t n) {
  std::vector<std::uint8_t> b(n);
  mm.ram.read(mm.__pa(va), b);
  return b;
}

std::uint64_t word(const Mm& mm, vaddr_t va) {
  const auto b = bytes(mm, va, 8);
  std::uint64_t v;
  std::memcpy(&v, b.data(), 8);
  return v;
}

void put_word(Mm& mm, vaddr_t va, std::uint64_t v) {
  std::uint8_t b[8];
  std::memcpy(b, &v, 8);
  mm.ram.write(mm.__pa(va), b);
}

class SlabClassic : public ::testing::Test {
 protected:
  SlabClassic() : mm(slab_config()), sl(mm.slab) { mm.attach(&rec); }
  ~SlabClassic() override { mm.detach(&rec); }
  kmem_cache& K(cache_id c) { return *sl.cache(c); }
  kmem_cache_node& N(cache_id c, int nid = 0) { return K(c).node[static_cast<std::size_t>(nid)]; }
  array_cache& AC(cache_id c, int cpu = 0) { return K(c).array[static_cast<std::size_t>(cpu)]; }
  pfn_t slab_of(vaddr_t obj) { return sl.find_object(obj)->slab; }
  page& P(vaddr_t obj) { return mm.pfn_to_page(slab_of(obj)); }
  std::uint64_t list_len(page_list head) { return sl.lists.length(head, 1u << 20, 1u << 30); }
  SlabInfo info(cache_id c) { return sl.allocator->slabinfo(K(c)); }

  Mm mm;
  Slab& sl;
  Recorder rec;
};

}  // namespace

// ---------------------------------------------------------------- boot and layout

TEST(SlabClassicBoot, BootsWithSlabAndKmallocCachesUpTo4M) {
  Mm mm(slab_config());
  ASSERT_STREQ(mm.slab.allocator->name(), "slab");
  // KMALLOC_SHIFT_HIGH is 22 for SLAB: kmalloc-128 .. kmalloc-4M, 4 types.
  EXPECT_EQ(mm.slab.kmalloc_shift_high(), 22u);
  int n = 0;
  for (int type = 0; type < NR_KMALLOC_TYPES; ++type)
    for (unsigned i = 7; i <= 22; ++i) {
      const kmem_cache* s =
          mm.slab.cache(mm.slab.kmalloc_caches[static_cast<std::size_t>(type)][i]);
      ASSERT_NE(s, nullptr) << type << " " << i;
      EXPECT_EQ(s->object_size, 1u << i);
      EXPECT_GT(s->num, 0u) << s->name;
      EXPECT_GT(s->limit, 0u) << s->name;
      ++n;
    }
  EXPECT_EQ(n, 64);
  const kmem_cache* k4m = mm.slab.cache(mm.slab.find_cache("kmalloc-4M"));
  ASSERT_NE(k4m, nullptr);
  // One 4 MiB object in an order-10 slab (KMALLOC_MAX_ORDER); limit 1 for
  // objects above 128 KiB, no shared array above PAGE_SIZE.
  EXPECT_EQ(k4m->num, 1u);
  EXPECT_EQ(k4m->gfporder, 10u);
  EXPECT_EQ(k4m->limit, 1u);
  EXPECT_EQ(k4m->batchcount, 1u);
  EXPECT_EQ(k4m->shared, 0u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlabClassicBoot, SlabinfoShowsSlabTunables) {
  Mm mm(slab_config());
  const std::string text = procfs::slabinfo(mm);
  // kmalloc-128: 128-byte slots, 32 per page; limit 120 (size <= 256),
  // batchcount (120 + 1) / 2 = 60, shared 8 (two CPUs, size <= PAGE_SIZE).
  EXPECT_NE(text.find("kmalloc-128"), std::string::npos);
  const kmem_cache* k = mm.slab.cache(mm.slab.find_cache("kmalloc-128"));
  const SlabInfo i = mm.slab.allocator->slabinfo(*k);
  EXPECT_EQ(i.objsize, 128u);
  EXPECT_EQ(i.objperslab, 32u);
  EXPECT_EQ(i.pagesperslab, 1u);
  EXPECT_EQ(i.limit, 120u);
  EXPECT_EQ(i.batchcount, 60u);
  EXPECT_EQ(i.sharedfactor, 8u);
  EXPECT_NE(text.find(": tunables  120   60    8 : slabdata"), std::string::npos) << text;
  // Every cache has tunables.
  for (cache_id id : mm.slab.slab_caches) {
    const SlabInfo si = mm.slab.allocator->slabinfo(*mm.slab.cache(id));
    EXPECT_GT(si.limit, 0u);
    EXPECT_GT(si.batchcount, 0u);
  }
}

TEST(SlabClassicLayout, Seed003SampleCache) {
  // seed 003: kmem_cache_create("sample", 74, 0, SLAB_HWCACHE_ALIGN), then
  // 1000 allocations and their frees. From first principles:
  //  - alignment: SLAB_HWCACHE_ALIGN with a 64-byte line and 74 > 64 / 2
  //    gives 64; the slot is ALIGN(ALIGN(74, 8), 64) = 128 bytes;
  //  - no constructor and 32 one-byte indexes fit in the 74-byte object, so
  //    the freelist lives in a free object (OBJFREELIST_SLAB): an order-0
  //    slab holds 4096 / 128 = 32 objects with 0 bytes left, waste 0 is
  //    acceptable at order 0: num 32, gfporder 0, colour 0 / 64 = 0;
  //  - tunables: limit 120 (slot <= 256), batchcount 60, shared 8 (2 CPUs).
  //  - the 1000 allocations refill the CPU array: 16 (an untouched array
  //    refills at most BATCHREFILL_LIMIT), then the other 16 of that slab,
  //    then one new slab of 32 per refill (batchcount 60 > 32). 1000 objects
  //    need 32 slabs; the 24 objects left in the CPU array count as active
  //    in SLAB's slabinfo (only objects on slab freelists are free).
  Mm mm(slab_config());
  const cache_id c = mm.slab.kmem_cache_create("sample", 74, 0, SLAB_HWCACHE_ALIGN);
  ASSERT_NE(c, 0u);
  kmem_cache& s = *mm.slab.cache(c);
  EXPECT_EQ(s.name, "sample");
  EXPECT_EQ(s.align, 64u);
  EXPECT_EQ(s.size, 128u);
  EXPECT_EQ(s.num, 32u);
  EXPECT_EQ(s.gfporder, 0u);
  EXPECT_EQ(s.colour, 0u);
  EXPECT_EQ(s.colour_off, 64u);
  EXPECT_TRUE(OBJFREELIST_SLAB(s));
  EXPECT_FALSE(s.off_slab);
  EXPECT_EQ(s.freelist_size, 32u);
  std::vector<vaddr_t> objs;
  for (int i = 0; i < 1000; ++i) {
    objs.push_back(mm.slab.kmem_cache_alloc(c, GFP_KERNEL));
    ASSERT_NE(objs.back(), 0u);
  }
  EXPECT_EQ(s.array[0].avail, 24u);
  const std::string text = procfs::slabinfo(mm);
  EXPECT_NE(text.find("sample              1024   1024    128   32    1 : tunables  120   60    8 "
                      ": slabdata     32     32      0"),
            std::string::npos)
      << text;
  // The frees: the CPU array (24 + 96 = 120) overflows every 60 frees; the
  // first 8 flushes of 60 fill the shared array (8 * 60 = 480), the next 8
  // go back to the slabs; 64 stay in the CPU array.
  for (vaddr_t o : objs) mm.slab.kmem_cache_free(c, o);
  EXPECT_EQ(s.array[0].avail, 64u);
  const SlabInfo i = mm.slab.allocator->slabinfo(s);
  EXPECT_EQ(i.shared_avail, 480u);
  EXPECT_EQ(i.num_objs - i.active_objs, s.node[0].free_objects);
  // free_block() keeps at most free_limit = (1 + 2 CPUs) * 60 + 32 = 212
  // free objects before it releases free slabs.
  EXPECT_EQ(s.node[0].free_limit, 212u);
  EXPECT_LE(s.node[0].free_objects, s.node[0].free_limit + s.num);
  EXPECT_EQ(sweep_ids(mm), Ids{});
  EXPECT_EQ(mm.slab.kmem_cache_shrink(c), 0);
  EXPECT_EQ(mm.slab.allocator->slabinfo(s).num_slabs, 0u);
  mm.slab.kmem_cache_destroy(c);
  EXPECT_TRUE(s.destroyed);
  EXPECT_EQ(procfs::slabinfo(mm).find("sample "), std::string::npos);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlabClassicLayout, FreelistPlacementOnSlabOffSlabObjfreelist) {
  Mm mm(slab_config());
  auto& sl = mm.slab;
  // 20 bytes, HWCACHE_ALIGN: align 32 (20 <= 64/2), slot 32; 4096/32 = 128
  // indexes do not fit a 20-byte object, an off-slab freelist (kmalloc-128)
  // is not worth it for 32-byte objects: on-slab, 4096 / (32 + 1) = 124.
  const kmem_cache& on = *sl.cache(sl.kmem_cache_create("on", 20, 0, SLAB_HWCACHE_ALIGN));
  EXPECT_EQ(on.size, 32u);
  EXPECT_FALSE(OBJFREELIST_SLAB(on));
  EXPECT_FALSE(on.off_slab);
  EXPECT_EQ(on.num, 124u);
  EXPECT_EQ(on.gfporder, 0u);
  const vaddr_t o = sl.kmem_cache_alloc(on.id, GFP_KERNEL);
  const page& p = mm.pfn_to_page(sl.find_object(o)->slab);
  EXPECT_EQ(p.slab.freelist, mm.page_address(sl.find_object(o)->slab) + 4096 - 124);
  EXPECT_EQ(o % 32, 0u);
  // A constructor rules out OBJFREELIST; 1024-byte objects: 4 per page, a
  // 4-byte freelist from kmalloc-128 (128 <= 1024 / 2) and no room left in
  // the slab: OFF_SLAB.
  const kmem_cache& off = *sl.cache(sl.kmem_cache_create("off", 1024, 0, 0, slab_ctor{true, 0x3c}));
  EXPECT_TRUE(off.off_slab);
  EXPECT_EQ(off.num, 4u);
  EXPECT_EQ(off.gfporder, 0u);
  EXPECT_EQ(off.freelist_cache, sl.find_cache("kmalloc-128"));
  const kmem_cache& k128 = *sl.cache(off.freelist_cache);
  const vaddr_t x = sl.kmem_cache_alloc(off.id, GFP_KERNEL);
  const page& px = mm.pfn_to_page(sl.find_object(x)->slab);
  const auto fl = sl.find_object(px.slab.freelist);
  ASSERT_TRUE(fl.has_value());
  EXPECT_EQ(fl->cache, k128.id);
  EXPECT_TRUE(fl->allocated);
  EXPECT_EQ(bytes(mm, x, 1024), std::vector<std::uint8_t>(1024, 0x3c));  // the constructor
  // Destroying the slab kfree()s its freelist.
  const vaddr_t fl_obj = fl->object;
  sl.kmem_cache_free(off.id, x);
  EXPECT_EQ(sl.kmem_cache_shrink(off.id), 0);
  EXPECT_FALSE(sl.find_object(fl_obj)->allocated);
  // 128-byte objects without constructor: OBJFREELIST.
  EXPECT_TRUE(OBJFREELIST_SLAB(*sl.cache(sl.kmem_cache_create("obj", 128, 0, 0))));
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlabClassicLayout, CacheEstimateAndOrder) {
  Mm mm(slab_config());
  auto& sl = mm.slab;
  // 700 -> 704-byte slots: order 0 holds 5 and wastes 576 (> 4096 / 8), so
  // order 1 (slab_max_order is 1 with more than 32 MiB): 11 objects, 448
  // left = 7 colours of 64 bytes.
  const kmem_cache& s = *sl.cache(sl.kmem_cache_create("c700", 700, 0, 0));
  EXPECT_EQ(s.size, 704u);
  EXPECT_EQ(s.gfporder, 1u);
  EXPECT_EQ(s.num, 11u);
  EXPECT_EQ(s.colour, 7u);
  // limit by slot size: 704 > 256 -> 54; batchcount 27.
  EXPECT_EQ(s.limit, 54u);
  EXPECT_EQ(s.batchcount, 27u);
  // SLAB_RECLAIM_ACCOUNT stops at the first order that holds objects.
  const kmem_cache& r = *sl.cache(sl.kmem_cache_create("r700", 700, 0, SLAB_RECLAIM_ACCOUNT));
  EXPECT_EQ(r.gfporder, 0u);
  EXPECT_EQ(r.num, 5u);
  // On a 16 MiB machine slab_max_order stays 0.
  Mm small(slab_config(16 * SZ_1M));
  const kmem_cache& t = *small.slab.cache(small.slab.kmem_cache_create("c700", 700, 0, 0));
  EXPECT_EQ(t.gfporder, 0u);
  EXPECT_EQ(t.num, 5u);
  EXPECT_EQ(t.colour, 9u);  // 576 / 64
  // Objects larger than a page: 5000 -> order 1 (one object, 3192 left is
  // > 8192 / 8 but order 1 is slab_max_order).
  const kmem_cache& big = *sl.cache(sl.kmem_cache_create("big", 5000, 0, 0));
  EXPECT_EQ(big.gfporder, 1u);
  EXPECT_EQ(big.num, 1u);
  EXPECT_EQ(big.limit, 8u);
  EXPECT_EQ(big.shared, 0u);
  // Below SLAB_OBJ_MIN_SIZE (16): slots grow to 16 for byte-sized indexes.
  const kmem_cache& tiny = *sl.cache(sl.kmem_cache_create("tiny", 8, 0, 0));
  EXPECT_EQ(tiny.size, 16u);
  EXPECT_LE(tiny.num, 255u);
  EXPECT_EQ(tiny.num, 4096u / 17);
}

// KMALLOC_MIN_SIZE 8: SLAB_OBJ_MIN_SIZE is 8, so one-byte indexes no
// longer cover a 4K page (4096 >> 8 > 8) and freelist_idx_t is two bytes.
TEST(SlabClassicLayout, EightByteKmallocMinimumWidensTheIndexes) {
  MmConfig cfg = slab_config();
  cfg.slab.kmalloc_min_size = 8;
  Mm mm(cfg);
  EXPECT_EQ(slab_obj_min_size(mm), 8u);
  EXPECT_EQ(freelist_idx_size(mm), 2u);
  // 8-byte objects stay 8 bytes; on-slab: 4096 / (8 + 2) = 409 per slab.
  const kmem_cache& tiny = *mm.slab.cache(mm.slab.kmem_cache_create("tiny", 8, 0, 0));
  EXPECT_EQ(tiny.size, 8u);
  EXPECT_EQ(tiny.num, 409u);
  EXPECT_NE(mm.slab.find_cache("kmalloc-96"), 0u);
  const vaddr_t p = mm.slab.kmalloc(150, GFP_KERNEL);
  ASSERT_NE(p, 0u);
  EXPECT_EQ(mm.slab.cache(mm.slab.find_object(p)->cache)->name, "kmalloc-192");
  mm.slab.kfree(p);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlabClassicLayout, ColourOffsetsCycle) {
  Mm mm(slab_config());
  auto& sl = mm.slab;
  const cache_id c = sl.kmem_cache_create("c700", 700, 0, 0);
  const kmem_cache& s = *sl.cache(c);
  ASSERT_EQ(s.colour, 7u);
  // colour_next is advanced before use: the slabs get colours 1, 2, .. 6, 0, 1.
  std::vector<pfn_t> slabs;
  for (int i = 0; i < 9 * 11; ++i) {
    const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
    const pfn_t slab = sl.find_object(o)->slab;
    if (std::find(slabs.begin(), slabs.end(), slab) == slabs.end()) slabs.push_back(slab);
  }
  ASSERT_GE(slabs.size(), 9u);
  for (std::size_t k = 0; k < 9; ++k)
    EXPECT_EQ(mm.pfn_to_page(slabs[k]).slab.s_mem - mm.page_address(slabs[k]), ((k + 1) % 7) * 64)
        << k;
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlabClassicLayout, DebugLayoutRedZoneUserWordPoison) {
  Mm mm(slab_config());
  auto& sl = mm.slab;
  // 64 bytes with SLAB_RED_ZONE|SLAB_STORE_USER|SLAB_POISON, align 8:
  // [red zone 1 (8)][object (64)][red zone 2 (8)][user word (8)] = 88.
  const cache_id c =
      sl.kmem_cache_create("dbg", 64, 0, SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_POISON);
  const kmem_cache& s = *sl.cache(c);
  EXPECT_EQ(s.obj_offset, 8u);
  EXPECT_EQ(s.size, 88u);
  EXPECT_EQ(s.limit, 32u);  // DEBUG caps the limit at 32
  EXPECT_EQ(s.batchcount, 16u);
  mm.call_site = 77;
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t slot = o - 8;
  EXPECT_EQ(word(mm, slot), RED_ACTIVE);
  EXPECT_EQ(word(mm, slot + 72), RED_ACTIVE);
  EXPECT_EQ(word(mm, slot + 80), 77u);
  // Allocated objects are POISON_INUSE with POISON_END last (not zeroed:
  // init_on_alloc skips poisoned caches).
  auto b = bytes(mm, o, 64);
  EXPECT_EQ(std::count(b.begin(), b.end() - 1, POISON_INUSE), 63);
  EXPECT_EQ(b[63], POISON_END);
  EXPECT_EQ(sl.ksize(o), 64u);
  mm.call_site = 78;
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(word(mm, slot), RED_INACTIVE);
  EXPECT_EQ(word(mm, slot + 72), RED_INACTIVE);
  EXPECT_EQ(word(mm, slot + 80), 78u);
  b = bytes(mm, o, 64);
  EXPECT_EQ(std::count(b.begin(), b.end() - 1, POISON_FREE), 63);
  EXPECT_EQ(b[63], POISON_END);
  // A larger alignment drops red zoning and the user word.
  const kmem_cache& h =
      *sl.cache(sl.kmem_cache_create("dbg-hw", 64, 0, SLAB_HWCACHE_ALIGN | SLAB_RED_ZONE));
  EXPECT_FALSE(h.flags & SLAB_RED_ZONE);
  EXPECT_EQ(h.obj_offset, 0u);
  // find_object(): any byte of a slot names the object after the red zone.
  const vaddr_t o2 = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(sl.find_object(o2 + 10)->object, o2);
  EXPECT_EQ(sl.find_object(o2 - 8)->object, o2);
  EXPECT_EQ(sl.find_object(o2)->size, 64u);
  EXPECT_TRUE(sl.find_object(o2)->allocated);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- API

TEST_F(SlabClassic, AllocFreeAndTheShadow) {
  const cache_id c = sl.kmem_cache_create("api", 100, 0, 0);
  ASSERT_NE(c, 0u);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_NE(o, 0u);
  auto ref = sl.find_object(o);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->cache, c);
  EXPECT_EQ(ref->object, o);
  EXPECT_TRUE(ref->allocated);
  EXPECT_EQ(ref->requested, 100u);
  EXPECT_TRUE(PageSlab(mm.pfn_to_page(ref->slab)));
  EXPECT_EQ(sl.kmem_cache_size(c), 100u);
  EXPECT_EQ(sl.ksize(o), 100u);  // SLAB's ksize is the object size
  // init_on_alloc zeroed it.
  EXPECT_EQ(bytes(mm, o, 100), std::vector<std::uint8_t>(100, 0));
  sl.kmem_cache_free(c, o);
  EXPECT_FALSE(sl.find_object(o)->allocated);
  // The freed object waits in the CPU array and comes back first (LIFO).
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), o);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, ZallocClearsWhatPoisonFills) {
  const cache_id c = sl.kmem_cache_create("pz", 64, 0, SLAB_POISON);
  const vaddr_t a = sl.kmem_cache_alloc(c, GFP_KERNEL);
  auto b = bytes(mm, a, 64);
  EXPECT_EQ(std::count(b.begin(), b.end(), POISON_INUSE), 63);
  const vaddr_t z = sl.kmem_cache_zalloc(c, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, z, 64), std::vector<std::uint8_t>(64, 0));
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlabClassic, BulkAllocAndFree) {
  const cache_id c = sl.kmem_cache_create("bulk", 256, 0, 0);
  std::vector<vaddr_t> v(50);
  ASSERT_EQ(sl.kmem_cache_alloc_bulk(c, GFP_KERNEL, v.size(), v.data()), v.size());
  EXPECT_EQ(std::set<vaddr_t>(v.begin(), v.end()).size(), v.size());
  for (vaddr_t o : v) EXPECT_TRUE(sl.find_object(o)->allocated);
  sl.kmem_cache_free_bulk(c, v.size(), v.data());
  for (vaddr_t o : v) EXPECT_FALSE(sl.find_object(o)->allocated);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, ShrinkReleasesCachedAndFreeSlabs) {
  const cache_id c = sl.kmem_cache_create("shr", 512, 0, 0);
  const long before = mm.page_alloc.node_data[0].vm_stat[NR_SLAB_UNRECLAIMABLE_B];
  std::vector<vaddr_t> v;
  for (int i = 0; i < 40; ++i) v.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  EXPECT_GT(mm.page_alloc.node_data[0].vm_stat[NR_SLAB_UNRECLAIMABLE_B], before);
  EXPECT_EQ(sl.kmem_cache_shrink(c), 1);  // objects remain
  for (vaddr_t o : v) sl.kmem_cache_free(c, o);
  EXPECT_GT(info(c).num_slabs, 0u);  // cached in the arrays and on slabs_free
  EXPECT_EQ(sl.kmem_cache_shrink(c), 0);
  EXPECT_EQ(info(c).num_slabs, 0u);
  EXPECT_EQ(AC(c).avail, 0u);
  EXPECT_EQ(N(c).shared->avail, 0u);
  EXPECT_EQ(mm.page_alloc.node_data[0].vm_stat[NR_SLAB_UNRECLAIMABLE_B], before);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, DestroyRefusedWhileObjectsRemain) {
  const cache_id c = sl.kmem_cache_create("busy", 96, 0, 0);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_destroy(c);
  EXPECT_EQ(rec.ids(), Ids{"slab.destroy_busy"});
  EXPECT_FALSE(K(c).destroyed);
  const vaddr_t p = sl.kmem_cache_alloc(c, GFP_KERNEL);  // still usable
  ASSERT_NE(p, 0u);
  sl.kmem_cache_free(c, o);
  sl.kmem_cache_free(c, p);
  rec.misuses.clear();
  sl.kmem_cache_destroy(c);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_TRUE(K(c).destroyed);
  EXPECT_TRUE(K(c).array.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, ConstructorsRunWhenTheSlabIsPopulated) {
  const cache_id c = sl.kmem_cache_create("ctor", 100, 0, 0, slab_ctor{true, 0x5e});
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  // init_on_alloc leaves constructed objects alone.
  EXPECT_EQ(bytes(mm, o, 100), std::vector<std::uint8_t>(100, 0x5e));
  // Every object of the slab was constructed with it.
  const pfn_t slab = slab_of(o);
  const page& p = mm.pfn_to_page(slab);
  for (unsigned i = 0; i < K(c).num; ++i)
    EXPECT_EQ(bytes(mm, index_to_obj(K(c), p, i), 1)[0], 0x5e) << i;
  // A poisoned cache runs its constructor at allocation instead.
  const cache_id d = sl.kmem_cache_create("ctor-p", 100, 0, SLAB_POISON, slab_ctor{true, 0x6e});
  const vaddr_t q = sl.kmem_cache_alloc(d, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, q, 100), std::vector<std::uint8_t>(100, 0x6e));
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlabClassic, HwcacheAlignAlignsObjects) {
  const cache_id c = sl.kmem_cache_create("hw", 40, 0, SLAB_HWCACHE_ALIGN);
  EXPECT_EQ(K(c).align, 64u);
  EXPECT_EQ(K(c).size, 64u);
  const cache_id d = sl.kmem_cache_create("nohw", 40, 0, 0);
  EXPECT_EQ(K(d).align, 8u);
  EXPECT_EQ(K(d).size, 40u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL) % 64, 0u);
    EXPECT_EQ(sl.kmem_cache_alloc(d, GFP_KERNEL) % 8, 0u);
  }
}

TEST_F(SlabClassic, KmallocFamilyThroughTheSlabCaches) {
  const vaddr_t a = sl.kmalloc(100, GFP_KERNEL);
  auto ra = sl.find_object(a);
  ASSERT_TRUE(ra.has_value());
  EXPECT_EQ(K(ra->cache).name, "kmalloc-128");
  EXPECT_EQ(ra->requested, 100u);
  EXPECT_EQ(sl.ksize(a), 128u);
  const vaddr_t z = sl.kzalloc(3000, GFP_KERNEL);
  EXPECT_EQ(K(sl.find_object(z)->cache).name, "kmalloc-4k");
  EXPECT_EQ(bytes(mm, z, 3000), std::vector<std::uint8_t>(3000, 0));
  const vaddr_t d = sl.kmalloc(200, GFP_KERNEL | __GFP_DMA);
  EXPECT_EQ(K(sl.find_object(d)->cache).name, "dma-kmalloc-256");
  const vaddr_t r = sl.kmalloc(300, GFP_KERNEL | __GFP_RECLAIMABLE);
  EXPECT_EQ(K(sl.find_object(r)->cache).name, "kmalloc-rcl-512");
  // The biggest SLAB kmalloc cache: 4 MiB objects in order-10 slabs.
  const vaddr_t big = sl.kmalloc(4 * SZ_1M, GFP_KERNEL);
  ASSERT_NE(big, 0u);
  auto rb = sl.find_object(big);
  ASSERT_TRUE(rb.has_value());
  EXPECT_EQ(K(rb->cache).name, "kmalloc-4M");
  EXPECT_EQ(mm.pfn_to_page(rb->slab + 1).compound_order, 10u);
  EXPECT_EQ(sl.ksize(big), 4 * SZ_1M);
  // krealloc keeps the bytes.
  const std::uint8_t hello[5] = {'h', 'e', 'l', 'l', 'o'};
  ASSERT_TRUE(sl.write(a, hello));
  const vaddr_t a2 = sl.krealloc(a, 1000, GFP_KERNEL);
  EXPECT_EQ(K(sl.find_object(a2)->cache).name, "kmalloc-1k");
  EXPECT_EQ(bytes(mm, a2, 5), std::vector<std::uint8_t>(hello, hello + 5));
  EXPECT_FALSE(sl.find_object(a)->allocated);
  EXPECT_EQ(sl.kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
  for (vaddr_t p : {a2, z, d, r, big}) sl.kfree(p);
  for (vaddr_t p : {a2, z, d, r, big}) EXPECT_FALSE(sl.find_object(p)->allocated);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlabClassicNuma, AllocNodeAndRemoteFrees) {
  Mm mm(slab_config(64 * SZ_1M, 2, 2));  // cpu 0 on node 0, cpu 1 on node 1
  auto& sl = mm.slab;
  const cache_id c = sl.kmem_cache_create("numa", 128, 0, 0);
  kmem_cache& s = *sl.cache(c);
  // Another node: one object straight from that node's slabs.
  const vaddr_t o1 = sl.kmem_cache_alloc_node(c, GFP_KERNEL, 1);
  ASSERT_NE(o1, 0u);
  EXPECT_EQ(mm.pfn_to_page(sl.find_object(o1)->slab).nid, 1);
  EXPECT_EQ(s.node[1].total_slabs, 1u);
  EXPECT_EQ(s.node[1].free_objects, 31u);
  EXPECT_EQ(s.array[0].avail, 0u);
  // The local node goes through the CPU array.
  const vaddr_t o0 = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(mm.pfn_to_page(sl.find_object(o0)->slab).nid, 0);
  EXPECT_EQ(s.array[0].avail, 15u);
  // A remote free goes back to its node's slab, not to this CPU's array.
  sl.kmem_cache_free(c, o1);
  EXPECT_EQ(s.node[1].free_objects, 32u);
  EXPECT_EQ(s.array[0].avail, 15u);
  // From CPU 1 the local node is node 1.
  ASSERT_TRUE(mm.set_cpu(1));
  const vaddr_t o2 = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(mm.pfn_to_page(sl.find_object(o2)->slab).nid, 1);
  const vaddr_t k = sl.kmalloc_node(100, GFP_KERNEL, 0);
  EXPECT_EQ(mm.pfn_to_page(sl.find_object(k)->slab).nid, 0);
  EXPECT_EQ(s.node[0].free_limit, (1 + 1) * s.batchcount + s.num);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- array caches

TEST_F(SlabClassic, RefillPartialThenFull) {
  const cache_id c = sl.kmem_cache_create("refill", 128, 0, 0);
  // An untouched array refills at most BATCHREFILL_LIMIT (16) objects.
  const vaddr_t a = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(AC(c).avail, 15u);
  EXPECT_TRUE(AC(c).touched);
  EXPECT_EQ(P(a).slab.inuse, 16u);
  EXPECT_EQ(N(c).free_objects, 16u);
  EXPECT_EQ(list_len(N(c).slabs_partial), 1u);
  // Then the touched array takes the rest of the partial slab (16 of its
  // batchcount 60) before anything else.
  for (int i = 0; i < 16; ++i) sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(AC(c).avail, 15u);
  EXPECT_EQ(P(a).slab.inuse, 32u);
  EXPECT_EQ(N(c).free_objects, 0u);
  EXPECT_EQ(list_len(N(c).slabs_full), 1u);
  EXPECT_EQ(list_len(N(c).slabs_partial), 0u);
  EXPECT_TRUE(N(c).free_touched);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, FlushToSharedThenRefillFromShared) {
  const cache_id c = sl.kmem_cache_create("arr", 128, 0, 0);
  std::vector<vaddr_t> v;
  for (int i = 0; i < 100; ++i) v.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  // 16 + 16 + 3 x 32 objects left the slabs: 28 still in the array.
  EXPECT_EQ(AC(c).avail, 28u);
  // 92 frees fill the array to its limit 120; the 93rd flushes batchcount
  // (60) objects into the shared array (limit 8 * 60 = 480).
  for (vaddr_t o : v) sl.kmem_cache_free(c, o);
  EXPECT_EQ(AC(c).avail, 68u);
  ASSERT_TRUE(N(c).shared);
  EXPECT_EQ(N(c).shared->limit, 480u);
  EXPECT_EQ(N(c).shared->avail, 60u);
  EXPECT_EQ(N(c).free_objects, 0u);
  const vaddr_t top = N(c).shared->entry[59];
  // CPU 1's first refill comes from the shared array: 16 objects off its top.
  ASSERT_TRUE(mm.set_cpu(1));
  const vaddr_t b = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(b, top);
  EXPECT_EQ(AC(c, 1).avail, 15u);
  EXPECT_EQ(N(c).shared->avail, 44u);
  EXPECT_TRUE(N(c).shared->touched);
  EXPECT_EQ(N(c).free_objects, 0u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, FlushToSlabsWhenSharedIsFull) {
  const cache_id c = sl.kmem_cache_create("flush", 128, 0, 0);
  std::vector<vaddr_t> v;
  for (int i = 0; i < 1000; ++i) v.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  const std::uint64_t pulled = info(c).num_objs;  // every object left its slab
  EXPECT_EQ(pulled, 1024u);
  EXPECT_EQ(N(c).free_objects, 0u);
  for (vaddr_t o : v) sl.kmem_cache_free(c, o);
  // 24 + 96 frees fill the array; 16 flushes of 60 follow: 8 fill the
  // shared array, 8 (480 objects) go back to the slabs, 64 stay cached.
  EXPECT_EQ(N(c).shared->avail, 480u);
  EXPECT_EQ(AC(c).avail, 64u);
  // Free slabs beyond free_limit (212 objects) went back to the page allocator.
  EXPECT_EQ(info(c).num_objs - info(c).active_objs, N(c).free_objects);
  EXPECT_LE(N(c).free_objects, N(c).free_limit + K(c).num);
  EXPECT_GT(N(c).free_objects, 0u);
  EXPECT_LT(info(c).num_objs, pulled);  // some slabs went back to the page allocator
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- cache_reap

TEST_F(SlabClassic, CacheReapDrainsUntouchedArraysAndFreeSlabs) {
  // mm.slab.tick() is cache_reap() on every CPU: one tick = REAPTIMEOUT_AC
  // (2 s), the node part runs every REAPTIMEOUT_NODE (4 s) = every 2 ticks.
  const cache_id c = sl.kmem_cache_create("reap", 128, 0, 0);
  std::vector<vaddr_t> v;
  for (int i = 0; i < 100; ++i) v.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  for (vaddr_t o : v) sl.kmem_cache_free(c, o);
  ASSERT_EQ(AC(c).avail, 68u);
  ASSERT_EQ(N(c).shared->avail, 60u);
  ASSERT_EQ(info(c).num_slabs, 4u);
  sl.tick();  // t = 2 s: the array was touched: only the flag goes
  EXPECT_EQ(AC(c).avail, 68u);
  EXPECT_FALSE(AC(c).touched);
  EXPECT_EQ(N(c).shared->avail, 60u);
  sl.tick();  // 4 s: (limit + 4) / 5 = 24 leave the array; the node reap
              // takes half the shared array (96 > 60 -> 30); slabs_free
              // was used since creation, so no slab is released yet.
  EXPECT_EQ(AC(c).avail, 44u);
  EXPECT_EQ(N(c).shared->avail, 30u);
  EXPECT_FALSE(N(c).free_touched);
  EXPECT_EQ(N(c).free_objects, 54u);
  sl.tick();  // 6 s: the array again, not the node
  EXPECT_EQ(AC(c).avail, 20u);
  EXPECT_EQ(N(c).shared->avail, 30u);
  sl.tick();  // 8 s: 24 > 20 -> (20 + 1) / 2 = 10; shared 30 -> 15
  EXPECT_EQ(AC(c).avail, 10u);
  EXPECT_EQ(N(c).shared->avail, 15u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
  // drain_freelist() releases (free_limit + 5 * num - 1) / (5 * num) = 2
  // free slabs per node reap: after a while nothing is left.
  for (int i = 0; i < 16; ++i) sl.tick();
  EXPECT_EQ(AC(c).avail, 0u);
  EXPECT_EQ(N(c).shared->avail, 0u);
  EXPECT_EQ(info(c).num_slabs, 0u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, CacheReapSparesTouchedArrays) {
  const cache_id c = sl.kmem_cache_create("touch", 128, 0, 0);
  sl.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_EQ(AC(c).avail, 15u);
  sl.tick();
  EXPECT_FALSE(AC(c).touched);
  sl.kmem_cache_alloc(c, GFP_KERNEL);  // touched again
  EXPECT_EQ(AC(c).avail, 14u);
  sl.tick();
  EXPECT_EQ(AC(c).avail, 14u);
  sl.tick();  // untouched now: 24 > 14 -> (14 + 1) / 2 = 7 go
  EXPECT_EQ(AC(c).avail, 7u);
  // The CPU array of CPU 1 was never used.
  EXPECT_EQ(AC(c, 1).avail, 0u);
}

// ---------------------------------------------------------------- debug detection

TEST_F(SlabClassic, RedZoneOverwriteIsDetectedOnFree) {
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(mm, o);
  const cache_id c = sl.kmem_cache_create("rz", 64, 0, SLAB_RED_ZONE);
  const vaddr_t obj = sl.kmem_cache_alloc(c, GFP_KERNEL);
  // The first byte past the object is the second red zone word.
  EXPECT_EQ(dbg_redzone2(K(c), obj - K(c).obj_offset), obj + 64);
  const std::uint8_t b[1] = {0x41};
  EXPECT_FALSE(sl.write(obj + 64, b));  // KASAN sees it at once
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  sl.kmem_cache_free(c, obj);
  EXPECT_EQ(rec.ids(), (Ids{"kasan.out_of_bounds", "slab.redzone"}));
  const Misuse* m = rec.find(MisuseKind::slab_redzone);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->what, "memory outside object was overwritten");
  EXPECT_EQ(m->addr, obj + 64);
  EXPECT_EQ(m->object, obj);
  EXPECT_NE(m->detail.find("slab error in cache_free_debugcheck(): cache `rz'"), std::string::npos)
      << m->detail;
  bool titled = false;
  for (const auto& v : e.violations())
    titled = titled || v.title == "BUG rz (Not tainted): memory outside object was overwritten";
  EXPECT_TRUE(titled);
  // The free went through: the red zones are inactive again.
  EXPECT_EQ(word(mm, obj - 8), RED_INACTIVE);
  EXPECT_EQ(word(mm, obj + 64), RED_INACTIVE);
}

TEST_F(SlabClassic, RedZoneOverwriteOfAFreeObjectIsDetectedOnAlloc) {
  const cache_id c = sl.kmem_cache_create("rz2", 64, 0, SLAB_RED_ZONE);
  const vaddr_t obj = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, obj);
  put_word(mm, obj - 8, 0x1122334455667788ull);  // a stray write, unseen by KASAN
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), obj);
  const Misuse* m = rec.find(MisuseKind::slab_redzone);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->what, "double free, or memory outside object was overwritten");
  EXPECT_EQ(m->addr, obj - 8);
  EXPECT_EQ(word(mm, obj - 8), RED_ACTIVE);
}

TEST_F(SlabClassic, PoisonOverwriteIsDetectedOnAlloc) {
  const cache_id c = sl.kmem_cache_create("psn", 64, 0, SLAB_POISON);
  const vaddr_t obj = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, obj);
  const std::uint8_t b[2] = {0x00, 0x01};
  EXPECT_FALSE(sl.write(obj + 10, b));  // use after free
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), obj);  // LIFO: the same object
  EXPECT_EQ(rec.ids(), (Ids{"kasan.use_after_free", "slab.poison"}));
  const Misuse* m = rec.find(MisuseKind::slab_poison);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->what, "Slab corruption");
  EXPECT_EQ(m->addr, obj + 10);
  EXPECT_NE(m->detail.find("Slab corruption (Not tainted): psn start="), std::string::npos);
}

TEST_F(SlabClassic, PoisonOverwriteIsDetectedWhenTheSlabIsDestroyed) {
  const cache_id c = sl.kmem_cache_create("psn2", 64, 0, SLAB_POISON);
  const vaddr_t obj = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, obj);
  EXPECT_EQ(sl.kmem_cache_shrink(c), 0);  // clean slabs go silently
  EXPECT_TRUE(rec.misuses.empty());
  const vaddr_t again = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, again);
  mm.ram.fill(mm.__pa(again), 4, 0x00);  // behind KASAN's back
  EXPECT_EQ(sl.kmem_cache_shrink(c), 0);
  EXPECT_EQ(rec.ids(), Ids{"slab.poison"});
}

TEST_F(SlabClassic, DoubleFree) {
  const cache_id c = sl.kmem_cache_create("df", 64, 0, SLAB_RED_ZONE);
  const vaddr_t obj = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, obj);
  sl.kmem_cache_free(c, obj);  // the common layer refuses it
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
  EXPECT_EQ(AC(c).avail, 15u + 1u);  // freed once only
  // SLAB's own check: red zones that say "free" on an object being freed.
  rec.misuses.clear();
  const vaddr_t o2 = sl.kmem_cache_alloc(c, GFP_KERNEL);
  put_word(mm, o2 - 8, RED_INACTIVE);
  put_word(mm, o2 + 64, RED_INACTIVE);
  sl.kmem_cache_free(c, o2);
  const Misuse* m = rec.find(MisuseKind::slab_double_free);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->what, "double free detected");
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlabClassic, ClientWriteIntoAFreelistIsReportedAndRepaired) {
  const cache_id c = sl.kmem_cache_create("uaf", 128, 0, 0);
  ASSERT_TRUE(OBJFREELIST_SLAB(K(c)));
  std::vector<vaddr_t> v{sl.kmem_cache_alloc(c, GFP_KERNEL)};  // the slab: 16 of 32 active
  const vaddr_t holder = P(v[0]).slab.freelist;  // a free object holds the index array
  ASSERT_NE(holder, 0u);
  // A use after free overwrites entry 16 (the next to go) with entry 17.
  const std::uint8_t b[1] = {bytes(mm, holder + 17, 1)[0]};
  EXPECT_FALSE(sl.write(holder + 16, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  // 15 more come from the CPU array; the refill after them finds the
  // duplicate before it takes anything, reports it and rebuilds the array.
  for (int i = 0; i < 31; ++i) v.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  EXPECT_EQ(rec.ids(), (Ids{"kasan.use_after_free", "slab.freeptr"}));
  EXPECT_EQ(std::set<vaddr_t>(v.begin(), v.end()).size(), 32u);  // none handed out twice
  EXPECT_EQ(info(c).num_slabs, 1u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
  for (vaddr_t o : v) sl.kmem_cache_free(c, o);
  EXPECT_EQ(sl.kmem_cache_shrink(c), 0);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

// ---------------------------------------------------------------- invariants

class SlabClassicInvariants : public SlabClassic {
 protected:
  SlabClassicInvariants() {
    c = sl.kmem_cache_create("inv", 128, 0, 0);
    for (int i = 0; i < 40; ++i) objs.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
    // slab 1 full (16 + 16), slab 2 full with 24 objects in the CPU array.
    part = sl.kmem_cache_create("part", 128, 0, SLAB_RECLAIM_ACCOUNT);
    pobj = sl.kmem_cache_alloc(part, GFP_KERNEL);  // a partial slab: 16 of 32 active
  }
  void SetUp() override {
    ASSERT_EQ(AC(c).avail, 24u);
    ASSERT_EQ(P(pobj).slab.inuse, 16u);
    ASSERT_EQ(sweep_ids(mm), Ids{});
  }
  void set_index(vaddr_t obj, unsigned i, std::uint8_t v) {
    const std::uint8_t b[1] = {v};
    mm.ram.write(mm.__pa(P(obj).slab.freelist + i), b);
  }
  cache_id c = 0, part = 0;
  std::vector<vaddr_t> objs;
  vaddr_t pobj = 0;
};

TEST_F(SlabClassicInvariants, FullSlabOnThePartialList) {
  const pfn_t slab = slab_of(objs[0]);
  sl.lists.del(slab);
  sl.lists.add(N(c).slabs_partial, slab);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlabClassicInvariants, SlabOnNoList) {
  sl.lists.del(slab_of(pobj));
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.lists"});
  EXPECT_NE(text.find("is on no list"), std::string::npos) << text;
}

TEST_F(SlabClassicInvariants, FreeObjectCountOff) {
  N(c).free_objects += 1;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlabClassicInvariants, TotalSlabsOff) {
  N(part).total_slabs += 1;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlabClassicInvariants, ColourOutOfRange) {
  N(c).colour_next = K(c).colour + 3;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlabClassicInvariants, LostFreeObject) {
  AC(c).avail -= 1;  // a free object now sits nowhere
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.counts"});
  EXPECT_NE(text.find("neither on its freelist nor cached"), std::string::npos) << text;
}

TEST_F(SlabClassicInvariants, DuplicateFreelistIndex) {
  const page& p = P(pobj);
  set_index(pobj, 17, static_cast<std::uint8_t>(get_free_obj(mm, p, 16)));
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.freelist"});
  EXPECT_NE(text.find("on the freelist twice"), std::string::npos) << text;
}

TEST_F(SlabClassicInvariants, FreelistIndexOutOfRange) {
  set_index(pobj, 16, 250);
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.freelist"});
}

TEST_F(SlabClassicInvariants, AllocatedObjectOnTheFreelist) {
  // Swap a free index for the index of the allocated object.
  const page& p = P(pobj);
  unsigned idx = 0;
  ASSERT_TRUE(obj_to_index(K(part), p, pobj, &idx));
  set_index(pobj, 16, static_cast<std::uint8_t>(idx));
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.freelist"});
}

TEST_F(SlabClassicInvariants, OnSlabFreelistMoved) {
  const cache_id on = sl.kmem_cache_create("on", 20, 0, SLAB_HWCACHE_ALIGN);
  const vaddr_t o = sl.kmem_cache_alloc(on, GFP_KERNEL);
  ASSERT_EQ(sweep_ids(mm), Ids{});
  P(o).slab.freelist += 1;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.freelist"});
}

TEST_F(SlabClassicInvariants, AllocatedObjectInTheCpuArray) {
  array_cache& ac = AC(c);
  ac.entry[ac.avail++] = objs[0];
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.freelist"});
  EXPECT_NE(text.find("holds allocated object"), std::string::npos) << text;
}

TEST_F(SlabClassicInvariants, ObjectCachedTwice) {
  array_cache& ac = AC(c);
  ac.entry[ac.avail] = ac.entry[ac.avail - 1];
  ac.avail++;
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.freelist"});
  EXPECT_NE(text.find("cached twice"), std::string::npos) << text;
}

TEST_F(SlabClassicInvariants, SharedArrayHoldsAnotherCachesObject) {
  array_cache& sh = *N(c).shared;
  sh.entry[sh.avail++] = pobj;
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.freelist"});
  EXPECT_NE(text.find("in no slab of the cache"), std::string::npos) << text;
}

// ---------------------------------------------------------------- workload

TEST(SlabClassicWorkload, RandomWorkloadKeepsEveryInvariant) {
  Mm mm(slab_config(128 * SZ_1M, 2, 4));
  auto& sl = mm.slab;
  Recorder rec;
  mm.attach(&rec);
  inv::CheckOptions o;
  o.capture_stacks = false;
  o.full_every = 250;
  inv::CheckEngine e(mm, o);
  std::vector<cache_id> caches = {
      sl.kmem_cache_create("w32", 32, 0, 0),
      sl.kmem_cache_create("w74", 74, 0, SLAB_HWCACHE_ALIGN),
      sl.kmem_cache_create("w700", 700, 0, 0),
      sl.kmem_cache_create("wctor", 1024, 0, 0, slab_ctor{true, 0x11}),  // OFF_SLAB
      sl.kmem_cache_create("wdbg", 100, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER),
      sl.kmem_cache_create("wrcu", 200, 0, SLAB_TYPESAFE_BY_RCU),
      sl.kmem_cache_create("wbig", 9000, 0, 0),
  };
  for (cache_id c : caches) ASSERT_NE(c, 0u);
  struct Live {
    vaddr_t p;
    cache_id c;  // 0: kmalloc
  };
  std::vector<Live> live;
  SplitMix64 rng{42};
  for (int i = 0; i < 6000; ++i) {
    e.begin_op(i, "op");
    const auto r = rng.below(100);
    if (r < 45 || live.empty()) {
      if (rng.below(3) == 0) {
        const std::uint64_t size = 1 + rng.below(rng.below(10) == 0 ? 70000 : 2048);
        const int node = rng.below(4) == 0 ? static_cast<int>(rng.below(2)) : NUMA_NO_NODE;
        const vaddr_t p = sl.kmalloc_node(size, GFP_KERNEL, node);
        if (p) live.push_back({p, 0});
      } else {
        const cache_id c = caches[rng.below(caches.size())];
        const int node = rng.below(4) == 0 ? static_cast<int>(rng.below(2)) : NUMA_NO_NODE;
        const vaddr_t p = sl.kmem_cache_alloc_node(c, GFP_KERNEL, node);
        if (p) live.push_back({p, c});
      }
    } else if (r < 90) {
      const std::size_t k = rng.below(live.size());
      if (live[k].c)
        sl.kmem_cache_free(live[k].c, live[k].p);
      else
        sl.kfree(live[k].p);
      live[k] = live.back();
      live.pop_back();
    } else if (r < 96) {
      mm.set_cpu(static_cast<int>(rng.below(4)));
    } else if (r < 99) {
      sl.tick();
    } else {
      sl.kmem_cache_shrink(caches[rng.below(caches.size())]);
    }
    e.end_op();
  }
  e.full_sweep();
  EXPECT_TRUE(rec.misuses.empty());
  std::string text;
  for (const auto& v : e.violations()) text += v.to_text(false);
  EXPECT_TRUE(e.violations().empty()) << text;
  EXPECT_GT(e.nr_sweeps(), 10u);
  // Everything back: every cache can be destroyed, nothing is left over.
  for (const auto& l : live) {
    if (l.c)
      sl.kmem_cache_free(l.c, l.p);
    else
      sl.kfree(l.p);
  }
  for (cache_id c : caches) sl.kmem_cache_destroy(c);
  for (cache_id c : caches) EXPECT_TRUE(sl.cache(c)->destroyed);
  e.full_sweep();
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_TRUE(e.violations().empty());
  mm.detach(&rec);
}
