// Page allocator, boot and invariant-sweep benchmarks: the numbers behind
// the "Performance budgets" table of DESIGN.md (docs/performance.md is
// generated from this program's JSON output by bench/run.sh).
//
// Every model is booted and every live set is built outside the timed loop;
// the loops time only the operation named by the benchmark.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "mm/page_alloc/gfp.h"
#include "mm/phys/machine.h"

namespace {

using namespace mmfuzz::mm;
using mmfuzz::inv::CheckEngine;
using mmfuzz::inv::CheckOptions;

using Rng = SplitMix64;

MmConfig small_config() {
  MmConfig cfg;
  cfg.machine = small_machine();
  return cfg;
}

// The GFP masks the mixed workloads draw from (all valid on the 1 GiB and
// the small machine: every zone modifier names a populated zone or falls back).
constexpr std::array<gfp_t, 8> kMixGfps = {
    GFP_KERNEL,
    GFP_KERNEL_ACCOUNT,
    GFP_ATOMIC,
    GFP_NOWAIT | __GFP_NOWARN,
    GFP_NOFS,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL | __GFP_RECLAIMABLE,
    GFP_DMA32 | GFP_KERNEL,
};

// Orders 0..10, skewed towards small ones as real traces are: 70% order 0,
// 20% orders 1-3, 8% orders 4-6, 2% orders 7-10 (about 14 pages on average).
unsigned pick_order(Rng& rng) {
  const std::uint64_t r = rng.below(100);
  if (r < 70) return 0;
  if (r < 90) return 1 + static_cast<unsigned>(rng.below(3));
  if (r < 98) return 4 + static_cast<unsigned>(rng.below(3));
  return 7 + static_cast<unsigned>(rng.below(4));
}

// One step of the mixed workload: slot `slot` is freed if it holds a block,
// else it receives a new block of `order` allocated with kMixGfps[gfp].
struct MixStep {
  std::uint32_t slot;
  std::uint8_t order;
  std::uint8_t gfp;
};

struct Block {
  pfn_t pfn = NO_PAGE;
  unsigned order = 0;
};

std::vector<MixStep> make_mix(std::uint64_t seed, std::size_t steps, std::uint32_t slots,
                              unsigned max_order) {
  Rng rng{seed};
  std::vector<MixStep> v;
  v.reserve(steps);
  for (std::size_t i = 0; i < steps; ++i) {
    MixStep s{};
    s.slot = static_cast<std::uint32_t>(rng.below(slots));
    const unsigned o = pick_order(rng);
    s.order = static_cast<std::uint8_t>(o < max_order ? o : max_order - 1);
    s.gfp = static_cast<std::uint8_t>(rng.below(kMixGfps.size()));
    v.push_back(s);
  }
  return v;
}

// Runs one step; returns false when an allocation failed.
inline bool mix_step(Mm& m, std::vector<Block>& live, const MixStep& s) {
  Block& b = live[s.slot];
  if (b.pfn != NO_PAGE) {
    m.page_alloc.__free_pages(b.pfn, b.order);
    b.pfn = NO_PAGE;
    return true;
  }
  b.pfn = m.page_alloc.alloc_pages(kMixGfps[s.gfp], s.order);
  b.order = s.order;
  return b.pfn != NO_PAGE;
}

// A warm-up that leaves about slots/2 blocks of mixed orders live, spread
// over every CPU, and the pcp lists of every CPU populated.
std::vector<Block> warm_up(Mm& m, std::uint32_t slots, std::size_t steps) {
  std::vector<Block> live(slots);
  const auto mix = make_mix(42, steps, slots, m.page_alloc.max_order());
  std::size_t i = 0;
  for (const auto& s : mix) {
    m.set_cpu(static_cast<int>(i++ % m.nr_cpus()));
    mix_step(m, live, s);
  }
  // Order-0 churn on each CPU so every pcp list holds pages (a free refills
  // the list the page belongs to; the allocations pulled in a batch).
  for (unsigned cpu = 0; cpu < m.nr_cpus(); ++cpu) {
    m.set_cpu(static_cast<int>(cpu));
    std::vector<pfn_t> tmp;
    for (const gfp_t g : {GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE}) {
      for (int k = 0; k < 8; ++k) tmp.push_back(m.page_alloc.alloc_pages(g, 0));
      for (unsigned o = 1; o <= 3; ++o) tmp.push_back(m.page_alloc.alloc_pages(g, o));
    }
    for (std::size_t k = 0; k < tmp.size(); ++k) {
      if (tmp[k] == NO_PAGE) continue;
      const unsigned o = (k % 11) < 8 ? 0u : static_cast<unsigned>(k % 11) - 7u;
      if (k % 3 == 0)
        live.push_back({tmp[k], o});  // keep a few
      else
        m.page_alloc.__free_pages(tmp[k], o);
    }
  }
  m.set_cpu(0);
  return live;
}

std::uint64_t count_live(const std::vector<Block>& live) {
  std::uint64_t n = 0;
  for (const auto& b : live) n += b.pfn != NO_PAGE;
  return n;
}

std::uint64_t pcp_pages(const Mm& m) {
  std::uint64_t n = 0;
  for (const auto& node : m.page_alloc.node_data)
    for (const auto& z : node.node_zones)
      for (const auto& pcp : z.per_cpu_pageset) n += static_cast<std::uint64_t>(pcp.count);
  return n;
}

// ---- order-0 alloc + free through the pcp lists ----

// Budget: <= 50 ns per alloc+free pair. One iteration = one pair; the page
// comes from and goes back to this CPU's pcp list (no buddy work after the
// first refill).
void BM_Order0AllocFreePcp(benchmark::State& state) {
  Mm m;
  for (auto _ : state) {
    const pfn_t p = m.page_alloc.alloc_pages(GFP_KERNEL, 0);
    benchmark::DoNotOptimize(p);
    m.page_alloc.__free_pages(p, 0);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("item = alloc+free pair");
}
BENCHMARK(BM_Order0AllocFreePcp);

// The replay proxy (budget >= 3 M events/s): the same loop with a CheckEngine
// attached and begin_op/end_op around each alloc and each free, so every
// event runs the incremental checks. Items are events (2 per iteration).
void BM_Order0AllocFreePcpChecked(benchmark::State& state) {
  Mm m;
  CheckOptions co;
  co.capture_stacks = false;
  CheckEngine engine(m, co);
  std::int64_t op = 0;
  for (auto _ : state) {
    engine.begin_op(op++, "alloc_pages");
    const pfn_t p = m.page_alloc.alloc_pages(GFP_KERNEL, 0);
    benchmark::DoNotOptimize(p);
    engine.end_op();
    engine.begin_op(op++, "__free_pages");
    m.page_alloc.__free_pages(p, 0);
    engine.end_op();
  }
  if (!engine.clean()) state.SkipWithError("the checkers reported a violation");
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * 2), benchmark::Counter::kIsRate);
  state.SetLabel("item = one event (alloc or free)");
}
BENCHMARK(BM_Order0AllocFreePcpChecked);

