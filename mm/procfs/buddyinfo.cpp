#include <algorithm>
#include <cstdio>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

// frag_show(): one line per populated zone, nr_free blocks of each order.
std::string buddyinfo(const Mm& mm) {
  std::string m;
  const unsigned max_order = mm.page_alloc.max_order();
  for (const pglist_data& pgdat : mm.page_alloc.node_data) {
    for (const zone& z : pgdat.node_zones) {
      if (!z.populated_zone()) continue;
      seq_printf(m, "Node %d, zone %8s ", pgdat.node_id, z.name);
      for (unsigned order = 0; order < max_order; ++order)
        seq_printf(m, "%6llu ", static_cast<unsigned long long>(z.free_area_[order].nr_free));
      m += '\n';
    }
  }
  return m;
}

}  // namespace mmfuzz::mm::procfs
