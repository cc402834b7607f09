// Buddy allocator invariants: free blocks, pcp lists, page metadata, the
// page accounting of every zone, and (after each op) the watermark every
// allocation of the op passed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "invariants/checker.h"

namespace mmfuzz::inv {

class BuddyChecker : public Checker {
 public:
  const char* family() const override { return "buddy"; }
  const std::vector<std::string>& invariants() const override;
  void full(const mm::Mm& mm, Reporter& r) override;
  void incremental(const mm::Mm& mm, const TouchLog& touched, Reporter& r) override;

 private:
  enum : std::uint8_t { S_NONE, S_FREE, S_FREE_HEAD, S_PCP, S_ALLOC, S_RESERVED };
  void check_block_at(const mm::Mm& mm, std::uint64_t pfn, Reporter& r);
  void check_zone_counters(const mm::Mm& mm, int nid, int zid, Reporter& r);
  void check_watermark(const mm::Mm& mm, const mm::WatermarkPass& w, Reporter& r);
  void mark_block(const mm::Mm& mm, Reporter& r, std::uint64_t pfn, unsigned order,
                  std::uint8_t state);
  std::vector<std::uint8_t> state_;          // per pfn of the memmap, reused between sweeps
  std::uint64_t base_ = 0;                   // pfn of state_[0]
  static constexpr std::size_t kSeen = 256;  // (pfn, stamp): see incremental()
  std::array<std::pair<std::uint64_t, std::uint32_t>, kSeen> seen_{};
  std::uint32_t stamp_ = 0;
};

}  // namespace mmfuzz::inv
