// Hand-written scanning of ftrace / trace-cmd report / perf script lines.
// Formats (include/trace/events/kmem.h, vmalloc.h; kernel/trace/trace_output.c):
//   context  "%16s-%-7d " [tgid "(%7d) " | "(-------) "] "[%03d] " [irq flags]
//            " %5lu.%06lu: " (counter clocks: " %12llu: "), then "name: fields".
//   perf     "comm tid [cpu] secs.usecs: sys:name: fields"
//   lost     ftrace "CPU:%d [LOST %lu EVENTS]" / "CPU:%d [LOST EVENTS]",
//            trace-cmd "CPU:%d [%lld EVENTS DROPPED]" / "CPU:%d [EVENTS DROPPED]",
//            perf --show-lost-events "... PERF_RECORD_LOST lost %lu".
// Fields are looked up by key, so order and extra fields do not matter.
#include "trace/text_parse.h"

#include <bit>
#include <climits>
#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>

#include "mm/page_alloc/gfp.h"

namespace mmfuzz::trace {

const char* text_format_name(TextFormat f) {
  switch (f) {
    case TextFormat::unknown:
      return "unknown";
    case TextFormat::ftrace:
      return "ftrace";
    case TextFormat::trace_cmd_report:
      return "trace-cmd-report";
    case TextFormat::perf_script:
      return "perf-script";
  }
  return "?";
}

namespace {

inline bool is_space(char c) {
  return c == ' ' || c == '\t';
}
inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline unsigned digit(char c) {
  return static_cast<unsigned>(c - '0');
}

inline std::string_view view(const char* b, const char* e) {
  return {b, static_cast<std::size_t>(e - b)};
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_space(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

inline bool starts_with(const char* p, const char* e, std::string_view lit) {
  return static_cast<std::size_t>(e - p) >= lit.size() &&
         std::memcmp(p, lit.data(), lit.size()) == 0;
}

// Hex digit values; 0xff for anything else.
struct HexTable {
  std::uint8_t v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = 0xff;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<std::uint8_t>(i);
    for (int i = 0; i < 6; ++i) {
      v['a' + i] = static_cast<std::uint8_t>(10 + i);
      v['A' + i] = static_cast<std::uint8_t>(10 + i);
    }
  }
};
constexpr HexTable kHex;

bool parse_hex(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  std::uint64_t v = 0;
  for (const char c : s) {
    const std::uint8_t d = kHex.v[static_cast<unsigned char>(c)];
    if (d == 0xff) return false;
    v = v << 4 | d;
  }
  out = v;
  return true;
}

bool parse_dec(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  if (s.size() <= 19) {  // cannot overflow
    for (const char c : s) {
      if (!is_digit(c)) return false;
      v = v * 10 + digit(c);
    }
  } else {
    for (const char c : s) {
      if (!is_digit(c)) return false;
      if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, digit(c), &v))
        return false;
    }
  }
  out = v;
  return true;
}

// Search 8 bytes at a time for the first byte equal to one of Cs (SWAR:
// the lowest flagged byte of the zero-byte test is exact; the lowest byte
// is the first one on a little-endian machine).
static_assert(std::endian::native == std::endian::little);
template <char... Cs>
inline const char* find_first(const char* p, const char* e) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighs = 0x8080808080808080ull;
  while (e - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    std::uint64_t m = 0;
    ((m |= ((w ^ (kOnes * static_cast<unsigned char>(Cs))) - kOnes) &
           ~(w ^ (kOnes * static_cast<unsigned char>(Cs))) & kHighs),
     ...);
    if (m) return p + (__builtin_ctzll(m) >> 3);
    p += 8;
  }
  for (; p < e; ++p)
    if (((*p == Cs) || ...)) return p;
  return e;
}

// Column padding: 8 bytes at a time to the first byte that is not ' ',
// then bytewise over any tabs.
constexpr std::uint64_t kSpaces = 0x2020202020202020ull;
inline const char* skip_spaces(const char* p, const char* e) {
  while (e - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if (const std::uint64_t x = w ^ kSpaces) {
      p += __builtin_ctzll(x) >> 3;
      break;
    }
    p += 8;
  }
  while (p < e && is_space(*p)) ++p;
  return p;
}
// Backwards from e (exclusive) to just after the last byte that is no space.
inline const char* rskip_spaces(const char* s, const char* e) {
  while (e - s >= 8) {
    std::uint64_t w;
    std::memcpy(&w, e - 8, 8);
    if (const std::uint64_t x = w ^ kSpaces) {
      e -= __builtin_clzll(x) >> 3;
      break;
    }
    e -= 8;
  }
  while (e > s && is_space(e[-1])) --e;
  return e;
}

