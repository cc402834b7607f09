// vmalloc, vmap, ioremap and kmap (mm/vm/vmalloc): addresses, guard pages,
// pages and their contents, lazy freeing and purging, failure unwinding,
// device register files through ioremap, kmap nesting.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mm/mm.h"

using namespace mmfuzz::mm;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr phys_addr_t kPl011 = 0x09000000;

struct Recorder : MmObserver {
  std::vector<Misuse> misuses;
  std::vector<AllocFailure> failures;
  void misuse(const Misuse& m) override { misuses.push_back(m); }
  void page_alloc_failure(const AllocFailure& f) override { failures.push_back(f); }
  std::multiset<std::string> ids() const {
    std::multiset<std::string> s;
    for (const auto& m : misuses) s.insert(misuse_id(m.kind));
    return s;
  }
};

MmConfig small_cfg(std::uint64_t ram = 32 * SZ_1M) {
  MmConfig cfg;
  cfg.machine = small_machine(ram);
  return cfg;
}

// Free pages of every zone with the pcp lists drained.
long total_free(Mm& mm) {
  mm.page_alloc.drain_all_pages();
  long n = 0;
  for (const auto& pgdat : mm.page_alloc.node_data)
    for (const auto& z : pgdat.node_zones) n += z.zone_page_state(NR_FREE_PAGES);
  return n;
}

std::uint64_t live_objects(const Mm& mm) {
  std::uint64_t n = 0;
  mm.slab.allocator->for_each_allocated([&](const SlabAllocator::LiveObject&) { ++n; });
  return n;
}

std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

unsigned attrindx(pteval_t d) {
  return static_cast<unsigned>((d & PTE_ATTRINDX_MASK) >> 2);
}

struct VmallocTest : ::testing::Test {
  Mm mm{small_cfg()};
  Vmalloc& vm = mm.vmalloc;
  Recorder rec;
  void SetUp() override { mm.attach(&rec); }
  void TearDown() override { mm.detach(&rec); }
};

// ---------------------------------------------------------------- vmalloc

TEST_F(VmallocTest, AddressesAndGuardPage) {
  const vaddr_t a = vm.vmalloc(3 * kPage);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(a % kPage, 0u);
  EXPECT_GE(a, mm.profile.vmalloc_start);
  EXPECT_LT(a, mm.profile.vmalloc_end);
  EXPECT_TRUE(vm.is_vmalloc_addr(a));
  const vm_struct* area = vm.find_vm_area(a);
  ASSERT_NE(area, nullptr);
  EXPECT_EQ(area->size, 4 * kPage);  // with the guard page
  EXPECT_EQ(area->nr_pages, 3u);
  EXPECT_TRUE(area->flags & VM_ALLOC);
  EXPECT_FALSE(area->flags & VM_UNINITIALIZED);
  EXPECT_EQ(vm.find_vmap_area(a + 3 * kPage)->va_start, a);  // the guard is part of the area
  for (unsigned i = 0; i < 3; ++i) EXPECT_TRUE(mm.pgtable.translate(a + i * kPage).has_value());
  EXPECT_FALSE(mm.pgtable.translate(a + 3 * kPage).has_value());

  const vaddr_t b = vm.vmalloc(100);  // rounded up to a page
  ASSERT_NE(b, 0u);
  EXPECT_EQ(b % kPage, 0u);
  EXPECT_TRUE(b >= a + 4 * kPage || b + 2 * kPage <= a);
  EXPECT_EQ(vm.find_vm_area(b)->size, 2 * kPage);
  EXPECT_FALSE(mm.pgtable.translate(b + kPage).has_value());
  // A write into the guard page faults and is dropped.
  const std::uint8_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_FALSE(vm.write(a + 3 * kPage - 4, x));  // straddles into the guard page
  ASSERT_FALSE(rec.misuses.empty());
  EXPECT_EQ(rec.misuses.back().kind, MisuseKind::vm_fault);
  EXPECT_NE(rec.misuses.back().detail.find("guard page"), std::string::npos);
  EXPECT_EQ(vm.vmalloc(0), 0u);
  vm.vfree(a);
  vm.vfree(b);
}

TEST_F(VmallocTest, LowestFit) {
  for (std::uint64_t pages : {1u, 5u, 2u, 9u, 1u}) {
    // The lowest free range in the vmalloc area that holds pages + guard.
    vaddr_t expect = 0;
    for (const auto& [s, e] : vm.free_ranges()) {
      const vaddr_t lo = std::max(s, mm.profile.vmalloc_start);
      if (e > lo && e - lo >= (pages + 1) * kPage) {
        expect = lo;
        break;
      }
    }
    ASSERT_NE(expect, 0u);
    EXPECT_EQ(vm.vmalloc(pages * kPage), expect) << pages;
  }
}

