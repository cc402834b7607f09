// KmemStat: perf kmem stat's numbers and layout from hand-built event
// sequences (every expected number worked out by hand in the comments), then
// the real arm64 6.1 boot trace against the numbers its README gives.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "analysis/kmem_stat.h"
#include "mm/page_alloc/gfp.h"
#include "trace/source.h"

namespace mmfuzz::analysis {
namespace {

constexpr std::uint32_t kGfpKernel = 0xcc0;

TraceEvent slab_alloc(EventType t, std::string_view cs, std::uint64_t ptr, std::uint64_t req,
                      std::uint64_t alloc, int cpu, std::uint32_t gfp = kGfpKernel, int node = -1) {
  TraceEvent e;
  e.type = t;
  e.call_site = cs;
  e.ptr = ptr;
  e.bytes_req = req;
  e.bytes_alloc = alloc;
  e.cpu = cpu;
  e.gfp = gfp;
  e.has_gfp = true;
  e.node = node;
  return e;
}
TraceEvent kmalloc(std::string_view cs, std::uint64_t ptr, std::uint64_t req, std::uint64_t alloc,
                   int cpu = 0, std::uint32_t gfp = kGfpKernel) {
  return slab_alloc(EventType::kmalloc, cs, ptr, req, alloc, cpu, gfp);
}
TraceEvent cache_alloc(std::string_view cs, std::uint64_t ptr, std::uint64_t size, int cpu = 0) {
  return slab_alloc(EventType::kmem_cache_alloc, cs, ptr, size, size, cpu);
}
TraceEvent kfree(std::uint64_t ptr, int cpu = 0) {
  TraceEvent e;
  e.type = EventType::kfree;
  e.call_site = "free_site+0x10/0x20";
  e.ptr = ptr;
  e.cpu = cpu;
  return e;
}
TraceEvent cache_free(std::uint64_t ptr, std::string_view name, int cpu = 0) {
  TraceEvent e = kfree(ptr, cpu);
  e.type = EventType::kmem_cache_free;
  e.name = name;
  return e;
}
TraceEvent page_event(EventType t, std::uint64_t pfn, unsigned order, int mt = 0, int cpu = 0) {
  TraceEvent e;
  e.type = t;
  e.pfn = pfn;
  e.order = order;
  e.migratetype = mt;
  e.cpu = cpu;
  e.gfp = kGfpKernel;
  return e;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}
bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

// Three allocations, two frees (one on the other CPU), one object left.
//   kmalloc   A: req 64,  alloc 128, cpu 0   freed by kfree on cpu 0
//   kmalloc   B: req 32,  alloc 128, cpu 0   never freed
//   cache     C: req 56,  alloc 56,  cpu 0   freed by kmem_cache_free on cpu 1
// requested 152, allocated 312, freed 128 + 56 = 184, wasted 160,
// fragmentation 100 - 100 * 152 / 312 = 51.282051...%.
KmemStat three_objects() {
  KmemStat k;
  k.add(kmalloc("tracepoint_add_func+0x284/0x3b0", 0xa000, 64, 128));
  k.add(kmalloc("tracepoint_add_func+0x284/0x3b0", 0xb000, 32, 128));
  k.add(cache_alloc("__trace_define_field+0x50/0xd0", 0xc000, 56));
  k.add(kfree(0xa000, 0));
  k.add(cache_free(0xc000, "ftrace_event_field", 1));
  return k;
}

TEST(KmemStat, AllocFreePairsGiveTheSlabSummary) {
  const KmemStat k = three_objects();
  const SlabTotals& s = k.slab();
  EXPECT_EQ(s.nr_allocs, 3u);
  EXPECT_EQ(s.bytes_req, 152u);
  EXPECT_EQ(s.bytes_alloc, 312u);
  EXPECT_EQ(s.bytes_freed, 184u);
  EXPECT_EQ(s.nr_frees, 2u);
  EXPECT_EQ(s.nr_pingpong, 1u);
  EXPECT_EQ(s.live_objects, 1u);
  EXPECT_EQ(s.live_bytes_alloc, 128u);
  EXPECT_EQ(s.nr_cross_node_allocs, 0u);
  EXPECT_EQ(k.events(), 5u);
  const std::string r = k.report();
  EXPECT_TRUE(has_line(r, "SUMMARY (SLAB allocator)")) << r;
  EXPECT_TRUE(has_line(r, "========================")) << r;
  EXPECT_TRUE(has_line(r, "Total bytes requested: 152")) << r;
  EXPECT_TRUE(has_line(r, "Total bytes allocated: 312")) << r;
  EXPECT_TRUE(has_line(r, "Total bytes freed:     184")) << r;
  EXPECT_TRUE(has_line(r, "Net total bytes allocated: 128")) << r;
  EXPECT_TRUE(has_line(r, "Total bytes wasted on internal fragmentation: 160")) << r;
  EXPECT_TRUE(has_line(r, "Internal fragmentation: 51.282051%")) << r;
  EXPECT_TRUE(has_line(r, "Cross CPU allocations: 0/3")) << r;
  EXPECT_TRUE(has_line(r, "Cross CPU frees (ping-pong)/matched   : 1/2")) << r;
  EXPECT_TRUE(has_line(r, "Live objects at the end               : 1 (128 bytes allocated)")) << r;
}

TEST(KmemStat, CallsiteTableHasPerfsLayout) {
  const KmemStat k = three_objects();
  const auto lines = lines_of(k.report());
  ASSERT_GE(lines.size(), 6u);
  const std::string dash105(105, '-');
  EXPECT_EQ(lines[0], dash105);
  EXPECT_EQ(lines[1],
            " Callsite                           | Total_alloc/Per | Total_req/Per   | Hit      | "
            "Ping-pong | Frag");
  EXPECT_EQ(lines[2], dash105);
  // frag,hit,bytes: tracepoint_add_func (96 of 256 requested: 62.5%) before
  // __trace_define_field (0%). perf prints "symbol+hexoffset".
  EXPECT_EQ(lines[3],
            " tracepoint_add_func+284            |       256/128   |        96/48    |        2 | "
            "        0 | 62.500%");
  EXPECT_EQ(lines[4],
            " __trace_define_field+50            |        56/56    |        56/56    |        1 | "
            "        1 |  0.000%");
  EXPECT_EQ(lines[5], dash105);
}

TEST(KmemStat, CutTableEndsWithPerfsEllipsisRow) {
  const KmemStat k = three_objects();
  const auto lines = lines_of(k.report(1));
  ASSERT_GE(lines.size(), 6u);
  EXPECT_EQ(lines[3].substr(0, 24), " tracepoint_add_func+284");
  EXPECT_EQ(lines[4],
            " ...                                | ...             | ...             | ...      | "
            "...       | ...   ");
  EXPECT_EQ(lines[5], std::string(105, '-'));
  // Exactly as many rows as asked for: no ellipsis.
  const auto all = lines_of(k.report(2));
  EXPECT_EQ(all[5], std::string(105, '-'));
}

TEST(KmemStat, CallsitesSortByFragThenHitThenBytes) {
  KmemStat k;
  // a: 1 hit, 50% frag; b: 2 hits 50%; c: 2 hits 50% more bytes; d: 0%.
  k.add(kmalloc("a+0x0/0x10", 1, 16, 32));
  k.add(kmalloc("b+0x0/0x10", 2, 16, 32));
  k.add(kmalloc("b+0x0/0x10", 3, 16, 32));
  k.add(kmalloc("c+0x0/0x10", 4, 64, 128));
  k.add(kmalloc("c+0x0/0x10", 5, 64, 128));
  k.add(kmalloc("d+0x0/0x10", 6, 32, 32));
  k.add(kmalloc("d+0x0/0x10", 7, 32, 32));
  k.add(kmalloc("d+0x0/0x10", 8, 32, 32));
  const auto cs = k.callsites();
  ASSERT_EQ(cs.size(), 4u);
  EXPECT_EQ(cs[0].call_site, "c+0x0/0x10");
  EXPECT_EQ(cs[1].call_site, "b+0x0/0x10");
  EXPECT_EQ(cs[2].call_site, "a+0x0/0x10");
  EXPECT_EQ(cs[3].call_site, "d+0x0/0x10");
}

TEST(KmemStat, CrossCpuFreesCountPerCallsite) {
  KmemStat k;
  k.add(kmalloc("x+0x4/0x8", 0x100, 8, 128, 0));
  k.add(kmalloc("x+0x4/0x8", 0x200, 8, 128, 1));
  k.add(kmalloc("y+0x4/0x8", 0x300, 8, 128, 0));
  k.add(kfree(0x100, 1));  // ping-pong
  k.add(kfree(0x200, 1));  // same CPU
  k.add(kfree(0x300, 1));  // ping-pong
  EXPECT_EQ(k.slab().nr_pingpong, 2u);
  for (const auto& c : k.callsites()) EXPECT_EQ(c.pingpong, 1u) << c.call_site;
  const auto caches = k.caches();
  ASSERT_EQ(caches.size(), 1u);
  EXPECT_EQ(caches[0].name, "kmalloc-128");
  EXPECT_EQ(caches[0].pingpong, 2u);
}

TEST(KmemStat, CrossCpuAllocationsArePerfsNodeMismatches) {
  KmemStatOptions o;
  o.cpu_node = {0, 1};
  KmemStat k(o);
  k.add(slab_alloc(EventType::kmalloc, "n+0x0/0x4", 1, 8, 8, 0, kGfpKernel, 1));       // cross
  k.add(slab_alloc(EventType::kmalloc, "n+0x0/0x4", 2, 8, 8, 1, kGfpKernel, 1));       // local
  k.add(slab_alloc(EventType::kmalloc, "n+0x0/0x4", 3, 8, 8, 1, kGfpKernel, -1));      // any node
  k.add(slab_alloc(EventType::kmalloc_node, "n+0x0/0x4", 4, 8, 8, 1, kGfpKernel, 0));  // cross
  EXPECT_EQ(k.slab().nr_cross_node_allocs, 2u);
  EXPECT_TRUE(has_line(k.report(), "Cross CPU allocations: 2/4"));
}

TEST(KmemStat, KfreeNullIsCountedApartAndFreesNothing) {
  KmemStat k;
  k.add(kmalloc("k+0x0/0x4", 0x10, 8, 128));
  k.add(kfree(0));
  k.add(kfree(0));
  k.add(kfree(0, 1));
  k.add(cache_free(0, "names_cache"));
  EXPECT_EQ(k.slab().kfree_null, 3u);
  EXPECT_EQ(k.slab().cache_free_null, 1u);
  EXPECT_EQ(k.slab().nr_frees, 0u);
  EXPECT_EQ(k.slab().bytes_freed, 0u);
  EXPECT_EQ(k.slab().free_only_kfree + k.slab().free_only_cache, 0u);
  EXPECT_EQ(k.slab().live_objects, 1u);
  EXPECT_TRUE(has_line(k.report(), "kfree(NULL) calls                     : 3"));
}

TEST(KmemStat, FreesOfUnseenPointersAreFreeOnly) {
  KmemStat k;
  k.add(kfree(0xdead));
  k.add(cache_free(0xbeef, "maple_node"));
  k.add(cache_free(0xbef0, "maple_node", 1));
  const SlabTotals& s = k.slab();
  EXPECT_EQ(s.free_only_kfree, 1u);
  EXPECT_EQ(s.free_only_cache, 2u);
  EXPECT_EQ(s.nr_frees, 0u);
  EXPECT_EQ(s.bytes_freed, 0u);
  const auto caches = k.caches();
  ASSERT_EQ(caches.size(), 2u);
  EXPECT_EQ(caches[0].name, "maple_node");  // 0 bytes each: more frees first
  EXPECT_EQ(caches[0].frees, 2u);
  EXPECT_EQ(caches[0].free_only, 2u);
  EXPECT_EQ(caches[0].allocs, 0u);
  EXPECT_EQ(caches[0].live(), 0u);
  EXPECT_EQ(caches[1].name, "(unknown cache)");
  EXPECT_EQ(caches[1].free_only, 1u);
  EXPECT_TRUE(has_line(k.report(),
                       "Free-only frees                       : 3 (kfree 1, kmem_cache_free 2)"));
}

TEST(KmemStat, CachesAreNamedAtTheFreeAndKmallocBySize) {
  KmemStat k;
  k.add(cache_alloc("f+0x0/0x4", 0x1000, 56));
  k.add(cache_alloc("f+0x0/0x4", 0x2000, 56));
  k.add(cache_alloc("g+0x0/0x4", 0x3000, 200));
  k.add(kmalloc("h+0x0/0x4", 0x4000, 40, 64, 0, kGfpKernel | mm::__GFP_ACCOUNT));
  k.add(kmalloc("h+0x0/0x4", 0x5000, 1000, 1024));
  k.add(kmalloc("h+0x0/0x4", 0x6000, 9000, 16384));
  k.add(cache_free(0x1000, "ftrace_event_field"));
  k.add(kfree(0x3000));  // kfree of a cache object: g's objects were never named
  const auto caches = k.caches();
  // By bytes: kmalloc-large 16384, kmalloc-1k 1024, unknown 200 (g's),
  // ftrace_event_field 56 + 56 = 112 (0x2000, live, goes where f's objects
  // of 56 bytes went), kmalloc-cg-64 64.
  ASSERT_EQ(caches.size(), 5u);
  EXPECT_EQ(caches[0].name, "kmalloc-large");
  EXPECT_EQ(caches[1].name, "kmalloc-1k");
  EXPECT_EQ(caches[2].name, "(unknown cache)");
  EXPECT_EQ(caches[2].allocs, 1u);
  EXPECT_EQ(caches[2].frees, 1u);
  EXPECT_EQ(caches[2].live(), 0u);
  EXPECT_EQ(caches[2].bytes_alloc, 200u);
  EXPECT_EQ(caches[3].name, "ftrace_event_field");
  EXPECT_EQ(caches[3].allocs, 2u);
  EXPECT_EQ(caches[3].frees, 1u);
  EXPECT_EQ(caches[3].live(), 1u);
  EXPECT_EQ(caches[3].by_call_site, 1u);
  EXPECT_EQ(caches[4].name, "kmalloc-cg-64");
  const auto lines = lines_of(k.report());
  bool header = false;
  for (const auto& l : lines)
    if (l.rfind(" Cache                              | Total_alloc/Per | Total_req/Per   | "
                "Allocs   | Frees    | Free-only | Live     | Ping-pong | Frag",
                0) == 0)
      header = true;
  EXPECT_TRUE(header);
  EXPECT_TRUE(has_line(k.report(),
                       " ftrace_event_field                 |       112/56    |       "
                       "112/56    |        2 |        1 |         0 |        1 |    "
                       "     0 |  0.000%"))
      << k.report();
}

TEST(KmemStat, KmallocCacheNamesFollowKmallocType) {
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel, 128), "kmalloc-128");
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel | mm::__GFP_ACCOUNT, 192), "kmalloc-cg-192");
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel | mm::__GFP_RECLAIMABLE | mm::__GFP_ACCOUNT, 256),
            "kmalloc-rcl-256");
  EXPECT_EQ(kmalloc_cache_name(mm::__GFP_DMA | mm::__GFP_RECLAIMABLE, 512), "dma-kmalloc-512");
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel, 2048), "kmalloc-2k");
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel, 8192), "kmalloc-8k");
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel, 8193), "kmalloc-large");
  EXPECT_EQ(kmalloc_cache_name(kGfpKernel, 1u << 20, 4u << 20), "kmalloc-1M");
}

