// The fuzz self-test's planted defects (mm/planted.h): for each, a small
// Program made of ops the fuzz targets generate is clean on the correct
// model and yields the expected invariant violation with the defect planted,
// at the op that exposes it (incremental checks, or the `check` op's sweep
// for the SLAB and SLOB structure checks, which only sweeps run) and not
// only in the final sweep. Built without MMFUZZ_PLANTED_DEFECTS, selecting a
// defect is a configuration error.
#include <gtest/gtest.h>

#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mm/mm.h"
#include "mm/planted.h"
#include "program/build.h"
#include "program/executor.h"
#include "program/text.h"

using namespace mmfuzz;
using mm::PlantedDefect;
using prog::CheckMode;
using prog::ExecOptions;
using prog::Executor;
using prog::Program;
using prog::ProgramBuilder;
using prog::Verdict;

namespace {

enum class Target { page_alloc, slub, vm, slab, slob };
constexpr Target kTargets[] = {Target::page_alloc, Target::slub, Target::vm, Target::slab,
                               Target::slob};

// The configurations of the fuzz targets the Programs stand for.
mm::MmConfig target_config(Target t, PlantedDefect d) {
  mm::MmConfig cfg;
  cfg.machine = mm::small_machine(16 * mm::SZ_1M);
  cfg.slab.variant = t == Target::slab   ? mm::SlabVariant::slab
                     : t == Target::slob ? mm::SlabVariant::slob
                                         : mm::SlabVariant::slub;
  cfg.slab.enabled = t != Target::page_alloc;
  cfg.vmalloc = t == Target::vm;
  cfg.planted = d;
  return cfg;
}

// A Program from its op lines, each run on CPU 0 ("<...>-0 [000] ...").
Program program(std::initializer_list<std::string_view> events) {
  std::string text(prog::kProgramHeader);
  text += '\n';
  for (const auto e : events) {
    text += "          <...>-0       [000] .....     0.000000: ";
    text += e;
    text += '\n';
  }
  return prog::parse_program(text, "planted");
}

struct Case {
  PlantedDefect defect;
  Target target;
  Program prog;
  // What must catch it: the first invariant violation, then others the same
  // op must also show.
  std::vector<std::string> invariants;
  std::uint64_t at_op;  // the op after which incremental checks see it
  // What full sweeps alone (CheckMode::full) report; null: only misuse.
  const char* full_sweep;
  // False: sweeps alone report nothing (what the check judged is gone).
  bool sweeps_see_it = true;
};

// Two order-3 blocks through the pcp lists; freeing the second one drains
// the high-order pcp list (free_high) into the buddy lists, where the two
// must merge.
Case buddy_skip_merge() {
  return {PlantedDefect::buddy_skip_merge,
          Target::page_alloc,
          program({
              "mm_page_alloc: page=0000000000000000 pfn=0x1 order=3 migratetype=-1 "
              "gfp_flags=GFP_KERNEL",
              "mm_page_alloc: page=0000000000000000 pfn=0x2 order=3 migratetype=-1 "
              "gfp_flags=GFP_KERNEL",
              "mmfuzz_write: pfn=0x1 offset=0 len=32768 byte=0x11",
              "mm_page_free: page=0000000000000000 pfn=0x1 order=3",
              "mm_page_free: page=0000000000000000 pfn=0x2 order=3",
              "mmfuzz_drain_all_pages:",
          }),
          {"buddy.coalesced"},
          4,
          "buddy.coalesced"};
}

// kmalloc-128 objects freed on their cpu slab (the do_slab_free() fast
// path): the free pointer of the freed object must name a free object.
Case slub_freelist_off_by_one() {
  return {PlantedDefect::slub_freelist_off_by_one,
          Target::slub,
          program({
              "kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=100 bytes_alloc=0 "
              "gfp_flags=GFP_KERNEL node=-1 accounted=false",
              "kmalloc: call_site=0x0 ptr=0000000000000002 bytes_req=100 bytes_alloc=0 "
              "gfp_flags=GFP_KERNEL node=-1 accounted=false",
              "mmfuzz_write: ptr=0000000000000001 offset=0 len=100 byte=0x41",
              "kfree: call_site=0x0 ptr=0000000000000001",
              "kfree: call_site=0x0 ptr=0000000000000002",
          }),
          {"slab.freelist"},
          3,
          "slab.counts"};
}

// A slub_debug cache: a freed object's red zones must hold the inactive
// pattern again.
Case redzone_not_rearmed() {
  return {PlantedDefect::redzone_not_rearmed,
          Target::slub,
          program({
              "mmfuzz_kmem_cache_create: name=rz_cache size=40 align=0 "
              "flags=SLAB_RED_ZONE|SLAB_POISON|SLAB_STORE_USER ctor=none",
              "kmem_cache_alloc: call_site=0x0 ptr=0000000000000001 name=rz_cache bytes_req=40 "
              "bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false",
              "mmfuzz_write: ptr=0000000000000001 offset=0 len=40 byte=0x22",
              "kmem_cache_free: call_site=0x0 ptr=0000000000000001 name=rz_cache",
              "mmfuzz_tick:",
          }),
          {"slab.rearm"},
          3,
          nullptr};
}

// Two vmalloc areas: each keeps an unmapped guard page after it.
Case vmalloc_no_guard() {
  return {PlantedDefect::vmalloc_no_guard,
          Target::vm,
          program({
              "mmfuzz_vmalloc: area=0x1 size=8192 api=vmalloc",
              "mmfuzz_vmalloc: area=0x2 size=4096 api=vmalloc",
              "mmfuzz_write: area=0x1 offset=0 len=8192 byte=0x33",
              "mmfuzz_vfree: area=0x1",
              "mmfuzz_vfree: area=0x2",
          }),
          {"vmalloc.guard"},
          0,
          "vmalloc.guard"};
}

// vfree() of a vmalloc area and vunmap() of a vmap area: nothing of either
// stays mapped while they wait for the lazy purge.
Case vfree_leaves_pte() {
  return {PlantedDefect::vfree_leaves_pte,
          Target::vm,
          program({
              "mmfuzz_vmalloc: area=0x1 size=12288 api=vmalloc",
              "mmfuzz_vmap: area=0x2 pages=2",
              "mmfuzz_write: area=0x1 offset=0 len=12288 byte=0x44",
              "mmfuzz_vfree: area=0x1",
              "mmfuzz_vunmap: area=0x2",
              "mmfuzz_tick:",
          }),
          {"pgtable.free_page_mapped", "vmalloc.guard"},
          3,
          "vmalloc.guard"};
}

// Takes every page GFP_KERNEL may have, largest blocks first, so the zone
// sits at its min watermark; then a GFP_NOWAIT page, which may not dip
// below it. The allocations are the ones that succeed on the correct model
// (and one failure per order): the Program is made by running it.
Case watermark_nowait_harder() {
  const mm::MmConfig cfg = target_config(Target::page_alloc, PlantedDefect::none);
  mm::Mm m(cfg);
  ProgramBuilder b;
  prog::Executor ex(m, b.program().strings, {.mode = CheckMode::off, .capture_stacks = false});
  b.drain_all_pages();
  ex.step(b.last());
  for (int order = 10; order >= 0; --order) {
    for (int i = 0; i < 64; ++i) {
      b.alloc_pages(static_cast<unsigned>(order), mm::GFP_KERNEL | mm::__GFP_NOWARN);
      if (ex.step(b.last()).failed) break;
    }
  }
  b.alloc_pages(0, mm::GFP_NOWAIT | mm::__GFP_NOWARN);
  Program p = b.take();
  const std::uint64_t last = p.ops.size() - 1;
  return {PlantedDefect::watermark_nowait_harder,
          Target::page_alloc,
          std::move(p),
          {"buddy.watermark"},
          last,
          nullptr,
          false};
}

// An order-1 page from an empty pcp list: the refill must count its pages.
Case pcp_refill_count_blocks() {
  ProgramBuilder b;
  b.drain_all_pages();
  const prog::Handle p = b.alloc_pages(1, mm::GFP_KERNEL);
  b.write(prog::Space::page, p, 0, 8192, 0x55);
  b.free_pages(p, 1);
  b.drain_all_pages();
  return {PlantedDefect::pcp_refill_count_blocks,
          Target::page_alloc,
          b.take(),
          {"buddy.pcp"},
          1,
          "buddy.pcp"};
}

// A page pool of order-9 elements; kmalloc() takes the other order-9
// block (a booted 16 MiB machine has two, and none of order 10), so the
// next mempool_alloc() lends the reserve; its mempool_free() must put the
// element back.
Case mempool_free_skips_refill() {
  ProgramBuilder b;
  const prog::Handle pool = b.mempool_create(1, prog::PoolKind::pages, "", 0, 9, mm::GFP_KERNEL);
  for (int i = 0; i < 2; ++i) b.kmalloc(2 * mm::SZ_1M, mm::GFP_KERNEL | mm::__GFP_NOWARN);
  const prog::Handle e = b.mempool_alloc(pool, mm::GFP_KERNEL);
  b.write(prog::Space::object, e, 0, 64, 0x66);
  b.mempool_free(pool, e);
  return {PlantedDefect::mempool_free_skips_refill,
          Target::slub,
          b.take(),
          {"slab.mempool"},
          5,
          "slab.mempool"};
}

// SLAB: 25 frees of 2000-byte objects on one CPU overflow its array (limit
// 24): cache_flusharray() moves batchcount objects to the shared array.
Case slab_flusharray_drops_object() {
  ProgramBuilder b;
  b.kmem_cache_create("flush_cache", 2000, 0, 0);
  const prog::Handle first = b.kmem_cache_alloc_bulk("flush_cache", mm::GFP_KERNEL, 25);
  b.write(prog::Space::object, first, 0, 2000, 0x77);
  b.kmem_cache_free_bulk("flush_cache", first, 25);
  b.check();
  return {PlantedDefect::slab_flusharray_drops_object,
          Target::slab,
          b.take(),
          {"slab.counts"},
          4,
          "slab.counts"};
}

// SLOB: two 1 KiB kmalloc blocks (896 bytes and the 128-byte header) side by
// side; freeing the second merges it with the free rest of the page.
Case slob_units_double_count() {
  ProgramBuilder b;
  const prog::Handle a = b.kmalloc(896, mm::GFP_KERNEL);
  const prog::Handle c = b.kmalloc(896, mm::GFP_KERNEL);
  b.write(prog::Space::object, c, 0, 896, 0x88);
  b.kfree(c);
  b.check();
  b.kfree(a);
  return {PlantedDefect::slob_units_double_count,
          Target::slob,
          b.take(),
          {"slab.pages", "slab.counts"},  // more free units than the page has
          4,
          "slab.counts"};
}

std::vector<Case> all_cases() {
  return {buddy_skip_merge(),        slub_freelist_off_by_one(),  redzone_not_rearmed(),
          vmalloc_no_guard(),        vfree_leaves_pte(),          watermark_nowait_harder(),
          pcp_refill_count_blocks(), mempool_free_skips_refill(), slab_flusharray_drops_object(),
          slob_units_double_count()};
}

ExecOptions options(CheckMode mode = CheckMode::incremental) {
  ExecOptions o;
  o.mode = mode;
  o.capture_stacks = false;
  return o;
}

std::string texts(const Verdict& v) {
  std::string s;
  for (const auto& f : v.findings) s += f.violation.to_text(false) + "\n";
  return s;
}

// The invariant (not misuse) ids of a verdict.
std::set<std::string> invariant_ids(const Verdict& v) {
  std::set<std::string> s;
  for (const auto& f : v.findings)
    if (f.violation.kind == inv::ViolationKind::invariant) s.insert(f.violation.invariant);
  return s;
}

// The first invariant violation, if any.
const prog::Finding* first_invariant(const Verdict& v) {
  for (const auto& f : v.findings)
    if (f.violation.kind == inv::ViolationKind::invariant) return &f;
  return nullptr;
}

class Planted : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  }
  Case c() const { return all_cases()[static_cast<std::size_t>(GetParam())]; }
};

