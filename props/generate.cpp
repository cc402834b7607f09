#include "props/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mm/page_alloc/gfp.h"
#include "program/build.h"

namespace mmfuzz::props {

using namespace mmfuzz::mm;
using prog::Handle;
using prog::PoolKind;
using prog::Space;

const char* focus_name(Focus f) {
  static constexpr const char* kNames[] = {"all", "page", "slab", "mempool", "vm"};
  return kNames[static_cast<std::size_t>(f)];
}

std::optional<Focus> focus_from_name(std::string_view name) {
  for (const Focus f : {Focus::all, Focus::page, Focus::slab, Focus::mempool, Focus::vm})
    if (name == focus_name(f)) return f;
  return std::nullopt;
}

bool focus_allows(Focus f, Family fam) {
  switch (f) {
    case Focus::all:
      return true;
    case Focus::page:
      return fam == Family::page;
    case Focus::slab:
      return fam == Family::kmalloc || fam == Family::cache;
    case Focus::mempool:
      return fam == Family::mempool;
    case Focus::vm:
      return fam == Family::vmalloc;
  }
  return false;
}

namespace {

constexpr std::uint64_t kTeardown = ~std::uint64_t{0};

// Draws from a Dist: a row by weight (binary search over the running
// sums), or a value of a uniform range.
class Sampler {
 public:
  Sampler() = default;
  // program_ops: what a uniform range's hi 0 stands for (lifetimes).
  // temper: weights raised to 1/temper (1: as given; larger: flatter over
  // the same rows).
  explicit Sampler(const Dist& d, std::uint64_t program_ops = 0, double temper = 1)
      : log2_(d.log2), upper_(d.upper) {
    for (const Weighted& w : d.rows) {
      if (!w.weight) continue;
      const std::uint64_t weight =
          temper == 1 ? w.weight
                      : std::max<std::uint64_t>(
                            1, static_cast<std::uint64_t>(std::llround(
                                   std::pow(static_cast<double>(w.weight), 1 / temper) * 1024)));
      values_.push_back(w.value);
      cum_.push_back((cum_.empty() ? 0 : cum_.back()) + weight);
    }
    lo_ = d.lo;
    hi_ = d.hi ? d.hi : std::max<std::uint64_t>(program_ops, 1);
    hi_ = std::max(hi_, lo_);
  }
  std::uint64_t draw(SplitMix64& r) const {
    if (cum_.empty()) return lo_ + r.below(hi_ - lo_ + 1);
    const std::uint64_t x = r.below(cum_.back());
    const std::size_t i =
        static_cast<std::size_t>(std::upper_bound(cum_.begin(), cum_.end(), x) - cum_.begin());
    if (!log2_) return values_[i];
    const std::uint64_t k = std::min<std::uint64_t>(values_[i], 63);
    if (k == 0) return upper_ ? 1 : 0;
    const std::uint64_t lo = std::uint64_t{1} << (k - 1);
    return lo + upper_ + r.below(lo);  // [2^(k-1), 2^k), or (2^(k-1), 2^k]
  }

 private:
  std::vector<std::uint64_t> values_, cum_;
  std::uint64_t lo_ = 0, hi_ = 0;
  bool log2_ = false, upper_ = false;
};

Dist weights(const std::vector<std::uint64_t>& w) {
  Dist d;
  for (std::size_t i = 0; i < w.size(); ++i) d.rows.push_back({i, w[i]});
  return d;
}

// The mean of a burst table's draws clamped to 1 .. cap.
double capped_mean(const Dist& d, unsigned cap) {
  if (d.rows.empty()) return 1.0;
  double sum = 0, n = 0;
  for (const Weighted& w : d.rows) {
    double v = static_cast<double>(w.value);
    if (d.log2) v = w.value == 0 ? 0 : std::ldexp(1.5, static_cast<int>(w.value) - 1) - 0.5;
    sum +=
        std::clamp(v, 1.0, static_cast<double>(std::max(cap, 1u))) * static_cast<double>(w.weight);
    n += static_cast<double>(w.weight);
  }
  return n > 0 ? sum / n : 1.0;
}

enum class Kind : std::uint8_t {
  kmalloc,
  kvmalloc,
  cache,
  pool_elem,
  pages,
  vmalloc,
  vmap,
  ioremap
};
// The caps: slab bytes (objects and pool reserves), pages, vmalloc pages.
enum Class : std::uint8_t { kSlab, kPage, kVm, kNrClasses };

Class class_of(Kind k) {
  if (k == Kind::pages) return kPage;
  if (k == Kind::vmalloc || k == Kind::vmap || k == Kind::ioremap) return kVm;
  return kSlab;
}
Space space_of(Kind k) {
  if (k == Kind::pages) return Space::page;
  if (class_of(k) == kVm) return Space::area;
  return Space::object;
}

class Generator {
 public:
  Generator(const Shape& s, const prog::MachineFacts& m, const GenOptions& o);
  prog::Program run();

