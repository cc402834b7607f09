// arm64 kernel page tables (arch/arm64/mm/mmu.c): 4 KiB granule, four
// levels, real 64-bit descriptors stored in simulated RAM inside table pages,
// plus a per-CPU TLB model. init_mm's swapper_pg_dir is built at paging_init.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::mm {

class Mm;
struct KernelProfile;

using pteval_t = std::uint64_t;

// Descriptor bits (asm/pgtable-hwdef.h, asm/pgtable-prot.h).
inline constexpr pteval_t PTE_VALID = 1ull << 0;
inline constexpr pteval_t PTE_TABLE_BIT = 1ull << 1;  // table at levels 0-2, page at level 3
inline constexpr pteval_t PTE_TYPE_MASK = 3ull;
inline constexpr pteval_t PTE_TYPE_PAGE = 3ull;
inline constexpr pteval_t PMD_TYPE_TABLE = 3ull;
inline constexpr pteval_t PMD_TYPE_SECT = 1ull;  // a block
inline constexpr pteval_t PTE_ATTRINDX_MASK = 7ull << 2;
constexpr pteval_t PTE_ATTRINDX(unsigned mt) {
  return pteval_t{mt} << 2;
}
inline constexpr pteval_t PTE_USER = 1ull << 6;    // AP[1]
inline constexpr pteval_t PTE_RDONLY = 1ull << 7;  // AP[2]
inline constexpr pteval_t PTE_SHARED = 3ull << 8;  // SH[1:0], inner shareable
inline constexpr pteval_t PTE_AF = 1ull << 10;
inline constexpr pteval_t PTE_NG = 1ull << 11;
inline constexpr pteval_t PTE_GP = 1ull << 50;
inline constexpr pteval_t PTE_DBM = 1ull << 51;
inline constexpr pteval_t PTE_WRITE = PTE_DBM;  // software view of "writable"
inline constexpr pteval_t PTE_CONT = 1ull << 52;
inline constexpr pteval_t PTE_PXN = 1ull << 53;
inline constexpr pteval_t PTE_UXN = 1ull << 54;
inline constexpr pteval_t PTE_DIRTY = 1ull << 55;  // software
inline constexpr pteval_t PTE_ADDR_MASK = ((1ull << 48) - 1) & ~0xfffull;
// The bits ptdump compares (everything but the output address, DBM and SW bits).
inline constexpr pteval_t PTE_PROT_DUMP_MASK = PTE_VALID | PTE_USER | PTE_RDONLY | PTE_PXN |
                                               PTE_SHARED | PTE_AF | PTE_NG | PTE_CONT |
                                               PTE_TABLE_BIT | PTE_UXN | PTE_GP | PTE_ATTRINDX_MASK;

// The levels of a 4-level, 4 KiB-granule table.
enum PgLevel : int { PGD = 0, PUD = 1, PMD = 2, PTE = 3 };
inline constexpr unsigned kLevelShift[4] = {39, 30, 21, 12};
inline constexpr unsigned PTRS_PER_TABLE = 512;
inline constexpr unsigned CONT_PTES = 16;  // contiguous hint: 16 entries (64 KiB / 32 MiB)
const char* pg_level_name(int level);
constexpr std::uint64_t level_size(int level) {
  return std::uint64_t{1} << kLevelShift[level];
}
constexpr unsigned level_index(vaddr_t va, int level) {
  return static_cast<unsigned>((va >> kLevelShift[level]) & (PTRS_PER_TABLE - 1));
}

// Protections built from the profile's MAIR layout and KPTI (PTE_MAYBE_NG).
struct PgProts {
  pteval_t kernel = 0;         // PAGE_KERNEL
  pteval_t kernel_ro = 0;      // PAGE_KERNEL_RO
  pteval_t kernel_rox = 0;     // PAGE_KERNEL_ROX
  pteval_t kernel_exec = 0;    // PAGE_KERNEL_EXEC
  pteval_t device = 0;         // PROT_DEVICE_nGnRE (ioremap)
  pteval_t device_strict = 0;  // PROT_DEVICE_nGnRnE (ioremap_np)
  pteval_t normal_nc = 0;      // PROT_NORMAL_NC (ioremap_wc)
  pteval_t sect_normal = 0;    // PROT_SECT_NORMAL (vmemmap blocks)
};

// A leaf or table found by a walk.
struct PgWalk {
  int level = -1;                      // level of the last descriptor read
  pteval_t desc = 0;                   // that descriptor
  phys_addr_t entry = 0;               // physical address of that descriptor
  bool leaf = false;                   // a valid block or page
  phys_addr_t pa = 0;                  // translation of the walked address when leaf
  std::array<phys_addr_t, 4> table{};  // the table page read at each level
};

// One cached translation (one 4 KiB page).
struct TlbEntry {
  phys_addr_t pa = 0;  // page frame address
  pteval_t attrs = 0;  // leaf descriptor bits without the address
  std::uint32_t op_seq = 0;
};

// Flags of create_mapping (mmu.c).
inline constexpr unsigned NO_BLOCK_MAPPINGS = 1u << 0;
inline constexpr unsigned NO_CONT_MAPPINGS = 1u << 1;

class PageTables {
 public:
  explicit PageTables(Mm& mm);

