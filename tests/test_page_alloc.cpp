// The zoned buddy allocator of Linux 6.1 (and the 5.10 profile): the API of
// include/linux/gfp.h, per-CPU lists, watermarks, fallback stealing, CMA,
// highatomic reserves, NUMA placement and misuse reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "mm/mm.h"
#include "mm/observer.h"
#include "mm/page_alloc/gfp.h"
#include "mm/page_alloc/mmzone.h"
#include "mm/page_alloc/page_alloc.h"

namespace mmfuzz::mm {
namespace {

constexpr std::uint64_t PAGE = 4096;
constexpr unsigned PB = 512;  // pageblock_nr_pages

// ---------------------------------------------------------------- helpers

struct Recorder : MmObserver {
  struct Alloc {
    pfn_t pfn;
    unsigned order;
    gfp_t gfp;
    int mt;
  };
  struct Block {
    pfn_t pfn;
    unsigned order;
    int mt;
    bool flag;  // percpu_refill for zone_locked
  };
  struct Extfrag {
    pfn_t pfn;
    unsigned alloc_order, fallback_order;
    int alloc_mt, fallback_mt;
    bool change_ownership;
  };
  std::vector<Alloc> allocs;
  std::vector<std::pair<pfn_t, unsigned>> frees;
  std::vector<Block> zone_locked, drains;
  std::vector<Extfrag> extfrag;
  std::vector<AllocFailure> failures;
  std::vector<Misuse> misuses;

  void clear() { *this = Recorder{}; }
  std::uint64_t drained_pages() const {
    std::uint64_t n = 0;
    for (const auto& d : drains) n += std::uint64_t{1} << d.order;
    return n;
  }

  void mm_page_alloc(pfn_t pfn, unsigned order, gfp_t gfp, int mt) override {
    allocs.push_back({pfn, order, gfp, mt});
  }
  void mm_page_free(pfn_t pfn, unsigned order) override { frees.emplace_back(pfn, order); }
  void mm_page_alloc_zone_locked(pfn_t pfn, unsigned order, int mt, bool refill) override {
    zone_locked.push_back({pfn, order, mt, refill});
  }
  void mm_page_pcpu_drain(pfn_t pfn, unsigned order, int mt) override {
    drains.push_back({pfn, order, mt, false});
  }
  void mm_page_alloc_extfrag(pfn_t pfn, unsigned ao, unsigned fo, int amt, int fmt,
                             bool co) override {
    extfrag.push_back({pfn, ao, fo, amt, fmt, co});
  }
  void page_alloc_failure(const AllocFailure& f) override { failures.push_back(f); }
  void misuse(const Misuse& m) override { misuses.push_back(m); }
};

zone& dma(Mm& mm, int nid = 0) {
  return mm.page_alloc.node_data[static_cast<std::size_t>(nid)].node_zones[ZONE_DMA];
}
zone& zone_at(Mm& mm, int nid, int idx) {
  return mm.page_alloc.node_data[static_cast<std::size_t>(nid)]
      .node_zones[static_cast<std::size_t>(idx)];
}
per_cpu_pages& pcp(Mm& mm, int cpu, int nid = 0) {
  return dma(mm, nid).per_cpu_pageset[static_cast<std::size_t>(cpu)];
}
long nr_free(Mm& mm, int nid = 0) {
  return dma(mm, nid).zone_page_state(NR_FREE_PAGES);
}
long nr_free_cma(Mm& mm) {
  return dma(mm).zone_page_state(NR_FREE_CMA_PAGES);
}
// Free pages an unmovable allocation may use (CMA excluded).
long non_cma_free(Mm& mm) {
  return nr_free(mm) - nr_free_cma(mm);
}
int mt_of(Mm& mm, pfn_t pfn) {
  return mm.page_alloc.get_pageblock_migratetype(pfn);
}
const page_list& pcp_list(Mm& mm, int cpu, unsigned pindex) {
  return pcp(mm, cpu).lists[pindex];
}
std::uint64_t list_len(Mm& mm, page_list l) {
  return mm.page_alloc.list_length(l, 1u << 20);
}

// The pfns on one buddy free list, head to tail.
std::vector<pfn_t> free_list_pfns(Mm& mm, zone& z, unsigned order, int mt) {
  std::vector<pfn_t> out;
  const PageAlloc& pa = mm.page_alloc;
  const page_list head = z.free_area_[order].free_list[static_cast<std::size_t>(mt)];
  for (pfn_t p = pa.list_first_entry(head); p != NO_PAGE;) {
    out.push_back(p);
    const std::uint32_t next = pa.L(mm.sparse.pfn_to_link(p)).next;
    p = next == head ? NO_PAGE : mm.sparse.link_to_pfn(next);
  }
  return out;
}

// Everything a refused operation must leave alone.
struct Snapshot {
  std::vector<long> free, free_cma;
  std::vector<int> pcp_count;
  std::vector<std::uint64_t> nr_free_area;
  std::uint64_t pgalloc = 0, pgfree = 0;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(Mm& mm) {
  Snapshot s;
  for (auto& pgdat : mm.page_alloc.node_data)
    for (auto& z : pgdat.node_zones) {
      s.free.push_back(z.zone_page_state(NR_FREE_PAGES));
      s.free_cma.push_back(z.zone_page_state(NR_FREE_CMA_PAGES));
      for (const auto& p : z.per_cpu_pageset) s.pcp_count.push_back(p.count);
      for (unsigned o = 0; o < mm.page_alloc.max_order(); ++o)
        s.nr_free_area.push_back(z.free_area_[o].nr_free);
    }
  s.pgalloc = mm.page_alloc.pgalloc;
  s.pgfree = mm.page_alloc.pgfree;
  return s;
}

struct Block {
  pfn_t pfn;
  unsigned order;
};

// Allocates at orders top..0, each until it fails; returns what it got.
std::vector<Block> exhaust(Mm& mm, gfp_t gfp, unsigned top = 10) {
  std::vector<Block> got;
  for (int o = static_cast<int>(top); o >= 0; --o) {
    for (;;) {
      const pfn_t pfn = mm.page_alloc.alloc_pages(gfp, static_cast<unsigned>(o));
      if (pfn == NO_PAGE) break;
      got.push_back({pfn, static_cast<unsigned>(o)});
    }
  }
  return got;
}

std::uint64_t pages_of(const std::vector<Block>& v) {
  std::uint64_t n = 0;
  for (const auto& b : v) n += std::uint64_t{1} << b.order;
  return n;
}

// 64 MiB, no CMA, no initrd, no early allocations: small enough to fill.
MmConfig small_config() {
  MmConfig cfg;
  cfg.machine.ram_size = 64 * SZ_1M;
  cfg.machine.cma_size = 0;
  cfg.machine.early_allocs.clear();
  cfg.machine.initrd_size = 0;
  return cfg;
}

MmConfig two_node_config() {
  MmConfig cfg;
  cfg.machine.nr_nodes = 2;
  cfg.machine.nr_cpus = 2;
  return cfg;
}

class PageAllocTest : public ::testing::Test {
 protected:
  void SetUp() override { mm.attach(&rec); }
  // Exactly one misuse of `kind`, and nothing else changed.
  template <class F>
  void expect_misuse(MisuseKind kind, F&& op, const char* api = nullptr) {
    const Snapshot before = snapshot(mm);
    rec.clear();
    op();
    ASSERT_EQ(rec.misuses.size(), 1u) << "expected " << misuse_id(kind);
    EXPECT_EQ(rec.misuses[0].kind, kind)
        << misuse_id(rec.misuses[0].kind) << ": " << rec.misuses[0].detail;
    if (api) {
      EXPECT_EQ(rec.misuses[0].api, api);
    }
    EXPECT_FALSE(rec.misuses[0].detail.empty());
    EXPECT_TRUE(snapshot(mm) == before) << "state changed by a refused operation";
    EXPECT_TRUE(rec.frees.empty());
    EXPECT_TRUE(rec.drains.empty());
  }
  Mm mm;
  Recorder rec;
  PageAlloc& pa = mm.page_alloc;
};

// ---------------------------------------------------------------- API

TEST_F(PageAllocTest, AllocPagesOrder0) {
  const auto pgalloc = pa.pgalloc;
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  ASSERT_TRUE(mm.pfn_valid(pfn));
  const page& p = mm.pfn_to_page(pfn);
  EXPECT_EQ(p._refcount, 1);
  EXPECT_FALSE(PageBuddy(p));
  EXPECT_FALSE(PageReserved(p));
  EXPECT_FALSE(PageCompound(p));
  EXPECT_EQ(p.zone, ZONE_DMA);
  EXPECT_EQ(&pa.page_zone(pfn), &dma(mm));
  EXPECT_FALSE(pa.is_free_buddy_page(pfn));
  EXPECT_EQ(pa.owner(pfn).state, PAGE_OWNER_ALLOCATED);
  EXPECT_EQ(pa.owner(pfn).order, 0u);
  EXPECT_EQ(pa.owner(pfn).gfp_mask, GFP_KERNEL);
  EXPECT_EQ(pa.owner(pfn).cpu, 0u);
  EXPECT_EQ(pa.owning_block(pfn, PAGE_OWNER_ALLOCATED), pfn);
  EXPECT_EQ(pa.pgalloc, pgalloc + 1);
  ASSERT_EQ(rec.allocs.size(), 1u);
  EXPECT_EQ(rec.allocs[0].pfn, pfn);
  EXPECT_EQ(rec.allocs[0].order, 0u);
  EXPECT_EQ(rec.allocs[0].gfp, GFP_KERNEL);
  EXPECT_EQ(rec.allocs[0].mt, MIGRATE_UNMOVABLE);
  EXPECT_TRUE(rec.misuses.empty());
  // Distinct allocations get distinct pages.
  const pfn_t pfn2 = pa.alloc_page(GFP_KERNEL);
  EXPECT_NE(pfn2, pfn);
  EXPECT_EQ(rec.allocs.size(), 2u);
}

TEST_F(PageAllocTest, AllocPagesHighOrderIsAlignedAndWhole) {
  for (unsigned order : {1u, 3u, 4u, 7u, 10u}) {
    const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, order);
    ASSERT_NE(pfn, NO_PAGE) << order;
    EXPECT_EQ(pfn & ((pfn_t{1} << order) - 1), 0u) << "order " << order << " misaligned";
    EXPECT_EQ(pa.owner(pfn).order, order);
    for (pfn_t i = 0; i < (pfn_t{1} << order); ++i) {
      ASSERT_FALSE(pa.is_free_buddy_page(pfn + i)) << order << " +" << i;
      ASSERT_EQ(pa.owning_block(pfn + i, PAGE_OWNER_ALLOCATED), pfn);
    }
  }
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(PageAllocTest, AllocPagesNode) {
  const pfn_t pfn = pa.alloc_pages_node(0, GFP_KERNEL, 2);
  ASSERT_NE(pfn, NO_PAGE);
  EXPECT_EQ(mm.pfn_to_page(pfn).nid, 0);
  const pfn_t local = pa.alloc_pages_node(NUMA_NO_NODE, GFP_KERNEL, 0);  // the local node
  ASSERT_NE(local, NO_PAGE);
  EXPECT_EQ(mm.pfn_to_page(local).nid, 0);
  EXPECT_TRUE(rec.misuses.empty());
  // A node that is not online.
  rec.clear();
  EXPECT_EQ(pa.alloc_pages_node(1, GFP_KERNEL, 0), NO_PAGE);
  ASSERT_EQ(rec.misuses.size(), 1u);
  EXPECT_EQ(rec.misuses[0].kind, MisuseKind::page_bad_gfp);
  EXPECT_EQ(rec.misuses[0].api, "alloc_pages_node");
  EXPECT_TRUE(rec.allocs.empty());
}

TEST_F(PageAllocTest, GetFreePagesReturnsLinearMapAddresses) {
  const vaddr_t addr = pa.__get_free_pages(GFP_KERNEL, 2);
  ASSERT_NE(addr, 0u);
  EXPECT_TRUE(mm.is_linear_map_address(addr));
  EXPECT_TRUE(mm.virt_addr_valid(addr));
  EXPECT_EQ(addr & (4 * PAGE - 1), 0u);
  const pfn_t pfn = mm.virt_to_pfn(addr);
  EXPECT_EQ(mm.page_address(pfn), addr);
  EXPECT_EQ(pa.owner(pfn).order, 2u);
  const vaddr_t one = pa.__get_free_page(GFP_KERNEL);
  ASSERT_NE(one, 0u);
  EXPECT_EQ(pa.owner(mm.virt_to_pfn(one)).order, 0u);
  // __get_free_pages() cannot return highmem: __GFP_HIGHMEM is dropped.
  rec.clear();
  ASSERT_NE(pa.__get_free_pages(GFP_HIGHUSER, 0), 0u);
  ASSERT_EQ(rec.allocs.size(), 1u);
  EXPECT_EQ(rec.allocs[0].gfp, GFP_USER);
  // Failure is 0, not NO_PAGE; with __GFP_NOWARN an order >= MAX_ORDER
  // request fails silently (WARN_ON_ONCE_GFP).
  EXPECT_EQ(pa.__get_free_pages(GFP_KERNEL | __GFP_NOWARN, 11), 0u);
  pa.free_pages(addr, 2);
  pa.free_page(one);
  EXPECT_EQ(rec.misuses.size(), 0u);
}

TEST_F(PageAllocTest, GetZeroedPageIsZeroEvenAfterTheFrameWasDirtied) {
  const vaddr_t addr = pa.__get_free_page(GFP_KERNEL);
  ASSERT_NE(addr, 0u);
  const pfn_t pfn = mm.virt_to_pfn(addr);
  mm.ram.fill(pfn * PAGE, PAGE, 0xab);
  ASSERT_TRUE(mm.ram.page_dirty(pfn));
  pa.free_page(addr);
  // init_on_free is off: freeing leaves the bytes.
  EXPECT_EQ(mm.ram.byte(pfn * PAGE + 17), 0xab);
  rec.clear();
  const vaddr_t z = pa.get_zeroed_page(GFP_KERNEL);
  ASSERT_EQ(z, addr);  // the pcp list is LIFO: the same frame comes back
  for (auto b : mm.ram.page_bytes(pfn)) ASSERT_EQ(b, 0);
  ASSERT_EQ(rec.allocs.size(), 1u);
  EXPECT_EQ(rec.allocs[0].gfp, GFP_KERNEL | __GFP_ZERO);
}

TEST_F(PageAllocTest, InitOnAllocZeroesEveryAllocation) {
  ASSERT_TRUE(mm.profile.init_on_alloc);
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 3);
  ASSERT_NE(pfn, NO_PAGE);
  mm.ram.fill(pfn * PAGE, 8 * PAGE, 0x5a);
  pa.__free_pages(pfn, 3);
  const pfn_t again = pa.alloc_pages(GFP_KERNEL, 3);  // no __GFP_ZERO
  ASSERT_EQ(again, pfn);
  for (pfn_t i = 0; i < 8; ++i) {
    EXPECT_FALSE(mm.ram.page_dirty(pfn + i));
    for (auto b : mm.ram.page_bytes(pfn + i)) ASSERT_EQ(b, 0);
  }
}

TEST_F(PageAllocTest, GfpZeroZeroesEveryPageOfTheBlock) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 2);
  mm.ram.fill(pfn * PAGE, 4 * PAGE, 0x77);
  pa.__free_pages(pfn, 2);
  const pfn_t again = pa.alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_COMP, 2);
  ASSERT_EQ(again, pfn);
  for (pfn_t i = 0; i < 4; ++i)
    for (auto b : mm.ram.page_bytes(pfn + i)) ASSERT_EQ(b, 0) << "page " << i;
}