TEST_F(VmallocTest, PagesAreAllocatedPages) {
  const vaddr_t a = vm.vmalloc(6 * kPage);
  ASSERT_NE(a, 0u);
  const vm_struct* area = vm.find_vm_area(a);
  ASSERT_EQ(area->pages.size(), 6u);
  std::set<pfn_t> seen;
  for (unsigned i = 0; i < 6; ++i) {
    const pfn_t pfn = vm.vmalloc_to_page(a + i * kPage + 17);
    ASSERT_NE(pfn, NO_PAGE);
    EXPECT_EQ(pfn, area->pages[i]);
    const page& pg = mm.pfn_to_page(pfn);
    EXPECT_EQ(pg._refcount, 1);
    EXPECT_FALSE(PageBuddy(pg));
    EXPECT_FALSE(PageSlab(pg));
    EXPECT_TRUE(seen.insert(pfn).second);
    // The page array holds the struct page pointers.
    std::uint8_t raw[8];
    const phys_addr_t slot = mm.__pa(area->pages_array) + i * 8;
    mm.ram.read(slot, raw);
    std::uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = (v << 8) | raw[k];
    EXPECT_EQ(v, mm.pfn_to_vmemmap(pfn));
  }
  EXPECT_FALSE(area->pages_vmalloced);
  EXPECT_TRUE(mm.is_linear_map_address(area->pages_array));
  EXPECT_EQ(vm.vmalloc_to_page(a + 6 * kPage), NO_PAGE);  // guard
  EXPECT_EQ(vm.nr_vmalloc_pages, 6u);
  vm.vfree(a);
  EXPECT_EQ(vm.nr_vmalloc_pages, 0u);
}

TEST_F(VmallocTest, VzallocReadsZero) {
  // Dirty some pages and give them back, so the allocator hands out used memory.
  const vaddr_t d = vm.vmalloc(16 * kPage);
  ASSERT_NE(d, 0u);
  ASSERT_TRUE(vm.fill(d, 16 * kPage, 0xa5));
  std::vector<std::uint8_t> back(16 * kPage);
  ASSERT_TRUE(vm.read(d, back));
  EXPECT_EQ(std::count(back.begin(), back.end(), 0xa5), static_cast<long>(back.size()));
  vm.vfree(d);
  vm.purge_vmap_area_lazy();
  for (const vaddr_t z : {vm.vzalloc(16 * kPage), vm.__vmalloc(16 * kPage, GFP_KERNEL | __GFP_ZERO),
                          vm.vzalloc_node(16 * kPage, 0)}) {
    ASSERT_NE(z, 0u);
    std::vector<std::uint8_t> got(16 * kPage, 0xff);
    ASSERT_TRUE(vm.read(z, got));
    EXPECT_EQ(std::count(got.begin(), got.end(), 0), static_cast<long>(got.size()));
    vm.vfree(z);
  }
}

TEST_F(VmallocTest, WriteReadLandsInThePages) {
  const vaddr_t a = vm.vmalloc(4 * kPage);
  ASSERT_NE(a, 0u);
  const auto data = pattern(2 * kPage + 300, 3);
  const vaddr_t at = a + kPage - 100;  // crosses two page boundaries
  ASSERT_TRUE(vm.write(at, data));
  std::vector<std::uint8_t> back(data.size());
  ASSERT_TRUE(vm.read(at, back));
  EXPECT_EQ(back, data);
  // Byte by byte in the physical pages vmalloc_to_page names.
  for (std::size_t i = 0; i < data.size(); i += 97) {
    const vaddr_t va = at + i;
    const pfn_t pfn = vm.vmalloc_to_page(va);
    ASSERT_NE(pfn, NO_PAGE);
    EXPECT_EQ(mm.ram.byte((pfn << 12) + (va & 0xfff)), data[i]) << i;
  }
  // And through the linear map of those pages.
  const pfn_t p2 = vm.vmalloc_to_page(a + 2 * kPage);
  std::vector<std::uint8_t> lin(kPage);
  ASSERT_TRUE(vm.read(mm.page_address(p2), lin));
  EXPECT_TRUE(std::equal(lin.begin(), lin.end(), data.begin() + 100 + kPage));
  // The untouched start of the first page is still zero.
  EXPECT_EQ(mm.ram.byte(vm.vmalloc_to_page(a) << 12), 0);
  vm.vfree(a);
}

