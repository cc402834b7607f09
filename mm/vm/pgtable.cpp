#include "mm/vm/pgtable.h"

#include <algorithm>

#include "mm/mm.h"

namespace mmfuzz::mm {

namespace {

constexpr pteval_t PMD_TABLE_UXN = 1ull << 60;  // UXNTable: no EL0 execution below
constexpr std::uint64_t kTlbEntriesPerCpu = 4096;

bool is_table(pteval_t d, int level) {
  return level < PTE && (d & PTE_TYPE_MASK) == PMD_TYPE_TABLE;
}
bool is_block(pteval_t d, int level) {
  return (level == PUD || level == PMD) && (d & PTE_TYPE_MASK) == PMD_TYPE_SECT;
}
bool is_page(pteval_t d, int level) {
  return level == PTE && (d & PTE_TYPE_MASK) == PTE_TYPE_PAGE;
}

// The end of the entry covering `addr` at `level`, clamped to `end` (the top
// of the address space wraps to 0).
vaddr_t entry_end(vaddr_t addr, int level, vaddr_t end) {
  const vaddr_t next = (addr & ~(level_size(level) - 1)) + level_size(level);
  return (next - 1 < end - 1) ? next : end;
}

}  // namespace

const char* pg_level_name(int level) {
  static const char* const names[] = {"PGD", "PUD", "PMD", "PTE"};
  return level >= 0 && level < 4 ? names[level] : "?";
}

PageTables::PageTables(Mm& mm) : mm_(mm), tlb_(mm.machine.nr_cpus) {
  const KernelProfile& p = mm.profile;
  PgProts& q = prot_;
  const pteval_t ng = p.kpti ? PTE_NG : 0;  // PTE_MAYBE_NG
  const pteval_t prot_default = PTE_TYPE_PAGE | PTE_AF | PTE_SHARED | ng;
  const pteval_t prot_normal =
      prot_default | PTE_PXN | PTE_UXN | PTE_DIRTY | PTE_WRITE | PTE_ATTRINDX(p.mt_normal);
  q.kernel = prot_normal;
  q.kernel_ro = (prot_normal & ~PTE_WRITE) | PTE_RDONLY;
  q.kernel_rox = (prot_normal & ~(PTE_WRITE | PTE_PXN)) | PTE_RDONLY;
  q.kernel_exec = prot_normal & ~PTE_PXN;
  q.device = prot_default | PTE_PXN | PTE_UXN | PTE_WRITE | PTE_ATTRINDX(p.mt_device_ngnre);
  q.device_strict = prot_default | PTE_PXN | PTE_UXN | PTE_WRITE | PTE_ATTRINDX(p.mt_device_ngnrne);
  q.normal_nc = prot_default | PTE_PXN | PTE_UXN | PTE_WRITE | PTE_ATTRINDX(p.mt_normal_nc);
  // PROT_SECT_NORMAL carries no nG and no DBM; written here as a page prot.
  q.sect_normal =
      PTE_TYPE_PAGE | PTE_AF | PTE_SHARED | PTE_PXN | PTE_UXN | PTE_ATTRINDX(p.mt_normal);
}

pteval_t PageTables::read_desc(phys_addr_t entry) const {
  return mm_.ram.load64(entry);
}
void PageTables::write_desc(phys_addr_t entry, pteval_t v) {
  mm_.ram.store64(entry, v);
}

bool PageTables::is_boot_table(pfn_t pfn) const {
  return std::binary_search(boot_tables_.begin(), boot_tables_.end(), pfn);
}

// ------------------------------------------------------------ table pages

phys_addr_t PageTables::alloc_table(int /*level*/) {
  const std::uint64_t ps = mm_.profile.page_size();
  if (use_page_alloc_) {
    // GFP_PGTABLE_KERNEL; the model marks and accounts every kernel table.
    const pfn_t pfn = mm_.page_alloc.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0);
    if (pfn == NO_PAGE) return 0;
    page& pg = mm_.pfn_to_page(pfn);
    pg.set_type(PG_table);
    mm_.page_alloc.node_data[pg.nid].vm_stat[NR_PAGETABLE]++;
    ++nr_tables;
    return pfn << mm_.profile.page_shift;
  }
  phys_addr_t pa = 0;
  if (pool_ < pool_end_) {
    pa = pool_;
    pool_ += ps;
  } else {
    pa = mm_.memblock.phys_alloc(ps, ps);
    if (!pa) throw ConfigError("RAM too small for the boot page tables");
  }
  mm_.ram.zero(pa, ps);
  const pfn_t pfn = pa >> mm_.profile.page_shift;
  boot_tables_.insert(std::upper_bound(boot_tables_.begin(), boot_tables_.end(), pfn), pfn);
  return pa;
}

