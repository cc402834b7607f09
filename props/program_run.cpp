#include "props/program_run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "program/report.h"
#include "program/text.h"

namespace mmfuzz::props {

ProgramRun::ProgramRun(const mm::MmConfig& cfg, prog::ExecOptions opts)
    : cfg_(cfg),
      opts_(std::move(opts)),
      mm_(std::make_unique<mm::Mm>(cfg_)),
      ex_(std::make_unique<prog::Executor>(*mm_, b_.program().strings, opts_)) {}

prog::OpResult ProgramRun::step() {
  const auto& ops = b_.program().ops;
  prog::OpResult r;
  while (ran_ < ops.size()) {
    r = ex_->step(ops[ran_++]);
    fail_on_findings();
  }
  return r;
}

void ProgramRun::finish() {
  step();
  const prog::Verdict v = ex_->finish();
  if (!v.ok())
    throw rc::detail::CaseResult(
        rc::detail::CaseResult::Type::Failure,
        "checker finding:\n" + prog::finding_text(v.findings.front(), b_.program().strings));
}

void ProgramRun::fail_on_findings() {
  if (!ex_->nr_violations()) return;
  throw rc::detail::CaseResult(
      rc::detail::CaseResult::Type::Failure,
      "checker finding:\n" + prog::finding_text(ex_->findings().front(), b_.program().strings));
}

std::string ProgramRun::replay_flags() const {
  const mm::MachineConfig& m = cfg_.machine;
  const mm::MachineConfig dflt = m.name == "small" ? mm::small_machine() : mm::default_machine();
  std::string s = m.name == "small" ? "--small" : "";
  if (m.ram_size != dflt.ram_size) s += fmt::format(" --ram {}M", m.ram_size >> 20);
  if (m.nr_cpus != dflt.nr_cpus) s += fmt::format(" --cpus {}", m.nr_cpus);
  if (m.nr_nodes != dflt.nr_nodes) s += fmt::format(" --nodes {}", m.nr_nodes);
  if (cfg_.slab.variant) s += fmt::format(" --slab {}", mm::slab_variant_name(*cfg_.slab.variant));
  if (const mm::slab_flags_t f = cfg_.slab.debug_flags) {
    s += " --slub-debug ";
    if (f & mm::SLAB_CONSISTENCY_CHECKS) s += 'F';
    if (f & mm::SLAB_RED_ZONE) s += 'Z';
    if (f & mm::SLAB_POISON) s += 'P';
    if (f & mm::SLAB_STORE_USER) s += 'U';
  }
  if (cfg_.planted != mm::PlantedDefect::none)
    s += fmt::format(" --plant {}", mm::planted_defect_name(cfg_.planted));
  if (opts_.check_every) s += fmt::format(" --check-every {}", opts_.check_every);
  if (opts_.checks != "all") s += fmt::format(" --checks '{}'", opts_.checks);
  return s;
}

std::string ProgramRun::report(std::string_view why) const {
  return fmt::format(
      "{}\nThe Program ({} ops) below; save it and run: mmfuzz replay {} PROGRAM\n{}", why,
      b_.program().ops.size(), replay_flags(), prog::print_program(b_.program()));
}

std::string ProgramRun::save(std::string_view name) const {
  const char* dir = std::getenv("MMFUZZ_PROP_OUT");
  if (!dir || !*dir) return "";
  const std::string path = fmt::format("{}/{}.trace", dir, name);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << prog::print_program(b_.program());
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return "";
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return "";
  }
  return path;
}

namespace {

std::string test_name() {
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  return t ? fmt::format("{}.{}", t->test_suite_name(), t->name()) : "property";
}

[[noreturn]] void fail_with_program(const ProgramRun& run, const std::string& why) {
  const std::string path = run.save(test_name());
  std::string text = why;
  if (const char* dir = std::getenv("MMFUZZ_PROP_OUT"); dir && *dir)
    text += path.empty() ? fmt::format("\n(could not write the Program to {})", dir)
                         : fmt::format("\nProgram saved to {}", path);
  throw rc::detail::CaseResult(rc::detail::CaseResult::Type::Failure, run.report(text));
}

}  // namespace

void with_program(ProgramRun& run, const std::function<void()>& body) {
  try {
    body();
  } catch (const rc::detail::CaseResult& r) {
    if (r.type != rc::detail::CaseResult::Type::Failure) throw;
    fail_with_program(run, r.description);
  } catch (const rc::GenerationFailure&) {
    throw;
  } catch (const std::exception& e) {
    fail_with_program(run, std::string("exception: ") + e.what());
  }
}

}  // namespace mmfuzz::props