TEST(VmallocZones, Vmalloc32PagesBelow4GiB) {
  MmConfig cfg = small_cfg(512 * SZ_1M);
  cfg.machine.ram_base = 0xf0000000;  // 256 MiB below 4 GiB, 256 MiB above
  Mm mm(cfg);
  const vaddr_t a = mm.vmalloc.vmalloc(64 * kPage);
  const vaddr_t b = mm.vmalloc.vmalloc_32(64 * kPage);
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  unsigned high = 0;
  for (unsigned i = 0; i < 64; ++i) {
    if ((mm.vmalloc.vmalloc_to_page(a + i * kPage) << 12) >= (1ull << 32)) ++high;
    const pfn_t pfn = mm.vmalloc.vmalloc_to_page(b + i * kPage);
    ASSERT_NE(pfn, NO_PAGE);
    EXPECT_LT(pfn << 12, 1ull << 32) << i;
  }
  EXPECT_EQ(high, 64u);  // plain vmalloc prefers ZONE_NORMAL: the test tells them apart
  mm.vmalloc.vfree(a);
  mm.vmalloc.vfree(b);
}

TEST(VmallocZones, VmallocNode) {
  MmConfig cfg = small_cfg(256 * SZ_1M);
  cfg.machine.nr_nodes = 2;
  Mm mm(cfg);
  for (int node : {1, 0, 1}) {
    const vaddr_t a = mm.vmalloc.vmalloc_node(32 * kPage, node);
    ASSERT_NE(a, 0u);
    EXPECT_EQ(mm.vmalloc.find_vm_area(a)->node, node);
    for (unsigned i = 0; i < 32; ++i) {
      const pfn_t pfn = mm.vmalloc.vmalloc_to_page(a + i * kPage);
      ASSERT_NE(pfn, NO_PAGE);
      EXPECT_EQ(mm.pfn_to_page(pfn).nid, node) << i;
    }
    mm.vmalloc.vfree(a);
  }
}

// ---------------------------------------------------------------- vfree

TEST_F(VmallocTest, VfreeReturnsPagesAfterPurge) {
  // Warm up with the same size: the page tables of the area and the slab
  // pages of its objects exist afterwards.
  vm.vfree(vm.vmalloc(40 * kPage));
  vm.purge_vmap_area_lazy();
  const long free0 = total_free(mm);
  const std::uint64_t objs0 = live_objects(mm);
  const std::size_t busy0 = vm.busy().size();
  const auto ranges0 = vm.free_ranges();

  const vaddr_t a = vm.vmalloc(40 * kPage);
  ASSERT_NE(a, 0u);
  EXPECT_LE(total_free(mm), free0 - 40);
  EXPECT_EQ(live_objects(mm), objs0 + 3);  // vm_struct, vmap_area, page array
  EXPECT_EQ(vm.busy().size(), busy0 + 1);
  vm.vfree(a);
  EXPECT_FALSE(mm.pgtable.translate(a).has_value());
  EXPECT_EQ(vm.busy().size(), busy0);
  ASSERT_EQ(vm.purge_list().count(a), 1u);
  EXPECT_EQ(vm.vmap_lazy_nr, 41u);
  EXPECT_EQ(total_free(mm), free0);        // the pages went back at vfree
  EXPECT_EQ(live_objects(mm), objs0 + 1);  // the vmap_area waits for the purge
  EXPECT_NE(vm.free_ranges(), ranges0);    // and so does its address range
  vm.purge_vmap_area_lazy();
  EXPECT_TRUE(vm.purge_list().empty());
  EXPECT_EQ(vm.vmap_lazy_nr, 0u);
  EXPECT_EQ(total_free(mm), free0);
  EXPECT_EQ(live_objects(mm), objs0);
  EXPECT_EQ(vm.free_ranges(), ranges0);
  EXPECT_TRUE(rec.misuses.empty());
}

// MmConfig::lazy_max_pages scales the purge threshold (fuzzing): past it
// the next tick purges; the kernel's threshold (fls(cpus) * 32 MiB) is not
// reached by the same frees.
TEST(VmallocLazyMax, AScaledThresholdPurgesAtTheNextTick) {
  for (const bool scaled : {false, true}) {
    MmConfig cfg = small_cfg();
    if (scaled) cfg.lazy_max_pages = 8;
    Mm mm(cfg);
    Vmalloc& vm = mm.vmalloc;
    EXPECT_EQ(vm.lazy_max_pages(), scaled ? 8u : 2u * 32 * 256);
    const std::uint64_t purges = vm.nr_purges;
    for (int i = 0; i < 3; ++i) {
      const vaddr_t a = vm.vmalloc(3 * kPage);
      ASSERT_NE(a, 0u);
      vm.vfree(a);  // 4 lazy pages each, with the guard
    }
    EXPECT_EQ(vm.vmap_lazy_nr, 12u);
    mm.tick();
    EXPECT_EQ(vm.nr_purges, purges + (scaled ? 1 : 0)) << scaled;
    EXPECT_EQ(vm.vmap_lazy_nr, scaled ? 0u : 12u);
  }
}

