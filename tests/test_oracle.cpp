// The Executor's reference models (program/oracle.h): silent on the
// unmodified model over generated workloads on every allocator, and each
// fires when the model is broken on purpose during the op it judges.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "mm/testing/corrupt.h"
#include "program/build.h"
#include "program/executor.h"
#include "program/generate.h"
#include "program/oracle.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::mm;
using prog::Executor;
using prog::ProgramBuilder;

MmConfig small(SlabVariant v) {
  MmConfig c;
  c.machine = small_machine(32 * SZ_1M);
  c.slab.variant = v;
  return c;
}

prog::ExecOptions with_oracle() {
  prog::ExecOptions o;
  o.oracle = true;
  o.capture_stacks = false;
  return o;
}

std::string ids_of(const std::vector<prog::Finding>& fs) {
  std::string s;
  for (const auto& f : fs) s += f.violation.invariant + " ";
  return s;
}

bool has(const std::vector<prog::Finding>& fs, const std::string& id) {
  for (const auto& f : fs)
    if (f.violation.invariant == id) return true;
  return false;
}

// A model broken during an op: a hook the test runs from inside the model.
struct Breaker : MmObserver {
  std::function<void(pfn_t)> on_page_alloc;
  std::function<void(vaddr_t)> on_kmalloc;
  std::function<void(vaddr_t, vaddr_t)> on_area;
  void mm_page_alloc(pfn_t pfn, unsigned, gfp_t, int) override {
    if (on_page_alloc) on_page_alloc(pfn);
  }
  void kmalloc(vaddr_t p, std::uint64_t, std::uint64_t, gfp_t, int, bool) override {
    if (on_kmalloc) on_kmalloc(p);
  }
  void vm_area_changed(vaddr_t s, vaddr_t e) override {
    if (on_area) on_area(s, e);
  }
};

// Runs b's Program on a fresh model with the oracle on; `hook` may attach a
// Breaker to the model before the ops run.
std::vector<prog::Finding> run(const ProgramBuilder& b, const MmConfig& cfg,
                               const std::function<void(Mm&, Executor&)>& hook = {}) {
  Mm m(cfg);
  Executor ex(m, b.program().strings, with_oracle());
  if (hook) hook(m, ex);
  for (const auto& op : b.program().ops) ex.step(op);
  return ex.finish().findings;
}

TEST(Oracle, KmallocSizeClassFollowsTheKernel) {
  using prog::kmalloc_size_class;
  // arm64 6.1: KMALLOC_MIN_SIZE 128 (ARCH_DMA_MINALIGN), no 96/192 caches.
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 1, 128, 12, 11), 128u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 129, 128, 12, 11), 256u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 8192, 128, 12, 11), 8192u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 8193, 128, 12, 11), 16384u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slab, 8193, 128, 12, 11), 16384u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slab, 3u << 20, 128, 12, 11), 4u << 20);
  // KMALLOC_MIN_SIZE 8: the 96 and 192 caches exist.
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 7, 8, 12, 11), 8u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 65, 8, 12, 11), 96u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 129, 8, 12, 11), 192u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slub, 193, 8, 12, 11), 256u);
  // SLOB: the size plus its header below a page, whole pages above.
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slob, 100, 128, 12, 11), 228u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slob, 4000, 128, 12, 11), 4096u);
  EXPECT_EQ(kmalloc_size_class(SlabVariant::slob, 5000, 128, 12, 11), 8192u);
}

// Generated workloads (every op family, writes and reads) on the unmodified
// model: no oracle fires on any allocator.
TEST(Oracle, SilentOnTheModelForEveryAllocator) {
  for (const SlabVariant v : {SlabVariant::slub, SlabVariant::slab, SlabVariant::slob}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      Mm boot(small(v));
      prog::WorkloadSpec spec;
      spec.ops = 3000;
      spec.seed = seed;
      const prog::Program p = prog::generate_workload(spec, prog::MachineFacts::of(boot));
      const prog::Verdict verdict = Executor::run(p, small(v), with_oracle());
      EXPECT_TRUE(verdict.ok()) << slab_variant_name(v) << " seed " << seed << ": "
                                << ids_of(verdict.findings);
    }
  }
}

