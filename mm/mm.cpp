#include "mm/mm.h"

#include <cstdio>

namespace mmfuzz::mm {

const char* boot_step_name(BootStep s) {
  switch (s) {
    case BootStep::none:
      return "none";
    case BootStep::setup_arch:
      return "setup_arch";
    case BootStep::setup_per_cpu_areas:
      return "setup_per_cpu_areas";
    case BootStep::build_all_zonelists:
      return "build_all_zonelists";
    case BootStep::page_alloc_init:
      return "page_alloc_init";
    case BootStep::mm_init:
      return "mm_init";
    case BootStep::setup_per_cpu_pageset:
      return "setup_per_cpu_pageset";
    case BootStep::initcalls:
      return "initcalls";
    case BootStep::free_initmem:
      return "free_initmem";
  }
  return "?";
}

const char* misuse_id(MisuseKind k) {
  switch (k) {
    case MisuseKind::page_double_free:
      return "page_alloc.double_free";
    case MisuseKind::page_wrong_order:
      return "page_alloc.wrong_order";
    case MisuseKind::page_free_tail:
      return "page_alloc.free_tail";
    case MisuseKind::page_free_reserved:
      return "page_alloc.free_reserved";
    case MisuseKind::page_bad_pfn:
      return "page_alloc.bad_pfn";
    case MisuseKind::page_refcount_underflow:
      return "page_alloc.refcount_underflow";
    case MisuseKind::page_bad_state:
      return "page_alloc.bad_state";
    case MisuseKind::page_bad_gfp:
      return "page_alloc.bad_gfp";
    case MisuseKind::page_bad_order:
      return "page_alloc.bad_order";
    case MisuseKind::page_split_compound:
      return "page_alloc.split_compound";
    case MisuseKind::page_free_kmalloc:
      return "page_alloc.free_kmalloc";
    case MisuseKind::slab_double_free:
      return "slab.double_free";
    case MisuseKind::slab_invalid_free:
      return "slab.invalid_free";
    case MisuseKind::slab_wrong_cache:
      return "slab.wrong_cache";
    case MisuseKind::slab_bad_cache:
      return "slab.bad_cache";
    case MisuseKind::slab_cache_destroyed:
      return "slab.cache_destroyed";
    case MisuseKind::slab_destroy_busy:
      return "slab.destroy_busy";
    case MisuseKind::slab_bad_create:
      return "slab.bad_create";
    case MisuseKind::slab_redzone:
      return "slab.redzone";
    case MisuseKind::slab_poison:
      return "slab.poison";
    case MisuseKind::slab_padding:
      return "slab.padding";
    case MisuseKind::slab_freeptr:
      return "slab.freeptr";
    case MisuseKind::kasan_out_of_bounds:
      return "kasan.out_of_bounds";
    case MisuseKind::kasan_use_after_free:
      return "kasan.use_after_free";
    case MisuseKind::kasan_wild_access:
      return "kasan.wild_access";
    case MisuseKind::vmalloc_bad_free:
      return "vmalloc.bad_free";
    case MisuseKind::vmalloc_double_free:
      return "vmalloc.double_free";
    case MisuseKind::vmalloc_vunmap_vmalloc:
      return "vmalloc.vunmap_vmalloc";
    case MisuseKind::vmalloc_sleep_in_atomic:
      return "vmalloc.sleep_in_atomic";
    case MisuseKind::vmalloc_bad_vmap:
      return "vmalloc.bad_vmap";
    case MisuseKind::ioremap_ram:
      return "ioremap.ram";
    case MisuseKind::ioremap_no_device:
      return "ioremap.no_device";
    case MisuseKind::ioremap_bad_iounmap:
      return "ioremap.bad_iounmap";
    case MisuseKind::ioremap_bad_access:
      return "ioremap.bad_access";
    case MisuseKind::kmap_unbalanced:
      return "kmap.unbalanced";
    case MisuseKind::kmap_nesting:
      return "kmap.nesting";
    case MisuseKind::vm_fault:
      return "vm.fault";
    case MisuseKind::kvmalloc_too_large:
      return "kvmalloc.too_large";
  }
  return "?";
}

std::string format_alloc_failure(const AllocFailure& f) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "mmfuzz: page allocation failure: order:%u, mode:%#x(%s), nodemask=(null)%s",
                f.order, f.gfp, format_gfp(f.gfp).c_str(),
                f.nofail ? " [__GFP_NOFAIL: the kernel would retry forever]" : "");
  return buf;
}

