#include "program/differential.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "program/executor.h"
#include "program/text.h"

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

namespace {

constexpr std::array<const char*, kNrDiffDims> kDimNames = {
    "ran", "failed", "blocked", "contents", "order", "migratetype", "bytes_alloc", "ksize",
};

unsigned order_of_bytes(std::uint64_t size, unsigned page_shift) {
  return size == 0 ? 0 : fls64((size - 1) >> page_shift);  // get_order()
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The pages one allocation of `size` bytes takes from the page allocator
// under this configuration: the slab order its cache grows by (SLUB's
// preferred order, before any fallback; SLAB's gfporder), or the order of a
// page-level request.
unsigned slab_order(const Mm& m, const kmem_cache& s) {
  switch (m.slab.variant) {
    case SlabVariant::slub:
      return s.order;
    case SlabVariant::slab:
      return s.gfporder;
    case SlabVariant::slob:
      break;
  }
  const std::uint64_t ps = m.profile.page_size();
  return s.size + m.slab.kmalloc_min_size() > ps ? order_of_bytes(s.size, m.profile.page_shift) : 0;
}

unsigned kmalloc_order(const Mm& m, std::uint64_t size, Gfp gfp) {
  const unsigned shift = m.profile.page_shift;
  if (!m.slab.initialized() || size > m.slab.kmalloc_max_cache_size())
    return order_of_bytes(size, shift);
  if (const kmem_cache* s = m.slab.cache(m.slab.kmalloc_slab(size, gfp))) return slab_order(m, *s);
  // SLOB: small kmallocs share order-0 pages; the rest are page allocations.
  return size + m.slab.kmalloc_min_size() > m.profile.page_size() ? order_of_bytes(size, shift) : 0;
}

const char* outcome_name(const OpResult& r) {
  return r.blocked ? "slept" : r.failed ? "failed" : "succeeded";
}

}  // namespace

const char* diff_dim_name(DiffDim d) {
  return kDimNames[static_cast<std::size_t>(d)];
}

std::vector<DiffConfig> diff_configs(const ProgramHeader& given) {
  if (given.diff == DiffMode::none) return {};
  ProgramHeader h = given.resolved();
  h.diff = DiffMode::none;
  h.expect.clear();
  h.target.clear();
  std::vector<DiffConfig> out;
  if (given.diff == DiffMode::slab) {
    const SlabVariant own = *h.slab;
    std::vector<SlabVariant> order = {own};
    for (const SlabVariant v : {SlabVariant::slub, SlabVariant::slab, SlabVariant::slob})
      if (v != own) order.push_back(v);
    for (const SlabVariant v : order) {
      ProgramHeader c = h;
      c.slab = v;
      out.push_back({upper(slab_variant_name(v)), c.resolved()});
    }
    return out;
  }
  std::vector<std::string> names = {h.profile};
  for (const auto& n : profile_names())
    if (n != h.profile) names.push_back(n);
  for (const auto& n : names) {
    ProgramHeader c = h;
    c.profile = n;
    out.push_back({n, c.resolved()});
  }
  return out;
}

bool plentiful(const Mm& m, Gfp gfp, unsigned order, std::uint64_t pages) {
  const PageAlloc& pa = m.page_alloc;
  if (!gfp_zone_valid(gfp) || order >= pa.max_order()) return false;
  const int highest = gfp_zone(gfp);
  std::uint64_t free = 0, reserve = 0;
  bool block = false;
  for (const pglist_data& pgdat : pa.node_data)
    for (int z = 0; z <= highest && z < MAX_NR_ZONES; ++z) {
      const zone& zn = pgdat.node_zones[static_cast<std::size_t>(z)];
      if (!zn.managed_zone()) continue;
      reserve += zn.high_wmark_pages() + zn.managed_pages / 16;
      for (unsigned o = 0; o < pa.max_order(); ++o)
        for (int mt = 0; mt < MIGRATE_PCPTYPES; ++mt) {
          const std::uint64_t n = zn.free_area_[o].nr_free_mt[static_cast<std::size_t>(mt)];
          free += n << o;
          block |= n && o >= order;
        }
    }
  return block && free >= reserve + pages;
}

// ---- what the engine knows of the Program's handles ----

// Byte ranges [start, end) the Program gave a value every configuration
// must show: its writes, and what __GFP_ZERO cleared.
class DefinedBytes {
 public:
  void add(std::uint64_t b, std::uint64_t e) {
    if (b >= e) return;
    auto it = r_.upper_bound(b);
    if (it != r_.begin() && std::prev(it)->second >= b) {
      --it;
      b = it->first;
      e = std::max(e, it->second);
      it = r_.erase(it);
    }
    while (it != r_.end() && it->first <= e) {
      e = std::max(e, it->second);
      it = r_.erase(it);
    }
    r_.emplace(b, e);
  }
  void clear() { r_.clear(); }
  bool empty() const { return r_.empty(); }
  bool covers(std::uint64_t b, std::uint64_t e) const {
    auto it = r_.upper_bound(b);
    return it != r_.begin() && std::prev(it)->second >= e;
  }
  // The defined bytes within [b, e), as ranges.
  template <class F>
  void each_in(std::uint64_t b, std::uint64_t e, F&& f) const {
    auto it = r_.upper_bound(b);
    if (it != r_.begin()) --it;
    for (; it != r_.end() && it->first < e; ++it) {
      const std::uint64_t lo = std::max(b, it->first), hi = std::min(e, it->second);
      if (lo < hi) f(lo, hi);
    }
  }
  // Keeps only [0, n).
  void cut(std::uint64_t n) {
    DefinedBytes out;
    each_in(0, n, [&](std::uint64_t lo, std::uint64_t hi) { out.add(lo, hi); });
    *this = std::move(out);
  }

