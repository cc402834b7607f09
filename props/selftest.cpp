#include "props/selftest.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "program/text.h"

namespace mmfuzz::props {

namespace {

// Unlike RapidCheck's default listener, does not ask the user to reproduce
// the failure this test wanted.
struct Quiet : rc::detail::TestListener {
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void expect_failure_with_program(const std::function<void()>& property, const mm::MmConfig& cfg,
                                 std::string_view invariant) {
  // The failure comes from a planted defect: builds without them (the clang
  // preset) have nothing to find.
  if (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(t->test_suite_name()) + "." + t->name();
  const std::string dir = ::testing::TempDir() + "mmfuzz-props-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  ::setenv("MMFUZZ_PROP_OUT", dir.c_str(), 1);
  rc::detail::TestParams params;
  params.seed = 20261121;
  // Every shrink step boots a model: shrinking would cost this test ~15 s.
  // The Program saved is the last failing run's either way (RapidCheck
  // reports the last failing shrink), so the mechanism is the same.
  params.disableShrinking = true;
  rc::detail::TestMetadata meta;
  meta.id = meta.description = name;
  Quiet listener;
  const auto result = rc::detail::checkProperty(rc::detail::toProperty([&] { property(); }), meta,
                                                params, listener);
  ::unsetenv("MMFUZZ_PROP_OUT");

  ASSERT_TRUE(result.template is<rc::detail::FailureResult>()) << "the property did not fail";
  const std::string& why = result.template get<rc::detail::FailureResult>().description;
  const std::string path = dir + "/" + name + ".trace";
  const std::string text = read_text(path);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(text.empty()) << "no Program saved to " << path;
  EXPECT_EQ(text.rfind("# mmfuzz program v2\n", 0), 0u) << "the Program states no model";
  EXPECT_NE(why.find(text), std::string::npos) << "the failure lacks the saved Program:\n" << why;
  EXPECT_NE(why.find("mmfuzz replay"), std::string::npos) << why;
  EXPECT_NE(why.find(invariant), std::string::npos) << why;

  const prog::Program p = prog::parse_program(text, path);
  // Its header alone boots the model and checks as the property did.
  EXPECT_EQ(p.header.mm_config().machine.ram_size, cfg.machine.ram_size);
  const prog::Verdict v = prog::Executor::run(p, p.header.mm_config(), p.header.exec_options());
  bool found = false;
  for (const auto& f : v.findings) found = found || f.violation.invariant == invariant;
  EXPECT_TRUE(found) << "replaying the saved Program (" << p.ops.size() << " ops) did not find "
                     << invariant;
}

}  // namespace mmfuzz::props
