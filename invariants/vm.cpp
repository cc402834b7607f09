#include "invariants/vm.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "invariants/page_report.h"
#include "mm/mm.h"

namespace mmfuzz::inv {

using namespace vm_inv;
using mm::NO_PAGE;
using mm::pteval_t;

namespace {

// Every kernel VA: TTBR1 covers the whole 48-bit range.
constexpr std::uint64_t kKernelBase = 0xffff000000000000ull;
constexpr std::uint64_t kKernelLast = ~std::uint64_t{0};
// The attributes a TLB entry must agree on with the tables: everything the
// MMU uses except the contiguous hint and the descriptor type (a block split
// into pages keeps its translation), plus the software write bit.
constexpr pteval_t kTlbAttrMask =
    (mm::PTE_PROT_DUMP_MASK | mm::PTE_WRITE) & ~(mm::PTE_CONT | mm::PTE_TYPE_MASK);
// What vmalloc.area_map compares between a leaf and its area's prot.
constexpr pteval_t kAreaProtMask = mm::PTE_PROT_DUMP_MASK & ~(mm::PTE_CONT | mm::PTE_TYPE_MASK);

const char* lvl(int level) {
  static const char* const n[] = {"pgd", "pud", "pmd", "pte"};
  return level >= 0 && level < 4 ? n[level] : "?";
}

unsigned attr_index(pteval_t d) {
  return static_cast<unsigned>((d & mm::PTE_ATTRINDX_MASK) >> 2);
}

// Sorted, merged [start, end) intervals.
class Ranges {
 public:
  void add(std::uint64_t s, std::uint64_t e) {
    if (e > s) v_.emplace_back(s, e);
  }
  void finish() {
    std::sort(v_.begin(), v_.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    for (const auto& r : v_) {
      if (!out.empty() && r.first <= out.back().second)
        out.back().second = std::max(out.back().second, r.second);
      else
        out.push_back(r);
    }
    v_ = std::move(out);
  }
  // [s, e) lies inside one interval.
  bool contains(std::uint64_t s, std::uint64_t e) const {
    auto it = std::upper_bound(v_.begin(), v_.end(), std::make_pair(s, ~std::uint64_t{0}));
    if (it == v_.begin()) return false;
    --it;
    return s >= it->first && e <= it->second && e > s;
  }
  bool intersects(std::uint64_t s, std::uint64_t e) const {
    auto it = std::lower_bound(v_.begin(), v_.end(), std::make_pair(e, std::uint64_t{0}));
    if (it == v_.begin()) return false;
    --it;
    return it->second > s;
  }
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& items() const { return v_; }

 private:
  std::vector<std::pair<std::uint64_t, std::uint64_t>> v_;
};

}  // namespace

// A leaf (block or page) the walk found.
struct VmChecker::Leaf {
  std::uint64_t va = 0;
  std::uint64_t size = 0;
  std::uint64_t pa = 0;  // the output address (aligned to size)
  pteval_t desc = 0;
  pteval_t parent = 0;  // the table descriptor above it
  std::uint64_t entry = 0;
  int level = 0;
  std::uint64_t end() const { return va + size; }  // wraps to 0 at the top
  std::uint64_t last() const { return va + (size - 1); }
};

struct VmChecker::TableRef {
  std::uint64_t pfn = 0;
  int level = 0;
  std::uint64_t entry = 0;  // the descriptor that points at it
  std::uint64_t va = 0;
};

struct VmChecker::Scratch {
  std::vector<Leaf> leaves;
  std::vector<TableRef> tables;
};

VmChecker::VmChecker() : scratch_(std::make_unique<Scratch>()) {}
VmChecker::~VmChecker() = default;

namespace {

using Leaf = VmChecker::Leaf;
using TableRef = VmChecker::TableRef;

bool is_early(const mm::vm_struct& vm) {
  return vm.obj == 0 || vm.caller == "paging_init";
}

// What one sweep (full or incremental) knows about the machine.
class Ctx {
 public:
  Ctx(const mm::Mm& model, Reporter& rep, VmChecker::Scratch& scratch)
      : m(model),
        r(rep),
        leaves(scratch.leaves),
        tables(scratch.tables),
        ps(model.profile.page_size()),
        shift(model.profile.page_shift),
        types_ready(static_cast<int>(model.boot_step()) >=
                    static_cast<int>(mm::BootStep::mm_init)) {
    for (const auto& reg : m.memblock.memory.regions)
      ram.add(mm::round_up(reg.base, ps), mm::round_down(reg.end(), ps));
    ram.finish();
    for (const auto& d : m.vmalloc.devices()) dev.add(d.start, d.end);
    dev.finish();
    leaves.clear();  // the vectors keep their capacity between sweeps
    tables.clear();
  }

  const mm::Mm& m;
  Reporter& r;
  std::vector<Leaf>& leaves;  // in VA order
  std::vector<TableRef>& tables;
  const std::uint64_t ps;
  const unsigned shift;
  const bool types_ready;
  Ranges ram, dev;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> large;  // live large kmallocs (pfn, pages)
  bool large_ready = false;

  bool is_ram_page(std::uint64_t pa) const {
    return ram.contains(pa, pa + ps) && m.pfn_valid(pa >> shift);
  }
  bool is_linear(std::uint64_t va) const {
    return va >= m.profile.page_offset && va < m.profile.page_end;
  }
  bool is_vmemmap(std::uint64_t va) const {
    return va >= m.profile.vmemmap_start && va - m.profile.vmemmap_start < m.profile.vmemmap_size;
  }
  bool is_vmalloc(std::uint64_t va) const {
    return va >= m.profile.modules_vaddr && va < m.profile.vmalloc_end;
  }
  bool page_is_free(std::uint64_t pfn) const {
    const mm::page& p = m.pfn_to_page(pfn);
    if (mm::PageReserved(p) || p._refcount > 0) return false;
    return m.page_alloc.is_free_buddy_page(pfn) ||
           m.page_alloc.owning_block(pfn, mm::PAGE_OWNER_PCP) != NO_PAGE;
  }

  void report(const char* id, std::string title, std::uint64_t pfn,
              std::vector<std::string> details, std::vector<std::uint64_t> addrs = {}) {
    if (!r.enabled(id)) return;
    Violation v =
        page_violation(m, ViolationKind::invariant, id, std::move(title),
                       pfn != NO_PAGE && m.pfn_valid(pfn) ? pfn : NO_PAGE, std::move(details));
    if (pfn != NO_PAGE && v.pfns.empty()) v.pfns.push_back(pfn);
    v.addrs = std::move(addrs);
    r.report(std::move(v));
  }