TEST(KmemStat, AllocationOverALivePointerReplacesIt) {
  KmemStat k;
  k.add(cache_alloc("m+0x0/0x4", 0x50, 64));
  k.add(cache_alloc("m+0x0/0x4", 0x50, 64));  // the first one's free was not traced
  k.add(cache_free(0x50, "maple_node"));
  EXPECT_EQ(k.slab().alloc_over_live, 1u);
  EXPECT_EQ(k.slab().nr_frees, 1u);
  EXPECT_EQ(k.slab().live_objects, 0u);
  EXPECT_EQ(k.slab().live_bytes_alloc, 0u);
  EXPECT_EQ(k.slab().bytes_freed, 64u);
}

TEST(KmemStat, FailedSlabAllocationIsCountedAsPerfDoes) {
  KmemStat k;
  k.add(kmalloc("z+0x0/0x4", 0, 100, 128));
  EXPECT_EQ(k.slab().nr_allocs, 1u);
  EXPECT_EQ(k.slab().bytes_alloc, 128u);
  EXPECT_EQ(k.slab().failed_allocs, 1u);
  EXPECT_EQ(k.slab().live_objects, 0u);
  k.add(kfree(0));  // kfree(NULL), not a free of the failed one
  EXPECT_EQ(k.slab().nr_frees, 0u);
  EXPECT_EQ(k.slab().kfree_null, 1u);
}

