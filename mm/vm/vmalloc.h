// The kernel's non-linear mappings (mm/vmalloc.c, arch/arm64/mm/ioremap.c,
// include/linux/highmem.h): vmap_area / vm_struct bookkeeping with a guard
// page after each area and lazy purging of freed areas, the vmalloc family,
// vmap, ioremap with per-device register files and the io accessors, kmap.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mm/observer.h"
#include "mm/slab/slab.h"
#include "mm/types.h"
#include "mm/vm/pgtable.h"

namespace mmfuzz::mm {

class Mm;

// vm_struct flags (include/linux/vmalloc.h, 6.1).
inline constexpr unsigned long VM_IOREMAP = 0x00000001;
inline constexpr unsigned long VM_ALLOC = 0x00000002;
inline constexpr unsigned long VM_MAP = 0x00000004;
inline constexpr unsigned long VM_USERMAP = 0x00000008;
inline constexpr unsigned long VM_DMA_COHERENT = 0x00000010;
inline constexpr unsigned long VM_UNINITIALIZED = 0x00000020;
inline constexpr unsigned long VM_NO_GUARD = 0x00000040;
inline constexpr unsigned long VM_KASAN = 0x00000080;
inline constexpr unsigned long VM_FLUSH_RESET_PERMS = 0x00000100;
inline constexpr unsigned long VM_MAP_PUT_PAGES = 0x00000200;

struct vm_struct {
  vaddr_t addr = 0;
  std::uint64_t size = 0;  // includes the guard page unless VM_NO_GUARD
  unsigned long flags = 0;
  std::vector<pfn_t> pages;  // struct page **pages (VM_ALLOC)
  unsigned nr_pages = 0;
  phys_addr_t phys_addr = 0;  // ioremap and the kernel image
  std::string caller;         // what /proc/vmallocinfo prints as %pS
  // Where the kernel keeps the page pointer array: kmalloc'd, or vmalloc'd
  // when larger than a page (vmallocinfo's "vpages"). 0 when none.
  vaddr_t pages_array = 0;
  bool pages_vmalloced = false;
  vaddr_t obj = 0;    // the kzalloc'd struct vm_struct (0 for early areas)
  pteval_t prot = 0;  // the protection the area was mapped with
  int node = NUMA_NO_NODE;
  // get_vm_area_size(): without the guard page.
  std::uint64_t area_size(std::uint64_t page_size) const {
    return (flags & VM_NO_GUARD) ? size : size - page_size;
  }
};

struct vmap_area {
  vaddr_t va_start = 0;
  vaddr_t va_end = 0;           // exclusive
  std::optional<vm_struct> vm;  // empty once freed (lazily purged areas); copyable for snapshots
  vaddr_t obj = 0;              // the vmap_area_cachep object
};

// A device region's registers (a small sparse register file).
struct IoDevice {
  phys_addr_t start = 0, end = 0;  // exclusive
  std::string name;
  std::unordered_map<phys_addr_t, std::uint8_t> regs;   // by byte offset; absent reads reset value
  std::unordered_map<phys_addr_t, std::uint8_t> reset;  // ID registers and the like
};

class Vmalloc {
 public:
  explicit Vmalloc(Mm& mm);

  // ---- boot ----
  void vmalloc_init();  // mm_init(): vmap_area cache, early areas, free space
  bool initialized() const { return initialized_; }

