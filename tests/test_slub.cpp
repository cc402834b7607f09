// SLUB: geometry against the real guest, layout, the kmem_cache and kmalloc
// APIs, hardened freelists, debug detection, and the slab invariants.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/slab/slub.h"
#include "mm/testing/corrupt.h"
#include "tests/sweep_ids.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;

namespace {

using mmfuzz::testing::Ids;
using mmfuzz::testing::sweep_ids;

struct Recorder : MmObserver {
  std::vector<Misuse> misuses;
  std::vector<std::pair<vaddr_t, std::uint64_t>> kmallocs;  // (ptr, bytes_alloc)
  int page_allocs = 0;
  void misuse(const Misuse& m) override { misuses.push_back(m); }
  void kmalloc(vaddr_t p, std::uint64_t, std::uint64_t alloc, gfp_t, int, bool) override {
    kmallocs.emplace_back(p, alloc);
  }
  void mm_page_alloc(pfn_t, unsigned, gfp_t, int) override { ++page_allocs; }
  std::set<std::string> ids() const {
    std::set<std::string> s;
    for (const auto& m : misuses) s.insert(misuse_id(m.kind));
    return s;
  }
};

MmConfig small() {
  MmConfig cfg;
  cfg.machine = small_machine(64 * SZ_1M);
  return cfg;
}

std::vector<std::uint8_t> bytes(Mm& mm, vaddr_t va, std::size_t n) {
  std::vector<std::uint8_t> b(n);
  mm.ram.read(mm.__pa(va), b);
  return b;
}

// ---------------------------------------------------------------- geometry

struct GuestLine {
  unsigned objsize, objperslab, pagesperslab;
};

std::map<std::string, GuestLine> guest_slabinfo() {
  std::map<std::string, GuestLine> out;
  std::ifstream in(std::string(MMFUZZ_GUESTS_DIR) + "/arm64-6.1-boot-shell.proc/slabinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("slabinfo", 0) == 0) continue;
    std::istringstream is(line);
    std::string name;
    unsigned long a, n;
    GuestLine g{};
    is >> name >> a >> n >> g.objsize >> g.objperslab >> g.pagesperslab;
    out[name] = g;
  }
  return out;
}

TEST(SlubGeometry, BootCachesMatchTheRealGuest) {
  const auto guest = guest_slabinfo();
  ASSERT_GT(guest.size(), 100u) << "corpus/guests slabinfo not found";
  Mm mm;
  int checked = 0;
  for (cache_id id : mm.slab.slab_caches) {
    const kmem_cache* s = mm.slab.cache(id);
    const auto it = guest.find(s->name);
    ASSERT_NE(it, guest.end()) << s->name << " is not in the guest's slabinfo";
    EXPECT_EQ(s->size, it->second.objsize) << s->name;
    EXPECT_EQ(s->objects, it->second.objperslab) << s->name;
    EXPECT_EQ(1u << s->order, it->second.pagesperslab) << s->name;
    ++checked;
  }
  // kmem_cache, kmem_cache_node, vmap_area, 7 sizes x 4 kmalloc types
  EXPECT_EQ(checked, 3 + 7 * 4);
}

TEST(SlubGeometry, NamedCachesOfTheGuestGetItsOrderAndObjects) {
  // calculate_order() over sizes the guest shows, created as plain caches.
  const auto guest = guest_slabinfo();
  Mm mm;
  for (const char* name : {"dentry", "inode_cache", "task_struct", "radix_tree_node", "names_cache",
                           "lsm_file_cache", "vm_area_struct", "anon_vma", "filp", "maple_node"}) {
    const auto it = guest.find(name);
    ASSERT_NE(it, guest.end()) << name;
    const cache_id c =
        mm.slab.kmem_cache_create(std::string("t_") + name, it->second.objsize, 0, 0);
    ASSERT_NE(c, 0u) << name;
    const kmem_cache* s = mm.slab.cache(c);
    EXPECT_EQ(s->objects, it->second.objperslab) << name;
    EXPECT_EQ(1u << s->order, it->second.pagesperslab) << name;
  }
}

TEST(SlubGeometry, SeedExample74BytesHwcacheAligned) {
  // seed 003: a 74-byte object with SLAB_HWCACHE_ALIGN is aligned to the
  // 64-byte line, so it takes a 128-byte slot, 32 to an order-0 slab.
  Mm mm;
  const cache_id c = mm.slab.kmem_cache_create("sample_cachep", 74, 0, SLAB_HWCACHE_ALIGN);
  const kmem_cache* s = mm.slab.cache(c);
  EXPECT_EQ(s->align, 64u);
  EXPECT_EQ(s->size, 128u);
  EXPECT_EQ(s->objects, 32u);
  EXPECT_EQ(s->order, 0u);
  std::vector<vaddr_t> objs;
  for (int i = 0; i < 1000; ++i) objs.push_back(mm.slab.kmem_cache_alloc(c, GFP_KERNEL));
  const SlabInfo i = mm.slab.allocator->slabinfo(*s);
  // 1000 objects need ceil(1000 / 32) = 32 slabs; only node partial slabs
  // count free objects, and none is partial yet: all 1024 count as active.
  EXPECT_EQ(i.num_slabs, 32u);
  EXPECT_EQ(i.num_objs, 1024u);
  EXPECT_EQ(i.active_objs, 1024u);
  const std::string text = procfs::slabinfo(mm);
  EXPECT_NE(text.find("sample_cachep       1024   1024    128   32    1 : tunables    0    0    0 "
                      ": slabdata     32     32      0"),
            std::string::npos)
      << text;
  for (vaddr_t o : objs) mm.slab.kmem_cache_free(c, o);
  mm.slab.kmem_cache_shrink(c);
  EXPECT_EQ(mm.slab.allocator->slabinfo(*s).num_slabs, 0u);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST(SlubLayout, DebugLayoutFollowsCalculateSizes) {
  Mm mm;
  const cache_id c =
      mm.slab.kmem_cache_create("dbg", 100, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER);
  const kmem_cache* s = mm.slab.cache(c);
  // 100 -> 104 (word), red zone fits in the padding, inuse 104; poison moves
  // the free pointer out (offset 104, +8), two 32-byte tracks (+64), the
  // extra red zone word (+8) and the left pad (8): 192.
  EXPECT_EQ(s->inuse, 104u);
  EXPECT_EQ(s->offset, 104u);
  EXPECT_EQ(s->red_left_pad, 8u);
  EXPECT_EQ(s->size, 192u);
  EXPECT_TRUE(s->flags & __OBJECT_POISON);
  EXPECT_EQ(mm.slab.allocator->ksize(*s), 100u);
  // Without debug the free pointer sits in the middle of the object.
  const kmem_cache* plain = mm.slab.cache(mm.slab.kmem_cache_create("plain", 100, 0, 0));
  EXPECT_EQ(plain->offset, 48u);
  EXPECT_EQ(plain->size, 104u);
  // A constructor keeps the object intact: the pointer goes after it.
  const kmem_cache* ctor =
      mm.slab.cache(mm.slab.kmem_cache_create("ctor", 100, 0, 0, {true, 0x77}));
  EXPECT_EQ(ctor->offset, 104u);
  EXPECT_EQ(ctor->size, 112u);
}

TEST(SlubLayout, FreshDebugSlabIsPoisonedAndRedZoned) {
  Mm mm;
  const cache_id c = mm.slab.kmem_cache_create("dbg", 100, 0, SLAB_RED_ZONE | SLAB_POISON);
  const vaddr_t o = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  const kmem_cache* s = mm.slab.cache(c);
  // The allocated object: active red zones on both sides.
  EXPECT_EQ(bytes(mm, o - 8, 8), std::vector<std::uint8_t>(8, SLUB_RED_ACTIVE));
  EXPECT_EQ(bytes(mm, o + 100, s->inuse - 100),
            std::vector<std::uint8_t>(s->inuse - 100, SLUB_RED_ACTIVE));
  mm.slab.kmem_cache_free(c, o);
  // Free again: poison, end poison, inactive red zones.
  const auto b = bytes(mm, o, 100);
  EXPECT_EQ(std::count(b.begin(), b.end() - 1, POISON_FREE), 99);
  EXPECT_EQ(b[99], POISON_END);
  EXPECT_EQ(bytes(mm, o - 8, 8), std::vector<std::uint8_t>(8, SLUB_RED_INACTIVE));
}

// ---------------------------------------------------------------- API

class SlubApi : public ::testing::Test {
 protected:
  SlubApi() : mm(small()), sl(mm.slab) { mm.attach(&rec); }
  Mm mm;
  Slab& sl;
  Recorder rec;
};

TEST_F(SlubApi, KmallocSizeClassesAndTypes) {
  struct Case {
    std::uint64_t size;
    gfp_t gfp;
    const char* cache;
  } cases[] = {
      {1, GFP_KERNEL, "kmalloc-128"},
      {128, GFP_KERNEL, "kmalloc-128"},
      {129, GFP_KERNEL, "kmalloc-256"},
      {192, GFP_KERNEL, "kmalloc-256"},
      {8192, GFP_KERNEL, "kmalloc-8k"},
      {100, GFP_KERNEL_ACCOUNT, "kmalloc-cg-128"},
      {100, GFP_KERNEL | __GFP_RECLAIMABLE, "kmalloc-rcl-128"},
      {100, GFP_KERNEL | GFP_DMA, "dma-kmalloc-128"},
      {3000, GFP_DMA | __GFP_RECLAIMABLE, "dma-kmalloc-4k"},
  };
  for (const auto& c : cases) {
    const vaddr_t p = sl.kmalloc(c.size, c.gfp);
    ASSERT_NE(p, 0u) << c.size;
    const auto ref = sl.find_object(p);
    ASSERT_TRUE(ref);
    EXPECT_EQ(sl.cache(ref->cache)->name, c.cache) << c.size << " " << format_gfp(c.gfp);
    EXPECT_EQ(ref->requested, c.size);
    sl.kfree(p);
  }
  EXPECT_TRUE(rec.misuses.empty());
}

// KMALLOC_MIN_SIZE 8 (arm64 since 6.5): the small classes and 96/192 come
// back, created in the kernel's order (96 after 64, 192 after 128).
TEST(SlubKmallocMin, EightByteMinimumBringsBackTheSmallClasses) {
  MmConfig cfg = small();
  cfg.slab.kmalloc_min_size = 8;
  Mm mm(cfg);
  Slab& sl = mm.slab;
  struct Case {
    std::uint64_t size;
    const char* cache;
  } cases[] = {{1, "kmalloc-8"},    {8, "kmalloc-8"},     {9, "kmalloc-16"},
               {24, "kmalloc-32"},  {65, "kmalloc-96"},   {96, "kmalloc-96"},
               {97, "kmalloc-128"}, {129, "kmalloc-192"}, {193, "kmalloc-256"}};
  for (const auto& c : cases) {
    const vaddr_t p = sl.kmalloc(c.size, GFP_KERNEL);
    ASSERT_NE(p, 0u) << c.size;
    EXPECT_EQ(sl.cache(sl.find_object(p)->cache)->name, c.cache) << c.size;
    EXPECT_EQ(sl.ksize(p), sl.cache(sl.find_object(p)->cache)->object_size);
    sl.kfree(p);
  }
  // Creation order: ..., kmalloc-64, kmalloc-96, kmalloc-128, kmalloc-192, kmalloc-256.
  std::vector<std::string> order;
  for (const auto& c : sl.caches)
    if (c->kmalloc && c->name.rfind("kmalloc-", 0) == 0 && c->object_size <= 256)
      order.push_back(c->name);
  order.resize(8);  // the normal type comes first
  EXPECT_EQ(order,
            (std::vector<std::string>{"kmalloc-8", "kmalloc-16", "kmalloc-32", "kmalloc-64",
                                      "kmalloc-96", "kmalloc-128", "kmalloc-192", "kmalloc-256"}));
  // 96 is not a power of two: only ARCH_KMALLOC_MINALIGN alignment.
  EXPECT_EQ(sl.cache(sl.find_cache("kmalloc-96"))->align, 8u);
  EXPECT_EQ(sl.cache(sl.find_cache("kmalloc-64"))->align, 64u);
}

TEST(SlubKmallocMin, ImpossibleMinimumIsAConfigError) {
  for (unsigned bad : {0u, 4u, 12u, 256u}) {
    MmConfig cfg = small();
    cfg.slab.kmalloc_min_size = bad;
    EXPECT_THROW(Mm{cfg}, ConfigError) << bad;
  }
}

TEST_F(SlubApi, KmallocLargeGoesToThePageAllocator) {
  rec.page_allocs = 0;
  const vaddr_t p = sl.kmalloc(8193, GFP_KERNEL);
  ASSERT_NE(p, 0u);
  EXPECT_EQ(rec.page_allocs, 1);  // a kmalloc and an mm_page_alloc, as the real trace shows
  ASSERT_EQ(rec.kmallocs.back().first, p);
  EXPECT_EQ(rec.kmallocs.back().second, 16384u);  // order 2
  EXPECT_FALSE(sl.find_object(p));
  EXPECT_EQ(sl.ksize(p), 16384u);
  const auto& st = mm.page_alloc.node_data[0].vm_stat;
  const long before = st[NR_SLAB_UNRECLAIMABLE_B];
  sl.kfree(p);
  EXPECT_EQ(st[NR_SLAB_UNRECLAIMABLE_B], before - 16384);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlubApi, ZeroSizeNullAndOverflow) {
  EXPECT_EQ(sl.kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
  sl.kfree(0);
  sl.kfree(ZERO_SIZE_PTR);
  EXPECT_EQ(sl.kmalloc_array(1ull << 40, 1ull << 30, GFP_KERNEL), 0u);  // check_mul_overflow
  EXPECT_EQ(sl.ksize(0), 0u);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlubApi, ZeroingAndInitOnAlloc) {
  const vaddr_t p = sl.kmalloc(64, GFP_KERNEL);
  const std::vector<std::uint8_t> junk(64, 0xaa);
  ASSERT_TRUE(sl.write(p, junk));
  sl.kfree(p);
  // init_on_alloc (Debian's 6.1 default) zeroes every new object.
  const vaddr_t q = sl.kmalloc(64, GFP_KERNEL);
  EXPECT_EQ(q, p) << "LIFO cpu freelist";
  EXPECT_EQ(bytes(mm, q, 64), std::vector<std::uint8_t>(64, 0));
  const vaddr_t z = sl.kcalloc(10, 10, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, z, 100), std::vector<std::uint8_t>(100, 0));
  sl.kfree(q);
  sl.kfree(z);
}

TEST_F(SlubApi, KreallocKeepsContentsAndFollowsKsize) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  std::vector<std::uint8_t> data(100);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i);
  ASSERT_TRUE(sl.write(p, data));
  EXPECT_EQ(sl.krealloc(p, 120, GFP_KERNEL), p);  // still fits kmalloc-128
  const vaddr_t q = sl.krealloc(p, 300, GFP_KERNEL);
  ASSERT_NE(q, p);
  EXPECT_EQ(bytes(mm, q, 100), data);
  EXPECT_FALSE(sl.find_object(p)->allocated);  // the old object was freed
  EXPECT_EQ(sl.krealloc(q, 0, GFP_KERNEL), ZERO_SIZE_PTR);
  EXPECT_FALSE(sl.find_object(q)->allocated);
  const vaddr_t r = sl.krealloc(0, 50, GFP_KERNEL);  // krealloc(NULL) is kmalloc
  EXPECT_TRUE(sl.find_object(r)->allocated);
  sl.kfree(r);
  EXPECT_TRUE(rec.misuses.empty());
}

