// Planted defects for the fuzzing self-test (issue: fuzz-selftest). Each is a
// real-looking bug in the model that the checkers must catch once a fuzzer
// drives the model into it. Compiled in only with MMFUZZ_PLANTED_DEFECTS
// (a test-only build option); selected at run time by MmConfig::planted.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mmfuzz::mm {

enum class PlantedDefect : std::uint8_t {
  none,
  buddy_skip_merge,     // __free_one_page() stops before merging an order-3 buddy
  slub_freelist_off_by_one,  // SLUB's freelist pointer of a freed object lands one word off
  vmalloc_no_guard,     // __get_vm_area_node() forgets the guard page
  vfree_leaves_pte,     // vunmap of an area leaves its last PTE mapped
  redzone_not_rearmed,  // a freed object's right red zone is not re-armed (SLAB_RED_ZONE)
};
inline constexpr int kNrPlantedDefects = 6;

const char* planted_defect_name(PlantedDefect d);
std::optional<PlantedDefect> parse_planted_defect(std::string_view name);

#ifdef MMFUZZ_PLANTED_DEFECTS
inline constexpr bool kPlantedDefects = true;
#else
inline constexpr bool kPlantedDefects = false;
#endif

}  // namespace mmfuzz::mm
