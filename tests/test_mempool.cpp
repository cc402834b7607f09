// mempool (mm/mempool.c, 6.1): the reserve in front of a slab cache, kmalloc
// or the page allocator; allocation order (allocator first, reserve LIFO,
// then a retry with the caller's full mask), the would-sleep path and its
// completion by mempool_free(), resize, destroy and the misuse reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "invariants/checker.h"
#include "invariants/slab.h"
#include "mm/mm.h"
#include "mm/observer.h"
#include "mm/page_alloc/gfp.h"
#include "mm/slab/mempool.h"
#include "mm/slab/slab.h"
#include "mm/testing/corrupt.h"

namespace mmfuzz::mm {
namespace {

// What mempool_alloc() adds to every mask, and the first round's mask.
constexpr gfp_t kPoolBits = __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN;
constexpr gfp_t first_round(gfp_t gfp) {
  return (gfp | kPoolBits) & ~(__GFP_DIRECT_RECLAIM | __GFP_IO);
}
// Takes every page, below every watermark, draining the pcp lists.
constexpr gfp_t kGrab = GFP_KERNEL | __GFP_MEMALLOC | __GFP_NOWARN | __GFP_NORETRY;

struct Recorder : MmObserver {
  struct Event {
    vaddr_t ptr;
    gfp_t gfp;
  };
  std::vector<Misuse> misuses;
  std::vector<Event> cache_allocs, kmallocs;
  std::vector<vaddr_t> cache_frees, kfrees;
  std::vector<std::pair<pfn_t, unsigned>> page_allocs, page_frees;
  std::vector<gfp_t> page_alloc_gfps;

  void clear() { *this = Recorder{}; }
  void misuse(const Misuse& m) override { misuses.push_back(m); }
  void kmem_cache_alloc(vaddr_t p, std::uint64_t, std::uint64_t, gfp_t gfp, int, bool) override {
    cache_allocs.push_back({p, gfp});
  }
  void kmalloc(vaddr_t p, std::uint64_t, std::uint64_t, gfp_t gfp, int, bool) override {
    kmallocs.push_back({p, gfp});
  }
  void kmem_cache_free(vaddr_t p, const std::string&) override { cache_frees.push_back(p); }
  void kfree(vaddr_t p) override { kfrees.push_back(p); }
  void mm_page_alloc(pfn_t pfn, unsigned order, gfp_t gfp, int) override {
    if (pfn == NO_PAGE) return;  // the tracepoint fires for failures too
    page_allocs.emplace_back(pfn, order);
    page_alloc_gfps.push_back(gfp);
  }
  void mm_page_free(pfn_t pfn, unsigned order) override { page_frees.emplace_back(pfn, order); }
};

struct Block {
  pfn_t pfn;
  unsigned order;
};

class MempoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MmConfig cfg;
    cfg.machine = small_machine();
    mm = std::make_unique<Mm>(cfg);
    inv::CheckOptions o;
    o.capture_stacks = false;
    engine = std::make_unique<inv::CheckEngine>(*mm, o);
    mm->attach(&rec);
  }
  void TearDown() override {
    mm->detach(&rec);
    engine->full_sweep();
    EXPECT_TRUE(engine->clean()) << report();
  }

  std::string report() const {
    std::string s;
    for (const auto& v : engine->violations()) s += v.to_text(false) + "\n";
    return s;
  }

  Mempools& pools() { return mm->mempools; }
  Slab& slab() { return mm->slab; }
  const mempool_t& P(mempool_id id) { return *pools().pool(id); }

  // Exactly one misuse of `kind` whose detail contains `needle`; the engine
  // turned it into exactly one violation with the misuse's id, and nothing
  // else. The violation is cleared so that TearDown sees a clean engine.
  void expect_misuse(MisuseKind kind, const std::string& needle, const std::function<void()>& op,
                     const char* api = nullptr) {
    ASSERT_TRUE(engine->clean()) << report();
    rec.misuses.clear();
    op();
    ASSERT_EQ(rec.misuses.size(), 1u) << "expected one " << misuse_id(kind);
    EXPECT_EQ(rec.misuses[0].kind, kind)
        << misuse_id(rec.misuses[0].kind) << ": " << rec.misuses[0].detail;
    EXPECT_NE(rec.misuses[0].detail.find(needle), std::string::npos) << rec.misuses[0].detail;
    if (api) {
      EXPECT_EQ(rec.misuses[0].api, api);
    }
    ASSERT_EQ(engine->violations().size(), 1u) << report();
    EXPECT_EQ(engine->violations()[0].invariant, misuse_id(kind));
    last_title = engine->violations()[0].title;
    engine->clear();
    rec.misuses.clear();
  }
  void expect_no_misuse() {
    EXPECT_TRUE(rec.misuses.empty())
        << misuse_id(rec.misuses[0].kind) << ": " << rec.misuses[0].detail;
  }

  // A slab object of `c` that is allocated and starts at `p`.
  bool live_object(vaddr_t p, cache_id c) const {
    const auto ref = mm->slab.find_object(p);
    return ref && ref->allocated && ref->object == p && ref->cache == c;
  }
  bool live_pages(vaddr_t p, unsigned order) const {
    if (!mm->virt_addr_valid(p)) return false;
    const pfn_t pfn = mm->virt_to_pfn(p);
    const auto& o = mm->page_alloc.owner(pfn);
    return mm->page_address(pfn) == p && o.state == PAGE_OWNER_ALLOCATED && o.order == order;
  }

