#include "program/text.h"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"
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

std::string call_site(const Op& op, const StringTable& st) {
  const std::string& s = st.str(op.call_site);
  return s.empty() ? "0x0" : s;
}

std::string name_of(const Op& op, const StringTable& st) {
  const std::string& s = st.str(op.name);
  return s.empty() ? "(null)" : s;
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

struct ExtParser {
  const Fields& f;
  std::string_view event;
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
  std::uint32_t gfp() {
    const auto v = f.get("gfp_flags");
    if (!v) return 0;
    std::string why;
    const auto g = mm::parse_gfp(*v, &why);
    if (!g) fail("gfp_flags", why);
    return g.value_or(0);
  }
  std::string_view str(std::string_view key) {
    const auto v = f.get(key);
    if (!v) fail(key, "missing");
    // No name prints as "(null)" (name_of): read it back as none.
    return v == "(null)" ? "" : v.value_or("");
  }
  template <std::size_t N>
  std::uint8_t pick(std::string_view key, const char* const (&names)[N], std::uint8_t dflt) {
    const auto v = f.get(key);
    if (!v) return dflt;
    for (std::size_t i = 0; i < N; ++i)
      if (*v == names[i]) return static_cast<std::uint8_t>(i);
    fail(key, fmt::format("unknown value '{}'", *v));
    return dflt;
  }
  // The handle of a write/read: ptr=, pfn= or area=.
  void target(Op& op) {
    if (f.get("ptr")) {
      op.space = Space::object;
      op.h = u64("ptr", true);
    } else if (f.get("pfn")) {
      op.space = Space::page;
      op.h = u64("pfn", true);
    } else {
      op.space = Space::area;
      op.h = u64("area", true);
    }
  }
};

bool ext_to_op(const TraceEvent& ev, StringTable& st, Op& op, std::string* error) {
  const Fields f(ev.fields);
  ExtParser p{f, ev.ext_name, error};
  const std::string_view e = ev.ext_name;
  if (e == "alloc_pages") {
    op.kind = OpKind::alloc_pages;
    op.h = p.u64("pfn", true);
    op.order = static_cast<std::uint8_t>(p.u64("order"));
    op.gfp = p.gfp();
    op.node = static_cast<std::int32_t>(p.i64("node", -1));
    op.expect_mt = static_cast<std::int8_t>(p.i64("migratetype", -1));
  } else if (e == "split_page") {
    op.kind = OpKind::split_page;
    op.h = p.u64("pfn", true);
  } else if (e == "kmem_cache_create") {
    op.kind = OpKind::kmem_cache_create;
    op.name = st.intern(p.str("name"));
    op.size = p.u64("size");
    op.arg = p.u64("align", false, false);
    if (const auto fl = f.get("flags")) {
      std::string why;
      const auto v = mm::parse_slab_flags(*fl, &why);
      if (!v) p.fail("flags", why);
      op.flags = v.value_or(0);
    }
    if (const auto c = f.get("ctor"); c && *c != "none") {
      op.flags2 |= kCtorFlag;
      op.byte = static_cast<std::uint8_t>(p.u64("ctor", true));
    }
  } else if (e == "kmem_cache_shrink" || e == "kmem_cache_destroy") {
    op.kind = e == "kmem_cache_shrink" ? OpKind::kmem_cache_shrink : OpKind::kmem_cache_destroy;
    op.name = st.intern(p.str("name"));
  } else if (e == "mempool_create") {
    op.kind = OpKind::mempool_create;
    op.h2 = p.u64("pool");
    op.arg = p.u64("min_nr");
    op.byte = p.pick("kind", kPoolKinds, 0);
    if (const auto n = f.get("name")) op.name = st.intern(*n == "(null)" ? "" : *n);
    op.size = p.u64("size", false, false);
    op.order = static_cast<std::uint8_t>(p.u64("order", false, false));
    op.gfp = p.gfp();
  } else if (e == "mempool_alloc" || e == "mempool_free") {
    op.kind = e == "mempool_alloc" ? OpKind::mempool_alloc : OpKind::mempool_free;
    op.h2 = p.u64("pool");
    op.h = p.u64("ptr", true);
    if (op.kind == OpKind::mempool_alloc) op.gfp = p.gfp();  // mempool_free takes none
  } else if (e == "mempool_destroy") {
    op.kind = OpKind::mempool_destroy;
    op.h2 = p.u64("pool");
  } else if (e == "vmalloc") {
    op.kind = OpKind::vmalloc;
    op.h = p.u64("area", true);
    op.size = p.u64("size");
    op.byte = p.pick("api", kVmallocApis, 0);
    op.gfp = p.gfp();
    op.node = static_cast<std::int32_t>(p.i64("node", -1));
  } else if (e == "vmap") {
    op.kind = OpKind::vmap;
    op.h = p.u64("area", true);
    op.size = p.u64("pages");
  } else if (e == "ioremap") {
    op.kind = OpKind::ioremap;
    op.h = p.u64("area", true);
    op.arg = p.u64("phys", true);
    op.size = p.u64("size");
    op.byte = p.pick("api", kIoremapApis, 0);
  } else if (e == "vfree" || e == "vunmap" || e == "iounmap") {
    op.kind = e == "vfree" ? OpKind::vfree : e == "vunmap" ? OpKind::vunmap : OpKind::iounmap;
    op.h = p.u64("area", true);
  } else if (e == "write" || e == "read") {
    op.kind = e == "write" ? OpKind::write : OpKind::read;
    p.target(op);
    op.arg = p.u64("offset");
    op.size = p.u64("len");
    op.byte = static_cast<std::uint8_t>(p.u64("byte", true, false));
  } else if (e == "tick") {
    op.kind = OpKind::tick;
  } else if (e == "drain_all_pages") {
    op.kind = OpKind::drain_all_pages;
  } else if (e == "check") {
    op.kind = OpKind::check;
  } else {
    if (error) *error = fmt::format("unknown extension event mmfuzz_{}", e);
    return false;
  }
  return p.ok;
}

}  // namespace