// Found by `mmfuzz workload --ops 200000 --seed 3`: an in-place krealloc of
// a large kmalloc must move KASAN's end of the object with the new size.
TEST_F(SlubApi, KreallocInPlaceOfALargeKmallocMovesItsEnd) {
  const vaddr_t p = sl.kmalloc(36534, GFP_KERNEL);  // order 4
  ASSERT_EQ(sl.krealloc(p, 177, GFP_KERNEL), p);
  EXPECT_FALSE(sl.fill(p, 178, 0x11));
  ASSERT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  ASSERT_EQ(sl.krealloc(p, 57752, GFP_KERNEL), p);  // still fits the 64 KiB
  EXPECT_TRUE(sl.fill(p, 57752, 0x22));
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_FALSE(sl.fill(p, 57753, 0x22));
  EXPECT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  sl.kfree(p);
}

TEST_F(SlubApi, KsizeUnpoisonsTheUsableSize) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  const std::uint8_t b[4] = {1, 2, 3, 4};
  EXPECT_FALSE(sl.write(p + 110, b));  // beyond the 100 requested bytes
  ASSERT_EQ(rec.ids(), Ids{"kasan.out_of_bounds"});
  rec.misuses.clear();
  EXPECT_EQ(sl.ksize(p), 128u);
  EXPECT_TRUE(sl.write(p + 110, b));  // ksize() handed the caller all 128
  EXPECT_TRUE(rec.misuses.empty());
  sl.kfree(p);
}

