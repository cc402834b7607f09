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

prog::ProgramHeader ProgramRun::header() const {
  prog::ProgramHeader h;
  h.version = prog::kProgramVersion;
  h.profile = cfg_.profile;
  h.machine = cfg_.machine.name == "small" ? "small" : "qemu-virt";
  h.ram = cfg_.machine.ram_size;
  h.ram_base = cfg_.machine.ram_base;
  h.cpus = cfg_.machine.nr_cpus;
  h.nodes = cfg_.machine.nr_nodes;
  h.cma = cfg_.machine.cma_size;
  h.slab_enabled = cfg_.slab.enabled;
  h.slab = cfg_.slab.variant;
  h.slub_debug = cfg_.slab.debug_flags;
  h.kmalloc_min = cfg_.slab.kmalloc_min_size;
  h.rodata_full = cfg_.rodata_full;
  h.vmalloc = cfg_.vmalloc;
  h.planted = cfg_.planted;
  h.set_exec_options(opts_);
  return h;
}

prog::Program ProgramRun::with_header() const {
  prog::Program p = b_.program();
  p.header = header();
  return p;
}

std::string ProgramRun::report(std::string_view why) const {
  return fmt::format("{}\nThe Program ({} ops) below; save it and run: mmfuzz replay PROGRAM\n{}",
                     why, b_.program().ops.size(), prog::print_program(with_header()));
}

std::string ProgramRun::save(std::string_view name) const {
  const char* dir = std::getenv("MMFUZZ_PROP_OUT");
  if (!dir || !*dir) return "";
  const std::string path = fmt::format("{}/{}.trace", dir, name);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << prog::print_program(with_header());
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
