// The byte format (docs/fuzzing.md has the table):
//   op      := opbyte args...         opbyte: low 5 bits pick the kind among
//                                     the target's kinds, high 3 the CPU
//   value   := b (b < 0xff: table[b]) | 0xff literal
//   handle  := b < 0xe0: the (b mod n)-th live handle of the space;
//              b >= 0xe0: a recently freed one (misuse) when there is one
//   range   := a < 0xef: offset and length scaled into the object;
//              a == 0xef: literal offset and length; a > 0xef: past the end
// Reading past the end of the input yields zeros; the Program stops at the
// first op that starts after the end.
#include "fuzz/decoder.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <unordered_map>

#include "analysis/workload_profile.h"
#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"

namespace mmfuzz::fuzz {

using prog::Op;
using prog::OpKind;
using prog::Space;

namespace {

constexpr std::uint64_t bit(OpKind k) {
  return std::uint64_t{1} << static_cast<unsigned>(k);
}

constexpr std::uint64_t kPageOps = bit(OpKind::alloc_pages) | bit(OpKind::free_pages) |
                                   bit(OpKind::split_page) | bit(OpKind::drain_all_pages);
constexpr std::uint64_t kSlabOps =
    bit(OpKind::kmalloc) | bit(OpKind::kfree) | bit(OpKind::kmem_cache_create) |
    bit(OpKind::kmem_cache_alloc) | bit(OpKind::kmem_cache_free) | bit(OpKind::kmem_cache_shrink) |
    bit(OpKind::kmem_cache_destroy) | bit(OpKind::mempool_create) | bit(OpKind::mempool_alloc) |
    bit(OpKind::mempool_free) | bit(OpKind::mempool_destroy);
constexpr std::uint64_t kVmOps = bit(OpKind::vmalloc) | bit(OpKind::vfree) | bit(OpKind::vmap) |
                                 bit(OpKind::vunmap) | bit(OpKind::ioremap) | bit(OpKind::iounmap);
constexpr std::uint64_t kCommon =
    bit(OpKind::write) | bit(OpKind::read) | bit(OpKind::tick) | bit(OpKind::check);

constexpr std::array<TargetSpec, 6> kTargets = {{
    // Without vmalloc ops the page tables stay as boot left them: those
    // targets skip the page-table walk (the mm target checks everything).
    {"page_alloc", "buddy allocator, pcp lists, split_page", kPageOps | kCommon,
     mm::SlabVariant::slub, false, false, "buddy.*"},
    {"slub", "SLUB: kmalloc, kmem_cache, mempool", kSlabOps | kCommon, mm::SlabVariant::slub, true,
     false, "buddy.*,slab.*"},
    {"slab", "SLAB: kmalloc, kmem_cache, mempool", kSlabOps | kCommon, mm::SlabVariant::slab, true,
     false, "buddy.*,slab.*"},
    {"slob", "SLOB: kmalloc, kmem_cache, mempool", kSlabOps | kCommon, mm::SlabVariant::slob, true,
     false, "buddy.*,slab.*"},
    {"vm", "vmalloc, vmap, ioremap and the kernel page tables", kVmOps | kCommon,
     mm::SlabVariant::slub, true, true, "all"},
    {"mm", "the whole API on SLUB", kPageOps | kSlabOps | kVmOps | kCommon, mm::SlabVariant::slub,
     true, true, "all"},
}};

// Sizes in the right-hand column of a table: a byte indexes 255 entries.
constexpr std::size_t kTab = 255;
constexpr std::uint8_t kLiteral = 0xff;
constexpr std::uint8_t kFreedPick = 0xe0;
constexpr std::uint8_t kRangeLiteral = 0xef;
constexpr std::uint8_t kBigPick = 0xdf;
constexpr unsigned kMaxChecks = 2;
constexpr std::uint8_t kCheckEscape = 0xff;
constexpr std::size_t kMaxFreed = 32;
constexpr std::uint64_t kPageHandleStride = 4096;  // room for split_page's tail handles
constexpr std::uint64_t kMaxLiteralSize = std::uint64_t{1} << 32;
constexpr std::uint64_t kMaxAccess = 1 << 16;  // bytes per write/read op

template <class T>
std::vector<T> fill_table(const std::vector<analysis::Weighted>& rows, std::vector<T> fallback) {
  std::uint64_t total = 0;
  for (const auto& r : rows) total += r.weight;
  if (!total) {
    std::vector<T> t;
    while (t.size() < kTab) t.insert(t.end(), fallback.begin(), fallback.end());
    t.resize(kTab);
    return t;
  }
  std::vector<T> t;
  t.reserve(kTab);
  // Every row gets at least one slot; then in proportion to its weight.
  for (const auto& r : rows)
    if (t.size() < kTab) t.push_back(static_cast<T>(r.value));
  const std::size_t left = kTab - t.size();
  for (const auto& r : rows) {
    const auto n = static_cast<std::size_t>(r.weight * left / total);
    for (std::size_t i = 0; i < n && t.size() < kTab; ++i) t.push_back(static_cast<T>(r.value));
  }
  for (std::size_t i = 0; t.size() < kTab; ++i) t.push_back(t[i % rows.size()]);
  return t;
}

// Reads the input; zeros past its end.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> d) : d_(d) {}
  bool at_end() const { return pos_ >= d_.size(); }
  std::uint8_t peek() const { return pos_ < d_.size() ? d_[pos_] : std::uint8_t{0}; }
  std::uint8_t u8() {
    const std::size_t i = pos_++;
    return i < d_.size() ? d_[i] : std::uint8_t{0};
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = u8();
      v |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  }