TEST_F(SlubApi, KfreeSensitiveKmemdupKstrdup) {
  const vaddr_t p = sl.kmalloc(32, GFP_KERNEL);
  const std::string secret = "hunter2-hunter2-hunter2";
  ASSERT_TRUE(
      sl.write(p, std::span<const std::uint8_t>(
                      reinterpret_cast<const std::uint8_t*>(secret.c_str()), secret.size() + 1)));
  const vaddr_t d = sl.kmemdup(p, 8, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, d, 8), bytes(mm, p, 8));
  const vaddr_t s = sl.kstrdup(p, GFP_KERNEL);
  ASSERT_NE(s, 0u);
  EXPECT_EQ(sl.find_object(s)->requested, secret.size() + 1);
  EXPECT_EQ(bytes(mm, s, secret.size() + 1), bytes(mm, p, secret.size() + 1));
  sl.kfree_sensitive(p);
  EXPECT_EQ(bytes(mm, p, 16), std::vector<std::uint8_t>(16, 0)) << "memzero_explicit over ksize";
  sl.kfree(d);
  sl.kfree(s);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlubApi, CacheMergingAndAliases) {
  const cache_id a = sl.kmem_cache_create("foo_cache", 200, 0, 0);
  const cache_id b = sl.kmem_cache_create("bar_cache", 196, 0, 0);
  EXPECT_EQ(a, b) << "SLAB_MERGE_DEFAULT: bar_cache is an alias of foo_cache";
  EXPECT_EQ(sl.find_cache("bar_cache"), a);
  EXPECT_EQ(sl.cache(a)->refcount, 2);
  // Different SLAB_MERGE_SAME flags or a constructor never merge.
  EXPECT_NE(sl.kmem_cache_create("baz_cache", 200, 0, SLAB_RECLAIM_ACCOUNT), a);
  EXPECT_NE(sl.kmem_cache_create("ctor_cache", 200, 0, 0, {true, 1}), a);
  // kmalloc caches are never merge targets (usersize), debug caches never merge.
  EXPECT_NE(sl.kmem_cache_create("like_kmalloc", 256, 0, 0), sl.kmalloc_slab(256, GFP_KERNEL));
  EXPECT_NE(sl.kmem_cache_create("dbg_cache", 200, 0, SLAB_RED_ZONE), a);
  sl.kmem_cache_destroy(b);  // drops the alias
  EXPECT_EQ(sl.cache(a)->refcount, 1);
  EXPECT_FALSE(sl.cache(a)->destroyed);
  sl.kmem_cache_destroy(a);
  EXPECT_TRUE(sl.cache(a)->destroyed);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(SlubApi, NoMergeOption) {
  MmConfig cfg = small();
  cfg.slab.nomerge = true;
  Mm m(cfg);
  EXPECT_NE(m.slab.kmem_cache_create("foo_cache", 200, 0, 0),
            m.slab.kmem_cache_create("bar_cache", 200, 0, 0));
}

TEST_F(SlubApi, ConstructorRunsWhenTheSlabIsPopulated) {
  const cache_id c = sl.kmem_cache_create("ctor_cache", 48, 0, 0, {true, 0x5c});
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, o, 48), std::vector<std::uint8_t>(48, 0x5c))
      << "no init_on_alloc over a ctor";
  // A freed object keeps its constructed state (the free pointer is outside).
  sl.kmem_cache_free(c, o);
  EXPECT_EQ(bytes(mm, o, 48), std::vector<std::uint8_t>(48, 0x5c));
  // __GFP_ZERO still zeroes.
  const vaddr_t z = sl.kmem_cache_zalloc(c, GFP_KERNEL);
  EXPECT_EQ(bytes(mm, z, 48), std::vector<std::uint8_t>(48, 0));
}