std::string case_name(const ::testing::TestParamInfo<int>& i) {
  return mm::planted_defect_name(all_cases()[static_cast<std::size_t>(i.param)].defect);
}

// The defects the checkers catch (all but none and slob_zero_short, which
// no invariant sees: tests/test_differential.cpp).
INSTANTIATE_TEST_SUITE_P(Defects, Planted, ::testing::Range(0, mm::kNrPlantedDefects - 2),
                         case_name);

TEST_P(Planted, ProgramIsCleanWithoutTheDefect) {
  const Case k = c();
  const Verdict v = Executor::run(k.prog, target_config(k.target, PlantedDefect::none), options());
  EXPECT_TRUE(v.ok()) << texts(v);
  EXPECT_EQ(v.skipped_ops, 0u);
}

TEST_P(Planted, IncrementalChecksCatchItAtTheOp) {
  const Case k = c();
  const Verdict v = Executor::run(k.prog, target_config(k.target, k.defect), options());
  EXPECT_EQ(v.skipped_ops, 0u);
  const prog::Finding* f = first_invariant(v);
  ASSERT_NE(f, nullptr) << texts(v);
  EXPECT_EQ(f->violation.invariant, k.invariants.front()) << texts(v);
  EXPECT_EQ(f->op_index, k.at_op) << texts(v);
  std::set<std::string> at_op;
  for (const auto& x : v.findings)
    if (x.op_index == k.at_op && x.violation.kind == inv::ViolationKind::invariant)
      at_op.insert(x.violation.invariant);
  for (const auto& id : k.invariants) EXPECT_TRUE(at_op.count(id)) << id << "\n" << texts(v);
}

