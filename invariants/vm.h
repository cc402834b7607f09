// Kernel VM invariants: the arm64 page tables in RAM (table pages, leaf
// format, output ranges, the linear map, W^X, dangling mappings of free
// pages, the TLB, table accounting) and the vmalloc bookkeeping on top of
// them (area mappings, guard pages, overlap, counters, ioremap attributes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "invariants/checker.h"
#include "mm/observer.h"

namespace mmfuzz::inv {

// The vm family's invariant ids.
namespace vm_inv {
inline constexpr const char* kTablePage = "pgtable.table_page";
inline constexpr const char* kLeaf = "pgtable.leaf";
inline constexpr const char* kRange = "pgtable.range";
inline constexpr const char* kLinearMap = "pgtable.linear_map";
inline constexpr const char* kWx = "pgtable.wx";
inline constexpr const char* kFreePageMapped = "pgtable.free_page_mapped";
inline constexpr const char* kTlbStale = "pgtable.tlb_stale";
inline constexpr const char* kAccounting = "pgtable.accounting";
inline constexpr const char* kSlabOverlap = "pgtable.slab_overlap";
inline constexpr const char* kAreaMap = "vmalloc.area_map";
inline constexpr const char* kGuard = "vmalloc.guard";
inline constexpr const char* kOverlap = "vmalloc.overlap";
inline constexpr const char* kBookkeeping = "vmalloc.bookkeeping";
inline constexpr const char* kIoremapAttrs = "ioremap.attrs";
}  // namespace vm_inv

// One checker for both families ("pgtable.*" and "vmalloc.*"/"ioremap.*"):
// the vmalloc checks read the leaves the page-table walk collects.
class VmChecker : public Checker {
 public:
  VmChecker();
  ~VmChecker() override;
  const char* family() const override { return "pgtable"; }
  const std::vector<std::string>& invariants() const override;
  void full(const mm::Mm& mm, Reporter& r) override;
  void incremental(const mm::Mm& mm, const TouchLog& touched, Reporter& r) override;

  struct Leaf;
  struct TableRef;
  struct Scratch;  // the walk's leaves and tables, reused between sweeps

 private:
  std::unique_ptr<Scratch> scratch_;
};

// A misuse report of the VM layer (kinds from mm::kFirstVmMisuse on):
// kernel-style title (WARN, might_sleep BUG, page fault oops) and the
// show_pte() walk of the faulting address; subsystem "vm".
Violation vm_misuse_violation(const mm::Mm& mm, const mm::Misuse& m);

// show_pte(): "[<va>] pgd=..., p4d=..., pud=..., pmd=..., pte=..." for va.
std::string show_pte(const mm::Mm& mm, std::uint64_t va);

}  // namespace mmfuzz::inv