// "0x1f" hex, "31" decimal: the printed forms (0x%lx, %lu) and trace-cmd's
// raw fields (hex for longs) all fit.
bool parse_num(std::string_view s, std::uint64_t& out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    return parse_hex(s.substr(2), out);
  return parse_dec(s, out);
}

bool parse_int(std::string_view s, int& out) {
  const bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  std::uint64_t v = 0;
  if (!parse_num(s, v)) return false;
  if (neg) {
    if (v > static_cast<std::uint64_t>(INT_MAX) + 1) return false;
    out = v == static_cast<std::uint64_t>(INT_MAX) + 1 ? INT_MIN : -static_cast<int>(v);
  } else {
    // Raw 32-bit fields may print as 0xffffffff for -1.
    if (v > 0xffffffffu) return false;
    out = static_cast<int>(static_cast<std::uint32_t>(v));
  }
  return true;
}

bool parse_uint(std::string_view s, unsigned& out) {
  std::uint64_t v = 0;
  if (!parse_num(s, v) || v > 0xffffffffu) return false;
  out = static_cast<unsigned>(v);
  return true;
}

bool parse_bool(std::string_view s, bool& out) {
  if (s == "true" || s == "false") {
    out = s[0] == 't';
    return true;
  }
  std::uint64_t v = 0;
  if (!parse_num(s, v)) return false;
  out = v != 0;
  return true;
}

