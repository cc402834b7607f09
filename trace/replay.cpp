#include "trace/replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"
#include "program/oracle.h"
#include "program/text.h"
#include "trace/source.h"

namespace mmfuzz::trace {

namespace {
// arm64 randomizes the linear map in steps of ARM64_MEMSTART_ALIGN (1 GiB
// with 4 KiB pages; 512 MiB with 64 KiB): the offset is a multiple of this.
constexpr std::uint64_t kOffsetAlign = std::uint64_t{1} << 29;
constexpr unsigned kOffsetVotes = 8;
constexpr std::size_t kMaxExamples = 20;
constexpr std::uint64_t kMaxTicksPerGap = 8;
}  // namespace

std::vector<FidelityMetric> fidelity_metrics() {
  std::vector<FidelityMetric> fid(kNrMetrics);
  fid[kKmallocSize].name = "kmalloc size class (bytes_alloc)";
  fid[kCacheSize].name = "kmem_cache object size (bytes_alloc)";
  fid[kLargeOrder].name = "large kmalloc page order";
  fid[kPageMigratetype].name = "mm_page_alloc migratetype";
  fid[kAllocFailure].name = "allocation success/failure";
  fid[kSlabOrder].name = "slab page order per cache";
  fid[kKmallocType].name = "kmalloc cache type (by gfp)";
  return fid;
}

void FidelityMetric::disagree(std::string trace_value, std::string model_value,
                              const std::function<std::string()>& example) {
  auto& d = disagreements[{trace_value, model_value}];
  if (d.count++ == 0) {
    d.trace_value = trace_value;
    d.model_value = model_value;
    d.example = example();
  }
}

namespace {
// The most frequent name of each key's votes.
template <class Key, class Hash, class Out>
void elect(
    const std::unordered_map<Key, std::unordered_map<std::uint32_t, std::uint64_t>, Hash>& votes,
    const StringTable& names, Out&& out) {
  for (const auto& [key, tally] : votes) {
    // Ties go to the smaller name id (the name seen first): the same every run.
    const auto best = std::max_element(tally.begin(), tally.end(), [](auto& a, auto& b) {
      return a.second < b.second || (a.second == b.second && a.first > b.first);
    });
    out(key, names.str(best->first));
  }
}
}  // namespace

std::unordered_map<std::string, std::string> learn_cache_names(EventSource& src) {
  struct Geometry {
    std::uint32_t site = 0;
    std::uint64_t req = 0, alloc = 0;
    bool operator==(const Geometry&) const = default;
  };
  struct GeometryHash {
    std::size_t operator()(const Geometry& g) const {
      return std::hash<std::uint64_t>()((std::uint64_t{g.site} << 40) ^ (g.req << 20) ^ g.alloc);
    }
  };
  using Tally = std::unordered_map<std::uint32_t, std::uint64_t>;  // name id -> frees
  std::unordered_map<std::uint64_t, Geometry> live;                // ptr -> its allocation
  StringTable sites, names;
  std::unordered_map<std::uint32_t, Tally> by_site;
  std::unordered_map<Geometry, Tally, GeometryHash> by_geometry;
  TraceEvent ev;
  while (src.next(ev)) {
    if ((ev.type == EventType::kmem_cache_alloc || ev.type == EventType::kmem_cache_alloc_node) &&
        ev.ptr)
      live[ev.ptr] = {sites.intern(ev.call_site), ev.bytes_req, ev.bytes_alloc};
    else if (ev.type == EventType::kmem_cache_free || ev.type == EventType::kfree) {
      const auto it = live.find(ev.ptr);
      if (it == live.end()) continue;
      if (ev.type == EventType::kmem_cache_free && !ev.name.empty() && ev.name != "(null)")
        ++by_geometry[it->second][names.intern(ev.name)];
      live.erase(it);
    }
  }
  for (const auto& [g, tally] : by_geometry)
    for (const auto& [name, n] : tally) by_site[g.site][name] += n;
  std::unordered_map<std::string, std::string> out;
  elect(by_site, names,
        [&](std::uint32_t site, const std::string& name) { out.emplace(sites.str(site), name); });
  elect(by_geometry, names, [&](const Geometry& g, const std::string& name) {
    out.emplace(fmt::format("{} {} {}", sites.str(g.site), g.req, g.alloc), name);
  });
  return out;
}

// One answer of the first pass: "call_site" or "call_site bytes_req bytes_alloc".
void Replayer::learn_name(const std::string& key, const std::string& name) {
  const std::uint32_t n = strings_.intern(name);
  const std::size_t sp = key.find(' ');
  if (sp == std::string::npos) {
    cs_cache_.emplace(strings_.intern(key), n);
    return;
  }
  SiteGeometry g{.call_site = strings_.intern(std::string_view(key).substr(0, sp))};
  const char* end = key.data() + key.size();
  const auto req = std::from_chars(key.data() + sp + 1, end, g.bytes_req);
  if (req.ec != std::errc() || req.ptr == end ||
      std::from_chars(req.ptr + 1, end, g.bytes_alloc).ec != std::errc())
    return;
  geo_cache_.emplace(g, n);
  // A name the trace shows with two sizes has no one size to check against.
  const auto [it, fresh] = name_size_.emplace(n, g.bytes_alloc);
  if (!fresh && it->second != g.bytes_alloc) it->second = 0;
}

Replayer::Replayer(Executor* ex, StringTable& strings, ReplayOptions opts)
    : ex_(ex), strings_(strings), opts_(std::move(opts)) {
  objs_.reserve(1 << 16);
  pages_.reserve(1 << 14);
  for (const auto& [key, name] : opts_.cache_names) learn_name(key, name);
  fid_ = fidelity_metrics();
}

void Replayer::anomaly(std::uint64_t line, const std::string& what) {
  if (st_.anomaly_examples.size() < kMaxExamples)
    st_.anomaly_examples.push_back(fmt::format("line {}: {}", line, what));
}

namespace {
// Removes the field `key` ("name=") and its value from an event's text.
void drop_field(std::string& text, std::string_view key) {
  const std::size_t at = text.find(fmt::format(" {}", key));
  if (at == std::string::npos) return;
  const std::size_t end = text.find(' ', at + 1);
  text.erase(at, end == std::string::npos ? std::string::npos : end - at);
}
}  // namespace

// A trace line as the trace has it: the line's own text (text sources), else
// the op's event with only the fields the trace gave (no cache name the
// replay resolved, no page= or accounted= it cannot know).
std::string Replayer::example(const Op& op) const {
  const TraceEvent* ev = cur_ev_ && op.line == cur_line_ ? cur_ev_ : nullptr;
  if (ev && !ev->text.empty()) return fmt::format("line {}: {}", op.line, ev->text);
  // The event and its fields, without the comm/CPU/timestamp columns.
  std::string text = format_op(op, strings_);
  const std::size_t cpu = text.find("] ");
  const std::size_t at = cpu == std::string::npos ? cpu : text.find(": ", cpu);
  if (at != std::string::npos) text.erase(0, at + 2);
  if (op.get_if<prog::KmemCacheAlloc>() && !(ev && !ev->name.empty())) drop_field(text, "name=");
  if (op.get_if<prog::AllocPages>()) drop_field(text, "page=");
  if (!ev) drop_field(text, "accounted=");
  return fmt::format("line {}: {}", op.line, text);
}

void Replayer::emit(Op op) {
  ++st_.ops;
  ++st_.ops_by_kind[static_cast<std::size_t>(op.kind())];
  if (sink) sink(op);
  if (!ex_) return;
  ex_->step(op);
  after_step(op);
}

// Compares the model's result with what the trace says.
void Replayer::after_step(const Op& op) {
  const OpResult& r = ex_->last();
  if (!r.ran || opts_.literal) return;
  measure_fidelity(fid_, op, r, expect_large_order_, [&] { return example(op); });
  if (const auto* k = op.get_if<prog::Kmalloc>(); k && k->obj && !r.failed)
    measure_kmalloc_type(*k, op);
}

namespace {

const char* cache_type(mm::slab_flags_t f) {
  if (f & mm::SLAB_CACHE_DMA) return "dma";
  if (f & mm::SLAB_RECLAIM_ACCOUNT) return "rcl";
  if (f & mm::SLAB_ACCOUNT) return "cg";
  return "normal";
}

}  // namespace

// The kmalloc cache the model chose for a kmalloc the trace shows, by type
// (a kmem trace does not name kmalloc's cache, but its gfp mask decides the
// type). Large kmallocs and SLOB (no kmalloc caches) are not compared.
void Replayer::measure_kmalloc_type(const prog::Kmalloc& k, const Op& op) {
  const mm::Slab& sl = ex_->mm().slab;
  if (sl.variant == mm::SlabVariant::slob || k.size > opts_.kmalloc_max_cache_size) return;
  const mm::kmem_cache* s = sl.cache(sl.kmalloc_slab(k.size, static_cast<mm::gfp_t>(k.gfp)));
  if (!s) return;
  const char* want = prog::kernel_kmalloc_type(static_cast<mm::gfp_t>(k.gfp));
  const char* got = cache_type(s->flags);
  fid_[kKmallocType].add(
      std::string_view(want) == got, [&] { return std::pair<std::string, std::string>(want, got); },
      [&] { return example(op); });
}

void Replayer::flush_pending(std::uint64_t upto_seq) {
  while (!pending_.empty() && pending_.front().seq <= upto_seq) {
    const Op op = pending_.front().op;
    pending_.pop_front();
    emit(op);
  }
}

// Removes the waiting page allocation that holds pfn `p` (exact: starts at it).
bool Replayer::take_pending(std::uint64_t p, bool exact, Pending& out) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    const auto& a = it->op.as<prog::AllocPages>();
    const std::uint64_t start = a.page;
    const std::uint64_t n = std::uint64_t{1} << a.order;
    if (exact ? p == start : (p >= start && p < start + n)) {
      out = *it;
      pending_.erase(it);
      return true;
    }
  }
  return false;
}

