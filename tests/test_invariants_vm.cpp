// Every page-table and vmalloc invariant fires on a state broken on purpose
// (VmCorruptor or an API misuse), and only that one; every VM misuse report
// becomes exactly its violation and leaves the model consistent; a booted
// model stays clean through a vmalloc/vmap/ioremap/kmap workload.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "invariants/vm.h"
#include "mm/mm.h"
#include "mm/testing/corrupt.h"
#include "sweep_ids.h"

using namespace mmfuzz;
using namespace mmfuzz::mm;
using mmfuzz::testing::Ids;

namespace {

Ids ids(const inv::CheckEngine& e) {
  Ids s;
  for (const auto& v : e.violations()) s.insert(v.invariant);
  return s;
}

std::string texts(const inv::CheckEngine& e) {
  std::string s;
  for (const auto& v : e.violations()) s += v.to_text(false);
  return s;
}

inv::CheckOptions quiet() {
  inv::CheckOptions o;
  o.capture_stacks = false;
  return o;
}

class VmInvariants : public ::testing::Test {
 protected:
  void SetUp() override {
    MmConfig cfg;
    cfg.machine = small_machine(64 * SZ_1M);
    mm = std::make_unique<Mm>(cfg);
  }
  Ids sweep() {
    last_report.clear();
    return mmfuzz::testing::sweep_ids(*mm, &last_report);
  }
  // One full sweep with only `id` reported, returning its texts.
  std::string report_of(const std::string& id) {
    inv::CheckOptions o = quiet();
    o.checks = id;
    inv::CheckEngine e(*mm, o);
    e.full_sweep();
    return texts(e);
  }
  pfn_t page() {
    const pfn_t p = mm->page_alloc.alloc_pages(GFP_KERNEL, 0);
    EXPECT_NE(p, NO_PAGE);
    return p;
  }
  // A linear-map page well away from the kernel image.
  vaddr_t linear_va() const { return mm->__va(mm->machine.ram_base + 40 * SZ_1M); }
  std::unique_ptr<Mm> mm;
  std::string last_report;
};

// ------------------------------------------------------------ clean states

TEST_F(VmInvariants, BootedModelIsClean) {
  EXPECT_EQ(sweep(), Ids{}) << last_report;
}

TEST_F(VmInvariants, EveryBootStepIsClean) {
  MmConfig cfg;
  cfg.machine = small_machine(64 * SZ_1M);
  for (int s = static_cast<int>(BootStep::setup_arch);
       s <= static_cast<int>(BootStep::free_initmem); ++s) {
    Mm m(cfg, static_cast<BootStep>(s));
    // The buddy ledger only balances after mm_init: the VM checks alone.
    inv::CheckOptions o = quiet();
    o.checks = "pgtable.*,vmalloc.*,ioremap.*";
    inv::CheckEngine e(m, o);
    e.full_sweep();
    EXPECT_TRUE(e.clean()) << boot_step_name(static_cast<BootStep>(s)) << "\n" << texts(e);
  }
}

TEST_F(VmInvariants, RodataFullIsClean) {
  MmConfig cfg;
  cfg.machine = small_machine(64 * SZ_1M);
  cfg.rodata_full = true;
  Mm m(cfg);
  std::string text;
  EXPECT_EQ(mmfuzz::testing::sweep_ids(m, &text), Ids{}) << text;
}

TEST(VmInvariantsDefault, FullSweepOfDefaultMachineIsCleanAndTimed) {
  Mm big;
  inv::CheckOptions all = quiet();
  inv::CheckEngine e(big, all);
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  e.full_sweep();
  const auto all_us =
      std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count();
  EXPECT_TRUE(e.clean()) << texts(e);
  // The VM checker on its own (an engine runs every checker and only
  // filters their reports).
  const inv::CheckSelection sel = inv::CheckSelection::parse("all");
  std::vector<inv::Violation> out;
  const std::string op = "sweep";
  inv::Reporter r(sel, out, -1, op, 8, false);
  inv::VmChecker vc;
  vc.full(big, r);  // warm: the walk's vectors keep their capacity
  t0 = clock::now();
  constexpr int kRuns = 5;
  for (int i = 0; i < kRuns; ++i) vc.full(big, r);
  const auto vm_us =
      std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count() / kRuns;
  EXPECT_TRUE(out.empty()) << (out.empty() ? "" : out[0].to_text(false));
  std::printf(
      "[ timing ] default 1 GiB model: full sweep of all checkers %lld us, "
      "VmChecker alone %lld us\n",
      static_cast<long long>(all_us), static_cast<long long>(vm_us));
  RecordProperty("vm_full_sweep_us", std::to_string(vm_us));
}

TEST_F(VmInvariants, CleanAfterWorkloadInBothModes) {
  inv::CheckOptions o = quiet();
  o.full_every = 25;
  inv::CheckEngine e(*mm, o);
  auto& v = mm->vmalloc;
  std::vector<vaddr_t> vm_areas, vmaps, ios;
  std::vector<std::vector<pfn_t>> vmap_pages;
  std::uint64_t x = 42;
  std::array<std::uint8_t, 64> buf{};
  for (int i = 0; i < 600; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const unsigned op = static_cast<unsigned>((x >> 33) % 12);
    mm->set_cpu(static_cast<int>((x >> 40) % mm->nr_cpus()));
    e.begin_op(i, "vm");
    switch (op) {
      case 0:
      case 1: {
        // Up to 700 pages: above 512 the page array is itself vmalloc'd.
        const std::uint64_t pages = 1 + (x >> 13) % (op == 0 ? 8 : 700);
        const vaddr_t a = (x >> 50) & 1 ? v.vzalloc(pages * 4096 - 100) : v.vmalloc(pages * 4096);
        if (a) vm_areas.push_back(a);
        break;
      }
      case 2:
        if (!vm_areas.empty()) {
          const std::size_t k = (x >> 7) % vm_areas.size();
          v.vfree(vm_areas[k]);
          vm_areas.erase(vm_areas.begin() + static_cast<long>(k));
        }
        break;
      case 3: {
        std::vector<pfn_t> pages;
        for (unsigned n = 0; n < 1 + (x >> 20) % 6; ++n)
          if (auto p = mm->page_alloc.alloc_pages(GFP_KERNEL, 0); p != NO_PAGE) pages.push_back(p);
        if (const vaddr_t a = v.vmap(pages)) {
          vmaps.push_back(a);
          vmap_pages.push_back(pages);
        } else {
          for (auto p : pages) mm->page_alloc.__free_pages(p, 0);
        }
        break;
      }
      case 4:
        if (!vmaps.empty()) {
          v.vunmap(vmaps.back());
          for (auto p : vmap_pages.back()) mm->page_alloc.__free_pages(p, 0);
          vmaps.pop_back();
          vmap_pages.pop_back();
        }
        break;
      case 5: {
        const phys_addr_t devs[] = {0x09000000, 0x09010000, 0x09030000, 0x10000000 + 0x200000};
        const phys_addr_t pa = devs[(x >> 9) % 4];
        const vaddr_t a = (x >> 30) & 1 ? v.ioremap(pa, 0x1000) : v.ioremap_wc(pa, 0x800);
        if (a) {
          v.writel(0x12345678, a + 0x10);
          EXPECT_EQ(v.readl(a + 0x10), 0x12345678u);
          ios.push_back(a);
        }
        break;
      }
      case 6:
        if (!ios.empty()) {
          v.iounmap(ios.front());
          ios.erase(ios.begin());
        }
        break;
      case 7: {
        const pfn_t p = mm->page_alloc.alloc_pages(GFP_KERNEL, 0);
        if (p != NO_PAGE) {
          v.kmap(p);
          const vaddr_t l1 = v.kmap_local_page(p);
          const vaddr_t at = v.kmap_atomic(p);
          v.kunmap_atomic(at);
          v.kunmap_local(l1);
          v.kunmap(p);
          mm->page_alloc.__free_pages(p, 0);
        }
        break;
      }
      case 8:
      case 9:
        // Reads and writes through the current CPU's TLB.
        if (!vm_areas.empty()) {
          const vaddr_t a = vm_areas[(x >> 11) % vm_areas.size()];
          EXPECT_TRUE(v.write(a + 8, buf));
          EXPECT_TRUE(v.read(a, buf));
        }
        break;
      case 10:
        if ((x >> 17) % 4 == 0)
          v.purge_vmap_area_lazy();
        else
          mm->tick();
        break;
      case 11:
        if (const vaddr_t a = v.module_alloc(4096 * (1 + (x >> 25) % 4))) vm_areas.push_back(a);
        break;
    }
    e.end_op();
  }
  e.finish();
  EXPECT_GE(e.nr_sweeps(), 20u);
  EXPECT_TRUE(e.clean()) << texts(e);
  EXPECT_GT(mm->vmalloc.nr_purges, 0u);
  // Tear down and sweep again.
  for (auto a : vm_areas) v.vfree(a);
  for (std::size_t k = 0; k < vmaps.size(); ++k) {
    v.vunmap(vmaps[k]);
    for (auto p : vmap_pages[k]) mm->page_alloc.__free_pages(p, 0);
  }
  for (auto a : ios) v.iounmap(a);
  EXPECT_EQ(sweep(), Ids{}) << last_report;
  v.purge_vmap_area_lazy();
  EXPECT_EQ(sweep(), Ids{}) << last_report;
}

TEST_F(VmInvariants, LazilyFreedTlbEntriesAreAllowedUntilThePurge) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(4 * 4096);
  ASSERT_NE(a, 0u);
  std::array<std::uint8_t, 16> b{};
  for (int cpu = 0; cpu < static_cast<int>(mm->nr_cpus()); ++cpu) {
    mm->set_cpu(cpu);
    ASSERT_TRUE(v.read(a + 4096, b));
  }
  v.vfree(a);
  ASSERT_TRUE(mm->pgtable.tlb(0).count(a + 4096));  // unmapped, not yet flushed
  EXPECT_EQ(sweep(), Ids{}) << last_report;
  v.purge_vmap_area_lazy();
  EXPECT_FALSE(mm->pgtable.tlb(0).count(a + 4096));
  EXPECT_EQ(sweep(), Ids{}) << last_report;
}

