// Slab fast paths per allocator (DESIGN budget: kmalloc+kfree, checks off,
// <= 60 ns). Arg 0/1/2 selects SLUB, SLAB, SLOB.
#include <benchmark/benchmark.h>

#include <memory>

#include "invariants/checker.h"
#include "mm/mm.h"

namespace {

using namespace mmfuzz::mm;

std::unique_ptr<Mm> boot(benchmark::State& state) {
  MmConfig cfg;
  cfg.slab.variant = static_cast<SlabVariant>(state.range(0));
  try {
    return std::make_unique<Mm>(cfg);
  } catch (const ConfigError& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

const char* label(benchmark::State& state) {
  return slab_variant_name(static_cast<SlabVariant>(state.range(0)));
}

// One iteration = kmalloc(64) + kfree: the per-CPU fast paths.
void BM_KmallocKfree(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  for (auto _ : state) {
    const vaddr_t p = mm->slab.kmalloc(64, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    mm->slab.kfree(p);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(label(state)) + ", item = kmalloc+kfree pair");
}
BENCHMARK(BM_KmallocKfree)->Arg(0)->Arg(1)->Arg(2);

void BM_KmemCacheAllocFree(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  const cache_id c = mm->slab.kmem_cache_create("bench_cache", 192, 0, SLAB_HWCACHE_ALIGN);
  for (auto _ : state) {
    const vaddr_t p = mm->slab.kmem_cache_alloc(c, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    mm->slab.kmem_cache_free(c, p);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(label(state)) + ", item = alloc+free pair");
}
BENCHMARK(BM_KmemCacheAllocFree)->Arg(0)->Arg(1)->Arg(2);

// With every check on: begin_op/end_op around each call (events/s).
void BM_KmallocKfreeChecked(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  mmfuzz::inv::CheckOptions o;
  o.capture_stacks = false;
  mmfuzz::inv::CheckEngine engine(*mm, o);
  std::int64_t op = 0;
  for (auto _ : state) {
    engine.begin_op(op++, "kmalloc");
    const vaddr_t p = mm->slab.kmalloc(64, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    engine.end_op();
    engine.begin_op(op++, "kfree");
    mm->slab.kfree(p);
    engine.end_op();
  }
  if (!engine.clean()) state.SkipWithError("checkers reported a violation");
  state.SetItemsProcessed(2 * state.iterations());
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(2 * state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(label(state)) + ", item = one event");
}
BENCHMARK(BM_KmallocKfreeChecked)->Arg(0)->Arg(1)->Arg(2);

void BM_KmemCacheAllocFreeChecked(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  const cache_id c = mm->slab.kmem_cache_create("bench_cache", 192, 0, SLAB_HWCACHE_ALIGN);
  mmfuzz::inv::CheckOptions o;
  o.capture_stacks = false;
  mmfuzz::inv::CheckEngine engine(*mm, o);
  std::int64_t op = 0;
  for (auto _ : state) {
    engine.begin_op(op++, "kmem_cache_alloc");
    const vaddr_t p = mm->slab.kmem_cache_alloc(c, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    engine.end_op();
    engine.begin_op(op++, "kmem_cache_free");
    mm->slab.kmem_cache_free(c, p);
    engine.end_op();
  }
  if (!engine.clean()) state.SkipWithError("checkers reported a violation");
  state.SetItemsProcessed(2 * state.iterations());
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(2 * state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(label(state)) + ", item = one event");
}
BENCHMARK(BM_KmemCacheAllocFreeChecked)->Arg(0)->Arg(1)->Arg(2);

// A full sweep (buddy and slab checkers) of the 1 GiB model holding 20000
// kmalloc objects of 8..2048 bytes.
void BM_SlabFullSweep1GiB(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  SplitMix64 rng{11};
  std::vector<vaddr_t> live;
  for (int i = 0; i < 20000; ++i) live.push_back(mm->slab.kmalloc(8 + rng.below(2041), GFP_KERNEL));
  for (std::size_t i = 0; i < live.size(); i += 3) mm->slab.kfree(live[i]);
  mmfuzz::inv::CheckOptions o;
  o.capture_stacks = false;
  mmfuzz::inv::CheckEngine engine(*mm, o);
  for (auto _ : state) engine.full_sweep();
  if (!engine.clean()) state.SkipWithError("checkers reported a violation");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(label(state)) + ", item = one sweep");
}
BENCHMARK(BM_SlabFullSweep1GiB)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// A mixed workload of sizes 8..8192 with ~2000 live objects.
void BM_KmallocMixed(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  std::vector<vaddr_t> slots(4096, 0);
  SplitMix64 rng{7};
  std::vector<std::pair<std::uint32_t, std::uint32_t>> steps(1 << 16);
  for (auto& s : steps)
    s = {static_cast<std::uint32_t>(rng.below(slots.size())),
         static_cast<std::uint32_t>(8 + rng.below(8185))};
  std::size_t i = 0;
  for (auto _ : state) {
    const auto [slot, size] = steps[i++ & (steps.size() - 1)];
    if (slots[slot]) {
      mm->slab.kfree(slots[slot]);
      slots[slot] = 0;
    } else {
      slots[slot] = mm->slab.kmalloc(size, GFP_KERNEL);
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(label(state)) + ", item = one kmalloc or kfree");
}
BENCHMARK(BM_KmallocMixed)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