TEST_F(PageAllocTest, BuddyAllocationsAreTracedAsZoneLockedWithoutRefill) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 5);  // not a pcp order
  ASSERT_NE(pfn, NO_PAGE);
  ASSERT_EQ(rec.zone_locked.size(), 1u);
  EXPECT_EQ(rec.zone_locked[0].pfn, pfn);
  EXPECT_EQ(rec.zone_locked[0].order, 5u);
  EXPECT_EQ(rec.zone_locked[0].mt, MIGRATE_UNMOVABLE);
  EXPECT_FALSE(rec.zone_locked[0].flag);
  rec.clear();
  pa.__free_pages(pfn, 5);
  EXPECT_TRUE(rec.drains.empty());  // straight to the buddy lists
  ASSERT_EQ(rec.frees.size(), 1u);
  EXPECT_EQ(rec.frees[0], std::make_pair(pfn, 5u));
}

TEST_F(PageAllocTest, FreeVariantsReturnPagesToThePcpLists) {
  const pfn_t a = pa.alloc_pages(GFP_KERNEL, 0);
  const pfn_t b = pa.alloc_pages(GFP_KERNEL, 1);
  const vaddr_t c = pa.__get_free_pages(GFP_KERNEL, 0);
  const vaddr_t d = pa.__get_free_pages(GFP_KERNEL, 2);
  ASSERT_TRUE(a != NO_PAGE && b != NO_PAGE && c && d);
  const int count = pcp(mm, 0).count;
  const auto pgfree = pa.pgfree;
  rec.clear();
  pa.__free_page(a);
  pa.__free_pages(b, 1);
  pa.free_page(c);
  pa.free_pages(d, 2);
  pa.free_pages(0, 3);  // free_pages(0) is a no-op
  EXPECT_TRUE(rec.misuses.empty());
  ASSERT_EQ(rec.frees.size(), 4u);
  EXPECT_EQ(rec.frees[0], std::make_pair(a, 0u));
  EXPECT_EQ(rec.frees[1], std::make_pair(b, 1u));
  EXPECT_EQ(rec.frees[2], std::make_pair(mm.virt_to_pfn(c), 0u));
  EXPECT_EQ(rec.frees[3], std::make_pair(mm.virt_to_pfn(d), 2u));
  EXPECT_EQ(pa.pgfree, pgfree + 1 + 2 + 1 + 4);
  EXPECT_EQ(pcp(mm, 0).count, count + 8);
  for (pfn_t pfn : {a, b, mm.virt_to_pfn(c), mm.virt_to_pfn(d)}) {
    EXPECT_EQ(pa.owner(pfn).state, PAGE_OWNER_PCP);
    EXPECT_EQ(mm.pfn_to_page(pfn)._refcount, 0);
  }
  // Orders above PAGE_ALLOC_COSTLY_ORDER (other than the THP order) bypass the pcp lists.
  const pfn_t e = pa.alloc_pages(GFP_KERNEL, 4);
  const long free_before = nr_free(mm);
  pa.__free_pages(e, 4);
  EXPECT_EQ(nr_free(mm), free_before + 16);
  EXPECT_EQ(pcp(mm, 0).count, count + 8);
  EXPECT_TRUE(pa.is_free_buddy_page(e));
}

TEST_F(PageAllocTest, AllocPagesExactReturnsTheTail) {
  const vaddr_t addr = pa.alloc_pages_exact(5 * PAGE, GFP_KERNEL | __GFP_COMP);
  ASSERT_NE(addr, 0u);
  const pfn_t pfn = mm.virt_to_pfn(addr);
  EXPECT_EQ(pfn & 7, 0u);  // an order-3 block
  for (pfn_t i = 0; i < 5; ++i) {
    EXPECT_EQ(pa.owner(pfn + i).state, PAGE_OWNER_ALLOCATED) << i;
    EXPECT_EQ(pa.owner(pfn + i).order, 0u) << i;
    EXPECT_EQ(mm.pfn_to_page(pfn + i)._refcount, 1) << i;
    EXPECT_FALSE(PageCompound(mm.pfn_to_page(pfn + i))) << "__GFP_COMP must be dropped";
    EXPECT_FALSE(pa.is_free_buddy_page(pfn + i));
  }
  // The 3 pages beyond 5 went back to the allocator.
  for (pfn_t i = 5; i < 8; ++i) EXPECT_TRUE(pa.is_free_buddy_page(pfn + i)) << i;
  EXPECT_TRUE(rec.misuses.empty());

  rec.clear();
  pa.free_pages_exact(addr, 5 * PAGE - 100);  // rounded up to 5 pages
  EXPECT_TRUE(rec.misuses.empty());
  ASSERT_EQ(rec.frees.size(), 5u);
  for (pfn_t i = 0; i < 5; ++i) {
    EXPECT_EQ(rec.frees[i], std::make_pair(pfn + i, 0u));
    EXPECT_NE(pa.owner(pfn + i).state, PAGE_OWNER_ALLOCATED);
  }
}

