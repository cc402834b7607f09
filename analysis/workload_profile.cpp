#include "analysis/workload_profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "analysis/kmem_stat.h"
#include "mm/page_alloc/gfp.h"
#include "program/program.h"

namespace mmfuzz::analysis {

namespace {

using NameIndex = std::unordered_map<std::string, std::uint32_t, prog::StringHash, std::equal_to<>>;

constexpr std::uint32_t kUnknownCacheId = 0;
constexpr std::size_t kLog2Buckets = 65;

// (2^(k-1), 2^k]: the bucket of a size.
std::size_t size_bucket(std::uint64_t size) {
  return size <= 1 ? 0 : static_cast<std::size_t>(std::bit_width(size - 1));
}
// [2^(k-1), 2^k): the bucket of a lifetime.
std::size_t life_bucket(std::uint64_t x) {
  return static_cast<std::size_t>(std::bit_width(x));
}

std::vector<std::uint64_t> trimmed(std::vector<std::uint64_t> v) {
  while (!v.empty() && v.back() == 0) v.pop_back();
  return v;
}

template <class Map>
std::vector<Weighted> top_of(const Map& m, unsigned n) {
  std::vector<Weighted> v;
  v.reserve(m.size());
  for (const auto& [value, weight] : m) v.push_back({static_cast<std::uint64_t>(value), weight});
  std::sort(v.begin(), v.end(), [](const Weighted& a, const Weighted& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.value < b.value;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

}  // namespace

double Lifetimes::never_freed_fraction() const {
  const std::uint64_t all = freed + never_freed;
  return all ? static_cast<double>(never_freed) / static_cast<double>(all) : 0.0;
}

double Bursts::sites_per_window() const {
  return windows ? static_cast<double>(window_sites) / static_cast<double>(windows) : 0.0;
}

double Lifetimes::cohort_fraction() const {
  return freed ? static_cast<double>(cohort) / static_cast<double>(freed) : 0.0;
}

double ProfileData::cross_cpu_free_fraction() const {
  return slab_frees ? static_cast<double>(slab_cross_cpu_frees) / static_cast<double>(slab_frees)
                    : 0.0;
}

double ProfileData::per_second(std::uint64_t n) const {
  const std::uint64_t d = duration_ns();
  return d ? static_cast<double>(n) * 1e9 / static_cast<double>(d) : 0.0;
}

// What a call site's function tells about its allocations (outside the
// anonymous namespace: WorkloadProfile::Accum holds one).
enum class SiteFn : std::uint8_t { other, mempool_element, mempool_create, mempool_init, vm_pages };

namespace {

SiteFn site_fn(std::string_view call_site) {
  const std::string_view fn = call_site.substr(0, call_site.find('+'));
  if (fn.starts_with("mempool_alloc") || fn.starts_with("mempool_kmalloc"))
    return SiteFn::mempool_element;
  if (fn.starts_with("mempool_create")) return SiteFn::mempool_create;
  if (fn.starts_with("mempool_init")) return SiteFn::mempool_init;
  // vmalloc's page array: 5.10 __vmalloc_area_node, 6.1 __vmalloc_node_range.
  if (fn == "__vmalloc_area_node" || fn == "__vmalloc_node_range") return SiteFn::vm_pages;
  return SiteFn::other;
}

constexpr std::uint64_t kPointerSize = 8;  // arm64: the element and page arrays' entries
constexpr std::uint64_t kTracePageSize = 4096;
constexpr std::size_t kPhaseGrains = 1024;  // phase counters kept before pairs merge
// Consecutive frees of allocations at most this many allocations apart
// count as a cohort (objects that die together as they were born).
constexpr std::uint64_t kCohortSpan = 4;

}  // namespace

struct WorkloadProfile::Accum {
  struct LiveObj {
    std::uint64_t pos, ts, bytes_req, bytes_alloc;
    std::uint32_t callsite, cache;
    int cpu;
    bool kmalloc, mempool;
    std::uint64_t seq;  // the slab allocation's number
  };
  struct LivePage {
    std::uint64_t pos, ts;
    int cpu;
    std::uint64_t seq;  // the page allocation's number
  };
  struct Sizes {
    std::uint64_t count = 0, total = 0;
    std::unordered_map<std::uint64_t, std::uint64_t> exact;
    std::vector<std::uint64_t> log2 = std::vector<std::uint64_t>(kLog2Buckets);
    void add(std::uint64_t size) {
      ++count;
      total += size;
      ++exact[size];
      ++log2[size_bucket(size)];
    }
  };
  struct Life {
    std::uint64_t freed = 0, cohort = 0;
    std::uint64_t next_seq = 0;             // allocations numbered
    std::optional<std::uint64_t> prev_seq;  // the allocation the last free freed
    std::vector<std::uint64_t> events = std::vector<std::uint64_t>(kLog2Buckets);
    std::vector<std::uint64_t> ns = std::vector<std::uint64_t>(kLog2Buckets);
    void add(std::uint64_t from_pos, std::uint64_t to_pos, std::uint64_t from_ts,
             std::uint64_t to_ts, std::uint64_t seq) {
      ++freed;
      if (prev_seq && (seq > *prev_seq ? seq - *prev_seq : *prev_seq - seq) <= kCohortSpan)
        ++cohort;
      prev_seq = seq;
      ++events[life_bucket(to_pos - from_pos)];
      // CPUs' clocks may disagree by a little: a negative lifetime is 0.
      ++ns[life_bucket(to_ts >= from_ts ? to_ts - from_ts : 0)];
    }
  };
  // A call site's own tables (parallel to callsites).
  struct Site {
    SiteFn fn = SiteFn::other;
    std::uint64_t kmalloc = 0, cross = 0, runs = 0, bytes_alloc_max = 0;
    std::uint64_t unnamed_live = 0;  // kmem_cache_alloc objects no free has named yet
    std::unordered_map<std::uint64_t, std::uint64_t> sizes;
    std::unordered_map<std::uint32_t, std::uint64_t> gfp;
    std::unordered_map<std::uint32_t, std::uint64_t> caches;  // named frees of its objects
  };
  // A kmem cache's geometry (parallel to caches; kmalloc caches stay empty).
  struct CacheGeo {
    bool kmem_cache = false;
    std::uint64_t object_size = 0, bytes_req = 0, allocs = 0, frees = 0;
  };
  struct Run {
    std::uint32_t site = 0;
    std::uint64_t len = 0;
  };
  struct BurstAcc {
    std::uint64_t runs = 0, allocs = 0, longest = 0;
    std::vector<std::uint64_t> log2 = std::vector<std::uint64_t>(kLog2Buckets);
    std::uint64_t windows = 0, window_sites = 0;
    std::vector<std::uint32_t> window;  // the open window's call sites
    void site(std::uint32_t cs) {
      window.push_back(cs);
      if (window.size() < kSiteWindow) return;
      std::sort(window.begin(), window.end());
      ++windows;
      window_sites +=
          static_cast<std::uint64_t>(std::unique(window.begin(), window.end()) - window.begin());
      window.clear();
    }
    void close(Run& r) {
      if (!r.len) return;
      ++runs;
      allocs += r.len;
      longest = std::max(longest, r.len);
      ++log2[life_bucket(r.len)];
      r.len = 0;
    }
  };
  // Phase counters per grain of events; pairs merge (the grain doubles) so
  // that at most kPhaseGrains are kept whatever the trace's length.
  struct Grain {
    std::uint64_t kmalloc = 0, cache = 0, slab_frees = 0, page_allocs = 0, page_frees = 0;
    void merge(const Grain& o) {
      kmalloc += o.kmalloc;
      cache += o.cache;
      slab_frees += o.slab_frees;
      page_allocs += o.page_allocs;
      page_frees += o.page_frees;
    }
  };

  std::uint64_t pos = 0;
  bool any_ts = false;
  std::uint64_t first_ts = 0, last_ts = 0;
  std::array<std::uint64_t, kNrEventTypes> by_type{};
  std::uint64_t lost = 0;
  std::map<int, std::uint64_t> cpu_events;

  std::unordered_map<std::uint64_t, LiveObj> live;
  std::unordered_map<std::uint64_t, LivePage> live_pages;
  Sizes kmalloc_sizes, cache_sizes;
  std::unordered_map<std::uint32_t, std::uint64_t> slab_gfp, page_gfp;
  std::uint64_t slab_frees = 0, slab_free_only = 0, slab_null_frees = 0, slab_cross = 0;
  std::uint64_t slab_lost_live = 0;  // live objects allocated over (their free was not traced)
  Life slab_life, page_life;
  NameIndex callsite_index, cache_index;
  std::vector<RateRow> callsites, caches;
  std::vector<Site> sites;
  std::vector<CacheGeo> geo;
  std::unordered_map<std::uint64_t, std::uint32_t> kmalloc_ids;
  std::uint64_t page_allocs = 0, page_failures = 0, page_frees = 0, page_free_only = 0,
                page_cross = 0, page_lost_live = 0;
  std::vector<std::uint64_t> orders = std::vector<std::uint64_t>(64);
  std::vector<std::uint64_t> migratetypes = std::vector<std::uint64_t>(mm::MIGRATE_TYPES);
  std::vector<Grain> grains;
  std::uint64_t grain = 1;
  BurstAcc bursts;
  std::map<int, Run> runs;  // the open run per CPU
  BurstAcc page_bursts;
  std::map<int, Run> page_runs;  // page allocations on a CPU since its last page free
  MempoolUse mempool;
  std::unordered_map<std::uint64_t, std::uint64_t> min_nr, pool_sizes;
  std::unordered_map<std::uint64_t, std::uint64_t> vm_array, vm_areas;  // pages -> count

  Accum() {
    caches.push_back({"(unknown cache)", 0, 0, 0});
    cache_index.emplace(caches.back().name, kUnknownCacheId);
    geo.emplace_back();
  }
  static std::uint32_t intern(NameIndex& index, std::vector<RateRow>& rows, std::string_view name) {
    if (const auto it = index.find(name); it != index.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(rows.size());
    rows.push_back({std::string(name), 0, 0, 0});
    index.emplace(std::string(name), id);
    return id;
  }
  std::uint32_t site_id(std::string_view call_site) {
    const std::uint32_t id = intern(callsite_index, callsites, call_site);
    if (id == sites.size()) {
      sites.emplace_back();
      sites.back().fn = site_fn(call_site);
    }
    return id;
  }
  std::uint32_t cache_id(std::string_view name) {
    const std::uint32_t id = intern(cache_index, caches, name);
    if (id == geo.size()) geo.emplace_back();
    return id;
  }
  std::uint32_t kmalloc_cache(std::uint32_t gfp, std::uint64_t bytes_alloc, std::uint64_t max) {
    // The name depends on the size and on the three kmalloc_type() bits.
    const std::uint64_t key =
        bytes_alloc << 3 |
        ((gfp & (mm::__GFP_DMA | mm::__GFP_RECLAIMABLE | mm::__GFP_ACCOUNT)) ? 1u : 0u) |
        ((gfp & mm::__GFP_DMA) ? 2u : 0u) | ((gfp & mm::__GFP_RECLAIMABLE) ? 4u : 0u);
    if (const auto it = kmalloc_ids.find(key); it != kmalloc_ids.end()) return it->second;
    const std::uint32_t id = cache_id(kmalloc_cache_name(gfp, bytes_alloc, max));
    kmalloc_ids.emplace(key, id);
    return id;
  }
  Grain& grain_at(std::uint64_t p) {
    while (p / grain >= kPhaseGrains) {
      for (std::size_t i = 0; i < kPhaseGrains / 2; ++i) {
        grains[i] = grains[2 * i];
        grains[i].merge(grains[2 * i + 1]);
      }
      grains.resize(kPhaseGrains / 2);
      grain *= 2;
    }
    const std::size_t i = static_cast<std::size_t>(p / grain);
    if (grains.size() <= i) grains.resize(i + 1);
    return grains[i];
  }

  void slab_alloc(const TraceEvent& ev, std::uint64_t at, std::uint64_t kmalloc_max);
  void site_alloc(const TraceEvent& ev, std::uint32_t cs, bool is_kmalloc);
  void slab_free(const TraceEvent& ev, std::uint64_t at);
  void page_alloc(const TraceEvent& ev, std::uint64_t at);
  void page_free(const TraceEvent& ev, std::uint64_t at);
  void vmap_area(const TraceEvent& ev);
};

void WorkloadProfile::Accum::slab_alloc(const TraceEvent& ev, std::uint64_t at,
                                        std::uint64_t kmalloc_max) {
  const bool is_kmalloc = ev.type == EventType::kmalloc || ev.type == EventType::kmalloc_node;
  (is_kmalloc ? kmalloc_sizes : cache_sizes).add(ev.bytes_req);
  ++(is_kmalloc ? grain_at(at).kmalloc : grain_at(at).cache);
  ++slab_gfp[ev.gfp];
  const std::uint32_t cs = site_id(ev.call_site);
  ++callsites[cs].allocs;
  callsites[cs].bytes_req += ev.bytes_req;
  site_alloc(ev, cs, is_kmalloc);
  if (ev.ptr == 0) return;  // a failed allocation: nothing to free later
  const std::uint32_t cache =
      is_kmalloc ? kmalloc_cache(ev.gfp, ev.bytes_alloc, kmalloc_max) : kUnknownCacheId;
  ++caches[cache].allocs;
  caches[cache].bytes_req += ev.bytes_req;
  if (!is_kmalloc) ++sites[cs].unnamed_live;
  const bool pool = sites[cs].fn == SiteFn::mempool_element;
  const LiveObj obj{at,    ev.ts_ns, ev.bytes_req, ev.bytes_alloc, cs,
                    cache, ev.cpu,   is_kmalloc,   pool,           slab_life.next_seq++};
  auto [it, inserted] = live.try_emplace(ev.ptr, obj);
  if (!inserted) {
    ++slab_lost_live;
    it->second = obj;
  }
}

// The call site's own tables, its bursts, and what its function says
// (mempools, vmalloc page arrays).
void WorkloadProfile::Accum::site_alloc(const TraceEvent& ev, std::uint32_t cs, bool is_kmalloc) {
  Site& s = sites[cs];
  s.kmalloc += is_kmalloc;
  s.bytes_alloc_max = std::max(s.bytes_alloc_max, ev.bytes_alloc);
  ++s.sizes[ev.bytes_req];
  ++s.gfp[ev.gfp];
  bursts.site(cs);
  Run& r = runs[ev.cpu];
  if (r.len && r.site == cs) {
    ++r.len;
  } else {
    bursts.close(r);
    r = {cs, 1};
    ++s.runs;
  }
  switch (s.fn) {
    case SiteFn::mempool_element:
      ++(is_kmalloc ? mempool.kmalloc_allocs : mempool.slab_allocs);
      ++pool_sizes[ev.bytes_alloc];
      break;
    case SiteFn::mempool_create:
      ++mempool.creates;
      break;
    case SiteFn::mempool_init:
      if (ev.bytes_req && ev.bytes_req % kPointerSize == 0) ++min_nr[ev.bytes_req / kPointerSize];
      break;
    case SiteFn::vm_pages:
      if (is_kmalloc && ev.bytes_req && ev.bytes_req % kPointerSize == 0)
        ++vm_array[ev.bytes_req / kPointerSize];
      break;
    case SiteFn::other:
      break;
  }
}

void WorkloadProfile::Accum::slab_free(const TraceEvent& ev, std::uint64_t at) {
  const bool named = ev.type == EventType::kmem_cache_free && !ev.name.empty();
  if (ev.ptr == 0) {
    ++slab_null_frees;
    return;
  }
  ++grain_at(at).slab_frees;
  bursts.close(runs[ev.cpu]);
  const auto it = live.find(ev.ptr);
  if (it == live.end()) {
    ++slab_free_only;
    ++caches[named ? cache_id(ev.name) : kUnknownCacheId].frees;
    return;
  }
  const LiveObj obj = it->second;
  live.erase(it);
  ++slab_frees;
  slab_life.add(obj.pos, at, obj.ts, ev.ts_ns, obj.seq);
  Site& s = sites[obj.callsite];
  if (obj.cpu != ev.cpu) {
    ++slab_cross;
    ++s.cross;
  }
  ++callsites[obj.callsite].frees;
  mempool.frees += obj.mempool;
  std::uint32_t cache = obj.cache;
  if (!obj.kmalloc) --s.unnamed_live;
  if (!obj.kmalloc && named) {
    // 6.1 names the cache at the free only: the allocation moves there.
    cache = cache_id(ev.name);
    --caches[kUnknownCacheId].allocs;
    caches[kUnknownCacheId].bytes_req -= obj.bytes_req;
    ++caches[cache].allocs;
    caches[cache].bytes_req += obj.bytes_req;
    CacheGeo& g = geo[cache];
    g.kmem_cache = true;
    g.object_size = std::max(g.object_size, obj.bytes_alloc);
    g.bytes_req = std::max(g.bytes_req, obj.bytes_req);
    ++g.allocs;
    ++g.frees;
    ++s.caches[cache];
  }
  ++caches[cache].frees;
}

void WorkloadProfile::Accum::page_alloc(const TraceEvent& ev, std::uint64_t at) {
  ++page_gfp[ev.gfp];
  if (page_alloc_failed(ev)) {
    ++page_failures;
    return;
  }
  ++page_allocs;
  ++grain_at(at).page_allocs;
  ++page_runs[ev.cpu].len;
  ++orders[std::min<std::size_t>(ev.order, orders.size() - 1)];
  if (ev.migratetype >= 0 && ev.migratetype < mm::MIGRATE_TYPES)
    ++migratetypes[static_cast<std::size_t>(ev.migratetype)];
  const LivePage lp{at, ev.ts_ns, ev.cpu, page_life.next_seq++};
  auto [it, inserted] = live_pages.try_emplace(ev.pfn, lp);
  if (!inserted) {
    ++page_lost_live;
    it->second = lp;
  }
}

void WorkloadProfile::Accum::page_free(const TraceEvent& ev, std::uint64_t at) {
  ++grain_at(at).page_frees;
  page_bursts.close(page_runs[ev.cpu]);
  const auto it = live_pages.find(ev.pfn);
  if (it == live_pages.end()) {
    ++page_free_only;
    return;
  }
  ++page_frees;
  page_life.add(it->second.pos, at, it->second.ts, ev.ts_ns, it->second.seq);
  if (it->second.cpu != ev.cpu) ++page_cross;
  live_pages.erase(it);
}

// alloc_vmap_area (6.3+) sizes include the guard page of a vm area.
void WorkloadProfile::Accum::vmap_area(const TraceEvent& ev) {
  if (ev.failed || ev.size < kTracePageSize) return;
  const std::uint64_t pages = ev.size / kTracePageSize;
  ++vm_areas[pages > 1 ? pages - 1 : pages];
}

WorkloadProfile::WorkloadProfile(std::string source, ProfileOptions opts)
    : opts_(opts), acc_(std::make_unique<Accum>()) {
  data_.source = std::move(source);
  data_.top_n = opts.top_n;
}
WorkloadProfile::~WorkloadProfile() = default;
WorkloadProfile::WorkloadProfile(WorkloadProfile&&) noexcept = default;
WorkloadProfile& WorkloadProfile::operator=(WorkloadProfile&&) noexcept = default;

void WorkloadProfile::add(const TraceEvent& ev) {
  if (!acc_) throw std::logic_error("WorkloadProfile::add after finish");
  Accum& a = *acc_;
  const std::uint64_t pos = a.pos++;
  a.grain_at(pos);  // every event has its place in the phases
  ++a.by_type[static_cast<std::size_t>(ev.type)];
  if (!a.any_ts || ev.ts_ns < a.first_ts) a.first_ts = ev.ts_ns;
  if (!a.any_ts || ev.ts_ns > a.last_ts) a.last_ts = ev.ts_ns;
  a.any_ts = true;
  if (ev.cpu >= 0) ++a.cpu_events[ev.cpu];
  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      return a.slab_alloc(ev, pos, opts_.kmalloc_max_cache_size);
    case EventType::kfree:
    case EventType::kmem_cache_free:
      return a.slab_free(ev, pos);
    case EventType::mm_page_alloc:
      return a.page_alloc(ev, pos);
    case EventType::mm_page_free:
      // Only mm_page_free: 6.1 repeats it as mm_page_free_batched.
      return a.page_free(ev, pos);
    case EventType::alloc_vmap_area:
      return a.vmap_area(ev);
    case EventType::lost_events:
      a.lost += ev.lost;
      return;
    default:
      return;
  }
}

std::vector<Weighted> default_vmalloc_pages() {
  return {{4, 60}, {1, 12}, {2, 8}, {8, 8}, {16, 5}, {32, 3}, {64, 2}, {256, 1}, {600, 1}};
}

namespace {

Lifetimes life_of(const std::vector<std::uint64_t>& events, const std::vector<std::uint64_t>& ns,
                  std::uint64_t freed, std::uint64_t never, std::uint64_t cohort) {
  Lifetimes out;
  out.freed = freed;
  out.never_freed = never;
  out.events_log2 = trimmed(events);
  out.ns_log2 = trimmed(ns);
  out.cohort = cohort;
  return out;
}

}  // namespace

// The kPhaseWindows windows: near-equal runs of grains (exactly equal but
// for the grain's rounding), the last cut at the last event.
void WorkloadProfile::snapshot_phases(ProfileData& d) const {
  const Accum& a = *acc_;
  const std::size_t n = a.grains.size();
  const std::size_t w = std::min<std::size_t>(kPhaseWindows, n);
  for (std::size_t i = 0; i < w; ++i) {
    const std::size_t from = i * n / w, to = (i + 1) * n / w;
    Accum::Grain sum;
    for (std::size_t g = from; g < to; ++g) sum.merge(a.grains[g]);
    PhaseWindow pw;
    pw.first_event = from * a.grain;
    pw.events = std::min<std::uint64_t>(to * a.grain, a.pos) - pw.first_event;
    pw.kmalloc = sum.kmalloc;
    pw.cache_allocs = sum.cache;
    pw.slab_frees = sum.slab_frees;
    pw.page_allocs = sum.page_allocs;
    pw.page_frees = sum.page_frees;
    d.phases.push_back(pw);
  }
}

// Bursts (the open runs closed on a copy), the top call sites' own tables
// and the kmem caches' geometry.
void WorkloadProfile::snapshot_sites(ProfileData& d) const {
  const Accum& a = *acc_;
  Accum::BurstAcc b = a.bursts;
  for (auto [cpu, run] : a.runs) b.close(run);
  d.bursts = {b.runs, b.allocs, b.longest, trimmed(b.log2), b.windows, b.window_sites};
  Accum::BurstAcc pb = a.page_bursts;
  for (auto [cpu, run] : a.page_runs) pb.close(run);
  d.page_bursts = {pb.runs, pb.allocs, pb.longest, trimmed(pb.log2)};
  auto top_cache = [&](const Accum::Site& s) -> std::uint32_t {
    std::uint32_t best = kUnknownCacheId;
    std::uint64_t n = 0;
    for (const auto& [c, k] : s.caches)
      if (k > n || (k == n && a.caches[c].name < a.caches[best].name)) best = c, n = k;
    return best;
  };
  for (const RateRow& r : d.call_sites) {
    const Accum::Site& s = a.sites[a.callsite_index.find(r.name)->second];
    const std::uint32_t c = top_cache(s);
    d.site_shapes.push_back({r.name, r.allocs, s.kmalloc, r.frees, s.cross, s.runs,
                             s.bytes_alloc_max, c == kUnknownCacheId ? "" : a.caches[c].name,
                             top_of(s.sizes, kSiteRows), top_of(s.gfp, kSiteRows)});
  }
  std::vector<std::uint64_t> inferred(a.geo.size());
  for (const Accum::Site& s : a.sites)
    if (s.unnamed_live) inferred[top_cache(s)] += s.unnamed_live;
  for (std::size_t c = 0; c < a.geo.size(); ++c) {
    const Accum::CacheGeo& g = a.geo[c];
    if (!g.kmem_cache) continue;
    d.cache_geometry.push_back(
        {a.caches[c].name, g.object_size, g.bytes_req, g.allocs + inferred[c], g.frees});
  }
  std::sort(d.cache_geometry.begin(), d.cache_geometry.end(),
            [](const CacheGeometry& x, const CacheGeometry& y) {
              return x.allocs != y.allocs ? x.allocs > y.allocs : x.name < y.name;
            });
}

// Mempools and vmalloc sizes: what the call sites' functions showed.
void WorkloadProfile::snapshot_pools(ProfileData& d) const {
  const Accum& a = *acc_;
  d.mempool = a.mempool;
  d.mempool.min_nr = top_of(a.min_nr, opts_.top_n);
  d.mempool.sizes = top_of(a.pool_sizes, opts_.top_n);
  const bool vmap = !a.vm_areas.empty();
  const auto& table = vmap ? a.vm_areas : a.vm_array;
  d.vmalloc.source = table.empty() ? "default" : vmap ? "alloc_vmap_area" : "page_array";
  for (const auto& [pages, n] : table) d.vmalloc.areas += n;
  d.vmalloc.pages = table.empty() ? default_vmalloc_pages() : top_of(table, opts_.top_n);
}

ProfileData WorkloadProfile::snapshot() const {
  const Accum& a = *acc_;
  ProfileData d;
  d.source = data_.source;
  d.top_n = opts_.top_n;
  d.events = a.pos;
  for (int t = 0; t < kNrEventTypes; ++t)
    if (const std::uint64_t n = a.by_type[static_cast<std::size_t>(t)])
      d.event_counts[event_type_name(static_cast<EventType>(t))] = n;
  d.lost_events = a.lost;
  d.first_ts_ns = a.first_ts;
  d.last_ts_ns = a.last_ts;
  d.cpu_events = a.cpu_events;
  auto sizes = [&](const Accum::Sizes& s) {
    SizeDist out;
    out.count = s.count;
    out.total_bytes = s.total;
    out.distinct = s.exact.size();
    out.log2 = trimmed(s.log2);
    out.top = top_of(s.exact, opts_.top_n);
    return out;
  };
  d.kmalloc_sizes = sizes(a.kmalloc_sizes);
  d.cache_sizes = sizes(a.cache_sizes);
  d.slab_gfp = top_of(a.slab_gfp, opts_.top_n);
  d.slab_gfp_distinct = a.slab_gfp.size();
  d.slab_frees = a.slab_frees;
  d.slab_free_only = a.slab_free_only;
  d.slab_null_frees = a.slab_null_frees;
  d.slab_cross_cpu_frees = a.slab_cross;
  // Objects allocated over (their free untraced) count as never freed too.
  d.slab_life = life_of(a.slab_life.events, a.slab_life.ns, a.slab_life.freed,
                        a.live.size() + a.slab_lost_live, a.slab_life.cohort);
  for (const RateRow& r : a.caches)
    if (r.allocs || r.frees) d.caches.push_back(r);
  std::sort(d.caches.begin(), d.caches.end(), [](const RateRow& x, const RateRow& y) {
    if (x.allocs != y.allocs) return x.allocs > y.allocs;
    if (x.frees != y.frees) return x.frees > y.frees;
    return x.name < y.name;
  });
  d.call_sites = a.callsites;
  std::sort(d.call_sites.begin(), d.call_sites.end(), [](const RateRow& x, const RateRow& y) {
    return x.allocs != y.allocs ? x.allocs > y.allocs : x.name < y.name;
  });
  if (d.call_sites.size() > opts_.top_n) d.call_sites.resize(opts_.top_n);
  d.call_sites_distinct = a.callsites.size();
  d.page_allocs = a.page_allocs;
  d.page_failures = a.page_failures;
  d.page_frees = a.page_frees;
  d.page_free_only = a.page_free_only;
  d.page_cross_cpu_frees = a.page_cross;
  d.orders = trimmed(a.orders);
  d.migratetypes = trimmed(a.migratetypes);
  d.page_gfp = top_of(a.page_gfp, opts_.top_n);
  d.page_gfp_distinct = a.page_gfp.size();
  d.page_life = life_of(a.page_life.events, a.page_life.ns, a.page_life.freed,
                        a.live_pages.size() + a.page_lost_live, a.page_life.cohort);
  snapshot_phases(d);
  snapshot_sites(d);
  snapshot_pools(d);
  return d;
}

void WorkloadProfile::finish() {
  if (!acc_) return;
  data_ = snapshot();
  acc_.reset();
}

const ProfileData& WorkloadProfile::data() const {
  if (acc_) data_ = snapshot();
  return data_;
}

std::vector<Weighted> WorkloadProfile::order_table() const {
  std::vector<Weighted> v;
  const auto& o = data().orders;
  for (std::size_t i = 0; i < o.size(); ++i)
    if (o[i]) v.push_back({i, o[i]});
  std::stable_sort(v.begin(), v.end(),
                   [](const Weighted& a, const Weighted& b) { return a.weight > b.weight; });
  return v;
}

std::vector<Weighted> WorkloadProfile::migratetype_table() const {
  std::vector<Weighted> v;
  const auto& m = data().migratetypes;
  for (std::size_t i = 0; i < m.size(); ++i)
    if (m[i]) v.push_back({i, m[i]});
  std::stable_sort(v.begin(), v.end(),
                   [](const Weighted& a, const Weighted& b) { return a.weight > b.weight; });
  return v;
}

// JSON. Fields that follow from others (fractions, rates, names of GFP masks
// and migrate types, bucket bounds) are written for the reader and ignored
// when read back.
namespace {

using nlohmann::json;

json log2_json(const std::vector<std::uint64_t>& v, bool sizes) {
  json out = json::array();
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (!v[k]) continue;
    // Sizes: (2^(k-1), 2^k]; lifetimes: [2^(k-1), 2^k).
    const std::uint64_t lo =
        k == 0 ? 0 : (sizes ? (std::uint64_t{1} << (k - 1)) + 1 : std::uint64_t{1} << (k - 1));
    const std::uint64_t hi = k == 0  ? (sizes ? 1 : 0)
                             : sizes ? (k == 64 ? ~std::uint64_t{0} : std::uint64_t{1} << k)
                                     : (k == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << k) - 1);
    out.push_back({{"log2", k}, {"min", lo}, {"max", hi}, {"count", v[k]}});
  }
  return out;
}

std::vector<std::uint64_t> log2_from(const json& j) {
  std::vector<std::uint64_t> v;
  for (const json& b : j) {
    const auto k = b.at("log2").get<std::size_t>();
    if (k >= kLog2Buckets) throw std::invalid_argument("log2 bucket out of range");
    if (v.size() <= k) v.resize(k + 1);
    v[k] = b.at("count").get<std::uint64_t>();
  }
  return v;
}

json sizes_json(const SizeDist& s) {
  json top = json::array();
  for (const Weighted& w : s.top) top.push_back({{"size", w.value}, {"count", w.weight}});
  return {
      {"count", s.count},
      {"total_bytes", s.total_bytes},
      {"mean", s.count ? static_cast<double>(s.total_bytes) / static_cast<double>(s.count) : 0.0},
      {"distinct", s.distinct},
      {"log2", log2_json(s.log2, true)},
      {"top", std::move(top)}};
}

SizeDist sizes_from(const json& j) {
  SizeDist s;
  s.count = j.at("count").get<std::uint64_t>();
  s.total_bytes = j.at("total_bytes").get<std::uint64_t>();
  s.distinct = j.at("distinct").get<std::uint64_t>();
  s.log2 = log2_from(j.at("log2"));
  for (const json& w : j.at("top"))
    s.top.push_back({w.at("size").get<std::uint64_t>(), w.at("count").get<std::uint64_t>()});
  return s;
}

json gfp_json(const std::vector<Weighted>& v) {
  json out = json::array();
  for (const Weighted& w : v) {
    const auto g = static_cast<mm::gfp_t>(w.value);
    out.push_back({{"value", w.value},
                   {"hex", fmt::format("{:#x}", w.value)},
                   {"name", mm::format_gfp(g)},
                   {"count", w.weight}});
  }
  return out;
}

std::vector<Weighted> gfp_from(const json& j) {
  std::vector<Weighted> v;
  for (const json& w : j)
    v.push_back({w.at("value").get<std::uint64_t>(), w.at("count").get<std::uint64_t>()});
  return v;
}

json life_json(const Lifetimes& l) {
  return {{"freed", l.freed},
          {"never_freed", l.never_freed},
          {"never_freed_fraction", l.never_freed_fraction()},
          {"cohort_frees", l.cohort},
          {"events_log2", log2_json(l.events_log2, false)},
          {"ns_log2", log2_json(l.ns_log2, false)}};
}

Lifetimes life_from(const json& j) {
  Lifetimes l;
  l.freed = j.at("freed").get<std::uint64_t>();
  l.never_freed = j.at("never_freed").get<std::uint64_t>();
  l.cohort = j.value("cohort_frees", std::uint64_t{0});  // absent before it was measured
  l.events_log2 = log2_from(j.at("events_log2"));
  l.ns_log2 = log2_from(j.at("ns_log2"));
  return l;
}

json rates_json(const std::vector<RateRow>& rows, const ProfileData& d) {
  json out = json::array();
  for (const RateRow& r : rows)
    out.push_back({{"name", r.name},
                   {"allocs", r.allocs},
                   {"frees", r.frees},
                   {"bytes_req", r.bytes_req},
                   {"allocs_per_s", d.per_second(r.allocs)},
                   {"frees_per_s", d.per_second(r.frees)}});
  return out;
}

std::vector<RateRow> rates_from(const json& j) {
  std::vector<RateRow> v;
  for (const json& r : j)
    v.push_back({r.at("name").get<std::string>(), r.at("allocs").get<std::uint64_t>(),
                 r.at("frees").get<std::uint64_t>(), r.at("bytes_req").get<std::uint64_t>()});
  return v;
}

// Index-keyed counts (orders, migrate types) as [{key: i, count: n}], zeros left out.
json indexed_json(const std::vector<std::uint64_t>& v, const char* key, bool mt_names) {
  json out = json::array();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i]) continue;
    json row = {{key, i}, {"count", v[i]}};
    if (mt_names) row["name"] = mm::migratetype_name(static_cast<int>(i));
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::uint64_t> indexed_from(const json& j, const char* key, std::size_t limit) {
  std::vector<std::uint64_t> v;
  for (const json& r : j) {
    const auto i = r.at(key).get<std::size_t>();
    if (i >= limit) throw std::invalid_argument(std::string(key) + " out of range");
    if (v.size() <= i) v.resize(i + 1);
    v[i] = r.at("count").get<std::uint64_t>();
  }
  return v;
}

// (value, weight) rows as [{key: value, count: weight}].
json weighted_json(const std::vector<Weighted>& v, const char* key) {
  json out = json::array();
  for (const Weighted& w : v) out.push_back({{key, w.value}, {"count", w.weight}});
  return out;
}

std::vector<Weighted> weighted_from(const json& j, const char* key) {
  std::vector<Weighted> v;
  for (const json& w : j)
    v.push_back({w.at(key).get<std::uint64_t>(), w.at("count").get<std::uint64_t>()});
  return v;
}

json phases_json(const std::vector<PhaseWindow>& v) {
  json out = json::array();
  for (const PhaseWindow& w : v)
    out.push_back({{"first_event", w.first_event},
                   {"events", w.events},
                   {"kmalloc", w.kmalloc},
                   {"kmem_cache_alloc", w.cache_allocs},
                   {"slab_frees", w.slab_frees},
                   {"page_allocs", w.page_allocs},
                   {"page_frees", w.page_frees}});
  return out;
}

std::vector<PhaseWindow> phases_from(const json& j) {
  std::vector<PhaseWindow> v;
  for (const json& w : j)
    v.push_back({w.at("first_event").get<std::uint64_t>(), w.at("events").get<std::uint64_t>(),
                 w.at("kmalloc").get<std::uint64_t>(),
                 w.at("kmem_cache_alloc").get<std::uint64_t>(),
                 w.at("slab_frees").get<std::uint64_t>(), w.at("page_allocs").get<std::uint64_t>(),
                 w.at("page_frees").get<std::uint64_t>()});
  return v;
}

json bursts_json(const Bursts& b) {
  return {{"runs", b.runs},
          {"site_window", kSiteWindow},
          {"windows", b.windows},
          {"window_sites", b.window_sites},
          {"sites_per_window", b.sites_per_window()},
          {"allocs", b.allocs},
          {"longest", b.longest},
          {"mean", b.runs ? static_cast<double>(b.allocs) / static_cast<double>(b.runs) : 0.0},
          {"log2", log2_json(b.log2, false)}};
}

Bursts bursts_from(const json& j) {
  // Profiles made before the locality was measured have no windows.
  return {j.at("runs").get<std::uint64_t>(),    j.at("allocs").get<std::uint64_t>(),
          j.at("longest").get<std::uint64_t>(), log2_from(j.at("log2")),
          j.value("windows", std::uint64_t{0}), j.value("window_sites", std::uint64_t{0})};
}

json site_shapes_json(const std::vector<CallSiteShape>& v) {
  json out = json::array();
  for (const CallSiteShape& c : v)
    out.push_back({{"name", c.name},
                   {"allocs", c.allocs},
                   {"kmalloc", c.kmalloc},
                   {"frees", c.frees},
                   {"cross_cpu_frees", c.cross_cpu_frees},
                   {"runs", c.runs},
                   {"bytes_alloc_max", c.bytes_alloc_max},
                   {"cache", c.cache},
                   {"sizes", weighted_json(c.sizes, "size")},
                   {"gfp", gfp_json(c.gfp)}});
  return out;
}

std::vector<CallSiteShape> site_shapes_from(const json& j) {
  std::vector<CallSiteShape> v;
  for (const json& c : j)
    v.push_back({c.at("name").get<std::string>(), c.at("allocs").get<std::uint64_t>(),
                 c.at("kmalloc").get<std::uint64_t>(), c.at("frees").get<std::uint64_t>(),
                 c.at("cross_cpu_frees").get<std::uint64_t>(), c.at("runs").get<std::uint64_t>(),
                 c.at("bytes_alloc_max").get<std::uint64_t>(), c.at("cache").get<std::string>(),
                 weighted_from(c.at("sizes"), "size"), gfp_from(c.at("gfp"))});
  return v;
}

json geometry_json(const std::vector<CacheGeometry>& v) {
  json out = json::array();
  for (const CacheGeometry& g : v)
    out.push_back({{"name", g.name},
                   {"object_size", g.object_size},
                   {"bytes_req", g.bytes_req},
                   {"allocs", g.allocs},
                   {"frees", g.frees}});
  return out;
}

std::vector<CacheGeometry> geometry_from(const json& j) {
  std::vector<CacheGeometry> v;
  for (const json& g : j)
    v.push_back({g.at("name").get<std::string>(), g.at("object_size").get<std::uint64_t>(),
                 g.at("bytes_req").get<std::uint64_t>(), g.at("allocs").get<std::uint64_t>(),
                 g.at("frees").get<std::uint64_t>()});
  return v;
}

json mempool_json(const MempoolUse& m) {
  return {{"creates", m.creates},
          {"min_nr", weighted_json(m.min_nr, "min_nr")},
          {"slab_allocs", m.slab_allocs},
          {"kmalloc_allocs", m.kmalloc_allocs},
          {"frees", m.frees},
          {"sizes", weighted_json(m.sizes, "size")}};
}

MempoolUse mempool_from(const json& j) {
  return {j.at("creates").get<std::uint64_t>(),     weighted_from(j.at("min_nr"), "min_nr"),
          j.at("slab_allocs").get<std::uint64_t>(), j.at("kmalloc_allocs").get<std::uint64_t>(),
          j.at("frees").get<std::uint64_t>(),       weighted_from(j.at("sizes"), "size")};
}

json vmalloc_json(const VmallocUse& v) {
  return {{"source", v.source}, {"areas", v.areas}, {"pages", weighted_json(v.pages, "pages")}};
}

VmallocUse vmalloc_from(const json& j) {
  VmallocUse v{j.at("source").get<std::string>(), j.at("areas").get<std::uint64_t>(),
               weighted_from(j.at("pages"), "pages")};
  if (v.source != "default" && v.source != "alloc_vmap_area" && v.source != "page_array")
    throw std::invalid_argument("vmalloc source \"" + v.source + "\" unknown");
  return v;
}

}  // namespace

nlohmann::json WorkloadProfile::to_json() const {
  const ProfileData& d = data();
  json cpus = json::array();
  for (const auto& [cpu, n] : d.cpu_events) cpus.push_back({{"cpu", cpu}, {"events", n}});
  json by_type = json::object();
  for (const auto& [name, n] : d.event_counts) by_type[name] = n;
  return {
      {"format", kProfileFormat},
      {"source", d.source},
      {"top_n", d.top_n},
      {"events", {{"total", d.events}, {"by_type", std::move(by_type)}, {"lost", d.lost_events}}},
      {"time",
       {{"first_ns", d.first_ts_ns},
        {"last_ns", d.last_ts_ns},
        {"duration_ns", d.duration_ns()},
        {"duration_s", static_cast<double>(d.duration_ns()) / 1e9}}},
      {"cpus",
       {{"events", std::move(cpus)},
        {"slab_cross_cpu_frees", d.slab_cross_cpu_frees},
        {"slab_cross_cpu_free_fraction", d.cross_cpu_free_fraction()},
        {"page_cross_cpu_frees", d.page_cross_cpu_frees}}},
      {"slab",
       {{"allocs", d.slab_allocs()},
        {"allocs_per_s", d.per_second(d.slab_allocs())},
        {"kmalloc", sizes_json(d.kmalloc_sizes)},
        {"kmem_cache_alloc", sizes_json(d.cache_sizes)},
        {"gfp", gfp_json(d.slab_gfp)},
        {"gfp_distinct", d.slab_gfp_distinct},
        {"frees", d.slab_frees},
        {"free_only", d.slab_free_only},
        {"null_frees", d.slab_null_frees},
        {"lifetime", life_json(d.slab_life)},
        {"caches", rates_json(d.caches, d)},
        {"call_sites", rates_json(d.call_sites, d)},
        {"call_sites_distinct", d.call_sites_distinct},
        {"bursts", bursts_json(d.bursts)},
        {"call_site_shapes", site_shapes_json(d.site_shapes)},
        {"cache_geometry", geometry_json(d.cache_geometry)}}},
      {"pages",
       {{"allocs", d.page_allocs},
        {"allocs_per_s", d.per_second(d.page_allocs)},
        {"failures", d.page_failures},
        {"frees", d.page_frees},
        {"free_only", d.page_free_only},
        {"orders", indexed_json(d.orders, "order", false)},
        {"migratetypes", indexed_json(d.migratetypes, "migratetype", true)},
        {"gfp", gfp_json(d.page_gfp)},
        {"gfp_distinct", d.page_gfp_distinct},
        {"lifetime", life_json(d.page_life)},
        {"bursts", bursts_json(d.page_bursts)}}},
      {"phases", phases_json(d.phases)},
      {"mempool", mempool_json(d.mempool)},
      {"vmalloc", vmalloc_json(d.vmalloc)},
  };
}

WorkloadProfile WorkloadProfile::from_json(const nlohmann::json& j) {
  try {
    if (!j.is_object() || !j.contains("format")) throw std::invalid_argument("no \"format\" key");
    const bool v1 = j.at("format") == kProfileFormat1;
    if (j.at("format") != kProfileFormat && !v1)
      throw std::invalid_argument("format is " + j.at("format").dump() + ", not \"" +
                                  kProfileFormat + "\" or \"" + kProfileFormat1 + "\"");
    ProfileData d;
    d.source = j.at("source").get<std::string>();
    d.top_n = j.at("top_n").get<unsigned>();
    const json& ev = j.at("events");
    d.events = ev.at("total").get<std::uint64_t>();
    for (const auto& [name, n] : ev.at("by_type").items())
      d.event_counts[name] = n.get<std::uint64_t>();
    d.lost_events = ev.at("lost").get<std::uint64_t>();
    d.first_ts_ns = j.at("time").at("first_ns").get<std::uint64_t>();
    d.last_ts_ns = j.at("time").at("last_ns").get<std::uint64_t>();
    if (d.last_ts_ns < d.first_ts_ns) throw std::invalid_argument("last_ns before first_ns");
    const json& cpus = j.at("cpus");
    for (const json& c : cpus.at("events"))
      d.cpu_events[c.at("cpu").get<int>()] = c.at("events").get<std::uint64_t>();
    d.slab_cross_cpu_frees = cpus.at("slab_cross_cpu_frees").get<std::uint64_t>();
    d.page_cross_cpu_frees = cpus.at("page_cross_cpu_frees").get<std::uint64_t>();
    const json& s = j.at("slab");
    d.kmalloc_sizes = sizes_from(s.at("kmalloc"));
    d.cache_sizes = sizes_from(s.at("kmem_cache_alloc"));
    d.slab_gfp = gfp_from(s.at("gfp"));
    d.slab_gfp_distinct = s.at("gfp_distinct").get<std::uint64_t>();
    d.slab_frees = s.at("frees").get<std::uint64_t>();
    d.slab_free_only = s.at("free_only").get<std::uint64_t>();
    d.slab_null_frees = s.at("null_frees").get<std::uint64_t>();
    d.slab_life = life_from(s.at("lifetime"));
    d.caches = rates_from(s.at("caches"));
    d.call_sites = rates_from(s.at("call_sites"));
    d.call_sites_distinct = s.at("call_sites_distinct").get<std::uint64_t>();
    const json& p = j.at("pages");
    d.page_allocs = p.at("allocs").get<std::uint64_t>();
    d.page_failures = p.at("failures").get<std::uint64_t>();
    d.page_frees = p.at("frees").get<std::uint64_t>();
    d.page_free_only = p.at("free_only").get<std::uint64_t>();
    d.orders = indexed_from(p.at("orders"), "order", 64);
    d.migratetypes = indexed_from(p.at("migratetypes"), "migratetype", mm::MIGRATE_TYPES);
    d.page_gfp = gfp_from(p.at("gfp"));
    d.page_gfp_distinct = p.at("gfp_distinct").get<std::uint64_t>();
    d.page_life = life_from(p.at("lifetime"));
    if (p.contains("bursts")) d.page_bursts = bursts_from(p.at("bursts"));
    if (v1) {
      d.vmalloc.pages = default_vmalloc_pages();
    } else {
      d.bursts = bursts_from(s.at("bursts"));
      d.site_shapes = site_shapes_from(s.at("call_site_shapes"));
      d.cache_geometry = geometry_from(s.at("cache_geometry"));
      d.phases = phases_from(j.at("phases"));
      d.mempool = mempool_from(j.at("mempool"));
      d.vmalloc = vmalloc_from(j.at("vmalloc"));
    }
    ProfileOptions o;
    o.top_n = d.top_n;
    WorkloadProfile w(d.source, o);
    w.acc_.reset();
    w.data_ = std::move(d);
    return w;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("profile: ") + e.what());
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    if (what.rfind("profile: ", 0) == 0) throw;
    throw std::invalid_argument("profile: " + what);
  }
}

}  // namespace mmfuzz::analysis