Mm::Mm(const MmConfig& cfg) : Mm(cfg, BootStep::free_initmem) {}

Mm::Mm(const MmConfig& cfg, BootStep until)
    : config(cfg),
      profile(profile_by_name(cfg.profile)),
      machine(cfg.machine),
      page_alloc(*this),
      slab(*this),
      mempools(*this),
      pgtable(*this),
      vmalloc(*this) {
  validate_machine(machine, profile);
  if (cfg.planted != PlantedDefect::none && !kPlantedDefects)
    throw ConfigError("planted defect " + std::string(planted_defect_name(cfg.planted)) +
                      " needs a build with MMFUZZ_PLANTED_DEFECTS=ON");
  // The buddy code relies on a MAX_ORDER block never crossing a section.
  if (profile.pfn_section_shift() < profile.max_order - 1)
    throw ConfigError("profile " + profile.name +
                      ": a MAX_ORDER block is larger than a memory section");
  for (unsigned c = 0; c < machine.nr_cpus; ++c) cpu_node_.push_back(mm::cpu_to_node(machine, c));
  preempt_count_.assign(machine.nr_cpus, 0);
  boot_to(until);
}

void Mm::boot_to(BootStep step) {
  while (static_cast<int>(boot_step_) < static_cast<int>(step)) {
    const auto next = static_cast<BootStep>(static_cast<int>(boot_step_) + 1);
    cpu_ = 0;  // the boot CPU does all of it
    switch (next) {
      case BootStep::none:
        break;
      case BootStep::setup_arch:
        setup_arch();
        break;
      case BootStep::setup_per_cpu_areas:
        break;  // the percpu chunk is one of the early allocations
      case BootStep::build_all_zonelists:
        page_alloc.build_all_zonelists();
        break;
      case BootStep::page_alloc_init:
        break;  // CPU hotplug callbacks only
      case BootStep::mm_init: {
        page_alloc.memblock_free_all();
        pgtable.mark_boot_tables();
        pgtable.enable_page_alloc();
        if (config.slab.enabled)
          slab.kmem_cache_init(config.slab);  // kmem_cache_init(), after mem_init()
        if (config.vmalloc) vmalloc.vmalloc_init();
        const auto kb = [&](std::uint64_t pages) { return pages << (profile.page_shift - 10); };
        std::uint64_t present = 0;
        for (const auto& r : memblock.memory.regions) present += r.size >> profile.page_shift;
        char buf[200];
        std::snprintf(
            buf, sizeof buf,
            "Memory: %lluK/%lluK available (%lluK kernel code, %lluK init, %lluK data, %lluK "
            "reserved, "
            "%lluK cma-reserved)",
            static_cast<unsigned long long>(kb(page_alloc.totalram_pages)),
            static_cast<unsigned long long>(kb(present)),
            static_cast<unsigned long long>(machine.kernel_code_size >> 10),
            static_cast<unsigned long long>(machine.kernel_init_size >> 10),
            static_cast<unsigned long long>(machine.kernel_data_size >> 10),
            static_cast<unsigned long long>(kb(boot_reserved_pages - page_alloc.cma.count)),
            static_cast<unsigned long long>(kb(page_alloc.cma.count)));
        log(buf);
        break;
      }
      case BootStep::setup_per_cpu_pageset:
        page_alloc.setup_per_cpu_pageset();
        break;
      case BootStep::initcalls:
        page_alloc.cma_activate();                                      // core_initcall
        page_alloc.init_per_zone_wmark_min();                           // postcore_initcall
        capture_iomem();                                                // arch_initcall
        if (profile.thp) page_alloc.set_recommended_min_free_kbytes();  // subsys_initcall
        if (machine.min_free_kbytes) {  // vm.min_free_kbytes from the machine file
          page_alloc.min_free_kbytes = *machine.min_free_kbytes;
          page_alloc.user_min_free_kbytes = static_cast<long>(*machine.min_free_kbytes);
          page_alloc.setup_per_zone_wmarks();
        }
        break;
      case BootStep::free_initmem:
        free_initmem();
        break;
    }
    boot_step_ = next;
  }
}

