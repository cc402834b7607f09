#include "cli/options.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "trace/source.h"

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

namespace {

mm::slab_flags_t parse_slub_debug(const std::string& arg) {
  mm::slab_flags_t f = 0;
  const std::string opts = arg == "-" ? "FZPU" : arg;
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
  return f;
}

// Sets one header value from a flag; for a v2 header notes what it replaced.
class Overrider {
 public:
  Overrider(prog::ProgramHeader& h, std::vector<std::string>* notes)
      : h_(h), notes_(h.version >= 2 ? notes : nullptr) {}
  template <class F>
  void operator()(const char* flag, const std::string& given, const char* key, F&& assign) {
    const std::string before = notes_ ? prog::header_value(h_, key) : "";
    const std::string all_before = notes_ ? values(key) : "";
    assign(h_);
    if (notes_ && values(key) != all_before)
      notes_->push_back(fmt::format("{}{}{} overrides the program's {}: {}", flag,
                                    given.empty() ? "" : " ", given, key, before));
  }

 private:
  // A machine is its name, its machine lines and its values.
  std::string values(std::string_view key) const {
    if (key != "machine") return prog::header_value(h_, key);
    std::string s;
    for (const char* k : {"machine", "machine_line", "ram", "ram_base", "cpus", "nodes", "cma"})
      s += prog::header_value(h_, k) + "\n";
    return s;
  }

  prog::ProgramHeader& h_;
  std::vector<std::string>* notes_;
};

// A machine replaced as a whole: the header's machine lines and values go.
void set_machine(prog::ProgramHeader& h, const char* name, std::vector<mm::MachineLine> lines) {
  h.machine = name;
  h.machine_lines = std::move(lines);
  h.ram.reset(), h.ram_base.reset(), h.cma.reset(), h.cpus.reset(), h.nodes.reset();
}

}  // namespace

void MachineOptions::apply_to(prog::ProgramHeader& h, std::vector<std::string>* notes) const {
  Overrider set(h, notes);
  using H = prog::ProgramHeader;
  if (!profile.empty()) {
    mm::profile_by_name(profile);  // fail early with the list of profiles
    set("--profile", profile, "profile", [&](H& x) { x.profile = profile; });
  }
  if (!machine_file.empty()) {
    auto lines = mm::read_machine_file(machine_file);
    set("--machine", machine_file, "machine",
        [&](H& x) { set_machine(x, "qemu-virt", std::move(lines)); });
  } else if (small) {
    set("--small", "", "machine", [&](H& x) { set_machine(x, "small", {}); });
  }
  if (!ram.empty()) set("--ram", ram, "ram", [&](H& x) { x.ram = mm::parse_size(ram); });
  if (!ram_base.empty())
    set("--ram-base", ram_base, "ram_base", [&](H& x) { x.ram_base = mm::parse_number(ram_base); });
  if (!cma.empty()) set("--cma", cma, "cma", [&](H& x) { x.cma = mm::parse_size(cma); });
  if (cpus) set("--cpus", std::to_string(*cpus), "cpus", [&](H& x) { x.cpus = *cpus; });
  if (nodes) set("--nodes", std::to_string(*nodes), "nodes", [&](H& x) { x.nodes = *nodes; });
  if (!slab.empty()) {
    const auto v = mm::parse_slab_variant(slab);
    if (!v) throw mm::ConfigError("--slab must be slub, slab or slob, not '" + slab + "'");
    set("--slab", slab, "slab", [&](H& x) { x.slab_enabled = true, x.slab = v; });
  }
  if (!slub_debug.empty()) {
    const mm::slab_flags_t f = parse_slub_debug(slub_debug);
    set("--slub-debug", slub_debug, "slub_debug", [&](H& x) { x.slub_debug = f; });
  }
  if (!rodata.empty()) {
    if (rodata != "full" && rodata != "on")
      throw mm::ConfigError("--rodata must be full or on, not '" + rodata + "'");
    set("--rodata", rodata, "rodata", [&](H& x) { x.rodata_full = rodata == "full"; });
  }
  if (!plant.empty()) {
    const auto d = mm::parse_planted_defect(plant);
    if (!d) throw mm::ConfigError("--plant: unknown planted defect '" + plant + "'");
    set("--plant", plant, "planted", [&](H& x) { x.planted = *d; });
  }
  if (kmalloc_min) {
    const unsigned k = *kmalloc_min;
    if (k < 8 || k > 128 || (k & (k - 1)))
      throw mm::ConfigError("--kmalloc-min must be 8, 16, 32, 64 or 128, not " + std::to_string(k));
    set("--kmalloc-min", std::to_string(k), "kmalloc_min", [&](H& x) { x.kmalloc_min = k; });
  }
}

mm::MmConfig MachineOptions::to_config() const {
  prog::ProgramHeader h;
  apply_to(h, nullptr);
  return h.mm_config();
}

prog::ProgramHeader program_header(const trace::EventSource& src, const MachineOptions& mo,
                                   const char* cmd, std::vector<std::string>* overrides) {
  prog::ProgramHeader h;
  std::string error;
  if (src.program_text() && src.header_lines() &&
      !prog::read_header(*src.header_lines(), h, &error))
    throw mm::ConfigError(src.name() + ": " + error);
  // A recorded trace names each kernel cache it shows by its own name (a
  // merged cache frees under its target's): none is an alias in the model.
  if (!src.program_text()) h.slab_nomerge = true;
  // A recorded trace keeps only what its findings should be ("# expect: SIG"
  // comment lines before its events, as in a Program): a regression trace.
  if (!src.program_text() && src.header_lines())
    for (const auto& l : *src.header_lines())
      if (l.rfind("# expect: ", 0) == 0) h.expect.push_back(l.substr(10));
  std::vector<std::string> notes;
  mo.apply_to(h, &notes);
  for (const auto& n : notes) std::fprintf(stderr, "mmfuzz %s: %s\n", cmd, n.c_str());
  if (overrides) overrides->insert(overrides->end(), notes.begin(), notes.end());
  return h;
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