TEST_F(PageAllocTest, AllocPagesExactSizes) {
  // A power of two keeps every page.
  const vaddr_t eight = pa.alloc_pages_exact(8 * PAGE, GFP_KERNEL);
  ASSERT_NE(eight, 0u);
  for (pfn_t i = 0; i < 8; ++i)
    EXPECT_EQ(pa.owner(mm.virt_to_pfn(eight) + i).state, PAGE_OWNER_ALLOCATED);
  // One byte is one page.
  const vaddr_t one = pa.alloc_pages_exact(1, GFP_KERNEL);
  ASSERT_NE(one, 0u);
  EXPECT_EQ(pa.owner(mm.virt_to_pfn(one)).order, 0u);
  // The largest size is a MAX_ORDER-1 block.
  const vaddr_t big = pa.alloc_pages_exact(1024 * PAGE, GFP_KERNEL);
  EXPECT_NE(big, 0u);
  EXPECT_TRUE(rec.misuses.empty());
  pa.free_pages_exact(eight, 8 * PAGE);
  pa.free_pages_exact(one, 1);
  pa.free_pages_exact(big, 1024 * PAGE);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(rec.frees.size(), 8u + 1u + 1024u);
  // Zero and too large sizes are refused.
  expect_misuse(MisuseKind::page_bad_order,
                [&] { EXPECT_EQ(pa.alloc_pages_exact(0, GFP_KERNEL), 0u); });
  expect_misuse(MisuseKind::page_bad_order,
                [&] { EXPECT_EQ(pa.alloc_pages_exact(1025 * PAGE, GFP_KERNEL), 0u); });
}

TEST_F(PageAllocTest, SplitPage) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 2);
  ASSERT_NE(pfn, NO_PAGE);
  pa.split_page(pfn, 2);
  EXPECT_TRUE(rec.misuses.empty());
  for (pfn_t i = 0; i < 4; ++i) {
    EXPECT_EQ(mm.pfn_to_page(pfn + i)._refcount, 1) << i;
    EXPECT_EQ(pa.owner(pfn + i).state, PAGE_OWNER_ALLOCATED) << i;
    EXPECT_EQ(pa.owner(pfn + i).order, 0u) << i;
  }
  // Each page is now an order-0 allocation of its own.
  for (pfn_t i : {pfn_t{2}, pfn_t{0}, pfn_t{3}, pfn_t{1}}) pa.__free_pages(pfn + i, 0);
  EXPECT_TRUE(rec.misuses.empty());
  for (pfn_t i = 0; i < 4; ++i) EXPECT_EQ(pa.owner(pfn + i).state, PAGE_OWNER_PCP);

  const pfn_t comp = pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 2);
  expect_misuse(
      MisuseKind::page_split_compound, [&] { pa.split_page(comp, 2); }, "split_page");
  const pfn_t other = pa.alloc_pages(GFP_KERNEL, 2);
  expect_misuse(
      MisuseKind::page_wrong_order, [&] { pa.split_page(other, 1); }, "split_page");
  expect_misuse(
      MisuseKind::page_bad_pfn, [&] { pa.split_page(0x10, 0); }, "split_page");
}

TEST_F(PageAllocTest, GetPutPageRefcounts) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  const page& p = mm.pfn_to_page(pfn);
  pa.get_page(pfn);
  pa.get_page(pfn);
  EXPECT_EQ(p._refcount, 3);
  pa.put_page(pfn);
  pa.put_page(pfn);
  EXPECT_EQ(p._refcount, 1);
  EXPECT_TRUE(rec.frees.empty());
  EXPECT_EQ(pa.owner(pfn).state, PAGE_OWNER_ALLOCATED);
  pa.put_page(pfn);  // the last reference frees
  EXPECT_EQ(p._refcount, 0);
  ASSERT_EQ(rec.frees.size(), 1u);
  EXPECT_EQ(rec.frees[0], std::make_pair(pfn, 0u));
  EXPECT_EQ(pa.owner(pfn).state, PAGE_OWNER_PCP);
  EXPECT_TRUE(rec.misuses.empty());
  // __free_pages() is a put too: with another reference held, nothing is freed.
  const pfn_t q = pa.alloc_pages(GFP_KERNEL, 0);
  pa.get_page(q);
  rec.clear();
  pa.__free_pages(q, 0);
  EXPECT_TRUE(rec.frees.empty());
  EXPECT_EQ(mm.pfn_to_page(q)._refcount, 1);
  pa.put_page(q);
  EXPECT_EQ(rec.frees.size(), 1u);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(PageAllocTest, FreePagesWithExtraRefOnNonCompoundFreesAllButTheFirstPage) {
  // __free_pages(): "if (!head) while (order-- > 0) free_the_page(page + (1 << order), order)".
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 2);
  pa.get_page(pfn);
  rec.clear();
  pa.__free_pages(pfn, 2);
  EXPECT_TRUE(rec.misuses.empty());
  ASSERT_EQ(rec.frees.size(), 2u);
  EXPECT_EQ(rec.frees[0], std::make_pair(pfn + 2, 1u));
  EXPECT_EQ(rec.frees[1], std::make_pair(pfn + 1, 0u));
  EXPECT_EQ(mm.pfn_to_page(pfn)._refcount, 1);
  EXPECT_EQ(pa.owner(pfn).state, PAGE_OWNER_ALLOCATED);
  EXPECT_EQ(pa.owner(pfn).order, 0u);
  pa.put_page(pfn);  // the holder's put frees the first page
  EXPECT_TRUE(rec.misuses.empty());
  ASSERT_EQ(rec.frees.size(), 3u);
  EXPECT_EQ(rec.frees[2], std::make_pair(pfn, 0u));
  for (pfn_t i = 0; i < 4; ++i) EXPECT_NE(pa.owner(pfn + i).state, PAGE_OWNER_ALLOCATED) << i;
}

TEST_F(PageAllocTest, CompoundPages) {
  const pfn_t head = pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 3);
  ASSERT_NE(head, NO_PAGE);
  EXPECT_TRUE(PageHead(mm.pfn_to_page(head)));
  EXPECT_FALSE(PageTail(mm.pfn_to_page(head)));
  for (pfn_t i = 1; i < 8; ++i) {
    const page& t = mm.pfn_to_page(head + i);
    EXPECT_TRUE(PageTail(t)) << i;
    EXPECT_FALSE(PageHead(t)) << i;
    EXPECT_EQ(t.compound_head, (head << 1) | 1) << i;
  }
  EXPECT_EQ(mm.pfn_to_page(head + 1).compound_order, 3u);
  // get_page()/put_page() on a tail act on the head.
  pa.get_page(head + 5);
  EXPECT_EQ(mm.pfn_to_page(head)._refcount, 2);
  EXPECT_EQ(mm.pfn_to_page(head + 5)._refcount, 0);
  pa.put_page(head + 6);
  EXPECT_EQ(mm.pfn_to_page(head)._refcount, 1);
  EXPECT_TRUE(rec.frees.empty());
  pa.put_page(head + 7);  // last reference: the whole compound page is freed
  EXPECT_TRUE(rec.misuses.empty());
  ASSERT_EQ(rec.frees.size(), 1u);
  EXPECT_EQ(rec.frees[0], std::make_pair(head, 3u));
  EXPECT_FALSE(PageHead(mm.pfn_to_page(head)));
  for (pfn_t i = 1; i < 8; ++i) EXPECT_FALSE(PageTail(mm.pfn_to_page(head + i))) << i;
  EXPECT_EQ(mm.pfn_to_page(head + 1).compound_order, 0u);

  // __free_pages() of a compound page clears it the same way.
  const pfn_t h2 = pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 4);
  ASSERT_TRUE(PageHead(mm.pfn_to_page(h2)));
  pa.__free_pages(h2, 4);
  EXPECT_FALSE(PageHead(mm.pfn_to_page(h2)));
  EXPECT_FALSE(PageTail(mm.pfn_to_page(h2 + 15)));
  EXPECT_EQ(mm.pfn_to_page(h2 + 1).compound_order, 0u);
  // Order 0 with __GFP_COMP is not compound.
  const pfn_t p0 = pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 0);
  EXPECT_FALSE(PageCompound(mm.pfn_to_page(p0)));
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(PageAllocTest, LastPutOfNonCompoundHighOrderIsReported) {
  // put_page() of an order-2 block allocated without __GFP_COMP frees only page
  // 0 in the kernel and leaks the rest; the model reports it instead.
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 2);
  expect_misuse(
      MisuseKind::page_wrong_order, [&] { pa.put_page(pfn); }, "put_page");
  EXPECT_EQ(mm.pfn_to_page(pfn)._refcount, 1);
}

// ---------------------------------------------------------------- pcp lists

