// The shaped Program generators (props/shape.h, props/generate.h) and the
// built-in profile they default to: the profile is the bundled trace's (it
// cannot go stale), generation is deterministic, the Programs' statistics
// follow the shape and differ from the uniform shape's, and every Program
// runs clean on the unmodified model.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "mm/mm.h"
#include "mm/page_alloc/gfp.h"
#include "program/executor.h"
#include "program/text.h"
#include "props/builtin_profile.h"
#include "props/generate.h"
#include "props/shape.h"
#include "trace/source.h"

using namespace mmfuzz;
using analysis::WorkloadProfile;
using prog::Handle;
using prog::Op;
using prog::Program;
using props::Focus;
using props::GenOptions;

namespace {

mm::MmConfig small32() {
  mm::MmConfig cfg;
  cfg.machine = mm::small_machine(32 * mm::SZ_1M);
  return cfg;
}
// The fuzz targets' machine, as a Program header names it.
mm::MmConfig fuzz16() {
  prog::ProgramHeader h;
  h.version = 2;
  h.machine = "fuzz";
  return h.mm_config();
}
prog::MachineFacts facts(const mm::MmConfig& cfg) {
  const mm::Mm m(cfg);
  return prog::MachineFacts::of(m);
}

const props::Shape& shaped32() {
  static const props::Shape s = props::shape_of(props::builtin_profile().data(), facts(small32()));
  return s;
}
// The shape at the trace's own frequencies: one temperature (1), no resident
// objects; what the distribution tests compare with the profile.
const props::Shape& trace_scale32() {
  static const props::Shape s = [] {
    props::Shape t = shaped32();
    t.temperatures = {1.0};
    t.resident_slabs = 0;
    return t;
  }();
  return s;
}

constexpr Focus kFocuses[] = {Focus::all, Focus::page, Focus::slab, Focus::mempool, Focus::vm};

}  // namespace

// ---- the built-in profile ----

TEST(BuiltinProfile, IsTheBundledTracesProfile) {
  const std::string path = std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst";
  auto src = trace::open_event_source(path);
  WorkloadProfile p("arm64-6.1-boot-shell.trace.zst");
  trace::TraceEvent e;
  while (src->next(e)) p.add(e);
  p.finish();
  const char* how =
      "corpus/profiles/arm64-6.1-boot-shell.profile.json is stale: regenerate it "
      "as corpus/README.md says";
  EXPECT_TRUE(p.data() == props::builtin_profile().data()) << how;
  EXPECT_EQ(p.to_json().dump(2) + "\n", std::string(props::builtin_profile_json())) << how;
}

TEST(BuiltinProfile, RoundTripsAndHasTheVersion2Tables) {
  const WorkloadProfile& p = props::builtin_profile();
  const nlohmann::json j = p.to_json();
  EXPECT_EQ(j.at("format"), "mmfuzz-profile-2");
  EXPECT_TRUE(WorkloadProfile::from_json(j).data() == p.data());
  const analysis::ProfileData& d = p.data();
  EXPECT_EQ(d.phases.size(), analysis::kPhaseWindows);
  std::uint64_t events = 0, slab = 0;
  for (const auto& w : d.phases) events += w.events, slab += w.slab_allocs();
  EXPECT_EQ(events, d.events);
  EXPECT_EQ(slab, d.slab_allocs());
  EXPECT_EQ(d.bursts.allocs, d.slab_allocs());
  EXPECT_EQ(d.site_shapes.size(), d.call_sites.size());
  EXPECT_FALSE(d.cache_geometry.empty());
  EXPECT_EQ(d.vmalloc.source, "page_array");
  EXPECT_GT(d.mempool.slab_allocs, 0u);
}

// ---- shapes ----

TEST(Shape, ShapedTablesComeFromTheProfile) {
  const props::Shape& s = shaped32();
  const analysis::ProfileData& d = props::builtin_profile().data();
  EXPECT_EQ(s.name, "arm64-6.1-boot-shell.trace.zst");
  EXPECT_EQ(s.phases.size(), d.phases.size());
  // Boot-like growth first (kmalloc-heavy, few frees), steady churn later.
  EXPECT_GT(s.phases.front().slab_never_freed, 0.9);
  EXPECT_LT(s.phases[10].slab_never_freed, 0.1);
  EXPECT_GT(s.phases.front().mix[0], s.phases.front().mix[1]);
  EXPECT_LT(s.phases[10].mix[0], s.phases[10].mix[1]);
  EXPECT_EQ(s.kmalloc_sizes.rows.front().value, 64u);
  EXPECT_EQ(s.slab_gfp.rows.front().value, mm::GFP_KERNEL);
  EXPECT_EQ(s.orders.rows.front().value, 0u);
  EXPECT_NEAR(s.cross_cpu_free, d.cross_cpu_free_fraction(), 1e-12);
  ASSERT_FALSE(s.caches.empty());
  EXPECT_EQ(s.caches.front().name, "names_cache");
  EXPECT_EQ(s.caches.front().size, 4096u);
  // Every site's cache is one of the shape's; kvmalloc_node's sites are kvmalloc.
  bool kv = false;
  for (const props::Site& site : s.sites) {
    if (site.family == props::Family::cache) {
      ASSERT_LT(site.cache, static_cast<int>(s.caches.size()));
    }
    kv = kv || site.kvmalloc;
  }
  EXPECT_EQ(s.vmalloc_pages.rows.front().value, 4u);  // kernel stacks
  for (std::size_t mt = 0; mt < 3; ++mt)
    for (const analysis::Weighted& w : s.page_gfp_by_mt[mt].rows)
      EXPECT_EQ(mm::gfp_migratetype(static_cast<mm::gfp_t>(w.value)), static_cast<int>(mt));
  EXPECT_NE(props::describe(s).find("names_cache"), std::string::npos);
}

