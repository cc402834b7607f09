// Mm: one simulated machine and kernel memory manager. It owns simulated RAM,
// the memmap, memblock, the page allocator, the slab layer, mempools, the
// kernel page tables and vmalloc.
// No global state: two Mm objects never share anything (DESIGN rule 1).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mm/observer.h"
#include "mm/page_alloc/page_alloc.h"
#include "mm/phys/machine.h"
#include "mm/phys/memblock.h"
#include "mm/phys/ram.h"
#include "mm/phys/sparse.h"
#include "mm/planted.h"
#include "mm/profile.h"
#include "mm/slab/mempool.h"
#include "mm/slab/slab.h"
#include "mm/types.h"
#include "mm/vm/pgtable.h"
#include "mm/vm/vmalloc.h"
#include "mm/vm_event.h"

namespace mmfuzz::mm {

struct MmConfig {
  std::string profile{kDefaultProfile};
  MachineConfig machine = default_machine();
  SlabConfig slab;
  // rodata=full maps the linear map by pages (the 6.1 guest's default);
  // the model's default keeps block mappings (rodata=on).
  bool rodata_full = false;
  // vmalloc_init() at mm_init. Off: no vmalloc/ioremap and no vmap_area
  // objects in the slab (allocator tests that pin a pristine slab layout).
  bool vmalloc = true;
  // A planted defect for the fuzzing self-test; anything but none needs a
  // build with MMFUZZ_PLANTED_DEFECTS (the constructor throws ConfigError).
  PlantedDefect planted = PlantedDefect::none;
  // lazy_max_pages() in pages, in place of the profile's fls(cpus) * 32 MiB:
  // a threshold scaled for fuzzing, so that a short input's vfree()s reach
  // the lazy purge. Unset: the kernel's.
  std::optional<std::uint64_t> lazy_max_pages;
};

// The steps of start_kernel() the model performs, in order (seed 001).
enum class BootStep : int {
  none,
  setup_arch,  // memblock, paging_init hook, bootmem_init (sparse, zones, CMA)
  setup_per_cpu_areas,
  build_all_zonelists,
  page_alloc_init,
  mm_init,  // memblock_free_all: free memory to the buddy allocator
  setup_per_cpu_pageset,
  initcalls,     // CMA activation, watermarks, THP min_free_kbytes, iomem
  free_initmem,  // initrd and __init memory back to the allocator
};
const char* boot_step_name(BootStep s);

// A /proc/iomem line captured at arch_initcall time.
struct IomemLine {
  phys_addr_t start = 0;
  phys_addr_t end = 0;  // inclusive
  std::string name;
  int depth = 0;
};

class Mm {
 public:
  explicit Mm(const MmConfig& cfg = {});
  MmConfig config;
  Mm(const MmConfig& cfg, BootStep until);
  Mm(const Mm&) = delete;
  Mm& operator=(const Mm&) = delete;

  // Runs the boot steps after the current one up to and including `step`.
  void boot_to(BootStep step);
  BootStep boot_step() const { return boot_step_; }
  bool booted() const { return boot_step_ == BootStep::free_initmem; }

  const KernelProfile& profile;
  MachineConfig machine;
  PhysRam ram;
  Memblock memblock;
  Sparse sparse;
  PageAlloc page_alloc;
  Slab slab;
  Mempools mempools;
  PageTables pgtable;  // init_mm.pgd = swapper_pg_dir
  Vmalloc vmalloc;

  // smp_processor_id(). set_cpu() returns false for a CPU that does not exist.
  int cpu() const { return cpu_; }
  bool set_cpu(int cpu);
  unsigned nr_cpus() const { return machine.nr_cpus; }
  // preempt_count() of the current CPU: kmap_atomic() and callers' critical
  // sections; sleeping APIs report when it is raised.
  int preempt_count() const { return preempt_count_[static_cast<std::size_t>(cpu_)]; }
  bool in_atomic() const { return preempt_count() > 0; }
  void preempt_disable() { ++preempt_count_[static_cast<std::size_t>(cpu_)]; }
  void preempt_enable() {
    auto& c = preempt_count_[static_cast<std::size_t>(cpu_)];
    if (c > 0) --c;
  }
  int cpu_to_node(int cpu) const { return cpu_node_[static_cast<std::size_t>(cpu)]; }

  // True when the self-test planted defect `d` in this model.
  bool planted(PlantedDefect d) const {
    if constexpr (!kPlantedDefects) return false;
    return config.planted == d;
  }