  // ---- boot ----
  // paging_init(): swapper_pg_dir, the linear map, the kernel image, fixmap.
  // Table pages come from memblock (a pool carved out of the first early
  // allocation when the machine has one).
  void paging_init();
  // sparse_init(): the memmap of a section at its vmemmap address.
  void map_vmemmap(vaddr_t va, phys_addr_t pa, std::uint64_t size);
  // free_initmem() + mark_readonly(): init unmapped, rodata and the text alias RO.
  void free_initmem();
  // After the memmap exists: PG_table on the boot tables.
  void mark_boot_tables();
  // Buddy allocator is live: later tables come from alloc_pages.
  void enable_page_alloc() { use_page_alloc_ = true; }

  // ---- primitives ----
  // Maps [va, va+size) to [pa, pa+size) with `prot` (a page descriptor's
  // attributes). Blocks where alignment allows unless NO_BLOCK_MAPPINGS; a
  // block replaces an empty table (pmd_free_pte_page); a block in the way of
  // a finer mapping is split. False when a table page could not be
  // allocated (what was mapped stays mapped; the caller unwinds).
  bool map_range(vaddr_t va, phys_addr_t pa, std::uint64_t size, pteval_t prot, unsigned flags = 0);
  // vmap_pages_range(): one page per pfn from va on, no blocks, no
  // contiguous hint; runs of consecutive pfns are mapped together.
  bool map_pages(vaddr_t va, std::span<const pfn_t> pfns, pteval_t prot);
  // Clears every leaf in [va, va+size), splitting blocks that straddle the
  // edges. Tables stay (the kernel does not free kernel page tables on
  // vunmap). No TLB maintenance: the caller flushes.
  void unmap_range(vaddr_t va, std::uint64_t size);
  // Rewrites the attributes of every leaf in the range: (desc & ~clear) | set.
  bool change_prot(vaddr_t va, std::uint64_t size, pteval_t set, pteval_t clear);

  PgWalk walk(vaddr_t va) const;
  std::optional<phys_addr_t> translate(vaddr_t va) const;  // the page tables, no TLB

  // ---- TLB ----
  // A CPU's access: a TLB hit is used as is (it may be stale), a miss walks
  // the tables and fills the TLB. Returns the leaf attributes through `attrs`.
  std::optional<phys_addr_t> translate_cpu(int cpu, vaddr_t va, pteval_t* attrs = nullptr);
  void flush_tlb_kernel_range(vaddr_t start, vaddr_t end);
  void flush_tlb_all();
  // Snapshots (mm/snapshot.cpp): copies `snap`'s state; same configuration.
  void restore_from(const PageTables& snap);
  const std::unordered_map<vaddr_t, TlbEntry>& tlb(int cpu) const {
    return tlb_[static_cast<std::size_t>(cpu)];
  }
  std::uint64_t nr_tlb_flushes = 0;

  // ---- state ----
  // The kernel image segments map_kernel() made (vm_area_add_early()).
  struct KimageSegment {
    const char* name;
    vaddr_t va;
    phys_addr_t pa;
    std::uint64_t size;
  };
  std::vector<KimageSegment> kimage_segments;
  vaddr_t fdt_va = 0;  // the DTB in the fixmap
  phys_addr_t pgd_phys() const { return pgd_; }
  const PgProts& prot() const { return prot_; }
  std::uint64_t nr_boot_tables() const { return boot_tables_.size(); }
  const std::vector<pfn_t>& boot_tables() const { return boot_tables_; }
  bool is_boot_table(pfn_t pfn) const;
  std::uint64_t nr_tables = 0;  // tables from the page allocator (NR_PAGETABLE)
  std::uint64_t nr_tables_freed = 0;
  bool rodata_full = false;

  // Descriptor access (simulated RAM).
  pteval_t read_desc(phys_addr_t entry) const;
  void write_desc(phys_addr_t entry, pteval_t v);

  // Visits every valid descriptor below the PGD in VA order: (level, va of
  // the entry, entry address, descriptor). Tables before their contents.
  void for_each_desc(
      const std::function<void(int level, vaddr_t va, phys_addr_t entry, pteval_t d)>& f) const;
  // Sign-extends a 48-bit VA built from table indices (kernel half).
  static vaddr_t kernel_va(vaddr_t v) { return v | 0xffff000000000000ull; }

 private:
  phys_addr_t alloc_table(int level);
  void free_table(phys_addr_t pa);
  bool map_level(phys_addr_t table, int level, vaddr_t va, vaddr_t end, phys_addr_t pa,
                 pteval_t prot, unsigned flags);
  void update_level(phys_addr_t table, int level, vaddr_t va, vaddr_t end, bool unmap, pteval_t set,
                    pteval_t clear, bool* ok);
  // Replaces the block at `entry` (level) with a table of equivalent entries.
  bool split_block(phys_addr_t entry, int level);
  void clear_cont_group(phys_addr_t table, unsigned idx);
  bool table_empty(phys_addr_t table) const;
  void walk_table(phys_addr_t table, int level, vaddr_t base,
                  const std::function<void(int, vaddr_t, phys_addr_t, pteval_t)>& f) const;

  Mm& mm_;
  PgProts prot_;
  phys_addr_t pgd_ = 0;
  bool use_page_alloc_ = false;
  std::vector<pfn_t> boot_tables_;  // sorted
  phys_addr_t pool_ = 0, pool_end_ = 0;
  std::vector<std::unordered_map<vaddr_t, TlbEntry>> tlb_;
};

}  // namespace mmfuzz::mm
