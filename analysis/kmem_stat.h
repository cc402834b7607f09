// What `perf kmem stat --slab --page --caller` reports, computed from a
// stream of kmem trace events: the per-callsite slab table, the slab and page
// allocator summaries and the order x migratetype table, in perf's layout and
// under perf's names so the numbers can be compared line by line; plus what
// perf does not show: a per-cache table, kfree(NULL) calls, free-only frees,
// cross-CPU frees and the objects and pages still live at the end.
//
// Memory grows with the live set (objects and pages allocated and not yet
// freed) and the number of distinct call sites and caches, never with the
// trace's length. The per-pointer tables (perf --alloc) are opt-in
// (KmemStatOptions::per_pointer): they grow with the distinct pointers and
// pfns seen, which the size of memory bounds.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analysis/html_report.h"
#include "trace/event.h"

namespace mmfuzz::analysis {

using trace::event_type_name;
using trace::EventType;
using trace::kNrEventTypes;
using trace::TraceEvent;

// The 6.1 kmalloc cache that serves bytes_alloc bytes under these GFP flags
// (kmalloc_type(): dma-kmalloc-, kmalloc-rcl-, kmalloc-cg-, kmalloc-; sizes as
// the kernel names them: kmalloc-128, kmalloc-1k). Past max_cache_size
// kmalloc goes to the page allocator: "kmalloc-large".
std::string kmalloc_cache_name(std::uint32_t gfp, std::uint64_t bytes_alloc,
                               std::uint64_t max_cache_size = 8192);

// perf's fragmentation(): 100 - 100 * req / alloc, 0 for no bytes.
double fragmentation_percent(std::uint64_t bytes_req, std::uint64_t bytes_alloc);

// perf kmem's sort keys (-s/--sort), under perf's names. Every key puts the
// largest first, as perf does, except callsite, which sorts by name A to Z
// (perf compares addresses; a symbolized trace gives names).
enum class SlabSortKey : std::uint8_t { ptr, callsite, hit, bytes, frag, pingpong };
enum class PageSortKey : std::uint8_t { page, callsite, hit, bytes, order, migtype, gfp };

struct StatSort {
  std::vector<SlabSortKey> slab = {SlabSortKey::frag, SlabSortKey::hit, SlabSortKey::bytes};
  std::vector<PageSortKey> page = {PageSortKey::bytes, PageSortKey::hit};
};

// "bytes,order": the slab tables sort by the slab keys in the list, the page
// tables by the page keys (callsite, hit and bytes are both); a side the list
// names no key of keeps perf's default ("frag,hit,bytes", "bytes,hit").
// Throws std::invalid_argument with a one-line message for an unknown key.
StatSort parse_stat_sort(std::string_view keys);
std::string slab_sort_names(const std::vector<SlabSortKey>& keys);  // "frag,hit,bytes"
std::string page_sort_names(const std::vector<PageSortKey>& keys);

// A migratetype in the 8-column style of perf's Mig.type column. perf's own
// table (UNMOVABL, RECLAIM, MOVABLE, RESERVED, CMA/ISLT) follows the enum of
// kernels before 4.4; these follow the modelled kernel's (6.1: UNMOVABL,
// MOVABLE, RECLAIM, HIGHATOM, CMA, ISOLATE), so the name is the page's type.
const char* migratetype_abbrev(int mt);
// perf's compact GFP string: "GFP_KERNEL|__GFP_ZERO" -> "K|Z".
std::string compact_gfp(std::uint32_t gfp);

struct KmemStatOptions {
  std::uint64_t page_size = 4096;
  std::uint64_t kmalloc_max_cache_size = 8192;  // KMALLOC_MAX_CACHE_SIZE (SLUB: 2 pages)
  // NUMA node of each CPU for perf's "Cross CPU allocations" (which counts
  // allocations asking for another node than the CPU's); missing CPUs: node 0.
  std::vector<int> cpu_node;
  // Collect the per-pointer and per-pfn tables (perf --alloc).
  bool per_pointer = false;
  // call site -> cache, learned by the replay's first pass (6.1's
  // kmem_cache_alloc names no cache): where a live object's call site and
  // size were never seen freed with a name, this names its cache.
  std::unordered_map<std::string, std::string> cache_names;
};

// What report() and to_json() show.
struct StatReportOptions {
  unsigned top_n = 20;  // rows per table (0: all), perf's -l
  StatSort sort;
  bool caller = false;  // perf --caller for pages (the slab one is always shown)
  bool alloc = false;   // perf --alloc: per pointer (slab) and per pfn (page)
};

// One row of the callsite table (perf --caller).
// perf --alloc rows use it too, one per pointer: ptr set, call_site the
// last allocation's.
struct SlabCallsite {
  std::string call_site;  // as the trace names it: "func+0x1c/0x40" or an address
  std::uint64_t ptr = 0;
  std::uint64_t bytes_alloc = 0, bytes_req = 0;
  std::uint64_t hit = 0;       // allocations
  std::uint64_t pingpong = 0;  // of those, freed on another CPU than the allocating one
  double frag() const { return fragmentation_percent(bytes_req, bytes_alloc); }
};

// One row of the per-cache table. kmalloc objects belong to their kmalloc
// cache from the allocation on (by bytes_alloc); kmem_cache_alloc objects to
// the cache the allocation names (kernels from 2025 on), else the one their
// kmem_cache_free names. An object never freed with a name (still live, or
// freed by kfree) goes to the cache its call site's objects of the same size
// were freed to, else to KmemStatOptions::cache_names' cache for the call
// site, else stays in "(unknown cache)". Frees of pointers never seen
// allocated count as free-only: under the name kmem_cache_free gives, under
// "(unknown cache)" for kfree.
struct SlabCache {
  std::string name;
  std::uint64_t allocs = 0, bytes_alloc = 0, bytes_req = 0;
  std::uint64_t frees = 0;      // every free of the cache, free-only ones included
  std::uint64_t free_only = 0;  // frees of pointers not seen allocated
  std::uint64_t pingpong = 0;
  std::uint64_t by_call_site = 0;  // of allocs, placed here by call site (never freed by name)
  std::uint64_t live() const { return allocs - (frees - free_only); }
  double frag() const { return fragmentation_percent(bytes_req, bytes_alloc); }
};

struct SlabTotals {
  // perf's SUMMARY (SLAB allocator).
  std::uint64_t nr_allocs = 0, bytes_req = 0, bytes_alloc = 0, bytes_freed = 0;
  std::uint64_t nr_cross_node_allocs = 0;  // perf's "Cross CPU allocations" numerator
  // Not in perf.
  std::uint64_t nr_frees = 0;         // frees matched with an allocation
  std::uint64_t nr_pingpong = 0;      // of those, freed on another CPU
  std::uint64_t kfree_null = 0;       // kfree(NULL): traced, frees nothing
  std::uint64_t cache_free_null = 0;  // kmem_cache_free(s, NULL)
  std::uint64_t free_only_kfree = 0;  // kfree of a pointer not seen allocated
  std::uint64_t free_only_cache = 0;  // kmem_cache_free of one
  std::uint64_t failed_allocs = 0;    // allocations returning NULL (ptr 0)
  std::uint64_t alloc_over_live = 0;  // a live pointer allocated again: its free was not traced
  std::uint64_t live_objects = 0, live_bytes_alloc = 0;
};

// perf sizes its order x migratetype table for MAX_ORDER 11 and 6 types.
inline constexpr unsigned kStatOrders = 11;
inline constexpr unsigned kStatMigratetypes = 6;

struct PageTotals {
  // perf's SUMMARY (page allocator).
  std::uint64_t nr_allocs = 0, alloc_bytes = 0;     // failures included, as perf counts them
  std::uint64_t nr_frees = 0, free_bytes = 0;       // mm_page_free only
  std::uint64_t nr_nomatch = 0, nomatch_bytes = 0;  // frees of pages not seen allocated
  std::uint64_t nr_fails = 0, fail_bytes = 0;
  // order_mt[order][migratetype]: successful allocations.
  std::array<std::array<std::uint64_t, kStatMigratetypes>, kStatOrders> order_mt{};
  // Not in perf.
  std::uint64_t out_of_table = 0;  // successful allocations past the table (order or type)
  std::uint64_t alloc_over_live = 0;
  std::uint64_t cross_cpu_frees = 0;
  std::uint64_t batched_frees = 0;  // mm_page_free_batched: repeats mm_page_free in 6.1
  std::uint64_t zone_locked = 0;    // mm_page_alloc_zone_locked: buddy -> pcp moves
  std::uint64_t pcpu_drain = 0;     // mm_page_pcpu_drain: pcp -> buddy moves
  std::uint64_t extfrag = 0;        // mm_page_alloc_extfrag
  std::uint64_t live_pages = 0;     // allocations still live (each of 2^order pages)
  std::uint64_t alloc_freed() const { return nr_frees - nr_nomatch; }
  std::uint64_t alloc_freed_bytes() const { return free_bytes - nomatch_bytes; }
};

// One row of the page tables (perf --caller / --alloc for pages). ftrace's
// mm_page_alloc has no call site (perf takes one from a call chain): the
// Callsite column names the allocating task instead.
struct PageStatRow {
  std::uint64_t pfn = 0;  // --alloc rows; 0 in --caller rows
  std::string callsite;   // the task (comm) that allocated
  unsigned order = 0;
  int migratetype = -1;
  std::uint32_t gfp = 0;
  std::uint64_t nr_alloc = 0, alloc_bytes = 0, nr_free = 0, free_bytes = 0;
};

// Objects still live at the end, grouped by call site and cache.
struct LiveCallsite {
  std::string call_site, cache;
  std::uint64_t objects = 0, bytes_alloc = 0, bytes_req = 0;
};

class KmemStat {
 public:
  explicit KmemStat(KmemStatOptions opts = {});
  ~KmemStat();
  KmemStat(KmemStat&&) noexcept;
  KmemStat& operator=(KmemStat&&) noexcept;
  KmemStat(const KmemStat&) = delete;
  KmemStat& operator=(const KmemStat&) = delete;

