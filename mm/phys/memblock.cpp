#include "mm/phys/memblock.h"

#include <algorithm>

#include "mm/phys/machine.h"

namespace mmfuzz::mm {

phys_addr_t memblock_type::total_size() const {
  phys_addr_t t = 0;
  for (const auto& r : regions) t += r.size;
  return t;
}

Memblock::Memblock() {
  memory.name = "memory";
  reserved.name = "reserved";
}

// Adds [base, base+size) where not already covered, then merges neighbours
// of the same node and flags (memblock_add_range + memblock_merge_regions).
void Memblock::add_range(memblock_type& t, phys_addr_t base, phys_addr_t size, int nid) {
  if (size == 0) return;
  phys_addr_t end = base + size;
  std::vector<memblock_region> out;
  out.reserve(t.regions.size() + 2);
  phys_addr_t cur = base;
  for (const auto& r : t.regions) {
    if (cur < end && r.base > cur) out.push_back({cur, std::min(end, r.base) - cur, 0, nid});
    out.push_back(r);
    cur = std::max(cur, r.end());
  }
  if (cur < end) out.push_back({cur, end - cur, 0, nid});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.base < b.base; });
  t.regions.clear();
  for (const auto& r : out) {
    if (!t.regions.empty()) {
      auto& last = t.regions.back();
      if (last.end() == r.base && last.nid == r.nid && last.flags == r.flags) {
        last.size += r.size;
        continue;
      }
    }
    t.regions.push_back(r);
  }
}

void Memblock::remove_range(memblock_type& t, phys_addr_t base, phys_addr_t size) {
  if (size == 0) return;
  phys_addr_t end = base + size;
  std::vector<memblock_region> out;
  for (const auto& r : t.regions) {
    if (r.end() <= base || r.base >= end) {
      out.push_back(r);
      continue;
    }
    if (r.base < base) out.push_back({r.base, base - r.base, r.flags, r.nid});
    if (r.end() > end) out.push_back({end, r.end() - end, r.flags, r.nid});
  }
  t.regions = std::move(out);
}

void Memblock::add_node(phys_addr_t base, phys_addr_t size, int nid) {
  add_range(memory, base, size, nid);
}
void Memblock::remove(phys_addr_t base, phys_addr_t size) {
  remove_range(memory, base, size);
}
void Memblock::reserve(phys_addr_t base, phys_addr_t size) {
  add_range(reserved, base, size, MAX_NUMNODES_NID);
}
void Memblock::phys_free(phys_addr_t base, phys_addr_t size) {
  remove_range(reserved, base, size);
}

std::vector<PhysRange> Memblock::free_ranges() const {
  std::vector<PhysRange> out;
  for (const auto& m : memory.regions) {
    phys_addr_t cur = m.base;
    for (const auto& r : reserved.regions) {
      if (r.end() <= cur || r.base >= m.end()) continue;
      if (r.base > cur) out.push_back({cur, r.base});
      cur = std::max(cur, r.end());
    }
    if (cur < m.end()) out.push_back({cur, m.end()});
  }
  return out;
}

phys_addr_t Memblock::phys_alloc_range(phys_addr_t size, phys_addr_t align, phys_addr_t start,
                                       phys_addr_t end) {
  if (size == 0) return 0;
  if (align == 0) align = 1;
  end = std::min(end, current_limit);
  auto ranges = free_ranges();
  for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
    phys_addr_t s = std::max(it->start, start);
    phys_addr_t e = std::min(it->end, end);
    if (e <= s || e - s < size) continue;
    phys_addr_t cand = round_down(e - size, align);
    if (cand < s) continue;
    reserve(cand, size);
    return cand;
  }
  return 0;
}

phys_addr_t Memblock::start_of_DRAM() const {
  return memory.regions.empty() ? 0 : memory.regions.front().base;
}
phys_addr_t Memblock::end_of_DRAM() const {
  return memory.regions.empty() ? 0 : memory.regions.back().end();
}

bool Memblock::is_region_reserved(phys_addr_t base, phys_addr_t size) const {
  for (const auto& r : reserved.regions)
    if (r.base < base + size && base < r.end()) return true;
  return false;
}

}  // namespace mmfuzz::mm
