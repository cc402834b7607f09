// A shrunk Program as a GoogleTest regression test: dropping the source in
// tests/regressions/ adds it (a CMake glob picks it up). The generated file
// includes only this header and gtest, so each one compiles in seconds.
#pragma once

#include <string>
#include <vector>

namespace mmfuzz::prog {
struct Program;
}

namespace mmfuzz::shrink {

// A test named `name` (made an identifier) that runs `p` from its text under
// its header and asserts that p.header.expect[0] fires; skipped when the
// build lacks the header's planted defect. `origin` says where it came from.
std::string gtest_source(const prog::Program& p, const std::string& name,
                         const std::string& origin);

// What a generated test runs: the Program text under its header, from a
// fresh boot. `skipped` (with why) when this build cannot boot its model
// (a planted defect it lacks). Throws what parse_program throws.
struct RegressionRun {
  bool skipped = false;
  std::string why;
  std::vector<std::string> signatures;  // of every finding, in order
};
RegressionRun run_regression(const char* program_text, const char* name);

}  // namespace mmfuzz::shrink
