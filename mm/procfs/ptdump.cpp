// /sys/kernel/debug/kernel_page_tables (arch/arm64/mm/ptdump.c on top of the
// generic walker of mm/ptdump.c): init_mm's tables from PAGE_OFFSET to the end
// of the address space, one line per run of entries with the same level and
// attributes, with the kernel's address markers in between.
#include <cstdint>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"
#include "mm/procfs/seq_file.h"

namespace mmfuzz::mm::procfs {

namespace {

struct AddrMarker {
  vaddr_t start;
  const char* name;
};

// One attribute column: " set" when (prot & mask) == val, else " clear"
// (nothing when clear is null).
struct ProtBits {
  pteval_t mask;
  pteval_t val;
  const char* set;
  const char* clear;
};

constexpr ProtBits kPteBits[] = {
    {PTE_VALID, PTE_VALID, " ", "F"},
    {PTE_USER, PTE_USER, "USR", "   "},
    {PTE_RDONLY, PTE_RDONLY, "ro", "RW"},
    {PTE_PXN, PTE_PXN, "NX", "x "},
    {PTE_SHARED, PTE_SHARED, "SHD", "   "},
    {PTE_AF, PTE_AF, "AF", "  "},
    {PTE_NG, PTE_NG, "NG", "  "},
    {PTE_CONT, PTE_CONT, "CON", "   "},
    {PTE_TABLE_BIT, PTE_TABLE_BIT, "   ", "BLK"},
    {PTE_UXN, PTE_UXN, "UXN", "   "},
    {PTE_GP, PTE_GP, "GP", "  "},
};

constexpr vaddr_t kNoMarker = ~vaddr_t{0};  // the {-1, NULL} terminator

// struct pg_state and note_page().
class PgState {
 public:
  PgState(const KernelProfile& p, std::string& m) : p_(p), m_(m) {
    const vaddr_t fixaddr_start = p.fixaddr_top - (vaddr_t{p.fixmap_pages} << 12);
    markers_.push_back({p.page_offset, "Linear Mapping start"});
    markers_.push_back({p.page_end, "Linear Mapping end"});
    if (p.bpf_start) {
      markers_.push_back({p.bpf_start, "BPF start"});
      markers_.push_back({p.bpf_end, "BPF end"});
    }
    markers_.push_back({p.modules_vaddr, "Modules start"});
    markers_.push_back({p.modules_end, "Modules end"});
    markers_.push_back({p.vmalloc_start, "vmalloc() area"});
    markers_.push_back({p.vmalloc_end, "vmalloc() end"});
    markers_.push_back({fixaddr_start, "Fixmap start"});
    markers_.push_back({p.fixaddr_top, "Fixmap end"});
    markers_.push_back({p.pci_io_start, "PCI I/O start"});
    markers_.push_back({p.pci_io_end, "PCI I/O end"});
    markers_.push_back({p.vmemmap_start, "vmemmap start"});
    // VMEMMAP_START + VMEMMAP_SIZE may wrap past the top: never reached then.
    const vaddr_t vmemmap_end = p.vmemmap_start + p.vmemmap_size;
    markers_.push_back({vmemmap_end > p.vmemmap_start ? vmemmap_end : kNoMarker, "vmemmap end"});
    markers_.push_back({kNoMarker, nullptr});
  }

  // level: PGD..PTE, or -1 for the final flush.
  void note_page(vaddr_t addr, int level, pteval_t val) {
    const pteval_t prot = level >= 0 ? val & PTE_PROT_DUMP_MASK : 0;
    if (!started_) {  // st->level == -1: the first call
      started_ = true;
      level_ = level;
      prot_ = prot;
      start_ = addr;
      seq_printf(m_, "---[ %s ]---\n", markers_[marker_].name);
    } else if (prot != prot_ || level != level_ || addr >= next_marker()) {
      print_range(addr);
      if (addr >= next_marker()) {
        ++marker_;
        seq_printf(m_, "---[ %s ]---\n", markers_[marker_].name);
      }
      start_ = addr;
      prot_ = prot;
      level_ = level;
    }
    if (addr >= next_marker()) {
      ++marker_;
      seq_printf(m_, "---[ %s ]---\n", markers_[marker_].name);
    }
  }