void Replayer::absorb_slab_page(const Pending& p, std::uint32_t cache_name) {
  const auto& a = p.op.as<prog::AllocPages>();
  ++st_.absorbed_slab_pages;
  absorbed_.insert(a.page);
  forget_page(a.page);
  caches_[cache_name].trace_orders[a.order]++;
}

// A page allocation that turned out to be the slab layer's: the model's
// allocator makes its own, so the trace's page is no handle.
void Replayer::forget_page(std::uint64_t pfn) {
  const auto it = pages_.find(pfn);
  if (it == pages_.end()) return;
  if (it->second.live) --live_pages_;
  if (it->second.order) multi_pages_.erase(pfn);
  pages_.erase(it);
}

// Votes for the linear-map offset from pairs (the latest page allocation on
// this CPU, an object allocated next on it): a new slab's first object lies
// in the page just allocated.
void Replayer::learn_offset(std::uint64_t ptr, int cpu) {
  if (st_.linear_map_learned || opts_.literal) return;
  const auto it = last_page_alloc_.find(cpu);
  if (it == last_page_alloc_.end()) return;
  const std::uint64_t pfn = it->second;
  last_page_alloc_.erase(it);
  // Exact page offsets only: a pair that is no new slab and its first
  // object almost never lands on an aligned offset.
  const std::uint64_t cand =
      (ptr >> opts_.page_shift << opts_.page_shift) - (pfn << opts_.page_shift);
  if (cand % kOffsetAlign) return;
  ++offset_total_;
  const unsigned v = ++offset_votes_[cand];
  if (v >= kOffsetVotes && v * 5 >= offset_total_ * 4) {
    st_.linear_map_learned = true;
    st_.linear_map_offset = cand;
  } else if (offset_votes_.size() > 4096) {
    offset_votes_.clear();  // hashed pointers: no offset to learn
    offset_total_ = 0;
  }
}