void Mm::setup_arch() {
  // setup_machine_fdt(): the DT memory nodes, with their NUMA node ids.
  const auto nodes = node_memory(machine, profile);
  for (unsigned nid = 0; nid < nodes.size(); ++nid)
    for (const auto& r : nodes[nid]) memblock.add_node(r.start, r.size(), static_cast<int>(nid));
  ram.init(machine.ram_base, machine.ram_size, profile.page_shift);

  // arm64_memblock_init(): PHYS_OFFSET, the kernel image, initrd and DTB.
  const std::uint64_t memstart_align = std::max<std::uint64_t>(
      std::uint64_t{1} << 30, std::uint64_t{1} << profile.section_size_bits);
  memstart_addr = round_down(memblock.start_of_DRAM(), memstart_align);
  kimage.code_start = machine.kernel_start();
  kimage.init_start = kimage.code_start + machine.kernel_code_size;
  kimage.data_start = kimage.init_start + machine.kernel_init_size;
  kimage.end = kimage.data_start + machine.kernel_data_size;
  memblock.reserve(kimage.code_start, kimage.end - kimage.code_start);
  const std::uint64_t ps = profile.page_size();
  if (machine.initrd_size) {
    initrd_start = machine.initrd_start();
    initrd_end = initrd_start + machine.initrd_size;
    memblock.reserve(round_down(initrd_start, ps),
                     round_up(initrd_end, ps) - round_down(initrd_start, ps));
  }
  if (machine.dtb_size) memblock.reserve(machine.dtb_start(), round_up(machine.dtb_size, ps));

  // paging_init(): swapper_pg_dir, from the first early allocation (the
  // real boot's page tables); then the other top-down allocations of the
  // real boot (percpu, NODE_DATA, ...).
  pgtable.paging_init();
  std::vector<std::pair<phys_addr_t, std::uint64_t>> to_free;
  bool first = true;
  for (const auto& a : machine.early_allocs) {
    if (first && !a.freed) {
      first = false;
      continue;  // the page-table pool paging_init() took
    }
    first = false;
    const phys_addr_t pa = memblock.phys_alloc(round_up(a.size, ps), ps);
    if (!pa) throw ConfigError("RAM too small for the early boot allocations");
    if (a.freed) to_free.emplace_back(pa, round_up(a.size, ps));
  }
  bootmem_init();
  for (const auto& [pa, size] : to_free) memblock.phys_free(pa, size);
}

void Mm::bootmem_init() {
  sparse.init(profile);
  for (const auto& r : memblock.memory.regions) sparse.memory_present(r.nid, r.base, r.end());
  // sparse_init(): one memmap buffer per node, aligned to section_map_size().
  const std::uint64_t section_map_size =
      round_up(profile.pages_per_section() * profile.struct_page_size, std::uint64_t{2} * SZ_1M);
  const std::uint64_t memmap = sparse.sparse_init();
  const std::uint64_t per_node = memmap / machine.nr_nodes;
  for (unsigned nid = 0; nid < machine.nr_nodes; ++nid) {
    phys_addr_t lo = ~phys_addr_t{0}, hi = 0;
    for (const auto& r : memblock.memory.regions)
      if (r.nid == static_cast<int>(nid)) lo = std::min(lo, r.base), hi = std::max(hi, r.end());
    phys_addr_t pa = memblock.phys_alloc_range(per_node, section_map_size, lo, hi);
    if (!pa) pa = memblock.phys_alloc(per_node, section_map_size);
    if (!pa)
      throw ConfigError("RAM too small for the memmap (" + std::to_string(memmap >> 20) + " MiB)");
    memmap_phys.emplace_back(pa, per_node);
  }
  // vmemmap_populate(): each present section's memmap at its vmemmap address,
  // in section order through the node buffers.
  {
    const std::uint64_t per_section = profile.pages_per_section() * profile.struct_page_size;
    std::vector<phys_addr_t> cursor;
    for (const auto& [pa, size] : memmap_phys) cursor.push_back(pa);
    for (const std::uint64_t nr : sparse.present_sections()) {
      const pfn_t pfn = nr << profile.pfn_section_shift();
      int nid = 0;
      for (const auto& r : memblock.memory.regions)
        if ((pfn << profile.page_shift) >= r.base && (pfn << profile.page_shift) < r.end()) {
          nid = r.nid;
          break;
        }
      const std::size_t n = nid >= 0 && static_cast<std::size_t>(nid) < cursor.size()
                                ? static_cast<std::size_t>(nid)
                                : 0;
      pgtable.map_vmemmap(pfn_to_vmemmap(pfn), cursor[n],
                          round_up(per_section, profile.page_size()));
      cursor[n] += round_up(per_section, profile.page_size());
    }
  }
  memmap_bytes = memmap;
  zone_sizes_init();
  dma_contiguous_reserve(arm64_dma_phys_limit_);
}

