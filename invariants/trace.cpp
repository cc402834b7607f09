#include "invariants/trace.h"

#include <fmt/format.h>

namespace mmfuzz::inv {

namespace {

struct TraceFindingInfo {
  const char* id;
  const char* title;   // fmt: the event, then the pointer or pfn
  const char* detail;  // why the trace says so
  bool page;           // `where` is a pfn
};

constexpr TraceFindingInfo kInfo[kNrTraceFindings] = {
    {"trace.unknown_free", "BUG: trace: {}() of {:#x}, a pointer never allocated in the trace",
     "--strict-frees: the trace must show the allocation of every pointer it frees", false},
    {"trace.double_alloc", "BUG: trace: {}() returned {:#x}, still allocated in the trace",
     "no events were lost, so the trace shows every free: this pointer was not freed since it "
     "was allocated",
     false},
    {"trace.double_free", "BUG: trace: {}() of {:#x}, already freed",
     "the ops show no allocation of it since it was last freed", false},
    {"trace.page_double_alloc", "BUG: trace: {}() returned pfn {:#x}, still allocated in the trace",
     "no events were lost, so the trace shows every mm_page_free: this page was not freed since "
     "it was allocated",
     true},
    {"trace.invalid", "BUG: trace: {}() at {:#x} with a value no kernel produces",
     "a corrupt trace line, or a kernel bug", false},
};

}  // namespace

const char* trace_finding_id(TraceFinding k) {
  return kInfo[static_cast<int>(k)].id;
}

Violation trace_violation(TraceFinding k, std::string_view event, std::uint64_t where,
                          std::string_view why) {
  const TraceFindingInfo& info = kInfo[static_cast<int>(k)];
  Violation v;
  v.kind = ViolationKind::misuse;
  v.invariant = info.id;
  v.subsystem = "trace";
  v.title = fmt::format(fmt::runtime(info.title), event, where);
  v.details.emplace_back(why.empty() ? std::string_view(info.detail) : why);
  (info.page ? v.pfns : v.addrs).push_back(where);
  return v;
}

}  // namespace mmfuzz::inv