// Pages: 0x40000 order 0 (Unmovable), 0x40010 order 2 (Movable), a failed
// order-3 request; frees of 0x40000 (and its batched repeat) and of
// 0x50000, never seen allocated; pcp traffic in between.
//   requests 3 = 4 + 16 + 32 KB = 52 KB; frees 2 = 8 KB;
//   alloc+freed 1 = 4 KB; alloc-only 3 - 1 = 2 = 48 KB; free-only 1 = 4 KB;
//   failures 1 = 32 KB.
KmemStat some_pages() {
  KmemStat k;
  k.add(page_event(EventType::mm_page_alloc_zone_locked, 0x40000, 0));
  k.add(page_event(EventType::mm_page_alloc, 0x40000, 0, 0));
  k.add(page_event(EventType::mm_page_alloc, 0x40010, 2, 1, 1));
  TraceEvent fail = page_event(EventType::mm_page_alloc, 0, 3, 0);
  fail.failed = true;
  k.add(fail);
  k.add(page_event(EventType::mm_page_free, 0x40000, 0, -1, 1));
  k.add(page_event(EventType::mm_page_free_batched, 0x40000, 0, -1, 1));
  k.add(page_event(EventType::mm_page_free, 0x50000, 0, -1, 0));
  k.add(page_event(EventType::mm_page_pcpu_drain, 0x40000, 0, 0));
  return k;
}