  void add(const TraceEvent& ev);

  // The report: callsite table, per-cache table, SUMMARY (SLAB allocator),
  // SUMMARY (page allocator) with the order x migratetype table. top_n
  // limits each table (0: every row); a cut table ends in perf's "..." row.
  std::string report(unsigned top_n = 20) const;
  nlohmann::json to_json(unsigned top_n = 20) const;
  // With perf's sort keys and its --caller/--alloc tables.
  std::string report(const StatReportOptions& ro) const;
  nlohmann::json to_json(const StatReportOptions& ro) const;

  const SlabTotals& slab() const { return slab_; }
  const PageTotals& page() const { return page_; }
  // Callsites in perf's default --caller order, "frag,hit,bytes": each
  // descending, ties by call site name.
  std::vector<SlabCallsite> callsites() const;
  std::vector<SlabCallsite> callsites(const std::vector<SlabSortKey>& keys) const;
  // perf --alloc: one row per pointer (empty unless per_pointer).
  std::vector<SlabCallsite> pointers(const std::vector<SlabSortKey>& keys) const;
  // perf --caller / --alloc for pages: rows by (task, order, migratetype,
  // gfp) and (pfn, order, migratetype, gfp; empty unless per_pointer).
  std::vector<PageStatRow> page_callers(const std::vector<PageSortKey>& keys) const;
  std::vector<PageStatRow> page_allocs(const std::vector<PageSortKey>& keys) const;
  // Caches by bytes allocated, then allocations, descending; ties by name.
  // Objects never freed with a name are placed by call site (see SlabCache).
  std::vector<SlabCache> caches() const;
  // Live objects by call site and cache: bytes, then objects, descending.
  std::vector<LiveCallsite> live_by_callsite() const;
  // Trace markers (tracing_mark_write) and mm_page_alloc_extfrag events
  // over time, for the HTML report's plots.
  const std::vector<TraceMarker>& markers() const;
  std::uint64_t markers_dropped() const;
  const ExtfragHistogram& extfrag() const;
  std::uint64_t events() const { return events_; }

 private:
  struct State;
  void add_alloc(const TraceEvent& ev);
  void add_free(const TraceEvent& ev);
  void add_page_alloc(const TraceEvent& ev);
  void add_page_free(const TraceEvent& ev);
  void add_marker(const TraceEvent& ev);
  void slab_summary(std::string& out) const;
  void page_summary(std::string& out) const;
  void order_table(std::string& out) const;
  nlohmann::json slab_json(const StatReportOptions& ro) const;
  nlohmann::json page_json() const;
  KmemStatOptions opts_;
  SlabTotals slab_;
  PageTotals page_;
  std::uint64_t events_ = 0;
  std::unique_ptr<State> st_;
};

}  // namespace mmfuzz::analysis
