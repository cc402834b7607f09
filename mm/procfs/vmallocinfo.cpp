// /proc/vmallocinfo (mm/vmalloc.c, 6.1: s_show(), show_numa_info(),
// show_purge_info()).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

namespace {

// show_numa_info(): pages per node, for areas whose page array is complete.
void show_numa_info(std::string& m, const Mm& mm, const vm_struct& v) {
  if (v.flags & VM_UNINITIALIZED) return;
  std::vector<unsigned> counters(mm.page_alloc.node_data.size(), 0);
  const std::size_t n = std::min<std::size_t>(v.nr_pages, v.pages.size());
  for (std::size_t i = 0; i < n; ++i) {
    const pfn_t pfn = v.pages[i];
    if (!mm.pfn_valid(pfn)) continue;
    const std::size_t nid = mm.pfn_to_page(pfn).nid;
    if (nid >= counters.size()) counters.resize(nid + 1, 0);
    ++counters[nid];
  }
  for (std::size_t nid = 0; nid < counters.size(); ++nid)
    if (counters[nid]) seq_printf(m, " N%zu=%u", nid, counters[nid]);
}

}  // namespace

std::string vmallocinfo(const Mm& mm) {
  std::string m;
  const auto& busy = mm.vmalloc.busy();
  for (const auto& [start, va] : busy) {
    if (!va.vm) continue;  // being torn down (the model has no vm_map_ram areas)
    const vm_struct& v = *va.vm;
    seq_printf(m, "0x%016llx-0x%016llx %7lld", static_cast<unsigned long long>(v.addr),
               static_cast<unsigned long long>(v.addr + v.size), static_cast<long long>(v.size));
    if (!v.caller.empty()) seq_printf(m, " %s", v.caller.c_str());
    if (v.nr_pages) seq_printf(m, " pages=%d", static_cast<int>(v.nr_pages));
    if (v.phys_addr) seq_printf(m, " phys=0x%016llx", static_cast<unsigned long long>(v.phys_addr));
    if (v.flags & VM_IOREMAP) m += " ioremap";
    if (v.flags & VM_ALLOC) m += " vmalloc";
    if (v.flags & VM_MAP) m += " vmap";
    if (v.flags & VM_USERMAP) m += " user";
    if (v.flags & VM_DMA_COHERENT) m += " dma-coherent";
    if (v.pages_vmalloced) m += " vpages";
    show_numa_info(m, mm, v);
    m += '\n';
  }
  // show_purge_info(), after the last busy area. 6.1 merges adjacent lazily
  // freed areas in the purge tree (merge_or_add_vmap_area()), so adjacent
  // entries print as one.
  if (busy.empty()) return m;
  const auto& purge = mm.vmalloc.purge_list();
  for (auto it = purge.begin(); it != purge.end();) {
    const vaddr_t s = it->second.va_start;
    vaddr_t e = it->second.va_end;
    for (++it; it != purge.end() && it->second.va_start == e; ++it) e = it->second.va_end;
    seq_printf(m, "0x%016llx-0x%016llx %7lld unpurged vm_area\n",
               static_cast<unsigned long long>(s), static_cast<unsigned long long>(e),
               static_cast<long long>(e - s));
  }
  return m;
}

}  // namespace mmfuzz::mm::procfs
