// Every buddy invariant fires on a state corrupted on purpose, and only that
// one; a healthy model after real work is clean in both check modes.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "mm/testing/corrupt.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;

namespace {

int get_pageblock_mt(const Mm& m, pfn_t pfn) {
  return m.page_alloc.get_pageblock_migratetype(pfn);
}

std::set<std::string> ids(const inv::CheckEngine& e) {
  std::set<std::string> s;
  for (const auto& v : e.violations()) s.insert(v.invariant);
  return s;
}

class BuddyInvariants : public ::testing::Test {
 protected:
  void SetUp() override {
    MmConfig cfg;
    cfg.machine = small_machine(32 * SZ_1M);
    mm = std::make_unique<Mm>(cfg);
  }
  std::set<std::string> sweep() {
    inv::CheckOptions o;
    o.capture_stacks = false;
    inv::CheckEngine e(*mm, o);
    e.full_sweep();
    for (const auto& v : e.violations()) last_report += v.to_text(false);
    return ids(e);
  }
  pfn_t any_free_block(unsigned min_order) {
    PageAllocCorruptor c(*mm);
    for (unsigned o = min_order; o < mm->page_alloc.max_order(); ++o)
      if (auto p = c.find_free_block(o); p != NO_PAGE) return p;
    return NO_PAGE;
  }
  std::unique_ptr<Mm> mm;
  std::string last_report;
};

using Ids = std::set<std::string>;

TEST_F(BuddyInvariants, BootedModelIsClean) {
  EXPECT_EQ(sweep(), Ids{}) << last_report;
}

TEST_F(BuddyInvariants, DefaultMachineIsCleanAfterBoot) {
  Mm big;
  inv::CheckEngine e(big, {});
  e.full_sweep();
  EXPECT_TRUE(e.clean()) << (e.clean() ? "" : e.violations()[0].to_text());
}

TEST_F(BuddyInvariants, CleanAfterMixedWorkloadInBothModes) {
  inv::CheckOptions o;
  o.full_every = 50;
  inv::CheckEngine e(*mm, o);
  std::vector<std::pair<pfn_t, unsigned>> live;
  std::uint64_t x = 12345;
  for (int i = 0; i < 2000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    e.begin_op(i, "op");
    mm->set_cpu(static_cast<int>((x >> 40) & 1));
    if (live.empty() || ((x >> 33) % 3) != 0) {
      const unsigned order = static_cast<unsigned>((x >> 20) % 5);
      const gfp_t gfps[] = {GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE,
                            GFP_ATOMIC, GFP_KERNEL | __GFP_COMP};
      const pfn_t p = mm->page_alloc.alloc_pages(gfps[(x >> 10) % 5] | __GFP_NOWARN, order);
      if (p != NO_PAGE) live.emplace_back(p, order);
    } else {
      const std::size_t k = (x >> 7) % live.size();
      mm->page_alloc.__free_pages(live[k].first, live[k].second);
      live.erase(live.begin() + static_cast<long>(k));
    }
    e.end_op();
  }
  e.finish();
  EXPECT_GE(e.nr_sweeps(), 40u);
  EXPECT_TRUE(e.clean()) << (e.clean() ? "" : e.violations()[0].to_text());
}

TEST_F(BuddyInvariants, AlignedFiresOnMisalignedBlock) {
  // Two adjacent order-0 free pages, the first at an odd pfn.
  const pfn_t q = mm->page_alloc.alloc_pages(GFP_KERNEL, 2);
  ASSERT_NE(q, NO_PAGE);
  mm->page_alloc.split_page(q, 2);
  mm->page_alloc.__free_pages(q + 1, 0);
  mm->page_alloc.__free_pages(q + 2, 0);
  mm->page_alloc.drain_all_pages();
  ASSERT_EQ(sweep(), Ids{}) << last_report;
  const int mt = static_cast<int>(mm->pfn_to_page(q + 1).index);
  PageAllocCorruptor c(*mm);
  c.remove_free_block(q + 1);
  c.remove_free_block(q + 2);
  c.insert_free_block(q + 1, 1, mt);  // one order-1 block at an odd pfn
  EXPECT_EQ(sweep(), Ids{"buddy.aligned"}) << last_report;
}

TEST_F(BuddyInvariants, AlignedFiresOnBlockOutsideItsZone) {
  const pfn_t b = any_free_block(0);
  PageAllocCorruptor(*mm).set_page_zone(b, ZONE_NORMAL);
  EXPECT_EQ(sweep(), Ids{"buddy.aligned"}) << last_report;
}

TEST_F(BuddyInvariants, OverlapFiresOnNestedFreeBlock) {
  const pfn_t b = any_free_block(1);
  ASSERT_NE(b, NO_PAGE);
  PageAllocCorruptor(*mm).insert_free_block(b + 1, 0, static_cast<int>(mm->pfn_to_page(b).index));
  EXPECT_EQ(sweep(), Ids{"buddy.overlap"}) << last_report;
}

TEST_F(BuddyInvariants, OverlapFiresOnFreeBlockOverAllocatedPage) {
  // Two allocated order-0 pages that are buddies; one is also put on a free
  // list. A page cannot be allocated (refcount >= 1) and free (refcount 0) at
  // once, so the refcount invariant fires with the overlap, and nothing else.
  const pfn_t q = mm->page_alloc.alloc_pages(GFP_KERNEL, 1);
  ASSERT_NE(q, NO_PAGE);
  mm->page_alloc.split_page(q, 1);
  PageAllocCorruptor(*mm).insert_free_block(q, 0, get_pageblock_mt(*mm, q));
  EXPECT_EQ(sweep(), (Ids{"buddy.overlap", "buddy.refcount"})) << last_report;
}

TEST_F(BuddyInvariants, CoalescedFiresOnUnmergedBuddies) {
  const pfn_t b = any_free_block(3);
  ASSERT_NE(b, NO_PAGE);
  PageAllocCorruptor(*mm).split_free_block(b);
  EXPECT_EQ(sweep(), Ids{"buddy.coalesced"}) << last_report;
}

TEST_F(BuddyInvariants, CoalescingExceptionForCmaPageblocks) {
  // An order-9 CMA block next to an order-9 movable block must not merge.
  MmConfig cfg;
  cfg.machine = small_machine(64 * SZ_1M);
  cfg.machine.cma_size = 8 * SZ_1M;
  Mm m(cfg);
  inv::CheckEngine e(m, {});
  e.full_sweep();
  EXPECT_TRUE(e.clean()) << (e.clean() ? "" : e.violations()[0].to_text());
  EXPECT_GT(m.page_alloc.totalcma_pages, 0u);
}

// A free block of two pageblocks, one of them turned HIGHATOMIC (or CMA,
// ISOLATE) behind the allocator's back: a merge the kernel refuses.
TEST_F(BuddyInvariants, MergeableFiresOnAMergeAcrossAFixedPageblock) {
  const unsigned pb = mm->page_alloc.pageblock_order();
  const pfn_t b = any_free_block(pb + 1);
  ASSERT_NE(b, NO_PAGE);
  PageAllocCorruptor(*mm).set_pageblock_migratetype(b + (pfn_t{1} << pb), MIGRATE_HIGHATOMIC);
  EXPECT_EQ(sweep(), Ids{"buddy.mergeable"}) << last_report;
  // Incremental: the op that touches the block sees it too.
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(*mm, o);
  e.begin_op(0, "touching");
  e.pages_touched(b, 1);
  e.end_op();
  EXPECT_EQ(ids(e), Ids{"buddy.mergeable"});
}

// The model keeps the rule: two order-9 buddies, one pageblock turned
// HIGHATOMIC while allocated (as reserve_highatomic_pageblock() does), stay
// apart when both are freed; a model without the rule trips the invariant.
TEST_F(BuddyInvariants, MergeableHighatomicBuddiesStayApart) {
  const unsigned pb = mm->page_alloc.pageblock_order();
  std::vector<pfn_t> got;
  pfn_t a = NO_PAGE, b = NO_PAGE;
  for (int i = 0; i < 16 && a == NO_PAGE; ++i) {
    const pfn_t p = mm->page_alloc.alloc_pages(GFP_KERNEL, pb);
    ASSERT_NE(p, NO_PAGE);
    for (const pfn_t q : got)
      if ((q ^ p) == (pfn_t{1} << pb)) a = q, b = p;
    got.push_back(p);
  }
  ASSERT_NE(a, NO_PAGE);
  PageAllocCorruptor(*mm).set_pageblock_migratetype(a, MIGRATE_HIGHATOMIC);
  for (const pfn_t p : got) mm->page_alloc.__free_pages(p, pb);
  EXPECT_EQ(sweep(), Ids{}) << last_report;
  EXPECT_TRUE(PageBuddy(mm->pfn_to_page(a)));
  EXPECT_EQ(buddy_order(mm->pfn_to_page(a)), pb);
  EXPECT_EQ(buddy_order(mm->pfn_to_page(b)), pb);
}

// Mergeable types of different kinds do merge: clean.
TEST_F(BuddyInvariants, MergeableAllowsUnmovableWithMovable) {
  const unsigned pb = mm->page_alloc.pageblock_order();
  const pfn_t b = any_free_block(pb + 1);
  ASSERT_NE(b, NO_PAGE);
  const int mt = get_pageblock_mt(*mm, b);
  PageAllocCorruptor(*mm).set_pageblock_migratetype(
      b + (pfn_t{1} << pb), mt == MIGRATE_MOVABLE ? MIGRATE_UNMOVABLE : MIGRATE_MOVABLE);
  EXPECT_FALSE(sweep().count("buddy.mergeable")) << last_report;
}

TEST_F(BuddyInvariants, MetadataFiresOnStrayPageBuddy) {
  const pfn_t p = mm->page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, NO_PAGE);
  PageAllocCorruptor(*mm).set_page_buddy(p, 0);
  EXPECT_EQ(sweep(), Ids{"buddy.metadata"}) << last_report;
}