namespace {
// kmem_cache_create() arguments whose SLUB layout (calculate_sizes) has the
// s->size the trace shows (bytes_alloc) for the object_size it shows
// (bytes_req): what s->size adds beyond the word-aligned object is the free
// pointer kept outside the object (a constructor or SLAB_TYPESAFE_BY_RCU)
// and the cache's alignment. The smallest such alignment, without a
// constructor if one works; s->size itself as the object size if none does.
prog::KmemCacheCreate trace_geometry(std::uint32_t name, std::uint64_t req, std::uint64_t alloc) {
  prog::KmemCacheCreate c{.name = name, .size = req ? req : alloc};
  const std::uint64_t word = mm::round_up(c.size, 8);
  if (!alloc || alloc == word) return c;
  for (const bool ctor : {false, true})
    for (std::uint64_t align = 8; align <= alloc; align *= 2)
      if (mm::round_up(word + (ctor ? 8 : 0), align) == alloc) {
        c.ctor = ctor;
        c.align = align;
        return c;
      }
  c.size = alloc;
  return c;
}
}  // namespace

std::uint32_t Replayer::resolve_cache(const TraceEvent& ev, std::uint32_t cs) {
  const std::uint32_t name = cache_name(ev, cs);
  CacheInfo& ci = caches_[name];
  if (!ci.model_name) adopt_cache(ci, name, ev);
  return ci.model_name;
}