// %p prints bare hex ("ffff1516c3e41380", "0000000000000000"); trace-cmd
// prints "0x..." and "(nil)"; old kernels "(null)".
bool parse_ptr(std::string_view s, std::uint64_t& out) {
  if (s == "(nil)" || s == "(null)") {
    out = 0;
    return true;
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  return parse_hex(s, out);
}

// rss_stat "size=8192B" (%ldB; may be negative).
bool parse_size_b(std::string_view s, std::uint64_t& out) {
  if (!s.empty() && s.back() == 'B') s.remove_suffix(1);
  const bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  if (!parse_num(s, out)) return false;
  if (neg) out = 0 - out;
  return true;
}

// "12.345678" (µs), "12.345678901" (ns), "123456789" (counter clocks: taken
// as ns). Fraction digits past 9 are dropped.
bool parse_ts(const char* p, const char* e, std::uint64_t& ns) {
  std::uint64_t sec = 0;
  const char* s = p;
  while (p < e && is_digit(*p)) {
    if (p - s >= 19) return false;
    sec = sec * 10 + digit(*p++);
  }
  if (p == s) return false;
  if (p == e) {
    ns = sec;
    return true;
  }
  if (*p != '.') return false;
  ++p;
  std::uint64_t frac = 0;
  int n = 0;
  const char* f = p;
  for (; p < e && is_digit(*p); ++p) {
    if (n < 9) {
      frac = frac * 10 + digit(*p);
      ++n;
    }
  }
  if (p != e || p == f) return false;
  static constexpr std::uint64_t kScale[10] = {1000000000, 100000000, 10000000, 1000000, 100000,
                                               10000,      1000,      100,      10,      1};
  ns = sec * 1000000000ull + frac * kScale[n];
  return true;
}

// The context columns before the event name.
struct Prefix {
  std::string_view comm;
  int pid = -1;
  int cpu = -1;
  std::uint64_t ts_ns = 0;
  bool dash = true;    // "comm-pid" (ftrace, trace-cmd); false: "comm pid" (perf)
  bool flags = false;  // an irq-flags column
  const char* rest = nullptr;
};

bool parse_small_int(const char* b, const char* e, int& out) {
  if (b == e || e - b > 9) return false;
  int v = 0;
  for (; b < e; ++b) v = v * 10 + static_cast<int>(digit(*b));
  out = v;
  return true;
}

// Reads pid, optional tgid and comm backwards from the "[cpu]" column at
// `br` ('['). comm is everything from `s` to the dash before the pid (comm
// may hold dashes, slashes and spaces), or to the space before it (perf).
bool walk_back(const char* s, const char* br, Prefix& pr) {
  const char* t = rskip_spaces(s, br);
  if (t > s && t[-1] == ')') {  // record-tgid "(  123)" / "(-------)"
    const char* o = t - 1;
    while (o > s && (is_space(o[-1]) || is_digit(o[-1]) || o[-1] == '-')) --o;
    if (o == s || o[-1] != '(') return false;
    t = o - 1;
    while (t > s && is_space(t[-1])) --t;
  }
  const char* pe = t;
  while (t > s && is_digit(t[-1])) --t;
  if (t == pe || !parse_small_int(t, pe, pr.pid)) return false;
  if (t > s && t[-1] == '/') {  // perf "pid/tid": keep the tid (the kernel's pid)
    const char* u = t - 1;
    while (u > s && is_digit(u[-1])) --u;
    if (u < t - 1) t = u;
  }
  if (t > s && t[-1] == '-') {
    pr.dash = true;
    pr.comm = view(s, t - 1);
    return true;
  }
  if (t == s || is_space(t[-1])) {
    pr.dash = false;
    const char* ce = t;
    while (ce > s && is_space(ce[-1])) --ce;
    pr.comm = view(s, ce);
    return true;
  }
  return false;
}

// No kernel has more CPUs (NR_CPUS is at most 8192), and an Op keeps its
// CPU in 16 bits: a larger "[N]" is no CPU column.
constexpr int kMaxCpu = 32767;

// Finds the first " [N]" column that has a pid before it, then the
// timestamp after it (skipping up to two flag columns).
bool parse_prefix(const char* s, const char* e, Prefix& pr) {
  const char* q = s;
  const char* after = nullptr;
  while (q < e) {
    q = find_first<'['>(q, e);
    if (q == e) return false;
    if (q > s && is_space(q[-1])) {
      const char* d = q + 1;
      while (d < e && is_digit(*d)) ++d;
      if (d > q + 1 && d < e && *d == ']' && parse_small_int(q + 1, d, pr.cpu) &&
          pr.cpu <= kMaxCpu && walk_back(s, q, pr)) {
        after = d + 1;
        break;
      }
    }
    ++q;
  }
  if (!after) return false;
  const char* p = after;
  for (int col = 0; col < 3; ++col) {
    p = skip_spaces(p, e);
    const char* te = find_first<' ', '\t'>(p, e);
    if (te > p && te[-1] == ':' && parse_ts(p, te - 1, pr.ts_ns)) {
      pr.rest = te;
      return true;
    }
    if (te == p) return false;
    pr.flags = true;
    p = te;
  }
  return false;
}

// "name: " at p (after spaces). perf's "kmem:kfree: " keeps the part after
// the last inner colon. Returns false if no such name.
bool parse_name(const char* p, const char* e, std::string_view& name, const char*& after) {
  p = skip_spaces(p, e);
  const char* b = p;
  const char* sys_end = nullptr;
  while (true) {
    p = find_first<':', ' ', '\t'>(p, e);
    if (p == e || *p != ':') return false;
    if (p + 1 == e || is_space(p[1])) break;
    sys_end = ++p;
  }
  const char* nb = sys_end ? sys_end : b;
  if (nb == p) return false;
  name = view(nb, p);
  after = p + 1;
  return true;
}

EventType classify(std::string_view n) {
  switch (n.size()) {
    case 5:
      if (n == "kfree") return EventType::kfree;
      if (n == "print") return EventType::marker;
      break;
    case 7:
      if (n == "kmalloc") return EventType::kmalloc;
      break;
    case 8:
      if (n == "rss_stat") return EventType::rss_stat;
      break;
    case 12:
      if (n == "kmalloc_node") return EventType::kmalloc_node;
      if (n == "mm_page_free") return EventType::mm_page_free;
      break;
    case 13:
      if (n == "mm_page_alloc") return EventType::mm_page_alloc;
      break;
    case 15:
      if (n == "kmem_cache_free") return EventType::kmem_cache_free;
      if (n == "alloc_vmap_area") return EventType::alloc_vmap_area;
      break;
    case 16:
      if (n == "kmem_cache_alloc") return EventType::kmem_cache_alloc;
      break;
    case 18:
      if (n == "mm_page_pcpu_drain") return EventType::mm_page_pcpu_drain;
      if (n == "tracing_mark_write") return EventType::marker;
      break;
    case 20:
      if (n == "mm_page_free_batched") return EventType::mm_page_free_batched;
      if (n == "purge_vmap_area_lazy") return EventType::purge_vmap_area_lazy;
      break;
    case 21:
      if (n == "kmem_cache_alloc_node") return EventType::kmem_cache_alloc_node;
      if (n == "mm_page_alloc_extfrag") return EventType::mm_page_alloc_extfrag;
      break;
    case 22:
      if (n == "free_vmap_area_noflush") return EventType::free_vmap_area_noflush;
      break;
    case 25:
      if (n == "mm_page_alloc_zone_locked") return EventType::mm_page_alloc_zone_locked;
      break;
    default:
      break;
  }
  if (n.size() > 7 && n.substr(0, 7) == "mmfuzz_") return EventType::mmfuzz_ext;
  return EventType::none;
}

enum Key : std::uint8_t {
  kNoKey,
  kCallSite,
  kPtr,
  kBytesReq,
  kBytesAlloc,
  kGfpFlags,
  kNode,
  kAccounted,
  kName,
  kPage,
  kPfn,
  kOrder,
  kMigratetype,
  kPercpuRefill,
  kAllocOrder,
  kFallbackOrder,
  kAllocMt,
  kFallbackMt,
  kFragmenting,
  kChangeOwnership,
  kType,
  kMember,
  kSize,
  kVaStart,
  kAlign,
  kVstart,
  kVend,
  kFailed,
  kStart,
  kEnd,
  kNumPurged,
  kNrLazy,
  kNrLazyMax,
  kNrKeys,
};

constexpr const char* kKeyNames[kNrKeys] = {
    "",
    "call_site",
    "ptr",
    "bytes_req",
    "bytes_alloc",
    "gfp_flags",
    "node",
    "accounted",
    "name",
    "page",
    "pfn",
    "order",
    "migratetype",
    "percpu_refill",
    "alloc_order",
    "fallback_order",
    "alloc_migratetype",
    "fallback_migratetype",
    "fragmenting",
    "change_ownership",
    "type",
    "member",
    "size",
    "va_start",
    "align",
    "vstart",
    "vend",
    "failed",
    "start",
    "end",
    "num_purged",
    "nr_lazy",
    "nr_lazy_max",
};

Key key_of(std::string_view k) {
  switch (k.size()) {
    case 3:
      if (k == "ptr") return kPtr;
      if (k == "pfn") return kPfn;
      if (k == "end") return kEnd;
      break;
    case 4:
      if (k == "node") return kNode;
      if (k == "name") return kName;
      if (k == "page") return kPage;
      if (k == "type") return kType;
      if (k == "size") return kSize;
      if (k == "vend") return kVend;
      break;
    case 5:
      if (k == "order") return kOrder;
      if (k == "align") return kAlign;
      if (k == "start") return kStart;
      break;
    case 6:
      if (k == "member") return kMember;
      if (k == "vstart") return kVstart;
      if (k == "failed") return kFailed;
      break;
    case 7:
      if (k == "nr_lazy") return kNrLazy;
      break;
    case 8:
      if (k == "va_start") return kVaStart;
      break;
    case 9:
      if (k == "call_site") return kCallSite;
      if (k == "bytes_req") return kBytesReq;
      if (k == "gfp_flags") return kGfpFlags;
      if (k == "accounted") return kAccounted;
      break;
    case 10:
      if (k == "num_purged") return kNumPurged;
      break;
    case 11:
      if (k == "bytes_alloc") return kBytesAlloc;
      if (k == "migratetype") return kMigratetype;
      if (k == "alloc_order") return kAllocOrder;
      if (k == "fragmenting") return kFragmenting;
      if (k == "nr_lazy_max") return kNrLazyMax;
      break;
    case 13:
      if (k == "percpu_refill") return kPercpuRefill;
      break;
    case 14:
      if (k == "fallback_order") return kFallbackOrder;
      break;
    case 16:
      if (k == "change_ownership") return kChangeOwnership;
      break;
    case 17:
      if (k == "alloc_migratetype") return kAllocMt;
      break;
    case 20:
      if (k == "fallback_migratetype") return kFallbackMt;
      break;
    default:
      break;
  }
  return kNoKey;
}

inline std::uint64_t bit(Key k) {
  return std::uint64_t{1} << k;
}

std::uint64_t hash_text(std::string_view s) {
  const char* p = s.data();
  const std::size_t n = s.size();
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
  auto mix = [&h](std::uint64_t w) {
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  };
  if (n >= 8) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    if (i < n) {
      std::uint64_t w;
      std::memcpy(&w, p + n - 8, 8);
      mix(w);
    }
  } else {
    std::uint64_t w = 0;
    if (n) std::memcpy(&w, p, n);
    mix(w);
  }
  return h;
}