 private:
  // One allocation the Program made, until its free.
  struct Live {
    Kind kind;
    Handle h;
    std::uint64_t cost;    // against its class's cap: bytes, or pages
    std::uint64_t access;  // bytes written after the allocation, read before the free
    std::uint64_t due;     // the call (clock_) that frees it (kTeardown: the teardown)
    int cpu;
    int slot;  // the cache (cache) or pool (pool_elem)
    unsigned order;
    bool live = true;
  };
  struct Pool {
    Handle h = 0;
    bool live = false;
    std::uint64_t elem = 0, reserve = 0;
  };
  using Due = std::pair<std::uint64_t, std::size_t>;  // (due, id): earliest, then oldest first

  std::uint64_t ops() const { return b_.program().ops.size(); }
  bool chance(double p) { return static_cast<double>(rng_.below(1u << 20)) < p * (1u << 20); }
  std::size_t phase() const;
  int cpu() { return static_cast<int>(cpus_.draw(rng_) % nr_cpus_); }
  std::uint8_t pattern() { return static_cast<std::uint8_t>(1 + rng_.below(255)); }

  void setup_families();
  void setup_sites();
  void step();
  void alloc(Family f);
  void slab_burst(Family f);
  int pick_site(std::size_t k);
  bool kmalloc_one(int site, int c);
  bool cache_one(int site, int c);
  void alloc_page();
  void vm_alloc();
  void ioremap(int c);
  void pool_step();
  bool create_pool(std::size_t slot);
  void ensure_cache(std::size_t k);
  void residents(std::size_t k);
  const std::string& pool_cache(std::uint64_t size);
  void shrink();
  void added(Live l);
  bool cohort_due(Class c, bool to_teardown, std::uint64_t* due);
  void track(Live l);
  bool make_room(Class c, std::uint64_t cost);
  void release_due();
  void free_live(std::size_t id);
  int free_cpu(const Live& l);
  void teardown();
  void ballast();

