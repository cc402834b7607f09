// The fuzz harness: one booted model per process, restored from its snapshot
// before every input (DESIGN rule 6), the byte string decoded into a Program
// and run through the one Executor with the checkers on. Every execution
// depends on its input alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/decoder.h"
#include "mm/mm.h"
#include "program/executor.h"
#include "program/program.h"

namespace mmfuzz::fuzz {

// What a harness found in one input.
struct Outcome {
  prog::Program program;  // as decoded (or as given)
  prog::Verdict verdict;
  // The violations that count as a crash: invariant violations, and misuse
  // reports at ops the decoder meant to be valid (a model false positive).
  std::vector<std::size_t> crashes;  // indices into verdict.findings
  bool crashed() const { return !crashes.empty(); }
  // What it ran with: the harness's header, or null when a v2 Program ran
  // under its own (program.header).
  const prog::ProgramHeader* header = nullptr;
  // A Program text that did not run: why (one line: a bad header, a config
  // this build cannot boot).
  std::string error;
  // Settings of the harness that replaced ones the Program's header states.
  std::vector<std::string> overrides;
};

struct HarnessOptions {
  // MMFUZZ_PLANT=<defect> in the environment when empty (fuzz self-test).
  // Set, it also overrides a v2 Program's planted defect.
  std::string planted;
  // The invariants to run (`mmfuzz checks`); empty: TargetSpec::checks.
  // Replaces exec.checks; set, it also overrides a v2 Program's.
  std::string checks;
  prog::ExecOptions exec = default_exec_options();
  static prog::ExecOptions default_exec_options();
};

class Harness {
 public:
  // Boots the target's model once and keeps it as the snapshot. Throws
  // mm::ConfigError for a planted defect the build does not have.
  explicit Harness(const TargetSpec& target, HarnessOptions opts = {});
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  const TargetSpec& target() const { return target_; }
  const mm::MmConfig& config() const { return machines_[0].mm->config; }
  // The run configuration as a Program header (crash reports print it).
  const prog::ProgramHeader& header() const { return machines_[0].header; }
  const DecodeTables& tables() const { return tables_; }

  // Decodes and runs one input.
  Outcome run(std::span<const std::uint8_t> data);
  // Runs a Program as given (regressions, reproducers): a v2 Program under
  // its header's model and checks (booted for it when they are not the
  // harness's), a v1 Program under the harness's.
  Outcome run_program(prog::Program p);
  // Off, every Program runs under the harness's configuration. Fuzzing turns
  // it off: a mutated header must not change the model or the checks (a
  // header that turns misuse writes on makes the Program's own scribbling a
  // "crash"). On by default; the targets turn it on only for files replayed.
  void set_program_headers(bool on) { program_headers_ = on; }

  // The libFuzzer / AFL++ entry: on a crash prints each report and the
  // Program in text form to stderr, then calls the crash handler (abort()
  // unless set_crash_handler() changed it).
  void test_one_input(const std::uint8_t* data, std::size_t size);
  static void set_crash_handler(std::function<void(const Outcome&)> h);
  // Called for a Program text input that did not run (Outcome::error) or
  // ran with overrides; default: ignored (fuzzing). Replaying a file, the
  // target prints them and exits 2 on an error.
  static void set_program_handler(std::function<void(const Outcome&)> h);

  // The restore cost: the model back to the snapshot's state. Every run
  // ends with one, so each input starts from the booted model.
  void reset();
  mm::Mm& model() { return *machines_[0].mm; }

 private:
  // One of fuzz_machines(): its header (what crash Programs state), its
  // model and the snapshot every input on it starts from. The first is
  // booted with the harness, the others on the first input that asks.
  struct Machine {
    prog::ProgramHeader header;
    std::unique_ptr<mm::Mm> mm, snap;
  };
  Machine& machine(unsigned i);  // booted
  Outcome execute(prog::Program p, unsigned machine = 0);
  Outcome execute_own(prog::Program p, const prog::ProgramHeader& h);
  Outcome classify(Outcome o) const;

  const TargetSpec& target_;
  HarnessOptions opts_;
  bool plant_override_ = false;  // opts.planted or MMFUZZ_PLANT given
  bool program_headers_ = true;
  std::vector<Machine> machines_;  // by fuzz_machines() index, sized at construction
  DecodeTables tables_;
};

// The crash report, for people first: "==MMFUZZ== crash in target T", a line
// "MMFUZZ-SIGNATURE: <signature>" per distinct signature, each crash finding
// as report.h writes it, the Program text between "==MMFUZZ== program:" and
// "==MMFUZZ== end program"; last, for programs, one line "MMFUZZ-JSON: {...}":
// verdict_json() of the crash findings with schema "mmfuzz-crash-1", the
// target and the signatures (ci/campaign.py reads it).
// The Program carries a v2 header: what it ran with (target, model, checks,
// planted defect) and the signatures as "# expect:" lines, so that
// `mmfuzz replay` reproduces it alone.
std::string crash_report(const Outcome& o, std::string_view target);

}  // namespace mmfuzz::fuzz
