#include "mm/vm/vmalloc.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <string_view>

#include "mm/mm.h"

namespace mmfuzz::mm {

namespace {

// remove_vm_area(): unmaps an area's pages, not its guard page; the TLB is
// flushed when the lazily freed area is purged.
void unmap_vm_area(Mm& mm, const vm_struct& vm) {
  const std::uint64_t ps = mm.profile.page_size();
  std::uint64_t size = vm.area_size(ps);
  // Planted defect (fuzz self-test): the guard page is subtracted twice, so
  // the area's last PTE stays mapped (and points at a page about to be freed).
  if (mm.planted(PlantedDefect::vfree_leaves_pte)) [[unlikely]]
    size -= std::min(size, ps);
  mm.pgtable.unmap_range(vm.addr, size);
}

std::string hex16(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// PrimeCell peripheral and cell ID registers (offsets 0xfe0..0xffc).
void primecell_ids(IoDevice& d, std::uint8_t part0, std::uint8_t part1, std::uint8_t rev) {
  const std::uint8_t ids[8] = {part0, part1, rev, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
  for (unsigned i = 0; i < 8; ++i) d.reset[0xfe0 + 4 * i] = ids[i];
}

}  // namespace

Vmalloc::Vmalloc(Mm& mm) : mm_(mm), kmap_stack_(mm.machine.nr_cpus) {
  for (const auto& r : mm.machine.devices) {
    if (r.depth != 0) continue;
    IoDevice d;
    d.start = r.start;
    d.end = r.end + 1;
    d.name = r.name;
    if (d.name.rfind("pl011", 0) == 0) {
      primecell_ids(d, 0x11, 0x10, 0x14);
      d.reset[0x18] = 0x90;  // UARTFR: TXFE | RXFE
    } else if (d.name.rfind("pl031", 0) == 0) {
      primecell_ids(d, 0x31, 0x10, 0x04);
    } else if (d.name.rfind("pl061", 0) == 0) {
      primecell_ids(d, 0x61, 0x10, 0x04);
    }
    devices_.push_back(std::move(d));
  }
  if (mm.machine.pci_io.size()) {
    IoDevice d;
    d.start = mm.machine.pci_io.start;
    d.end = mm.machine.pci_io.end;
    d.name = "PCI I/O";
    devices_.push_back(std::move(d));
  }
}

pteval_t Vmalloc::pgprot_kernel() const {
  return mm_.pgtable.prot().kernel;
}

std::uint64_t Vmalloc::lazy_max_pages() const {
  if (mm_.config.lazy_max_pages) return *mm_.config.lazy_max_pages;
  const unsigned cpus = mm_.nr_cpus();
  const unsigned fls = static_cast<unsigned>(std::bit_width(cpus));
  return fls * ((std::uint64_t{mm_.profile.lazy_max_mb} * SZ_1M) >> mm_.profile.page_shift);
}

void Vmalloc::report(MisuseKind kind, vaddr_t addr, const char* api, std::string detail,
                     phys_addr_t phys) {
  if (!mm_.observed()) return;
  Misuse m;
  m.kind = kind;
  m.addr = addr;
  m.api = api;
  m.detail = std::move(detail);
  m.object = phys;
  mm_.notify([&](MmObserver& o) { o.misuse(m); });
}

bool Vmalloc::might_sleep(const char* api) {
  if (!mm_.in_atomic()) return true;
  report(MisuseKind::vmalloc_sleep_in_atomic, 0, api,
         std::string("BUG: sleeping function called from invalid context in ") + api +
             "(), preempt_count: " + std::to_string(mm_.preempt_count()));
  return false;
}

std::string Vmalloc::default_caller(const char* api) const {
  if (mm_.call_site) return "call_site#" + std::to_string(mm_.call_site);
  return api;
}

// ------------------------------------------------------------ boot

void Vmalloc::vmalloc_init() {
  if (!mm_.slab.initialized()) return;  // no kmalloc: no vmalloc
  vmap_area_cachep = mm_.slab.kmem_cache_create("vmap_area", 64, 0, SLAB_PANIC);
  insert_free(1, ~vaddr_t{0});  // vmap_init_free_space(): everything but the early areas
  const std::uint64_t ps = mm_.profile.page_size();
  for (const auto& s : mm_.pgtable.kimage_segments) {
    // vm_area_add_early(): VM_MAP areas of the image, no guard page.
    auto vm = std::make_unique<vm_struct>();
    vm->addr = s.va;
    // map_kernel_segment(): only vmlinux_data gets a guard page.
    const bool guard = std::string_view(s.name) == "vmlinux_data";
    vm->size = round_up(s.size, ps) + (guard ? ps : 0);
    vm->flags = VM_MAP | (guard ? 0 : VM_NO_GUARD);
    vm->phys_addr = s.pa;
    vm->caller = "paging_init";
    vm->prot = 0;  // per segment; the image checks are the kernel-image ones
    vmap_area va;
    va.va_start = vm->addr;
    va.va_end = vm->addr + vm->size;
    va.obj = mm_.slab.kmem_cache_alloc(vmap_area_cachep, GFP_KERNEL);
    va.vm = std::move(*vm);
    // Carve it out of the free space.
    auto it = std::prev(free_.upper_bound(va.va_start));
    const vaddr_t fs = it->first, fe = it->second;
    free_.erase(it);
    if (fs < va.va_start) free_[fs] = va.va_start;
    if (va.va_end < fe) free_[va.va_end] = fe;
    busy_.emplace(va.va_start, std::move(va));
  }
  initialized_ = true;
}

// ------------------------------------------------------------ vmap_area

void Vmalloc::insert_free(vaddr_t start, vaddr_t end) {
  // Merge with the neighbours, as merge_or_add_vmap_area() does.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == end) {
    end = next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->second == start) {
      prev->second = end;
      return;
    }
  }
  free_.emplace(start, end);
}

vaddr_t Vmalloc::alloc_vmap_area(std::uint64_t size, std::uint64_t align, vaddr_t vstart,
                                 vaddr_t vend, int node) {
  const vaddr_t obj = mm_.slab.kmem_cache_alloc_node(vmap_area_cachep, GFP_KERNEL, node);
  if (!obj) return 0;
  bool purged = false;
  for (;;) {
    // find_vmap_lowest_match(): the lowest free range that fits.
    auto it = free_.upper_bound(vstart);
    if (it != free_.begin() && std::prev(it)->second > vstart) --it;
    for (; it != free_.end() && it->first < vend; ++it) {
      const vaddr_t lo = std::max(it->first, vstart);
      const vaddr_t s = (lo + align - 1) & ~(align - 1);
      if (s < lo) break;  // wrapped
      const vaddr_t hi = std::min(it->second, vend);
      if (s >= hi || hi - s < size) continue;
      const vaddr_t fs = it->first, fe = it->second;
      free_.erase(it);
      if (fs < s) free_.emplace(fs, s);
      if (s + size < fe) free_.emplace(s + size, fe);
      vmap_area va;
      va.va_start = s;
      va.va_end = s + size;
      va.obj = obj;
      busy_.emplace(s, std::move(va));
      freed_starts_.erase(s);
      mm_.notify([&](MmObserver& o) { o.alloc_vmap_area(s, size, align, vstart, vend, false); });
      return s;
    }
    if (purged || purge_.empty()) break;
    purge_vmap_area_lazy();  // overflow: purge the lazy areas and retry
    purged = true;
  }
  mm_.slab.kmem_cache_free(vmap_area_cachep, obj);
  mm_.notify([&](MmObserver& o) { o.alloc_vmap_area(0, size, align, vstart, vend, true); });
  return 0;
}

vm_struct* Vmalloc::get_vm_area(std::uint64_t size, std::uint64_t align, unsigned long flags,
                                vaddr_t start, vaddr_t end, int node, std::string caller) {
  const std::uint64_t ps = mm_.profile.page_size();
  size = round_up(size, ps);
  if (!size) return nullptr;
  if (flags & VM_IOREMAP) {
    // Aligned to the size's power of two, up to IOREMAP_MAX_ORDER.
    const unsigned order = std::clamp(static_cast<unsigned>(std::bit_width(size - 1)),
                                      mm_.profile.page_shift, mm_.profile.page_shift + 7);
    align = std::uint64_t{1} << order;
  }
  if (!(flags & VM_NO_GUARD)) {
    // Planted defect (fuzz self-test): the guard page is not added, so the
    // next area may start right after this one while the vm_struct still
    // claims a guard (get_vm_area_size() treats the last page as one).
    if (!mm_.planted(PlantedDefect::vmalloc_no_guard)) [[likely]]
      size += ps;
  }
  const vaddr_t obj = mm_.slab.kmalloc_node(64, GFP_KERNEL | __GFP_ZERO, node);  // kzalloc_node
  if (!obj) return nullptr;
  const vaddr_t addr = alloc_vmap_area(size, std::max<std::uint64_t>(align, ps), start, end, node);
  if (!addr) {
    mm_.slab.kfree(obj);
    return nullptr;
  }
  auto vm = std::make_unique<vm_struct>();
  vm->addr = addr;
  vm->size = size;
  vm->flags = flags;
  vm->caller = std::move(caller);
  vm->obj = obj;
  vm->node = node;
  auto& slot = busy_.at(addr).vm;
  slot = std::move(*vm);
  mm_.count_vm_event(VMALLOC_AREA_ALLOC);
  return &*slot;
}

void Vmalloc::free_vmap_area_noflush(std::map<vaddr_t, vmap_area>::iterator it) {
  const std::uint64_t nr = (it->second.va_end - it->second.va_start) >> mm_.profile.page_shift;
  const vaddr_t start = it->first;
  it->second.vm.reset();
  purge_.insert(busy_.extract(it));
  vmap_lazy_nr += nr;
  mm_.count_vm_event(VMALLOC_AREA_FREE);
  mm_.notify(
      [&](MmObserver& o) { o.free_vmap_area_noflush(start, vmap_lazy_nr, lazy_max_pages()); });
  if (vmap_lazy_nr > lazy_max_pages()) drain_pending_ = true;  // schedule_work(drain_vmap_work)
}

void Vmalloc::purge_vmap_area_lazy() {
  if (purge_.empty()) return;
  const vaddr_t start = purge_.begin()->second.va_start;
  const vaddr_t end = std::prev(purge_.end())->second.va_end;
  mm_.pgtable.flush_tlb_kernel_range(start, end);
  const std::uint64_t n = purge_.size();
  while (!purge_.empty()) {
    auto node = purge_.extract(purge_.begin());
    insert_free(node.mapped().va_start, node.mapped().va_end);
    mm_.slab.kmem_cache_free(vmap_area_cachep, node.mapped().obj);
  }
  vmap_lazy_nr = 0;
  drain_pending_ = false;
  ++nr_purges;
  mm_.count_vm_event(VMALLOC_LAZY_PURGE);
  mm_.notify([&](MmObserver& o) { o.purge_vmap_area_lazy(start, end, n); });
}

void Vmalloc::tick() {
  if (drain_pending_) purge_vmap_area_lazy();
}

bool Vmalloc::is_vmalloc_addr(vaddr_t addr) const {
  return addr >= mm_.profile.modules_vaddr && addr < mm_.profile.vmalloc_end;
}

const vmap_area* Vmalloc::find_vmap_area(vaddr_t addr) const {
  auto it = busy_.upper_bound(addr);
  if (it == busy_.begin()) return nullptr;
  --it;
  return addr < it->second.va_end ? &it->second : nullptr;
}

const vm_struct* Vmalloc::find_vm_area(vaddr_t addr) const {
  auto it = busy_.find(addr);
  return it != busy_.end() && it->second.vm ? &*it->second.vm : nullptr;
}

pfn_t Vmalloc::vmalloc_to_page(vaddr_t addr) const {
  const auto pa = mm_.pgtable.translate(addr);
  if (!pa) return NO_PAGE;
  const pfn_t pfn = *pa >> mm_.profile.page_shift;
  return mm_.pfn_valid(pfn) ? pfn : NO_PAGE;
}

// ------------------------------------------------------------ vmalloc

void Vmalloc::remember_freed(vaddr_t addr) {
  // Bounded: an old start forgotten is reported as a bad free, not a double one.
  if (freed_starts_.size() >= (1u << 16)) freed_starts_.clear();
  freed_starts_.insert(addr);
}

void Vmalloc::free_vm_struct(vm_struct& vm) {
  // The tail of __vunmap(): pages, the page array, the vm_struct.
  if (vm.flags & (VM_ALLOC | VM_MAP_PUT_PAGES)) {
    for (const pfn_t pfn : vm.pages) mm_.page_alloc.__free_pages(pfn, 0);
    if (vm.flags & VM_ALLOC) nr_vmalloc_pages -= vm.pages.size();
  }
  vm.pages.clear();
  if (vm.pages_array) {
    if (vm.pages_vmalloced)
      vfree(vm.pages_array);
    else
      mm_.slab.kfree(vm.pages_array);
  }
  if (vm.obj) mm_.slab.kfree(vm.obj);
}

vaddr_t Vmalloc::__vmalloc_node_range(std::uint64_t size, std::uint64_t align, vaddr_t start,
                                      vaddr_t end, gfp_t gfp, pteval_t prot, unsigned long vm_flags,
                                      int node, std::string caller) {
  if (!initialized_) return 0;
  might_sleep("vmalloc");
  const std::uint64_t ps = mm_.profile.page_size();
  const std::uint64_t rsize = round_up(size, ps);
  if (!size || rsize < size || (rsize >> mm_.profile.page_shift) > mm_.page_alloc.totalram_pages)
    return 0;  // "vmalloc error: size ..., exceeds total pages"
  vm_struct* area =
      get_vm_area(rsize, align, VM_ALLOC | VM_UNINITIALIZED | vm_flags, start, end, node, caller);
  if (!area) return 0;
  const vaddr_t addr = area->addr;
  auto fail = [&]() -> vaddr_t {
    // __vfree() of the half-built area: mapped PTEs, pages, array, vm_struct.
    mm_.pgtable.unmap_range(addr, rsize);
    auto it = busy_.find(addr);
    vm_struct& vm = *it->second.vm;
    free_vm_struct(vm);
    free_vmap_area_noflush(it);
    return 0;
  };
  // __vmalloc_area_node(): the page array, nested in vmalloc above a page.
  const std::uint64_t nr_pages = rsize >> mm_.profile.page_shift;
  const std::uint64_t array_size = nr_pages * 8;
  const gfp_t nested_gfp = (gfp & (GFP_KERNEL | __GFP_NOWARN)) | __GFP_ZERO;
  if (array_size > ps) {
    area->pages_array =
        __vmalloc_node_range(array_size, 1, mm_.profile.vmalloc_start, mm_.profile.vmalloc_end,
                             nested_gfp, pgprot_kernel(), 0, node, area->caller);
    area->pages_vmalloced = area->pages_array != 0;
  } else {
    area->pages_array = mm_.slab.kmalloc_node(array_size, nested_gfp, node);
  }
  if (!area->pages_array) return fail();
  area->pages.reserve(nr_pages);
  for (std::uint64_t i = 0; i < nr_pages; ++i) {
    const pfn_t pfn = node == NUMA_NO_NODE ? mm_.page_alloc.alloc_pages(gfp, 0)
                                           : mm_.page_alloc.alloc_pages_node(node, gfp, 0);
    if (pfn == NO_PAGE) {
      area->nr_pages = static_cast<unsigned>(area->pages.size());
      nr_vmalloc_pages += area->pages.size();
      return fail();  // "vmalloc error: size ..., failed to allocate pages"
    }
    area->pages.push_back(pfn);
    store_kva64(area->pages_array + i * 8, mm_.pfn_to_vmemmap(pfn));
  }
  area->nr_pages = static_cast<unsigned>(nr_pages);
  nr_vmalloc_pages += nr_pages;
  if (!mm_.pgtable.map_pages(addr, area->pages, prot)) return fail();
  area->prot = prot;
  area->flags &= ~VM_UNINITIALIZED;  // clear_vm_uninitialized_flag()
  mm_.notify([&](MmObserver& o) { o.vm_area_changed(addr, addr + area->size); });
  return addr;
}

void Vmalloc::store_kva64(vaddr_t va, std::uint64_t v) {
  std::optional<phys_addr_t> pa;
  if (mm_.is_linear_map_address(va))
    pa = mm_.__pa(va);
  else
    pa = mm_.pgtable.translate(va);
  if (pa) mm_.ram.store64(*pa, v);
}

vaddr_t Vmalloc::vmalloc_node(std::uint64_t size, int node) {
  return __vmalloc_node_range(size, 1, mm_.profile.vmalloc_start, mm_.profile.vmalloc_end,
                              GFP_KERNEL, pgprot_kernel(), 0, node, default_caller("vmalloc"));
}
vaddr_t Vmalloc::vzalloc(std::uint64_t size) {
  return vzalloc_node(size, NUMA_NO_NODE);
}
vaddr_t Vmalloc::vzalloc_node(std::uint64_t size, int node) {
  return __vmalloc_node_range(size, 1, mm_.profile.vmalloc_start, mm_.profile.vmalloc_end,
                              GFP_KERNEL | __GFP_ZERO, pgprot_kernel(), 0, node,
                              default_caller("vzalloc"));
}
vaddr_t Vmalloc::vmalloc_32(std::uint64_t size) {
  return __vmalloc_node_range(size, 1, mm_.profile.vmalloc_start, mm_.profile.vmalloc_end,
                              GFP_KERNEL | __GFP_DMA32, pgprot_kernel(), 0, NUMA_NO_NODE,
                              default_caller("vmalloc_32"));
}
vaddr_t Vmalloc::__vmalloc(std::uint64_t size, gfp_t gfp) {
  return __vmalloc_node_range(size, 1, mm_.profile.vmalloc_start, mm_.profile.vmalloc_end, gfp,
                              pgprot_kernel(), 0, NUMA_NO_NODE, default_caller("__vmalloc"));
}
vaddr_t Vmalloc::__vmalloc_node(std::uint64_t size, std::uint64_t align, gfp_t gfp, int node,
                                const char* api) {
  return __vmalloc_node_range(size, align, mm_.profile.vmalloc_start, mm_.profile.vmalloc_end, gfp,
                              pgprot_kernel(), 0, node, default_caller(api));
}
vaddr_t Vmalloc::module_alloc(std::uint64_t size) {
  return __vmalloc_node_range(size, 1, mm_.profile.modules_vaddr, mm_.profile.modules_end,
                              GFP_KERNEL, pgprot_kernel(), 0, NUMA_NO_NODE,
                              default_caller("module_alloc"));
}

void Vmalloc::vfree(vaddr_t addr) {
  if (!addr) return;
  might_sleep("vfree");
  const std::uint64_t ps = mm_.profile.page_size();
  auto it = busy_.find(addr);
  if ((addr & (ps - 1)) || it == busy_.end() || !it->second.vm) {
    if (freed_starts_.count(addr))
      report(MisuseKind::vmalloc_double_free, addr, "vfree",
             "Trying to vfree() nonexistent vm area (" + hex16(addr) + "): freed before");
    else
      report(MisuseKind::vmalloc_bad_free, addr, "vfree",
             (addr & (ps - 1)) ? "Trying to vfree() bad address (" + hex16(addr) + ")"
                               : "Trying to vfree() nonexistent vm area (" + hex16(addr) + ")");
    return;
  }
  vm_struct& vm = *it->second.vm;
  unmap_vm_area(mm_, vm);  // no flush: the TLB is flushed at purge
  const vaddr_t end = it->second.va_end;
  free_vm_struct(vm);
  remember_freed(addr);
  free_vmap_area_noflush(busy_.find(addr));
  mm_.notify([&](MmObserver& o) { o.vm_area_changed(addr, end); });
}

vaddr_t Vmalloc::vmap(std::span<const pfn_t> pages, unsigned long flags, pteval_t prot) {
  if (!initialized_) return 0;
  might_sleep("vmap");
  if (pages.empty() || pages.size() > mm_.page_alloc.totalram_pages) return 0;
  for (const pfn_t pfn : pages) {
    const bool ok = mm_.pfn_valid(pfn) && mm_.pfn_to_page(pfn)._refcount > 0 &&
                    !PageBuddy(mm_.pfn_to_page(pfn));
    if (!ok) {
      report(MisuseKind::vmalloc_bad_vmap, 0, "vmap",
             "vmap() of pfn " + std::to_string(pfn) + " which is not an allocated page");
      return 0;
    }
  }
  const std::uint64_t size = pages.size() << mm_.profile.page_shift;
  vm_struct* area = get_vm_area(size, 1, flags | VM_MAP, mm_.profile.vmalloc_start,
                                mm_.profile.vmalloc_end, NUMA_NO_NODE, default_caller("vmap"));
  if (!area) return 0;
  area->pages.assign(pages.begin(), pages.end());
  if (flags & VM_MAP_PUT_PAGES) area->nr_pages = static_cast<unsigned>(pages.size());
  area->prot = prot;
  if (!mm_.pgtable.map_pages(area->addr, area->pages, prot)) {
    const vaddr_t a = area->addr;
    mm_.pgtable.unmap_range(a, size);
    area->pages.clear();
    free_vm_struct(*area);
    free_vmap_area_noflush(busy_.find(a));
    return 0;
  }
  mm_.notify([&](MmObserver& o) { o.vm_area_changed(area->addr, area->addr + area->size); });
  return area->addr;
}

void Vmalloc::vunmap(vaddr_t addr) {
  if (!addr) return;
  might_sleep("vunmap");
  auto it = busy_.find(addr);
  if (it == busy_.end() || !it->second.vm) {
    report(
        freed_starts_.count(addr) ? MisuseKind::vmalloc_double_free : MisuseKind::vmalloc_bad_free,
        addr, "vunmap", "Trying to vunmap() nonexistent vm area (" + hex16(addr) + ")");
    return;
  }
  vm_struct& vm = *it->second.vm;
  if (vm.flags & VM_ALLOC) {
    report(MisuseKind::vmalloc_vunmap_vmalloc, addr, "vunmap",
           "vunmap() of a vmalloc() area (" + hex16(addr) + "): its " +
               std::to_string(vm.pages.size()) + " pages would leak; use vfree()");
    return;
  }
  unmap_vm_area(mm_, vm);
  if (!(vm.flags & VM_MAP_PUT_PAGES)) vm.pages.clear();  // the caller's pages
  const vaddr_t end = it->second.va_end;
  free_vm_struct(vm);
  remember_freed(addr);
  free_vmap_area_noflush(busy_.find(addr));
  mm_.notify([&](MmObserver& o) { o.vm_area_changed(addr, end); });
}

// ------------------------------------------------------------ ioremap

IoDevice* Vmalloc::device_at(phys_addr_t pa) {
  for (auto& d : devices_)
    if (pa >= d.start && pa < d.end) return &d;
  return nullptr;
}
const IoDevice* Vmalloc::device_at(phys_addr_t pa) const {
  for (const auto& d : devices_)
    if (pa >= d.start && pa < d.end) return &d;
  return nullptr;
}

vaddr_t Vmalloc::ioremap(phys_addr_t phys, std::uint64_t size) {
  return ioremap_prot(phys, size, mm_.pgtable.prot().device, "ioremap");
}
vaddr_t Vmalloc::ioremap_wc(phys_addr_t phys, std::uint64_t size) {
  return ioremap_prot(phys, size, mm_.pgtable.prot().normal_nc, "ioremap_wc");
}
vaddr_t Vmalloc::ioremap_np(phys_addr_t phys, std::uint64_t size) {
  return ioremap_prot(phys, size, mm_.pgtable.prot().device_strict, "ioremap_np");
}

vaddr_t Vmalloc::ioremap_prot(phys_addr_t phys, std::uint64_t size, pteval_t prot,
                              const char* api) {
  if (!initialized_) return 0;
  might_sleep(api);
  const std::uint64_t ps = mm_.profile.page_size();
  const std::uint64_t offset = phys & (ps - 1);
  phys -= offset;
  const std::uint64_t rsize = round_up(size + offset, ps);
  const phys_addr_t last = phys + rsize - 1;
  if (!size || rsize < size || last < phys || (last >> mm_.profile.max_physmem_bits)) return 0;
  // arm64 refuses RAM (pfn_is_map_memory() of the first page only).
  if (mm_.memblock.is_memory(phys)) {
    report(MisuseKind::ioremap_ram, 0, api,
           "WARNING: ioremap on RAM at " + hex16(phys) + " - " + hex16(last), phys);
    return 0;
  }
  const IoDevice* dev = device_at(phys);
  if (!dev || last >= dev->end) {
    report(MisuseKind::ioremap_no_device, 0, api,
           "no device claims physical " + hex16(phys) + " - " + hex16(last), phys);
    return 0;
  }
  vm_struct* area = get_vm_area(rsize, 1, VM_IOREMAP, mm_.profile.vmalloc_start,
                                mm_.profile.vmalloc_end, NUMA_NO_NODE, default_caller(api));
  if (!area) return 0;
  area->phys_addr = phys;
  area->prot = prot;
  // ioremap_page_range(): blocks where aligned, never the contiguous hint (6.1).
  if (!mm_.pgtable.map_range(area->addr, phys, rsize, prot, NO_CONT_MAPPINGS)) {
    const vaddr_t a = area->addr;
    mm_.pgtable.unmap_range(a, rsize);
    free_vm_struct(*area);
    free_vmap_area_noflush(busy_.find(a));
    return 0;
  }
  mm_.notify([&](MmObserver& o) { o.vm_area_changed(area->addr, area->addr + area->size); });
  return area->addr + offset;
}

void Vmalloc::iounmap(vaddr_t addr) {
  const vaddr_t a = addr & ~(mm_.profile.page_size() - 1);
  auto it = busy_.find(a);
  if (!is_vmalloc_addr(a) || it == busy_.end() || !it->second.vm ||
      !(it->second.vm->flags & VM_IOREMAP)) {
    report(
        freed_starts_.count(a) ? MisuseKind::vmalloc_double_free : MisuseKind::ioremap_bad_iounmap,
        addr, "iounmap", "iounmap() of " + hex16(addr) + ", which is not an ioremap() mapping");
    return;
  }
  vunmap(a);
}

bool Vmalloc::io_translate(vaddr_t addr, unsigned len, const char* api, phys_addr_t* pa,
                           IoDevice** dev) {
  if (addr & (len - 1)) {
    report(MisuseKind::ioremap_bad_access, addr, api,
           std::string("Unhandled fault: alignment fault in ") + api + " at " + hex16(addr));
    return false;
  }
  pteval_t attrs = 0;
  const auto t = mm_.is_linear_map_address(addr)
                     ? std::optional<phys_addr_t>(mm_.__pa(addr))
                     : mm_.pgtable.translate_cpu(mm_.cpu(), addr, &attrs);
  if (!t) {
    report(MisuseKind::ioremap_bad_access, addr, api,
           "Unable to handle kernel paging request at virtual address " + hex16(addr));
    return false;
  }
  *pa = *t;
  *dev = mm_.ram.contains(*t, len) ? nullptr : device_at(*t);
  if (!*dev && !mm_.ram.contains(*t, len)) {
    report(MisuseKind::ioremap_bad_access, addr, api, "SError: no device at physical " + hex16(*t));
    return false;
  }
  return true;
}

std::uint64_t Vmalloc::io_read(vaddr_t addr, unsigned len, const char* api) {
  phys_addr_t pa = 0;
  IoDevice* dev = nullptr;
  if (!io_translate(addr, len, api, &pa, &dev)) return ~std::uint64_t{0} >> (64 - 8 * len);
  std::uint64_t v = 0;
  for (unsigned i = 0; i < len; ++i) {
    std::uint8_t b = 0;
    if (dev) {
      const phys_addr_t off = pa + i - dev->start;
      if (auto it = dev->regs.find(off); it != dev->regs.end())
        b = it->second;
      else if (auto r = dev->reset.find(off); r != dev->reset.end())
        b = r->second;
    } else {
      b = mm_.ram.byte(pa + i);
    }
    v |= std::uint64_t{b} << (8 * i);
  }
  return v;
}

void Vmalloc::io_write(vaddr_t addr, std::uint64_t v, unsigned len, const char* api) {
  phys_addr_t pa = 0;
  IoDevice* dev = nullptr;
  if (!io_translate(addr, len, api, &pa, &dev)) return;
  if (!dev) {
    std::uint8_t bytes[8];
    for (unsigned i = 0; i < len; ++i) bytes[i] = static_cast<std::uint8_t>(v >> (8 * i));
    mm_.ram.write(pa, std::span<const std::uint8_t>(bytes, len));
    return;
  }
  for (unsigned i = 0; i < len; ++i)
    dev->regs[pa + i - dev->start] = static_cast<std::uint8_t>(v >> (8 * i));
}

// ------------------------------------------------------------ kmap

vaddr_t Vmalloc::kmap(pfn_t pfn) {
  might_sleep("kmap");
  if (!mm_.pfn_valid(pfn)) {
    report(MisuseKind::vm_fault, 0, "kmap", "kmap() of pfn " + std::to_string(pfn) + ": no page");
    return 0;
  }
  ++kmap_count_[pfn];
  return mm_.page_address(pfn);
}

void Vmalloc::kunmap(pfn_t pfn) {
  auto it = kmap_count_.find(pfn);
  if (it == kmap_count_.end()) {
    report(MisuseKind::kmap_unbalanced, mm_.pfn_valid(pfn) ? mm_.page_address(pfn) : 0, "kunmap",
           "kunmap() of pfn " + std::to_string(pfn) + " that is not kmap()ed");
    return;
  }
  if (--it->second == 0) kmap_count_.erase(it);
}

vaddr_t Vmalloc::kmap_push(pfn_t pfn, const char* api) {
  if (!mm_.pfn_valid(pfn)) {
    report(MisuseKind::vm_fault, 0, api,
           std::string(api) + "() of pfn " + std::to_string(pfn) + ": no page");
    return 0;
  }
  auto& st = kmap_stack_[static_cast<std::size_t>(mm_.cpu())];
  if (st.size() >= KM_MAX_IDX) {
    report(MisuseKind::kmap_nesting, mm_.page_address(pfn), api,
           "kernel BUG: kmap_local nesting deeper than KM_MAX_IDX (" + std::to_string(KM_MAX_IDX) +
               ")");
    return 0;
  }
  const vaddr_t a = mm_.page_address(pfn);
  st.push_back(a);
  return a;
}

void Vmalloc::kmap_pop(vaddr_t addr, const char* api) {
  auto& st = kmap_stack_[static_cast<std::size_t>(mm_.cpu())];
  const vaddr_t a = addr & ~(mm_.profile.page_size() - 1);
  if (st.empty()) {
    report(MisuseKind::kmap_unbalanced, addr, api,
           std::string(api) + "() of " + hex16(addr) + " with no kmap_local/atomic mapping");
    return;
  }
  if (st.back() != a) {
    auto it = std::find(st.rbegin(), st.rend(), a);
    report(it == st.rend() ? MisuseKind::kmap_unbalanced : MisuseKind::kmap_nesting, addr, api,
           std::string(api) + "() of " + hex16(addr) + " but the innermost mapping is " +
               hex16(st.back()) + " (mappings are released in reverse order)");
    if (it != st.rend()) st.erase(std::next(it).base());
    return;
  }
  st.pop_back();
}

vaddr_t Vmalloc::kmap_atomic(pfn_t pfn) {
  mm_.preempt_disable();  // and pagefault_disable()
  const vaddr_t a = kmap_push(pfn, "kmap_atomic");
  if (!a) mm_.preempt_enable();
  return a;
}

void Vmalloc::kunmap_atomic(vaddr_t addr) {
  const auto& st = kmap_stack_[static_cast<std::size_t>(mm_.cpu())];
  const bool had = !st.empty();
  kmap_pop(addr, "kunmap_atomic");
  if (had) mm_.preempt_enable();
}

vaddr_t Vmalloc::kmap_local_page(pfn_t pfn) {
  return kmap_push(pfn, "kmap_local_page");
}
void Vmalloc::kunmap_local(vaddr_t addr) {
  kmap_pop(addr, "kunmap_local");
}

// ------------------------------------------------------------ client accesses

bool Vmalloc::access(vaddr_t addr, std::uint64_t len, bool is_write, const std::uint8_t* in,
                     std::uint8_t* out, std::uint8_t fill_byte, const char* api) {
  const std::uint64_t ps = mm_.profile.page_size();
  std::uint64_t done = 0;
  while (done < len) {
    const vaddr_t va = addr + done;
    const std::uint64_t chunk = std::min(len - done, ps - (va & (ps - 1)));
    pteval_t attrs = 0;
    const auto pa = mm_.pgtable.translate_cpu(mm_.cpu(), va, &attrs);
    std::string why;
    if (!pa) {
      why = "Unable to handle kernel paging request at virtual address " + hex16(va);
      if (const vmap_area* a = find_vmap_area(va))
        why += " (guard page of area " + hex16(a->va_start) + "-" + hex16(a->va_end) + ")";
      else if (is_vmalloc_addr(va))
        why += " (no vmalloc area)";
    } else if (is_write && (attrs & PTE_RDONLY)) {
      why = "Unable to handle kernel write to read-only memory at virtual address " + hex16(va);
    } else if (!mm_.ram.contains(*pa, chunk)) {
      why = "access to device memory at " + hex16(va) + " outside the io accessors";
    }
    if (!why.empty()) {
      if (mm_.observed()) {
        Misuse m;
        m.kind = MisuseKind::vm_fault;
        m.addr = va;
        m.api = api;
        m.detail = std::move(why);
        m.access_len = len;
        m.is_write = is_write;
        mm_.notify([&](MmObserver& o) { o.misuse(m); });
      }
      return false;
    }
    if (is_write) {
      if (in)
        mm_.ram.write(*pa, std::span<const std::uint8_t>(in + done, chunk));
      else
        mm_.ram.fill(*pa, chunk, fill_byte);
    } else {
      mm_.ram.read(*pa, std::span<std::uint8_t>(out + done, chunk));
    }
    done += chunk;
  }
  return true;
}

bool Vmalloc::write(vaddr_t addr, std::span<const std::uint8_t> bytes) {
  return access(addr, bytes.size(), true, bytes.data(), nullptr, 0, "write");
}
bool Vmalloc::read(vaddr_t addr, std::span<std::uint8_t> out) {
  return access(addr, out.size(), false, nullptr, out.data(), 0, "read");
}
bool Vmalloc::fill(vaddr_t addr, std::uint64_t len, std::uint8_t byte) {
  return access(addr, len, true, nullptr, nullptr, byte, "fill");
}

}  // namespace mmfuzz::mm
