#include "program/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <optional>
#include <utility>
#include <variant>

#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"
#include "trace/line_reader.h"
#include "trace/source.h"
#include "trace/text_parse.h"

namespace mmfuzz::prog {

using trace::event_type_name;
using trace::EventType;
using trace::InputError;
using trace::LineStatus;
using trace::TextParser;
using trace::TraceEvent;

namespace {

using mm::format_gfp;

const char* const kVmallocApis[] = {"vmalloc", "vzalloc", "vmalloc_32", "module_alloc"};
const char* const kIoremapApis[] = {"ioremap", "ioremap_wc", "ioremap_np"};
const char* const kPoolKinds[] = {"slab", "kmalloc", "pages"};
const char* const kKmapApis[] = {"kmap", "kmap_atomic", "kmap_local_page"};
const char* const kKunmapApis[] = {"kunmap", "kunmap_atomic", "kunmap_local"};
const char* const kIoReadApis[] = {"readb", "readw", "readl", "ioread8", "ioread16", "ioread32"};
const char* const kIoWriteApis[] = {"writeb",   "writew",    "writel",
                                    "iowrite8", "iowrite16", "iowrite32"};

template <std::size_t N, class E>
const char* api_name(const char* const (&names)[N], E e) {
  return names[std::min<std::size_t>(static_cast<std::size_t>(e), N - 1)];
}

std::string prefix(const Op& op, const StringTable& st) {
  const std::string& comm = st.str(op.comm);
  const std::uint64_t sec = op.ts_ns / 1000000000u;
  const std::uint64_t ns = op.ts_ns % 1000000000u;
  // Microseconds as ftrace prints them; nanoseconds only when needed.
  const std::string ts =
      ns % 1000 ? fmt::format("{}.{:09}", sec, ns) : fmt::format("{}.{:06}", sec, ns / 1000);
  return fmt::format("{:>16}-{:<7} [{:03}] ..... {:>12}: ", comm.empty() ? "<...>" : comm, op.pid,
                     op.cpu, ts);
}

std::string handle_field(Space s, std::uint64_t h) {
  switch (s) {
    case Space::object:
      return fmt::format("ptr={:016x}", h);
    case Space::page:
      return fmt::format("pfn={:#x}", h);
    case Space::area:
      return fmt::format("area={:#x}", h);
  }
  return {};
}

const char* accounted(std::uint32_t gfp) {
  return gfp & mm::__GFP_ACCOUNT ? "true" : "false";
}

// ---- printing: one overload per kind ----

struct Printer {
  std::string& s;
  const Op& op;
  const StringTable& st;

