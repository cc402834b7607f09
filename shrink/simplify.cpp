// Canonical arguments and handle renumbering (shrink.h).
#include <algorithm>
#include <map>

#include "mm/page_alloc/gfp.h"
#include "shrink/deps.h"
#include "shrink/shrink.h"

namespace mmfuzz::shrink {

using namespace mmfuzz::prog;

namespace {

// Values between `canon` and v (exclusive of v), nearest the canonical first:
// canon, then v - (v - canon) / 2, v - (v - canon) / 4, ... v - 1.
template <class T>
std::vector<T> ladder(T v, T canon) {
  std::vector<T> out;
  if (v <= canon) return out;
  out.push_back(canon);
  for (T d = static_cast<T>((v - canon) / 2); d > 0; d = static_cast<T>(d / 2))
    if (static_cast<T>(v - d) != out.back()) out.push_back(static_cast<T>(v - d));
  return out;
}

// Adds one variant per simpler value of field `f`.
template <class A, class T>
void vary(std::vector<Op>& out, const Op& op, const A& a, T A::*f, std::vector<T> values) {
  for (const T& v : values) {
    Op o = op;
    A b = a;
    b.*f = v;
    o.args = b;
    out.push_back(o);
  }
}

struct Simpler {
  const Op& op;
  std::vector<Op>& out;

  template <class A>
  void gfp(const A& a) {
    if (a.gfp != mm::GFP_KERNEL) vary(out, op, a, &A::gfp, {Gfp{mm::GFP_KERNEL}});
  }
  template <class A>
  void node(const A& a) {
    if (a.node != -1) vary(out, op, a, &A::node, {-1});
  }
  template <class A, class T>
  void smaller(const A& a, T A::*f, T canon) {
    vary(out, op, a, f, ladder(a.*f, canon));
  }

