// arm64 kernel page tables (mm/vm/pgtable): descriptor encoding, the booted
// swapper_pg_dir (linear map, kernel image, fixmap, vmemmap), the mapping
// primitives (blocks, splits, contiguous hint, table reuse and freeing),
// table-page accounting, and the per-CPU TLB model.
#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mm/mm.h"

using namespace mmfuzz::mm;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPmd = 2 * SZ_1M;

// A VA deep inside the vmalloc area (PGD index 0x140), far above anything
// vmalloc() hands out in these tests and below VMALLOC_END on both profiles.
constexpr vaddr_t kUnused = 0xffffa00000000000ull;

bool is_leaf(int level, pteval_t d) {
  if (!(d & PTE_VALID)) return false;
  if (level == PTE) return (d & PTE_TYPE_MASK) == PTE_TYPE_PAGE;
  return (level == PUD || level == PMD) && (d & PTE_TYPE_MASK) == PMD_TYPE_SECT;
}
bool is_block(const PgWalk& w) {
  return w.leaf && (w.level == PUD || w.level == PMD) && (w.desc & PTE_TYPE_MASK) == PMD_TYPE_SECT;
}
unsigned attrindx(pteval_t d) {
  return static_cast<unsigned>((d & PTE_ATTRINDX_MASK) >> 2);
}
unsigned sh(pteval_t d) {
  return static_cast<unsigned>((d >> 8) & 3);
}

long nr_pagetable(const Mm& mm) {
  long n = 0;
  for (const auto& pgdat : mm.page_alloc.node_data) n += pgdat.vm_stat[NR_PAGETABLE];
  return n;
}

// The booted default machine (1 GiB QEMU virt), shared by the read-only tests.
const Mm& booted() {
  static const std::unique_ptr<Mm> mm = std::make_unique<Mm>();
  return *mm;
}

const PageTables::KimageSegment* segment(const Mm& mm, std::string_view name) {
  for (const auto& s : mm.pgtable.kimage_segments)
    if (name == s.name) return &s;
  return nullptr;
}

MmConfig small_cfg(std::uint64_t ram = 32 * SZ_1M) {
  MmConfig cfg;
  cfg.machine = small_machine(ram);
  return cfg;
}

// ---------------------------------------------------------------- encoding

TEST(PgtableProt, PageKernelBits) {
  const Mm& mm = booted();
  const PgProts& p = mm.pgtable.prot();
  ASSERT_TRUE(mm.profile.kpti);
  EXPECT_EQ(p.kernel & PTE_TYPE_MASK, PTE_TYPE_PAGE);
  EXPECT_TRUE(p.kernel & PTE_AF);
  EXPECT_EQ(sh(p.kernel), 3u);     // inner shareable
  EXPECT_TRUE(p.kernel & PTE_NG);  // PTE_MAYBE_NG under KPTI
  EXPECT_TRUE(p.kernel & PTE_PXN);
  EXPECT_TRUE(p.kernel & PTE_UXN);
  EXPECT_TRUE(p.kernel & PTE_WRITE);
  EXPECT_TRUE(p.kernel & PTE_DIRTY);
  EXPECT_FALSE(p.kernel & PTE_RDONLY);
  EXPECT_FALSE(p.kernel & PTE_USER);
  EXPECT_FALSE(p.kernel & PTE_ADDR_MASK);
  EXPECT_EQ(attrindx(p.kernel), 0u);  // MT_NORMAL
  EXPECT_EQ(attrindx(p.kernel), mm.profile.mt_normal);
}

TEST(PgtableProt, ReadOnlyAndExecutable) {
  const PgProts& p = booted().pgtable.prot();
  // PAGE_KERNEL_RO: read-only, never executable.
  EXPECT_TRUE(p.kernel_ro & PTE_RDONLY);
  EXPECT_FALSE(p.kernel_ro & PTE_WRITE);
  EXPECT_TRUE(p.kernel_ro & PTE_PXN);
  EXPECT_TRUE(p.kernel_ro & PTE_UXN);
  // PAGE_KERNEL_ROX: read-only, executable at EL1 only.
  EXPECT_TRUE(p.kernel_rox & PTE_RDONLY);
  EXPECT_FALSE(p.kernel_rox & PTE_WRITE);
  EXPECT_FALSE(p.kernel_rox & PTE_PXN);
  EXPECT_TRUE(p.kernel_rox & PTE_UXN);
  // PAGE_KERNEL_EXEC: writable and executable.
  EXPECT_FALSE(p.kernel_exec & PTE_RDONLY);
  EXPECT_FALSE(p.kernel_exec & PTE_PXN);
  for (pteval_t v : {p.kernel_ro, p.kernel_rox, p.kernel_exec}) {
    EXPECT_TRUE(v & PTE_AF);
    EXPECT_TRUE(v & PTE_NG);
    EXPECT_EQ(sh(v), 3u);
    EXPECT_EQ(attrindx(v), 0u);
  }
}