// ------------------------------------------------------------ pgtable.*

TEST_F(VmInvariants, TablePageFiresOnTableWithoutPgTable) {
  const vaddr_t a = mm->vmalloc.vmalloc(4096);
  VmCorruptor c(*mm);
  const pfn_t table = (c.read_desc(c.entry_at(a, PMD)) & PTE_ADDR_MASK) >> 12;
  ASSERT_TRUE(PageTable(mm->pfn_to_page(table)));
  c.clear_page_table(table);
  EXPECT_EQ(sweep(), Ids{"pgtable.table_page"}) << last_report;
  EXPECT_NE(last_report.find("is not a PG_table page"), std::string::npos) << last_report;
}

TEST_F(VmInvariants, LeafFiresOnAccessFlagClear) {
  VmCorruptor c(*mm);
  const phys_addr_t e = c.leaf_entry(linear_va());
  ASSERT_NE(e, 0u);
  c.clear_bits(e, PTE_AF);
  EXPECT_EQ(sweep(), Ids{"pgtable.leaf"}) << last_report;
  EXPECT_NE(last_report.find("BUG: Bad page map in process mmfuzz"), std::string::npos);
}

TEST_F(VmInvariants, LeafFiresOnUndefinedAttrIndx) {
  VmCorruptor c(*mm);
  ASSERT_NE(mm->pgtable.fdt_va, 0u);
  const phys_addr_t e = c.leaf_entry(mm->pgtable.fdt_va);  // the fixmap: no other check
  ASSERT_NE(e, 0u);
  c.write_desc(e, (c.read_desc(e) & ~PTE_ATTRINDX_MASK) | PTE_ATTRINDX(6));
  EXPECT_EQ(sweep(), Ids{"pgtable.leaf"}) << last_report;
}