TEST_F(PageAllocTest, Order0AllocationRefillsThePcpListByBatch) {
  per_cpu_pages& pc = pcp(mm, 0);
  ASSERT_EQ(pc.batch, 63);
  const unsigned unmovable0 = pa.order_to_pindex(MIGRATE_UNMOVABLE, 0);
  ASSERT_TRUE(pa.list_empty(pc.lists[unmovable0]));
  const int count = pc.count;
  const long free = nr_free(mm);
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  EXPECT_EQ(pc.count, count + 62);  // 63 taken from the buddy lists, one handed out
  EXPECT_EQ(nr_free(mm), free - 63);
  EXPECT_EQ(list_len(mm, pc.lists[unmovable0]), 62u);
  ASSERT_EQ(rec.zone_locked.size(), 63u);
  for (const auto& z : rec.zone_locked) {
    EXPECT_EQ(z.order, 0u);
    EXPECT_EQ(z.mt, MIGRATE_UNMOVABLE);
    EXPECT_TRUE(z.flag) << "percpu_refill";
  }
  // The next ones come from the list without touching the zone.
  rec.clear();
  for (int i = 0; i < 62; ++i) ASSERT_NE(pa.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  EXPECT_EQ(pc.count, count);
  EXPECT_EQ(nr_free(mm), free - 63);
  EXPECT_TRUE(rec.zone_locked.empty());
  // And the one after that refills again.
  ASSERT_NE(pa.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  EXPECT_EQ(nr_free(mm), free - 126);
  EXPECT_EQ(rec.zone_locked.size(), 63u);
}

TEST_F(PageAllocTest, MovableOrder0UsesTheListFilledByFreeInitmem) {
  per_cpu_pages& pc = pcp(mm, 0);
  const unsigned movable0 = pa.order_to_pindex(MIGRATE_MOVABLE, 0);
  const int count = pc.count;
  ASSERT_EQ(list_len(mm, pc.lists[movable0]), static_cast<std::uint64_t>(count));
  const long free = nr_free(mm);
  const pfn_t pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  ASSERT_NE(pfn, NO_PAGE);
  EXPECT_EQ(pc.count, count - 1);
  EXPECT_EQ(nr_free(mm), free);
  EXPECT_TRUE(rec.zone_locked.empty());
  ASSERT_EQ(rec.allocs.size(), 1u);
  EXPECT_EQ(rec.allocs[0].mt, MIGRATE_MOVABLE);
}

TEST_F(PageAllocTest, FreeingBeyondHighDrainsABatch) {
  per_cpu_pages& pc = pcp(mm, 0);
  ASSERT_EQ(pc.high, 3520);
  std::vector<pfn_t> pages;
  for (int i = 0; i < 4000; ++i) pages.push_back(pa.alloc_pages(GFP_KERNEL, 0));
  ASSERT_EQ(std::count(pages.begin(), pages.end(), NO_PAGE), 0);
  ASSERT_LT(pc.count, pc.high);
  rec.clear();
  bool first_drain_seen = false;
  for (pfn_t pfn : pages) {
    const int before = pc.count;
    const long free_before = nr_free(mm);
    const std::size_t drains_before = rec.drains.size();
    pa.__free_pages(pfn, 0);
    ASSERT_LT(pc.count, pc.high) << "a free must leave count below high";
    if (rec.drains.size() != drains_before) {
      const long drained = static_cast<long>(rec.drains.size() - drains_before);
      EXPECT_EQ(pc.count, before + 1 - drained);
      EXPECT_EQ(nr_free(mm), free_before + drained);
      if (!first_drain_seen) {
        // nr_pcp_free(): the first bulk free of a run is one batch, from the
        // list just freed to (pindex first).
        EXPECT_EQ(before + 1, pc.high);
        EXPECT_EQ(drained, pc.batch);
        for (std::size_t i = drains_before; i < rec.drains.size(); ++i) {
          EXPECT_EQ(rec.drains[i].mt, MIGRATE_UNMOVABLE);
          EXPECT_EQ(rec.drains[i].order, 0u);
        }
        EXPECT_EQ(pc.free_factor, 1);
        first_drain_seen = true;
      }
    } else {
      EXPECT_EQ(pc.count, before + 1);
    }
  }
  EXPECT_TRUE(first_drain_seen);
  EXPECT_GE(pc.free_factor, 2);  // later drains free more: batch << free_factor
  EXPECT_TRUE(rec.misuses.empty());
  // An allocation halves free_factor again.
  const int ff = pc.free_factor;
  pa.alloc_pages(GFP_KERNEL, 0);
  EXPECT_EQ(pc.free_factor, ff >> 1);
}

TEST_F(PageAllocTest, DrainAllPagesEmptiesEveryList) {
  ASSERT_NE(pa.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  ASSERT_NE(pa.alloc_pages(GFP_KERNEL, 2), NO_PAGE);
  ASSERT_TRUE(mm.set_cpu(1));
  ASSERT_NE(pa.alloc_pages(GFP_KERNEL, 1), NO_PAGE);
  ASSERT_TRUE(mm.set_cpu(0));
  const int c0 = pcp(mm, 0).count, c1 = pcp(mm, 1).count;
  ASSERT_GT(c0, 0);
  ASSERT_GT(c1, 0);
  const long free = nr_free(mm);
  rec.clear();
  pa.drain_local_pages(1);
  EXPECT_EQ(pcp(mm, 1).count, 0);
  EXPECT_EQ(pcp(mm, 0).count, c0);
  EXPECT_EQ(nr_free(mm), free + c1);
  EXPECT_EQ(rec.drained_pages(), static_cast<std::uint64_t>(c1));
  pa.drain_all_pages();
  EXPECT_EQ(nr_free(mm), free + c0 + c1);
  for (int cpu = 0; cpu < 2; ++cpu) {
    EXPECT_EQ(pcp(mm, cpu).count, 0);
    for (unsigned i = 0; i < pa.nr_pcp_lists(); ++i)
      EXPECT_TRUE(pa.list_empty(pcp_list(mm, cpu, i))) << "cpu " << cpu << " list " << i;
  }
  EXPECT_EQ(rec.drained_pages(), static_cast<std::uint64_t>(c0 + c1));
  // Drained pages are free buddy pages.
  for (const auto& d : rec.drains) ASSERT_TRUE(pa.is_free_buddy_page(d.pfn));
}

TEST_F(PageAllocTest, HighOrderPcpListsOf61) {
  ASSERT_EQ(pa.nr_pcp_lists(), 13u);  // 3 types x orders 0..3, plus the THP list
  EXPECT_TRUE(pa.pcp_allowed_order(3));
  EXPECT_FALSE(pa.pcp_allowed_order(4));
  EXPECT_TRUE(pa.pcp_allowed_order(9));
  EXPECT_FALSE(pa.pcp_allowed_order(10));
  EXPECT_EQ(pa.order_to_pindex(MIGRATE_RECLAIMABLE, 2), 8u);
  EXPECT_EQ(pa.order_to_pindex(MIGRATE_UNMOVABLE, 9), 12u);
  EXPECT_EQ(pa.order_to_pindex(MIGRATE_MOVABLE, 9), 12u);  // one THP list for every type
  EXPECT_EQ(pa.pindex_to_order(12), 9u);
  EXPECT_EQ(pa.pindex_to_order(7), 2u);
  per_cpu_pages& pc = pcp(mm, 0);
  // Two allocations decay the free_factor boot left (see below) to 0, so the
  // high-order frees here are not "free_high" frees.
  pa.alloc_pages(GFP_KERNEL, 0);
  pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_EQ(pc.free_factor, 0);
  for (unsigned order = 1; order <= 3; ++order) {
    const int count = pc.count;
    const long free = nr_free(mm);
    const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, order);
    ASSERT_NE(pfn, NO_PAGE);
    // The refill batch shrinks with the order: max(batch >> order, 2) blocks.
    const int blocks = std::max(63 >> order, 2);
    EXPECT_EQ(nr_free(mm), free - (blocks << order)) << "order " << order;
    EXPECT_EQ(pc.count, count + (blocks << order) - (1 << order)) << "order " << order;
    const page_list l = pc.lists[pa.order_to_pindex(MIGRATE_UNMOVABLE, order)];
    EXPECT_EQ(list_len(mm, l), static_cast<std::uint64_t>(blocks - 1)) << "order " << order;
    pa.__free_pages(pfn, order);  // back onto the same list
    EXPECT_EQ(list_len(mm, l), static_cast<std::uint64_t>(blocks)) << "order " << order;
    EXPECT_EQ(pc.count, count + (blocks << order));
    EXPECT_EQ(pa.owner(pfn).state, PAGE_OWNER_PCP);
    EXPECT_EQ(pa.owner(pfn).order, order);
  }
  // THP: two order-9 blocks per refill.
  const page_list thp = pc.lists[12];
  const int count = pc.count;
  const long free = nr_free(mm);
  const pfn_t huge = pa.alloc_pages(GFP_TRANSHUGE, 9);
  ASSERT_NE(huge, NO_PAGE);
  EXPECT_EQ(nr_free(mm), free - 1024);
  EXPECT_EQ(pc.count, count + 512);
  EXPECT_EQ(list_len(mm, thp), 1u);
  EXPECT_TRUE(PageHead(mm.pfn_to_page(huge)));
  // The THP list is shared by all migrate types: an unmovable order-9
  // request takes the movable block the refill left there.
  const pfn_t spare = pa.list_first_entry(thp);
  const pfn_t unmovable = pa.alloc_pages(GFP_KERNEL, 9);
  EXPECT_EQ(unmovable, spare);
  EXPECT_EQ(nr_free(mm), free - 1024);
  EXPECT_EQ(mt_of(mm, unmovable), MIGRATE_MOVABLE);
  pa.__free_pages(unmovable, 9);
  pa.__free_pages(huge, 9);
  EXPECT_EQ(list_len(mm, thp), 2u);
  EXPECT_EQ(pc.count, count + 1024);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(PageAllocTest, HighOrderFreeAfterBulkFreesDrainsTheWholeList) {
  // cma_activate() frees 32 order-9 blocks to CPU 0's THP list while pcp high
  // is still batch * 4 = 252 (the watermarks come later): each free bulk-frees
  // and raises free_factor, and no allocation decays it during boot.
  per_cpu_pages& pc = pcp(mm, 0);
  ASSERT_EQ(pc.free_factor, 2);
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 1);  // free_factor >>= 1
  ASSERT_EQ(pc.free_factor, 1);
  const int count = pc.count;
  ASSERT_GT(count, 1800);
  const long free = nr_free(mm);
  rec.clear();
  // 6.1 free_unref_page_commit(): free_high = free_factor && order && order <= costly:
  // high becomes 0 and nr_pcp_free() frees everything.
  pa.__free_pages(pfn, 1);
  EXPECT_EQ(pc.count, 0);
  EXPECT_EQ(rec.drained_pages(), static_cast<std::uint64_t>(count + 2));
  EXPECT_EQ(nr_free(mm), free + count + 2);
  // An order-0 free is never free_high.
  const pfn_t p0 = pa.alloc_pages(GFP_KERNEL, 0);
  const int c0 = pc.count;
  pa.__free_pages(p0, 0);
  EXPECT_EQ(pc.count, c0 + 1);
}

TEST_F(PageAllocTest, PerCpuListsAreSeparate) {
  EXPECT_FALSE(mm.set_cpu(2));
  EXPECT_FALSE(mm.set_cpu(-1));
  EXPECT_EQ(mm.cpu(), 0);
  const int c0 = pcp(mm, 0).count;
  ASSERT_TRUE(mm.set_cpu(1));
  ASSERT_EQ(pcp(mm, 1).count, 0);
  const pfn_t a = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(a, NO_PAGE);
  EXPECT_EQ(pa.owner(a).cpu, 1u);
  EXPECT_EQ(pcp(mm, 1).count, 62);
  EXPECT_EQ(pcp(mm, 0).count, c0);
  // A page allocated on CPU 0 and freed on CPU 1 goes to CPU 1's list.
  ASSERT_TRUE(mm.set_cpu(0));
  const pfn_t b = pa.alloc_pages(GFP_KERNEL, 0);
  const int c0_after = pcp(mm, 0).count;
  ASSERT_TRUE(mm.set_cpu(1));
  pa.__free_pages(b, 0);
  EXPECT_EQ(pcp(mm, 1).count, 63);
  EXPECT_EQ(pcp(mm, 0).count, c0_after);
  EXPECT_EQ(pa.list_first_entry(pcp_list(mm, 1, pa.order_to_pindex(MIGRATE_UNMOVABLE, 0))), b);
  // The next allocation on CPU 1 gets it back; CPU 0 does not.
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL, 0), b);
}

// ---------------------------------------------------------------- watermarks