constexpr std::size_t kGfpCacheMax = 4096;  // distinct strings kept

// ev = TraceEvent{}, as 16-byte copies from a default-made one: both the
// assignment and a plain memcpy compile to `rep stos`/`rep movs` here,
// whose start-up cost shows at millions of lines per second.
template <std::size_t... I>
inline void copy_chunks(char* d, const char* s, std::index_sequence<I...>) {
  (std::memcpy(d + I * 16, s + I * 16, 16), ...);
}
inline void reset(TraceEvent& ev) {
  static_assert(std::is_trivially_copyable_v<TraceEvent>);
  static const TraceEvent kFresh{};
  constexpr std::size_t kChunks = sizeof(TraceEvent) / 16;
  char* d = reinterpret_cast<char*>(&ev);
  const char* s = reinterpret_cast<const char*>(&kFresh);
  copy_chunks(d, s, std::make_index_sequence<kChunks>{});
  std::memcpy(d + kChunks * 16, s + kChunks * 16, sizeof(TraceEvent) % 16);
}

}  // namespace

bool TextParser::lookup_gfp(std::string_view text, std::uint32_t& gfp, std::string* error) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    std::uint64_t v = 0;
    if (parse_hex(text.substr(2), v) && v <= 0xffffffffu) {
      gfp = static_cast<std::uint32_t>(v);
      return true;
    }
  }
  const std::uint64_t h = hash_text(text);
  if (gfp_cache_.empty()) gfp_cache_.resize(256);
  std::size_t mask = gfp_cache_.size() - 1;
  std::size_t i = h & mask;
  while (gfp_cache_[i].used) {
    const GfpEntry& en = gfp_cache_[i];
    if (en.hash == h && en.text == text) {
      gfp = en.gfp;
      return true;
    }
    i = (i + 1) & mask;
  }
  const std::optional<mm::gfp_t> v = mm::parse_gfp(text, error);
  if (!v) return false;
  gfp = *v;
  if (gfp_cache_used_ >= kGfpCacheMax) return true;
  if ((gfp_cache_used_ + 1) * 2 > gfp_cache_.size()) {
    std::vector<GfpEntry> old(gfp_cache_.size() * 2);
    old.swap(gfp_cache_);
    mask = gfp_cache_.size() - 1;
    for (GfpEntry& en : old) {
      if (!en.used) continue;
      std::size_t j = en.hash & mask;
      while (gfp_cache_[j].used) j = (j + 1) & mask;
      gfp_cache_[j] = std::move(en);
    }
    i = h & mask;
    while (gfp_cache_[i].used) i = (i + 1) & mask;
  }
  GfpEntry& en = gfp_cache_[i];
  en.hash = h;
  en.text.assign(text);
  en.gfp = gfp;
  en.used = true;
  ++gfp_cache_used_;
  return true;
}

