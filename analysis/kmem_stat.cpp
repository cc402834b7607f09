#include "analysis/kmem_stat.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
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

bool page_alloc_failed(const TraceEvent& ev) {
  // 6.1 prints a failed mm_page_alloc with pfn=0 (the binary record has -1);
  // no page allocator hands out pfn 0 (reserved on x86, no RAM there on arm64).
  return ev.failed || ev.pfn == 0 || ev.pfn == ~std::uint64_t{0};
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
  };
  std::unordered_map<std::uint64_t, LiveObj> live;
  std::unordered_map<std::uint64_t, LivePage> live_pages;
  NameIndex callsite_index;
  std::vector<SlabCallsite> callsites;
  NameIndex cache_index;
  std::vector<SlabCache> caches;

  State() {
    caches.push_back(SlabCache{});
    caches.back().name = kUnknownCacheName;
    cache_index.emplace(kUnknownCacheName, kUnknownCache);
  }

  std::uint32_t callsite(std::string_view name) {
    if (const auto it = callsite_index.find(name); it != callsite_index.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(callsites.size());
    callsites.push_back(SlabCallsite{});
    callsites.back().call_site = std::string(name);
    callsite_index.emplace(std::string(name), id);
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
    if (const auto it = cache_index.find(name); it != cache_index.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(caches.size());
    caches.push_back(SlabCache{});
    caches.back().name = std::string(name);
    cache_index.emplace(std::string(name), id);
    return id;
  }
};

KmemStat::KmemStat(KmemStatOptions opts) : opts_(std::move(opts)), st_(std::make_unique<State>()) {}
KmemStat::~KmemStat() = default;
KmemStat::KmemStat(KmemStat&&) noexcept = default;
KmemStat& KmemStat::operator=(KmemStat&&) noexcept = default;

void KmemStat::add(const TraceEvent& ev) {
  ++events_;
  State& s = *st_;
  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node: {
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
        break;
      }
      const std::uint32_t cache =
          is_kmalloc ? s.kmalloc_cache(ev.gfp, ev.bytes_alloc, opts_.kmalloc_max_cache_size)
                     : kUnknownCache;
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
      break;
    }
    case EventType::kfree:
    case EventType::kmem_cache_free: {
      const bool named = ev.type == EventType::kmem_cache_free && !ev.name.empty();
      if (ev.ptr == 0) {
        // kfree(NULL) is traced and frees nothing.
        ++(ev.type == EventType::kfree ? slab_.kfree_null : slab_.cache_free_null);
        break;
      }
      const auto it = s.live.find(ev.ptr);
      if (it == s.live.end()) {
        ++(ev.type == EventType::kfree ? slab_.free_only_kfree : slab_.free_only_cache);
        SlabCache& row = s.caches[named ? s.cache(ev.name) : kUnknownCache];
        ++row.frees;
        ++row.free_only;
        break;
      }
      const State::LiveObj obj = it->second;
      s.live.erase(it);
      ++slab_.nr_frees;
      slab_.bytes_freed += obj.bytes_alloc;
      slab_.live_bytes_alloc -= obj.bytes_alloc;
      slab_.live_objects = s.live.size();
      std::uint32_t cache = obj.cache;
      if (!obj.kmalloc && named) {
        // 6.1 names the cache only at the free: move the object there.
        cache = s.cache(ev.name);
        SlabCache& unknown = s.caches[kUnknownCache];
        --unknown.allocs;
        unknown.bytes_alloc -= obj.bytes_alloc;
        unknown.bytes_req -= obj.bytes_req;
        SlabCache& to = s.caches[cache];
        ++to.allocs;
        to.bytes_alloc += obj.bytes_alloc;
        to.bytes_req += obj.bytes_req;
      }
      SlabCache& row = s.caches[cache];
      ++row.frees;
      if (ev.cpu != obj.cpu) {
        ++slab_.nr_pingpong;
        ++s.callsites[obj.callsite].pingpong;
        ++row.pingpong;
      }
      break;
    }
    case EventType::mm_page_alloc: {
      const std::uint64_t bytes = ev.order < 40 ? opts_.page_size << ev.order : 0;
      ++page_.nr_allocs;
      page_.alloc_bytes += bytes;
      if (page_alloc_failed(ev)) {
        ++page_.nr_fails;
        page_.fail_bytes += bytes;
        break;
      }
      if (ev.order < kStatOrders && ev.migratetype >= 0 &&
          static_cast<unsigned>(ev.migratetype) < kStatMigratetypes)
        ++page_.order_mt[ev.order][static_cast<unsigned>(ev.migratetype)];
      else
        ++page_.out_of_table;
      const State::LivePage lp{ev.order, ev.cpu};
      auto [it, inserted] = s.live_pages.try_emplace(ev.pfn, lp);
      if (!inserted) {
        ++page_.alloc_over_live;
        it->second = lp;
      }
      page_.live_pages = s.live_pages.size();
      break;
    }
    case EventType::mm_page_free: {
      // perf sizes a free by the free's own order.
      const std::uint64_t bytes = ev.order < 40 ? opts_.page_size << ev.order : 0;
      ++page_.nr_frees;
      page_.free_bytes += bytes;
      const auto it = s.live_pages.find(ev.pfn);
      if (it == s.live_pages.end()) {
        ++page_.nr_nomatch;
        page_.nomatch_bytes += bytes;
        break;
      }
      if (it->second.cpu != ev.cpu) ++page_.cross_cpu_frees;
      s.live_pages.erase(it);
      page_.live_pages = s.live_pages.size();
      break;
    }
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
      break;
    default:
      break;
  }
}

