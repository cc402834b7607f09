// Event counters: which allocator states a run reached. The kernel's
// vm_event_item (include/linux/vm_event_item.h, /proc/vmstat) and SLUB's
// stat_item (/sys/kernel/slab/<cache>/<stat>) count the same kind of thing;
// here one set lives in the Mm (no globals, no per-CPU split) and covers the
// buddy allocator, the pcp lists, the three slab allocators, vmalloc and
// mempool. Each counter is a plain increment at the exact model point, so
// the fast paths pay one add.
#pragma once

#include <array>
#include <cstdint>

namespace mmfuzz::mm {

// Orders the per-order buddy counters cover: MAX_ORDER of the modeled
// kernels (the profiles' max_order may not exceed it).
inline constexpr unsigned kVmEventOrders = 11;

enum vm_event_item : unsigned {
  // A free block of order N split into two of order N - 1 (expand()).
  BUDDY_SPLIT,
  // Two free buddies of order N merged into one of order N + 1 (__free_one_page()).
  BUDDY_MERGE = BUDDY_SPLIT + kVmEventOrders,
  BUDDY_FALLBACK = BUDDY_MERGE + kVmEventOrders,  // __rmqueue_fallback() took another type's block
  BUDDY_STEAL_PAGEBLOCK,  // ... and claimed its whole pageblock (or more) for the new type
  PCP_REFILL,             // rmqueue_bulk(): an empty pcp list refilled from the buddy lists
  PCP_FREE_BULK,          // free_pcppages_bulk(): pcp pages back to the buddy lists
  DRAIN_ALL_PAGES,        // drain_all_pages()
  PGALLOC_SLOWPATH,       // __alloc_pages_slowpath() entered
  PGALLOC_FAIL,           // an allocation returned NULL (every nr_alloc_failures)
  // SLUB (the kernel's stat_item names, slub_ prefixed)
  SLUB_ALLOC_FASTPATH,       // object from the cpu freelist
  SLUB_ALLOC_SLOWPATH,       // ___slab_alloc() (every debug cache allocation)
  SLUB_FREE_FASTPATH,        // do_slab_free() onto the cpu slab's freelist
  SLUB_FREE_SLOWPATH,        // __slab_free()
  SLUB_ALLOC_SLAB,           // new_slab()
  SLUB_FREE_SLAB,            // discard_slab()
  SLUB_ALLOC_FROM_PARTIAL,   // get_partial() took a slab of the node partial list
  SLUB_CPU_PARTIAL_ALLOC,    // the cpu slab came from the cpu partial chain
  SLUB_CPU_PARTIAL_FREE,     // __slab_free() froze a full slab onto the cpu partial chain
  SLUB_CPU_PARTIAL_NODE,     // get_partial() moved a node partial slab to the cpu partial chain
  SLUB_CPU_PARTIAL_DRAIN,    // put_cpu_partial(): a full chain unfrozen to the node partial list
  SLUB_FREE_ADD_PARTIAL,     // __slab_free() put a full slab on the node partial list
  SLUB_FREE_REMOVE_PARTIAL,  // __slab_free() took an empty slab off the partial list to free it
  SLUB_DEACTIVATE,           // deactivate_slab(): a cpu slab given back to its node
  // SLAB
  SLAB_ARRAY_REFILL,   // cache_alloc_refill(): the per-CPU array was empty
  SLAB_REFILL_SHARED,  // ... and the shared array refilled it (transfer_objects())
  SLAB_FLUSHARRAY,     // cache_flusharray(): a full per-CPU array flushed on free
  SLAB_REAP_DRAIN,     // cache_reap(): drain_array() returned objects of an idle array
  SLAB_GROW,           // cache_grow_begin() got a new slab
  SLAB_DESTROY,        // slab_destroy(): a slab back to the page allocator
  // SLOB
  SLOB_LIST_ROTATE,    // slob_alloc(): list_rotate_to_front() of the page that fit
  SLOB_PAGE_ALLOC,     // a new SLOB heap page
  SLOB_PAGE_FREE,      // a SLOB heap page back to the page allocator
  SLOB_LARGE_KMALLOC,  // kmalloc() served by whole pages
  // vmalloc
  VMALLOC_AREA_ALLOC,  // a vmalloc/vmap/ioremap area reserved (get_vm_area())
  VMALLOC_AREA_FREE,   // an area freed (lazily: free_vmap_area_noflush())
  VMALLOC_LAZY_PURGE,  // purge_vmap_area_lazy() released lazily freed areas
  // mempool
  MEMPOOL_ALLOC_RESERVE,  // an element handed out of the reserve
  MEMPOOL_FREE_REFILL,    // mempool_free() put an element back into the reserve
  NR_VM_EVENT_ITEMS
};

// "buddy_split_order3", "slub_cpu_partial_free", "slab_array_refill", ...
const char* vm_event_name(vm_event_item i);

// The counters of one Mm (vm_event_states). Restored with the model.
struct VmEvents {
  std::array<std::uint64_t, NR_VM_EVENT_ITEMS> event{};

  std::uint64_t operator[](vm_event_item i) const { return event[i]; }
  // f(name, value) for every counter, in vm_event_item order.
  template <class F>
  void for_each(F&& f) const {
    for (unsigned i = 0; i < NR_VM_EVENT_ITEMS; ++i)
      f(vm_event_name(static_cast<vm_event_item>(i)), event[i]);
  }
};

}  // namespace mmfuzz::mm