TEST(Shape, UniformIsFlat) {
  const prog::MachineFacts m = facts(small32());
  const props::Shape u = props::uniform_shape(m);
  EXPECT_TRUE(u.kmalloc_sizes.rows.empty());
  EXPECT_EQ(u.kmalloc_sizes.lo, 1u);
  EXPECT_EQ(u.kmalloc_sizes.hi, m.kmalloc_max_cache_size);
  EXPECT_TRUE(u.orders.rows.empty());
  EXPECT_EQ(u.phases.size(), 1u);
  for (const analysis::Weighted& w : u.slab_gfp.rows) EXPECT_EQ(w.weight, 1u);
  EXPECT_FALSE(u == shaped32());
}

// A version-1 document still makes a shape (no phases, windows or geometry).
TEST(Shape, FromAVersion1Profile) {
  nlohmann::json j = props::builtin_profile().to_json();
  j["format"] = "mmfuzz-profile-1";
  for (const char* k : {"phases", "mempool", "vmalloc"}) j.erase(k);
  for (const char* k : {"bursts", "call_site_shapes", "cache_geometry"}) j["slab"].erase(k);
  const WorkloadProfile v1 = WorkloadProfile::from_json(j);
  EXPECT_TRUE(v1.data().phases.empty());
  EXPECT_EQ(v1.data().vmalloc.source, "default");
  EXPECT_EQ(v1.data().vmalloc.pages, analysis::default_vmalloc_pages());
  const props::Shape s = props::shape_of(v1.data(), facts(small32()));
  EXPECT_EQ(s.phases.size(), 1u);
  EXPECT_FALSE(s.caches.empty());
  const Program p = props::generate(s, facts(small32()), GenOptions{.seed = 3, .ops = 300});
  const prog::Verdict vd = prog::Executor::run(p, small32());
  EXPECT_TRUE(vd.ok());
}

// ---- generated Programs ----

TEST(Generate, SameInputsSameProgramOtherSeedOther) {
  const prog::MachineFacts m = facts(small32());
  const props::Shape u = props::uniform_shape(m);
  for (const props::Shape* s : {&shaped32(), &u}) {
    for (const Focus f : kFocuses) {
      const GenOptions o{.seed = 7, .ops = 400, .focus = f};
      const Program a = props::generate(*s, m, o);
      EXPECT_GE(a.ops.size(), 400u);
      EXPECT_TRUE(a == props::generate(*s, m, o)) << props::focus_name(f);
      EXPECT_EQ(prog::print_program(a), prog::print_program(props::generate(*s, m, o)));
      EXPECT_FALSE(a == props::generate(*s, m, GenOptions{.seed = 8, .ops = 400, .focus = f}));
      // The text form reads back to the same Program (call sites included).
      EXPECT_TRUE(prog::parse_program(prog::print_program(a)) == a) << props::focus_name(f);
    }
  }
  // Shaped and uniform Programs differ.
  EXPECT_FALSE(props::generate(shaped32(), m, {}) == props::generate(u, m, {}));
}

