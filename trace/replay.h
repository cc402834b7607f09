// Trace replay: kmem events become Ops (the translation a kernel developer
// would do by hand) and run through the Executor; the fidelity report
// compares what the trace says the kernel did with what the model did.
//
// What the translation knows (see docs/replay.md): mm_page_free_batched repeats mm_page_free;
// pcp refill/drain events move pages, they do not allocate; slab pages and
// the pages of a large kmalloc are the slab layer's own (the model allocates
// its own), recognized by the linear-map offset learned from the trace;
// kmem_cache_alloc_bulk is not traced per object; kfree(NULL) is traced;
// 6.1's kmem_cache_alloc has no name=.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "invariants/trace.h"
#include "program/executor.h"
#include "program/program.h"
#include "trace/event.h"

namespace mmfuzz::trace {

// The spine replay feeds (program/).
using prog::ExecOptions;
using prog::Executor;
using prog::Finding;
using prog::kNrOpKinds;
using prog::Op;
using prog::OpArgs;
using prog::OpKind;
using prog::OpResult;
using prog::Program;
using prog::Space;
using prog::StringHash;
using prog::StringTable;
using prog::Verdict;

struct ReplayOptions {
  // The trace must show every allocation and free: a free of a pointer never
  // allocated (trace.unknown_free) or an allocation of one still allocated
  // (trace.double_alloc, trace.page_double_alloc) is a violation.
  bool strict_frees = false;
  // Program texts: every line is an op, no heuristics.
  bool literal = false;
  std::uint64_t tick_ns = 1000000000;  // a timer tick (kswapd, cache_reap, lazy purge) per second
  std::uint64_t window = 256;          // events a page allocation waits to be attributed
  // Caches whose objects the kernel also allocates untraced (kmem_cache_alloc_bulk):
  // a second free of one of their pointers is an untraced reuse, not a double free.
  std::set<std::string> bulk_caches = {"maple_node", "skbuff_head_cache", "io_kiocb"};
  std::uint64_t kmalloc_max_cache_size = 8192;  // above it kmalloc goes to the page allocator
  // Cache names learned by a first pass (learn_cache_names): 6.1's
  // kmem_cache_alloc does not name the cache, its kmem_cache_free does.
  // Keys: "call_site bytes_req bytes_alloc" (one geometry at a call site:
  // what resolves an object) and "call_site" (the site's most frequent
  // cache: the fallback when its size agrees).
  std::unordered_map<std::string, std::string> cache_names;
  unsigned page_shift = 12;
  unsigned max_order = 11;  // MAX_ORDER of the model: higher orders are corrupt lines
};

// One fidelity measure: how often the model did what the trace says.
struct FidelityMetric {
  std::string name;
  std::uint64_t agree = 0, total = 0;
  struct Disagreement {
    std::string trace_value, model_value;
    std::uint64_t count = 0;
    std::string example;  // "line 1234: kmalloc call_site=... bytes_req=64"
  };
  std::map<std::pair<std::string, std::string>, Disagreement> disagreements;
  // Counts one comparison. `values` (a pair of strings: trace, model) and
  // `example` run only on a disagreement: most ops agree, and formatting
  // them would cost more than the op.
  template <class Values, class Example>
  void add(bool ok, Values&& values, Example&& example) {
    ++total;
    if (ok) {
      ++agree;
      return;
    }
    auto [t, m] = values();
    disagree(std::move(t), std::move(m), example);
  }
  void disagree(std::string trace_value, std::string model_value,
                const std::function<std::string()>& example);
  double percent() const {
    return total ? 100.0 * static_cast<double>(agree) / static_cast<double>(total) : 100.0;
  }
};

// The fidelity measures, in the order Replayer::fidelity() lists them.
enum FidelityId : std::size_t {
  kKmallocSize,      // kmalloc's bytes_alloc (its size class)
  kCacheSize,        // kmem_cache_alloc's bytes_alloc (the object size)
  kLargeOrder,       // the page order of a kmalloc above the largest kmalloc cache
  kPageMigratetype,  // mm_page_alloc's migratetype
  kAllocFailure,     // whether the allocation failed
  kSlabOrder,        // the slab page order per cache (Replayer::finish())
  kKmallocType,      // which kmalloc caches served it: normal, cg, rcl, dma (Replayer)
  kNrMetrics
};
// The measures, named and empty.
std::vector<FidelityMetric> fidelity_metrics();

// Measures one op the model ran (r) against what the trace says the kernel
// did: its handle (0: the allocation failed), its expect_bytes_alloc and
// expect_mt, and for a large kmalloc the page order (expect_large_order;
// ~0u: not one). `example` names the op on a disagreement. The Replayer
// measures every op with it; so does a trace window (trace/window.h).
template <class Example>
void measure_fidelity(std::vector<FidelityMetric>& fid, const Op& op, const OpResult& r,
                      unsigned expect_large_order, Example&& example) {
  prog::Handle h = 0;
  std::uint64_t expect_bytes = 0;
  std::size_t size_metric = kNrMetrics;
  if (const auto* k = op.get_if<prog::Kmalloc>()) {
    h = k->obj;
    expect_bytes = k->expect_bytes_alloc;
    size_metric = kKmallocSize;
  } else if (const auto* c = op.get_if<prog::KmemCacheAlloc>()) {
    h = c->obj;
    expect_bytes = c->expect_bytes_alloc;
    size_metric = kCacheSize;
  } else if (const auto* a = op.get_if<prog::AllocPages>()) {
    h = a->page;
  } else {
    return;
  }
  const bool trace_failed = h == 0;
  fid[kAllocFailure].add(
      trace_failed == r.failed,
      [&] {
        return std::pair<std::string, std::string>(trace_failed ? "failed" : "succeeded",
                                                   r.failed ? "failed" : "succeeded");
      },
      example);
  if (r.failed || trace_failed) return;
  if (const auto* a = op.get_if<prog::AllocPages>()) {
    if (a->expect_mt >= 0 && r.page_alloc)
      fid[kPageMigratetype].add(
          r.migratetype == a->expect_mt,
          [&] {
            return std::pair<std::string, std::string>(mm::migratetype_name(a->expect_mt),
                                                       mm::migratetype_name(r.migratetype));
          },
          example);
    return;
  }
  if (size_metric == kKmallocSize && expect_large_order != ~0u) {
    fid[kLargeOrder].add(
        r.page_alloc && r.order == expect_large_order,
        [&] {
          return std::pair(fmt::format("order {}", expect_large_order),
                           r.page_alloc ? fmt::format("order {}", r.order) : "no pages");
        },
        example);
    return;
  }
  // bytes_alloc as the trace and the model traced it.
  if (!expect_bytes) return;
  fid[size_metric].add(
      r.bytes_alloc == expect_bytes,
      [&] { return std::pair(std::to_string(expect_bytes), std::to_string(r.bytes_alloc)); },
      example);
}

struct ReplayStats {
  std::uint64_t events = 0;
  std::uint64_t by_type[kNrEventTypes] = {};
  std::uint64_t ops = 0;
  std::uint64_t ops_by_kind[kNrOpKinds] = {};
  // Trace anomalies (the trace's own view, before any model).
  std::uint64_t kfree_null = 0;
  std::uint64_t unknown_frees = 0;       // slab frees of pointers never seen allocated
  std::uint64_t unknown_bulk_frees = 0;  // of those, in bulk-allocated caches
  std::uint64_t unknown_page_frees = 0;  // page frees of pages allocated before tracing
  std::uint64_t double_allocs = 0;       // allocation at a pointer still live
  std::uint64_t double_frees = 0;        // free of an already-freed pointer
  std::uint64_t page_double_allocs = 0;
  std::uint64_t absorbed_slab_pages = 0;  // mm_page_alloc of slab pages (the model makes its own)
  std::uint64_t absorbed_large_kmalloc = 0;
  std::uint64_t splits = 0;  // split_page() inferred from tail frees
  std::uint64_t ticks = 0;
  std::uint64_t lost_markers = 0, lost_events = 0;
  std::uint64_t caches_created = 0;
  // Caches the model had under the trace's name but with another object
  // size: the replay made one of the trace's geometry ("name: model N,
  // trace M ...").
  std::vector<std::string> caches_regeometried;
  std::uint64_t first_ts = 0, last_ts = 0;
  bool linear_map_learned = false;
  std::uint64_t linear_map_offset = 0;
  std::vector<std::string> anomaly_examples;  // first few, "line N: ..."
};

class EventSource;

// A first pass over a trace: which cache each kmem_cache_alloc comes from,
// by the name= of the object's free. One call site may serve several caches
// (mempool_alloc_slab, __alloc_skb, sk_prot_alloc), which differ in
// (bytes_req, bytes_alloc) = (s->object_size, s->size): the answer is per
// call site and geometry, and per call site (the most frequent name).
// Memory: the live objects and the distinct (call site, geometry) pairs.
std::unordered_map<std::string, std::string> learn_cache_names(EventSource& src);

class Replayer {
 public:
  // With an executor the ops run on its model; `sink` (optional) sees every
  // op (mmfuzz convert).
  Replayer(Executor* ex, StringTable& strings, ReplayOptions opts = {});