  // "BUG: Bad page map in process mmfuzz  pte:... pmd:..." for a leaf.
  void bad_map(const char* id, const Leaf& l, std::string why, std::uint64_t pfn = NO_PAGE) {
    if (!r.enabled(id)) return;
    std::string title =
        l.level == 0 ? fmt::format("BUG: Bad page map in process mmfuzz  pgd:{:016x}", l.desc)
                     : fmt::format("BUG: Bad page map in process mmfuzz  {}:{:016x} {}:{:016x}",
                                   lvl(l.level), l.desc, lvl(l.level - 1), l.parent);
    report(id, std::move(title), pfn,
           {fmt::format("addr:{:016x} {} entry at {:#x} (swapper_pg_dir, {} KiB mapping)", l.va,
                        lvl(l.level), l.entry, l.size >> 10),
            std::move(why)},
           {l.va});
  }

  // The leaf covering va, or null.
  const Leaf* leaf_at(std::uint64_t va) const {
    auto it = std::upper_bound(leaves.begin(), leaves.end(), va,
                               [](std::uint64_t a, const Leaf& l) { return a < l.va; });
    if (it == leaves.begin()) return nullptr;
    --it;
    return va <= it->last() ? &*it : nullptr;
  }
  // The first leaf that ends after va (index into leaves).
  std::size_t first_leaf_from(std::uint64_t va) const {
    auto it = std::upper_bound(leaves.begin(), leaves.end(), va,
                               [](std::uint64_t a, const Leaf& l) { return a < l.va; });
    if (it != leaves.begin() && std::prev(it)->last() >= va) --it;
    return static_cast<std::size_t>(it - leaves.begin());
  }
  // Any leaf intersecting [s, last].
  const Leaf* leaf_in(std::uint64_t s, std::uint64_t last) const {
    const std::size_t i = first_leaf_from(s);
    return i < leaves.size() && leaves[i].va <= last ? &leaves[i] : nullptr;
  }

  // ---- the walk
  void scan(std::uint64_t lo, std::uint64_t last) {
    const std::uint64_t pgd = m.pgtable.pgd_phys();
    if (!pgd) return;
    table(pgd, mm::PGD, kKernelBase, lo, last, 0);
  }
  void check_table_page(std::uint64_t pfn, int level, std::uint64_t entry, std::uint64_t va);