TEST_F(PageAllocTest, GfpKernelStopsAtTheMinWatermarkAndAtomicDigsDeeper) {
  zone& z = dma(mm);
  ASSERT_EQ(z.min_wmark_pages(), 5632u);
  const auto kernel = exhaust(mm, GFP_KERNEL | __GFP_NOWARN);
  EXPECT_TRUE(rec.failures.empty()) << "__GFP_NOWARN must not warn";
  EXPECT_GT(pa.nr_alloc_failures, 0u);
  EXPECT_GT(pages_of(kernel), 200000u);
  for (const auto& b : kernel) ASSERT_NE(mt_of(mm, b.pfn), MIGRATE_CMA) << "unmovable in CMA";
  // The failed order-0 attempt drained the pcp lists and stopped at min:
  // (free - free CMA) <= min, and less than one batch below it.
  const long min = static_cast<long>(z.min_wmark_pages());
  EXPECT_LE(non_cma_free(mm), min);
  EXPECT_GT(non_cma_free(mm), min - 63);
  EXPECT_EQ(nr_free_cma(mm), 16384);

  // Without __GFP_NOWARN the failure is reported with its order and mask.
  rec.clear();
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 3), NO_PAGE);
  ASSERT_EQ(rec.failures.size(), 2u);
  EXPECT_EQ(rec.failures[0].order, 0u);
  EXPECT_EQ(rec.failures[0].gfp, GFP_KERNEL);
  EXPECT_EQ(rec.failures[0].nid, 0);
  EXPECT_FALSE(rec.failures[0].nofail);
  EXPECT_EQ(rec.failures[1].order, 3u);
  EXPECT_EQ(rec.failures[1].gfp, GFP_KERNEL | __GFP_COMP);
  // The failed allocation is still traced, with no page.
  ASSERT_EQ(rec.allocs.size(), 2u);
  EXPECT_EQ(rec.allocs[0].pfn, NO_PAGE);

  // GFP_ATOMIC (ALLOC_HIGH | ALLOC_HARDER) may go to min - min/2 - min/8.
  const long atomic_min = (min - min / 2) - (min - min / 2) / 4;
  ASSERT_EQ(atomic_min, 2112);
  rec.clear();
  const auto atomic = exhaust(mm, GFP_ATOMIC | __GFP_NOWARN, 0);
  EXPECT_GT(atomic.size(), 3000u);
  EXPECT_LE(non_cma_free(mm), atomic_min);
  EXPECT_GT(non_cma_free(mm), atomic_min - 63);
  for (const auto& b : atomic) ASSERT_NE(mt_of(mm, b.pfn), MIGRATE_CMA);
  EXPECT_TRUE(rec.failures.empty());
  // GFP_NOWAIT has neither: it is already below its watermark.
  EXPECT_EQ(pa.alloc_pages(GFP_NOWAIT | __GFP_NOWARN, 0), NO_PAGE);
  // Movable allocations can still use CMA.
  const pfn_t movable = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  ASSERT_NE(movable, NO_PAGE);
  EXPECT_EQ(mt_of(mm, movable), MIGRATE_CMA);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(PageAllocTest, NofailIgnoresTheWatermarksWhenEverythingElseFailed) {
  exhaust(mm, GFP_KERNEL | __GFP_NOWARN);
  ASSERT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0), NO_PAGE);
  rec.clear();
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 0);
  EXPECT_NE(pfn, NO_PAGE);
  EXPECT_TRUE(rec.failures.empty());
}

TEST_F(PageAllocTest, NowarnOnlySuppressesTheReport) {
  exhaust(mm, GFP_KERNEL | __GFP_NOWARN);
  rec.clear();
  const auto failures = pa.nr_alloc_failures;
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 2), NO_PAGE);
  EXPECT_TRUE(rec.failures.empty());
  EXPECT_EQ(pa.nr_alloc_failures, failures + 1);
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_NORETRY, 2), NO_PAGE);
  ASSERT_EQ(rec.failures.size(), 1u);
  EXPECT_EQ(rec.failures[0].order, 2u);
  EXPECT_EQ(rec.failures[0].gfp, GFP_KERNEL | __GFP_NORETRY);
  EXPECT_EQ(pa.nr_alloc_failures, failures + 2);
}

TEST_F(PageAllocTest, DmaAndDma32FallBackToZoneDmaOnTheDefaultMachine) {
  // All of RAM is below 4 GiB, so it is all ZONE_DMA; ZONE_DMA32 is empty.
  EXPECT_TRUE(dma(mm).populated_zone());
  EXPECT_FALSE(zone_at(mm, 0, ZONE_DMA32).populated_zone());
  EXPECT_FALSE(zone_at(mm, 0, ZONE_NORMAL).populated_zone());
  for (gfp_t gfp : {GFP_DMA, GFP_DMA32, GFP_KERNEL | __GFP_DMA, GFP_KERNEL | __GFP_DMA32,
                    GFP_KERNEL, GFP_HIGHUSER_MOVABLE}) {
    const pfn_t pfn = pa.alloc_pages(gfp, 0);
    ASSERT_NE(pfn, NO_PAGE) << format_gfp(gfp);
    EXPECT_EQ(mm.pfn_to_page(pfn).zone, ZONE_DMA) << format_gfp(gfp);
  }
  EXPECT_TRUE(rec.failures.empty());
  EXPECT_TRUE(rec.misuses.empty());
}

TEST(PageAllocZones, NormalZoneAbove4GiB) {
  // 2 GiB at 3 GiB: ZONE_DMA is [3 GiB, 4 GiB), ZONE_NORMAL [4 GiB, 5 GiB).
  MmConfig cfg;
  cfg.machine.ram_base = 0xc0000000;
  cfg.machine.ram_size = 2 * SZ_1G;
  cfg.machine.cma_size = 0;
  Mm mm(cfg);
  PageAlloc& pa = mm.page_alloc;
  zone& d = zone_at(mm, 0, ZONE_DMA);
  zone& n = zone_at(mm, 0, ZONE_NORMAL);
  EXPECT_EQ(d.zone_start_pfn, 0xc0000u);
  EXPECT_EQ(d.spanned_pages, 0x40000u);
  EXPECT_FALSE(zone_at(mm, 0, ZONE_DMA32).populated_zone());
  EXPECT_EQ(n.zone_start_pfn, 0x100000u);
  EXPECT_EQ(n.spanned_pages, 0x40000u);
  // The zonelist is highest zone first.
  const auto& zl = pa.node_data[0].node_zonelists[ZONELIST_FALLBACK]._zonerefs;
  ASSERT_EQ(zl.size(), 2u);
  EXPECT_EQ(zl[0].zone_idx, ZONE_NORMAL);
  EXPECT_EQ(zl[1].zone_idx, ZONE_DMA);
  // lowmem_reserve protects ZONE_DMA from ZONE_NORMAL allocations.
  EXPECT_EQ(d.lowmem_reserve[ZONE_NORMAL], static_cast<long>(n.managed_pages / 256));
  EXPECT_EQ(d.lowmem_reserve[ZONE_DMA], 0);

  const pfn_t k = pa.alloc_pages(GFP_KERNEL, 0);
  EXPECT_GE(k, 0x100000u);
  EXPECT_EQ(mm.pfn_to_page(k).zone, ZONE_NORMAL);
  for (gfp_t gfp : {GFP_DMA, GFP_DMA32}) {
    const pfn_t pfn = pa.alloc_pages(gfp, 0);
    ASSERT_NE(pfn, NO_PAGE);
    EXPECT_LT(pfn, 0x100000u) << format_gfp(gfp);
    EXPECT_EQ(mm.pfn_to_page(pfn).zone, ZONE_DMA);
  }
  // Filling ZONE_NORMAL spills GFP_KERNEL into ZONE_DMA, which keeps its
  // min watermark plus the lowmem reserve for it.
  const auto got = exhaust(mm, GFP_KERNEL | __GFP_NOWARN);
  std::uint64_t in_dma = 0;
  for (const auto& b : got) in_dma += mm.pfn_to_page(b.pfn).zone == ZONE_DMA;
  EXPECT_GT(in_dma, 0u);
  EXPECT_LE(n.zone_page_state(NR_FREE_PAGES), static_cast<long>(n.min_wmark_pages()));
  EXPECT_LE(d.zone_page_state(NR_FREE_PAGES),
            static_cast<long>(d.min_wmark_pages()) + d.lowmem_reserve[ZONE_NORMAL]);
  EXPECT_GT(d.zone_page_state(NR_FREE_PAGES),
            static_cast<long>(d.min_wmark_pages()) + d.lowmem_reserve[ZONE_NORMAL] - 64);
  // GFP_DMA32 only has to respect DMA's min watermark: it still succeeds.
  EXPECT_NE(pa.alloc_pages(GFP_DMA32, 0), NO_PAGE);
}

// ---------------------------------------------------------------- fallback

// The fallback scenarios need a machine on which nothing unmovable was ever
// allocated, so they boot without the slab layer.
MmConfig no_slab(MmConfig cfg) {
  cfg.slab.enabled = false;
  return cfg;
}

class FallbackTest : public ::testing::Test {
 protected:
  FallbackTest() : mm(no_slab(small_config())), pa(mm.page_alloc) { mm.attach(&rec); }
  Mm mm;
  PageAlloc& pa;
  Recorder rec;
};

TEST_F(FallbackTest, SmallMachine) {
  const zone& z = dma(mm);
  EXPECT_EQ(z.managed_pages, 9278u);  // 18 boot page-table pages from memblock
  EXPECT_EQ(z.cma_pages, 0u);
  EXPECT_EQ(pcp(mm, 0).batch, 1);
  // Nothing unmovable was ever allocated: every pageblock is MOVABLE.
  for (pfn_t pfn = z.zone_start_pfn; pfn < z.zone_end_pfn(); pfn += PB)
    ASSERT_EQ(mt_of(mm, pfn), MIGRATE_MOVABLE);
}

