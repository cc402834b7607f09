// memblock, SPARSEMEM, simulated RAM and the boot steps of start_kernel().
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/phys/machine.h"
#include "mm/phys/memblock.h"
#include "mm/phys/page.h"
#include "mm/phys/ram.h"
#include "mm/phys/sparse.h"
#include "mm/profile.h"

namespace mmfuzz::mm {
namespace {

constexpr std::uint64_t PAGE = 4096;

struct R {
  phys_addr_t base, end;
  int nid;
};

// The regions of a memblock_type as (base, end, nid).
std::vector<R> regions(const memblock_type& t) {
  std::vector<R> out;
  for (const auto& r : t.regions) out.push_back({r.base, r.end(), r.nid});
  return out;
}

void expect_regions(const memblock_type& t, const std::vector<R>& want) {
  const auto got = regions(t);
  ASSERT_EQ(got.size(), want.size()) << t.name;
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].base, want[i].base) << t.name << " region " << i;
    EXPECT_EQ(got[i].end, want[i].end) << t.name << " region " << i;
    EXPECT_EQ(got[i].nid, want[i].nid) << t.name << " region " << i;
  }
}

bool has_log(const Mm& mm, const std::string& line) {
  for (const auto& l : mm.boot_log)
    if (l == line) return true;
  return false;
}

