#include "mm/planted.h"

#include <array>

namespace mmfuzz::mm {

namespace {
constexpr std::array<const char*, kNrPlantedDefects> kDefectNames = {
    "none",
    "buddy_skip_merge",
    "slub_freelist_off_by_one",
    "vmalloc_no_guard",
    "vfree_leaves_pte",
    "redzone_not_rearmed",
    "watermark_nowait_harder",
    "pcp_refill_count_blocks",
    "mempool_free_skips_refill",
    "slab_flusharray_drops_object",
    "slob_units_double_count",
    "slob_zero_short",
};
}  // namespace

const char* planted_defect_name(PlantedDefect d) {
  const auto i = static_cast<std::size_t>(d);
  return i < kDefectNames.size() ? kDefectNames[i] : "?";
}

std::optional<PlantedDefect> parse_planted_defect(std::string_view name) {
  for (std::size_t i = 0; i < kDefectNames.size(); ++i)
    if (name == kDefectNames[i]) return static_cast<PlantedDefect>(i);
  return std::nullopt;
}

}  // namespace mmfuzz::mm