TEST(Oracle, KmallocSizeOfEveryClassMatchesTheModel) {
  for (const SlabVariant v : {SlabVariant::slub, SlabVariant::slab, SlabVariant::slob}) {
    ProgramBuilder b;
    for (std::uint64_t size = 1; size <= 20000; size = size * 5 / 4 + 1)
      b.kfree(b.kmalloc(size, GFP_KERNEL));
    const auto fs = run(b, small(v));
    EXPECT_TRUE(fs.empty()) << slab_variant_name(v) << ": " << ids_of(fs);
  }
}

TEST(Oracle, ContentsFireWhenTheModelScribblesOnALiveObject) {
  ProgramBuilder b;
  const prog::Handle h = b.kmalloc(64, GFP_KERNEL);
  b.write(prog::Space::object, h, 0, 64, 0xab);
  b.kmalloc(64, GFP_KERNEL);  // the scribble happens during this op
  b.read(prog::Space::object, h, 0, 64);
  Breaker br;
  vaddr_t first = 0;
  const auto fs = run(b, small(SlabVariant::slub), [&](Mm& m, Executor& ex) {
    br.on_kmalloc = [&m, &first](vaddr_t p) {
      if (!first) {
        first = p;
        return;
      }
      const std::uint8_t x = 0x11;
      m.slab.write(first + 10, {&x, 1}, true);
    };
    m.attach(&br);
    (void)ex;
  });
  EXPECT_TRUE(has(fs, "oracle.contents")) << ids_of(fs);
}

TEST(Oracle, OverlapFiresWhenAnObjectIsHandedOutTwice) {
  ProgramBuilder b;
  b.kmalloc(100, GFP_KERNEL);
  b.kmalloc(100, GFP_KERNEL);  // the model freed the first behind the caller's back
  Breaker br;
  vaddr_t first = 0;
  bool done = false;
  const auto fs = run(b, small(SlabVariant::slub), [&](Mm& m, Executor&) {
    br.on_kmalloc = [&](vaddr_t p) {
      if (!first) {
        first = p;
        m.slab.kfree(p);  // during op 0, after its trace: the slot is free again
        done = true;
      }
    };
    m.attach(&br);
  });
  ASSERT_TRUE(done);
  EXPECT_TRUE(has(fs, "oracle.overlap")) << ids_of(fs);
}

TEST(Oracle, PageFiresOnAnAllocatedPageWithoutReference) {
  ProgramBuilder b;
  b.alloc_pages(2, GFP_KERNEL);
  Breaker br;
  const auto fs = run(b, small(SlabVariant::slub), [&](Mm& m, Executor&) {
    br.on_page_alloc = [&m](pfn_t pfn) { PageAllocCorruptor(m).set_refcount(pfn, 0); };
    m.attach(&br);
  });
  EXPECT_TRUE(has(fs, "oracle.page")) << ids_of(fs);
}

TEST(Oracle, KsizeFiresWhenTheModelReportsTooFewBytes) {
  ProgramBuilder b;
  b.kmalloc(300, GFP_KERNEL);
  Breaker br;
  const auto fs = run(b, small(SlabVariant::slub), [&](Mm& m, Executor& ex) {
    // The model's own trace event says 256 bytes: the Executor records the first one.
    br.on_kmalloc = [&ex](vaddr_t p) { ex.kmalloc(p, 300, 256, GFP_KERNEL, -1, false); };
    m.detach(&ex);
    m.attach(&br);
    m.attach(&ex);
  });
  EXPECT_TRUE(has(fs, "oracle.ksize")) << ids_of(fs);
}

