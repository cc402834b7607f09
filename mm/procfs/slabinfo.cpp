#include <algorithm>
#include <vector>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

// slabinfo_show(): version 2.1, caches in list order (newest first).
std::string slabinfo(const Mm& mm) {
  std::string m;
  m += "slabinfo - version: 2.1\n";
  m += "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>";
  m += " : tunables <limit> <batchcount> <sharedfactor>";
  m += " : slabdata <active_slabs> <num_slabs> <sharedavail>\n";
  const Slab& sl = mm.slab;
  if (!sl.initialized()) return m;
  for (cache_id id : sl.slab_caches) {
    const kmem_cache* s = sl.cache(id);
    if (!s || s->destroyed) continue;
    const SlabInfo i = sl.allocator->slabinfo(*s);
    seq_printf(m, "%-17s %6llu %6llu %6u %4u %4u", s->name.c_str(),
               static_cast<unsigned long long>(i.active_objs),
               static_cast<unsigned long long>(i.num_objs), i.objsize, i.objperslab,
               i.pagesperslab);
    seq_printf(m, " : tunables %4u %4u %4u", i.limit, i.batchcount, i.sharedfactor);
    seq_printf(m, " : slabdata %6llu %6llu %6llu\n",
               static_cast<unsigned long long>(i.active_slabs),
               static_cast<unsigned long long>(i.num_slabs),
               static_cast<unsigned long long>(i.shared_avail));
  }
  return m;
}

// slabtop -o (procps): the summary and the caches by number of objects.
std::string slabtop(const Mm& mm) {
  std::string m;
  const Slab& sl = mm.slab;
  struct Row {
    std::string name;
    SlabInfo i;
  };
  std::vector<Row> rows;
  std::uint64_t active_objs = 0, total_objs = 0, active_slabs = 0, total_slabs = 0, active_size = 0,
                total_size = 0;
  unsigned active_caches = 0;
  double min_obj = 0, max_obj = 0, sum_obj = 0;
  if (sl.initialized()) {
    for (cache_id id : sl.slab_caches) {
      const kmem_cache* s = sl.cache(id);
      if (!s || s->destroyed) continue;
      Row r{s->name, sl.allocator->slabinfo(*s)};
      active_objs += r.i.active_objs;
      total_objs += r.i.num_objs;
      active_slabs += r.i.active_slabs;
      total_slabs += r.i.num_slabs;
      active_size += r.i.active_objs * r.i.objsize;
      total_size += r.i.num_objs * r.i.objsize;
      if (r.i.num_objs) ++active_caches;
      const double kb = r.i.objsize / 1024.0;
      min_obj = rows.empty() ? kb : std::min(min_obj, kb);
      max_obj = std::max(max_obj, kb);
      sum_obj += kb;
      rows.push_back(std::move(r));
    }
  }
  const auto pct = [](std::uint64_t a, std::uint64_t b) {
    return b ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0;
  };
  seq_printf(m, " Active / Total Objects (%% used)    : %llu / %llu (%.1f%%)\n",
             static_cast<unsigned long long>(active_objs),
             static_cast<unsigned long long>(total_objs), pct(active_objs, total_objs));
  seq_printf(m, " Active / Total Slabs (%% used)      : %llu / %llu (%.1f%%)\n",
             static_cast<unsigned long long>(active_slabs),
             static_cast<unsigned long long>(total_slabs), pct(active_slabs, total_slabs));
  seq_printf(m, " Active / Total Caches (%% used)     : %u / %zu (%.1f%%)\n", active_caches,
             rows.size(), pct(active_caches, rows.size()));
  seq_printf(m, " Active / Total Size (%% used)       : %.2fK / %.2fK (%.1f%%)\n",
             static_cast<double>(active_size) / 1024.0, static_cast<double>(total_size) / 1024.0,
             pct(active_size, total_size));
  seq_printf(m, " Minimum / Average / Maximum Object : %.2fK / %.2fK / %.2fK\n\n", min_obj,
             rows.empty() ? 0.0 : sum_obj / static_cast<double>(rows.size()), max_obj);
  seq_printf(m, "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME                   \n");
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.i.num_objs > b.i.num_objs; });
  for (const auto& r : rows) {
    const unsigned long long cache_kb =
        r.i.num_slabs * r.i.pagesperslab * (mm.profile.page_size() / 1024);
    seq_printf(m, "%6llu %6llu %3.0f%% %7.2fK %6llu %8u %9lluK %-23s\n",
               static_cast<unsigned long long>(r.i.num_objs),
               static_cast<unsigned long long>(r.i.active_objs), pct(r.i.active_objs, r.i.num_objs),
               r.i.objsize / 1024.0, static_cast<unsigned long long>(r.i.num_slabs), r.i.objperslab,
               cache_kb, r.name.c_str());
  }
  return m;
}

}  // namespace mmfuzz::mm::procfs