  const Shape& s_;
  const prog::MachineFacts& m_;
  std::vector<std::pair<prog::Handle, unsigned>> ballast_;  // (page handle, order)
  const GenOptions& o_;
  SplitMix64 rng_;
  double temper_;  // this Program's temperature (Shape::temperatures)
  prog::ProgramBuilder b_;
  unsigned nr_cpus_;
  std::array<std::uint64_t, kNrClasses> used_{}, cap_{};
  // Lifetimes count calls (allocations and frees, as a trace's events do),
  // not the accesses, checks and machine ops between them.
  std::uint64_t clock_ = 0;
  std::vector<Live> lives_;
  std::array<std::set<Due>, kNrClasses> live_;  // the live allocations of each class
  std::array<std::size_t, kNrClasses> last_{};  // each class's latest allocation + 1 (0: none)
  // Phases: where each ends (in ops) and its family sampler.
  std::vector<std::uint64_t> phase_end_;
  std::vector<Sampler> phase_family_;
  // Sites: the candidates of each slab family (-1: other traffic) and a
  // sampler over them; each site's own tables.
  std::array<std::vector<int>, 2> site_ids_;
  std::array<Sampler, 2> site_pick_;
  std::vector<Sampler> site_sizes_, site_gfp_;
  Sampler bursts_, page_bursts_, kmalloc_sizes_, slab_gfp_, cache_pick_, slab_life_, page_life_,
      cpus_;
  Sampler orders_, mts_, vm_pages_, pool_min_, pool_sizes_, pool_kinds_, pool_orders_;
  std::array<Sampler, 3> page_gfp_;
  // Locality: the sites this window of kSiteWindow slab allocations draws
  // from (-1 - k: family k's other traffic).
  std::vector<int> working_;
  std::uint64_t window_allocs_ = 0;
  std::size_t window_full_ = 0;  // the set's size in this window
  std::vector<bool> cache_live_;
  std::vector<std::pair<std::uint64_t, std::string>> pool_caches_;  // element size -> cache
  std::vector<Pool> pools_;
};

Generator::Generator(const Shape& s, const prog::MachineFacts& m, const GenOptions& o)
    : s_(s),
      m_(m),
      o_(o),
      rng_{o.seed * 0x9e3779b97f4a7c15ull ^ 0x6d6d66757a7a},
      temper_(s.temperatures.empty() ? 1.0 : s.temperatures[rng_.below(s.temperatures.size())]),
      nr_cpus_(std::max(1u, m.nr_cpus)),
      bursts_(s.bursts),
      page_bursts_(s.page_bursts),
      kmalloc_sizes_(
          temper_ > 1 && !s.kmalloc_size_tail.rows.empty() ? s.kmalloc_size_tail : s.kmalloc_sizes,
          0, temper_),
      slab_gfp_(s.slab_gfp, 0, temper_),
      slab_life_(s.slab_life.dist, o.ops),
      page_life_(s.page_life.dist, o.ops),
      cpus_(s.cpus),
      orders_(s.orders, 0, temper_),
      mts_(s.migratetypes, 0, temper_),
      vm_pages_(s.vmalloc_pages, 0, temper_),
      pool_min_(s.mempool.min_nr, 0, temper_),
      pool_sizes_(s.mempool.sizes, 0, temper_),
      pool_kinds_(
          weights(std::vector<std::uint64_t>(s.mempool.kinds.begin(), s.mempool.kinds.end()))),
      pool_orders_(s.mempool.page_orders),
      cache_live_(s.caches.size()),
      pools_(std::max(1u, s.mempool.max_pools)) {
  cap_ = {m.totalram_pages / 8 * m.page_size, m.totalram_pages / 2, m.totalram_pages / 16};
  for (std::size_t mt = 0; mt < 3; ++mt) page_gfp_[mt] = Sampler(s.page_gfp_by_mt[mt], 0, temper_);
  std::vector<std::uint64_t> cw;
  for (const CacheSpec& c : s.caches) cw.push_back(c.weight);
  cache_pick_ = Sampler(weights(cw), 0, temper_);
  setup_sites();
  setup_families();
}

// Each phase's family weights: those the focus and the machine allow, each
// at least family_floor_percent of the phase's allocations (a family the
// trace shows rarely still shows up in a short Program).
void Generator::setup_families() {
  std::array<bool, kNrFamilies> ok{};
  bool any = false;
  for (std::size_t f = 0; f < kNrFamilies; ++f) {
    const auto fam = static_cast<Family>(f);
    ok[f] = focus_allows(o_.focus, fam);
    if (fam != Family::page && !m_.slab) ok[f] = ok[f] && fam == Family::vmalloc;
    if (fam == Family::vmalloc && !m_.vmalloc) ok[f] = false;
    if (fam == Family::cache && s_.caches.empty()) ok[f] = false;
    any = any || ok[f];
  }
  if (!any) ok[static_cast<std::size_t>(Family::page)] = true;
  // The mix counts allocations; a step of a family makes a run of them.
  std::array<double, kNrFamilies> per_step{};
  per_step.fill(1.0);
  per_step[static_cast<std::size_t>(Family::kmalloc)] = capped_mean(s_.bursts, s_.max_burst);
  per_step[static_cast<std::size_t>(Family::cache)] = per_step[0];
  per_step[static_cast<std::size_t>(Family::page)] = capped_mean(s_.page_bursts, s_.max_page_burst);
  std::uint64_t total_weight = 0;
  for (const Phase& ph : s_.phases) total_weight += std::max<std::uint64_t>(ph.weight, 1);
  std::uint64_t acc = 0;
  for (const Phase& ph : s_.phases) {
    acc += std::max<std::uint64_t>(ph.weight, 1);
    phase_end_.push_back(
        static_cast<std::uint64_t>(static_cast<double>(o_.ops) * static_cast<double>(acc) /
                                   static_cast<double>(total_weight)));
    std::uint64_t sum = 0;
    for (std::size_t f = 0; f < kNrFamilies; ++f) sum += ok[f] ? ph.mix[f] : 0;
    const std::uint64_t floor = std::max<std::uint64_t>(1, sum * s_.family_floor_percent / 100);
    std::vector<std::uint64_t> w(kNrFamilies);
    for (std::size_t f = 0; f < kNrFamilies; ++f)
      w[f] = ok[f] ? std::max<std::uint64_t>(
                         1, static_cast<std::uint64_t>(
                                static_cast<double>(std::max(ph.mix[f], floor)) * 64 / per_step[f]))
                   : 0;
    phase_family_.emplace_back(weights(w));
  }
  if (phase_family_.empty()) {  // a shape without phases: one of the families alike
    std::vector<std::uint64_t> w(kNrFamilies);
    for (std::size_t f = 0; f < kNrFamilies; ++f) w[f] = ok[f];
    phase_family_.emplace_back(weights(w));
    phase_end_.push_back(o_.ops);
  }
}

void Generator::setup_sites() {
  std::array<std::vector<std::uint64_t>, 2> w;
  for (std::size_t i = 0; i < s_.sites.size(); ++i) {
    const Site& site = s_.sites[i];
    site_sizes_.emplace_back(
        site.sizes.rows.empty() && !site.sizes.hi ? s_.kmalloc_sizes : site.sizes, 0, temper_);
    site_gfp_.emplace_back(site.gfp.rows.empty() ? s_.slab_gfp : site.gfp, 0, temper_);
    const std::size_t f = site.family == Family::kmalloc ? 0 : 1;
    if (f == 1 && (site.cache < 0 || static_cast<std::size_t>(site.cache) >= s_.caches.size()))
      continue;
    site_ids_[f].push_back(static_cast<int>(i));
    w[f].push_back(site.weight);
  }
  const std::uint64_t other[2] = {s_.other_kmalloc_weight, s_.other_cache_weight};
  for (std::size_t f = 0; f < 2; ++f) {
    site_ids_[f].push_back(-1);
    w[f].push_back(other[f] || w[f].empty() ? std::max<std::uint64_t>(other[f], 1) : 0);
    site_pick_[f] = Sampler(weights(w[f]), 0, temper_);
  }
}

std::size_t Generator::phase() const {
  const std::uint64_t now = ops();
  std::size_t i = 0;
  while (i + 1 < phase_end_.size() && now >= phase_end_[i]) ++i;
  return i;
}

prog::Program Generator::run() {
  // Under pressure, pools are made first, as the kernel makes its pools at
  // init: their reserves are what the workload then draws on.
  if (o_.ballast && focus_allows(o_.focus, Family::mempool) && m_.slab)
    for (std::size_t i = 0; i < pools_.size(); ++i) create_pool(i);
  if (o_.ballast) ballast();
  std::uint64_t next_check = s_.check_every;
  while (ops() < o_.ops) {
    release_due();
    if (ops() >= o_.ops) break;
    step();
    if (next_check && ops() >= next_check) {
      b_.check();
      next_check += s_.check_every;
    }
  }
  if (o_.teardown) teardown();
  return b_.take();
}

void Generator::step() {
  const std::uint64_t r = rng_.below(1000);
  if (r < s_.tick_per_mille) {
    b_.set_cpu(cpu());
    return b_.tick();
  }
  if (r < s_.tick_per_mille + s_.drain_per_mille) {
    b_.set_cpu(cpu());
    return b_.drain_all_pages();
  }
  if (r < s_.tick_per_mille + s_.drain_per_mille + s_.shrink_per_mille) return shrink();
  alloc(static_cast<Family>(phase_family_[phase()].draw(rng_)));
}

void Generator::alloc(Family f) {
  switch (f) {
    case Family::kmalloc:
    case Family::cache:
      return slab_burst(f);
    case Family::page:
      return alloc_page();
    case Family::vmalloc:
      return vm_alloc();
    case Family::mempool:
      return pool_step();
  }
}

// A run of allocations from one call site on one CPU.
void Generator::slab_burst(Family f) {
  const std::size_t k = f == Family::kmalloc ? 0 : 1;
  const int site = pick_site(k);
  const std::uint64_t n =
      std::clamp<std::uint64_t>(bursts_.draw(rng_), 1, std::max(1u, s_.max_burst));
  const int c = cpu();
  for (std::uint64_t i = 0; i < n && ops() < o_.ops; ++i, ++window_allocs_)
    if (!(k == 0 ? kmalloc_one(site, c) : cache_one(site, c))) return;
}

// A site of family k, from the window's working set: a window of the
// trace's slab allocations draws from sites_per_window sites. Sites come
// into the set by weight as the window draws them, until it is full.
int Generator::pick_site(std::size_t k) {
  auto draw = [&] {
    const int site = site_ids_[k][site_pick_[k].draw(rng_)];
    return site >= 0 ? site : -1 - static_cast<int>(k);
  };
  const auto in_set = [&](int s) {
    return std::find(working_.begin(), working_.end(), s) != working_.end();
  };
  if (s_.sites_per_window <= 0) return std::max(draw(), -1);
  if (window_allocs_ >= analysis::kSiteWindow || !window_full_) {
    const double want = s_.sites_per_window;
    window_full_ = std::max<std::size_t>(
        1, static_cast<std::size_t>(want) + (chance(want - std::floor(want)) ? 1 : 0));
    working_.clear();
    window_allocs_ = 0;
  }
  int site = draw();
  if (!in_set(site)) {
    if (working_.size() < window_full_) {
      working_.push_back(site);
    } else {  // the window's set is full: one of its sites of this family
      std::vector<int> mine;
      for (const int w : working_)
        if (w == -1 - static_cast<int>(k) ||
            (w >= 0 &&
             (s_.sites[static_cast<std::size_t>(w)].family == Family::kmalloc) == (k == 0)))
          mine.push_back(w);
      if (mine.empty())
        working_.push_back(site);
      else
        site = mine[rng_.below(mine.size())];
    }
  }
  return std::max(site, -1);
}

bool Generator::kmalloc_one(int site, int c) {
  const bool own = site >= 0;
  const auto i = static_cast<std::size_t>(site);
  const std::uint64_t size =
      std::max<std::uint64_t>(1, own ? site_sizes_[i].draw(rng_) : kmalloc_sizes_.draw(rng_));
  const auto gfp = static_cast<gfp_t>(own ? site_gfp_[i].draw(rng_) : slab_gfp_.draw(rng_));
  if (!make_room(kSlab, size)) return false;
  b_.set_cpu(c);
  const bool kv = own && s_.sites[i].kvmalloc;
  const Handle h = kv ? b_.kvmalloc(size, gfp) : b_.kmalloc(size, gfp);
  if (own && !kv) b_.set_call_site(s_.sites[i].name);
  added({kv ? Kind::kvmalloc : Kind::kmalloc, h, size, size, 0, c, -1, 0});
  return true;
}

bool Generator::cache_one(int site, int c) {
  const bool own = site >= 0;
  const auto i = static_cast<std::size_t>(site);
  const auto k =
      static_cast<std::size_t>(own ? s_.sites[i].cache : static_cast<int>(cache_pick_.draw(rng_)));
  const auto gfp = static_cast<gfp_t>(own ? site_gfp_[i].draw(rng_) : slab_gfp_.draw(rng_));
  const std::uint64_t size = s_.caches[k].size;
  if (!make_room(kSlab, size)) return false;
  ensure_cache(k);
  b_.set_cpu(c);
  const Handle h = b_.kmem_cache_alloc(s_.caches[k].name, gfp);
  if (own) b_.set_call_site(s_.sites[i].name);
  added({Kind::cache, h, size, size, 0, c, static_cast<int>(k), 0});
  return true;
}

// A run of allocations from one caller on one CPU: the order, then the
// migrate type, then a mask of that type.
void Generator::alloc_page() {
  const auto order = static_cast<unsigned>(orders_.draw(rng_));
  const std::size_t mt = std::min<std::uint64_t>(mts_.draw(rng_), 2);
  const auto gfp = static_cast<gfp_t>(page_gfp_[mt].draw(rng_));
  const std::uint64_t pages = std::uint64_t{1} << order;
  const std::uint64_t n =
      std::clamp<std::uint64_t>(page_bursts_.draw(rng_), 1, std::max(1u, s_.max_page_burst));
  const int c = cpu();
  for (std::uint64_t i = 0; i < n && ops() < o_.ops; ++i) {
    if (!make_room(kPage, pages)) return;
    b_.set_cpu(c);
    const Handle h = b_.alloc_pages(order, gfp);
    added(
        {Kind::pages, h, pages, std::min(pages, std::uint64_t{2}) * m_.page_size, 0, c, -1, order});
  }
}

// vmalloc (and vzalloc, __vmalloc) of the shape's sizes; vmap and ioremap
// now and then.
void Generator::vm_alloc() {
  static constexpr gfp_t kVmallocGfps[] = {GFP_KERNEL | __GFP_ZERO, GFP_KERNEL_ACCOUNT, GFP_NOFS};
  const int c = cpu();
  const std::uint64_t r = rng_.below(20);
  if (r >= 18 && !m_.devices.empty()) return ioremap(c);
  const std::uint64_t pages = std::max<std::uint64_t>(1, vm_pages_.draw(rng_));
  if (!make_room(kVm, pages)) return;
  b_.set_cpu(c);
  const std::uint64_t access = std::min<std::uint64_t>(pages, 2) * m_.page_size;
  if (r >= 16) {
    const std::uint64_t n = std::min<std::uint64_t>(pages, 16);
    return added({Kind::vmap, b_.vmap(n), pages, std::min(access, n * m_.page_size), 0, c, -1, 0});
  }
  const std::uint64_t size = pages * m_.page_size - rng_.below(m_.page_size);
  Handle h = 0;
  if (r < 10)
    h = b_.vmalloc(size, prog::VmallocApi::vmalloc);
  else if (r < 15)
    h = b_.vmalloc(size, prog::VmallocApi::vzalloc);
  else
    h = b_.vmalloc(size, prog::VmallocApi::vmalloc, kVmallocGfps[rng_.below(3)]);
  added({Kind::vmalloc, h, pages, std::min(access, size), 0, c, -1, 0});
}

// A device's registers (no client accesses: they are not RAM).
void Generator::ioremap(int c) {
  const auto [start, end] = m_.devices[rng_.below(m_.devices.size())];
  const std::uint64_t span = std::min(end - start, 16 * m_.page_size);
  if (span < 4) return;
  release_due();
  const std::uint64_t off = 4 * rng_.below(span / 4);
  const std::uint64_t size = 1 + rng_.below(std::min(span - off, 4 * m_.page_size));
  b_.set_cpu(c);
  const Handle h = b_.ioremap(start + off, size, static_cast<prog::IoremapApi>(rng_.below(3)));
  added({Kind::ioremap, h, 0, 0, 0, c, -1, 0});
}

// An element from a pool (created first when none lives, and now and then
// another), or a resize.
void Generator::pool_step() {
  std::vector<std::size_t> live;
  std::size_t free_slot = pools_.size();
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (pools_[i].live)
      live.push_back(i);
    else if (free_slot == pools_.size())
      free_slot = i;
  }
  if ((live.empty() || (free_slot < pools_.size() && rng_.below(8) == 0)) && create_pool(free_slot))
    live.push_back(free_slot);
  if (live.empty()) return;
  const std::size_t slot = live[rng_.below(live.size())];
  Pool& p = pools_[slot];
  const int c = cpu();
  if (rng_.below(16) == 0) {
    const std::uint64_t min_nr = std::max<std::uint64_t>(1, pool_min_.draw(rng_));
    if (min_nr * p.elem > p.reserve && !make_room(kSlab, min_nr * p.elem - p.reserve)) return;
    used_[kSlab] = used_[kSlab] - p.reserve + min_nr * p.elem;
    p.reserve = min_nr * p.elem;
    b_.set_cpu(c);
    return b_.mempool_resize(p.h, static_cast<int>(min_nr));
  }
  static constexpr gfp_t kPoolGfps[] = {GFP_KERNEL, GFP_NOIO, GFP_NOFS, GFP_ATOMIC};
  if (!make_room(kSlab, p.elem)) return;
  b_.set_cpu(c);
  const Handle h = b_.mempool_alloc(p.h, kPoolGfps[rng_.below(4)]);
  added({Kind::pool_elem, h, p.elem, std::min(p.elem, 2 * m_.page_size), 0, c,
         static_cast<int>(slot), 0});
}

// A pool over a cache of its element size, over kmalloc, or over pages; its
// reserve counts against the slab cap.
bool Generator::create_pool(std::size_t slot) {
  if (slot >= pools_.size()) return false;
  const std::uint64_t kind = pool_kinds_.draw(rng_);
  const std::uint64_t min_nr = std::max<std::uint64_t>(1, pool_min_.draw(rng_));
  const auto order = static_cast<unsigned>(pool_orders_.draw(rng_));
  const std::uint64_t size = std::max<std::uint64_t>(8, pool_sizes_.draw(rng_));
  const std::uint64_t elem = kind == 2 ? m_.page_size << order : size;
  if (!make_room(kSlab, min_nr * elem)) return false;
  Pool& p = pools_[slot];
  p = {0, true, elem, min_nr * elem};
  used_[kSlab] += p.reserve;
  const int n = static_cast<int>(min_nr);
  if (kind == 0)
    p.h = b_.mempool_create(n, PoolKind::slab, pool_cache(size), 0, 0, GFP_KERNEL);
  else if (kind == 1)
    p.h = b_.mempool_create(n, PoolKind::kmalloc, "", size, 0, GFP_KERNEL);
  else
    p.h = b_.mempool_create(n, PoolKind::pages, "", 0, order, GFP_KERNEL);
  return true;
}

void Generator::ensure_cache(std::size_t k) {
  if (cache_live_[k]) return;
  const CacheSpec& c = s_.caches[k];
  b_.kmem_cache_create(c.name, c.size, c.align, c.flags,
                       c.ctor ? std::optional<std::uint8_t>(0) : std::nullopt);
  cache_live_[k] = true;
  residents(k);
}

// A cache in a running kernel is not empty: the objects that live long (the
// trace's never-freed share) fill slabs of it. One kmem_cache_alloc_bulk
// gives the new cache one to three slabs' worth (a guess at SLUB's
// geometry: order 0 up to 512 B, order 3 above); a few of them die in the
// Program, in cohorts, so full slabs turn partial and empty.
void Generator::residents(std::size_t k) {
  if (s_.resident_slabs <= 0) return;
  const std::uint64_t size = s_.caches[k].size;
  const std::uint64_t per_slab = std::max<std::uint64_t>(1, (size <= 512 ? 4096 : 32768) / size);
  const auto nr = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      512, per_slab * (1 + rng_.below(static_cast<std::uint64_t>(s_.resident_slabs)))));
  if (!make_room(kSlab, nr * size)) return;
  const int c = cpu();
  b_.set_cpu(c);
  const Handle first = b_.kmem_cache_alloc_bulk(s_.caches[k].name, GFP_KERNEL, nr);
  ++clock_;
  for (std::uint32_t i = 0; i < nr; ++i) {
    Live l{Kind::cache, first + i, size, 0, kTeardown, c, static_cast<int>(k), 0};
    if (!cohort_due(kSlab, false, &l.due) && chance(s_.resident_freed))
      l.due = clock_ + 1 + rng_.below(std::max<std::uint64_t>(o_.ops / 2, 1));
    track(l);
  }
}

