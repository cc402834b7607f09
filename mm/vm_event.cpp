#include "mm/vm_event.h"

namespace mmfuzz::mm {

namespace {

constexpr const char* kSplit[kVmEventOrders] = {
    "buddy_split_order0", "buddy_split_order1", "buddy_split_order2", "buddy_split_order3",
    "buddy_split_order4", "buddy_split_order5", "buddy_split_order6", "buddy_split_order7",
    "buddy_split_order8", "buddy_split_order9", "buddy_split_order10"};
constexpr const char* kMerge[kVmEventOrders] = {
    "buddy_merge_order0", "buddy_merge_order1", "buddy_merge_order2", "buddy_merge_order3",
    "buddy_merge_order4", "buddy_merge_order5", "buddy_merge_order6", "buddy_merge_order7",
    "buddy_merge_order8", "buddy_merge_order9", "buddy_merge_order10"};

constexpr const char* kEventNames[NR_VM_EVENT_ITEMS - BUDDY_FALLBACK] = {
    "buddy_fallback",
    "buddy_steal_pageblock",
    "pcp_refill",
    "pcp_free_bulk",
    "drain_all_pages",
    "pgalloc_slowpath",
    "pgalloc_fail",
    "slub_alloc_fastpath",
    "slub_alloc_slowpath",
    "slub_free_fastpath",
    "slub_free_slowpath",
    "slub_alloc_slab",
    "slub_free_slab",
    "slub_alloc_from_partial",
    "slub_cpu_partial_alloc",
    "slub_cpu_partial_free",
    "slub_cpu_partial_node",
    "slub_cpu_partial_drain",
    "slub_free_add_partial",
    "slub_free_remove_partial",
    "slub_deactivate",
    "slab_array_refill",
    "slab_refill_shared",
    "slab_flusharray",
    "slab_reap_drain",
    "slab_grow",
    "slab_destroy",
    "slob_list_rotate",
    "slob_page_alloc",
    "slob_page_free",
    "slob_large_kmalloc",
    "vmalloc_area_alloc",
    "vmalloc_area_free",
    "vmalloc_lazy_purge",
    "mempool_alloc_reserve",
    "mempool_free_refill",
};
static_assert(sizeof(kEventNames) / sizeof(kEventNames[0]) == NR_VM_EVENT_ITEMS - BUDDY_FALLBACK,
              "a vm_event_item without a name");

}  // namespace

const char* vm_event_name(vm_event_item i) {
  if (i < BUDDY_MERGE) return kSplit[i - BUDDY_SPLIT];
  if (i < BUDDY_FALLBACK) return kMerge[i - BUDDY_MERGE];
  if (i < NR_VM_EVENT_ITEMS) return kEventNames[i - BUDDY_FALLBACK];
  return "?";
}

}  // namespace mmfuzz::mm
