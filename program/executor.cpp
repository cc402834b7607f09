#include "program/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <utility>
#include <variant>

#include "program/oracle.h"
#include "program/text.h"

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

Executor::Executor(Mm& mm, const StringTable& strings, ExecOptions opts)
    : mm_(mm), strings_(strings), opts_(std::move(opts)) {
  if (opts_.mode != CheckMode::off) {
    inv::CheckOptions co;
    co.checks = opts_.checks;
    co.incremental = opts_.mode == CheckMode::incremental;
    co.full_every = opts_.check_every;
    co.capture_stacks = opts_.capture_stacks;
    // With provenance the Executor reports leaks itself, in the ops' terms.
    co.report_leaks = opts_.report_leaks && !opts_.provenance;
    co.record_misuse = opts_.record_misuse;
    co.max_reports_per_invariant = 64;
    engine_ = std::make_unique<inv::CheckEngine>(mm_, co);
  }
  if (opts_.oracle && engine_) oracle_ = std::make_unique<Oracle>(*this);
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
  if (oracle_) [[unlikely]]
    oracle_->before(op);
  in_op_ = true;
  exec(op);
  in_op_ = false;
  if (engine_) {
    engine_->end_op();
    if (engine_->violations().size() != seen_violations_) collect(op);
  }
  if (oracle_) [[unlikely]]
    oracle_->after(op);
  if (opts_.provenance) note_provenance(op);
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
    if (findings_.size() >= opts_.max_findings) continue;
    Finding& f = findings_.emplace_back();
    f.violation = v[i];
    f.op_index = ops_;
    f.op = op;
    in_program_terms(f.violation, op);
    if (opts_.provenance) attach_provenance(f);
  }
  seen_violations_ = v.size();
}

namespace {
// op_target() per op kind.
struct TargetOf {
  Space& space;
  Handle& h;
  HandleRole& role;
  bool set(Space s, Handle x, HandleRole r) {
    space = s, h = x, role = r;
    return x != 0;
  }
  bool operator()(const AllocPages& a) { return set(Space::page, a.page, HandleRole::alloc); }
  bool operator()(const AllocPagesExact& a) { return set(Space::page, a.page, HandleRole::alloc); }
  bool operator()(const FreePages& a) { return set(Space::page, a.page, HandleRole::free); }
  bool operator()(const FreePagesExact& a) { return set(Space::page, a.page, HandleRole::free); }
  bool operator()(const Kmalloc& a) { return set(Space::object, a.obj, HandleRole::alloc); }
  bool operator()(const KmemCacheAlloc& a) { return set(Space::object, a.obj, HandleRole::alloc); }
  bool operator()(const Kvmalloc& a) { return set(Space::object, a.obj, HandleRole::alloc); }
  bool operator()(const MempoolAlloc& a) { return set(Space::object, a.obj, HandleRole::alloc); }
  bool operator()(const Krealloc& a) { return set(Space::object, a.obj, HandleRole::alloc); }
  bool operator()(const Kfree& a) { return set(Space::object, a.obj, HandleRole::free); }
  bool operator()(const KfreeSensitive& a) { return set(Space::object, a.obj, HandleRole::free); }
  bool operator()(const KmemCacheFree& a) { return set(Space::object, a.obj, HandleRole::free); }
  bool operator()(const Kvfree& a) { return set(Space::object, a.obj, HandleRole::free); }
  bool operator()(const MempoolFree& a) { return set(Space::object, a.obj, HandleRole::free); }
  bool operator()(const Vmalloc& a) { return set(Space::area, a.area, HandleRole::alloc); }
  bool operator()(const Vmap& a) { return set(Space::area, a.area, HandleRole::alloc); }
  bool operator()(const Ioremap& a) { return set(Space::area, a.area, HandleRole::alloc); }
  bool operator()(const Vfree& a) { return set(Space::area, a.area, HandleRole::free); }
  bool operator()(const Vunmap& a) { return set(Space::area, a.area, HandleRole::free); }
  bool operator()(const Iounmap& a) { return set(Space::area, a.area, HandleRole::free); }
  bool operator()(const Write& a) { return set(a.space, a.h, HandleRole::use); }
  bool operator()(const Read& a) { return set(a.space, a.h, HandleRole::use); }
  bool operator()(const IoRead& a) { return set(Space::area, a.area, HandleRole::use); }
  bool operator()(const IoWrite& a) { return set(Space::area, a.area, HandleRole::use); }
  bool operator()(const SplitPage& a) { return set(Space::page, a.page, HandleRole::use); }
  bool operator()(const GetPage& a) { return set(Space::page, a.page, HandleRole::use); }
  bool operator()(const PutPage& a) { return set(Space::page, a.page, HandleRole::use); }
  bool operator()(const Kmap& a) { return set(Space::page, a.page, HandleRole::use); }
  bool operator()(const Kunmap& a) { return set(Space::page, a.page, HandleRole::use); }
  bool operator()(const auto&) { return false; }
};
}  // namespace

