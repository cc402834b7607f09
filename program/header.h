// The header of a Program text: everything a verdict depends on besides the
// ops, so that a Program reproduces alone on any machine (docs/program-format.md).
//
//   # mmfuzz program v2
//   # target: slub
//   # profile: linux-6.1-arm64
//   # machine: fuzz
//   ...
//   # expect: slab.rearm|kfree|slub
//
// A v1 file ("# mmfuzz program v1", or no header line) has no keys: the reader
// runs it with its own defaults (replay: the QEMU guest; a fuzz target: its
// own machine), as before v2 existed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mm/mm.h"

namespace mmfuzz::prog {

enum class CheckMode : std::uint8_t {
  off,          // no checkers; misuse is not reported either
  incremental,  // after every op what it touched; full sweeps every check_every ops and at the end
  full,         // full sweeps every check_every ops and at the end
};
const char* check_mode_name(CheckMode m);

// `diff:` runs the Program under several configurations and compares what
// its callers see (program/differential.h).
enum class DiffMode : std::uint8_t {
  none,     // one run
  slab,     // SLUB, SLAB and SLOB: the header's allocator first, then the others
  profile,  // linux-6.1-arm64 and linux-5.10-arm64: the header's profile first
};
const char* diff_mode_name(DiffMode m);

struct ExecOptions;

inline constexpr std::string_view kProgramMagic = "# mmfuzz program";
inline constexpr int kProgramVersion = 2;  // the newest version this build reads and writes

// The machines a header can name: the QEMU virt guest (default_machine), the
// small test machine (`--small`) and the fuzz targets' machine (16 MiB small).
inline constexpr const char* kHeaderMachines[] = {"qemu-virt", "small", "fuzz"};

struct ProgramHeader {
  int version = 1;     // 1: no keys (the reader's defaults); 2: the keys below
  std::string target;  // the fuzz target that found it (informative)

  std::string profile{mm::kDefaultProfile};
  std::string machine = "qemu-virt";  // one of kHeaderMachines
  // A machine file's "key = value" lines, applied to the named machine.
  std::vector<mm::MachineLine> machine_lines;
  std::optional<std::uint64_t> ram, ram_base, cma;
  std::optional<unsigned> cpus, nodes;

  bool slab_enabled = true;
  std::optional<mm::SlabVariant> slab;  // unset: the profile's
  mm::slab_flags_t slub_debug = 0;      // SLAB_CONSISTENCY_CHECKS|RED_ZONE|POISON|STORE_USER
  // slab_nomerge: no cache is an alias of another. A recorded trace's
  // distinct cache names are distinct kernel caches (a merged cache frees
  // under its target's name), so replay sets it.
  bool slab_nomerge = false;
  std::optional<unsigned> kmalloc_min;  // unset: the profile's
  bool rodata_full = false;
  bool vmalloc = true;
  // MmConfig::lazy_max_pages: the lazy vmap purge threshold scaled for
  // fuzzing (printed only when set; unset: the kernel's).
  std::optional<std::uint64_t> lazy_max_pages;

  std::string checks = "all";
  CheckMode check = CheckMode::incremental;
  std::uint64_t check_every = 0;
  bool final_sweep = true;
  bool record_misuse = true;
  bool misuse_writes = true;
  bool report_leaks = false;
  bool oracle = false;  // the reference models' post-conditions (program/oracle.h)
  std::uint64_t max_findings = 1000;

  mm::PlantedDefect planted = mm::PlantedDefect::none;
  DiffMode diff = DiffMode::none;  // printed only when set
  // Signatures (inv::Violation::signature()) the finder saw.
  std::vector<std::string> expect;

  bool operator==(const ProgramHeader&) const = default;

  // The model and the Executor options it describes. mm_config() throws
  // mm::ConfigError for a planted defect this build lacks; impossible machines
  // are the Mm constructor's ConfigError.
  mm::MmConfig mm_config() const;
  ExecOptions exec_options() const;
  // The header with every default made explicit (the profile's allocator,
  // kmalloc minimum and CMA; the machine's RAM, base, CPUs and nodes): what
  // v2 texts print and parse to. Throws mm::ConfigError (unknown profile;
  // `diff: slab` without a slab allocator).
  ProgramHeader resolved() const;
  // The same model and checks (target and expected signatures aside).
  bool same_run(const ProgramHeader& o) const;
  // Takes the verdict-deciding Executor options (checks, mode, sweeps, misuse).
  void set_exec_options(const ExecOptions& eo);
};

// The header text: "# mmfuzz program v1\n", or for v2 the version line and
// one "# key: value\n" per key of the resolved header.
std::string print_header(const ProgramHeader& h);

// Reads a header from the leading lines of a Program text, one line at a time
// (without its newline). The version line may follow other comments; the keys
// are the "# key: value" lines right after it. Any other line ends the header.
class HeaderParser {
 public:
  // Feeds the next comment line before the first op. False with error() set
  // for a bad header line (unknown key, bad value, repeated key, a version
  // this build cannot read); lines after the header are ignored.
  bool feed(std::string_view line);
  const std::string& error() const { return error_; }
  // The header read, resolved when it is v2 (after the last line). False with
  // error() set when it cannot be resolved (an unknown profile).
  bool finish(ProgramHeader& out);

 private:
  enum class State : std::uint8_t { before, keys, after };
  ProgramHeader h_;
  State state_ = State::before;
  std::uint64_t seen_keys_ = 0;
  std::string error_;
};

// The value print_header writes for one key of h ("" when it writes none;
// "a, b" for a key that repeats): what a command-line override replaces.
std::string header_value(const ProgramHeader& h, std::string_view key);

// The header of the leading comment lines of a text (a trace source's
// header_lines()). False and *error (one line) for a bad header.
bool read_header(const std::vector<std::string>& lines, ProgramHeader& out, std::string* error);

// One "key: value" into h (keys as print_header writes them). False and
// *error (one line) for an unknown key or a bad value.
bool set_header_key(ProgramHeader& h, std::string_view key, std::string_view value,
                    std::string* error);

}  // namespace mmfuzz::prog
