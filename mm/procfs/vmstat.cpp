#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

// vmstat_show(): "name value" lines. The kernel's zone counters and
// pgalloc/pgfree the model keeps, then its event counters (mm/vm_event.h),
// which name allocator states rather than the kernel's own items. Per-order
// buddy counters stop at the profile's MAX_ORDER.
std::string vmstat(const Mm& mm) {
  std::string m;
  long nr_free = 0, nr_free_cma = 0;
  for (const pglist_data& pgdat : mm.page_alloc.node_data)
    for (const zone& z : pgdat.node_zones) {
      nr_free += z.zone_page_state(NR_FREE_PAGES);
      nr_free_cma += z.zone_page_state(NR_FREE_CMA_PAGES);
    }
  seq_printf(m, "nr_free_pages %ld\n", nr_free);
  seq_printf(m, "nr_free_cma %ld\n", nr_free_cma);
  seq_printf(m, "pgalloc %llu\n", static_cast<unsigned long long>(mm.page_alloc.pgalloc));
  seq_printf(m, "pgfree %llu\n", static_cast<unsigned long long>(mm.page_alloc.pgfree));
  const unsigned max_order = mm.page_alloc.max_order();
  for (unsigned i = 0; i < NR_VM_EVENT_ITEMS; ++i) {
    const auto item = static_cast<vm_event_item>(i);
    if (i < BUDDY_MERGE ? i - BUDDY_SPLIT >= max_order
                        : i < BUDDY_FALLBACK && i - BUDDY_MERGE >= max_order)
      continue;
    seq_printf(m, "%s %llu\n", vm_event_name(item),
               static_cast<unsigned long long>(mm.events()[item]));
  }
  return m;
}

}  // namespace mmfuzz::mm::procfs
