#include "analysis/kmem_stat.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "mm/page_alloc/gfp.h"
#include "program/program.h"

namespace mmfuzz::analysis {

namespace {

using NameIndex = std::unordered_map<std::string, std::uint32_t, prog::StringHash, std::equal_to<>>;

constexpr std::uint32_t kUnknownCache = 0;
constexpr const char* kUnknownCacheName = "(unknown cache)";

// Thousands separators, as perf's %'lu prints them under an English locale.
std::string commas(std::uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  const std::size_t n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string commas_signed(std::uint64_t a, std::uint64_t b) {  // a - b
  return a >= b ? commas(a - b) : "-" + commas(b - a);
}

std::string dashes(std::size_t n) {
  return std::string(n, '-');
}

// perf prints a resolved call site as "symbol+hexoffset" (no 0x, no size);
// ftrace gives "symbol+0x1c/0x40". Raw addresses stay as they are.
std::string perf_callsite(std::string_view cs) {
  const auto plus = cs.rfind("+0x");
  if (plus == std::string_view::npos || plus == 0) return std::string(cs);
  std::string_view off = cs.substr(plus + 3);
  if (const auto slash = off.find('/'); slash != std::string_view::npos) off = off.substr(0, slash);
  if (off.empty()) return std::string(cs);
  std::string out(cs.substr(0, plus));
  out += '+';
  out += off;
  return out;
}

}  // namespace

namespace {

// kmalloc_type() of 6.1: DMA first, then reclaimable, then accounted.
unsigned kmalloc_type(std::uint32_t gfp) {
  if (!(gfp & (mm::__GFP_DMA | mm::__GFP_RECLAIMABLE | mm::__GFP_ACCOUNT))) return 0;
  if (gfp & mm::__GFP_DMA) return 3;
  if (gfp & mm::__GFP_RECLAIMABLE) return 2;
  return 1;
}

}  // namespace

std::string kmalloc_cache_name(std::uint32_t gfp, std::uint64_t bytes_alloc,
                               std::uint64_t max_cache_size) {
  if (bytes_alloc > max_cache_size) return "kmalloc-large";
  static const char* const kPrefix[] = {"kmalloc-", "kmalloc-cg-", "kmalloc-rcl-", "dma-kmalloc-"};
  const char* prefix = kPrefix[kmalloc_type(gfp)];
  if (bytes_alloc >= (1u << 20) && bytes_alloc % (1u << 20) == 0)
    return fmt::format("{}{}M", prefix, bytes_alloc >> 20);
  if (bytes_alloc >= 1024 && bytes_alloc % 1024 == 0)
    return fmt::format("{}{}k", prefix, bytes_alloc >> 10);
  return fmt::format("{}{}", prefix, bytes_alloc);
}

double fragmentation_percent(std::uint64_t bytes_req, std::uint64_t bytes_alloc) {
  if (bytes_alloc == 0) return 0.0;
  return 100.0 - 100.0 * static_cast<double>(bytes_req) / static_cast<double>(bytes_alloc);
}

namespace {

constexpr std::array<std::pair<const char*, SlabSortKey>, 6> kSlabKeys = {{
    {"ptr", SlabSortKey::ptr},
    {"callsite", SlabSortKey::callsite},
    {"hit", SlabSortKey::hit},
    {"bytes", SlabSortKey::bytes},
    {"frag", SlabSortKey::frag},
    {"pingpong", SlabSortKey::pingpong},
}};
constexpr std::array<std::pair<const char*, PageSortKey>, 7> kPageKeys = {{
    {"page", PageSortKey::page},
    {"callsite", PageSortKey::callsite},
    {"hit", PageSortKey::hit},
    {"bytes", PageSortKey::bytes},
    {"order", PageSortKey::order},
    {"migtype", PageSortKey::migtype},
    {"gfp", PageSortKey::gfp},
}};

template <typename Table, typename Key>
std::string key_names(const Table& table, const std::vector<Key>& keys) {
  std::string out;
  for (const Key k : keys)
    for (const auto& [name, key] : table)
      if (key == k) out += (out.empty() ? "" : ",") + std::string(name);
  return out;
}

}  // namespace

StatSort parse_stat_sort(std::string_view keys) {
  StatSort out;
  std::vector<SlabSortKey> slab;
  std::vector<PageSortKey> page;
  std::size_t pos = 0;
  while (pos <= keys.size()) {
    const std::size_t comma = std::min(keys.find(',', pos), keys.size());
    const std::string_view tok = keys.substr(pos, comma - pos);
    pos = comma + 1;
    bool known = false;
    for (const auto& [name, k] : kSlabKeys)
      if (tok == name) slab.push_back(k), known = true;
    for (const auto& [name, k] : kPageKeys)
      if (tok == name) page.push_back(k), known = true;
    if (!known)
      throw std::invalid_argument(fmt::format(
          "unknown sort key '{}' (slab keys: ptr,callsite,hit,bytes,frag,pingpong; page keys: "
          "page,callsite,hit,bytes,order,migtype,gfp)",
          tok));
  }
  if (!slab.empty()) out.slab = std::move(slab);
  if (!page.empty()) out.page = std::move(page);
  return out;
}

std::string slab_sort_names(const std::vector<SlabSortKey>& keys) {
  return key_names(kSlabKeys, keys);
}
std::string page_sort_names(const std::vector<PageSortKey>& keys) {
  return key_names(kPageKeys, keys);
}

const char* migratetype_abbrev(int mt) {
  static const char* const kNames[] = {"UNMOVABL", "MOVABLE", "RECLAIM",
                                       "HIGHATOM", "CMA",     "ISOLATE"};
  return mt >= 0 && mt < static_cast<int>(std::size(kNames)) ? kNames[mt] : "UNKNOWN";
}

std::string compact_gfp(std::uint32_t gfp) {
  // perf's abbreviations of the flag names format_gfp prints.
  static const std::unordered_map<std::string_view, std::string_view> kShort = {
      {"GFP_TRANSHUGE", "THP"},
      {"GFP_TRANSHUGE_LIGHT", "THL"},
      {"GFP_HIGHUSER_MOVABLE", "HUM"},
      {"GFP_HIGHUSER", "HU"},
      {"GFP_USER", "U"},
      {"GFP_KERNEL_ACCOUNT", "KAC"},
      {"GFP_KERNEL", "K"},
      {"GFP_NOFS", "NF"},
      {"GFP_ATOMIC", "A"},
      {"GFP_NOIO", "NI"},
      {"GFP_NOWAIT", "NW"},
      {"GFP_DMA", "D"},
      {"__GFP_HIGHMEM", "HM"},
      {"GFP_DMA32", "D32"},
      {"__GFP_HIGH", "H"},
      {"__GFP_ATOMIC", "_A"},
      {"__GFP_IO", "I"},
      {"__GFP_FS", "F"},
      {"__GFP_NOWARN", "NWR"},
      {"__GFP_RETRY_MAYFAIL", "R"},
      {"__GFP_NOFAIL", "NF"},
      {"__GFP_NORETRY", "NR"},
      {"__GFP_COMP", "C"},
      {"__GFP_ZERO", "Z"},
      {"__GFP_NOMEMALLOC", "NMA"},
      {"__GFP_MEMALLOC", "MA"},
      {"__GFP_HARDWALL", "HW"},
      {"__GFP_THISNODE", "TN"},
      {"__GFP_RECLAIMABLE", "RC"},
      {"__GFP_MOVABLE", "M"},
      {"__GFP_ACCOUNT", "AC"},
      {"__GFP_WRITE", "WR"},
      {"__GFP_RECLAIM", "R"},
      {"__GFP_DIRECT_RECLAIM", "DR"},
      {"__GFP_KSWAPD_RECLAIM", "KR"},
  };
  const std::string full = mm::format_gfp(gfp);
  std::string out;
  std::size_t pos = 0;
  while (pos <= full.size()) {
    const std::size_t bar = std::min(full.find('|', pos), full.size());
    const std::string_view tok = std::string_view(full).substr(pos, bar - pos);
    pos = bar + 1;
    const auto it = kShort.find(tok);
    if (!out.empty()) out += '|';
    out += it == kShort.end() ? tok : it->second;  // unknown bits stay as printed
  }
  return out;
}

struct KmemStat::State {
  struct LiveObj {
    std::uint32_t callsite;
    std::uint32_t cache;
    std::uint64_t bytes_alloc;
    std::uint64_t bytes_req;
    int cpu;
    bool kmalloc;
  };
  struct LivePage {
    unsigned order;
    int cpu;
    std::uint32_t task;
    int migratetype;
    std::uint32_t gfp;
  };
  struct PtrStat {
    std::uint32_t callsite = 0;
    std::uint64_t hit = 0, bytes_alloc = 0, bytes_req = 0, pingpong = 0;
  };
  struct PageAgg {
    std::uint64_t nr_alloc = 0, alloc_bytes = 0, nr_free = 0, free_bytes = 0;
    std::uint32_t task = 0;  // the last allocation's (perf keeps its last call site)
  };
  // (task or pfn, order, migratetype, gfp): perf's page table keys.
  using PageKey = std::tuple<std::uint64_t, unsigned, int, std::uint32_t>;