  void feed(const TraceEvent& ev, std::uint64_t line);
  void finish();  // flushes waiting page allocations; compares slab orders
  std::function<void(const Op&)> sink;

  const ReplayStats& stats() const { return st_; }
  const std::vector<FidelityMetric>& fidelity() const { return fid_; }
  std::string fidelity_report(unsigned top = 5) const;
  std::uint64_t live_trace_objects() const { return live_objs_; }
  std::uint64_t live_trace_pages() const { return live_pages_; }

 private:
  enum : std::uint8_t { kKmalloc, kCache, kLarge };
  struct ObjView {
    bool live = false;
    std::uint8_t kind = kKmalloc;
    std::uint32_t name = 0;       // the cache name used for it
    std::uint32_t call_site = 0;  // allocation call site (learns cache names)
  };
  struct PageView {
    bool live = false;
    unsigned order = 0;
    bool compound = false;  // __GFP_COMP: split_page() cannot have split it
  };
  struct Pending {
    Op op;
    std::uint64_t seq = 0;
  };
  struct CacheInfo {
    std::uint32_t model_name = 0;                    // the name the ops use
    std::uint64_t trace_size = 0;                    // s->size as traced (bytes_alloc)
    std::map<unsigned, std::uint64_t> trace_orders;  // slab page orders seen in the trace
  };
  // One allocation geometry at a call site (the first pass's answer).
  struct SiteGeometry {
    std::uint32_t call_site = 0;
    std::uint64_t bytes_req = 0, bytes_alloc = 0;
    bool operator==(const SiteGeometry&) const = default;
  };
  struct SiteGeometryHash {
    std::size_t operator()(const SiteGeometry& g) const {
      return std::hash<std::uint64_t>()((std::uint64_t{g.call_site} << 40) ^ (g.bytes_req << 20) ^
                                        g.bytes_alloc);
    }
  };

