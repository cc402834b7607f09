#include <algorithm>
#include <cstdio>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"

namespace mmfuzz::mm::procfs {

namespace {

// show_val_kb(): the label carries its own padding; the value is in pages.
void show_val_kb(std::string& m, const Mm& mm, const char* label, unsigned long long pages) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%8llu kB\n", label, pages << (mm.profile.page_shift - 10));
  m += buf;
}

long global_zone_page_state(const Mm& mm, int item) {
  long x = 0;
  for (const pglist_data& pgdat : mm.page_alloc.node_data)
    for (const zone& z : pgdat.node_zones) x += z.zone_page_state(item);
  return std::max(x, 0L);
}

long global_node_page_state(const Mm& mm, int item) {
  long x = 0;
  for (const pglist_data& pgdat : mm.page_alloc.node_data)
    x += pgdat.vm_stat[static_cast<std::size_t>(item)];
  x = std::max(x, 0L);
  // The model keeps the slab counters in bytes, as their _B names say.
  if (item == NR_SLAB_RECLAIMABLE_B || item == NR_SLAB_UNRECLAIMABLE_B) x >>= mm.profile.page_shift;
  return x;
}

// si_mem_available(): free memory plus the page cache and reclaimable kernel
// memory that could be freed without swapping, keeping the low watermarks.
long si_mem_available(const Mm& mm) {
  unsigned long long wmark_low = 0;
  for (const pglist_data& pgdat : mm.page_alloc.node_data)
    for (const zone& z : pgdat.node_zones) wmark_low += z.low_wmark_pages();

  long available = global_zone_page_state(mm, NR_FREE_PAGES) -
                   static_cast<long>(mm.page_alloc.totalreserve_pages);

  auto pagecache = static_cast<unsigned long long>(global_node_page_state(mm, NR_ACTIVE_FILE) +
                                                   global_node_page_state(mm, NR_INACTIVE_FILE));
  pagecache -= std::min(pagecache / 2, wmark_low);
  available += static_cast<long>(pagecache);

  auto reclaimable =
      static_cast<unsigned long long>(global_node_page_state(mm, NR_SLAB_RECLAIMABLE_B) +
                                      global_node_page_state(mm, NR_KERNEL_MISC_RECLAIMABLE));
  available += static_cast<long>(reclaimable - std::min(reclaimable / 2, wmark_low));

  return std::max(available, 0L);
}

unsigned long long as_ull(long x) {
  return static_cast<unsigned long long>(x);
}

}  // namespace

// meminfo_proc_show(), restricted to the lines the model keeps state for.
std::string meminfo(const Mm& mm) {
  std::string m;
  const long sreclaimable = global_node_page_state(mm, NR_SLAB_RECLAIMABLE_B);
  const long sunreclaim = global_node_page_state(mm, NR_SLAB_UNRECLAIMABLE_B);

  show_val_kb(m, mm, "MemTotal:       ", mm.page_alloc.totalram_pages);
  show_val_kb(m, mm, "MemFree:        ", as_ull(global_zone_page_state(mm, NR_FREE_PAGES)));
  show_val_kb(m, mm, "MemAvailable:   ", as_ull(si_mem_available(mm)));
  show_val_kb(m, mm, "Slab:           ", as_ull(sreclaimable + sunreclaim));
  show_val_kb(m, mm, "SReclaimable:   ", as_ull(sreclaimable));
  show_val_kb(m, mm, "SUnreclaim:     ", as_ull(sunreclaim));
  // Already in kB: stacks need not be whole pages.
  char buf[64];
  std::snprintf(buf, sizeof buf, "KernelStack:    %8llu kB\n",
                as_ull(global_node_page_state(mm, NR_KERNEL_STACK_KB)));
  m += buf;
  show_val_kb(m, mm, "PageTables:     ", as_ull(global_node_page_state(mm, NR_PAGETABLE)));
  std::snprintf(
      buf, sizeof buf, "VmallocTotal:   %8llu kB\n",
      static_cast<unsigned long long>((mm.profile.vmalloc_end - mm.profile.vmalloc_start) >> 10));
  m += buf;
  show_val_kb(m, mm, "VmallocUsed:    ", mm.vmalloc.nr_vmalloc_pages);  // vmalloc_nr_pages()
  show_val_kb(m, mm, "CmaTotal:       ", mm.page_alloc.totalcma_pages);
  show_val_kb(m, mm, "CmaFree:        ", as_ull(global_zone_page_state(mm, NR_FREE_CMA_PAGES)));
  return m;
}

}  // namespace mmfuzz::mm::procfs
