// Fuzz execution costs (DESIGN budgets: reset <= 10 us, >= 20 k exec/s per
// core for 64-op Programs with checks on). Inputs are random bytes cut at 64
// decoded ops, the same for every run (fixed seed).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "fuzz/harness.h"

namespace {

using mmfuzz::fuzz::Harness;

std::vector<std::vector<std::uint8_t>> inputs(const Harness& h, std::size_t nr_ops) {
  std::mt19937_64 rng(42);
  std::vector<std::vector<std::uint8_t>> out;
  while (out.size() < 64) {
    std::vector<std::uint8_t> b(nr_ops * 8);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    // Trim to nr_ops decoded ops.
    mmfuzz::fuzz::DecodeOptions o;
    o.max_ops = nr_ops;
    const auto d = mmfuzz::fuzz::decode(b, h.target(), h.tables(), o);
    out.push_back(mmfuzz::fuzz::encode(d.program, h.target(), h.tables(), o));
  }
  return out;
}

void BM_Reset(benchmark::State& state, const char* target) {
  Harness h(*mmfuzz::fuzz::find_target(target));
  const auto in = inputs(h, 64);
  std::size_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    {  // leave the work of one input to undo (Harness::run restores itself)
      const auto d = mmfuzz::fuzz::decode(in[i++ % in.size()], h.target(), h.tables());
      mmfuzz::prog::Executor ex(h.model(), d.program.strings,
                                mmfuzz::fuzz::HarnessOptions::default_exec_options());
      for (const auto& op : d.program.ops) ex.step(op);
      ex.finish();
    }
    state.ResumeTiming();
    h.reset();
  }
}

void BM_Exec64(benchmark::State& state, const char* target) {
  Harness h(*mmfuzz::fuzz::find_target(target));
  const auto in = inputs(h, 64);
  std::size_t i = 0, crashes = 0;
  for (auto _ : state) crashes += h.run(in[i++ % in.size()]).crashed();
  state.SetItemsProcessed(state.iterations());
  state.counters["crashes"] = static_cast<double>(crashes);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Reset, page_alloc, "page_alloc")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Reset, slub, "slub")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Reset, mm, "mm")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Exec64, page_alloc, "page_alloc")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Exec64, slub, "slub")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Exec64, slab, "slab")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Exec64, slob, "slob")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Exec64, vm, "vm")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Exec64, mm, "mm")->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
