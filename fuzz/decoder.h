// Bytes <-> Programs for the structure-aware fuzzers.
//
// decode() turns every byte string into a valid Program: no input is
// rejected. One byte picks the op (and its CPU), the following bytes its
// arguments. Handles are picked among the live ones, so frees and accesses
// hit real allocations most of the time and misuse (double free, stale
// handle, out-of-bounds access) some of the time; sizes, GFP masks, orders
// and cache flags come from tables shaped like a real workload (a
// WorkloadProfile, or the built-in one made from the bundled trace).
//
// encode() goes back: a Program (a trace window, a regression, a property
// failure) becomes bytes that decode to the same Program up to handle
// renumbering and cache renaming.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mm/mm.h"
#include "program/program.h"

namespace mmfuzz::analysis {
class WorkloadProfile;
}

namespace mmfuzz::fuzz {

// One fuzz target over the model: which ops its Programs use and the model
// they run on.
struct TargetSpec {
  const char* name;
  const char* description;
  std::uint64_t op_mask;  // bit per prog::OpKind
  mm::SlabVariant slab;
  bool slab_enabled;
  bool vmalloc;
  const char* checks;  // the invariants its Programs run with (`mmfuzz checks`)
};
// page_alloc, slub, slab, slob, vm, mm (the whole API).
std::span<const TargetSpec> model_targets();
const TargetSpec* find_target(std::string_view name);  // nullptr if none
// The kinds an op byte picks from, in order: the mask's kinds but `check`
// (an escape of its own), by OpKind number. Kinds added later come last, so
// the byte of an existing seed keeps naming the same kind.
std::vector<prog::OpKind> target_kinds(const TargetSpec& t);
// The machines an input may ask for: small, so a reset is cheap. The first
// is the 16 MiB single-zone machine "fuzz"; the others place RAM across the
// 4 GiB ZONE_DMA limit (ZONE_DMA and ZONE_NORMAL), split it over two NUMA
// nodes, reserve CMA, or all three, so that fallback between zones and
// nodes and MIGRATE_CMA pageblocks are reached. An input that starts with
// kMachinePrefix M runs on machine M % size; any other input on the first.
// A Program header states the machine (ram, ram_base, nodes, cma), so a
// crash's Program replays on it.
struct FuzzMachine {
  const char* name;
  std::uint64_t ram;
  std::uint64_t ram_base;
  unsigned nodes;
  std::uint64_t cma;
};
inline constexpr std::uint8_t kMachinePrefix = 0xfe;
std::span<const FuzzMachine> fuzz_machines();
// The machine a header states (index into fuzz_machines()); 0 when none
// other matches.
unsigned fuzz_machine_of(const prog::ProgramHeader& h);
void set_fuzz_machine(prog::ProgramHeader& h, unsigned machine);
// The configuration a model target boots on machine `machine`.
mm::MmConfig target_config(const TargetSpec& t, unsigned machine = 0);
// The same as a Program header (machine fuzz and the variant's RAM, nodes
// and CMA, the target's allocator, vmalloc and checks; version 2, resolved).
// The harness adds its exec options.
prog::ProgramHeader target_header(const TargetSpec& t, unsigned machine = 0);

// Sampler tables: 256-entry lookup tables (a byte indexes them), filled in
// proportion to the workload's weights.
struct DecodeTables {
  std::vector<std::uint64_t> kmalloc_size;
  std::vector<std::uint64_t> cache_size;
  std::vector<std::uint32_t> slab_gfp;
  std::vector<std::uint32_t> page_gfp;
  std::vector<std::uint8_t> order;
  std::vector<std::uint64_t> vmalloc_size;
  std::vector<std::uint32_t> cache_flags;

  static DecodeTables from_profile(const analysis::WorkloadProfile& p);
  // From the bundled arm64 6.1 boot trace (fuzz/default_tables.cpp).
  static const DecodeTables& builtin();
  // What a fuzz process decodes with: MMFUZZ_PROFILE's profile (from
  // `mmfuzz profile`) when set, else builtin(). Throws mm::ConfigError for a
  // profile it cannot read.
  static DecodeTables from_env();
};

struct DecodeOptions {
  std::size_t max_ops = 256;
  unsigned nr_cpus = 2;
};

// Per op of the decoded Program: true when the decoder meant it as misuse
// (a stale or unbound handle, an access past the end).
struct Decoded {
  prog::Program program;  // its header states the machine when it is not the first
  std::vector<bool> misuse;
  unsigned machine = 0;  // index into fuzz_machines()
};

Decoded decode(std::span<const std::uint8_t> data, const TargetSpec& t, const DecodeTables& tab,
               const DecodeOptions& opts = {});
std::vector<std::uint8_t> encode(const prog::Program& p, const TargetSpec& t,
                                 const DecodeTables& tab, const DecodeOptions& opts = {});

}  // namespace mmfuzz::fuzz
