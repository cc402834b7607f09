// The model's event counters (mm/vm_event.h): each family moves in a
// scenario that drives the allocator into the state it counts, by exactly
// the amount the state says where the model's layout is known, and a
// snapshot restore brings every counter back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/vm_event.h"

namespace mmfuzz::mm {
namespace {

MmConfig config(SlabVariant v = SlabVariant::slub) {
  MmConfig cfg;
  cfg.machine = small_machine(16 * SZ_1M);
  cfg.slab.variant = v;
  cfg.slab.nomerge = true;  // caches of the tests are their own
  return cfg;
}

// The counters' change since the last call.
class Delta {
 public:
  explicit Delta(const Mm& m) : m_(m), last_(m.events()) {}
  std::uint64_t operator()(vm_event_item i) const { return m_.events()[i] - last_[i]; }
  void reset() { last_ = m_.events(); }

 private:
  const Mm& m_;
  VmEvents last_;
};

vm_event_item split(unsigned order) {
  return static_cast<vm_event_item>(BUDDY_SPLIT + order);
}
vm_event_item merge(unsigned order) {
  return static_cast<vm_event_item>(BUDDY_MERGE + order);
}

const zone& only_zone(const Mm& m) {
  for (const auto& z : m.page_alloc.node_data[0].node_zones)
    if (z.populated_zone()) return z;
  throw ConfigError("no populated zone");
}

TEST(VmEvents, NamesAreDistinctSnakeCase) {
  std::set<std::string> names;
  VmEvents ev;
  unsigned n = 0;
  ev.for_each([&](const char* name, std::uint64_t v) {
    ++n;
    EXPECT_EQ(v, 0u);
    const std::string s(name);
    EXPECT_TRUE(names.insert(s).second) << s;
    EXPECT_FALSE(s.empty());
    for (const char c : s)
      EXPECT_TRUE(std::islower(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c)) || c == '_')
          << s;
  });
  EXPECT_EQ(n, static_cast<unsigned>(NR_VM_EVENT_ITEMS));
  EXPECT_STREQ(vm_event_name(split(3)), "buddy_split_order3");
  EXPECT_STREQ(vm_event_name(merge(10)), "buddy_merge_order10");
  EXPECT_STREQ(vm_event_name(SLUB_CPU_PARTIAL_FREE), "slub_cpu_partial_free");
  EXPECT_STREQ(vm_event_name(SLAB_ARRAY_REFILL), "slab_array_refill");
  EXPECT_STREQ(vm_event_name(SLOB_LIST_ROTATE), "slob_list_rotate");
}

// An order-4 block from the smallest unmovable block that holds one: one
// split at each order from that block's down to 5.
TEST(VmEvents, BuddySplitCountsEachOrderOnce) {
  Mm m(config());
  const zone& z = only_zone(m);
  unsigned from = 4;
  while (from < m.page_alloc.max_order() &&
         m.page_alloc.list_empty(z.free_area_[from].free_list[MIGRATE_UNMOVABLE]))
    ++from;
  ASSERT_LT(from, m.page_alloc.max_order()) << "no unmovable block to split after boot";
  Delta d(m);
  ASSERT_NE(m.page_alloc.alloc_pages(GFP_KERNEL, 4), NO_PAGE);
  for (unsigned o = 0; o < kVmEventOrders; ++o)
    EXPECT_EQ(d(split(o)), o > 4 && o <= from ? 1u : 0u) << "order " << o;
  EXPECT_EQ(d(BUDDY_FALLBACK), 0u);
  EXPECT_EQ(d(PCP_REFILL), 0u);  // order 4 bypasses the pcp lists
}

// Two order-0 buddies of a split block, freed through the pcp lists and
// drained: one merge at order 0, none above (their order-1 buddy is held).
TEST(VmEvents, BuddyMergeOfTwoFreedBuddies) {
  Mm m(config());
  const pfn_t b = m.page_alloc.alloc_pages(GFP_KERNEL, 5);
  ASSERT_NE(b, NO_PAGE);
  m.page_alloc.split_page(b, 5);
  m.page_alloc.drain_all_pages();
  Delta d(m);
  m.page_alloc.__free_pages(b, 0);
  m.page_alloc.__free_pages(b + 1, 0);
  m.page_alloc.drain_all_pages();
  EXPECT_EQ(d(merge(0)), 1u);
  for (unsigned o = 1; o < kVmEventOrders; ++o) EXPECT_EQ(d(merge(o)), 0u) << "order " << o;
  EXPECT_EQ(d(DRAIN_ALL_PAGES), 1u);
  EXPECT_GE(d(PCP_FREE_BULK), 1u);
}

TEST(VmEvents, PcpRefillAndBulkFree) {
  Mm m(config());
  m.page_alloc.drain_all_pages();
  Delta d(m);
  const pfn_t p = m.page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, NO_PAGE);
  EXPECT_EQ(d(PCP_REFILL), 1u);  // the drained list was empty
  EXPECT_EQ(d(PGALLOC_SLOWPATH), 0u);
  m.page_alloc.__free_pages(p, 0);
  EXPECT_EQ(d(PCP_FREE_BULK), 0u);  // one page stays below pcp->high
  m.page_alloc.drain_all_pages();
  EXPECT_EQ(d(PCP_FREE_BULK), 1u);  // only this CPU's list held pages
}

