// Basic types of the model. Every address the model hands out is a simulated
// arm64 address (physical or kernel virtual), never a host pointer.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace mmfuzz::mm {

using phys_addr_t = std::uint64_t;
using vaddr_t = std::uint64_t;  // arm64 kernel virtual address
using pfn_t = std::uint64_t;
using gfp_t = std::uint32_t;

// What alloc_pages() returns instead of a NULL struct page *.
inline constexpr pfn_t NO_PAGE = ~pfn_t{0};
inline constexpr int NUMA_NO_NODE = -1;

inline constexpr std::uint64_t SZ_1K = 1024;
inline constexpr std::uint64_t SZ_1M = 1024 * SZ_1K;
inline constexpr std::uint64_t SZ_1G = 1024 * SZ_1M;

// An impossible profile, machine or option: reported to the user, never a crash.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr std::uint64_t round_up(std::uint64_t x, std::uint64_t a) {
  return (x + a - 1) & ~(a - 1);
}
constexpr std::uint64_t round_down(std::uint64_t x, std::uint64_t a) {
  return x & ~(a - 1);
}
constexpr bool is_aligned(std::uint64_t x, std::uint64_t a) {
  return (x & (a - 1)) == 0;
}

// Kernel fls(): 1-based index of the most significant set bit, 0 for 0.
constexpr unsigned fls64(std::uint64_t x) {
  return x == 0 ? 0 : 64u - static_cast<unsigned>(__builtin_clzll(x));
}
constexpr std::uint64_t rounddown_pow_of_two(std::uint64_t x) {
  return x == 0 ? 0 : std::uint64_t{1} << (fls64(x) - 1);
}
// Integer square root as int_sqrt() computes it (floor).
std::uint64_t int_sqrt(std::uint64_t x);

// splitmix64 for the drivers of the model (workloads, benchmarks, fuzz
// decoders): the same sequence on every host, unlike std:: distributions.
// The model itself never draws random numbers.
struct SplitMix64 {
  std::uint64_t s = 0;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

// "1G", "512M", "64k", "0x40000000", "4096" -> bytes. Throws ConfigError.
std::uint64_t parse_size(const std::string& text);
// Hex or decimal number. Throws ConfigError.
std::uint64_t parse_number(const std::string& text);

}  // namespace mmfuzz::mm