TEST_F(VmInvariants, LeafFiresOnReservedTypeBlockAtPgdAndMisalignedBlock) {
  VmCorruptor c(*mm);
  // Type 01 at level 3 is reserved: the fixmap page becomes unmapped-and-bad.
  const phys_addr_t e = c.leaf_entry(mm->pgtable.fdt_va);
  ASSERT_EQ(mm->pgtable.walk(mm->pgtable.fdt_va).level, PTE);
  const pteval_t d = c.read_desc(e);
  c.write_desc(e, (d & ~PTE_TYPE_MASK) | PMD_TYPE_SECT);
  EXPECT_EQ(sweep(), Ids{"pgtable.leaf"}) << last_report;
  EXPECT_NE(last_report.find("reserved descriptor"), std::string::npos) << last_report;
  c.write_desc(e, d);
  ASSERT_EQ(sweep(), Ids{}) << last_report;
  // A block descriptor in an unused PGD slot (PGD blocks do not exist).
  const vaddr_t unused = mm->profile.page_offset + (vaddr_t{1} << 46);
  const phys_addr_t pgd_entry = c.entry_at(unused, PGD);
  ASSERT_EQ(c.read_desc(pgd_entry), 0u);
  c.write_desc(pgd_entry, mm->machine.ram_base | PMD_TYPE_SECT | PTE_AF);
  EXPECT_EQ(sweep(), Ids{"pgtable.leaf"}) << last_report;
  c.write_desc(pgd_entry, 0);
  // A 2 MiB block whose output address has bits below 2 MiB set.
  const PgWalk w = c.walk(linear_va());
  ASSERT_TRUE(w.leaf);
  ASSERT_EQ(w.level, PMD);
  c.set_bits(w.entry, 0x1000);
  EXPECT_EQ(sweep(), Ids{"pgtable.leaf"}) << last_report;
  EXPECT_NE(last_report.find("is not aligned"), std::string::npos) << last_report;
}

