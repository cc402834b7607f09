#include "program/executor.h"

#include <algorithm>
#include <utility>
#include <variant>

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
  if (engine_) engine_->begin_op(static_cast<std::int64_t>(ops_), op_kind_name(op.kind()));
  in_op_ = true;
  exec(op);
  in_op_ = false;
  if (engine_) {
    engine_->end_op();
    if (engine_->violations().size() != seen_violations_) collect(op);
  }
  if (!res_.ran) {
    ++skipped_;
    ++skip_reasons_[std::string(op_kind_name(op.kind())) + ": " + skip_reason_];
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
  engine_->begin_op(static_cast<std::int64_t>(ops_), op_kind_name(op.kind()));
  engine_->report(std::move(v));
  collect(op);
}

void Executor::exec(const Op& op) {
  std::visit([this](const auto& a) { this->run(a); }, op.args);
}

// ---- handle tables ----

Executor::Object* Executor::bound_object(Handle h) {
  const auto it = objects_.find(h);
  if (it == objects_.end() || it->second.addr == 0) {
    skip("unbound object handle");
    return nullptr;
  }
  return &it->second;
}

Executor::Pages* Executor::bound_pages(Handle h) {
  const auto it = pages_.find(h);
  if (it == pages_.end() || it->second.pfn == NO_PAGE) {
    skip("unbound page handle");
    return nullptr;
  }
  return &it->second;
}

Executor::Area* Executor::bound_area(Handle h) {
  const auto it = areas_.find(h);
  if (it == areas_.end() || it->second.addr == 0) {
    skip("unbound area handle");
    return nullptr;
  }
  return &it->second;
}

std::uint32_t Executor::bound_pool(Handle pool) {
  const auto it = pools_.find(pool);
  if (it == pools_.end() || it->second == 0) {
    skip("unbound pool handle");
    return 0;
  }
  return it->second;
}

void Executor::kill_object(Object& o) {
  if (o.live) {
    --live_objects_;
    if (o.kind == ObjKind::kmalloc) live_kmalloc_bytes_ -= o.size;
  }
  o.live = false;
}

void Executor::bind_object(Handle h, const Object& o) {
  Object& rec = objects_[h];
  kill_object(rec);
  if (rec.ticket) sleepers_.erase(rec.ticket);
  rec = o;
  if (rec.live) {
    ++live_objects_;
    if (rec.kind == ObjKind::kmalloc) live_kmalloc_bytes_ += rec.size;
  }
}

void Executor::bind_pages(Handle h, const Pages& p) {
  Pages& rec = pages_[h];
  if (rec.live) --live_pages_;
  rec = p;
  if (rec.live) ++live_pages_;
}

void Executor::kill_area(Area& a) {
  if (a.live) --live_areas_;
  a.live = false;
}

void Executor::bind_area(Handle h, Area a) {
  Area& rec = areas_[h];
  kill_area(rec);
  rec = std::move(a);
  if (rec.live) ++live_areas_;
}

// ---- client accesses, machine ----

void Executor::run(const Write& a) {
  access(a.space, a.h, a.offset, a.len, true, a.byte);
}

void Executor::run(const Read& a) {
  access(a.space, a.h, a.offset, a.len, false, 0);
}

void Executor::run(const Tick&) {
  mm_.tick();
}

void Executor::run(const Check&) {
  if (engine_) engine_->full_sweep();
}

void Executor::access(Space space, Handle h, std::uint64_t offset, std::uint64_t len, bool is_write,
                      std::uint8_t byte) {
  vaddr_t base = 0;
  bool area = false;
  switch (space) {
    case Space::object: {
      const Object* o = bound_object(h);
      if (!o) return;
      base = o->addr;
      area = o->vmalloc;
      break;
    }
    case Space::page: {
      const Pages* p = bound_pages(h);
      if (!p) return;
      base = mm_.page_address(p->pfn);
      break;
    }
    case Space::area: {
      const Area* ar = bound_area(h);
      if (!ar) return;
      base = ar->addr;
      area = true;
      break;
    }
  }
  buf_.assign(std::min(len, kMaxAccess), byte);
  const vaddr_t a = base + offset;
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
    const Op end{.args = Check{}};
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