void PageTables::free_table(phys_addr_t pa) {
  const pfn_t pfn = pa >> mm_.profile.page_shift;
  page& pg = mm_.pfn_to_page(pfn);
  pg.clear_type(PG_table);
  ++nr_tables_freed;
  if (is_boot_table(pfn)) {
    // A memblock table: back to the allocator as free_reserved_page() does.
    boot_tables_.erase(std::lower_bound(boot_tables_.begin(), boot_tables_.end(), pfn));
    mm_.memblock.phys_free(pa, mm_.profile.page_size());
    mm_.page_alloc.free_reserved_area(pa, pa + mm_.profile.page_size(), 0x100);
    return;
  }
  mm_.page_alloc.node_data[pg.nid].vm_stat[NR_PAGETABLE]--;
  --nr_tables;
  mm_.page_alloc.__free_pages(pfn, 0);
}

void PageTables::mark_boot_tables() {
  for (const pfn_t pfn : boot_tables_)
    if (mm_.pfn_valid(pfn)) mm_.pfn_to_page(pfn).set_type(PG_table);
}

bool PageTables::table_empty(phys_addr_t table) const {
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i)
    if (read_desc(table + i * 8ull)) return false;
  return true;
}

// ------------------------------------------------------------ mapping

void PageTables::clear_cont_group(phys_addr_t table, unsigned idx) {
  const unsigned first = idx & ~(CONT_PTES - 1);
  for (unsigned i = first; i < first + CONT_PTES; ++i) {
    const phys_addr_t e = table + i * 8ull;
    const pteval_t d = read_desc(e);
    if (d & PTE_CONT) write_desc(e, d & ~PTE_CONT);
  }
}

bool PageTables::split_block(phys_addr_t entry, int level) {
  const pteval_t d = read_desc(entry);
  const phys_addr_t table = entry & ~(mm_.profile.page_size() - 1);
  if (d & PTE_CONT) clear_cont_group(table, static_cast<unsigned>((entry - table) / 8));
  const phys_addr_t child = alloc_table(level + 1);
  if (!child) return false;
  const pteval_t attrs = read_desc(entry) & ~PTE_ADDR_MASK & ~PTE_CONT & ~PTE_TYPE_MASK;
  const phys_addr_t base = d & PTE_ADDR_MASK;
  const pteval_t type = level + 1 == PTE ? PTE_TYPE_PAGE : PMD_TYPE_SECT;
  const std::uint64_t step = level_size(level + 1);
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i)
    write_desc(child + i * 8ull, ((base + i * step) & PTE_ADDR_MASK) | attrs | type);
  write_desc(entry, child | PMD_TYPE_TABLE | PMD_TABLE_UXN);
  return true;
}

bool PageTables::map_level(phys_addr_t table, int level, vaddr_t va, vaddr_t end, phys_addr_t pa,
                           pteval_t prot, unsigned flags) {
  const std::uint64_t size = level_size(level);
  const pteval_t attrs = prot & ~PTE_ADDR_MASK & ~PTE_TYPE_MASK & ~PTE_CONT;
  vaddr_t addr = va;
  phys_addr_t phys = pa;
  while (addr != end) {
    const vaddr_t next = entry_end(addr, level, end);
    const unsigned idx = level_index(addr, level);
    const phys_addr_t entry = table + idx * 8ull;
    pteval_t d = read_desc(entry);
    if (level == PTE) {
      if (d & PTE_CONT) clear_cont_group(table, idx);
      write_desc(entry, (phys & PTE_ADDR_MASK) | attrs | PTE_TYPE_PAGE);
    } else {
      bool block = (level == PUD || level == PMD) && !(flags & NO_BLOCK_MAPPINGS) &&
                   ((addr | next | phys) & (size - 1)) == 0 && next - addr == size;
      if (block && is_table(d, level)) {
        // pmd_free_pte_page(): an empty table may give way to a block.
        const phys_addr_t child = d & PTE_ADDR_MASK;
        if (table_empty(child)) {
          write_desc(entry, 0);
          free_table(child);
          d = 0;
        } else {
          block = false;
        }
      }
      if (block) {
        if (d & PTE_CONT) clear_cont_group(table, idx);
        write_desc(entry, (phys & PTE_ADDR_MASK) | attrs | PMD_TYPE_SECT);
      } else {
        if (!(d & PTE_VALID)) {
          const phys_addr_t child = alloc_table(level + 1);
          if (!child) return false;
          write_desc(entry, child | PMD_TYPE_TABLE | PMD_TABLE_UXN);
        } else if (is_block(d, level)) {
          if (!split_block(entry, level)) return false;
        }
        d = read_desc(entry);
        if (!map_level(d & PTE_ADDR_MASK, level + 1, addr, next, phys, prot, flags)) return false;
      }
    }
    phys += next - addr;
    addr = next;
  }
  // Contiguous hint: 16 aligned entries written here, all leaves of one kind.
  if ((level == PTE || level == PMD) && !(flags & NO_CONT_MAPPINGS)) {
    const std::uint64_t group = size * CONT_PTES;
    for (vaddr_t g = (va + group - 1) & ~(group - 1); g - va < end - va && end - g >= group;
         g += group) {
      const phys_addr_t gpa = pa + (g - va);
      if (gpa & (group - 1)) continue;
      const unsigned first = level_index(g, level);
      bool all = true;
      for (unsigned i = first; i < first + CONT_PTES && all; ++i) {
        const pteval_t e = read_desc(table + i * 8ull);
        all = level == PTE ? is_page(e, level) : is_block(e, level);
      }
      if (!all) continue;
      for (unsigned i = first; i < first + CONT_PTES; ++i)
        write_desc(table + i * 8ull, read_desc(table + i * 8ull) | PTE_CONT);
    }
  }
  return true;
}