TEST_F(VmallocTest, VaReusedOnlyAfterPurge) {
  const vaddr_t a = vm.vmalloc(kPage);
  ASSERT_NE(a, 0u);
  vm.vfree(a);
  const vaddr_t b = vm.vmalloc(kPage);
  ASSERT_NE(b, 0u);
  EXPECT_NE(b, a);
  EXPECT_TRUE(b >= a + 2 * kPage || b + 2 * kPage <= a);
  const std::uint64_t purges = vm.nr_purges;
  vm.purge_vmap_area_lazy();
  EXPECT_EQ(vm.nr_purges, purges + 1);
  const vaddr_t c = vm.vmalloc(kPage);
  EXPECT_EQ(c, a);
  // A double vfree is reported, not acted on.
  vm.vfree(b);
  vm.vfree(b);
  EXPECT_EQ(rec.ids().count("vmalloc.double_free"), 1u);
  vm.vfree(c + 8);
  EXPECT_EQ(rec.ids().count("vmalloc.bad_free"), 1u);
  vm.vfree(c);
}

TEST_F(VmallocTest, TlbStaysStaleUntilPurge) {
  const vaddr_t a = vm.vmalloc(kPage);
  ASSERT_NE(a, 0u);
  const std::uint8_t x[4] = {9, 9, 9, 9};
  ASSERT_TRUE(vm.write(a, x));  // CPU 0 caches the translation
  const pfn_t pfn = vm.vmalloc_to_page(a);
  vm.vfree(a);
  EXPECT_FALSE(mm.pgtable.translate(a).has_value());
  EXPECT_EQ(mm.pgtable.translate_cpu(0, a), pfn << 12);  // lazy: no flush at vfree
  EXPECT_FALSE(mm.pgtable.translate_cpu(1, a).has_value());
  const std::uint64_t flushes = mm.pgtable.nr_tlb_flushes;
  vm.purge_vmap_area_lazy();
  EXPECT_GT(mm.pgtable.nr_tlb_flushes, flushes);
  EXPECT_FALSE(mm.pgtable.translate_cpu(0, a).has_value());
}

TEST(VmallocLazy, PurgeAtTickOverLazyMax) {
  Mm mm;  // 1 GiB, 2 CPUs: lazy_max_pages() = fls(2) * 32 MiB / 4 KiB
  Vmalloc& vm = mm.vmalloc;
  ASSERT_EQ(vm.lazy_max_pages(), 2u * 8192u);
  const std::uint64_t purges = vm.nr_purges;
  int rounds = 0;
  while (vm.vmap_lazy_nr <= vm.lazy_max_pages()) {
    mm.tick();
    ASSERT_EQ(vm.nr_purges, purges) << "purged below the threshold at " << vm.vmap_lazy_nr;
    EXPECT_EQ(vm.purge_list().empty(), rounds == 0);
    const vaddr_t a = vm.vmalloc(1024 * kPage);
    ASSERT_NE(a, 0u);
    vm.vfree(a);
    ++rounds;
  }
  EXPECT_EQ(rounds, 16);  // 16 * (1025 + 3) pages > 16384
  EXPECT_EQ(vm.nr_purges, purges);
  const std::uint64_t flushes = mm.pgtable.nr_tlb_flushes;
  mm.tick();
  EXPECT_EQ(vm.nr_purges, purges + 1);
  EXPECT_TRUE(vm.purge_list().empty());
  EXPECT_EQ(vm.vmap_lazy_nr, 0u);
  EXPECT_EQ(mm.pgtable.nr_tlb_flushes, flushes + 1);
  mm.tick();
  EXPECT_EQ(vm.nr_purges, purges + 1);  // nothing pending
}

// ---------------------------------------------------------------- big areas

TEST_F(VmallocTest, BigAreaHasVmallocedPageArray) {
  const vaddr_t s = vm.vmalloc(512 * kPage);  // 4 KiB of pointers: kmalloc'd
  ASSERT_NE(s, 0u);
  EXPECT_FALSE(vm.find_vm_area(s)->pages_vmalloced);
  EXPECT_TRUE(mm.is_linear_map_address(vm.find_vm_area(s)->pages_array));

  const std::size_t busy = vm.busy().size();
  const vaddr_t a = vm.vmalloc(513 * kPage);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(vm.busy().size(), busy + 2);  // the area and its page array
  const vm_struct* area = vm.find_vm_area(a);
  ASSERT_TRUE(area->pages_vmalloced);
  const vaddr_t arr = area->pages_array;
  EXPECT_TRUE(vm.is_vmalloc_addr(arr));
  const vm_struct* arr_area = vm.find_vm_area(arr);
  ASSERT_NE(arr_area, nullptr);
  EXPECT_EQ(arr_area->nr_pages, 2u);  // 513 * 8 bytes
  for (unsigned i : {0u, 1u, 511u, 512u}) {
    std::uint8_t raw[8];
    ASSERT_TRUE(vm.read(arr + i * 8, raw));
    std::uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = (v << 8) | raw[k];
    EXPECT_EQ(v, mm.pfn_to_vmemmap(area->pages[i])) << i;
  }
  vm.vfree(a);
  // The nested array went with it.
  EXPECT_EQ(vm.find_vm_area(arr), nullptr);
  EXPECT_EQ(vm.purge_list().count(arr), 1u);
  EXPECT_EQ(vm.busy().size(), busy);
  vm.vfree(s);
  EXPECT_TRUE(rec.misuses.empty());
}