TEST(KmemStat, PageSummaryCountsMmPageFreeOnly) {
  const KmemStat k = some_pages();
  const PageTotals& p = k.page();
  EXPECT_EQ(p.nr_allocs, 3u);
  EXPECT_EQ(p.alloc_bytes, 53248u);
  EXPECT_EQ(p.nr_frees, 2u);
  EXPECT_EQ(p.free_bytes, 8192u);
  EXPECT_EQ(p.nr_nomatch, 1u);
  EXPECT_EQ(p.alloc_freed(), 1u);
  EXPECT_EQ(p.nr_fails, 1u);
  EXPECT_EQ(p.fail_bytes, 32768u);
  EXPECT_EQ(p.batched_frees, 1u);
  EXPECT_EQ(p.zone_locked, 1u);
  EXPECT_EQ(p.pcpu_drain, 1u);
  EXPECT_EQ(p.cross_cpu_frees, 1u);
  EXPECT_EQ(p.live_pages, 1u);
  EXPECT_EQ(p.order_mt[0][0], 1u);
  EXPECT_EQ(p.order_mt[2][1], 1u);
  EXPECT_EQ(p.order_mt[3][0], 0u);  // failures are not in the table
  const std::string r = k.report();
  EXPECT_TRUE(has_line(r, "SUMMARY (page allocator)")) << r;
  EXPECT_TRUE(
      has_line(r, "Total allocation requests     :                3   [               52 KB ]"))
      << r;
  EXPECT_TRUE(
      has_line(r, "Total free requests           :                2   [                8 KB ]"));
  EXPECT_TRUE(
      has_line(r, "Total alloc+freed requests    :                1   [                4 KB ]"));
  EXPECT_TRUE(
      has_line(r, "Total alloc-only requests     :                2   [               48 KB ]"));
  EXPECT_TRUE(
      has_line(r, "Total free-only requests      :                1   [                4 KB ]"));
  EXPECT_TRUE(
      has_line(r, "Total allocation failures     :                1   [               32 KB ]"));
}

TEST(KmemStat, OrderTableHasPerfsLayout) {
  const std::string r = some_pages().report();
  EXPECT_TRUE(
      has_line(r, "Order     Unmovable       Movable   Reclaimable    HighAtomic  CMA/Isolated"));
  EXPECT_TRUE(
      has_line(r, "-----  ------------  ------------  ------------  ------------  ------------"));
  EXPECT_TRUE(
      has_line(r, "    0             1             .             .             .             ."));
  EXPECT_TRUE(
      has_line(r, "    1             .             .             .             .             ."));
  EXPECT_TRUE(
      has_line(r, "    2             .             1             .             .             ."));
  EXPECT_TRUE(
      has_line(r, "   10             .             .             .             .             ."));
}

TEST(KmemStat, LargeKmallocIsAlsoAPageAllocationAsInPerf) {
  KmemStat k;
  k.add(kmalloc("big+0x0/0x4", 0xffff000040100000, 12000, 16384));
  k.add(page_event(EventType::mm_page_alloc, 0x40100, 2, 0));
  EXPECT_EQ(k.slab().nr_allocs, 1u);
  EXPECT_EQ(k.slab().bytes_alloc, 16384u);
  EXPECT_EQ(k.page().nr_allocs, 1u);
  EXPECT_EQ(k.page().alloc_bytes, 16384u);
}

TEST(KmemStat, ThousandsSeparatorsAsPerfUnderAnEnglishLocale) {
  KmemStat k;
  for (std::uint64_t i = 1; i <= 1000; ++i) k.add(kmalloc("s+0x0/0x4", i, 1000, 1024));
  const std::string r = k.report();
  EXPECT_TRUE(has_line(r, "Total bytes requested: 1,000,000")) << r;
  EXPECT_TRUE(has_line(r, "Total bytes allocated: 1,024,000")) << r;
  EXPECT_TRUE(has_line(r, "Cross CPU allocations: 0/1,000")) << r;
}