  template <class... Args>
  void operator()(fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(s), f, std::forward<Args>(args)...);
  }
  std::string call_site() const {
    const std::string& c = st.str(op.call_site);
    return c.empty() ? "0x0" : c;
  }
  std::string name(StrId id) const {
    const std::string& n = st.str(id);
    return n.empty() ? "(null)" : n;
  }
};

void print(Printer& o, const AllocPages& a) {
  const std::string gfp = format_gfp(a.gfp);
  if (a.node < 0)
    o("mm_page_alloc: page=0000000000000000 pfn={:#x} order={} migratetype={} gfp_flags={}", a.page,
      a.order, a.expect_mt, gfp);
  else
    o("mmfuzz_alloc_pages: pfn={:#x} order={} gfp_flags={} node={} migratetype={}", a.page, a.order,
      gfp, a.node, a.expect_mt);
}
void print(Printer& o, const FreePages& a) {
  if (a.by_addr)
    o("mmfuzz_free_pages: pfn={:#x} order={}", a.page, a.order);
  else
    o("mm_page_free: page=0000000000000000 pfn={:#x} order={}", a.page, a.order);
}
void print(Printer& o, const SplitPage& a) {
  o("mmfuzz_split_page: pfn={:#x}", a.page);
}
void print(Printer& o, const GetPage& a) {
  o("mmfuzz_get_page: pfn={:#x}", a.page);
}
void print(Printer& o, const PutPage& a) {
  o("mmfuzz_put_page: pfn={:#x}", a.page);
}
void print(Printer& o, const AllocPagesExact& a) {
  o("mmfuzz_alloc_pages_exact: pfn={:#x} size={} gfp_flags={}", a.page, a.size, format_gfp(a.gfp));
}
void print(Printer& o, const FreePagesExact& a) {
  o("mmfuzz_free_pages_exact: pfn={:#x} size={}", a.page, a.size);
}
void print(Printer& o, const Kmap& a) {
  o("mmfuzz_kmap: pfn={:#x} api={}", a.page, api_name(kKmapApis, a.api));
}
void print(Printer& o, const Kunmap& a) {
  o("mmfuzz_kunmap: pfn={:#x} api={}", a.page, api_name(kKunmapApis, a.api));
}
void print(Printer& o, const Kmalloc& a) {
  o("kmalloc: call_site={} ptr={:016x} bytes_req={} bytes_alloc={} gfp_flags={} node={} "
    "accounted={}",
    o.call_site(), a.obj, a.size, a.expect_bytes_alloc, format_gfp(a.gfp), a.node,
    accounted(a.gfp));
}
void print(Printer& o, const Kfree& a) {
  o("kfree: call_site={} ptr={:016x}", o.call_site(), a.obj);
}
void print(Printer& o, const KfreeSensitive& a) {
  o("mmfuzz_kfree_sensitive: ptr={:016x}", a.obj);
}
void print(Printer& o, const Krealloc& a) {
  o("mmfuzz_krealloc: ptr={:016x} new_size={} gfp_flags={}", a.obj, a.new_size, format_gfp(a.gfp));
}
void print(Printer& o, const KmemCacheCreate& a) {
  o("mmfuzz_kmem_cache_create: name={} size={} align={} flags={} ctor={}", o.name(a.name), a.size,
    a.align, mm::format_slab_flags(a.flags),
    a.ctor ? fmt::format("{:#04x}", a.ctor_fill) : std::string("none"));
}
void print(Printer& o, const KmemCacheAlloc& a) {
  o("kmem_cache_alloc: call_site={} ptr={:016x} name={} bytes_req={} bytes_alloc={} "
    "gfp_flags={} node={} accounted={}",
    o.call_site(), a.obj, o.name(a.name), a.bytes_req, a.expect_bytes_alloc, format_gfp(a.gfp),
    a.node, accounted(a.gfp));
}
void print(Printer& o, const KmemCacheFree& a) {
  o("kmem_cache_free: call_site={} ptr={:016x} name={}", o.call_site(), a.obj, o.name(a.name));
}
void print(Printer& o, const KmemCacheAllocBulk& a) {
  o("mmfuzz_kmem_cache_alloc_bulk: ptr={:016x} nr={} name={} gfp_flags={}", a.obj, a.nr,
    o.name(a.name), format_gfp(a.gfp));
}
void print(Printer& o, const KmemCacheFreeBulk& a) {
  o("mmfuzz_kmem_cache_free_bulk: ptr={:016x} nr={} name={}", a.obj, a.nr, o.name(a.name));
}
void print(Printer& o, const KmemCacheShrink& a) {
  o("mmfuzz_kmem_cache_shrink: name={}", o.name(a.name));
}
void print(Printer& o, const KmemCacheDestroy& a) {
  o("mmfuzz_kmem_cache_destroy: name={}", o.name(a.name));
}
void print(Printer& o, const Kvmalloc& a) {
  o("mmfuzz_kvmalloc: ptr={:016x} size={} gfp_flags={} node={}", a.obj, a.size, format_gfp(a.gfp),
    a.node);
}
void print(Printer& o, const Kvfree& a) {
  o("mmfuzz_kvfree: ptr={:016x}", a.obj);
}
void print(Printer& o, const MempoolCreate& a) {
  o("mmfuzz_mempool_create: pool={} min_nr={} kind={} name={} size={} order={} gfp_flags={}",
    a.pool, a.min_nr, api_name(kPoolKinds, a.kind), o.name(a.name), a.size, a.order,
    format_gfp(a.gfp));
}
void print(Printer& o, const MempoolAlloc& a) {
  o("mmfuzz_mempool_alloc: pool={} ptr={:016x} gfp_flags={}", a.pool, a.obj, format_gfp(a.gfp));
}
void print(Printer& o, const MempoolFree& a) {
  o("mmfuzz_mempool_free: pool={} ptr={:016x}", a.pool, a.obj);
}
void print(Printer& o, const MempoolResize& a) {
  o("mmfuzz_mempool_resize: pool={} new_min_nr={}", a.pool, a.new_min_nr);
}
void print(Printer& o, const MempoolDestroy& a) {
  o("mmfuzz_mempool_destroy: pool={}", a.pool);
}
void print(Printer& o, const Vmalloc& a) {
  o("mmfuzz_vmalloc: area={:#x} size={} api={} gfp_flags={} node={}", a.area, a.size,
    api_name(kVmallocApis, a.api), format_gfp(a.gfp), a.node);
}
void print(Printer& o, const Vfree& a) {
  o("mmfuzz_vfree: area={:#x}", a.area);
}
void print(Printer& o, const Vmap& a) {
  o("mmfuzz_vmap: area={:#x} pages={}", a.area, a.nr_pages);
}
void print(Printer& o, const Vunmap& a) {
  o("mmfuzz_vunmap: area={:#x}", a.area);
}
void print(Printer& o, const Ioremap& a) {
  o("mmfuzz_ioremap: area={:#x} phys={:#x} size={} api={}", a.area, a.phys, a.size,
    api_name(kIoremapApis, a.api));
}
void print(Printer& o, const Iounmap& a) {
  o("mmfuzz_iounmap: area={:#x}", a.area);
}
void print(Printer& o, const IoRead& a) {
  o("mmfuzz_ioread: area={:#x} offset={} api={}", a.area, a.offset, api_name(kIoReadApis, a.api));
}
void print(Printer& o, const IoWrite& a) {
  o("mmfuzz_iowrite: area={:#x} offset={} value={:#x} api={}", a.area, a.offset, a.value,
    api_name(kIoWriteApis, a.api));
}
void print(Printer& o, const Write& a) {
  o("mmfuzz_write: {} offset={} len={} byte={:#04x}", handle_field(a.space, a.h), a.offset, a.len,
    a.byte);
}
void print(Printer& o, const Read& a) {
  o("mmfuzz_read: {} offset={} len={}", handle_field(a.space, a.h), a.offset, a.len);
}
void print(Printer& o, const Tick&) {
  o("mmfuzz_tick:");
}
void print(Printer& o, const DrainAllPages&) {
  o("mmfuzz_drain_all_pages:");
}
void print(Printer& o, const Check&) {
  o("mmfuzz_check:");
}

// "key=value ..." of an extension event, separated as the kmem events'
// fields are (by spaces, tabs and '\r'): a value never ends in a character
// a line end or trim() would drop when it is printed.
class Fields {
 public:
  explicit Fields(std::string_view text) : text_(text) {}
  std::optional<std::string_view> get(std::string_view key) const {
    static constexpr std::string_view kSeparators = " \t\r";
    std::size_t pos = 0;
    while (pos < text_.size()) {
      pos = std::min(text_.find_first_not_of(kSeparators, pos), text_.size());
      const std::size_t end = std::min(text_.find_first_of(kSeparators, pos), text_.size());
      const std::string_view tok = text_.substr(pos, end - pos);
      if (tok.size() > key.size() && tok.substr(0, key.size()) == key && tok[key.size()] == '=')
        return tok.substr(key.size() + 1);
      pos = end;
    }
    return std::nullopt;
  }

