// The AFL++ custom mutator (fuzz/afl_mutator.cpp) through the entry points
// afl-fuzz calls: init refuses an unknown target, every output is within
// max_size and decodes, most outputs differ from their input, splices use
// the second input, and an empty input still yields bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <set>
#include <vector>

#include "fuzz/decoder.h"

extern "C" {
void* afl_custom_init(void* afl, unsigned int seed);
std::size_t afl_custom_fuzz(void* data, std::uint8_t* buf, std::size_t buf_size,
                            std::uint8_t** out_buf, std::uint8_t* add_buf, std::size_t add_buf_size,
                            std::size_t max_size);
void afl_custom_deinit(void* data);
const char* afl_custom_describe(void* data, std::size_t max_description_len);
}

namespace {

using namespace mmfuzz::fuzz;

TEST(AflMutator, InitNeedsAModelTarget) {
  unsetenv("MMFUZZ_AFL_TARGET");
  EXPECT_EQ(afl_custom_init(nullptr, 1), nullptr);
  setenv("MMFUZZ_AFL_TARGET", "trace_text", 1);
  EXPECT_EQ(afl_custom_init(nullptr, 1), nullptr);
  setenv("MMFUZZ_AFL_TARGET", "mm", 1);
  // A profile it cannot read: refused, as the fuzz targets refuse it.
  setenv("MMFUZZ_PROFILE", "/nonexistent/profile.json", 1);
  EXPECT_EQ(afl_custom_init(nullptr, 1), nullptr);
  unsetenv("MMFUZZ_PROFILE");
  void* m = afl_custom_init(nullptr, 1);
  ASSERT_NE(m, nullptr);
  EXPECT_STREQ(afl_custom_describe(m, 64), "mmfuzz-program");
  afl_custom_deinit(m);
}

TEST(AflMutator, MutatesProgramsWithinMaxSize) {
  setenv("MMFUZZ_AFL_TARGET", "slub", 1);
  void* m = afl_custom_init(nullptr, 7);
  ASSERT_NE(m, nullptr);
  const TargetSpec& t = *find_target("slub");
  std::mt19937_64 rng(3);
  std::vector<std::uint8_t> in(200), other(150);
  for (auto& b : in) b = static_cast<std::uint8_t>(rng());
  for (auto& b : other) b = static_cast<std::uint8_t>(rng());
  const std::size_t before = decode(in, t, DecodeTables::builtin()).program.ops.size();
  ASSERT_GT(before, 0u);
  int changed = 0;
  std::set<std::size_t> sizes;
  for (int i = 0; i < 200; ++i) {
    std::uint8_t* out = nullptr;
    const std::size_t max_size = 64 + static_cast<std::size_t>(i) * 8;
    const std::size_t n =
        afl_custom_fuzz(m, in.data(), in.size(), &out, i % 3 ? other.data() : nullptr,
                        i % 3 ? other.size() : 0, max_size);
    ASSERT_NE(out, nullptr);
    ASSERT_GT(n, 0u);
    ASSERT_LE(n, std::max(max_size, in.size()));
    const std::vector<std::uint8_t> got(out, out + n);
    changed += got != in;
    sizes.insert(n);
    decode(got, t, DecodeTables::builtin());  // any bytes decode; must not throw
  }
  EXPECT_GT(changed, 150);
  EXPECT_GT(sizes.size(), 10u);
  // An empty input still gives AFL++ something to run.
  std::uint8_t* out = nullptr;
  std::uint8_t none = 0;
  EXPECT_GT(afl_custom_fuzz(m, &none, 0, &out, nullptr, 0, 256), 0u);
  afl_custom_deinit(m);
}

}  // namespace