 private:
  std::map<std::uint64_t, std::uint64_t> r_;
};

struct Differential::View {
  std::uint64_t size = 0;  // bytes a caller may access (0: unknown)
  bool bound = false;      // an allocation bound it (the Executor holds an address)
  bool live = false;       // bound in every configuration, not freed since
  bool parted = false;     // the configurations bound it differently
  Handle pool = 0;         // mempool elements: the pool (a sleeper is bound by its frees)
  int refs = 0;            // pages: get_page/put_page references
  unsigned order = 0;      // pages: the allocation's order (split_page)
  DefinedBytes defined;
};

// What an op does, in the engine's terms.
struct Differential::Shape {
  enum class Role : std::uint8_t { none, alloc, free, use };
  Role role = Role::none;
  Space space = Space::object;
  Handle h = 0;
  std::uint64_t count = 0;  // handles h .. h+count-1
  StrId cache = 0;          // the cache it names
  Handle pool = 0;          // the pool it names (0: none)
  bool binds_name = false;  // kmem_cache_create, mempool_create: binds cache / pool anew
  bool may_fail = false;    // failed (blocked) is an outcome to compare
  bool allocates = false;   // failing is legitimate without plenty of memory
  Gfp gfp = GFP_KERNEL;
  std::uint64_t size = 0;  // alloc: the bytes bound
  bool zeroed = false;     // alloc: __GFP_ZERO
  // Access ops: the bytes touched.
  std::uint64_t offset = 0, len = 0;
  bool write = false, read = false;
};

Differential::Shape Differential::shape_of(const Op& op) const {
  Shape s;
  using R = Shape::Role;
  const std::uint64_t ps = models_[0]->profile.page_size();
  const auto alloc = [&](Space sp, Handle h, std::uint64_t size, Gfp gfp) {
    s.role = R::alloc, s.space = sp, s.h = h, s.count = h ? 1 : 0;
    s.size = size, s.gfp = gfp, s.zeroed = gfp & __GFP_ZERO;
    s.may_fail = s.allocates = true;
  };
  const auto handle = [&](R role, Space sp, Handle h, std::uint64_t count = 1) {
    s.role = role, s.space = sp, s.h = h, s.count = h ? count : 0;
  };
  const auto access = [&](Space sp, Handle h, std::uint64_t off, std::uint64_t len, bool w) {
    handle(R::use, sp, h);
    s.offset = off, s.len = std::min(len, kMaxAccess), s.write = w, s.read = !w;
  };
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, AllocPages>) {
          alloc(Space::page, a.page, ps << a.order, a.gfp);
        } else if constexpr (std::is_same_v<T, AllocPagesExact>) {
          alloc(Space::page, a.page, a.size, a.gfp);
        } else if constexpr (std::is_same_v<T, FreePages> || std::is_same_v<T, FreePagesExact>) {
          handle(R::free, Space::page, a.page);
        } else if constexpr (std::is_same_v<T, SplitPage> || std::is_same_v<T, GetPage> ||
                             std::is_same_v<T, PutPage> || std::is_same_v<T, Kmap> ||
                             std::is_same_v<T, Kunmap>) {
          handle(R::use, Space::page, a.page);
        } else if constexpr (std::is_same_v<T, Kmalloc>) {
          alloc(Space::object, a.obj, a.size, a.gfp);
        } else if constexpr (std::is_same_v<T, Krealloc>) {
          alloc(Space::object, a.obj, a.new_size, a.gfp);
          s.allocates = s.may_fail = a.new_size != 0;
        } else if constexpr (std::is_same_v<T, Kvmalloc>) {
          alloc(Space::object, a.obj, a.size, a.gfp);
        } else if constexpr (std::is_same_v<T, Kfree> || std::is_same_v<T, KfreeSensitive> ||
                             std::is_same_v<T, Kvfree>) {
          handle(R::free, Space::object, a.obj);
        } else if constexpr (std::is_same_v<T, KmemCacheAlloc>) {
          alloc(Space::object, a.obj, 0, a.gfp);
          s.cache = a.name;
        } else if constexpr (std::is_same_v<T, KmemCacheAllocBulk>) {
          alloc(Space::object, a.obj, 0, a.gfp);
          s.count = std::min(a.nr, kMaxBulk);
          s.cache = a.name;
        } else if constexpr (std::is_same_v<T, KmemCacheFree>) {
          handle(R::free, Space::object, a.obj);
          s.cache = a.name;
        } else if constexpr (std::is_same_v<T, KmemCacheFreeBulk>) {
          handle(R::free, Space::object, a.obj, std::min(a.nr, kMaxBulk));
          s.cache = a.name;
        } else if constexpr (std::is_same_v<T, KmemCacheCreate>) {
          s.cache = a.name, s.may_fail = s.allocates = true, s.size = a.size;
          s.binds_name = true;
        } else if constexpr (std::is_same_v<T, KmemCacheShrink> ||
                             std::is_same_v<T, KmemCacheDestroy>) {
          s.cache = a.name;
        } else if constexpr (std::is_same_v<T, MempoolCreate>) {
          s.pool = a.pool, s.may_fail = s.allocates = true, s.gfp = a.gfp ? a.gfp : GFP_KERNEL;
          s.binds_name = true;
          if (a.kind == PoolKind::slab) s.cache = a.name;
        } else if constexpr (std::is_same_v<T, MempoolAlloc>) {
          alloc(Space::object, a.obj, 0, a.gfp);
          s.pool = a.pool;
        } else if constexpr (std::is_same_v<T, MempoolFree>) {
          handle(R::free, Space::object, a.obj);
          s.pool = a.pool;
        } else if constexpr (std::is_same_v<T, MempoolResize>) {
          s.pool = a.pool, s.may_fail = s.allocates = true;
        } else if constexpr (std::is_same_v<T, MempoolDestroy>) {
          s.pool = a.pool;
        } else if constexpr (std::is_same_v<T, Vmalloc>) {
          alloc(Space::area, a.area, a.size, a.gfp ? a.gfp : GFP_KERNEL);
          s.zeroed |= a.api == VmallocApi::vzalloc;
        } else if constexpr (std::is_same_v<T, Vmap>) {
          alloc(Space::area, a.area, a.nr_pages * ps, GFP_KERNEL);
        } else if constexpr (std::is_same_v<T, Ioremap>) {
          alloc(Space::area, a.area, a.size, GFP_KERNEL);
        } else if constexpr (std::is_same_v<T, Vfree> || std::is_same_v<T, Vunmap> ||
                             std::is_same_v<T, Iounmap>) {
          handle(R::free, Space::area, a.area);
        } else if constexpr (std::is_same_v<T, Write>) {
          access(a.space, a.h, a.offset, a.len, true);
        } else if constexpr (std::is_same_v<T, Read>) {
          access(a.space, a.h, a.offset, a.len, false);
        } else if constexpr (std::is_same_v<T, IoWrite>) {
          access(Space::area, a.area, a.offset, io_width(static_cast<std::uint8_t>(a.api)), true);
        } else if constexpr (std::is_same_v<T, IoRead>) {
          access(Space::area, a.area, a.offset, io_width(static_cast<std::uint8_t>(a.api)), false);
        }
      },
      op.args);
  return s;
}

