#include <algorithm>
#include <cstdio>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"

namespace mmfuzz::mm::procfs {

// r_show(): two spaces of indent per depth, addresses zero-padded to 8 hex
// digits (wider ones print in full).
std::string iomem(const Mm& mm) {
  std::string m;
  char buf[64];
  for (const IomemLine& l : mm.iomem) {
    m.append(static_cast<std::size_t>(std::max(l.depth, 0)) * 2, ' ');
    std::snprintf(buf, sizeof buf, "%08llx-%08llx : ", static_cast<unsigned long long>(l.start),
                  static_cast<unsigned long long>(l.end));
    m += buf;
    m += l.name;
    m += '\n';
  }
  return m;
}

}  // namespace mmfuzz::mm::procfs
