#include "program/executor.h"

#include <algorithm>
#include <utility>

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

const char* check_mode_name(CheckMode m) {
  switch (m) {
    case CheckMode::off:
      return "off";
    case CheckMode::incremental:
      return "incremental";
    case CheckMode::full:
      return "full";
  }
  return "?";
}

namespace {
// Client accesses longer than this are cut: a Program cannot make the host
// allocate without bound.
constexpr std::uint64_t kMaxAccess = 1 << 20;
// vmap ops map at most this many pages.
constexpr std::uint64_t kMaxVmapPages = 4096;
}  // namespace

Executor::Executor(Mm& mm, const StringTable& strings, ExecOptions opts)
    : mm_(mm), strings_(strings), opts_(std::move(opts)) {
  if (opts_.mode != CheckMode::off) {
    inv::CheckOptions co;
    co.checks = opts_.checks;
    co.incremental = opts_.mode == CheckMode::incremental;
    co.full_every = opts_.check_every;
    co.capture_stacks = opts_.capture_stacks;
    co.report_leaks = opts_.report_leaks;
    co.record_misuse = opts_.record_misuse;
    co.max_reports_per_invariant = 64;
    engine_ = std::make_unique<inv::CheckEngine>(mm_, co);
  }
  mm_.attach(this);
}

Executor::~Executor() {
  mm_.detach(this);
}

cache_id Executor::cache_of(std::uint32_t name) const {
  if (const auto it = caches_.find(name); it != caches_.end()) return it->second;
  return name ? mm_.slab.find_cache(strings_.str(name)) : 0;
}

void Executor::mm_page_alloc(pfn_t pfn, unsigned order, gfp_t, int mt) {
  if (!in_op_ || res_.page_alloc) return;
  res_.page_alloc = true;
  res_.pfn = pfn;
  res_.order = order;
  res_.migratetype = mt;
}

void Executor::kmalloc(vaddr_t, std::uint64_t, std::uint64_t bytes_alloc, gfp_t, int, bool) {
  if (in_op_ && !res_.bytes_alloc) res_.bytes_alloc = bytes_alloc;
}

void Executor::kmem_cache_alloc(vaddr_t, std::uint64_t, std::uint64_t bytes_alloc, gfp_t, int,
                                bool) {
  if (in_op_ && !res_.bytes_alloc) res_.bytes_alloc = bytes_alloc;
}

const OpResult& Executor::step(const Op& op) {
  res_ = OpResult{};
  res_.ran = true;
  if (op.cpu >= 0) mm_.set_cpu(static_cast<int>(static_cast<unsigned>(op.cpu) % mm_.nr_cpus()));
  mm_.op_seq = static_cast<std::uint32_t>(ops_ + 1);
  mm_.call_site = op.call_site;
  if (engine_) engine_->begin_op(static_cast<std::int64_t>(ops_), op_kind_name(op.kind));
  in_op_ = true;
  exec(op);
  in_op_ = false;
  if (engine_) {
    engine_->end_op();
    if (engine_->violations().size() != seen_violations_) collect(op);
  }
  if (!res_.ran) {
    ++skipped_;
    ++skip_reasons_[std::string(op_kind_name(op.kind)) + ": " + skip_reason_];
  }
  ++ops_;
  return res_;
}

void Executor::collect(const Op& op) {
  const auto& v = engine_->violations();
  for (std::size_t i = seen_violations_; i < v.size(); ++i) {
    ++nr_violations_;
    if (findings_.size() < opts_.max_findings) findings_.push_back({v[i], ops_, op});
  }
  seen_violations_ = v.size();
}

bool Executor::wants(std::string_view id) const {
  return engine_ && engine_->selection().enabled(id);
}

void Executor::report(const Op& op, inv::Violation v) {
  if (!engine_) return;
  engine_->begin_op(static_cast<std::int64_t>(ops_), op_kind_name(op.kind));
  engine_->report(std::move(v));
  collect(op);
}

