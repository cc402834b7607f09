// Stateful property of the page allocator (rc::state): random command
// sequences against a reference model of allocated ranges. Each command is
// an op of a Program the Executor runs (props/program_run.h); RapidCheck
// shrinks any failing sequence to a minimal one and the failure carries the
// Program, ready for `mmfuzz replay`.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <vector>

#include "mm/mm.h"
#include "props/program_run.h"
#include "props/selftest.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::mm;
using prog::Handle;
using prog::OpResult;
using prog::Space;

// The reference model: what the allocator has handed out, by handle.
struct Live {
  Handle h;
  pfn_t pfn;
  unsigned order;
  bool compound;
};

prog::ExecOptions exec_options() {
  prog::ExecOptions o;
  o.capture_stacks = false;
  return o;
}

struct Sut {
  explicit Sut(const MmConfig& cfg) : run(cfg, exec_options()) {}
  void setup() {
    // free_initmem() left the __init pages on CPU 0's pcp list.
    run.b().drain_all_pages();
    step();
    boot_buddyinfo = buddyinfo();
    // What boot itself holds (the slab layer's boot caches).
    boot_used = static_cast<long>(mm().page_alloc.totalram_pages) - free_pages();
  }
  Mm& mm() { return run.mm(); }
  std::vector<std::uint64_t> buddyinfo() {
    std::vector<std::uint64_t> v;
    for (const auto& pgdat : mm().page_alloc.node_data)
      for (const auto& z : pgdat.node_zones)
        for (unsigned o = 0; o < mm().page_alloc.max_order(); ++o)
          v.push_back(z.free_area_[o].nr_free);
    return v;
  }
  long free_pages() {
    long n = 0;
    for (const auto& pgdat : mm().page_alloc.node_data)
      for (const auto& z : pgdat.node_zones) {
        n += z.vm_stat[NR_FREE_PAGES];
        for (const auto& pcp : z.per_cpu_pageset) n += pcp.count;
      }
    return n;
  }
  std::uint64_t live_pages() const {
    std::uint64_t n = 0;
    for (const auto& l : live) n += std::uint64_t{1} << l.order;
    return n;
  }
  // Runs the op just appended; it ran, on the CPU the Program names.
  OpResult step() {
    const OpResult r = run.step();
    RC_ASSERT(r.ran);
    RC_ASSERT(mm().cpu() == cpu);
    return r;
  }
  // After every command: the allocator agrees with the reference model (the
  // checkers already ran with the op).
  void verify() {
    RC_ASSERT(free_pages() + static_cast<long>(live_pages()) + boot_used ==
              static_cast<long>(mm().page_alloc.totalram_pages));
    RC_ASSERT(run.ex().live_page_allocs() == live.size());
  }
  props::ProgramRun run;
  std::vector<Live> live;
  std::vector<std::uint64_t> boot_buddyinfo;
  long boot_used = 0;
  int cpu = 0;
};

struct Model {};  // the reference model lives in Sut: results are not predictable
using Cmd = rc::state::Command<Model, Sut>;

const gfp_t kGfps[] = {GFP_KERNEL,
                       GFP_KERNEL_ACCOUNT,
                       GFP_ATOMIC,
                       GFP_NOWAIT,
                       GFP_HIGHUSER_MOVABLE,
                       GFP_KERNEL | __GFP_RECLAIMABLE,
                       GFP_KERNEL | __GFP_COMP,
                       GFP_DMA | GFP_KERNEL,
                       GFP_KERNEL | __GFP_ZERO};

struct AllocPages : Cmd {
  unsigned order = *rc::gen::weightedOneOf<unsigned>(
      {{6, rc::gen::just(0u)}, {3, rc::gen::inRange(1u, 4u)}, {1, rc::gen::inRange(4u, 11u)}});
  std::size_t gfp = *rc::gen::inRange<std::size_t>(0, sizeof kGfps / sizeof kGfps[0]);
  void run(const Model&, Sut& s) const override {
    const gfp_t g = kGfps[gfp];
    const Handle h = s.run.b().alloc_pages(order, g | __GFP_NOWARN);
    const OpResult r = s.step();
    if (!r.failed) {
      RC_ASSERT(r.page_alloc);
      RC_ASSERT(r.order == order);
      const pfn_t p = r.pfn;
      const std::uint64_t nr = std::uint64_t{1} << order;
      RC_ASSERT((p & (nr - 1)) == 0u);  // naturally aligned
      for (const auto& l : s.live)      // disjoint from everything live
        RC_ASSERT(p + nr <= l.pfn || l.pfn + (std::uint64_t{1} << l.order) <= p);
      RC_ASSERT(s.mm().pfn_to_page(p)._refcount == 1);
      RC_ASSERT(PageHead(s.mm().pfn_to_page(p)) == (order > 0 && (g & __GFP_COMP) != 0));
      if (g & __GFP_ZERO) {
        const auto bytes = s.mm().ram.page_bytes(p);
        RC_ASSERT(std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t x) { return x == 0; }));
      }
      if (g & __GFP_DMA) RC_ASSERT(s.mm().pfn_to_page(p).zone == ZONE_DMA);
      s.live.push_back({h, p, order, order > 0 && (g & __GFP_COMP)});
      // Dirty the page so zeroing on a later allocation is tested.
      s.run.b().write(Space::page, h, 0, 8, 0xde);
      RC_ASSERT(!s.step().failed);
      RC_ASSERT(s.mm().ram.page_bytes(p)[7] == 0xde);
    }
    s.verify();
  }
  void show(std::ostream& os) const override {
    os << "alloc_pages(" << format_gfp(kGfps[gfp]) << ", " << order << ")";
  }
};

