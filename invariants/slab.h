// Slab layer invariants: slab pages, overlap, freelists, counts, list
// membership, mempool reserves, and SLUB debug's red zone / poison / padding
// checks in sweeps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "invariants/checker.h"

namespace mmfuzz::mm {
struct kmem_cache;
}

namespace mmfuzz::inv {

class SlabChecker : public Checker {
 public:
  const char* family() const override { return "slab"; }
  const std::vector<std::string>& invariants() const override;
  void full(const mm::Mm& mm, Reporter& r) override;
  void incremental(const mm::Mm& mm, const TouchLog& touched, Reporter& r) override;

  // Objects still allocated by Programs (not at boot), by cache and site.
  static Violation leak_report(const mm::Mm& mm, bool* any);

 private:
  void check_pages(const mm::Mm& mm, Reporter& r);
  void check_slub(const mm::Mm& mm, Reporter& r);
  void check_debug_objects(const mm::Mm& mm, Reporter& r);
};

// The slab family's invariant ids and the report all three allocators'
// checks file.
namespace slab_inv {
inline constexpr const char* kPages = "slab.pages";
inline constexpr const char* kOverlap = "slab.overlap";
inline constexpr const char* kFreelist = "slab.freelist";
inline constexpr const char* kCounts = "slab.counts";
inline constexpr const char* kLists = "slab.lists";
inline constexpr const char* kRearm = "slab.rearm";
inline constexpr const char* kMempool = "slab.mempool";
// "BUG: mmfuzz invariant <id>: <msg>" with a dump of pfn (if it is a valid
// pfn), when id is enabled.
void bug(const mm::Mm& m, Reporter& r, const char* id, std::uint64_t pfn, std::string msg);
}  // namespace slab_inv

// Allocator-specific structure checks of the other two allocators
// (invariants/slab_classic.cpp, invariants/slob.cpp).
void check_slab_classic(const mm::Mm& mm, Reporter& r);
void check_slob(const mm::Mm& mm, Reporter& r);
// The mempools' reserves (invariants/mempool.cpp): cheap, run after every op.
void check_mempools(const mm::Mm& mm, Reporter& r);

}  // namespace mmfuzz::inv