  // Makes sure the kmalloc caches the pool bookkeeping uses (the mempool_t
  // and small elements arrays: kmalloc-128) have free objects in their cpu
  // slab, so that creating a pool under memory pressure needs no new page.
  void warm_kmalloc() {
    std::vector<vaddr_t> v;
    for (int i = 0; i < 8; ++i) v.push_back(slab().kmalloc(128, GFP_KERNEL));
    for (vaddr_t p : v) slab().kfree(p);
  }
  // Gives `c` slabs with free objects, for exhaust_cache() to find.
  void prime(cache_id c, int n = 8) {
    std::vector<vaddr_t> v;
    for (int i = 0; i < n; ++i) v.push_back(slab().kmem_cache_alloc(c, GFP_KERNEL));
    for (vaddr_t p : v) slab().kmem_cache_free(c, p);
  }
  vaddr_t take_hog_object() {
    EXPECT_FALSE(hog_objects.empty());
    if (hog_objects.empty()) return 0;
    const vaddr_t p = hog_objects.back().second;
    hog_objects.pop_back();
    return p;
  }
  // Takes every free page of the machine (kept in `hog` until release()).
  void exhaust_pages() {
    for (int o = static_cast<int>(mm->page_alloc.max_order()) - 1; o >= 0; --o)
      for (;;) {
        const pfn_t pfn = mm->page_alloc.alloc_pages(kGrab, static_cast<unsigned>(o));
        if (pfn == NO_PAGE) break;
        hog.push_back({pfn, static_cast<unsigned>(o)});
      }
    ASSERT_EQ(mm->page_alloc.alloc_pages(kGrab, 0), NO_PAGE);
  }
  // Takes every object left in the partial slabs of `c` as well.
  void exhaust_cache(cache_id c) {
    for (;;) {
      const vaddr_t p = slab().kmem_cache_alloc(c, GFP_ATOMIC | __GFP_NOWARN);
      if (!p) break;
      hog_objects.emplace_back(c, p);
    }
  }
  void exhaust_kmalloc(std::uint64_t size) {
    for (;;) {
      const vaddr_t p = slab().kmalloc(size, GFP_ATOMIC | __GFP_NOWARN);
      if (!p) break;
      hog_objects.emplace_back(0, p);
    }
  }
  void release() {
    for (auto [c, p] : hog_objects) c ? slab().kmem_cache_free(c, p) : slab().kfree(p);
    hog_objects.clear();
    for (const auto& b : hog) mm->page_alloc.__free_pages(b.pfn, b.order);
    hog.clear();
  }

  std::unique_ptr<Mm> mm;
  std::unique_ptr<inv::CheckEngine> engine;
  Recorder rec;
  std::vector<Block> hog;
  std::vector<std::pair<cache_id, vaddr_t>> hog_objects;
  std::string last_title;  // of the last violation expect_misuse() saw
};

// ---------------------------------------------------------------- create

TEST_F(MempoolTest, SlabPoolPreallocatesMinNrObjectsOfItsCache) {
  const cache_id c = slab().kmem_cache_create("mp_obj", 200, 0, 0);
  ASSERT_NE(c, 0u);
  rec.clear();
  const mempool_id id = pools().mempool_create_slab_pool(4, c);
  ASSERT_NE(id, 0u);
  const mempool_t& p = P(id);
  EXPECT_EQ(p.kind, MempoolKind::slab);
  EXPECT_EQ(p.min_nr, 4);
  ASSERT_EQ(p.curr_nr(), 4);
  // Preallocated with GFP_KERNEL, in the order they sit in the reserve.
  ASSERT_EQ(rec.cache_allocs.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const vaddr_t e = p.elements[static_cast<std::size_t>(i)];
    EXPECT_TRUE(live_object(e, c)) << i;
    EXPECT_EQ(rec.cache_allocs[static_cast<std::size_t>(i)].ptr, e);
    EXPECT_EQ(rec.cache_allocs[static_cast<std::size_t>(i)].gfp, GFP_KERNEL);
  }
  EXPECT_EQ(std::set<vaddr_t>(p.elements.begin(), p.elements.end()).size(), 4u);
  // The kernel's own allocations: kzalloc(sizeof(mempool_t)) and the
  // elements array, both from kmalloc.
  const cache_id k128 = slab().kmalloc_slab(kSizeofMempool, GFP_KERNEL);
  EXPECT_TRUE(live_object(p.self_obj, k128));
  EXPECT_TRUE(live_object(p.elements_obj, slab().kmalloc_slab(4 * 8, GFP_KERNEL)));
  ASSERT_EQ(rec.kmallocs.size(), 2u);
  EXPECT_EQ(rec.kmallocs[0].ptr, p.self_obj);
  EXPECT_EQ(rec.kmallocs[0].gfp, GFP_KERNEL | __GFP_ZERO);
  EXPECT_EQ(pools().size(), 1u);
  expect_no_misuse();
}

TEST_F(MempoolTest, KmallocPoolElementsComeFromKmalloc) {
  const mempool_id id = pools().mempool_create_kmalloc_pool(3, 300);
  ASSERT_NE(id, 0u);
  const cache_id k = slab().kmalloc_slab(300, GFP_KERNEL);
  ASSERT_NE(k, 0u);
  ASSERT_EQ(P(id).curr_nr(), 3);
  for (vaddr_t e : P(id).elements) {
    EXPECT_TRUE(live_object(e, k));
    EXPECT_EQ(slab().find_object(e)->requested, 300u);
  }
  // Larger than the largest kmalloc cache: the elements are pages. (SLUB's
  // caches end at 8 KiB; SLAB's at 4 MiB, beyond which kmalloc warns.)
  const std::uint64_t big = slab().kmalloc_max_cache_size() * 2;
  if (slab().variant == SlabVariant::slub) {
    const mempool_id id2 = pools().mempool_create_kmalloc_pool(2, big);
    ASSERT_NE(id2, 0u);
    for (vaddr_t e : P(id2).elements) {
      const pfn_t pfn = mm->virt_to_pfn(e);
      EXPECT_EQ(mm->page_address(pfn), e);
      ASSERT_TRUE(slab().large_kmalloc_size(pfn).has_value());
      EXPECT_EQ(*slab().large_kmalloc_size(pfn), big);
    }
    pools().mempool_destroy(id2);
    EXPECT_TRUE(slab().large_kmallocs().empty());
  }
  pools().mempool_destroy(id);
  expect_no_misuse();
}

TEST_F(MempoolTest, PagePoolElementsAreLinearMapAddressesOfBlocks) {
  rec.clear();
  const mempool_id id = pools().mempool_create_page_pool(3, 2);
  ASSERT_NE(id, 0u);
  ASSERT_EQ(P(id).curr_nr(), 3);
  EXPECT_EQ(P(id).order, 2u);
  for (vaddr_t e : P(id).elements) EXPECT_TRUE(live_pages(e, 2));
  // (Order-0 and order-1 page allocations here are slabs for the pool's
  // bookkeeping.)
  std::vector<std::size_t> blocks;
  for (std::size_t i = 0; i < rec.page_allocs.size(); ++i)
    if (rec.page_allocs[i].second == 2) blocks.push_back(i);
  ASSERT_EQ(blocks.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(mm->page_address(rec.page_allocs[blocks[i]].first), P(id).elements[i]);
    EXPECT_EQ(rec.page_alloc_gfps[blocks[i]], GFP_KERNEL);
  }
  // Destroy frees them again, last added first.
  const auto elems = P(id).elements;
  rec.clear();
  pools().mempool_destroy(id);
  std::vector<vaddr_t> freed;
  for (const auto& [pfn, order] : rec.page_frees)
    if (order == 2) freed.push_back(mm->page_address(pfn));
  EXPECT_EQ(freed, (std::vector<vaddr_t>{elems[2], elems[1], elems[0]}));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_FALSE(live_pages(elems[i], 2));
  }
  EXPECT_TRUE(P(id).destroyed);
  EXPECT_EQ(P(id).curr_nr(), 0);
  expect_no_misuse();
}