 private:
  void table(std::uint64_t t, int level, std::uint64_t base, std::uint64_t lo, std::uint64_t last,
             pteval_t parent);
  void leaf(int level, std::uint64_t va, std::uint64_t entry, pteval_t d, pteval_t parent);
  void slab_overlap(std::uint64_t pfn, std::uint64_t va);
};

void Ctx::check_table_page(std::uint64_t pfn, int level, std::uint64_t entry, std::uint64_t va) {
  if (!types_ready) return;
  const mm::page& p = m.pfn_to_page(pfn);
  // Formatted only for a report: this runs for every table of every walk.
  const auto where = [&] {
    return entry ? fmt::format("{} entry at {:#x} for {:016x}", lvl(level - 1), entry, va)
                 : std::string("swapper_pg_dir");
  };
  if (!mm::PageTable(p))
    report(kTablePage,
           fmt::format("BUG: Bad page table: {} table pfn {:#x} is not a PG_table page", lvl(level),
                       pfn),
           pfn, {fmt::format("the {} points at it", where())}, {va});
  else if (mm::PageBuddy(p) || m.page_alloc.owning_block(pfn, mm::PAGE_OWNER_PCP) != NO_PAGE)
    report(kTablePage,
           fmt::format("BUG: Bad page table: {} table pfn {:#x} is a free page", lvl(level), pfn),
           pfn, {fmt::format("the {} points at it (page table freed while in use)", where())},
           {va});
  slab_overlap(pfn, va);
}

void Ctx::slab_overlap(std::uint64_t pfn, std::uint64_t va) {
  if (!r.enabled(kSlabOverlap) || !m.slab.initialized()) return;
  const mm::page& p = m.pfn_to_page(pfn);
  const std::uint64_t head = mm::PageTail(p) ? p.compound_head >> 1 : pfn;
  const std::uint64_t start = m.page_address(pfn), end = start + ps;
  if (m.pfn_valid(head) && mm::PageSlab(m.pfn_to_page(head))) {
    std::string obj = "no live object";
    for (std::uint64_t a = start; a < end;) {
      const auto ref = m.slab.find_object(a);
      if (ref && ref->allocated && ref->object < end && ref->object + ref->size > start) {
        const mm::kmem_cache* s = m.slab.cache(ref->cache);
        obj = fmt::format("live object {:#x} of {} ({} bytes)", ref->object,
                          s ? s->name : std::string("?"), ref->size);
        break;
      }
      a = ref && ref->object + ref->size > a ? ref->object + ref->size : a + 8;
    }
    report(kSlabOverlap,
           fmt::format("BUG: page table pfn {:#x} is a slab page (slab pfn {:#x})", pfn, head), pfn,
           {fmt::format("page table for {:016x} shares its page with {}", va, obj)}, {va, start});
    return;
  }
  if (!large_ready) {
    for (const auto& [h, size] : m.slab.large_kmallocs())
      if (m.pfn_valid(h)) large.emplace_back(h, std::uint64_t{1} << m.page_alloc.owner(h).order);
    std::sort(large.begin(), large.end());
    large_ready = true;
  }
  auto it = std::upper_bound(large.begin(), large.end(), std::make_pair(pfn, ~std::uint64_t{0}));
  if (it != large.begin() && pfn < std::prev(it)->first + std::prev(it)->second) {
    --it;
    report(kSlabOverlap,
           fmt::format("BUG: page table pfn {:#x} lies in a live large kmalloc at pfn {:#x}", pfn,
                       it->first),
           pfn,
           {fmt::format("page table for {:016x}; kmalloc object {:#x} ({} pages)", va,
                        m.page_address(it->first), it->second)},
           {va});
  }
}

void Ctx::table(std::uint64_t t, int level, std::uint64_t base, std::uint64_t lo,
                std::uint64_t last, pteval_t parent) {
  const unsigned sh = mm::kLevelShift[level];
  const std::uint64_t span_last = base + ((std::uint64_t{mm::PTRS_PER_TABLE} << sh) - 1);
  const unsigned first = lo > base ? static_cast<unsigned>((lo - base) >> sh) : 0;
  const unsigned lastidx =
      last < span_last ? static_cast<unsigned>((last - base) >> sh) : mm::PTRS_PER_TABLE - 1;
  for (unsigned i = first; i <= lastidx; ++i) {
    const std::uint64_t entry = t + i * 8ull;
    const pteval_t d = m.pgtable.read_desc(entry);
    if (!(d & mm::PTE_VALID)) continue;
    const std::uint64_t va = base + (std::uint64_t{i} << sh);
    const pteval_t type = d & mm::PTE_TYPE_MASK;
    if (level < mm::PTE && type == mm::PMD_TYPE_TABLE) {
      const std::uint64_t child = d & mm::PTE_ADDR_MASK;
      const std::uint64_t pfn = child >> shift;
      if (!is_ram_page(child)) {
        const bool device = dev.contains(child, child + ps);
        report(
            device ? kTablePage : kRange,
            fmt::format("BUG: Bad page table: {}:{:016x} points at {} {:#x}", lvl(level), d,
                        device ? "device memory" : "no RAM nor device at", child),
            NO_PAGE,
            {fmt::format("addr:{:016x} {} entry at {:#x} (swapper_pg_dir)", va, lvl(level), entry)},
            {va});
        continue;  // nothing the MMU could read as a table
      }
      tables.push_back({pfn, level + 1, entry, va});
      check_table_page(pfn, level + 1, entry, va);
      table(child, level + 1, va, lo, last, d);
    } else if (((level == mm::PUD || level == mm::PMD) && type == mm::PMD_TYPE_SECT) ||
               (level == mm::PTE && type == mm::PTE_TYPE_PAGE)) {
      leaf(level, va, entry, d, parent);
    } else {
      Leaf l;
      l.va = va;
      l.size = mm::level_size(level);
      l.desc = d;
      l.parent = parent;
      l.entry = entry;
      l.level = level;
      bad_map(kLeaf, l,
              level == mm::PGD ? std::string("a block descriptor at PGD level (no such mapping)")
                               : std::string("a reserved descriptor (type 01 at level 3)"));
    }
  }
}

void Ctx::leaf(int level, std::uint64_t va, std::uint64_t entry, pteval_t d, pteval_t parent) {
  const auto& prof = m.profile;
  Leaf l;
  l.va = va;
  l.size = mm::level_size(level);
  l.pa = d & mm::PTE_ADDR_MASK & ~(l.size - 1);
  l.desc = d;
  l.parent = parent;
  l.entry = entry;
  l.level = level;
  // ---- pgtable.leaf
  if ((d & mm::PTE_ADDR_MASK) & (l.size - 1))
    bad_map(kLeaf, l,
            fmt::format("output address {:#x} is not aligned to the {} KiB block",
                        d & mm::PTE_ADDR_MASK, l.size >> 10));
  if (!(d & mm::PTE_AF)) bad_map(kLeaf, l, "the access flag (AF) is clear");
  const unsigned ai = attr_index(d);
  if (!prof.mair_names[ai])
    bad_map(kLeaf, l, fmt::format("AttrIndx {} names no MAIR_EL1 slot of the profile", ai));
  // ---- pgtable.range
  const bool in_ram = ram.contains(l.pa, l.pa + l.size);
  if (!in_ram && !dev.contains(l.pa, l.pa + l.size))
    bad_map(kRange, l,
            fmt::format("output {:#x}-{:#x} is neither RAM nor a device region", l.pa,
                        l.pa + l.size - 1));
  // ---- pgtable.wx
  if (!(d & mm::PTE_RDONLY) && !(d & mm::PTE_PXN) && r.enabled(kWx))
    report(kWx, fmt::format("WARNING: arm64/mm: Found insecure W+X mapping at address {:016x}", va),
           NO_PAGE,
           {fmt::format("{}:{:016x} maps {:#x}-{:#x} writable and executable", lvl(level), d, l.pa,
                        l.pa + l.size - 1),
            fmt::format("arm64/mm: Checked W+X mappings: FAILED, {} W+X pages found",
                        l.size >> shift)},
           {va});
  if (is_linear(va)) {
    // ---- pgtable.linear_map
    const std::uint64_t want = m.__pa(va);
    if (l.pa != want)
      bad_map(
          kLinearMap, l,
          fmt::format("linear map {:016x} maps {:#x}, but __pa() of it is {:#x}", va, l.pa, want));
    else if (!in_ram)
      bad_map(kLinearMap, l,
              fmt::format("the linear map maps {:#x}-{:#x}, which is not memory", l.pa,
                          l.pa + l.size - 1));
    if (ai != prof.mt_normal && ai != prof.mt_normal_tagged)
      bad_map(kLinearMap, l,
              fmt::format("linear map with {} attributes (expected MEM/NORMAL)",
                          prof.mair_names[ai] ? prof.mair_names[ai] : "undefined"));
  } else if (!is_vmemmap(va) && r.enabled(kFreePageMapped)) {
    // ---- pgtable.free_page_mapped
    for (std::uint64_t off = 0; off < l.size; off += ps) {
      const std::uint64_t pfn = (l.pa + off) >> shift;
      if (!m.pfn_valid(pfn) || !page_is_free(pfn)) continue;
      const std::uint64_t a = va + off;
      report(kFreePageMapped,
             l.level == mm::PTE
                 ? fmt::format("BUG: Bad page map in process mmfuzz  pte:{:016x} pmd:{:016x}", d,
                               parent)
                 : fmt::format("BUG: Bad page map in process mmfuzz  {}:{:016x}", lvl(level), d),
             pfn,
             {fmt::format("addr:{:016x} maps pfn {:#x}, which is free in the buddy allocator "
                          "(dangling kernel mapping)",
                          a, pfn)},
             {a});
      break;
    }
  }
  leaves.push_back(l);
}

// ------------------------------------------------------------ TLB

void check_tlb_entry(Ctx& c, int cpu, std::uint64_t va, const mm::TlbEntry& e) {
  const mm::PgWalk w = c.m.pgtable.walk(va);
  if (w.leaf && (w.pa & ~(c.ps - 1)) == e.pa && ((w.desc ^ e.attrs) & kTlbAttrMask) == 0) return;
  // Lazily freed areas keep their TLB entries until the purge flushes them.
  const auto& purge = c.m.vmalloc.purge_list();
  auto it = purge.upper_bound(va);
  if (it != purge.begin() && va < std::prev(it)->second.va_end) return;
  std::string now = w.leaf ? fmt::format("the tables map it to {:#x} ({}:{:016x})",
                                         w.pa & ~(c.ps - 1), lvl(w.level), w.desc)
                           : std::string("the tables do not map it");
  c.report(kTlbStale,
           fmt::format("BUG: stale TLB entry on CPU {}: {:016x} -> {:#x}", cpu, va, e.pa),
           e.pa >> c.shift,
           {e.op_seq ? fmt::format("cached attributes {:#x}, filled at op #{}", e.attrs,
                                   op_index_of(e.op_seq))
                     : fmt::format("cached attributes {:#x}, filled before the first op", e.attrs),
            std::move(now),
            "the kernel flushes the TLB (flush_tlb_kernel_range) before the VA or the page is "
            "reused"},
           {va});
}

void check_tlb_all(Ctx& c) {
  for (int cpu = 0; cpu < static_cast<int>(c.m.nr_cpus()); ++cpu)
    for (const auto& [va, e] : c.m.pgtable.tlb(cpu)) check_tlb_entry(c, cpu, va, e);
}

void check_tlb_range(Ctx& c, std::uint64_t s, std::uint64_t e) {
  if (e <= s) return;
  for (int cpu = 0; cpu < static_cast<int>(c.m.nr_cpus()); ++cpu) {
    const auto& t = c.m.pgtable.tlb(cpu);
    if (t.empty()) continue;
    if ((e - s) / c.ps <= t.size()) {
      for (std::uint64_t a = s & ~(c.ps - 1); a < e; a += c.ps)
        if (auto it = t.find(a); it != t.end()) check_tlb_entry(c, cpu, a, it->second);
    } else {
      for (const auto& [va, ent] : t)
        if (va >= s && va < e) check_tlb_entry(c, cpu, va, ent);
    }
  }
}

// ------------------------------------------------------------ accounting

long nr_pagetable(const mm::Mm& m) {
  long n = 0;
  for (const auto& pgdat : m.page_alloc.node_data) n += pgdat.vm_stat[mm::NR_PAGETABLE];
  return n;
}

void check_counters(Ctx& c) {
  const long n = nr_pagetable(c.m);
  if (n < 0 || static_cast<std::uint64_t>(n) != c.m.pgtable.nr_tables)
    c.report(kAccounting,
             fmt::format("BUG: mmfuzz invariant pgtable.accounting: NR_PAGETABLE is {} but "
                         "pgtable.nr_tables is {}",
                         n, c.m.pgtable.nr_tables),
             NO_PAGE, {});
}

void check_accounting(Ctx& c) {
  const mm::Mm& m = c.m;
  std::vector<std::uint64_t> reach;
  reach.reserve(c.tables.size() + 1);
  reach.push_back(m.pgtable.pgd_phys() >> c.shift);
  for (const auto& t : c.tables) reach.push_back(t.pfn);
  std::sort(reach.begin(), reach.end());
  for (std::size_t i = 1; i < reach.size(); ++i)
    if (reach[i] == reach[i - 1]) {
      c.report(kAccounting,
               fmt::format("BUG: mmfuzz invariant pgtable.accounting: table page pfn {:#x} is "
                           "referenced by two table descriptors",
                           reach[i]),
               reach[i], {});
      break;
    }
  reach.erase(std::unique(reach.begin(), reach.end()), reach.end());
  std::uint64_t allocated = 0;
  for (const std::uint64_t pfn : reach) allocated += !m.pgtable.is_boot_table(pfn);
  const long n = nr_pagetable(m);
  if (n < 0 || static_cast<std::uint64_t>(n) != allocated)
    c.report(kAccounting,
             fmt::format("BUG: mmfuzz invariant pgtable.accounting: NR_PAGETABLE is {} but {} "
                         "page-allocator table pages are reachable from swapper_pg_dir",
                         n, allocated),
             NO_PAGE,
             {fmt::format("reachable tables: {} ({} from memblock at boot)", reach.size(),
                          reach.size() - allocated)});
  check_counters(c);
  if (!c.types_ready || !c.r.enabled(kAccounting)) return;
  // Every PG_table page is a reachable table (no leaked or stray tables).
  for (const auto& [s, e] : m.memory_pfn_ranges()) {
    for (std::uint64_t pfn = s; pfn < e; ++pfn) {
      if (!mm::PageTable(m.pfn_to_page(pfn))) continue;
      if (std::binary_search(reach.begin(), reach.end(), pfn)) continue;
      c.report(kAccounting,
               fmt::format("BUG: mmfuzz invariant pgtable.accounting: PG_table page pfn {:#x} is "
                           "not reachable from swapper_pg_dir",
                           pfn),
               pfn, {"a leaked page table, or PG_table on a page that is no table"});
    }
  }
}

// The linear map covers every page of memory (full sweep only): one pass
// over the RAM ranges and the leaves, both in address order.
void check_linear_coverage(Ctx& c) {
  if (!c.r.enabled(kLinearMap) || c.ram.items().empty()) return;
  std::size_t i = c.first_leaf_from(c.m.__va(c.ram.items().front().first));
  for (const auto& [s, e] : c.ram.items()) {
    std::uint64_t pa = s;
    while (pa < e) {
      const std::uint64_t va = c.m.__va(pa);
      while (i < c.leaves.size() && c.leaves[i].last() < va) ++i;
      if (i < c.leaves.size() && c.leaves[i].va <= va) {
        pa += c.leaves[i].end() - va;
        continue;
      }
      std::uint64_t gap_end = e;
      if (i < c.leaves.size() && c.is_linear(c.leaves[i].va))
        gap_end = std::min(e, c.m.__pa(c.leaves[i].va));
      c.report(kLinearMap,
               fmt::format("BUG: the linear map does not map memory {:#x}-{:#x}", pa, gap_end - 1),
               pa >> c.shift,
               {fmt::format("__va({:#x}) = {:016x} translates to nothing", pa, va),
                fmt::format("show_pte: {}", show_pte(c.m, va))},
               {va});
      pa = gap_end;
    }
  }
}

// ------------------------------------------------------------ vmalloc

std::string area_name(const mm::vmap_area& a) {
  return fmt::format("{:016x}-{:016x} ({})", a.va_start, a.va_end,
                     a.vm ? a.vm->caller : std::string("lazily freed"));
}

const mm::PageTables::KimageSegment* segment_at(const mm::Mm& m, std::uint64_t va) {
  for (const auto& s : m.pgtable.kimage_segments)
    if (s.va == va) return &s;
  return nullptr;
}

bool device_attr(const mm::Mm& m, unsigned ai) {
  const auto& p = m.profile;
  return ai == p.mt_device_ngnre || ai == p.mt_device_ngnrne || ai == p.mt_normal_nc;
}

void check_busy_area(Ctx& c, const mm::vmap_area& a) {
  const mm::Mm& m = c.m;
  const std::uint64_t ps = c.ps;
  if (!a.vm) {
    c.report(kBookkeeping,
             fmt::format("BUG: vmalloc: busy vmap_area {} has no vm_struct", area_name(a)), NO_PAGE,
             {}, {a.va_start});
    return;
  }
  const mm::vm_struct& vm = *a.vm;
  // ---- vmalloc.bookkeeping
  if (vm.addr != a.va_start || a.va_end - a.va_start != vm.size)
    c.report(kBookkeeping,
             fmt::format("BUG: vmalloc: vmap_area {} and its vm_struct disagree", area_name(a)),
             NO_PAGE,
             {fmt::format("va_start {:#x} va_end {:#x}, vm->addr {:#x} vm->size {:#x}", a.va_start,
                          a.va_end, vm.addr, vm.size)},
             {a.va_start});
  if (vm.flags & mm::VM_ALLOC) {
    if (vm.nr_pages != vm.pages.size())
      c.report(kBookkeeping,
               fmt::format("BUG: vmalloc: area {} has nr_pages {} but {} pages", area_name(a),
                           vm.nr_pages, vm.pages.size()),
               NO_PAGE, {}, {a.va_start});
    for (std::size_t i = 0; i < vm.pages.size(); ++i) {
      const std::uint64_t pfn = vm.pages[i];
      const bool ok = m.pfn_valid(pfn) && m.pfn_to_page(pfn)._refcount > 0 &&
                      !mm::PageBuddy(m.pfn_to_page(pfn));
      if (!ok) {
        c.report(kBookkeeping,
                 fmt::format("BUG: vmalloc: page {} (pfn {:#x}) of area {} is not an allocated "
                             "page",
                             i, pfn, area_name(a)),
                 pfn, {}, {a.va_start + i * ps});
        break;
      }
    }
  }
  if (!(vm.flags & mm::VM_NO_GUARD) && vm.size < ps) return;  // nothing sane to map
  const std::uint64_t mapped = vm.area_size(ps);
  const std::uint64_t n = mapped / ps;
  // ---- vmalloc.area_map
  const bool early = is_early(vm);
  auto bad = [&](std::uint64_t i, std::string why, std::uint64_t pfn) {
    c.report(kAreaMap,
             fmt::format("BUG: vmalloc: area {} maps page {} at {:016x} wrongly", area_name(a), i,
                         vm.addr + i * ps),
             pfn,
             {std::move(why), fmt::format("show_pte: {}", show_pte(m, vm.addr + i * ps)),
              fmt::format("flags {:#x}, {} pages, prot {:#x}", vm.flags, vm.pages.size(), vm.prot)},
             {vm.addr + i * ps});
  };
  if (early) {
    const auto* seg = segment_at(m, vm.addr);
    const bool init = seg && std::string_view(seg->name).rfind("vmlinux_init", 0) == 0;
    const bool gone = init && m.booted();  // free_initmem() unmapped it
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t va = vm.addr + i * ps;
      const Leaf* l = c.leaf_at(va);
      if (gone) {
        if (l) {
          bad(i, "the __init part of the image is still mapped after free_initmem()",
              (l->pa + (va - l->va)) >> c.shift);
          break;
        }
        continue;
      }
      if (!l) {
        bad(i, "a page of the kernel image is not mapped", NO_PAGE);
        break;
      }
      const std::uint64_t pa = l->pa + (va - l->va);
      if (pa != vm.phys_addr + i * ps) {
        bad(i, fmt::format("maps {:#x}, expected {:#x} (kernel image)", pa, vm.phys_addr + i * ps),
            pa >> c.shift);
        break;
      }
    }
  } else {
    const bool paged = !vm.pages.empty() || (vm.flags & (mm::VM_ALLOC | mm::VM_MAP));
    const bool contiguous = !paged && (vm.flags & mm::VM_IOREMAP);
    if (paged || contiguous) {
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::uint64_t va = vm.addr + i * ps;
        const Leaf* l = c.leaf_at(va);
        std::optional<std::uint64_t> want;
        if (paged && i < vm.pages.size()) want = vm.pages[i] << c.shift;
        if (contiguous) want = vm.phys_addr + i * ps;
        if (!l && !want) continue;
        if (!l) {
          bad(i, fmt::format("not mapped; expected {:#x}", *want), *want >> c.shift);
          break;
        }
        const std::uint64_t pa = l->pa + (va - l->va);
        if (!want) {
          bad(i, fmt::format("maps {:#x} beyond the area's {} pages", pa, vm.pages.size()),
              pa >> c.shift);
          break;
        }
        if (pa != *want) {
          bad(i, fmt::format("maps {:#x}, expected {:#x}", pa, *want), *want >> c.shift);
          break;
        }
        if ((l->desc & kAreaProtMask) != (vm.prot & kAreaProtMask)) {
          bad(i,
              fmt::format("{}:{:016x} has attributes {:#x}, the area's prot is {:#x}",
                          lvl(l->level), l->desc, l->desc & kAreaProtMask, vm.prot & kAreaProtMask),
              pa >> c.shift);
          break;
        }
      }
    }
    // The struct page * array.
    if ((vm.flags & mm::VM_ALLOC) && vm.pages_array) {
      std::uint64_t cached_page = 0;
      std::optional<std::uint64_t> cached_pa;
      for (std::size_t i = 0; i < vm.pages.size(); ++i) {
        const std::uint64_t eva = vm.pages_array + i * 8;
        std::optional<std::uint64_t> epa;
        if (m.is_linear_map_address(eva)) {
          epa = m.__pa(eva);
        } else {
          if (!cached_pa || cached_page != (eva & ~(ps - 1))) {
            cached_page = eva & ~(ps - 1);
            cached_pa = m.pgtable.translate(cached_page);
            if (!cached_pa) cached_pa = ~std::uint64_t{0};
          }
          if (*cached_pa != ~std::uint64_t{0}) epa = *cached_pa + (eva & (ps - 1));
        }
        const std::uint64_t want = m.pfn_to_vmemmap(vm.pages[i]);
        if (!epa || !m.ram.contains(*epa, 8)) {
          bad(i, fmt::format("its struct page array entry at {:016x} is not mapped", eva),
              vm.pages[i]);
          break;
        }
        const std::uint64_t got = m.ram.load64(*epa);
        if (got != want) {
          bad(i,
              fmt::format("pages[{}] at {:016x} holds {:016x}, expected page {:016x} (pfn {:#x})",
                          i, eva, got, want, vm.pages[i]),
              vm.pages[i]);
          break;
        }
      }
    }
  }
  // ---- vmalloc.guard
  if (!(vm.flags & mm::VM_NO_GUARD)) {
    const std::uint64_t g = vm.addr + vm.size - ps;
    if (const Leaf* l = c.leaf_at(g)) {
      const std::uint64_t pa = l->pa + (g - l->va);
      c.report(
          kGuard,
          fmt::format("BUG: vmalloc: guard page {:016x} of area {} is mapped", g, area_name(a)),
          pa >> c.shift,
          {fmt::format("{}:{:016x} maps {:#x}; an overrun of the area would not fault",
                       lvl(l->level), l->desc, pa)},
          {g});
    }
  }
  // ---- ioremap.attrs
  if (vm.flags & mm::VM_IOREMAP) {
    const auto& prof = m.profile;
    auto attr_name = [&](unsigned ai) {
      return prof.mair_names[ai] ? prof.mair_names[ai] : "undefined";
    };
    if (!device_attr(m, attr_index(vm.prot)))
      c.report(kIoremapAttrs,
               fmt::format("WARNING: ioremap: area {} has {} attributes", area_name(a),
                           attr_name(attr_index(vm.prot))),
               NO_PAGE,
               {fmt::format("prot {:#x}; ioremap needs DEVICE/* or MEM/NORMAL-NC", vm.prot)},
               {a.va_start});
    if (c.ram.intersects(vm.phys_addr, vm.phys_addr + mapped))
      c.report(kIoremapAttrs,
               fmt::format("WARNING: ioremap on RAM at {:#x} - {:#x} (area {})", vm.phys_addr,
                           vm.phys_addr + mapped - 1, area_name(a)),
               vm.phys_addr >> c.shift, {}, {a.va_start});
    for (std::size_t i = c.first_leaf_from(vm.addr);
         i < c.leaves.size() && c.leaves[i].va < vm.addr + mapped; ++i) {
      const Leaf& l = c.leaves[i];
      const bool ram = c.ram.intersects(l.pa, l.pa + l.size);
      if (device_attr(m, attr_index(l.desc)) && !ram) continue;
      c.report(kIoremapAttrs,
               fmt::format("WARNING: ioremap: {:016x} of area {} maps {:#x} as {}", l.va,
                           area_name(a), l.pa, attr_name(attr_index(l.desc))),
               l.pa >> c.shift,
               {ram ? std::string("the output is RAM") : std::string("normal cacheable attributes"),
                fmt::format("{}:{:016x}", lvl(l.level), l.desc)},
               {l.va});
      break;
    }
  }
}

void check_lazy_area(Ctx& c, const mm::vmap_area& a) {
  if (a.va_end <= a.va_start) return;  // reported by vmalloc.overlap
  if (const Leaf* l = c.leaf_in(a.va_start, a.va_end - 1))
    c.report(kGuard,
             fmt::format("BUG: vmalloc: lazily freed area {} is still mapped at {:016x}",
                         area_name(a), std::max(l->va, a.va_start)),
             l->pa >> c.shift,
             {fmt::format("{}:{:016x}; vfree() unmaps before the area waits for its purge",
                          lvl(l->level), l->desc)},
             {std::max(l->va, a.va_start)});
}

// Leaves in the vmalloc range lie inside a busy area (lazily freed ones
// are vmalloc.guard's).
void check_orphans(Ctx& c, std::size_t from, std::uint64_t last) {
  const auto& busy = c.m.vmalloc.busy();
  const auto& purge = c.m.vmalloc.purge_list();
  for (std::size_t i = from; i < c.leaves.size() && c.leaves[i].va <= last; ++i) {
    const Leaf& l = c.leaves[i];
    if (!c.is_vmalloc(l.va)) continue;
    auto it = busy.upper_bound(l.va);
    if (it != busy.begin() && l.last() < std::prev(it)->second.va_end) continue;
    auto p = purge.upper_bound(l.va);
    if (p != purge.begin() && l.va < std::prev(p)->second.va_end) continue;
    c.report(
        vm_inv::kOverlap,
        fmt::format("BUG: vmalloc: orphan mapping at {:016x}: no vmalloc area holds it", l.va),
        l.pa >> c.shift,
        {fmt::format("{}:{:016x} maps {:#x} in the vmalloc range", lvl(l.level), l.desc, l.pa)},
        {l.va});
  }
}

void check_area_bounds(Ctx& c, const mm::vmap_area& a, const char* what) {
  const auto& p = c.m.profile;
  if (a.va_end <= a.va_start)
    c.report(vm_inv::kOverlap,
             fmt::format("BUG: vmalloc: {} area {} is empty or inverted", what, area_name(a)),
             NO_PAGE, {}, {a.va_start});
  else if ((!a.vm || !is_early(*a.vm)) &&
           (a.va_start < p.modules_vaddr || a.va_end > p.vmalloc_end))
    c.report(vm_inv::kOverlap,
             fmt::format("BUG: vmalloc: {} area {} lies outside [{:016x}, {:016x})", what,
                         area_name(a), p.modules_vaddr, p.vmalloc_end),
             NO_PAGE, {}, {a.va_start});
}

struct Span {
  std::uint64_t start, end;
  const char* what;
};

void overlap_bug(Ctx& c, const Span& x, const Span& y) {
  c.report(vm_inv::kOverlap,
           fmt::format("BUG: vmalloc: {} range {:016x}-{:016x} overlaps {} range {:016x}-{:016x}",
                       x.what, x.start, x.end, y.what, y.start, y.end),
           NO_PAGE, {}, {x.start, y.start});
}

// Busy, lazily freed and free ranges never overlap (full sweep).
void check_overlap_all(Ctx& c) {
  const auto& v = c.m.vmalloc;
  std::vector<Span> s;
  s.reserve(v.busy().size() + v.purge_list().size() + v.free_ranges().size());
  for (const auto& [k, a] : v.busy()) s.push_back({a.va_start, a.va_end, "busy"});
  for (const auto& [k, a] : v.purge_list()) s.push_back({a.va_start, a.va_end, "lazily freed"});
  for (const auto& [k, e] : v.free_ranges()) {
    if (e <= k)
      c.report(vm_inv::kOverlap,
               fmt::format("BUG: vmalloc: free range {:016x}-{:016x} is empty", k, e), NO_PAGE, {},
               {k});
    s.push_back({k, e, "free"});
  }
  std::sort(s.begin(), s.end(), [](const Span& a, const Span& b) { return a.start < b.start; });
  std::uint64_t end = 0;
  const Span* far = nullptr;  // the span reaching furthest so far
  for (const auto& x : s) {
    if (far && x.start < end) overlap_bug(c, *far, x);
    if (!far || x.end > end) {
      end = x.end;
      far = &x;
    }
  }
}

// The neighbours of one area in the three trees (incremental).
template <class Map, class End>
void overlap_near(Ctx& c, const Map& map, const char* what, const mm::vmap_area& a, End end_of) {
  auto it = map.lower_bound(a.va_end);
  for (int k = 0; k < 2 && it != map.begin(); ++k) {
    --it;
    if (it->first == a.va_start && static_cast<const void*>(&it->second) == &a) continue;
    const std::uint64_t e = end_of(it->second);
    if (e > a.va_start)
      overlap_bug(c, {a.va_start, a.va_end, a.vm ? "busy" : "lazily freed"}, {it->first, e, what});
  }
}

void check_area_neighbours(Ctx& c, const mm::vmap_area& a) {
  const auto& v = c.m.vmalloc;
  auto va_end = [](const mm::vmap_area& x) { return x.va_end; };
  overlap_near(c, v.busy(), "busy", a, va_end);
  overlap_near(c, v.purge_list(), "lazily freed", a, va_end);
  overlap_near(c, v.free_ranges(), "free", a, [](std::uint64_t e) { return e; });
}

void check_vmalloc_counters(Ctx& c) {
  const auto& v = c.m.vmalloc;
  std::uint64_t vpages = 0, lazy = 0;
  for (const auto& [k, a] : v.busy())
    if (a.vm && (a.vm->flags & mm::VM_ALLOC)) vpages += a.vm->nr_pages;
  for (const auto& [k, a] : v.purge_list()) lazy += (a.va_end - a.va_start) >> c.shift;
  if (vpages != v.nr_vmalloc_pages)
    c.report(kBookkeeping,
             fmt::format("BUG: vmalloc: nr_vmalloc_pages is {} but the VM_ALLOC areas hold {} "
                         "pages",
                         v.nr_vmalloc_pages, vpages),
             NO_PAGE, {});
  if (lazy != v.vmap_lazy_nr)
    c.report(kBookkeeping,
             fmt::format("BUG: vmalloc: vmap_lazy_nr is {} but the purge list holds {} pages",
                         v.vmap_lazy_nr, lazy),
             NO_PAGE, {});
}

bool pgtable_ready(const mm::Mm& m) {
  return m.pgtable.pgd_phys() != 0 &&
         static_cast<int>(m.boot_step()) >= static_cast<int>(mm::BootStep::setup_arch);
}

}  // namespace