TEST(PgtableProt, DeviceAttrIndex61) {
  const PgProts& p = booted().pgtable.prot();
  EXPECT_EQ(attrindx(p.device), 4u);         // MT_DEVICE_nGnRE
  EXPECT_EQ(attrindx(p.device_strict), 3u);  // MT_DEVICE_nGnRnE
  EXPECT_EQ(attrindx(p.normal_nc), 2u);      // MT_NORMAL_NC
  for (pteval_t v : {p.device, p.device_strict, p.normal_nc}) {
    EXPECT_TRUE(v & PTE_PXN);
    EXPECT_TRUE(v & PTE_UXN);
    EXPECT_TRUE(v & PTE_AF);
    EXPECT_FALSE(v & PTE_RDONLY);
  }
  // PROT_SECT_NORMAL (vmemmap): no nG, normal memory.
  EXPECT_FALSE(p.sect_normal & PTE_NG);
  EXPECT_EQ(attrindx(p.sect_normal), 0u);
}

TEST(PgtableProt, DeviceAttrIndex510) {
  MmConfig cfg = small_cfg(64 * SZ_1M);
  cfg.profile = "linux-5.10-arm64";
  Mm mm(cfg);
  const PgProts& p = mm.pgtable.prot();
  EXPECT_EQ(attrindx(p.device), 5u);         // 5.10's MAIR: MT_DEVICE_nGnRE is slot 5
  EXPECT_EQ(attrindx(p.device_strict), 4u);  // and nGnRnE slot 4
  EXPECT_EQ(attrindx(p.normal_nc), 2u);
  // The leaf ioremap() writes carries it too.
  const vaddr_t io = mm.vmalloc.ioremap(0x09000000, kPage);
  ASSERT_NE(io, 0u);
  const PgWalk w = mm.pgtable.walk(io);
  ASSERT_TRUE(w.leaf);
  EXPECT_EQ(w.level, PTE);
  EXPECT_EQ(attrindx(w.desc), 5u);
  EXPECT_EQ(w.pa, 0x09000000u);
}

// ---------------------------------------------------------------- linear map

TEST(PgtableLinearMap, VaTranslatesToPa) {
  const Mm& mm = booted();
  const phys_addr_t base = mm.machine.ram_base;
  for (phys_addr_t pa :
       {base, base + 0x1234, base + 0x210000, base + 0x5432100, base + 0x10000000 + 0x777,
        mm.machine.ram_end() - kPage, mm.machine.ram_end() - 1}) {
    const auto t = mm.pgtable.translate(mm.__va(pa));
    ASSERT_TRUE(t.has_value()) << std::hex << pa;
    EXPECT_EQ(*t, pa) << std::hex << pa;
  }
  // Nothing past the end of RAM.
  EXPECT_FALSE(mm.pgtable.translate(mm.__va(mm.machine.ram_end())).has_value());
}

TEST(PgtableLinearMap, BlocksWhereAlignedPtesAroundTextAlias) {
  const Mm& mm = booted();
  const phys_addr_t kstart = mm.kimage.code_start, kend = mm.kimage.init_start;
  ASSERT_EQ(kstart, 0x40210000u);  // the default machine: neither end 2 MiB aligned
  ASSERT_EQ(kend, 0x41860000u);
  // Far from the image: PMD blocks of the linear map, with the contiguous hint.
  for (phys_addr_t pa : std::initializer_list<phys_addr_t>{0x40000000ull, 0x50000000ull,
                                                           0x60200000ull, 0x7fe00000ull}) {
    const PgWalk w = mm.pgtable.walk(mm.__va(pa));
    ASSERT_TRUE(w.leaf) << std::hex << pa;
    EXPECT_TRUE(is_block(w)) << std::hex << pa;
    EXPECT_EQ(w.level, PMD) << std::hex << pa;
    EXPECT_EQ(w.pa, pa);
    EXPECT_FALSE(w.desc & PTE_RDONLY);
    EXPECT_TRUE(w.desc & PTE_PXN);
  }
  EXPECT_TRUE(mm.pgtable.walk(mm.__va(0x50000000)).desc & PTE_CONT);
  // The edges of the text alias fall inside 2 MiB blocks: pages there.
  for (phys_addr_t pa :
       std::initializer_list<phys_addr_t>{0x40200000ull, kstart, kstart + kPage, kend - kPage, kend,
                                          0x41800000ull, 0x419ff000ull}) {
    const PgWalk w = mm.pgtable.walk(mm.__va(pa));
    ASSERT_TRUE(w.leaf) << std::hex << pa;
    EXPECT_EQ(w.level, PTE) << std::hex << pa;
    EXPECT_EQ(w.pa, pa);
  }
  // 2 MiB aligned inside the alias: still a block (NO_CONT_MAPPINGS only).
  EXPECT_TRUE(is_block(mm.pgtable.walk(mm.__va(0x40400000))));
  // No contiguous hint on the alias; the 16 pages before it have one.
  EXPECT_FALSE(mm.pgtable.walk(mm.__va(kstart)).desc & PTE_CONT);
  EXPECT_FALSE(mm.pgtable.walk(mm.__va(0x40400000)).desc & PTE_CONT);
  EXPECT_TRUE(mm.pgtable.walk(mm.__va(0x40200000)).desc & PTE_CONT);
  EXPECT_TRUE(is_block(mm.pgtable.walk(mm.__va(0x41a00000))));
}