TEST_F(SlubApi, BulkAllocationIsAllOrNothing) {
  const cache_id c = sl.kmem_cache_create("bulk", 64, 0, 0);
  std::vector<vaddr_t> v(100);
  ASSERT_EQ(sl.kmem_cache_alloc_bulk(c, GFP_KERNEL, v.size(), v.data()), v.size());
  std::set<vaddr_t> uniq(v.begin(), v.end());
  EXPECT_EQ(uniq.size(), v.size());
  for (vaddr_t o : v) EXPECT_TRUE(sl.find_object(o)->allocated);
  sl.kmem_cache_free_bulk(c, v.size(), v.data());
  for (vaddr_t o : v) EXPECT_FALSE(sl.find_object(o)->allocated);
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlubApi, DestroyRefusesWhileObjectsRemain) {
  // 72 bytes: a 64-byte cache would merge into vmap_area.
  const cache_id c = sl.kmem_cache_create("busy", 72, 0, 0);
  const vaddr_t o = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_destroy(c);
  EXPECT_EQ(rec.ids(), Ids{"slab.destroy_busy"});
  EXPECT_FALSE(sl.cache(c)->destroyed);
  ASSERT_NE(rec.misuses[0].detail.find("Slab cache still has objects"), std::string::npos);
  rec.misuses.clear();
  sl.kmem_cache_free(c, o);
  sl.kmem_cache_destroy(c);
  EXPECT_TRUE(sl.cache(c)->destroyed);
  EXPECT_TRUE(rec.misuses.empty());
  // Use after destroy.
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), 0u);
  EXPECT_EQ(rec.ids(), Ids{"slab.cache_destroyed"});
  EXPECT_EQ(sweep_ids(mm), Ids{});
}