const std::vector<std::string>& VmChecker::invariants() const {
  static const std::vector<std::string> ids = {
      kTablePage,   kLeaf,        kRange,       kLinearMap, kWx,    kFreePageMapped,
      kTlbStale,    kAccounting,  kSlabOverlap, kAreaMap,   kGuard, vm_inv::kOverlap,
      kBookkeeping, kIoremapAttrs};
  return ids;
}

void VmChecker::full(const mm::Mm& m, Reporter& r) {
  if (!pgtable_ready(m)) return;
  Ctx c(m, r, *scratch_);
  c.check_table_page(m.pgtable.pgd_phys() >> c.shift, mm::PGD, 0, kKernelBase);
  c.scan(kKernelBase, kKernelLast);
  check_linear_coverage(c);
  check_accounting(c);
  check_tlb_all(c);
  if (!m.vmalloc.initialized()) return;
  const auto& v = m.vmalloc;
  for (const auto& [k, a] : v.busy()) {
    check_area_bounds(c, a, "busy");
    check_busy_area(c, a);
  }
  for (const auto& [k, a] : v.purge_list()) {
    check_area_bounds(c, a, "lazily freed");
    check_lazy_area(c, a);
  }
  check_orphans(c, c.first_leaf_from(m.profile.modules_vaddr), m.profile.vmalloc_end - 1);
  check_overlap_all(c);
  check_vmalloc_counters(c);
}