TEST_F(VmInvariants, RangeFiresOnOutputOutsideRamAndDevices) {
  VmCorruptor c(*mm);
  const phys_addr_t e = c.leaf_entry(mm->pgtable.fdt_va);
  ASSERT_NE(e, 0u);
  c.write_desc(e, (c.read_desc(e) & ~PTE_ADDR_MASK) | 0x1000000000ull);  // 64 GiB: nothing
  EXPECT_EQ(sweep(), Ids{"pgtable.range"}) << last_report;
}

TEST_F(VmInvariants, LinearMapFiresOnHoleAndOnDeviceAttributes) {
  VmCorruptor c(*mm);
  const phys_addr_t e = c.leaf_entry(linear_va());
  ASSERT_NE(e, 0u);
  const pteval_t d = c.read_desc(e);
  c.write_desc(e, 0);
  EXPECT_EQ(sweep(), Ids{"pgtable.linear_map"}) << last_report;
  EXPECT_NE(last_report.find("the linear map does not map memory"), std::string::npos);
  c.write_desc(e, (d & ~PTE_ATTRINDX_MASK) | PTE_ATTRINDX(mm->profile.mt_device_ngnre));
  EXPECT_EQ(sweep(), Ids{"pgtable.linear_map"}) << last_report;
  c.write_desc(e, d);
  EXPECT_EQ(sweep(), Ids{}) << last_report;
}

TEST_F(VmInvariants, WxFiresOnWritableExecutableMapping) {
  VmCorruptor c(*mm);
  const phys_addr_t e = c.leaf_entry(linear_va());
  c.clear_bits(e, PTE_PXN);
  EXPECT_EQ(sweep(), Ids{"pgtable.wx"}) << last_report;
  EXPECT_NE(last_report.find("WARNING: arm64/mm: Found insecure W+X mapping at address"),
            std::string::npos)
      << last_report;
}

TEST_F(VmInvariants, FreePageMappedFiresOnPageFreedWhileVmapped) {
  const pfn_t p = page();
  const pfn_t pages[] = {p};
  const vaddr_t a = mm->vmalloc.vmap(pages);
  ASSERT_NE(a, 0u);
  mm->page_alloc.__free_pages(p, 0);  // the caller forgot vunmap()
  EXPECT_EQ(sweep(), Ids{"pgtable.free_page_mapped"}) << last_report;
  EXPECT_NE(last_report.find(fmt::format("addr:{:016x} maps pfn {:#x}", a, p)), std::string::npos)
      << last_report;
}

TEST_F(VmInvariants, TlbStaleFiresOnEntryPlantedAfterThePurge) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(2 * 4096);
  std::array<std::uint8_t, 8> b{};
  ASSERT_TRUE(v.read(a, b));
  const TlbEntry old = mm->pgtable.tlb(0).at(a);
  v.vfree(a);
  v.purge_vmap_area_lazy();
  EXPECT_EQ(sweep(), Ids{}) << last_report;
  VmCorruptor(*mm).plant_tlb(0, a, old.pa, old.attrs);
  EXPECT_EQ(sweep(), Ids{"pgtable.tlb_stale"}) << last_report;
  EXPECT_NE(last_report.find("BUG: stale TLB entry on CPU 0"), std::string::npos) << last_report;
}

TEST_F(VmInvariants, TlbStaleFiresOnProtectionChangeWithoutFlush) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(4096);
  std::array<std::uint8_t, 8> b{};
  ASSERT_TRUE(v.read(a, b));
  VmCorruptor c(*mm);
  // Make the page read-only in the tables and in the area's prot: only the
  // TLB still says writable.
  c.set_bits(c.leaf_entry(a), PTE_RDONLY);
  c.vm(a)->prot |= PTE_RDONLY;
  EXPECT_EQ(sweep(), Ids{"pgtable.tlb_stale"}) << last_report;
}

TEST_F(VmInvariants, AccountingFiresOnNrPagetable) {
  VmCorruptor(*mm).add_nr_pagetable(0, 1);
  EXPECT_EQ(sweep(), Ids{"pgtable.accounting"}) << last_report;
}