TEST_F(SlubApi, BadCreateArguments) {
  EXPECT_EQ(sl.kmem_cache_create("tiny", 4, 0, 0), 0u);
  EXPECT_EQ(sl.kmem_cache_create("", 64, 0, 0), 0u);
  EXPECT_EQ(sl.kmem_cache_create("huge", 8u << 20, 0, 0), 0u);
  EXPECT_EQ(sl.kmem_cache_create("flags", 64, 0, 0x10000000u), 0u);
  EXPECT_EQ(rec.misuses.size(), 4u);
  EXPECT_EQ(rec.ids(), Ids{"slab.bad_create"});
  EXPECT_NE(rec.misuses[0].detail.find("failed with error -22"), std::string::npos);
}

TEST_F(SlubApi, MisuseOfFrees) {
  const cache_id a = sl.kmem_cache_create("a_cache", 64, 0, SLAB_ACCOUNT);
  const cache_id b = sl.kmem_cache_create("b_cache", 64, 0, SLAB_RECLAIM_ACCOUNT);
  ASSERT_NE(a, b);
  const vaddr_t o = sl.kmem_cache_alloc(a, GFP_KERNEL);
  sl.kmem_cache_free(b, o);
  EXPECT_EQ(rec.ids(), Ids{"slab.wrong_cache"});
  EXPECT_TRUE(sl.find_object(o)->allocated) << "refused";
  rec.misuses.clear();
  sl.kmem_cache_free(a, o + 8);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  sl.kmem_cache_free(a, o);
  sl.kmem_cache_free(a, o);
  EXPECT_EQ(rec.ids(), Ids{"slab.double_free"});
  rec.misuses.clear();
  const vaddr_t page = mm.page_alloc.__get_free_page(GFP_KERNEL);
  sl.kmem_cache_free(a, page);
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  rec.misuses.clear();
  sl.kfree(page + 64);  // not a large kmalloc either
  EXPECT_EQ(rec.ids(), Ids{"slab.invalid_free"});
  EXPECT_EQ(sweep_ids(mm), Ids{}) << "misuse was refused: the model is intact";
}

