// A named kernel profile: every constant of the modeled kernel lives here
// (DESIGN rule 7), so the model code never hard-codes a kernel version.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::mm {

enum class SlabVariant { slub, slab, slob };

// How the per-CPU page lists behave.
enum class PcpModel {
  v5_10,  // order-0 lists only; high = 6 * batch; batch capped at 512 KiB
  v6_1,   // lists per order up to PAGE_ALLOC_COSTLY_ORDER plus the THP order;
          // high from the low watermark; free_factor scaling
};

struct KernelProfile {
  std::string name;            // "linux-6.1-arm64"
  std::string kernel_release;  // what the real guest's uname -r said
  std::string description;

  // Geometry.
  unsigned page_shift = 12;
  unsigned max_order = 11;  // MAX_ORDER: buddy orders 0 .. max_order-1
  unsigned pageblock_order = 9;
  unsigned section_size_bits = 27;  // SECTION_SIZE_BITS
  unsigned max_physmem_bits = 48;   // MAX_PHYSMEM_BITS (CONFIG_ARM64_PA_BITS)
  unsigned va_bits = 48;
  unsigned struct_page_size = 64;  // sizeof(struct page) on the target: sizes the memmap
  unsigned page_alloc_costly_order = 3;
  unsigned nodes_shift = 4;  // CONFIG_NODES_SHIFT

  // Zones (arm64 zone_sizes_init).
  unsigned zone_dma_bits = 32;

  // Virtual layout (arm64 asm/memory.h).
  vaddr_t page_offset = 0xffff000000000000ull;    // PAGE_OFFSET, start of the linear map
  vaddr_t vmemmap_start = 0xfffffc0000000000ull;  // VMEMMAP_START
  vaddr_t vmalloc_start = 0xffff800008000000ull;  // VMALLOC_START (= MODULES_END)
  vaddr_t vmalloc_end = 0xfffffbfff0000000ull;    // VMALLOC_END
  vaddr_t page_end = 0xffff800000000000ull;       // PAGE_END: end of the linear map
  vaddr_t bpf_start = 0, bpf_end = 0;             // BPF_JIT_REGION (5.10 only)
  vaddr_t modules_vaddr = 0xffff800000000000ull;  // MODULES_VADDR
  vaddr_t modules_end = 0xffff800008000000ull;    // MODULES_END = KIMAGE_VADDR
  vaddr_t fixaddr_top = 0xfffffbfffe000000ull;    // FIXADDR_TOP
  unsigned fixmap_pages = 524;                    // __end_of_permanent_fixed_addresses
  unsigned fix_fdt = 512;                         // FIX_FDT index (the DTB's first page)
  vaddr_t pci_io_start = 0xfffffbfffe800000ull;   // PCI_IO_START
  vaddr_t pci_io_end = 0xfffffbffff800000ull;     // PCI_IO_END
  std::uint64_t vmemmap_size = 1ull << 41;        // VMEMMAP_SIZE
  bool kpti = true;           // KPTI forced on by KASLR (guest dmesg): kernel maps are nG
  unsigned lazy_max_mb = 32;  // lazy_max_pages(): fls(cpus) * 32 MiB
  // MAIR_EL1 slots: the name ptdump prints for each AttrIndx (empty: unused).
  std::array<const char*, 8> mair_names = {"MEM/NORMAL",    "MEM/NORMAL-TAGGED",
                                           "MEM/NORMAL-NC", "DEVICE/nGnRnE",
                                           "DEVICE/nGnRE",  nullptr,
                                           nullptr,         nullptr};
  unsigned mt_normal = 0, mt_normal_tagged = 1, mt_normal_nc = 2, mt_device_ngnrne = 3,
           mt_device_ngnre = 4;

  // Page allocator policy.
  PcpModel pcp = PcpModel::v6_1;
  bool thp = true;  // CONFIG_TRANSPARENT_HUGEPAGE: THP pcp list, recommended min_free_kbytes
  unsigned watermark_scale_factor = 10;
  unsigned watermark_boost_factor = 15000;
  std::array<unsigned, 4> lowmem_reserve_ratio = {256, 256, 32, 0};
  bool init_on_alloc = true;  // CONFIG_INIT_ON_ALLOC_DEFAULT_ON
  bool init_on_free = false;
  std::uint64_t cma_size = 64 * SZ_1M;  // CONFIG_CMA_SIZE_MBYTES

  // Slab layer (used by the slab issue).
  SlabVariant slab = SlabVariant::slub;
  unsigned kmalloc_min_align = 128;       // ARCH_DMA_MINALIGN
  unsigned cache_line_size = 64;          // cache_line_size(): "SLUB: HWalign=64"
  unsigned sizeof_kmem_cache = 256;       // the kmem_cache boot cache's object (guest slabinfo)
  unsigned sizeof_kmem_cache_node = 128;  // and kmem_cache_node's

  // Derived helpers.
  std::uint64_t page_size() const { return std::uint64_t{1} << page_shift; }
  std::uint64_t pageblock_nr_pages() const { return std::uint64_t{1} << pageblock_order; }
  unsigned pfn_section_shift() const { return section_size_bits - page_shift; }
  std::uint64_t pages_per_section() const { return std::uint64_t{1} << pfn_section_shift(); }
  unsigned max_numnodes() const { return 1u << nodes_shift; }
};

inline constexpr std::string_view kDefaultProfile = "linux-6.1-arm64";

// Throws ConfigError naming the known profiles.
const KernelProfile& profile_by_name(std::string_view name);
std::vector<std::string> profile_names();

}  // namespace mmfuzz::mm
