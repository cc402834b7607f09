#include <algorithm>
#include <array>
#include <cstdio>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

namespace {

// The kernel stops walking a free list here: it holds zone->lock meanwhile.
constexpr std::uint64_t kFreeCountCap = 100000;

void showfree(std::string& m, const Mm& mm, const pglist_data& pgdat) {
  const unsigned max_order = mm.page_alloc.max_order();
  seq_printf(m, "%-43s ", "Free pages count per migrate type at order");
  for (unsigned order = 0; order < max_order; ++order) seq_printf(m, "%6u ", order);
  m += '\n';
  for (const zone& z : pgdat.node_zones) {
    if (!z.populated_zone()) continue;
    for (int mt = 0; mt < MIGRATE_TYPES; ++mt) {
      seq_printf(m, "Node %4d, zone %8s, type %12s ", pgdat.node_id, z.name, migratetype_name(mt));
      for (unsigned order = 0; order < max_order; ++order) {
        const page_list head = z.free_area_[order].free_list[static_cast<std::size_t>(mt)];
        // list_length() returns the cap once the list reaches it (or is broken).
        std::uint64_t freecount = mm.page_alloc.list_length(head, kFreeCountCap - 1);
        const bool overflow = freecount >= kFreeCountCap;
        if (overflow) freecount = kFreeCountCap;
        seq_printf(m, "%s%6llu ", overflow ? ">" : "", static_cast<unsigned long long>(freecount));
      }
      m += '\n';
    }
  }
}

void showblockcount(std::string& m, const Mm& mm, const pglist_data& pgdat) {
  seq_printf(m, "\n%-23s", "Number of blocks type ");
  for (int mt = 0; mt < MIGRATE_TYPES; ++mt) seq_printf(m, "%12s ", migratetype_name(mt));
  m += '\n';
  const std::uint64_t step = std::uint64_t{1} << mm.page_alloc.pageblock_order();
  for (const zone& z : pgdat.node_zones) {
    if (!z.populated_zone()) continue;
    std::array<unsigned long long, MIGRATE_TYPES> count{};
    // Like the kernel, step from zone_start_pfn itself (aligned or not) and
    // skip holes and pageblocks whose first page lies in another zone.
    for (pfn_t pfn = z.zone_start_pfn; pfn < z.zone_end_pfn(); pfn += step) {
      if (!mm.pfn_valid(pfn)) continue;
      if (&mm.page_alloc.page_zone(pfn) != &z) continue;
      const int mt = mm.page_alloc.get_pageblock_migratetype(pfn);
      if (mt >= 0 && mt < MIGRATE_TYPES) ++count[static_cast<std::size_t>(mt)];
    }
    seq_printf(m, "Node %d, zone %8s ", pgdat.node_id, z.name);
    for (unsigned long long c : count) seq_printf(m, "%12llu ", c);
    m += '\n';
  }
}

}  // namespace

// pagetypeinfo_show(), once per node with memory. The page_owner mixed-block
// table is not printed: the guest runs without page_owner=on.
std::string pagetypeinfo(const Mm& mm) {
  std::string m;
  for (const pglist_data& pgdat : mm.page_alloc.node_data) {
    const bool has_memory = std::any_of(pgdat.node_zones.begin(), pgdat.node_zones.end(),
                                        [](const zone& z) { return z.populated_zone(); });
    if (!has_memory) continue;  // N_MEMORY
    seq_printf(m, "Page block order: %u\n", mm.page_alloc.pageblock_order());
    seq_printf(m, "Pages per block:  %llu\n", 1ull << mm.page_alloc.pageblock_order());
    m += '\n';
    showfree(m, mm, pgdat);
    showblockcount(m, mm, pgdat);
  }
  return m;
}

}  // namespace mmfuzz::mm::procfs
