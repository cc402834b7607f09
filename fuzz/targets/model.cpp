// A model fuzz target: MMFUZZ_TARGET_NAME picks the subsystem (page_alloc,
// slub, slab, slob, vm, mm). The same source builds for libFuzzer, AFL++
// (libAFLDriver) and the plain driver.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "fuzz/harness.h"
#include "fuzz/mutator.h"

#ifndef MMFUZZ_TARGET_NAME
#error "MMFUZZ_TARGET_NAME must name a model target"
#endif

using mmfuzz::fuzz::Harness;

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);
// The plain driver (driver_main.cpp): the file being replayed, null while
// generating. Absent with libFuzzer and AFL++.
extern "C" __attribute__((weak)) const char* mmfuzz_driver_current_file();

namespace {

// Without the plain driver: true when every argument that is no flag names a
// regular file (libFuzzer then runs them once each instead of fuzzing).
bool g_files_only = false;

// The file being replayed, or null while fuzzing.
const char* replayed_file() {
  if (mmfuzz_driver_current_file) return mmfuzz_driver_current_file();
  return g_files_only ? "<file>" : nullptr;
}

// Replaying a file, a Program text that cannot run (a bad header, a planted
// defect this build lacks) is a usage error: one line, exit 2; the overrides
// of its header are reported. Fuzzing, both are quiet.
void on_program(const mmfuzz::fuzz::Outcome& o) {
  const char* file = replayed_file();
  if (!file) return;
  for (const auto& n : o.overrides)
    std::fprintf(stderr, "fuzz_%s: %s\n", MMFUZZ_TARGET_NAME, n.c_str());
  if (o.error.empty()) return;
  // The parser names the input "<input>": name the file instead.
  const std::string_view in = "<input>";
  const std::string_view e = o.error;
  if (e.starts_with(in))
    std::fprintf(stderr, "fuzz_%s: %s%s\n", MMFUZZ_TARGET_NAME, file, o.error.c_str() + in.size());
  else
    std::fprintf(stderr, "fuzz_%s: %s: %s\n", MMFUZZ_TARGET_NAME, file, o.error.c_str());
  std::exit(2);
}

Harness& harness() {
  static Harness* h = [] {
    const auto* t = mmfuzz::fuzz::find_target(MMFUZZ_TARGET_NAME);
    Harness::set_program_handler(on_program);
    try {
      return new Harness(*t);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_%s: %s\n", MMFUZZ_TARGET_NAME, e.what());
      std::exit(2);
    }
  }();
  return *h;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  int files = 0, others = 0;
  for (int i = 1; i < *argc; ++i) {
    const char* a = (*argv)[i];
    struct stat st {};
    if (a[0] == '-') continue;
    (::stat(a, &st) == 0 && S_ISREG(st.st_mode) ? files : others) += 1;
  }
  g_files_only = files > 0 && others == 0;
  harness();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Harness& h = harness();
  // A replayed file's Program runs under its header; a fuzzed one does not.
  h.set_program_headers(replayed_file() != nullptr);
  h.test_one_input(data, size);
  return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned seed) {
  Harness& h = harness();
  return mmfuzz::fuzz::mutate(data, size, max_size, seed, h.target(), h.tables(),
                              &LLVMFuzzerMutate);
}

extern "C" std::size_t LLVMFuzzerCustomCrossOver(const std::uint8_t* d1, std::size_t s1,
                                                 const std::uint8_t* d2, std::size_t s2,
                                                 std::uint8_t* out, std::size_t max_out,
                                                 unsigned seed) {
  Harness& h = harness();
  return mmfuzz::fuzz::cross_over(d1, s1, d2, s2, out, max_out, seed, h.target(), h.tables());
}