TEST_F(MempoolTest, ZeroMinNrPoolIsValidAndNegativeFails) {
  const mempool_id id = pools().mempool_create_kmalloc_pool(0, 64);
  ASSERT_NE(id, 0u);
  EXPECT_EQ(P(id).curr_nr(), 0);
  EXPECT_EQ(P(id).elements_obj, ZERO_SIZE_PTR);  // kmalloc_array(0, ...)
  const vaddr_t e = pools().mempool_alloc(id, GFP_KERNEL);
  EXPECT_NE(e, 0u);
  rec.clear();
  pools().mempool_free(id, e);  // curr_nr == min_nr: back to kmalloc
  EXPECT_EQ(rec.kfrees, std::vector<vaddr_t>{e});
  // A negative min_nr overflows kmalloc_array(): NULL, nothing registered.
  EXPECT_EQ(pools().mempool_create_kmalloc_pool(-1, 64), 0u);
  EXPECT_EQ(pools().size(), 1u);
  pools().mempool_destroy(id);
  expect_no_misuse();
}

TEST_F(MempoolTest, CreateFailsAndFreesWhatItGotWhenTheReserveCannotBeFilled) {
  const cache_id c = slab().kmem_cache_create("mp_fail", 512, 0, 0);
  ASSERT_NE(c, 0u);
  prime(c);
  warm_kmalloc();
  exhaust_pages();
  exhaust_cache(c);
  ASSERT_GE(hog_objects.size(), 2u);
  // Exactly two objects of the cache are free now.
  const vaddr_t a = take_hog_object();
  const vaddr_t b = take_hog_object();
  slab().kmem_cache_free(c, a);
  slab().kmem_cache_free(c, b);
  rec.clear();
  EXPECT_EQ(pools().mempool_create_slab_pool(4, c), 0u);
  EXPECT_EQ(pools().size(), 0u);
  // It got the two objects, then gave them back, and freed its bookkeeping.
  ASSERT_EQ(rec.cache_allocs.size(), 2u);
  std::set<vaddr_t> got{rec.cache_allocs[0].ptr, rec.cache_allocs[1].ptr};
  EXPECT_EQ(got, (std::set<vaddr_t>{a, b}));
  ASSERT_EQ(rec.cache_frees.size(), 2u);
  EXPECT_EQ(rec.cache_frees[0], rec.cache_allocs[1].ptr);  // mempool_exit(): LIFO
  EXPECT_EQ(rec.cache_frees[1], rec.cache_allocs[0].ptr);
  ASSERT_EQ(rec.kmallocs.size(), 2u);
  EXPECT_EQ(rec.kfrees.size(), 2u);
  EXPECT_EQ(std::set<vaddr_t>(rec.kfrees.begin(), rec.kfrees.end()),
            (std::set<vaddr_t>{rec.kmallocs[0].ptr, rec.kmallocs[1].ptr}));
  // The two objects are free again: allocatable, and nothing more is.
  const vaddr_t x = slab().kmem_cache_alloc(c, GFP_ATOMIC | __GFP_NOWARN);
  const vaddr_t y = slab().kmem_cache_alloc(c, GFP_ATOMIC | __GFP_NOWARN);
  EXPECT_EQ((std::set<vaddr_t>{x, y}), (std::set<vaddr_t>{a, b}));
  EXPECT_EQ(slab().kmem_cache_alloc(c, GFP_ATOMIC | __GFP_NOWARN), 0u);
  slab().kmem_cache_free(c, x);
  slab().kmem_cache_free(c, y);
  release();
  expect_no_misuse();
}

// ---------------------------------------------------------------- alloc

TEST_F(MempoolTest, AllocGoesToTheAllocatorFirstWithoutDirectReclaimOrIo) {
  const cache_id c = slab().kmem_cache_create("mp_first", 96, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(2, c);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  rec.clear();
  const vaddr_t e = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_NE(e, 0u);
  EXPECT_TRUE(live_object(e, c));
  EXPECT_EQ(std::count(reserve.begin(), reserve.end(), e), 0);
  EXPECT_EQ(P(id).elements, reserve);  // the reserve is untouched
  ASSERT_EQ(rec.cache_allocs.size(), 1u);
  EXPECT_EQ(rec.cache_allocs[0].gfp, first_round(GFP_KERNEL));
  EXPECT_EQ(rec.cache_allocs[0].gfp,
            __GFP_KSWAPD_RECLAIM | __GFP_FS | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN);
  // The same for kmalloc and page pools.
  const mempool_id k = pools().mempool_create_kmalloc_pool(1, 40);
  const mempool_id pg = pools().mempool_create_page_pool(1, 0);
  rec.clear();
  const vaddr_t ke = pools().mempool_alloc(k, GFP_NOFS);
  const vaddr_t pe = pools().mempool_alloc(pg, GFP_KERNEL | __GFP_HIGHMEM);
  ASSERT_EQ(rec.kmallocs.size(), 1u);
  EXPECT_EQ(rec.kmallocs[0].gfp, first_round(GFP_NOFS));
  ASSERT_EQ(rec.page_alloc_gfps.size(), 1u);
  EXPECT_EQ(rec.page_alloc_gfps[0], first_round(GFP_KERNEL | __GFP_HIGHMEM));
  EXPECT_EQ(P(k).curr_nr(), 1);
  EXPECT_EQ(P(pg).curr_nr(), 1);
  EXPECT_TRUE(live_pages(pe, 0));
  // A free with a full reserve goes back to the allocator.
  rec.clear();
  pools().mempool_free(id, e);
  pools().mempool_free(k, ke);
  pools().mempool_free(pg, pe);
  EXPECT_EQ(rec.cache_frees, std::vector<vaddr_t>{e});
  EXPECT_EQ(rec.kfrees, std::vector<vaddr_t>{ke});
  ASSERT_EQ(rec.page_frees.size(), 1u);
  EXPECT_EQ(mm->page_address(rec.page_frees[0].first), pe);
  EXPECT_EQ(P(id).elements, reserve);
  for (mempool_id p : {id, k, pg}) pools().mempool_destroy(p);
  slab().kmem_cache_destroy(c);
  expect_no_misuse();
}

TEST_F(MempoolTest, ReserveIsUsedOnlyWhenTheAllocatorFailsLastInFirstOut) {
  const cache_id c = slab().kmem_cache_create("mp_res", 256, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(3, c);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  exhaust_pages();
  exhaust_cache(c);
  ASSERT_EQ(slab().kmem_cache_alloc(c, GFP_KERNEL | __GFP_NOWARN), 0u);
  rec.clear();
  // The last element added comes out first.
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL), reserve[2]);
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL), reserve[1]);
  EXPECT_EQ(pools().mempool_alloc(id, GFP_ATOMIC), reserve[0]);
  EXPECT_EQ(P(id).curr_nr(), 0);
  EXPECT_TRUE(rec.cache_allocs.empty());
  for (vaddr_t e : reserve) EXPECT_TRUE(live_object(e, c));
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL), 0u);  // no wait given: NULL
  EXPECT_EQ(pools().mempool_alloc(id, GFP_ATOMIC), 0u);
  EXPECT_TRUE(P(id).waiters.empty());
  // Failures under a mempool are quiet (__GFP_NOWARN).
  const std::uint64_t warnings = mm->page_alloc.nr_alloc_warnings;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_NOIO), 0u);
  EXPECT_EQ(mm->page_alloc.nr_alloc_warnings, warnings);
  // Memory back: the allocator serves again and the reserve refills from
  // the elements freed.
  release();
  const vaddr_t fresh = pools().mempool_alloc(id, GFP_KERNEL);
  EXPECT_TRUE(live_object(fresh, c));
  for (vaddr_t e : reserve) pools().mempool_free(id, e);
  EXPECT_EQ(P(id).elements, reserve);
  pools().mempool_free(id, fresh);
  EXPECT_FALSE(live_object(fresh, c));
  pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
  expect_no_misuse();
}