TEST_F(VmInvariants, AccountingFiresOnStrayPgTablePage) {
  VmCorruptor(*mm).set_page_table(page());
  EXPECT_EQ(sweep(), Ids{"pgtable.accounting"}) << last_report;
  EXPECT_NE(last_report.find("is not reachable from swapper_pg_dir"), std::string::npos);
}

TEST_F(VmInvariants, SlabOverlapFiresOnTableInsideALiveSlabObject) {
  const vaddr_t obj = mm->slab.kmalloc(4096, GFP_KERNEL);
  ASSERT_NE(obj, 0u);
  ASSERT_EQ(obj % 4096, 0u);
  const pfn_t slab_pfn = mm->virt_to_pfn(obj);
  ASSERT_TRUE(mm->slab.find_object(obj).has_value());
  // The last page of a 4 MiB area: its PTE table came from the page
  // allocator (the boot tables only cover the kernel image).
  const vaddr_t a = mm->vmalloc.vmalloc(4 * SZ_1M) + 4 * SZ_1M - 4096;
  const auto before = mm->pgtable.translate(a);
  ASSERT_TRUE(before.has_value());
  VmCorruptor c(*mm);
  ASSERT_FALSE(mm->pgtable.is_boot_table((c.read_desc(c.entry_at(a, PMD)) & PTE_ADDR_MASK) >> 12));
  // The PTE table of `a` moves into the kmalloc object: same descriptors,
  // PG_table moved with it, so only the overlap with the object is wrong.
  const phys_addr_t old = c.move_table(a, PMD, slab_pfn << 12);
  ASSERT_NE(old, 0u);
  c.clear_page_table(old >> 12);
  c.set_page_table(slab_pfn);
  EXPECT_EQ(mm->pgtable.translate(a), before);
  EXPECT_EQ(sweep(), Ids{"pgtable.slab_overlap"}) << last_report;
  EXPECT_NE(last_report.find(fmt::format("live object {:#x}", obj)), std::string::npos)
      << last_report;
}

// ------------------------------------------------------------ vmalloc.*, ioremap.*

TEST_F(VmInvariants, AreaMapFiresOnWrongPageAndOnPageArray) {
  const vaddr_t a = mm->vmalloc.vmalloc(2 * 4096);
  VmCorruptor c(*mm);
  const phys_addr_t e = c.leaf_entry(a + 4096);
  const pteval_t d = c.read_desc(e);
  const pfn_t q = page();
  c.write_desc(e, (d & ~PTE_ADDR_MASK) | (q << 12));
  EXPECT_EQ(sweep(), Ids{"vmalloc.area_map"}) << last_report;
  c.write_desc(e, d);
  ASSERT_EQ(sweep(), Ids{}) << last_report;
  // The struct page * array (kmalloc'd for two pages) names another page.
  const vm_struct* vm = mm->vmalloc.find_vm_area(a);
  ASSERT_NE(vm->pages_array, 0u);
  mm->ram.store64(mm->__pa(vm->pages_array + 8), mm->pfn_to_vmemmap(q));
  EXPECT_EQ(sweep(), Ids{"vmalloc.area_map"}) << last_report;
  EXPECT_NE(last_report.find("pages[1]"), std::string::npos) << last_report;
}

TEST_F(VmInvariants, GuardFiresOnMappedGuardPageAndOnMappedLazyArea) {
  const vaddr_t a = mm->vmalloc.vmalloc(4096);
  VmCorruptor c(*mm);
  ASSERT_TRUE(c.map_page(a + 4096, page(), mm->vmalloc.pgprot_kernel()));
  EXPECT_EQ(sweep(), Ids{"vmalloc.guard"}) << last_report;
  EXPECT_NE(last_report.find(fmt::format("guard page {:016x}", a + 4096)), std::string::npos)
      << last_report;
  mm->pgtable.unmap_range(a + 4096, 4096);
  ASSERT_EQ(sweep(), Ids{}) << last_report;
  // vfree() left a mapping behind in the lazily freed area.
  mm->vmalloc.vfree(a);
  ASSERT_NE(c.lazy_area(a), nullptr);
  ASSERT_TRUE(c.map_page(a, page(), mm->vmalloc.pgprot_kernel()));
  EXPECT_EQ(sweep(), Ids{"vmalloc.guard"}) << last_report;
}