// ---------------------------------------------------------------- failures

TEST(VmallocFailure, UnwindsCompletely) {
  Mm mm(small_cfg(16 * SZ_1M));
  Recorder rec;
  mm.attach(&rec);
  Vmalloc& vm = mm.vmalloc;
  // Warm up the slabs the failing call will use.
  vm.vfree(vm.vmalloc(600 * kPage));
  vm.purge_vmap_area_lazy();
  long free0 = total_free(mm);
  std::uint64_t objs0 = live_objects(mm);
  const auto busy0 = vm.busy().size();
  auto ranges0 = vm.free_ranges();
  std::uint64_t tables0 = mm.pgtable.nr_tables;
  ASSERT_LT(free0, static_cast<long>(mm.page_alloc.totalram_pages));

  // More than is free, not more than RAM: fails while allocating pages.
  const std::uint64_t pages = mm.page_alloc.totalram_pages;
  EXPECT_EQ(vm.vmalloc(pages * kPage), 0u);
  EXPECT_FALSE(rec.failures.empty());
  EXPECT_EQ(vm.nr_vmalloc_pages, 0u);
  vm.purge_vmap_area_lazy();
  // Everything but the page table that mapped the nested page array (the
  // kernel keeps vmalloc page tables) is back.
  const std::uint64_t new_tables = mm.pgtable.nr_tables - tables0;
  EXPECT_LE(new_tables, 1u);
  EXPECT_EQ(total_free(mm) + static_cast<long>(new_tables), free0);
  EXPECT_EQ(live_objects(mm), objs0);
  EXPECT_EQ(vm.busy().size(), busy0);
  EXPECT_EQ(vm.free_ranges(), ranges0);

  // The same failure again leaves exactly nothing behind.
  free0 = total_free(mm);
  tables0 = mm.pgtable.nr_tables;
  const std::size_t nfail = rec.failures.size();
  EXPECT_EQ(vm.vmalloc(pages * kPage), 0u);
  EXPECT_GT(rec.failures.size(), nfail);
  EXPECT_FALSE(vm.purge_list().empty());  // the area and its page array, lazily
  vm.purge_vmap_area_lazy();
  EXPECT_EQ(total_free(mm), free0);
  EXPECT_EQ(mm.pgtable.nr_tables, tables0);
  EXPECT_EQ(live_objects(mm), objs0);
  EXPECT_EQ(vm.busy().size(), busy0);
  EXPECT_EQ(vm.free_ranges(), ranges0);
  EXPECT_EQ(vm.nr_vmalloc_pages, 0u);

  // More than RAM: refused up front.
  EXPECT_EQ(vm.vmalloc((pages + 1) * kPage), 0u);
  // No room in the window: the vm_struct and vmap_area objects go back.
  const vaddr_t lo = mm.profile.vmalloc_start + 0x100000000ull;
  EXPECT_EQ(vm.__vmalloc_node_range(2 * kPage, 1, lo, lo + 2 * kPage, GFP_KERNEL,
                                    vm.pgprot_kernel(), 0, NUMA_NO_NODE, "test"),
            0u);
  EXPECT_EQ(live_objects(mm), objs0);
  EXPECT_EQ(vm.busy().size(), busy0);
  EXPECT_EQ(total_free(mm), free0);
  // And the machine still works.
  const vaddr_t a = vm.vmalloc(8 * kPage);
  EXPECT_NE(a, 0u);
  vm.vfree(a);
  EXPECT_TRUE(rec.misuses.empty());
  mm.detach(&rec);
}

TEST_F(VmallocTest, SleepingInAtomicIsReported) {
  mm.preempt_disable();
  const vaddr_t a = vm.vmalloc(kPage);
  mm.preempt_enable();
  EXPECT_EQ(rec.ids().count("vmalloc.sleep_in_atomic"), 1u);
  vm.vfree(a);
}

// ---------------------------------------------------------------- vmap