// Counted on a page pool: one alloc_pages() failure per allocator attempt.
TEST_F(MempoolTest, OnlyAnEmptyReserveRetriesWithTheFullMask) {
  const mempool_id id = pools().mempool_create_page_pool(2, 0);
  ASSERT_NE(id, 0u);
  exhaust_pages();
  const std::uint64_t w0 = mm->page_alloc.nr_alloc_warnings;
  const std::uint64_t f0 = mm->page_alloc.nr_alloc_failures;
  // Reserve non-empty: the first round fails once, the reserve serves.
  const vaddr_t a = pools().mempool_alloc(id, GFP_KERNEL);
  EXPECT_EQ(mm->page_alloc.nr_alloc_failures - f0, 1u);
  const vaddr_t b = pools().mempool_alloc(id, GFP_NOIO);
  EXPECT_EQ(mm->page_alloc.nr_alloc_failures - f0, 2u);
  EXPECT_TRUE(live_pages(a, 0));
  EXPECT_TRUE(live_pages(b, 0));
  // Empty: GFP_KERNEL retries at once with its full mask (two failures);
  // for GFP_ATOMIC the masks are equal, so there is no second round.
  const std::uint64_t f1 = mm->page_alloc.nr_alloc_failures;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL), 0u);
  EXPECT_EQ(mm->page_alloc.nr_alloc_failures - f1, 2u);
  const std::uint64_t f2 = mm->page_alloc.nr_alloc_failures;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_ATOMIC), 0u);
  EXPECT_EQ(mm->page_alloc.nr_alloc_failures - f2, 1u);
  const std::uint64_t f3 = mm->page_alloc.nr_alloc_failures;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_NOWAIT), 0u);
  EXPECT_EQ(mm->page_alloc.nr_alloc_failures - f3, 1u);
  // GFP_NOFS clears __GFP_IO and __GFP_DIRECT_RECLAIM in the first round:
  // still two rounds.
  const std::uint64_t f4 = mm->page_alloc.nr_alloc_failures;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_NOFS), 0u);
  EXPECT_EQ(mm->page_alloc.nr_alloc_failures - f4, 2u);
  EXPECT_EQ(mm->page_alloc.nr_alloc_warnings, w0);  // failures are quiet: __GFP_NOWARN
  pools().mempool_free(id, a);
  pools().mempool_free(id, b);
  EXPECT_EQ(P(id).elements, (std::vector<vaddr_t>{a, b}));
  release();
  pools().mempool_destroy(id);
  expect_no_misuse();
}

TEST_F(MempoolTest, AtomicAllocFromAnEmptyPoolReturnsNullAndNeverWaits) {
  const mempool_id id = pools().mempool_create_page_pool(1, 0);
  ASSERT_NE(id, 0u);
  exhaust_pages();
  const vaddr_t only = pools().mempool_alloc(id, GFP_ATOMIC);
  ASSERT_NE(only, 0u);
  EXPECT_EQ(P(id).curr_nr(), 0);
  for (gfp_t gfp : {GFP_ATOMIC, GFP_NOWAIT, gfp_t{0}, GFP_ATOMIC | __GFP_HIGH}) {
    MempoolWait w;
    w.ticket = 77;  // overwritten
    EXPECT_EQ(pools().mempool_alloc(id, gfp, &w), 0u) << format_gfp(gfp);
    EXPECT_EQ(w.ticket, 0u);
    EXPECT_EQ(w.pool, 0u);
  }
  EXPECT_TRUE(P(id).waiters.empty());
  pools().mempool_free(id, only);
  EXPECT_EQ(P(id).curr_nr(), 1);
  EXPECT_TRUE(pools().take_completed().empty());
  release();
  pools().mempool_destroy(id);
  expect_no_misuse();
}

// ---------------------------------------------------------------- waiting

TEST_F(MempoolTest, SleepingAllocsCompleteInTicketOrderWithTheFreedElement) {
  const mempool_id id = pools().mempool_create_kmalloc_pool(2, 1000);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  exhaust_pages();
  exhaust_kmalloc(1000);
  const vaddr_t a = pools().mempool_alloc(id, GFP_KERNEL);
  const vaddr_t b = pools().mempool_alloc(id, GFP_KERNEL);
  EXPECT_EQ(a, reserve[1]);
  EXPECT_EQ(b, reserve[0]);
  MempoolWait w1, w2, w3;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL, &w1), 0u);
  EXPECT_EQ(pools().mempool_alloc(id, GFP_NOIO, &w2), 0u);
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL, &w3), 0u);
  EXPECT_NE(w1.ticket, 0u);
  EXPECT_LT(w1.ticket, w2.ticket);
  EXPECT_LT(w2.ticket, w3.ticket);
  EXPECT_EQ(w1.pool, id);
  EXPECT_EQ(w1.element, 0u);
  ASSERT_EQ(P(id).waiters.size(), 3u);
  EXPECT_EQ(P(id).waiters[0].ticket, w1.ticket);
  EXPECT_TRUE(pools().take_completed().empty());

  // The freed element refills the reserve and goes straight to the oldest
  // sleeper; the reserve stays empty while anyone sleeps.
  rec.clear();
  pools().mempool_free(id, b);
  EXPECT_TRUE(rec.kfrees.empty());
  EXPECT_EQ(P(id).curr_nr(), 0);
  auto done = pools().take_completed();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].ticket, w1.ticket);
  EXPECT_EQ(done[0].pool, id);
  EXPECT_EQ(done[0].element, b);
  EXPECT_TRUE(pools().take_completed().empty());  // taken

  // An element that never was in the reserve works the same way.
  const vaddr_t outside = take_hog_object();
  ASSERT_NE(outside, 0u);
  pools().mempool_free(id, a);
  pools().mempool_free(id, outside);
  done = pools().take_completed();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].ticket, w2.ticket);
  EXPECT_EQ(done[0].element, a);
  EXPECT_EQ(done[1].ticket, w3.ticket);
  EXPECT_EQ(done[1].element, outside);
  EXPECT_TRUE(P(id).waiters.empty());
  EXPECT_EQ(P(id).curr_nr(), 0);

  // With no sleeper left, frees refill the reserve to min_nr.
  pools().mempool_free(id, b);
  pools().mempool_free(id, a);
  EXPECT_EQ(P(id).elements, (std::vector<vaddr_t>{b, a}));
  rec.clear();
  pools().mempool_free(id, outside);  // full: back to kmalloc
  EXPECT_EQ(rec.kfrees, std::vector<vaddr_t>{outside});
  EXPECT_TRUE(pools().take_completed().empty());
  release();
  pools().mempool_destroy(id);
  expect_no_misuse();
}

