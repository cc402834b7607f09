#include "mm/phys/sparse.h"

#include <sys/mman.h>

#include <new>

#include "mm/profile.h"

namespace mmfuzz::mm {

namespace {
constexpr std::uint64_t kKernelMemSectionSize = 16;  // sizeof(struct mem_section) on arm64
}

Sparse::~Sparse() {
  if (vmemmap_) munmap(vmemmap_, vmemmap_bytes_);
}

void Sparse::init(const KernelProfile& p) {
  pfn_section_shift_ = p.pfn_section_shift();
  section_size_bits_ = p.section_size_bits;
  section_bits_ = p.max_physmem_bits - p.section_size_bits;
  sections_per_root_ = p.page_size() / kKernelMemSectionSize;
  root_shift_ = fls64(sections_per_root_) - 1;
  const std::uint64_t nr_roots = (nr_mem_sections() + sections_per_root_ - 1) / sections_per_root_;
  roots_.clear();
  roots_.resize(nr_roots);
  struct_page_size_ = p.struct_page_size;
  nr_present_ = 0;
}

const mem_section* Sparse::__nr_to_section(std::uint64_t nr) const {
  const std::uint64_t root = nr >> root_shift_;
  if (root >= roots_.size() || !roots_[root]) return nullptr;
  return &roots_[root][nr & (sections_per_root_ - 1)];
}

mem_section* Sparse::nr_to_section_alloc(std::uint64_t nr) {
  const std::uint64_t root = nr >> root_shift_;
  if (!roots_[root]) roots_[root] = std::make_unique<mem_section[]>(sections_per_root_);
  return &roots_[root][nr & (sections_per_root_ - 1)];
}

void Sparse::memory_present(int nid, phys_addr_t start, phys_addr_t end) {
  const unsigned shift = section_size_bits_;
  for (std::uint64_t nr = start >> shift; nr <= (end - 1) >> shift; ++nr) {
    mem_section* ms = nr_to_section_alloc(nr);
    if (!(ms->section_mem_map & SECTION_MARKED_PRESENT)) {
      ms->section_mem_map |= SECTION_MARKED_PRESENT;
      ms->nid = nid;
      ++nr_present_;
    }
  }
}

std::vector<std::uint64_t> Sparse::present_sections() const {
  std::vector<std::uint64_t> out;
  for (std::uint64_t r = 0; r < roots_.size(); ++r) {
    if (!roots_[r]) continue;
    for (std::uint64_t i = 0; i < sections_per_root_; ++i)
      if (roots_[r][i].section_mem_map & SECTION_MARKED_PRESENT)
        out.push_back(r * sections_per_root_ + i);
  }
  return out;
}

std::uint64_t Sparse::sparse_init() {
  const auto present = present_sections();
  if (present.empty()) return 0;
  base_pfn_ = present.front() << pfn_section_shift_;
  end_pfn_ = (present.back() + 1) << pfn_section_shift_;
  vmemmap_bytes_ = (end_pfn_ - base_pfn_) * sizeof(page);
  void* mem = mmap(nullptr, vmemmap_bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw ConfigError("cannot reserve host memory for the memmap");
  vmemmap_ = static_cast<page*>(mem);
  const std::uint64_t chunks = ((end_pfn_ - base_pfn_) >> kDirtyChunkShift) + 1;
  memmap_dirty_.assign((chunks + 63) / 64, ~std::uint64_t{0});
  const std::uint64_t per = std::uint64_t{1} << pfn_section_shift_;
  has_mem_map_.assign((end_pfn_ - base_pfn_) >> pfn_section_shift_, 0);
  for (auto nr : present) {
    has_mem_map_[nr - (base_pfn_ >> pfn_section_shift_)] = 1;
    mem_section* ms = nr_to_section_alloc(nr);
    ms->section_mem_map |= SECTION_HAS_MEM_MAP | SECTION_IS_ONLINE | SECTION_IS_EARLY;
    page* first = vmemmap_ + ((nr << pfn_section_shift_) - base_pfn_);
    for (std::uint64_t i = 0; i < per; ++i) new (first + i) page{};
  }
  return present.size() * per * struct_page_size_;
}

}  // namespace mmfuzz::mm
