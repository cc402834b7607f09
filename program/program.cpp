#include "program/program.h"

#include <array>
#include <variant>

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
      "get_page",
      "put_page",
      "alloc_pages_exact",
      "free_pages_exact",
      "kmap",
      "kunmap",
      "krealloc",
      "kfree_sensitive",
      "kmem_cache_alloc_bulk",
      "kmem_cache_free_bulk",
      "mempool_resize",
      "kvmalloc",
      "kvfree",
      "ioread",
      "iowrite",
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

StrId name_of(const OpArgs& a) {
  return std::visit(
      [](const auto& x) -> StrId {
        if constexpr (requires { x.name; })
          return x.name;
        else
          return 0;
      },
      a);
}

void set_name(OpArgs& a, StrId name) {
  std::visit(
      [name](auto& x) {
        if constexpr (requires { x.name; }) x.name = name;
      },
      a);
}

bool Op::same_as(const Op& o, bool with_line) const {
  if (cpu != o.cpu || pid != o.pid || ts_ns != o.ts_ns || (with_line && line != o.line))
    return false;
  if (name_of(args) == name_of(o.args)) return args == o.args;
  OpArgs a = args, b = o.args;
  set_name(a, 0);
  set_name(b, 0);
  return a == b;
}

bool Program::operator==(const Program& o) const {
  if (ops.size() != o.ops.size() || !(header == o.header)) return false;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Op& a = ops[i];
    const Op& b = o.ops[i];
    if (!a.same_as(b)) return false;
    if (strings.str(name_of(a.args)) != o.strings.str(name_of(b.args)) ||
        strings.str(a.comm) != o.strings.str(b.comm) ||
        strings.str(a.call_site) != o.strings.str(b.call_site))
      return false;
  }
  return true;
}

}  // namespace mmfuzz::prog
