// The byte format (docs/fuzzing.md has the table):
//   op      := opbyte [ext] args...   opbyte: low 5 bits pick the kind among
//                                     the target's kinds, high 3 the CPU; a
//                                     target with more than 31 kinds reads
//                                     kind 31 and up from an extra byte
//   args    := per kind: dec() below
//   value   := b (b < 0xff: table[b]) | 0xff literal
//   handle  := b < 0xe0: the (b mod n)-th live handle of the space;
//              b >= 0xe0: a recently freed one (misuse) when there is one
//   range   := a < 0xef: offset and length scaled into the object;
//              a == 0xef: literal offset and length; a > 0xef: past the end
// Reading past the end of the input yields zeros; the Program stops at the
// first op that starts after the end. An input may start with
//   0xfe M    the machine: fuzz_machines()[M % size] (decoder.h)
#include "fuzz/decoder.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>

#include "analysis/workload_profile.h"
#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"

namespace mmfuzz::fuzz {

using prog::Handle;
using prog::Op;
using prog::OpKind;
using prog::Space;

namespace {

constexpr std::uint64_t bit(OpKind k) {
  return std::uint64_t{1} << static_cast<unsigned>(k);
}

// A target's kinds are its mask's bits in OpKind order: the kinds added
// since a seed was made come after the ones it names, so seeds keep
// decoding to the same Programs.
constexpr std::uint64_t kPageOps = bit(OpKind::alloc_pages) | bit(OpKind::free_pages) |
                                   bit(OpKind::split_page) | bit(OpKind::drain_all_pages) |
                                   bit(OpKind::get_page) | bit(OpKind::put_page) |
                                   bit(OpKind::alloc_pages_exact) | bit(OpKind::free_pages_exact) |
                                   bit(OpKind::kmap) | bit(OpKind::kunmap);
constexpr std::uint64_t kSlabOps =
    bit(OpKind::kmalloc) | bit(OpKind::kfree) | bit(OpKind::kmem_cache_create) |
    bit(OpKind::kmem_cache_alloc) | bit(OpKind::kmem_cache_free) | bit(OpKind::kmem_cache_shrink) |
    bit(OpKind::kmem_cache_destroy) | bit(OpKind::mempool_create) | bit(OpKind::mempool_alloc) |
    bit(OpKind::mempool_free) | bit(OpKind::mempool_destroy) | bit(OpKind::krealloc) |
    bit(OpKind::kfree_sensitive) | bit(OpKind::kmem_cache_alloc_bulk) |
    bit(OpKind::kmem_cache_free_bulk) | bit(OpKind::mempool_resize) | bit(OpKind::kvmalloc) |
    bit(OpKind::kvfree);
constexpr std::uint64_t kVmOps = bit(OpKind::vmalloc) | bit(OpKind::vfree) | bit(OpKind::vmap) |
                                 bit(OpKind::vunmap) | bit(OpKind::ioremap) | bit(OpKind::iounmap) |
                                 bit(OpKind::ioread) | bit(OpKind::iowrite);
constexpr std::uint64_t kCommon =
    bit(OpKind::write) | bit(OpKind::read) | bit(OpKind::tick) | bit(OpKind::check);

constexpr std::array<TargetSpec, 6> kTargets = {{
    // Without vmalloc ops the page tables stay as boot left them: those
    // targets skip the page-table walk (the mm target checks everything).
    {"page_alloc", "buddy allocator, pcp lists, split_page, page references, kmap",
     kPageOps | kCommon, mm::SlabVariant::slub, false, false, "buddy.*"},
    {"slub", "SLUB: kmalloc, krealloc, kvmalloc, kmem_cache, mempool", kSlabOps | kCommon,
     mm::SlabVariant::slub, true, false, "buddy.*,slab.*"},
    {"slab", "SLAB: kmalloc, krealloc, kvmalloc, kmem_cache, mempool", kSlabOps | kCommon,
     mm::SlabVariant::slab, true, false, "buddy.*,slab.*"},
    {"slob", "SLOB: kmalloc, krealloc, kvmalloc, kmem_cache, mempool", kSlabOps | kCommon,
     mm::SlabVariant::slob, true, false, "buddy.*,slab.*"},
    {"vm", "vmalloc, vmap, ioremap, io accessors and the kernel page tables", kVmOps | kCommon,
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
// Kinds an op byte names directly; kind kDirectKinds and up take one more byte.
constexpr std::size_t kDirectKinds = 31;
constexpr std::uint8_t kByAddr = 0xe0;       // free_pages: by address (free_pages())
constexpr std::uint8_t kReallocNull = 0x20;  // krealloc: below it, krealloc(NULL)
constexpr std::uint8_t kResizeZero = 0xf8;   // mempool_resize: from it, new_min_nr 0
constexpr std::uint32_t kMaxBulk = 16;       // objects per bulk op
constexpr std::size_t kMaxKmaps = 64;        // kmaps the decoder remembers
constexpr unsigned kMaxExactOrder = 10;      // alloc_pages_exact: MAX_ORDER - 1
// Live::kind of pages and objects.
constexpr std::uint8_t kPagePlain = 0, kPageCompound = 1, kPageExact = 2;
constexpr std::uint8_t kObjKmalloc = 0, kObjCache = 1, kObjPool = 2, kObjKv = 3;

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

// A profile's rows plus values the fuzzer must reach that a trace may not
// show (one slot each at least): GFP_ATOMIC order > 0 allocations make the
// highatomic reserve, pageblock_order (9) and MAX_ORDER - 1 (10) blocks the
// merges and steals at and above a pageblock.
std::vector<analysis::Weighted> with_rare(std::vector<analysis::Weighted> rows,
                                          std::initializer_list<std::uint64_t> rare) {
  if (rows.empty()) return rows;  // the fallback table then
  for (const std::uint64_t v : rare)
    if (std::none_of(rows.begin(), rows.end(), [v](const auto& r) { return r.value == v; }))
      rows.push_back({v, 0});
  return rows;
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
  std::uint8_t kind = 0;    // areas: OpKind of the allocation; pages, objects: kPage*, kObj*
  std::uint8_t refs = 1;    // pages: references held (get_page)
};

// A kmap not yet undone.
struct KmapState {
  std::uint64_t h = 0;
  std::uint8_t api = 0;  // prog::KmapApi
  std::int16_t cpu = 0;
};

struct SpaceState {
  std::vector<Live> live;
  std::vector<Live> freed;  // recent, oldest first
  std::uint64_t next = 1;
  std::uint64_t stride = 1;  // pages: room for split_page's tail handles

  Handle fresh() {
    const Handle h = next;
    next += stride;
    return h;
  }

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
  std::vector<KmapState> kmaps;  // oldest first
  const std::vector<std::uint64_t>& io_phys;

  State(const TargetSpec& target, const DecodeTables& tables, const DecodeOptions& o,
        prog::Program& prog)
      : t(target), tab(tables), opts(o), p(prog), io_phys(ioremap_targets(target)) {
    kinds = target_kinds(t);
    page.next = page.stride = kPageHandleStride;
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

// ---- decoding: one dec() per kind ----

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

// An access range of a write or read: offset and length.
void dec_range(Reader& r, std::uint64_t size, std::uint64_t& offset, std::uint64_t& len,
               bool* misuse) {
  const std::uint8_t a = r.u8();
  const std::uint8_t b = r.u8();
  if (a == kRangeLiteral) {
    offset = std::min<std::uint64_t>(r.varint(), kMaxLiteralSize);
    len = std::min<std::uint64_t>(r.varint(), kMaxAccess);
  } else if (a > kRangeLiteral) {  // straddle the end: an out-of-bounds access
    offset = size >= 8 ? size - 8 + (a & 7) : 0;
    len = 9 + (b & 63);
    *misuse = true;
  } else if (size == 0) {
    offset = 0;
    len = 1;
    *misuse = true;
  } else {
    offset = (a * size / kRangeLiteral) & ~std::uint64_t{7};
    const std::uint64_t room = size - offset;
    len = std::clamp<std::uint64_t>((std::uint64_t{b} + 1) * room / 256, 1, kMaxAccess);
  }
  if (offset + len > size) *misuse = true;
}

// The offset of an io accessor of `width` bytes: scaled into the area,
// literal, or past its end.
std::uint64_t dec_io_offset(Reader& r, std::uint64_t size, unsigned width, bool* misuse) {
  const std::uint8_t a = r.u8();
  std::uint64_t off = 0;
  if (a == kRangeLiteral)
    off = std::min<std::uint64_t>(r.varint(), kMaxLiteralSize);
  else if (a > kRangeLiteral)
    off = size + (a & 7);
  else if (size >= width)
    off = (a * (size - width + 1) / kRangeLiteral) & ~std::uint64_t{width - 1};
  if (off + width > size || off % width) *misuse = true;
  return off;
}

std::uint32_t dec_cache(Reader& r, State& st) {
  const std::uint8_t b = r.u8();
  // Created caches first: the last one most of the time.
  if (st.nr_created && b < 0xc0) return st.caches[st.nr_created - 1 - b % st.nr_created].name;
  return st.caches[b % st.caches.size()].name;
}

std::uint64_t cache_size(const State& st, std::uint32_t name) {
  std::uint64_t size = 0;
  for (const auto& c : st.caches)
    if (c.name == name) size = c.size;
  return size;
}

// What one dec() sees and reports; it returns false when the op names no
// handle at all and decodes to nothing.
struct Dec {
  Reader& r;
  State& st;
  Op& op;
  bool misuse = false;
  std::size_t li = SIZE_MAX;  // the picked handle's index among the live ones
  const Live* pick(SpaceState& s) { return dec_pick(r, s, &misuse, &li); }
};

bool dec(Dec& c, prog::AllocPages& a) {
  a.order = std::min<std::uint8_t>(dec_value(c.r, c.st.tab.order), 10);
  a.gfp = dec_value(c.r, c.st.tab.page_gfp);
  a.page = c.st.page.fresh();
  c.st.page.live.push_back({a.page, page_bytes(a.order), 0, 0, a.order,
                            (a.gfp & mm::__GFP_COMP) ? kPageCompound : kPagePlain});
  return true;
}

bool dec(Dec& c, prog::FreePages& a) {
  const Live* l = c.pick(c.st.page);
  const std::uint8_t b = c.r.u8();
  if (!l) return false;
  a.page = l->h;
  a.order = l->order;
  if (b >= 0xf0 && (b & 15) != l->order) {  // the wrong order
    a.order = b & 15;
    c.misuse = true;
  } else if (b >= kByAddr && b < 0xf0) {
    a.by_addr = true;
  }
  if (c.li != SIZE_MAX) c.st.page.kill(c.li);
  return true;
}

bool dec(Dec& c, prog::SplitPage& a) {
  const Live* l = c.pick(c.st.page);
  if (!l) return false;
  a.page = l->h;
  if (c.li != SIZE_MAX && l->order) {
    const Live head = *l;
    c.st.page.live[c.li].order = 0;
    c.st.page.live[c.li].size = page_bytes(0);
    for (std::uint64_t i = 1; i < (std::uint64_t{1} << head.order); ++i)
      c.st.page.live.push_back({head.h + i, page_bytes(0), 0, 0, 0, 0});
  }
  return true;
}

bool dec(Dec& c, prog::GetPage& a) {
  const Live* l = c.pick(c.st.page);
  if (!l) return false;
  a.page = l->h;
  if (c.li != SIZE_MAX && c.st.page.live[c.li].refs < 255) ++c.st.page.live[c.li].refs;
  return true;
}

bool dec(Dec& c, prog::PutPage& a) {
  const Live* l = c.pick(c.st.page);
  if (!l) return false;
  a.page = l->h;
  if (c.li == SIZE_MAX) return true;
  Live& rec = c.st.page.live[c.li];
  if (rec.refs > 1) {
    --rec.refs;
  } else if (rec.order && rec.kind != kPageCompound) {
    c.misuse = true;  // the last put_page() of a non-compound block: refused
  } else {
    c.st.page.kill(c.li);
  }
  return true;
}

// Sizes shaped like the workload's orders: a fraction of the block.
bool dec(Dec& c, prog::AllocPagesExact& a) {
  const unsigned order = std::min<std::uint8_t>(dec_value(c.r, c.st.tab.order), 10);
  const std::uint8_t k = c.r.u8();
  a.size = k == kLiteral ? std::min<std::uint64_t>(c.r.varint(), kMaxLiteralSize)
                         : std::max<std::uint64_t>(1, page_bytes(order) * (k + 1u) / 256);
  a.gfp = dec_value(c.r, c.st.tab.page_gfp);
  a.page = c.st.page.fresh();
  if (a.size > page_bytes(kMaxExactOrder)) c.misuse = true;  // no order below MAX_ORDER
  c.st.page.live.push_back({a.page, (a.size + 4095) & ~std::uint64_t{4095}, 0, 0, 0, kPageExact});
  return true;
}

bool dec(Dec& c, prog::FreePagesExact& a) {
  const Live* l = c.pick(c.st.page);
  const std::uint8_t b = c.r.u8();
  if (!l) return false;
  a.page = l->h;
  a.size = l->size;
  if (b >= 0xf0) a.size = page_bytes(0) * ((b & 15) + 1u);
  // Page by page: only an exact allocation (or one page) frees whole.
  if (a.size != l->size || (l->kind != kPageExact && l->size != page_bytes(0))) c.misuse = true;
  if (c.li != SIZE_MAX) c.st.page.kill(c.li);
  return true;
}

bool dec(Dec& c, prog::Kmap& a) {
  const Live* l = c.pick(c.st.page);
  a.api = static_cast<prog::KmapApi>(c.r.u8() % 3);
  if (!l) return false;
  a.page = l->h;
  auto& km = c.st.kmaps;
  if (km.size() == kMaxKmaps) km.erase(km.begin());
  km.push_back({a.page, static_cast<std::uint8_t>(a.api), c.op.cpu});
  return true;
}

// kunmap: mostly the innermost mapping (on the CPU that made it), now and
// then one out of order or none at all.
bool dec(Dec& c, prog::Kunmap& a) {
  const std::uint8_t b = c.r.u8();
  auto& km = c.st.kmaps;
  if (b < kFreedPick && !km.empty()) {
    const std::size_t at = km.size() - 1 - b % km.size();
    const KmapState e = km[at];
    a.page = e.h;
    a.api = static_cast<prog::KunmapApi>(e.api);
    c.op.cpu = e.cpu;
    for (std::size_t i = at + 1; i < km.size(); ++i)
      if (e.api != 0 && km[i].cpu == e.cpu && km[i].api != 0) c.misuse = true;  // not LIFO
    km.erase(km.begin() + static_cast<std::ptrdiff_t>(at));
    return true;
  }
  const Live* l = c.pick(c.st.page);
  a.api = static_cast<prog::KunmapApi>(c.r.u8() % 3);
  if (!l) return false;
  a.page = l->h;
  c.misuse = true;  // no kmap to undo
  return true;
}

bool dec(Dec& c, prog::Kmalloc& a) {
  a.size = dec_value(c.r, c.st.tab.kmalloc_size);
  a.gfp = dec_value(c.r, c.st.tab.slab_gfp);
  a.obj = c.st.obj.next++;
  c.st.obj.live.push_back({a.obj, a.size, 0, 0, 0, kObjKmalloc});
  return true;
}

// kfree and the frees that behave like it: of a slab object, not a mempool
// element, nor a kvmalloc that may have gone to vmalloc.
bool dec_kfree(Dec& c, Handle& obj) {
  const Live* l = c.pick(c.st.obj);
  if (!l) return false;
  obj = l->h;
  if (l->kind == kObjPool || (l->kind == kObjKv && l->size > page_bytes(0))) c.misuse = true;
  if (c.li != SIZE_MAX) c.st.obj.kill(c.li);
  return true;
}
bool dec(Dec& c, prog::Kfree& a) {
  return dec_kfree(c, a.obj);
}
bool dec(Dec& c, prog::KfreeSensitive& a) {
  return dec_kfree(c, a.obj);
}

bool dec(Dec& c, prog::Krealloc& a) {
  const std::uint8_t m = c.r.u8();
  const Live* l = m < kReallocNull ? nullptr : c.pick(c.st.obj);
  a.new_size = dec_value(c.r, c.st.tab.kmalloc_size);
  a.gfp = dec_value(c.r, c.st.tab.slab_gfp);
  if (m < kReallocNull) {  // krealloc(NULL, ...) on a fresh handle
    a.obj = c.st.obj.next++;
    c.st.obj.live.push_back({a.obj, a.new_size, 0, 0, 0, kObjKmalloc});
    return true;
  }
  if (!l) return false;
  a.obj = l->h;
  if (l->kind == kObjPool || (l->kind == kObjKv && l->size > page_bytes(0))) c.misuse = true;
  if (c.li == SIZE_MAX) return true;
  if (a.new_size == 0) {
    c.st.obj.kill(c.li);
    return true;
  }
  c.st.obj.live[c.li] = {a.obj, a.new_size, 0, 0, 0, kObjKmalloc};
  return true;
}

bool dec(Dec& c, prog::KmemCacheCreate& a) {
  State& st = c.st;
  a.size = std::max<std::uint64_t>(1, dec_value(c.r, st.tab.cache_size));
  static constexpr std::array<std::uint64_t, 6> kAlign = {0, 0, 8, 16, 64, 128};
  a.align = kAlign[c.r.u8() % kAlign.size()];
  a.flags = dec_value(c.r, st.tab.cache_flags);
  const std::uint8_t b = c.r.u8();
  if (b & 1) {
    a.ctor = true;
    a.ctor_fill = static_cast<std::uint8_t>(b & 0xfe);
  }
  a.name = st.p.strings.intern("fuzz-" + std::to_string(st.nr_created));
  st.caches.insert(st.caches.begin() + st.nr_created, {a.name, a.size});
  ++st.nr_created;
  return true;
}

bool dec(Dec& c, prog::KmemCacheAlloc& a) {
  a.name = dec_cache(c.r, c.st);
  a.gfp = dec_value(c.r, c.st.tab.slab_gfp);
  a.obj = c.st.obj.next++;
  c.st.obj.live.push_back({a.obj, cache_size(c.st, a.name), a.name, 0, 0, kObjCache});
  return true;
}

bool dec(Dec& c, prog::KmemCacheFree& a) {
  const Live* l = c.pick(c.st.obj);
  const std::uint8_t b = c.r.u8();
  if (!l) return false;
  a.obj = l->h;
  a.name = l->cache;
  if (b >= 0xf0) {  // another cache than the object's
    a.name = c.st.caches[b % c.st.caches.size()].name;
    if (a.name != l->cache) c.misuse = true;
  }
  if (!a.name || l->kind != kObjCache) c.misuse = true;
  if (c.li != SIZE_MAX) c.st.obj.kill(c.li);
  return true;
}

bool dec(Dec& c, prog::KmemCacheAllocBulk& a) {
  a.name = dec_cache(c.r, c.st);
  a.gfp = dec_value(c.r, c.st.tab.slab_gfp);
  a.nr = 1 + c.r.u8() % kMaxBulk;
  a.obj = c.st.obj.next;
  c.st.obj.next += a.nr;
  for (std::uint32_t i = 0; i < a.nr; ++i)
    c.st.obj.live.push_back({a.obj + i, cache_size(c.st, a.name), a.name, 0, 0, kObjCache});
  return true;
}

// The run kmem_cache_free_bulk frees by default: live objects of the
// cache, numbered h, h+1, ... (a bulk allocation).
std::uint32_t bulk_run(const SpaceState& s, Handle h, std::uint32_t cache) {
  std::uint32_t n = 0;
  while (n < kMaxBulk) {
    const std::size_t i = s.find_live(h + n);
    if (i == SIZE_MAX || s.live[i].cache != cache || s.live[i].kind != kObjCache) break;
    ++n;
  }
  return std::max<std::uint32_t>(n, 1);
}

bool dec(Dec& c, prog::KmemCacheFreeBulk& a) {
  const Live* l = c.pick(c.st.obj);
  const std::uint8_t b = c.r.u8();
  if (!l) return false;
  a.obj = l->h;
  a.name = l->cache;
  a.nr = b < 0x80 ? bulk_run(c.st.obj, a.obj, a.name) : 1 + (b & 15u);
  for (std::uint32_t i = 0; i < a.nr; ++i) {
    const std::size_t j = c.st.obj.find_live(a.obj + i);
    if (j == SIZE_MAX) {
      c.misuse = true;  // stale or never allocated
      continue;
    }
    const Live& o = c.st.obj.live[j];
    if (o.kind == kObjPool || (a.name && (o.kind != kObjCache || o.cache != a.name)))
      c.misuse = true;
    c.st.obj.kill(j);
  }
  return true;
}

bool dec(Dec& c, prog::KmemCacheShrink& a) {
  a.name = dec_cache(c.r, c.st);
  return true;
}

bool dec(Dec& c, prog::KmemCacheDestroy& a) {
  a.name = dec_cache(c.r, c.st);
  c.misuse = true;  // objects may be left; later allocations hit a dead cache
  return true;
}

bool dec(Dec& c, prog::Kvmalloc& a) {
  const std::uint8_t w = c.r.u8();
  a.size = dec_value(c.r, w < 0x80 ? c.st.tab.kmalloc_size : c.st.tab.vmalloc_size);
  a.gfp = dec_value(c.r, c.st.tab.slab_gfp);
  a.obj = c.st.obj.next++;
  c.st.obj.live.push_back({a.obj, a.size, 0, 0, 0, kObjKv});
  return true;
}

bool dec(Dec& c, prog::Kvfree& a) {
  const Live* l = c.pick(c.st.obj);
  if (!l) return false;
  a.obj = l->h;
  if (l->kind == kObjPool) c.misuse = true;
  if (c.li != SIZE_MAX) c.st.obj.kill(c.li);
  return true;
}

bool dec(Dec& c, prog::MempoolCreate& a) {
  State& st = c.st;
  const std::uint8_t kind = c.r.u8() % 3;
  a.kind = static_cast<prog::PoolKind>(kind);
  a.min_nr = 1 + c.r.u8() % 8;
  a.name = kind == 0 ? dec_cache(c.r, st) : 0;
  if (kind == 1) a.size = dec_value(c.r, st.tab.kmalloc_size);
  if (kind == 2) a.order = c.r.u8() % 4;
  a.gfp = mm::GFP_KERNEL;
  a.pool = st.pool.next++;
  const std::uint64_t size = kind == 1   ? a.size
                             : kind == 2 ? page_bytes(a.order)
                                         : cache_size(st, a.name);
  st.pool.live.push_back({a.pool, size, a.name, 0, a.order, kind});
  return true;
}

bool dec(Dec& c, prog::MempoolAlloc& a) {
  const Live* l = c.pick(c.st.pool);
  a.gfp = dec_value(c.r, c.st.tab.slab_gfp);
  if (!l) return false;
  a.pool = l->h;
  a.obj = c.st.obj.next++;
  c.st.obj.live.push_back({a.obj, l->kind == 2 ? 0 : l->size, l->cache, l->h, 0, kObjPool});
  return true;
}

bool dec(Dec& c, prog::MempoolFree& a) {
  const Live* l = c.pick(c.st.obj);
  const std::uint8_t b = c.r.u8();
  if (!l) return false;
  a.obj = l->h;
  a.pool = l->pool;
  if (!l->pool || b >= 0xf0) {  // not a pool element, or another pool
    c.misuse = true;
    if (!c.st.pool.live.empty()) a.pool = c.st.pool.live[b % c.st.pool.live.size()].h;
    if (!a.pool) return false;
  }
  if (c.li != SIZE_MAX) c.st.obj.kill(c.li);
  return true;
}

bool dec(Dec& c, prog::MempoolResize& a) {
  const Live* l = c.pick(c.st.pool);
  const std::uint8_t b = c.r.u8();
  if (!l) return false;
  a.pool = l->h;
  a.new_min_nr = b >= kResizeZero ? 0 : 1 + b % 8;
  if (a.new_min_nr == 0) c.misuse = true;  // BUG_ON(new_min_nr <= 0)
  return true;
}

bool dec(Dec& c, prog::MempoolDestroy& a) {
  const Live* l = c.pick(c.st.pool);
  if (!l) return false;
  a.pool = l->h;
  if (c.li != SIZE_MAX) c.st.pool.kill(c.li);
  return true;
}

void new_area(State& st, Handle h, std::uint64_t size, OpKind kind) {
  st.area.live.push_back({h, size, 0, 0, 0, static_cast<std::uint8_t>(kind)});
}

bool dec(Dec& c, prog::Vmalloc& a) {
  a.api = static_cast<prog::VmallocApi>(c.r.u8() % 4);
  a.size = std::max<std::uint64_t>(1, dec_value(c.r, c.st.tab.vmalloc_size));
  a.area = c.st.area.next++;
  new_area(c.st, a.area, a.size, OpKind::vmalloc);
  return true;
}

bool dec(Dec& c, prog::Vmap& a) {
  a.nr_pages = 1 + c.r.u8() % 16;
  a.area = c.st.area.next++;
  new_area(c.st, a.area, a.nr_pages * 4096, OpKind::vmap);
  return true;
}

bool dec(Dec& c, prog::Ioremap& a) {
  const auto& phys = c.st.io_phys;
  a.api = static_cast<prog::IoremapApi>(c.r.u8() % 3);
  a.phys = phys[c.r.u8() % phys.size()];
  a.size = 4096u << (c.r.u8() % 3);
  if (a.phys == phys[phys.size() - 2]) c.misuse = true;  // RAM
  a.area = c.st.area.next++;
  new_area(c.st, a.area, a.size, OpKind::ioremap);
  return true;
}

// vfree, vunmap, iounmap: of an area the matching call made.
bool dec_area_free(Dec& c, Handle& area, OpKind made_by) {
  const Live* l = c.pick(c.st.area);
  if (!l) return false;
  area = l->h;
  if (l->kind != static_cast<std::uint8_t>(made_by)) c.misuse = true;
  if (c.li != SIZE_MAX) c.st.area.kill(c.li);
  return true;
}
bool dec(Dec& c, prog::Vfree& a) {
  return dec_area_free(c, a.area, OpKind::vmalloc);
}
bool dec(Dec& c, prog::Vunmap& a) {
  return dec_area_free(c, a.area, OpKind::vmap);
}
bool dec(Dec& c, prog::Iounmap& a) {
  return dec_area_free(c, a.area, OpKind::ioremap);
}

bool dec(Dec& c, prog::IoRead& a) {
  const Live* l = c.pick(c.st.area);
  a.api = static_cast<prog::IoReadApi>(c.r.u8() % 6);
  a.offset = dec_io_offset(c.r, l ? l->size : 0, prog::io_width(static_cast<std::uint8_t>(a.api)),
                           &c.misuse);
  if (!l) return false;
  a.area = l->h;
  return true;
}

bool dec(Dec& c, prog::IoWrite& a) {
  const Live* l = c.pick(c.st.area);
  const std::uint8_t api = c.r.u8() % 6;
  a.api = static_cast<prog::IoWriteApi>(api);
  a.offset = dec_io_offset(c.r, l ? l->size : 0, prog::io_width(api), &c.misuse);
  const std::uint8_t v = c.r.u8();
  a.value = v != kLiteral
                ? v * 0x01010101u
                : static_cast<std::uint32_t>(std::min<std::uint64_t>(c.r.varint(), 0xffffffffu));
  if (!l) return false;
  a.area = l->h;
  // As with client writes: a misused store becomes a load, so what lands in
  // memory is never the Program's scribbling.
  if (c.misuse) c.op.args = prog::IoRead{a.area, a.offset, static_cast<prog::IoReadApi>(api)};
  return true;
}

// write and read: a space, a handle, a range, a byte.
template <class T>
const Live* dec_access(Dec& c, T& a, std::uint8_t* byte) {
  std::size_t n = 0;
  const auto spaces = target_spaces(c.st.t, &n);
  const std::uint8_t s = c.r.u8();
  a.space = n ? spaces[s % n] : Space::object;
  const Live* l = c.pick(c.st.space(a.space));
  dec_range(c.r, l ? l->size : 0, a.offset, a.len, &c.misuse);
  *byte = c.r.u8();
  if (l) a.h = l->h;
  return l;
}

bool dec(Dec& c, prog::Write& a) {
  if (!dec_access(c, a, &a.byte)) return false;
  // A write out of bounds or after free scribbles over freelists and red
  // zones: the next sweep's invariant violation would be the Program's
  // fault, not the model's. Such writes become reads, which the model
  // still checks and reports. (Pages and areas of unknown size, a vmalloc
  // of a literal, stay in bounds.)
  if (c.misuse) c.op.args = prog::Read{a.h, a.offset, a.len, a.space};
  return true;
}

bool dec(Dec& c, prog::Read& a) {
  std::uint8_t byte = 0;  // read and ignored: a read and a write take the same bytes
  return dec_access(c, a, &byte) != nullptr;
}

bool dec(Dec&, prog::Tick&) {
  return true;
}
bool dec(Dec&, prog::DrainAllPages&) {
  return true;
}
bool dec(Dec&, prog::Check&) {
  return true;
}

template <class T>
bool dec_as(Dec& c) {
  c.op.args = T{};
  return dec(c, c.op.as<T>());
}

using DecFn = bool (*)(Dec&);
template <std::size_t... I>
constexpr std::array<DecFn, sizeof...(I)> dec_table(std::index_sequence<I...>) {
  return {&dec_as<std::variant_alternative_t<I, prog::OpArgs>>...};
}
constexpr auto kDecoders = dec_table(std::make_index_sequence<prog::kNrOpKinds>{});

// One op: its kind, CPU and arguments. False when it decodes to nothing;
// *misuse when the decoder meant it as misuse.
bool decode_op(Reader& r, State& st, Op& op, bool* misuse) {
  const std::uint8_t opb = r.u8();
  op = Op{};
  *misuse = false;
  if (opb == kCheckEscape && r.peek() == kCheckEscape) {
    r.u8();
    op.args = prog::Check{};
    return true;
  }
  const std::size_t n = st.kinds.size();
  std::size_t k = opb & 31;
  // Past the 31 kinds a byte names directly: one more byte picks the rest.
  k = n > kDirectKinds && k == kDirectKinds ? kDirectKinds + r.u8() % (n - kDirectKinds) : k % n;
  op.cpu = static_cast<std::int16_t>((opb >> 5) % std::max(1u, st.opts.nr_cpus));
  Dec c{r, st, op};
  const bool keep = kDecoders[static_cast<std::size_t>(st.kinds[k])](c);
  *misuse = c.misuse;
  return keep;
}

// ---- encoding: one enc() per kind ----

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

// The live or recently freed record of decoded handle d (nullptr: neither).
const Live* record(const SpaceState& s, std::uint64_t d) {
  if (const std::size_t i = s.find_live(d); i != SIZE_MAX) return &s.live[i];
  if (const std::size_t j = s.find_freed(d); j != SIZE_MAX) return &s.freed[j];
  return nullptr;
}

// What one enc() writes for an input op of `in`.
struct Enc {
  Writer& w;
  State& st;
  HandleMaps& hm;
  const prog::Program& in;
  const Op& op;
  // The decoded cache an input cache name stands for (0: none).
  std::uint32_t cache(std::uint32_t name) const {
    if (!name) return 0;
    if (const auto it = hm.cache.find(name); it != hm.cache.end()) return it->second;
    return st.p.strings.find(in.strings.str(name));  // a boot cache, if the decoder has it
  }
  // Writes the pick of the decoded handle input handle h maps to.
  bool pick(const std::unordered_map<std::uint64_t, std::uint64_t>& m, SpaceState& s, Handle h,
            std::uint64_t* d = nullptr) {
    const std::uint64_t x = mapped(m, h);
    if (d) *d = x;
    return x && enc_pick(w, s, x);
  }
};

bool enc(Enc& e, const prog::AllocPages& a) {
  if (!a.page) return false;  // a failure the trace saw
  enc_value(e.w, e.st.tab.order, a.order);
  enc_value(e.w, e.st.tab.page_gfp, a.gfp);
  e.hm.page[a.page] = e.st.page.next;
  return true;
}

bool enc(Enc& e, const prog::FreePages& a) {
  std::uint64_t d = 0;
  if (!e.pick(e.hm.page, e.st.page, a.page, &d)) return false;
  const Live* l = record(e.st.page, d);
  const unsigned order = l ? l->order : a.order;
  if (a.by_addr) {
    if (order != a.order) return false;
    e.w.u8(kByAddr);
  } else {
    e.w.u8(order == a.order ? 0 : static_cast<std::uint8_t>(0xf0 | (a.order & 15)));
  }
  return true;
}

bool enc(Enc& e, const prog::SplitPage& a) {
  std::uint64_t d = 0;
  if (!e.pick(e.hm.page, e.st.page, a.page, &d)) return false;
  const std::size_t i = e.st.page.find_live(d);
  const unsigned order = i != SIZE_MAX ? e.st.page.live[i].order : 0;
  for (std::uint64_t t = 1; t < (std::uint64_t{1} << order); ++t) e.hm.page[a.page + t] = d + t;
  return true;
}

bool enc(Enc& e, const prog::GetPage& a) {
  return e.pick(e.hm.page, e.st.page, a.page);
}

bool enc(Enc& e, const prog::PutPage& a) {
  return e.pick(e.hm.page, e.st.page, a.page);
}

bool enc(Enc& e, const prog::AllocPagesExact& a) {
  if (!a.page) return false;
  e.w.u8(0);  // any order: the size is literal
  e.w.u8(kLiteral);
  e.w.varint(a.size);
  enc_value(e.w, e.st.tab.page_gfp, a.gfp);
  e.hm.page[a.page] = e.st.page.next;
  return true;
}

bool enc(Enc& e, const prog::FreePagesExact& a) {
  std::uint64_t d = 0;
  if (!e.pick(e.hm.page, e.st.page, a.page, &d)) return false;
  const Live* l = record(e.st.page, d);
  if (l && l->size == a.size) {
    e.w.u8(0);
    return true;
  }
  const std::uint64_t pages = a.size / page_bytes(0);
  if (a.size % page_bytes(0) || pages < 1 || pages > 16) return false;
  e.w.u8(static_cast<std::uint8_t>(0xf0 | (pages - 1)));
  return true;
}

bool enc(Enc& e, const prog::Kmap& a) {
  if (!e.pick(e.hm.page, e.st.page, a.page)) return false;
  e.w.u8(static_cast<std::uint8_t>(a.api));
  return true;
}

bool enc(Enc& e, const prog::Kunmap& a) {
  const std::uint64_t d = mapped(e.hm.page, a.page);
  const auto cpu = static_cast<std::int16_t>(static_cast<unsigned>(std::max<int>(e.op.cpu, 0)) % 8 %
                                             std::max(1u, e.st.opts.nr_cpus));
  const auto& km = e.st.kmaps;
  for (std::size_t j = 0; j < km.size() && j < kFreedPick; ++j) {
    const KmapState& k = km[km.size() - 1 - j];
    if (d && k.h == d && k.api == static_cast<std::uint8_t>(a.api) && k.cpu == cpu) {
      e.w.u8(static_cast<std::uint8_t>(j));
      return true;
    }
  }
  e.w.u8(kFreedPick);
  if (!d || !enc_pick(e.w, e.st.page, d)) return false;
  e.w.u8(static_cast<std::uint8_t>(a.api));
  return true;
}

bool enc(Enc& e, const prog::Kmalloc& a) {
  if (!a.obj) return false;
  enc_value(e.w, e.st.tab.kmalloc_size, a.size);
  enc_value(e.w, e.st.tab.slab_gfp, a.gfp);
  e.hm.obj[a.obj] = e.st.obj.next;
  return true;
}

bool enc(Enc& e, const prog::Kfree& a) {
  return e.pick(e.hm.obj, e.st.obj, a.obj);
}

bool enc(Enc& e, const prog::KfreeSensitive& a) {
  return e.pick(e.hm.obj, e.st.obj, a.obj);
}

bool enc(Enc& e, const prog::Krealloc& a) {
  if (!a.obj) return false;
  if (mapped(e.hm.obj, a.obj)) {
    e.w.u8(kReallocNull);
    if (!e.pick(e.hm.obj, e.st.obj, a.obj)) return false;
  } else {  // an unbound handle: krealloc(NULL)
    e.w.u8(0);
    e.hm.obj[a.obj] = e.st.obj.next;
  }
  enc_value(e.w, e.st.tab.kmalloc_size, a.new_size);
  enc_value(e.w, e.st.tab.slab_gfp, a.gfp);
  return true;
}

bool enc(Enc& e, const prog::KmemCacheCreate& a) {
  enc_value(e.w, e.st.tab.cache_size, a.size);
  static constexpr std::array<std::uint64_t, 6> kAlign = {0, 0, 8, 16, 64, 128};
  const auto al = std::find(kAlign.begin(), kAlign.end(), a.align);
  e.w.u8(static_cast<std::uint8_t>(al == kAlign.end() ? 0 : al - kAlign.begin()));
  enc_value(e.w, e.st.tab.cache_flags, a.flags);
  e.w.u8(a.ctor ? static_cast<std::uint8_t>(a.ctor_fill | 1) : 0);
  e.hm.cache[a.name] = e.st.p.strings.intern("fuzz-" + std::to_string(e.st.nr_created));
  return true;
}

bool enc(Enc& e, const prog::KmemCacheAlloc& a) {
  if (!a.obj || !enc_cache(e.w, e.st, e.cache(a.name))) return false;
  enc_value(e.w, e.st.tab.slab_gfp, a.gfp);
  e.hm.obj[a.obj] = e.st.obj.next;
  return true;
}

bool enc(Enc& e, const prog::KmemCacheFree& a) {
  std::uint64_t d = 0;
  if (!e.pick(e.hm.obj, e.st.obj, a.obj, &d)) return false;
  const Live* l = record(e.st.obj, d);
  const std::uint32_t own = l ? l->cache : 0;
  const std::uint32_t want = e.cache(a.name);
  if (own == want) {
    e.w.u8(0);
    return true;
  }
  for (unsigned b = 0xf0; b <= 0xff; ++b)
    if (e.st.caches[b % e.st.caches.size()].name == want) {
      e.w.u8(static_cast<std::uint8_t>(b));
      return true;
    }
  e.w.u8(0);
  return true;
}

bool enc(Enc& e, const prog::KmemCacheAllocBulk& a) {
  if (!a.obj || a.nr < 1 || a.nr > kMaxBulk || !enc_cache(e.w, e.st, e.cache(a.name))) return false;
  enc_value(e.w, e.st.tab.slab_gfp, a.gfp);
  e.w.u8(static_cast<std::uint8_t>(a.nr - 1));
  for (std::uint32_t i = 0; i < a.nr; ++i) e.hm.obj[a.obj + i] = e.st.obj.next + i;
  return true;
}

bool enc(Enc& e, const prog::KmemCacheFreeBulk& a) {
  std::uint64_t d = 0;
  if (a.nr < 1 || a.nr > kMaxBulk || !e.pick(e.hm.obj, e.st.obj, a.obj, &d)) return false;
  const Live* l = record(e.st.obj, d);
  if (!l || l->cache != e.cache(a.name)) return false;
  // The run's other handles: the same objects, or none yet on both sides.
  for (std::uint32_t i = 1; i < a.nr; ++i) {
    const std::uint64_t m = mapped(e.hm.obj, a.obj + i);
    if (m != d + i && (m || d + i < e.st.obj.next)) return false;
  }
  e.w.u8(bulk_run(e.st.obj, d, l->cache) == a.nr ? 0
                                                 : static_cast<std::uint8_t>(0x80 | (a.nr - 1)));
  return true;
}

bool enc(Enc& e, const prog::KmemCacheShrink& a) {
  return enc_cache(e.w, e.st, e.cache(a.name));
}

bool enc(Enc& e, const prog::KmemCacheDestroy& a) {
  return enc_cache(e.w, e.st, e.cache(a.name));
}

bool enc(Enc& e, const prog::Kvmalloc& a) {
  if (!a.obj) return false;
  e.w.u8(0);  // the kmalloc size table (or a literal)
  enc_value(e.w, e.st.tab.kmalloc_size, a.size);
  enc_value(e.w, e.st.tab.slab_gfp, a.gfp);
  e.hm.obj[a.obj] = e.st.obj.next;
  return true;
}

bool enc(Enc& e, const prog::Kvfree& a) {
  return e.pick(e.hm.obj, e.st.obj, a.obj);
}

bool enc(Enc& e, const prog::MempoolCreate& a) {
  const unsigned kind = std::min<unsigned>(static_cast<unsigned>(a.kind), 2);
  e.w.u8(static_cast<std::uint8_t>(kind));
  e.w.u8(static_cast<std::uint8_t>(std::clamp(a.min_nr, 1, 8) - 1));
  if (kind == 0 && !enc_cache(e.w, e.st, e.cache(a.name))) return false;
  if (kind == 1) enc_value(e.w, e.st.tab.kmalloc_size, a.size);
  if (kind == 2) e.w.u8(static_cast<std::uint8_t>(a.order % 4));
  e.hm.pool[a.pool] = e.st.pool.next;
  return true;
}

bool enc(Enc& e, const prog::MempoolAlloc& a) {
  if (!a.obj || !e.pick(e.hm.pool, e.st.pool, a.pool)) return false;
  enc_value(e.w, e.st.tab.slab_gfp, a.gfp);
  e.hm.obj[a.obj] = e.st.obj.next;
  return true;
}

bool enc(Enc& e, const prog::MempoolFree& a) {
  std::uint64_t d = 0;
  const std::uint64_t dpool = mapped(e.hm.pool, a.pool);
  if (!dpool || !e.pick(e.hm.obj, e.st.obj, a.obj, &d)) return false;
  const Live* l = record(e.st.obj, d);
  const std::uint64_t own = l ? l->pool : 0;
  if (own && own == dpool) {
    e.w.u8(0);
    return true;
  }
  const auto& pools = e.st.pool.live;
  for (unsigned b = own ? 0xf0 : 0; b <= 0xff; ++b)
    if (!pools.empty() && pools[b % pools.size()].h == dpool) {
      e.w.u8(static_cast<std::uint8_t>(b));
      return true;
    }
  return false;
}

bool enc(Enc& e, const prog::MempoolResize& a) {
  if (a.new_min_nr < 0 || a.new_min_nr > 8 || !e.pick(e.hm.pool, e.st.pool, a.pool)) return false;
  e.w.u8(a.new_min_nr == 0 ? kResizeZero : static_cast<std::uint8_t>(a.new_min_nr - 1));
  return true;
}

bool enc(Enc& e, const prog::MempoolDestroy& a) {
  return e.pick(e.hm.pool, e.st.pool, a.pool);
}

bool enc(Enc& e, const prog::Vmalloc& a) {
  if (!a.area) return false;
  e.w.u8(static_cast<std::uint8_t>(static_cast<unsigned>(a.api) % 4));
  enc_value(e.w, e.st.tab.vmalloc_size, a.size);
  e.hm.area[a.area] = e.st.area.next;
  return true;
}

bool enc(Enc& e, const prog::Vmap& a) {
  if (!a.area) return false;
  e.w.u8(static_cast<std::uint8_t>((std::clamp<std::uint64_t>(a.nr_pages, 1, 16) - 1)));
  e.hm.area[a.area] = e.st.area.next;
  return true;
}

bool enc(Enc& e, const prog::Ioremap& a) {
  if (!a.area) return false;
  const auto& phys = e.st.io_phys;
  e.w.u8(static_cast<std::uint8_t>(static_cast<unsigned>(a.api) % 3));
  const auto p = std::find(phys.begin(), phys.end(), a.phys);
  e.w.u8(static_cast<std::uint8_t>(p == phys.end() ? 0 : p - phys.begin()));
  e.w.u8(a.size > 8192 ? 2 : a.size > 4096 ? 1 : 0);
  e.hm.area[a.area] = e.st.area.next;
  return true;
}

bool enc(Enc& e, const prog::Vfree& a) {
  return e.pick(e.hm.area, e.st.area, a.area);
}
bool enc(Enc& e, const prog::Vunmap& a) {
  return e.pick(e.hm.area, e.st.area, a.area);
}
bool enc(Enc& e, const prog::Iounmap& a) {
  return e.pick(e.hm.area, e.st.area, a.area);
}

bool enc(Enc& e, const prog::IoRead& a) {
  if (!e.pick(e.hm.area, e.st.area, a.area)) return false;
  e.w.u8(static_cast<std::uint8_t>(a.api));
  e.w.u8(kRangeLiteral);
  e.w.varint(a.offset);
  return true;
}

bool enc(Enc& e, const prog::IoWrite& a) {
  if (!e.pick(e.hm.area, e.st.area, a.area)) return false;
  e.w.u8(static_cast<std::uint8_t>(a.api));
  e.w.u8(kRangeLiteral);
  e.w.varint(a.offset);
  e.w.u8(kLiteral);
  e.w.varint(a.value);
  return true;
}

template <class T>
bool enc_access(Enc& e, const T& a, std::uint8_t byte) {
  std::size_t n = 0;
  const auto spaces = target_spaces(e.st.t, &n);
  const auto end = spaces.begin() + static_cast<std::ptrdiff_t>(n);
  const auto s = std::find(spaces.begin(), end, a.space);
  if (s == end) return false;
  e.w.u8(static_cast<std::uint8_t>(s - spaces.begin()));
  if (!e.pick(e.hm.of(a.space), e.st.space(a.space), a.h)) return false;
  e.w.u8(kRangeLiteral);
  e.w.u8(0);
  e.w.varint(a.offset);
  e.w.varint(a.len);
  e.w.u8(byte);
  return true;
}

bool enc(Enc& e, const prog::Write& a) {
  return enc_access(e, a, a.byte);
}
bool enc(Enc& e, const prog::Read& a) {
  return enc_access(e, a, 0);
}
bool enc(Enc&, const prog::Tick&) {
  return true;
}
bool enc(Enc&, const prog::DrainAllPages&) {
  return true;
}
bool enc(Enc&, const prog::Check&) {
  return true;
}

// Bytes for one input op; false when the target's language cannot say it.
bool encode_op(Writer& w, State& st, HandleMaps& hm, const prog::Program& in, const Op& op) {
  if (op.is<prog::Check>()) {
    if (!(st.t.op_mask & bit(OpKind::check))) return false;
    w.u8(kCheckEscape);
    w.u8(kCheckEscape);
    return true;
  }
  const auto k = std::find(st.kinds.begin(), st.kinds.end(), op.kind());
  if (k == st.kinds.end()) return false;
  const auto idx = static_cast<unsigned>(k - st.kinds.begin());
  unsigned cpu = static_cast<unsigned>(std::max<int>(op.cpu, 0)) % 8;
  if (st.kinds.size() > kDirectKinds && idx >= kDirectKinds) {
    w.u8(static_cast<std::uint8_t>(kDirectKinds | (cpu << 5)));
    w.u8(static_cast<std::uint8_t>(idx - kDirectKinds));  // never 0xff: not `check`
  } else {
    // 0xff followed by 0xff means `check`: the same op on another CPU alias.
    if ((idx | (cpu << 5)) == kCheckEscape) cpu = st.opts.nr_cpus == 1 ? 0 : cpu - st.opts.nr_cpus;
    w.u8(static_cast<std::uint8_t>(idx | (cpu << 5)));
  }
  Enc e{w, st, hm, in, op};
  return std::visit([&e](const auto& a) { return enc(e, a); }, op.args);
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
    bool misuse = false;
    decode_op(r, st, got, &misuse);
    w.out.insert(w.out.end(), one.out.begin(), one.out.end());
    ++n;
  }
  // The machine prefix: for a machine but the first, and before ops whose
  // first byte would read as one.
  const unsigned machine = fuzz_machine_of(in.header);
  if (machine || (w.out.size() >= 2 && w.out[0] == kMachinePrefix))
    w.out.insert(w.out.begin(), {kMachinePrefix, static_cast<std::uint8_t>(machine)});
  return std::move(w.out);
}

std::vector<OpKind> target_kinds(const TargetSpec& t) {
  // A full sweep costs more than a whole Program: `check` is not one of
  // the kinds a byte picks but the rare escape 0xff 0xff.
  std::vector<OpKind> kinds;
  for (int k = 0; k < prog::kNrOpKinds; ++k)
    if ((t.op_mask & (std::uint64_t{1} << k)) && static_cast<OpKind>(k) != OpKind::check)
      kinds.push_back(static_cast<OpKind>(k));
  return kinds;
}

std::span<const TargetSpec> model_targets() {
  return kTargets;
}

const TargetSpec* find_target(std::string_view name) {
  for (const auto& t : kTargets)
    if (name == t.name) return &t;
  return nullptr;
}

// small_machine()'s RAM base; 6.1's ZONE_DMA ends at 4 GiB, so 32 MiB from
// 0xff000000 is half ZONE_DMA, half ZONE_NORMAL.
constexpr std::uint64_t kFuzzBase = 0x40000000;
constexpr std::uint64_t kFuzzLazyMaxPages = 32;
constexpr std::uint64_t kAcrossDmaLimit = 0xff000000;
constexpr std::array<FuzzMachine, 5> kMachines = {{
    {"fuzz", 16 * mm::SZ_1M, kFuzzBase, 1, 0},
    {"zones", 32 * mm::SZ_1M, kAcrossDmaLimit, 1, 0},
    {"numa", 32 * mm::SZ_1M, kFuzzBase, 2, 0},
    {"cma", 32 * mm::SZ_1M, kFuzzBase, 1, 4 * mm::SZ_1M},  // 16 MiB has no free 4 MiB block
    {"zones-numa-cma", 32 * mm::SZ_1M, kAcrossDmaLimit, 2, 4 * mm::SZ_1M},
}};

std::span<const FuzzMachine> fuzz_machines() {
  return kMachines;
}

void set_fuzz_machine(prog::ProgramHeader& h, unsigned machine) {
  const FuzzMachine& m = kMachines[machine % kMachines.size()];
  h.machine = "fuzz";  // small_machine(16 MiB)
  h.ram.reset();
  h.ram_base.reset();
  h.nodes.reset();
  h.cma.reset();
  if (machine % kMachines.size() == 0) return;  // the header says no more than it did
  h.ram = m.ram;
  h.ram_base = m.ram_base;
  h.nodes = m.nodes;
  h.cma = m.cma;
}

unsigned fuzz_machine_of(const prog::ProgramHeader& h) {
  if (h.machine != "fuzz") return 0;
  const FuzzMachine& fuzz = kMachines[0];
  for (unsigned i = 1; i < kMachines.size(); ++i) {
    const FuzzMachine& m = kMachines[i];
    if (h.ram.value_or(fuzz.ram) == m.ram && h.ram_base.value_or(fuzz.ram_base) == m.ram_base &&
        h.nodes.value_or(fuzz.nodes) == m.nodes && h.cma.value_or(fuzz.cma) == m.cma)
      return i;
  }
  return 0;
}

prog::ProgramHeader target_header(const TargetSpec& t, unsigned machine) {
  prog::ProgramHeader h;
  h.version = prog::kProgramVersion;
  h.target = t.name;
  set_fuzz_machine(h, machine);
  h.slab_enabled = t.slab_enabled;
  h.slab = t.slab;
  h.vmalloc = t.vmalloc;
  // A 64-op input frees a few hundred vmalloc pages, far below the kernel's
  // lazy_max_pages (16 k on two CPUs): scaled, the lazy purge is reached.
  if (t.vmalloc) h.lazy_max_pages = kFuzzLazyMaxPages;
  h.checks = t.checks;
  return h.resolved();
}

mm::MmConfig target_config(const TargetSpec& t, unsigned machine) {
  return target_header(t, machine).mm_config();
}

DecodeTables DecodeTables::from_profile(const analysis::WorkloadProfile& prof) {
  DecodeTables t;
  // Large kmalloc (whole pages past SLUB's 8 KiB) at the page-order
  // boundaries and past the largest (4 MiB, MAX_ORDER - 1): the trace has a
  // few dozen, too rare for its top sizes.
  t.kmalloc_size = fill_table<std::uint64_t>(
      with_rare(prof.kmalloc_size_table(),
                {8193, 16384, 32769, 131072, 1 << 20, 4 << 20, (4 << 20) + 1}),
      {8, 64, 128, 512, 4096});
  t.cache_size = fill_table<std::uint64_t>(prof.cache_size_table(), {16, 64, 200, 1024});
  t.slab_gfp = fill_table<std::uint32_t>(prof.slab_gfp_table(), {mm::GFP_KERNEL});
  t.page_gfp = fill_table<std::uint32_t>(
      with_rare(prof.page_gfp_table(), {mm::GFP_ATOMIC, mm::GFP_ATOMIC | mm::__GFP_COMP}),
      {mm::GFP_KERNEL});
  t.order = fill_table<std::uint8_t>(with_rare(prof.order_table(), {9, 10}), {0, 0, 0, 1, 2, 3});
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
  if (data.size() >= 2 && data[0] == kMachinePrefix) {
    d.machine = static_cast<unsigned>(data[1] % kMachines.size());
    if (d.machine) set_fuzz_machine(d.program.header, d.machine);
    data = data.subspan(2);
  }
  State st(t, tab, opts, d.program);
  Reader r(data);
  unsigned checks = 0;
  while (!r.at_end() && d.program.ops.size() < opts.max_ops) {
    Op op;
    bool misuse = false;
    // An op with no handle to act on decodes to nothing.
    if (!decode_op(r, st, op, &misuse)) continue;
    // A full sweep costs as much as hundreds of ops: two per Program.
    if (op.is<prog::Check>() && ++checks > kMaxChecks) continue;
    d.program.ops.push_back(op);
    d.misuse.push_back(misuse);
  }
  return d;
}

}  // namespace mmfuzz::fuzz
