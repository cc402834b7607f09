// Program and Op: the one op language every front end produces (trace
// replay, fuzzers, property generators) and the one Executor runs.
//
// Ops name earlier results by handle, never by address. A handle is a
// register: an allocating op binds it to the model's new object, a freeing op
// uses its current binding, a later allocation may bind it again. Handles
// live in four spaces: objects (kmalloc, kmem_cache_alloc, mempool
// elements, kvmalloc), pages (alloc_pages, alloc_pages_exact), areas
// (vmalloc, vmap, ioremap) and pools.
// Caches are named by their name (an interned string), as traces name them.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "program/header.h"
#include "program/ops.h"

namespace mmfuzz::prog {

const char* op_kind_name(OpKind k);
const char* space_name(Space s);

// One op: what the kernel call is and its arguments (a struct of ops.h), and
// where it came from. Build one as `Op{.args = Kmalloc{.obj = 1, .size = 64,
// .gfp = GFP_KERNEL}, .cpu = 1}` (or with ProgramBuilder).
struct Op {
  OpArgs args{Tick{}};
  // Provenance (0: unknown): the CPU that runs the op, the task, the caller.
  std::int16_t cpu = 0;
  std::int32_t pid = 0;
  std::uint32_t comm = 0;       // string id
  std::uint32_t call_site = 0;  // string id
  std::uint64_t ts_ns = 0;
  std::uint64_t line = 0;  // source line in the trace or Program text

  OpKind kind() const { return static_cast<OpKind>(args.index()); }
  template <class T>
  bool is() const {
    return std::holds_alternative<T>(args);
  }
  template <class T>
  T* get_if() {
    return std::get_if<T>(&args);
  }
  template <class T>
  const T* get_if() const {
    return std::get_if<T>(&args);
  }
  // The arguments of an op known to be of kind T.
  template <class T>
  T& as() {
    assert(is<T>());
    return *std::get_if<T>(&args);
  }
  template <class T>
  const T& as() const {
    assert(is<T>());
    return *std::get_if<T>(&args);
  }

  // Same kind, arguments and provenance; string ids (cache names, comm,
  // call site) are not compared: they belong to a StringTable.
  bool same_as(const Op& o, bool with_line = false) const;
};

// Replay copies millions of Ops: the arguments (at most 40 bytes) and the
// provenance fit in 80.
static_assert(sizeof(Op) <= 80);

// The cache name an op's arguments carry (0: none).
StrId name_of(const OpArgs& a);
void set_name(OpArgs& a, StrId name);

// Hash for maps keyed by std::string that are searched by string_view
// (no string built per lookup).
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// Interned strings (cache names, call sites, comms). Id 0 is the empty string.
class StringTable {
 public:
  StringTable() {
    strings_.reserve(8);
    strings_.emplace_back();
  }
  std::uint32_t intern(std::string_view s);
  std::uint32_t find(std::string_view s) const;  // 0 if absent
  const std::string& str(std::uint32_t id) const { return strings_[id]; }
  std::size_t size() const { return strings_.size(); }

 private:
  // Small tables (a fuzz input's few cache names) are searched linearly;
  // the index is built when the table outgrows kLinear.
  static constexpr std::size_t kLinear = 16;
  std::vector<std::string> strings_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> ids_;
};

struct Program {
  std::vector<Op> ops;
  StringTable strings;
  // How to run it (model, checks) and what its finder saw; version 1: the
  // reader's defaults.
  ProgramHeader header;

  // Ops equal field by field, strings compared by text (source lines
  // ignored), headers equal.
  bool operator==(const Program& o) const;
};

}  // namespace mmfuzz::prog