  // Event counters (mm/vm_event.h): which allocator states the model
  // reached since boot. Restored from a snapshot like the rest.
  const VmEvents& events() const { return events_; }
  // count_vm_event(): one more of item i (a plain increment).
  void count_vm_event(vm_event_item i) { ++events_.event[i]; }

  // Context of the current operation, recorded in page_owner and reports.
  std::uint32_t op_seq = 0;
  std::uint32_t call_site = 0;

  // arm64 address translation for the linear map.
  phys_addr_t memstart_addr = 0;  // PHYS_OFFSET
  vaddr_t __va(phys_addr_t pa) const { return (pa - memstart_addr) | profile.page_offset; }
  phys_addr_t __pa(vaddr_t va) const { return (va & ~profile.page_offset) + memstart_addr; }
  // The linear map is the lower half of the kernel VA range.
  bool is_linear_map_address(vaddr_t va) const {
    return va >= profile.page_offset &&
           va - profile.page_offset < (vaddr_t{1} << (profile.va_bits - 1));
  }
  // arm64: __is_lm_address() && pfn_is_map_memory().
  bool virt_addr_valid(vaddr_t va) const {
    if (!is_linear_map_address(va)) return false;
    const pfn_t pfn = virt_to_pfn(va);
    return sparse.pfn_valid(pfn) && memblock.is_memory(pfn << profile.page_shift);
  }
  vaddr_t page_address(pfn_t pfn) const { return __va(pfn << profile.page_shift); }
  pfn_t virt_to_pfn(vaddr_t va) const { return __pa(va) >> profile.page_shift; }
  // The struct page address the kernel prints as page= (vmemmap).
  vaddr_t pfn_to_vmemmap(pfn_t pfn) const;

  bool pfn_valid(pfn_t pfn) const { return sparse.pfn_valid(pfn); }
  // The pfn ranges [start, end) of memory (memblock.memory) that have a
  // memmap, ascending: the struct pages sweeps look at. The rest of a present
  // section is never used (a 16 MiB fuzz machine has 4096 pages of RAM in a
  // 32768-page section).
  std::vector<std::pair<pfn_t, pfn_t>> memory_pfn_ranges() const;
  page& pfn_to_page(pfn_t pfn) { return sparse.pfn_to_page(pfn); }
  const page& pfn_to_page(pfn_t pfn) const { return sparse.pfn_to_page(pfn); }

  // Observers (checkers, executor, trace writers).
  void attach(MmObserver* o) { observers_.push_back(o); }
  void detach(MmObserver* o) {
    observers_.erase(std::remove(observers_.begin(), observers_.end(), o), observers_.end());
  }
  bool observed() const { return !observers_.empty(); }
  template <class F>
  void notify(F&& f) {
    for (auto* o : observers_) f(*o);
  }

  // A timer tick: deferred work (kswapd, cache_reap).
  void tick();

  // Fast reset for fuzzing (DESIGN rule 6): makes this model's state equal
  // to `snap`'s. `snap` is a model booted with the same MmConfig that has not
  // run anything since; this one was booted alike and since then only ran
  // ops and restores from `snap`. Costs what the ops since the last restore
  // touched plus a copy of the memmap. Observers stay attached.
  void restore_from(const Mm& snap);

  // What boot did, for tests and `mmfuzz info`.
  std::vector<std::string> boot_log;
  std::vector<IomemLine> iomem;
  struct {
    phys_addr_t code_start = 0, init_start = 0, data_start = 0, end = 0;
  } kimage;
  phys_addr_t initrd_start = 0, initrd_end = 0;
  std::uint64_t memmap_bytes = 0;
  std::vector<std::pair<phys_addr_t, std::uint64_t>> memmap_phys;  // per node: the memmap buffer
  std::uint64_t boot_reserved_pages = 0;  // reserved pages when memblock_free_all ran

 private:
  void setup_arch();
  void bootmem_init();
  void zone_sizes_init();
  void dma_contiguous_reserve(phys_addr_t limit);
  void capture_iomem();
  void free_initmem();
  void log(std::string line) { boot_log.push_back(std::move(line)); }

  BootStep boot_step_ = BootStep::none;
  int cpu_ = 0;
  std::vector<int> cpu_node_;
  std::vector<int> preempt_count_;
  std::vector<MmObserver*> observers_;
  phys_addr_t arm64_dma_phys_limit_ = 0;
  VmEvents events_;
};

}  // namespace mmfuzz::mm

#include "mm/page_alloc/page_alloc_inl.h"  // IWYU pragma: export
#include "mm/slab/slab_inl.h"              // IWYU pragma: export
