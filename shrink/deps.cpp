#include "shrink/deps.h"

#include <algorithm>
#include <unordered_map>

namespace mmfuzz::shrink {

using namespace mmfuzz::prog;

namespace {

// Bulk ops name at most this many handles (the Executor's cap).
constexpr std::uint32_t kMaxBulk = 1024;

struct RefsOf {
  OpRefs& r;
  void def(Ref::Space s, Handle h) {
    if (h) r.defs.push_back({s, h});
  }
  void use(Ref::Space s, Handle h) {
    if (h) r.uses.push_back({s, h});
  }
  void operator()(const AllocPages& a) { def(Ref::page, a.page); }
  void operator()(const FreePages& a) { use(Ref::page, a.page); }
  void operator()(const SplitPage& a) { use(Ref::page, a.page); }  // tails: DepGraph
  void operator()(const GetPage& a) { use(Ref::page, a.page); }
  void operator()(const PutPage& a) { use(Ref::page, a.page); }
  void operator()(const AllocPagesExact& a) { def(Ref::page, a.page); }
  void operator()(const FreePagesExact& a) { use(Ref::page, a.page); }
  void operator()(const Kmap& a) { use(Ref::page, a.page); }
  void operator()(const Kunmap& a) { use(Ref::page, a.page); }
  void operator()(const Kmalloc& a) { def(Ref::object, a.obj); }
  void operator()(const Kfree& a) { use(Ref::object, a.obj); }
  void operator()(const KfreeSensitive& a) { use(Ref::object, a.obj); }
  void operator()(const Krealloc& a) {
    use(Ref::object, a.obj);  // a use when bound (krealloc(NULL) otherwise)
    def(Ref::object, a.obj);
  }
  void operator()(const KmemCacheCreate& a) { def(Ref::cache, a.name); }
  void operator()(const KmemCacheAlloc& a) {
    use(Ref::cache, a.name);
    def(Ref::object, a.obj);
  }
  void operator()(const KmemCacheFree& a) {
    use(Ref::object, a.obj);
    use(Ref::cache, a.name);
  }
  void operator()(const KmemCacheAllocBulk& a) {
    use(Ref::cache, a.name);
    for (std::uint32_t i = 0; i < std::min(a.nr, kMaxBulk); ++i) def(Ref::object, a.obj + i);
  }
  void operator()(const KmemCacheFreeBulk& a) {
    use(Ref::cache, a.name);
    for (std::uint32_t i = 0; i < std::min(a.nr, kMaxBulk); ++i) use(Ref::object, a.obj + i);
  }
  void operator()(const KmemCacheShrink& a) { use(Ref::cache, a.name); }
  void operator()(const KmemCacheDestroy& a) { use(Ref::cache, a.name); }
  void operator()(const Kvmalloc& a) { def(Ref::object, a.obj); }
  void operator()(const Kvfree& a) { use(Ref::object, a.obj); }
  void operator()(const MempoolCreate& a) {
    if (a.kind == PoolKind::slab) use(Ref::cache, a.name);
    def(Ref::pool, a.pool);
  }
  void operator()(const MempoolAlloc& a) {
    use(Ref::pool, a.pool);
    def(Ref::object, a.obj);
  }
  void operator()(const MempoolFree& a) {
    use(Ref::pool, a.pool);
    use(Ref::object, a.obj);
  }
  void operator()(const MempoolResize& a) { use(Ref::pool, a.pool); }
  void operator()(const MempoolDestroy& a) { use(Ref::pool, a.pool); }
  void operator()(const Vmalloc& a) { def(Ref::area, a.area); }
  void operator()(const Vfree& a) { use(Ref::area, a.area); }
  void operator()(const Vmap& a) { def(Ref::area, a.area); }
  void operator()(const Vunmap& a) { use(Ref::area, a.area); }
  void operator()(const Ioremap& a) { def(Ref::area, a.area); }
  void operator()(const Iounmap& a) { use(Ref::area, a.area); }
  void operator()(const IoRead& a) { use(Ref::area, a.area); }
  void operator()(const IoWrite& a) { use(Ref::area, a.area); }
  void operator()(const Write& a) { use(space_ref(a.space), a.h); }
  void operator()(const Read& a) { use(space_ref(a.space), a.h); }
  void operator()(const Tick&) {}
  void operator()(const DrainAllPages&) {}
  void operator()(const Check&) {}
  static Ref::Space space_ref(Space s) {
    return s == Space::page ? Ref::page : s == Space::area ? Ref::area : Ref::object;
  }
};

struct RefHash {
  std::size_t operator()(const Ref& r) const noexcept {
    return std::hash<std::uint64_t>{}(r.h * 8 + r.space);
  }
};

}  // namespace

void op_refs(const Op& op, OpRefs& out) {
  out.defs.clear();
  out.uses.clear();
  std::visit(RefsOf{out}, op.args);
}

DepGraph::DepGraph(std::span<const Op> ops) : n_(ops.size()), parent_at_(ops.size() + 1) {
  std::unordered_map<Ref, std::uint32_t, RefHash> binder;  // the op that made the binding
  std::unordered_map<Handle, unsigned> page_order;         // page handle -> its order
  OpRefs r;
  for (std::uint32_t i = 0; i < ops.size(); ++i) {
    op_refs(ops[i], r);
    if (const auto* s = ops[i].get_if<SplitPage>()) {
      // The tail pages become handles of their own, bound by the split.
      const auto it = page_order.find(s->page);
      const unsigned order = it == page_order.end() ? 0 : std::min(it->second, 10u);
      for (Handle t = 1; t < (Handle{1} << order); ++t) r.defs.push_back({Ref::page, s->page + t});
    }
    const std::size_t first = parent_.size();
    for (const Ref& u : r.uses) {
      const auto it = binder.find(u);
      if (it == binder.end()) continue;
      if (std::find(parent_.begin() + static_cast<std::ptrdiff_t>(first), parent_.end(),
                    it->second) != parent_.end())
        continue;
      parent_.push_back(it->second);
    }
    parent_at_[i + 1] = static_cast<std::uint32_t>(parent_.size());
    for (const Ref& d : r.defs) binder[d] = i;
    if (const auto* a = ops[i].get_if<AllocPages>()) page_order[a->page] = a->order;
  }
  // Users: the same edges by parent (a counting sort keeps them in order).
  user_at_.assign(n_ + 1, 0);
  for (const std::uint32_t p : parent_) ++user_at_[p + 1];
  for (std::size_t i = 0; i < n_; ++i) user_at_[i + 1] += user_at_[i];
  user_.resize(parent_.size());
  std::vector<std::uint32_t> fill(user_at_.begin(), user_at_.end() - 1);
  for (std::uint32_t i = 0; i < n_; ++i)
    for (const std::uint32_t p : parents(i)) user_[fill[p]++] = i;
}

void DepGraph::remove_with_users(std::span<const std::uint32_t> removed,
                                 std::vector<char>& keep) const {
  std::vector<std::uint32_t> work;
  for (const std::uint32_t i : removed)
    if (keep[i]) {
      keep[i] = 0;
      work.push_back(i);
    }
  while (!work.empty()) {
    const std::uint32_t i = work.back();
    work.pop_back();
    for (const std::uint32_t u : users(i))
      if (keep[u]) {
        keep[u] = 0;
        work.push_back(u);
      }
  }
}

void DepGraph::add_parents(std::vector<char>& in) const {
  // Parents come before their users: one pass from the end closes the set.
  for (std::size_t i = in.size(); i-- > 0;)
    if (in[i])
      for (const std::uint32_t p : parents(static_cast<std::uint32_t>(i))) in[p] = 1;
}

}  // namespace mmfuzz::shrink