 private:
  std::string_view text_;
};

bool parse_u64(std::string_view v, bool hex, std::uint64_t& out) {
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    v.remove_prefix(2);
    hex = true;
  }
  if (v.empty()) return false;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out, hex ? 16 : 10);
  return r.ec == std::errc{} && r.ptr == v.data() + v.size();
}

bool parse_i64(std::string_view v, std::int64_t& out) {
  if (v.empty()) return false;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out, 10);
  return r.ec == std::errc{} && r.ptr == v.data() + v.size();
}

// ---- parsing mmfuzz_* events: one overload per kind ----

struct ExtParser {
  const Fields& f;
  std::string_view event;
  StringTable& st;
  std::string* error;
  bool ok = true;

  void fail(std::string_view key, std::string_view why) {
    if (ok && error) *error = fmt::format("mmfuzz_{}: {} {}", event, key, why);
    ok = false;
  }
  std::uint64_t u64(std::string_view key, bool hex = false, bool required = true) {
    const auto v = f.get(key);
    std::uint64_t x = 0;
    if (!v) {
      if (required) fail(key, "missing");
      return 0;
    }
    if (!parse_u64(*v, hex, x)) fail(key, fmt::format("bad value '{}'", *v));
    return x;
  }
  std::int64_t i64(std::string_view key, std::int64_t dflt) {
    const auto v = f.get(key);
    std::int64_t x = dflt;
    if (v && !parse_i64(*v, x)) fail(key, fmt::format("bad value '{}'", *v));
    return x;
  }
  // A required number in [lo, hi] (decimal, or 0x-prefixed).
  std::int64_t ranged(std::string_view key, std::int64_t lo, std::int64_t hi) {
    const auto v = f.get(key);
    if (!v) {
      fail(key, "missing");
      return 0;
    }
    std::int64_t x = 0;
    if (!parse_i64(*v, x)) {
      std::uint64_t u = 0;
      if (!parse_u64(*v, false, u) || u > static_cast<std::uint64_t>(INT64_MAX)) {
        fail(key, fmt::format("bad value '{}'", *v));
        return 0;
      }
      x = static_cast<std::int64_t>(u);
    }
    if (x < lo || x > hi) {
      fail(key, fmt::format("out of range '{}'", *v));
      return 0;
    }
    return x;
  }
  std::uint32_t gfp() {
    const auto v = f.get("gfp_flags");
    if (!v) return 0;
    std::string why;
    const auto g = mm::parse_gfp(*v, &why);
    if (!g) fail("gfp_flags", why);
    return g.value_or(0);
  }
  StrId name(bool required = true) {
    const auto v = f.get("name");
    if (!v && required) fail("name", "missing");
    // No name prints as "(null)": read it back as none.
    return st.intern(v == "(null)" ? "" : v.value_or(""));
  }
  std::int32_t node() { return static_cast<std::int32_t>(i64("node", -1)); }
  Handle ptr() { return u64("ptr", true); }
  Handle pfn() { return u64("pfn", true); }
  Handle area() { return u64("area", true); }
  Handle pool() { return u64("pool"); }
  template <class E, std::size_t N>
  E pick(std::string_view key, const char* const (&names)[N], E dflt) {
    const auto v = f.get(key);
    if (!v) return dflt;
    for (std::size_t i = 0; i < N; ++i)
      if (*v == names[i]) return static_cast<E>(i);
    fail(key, fmt::format("unknown value '{}'", *v));
    return dflt;
  }
  // The handle of a write/read: ptr=, pfn= or area=.
  template <class T>
  void target(T& a) {
    if (f.get("ptr")) {
      a.space = Space::object;
      a.h = ptr();
    } else if (f.get("pfn")) {
      a.space = Space::page;
      a.h = pfn();
    } else {
      a.space = Space::area;
      a.h = area();
    }
  }
};