TEST(PgtableLinearMap, LeavesCoverRamExactly) {
  const Mm& mm = booted();
  std::uint64_t covered = 0;
  std::map<int, std::uint64_t> leaves;
  mm.pgtable.for_each_desc([&](int level, vaddr_t va, phys_addr_t, pteval_t d) {
    if (!is_leaf(level, d) || !mm.is_linear_map_address(va)) return;
    covered += level_size(level);
    ++leaves[level];
    // Each leaf maps the physical address __pa says.
    EXPECT_EQ(d & PTE_ADDR_MASK & ~(level_size(level) - 1), mm.__pa(va));
    // pgprot_tagged(PAGE_KERNEL) for memory; plain PAGE_KERNEL for the text alias.
    const bool alias = mm.__pa(va) >= mm.kimage.code_start && mm.__pa(va) < mm.kimage.init_start;
    EXPECT_EQ(attrindx(d), alias ? mm.profile.mt_normal : mm.profile.mt_normal_tagged);
  });
  EXPECT_EQ(covered, mm.machine.ram_size);
  EXPECT_GT(leaves[PMD], 400u);  // ~510 blocks
  EXPECT_GT(leaves[PTE], 0u);
  EXPECT_LT(leaves[PTE], 2048u);  // only around the image
}

TEST(PgtableLinearMap, TextAliasReadOnlyAfterBoot) {
  const Mm& mm = booted();
  const phys_addr_t kstart = mm.kimage.code_start, kend = mm.kimage.init_start;
  for (phys_addr_t pa :
       std::initializer_list<phys_addr_t>{kstart, kstart + 0x300000, 0x40400000ull, kend - kPage}) {
    const PgWalk w = mm.pgtable.walk(mm.__va(pa));
    ASSERT_TRUE(w.leaf);
    EXPECT_TRUE(w.desc & PTE_RDONLY) << std::hex << pa;
    EXPECT_FALSE(w.desc & PTE_WRITE) << std::hex << pa;
    EXPECT_TRUE(w.desc & PTE_PXN) << std::hex << pa;  // never executable
  }
  // Just outside it the linear map stays writable.
  for (phys_addr_t pa : std::initializer_list<phys_addr_t>{kstart - kPage, kend, kend + 0x800000}) {
    const PgWalk w = mm.pgtable.walk(mm.__va(pa));
    ASSERT_TRUE(w.leaf);
    EXPECT_FALSE(w.desc & PTE_RDONLY) << std::hex << pa;
    EXPECT_TRUE(w.desc & PTE_WRITE) << std::hex << pa;
  }
}

TEST(PgtableLinearMap, TextAliasWritableBeforeFreeInitmem) {
  Mm mm(MmConfig{}, BootStep::initcalls);
  const PgWalk w = mm.pgtable.walk(mm.__va(mm.kimage.code_start));
  ASSERT_TRUE(w.leaf);
  EXPECT_FALSE(w.desc & PTE_RDONLY);
  const auto* init = segment(mm, "vmlinux_inittext");
  ASSERT_NE(init, nullptr);
  EXPECT_EQ(mm.pgtable.translate(init->va), init->pa);
  mm.boot_to(BootStep::free_initmem);
  EXPECT_TRUE(mm.pgtable.walk(mm.__va(mm.kimage.code_start)).desc & PTE_RDONLY);
  EXPECT_FALSE(mm.pgtable.translate(init->va).has_value());
}

TEST(PgtableLinearMap, RodataFullMapsByPages) {
  MmConfig cfg;
  cfg.rodata_full = true;
  Mm mm(cfg);
  EXPECT_TRUE(mm.pgtable.rodata_full);
  const vaddr_t alias_lo = mm.__va(mm.kimage.code_start), alias_hi = mm.__va(mm.kimage.init_start);
  std::uint64_t covered = 0, ptes = 0, blocks_outside = 0, cont_outside = 0;
  mm.pgtable.for_each_desc([&](int level, vaddr_t va, phys_addr_t, pteval_t d) {
    if (!is_leaf(level, d) || !mm.is_linear_map_address(va)) return;
    covered += level_size(level);
    const bool in_alias = va >= alias_lo && va < alias_hi;
    if (in_alias) return;  // mmu.c maps the text alias with NO_CONT_MAPPINGS only
    if (level == PTE)
      ++ptes;
    else
      ++blocks_outside;
    if (d & PTE_CONT) ++cont_outside;
  });
  EXPECT_EQ(covered, mm.machine.ram_size);
  EXPECT_EQ(blocks_outside, 0u);
  EXPECT_EQ(cont_outside, 0u);
  EXPECT_EQ(ptes, (mm.machine.ram_size - (mm.kimage.init_start - mm.kimage.code_start)) / kPage);
  const PgWalk w = mm.pgtable.walk(mm.__va(0x50000000));
  EXPECT_EQ(w.level, PTE);
  EXPECT_EQ(w.pa, 0x50000000u);
}

// ---------------------------------------------------------------- kernel image

