// Structure-aware mutation for libFuzzer (LLVMFuzzerCustomMutator and
// LLVMFuzzerCustomCrossOver): inputs are decoded into Programs, mutated as
// Programs (insert, delete, duplicate, move ops, change an argument, splice
// a window of another input) and encoded back; the encoder drops ops that no
// longer make sense, which repairs what a mutation broke. Part of the time
// the bytes get libFuzzer's own mutations instead.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fuzz/decoder.h"

namespace mmfuzz::fuzz {

using ByteMutator = std::size_t (*)(std::uint8_t* data, std::size_t size, std::size_t max_size);

std::size_t mutate(std::uint8_t* data, std::size_t size, std::size_t max_size, unsigned seed,
                   const TargetSpec& t, const DecodeTables& tab, ByteMutator bytes);
std::size_t cross_over(const std::uint8_t* d1, std::size_t s1, const std::uint8_t* d2,
                       std::size_t s2, std::uint8_t* out, std::size_t max_out, unsigned seed,
                       const TargetSpec& t, const DecodeTables& tab);

}  // namespace mmfuzz::fuzz