TEST_F(VmInvariants, OverlapFiresOnFreeRangeOverBusyAreaAndOnOrphanMapping) {
  const vaddr_t a = mm->vmalloc.vmalloc(4096);
  VmCorruptor c(*mm);
  c.add_free_range(a, a + 4096);
  EXPECT_EQ(sweep(), Ids{"vmalloc.overlap"}) << last_report;
  SetUp();  // a fresh model
  VmCorruptor c2(*mm);
  const vaddr_t orphan = mm->profile.vmalloc_end - 64 * 4096;
  ASSERT_TRUE(c2.map_page(orphan, page(), mm->vmalloc.pgprot_kernel()));
  EXPECT_EQ(sweep(), Ids{"vmalloc.overlap"}) << last_report;
  EXPECT_NE(last_report.find("orphan mapping"), std::string::npos) << last_report;
}

TEST_F(VmInvariants, BookkeepingFiresOnCountersAndVmStruct) {
  const vaddr_t a = mm->vmalloc.vmalloc(3 * 4096);
  VmCorruptor c(*mm);
  c.set_nr_vmalloc_pages(mm->vmalloc.nr_vmalloc_pages + 1);
  EXPECT_EQ(sweep(), Ids{"vmalloc.bookkeeping"}) << last_report;
  c.set_nr_vmalloc_pages(mm->vmalloc.nr_vmalloc_pages - 1);
  ASSERT_EQ(sweep(), Ids{}) << last_report;
  c.vm(a)->size += 4096;  // vm_struct and vmap_area disagree
  EXPECT_EQ(sweep(), Ids{"vmalloc.bookkeeping"}) << last_report;
  c.vm(a)->size -= 4096;
  mm->vmalloc.vfree(a);
  c.set_vmap_lazy_nr(0);
  EXPECT_EQ(sweep(), Ids{"vmalloc.bookkeeping"}) << last_report;
}

TEST_F(VmInvariants, IoremapAttrsFiresOnNormalMemoryAttributes) {
  const vaddr_t io = mm->vmalloc.ioremap(0x09000000, 0x1000);
  ASSERT_NE(io, 0u);
  VmCorruptor c(*mm);
  const pteval_t kernel = mm->pgtable.prot().kernel;
  c.vm(io)->prot = kernel;  // area and leaf agree: only the attributes are wrong
  const phys_addr_t e = c.leaf_entry(io);
  c.write_desc(e, (c.read_desc(e) & PTE_ADDR_MASK) | (kernel & ~PTE_ADDR_MASK));
  EXPECT_EQ(sweep(), Ids{"ioremap.attrs"}) << last_report;
  EXPECT_NE(last_report.find("WARNING: ioremap"), std::string::npos) << last_report;
}

// ------------------------------------------------------------ incremental mode

TEST_F(VmInvariants, IncrementalChecksTheTouchedAreas) {
  const vaddr_t a = mm->vmalloc.vmalloc(4096);
  VmCorruptor c(*mm);
  ASSERT_TRUE(c.map_page(a + 4096, page(), mm->vmalloc.pgprot_kernel()));
  inv::CheckEngine e(*mm, quiet());
  e.begin_op(0, "untouched");
  e.end_op();
  EXPECT_TRUE(e.clean());
  e.begin_op(1, "vmalloc");
  const vaddr_t b = mm->vmalloc.vmalloc(4096);  // another area: a is not looked at
  ASSERT_NE(b, 0u);
  e.end_op();
  EXPECT_TRUE(e.clean()) << texts(e);
  e.begin_op(2, "touching");
  e.vm_area_changed(a, a + 2 * 4096);
  e.end_op();
  ASSERT_EQ(ids(e), Ids{"vmalloc.guard"});
  EXPECT_EQ(e.violations()[0].op_index, 2);
  EXPECT_EQ(e.violations()[0].subsystem, "vmalloc");
}

TEST_F(VmInvariants, IncrementalCatchesAnUnflushedPurge) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(4096);
  std::array<std::uint8_t, 8> b{};
  ASSERT_TRUE(v.read(a, b));
  const TlbEntry old = mm->pgtable.tlb(0).at(a);
  inv::CheckEngine e(*mm, quiet());
  e.begin_op(0, "vfree");
  v.vfree(a);
  e.end_op();
  e.begin_op(1, "purge");
  v.purge_vmap_area_lazy();
  VmCorruptor(*mm).plant_tlb(0, a, old.pa, old.attrs);  // as if the flush had missed it
  e.end_op();
  EXPECT_EQ(ids(e), Ids{"pgtable.tlb_stale"}) << texts(e);
}