TEST_F(SlubApi, KasanViewOfAccesses) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  std::uint8_t b[8] = {};
  EXPECT_TRUE(sl.read(p, b));
  EXPECT_TRUE(sl.write(p + 92, b));
  EXPECT_FALSE(sl.write(p + 96, b));  // 4 bytes past the request
  EXPECT_EQ(rec.misuses.back().what, "slab-out-of-bounds");
  EXPECT_EQ(rec.misuses.back().addr, p + 100) << "the first bad byte";
  rec.misuses.clear();
  sl.kfree(p);
  EXPECT_FALSE(sl.read(p, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  rec.misuses.clear();
  EXPECT_FALSE(sl.write(8, b));
  EXPECT_EQ(rec.misuses.back().what, "null-ptr-deref");
  EXPECT_FALSE(sl.write(0xffff800012345000ull, b));
  EXPECT_EQ(rec.misuses.back().what, "wild-memory-access");
  // A freed page of the page allocator.
  rec.misuses.clear();
  const vaddr_t pg = mm.page_alloc.__get_free_page(GFP_KERNEL);
  EXPECT_TRUE(sl.write(pg + 100, b));
  mm.page_alloc.free_page(pg);
  mm.page_alloc.drain_all_pages();
  EXPECT_FALSE(sl.write(pg + 100, b));
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
}

TEST_F(SlubApi, WritesLandInRamEvenWhenReported) {
  const vaddr_t p = sl.kmalloc(100, GFP_KERNEL);
  const std::uint8_t b[4] = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_FALSE(sl.write(p + 100, b));
  EXPECT_EQ(bytes(mm, p + 100, 4), std::vector<std::uint8_t>(b, b + 4))
      << "the damage is really there";
}

// ---------------------------------------------------------------- hardened freelist

TEST_F(SlubApi, FreePointersAreObfuscatedInRam) {
  const cache_id c = sl.kmem_cache_create("fp", 64, 0, 0);
  const vaddr_t a = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t b = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, a);
  sl.kmem_cache_free(c, b);  // b's free pointer now leads to a
  const kmem_cache* s = sl.cache(c);
  std::uint64_t raw;
  std::memcpy(&raw, bytes(mm, b + s->offset, 8).data(), 8);
  EXPECT_NE(raw, a) << "SLAB_FREELIST_HARDENED stores ptr ^ random ^ swab(addr)";
  EXPECT_EQ(slub::get_freepointer(mm, *s, b), a);
}

TEST_F(SlubApi, UseAfterFreeWriteCorruptsTheFreelistAndIsCaught) {
  const cache_id c = sl.kmem_cache_create("uaf", 64, 0, 0);
  const vaddr_t a = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t b = sl.kmem_cache_alloc(c, GFP_KERNEL);
  sl.kmem_cache_free(c, a);
  sl.kmem_cache_free(c, b);
  const kmem_cache* s = sl.cache(c);
  const std::vector<std::uint8_t> junk(8, 0x41);
  EXPECT_FALSE(sl.write(b + s->offset, junk));  // KASAN sees the use after free at once
  EXPECT_EQ(rec.ids(), Ids{"kasan.use_after_free"});
  rec.misuses.clear();
  // SLUB's view: the next allocation follows a corrupt free pointer.
  EXPECT_EQ(sl.kmem_cache_alloc(c, GFP_KERNEL), b);
  EXPECT_EQ(rec.ids(), Ids{"slab.freeptr"});
  // The model did not follow it: allocations go on from fresh memory.
  for (int i = 0; i < 200; ++i) ASSERT_NE(sl.kmem_cache_alloc(c, GFP_KERNEL), 0u);
}

// ---------------------------------------------------------------- debug