TEST(KmemStat, JsonCarriesTheSummaries) {
  const KmemStat k = three_objects();
  const nlohmann::json j = k.to_json(1);
  EXPECT_EQ(j.at("events"), 5);
  EXPECT_EQ(j.at("slab").at("total_bytes_requested"), 152);
  EXPECT_EQ(j.at("slab").at("total_bytes_freed"), 184);
  EXPECT_EQ(j.at("slab").at("cross_cpu_frees"), 1);
  EXPECT_EQ(j.at("slab").at("callsites").size(), 1u);
  EXPECT_EQ(j.at("slab").at("callsites_total"), 2);
  EXPECT_EQ(j.at("slab").at("callsites")[0].at("call_site"), "tracepoint_add_func+0x284/0x3b0");
  EXPECT_DOUBLE_EQ(j.at("slab").at("callsites")[0].at("frag_percent").get<double>(), 62.5);
  const nlohmann::json p = some_pages().to_json();
  EXPECT_EQ(p.at("page").at("allocation_failures"), 1);
  EXPECT_EQ(p.at("page").at("order_migratetype")[2][1], 1);
  EXPECT_EQ(p.at("page").at("migratetypes")[1], "Movable");
}

// --- perf kmem's sort keys, --caller and --alloc tables ---------------------

TEST(KmemStatSort, KeysSplitIntoSlabAndPageLists) {
  const StatSort d = parse_stat_sort("frag");
  EXPECT_EQ(slab_sort_names(d.slab), "frag");
  EXPECT_EQ(page_sort_names(d.page), "bytes,hit");  // no page key: perf's default
  const StatSort both = parse_stat_sort("bytes,order,ptr");
  EXPECT_EQ(slab_sort_names(both.slab), "bytes,ptr");
  EXPECT_EQ(page_sort_names(both.page), "bytes,order");
  EXPECT_EQ(slab_sort_names(StatSort{}.slab), "frag,hit,bytes");
  for (const char* bad : {"size", "", "hit,", "frag,,hit", "Frag"})
    EXPECT_THROW(parse_stat_sort(bad), std::invalid_argument) << bad;
  try {
    parse_stat_sort("hit,bogus");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'bogus'"), std::string::npos);
    EXPECT_EQ(what.find('\n'), std::string::npos);  // one line
  }
}

// Four call sites, each first by exactly one key:
//   a: 3 hits, 3 x 8 of 32 bytes (frag 75%)         ptr 0x100..0x102
//   b: 1 hit, 4096 of 4096 bytes (most bytes)       ptr 0x900
//   c: 2 hits, 2 x 16 of 64 (frag 75%, fewer hits)  ptr 0x200, 0x201, both freed on CPU 1
//   d: 1 hit, 60 of 64                              ptr 0x50 (lowest)
KmemStat four_sites() {
  KmemStatOptions o;
  o.per_pointer = true;
  KmemStat k(o);
  for (std::uint64_t p = 0x100; p < 0x103; ++p) k.add(kmalloc("a+0x0/0x4", p, 8, 32));
  k.add(kmalloc("b+0x0/0x4", 0x900, 4096, 4096));
  k.add(kmalloc("c+0x0/0x4", 0x200, 16, 64));
  k.add(kmalloc("c+0x0/0x4", 0x201, 16, 64));
  k.add(kmalloc("d+0x0/0x4", 0x50, 60, 64));
  k.add(kfree(0x200, 1));
  k.add(kfree(0x201, 1));
  return k;
}

std::vector<std::string> site_order(const std::vector<SlabCallsite>& rows) {
  std::vector<std::string> v;
  for (const auto& r : rows) v.push_back(r.call_site.substr(0, 1));
  return v;
}

TEST(KmemStatSort, EachSlabKeyOrdersTheCallsites) {
  const KmemStat k = four_sites();
  using V = std::vector<std::string>;
  EXPECT_EQ(site_order(k.callsites(parse_stat_sort("hit").slab)), (V{"a", "c", "b", "d"}));
  // bytes: b 4096, c 128, a 96, d 64.
  EXPECT_EQ(site_order(k.callsites(parse_stat_sort("bytes").slab)), (V{"b", "c", "a", "d"}));
  EXPECT_EQ(site_order(k.callsites(parse_stat_sort("pingpong").slab)), (V{"c", "a", "b", "d"}));
  EXPECT_EQ(site_order(k.callsites(parse_stat_sort("callsite").slab)), (V{"a", "b", "c", "d"}));
  // frag ties a and c at 75%: hit breaks it (perf's default frag,hit,bytes).
  EXPECT_EQ(site_order(k.callsites()), (V{"a", "c", "d", "b"}));
  EXPECT_EQ(site_order(k.callsites(parse_stat_sort("frag,bytes").slab)), (V{"c", "a", "d", "b"}));
  EXPECT_EQ(site_order(k.callsites(parse_stat_sort("frag,pingpong").slab)),
            (V{"c", "a", "d", "b"}));
}

TEST(KmemStatSort, PointersSortByPtrLargestFirstAsPerf) {
  const KmemStat k = four_sites();
  const auto rows = k.pointers(parse_stat_sort("ptr").slab);
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows.front().ptr, 0x900u);
  EXPECT_EQ(rows.back().ptr, 0x50u);
  EXPECT_EQ(rows[1].ptr, 0x201u);
  EXPECT_EQ(rows[1].pingpong, 1u);
  EXPECT_EQ(rows[1].call_site, "c+0x0/0x4");
  // Without per_pointer nothing is kept.
  KmemStat off;
  off.add(kmalloc("a+0x0/0x4", 1, 8, 8));
  EXPECT_TRUE(off.pointers(StatSort{}.slab).empty());
}

TraceEvent page_by(std::string_view comm, std::uint64_t pfn, unsigned order, int mt,
                   std::uint32_t gfp) {
  TraceEvent e = page_event(EventType::mm_page_alloc, pfn, order, mt);
  e.comm = comm;
  e.gfp = gfp;
  return e;
}

