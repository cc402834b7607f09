// Kernel-VM layer benchmarks (mm/vm): vmalloc+vfree and ioremap+iounmap
// round trips, a full walk of the booted page tables, and the per-CPU TLB
// model's hit and miss paths. All on the default booted 1 GiB model; boots
// and setup stay outside the timed loops. No DESIGN.md budget covers these.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "mm/mm.h"

namespace {

using namespace mmfuzz::mm;

constexpr std::uint64_t kPage = 4096;
// Mm::tick() runs every kTickEvery iterations of the alloc/free loops: that
// is where the model runs drain_vmap_work, so the loops pay for the lazy
// purge (TLB flush, vmap_area frees, free-space merging) once vmap_lazy_nr
// passes lazy_max_pages() (16384 pages on the 2-CPU model), amortized over
// the iterations, as the kernel does. The tick also runs kswapd's check.
constexpr std::int64_t kTickEvery = 32;

std::unique_ptr<Mm> boot(benchmark::State& state, bool rodata_full = false) {
  MmConfig cfg;
  cfg.rodata_full = rodata_full;
  try {
    return std::make_unique<Mm>(cfg);
  } catch (const ConfigError& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

// One iteration = vmalloc(pages) + vfree(); arg = pages. 1024 pages take
// the vmalloc'd page-array path (more than 512 pointers).
void BM_VmallocVfree(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  const std::uint64_t size = static_cast<std::uint64_t>(state.range(0)) * kPage;
  const std::uint64_t purges = mm->vmalloc.nr_purges;
  std::int64_t i = 0;
  for (auto _ : state) {
    const vaddr_t a = mm->vmalloc.vmalloc(size);
    if (!a) {
      state.SkipWithError("vmalloc failed");
      break;
    }
    benchmark::DoNotOptimize(a);
    mm->vmalloc.vfree(a);
    if (++i % kTickEvery == 0) mm->tick();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["purges"] = static_cast<double>(mm->vmalloc.nr_purges - purges);
  state.SetLabel("item = vmalloc+vfree pair, Mm::tick() every 32");
}
BENCHMARK(BM_VmallocVfree)->Arg(1)->Arg(16)->Arg(1024);

// One iteration = ioremap(pl011, 4 KiB) + iounmap().
void BM_IoremapIounmap(benchmark::State& state) {
  auto mm = boot(state);
  if (!mm) return;
  const std::uint64_t purges = mm->vmalloc.nr_purges;
  std::int64_t i = 0;
  for (auto _ : state) {
    const vaddr_t a = mm->vmalloc.ioremap(0x09000000, kPage);
    if (!a) {
      state.SkipWithError("ioremap failed");
      break;
    }
    benchmark::DoNotOptimize(a);
    mm->vmalloc.iounmap(a);
    if (++i % kTickEvery == 0) mm->tick();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["purges"] = static_cast<double>(mm->vmalloc.nr_purges - purges);
  state.SetLabel("item = ioremap+iounmap pair, Mm::tick() every 32");
}
BENCHMARK(BM_IoremapIounmap);

// One iteration = for_each_desc over the whole swapper_pg_dir of the booted
// model, counting leaves. Arg 0: rodata=on (block-mapped linear map), arg 1:
// rodata=full (262144 linear-map PTEs).
void BM_PgtableWalk1GiB(benchmark::State& state) {
  auto mm = boot(state, state.range(0) != 0);
  if (!mm) return;
  std::uint64_t leaves = 0, descs = 0;
  for (auto _ : state) {
    leaves = descs = 0;
    mm->pgtable.for_each_desc([&](int level, vaddr_t, phys_addr_t, pteval_t d) {
      ++descs;
      const pteval_t type = d & PTE_TYPE_MASK;
      if (level == PTE ? type == PTE_TYPE_PAGE : type == PMD_TYPE_SECT) ++leaves;
    });
    benchmark::DoNotOptimize(leaves);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["leaves"] = static_cast<double>(leaves);
  state.counters["descriptors"] = static_cast<double>(descs);
  state.SetLabel(state.range(0) ? "rodata=full, item = full walk" : "rodata=on, item = full walk");
}
BENCHMARK(BM_PgtableWalk1GiB)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// translate_cpu() of vmalloc pages (4-level walks on a miss). Hit: the same
// 64 pages over and over, always in CPU 0's TLB. Miss: 8192 distinct pages
// in turn, more than the 4096-entry TLB holds, so every access walks the
// tables and fills an entry (the TLB empties each time it is full).
void translate_cpu_loop(benchmark::State& state, std::uint64_t pages) {
  auto mm = boot(state);
  if (!mm) return;
  const vaddr_t a = mm->vmalloc.vmalloc(8192 * kPage);
  if (!a) {
    state.SkipWithError("vmalloc failed");
    return;
  }
  for (std::uint64_t p = 0; p < pages; ++p) mm->pgtable.translate_cpu(0, a + p * kPage);
  std::uint64_t p = 0;
  for (auto _ : state) {
    const auto pa = mm->pgtable.translate_cpu(0, a + p * kPage + 8);
    benchmark::DoNotOptimize(pa);
    if (++p == pages) p = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("item = one translate_cpu()");
}
void BM_TranslateCpuHit(benchmark::State& state) {
  translate_cpu_loop(state, 64);
}
BENCHMARK(BM_TranslateCpuHit);
void BM_TranslateCpuMiss(benchmark::State& state) {
  translate_cpu_loop(state, 8192);
}
BENCHMARK(BM_TranslateCpuMiss);

}  // namespace

BENCHMARK_MAIN();