// Unmovable allocations take over movable pageblocks: boot marks every
// pageblock movable, so the first fallback comes within the zone's pages.
TEST(VmEvents, FallbackStealsPageblocks) {
  Mm m(config());
  Delta d(m);
  for (int i = 0; i < 4096 && !d(BUDDY_FALLBACK); ++i)
    ASSERT_NE(m.page_alloc.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0), NO_PAGE) << i;
  EXPECT_EQ(d(BUDDY_FALLBACK), 1u);
  EXPECT_EQ(d(BUDDY_STEAL_PAGEBLOCK), 1u);  // the largest block: at least a pageblock
}

TEST(VmEvents, SlowPathAndFailures) {
  Mm m(config());
  Delta d(m);
  int got = 0;
  while (m.page_alloc.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 10) != NO_PAGE) ASSERT_LT(++got, 16);
  EXPECT_EQ(d(PGALLOC_FAIL), 1u);
  EXPECT_EQ(m.events()[PGALLOC_FAIL], m.page_alloc.nr_alloc_failures);
  EXPECT_GE(d(PGALLOC_SLOWPATH), 1u);
  d.reset();
  EXPECT_EQ(m.page_alloc.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 11), NO_PAGE);  // >= MAX_ORDER
  EXPECT_EQ(d(PGALLOC_FAIL), 1u);
}

// SLUB: fill three slabs, free into a full one (frozen onto the cpu partial
// chain), free on the cpu slab (the fast path), run the cpu slab dry so the
// partial slab becomes the cpu slab, then flush.
TEST(VmEvents, SlubPathsAndCpuPartial) {
  Mm m(config());
  const cache_id c = m.slab.kmem_cache_create("ev_slub", 256, 0, 0);
  ASSERT_NE(c, 0u);
  const unsigned per = m.slab.cache(c)->objects;
  Delta d(m);
  std::vector<vaddr_t> objs;
  for (unsigned i = 0; i < 3 * per; ++i) objs.push_back(m.slab.kmem_cache_alloc(c, GFP_KERNEL));
  ASSERT_EQ(std::count(objs.begin(), objs.end(), 0u), 0);
  EXPECT_EQ(d(SLUB_ALLOC_SLAB), 3u);
  EXPECT_EQ(d(SLUB_ALLOC_SLOWPATH), 3u);  // one per slab, the first object of each
  EXPECT_EQ(d(SLUB_ALLOC_FASTPATH), 3u * per - 3u);
  d.reset();
  m.slab.kmem_cache_free(c, objs[0]);  // the first slab is full and on no list
  EXPECT_EQ(d(SLUB_FREE_SLOWPATH), 1u);
  EXPECT_EQ(d(SLUB_CPU_PARTIAL_FREE), 1u);
  m.slab.kmem_cache_free(c, objs.back());  // the cpu slab
  EXPECT_EQ(d(SLUB_FREE_FASTPATH), 1u);
  d.reset();
  for (int i = 0; i < 2; ++i) ASSERT_NE(m.slab.kmem_cache_alloc(c, GFP_KERNEL), 0u);
  EXPECT_EQ(d(SLUB_CPU_PARTIAL_ALLOC), 1u);  // the cpu slab was full after one
  EXPECT_EQ(d(SLUB_ALLOC_SLAB), 0u);
  d.reset();
  m.slab.kmem_cache_shrink(c);
  EXPECT_EQ(d(SLUB_DEACTIVATE), 1u);
}