// kswapd0: 2 x order 0 movable; init: 1 x order 2 unmovable (16 KB);
// sh: 3 x order 0 reclaimable (12 KB, most hits), one freed.
KmemStat some_tasks() {
  KmemStatOptions o;
  o.per_pointer = true;
  KmemStat k(o);
  k.add(page_by("kswapd0", 0x40001, 0, 1, mm::GFP_HIGHUSER_MOVABLE));
  k.add(page_by("kswapd0", 0x40002, 0, 1, mm::GFP_HIGHUSER_MOVABLE));
  k.add(page_by("init", 0x40010, 2, 0, kGfpKernel));
  for (std::uint64_t p = 0x40020; p < 0x40023; ++p)
    k.add(page_by("sh", p, 0, 2, kGfpKernel | mm::__GFP_RECLAIMABLE));
  k.add(page_event(EventType::mm_page_free, 0x40020, 0));
  return k;
}

std::vector<std::string> task_order(const std::vector<PageStatRow>& rows) {
  std::vector<std::string> v;
  for (const auto& r : rows) v.push_back(r.callsite);
  return v;
}

TEST(KmemStatSort, EachPageKeyOrdersTheCallerRows) {
  const KmemStat k = some_tasks();
  using V = std::vector<std::string>;
  EXPECT_EQ(task_order(k.page_callers(StatSort{}.page)), (V{"init", "sh", "kswapd0"}));
  EXPECT_EQ(task_order(k.page_callers(parse_stat_sort("hit").page)), (V{"sh", "kswapd0", "init"}));
  EXPECT_EQ(task_order(k.page_callers(parse_stat_sort("order").page)),
            (V{"init", "kswapd0", "sh"}));
  EXPECT_EQ(task_order(k.page_callers(parse_stat_sort("migtype").page)),
            (V{"sh", "kswapd0", "init"}));
  EXPECT_EQ(task_order(k.page_callers(parse_stat_sort("callsite").page)),
            (V{"init", "kswapd0", "sh"}));
  // gfp: GFP_HIGHUSER_MOVABLE has the highest value.
  EXPECT_EQ(task_order(k.page_callers(parse_stat_sort("gfp").page)).front(), "kswapd0");
  const auto callers = k.page_callers(StatSort{}.page);
  EXPECT_EQ(callers[1].nr_alloc, 3u);
  EXPECT_EQ(callers[1].nr_free, 1u);  // the free is credited to its allocation's row
  const auto pfns = k.page_allocs(parse_stat_sort("page").page);
  ASSERT_EQ(pfns.size(), 6u);
  EXPECT_EQ(pfns.front().pfn, 0x40022u);
  EXPECT_EQ(pfns.back().pfn, 0x40001u);
}

TEST(KmemStat, MigratetypeNamesFollowTheKernelsEnumInPerfsStyle) {
  EXPECT_STREQ(migratetype_abbrev(0), "UNMOVABL");
  EXPECT_STREQ(migratetype_abbrev(1), "MOVABLE");  // perf's table says RECLAIM: pre-4.4 enum
  EXPECT_STREQ(migratetype_abbrev(2), "RECLAIM");
  EXPECT_STREQ(migratetype_abbrev(3), "HIGHATOM");
  EXPECT_STREQ(migratetype_abbrev(4), "CMA");
  EXPECT_STREQ(migratetype_abbrev(5), "ISOLATE");
  EXPECT_STREQ(migratetype_abbrev(-1), "UNKNOWN");
  EXPECT_EQ(compact_gfp(kGfpKernel), "K");
  EXPECT_EQ(compact_gfp(kGfpKernel | mm::__GFP_ZERO), "K|Z");
  EXPECT_EQ(compact_gfp(mm::GFP_HIGHUSER_MOVABLE), "HUM");
}

// A hand-written 6.1 ftrace text through the real parser.
std::string write_trace(const std::string& name, const std::string& body) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << "# tracer: nop\n#\n" << body;
  return path;
}

KmemStat stat_of(const std::string& path, KmemStatOptions o = {}) {
  auto src = trace::open_event_source(path);
  KmemStat k(std::move(o));
  TraceEvent ev;
  while (src->next(ev)) k.add(ev);
  return k;
}

constexpr const char* kHandTrace =
    "  sh-90  [000] .....  1.000000: kmalloc: call_site=load_elf_binary+0x1c/0x90 "
    "ptr=ffff000001000000 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 "
    "accounted=false\n"
    "  sh-90  [000] .....  1.000100: kmem_cache_alloc: call_site=alloc_inode+0x20/0x80 "
    "ptr=ffff000002000000 bytes_req=600 bytes_alloc=640 gfp_flags=GFP_KERNEL node=-1 "
    "accounted=false\n"
    "  sh-90  [000] .....  1.000200: kmem_cache_alloc: call_site=alloc_inode+0x20/0x80 "
    "ptr=ffff000002000280 bytes_req=600 bytes_alloc=640 gfp_flags=GFP_KERNEL node=-1 "
    "accounted=false\n"
    "  sh-90  [001] .....  1.000300: kmem_cache_free: call_site=destroy_inode+0x40/0x60 "
    "ptr=ffff000002000000 name=shmem_inode_cache\n"
    "  sh-90  [000] .....  1.000400: mm_page_alloc: page=fffffc0000040000 pfn=0x40100 order=1 "
    "migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE\n"
    "  kswapd0-30  [001] .....  1.000500: mm_page_alloc: page=fffffc0000040000 pfn=0x40200 "
    "order=0 migratetype=0 gfp_flags=GFP_KERNEL\n"
    "  sh-90  [000] .....  1.000600: mm_page_free: page=fffffc0000040000 pfn=0x40100 order=1\n";