TEST_F(FallbackTest, UnmovableStealsAWholeMovableBlock) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  ASSERT_EQ(rec.extfrag.size(), 1u);
  const Recorder::Extfrag e = rec.extfrag[0];
  EXPECT_EQ(e.alloc_order, 0u);
  EXPECT_EQ(e.fallback_order, 10u);  // the largest free block is taken
  EXPECT_EQ(e.alloc_mt, MIGRATE_UNMOVABLE);
  EXPECT_EQ(e.fallback_mt, MIGRATE_MOVABLE);
  EXPECT_TRUE(e.change_ownership);
  EXPECT_EQ(e.pfn & 1023, 0u);
  // Both pageblocks of the order-10 block changed owner; the neighbours did not.
  EXPECT_EQ(mt_of(mm, e.pfn), MIGRATE_UNMOVABLE);
  EXPECT_EQ(mt_of(mm, e.pfn + PB), MIGRATE_UNMOVABLE);
  EXPECT_EQ(mt_of(mm, e.pfn + 2 * PB), MIGRATE_MOVABLE);
  EXPECT_GE(pfn, e.pfn);
  EXPECT_LT(pfn, e.pfn + 1024);
  EXPECT_EQ(dma(mm).watermark_boost, 0u) << "whole-block steals do not boost";
  // Further unmovable allocations are served from the stolen block.
  rec.clear();
  for (int i = 0; i < 500; ++i) {
    const pfn_t p = pa.alloc_pages(GFP_KERNEL, 0);
    ASSERT_GE(p, e.pfn);
    ASSERT_LT(p, e.pfn + 1024);
  }
  EXPECT_TRUE(rec.extfrag.empty());
}

TEST_F(FallbackTest, UnmovableClaimsAFragmentedMovableBlockAndBoosts) {
  // Fill memory with movable pages, then free every other one: the free
  // memory is all small MOVABLE blocks.
  auto movable = exhaust(mm, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 0);
  ASSERT_GT(movable.size(), 8000u);
  for (const auto& b : movable)
    if (b.pfn & 1) pa.__free_pages(b.pfn, 0);
  pa.drain_all_pages();
  zone& z = dma(mm);
  for (unsigned o = pa.pageblock_order(); o < pa.max_order(); ++o)
    ASSERT_EQ(z.free_area_[o].nr_free, 0u) << "no whole free pageblock may be left";
  ASSERT_EQ(z.watermark_boost, 0u);
  rec.clear();
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  ASSERT_EQ(rec.extfrag.size(), 1u);
  const Recorder::Extfrag e = rec.extfrag[0];
  EXPECT_EQ(e.alloc_mt, MIGRATE_UNMOVABLE);
  EXPECT_EQ(e.fallback_mt, MIGRATE_MOVABLE);
  EXPECT_LT(e.fallback_order, pa.pageblock_order());
  // The block's allocated pages are not on the LRU, so they count as "alike":
  // free + alike >= pageblock_nr_pages / 2 claims the block.
  EXPECT_TRUE(e.change_ownership);
  EXPECT_EQ(mt_of(mm, e.pfn), MIGRATE_UNMOVABLE);
  EXPECT_EQ(mt_of(mm, pfn), MIGRATE_UNMOVABLE);
  // Its free pages moved to the UNMOVABLE lists with it.
  const pfn_t start = e.pfn & ~pfn_t{PB - 1};
  std::uint64_t free_in_block = 0;
  for (pfn_t p = start; p < start + PB; ++p) free_in_block += pa.is_free_buddy_page(p);
  EXPECT_GT(free_in_block, 0u);
  std::uint64_t on_unmovable = 0;
  for (unsigned o = 0; o < pa.pageblock_order(); ++o) {
    for (pfn_t p : free_list_pfns(mm, z, o, MIGRATE_MOVABLE))
      ASSERT_FALSE(p >= start && p < start + PB)
          << "a free page of the claimed block stayed MOVABLE";
    for (pfn_t p : free_list_pfns(mm, z, o, MIGRATE_UNMOVABLE))
      if (p >= start && p < start + PB) on_unmovable += std::uint64_t{1} << o;
  }
  EXPECT_EQ(on_unmovable, free_in_block);
  // A steal below pageblock order boosts the watermarks by a pageblock and wakes kswapd.
  EXPECT_EQ(z.watermark_boost, PB);
  EXPECT_GT(pa.node_data[0].kswapd_wakeups, 0u);
  EXPECT_EQ(z.min_wmark_pages(), z._watermark[WMARK_MIN] + PB);
  mm.tick();  // kswapd ran: the boost is gone
  EXPECT_EQ(z.watermark_boost, 0u);
  EXPECT_EQ(pa.node_data[0].kswapd_wakeups, 0u);
}

TEST_F(FallbackTest, MovableTakesSinglePagesFromUnmovableBlocksWithoutClaiming) {
  // Fill every page with unmovable allocations (memalloc ignores watermarks):
  // every pageblock with free memory is stolen for UNMOVABLE.
  auto all = exhaust(mm, GFP_KERNEL | __GFP_NOWARN);
  auto rest = exhaust(mm, GFP_KERNEL | __GFP_MEMALLOC | __GFP_NOWARN, 0);
  all.insert(all.end(), rest.begin(), rest.end());
  ASSERT_EQ(nr_free(mm), 0);
  // Free one page in every pair: isolated order-0 UNMOVABLE pages.
  std::uint64_t freed = 0;
  for (const auto& b : all)
    for (pfn_t i = 0; i < (pfn_t{1} << b.order); ++i)
      if ((b.pfn + i) & 1) {
        if (b.order) {
          // Break high-order blocks up first.
          if (i == 1) pa.split_page(b.pfn, b.order);
        }
        pa.__free_pages(b.pfn + i, 0);
        ++freed;
      }
  pa.drain_all_pages();
  mm.tick();
  zone& z = dma(mm);
  ASSERT_EQ(nr_free(mm), static_cast<long>(freed));
  ASSERT_EQ(z.free_area_[0].nr_free, freed);
  for (unsigned o = 0; o < pa.max_order(); ++o)
    ASSERT_TRUE(pa.list_empty(z.free_area_[o].free_list[MIGRATE_MOVABLE])) << o;
  rec.clear();
  const pfn_t pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  ASSERT_NE(pfn, NO_PAGE);
  ASSERT_EQ(rec.extfrag.size(), 1u);
  const Recorder::Extfrag e = rec.extfrag[0];
  EXPECT_EQ(e.alloc_mt, MIGRATE_MOVABLE);
  EXPECT_EQ(e.fallback_mt, MIGRATE_UNMOVABLE);
  EXPECT_EQ(e.alloc_order, 0u);
  EXPECT_EQ(e.fallback_order, 0u);
  // An order-0 movable allocation cannot steal the block (order <
  // pageblock_order / 2): it takes a single page and the owner stays.
  EXPECT_FALSE(e.change_ownership);
  EXPECT_EQ(mt_of(mm, pfn), MIGRATE_UNMOVABLE);
}

// ---------------------------------------------------------------- CMA

TEST_F(PageAllocTest, MovableAllocationsMayUseCmaUnmovableNever) {
  const long cma_free = nr_free_cma(mm);
  ASSERT_EQ(cma_free, 16384);
  // Unmovable order-10 blocks until none is left: none from CMA.
  const auto unmovable = exhaust(mm, GFP_KERNEL | __GFP_NOWARN, 10);
  ASSERT_GT(unmovable.size(), 200u);
  for (const auto& b : unmovable) ASSERT_NE(mt_of(mm, b.pfn), MIGRATE_CMA);
  EXPECT_EQ(nr_free_cma(mm), cma_free);
  // Movable ones get CMA blocks.
  std::uint64_t cma_blocks = 0;
  for (;;) {
    const pfn_t pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 10);
    if (pfn == NO_PAGE) break;
    if (mt_of(mm, pfn) == MIGRATE_CMA) {
      ++cma_blocks;
      EXPECT_GE(pfn, pa.cma.base >> 12);
      EXPECT_LT(pfn, (pa.cma.base >> 12) + pa.cma.count);
    }
  }
  // Until the watermark stops them, CMA included (ALLOC_CMA counts it as usable).
  EXPECT_GE(cma_blocks, 12u);
  EXPECT_EQ(nr_free_cma(mm), cma_free - static_cast<long>(cma_blocks * 1024));
  EXPECT_LE(nr_free(mm), static_cast<long>(dma(mm).min_wmark_pages()) + 1024);
}

TEST_F(PageAllocTest, CmaIsPreferredWhenItHoldsMostFreeMemory) {
  // __rmqueue(): with ALLOC_CMA, once free CMA exceeds half the free pages,
  // movable allocations take CMA first.
  exhaust(mm, GFP_KERNEL | __GFP_NOWARN, 10);
  ASSERT_GT(nr_free_cma(mm), nr_free(mm) / 2);
  pa.drain_all_pages();
  const pfn_t pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  ASSERT_NE(pfn, NO_PAGE);
  EXPECT_EQ(mt_of(mm, pfn), MIGRATE_CMA);
  // Freed CMA pages go back to the CMA free lists.
  pa.__free_pages(pfn, 0);
  pa.drain_all_pages();
  EXPECT_TRUE(pa.is_free_buddy_page(pfn));
  EXPECT_EQ(nr_free_cma(mm), 16384);
}

// ---------------------------------------------------------------- highatomic

TEST_F(PageAllocTest, HighAtomicReserveOnlyFromTheSlowPath) {
  zone& z = dma(mm);
  // Plenty of memory: the fast path has no ALLOC_HARDER, nothing is reserved.
  const pfn_t easy = pa.alloc_pages(GFP_ATOMIC, 2);
  ASSERT_NE(easy, NO_PAGE);
  EXPECT_EQ(z.nr_reserved_highatomic, 0u);
  EXPECT_NE(mt_of(mm, easy), MIGRATE_HIGHATOMIC);

  // Below the low watermark the slow path runs with ALLOC_HARDER and
  // reserves the pageblock of a high-order atomic allocation.
  exhaust(mm, GFP_KERNEL | __GFP_NOWARN);
  const pfn_t pfn = pa.alloc_pages(GFP_ATOMIC, 1);
  ASSERT_NE(pfn, NO_PAGE);
  EXPECT_EQ(z.nr_reserved_highatomic, PB);
  EXPECT_EQ(mt_of(mm, pfn), MIGRATE_HIGHATOMIC);
  // Order 0 never reserves.
  ASSERT_NE(pa.alloc_pages(GFP_ATOMIC, 0), NO_PAGE);
  EXPECT_EQ(z.nr_reserved_highatomic, PB);
  // The reserve is capped at 1% of the zone plus a pageblock.
  for (unsigned i = 0; i < 40; ++i) pa.alloc_pages(GFP_ATOMIC | __GFP_NOWARN, 1 + i % 3);
  EXPECT_LE(z.nr_reserved_highatomic, z.managed_pages / 100 + 2 * PB);
  EXPECT_EQ(z.nr_reserved_highatomic % PB, 0u);

  // Before giving up, a failing GFP_KERNEL allocation gives the reserves back.
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0), NO_PAGE);
  EXPECT_EQ(z.nr_reserved_highatomic, 0u);
  EXPECT_NE(mt_of(mm, pfn), MIGRATE_HIGHATOMIC);
}

