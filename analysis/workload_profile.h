// A trace's workload profile: what the property generators and fuzz decoders
// draw from to make traffic that looks like the trace's. Sizes, GFP masks,
// lifetimes, per-cache and per-call-site rates, CPU spread, page orders and
// migrate types, event counts and the trace's duration.
//
// Version 2 adds what the generators (props/shape.h) draw from besides: the
// op mix in phases over the trace, bursts of allocations from one call site,
// the top call sites' own size and GFP tables, the kmem caches' geometry,
// mempool use and vmalloc sizes.
//
// Built in one pass (add() every event, then finish()); memory grows with the
// live set and the numbers of distinct sizes, GFP masks, call sites and
// caches, never with the trace's length. Saved as JSON ("format":
// "mmfuzz-profile-2"); from_json(to_json()) gives the same profile back, and
// from_json reads a "mmfuzz-profile-1" document with the new fields empty
// (vmalloc sizes: the default table).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "trace/event.h"

namespace mmfuzz::analysis {

using trace::event_type_name;
using trace::EventType;
using trace::kNrEventTypes;
using trace::TraceEvent;

inline constexpr const char* kProfileFormat = "mmfuzz-profile-2";
inline constexpr const char* kProfileFormat1 = "mmfuzz-profile-1";  // read, never written
inline constexpr unsigned kPhaseWindows = 16;  // phases: the trace in this many windows
inline constexpr unsigned kSiteRows = 16;      // rows of a call site's own size and GFP tables

// A value and how often the trace had it: one row of a sampler table.
struct Weighted {
  std::uint64_t value = 0;
  std::uint64_t weight = 0;
  bool operator==(const Weighted&) const = default;
};

// Allocation sizes (bytes_req). log2[k] counts sizes in (2^(k-1), 2^k]
// (k = 0: sizes 0 and 1), the kmalloc size classes' shape; top holds the
// most frequent exact sizes, most frequent first.
struct SizeDist {
  std::uint64_t count = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t distinct = 0;  // distinct exact sizes seen
  std::vector<std::uint64_t> log2;
  std::vector<Weighted> top;
  bool operator==(const SizeDist&) const = default;
};

// Lifetimes of objects (or page allocations) freed in the trace. In events:
// the distance between the alloc and the free in the event stream; in ns:
// their timestamps' difference. events_log2[k] / ns_log2[k] count lifetimes
// in [2^(k-1), 2^k) (k = 0: 0).
struct Lifetimes {
  std::uint64_t freed = 0;
  std::uint64_t never_freed = 0;  // still live at the end of the trace
  // Frees whose allocation was at most 4 allocations from the one the free
  // before it freed: objects born together die together.
  std::uint64_t cohort = 0;
  std::vector<std::uint64_t> events_log2;
  std::vector<std::uint64_t> ns_log2;
  double never_freed_fraction() const;
  double cohort_fraction() const;  // of the frees; 0 without any
  bool operator==(const Lifetimes&) const = default;
};

// Allocations and frees under one cache or call site. Caches as KmemStat
// attributes them: kmalloc objects to their kmalloc cache, kmem_cache_alloc
// objects to the cache their kmem_cache_free names ("(unknown cache)" when
// none does); free-only frees under the name they give.
struct RateRow {
  std::string name;
  std::uint64_t allocs = 0, frees = 0, bytes_req = 0;
  bool operator==(const RateRow&) const = default;
};

// One window of the trace by event count (kPhaseWindows near-equal ones):
// the op mix in it, growth at boot, steady churn later. Slab frees are
// non-NULL kfree and kmem_cache_free events, page allocations the
// successful ones.
struct PhaseWindow {
  std::uint64_t first_event = 0, events = 0;
  std::uint64_t kmalloc = 0, cache_allocs = 0, slab_frees = 0;
  std::uint64_t page_allocs = 0, page_frees = 0;
  std::uint64_t slab_allocs() const { return kmalloc + cache_allocs; }
  bool operator==(const PhaseWindow&) const = default;
};

// Bursts: runs of consecutive slab allocations from one call site on one
// CPU (a slab free or another call site's allocation on that CPU ends the
// run). log2[k] counts runs of length [2^(k-1), 2^k).
// Locality: the slab allocations cut into windows of kSiteWindow, and the
// distinct call sites in each summed (a real workload draws from a few
// sites at a time, far fewer than independent draws would).
inline constexpr std::uint64_t kSiteWindow = 64;
struct Bursts {
  std::uint64_t runs = 0, allocs = 0, longest = 0;
  std::vector<std::uint64_t> log2;
  std::uint64_t windows = 0, window_sites = 0;
  double sites_per_window() const;  // 0 without a whole window
  bool operator==(const Bursts&) const = default;
};

// One of the top call sites with its own tables. frees: its objects' frees
// seen (allocs - frees never freed); runs: bursts begun there; cache: for
// kmem_cache_alloc, the cache its objects' frees name most ("" none named).
struct CallSiteShape {
  std::string name;
  std::uint64_t allocs = 0, kmalloc = 0, frees = 0, cross_cpu_frees = 0, runs = 0;
  std::uint64_t bytes_alloc_max = 0;
  std::string cache;
  std::vector<Weighted> sizes;  // bytes_req, top kSiteRows
  std::vector<Weighted> gfp;    // top kSiteRows
  bool operator==(const CallSiteShape&) const = default;
};

// A kmem cache (not kmalloc-*) as its kmem_cache_alloc objects show it.
// 6.1 names the cache only at kmem_cache_free: objects count when a free
// names it, or, never freed, when their call site's frees named it.
struct CacheGeometry {
  std::string name;
  std::uint64_t object_size = 0;  // the largest bytes_alloc (the cache's object size)
  std::uint64_t bytes_req = 0;    // the largest bytes_req
  std::uint64_t allocs = 0, frees = 0;
  bool operator==(const CacheGeometry&) const = default;
};

// Mempools, seen through their slab traffic (symbolized call sites only):
// mempool_create*'s kmalloc of the mempool_t, mempool_init*'s element array
// (bytes_req / 8 = min_nr) and elements from mempool_alloc_slab /
// mempool_kmalloc. Page pools (mempool_alloc_pages) leave no call site.
struct MempoolUse {
  std::uint64_t creates = 0;
  std::vector<Weighted> min_nr;
  std::uint64_t slab_allocs = 0, kmalloc_allocs = 0, frees = 0;
  std::vector<Weighted> sizes;  // elements' bytes_alloc
  bool operator==(const MempoolUse&) const = default;
};

// vmalloc area sizes in pages. From the trace when it shows them
// (alloc_vmap_area, 6.3+: size less the guard page; else the page array
// __vmalloc_node_range / __vmalloc_area_node kmallocs, 8 bytes a page, for
// areas up to 512 pages), else default_vmalloc_pages().
struct VmallocUse {
  std::string source = "default";  // "alloc_vmap_area", "page_array" or "default"
  std::uint64_t areas = 0;         // areas the trace showed
  std::vector<Weighted> pages;     // heaviest first
  bool operator==(const VmallocUse&) const = default;
};
// The table a trace without vmalloc evidence gets: 4-page kernel stacks
// (THREAD_SIZE 16 KiB, VMAP_STACK) first, then small buffers, a few large.
std::vector<Weighted> default_vmalloc_pages();

// The profile proper: plain data, compared whole by the round-trip test.
struct ProfileData {
  std::string source;
  unsigned top_n = 32;
  // Events.
  std::uint64_t events = 0;
  std::map<std::string, std::uint64_t> event_counts;  // by event_type_name(), non-zero only
  std::uint64_t lost_events = 0;                      // sum of the lost-events markers
  std::uint64_t first_ts_ns = 0, last_ts_ns = 0;      // smallest and largest timestamp
  std::map<int, std::uint64_t> cpu_events;            // events per CPU
  // Slab.
  SizeDist kmalloc_sizes;          // kmalloc, kmalloc_node
  SizeDist cache_sizes;            // kmem_cache_alloc, kmem_cache_alloc_node
  std::vector<Weighted> slab_gfp;  // top N masks of both, most frequent first
  std::uint64_t slab_gfp_distinct = 0;
  std::uint64_t slab_frees = 0;  // matched with an allocation
  std::uint64_t slab_free_only = 0;
  std::uint64_t slab_null_frees = 0;  // kfree(NULL), kmem_cache_free(NULL)
  std::uint64_t slab_cross_cpu_frees = 0;
  Lifetimes slab_life;
  std::vector<RateRow> caches;      // every cache, by allocations then name
  std::vector<RateRow> call_sites;  // the top N by allocations
  std::uint64_t call_sites_distinct = 0;
  // Page allocator (mm_page_alloc / mm_page_free; see KmemStat for why not
  // the batched, zone_locked and pcpu_drain events).
  std::uint64_t page_allocs = 0;  // successful
  std::uint64_t page_failures = 0;
  std::uint64_t page_frees = 0;  // matched
  std::uint64_t page_free_only = 0;
  std::uint64_t page_cross_cpu_frees = 0;
  std::vector<std::uint64_t> orders;        // orders[o]: successful allocations of order o
  std::vector<std::uint64_t> migratetypes;  // by migratetype number (MIGRATE_UNMOVABLE = 0, ...)
  std::vector<Weighted> page_gfp;           // top N, most frequent first
  std::uint64_t page_gfp_distinct = 0;
  Lifetimes page_life;
  // Version 2.
  std::vector<PhaseWindow> phases;
  Bursts bursts;
  // Runs of page allocations on a CPU, each ended by a page free there
  // (readahead, fork and slab growth allocate pages in runs).
  Bursts page_bursts;
  std::vector<CallSiteShape> site_shapes;     // the call_sites rows' own tables, same order
  std::vector<CacheGeometry> cache_geometry;  // by allocations, then name
  MempoolUse mempool;
  VmallocUse vmalloc;