TEST_F(BuddyInvariants, MetadataFiresOnWrongOrderOnList) {
  const pfn_t b = any_free_block(2);
  const unsigned order = buddy_order(mm->pfn_to_page(b));
  PageAllocCorruptor(*mm).set_buddy_order(b, order - 1);
  EXPECT_EQ(sweep(), Ids{"buddy.metadata"}) << last_report;
}

TEST_F(BuddyInvariants, MetadataFiresOnCorruptList) {
  const pfn_t b = any_free_block(0);
  PageAllocCorruptor(*mm).break_next_link(b);
  EXPECT_TRUE(sweep().count("buddy.metadata")) << last_report;
}

TEST_F(BuddyInvariants, CountsFiresOnNrFree) {
  const auto& z = mm->page_alloc.node_data[0].node_zones[ZONE_DMA];
  PageAllocCorruptor(*mm).set_nr_free(0, ZONE_DMA, 5, z.free_area_[5].nr_free + 1);
  EXPECT_EQ(sweep(), Ids{"buddy.counts"}) << last_report;
}

TEST_F(BuddyInvariants, CountsFiresOnNrFreePages) {
  const auto& z = mm->page_alloc.node_data[0].node_zones[ZONE_DMA];
  PageAllocCorruptor(*mm).set_zone_stat(0, ZONE_DMA, NR_FREE_PAGES, z.vm_stat[NR_FREE_PAGES] - 1);
  EXPECT_EQ(sweep(), Ids{"buddy.counts"}) << last_report;
}