// The kernel's name of an allocated object's cache: the line's own name=
// (kernels from 2025 on); the first pass's answer for its call site and
// geometry; its call site's cache (learned from frees while replaying) if
// that cache's traced size is the object's, or unknown while the call site
// has shown one size only; else a stand-in cache of the object's size.
std::uint32_t Replayer::cache_name(const TraceEvent& ev, std::uint32_t cs) {
  if (!ev.name.empty() && ev.name != "(null)") return strings_.intern(ev.name);
  if (!geo_cache_.empty())
    if (const auto it = geo_cache_.find({cs, ev.bytes_req, ev.bytes_alloc}); it != geo_cache_.end())
      return it->second;
  const auto [sz, fresh] = site_size_.try_emplace(cs, ev.bytes_alloc);
  if (!fresh && sz->second != ev.bytes_alloc) sz->second = 0;  // a site of several caches
  if (const auto it = cs_cache_.find(cs); it != cs_cache_.end()) {
    const std::uint64_t size = traced_size(it->second);
    if (size ? size == ev.bytes_alloc : sz->second != 0) return it->second;
  }
  return strings_.intern(fmt::format("trace-{}", ev.bytes_alloc));
}

// s->size of cache `name` as the trace shows it; 0 while unknown.
std::uint64_t Replayer::traced_size(std::uint32_t name) const {
  if (const auto it = caches_.find(name); it != caches_.end() && it->second.trace_size)
    return it->second.trace_size;
  const auto it = name_size_.find(name);
  return it == name_size_.end() ? 0 : it->second;
}

// The first object of a cache created before tracing began: the cache is
// the model's if the model has one of that name and size, else one made
// with the trace's geometry (the trace is the truth about a cache it shows;
// SLUB derives the slab order and objects per slab from the size).
void Replayer::adopt_cache(CacheInfo& ci, std::uint32_t name, const TraceEvent& ev) {
  ci.model_name = name;
  ci.trace_size = ev.bytes_alloc;
  const mm::cache_id id = ex_ ? ex_->cache_of(name) : 0;
  if (const mm::kmem_cache* s = id ? ex_->mm().slab.cache(id) : nullptr) {
    if (!ev.bytes_alloc || s->size == ev.bytes_alloc) return;
    // One line per cache name.
    st_.caches_regeometried.push_back(
        fmt::format("{}: model {}, trace {} (line {}): replayed in a cache of the trace's size",
                    strings_.str(name), s->size, ev.bytes_alloc, cur_line_));
  }
  ++st_.caches_created;
  emit(Op{.args = trace_geometry(name, ev.bytes_req, ev.bytes_alloc),
          .cpu = static_cast<std::int16_t>(std::max(ev.cpu, 0)),
          .ts_ns = ev.ts_ns,
          .line = cur_line_});
}

