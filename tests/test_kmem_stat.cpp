// KmemStat: perf kmem stat's numbers and layout from hand-built event
// sequences (every expected number worked out by hand in the comments), then
// the real arm64 6.1 boot trace against the numbers its README gives.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <sstream>
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
  k.add(kfree(0x3000));  // kfree of a cache object: the cache stays unnamed
  const auto caches = k.caches();
  // By bytes: kmalloc-large 16384, kmalloc-1k 1024, unknown 56 + 200 = 256,
  // kmalloc-cg-64 64, ftrace_event_field 56.
  ASSERT_EQ(caches.size(), 5u);
  EXPECT_EQ(caches[0].name, "kmalloc-large");
  EXPECT_EQ(caches[1].name, "kmalloc-1k");
  EXPECT_EQ(caches[2].name, "(unknown cache)");
  EXPECT_EQ(caches[2].allocs, 2u);
  EXPECT_EQ(caches[2].frees, 1u);
  EXPECT_EQ(caches[2].live(), 1u);
  EXPECT_EQ(caches[2].bytes_alloc, 256u);
  EXPECT_EQ(caches[3].name, "kmalloc-cg-64");
  EXPECT_EQ(caches[4].name, "ftrace_event_field");
  EXPECT_EQ(caches[4].allocs, 1u);
  EXPECT_EQ(caches[4].frees, 1u);
  EXPECT_EQ(caches[4].live(), 0u);
  const auto lines = lines_of(k.report());
  bool header = false;
  for (const auto& l : lines)
    if (l.rfind(" Cache                              | Total_alloc/Per | Total_req/Per   | "
                "Allocs   | Frees    | Free-only | Live     | Ping-pong | Frag",
                0) == 0)
      header = true;
  EXPECT_TRUE(header);
  EXPECT_TRUE(has_line(k.report(),
                       " ftrace_event_field                 |        56/56    |        "
                       "56/56    |        1 |        1 |         0 |        0 |    "
                       "     0 |  0.000%"));
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
