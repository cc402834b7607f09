// Options shared by subcommands: which kernel profile and machine to boot.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "mm/mm.h"

namespace mmfuzz::cli {

struct MachineOptions {
  std::string profile{mm::kDefaultProfile};
  std::string machine_file;
  std::string ram, ram_base, cma, slab, slub_debug, rodata;
  std::string plant;  // a planted defect (self-tests; builds with MMFUZZ_PLANTED_DEFECTS)
  std::optional<unsigned> kmalloc_min;
  std::optional<unsigned> cpus, nodes;
  bool small = false;

  void add_to(CLI::App& app);
  // Throws mm::ConfigError for impossible values.
  mm::MmConfig to_config() const;
  // The options given, as flags again ("--small --slab slab"): how to replay
  // a Program on the same machine.
  std::string args() const;
};

// Writes text to path atomically (temp file + rename): never a half-written
// output file. Throws mm::ConfigError.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace mmfuzz::cli