void Replayer::on_kmalloc(const TraceEvent& ev, Op& op) {
  if (ev.ptr == 0) {  // kmalloc returned NULL
    emit(op);
    return;
  }
  auto& o = objs_[ev.ptr];
  if (o.live) {
    ++st_.double_allocs;
    anomaly(cur_line_, fmt::format("kmalloc at {:#x}, still live in the trace", ev.ptr));
    --live_objs_;
    // With events lost, the free is among them: run it. Otherwise the
    // Executor reports the allocation of a live handle (trace.double_alloc).
    if (lost_) {
      Op f = op;
      f.args = prog::Kfree{ev.ptr};
      emit(f);
    }
  }
  o = {true, kKmalloc, 0, op.call_site};
  ++live_objs_;
  expect_large_order_ = ~0u;
  if (!opts_.literal && ev.bytes_alloc > opts_.kmalloc_max_cache_size) {
    // kmalloc_large: the mm_page_alloc just before is this object's pages.
    Pending p;
    bool found = false;
    if (st_.linear_map_learned)
      found = take_pending((ev.ptr - st_.linear_map_offset) >> opts_.page_shift, true, p);
    if (!found)
      for (auto it = pending_.rbegin(); it != pending_.rend(); ++it)
        if (const auto& a = it->op.as<prog::AllocPages>();
            it->op.cpu == op.cpu &&
            (std::uint64_t{1} << (a.order + opts_.page_shift)) == ev.bytes_alloc) {
          found = take_pending(a.page, true, p);
          break;
        }
    if (found) {
      const auto& a = p.op.as<prog::AllocPages>();
      ++st_.absorbed_large_kmalloc;
      absorbed_.insert(a.page);
      forget_page(a.page);
      o.kind = kLarge;
      expect_large_order_ = a.order;
    }
  } else if (st_.linear_map_learned && !pending_.empty()) {
    Pending p;
    if (take_pending((ev.ptr - st_.linear_map_offset) >> opts_.page_shift, false, p))
      absorb_slab_page(p, strings_.intern(fmt::format("kmalloc-{}", ev.bytes_alloc)));
  } else {
    learn_offset(ev.ptr, op.cpu);
  }
  emit(op);
  expect_large_order_ = ~0u;
}

void Replayer::on_kmem_cache_alloc(const TraceEvent& ev, Op& op) {
  auto& alloc = op.as<prog::KmemCacheAlloc>();
  if (!opts_.literal) alloc.name = resolve_cache(ev, op.call_site);
  const std::uint32_t name = alloc.name;
  if (ev.ptr == 0) {
    emit(op);
    return;
  }
  auto& o = objs_[ev.ptr];
  if (o.live) {
    ++st_.double_allocs;
    anomaly(cur_line_, fmt::format("kmem_cache_alloc at {:#x}, still live in the trace", ev.ptr));
    --live_objs_;
    // Bulk caches free untraced (kmem_cache_free_bulk), lost events hide
    // frees: run the free the trace does not show. Otherwise the Executor
    // reports the allocation of a live handle (trace.double_alloc).
    if (lost_ || opts_.bulk_caches.count(strings_.str(o.name))) {
      Op f = op;
      if (o.kind == kCache)
        f.args = prog::KmemCacheFree{.obj = ev.ptr, .name = o.name};
      else
        f.args = prog::Kfree{ev.ptr};
      emit(f);
    }
  }
  o = {true, kCache, name, op.call_site};
  ++live_objs_;
  if (!opts_.literal) {
    if (st_.linear_map_learned && !pending_.empty()) {
      Pending p;
      if (take_pending((ev.ptr - st_.linear_map_offset) >> opts_.page_shift, false, p))
        absorb_slab_page(p, name);
    } else {
      learn_offset(ev.ptr, op.cpu);
    }
  }
  emit(op);
}

void Replayer::on_free(const TraceEvent& ev, Op& op) {
  if (ev.ptr == 0) {
    ++st_.kfree_null;
    return;
  }
  const bool cache_free = ev.type == EventType::kmem_cache_free;
  const auto it = objs_.find(ev.ptr);
  if (it == objs_.end() || (!it->second.live && !opts_.literal)) {
    const bool seen = it != objs_.end();
    const bool bulk = cache_free && opts_.bulk_caches.count(std::string(ev.name));
    if (!seen || bulk || lost_) {
      // Allocated before tracing began, or untraced (bulk, or lost events).
      ++st_.unknown_frees;
      if (bulk) ++st_.unknown_bulk_frees;
      if (st_.unknown_frees <= 3 || opts_.strict_frees)
        anomaly(cur_line_, fmt::format("{} of {:#x}: never allocated in the trace",
                                       event_type_name(ev.type), ev.ptr));
      // Untraced by design (bulk) or lost: not the trace's fault even under
      // --strict-frees. Otherwise the free runs, and the Executor reports a
      // free of a handle never bound (trace.unknown_free).
      if (opts_.strict_frees && !bulk && !lost_) emit(op);
      return;
    }
    // A second free of the same pointer: the Executor reports it
    // (trace.double_free, a freed handle freed again), then the model.
    ++st_.double_frees;
    anomaly(cur_line_, fmt::format("{} of {:#x}: already freed in the trace",
                                   event_type_name(ev.type), ev.ptr));
  }
  ObjView* o = it == objs_.end() ? nullptr : &it->second;
  if (o && o->live) {
    --live_objs_;
    if (cache_free && ev.name.size() && o->call_site && !opts_.literal)
      cs_cache_.emplace(o->call_site, strings_.intern(ev.name));
  }
  if (!opts_.literal && o) {
    // Free as the model allocated it: kmalloc objects with kfree, cache
    // objects with their model cache.
    if (o->kind == kCache)
      op.args = prog::KmemCacheFree{.obj = ev.ptr, .name = free_cache(ev, *o)};
    else
      op.args = prog::Kfree{ev.ptr};
  }
  if (o) o->live = false;
  emit(op);
}