  void operator()(const AllocPages& a) {
    smaller(a, &AllocPages::order, std::uint8_t{0});
    gfp(a);
    node(a);
    if (a.expect_mt != -1) vary(out, op, a, &AllocPages::expect_mt, {std::int8_t{-1}});
  }
  void operator()(const FreePages& a) {
    smaller(a, &FreePages::order, std::uint8_t{0});
    if (a.by_addr) vary(out, op, a, &FreePages::by_addr, {false});
  }
  void operator()(const AllocPagesExact& a) {
    smaller(a, &AllocPagesExact::size, std::uint64_t{1});
    gfp(a);
  }
  void operator()(const FreePagesExact& a) { smaller(a, &FreePagesExact::size, std::uint64_t{1}); }
  void operator()(const Kmalloc& a) {
    smaller(a, &Kmalloc::size, std::uint64_t{1});
    gfp(a);
    node(a);
    if (a.expect_bytes_alloc) vary(out, op, a, &Kmalloc::expect_bytes_alloc, {std::uint64_t{0}});
  }
  void operator()(const Krealloc& a) {
    smaller(a, &Krealloc::new_size, std::uint64_t{1});
    gfp(a);
  }
  void operator()(const KmemCacheCreate& a) {
    smaller(a, &KmemCacheCreate::size, std::uint64_t{1});
    smaller(a, &KmemCacheCreate::align, std::uint64_t{0});
    if (a.flags) vary(out, op, a, &KmemCacheCreate::flags, {0u});
    if (a.ctor) vary(out, op, a, &KmemCacheCreate::ctor, {false});
  }
  void operator()(const KmemCacheAlloc& a) {
    gfp(a);
    node(a);
    if (a.bytes_req) vary(out, op, a, &KmemCacheAlloc::bytes_req, {std::uint64_t{0}});
    if (a.expect_bytes_alloc)
      vary(out, op, a, &KmemCacheAlloc::expect_bytes_alloc, {std::uint64_t{0}});
  }
  void operator()(const KmemCacheAllocBulk& a) {
    smaller(a, &KmemCacheAllocBulk::nr, 1u);
    gfp(a);
  }
  void operator()(const KmemCacheFreeBulk& a) { smaller(a, &KmemCacheFreeBulk::nr, 1u); }
  void operator()(const Kvmalloc& a) {
    smaller(a, &Kvmalloc::size, std::uint64_t{1});
    gfp(a);
    node(a);
  }
  void operator()(const MempoolCreate& a) {
    smaller(a, &MempoolCreate::min_nr, 1);
    smaller(a, &MempoolCreate::size, std::uint64_t{1});
    smaller(a, &MempoolCreate::order, std::uint8_t{0});
    gfp(a);
  }
  void operator()(const MempoolAlloc& a) { gfp(a); }
  void operator()(const MempoolResize& a) { smaller(a, &MempoolResize::new_min_nr, 1); }
  void operator()(const Vmalloc& a) {
    smaller(a, &Vmalloc::size, std::uint64_t{1});
    if (a.api != VmallocApi::vmalloc) vary(out, op, a, &Vmalloc::api, {VmallocApi::vmalloc});
    gfp(a);
    node(a);
  }
  void operator()(const Vmap& a) { smaller(a, &Vmap::nr_pages, std::uint64_t{1}); }
  void operator()(const Ioremap& a) { smaller(a, &Ioremap::size, std::uint64_t{1}); }
  void operator()(const IoRead& a) { smaller(a, &IoRead::offset, std::uint64_t{0}); }
  void operator()(const IoWrite& a) {
    smaller(a, &IoWrite::offset, std::uint64_t{0});
    if (a.value) vary(out, op, a, &IoWrite::value, {0u});
  }
  void operator()(const Write& a) {
    smaller(a, &Write::len, std::uint64_t{1});
    smaller(a, &Write::offset, std::uint64_t{0});
    if (a.byte) vary(out, op, a, &Write::byte, {std::uint8_t{0}});
  }
  void operator()(const Read& a) {
    smaller(a, &Read::len, std::uint64_t{1});
    smaller(a, &Read::offset, std::uint64_t{0});
  }
  template <class A>
  void operator()(const A&) {}  // nothing to simplify
};

// Old handle ranges -> new ones, per space.
class Renumber {
 public:
  Handle map(Ref::Space s, Handle h, std::uint64_t len = 1) {
    if (h == 0) return 0;
    auto& m = blocks_[s];
    auto it = m.upper_bound(h);
    if (it != m.begin()) {
      --it;
      if (h < it->first + it->second.second) return it->second.first + (h - it->first);
    }
    Handle& next = next_[s];
    if (!next) next = 1;
    m[h] = {next, len};
    next += len;
    return m[h].first;
  }

 private:
  std::map<Handle, std::pair<Handle, std::uint64_t>> blocks_[5];  // old start -> new start, len
  Handle next_[5] = {};
};

Ref::Space space_ref(Space s) {
  return s == Space::page ? Ref::page : s == Space::area ? Ref::area : Ref::object;
}

}  // namespace

std::vector<Op> simpler_ops(const Op& op) {
  std::vector<Op> out;
  if (op.cpu != 0) {
    Op o = op;
    o.cpu = 0;
    out.push_back(o);
  }
  std::visit(Simpler{op, out}, op.args);
  return out;
}

std::vector<Op> renumbered(const std::vector<Op>& ops) {
  Renumber rn;
  std::vector<Op> out = ops;
  for (Op& op : out) {
    // A bulk allocation or a page allocation that may be split binds a
    // block of handles: keep it a block.
    std::uint64_t len = 1;
    if (const auto* b = op.get_if<KmemCacheAllocBulk>()) len = std::max(1u, b->nr);
    if (const auto* a = op.get_if<AllocPages>())
      len = std::uint64_t{1} << std::min<unsigned>(a->order, 10);
    std::visit(
        [&](auto& a) {
          if constexpr (requires { a.obj; }) a.obj = rn.map(Ref::object, a.obj, len);
          if constexpr (requires { a.page; }) a.page = rn.map(Ref::page, a.page, len);
          if constexpr (requires { a.area; }) a.area = rn.map(Ref::area, a.area);
          if constexpr (requires { a.pool; }) a.pool = rn.map(Ref::pool, a.pool);
          if constexpr (requires {
                          a.h;
                          a.space;
                        })
            a.h = rn.map(space_ref(a.space), a.h);
        },
        op.args);
  }
  return out;
}

}  // namespace mmfuzz::shrink
