#include "mm/phys/machine.h"

#include <algorithm>
#include <fstream>

#include "mm/profile.h"

namespace mmfuzz::mm {

phys_addr_t MachineConfig::initrd_start() const {
  return ram_base + std::min<std::uint64_t>(ram_size / 2, 128 * SZ_1M);
}

phys_addr_t MachineConfig::dtb_start() const {
  return round_up(initrd_start() + initrd_size, 2 * SZ_1M);
}

MachineConfig default_machine() {
  MachineConfig m;
  // Early memblock allocations of the real guest, top down from the end of
  // RAM, read off its /proc/iomem (7fc0a000-7fffffff). The two freed ones
  // are the holes at 7fdc9000 and 7fc00000.
  m.early_allocs = {{0x204000, false}, {0xa000, false},  {0x25000, false},  {0x2000, false},
                    {0x2000, true},    {0x3e000, false}, {0x181000, false}, {0xa000, true}};
  m.devices = {
      {0x09000000, 0x09000fff, "pl011@9000000", 0},
      {0x09000000, 0x09000fff, "9000000.pl011 pl011@9000000", 1},
      {0x09010000, 0x09010fff, "pl031@9010000", 0},
      {0x09010000, 0x09010fff, "rtc-pl031", 1},
      {0x09030000, 0x09030fff, "pl061@9030000", 0},
      {0x09030000, 0x09030fff, "9030000.pl061 pl061@9030000", 1},
      {0x10000000, 0x3efeffff, "pcie@10000000", 0},
      {0x4010000000, 0x401fffffff, "PCI ECAM", 0},
      {0x8000000000, 0xffffffffff, "pcie@10000000", 0},
  };
  return m;
}

MachineConfig small_machine(std::uint64_t ram) {
  MachineConfig m = default_machine();
  m.name = "small";
  m.ram_size = ram;
  m.kernel_offset = 0x200000;
  m.kernel_code_size = 0x200000;
  m.kernel_text_size = 0x100000;
  m.kernel_init_size = 0x80000;
  m.kernel_data_size = 0x80000;
  m.initrd_size = 0;
  m.dtb_size = 0x10000;
  m.early_allocs.clear();
  m.cma_size = 0;
  m.pci_io = {};  // no PCIe I/O window: nothing to map at boot
  return m;
}

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// "START-END" (END inclusive) or "START+SIZE".
PhysRange parse_range(const std::string& v) {
  auto plus = v.find('+');
  if (plus != std::string::npos) {
    auto start = parse_number(trim(v.substr(0, plus)));
    return {start, start + parse_size(trim(v.substr(plus + 1)))};
  }
  auto dash = v.find('-');
  if (dash == std::string::npos)
    throw ConfigError("expected START-END or START+SIZE, got '" + v + "'");
  auto start = parse_number(trim(v.substr(0, dash)));
  auto last = parse_number(trim(v.substr(dash + 1)));
  if (last < start) throw ConfigError("range end below start: '" + v + "'");
  return {start, last + 1};
}

unsigned parse_count(const std::string& v, const char* what) {
  auto n = parse_number(v);
  if (n > 4096) throw ConfigError(std::string(what) + " out of range: " + v);
  return static_cast<unsigned>(n);
}

}  // namespace

