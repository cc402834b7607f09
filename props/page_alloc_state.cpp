// Stateful property of the page allocator (rc::state): random command
// sequences against a reference model of allocated ranges. RapidCheck
// shrinks any failing sequence to a minimal one.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <map>
#include <memory>
#include <vector>

#include "invariants/checker.h"
#include "mm/mm.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::mm;

// The reference model: what the allocator has handed out, by handle order.
struct Live {
  pfn_t pfn;
  unsigned order;
  bool compound;
};

struct Sut {
  explicit Sut(const MmConfig& cfg) : mm(std::make_unique<Mm>(cfg)), engine(*mm, opts()) {
    // free_initmem() left the __init pages on CPU 0's pcp list.
    mm->page_alloc.drain_all_pages();
    boot_buddyinfo = buddyinfo();
    // What boot itself holds (the slab layer's boot caches).
    boot_used = static_cast<long>(mm->page_alloc.totalram_pages) - free_pages();
  }
  static inv::CheckOptions opts() {
    inv::CheckOptions o;
    o.capture_stacks = false;
    return o;
  }
  std::vector<std::uint64_t> buddyinfo() const {
    std::vector<std::uint64_t> v;
    for (const auto& pgdat : mm->page_alloc.node_data)
      for (const auto& z : pgdat.node_zones)
        for (unsigned o = 0; o < mm->page_alloc.max_order(); ++o)
          v.push_back(z.free_area_[o].nr_free);
    return v;
  }
  long free_pages() const {
    long n = 0;
    for (const auto& pgdat : mm->page_alloc.node_data)
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
  // After every command: the allocator agrees with the reference model and
  // no checker fired.
  void verify(const char* what) {
    engine.end_op();
    RC_ASSERT(free_pages() + static_cast<long>(live_pages()) + boot_used ==
              static_cast<long>(mm->page_alloc.totalram_pages));
    if (!engine.clean())
      RC_FAIL(std::string(what) + ":\n" + engine.violations().front().to_text(false));
  }
  std::unique_ptr<Mm> mm;
  inv::CheckEngine engine;
  std::vector<Live> live;
  std::vector<std::uint64_t> boot_buddyinfo;
  long boot_used = 0;
  std::int64_t step = 0;
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
    s.engine.begin_op(s.step++, "alloc_pages");
    const gfp_t g = kGfps[gfp];
    const pfn_t p = s.mm->page_alloc.alloc_pages(g | __GFP_NOWARN, order);
    if (p != NO_PAGE) {
      const std::uint64_t nr = std::uint64_t{1} << order;
      RC_ASSERT((p & (nr - 1)) == 0u);  // naturally aligned
      for (const auto& l : s.live)      // disjoint from everything live
        RC_ASSERT(p + nr <= l.pfn || l.pfn + (std::uint64_t{1} << l.order) <= p);
      RC_ASSERT(s.mm->pfn_to_page(p)._refcount == 1);
      RC_ASSERT(PageHead(s.mm->pfn_to_page(p)) == (order > 0 && (g & __GFP_COMP) != 0));
      if (g & __GFP_ZERO) RC_ASSERT(s.mm->ram.page_bytes(p)[0] == 0);
      if (g & __GFP_DMA) RC_ASSERT(s.mm->pfn_to_page(p).zone == ZONE_DMA);
      s.live.push_back({p, order, order > 0 && (g & __GFP_COMP)});
      // Dirty the page so zeroing on a later allocation is tested.
      const std::uint8_t junk[8] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
      s.mm->ram.write(p << s.mm->profile.page_shift, junk);
    }
    s.verify("alloc_pages");
  }
  void show(std::ostream& os) const override {
    os << "alloc_pages(" << format_gfp(kGfps[gfp]) << ", " << order << ")";
  }
};

