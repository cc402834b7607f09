#include "mm/types.h"

#include <cctype>
#include <charconv>

namespace mmfuzz::mm {

std::uint64_t int_sqrt(std::uint64_t x) {
  if (x < 2) return x;
  std::uint64_t lo = 1, hi = std::uint64_t{1} << 32;
  while (hi - lo > 1) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    if (mid * mid <= x)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

std::uint64_t parse_number(const std::string& text) {
  const char* b = text.data();
  const char* e = b + text.size();
  int base = 10;
  if (text.size() > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
    b += 2;
    base = 16;
  }
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(b, e, v, base);
  if (b == e || ec != std::errc() || p != e) throw ConfigError("not a number: '" + text + "'");
  return v;
}

std::uint64_t parse_size(const std::string& text) {
  if (text.empty()) throw ConfigError("empty size");
  std::string num = text;
  std::uint64_t mult = 1;
  if (!(text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))) {
    char last = static_cast<char>(std::toupper(static_cast<unsigned char>(text.back())));
    std::string rest = text.substr(0, text.size() - 1);
    if (last == 'B' && !rest.empty()) {  // "1GB", "1GiB" is not accepted
      last = static_cast<char>(std::toupper(static_cast<unsigned char>(rest.back())));
      rest.pop_back();
    }
    switch (last) {
      case 'K':
        mult = SZ_1K;
        num = rest;
        break;
      case 'M':
        mult = SZ_1M;
        num = rest;
        break;
      case 'G':
        mult = SZ_1G;
        num = rest;
        break;
      case 'T':
        mult = SZ_1G * 1024;
        num = rest;
        break;
      default:
        break;
    }
  }
  std::uint64_t v;
  try {
    v = parse_number(num);
  } catch (const ConfigError&) {
    throw ConfigError("not a size: '" + text + "' (use e.g. 1G, 512M, 64K or a byte count)");
  }
  if (mult != 1 && v > (~std::uint64_t{0}) / mult)
    throw ConfigError("size too large: '" + text + "'");
  return v * mult;
}

}  // namespace mmfuzz::mm
