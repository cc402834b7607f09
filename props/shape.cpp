#include "props/shape.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <iterator>
#include <map>
#include <string_view>

#include "mm/page_alloc/gfp.h"
#include "mm/slab/slab.h"

namespace mmfuzz::props {

using namespace mmfuzz::mm;
using analysis::ProfileData;

const char* family_name(Family f) {
  static constexpr const char* kNames[] = {"kmalloc", "cache", "page", "vmalloc", "mempool"};
  return kNames[static_cast<std::size_t>(f)];
}

std::uint64_t Dist::total() const {
  std::uint64_t t = 0;
  for (const Weighted& w : rows) t += w.weight;
  return t;
}

double Dist::mean() const {
  if (rows.empty()) return (static_cast<double>(lo) + static_cast<double>(hi)) / 2;
  double sum = 0, n = 0;
  for (const Weighted& w : rows) {
    double v = static_cast<double>(w.value);
    // [2^(k-1), 2^k): its middle.
    if (log2) v = w.value == 0 ? 0 : std::ldexp(1.5, static_cast<int>(w.value) - 1) - 0.5;
    sum += v * static_cast<double>(w.weight);
    n += static_cast<double>(w.weight);
  }
  return n > 0 ? sum / n : 0;
}

namespace {

// The largest order the generator asks for: one allocation at most 1/16 of
// RAM, so that the live-set caps leave room for many.
unsigned order_cap(const prog::MachineFacts& m) {
  unsigned o = 0;
  while (o + 1 < m.max_order && (std::uint64_t{1} << (o + 1)) <= m.totalram_pages / 16) ++o;
  return o;
}
// The largest kmalloc cache as SLUB has it (2 pages): SLAB's go up to 4 MiB,
// which would make a uniform size a megabyte on average.
std::uint64_t kmalloc_cache_cap(const prog::MachineFacts& m) {
  return std::min<std::uint64_t>(m.kmalloc_max_cache_size, 2 * m.page_size);
}
// kmalloc sizes: a few past the largest cache, into the page allocator.
std::uint64_t kmalloc_cap(const prog::MachineFacts& m) {
  return std::min(m.kmalloc_max_size, 4 * kmalloc_cache_cap(m));
}
// Objects of created caches: at most what the largest kmalloc cache holds.
std::uint64_t cache_size_cap(const prog::MachineFacts& m) {
  return kmalloc_cache_cap(m);
}
std::uint64_t vmalloc_cap(const prog::MachineFacts& m) {
  return std::max<std::uint64_t>(1, m.totalram_pages / 64);
}

// Masks the generator may pass: never __GFP_NOFAIL (a failure there is the
// model's report of an impossible request, not traffic) and a valid zone.
gfp_t sane_gfp(gfp_t g) {
  g &= ~__GFP_NOFAIL;
  return gfp_zone_valid(g) ? g : GFP_KERNEL;
}
// kmalloc_fix_flags(): the slab layer refuses GFP_SLAB_BUG_MASK bits.
gfp_t slab_gfp(gfp_t g) {
  return sane_gfp(g & ~(__GFP_DMA32 | __GFP_HIGHMEM | __GFP_COMP | GFP_MOVABLE_MASK));
}

// Rows with values mapped (and merged: two values may map to one), heaviest first.
template <class F>
Dist mapped(const std::vector<Weighted>& v, F f) {
  std::map<std::uint64_t, std::uint64_t> m;
  for (const Weighted& w : v)
    if (w.weight) m[f(w.value)] += w.weight;
  Dist d;
  for (const auto& [value, weight] : m) d.rows.push_back({value, weight});
  std::stable_sort(d.rows.begin(), d.rows.end(),
                   [](const Weighted& a, const Weighted& b) { return a.weight > b.weight; });
  return d;
}
Dist uniform(std::uint64_t lo, std::uint64_t hi) {
  Dist d;
  d.lo = lo;
  d.hi = hi;
  return d;
}
Dist log2_rows(const std::vector<std::uint64_t>& buckets) {
  Dist d;
  d.log2 = true;
  for (std::size_t k = 0; k < buckets.size(); ++k)
    if (buckets[k]) d.rows.push_back({k, buckets[k]});
  return d;
}
double fraction(std::uint64_t part, std::uint64_t whole) {
  return whole ? std::clamp(static_cast<double>(part) / static_cast<double>(whole), 0.0, 1.0) : 0.0;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
// Call sites inside the calls the generator makes itself (mempool's
// elements, vmalloc's page array): their traffic is the family's.
bool internal_site(std::string_view name) {
  return starts_with(name, "mempool_") || starts_with(name, "__vmalloc_node_range") ||
         starts_with(name, "__vmalloc_area_node");
}

// What a cache's object size (bytes_alloc: SLUB's s->size) shows of its
// creation: a size rounded up to a cache line (SLAB_HWCACHE_ALIGN), or one
// more word, the free pointer SLUB places after the object of a cache with
// a constructor (or SLAB_TYPESAFE_BY_RCU; the constructor is the commoner).
void infer_flags(std::uint64_t req, std::uint64_t alloc, CacheSpec& c) {
  const std::uint64_t words = (req + 7) / 8 * 8;
  if (alloc == words + 8)
    c.ctor = true;
  else if (alloc > words && alloc % 64 == 0 && alloc - req < 64)
    c.flags = SLAB_HWCACHE_ALIGN;
}

// The flags 6.1 creates well-known caches with (a kmem trace names the
// cache, not its flags): what decides their slabs' migrate type
// (SLAB_RECLAIM_ACCOUNT: reclaimable pageblocks), reuse rules and layout.
slab_flags_t known_cache_flags(std::string_view name) {
  static constexpr slab_flags_t kReclaim = SLAB_RECLAIM_ACCOUNT | SLAB_MEM_SPREAD;
  static constexpr slab_flags_t kHw = SLAB_HWCACHE_ALIGN;
  static const std::pair<std::string_view, slab_flags_t> kCaches[] = {
      {"dentry", kReclaim | SLAB_ACCOUNT},
      {"inode_cache", kReclaim | SLAB_ACCOUNT},
      {"proc_inode_cache", kReclaim | SLAB_ACCOUNT},
      {"radix_tree_node", SLAB_RECLAIM_ACCOUNT},
      {"ext4_inode_cache", kReclaim | SLAB_ACCOUNT},
      {"buffer_head", kReclaim},
      {"names_cache", kHw},
      {"filp", kHw | SLAB_ACCOUNT},
      {"mm_struct", kHw | SLAB_ACCOUNT},
      {"signal_cache", kHw | SLAB_ACCOUNT},
      {"files_cache", kHw | SLAB_ACCOUNT},
      {"cred_jar", kHw | SLAB_ACCOUNT},
      {"pid", kHw | SLAB_ACCOUNT},
      {"mnt_cache", kHw | SLAB_ACCOUNT},
      {"skbuff_head_cache", kHw},
      {"sighand_cache", kHw | SLAB_TYPESAFE_BY_RCU | SLAB_ACCOUNT},
      {"anon_vma", SLAB_TYPESAFE_BY_RCU | SLAB_ACCOUNT},
      {"vm_area_struct", SLAB_ACCOUNT},
      {"anon_vma_chain", SLAB_ACCOUNT},
      {"task_struct", SLAB_ACCOUNT},
      {"shmem_inode_cache", SLAB_ACCOUNT},
      {"seq_file", SLAB_ACCOUNT},
      {"sigqueue", SLAB_ACCOUNT},
      {"pde_opener", SLAB_ACCOUNT},
  };
  for (const auto& [n, f] : kCaches)
    if (n == name) return f;
  return 0;
}

void caches_of(const ProfileData& p, const prog::MachineFacts& m, Shape& s) {
  const std::uint64_t cap = cache_size_cap(m);
  for (const analysis::CacheGeometry& g : p.cache_geometry) {
    const std::uint64_t req = g.bytes_req ? g.bytes_req : g.object_size;
    if (!req || !g.allocs) continue;
    CacheSpec c{g.name, std::clamp<std::uint64_t>(req, 8, cap), 0, 0, g.allocs, false};
    if (req <= cap) infer_flags(req, g.object_size, c);
    c.flags |= known_cache_flags(g.name);
    s.caches.push_back(c);
  }
  if (!s.caches.empty()) return;
  // A version-1 profile has no geometry: a cache per common object size.
  for (const Weighted& w : p.cache_sizes.top)
    s.caches.push_back({fmt::format("cache-{}", w.value),
                        std::clamp<std::uint64_t>(w.value, 8, cap), 0, 0, w.weight, false});
}

int cache_index(const Shape& s, std::string_view name) {
  for (std::size_t i = 0; i < s.caches.size(); ++i)
    if (s.caches[i].name == name) return static_cast<int>(i);
  return -1;
}

void sites_of(const ProfileData& p, const prog::MachineFacts& m, Shape& s) {
  const std::uint64_t cap = kmalloc_cap(m);
  std::uint64_t kmalloc_sites = 0, cache_sites = 0;
  for (const analysis::CallSiteShape& c : p.site_shapes) {
    if (internal_site(c.name) || !c.allocs) continue;
    Site site;
    site.name = c.name;
    site.weight = c.allocs;
    site.family = 2 * c.kmalloc >= c.allocs ? Family::kmalloc : Family::cache;
    site.gfp = mapped(c.gfp, [](std::uint64_t g) { return slab_gfp(static_cast<gfp_t>(g)); });
    if (site.family == Family::kmalloc) {
      site.sizes =
          mapped(c.sizes, [&](std::uint64_t v) { return std::clamp<std::uint64_t>(v, 1, cap); });
      site.kvmalloc = starts_with(c.name, "kvmalloc");
      kmalloc_sites += c.allocs;
    } else {
      site.cache = cache_index(s, c.cache);
      if (site.cache < 0) continue;  // its cache is unknown: other traffic
      cache_sites += c.allocs;
    }
    s.sites.push_back(std::move(site));
  }
  const auto& f = s.family_weights;
  s.other_kmalloc_weight = f[0] > kmalloc_sites ? f[0] - kmalloc_sites : 0;
  s.other_cache_weight = f[1] > cache_sites ? f[1] - cache_sites : 0;
  if (s.sites.empty() && !s.other_kmalloc_weight && !s.other_cache_weight)
    s.other_kmalloc_weight = s.other_cache_weight = 1;
}

// Family weights, the trace's own allocations only: vmalloc's page arrays
// and mempool elements are counted under their families.
void families_of(const ProfileData& p, Shape& s) {
  const std::uint64_t vm = p.vmalloc.source == "default" ? 0 : p.vmalloc.areas;
  const std::uint64_t arrays = p.vmalloc.source == "page_array" ? vm : 0;
  auto less = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
  s.family_weights = {less(p.kmalloc_sizes.count, arrays + p.mempool.kmalloc_allocs),
                      less(p.cache_sizes.count, p.mempool.slab_allocs), p.page_allocs, vm,
                      p.mempool.slab_allocs + p.mempool.kmalloc_allocs};
}

// The trace's windows as phases. vmalloc and mempool allocations are not in
// the windows: they spread evenly.
void phases_of(const ProfileData& p, Shape& s) {
  const auto& f = s.family_weights;
  for (const analysis::PhaseWindow& w : p.phases) {
    if (!w.events) continue;
    Phase ph;
    ph.weight = w.events;
    const double share = static_cast<double>(w.events) / static_cast<double>(p.events);
    ph.mix = {w.kmalloc, w.cache_allocs, w.page_allocs,
              static_cast<std::uint64_t>(std::llround(static_cast<double>(f[3]) * share)),
              static_cast<std::uint64_t>(std::llround(static_cast<double>(f[4]) * share))};
    ph.slab_never_freed = 1 - fraction(w.slab_frees, w.slab_allocs());
    ph.page_never_freed = 1 - fraction(w.page_frees, w.page_allocs);
    s.phases.push_back(ph);
  }
  if (!s.phases.empty()) return;
  Phase ph;  // no windows (a version-1 profile): one phase of the whole trace
  ph.mix = f;
  ph.slab_never_freed = s.slab_life.never_freed;
  ph.page_never_freed = s.page_life.never_freed;
  s.phases.push_back(ph);
}

void pages_of(const ProfileData& p, const prog::MachineFacts& m, Shape& s) {
  const unsigned cap = order_cap(m);
  for (std::size_t o = 0; o < p.orders.size() && o <= cap; ++o)
    if (p.orders[o]) s.orders.rows.push_back({o, p.orders[o]});
  if (s.orders.rows.empty()) s.orders = uniform(0, 0);
  constexpr gfp_t kDefault[] = {GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE};
  std::array<std::vector<Weighted>, 3> by_mt;
  for (const Weighted& w : p.page_gfp) {
    const gfp_t g = sane_gfp(static_cast<gfp_t>(w.value));
    by_mt[static_cast<std::size_t>(gfp_migratetype(g))].push_back({g, w.weight});
  }
  for (std::size_t mt = 0; mt < 3; ++mt) {
    s.page_gfp_by_mt[mt] = mapped(by_mt[mt], [](std::uint64_t g) { return g; });
    if (s.page_gfp_by_mt[mt].rows.empty()) s.page_gfp_by_mt[mt].rows = {{kDefault[mt], 1}};
    if (mt < p.migratetypes.size() && p.migratetypes[mt])
      s.migratetypes.rows.push_back({mt, p.migratetypes[mt]});
  }
  if (s.migratetypes.rows.empty()) s.migratetypes.rows = {{MIGRATE_UNMOVABLE, 1}};
  std::stable_sort(s.migratetypes.rows.begin(), s.migratetypes.rows.end(),
                   [](const Weighted& a, const Weighted& b) { return a.weight > b.weight; });
}

// CPUs beyond the machine's fold onto it (cpu % nr_cpus).
void cpus_of(const ProfileData& p, const prog::MachineFacts& m, Shape& s) {
  const unsigned n = std::max(1u, m.nr_cpus);
  std::vector<Weighted> v;
  for (const auto& [cpu, events] : p.cpu_events)
    if (cpu >= 0) v.push_back({static_cast<std::uint64_t>(cpu) % n, events});
  s.cpus = mapped(v, [](std::uint64_t c) { return c; });
  if (s.cpus.rows.empty()) s.cpus = uniform(0, n - 1);
  s.cross_cpu_free = n > 1 ? p.cross_cpu_free_fraction() : 0;
  s.page_cross_cpu_free = n > 1 ? fraction(p.page_cross_cpu_frees, p.page_frees) : 0;
}

// Lifetimes in trace events become ops: the trace's allocations and frees
// per event.
void lifetimes_of(const ProfileData& p, Shape& s) {
  const std::uint64_t ops = p.slab_allocs() + p.slab_frees + p.slab_free_only + p.page_allocs +
                            p.page_frees + p.page_free_only;
  const double scale =
      p.events ? std::max(0.05, static_cast<double>(ops) / static_cast<double>(p.events)) : 1.0;
  auto life = [&](const analysis::Lifetimes& l) {
    Lifetime out;
    out.dist = l.freed ? log2_rows(l.events_log2) : uniform(1, 0);
    out.scale = l.freed ? scale : 1.0;
    out.never_freed = l.never_freed_fraction();
    out.cohort = l.cohort_fraction();
    return out;
  };
  s.slab_life = life(p.slab_life);
  s.page_life = life(p.page_life);
}

void vm_and_pools_of(const ProfileData& p, const prog::MachineFacts& m, Shape& s) {
  const std::uint64_t vcap = vmalloc_cap(m);
  const auto& pages = p.vmalloc.pages.empty() ? analysis::default_vmalloc_pages() : p.vmalloc.pages;
  s.vmalloc_pages =
      mapped(pages, [&](std::uint64_t v) { return std::clamp<std::uint64_t>(v, 1, vcap); });
  MempoolShape& mp = s.mempool;
  mp.min_nr =
      mapped(p.mempool.min_nr, [](std::uint64_t v) { return std::clamp<std::uint64_t>(v, 1, 32); });
  if (mp.min_nr.rows.empty()) mp.min_nr = uniform(1, 8);
  mp.sizes = mapped(p.mempool.sizes, [&](std::uint64_t v) {
    return std::clamp<std::uint64_t>(v, 8, std::min(m.page_size, kmalloc_cache_cap(m)));
  });
  if (mp.sizes.rows.empty()) mp.sizes = uniform(16, 1024);
  // Page pools leave no call site in a trace, and a trace may show one kind
  // only: every kind keeps a tenth of the pools.
  const std::uint64_t seen = p.mempool.slab_allocs + p.mempool.kmalloc_allocs;
  const std::uint64_t floor = std::max<std::uint64_t>(1, seen / 10);
  mp.kinds = {std::max(floor, p.mempool.slab_allocs), std::max(floor, p.mempool.kmalloc_allocs),
              floor};
  mp.page_orders = uniform(0, std::min(2u, order_cap(m)));
}

}  // namespace

Shape shape_of(const ProfileData& p, const prog::MachineFacts& m) {
  Shape s;
  s.name = p.source.empty() ? "profile" : p.source;
  families_of(p, s);
  lifetimes_of(p, s);
  phases_of(p, s);
  s.bursts = log2_rows(p.bursts.log2);
  if (s.bursts.rows.empty()) s.bursts.rows = {{1, 1}};
  s.sites_per_window = p.bursts.sites_per_window();
  s.page_bursts = log2_rows(p.page_bursts.log2);
  if (s.page_bursts.rows.empty()) s.page_bursts.rows = {{1, 1}};
  caches_of(p, m, s);
  sites_of(p, m, s);
  const std::uint64_t kcap = kmalloc_cap(m);
  s.kmalloc_sizes = mapped(p.kmalloc_sizes.top,
                           [&](std::uint64_t v) { return std::clamp<std::uint64_t>(v, 1, kcap); });
  if (s.kmalloc_sizes.rows.empty()) s.kmalloc_sizes = uniform(1, kmalloc_cache_cap(m));
  s.kmalloc_size_tail = log2_rows(p.kmalloc_sizes.log2);
  s.kmalloc_size_tail.upper = true;
  std::erase_if(s.kmalloc_size_tail.rows, [&](const Weighted& w) {
    return w.value == 0 || w.value >= 64 || (std::uint64_t{1} << w.value) > kcap;
  });
  s.temperatures = {1.0, 2.0, 4.0};
  s.resident_slabs = 3;
  s.resident_freed = 0.125;
  s.slab_gfp = mapped(p.slab_gfp, [](std::uint64_t g) { return slab_gfp(static_cast<gfp_t>(g)); });
  if (s.slab_gfp.rows.empty()) s.slab_gfp.rows = {{GFP_KERNEL, 1}};
  cpus_of(p, m, s);
  pages_of(p, m, s);
  vm_and_pools_of(p, m, s);
  return s;
}

namespace {

constexpr gfp_t kUniformSlabGfps[] = {GFP_KERNEL,
                                      GFP_KERNEL_ACCOUNT,
                                      GFP_ATOMIC,
                                      GFP_NOWAIT,
                                      GFP_NOFS,
                                      GFP_NOIO,
                                      GFP_KERNEL | __GFP_RECLAIMABLE,
                                      GFP_KERNEL | __GFP_ZERO};
constexpr gfp_t kUniformPageGfps[] = {GFP_KERNEL,
                                      GFP_KERNEL_ACCOUNT,
                                      GFP_ATOMIC,
                                      GFP_NOWAIT,
                                      GFP_NOIO,
                                      GFP_NOFS,
                                      GFP_USER,
                                      GFP_HIGHUSER_MOVABLE,
                                      GFP_HIGHUSER_MOVABLE | __GFP_COMP,
                                      GFP_KERNEL | __GFP_RECLAIMABLE,
                                      GFP_KERNEL | __GFP_COMP,
                                      GFP_KERNEL | __GFP_ZERO};
struct UniformCache {
  const char* name;
  unsigned size;
  std::uint32_t flags;
};
constexpr UniformCache kUniformCaches[] = {
    {"uniform_16", 16, 0},
    {"uniform_48", 48, SLAB_HWCACHE_ALIGN},
    {"uniform_96", 96, SLAB_RECLAIM_ACCOUNT},
    {"uniform_200", 200, SLAB_ACCOUNT},
    {"uniform_512", 512, SLAB_TYPESAFE_BY_RCU},
    {"uniform_1000", 1000, 0},
    {"uniform_2048", 2048, SLAB_HWCACHE_ALIGN},
    {"uniform_4000", 4000, 0},
};

}  // namespace

Shape uniform_shape(const prog::MachineFacts& m) {
  Shape s;
  s.name = "uniform";
  s.family_weights.fill(1);
  Phase ph;
  ph.mix.fill(1);
  ph.slab_never_freed = ph.page_never_freed = 0.25;
  s.phases = {ph};
  s.bursts.log2 = true;
  s.bursts.rows = {{1, 1}};  // runs of one
  s.page_bursts = s.bursts;
  s.other_kmalloc_weight = s.other_cache_weight = 1;
  s.kmalloc_sizes = uniform(1, kmalloc_cache_cap(m));
  for (const gfp_t g : kUniformSlabGfps) s.slab_gfp.rows.push_back({g, 1});
  for (const UniformCache& c : kUniformCaches)
    s.caches.push_back(
        {c.name, std::min<std::uint64_t>(c.size, cache_size_cap(m)), 0, c.flags, 1, false});
  s.slab_life = {uniform(1, 0), 1.0, 0.25};
  s.page_life = s.slab_life;
  const unsigned n = std::max(1u, m.nr_cpus);
  s.cpus = uniform(0, n - 1);
  s.cross_cpu_free = s.page_cross_cpu_free = static_cast<double>(n - 1) / n;
  s.orders = uniform(0, order_cap(m));
  // A migrate type in proportion to its masks, then a mask: uniform over the list.
  for (const gfp_t g : kUniformPageGfps)
    s.page_gfp_by_mt[static_cast<std::size_t>(gfp_migratetype(g))].rows.push_back({g, 1});
  for (std::size_t mt = 0; mt < 3; ++mt)
    if (const std::uint64_t k = s.page_gfp_by_mt[mt].rows.size())
      s.migratetypes.rows.push_back({mt, k});
  s.vmalloc_pages = uniform(1, vmalloc_cap(m));
  s.mempool.min_nr = uniform(1, 8);
  s.mempool.sizes = uniform(1, 1024);
  s.mempool.kinds = {1, 1, 1};
  s.mempool.page_orders = uniform(0, std::min(2u, order_cap(m)));
  return s;
}

namespace {

std::string head(const Dist& d, bool hex = false, std::size_t n = 6) {
  if (d.rows.empty())
    return fmt::format("uniform [{}, {}]", d.lo, d.hi ? std::to_string(d.hi) : "ops");
  const double total = static_cast<double>(d.total());
  std::string out;
  for (std::size_t i = 0; i < d.rows.size() && i < n; ++i)
    out +=
        fmt::format("{}{}{} {:.1f}%", i ? ", " : "", d.log2 ? "log2 " : "",
                    hex ? fmt::format("{:#x}", d.rows[i].value) : std::to_string(d.rows[i].value),
                    100.0 * static_cast<double>(d.rows[i].weight) / total);
  if (d.rows.size() > n) out += fmt::format(", ... ({} rows)", d.rows.size());
  return out;
}

}  // namespace

std::string describe(const Shape& s) {
  std::string out = fmt::format("shape {}\n", s.name);
  const double fam_total =
      static_cast<double>(s.family_weights[0] + s.family_weights[1] + s.family_weights[2] +
                          s.family_weights[3] + s.family_weights[4]);
  out += "  families:";
  for (std::size_t f = 0; f < kNrFamilies; ++f)
    out += fmt::format(
        " {} {:.1f}%", family_name(static_cast<Family>(f)),
        fam_total > 0 ? 100.0 * static_cast<double>(s.family_weights[f]) / fam_total : 0.0);
  out += fmt::format("\n  phases: {}", s.phases.size());
  for (const Phase& ph : s.phases)
    out += fmt::format(" [never freed slab {:.0f}% page {:.0f}%]", 100 * ph.slab_never_freed,
                       100 * ph.page_never_freed);
  out += fmt::format("\n  bursts: {} (mean {:.2f}); {:.1f} sites per {} slab allocations\n",
                     head(s.bursts), s.bursts.mean(), s.sites_per_window, analysis::kSiteWindow);
  out += fmt::format("  sites: {} (+ other kmalloc {}, other cache {})\n", s.sites.size(),
                     s.other_kmalloc_weight, s.other_cache_weight);
  out += fmt::format("  kmalloc sizes: {}\n  slab gfp: {}\n", head(s.kmalloc_sizes),
                     head(s.slab_gfp, true));
  out += fmt::format("  caches: {}", s.caches.size());
  for (std::size_t i = 0; i < s.caches.size() && i < 6; ++i)
    out += fmt::format("{} {} ({} B)", i ? "," : "", s.caches[i].name, s.caches[i].size);
  out += fmt::format("\n  slab lifetime: {} x {:.2f} ops, never freed {:.1f}%, cohorts {:.1f}%\n",
                     head(s.slab_life.dist), s.slab_life.scale, 100 * s.slab_life.never_freed,
                     100 * s.slab_life.cohort);
  out += fmt::format("  page lifetime: {} x {:.2f} ops, never freed {:.1f}%, cohorts {:.1f}%\n",
                     head(s.page_life.dist), s.page_life.scale, 100 * s.page_life.never_freed,
                     100 * s.page_life.cohort);
  out += fmt::format("  cpus: {}; cross-CPU frees: slab {:.1f}%, page {:.1f}%\n", head(s.cpus),
                     100 * s.cross_cpu_free, 100 * s.page_cross_cpu_free);
  out +=
      fmt::format("  page bursts: {} (mean {:.2f})\n", head(s.page_bursts), s.page_bursts.mean());
  out += fmt::format("  orders: {}\n  migratetypes: {}\n", head(s.orders), head(s.migratetypes));
  out += fmt::format("  vmalloc pages: {}\n  mempool min_nr: {}; sizes: {}\n",
                     head(s.vmalloc_pages), head(s.mempool.min_nr), head(s.mempool.sizes));
  return out;
}

}  // namespace mmfuzz::props