 private:
  std::span<const std::uint8_t> d_;
  std::size_t pos_ = 0;
};

class Writer {
 public:
  void u8(std::uint8_t b) { out.push_back(b); }
  void varint(std::uint64_t v) {
    do {
      auto b = static_cast<std::uint8_t>(v & 0x7f);
      v >>= 7;
      if (v) b |= 0x80;
      out.push_back(b);
    } while (v);
  }
  std::vector<std::uint8_t> out;
};

// What the decoder knows of a live handle.
struct Live {
  std::uint64_t h = 0;
  std::uint64_t size = 0;   // bytes (objects, areas) or 4 KiB << order (pages)
  std::uint32_t cache = 0;  // objects: the cache name's string id (0: kmalloc)
  std::uint64_t pool = 0;   // objects: the mempool handle (0: none)
  std::uint8_t order = 0;   // pages
  std::uint8_t kind = 0;    // areas: OpKind of the allocation; objects: 1 cache, 2 pool
};

struct SpaceState {
  std::vector<Live> live;
  std::vector<Live> freed;  // recent, oldest first
  std::uint64_t next = 1;

  void kill(std::size_t i) {
    if (freed.size() == kMaxFreed) freed.erase(freed.begin());
    freed.push_back(live[i]);
    live[i] = live.back();
    live.pop_back();
  }
  std::size_t find_live(std::uint64_t h) const {
    for (std::size_t i = 0; i < live.size(); ++i)
      if (live[i].h == h) return i;
    return SIZE_MAX;
  }
  std::size_t find_freed(std::uint64_t h) const {
    for (std::size_t i = freed.size(); i-- > 0;)
      if (freed[i].h == h) return i;
    return SIZE_MAX;
  }
};

struct CacheState {
  std::uint32_t name = 0;
  std::uint64_t size = 0;
};

// The state both directions share: decode() and encode() run the same
// bookkeeping, so the bytes encode() writes make decode() pick the same
// handles.
struct State {
  const TargetSpec& t;
  const DecodeTables& tab;
  const DecodeOptions& opts;
  prog::Program& p;
  std::vector<OpKind> kinds;
  SpaceState obj, page, area, pool;
  std::vector<CacheState> caches;  // created by the Program, then boot caches
  unsigned nr_created = 0;
  const std::vector<std::uint64_t>& io_phys;

  State(const TargetSpec& target, const DecodeTables& tables, const DecodeOptions& o,
        prog::Program& prog)
      : t(target), tab(tables), opts(o), p(prog), io_phys(ioremap_targets(target)) {
    // A full sweep costs more than a whole Program: `check` is not one of
    // the kinds a byte picks but the rare escape 0xff 0xff.
    for (int k = 0; k < prog::kNrOpKinds; ++k)
      if ((t.op_mask & (std::uint64_t{1} << k)) && static_cast<OpKind>(k) != OpKind::check)
        kinds.push_back(static_cast<OpKind>(k));
    page.next = kPageHandleStride;
    // Boot caches every slab variant has, by the names traces use.
    for (const char* n : {"kmalloc-128", "kmalloc-1k", "vmap_area", "kmem_cache"})
      caches.push_back({p.strings.intern(n), 0});
  }

  // The addresses ioremap picks from: the machine's devices, then RAM (must
  // be refused) and nothing. Every target boots the same machine; built
  // once, as target_config() describes a whole machine.
  static const std::vector<std::uint64_t>& ioremap_targets(const TargetSpec& t) {
    static const std::vector<std::uint64_t> v = [&t] {
      const mm::MmConfig cfg = target_config(t);
      std::vector<std::uint64_t> a;
      for (const auto& d : cfg.machine.devices) a.push_back(d.start);
      a.push_back(cfg.machine.ram_base + 0x100000);
      a.push_back(0x10);
      return a;
    }();
    return v;
  }