  // ---- vmalloc family; 0 is NULL ----
  vaddr_t vmalloc(std::uint64_t size) { return vmalloc_node(size, NUMA_NO_NODE); }
  vaddr_t vzalloc(std::uint64_t size);
  vaddr_t vmalloc_32(std::uint64_t size);
  vaddr_t vmalloc_node(std::uint64_t size, int node);
  vaddr_t vzalloc_node(std::uint64_t size, int node);
  vaddr_t __vmalloc(std::uint64_t size, gfp_t gfp);
  vaddr_t __vmalloc_node_range(std::uint64_t size, std::uint64_t align, vaddr_t start, vaddr_t end,
                               gfp_t gfp, pteval_t prot, unsigned long vm_flags, int node,
                               std::string caller);
  // __vmalloc_node(): the vmalloc range, PAGE_KERNEL; `api` names the caller
  // in /proc/vmallocinfo when the op has no call site.
  vaddr_t __vmalloc_node(std::uint64_t size, std::uint64_t align, gfp_t gfp, int node,
                         const char* api);
  vaddr_t module_alloc(std::uint64_t size);  // the Modules region, PAGE_KERNEL
  void vfree(vaddr_t addr);
  vaddr_t vmap(std::span<const pfn_t> pages, unsigned long flags, pteval_t prot);
  vaddr_t vmap(std::span<const pfn_t> pages) { return vmap(pages, VM_MAP, pgprot_kernel()); }
  void vunmap(vaddr_t addr);
  pfn_t vmalloc_to_page(vaddr_t addr) const;  // NO_PAGE when unmapped
  bool is_vmalloc_addr(vaddr_t addr) const;
  const vm_struct* find_vm_area(vaddr_t addr) const;    // the area starting at addr
  const vmap_area* find_vmap_area(vaddr_t addr) const;  // the busy area containing addr

  // ---- ioremap ----
  vaddr_t ioremap(phys_addr_t phys, std::uint64_t size);
  vaddr_t ioremap_wc(phys_addr_t phys, std::uint64_t size);
  vaddr_t ioremap_np(phys_addr_t phys, std::uint64_t size);
  vaddr_t ioremap_prot(phys_addr_t phys, std::uint64_t size, pteval_t prot, const char* api);
  void iounmap(vaddr_t addr);
  std::uint8_t ioread8(vaddr_t a) { return static_cast<std::uint8_t>(io_read(a, 1, "ioread8")); }
  std::uint16_t ioread16(vaddr_t a) {
    return static_cast<std::uint16_t>(io_read(a, 2, "ioread16"));
  }
  std::uint32_t ioread32(vaddr_t a) {
    return static_cast<std::uint32_t>(io_read(a, 4, "ioread32"));
  }
  void iowrite8(std::uint8_t v, vaddr_t a) { io_write(a, v, 1, "iowrite8"); }
  void iowrite16(std::uint16_t v, vaddr_t a) { io_write(a, v, 2, "iowrite16"); }
  void iowrite32(std::uint32_t v, vaddr_t a) { io_write(a, v, 4, "iowrite32"); }
  std::uint8_t readb(vaddr_t a) { return static_cast<std::uint8_t>(io_read(a, 1, "readb")); }
  std::uint16_t readw(vaddr_t a) { return static_cast<std::uint16_t>(io_read(a, 2, "readw")); }
  std::uint32_t readl(vaddr_t a) { return static_cast<std::uint32_t>(io_read(a, 4, "readl")); }
  void writeb(std::uint8_t v, vaddr_t a) { io_write(a, v, 1, "writeb"); }
  void writew(std::uint16_t v, vaddr_t a) { io_write(a, v, 2, "writew"); }
  void writel(std::uint32_t v, vaddr_t a) { io_write(a, v, 4, "writel"); }
  IoDevice* device_at(phys_addr_t pa);
  const IoDevice* device_at(phys_addr_t pa) const;
  const std::vector<IoDevice>& devices() const { return devices_; }

  // ---- kmap (no highmem on arm64: the linear-map address) ----
  vaddr_t kmap(pfn_t pfn);
  void kunmap(pfn_t pfn);
  vaddr_t kmap_atomic(pfn_t pfn);
  void kunmap_atomic(vaddr_t addr);
  vaddr_t kmap_local_page(pfn_t pfn);
  void kunmap_local(vaddr_t addr);
  static constexpr unsigned KM_MAX_IDX = 16;