// ---- the engine ----

Differential::Differential(const std::vector<Mm*>& models, const std::vector<DiffConfig>& configs,
                           const StringTable& strings, bool capture_stacks)
    : configs_(configs), models_(models), strings_(strings) {
  for (std::size_t i = 0; i < configs_.size(); ++i) {
    ExecOptions eo = configs_[i].header.exec_options();
    eo.capture_stacks = capture_stacks;
    ex_.push_back(std::make_unique<Executor>(*models_[i], strings_, eo));
  }
  res_.resize(configs_.size());
  bytes_.resize(configs_.size());
}

Differential::~Differential() = default;

Differential::View& Differential::view(Space space, Handle h) {
  return views_[Key{space, h}];
}

const Differential::View* Differential::find(Space space, Handle h) const {
  const auto it = views_.find(Key{space, h});
  return it == views_.end() ? nullptr : &it->second;
}

std::string Differential::describe(const Op& op) const {
  const auto sz = [](std::uint64_t v) { return std::to_string(v); };
  const char* sp[] = {"object", "page", "area"};
  return std::visit(
      [&](const auto& a) -> std::string {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, Kmalloc>) return "kmalloc(" + sz(a.size) + ")";
        if constexpr (std::is_same_v<T, Krealloc>) return "krealloc(" + sz(a.new_size) + ")";
        if constexpr (std::is_same_v<T, Kvmalloc>) return "kvmalloc(" + sz(a.size) + ")";
        if constexpr (std::is_same_v<T, KmemCacheAlloc>)
          return "kmem_cache_alloc(" + strings_.str(a.name) + ")";
        if constexpr (std::is_same_v<T, KmemCacheAllocBulk>)
          return fmt::format("kmem_cache_alloc_bulk({}, {})", strings_.str(a.name), a.nr);
        if constexpr (std::is_same_v<T, KmemCacheCreate>)
          return fmt::format("kmem_cache_create({}, {})", strings_.str(a.name), a.size);
        if constexpr (std::is_same_v<T, AllocPages>)
          return fmt::format("alloc_pages(order {})", a.order);
        if constexpr (std::is_same_v<T, AllocPagesExact>)
          return "alloc_pages_exact(" + sz(a.size) + ")";
        if constexpr (std::is_same_v<T, Vmalloc>) return "vmalloc(" + sz(a.size) + ")";
        if constexpr (std::is_same_v<T, Vmap>) return fmt::format("vmap({} pages)", a.nr_pages);
        if constexpr (std::is_same_v<T, Ioremap>)
          return fmt::format("ioremap({:#x}, {})", a.phys, a.size);
        if constexpr (std::is_same_v<T, MempoolCreate>)
          return fmt::format("mempool_create(pool {:#x}, {} elements)", a.pool, a.min_nr);
        if constexpr (std::is_same_v<T, MempoolAlloc>)
          return fmt::format("mempool_alloc(pool {:#x})", a.pool);
        if constexpr (std::is_same_v<T, Write> || std::is_same_v<T, Read>)
          return fmt::format("{}({} {:#x}, {} bytes at {})", op_kind_name(op.kind()),
                             sp[static_cast<int>(a.space) % 3], a.h, a.len, a.offset);
        return op_kind_name(op.kind());
      },
      op.args);
}

