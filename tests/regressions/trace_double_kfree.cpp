// Regression test written by `mmfuzz shrink` from double_kfree.trace:
// the Program fires its signature alone, under the model and checks its
// header states. A test of a checker: it must keep catching this.
#include <gtest/gtest.h>

#include <algorithm>

#include "shrink/regression.h"

namespace {

constexpr const char* kSignature = "trace.double_free|kfree|trace";
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
# expect: trace.double_free|kfree|trace
           <...>-0       [000] .....     0.000000: kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=1 bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false
           <...>-0       [000] .....     0.000000: kfree: call_site=0x0 ptr=0000000000000001
           <...>-0       [000] .....     0.000000: kfree: call_site=0x0 ptr=0000000000000001
)mmfuzz";

}  // namespace

TEST(Regression, trace_double_kfree) {
  const auto r = mmfuzz::shrink::run_regression(kProgram, "trace_double_kfree");
  if (r.skipped) GTEST_SKIP() << r.why;  // a planted defect this build lacks
  EXPECT_NE(std::find(r.signatures.begin(), r.signatures.end(), kSignature), r.signatures.end())
      << kSignature << " no longer fires";
}