bool has_log_prefix(const Mm& mm, const std::string& prefix) {
  for (const auto& l : mm.boot_log)
    if (l.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

// ---------------------------------------------------------------- memblock

TEST(Memblock, EmptyTypes) {
  Memblock mb;
  EXPECT_EQ(mb.memory.name, "memory");
  EXPECT_EQ(mb.reserved.name, "reserved");
  EXPECT_TRUE(mb.memory.regions.empty());
  EXPECT_EQ(mb.memory.total_size(), 0u);
  EXPECT_EQ(mb.start_of_DRAM(), 0u);
  EXPECT_EQ(mb.end_of_DRAM(), 0u);
  EXPECT_FALSE(mb.is_memory(0x40000000));
  EXPECT_TRUE(mb.free_ranges().empty());
  EXPECT_EQ(mb.phys_alloc(PAGE, PAGE), 0u);
  EXPECT_EQ(mb.current_limit, ~phys_addr_t{0});
}

TEST(Memblock, AddMergesAdjacentRegionsOfTheSameNode) {
  Memblock mb;
  mb.add_node(0x3000, 0x1000, 0);
  mb.add_node(0x1000, 0x1000, 0);
  expect_regions(mb.memory, {{0x1000, 0x2000, 0}, {0x3000, 0x4000, 0}});  // kept sorted
  mb.add_node(0x2000, 0x1000, 0);  // fills the gap: one region
  expect_regions(mb.memory, {{0x1000, 0x4000, 0}});
  mb.add_node(0x4000, 0x1000, 1);  // adjacent but another node: not merged
  expect_regions(mb.memory, {{0x1000, 0x4000, 0}, {0x4000, 0x5000, 1}});
  EXPECT_EQ(mb.memory.total_size(), 0x4000u);
  EXPECT_EQ(mb.start_of_DRAM(), 0x1000u);
  EXPECT_EQ(mb.end_of_DRAM(), 0x5000u);
  mb.add_node(0x9000, 0, 0);  // size 0: nothing
  EXPECT_EQ(mb.memory.regions.size(), 2u);
}

TEST(Memblock, OverlappingAddOnlyAddsTheGaps) {
  Memblock mb;
  mb.add_node(0x2000, 0x1000, 0);
  mb.add_node(0x5000, 0x1000, 0);
  mb.add_node(0x1000, 0x8000, 0);  // covers both and the gaps around them
  expect_regions(mb.memory, {{0x1000, 0x9000, 0}});
  EXPECT_EQ(mb.memory.total_size(), 0x8000u);
  mb.add_node(0x1000, 0x8000, 0);  // adding it again changes nothing
  expect_regions(mb.memory, {{0x1000, 0x9000, 0}});
}

TEST(Memblock, RemoveSplitsAndTrims) {
  Memblock mb;
  mb.add_node(0x10000, 0x10000, 0);
  mb.remove(0x14000, 0x1000);  // punch a hole
  expect_regions(mb.memory, {{0x10000, 0x14000, 0}, {0x15000, 0x20000, 0}});
  mb.remove(0xf000, 0x2000);  // trims the start
  expect_regions(mb.memory, {{0x11000, 0x14000, 0}, {0x15000, 0x20000, 0}});
  mb.remove(0x13000, 0x3000);  // spans both regions
  expect_regions(mb.memory, {{0x11000, 0x13000, 0}, {0x16000, 0x20000, 0}});
  mb.remove(0x16000, 0xa000);  // a whole region
  expect_regions(mb.memory, {{0x11000, 0x13000, 0}});
  mb.remove(0x50000, 0x1000);  // nothing there
  expect_regions(mb.memory, {{0x11000, 0x13000, 0}});
  EXPECT_TRUE(mb.is_memory(0x11000));
  EXPECT_TRUE(mb.is_memory(0x12fff));
  EXPECT_FALSE(mb.is_memory(0x13000));
  EXPECT_FALSE(mb.is_memory(0x10fff));
}

TEST(Memblock, ReserveMergesAndFreeSplits) {
  Memblock mb;
  mb.add_node(0x40000000, 0x10000000, 0);
  mb.reserve(0x40002000, 0x1000);
  mb.reserve(0x40000000, 0x1000);
  mb.reserve(0x40001000, 0x1000);  // bridges the two
  expect_regions(mb.reserved, {{0x40000000, 0x40003000, MAX_NUMNODES_NID}});
  mb.reserve(0x40002800, 0x1000);  // overlaps the end
  expect_regions(mb.reserved, {{0x40000000, 0x40003800, MAX_NUMNODES_NID}});
  EXPECT_EQ(mb.reserved.total_size(), 0x3800u);
  EXPECT_TRUE(mb.is_region_reserved(0x40003000, 0x1000));
  EXPECT_FALSE(mb.is_region_reserved(0x40003800, 0x1000));  // touching is not overlapping
  EXPECT_TRUE(mb.is_region_reserved(0x3ffff000, 0x1001));
  EXPECT_FALSE(mb.is_region_reserved(0x3ffff000, 0x1000));

  mb.phys_free(0x40001000, 0x1000);  // memblock_phys_free splits the region
  expect_regions(mb.reserved, {{0x40000000, 0x40001000, MAX_NUMNODES_NID},
                               {0x40002000, 0x40003800, MAX_NUMNODES_NID}});
  mb.phys_free(0x40000000, 0x4000);  // frees everything
  EXPECT_TRUE(mb.reserved.regions.empty());
  // Reservations never change the memory type.
  expect_regions(mb.memory, {{0x40000000, 0x50000000, 0}});
}

TEST(Memblock, FreeRangesAreMemoryMinusReserved) {
  Memblock mb;
  mb.add_node(0x10000, 0x10000, 0);
  mb.add_node(0x30000, 0x10000, 1);
  mb.reserve(0x10000, 0x1000);   // start of the first region
  mb.reserve(0x18000, 0x2000);   // middle
  mb.reserve(0x1f000, 0x12000);  // end of the first, a gap, start of the second
  const auto fr = mb.free_ranges();
  ASSERT_EQ(fr.size(), 3u);
  EXPECT_EQ(fr[0].start, 0x11000u);
  EXPECT_EQ(fr[0].end, 0x18000u);
  EXPECT_EQ(fr[1].start, 0x1a000u);
  EXPECT_EQ(fr[1].end, 0x1f000u);
  EXPECT_EQ(fr[2].start, 0x31000u);
  EXPECT_EQ(fr[2].end, 0x40000u);
}

TEST(Memblock, PhysAllocRangeIsTopDownAligned) {
  Memblock mb;
  mb.add_node(0x40000000, 0x10000000, 0);
  mb.reserve(0x4f000000, 0x1000000);
  // Highest free address first.
  EXPECT_EQ(mb.phys_alloc(SZ_1M, SZ_1M), 0x4ef00000u);
  expect_regions(mb.reserved, {{0x4ef00000, 0x50000000, MAX_NUMNODES_NID}});
  // The candidate is rounded down to the alignment.
  EXPECT_EQ(mb.phys_alloc(0x3000, 0x10000), 0x4eef0000u);
  EXPECT_TRUE(mb.is_region_reserved(0x4eef0000, 0x3000));
  EXPECT_FALSE(mb.is_region_reserved(0x4eef3000, 0xd000));  // the alignment slack stays free
  // Page alignment packs allocations directly below each other.
  EXPECT_EQ(mb.phys_alloc(PAGE, PAGE), 0x4eeff000u);
  EXPECT_EQ(mb.phys_alloc(PAGE, PAGE), 0x4eefe000u);
}

TEST(Memblock, PhysAllocRangeHonoursLimits) {
  Memblock mb;
  mb.add_node(0x40000000, 0x10000000, 0);
  // An explicit end.
  EXPECT_EQ(mb.phys_alloc_range(SZ_1M, SZ_1M, 0, 0x48000000), 0x47f00000u);
  // An explicit start: only [start, end) qualifies.
  EXPECT_EQ(mb.phys_alloc_range(SZ_1M, SZ_1M, 0x41000000, 0x41100000), 0x41000000u);
  EXPECT_EQ(mb.phys_alloc_range(SZ_1M, SZ_1M, 0x41000000, 0x41100000), 0u);  // now taken
  // A window that cannot hold an aligned block fails.
  EXPECT_EQ(mb.phys_alloc_range(SZ_1M, SZ_1M, 0x42080000, 0x42180000), 0u);
  // current_limit caps every allocation (memblock_set_current_limit).
  mb.current_limit = 0x44000000;
  EXPECT_EQ(mb.phys_alloc(PAGE, PAGE), 0x43fff000u);
  EXPECT_EQ(mb.phys_alloc_range(PAGE, PAGE, 0, 0x50000000), 0x43ffe000u);
}

TEST(Memblock, PhysAllocFailureReturnsZeroAndReservesNothing) {
  Memblock mb;
  mb.add_node(0x40200000, 0x400000, 0);
  mb.reserve(0x40300000, 0x100000);                // free: 1 MiB below, 2 MiB above
  EXPECT_EQ(mb.phys_alloc(0x300000, PAGE), 0u);    // 3 MiB free, but not contiguous
  EXPECT_EQ(mb.phys_alloc(0x500000, PAGE), 0u);    // more than all of RAM
  EXPECT_EQ(mb.phys_alloc(0, PAGE), 0u);           // nothing asked
  EXPECT_EQ(mb.phys_alloc(SZ_1M, 8 * SZ_1M), 0u);  // no 8 MiB aligned address in RAM
  expect_regions(mb.reserved, {{0x40300000, 0x40400000, MAX_NUMNODES_NID}});
  // Fits only in the upper range.
  EXPECT_EQ(mb.phys_alloc(0x180000, PAGE), 0x40480000u);
  // The upper range has 512 KiB left: a 1 MiB request goes below the reservation.
  EXPECT_EQ(mb.phys_alloc(0x100000, PAGE), 0x40200000u);
  EXPECT_EQ(mb.phys_alloc(PAGE, PAGE), 0x4047f000u);
  expect_regions(mb.reserved, {{0x40200000, 0x40400000, MAX_NUMNODES_NID},
                               {0x4047f000, 0x40600000, MAX_NUMNODES_NID}});
  EXPECT_EQ(mb.phys_alloc(0x80000, PAGE), 0u);  // 508 KiB left in total
}

// ---------------------------------------------------------------- sparse

TEST(Sparse, PresentSectionsAndPfnValid) {
  const KernelProfile& p = profile_by_name("linux-6.1-arm64");
  Sparse sp;
  sp.init(p);
  EXPECT_EQ(sp.section_shift(), 15u);
  EXPECT_EQ(sp.nr_mem_sections(), std::uint64_t{1} << 21);  // 48 - 27 bits
  EXPECT_EQ(sp.sections_per_root(), 256u);                  // PAGE_SIZE / sizeof(mem_section)
  EXPECT_EQ(sp.nr_section_roots(), 8192u);
  sp.memory_present(0, 0x40000000, 0x48000000);  // section 8
  sp.memory_present(0, 0x50000000, 0x60000000);  // sections 10, 11
  EXPECT_EQ(sp.nr_present_sections(), 3u);
  EXPECT_EQ(sp.present_sections(), (std::vector<std::uint64_t>{8, 10, 11}));
  // Present is not valid: no memmap before sparse_init.
  EXPECT_FALSE(sp.valid_section(8));
  sp.memory_present(0, 0x40000000, 0x40001000);  // again: counted once
  EXPECT_EQ(sp.nr_present_sections(), 3u);

  EXPECT_EQ(sp.sparse_init(), 3u * 32768u * 64u);  // sizeof(struct page) per page
  EXPECT_EQ(sp.base_pfn(), 0x40000u);
  EXPECT_EQ(sp.end_pfn(), 0x60000u);
  ASSERT_NE(sp.__nr_to_section(8), nullptr);
  EXPECT_EQ(sp.__nr_to_section(8)->section_mem_map,
            SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP | SECTION_IS_ONLINE | SECTION_IS_EARLY);
  EXPECT_TRUE(sp.valid_section(8));
  EXPECT_FALSE(sp.valid_section(9));
  EXPECT_TRUE(sp.valid_section(11));
  EXPECT_FALSE(sp.valid_section(12));
  EXPECT_EQ(sp.__nr_to_section(1u << 20), nullptr);  // root never allocated

  EXPECT_FALSE(sp.pfn_valid(0x3ffff));
  EXPECT_TRUE(sp.pfn_valid(0x40000));
  EXPECT_TRUE(sp.pfn_valid(0x47fff));
  EXPECT_FALSE(sp.pfn_valid(0x48000));  // section 9: a hole between base and end
  EXPECT_FALSE(sp.pfn_valid(0x4ffff));
  EXPECT_TRUE(sp.pfn_valid(0x50000));
  EXPECT_TRUE(sp.pfn_valid(0x5ffff));
  EXPECT_FALSE(sp.pfn_valid(0x60000));
  EXPECT_FALSE(sp.pfn_valid(NO_PAGE));
}

TEST(Sparse, PfnToPageRoundTrip) {
  const KernelProfile& p = profile_by_name("linux-6.1-arm64");
  Sparse sp;
  sp.init(p);
  sp.memory_present(3, 0x40000000, 0x50000000);
  sp.sparse_init();
  EXPECT_EQ(sp.__nr_to_section(9)->nid, 3);
  for (pfn_t pfn :
       {pfn_t{0x40000}, pfn_t{0x40001}, pfn_t{0x47fff}, pfn_t{0x48000}, pfn_t{0x4ffff}}) {
    ASSERT_TRUE(sp.pfn_valid(pfn));
    page& pg = sp.pfn_to_page(pfn);
    EXPECT_EQ(sp.page_to_pfn(pg), pfn);
    EXPECT_EQ(sp.link_to_pfn(sp.pfn_to_link(pfn)), pfn);
    EXPECT_EQ(&sp.link_to_page(sp.pfn_to_link(pfn)), &pg);
    // A fresh memmap: no flags, untyped (_mapcount -1), off every list.
    EXPECT_EQ(pg.flags, 0u);
    EXPECT_EQ(pg._mapcount, -1);
    EXPECT_EQ(pg.lru.next, LIST_NIL);
  }
  EXPECT_EQ(sp.pfn_to_link(0x40000), 0u);
  EXPECT_EQ(&sp.pfn_to_page(0x40001), &sp.pfn_to_page(0x40000) + 1);  // virtually contiguous
}

TEST(Sparse, Linux510UsesOneGiBSections) {
  Sparse sp;
  sp.init(profile_by_name("linux-5.10-arm64"));
  sp.memory_present(0, 0x40000000, 0x80000000);
  EXPECT_EQ(sp.present_sections(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(sp.sparse_init(), 262144u * 64u);
  EXPECT_TRUE(sp.pfn_valid(0x7ffff));
  EXPECT_FALSE(sp.pfn_valid(0x80000));
}

TEST(Sparse, MmPfnHelpersAgree) {
  Mm mm(MmConfig{}, BootStep::setup_arch);
  EXPECT_EQ(mm.sparse.nr_present_sections(), 8u);  // 1 GiB of 128 MiB sections
  EXPECT_EQ(mm.sparse.base_pfn(), 0x40000u);
  EXPECT_EQ(mm.sparse.end_pfn(), 0x80000u);
  EXPECT_TRUE(mm.pfn_valid(0x40000));
  EXPECT_FALSE(mm.pfn_valid(0x80000));
  EXPECT_EQ(&mm.pfn_to_page(0x41234), &mm.sparse.pfn_to_page(0x41234));
  // Linear map and vmemmap addresses.
  EXPECT_EQ(mm.memstart_addr, 0x40000000u);
  EXPECT_EQ(mm.__va(0x40000000), 0xffff000000000000ull);
  EXPECT_EQ(mm.__pa(0xffff000000001000ull), 0x40001000u);
  EXPECT_EQ(mm.page_address(0x40001), 0xffff000000001000ull);
  EXPECT_EQ(mm.virt_to_pfn(0xffff000000001fffull), 0x40001u);
  EXPECT_EQ(mm.pfn_to_vmemmap(0x40000), 0xfffffc0000000000ull);
  EXPECT_EQ(mm.pfn_to_vmemmap(0x40001), 0xfffffc0000000040ull);
  EXPECT_TRUE(mm.virt_addr_valid(mm.page_address(0x7ffff)));
  EXPECT_FALSE(mm.virt_addr_valid(mm.page_address(0x80000)));
  EXPECT_FALSE(mm.virt_addr_valid(0x40001000));  // a physical address, not a VA
  EXPECT_TRUE(mm.is_linear_map_address(0xffff000000000000ull));
  EXPECT_FALSE(mm.is_linear_map_address(0xffff800000000000ull));
}

// ---------------------------------------------------------------- PhysRam

class PhysRamTest : public ::testing::Test {
 protected:
  static constexpr phys_addr_t kBase = 0x40000000;
  static constexpr std::uint64_t kSize = 16 * SZ_1M;
  void SetUp() override { ram.init(kBase, kSize, 12); }
  PhysRam ram;
};

TEST_F(PhysRamTest, Bounds) {
  EXPECT_EQ(ram.base(), kBase);
  EXPECT_EQ(ram.end(), kBase + kSize);
  EXPECT_TRUE(ram.contains(kBase, kSize));
  EXPECT_TRUE(ram.contains(kBase + kSize - 1, 1));
  EXPECT_FALSE(ram.contains(kBase + kSize, 1));
  EXPECT_FALSE(ram.contains(kBase - 1, 1));
  EXPECT_FALSE(ram.contains(kBase, kSize + 1));
  EXPECT_FALSE(ram.contains(kBase + 1, ~std::uint64_t{0}));  // no wrap-around
  EXPECT_FALSE(ram.contains(~phys_addr_t{0}, 2));
}

TEST_F(PhysRamTest, FreshRamIsZeroAndClean) {
  EXPECT_EQ(ram.dirty_pages(), 0u);
  EXPECT_EQ(ram.byte(kBase), 0);
  EXPECT_EQ(ram.byte(kBase + kSize - 1), 0);
  EXPECT_FALSE(ram.page_dirty(kBase >> 12));
  for (auto b : ram.page_bytes((kBase >> 12) + 7)) ASSERT_EQ(b, 0);
}

TEST_F(PhysRamTest, WriteReadAndDirtyBits) {
  const std::array<std::uint8_t, 8> data = {1, 2, 3, 4, 5, 6, 7, 8};
  const phys_addr_t pa = kBase + PAGE - 4;  // straddles pages 0 and 1
  ram.write(pa, data);
  std::array<std::uint8_t, 8> back{};
  ram.read(pa, back);
  EXPECT_EQ(back, data);
  EXPECT_EQ(ram.byte(pa + 3), 4);
  EXPECT_EQ(ram.byte(pa + 4), 5);
  const pfn_t pfn0 = kBase >> 12;
  EXPECT_TRUE(ram.page_dirty(pfn0));
  EXPECT_TRUE(ram.page_dirty(pfn0 + 1));
  EXPECT_FALSE(ram.page_dirty(pfn0 + 2));
  EXPECT_EQ(ram.dirty_pages(), 2u);
  EXPECT_EQ(ram.page_bytes(pfn0 + 1)[0], 5);
  EXPECT_EQ(ram.page_bytes(pfn0)[PAGE - 1], 4);
  // Empty writes and fills touch nothing.
  ram.write(kBase + 5 * PAGE, std::span<const std::uint8_t>{});
  ram.fill(kBase + 6 * PAGE, 0, 0xff);
  EXPECT_EQ(ram.dirty_pages(), 2u);
}

TEST_F(PhysRamTest, FillAndZeroPages) {
  const pfn_t pfn0 = kBase >> 12;
  ram.fill(kBase + 3 * PAGE, PAGE, 0xcc);
  ram.fill(kBase + 5 * PAGE + 100, 10, 0xab);
  EXPECT_EQ(ram.dirty_pages(), 2u);
  for (auto b : ram.page_bytes(pfn0 + 3)) ASSERT_EQ(b, 0xcc);
  EXPECT_EQ(ram.byte(kBase + 5 * PAGE + 99), 0);
  EXPECT_EQ(ram.byte(kBase + 5 * PAGE + 100), 0xab);
  EXPECT_EQ(ram.byte(kBase + 5 * PAGE + 109), 0xab);
  EXPECT_EQ(ram.byte(kBase + 5 * PAGE + 110), 0);

  // zero_pages over a range of clean and dirty pages: all zero and clean.
  ram.zero_pages(pfn0 + 2, 4);
  EXPECT_EQ(ram.dirty_pages(), 0u);
  for (pfn_t pfn = pfn0 + 2; pfn < pfn0 + 6; ++pfn) {
    EXPECT_FALSE(ram.page_dirty(pfn));
    for (auto b : ram.page_bytes(pfn)) ASSERT_EQ(b, 0) << "pfn " << pfn;
  }
  // Only the named pages are zeroed.
  ram.fill(kBase + 7 * PAGE, 2 * PAGE, 0x5a);
  ram.zero_pages(pfn0 + 7, 1);
  EXPECT_EQ(ram.byte(kBase + 7 * PAGE), 0);
  EXPECT_EQ(ram.byte(kBase + 8 * PAGE), 0x5a);
  EXPECT_TRUE(ram.page_dirty(pfn0 + 8));
  EXPECT_EQ(ram.dirty_pages(), 1u);
}

TEST_F(PhysRamTest, ZeroCleansWholePagesAndKeepsPartialOnesDirty) {
  const pfn_t pfn0 = kBase >> 12;
  ram.fill(kBase + PAGE, 4 * PAGE, 0x77);  // pages 1..4 dirty
  // [page 1 + 100, page 4 + 50): partial 1, whole 2 and 3, partial 4; page 0 untouched.
  ram.zero(kBase + PAGE + 100, 3 * PAGE - 50);
  EXPECT_EQ(ram.byte(kBase + PAGE + 99), 0x77);
  for (phys_addr_t pa = kBase + PAGE + 100; pa < kBase + 4 * PAGE + 50; pa += 97)
    ASSERT_EQ(ram.byte(pa), 0) << std::hex << pa;
  EXPECT_EQ(ram.byte(kBase + 4 * PAGE + 49), 0);
  EXPECT_EQ(ram.byte(kBase + 4 * PAGE + 50), 0x77);
  EXPECT_TRUE(ram.page_dirty(pfn0 + 1));
  EXPECT_FALSE(ram.page_dirty(pfn0 + 2));
  EXPECT_FALSE(ram.page_dirty(pfn0 + 3));
  EXPECT_TRUE(ram.page_dirty(pfn0 + 4));
  // Zeroing clean memory marks nothing dirty; a single-page zero keeps the page dirty.
  ram.zero(kBase + 10 * PAGE, 3 * PAGE);
  ram.zero(kBase + 11 * PAGE + 8, 16);
  EXPECT_EQ(ram.dirty_pages(), 2u);
  ram.zero(kBase + 4 * PAGE + 50, 10);
  EXPECT_EQ(ram.byte(kBase + 4 * PAGE + 59), 0);
  EXPECT_EQ(ram.byte(kBase + 4 * PAGE + 60), 0x77);
  EXPECT_TRUE(ram.page_dirty(pfn0 + 4));
  ram.zero(kBase + kSize - 8, 16);  // out of range: nothing
  EXPECT_EQ(ram.dirty_pages(), 2u);
}

TEST_F(PhysRamTest, LastPageAndReinit) {
  const pfn_t last = (kBase + kSize) / PAGE - 1;
  ram.fill(kBase + kSize - PAGE, PAGE, 0x11);
  EXPECT_TRUE(ram.page_dirty(last));
  EXPECT_EQ(ram.byte(kBase + kSize - 1), 0x11);
  ram.init(0x80000000, SZ_1M, 12);  // a new range: fresh and clean
  EXPECT_EQ(ram.base(), 0x80000000u);
  EXPECT_EQ(ram.dirty_pages(), 0u);
  EXPECT_EQ(ram.byte(0x80000000), 0);
  EXPECT_FALSE(ram.contains(kBase, 1));
  ram.init(0x80000000, 0, 12);
  EXPECT_FALSE(ram.contains(0x80000000, 1));
}

// ---------------------------------------------------------------- boot steps

const zone& dma(const Mm& mm) {
  return mm.page_alloc.node_data[0].node_zones[ZONE_DMA];
}

std::uint64_t buddy_pages(const zone& z) {
  std::uint64_t n = 0;
  for (unsigned o = 0; o < 11; ++o) n += z.free_area_[o].nr_free << o;
  return n;
}

TEST(BootSteps, Names) {
  EXPECT_STREQ(boot_step_name(BootStep::none), "none");
  EXPECT_STREQ(boot_step_name(BootStep::setup_arch), "setup_arch");
  EXPECT_STREQ(boot_step_name(BootStep::setup_per_cpu_areas), "setup_per_cpu_areas");
  EXPECT_STREQ(boot_step_name(BootStep::build_all_zonelists), "build_all_zonelists");
  EXPECT_STREQ(boot_step_name(BootStep::page_alloc_init), "page_alloc_init");
  EXPECT_STREQ(boot_step_name(BootStep::mm_init), "mm_init");
  EXPECT_STREQ(boot_step_name(BootStep::setup_per_cpu_pageset), "setup_per_cpu_pageset");
  EXPECT_STREQ(boot_step_name(BootStep::initcalls), "initcalls");
  EXPECT_STREQ(boot_step_name(BootStep::free_initmem), "free_initmem");
}

TEST(BootSteps, NoneDoesNothing) {
  Mm mm(MmConfig{}, BootStep::none);
  EXPECT_EQ(mm.boot_step(), BootStep::none);
  EXPECT_FALSE(mm.booted());
  EXPECT_TRUE(mm.memblock.memory.regions.empty());
  EXPECT_TRUE(mm.memblock.reserved.regions.empty());
  EXPECT_TRUE(mm.page_alloc.node_data.empty());
  EXPECT_EQ(mm.nr_cpus(), 2u);
  EXPECT_EQ(mm.cpu(), 0);
}

TEST(BootSteps, SetupArchReservesWithMemblock) {
  Mm mm(MmConfig{}, BootStep::setup_arch);
  EXPECT_EQ(mm.boot_step(), BootStep::setup_arch);
  expect_regions(mm.memblock.memory, {{0x40000000, 0x80000000, 0}});
  const Memblock& mb = mm.memblock;
  // The kernel image: code, init, data.
  EXPECT_EQ(mm.kimage.code_start, 0x40210000u);
  EXPECT_EQ(mm.kimage.init_start, 0x41860000u);
  EXPECT_EQ(mm.kimage.data_start, 0x41eb0000u);
  EXPECT_EQ(mm.kimage.end, 0x42210000u);
  EXPECT_TRUE(mb.is_region_reserved(0x40210000, 1));
  EXPECT_TRUE(mb.is_region_reserved(0x42210000 - 1, 1));
  EXPECT_FALSE(mb.is_region_reserved(0x40000000, 0x210000));
  EXPECT_FALSE(mb.is_region_reserved(0x42210000, PAGE));
  // initrd (rounded to pages) and DTB.
  EXPECT_EQ(mm.initrd_start, 0x48000000u);
  EXPECT_EQ(mm.initrd_end, 0x480f6800u);
  EXPECT_TRUE(mb.is_region_reserved(0x480f6000, PAGE));
  EXPECT_FALSE(mb.is_region_reserved(0x480f7000, PAGE));
  EXPECT_TRUE(mb.is_region_reserved(0x48200000, SZ_1M));
  EXPECT_FALSE(mb.is_region_reserved(0x48300000, PAGE));
  // CMA at 0x7ac00000 and the 16 MiB memmap right above it, both top-down
  // below the 4 MiB of early allocations.
  EXPECT_EQ(mm.page_alloc.cma.base, 0x7ac00000u);
  EXPECT_EQ(mm.page_alloc.cma.count, 16384u);
  EXPECT_FALSE(mm.page_alloc.cma.active);
  EXPECT_EQ(mm.memmap_bytes, 16 * SZ_1M);
  EXPECT_TRUE(mb.is_region_reserved(0x7ac00000, 64 * SZ_1M));
  EXPECT_TRUE(mb.is_region_reserved(0x7ec00000, 16 * SZ_1M));
  EXPECT_FALSE(mb.is_region_reserved(0x7ab00000, SZ_1M));
  expect_regions(mb.reserved, {{0x40210000, 0x42210000, MAX_NUMNODES_NID},
                               {0x48000000, 0x480f7000, MAX_NUMNODES_NID},
                               {0x48200000, 0x48300000, MAX_NUMNODES_NID},
                               {0x7ac00000, 0x7fc00000, MAX_NUMNODES_NID},
                               {0x7fc0a000, 0x7fdc9000, MAX_NUMNODES_NID},
                               {0x7fdcb000, 0x80000000, MAX_NUMNODES_NID}});
  // The two freed early allocations are free again.
  const auto fr = mb.free_ranges();
  ASSERT_GE(fr.size(), 2u);
  EXPECT_EQ(fr[fr.size() - 2].start, 0x7fc00000u);
  EXPECT_EQ(fr[fr.size() - 2].end, 0x7fc0a000u);
  EXPECT_EQ(fr.back().start, 0x7fdc9000u);
  EXPECT_EQ(fr.back().end, 0x7fdcb000u);
  EXPECT_TRUE(has_log(mm, "cma: Reserved 64 MiB at 0x000000007ac00000"));
  EXPECT_TRUE(has_log(mm, "  DMA      [mem 0x0000000040000000-0x000000007fffffff]"));
  EXPECT_TRUE(has_log(mm, "  DMA32    empty"));
  EXPECT_TRUE(has_log(mm, "  Normal   empty"));

  // Zones exist, with their sizes, but the buddy allocator is empty.
  ASSERT_EQ(mm.page_alloc.node_data.size(), 1u);
  const zone& z = dma(mm);
  EXPECT_EQ(z.zone_start_pfn, 0x40000u);
  EXPECT_EQ(z.spanned_pages, 262144u);
  EXPECT_EQ(z.present_pages, 262144u);
  EXPECT_EQ(z.managed_pages, 262144u - 4096u);  // present minus the memmap estimate
  EXPECT_EQ(mm.page_alloc.node_data[0].node_zones[ZONE_DMA32].spanned_pages, 0u);
  EXPECT_EQ(mm.page_alloc.node_data[0].node_zones[ZONE_NORMAL].spanned_pages, 0u);
  EXPECT_EQ(z.zone_page_state(NR_FREE_PAGES), 0);
  EXPECT_EQ(buddy_pages(z), 0u);
  EXPECT_EQ(mm.page_alloc.totalram_pages, 0u);
  EXPECT_TRUE(mm.page_alloc.node_data[0].node_zonelists[ZONELIST_FALLBACK]._zonerefs.empty());
  // The memmap is initialised: zone links, refcount 1, not reserved yet.
  const page& pg = mm.pfn_to_page(0x40000);
  EXPECT_EQ(pg.zone, ZONE_DMA);
  EXPECT_EQ(pg.nid, 0);
  EXPECT_EQ(pg._refcount, 1);
  EXPECT_FALSE(PageReserved(mm.pfn_to_page(0x40210)));  // reserve_bootmem_region comes later
  // Every pageblock starts MOVABLE, including the future CMA area.
  EXPECT_EQ(mm.page_alloc.get_pageblock_migratetype(0x40000), MIGRATE_MOVABLE);
  EXPECT_EQ(mm.page_alloc.get_pageblock_migratetype(0x7ac00), MIGRATE_MOVABLE);
}

TEST(BootSteps, BuildAllZonelists) {
  Mm mm(MmConfig{}, BootStep::page_alloc_init);
  const auto& zl = mm.page_alloc.node_data[0].node_zonelists;
  ASSERT_EQ(zl[ZONELIST_FALLBACK]._zonerefs.size(), 1u);
  EXPECT_EQ(zl[ZONELIST_FALLBACK]._zonerefs[0].node, 0);
  EXPECT_EQ(zl[ZONELIST_FALLBACK]._zonerefs[0].zone_idx, ZONE_DMA);
  ASSERT_EQ(zl[ZONELIST_NOFALLBACK]._zonerefs.size(), 1u);
  EXPECT_EQ(zl[ZONELIST_NOFALLBACK]._zonerefs[0].zone_idx, ZONE_DMA);
  EXPECT_TRUE(has_log(mm, "Fallback order for Node 0: 0 "));
  // The line the real guest printed.
  EXPECT_TRUE(has_log(mm, "Built 1 zonelists, mobility grouping on.  Total pages: 258048"));
  EXPECT_EQ(buddy_pages(dma(mm)), 0u);  // still nothing free
}

// Pages kmem_cache_init() took for the boot caches (kmem_cache, kmem_cache_node).
long boot_slab_pages(const Mm& mm) {
  const auto& st = mm.page_alloc.node_data[0].vm_stat;
  return (st[NR_SLAB_RECLAIMABLE_B] + st[NR_SLAB_UNRECLAIMABLE_B]) / 4096;
}

TEST(BootSteps, MmInitFreesMemoryToTheBuddy) {
  Mm mm(MmConfig{}, BootStep::mm_init);
  const zone& z = dma(mm);
  EXPECT_EQ(z.managed_pages, 231957u);
  EXPECT_EQ(mm.page_alloc.totalram_pages, 231957u);
  // kmem_cache_init() runs at the end of mm_init and takes a few pages.
  EXPECT_GT(boot_slab_pages(mm), 0);
  EXPECT_LE(boot_slab_pages(mm), 8);
  EXPECT_EQ(z.zone_page_state(NR_FREE_PAGES) + boot_slab_pages(mm), 231957);
  EXPECT_EQ(static_cast<long>(buddy_pages(z)) + boot_slab_pages(mm), 231957);
  EXPECT_EQ(z.zone_page_state(NR_FREE_CMA_PAGES), 0);
  // Everything memblock still holds is PG_reserved: present = managed + reserved.
  EXPECT_EQ(mm.boot_reserved_pages + z.managed_pages, z.present_pages);
  for (pfn_t pfn : {pfn_t{0x40210}, pfn_t{0x41860}, pfn_t{0x4220f}, pfn_t{0x48000}, pfn_t{0x48200},
                    pfn_t{0x7ac00}, pfn_t{0x7ec00}, pfn_t{0x7ffff}}) {
    EXPECT_TRUE(PageReserved(mm.pfn_to_page(pfn))) << std::hex << pfn;
    EXPECT_FALSE(mm.page_alloc.is_free_buddy_page(pfn)) << std::hex << pfn;
  }
  for (pfn_t pfn : {pfn_t{0x40000}, pfn_t{0x4020f}, pfn_t{0x42210}, pfn_t{0x50000}, pfn_t{0x7fc00},
                    pfn_t{0x7fdc9}}) {
    EXPECT_FALSE(PageReserved(mm.pfn_to_page(pfn))) << std::hex << pfn;
    EXPECT_TRUE(mm.page_alloc.is_free_buddy_page(pfn)) << std::hex << pfn;
  }
  // Free blocks are as large as alignment allows: MAX_ORDER-1 blocks exist.
  EXPECT_GT(z.free_area_[10].nr_free, 200u);
  EXPECT_EQ(mm.pfn_to_page(0x40000)._refcount, 0);
  // The boot pageset: nothing kept per CPU yet.
  for (const auto& pcp : z.per_cpu_pageset) {
    EXPECT_EQ(pcp.count, 0);
    EXPECT_EQ(pcp.high, 0);
    EXPECT_EQ(pcp.batch, 1);
  }
  EXPECT_TRUE(has_log_prefix(mm, "Memory: 927828K/1048576K available ("));
}

TEST(BootSteps, SetupPerCpuPageset) {
  Mm mm(MmConfig{}, BootStep::setup_per_cpu_pageset);
  const zone& z = dma(mm);
  ASSERT_EQ(z.per_cpu_pageset.size(), 2u);
  for (const auto& pcp : z.per_cpu_pageset) {
    EXPECT_EQ(pcp.batch, 63);
    EXPECT_EQ(pcp.high, 252);  // batch << 2: the watermarks are still 0
    EXPECT_EQ(pcp.count, 0);
  }
  EXPECT_EQ(z.pageset_batch, 63);
  EXPECT_EQ(z._watermark[WMARK_MIN], 0u);
}

TEST(BootSteps, InitcallsActivateCmaAndSetWatermarks) {
  Mm mm(MmConfig{}, BootStep::initcalls);
  const zone& z = dma(mm);
  EXPECT_TRUE(mm.page_alloc.cma.active);
  EXPECT_EQ(z.cma_pages, 16384u);
  EXPECT_EQ(mm.page_alloc.totalcma_pages, 16384u);
  EXPECT_EQ(z.zone_page_state(NR_FREE_CMA_PAGES), 16384);
  EXPECT_EQ(z.managed_pages, 231957u + 16384u);
  EXPECT_EQ(z.zone_page_state(NR_FREE_PAGES) + boot_slab_pages(mm), 231957 + 16384);
  for (pfn_t pfn = 0x7ac00; pfn < 0x7ec00; pfn += 512) {
    ASSERT_EQ(mm.page_alloc.get_pageblock_migratetype(pfn), MIGRATE_CMA) << std::hex << pfn;
    ASSERT_FALSE(PageReserved(mm.pfn_to_page(pfn))) << std::hex << pfn;
  }
  EXPECT_EQ(mm.page_alloc.get_pageblock_migratetype(0x7aa00), MIGRATE_MOVABLE);
  EXPECT_EQ(mm.page_alloc.get_pageblock_migratetype(0x7ec00), MIGRATE_MOVABLE);
  // min_free_kbytes from the THP recommendation, and the 6.1 watermarks.
  EXPECT_EQ(mm.page_alloc.min_free_kbytes, 22528u);
  EXPECT_EQ(z._watermark[WMARK_MIN], 5632u);
  EXPECT_EQ(z._watermark[WMARK_LOW], 7040u);
  EXPECT_EQ(z._watermark[WMARK_HIGH], 8448u);
  EXPECT_EQ(z.watermark_boost, 0u);
  // pcp high follows the low watermark: 7040 / 2 local CPUs.
  for (const auto& pcp : z.per_cpu_pageset) {
    EXPECT_EQ(pcp.high, 3520);
    EXPECT_EQ(pcp.batch, 63);
  }
  // /proc/iomem was captured.
  bool ram = false, code = false, data = false;
  for (const auto& l : mm.iomem) {
    ram |= l.name == "System RAM" && l.start == 0x40000000 && l.end == 0x7fffffff;
    code |= l.name == "Kernel code" && l.start == 0x40210000 && l.end == 0x4185ffff;
    data |= l.name == "Kernel data" && l.start == 0x41eb0000 && l.end == 0x4220ffff;
  }
  EXPECT_TRUE(ram);
  EXPECT_TRUE(code);
  EXPECT_TRUE(data);
  // Init memory is still reserved.
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(mm.kimage.init_start >> 12)));
}

TEST(BootSteps, FreeInitmemPoisonsAndFreesInitMemory) {
  Mm mm(MmConfig{}, BootStep::free_initmem);
  ASSERT_TRUE(mm.booted());
  const zone& z = dma(mm);
  const std::uint64_t init_pages = (mm.kimage.data_start - mm.kimage.init_start) / PAGE;
  const std::uint64_t initrd_pages = 246;  // 0x48000000-0x480f6000 (partial last page kept)
  EXPECT_EQ(init_pages, 1616u);
  EXPECT_EQ(z.managed_pages, 250203u);
  EXPECT_EQ(mm.page_alloc.totalram_pages, 250203u);
  EXPECT_EQ(z.managed_pages, 231957u + 16384u + init_pages + initrd_pages);
  EXPECT_TRUE(has_log(mm, "Freeing initrd memory: 984K"));
  EXPECT_TRUE(has_log(mm, "Freeing unused kernel memory: 6464K"));
  // The freed pages went to CPU 0's pcp lists (free_reserved_page() -> __free_page()).
  EXPECT_EQ(z.per_cpu_pageset[0].count, static_cast<int>(init_pages + initrd_pages));
  EXPECT_EQ(z.per_cpu_pageset[1].count, 0);
  EXPECT_EQ(z.zone_page_state(NR_FREE_PAGES) + boot_slab_pages(mm), 231957 + 16384);
  // Poisoned with POISON_FREE_INITMEM, no longer reserved.
  const pfn_t init_pfn = mm.kimage.init_start >> 12;
  EXPECT_FALSE(PageReserved(mm.pfn_to_page(init_pfn)));
  EXPECT_EQ(mm.ram.byte(mm.kimage.init_start), 0xcc);
  for (auto b : mm.ram.page_bytes(init_pfn + 100)) ASSERT_EQ(b, 0xcc);
  EXPECT_EQ(mm.ram.byte(0x48000000), 0xcc);
  EXPECT_EQ(mm.ram.byte(0x480f5fff), 0xcc);
  EXPECT_EQ(mm.ram.byte(0x480f6000), 0);  // the partial last initrd page is not freed
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(0x480f6)));
  // Code and data stay reserved and untouched.
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(mm.kimage.code_start >> 12)));
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(mm.kimage.data_start >> 12)));
  EXPECT_EQ(mm.ram.byte(mm.kimage.data_start), 0);

  // The last page freed is at the head of the movable pcp list: the next
  // movable allocation on CPU 0 gets it, zeroed by init_on_alloc.
  const pfn_t last_init = (mm.kimage.data_start >> 12) - 1;
  EXPECT_EQ(mm.ram.byte(last_init << 12), 0xcc);
  const pfn_t got = mm.page_alloc.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  ASSERT_EQ(got, last_init);
  for (auto b : mm.ram.page_bytes(got)) ASSERT_EQ(b, 0);
  EXPECT_EQ(mm.ram.byte(mm.kimage.init_start), 0xcc);  // the others still read 0xcc
}