  std::uint64_t duration_ns() const { return last_ts_ns - first_ts_ns; }
  std::uint64_t slab_allocs() const { return kmalloc_sizes.count + cache_sizes.count; }
  // Matched slab frees on another CPU than the allocation's; 0 without frees.
  double cross_cpu_free_fraction() const;
  // Per second of trace time; 0 for a trace without duration.
  double per_second(std::uint64_t n) const;
  bool operator==(const ProfileData&) const = default;
};

struct ProfileOptions {
  unsigned top_n = 32;  // rows kept in the top-N tables (sizes, GFP masks, call sites)
  std::uint64_t kmalloc_max_cache_size = 8192;
};

class WorkloadProfile {
 public:
  explicit WorkloadProfile(std::string source = {}, ProfileOptions opts = {});
  ~WorkloadProfile();
  WorkloadProfile(WorkloadProfile&&) noexcept;
  WorkloadProfile& operator=(WorkloadProfile&&) noexcept;
  WorkloadProfile(const WorkloadProfile&) = delete;
  WorkloadProfile& operator=(const WorkloadProfile&) = delete;

  void add(const TraceEvent& ev);
  // Folds the live set into the never-freed counts and drops the per-event
  // state; add() after finish() throws std::logic_error. Idempotent.
  void finish();
  bool finished() const { return !acc_; }

  // The profile so far (finish() first for the final one).
  const ProfileData& data() const;
  nlohmann::json to_json() const;
  // Throws std::invalid_argument ("profile: ..." one line) on a document that
  // is not a mmfuzz-profile-2 or -1 (whose version-2 fields stay empty).
  static WorkloadProfile from_json(const nlohmann::json& j);

  // Sampler tables for the generators: (value, weight) rows, heaviest first.
  std::vector<Weighted> kmalloc_size_table() const { return data().kmalloc_sizes.top; }
  std::vector<Weighted> cache_size_table() const { return data().cache_sizes.top; }
  std::vector<Weighted> slab_gfp_table() const { return data().slab_gfp; }
  std::vector<Weighted> page_gfp_table() const { return data().page_gfp; }
  std::vector<Weighted> order_table() const;
  std::vector<Weighted> migratetype_table() const;

 private:
  struct Accum;
  ProfileData snapshot() const;
  void snapshot_phases(ProfileData& d) const;
  void snapshot_sites(ProfileData& d) const;
  void snapshot_pools(ProfileData& d) const;

  ProfileOptions opts_;
  mutable ProfileData data_;
  std::unique_ptr<Accum> acc_;
};

}  // namespace mmfuzz::analysis