void Differential::disagree(const Op& op, DiffDim d, std::string what,
                            std::vector<std::string> details) {
  Finding f;
  inv::Violation& v = f.violation;
  v.kind = inv::ViolationKind::invariant;
  v.invariant = std::string("diff.") + diff_dim_name(d);
  v.subsystem = "diff";
  v.op_name = op_kind_name(op.kind());
  v.op_index = static_cast<std::int64_t>(index_);
  v.title = fmt::format("mmfuzz diff: op {} {}: {}", index_, describe(op), what);
  std::string names;
  for (const auto& c : configs_) names += (names.empty() ? "" : ", ") + c.name;
  details.insert(details.begin(), "op: " + format_op(op, strings_));
  details.push_back("configurations: " + names);
  v.details = std::move(details);
  f.op_index = index_;
  f.op = op;  // the handle it names differs by configuration: no model view
  finding_ = std::move(f);
}

bool Differential::checker_finding() {
  for (std::size_t i = 0; i < ex_.size(); ++i) {
    if (ex_[i]->findings().empty()) continue;
    finding_ = ex_[i]->findings().front();
    finding_->violation.details.push_back(
        fmt::format("differential run: found under {} (configuration {} of {})", configs_[i].name,
                    i + 1, configs_.size()));
    return true;
  }
  return false;
}

bool Differential::names_parted(const Shape& s) const {
  if (s.cache && !(s.binds_name && !s.pool)) {
    const auto it = caches_.find(s.cache);
    if (it != caches_.end() && it->second.parted) return true;
  }
  if (s.pool && !s.binds_name) {
    const auto it = pools_.find(s.pool);
    if (it != pools_.end() && it->second.parted) return true;
  }
  if (s.role == Shape::Role::alloc) return false;  // it binds the handle anew
  for (std::uint64_t i = 0; i < s.count; ++i)
    if (const View* v = find(s.space, s.h + i)) {
      if (v->parted) return true;
      if (v->pool)
        if (const auto it = pools_.find(v->pool); it != pools_.end() && it->second.parted)
          return true;
    }
  return false;
}

bool Differential::step(const Op& op) {
  if (finding_ || finished_) return false;
  const Shape s = shape_of(op);
  std::vector<bool> plenty(ex_.size(), true);
  if (s.allocates)
    for (std::size_t i = 0; i < ex_.size(); ++i) plenty[i] = plentiful_for(op, s, i);
  for (std::size_t i = 0; i < ex_.size(); ++i) {
    res_[i] = ex_[i]->step(op);
    if (s.read && !op.is<IoRead>()) {
      const auto b = ex_[i]->last_access();
      bytes_[i].assign(b.begin(), b.end());
    }
  }
  ++stats_.ops;
  if (!checker_finding()) compare(op, s, plenty);
  ++index_;
  return !finding_;
}

const std::optional<Finding>& Differential::finish() {
  if (finished_ || finding_) return finding_;
  finished_ = true;
  for (std::size_t i = 0; i < ex_.size(); ++i) {
    const Verdict v = ex_[i]->finish();
    if (!finding_ && !v.findings.empty()) {
      finding_ = v.findings.front();
      finding_->violation.details.push_back(
          fmt::format("differential run: found under {} (configuration {} of {})", configs_[i].name,
                      i + 1, configs_.size()));
    }
  }
  return finding_;
}

