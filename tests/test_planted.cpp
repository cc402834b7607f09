// The fuzz self-test's planted defects (mm/planted.h): for each, a small
// Program made of ops the fuzz targets generate is clean on the correct
// model and yields the expected invariant violation with the defect planted,
// at the op that exposes it (incremental checks) and not only in the final
// sweep. Built without MMFUZZ_PLANTED_DEFECTS, selecting a defect is a
// configuration error.
#include <gtest/gtest.h>

#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mm/mm.h"
#include "mm/planted.h"
#include "program/executor.h"
#include "program/text.h"

using namespace mmfuzz;
using mm::PlantedDefect;
using prog::CheckMode;
using prog::ExecOptions;
using prog::Executor;
using prog::Program;
using prog::Verdict;

namespace {

enum class Target { page_alloc, slub, vm };

// The configurations of the fuzz targets the Programs stand for.
mm::MmConfig target_config(Target t, PlantedDefect d) {
  mm::MmConfig cfg;
  cfg.machine = mm::small_machine(16 * mm::SZ_1M);
  cfg.slab.variant = mm::SlabVariant::slub;
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

std::vector<Case> all_cases() {
  return {buddy_skip_merge(), slub_freelist_off_by_one(), redzone_not_rearmed(), vmalloc_no_guard(),
          vfree_leaves_pte()};
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
  for (const Target t : {Target::page_alloc, Target::slub, Target::vm}) {
    const Verdict v = Executor::run(tick, target_config(t, k.defect), options());
    EXPECT_TRUE(v.ok()) << static_cast<int>(t) << "\n" << texts(v);
  }
}

// Full sweeps alone catch the structural defects too. The red zone needs
// the incremental check: a sweep cannot tell the allocator's missed re-arm
// from a Program's write into a free object, so it reports SLUB's misuse.
TEST_P(Planted, FullSweepsAlone) {
  const Case k = c();
  const Verdict v =
      Executor::run(k.prog, target_config(k.target, k.defect), options(CheckMode::full));
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