TEST(Oracle, KmallocSizeFiresOnAnotherClass) {
  ProgramBuilder b;
  b.kmalloc(300, GFP_KERNEL);
  Breaker br;
  const auto fs = run(b, small(SlabVariant::slub), [&](Mm& m, Executor& ex) {
    br.on_kmalloc = [&ex](vaddr_t p) { ex.kmalloc(p, 300, 1024, GFP_KERNEL, -1, false); };
    m.detach(&ex);
    m.attach(&br);
    m.attach(&ex);
  });
  EXPECT_TRUE(has(fs, "oracle.kmalloc_size")) << ids_of(fs);
}

// kmalloc_type(): __GFP_DMA, then __GFP_RECLAIMABLE, then __GFP_ACCOUNT. Silent
// on the model; a model whose cgroup and normal kmalloc caches are swapped
// (GFP_KERNEL_ACCOUNT served by kmalloc-N) makes it fire.
TEST(Oracle, KmallocTypeFollowsTheGfp) {
  ProgramBuilder b;
  for (const gfp_t gfp :
       {GFP_KERNEL, GFP_KERNEL_ACCOUNT, GFP_KERNEL | __GFP_RECLAIMABLE, GFP_KERNEL | __GFP_DMA,
        GFP_KERNEL | __GFP_DMA | __GFP_ACCOUNT, GFP_KERNEL | __GFP_RECLAIMABLE | __GFP_ACCOUNT})
    for (const std::uint64_t size : {8u, 200u, 3000u, 8192u, 20000u}) b.kmalloc(size, gfp);
  for (const SlabVariant v : {SlabVariant::slub, SlabVariant::slab, SlabVariant::slob}) {
    const auto fs = run(b, small(v));
    EXPECT_TRUE(fs.empty()) << slab_variant_name(v) << ": " << ids_of(fs);
  }
  const auto fs = run(b, small(SlabVariant::slub), [](Mm& m, Executor&) {
    std::swap(m.slab.kmalloc_caches[KMALLOC_CGROUP], m.slab.kmalloc_caches[KMALLOC_NORMAL]);
  });
  EXPECT_TRUE(has(fs, "oracle.kmalloc_type")) << ids_of(fs);
  EXPECT_FALSE(has(fs, "oracle.kmalloc_size")) << ids_of(fs);
}

// What /proc/zoneinfo shows follows 6.1's formulas on every fuzz machine
// (zones across the DMA limit, two nodes, CMA); a watermark, a protection
// or a pcp high one page off fires.
TEST(Oracle, ZonePolicyFollowsTheKernelsFormulas) {
  ProgramBuilder b;
  b.free_pages(b.alloc_pages(0, GFP_KERNEL), 0);
  MmConfig multi = small(SlabVariant::slub);
  multi.machine.ram_base = 0xff000000;
  multi.machine.nr_nodes = 2;
  multi.machine.cma_size = 4 * SZ_1M;
  MmConfig zones = small(SlabVariant::slub);
  zones.machine.ram_base = 0xff000000;
  for (const MmConfig& c : {small(SlabVariant::slub), multi, zones, MmConfig{}}) {
    const auto fs = run(b, c);
    EXPECT_TRUE(fs.empty()) << c.machine.ram_size << " at " << c.machine.ram_base << ": "
                            << ids_of(fs) << (fs.empty() ? "" : fs[0].violation.title);
  }
  const std::vector<std::function<void(zone&)>> breaks = {
      [](zone& z) { z._watermark[WMARK_LOW] += 1; },
      [](zone& z) { z._watermark[WMARK_MIN] -= 1; },
      [](zone& z) { z.per_cpu_pageset[1].high += 1; },
      [](zone& z) { z.per_cpu_pageset[0].batch *= 2; },
      [](zone& z) { z.lowmem_reserve[ZONE_NORMAL] += 1; },
  };
  for (std::size_t i = 0; i < breaks.size(); ++i) {
    const auto fs = run(b, zones, [&](Mm& m, Executor&) {
      breaks[i](m.page_alloc.node_data[0].node_zones[ZONE_DMA]);
    });
    EXPECT_TRUE(has(fs, "oracle.zone")) << "break " << i << ": " << ids_of(fs);
  }
}

