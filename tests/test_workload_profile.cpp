// WorkloadProfile: a hand-built 16-event trace whose profile is worked out
// by hand below, the JSON round trip, malformed documents, and the real
// arm64 6.1 boot trace.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "analysis/workload_profile.h"
#include "mm/page_alloc/gfp.h"
#include "trace/source.h"

namespace mmfuzz::analysis {
namespace {

constexpr std::uint64_t kSec = 1000000000;
constexpr std::uint32_t kKernel = 0xcc0, kAtomic = 0xa20, kKernelZero = 0xdc0;

TraceEvent ev(EventType t, std::uint64_t ts, int cpu) {
  TraceEvent e;
  e.type = t;
  e.ts_ns = ts;
  e.cpu = cpu;
  return e;
}
TraceEvent alloc(EventType t, std::string_view cs, std::uint64_t ptr, std::uint64_t req,
                 std::uint64_t bytes_alloc, std::uint32_t gfp, std::uint64_t ts, int cpu) {
  TraceEvent e = ev(t, ts, cpu);
  e.call_site = cs;
  e.ptr = ptr;
  e.bytes_req = req;
  e.bytes_alloc = bytes_alloc;
  e.gfp = gfp;
  e.has_gfp = true;
  return e;
}
TraceEvent slab_free(EventType t, std::uint64_t ptr, std::string_view name, std::uint64_t ts,
                     int cpu) {
  TraceEvent e = ev(t, ts, cpu);
  e.ptr = ptr;
  e.name = name;
  return e;
}
TraceEvent page(EventType t, std::uint64_t pfn, unsigned order, int mt, std::uint32_t gfp,
                std::uint64_t ts, int cpu) {
  TraceEvent e = ev(t, ts, cpu);
  e.pfn = pfn;
  e.order = order;
  e.migratetype = mt;
  e.gfp = gfp;
  return e;
}

// pos  event                                   cpu  time
//  0   marker                                   0   1.0 s
//  1   kmalloc a 0x10 req 64 (128) KERNEL       0   1.0
//  2   kmalloc a 0x20 req 64 (128) KERNEL       0   1.1
//  3   kmalloc b 0x30 req 100 (128) ATOMIC      1   1.2
//  4   kmem_cache_alloc c 0x40 56 KERNEL|ZERO   1   1.3
//  5   kmem_cache_alloc c 0x50 56 KERNEL|ZERO   0   1.4
//  6   kfree 0x10                               0   1.5   lives 5 events, 0.5 s
//  7   kmem_cache_free 0x40 ftrace_event_field  0   1.5   lives 3 events, 0.2 s, cross-CPU
//  8   kfree NULL                               1   1.6
//  9   kmem_cache_free 0x999 maple_node         1   1.7   free-only
// 10   mm_page_alloc 0x40000 o0 mt0 KERNEL      0   1.8
// 11   mm_page_alloc 0x40004 o2 mt1 HIGHUSER_M  1   1.9
// 12   mm_page_alloc failed o3 KERNEL|NOWARN    0   2.0
// 13   mm_page_free 0x40000                     1   2.5   lives 3 events, 0.7 s, cross-CPU
// 14   mm_page_free_batched 0x40000             1   2.5   (a repeat: ignored)
// 15   lost_events 7                            1   3.0
WorkloadProfile hand_profile(unsigned top_n = 32) {
  ProfileOptions o;
  o.top_n = top_n;
  WorkloadProfile p("hand.trace", o);
  p.add(ev(EventType::marker, 1 * kSec, 0));
  p.add(alloc(EventType::kmalloc, "a+0x0/0x4", 0x10, 64, 128, kKernel, 1 * kSec, 0));
  p.add(alloc(EventType::kmalloc, "a+0x0/0x4", 0x20, 64, 128, kKernel, 11 * kSec / 10, 0));
  p.add(alloc(EventType::kmalloc, "b+0x0/0x4", 0x30, 100, 128, kAtomic, 12 * kSec / 10, 1));
  p.add(alloc(EventType::kmem_cache_alloc, "c+0x0/0x4", 0x40, 56, 56, kKernelZero, 13 * kSec / 10,
              1));
  p.add(alloc(EventType::kmem_cache_alloc, "c+0x0/0x4", 0x50, 56, 56, kKernelZero, 14 * kSec / 10,
              0));
  p.add(slab_free(EventType::kfree, 0x10, "", 15 * kSec / 10, 0));
  p.add(slab_free(EventType::kmem_cache_free, 0x40, "ftrace_event_field", 15 * kSec / 10, 0));
  p.add(slab_free(EventType::kfree, 0, "", 16 * kSec / 10, 1));
  p.add(slab_free(EventType::kmem_cache_free, 0x999, "maple_node", 17 * kSec / 10, 1));
  p.add(page(EventType::mm_page_alloc, 0x40000, 0, 0, kKernel, 18 * kSec / 10, 0));
  p.add(page(EventType::mm_page_alloc, 0x40004, 2, 1, 0x100cca, 19 * kSec / 10, 1));
  TraceEvent fail = page(EventType::mm_page_alloc, 0, 3, 0, 0x2cc0, 2 * kSec, 0);
  fail.failed = true;
  p.add(fail);
  p.add(page(EventType::mm_page_free, 0x40000, 0, -1, 0, 25 * kSec / 10, 1));
  p.add(page(EventType::mm_page_free_batched, 0x40000, 0, -1, 0, 25 * kSec / 10, 1));
  TraceEvent lost = ev(EventType::lost_events, 3 * kSec, 1);
  lost.lost = 7;
  p.add(lost);
  return p;
}

std::vector<std::uint64_t> buckets(std::initializer_list<std::pair<std::size_t, std::uint64_t>> l) {
  std::vector<std::uint64_t> v;
  for (const auto& [k, n] : l) {
    if (v.size() <= k) v.resize(k + 1);
    v[k] = n;
  }
  return v;
}

TEST(WorkloadProfile, EventCountsCpusAndDuration) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const ProfileData& d = p.data();
  EXPECT_EQ(d.source, "hand.trace");
  EXPECT_EQ(d.events, 16u);
  const std::map<std::string, std::uint64_t> want = {
      {"marker", 1},           {"kmalloc", 3},
      {"kmem_cache_alloc", 2}, {"kfree", 2},
      {"kmem_cache_free", 2},  {"mm_page_alloc", 3},
      {"mm_page_free", 1},     {"mm_page_free_batched", 1},
      {"lost_events", 1}};
  EXPECT_EQ(d.event_counts, want);
  EXPECT_EQ(d.lost_events, 7u);
  EXPECT_EQ(d.first_ts_ns, 1 * kSec);
  EXPECT_EQ(d.last_ts_ns, 3 * kSec);
  EXPECT_EQ(d.duration_ns(), 2 * kSec);
  const std::map<int, std::uint64_t> cpus = {{0, 8}, {1, 8}};
  EXPECT_EQ(d.cpu_events, cpus);
}

TEST(WorkloadProfile, SizeDistributions) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const ProfileData& d = p.data();
  // 64 is in (32, 64] = bucket 6, 100 in (64, 128] = bucket 7, 56 in bucket 6.
  EXPECT_EQ(d.kmalloc_sizes.count, 3u);
  EXPECT_EQ(d.kmalloc_sizes.total_bytes, 228u);
  EXPECT_EQ(d.kmalloc_sizes.distinct, 2u);
  EXPECT_EQ(d.kmalloc_sizes.log2, buckets({{6, 2}, {7, 1}}));
  EXPECT_EQ(d.kmalloc_sizes.top, (std::vector<Weighted>{{64, 2}, {100, 1}}));
  EXPECT_EQ(d.cache_sizes.count, 2u);
  EXPECT_EQ(d.cache_sizes.log2, buckets({{6, 2}}));
  EXPECT_EQ(p.cache_size_table(), (std::vector<Weighted>{{56, 2}}));
  EXPECT_EQ(d.slab_allocs(), 5u);
}