// The cache a slab pool of this element size allocates from, created once.
const std::string& Generator::pool_cache(std::uint64_t size) {
  for (const auto& [sz, name] : pool_caches_)
    if (sz == size) return name;
  pool_caches_.emplace_back(size, fmt::format("mempool-{}", size));
  b_.kmem_cache_create(pool_caches_.back().second, size, 0, 0);
  return pool_caches_.back().second;
}

void Generator::shrink() {
  std::vector<const std::string*> names;
  for (std::size_t k = 0; k < cache_live_.size(); ++k)
    if (cache_live_[k]) names.push_back(&s_.caches[k].name);
  for (const auto& [sz, name] : pool_caches_) names.push_back(&name);
  if (names.empty()) return;
  b_.set_cpu(cpu());
  b_.kmem_cache_shrink(*names[rng_.below(names.size())]);
}

// Whether an allocating op returns zeroed memory (kzalloc, vzalloc, ...).
bool zeroes(const prog::Op& op) {
  prog::Gfp gfp = 0;
  if (const auto* a = op.get_if<prog::Kmalloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<prog::KmemCacheAlloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<prog::Kvmalloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<prog::AllocPages>()) gfp = a->gfp;
  if (const auto* a = op.get_if<prog::Vmalloc>())
    return a->api == prog::VmallocApi::vzalloc || (a->gfp & mm::__GFP_ZERO);
  return (gfp & mm::__GFP_ZERO) != 0;
}