bool PageTables::map_range(vaddr_t va, phys_addr_t pa, std::uint64_t size, pteval_t prot,
                           unsigned flags) {
  const std::uint64_t ps = mm_.profile.page_size();
  if (!size || (va | pa | size) & (ps - 1)) return false;
  return map_level(pgd_, PGD, va, va + size, pa, prot, flags);
}

bool PageTables::map_pages(vaddr_t va, std::span<const pfn_t> pfns, pteval_t prot) {
  const unsigned shift = mm_.profile.page_shift;
  for (std::size_t i = 0; i < pfns.size();) {
    std::size_t j = i + 1;
    while (j < pfns.size() && pfns[j] == pfns[j - 1] + 1) ++j;
    if (!map_level(pgd_, PGD, va + (i << shift), va + (j << shift), pfns[i] << shift, prot,
                   NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS))
      return false;
    i = j;
  }
  return true;
}

void PageTables::update_level(phys_addr_t table, int level, vaddr_t va, vaddr_t end, bool unmap,
                              pteval_t set, pteval_t clear, bool* ok) {
  const std::uint64_t size = level_size(level);
  for (vaddr_t addr = va; addr != end;) {
    const vaddr_t next = entry_end(addr, level, end);
    const unsigned idx = level_index(addr, level);
    const phys_addr_t entry = table + idx * 8ull;
    pteval_t d = read_desc(entry);
    if (d & PTE_VALID) {
      const bool leaf = is_page(d, level) || is_block(d, level);
      const bool whole = next - addr == size;
      if (leaf && whole) {
        if (d & PTE_CONT) {
          // Changing part of a contiguous group breaks the whole group.
          const std::uint64_t group = size * CONT_PTES;
          const vaddr_t g = addr & ~(group - 1);
          if (g < va || g + group - 1 > end - 1) clear_cont_group(table, idx);
          d = read_desc(entry);
        }
        write_desc(entry, unmap ? 0 : (d & ~clear) | set);
      } else if (leaf) {
        if (!split_block(entry, level)) {
          *ok = false;
          return;
        }
        d = read_desc(entry);
      }
      if (is_table(d, level))
        update_level(d & PTE_ADDR_MASK, level + 1, addr, next, unmap, set, clear, ok);
      if (!*ok) return;
    }
    addr = next;
  }
}

void PageTables::unmap_range(vaddr_t va, std::uint64_t size) {
  bool ok = true;
  if (size) update_level(pgd_, PGD, va, va + size, true, 0, 0, &ok);
}

bool PageTables::change_prot(vaddr_t va, std::uint64_t size, pteval_t set, pteval_t clear) {
  bool ok = true;
  if (size) update_level(pgd_, PGD, va, va + size, false, set, clear, &ok);
  return ok;
}

// ------------------------------------------------------------ walking

PgWalk PageTables::walk(vaddr_t va) const {
  PgWalk w;
  phys_addr_t table = pgd_;
  if (!table) return w;
  for (int level = PGD; level <= PTE; ++level) {
    w.table[static_cast<std::size_t>(level)] = table;
    w.level = level;
    w.entry = table + level_index(va, level) * 8ull;
    w.desc = read_desc(w.entry);
    if (!(w.desc & PTE_VALID)) return w;
    if (is_table(w.desc, level)) {
      table = w.desc & PTE_ADDR_MASK;
      continue;
    }
    if (is_block(w.desc, level) || is_page(w.desc, level)) {
      const std::uint64_t size = level_size(level);
      w.leaf = true;
      w.pa = (w.desc & PTE_ADDR_MASK & ~(size - 1)) | (va & (size - 1));
    }
    return w;  // a block at PGD level or a reserved PTE encoding faults
  }
  return w;
}