struct FreePages : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.engine.begin_op(s.step++, "__free_pages");
    if (!s.live.empty()) {
      const std::size_t i = k % s.live.size();
      const Live l = s.live[i];
      s.live.erase(s.live.begin() + static_cast<long>(i));
      s.mm->page_alloc.__free_pages(l.pfn, l.order);
      RC_ASSERT(s.mm->pfn_to_page(l.pfn)._refcount == 0);
    }
    s.verify("__free_pages");
  }
  void show(std::ostream& os) const override { os << "__free_pages(live #" << k << ")"; }
};

struct SplitPage : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.engine.begin_op(s.step++, "split_page");
    if (!s.live.empty()) {
      const std::size_t i = k % s.live.size();
      const Live l = s.live[i];
      if (l.order > 0 && !l.compound) {
        s.live.erase(s.live.begin() + static_cast<long>(i));
        s.mm->page_alloc.split_page(l.pfn, l.order);
        for (pfn_t p = l.pfn; p < l.pfn + (pfn_t{1} << l.order); ++p)
          s.live.push_back({p, 0, false});
      }
    }
    s.verify("split_page");
  }
  void show(std::ostream& os) const override { os << "split_page(live #" << k << ")"; }
};

struct GetPutPage : Cmd {
  std::size_t k = *rc::gen::inRange<std::size_t>(0, 1 << 16);
  void run(const Model&, Sut& s) const override {
    s.engine.begin_op(s.step++, "get_page");
    if (!s.live.empty()) {
      const Live& l = s.live[k % s.live.size()];
      s.mm->page_alloc.get_page(l.pfn);
      RC_ASSERT(s.mm->pfn_to_page(l.pfn)._refcount == 2);
      s.mm->page_alloc.put_page(l.pfn);
    }
    s.verify("get_page/put_page");
  }
  void show(std::ostream& os) const override { os << "get_page+put_page(live #" << k << ")"; }
};

struct SwitchCpu : Cmd {
  int cpu = *rc::gen::inRange(0, 2);
  void run(const Model&, Sut& s) const override {
    s.engine.begin_op(s.step++, "switch_cpu");
    RC_ASSERT(s.mm->set_cpu(cpu));
    s.verify("switch_cpu");
  }
  void show(std::ostream& os) const override { os << "switch_cpu(" << cpu << ")"; }
};

struct DrainAll : Cmd {
  void run(const Model&, Sut& s) const override {
    s.engine.begin_op(s.step++, "drain_all_pages");
    s.mm->page_alloc.drain_all_pages();
    for (const auto& pgdat : s.mm->page_alloc.node_data)
      for (const auto& z : pgdat.node_zones)
        for (const auto& pcp : z.per_cpu_pageset) RC_ASSERT(pcp.count == 0);
    s.verify("drain_all_pages");
  }
  void show(std::ostream& os) const override { os << "drain_all_pages()"; }
};

MmConfig small_config() {
  MmConfig cfg;
  cfg.machine = small_machine(32 * SZ_1M);
  return cfg;
}

RC_GTEST_PROP(PageAllocState, AllocFreeAgreesWithReferenceModel, ()) {
  Sut s(small_config());
  rc::state::check(Model{}, s,
                   rc::state::gen::execOneOfWithArgs<AllocPages, AllocPages, FreePages, FreePages,
                                                     SplitPage, GetPutPage, SwitchCpu, DrainAll>());
  // Free everything: every page comes back, and with no highatomic
  // reservation left the buddy lists coalesce to exactly the boot layout.
  s.engine.begin_op(s.step++, "teardown");
  for (const auto& l : s.live) s.mm->page_alloc.__free_pages(l.pfn, l.order);
  s.live.clear();
  s.mm->page_alloc.drain_all_pages();
  s.verify("teardown");
  s.engine.full_sweep();
  if (!s.engine.clean()) RC_FAIL(s.engine.violations().front().to_text(false));
  bool highatomic = false;
  for (const auto& pgdat : s.mm->page_alloc.node_data)
    for (const auto& z : pgdat.node_zones) highatomic = highatomic || z.nr_reserved_highatomic;
  RC_TAG(highatomic ? "highatomic reserved" : "no highatomic");
  if (!highatomic) RC_ASSERT(s.buddyinfo() == s.boot_buddyinfo);
}

}  // namespace