void parse(ExtParser& p, AllocPages& a) {
  a.page = p.pfn();
  a.order = static_cast<std::uint8_t>(p.u64("order"));
  a.gfp = p.gfp();
  a.node = p.node();
  a.expect_mt = static_cast<std::int8_t>(p.i64("migratetype", -1));
}
void parse(ExtParser& p, FreePages& a) {  // mmfuzz_free_pages: free_pages(addr, order)
  a.page = p.pfn();
  a.order = static_cast<std::uint8_t>(p.u64("order"));
  a.by_addr = true;
}
void parse(ExtParser& p, SplitPage& a) {
  a.page = p.pfn();
}
void parse(ExtParser& p, GetPage& a) {
  a.page = p.pfn();
}
void parse(ExtParser& p, PutPage& a) {
  a.page = p.pfn();
}
void parse(ExtParser& p, AllocPagesExact& a) {
  a.page = p.pfn();
  a.size = p.u64("size");
  a.gfp = p.gfp();
}
void parse(ExtParser& p, FreePagesExact& a) {
  a.page = p.pfn();
  a.size = p.u64("size");
}
void parse(ExtParser& p, Kmap& a) {
  a.page = p.pfn();
  a.api = p.pick("api", kKmapApis, KmapApi::kmap);
}
void parse(ExtParser& p, Kunmap& a) {
  a.page = p.pfn();
  a.api = p.pick("api", kKunmapApis, KunmapApi::kunmap);
}
void parse(ExtParser& p, KfreeSensitive& a) {
  a.obj = p.ptr();
}
void parse(ExtParser& p, Krealloc& a) {
  a.obj = p.ptr();
  a.new_size = p.u64("new_size");
  a.gfp = p.gfp();
}
void parse(ExtParser& p, KmemCacheCreate& a) {
  a.name = p.name();
  a.size = p.u64("size");
  a.align = p.u64("align", false, false);
  if (const auto fl = p.f.get("flags")) {
    std::string why;
    const auto v = mm::parse_slab_flags(*fl, &why);
    if (!v) p.fail("flags", why);
    a.flags = v.value_or(0);
  }
  if (const auto c = p.f.get("ctor"); c && *c != "none") {
    a.ctor = true;
    a.ctor_fill = static_cast<std::uint8_t>(p.u64("ctor", true));
  }
}
void parse(ExtParser& p, KmemCacheAllocBulk& a) {
  a.obj = p.ptr();
  a.nr = static_cast<std::uint32_t>(p.ranged("nr", 0, 0xffffffff));
  a.name = p.name();
  a.gfp = p.gfp();
}
void parse(ExtParser& p, KmemCacheFreeBulk& a) {
  a.obj = p.ptr();
  a.nr = static_cast<std::uint32_t>(p.ranged("nr", 0, 0xffffffff));
  a.name = p.name(false);
}
void parse(ExtParser& p, KmemCacheShrink& a) {
  a.name = p.name();
}
void parse(ExtParser& p, KmemCacheDestroy& a) {
  a.name = p.name();
}
void parse(ExtParser& p, Kvmalloc& a) {
  a.obj = p.ptr();
  a.size = p.u64("size");
  a.gfp = p.gfp();
  a.node = p.node();
}
void parse(ExtParser& p, Kvfree& a) {
  a.obj = p.ptr();
}
void parse(ExtParser& p, MempoolCreate& a) {
  a.pool = p.pool();
  a.min_nr = static_cast<std::int32_t>(p.ranged("min_nr", 0, INT32_MAX));
  a.kind = p.pick("kind", kPoolKinds, PoolKind::slab);
  a.name = p.name(false);
  a.size = p.u64("size", false, false);
  a.order = static_cast<std::uint8_t>(p.u64("order", false, false));
  a.gfp = p.gfp();
}
void parse(ExtParser& p, MempoolAlloc& a) {
  a.pool = p.pool();
  a.obj = p.ptr();
  a.gfp = p.gfp();
}
void parse(ExtParser& p, MempoolFree& a) {  // takes no GFP mask
  a.pool = p.pool();
  a.obj = p.ptr();
}
void parse(ExtParser& p, MempoolResize& a) {
  a.pool = p.pool();
  a.new_min_nr = static_cast<std::int32_t>(p.ranged("new_min_nr", INT32_MIN, INT32_MAX));
}
void parse(ExtParser& p, MempoolDestroy& a) {
  a.pool = p.pool();
}
void parse(ExtParser& p, Vmalloc& a) {
  a.area = p.area();
  a.size = p.u64("size");
  a.api = p.pick("api", kVmallocApis, VmallocApi::vmalloc);
  a.gfp = p.gfp();
  a.node = p.node();
}
void parse(ExtParser& p, Vfree& a) {
  a.area = p.area();
}
void parse(ExtParser& p, Vmap& a) {
  a.area = p.area();
  a.nr_pages = p.u64("pages");
}
void parse(ExtParser& p, Vunmap& a) {
  a.area = p.area();
}
void parse(ExtParser& p, Ioremap& a) {
  a.area = p.area();
  a.phys = p.u64("phys", true);
  a.size = p.u64("size");
  a.api = p.pick("api", kIoremapApis, IoremapApi::ioremap);
}
void parse(ExtParser& p, Iounmap& a) {
  a.area = p.area();
}
void parse(ExtParser& p, IoRead& a) {
  a.area = p.area();
  a.offset = p.u64("offset");
  a.api = p.pick("api", kIoReadApis, IoReadApi::readl);
}
void parse(ExtParser& p, IoWrite& a) {
  a.area = p.area();
  a.offset = p.u64("offset");
  a.value = static_cast<std::uint32_t>(p.ranged("value", 0, 0xffffffff));
  a.api = p.pick("api", kIoWriteApis, IoWriteApi::writel);
}
void parse(ExtParser& p, Write& a) {
  p.target(a);
  a.offset = p.u64("offset");
  a.len = p.u64("len");
  a.byte = static_cast<std::uint8_t>(p.u64("byte", true, false));
}
void parse(ExtParser& p, Read& a) {  // a byte= (the Program format before 2) is ignored
  p.target(a);
  a.offset = p.u64("offset");
  a.len = p.u64("len");
}
void parse(ExtParser&, Tick&) {}
void parse(ExtParser&, DrainAllPages&) {}
void parse(ExtParser&, Check&) {}