// Boot never trips a defect: a fuzzer has to drive the model into it.
TEST_P(Planted, BootAloneIsClean) {
  const Case k = c();
  const Program tick = program({"mmfuzz_tick:"});
  for (const Target t : kTargets) {
    const Verdict v = Executor::run(tick, target_config(t, k.defect), options());
    EXPECT_TRUE(v.ok()) << static_cast<int>(t) << "\n" << texts(v);
  }
}

// Full sweeps alone catch the structural defects too. The red zone needs
// the incremental check: a sweep cannot tell the allocator's missed re-arm
// from a Program's write into a free object, so it reports SLUB's misuse.
// The watermark is judged at the allocation: a sweep sees only what the
// zone holds now.
TEST_P(Planted, FullSweepsAlone) {
  const Case k = c();
  const Verdict v =
      Executor::run(k.prog, target_config(k.target, k.defect), options(CheckMode::full));
  if (!k.sweeps_see_it) {
    EXPECT_TRUE(v.ok()) << texts(v);
    return;
  }
  EXPECT_FALSE(v.ok());
  if (k.full_sweep)
    EXPECT_TRUE(invariant_ids(v).count(k.full_sweep)) << texts(v);
  else
    EXPECT_EQ(invariant_ids(v), std::set<std::string>{}) << texts(v);
}

