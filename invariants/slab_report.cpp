#include "invariants/slab_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "invariants/page_report.h"
#include "mm/mm.h"
#include "mm/slab/slub.h"

namespace mmfuzz::inv {

namespace {
constexpr const char* kSlubSub =
    "-----------------------------------------------------------------------------";
}  // namespace

std::vector<std::string> hex_dump(const mm::Mm& m, const char* prefix, std::uint64_t addr,
                                  std::uint64_t len) {
  std::vector<std::string> out;
  len = std::min<std::uint64_t>(len, 4096);
  for (std::uint64_t off = 0; off < len; off += 16) {
    const std::uint64_t n = std::min<std::uint64_t>(16, len - off);
    std::uint8_t b[16] = {};
    const std::uint64_t pa = m.__pa(addr + off);
    const bool readable = m.virt_addr_valid(addr + off) && m.ram.contains(pa, n);
    if (readable) m.ram.read(pa, std::span<std::uint8_t>(b, n));
    std::string hex, ascii;
    for (std::uint64_t i = 0; i < 16; ++i) {
      if (i < n) {
        hex += fmt::format("{:02x} ", b[i]);
        ascii += (b[i] >= 0x20 && b[i] < 0x7f) ? static_cast<char>(b[i]) : '.';
      } else {
        hex += "   ";
      }
    }
    out.push_back(
        fmt::format("{}{:016x}: {} {}", prefix, addr + off, hex, readable ? ascii : "(not RAM)"));
  }
  return out;
}

std::vector<HistoryEntry> object_history(const mm::Mm& m, std::uint64_t addr) {
  std::vector<HistoryEntry> h;
  const auto ref = m.slab.find_object(addr);
  if (!ref) return h;
  const auto* sh = m.slab.shadow(ref->slab);
  if (!sh || ref->index >= sh->size()) return h;
  const mm::ObjectTrack& t = (*sh)[ref->index];
  if (t.alloc_seq || t.allocated)
    h.push_back({"allocated", op_index_of(t.alloc_seq), t.alloc_cpu,
                 t.alloc_site ? fmt::format("call_site#{}", t.alloc_site) : "",
                 fmt::format("object 0x{:x}, {} bytes requested", ref->object, t.requested)});
  if (t.free_seq)
    h.push_back({"freed", op_index_of(t.free_seq), t.free_cpu,
                 t.free_site ? fmt::format("call_site#{}", t.free_site) : "",
                 fmt::format("object 0x{:x}", ref->object)});
  return h;
}

std::vector<std::string> slub_trailer(const mm::Mm& m, const mm::kmem_cache& s, std::uint64_t slab,
                                      std::uint64_t object) {
  using namespace mm::slub;
  std::vector<std::string> out;
  if (s.flags & mm::SLAB_STORE_USER) {
    for (bool free : {false, true}) {
      const Track t = get_track(m, s, object, free);
      if (t.addr || t.when)
        out.push_back(fmt::format("{} in call_site#{} age={} cpu={} pid={}",
                                  free ? "Freed" : "Allocated", t.addr,
                                  m.op_seq >= t.when ? m.op_seq - t.when : 0, t.cpu, t.pid));
    }
  }
  const mm::page& p = m.pfn_to_page(slab);
  out.push_back(fmt::format("Slab 0x{:016x} objects={} used={} fp=0x{:016x} flags=0x{:x}",
                            m.pfn_to_vmemmap(slab), p.slab.objects, p.slab.inuse, p.slab.freelist,
                            p.flags));
  const std::uint64_t base = m.page_address(slab);
  out.push_back(fmt::format("Object 0x{:016x} @offset={} fp=0x{:016x}", object, object - base,
                            get_freepointer(m, s, object)));
  auto add = [&](const char* prefix, std::uint64_t a, std::uint64_t n) {
    if (!n) return;
    for (auto& l : hex_dump(m, prefix, a, n)) out.push_back(std::move(l));
  };
  if (s.flags & mm::SLAB_RED_ZONE)
    add("Redzone  ", object - s.red_left_pad, s.red_left_pad);
  else if (object > base + 16)
    add("Bytes b4 ", object - 16, 16);
  add("Object   ", object, std::min<std::uint64_t>(s.object_size, m.profile.page_size()));
  if (s.flags & mm::SLAB_RED_ZONE)
    add("Redzone  ", object + s.object_size, s.inuse - s.object_size);
  std::uint64_t off = get_info_end(s);
  if (s.flags & mm::SLAB_STORE_USER)
    off += 2 * mm::SLUB_TRACK_SIZE + ((s.flags & mm::SLAB_KMALLOC) ? 4 : 0);
  if (off < size_from_object(s)) add("Padding  ", object + off, size_from_object(s) - off);
  return out;
}

Violation slub_object_violation(const mm::Mm& m, const mm::kmem_cache& s, std::uint64_t slab,
                                std::uint64_t object, ViolationKind kind, std::string invariant,
                                std::string what, std::vector<std::string> lines) {
  Violation v;
  v.kind = kind;
  v.invariant = std::move(invariant);
  v.subsystem = "slab";
  v.cache = s.name;
  v.object = fmt::format("0x{:x}", object);
  v.title = fmt::format("BUG {} (Not tainted): {}", s.name, what);
  v.details.push_back(kSlubSub);
  v.details.push_back("");
  for (auto& l : lines) v.details.push_back(std::move(l));
  if (m.slab.variant == mm::SlabVariant::slub)
    for (auto& l : slub_trailer(m, s, slab, object)) v.details.push_back(std::move(l));
  v.addrs.push_back(object);
  v.pfns.push_back(slab);
  v.history = object_history(m, object);
  return v;
}

Violation slab_misuse_violation(const mm::Mm& m, const mm::Misuse& mu) {
  const std::string id = mm::misuse_id(mu.kind);
  const mm::kmem_cache* s = mu.cache.empty() ? nullptr : m.slab.cache(m.slab.find_cache(mu.cache));
  const auto ref = mu.object ? m.slab.find_object(mu.object) : std::nullopt;
  // Plain copies: GCC 12 misreads optional<> fields as uninitialized here.
  const std::uint64_t ref_slab = ref ? ref->slab : mm::NO_PAGE;
  const std::uint64_t ref_object = ref ? ref->object : 0;
  switch (mu.kind) {
    case mm::MisuseKind::slab_redzone:
    case mm::MisuseKind::slab_poison:
    case mm::MisuseKind::slab_padding:
    case mm::MisuseKind::slab_freeptr:
      if (s && ref) {
        Violation v = slub_object_violation(m, *s, ref_slab, mu.object, ViolationKind::misuse, id,
                                            mu.what, {mu.detail});
        return v;
      }
      break;
    default:
      break;
  }
  Violation v;
  v.kind = ViolationKind::misuse;
  v.invariant = id;
  v.subsystem = id.rfind("kasan.", 0) == 0 ? "kasan" : "slab";
  v.cache = mu.cache;
  if (mu.addr) v.addrs.push_back(mu.addr);
  if (mu.object) v.object = fmt::format("0x{:x}", mu.object);
  const bool kasan = mu.kind == mm::MisuseKind::kasan_out_of_bounds ||
                     mu.kind == mm::MisuseKind::kasan_use_after_free ||
                     mu.kind == mm::MisuseKind::kasan_wild_access;
  if (kasan || mu.kind == mm::MisuseKind::slab_double_free ||
      mu.kind == mm::MisuseKind::slab_invalid_free) {
    std::string bug = mu.what;
    if (mu.kind == mm::MisuseKind::slab_double_free) bug = "double-free";
    if (mu.kind == mm::MisuseKind::slab_invalid_free) bug = "invalid-free";
    v.title = fmt::format("BUG: KASAN: {} in {}", bug, mu.api);
    if (kasan)
      v.details.push_back(fmt::format("{} of size {} at addr {:016x} by task mmfuzz/0",
                                      mu.is_write ? "Write" : "Read", mu.access_len, mu.addr));
    else
      v.details.push_back(fmt::format("Free of addr {:016x} by task mmfuzz/0", mu.addr));
    if (!mu.detail.empty() && mu.detail != bug) v.details.push_back(mu.detail);
    if (s && ref) {
      const std::uint64_t obj = ref_object, size = s->object_size;
      v.details.push_back("");
      v.details.push_back(fmt::format("The buggy address belongs to the object at {:016x}", obj));
      v.details.push_back(fmt::format(" which belongs to the cache {} of size {}", s->name, size));
      std::string rel;
      std::uint64_t bytes;
      if (mu.addr < obj) {
        rel = "to the left";
        bytes = obj - mu.addr;
      } else if (mu.addr >= obj + size) {
        rel = "to the right";
        bytes = mu.addr - (obj + size);
      } else {
        rel = "inside";
        bytes = mu.addr - obj;
      }
      v.details.push_back(fmt::format("The buggy address is located {} bytes {} of", bytes, rel));
      v.details.push_back(fmt::format(" {}-byte region [{:016x}, {:016x})", size, obj, obj + size));
      v.history = object_history(m, obj);
      v.pfns.push_back(ref_slab);
    } else if (mu.pfn != mm::NO_PAGE && m.pfn_valid(mu.pfn)) {
      v.details.push_back("");
      v.details.push_back("The buggy address belongs to the physical page:");
      for (auto& l : dump_page(m, mu.pfn)) v.details.push_back(std::move(l));
      v.history = page_history(m, mu.pfn);
      v.pfns.push_back(mu.pfn);
    }
    return v;
  }
  if (mu.kind == mm::MisuseKind::slab_destroy_busy && s) {
    v.title =
        fmt::format("BUG {} (Not tainted): Objects remaining in {} on __kmem_cache_shutdown()",
                    s->name, s->name);
    v.details.push_back(kSlubSub);
    v.details.push_back(fmt::format("WARNING: {} when called from {}", mu.detail, mu.api));
    return v;
  }
  v.title = fmt::format("WARNING: {}", mu.detail);
  v.details.push_back(fmt::format("caller: {}", mu.api));
  return v;
}

}  // namespace mmfuzz::inv