TEST_F(MempoolTest, SleepersOfAZeroMinNrPoolRetryTheAllocatorAfterAFree) {
  const cache_id c = slab().kmem_cache_create("mp_zero", 128, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(0, c);
  ASSERT_NE(id, 0u);
  prime(c);
  exhaust_pages();
  exhaust_cache(c);
  MempoolWait w;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL, &w), 0u);
  ASSERT_NE(w.ticket, 0u);
  // The freed object goes back to the cache (min_nr is 0); the sleeper's
  // timed retry then finds it there.
  const vaddr_t back = take_hog_object();
  ASSERT_NE(back, 0u);
  rec.clear();
  pools().mempool_free(id, back);
  EXPECT_EQ(rec.cache_frees, std::vector<vaddr_t>{back});
  ASSERT_EQ(rec.cache_allocs.size(), 1u);
  EXPECT_EQ(rec.cache_allocs[0].gfp, GFP_KERNEL | kPoolBits);  // the full mask
  const auto done = pools().take_completed();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].ticket, w.ticket);
  EXPECT_TRUE(live_object(done[0].element, c));
  EXPECT_EQ(done[0].element, rec.cache_allocs[0].ptr);
  EXPECT_TRUE(P(id).waiters.empty());
  pools().mempool_free(id, done[0].element);
  release();
  pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
  expect_no_misuse();
}

TEST_F(MempoolTest, PagePoolSleeperGetsThePagesFreedToThePool) {
  const mempool_id id = pools().mempool_create_page_pool(1, 1);
  ASSERT_NE(id, 0u);
  exhaust_pages();
  const vaddr_t e = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_TRUE(live_pages(e, 1));
  MempoolWait w;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL, &w), 0u);
  ASSERT_NE(w.ticket, 0u);
  pools().mempool_free(id, e);
  const auto done = pools().take_completed();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].element, e);
  EXPECT_TRUE(live_pages(e, 1));
  pools().mempool_free(id, e);
  EXPECT_EQ(P(id).elements, std::vector<vaddr_t>{e});
  release();
  pools().mempool_destroy(id);
  expect_no_misuse();
}

// ---------------------------------------------------------------- resize

TEST_F(MempoolTest, ResizeDownFreesTheSurplusLastAddedFirst) {
  const cache_id c = slab().kmem_cache_create("mp_shrink", 64, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(5, c);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  const vaddr_t array = P(id).elements_obj;
  rec.clear();
  EXPECT_EQ(pools().mempool_resize(id, 2), 0);
  EXPECT_EQ(P(id).min_nr, 2);
  EXPECT_EQ(P(id).elements, (std::vector<vaddr_t>{reserve[0], reserve[1]}));
  EXPECT_EQ(rec.cache_frees, (std::vector<vaddr_t>{reserve[4], reserve[3], reserve[2]}));
  EXPECT_EQ(P(id).elements_obj, array);  // shrinking keeps the array
  EXPECT_TRUE(rec.kmallocs.empty());
  // To the same size: nothing happens.
  rec.clear();
  EXPECT_EQ(pools().mempool_resize(id, 2), 0);
  EXPECT_TRUE(rec.cache_frees.empty());
  EXPECT_TRUE(rec.cache_allocs.empty());
  // Shrinking a drained pool only lowers min_nr.
  const vaddr_t x = pools().mempool_alloc(id, GFP_KERNEL);
  EXPECT_EQ(pools().mempool_resize(id, 1), 0);
  EXPECT_EQ(P(id).curr_nr(), 1);
  pools().mempool_free(id, x);  // full at 1: back to the cache
  EXPECT_EQ(P(id).curr_nr(), 1);
  EXPECT_FALSE(live_object(x, c));
  pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
  expect_no_misuse();
}

TEST_F(MempoolTest, ResizeUpPreallocatesWithGfpKernelAndANewArray) {
  const mempool_id id = pools().mempool_create_kmalloc_pool(2, 24);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  const vaddr_t old_array = P(id).elements_obj;
  rec.clear();
  EXPECT_EQ(pools().mempool_resize(id, 40), 0);
  EXPECT_EQ(P(id).min_nr, 40);
  ASSERT_EQ(P(id).curr_nr(), 40);
  EXPECT_EQ(P(id).elements[0], reserve[0]);
  EXPECT_EQ(P(id).elements[1], reserve[1]);
  // kmalloc_array(40, 8) first, then 38 elements.
  ASSERT_EQ(rec.kmallocs.size(), 39u);
  EXPECT_EQ(rec.kmallocs[0].ptr, P(id).elements_obj);
  EXPECT_EQ(rec.kmallocs[0].gfp, GFP_KERNEL);
  EXPECT_GE(slab().ksize(P(id).elements_obj), 40u * 8);
  EXPECT_EQ(rec.kfrees, std::vector<vaddr_t>{old_array});
  for (std::size_t i = 1; i < rec.kmallocs.size(); ++i) {
    EXPECT_EQ(rec.kmallocs[i].gfp, GFP_KERNEL);
    EXPECT_EQ(rec.kmallocs[i].ptr, P(id).elements[i + 1]);
  }
  std::set<vaddr_t> distinct(P(id).elements.begin(), P(id).elements.end());
  EXPECT_EQ(distinct.size(), 40u);
  pools().mempool_destroy(id);
  expect_no_misuse();
}

TEST_F(MempoolTest, ResizeUpUnderPressure) {
  warm_kmalloc();
  const mempool_id id = pools().mempool_create_page_pool(2, 0);
  ASSERT_NE(id, 0u);
  const vaddr_t array = P(id).elements_obj;
  const pfn_t spare = mm->page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(spare, NO_PAGE);
  exhaust_pages();
  // The elements cannot be had: the kernel still returns 0, with min_nr
  // raised and the reserve short; frees refill it later.
  EXPECT_EQ(pools().mempool_resize(id, 4), 0);
  EXPECT_EQ(P(id).min_nr, 4);
  EXPECT_EQ(P(id).curr_nr(), 2);
  EXPECT_NE(P(id).elements_obj, array);
  pools().mempool_free(id, mm->page_address(spare));
  EXPECT_EQ(P(id).curr_nr(), 3);
  EXPECT_EQ(P(id).elements.back(), mm->page_address(spare));
  // The larger array cannot be had: -ENOMEM and the pool is unchanged.
  // An array of 64 KiB: a multi-page allocation under every allocator.
  const int huge = static_cast<int>((mm->profile.page_size() << 4) / 8);
  const auto before = P(id).elements;
  const vaddr_t array2 = P(id).elements_obj;
  rec.clear();
  EXPECT_EQ(pools().mempool_resize(id, huge), -12);
  EXPECT_EQ(P(id).min_nr, 4);
  EXPECT_EQ(P(id).elements, before);
  EXPECT_EQ(P(id).elements_obj, array2);
  EXPECT_TRUE(rec.page_allocs.empty());
  release();
  // With memory back the same resize works.
  EXPECT_EQ(pools().mempool_resize(id, 6), 0);
  EXPECT_EQ(P(id).curr_nr(), 6);
  pools().mempool_destroy(id);
  expect_no_misuse();
}

TEST_F(MempoolTest, ResizeUpHandsNewElementsToSleepers) {
  const cache_id c = slab().kmem_cache_create("mp_grow", 300, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(1, c);
  ASSERT_NE(id, 0u);
  warm_kmalloc();
  exhaust_pages();
  exhaust_cache(c);
  const vaddr_t only = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_NE(only, 0u);
  MempoolWait w;
  EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL, &w), 0u);
  ASSERT_NE(w.ticket, 0u);
  release();
  EXPECT_EQ(pools().mempool_resize(id, 3), 0);
  const auto done = pools().take_completed();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].ticket, w.ticket);
  EXPECT_TRUE(live_object(done[0].element, c));
  EXPECT_EQ(P(id).curr_nr(), 2);  // one of the three went to the sleeper
  pools().mempool_free(id, only);
  pools().mempool_free(id, done[0].element);
  EXPECT_EQ(P(id).curr_nr(), 3);
  pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
  expect_no_misuse();
}

