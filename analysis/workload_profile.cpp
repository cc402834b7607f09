#include "analysis/workload_profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "analysis/kmem_stat.h"
#include "mm/page_alloc/gfp.h"
#include "program/program.h"

namespace mmfuzz::analysis {

namespace {

using NameIndex = std::unordered_map<std::string, std::uint32_t, prog::StringHash, std::equal_to<>>;

constexpr std::uint32_t kUnknownCache = 0;
constexpr std::size_t kLog2Buckets = 65;

// (2^(k-1), 2^k]: the bucket of a size.
std::size_t size_bucket(std::uint64_t size) {
  return size <= 1 ? 0 : static_cast<std::size_t>(std::bit_width(size - 1));
}
// [2^(k-1), 2^k): the bucket of a lifetime.
std::size_t life_bucket(std::uint64_t x) {
  return static_cast<std::size_t>(std::bit_width(x));
}

std::vector<std::uint64_t> trimmed(std::vector<std::uint64_t> v) {
  while (!v.empty() && v.back() == 0) v.pop_back();
  return v;
}

template <class Map>
std::vector<Weighted> top_of(const Map& m, unsigned n) {
  std::vector<Weighted> v;
  v.reserve(m.size());
  for (const auto& [value, weight] : m) v.push_back({static_cast<std::uint64_t>(value), weight});
  std::sort(v.begin(), v.end(), [](const Weighted& a, const Weighted& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.value < b.value;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

bool page_alloc_failed(const TraceEvent& ev) {
  // As KmemStat: 6.1 prints a failed allocation with pfn=0.
  return ev.failed || ev.pfn == 0 || ev.pfn == ~std::uint64_t{0};
}

}  // namespace

double Lifetimes::never_freed_fraction() const {
  const std::uint64_t all = freed + never_freed;
  return all ? static_cast<double>(never_freed) / static_cast<double>(all) : 0.0;
}

double ProfileData::cross_cpu_free_fraction() const {
  return slab_frees ? static_cast<double>(slab_cross_cpu_frees) / static_cast<double>(slab_frees)
                    : 0.0;
}

double ProfileData::per_second(std::uint64_t n) const {
  const std::uint64_t d = duration_ns();
  return d ? static_cast<double>(n) * 1e9 / static_cast<double>(d) : 0.0;
}

struct WorkloadProfile::Accum {
  struct LiveObj {
    std::uint64_t pos, ts, bytes_req;
    std::uint32_t callsite, cache;
    int cpu;
    bool kmalloc;
  };
  struct LivePage {
    std::uint64_t pos, ts;
    int cpu;
  };
  struct Sizes {
    std::uint64_t count = 0, total = 0;
    std::unordered_map<std::uint64_t, std::uint64_t> exact;
    std::vector<std::uint64_t> log2 = std::vector<std::uint64_t>(kLog2Buckets);
    void add(std::uint64_t size) {
      ++count;
      total += size;
      ++exact[size];
      ++log2[size_bucket(size)];
    }
  };
  struct Life {
    std::uint64_t freed = 0;
    std::vector<std::uint64_t> events = std::vector<std::uint64_t>(kLog2Buckets);
    std::vector<std::uint64_t> ns = std::vector<std::uint64_t>(kLog2Buckets);
    void add(std::uint64_t from_pos, std::uint64_t to_pos, std::uint64_t from_ts,
             std::uint64_t to_ts) {
      ++freed;
      ++events[life_bucket(to_pos - from_pos)];
      // CPUs' clocks may disagree by a little: a negative lifetime is 0.
      ++ns[life_bucket(to_ts >= from_ts ? to_ts - from_ts : 0)];
    }
  };

  std::uint64_t pos = 0;
  bool any_ts = false;
  std::uint64_t first_ts = 0, last_ts = 0;
  std::array<std::uint64_t, kNrEventTypes> by_type{};
  std::uint64_t lost = 0;
  std::map<int, std::uint64_t> cpu_events;

  std::unordered_map<std::uint64_t, LiveObj> live;
  std::unordered_map<std::uint64_t, LivePage> live_pages;
  Sizes kmalloc_sizes, cache_sizes;
  std::unordered_map<std::uint32_t, std::uint64_t> slab_gfp, page_gfp;
  std::uint64_t slab_frees = 0, slab_free_only = 0, slab_null_frees = 0, slab_cross = 0;
  std::uint64_t slab_lost_live = 0;  // live objects allocated over (their free was not traced)
  Life slab_life, page_life;
  NameIndex callsite_index, cache_index;
  std::vector<RateRow> callsites, caches;
  std::unordered_map<std::uint64_t, std::uint32_t> kmalloc_ids;
  std::uint64_t page_allocs = 0, page_failures = 0, page_frees = 0, page_free_only = 0,
                page_cross = 0, page_lost_live = 0;
  std::vector<std::uint64_t> orders = std::vector<std::uint64_t>(64);
  std::vector<std::uint64_t> migratetypes = std::vector<std::uint64_t>(mm::MIGRATE_TYPES);

  Accum() {
    caches.push_back({"(unknown cache)", 0, 0, 0});
    cache_index.emplace(caches.back().name, kUnknownCache);
  }
  static std::uint32_t intern(NameIndex& index, std::vector<RateRow>& rows, std::string_view name) {
    if (const auto it = index.find(name); it != index.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(rows.size());
    rows.push_back({std::string(name), 0, 0, 0});
    index.emplace(std::string(name), id);
    return id;
  }
  std::uint32_t kmalloc_cache(std::uint32_t gfp, std::uint64_t bytes_alloc, std::uint64_t max) {
    // The name depends on the size and on the three kmalloc_type() bits.
    const std::uint64_t key =
        bytes_alloc << 3 |
        ((gfp & (mm::__GFP_DMA | mm::__GFP_RECLAIMABLE | mm::__GFP_ACCOUNT)) ? 1u : 0u) |
        ((gfp & mm::__GFP_DMA) ? 2u : 0u) | ((gfp & mm::__GFP_RECLAIMABLE) ? 4u : 0u);
    if (const auto it = kmalloc_ids.find(key); it != kmalloc_ids.end()) return it->second;
    const std::uint32_t id = intern(cache_index, caches, kmalloc_cache_name(gfp, bytes_alloc, max));
    kmalloc_ids.emplace(key, id);
    return id;
  }
};

WorkloadProfile::WorkloadProfile(std::string source, ProfileOptions opts)
    : opts_(opts), acc_(std::make_unique<Accum>()) {
  data_.source = std::move(source);
  data_.top_n = opts.top_n;
}
WorkloadProfile::~WorkloadProfile() = default;
WorkloadProfile::WorkloadProfile(WorkloadProfile&&) noexcept = default;
WorkloadProfile& WorkloadProfile::operator=(WorkloadProfile&&) noexcept = default;

void WorkloadProfile::add(const TraceEvent& ev) {
  if (!acc_) throw std::logic_error("WorkloadProfile::add after finish");
  Accum& a = *acc_;
  const std::uint64_t pos = a.pos++;
  ++a.by_type[static_cast<std::size_t>(ev.type)];
  if (!a.any_ts || ev.ts_ns < a.first_ts) a.first_ts = ev.ts_ns;
  if (!a.any_ts || ev.ts_ns > a.last_ts) a.last_ts = ev.ts_ns;
  a.any_ts = true;
  if (ev.cpu >= 0) ++a.cpu_events[ev.cpu];
  switch (ev.type) {
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node: {
      const bool is_kmalloc = ev.type == EventType::kmalloc || ev.type == EventType::kmalloc_node;
      (is_kmalloc ? a.kmalloc_sizes : a.cache_sizes).add(ev.bytes_req);
      ++a.slab_gfp[ev.gfp];
      const std::uint32_t cs = Accum::intern(a.callsite_index, a.callsites, ev.call_site);
      ++a.callsites[cs].allocs;
      a.callsites[cs].bytes_req += ev.bytes_req;
      if (ev.ptr == 0) break;  // a failed allocation: nothing to free later
      const std::uint32_t cache =
          is_kmalloc ? a.kmalloc_cache(ev.gfp, ev.bytes_alloc, opts_.kmalloc_max_cache_size)
                     : kUnknownCache;
      ++a.caches[cache].allocs;
      a.caches[cache].bytes_req += ev.bytes_req;
      const Accum::LiveObj obj{pos, ev.ts_ns, ev.bytes_req, cs, cache, ev.cpu, is_kmalloc};
      auto [it, inserted] = a.live.try_emplace(ev.ptr, obj);
      if (!inserted) {
        ++a.slab_lost_live;
        it->second = obj;
      }
      break;
    }
    case EventType::kfree:
    case EventType::kmem_cache_free: {
      const bool named = ev.type == EventType::kmem_cache_free && !ev.name.empty();
      if (ev.ptr == 0) {
        ++a.slab_null_frees;
        break;
      }
      const auto it = a.live.find(ev.ptr);
      if (it == a.live.end()) {
        ++a.slab_free_only;
        ++a.caches[named ? Accum::intern(a.cache_index, a.caches, ev.name) : kUnknownCache].frees;
        break;
      }
      const Accum::LiveObj obj = it->second;
      a.live.erase(it);
      ++a.slab_frees;
      a.slab_life.add(obj.pos, pos, obj.ts, ev.ts_ns);
      if (obj.cpu != ev.cpu) ++a.slab_cross;
      ++a.callsites[obj.callsite].frees;
      std::uint32_t cache = obj.cache;
      if (!obj.kmalloc && named) {
        // 6.1 names the cache at the free only: the allocation moves there.
        cache = Accum::intern(a.cache_index, a.caches, ev.name);
        --a.caches[kUnknownCache].allocs;
        a.caches[kUnknownCache].bytes_req -= obj.bytes_req;
        ++a.caches[cache].allocs;
        a.caches[cache].bytes_req += obj.bytes_req;
      }
      ++a.caches[cache].frees;
      break;
    }
    case EventType::mm_page_alloc: {
      ++a.page_gfp[ev.gfp];
      if (page_alloc_failed(ev)) {
        ++a.page_failures;
        break;
      }
      ++a.page_allocs;
      ++a.orders[std::min<std::size_t>(ev.order, a.orders.size() - 1)];
      if (ev.migratetype >= 0 && ev.migratetype < mm::MIGRATE_TYPES)
        ++a.migratetypes[static_cast<std::size_t>(ev.migratetype)];
      const Accum::LivePage lp{pos, ev.ts_ns, ev.cpu};
      auto [it, inserted] = a.live_pages.try_emplace(ev.pfn, lp);
      if (!inserted) {
        ++a.page_lost_live;
        it->second = lp;
      }
      break;
    }
    case EventType::mm_page_free: {
      // Only mm_page_free: 6.1 repeats it as mm_page_free_batched.
      const auto it = a.live_pages.find(ev.pfn);
      if (it == a.live_pages.end()) {
        ++a.page_free_only;
        break;
      }
      ++a.page_frees;
      a.page_life.add(it->second.pos, pos, it->second.ts, ev.ts_ns);
      if (it->second.cpu != ev.cpu) ++a.page_cross;
      a.live_pages.erase(it);
      break;
    }
    case EventType::lost_events:
      a.lost += ev.lost;
      break;
    default:
      break;
  }
}

ProfileData WorkloadProfile::snapshot() const {
  const Accum& a = *acc_;
  ProfileData d;
  d.source = data_.source;
  d.top_n = opts_.top_n;
  d.events = a.pos;
  for (int t = 0; t < kNrEventTypes; ++t)
    if (const std::uint64_t n = a.by_type[static_cast<std::size_t>(t)])
      d.event_counts[event_type_name(static_cast<EventType>(t))] = n;
  d.lost_events = a.lost;
  d.first_ts_ns = a.first_ts;
  d.last_ts_ns = a.last_ts;
  d.cpu_events = a.cpu_events;
  auto sizes = [&](const Accum::Sizes& s) {
    SizeDist out;
    out.count = s.count;
    out.total_bytes = s.total;
    out.distinct = s.exact.size();
    out.log2 = trimmed(s.log2);
    out.top = top_of(s.exact, opts_.top_n);
    return out;
  };
  d.kmalloc_sizes = sizes(a.kmalloc_sizes);
  d.cache_sizes = sizes(a.cache_sizes);
  d.slab_gfp = top_of(a.slab_gfp, opts_.top_n);
  d.slab_gfp_distinct = a.slab_gfp.size();
  d.slab_frees = a.slab_frees;
  d.slab_free_only = a.slab_free_only;
  d.slab_null_frees = a.slab_null_frees;
  d.slab_cross_cpu_frees = a.slab_cross;
  auto life = [](const Accum::Life& l, std::uint64_t never) {
    Lifetimes out;
    out.freed = l.freed;
    out.never_freed = never;
    out.events_log2 = trimmed(l.events);
    out.ns_log2 = trimmed(l.ns);
    return out;
  };
  // Objects allocated over (their free untraced) count as never freed too.
  d.slab_life = life(a.slab_life, a.live.size() + a.slab_lost_live);
  for (const RateRow& r : a.caches)
    if (r.allocs || r.frees) d.caches.push_back(r);
  std::sort(d.caches.begin(), d.caches.end(), [](const RateRow& x, const RateRow& y) {
    if (x.allocs != y.allocs) return x.allocs > y.allocs;
    if (x.frees != y.frees) return x.frees > y.frees;
    return x.name < y.name;
  });
  d.call_sites = a.callsites;
  std::sort(d.call_sites.begin(), d.call_sites.end(), [](const RateRow& x, const RateRow& y) {
    return x.allocs != y.allocs ? x.allocs > y.allocs : x.name < y.name;
  });
  if (d.call_sites.size() > opts_.top_n) d.call_sites.resize(opts_.top_n);
  d.call_sites_distinct = a.callsites.size();
  d.page_allocs = a.page_allocs;
  d.page_failures = a.page_failures;
  d.page_frees = a.page_frees;
  d.page_free_only = a.page_free_only;
  d.page_cross_cpu_frees = a.page_cross;
  d.orders = trimmed(a.orders);
  d.migratetypes = trimmed(a.migratetypes);
  d.page_gfp = top_of(a.page_gfp, opts_.top_n);
  d.page_gfp_distinct = a.page_gfp.size();
  d.page_life = life(a.page_life, a.live_pages.size() + a.page_lost_live);
  return d;
}

void WorkloadProfile::finish() {
  if (!acc_) return;
  data_ = snapshot();
  acc_.reset();
}

const ProfileData& WorkloadProfile::data() const {
  if (acc_) data_ = snapshot();
  return data_;
}

std::vector<Weighted> WorkloadProfile::order_table() const {
  std::vector<Weighted> v;
  const auto& o = data().orders;
  for (std::size_t i = 0; i < o.size(); ++i)
    if (o[i]) v.push_back({i, o[i]});
  std::stable_sort(v.begin(), v.end(),
                   [](const Weighted& a, const Weighted& b) { return a.weight > b.weight; });
  return v;
}

std::vector<Weighted> WorkloadProfile::migratetype_table() const {
  std::vector<Weighted> v;
  const auto& m = data().migratetypes;
  for (std::size_t i = 0; i < m.size(); ++i)
    if (m[i]) v.push_back({i, m[i]});
  std::stable_sort(v.begin(), v.end(),
                   [](const Weighted& a, const Weighted& b) { return a.weight > b.weight; });
  return v;
}

// JSON. Fields that follow from others (fractions, rates, names of GFP masks
// and migrate types, bucket bounds) are written for the reader and ignored
// when read back.
namespace {

using nlohmann::json;

json log2_json(const std::vector<std::uint64_t>& v, bool sizes) {
  json out = json::array();
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (!v[k]) continue;
    // Sizes: (2^(k-1), 2^k]; lifetimes: [2^(k-1), 2^k).
    const std::uint64_t lo =
        k == 0 ? 0 : (sizes ? (std::uint64_t{1} << (k - 1)) + 1 : std::uint64_t{1} << (k - 1));
    const std::uint64_t hi = k == 0  ? (sizes ? 1 : 0)
                             : sizes ? (k == 64 ? ~std::uint64_t{0} : std::uint64_t{1} << k)
                                     : (k == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << k) - 1);
    out.push_back({{"log2", k}, {"min", lo}, {"max", hi}, {"count", v[k]}});
  }
  return out;
}

std::vector<std::uint64_t> log2_from(const json& j) {
  std::vector<std::uint64_t> v;
  for (const json& b : j) {
    const auto k = b.at("log2").get<std::size_t>();
    if (k >= kLog2Buckets) throw std::invalid_argument("log2 bucket out of range");
    if (v.size() <= k) v.resize(k + 1);
    v[k] = b.at("count").get<std::uint64_t>();
  }
  return v;
}

json sizes_json(const SizeDist& s) {
  json top = json::array();
  for (const Weighted& w : s.top) top.push_back({{"size", w.value}, {"count", w.weight}});
  return {
      {"count", s.count},
      {"total_bytes", s.total_bytes},
      {"mean", s.count ? static_cast<double>(s.total_bytes) / static_cast<double>(s.count) : 0.0},
      {"distinct", s.distinct},
      {"log2", log2_json(s.log2, true)},
      {"top", std::move(top)}};
}

SizeDist sizes_from(const json& j) {
  SizeDist s;
  s.count = j.at("count").get<std::uint64_t>();
  s.total_bytes = j.at("total_bytes").get<std::uint64_t>();
  s.distinct = j.at("distinct").get<std::uint64_t>();
  s.log2 = log2_from(j.at("log2"));
  for (const json& w : j.at("top"))
    s.top.push_back({w.at("size").get<std::uint64_t>(), w.at("count").get<std::uint64_t>()});
  return s;
}

json gfp_json(const std::vector<Weighted>& v) {
  json out = json::array();
  for (const Weighted& w : v) {
    const auto g = static_cast<mm::gfp_t>(w.value);
    out.push_back({{"value", w.value},
                   {"hex", fmt::format("{:#x}", w.value)},
                   {"name", mm::format_gfp(g)},
                   {"count", w.weight}});
  }
  return out;
}

std::vector<Weighted> gfp_from(const json& j) {
  std::vector<Weighted> v;
  for (const json& w : j)
    v.push_back({w.at("value").get<std::uint64_t>(), w.at("count").get<std::uint64_t>()});
  return v;
}

json life_json(const Lifetimes& l) {
  return {{"freed", l.freed},
          {"never_freed", l.never_freed},
          {"never_freed_fraction", l.never_freed_fraction()},
          {"events_log2", log2_json(l.events_log2, false)},
          {"ns_log2", log2_json(l.ns_log2, false)}};
}

Lifetimes life_from(const json& j) {
  Lifetimes l;
  l.freed = j.at("freed").get<std::uint64_t>();
  l.never_freed = j.at("never_freed").get<std::uint64_t>();
  l.events_log2 = log2_from(j.at("events_log2"));
  l.ns_log2 = log2_from(j.at("ns_log2"));
  return l;
}

json rates_json(const std::vector<RateRow>& rows, const ProfileData& d) {
  json out = json::array();
  for (const RateRow& r : rows)
    out.push_back({{"name", r.name},
                   {"allocs", r.allocs},
                   {"frees", r.frees},
                   {"bytes_req", r.bytes_req},
                   {"allocs_per_s", d.per_second(r.allocs)},
                   {"frees_per_s", d.per_second(r.frees)}});
  return out;
}

std::vector<RateRow> rates_from(const json& j) {
  std::vector<RateRow> v;
  for (const json& r : j)
    v.push_back({r.at("name").get<std::string>(), r.at("allocs").get<std::uint64_t>(),
                 r.at("frees").get<std::uint64_t>(), r.at("bytes_req").get<std::uint64_t>()});
  return v;
}

// Index-keyed counts (orders, migrate types) as [{key: i, count: n}], zeros left out.
json indexed_json(const std::vector<std::uint64_t>& v, const char* key, bool mt_names) {
  json out = json::array();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i]) continue;
    json row = {{key, i}, {"count", v[i]}};
    if (mt_names) row["name"] = mm::migratetype_name(static_cast<int>(i));
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::uint64_t> indexed_from(const json& j, const char* key, std::size_t limit) {
  std::vector<std::uint64_t> v;
  for (const json& r : j) {
    const auto i = r.at(key).get<std::size_t>();
    if (i >= limit) throw std::invalid_argument(std::string(key) + " out of range");
    if (v.size() <= i) v.resize(i + 1);
    v[i] = r.at("count").get<std::uint64_t>();
  }
  return v;
}

}  // namespace

nlohmann::json WorkloadProfile::to_json() const {
  const ProfileData& d = data();
  json cpus = json::array();
  for (const auto& [cpu, n] : d.cpu_events) cpus.push_back({{"cpu", cpu}, {"events", n}});
  json by_type = json::object();
  for (const auto& [name, n] : d.event_counts) by_type[name] = n;
  return {
      {"format", kProfileFormat},
      {"source", d.source},
      {"top_n", d.top_n},
      {"events", {{"total", d.events}, {"by_type", std::move(by_type)}, {"lost", d.lost_events}}},
      {"time",
       {{"first_ns", d.first_ts_ns},
        {"last_ns", d.last_ts_ns},
        {"duration_ns", d.duration_ns()},
        {"duration_s", static_cast<double>(d.duration_ns()) / 1e9}}},
      {"cpus",
       {{"events", std::move(cpus)},
        {"slab_cross_cpu_frees", d.slab_cross_cpu_frees},
        {"slab_cross_cpu_free_fraction", d.cross_cpu_free_fraction()},
        {"page_cross_cpu_frees", d.page_cross_cpu_frees}}},
      {"slab",
       {{"allocs", d.slab_allocs()},
        {"allocs_per_s", d.per_second(d.slab_allocs())},
        {"kmalloc", sizes_json(d.kmalloc_sizes)},
        {"kmem_cache_alloc", sizes_json(d.cache_sizes)},
        {"gfp", gfp_json(d.slab_gfp)},
        {"gfp_distinct", d.slab_gfp_distinct},
        {"frees", d.slab_frees},
        {"free_only", d.slab_free_only},
        {"null_frees", d.slab_null_frees},
        {"lifetime", life_json(d.slab_life)},
        {"caches", rates_json(d.caches, d)},
        {"call_sites", rates_json(d.call_sites, d)},
        {"call_sites_distinct", d.call_sites_distinct}}},
      {"pages",
       {{"allocs", d.page_allocs},
        {"allocs_per_s", d.per_second(d.page_allocs)},
        {"failures", d.page_failures},
        {"frees", d.page_frees},
        {"free_only", d.page_free_only},
        {"orders", indexed_json(d.orders, "order", false)},
        {"migratetypes", indexed_json(d.migratetypes, "migratetype", true)},
        {"gfp", gfp_json(d.page_gfp)},
        {"gfp_distinct", d.page_gfp_distinct},
        {"lifetime", life_json(d.page_life)}}},
  };
}

WorkloadProfile WorkloadProfile::from_json(const nlohmann::json& j) {
  try {
    if (!j.is_object() || !j.contains("format")) throw std::invalid_argument("no \"format\" key");
    if (j.at("format") != kProfileFormat)
      throw std::invalid_argument("format is " + j.at("format").dump() + ", not \"" +
                                  kProfileFormat + "\"");
    ProfileData d;
    d.source = j.at("source").get<std::string>();
    d.top_n = j.at("top_n").get<unsigned>();
    const json& ev = j.at("events");
    d.events = ev.at("total").get<std::uint64_t>();
    for (const auto& [name, n] : ev.at("by_type").items())
      d.event_counts[name] = n.get<std::uint64_t>();
    d.lost_events = ev.at("lost").get<std::uint64_t>();
    d.first_ts_ns = j.at("time").at("first_ns").get<std::uint64_t>();
    d.last_ts_ns = j.at("time").at("last_ns").get<std::uint64_t>();
    if (d.last_ts_ns < d.first_ts_ns) throw std::invalid_argument("last_ns before first_ns");
    const json& cpus = j.at("cpus");
    for (const json& c : cpus.at("events"))
      d.cpu_events[c.at("cpu").get<int>()] = c.at("events").get<std::uint64_t>();
    d.slab_cross_cpu_frees = cpus.at("slab_cross_cpu_frees").get<std::uint64_t>();
    d.page_cross_cpu_frees = cpus.at("page_cross_cpu_frees").get<std::uint64_t>();
    const json& s = j.at("slab");
    d.kmalloc_sizes = sizes_from(s.at("kmalloc"));
    d.cache_sizes = sizes_from(s.at("kmem_cache_alloc"));
    d.slab_gfp = gfp_from(s.at("gfp"));
    d.slab_gfp_distinct = s.at("gfp_distinct").get<std::uint64_t>();
    d.slab_frees = s.at("frees").get<std::uint64_t>();
    d.slab_free_only = s.at("free_only").get<std::uint64_t>();
    d.slab_null_frees = s.at("null_frees").get<std::uint64_t>();
    d.slab_life = life_from(s.at("lifetime"));
    d.caches = rates_from(s.at("caches"));
    d.call_sites = rates_from(s.at("call_sites"));
    d.call_sites_distinct = s.at("call_sites_distinct").get<std::uint64_t>();
    const json& p = j.at("pages");
    d.page_allocs = p.at("allocs").get<std::uint64_t>();
    d.page_failures = p.at("failures").get<std::uint64_t>();
    d.page_frees = p.at("frees").get<std::uint64_t>();
    d.page_free_only = p.at("free_only").get<std::uint64_t>();
    d.orders = indexed_from(p.at("orders"), "order", 64);
    d.migratetypes = indexed_from(p.at("migratetypes"), "migratetype", mm::MIGRATE_TYPES);
    d.page_gfp = gfp_from(p.at("gfp"));
    d.page_gfp_distinct = p.at("gfp_distinct").get<std::uint64_t>();
    d.page_life = life_from(p.at("lifetime"));
    ProfileOptions o;
    o.top_n = d.top_n;
    WorkloadProfile w(d.source, o);
    w.acc_.reset();
    w.data_ = std::move(d);
    return w;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("profile: ") + e.what());
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    if (what.rfind("profile: ", 0) == 0) throw;
    throw std::invalid_argument("profile: " + what);
  }
}

}  // namespace mmfuzz::analysis
