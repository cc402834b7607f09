// A window of a replayed trace as a property: its ops (the trace's Program
// form, Replayer::sink) run from a fresh model, and the model's results are
// measured against what the trace says the kernel did, with the fidelity
// measures of the replay (measure_fidelity(), trace/replay.h): bytes_alloc
// of kmalloc and kmem_cache_alloc, the page order of a large kmalloc, the
// migratetype of mm_page_alloc, success or failure.
//
// What a window needs to mean something: the caches its ops name. Their
// creates (the last kmem_cache_create of each name before the window, not
// destroyed since) run first. Objects and pages allocated before the window
// are unbound handles: ops on them are skipped, which is fine (a free of
// them compares nothing). The window runs with checks off: it measures the
// model, it does not judge the Program (a free of something allocated
// before the window is no misuse of the window's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "program/program.h"
#include "trace/replay.h"

namespace mmfuzz::trace {

struct WindowResult {
  std::size_t offset = 0, n = 0;  // the window: ops [offset, offset + n) of the whole
  std::uint64_t prefix_ops = 0;   // cache creates run before it
  std::uint64_t ran = 0, skipped = 0;
  std::vector<FidelityMetric> metrics;  // per measure (FidelityId): agree / total
  // The first op of the window where the model and the trace disagree: its
  // index in the whole Program and "measure: trace X, model Y: op".
  std::optional<std::uint64_t> first_op;
  std::string first;

  const FidelityMetric& metric(FidelityId id) const { return metrics[id]; }
  bool agrees() const { return !first_op; }
};

// Runs ops [offset, offset + n) of `whole` (a trace's Program form, as
// `mmfuzz convert` or shrink make it) under whole.header from a fresh boot.
// Throws mm::ConfigError for a header that cannot boot.
WindowResult check_trace_window(const prog::Program& whole, std::size_t offset, std::size_t n);

}  // namespace mmfuzz::trace