TEST_F(VmallocTest, VmapMapsCallerPages) {
  std::vector<pfn_t> pfns;
  for (int i = 0; i < 3; ++i) pfns.push_back(mm.page_alloc.alloc_pages(GFP_KERNEL, 0));
  for (pfn_t p : pfns) ASSERT_NE(p, NO_PAGE);
  std::swap(pfns[0], pfns[2]);  // any order
  const vaddr_t v = vm.vmap(pfns);
  ASSERT_NE(v, 0u);
  EXPECT_TRUE(vm.is_vmalloc_addr(v));
  const vm_struct* area = vm.find_vm_area(v);
  ASSERT_NE(area, nullptr);
  EXPECT_TRUE(area->flags & VM_MAP);
  EXPECT_FALSE(area->flags & VM_ALLOC);
  for (unsigned i = 0; i < 3; ++i) EXPECT_EQ(mm.pgtable.translate(v + i * kPage), pfns[i] << 12);
  EXPECT_FALSE(mm.pgtable.translate(v + 3 * kPage).has_value());

  const auto data = pattern(kPage + 200, 11);
  ASSERT_TRUE(vm.write(v + kPage - 100, data));
  std::vector<std::uint8_t> lin(100);
  ASSERT_TRUE(vm.read(mm.page_address(pfns[0]) + kPage - 100, lin));
  EXPECT_TRUE(std::equal(lin.begin(), lin.end(), data.begin()));
  std::vector<std::uint8_t> lin1(kPage);
  ASSERT_TRUE(vm.read(mm.page_address(pfns[1]), lin1));
  EXPECT_TRUE(std::equal(lin1.begin(), lin1.end(), data.begin() + 100));
  EXPECT_EQ(mm.ram.byte((pfns[2] << 12) + 99), data[kPage + 199]);

  vm.vunmap(v);
  EXPECT_FALSE(mm.pgtable.translate(v).has_value());
  for (pfn_t p : pfns) {
    EXPECT_EQ(mm.pfn_to_page(p)._refcount, 1);  // still the caller's
    EXPECT_FALSE(PageBuddy(mm.pfn_to_page(p)));
  }
  ASSERT_TRUE(vm.read(mm.page_address(pfns[1]), lin1));
  EXPECT_TRUE(std::equal(lin1.begin(), lin1.end(), data.begin() + 100));
  for (pfn_t p : pfns) mm.page_alloc.__free_pages(p, 0);
  EXPECT_TRUE(rec.misuses.empty());

  // vmap of a free page is refused.
  const std::vector<pfn_t> bad{pfns[0]};
  EXPECT_EQ(vm.vmap(bad), 0u);
  EXPECT_EQ(rec.ids().count("vmalloc.bad_vmap"), 1u);
  // vunmap of a vmalloc area would leak its pages: reported, nothing done.
  const vaddr_t a = vm.vmalloc(kPage);
  vm.vunmap(a);
  EXPECT_EQ(rec.ids().count("vmalloc.vunmap_vmalloc"), 1u);
  EXPECT_TRUE(mm.pgtable.translate(a).has_value());
  vm.vfree(a);
}

// ---------------------------------------------------------------- ioremap