void apply_machine_line(MachineConfig& m, const std::string& key, const std::string& value) {
  if (key == "name") {
    m.name = value;
  } else if (key == "ram_base") {
    m.ram_base = parse_number(value);
  } else if (key == "ram_size" || key == "ram") {
    m.ram_size = parse_size(value);
  } else if (key == "nodes") {
    m.nr_nodes = parse_count(value, "nodes");
  } else if (key == "cpus") {
    m.nr_cpus = parse_count(value, "cpus");
  } else if (key == "hole") {
    m.holes.push_back(parse_range(value));
  } else if (key == "kernel_offset") {
    m.kernel_offset = parse_size(value);
  } else if (key == "kernel_code") {
    m.kernel_code_size = parse_size(value);
  } else if (key == "kernel_text") {
    m.kernel_text_size = parse_size(value);
  } else if (key == "pci_io") {
    m.pci_io = value == "none" ? PhysRange{} : parse_range(value);
  } else if (key == "kernel_init") {
    m.kernel_init_size = parse_size(value);
  } else if (key == "kernel_data") {
    m.kernel_data_size = parse_size(value);
  } else if (key == "initrd_size") {
    m.initrd_size = parse_size(value);
  } else if (key == "dtb_size") {
    m.dtb_size = parse_size(value);
  } else if (key == "early_alloc") {
    auto sp = value.find_first_of(" \t");
    EarlyAlloc a;
    a.size = parse_size(trim(value.substr(0, sp)));
    if (sp != std::string::npos) {
      auto rest = trim(value.substr(sp));
      if (rest != "freed") throw ConfigError("early_alloc takes SIZE [freed], got '" + value + "'");
      a.freed = true;
    }
    m.early_allocs.push_back(a);
  } else if (key == "early_allocs" && value == "none") {
    m.early_allocs.clear();
  } else if (key == "cma") {
    m.cma_size = parse_size(value);
  } else if (key == "min_free_kbytes") {
    m.min_free_kbytes = parse_number(value);
  } else if (key == "device" || key == "device_child") {
    auto sp = value.find_first_of(" \t");
    if (sp == std::string::npos)
      throw ConfigError("device takes START-END NAME, got '" + value + "'");
    auto r = parse_range(trim(value.substr(0, sp)));
    m.devices.push_back({r.start, r.end - 1, trim(value.substr(sp)), key == "device" ? 0 : 1});
  } else if (key == "devices" && value == "none") {
    m.devices.clear();
  } else {
    throw ConfigError("unknown machine key '" + key + "'");
  }
}

std::vector<MachineLine> read_machine_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open machine file '" + path + "'");
  std::vector<MachineLine> lines;
  MachineConfig scratch = default_machine();  // each line is tried on it
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos)
      throw ConfigError(path + ":" + std::to_string(lineno) + ": expected 'key = value'");
    MachineLine l{trim(line.substr(0, eq)), trim(line.substr(eq + 1))};
    try {
      apply_machine_line(scratch, l.key, l.value);
    } catch (const ConfigError& e) {
      throw ConfigError(path + ":" + std::to_string(lineno) + ": " + e.what());
    }
    lines.push_back(std::move(l));
  }
  return lines;
}

void apply_machine_lines(MachineConfig& m, const std::vector<MachineLine>& lines) {
  bool cleared_devices = false, cleared_early = false;
  for (const auto& [key, value] : lines) {
    // A file that lists devices or early allocations replaces the defaults.
    if ((key == "device") && !cleared_devices) m.devices.clear(), cleared_devices = true;
    if (key == "early_alloc" && !cleared_early) m.early_allocs.clear(), cleared_early = true;
    apply_machine_line(m, key, value);
  }
}

MachineConfig load_machine_file(const std::string& path) {
  MachineConfig m = default_machine();
  apply_machine_lines(m, read_machine_file(path));
  return m;
}