  void emit(Op op);
  void after_step(const Op& op);
  void flush_pending(std::uint64_t upto_seq);
  bool take_pending(std::uint64_t pfn_in, bool exact, Pending& out);
  void absorb_slab_page(const Pending& p, std::uint32_t cache_name);
  void forget_page(std::uint64_t pfn);
  void learn_offset(std::uint64_t ptr, int cpu);
  void learn_name(const std::string& key, const std::string& name);
  std::uint32_t resolve_cache(const TraceEvent& ev, std::uint32_t cs);
  std::uint32_t cache_name(const TraceEvent& ev, std::uint32_t cs);
  std::uint64_t traced_size(std::uint32_t name) const;
  void adopt_cache(CacheInfo& ci, std::uint32_t name, const TraceEvent& ev);
  void anomaly(std::uint64_t line, const std::string& what);
  void on_kmalloc(const TraceEvent& ev, Op& op);
  void on_kmem_cache_alloc(const TraceEvent& ev, Op& op);
  void on_free(const TraceEvent& ev, Op& op);
  std::uint32_t free_cache(const TraceEvent& ev, const ObjView& o);
  void on_page_alloc(const TraceEvent& ev, Op& op);
  void on_page_free(const TraceEvent& ev, Op& op);
  void on_vmalloc(const TraceEvent& ev, Op& op);
  std::string example(const Op& op) const;

  Executor* ex_;
  StringTable& strings_;
  ReplayOptions opts_;
  ReplayStats st_;
  std::vector<FidelityMetric> fid_;
  std::uint64_t seq_ = 0;
  std::uint64_t next_tick_ = 0;
  bool lost_ = false;  // after a lost-events marker the trace's view has holes

  std::unordered_map<std::uint64_t, ObjView> objs_;
  std::unordered_map<std::uint64_t, PageView> pages_;
  std::map<std::uint64_t, unsigned> multi_pages_;  // live page allocations of order > 0
  // Pages of slabs and large kmallocs: their frees are the model's business.
  std::unordered_set<std::uint64_t> absorbed_;
  std::deque<Pending> pending_;
  std::unordered_map<std::uint32_t, std::uint32_t> cs_cache_;  // call site -> cache name
  std::unordered_map<SiteGeometry, std::uint32_t, SiteGeometryHash> geo_cache_;  // -> cache name
  std::unordered_map<std::uint32_t, std::uint64_t> name_size_;  // first pass: name -> s->size
  std::unordered_map<std::uint32_t, std::uint64_t>
      site_size_;  // call site -> its objects' size (0: several)
  std::unordered_map<std::uint32_t, CacheInfo> caches_;     // cache name -> info
  std::unordered_map<std::uint64_t, std::uint64_t> areas_;  // vmap area start -> live
  std::uint64_t live_objs_ = 0, live_pages_ = 0;

  // Linear-map offset: votes until one candidate wins.
  std::map<std::uint64_t, unsigned> offset_votes_;
  unsigned offset_total_ = 0;
  std::unordered_map<int, std::uint64_t> last_page_alloc_;  // per CPU: the latest mm_page_alloc pfn

  void measure_kmalloc_type(const prog::Kmalloc& k, const Op& op);
  // What the trace expected of the op being run (fidelity).
  unsigned expect_large_order_ = ~0u;
  std::uint64_t cur_line_ = 0;
  const TraceEvent* cur_ev_ = nullptr;  // the event being fed (examples quote it)
};

}  // namespace mmfuzz::trace