// An allocation just made: its write, then its lifetime.
void Generator::added(Live l) {
  ++clock_;
  const Class c = class_of(l.kind);
  if (o_.accesses && l.access) {
    // A zeroing allocation is read before it is written: the contents
    // oracle then sees stale bytes a broken __GFP_ZERO leaves behind.
    if (zeroes(b_.last())) b_.read(space_of(l.kind), l.h, 0, l.access);
    b_.write(space_of(l.kind), l.h, 0, l.access, pattern());
  }
  const Phase& ph =
      s_.phases.empty() ? Phase{} : s_.phases[std::min(phase(), s_.phases.size() - 1)];
  const bool page = c == kPage;
  const Lifetime& life = page ? s_.page_life : s_.slab_life;
  if (!cohort_due(c, true, &l.due)) {
    if (chance(page ? ph.page_never_freed : ph.slab_never_freed)) {
      l.due = kTeardown;
    } else {
      const double drawn = static_cast<double>((page ? page_life_ : slab_life_).draw(rng_));
      l.due = clock_ + std::max<std::uint64_t>(
                           1, static_cast<std::uint64_t>(std::llround(drawn * life.scale)));
    }
  }
  track(l);
}

// With the shape's cohort share, an allocation dies right after the one
// before it of its class (ties go by age): *due becomes that one's.
// to_teardown: also follow one that lives to the teardown.
bool Generator::cohort_due(Class c, bool to_teardown, std::uint64_t* due) {
  const Live* prev = last_[c] ? &lives_[last_[c] - 1] : nullptr;
  if (!prev || !prev->live || (!to_teardown && prev->due == kTeardown)) return false;
  if (!chance(c == kPage ? s_.page_life.cohort : s_.slab_life.cohort)) return false;
  *due = prev->due;
  return true;
}