void validate_machine(const MachineConfig& m, const KernelProfile& p) {
  auto mib = [](std::uint64_t b) { return std::to_string(b / SZ_1M) + " MiB"; };
  const std::uint64_t page = p.page_size();
  const std::uint64_t max_block = page << (p.max_order - 1);
  if (m.nr_cpus == 0 || m.nr_cpus > 256) throw ConfigError("cpus must be 1..256 (NR_CPUS)");
  if (m.nr_nodes == 0 || m.nr_nodes > p.max_numnodes())
    throw ConfigError("nodes must be 1.." + std::to_string(p.max_numnodes()) +
                      " (CONFIG_NODES_SHIFT)");
  if (!is_aligned(m.ram_base, 2 * SZ_1M)) throw ConfigError("ram_base must be 2 MiB aligned");
  if (!is_aligned(m.ram_size, max_block))
    throw ConfigError("ram size must be a multiple of " + mib(max_block) + " (a MAX_ORDER block)");
  // The model keeps a struct page and a page_owner record per page frame.
  if (m.ram_size > kMaxModelRam)
    throw ConfigError("RAM of " + mib(m.ram_size) + " is more than the model supports (" +
                      mib(kMaxModelRam) + "): it keeps ~64 bytes of host memory per page");
  if (m.ram_size / m.nr_nodes < max_block)
    throw ConfigError("each of the " + std::to_string(m.nr_nodes) + " nodes needs at least " +
                      mib(max_block));
  if (m.ram_end() > (std::uint64_t{1} << p.max_physmem_bits) || m.ram_end() < m.ram_base)
    throw ConfigError("RAM ends beyond the " + std::to_string(p.max_physmem_bits) +
                      "-bit physical address space");
  for (const auto& h : m.holes) {
    if (h.start < m.ram_base || h.end > m.ram_end()) throw ConfigError("hole outside RAM");
    if (!is_aligned(h.start, page) || !is_aligned(h.end, page))
      throw ConfigError("hole not page aligned");
  }
  const std::uint64_t image =
      m.kernel_offset + m.kernel_code_size + m.kernel_init_size + m.kernel_data_size;
  for (auto s : {m.kernel_code_size, m.kernel_init_size, m.kernel_data_size, m.kernel_offset})
    if (!is_aligned(s, page)) throw ConfigError("kernel image sections must be page aligned");
  if (!is_aligned(m.kernel_text_size, page))  // capped at kernel_code when mapped
    throw ConfigError("kernel_text must be page aligned");
  if (m.pci_io.end < m.pci_io.start || !is_aligned(m.pci_io.start, page) ||
      !is_aligned(m.pci_io.end, page) || m.pci_io.size() > 16 * SZ_1M)
    throw ConfigError("pci_io must be a page-aligned window of at most 16 MiB (PCI_IO_SIZE)");
  if (m.pci_io.size() && m.pci_io.start < m.ram_end() && m.ram_base < m.pci_io.end)
    throw ConfigError("pci_io overlaps RAM");
  const std::uint64_t needed = std::max(image, m.dtb_start() - m.ram_base + m.dtb_size);
  if (needed + 2 * SZ_1M > m.ram_size)
    throw ConfigError("RAM of " + mib(m.ram_size) +
                      " cannot hold the kernel image, initrd and DTB (" + mib(needed) + " needed)");
  auto overlaps = [](phys_addr_t a0, phys_addr_t a1, phys_addr_t b0, phys_addr_t b1) {
    return a0 < b1 && b0 < a1;
  };
  if (m.initrd_size && overlaps(m.kernel_start(), m.ram_base + image, m.initrd_start(),
                                m.initrd_start() + m.initrd_size))
    throw ConfigError(
        "the kernel image overlaps the initrd (QEMU loads it at RAM + min(RAM/2, 128 MiB)); "
        "use more RAM or a smaller image");
  for (const auto& h : m.holes) {
    if (overlaps(h.start, h.end, m.kernel_start(), m.ram_base + image) ||
        overlaps(h.start, h.end, m.initrd_start(), m.dtb_start() + m.dtb_size))
      throw ConfigError("a hole overlaps the kernel image, initrd or DTB");
  }
}

int cpu_to_node(const MachineConfig& m, unsigned cpu) {
  return static_cast<int>(cpu * m.nr_nodes / m.nr_cpus);
}

std::vector<std::vector<PhysRange>> node_memory(const MachineConfig& m, const KernelProfile& p) {
  const std::uint64_t align = p.page_size() << (p.max_order - 1);
  std::vector<std::vector<PhysRange>> nodes(m.nr_nodes);
  const std::uint64_t share = round_down(m.ram_size / m.nr_nodes, align);
  for (unsigned n = 0; n < m.nr_nodes; ++n) {
    phys_addr_t s = m.ram_base + n * share;
    phys_addr_t e = (n + 1 == m.nr_nodes) ? m.ram_end() : s + share;
    // Cut the holes out.
    std::vector<PhysRange> pieces{{s, e}};
    for (const auto& h : m.holes) {
      std::vector<PhysRange> next;
      for (const auto& r : pieces) {
        if (h.end <= r.start || h.start >= r.end) {
          next.push_back(r);
          continue;
        }
        if (h.start > r.start) next.push_back({r.start, h.start});
        if (h.end < r.end) next.push_back({h.end, r.end});
      }
      pieces = std::move(next);
    }
    nodes[n] = std::move(pieces);
  }
  return nodes;
}

}  // namespace mmfuzz::mm
