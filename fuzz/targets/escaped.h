// The parser targets' failure messages: control characters as \xNN, so a
// message shows what differs.
#pragma once

#include <string>
#include <string_view>

namespace mmfuzz::fuzz {

inline std::string escaped(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace mmfuzz::fuzz
