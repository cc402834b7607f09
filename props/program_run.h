// How the RapidCheck properties drive the model: every command appends its
// op to a Program (ProgramBuilder) and the one Executor runs it. Post-
// conditions read the model's state and the ops' results; nothing else
// operates on the model, so a failing property's counterexample is a Program
// that `mmfuzz replay` runs again (and the shrinker can shrink).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mm/mm.h"
#include "program/build.h"
#include "program/executor.h"
#include "program/header.h"

namespace mmfuzz::props {

class ProgramRun {
 public:
  ProgramRun(const mm::MmConfig& cfg, prog::ExecOptions opts);
  ProgramRun(const ProgramRun&) = delete;
  ProgramRun& operator=(const ProgramRun&) = delete;

  prog::ProgramBuilder& b() { return b_; }
  mm::Mm& mm() { return *mm_; }
  const prog::Executor& ex() const { return *ex_; }
  const prog::Program& program() const { return b_.program(); }

  // Runs the ops appended since the last call and returns the last one's
  // result. A checker finding fails the property.
  prog::OpResult step();
  // The final sweep; a finding fails the property.
  void finish();

  // The header that boots this model and checks as it does: the Program
  // printed with it replays alone (`mmfuzz replay PROGRAM`).
  prog::ProgramHeader header() const;
  prog::Program with_header() const;  // the Program so far, headed by header()
  // What a failure report says: why, how to replay, the whole Program.
  std::string report(std::string_view why) const;
  // Writes the Program to $MMFUZZ_PROP_OUT/<name>.trace (atomically) when the
  // variable is set; the path written, or "".
  std::string save(std::string_view name) const;

 private:
  void fail_on_findings();

  mm::MmConfig cfg_;
  prog::ExecOptions opts_;
  std::unique_ptr<mm::Mm> mm_;
  // The Executor holds the builder's string table: it is declared after the
  // builder (destroyed first) and the builder never moves.
  prog::ProgramBuilder b_;
  std::unique_ptr<prog::Executor> ex_;
  std::size_t ran_ = 0;
};

// Runs a property's body (its commands and teardown) on `run`. Any failure
// in it (RC_ASSERT, RC_FAIL, an exception from the model) fails the property
// with the Program appended (ProgramRun::report) and saves the Program
// (ProgramRun::save, named after the running test).
void with_program(ProgramRun& run, const std::function<void()>& body);

}  // namespace mmfuzz::props
