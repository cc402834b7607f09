#include "cli/options.h"

#include <cstdio>
#include <fstream>

namespace mmfuzz::cli {

void MachineOptions::add_to(CLI::App& app) {
  app.add_option("--profile", profile,
                 "kernel profile: linux-6.1-arm64 (default) or linux-5.10-arm64");
  app.add_option("--machine", machine_file, "machine description file (key = value lines)");
  app.add_option("--ram", ram, "RAM size, e.g. 1G, 512M (default: the QEMU virt guest's 1G)");
  app.add_option("--ram-base", ram_base, "physical address of RAM (default 0x40000000)");
  app.add_option("--cpus", cpus, "number of CPUs (default 2)");
  app.add_option("--nodes", nodes, "number of NUMA nodes (default 1)");
  app.add_option("--cma", cma, "CMA reservation, e.g. 64M or 0 (default: the profile's 64M)");
  app.add_option("--slab", slab, "slab allocator: slub (the profile's default), slab or slob");
  app.add_option(
      "--slub-debug", slub_debug,
      "debug flags for every cache, as slub_debug=: F (consistency), Z (red zones), P (poison), "
      "U (store user); empty or '-' means FZPU");
  app.add_option("--kmalloc-min", kmalloc_min,
                 "KMALLOC_MIN_SIZE: 128 (the profile's ARCH_DMA_MINALIGN) or 8, 16, 32, 64; 8 is "
                 "arm64 since 6.5 (kmalloc-8 ... kmalloc-192)");
  app.add_option("--rodata", rodata,
                 "rodata= of the kernel command line: full (the 6.1 guest's default: the linear "
                 "map by pages) or on (the model's default: block mappings)");
  app.add_option("--plant", plant,
                 "a planted defect for self-tests (builds with MMFUZZ_PLANTED_DEFECTS), e.g. "
                 "buddy_skip_merge");
  app.add_flag("--small", small,
               "the small test machine (16 MiB, no CMA, no initrd) instead of the guest");
}

mm::MmConfig MachineOptions::to_config() const {
  mm::MmConfig cfg;
  mm::profile_by_name(profile);  // fail early with the list of profiles
  cfg.profile = profile;
  if (!machine_file.empty())
    cfg.machine = mm::load_machine_file(machine_file);
  else if (small)
    cfg.machine = mm::small_machine();
  if (!ram.empty()) cfg.machine.ram_size = mm::parse_size(ram);
  if (!ram_base.empty()) cfg.machine.ram_base = mm::parse_number(ram_base);
  if (!cma.empty()) cfg.machine.cma_size = mm::parse_size(cma);
  if (cpus) cfg.machine.nr_cpus = *cpus;
  if (nodes) cfg.machine.nr_nodes = *nodes;
  if (!slab.empty()) {
    cfg.slab.variant = mm::parse_slab_variant(slab);
    if (!cfg.slab.variant)
      throw mm::ConfigError("--slab must be slub, slab or slob, not '" + slab + "'");
  }
  if (!slub_debug.empty()) {
    mm::slab_flags_t f = 0;
    const std::string opts = slub_debug == "-" ? "FZPU" : slub_debug;
    for (char c : opts) {
      switch (c) {
        case 'F':
        case 'f':
          f |= mm::SLAB_CONSISTENCY_CHECKS;
          break;
        case 'Z':
        case 'z':
          f |= mm::SLAB_RED_ZONE;
          break;
        case 'P':
        case 'p':
          f |= mm::SLAB_POISON;
          break;
        case 'U':
        case 'u':
          f |= mm::SLAB_STORE_USER;
          break;
        default:
          throw mm::ConfigError(std::string("--slub-debug: unknown option '") + c +
                                "' (use F, Z, P, U)");
      }
    }
    cfg.slab.debug_flags = f;
  }
  if (!rodata.empty()) {
    if (rodata == "full")
      cfg.rodata_full = true;
    else if (rodata == "on")
      cfg.rodata_full = false;
    else
      throw mm::ConfigError("--rodata must be full or on, not '" + rodata + "'");
  }
  if (!plant.empty()) {
    const auto d = mm::parse_planted_defect(plant);
    if (!d) throw mm::ConfigError("--plant: unknown planted defect '" + plant + "'");
    cfg.planted = *d;
  }
  if (kmalloc_min) {
    const unsigned k = *kmalloc_min;
    if (k < 8 || k > 128 || (k & (k - 1)))
      throw mm::ConfigError("--kmalloc-min must be 8, 16, 32, 64 or 128, not " + std::to_string(k));
    cfg.slab.kmalloc_min_size = k;
  }
  return cfg;
}

std::string MachineOptions::args() const {
  std::string s;
  auto add = [&s](const char* flag, const std::string& v) {
    if (v.empty()) return;
    if (!s.empty()) s += ' ';
    s += flag;
    s += v.find_first_of(" '\"") == std::string::npos ? " " + v : " '" + v + "'";
  };
  if (profile != mm::kDefaultProfile) add("--profile", profile);
  add("--machine", machine_file);
  if (small) s += s.empty() ? "--small" : " --small";
  add("--ram", ram);
  add("--ram-base", ram_base);
  add("--cma", cma);
  if (cpus) add("--cpus", std::to_string(*cpus));
  if (nodes) add("--nodes", std::to_string(*nodes));
  add("--slab", slab);
  add("--slub-debug", slub_debug);
  if (kmalloc_min) add("--kmalloc-min", std::to_string(*kmalloc_min));
  add("--rodata", rodata);
  add("--plant", plant);
  return s;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw mm::ConfigError("cannot write '" + path + "'");
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw mm::ConfigError("cannot write '" + path + "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw mm::ConfigError("cannot write '" + path + "'");
  }
}

}  // namespace mmfuzz::cli