namespace {

// What the generated Programs of one shape add up to.
struct Stats {
  std::map<std::size_t, double> kmalloc_log2, orders, migratetypes, slab_life_log2;
  std::uint64_t kmalloc = 0, pages = 0, slab_frees = 0, slab_cross = 0, page_frees = 0,
                page_cross = 0;
  std::uint64_t programs = 0, main_calls = 0;  // allocation and free calls before the teardown
  // Slab allocations by kind in the first sixteenth and in the second half.
  std::uint64_t early_kmalloc = 0, early_slab = 0, late_kmalloc = 0, late_slab = 0;
  // Allocations of the first 3/16 and of 8/16 .. 11/16 still live at the teardown.
  std::uint64_t growth = 0, growth_kept = 0, churn = 0, churn_kept = 0;
  std::uint64_t runs = 0, run_allocs = 0, longest_run = 0;
  // Slab frees after another one whose allocation was at most 4 slab
  // allocations from theirs (cohorts), of slab_seq_frees.
  std::uint64_t cohort_frees = 0, slab_seq_frees = 0;
  // Distinct call sites per window of kSiteWindow slab allocations.
  std::uint64_t windows = 0, window_sites = 0;
  // Page allocations in runs on a CPU ended by a page free there.
  std::uint64_t page_runs = 0, page_run_allocs = 0;
};

std::size_t size_bucket(std::uint64_t x) {
  return x <= 1 ? 0 : static_cast<std::size_t>(std::bit_width(x - 1));
}
std::size_t life_bucket(std::uint64_t x) {
  return static_cast<std::size_t>(std::bit_width(x));
}

// Runs of slab allocations from one named call site per CPU: accesses and
// machine ops between them do not end a run, a free does.
struct Runs {
  std::map<int, std::pair<std::uint32_t, std::uint64_t>> open;  // cpu -> (site, length)
  void close(Stats& st, int cpu) {
    auto& [site, n] = open[cpu];
    if (n) {
      ++st.runs;
      st.run_allocs += n;
      st.longest_run = std::max(st.longest_run, n);
    }
    n = 0;
  }
  void alloc(Stats& st, int cpu, std::uint32_t site) {
    auto& r = open[cpu];
    if (!site) return close(st, cpu);
    if (r.second && r.first == site) {
      ++r.second;
      return;
    }
    close(st, cpu);
    open[cpu] = {site, 1};
  }
};

// The ops a lifetime counts: allocation and free calls (as a trace's events).
bool is_call(const Op& op) {
  using K = prog::OpKind;
  switch (op.kind()) {
    case K::alloc_pages:
    case K::free_pages:
    case K::kmalloc:
    case K::kfree:
    case K::kvmalloc:
    case K::kvfree:
    case K::kmem_cache_alloc:
    case K::kmem_cache_free:
    case K::mempool_alloc:
    case K::mempool_free:
    case K::vmalloc:
    case K::vfree:
    case K::vmap:
    case K::vunmap:
    case K::ioremap:
    case K::iounmap:
      return true;
    default:
      return false;
  }
}

void add(Stats& st, const Program& p, std::size_t main_ops) {
  struct At {
    std::size_t call = 0;  // its place among the allocation and free calls
    std::size_t index = 0;
    int cpu = 0;
  };
  std::map<std::pair<prog::Space, Handle>, At> live;
  std::map<std::pair<prog::Space, Handle>, std::uint64_t> seq;  // slab allocation numbers
  std::optional<std::uint64_t> prev_seq;
  std::uint64_t next_seq = 0;
  std::vector<std::uint32_t> window;
  std::map<int, std::uint64_t> page_run;
  auto slab_born = [&](Handle h, std::uint32_t site) {
    seq[{prog::Space::object, h}] = next_seq++;
    window.push_back(site);
    if (window.size() < analysis::kSiteWindow) return;
    ++st.windows;
    st.window_sites += std::set<std::uint32_t>(window.begin(), window.end()).size();
    window.clear();
  };
  auto slab_freed = [&](Handle h) {
    const auto it = seq.find({prog::Space::object, h});
    if (it == seq.end()) return;
    if (prev_seq) {
      ++st.slab_seq_frees;
      st.cohort_frees +=
          (it->second > *prev_seq ? it->second - *prev_seq : *prev_seq - it->second) <= 4;
    }
    prev_seq = it->second;
    seq.erase(it);
  };
  Runs runs;
  const std::size_t n = p.ops.size();
  std::size_t calls = 0;
  auto born = [&](prog::Space sp, Handle h, std::size_t i, int cpu) {
    live[{sp, h}] = {calls, i, cpu};
    if (i < main_ops * 3 / 16) ++st.growth;
    if (i >= main_ops / 2 && i < main_ops * 11 / 16) ++st.churn;
  };
  auto died = [&](prog::Space sp, Handle h, std::size_t i, int cpu, bool slab) {
    const At at = live.at({sp, h});
    live.erase({sp, h});
    (slab ? st.slab_frees : st.page_frees) += 1;
    (slab ? st.slab_cross : st.page_cross) += cpu != at.cpu;
    if (i >= main_ops) {
      st.growth_kept += at.index < main_ops * 3 / 16;
      st.churn_kept += at.index >= main_ops / 2 && at.index < main_ops * 11 / 16;
    } else if (slab) {
      st.slab_life_log2[life_bucket(calls - at.call)] += 1;
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    const Op& op = p.ops[i];
    calls += is_call(op);
    if (i < main_ops) st.main_calls += is_call(op);
    const bool early = i < main_ops / 16, late = i >= main_ops / 2 && i < main_ops;
    if (const auto* k = op.get_if<prog::Kmalloc>()) {
      st.kmalloc_log2[size_bucket(k->size)] += 1;
      ++st.kmalloc;
      st.early_kmalloc += early, st.early_slab += early;
      st.late_kmalloc += late, st.late_slab += late;
      born(prog::Space::object, k->obj, i, op.cpu);
      runs.alloc(st, op.cpu, op.call_site);
      slab_born(k->obj, op.call_site);
    } else if (const auto* c = op.get_if<prog::KmemCacheAlloc>()) {
      st.early_slab += early, st.late_slab += late;
      born(prog::Space::object, c->obj, i, op.cpu);
      runs.alloc(st, op.cpu, op.call_site);
      slab_born(c->obj, op.call_site);
    } else if (const auto* bulk = op.get_if<prog::KmemCacheAllocBulk>()) {
      for (std::uint32_t j = 0; j < bulk->nr; ++j)
        born(prog::Space::object, bulk->obj + j, i, op.cpu);
    } else if (const auto* a = op.get_if<prog::AllocPages>()) {
      ++page_run[op.cpu];
      st.orders[a->order] += 1;
      st.migratetypes[static_cast<std::size_t>(mm::gfp_migratetype(a->gfp))] += 1;
      ++st.pages;
      born(prog::Space::page, a->page, i, op.cpu);
    } else if (const auto* f = op.get_if<prog::Kfree>()) {
      died(prog::Space::object, f->obj, i, op.cpu, true);
      runs.close(st, op.cpu);
      if (i < main_ops) slab_freed(f->obj);
    } else if (const auto* cf = op.get_if<prog::KmemCacheFree>()) {
      died(prog::Space::object, cf->obj, i, op.cpu, true);
      runs.close(st, op.cpu);
      if (i < main_ops) slab_freed(cf->obj);
    } else if (const auto* fp = op.get_if<prog::FreePages>()) {
      died(prog::Space::page, fp->page, i, op.cpu, false);
      if (std::uint64_t& r = page_run[op.cpu]; r && i < main_ops) {
        ++st.page_runs;
        st.page_run_allocs += r;
        r = 0;
      }
    }
  }
  for (auto& [cpu, r] : runs.open) runs.close(st, cpu);
  ++st.programs;
}

Stats stats_of(const props::Shape& s, const prog::MachineFacts& m, std::size_t ops, int seeds) {
  Stats st;
  for (int seed = 1; seed <= seeds; ++seed)
    add(st, props::generate(s, m, GenOptions{.seed = static_cast<std::uint64_t>(seed), .ops = ops}),
        ops);
  return st;
}

std::map<std::size_t, double> normalized(std::map<std::size_t, double> h) {
  double t = 0;
  for (const auto& [k, v] : h) t += v;
  for (auto& [k, v] : h) v /= t;
  return h;
}
std::map<std::size_t, double> normalized(const std::vector<std::uint64_t>& v) {
  std::map<std::size_t, double> h;
  for (std::size_t k = 0; k < v.size(); ++k)
    if (v[k]) h[k] = static_cast<double>(v[k]);
  return normalized(h);
}
std::map<std::size_t, double> normalized(const props::Dist& d) {
  std::map<std::size_t, double> h;
  for (const analysis::Weighted& w : d.rows) h[w.value] += static_cast<double>(w.weight);
  return normalized(h);
}
// Total variation distance of two distributions.
double tv(const std::map<std::size_t, double>& a, const std::map<std::size_t, double>& b) {
  std::set<std::size_t> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  double d = 0;
  for (const std::size_t k : keys) {
    const auto x = a.find(k), y = b.find(k);
    d += std::abs((x == a.end() ? 0 : x->second) - (y == b.end() ? 0 : y->second));
  }
  return d / 2;
}
// Pearson correlation over buckets 0 .. 20.
double correlation(const std::map<std::size_t, double>& a, const std::map<std::size_t, double>& b) {
  std::vector<double> x, y;
  for (std::size_t k = 0; k <= 20; ++k) {
    x.push_back(a.count(k) ? a.at(k) : 0);
    y.push_back(b.count(k) ? b.at(k) : 0);
  }
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

// The log2 histogram of the shape's slab lifetimes (in calls) as a Program
// of `calls` calls before its teardown can show them: a lifetime L is seen
// when the allocation came more than L calls before the end (probability
// (calls - L) / calls).
std::map<std::size_t, double> expected_lifetimes(const props::Lifetime& life, std::size_t ops) {
  std::map<std::size_t, double> h;
  for (const analysis::Weighted& w : life.dist.rows) {
    if (w.value == 0 || w.value > 20) continue;
    const std::uint64_t lo = std::uint64_t{1} << (w.value - 1);
    for (std::uint64_t v = lo; v < 2 * lo; ++v) {
      const auto l = std::max<std::uint64_t>(
          1, static_cast<std::uint64_t>(std::llround(static_cast<double>(v) * life.scale)));
      if (l >= ops) continue;
      h[life_bucket(l)] += static_cast<double>(w.weight) / static_cast<double>(lo) *
                           static_cast<double>(ops - l) / static_cast<double>(ops);
    }
  }
  return normalized(h);
}

}  // namespace

TEST(GenerateStats, FollowTheShapeAndNotTheUniformOne) {
  const prog::MachineFacts m = facts(small32());
  const props::Shape& s = trace_scale32();
  const props::Shape u = props::uniform_shape(m);
  const analysis::ProfileData& d = props::builtin_profile().data();
  constexpr std::size_t kOps = 1000;
  // Page runs share an order and migrate type: more Programs for as many
  // independent draws.
  const Stats a = stats_of(s, m, kOps, 64), b = stats_of(u, m, kOps, 24);
  ASSERT_GT(a.kmalloc, 500u);
  ASSERT_GT(a.pages, 500u);
  // kmalloc sizes: the trace's histogram, not a flat one.
  const auto trace_sizes = normalized(d.kmalloc_sizes.log2);
  const double shaped_corr = correlation(normalized(a.kmalloc_log2), trace_sizes);
  const double uniform_corr = correlation(normalized(b.kmalloc_log2), trace_sizes);
  EXPECT_GT(shaped_corr, 0.9);
  EXPECT_LT(uniform_corr, 0.5);
  // Cross-CPU frees at the profile's fractions (uniform: half, on 2 CPUs).
  EXPECT_NEAR(static_cast<double>(a.slab_cross) / static_cast<double>(a.slab_frees),
              s.cross_cpu_free, 0.03);
  EXPECT_NEAR(static_cast<double>(a.page_cross) / static_cast<double>(a.page_frees),
              s.page_cross_cpu_free, 0.04);
  EXPECT_NEAR(static_cast<double>(b.slab_cross) / static_cast<double>(b.slab_frees), 0.5, 0.04);
  // Page orders and migrate types.
  EXPECT_LT(tv(normalized(a.orders), normalized(s.orders)), 0.02);
  EXPECT_GT(tv(normalized(b.orders), normalized(s.orders)), 0.5);
  EXPECT_LT(tv(normalized(a.migratetypes), normalized(s.migratetypes)), 0.03);
  EXPECT_LT(tv(normalized(a.migratetypes), normalized(d.migratetypes)), 0.03);
  // Lifetimes by log2 bucket, as far as a 1000-op Program shows them; the
  // table alone (a cohort's member dies with the one before it instead:
  // CohortsLocalityAndPageRuns).
  props::Shape solo = s;
  solo.slab_life.cohort = solo.page_life.cohort = 0;
  const Stats c = stats_of(solo, m, kOps, 24);
  const auto want = expected_lifetimes(s.slab_life, c.main_calls / c.programs);
  EXPECT_LT(tv(normalized(c.slab_life_log2), want), 0.15);
  EXPECT_GT(tv(normalized(b.slab_life_log2), want), 0.3);
  // Phases: kmalloc-heavy boot first, cache churn later; growth first.
  EXPECT_GT(static_cast<double>(a.early_kmalloc) / static_cast<double>(a.early_slab), 0.6);
  EXPECT_LT(static_cast<double>(a.late_kmalloc) / static_cast<double>(a.late_slab), 0.2);
  EXPECT_NEAR(static_cast<double>(b.early_kmalloc) / static_cast<double>(b.early_slab), 0.5, 0.15);
  const double growth_kept = static_cast<double>(a.growth_kept) / static_cast<double>(a.growth);
  const double churn_kept = static_cast<double>(a.churn_kept) / static_cast<double>(a.churn);
  EXPECT_GT(growth_kept, 0.85);
  EXPECT_LT(churn_kept, growth_kept - 0.2);
  // Bursts from one call site, of the profile's mean (capped runs, and a
  // due free may end one early); the uniform shape names no call site.
  ASSERT_GT(a.runs, 0u);
  const double mean_run = static_cast<double>(a.run_allocs) / static_cast<double>(a.runs);
  EXPECT_GT(mean_run, 1.02);
  EXPECT_LT(mean_run, 2.0);
  EXPECT_GE(a.longest_run, 4u);
  EXPECT_EQ(b.runs, 0u);
}

// Each site's ops carry its name and draw from its own size table; caches
// are the shape's (the trace's names and geometry) or a mempool's; vmalloc
// areas have the shape's sizes.
TEST(GenerateStats, SitesCachesAndVmallocSizes) {
  const prog::MachineFacts m = facts(small32());
  const props::Shape& s = trace_scale32();
  std::map<std::string, std::set<std::uint64_t>> sizes;
  for (const props::Site& site : s.sites)
    for (const analysis::Weighted& w : site.sizes.rows) sizes[site.name].insert(w.value);
  std::map<std::string, std::uint64_t> created;
  std::map<std::size_t, double> vm_pages;
  std::uint64_t named = 0;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    for (const Focus f : {Focus::all, Focus::vm}) {
      const Program p = props::generate(s, m, GenOptions{.seed = seed, .ops = 1000, .focus = f});
      for (const Op& op : p.ops) {
        const std::string& site = p.strings.str(op.call_site);
        if (const auto* k = op.get_if<prog::Kmalloc>(); k && !site.empty()) {
          ++named;
          EXPECT_TRUE(sizes.at(site).count(k->size)) << site << " " << k->size;
        } else if (const auto* c = op.get_if<prog::KmemCacheCreate>()) {
          created[p.strings.str(c->name)] = c->size;
        } else if (const auto* v = op.get_if<prog::Vmalloc>()) {
          vm_pages[(v->size + m.page_size - 1) / m.page_size] += 1;
        }
      }
    }
  }
  EXPECT_GT(named, 100u);
  std::size_t from_trace = 0;
  for (const auto& [name, size] : created) {
    if (name.rfind("mempool-", 0) == 0) continue;
    const std::string& wanted = name;  // clang 14: no structured bindings in lambdas
    const auto it = std::find_if(s.caches.begin(), s.caches.end(),
                                 [&](const props::CacheSpec& c) { return c.name == wanted; });
    ASSERT_NE(it, s.caches.end()) << name;
    EXPECT_EQ(size, it->size) << name;
    ++from_trace;
  }
  EXPECT_GE(from_trace, 10u);
  EXPECT_TRUE(created.count("dentry"));
  EXPECT_LT(tv(normalized(vm_pages), normalized(s.vmalloc_pages)), 0.05);
}

// The trace's structure beyond its marginals: frees in cohorts (objects
// born together die together), few call sites at a time, page allocations
// in runs; the uniform shape has none of it.
TEST(GenerateStats, CohortsLocalityAndPageRuns) {
  const prog::MachineFacts m = facts(small32());
  const props::Shape& s = trace_scale32();
  const analysis::ProfileData& d = props::builtin_profile().data();
  const Stats a = stats_of(s, m, 1000, 16), b = stats_of(props::uniform_shape(m), m, 1000, 16);
  ASSERT_GT(a.slab_seq_frees, 500u);
  const auto frac = [](std::uint64_t x, std::uint64_t y) {
    return static_cast<double>(x) / static_cast<double>(std::max<std::uint64_t>(y, 1));
  };
  EXPECT_NEAR(s.slab_life.cohort, d.slab_life.cohort_fraction(), 1e-9);
  EXPECT_GT(s.slab_life.cohort, 0.6);  // the bundled trace: 72 %
  EXPECT_NEAR(frac(a.cohort_frees, a.slab_seq_frees), s.slab_life.cohort, 0.12);
  EXPECT_LT(frac(b.cohort_frees, b.slab_seq_frees), 0.3);
  // Sites per window: the trace's (12.3 of 64), where independent draws
  // from the same table would give about twice as many.
  ASSERT_GT(a.windows, 20u);
  EXPECT_NEAR(frac(a.window_sites, a.windows), s.sites_per_window, 2.5);
  EXPECT_GT(s.sites_per_window, 8);
  EXPECT_LT(s.sites_per_window, 16);
  // Page runs: the trace's mean run is 28.7 pages; capped at 64 and cut by
  // due frees, a Program's runs are still many pages long. Uniform: one.
  ASSERT_GT(a.page_runs, 10u);
  EXPECT_GT(frac(a.page_run_allocs, a.page_runs), 4.0);
  EXPECT_GT(d.page_bursts.runs, 1000u);
  // (uniform allocates pages one at a time; runs there are chance ones)
  EXPECT_GT(frac(a.page_run_allocs, a.page_runs), 2 * frac(b.page_run_allocs, b.page_runs));
}

// Temperatures flatten the vocabulary tables over the trace's own rows:
// large kmalloc and high orders come up, nothing the trace never showed.
TEST(GenerateStats, TemperaturesReachTheRareRows) {
  const prog::MachineFacts m = facts(small32());
  auto at = [&](double t) {
    props::Shape x = trace_scale32();
    x.temperatures = {t};
    return stats_of(x, m, 1000, 12);
  };
  const Stats cold = at(1.0), hot = at(4.0);
  const auto share = [](const std::map<std::size_t, double>& h, std::size_t from) {
    double all = 0, part = 0;
    for (const auto& [k, v] : h) (all += v, part += k >= from ? v : 0);
    return part / std::max(all, 1.0);
  };
  EXPECT_GT(share(hot.kmalloc_log2, 13), 3 * share(cold.kmalloc_log2, 13));  // > 4 KiB
  EXPECT_GT(share(hot.orders, 2), 3 * share(cold.orders, 2));
  const analysis::ProfileData& d = props::builtin_profile().data();
  for (const auto& [order, n] : hot.orders) EXPECT_GT(d.orders.at(order), 0u) << order;
  for (const auto& [bucket, n] : hot.kmalloc_log2)
    EXPECT_TRUE(bucket < d.kmalloc_sizes.log2.size() && d.kmalloc_sizes.log2[bucket]) << bucket;
  EXPECT_EQ(shaped32().temperatures, (std::vector<double>{1.0, 2.0, 4.0}));
}

// A cache the Program creates gets residents (one bulk allocation of whole
// slabs' worth) right after its creation; some die in the Program, the
// teardown frees the rest; the trace's reclaimable caches keep that flag.
TEST(Generate, ResidentsAndKnownCacheFlags) {
  const prog::MachineFacts m = facts(small32());
  const Program p =
      props::generate(shaped32(), m, GenOptions{.seed = 3, .ops = 1000, .focus = Focus::slab});
  std::size_t creates = 0, bulks = 0, resident_frees = 0;
  std::set<Handle> residents;
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    if (p.ops[i].is<prog::KmemCacheCreate>() &&
        p.strings.str(p.ops[i].get_if<prog::KmemCacheCreate>()->name).rfind("mempool-", 0)) {
      ++creates;
      ASSERT_LT(i + 1, p.ops.size());
      const auto* b = p.ops[i + 1].get_if<prog::KmemCacheAllocBulk>();
      ASSERT_TRUE(b) << "op " << i + 1;
      EXPECT_EQ(b->name, p.ops[i].get_if<prog::KmemCacheCreate>()->name);
      EXPECT_GE(b->nr, 1u);
      ++bulks;
      for (std::uint32_t j = 0; j < b->nr; ++j) residents.insert(b->obj + j);
    }
    if (const auto* f = p.ops[i].get_if<prog::KmemCacheFree>())
      resident_frees += residents.erase(f->obj);
  }
  EXPECT_GT(creates, 3u);
  EXPECT_EQ(bulks, creates);
  EXPECT_TRUE(residents.empty());  // all freed by the teardown
  EXPECT_GT(resident_frees, 0u);
  mm::Mm mm(small32());
  prog::Executor ex(mm, p.strings);
  for (const Op& op : p.ops) ex.step(op);
  EXPECT_TRUE(ex.finish().ok());
  for (const props::CacheSpec& c : shaped32().caches) {
    const bool reclaim =
        c.name == "dentry" || c.name == "inode_cache" || c.name == "radix_tree_node";
    EXPECT_TRUE(!reclaim || (c.flags & mm::SLAB_RECLAIM_ACCOUNT)) << c.name;
    EXPECT_TRUE(c.name != "names_cache" || (c.flags & mm::SLAB_HWCACHE_ALIGN)) << c.name;
  }
}