// ---- plenty: the pages each configuration would ask for ----

bool Differential::plentiful_for(const Op& op, const Shape& s, std::size_t i) const {
  const Mm& m = *models_[i];
  const Executor& ex = *ex_[i];
  const unsigned shift = m.profile.page_shift;
  const std::uint64_t ps = m.profile.page_size();
  unsigned order = 0;
  std::uint64_t pages = 0;
  const auto bytes = [&](std::uint64_t n, unsigned o) {  // n bytes in blocks of order o
    order = o;
    pages = ((n + ps - 1) >> shift) + (std::uint64_t{1} << o);
  };
  const auto cached = [&](StrId name, std::uint64_t nr) {
    const kmem_cache* c = m.slab.initialized() ? m.slab.cache(ex.cache_of(name)) : nullptr;
    if (c) bytes(nr * c->size, slab_order(m, *c));
    return c != nullptr;
  };
  const auto element = [&](const PoolView& p, std::uint64_t nr) {
    switch (p.kind) {
      case PoolKind::slab:
        return cached(p.cache, nr);
      case PoolKind::kmalloc:
        bytes(nr * p.size, kmalloc_order(m, p.size, s.gfp));
        return true;
      case PoolKind::pages:
        bytes(nr * (ps << p.order), p.order);
        return true;
    }
    return false;
  };
  const bool known = std::visit(
      [&](const auto& a) -> bool {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, AllocPages>) {
          bytes(ps << a.order, a.order);
        } else if constexpr (std::is_same_v<T, AllocPagesExact>) {
          bytes(a.size, order_of_bytes(a.size, shift));
        } else if constexpr (std::is_same_v<T, Kmalloc>) {
          bytes(a.size, kmalloc_order(m, a.size, a.gfp));
        } else if constexpr (std::is_same_v<T, Krealloc>) {
          bytes(a.new_size, kmalloc_order(m, a.new_size, a.gfp));
        } else if constexpr (std::is_same_v<T, Kvmalloc>) {
          // Above a page kvmalloc falls back to vmalloc: order-0 pages do.
          bytes(a.size, a.size > ps ? 0 : kmalloc_order(m, a.size, a.gfp));
        } else if constexpr (std::is_same_v<T, KmemCacheAlloc>) {
          return cached(a.name, 1);
        } else if constexpr (std::is_same_v<T, KmemCacheAllocBulk>) {
          return cached(a.name, std::min(a.nr, kMaxBulk));
        } else if constexpr (std::is_same_v<T, KmemCacheCreate>) {
          bytes(16 * ps, 0);  // the kmem_cache, its nodes, SLAB's array caches
        } else if constexpr (std::is_same_v<T, MempoolCreate>) {
          PoolView p{a.kind, a.size, a.order, a.name};
          return element(p, static_cast<std::uint64_t>(std::max(a.min_nr, 0)));
        } else if constexpr (std::is_same_v<T, MempoolAlloc> || std::is_same_v<T, MempoolResize>) {
          const auto it = pools_.find(a.pool);
          std::uint64_t nr = 1;
          if constexpr (std::is_same_v<T, MempoolResize>)
            nr = static_cast<std::uint64_t>(std::max(a.new_min_nr, 0));
          return it != pools_.end() && element(it->second, nr);
        } else if constexpr (std::is_same_v<T, Vmalloc>) {
          bytes(a.size + 8 * ps, 0);  // and its page tables
        } else if constexpr (std::is_same_v<T, Vmap>) {
          bytes((a.nr_pages + 8) * ps, 0);
        } else if constexpr (std::is_same_v<T, Ioremap>) {
          bytes(8 * ps, 0);
        }
        return true;
      },
      op.args);
  return known && plentiful(m, s.gfp, order, pages);
}

std::uint64_t Differential::cache_size(StrId name) const {
  std::uint64_t size = ~std::uint64_t{0};
  for (std::size_t i = 0; i < ex_.size(); ++i) {
    const Mm& m = *models_[i];
    const kmem_cache* c = m.slab.initialized() ? m.slab.cache(ex_[i]->cache_of(name)) : nullptr;
    size = std::min<std::uint64_t>(size, c ? c->object_size : 0);
  }
  return size == ~std::uint64_t{0} ? 0 : size;
}

template <class F>
std::string Differential::per_config(F&& value) const {
  std::string out;
  for (std::size_t i = 0; i < configs_.size(); ++i)
    out += fmt::format("{}{} {}", i ? ", " : "", configs_[i].name, value(i));
  return out;
}

// ---- comparing one op's results ----

