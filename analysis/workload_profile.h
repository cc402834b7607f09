// A trace's workload profile: what the property generators and fuzz decoders
// draw from to make traffic that looks like the trace's. Sizes, GFP masks,
// lifetimes, per-cache and per-call-site rates, CPU spread, page orders and
// migrate types, event counts and the trace's duration.
//
// Built in one pass (add() every event, then finish()); memory grows with the
// live set and the numbers of distinct sizes, GFP masks, call sites and
// caches, never with the trace's length. Saved as JSON ("format":
// "mmfuzz-profile-1"); from_json(to_json()) gives the same profile back.
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

inline constexpr const char* kProfileFormat = "mmfuzz-profile-1";

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
  std::vector<std::uint64_t> events_log2;
  std::vector<std::uint64_t> ns_log2;
  double never_freed_fraction() const;
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
  // is not a mmfuzz-profile-1.
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

  ProfileOptions opts_;
  mutable ProfileData data_;
  std::unique_ptr<Accum> acc_;
};

}  // namespace mmfuzz::analysis