// The ballast takes every block the boot left free: the last allocations
// fail at the watermark and the zone is left between min and high.
TEST(Generate, BallastPutsTheZoneAtItsWatermark) {
  const prog::MachineFacts m = facts(small32());
  ASSERT_EQ(m.free_blocks.size(), m.max_order);
  const Program p = props::generate(
      trace_scale32(), m,
      GenOptions{.seed = 1, .ops = 1, .focus = Focus::page, .accesses = false, .ballast = true});
  mm::Mm mm(small32());
  prog::Executor ex(mm, p.strings);
  std::size_t allocs = 0, failed = 0;
  for (const Op& op : p.ops) {
    if (!op.is<prog::AllocPages>()) break;  // the ballast is first
    ++allocs;
    failed += ex.step(op).failed;
  }
  std::uint64_t blocks = 0;
  for (const std::uint64_t n : m.free_blocks) blocks += n;
  EXPECT_EQ(allocs, blocks);
  EXPECT_GT(failed, 0u);  // refused at the watermark
  const mm::zone& z = mm.page_alloc.node_data[0].node_zones[mm::ZONE_DMA];
  const auto free = static_cast<std::uint64_t>(z.vm_stat[mm::NR_FREE_PAGES]);
  EXPECT_LT(free, z.high_wmark_pages());
  EXPECT_GE(free, z.min_wmark_pages());  // no reserve taken
}