void Differential::compare(const Op& op, const Shape& s, const std::vector<bool>& plenty) {
  if (misused_) {
    count(DiffDim::ran, false);
    return;
  }
  const std::size_t n = ex_.size();
  bool ran_same = true;
  for (std::size_t i = 1; i < n; ++i) ran_same &= res_[i].ran == res_[0].ran;
  const bool parted_in = names_parted(s);
  // A cache the Program never created is the allocator's own (kmalloc-96):
  // SLOB has none of them.
  const bool builtin = s.cache && !s.binds_name && !caches_.count(s.cache);
  if (!ran_same) {
    count(DiffDim::ran, false);
    if (parted_in || builtin) return update(op, s, true);
    return disagree(op, DiffDim::ran, per_config([&](std::size_t i) {
                      return res_[i].ran ? "ran"
                                         : fmt::format("skipped it ({})", ex_[i]->skip_reason());
                    }));
  }
  count(DiffDim::ran, true);
  if (!res_[0].ran) return;
  if (parted_in) {
    count(DiffDim::failed, false);
    return update(op, s, true);
  }
  bool parted = false;
  if (s.may_fail) {
    const Part p = compare_outcome(op, s, plenty);
    if (p == Part::found) return;
    parted = p == Part::parted;
  }
  if ((s.read || s.write) && !compare_access(op, s)) return;
  if (!parted && s.role == Shape::Role::alloc && !res_[0].failed && !res_[0].blocked &&
      (!compare_rules(op, s) || !compare_pages(op)))
    return;
  update(op, s, parted);
}

// failed and blocked: they may differ only where the configurations that
// did not succeed lacked memory (or, for a mempool, may have drawn on a
// reserve that now differs).
Differential::Part Differential::compare_outcome(const Op& op, const Shape& s,
                                                 const std::vector<bool>& plenty) {
  const bool mempool = op.is<MempoolAlloc>();
  bool same = true;
  for (std::size_t i = 1; i < res_.size(); ++i)
    same &= res_[i].failed == res_[0].failed && res_[i].blocked == res_[0].blocked;
  const bool all_plenty = std::all_of(plenty.begin(), plenty.end(), [](bool b) { return b; });
  if (same) {
    count(DiffDim::failed, true);
    if (mempool) count(DiffDim::blocked, true);
    // Without plenty a mempool may have taken a reserved element in one
    // configuration only: its later sleeps and wake-ups may differ.
    if ((mempool || op.is<MempoolResize>()) && !all_plenty && !pools_[s.pool].parted) {
      pools_[s.pool].parted = true;
      ++stats_.parted;
    }
    return Part::same;
  }
  bool blocked_differs = false;
  for (std::size_t i = 1; i < res_.size(); ++i)
    blocked_differs |= res_[i].blocked != res_[0].blocked;
  const DiffDim d = blocked_differs ? DiffDim::blocked : DiffDim::failed;
  for (std::size_t i = 0; i < res_.size(); ++i) {
    if (!(res_[i].failed || res_[i].blocked) || !plenty[i] || !s.allocates) continue;
    count(d, true);
    disagree(op, d, per_config([&](std::size_t k) { return outcome_name(res_[k]); }),
             {fmt::format("memory was plentiful under {} before the op (plentiful(): a free block "
                          "of the order its allocator asks for, free pages above the high "
                          "watermarks by the request plus 1/16 of managed pages)",
                          configs_[i].name)});
    return Part::found;
  }
  count(d, false);
  if (s.pool) pools_[s.pool].parted = true;
  if (s.binds_name && s.cache && !s.pool) caches_[s.cache].parted = true;
  ++stats_.parted;
  return Part::parted;
}

// Reads and writes of a live handle within its size must behave alike
// everywhere; other accesses are misuse, which the checkers judge.
bool Differential::compare_access(const Op& op, const Shape& s) {
  const View* v = find(s.space, s.h);
  const bool in_bounds =
      v && v->live && !v->parted && s.offset <= v->size && s.len <= v->size - s.offset && s.len > 0;
  bool same = true;
  for (std::size_t i = 1; i < res_.size(); ++i) same &= res_[i].failed == res_[0].failed;
  if (!in_bounds) {
    count(DiffDim::failed, false);
    if (s.write) misuse("a write outside a live handle's bytes");
    return true;
  }
  count(DiffDim::failed, true);
  if (!same) {
    disagree(op, DiffDim::failed,
             per_config([&](std::size_t i) { return res_[i].failed ? "faulted" : "succeeded"; }),
             {fmt::format("the access lies within the {} bytes the handle was allocated with",
                          v->size)});
    return false;
  }
  if (res_[0].failed) {
    if (s.write) misuse("a refused write");
    return true;
  }
  return !s.read || compare_contents(op, s, *v);
}