  std::unordered_map<std::uint64_t, LiveObj> live;
  std::unordered_map<std::uint64_t, LivePage> live_pages;
  NameIndex callsite_index;
  std::vector<SlabCallsite> callsites;
  NameIndex cache_index;
  std::vector<SlabCache> caches;
  // Where objects of a call site went, learned from kmem_cache_free's name:
  // by (call site, bytes_alloc), and by call site alone.
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint32_t> cache_by_site_size;
  std::unordered_map<std::uint32_t, std::uint32_t> cache_by_site;
  std::unordered_map<std::uint64_t, PtrStat> pointers;  // per_pointer only
  NameIndex task_index;
  std::vector<std::string> tasks;
  std::map<PageKey, PageAgg> page_callers;
  std::map<PageKey, PageAgg> page_allocs;  // per_pointer only
  std::vector<TraceMarker> markers;
  std::uint64_t markers_dropped = 0;
  ExtfragHistogram extfrag;

  State() {
    caches.push_back(SlabCache{});
    caches.back().name = kUnknownCacheName;
    cache_index.emplace(kUnknownCacheName, kUnknownCache);
  }

  static std::uint32_t intern(NameIndex& index, std::string_view name, std::size_t next) {
    if (const auto it = index.find(name); it != index.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(next);
    index.emplace(std::string(name), id);
    return id;
  }
  std::uint32_t callsite(std::string_view name) {
    const std::uint32_t id = intern(callsite_index, name, callsites.size());
    if (id == callsites.size()) {
      callsites.push_back(SlabCallsite{});
      callsites.back().call_site = std::string(name);
    }
    return id;
  }
  std::uint32_t task(std::string_view comm) {
    if (comm.empty()) comm = "-";
    const std::uint32_t id = intern(task_index, comm, tasks.size());
    if (id == tasks.size()) tasks.emplace_back(comm);
    return id;
  }
  // kmalloc caches by (bytes_alloc, kmalloc type): no name formatting per event.
  std::unordered_map<std::uint64_t, std::uint32_t> kmalloc_ids;
  std::uint32_t kmalloc_cache(std::uint32_t gfp, std::uint64_t bytes_alloc, std::uint64_t max) {
    const std::uint64_t key = bytes_alloc * 4 + kmalloc_type(gfp);
    if (const auto it = kmalloc_ids.find(key); it != kmalloc_ids.end()) return it->second;
    const std::uint32_t id = cache(kmalloc_cache_name(gfp, bytes_alloc, max));
    kmalloc_ids.emplace(key, id);
    return id;
  }
  std::uint32_t cache(std::string_view name) {
    const std::uint32_t id = intern(cache_index, name, caches.size());
    if (id == caches.size()) {
      caches.push_back(SlabCache{});
      caches.back().name = std::string(name);
    }
    return id;
  }

  // The cache of an object its trace never named: see SlabCache.
  std::uint32_t cache_by_call_site(const LiveObj& o, const KmemStatOptions& opts) const {
    if (const auto it = cache_by_site_size.find({o.callsite, o.bytes_alloc});
        it != cache_by_site_size.end())
      return it->second;
    if (const auto it = opts.cache_names.find(callsites[o.callsite].call_site);
        it != opts.cache_names.end())
      if (const auto c = cache_index.find(it->second); c != cache_index.end()) return c->second;
    if (const auto it = cache_by_site.find(o.callsite); it != cache_by_site.end())
      return it->second;
    return kUnknownCache;
  }
  void learn(const LiveObj& o, std::uint32_t cache) {
    cache_by_site_size[{o.callsite, o.bytes_alloc}] = cache;
    cache_by_site.try_emplace(o.callsite, cache);
  }
  // Moves an allocation's counts from one cache row to another.
  static void move(std::vector<SlabCache>& rows, const LiveObj& o, std::uint32_t to) {
    SlabCache& from = rows[o.cache];
    --from.allocs;
    from.bytes_alloc -= o.bytes_alloc;
    from.bytes_req -= o.bytes_req;
    SlabCache& row = rows[to];
    ++row.allocs;
    row.bytes_alloc += o.bytes_alloc;
    row.bytes_req += o.bytes_req;
  }
};

KmemStat::KmemStat(KmemStatOptions opts) : opts_(std::move(opts)), st_(std::make_unique<State>()) {
  // The first pass's caches exist from the start, so lookups find them.
  for (const auto& [site, name] : opts_.cache_names) st_->cache(name);
}
KmemStat::~KmemStat() = default;
KmemStat::KmemStat(KmemStat&&) noexcept = default;
KmemStat& KmemStat::operator=(KmemStat&&) noexcept = default;

void KmemStat::add_alloc(const TraceEvent& ev) {
  State& s = *st_;
  const bool is_kmalloc = ev.type == EventType::kmalloc || ev.type == EventType::kmalloc_node;
  // perf counts every allocation event, NULL results included, in its
  // totals and callsite rows. A kmalloc above KMALLOC_MAX_CACHE_SIZE is
  // also an mm_page_alloc: perf counts the two independently, so do we.
  ++slab_.nr_allocs;
  slab_.bytes_req += ev.bytes_req;
  slab_.bytes_alloc += ev.bytes_alloc;
  // perf's "Cross CPU allocations": a node asked for that is not the CPU's.
  if (ev.node >= 0) {
    const auto cpu = static_cast<std::size_t>(ev.cpu);
    const int cpu_node = ev.cpu >= 0 && cpu < opts_.cpu_node.size() ? opts_.cpu_node[cpu] : 0;
    if (ev.node != cpu_node) ++slab_.nr_cross_node_allocs;
  }
  const std::uint32_t cs = s.callsite(ev.call_site);
  SlabCallsite& c = s.callsites[cs];
  ++c.hit;
  c.bytes_alloc += ev.bytes_alloc;
  c.bytes_req += ev.bytes_req;
  if (ev.ptr == 0) {
    ++slab_.failed_allocs;
    return;
  }
  if (opts_.per_pointer) {
    State::PtrStat& p = s.pointers[ev.ptr];
    p.callsite = cs;
    ++p.hit;
    p.bytes_alloc += ev.bytes_alloc;
    p.bytes_req += ev.bytes_req;
  }
  const std::uint32_t cache =
      is_kmalloc        ? s.kmalloc_cache(ev.gfp, ev.bytes_alloc, opts_.kmalloc_max_cache_size)
      : ev.name.empty() ? kUnknownCache
                        : s.cache(ev.name);  // kernels that name the cache here
  SlabCache& row = s.caches[cache];
  ++row.allocs;
  row.bytes_alloc += ev.bytes_alloc;
  row.bytes_req += ev.bytes_req;
  const State::LiveObj obj{cs, cache, ev.bytes_alloc, ev.bytes_req, ev.cpu, is_kmalloc};
  auto [it, inserted] = s.live.try_emplace(ev.ptr, obj);
  if (!inserted) {
    // The old object's free was not traced (e.g. a bulk free): it leaves
    // the live set here and stays counted as never freed.
    ++slab_.alloc_over_live;
    slab_.live_bytes_alloc -= it->second.bytes_alloc;
    it->second = obj;
  }
  slab_.live_bytes_alloc += ev.bytes_alloc;
  slab_.live_objects = s.live.size();
}

void KmemStat::add_free(const TraceEvent& ev) {
  State& s = *st_;
  const bool named = ev.type == EventType::kmem_cache_free && !ev.name.empty();
  if (ev.ptr == 0) {
    // kfree(NULL) is traced and frees nothing.
    ++(ev.type == EventType::kfree ? slab_.kfree_null : slab_.cache_free_null);
    return;
  }
  const auto it = s.live.find(ev.ptr);
  if (it == s.live.end()) {
    ++(ev.type == EventType::kfree ? slab_.free_only_kfree : slab_.free_only_cache);
    SlabCache& row = s.caches[named ? s.cache(ev.name) : kUnknownCache];
    ++row.frees;
    ++row.free_only;
    return;
  }
  const State::LiveObj obj = it->second;
  s.live.erase(it);
  ++slab_.nr_frees;
  slab_.bytes_freed += obj.bytes_alloc;
  slab_.live_bytes_alloc -= obj.bytes_alloc;
  slab_.live_objects = s.live.size();
  std::uint32_t cache = obj.cache;
  if (!obj.kmalloc && named) {
    // 6.1 names the cache only at the free: move the object there, and
    // remember where its call site's objects of this size go.
    cache = s.cache(ev.name);
    s.learn(obj, cache);
  } else if (!obj.kmalloc && cache == kUnknownCache) {
    cache = s.cache_by_call_site(obj, opts_);  // freed by kfree
    if (cache != kUnknownCache) ++s.caches[cache].by_call_site;
  }
  if (cache != obj.cache) State::move(s.caches, obj, cache);
  SlabCache& row = s.caches[cache];
  ++row.frees;
  if (ev.cpu != obj.cpu) {
    ++slab_.nr_pingpong;
    ++s.callsites[obj.callsite].pingpong;
    ++row.pingpong;
    if (opts_.per_pointer) ++s.pointers[ev.ptr].pingpong;
  }
}

void KmemStat::add_page_alloc(const TraceEvent& ev) {
  State& s = *st_;
  const std::uint64_t bytes = ev.order < 40 ? opts_.page_size << ev.order : 0;
  ++page_.nr_allocs;
  page_.alloc_bytes += bytes;
  if (page_alloc_failed(ev)) {
    ++page_.nr_fails;
    page_.fail_bytes += bytes;
    return;
  }
  if (ev.order < kStatOrders && ev.migratetype >= 0 &&
      static_cast<unsigned>(ev.migratetype) < kStatMigratetypes)
    ++page_.order_mt[ev.order][static_cast<unsigned>(ev.migratetype)];
  else
    ++page_.out_of_table;
  const State::LivePage lp{ev.order, ev.cpu, s.task(ev.comm), ev.migratetype, ev.gfp};
  State::PageAgg& caller = s.page_callers[{lp.task, lp.order, lp.migratetype, lp.gfp}];
  ++caller.nr_alloc;
  caller.alloc_bytes += bytes;
  if (opts_.per_pointer) {
    State::PageAgg& a = s.page_allocs[{ev.pfn, lp.order, lp.migratetype, lp.gfp}];
    ++a.nr_alloc;
    a.alloc_bytes += bytes;
    a.task = lp.task;
  }
  auto [it, inserted] = s.live_pages.try_emplace(ev.pfn, lp);
  if (!inserted) {
    ++page_.alloc_over_live;
    it->second = lp;
  }
  page_.live_pages = s.live_pages.size();
}

void KmemStat::add_page_free(const TraceEvent& ev) {
  State& s = *st_;
  // perf sizes a free by the free's own order.
  const std::uint64_t bytes = ev.order < 40 ? opts_.page_size << ev.order : 0;
  ++page_.nr_frees;
  page_.free_bytes += bytes;
  const auto it = s.live_pages.find(ev.pfn);
  if (it == s.live_pages.end()) {
    ++page_.nr_nomatch;
    page_.nomatch_bytes += bytes;
    return;
  }
  const State::LivePage lp = it->second;
  if (lp.cpu != ev.cpu) ++page_.cross_cpu_frees;
  s.live_pages.erase(it);
  page_.live_pages = s.live_pages.size();
  // perf credits the free to the allocation's rows.
  State::PageAgg& caller = s.page_callers[{lp.task, lp.order, lp.migratetype, lp.gfp}];
  ++caller.nr_free;
  caller.free_bytes += bytes;
  if (opts_.per_pointer) {
    State::PageAgg& a = s.page_allocs[{ev.pfn, lp.order, lp.migratetype, lp.gfp}];
    ++a.nr_free;
    a.free_bytes += bytes;
  }
}

void KmemStat::add_marker(const TraceEvent& ev) {
  // A recorder marks phases, not every event: a thousand is plenty, and
  // bounds memory against a trace that marks everything.
  constexpr std::size_t kMaxTraceMarkers = 1000;
  if (st_->markers.size() >= kMaxTraceMarkers) {
    ++st_->markers_dropped;
    return;
  }
  st_->markers.push_back({ev.ts_ns, events_, std::string(ev.fields)});
}

void KmemStat::add(const TraceEvent& ev) {
  ++events_;
  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      add_alloc(ev);
      break;
    case EventType::kfree:
    case EventType::kmem_cache_free:
      add_free(ev);
      break;
    case EventType::mm_page_alloc:
      add_page_alloc(ev);
      break;
    case EventType::mm_page_free:
      add_page_free(ev);
      break;
    // 6.1 emits mm_page_free_batched after an mm_page_free of the same page:
    // counting it would count the free twice. perf ignores it as well.
    case EventType::mm_page_free_batched:
      ++page_.batched_frees;
      break;
    // Pages moving between the buddy lists and the per-CPU lists: no
    // allocation or free of the caller's.
    case EventType::mm_page_alloc_zone_locked:
      ++page_.zone_locked;
      break;
    case EventType::mm_page_pcpu_drain:
      ++page_.pcpu_drain;
      break;
    case EventType::mm_page_alloc_extfrag:
      ++page_.extfrag;
      st_->extfrag.add(ev.ts_ns, ev.fragmenting, ev.change_ownership);
      break;
    case EventType::marker:
      add_marker(ev);
      break;
    default:
      break;
  }
}

const std::vector<TraceMarker>& KmemStat::markers() const {
  return st_->markers;
}
std::uint64_t KmemStat::markers_dropped() const {
  return st_->markers_dropped;
}
const ExtfragHistogram& KmemStat::extfrag() const {
  return st_->extfrag;
}

namespace {

template <typename T>
int cmp3(const T& a, const T& b) {
  return a < b ? -1 : b < a ? 1 : 0;
}

// > 0: a sorts first. Larger first for every key; names A to Z.
int slab_cmp(SlabSortKey k, const SlabCallsite& a, const SlabCallsite& b) {
  switch (k) {
    case SlabSortKey::ptr:
      return cmp3(a.ptr, b.ptr);
    case SlabSortKey::callsite:
      return cmp3(b.call_site, a.call_site);
    case SlabSortKey::hit:
      return cmp3(a.hit, b.hit);
    case SlabSortKey::bytes:
      return cmp3(a.bytes_alloc, b.bytes_alloc);
    case SlabSortKey::frag:
      return cmp3(a.frag(), b.frag());
    case SlabSortKey::pingpong:
      return cmp3(a.pingpong, b.pingpong);
  }
  return 0;
}

int page_cmp(PageSortKey k, const PageStatRow& a, const PageStatRow& b) {
  switch (k) {
    case PageSortKey::page:
      return cmp3(a.pfn, b.pfn);
    case PageSortKey::callsite:
      return cmp3(b.callsite, a.callsite);
    case PageSortKey::hit:
      return cmp3(a.nr_alloc, b.nr_alloc);
    case PageSortKey::bytes:
      return cmp3(a.alloc_bytes, b.alloc_bytes);
    case PageSortKey::order:
      return cmp3(a.order, b.order);
    case PageSortKey::migtype:
      return cmp3(a.migratetype, b.migratetype);
    case PageSortKey::gfp:
      return cmp3(a.gfp, b.gfp);
  }
  return 0;
}

// Full ties (perf leaves them in tree order) by name, then pointer: the
// same trace always prints the same table.
void sort_rows(std::vector<SlabCallsite>& v, const std::vector<SlabSortKey>& keys) {
  std::sort(v.begin(), v.end(), [&](const SlabCallsite& a, const SlabCallsite& b) {
    for (const SlabSortKey k : keys)
      if (const int c = slab_cmp(k, a, b)) return c > 0;
    return std::tie(a.call_site, a.ptr) < std::tie(b.call_site, b.ptr);
  });
}

void sort_rows(std::vector<PageStatRow>& v, const std::vector<PageSortKey>& keys) {
  std::sort(v.begin(), v.end(), [&](const PageStatRow& a, const PageStatRow& b) {
    for (const PageSortKey k : keys)
      if (const int c = page_cmp(k, a, b)) return c > 0;
    return std::tie(a.callsite, a.pfn, a.order, a.migratetype, a.gfp) <
           std::tie(b.callsite, b.pfn, b.order, b.migratetype, b.gfp);
  });
}

}  // namespace

std::vector<SlabCallsite> KmemStat::callsites() const {
  return callsites(StatSort{}.slab);
}

std::vector<SlabCallsite> KmemStat::callsites(const std::vector<SlabSortKey>& keys) const {
  std::vector<SlabCallsite> v = st_->callsites;
  sort_rows(v, keys);
  return v;
}

std::vector<SlabCallsite> KmemStat::pointers(const std::vector<SlabSortKey>& keys) const {
  std::vector<SlabCallsite> v;
  v.reserve(st_->pointers.size());
  for (const auto& [ptr, p] : st_->pointers) {
    SlabCallsite r;
    r.ptr = ptr;
    r.call_site = st_->callsites[p.callsite].call_site;
    r.hit = p.hit;
    r.bytes_alloc = p.bytes_alloc;
    r.bytes_req = p.bytes_req;
    r.pingpong = p.pingpong;
    v.push_back(std::move(r));
  }
  sort_rows(v, keys);
  return v;
}

namespace {

template <typename Map>
std::vector<PageStatRow> page_rows(const Map& m, const std::vector<std::string>& tasks,
                                   bool by_pfn) {
  std::vector<PageStatRow> v;
  v.reserve(m.size());
  for (const auto& [key, agg] : m) {
    const auto& [who, order, mt, gfp] = key;
    PageStatRow r;
    if (by_pfn) r.pfn = who;
    r.callsite = tasks[by_pfn ? agg.task : who];
    r.order = order;
    r.migratetype = mt;
    r.gfp = gfp;
    r.nr_alloc = agg.nr_alloc;
    r.alloc_bytes = agg.alloc_bytes;
    r.nr_free = agg.nr_free;
    r.free_bytes = agg.free_bytes;
    v.push_back(std::move(r));
  }
  return v;
}

}  // namespace

std::vector<PageStatRow> KmemStat::page_callers(const std::vector<PageSortKey>& keys) const {
  std::vector<PageStatRow> v = page_rows(st_->page_callers, st_->tasks, false);
  sort_rows(v, keys);
  return v;
}

std::vector<PageStatRow> KmemStat::page_allocs(const std::vector<PageSortKey>& keys) const {
  std::vector<PageStatRow> v = page_rows(st_->page_allocs, st_->tasks, true);
  sort_rows(v, keys);
  return v;
}

std::vector<SlabCache> KmemStat::caches() const {
  std::vector<SlabCache> rows = st_->caches;
  // Live objects the trace never named: placed by call site now that every
  // free has been seen.
  for (const auto& [ptr, o] : st_->live) {
    if (o.kmalloc || o.cache != kUnknownCache) continue;
    const std::uint32_t to = st_->cache_by_call_site(o, opts_);
    if (to == kUnknownCache) continue;
    State::move(rows, o, to);
    ++rows[to].by_call_site;
  }
  std::vector<SlabCache> v;
  for (SlabCache& c : rows)
    if (c.allocs || c.frees) v.push_back(std::move(c));
  std::sort(v.begin(), v.end(), [](const SlabCache& a, const SlabCache& b) {
    if (a.bytes_alloc != b.bytes_alloc) return a.bytes_alloc > b.bytes_alloc;
    if (a.allocs != b.allocs) return a.allocs > b.allocs;
    if (a.frees != b.frees) return a.frees > b.frees;
    return a.name < b.name;
  });
  return v;
}

std::vector<LiveCallsite> KmemStat::live_by_callsite() const {
  std::map<std::pair<std::uint32_t, std::uint32_t>, LiveCallsite> by;
  for (const auto& [ptr, o] : st_->live) {
    const std::uint32_t cache =
        o.kmalloc || o.cache != kUnknownCache ? o.cache : st_->cache_by_call_site(o, opts_);
    LiveCallsite& r = by[{o.callsite, cache}];
    ++r.objects;
    r.bytes_alloc += o.bytes_alloc;
    r.bytes_req += o.bytes_req;
  }
  std::vector<LiveCallsite> v;
  v.reserve(by.size());
  for (auto& [key, r] : by) {
    r.call_site = st_->callsites[key.first].call_site;
    r.cache = st_->caches[key.second].name;
    v.push_back(std::move(r));
  }
  std::sort(v.begin(), v.end(), [](const LiveCallsite& a, const LiveCallsite& b) {
    return std::tie(b.bytes_alloc, b.objects, a.call_site, a.cache) <
           std::tie(a.bytes_alloc, a.objects, b.call_site, b.cache);
  });
  return v;
}

namespace {

std::uint64_t per(std::uint64_t total, std::uint64_t n) {
  return n ? total / n : 0;
}

std::size_t rows_shown(unsigned top_n, std::size_t rows) {
  return top_n ? std::min<std::size_t>(top_n, rows) : rows;
}

// The table layout of perf's __print_slab_result(): --caller rows name the
// call site, --alloc rows the pointer.
void slab_table(std::string& out, const std::vector<SlabCallsite>& rows, unsigned top_n,
                bool by_ptr) {
  const std::string line = dashes(105) + "\n";
  out += line;
  out += fmt::format(" {:<34} |", by_ptr ? "Alloc Ptr" : "Callsite");
  out += " Total_alloc/Per | Total_req/Per   | Hit      | Ping-pong | Frag\n";
  out += line;
  const std::size_t n = rows_shown(top_n, rows.size());
  for (std::size_t i = 0; i < n; ++i) {
    const SlabCallsite& r = rows[i];
    out += fmt::format(" {:<34} | {:>9}/{:<5} | {:>9}/{:<5} | {:>8} | {:>9} | {:6.3f}%\n",
                       by_ptr ? fmt::format("{:#x}", r.ptr) : perf_callsite(r.call_site),
                       r.bytes_alloc, per(r.bytes_alloc, r.hit), r.bytes_req,
                       per(r.bytes_req, r.hit), r.hit, r.pingpong, r.frag());
  }
  if (n < rows.size())
    out +=
        " ...                                | ...             | ...             | ...      | "
        "...       | ...   \n";
  out += line;
}

// Ours, in the same style: allocations per cache, frees, live objects.
void cache_table(std::string& out, const std::vector<SlabCache>& rows, unsigned top_n) {
  const std::string line = dashes(139) + "\n";
  out += line;
  out += fmt::format(" {:<34} |", "Cache");
  out +=
      " Total_alloc/Per | Total_req/Per   | Allocs   | Frees    | Free-only | Live     | "
      "Ping-pong | Frag\n";
  out += line;
  const std::size_t n = rows_shown(top_n, rows.size());
  for (std::size_t i = 0; i < n; ++i) {
    const SlabCache& r = rows[i];
    out += fmt::format(
        " {:<34} | {:>9}/{:<5} | {:>9}/{:<5} | {:>8} | {:>8} | {:>9} | {:>8} | {:>9} | {:6.3f}%\n",
        r.name, r.bytes_alloc, per(r.bytes_alloc, r.allocs), r.bytes_req,
        per(r.bytes_req, r.allocs), r.allocs, r.frees, r.free_only, r.live(), r.pingpong, r.frag());
  }
  if (n < rows.size())
    out +=
        " ...                                | ...             | ...             | ...      | "
        "...      | ...       | ...      | ...       | ...   \n";
  out += line;
}

std::size_t gfp_width(const std::vector<PageStatRow>& rows) {
  std::size_t w = std::string_view("GFP flags").size();
  for (const PageStatRow& r : rows) w = std::max(w, compact_gfp(r.gfp).size());
  return w;
}

// perf's print_gfp_flags(): the compact names the page tables use.
void gfp_legend(std::string& out, const std::vector<PageStatRow>& rows) {
  std::vector<std::uint32_t> gfps;
  for (const PageStatRow& r : rows) gfps.push_back(r.gfp);
  std::sort(gfps.begin(), gfps.end());
  gfps.erase(std::unique(gfps.begin(), gfps.end()), gfps.end());
  std::size_t w = 0;
  for (const std::uint32_t g : gfps) w = std::max(w, compact_gfp(g).size());
  out += "#\n# GFP flags\n# ---------\n";
  for (const std::uint32_t g : gfps)
    out += fmt::format("# {:08x}: {:>{}}: {}\n", g, compact_gfp(g), w, mm::format_gfp(g));
}

// The layouts of perf's __print_page_caller_result() and
// __print_page_alloc_result(). perf prints the pfn in decimal.
void page_table(std::string& out, const std::vector<PageStatRow>& rows, unsigned top_n, bool by_pfn,
                std::size_t gw) {
  const std::string line = dashes(105) + "\n";
  out += "\n" + line;
  if (by_pfn) out += fmt::format(" {:<16} |", "PFN");
  out += fmt::format(" Total alloc (KB) | Hits      | Order | Mig.type | {:<{}} | Callsite\n",
                     "GFP flags", gw);
  out += line;
  const std::size_t n = rows_shown(top_n, rows.size());
  for (std::size_t i = 0; i < n; ++i) {
    const PageStatRow& r = rows[i];
    if (by_pfn) out += fmt::format(" {:>16} |", r.pfn);
    out +=
        fmt::format(" {:>16} | {:>9} | {:>5} | {:>8} | {:<{}} | {}\n", commas(r.alloc_bytes / 1024),
                    commas(r.nr_alloc), r.order, migratetype_abbrev(r.migratetype),
                    compact_gfp(r.gfp), gw, r.callsite.empty() ? "-" : r.callsite);
  }
  if (n < rows.size())
    out += fmt::format("{} ...              | ...       | ...   | ...      | {:<{}} | ...\n",
                       by_pfn ? " ...              |" : "", "...", gw);
  out += line;
}

// perf's column order is the migratetype number; its headings still follow
// the pre-4.4 order (Unmovable, Reclaimable, Movable). Same numbers in the
// same columns here, headed by what the numbers are on 6.1.
constexpr const char* kMtHeadings[] = {"Unmovable", "Movable", "Reclaimable", "HighAtomic",
                                       "CMA/Isolated"};

}  // namespace

std::string KmemStat::report(unsigned top_n) const {
  StatReportOptions ro;
  ro.top_n = top_n;
  return report(ro);
}

std::string KmemStat::report(const StatReportOptions& ro) const {
  std::string out;
  slab_table(out, callsites(ro.sort.slab), ro.top_n, false);
  if (ro.alloc) slab_table(out, pointers(ro.sort.slab), ro.top_n, true);
  out += "\n";
  cache_table(out, caches(), ro.top_n);
  slab_summary(out);
  if (ro.caller || ro.alloc) {
    const auto callers = page_callers(ro.sort.page);
    const std::size_t gw = gfp_width(callers);
    out += "\n";
    gfp_legend(out, callers);
    if (ro.caller) page_table(out, callers, ro.top_n, false, gw);
    if (ro.alloc) page_table(out, page_allocs(ro.sort.page), ro.top_n, true, gw);
    out += "# Callsite: the allocating task (ftrace's mm_page_alloc records no call site)\n";
  }
  page_summary(out);
  return out;
}

void KmemStat::slab_summary(std::string& out) const {
  const SlabTotals& s = slab_;
  out += "\nSUMMARY (SLAB allocator)\n========================\n";
  out += fmt::format("Total bytes requested: {}\n", commas(s.bytes_req));
  out += fmt::format("Total bytes allocated: {}\n", commas(s.bytes_alloc));
  out += fmt::format("Total bytes freed:     {}\n", commas(s.bytes_freed));
  if (s.bytes_alloc > s.bytes_freed)
    out += fmt::format("Net total bytes allocated: {}\n", commas(s.bytes_alloc - s.bytes_freed));
  out += fmt::format("Total bytes wasted on internal fragmentation: {}\n",
                     commas_signed(s.bytes_alloc, s.bytes_req));
  out += fmt::format("Internal fragmentation: {:f}%\n",
                     fragmentation_percent(s.bytes_req, s.bytes_alloc));
  out += fmt::format("Cross CPU allocations: {}/{}\n", commas(s.nr_cross_node_allocs),
                     commas(s.nr_allocs));
  out += "\nNot in perf kmem stat (SLAB)\n----------------------------\n";
  out += fmt::format("{:<38}: {}/{}\n", "Cross CPU frees (ping-pong)/matched",
                     commas(s.nr_pingpong), commas(s.nr_frees));
  out += fmt::format("{:<38}: {}\n", "kfree(NULL) calls", commas(s.kfree_null));
  out += fmt::format("{:<38}: {}\n", "kmem_cache_free(NULL) calls", commas(s.cache_free_null));
  out += fmt::format("{:<38}: {} (kfree {}, kmem_cache_free {})\n", "Free-only frees",
                     commas(s.free_only_kfree + s.free_only_cache), commas(s.free_only_kfree),
                     commas(s.free_only_cache));
  out += fmt::format("{:<38}: {}\n", "Failed allocations (NULL)", commas(s.failed_allocs));
  out += fmt::format("{:<38}: {}\n", "Allocations of a live pointer", commas(s.alloc_over_live));
  out += fmt::format("{:<38}: {} ({} bytes allocated)\n", "Live objects at the end",
                     commas(s.live_objects), commas(s.live_bytes_alloc));
  std::uint64_t by_site = 0;
  for (const SlabCache& c : caches()) by_site += c.by_call_site;
  out += fmt::format("{:<38}: {}\n", "Objects put in a cache by call site", commas(by_site));
}

void KmemStat::page_summary(std::string& out) const {
  const PageTotals& p = page_;
  auto kb = [](std::uint64_t b) { return commas(b / 1024); };
  auto row = [&](const char* label, std::uint64_t n, std::uint64_t bytes) {
    out += fmt::format("{:<30}: {:>16}   [ {:>16} KB ]\n", label, commas(n), kb(bytes));
  };
  out += "\nSUMMARY (page allocator)\n========================\n";
  row("Total allocation requests", p.nr_allocs, p.alloc_bytes);
  row("Total free requests", p.nr_frees, p.free_bytes);
  out += "\n";
  row("Total alloc+freed requests", p.alloc_freed(), p.alloc_freed_bytes());
  row("Total alloc-only requests", p.nr_allocs - p.alloc_freed(),
      p.alloc_bytes - p.alloc_freed_bytes());
  row("Total free-only requests", p.nr_nomatch, p.nomatch_bytes);
  out += "\n";
  row("Total allocation failures", p.nr_fails, p.fail_bytes);
  out += "\n";
  order_table(out);
  out += "\nNot in perf kmem stat (pages)\n-----------------------------\n";
  out += fmt::format("{:<46}: {}\n", "mm_page_free_batched (repeats, not counted)",
                     commas(p.batched_frees));
  out += fmt::format("{:<46}: {}\n", "mm_page_alloc_zone_locked (buddy -> pcp)",
                     commas(p.zone_locked));
  out += fmt::format("{:<46}: {}\n", "mm_page_pcpu_drain (pcp -> buddy)", commas(p.pcpu_drain));
  out += fmt::format("{:<46}: {}\n", "mm_page_alloc_extfrag", commas(p.extfrag));
  out += fmt::format("{:<46}: {}\n", "Cross CPU page frees", commas(p.cross_cpu_frees));
  out += fmt::format("{:<46}: {}\n", "Allocations of a live pfn", commas(p.alloc_over_live));
  out += fmt::format("{:<46}: {}\n", "Allocations outside the order table", commas(p.out_of_table));
  out += fmt::format("{:<46}: {}\n", "Live page allocations at the end", commas(p.live_pages));
}

// perf's order x migratetype table: 5 columns by migratetype number.
void KmemStat::order_table(std::string& out) const {
  const PageTotals& p = page_;
  out += fmt::format("{:>5}", "Order");
  for (const char* h : kMtHeadings) out += fmt::format("  {:>12}", h);
  out += "\n" + dashes(5);
  for (std::size_t m = 0; m < std::size(kMtHeadings); ++m) out += "  " + dashes(12);
  out += "\n";
  for (unsigned o = 0; o < kStatOrders; ++o) {
    out += fmt::format("{:>5}", o);
    for (unsigned m = 0; m + 1 < kStatMigratetypes; ++m) {
      // The last column holds CMA and, should one appear, Isolate.
      std::uint64_t n = p.order_mt[o][m];
      if (m + 2 == kStatMigratetypes) n += p.order_mt[o][m + 1];
      out += n ? fmt::format("  {:>12}", commas(n)) : fmt::format("  {:>12}", '.');
    }
    out += "\n";
  }
}

namespace {

nlohmann::json slab_rows_json(const std::vector<SlabCallsite>& rows, unsigned top_n, bool by_ptr) {
  nlohmann::json a = nlohmann::json::array();
  for (std::size_t i = 0; i < rows_shown(top_n, rows.size()); ++i) {
    const SlabCallsite& r = rows[i];
    nlohmann::json j = {{"call_site", r.call_site}, {"bytes_alloc", r.bytes_alloc},
                        {"bytes_req", r.bytes_req}, {"hit", r.hit},
                        {"pingpong", r.pingpong},   {"frag_percent", r.frag()}};
    if (by_ptr) j["ptr"] = fmt::format("{:#x}", r.ptr);
    a.push_back(std::move(j));
  }
  return a;
}

nlohmann::json page_rows_json(const std::vector<PageStatRow>& rows, unsigned top_n, bool by_pfn) {
  nlohmann::json a = nlohmann::json::array();
  for (std::size_t i = 0; i < rows_shown(top_n, rows.size()); ++i) {
    const PageStatRow& r = rows[i];
    nlohmann::json j = {{"task", r.callsite},
                        {"order", r.order},
                        {"migratetype", mm::migratetype_name(r.migratetype)},
                        {"gfp", mm::format_gfp(r.gfp)},
                        {"allocs", r.nr_alloc},
                        {"alloc_bytes", r.alloc_bytes},
                        {"frees", r.nr_free},
                        {"free_bytes", r.free_bytes}};
    if (by_pfn) j["pfn"] = r.pfn;
    a.push_back(std::move(j));
  }
  return a;
}

}  // namespace

nlohmann::json KmemStat::to_json(unsigned top_n) const {
  StatReportOptions ro;
  ro.top_n = top_n;
  return to_json(ro);
}

nlohmann::json KmemStat::to_json(const StatReportOptions& ro) const {
  nlohmann::json slab = slab_json(ro);
  nlohmann::json page = page_json();
  if (ro.caller || ro.alloc) {
    page["callers"] = page_rows_json(page_callers(ro.sort.page), ro.top_n, false);
    page["sort"] = page_sort_names(ro.sort.page);
  }
  if (ro.alloc) page["allocs"] = page_rows_json(page_allocs(ro.sort.page), ro.top_n, true);
  return {{"events", events_}, {"slab", std::move(slab)}, {"page", std::move(page)}};
}

nlohmann::json KmemStat::slab_json(const StatReportOptions& ro) const {
  using nlohmann::json;
  const SlabTotals& s = slab_;
  json slab = {
      {"total_bytes_requested", s.bytes_req},
      {"total_bytes_allocated", s.bytes_alloc},
      {"total_bytes_freed", s.bytes_freed},
      {"internal_fragmentation_percent", fragmentation_percent(s.bytes_req, s.bytes_alloc)},
      {"allocations", s.nr_allocs},
      {"cross_cpu_allocations", s.nr_cross_node_allocs},
      {"frees", s.nr_frees},
      {"cross_cpu_frees", s.nr_pingpong},
      {"kfree_null", s.kfree_null},
      {"kmem_cache_free_null", s.cache_free_null},
      {"free_only_kfree", s.free_only_kfree},
      {"free_only_kmem_cache_free", s.free_only_cache},
      {"failed_allocations", s.failed_allocs},
      {"allocations_of_live_pointer", s.alloc_over_live},
      {"live_objects", s.live_objects},
      {"live_bytes_allocated", s.live_bytes_alloc},
  };
  const auto cs = callsites(ro.sort.slab);
  slab["callsites"] = slab_rows_json(cs, ro.top_n, false);
  slab["callsites_total"] = cs.size();
  slab["callsites_sort"] = slab_sort_names(ro.sort.slab);
  if (ro.alloc) slab["pointers"] = slab_rows_json(pointers(ro.sort.slab), ro.top_n, true);
  const auto cc = caches();
  json jcc = json::array();
  for (std::size_t i = 0; i < rows_shown(ro.top_n, cc.size()); ++i)
    jcc.push_back({{"name", cc[i].name},
                   {"allocs", cc[i].allocs},
                   {"bytes_alloc", cc[i].bytes_alloc},
                   {"bytes_req", cc[i].bytes_req},
                   {"frees", cc[i].frees},
                   {"free_only", cc[i].free_only},
                   {"live", cc[i].live()},
                   {"by_call_site", cc[i].by_call_site},
                   {"pingpong", cc[i].pingpong},
                   {"frag_percent", cc[i].frag()}});
  slab["caches"] = std::move(jcc);
  slab["caches_total"] = cc.size();
  const auto live = live_by_callsite();
  json jl = json::array();
  for (std::size_t i = 0; i < rows_shown(ro.top_n, live.size()); ++i)
    jl.push_back({{"call_site", live[i].call_site},
                  {"cache", live[i].cache},
                  {"objects", live[i].objects},
                  {"bytes_alloc", live[i].bytes_alloc},
                  {"bytes_req", live[i].bytes_req}});
  slab["live_by_call_site"] = std::move(jl);
  return slab;
}

nlohmann::json KmemStat::page_json() const {
  using nlohmann::json;
  const PageTotals& p = page_;
  json order_mt = json::array();
  for (const auto& r : p.order_mt) order_mt.push_back(r);
  json mts = json::array();
  for (unsigned m = 0; m < kStatMigratetypes; ++m)
    mts.push_back(mm::migratetype_name(static_cast<int>(m)));
  return {
      {"allocation_requests", p.nr_allocs},
      {"allocation_bytes", p.alloc_bytes},
      {"free_requests", p.nr_frees},
      {"free_bytes", p.free_bytes},
      {"alloc_freed_requests", p.alloc_freed()},
      {"alloc_freed_bytes", p.alloc_freed_bytes()},
      {"alloc_only_requests", p.nr_allocs - p.alloc_freed()},
      {"alloc_only_bytes", p.alloc_bytes - p.alloc_freed_bytes()},
      {"free_only_requests", p.nr_nomatch},
      {"free_only_bytes", p.nomatch_bytes},
      {"allocation_failures", p.nr_fails},
      {"failure_bytes", p.fail_bytes},
      {"order_migratetype", std::move(order_mt)},
      {"migratetypes", std::move(mts)},
      {"outside_order_table", p.out_of_table},
      {"allocations_of_live_pfn", p.alloc_over_live},
      {"cross_cpu_frees", p.cross_cpu_frees},
      {"free_batched_not_counted", p.batched_frees},
      {"alloc_zone_locked", p.zone_locked},
      {"pcpu_drain", p.pcpu_drain},
      {"alloc_extfrag", p.extfrag},
      {"live_allocations", p.live_pages},
  };
}

}  // namespace mmfuzz::analysis