template <class T>
void parse_as(ExtParser& p, Op& op) {
  T a{};
  parse(p, a);
  op.args = a;
}

// The mmfuzz_<name> events. kmalloc, kfree, kmem_cache_alloc/free and
// __free_pages have none: they print as the kernel's kmem events.
struct ExtEvent {
  std::string_view name;
  void (*parse)(ExtParser&, Op&);
};
constexpr ExtEvent kExtEvents[] = {
    {"alloc_pages", parse_as<AllocPages>},
    {"free_pages", parse_as<FreePages>},
    {"split_page", parse_as<SplitPage>},
    {"get_page", parse_as<GetPage>},
    {"put_page", parse_as<PutPage>},
    {"alloc_pages_exact", parse_as<AllocPagesExact>},
    {"free_pages_exact", parse_as<FreePagesExact>},
    {"kmap", parse_as<Kmap>},
    {"kunmap", parse_as<Kunmap>},
    {"kfree_sensitive", parse_as<KfreeSensitive>},
    {"krealloc", parse_as<Krealloc>},
    {"kmem_cache_create", parse_as<KmemCacheCreate>},
    {"kmem_cache_alloc_bulk", parse_as<KmemCacheAllocBulk>},
    {"kmem_cache_free_bulk", parse_as<KmemCacheFreeBulk>},
    {"kmem_cache_shrink", parse_as<KmemCacheShrink>},
    {"kmem_cache_destroy", parse_as<KmemCacheDestroy>},
    {"kvmalloc", parse_as<Kvmalloc>},
    {"kvfree", parse_as<Kvfree>},
    {"mempool_create", parse_as<MempoolCreate>},
    {"mempool_alloc", parse_as<MempoolAlloc>},
    {"mempool_free", parse_as<MempoolFree>},
    {"mempool_resize", parse_as<MempoolResize>},
    {"mempool_destroy", parse_as<MempoolDestroy>},
    {"vmalloc", parse_as<Vmalloc>},
    {"vfree", parse_as<Vfree>},
    {"vmap", parse_as<Vmap>},
    {"vunmap", parse_as<Vunmap>},
    {"ioremap", parse_as<Ioremap>},
    {"iounmap", parse_as<Iounmap>},
    {"ioread", parse_as<IoRead>},
    {"iowrite", parse_as<IoWrite>},
    {"write", parse_as<Write>},
    {"read", parse_as<Read>},
    {"tick", parse_as<Tick>},
    {"drain_all_pages", parse_as<DrainAllPages>},
    {"check", parse_as<Check>},
};