  SpaceState& space(Space s) { return s == Space::object ? obj : s == Space::page ? page : area; }
};

// The handle spaces a target's writes and reads use, in a fixed order.
std::array<Space, 3> target_spaces(const TargetSpec& t, std::size_t* n) {
  std::array<Space, 3> spaces{};
  *n = 0;
  if (t.op_mask & bit(OpKind::kmalloc)) spaces[(*n)++] = Space::object;
  if (t.op_mask & bit(OpKind::alloc_pages)) spaces[(*n)++] = Space::page;
  if (t.op_mask & bit(OpKind::vmalloc)) spaces[(*n)++] = Space::area;
  return spaces;
}

std::uint64_t page_bytes(unsigned order) {
  return std::uint64_t{4096} << order;
}

// ---- decoding ----

template <class T>
T dec_value(Reader& r, const std::vector<T>& table) {
  const std::uint8_t b = r.u8();
  if (b != kLiteral) return table[b % table.size()];
  return static_cast<T>(std::min<std::uint64_t>(r.varint(), kMaxLiteralSize));
}

// Picks a handle; *misuse when it is stale or unbound.
const Live* dec_pick(Reader& r, SpaceState& s, bool* misuse, std::size_t* live_index) {
  const std::uint8_t b = r.u8();
  *live_index = SIZE_MAX;
  if ((b < kFreedPick || s.freed.empty()) && !s.live.empty()) {
    // kBigPick: an index past what one byte reaches (split_page's tails).
    *live_index = (b == kBigPick ? r.varint() : b) % s.live.size();
    return &s.live[*live_index];
  }
  *misuse = true;
  if (!s.freed.empty()) return &s.freed[b % s.freed.size()];
  return nullptr;
}

void dec_range(Reader& r, std::uint64_t size, Op& op, bool* misuse) {
  const std::uint8_t a = r.u8();
  const std::uint8_t b = r.u8();
  if (a == kRangeLiteral) {
    op.arg = std::min<std::uint64_t>(r.varint(), kMaxLiteralSize);
    op.size = std::min<std::uint64_t>(r.varint(), kMaxAccess);
  } else if (a > kRangeLiteral) {  // straddle the end: an out-of-bounds access
    op.arg = size >= 8 ? size - 8 + (a & 7) : 0;
    op.size = 9 + (b & 63);
    *misuse = true;
  } else if (size == 0) {
    op.arg = 0;
    op.size = 1;
    *misuse = true;
  } else {
    op.arg = (a * size / kRangeLiteral) & ~std::uint64_t{7};
    const std::uint64_t room = size - op.arg;
    op.size = std::clamp<std::uint64_t>((std::uint64_t{b} + 1) * room / 256, 1, kMaxAccess);
  }
  if (op.arg + op.size > size) *misuse = true;
}

std::uint32_t dec_cache(Reader& r, State& st) {
  const std::uint8_t b = r.u8();
  // Created caches first: the last one most of the time.
  if (st.nr_created && b < 0xc0) return st.caches[st.nr_created - 1 - b % st.nr_created].name;
  return st.caches[b % st.caches.size()].name;
}

bool decode_op(Reader& r, State& st, Op& op) {
  const std::uint8_t opb = r.u8();
  op = Op{};
  if (opb == kCheckEscape) {
    if (r.peek() == kCheckEscape) {
      r.u8();
      op.kind = OpKind::check;
      return false;
    }
  }
  op.kind = st.kinds[(opb & 31) % st.kinds.size()];
  op.cpu = static_cast<std::int16_t>((opb >> 5) % std::max(1u, st.opts.nr_cpus));
  bool misuse = false;
  std::size_t li = SIZE_MAX;
  switch (op.kind) {
    case OpKind::alloc_pages: {
      op.order = std::min<std::uint8_t>(dec_value(r, st.tab.order), 10);
      op.gfp = dec_value(r, st.tab.page_gfp);
      op.h = st.page.next;
      st.page.next += kPageHandleStride;
      st.page.live.push_back({op.h, page_bytes(op.order), 0, 0, op.order, 0});
      break;
    }
    case OpKind::free_pages: {
      const Live* l = dec_pick(r, st.page, &misuse, &li);
      const std::uint8_t b = r.u8();
      if (!l) return misuse;  // nothing to free: a no-op op
      op.h = l->h;
      op.order = l->order;
      if (b >= 0xf0 && (b & 15) != l->order) {  // the wrong order
        op.order = b & 15;
        misuse = true;
      }
      if (li != SIZE_MAX) st.page.kill(li);
      break;
    }
    case OpKind::split_page: {
      const Live* l = dec_pick(r, st.page, &misuse, &li);
      if (!l) return misuse;
      op.h = l->h;
      if (li != SIZE_MAX && l->order) {
        const Live head = *l;
        st.page.live[li].order = 0;
        st.page.live[li].size = page_bytes(0);
        for (std::uint64_t i = 1; i < (std::uint64_t{1} << head.order); ++i)
          st.page.live.push_back({head.h + i, page_bytes(0), 0, 0, 0, 0});
      }
      break;
    }
    case OpKind::kmalloc:
      op.size = dec_value(r, st.tab.kmalloc_size);
      op.gfp = dec_value(r, st.tab.slab_gfp);
      op.h = st.obj.next++;
      st.obj.live.push_back({op.h, op.size, 0, 0, 0, 0});
      break;
    case OpKind::kfree: {
      const Live* l = dec_pick(r, st.obj, &misuse, &li);
      if (!l) return misuse;
      op.h = l->h;
      if (l->kind == 2) misuse = true;  // a mempool element behind the pool's back
      if (li != SIZE_MAX) st.obj.kill(li);
      break;
    }
    case OpKind::kmem_cache_create: {
      op.size = std::max<std::uint64_t>(1, dec_value(r, st.tab.cache_size));
      static constexpr std::array<std::uint64_t, 6> kAlign = {0, 0, 8, 16, 64, 128};
      op.arg = kAlign[r.u8() % kAlign.size()];
      op.flags = dec_value(r, st.tab.cache_flags);
      const std::uint8_t c = r.u8();
      if (c & 1) {
        op.flags2 = prog::kCtorFlag;
        op.byte = static_cast<std::uint8_t>(c & 0xfe);
      }
      op.name = st.p.strings.intern("fuzz-" + std::to_string(st.nr_created));
      st.caches.insert(st.caches.begin() + st.nr_created, {op.name, op.size});
      ++st.nr_created;
      break;
    }
    case OpKind::kmem_cache_alloc: {
      op.name = dec_cache(r, st);
      op.gfp = dec_value(r, st.tab.slab_gfp);
      op.h = st.obj.next++;
      std::uint64_t size = 0;
      for (const auto& c : st.caches)
        if (c.name == op.name) size = c.size;
      st.obj.live.push_back({op.h, size, op.name, 0, 0, 1});
      break;
    }
    case OpKind::kmem_cache_free: {
      const Live* l = dec_pick(r, st.obj, &misuse, &li);
      const std::uint8_t b = r.u8();
      if (!l) return misuse;
      op.h = l->h;
      op.name = l->cache;
      if (b >= 0xf0) {  // another cache than the object's
        op.name = st.caches[b % st.caches.size()].name;
        if (op.name != l->cache) misuse = true;
      }
      if (!op.name || l->kind != 1) misuse = true;
      if (li != SIZE_MAX) st.obj.kill(li);
      break;
    }
    case OpKind::kmem_cache_shrink:
      op.name = dec_cache(r, st);
      break;
    case OpKind::kmem_cache_destroy:
      op.name = dec_cache(r, st);
      misuse = true;  // objects may be left; later allocations hit a dead cache
      break;
    case OpKind::mempool_create: {
      op.byte = r.u8() % 3;
      op.arg = 1 + r.u8() % 8;
      op.name = op.byte == 0 ? dec_cache(r, st) : 0;
      if (op.byte == 1) op.size = dec_value(r, st.tab.kmalloc_size);
      if (op.byte == 2) op.order = r.u8() % 4;
      op.gfp = mm::GFP_KERNEL;
      op.h2 = st.pool.next++;
      std::uint64_t size = op.byte == 1 ? op.size : op.byte == 2 ? page_bytes(op.order) : 0;
      if (op.byte == 0)
        for (const auto& c : st.caches)
          if (c.name == op.name) size = c.size;
      st.pool.live.push_back({op.h2, size, op.name, 0, op.order, op.byte});
      break;
    }
    case OpKind::mempool_alloc: {
      const Live* l = dec_pick(r, st.pool, &misuse, &li);
      op.gfp = dec_value(r, st.tab.slab_gfp);
      if (!l) return misuse;
      op.h2 = l->h;
      op.h = st.obj.next++;
      st.obj.live.push_back({op.h, l->kind == 2 ? 0 : l->size, l->cache, l->h, 0, 2});
      break;
    }
    case OpKind::mempool_free: {
      const Live* l = dec_pick(r, st.obj, &misuse, &li);
      const std::uint8_t b = r.u8();
      if (!l) return misuse;
      op.h = l->h;
      op.h2 = l->pool;
      if (!l->pool || b >= 0xf0) {  // not a pool element, or another pool
        misuse = true;
        if (!st.pool.live.empty()) op.h2 = st.pool.live[b % st.pool.live.size()].h;
        if (!op.h2) return misuse;
      }
      if (li != SIZE_MAX) st.obj.kill(li);
      break;
    }
    case OpKind::mempool_destroy: {
      const Live* l = dec_pick(r, st.pool, &misuse, &li);
      if (!l) return misuse;
      op.h2 = l->h;
      if (li != SIZE_MAX) st.pool.kill(li);
      break;
    }
    case OpKind::vmalloc:
      op.byte = r.u8() % 4;
      op.size = std::max<std::uint64_t>(1, dec_value(r, st.tab.vmalloc_size));
      op.h = st.area.next++;
      st.area.live.push_back({op.h, op.size, 0, 0, 0, static_cast<std::uint8_t>(op.kind)});
      break;
    case OpKind::vmap:
      op.size = 1 + r.u8() % 16;
      op.h = st.area.next++;
      st.area.live.push_back({op.h, op.size * 4096, 0, 0, 0, static_cast<std::uint8_t>(op.kind)});
      break;
    case OpKind::ioremap: {
      op.byte = r.u8() % 3;
      op.arg = st.io_phys[r.u8() % st.io_phys.size()];
      op.size = 4096u << (r.u8() % 3);
      if (op.arg == st.io_phys[st.io_phys.size() - 2]) misuse = true;  // RAM
      op.h = st.area.next++;
      st.area.live.push_back({op.h, op.size, 0, 0, 0, static_cast<std::uint8_t>(op.kind)});
      break;
    }
    case OpKind::vfree:
    case OpKind::vunmap:
    case OpKind::iounmap: {
      const Live* l = dec_pick(r, st.area, &misuse, &li);
      if (!l) return misuse;
      op.h = l->h;
      const auto want = op.kind == OpKind::vfree    ? OpKind::vmalloc
                        : op.kind == OpKind::vunmap ? OpKind::vmap
                                                    : OpKind::ioremap;
      if (l->kind != static_cast<std::uint8_t>(want)) misuse = true;
      if (li != SIZE_MAX) st.area.kill(li);
      break;
    }
    case OpKind::write:
    case OpKind::read: {
      std::size_t n = 0;
      const auto spaces = target_spaces(st.t, &n);
      const std::uint8_t s = r.u8();
      op.space = n ? spaces[s % n] : Space::object;
      const Live* l = dec_pick(r, st.space(op.space), &misuse, &li);
      dec_range(r, l ? l->size : 0, op, &misuse);
      op.byte = r.u8();
      if (!l) return misuse;
      op.h = l->h;
      // A write out of bounds or after free scribbles over freelists and
      // red zones: the next sweep's invariant violation would be the
      // Program's fault, not the model's. Such writes become reads, which
      // the model still checks and reports.
      if (misuse) op.kind = OpKind::read;
      // Pages and areas of unknown size (a vmalloc of a literal) stay in bounds.
      break;
    }
    case OpKind::tick:
    case OpKind::drain_all_pages:
    case OpKind::check:
      break;
  }
  return misuse;
}

// ---- encoding ----

template <class T>
void enc_value(Writer& w, const std::vector<T>& table, std::uint64_t v) {
  for (std::size_t i = 0; i < table.size(); ++i)
    if (table[i] == v) {
      w.u8(static_cast<std::uint8_t>(i));
      return;
    }
  w.u8(kLiteral);
  w.varint(v);
}

// The byte that makes dec_pick() choose decoded handle d; false if it cannot.
bool enc_pick(Writer& w, const SpaceState& s, std::uint64_t d) {
  if (const std::size_t i = s.find_live(d); i != SIZE_MAX) {
    if (i < kBigPick) {
      w.u8(static_cast<std::uint8_t>(i));
    } else {
      w.u8(kBigPick);
      w.varint(i);
    }
    return true;
  }
  if (const std::size_t j = s.find_freed(d); j != SIZE_MAX) {
    for (unsigned b = kFreedPick; b <= 0xff; ++b)
      if (b % s.freed.size() == j) {
        w.u8(static_cast<std::uint8_t>(b));
        return true;
      }
  }
  return false;
}

// The byte that makes dec_cache() choose cache name `name`.
bool enc_cache(Writer& w, const State& st, std::uint32_t name) {
  for (std::size_t pos = 0; pos < st.caches.size(); ++pos) {
    if (st.caches[pos].name != name) continue;
    if (pos < st.nr_created) {
      w.u8(static_cast<std::uint8_t>(st.nr_created - 1 - pos));
      return true;
    }
    for (unsigned b = 0xc0; b <= 0xff; ++b)
      if (b % st.caches.size() == pos) {
        w.u8(static_cast<std::uint8_t>(b));
        return true;
      }
  }
  return false;
}

struct HandleMaps {
  std::unordered_map<std::uint64_t, std::uint64_t> obj, page, area, pool;
  std::unordered_map<std::uint32_t, std::uint32_t> cache;  // input name id -> decoded
  std::unordered_map<std::uint64_t, std::uint64_t>& of(Space s) {
    return s == Space::object ? obj : s == Space::page ? page : area;
  }
};

std::uint64_t mapped(const std::unordered_map<std::uint64_t, std::uint64_t>& m, std::uint64_t h) {
  const auto it = m.find(h);
  return it == m.end() ? 0 : it->second;
}

// Bytes for one input op; false when the target's language cannot say it.
bool encode_op(Writer& w, State& st, HandleMaps& hm, const prog::Program& in, const Op& op) {
  if (op.kind == OpKind::check) {
    if (!(st.t.op_mask & bit(OpKind::check))) return false;
    w.u8(kCheckEscape);
    w.u8(kCheckEscape);
    return true;
  }
  const auto k = std::find(st.kinds.begin(), st.kinds.end(), op.kind);
  if (k == st.kinds.end()) return false;
  const auto idx = static_cast<unsigned>(k - st.kinds.begin());
  unsigned cpu = static_cast<unsigned>(std::max<int>(op.cpu, 0)) % 8;
  // 0xff followed by 0xff means `check`: the same op on another CPU alias.
  if ((idx | (cpu << 5)) == kCheckEscape) cpu = st.opts.nr_cpus == 1 ? 0 : cpu - st.opts.nr_cpus;
  w.u8(static_cast<std::uint8_t>(idx | (cpu << 5)));
  auto cache_name = [&](std::uint32_t name) -> std::uint32_t {
    if (!name) return 0;
    if (const auto it = hm.cache.find(name); it != hm.cache.end()) return it->second;
    return st.p.strings.find(in.strings.str(name));  // a boot cache, if the decoder has it
  };
  switch (op.kind) {
    case OpKind::alloc_pages:
      if (!op.h) return false;  // a failure the trace saw
      enc_value(w, st.tab.order, op.order);
      enc_value(w, st.tab.page_gfp, op.gfp);
      hm.page[op.h] = st.page.next;
      return true;
    case OpKind::free_pages:
    case OpKind::split_page: {
      const std::uint64_t d = mapped(hm.page, op.h);
      if (!d || !enc_pick(w, st.page, d)) return false;
      if (op.kind == OpKind::free_pages) {
        const std::size_t i = st.page.find_live(d);
        const std::size_t j = i == SIZE_MAX ? st.page.find_freed(d) : SIZE_MAX;
        const unsigned order = i != SIZE_MAX   ? st.page.live[i].order
                               : j != SIZE_MAX ? st.page.freed[j].order
                                               : op.order;
        w.u8(order == op.order ? 0 : static_cast<std::uint8_t>(0xf0 | (op.order & 15)));
      } else {
        const std::size_t i = st.page.find_live(d);
        const unsigned order = i != SIZE_MAX ? st.page.live[i].order : 0;
        for (std::uint64_t t = 1; t < (std::uint64_t{1} << order); ++t) hm.page[op.h + t] = d + t;
      }
      return true;
    }
    case OpKind::kmalloc:
      if (!op.h) return false;
      enc_value(w, st.tab.kmalloc_size, op.size);
      enc_value(w, st.tab.slab_gfp, op.gfp);
      hm.obj[op.h] = st.obj.next;
      return true;
    case OpKind::kfree: {
      const std::uint64_t d = mapped(hm.obj, op.h);
      return d && enc_pick(w, st.obj, d);
    }
    case OpKind::kmem_cache_create: {
      enc_value(w, st.tab.cache_size, op.size);
      static constexpr std::array<std::uint64_t, 6> kAlign = {0, 0, 8, 16, 64, 128};
      const auto a = std::find(kAlign.begin(), kAlign.end(), op.arg);
      w.u8(static_cast<std::uint8_t>(a == kAlign.end() ? 0 : a - kAlign.begin()));
      enc_value(w, st.tab.cache_flags, op.flags);
      w.u8((op.flags2 & prog::kCtorFlag) ? static_cast<std::uint8_t>(op.byte | 1) : 0);
      hm.cache[op.name] = st.p.strings.intern("fuzz-" + std::to_string(st.nr_created));
      return true;
    }
    case OpKind::kmem_cache_alloc:
      if (!op.h || !enc_cache(w, st, cache_name(op.name))) return false;
      enc_value(w, st.tab.slab_gfp, op.gfp);
      hm.obj[op.h] = st.obj.next;
      return true;
    case OpKind::kmem_cache_free: {
      const std::uint64_t d = mapped(hm.obj, op.h);
      if (!d || !enc_pick(w, st.obj, d)) return false;
      const std::size_t i = st.obj.find_live(d);
      const std::size_t j = i == SIZE_MAX ? st.obj.find_freed(d) : SIZE_MAX;
      const std::uint32_t own = i != SIZE_MAX   ? st.obj.live[i].cache
                                : j != SIZE_MAX ? st.obj.freed[j].cache
                                                : 0;
      const std::uint32_t want = cache_name(op.name);
      if (own == want) {
        w.u8(0);
        return true;
      }
      for (unsigned b = 0xf0; b <= 0xff; ++b)
        if (st.caches[b % st.caches.size()].name == want) {
          w.u8(static_cast<std::uint8_t>(b));
          return true;
        }
      w.u8(0);
      return true;
    }
    case OpKind::kmem_cache_shrink:
    case OpKind::kmem_cache_destroy:
      return enc_cache(w, st, cache_name(op.name));
    case OpKind::mempool_create: {
      const unsigned kind = std::min<unsigned>(op.byte, 2);
      w.u8(static_cast<std::uint8_t>(kind));
      w.u8(static_cast<std::uint8_t>((std::clamp<std::uint64_t>(op.arg, 1, 8) - 1)));
      if (kind == 0 && !enc_cache(w, st, cache_name(op.name))) return false;
      if (kind == 1) enc_value(w, st.tab.kmalloc_size, op.size);
      if (kind == 2) w.u8(static_cast<std::uint8_t>(op.order % 4));
      hm.pool[op.h2] = st.pool.next;
      return true;
    }
    case OpKind::mempool_alloc: {
      const std::uint64_t d = mapped(hm.pool, op.h2);
      if (!d || !op.h || !enc_pick(w, st.pool, d)) return false;
      enc_value(w, st.tab.slab_gfp, op.gfp);
      hm.obj[op.h] = st.obj.next;
      return true;
    }
    case OpKind::mempool_free: {
      const std::uint64_t d = mapped(hm.obj, op.h);
      const std::uint64_t dpool = mapped(hm.pool, op.h2);
      if (!d || !dpool || !enc_pick(w, st.obj, d)) return false;
      const std::size_t i = st.obj.find_live(d);
      const std::size_t j = i == SIZE_MAX ? st.obj.find_freed(d) : SIZE_MAX;
      const std::uint64_t own = i != SIZE_MAX   ? st.obj.live[i].pool
                                : j != SIZE_MAX ? st.obj.freed[j].pool
                                                : 0;
      if (own && own == dpool) {
        w.u8(0);
        return true;
      }
      for (unsigned b = own ? 0xf0 : 0; b <= 0xff; ++b)
        if (!st.pool.live.empty() && st.pool.live[b % st.pool.live.size()].h == dpool) {
          w.u8(static_cast<std::uint8_t>(b));
          return true;
        }
      return false;
    }
    case OpKind::mempool_destroy: {
      const std::uint64_t d = mapped(hm.pool, op.h2);
      return d && enc_pick(w, st.pool, d);
    }
    case OpKind::vmalloc:
      if (!op.h) return false;
      w.u8(static_cast<std::uint8_t>(op.byte % 4));
      enc_value(w, st.tab.vmalloc_size, op.size);
      hm.area[op.h] = st.area.next;
      return true;
    case OpKind::vmap:
      if (!op.h) return false;
      w.u8(static_cast<std::uint8_t>((std::clamp<std::uint64_t>(op.size, 1, 16) - 1)));
      hm.area[op.h] = st.area.next;
      return true;
    case OpKind::ioremap: {
      if (!op.h) return false;
      w.u8(static_cast<std::uint8_t>(op.byte % 3));
      const auto p = std::find(st.io_phys.begin(), st.io_phys.end(), op.arg);
      w.u8(static_cast<std::uint8_t>(p == st.io_phys.end() ? 0 : p - st.io_phys.begin()));
      w.u8(op.size > 8192 ? 2 : op.size > 4096 ? 1 : 0);
      hm.area[op.h] = st.area.next;
      return true;
    }
    case OpKind::vfree:
    case OpKind::vunmap:
    case OpKind::iounmap: {
      const std::uint64_t d = mapped(hm.area, op.h);
      return d && enc_pick(w, st.area, d);
    }
    case OpKind::write:
    case OpKind::read: {
      std::size_t n = 0;
      const auto spaces = target_spaces(st.t, &n);
      const auto s =
          std::find(spaces.begin(), spaces.begin() + static_cast<std::ptrdiff_t>(n), op.space);
      if (s == spaces.begin() + static_cast<std::ptrdiff_t>(n)) return false;
      w.u8(static_cast<std::uint8_t>(s - spaces.begin()));
      const std::uint64_t d = mapped(hm.of(op.space), op.h);
      if (!d || !enc_pick(w, st.space(op.space), d)) return false;
      w.u8(kRangeLiteral);
      w.u8(0);
      w.varint(op.arg);
      w.varint(op.size);
      w.u8(op.byte);
      return true;
    }
    case OpKind::tick:
    case OpKind::drain_all_pages:
    case OpKind::check:
      return true;
  }
  return false;
}

}  // namespace