// A live allocation: its cost against its class's cap, its due free.
void Generator::track(Live l) {
  const Class c = class_of(l.kind);
  used_[c] += l.cost;
  last_[c] = lives_.size() + 1;
  live_[c].insert({l.due, lives_.size()});
  lives_.push_back(l);
}

// Before an allocation: the frees due first, then, past the cap, the live
// allocations of the class due first go early.
bool Generator::make_room(Class c, std::uint64_t cost) {
  release_due();
  if (cost > cap_[c]) return false;
  while (used_[c] + cost > cap_[c]) {
    if (live_[c].empty()) return false;
    free_live(live_[c].begin()->second);
  }
  return true;
}

void Generator::release_due() {
  for (;;) {
    const Due* first = nullptr;
    for (const auto& set : live_)
      if (!set.empty() && (!first || *set.begin() < *first)) first = &*set.begin();
    if (!first || first->first > clock_ + 1) return;  // the next call is not its free
    free_live(first->second);
  }
}

int Generator::free_cpu(const Live& l) {
  const double cross = class_of(l.kind) == kPage ? s_.page_cross_cpu_free : s_.cross_cpu_free;
  if (nr_cpus_ < 2 || !chance(cross)) return l.cpu;
  for (int tries = 0; tries < 4; ++tries)
    if (const int c = cpu(); c != l.cpu) return c;
  return static_cast<int>((static_cast<unsigned>(l.cpu) + 1 + rng_.below(nr_cpus_ - 1)) % nr_cpus_);
}