LineStatus TextParser::parse_fields(std::string_view event, std::string_view payload,
                                    TraceEvent& ev, std::string* error) {
  // Collect the values by key; parse only what this event needs. Left
  // uninitialized: only keys in `seen` are read.
  const char* vptr[kNrKeys];
  std::size_t vlen[kNrKeys];
  std::uint64_t seen = 0;
  const char* p = payload.data();
  const char* const e = p + payload.size();
  // A '\r' separates fields too (trim() takes it for a space): a value
  // never ends in one, which a line end would drop when it is printed last.
  while (true) {
    p = skip_spaces(p, e);
    while (p < e && *p == '\r') p = skip_spaces(p + 1, e);
    if (p == e) break;
    const char* tb = p;
    p = find_first<'=', ' ', '\t', '\r'>(p, e);
    std::string_view key;
    const char* vb;
    if (p < e && *p == '=') {
      key = view(tb, p);
      vb = p + 1;
      p = find_first<' ', '\t', '\r'>(vb, e);
    } else if (p - tb > 1 && p[-1] == ':') {
      // alloc_vmap_area prints "va_start: %lu".
      key = view(tb, p - 1);
      vb = skip_spaces(p, e);
      p = find_first<' ', '\t', '\r'>(vb, e);
    } else {
      continue;  // "(call_site+0x3c)", "[FAILED TO PARSE]"
    }
    const Key k = key_of(key);
    if (k == kNoKey || (seen & bit(k))) continue;
    seen |= bit(k);
    vptr[k] = vb;
    vlen[k] = static_cast<std::size_t>(p - vb);
  }
  const auto val = [&](Key k) { return std::string_view(vptr[k], vlen[k]); };

  const auto fail = [&](std::string_view what, Key k, std::string_view extra = {}) {
    if (error) {
      error->assign(event);
      error->append(": ");
      error->append(what);
      error->append(" ");
      error->append(kKeyNames[k]);
      error->append("=");
      if (what == "bad") {
        std::string_view v = val(k);
        if (v.size() > 64) v = v.substr(0, 64);
        error->append(" value '");
        error->append(v);
        error->append("'");
        if (!extra.empty()) {
          error->append(": ");
          error->append(extra);
        }
      }
    }
    return LineStatus::malformed;
  };
  const auto has = [&](Key k) { return (seen & bit(k)) != 0; };
  // Field readers: false (st and *error set) if a required field is missing
  // or a present one does not parse.
  LineStatus st = LineStatus::event;
  const auto missing = [&](Key k) {
    st = fail("missing", k);
    return false;
  };
  const auto bad = [&](Key k, std::string_view why = {}) {
    st = fail("bad", k, why);
    return false;
  };
  const auto need_u64 = [&](Key k, std::uint64_t& out) {
    if (!has(k)) return missing(k);
    return parse_num(val(k), out) || bad(k);
  };
  const auto opt_u64 = [&](Key k, std::uint64_t& out) {
    return !has(k) || parse_num(val(k), out) || bad(k);
  };
  const auto need_uint = [&](Key k, unsigned& out) {
    if (!has(k)) return missing(k);
    return parse_uint(val(k), out) || bad(k);
  };
  const auto opt_uint = [&](Key k, unsigned& out) {
    return !has(k) || parse_uint(val(k), out) || bad(k);
  };
  const auto need_int = [&](Key k, int& out) {
    if (!has(k)) return missing(k);
    return parse_int(val(k), out) || bad(k);
  };
  const auto opt_int = [&](Key k, int& out) { return !has(k) || parse_int(val(k), out) || bad(k); };
  const auto opt_bool = [&](Key k, bool& out) {
    return !has(k) || parse_bool(val(k), out) || bad(k);
  };
  const auto need_ptr = [&](Key k, std::uint64_t& out) {
    if (!has(k)) return missing(k);
    return parse_ptr(val(k), out) || bad(k);
  };
  const auto need_gfp = [&]() {
    if (!has(kGfpFlags)) return missing(kGfpFlags);
    std::string why;
    if (!lookup_gfp(val(kGfpFlags), ev.gfp, error ? &why : nullptr)) return bad(kGfpFlags, why);
    ev.has_gfp = true;
    return true;
  };
  const auto slab_common = [&]() {
    if (has(kCallSite)) ev.call_site = val(kCallSite);
    if (has(kName)) ev.name = val(kName);
    return need_ptr(kPtr, ev.ptr);
  };

  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      if (!slab_common() || !need_u64(kBytesReq, ev.bytes_req) ||
          !need_u64(kBytesAlloc, ev.bytes_alloc) || !need_gfp() || !opt_int(kNode, ev.node) ||
          !opt_bool(kAccounted, ev.accounted))
        return st;
      return LineStatus::event;
    case EventType::kfree:
    case EventType::kmem_cache_free:
      return slab_common() ? LineStatus::event : st;
    case EventType::mm_page_alloc: {
      if (!need_u64(kPfn, ev.pfn) || !need_uint(kOrder, ev.order) || !need_gfp() ||
          !opt_int(kMigratetype, ev.migratetype))
        return st;
      // 6.1 prints page NULL and pfn 0 for a failed allocation (5.10 the
      // same); trace-cmd's raw form shows the stored pfn, -1.
      std::uint64_t page = 1;
      if (ev.pfn == ~std::uint64_t{0}) {
        ev.failed = true;
        ev.pfn = 0;
      } else if (ev.pfn == 0 && has(kPage) && parse_ptr(val(kPage), page) && page == 0) {
        ev.failed = true;
      }
      return LineStatus::event;
    }
    case EventType::mm_page_free:
      return need_u64(kPfn, ev.pfn) && need_uint(kOrder, ev.order) ? LineStatus::event : st;
    case EventType::mm_page_free_batched:
      // Always order 0; trace-cmd's raw form has no order= at all.
      return need_u64(kPfn, ev.pfn) && opt_uint(kOrder, ev.order) ? LineStatus::event : st;
    case EventType::mm_page_alloc_zone_locked:
      return need_u64(kPfn, ev.pfn) && need_uint(kOrder, ev.order) &&
                     opt_int(kMigratetype, ev.migratetype) &&
                     opt_bool(kPercpuRefill, ev.percpu_refill)
                 ? LineStatus::event
                 : st;
    case EventType::mm_page_pcpu_drain:
      return need_u64(kPfn, ev.pfn) && need_uint(kOrder, ev.order) &&
                     opt_int(kMigratetype, ev.migratetype)
                 ? LineStatus::event
                 : st;
    case EventType::mm_page_alloc_extfrag:
      return need_u64(kPfn, ev.pfn) && need_uint(kAllocOrder, ev.alloc_order) &&
                     need_uint(kFallbackOrder, ev.fallback_order) &&
                     need_int(kAllocMt, ev.alloc_migratetype) &&
                     need_int(kFallbackMt, ev.fallback_migratetype) &&
                     opt_bool(kFragmenting, ev.fragmenting) &&
                     opt_bool(kChangeOwnership, ev.change_ownership)
                 ? LineStatus::event
                 : st;
    case EventType::rss_stat:
      if (!has(kSize)) return fail("missing", kSize);
      if (!parse_size_b(val(kSize), ev.size)) return fail("bad", kSize);
      if (has(kType))
        ev.name = val(kType);
      else if (has(kMember))
        ev.name = val(kMember);
      ev.fields = trim(payload);
      return LineStatus::event;
    case EventType::alloc_vmap_area:
      return need_u64(kVaStart, ev.addr) && need_u64(kSize, ev.size) && opt_u64(kAlign, ev.align) &&
                     opt_u64(kVstart, ev.vstart) && opt_u64(kVend, ev.vend) &&
                     opt_bool(kFailed, ev.failed)
                 ? LineStatus::event
                 : st;
    case EventType::free_vmap_area_noflush:
      return need_u64(kVaStart, ev.addr) && opt_u64(kNrLazy, ev.nr_lazy) &&
                     opt_u64(kNrLazyMax, ev.nr_lazy_max)
                 ? LineStatus::event
                 : st;
    case EventType::purge_vmap_area_lazy:
      return need_u64(kStart, ev.vstart) && need_u64(kEnd, ev.vend) &&
                     opt_u64(kNumPurged, ev.npurged)
                 ? LineStatus::event
                 : st;
    default:
      break;
  }
  return LineStatus::skipped;
}