void Mm::zone_sizes_init() {
  // max_zone_phys(): the zone limit is relative to where DRAM starts.
  auto max_zone_phys = [&](unsigned bits) -> phys_addr_t {
    phys_addr_t zone_mask = (bits >= 64) ? ~phys_addr_t{0} : (phys_addr_t{1} << bits) - 1;
    const phys_addr_t phys_start = memblock.start_of_DRAM();
    if (phys_start > 0xffffffffull)
      zone_mask = ~phys_addr_t{0};
    else if (phys_start > zone_mask)
      zone_mask = 0xffffffffull;
    return std::min(zone_mask, memblock.end_of_DRAM() - 1) + 1;
  };
  arm64_dma_phys_limit_ = max_zone_phys(profile.zone_dma_bits);
  const phys_addr_t dma32_limit = max_zone_phys(32);
  std::vector<pfn_t> max_zone_pfn(MAX_NR_ZONES, 0);
  max_zone_pfn[ZONE_DMA] = arm64_dma_phys_limit_ >> profile.page_shift;
  max_zone_pfn[ZONE_DMA32] = dma32_limit >> profile.page_shift;
  max_zone_pfn[ZONE_NORMAL] = memblock.end_of_DRAM() >> profile.page_shift;
  page_alloc.free_area_init(max_zone_pfn);
}

void Mm::dma_contiguous_reserve(phys_addr_t limit) {
  const std::uint64_t size = machine.cma_size.value_or(profile.cma_size);
  if (!size) return;
  const std::uint64_t align = profile.page_size()
                              << std::max(profile.max_order - 1, profile.pageblock_order);
  const std::uint64_t rsize = round_up(size, align);
  const phys_addr_t base = memblock.phys_alloc_range(rsize, align, 0, limit);
  char buf[120];
  if (!base) {
    std::snprintf(buf, sizeof buf, "cma: Failed to reserve %llu MiB",
                  static_cast<unsigned long long>(rsize >> 20));
    log(buf);
    return;
  }
  page_alloc.cma.base = base;
  page_alloc.cma.count = rsize >> profile.page_shift;
  std::snprintf(buf, sizeof buf, "cma: Reserved %llu MiB at %#018llx",
                static_cast<unsigned long long>(rsize >> 20),
                static_cast<unsigned long long>(base));
  log(buf);
}

