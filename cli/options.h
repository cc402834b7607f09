// Options shared by subcommands: which kernel profile and machine to boot.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "mm/mm.h"
#include "program/header.h"

namespace mmfuzz::trace {
class EventSource;
}

namespace mmfuzz::cli {

struct MachineOptions {
  std::string profile;  // empty: the default profile (or the Program's)
  std::string machine_file;
  std::string ram, ram_base, cma, slab, slub_debug, rodata;
  std::string plant;  // a planted defect (self-tests; builds with MMFUZZ_PLANTED_DEFECTS)
  std::optional<unsigned> kmalloc_min;
  std::optional<unsigned> cpus, nodes;
  bool small = false;

  void add_to(CLI::App& app);
  // Throws mm::ConfigError for impossible values.
  mm::MmConfig to_config() const;
  // The flags given, on top of a Program's header. For a v2 header each flag
  // that changes a value the header states adds one line to *overrides
  // ("--slab slab overrides the program's slab: slub"). Throws mm::ConfigError.
  void apply_to(prog::ProgramHeader& h, std::vector<std::string>* overrides) const;
};

// The header a trace source's Program text states (version 1 for a trace
// without one), with the machine flags on top; each override is one line on
// stderr, "mmfuzz CMD: ...". Call after src.next() returned once. Throws
// mm::ConfigError for a bad header ("FILE: header ...").
prog::ProgramHeader program_header(const trace::EventSource& src, const MachineOptions& mo,
                                   const char* cmd, std::vector<std::string>* overrides);

// Writes text to path atomically (temp file + rename): never a half-written
// output file. Throws mm::ConfigError.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace mmfuzz::cli