TEST(SlubDebug, RedZoneOverwriteReportedOnFreeInSlubStyle) {
  MmConfig cfg = small();
  cfg.slab.debug_flags = SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
  Mm mm(cfg);
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(mm, o);
  mm.op_seq = 5;
  const vaddr_t p = mm.slab.kmalloc(128, GFP_KERNEL);  // kmalloc-128, object_size 128
  const std::uint8_t b[2] = {0x41, 0x42};
  e.begin_op(6, "write");
  mm.slab.write(p + 128, b);  // into the right red zone
  e.end_op();
  e.begin_op(7, "kfree");
  mm.op_seq = 7;
  mm.slab.kfree(p);
  e.end_op();
  std::set<std::string> ids;
  std::string text;
  for (const auto& v : e.violations()) ids.insert(v.invariant), text += v.to_text(false);
  EXPECT_EQ(ids, (Ids{"kasan.out_of_bounds", "slab.redzone"})) << text;
  EXPECT_NE(text.find("BUG kmalloc-128 (Not tainted): Right Redzone overwritten"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("First byte 0x41 instead of 0xcc"), std::string::npos) << text;
  EXPECT_NE(text.find("Allocated in call_site#0 age=2 cpu=0 pid=0"), std::string::npos) << text;
  EXPECT_NE(text.find("Redzone  "), std::string::npos) << text;
  // The object was not freed ("Object at ... not freed"), and bytes were restored.
  EXPECT_TRUE(mm.slab.find_object(p)->allocated);
  EXPECT_EQ(bytes(mm, p + 128, 2), std::vector<std::uint8_t>(2, SLUB_RED_ACTIVE));
}

TEST(SlubDebug, PoisonOverwriteAfterFreeFoundByTheNextAllocation) {
  MmConfig cfg = small();
  Mm mm(cfg);
  Recorder rec;
  mm.attach(&rec);
  const cache_id c = mm.slab.kmem_cache_create(
      "pz", 100, 0, SLAB_CONSISTENCY_CHECKS | SLAB_POISON | SLAB_RED_ZONE);
  const vaddr_t o = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  mm.slab.kmem_cache_free(c, o);
  const std::uint8_t b[1] = {0};
  mm.slab.write(o + 10, b);  // use after free: KASAN now, SLUB at the next allocation
  rec.misuses.clear();
  const vaddr_t again = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  EXPECT_EQ(rec.ids(), Ids{"slab.poison"});
  EXPECT_EQ(rec.misuses[0].what, "Poison overwritten");
  EXPECT_NE(again, o) << "the damaged slab was given up";
}

TEST(SlubDebug, SweepsFindDamageWithoutConsistencyChecks) {
  Mm mm(small());
  const cache_id c = mm.slab.kmem_cache_create("rz", 64, 0, SLAB_RED_ZONE);
  const vaddr_t o = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  const std::uint8_t b[1] = {7};
  mm.ram.write(mm.__pa(o + 64), b);  // behind KASAN's back
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.redzone"}) << text;
}

// SLAB_POISON fills the slab's unused tail with POISON_INUSE; a sweep finds
// a byte changed there (slab_pad_check()).
TEST(SlubDebug, SlabPaddingOverwrittenIsReported) {
  Mm mm(small());
  const cache_id c =
      mm.slab.kmem_cache_create("pad", 100, 0, SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER);
  const vaddr_t o = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_NE(o, 0u);
  const kmem_cache& s = *mm.slab.cache(c);
  const pfn_t slab = mm.slab.slab_head(mm.virt_to_pfn(o));
  const std::uint64_t bytes = mm.profile.page_size() << s.order;
  ASSERT_GT(bytes - std::uint64_t{s.objects} * s.size, 0u) << "the layout leaves no tail";
  EXPECT_EQ(sweep_ids(mm), Ids{});
  const std::uint8_t b[1] = {0x11};
  mm.ram.write(mm.__pa(mm.page_address(slab) + bytes - 1), b);
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{"slab.padding"}) << text;
  EXPECT_NE(text.find("Padding overwritten"), std::string::npos) << text;
}

TEST(SlubDebug, LeakReportGroupsBySite) {
  Mm mm(small());
  inv::CheckOptions o;
  o.capture_stacks = false;
  o.report_leaks = true;
  inv::CheckEngine e(mm, o);
  mm.op_seq = 3;
  mm.call_site = 7;
  for (int i = 0; i < 5; ++i) mm.slab.kmalloc(100, GFP_KERNEL);
  const vaddr_t freed = mm.slab.kmalloc(100, GFP_KERNEL);
  mm.slab.kfree(freed);
  e.finish();
  ASSERT_EQ(e.violations().size(), 1u) << e.violations()[0].to_text(false);
  const auto& v = e.violations()[0];
  EXPECT_EQ(v.invariant, "slab.leak");
  EXPECT_NE(v.title.find("5 slab objects still allocated"), std::string::npos) << v.title;
  EXPECT_NE(v.to_text(false).find("5 objects (500 bytes) of kmalloc-128 allocated at call_site#7"),
            std::string::npos)
      << v.to_text(false);
}

// ---------------------------------------------------------------- invariants

