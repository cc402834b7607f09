// The replay report: one self-contained HTML file (inline CSS and inline SVG
// only; no scripts, fonts, images or links to anything outside the file) with
// plots of the model's state over trace time (free pages per order on a log
// scale, slab memory, kmalloc bytes, extfrag events), the trace's markers as
// labelled lines across every plot, the perf kmem stat tables, the top call
// sites, the live objects by call site, the violations, the fidelity notes
// and the final /proc/slabinfo and /proc/buddyinfo.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mmfuzz::analysis {

// The model's state at one point of the replay.
struct TimelineSample {
  std::uint64_t ts_ns = 0;  // trace time
  std::uint64_t event = 0;  // events replayed so far
  // Free pages (not blocks) in the buddy free lists by order (index = order),
  // summed over zones.
  std::vector<std::uint64_t> free_pages_per_order;
  std::uint64_t live_kmalloc_bytes = 0;  // requested bytes of live kmalloc objects
  std::uint64_t slab_bytes_total = 0;    // all slab memory (pages * PAGE_SIZE)
  // (cache index into Timeline::caches, bytes)
  std::vector<std::pair<std::uint32_t, std::uint64_t>> slab_bytes;
};

struct ViolationMarker {
  std::uint64_t ts_ns = 0;
  std::uint64_t event = 0;
  std::string id;     // invariant id
  std::string title;  // one line
};

// A tracing_mark_write (trace_marker) line: a phase the recorder announced.
struct TraceMarker {
  std::uint64_t ts_ns = 0;
  std::uint64_t event = 0;
  std::string text;
};

// mm_page_alloc_extfrag events over trace time in equal bins: at most
// kMaxBins, the bin width doubling (neighbours merged) when the trace outgrows
// them, so memory is bounded and every event is counted.
struct ExtfragBin {
  std::uint64_t fragmenting = 0;  // fallback from a smaller pageblock order
  std::uint64_t other = 0;
  std::uint64_t change_ownership = 0;  // the pageblock changed migratetype
};
struct ExtfragHistogram {
  static constexpr std::size_t kMaxBins = 512;
  std::uint64_t t0_ns = 0, width_ns = 1'000'000;  // bin i: [t0 + i*w, t0 + (i+1)*w)
  std::vector<ExtfragBin> bins;
  std::uint64_t total = 0;
  void add(std::uint64_t ts_ns, bool fragmenting, bool change_ownership);
};

struct Timeline {
  std::vector<std::string> caches;  // names referenced by TimelineSample::slab_bytes
  std::vector<TimelineSample> samples;
  std::vector<ViolationMarker> violations;
  std::vector<TraceMarker> markers;  // drawn across every plot
  ExtfragHistogram extfrag;
  std::size_t max_samples = 2000;

  // Appends a sample, keeping at most max_samples (at least 2): when full,
  // every other sample is dropped and from then on only every 2^k-th sample
  // is kept, so the kept samples stay evenly spaced and memory stays bounded
  // for any trace length. The first and the newest sample are always kept.
  void add(TimelineSample s);

  // add()'s bookkeeping; left alone by everyone else.
  std::uint64_t added = 0;    // add() calls so far
  std::uint64_t stride = 1;   // keep the samples whose add() number is a multiple
  bool tail_pending = false;  // samples.back() is off-stride: the next add() replaces it
};

struct ReportInfo {
  std::string title;    // "mmfuzz replay: arm64-6.1-boot-shell.trace.zst"
  std::string verdict;  // "clean" / "3 violations"
  std::vector<std::pair<std::string, std::string>> summary;  // key/value rows
  std::string slabinfo, buddyinfo;                           // final state, preformatted
  std::vector<std::string> violation_reports;                // kernel-style text reports
  std::string fidelity;                                      // preformatted
  // perf kmem stat (from the trace).
  std::string kmem_stat;  // the text tables, preformatted
  struct Callsite {
    std::string name;
    std::uint64_t bytes_alloc = 0, bytes_req = 0, hit = 0;
  };
  std::vector<Callsite> top_callsites;  // by bytes allocated, largest first
  struct Live {
    std::string call_site, cache;
    std::uint64_t objects = 0, bytes_alloc = 0;
  };
  std::vector<Live> live_by_callsite;              // largest first
  std::uint64_t live_objects = 0, live_bytes = 0;  // totals, rows cut or not
};

// The document. The verdict shows green when there are no violations (no
// markers and no reports), red otherwise.
std::string render_html_report(const ReportInfo& info, const Timeline& tl);

// Writes DIR/index.html, creating DIR if needed, atomically (temp file in DIR
// + rename): never a half-written file. Throws std::runtime_error with a
// one-line message on failure.
void write_html_report(const std::string& dir, const ReportInfo& info, const Timeline& tl);

}  // namespace mmfuzz::analysis