TEST(Oracle, VmapFiresOnAnUnmappedPageOfANewArea) {
  ProgramBuilder b;
  b.vmalloc(3 * 4096);
  Breaker br;
  const auto fs = run(b, small(SlabVariant::slub), [&](Mm& m, Executor&) {
    br.on_area = [&m](vaddr_t s, vaddr_t) {
      VmCorruptor vc(m);
      if (const phys_addr_t e = vc.leaf_entry(s + 4096)) vc.write_desc(e, 0);
    };
    m.attach(&br);
  });
  EXPECT_TRUE(has(fs, "oracle.vmap")) << ids_of(fs);
}

TEST(Oracle, VmapFiresOnAFreedAreaLeftMapped) {
  MmConfig cfg = small(SlabVariant::slub);
  if (!kPlantedDefects) GTEST_SKIP() << "built without planted defects";
  cfg.planted = PlantedDefect::vfree_leaves_pte;
  ProgramBuilder b;
  b.vfree(b.vmalloc(2 * 4096));
  const auto fs = run(b, cfg);
  EXPECT_TRUE(has(fs, "oracle.vmap")) << ids_of(fs);
}

// The model refuses a vunmap() of a vmalloc() area (misuse: its pages
// would leak) and keeps it mapped: no post-condition of a refused op.
TEST(Oracle, SilentOnARefusedMisuse) {
  ProgramBuilder b;
  b.vunmap(b.vmalloc(2 * 4096));
  const auto fs = run(b, small(SlabVariant::slub));
  EXPECT_FALSE(has(fs, "oracle.vmap")) << ids_of(fs);
  EXPECT_FALSE(fs.empty()) << "the misuse itself is reported";
}

// The last put_page() frees the page: the next allocation may get it back.
TEST(Oracle, PutPageOfTheLastReferenceFreesThePage) {
  ProgramBuilder b;
  b.put_page(b.alloc_pages(0, GFP_KERNEL));
  b.free_pages(b.alloc_pages(0, GFP_KERNEL), 0);
  const auto fs = run(b, small(SlabVariant::slub));
  EXPECT_TRUE(fs.empty()) << ids_of(fs);
}

}  // namespace

namespace {

// A pool whose reserve was lent (memory short) gets its element back on
// mempool_free: the model planted with mempool_free_skips_refill keeps it
// one short, and the oracle sees it at the free (the fuzz machine: two
// order-9 blocks, both taken by the kmallocs, so mempool_alloc lends).
TEST(Oracle, MempoolFiresWhenAFreeBelowMinNrDoesNotRefill) {
  if (!kPlantedDefects) GTEST_SKIP() << "built without planted defects";
  MmConfig cfg;
  cfg.machine = small_machine(16 * SZ_1M);
  const auto program = [] {
    ProgramBuilder b;
    const prog::Handle pool = b.mempool_create(1, prog::PoolKind::pages, "", 0, 9, GFP_KERNEL);
    for (int i = 0; i < 2; ++i) b.kmalloc(2 * SZ_1M, GFP_KERNEL | __GFP_NOWARN);
    const prog::Handle e = b.mempool_alloc(pool, GFP_KERNEL);
    b.mempool_free(pool, e);
    return b;
  };
  prog::ExecOptions o = with_oracle();
  o.checks = "oracle.*";  // the oracle alone, not slab.mempool
  const auto clean = prog::Executor::run(program().program(), cfg, o);
  EXPECT_TRUE(clean.ok()) << ids_of(clean.findings);
  cfg.planted = PlantedDefect::mempool_free_skips_refill;
  const auto broken = prog::Executor::run(program().program(), cfg, o);
  EXPECT_TRUE(has(broken.findings, "oracle.mempool")) << ids_of(broken.findings);
}

}  // namespace