 private:
  vaddr_t next_marker() const { return markers_[marker_ + 1].start; }

  void print_range(vaddr_t addr) {
    static const char units[] = "KMGTPE";
    const char* unit = units;
    seq_printf(m_, "0x%016llx-0x%016llx   ", static_cast<unsigned long long>(start_),
               static_cast<unsigned long long>(addr));
    unsigned long long delta = (addr - start_) >> 10;
    while (!(delta & 1023) && unit[1]) {
      delta >>= 10;
      ++unit;
    }
    seq_printf(m_, "%9llu%c %s", delta, *unit, pg_level_name(level_));
    if (prot_) {
      for (const ProtBits& b : kPteBits) {
        const char* s = (prot_ & b.mask) == b.val ? b.set : b.clear;
        if (s) seq_printf(m_, " %s", s);
      }
      // The memory type: one entry per MAIR slot the kernel names.
      for (unsigned i = 0; i < p_.mair_names.size(); ++i) {
        if (!p_.mair_names[i]) continue;
        if ((prot_ & PTE_ATTRINDX_MASK) == PTE_ATTRINDX(i)) seq_printf(m_, " %s", p_.mair_names[i]);
      }
    }
    m_ += '\n';
  }

  const KernelProfile& p_;
  std::string& m_;
  std::vector<AddrMarker> markers_;
  std::size_t marker_ = 0;
  bool started_ = false;
  int level_ = -1;
  pteval_t prot_ = 0;
  vaddr_t start_ = 0;
};

// The end of the entry covering addr at level, or end if that comes first
// (pgd_addr_end() and friends: the top of the address space wraps to 0).
vaddr_t addr_end(vaddr_t addr, int level, vaddr_t end) {
  const vaddr_t boundary = (addr + level_size(level)) & ~(level_size(level) - 1);
  return boundary - 1 < end - 1 ? boundary : end;
}

// walk_page_range_novma() with ptdump's callbacks: leaves (blocks and every
// PTE, valid or not) and holes (empty entries above the PTE level) are noted
// at the level the walk found them.
void walk_level(const PageTables& pt, PgState& st, phys_addr_t table, int level, vaddr_t addr,
                vaddr_t end) {
  do {
    const vaddr_t next = addr_end(addr, level, end);
    const pteval_t d = pt.read_desc(table + level_index(addr, level) * 8ull);
    const pteval_t type = d & PTE_TYPE_MASK;
    if (level == PTE) {
      st.note_page(addr, PTE, d);  // ptdump_pte_entry(): every entry
    } else if (level == PGD) {
      // The folded p4d: an empty or bad entry (not a table) is a hole.
      if (type == PMD_TYPE_TABLE)
        walk_level(pt, st, d & PTE_ADDR_MASK, level + 1, addr, next);
      else
        st.note_page(addr, PGD, 0);
    } else if (!d) {
      st.note_page(addr, level, 0);  // ptdump_hole()
    } else if (type == PMD_TYPE_SECT) {
      st.note_page(addr, level, d);  // pud_leaf() / pmd_leaf(): a block
    } else if (type == PMD_TYPE_TABLE) {
      walk_level(pt, st, d & PTE_ADDR_MASK, level + 1, addr, next);
    }
    // Any other non-zero invalid entry is skipped (!pmd_present()).
    addr = next;
  } while (addr != end);
}

}  // namespace

std::string kernel_page_tables(const Mm& mm) {
  std::string m;
  PgState st(mm.profile, m);
  const phys_addr_t pgd = mm.pgtable.pgd_phys();
  if (pgd) walk_level(mm.pgtable, st, pgd, PGD, mm.profile.page_offset, ~vaddr_t{0});
  st.note_page(0, -1, 0);  // flush out the last range
  return m;
}

}  // namespace mmfuzz::mm::procfs