bool op_target(const Op& op, Space& space, Handle& h, HandleRole& role) {
  return std::visit(TargetOf{space, h, role}, op.args);
}

// After the op ran (and its findings took the history before it): an
// allocation starts a handle's history, a free adds to it.
void Executor::note_provenance(const Op& op) {
  Space space;
  Handle h;
  HandleRole role;
  if (!res_.ran || !op_target(op, space, h, role) || role == HandleRole::use) return;
  if (role == HandleRole::alloc && res_.failed) return;
  std::uint32_t* slot = prov_slot(space, h);
  if (!slot) return;
  if (!*slot) {
    provs_.emplace_back();
    *slot = static_cast<std::uint32_t>(provs_.size());
  }
  Provenance& p = provs_[*slot - 1];
  if (role == HandleRole::alloc) {
    p = Provenance{};
    p.alloc = OpAt{ops_, op};
    return;
  }
  p.free = OpAt{ops_, op};
  ++p.frees;
}

std::uint32_t* Executor::prov_slot(Space space, Handle h) {
  switch (space) {
    case Space::object:
      if (const auto it = objects_.find(h); it != objects_.end()) return &it->second.prov;
      break;
    case Space::page:
      if (const auto it = pages_.find(h); it != pages_.end()) return &it->second.prov;
      break;
    case Space::area:
      if (const auto it = areas_.find(h); it != areas_.end()) return &it->second.prov;
      break;
  }
  return nullptr;
}

const Executor::Provenance* Executor::provenance_of(Space space, Handle h) const {
  std::uint32_t slot = 0;
  switch (space) {
    case Space::object:
      if (const auto it = objects_.find(h); it != objects_.end()) slot = it->second.prov;
      break;
    case Space::page:
      if (const auto it = pages_.find(h); it != pages_.end()) slot = it->second.prov;
      break;
    case Space::area:
      if (const auto it = areas_.find(h); it != areas_.end()) slot = it->second.prov;
      break;
  }
  return slot ? &provs_[slot - 1] : nullptr;
}

std::uint64_t Executor::model_addr(Space space, Handle h) const {
  switch (space) {
    case Space::object:
      if (const auto it = objects_.find(h); it != objects_.end()) return it->second.addr;
      break;
    case Space::page:
      if (const auto it = pages_.find(h); it != pages_.end() && it->second.pfn != NO_PAGE)
        return it->second.pfn;
      break;
    case Space::area:
      if (const auto it = areas_.find(h); it != areas_.end()) return it->second.addr;
      break;
  }
  return 0;
}

void Executor::attach_provenance(Finding& f) const {
  HandleRole role;
  if (f.violation.op_name == "finish" || !op_target(f.op, f.space, f.handle, role)) {
    f.handle = 0;
    return;
  }
  f.model_addr = model_addr(f.space, f.handle);
  const Provenance* p = provenance_of(f.space, f.handle);
  if (!p) return;
  f.allocated = p->alloc;
  f.freed = p->free;
  f.nr_frees = p->frees;
}

// The model knows call sites and tasks only by number: name them as the
// Program (the trace) does.
void Executor::in_program_terms(inv::Violation& v, const Op& op) const {
  const auto fix = [&](std::string& s) {
    static constexpr std::string_view kSite = "call_site#";
    for (std::size_t at = s.find(kSite); at != std::string::npos; at = s.find(kSite, at + 1)) {
      std::size_t end = at + kSite.size();
      std::uint32_t id = 0;
      while (end < s.size() && s[end] >= '0' && s[end] <= '9' && id < (1u << 28))
        id = id * 10 + static_cast<std::uint32_t>(s[end++] - '0');
      if (end == at + kSite.size() || id == 0 || id >= strings_.size()) continue;
      s.replace(at, end - at, strings_.str(id));
    }
    if (op.comm) {
      static constexpr std::string_view kTask = "by task mmfuzz/0";
      if (const std::size_t t = s.find(kTask); t != std::string::npos)
        s.replace(t, kTask.size(), fmt::format("by task {}/{}", strings_.str(op.comm), op.pid));
      static constexpr std::string_view kProcess = "in process mmfuzz ";
      if (const std::size_t t = s.find(kProcess); t != std::string::npos)
        s.replace(t, kProcess.size(), fmt::format("in process {} ", strings_.str(op.comm)));
    }
  };
  fix(v.title);
  for (auto& d : v.details) fix(d);
  for (auto& h : v.history) fix(h.call_site);
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
  const std::uint32_t prov = rec.prov;  // the handle's history outlives its bindings
  rec = o;
  rec.prov = prov;
  if (rec.live) {
    ++live_objects_;
    if (rec.kind == ObjKind::kmalloc) live_kmalloc_bytes_ += rec.size;
  }
}