TEST(PgtableKernelImage, Segments) {
  const Mm& mm = booted();
  const auto* text = segment(mm, "vmlinux_text");
  const auto* rodata = segment(mm, "vmlinux_rodata");
  const auto* data = segment(mm, "vmlinux_data");
  ASSERT_TRUE(text && rodata && data);
  // KIMAGE_VADDR = MODULES_END; _text is _stext rounded down to 2 MiB.
  EXPECT_EQ(text->va, mm.profile.modules_end + (mm.kimage.code_start & (kPmd - 1)));
  EXPECT_EQ(text->pa, mm.kimage.code_start);
  EXPECT_EQ(text->size, mm.machine.kernel_text_size);
  EXPECT_EQ(data->pa, mm.kimage.data_start);

  // Each segment at a few offsets: translation, RDONLY/WRITE, PXN, and UXN always.
  auto check = [&](const auto& seg, std::initializer_list<std::uint64_t> offs, bool ro, bool x) {
    for (std::uint64_t off : offs) {
      const PgWalk w = mm.pgtable.walk(seg.va + off);
      ASSERT_TRUE(w.leaf) << seg.name;
      EXPECT_EQ(w.pa, seg.pa + off) << seg.name;
      EXPECT_EQ(static_cast<bool>(w.desc & PTE_RDONLY), ro) << seg.name;
      EXPECT_EQ(static_cast<bool>(w.desc & PTE_WRITE), !ro) << seg.name;
      EXPECT_EQ(static_cast<bool>(w.desc & PTE_PXN), !x) << seg.name;
      EXPECT_TRUE(w.desc & PTE_UXN) << seg.name;
    }
  };
  check(*text, {0ull, 0x1234ull, text->size - 1}, true, true);              // ROX
  check(*rodata, {0ull, rodata->size / 2, rodata->size - 1}, true, false);  // RO NX
  check(*data, {0ull, data->size / 2, data->size - 1}, false, false);       // RW NX
  // The __init part is gone after boot.
  for (const char* n : {"vmlinux_inittext", "vmlinux_initdata"}) {
    const auto* s = segment(mm, n);
    ASSERT_NE(s, nullptr) << n;
    ASSERT_GT(s->size, 0u);
    for (std::uint64_t off : std::initializer_list<std::uint64_t>{0ull, s->size / 2, s->size - 1})
      EXPECT_FALSE(mm.pgtable.translate(s->va + off).has_value()) << n << "+" << off;
  }
}

TEST(PgtableKernelImage, WriteToTextFaults) {
  Mm mm(small_cfg());
  const auto* text = segment(mm, "vmlinux_text");
  const auto* data = segment(mm, "vmlinux_data");
  ASSERT_TRUE(text && data);
  const std::uint8_t b[4] = {1, 2, 3, 4};
  const std::uint8_t before = mm.ram.byte(text->pa);
  EXPECT_FALSE(mm.vmalloc.write(text->va, b));
  EXPECT_EQ(mm.ram.byte(text->pa), before);
  EXPECT_TRUE(mm.vmalloc.write(data->va + 8, b));
  EXPECT_EQ(mm.ram.byte(data->pa + 8), 1);
  EXPECT_EQ(mm.ram.byte(data->pa + 11), 4);
}

TEST(PgtableKernelImage, FixmapDtbReadOnly) {
  const Mm& mm = booted();
  ASSERT_NE(mm.pgtable.fdt_va, 0u);
  EXPECT_EQ(mm.pgtable.fdt_va, mm.profile.fixaddr_top - (vaddr_t{mm.profile.fix_fdt} << 12));
  const phys_addr_t dtb = mm.machine.dtb_start();
  for (std::uint64_t off :
       std::initializer_list<std::uint64_t>{0ull, 0x10ull, mm.machine.dtb_size - 1}) {
    const PgWalk w = mm.pgtable.walk(mm.pgtable.fdt_va + off);
    ASSERT_TRUE(w.leaf);
    EXPECT_EQ(w.level, PTE);  // NO_BLOCK_MAPPINGS
    EXPECT_FALSE(w.desc & PTE_CONT);
    EXPECT_EQ(w.pa, dtb + off);
    EXPECT_TRUE(w.desc & PTE_RDONLY);
    EXPECT_TRUE(w.desc & PTE_PXN);
  }
  EXPECT_FALSE(mm.pgtable.translate(mm.pgtable.fdt_va + mm.machine.dtb_size).has_value());
}

TEST(PgtableKernelImage, PciIoWindowIsDevice) {
  const Mm& mm = booted();
  const PgWalk w = mm.pgtable.walk(mm.profile.pci_io_start + 0x20);
  ASSERT_TRUE(w.leaf);
  EXPECT_EQ(w.pa, mm.machine.pci_io.start + 0x20);
  EXPECT_EQ(attrindx(w.desc), mm.profile.mt_device_ngnre);
  EXPECT_EQ(w.level, PTE);
  EXPECT_FALSE(w.desc & PTE_CONT);  // vmap_range never sets the hint in 6.1
}

// ---------------------------------------------------------------- vmemmap

