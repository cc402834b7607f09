// What each op of a Program binds and uses (handles by space, cache names),
// and the def-use edges between ops: which op made the binding an op uses.
// The shrinker removes an allocating op together with its users and slices
// a failing op's history out of a long trace with it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "program/program.h"

namespace mmfuzz::shrink {

using prog::Handle;
using prog::Op;

// A name an op binds or uses: a handle in its space, or a cache name.
struct Ref {
  enum Space : std::uint8_t { object, page, area, pool, cache };
  Space space = object;
  Handle h = 0;
  bool operator==(const Ref&) const = default;
};

// The refs one op binds (defs) and reads (uses); an op that rebinds what it
// uses (krealloc) has both. `page_span` is the number of handles a split of
// a page handle names (its allocation's 2^order), looked up by the caller.
struct OpRefs {
  std::vector<Ref> defs, uses;
};
void op_refs(const Op& op, OpRefs& out);

// Def-use edges over a Program's ops.
class DepGraph {
 public:
  explicit DepGraph(std::span<const Op> ops);
  std::size_t size() const { return n_; }
  // The ops whose bindings op i uses (at most one per use).
  std::span<const std::uint32_t> parents(std::uint32_t i) const {
    return {parent_.data() + parent_at_[i], parent_at_[i + 1] - parent_at_[i]};
  }
  // The ops that use a binding op i made, in order.
  std::span<const std::uint32_t> users(std::uint32_t i) const {
    return {user_.data() + user_at_[i], user_at_[i + 1] - user_at_[i]};
  }

  // Marks in `keep` (false) every op that uses, transitively, a binding of
  // an op `removed` names; `removed` themselves too. Ops already not kept
  // are not followed.
  void remove_with_users(std::span<const std::uint32_t> removed, std::vector<char>& keep) const;
  // Adds to `in` (true) every op whose binding an op marked in `in` uses,
  // transitively: a set closed this way skips no op for an unbound handle.
  void add_parents(std::vector<char>& in) const;

 private:
  // Compressed rows (millions of ops from a trace): op i's parents are
  // parent_[parent_at_[i] .. parent_at_[i + 1]), its users likewise.
  std::size_t n_ = 0;
  std::vector<std::uint32_t> parent_at_, parent_, user_at_, user_;
};

}  // namespace mmfuzz::shrink
