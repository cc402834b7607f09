// Program and Op: the one op language every front end produces (trace
// replay, fuzzers, property generators) and the one Executor runs.
//
// Ops name earlier results by handle, never by address. A handle is a
// register: an allocating op binds it to the model's new object, a freeing op
// uses its current binding, a later allocation may bind it again. Handles
// live in four spaces: objects (kmalloc, kmem_cache_alloc, mempool
// elements), pages (alloc_pages), areas (vmalloc, vmap, ioremap) and pools.
// Caches are named by their name (an interned string), as traces name them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "program/header.h"

namespace mmfuzz::prog {

enum class OpKind : std::uint8_t {
  // page allocator
  alloc_pages,  // h=page  order gfp node            -> mm_page_alloc
  free_pages,   // h=page  order                     -> __free_pages, mm_page_free
  split_page,   // h=page: split_page(); handles h+1.. h+2^order-1 name the tail pages
  // slab
  kmalloc,             // h=object size gfp node        -> kmalloc
  kfree,               // h=object                      -> kfree
  kmem_cache_create,   // name size arg=align flags byte=ctor fill (ctor: flags2 bit)
  kmem_cache_alloc,    // h=object name gfp node        -> kmem_cache_alloc
  kmem_cache_free,     // h=object name                 -> kmem_cache_free
  kmem_cache_shrink,   // name
  kmem_cache_destroy,  // name
  // mempool (mm/mempool.c)
  mempool_create,   // h2=pool arg=min_nr byte=kind name (slab) size (kmalloc) order (pages)
  mempool_alloc,    // h=object h2=pool gfp
  mempool_free,     // h=object h2=pool
  mempool_destroy,  // h2=pool
  // kernel VM
  vmalloc,  // h=area size gfp (byte: 0 vmalloc, 1 vzalloc, 2 vmalloc_32, 3 module_alloc)
  vfree,    // h=area
  vmap,     // h=area size=pages: allocates the pages, then vmap()s them
  vunmap,   // h=area: vunmap() and frees the vmap op's pages
  ioremap,  // h=area arg=phys size (byte: 0 ioremap, 1 ioremap_wc, 2 ioremap_np)
  iounmap,  // h=area
  // client accesses of an object's bytes (through the page tables for areas)
  write,  // space h arg=offset size=len byte=value
  read,   // space h arg=offset size=len
  // machine
  tick,             // a timer tick: kswapd, cache_reap, lazy vmap purge
  drain_all_pages,  // the pcp lists back to the buddy lists
  check,            // a full invariant sweep now
};
inline constexpr int kNrOpKinds = static_cast<int>(OpKind::check) + 1;
const char* op_kind_name(OpKind k);

// Handle spaces for write/read (Op::space).
enum class Space : std::uint8_t { object, page, area };
const char* space_name(Space s);

struct Op {
  OpKind kind = OpKind::tick;
  Space space = Space::object;
  std::uint8_t order = 0;
  std::uint8_t byte = 0;  // see OpKind
  std::int16_t cpu = 0;   // the CPU that runs the op
  std::int32_t node = -1;
  std::uint32_t gfp = 0;
  std::uint32_t flags = 0;  // kmem_cache_create: slab flags; bit 31 of flags2: ctor
  std::uint32_t flags2 = 0;
  std::uint32_t name = 0;  // string id of a cache name (0: none)
  std::uint64_t h = 0;     // the object, page or area handle
  std::uint64_t h2 = 0;    // the pool handle
  std::uint64_t size = 0;
  std::uint64_t arg = 0;
  // What the trace says the kernel did (0 / -1: unknown); the fidelity report
  // compares the model with it. An allocating op with handle 0 is one the
  // trace saw fail (it returned NULL).
  std::uint64_t expect_bytes_alloc = 0;
  std::int8_t expect_mt = -1;
  // Provenance (0 / -1: unknown).
  std::int32_t pid = 0;
  std::uint32_t comm = 0;       // string id
  std::uint32_t call_site = 0;  // string id
  std::uint64_t ts_ns = 0;
  std::uint64_t line = 0;  // source line in the trace or Program text

  bool same_as(const Op& o, bool with_line = false) const;
};

inline constexpr std::uint32_t kCtorFlag = 0x80000000u;  // Op::flags2: a constructor

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
