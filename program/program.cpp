#include "program/program.h"

#include <array>

namespace mmfuzz::prog {

const char* op_kind_name(OpKind k) {
  static constexpr std::array<const char*, kNrOpKinds> kNames = {
      "alloc_pages",
      "free_pages",
      "split_page",
      "kmalloc",
      "kfree",
      "kmem_cache_create",
      "kmem_cache_alloc",
      "kmem_cache_free",
      "kmem_cache_shrink",
      "kmem_cache_destroy",
      "mempool_create",
      "mempool_alloc",
      "mempool_free",
      "mempool_destroy",
      "vmalloc",
      "vfree",
      "vmap",
      "vunmap",
      "ioremap",
      "iounmap",
      "write",
      "read",
      "tick",
      "drain_all_pages",
      "check",
  };
  const auto i = static_cast<std::size_t>(k);
  return i < kNames.size() ? kNames[i] : "?";
}

const char* space_name(Space s) {
  switch (s) {
    case Space::object:
      return "ptr";
    case Space::page:
      return "pfn";
    case Space::area:
      return "area";
  }
  return "?";
}

std::uint32_t StringTable::intern(std::string_view s) {
  if (s.empty()) return 0;
  if (const std::uint32_t id = find(s)) return id;
  const auto id = static_cast<std::uint32_t>(strings_.size());
  strings_.emplace_back(s);
  if (!ids_.empty())
    ids_.emplace(std::string(s), id);
  else if (strings_.size() > kLinear)
    for (std::uint32_t i = 1; i < strings_.size(); ++i) ids_.emplace(strings_[i], i);
  return id;
}

std::uint32_t StringTable::find(std::string_view s) const {
  if (s.empty()) return 0;
  if (ids_.empty()) {
    for (std::uint32_t i = 1; i < strings_.size(); ++i)
      if (strings_[i] == s) return i;
    return 0;
  }
  const auto it = ids_.find(s);
  return it == ids_.end() ? 0 : it->second;
}

bool Op::same_as(const Op& o, bool with_line) const {
  return kind == o.kind && space == o.space && order == o.order && byte == o.byte && cpu == o.cpu &&
         node == o.node && gfp == o.gfp && flags == o.flags && flags2 == o.flags2 && h == o.h &&
         h2 == o.h2 && size == o.size && arg == o.arg &&
         expect_bytes_alloc == o.expect_bytes_alloc && expect_mt == o.expect_mt && pid == o.pid &&
         ts_ns == o.ts_ns && (!with_line || line == o.line);
}

bool Program::operator==(const Program& o) const {
  if (ops.size() != o.ops.size() || !(header == o.header)) return false;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Op& a = ops[i];
    const Op& b = o.ops[i];
    if (!a.same_as(b)) return false;
    if (strings.str(a.name) != o.strings.str(b.name) ||
        strings.str(a.comm) != o.strings.str(b.comm) ||
        strings.str(a.call_site) != o.strings.str(b.call_site))
      return false;
  }
  return true;
}

}  // namespace mmfuzz::prog