void Executor::exec(const Op& op) {
  Slab& sl = mm_.slab;
  PageAlloc& pa = mm_.page_alloc;
  Vmalloc& vm = mm_.vmalloc;
  switch (op.kind) {
    case OpKind::alloc_pages: {
      if (op.order >= pa.max_order() + 4) {
        skip("order out of range");
        return;
      }
      const pfn_t p = op.node >= 0 ? pa.alloc_pages_node(op.node, op.gfp, op.order)
                                   : pa.alloc_pages(op.gfp, op.order);
      res_.failed = p == NO_PAGE;
      if (op.h == 0) {  // the trace saw it fail: keep the model's state alike
        if (p != NO_PAGE) pa.__free_pages(p, op.order);
        return;
      }
      Pages& rec = pages_[op.h];
      if (rec.live) --live_pages_;
      rec = {p, op.order, p != NO_PAGE};
      if (rec.live) ++live_pages_;
      return;
    }
    case OpKind::free_pages: {
      const auto it = pages_.find(op.h);
      if (it == pages_.end() || it->second.pfn == NO_PAGE) {
        skip("unbound page handle");
        return;
      }
      if (it->second.live) --live_pages_;
      it->second.live = false;
      pa.__free_pages(it->second.pfn, op.order);
      return;
    }
    case OpKind::split_page: {
      const auto it = pages_.find(op.h);
      if (it == pages_.end() || !it->second.live) {
        skip("unbound page handle");
        return;
      }
      const Pages rec = it->second;
      pa.split_page(rec.pfn, rec.order);
      it->second.order = 0;
      for (pfn_t i = 1; i < (pfn_t{1} << rec.order); ++i) {
        Pages& t = pages_[op.h + i];
        if (!t.live) ++live_pages_;
        t = {rec.pfn + i, 0, true};
      }
      return;
    }
    case OpKind::kmalloc: {
      const vaddr_t p = sl.kmalloc_node(op.size, op.gfp, op.node);
      res_.failed = p == 0;
      res_.addr = p;
      if (op.h == 0) {
        sl.kfree(p);
        return;
      }
      Object& o = objects_[op.h];
      if (o.live) {
        --live_objects_;
        if (o.kind == 0) live_kmalloc_bytes_ -= o.size;
      }
      o = {p, op.size, 0, 0, 0, p != 0};
      if (o.live) {
        ++live_objects_;
        live_kmalloc_bytes_ += op.size;
      }
      return;
    }
    case OpKind::kfree: {
      if (op.h == 0) {
        sl.kfree(0);  // kfree(NULL)
        return;
      }
      const auto it = objects_.find(op.h);
      if (it == objects_.end() || it->second.addr == 0) {
        skip("unbound object handle");
        return;
      }
      Object& o = it->second;
      if (o.live) {
        --live_objects_;
        if (o.kind == 0) live_kmalloc_bytes_ -= o.size;
      }
      o.live = false;
      sl.kfree(o.addr);
      return;
    }
    case OpKind::kmem_cache_create: {
      slab_ctor ctor;
      ctor.present = (op.flags2 & kCtorFlag) != 0;
      ctor.fill = op.byte;
      const cache_id c =
          sl.kmem_cache_create(strings_.str(op.name),
                               static_cast<unsigned>(std::min<std::uint64_t>(op.size, 0xffffffffu)),
                               static_cast<unsigned>(op.arg), op.flags, ctor);
      res_.failed = c == 0;
      if (c) caches_[op.name] = c;
      return;
    }
    case OpKind::kmem_cache_alloc: {
      const cache_id c = cache_of(op.name);
      if (!c) {
        skip("unknown cache");
        return;
      }
      const vaddr_t p = sl.kmem_cache_alloc_node(c, op.gfp, op.node);
      res_.failed = p == 0;
      res_.addr = p;
      if (op.h == 0) {
        if (p) sl.kmem_cache_free(c, p);
        return;
      }
      Object& o = objects_[op.h];
      if (o.live) {
        --live_objects_;
        if (o.kind == 0) live_kmalloc_bytes_ -= o.size;
      }
      o = {p, sl.kmem_cache_size(c), c, 0, 1, p != 0};
      if (o.live) ++live_objects_;
      return;
    }
    case OpKind::kmem_cache_free: {
      const auto it = objects_.find(op.h);
      if (it == objects_.end() || it->second.addr == 0) {
        skip("unbound object handle");
        return;
      }
      Object& o = it->second;
      const cache_id named = op.name ? cache_of(op.name) : 0;
      if (o.live) {
        --live_objects_;
        if (o.kind == 0) live_kmalloc_bytes_ -= o.size;
      }
      o.live = false;
      sl.kmem_cache_free(named ? named : o.cache, o.addr);
      return;
    }
    case OpKind::kmem_cache_shrink:
    case OpKind::kmem_cache_destroy: {
      const cache_id c = cache_of(op.name);
      if (!c) {
        skip("unknown cache");
        return;
      }
      if (op.kind == OpKind::kmem_cache_shrink)
        sl.kmem_cache_shrink(c);
      else
        sl.kmem_cache_destroy(c);
      return;
    }
    case OpKind::mempool_create: {
      const auto kind = static_cast<MempoolKind>(std::min<std::uint8_t>(op.byte, 2));
      cache_id c = 0;
      if (kind == MempoolKind::slab && !(c = cache_of(op.name))) {
        skip("unknown cache");
        return;
      }
      const mempool_id id =
          mm_.mempools.mempool_create(static_cast<int>(std::min<std::uint64_t>(op.arg, 1 << 20)),
                                      kind, c, op.size, op.order, op.gfp ? op.gfp : GFP_KERNEL);
      res_.failed = id == 0;
      pools_[op.h2] = id;
      return;
    }
    case OpKind::mempool_alloc:
    case OpKind::mempool_free:
    case OpKind::mempool_destroy: {
      const auto pit = pools_.find(op.h2);
      if (pit == pools_.end() || pit->second == 0) {
        skip("unbound pool handle");
        return;
      }
      const mempool_id id = pit->second;
      if (op.kind == OpKind::mempool_destroy) {
        mm_.mempools.mempool_destroy(id);
        return;
      }
      if (op.kind == OpKind::mempool_alloc) {
        MempoolWait wait;
        const vaddr_t p = mm_.mempools.mempool_alloc(id, op.gfp, &wait);
        res_.failed = p == 0;
        res_.addr = p;
        Object& o = objects_[op.h];
        if (o.live) {
          --live_objects_;
          if (o.kind == 0) live_kmalloc_bytes_ -= o.size;
        }
        o = {p, 0, 0, id, 2, p != 0};
        if (o.live) ++live_objects_;
        return;
      }
      const auto it = objects_.find(op.h);
      if (it == objects_.end() || it->second.addr == 0) {
        skip("unbound object handle");
        return;
      }
      if (it->second.live) --live_objects_;
      it->second.live = false;
      mm_.mempools.mempool_free(id, it->second.addr);
      return;
    }
    case OpKind::vmalloc: {
      if (!vm.initialized()) {
        skip("no vmalloc in this model");
        return;
      }
      vaddr_t a = 0;
      switch (op.byte) {
        case 1:
          a = op.node >= 0 ? vm.vzalloc_node(op.size, op.node) : vm.vzalloc(op.size);
          break;
        case 2:
          a = vm.vmalloc_32(op.size);
          break;
        case 3:
          a = vm.module_alloc(op.size);
          break;
        default:
          a = op.gfp ? vm.__vmalloc(op.size, op.gfp)
                     : (op.node >= 0 ? vm.vmalloc_node(op.size, op.node) : vm.vmalloc(op.size));
      }
      res_.failed = a == 0;
      res_.addr = a;
      Area& ar = areas_[op.h];
      if (ar.live) --live_areas_;
      ar = {a, op.size, 0, a != 0, {}};
      if (ar.live) ++live_areas_;
      return;
    }
    case OpKind::vmap: {
      if (!vm.initialized()) {
        skip("no vmalloc in this model");
        return;
      }
      std::vector<pfn_t> pfns;
      const std::uint64_t n = std::clamp<std::uint64_t>(op.size, 1, kMaxVmapPages);
      for (std::uint64_t i = 0; i < n; ++i) {
        const pfn_t p = pa.alloc_pages(GFP_KERNEL, 0);
        if (p == NO_PAGE) break;
        pfns.push_back(p);
      }
      const vaddr_t a = pfns.size() == n ? vm.vmap(pfns) : 0;
      if (!a)
        for (const pfn_t p : pfns) pa.__free_pages(p, 0);
      res_.failed = a == 0;
      res_.addr = a;
      Area& ar = areas_[op.h];
      if (ar.live) --live_areas_;
      ar = {a, n * mm_.profile.page_size(), 1, a != 0, a ? std::move(pfns) : std::vector<pfn_t>{}};
      if (ar.live) ++live_areas_;
      return;
    }
    case OpKind::ioremap: {
      if (!vm.initialized()) {
        skip("no vmalloc in this model");
        return;
      }
      const vaddr_t a = op.byte == 1   ? vm.ioremap_wc(op.arg, op.size)
                        : op.byte == 2 ? vm.ioremap_np(op.arg, op.size)
                                       : vm.ioremap(op.arg, op.size);
      res_.failed = a == 0;
      res_.addr = a;
      Area& ar = areas_[op.h];
      if (ar.live) --live_areas_;
      ar = {a, op.size, 2, a != 0, {}};
      if (ar.live) ++live_areas_;
      return;
    }
    case OpKind::vfree:
    case OpKind::vunmap:
    case OpKind::iounmap: {
      const auto it = areas_.find(op.h);
      if (it == areas_.end() || it->second.addr == 0) {
        skip("unbound area handle");
        return;
      }
      Area& ar = it->second;
      const bool was_live = ar.live;
      if (ar.live) --live_areas_;
      ar.live = false;
      if (op.kind == OpKind::vfree) {
        vm.vfree(ar.addr);
      } else if (op.kind == OpKind::iounmap) {
        vm.iounmap(ar.addr);
      } else {
        vm.vunmap(ar.addr);
        // The pages were the vmap op's own: free them once, with the mapping.
        if (was_live)
          for (const pfn_t p : ar.pfns) pa.__free_pages(p, 0);
        ar.pfns.clear();
      }
      return;
    }
    case OpKind::write:
    case OpKind::read:
      access(op, op.kind == OpKind::write);
      return;
    case OpKind::tick:
      mm_.tick();
      return;
    case OpKind::drain_all_pages:
      pa.drain_all_pages();
      return;
    case OpKind::check:
      if (engine_) engine_->full_sweep();
      return;
  }
}