// SLAB: an empty array refills (and grows the cache); 121 frees overflow an
// array of limit 120 into the shared array; the other CPU refills from it;
// idle arrays drain at the second reap; shrinking destroys free slabs.
TEST(VmEvents, SlabArraysSharedReapAndDestroy) {
  Mm m(config(SlabVariant::slab));
  const cache_id c = m.slab.kmem_cache_create("ev_slab", 256, 0, 0);
  ASSERT_NE(c, 0u);
  ASSERT_EQ(m.slab.cache(c)->limit, 120u);
  Delta d(m);
  std::vector<vaddr_t> objs;
  for (int i = 0; i < 200; ++i) objs.push_back(m.slab.kmem_cache_alloc(c, GFP_KERNEL));
  EXPECT_GE(d(SLAB_ARRAY_REFILL), 1u);
  EXPECT_GE(d(SLAB_GROW), 1u);
  EXPECT_EQ(d(SLAB_FLUSHARRAY), 0u);
  for (int i = 0; i < 121; ++i) m.slab.kmem_cache_free(c, objs[static_cast<std::size_t>(i)]);
  EXPECT_EQ(d(SLAB_FLUSHARRAY), 1u);
  d.reset();
  ASSERT_TRUE(m.set_cpu(1));
  ASSERT_NE(m.slab.kmem_cache_alloc(c, GFP_KERNEL), 0u);
  EXPECT_EQ(d(SLAB_ARRAY_REFILL), 1u);
  EXPECT_EQ(d(SLAB_REFILL_SHARED), 1u);
  ASSERT_TRUE(m.set_cpu(0));
  d.reset();
  m.tick();
  m.tick();
  EXPECT_GE(d(SLAB_REAP_DRAIN), 1u);
  for (std::size_t i = 121; i < objs.size(); ++i) m.slab.kmem_cache_free(c, objs[i]);
  d.reset();
  m.slab.kmem_cache_shrink(c);
  EXPECT_GE(d(SLAB_DESTROY), 1u);
}