// ---- focus, accesses, teardown ----

namespace {

std::set<prog::OpKind> kinds_of(const Program& p) {
  std::set<prog::OpKind> k;
  for (const Op& op : p.ops) k.insert(op.kind());
  return k;
}

}  // namespace

TEST(Generate, FocusRestrictsTheFamilies) {
  using K = prog::OpKind;
  const prog::MachineFacts m = facts(small32());
  auto gen = [&](Focus f) {
    return kinds_of(props::generate(shaped32(), m, GenOptions{.seed = 5, .ops = 1000, .focus = f}));
  };
  const std::set<K> machine = {K::write, K::read, K::tick, K::drain_all_pages, K::check};
  auto only = [&](const std::set<K>& got, std::set<K> allowed) {
    allowed.insert(machine.begin(), machine.end());
    for (const K k : got) EXPECT_TRUE(allowed.count(k)) << prog::op_kind_name(k);
  };
  const std::set<K> page = gen(Focus::page);
  only(page, {K::alloc_pages, K::free_pages});
  EXPECT_TRUE(page.count(K::alloc_pages) && page.count(K::free_pages));
  const std::set<K> slab = gen(Focus::slab);
  only(slab,
       {K::kmalloc, K::kfree, K::kvmalloc, K::kvfree, K::kmem_cache_create, K::kmem_cache_alloc,
        K::kmem_cache_alloc_bulk, K::kmem_cache_free, K::kmem_cache_shrink, K::kmem_cache_destroy});
  for (const K k : {K::kmalloc, K::kfree, K::kmem_cache_create, K::kmem_cache_alloc,
                    K::kmem_cache_alloc_bulk, K::kmem_cache_free, K::kmem_cache_destroy})
    EXPECT_TRUE(slab.count(k)) << prog::op_kind_name(k);
  // Mempools bring the caches they allocate from.
  const std::set<K> pool = gen(Focus::mempool);
  only(pool,
       {K::mempool_create, K::mempool_alloc, K::mempool_free, K::mempool_resize, K::mempool_destroy,
        K::kmem_cache_create, K::kmem_cache_shrink, K::kmem_cache_destroy});
  for (const K k : {K::mempool_create, K::mempool_alloc, K::mempool_free, K::mempool_destroy})
    EXPECT_TRUE(pool.count(k)) << prog::op_kind_name(k);
  const std::set<K> vm = gen(Focus::vm);
  only(vm, {K::vmalloc, K::vfree, K::vmap, K::vunmap, K::ioremap, K::iounmap});
  for (const K k : {K::vmalloc, K::vfree, K::vmap, K::vunmap})
    EXPECT_TRUE(vm.count(k)) << prog::op_kind_name(k);
  // All: every family, the rare ones too (the floor), and the machine ops,
  // over a few seeds.
  std::set<K> all;
  for (std::uint64_t seed = 5; seed < 8; ++seed) {
    const std::set<K> k =
        kinds_of(props::generate(shaped32(), m, GenOptions{.seed = seed, .ops = 1000}));
    all.insert(k.begin(), k.end());
  }
  for (const K k : {K::alloc_pages, K::kmalloc, K::kmem_cache_alloc, K::vmalloc, K::mempool_alloc,
                    K::kmem_cache_shrink, K::tick, K::drain_all_pages, K::check})
    EXPECT_TRUE(all.count(k)) << prog::op_kind_name(k);
  EXPECT_EQ(props::focus_from_name("mempool"), Focus::mempool);
  EXPECT_EQ(props::focus_from_name("heap"), std::nullopt);
}