LineStatus TextParser::parse(std::string_view line, TraceEvent& ev, std::string* error) {
  reset(ev);
  const char* b = line.data();
  const char* e = b + line.size();
  while (e > b && (e[-1] == '\r' || e[-1] == '\n')) --e;
  b = skip_spaces(b, e);
  ev.text = std::string_view(b, static_cast<std::size_t>(e - b));
  if (b == e) {
    header_open_ = false;
    return LineStatus::skipped;
  }
  if (*b == '#') {
    // "# mmfuzz program v2": a Program text, to be replayed literally.
    if (!program_text_ && starts_with(b, e, "# mmfuzz program")) {
      program_text_ = true;
      header_open_ = !seen_line_;
    }
    // Bounded: the header reader refuses more lines than this anyway.
    // A recorded trace keeps its "# expect:" lines before the first event.
    const bool keep = header_open_ || (!seen_line_ && starts_with(b, e, "# expect: "));
    if (keep && header_lines_.size() < 2048) header_lines_.emplace_back(b, e);
    return LineStatus::skipped;
  }
  header_open_ = false;
  seen_line_ = true;

  // Lost-events markers, on their own line.
  if (*b == 'C' && starts_with(b, e, "CPU:")) {
    const char* p = b + 4;
    const char* ds = p;
    while (p < e && is_digit(*p)) ++p;
    int cpu = -1;
    if (parse_small_int(ds, p, cpu) && starts_with(p, e, " [")) {
      p += 2;
      const char* nb = p;
      bool lost = false, dropped = false;
      if (starts_with(p, e, "LOST ")) {
        p += 5;
        nb = p;
        while (p < e && is_digit(*p)) ++p;
        lost =
            (p > nb && starts_with(p, e, " EVENTS]")) || (p == nb && starts_with(p, e, "EVENTS]"));
      } else {
        while (p < e && is_digit(*p)) ++p;
        dropped = (p > nb && starts_with(p, e, " EVENTS DROPPED]")) ||
                  (p == nb && starts_with(p, e, "EVENTS DROPPED]"));
      }
      if (lost || dropped) {
        if (format_ == TextFormat::unknown)
          format_ = lost ? TextFormat::ftrace : TextFormat::trace_cmd_report;
        ev.type = EventType::lost_events;
        ev.cpu = cpu;
        if (p > nb) parse_dec(view(nb, p), ev.lost);
        return LineStatus::event;
      }
    }
  }

  Prefix pr;
  const char* body = nullptr;  // where "name: fields" starts
  if (parse_prefix(b, e, pr)) {
    body = pr.rest;
  } else {
    pr = Prefix{};  // drop what a partial match filled in
    // trace-cmd's header lines; anything else is tried as a bare
    // "name: fields" line (ftrace's nocontext-info option).
    if (starts_with(b, e, "cpus=") || starts_with(b, e, "version =")) {
      if (format_ == TextFormat::unknown) format_ = TextFormat::trace_cmd_report;
      return LineStatus::skipped;
    }
    body = b;
  }

  std::string_view name;
  const char* after = nullptr;
  if (!parse_name(body, e, name, after)) {
    // perf script --show-lost-events: "... PERF_RECORD_LOST lost N".
    const char* r = body;
    while (r < e && is_space(*r)) ++r;
    if (starts_with(r, e, "PERF_RECORD_LOST")) {
      if (format_ == TextFormat::unknown) format_ = TextFormat::perf_script;
      ev.type = EventType::lost_events;
      ev.cpu = pr.cpu;
      const std::string_view rest = view(r, e);
      const std::size_t at = rest.find(" lost ");
      if (at != std::string_view::npos) {
        std::string_view n = rest.substr(at + 6);
        std::size_t ne = 0;
        while (ne < n.size() && is_digit(n[ne])) ++ne;
        parse_dec(n.substr(0, ne), ev.lost);
      }
      return LineStatus::event;
    }
    return LineStatus::skipped;
  }

  if (format_ == TextFormat::unknown && body != b) {
    if (!pr.dash) {
      format_ = TextFormat::perf_script;
    } else {
      // trace-cmd pads the name column and prints "(call_site+off)" or the
      // raw "[FAILED TO PARSE]" form; ftrace has one space.
      const bool padded = after + 1 < e && after[0] == ' ' && after[1] == ' ';
      const bool paren = after + 1 < e && (after[1] == '(' || after[1] == '[');
      format_ = padded || paren ? TextFormat::trace_cmd_report : TextFormat::ftrace;
    }
  }

  const EventType type = classify(name);
  if (type == EventType::none) return LineStatus::skipped;
  if (body == b && !(type == EventType::mmfuzz_ext)) {
    // A bare line must at least look like one: "name: key=..." .
    const std::string_view rest = trim(view(after, e));
    if (type != EventType::marker && rest.find('=') == std::string_view::npos)
      return LineStatus::skipped;
  }
  ev.comm = pr.comm;
  ev.pid = pr.pid;
  ev.cpu = pr.cpu;
  ev.ts_ns = pr.ts_ns;
  ev.type = type;
  std::string_view payload = view(after, e);

  if (type == EventType::marker) {
    std::string_view text = trim(payload);
    if (name == "print") {
      // trace-cmd: "print: tracing_mark_write: TEXT" (the event's "%ps: %s").
      const std::size_t c = text.find(": ");
      if (c != std::string_view::npos && text.substr(0, c).find(' ') == std::string_view::npos)
        text = trim(text.substr(c + 2));
      else if (!text.empty() && text.back() == ':' && text.find(' ') == std::string_view::npos)
        text = {};
    }
    // A marker "mmfuzz_NAME: fields" is an extension event.
    std::string_view xn;
    const char* xa = nullptr;
    if (text.size() > 7 && text.substr(0, 7) == "mmfuzz_" &&
        parse_name(text.data(), text.data() + text.size(), xn, xa) && xn.size() > 7 &&
        xn.substr(0, 7) == "mmfuzz_") {
      ev.type = EventType::mmfuzz_ext;
      ev.ext_name = xn.substr(7);
      ev.fields = trim(view(xa, text.data() + text.size()));
      return LineStatus::event;
    }
    ev.fields = text;
    return LineStatus::event;
  }
  if (type == EventType::mmfuzz_ext) {
    ev.ext_name = name.substr(7);
    ev.fields = trim(payload);
    return LineStatus::event;
  }
  return parse_fields(name, payload, ev, error);
}

}  // namespace mmfuzz::trace