// The cache a kmem_cache_free goes to: the object's, unless the trace names
// another cache it knows while the object's cache is known by name too (not
// a stand-in "trace-N" of an unnamed allocation): then the free goes where
// the kernel sent it, and the model reports slab.wrong_cache.
std::uint32_t Replayer::free_cache(const TraceEvent& ev, const ObjView& o) {
  if (ev.type != EventType::kmem_cache_free || ev.name.empty() || ev.name == "(null)")
    return o.name;
  const std::string& mine = strings_.str(o.name);
  if (mine.rfind("trace-", 0) == 0 || mine == ev.name) return o.name;
  const std::uint32_t named = strings_.find(ev.name);
  if (!named || !caches_.count(named)) return o.name;
  return caches_[named].model_name;
}

void Replayer::on_page_alloc(const TraceEvent& ev, Op& op) {
  if (ev.order >= opts_.max_order) {
    // No kernel allocates that much at once: a corrupt line. It runs now,
    // untracked (a split of it would touch 2^order pages): the Executor
    // reports it (trace.invalid), or the model warns if it failed.
    anomaly(cur_line_,
            fmt::format("mm_page_alloc pfn {:#x}: order {} is beyond MAX_ORDER", ev.pfn, ev.order));
    if (ev.failed || ev.pfn == 0) op.as<prog::AllocPages>().page = 0;
    emit(op);
    return;
  }
  if (ev.failed || ev.pfn == 0) {
    op.as<prog::AllocPages>().page = 0;
    emit(op);
    return;
  }
  if (Pending p; !pending_.empty() && take_pending(ev.pfn, true, p)) {
    flush_pending(p.seq);
    emit(p.op);  // the first allocation runs before the free the trace missed
  }
  auto& pv = pages_[ev.pfn];
  if (pv.live) {
    ++st_.page_double_allocs;
    anomaly(cur_line_,
            fmt::format("mm_page_alloc pfn {:#x}: still allocated in the trace", ev.pfn));
    if (lost_) {
      Op f = op;
      f.args = prog::FreePages{.page = ev.pfn, .order = static_cast<std::uint8_t>(pv.order)};
      emit(f);
    }
    --live_pages_;
    if (pv.order) multi_pages_.erase(ev.pfn);
  }
  pv = {true, ev.order, ev.has_gfp && (ev.gfp & mm::__GFP_COMP)};
  ++live_pages_;
  if (ev.order) multi_pages_[ev.pfn] = ev.order;
  if (opts_.literal || opts_.window == 0) {
    emit(op);
    return;
  }
  last_page_alloc_[op.cpu] = ev.pfn;
  pending_.push_back({op, seq_});
}