std::optional<phys_addr_t> PageTables::translate(vaddr_t va) const {
  const PgWalk w = walk(va);
  if (!w.leaf) return std::nullopt;
  return w.pa;
}

std::optional<phys_addr_t> PageTables::translate_cpu(int cpu, vaddr_t va, pteval_t* attrs) {
  const std::uint64_t ps = mm_.profile.page_size();
  auto& t = tlb_[static_cast<std::size_t>(cpu)];
  const vaddr_t page_va = va & ~(ps - 1);
  if (auto it = t.find(page_va); it != t.end()) {
    if (attrs) *attrs = it->second.attrs;
    return it->second.pa | (va & (ps - 1));
  }
  const PgWalk w = walk(va);
  if (!w.leaf) return std::nullopt;              // invalid entries are never cached
  if (t.size() >= kTlbEntriesPerCpu) t.clear();  // eviction, deterministically
  TlbEntry e{w.pa & ~(ps - 1), w.desc & ~PTE_ADDR_MASK, mm_.op_seq};
  t.emplace(page_va, e);
  if (attrs) *attrs = e.attrs;
  return w.pa;
}

void PageTables::flush_tlb_kernel_range(vaddr_t start, vaddr_t end) {
  ++nr_tlb_flushes;
  const std::uint64_t ps = mm_.profile.page_size();
  for (auto& t : tlb_) {
    if (t.empty()) continue;
    if ((end - start) / ps <= t.size()) {
      for (vaddr_t a = start & ~(ps - 1); a < end; a += ps) t.erase(a);
    } else {
      std::erase_if(t, [&](const auto& kv) { return kv.first >= start && kv.first < end; });
    }
  }
}

void PageTables::flush_tlb_all() {
  ++nr_tlb_flushes;
  for (auto& t : tlb_) t.clear();
}

void PageTables::walk_table(
    phys_addr_t table, int level, vaddr_t base,
    const std::function<void(int, vaddr_t, phys_addr_t, pteval_t)>& f) const {
  for (unsigned i = 0; i < PTRS_PER_TABLE; ++i) {
    const phys_addr_t e = table + i * 8ull;
    const pteval_t d = read_desc(e);
    if (!(d & PTE_VALID)) continue;
    const vaddr_t va = base | (vaddr_t{i} << kLevelShift[level]);
    f(level, kernel_va(va), e, d);
    if (is_table(d, level) && mm_.ram.contains(d & PTE_ADDR_MASK, 4096))
      walk_table(d & PTE_ADDR_MASK, level + 1, va, f);
  }
}

void PageTables::for_each_desc(
    const std::function<void(int, vaddr_t, phys_addr_t, pteval_t)>& f) const {
  if (pgd_) walk_table(pgd_, PGD, 0, f);
}

// ------------------------------------------------------------ boot

