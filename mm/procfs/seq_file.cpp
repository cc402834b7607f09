#include "mm/procfs/seq_file.h"

#include <cstdarg>
#include <cstdio>

namespace mmfuzz::mm::procfs {

void seq_printf(std::string& m, const char* fmt, ...) {
  va_list ap;
  va_list ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  if (n > 0) {
    const std::size_t old = m.size();
    const std::size_t len = static_cast<std::size_t>(n);
    m.resize(old + len + 1);
    std::vsnprintf(m.data() + old, len + 1, fmt, ap2);
    m.resize(old + len);
  }
  va_end(ap2);
}

}  // namespace mmfuzz::mm::procfs
