// A violation is a value (DESIGN rule 5): which invariant, after which op,
// where, the object's history and the host stack. It prints in the kernel's
// report style and as JSON, and its signature drives dedup and shrinking.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mmfuzz::inv {

// Misuse: the Program did something wrong (double free, ...), reported as
// KASAN / SLUB debug / bad_page would. Invariant: the model itself is broken.
enum class ViolationKind { misuse, invariant };

struct HistoryEntry {
  std::string event;           // "allocated", "freed"
  std::int64_t op_index = -1;  // the op's 0-based index; -1: before the first op (boot)
  int cpu = -1;
  std::string call_site;  // from the trace, when known
  std::string detail;     // "order 0, gfp GFP_KERNEL"
};

class HostStack;  // Boost.Stacktrace, symbolized on demand

struct Violation {
  ViolationKind kind = ViolationKind::invariant;
  std::string invariant;             // "buddy.coalesced", "page_alloc.double_free"
  std::string subsystem;             // "page_alloc"
  std::string title;                 // first report line, kernel style
  std::vector<std::string> details;  // further report lines
  std::int64_t op_index = -1;        // op after which it was seen (-1: outside ops)
  std::string op_name;               // that op's kind ("__free_pages", "boot")
  std::vector<std::uint64_t> pfns;
  std::vector<std::uint64_t> addrs;
  std::string object;  // the slab object, when the violation names one
  std::string cache;
  std::vector<HistoryEntry> history;
  std::shared_ptr<const HostStack> host_stack;

  // invariant + op kind + subsystem: equal signatures are the same bug.
  std::string signature() const;
  // `extra` (lines) goes before the trailer; `history` off when the caller
  // shows the object's history its own way.
  std::string to_text(bool with_stack = true, std::string_view extra = {},
                      bool history = true) const;
  nlohmann::json to_json(bool with_stack = true) const;
  std::string host_stack_text() const;
  // Captures the current host stack (call where the violation is found).
  void capture_stack();
};

const char* kind_name(ViolationKind k);

// The model counts ops from 1 (Mm::op_seq; 0 is boot); reports number them
// from 0, as the Executor runs them: -1 for boot.
inline std::int64_t op_index_of(std::uint32_t op_seq) {
  return static_cast<std::int64_t>(op_seq) - 1;
}

}  // namespace mmfuzz::inv