class SlubInvariants : public ::testing::Test {
 protected:
  SlubInvariants() : mm(small()), sl(mm.slab) {
    c = sl.kmem_cache_create("victim", 64, 0, 0);
    for (int i = 0; i < 1000; ++i) objs.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
    for (std::size_t i = 0; i < objs.size(); i += 3) sl.kmem_cache_free(c, objs[i]);
    mm.set_cpu(1);
    for (std::size_t i = 1; i < objs.size(); i += 7) sl.kmem_cache_free(c, objs[i]);
    mm.set_cpu(0);
    // Freed full slabs first go to the cpu partial chains; shrinking flushes
    // them to the node partial list, and a few more allocations make a new
    // cpu slab from it.
    sl.kmem_cache_shrink(c);
    for (int i = 0; i < 5; ++i) objs.push_back(sl.kmem_cache_alloc(c, GFP_KERNEL));
  }
  const kmem_cache& s() { return *sl.cache(c); }
  pfn_t partial_slab() { return sl.lists.first(s().node[0].partial); }
  Mm mm;
  Slab& sl;
  cache_id c = 0;
  std::vector<vaddr_t> objs;
};

TEST_F(SlubInvariants, CleanAfterTheSetup) {
  std::string text;
  EXPECT_EQ(sweep_ids(mm, &text), Ids{}) << text;
  EXPECT_NE(partial_slab(), NO_PAGE) << "the setup must leave node partial slabs";
}

TEST_F(SlubInvariants, PagesFiresOnABogusCache) {
  mm.pfn_to_page(partial_slab()).slab.cache = 9999;
  EXPECT_TRUE(sweep_ids(mm).count("slab.pages"));
}

TEST_F(SlubInvariants, OverlapFiresWhenASlabPageIsNotAllocated) {
  PageAllocCorruptor(mm).set_owner(partial_slab(), PAGE_OWNER_NONE, 0);
  EXPECT_TRUE(sweep_ids(mm).count("slab.overlap"));
}

TEST_F(SlubInvariants, CountsFiresOnInuse) {
  mm.pfn_to_page(partial_slab()).slab.inuse++;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

TEST_F(SlubInvariants, CountsFiresOnNrPartial) {
  sl.cache(c)->node[0].nr_partial++;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.counts"});
}

// One broken counter is one violation, not one per registered checker.
TEST_F(SlubInvariants, OneCorruptionIsOneViolation) {
  sl.cache(c)->node[0].nr_partial++;
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(mm, o);
  e.full_sweep();
  ASSERT_EQ(e.violations().size(), 1u) << e.violations()[0].to_text(false);
  EXPECT_EQ(e.violations()[0].invariant, "slab.counts");
}

TEST_F(SlubInvariants, ListsFiresOnAFrozenPartialSlab) {
  mm.pfn_to_page(partial_slab()).slab.frozen = 1;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlubInvariants, ListsFiresOnALostPartialSlab) {
  const pfn_t slab = partial_slab();
  sl.lists.del(slab);
  sl.cache(c)->node[0].nr_partial--;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.lists"});
}

TEST_F(SlubInvariants, FreelistFiresOnAnAllocatedObjectOnTheFreelist) {
  const pfn_t slab = partial_slab();
  const vaddr_t first_free = mm.pfn_to_page(slab).slab.freelist;
  (*sl.shadow(slab))[(first_free - mm.page_address(slab)) / s().size].allocated = true;
  EXPECT_EQ(sweep_ids(mm), Ids{"slab.freelist"});
}

TEST_F(SlubInvariants, FreelistFiresOnACycle) {
  const pfn_t slab = partial_slab();
  const vaddr_t first = mm.pfn_to_page(slab).slab.freelist;
  const vaddr_t second = slub::get_freepointer(mm, s(), first);
  ASSERT_NE(second, 0u);
  // Point the second free object back at the first, obfuscated as SLUB stores it.
  const vaddr_t at = second + s().offset;
  const std::uint64_t enc = first ^ s().random ^ __builtin_bswap64(at);
  std::uint8_t b[8];
  std::memcpy(b, &enc, 8);
  mm.ram.write(mm.__pa(at), b);
  EXPECT_TRUE(sweep_ids(mm).count("slab.freelist"));
}

TEST_F(SlubInvariants, FreeptrFiresOnAGarbagePointer) {
  const pfn_t slab = partial_slab();
  const vaddr_t first = mm.pfn_to_page(slab).slab.freelist;
  const std::vector<std::uint8_t> junk(8, 0x41);
  mm.ram.write(mm.__pa(first + s().offset), junk);
  EXPECT_TRUE(sweep_ids(mm).count("slab.freeptr"));
}

TEST_F(SlubInvariants, IncrementalCatchesAnObjectAllocatedButMarkedFree) {
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(mm, o);
  e.begin_op(1, "kmem_cache_alloc");
  const vaddr_t x = sl.kmem_cache_alloc(c, GFP_KERNEL);
  const auto ref = sl.find_object(x);
  (*sl.shadow(ref->slab))[ref->index].allocated = false;  // the model "forgot"
  e.end_op();
  ASSERT_FALSE(e.violations().empty());
  EXPECT_EQ(e.violations()[0].invariant, "slab.counts");
}

TEST(SlubDeterminism, SameProgramSameAddresses) {
  auto run = [] {
    Mm mm(small());
    std::vector<vaddr_t> out;
    SplitMix64 r{42};
    for (int i = 0; i < 2000; ++i) {
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