TEST_F(VmallocTest, IoremapPl011) {
  const vaddr_t io = vm.ioremap(kPl011, 0x1000);
  ASSERT_NE(io, 0u);
  EXPECT_TRUE(vm.is_vmalloc_addr(io));
  const vm_struct* area = vm.find_vm_area(io);
  ASSERT_NE(area, nullptr);
  EXPECT_TRUE(area->flags & VM_IOREMAP);
  EXPECT_EQ(area->phys_addr, kPl011);
  const PgWalk w = mm.pgtable.walk(io);
  ASSERT_TRUE(w.leaf);
  EXPECT_EQ(w.pa, kPl011);
  EXPECT_EQ(attrindx(w.desc), mm.profile.mt_device_ngnre);
  EXPECT_TRUE(w.desc & PTE_PXN);
  EXPECT_EQ(vm.vmalloc_to_page(io), NO_PAGE);  // no struct page behind a device
  // PrimeCell IDs and UARTFR.
  const std::uint32_t ids[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
  for (unsigned i = 0; i < 8; ++i) EXPECT_EQ(vm.readl(io + 0xfe0 + 4 * i), ids[i]) << i;
  EXPECT_EQ(vm.readl(io + 0x18), 0x90u);
  EXPECT_EQ(vm.readb(io + 0x18), 0x90u);
  EXPECT_EQ(vm.ioread32(io + 0xfe0), 0x11u);
  // A scratch register round-trips, by width.
  vm.writel(0xdeadbeef, io + 0x30);
  EXPECT_EQ(vm.readl(io + 0x30), 0xdeadbeefu);
  EXPECT_EQ(vm.readw(io + 0x32), 0xdeadu);
  vm.writeb(0x5a, io + 0x31);
  EXPECT_EQ(vm.readl(io + 0x30), 0xdead5aefu);
  vm.iowrite16(0x1234, io + 0x40);
  EXPECT_EQ(vm.ioread16(io + 0x40), 0x1234u);
  EXPECT_EQ(vm.ioread8(io + 0x41), 0x12u);
  // A second mapping sees the same registers.
  const vaddr_t io2 = vm.ioremap(kPl011, 0x1000);
  ASSERT_NE(io2, 0u);
  EXPECT_NE(io2, io);
  EXPECT_EQ(vm.readl(io2 + 0x30), 0xdead5aefu);
  // Misaligned accessor: an alignment fault.
  EXPECT_EQ(vm.readl(io + 0x31), 0xffffffffu);
  EXPECT_EQ(rec.ids().count("ioremap.bad_access"), 1u);
  vm.iounmap(io2);
  vm.iounmap(io);
  EXPECT_EQ(rec.misuses.size(), 1u);
}

TEST_F(VmallocTest, IoremapWcAndNp) {
  const vaddr_t wc = vm.ioremap_wc(kPl011, 0x1000);
  const vaddr_t np = vm.ioremap_np(kPl011, 0x1000);
  ASSERT_NE(wc, 0u);
  ASSERT_NE(np, 0u);
  EXPECT_EQ(attrindx(mm.pgtable.walk(wc).desc), mm.profile.mt_normal_nc);
  EXPECT_EQ(attrindx(mm.pgtable.walk(wc).desc), 2u);
  EXPECT_EQ(attrindx(mm.pgtable.walk(np).desc), mm.profile.mt_device_ngnrne);
  EXPECT_EQ(vm.readl(wc + 0xfe0), 0x11u);
  vm.iounmap(wc);
  vm.iounmap(np);
}

TEST_F(VmallocTest, IoremapNeverSetsContiguousHint) {
  // 64 KiB of the PCIe window: VA and PA 64 KiB aligned, still no hint.
  const vaddr_t io = vm.ioremap(0x10000000, 0x10000);
  ASSERT_NE(io, 0u);
  EXPECT_EQ(io % 0x10000, 0u);  // aligned to the size's power of two
  for (unsigned i = 0; i < 16; ++i) {
    const PgWalk w = mm.pgtable.walk(io + i * kPage);
    ASSERT_TRUE(w.leaf);
    EXPECT_EQ(w.pa, 0x10000000u + i * kPage);
    EXPECT_FALSE(w.desc & PTE_CONT) << i;
  }
  EXPECT_FALSE(mm.pgtable.translate(io + 0x10000).has_value());
  vm.iounmap(io);
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(VmallocTest, IoremapOfRamOrNothingIsRefused) {
  const std::size_t busy = vm.busy().size();
  EXPECT_EQ(vm.ioremap(mm.machine.ram_base + SZ_1M, kPage), 0u);
  EXPECT_EQ(rec.ids().count("ioremap.ram"), 1u);
  EXPECT_EQ(vm.ioremap(0x08000000, kPage), 0u);  // no device there
  EXPECT_EQ(rec.ids().count("ioremap.no_device"), 1u);
  EXPECT_EQ(vm.ioremap(kPl011, 2 * kPage), 0u);  // past the device's end
  EXPECT_EQ(rec.ids().count("ioremap.no_device"), 2u);
  EXPECT_EQ(vm.ioremap(kPl011, 0), 0u);
  EXPECT_EQ(vm.busy().size(), busy);
}

TEST_F(VmallocTest, IoremapUnalignedKeepsOffset) {
  const vaddr_t io = vm.ioremap(kPl011 + 0xfe0, 0x20);
  ASSERT_NE(io, 0u);
  EXPECT_EQ(io & 0xfff, 0xfe0u);
  EXPECT_EQ(vm.find_vm_area(io & ~0xfffull)->phys_addr, kPl011);
  EXPECT_EQ(vm.readl(io), 0x11u);
  EXPECT_EQ(vm.readl(io + 0x1c), 0xb1u);
  vm.iounmap(io);  // the unaligned cookie unmaps the page
  EXPECT_FALSE(mm.pgtable.translate(io).has_value());
  EXPECT_TRUE(rec.misuses.empty());
}

TEST_F(VmallocTest, IounmapRemovesMapping) {
  const vaddr_t io = vm.ioremap(kPl011, 0x1000);
  ASSERT_NE(io, 0u);
  EXPECT_EQ(vm.readl(io + 0xfe0), 0x11u);
  vm.iounmap(io);
  EXPECT_FALSE(mm.pgtable.translate(io).has_value());
  EXPECT_EQ(vm.find_vm_area(io), nullptr);
  EXPECT_EQ(vm.purge_list().count(io), 1u);
  vm.purge_vmap_area_lazy();
  // After the purge's TLB flush the access faults.
  EXPECT_EQ(vm.readl(io + 0xfe0), 0xffffffffu);
  EXPECT_EQ(rec.ids().count("ioremap.bad_access"), 1u);
  vm.iounmap(io);
  EXPECT_EQ(rec.ids().count("vmalloc.double_free"), 1u);
  const vaddr_t a = vm.vmalloc(kPage);
  vm.iounmap(a);  // not an ioremap mapping
  EXPECT_EQ(rec.ids().count("ioremap.bad_iounmap"), 1u);
  EXPECT_TRUE(mm.pgtable.translate(a).has_value());
  vm.vfree(a);
}

// ---------------------------------------------------------------- kmap

TEST_F(VmallocTest, KmapIsPageAddress) {
  const pfn_t p = mm.page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, NO_PAGE);
  EXPECT_EQ(vm.kmap(p), mm.page_address(p));
  EXPECT_EQ(vm.kmap(p), mm.page_address(p));
  EXPECT_EQ(vm.kmap_counts().at(p), 2u);
  vm.kunmap(p);
  vm.kunmap(p);
  EXPECT_EQ(vm.kmap_counts().count(p), 0u);
  EXPECT_TRUE(rec.misuses.empty());
  vm.kunmap(p);
  EXPECT_EQ(rec.ids().count("kmap.unbalanced"), 1u);
  mm.page_alloc.__free_pages(p, 0);
}

TEST_F(VmallocTest, KmapAtomicRaisesPreemptCount) {
  const pfn_t p = mm.page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, NO_PAGE);
  ASSERT_EQ(mm.preempt_count(), 0);
  const vaddr_t a = vm.kmap_atomic(p);
  EXPECT_EQ(a, mm.page_address(p));
  EXPECT_EQ(mm.preempt_count(), 1);
  EXPECT_TRUE(mm.in_atomic());
  const vaddr_t b = vm.kmap_atomic(p);
  EXPECT_EQ(mm.preempt_count(), 2);
  EXPECT_EQ(vm.kmap_stack(0).size(), 2u);
  vm.kunmap_atomic(b);
  EXPECT_EQ(mm.preempt_count(), 1);
  vm.kunmap_atomic(a + 0x10);  // any address inside the page
  EXPECT_EQ(mm.preempt_count(), 0);
  EXPECT_TRUE(vm.kmap_stack(0).empty());
  EXPECT_TRUE(rec.misuses.empty());
  mm.page_alloc.__free_pages(p, 0);
}

