#include "mm/profile.h"

namespace mmfuzz::mm {
namespace {

KernelProfile make_6_1() {
  KernelProfile p;
  p.name = "linux-6.1-arm64";
  p.kernel_release = "6.1.0-50-arm64";
  p.description = "Debian 6.1.176 arm64, 4K pages, 48-bit VA, SLUB (the recorded QEMU guest)";
  // Since 5.12 arm64 uses 128 MiB sections with 4K pages.
  p.section_size_bits = 27;
  p.zone_dma_bits = 32;
  p.vmemmap_start = 0xfffffc0000000000ull;  // -(1 << (VA_BITS - VMEMMAP_SHIFT))
  p.vmalloc_start = 0xffff800008000000ull;  // MODULES_VADDR + 128 MiB of modules
  p.vmalloc_end = 0xfffffbfff0000000ull;    // VMEMMAP_START - SZ_256M
  p.pcp = PcpModel::v6_1;
  return p;
}

KernelProfile make_5_10() {
  KernelProfile p;
  p.name = "linux-5.10-arm64";
  p.kernel_release = "5.10.0-arm64";
  p.description = "Linux 5.10 arm64, 4K pages, 48-bit VA, SLUB (the seeds' kernel)";
  p.section_size_bits = 30;
  p.zone_dma_bits = 30;
  p.vmemmap_start = 0xfffffdffffe00000ull;  // -VMEMMAP_SIZE - SZ_2M
  // seed 001's kernel_page_tables: vmalloc() area ends below the PCI I/O and
  // fixmap regions.
  p.vmalloc_start = 0xffff800010000000ull;
  p.vmalloc_end = 0xfffffdffbfff0000ull;
  // Seed 001's kernel_page_tables listing.
  p.bpf_start = 0xffff800000000000ull;
  p.bpf_end = 0xffff800008000000ull;
  p.modules_vaddr = 0xffff800008000000ull;
  p.modules_end = 0xffff800010000000ull;
  p.fixaddr_top = 0xfffffdfffea00000ull;  // PCI_IO_START - SZ_2M
  p.fixmap_pages = 1031;                  // 0xfffffdfffe5f9000 .. FIXADDR_TOP
  p.fix_fdt = 1024;
  p.pci_io_start = 0xfffffdfffec00000ull;
  p.pci_io_end = 0xfffffdffffc00000ull;
  p.mair_names = {"MEM/NORMAL",    "MEM/NORMAL-TAGGED", "MEM/NORMAL-NC", "MEM/NORMAL-WT",
                  "DEVICE/nGnRnE", "DEVICE/nGnRE",      "DEVICE/GRE",    nullptr};
  p.mt_device_ngnrne = 4;
  p.mt_device_ngnre = 5;
  p.pcp = PcpModel::v5_10;
  return p;
}

const std::vector<KernelProfile>& all_profiles() {
  static const std::vector<KernelProfile> profiles = {make_6_1(), make_5_10()};
  return profiles;
}

}  // namespace

const KernelProfile& profile_by_name(std::string_view name) {
  for (const auto& p : all_profiles())
    if (p.name == name) return p;
  std::string known;
  for (const auto& p : all_profiles()) known += (known.empty() ? "" : ", ") + p.name;
  throw ConfigError("unknown kernel profile '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> profile_names() {
  std::vector<std::string> names;
  for (const auto& p : all_profiles()) names.push_back(p.name);
  return names;
}

}  // namespace mmfuzz::mm
