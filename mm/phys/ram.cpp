#include "mm/phys/ram.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace mmfuzz::mm {

PhysRam::~PhysRam() {
  if (mem_) munmap(mem_, size_);
}

void PhysRam::init(phys_addr_t base, std::uint64_t size, unsigned page_shift) {
  if (mem_) munmap(mem_, size_);
  mem_ = nullptr;
  base_ = base;
  size_ = size;
  page_shift_ = page_shift;
  if (size == 0) return;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    size_ = 0;
    throw ConfigError("cannot reserve " + std::to_string(size >> 20) +
                      " MiB of host address space for simulated RAM");
  }
  mem_ = static_cast<std::uint8_t*>(p);
  dirty_.assign(((size >> page_shift) + 63) / 64, 0);
  written_.assign(dirty_.size(), 0);
}

void PhysRam::mark_dirty_range(std::uint64_t first, std::uint64_t last) {
  for (std::uint64_t i = first; i <= last; ++i) {
    dirty_[i >> 6] |= std::uint64_t{1} << (i & 63);
    written_[i >> 6] |= std::uint64_t{1} << (i & 63);
  }
}

void PhysRam::zero_pages_slow(pfn_t pfn, std::uint64_t nr) {
  if (!contains(pfn << page_shift_, nr << page_shift_)) return;
  const std::uint64_t first = ((pfn << page_shift_) - base_) >> page_shift_;
  for (std::uint64_t i = first; i < first + nr; ++i) {
    std::uint64_t& word = dirty_[i >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (!(word & bit)) continue;
    std::memset(mem_ + (i << page_shift_), 0, std::size_t{1} << page_shift_);
    word &= ~bit;
    written_[i >> 6] |= bit;
  }
}

void PhysRam::zero_slow(phys_addr_t pa, std::uint64_t len) {
  const std::uint64_t psz = std::uint64_t{1} << page_shift_;
  std::uint64_t off = pa - base_;
  const std::uint64_t end = off + len;
  while (off < end) {
    const std::uint64_t i = off >> page_shift_;
    const std::uint64_t page_end = (i + 1) << page_shift_;
    const std::uint64_t n = std::min(end, page_end) - off;
    std::uint64_t& word = dirty_[i >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (word & bit) {
      std::memset(mem_ + off, 0, n);
      written_[i >> 6] |= bit;
      if (n == psz) word &= ~bit;  // the whole page is zeros again
    }
    off += n;
  }
}

std::span<const std::uint8_t> PhysRam::page_bytes(pfn_t pfn) const {
  const phys_addr_t pa = pfn << page_shift_;
  if (!contains(pa, std::uint64_t{1} << page_shift_)) return {};  // not RAM: no bytes
  return {mem_ + (pa - base_), std::size_t{1} << page_shift_};
}

bool PhysRam::page_dirty(pfn_t pfn) const {
  if (!contains(pfn << page_shift_, std::uint64_t{1} << page_shift_)) return false;
  const std::uint64_t i = ((pfn << page_shift_) - base_) >> page_shift_;
  return (dirty_[i >> 6] >> (i & 63)) & 1;
}

void PhysRam::restore_from(const PhysRam& snap) {
  const std::size_t psz = std::size_t{1} << page_shift_;
  for (std::size_t w = 0; w < written_.size(); ++w) {
    std::uint64_t bits = written_[w];
    if (!bits) continue;
    const std::uint64_t snap_dirty = snap.dirty_[w];
    for (std::uint64_t b = bits; b; b &= b - 1) {
      const std::uint64_t i = (w << 6) + static_cast<unsigned>(__builtin_ctzll(b));
      if ((snap_dirty >> (i & 63)) & 1)
        std::memcpy(mem_ + (i << page_shift_), snap.mem_ + (i << page_shift_), psz);
      else
        std::memset(mem_ + (i << page_shift_), 0, psz);
    }
    dirty_[w] = (dirty_[w] & ~bits) | (snap_dirty & bits);
    written_[w] = 0;
  }
}

std::uint64_t PhysRam::written_pages() const {
  std::uint64_t n = 0;
  for (auto w : written_) n += static_cast<std::uint64_t>(__builtin_popcountll(w));
  return n;
}

std::uint64_t PhysRam::dirty_pages() const {
  std::uint64_t n = 0;
  for (auto w : dirty_) n += static_cast<std::uint64_t>(__builtin_popcountll(w));
  return n;
}

}  // namespace mmfuzz::mm
