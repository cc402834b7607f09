// Regression test written by `mmfuzz shrink` from wrong_order.trace:
// the Program fires its signature alone, under the model and checks its
// header states. A test of a checker: it must keep catching this.
#include <gtest/gtest.h>

#include <algorithm>

#include "shrink/regression.h"

namespace {

constexpr const char* kSignature = "page_alloc.wrong_order|free_pages|page_alloc";
constexpr const char* kProgram = R"mmfuzz(# mmfuzz program v2
# profile: linux-6.1-arm64
# machine: fuzz
# ram: 16M
# ram_base: 0x40000000
# cpus: 1
# nodes: 1
# cma: 0
# slab: slub
# slub_debug: none
# kmalloc_min: 128
# rodata: on
# vmalloc: on
# checks: all
# check: incremental
# check_every: 0
# final_sweep: on
# record_misuse: on
# misuse_writes: on
# report_leaks: off
# max_findings: 1000
# planted: none
# expect: page_alloc.wrong_order|free_pages|page_alloc
           <...>-0       [000] .....     0.000000: mm_page_alloc: page=0000000000000000 pfn=0x1 order=0 migratetype=-1 gfp_flags=GFP_KERNEL
           <...>-0       [000] .....     0.000000: mm_page_free: page=0000000000000000 pfn=0x1 order=1
)mmfuzz";

}  // namespace

TEST(Regression, trace_wrong_order) {
  const auto r = mmfuzz::shrink::run_regression(kProgram, "trace_wrong_order");
  if (r.skipped) GTEST_SKIP() << r.why;  // a planted defect this build lacks
  EXPECT_NE(std::find(r.signatures.begin(), r.signatures.end(), kSignature), r.signatures.end())
      << kSignature << " no longer fires";
}