TEST_F(BuddyInvariants, PcpFiresOnCountMismatch) {
  ASSERT_NE(mm->page_alloc.alloc_pages(GFP_KERNEL, 0), NO_PAGE);  // refills cpu 0's list
  const auto& pcp = mm->page_alloc.node_data[0].node_zones[ZONE_DMA].per_cpu_pageset[0];
  ASSERT_GT(pcp.count, 0);
  PageAllocCorruptor(*mm).set_pcp_count(0, ZONE_DMA, 0, pcp.count + 1);
  EXPECT_EQ(sweep(), Ids{"buddy.pcp"}) << last_report;
}

TEST_F(BuddyInvariants, RefcountFiresOnFreePageWithReference) {
  const pfn_t b = any_free_block(1);
  PageAllocCorruptor(*mm).set_refcount(b + 1, 1);
  EXPECT_EQ(sweep(), Ids{"buddy.refcount"}) << last_report;
}

TEST_F(BuddyInvariants, AccountingFiresOnLeakedBlock) {
  const pfn_t b = any_free_block(0);
  PageAllocCorruptor(*mm).remove_free_block(b);
  EXPECT_EQ(sweep(), Ids{"buddy.accounting"}) << last_report;
}

TEST_F(BuddyInvariants, AccountingFiresOnManagedCount) {
  const auto& z = mm->page_alloc.node_data[0].node_zones[ZONE_DMA];
  PageAllocCorruptor(*mm).set_managed_pages(0, ZONE_DMA, z.managed_pages + 1);
  EXPECT_EQ(sweep(), Ids{"buddy.accounting"}) << last_report;
}