// ---------------------------------------------------------------- destroy

TEST_F(MempoolTest, DestroyReturnsEverythingToTheAllocators) {
  const cache_id c = slab().kmem_cache_create("mp_destroy", 72, 0, 0);
  mm->op_seq = 1;  // allocations from here on count for the leak report
  const mempool_id s = pools().mempool_create_slab_pool(3, c);
  const mempool_id k = pools().mempool_create_kmalloc_pool(3, 200);
  const mempool_id pg = pools().mempool_create_page_pool(2, 3);
  ASSERT_TRUE(s && k && pg);
  const vaddr_t e = pools().mempool_alloc(k, GFP_KERNEL);
  pools().mempool_free(k, e);
  bool any = false;
  inv::SlabChecker::leak_report(*mm, &any);
  EXPECT_TRUE(any);  // the pools hold objects
  pools().mempool_destroy(s);
  pools().mempool_destroy(k);
  pools().mempool_destroy(pg);
  const auto v = inv::SlabChecker::leak_report(*mm, &any);
  EXPECT_FALSE(any) << v.to_text(false);
  // The cache is empty: destroying it raises no slab.destroy_busy.
  slab().kmem_cache_destroy(c);
  EXPECT_TRUE(slab().cache(c)->destroyed);
  expect_no_misuse();
  // Destroying NULL is a no-op.
  pools().mempool_destroy(0);
  expect_no_misuse();
}

// ---------------------------------------------------------------- misuse

TEST_F(MempoolTest, UnknownAndDestroyedPoolsAreReportedAndRefused) {
  const mempool_id id = pools().mempool_create_kmalloc_pool(1, 32);
  ASSERT_NE(id, 0u);
  const vaddr_t e = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_NE(e, 0u);
  expect_misuse(
      MisuseKind::slab_bad_cache, "no mempool",
      [&] { EXPECT_EQ(pools().mempool_alloc(42, GFP_KERNEL), 0u); }, "mempool_alloc");
  expect_misuse(
      MisuseKind::slab_bad_cache, "no mempool", [&] { pools().mempool_free(0, e); },
      "mempool_free");
  expect_misuse(
      MisuseKind::slab_bad_cache, "no mempool",
      [&] { EXPECT_EQ(pools().mempool_resize(9, 3), -22); }, "mempool_resize");
  expect_misuse(
      MisuseKind::slab_bad_cache, "no mempool", [&] { pools().mempool_destroy(7); },
      "mempool_destroy");
  pools().mempool_destroy(id);
  expect_no_misuse();
  expect_misuse(
      MisuseKind::slab_bad_cache, "after mempool_destroy()", [&] { pools().mempool_destroy(id); },
      "mempool_destroy");
  expect_misuse(MisuseKind::slab_bad_cache, "after mempool_destroy()",
                [&] { EXPECT_EQ(pools().mempool_alloc(id, GFP_KERNEL), 0u); });
  rec.clear();
  expect_misuse(MisuseKind::slab_bad_cache, "after mempool_destroy()",
                [&] { pools().mempool_free(id, e); });
  EXPECT_TRUE(rec.kfrees.empty());  // refused: the element is not freed
  expect_misuse(MisuseKind::slab_bad_cache, "after mempool_destroy()",
                [&] { EXPECT_EQ(pools().mempool_resize(id, 2), -22); });
  // NULL elements are a no-op even for a dead pool.
  pools().mempool_free(id, 0);
  expect_no_misuse();
  slab().kfree(e);
}