TEST(PlantedDefects, NamesRoundTrip) {
  for (int d = 0; d < mm::kNrPlantedDefects; ++d) {
    const auto x = static_cast<PlantedDefect>(d);
    EXPECT_EQ(mm::parse_planted_defect(mm::planted_defect_name(x)), x);
  }
  EXPECT_EQ(mm::parse_planted_defect("no_such_defect"), std::nullopt);
}

TEST(PlantedDefects, ModelWithoutTheOptionRefusesThem) {
  if (mm::kPlantedDefects) GTEST_SKIP() << "built with MMFUZZ_PLANTED_DEFECTS";
  for (int d = 1; d < mm::kNrPlantedDefects; ++d) {
    mm::MmConfig cfg = target_config(Target::page_alloc, static_cast<PlantedDefect>(d));
    EXPECT_THROW(mm::Mm{cfg}, mm::ConfigError) << d;
  }
  EXPECT_NO_THROW(mm::Mm{target_config(Target::page_alloc, PlantedDefect::none)});
}

TEST(PlantedDefects, NoneSelectedIsTheCorrectModel) {
  // planted() is false for every defect unless one is selected.
  mm::Mm m(target_config(Target::page_alloc, PlantedDefect::none));
  for (int d = 1; d < mm::kNrPlantedDefects; ++d)
    EXPECT_FALSE(m.planted(static_cast<PlantedDefect>(d)));
}

}  // namespace
