// The leak report over all three slab allocators: it counts what callers
// still hold, groups it by cache and call site, and its example address is
// the object the caller got (after any red zone, colour or debug word).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "invariants/slab.h"
#include "mm/mm.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;

namespace {

class LeakReport : public ::testing::TestWithParam<SlabVariant> {
 protected:
  static MmConfig config(SlabVariant v) {
    MmConfig cfg;
    cfg.machine = small_machine(64 * SZ_1M);
    cfg.slab.variant = v;
    return cfg;
  }
  LeakReport() : mm(config(GetParam())) {}
  Mm mm;
};

TEST_P(LeakReport, ExampleIsTheAddressTheCallerGot) {
  // Red zone and user tracking move the object away from its slot start.
  const cache_id c = mm.slab.kmem_cache_create("leaky", 72, 0, SLAB_RED_ZONE | SLAB_STORE_USER);
  ASSERT_NE(c, 0u);
  mm.op_seq = 5;
  mm.call_site = 3;
  const vaddr_t kept = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  const vaddr_t freed = mm.slab.kmem_cache_alloc(c, GFP_KERNEL);
  ASSERT_NE(kept, 0u);
  mm.slab.kmem_cache_free(c, freed);
  mm.call_site = 4;
  const vaddr_t k1 = mm.slab.kmalloc(40, GFP_KERNEL);
  const vaddr_t k2 = mm.slab.kmalloc(40, GFP_KERNEL);
  ASSERT_NE(k1, 0u);
  ASSERT_NE(k2, 0u);

  bool any = false;
  const inv::Violation v = inv::SlabChecker::leak_report(mm, &any);
  ASSERT_TRUE(any);
  const std::string text = v.to_text(false);
  EXPECT_NE(v.title.find("3 slab objects still allocated"), std::string::npos) << text;
  EXPECT_NE(text.find(fmt::format("1 objects (72 bytes) of leaky allocated at call_site#3 "
                                  "(ops #5..#5), e.g. 0x{:x}",
                                  kept)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("2 objects (80 bytes) of "), std::string::npos) << text;
  // The walk goes in address order.
  EXPECT_NE(text.find(fmt::format("e.g. 0x{:x}", std::min(k1, k2))), std::string::npos) << text;

  // Freeing everything leaves nothing to report.
  mm.slab.kmem_cache_free(c, kept);
  mm.slab.kfree(k1);
  mm.slab.kfree(k2);
  mm.tick();  // SLOB's RCU and SLAB's reap leave no pending objects either
  inv::SlabChecker::leak_report(mm, &any);
  EXPECT_FALSE(any);
}

INSTANTIATE_TEST_SUITE_P(AllAllocators, LeakReport,
                         ::testing::Values(SlabVariant::slub, SlabVariant::slab, SlabVariant::slob),
                         [](const auto& p) { return std::string(slab_variant_name(p.param)); });

}  // namespace
