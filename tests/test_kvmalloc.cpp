// kvmalloc_node() and kvfree() (mm/util): the kmalloc attempt and its
// quieter mask above a page, the vmalloc fallback, the masks that may not
// fall back, the INT_MAX limit, and kvfree() of either kind of address.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/util.h"

using namespace mmfuzz::mm;

namespace {

constexpr std::uint64_t kPage = 4096;

struct Recorder : MmObserver {
  std::vector<Misuse> misuses;
  std::vector<gfp_t> kmalloc_gfps;  // every kmalloc's mask, as traced
  void misuse(const Misuse& m) override { misuses.push_back(m); }
  void kmalloc(vaddr_t, std::uint64_t, std::uint64_t, gfp_t gfp, int, bool) override {
    kmalloc_gfps.push_back(gfp);
  }
  std::set<std::string> ids() const {
    std::set<std::string> s;
    for (const auto& m : misuses) s.insert(misuse_id(m.kind));
    return s;
  }
};

class KvmallocTest : public ::testing::Test {
 protected:
  KvmallocTest() : mm(config()) { mm.attach(&rec); }
  ~KvmallocTest() override { mm.detach(&rec); }
  static MmConfig config() {
    MmConfig cfg;
    cfg.machine = small_machine(32 * SZ_1M);
    return cfg;
  }
  bool linear(vaddr_t p) const { return p && mm.virt_addr_valid(p); }
  bool vmalloced(vaddr_t p) const {
    return p && mm.vmalloc.is_vmalloc_addr(p) && mm.vmalloc.find_vm_area(p);
  }
  Mm mm;
  Recorder rec;
};

TEST_F(KvmallocTest, SmallSizesAreKmallocs) {
  const vaddr_t a = kvmalloc(mm, 100, GFP_KERNEL);
  const vaddr_t b = kvmalloc(mm, 3 * kPage, GFP_KERNEL);  // a large kmalloc
  ASSERT_TRUE(linear(a));
  ASSERT_TRUE(linear(b));
  EXPECT_GE(mm.slab.ksize(a), 100u);
  EXPECT_GE(mm.slab.ksize(b), 3 * kPage);
  kvfree(mm, a);
  kvfree(mm, b);
  kvfree(mm, 0);  // kvfree(NULL)
  EXPECT_TRUE(rec.misuses.empty());
  // kvfree of a kmalloc address is kfree: a second one is a double free.
  kvfree(mm, a);
  EXPECT_EQ(rec.ids(), std::set<std::string>{"slab.double_free"});
}

// Above a page the kmalloc attempt is quiet and does not try hard: vmalloc
// is the fallback (and carries __GFP_NOFAIL).
TEST_F(KvmallocTest, KmallocAttemptAboveAPageIsQuiet) {
  const vaddr_t p = kvmalloc(mm, 3 * kPage, GFP_KERNEL | __GFP_NOFAIL);
  ASSERT_TRUE(linear(p));
  ASSERT_EQ(rec.kmalloc_gfps.size(), 1u);
  const gfp_t g = rec.kmalloc_gfps.back();
  EXPECT_TRUE(g & __GFP_NOWARN);
  EXPECT_TRUE(g & __GFP_NORETRY);
  EXPECT_FALSE(g & __GFP_NOFAIL);
  kvfree(mm, p);
  rec.kmalloc_gfps.clear();
  const vaddr_t q = kvmalloc(mm, 3 * kPage, GFP_KERNEL | __GFP_RETRY_MAYFAIL);
  ASSERT_EQ(rec.kmalloc_gfps.size(), 1u);
  EXPECT_EQ(rec.kmalloc_gfps.back(), GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
  kvfree(mm, q);
  // A page or less keeps the caller's mask.
  rec.kmalloc_gfps.clear();
  const vaddr_t s = kvmalloc(mm, kPage, GFP_KERNEL | __GFP_NOFAIL);
  EXPECT_EQ(rec.kmalloc_gfps, std::vector<gfp_t>{GFP_KERNEL | __GFP_NOFAIL});
  kvfree(mm, s);
  EXPECT_TRUE(rec.misuses.empty());
}

// More than kmalloc can ever give (KMALLOC_MAX_SIZE): the attempt fails
// without the WARN a plain kmalloc would print, and vmalloc serves it.
TEST_F(KvmallocTest, FallsBackToVmallocWhenKmallocCannot) {
  const std::uint64_t size = mm.slab.kmalloc_max_size() + 2 * kPage;
  const vaddr_t p = kvmalloc(mm, size, GFP_KERNEL);
  ASSERT_TRUE(vmalloced(p)) << std::hex << p;
  EXPECT_TRUE(rec.misuses.empty());  // no page_alloc.bad_order: __GFP_NOWARN
  EXPECT_GE(mm.vmalloc.find_vm_area(p)->area_size(kPage), size);
  // The plain kmalloc of that size does warn.
  EXPECT_EQ(mm.slab.kmalloc(size, GFP_KERNEL), 0u);
  EXPECT_EQ(rec.ids(), std::set<std::string>{"page_alloc.bad_order"});
  rec.misuses.clear();
  kvfree(mm, p);  // vfree
  EXPECT_EQ(mm.vmalloc.find_vm_area(p), nullptr);
  EXPECT_TRUE(rec.misuses.empty());
  kvfree(mm, p);  // a second vfree
  EXPECT_EQ(rec.ids(), std::set<std::string>{"vmalloc.double_free"});
}

// A size kmalloc could serve, with no free block of its order left: the
// quiet attempt fails and vmalloc builds it from single pages.
TEST_F(KvmallocTest, FallsBackToVmallocWhenMemoryIsFragmented) {
  // Warm the caches vmalloc itself needs, then take every page and give back
  // every other one: plenty of free pages, no free block above order 0.
  kvfree(mm, mm.vmalloc.vmalloc(kPage));
  std::vector<pfn_t> held;
  for (const gfp_t g : {GFP_KERNEL | __GFP_NOWARN, GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN})
    for (pfn_t p; (p = mm.page_alloc.alloc_pages(g, 0)) != NO_PAGE;) held.push_back(p);
  std::sort(held.begin(), held.end());
  std::vector<pfn_t> kept;
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (i % 2)
      mm.page_alloc.__free_pages(held[i], 0);
    else
      kept.push_back(held[i]);
  }
  mm.page_alloc.drain_all_pages();
  ASSERT_EQ(mm.slab.kmalloc(16 * kPage, GFP_KERNEL | __GFP_NOWARN), 0u);  // no order-4 block
  const vaddr_t p = kvmalloc(mm, 16 * kPage, GFP_KERNEL);
  EXPECT_TRUE(vmalloced(p)) << std::hex << p;
  EXPECT_TRUE(rec.misuses.empty());
  kvfree(mm, p);
  for (const pfn_t k : kept) mm.page_alloc.__free_pages(k, 0);
  EXPECT_TRUE(rec.misuses.empty());
}

// vmalloc allocates its page tables with GFP_KERNEL: other masks get the
// kmalloc attempt only, with the caller's own mask (and its warning).
TEST_F(KvmallocTest, MasksNotGfpKernelCompatibleDoNotFallBack) {
  const std::uint64_t size = mm.slab.kmalloc_max_size() + 2 * kPage;
  for (const gfp_t g : {GFP_NOIO, GFP_NOFS, GFP_ATOMIC, GFP_NOWAIT}) {
    rec.misuses.clear();
    EXPECT_EQ(kvmalloc(mm, size, g), 0u) << format_gfp(g);
    EXPECT_EQ(rec.ids(), std::set<std::string>{"page_alloc.bad_order"}) << format_gfp(g);
  }
  // Small sizes still work through kmalloc.
  const vaddr_t p = kvmalloc(mm, 200, GFP_NOIO);
  EXPECT_TRUE(linear(p));
  kvfree(mm, p);
}

TEST_F(KvmallocTest, SizesAboveIntMaxFailWithAWarning) {
  const std::uint64_t huge = std::uint64_t{1} << 31;  // INT_MAX + 1
  EXPECT_EQ(kvmalloc(mm, huge, GFP_KERNEL), 0u);
  ASSERT_EQ(rec.ids(), std::set<std::string>{"kvmalloc.too_large"});
  EXPECT_EQ(rec.misuses[0].api, "kvmalloc_node");
  rec.misuses.clear();
  EXPECT_EQ(kvmalloc(mm, huge, GFP_KERNEL | __GFP_NOWARN), 0u);
  EXPECT_TRUE(rec.misuses.empty());
  // INT_MAX itself may try vmalloc (and fails here for lack of memory).
  EXPECT_EQ(kvmalloc(mm, huge - 1, GFP_KERNEL), 0u);
  for (const auto& m : rec.misuses) EXPECT_NE(m.kind, MisuseKind::kvmalloc_too_large);
}

TEST_F(KvmallocTest, KvzallocZeroesBothKinds) {
  const std::uint64_t big = mm.slab.kmalloc_max_size() + kPage;
  for (const std::uint64_t size : {std::uint64_t{512}, big}) {
    // Dirty memory first so zeroes mean something.
    const vaddr_t d = kvmalloc(mm, size, GFP_KERNEL);
    const std::vector<std::uint8_t> ones(size, 0xff);
    if (mm.vmalloc.is_vmalloc_addr(d))
      ASSERT_TRUE(mm.vmalloc.write(d, ones));
    else
      ASSERT_TRUE(mm.slab.write(d, ones));
    kvfree(mm, d);
    const vaddr_t z = kvzalloc(mm, size, GFP_KERNEL);
    ASSERT_NE(z, 0u);
    std::vector<std::uint8_t> got(size, 1);
    if (mm.vmalloc.is_vmalloc_addr(z))
      ASSERT_TRUE(mm.vmalloc.read(z, got));
    else
      ASSERT_TRUE(mm.slab.read(z, got));
    EXPECT_EQ(std::count(got.begin(), got.end(), 0), static_cast<long>(size)) << size;
    kvfree(mm, z);
  }
  EXPECT_TRUE(rec.misuses.empty());
}

}  // namespace