void PageTables::paging_init() {
  const std::uint64_t ps = mm_.profile.page_size();
  const MachineConfig& m = mm_.machine;
  // The real boot's first top-down memblock allocation holds the page
  // tables: carve it out as the pool (the rest of it stays reserved).
  if (!m.early_allocs.empty() && !m.early_allocs.front().freed) {
    const std::uint64_t size = round_up(m.early_allocs.front().size, ps);
    pool_ = mm_.memblock.phys_alloc(size, ps);
    if (!pool_) throw ConfigError("RAM too small for the early boot allocations");
    pool_end_ = pool_ + size;
  }
  rodata_full = mm_.config.rodata_full;
  pgd_ = alloc_table(PGD);  // swapper_pg_dir

  // map_mem(): all memory, the kernel text alias mapped on its own so its
  // permissions can change later (mark_linear_text_alias_ro).
  const phys_addr_t kstart = mm_.kimage.code_start, kend = mm_.kimage.init_start;
  const unsigned flags = rodata_full ? NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS : 0;
  auto map_mem = [&](phys_addr_t s, phys_addr_t e) {
    // pgprot_tagged(PAGE_KERNEL): the linear map allows MTE tags (the
    // MAIR slot is plain Normal memory on CPUs without MTE).
    const pteval_t tagged =
        (prot_.kernel & ~PTE_ATTRINDX_MASK) | PTE_ATTRINDX(mm_.profile.mt_normal_tagged);
    if (e > s && !map_range(mm_.__va(s), s, e - s, tagged, flags))
      throw ConfigError("RAM too small for the boot page tables");
  };
  for (const auto& r : mm_.memblock.memory.regions) {
    const phys_addr_t s = round_up(r.base, ps), e = round_down(r.end(), ps);
    if (kend <= s || kstart >= e) {
      map_mem(s, e);
    } else {
      map_mem(s, std::max(s, kstart));
      map_mem(std::min(e, kend), e);
    }
  }
  if (!map_range(mm_.__va(kstart), kstart, kend - kstart, prot_.kernel, NO_CONT_MAPPINGS))
    throw ConfigError("RAM too small for the boot page tables");

  // map_kernel(): the image at KIMAGE_VADDR, one segment per permission.
  const phys_addr_t text_pa = round_down(kstart, 2 * SZ_1M);  // _text
  auto kva = [&](phys_addr_t pa) { return mm_.profile.modules_end + (pa - text_pa); };
  const std::uint64_t text = std::min(m.kernel_text_size, kend - kstart);
  const std::uint64_t init = mm_.kimage.data_start - kend;
  const std::uint64_t inittext = std::max<std::uint64_t>(ps, round_down(init / 4, 64 * SZ_1K));
  struct Seg {
    const char* name;
    phys_addr_t start, end;
    pteval_t prot;
    unsigned flags;
  };
  const Seg segs[] = {
      {"vmlinux_text", kstart, kstart + text, prot_.kernel_rox, 0},
      {"vmlinux_rodata", kstart + text, kend, prot_.kernel, NO_CONT_MAPPINGS},
      {"vmlinux_inittext", kend, kend + std::min(inittext, init), prot_.kernel_rox, 0},
      {"vmlinux_initdata", kend + std::min(inittext, init), mm_.kimage.data_start, prot_.kernel, 0},
      {"vmlinux_data", mm_.kimage.data_start, round_up(mm_.kimage.end, ps), prot_.kernel, 0},
  };
  for (const Seg& s : segs) {
    if (s.end <= s.start) continue;
    if (!map_range(kva(s.start), s.start, s.end - s.start, s.prot, s.flags))
      throw ConfigError("RAM too small for the boot page tables");
    kimage_segments.push_back({s.name, kva(s.start), s.start, s.end - s.start});
  }

  // The PCIe host's I/O window at PCI_IO_START (pci_remap_iospace()). The
  // kernel maps it when the host probes; the model maps it here so its
  // tables come from the boot pool and boot leaves the buddy lists as the
  // guest's /proc shows them.
  if (m.pci_io.size() && !map_range(mm_.profile.pci_io_start, m.pci_io.start, m.pci_io.size(),
                                    prot_.device, NO_CONT_MAPPINGS))
    throw ConfigError("RAM too small for the boot page tables");

  // Fixmap: the DTB stays mapped read-only (fixmap_remap_fdt), by pages.
  if (m.dtb_size) {
    const vaddr_t dt_virt = mm_.profile.fixaddr_top - (vaddr_t{mm_.profile.fix_fdt} << 12);
    if (!map_range(dt_virt, m.dtb_start(), round_up(m.dtb_size, ps), prot_.kernel_ro,
                   NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS))
      throw ConfigError("RAM too small for the boot page tables");
    fdt_va = dt_virt;
  }
}

void PageTables::map_vmemmap(vaddr_t va, phys_addr_t pa, std::uint64_t size) {
  // vmemmap_populate(): PMD blocks of PROT_SECT_NORMAL where possible.
  if (!map_range(va, pa, size, prot_.sect_normal, 0))
    throw ConfigError("RAM too small for the vmemmap page tables");
}

void PageTables::free_initmem() {
  // free_initmem() unmaps the __init part of the image; mark_rodata_ro() and
  // mark_linear_text_alias_ro() take write permission away.
  for (const auto& s : kimage_segments) {
    const std::string_view n = s.name;
    if (n == "vmlinux_inittext" || n == "vmlinux_initdata") {
      unmap_range(s.va, s.size);
      flush_tlb_kernel_range(s.va, s.va + s.size);
    } else if (n == "vmlinux_rodata") {
      change_prot(s.va, s.size, PTE_RDONLY, PTE_WRITE);
    }
  }
  const phys_addr_t kstart = mm_.kimage.code_start, kend = mm_.kimage.init_start;
  change_prot(mm_.__va(kstart), kend - kstart, PTE_RDONLY, PTE_WRITE);
  flush_tlb_all();
}

}  // namespace mmfuzz::mm
