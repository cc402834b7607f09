// The AFL++ custom mutator (AFL_CUSTOM_MUTATOR_LIBRARY): the same Program
// mutations libFuzzer's LLVMFuzzerCustomMutator makes (fuzz/mutator.h) and,
// when AFL++ offers a second input, the same splice. AFL++ does not say which
// target it fuzzes, so MMFUZZ_AFL_TARGET names it (page_alloc, slub, slab,
// slob, vm or mm); MMFUZZ_PROFILE shapes its tables as it shapes the
// target's. AFL++'s own byte mutations (havoc) run beside it unless
// AFL_CUSTOM_MUTATOR_ONLY is set.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/decoder.h"
#include "fuzz/mutator.h"

namespace {

struct AflMutator {
  const mmfuzz::fuzz::TargetSpec* target = nullptr;
  mmfuzz::fuzz::DecodeTables tables;
  unsigned seed = 0;
  std::vector<std::uint8_t> out;  // AFL++ reads *out_buf until the next call
};

}  // namespace

extern "C" {

// afl is AFL++'s afl_state_t, which the mutator does not need. NULL (AFL++
// then stops with an error) when MMFUZZ_AFL_TARGET names no model target.
void* afl_custom_init(void* /*afl*/, unsigned int seed) {
  const char* name = std::getenv("MMFUZZ_AFL_TARGET");
  const auto* t = name ? mmfuzz::fuzz::find_target(name) : nullptr;
  if (!t) {
    std::fprintf(stderr,
                 "mmfuzz AFL++ mutator: MMFUZZ_AFL_TARGET must name a model target "
                 "(page_alloc, slub, slab, slob, vm, mm), not '%s'\n",
                 name ? name : "");
    return nullptr;
  }
  try {
    auto m = std::make_unique<AflMutator>();
    m->target = t;
    m->tables = mmfuzz::fuzz::DecodeTables::from_env();
    m->seed = seed;
    return m.release();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mmfuzz AFL++ mutator: %s\n", e.what());
    return nullptr;
  }
}

// One mutation of buf (a splice with add_buf when AFL++ gives one, half the
// time); the result stays valid until the next call.
std::size_t afl_custom_fuzz(void* data, std::uint8_t* buf, std::size_t buf_size,
                            std::uint8_t** out_buf, std::uint8_t* add_buf, std::size_t add_buf_size,
                            std::size_t max_size) {
  auto& m = *static_cast<AflMutator*>(data);
  const unsigned seed = m.seed++;
  m.out.assign(std::max(max_size, buf_size), 0);
  std::size_t n = 0;
  if (add_buf && add_buf_size && (seed & 1))
    n = mmfuzz::fuzz::cross_over(buf, buf_size, add_buf, add_buf_size, m.out.data(), max_size, seed,
                                 *m.target, m.tables);
  if (!n) {
    std::memcpy(m.out.data(), buf, buf_size);
    n = mmfuzz::fuzz::mutate(m.out.data(), buf_size, max_size, seed, *m.target, m.tables, nullptr);
  }
  if (!n) {  // nothing the target can say: hand back the input
    n = std::min(buf_size, max_size);
    std::memcpy(m.out.data(), buf, n);
  }
  *out_buf = m.out.data();
  return n;
}

void afl_custom_deinit(void* data) {
  delete static_cast<AflMutator*>(data);
}

// What afl-fuzz's UI shows for the stage.
const char* afl_custom_describe(void* /*data*/, std::size_t /*max_description_len*/) {
  return "mmfuzz-program";
}

}  // extern "C"