TEST(PgtableVmemmap, TranslatesIntoMemmap) {
  const Mm& mm = booted();
  ASSERT_EQ(mm.memmap_phys.size(), 1u);
  const phys_addr_t memmap = mm.memmap_phys[0].first;
  const pfn_t first = mm.machine.ram_base >> 12;
  const pfn_t last = (mm.machine.ram_end() >> 12) - 1;
  for (pfn_t pfn :
       std::initializer_list<pfn_t>{first, first + 1, first + 12345, first + 40000, last}) {
    const vaddr_t va = mm.pfn_to_vmemmap(pfn);
    const PgWalk w = mm.pgtable.walk(va);
    ASSERT_TRUE(w.leaf) << pfn;
    EXPECT_EQ(w.pa, memmap + (pfn - first) * mm.profile.struct_page_size) << pfn;
    EXPECT_EQ(w.level, PMD);  // vmemmap_populate's PMD blocks
    EXPECT_FALSE(w.desc & PTE_NG);
    EXPECT_TRUE(w.desc & PTE_PXN);
  }
  EXPECT_FALSE(mm.pgtable.translate(mm.pfn_to_vmemmap(last + 1) + 2 * kPmd).has_value());
}

// ---------------------------------------------------------------- primitives

struct PgtablePrimitives : ::testing::Test {
  Mm mm{small_cfg()};
  PageTables& pt = mm.pgtable;
  const PgProts& prot = mm.pgtable.prot();
  // A 2 MiB aligned physical address of RAM (only translated, never written).
  const phys_addr_t pa = mm.machine.ram_base + 8 * SZ_1M;
};

TEST_F(PgtablePrimitives, BlockMappingWhenAligned) {
  ASSERT_TRUE(pt.map_range(kUnused, pa, 2 * kPmd, prot.kernel));
  for (std::uint64_t off :
       std::initializer_list<std::uint64_t>{0ull, 0x1234ull, kPmd + 5, 2 * kPmd - 1}) {
    const PgWalk w = pt.walk(kUnused + off);
    ASSERT_TRUE(w.leaf);
    EXPECT_TRUE(is_block(w));
    EXPECT_EQ(w.level, PMD);
    EXPECT_EQ(w.pa, pa + off);
    EXPECT_EQ(w.desc & ~PTE_ADDR_MASK & ~PTE_TYPE_MASK,
              prot.kernel & ~PTE_ADDR_MASK & ~PTE_TYPE_MASK);
  }
  EXPECT_FALSE(pt.translate(kUnused + 2 * kPmd).has_value());
  EXPECT_FALSE(pt.translate(kUnused - 1).has_value());
  // Misaligned physical address: pages, no block.
  ASSERT_TRUE(pt.map_range(kUnused + 4 * kPmd, pa + kPage, kPmd, prot.kernel));
  const PgWalk w = pt.walk(kUnused + 4 * kPmd);
  EXPECT_EQ(w.level, PTE);
  EXPECT_EQ(w.pa, pa + kPage);
  // NO_BLOCK_MAPPINGS: pages even when aligned.
  ASSERT_TRUE(pt.map_range(kUnused + 6 * kPmd, pa, kPmd, prot.kernel, NO_BLOCK_MAPPINGS));
  EXPECT_EQ(pt.walk(kUnused + 6 * kPmd).level, PTE);
  // Unaligned requests are refused.
  EXPECT_FALSE(pt.map_range(kUnused + 8 * kPmd + 1, pa, kPage, prot.kernel));
  EXPECT_FALSE(pt.map_range(kUnused + 8 * kPmd, pa, 0, prot.kernel));
}

TEST_F(PgtablePrimitives, UnmapSplitsBlock) {
  ASSERT_TRUE(pt.map_range(kUnused, pa, kPmd, prot.kernel));
  ASSERT_TRUE(is_block(pt.walk(kUnused)));
  const std::uint64_t tables = pt.nr_tables;
  pt.unmap_range(kUnused + 3 * kPage, 2 * kPage);
  EXPECT_EQ(pt.nr_tables, tables + 1);  // the PTE table the block became
  for (std::uint64_t i = 0; i < 512; ++i) {
    const auto t = pt.translate(kUnused + i * kPage);
    if (i == 3 || i == 4) {
      EXPECT_FALSE(t.has_value()) << i;
    } else {
      ASSERT_TRUE(t.has_value()) << i;
      EXPECT_EQ(*t, pa + i * kPage) << i;
    }
  }
  const PgWalk w = pt.walk(kUnused + kPmd - kPage);
  EXPECT_EQ(w.level, PTE);
  EXPECT_TRUE(w.desc & PTE_PXN);  // the split pages keep the block's attributes
  EXPECT_FALSE(w.desc & PTE_RDONLY);
  // change_prot on part of a block splits it the same way.
  ASSERT_TRUE(pt.map_range(kUnused + 2 * kPmd, pa, kPmd, prot.kernel));
  ASSERT_TRUE(pt.change_prot(kUnused + 2 * kPmd, kPage, PTE_RDONLY, PTE_WRITE));
  EXPECT_TRUE(pt.walk(kUnused + 2 * kPmd).desc & PTE_RDONLY);
  EXPECT_FALSE(pt.walk(kUnused + 2 * kPmd + kPage).desc & PTE_RDONLY);
  EXPECT_EQ(pt.walk(kUnused + 2 * kPmd + kPage).level, PTE);
  // A whole block changes in place.
  ASSERT_TRUE(pt.map_range(kUnused + 4 * kPmd, pa, kPmd, prot.kernel));
  ASSERT_TRUE(pt.change_prot(kUnused + 4 * kPmd, kPmd, PTE_RDONLY, PTE_WRITE));
  EXPECT_TRUE(is_block(pt.walk(kUnused + 4 * kPmd)));
  EXPECT_TRUE(pt.walk(kUnused + 4 * kPmd).desc & PTE_RDONLY);
}