void Replayer::on_page_free(const TraceEvent& ev, Op& op) {
  if (ev.order >= opts_.max_order) {
    // A corrupt line: the Executor reports it (trace.invalid), or the model
    // the free of a known page with that order.
    anomaly(cur_line_,
            fmt::format("mm_page_free pfn {:#x}: order {} is beyond MAX_ORDER", ev.pfn, ev.order));
    emit(op);
    return;
  }
  if (const auto a = absorbed_.find(ev.pfn); a != absorbed_.end() && !opts_.literal) {
    absorbed_.erase(a);  // a slab page or a large kmalloc: the model frees its own
    return;
  }
  Pending p;
  if (!pending_.empty() && take_pending(ev.pfn, false, p)) {
    // Freed before anything claimed it: a plain allocation after all.
    flush_pending(p.seq);
    emit(p.op);
  }
  // The kernel split a larger allocation (split_page, alloc_pages_exact) and
  // frees part of it: split it in the model too.
  auto split = [&](std::uint64_t head, unsigned order) {
    Op s = op;
    s.args = prog::SplitPage{head};
    emit(s);
    ++st_.splits;
    multi_pages_.erase(head);
    for (std::uint64_t i = 0; i < (std::uint64_t{1} << order); ++i) {
      auto& pv = pages_[head + i];
      if (!pv.live) ++live_pages_;
      pv = {true, 0};
    }
  };
  auto it = pages_.find(ev.pfn);
  if (it == pages_.end() || !it->second.live) {
    if (opts_.literal) {
      if (it != pages_.end()) emit(op);  // a double free in a Program: the model judges it
      return;
    }
    auto m = multi_pages_.upper_bound(ev.pfn);
    if (m == multi_pages_.begin() || (--m, ev.pfn >= m->first + (std::uint64_t{1} << m->second))) {
      ++st_.unknown_page_frees;
      return;
    }
    split(m->first, m->second);
  } else if (it->second.order > ev.order && !it->second.compound && !opts_.literal) {
    // split_page() is not traced; a compound page cannot be split, so its
    // head freed with a smaller order is the wrong order (the model says so).
    split(ev.pfn, it->second.order);
  }
  auto& pv = pages_[ev.pfn];
  if (pv.order) multi_pages_.erase(ev.pfn);
  pv.live = false;
  --live_pages_;
  emit(op);
}

void Replayer::on_vmalloc(const TraceEvent& ev, Op& op) {
  const std::uint64_t page = std::uint64_t{1} << opts_.page_shift;
  if (ev.type == EventType::alloc_vmap_area) {
    // 6.3+: the area (with its guard page); vmalloc, vmap and ioremap look
    // alike here, so it replays as a vmalloc of the area's size.
    op.args = prog::Vmalloc{.area = ev.failed ? 0 : ev.addr,
                            .size = ev.size > page ? ev.size - page : ev.size};
    if (!ev.failed) areas_[ev.addr] = 1;
    emit(op);
    return;
  }
  // free_vmap_area_noflush
  const auto it = areas_.find(ev.addr);
  if (it == areas_.end()) {
    ++st_.unknown_frees;
    return;
  }
  areas_.erase(it);
  op.args = prog::Vfree{ev.addr};
  emit(op);
}

void Replayer::feed(const TraceEvent& ev, std::uint64_t line) {
  ++st_.events;
  ++st_.by_type[static_cast<std::size_t>(ev.type)];
  ++seq_;
  cur_line_ = line;
  cur_ev_ = &ev;  // until feed returns: the examples of its ops quote it
  const struct Forget {
    const TraceEvent*& ev;
    ~Forget() { ev = nullptr; }
  } forget{cur_ev_};
  if (ev.ts_ns) {
    if (!st_.first_ts) st_.first_ts = ev.ts_ns;
    st_.last_ts = std::max(st_.last_ts, ev.ts_ns);
  }
  if (!pending_.empty() && pending_.front().seq + opts_.window <= seq_)
    flush_pending(seq_ - opts_.window);

  if (opts_.literal || ev.type == EventType::mmfuzz_ext) {
    Op op;
    std::string error;
    if (event_to_op(ev, strings_, op, &error)) {
      op.line = line;
      emit(op);
    }
    return;
  }
  // Periodic work in trace time.
  // The ticks due are computed, not stepped through: a corrupt timestamp
  // may jump by centuries. Sums saturate at the end of time.
  if (opts_.tick_ns && ev.ts_ns) {
    const auto add = [](std::uint64_t a, std::uint64_t b) {
      std::uint64_t r;
      return __builtin_add_overflow(a, b, &r) ? ~std::uint64_t{0} : r;
    };
    if (!next_tick_) next_tick_ = add(ev.ts_ns, opts_.tick_ns);
    if (ev.ts_ns >= next_tick_) {
      const std::uint64_t due = (ev.ts_ns - next_tick_) / opts_.tick_ns + 1;
      for (std::uint64_t n = 0; n < std::min(due, kMaxTicksPerGap); ++n) {
        ++st_.ticks;
        emit(Op{.args = prog::Tick{},
                .cpu = static_cast<std::int16_t>(std::max(ev.cpu, 0)),
                .ts_ns = next_tick_ + n * opts_.tick_ns,
                .line = line});
      }
      next_tick_ = add(next_tick_, (ev.ts_ns - next_tick_) / opts_.tick_ns * opts_.tick_ns);
      next_tick_ = add(next_tick_, opts_.tick_ns);
    }
  }
  Op op;
  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
    case EventType::kfree:
    case EventType::kmem_cache_free:
    case EventType::mm_page_alloc:
    case EventType::mm_page_free: {
      std::string error;
      if (!event_to_op(ev, strings_, op, &error)) return;
      op.line = line;
      break;
    }
    case EventType::alloc_vmap_area:
    case EventType::free_vmap_area_noflush:
      op.cpu = static_cast<std::int16_t>(std::max(ev.cpu, 0));
      op.pid = std::max(ev.pid, 0);
      op.ts_ns = ev.ts_ns;
      op.line = line;
      on_vmalloc(ev, op);
      return;
    case EventType::lost_events:
      ++st_.lost_markers;
      st_.lost_events += ev.lost;
      lost_ = true;
      anomaly(line, ev.cpu < 0 ? fmt::format("the header says the ring buffer overwrote {} "
                                             "events: unknown frees are not errors",
                                             ev.lost)
                               : fmt::format("CPU:{} [LOST {} EVENTS]: later unknown frees are "
                                             "not errors",
                                             ev.cpu, ev.lost));
      return;
    default:
      return;  // batched frees, pcp moves, extfrag, rss_stat, markers: no ops
  }
  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
      on_kmalloc(ev, op);
      break;
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      on_kmem_cache_alloc(ev, op);
      break;
    case EventType::kfree:
    case EventType::kmem_cache_free:
      on_free(ev, op);
      break;
    case EventType::mm_page_alloc:
      on_page_alloc(ev, op);
      break;
    default:
      on_page_free(ev, op);
      break;
  }
}