bool ext_to_op(const TraceEvent& ev, StringTable& st, Op& op, std::string* error) {
  const Fields f(ev.fields);
  ExtParser p{f, ev.ext_name, st, error};
  for (const ExtEvent& e : kExtEvents) {
    if (e.name != ev.ext_name) continue;
    e.parse(p, op);
    return p.ok;
  }
  if (error) *error = fmt::format("unknown extension event mmfuzz_{}", ev.ext_name);
  return false;
}

}  // namespace

std::string format_op(const Op& op, const StringTable& st) {
  std::string s = prefix(op, st);
  Printer o{s, op, st};
  std::visit([&o](const auto& a) { print(o, a); }, op.args);
  return s;
}

std::string print_program(const Program& p) {
  std::string out = print_header(p.header);
  for (const Op& op : p.ops) {
    out += format_op(op, p.strings);
    out += '\n';
  }
  return out;
}

bool event_to_op(const TraceEvent& ev, StringTable& st, Op& op, std::string* error) {
  op = Op{};
  op.cpu = static_cast<std::int16_t>(ev.cpu < 0 ? 0 : ev.cpu);
  op.pid = ev.pid < 0 ? 0 : ev.pid;
  op.comm = ev.comm == "<...>" ? 0 : st.intern(ev.comm);
  op.ts_ns = ev.ts_ns;
  const std::string_view cs = ev.call_site == "0x0" ? std::string_view{} : ev.call_site;
  const std::string_view name = ev.name == "(null)" ? std::string_view{} : ev.name;
  switch (ev.type) {
    case EventType::mm_page_alloc:
      op.args = AllocPages{.page = ev.pfn,
                           .order = static_cast<std::uint8_t>(ev.order),
                           .expect_mt = static_cast<std::int8_t>(ev.migratetype),
                           .gfp = ev.gfp};
      return true;
    case EventType::mm_page_free:
      op.args = FreePages{.page = ev.pfn, .order = static_cast<std::uint8_t>(ev.order)};
      return true;
    case EventType::kmalloc:
    case EventType::kmalloc_node:
      op.call_site = st.intern(cs);
      op.args = Kmalloc{.obj = ev.ptr,
                        .size = ev.bytes_req,
                        .gfp = ev.gfp,
                        .node = ev.node,
                        .expect_bytes_alloc = ev.bytes_alloc};
      return true;
    case EventType::kfree:
      op.call_site = st.intern(cs);
      op.args = Kfree{ev.ptr};
      return true;
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      op.call_site = st.intern(cs);
      op.args = KmemCacheAlloc{.obj = ev.ptr,
                               .name = st.intern(name),
                               .gfp = ev.gfp,
                               .node = ev.node,
                               .bytes_req = ev.bytes_req,
                               .expect_bytes_alloc = ev.bytes_alloc};
      return true;
    case EventType::kmem_cache_free:
      op.call_site = st.intern(cs);
      op.args = KmemCacheFree{.obj = ev.ptr, .name = st.intern(name)};
      return true;
    case EventType::mmfuzz_ext:
      return ext_to_op(ev, st, op, error);
    default:
      if (error) *error = fmt::format("{} is not an op of a Program", event_type_name(ev.type));
      return false;
  }
}