// Each allocation is written whole (at most 2 pages) right after it, and the
// same bytes are read right before its free: what the content oracle checks.
TEST(Generate, WritesAfterAllocationsReadsBeforeFrees) {
  const prog::MachineFacts m = facts(small32());
  for (const Focus f : kFocuses) {
    const Program p =
        props::generate(shaped32(), m, GenOptions{.seed = 11, .ops = 600, .focus = f});
    std::map<std::pair<prog::Space, Handle>, std::pair<std::uint64_t, std::uint64_t>> written;
    std::size_t allocs = 0, frees = 0;
    std::set<Handle> residents;  // a cache's bulk-allocated residents are not accessed
    for (const Op& op : p.ops)
      if (const auto* b = op.get_if<prog::KmemCacheAllocBulk>())
        for (std::uint32_t j = 0; j < b->nr; ++j) residents.insert(b->obj + j);
    for (std::size_t i = 0; i + 1 < p.ops.size(); ++i) {
      prog::Space sp{};
      Handle h = 0;
      prog::HandleRole role{};
      if (!prog::op_target(p.ops[i], sp, h, role) || role == prog::HandleRole::use) continue;
      if (sp == prog::Space::object && residents.count(h)) continue;
      if (p.ops[i].is<prog::Ioremap>() || p.ops[i].is<prog::Iounmap>()) continue;  // not RAM
      if (role == prog::HandleRole::alloc) {
        ++allocs;
        // A zeroing allocation is read first (its zeros), then written.
        std::size_t next = i + 1;
        if (const auto* z = p.ops[next].get_if<prog::Read>(); z && z->h == h && z->space == sp)
          ++next;
        const auto* w = p.ops[next].get_if<prog::Write>();
        ASSERT_TRUE(w && w->h == h && w->space == sp && w->offset == 0 && w->len > 0)
            << props::focus_name(f) << " op " << i;
        written[{sp, h}] = {w->offset, w->len};
      } else {
        ++frees;
        ASSERT_GT(i, 0u);
        const auto* r = p.ops[i - 1].get_if<prog::Read>();
        ASSERT_TRUE(r && r->h == h && r->space == sp) << props::focus_name(f) << " op " << i;
        EXPECT_EQ(std::make_pair(r->offset, r->len), written.at({sp, h}));
        written.erase({sp, h});
      }
    }
    EXPECT_GT(allocs, 50u) << props::focus_name(f);
    EXPECT_EQ(allocs, frees) << props::focus_name(f);  // the teardown freed everything
  }
  // Without accesses: no writes or reads; without teardown: allocations stay.
  const Program quiet = props::generate(
      shaped32(), m, GenOptions{.seed = 11, .ops = 600, .accesses = false, .teardown = false});
  EXPECT_FALSE(kinds_of(quiet).count(prog::OpKind::write));
  EXPECT_FALSE(kinds_of(quiet).count(prog::OpKind::read));
  mm::Mm mm(small32());
  prog::Executor ex(mm, quiet.strings);
  for (const Op& op : quiet.ops) ex.step(op);
  EXPECT_TRUE(ex.finish().ok());
  EXPECT_GT(ex.live_objects() + ex.live_page_allocs(), 0u);
}