// SLOB: 1 KiB blocks (896 bytes and the kmalloc header), four to a page.
// Two full pages get holes: three adjacent ones in the first, one in the
// second, which goes to the front of the large list. A 2 KiB block does not
// fit the front page but the one behind it, which stays partially free: the
// list rotates to start at it.
TEST(VmEvents, SlobRotationPagesAndLargeKmalloc) {
  Mm m(config(SlabVariant::slob));
  Delta d(m);
  std::vector<vaddr_t> objs;
  for (int i = 0; i < 8; ++i) objs.push_back(m.slab.kmalloc(896, GFP_KERNEL));
  ASSERT_EQ(std::count(objs.begin(), objs.end(), 0u), 0);
  EXPECT_EQ(d(SLOB_PAGE_ALLOC), 2u);
  for (const std::size_t i : {4u, 5u, 6u, 1u}) m.slab.kfree(objs[i]);
  EXPECT_EQ(d(SLOB_LIST_ROTATE), 0u);
  const vaddr_t two = m.slab.kmalloc(1920, GFP_KERNEL);
  ASSERT_NE(two, 0u);
  EXPECT_EQ(m.virt_to_pfn(two), m.virt_to_pfn(objs[4]));
  EXPECT_EQ(d(SLOB_LIST_ROTATE), 1u);
  EXPECT_EQ(d(SLOB_PAGE_ALLOC), 2u);
  const vaddr_t big = m.slab.kmalloc(8192, GFP_KERNEL);
  ASSERT_NE(big, 0u);
  EXPECT_EQ(d(SLOB_LARGE_KMALLOC), 1u);
  m.slab.kfree(big);
  EXPECT_EQ(d(SLOB_PAGE_FREE), 0u);  // large kmallocs are no heap pages
  for (const std::size_t i : {0u, 2u, 3u}) m.slab.kfree(objs[i]);
  EXPECT_EQ(d(SLOB_PAGE_FREE), 1u);
}

TEST(VmEvents, VmallocAreasAndLazyPurge) {
  Mm m(config());
  Delta d(m);
  const vaddr_t a = m.vmalloc.vmalloc(8192);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(d(VMALLOC_AREA_ALLOC), 1u);
  m.vmalloc.vfree(a);
  EXPECT_EQ(d(VMALLOC_AREA_FREE), 1u);
  EXPECT_EQ(d(VMALLOC_LAZY_PURGE), 0u);
  m.vmalloc.purge_vmap_area_lazy();
  EXPECT_EQ(d(VMALLOC_LAZY_PURGE), 1u);
  m.vmalloc.purge_vmap_area_lazy();  // nothing left to purge
  EXPECT_EQ(d(VMALLOC_LAZY_PURGE), 1u);
}

// A pool of order-9 pages lends its reserve once the other blocks of that
// order are gone, and its free refills the reserve.
TEST(VmEvents, MempoolReserveLentAndRefilled) {
  Mm m(config());
  const mempool_id pool = m.mempools.mempool_create_page_pool(1, 9);
  ASSERT_NE(pool, 0u);
  while (m.page_alloc.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 9) != NO_PAGE) {
  }
  Delta d(m);
  const vaddr_t e = m.mempools.mempool_alloc(pool, GFP_KERNEL);
  ASSERT_NE(e, 0u);
  EXPECT_EQ(d(MEMPOOL_ALLOC_RESERVE), 1u);
  m.mempools.mempool_free(pool, e);
  EXPECT_EQ(d(MEMPOOL_FREE_REFILL), 1u);
  EXPECT_EQ(m.mempools.pool(pool)->curr_nr(), 1);
}

TEST(VmEvents, SnapshotRestoreBringsThemBack) {
  const MmConfig cfg = config();
  Mm snap(cfg), work(cfg);
  for (int i = 0; i < 64; ++i) work.slab.kfree(work.slab.kmalloc(100, GFP_KERNEL));
  work.page_alloc.drain_all_pages();
  ASSERT_NE(work.events().event, snap.events().event);
  work.restore_from(snap);
  EXPECT_EQ(work.events().event, snap.events().event);
}

TEST(VmEvents, ProcVmstat) {
  Mm m(config());
  m.page_alloc.drain_all_pages();
  const std::string v = procfs::vmstat(m);
  EXPECT_NE(v.find("\nbuddy_split_order10 "), std::string::npos) << v;
  EXPECT_EQ(v.find("buddy_split_order11"), std::string::npos) << v;
  EXPECT_NE(v.find("\ndrain_all_pages " + std::to_string(m.events()[DRAIN_ALL_PAGES]) + "\n"),
            std::string::npos)
      << v;
  EXPECT_EQ(v.rfind("nr_free_pages ", 0), 0u) << v;
}

}  // namespace
}  // namespace mmfuzz::mm