TEST_F(BuddyInvariants, IncrementalSeesOnlyWhatTheOpTouched) {
  const pfn_t b = any_free_block(3);
  PageAllocCorruptor(*mm).split_free_block(b);
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(*mm, o);
  e.begin_op(0, "untouched");
  e.end_op();
  EXPECT_TRUE(e.clean());  // nothing touched, nothing checked
  e.begin_op(1, "touching");
  e.pages_touched(b, 1);
  e.end_op();
  ASSERT_EQ(ids(e), Ids{"buddy.coalesced"});
  EXPECT_EQ(e.violations()[0].op_index, 1);
  EXPECT_EQ(e.violations()[0].op_name, "touching");
}

TEST_F(BuddyInvariants, IncrementalCountersCatchNrFreePages) {
  const auto& z = mm->page_alloc.node_data[0].node_zones[ZONE_DMA];
  PageAllocCorruptor(*mm).set_zone_stat(0, ZONE_DMA, NR_FREE_PAGES, z.vm_stat[NR_FREE_PAGES] + 8);
  inv::CheckEngine e(*mm, {});
  e.begin_op(7, "alloc_pages");
  const pfn_t p = mm->page_alloc.alloc_pages(GFP_KERNEL, 4);
  ASSERT_NE(p, NO_PAGE);
  e.end_op();
  EXPECT_EQ(ids(e), Ids{"buddy.counts"});
}

// The current CPU's pcp count against its lists, after each op that
// touched the zone: a page on a list with a count of zero.
TEST_F(BuddyInvariants, IncrementalPcpCountAgainstItsLists) {
  mm->page_alloc.drain_all_pages();
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(*mm, o);
  e.begin_op(0, "alloc_pages");
  const pfn_t p = mm->page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, NO_PAGE);
  e.end_op();
  EXPECT_TRUE(e.clean());
  e.begin_op(1, "__free_pages");
  mm->page_alloc.__free_pages(p, 0);  // onto cpu 0's list
  ASSERT_EQ(mm->page_alloc.node_data[0].node_zones[ZONE_DMA].per_cpu_pageset[0].count, 1);
  PageAllocCorruptor(*mm).set_pcp_count(0, ZONE_DMA, 0, 0);
  e.end_op();
  ASSERT_EQ(ids(e), Ids{"buddy.pcp"});
  EXPECT_NE(e.violations()[0].title.find("pcp count is 0 but its lists hold at least 1 pages"),
            std::string::npos)
      << e.violations()[0].title;
}

// An allocation is judged by the zone state its watermark check saw: the
// min watermark raised under a finished allocation (as a racing
// setup_per_zone_wmarks() would) makes it one that went below its mark.
TEST_F(BuddyInvariants, WatermarkFiresOnAllocationBelowItsMark) {
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(*mm, o);
  const auto& z = mm->page_alloc.node_data[0].node_zones[ZONE_DMA];
  e.begin_op(0, "alloc_pages");
  ASSERT_NE(mm->page_alloc.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  e.end_op();
  EXPECT_TRUE(e.clean());
  const auto free = static_cast<std::uint64_t>(z.vm_stat[NR_FREE_PAGES]);
  e.begin_op(1, "alloc_pages");
  ASSERT_NE(mm->page_alloc.alloc_pages(GFP_KERNEL, 0), NO_PAGE);
  PageAllocCorruptor(*mm).set_watermark(0, ZONE_DMA, WMARK_MIN, free + 1);
  e.end_op();
  ASSERT_EQ(ids(e), Ids{"buddy.watermark"});
  EXPECT_EQ(e.violations()[0].op_index, 1);
  EXPECT_NE(e.violations()[0].title.find("GFP_KERNEL"), std::string::npos)
      << e.violations()[0].title;
  // __GFP_MEMALLOC may take pages below every watermark.
  e.clear();
  e.begin_op(2, "alloc_pages");
  ASSERT_NE(mm->page_alloc.alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 0), NO_PAGE);
  e.end_op();
  EXPECT_TRUE(e.clean()) << e.violations()[0].to_text(false);
}