std::vector<std::uint8_t> encode(const prog::Program& in, const TargetSpec& t,
                                 const DecodeTables& tab, const DecodeOptions& opts) {
  prog::Program scratch;
  State st(t, tab, opts, scratch);
  HandleMaps hm;
  Writer w;
  std::size_t n = 0;
  for (const Op& op : in.ops) {
    if (n == opts.max_ops) break;
    Writer one;
    if (!encode_op(one, st, hm, in, op)) continue;
    // Run the decoder over the bytes: its bookkeeping is the encoder's.
    Reader r(one.out);
    Op got;
    decode_op(r, st, got);
    w.out.insert(w.out.end(), one.out.begin(), one.out.end());
    ++n;
  }
  return std::move(w.out);
}

std::span<const TargetSpec> model_targets() {
  return kTargets;
}

const TargetSpec* find_target(std::string_view name) {
  for (const auto& t : kTargets)
    if (name == t.name) return &t;
  return nullptr;
}

prog::ProgramHeader target_header(const TargetSpec& t) {
  prog::ProgramHeader h;
  h.version = prog::kProgramVersion;
  h.target = t.name;
  h.machine = "fuzz";  // small_machine(16 MiB)
  h.slab_enabled = t.slab_enabled;
  h.slab = t.slab;
  h.vmalloc = t.vmalloc;
  h.checks = t.checks;
  return h.resolved();
}

