// Runs shrink candidates: a Program's ops under a header, through the one
// Executor (a header with `diff:`: the differential run,
// program/differential.h), stopping at the first finding that decides. Each Runner keeps a
// booted model per configuration and restores it from its snapshot before
// every candidate (the fuzzers' reset), so no candidate boots.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "program/executor.h"
#include "program/program.h"

namespace mmfuzz::shrink {

// What a candidate must do to count as the same failure.
struct Goal {
  std::string signature;  // inv::Violation::signature()
  // Signatures the input itself fired before its first `signature`: a
  // candidate may fire these first; any other signature first is another bug.
  std::set<std::string> allowed_before;
};

enum class Outcome : std::uint8_t {
  fires,  // the goal's signature fired, after only allowed ones
  other,  // another signature fired first: a different bug (rejected)
  clean,  // nothing decided (or the configuration does not boot)
};

class Runner {
 public:
  explicit Runner(const prog::StringTable& strings) : strings_(strings) {}
  // Runs base[idx[0]], base[idx[1]], ... (all of base when idx is null).
  Outcome run(const prog::ProgramHeader& h, std::span<const prog::Op> base,
              const std::vector<std::uint32_t>* idx, const Goal& goal);

 private:
  struct Model {
    std::unique_ptr<mm::Mm> snap, work;
    bool dirty = false;
  };
  Model* model(const prog::ProgramHeader& h);
  Outcome run_diff(const prog::ProgramHeader& h, std::span<const prog::Op> base,
                   const std::vector<std::uint32_t>* idx, const Goal& goal);

  const prog::StringTable& strings_;
  std::map<std::string, Model> models_;  // by the header's model keys
};

// The findings of a whole run from a fresh boot, as `mmfuzz replay` gets
// them (the final check of a result); for a header with `diff:`, the
// differential run's one finding.
prog::Verdict run_fresh(const prog::Program& p);

}  // namespace mmfuzz::shrink