TEST_F(VmInvariants, IncrementalMatchesFullOnMappingChanges) {
  // A mapping changed behind vmalloc's back is seen once its area is touched.
  const vaddr_t a = mm->vmalloc.vmalloc(2 * 4096);
  VmCorruptor c(*mm);
  c.write_desc(c.leaf_entry(a), 0);
  inv::CheckEngine e(*mm, quiet());
  e.begin_op(0, "op");
  e.vm_area_changed(a, a + 3 * 4096);
  e.end_op();
  EXPECT_EQ(ids(e), Ids{"vmalloc.area_map"}) << texts(e);
  EXPECT_EQ(sweep(), Ids{"vmalloc.area_map"}) << last_report;
}

// ------------------------------------------------------------ misuse

class VmMisuse : public VmInvariants {
 protected:
  void SetUp() override {
    VmInvariants::SetUp();
    engine = std::make_unique<inv::CheckEngine>(*mm, quiet());
  }
  void TearDown() override { engine.reset(); }
  // The violations so far are exactly one of `id`; then the model is still
  // consistent.
  void expect_only(const std::string& id, std::size_t n = 1) {
    EXPECT_EQ(ids(*engine), Ids{id}) << texts(*engine);
    EXPECT_EQ(engine->violations().size(), n) << texts(*engine);
    for (const auto& v : engine->violations()) {
      EXPECT_EQ(v.kind, inv::ViolationKind::misuse);
      EXPECT_EQ(v.subsystem, "vm");
    }
    engine->clear();
  }
  void expect_consistent() {
    engine->clear();
    engine->full_sweep();
    EXPECT_TRUE(engine->clean()) << texts(*engine);
  }
  std::string title() const {
    return engine->violations().empty() ? "" : engine->violations()[0].title;
  }
  std::unique_ptr<inv::CheckEngine> engine;
};

TEST_F(VmMisuse, BadFree) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(2 * 4096);
  v.vfree(a + 4096);
  EXPECT_NE(title().find("WARNING: Trying to vfree() nonexistent vm area"), std::string::npos)
      << title();
  expect_only("vmalloc.bad_free");
  v.vfree(a + 1);
  EXPECT_NE(title().find("Trying to vfree() bad address"), std::string::npos) << title();
  expect_only("vmalloc.bad_free");
  v.vunmap(a + 4096);
  expect_only("vmalloc.bad_free");
  expect_consistent();
  v.vfree(a);
  expect_consistent();
}

TEST_F(VmMisuse, DoubleFree) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(4096);
  v.vfree(a);
  EXPECT_TRUE(engine->clean()) << texts(*engine);
  v.vfree(a);
  expect_only("vmalloc.double_free");
  v.purge_vmap_area_lazy();
  v.vfree(a);
  expect_only("vmalloc.double_free");
  expect_consistent();
}

TEST_F(VmMisuse, VunmapOfVmalloc) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(3 * 4096);
  v.vunmap(a);
  expect_only("vmalloc.vunmap_vmalloc");
  expect_consistent();
  v.vfree(a);
  expect_consistent();
}

TEST_F(VmMisuse, SleepInAtomic) {
  auto& v = mm->vmalloc;
  mm->preempt_disable();
  const vaddr_t a = v.vmalloc(4096);
  EXPECT_EQ(title(), "BUG: sleeping function called from invalid context at mm/vmalloc.c");
  expect_only("vmalloc.sleep_in_atomic");
  mm->preempt_enable();
  expect_consistent();
  v.vfree(a);
  expect_consistent();
}

TEST_F(VmMisuse, BadVmap) {
  const pfn_t p = page();
  mm->page_alloc.__free_pages(p, 0);
  const pfn_t pages[] = {p};
  EXPECT_EQ(mm->vmalloc.vmap(pages), 0u);
  expect_only("vmalloc.bad_vmap");
  expect_consistent();
}

TEST_F(VmMisuse, IoremapRam) {
  EXPECT_EQ(mm->vmalloc.ioremap(mm->machine.ram_base + 0x100000, 0x1000), 0u);
  EXPECT_NE(title().find("WARNING: ioremap on RAM at"), std::string::npos) << title();
  expect_only("ioremap.ram");
  expect_consistent();
}

TEST_F(VmMisuse, IoremapNoDevice) {
  EXPECT_EQ(mm->vmalloc.ioremap(0x08000000, 0x1000), 0u);
  expect_only("ioremap.no_device");
  // A range that starts in a device and runs past its end.
  EXPECT_EQ(mm->vmalloc.ioremap(0x09000000, 0x2000), 0u);
  expect_only("ioremap.no_device");
  expect_consistent();
}