std::vector<SlabCallsite> KmemStat::callsites() const {
  std::vector<SlabCallsite> v = st_->callsites;
  // perf's default slab sort "frag,hit,bytes", largest first; perf breaks
  // full ties by call site address, we by its name.
  std::sort(v.begin(), v.end(), [](const SlabCallsite& a, const SlabCallsite& b) {
    const double fa = a.frag(), fb = b.frag();
    if (fa != fb) return fa > fb;
    if (a.hit != b.hit) return a.hit > b.hit;
    if (a.bytes_alloc != b.bytes_alloc) return a.bytes_alloc > b.bytes_alloc;
    return a.call_site < b.call_site;
  });
  return v;
}

std::vector<SlabCache> KmemStat::caches() const {
  std::vector<SlabCache> v;
  for (const SlabCache& c : st_->caches)
    if (c.allocs || c.frees) v.push_back(c);
  std::sort(v.begin(), v.end(), [](const SlabCache& a, const SlabCache& b) {
    if (a.bytes_alloc != b.bytes_alloc) return a.bytes_alloc > b.bytes_alloc;
    if (a.allocs != b.allocs) return a.allocs > b.allocs;
    if (a.frees != b.frees) return a.frees > b.frees;
    return a.name < b.name;
  });
  return v;
}

namespace {

std::uint64_t per(std::uint64_t total, std::uint64_t n) {
  return n ? total / n : 0;
}

// The table layout of perf's __print_slab_result().
void callsite_table(std::string& out, const std::vector<SlabCallsite>& rows, unsigned top_n) {
  const std::string line = dashes(105) + "\n";
  out += line;
  out += fmt::format(" {:<34} |", "Callsite");
  out += " Total_alloc/Per | Total_req/Per   | Hit      | Ping-pong | Frag\n";
  out += line;
  const std::size_t n = top_n ? std::min<std::size_t>(top_n, rows.size()) : rows.size();
  for (std::size_t i = 0; i < n; ++i) {
    const SlabCallsite& r = rows[i];
    out += fmt::format(" {:<34} | {:>9}/{:<5} | {:>9}/{:<5} | {:>8} | {:>9} | {:6.3f}%\n",
                       perf_callsite(r.call_site), r.bytes_alloc, per(r.bytes_alloc, r.hit),
                       r.bytes_req, per(r.bytes_req, r.hit), r.hit, r.pingpong, r.frag());
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
  const std::size_t n = top_n ? std::min<std::size_t>(top_n, rows.size()) : rows.size();
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

// perf's column order is the migratetype number; its headings still follow
// the pre-4.4 order (Unmovable, Reclaimable, Movable). Same numbers in the
// same columns here, headed by what the numbers are on 6.1.
constexpr const char* kMtHeadings[] = {"Unmovable", "Movable", "Reclaimable", "HighAtomic",
                                       "CMA/Isolated"};

}  // namespace

std::string KmemStat::report(unsigned top_n) const {
  std::string out;
  callsite_table(out, callsites(), top_n);
  out += "\n";
  cache_table(out, caches(), top_n);

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
  return out;
}

nlohmann::json KmemStat::to_json(unsigned top_n) const {
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
  const auto cs = callsites();
  json jcs = json::array();
  for (std::size_t i = 0; i < cs.size() && (!top_n || i < top_n); ++i)
    jcs.push_back({{"call_site", cs[i].call_site},
                   {"bytes_alloc", cs[i].bytes_alloc},
                   {"bytes_req", cs[i].bytes_req},
                   {"hit", cs[i].hit},
                   {"pingpong", cs[i].pingpong},
                   {"frag_percent", cs[i].frag()}});
  slab["callsites"] = std::move(jcs);
  slab["callsites_total"] = cs.size();
  slab["callsites_sort"] = "frag,hit,bytes";
  const auto cc = caches();
  json jcc = json::array();
  for (std::size_t i = 0; i < cc.size() && (!top_n || i < top_n); ++i)
    jcc.push_back({{"name", cc[i].name},
                   {"allocs", cc[i].allocs},
                   {"bytes_alloc", cc[i].bytes_alloc},
                   {"bytes_req", cc[i].bytes_req},
                   {"frees", cc[i].frees},
                   {"free_only", cc[i].free_only},
                   {"live", cc[i].live()},
                   {"pingpong", cc[i].pingpong},
                   {"frag_percent", cc[i].frag()}});
  slab["caches"] = std::move(jcc);
  slab["caches_total"] = cc.size();

  const PageTotals& p = page_;
  json order_mt = json::array();
  for (const auto& r : p.order_mt) order_mt.push_back(r);
  json mts = json::array();
  for (unsigned m = 0; m < kStatMigratetypes; ++m)
    mts.push_back(mm::migratetype_name(static_cast<int>(m)));
  json page = {
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
  return {{"events", events_}, {"slab", std::move(slab)}, {"page", std::move(page)}};
}

}  // namespace mmfuzz::analysis