TEST_F(PgtablePrimitives, ContiguousHint) {
  // 17 pages, VA and PA 64 KiB aligned: the first 16 form a group.
  ASSERT_TRUE(pt.map_range(kUnused, pa, 17 * kPage, prot.kernel));
  for (unsigned i = 0; i < 16; ++i) EXPECT_TRUE(pt.walk(kUnused + i * kPage).desc & PTE_CONT) << i;
  EXPECT_FALSE(pt.walk(kUnused + 16 * kPage).desc & PTE_CONT);
  // Changing one page of the group clears the hint on all 16.
  ASSERT_TRUE(pt.change_prot(kUnused + 5 * kPage, kPage, PTE_RDONLY, PTE_WRITE));
  for (unsigned i = 0; i < 16; ++i) EXPECT_FALSE(pt.walk(kUnused + i * kPage).desc & PTE_CONT) << i;
  EXPECT_TRUE(pt.walk(kUnused + 5 * kPage).desc & PTE_RDONLY);
  EXPECT_FALSE(pt.walk(kUnused + 4 * kPage).desc & PTE_RDONLY);

  // Remapping one page of a group clears it too.
  const vaddr_t g = kUnused + kPmd;
  ASSERT_TRUE(pt.map_range(g, pa, 16 * kPage, prot.kernel));
  for (unsigned i = 0; i < 16; ++i) ASSERT_TRUE(pt.walk(g + i * kPage).desc & PTE_CONT) << i;
  ASSERT_TRUE(pt.map_range(g + 15 * kPage, pa + 0x100000, kPage, prot.kernel));
  for (unsigned i = 0; i < 16; ++i) EXPECT_FALSE(pt.walk(g + i * kPage).desc & PTE_CONT) << i;
  EXPECT_EQ(pt.translate(g + 15 * kPage), pa + 0x100000);
  EXPECT_EQ(pt.translate(g + 14 * kPage), pa + 14 * kPage);

  // Unmapping one page of a group leaves the other 15 without the hint.
  const vaddr_t h = kUnused + 2 * kPmd;
  ASSERT_TRUE(pt.map_range(h, pa, 16 * kPage, prot.kernel));
  pt.unmap_range(h + 7 * kPage, kPage);
  for (unsigned i = 0; i < 16; ++i) {
    if (i == 7) continue;
    EXPECT_FALSE(pt.walk(h + i * kPage).desc & PTE_CONT) << i;
    EXPECT_EQ(pt.translate(h + i * kPage), pa + i * kPage);
  }

  // Misaligned PA, or NO_CONT_MAPPINGS: no hint.
  const vaddr_t m = kUnused + 3 * kPmd;
  ASSERT_TRUE(pt.map_range(m, pa + kPage, 16 * kPage, prot.kernel));
  EXPECT_FALSE(pt.walk(m).desc & PTE_CONT);
  ASSERT_TRUE(pt.map_range(m + 64 * kPage, pa, 16 * kPage, prot.kernel, NO_CONT_MAPPINGS));
  EXPECT_FALSE(pt.walk(m + 64 * kPage).desc & PTE_CONT);
  // map_pages never sets it.
  const std::vector<pfn_t> pfns = [&] {
    std::vector<pfn_t> v;
    for (pfn_t i = 0; i < 16; ++i) v.push_back((pa >> 12) + i);
    return v;
  }();
  ASSERT_TRUE(pt.map_pages(m + 128 * kPage, pfns, prot.kernel));
  EXPECT_FALSE(pt.walk(m + 128 * kPage).desc & PTE_CONT);
  EXPECT_EQ(pt.translate(m + 140 * kPage), pa + 12 * kPage);
}