TEST_F(VmMisuse, BadIounmap) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(4096);
  v.iounmap(a);
  expect_only("ioremap.bad_iounmap");
  v.iounmap(mm->profile.vmalloc_end - 0x100000);
  expect_only("ioremap.bad_iounmap");
  expect_consistent();
  v.vfree(a);
  expect_consistent();
}

TEST_F(VmMisuse, BadIoAccess) {
  auto& v = mm->vmalloc;
  const vaddr_t io = v.ioremap(0x09000000, 0x1000);
  ASSERT_NE(io, 0u);
  v.readl(io + 1);  // misaligned
  EXPECT_NE(title().find("alignment fault"), std::string::npos) << title();
  expect_only("ioremap.bad_access");
  v.readl(mm->profile.vmalloc_end - 0x100000);  // nothing mapped there
  EXPECT_NE(title().find("Unable to handle kernel paging request at virtual address"),
            std::string::npos)
      << title();
  expect_only("ioremap.bad_access");
  expect_consistent();
  v.iounmap(io);
  expect_consistent();
}

TEST_F(VmMisuse, KmapUnbalanced) {
  auto& v = mm->vmalloc;
  const pfn_t p = page();
  v.kunmap(p);
  expect_only("kmap.unbalanced");
  v.kunmap_local(mm->page_address(p));
  expect_only("kmap.unbalanced");
  expect_consistent();
}

TEST_F(VmMisuse, KmapNesting) {
  auto& v = mm->vmalloc;
  const pfn_t p1 = page(), p2 = page();
  const vaddr_t x = v.kmap_local_page(p1);
  const vaddr_t y = v.kmap_local_page(p2);
  v.kunmap_local(x);  // out of order
  expect_only("kmap.nesting");
  v.kunmap_local(y);
  EXPECT_TRUE(engine->clean()) << texts(*engine);
  std::vector<vaddr_t> st;
  for (unsigned i = 0; i <= Vmalloc::KM_MAX_IDX; ++i) st.push_back(v.kmap_local_page(p1));
  EXPECT_EQ(st.back(), 0u);  // the 17th
  EXPECT_NE(title().find("kernel BUG at mm/highmem.c"), std::string::npos) << title();
  expect_only("kmap.nesting");
  st.pop_back();
  while (!st.empty()) {
    v.kunmap_local(st.back());
    st.pop_back();
  }
  EXPECT_TRUE(engine->clean()) << texts(*engine);
  EXPECT_TRUE(v.kmap_stack(mm->cpu()).empty());
  expect_consistent();
}

TEST_F(VmMisuse, FaultOnGuardPageAndOnKernelText) {
  auto& v = mm->vmalloc;
  const vaddr_t a = v.vmalloc(4096);
  EXPECT_FALSE(v.fill(a + 4096, 4, 0xaa));  // the guard page
  EXPECT_EQ(
      title(),
      fmt::format("Unable to handle kernel paging request at virtual address {:016x}", a + 4096));
  expect_only("vm.fault");
  const auto& text = mm->pgtable.kimage_segments.front();
  ASSERT_STREQ(text.name, "vmlinux_text");
  const std::uint8_t bytes[4] = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_FALSE(v.write(text.va + 0x100, bytes));
  EXPECT_NE(title().find("Unable to handle kernel write to read-only memory"), std::string::npos)
      << title();
  ASSERT_FALSE(engine->violations().empty());
  const std::string t = engine->violations()[0].to_text(false);
  EXPECT_NE(t.find("pte="), std::string::npos) << t;  // show_pte()
  expect_only("vm.fault");
  expect_consistent();
  v.vfree(a);
  expect_consistent();
}

TEST(VmCheckSelection, VmIdsAreListedAndDescribed) {
  const auto all = inv::all_invariant_ids();
  const std::set<std::string> s(all.begin(), all.end());
  for (const char* id :
       {"pgtable.table_page", "pgtable.leaf", "pgtable.range", "pgtable.linear_map", "pgtable.wx",
        "pgtable.free_page_mapped", "pgtable.tlb_stale", "pgtable.accounting",
        "pgtable.slab_overlap", "vmalloc.area_map", "vmalloc.guard", "vmalloc.overlap",
        "vmalloc.bookkeeping", "ioremap.attrs"}) {
    EXPECT_TRUE(s.count(id)) << id;
    EXPECT_NE(inv::invariant_description(id), "") << id;
  }
  const auto sel = inv::CheckSelection::parse("pgtable.*");
  EXPECT_TRUE(sel.enabled("pgtable.wx"));
  EXPECT_FALSE(sel.enabled("vmalloc.guard"));
}

}  // namespace