// The rule and the allocator agree at the edge: with the zone exactly at
// its watermarks, GFP_ATOMIC may take a page (half and a quarter below min),
// GFP_NOWAIT and GFP_KERNEL may not.
TEST_F(BuddyInvariants, WatermarkAtomicMayGoAQuarterBelowMin) {
  mm->page_alloc.drain_all_pages();
  const auto& z = mm->page_alloc.node_data[0].node_zones[ZONE_DMA];
  const auto free = static_cast<std::uint64_t>(z.vm_stat[NR_FREE_PAGES]);
  PageAllocCorruptor c(*mm);
  for (const int w : {WMARK_MIN, WMARK_LOW, WMARK_HIGH}) c.set_watermark(0, ZONE_DMA, w, free);
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(*mm, o);
  e.begin_op(0, "alloc_pages");
  EXPECT_EQ(mm->page_alloc.alloc_pages(GFP_NOWAIT | __GFP_NOWARN, 0), NO_PAGE);
  EXPECT_EQ(mm->page_alloc.alloc_pages(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 0), NO_PAGE);
  EXPECT_NE(mm->page_alloc.alloc_pages(GFP_ATOMIC, 0), NO_PAGE);
  e.end_op();
  EXPECT_TRUE(e.clean()) << e.violations()[0].to_text(false);
}

TEST_F(BuddyInvariants, SelectionDisablesAnInvariant) {
  const pfn_t b = any_free_block(3);
  PageAllocCorruptor(*mm).split_free_block(b);
  inv::CheckOptions o;
  o.checks = "all,-buddy.coalesced";
  inv::CheckEngine e(*mm, o);
  e.full_sweep();
  EXPECT_TRUE(e.clean());
}

TEST_F(BuddyInvariants, ReportIsKernelStyleTextAndJson) {
  const pfn_t b = any_free_block(3);
  PageAllocCorruptor(*mm).split_free_block(b);
  inv::CheckEngine e(*mm, {});
  e.begin_op(3, "__free_pages");
  e.full_sweep();
  ASSERT_EQ(e.violations().size(), 1u);
  const auto& v = e.violations()[0];
  const std::string text = v.to_text();
  EXPECT_NE(text.find("BUG: mmfuzz invariant buddy.coalesced"), std::string::npos) << text;
  EXPECT_NE(text.find("page:"), std::string::npos) << text;
  EXPECT_NE(text.find("after op #3 (__free_pages)"), std::string::npos) << text;
  EXPECT_NE(text.find("host stack:"), std::string::npos) << text;
  EXPECT_NE(text.find("BuddyChecker"), std::string::npos) << "symbolized host stack expected:\n"
                                                          << text;
  EXPECT_EQ(v.signature(), "buddy.coalesced|__free_pages|page_alloc");
  const auto j = nlohmann::json::parse(v.to_json().dump());
  EXPECT_EQ(j["invariant"], "buddy.coalesced");
  EXPECT_EQ(j["kind"], "invariant");
  EXPECT_EQ(j["op_index"], 3);
  EXPECT_EQ(j["pfns"][0], b);
}