// request_standard_resources() + reserve_memblock_reserved_regions().
void Mm::capture_iomem() {
  iomem.clear();
  std::vector<IomemLine> top;
  for (const auto& d : machine.devices) top.push_back({d.start, d.end, d.name, d.depth});
  // Devices keep their children directly after them; RAM goes in address order.
  std::vector<std::vector<IomemLine>> groups;
  for (const auto& l : top) {
    if (l.depth == 0 || groups.empty())
      groups.push_back({l});
    else
      groups.back().push_back(l);
  }
  for (const auto& r : memblock.memory.regions) {
    std::vector<IomemLine> g;
    g.push_back({r.base, r.end() - 1, "System RAM", 0});
    std::vector<IomemLine> kids;
    auto add_child = [&](phys_addr_t s, phys_addr_t e, const char* name) {
      s = std::max(s, r.base);
      e = std::min(e, r.end());
      if (e > s) kids.push_back({s, e - 1, name, 1});
    };
    add_child(kimage.code_start, kimage.init_start, "Kernel code");
    add_child(kimage.data_start, kimage.end, "Kernel data");
    // reserve_region_with_split(): reserved ranges fill the gaps only.
    for (const auto& res : memblock.reserved.regions) {
      phys_addr_t s = std::max(res.base, r.base), e = std::min(res.end(), r.end());
      if (e <= s) continue;
      std::vector<IomemLine> existing = kids;
      std::sort(existing.begin(), existing.end(),
                [](auto& a, auto& b) { return a.start < b.start; });
      phys_addr_t cur = s;
      for (const auto& k : existing) {
        if (k.end + 1 <= cur || k.start >= e) continue;
        if (k.start > cur) kids.push_back({cur, k.start - 1, "reserved", 1});
        cur = std::max(cur, k.end + 1);
      }
      if (cur < e) kids.push_back({cur, e - 1, "reserved", 1});
    }
    std::sort(kids.begin(), kids.end(), [](auto& a, auto& b) { return a.start < b.start; });
    g.insert(g.end(), kids.begin(), kids.end());
    groups.push_back(std::move(g));
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](auto& a, auto& b) { return a.front().start < b.front().start; });
  for (auto& g : groups) iomem.insert(iomem.end(), g.begin(), g.end());
}

void Mm::free_initmem() {
  constexpr int POISON_FREE_INITMEM = 0xcc;
  char buf[80];
  if (initrd_end > initrd_start) {
    // arm64 keeps memblock after boot, so free_initrd_mem() returns the
    // range to it before freeing the pages.
    const std::uint64_t ps = profile.page_size();
    memblock.phys_free(round_down(initrd_start, ps),
                       round_up(initrd_end, ps) - round_down(initrd_start, ps));
    const auto pages = page_alloc.free_reserved_area(initrd_start, initrd_end, POISON_FREE_INITMEM);
    std::snprintf(buf, sizeof buf, "Freeing initrd memory: %lluK",
                  static_cast<unsigned long long>(pages << (profile.page_shift - 10)));
    log(buf);
  }
  const auto pages =
      page_alloc.free_reserved_area(kimage.init_start, kimage.data_start, POISON_FREE_INITMEM);
  pgtable.free_initmem();
  std::snprintf(buf, sizeof buf, "Freeing unused kernel memory: %lluK",
                static_cast<unsigned long long>(pages << (profile.page_shift - 10)));
  log(buf);
}

bool Mm::set_cpu(int cpu) {
  if (cpu < 0 || static_cast<unsigned>(cpu) >= machine.nr_cpus) return false;
  cpu_ = cpu;
  return true;
}

vaddr_t Mm::pfn_to_vmemmap(pfn_t pfn) const {
  return profile.vmemmap_start +
         (pfn - (memstart_addr >> profile.page_shift)) * profile.struct_page_size;
}

// Periodic work: kswapd, and the slab layer's (SLAB's cache_reap).
void Mm::tick() {
  page_alloc.kswapd_run();
  if (slab.initialized()) slab.tick();
  vmalloc.tick();
}

std::vector<std::pair<pfn_t, pfn_t>> Mm::memory_pfn_ranges() const {
  std::vector<std::pair<pfn_t, pfn_t>> out;
  const std::uint64_t page = std::uint64_t{1} << profile.page_shift;
  for (const auto& r : memblock.memory.regions) {
    pfn_t s = (r.base + page - 1) >> profile.page_shift;
    pfn_t e = r.end() >> profile.page_shift;
    s = std::max(s, sparse.base_pfn());
    e = std::min(e, sparse.end_pfn());
    for (pfn_t pfn = s; pfn < e;) {  // split at sections without a memmap
      const pfn_t next =
          std::min<pfn_t>(e, ((pfn >> sparse.section_shift()) + 1) << sparse.section_shift());
      if (sparse.pfn_valid(pfn)) {
        if (!out.empty() && out.back().second == pfn)
          out.back().second = next;
        else
          out.emplace_back(pfn, next);
      }
      pfn = next;
    }
  }
  return out;
}

}  // namespace mmfuzz::mm