TEST(WorkloadProfile, GfpMixes) {
  WorkloadProfile p = hand_profile();
  p.finish();
  // Heaviest first, equal weights by value.
  EXPECT_EQ(p.slab_gfp_table(),
            (std::vector<Weighted>{{kKernel, 2}, {kKernelZero, 2}, {kAtomic, 1}}));
  EXPECT_EQ(p.data().slab_gfp_distinct, 3u);
  // Page requests, the failed one included.
  EXPECT_EQ(p.page_gfp_table(), (std::vector<Weighted>{{kKernel, 1}, {0x2cc0, 1}, {0x100cca, 1}}));
  const nlohmann::json j = p.to_json();
  EXPECT_EQ(j.at("slab").at("gfp")[0].at("name"), "GFP_KERNEL");
  EXPECT_EQ(j.at("slab").at("gfp")[1].at("name"), "GFP_KERNEL|__GFP_ZERO");
  EXPECT_EQ(j.at("slab").at("gfp")[1].at("hex"), "0xdc0");
  EXPECT_EQ(j.at("pages").at("gfp")[2].at("name"), "GFP_HIGHUSER_MOVABLE");
}

TEST(WorkloadProfile, LifetimesInEventsAndNanoseconds) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const Lifetimes& s = p.data().slab_life;
  EXPECT_EQ(s.freed, 2u);
  EXPECT_EQ(s.never_freed, 3u);  // 0x20, 0x30, 0x50
  EXPECT_DOUBLE_EQ(s.never_freed_fraction(), 0.6);
  // 5 events is in [4, 8) = bucket 3, 3 events in [2, 4) = bucket 2;
  // 0.5 s in [2^28, 2^29) ns = bucket 29, 0.2 s in [2^27, 2^28) = bucket 28.
  EXPECT_EQ(s.events_log2, buckets({{2, 1}, {3, 1}}));
  EXPECT_EQ(s.ns_log2, buckets({{28, 1}, {29, 1}}));
  const Lifetimes& pl = p.data().page_life;
  EXPECT_EQ(pl.freed, 1u);
  EXPECT_EQ(pl.never_freed, 1u);
  EXPECT_EQ(pl.events_log2, buckets({{2, 1}}));
  EXPECT_EQ(pl.ns_log2, buckets({{30, 1}}));  // 0.7 s in [2^29, 2^30)
}