mm::MmConfig target_config(const TargetSpec& t) {
  return target_header(t).mm_config();
}

DecodeTables DecodeTables::from_profile(const analysis::WorkloadProfile& prof) {
  DecodeTables t;
  t.kmalloc_size = fill_table<std::uint64_t>(prof.kmalloc_size_table(), {8, 64, 128, 512, 4096});
  t.cache_size = fill_table<std::uint64_t>(prof.cache_size_table(), {16, 64, 200, 1024});
  t.slab_gfp = fill_table<std::uint32_t>(prof.slab_gfp_table(), {mm::GFP_KERNEL});
  t.page_gfp = fill_table<std::uint32_t>(prof.page_gfp_table(), {mm::GFP_KERNEL});
  t.order = fill_table<std::uint8_t>(prof.order_table(), {0, 0, 0, 1, 2, 3});
  // Sizes the bundled trace does not show (vmalloc events are 6.3+): page
  // multiples, odd sizes and large ones.
  t.vmalloc_size = fill_table<std::uint64_t>(
      {{4096, 8}, {8192, 4}, {12288, 2}, {16384, 2}, {100, 1}, {65536, 1}, {1 << 20, 1}}, {});
  using namespace mm;
  t.cache_flags =
      fill_table<std::uint32_t>({{0, 8},
                                 {SLAB_HWCACHE_ALIGN, 4},
                                 {SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER, 4},
                                 {SLAB_RED_ZONE, 2},
                                 {SLAB_POISON, 2},
                                 {SLAB_TYPESAFE_BY_RCU, 2},
                                 {SLAB_ACCOUNT | SLAB_RECLAIM_ACCOUNT, 1},
                                 {SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON, 1}},
                                {});
  // Misuse of the GFP API now and then: bits no caller may pass together.
  t.page_gfp.back() = mm::__GFP_ZERO | mm::GFP_ATOMIC;
  return t;
}