// Its read, then its free, on the CPU that frees it.
void Generator::free_live(std::size_t id) {
  Live& l = lives_[id];
  l.live = false;
  used_[class_of(l.kind)] -= l.cost;
  live_[class_of(l.kind)].erase({l.due, id});
  ++clock_;
  b_.set_cpu(free_cpu(l));
  if (o_.accesses && l.access) b_.read(space_of(l.kind), l.h, 0, l.access);
  switch (l.kind) {
    case Kind::kmalloc:
      return b_.kfree(l.h);
    case Kind::kvmalloc:
      return b_.kvfree(l.h);
    case Kind::cache:
      return b_.kmem_cache_free(s_.caches[static_cast<std::size_t>(l.slot)].name, l.h);
    case Kind::pool_elem:
      return b_.mempool_free(pools_[static_cast<std::size_t>(l.slot)].h, l.h);
    case Kind::pages:
      return b_.free_pages(l.h, l.order);
    case Kind::vmalloc:
      return b_.vfree(l.h);
    case Kind::vmap:
      return b_.vunmap(l.h);
    case Kind::ioremap:
      return b_.iounmap(l.h);
  }
}

// Every block free after the boot, largest first, by allocations that
// neither retry nor dip into reserves: the last ones fail at the zone's
// watermark, which is where the workload then runs. Freed last in the
// teardown.
void Generator::ballast() {
  for (unsigned order = static_cast<unsigned>(m_.free_blocks.size()); order-- > 0;)
    for (std::uint64_t i = 0; i < m_.free_blocks[order] && ballast_.size() < 4096; ++i)
      ballast_.emplace_back(
          b_.alloc_pages(order, mm::GFP_KERNEL | mm::__GFP_NORETRY | mm::__GFP_NOWARN), order);
}

// Objects (newest first), pools, caches, areas, pages; then the pcp lists.
void Generator::teardown() {
  auto free_class = [&](Class c) {
    for (std::size_t i = lives_.size(); i-- > 0;)
      if (lives_[i].live && class_of(lives_[i].kind) == c) free_live(i);
  };
  free_class(kSlab);
  for (Pool& p : pools_) {
    if (!p.live) continue;
    b_.mempool_destroy(p.h);
    used_[kSlab] -= p.reserve;
    p.live = false;
  }
  for (std::size_t k = 0; k < cache_live_.size(); ++k)
    if (cache_live_[k]) b_.kmem_cache_destroy(s_.caches[k].name);
  for (const auto& [sz, name] : pool_caches_) b_.kmem_cache_destroy(name);
  free_class(kVm);
  free_class(kPage);
  for (const auto& [h, order] : ballast_) b_.free_pages(h, order);
  b_.drain_all_pages();
}

}  // namespace

prog::Program generate(const Shape& s, const prog::MachineFacts& m, const GenOptions& o) {
  return Generator(s, m, o).run();
}

}  // namespace mmfuzz::props