TEST(KmemStat, CallerAndAllocTablesOnAHandWrittenTrace) {
  KmemStatOptions o;
  o.per_pointer = true;
  const KmemStat k = stat_of(write_trace("caller_alloc.trace", kHandTrace), o);
  StatReportOptions ro;
  ro.caller = ro.alloc = true;
  const std::string r = k.report(ro);
  const auto lines = lines_of(r);
  const std::string dash105(105, '-');
  // The slab --caller table, then perf's --alloc table right below it.
  EXPECT_EQ(lines[1],
            " Callsite                           | Total_alloc/Per | Total_req/Per   | Hit      | "
            "Ping-pong | Frag");
  EXPECT_EQ(lines[3],
            " load_elf_binary+1c                 |       128/128   |       100/100   |        1 | "
            "        0 | 21.875%");
  EXPECT_EQ(lines[6], dash105);
  EXPECT_EQ(lines[7],
            " Alloc Ptr                          | Total_alloc/Per | Total_req/Per   | Hit      | "
            "Ping-pong | Frag");
  EXPECT_EQ(lines[9],
            " 0xffff000001000000                 |       128/128   |       100/100   |        1 | "
            "        0 | 21.875%");
  EXPECT_TRUE(has_line(r,
                       " 0xffff000002000000                 |       640/640   |       "
                       "600/600   |        1 |         1 |  6.250%"))
      << r;
  // perf's GFP legend and page tables (pfn in decimal, as perf prints it).
  EXPECT_TRUE(has_line(r, "# GFP flags")) << r;
  EXPECT_TRUE(has_line(r, "# 00000cc0:   K: GFP_KERNEL")) << r;
  EXPECT_TRUE(
      has_line(r, " Total alloc (KB) | Hits      | Order | Mig.type | GFP flags | Callsite"))
      << r;
  EXPECT_TRUE(has_line(r, "                8 |         1 |     1 |  MOVABLE | HUM       | sh"))
      << r;
  EXPECT_TRUE(has_line(r, "                4 |         1 |     0 | UNMOVABL | K         | kswapd0"))
      << r;
  EXPECT_TRUE(has_line(r,
                       " PFN              | Total alloc (KB) | Hits      | Order | Mig.type | "
                       "GFP flags | Callsite"))
      << r;
  EXPECT_TRUE(has_line(r,
                       "           262656 |                4 |         1 |     0 | UNMOVABL | "
                       "K         | kswapd0"))
      << r;
  // Still live: the second inode, in the cache its twin was freed to.
  const auto caches = k.caches();
  bool found = false;
  for (const auto& c : caches)
    if (c.name == "shmem_inode_cache") {
      found = true;
      EXPECT_EQ(c.allocs, 2u);
      EXPECT_EQ(c.live(), 1u);
    }
  EXPECT_TRUE(found);
  const auto live = k.live_by_callsite();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].call_site, "alloc_inode+0x20/0x80");
  EXPECT_EQ(live[0].cache, "shmem_inode_cache");
  EXPECT_EQ(live[1].cache, "kmalloc-128");
  // The JSON has the same rows.
  const nlohmann::json j = k.to_json(ro);
  EXPECT_EQ(j.at("page").at("callers").size(), 2u);
  EXPECT_EQ(j.at("slab").at("pointers").size(), 3u);
  EXPECT_EQ(j.at("slab").at("live_by_call_site")[0].at("cache"), "shmem_inode_cache");
}

TEST(KmemStat, CutPageTablesEndWithPerfsEllipsisRow) {
  const KmemStat k = some_tasks();
  StatReportOptions ro;
  ro.caller = true;
  ro.top_n = 1;
  EXPECT_TRUE(
      has_line(k.report(ro), " ...              | ...       | ...   | ...      | ...       | ..."))
      << k.report(ro);
}

TEST(KmemStat, LiveObjectsGoToTheCacheTheTraceOrFirstPassNames) {
  KmemStatOptions o;
  o.cache_names = {{"mempool_alloc_slab+0x1c/0x30", "bio-192"}};
  KmemStat k(o);
  // 2025 kernels name the cache at the allocation.
  TraceEvent named = cache_alloc("d_alloc+0x30/0x90", 0x10, 192);
  named.name = "dentry";
  k.add(named);
  // Nothing freed: the first pass's call site -> cache.
  k.add(cache_alloc("mempool_alloc_slab+0x1c/0x30", 0x20, 192));
  // Nothing known at all.
  k.add(cache_alloc("mystery+0x0/0x4", 0x30, 24));
  std::map<std::string, std::uint64_t> live;
  for (const auto& c : k.caches()) live[c.name] = c.live();
  EXPECT_EQ(live["dentry"], 1u);
  EXPECT_EQ(live["bio-192"], 1u);
  EXPECT_EQ(live["(unknown cache)"], 1u);
  // Learned from the trace's own frees, by size: a generic call site that
  // serves two caches keeps them apart.
  KmemStat m;
  m.add(cache_alloc("mempool_alloc_slab+0x1c/0x30", 0x100, 192));
  m.add(cache_alloc("mempool_alloc_slab+0x1c/0x30", 0x200, 4096));
  m.add(cache_free(0x100, "bio-192"));
  m.add(cache_free(0x200, "biovec-max"));
  m.add(cache_alloc("mempool_alloc_slab+0x1c/0x30", 0x300, 4096));
  m.add(cache_alloc("mempool_alloc_slab+0x1c/0x30", 0x400, 192));
  m.add(cache_alloc("mempool_alloc_slab+0x1c/0x30", 0x500, 4096));
  live.clear();
  for (const auto& c : m.caches()) live[c.name] = c.live();
  EXPECT_EQ(live["biovec-max"], 2u);
  EXPECT_EQ(live["bio-192"], 1u);
  EXPECT_EQ(live.count("(unknown cache)"), 0u);
}