  // ---- client accesses to vmalloc/vmap/kernel-image addresses ----
  // Through the current CPU's TLB and the page tables; a fault (unmapped,
  // guard page, read-only) is reported and the access dropped.
  bool write(vaddr_t addr, std::span<const std::uint8_t> bytes);
  bool read(vaddr_t addr, std::span<std::uint8_t> out);
  bool fill(vaddr_t addr, std::uint64_t len, std::uint8_t byte);

  // ---- deferred work ----
  void purge_vmap_area_lazy();
  void tick();
  // Snapshots (mm/snapshot.cpp): copies `snap`'s state; same configuration.
  void restore_from(const Vmalloc& snap);

  // ---- state (checkers and views) ----
  const std::map<vaddr_t, vmap_area>& busy() const { return busy_; }
  const std::map<vaddr_t, vaddr_t>& free_ranges() const { return free_; }  // start -> end
  const std::map<vaddr_t, vmap_area>& purge_list() const { return purge_; }
  std::uint64_t vmap_lazy_nr = 0;  // pages awaiting purge
  std::uint64_t lazy_max_pages() const;
  std::uint64_t nr_vmalloc_pages = 0;  // nr_vmalloc_pages (VmallocUsed)
  std::uint64_t nr_purges = 0;
  cache_id vmap_area_cachep = 0;
  pteval_t pgprot_kernel() const;
  // kmap bookkeeping.
  const std::unordered_map<pfn_t, unsigned>& kmap_counts() const { return kmap_count_; }
  const std::vector<vaddr_t>& kmap_stack(int cpu) const {
    return kmap_stack_[static_cast<std::size_t>(cpu)];
  }

  friend class VmCorruptor;

 private:
  vaddr_t alloc_vmap_area(std::uint64_t size, std::uint64_t align, vaddr_t vstart, vaddr_t vend,
                          int node);
  vm_struct* get_vm_area(std::uint64_t size, std::uint64_t align, unsigned long flags,
                         vaddr_t start, vaddr_t end, int node, std::string caller);
  void insert_free(vaddr_t start, vaddr_t end);
  void free_vmap_area_noflush(std::map<vaddr_t, vmap_area>::iterator it);
  void free_vm_struct(vm_struct& vm);
  bool might_sleep(const char* api);
  void report(MisuseKind kind, vaddr_t addr, const char* api, std::string detail,
              phys_addr_t phys = 0);
  std::uint64_t io_read(vaddr_t addr, unsigned len, const char* api);
  void io_write(vaddr_t addr, std::uint64_t v, unsigned len, const char* api);
  bool io_translate(vaddr_t addr, unsigned len, const char* api, phys_addr_t* pa, IoDevice** dev);
  bool access(vaddr_t addr, std::uint64_t len, bool is_write, const std::uint8_t* in,
              std::uint8_t* out, std::uint8_t fill_byte, const char* api);
  vaddr_t kmap_push(pfn_t pfn, const char* api);
  void kmap_pop(vaddr_t addr, const char* api);
  std::string default_caller(const char* api) const;
  void remember_freed(vaddr_t addr);
  void store_kva64(vaddr_t va, std::uint64_t v);  // a kernel store (page array entries)

  Mm& mm_;
  bool initialized_ = false;
  std::map<vaddr_t, vmap_area> busy_;         // vmap_area_root
  std::map<vaddr_t, vaddr_t> free_;           // free_vmap_area_root: start -> end
  std::map<vaddr_t, vmap_area> purge_;        // vmap_purge_list
  bool drain_pending_ = false;                // drain_vmap_work scheduled
  std::unordered_set<vaddr_t> freed_starts_;  // recently freed area starts (double vfree)
  std::vector<IoDevice> devices_;
  std::unordered_map<pfn_t, unsigned> kmap_count_;
  std::vector<std::vector<vaddr_t>> kmap_stack_;  // per CPU: kmap_local/atomic
};

}  // namespace mmfuzz::mm