void Replayer::finish() {
  flush_pending(~std::uint64_t{0});
  if (!ex_) return;
  // The slab page order the kernel used for a cache against the model's.
  for (const auto& [name, ci] : caches_) {
    const mm::cache_id c = ex_->cache_of(ci.model_name);
    const mm::kmem_cache* s = c ? ex_->mm().slab.cache(c) : nullptr;
    if (!s || ci.trace_orders.empty()) continue;
    const bool slub = ex_->mm().slab.variant == mm::SlabVariant::slub;
    const unsigned model = ex_->mm().slab.variant == mm::SlabVariant::slab ? s->gfporder : s->order;
    for (const auto& [order, n] : ci.trace_orders)
      for (std::uint64_t i = 0; i < n; ++i)
        fid_[kSlabOrder].add(
            // When the oo allocation fails, SLUB takes s->min (the smallest
            // order holding one object): such a slab is the cache's too.
            order == model || (slub && order == s->min_order),
            [&, o = order] {
              return std::pair(fmt::format("order {}", o), fmt::format("order {}", model));
            },
            [&, n = name] { return fmt::format("cache {}", strings_.str(n)); });
  }
}

std::string Replayer::fidelity_report(unsigned top) const {
  std::string out;
  for (const auto& m : fid_) {
    if (!m.total) {
      out += fmt::format("  {:<38} n/a (nothing to compare)\n", m.name);
      continue;
    }
    out +=
        fmt::format("  {:<38} {:6.2f}% agree ({} of {})\n", m.name, m.percent(), m.agree, m.total);
    std::vector<const FidelityMetric::Disagreement*> v;
    for (const auto& [k, d] : m.disagreements) v.push_back(&d);
    std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->count > b->count; });
    for (std::size_t i = 0; i < std::min<std::size_t>(top, v.size()); ++i)
      out += fmt::format("      trace {} / model {}: {} times, e.g. {}\n", v[i]->trace_value,
                         v[i]->model_value, v[i]->count, v[i]->example);
  }
  if (!st_.caches_regeometried.empty()) {
    out += fmt::format("  caches whose size in the model is not the trace's: {}\n",
                       st_.caches_regeometried.size());
    for (std::size_t i = 0; i < std::min<std::size_t>(top, st_.caches_regeometried.size()); ++i)
      out += fmt::format("      {}\n", st_.caches_regeometried[i]);
  }
  return out;
}

}  // namespace mmfuzz::trace
