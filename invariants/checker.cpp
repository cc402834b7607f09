#include "invariants/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "invariants/buddy.h"
#include "invariants/page_report.h"
#include "invariants/slab.h"
#include "invariants/slab_report.h"
#include "invariants/trace.h"
#include "invariants/vm.h"
#include "mm/mm.h"

namespace mmfuzz::inv {

bool glob_match(std::string_view p, std::string_view t) {
  // '*' matches any run, '?' one character; iterative with backtracking.
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi, ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

CheckSelection CheckSelection::parse(std::string_view spec) {
  // Every fuzz input builds an engine: parse and validate each spec once.
  static std::mutex lock;
  static std::map<std::string, CheckSelection, std::less<>> memo;
  {
    const std::lock_guard<std::mutex> g(lock);
    if (const auto it = memo.find(spec); it != memo.end()) return it->second;
  }
  CheckSelection s = parse_uncached(spec);
  const std::lock_guard<std::mutex> g(lock);
  if (memo.size() < 64) memo.emplace(std::string(spec), s);
  return s;
}

CheckSelection CheckSelection::parse_uncached(std::string_view spec) {
  CheckSelection s;
  s.all_ = spec == "all";
  const auto ids = all_invariant_ids();
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    auto comma = spec.find(',', pos);
    std::string_view tok =
        spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? spec.size() + 1 : comma + 1;
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
    if (tok.empty()) continue;
    bool include = true;
    if (tok.front() == '-') {
      include = false;
      tok.remove_prefix(1);
    }
    std::string glob = tok == "all" ? "*" : std::string(tok);
    bool any = false;
    for (const auto& id : ids) any = any || glob_match(glob, id);
    if (!any)
      throw mm::ConfigError("--checks: '" + std::string(tok) +
                            "' matches no invariant (see `mmfuzz checks`)");
    s.rules_.emplace_back(include, std::move(glob));
  }
  if (s.rules_.empty()) throw mm::ConfigError("--checks: empty selection");
  return s;
}

bool CheckSelection::enabled(std::string_view id) const {
  if (all_) return true;
  // Later rules win; with only exclusions, everything else stays on.
  bool on = rules_.empty() || !rules_.front().first;
  for (const auto& [include, glob] : rules_)
    if (glob_match(glob, id)) on = include;
  return on;
}

Reporter::Reporter(const CheckSelection& sel, std::vector<Violation>& out, std::int64_t op_index,
                   const std::string& op_name, unsigned cap, bool capture_stacks)
    : sel_(sel),
      out_(out),
      op_index_(op_index),
      op_name_(op_name),
      cap_(cap),
      capture_stacks_(capture_stacks) {}

void Reporter::report(Violation v) {
  if (!sel_.enabled(v.invariant)) return;
  ++reported_;
  unsigned same = 0;
  for (const auto& o : out_) same += o.invariant == v.invariant;
  if (same >= cap_) return;
  v.op_index = op_index_;
  v.op_name = op_name_;
  if (capture_stacks_) v.capture_stack();
  out_.push_back(std::move(v));
}

std::vector<std::unique_ptr<Checker>> make_all_checkers() {
  std::vector<std::unique_ptr<Checker>> v;
  v.push_back(std::make_unique<BuddyChecker>());
  v.push_back(std::make_unique<SlabChecker>());
  v.push_back(std::make_unique<VmChecker>());
  return v;
}

std::vector<std::string> all_invariant_ids() {
  std::vector<std::string> ids;
  for (const auto& c : make_all_checkers())
    for (const auto& id : c->invariants()) ids.push_back(id);
  for (int k = 0; k < mm::kNrMisuseKinds; ++k)
    ids.emplace_back(mm::misuse_id(static_cast<mm::MisuseKind>(k)));
  ids.emplace_back("slab.leak");
  for (int k = 0; k < kNrTraceFindings; ++k)
    ids.emplace_back(trace_finding_id(static_cast<TraceFinding>(k)));
  // The Executor's reference models (program/oracle.h), on with `oracle: on`.
  for (const char* id : {"oracle.overlap", "oracle.contents", "oracle.ksize", "oracle.kmalloc_size",
                         "oracle.page", "oracle.mempool", "oracle.vmap"})
    ids.emplace_back(id);
  return ids;
}

std::string invariant_description(const std::string& id) {
  static const std::pair<const char*, const char*> kDesc[] = {
      {"buddy.aligned", "every free block is aligned to its order and lies inside one zone"},
      {"buddy.overlap", "free, pcp, allocated and reserved pages never overlap"},
      {"buddy.coalesced", "no free block has a free buddy of the same order (complete coalescing)"},
      {"buddy.mergeable",
       "a free block above pageblock order merged only pageblocks __free_one_page() may merge "
       "(one migrate type, or only UNMOVABLE/MOVABLE/RECLAIMABLE)"},
      {"buddy.metadata",
       "PageBuddy and the buddy order match the free lists; lists are well linked"},
      {"buddy.counts",
       "nr_free per order and type, NR_FREE_PAGES and NR_FREE_CMA_PAGES match the lists"},
      {"buddy.pcp", "pcp pages are not PageBuddy nor allocated, and pcp counts match the lists"},
      {"buddy.refcount", "free and pcp pages have refcount 0; allocated heads hold a reference"},
      {"buddy.watermark",
       "a successful allocation left the zone above the watermark its gfp mask entitles it "
       "to (min, less __GFP_HIGH's and __GFP_ATOMIC's share, plus lowmem_reserve)"},
      {"buddy.accounting",
       "managed = free + pcp + allocated, present - managed = reserved, per zone"},
      {"page_alloc.double_free", "misuse: freeing pages that are already free (buddy or pcp)"},
      {"page_alloc.wrong_order", "misuse: freeing with an order other than the allocation's"},
      {"page_alloc.free_tail", "misuse: freeing a page inside an allocation that is not its head"},
      {"page_alloc.free_reserved", "misuse: freeing a PG_reserved page"},
      {"page_alloc.bad_pfn", "misuse: a pfn or address that is no page of this machine"},
      {"page_alloc.refcount_underflow", "misuse: put_page() on a page with refcount 0"},
      {"page_alloc.bad_state", "misuse: page flags or state that forbid the operation"},
      {"page_alloc.bad_gfp", "misuse: contradictory GFP zone or mobility bits, or an offline node"},
      {"page_alloc.bad_order", "misuse: order >= MAX_ORDER"},
      {"page_alloc.split_compound", "misuse: split_page() of a compound page"},
      {"page_alloc.free_kmalloc",
       "misuse: the page allocator frees a large kmalloc's pages (not kfree()): the slab layer "
       "still counts them"},
      {"slab.pages", "slab pages are live page blocks of a live cache, with sane objects/inuse"},
      {"slab.overlap",
       "slabs and large kmallocs are allocated page blocks: never free, never shared"},
      {"slab.freelist",
       "freelists hold valid object starts, no cycles, no object twice, none allocated"},
      {"slab.counts",
       "inuse, nr_partial, nr_slabs and total_objects agree with the slabs and the shadow"},
      {"slab.lists",
       "each slab is on exactly the list (cpu, cpu partial, partial, full) its state says"},
      {"slab.rearm",
       "an object just freed to a SLUB debug cache has its red zones and poison re-armed with "
       "the free patterns (init_object)"},
      {"slab.mempool",
       "a mempool's reserve holds at most min_nr elements, and fewer only while callers hold "
       "the rest (mempool_free() refills before it frees)"},
      {"slab.double_free", "misuse: freeing an object that is already free"},
      {"slab.invalid_free", "misuse: freeing a pointer that is not an object start"},
      {"slab.wrong_cache", "misuse: kmem_cache_free() to another cache than the object's"},
      {"slab.bad_cache",
       "misuse: a cache that does not exist, or destroying a boot or kmalloc cache"},
      {"slab.cache_destroyed", "misuse: using a cache after kmem_cache_destroy()"},
      {"slab.destroy_busy", "misuse: kmem_cache_destroy() while objects remain"},
      {"slab.bad_create",
       "misuse: kmem_cache_create() with impossible arguments (or SLAB_PANIC failing)"},
      {"slab.redzone", "SLUB debug: a red zone was overwritten"},
      {"slab.poison", "SLUB debug: the poison of a free object was overwritten (use after free)"},
      {"slab.padding", "SLUB debug: object or slab padding was overwritten"},
      {"slab.freeptr", "a free pointer points to no object of its slab (corrupted freelist)"},
      {"slab.leak", "objects still allocated at the end of a run (off unless asked for)"},
      {"kasan.out_of_bounds", "KASAN: access beyond the requested object (slab-out-of-bounds)"},
      {"kasan.use_after_free", "KASAN: access to a freed object or page"},
      {"kasan.wild_access", "KASAN: access to no object (wild-memory-access, null-ptr-deref)"},
      {"pgtable.table_page",
       "every table descriptor points at a RAM page with the PG_table type that is not free"},
      {"pgtable.leaf",
       "leaves are well formed: blocks at PUD/PMD only, pages at PTE, output aligned, AF set, "
       "AttrIndx names a MAIR slot"},
      {"pgtable.range", "no descriptor points outside RAM or a device region"},
      {"pgtable.linear_map",
       "the linear map maps every page of memory at __va(pa) with normal attributes, and "
       "nothing else"},
      {"pgtable.wx", "no kernel mapping is writable and executable (W^X)"},
      {"pgtable.free_page_mapped",
       "no mapping outside the linear map and vmemmap points at a page free in the buddy "
       "allocator"},
      {"pgtable.tlb_stale",
       "every TLB entry matches the tables, unless its VA lies in a lazily freed vmalloc area"},
      {"pgtable.accounting",
       "reachable table pages = PG_table pages; NR_PAGETABLE counts the non-boot ones, as does "
       "nr_tables"},
      {"pgtable.slab_overlap", "no live slab object overlaps a page-table page"},
      {"vmalloc.area_map",
       "each vmalloc/vmap/ioremap area maps exactly its pages (or physical range) with its prot, "
       "and its page array names them"},
      {"vmalloc.guard", "guard pages are unmapped, and lazily freed areas are fully unmapped"},
      {"vmalloc.overlap",
       "busy, lazily freed and free ranges never overlap; areas lie in the vmalloc range; no "
       "orphan mappings there"},
      {"vmalloc.bookkeeping",
       "vmap_area and vm_struct agree, vmalloc pages are allocated, nr_vmalloc_pages and "
       "vmap_lazy_nr match"},
      {"ioremap.attrs", "ioremap mappings use device or normal-NC attributes and never map RAM"},
      {"vmalloc.bad_free",
       "misuse: vfree()/vunmap() of an address that is not a vmalloc area start"},
      {"vmalloc.double_free", "misuse: vfree()/vunmap()/iounmap() of an area already freed"},
      {"vmalloc.vunmap_vmalloc", "misuse: vunmap() of a vmalloc() area (its pages would leak)"},
      {"vmalloc.sleep_in_atomic",
       "misuse: a sleeping vmalloc/vmap/ioremap/kmap call in atomic context (might_sleep)"},
      {"vmalloc.bad_vmap", "misuse: vmap() of a page that is not allocated"},
      {"ioremap.ram", "misuse: ioremap() of RAM (arm64 refuses it)"},
      {"ioremap.no_device", "misuse: ioremap() of a physical range no device claims"},
      {"ioremap.bad_iounmap", "misuse: iounmap() of an address that is no ioremap() mapping"},
      {"ioremap.bad_access",
       "misuse: an io accessor on an unmapped, non-device or misaligned address"},
      {"kmap.unbalanced", "misuse: kunmap*() without a matching kmap*()"},
      {"kmap.nesting",
       "misuse: kmap_local/atomic released out of LIFO order, or nested deeper than KM_MAX_IDX"},
      {"vm.fault", "misuse: access to an unmapped, guard or read-only kernel address (oops)"},
      {"trace.unknown_free",
       "trace: a free of a pointer the trace never allocated (only with --strict-frees; not in "
       "bulk-allocated caches nor after lost events)"},
      {"trace.double_alloc",
       "trace: an allocation returned a pointer still allocated (a live Program handle bound "
       "again); not in bulk-allocated caches nor after lost events"},
      {"trace.double_free", "trace: a free of a pointer (a Program handle) already freed"},
      {"trace.page_double_alloc",
       "trace: mm_page_alloc returned a pfn still allocated (a live page handle bound again); "
       "not after lost events"},
      {"trace.invalid",
       "trace: a value no kernel produces: a successful allocation of order >= MAX_ORDER or of "
       "more than KMALLOC_MAX_SIZE bytes, a free of order >= MAX_ORDER"},
      {"oracle.overlap",
       "oracle: live allocations (objects, pool elements, pages, areas) never share a byte"},
      {"oracle.contents",
       "oracle: a read returns the bytes last written (or zeroed) since the allocation"},
      {"oracle.ksize", "oracle: kmalloc/kmem_cache_alloc give at least the bytes asked for"},
      {"oracle.kmalloc_size",
       "oracle: kmalloc's bytes_alloc is the size class the kernel's kmalloc_index() (SLOB: "
       "size header, large kmalloc: page order) picks"},
      {"oracle.page", "oracle: an allocated page holds a reference and is on no free list"},
      {"oracle.mempool",
       "oracle: the reserve is lent before mempool_alloc fails or sleeps, refilled by "
       "mempool_free below min_nr and not beyond, and sleepers are served in order"},
      {"oracle.vmap",
       "oracle: an area maps each page (vmap: its pages, ioremap: its range), its guard page "
       "is unmapped, and a freed area is unmapped"},
      {"kvmalloc.too_large", "misuse: kvmalloc() of more than INT_MAX bytes (WARN_ON_ONCE)"},
  };
  for (const auto& [k, d] : kDesc)
    if (id == k) return d;
  return "";
}

CheckEngine::CheckEngine(mm::Mm& m, CheckOptions opts)
    : mm_(m),
      opts_(std::move(opts)),
      sel_(CheckSelection::parse(opts_.checks)),
      checkers_(make_all_checkers()) {
  // A checker none of whose invariants is selected does not run at all.
  std::erase_if(checkers_, [this](const std::unique_ptr<Checker>& c) {
    return std::none_of(c->invariants().begin(), c->invariants().end(),
                        [this](const std::string& id) { return sel_.enabled(id); });
  });
  mm_.attach(this);
}

CheckEngine::~CheckEngine() {
  mm_.detach(this);
}

Reporter CheckEngine::reporter() {
  return Reporter(sel_, violations_, op_index_, op_name_, opts_.max_reports_per_invariant,
                  opts_.capture_stacks);
}

void CheckEngine::begin_op(std::int64_t index, std::string name) {
  op_index_ = index;
  op_name_ = std::move(name);
  touched_.clear();
}

void CheckEngine::begin_op(std::int64_t index, const char* name) {
  op_index_ = index;
  op_name_.assign(name);
  touched_.clear();
}

void CheckEngine::end_op() {
  ++ops_;
  if (opts_.incremental && !touched_.empty()) {
    Reporter r = reporter();
    for (auto& c : checkers_) c->incremental(mm_, touched_, r);
  }
  touched_.clear();
  if (opts_.full_every && ops_ % opts_.full_every == 0) full_sweep();
}

void CheckEngine::full_sweep() {
  ++sweeps_;
  Reporter r = reporter();
  for (auto& c : checkers_) c->full(mm_, r);
}

void CheckEngine::mm_page_alloc(std::uint64_t pfn, unsigned order, std::uint32_t, int) {
  if (pfn != mm::NO_PAGE) touched_.add(pfn, std::uint64_t{1} << order);
}
void CheckEngine::mm_page_free(std::uint64_t pfn, unsigned order) {
  touched_.add(pfn, std::uint64_t{1} << order);
}
void CheckEngine::mm_page_alloc_zone_locked(std::uint64_t pfn, unsigned order, int, bool) {
  touched_.add(pfn, std::uint64_t{1} << order);
}
void CheckEngine::mm_page_pcpu_drain(std::uint64_t pfn, unsigned order, int) {
  touched_.add(pfn, std::uint64_t{1} << order);
}
void CheckEngine::mm_page_alloc_extfrag(std::uint64_t pfn, unsigned, unsigned fallback_order, int,
                                        int, bool) {
  touched_.add(pfn, std::uint64_t{1} << fallback_order);
}
void CheckEngine::pages_touched(std::uint64_t pfn, std::uint64_t nr) {
  touched_.add(pfn, nr);
}
void CheckEngine::zone_watermark_pass(const mm::WatermarkPass& w) {
  touched_.watermarks.push_back(w);
}
void CheckEngine::kmalloc(std::uint64_t ptr, std::uint64_t, std::uint64_t, std::uint32_t, int,
                          bool) {
  if (!mm::ZERO_OR_NULL_PTR(ptr)) touched_.objects.emplace_back(ptr, true);
}
void CheckEngine::kmem_cache_alloc(std::uint64_t ptr, std::uint64_t, std::uint64_t, std::uint32_t,
                                   int, bool) {
  if (ptr) touched_.objects.emplace_back(ptr, true);
}
void CheckEngine::kfree(std::uint64_t ptr) {
  if (!mm::ZERO_OR_NULL_PTR(ptr)) touched_.objects.emplace_back(ptr, false);
}
void CheckEngine::kmem_cache_free(std::uint64_t ptr, const std::string&) {
  touched_.objects.emplace_back(ptr, false);
}

void CheckEngine::vm_area_changed(std::uint64_t start, std::uint64_t end) {
  touched_.vm_ranges.emplace_back(start, end);
}
void CheckEngine::purge_vmap_area_lazy(std::uint64_t start, std::uint64_t end, std::uint64_t) {
  touched_.vm_flushes.emplace_back(start, end);
}

void CheckEngine::finish() {
  full_sweep();
  if (!opts_.report_leaks) return;
  bool any = false;
  Violation v = SlabChecker::leak_report(mm_, &any);
  if (any) {
    Reporter r = reporter();
    r.report(std::move(v));
  }
}

void CheckEngine::report(Violation v) {
  Reporter r = reporter();
  r.report(std::move(v));
}

void CheckEngine::misuse(const mm::Misuse& m) {
  touched_.misuse = true;
  if (!opts_.record_misuse) return;
  // VM kinds follow the slab and KASAN kinds, which follow every
  // page-allocator kind in MisuseKind.
  if (m.kind >= mm::kFirstVmMisuse) {
    Reporter r = reporter();
    r.report(vm_misuse_violation(mm_, m));
    return;
  }
  if (m.kind >= mm::MisuseKind::slab_double_free) {
    Reporter r = reporter();
    r.report(slab_misuse_violation(mm_, m));
    return;
  }
  std::vector<std::string> details;
  std::string title;
  if (m.pfn != mm::NO_PAGE && mm_.pfn_valid(m.pfn)) {
    title = fmt::format("BUG: Bad page state in process mmfuzz  pfn:{:05x}", m.pfn);
  } else if (m.pfn != mm::NO_PAGE) {
    title = fmt::format("BUG: Bad page: pfn:{:#x} is not a page of this machine", m.pfn);
  } else if (m.addr) {
    title = fmt::format("BUG: Bad page address {:#018x}", m.addr);
  } else {
    title = fmt::format("WARNING: {}() misuse", m.api);
  }
  Violation v = page_violation(mm_, ViolationKind::misuse, mm::misuse_id(m.kind), std::move(title),
                               mm_.pfn_valid(m.pfn) ? m.pfn : mm::NO_PAGE, {});
  if (m.pfn != mm::NO_PAGE && v.pfns.empty()) v.pfns.push_back(m.pfn);
  if (m.addr) v.addrs.push_back(m.addr);
  v.details.push_back(fmt::format("page dumped because: {}", m.detail));
  v.details.push_back(fmt::format("caller: {}(order {})", m.api, m.order));
  Reporter r = reporter();
  r.report(std::move(v));
}

}  // namespace mmfuzz::inv