TEST(WorkloadProfile, CachesCallSitesAndRates) {
  WorkloadProfile p = hand_profile(2);
  p.finish();
  const ProfileData& d = p.data();
  const std::vector<RateRow> caches = {{"kmalloc-128", 3, 1, 228},
                                       {"ftrace_event_field", 1, 1, 56},
                                       {"(unknown cache)", 1, 0, 56},
                                       {"maple_node", 0, 1, 0}};
  EXPECT_EQ(d.caches, caches);
  // Top 2 of 3 call sites by allocations, ties by name.
  const std::vector<RateRow> sites = {{"a+0x0/0x4", 2, 1, 128}, {"c+0x0/0x4", 2, 1, 112}};
  EXPECT_EQ(d.call_sites, sites);
  EXPECT_EQ(d.call_sites_distinct, 3u);
  const nlohmann::json j = p.to_json();
  EXPECT_DOUBLE_EQ(j.at("slab").at("caches")[0].at("allocs_per_s").get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j.at("slab").at("caches")[0].at("frees_per_s").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j.at("slab").at("allocs_per_s").get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j.at("time").at("duration_s").get<double>(), 2.0);
  // top_n also cuts the GFP table, not the distinct count.
  EXPECT_EQ(d.slab_gfp.size(), 2u);
  EXPECT_EQ(d.slab_gfp_distinct, 3u);
}

TEST(WorkloadProfile, FreesAndCpuSpread) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const ProfileData& d = p.data();
  EXPECT_EQ(d.slab_frees, 2u);
  EXPECT_EQ(d.slab_free_only, 1u);
  EXPECT_EQ(d.slab_null_frees, 1u);
  EXPECT_EQ(d.slab_cross_cpu_frees, 1u);
  EXPECT_DOUBLE_EQ(d.cross_cpu_free_fraction(), 0.5);
  EXPECT_EQ(d.page_cross_cpu_frees, 1u);
}