TEST(BootSteps, FreeInitmemReleasesTheInitrdFromMemblock) {
  Mm mm;
  EXPECT_FALSE(mm.memblock.is_region_reserved(0x48000000, 0xf7000));
  // __init memory is freed with free_reserved_area() only: memblock keeps it.
  EXPECT_TRUE(mm.memblock.is_region_reserved(mm.kimage.init_start, PAGE));
  EXPECT_TRUE(mm.memblock.is_region_reserved(0x48200000, PAGE));  // the DTB stays
}

TEST(BootSteps, StepwiseBootEqualsFullBoot) {
  Mm full;
  Mm step(MmConfig{}, BootStep::setup_arch);
  for (int s = static_cast<int>(BootStep::setup_per_cpu_areas);
       s <= static_cast<int>(BootStep::free_initmem); ++s) {
    step.boot_to(static_cast<BootStep>(s));
    EXPECT_EQ(step.boot_step(), static_cast<BootStep>(s));
  }
  step.boot_to(BootStep::mm_init);  // going back is a no-op
  EXPECT_TRUE(step.booted());
  EXPECT_EQ(dma(step).managed_pages, dma(full).managed_pages);
  EXPECT_EQ(dma(step).zone_page_state(NR_FREE_PAGES), dma(full).zone_page_state(NR_FREE_PAGES));
  EXPECT_EQ(dma(step)._watermark, dma(full)._watermark);
  EXPECT_EQ(step.boot_log, full.boot_log);
  for (unsigned o = 0; o < 11; ++o)
    EXPECT_EQ(dma(step).free_area_[o].nr_free, dma(full).free_area_[o].nr_free) << "order " << o;
}

TEST(BootSteps, HoleSectionIsNotValid) {
  MmConfig cfg;
  cfg.machine.holes = {{0x50000000, 0x58000000},   // a whole 128 MiB section
                       {0x60000000, 0x60100000}};  // part of one
  Mm mm(cfg);
  EXPECT_EQ(mm.sparse.nr_present_sections(), 7u);
  EXPECT_FALSE(mm.pfn_valid(0x50000));
  EXPECT_FALSE(mm.pfn_valid(0x57fff));
  EXPECT_TRUE(mm.pfn_valid(0x58000));
  // A hole inside a present section has a memmap, reserved, never free.
  ASSERT_TRUE(mm.pfn_valid(0x60000));
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(0x60000)));
  EXPECT_FALSE(mm.page_alloc.is_free_buddy_page(0x600ff));
  EXPECT_TRUE(mm.page_alloc.is_free_buddy_page(0x60100));
  const zone& z = dma(mm);
  EXPECT_EQ(z.spanned_pages, 262144u);
  EXPECT_EQ(z.present_pages, 262144u - 32768u - 256u);
  EXPECT_EQ(mm.memblock.memory.regions.size(), 3u);
}

}  // namespace
}  // namespace mmfuzz::mm