TEST(KmemStat, MarkersAndExtfragEventsAreKeptForThePlots) {
  const std::string body =
      "  init-1  [001] .....  6.275794: tracing_mark_write: ktrace phase: P1 a: fill\n"
      "  init-1  [000] d....  6.300000: mm_page_alloc_extfrag: page=fffffc545b110000 "
      "pfn=0x44400 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 "
      "fallback_migratetype=1 fragmenting=0 change_ownership=1\n"
      "  init-1  [000] d....  6.300500: mm_page_alloc_extfrag: page=fffffc545b110000 "
      "pfn=0x44400 alloc_order=0 fallback_order=2 pageblock_order=9 alloc_migratetype=0 "
      "fallback_migratetype=1 fragmenting=1 change_ownership=0\n"
      "  init-1  [001] .....  9.000000: tracing_mark_write: ktrace phase: P2: oom\n";
  const KmemStat k = stat_of(write_trace("markers.trace", body));
  ASSERT_EQ(k.markers().size(), 2u);
  EXPECT_EQ(k.markers()[0].text, "ktrace phase: P1 a: fill");
  EXPECT_EQ(k.markers()[0].ts_ns, 6'275'794'000u);
  EXPECT_EQ(k.markers()[1].text, "ktrace phase: P2: oom");
  const ExtfragHistogram& h = k.extfrag();
  EXPECT_EQ(h.total, 2u);
  EXPECT_EQ(h.t0_ns, 6'300'000'000u);
  ASSERT_EQ(h.bins.size(), 1u);  // 0.5 ms apart: one 1 ms bin
  EXPECT_EQ(h.bins[0].fragmenting, 1u);
  EXPECT_EQ(h.bins[0].other, 1u);
  EXPECT_EQ(h.bins[0].change_ownership, 1u);
}

TEST(ExtfragHistogram, StaysBoundedAndCountsEveryEvent) {
  ExtfragHistogram h;
  for (std::uint64_t i = 0; i < 100'000; ++i) h.add(i * 7'000'000, i % 3 == 0, false);
  EXPECT_LE(h.bins.size(), ExtfragHistogram::kMaxBins);
  std::uint64_t sum = 0, frag = 0;
  for (const auto& b : h.bins) {
    sum += b.fragmenting + b.other;
    frag += b.fragmenting;
  }
  EXPECT_EQ(sum, 100'000u);
  EXPECT_EQ(frag, 33'334u);
  // The last event is inside the last bin.
  EXPECT_GE(h.t0_ns + h.bins.size() * h.width_ns, 99'999u * 7'000'000u);
}

// The real trace: 423,632 events of an arm64 6.1 boot and shell session.
// Every number below was also computed by an independent script over the
// text; the README's are quoted where it gives them.
TEST(KmemStatRealTrace, Arm64BootShellMatchesTheReadme) {
  const std::string path = std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst";
  auto src = trace::open_event_source(path);
  KmemStat k;
  TraceEvent ev;
  while (src->next(ev)) k.add(ev);
  const SlabTotals& s = k.slab();
  EXPECT_EQ(s.kfree_null, 5784u);       // README: 5,784
  EXPECT_EQ(s.free_only_cache, 5125u);  // README: ~5,100 kmem_cache_free
  EXPECT_EQ(s.free_only_kfree, 16u);    // README: 16 kfree
  EXPECT_EQ(s.nr_allocs, 129807u + 24101u);
  EXPECT_EQ(s.bytes_req, 155332246u);
  EXPECT_EQ(s.bytes_alloc, 160590360u);
  EXPECT_EQ(s.bytes_freed, 146277440u);
  EXPECT_EQ(s.nr_frees, 100367u);
  EXPECT_EQ(s.nr_pingpong, 16533u);
  EXPECT_EQ(s.nr_cross_node_allocs, 0u);  // one node
  EXPECT_EQ(s.failed_allocs, 0u);
  EXPECT_EQ(s.alloc_over_live, 0u);
  EXPECT_EQ(s.live_objects, 53541u);
  const PageTotals& p = k.page();
  EXPECT_EQ(p.nr_allocs, 43892u);
  EXPECT_EQ(p.nr_frees, 37480u);
  EXPECT_EQ(p.nr_nomatch, 5968u);  // README: ~6,000 pages allocated before tracing
  EXPECT_EQ(p.nr_fails, 0u);
  EXPECT_EQ(p.batched_frees, 21015u);
  EXPECT_EQ(p.zone_locked, 29279u);
  EXPECT_EQ(p.pcpu_drain, 15945u);
  EXPECT_EQ(p.extfrag, 13u);
  EXPECT_EQ(p.live_pages, 12380u);
  EXPECT_EQ(p.order_mt[0][0], 17462u);
  EXPECT_EQ(p.order_mt[0][1], 24902u);
  EXPECT_EQ(p.order_mt[0][2], 489u);
  EXPECT_EQ(p.order_mt[1][2], 785u);
  EXPECT_EQ(p.order_mt[8][0], 3u);
  std::uint64_t maple_free_only = 0;
  for (const auto& c : k.caches())
    if (c.name == "maple_node") maple_free_only = c.free_only;
  EXPECT_EQ(maple_free_only, 5121u);  // README: almost all maple_node
  EXPECT_EQ(k.callsites().size(), 532u);
  const std::string r = k.report();
  EXPECT_TRUE(has_line(r, "kfree(NULL) calls                     : 5,784")) << r;
  EXPECT_TRUE(
      has_line(r, "Total allocation requests     :           43,892   [          188,596 KB ]"))
      << r;
}

}  // namespace
}  // namespace mmfuzz::analysis