TEST(CheckSelection, GlobsAndExclusions) {
  EXPECT_TRUE(inv::glob_match("buddy.*", "buddy.pcp"));
  EXPECT_FALSE(inv::glob_match("buddy.*", "page_alloc.double_free"));
  EXPECT_TRUE(inv::glob_match("*double*", "page_alloc.double_free"));
  auto s = inv::CheckSelection::parse("all,-buddy.pcp");
  EXPECT_TRUE(s.enabled("buddy.coalesced"));
  EXPECT_FALSE(s.enabled("buddy.pcp"));
  auto only = inv::CheckSelection::parse("page_alloc.*");
  EXPECT_TRUE(only.enabled("page_alloc.double_free"));
  EXPECT_FALSE(only.enabled("buddy.counts"));
  auto excl = inv::CheckSelection::parse("-buddy.refcount");
  EXPECT_TRUE(excl.enabled("buddy.counts"));
  EXPECT_FALSE(excl.enabled("buddy.refcount"));
  EXPECT_THROW(inv::CheckSelection::parse("bogus.check"), ConfigError);
  EXPECT_THROW(inv::CheckSelection::parse(""), ConfigError);
  // Parses are memoized: the same answers the second time, errors included.
  EXPECT_FALSE(inv::CheckSelection::parse("all,-buddy.pcp").enabled("buddy.pcp"));
  EXPECT_TRUE(inv::CheckSelection::parse("all").enabled("vmalloc.guard"));
  EXPECT_THROW(inv::CheckSelection::parse("bogus.check"), ConfigError);
}

// A selection without a family reports nothing from it (its checker is dropped).
TEST(CheckSelection, UnselectedFamiliesReportNothing) {
  MmConfig cfg;
  cfg.machine = small_machine();
  Mm m(cfg);
  const pfn_t pfn = m.page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  m.pfn_to_page(pfn)._refcount = 0;  // an allocated head without a reference
  for (const char* spec : {"buddy.*", "pgtable.*,slab.*"}) {
    inv::CheckOptions o;
    o.checks = spec;
    inv::CheckEngine e(m, o);
    e.full_sweep();
    EXPECT_EQ(e.violations().empty(), std::string(spec) != "buddy.*") << spec;
  }
}

TEST(CheckSelection, InvariantIdsAreUniqueAndDescribed) {
  const auto ids = inv::all_invariant_ids();
  const std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "an invariant id is listed twice";
  for (const auto& id : ids) EXPECT_NE(inv::invariant_description(id), "") << id;
}

TEST(Misuse, EachMisuseBecomesOneViolation) {
  MmConfig cfg;
  cfg.machine = small_machine();
  Mm m(cfg);
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(m, o);
  const pfn_t p = m.page_alloc.alloc_pages(GFP_KERNEL, 0);
  m.page_alloc.__free_pages(p, 0);
  e.begin_op(2, "__free_pages");
  m.page_alloc.__free_pages(p, 0);  // double free (on the pcp list)
  e.end_op();
  ASSERT_EQ(ids(e), Ids{"page_alloc.double_free"});
  const auto& v = e.violations()[0];
  EXPECT_EQ(v.kind, inv::ViolationKind::misuse);
  EXPECT_NE(v.title.find("BUG: Bad page state in process mmfuzz"), std::string::npos);
  EXPECT_NE(v.to_text().find("page dumped because: page is already free on a per-cpu list"),
            std::string::npos)
      << v.to_text();
  e.clear();
  const pfn_t q = m.page_alloc.alloc_pages(GFP_KERNEL, 2);
  m.page_alloc.__free_pages(q, 1);
  EXPECT_EQ(ids(e), Ids{"page_alloc.wrong_order"});
  e.clear();
  m.page_alloc.__free_pages(q + 1, 0);
  EXPECT_EQ(ids(e), Ids{"page_alloc.free_tail"});
  e.clear();
  m.page_alloc.__free_pages(m.kimage.code_start >> 12, 0);
  EXPECT_EQ(ids(e), Ids{"page_alloc.free_reserved"});
  e.clear();
  m.page_alloc.free_pages(0xffff800000001000ull, 0);
  EXPECT_EQ(ids(e), Ids{"page_alloc.bad_pfn"});
  e.clear();
  m.page_alloc.__free_pages(q, 2);
  e.finish();
  EXPECT_TRUE(e.clean()) << (e.clean() ? "" : e.violations()[0].to_text());
}

}  // namespace