std::string format_op(const Op& op, const StringTable& st) {
  std::string s = prefix(op, st);
  const std::string gfp = format_gfp(op.gfp);
  switch (op.kind) {
    case OpKind::alloc_pages:
      if (op.node < 0)
        s += fmt::format(
            "mm_page_alloc: page=0000000000000000 pfn={:#x} order={} migratetype={} gfp_flags={}",
            op.h, op.order, op.expect_mt, gfp);
      else
        s += fmt::format(
            "mmfuzz_alloc_pages: pfn={:#x} order={} gfp_flags={} node={} migratetype={}", op.h,
            op.order, gfp, op.node, op.expect_mt);
      break;
    case OpKind::free_pages:
      s += fmt::format("mm_page_free: page=0000000000000000 pfn={:#x} order={}", op.h, op.order);
      break;
    case OpKind::split_page:
      s += fmt::format("mmfuzz_split_page: pfn={:#x}", op.h);
      break;
    case OpKind::kmalloc:
      s += fmt::format(
          "kmalloc: call_site={} ptr={:016x} bytes_req={} bytes_alloc={} gfp_flags={} node={} "
          "accounted={}",
          call_site(op, st), op.h, op.size, op.expect_bytes_alloc, gfp, op.node, accounted(op.gfp));
      break;
    case OpKind::kfree:
      s += fmt::format("kfree: call_site={} ptr={:016x}", call_site(op, st), op.h);
      break;
    case OpKind::kmem_cache_create:
      s += fmt::format("mmfuzz_kmem_cache_create: name={} size={} align={} flags={} ctor={}",
                       name_of(op, st), op.size, op.arg, mm::format_slab_flags(op.flags),
                       op.flags2 & kCtorFlag ? fmt::format("{:#04x}", op.byte) : "none");
      break;
    case OpKind::kmem_cache_alloc:
      s += fmt::format(
          "kmem_cache_alloc: call_site={} ptr={:016x} name={} bytes_req={} bytes_alloc={} "
          "gfp_flags={} node={} accounted={}",
          call_site(op, st), op.h, name_of(op, st), op.size, op.expect_bytes_alloc, gfp, op.node,
          accounted(op.gfp));
      break;
    case OpKind::kmem_cache_free:
      s += fmt::format("kmem_cache_free: call_site={} ptr={:016x} name={}", call_site(op, st), op.h,
                       name_of(op, st));
      break;
    case OpKind::kmem_cache_shrink:
      s += fmt::format("mmfuzz_kmem_cache_shrink: name={}", name_of(op, st));
      break;
    case OpKind::kmem_cache_destroy:
      s += fmt::format("mmfuzz_kmem_cache_destroy: name={}", name_of(op, st));
      break;
    case OpKind::mempool_create:
      s += fmt::format(
          "mmfuzz_mempool_create: pool={} min_nr={} kind={} name={} size={} order={} "
          "gfp_flags={}",
          op.h2, op.arg, kPoolKinds[std::min<std::size_t>(op.byte, 2)], name_of(op, st), op.size,
          op.order, gfp);
      break;
    case OpKind::mempool_alloc:
      s += fmt::format("mmfuzz_mempool_alloc: pool={} ptr={:016x} gfp_flags={}", op.h2, op.h, gfp);
      break;
    case OpKind::mempool_free:
      s += fmt::format("mmfuzz_mempool_free: pool={} ptr={:016x}", op.h2, op.h);
      break;
    case OpKind::mempool_destroy:
      s += fmt::format("mmfuzz_mempool_destroy: pool={}", op.h2);
      break;
    case OpKind::vmalloc:
      s += fmt::format("mmfuzz_vmalloc: area={:#x} size={} api={} gfp_flags={} node={}", op.h,
                       op.size, kVmallocApis[std::min<std::size_t>(op.byte, 3)], gfp, op.node);
      break;
    case OpKind::vfree:
      s += fmt::format("mmfuzz_vfree: area={:#x}", op.h);
      break;
    case OpKind::vmap:
      s += fmt::format("mmfuzz_vmap: area={:#x} pages={}", op.h, op.size);
      break;
    case OpKind::vunmap:
      s += fmt::format("mmfuzz_vunmap: area={:#x}", op.h);
      break;
    case OpKind::ioremap:
      s += fmt::format("mmfuzz_ioremap: area={:#x} phys={:#x} size={} api={}", op.h, op.arg,
                       op.size, kIoremapApis[std::min<std::size_t>(op.byte, 2)]);
      break;
    case OpKind::iounmap:
      s += fmt::format("mmfuzz_iounmap: area={:#x}", op.h);
      break;
    case OpKind::write:
    case OpKind::read:
      s += fmt::format("mmfuzz_{}: {} offset={} len={} byte={:#04x}",
                       op.kind == OpKind::write ? "write" : "read", handle_field(op.space, op.h),
                       op.arg, op.size, op.byte);
      break;
    case OpKind::tick:
      s += "mmfuzz_tick:";
      break;
    case OpKind::drain_all_pages:
      s += "mmfuzz_drain_all_pages:";
      break;
    case OpKind::check:
      s += "mmfuzz_check:";
      break;
  }
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
      op.kind = OpKind::alloc_pages;
      op.h = ev.pfn;
      op.order = static_cast<std::uint8_t>(ev.order);
      op.gfp = ev.gfp;
      op.expect_mt = static_cast<std::int8_t>(ev.migratetype);
      return true;
    case EventType::mm_page_free:
      op.kind = OpKind::free_pages;
      op.h = ev.pfn;
      op.order = static_cast<std::uint8_t>(ev.order);
      return true;
    case EventType::kmalloc:
    case EventType::kmalloc_node:
      op.kind = OpKind::kmalloc;
      op.call_site = st.intern(cs);
      op.h = ev.ptr;
      op.size = ev.bytes_req;
      op.expect_bytes_alloc = ev.bytes_alloc;
      op.gfp = ev.gfp;
      op.node = ev.node;
      return true;
    case EventType::kfree:
      op.kind = OpKind::kfree;
      op.call_site = st.intern(cs);
      op.h = ev.ptr;
      return true;
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      op.kind = OpKind::kmem_cache_alloc;
      op.call_site = st.intern(cs);
      op.h = ev.ptr;
      op.name = st.intern(name);
      op.size = ev.bytes_req;
      op.expect_bytes_alloc = ev.bytes_alloc;
      op.gfp = ev.gfp;
      op.node = ev.node;
      return true;
    case EventType::kmem_cache_free:
      op.kind = OpKind::kmem_cache_free;
      op.call_site = st.intern(cs);
      op.h = ev.ptr;
      op.name = st.intern(name);
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

}  // namespace mmfuzz::prog