// Many seeds and every focus on the unmodified model, checkers and oracles
// on: no findings, hardly a failed allocation (skipped ops), everything freed.
namespace {

void run_clean(mm::SlabVariant v) {
  for (const mm::MmConfig& base : {small32(), fuzz16()}) {
    mm::MmConfig cfg = base;
    cfg.slab.variant = v;
    const prog::MachineFacts m = facts(cfg);
    const props::Shape shaped = props::shape_of(props::builtin_profile().data(), m);
    const props::Shape uniform = props::uniform_shape(m);
    const mm::Mm booted(cfg);  // restored per Program: a boot each is slow under ASan
    mm::Mm mm(cfg);
    for (const props::Shape* s : {&shaped, &uniform}) {
      for (const Focus f : kFocuses) {
        for (std::uint64_t seed = 1; seed <= 6; ++seed) {
          const std::size_t ops = seed == 1 ? 1000 : 400;
          const Program p =
              props::generate(*s, m, GenOptions{.seed = seed, .ops = ops, .focus = f});
          mm.restore_from(booted);
          prog::ExecOptions eo;
          eo.oracle = true;  // the post-conditions too (program/oracle.h): reads see the writes
          prog::Executor ex(mm, p.strings, eo);
          for (const Op& op : p.ops) ex.step(op);
          const prog::Verdict vd = ex.finish();
          const std::string what =
              fmt::format("{} {} {} focus {} seed {}", s->name, cfg.machine.name,
                          mm::slab_variant_name(v), props::focus_name(f), seed);
          ASSERT_TRUE(vd.ok()) << what << ": " << vd.findings.front().violation.to_text();
          EXPECT_EQ(vd.ops, p.ops.size()) << what;
          EXPECT_LE(vd.skipped_ops * 100, vd.ops) << what;  // at most 1 %
          EXPECT_EQ(ex.live_objects(), 0u) << what;
          EXPECT_EQ(ex.live_page_allocs(), 0u) << what;
          EXPECT_EQ(ex.live_areas(), 0u) << what;
        }
      }
    }
  }
}

}  // namespace

TEST(GenerateOnTheModel, CleanOnSlub) {
  run_clean(mm::SlabVariant::slub);
}
TEST(GenerateOnTheModel, CleanOnSlab) {
  run_clean(mm::SlabVariant::slab);
}
TEST(GenerateOnTheModel, CleanOnSlob) {
  run_clean(mm::SlabVariant::slob);
}