TEST_F(PgtablePrimitives, EmptyPteTableGivesWayToBlock) {
  const vaddr_t va = kUnused + 10 * kPmd;
  ASSERT_TRUE(pt.map_range(va + 3 * kPage, pa, kPage, prot.kernel));
  const PgWalk before = pt.walk(va + 3 * kPage);
  ASSERT_EQ(before.level, PTE);
  const pfn_t table_pfn = before.table[PTE] >> 12;
  EXPECT_TRUE(PageTable(mm.pfn_to_page(table_pfn)));
  pt.unmap_range(va + 3 * kPage, kPage);
  // The table stays (vunmap does not free kernel tables).
  const PgWalk empty = pt.walk(va + 3 * kPage);
  EXPECT_FALSE(empty.leaf);
  EXPECT_EQ(empty.level, PTE);
  EXPECT_EQ(empty.table[PTE] >> 12, table_pfn);

  const std::uint64_t tables = pt.nr_tables, freed = pt.nr_tables_freed;
  const long stat = nr_pagetable(mm);
  ASSERT_TRUE(pt.map_range(va, pa, kPmd, prot.kernel));
  const PgWalk w = pt.walk(va + 3 * kPage);
  EXPECT_TRUE(is_block(w));
  EXPECT_EQ(w.pa, pa + 3 * kPage);
  EXPECT_EQ(pt.nr_tables, tables - 1);
  EXPECT_EQ(pt.nr_tables_freed, freed + 1);
  EXPECT_EQ(nr_pagetable(mm), stat - 1);
  EXPECT_FALSE(PageTable(mm.pfn_to_page(table_pfn)));
  EXPECT_TRUE(mm.page_alloc.is_free_buddy_page(table_pfn) ||
              mm.pfn_to_page(table_pfn)._refcount == 0);

  // A table with a live entry is kept: the range is mapped by pages.
  const vaddr_t v2 = kUnused + 12 * kPmd;
  ASSERT_TRUE(pt.map_range(v2, pa + 0x100000, kPage, prot.kernel));
  const std::uint64_t t2 = pt.nr_tables;
  ASSERT_TRUE(pt.map_range(v2, pa, kPmd, prot.kernel));
  EXPECT_EQ(pt.nr_tables, t2);
  EXPECT_EQ(pt.walk(v2).level, PTE);
  EXPECT_EQ(pt.translate(v2), pa);
  EXPECT_EQ(pt.translate(v2 + kPmd - kPage), pa + kPmd - kPage);
}

TEST_F(PgtablePrimitives, TablePagesAreMarkedAndAccounted) {
  // Boot tables: PG_table, not in NR_PAGETABLE.
  ASSERT_GT(pt.nr_boot_tables(), 3u);
  for (pfn_t pfn : pt.boot_tables()) EXPECT_TRUE(PageTable(mm.pfn_to_page(pfn))) << pfn;
  EXPECT_TRUE(pt.is_boot_table(pt.pgd_phys() >> 12));
  EXPECT_EQ(nr_pagetable(mm), static_cast<long>(pt.nr_tables));

  const std::uint64_t tables = pt.nr_tables;
  const long stat = nr_pagetable(mm);
  // A fresh PGD slot: PUD, PMD and PTE tables come from the page allocator.
  ASSERT_TRUE(pt.map_range(kUnused, pa, kPage, prot.kernel));
  EXPECT_EQ(pt.nr_tables, tables + 3);
  EXPECT_EQ(nr_pagetable(mm), stat + 3);
  const PgWalk w = pt.walk(kUnused);
  ASSERT_TRUE(w.leaf);
  for (int level = PUD; level <= PTE; ++level) {
    const pfn_t t = w.table[static_cast<std::size_t>(level)] >> 12;
    const page& pg = mm.pfn_to_page(t);
    EXPECT_TRUE(PageTable(pg)) << level;
    EXPECT_FALSE(PageBuddy(pg)) << level;
    EXPECT_EQ(pg._refcount, 1) << level;
    EXPECT_FALSE(pt.is_boot_table(t)) << level;
  }
  // The next page reuses the same tables.
  ASSERT_TRUE(pt.map_range(kUnused + kPage, pa, kPage, prot.kernel));
  EXPECT_EQ(pt.nr_tables, tables + 3);
  // The table entries point at the next level and carry UXNTable.
  EXPECT_EQ(pt.read_desc(w.table[PGD] + level_index(kUnused, PGD) * 8) & PTE_ADDR_MASK,
            w.table[PUD]);
}

// ---------------------------------------------------------------- TLB

