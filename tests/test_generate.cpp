// The workload generator (program/generate.h): seeded and deterministic,
// clean on a correct model, its reach (every op kind, order, GFP type, API
// flavour it promises), and its Programs replay from their text to the same
// verdict, also when a planted defect makes them fail.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "mm/mm.h"
#include "program/executor.h"
#include "program/generate.h"
#include "program/text.h"

using namespace mmfuzz;
using prog::OpKind;
using prog::Program;

namespace {

mm::MmConfig small() {
  mm::MmConfig cfg;
  cfg.machine = mm::small_machine(32 * mm::SZ_1M);
  return cfg;
}

Program generate(const mm::MmConfig& cfg, std::uint64_t ops, std::uint64_t seed) {
  const mm::Mm m(cfg);
  prog::WorkloadSpec spec;
  spec.ops = ops;
  spec.seed = seed;
  return prog::generate_workload(spec, prog::MachineFacts::of(m));
}

TEST(Generate, SameSeedSameProgramOtherSeedOther) {
  const Program a = generate(small(), 3000, 7);
  EXPECT_GE(a.ops.size(), 3000u);
  EXPECT_TRUE(a == generate(small(), 3000, 7));
  EXPECT_EQ(prog::print_program(a), prog::print_program(generate(small(), 3000, 7)));
  EXPECT_FALSE(a == generate(small(), 3000, 8));
}

TEST(Generate, TextRoundTrips) {
  const Program p = generate(small(), 3000, 3);
  EXPECT_TRUE(prog::parse_program(prog::print_program(p)) == p);
}

TEST(Generate, CleanOnTheModelAndEverythingFreed) {
  for (const auto v : {mm::SlabVariant::slub, mm::SlabVariant::slab, mm::SlabVariant::slob}) {
    mm::MmConfig cfg = small();
    cfg.slab.variant = v;
    const Program p = generate(cfg, 4000, 11);
    mm::Mm m(cfg);
    prog::Executor ex(m, p.strings);
    for (const auto& op : p.ops) ex.step(op);
    const prog::Verdict vd = ex.finish();
    EXPECT_TRUE(vd.ok()) << mm::slab_variant_name(v) << ": "
                         << (vd.findings.empty() ? "" : vd.findings.front().violation.to_text());
    EXPECT_EQ(vd.ops, p.ops.size());
    // The teardown freed everything. (Leak reports would also count the
    // vmap_area objects of areas awaiting a lazy purge: no op purges now.)
    EXPECT_EQ(ex.live_objects(), 0u);
    EXPECT_EQ(ex.live_page_allocs(), 0u);
    EXPECT_EQ(ex.live_areas(), 0u);
  }
}

// What the workload promises to reach, in one 20000-op Program on the guest.
TEST(Generate, ReachesEveryOpOrderGfpAndFlavour) {
  const Program p = generate(mm::MmConfig{}, 20000, 1);
  std::set<OpKind> kinds;
  std::set<unsigned> orders;
  std::set<std::uint32_t> page_gfps, kmalloc_gfps;
  std::set<int> vmalloc_apis, ioremap_apis, pool_kinds, cpus;
  std::set<std::string> created;
  std::uint64_t sizes_above_page = 0, recreated = 0;
  for (const auto& op : p.ops) {
    kinds.insert(op.kind());
    cpus.insert(op.cpu);
    if (const auto* a = op.get_if<prog::AllocPages>()) {
      orders.insert(a->order);
      page_gfps.insert(a->gfp);
    } else if (const auto* k = op.get_if<prog::Kmalloc>()) {
      kmalloc_gfps.insert(k->gfp);
      sizes_above_page += k->size > 8192;
    } else if (const auto* v = op.get_if<prog::Vmalloc>()) {
      vmalloc_apis.insert(static_cast<int>(v->api) * 2 + (v->gfp != 0));
    } else if (const auto* io = op.get_if<prog::Ioremap>()) {
      ioremap_apis.insert(static_cast<int>(io->api));
    } else if (const auto* mp = op.get_if<prog::MempoolCreate>()) {
      pool_kinds.insert(static_cast<int>(mp->kind));
    } else if (const auto* kc = op.get_if<prog::KmemCacheCreate>()) {
      recreated += !created.insert(p.strings.str(kc->name)).second;
    }
  }
  // Every kind but the io accessors (device registers have their own
  // rules; the generator does not model them yet).
  for (int k = 0; k < prog::kNrOpKinds; ++k) {
    const auto kind = static_cast<OpKind>(k);
    if (kind == OpKind::ioread || kind == OpKind::iowrite) continue;
    EXPECT_TRUE(kinds.count(kind)) << prog::op_kind_name(kind);
  }
  EXPECT_EQ(orders.size(), 11u);       // every order of MAX_ORDER 11
  EXPECT_EQ(page_gfps.size(), 15u);    // 14 masks and GFP_TRANSHUGE_LIGHT
  EXPECT_EQ(kmalloc_gfps.size(), 8u);  // every slab GFP type
  EXPECT_GT(sizes_above_page, 0u);     // past the largest kmalloc cache
  EXPECT_EQ(vmalloc_apis.size(), 5u);  // vmalloc, __vmalloc, vzalloc, vmalloc_32, module_alloc
  EXPECT_EQ(ioremap_apis.size(), 3u);
  EXPECT_EQ(pool_kinds.size(), 3u);
  EXPECT_EQ(created.size(), 5u);
  EXPECT_GT(recreated, 0u);  // destroyed caches come back
  EXPECT_EQ(cpus.size(), 2u);
}

// A failing workload is its own reproducer: its text replays to the same
// findings.
TEST(Generate, FailingProgramReplaysFromItsText) {
  if constexpr (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  mm::MmConfig cfg = small();
  cfg.planted = mm::PlantedDefect::buddy_skip_merge;
  const Program p = generate(cfg, 3000, 9);
  const prog::Verdict a = prog::Executor::run(p, cfg);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.findings.front().violation.invariant, "buddy.coalesced");
  const prog::Verdict b = prog::Executor::run(prog::parse_program(prog::print_program(p)), cfg);
  EXPECT_EQ(b.nr_violations, a.nr_violations);
  EXPECT_EQ(b.findings.front().op_index, a.findings.front().op_index);
}

}  // namespace