TEST_F(VmallocTest, KmapLocalNestsLifo) {
  std::vector<pfn_t> p;
  for (int i = 0; i < 3; ++i) p.push_back(mm.page_alloc.alloc_pages(GFP_KERNEL, 0));
  const vaddr_t a = vm.kmap_local_page(p[0]);
  const vaddr_t b = vm.kmap_local_page(p[1]);
  const vaddr_t c = vm.kmap_local_page(p[2]);
  EXPECT_EQ(b, mm.page_address(p[1]));
  EXPECT_EQ(mm.preempt_count(), 0);  // kmap_local does not disable preemption
  EXPECT_EQ(vm.kmap_stack(0), (std::vector<vaddr_t>{a, b, c}));
  EXPECT_TRUE(vm.kmap_stack(1).empty());  // per CPU
  vm.kunmap_local(c);
  vm.kunmap_local(b);
  EXPECT_EQ(vm.kmap_stack(0), (std::vector<vaddr_t>{a}));
  vm.kunmap_local(a);
  EXPECT_TRUE(vm.kmap_stack(0).empty());
  EXPECT_TRUE(rec.misuses.empty());
  // Out of order is reported.
  const vaddr_t x = vm.kmap_local_page(p[0]);
  const vaddr_t y = vm.kmap_local_page(p[1]);
  vm.kunmap_local(x);
  EXPECT_EQ(rec.ids().count("kmap.nesting"), 1u);
  vm.kunmap_local(y);
  EXPECT_TRUE(vm.kmap_stack(0).empty());
  for (pfn_t q : p) mm.page_alloc.__free_pages(q, 0);
}

// ---------------------------------------------------------------- modules

TEST_F(VmallocTest, ModuleAllocInModulesRegion) {
  const vaddr_t m1 = vm.module_alloc(3 * kPage + 5);
  const vaddr_t m2 = vm.module_alloc(kPage);
  ASSERT_NE(m1, 0u);
  ASSERT_NE(m2, 0u);
  for (vaddr_t m : {m1, m2}) {
    EXPECT_GE(m, mm.profile.modules_vaddr);
    EXPECT_LT(m, mm.profile.modules_end);
  }
  EXPECT_EQ(vm.find_vm_area(m1)->nr_pages, 4u);
  EXPECT_TRUE(m2 >= m1 + 5 * kPage || m2 + 2 * kPage <= m1);
  const auto data = pattern(64, 1);
  ASSERT_TRUE(vm.write(m1 + 3 * kPage, data));
  std::vector<std::uint8_t> back(64);
  ASSERT_TRUE(vm.read(m1 + 3 * kPage, back));
  EXPECT_EQ(back, data);
  // Plain vmalloc never lands there.
  const vaddr_t v = vm.vmalloc(kPage);
  EXPECT_GE(v, mm.profile.vmalloc_start);
  vm.vfree(m1);
  vm.vfree(m2);
  vm.vfree(v);
}

}  // namespace