// ---------------------------------------------------------------- misuse

TEST_F(PageAllocTest, DoubleFreeOrder0OnThePcpList) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  pa.__free_pages(pfn, 0);
  ASSERT_EQ(pa.owner(pfn).state, PAGE_OWNER_PCP);
  expect_misuse(
      MisuseKind::page_double_free, [&] { pa.__free_pages(pfn, 0); }, "__free_pages");
  EXPECT_EQ(rec.misuses[0].pfn, pfn);
  EXPECT_EQ(rec.misuses[0].order, 0u);
  expect_misuse(MisuseKind::page_double_free, [&] { pa.free_page(mm.page_address(pfn)); });
}

TEST_F(PageAllocTest, DoubleFreeOrder4InTheBuddy) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 4);
  pa.__free_pages(pfn, 4);
  ASSERT_TRUE(pa.is_free_buddy_page(pfn));
  expect_misuse(
      MisuseKind::page_double_free, [&] { pa.__free_pages(pfn, 4); }, "__free_pages");
  EXPECT_EQ(rec.misuses[0].order, 4u);
  // The same pages under another order are still a double free.
  expect_misuse(MisuseKind::page_double_free, [&] { pa.__free_pages(pfn + 8, 0); });
}

TEST_F(PageAllocTest, DoubleFreeOfAThpOnThePcpList) {
  const pfn_t pfn = pa.alloc_pages(GFP_TRANSHUGE, 9);
  ASSERT_NE(pfn, NO_PAGE);
  pa.__free_pages(pfn, 9);
  expect_misuse(MisuseKind::page_double_free, [&] { pa.__free_pages(pfn, 9); });
  expect_misuse(MisuseKind::page_double_free, [&] { pa.__free_pages(pfn + 100, 0); });
}

TEST_F(PageAllocTest, WrongOrder) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 2);
  expect_misuse(
      MisuseKind::page_wrong_order, [&] { pa.__free_pages(pfn, 1); }, "__free_pages");
  EXPECT_EQ(rec.misuses[0].order, 1u);
  expect_misuse(MisuseKind::page_wrong_order, [&] { pa.__free_pages(pfn, 3); });
  const pfn_t single = pa.alloc_pages(GFP_KERNEL, 0);
  expect_misuse(MisuseKind::page_wrong_order, [&] { pa.free_pages(mm.page_address(single), 3); });
  // Nothing was freed: the right order still works.
  rec.clear();
  pa.__free_pages(pfn, 2);
  pa.__free_pages(single, 0);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(rec.frees.size(), 2u);
}

TEST_F(PageAllocTest, MisuseThroughFreePagesNamesTheCallersApiAndAddress) {
  const pfn_t single = pa.alloc_pages(GFP_KERNEL, 0);
  const vaddr_t addr = mm.page_address(single);
  expect_misuse(
      MisuseKind::page_wrong_order, [&] { pa.free_pages(addr, 3); }, "free_pages");
  EXPECT_EQ(rec.misuses[0].addr, addr);
  pa.free_page(addr);
  expect_misuse(
      MisuseKind::page_double_free, [&] { pa.free_page(addr); }, "free_pages");
  EXPECT_EQ(rec.misuses[0].addr, addr);
}

TEST_F(PageAllocTest, FreeingATailPage) {
  const pfn_t comp = pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 2);
  expect_misuse(MisuseKind::page_free_tail, [&] { pa.__free_pages(comp + 1, 0); });
  expect_misuse(MisuseKind::page_free_tail, [&] { pa.__free_pages(comp + 3, 0); });
  const pfn_t plain = pa.alloc_pages(GFP_KERNEL, 2);  // not compound
  expect_misuse(MisuseKind::page_free_tail, [&] { pa.__free_pages(plain + 2, 0); });
  expect_misuse(MisuseKind::page_free_tail, [&] { pa.__free_pages(plain + 2, 1); });
  EXPECT_EQ(rec.misuses[0].pfn, plain + 2);
  expect_misuse(MisuseKind::page_free_tail, [&] { pa.free_page(mm.page_address(plain + 1)); });
}

TEST_F(PageAllocTest, FreeingAReservedPage) {
  const pfn_t code = mm.kimage.code_start >> 12;
  ASSERT_TRUE(PageReserved(mm.pfn_to_page(code)));
  expect_misuse(MisuseKind::page_free_reserved, [&] { pa.__free_pages(code, 0); });
  expect_misuse(MisuseKind::page_free_reserved,
                [&] { pa.free_pages(mm.page_address(code + 16), 2); });
  // The memmap and the DTB are reserved too.
  expect_misuse(MisuseKind::page_free_reserved, [&] { pa.__free_pages(0x7ec00, 0); });
  expect_misuse(MisuseKind::page_free_reserved, [&] { pa.__free_pages(0x48200, 0); });
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(code)));
}

TEST_F(PageAllocTest, BadPfnAndAddress) {
  expect_misuse(
      MisuseKind::page_bad_pfn, [&] { pa.__free_pages(0x10, 0); }, "__free_pages");
  EXPECT_EQ(rec.misuses[0].pfn, 0x10u);
  expect_misuse(MisuseKind::page_bad_pfn, [&] { pa.__free_pages(0x80000, 0); });
  expect_misuse(MisuseKind::page_bad_pfn, [&] { pa.__free_pages(NO_PAGE, 0); });
  expect_misuse(
      MisuseKind::page_bad_pfn, [&] { pa.free_pages(0x40000000, 0); }, "free_pages");
  EXPECT_EQ(rec.misuses[0].addr, 0x40000000u);
  expect_misuse(MisuseKind::page_bad_pfn, [&] { pa.free_pages(mm.page_address(0x80000), 0); });
  expect_misuse(
      MisuseKind::page_bad_pfn, [&] { pa.put_page(0x90000); }, "put_page");
  expect_misuse(
      MisuseKind::page_bad_pfn, [&] { pa.get_page(0x90000); }, "get_page");
}

TEST_F(PageAllocTest, PutPageOnAFreePage) {
  const pfn_t pcp_page = pa.alloc_pages(GFP_KERNEL, 0);
  pa.__free_pages(pcp_page, 0);
  expect_misuse(
      MisuseKind::page_refcount_underflow, [&] { pa.put_page(pcp_page); }, "put_page");
  const pfn_t buddy = pa.alloc_pages(GFP_KERNEL, 5);
  pa.__free_pages(buddy, 5);
  expect_misuse(MisuseKind::page_refcount_underflow, [&] { pa.put_page(buddy + 3); });
}

TEST_F(PageAllocTest, GetPageOnAFreePage) {
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  pa.__free_pages(pfn, 0);
  expect_misuse(
      MisuseKind::page_bad_state, [&] { pa.get_page(pfn); }, "get_page");
  EXPECT_EQ(mm.pfn_to_page(pfn)._refcount, 0);
}

TEST_F(PageAllocTest, FlagsThatMustBeClearAtFree) {
  // bad_page(): "PAGE_FLAGS_CHECK_AT_FREE flag(s) set".
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 1);
  for (pageflags f : {PG_lru, PG_slab, PG_locked, PG_writeback, PG_mlocked}) {
    mm.pfn_to_page(pfn).set(f);
    expect_misuse(MisuseKind::page_bad_state, [&] { pa.__free_pages(pfn, 1); });
    mm.pfn_to_page(pfn).clear(f);
  }
  // Flags outside the mask are fine and cleared by the free.
  mm.pfn_to_page(pfn).set(PG_referenced);
  rec.clear();
  pa.__free_pages(pfn, 1);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(mm.pfn_to_page(pfn).flags, 0u);
}

TEST_F(PageAllocTest, OrderAtOrAboveMaxOrder) {
  ASSERT_EQ(pa.max_order(), 11u);
  expect_misuse(
      MisuseKind::page_bad_order, [&] { EXPECT_EQ(pa.alloc_pages(GFP_KERNEL, 11), NO_PAGE); },
      "alloc_pages");
  EXPECT_EQ(rec.misuses[0].order, 11u);
  EXPECT_TRUE(rec.allocs.empty());
  EXPECT_TRUE(rec.failures.empty());
  expect_misuse(MisuseKind::page_bad_order,
                [&] { EXPECT_EQ(pa.__get_free_pages(GFP_KERNEL, 40), 0u); });
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  expect_misuse(MisuseKind::page_bad_order, [&] { pa.__free_pages(pfn, 11); });
  // Order 10 is fine.
  rec.clear();
  EXPECT_NE(pa.alloc_pages(GFP_KERNEL, 10), NO_PAGE);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(PageAllocTest, OrderAboveMaxOrderWithNowarnIsSilent) {
  const Snapshot before = snapshot(mm);
  rec.clear();
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 11), NO_PAGE);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_TRUE(rec.failures.empty());
  EXPECT_TRUE(snapshot(mm) == before);
}

TEST_F(PageAllocTest, ContradictoryGfp) {
  expect_misuse(
      MisuseKind::page_bad_gfp,
      [&] { EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_DMA | __GFP_DMA32, 0), NO_PAGE); },
      "alloc_pages");
  EXPECT_NE(rec.misuses[0].detail.find("GFP_KERNEL|GFP_DMA|GFP_DMA32"), std::string::npos)
      << rec.misuses[0].detail;
  expect_misuse(MisuseKind::page_bad_gfp, [&] {
    EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_MOVABLE | __GFP_RECLAIMABLE, 0), NO_PAGE);
  });
  expect_misuse(MisuseKind::page_bad_gfp,
                [&] { EXPECT_EQ(pa.__get_free_pages(GFP_DMA | __GFP_DMA32, 1), 0u); });
  EXPECT_TRUE(rec.allocs.empty());
}

TEST_F(PageAllocTest, MisuseLeavesTheAllocatorUsable) {
  // After every refused operation the pages can still be freed correctly.
  const pfn_t a = pa.alloc_pages(GFP_KERNEL | __GFP_COMP, 2);
  const pfn_t b = pa.alloc_pages(GFP_KERNEL, 3);
  pa.__free_pages(a + 1, 0);
  pa.__free_pages(b, 2);
  pa.__free_pages(b + 4, 0);
  pa.put_page(b);
  EXPECT_EQ(rec.misuses.size(), 4u);
  rec.clear();
  pa.__free_pages(a, 2);
  pa.__free_pages(b, 3);
  EXPECT_TRUE(rec.misuses.empty());
  EXPECT_EQ(rec.frees.size(), 2u);
}

// ---------------------------------------------------------------- NUMA