// ---- a mixed workload: orders 0..10, several GFP types ----

constexpr std::uint32_t kMixSlots = 4096;  // about 2048 blocks live in steady state
constexpr std::size_t kMixSteps = 1 << 16;

void BM_MixedOrders(benchmark::State& state) {
  Mm m;
  std::vector<Block> live(kMixSlots);
  const auto mix = make_mix(1, kMixSteps, kMixSlots, m.page_alloc.max_order());
  for (const auto& s : mix) mix_step(m, live, s);  // reach the steady state
  std::size_t i = 0;
  std::uint64_t failures = 0;
  for (auto _ : state) {
    failures += !mix_step(m, live, mix[i]);
    i = (i + 1) & (kMixSteps - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["live_blocks"] = static_cast<double>(count_live(live));
  state.counters["alloc_failures"] = static_cast<double>(failures);
  state.SetLabel("item = one alloc or free");
}
BENCHMARK(BM_MixedOrders);

// ---- boot ----

// Construction only (the previous model is destroyed with the timer paused).
void boot_bench(benchmark::State& state, const MmConfig& cfg) {
  std::optional<Mm> m;
  for (auto _ : state) {
    state.PauseTiming();
    m.reset();
    state.ResumeTiming();
    m.emplace(cfg);
    benchmark::DoNotOptimize(&*m);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["free_pages"] = static_cast<double>(m->page_alloc.totalram_pages);
}

void BM_Boot1GiB(benchmark::State& state) {
  boot_bench(state, MmConfig{});
}
BENCHMARK(BM_Boot1GiB)->Unit(benchmark::kMillisecond);

// The current cost of a fresh fuzzing model (budget for reset: <= 10 us,
// which snapshot/restore has to meet).
void BM_BootSmall(benchmark::State& state) {
  boot_bench(state, small_config());
}
BENCHMARK(BM_BootSmall)->Unit(benchmark::kMicrosecond);

// ---- full invariant sweep ----

void sweep_bench(benchmark::State& state, const MmConfig& cfg, std::uint32_t slots,
                 std::size_t steps) {
  Mm m(cfg);
  const auto live = warm_up(m, slots, steps);
  CheckOptions co;
  co.capture_stacks = false;
  co.incremental = false;
  CheckEngine engine(m, co);
  for (auto _ : state) engine.full_sweep();
  if (!engine.clean()) state.SkipWithError("the checkers reported a violation");
  state.SetItemsProcessed(state.iterations());
  state.counters["live_blocks"] = static_cast<double>(count_live(live));
  state.counters["pcp_pages"] = static_cast<double>(pcp_pages(m));
}

// Budget: <= 20 ms on the 1 GiB model.
void BM_FullSweep1GiB(benchmark::State& state) {
  sweep_bench(state, MmConfig{}, 8192, 1 << 15);
}
BENCHMARK(BM_FullSweep1GiB)->Unit(benchmark::kMillisecond);

void BM_FullSweepSmall(benchmark::State& state) {
  sweep_bench(state, small_config(), 256, 1 << 12);
}
BENCHMARK(BM_FullSweepSmall)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
