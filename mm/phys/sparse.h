// SPARSEMEM_VMEMMAP: physical memory in sections of 2^SECTION_SIZE_BITS
// bytes, a two-level mem_section table (SPARSEMEM_EXTREME), and a virtually
// contiguous memmap whose host backing is committed only where sections are
// present.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "mm/phys/page.h"
#include "mm/types.h"

namespace mmfuzz::mm {

struct KernelProfile;

// section_mem_map flag bits
inline constexpr std::uint64_t SECTION_MARKED_PRESENT = 1ull << 0;
inline constexpr std::uint64_t SECTION_HAS_MEM_MAP = 1ull << 1;
inline constexpr std::uint64_t SECTION_IS_ONLINE = 1ull << 2;
inline constexpr std::uint64_t SECTION_IS_EARLY = 1ull << 3;

struct mem_section {
  std::uint64_t section_mem_map = 0;  // flags only: the memmap itself is vmemmap
  int nid = 0;
};

class Sparse {
 public:
  Sparse() = default;
  ~Sparse();
  Sparse(const Sparse&) = delete;
  Sparse& operator=(const Sparse&) = delete;

  void init(const KernelProfile& profile);
  // memblocks_present(): mark the sections holding [start, end) present.
  void memory_present(int nid, phys_addr_t start, phys_addr_t end);
  // sparse_init(): give every present section a memmap. Returns the bytes of
  // memmap the kernel would allocate (sizeof(struct page) per page).
  std::uint64_t sparse_init();

  unsigned section_shift() const { return pfn_section_shift_; }
  std::uint64_t nr_mem_sections() const { return std::uint64_t{1} << section_bits_; }
  std::uint64_t sections_per_root() const { return sections_per_root_; }
  std::uint64_t nr_section_roots() const { return roots_.size(); }
  std::uint64_t nr_present_sections() const { return nr_present_; }

  const mem_section* __nr_to_section(std::uint64_t nr) const;
  bool valid_section(std::uint64_t nr) const {
    const auto* ms = __nr_to_section(nr);
    return ms && (ms->section_mem_map & SECTION_HAS_MEM_MAP);
  }
  // Hot: one subtraction, one compare, one load. has_mem_map_ mirrors
  // SECTION_HAS_MEM_MAP of the sections between base_pfn and end_pfn.
  bool pfn_valid(pfn_t pfn) const {
    const pfn_t off = pfn - base_pfn_;  // wraps for pfn < base_pfn
    return off < end_pfn_ - base_pfn_ && has_mem_map_[off >> pfn_section_shift_];
  }

  // Callers check pfn_valid() first. The writable accessors mark the page's
  // chunk dirty for snapshot restore.
  page& pfn_to_page(pfn_t pfn) {
    mark_dirty(memmap_dirty_.data(), pfn - base_pfn_);
    return vmemmap_[pfn - base_pfn_];
  }
  const page& pfn_to_page(pfn_t pfn) const { return vmemmap_[pfn - base_pfn_]; }
  pfn_t page_to_pfn(const page& p) const { return base_pfn_ + static_cast<pfn_t>(&p - vmemmap_); }

  // List links are offsets from base_pfn().
  pfn_t base_pfn() const { return base_pfn_; }
  pfn_t end_pfn() const { return end_pfn_; }
  std::uint32_t pfn_to_link(pfn_t pfn) const { return static_cast<std::uint32_t>(pfn - base_pfn_); }
  pfn_t link_to_pfn(std::uint32_t l) const { return base_pfn_ + l; }
  page& link_to_page(std::uint32_t l) {
    mark_dirty(memmap_dirty_.data(), l);
    return vmemmap_[l];
  }
  const page& link_to_page(std::uint32_t l) const { return vmemmap_[l]; }

  // Snapshots. Restore copies only struct pages handed out writable since
  // the last restore: every writable accessor (here, PageAlloc::pg(),
  // PageLists::L()) sets the bit of its chunk of 2^kDirtyChunkShift pages.
  // Offsets are from base_pfn().
  static constexpr unsigned kDirtyChunkShift = 3;
  static void mark_dirty(std::uint64_t* bits, std::uint64_t off) {
    const std::uint64_t c = off >> kDirtyChunkShift;
    bits[c >> 6] |= std::uint64_t{1} << (c & 63);
  }
  std::uint64_t* memmap_dirty() { return memmap_dirty_.data(); }
  // The dirty pfn ranges inside [first, end), coalesced, and clears every
  // mark: struct pages outside RAM are never written after boot.
  const std::vector<std::pair<pfn_t, pfn_t>>& take_dirty(pfn_t first, pfn_t end);
  // The struct pages of [first, end) become those of `snap` (same geometry).
  void copy_pages(const Sparse& snap, pfn_t first, pfn_t end);

  // Present sections in ascending order (for sweeps).
  std::vector<std::uint64_t> present_sections() const;

 private:
  mem_section* nr_to_section_alloc(std::uint64_t nr);

  unsigned pfn_section_shift_ = 0;
  unsigned section_size_bits_ = 0;
  unsigned section_bits_ = 0;
  std::uint64_t sections_per_root_ = 0;
  unsigned root_shift_ = 0;  // log2(sections_per_root_)
  std::vector<std::uint8_t> has_mem_map_;
  std::vector<std::unique_ptr<mem_section[]>> roots_;
  std::uint64_t nr_present_ = 0;
  std::uint64_t struct_page_size_ = 64;
  pfn_t base_pfn_ = 0;
  pfn_t end_pfn_ = 0;
  page* vmemmap_ = nullptr;
  std::uint64_t vmemmap_bytes_ = 0;
  std::vector<std::uint64_t> memmap_dirty_;  // one bit per chunk, all set at boot
  std::vector<std::pair<pfn_t, pfn_t>> dirty_ranges_;
};

}  // namespace mmfuzz::mm