void VmChecker::incremental(const mm::Mm& m, const TouchLog& touched, Reporter& r) {
  if (!pgtable_ready(m)) return;
  // Most ops (page and slab traffic) touch no mapping: only the counters.
  if (touched.vm_ranges.empty() && touched.vm_flushes.empty()) {
    const long n = nr_pagetable(m);
    if (n >= 0 && static_cast<std::uint64_t>(n) == m.pgtable.nr_tables) return;
  }
  Ctx c(m, r, *scratch_);
  check_counters(c);
  const auto& v = m.vmalloc;
  // The touched ranges, widened to the areas they meet; the TLB is checked
  // there and where a purge flushed.
  Ranges ranges, tlb;
  std::vector<const mm::vmap_area*> busy, lazy;
  auto meet = [&](const std::map<std::uint64_t, mm::vmap_area>& map, std::uint64_t s,
                  std::uint64_t e, std::vector<const mm::vmap_area*>& out) {
    auto it = map.upper_bound(s);
    if (it != map.begin() && std::prev(it)->second.va_end > s) --it;
    for (; it != map.end() && it->first < e; ++it) {
      out.push_back(&it->second);
      ranges.add(it->second.va_start, std::max(it->second.va_end, it->second.va_start + 1));
    }
  };
  for (const auto& [s, e] : touched.vm_ranges) {
    if (e <= s) continue;
    ranges.add(s, e);
    if (v.initialized()) {
      meet(v.busy(), s, e, busy);
      meet(v.purge_list(), s, e, lazy);
    }
  }
  ranges.finish();
  for (const auto& [s, e] : ranges.items()) tlb.add(s, e);
  for (const auto& [s, e] : touched.vm_flushes) tlb.add(s, e);
  tlb.finish();
  for (const auto& [s, e] : tlb.items()) check_tlb_range(c, s, e);
  if (ranges.items().empty()) return;
  for (const auto& [s, e] : ranges.items()) c.scan(s, e - 1);
  // A block across two ranges is seen twice.
  c.leaves.erase(std::unique(c.leaves.begin(), c.leaves.end(),
                             [](const Leaf& a, const Leaf& b) { return a.va == b.va; }),
                 c.leaves.end());
  if (!v.initialized()) return;
  for (const auto& [s, e] : ranges.items()) check_orphans(c, c.first_leaf_from(s), e - 1);
  // In address order (reports must not depend on host pointers).
  auto by_va = [](const mm::vmap_area* a, const mm::vmap_area* b) {
    return a->va_start < b->va_start || (a->va_start == b->va_start && a->va_end < b->va_end);
  };
  for (auto* list : {&busy, &lazy}) {
    std::unordered_set<const mm::vmap_area*> seen;
    std::vector<const mm::vmap_area*> once;
    for (const auto* a : *list)
      if (seen.insert(a).second) once.push_back(a);
    std::stable_sort(once.begin(), once.end(), by_va);
    *list = std::move(once);
  }
  for (const auto* a : busy) {
    check_area_bounds(c, *a, "busy");
    check_busy_area(c, *a);
    check_area_neighbours(c, *a);
  }
  for (const auto* a : lazy) {
    check_area_bounds(c, *a, "lazily freed");
    check_lazy_area(c, *a);
    check_area_neighbours(c, *a);
  }
}