struct FreePages : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    if (!s.live.empty()) {
      const std::size_t i = k % s.live.size();
      const Live l = s.live[i];
      s.live.erase(s.live.begin() + static_cast<long>(i));
      s.run.b().free_pages(l.h, l.order);
      s.step();
      RC_ASSERT(s.mm().pfn_to_page(l.pfn)._refcount == 0);
    }
    s.verify();
  }
  void show(std::ostream& os) const override { os << "__free_pages(live #" << k << ")"; }
};

struct SplitPage : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    if (!s.live.empty()) {
      const std::size_t i = k % s.live.size();
      const Live l = s.live[i];
      if (l.order > 0 && !l.compound) {
        s.live.erase(s.live.begin() + static_cast<long>(i));
        s.run.b().split_page(l.h);
        s.step();
        // Every page is now an order-0 allocation of its own.
        for (pfn_t j = 0; j < (pfn_t{1} << l.order); ++j) {
          RC_ASSERT(s.mm().pfn_to_page(l.pfn + j)._refcount == 1);
          s.live.push_back({l.h + j, l.pfn + j, 0, false});
        }
      }
    }
    s.verify();
  }
  void show(std::ostream& os) const override { os << "split_page(live #" << k << ")"; }
};

// The CPU the following ops run on (the Program's CPU column).
struct SwitchCpu : Cmd {
  int cpu = *rc::gen::inRange(0, 2);
  void run(const Model&, Sut& s) const override {
    s.run.b().set_cpu(cpu);
    s.cpu = cpu;
    s.verify();
  }
  void show(std::ostream& os) const override { os << "switch_cpu(" << cpu << ")"; }
};

struct DrainAll : Cmd {
  void run(const Model&, Sut& s) const override {
    s.run.b().drain_all_pages();
    s.step();
    for (const auto& pgdat : s.mm().page_alloc.node_data)
      for (const auto& z : pgdat.node_zones)
        for (const auto& pcp : z.per_cpu_pageset) RC_ASSERT(pcp.count == 0);
    s.verify();
  }
  void show(std::ostream& os) const override { os << "drain_all_pages()"; }
};

// get_page()/put_page() (refcount 2 while both are held) come back as a
// command once the op set has them.
void page_alloc_property(const MmConfig& cfg) {
  Sut s(cfg);
  props::with_program(s.run, [&] {
    s.setup();
    rc::state::check(Model{}, s,
                     rc::state::gen::execOneOfWithArgs<AllocPages, AllocPages, FreePages, FreePages,
                                                       SplitPage, SwitchCpu, DrainAll>());
    // Free everything: every page comes back, and with no highatomic
    // reservation left the buddy lists coalesce to exactly the boot layout.
    for (const auto& l : s.live) s.run.b().free_pages(l.h, l.order);
    s.live.clear();
    s.run.b().drain_all_pages();
    s.run.b().check();
    s.step();
    s.verify();
    s.run.finish();
    bool highatomic = false;
    for (const auto& pgdat : s.mm().page_alloc.node_data)
      for (const auto& z : pgdat.node_zones) highatomic = highatomic || z.nr_reserved_highatomic;
    RC_TAG(highatomic ? "highatomic reserved" : "no highatomic");
    if (!highatomic) RC_ASSERT(s.buddyinfo() == s.boot_buddyinfo);
  });
}

MmConfig small_config() {
  MmConfig cfg;
  cfg.machine = small_machine(32 * SZ_1M);
  return cfg;
}

RC_GTEST_PROP(PageAllocState, AllocFreeAgreesWithReferenceModel, ()) {
  page_alloc_property(small_config());
}

// The property catches a planted merge bug, and its failure is a Program
// that replays to the same checker finding.
TEST(PageAllocState, FailureCarriesAReplayableProgram) {
  MmConfig cfg = small_config();
  cfg.planted = PlantedDefect::buddy_skip_merge;
  props::expect_failure_with_program([&] { page_alloc_property(cfg); }, cfg, "buddy.coalesced");
}

}  // namespace