void Executor::bind_pages(Handle h, const Pages& p) {
  Pages& rec = pages_[h];
  if (rec.live) --live_pages_;
  const std::uint32_t prov = rec.prov;
  rec = p;
  rec.prov = prov;
  if (rec.live) ++live_pages_;
}

void Executor::kill_area(Area& a) {
  if (a.live) --live_areas_;
  a.live = false;
}

void Executor::bind_area(Handle h, Area a) {
  Area& rec = areas_[h];
  kill_area(rec);
  const std::uint32_t prov = rec.prov;
  rec = std::move(a);
  rec.prov = prov;
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
    if (opts_.report_leaks && opts_.provenance && wants("slab.leak")) report_leaks();
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

// The cache a live object belongs to, as /proc/slabinfo names it.
std::string Executor::cache_name_of(const Object& o) const {
  if (o.vmalloc) return "vmalloc";
  if (mm_.slab.initialized())
    if (const auto ref = mm_.slab.allocator->find_object(o.addr))
      if (const kmem_cache* s = mm_.slab.cache(ref->cache)) return s->name;
  return "(pages)";  // a large kmalloc: the page allocator's
}

// kmemleak's suspects, from the ops: the objects still allocated, grouped by
// the call site that allocated them and their cache, most first, each with
// the first and the last allocation's line.
void Executor::report_leaks() {
  struct Group {
    std::uint64_t count = 0, bytes = 0;
    const OpAt* first = nullptr;
    const OpAt* last = nullptr;
  };
  std::map<std::pair<std::string, std::string>, Group> groups;
  std::uint64_t total = 0, total_bytes = 0;
  for (const auto& [h, o] : objects_) {
    if (!o.live) continue;
    const Provenance* p = o.prov ? &provs_[o.prov - 1] : nullptr;
    const OpAt* at = !p || !p->alloc ? nullptr : &*p->alloc;
    // The cache as the op named it (a merged cache keeps its first name).
    const auto* c = at ? at->op.get_if<KmemCacheAlloc>() : nullptr;
    Group& g = groups[{at ? strings_.str(at->op.call_site) : "",
                       c ? strings_.str(c->name) : cache_name_of(o)}];
    ++g.count, ++total;
    g.bytes += o.size, total_bytes += o.size;
    if (at && (!g.first || at->index < g.first->index)) g.first = at;
    if (at && (!g.last || at->index > g.last->index)) g.last = at;
  }
  if (!total) return;
  std::vector<std::pair<const std::pair<std::string, std::string>*, const Group*>> order;
  for (const auto& [k, g] : groups) order.emplace_back(&k, &g);
  std::stable_sort(order.begin(), order.end(),
                   [](auto& a, auto& b) { return a.second->count > b.second->count; });
  inv::Violation v;
  v.kind = inv::ViolationKind::misuse;
  v.invariant = "slab.leak";
  v.subsystem = "slab";
  v.title = fmt::format("mmfuzz: {} objects ({} bytes) still allocated at the end of the run",
                        total, total_bytes);
  constexpr std::size_t kShown = 20;
  for (std::size_t i = 0; i < order.size() && i < kShown; ++i) {
    const auto& [k, g] = order[i];
    v.details.push_back(fmt::format("unreferenced: {} objects ({} bytes) of {} from {}", g->count,
                                    g->bytes, k->second, k->first.empty() ? "-" : k->first));
    for (const auto& [what, at] : {std::pair("first", g->first), std::pair("last", g->last)}) {
      if (!at || (what == std::string_view("last") && at == g->first)) continue;
      std::string line = format_op(at->op, strings_);
      line.erase(0, line.find_first_not_of(' '));
      v.details.push_back(fmt::format(
          "  {}: op #{}{}: {}", what, at->index,
          at->op.line ? fmt::format(", trace line {}", at->op.line) : std::string(), line));
    }
  }
  if (order.size() > kShown)
    v.details.push_back(fmt::format("... {} more call site/cache groups", order.size() - kShown));
  engine_->report(std::move(v));
}

Verdict Executor::run(const Program& p, const MmConfig& cfg, ExecOptions opts) {
  Mm m(cfg);
  Executor ex(m, p.strings, std::move(opts));
  for (const Op& op : p.ops) ex.step(op);
  return ex.finish();
}

}  // namespace mmfuzz::prog
