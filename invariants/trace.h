// The trace family ("trace.*"): what a recorded trace shows the kernel doing
// wrong with memory by its own events, before any model judges it: a free of
// a pointer it never allocated, a second allocation of a live pointer, a
// second free, a value no kernel produces. No model state backs these, so no Checker sweeps them:
// the Replayer raises each at the op that shows it, through the CheckEngine like every other report
// (selection, cap per invariant, count, op provenance).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "invariants/violation.h"

namespace mmfuzz::inv {

enum class TraceFinding : std::uint8_t {
  unknown_free,       // --strict-frees: kfree/kmem_cache_free of a pointer never allocated
  double_alloc,       // kmalloc/kmem_cache_alloc returned a pointer still allocated
  double_free,        // kfree/kmem_cache_free of a pointer already freed
  page_double_alloc,  // mm_page_alloc returned a pfn still allocated
  invalid,            // a value the kernel cannot produce: order beyond MAX_ORDER, ...
};
inline constexpr int kNrTraceFindings = static_cast<int>(TraceFinding::invalid) + 1;

// "trace.unknown_free", ...
const char* trace_finding_id(TraceFinding k);

// The report of one: misuse (the kernel's, as the trace shows it), subsystem
// "trace". `event` names the trace event ("kfree", "mm_page_alloc"); `where`
// is the pointer, or the pfn for page findings.
// `why`, when given, replaces the standard detail line.
Violation trace_violation(TraceFinding k, std::string_view event, std::uint64_t where,
                          std::string_view why = {});

}  // namespace mmfuzz::inv
