// The checker framework (DESIGN rule 4): checkers observe, never mutate.
// Each family runs the same predicates in two modes: incremental (after an
// op, only what it touched) and full sweep (every N ops and at the end).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "invariants/violation.h"
#include "mm/observer.h"

namespace mmfuzz::mm {
class Mm;
}

namespace mmfuzz::inv {

// Which invariants run: comma-separated globs over invariant ids, "-glob"
// removes ("all", "buddy.*", "all,-buddy.pcp", "page_alloc.*").
class CheckSelection {
 public:
  CheckSelection() = default;
  // Throws mm::ConfigError naming the bad pattern (one that matches nothing).
  static CheckSelection parse(std::string_view spec);
  bool enabled(std::string_view id) const;

 private:
  static CheckSelection parse_uncached(std::string_view spec);
  std::vector<std::pair<bool, std::string>> rules_;  // (include?, glob)
  bool all_ = false;                                 // exactly "all": no globbing per call
};

bool glob_match(std::string_view pattern, std::string_view text);

// Collects violations found by a checker, honouring the selection and a cap
// per invariant so one broken structure does not flood the report.
class Reporter {
 public:
  Reporter(const CheckSelection& sel, std::vector<Violation>& out, std::int64_t op_index,
           const std::string& op_name, unsigned cap, bool capture_stacks);
  bool enabled(std::string_view id) const { return sel_.enabled(id); }
  void report(Violation v);
  std::uint64_t reported() const { return reported_; }

 private:
  const CheckSelection& sel_;
  std::vector<Violation>& out_;
  std::int64_t op_index_;
  const std::string& op_name_;
  unsigned cap_;
  bool capture_stacks_;
  std::uint64_t reported_ = 0;
};

// Page ranges an op touched, from the model's events.
struct TouchLog {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // (pfn, nr_pages)
  std::vector<std::pair<std::uint64_t, bool>> objects;  // (slab object, allocated by this op)
  // Kernel VA ranges [start, end) of vmalloc/vmap/ioremap areas mapped or
  // unmapped (vm_area_changed), and ranges whose TLB entries were flushed
  // when lazily freed areas were purged (purge_vmap_area_lazy).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> vm_ranges;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> vm_flushes;
  // Allocations and the zone state their watermark checks saw.
  std::vector<mm::WatermarkPass> watermarks;
  // The model reported misuse during the op: what it touched may hold the
  // Program's damage, not only the allocator's work.
  bool misuse = false;
  void add(std::uint64_t pfn, std::uint64_t nr) { ranges.emplace_back(pfn, nr); }
  bool empty() const {
    return ranges.empty() && objects.empty() && vm_ranges.empty() && vm_flushes.empty() &&
           watermarks.empty();
  }
  void clear() {
    ranges.clear();
    objects.clear();
    vm_ranges.clear();
    vm_flushes.clear();
    watermarks.clear();
    misuse = false;
  }
};

class Checker {
 public:
  virtual ~Checker() = default;
  virtual const char* family() const = 0;
  virtual const std::vector<std::string>& invariants() const = 0;
  virtual void full(const mm::Mm& mm, Reporter& r) = 0;
  virtual void incremental(const mm::Mm& mm, const TouchLog& touched, Reporter& r) = 0;
};

std::vector<std::unique_ptr<Checker>> make_all_checkers();
// Every invariant and misuse id the checkers and the model can report.
std::vector<std::string> all_invariant_ids();
std::string invariant_description(const std::string& id);

struct CheckOptions {
  std::string checks = "all";
  bool incremental = true;
  std::uint64_t full_every = 0;  // full sweep every N ops; 0: only at finish()
  unsigned max_reports_per_invariant = 8;
  bool capture_stacks = true;
  bool report_leaks = false;  // finish(): objects still allocated (slab.leak)
  // Off: misuse is seen (the op's checks know) but no report is built. The
  // fuzzers, whose Programs misuse the API on purpose, only crash on
  // invariants and save the cost of formatting reports nobody reads.
  bool record_misuse = true;
};

// Attaches to a model, turns its misuse reports into violations and runs the
// checkers around each op. The Executor owns one per run; tests of mm/ and
// invariants/ use it directly.
class CheckEngine : public mm::MmObserver {
 public:
  CheckEngine(mm::Mm& mm, CheckOptions opts = {});
  ~CheckEngine() override;
  CheckEngine(const CheckEngine&) = delete;
  CheckEngine& operator=(const CheckEngine&) = delete;

  void begin_op(std::int64_t index, std::string name);
  // The same for a static name: reuses the name buffer (no allocation per op).
  void begin_op(std::int64_t index, const char* name);
  void end_op();
  void full_sweep();
  void finish();
  // A violation found outside the checkers and the model (the trace family,
  // invariants/trace.h), as of the current op: selected, capped and kept like
  // theirs.
  void report(Violation v);

  const std::vector<Violation>& violations() const { return violations_; }
  bool clean() const { return violations_.empty(); }
  void clear() { violations_.clear(); }
  std::uint64_t nr_sweeps() const { return sweeps_; }
  std::uint64_t nr_ops() const { return ops_; }
  const CheckSelection& selection() const { return sel_; }

  // MmObserver
  void mm_page_alloc(std::uint64_t pfn, unsigned order, std::uint32_t gfp, int mt) override;
  void mm_page_free(std::uint64_t pfn, unsigned order) override;
  void mm_page_alloc_zone_locked(std::uint64_t pfn, unsigned order, int mt, bool refill) override;
  void mm_page_pcpu_drain(std::uint64_t pfn, unsigned order, int mt) override;
  void mm_page_alloc_extfrag(std::uint64_t pfn, unsigned alloc_order, unsigned fallback_order,
                             int alloc_mt, int fallback_mt, bool change_ownership) override;
  void pages_touched(std::uint64_t pfn, std::uint64_t nr) override;
  void zone_watermark_pass(const mm::WatermarkPass& w) override;
  void kmalloc(std::uint64_t ptr, std::uint64_t, std::uint64_t, std::uint32_t, int, bool) override;
  void kmem_cache_alloc(std::uint64_t ptr, std::uint64_t, std::uint64_t, std::uint32_t, int,
                        bool) override;
  void kfree(std::uint64_t ptr) override;
  void kmem_cache_free(std::uint64_t ptr, const std::string& name) override;
  void vm_area_changed(std::uint64_t start, std::uint64_t end) override;
  void purge_vmap_area_lazy(std::uint64_t start, std::uint64_t end, std::uint64_t npurged) override;
  void misuse(const mm::Misuse& m) override;

 private:
  Reporter reporter();

  mm::Mm& mm_;
  CheckOptions opts_;
  CheckSelection sel_;
  std::vector<std::unique_ptr<Checker>> checkers_;
  std::vector<Violation> violations_;
  TouchLog touched_;
  std::int64_t op_index_ = -1;
  std::string op_name_;
  std::uint64_t ops_ = 0;
  std::uint64_t sweeps_ = 0;
};

}  // namespace mmfuzz::inv