// ------------------------------------------------------------ reports

std::string show_pte(const mm::Mm& m, std::uint64_t va) {
  std::string out = fmt::format("[{:016x}]", va);
  std::uint64_t t = m.pgtable.pgd_phys();
  if (!t) return out + " no swapper_pg_dir";
  for (int level = mm::PGD; level <= mm::PTE; ++level) {
    const pteval_t d = m.pgtable.read_desc(t + mm::level_index(va, level) * 8ull);
    out += fmt::format("{}{}={:016x}", level == mm::PGD ? " " : ", ", lvl(level), d);
    if (level == mm::PGD) out += fmt::format(", p4d={:016x}", d);  // folded
    if (!(d & mm::PTE_VALID) || level == mm::PTE || (d & mm::PTE_TYPE_MASK) != mm::PMD_TYPE_TABLE)
      break;
    t = d & mm::PTE_ADDR_MASK;
    if (!m.ram.contains(t, 8)) break;
  }
  return out;
}

namespace {

// die_kernel_fault()'s lines for a data abort at va.
void fault_lines(const mm::Mm& m, const mm::Misuse& mu, std::vector<std::string>& d) {
  const mm::PgWalk w = m.pgtable.walk(mu.addr);
  const bool perm = w.leaf;  // mapped: a permission fault
  const unsigned level = static_cast<unsigned>(std::max(w.level, 0));
  const unsigned fsc = (perm ? 0x0cu : 0x04u) + level;
  const unsigned long long esr = 0x96000000ull | (mu.is_write ? 0x40u : 0u) | fsc;
  d.push_back("Mem abort info:");
  d.push_back(fmt::format("  ESR = {:#018x}", esr));
  d.push_back("  EC = 0x25: DABT (current EL), IL = 32 bits");
  d.push_back(fmt::format("  FSC = {:#04x}: level {} {} fault", fsc, level,
                          perm ? "permission" : "translation"));
  d.push_back("Data abort info:");
  d.push_back(fmt::format("  ISV = 0, ISS = {:#010x}", esr & 0x1ffffffu));
  d.push_back(fmt::format("  CM = 0, WnR = {}", mu.is_write ? 1 : 0));
  d.push_back(fmt::format("swapper pgtable: {}k pages, {}-bit VAs, pgdp={:016x}",
                          m.profile.page_size() >> 10, m.profile.va_bits, m.pgtable.pgd_phys()));
  d.push_back(show_pte(m, mu.addr));
  d.push_back(fmt::format("Internal error: Oops: {:016x} [#1] PREEMPT SMP", esr));
}

std::string strip_prefix(std::string s, std::string_view p) {
  if (s.rfind(p, 0) == 0) s.erase(0, p.size());
  return s;
}

}  // namespace

