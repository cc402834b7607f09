// Snapshot restore (DESIGN rule 6): a fuzz execution starts from a booted
// model by copying a pristine twin's state into the model it ran on, instead
// of booting again. Both models were built from the same MmConfig, so every
// buffer has the same geometry and the copies below reuse the existing
// allocations (std::vector, std::map and std::unordered_map assignment reuse
// storage and nodes).
//
// The sizeof checks make adding a member to a restored class a compile error
// here until its restore copies it; tests/test_snapshot.cpp checks the
// result by running Programs on restored and freshly booted models.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>

#include "mm/mm.h"
#include "mm/slab/slob.h"

namespace mmfuzz::mm {

#if defined(__x86_64__) && defined(__GLIBCXX__)
// The layouts these restores were written against (x86-64 libstdc++).
static_assert(sizeof(PageAlloc) == 304, "PageAlloc changed: update PageAlloc::restore_from");
static_assert(sizeof(Slab) == 704, "Slab changed: update Slab::restore_from");
static_assert(sizeof(Mempools) == 64, "Mempools changed: update Mempools::restore_from");
static_assert(sizeof(PageTables) == 216, "PageTables changed: update PageTables::restore_from");
static_assert(sizeof(Vmalloc) == 360, "Vmalloc changed: update Vmalloc::restore_from");
static_assert(sizeof(SlobAllocator) == 288, "SlobAllocator changed: update its restore_from");
static_assert(sizeof(Mm) == 3296, "Mm changed: update Mm::restore_from");
#endif

namespace {
// *to becomes a copy of *from, reusing to's allocation when both exist.
template <class T>
void copy_owned(std::unique_ptr<T>& to, const std::unique_ptr<T>& from) {
  if (!from)
    to.reset();
  else if (to)
    *to = *from;
  else
    to = std::make_unique<T>(*from);
}
}  // namespace

const std::vector<std::pair<pfn_t, pfn_t>>& Sparse::take_dirty(pfn_t first, pfn_t end) {
  dirty_ranges_.clear();
  first = std::max(first, base_pfn_);
  end = std::min(end, end_pfn_);
  for (std::size_t w = 0; w < memmap_dirty_.size(); ++w) {
    for (std::uint64_t bits = memmap_dirty_[w]; bits; bits &= bits - 1) {
      const std::uint64_t c = w * 64 + static_cast<unsigned>(__builtin_ctzll(bits));
      const pfn_t lo = std::max(first, base_pfn_ + (c << kDirtyChunkShift));
      const pfn_t hi = std::min(end, base_pfn_ + ((c + 1) << kDirtyChunkShift));
      if (lo >= hi) continue;
      if (!dirty_ranges_.empty() && dirty_ranges_.back().second == lo)
        dirty_ranges_.back().second = hi;
      else
        dirty_ranges_.emplace_back(lo, hi);
    }
    memmap_dirty_[w] = 0;
  }
  return dirty_ranges_;
}

void Sparse::copy_pages(const Sparse& snap, pfn_t first, pfn_t end) {
  std::memcpy(static_cast<void*>(vmemmap_ + (first - base_pfn_)),
              snap.vmemmap_ + (first - base_pfn_), (end - first) * sizeof(page));
}

void PageAlloc::restore_from(const PageAlloc& s,
                             const std::vector<std::pair<pfn_t, pfn_t>>& dirty) {
  node_data = s.node_data;
  min_free_kbytes = s.min_free_kbytes;
  user_min_free_kbytes = s.user_min_free_kbytes;
  totalreserve_pages = s.totalreserve_pages;
  totalram_pages = s.totalram_pages;
  totalcma_pages = s.totalcma_pages;
  cma = s.cma;
  nr_alloc_failures = s.nr_alloc_failures;
  nr_alloc_warnings = s.nr_alloc_warnings;
  alloc_warnings = s.alloc_warnings;
  pgalloc = s.pgalloc;
  pgfree = s.pgfree;
  pageblock_flags_ = s.pageblock_flags_;
  for (auto [first, end] : dirty) {
    end = std::min<pfn_t>(end, memmap_base_ + page_owner_.size());
    if (first < end)
      std::copy(s.page_owner_.begin() + static_cast<std::ptrdiff_t>(first - memmap_base_),
                s.page_owner_.begin() + static_cast<std::ptrdiff_t>(end - memmap_base_),
                page_owner_.begin() + static_cast<std::ptrdiff_t>(first - memmap_base_));
  }
  lists_.restore_from(s.lists_);
  page_group_by_mobility_disabled_ = s.page_group_by_mobility_disabled_;
}

void Slab::restore_from(const Slab& s) {
  variant = s.variant;
  config = s.config;
  // Caches: the ones cache() handed out since the last restore, and the
  // ones created since (dropped).
  caches.resize(s.caches.size());
  for (std::size_t i = 0; i < caches.size(); ++i) {
    const auto& from = s.caches[i];
    auto& to = caches[i];
    if (!from)
      to.reset();
    else if (!to)
      to = std::make_unique<kmem_cache>(*from);
    else if (to->restore_dirty)
      *to = *from;
    else
      continue;
    if (to) to->restore_dirty = false;
  }
  slab_caches = s.slab_caches;
  kmalloc_caches = s.kmalloc_caches;
  kmem_cache_cache = s.kmem_cache_cache;
  kmem_cache_node_cache = s.kmem_cache_node_cache;
  if (allocator && s.allocator) allocator->restore_from(*s.allocator);
  lists.restore_from(s.lists);
  kmalloc_min_ = s.kmalloc_min_;
  shift_low_ = s.shift_low_;
  shift_high_ = s.shift_high_;
  own_kmalloc_ = s.own_kmalloc_;
  for (const std::uint32_t i : shadow_touched_list_) {
    shadow_touched_[i] = 0;
    copy_owned(shadow_[i], s.shadow_[i]);
  }
  shadow_touched_list_.clear();
  large_ = s.large_;
  rng_ = s.rng_;
}

void SlobAllocator::restore_from(const SlabAllocator& snap) {
  const auto& s = static_cast<const SlobAllocator&>(snap);
  std::copy(std::begin(s.lists_), std::end(s.lists_), std::begin(lists_));
  kmalloc_cache_ = s.kmalloc_cache_;
  pages_ = s.pages_;
  orphans_ = s.orphans_;
  rcu_ = s.rcu_;
  last_head_ = s.last_head_;
  last_start_ = s.last_start_;
}

void Mempools::restore_from(const Mempools& s) {
  pools_.resize(s.pools_.size());
  for (std::size_t i = 0; i < pools_.size(); ++i) copy_owned(pools_[i], s.pools_[i]);
  completed_ = s.completed_;
  next_ticket_ = s.next_ticket_;
}

void PageTables::restore_from(const PageTables& s) {
  nr_tlb_flushes = s.nr_tlb_flushes;
  kimage_segments = s.kimage_segments;
  fdt_va = s.fdt_va;
  nr_tables = s.nr_tables;
  nr_tables_freed = s.nr_tables_freed;
  rodata_full = s.rodata_full;
  prot_ = s.prot_;
  pgd_ = s.pgd_;
  use_page_alloc_ = s.use_page_alloc_;
  boot_tables_ = s.boot_tables_;
  pool_ = s.pool_;
  pool_end_ = s.pool_end_;
  tlb_ = s.tlb_;
}

void Vmalloc::restore_from(const Vmalloc& s) {
  vmap_lazy_nr = s.vmap_lazy_nr;
  nr_vmalloc_pages = s.nr_vmalloc_pages;
  nr_purges = s.nr_purges;
  vmap_area_cachep = s.vmap_area_cachep;
  initialized_ = s.initialized_;
  busy_ = s.busy_;
  free_ = s.free_;
  purge_ = s.purge_;
  drain_pending_ = s.drain_pending_;
  freed_starts_ = s.freed_starts_;
  devices_ = s.devices_;
  kmap_count_ = s.kmap_count_;
  kmap_stack_ = s.kmap_stack_;
}

void Mm::restore_from(const Mm& s) {
  ram.restore_from(s.ram);
  memblock = s.memblock;
  // Struct pages and page_owner of RAM handed out writable since the last
  // restore (Sparse::take_dirty).
  const auto& dirty =
      sparse.take_dirty(ram.base() >> profile.page_shift, ram.end() >> profile.page_shift);
  for (const auto& [first, end] : dirty) sparse.copy_pages(s.sparse, first, end);
  page_alloc.restore_from(s.page_alloc, dirty);
  slab.restore_from(s.slab);
  mempools.restore_from(s.mempools);
  pgtable.restore_from(s.pgtable);
  vmalloc.restore_from(s.vmalloc);
  op_seq = s.op_seq;
  call_site = s.call_site;
  memstart_addr = s.memstart_addr;
  // Records of boot: equal unless something appended since.
  if (boot_log.size() != s.boot_log.size()) boot_log = s.boot_log;
  if (iomem.size() != s.iomem.size()) iomem = s.iomem;
  kimage = s.kimage;
  initrd_start = s.initrd_start;
  initrd_end = s.initrd_end;
  memmap_bytes = s.memmap_bytes;
  if (memmap_phys != s.memmap_phys) memmap_phys = s.memmap_phys;
  boot_reserved_pages = s.boot_reserved_pages;
  boot_step_ = s.boot_step_;
  cpu_ = s.cpu_;
  cpu_node_ = s.cpu_node_;
  preempt_count_ = s.preempt_count_;
  arm64_dma_phys_limit_ = s.arm64_dma_phys_limit_;
  events_ = s.events_;
}

}  // namespace mmfuzz::mm
