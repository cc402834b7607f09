// The simulated machine: RAM, NUMA nodes, CPUs, what firmware and early boot
// reserve, and the device regions /proc/iomem shows. The default is the QEMU
// arm64 `virt` guest the bundled traces were recorded on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::mm {

struct KernelProfile;

struct PhysRange {
  phys_addr_t start = 0;
  phys_addr_t end = 0;  // exclusive
  std::uint64_t size() const { return end - start; }
};

// A top-down memblock allocation made before sparse_init (page tables,
// percpu first chunk, NODE_DATA, ...). `freed` ones are handed back later.
struct EarlyAlloc {
  std::uint64_t size = 0;
  bool freed = false;
};

// A non-RAM resource line of /proc/iomem (depth 0 = top level).
struct IomemResource {
  phys_addr_t start = 0;
  phys_addr_t end = 0;  // inclusive, as iomem prints it
  std::string name;
  int depth = 0;
};

struct MachineConfig {
  std::string name = "qemu-virt";
  phys_addr_t ram_base = 0x40000000;
  std::uint64_t ram_size = SZ_1G;
  std::vector<PhysRange> holes;  // removed from RAM (memblock_remove)
  unsigned nr_nodes = 1;
  unsigned nr_cpus = 2;

  // Kernel image, relative to ram_base: [_stext, __init_begin) code,
  // [__init_begin, __init_end) init (freed late), [_sdata, _end) data.
  std::uint64_t kernel_offset = 0x210000;
  std::uint64_t kernel_code_size = 0x1650000;
  std::uint64_t kernel_init_size = 0x650000;
  std::uint64_t kernel_text_size = 0xcf0000;  // [_stext, _etext): "13248K kernel code"
  std::uint64_t kernel_data_size = 0x360000;

  // QEMU loads the initrd at ram_base + min(ram_size / 2, 128 MiB) and the
  // DTB at the next 2 MiB boundary after it.
  std::uint64_t initrd_size = 0xf6800;
  std::uint64_t dtb_size = SZ_1M;

  std::vector<EarlyAlloc> early_allocs;
  std::optional<std::uint64_t> cma_size;         // cma=; unset: the profile's default
  std::optional<std::uint64_t> min_free_kbytes;  // vm.min_free_kbytes set by the user

  std::vector<IomemResource> devices;
  // The PCIe host's I/O port window, mapped at PCI_IO_START (pci_remap_iospace).
  PhysRange pci_io{0x3eff0000, 0x3f000000};

  std::uint64_t ram_end() const { return ram_base + ram_size; }
  phys_addr_t kernel_start() const { return ram_base + kernel_offset; }
  phys_addr_t initrd_start() const;
  phys_addr_t dtb_start() const;
};

inline constexpr std::uint64_t kMaxModelRam = 64 * SZ_1G;

// The QEMU virt guest the bundled traces come from (1 GiB at 0x40000000, 2 CPUs).
MachineConfig default_machine();

// A small machine for fuzzing and tests: `ram` bytes at 0x40000000, a 4 MiB
// kernel image, no initrd, no CMA, no early allocations (fast to boot and reset).
MachineConfig small_machine(std::uint64_t ram = 16 * SZ_1M);

// Reads a machine file ("key = value" lines; see docs/architecture.md) on top
// of the default machine. Throws ConfigError with file:line.
MachineConfig load_machine_file(const std::string& path);
void apply_machine_line(MachineConfig& m, const std::string& key, const std::string& value);

// One "key = value" line of a machine file (Program headers carry them).
struct MachineLine {
  std::string key, value;
  bool operator==(const MachineLine&) const = default;
};
// The lines of a machine file, each checked (ConfigError with file:line).
std::vector<MachineLine> read_machine_file(const std::string& path);
// Applies them as a machine file does: the first device or early_alloc line
// replaces the machine's list instead of adding to it.
void apply_machine_lines(MachineConfig& m, const std::vector<MachineLine>& lines);

// Rejects impossible machines with a one-line reason (ConfigError).
void validate_machine(const MachineConfig& m, const KernelProfile& profile);

// cpu -> node: CPUs are spread over the nodes in contiguous blocks.
int cpu_to_node(const MachineConfig& m, unsigned cpu);
// The RAM of each node after holes are removed (contiguous equal shares).
std::vector<std::vector<PhysRange>> node_memory(const MachineConfig& m,
                                                const KernelProfile& profile);

}  // namespace mmfuzz::mm