bool Differential::compare_contents(const Op& op, const Shape& s, const View& v) {
  if (const auto* io = op.get_if<IoRead>()) {
    if (!v.defined.covers(s.offset, s.offset + s.len)) {
      count(DiffDim::contents, false);
      return true;
    }
    count(DiffDim::contents, true);
    for (std::size_t i = 1; i < res_.size(); ++i)
      if (res_[i].addr != res_[0].addr) {
        disagree(op, DiffDim::contents,
                 per_config([&](std::size_t k) { return fmt::format("read {:#x}", res_[k].addr); }),
                 {fmt::format("the Program wrote these {} bytes at offset {}", s.len, io->offset)});
        return false;
      }
    return true;
  }
  bool any = false;
  std::optional<std::uint64_t> bad;  // the first offset where a configuration differs
  v.defined.each_in(s.offset, s.offset + s.len, [&](std::uint64_t lo, std::uint64_t hi) {
    any = true;
    if (bad) return;
    const std::size_t a = lo - s.offset, b = hi - s.offset;
    for (std::size_t i = 1; i < bytes_.size() && !bad; ++i) {
      if (bytes_[i].size() < b || bytes_[0].size() < b) continue;
      for (std::size_t k = a; k < b; ++k)
        if (bytes_[i][k] != bytes_[0][k]) {
          bad = s.offset + k;
          break;
        }
    }
  });
  count(DiffDim::contents, any);
  if (!bad) return true;
  const std::size_t at = *bad - s.offset;
  disagree(op, DiffDim::contents, per_config([&](std::size_t k) {
             return fmt::format("read {:#04x} at offset {}", bytes_[k][at], *bad);
           }),
           {fmt::format("offset {} holds what the Program wrote (or __GFP_ZERO cleared) since the "
                        "handle was allocated",
                        *bad)});
  return false;
}

// Rules every allocator keeps: bytes_alloc covers the request, and so
// does ksize() of a kmem_cache object.
bool Differential::compare_rules(const Op& op, const Shape& s) {
  std::uint64_t want = s.size;
  const bool cache = op.is<KmemCacheAlloc>();
  if (cache) {
    const auto it = caches_.find(s.cache);
    want = it != caches_.end() ? it->second.size : cache_size(s.cache);
  } else if (!op.is<Kmalloc>() && !op.is<Krealloc>()) {
    return true;
  }
  for (std::size_t i = 0; i < res_.size(); ++i) {
    if (!res_[i].bytes_alloc) continue;  // krealloc in place traces nothing
    count(DiffDim::bytes_alloc, true);
    if (res_[i].bytes_alloc >= want) continue;
    disagree(op, DiffDim::bytes_alloc, per_config([&](std::size_t k) {
               return fmt::format("bytes_alloc {}", res_[k].bytes_alloc);
             }),
             {fmt::format("{} traced bytes_alloc {} for a {}-byte object", configs_[i].name,
                          res_[i].bytes_alloc, want)});
    return false;
  }
  if (!cache) return true;
  const auto* a = op.get_if<KmemCacheAlloc>();
  for (std::size_t i = 0; i < res_.size(); ++i) {
    const Mm& m = *models_[i];
    const kmem_cache* c = m.slab.cache(ex_[i]->cache_of(a->name));
    if (!c) continue;
    const std::uint64_t ks = m.slab.allocator->ksize(*c);
    count(DiffDim::ksize, true);
    if (ks >= want) continue;
    disagree(op, DiffDim::ksize,
             fmt::format("{} ksize() {} below the object size {}", configs_[i].name, ks, want));
    return false;
  }
  return true;
}

// alloc_pages: the caller asked for the order and (by its GFP mask) the
// migratetype; every configuration hands out both.
bool Differential::compare_pages(const Op& op) {
  if (!op.is<AllocPages>() && !op.is<AllocPagesExact>()) return true;
  count(DiffDim::order, true);
  count(DiffDim::migratetype, true);
  for (std::size_t i = 1; i < res_.size(); ++i) {
    if (res_[i].page_alloc != res_[0].page_alloc || res_[i].order != res_[0].order) {
      disagree(op, DiffDim::order, per_config([&](std::size_t k) {
                 return res_[k].page_alloc ? fmt::format("order {}", res_[k].order)
                                           : std::string("no pages");
               }));
      return false;
    }
    if (res_[i].migratetype != res_[0].migratetype) {
      disagree(op, DiffDim::migratetype,
               per_config([&](std::size_t k) { return migratetype_name(res_[k].migratetype); }));
      return false;
    }
  }
  return true;
}

// ---- what the op did to the handles ----

