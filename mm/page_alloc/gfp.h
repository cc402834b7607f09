// GFP flags of Linux 6.1 (include/linux/gfp_types.h): bit values, the
// composite masks, and the mapping from a mask to a zone and a migrate type.
// Names print exactly as ftrace prints them (show_gfp_flags).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mm/types.h"

namespace mmfuzz::mm {

// Bit values. 5.10 agrees on every bit below 0x800000.
inline constexpr gfp_t __GFP_DMA = 0x01u;
inline constexpr gfp_t __GFP_HIGHMEM = 0x02u;
inline constexpr gfp_t __GFP_DMA32 = 0x04u;
inline constexpr gfp_t __GFP_MOVABLE = 0x08u;
inline constexpr gfp_t __GFP_RECLAIMABLE = 0x10u;
inline constexpr gfp_t __GFP_HIGH = 0x20u;
inline constexpr gfp_t __GFP_IO = 0x40u;
inline constexpr gfp_t __GFP_FS = 0x80u;
inline constexpr gfp_t __GFP_ZERO = 0x100u;
inline constexpr gfp_t __GFP_ATOMIC = 0x200u;
inline constexpr gfp_t __GFP_DIRECT_RECLAIM = 0x400u;
inline constexpr gfp_t __GFP_KSWAPD_RECLAIM = 0x800u;
inline constexpr gfp_t __GFP_WRITE = 0x1000u;
inline constexpr gfp_t __GFP_NOWARN = 0x2000u;
inline constexpr gfp_t __GFP_RETRY_MAYFAIL = 0x4000u;
inline constexpr gfp_t __GFP_NOFAIL = 0x8000u;
inline constexpr gfp_t __GFP_NORETRY = 0x10000u;
inline constexpr gfp_t __GFP_MEMALLOC = 0x20000u;
inline constexpr gfp_t __GFP_COMP = 0x40000u;
inline constexpr gfp_t __GFP_NOMEMALLOC = 0x80000u;
inline constexpr gfp_t __GFP_HARDWALL = 0x100000u;
inline constexpr gfp_t __GFP_THISNODE = 0x200000u;
inline constexpr gfp_t __GFP_ACCOUNT = 0x400000u;
inline constexpr gfp_t __GFP_ZEROTAGS = 0x800000u;
// Only with CONFIG_KASAN_HW_TAGS; 0 on the Debian arm64 kernel.
inline constexpr gfp_t __GFP_SKIP_ZERO = 0;
inline constexpr gfp_t __GFP_SKIP_KASAN_UNPOISON = 0;
inline constexpr gfp_t __GFP_SKIP_KASAN_POISON = 0;

inline constexpr gfp_t __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE;
inline constexpr gfp_t GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE;
inline constexpr unsigned GFP_MOVABLE_SHIFT = 3;

inline constexpr gfp_t GFP_ATOMIC = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
inline constexpr gfp_t GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT;
inline constexpr gfp_t GFP_NOWAIT = __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_NOIO = __GFP_RECLAIM;
inline constexpr gfp_t GFP_NOFS = __GFP_RECLAIM | __GFP_IO;
inline constexpr gfp_t GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
inline constexpr gfp_t GFP_DMA = __GFP_DMA;
inline constexpr gfp_t GFP_DMA32 = __GFP_DMA32;
inline constexpr gfp_t GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
inline constexpr gfp_t GFP_HIGHUSER_MOVABLE =
    GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN_POISON | __GFP_SKIP_KASAN_UNPOISON;
inline constexpr gfp_t GFP_TRANSHUGE_LIGHT =
    (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM;
inline constexpr gfp_t GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

// "GFP_KERNEL|__GFP_ZERO", "none" for 0, unknown bits as "|0x...".
std::string format_gfp(gfp_t gfp);
// Accepts what format_gfp prints, any order, plus plain numbers ("0x140dca").
// On failure returns nullopt and sets *error to a one-line reason.
std::optional<gfp_t> parse_gfp(std::string_view text, std::string* error = nullptr);

enum zone_type : int { ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, MAX_NR_ZONES };
const char* zone_name(int zone);

enum migratetype : int {
  MIGRATE_UNMOVABLE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_PCPTYPES,
  MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES,
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  MIGRATE_TYPES
};
const char* migratetype_name(int mt);  // as /proc/pagetypeinfo prints it
constexpr bool is_migrate_cma(int mt) {
  return mt == MIGRATE_CMA;
}
constexpr bool is_migrate_isolate(int mt) {
  return mt == MIGRATE_ISOLATE;
}
constexpr bool is_migrate_highatomic(int mt) {
  return mt == MIGRATE_HIGHATOMIC;
}
// Pageblocks of these types may merge with each other at pageblock_order.
constexpr bool migratetype_is_mergeable(int mt) {
  return mt < MIGRATE_PCPTYPES;
}

// Zone modifiers that name two zones at once (e.g. __GFP_DMA|__GFP_DMA32), or
// both mobility bits at once, are rejected: the kernel would BUG.
constexpr bool gfp_zone_valid(gfp_t gfp) {
  const gfp_t z = gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32);
  if (z & (z - 1)) return false;  // more than one zone modifier (GFP_ZONE_BAD)
  return (gfp & GFP_MOVABLE_MASK) != GFP_MOVABLE_MASK;
}
// The highest zone an allocation may use (GFP_ZONE_TABLE with
// OPT_ZONE_HIGHMEM = ZONE_NORMAL: arm64 has no highmem).
constexpr zone_type gfp_zone(gfp_t gfp) {
  if (gfp & __GFP_DMA) return ZONE_DMA;
  if (gfp & __GFP_DMA32) return ZONE_DMA32;
  if ((gfp & (__GFP_HIGHMEM | __GFP_MOVABLE)) == (__GFP_HIGHMEM | __GFP_MOVABLE))
    return ZONE_MOVABLE;
  return ZONE_NORMAL;
}
constexpr int gfp_migratetype(gfp_t gfp) {
  return static_cast<int>((gfp & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT);
}
inline bool gfpflags_allow_blocking(gfp_t gfp) {
  return gfp & __GFP_DIRECT_RECLAIM;
}

}  // namespace mmfuzz::mm