TEST(WorkloadProfile, PageOrdersAndMigrateTypes) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const ProfileData& d = p.data();
  EXPECT_EQ(d.page_allocs, 2u);
  EXPECT_EQ(d.page_failures, 1u);
  EXPECT_EQ(d.page_frees, 1u);  // the batched repeat is not a second free
  EXPECT_EQ(d.page_free_only, 0u);
  EXPECT_EQ(d.orders, (std::vector<std::uint64_t>{1, 0, 1}));
  EXPECT_EQ(d.migratetypes, (std::vector<std::uint64_t>{1, 1}));
  EXPECT_EQ(p.order_table(), (std::vector<Weighted>{{0, 1}, {2, 1}}));
  EXPECT_EQ(p.migratetype_table(), (std::vector<Weighted>{{0, 1}, {1, 1}}));
  const nlohmann::json j = p.to_json();
  EXPECT_EQ(j.at("pages").at("migratetypes")[1].at("name"), "Movable");
}

TEST(WorkloadProfile, JsonRoundTrips) {
  WorkloadProfile p = hand_profile(2);
  p.finish();
  const nlohmann::json j = p.to_json();
  EXPECT_EQ(j.at("format"), "mmfuzz-profile-2");
  EXPECT_EQ(j.at("source"), "hand.trace");
  const WorkloadProfile q = WorkloadProfile::from_json(nlohmann::json::parse(j.dump(2)));
  EXPECT_TRUE(q.finished());
  EXPECT_EQ(q.data(), p.data());
  EXPECT_EQ(q.to_json(), j);
}

TEST(WorkloadProfile, JsonBeforeFinishIsASnapshot) {
  WorkloadProfile p = hand_profile();
  const nlohmann::json before = p.to_json();
  EXPECT_FALSE(p.finished());
  p.finish();
  EXPECT_EQ(p.to_json(), before);
  p.finish();  // idempotent
  EXPECT_THROW(p.add(ev(EventType::marker, 0, 0)), std::logic_error);
}