Program parse_program(std::string_view text, const std::string& name) {
  Program p;
  TextParser parser;
  TraceEvent ev;
  std::string error;
  std::uint64_t line_no = 0;
  HeaderParser header;  // fed the comments before the first op
  auto fail = [&](std::string_view line) {
    throw InputError(fmt::format("{}:{}: {}: {}", name, line_no, error,
                                 line.substr(0, std::min<std::size_t>(line.size(), 200))));
  };
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const LineStatus st = parser.parse(line, ev, &error);
    if (st == LineStatus::skipped) {
      if (line.empty() || line.front() == '#') {
        if (p.ops.empty() && !header.feed(line)) error = header.error(), fail(line);
        continue;
      }
      error = "not an event line";
    }
    Op op;
    if (st == LineStatus::event && event_to_op(ev, p.strings, op, &error)) {
      op.line = line_no;
      p.ops.push_back(op);
      continue;
    }
    fail(line);
  }
  if (!header.finish(p.header)) throw InputError(fmt::format("{}: {}", name, header.error()));
  return p;
}

Program read_program(const std::string& path) {
  trace::LineReader r(path);
  std::string text;
  for (std::string_view line; r.next(line);) {
    text.append(line);
    text += '\n';
  }
  return parse_program(text, r.name());
}

}  // namespace mmfuzz::prog
