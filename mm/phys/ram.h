// Simulated RAM as real bytes (DESIGN rules 2-3). The whole physical span is
// reserved as host address space with MAP_NORESERVE, so a 1 GiB model costs
// only the pages a Program touches. A per-page dirty bit makes zeroing an
// untouched page free (init_on_alloc zeroes every allocation).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::mm {

class PhysRam {
 public:
  PhysRam() = default;
  ~PhysRam();
  PhysRam(const PhysRam&) = delete;
  PhysRam& operator=(const PhysRam&) = delete;

  // Reserves host memory for [base, base + size). Throws ConfigError if the
  // host refuses.
  void init(phys_addr_t base, std::uint64_t size, unsigned page_shift);

  phys_addr_t base() const { return base_; }
  phys_addr_t end() const { return base_ + size_; }
  bool contains(phys_addr_t pa, std::uint64_t len) const {
    return pa >= base_ && len <= size_ && pa - base_ <= size_ - len;
  }

  // Bounds-checked: out of range, reads give zeros and writes do nothing.
  void read(phys_addr_t pa, std::span<std::uint8_t> out) const {
    if (out.empty()) return;  // an empty span may carry a null data()
    if (!contains(pa, out.size())) {
      std::memset(out.data(), 0, out.size());
      return;
    }
    std::memcpy(out.data(), mem_ + (pa - base_), out.size());
  }
  void write(phys_addr_t pa, std::span<const std::uint8_t> in) {
    if (in.empty() || !contains(pa, in.size())) return;
    std::memcpy(mem_ + (pa - base_), in.data(), in.size());
    mark_dirty(pa, in.size());
  }
  void fill(phys_addr_t pa, std::uint64_t len, std::uint8_t byte) {
    if (!len || !contains(pa, len)) return;
    std::memset(mem_ + (pa - base_), byte, len);
    mark_dirty(pa, len);
  }
  std::uint8_t byte(phys_addr_t pa) const { return contains(pa, 1) ? mem_[pa - base_] : 0; }
  // One 64-bit word (a free pointer, a list link): the allocators' hot path.
  static_assert(std::endian::native == std::endian::little, "the model stores arm64 data LE");
  std::uint64_t load64(phys_addr_t pa) const {
    std::uint64_t v = 0;
    if (contains(pa, 8)) std::memcpy(&v, mem_ + (pa - base_), 8);
    return v;
  }
  void store64(phys_addr_t pa, std::uint64_t v) { store(pa, v); }
  // Fixed-size loads and stores (SLOB's slobidx_t, SLAB's index array):
  // a constant-size memcpy, no library call. Out of range: 0 / nothing.
  template <typename T>
  T load(phys_addr_t pa) const {
    T v{};
    if (contains(pa, sizeof(T))) std::memcpy(&v, mem_ + (pa - base_), sizeof(T));
    return v;
  }
  template <typename T>
  void store(phys_addr_t pa, T v) {
    if (!contains(pa, sizeof(T))) return;
    std::memcpy(mem_ + (pa - base_), &v, sizeof(T));
    mark_dirty(pa, sizeof(T));
  }
  // Zeroes whole pages; pages never written since their last zeroing cost nothing.
  void zero_pages(pfn_t pfn, std::uint64_t nr) {
    const std::uint64_t i = pfn - (base_ >> page_shift_);
    if (nr == 1 && i < (size_ >> page_shift_) && !((dirty_[i >> 6] >> (i & 63)) & 1))
      return;  // the common case
    zero_pages_slow(pfn, nr);
  }
  // fill(pa, len, 0) that leaves clean pages alone (they read as zeros) and
  // makes whole pages clean again: zeroing a 4 MiB kmalloc costs what it dirtied.
  void zero(phys_addr_t pa, std::uint64_t len) {
    if (!len || !contains(pa, len)) return;
    const std::uint64_t first = (pa - base_) >> page_shift_;
    if (first == (pa - base_ + len - 1) >> page_shift_) {
      if ((dirty_[first >> 6] >> (first & 63)) & 1) {
        std::memset(mem_ + (pa - base_), 0, len);
        written_[first >> 6] |= std::uint64_t{1} << (first & 63);
      }
      return;
    }
    zero_slow(pa, len);
  }
  // Read-only view of a page's bytes.
  std::span<const std::uint8_t> page_bytes(pfn_t pfn) const;

  bool page_dirty(pfn_t pfn) const;
  std::uint64_t dirty_pages() const;

  // Makes the bytes equal to `snap`'s (same base and size), copying only the
  // pages written since this RAM was created or last restored: `snap` must
  // not have changed since it was booted alike.
  void restore_from(const PhysRam& snap);
  std::uint64_t written_pages() const;  // written since creation / the last restore

 private:
  void mark_dirty(phys_addr_t pa, std::uint64_t len) {
    const std::uint64_t first = (pa - base_) >> page_shift_;
    const std::uint64_t last = (pa - base_ + len - 1) >> page_shift_;
    if (first == last) {
      dirty_[first >> 6] |= std::uint64_t{1} << (first & 63);
      written_[first >> 6] |= std::uint64_t{1} << (first & 63);
    } else
      mark_dirty_range(first, last);
  }
  void mark_dirty_range(std::uint64_t first, std::uint64_t last);
  void zero_pages_slow(pfn_t pfn, std::uint64_t nr);
  void zero_slow(phys_addr_t pa, std::uint64_t len);

  std::uint8_t* mem_ = nullptr;
  phys_addr_t base_ = 0;
  std::uint64_t size_ = 0;
  unsigned page_shift_ = 12;
  std::vector<std::uint64_t> dirty_;    // one bit per page
  std::vector<std::uint64_t> written_;  // pages changed since creation / the last restore
};

}  // namespace mmfuzz::mm