TEST_F(PgtablePrimitives, TlbCachesAndGoesStaleUntilFlushed) {
  ASSERT_TRUE(pt.map_range(kUnused, pa, 2 * kPage, prot.kernel));
  EXPECT_EQ(pt.tlb(0).count(kUnused), 0u);
  pteval_t attrs = 0;
  EXPECT_EQ(pt.translate_cpu(0, kUnused + 0x123, &attrs), pa + 0x123);
  EXPECT_EQ(attrs & PTE_ATTRINDX_MASK, prot.kernel & PTE_ATTRINDX_MASK);
  ASSERT_EQ(pt.tlb(0).count(kUnused), 1u);
  EXPECT_EQ(pt.tlb(0).at(kUnused).pa, pa);
  EXPECT_EQ(pt.translate_cpu(0, kUnused + kPage), pa + kPage);
  EXPECT_EQ(pt.tlb(1).count(kUnused), 0u);

  pt.unmap_range(kUnused, 2 * kPage);
  EXPECT_FALSE(pt.translate(kUnused).has_value());
  // CPU 0 still uses its stale entries; CPU 1 never cached them.
  EXPECT_EQ(pt.translate_cpu(0, kUnused + 8), pa + 8);
  EXPECT_EQ(pt.translate_cpu(0, kUnused + kPage), pa + kPage);
  EXPECT_FALSE(pt.translate_cpu(1, kUnused + 8).has_value());
  EXPECT_EQ(pt.tlb(1).count(kUnused), 0u);  // faults are not cached

  const std::uint64_t flushes = pt.nr_tlb_flushes;
  pt.flush_tlb_kernel_range(kUnused, kUnused + kPage);
  EXPECT_EQ(pt.nr_tlb_flushes, flushes + 1);
  EXPECT_FALSE(pt.translate_cpu(0, kUnused).has_value());
  EXPECT_EQ(pt.tlb(0).count(kUnused), 0u);
  // The second page was outside the flushed range.
  EXPECT_EQ(pt.translate_cpu(0, kUnused + kPage), pa + kPage);
  pt.flush_tlb_all();
  EXPECT_FALSE(pt.translate_cpu(0, kUnused + kPage).has_value());
  EXPECT_TRUE(pt.tlb(0).empty());

  // A flush of several pages drops every one of them, on every CPU, and
  // nothing outside the range.
  ASSERT_TRUE(pt.map_range(kUnused, pa, 8 * kPage, prot.kernel));
  for (int cpu = 0; cpu < 2; ++cpu)
    for (unsigned i = 0; i < 8; ++i) ASSERT_TRUE(pt.translate_cpu(cpu, kUnused + i * kPage));
  pt.unmap_range(kUnused, 8 * kPage);
  pt.flush_tlb_kernel_range(kUnused + kPage, kUnused + 6 * kPage);
  for (int cpu = 0; cpu < 2; ++cpu) {
    EXPECT_EQ(pt.tlb(cpu).size(), 3u) << cpu;
    for (unsigned i = 0; i < 8; ++i)
      EXPECT_EQ(pt.translate_cpu(cpu, kUnused + i * kPage).has_value(), i == 0 || i >= 6)
          << cpu << " " << i;
  }
  // A range larger than the TLB is flushed by scanning the entries.
  pt.flush_tlb_kernel_range(kUnused - SZ_1G, kUnused + SZ_1G);
  EXPECT_TRUE(pt.tlb(0).empty());
  EXPECT_TRUE(pt.tlb(1).empty());
}

TEST_F(PgtablePrimitives, TlbSeesOldAttributesUntilFlushed) {
  ASSERT_TRUE(pt.map_range(kUnused, pa, kPage, prot.kernel));
  pteval_t attrs = 0;
  ASSERT_TRUE(pt.translate_cpu(0, kUnused, &attrs).has_value());
  EXPECT_FALSE(attrs & PTE_RDONLY);
  ASSERT_TRUE(pt.change_prot(kUnused, kPage, PTE_RDONLY, PTE_WRITE));
  ASSERT_TRUE(pt.translate_cpu(0, kUnused, &attrs).has_value());
  EXPECT_FALSE(attrs & PTE_RDONLY);  // stale
  ASSERT_TRUE(pt.translate_cpu(1, kUnused, &attrs).has_value());
  EXPECT_TRUE(attrs & PTE_RDONLY);
  pt.flush_tlb_kernel_range(kUnused, kUnused + kPage);
  ASSERT_TRUE(pt.translate_cpu(0, kUnused, &attrs).has_value());
  EXPECT_TRUE(attrs & PTE_RDONLY);
}

// ---------------------------------------------------------------- address helpers

TEST(PgtableAddress, RoundTrips) {
  Mm mm(small_cfg());
  const pfn_t pfn = mm.page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(pfn, NO_PAGE);
  const vaddr_t va = mm.page_address(pfn);
  EXPECT_EQ(va, mm.profile.page_offset + ((pfn << 12) - mm.memstart_addr));
  EXPECT_TRUE(mm.virt_addr_valid(va));
  EXPECT_TRUE(mm.virt_addr_valid(va + 0xfff));
  EXPECT_EQ(mm.virt_to_pfn(va + 0x800), pfn);
  EXPECT_EQ(mm.__pa(va + 0x10), (pfn << 12) + 0x10);
  EXPECT_EQ(mm.__va(mm.__pa(va)), va);
  EXPECT_EQ(mm.sparse.page_to_pfn(mm.pfn_to_page(pfn)), pfn);
  EXPECT_EQ(mm.pgtable.translate(va), pfn << 12);
  // struct page addresses are 64 bytes apart in the vmemmap.
  EXPECT_EQ(mm.pfn_to_vmemmap(pfn + 1) - mm.pfn_to_vmemmap(pfn), mm.profile.struct_page_size);
  // Not linear-map RAM: past the end, the vmalloc area, the kernel image, vmemmap.
  EXPECT_FALSE(mm.virt_addr_valid(mm.__va(mm.machine.ram_end())));
  EXPECT_FALSE(mm.virt_addr_valid(mm.__va(mm.machine.ram_base) - kPage));
  EXPECT_FALSE(mm.virt_addr_valid(mm.profile.vmalloc_start + kPage));
  EXPECT_FALSE(mm.virt_addr_valid(mm.kimage.code_start + mm.profile.modules_end));
  EXPECT_FALSE(mm.virt_addr_valid(mm.pfn_to_vmemmap(pfn)));
  const vaddr_t v = mm.vmalloc.vmalloc(kPage);
  ASSERT_NE(v, 0u);
  EXPECT_FALSE(mm.virt_addr_valid(v));
  mm.vmalloc.vfree(v);
  mm.page_alloc.__free_pages(pfn, 0);
}

}  // namespace