Decoded decode(std::span<const std::uint8_t> data, const TargetSpec& t, const DecodeTables& tab,
               const DecodeOptions& opts) {
  Decoded d;
  State st(t, tab, opts, d.program);
  Reader r(data);
  unsigned checks = 0;
  while (!r.at_end() && d.program.ops.size() < opts.max_ops) {
    Op op;
    const bool misuse = decode_op(r, st, op);
    // A full sweep costs as much as hundreds of ops: two per Program.
    if (op.kind == OpKind::check && ++checks > kMaxChecks) continue;
    // An op with no handle to act on decodes to nothing.
    const bool needs_h = op.kind == OpKind::free_pages || op.kind == OpKind::split_page ||
                         op.kind == OpKind::kfree || op.kind == OpKind::kmem_cache_free ||
                         op.kind == OpKind::vfree || op.kind == OpKind::vunmap ||
                         op.kind == OpKind::iounmap || op.kind == OpKind::write ||
                         op.kind == OpKind::read || op.kind == OpKind::mempool_free;
    const bool needs_pool = op.kind == OpKind::mempool_alloc ||
                            op.kind == OpKind::mempool_destroy || op.kind == OpKind::mempool_free;
    if ((needs_h && !op.h) || (needs_pool && !op.h2)) continue;
    d.program.ops.push_back(op);
    d.misuse.push_back(misuse);
  }
  return d;
}

}  // namespace mmfuzz::fuzz
