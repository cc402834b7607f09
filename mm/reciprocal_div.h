// Division by a run-time constant as a multiply and two shifts (the kernel's
// lib/reciprocal_div.c, after Granlund and Montgomery). SLUB divides every
// object offset by the slot size this way (obj_to_index()); so does the model.
#pragma once

#include <cstdint>

namespace mmfuzz::mm {

struct reciprocal_value {
  std::uint32_t m = 0;
  std::uint8_t sh1 = 0, sh2 = 0;
};

// d > 0.
constexpr reciprocal_value reciprocal_value_of(std::uint32_t d) {
  // l = ceil(log2(d)); m = floor(2^32 * (2^l - d) / d) + 1.
  const int l = d == 1 ? 0 : 32 - __builtin_clz(d - 1);
  const std::uint64_t m = ((std::uint64_t{1} << 32) * ((std::uint64_t{1} << l) - d)) / d + 1;
  reciprocal_value r;
  r.m = static_cast<std::uint32_t>(m);
  r.sh1 = static_cast<std::uint8_t>(l > 1 ? 1 : l);
  r.sh2 = static_cast<std::uint8_t>(l > 1 ? l - 1 : 0);
  return r;
}

constexpr std::uint32_t reciprocal_divide(std::uint32_t a, reciprocal_value r) {
  const auto t = static_cast<std::uint32_t>((std::uint64_t{a} * r.m) >> 32);
  return (t + ((a - t) >> r.sh1)) >> r.sh2;
}

}  // namespace mmfuzz::mm