Violation vm_misuse_violation(const mm::Mm& m, const mm::Misuse& mu) {
  Violation v;
  v.kind = ViolationKind::misuse;
  v.invariant = mm::misuse_id(mu.kind);
  v.subsystem = "vm";
  if (mu.addr) v.addrs.push_back(mu.addr);
  const std::string api = mu.api.empty() ? std::string("?") : mu.api;
  const std::string detail = strip_prefix(mu.detail, "WARNING: ");
  const std::string warn_at = fmt::format("WARNING: CPU: {} PID: 1 at", m.cpu());
  switch (mu.kind) {
    case mm::MisuseKind::vmalloc_bad_free:
    case mm::MisuseKind::vmalloc_double_free:
    case mm::MisuseKind::vmalloc_vunmap_vmalloc:
    case mm::MisuseKind::vmalloc_bad_vmap:
    case mm::MisuseKind::ioremap_bad_iounmap:
      v.title = "WARNING: " + detail;
      v.details.push_back(fmt::format("{} mm/vmalloc.c {}", warn_at, api));
      break;
    case mm::MisuseKind::vmalloc_sleep_in_atomic:
      v.title = "BUG: sleeping function called from invalid context at mm/vmalloc.c";
      v.details.push_back(
          fmt::format("in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: mmfuzz"));
      v.details.push_back(fmt::format("preempt_count: {:x}, expected: 0", m.preempt_count()));
      v.details.push_back(fmt::format("caller: {}()", api));
      v.details.push_back(mu.detail);
      break;
    case mm::MisuseKind::ioremap_ram:
    case mm::MisuseKind::ioremap_no_device:
      v.title = mu.kind == mm::MisuseKind::ioremap_ram
                    ? "WARNING: " + detail
                    : fmt::format("WARNING: {}() of {:#x}: {}", api, mu.object, detail);
      v.details.push_back(fmt::format("{} arch/arm64/mm/ioremap.c {}", warn_at, api));
      v.details.push_back(fmt::format("phys_addr: {:#x}", mu.object));
      if (m.pfn_valid(mu.object >> m.profile.page_shift))
        v.pfns.push_back(mu.object >> m.profile.page_shift);
      break;
    case mm::MisuseKind::ioremap_bad_access:
      v.title = detail;
      v.details.push_back(fmt::format("io accessor {}() at {:016x}", api, mu.addr));
      v.details.push_back(show_pte(m, mu.addr));
      break;
    case mm::MisuseKind::kmap_unbalanced:
      v.title = fmt::format("WARNING: at mm/highmem.c: unbalanced {}()", api);
      v.details.push_back(mu.detail);
      break;
    case mm::MisuseKind::kmap_nesting:
      v.title = mu.detail.rfind("kernel BUG", 0) == 0
                    ? std::string("kernel BUG at mm/highmem.c! (kmap_local_idx_push)")
                    : fmt::format("WARNING: at mm/highmem.c: {}() out of order", api);
      v.details.push_back(mu.detail);
      break;
    case mm::MisuseKind::vm_fault: {
      const auto p = mu.detail.find(" (");
      v.title = p == std::string::npos ? mu.detail : mu.detail.substr(0, p);
      if (p != std::string::npos) v.details.push_back(mu.detail);
      v.details.push_back(fmt::format("{} of {} bytes by {}()", mu.is_write ? "write" : "read",
                                      mu.access_len, api));
      fault_lines(m, mu, v.details);
      break;
    }
    default:
      v.title = fmt::format("WARNING: {}() misuse", api);
      v.details.push_back(mu.detail);
      break;
  }
  return v;
}

}  // namespace mmfuzz::inv
