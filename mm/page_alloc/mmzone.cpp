#include "mm/page_alloc/mmzone.h"

namespace mmfuzz::mm {

const char* zone_stat_name(int item) {
  static const char* const names[] = {
      "nr_free_pages",
      "nr_zone_inactive_anon",
      "nr_zone_active_anon",
      "nr_zone_inactive_file",
      "nr_zone_active_file",
      "nr_zone_unevictable",
      "nr_zone_write_pending",
      "nr_mlock",
      "nr_bounce",
      "nr_zspages",
      "nr_free_cma",
  };
  static_assert(sizeof(names) / sizeof(names[0]) == NR_VM_ZONE_STAT_ITEMS);
  return item >= 0 && item < NR_VM_ZONE_STAT_ITEMS ? names[item] : "?";
}

const char* numa_stat_name(int item) {
  static const char* const names[] = {"numa_hit",        "numa_miss",  "numa_foreign",
                                      "numa_interleave", "numa_local", "numa_other"};
  static_assert(sizeof(names) / sizeof(names[0]) == NR_VM_NUMA_EVENT_ITEMS);
  return item >= 0 && item < NR_VM_NUMA_EVENT_ITEMS ? names[item] : "?";
}

const char* node_stat_name(int item) {
  static const char* const names[] = {
      "nr_inactive_anon",
      "nr_active_anon",
      "nr_inactive_file",
      "nr_active_file",
      "nr_unevictable",
      "nr_slab_reclaimable",
      "nr_slab_unreclaimable",
      "nr_isolated_anon",
      "nr_isolated_file",
      "workingset_nodes",
      "workingset_refault_anon",
      "workingset_refault_file",
      "workingset_activate_anon",
      "workingset_activate_file",
      "workingset_restore_anon",
      "workingset_restore_file",
      "workingset_nodereclaim",
      "nr_anon_pages",
      "nr_mapped",
      "nr_file_pages",
      "nr_dirty",
      "nr_writeback",
      "nr_writeback_temp",
      "nr_shmem",
      "nr_shmem_hugepages",
      "nr_shmem_pmdmapped",
      "nr_file_hugepages",
      "nr_file_pmdmapped",
      "nr_anon_transparent_hugepages",
      "nr_vmscan_write",
      "nr_vmscan_immediate_reclaim",
      "nr_dirtied",
      "nr_written",
      "nr_throttled_written",
      "nr_kernel_misc_reclaimable",
      "nr_foll_pin_acquired",
      "nr_foll_pin_released",
      "nr_kernel_stack",
      "nr_page_table_pages",
      "nr_sec_page_table_pages",
      "nr_swapcached",
      "pgpromote_success",
      "pgpromote_candidate",
  };
  static_assert(sizeof(names) / sizeof(names[0]) == NR_VM_NODE_STAT_ITEMS);
  return item >= 0 && item < NR_VM_NODE_STAT_ITEMS ? names[item] : "?";
}

}  // namespace mmfuzz::mm