TEST_F(MempoolTest, DestroyWithSleepersIsRefused) {
  const mempool_id id = pools().mempool_create_page_pool(1, 0);
  ASSERT_NE(id, 0u);
  exhaust_pages();
  const vaddr_t e = pools().mempool_alloc(id, GFP_KERNEL);
  MempoolWait w;
  ASSERT_EQ(pools().mempool_alloc(id, GFP_KERNEL, &w), 0u);
  ASSERT_NE(w.ticket, 0u);
  expect_misuse(
      MisuseKind::slab_bad_cache, "sleep in mempool_alloc()", [&] { pools().mempool_destroy(id); },
      "mempool_destroy");
  EXPECT_NE(last_title.find("mempool_destroy() of mempool"), std::string::npos) << last_title;
  EXPECT_FALSE(P(id).destroyed);
  EXPECT_EQ(P(id).waiters.size(), 1u);
  pools().mempool_free(id, e);
  ASSERT_EQ(pools().take_completed().size(), 1u);
  pools().mempool_free(id, e);
  pools().mempool_destroy(id);
  EXPECT_TRUE(P(id).destroyed);
  release();
  expect_no_misuse();
}

TEST_F(MempoolTest, GfpZeroIsReportedAndStripped) {
  const cache_id c = slab().kmem_cache_create("mp_zeroed", 48, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(1, c);
  ASSERT_NE(id, 0u);
  vaddr_t e = 0;
  rec.clear();
  expect_misuse(
      MisuseKind::slab_bad_cache, "__GFP_ZERO",
      [&] { e = pools().mempool_alloc(id, GFP_KERNEL | __GFP_ZERO); }, "mempool_alloc");
  ASSERT_NE(e, 0u);  // the allocation still happens
  ASSERT_EQ(rec.cache_allocs.size(), 1u);
  EXPECT_EQ(rec.cache_allocs[0].gfp & __GFP_ZERO, 0u);
  EXPECT_EQ(rec.cache_allocs[0].gfp, first_round(GFP_KERNEL));
  pools().mempool_free(id, e);
  expect_misuse(
      MisuseKind::slab_bad_cache, "BUG_ON(new_min_nr <= 0)",
      [&] { EXPECT_EQ(pools().mempool_resize(id, 0), -22); }, "mempool_resize");
  expect_misuse(MisuseKind::slab_bad_cache, "BUG_ON(new_min_nr <= 0)",
                [&] { EXPECT_EQ(pools().mempool_resize(id, -3), -22); });
  EXPECT_EQ(P(id).min_nr, 1);
  EXPECT_EQ(P(id).curr_nr(), 1);
  pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
}

TEST_F(MempoolTest, BadElementsAreCaughtOnTheWayIntoTheReserve) {
  const cache_id c = slab().kmem_cache_create("mp_bad", 160, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(2, c);
  ASSERT_NE(id, 0u);
  prime(c);
  const auto reserve = P(id).elements;
  // A double free of an element sitting in the reserve (KASAN would find
  // it poisoned), with the reserve full: refused, not freed to the cache.
  rec.clear();
  expect_misuse(
      MisuseKind::slab_double_free, "already in the reserve",
      [&] { pools().mempool_free(id, reserve[0]); }, "mempool_free");
  EXPECT_TRUE(rec.cache_frees.empty());
  EXPECT_TRUE(live_object(reserve[0], c));
  // Drain the reserve (the allocator must fail for that).
  exhaust_pages();
  exhaust_cache(c);
  const vaddr_t a = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_EQ(a, reserve[1]);
  // Into a reserve with room: a pointer inside an object, a freed object,
  // an address that is no object at all.
  expect_misuse(MisuseKind::slab_invalid_free, "inside the object",
                [&] { pools().mempool_free(id, a + 8); });
  const vaddr_t freed = take_hog_object();
  ASSERT_NE(freed, 0u);
  slab().kmem_cache_free(c, freed);
  expect_misuse(MisuseKind::slab_double_free, "free object",
                [&] { pools().mempool_free(id, freed); });
  expect_misuse(MisuseKind::slab_invalid_free, "no slab object",
                [&] { pools().mempool_free(id, mm->page_address(hog.back().pfn)); });
  EXPECT_EQ(P(id).curr_nr(), 1);
  // Twice into the reserve.
  pools().mempool_free(id, a);
  EXPECT_EQ(P(id).curr_nr(), 2);
  expect_misuse(MisuseKind::slab_double_free, "already in the reserve",
                [&] { pools().mempool_free(id, a); });
  EXPECT_EQ(P(id).elements, reserve);
  // The wrong kind with a full reserve reaches kmem_cache_free(), which
  // finds the wrong cache.
  release();
  const vaddr_t km = slab().kmalloc(64, GFP_KERNEL);
  ASSERT_NE(km, 0u);
  expect_misuse(
      MisuseKind::slab_wrong_cache, "Wrong slab cache", [&] { pools().mempool_free(id, km); },
      "kmem_cache_free");
  EXPECT_NE(slab().find_object(km), std::nullopt);
  EXPECT_TRUE(slab().find_object(km)->allocated);
  slab().kfree(km);
  pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
  expect_no_misuse();
}

TEST_F(MempoolTest, PagePoolDoubleAndWrongOrderFrees) {
  const mempool_id id = pools().mempool_create_page_pool(2, 1);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  expect_misuse(
      MisuseKind::page_double_free, "already in the reserve",
      [&] { pools().mempool_free(id, reserve[1]); }, "mempool_free");
  EXPECT_TRUE(live_pages(reserve[1], 1));
  const pfn_t b = mm->page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(b, NO_PAGE);
  exhaust_pages();
  const vaddr_t a = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_EQ(a, reserve[1]);
  // Room in the reserve: an order-0 block, a freed block, a tail page.
  expect_misuse(MisuseKind::page_wrong_order, "order-0",
                [&] { pools().mempool_free(id, mm->page_address(b)); });
  expect_misuse(MisuseKind::page_free_tail, "not its head",
                [&] { pools().mempool_free(id, a + mm->profile.page_size()); });
  expect_misuse(MisuseKind::page_bad_pfn, "not a page address",
                [&] { pools().mempool_free(id, a + 16); });
  mm->page_alloc.__free_pages(b, 0);
  expect_misuse(MisuseKind::page_double_free, "free page",
                [&] { pools().mempool_free(id, mm->page_address(b)); });
  pools().mempool_free(id, a);
  EXPECT_EQ(P(id).elements, reserve);
  // A full reserve: the page allocator checks the free itself.
  expect_misuse(
      MisuseKind::page_double_free, "", [&] { pools().mempool_free(id, mm->page_address(b)); },
      "free_pages");
  release();
  pools().mempool_destroy(id);
  expect_no_misuse();
}

// KASAN would have caught the free itself (the element was poisoned); the
// model finds it when the pool next touches the element.
TEST_F(MempoolTest, ElementFreedBehindThePoolsBackIsReportedAndDropped) {
  const cache_id c = slab().kmem_cache_create("mp_behind", 80, 0, 0);
  const mempool_id id = pools().mempool_create_slab_pool(3, c);
  ASSERT_NE(id, 0u);
  const auto reserve = P(id).elements;
  slab().kmem_cache_free(c, reserve[1]);  // a stale pointer in buggy code
  // Destroy frees the other two and does not free the dead one twice.
  rec.clear();
  expect_misuse(
      MisuseKind::kasan_use_after_free, "freed while in the pool",
      [&] { pools().mempool_destroy(id); }, "mempool_destroy");
  EXPECT_EQ(rec.cache_frees, (std::vector<vaddr_t>{reserve[2], reserve[0]}));
  EXPECT_EQ(last_title, "BUG: KASAN: use-after-free in mempool_destroy");
  EXPECT_TRUE(P(id).destroyed);
  slab().kmem_cache_destroy(c);  // every object is free: no destroy_busy
  EXPECT_TRUE(slab().cache(c)->destroyed);

  // A page pool under pressure: the allocator fails, the reserve's last
  // element is dead, the one below it is served.
  const mempool_id pg = pools().mempool_create_page_pool(3, 0);
  ASSERT_NE(pg, 0u);
  const auto pages = P(pg).elements;
  exhaust_pages();
  mm->page_alloc.free_pages(pages[2], 0);
  vaddr_t got = 0;
  expect_misuse(
      MisuseKind::kasan_use_after_free, "freed while in the pool",
      [&] { got = pools().mempool_alloc(pg, GFP_KERNEL); }, "mempool_alloc");
  EXPECT_EQ(got, pages[1]);
  EXPECT_EQ(P(pg).elements, std::vector<vaddr_t>{pages[0]});
  pools().mempool_free(pg, got);
  release();
  pools().mempool_destroy(pg);
  expect_no_misuse();
}

// ---------------------------------------------------------------- checkers

// slab.mempool fires on a reserve short of min_nr that lent nothing, and
// on one holding more than min_nr, in sweeps and after an op.
TEST_F(MempoolTest, ReserveShortOrOverfullIsAnInvariantViolation) {
  const mempool_id id = pools().mempool_create_kmalloc_pool(4, 64);
  ASSERT_NE(id, 0u);
  MempoolCorruptor c(*mm);
  const vaddr_t lost = c.drop_element(id);
  engine->full_sweep();
  ASSERT_EQ(engine->violations().size(), 1u) << report();
  EXPECT_EQ(engine->violations()[0].invariant, "slab.mempool");
  EXPECT_NE(report().find("holds 3 of min_nr 4 elements, but callers hold only 0"),
            std::string::npos)
      << report();
  engine->clear();
  c.add_element(id, lost);
  engine->full_sweep();
  EXPECT_TRUE(engine->clean()) << report();
  // A lent element is no shortfall.
  const vaddr_t e = pools().mempool_alloc(id, GFP_KERNEL);
  ASSERT_NE(e, 0u);
  EXPECT_EQ(P(id).curr_nr(), 4);  // the allocator served it
  const vaddr_t extra = slab().kmalloc(64, GFP_KERNEL);
  c.add_element(id, extra);
  engine->begin_op(3, "mempool_free");
  pools().mempool_free(id, e);
  engine->end_op();
  ASSERT_EQ(engine->violations().size(), 1u) << report();
  EXPECT_EQ(engine->violations()[0].op_index, 3);
  EXPECT_NE(report().find("the reserve holds 5 elements, min_nr is 4"), std::string::npos)
      << report();
  engine->clear();
  EXPECT_EQ(c.drop_element(id), extra);
  slab().kfree(extra);
}

TEST_F(MempoolTest, MixedWorkloadUnderPressureStaysClean) {
  inv::CheckOptions o;
  o.capture_stacks = false;
  o.full_every = 25;
  engine = std::make_unique<inv::CheckEngine>(*mm, o);  // incremental checks too
  const cache_id c = slab().kmem_cache_create("mp_mix", 176, 0, 0);
  std::vector<mempool_id> ids = {pools().mempool_create_slab_pool(4, c),
                                 pools().mempool_create_kmalloc_pool(3, 700),
                                 pools().mempool_create_page_pool(2, 1)};
  for (mempool_id id : ids) ASSERT_NE(id, 0u);
  std::vector<std::pair<mempool_id, vaddr_t>> live;
  std::set<std::uint64_t> waiting;
  std::uint64_t x = 0x6d656d706f6f6cULL;
  auto next = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  std::uint64_t nulls = 0, waits = 0, completions = 0;
  for (int i = 0; i < 1500; ++i) {
    engine->begin_op(i, "mempool");
    const auto r = next();
    if (i == 300) exhaust_pages();
    if (i == 900) release();
    const mempool_id id = ids[r % ids.size()];
    const auto what = (r >> 4) % 10;
    if (what < 5 || live.empty()) {
      MempoolWait w;
      const gfp_t gfp = (r >> 8) % 3 ? GFP_KERNEL : GFP_ATOMIC;
      const vaddr_t e = pools().mempool_alloc(id, gfp, &w);
      if (e)
        live.emplace_back(id, e);
      else if (w.ticket)
        waiting.insert(w.ticket), ++waits;
      else
        ++nulls;
    } else if (what < 9) {
      const std::size_t j = static_cast<std::size_t>(r >> 12) % live.size();
      pools().mempool_free(live[j].first, live[j].second);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(j));
    } else {
      pools().mempool_resize(id, 1 + static_cast<int>((r >> 16) % 6));
    }
    for (const auto& d : pools().take_completed()) {
      ASSERT_EQ(waiting.erase(d.ticket), 1u);
      ASSERT_NE(d.element, 0u);
      live.emplace_back(d.pool, d.element);
      ++completions;
    }
    engine->end_op();
    ASSERT_TRUE(engine->clean()) << report();
  }
  // Everything goes back; every sleeper is served on the way.
  while (!live.empty()) {
    pools().mempool_free(live.back().first, live.back().second);
    live.pop_back();
    for (const auto& d : pools().take_completed()) {
      ASSERT_EQ(waiting.erase(d.ticket), 1u);
      live.emplace_back(d.pool, d.element);
      ++completions;
    }
  }
  EXPECT_TRUE(waiting.empty());
  EXPECT_GT(nulls, 0u);
  EXPECT_GT(waits, 0u);
  EXPECT_EQ(completions, waits);
  for (mempool_id id : ids) pools().mempool_destroy(id);
  slab().kmem_cache_destroy(c);
  EXPECT_TRUE(slab().cache(c)->destroyed);
  release();
  engine->finish();
  expect_no_misuse();
}

}  // namespace
}  // namespace mmfuzz::mm