void Differential::update(const Op& op, const Shape& s, bool parted) {
  if (const auto* c = op.get_if<KmemCacheCreate>()) {
    CacheView& v = caches_[c->name];
    v.size = c->size;
    v.parted = parted;
    return;
  }
  if (const auto* mc = op.get_if<MempoolCreate>()) {
    pools_[mc->pool] = {mc->kind, mc->size, mc->order, mc->name, parted};
    return;
  }
  if (parted && s.pool) pools_[s.pool].parted = true;
  switch (s.role) {
    case Shape::Role::alloc:
      return update_alloc(op, s, parted);
    case Shape::Role::free:
      for (std::uint64_t i = 0; i < s.count; ++i) {
        View& v = view(s.space, s.h + i);
        // A second free ran: each allocator corrupts its own way.
        if (!parted && v.bound && !v.live && !v.parted) misuse("a free of a freed handle");
        v.live = false;
        v.defined.clear();
      }
      return;
    case Shape::Role::use:
      return update_use(op, s);
    case Shape::Role::none:
      return;
  }
}

void Differential::update_alloc(const Op& op, const Shape& s, bool parted) {
  if (const auto* k = op.get_if<Krealloc>()) return update_krealloc(*k, parted);
  const bool ok = !res_[0].failed && !res_[0].blocked;
  std::uint64_t size = s.size;
  if (s.cache) size = cache_size(s.cache);
  if (const auto* ma = op.get_if<MempoolAlloc>()) {
    const PoolView& p = pools_[ma->pool];
    const std::uint64_t ps = models_[0]->profile.page_size();
    size = p.kind == PoolKind::pages  ? ps << p.order
           : p.kind == PoolKind::slab ? cache_size(p.cache)
                                      : p.size;
  }
  for (std::uint64_t i = 0; i < s.count; ++i) {
    View& v = view(s.space, s.h + i);
    v = View{};
    v.parted = parted;
    if (const auto* ap = op.get_if<AllocPages>()) v.order = ap->order;  // split_page's reach
    if (parted || (!ok && !res_[0].blocked)) continue;
    // A sleeping mempool_alloc is bound by a later mempool_free, alike
    // everywhere while its pool is not parted.
    v.bound = v.live = true;
    v.size = size;
    v.refs = 1;
    if (const auto* ma = op.get_if<MempoolAlloc>()) v.pool = ma->pool;
    if (s.zeroed && ok) v.defined.add(0, size);
  }
}

// krealloc keeps the old object's bytes up to the smaller size; on failure
// the handle keeps the old object.
void Differential::update_krealloc(const Krealloc& a, bool parted) {
  View& v = view(Space::object, a.obj);
  const bool dead = v.bound && !v.live && !v.parted;
  if (!parted && dead) misuse("krealloc of a freed object");
  if (parted) {
    v = View{};
    v.parted = true;
    return;
  }
  if (a.new_size == 0) {  // kfree(); the handle holds ZERO_SIZE_PTR
    v.live = v.bound = false;
    v.defined.clear();
    return;
  }
  if (res_[0].failed) return;
  View nv;
  nv.bound = nv.live = true;
  nv.size = a.new_size;
  if (v.live && !v.parted) {
    nv.defined = std::move(v.defined);
    nv.defined.cut(std::min(v.size, a.new_size));
  }
  v = std::move(nv);
}

void Differential::update_use(const Op& op, const Shape& s) {
  View* v = views_.count(Key{s.space, s.h}) ? &view(s.space, s.h) : nullptr;
  if (!v) return;
  if (op.is<SplitPage>()) {
    const View head = *v;
    const std::uint64_t ps = models_[0]->profile.page_size();
    v->order = 0;
    v->size = ps;
    v->defined.clear();
    for (std::uint64_t i = 1; i < (std::uint64_t{1} << head.order); ++i) {
      View& t = view(Space::page, s.h + i);
      t = View{};
      t.bound = head.bound, t.live = head.live, t.parted = head.parted;
      t.size = ps;
      t.refs = 1;
    }
  } else if (op.is<GetPage>()) {
    ++v->refs;
  } else if (op.is<PutPage>()) {
    if (--v->refs <= 0) {
      v->live = false;
      v->defined.clear();
    }
  } else if (s.write && !misused_ && !res_[0].failed && v->live && !v->parted) {
    v->defined.add(s.offset, s.offset + s.len);
  }
}

// ---- running a Program ----

DiffRun run_differential_full(const Program& p, bool capture_stacks) {
  DiffRun out;
  const std::vector<DiffConfig> configs = diff_configs(p.header);
  if (configs.empty()) return out;
  std::vector<std::unique_ptr<Mm>> models;
  std::vector<Mm*> ptrs;
  for (const auto& c : configs) {
    models.push_back(std::make_unique<Mm>(c.header.mm_config()));
    ptrs.push_back(models.back().get());
    out.configs.push_back(c.name);
  }
  Differential d(ptrs, configs, p.strings, capture_stacks);
  for (const Op& op : p.ops)
    if (!d.step(op)) break;
  out.finding = d.finish();
  out.stats = d.stats();
  return out;
}

std::optional<Finding> run_differential(const Program& p) {
  return run_differential_full(p).finding;
}

}  // namespace mmfuzz::prog
