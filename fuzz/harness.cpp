#include "fuzz/harness.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "program/report.h"
#include "program/text.h"
#include "trace/source.h"

namespace mmfuzz::fuzz {

namespace {

std::function<void(const Outcome&)>& crash_handler() {
  static std::function<void(const Outcome&)> h = [](const Outcome&) { std::abort(); };
  return h;
}

std::function<void(const Outcome&)>& program_handler() {
  static std::function<void(const Outcome&)> h = [](const Outcome&) {};
  return h;
}

constexpr std::string_view kProgramHeader = "# mmfuzz program";

// MMFUZZ_REACH=<file>: the model's event counters summed over every input
// (beyond each machine's boot), written as JSON at exit, so that a libFuzzer
// or AFL++ campaign's reach compares with `mmfuzz prop`'s reach.json
// (bench/prop_compare.sh). Off, nothing is counted.
struct ReachLog {
  std::string path;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::uint64_t executions = 0;
  std::array<std::uint64_t, mm::NR_VM_EVENT_ITEMS> events{};
};

ReachLog* reach_log() {
  static ReachLog* log = [] {
    const char* path = std::getenv("MMFUZZ_REACH");
    if (!path || !*path) return static_cast<ReachLog*>(nullptr);
    auto* l = new ReachLog{path};
    std::atexit([] {
      const ReachLog& r = *reach_log();
      nlohmann::json events = nlohmann::json::object();
      for (unsigned i = 0; i < mm::NR_VM_EVENT_ITEMS; ++i)
        if (r.events[i]) events[mm::vm_event_name(static_cast<mm::vm_event_item>(i))] = r.events[i];
      const std::chrono::duration<double> secs = std::chrono::steady_clock::now() - r.start;
      const nlohmann::json j = {
          {"seconds", secs.count()}, {"executions", r.executions}, {"events", events}};
      // Written whole or not at all: to a temporary name, then renamed.
      const std::string tmp = r.path + ".tmp";
      std::FILE* f = std::fopen(tmp.c_str(), "w");
      const bool ok = f && std::fputs((j.dump(1) + "\n").c_str(), f) >= 0;
      if ((f && std::fclose(f) != 0) || !ok || std::rename(tmp.c_str(), r.path.c_str()) != 0) {
        std::remove(tmp.c_str());
        std::fprintf(stderr, "mmfuzz: MMFUZZ_REACH: cannot write %s\n", r.path.c_str());
      }
    });
    return l;
  }();
  return log;
}

void add_reach(const mm::Mm& snap, const mm::Mm& work) {
  ReachLog* r = reach_log();
  if (!r) return;
  ++r->executions;
  for (unsigned i = 0; i < mm::NR_VM_EVENT_ITEMS; ++i)
    r->events[i] += work.events().event[i] - snap.events().event[i];
}

}  // namespace

prog::ExecOptions HarnessOptions::default_exec_options() {
  prog::ExecOptions o;
  o.mode = prog::CheckMode::incremental;
  o.check_every = 0;
  o.capture_stacks = false;  // the Program text is the reproducer
  o.max_findings = 16;
  o.final_sweep = false;    // an explicit `check` op sweeps
  o.record_misuse = false;  // misuse is the Program's, not a crash
  o.misuse_writes = false;  // nor is what a misused write leaves in free memory
  return o;
}

Harness::Harness(const TargetSpec& target, HarnessOptions opts)
    : target_(target), opts_(std::move(opts)), tables_(DecodeTables::from_env()) {
  prog::ProgramHeader header = target_header(target);
  opts_.exec.checks = opts_.checks.empty() ? target_.checks : opts_.checks;
  header.set_exec_options(opts_.exec);
  std::string plant = opts_.planted;
  if (plant.empty())
    if (const char* e = std::getenv("MMFUZZ_PLANT")) plant = e;
  if (!plant.empty()) {
    const auto d = mm::parse_planted_defect(plant);
    if (!d) throw mm::ConfigError("unknown planted defect '" + plant + "'");
    header.planted = *d;
    plant_override_ = true;
  }
  // Every machine runs with the same checks and plant; only the machine differs.
  machines_.resize(fuzz_machines().size());
  for (unsigned i = 0; i < machines_.size(); ++i) {
    machines_[i].header = header;
    set_fuzz_machine(machines_[i].header, i);
    machines_[i].header = machines_[i].header.resolved();
  }
  machine(0);
}

Harness::~Harness() = default;

void Harness::reset() {
  Machine& m = machines_[0];
  m.mm->restore_from(*m.snap);
}

Outcome Harness::classify(Outcome o) const {
  for (std::size_t i = 0; i < o.verdict.findings.size(); ++i)
    if (o.verdict.findings[i].violation.kind == inv::ViolationKind::invariant)
      o.crashes.push_back(i);
  return o;
}

Harness::Machine& Harness::machine(unsigned i) {
  Machine& m = machines_[i];
  if (!m.mm) {
    const mm::MmConfig cfg = m.header.mm_config();
    m.snap = std::make_unique<mm::Mm>(cfg);
    m.mm = std::make_unique<mm::Mm>(cfg);
  }
  return m;
}

Outcome Harness::execute(prog::Program p, unsigned machine_index) {
  Machine& m = machine(machine_index);
  Outcome o;
  {
    prog::Executor ex(*m.mm, p.strings, opts_.exec);
    for (const auto& op : p.ops) ex.step(op);
    o.verdict = ex.finish();
  }
  add_reach(*m.snap, *m.mm);
  // Restore at the end, not the start: what the Program made the model
  // allocate is freed within the same input, so libFuzzer's malloc/free
  // balance holds and it does not rerun every input looking for a leak.
  m.mm->restore_from(*m.snap);
  o.header = &m.header;
  o.program = std::move(p);
  return classify(std::move(o));
}

// A v2 Program whose header is not the harness's configuration: a model
// booted for it (slow, but only reproducers and regressions get here).
Outcome Harness::execute_own(prog::Program p, const prog::ProgramHeader& h) {
  Outcome o;
  try {
    o.verdict = prog::Executor::run(p, h.mm_config(), h.exec_options());
  } catch (const mm::ConfigError& e) {
    o.error = e.what();
    return o;
  }
  o.program = std::move(p);
  o.program.header = h;
  return classify(std::move(o));
}

Outcome Harness::run(std::span<const std::uint8_t> data) {
  const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  if (text.starts_with(kProgramHeader)) {
    // A reproducer or regression in Program text form runs as written.
    try {
      return run_program(prog::parse_program(std::string(text), "<input>"));
    } catch (const trace::InputError& e) {
      Outcome o;  // not a Program after all: nothing to run
      o.error = e.what();
      return o;
    }
  }
  Decoded d = decode(data, target_, tables_);
  return execute(std::move(d.program), d.machine);
}

Outcome Harness::run_program(prog::Program p) {
  if (p.header.version < 2 || !program_headers_) return execute(std::move(p));
  // The harness's own settings (MMFUZZ_PLANT, HarnessOptions) win over the
  // header's and are reported.
  prog::ProgramHeader h = p.header;
  std::vector<std::string> notes;
  const auto override = [&](const char* what, const std::string& given, const char* key,
                            auto&& set) {
    const std::string before = prog::header_value(h, key);
    set();
    if (prog::header_value(h, key) != before)
      notes.push_back(
          fmt::format("{} {} overrides the program's {}: {}", what, given, key, before));
  };
  if (plant_override_)
    override("MMFUZZ_PLANT", mm::planted_defect_name(header().planted), "planted",
             [&] { h.planted = header().planted; });
  if (!opts_.checks.empty())
    override("the harness's checks", opts_.checks, "checks", [&] { h.checks = opts_.checks; });
  // On a machine the harness has (booted then, if it was not), else booted for it.
  const unsigned k = fuzz_machine_of(h);
  Outcome o =
      h.same_run(machines_[k].header) ? execute(std::move(p), k) : execute_own(std::move(p), h);
  o.overrides = std::move(notes);
  return o;
}

void Harness::test_one_input(const std::uint8_t* data, std::size_t size) {
  const Outcome o = run({data, size});
  if (!o.error.empty() || !o.overrides.empty()) program_handler()(o);
  if (!o.crashed()) return;
  const std::string r = crash_report(o, target_.name);
  std::fwrite(r.data(), 1, r.size(), stderr);
  std::fflush(stderr);
  crash_handler()(o);
}

void Harness::set_crash_handler(std::function<void(const Outcome&)> h) {
  crash_handler() = std::move(h);
}

void Harness::set_program_handler(std::function<void(const Outcome&)> h) {
  program_handler() = std::move(h);
}

std::string crash_report(const Outcome& o, std::string_view target) {
  // The crash's findings, for the writer (report.h).
  prog::Verdict crash = o.verdict;
  crash.findings.clear();
  for (const std::size_t i : o.crashes) crash.findings.push_back(o.verdict.findings[i]);
  std::vector<std::string> sigs;
  for (const auto& f : crash.findings) {
    std::string s = f.violation.signature();
    if (std::find(sigs.begin(), sigs.end(), s) == sigs.end()) sigs.push_back(std::move(s));
  }
  const prog::StringTable& strings = o.program.strings;
  std::ostringstream out;
  out << "==MMFUZZ== crash in target " << target << ": " << o.crashes.size() << " violation(s)\n";
  for (const auto& s : sigs) out << "MMFUZZ-SIGNATURE: " << s << "\n";
  for (const auto& f : crash.findings) out << prog::finding_text(f, strings) << "\n";
  // The Program with what it ran with and what it crashed with: a
  // reproducer `mmfuzz replay` runs alone.
  prog::Program p = o.program;
  if (o.header) p.header = *o.header;
  if (o.header || p.header.target.empty()) p.header.target = target;
  p.header.version = prog::kProgramVersion;
  p.header.expect = sigs;
  out << "==MMFUZZ== program:\n";
  out << prog::print_program(p);
  out << "==MMFUZZ== end program\n";
  // The same findings for programs (ci/campaign.py): one line, last.
  nlohmann::json j = prog::verdict_json(crash, strings);
  j["schema"] = "mmfuzz-crash-1";
  j["target"] = target;
  j["signatures"] = sigs;
  out << "MMFUZZ-JSON: " << prog::dump_json(j) << "\n";
  return out.str();
}

}  // namespace mmfuzz::fuzz