class TwoNodeTest : public ::testing::Test {
 protected:
  TwoNodeTest() : mm(two_node_config()), pa(mm.page_alloc) { mm.attach(&rec); }
  Mm mm;
  PageAlloc& pa;
  Recorder rec;
};

TEST_F(TwoNodeTest, Topology) {
  ASSERT_EQ(pa.node_data.size(), 2u);
  EXPECT_EQ(mm.cpu_to_node(0), 0);
  EXPECT_EQ(mm.cpu_to_node(1), 1);
  EXPECT_EQ(dma(mm, 0).zone_start_pfn, 0x40000u);
  EXPECT_EQ(dma(mm, 0).spanned_pages, 0x20000u);
  EXPECT_EQ(dma(mm, 1).zone_start_pfn, 0x60000u);
  EXPECT_EQ(dma(mm, 1).spanned_pages, 0x20000u);
  const auto& zl1 = pa.node_data[1].node_zonelists;
  ASSERT_EQ(zl1[ZONELIST_FALLBACK]._zonerefs.size(), 2u);
  EXPECT_EQ(zl1[ZONELIST_FALLBACK]._zonerefs[0].node, 1);
  EXPECT_EQ(zl1[ZONELIST_FALLBACK]._zonerefs[1].node, 0);
  ASSERT_EQ(zl1[ZONELIST_NOFALLBACK]._zonerefs.size(), 1u);
  EXPECT_EQ(zl1[ZONELIST_NOFALLBACK]._zonerefs[0].node, 1);
  EXPECT_EQ(pa.node_data[0].node_zonelists[ZONELIST_FALLBACK]._zonerefs[0].node, 0);
  EXPECT_EQ(mm.pfn_to_page(0x5ffff).nid, 0);
  EXPECT_EQ(mm.pfn_to_page(0x60000).nid, 1);
  // The CMA area is at the top of RAM, on node 1.
  EXPECT_EQ(dma(mm, 1).cma_pages, 16384u);
  EXPECT_EQ(dma(mm, 0).cma_pages, 0u);
}

TEST_F(TwoNodeTest, AllocationsAreLocalToTheCpu) {
  const auto hit1 = dma(mm, 1).vm_numa_event[NUMA_HIT];
  const auto local1 = dma(mm, 1).vm_numa_event[NUMA_LOCAL];
  ASSERT_TRUE(mm.set_cpu(1));
  const pfn_t a = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(a, NO_PAGE);
  EXPECT_EQ(mm.pfn_to_page(a).nid, 1);
  EXPECT_EQ(dma(mm, 1).vm_numa_event[NUMA_HIT], hit1 + 1);
  EXPECT_EQ(dma(mm, 1).vm_numa_event[NUMA_LOCAL], local1 + 1);
  // Explicitly node 0 from CPU 1: a hit for node 0 (it was preferred), but "other".
  const auto hit0 = dma(mm, 0).vm_numa_event[NUMA_HIT];
  const auto other0 = dma(mm, 0).vm_numa_event[NUMA_OTHER];
  const pfn_t b = pa.alloc_pages_node(0, GFP_KERNEL, 0);
  ASSERT_NE(b, NO_PAGE);
  EXPECT_EQ(mm.pfn_to_page(b).nid, 0);
  EXPECT_EQ(dma(mm, 0).vm_numa_event[NUMA_HIT], hit0 + 1);
  EXPECT_EQ(dma(mm, 0).vm_numa_event[NUMA_OTHER], other0 + 1);
  EXPECT_EQ(dma(mm, 0).vm_numa_event[NUMA_MISS], 0u);
  // CPU 0 allocates from node 0.
  ASSERT_TRUE(mm.set_cpu(0));
  const pfn_t c = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 3);
  ASSERT_NE(c, NO_PAGE);
  EXPECT_EQ(mm.pfn_to_page(c).nid, 0);
}

TEST_F(TwoNodeTest, ThisNodeStaysLocalOtherwiseFallsBackWithNumaMiss) {
  ASSERT_TRUE(mm.set_cpu(1));
  pa.drain_all_pages();  // a failing GFP_KERNEL drains every CPU: do it up front
  const long node0_free = nr_free(mm, 0);
  // __GFP_THISNODE: only node 1, until it cannot satisfy an order-10 request.
  const auto local = exhaust(mm, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, 10);
  ASSERT_FALSE(local.empty());
  for (const auto& b : local) ASSERT_EQ(mm.pfn_to_page(b.pfn).nid, 1);
  EXPECT_EQ(nr_free(mm, 0), node0_free) << "__GFP_THISNODE touched node 0";
  EXPECT_EQ(dma(mm, 0).vm_numa_event[NUMA_MISS], 0u);
  // Without it the allocation falls back to node 0: a miss there, foreign on node 1.
  const auto miss0 = dma(mm, 0).vm_numa_event[NUMA_MISS];
  const auto foreign1 = dma(mm, 1).vm_numa_event[NUMA_FOREIGN];
  const auto other0 = dma(mm, 0).vm_numa_event[NUMA_OTHER];
  const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  EXPECT_EQ(mm.pfn_to_page(pfn).nid, 0);
  EXPECT_EQ(dma(mm, 0).vm_numa_event[NUMA_MISS], miss0 + 1);
  EXPECT_EQ(dma(mm, 1).vm_numa_event[NUMA_FOREIGN], foreign1 + 1);
  EXPECT_EQ(dma(mm, 0).vm_numa_event[NUMA_OTHER], other0 + 1);
  // __GFP_THISNODE fails instead and reports the failure on node 1.
  rec.clear();
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL | __GFP_THISNODE, 0), NO_PAGE);
  ASSERT_EQ(rec.failures.size(), 1u);
  EXPECT_EQ(rec.failures[0].nid, 1);
}

// ---------------------------------------------------------------- 5.10

class Linux510Test : public ::testing::Test {
 protected:
  static MmConfig cfg() {
    MmConfig c;
    c.profile = "linux-5.10-arm64";
    return c;
  }
  Linux510Test() : mm(cfg()), pa(mm.page_alloc) { mm.attach(&rec); }
  Mm mm;
  PageAlloc& pa;
  Recorder rec;
};

TEST_F(Linux510Test, Order0OnlyPcp) {
  EXPECT_EQ(pa.nr_pcp_lists(), 3u);
  EXPECT_TRUE(pa.pcp_allowed_order(0));
  for (unsigned o : {1u, 2u, 3u, 9u}) EXPECT_FALSE(pa.pcp_allowed_order(o)) << o;
  EXPECT_EQ(pa.order_to_pindex(MIGRATE_RECLAIMABLE, 0), 2u);
  per_cpu_pages& pc = pcp(mm, 0);
  // high = 6 * batch (pageset_set_batch()).
  EXPECT_EQ(pc.high, 6 * pc.batch);
  EXPECT_EQ(dma(mm).managed_pages, 250203u);
  // Higher orders go straight to and from the buddy lists.
  for (unsigned o : {1u, 3u, 9u}) {
    const int count = pc.count;
    const long free = nr_free(mm);
    const pfn_t pfn = pa.alloc_pages(GFP_KERNEL, o);
    ASSERT_NE(pfn, NO_PAGE);
    EXPECT_EQ(pc.count, count) << o;
    EXPECT_EQ(nr_free(mm), free - (1L << o)) << o;
    pa.__free_pages(pfn, o);
    EXPECT_EQ(pc.count, count) << o;
    EXPECT_EQ(nr_free(mm), free) << o;
  }
  // Order 0 refills by batch (no order scaling in 5.10).
  const int count = pc.count;
  const long free = nr_free(mm);
  ASSERT_NE(pa.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  EXPECT_EQ(pc.count, count + pc.batch - 1);
  EXPECT_EQ(nr_free(mm), free - pc.batch);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(Linux510Test, FreeingAtHighReleasesOneBatch) {
  per_cpu_pages& pc = pcp(mm, 0);
  std::vector<pfn_t> pages;
  for (int i = 0; i < pc.high + pc.batch; ++i) pages.push_back(pa.alloc_pages(GFP_KERNEL, 0));
  pa.drain_all_pages();
  ASSERT_EQ(pc.count, 0);
  rec.clear();
  for (int i = 0; i < pc.high - 1; ++i) pa.__free_pages(pages[static_cast<std::size_t>(i)], 0);
  EXPECT_EQ(pc.count, pc.high - 1);
  EXPECT_TRUE(rec.drains.empty());
  pa.__free_pages(pages[static_cast<std::size_t>(pc.high - 1)], 0);  // count reaches high
  EXPECT_EQ(rec.drains.size(), static_cast<std::size_t>(pc.batch));
  EXPECT_EQ(pc.count, pc.high - pc.batch);
}

TEST_F(Linux510Test, PcpBatchAndHighAsLinux510ComputesThem) {
  EXPECT_EQ(pcp(mm, 0).batch, 63);
  EXPECT_EQ(pcp(mm, 0).high, 378);
}

}  // namespace
}  // namespace mmfuzz::mm

TEST(AllocFailureWarning, RecordedInTheKernelsFormatUnlessNowarn) {
  using namespace mmfuzz::mm;
  MmConfig cfg;
  cfg.machine = small_machine();
  Mm mm(cfg);
  auto& pa = mm.page_alloc;
  // 16 MiB cannot satisfy an order-10 (4 MiB) request after boot left the
  // kernel image and memmap in the way at least once per retry.
  std::vector<pfn_t> held;
  for (pfn_t p; (p = pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 10)) != NO_PAGE;) held.push_back(p);
  EXPECT_EQ(pa.nr_alloc_warnings, 0u);
  EXPECT_GE(pa.nr_alloc_failures, 1u);
  mm.op_seq = 42;
  EXPECT_EQ(pa.alloc_pages(GFP_KERNEL, 10), NO_PAGE);
  ASSERT_EQ(pa.alloc_warnings.size(), 1u);
  EXPECT_EQ(pa.nr_alloc_warnings, 1u);
  EXPECT_EQ(pa.alloc_warnings[0].op_seq, 42u);
  EXPECT_EQ(format_alloc_failure(pa.alloc_warnings[0]),
            "mmfuzz: page allocation failure: order:10, mode:0xcc0(GFP_KERNEL), nodemask=(null)");
  for (int i = 0; i < 40; ++i) pa.alloc_pages(GFP_ATOMIC, 10);
  EXPECT_EQ(pa.alloc_warnings.size(), PageAlloc::kMaxRecordedWarnings);  // bounded
  EXPECT_EQ(pa.nr_alloc_warnings, 41u);
  for (pfn_t p : held) pa.__free_pages(p, 10);
}