void Executor::access(const Op& op, bool is_write) {
  vaddr_t base = 0;
  bool area = false;
  switch (op.space) {
    case Space::object: {
      const auto it = objects_.find(op.h);
      if (it == objects_.end() || it->second.addr == 0) {
        skip("unbound object handle");
        return;
      }
      base = it->second.addr;
      break;
    }
    case Space::page: {
      const auto it = pages_.find(op.h);
      if (it == pages_.end() || it->second.pfn == NO_PAGE) {
        skip("unbound page handle");
        return;
      }
      base = mm_.page_address(it->second.pfn);
      break;
    }
    case Space::area: {
      const auto it = areas_.find(op.h);
      if (it == areas_.end() || it->second.addr == 0) {
        skip("unbound area handle");
        return;
      }
      base = it->second.addr;
      area = true;
      break;
    }
  }
  const std::uint64_t len = std::min(op.size, kMaxAccess);
  buf_.assign(len, op.byte);
  const vaddr_t a = base + op.arg;
  bool ok = false;
  if (area)
    ok = is_write ? mm_.vmalloc.write(a, buf_) : mm_.vmalloc.read(a, buf_);
  else
    ok = is_write ? mm_.slab.write(a, buf_, !opts_.misuse_writes) : mm_.slab.read(a, buf_);
  res_.failed = !ok;
}

Verdict Executor::finish() {
  if (engine_ && opts_.final_sweep) {
    engine_->begin_op(static_cast<std::int64_t>(ops_), "finish");
    engine_->finish();
    Op end;
    end.kind = OpKind::check;
    collect(end);
  }
  Verdict vd;
  vd.findings = findings_;
  vd.nr_violations = nr_violations_;
  vd.ops = ops_;
  vd.skipped_ops = skipped_;
  vd.skip_reasons = skip_reasons_;
  vd.full_sweeps = engine_ ? engine_->nr_sweeps() : 0;
  return vd;
}

Verdict Executor::run(const Program& p, const MmConfig& cfg, ExecOptions opts) {
  Mm m(cfg);
  Executor ex(m, p.strings, std::move(opts));
  for (const Op& op : p.ops) ex.step(op);
  return ex.finish();
}

}  // namespace mmfuzz::prog
