// memblock: the boot-time allocator. Two region arrays, memory and reserved,
// kept sorted and merged the way mm/memblock.c keeps them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::mm {

inline constexpr int MAX_NUMNODES_NID = 1 << 10;  // "no node yet" marker of reserved regions

struct memblock_region {
  phys_addr_t base = 0;
  phys_addr_t size = 0;
  unsigned flags = 0;  // MEMBLOCK_NONE
  int nid = MAX_NUMNODES_NID;
  phys_addr_t end() const { return base + size; }
};

struct memblock_type {
  std::vector<memblock_region> regions;
  std::string name;
  phys_addr_t total_size() const;
};

struct PhysRange;

class Memblock {
 public:
  Memblock();

  memblock_type memory;
  memblock_type reserved;
  phys_addr_t current_limit = ~phys_addr_t{0};  // MEMBLOCK_ALLOC_ANYWHERE

  void add_node(phys_addr_t base, phys_addr_t size, int nid);  // memblock_add_node
  void remove(phys_addr_t base, phys_addr_t size);             // memblock_remove
  void reserve(phys_addr_t base, phys_addr_t size);            // memblock_reserve
  void phys_free(phys_addr_t base, phys_addr_t size);          // memblock_phys_free

  // Top-down, as memblock allocates by default. Returns 0 on failure.
  phys_addr_t phys_alloc_range(phys_addr_t size, phys_addr_t align, phys_addr_t start,
                               phys_addr_t end);
  phys_addr_t phys_alloc(phys_addr_t size, phys_addr_t align) {
    return phys_alloc_range(size, align, 0, current_limit);
  }

  phys_addr_t start_of_DRAM() const;
  phys_addr_t end_of_DRAM() const;
  // memblock_is_memory(): a binary search, as the kernel's memblock_search().
  bool is_memory(phys_addr_t pa) const {
    std::size_t lo = 0, hi = memory.regions.size();
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      const memblock_region& r = memory.regions[mid];
      if (pa < r.base)
        hi = mid;
      else if (pa - r.base >= r.size)
        lo = mid + 1;
      else
        return true;
    }
    return false;
  }
  bool is_region_reserved(phys_addr_t base, phys_addr_t size) const;

  // memory minus reserved, ascending (for_each_free_mem_range).
  std::vector<PhysRange> free_ranges() const;

 private:
  static void add_range(memblock_type& t, phys_addr_t base, phys_addr_t size, int nid);
  static void remove_range(memblock_type& t, phys_addr_t base, phys_addr_t size);
};

}  // namespace mmfuzz::mm
