#include "shrink/regression.h"

#include <fmt/format.h>

#include <cctype>

#include "program/differential.h"
#include "program/executor.h"
#include "program/text.h"
#include "shrink/runner.h"

namespace mmfuzz::shrink {

namespace {

std::string identifier(const std::string& s) {
  std::string out;
  for (const char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "R" + out;
  return out;
}

}  // namespace

std::string gtest_source(const prog::Program& p, const std::string& name,
                         const std::string& origin) {
  const std::string text = prog::print_program(p);
  std::string delim = "mmfuzz";
  while (text.find(")" + delim + "\"") != std::string::npos) delim += "_";
  const std::string sig = p.header.expect.empty() ? "" : p.header.expect.front();
  return fmt::format(
      R"(// Regression test written by `mmfuzz shrink` from {origin}:
// the Program fires its signature alone, under the model and checks its
// header states. A test of a checker: it must keep catching this.
#include <gtest/gtest.h>

#include <algorithm>

#include "shrink/regression.h"

namespace {{

constexpr const char* kSignature = "{sig}";
constexpr const char* kProgram = R"{delim}({text}){delim}";

}}  // namespace

TEST(Regression, {id}) {{
  const auto r = mmfuzz::shrink::run_regression(kProgram, "{id}");
  if (r.skipped) GTEST_SKIP() << r.why;  // a planted defect this build lacks
  EXPECT_NE(std::find(r.signatures.begin(), r.signatures.end(), kSignature), r.signatures.end())
      << kSignature << " no longer fires";
}}
)",
      fmt::arg("origin", origin), fmt::arg("sig", sig), fmt::arg("delim", delim),
      fmt::arg("text", text), fmt::arg("id", identifier(name)));
}

RegressionRun run_regression(const char* program_text, const char* name) {
  const prog::Program p = prog::parse_program(program_text, name);
  RegressionRun r;
  try {
    p.header.mm_config();
    for (const auto& c : prog::diff_configs(p.header)) c.header.mm_config();
  } catch (const mm::ConfigError& e) {
    r.skipped = true;
    r.why = e.what();
    return r;
  }
  const prog::Verdict v = run_fresh(p);  // differential under a diff: header
  for (const auto& f : v.findings) r.signatures.push_back(f.violation.signature());
  return r;
}

}  // namespace mmfuzz::shrink