TEST(WorkloadProfile, FromJsonRejectsOtherDocuments) {
  WorkloadProfile p = hand_profile();
  const nlohmann::json good = p.to_json();
  auto rejects = [](const nlohmann::json& j, const std::string& part) {
    try {
      (void)WorkloadProfile::from_json(j);
      ADD_FAILURE() << "accepted " << j.dump().substr(0, 80);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("profile: ", 0), 0u) << what;
      EXPECT_NE(what.find(part), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  };
  rejects(nlohmann::json::array(), "format");
  nlohmann::json wrong = good;
  wrong["format"] = "mmfuzz-profile-0";
  rejects(wrong, "mmfuzz-profile-0");
  nlohmann::json missing = good;
  missing["slab"].erase("caches");
  rejects(missing, "caches");
  nlohmann::json no_phases = good;  // a version-2 document has its version-2 fields
  no_phases.erase("phases");
  rejects(no_phases, "phases");
  nlohmann::json bad_vmalloc = good;
  bad_vmalloc["vmalloc"]["source"] = "guessed";
  rejects(bad_vmalloc, "guessed");
  nlohmann::json bad_bucket = good;
  bad_bucket["slab"]["kmalloc"]["log2"][0]["log2"] = 99;
  rejects(bad_bucket, "log2");
  nlohmann::json bad_type = good;
  bad_type["pages"]["allocs"] = "many";
  rejects(bad_type, "type");
}

// Version 2: phases, bursts, per-call-site tables and cache geometry of the
// hand trace above.
TEST(WorkloadProfile, PhasesOfTheHandTrace) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const ProfileData& d = p.data();
  // 16 events in 16 windows: one event each.
  ASSERT_EQ(d.phases.size(), kPhaseWindows);
  std::vector<std::uint64_t> kmalloc, cache, slab_frees, page_allocs, page_frees;
  for (std::size_t i = 0; i < d.phases.size(); ++i) {
    EXPECT_EQ(d.phases[i].first_event, i);
    EXPECT_EQ(d.phases[i].events, 1u);
    kmalloc.push_back(d.phases[i].kmalloc);
    cache.push_back(d.phases[i].cache_allocs);
    slab_frees.push_back(d.phases[i].slab_frees);
    page_allocs.push_back(d.phases[i].page_allocs);
    page_frees.push_back(d.phases[i].page_frees);
  }
  using V = std::vector<std::uint64_t>;
  EXPECT_EQ(kmalloc, (V{0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(cache, (V{0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  // kfree(NULL) (pos 8) is not a free; the free-only one (pos 9) is.
  EXPECT_EQ(slab_frees, (V{0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0}));
  // The failed allocation (pos 12) and the batched repeat (pos 14) are not counted.
  EXPECT_EQ(page_allocs, (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(page_frees, (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}));
}

TEST(WorkloadProfile, BurstsSitesAndGeometryOfTheHandTrace) {
  WorkloadProfile p = hand_profile();
  p.finish();
  const ProfileData& d = p.data();
  // CPU 0: a a (run 2) | c (run 1, ended by kfree 0x10); CPU 1: b (1) | c
  // (1, ended by the free-only kmem_cache_free; kfree(NULL) ends nothing).
  EXPECT_EQ(d.bursts.runs, 4u);
  EXPECT_EQ(d.bursts.allocs, 5u);
  EXPECT_EQ(d.bursts.longest, 2u);
  EXPECT_EQ(d.bursts.log2, buckets({{1, 3}, {2, 1}}));
  ASSERT_EQ(d.site_shapes.size(), 3u);  // the call_sites rows, in their order
  const CallSiteShape a{"a+0x0/0x4", 2, 2, 1, 0, 1, 128, "", {{64, 2}}, {{kKernel, 2}}};
  const CallSiteShape c{"c+0x0/0x4",       2, 0, 1, 1, 2, 56, "ftrace_event_field", {{56, 2}},
                        {{kKernelZero, 2}}};
  const CallSiteShape b{"b+0x0/0x4", 1, 1, 0, 0, 1, 128, "", {{100, 1}}, {{kAtomic, 1}}};
  EXPECT_EQ(d.site_shapes[0], a);
  EXPECT_EQ(d.site_shapes[1], c);
  EXPECT_EQ(d.site_shapes[2], b);
  // 0x40 was freed to ftrace_event_field; 0x50, never freed, came from the
  // same call site: two allocations, one free. maple_node's only free is
  // free-only: no geometry.
  ASSERT_EQ(d.cache_geometry.size(), 1u);
  EXPECT_EQ(d.cache_geometry[0], (CacheGeometry{"ftrace_event_field", 56, 56, 2, 1}));
  EXPECT_EQ(d.mempool, MempoolUse{});
  EXPECT_EQ(d.vmalloc.source, "default");
  EXPECT_EQ(d.vmalloc.areas, 0u);
  EXPECT_EQ(d.vmalloc.pages, default_vmalloc_pages());
}

// Cohorts (consecutive frees of allocations born at most 4 apart), page
// runs per CPU (ended by a page free there), distinct sites per window of
// kSiteWindow slab allocations.
TEST(WorkloadProfile, CohortsPageRunsAndSiteWindows) {
  WorkloadProfile h = hand_profile();
  h.finish();
  // Frees 0x10 (allocation 0), then 0x40 (allocation 3): one cohort.
  EXPECT_EQ(h.data().slab_life.cohort, 1u);
  EXPECT_DOUBLE_EQ(h.data().slab_life.cohort_fraction(), 0.5);
  EXPECT_EQ(h.data().page_life.cohort, 0u);
  // CPU 1's run (1 page) ends at its free; CPU 0's (1, the failure not
  // counted) is still open at the end.
  EXPECT_EQ(h.data().page_bursts.runs, 2u);
  EXPECT_EQ(h.data().page_bursts.allocs, 2u);
  EXPECT_EQ(h.data().bursts.windows, 0u);  // 5 slab allocations: no whole window

  WorkloadProfile p("windows.trace");
  const char* sites[] = {"a+0x0/0x4", "b+0x0/0x4", "c+0x0/0x4", "d+0x0/0x4"};
  std::uint64_t ptr = 0x1000;
  // Window 1: sites a, b, c in turn; window 2: d only; 10 more: no window.
  for (std::uint64_t i = 0; i < 2 * kSiteWindow + 10; ++i, ptr += 0x100)
    p.add(alloc(EventType::kmalloc, i < kSiteWindow ? sites[i % 3] : sites[3], ptr, 32, 32, kKernel,
                i, 0));
  // Frees: 0x1000, 0x1100, 0x1200 (cohorts), then 0x5000 (far): 2 of 4.
  for (const std::uint64_t f : {0x1000ull, 0x1100ull, 0x1200ull, 0x5000ull})
    p.add(slab_free(EventType::kfree, f, "", 1000, 0));
  // Pages on CPU 0: three, a free, two: runs of 3 and 2.
  for (std::uint64_t pfn = 0x100; pfn < 0x103; ++pfn)
    p.add(page(EventType::mm_page_alloc, pfn, 0, 0, kKernel, 2000, 0));
  p.add(page(EventType::mm_page_free, 0x100, 0, -1, 0, 2001, 0));
  for (std::uint64_t pfn = 0x200; pfn < 0x202; ++pfn)
    p.add(page(EventType::mm_page_alloc, pfn, 0, 0, kKernel, 2002, 0));
  p.finish();
  const ProfileData& d = p.data();
  EXPECT_EQ(d.bursts.windows, 2u);
  EXPECT_EQ(d.bursts.window_sites, 4u);
  EXPECT_DOUBLE_EQ(d.bursts.sites_per_window(), 2.0);
  EXPECT_EQ(d.slab_life.cohort, 2u);
  EXPECT_EQ(d.page_bursts.runs, 2u);
  EXPECT_EQ(d.page_bursts.allocs, 5u);
  EXPECT_EQ(d.page_bursts.longest, 3u);
  // Round trip, and a document from before these were measured reads as 0.
  EXPECT_EQ(WorkloadProfile::from_json(p.to_json()).data(), d);
  nlohmann::json old = p.to_json();
  old["slab"]["lifetime"].erase("cohort_frees");
  old["slab"]["bursts"].erase("windows");
  old["pages"].erase("bursts");
  const ProfileData o = WorkloadProfile::from_json(old).data();
  EXPECT_EQ(o.slab_life.cohort, 0u);
  EXPECT_EQ(o.bursts.windows, 0u);
  EXPECT_EQ(o.page_bursts.runs, 0u);
}

// Mempools and vmalloc sizes from their call sites; alloc_vmap_area (6.3+)
// wins over the page arrays; 4096 events merge into 16 windows of 256.
TEST(WorkloadProfile, MempoolVmallocAndLongPhases) {
  WorkloadProfile p("pools.trace");
  std::uint64_t ts = 0;
  p.add(alloc(EventType::kmalloc, "mempool_create+0x48/0xa0", 0x100, 72, 128, kKernel, ts, 0));
  p.add(alloc(EventType::kmalloc, "mempool_init_node+0x70/0x10c", 0x200, 16, 128, kKernel, ts, 0));
  p.add(alloc(EventType::kmem_cache_alloc, "mempool_alloc_slab+0x24/0x30", 0x300, 384, 384, kKernel,
              ts, 0));
  p.add(alloc(EventType::kmem_cache_alloc, "mempool_alloc_slab+0x24/0x30", 0x400, 384, 384, kKernel,
              ts, 1));
  p.add(alloc(EventType::kmalloc, "mempool_kmalloc+0x10/0x20", 0x500, 100, 128, kAtomic, ts, 1));
  p.add(slab_free(EventType::kmem_cache_free, 0x300, "bio-0", ts, 0));
  p.add(alloc(EventType::kmalloc, "__vmalloc_node_range+0x184/0x800", 0x600, 32, 128, kKernel, ts,
              0));
  p.add(alloc(EventType::kmalloc, "__vmalloc_node_range+0x184/0x800", 0x700, 32, 128, kKernel, ts,
              0));
  p.add(alloc(EventType::kmalloc, "__vmalloc_node_range+0x184/0x800", 0x800, 528, 1024, kKernel, ts,
              0));
  {
    WorkloadProfile q = std::move(p);
    q.finish();
    const ProfileData& d = q.data();
    EXPECT_EQ(d.mempool.creates, 1u);
    EXPECT_EQ(d.mempool.min_nr, (std::vector<Weighted>{{2, 1}}));
    EXPECT_EQ(d.mempool.slab_allocs, 2u);
    EXPECT_EQ(d.mempool.kmalloc_allocs, 1u);
    EXPECT_EQ(d.mempool.frees, 1u);
    EXPECT_EQ(d.mempool.sizes, (std::vector<Weighted>{{384, 2}, {128, 1}}));
    EXPECT_EQ(d.vmalloc.source, "page_array");
    EXPECT_EQ(d.vmalloc.areas, 3u);
    EXPECT_EQ(d.vmalloc.pages, (std::vector<Weighted>{{4, 2}, {66, 1}}));
    ASSERT_EQ(d.cache_geometry.size(), 1u);
    EXPECT_EQ(d.cache_geometry[0], (CacheGeometry{"bio-0", 384, 384, 2, 1}));
  }
  WorkloadProfile v("vmap.trace");
  TraceEvent area = ev(EventType::alloc_vmap_area, 0, 0);
  area.size = 5 * 4096;  // 4 pages and the guard page
  v.add(area);
  v.add(
      alloc(EventType::kmalloc, "__vmalloc_node_range+0x184/0x800", 0x600, 32, 128, kKernel, 0, 0));
  for (int i = 0; i < 2047; ++i)
    v.add(alloc(EventType::kmalloc, "x+0x0/0x4", 0x1000 + 16 * static_cast<std::uint64_t>(i), 16,
                16, kKernel, 0, 0));
  for (int i = 0; i < 2047; ++i)
    v.add(slab_free(EventType::kfree, 0x1000 + 16 * static_cast<std::uint64_t>(i), "", 0, 0));
  v.finish();
  const ProfileData& d = v.data();
  EXPECT_EQ(d.vmalloc.source, "alloc_vmap_area");
  EXPECT_EQ(d.vmalloc.pages, (std::vector<Weighted>{{4, 1}}));
  ASSERT_EQ(d.phases.size(), kPhaseWindows);
  for (std::size_t i = 0; i < kPhaseWindows; ++i) {
    EXPECT_EQ(d.phases[i].first_event, 256 * i);
    EXPECT_EQ(d.phases[i].events, 256u);
    // Events 1 .. 2048 are kmallocs (event 0 the vmap area), 2049 .. 4095 kfrees.
    EXPECT_EQ(d.phases[i].kmalloc, i == 0 ? 255u : i < 8 ? 256u : i == 8 ? 1u : 0u) << i;
    EXPECT_EQ(d.phases[i].slab_frees, i < 8 ? 0u : i == 8 ? 255u : 256u) << i;
  }
  // One run of 2048 kmallocs (the vmalloc page array's site is another).
  EXPECT_EQ(d.bursts.runs, 2u);
  EXPECT_EQ(d.bursts.longest, 2047u);
  EXPECT_EQ(WorkloadProfile::from_json(v.to_json()).data(), d);
}

// A version-1 document (before phases and the rest): read, with the
// version-2 fields empty and the default vmalloc table.
TEST(WorkloadProfile, ReadsVersion1Documents) {
  WorkloadProfile p = hand_profile();
  p.finish();
  nlohmann::json j = p.to_json();
  j["format"] = "mmfuzz-profile-1";
  for (const char* k : {"phases", "mempool", "vmalloc"}) j.erase(k);
  for (const char* k : {"bursts", "call_site_shapes", "cache_geometry"}) j["slab"].erase(k);
  const WorkloadProfile q = WorkloadProfile::from_json(j);
  ProfileData want = p.data();
  want.phases.clear();
  want.bursts = {};
  want.site_shapes.clear();
  want.cache_geometry.clear();
  want.mempool = {};
  want.vmalloc = {"default", 0, default_vmalloc_pages()};
  EXPECT_EQ(q.data(), want);
  // Written back, it is a version-2 document.
  EXPECT_EQ(q.to_json().at("format"), "mmfuzz-profile-2");
}

TEST(WorkloadProfile, EmptyTrace) {
  WorkloadProfile p("empty");
  p.finish();
  const nlohmann::json j = p.to_json();
  EXPECT_EQ(j.at("time").at("duration_ns"), 0);
  EXPECT_EQ(j.at("slab").at("lifetime").at("never_freed_fraction"), 0.0);
  EXPECT_EQ(WorkloadProfile::from_json(j).data(), p.data());
}

TEST(WorkloadProfileRealTrace, Arm64BootShell) {
  const std::string path = std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst";
  auto src = trace::open_event_source(path);
  WorkloadProfile p(src->name());
  TraceEvent e;
  while (src->next(e)) p.add(e);
  p.finish();
  const ProfileData& d = p.data();
  // The README's event counts.
  EXPECT_EQ(d.event_counts.at("kmem_cache_alloc"), 129807u);
  EXPECT_EQ(d.event_counts.at("kmem_cache_free"), 93744u);
  EXPECT_EQ(d.event_counts.at("mm_page_alloc"), 43892u);
  EXPECT_EQ(d.event_counts.at("mm_page_free"), 37480u);
  EXPECT_EQ(d.event_counts.at("mm_page_alloc_zone_locked"), 29279u);
  EXPECT_EQ(d.event_counts.at("kmalloc"), 24101u);
  EXPECT_EQ(d.event_counts.at("mm_page_free_batched"), 21015u);
  EXPECT_EQ(d.event_counts.at("kfree"), 17548u);
  EXPECT_EQ(d.event_counts.at("mm_page_pcpu_drain"), 15945u);
  EXPECT_EQ(d.event_counts.at("rss_stat"), 10801u);
  EXPECT_EQ(d.event_counts.at("mm_page_alloc_extfrag"), 13u);
  EXPECT_EQ(d.lost_events, 0u);
  EXPECT_EQ(d.first_ts_ns, 0u);
  EXPECT_EQ(d.last_ts_ns, 11249073000u);
  EXPECT_EQ(d.cpu_events.at(0) + d.cpu_events.at(1), d.events);
  // Independently computed over the text (and agreeing with KmemStat).
  EXPECT_EQ(d.slab_allocs(), 153908u);
  EXPECT_EQ(d.kmalloc_sizes.distinct, 271u);
  EXPECT_EQ(d.kmalloc_sizes.top.at(0), (Weighted{64, 6917}));
  EXPECT_EQ(d.cache_sizes.distinct, 37u);
  EXPECT_EQ(d.cache_sizes.top.at(0), (Weighted{4096, 28386}));
  EXPECT_EQ(d.slab_gfp_distinct, 31u);
  EXPECT_EQ(d.slab_gfp.at(0), (Weighted{mm::GFP_KERNEL, 87364}));
  EXPECT_EQ(d.slab_null_frees, 5784u);
  EXPECT_EQ(d.slab_free_only, 5125u + 16u);
  EXPECT_EQ(d.slab_frees, 100367u);
  EXPECT_EQ(d.slab_cross_cpu_frees, 16533u);
  EXPECT_EQ(d.slab_life.never_freed, 53541u);
  EXPECT_EQ(d.call_sites_distinct, 532u);
  EXPECT_EQ(d.page_allocs, 43892u);
  EXPECT_EQ(d.page_failures, 0u);
  EXPECT_EQ(d.page_frees, 37480u - 5968u);
  EXPECT_EQ(d.page_free_only, 5968u);
  EXPECT_EQ(d.page_life.never_freed, 12380u);
  EXPECT_EQ(d.orders, (std::vector<std::uint64_t>{42853, 872, 96, 49, 5, 5, 6, 3, 3}));
  EXPECT_EQ(d.migratetypes, (std::vector<std::uint64_t>{17703, 24902, 1287}));
  EXPECT_EQ(d.page_gfp_distinct, 40u);
  EXPECT_EQ(d.page_gfp.at(0), (Weighted{mm::GFP_HIGHUSER_MOVABLE | mm::__GFP_COMP, 21004}));
  EXPECT_EQ(WorkloadProfile::from_json(p.to_json()).data(), d);
}

}  // namespace
}  // namespace mmfuzz::analysis
