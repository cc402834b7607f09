// GFP masks of Linux 6.1: bit values, show_gfp_flags() formatting, parsing,
// and the zone and migrate type a mask selects.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "mm/page_alloc/gfp.h"

namespace mmfuzz::mm {
namespace {

struct Named {
  gfp_t mask;
  const char* name;
};

// Every composite of include/linux/gfp_types.h (6.1) with its value as ftrace
// prints it (Debian: no KASAN_HW_TAGS, no LOCKDEP).
const std::vector<Named>& composites() {
  static const std::vector<Named> v = {
      {0xa20, "GFP_ATOMIC"},
      {0xcc0, "GFP_KERNEL"},
      {0x400cc0, "GFP_KERNEL_ACCOUNT"},
      {0x800, "GFP_NOWAIT"},
      {0xc00, "GFP_NOIO"},
      {0xc40, "GFP_NOFS"},
      {0x100cc0, "GFP_USER"},
      {0x1, "GFP_DMA"},
      {0x4, "GFP_DMA32"},
      {0x100cc2, "GFP_HIGHUSER"},
      {0x100cca, "GFP_HIGHUSER_MOVABLE"},
      {0x1c20ca, "GFP_TRANSHUGE_LIGHT"},
      {0x1c24ca, "GFP_TRANSHUGE"},
  };
  return v;
}

// The single bits under the name format_gfp prints for them.
const std::vector<Named>& bits() {
  static const std::vector<Named> v = {
      {0x01, "GFP_DMA"},  // __GFP_DMA prints as GFP_DMA
      {0x02, "__GFP_HIGHMEM"},
      {0x04, "GFP_DMA32"},
      {0x08, "__GFP_MOVABLE"},
      {0x10, "__GFP_RECLAIMABLE"},
      {0x20, "__GFP_HIGH"},
      {0x40, "__GFP_IO"},
      {0x80, "__GFP_FS"},
      {0x100, "__GFP_ZERO"},
      {0x200, "__GFP_ATOMIC"},
      {0x400, "__GFP_DIRECT_RECLAIM"},
      {0x800, "GFP_NOWAIT"},  // == __GFP_KSWAPD_RECLAIM; the composite comes first
      {0x1000, "__GFP_WRITE"},
      {0x2000, "__GFP_NOWARN"},
      {0x4000, "__GFP_RETRY_MAYFAIL"},
      {0x8000, "__GFP_NOFAIL"},
      {0x10000, "__GFP_NORETRY"},
      {0x20000, "__GFP_MEMALLOC"},
      {0x40000, "__GFP_COMP"},
      {0x80000, "__GFP_NOMEMALLOC"},
      {0x100000, "__GFP_HARDWALL"},
      {0x200000, "__GFP_THISNODE"},
      {0x400000, "__GFP_ACCOUNT"},
      {0x800000, "__GFP_ZEROTAGS"},
  };
  return v;
}

TEST(Gfp, BitValuesOf61) {
  EXPECT_EQ(__GFP_DMA, 0x01u);
  EXPECT_EQ(__GFP_HIGHMEM, 0x02u);
  EXPECT_EQ(__GFP_DMA32, 0x04u);
  EXPECT_EQ(__GFP_MOVABLE, 0x08u);
  EXPECT_EQ(__GFP_RECLAIMABLE, 0x10u);
  EXPECT_EQ(__GFP_HIGH, 0x20u);
  EXPECT_EQ(__GFP_IO, 0x40u);
  EXPECT_EQ(__GFP_FS, 0x80u);
  EXPECT_EQ(__GFP_ZERO, 0x100u);
  EXPECT_EQ(__GFP_ATOMIC, 0x200u);
  EXPECT_EQ(__GFP_DIRECT_RECLAIM, 0x400u);
  EXPECT_EQ(__GFP_KSWAPD_RECLAIM, 0x800u);
  EXPECT_EQ(__GFP_WRITE, 0x1000u);
  EXPECT_EQ(__GFP_NOWARN, 0x2000u);
  EXPECT_EQ(__GFP_RETRY_MAYFAIL, 0x4000u);
  EXPECT_EQ(__GFP_NOFAIL, 0x8000u);
  EXPECT_EQ(__GFP_NORETRY, 0x10000u);
  EXPECT_EQ(__GFP_MEMALLOC, 0x20000u);
  EXPECT_EQ(__GFP_COMP, 0x40000u);
  EXPECT_EQ(__GFP_NOMEMALLOC, 0x80000u);
  EXPECT_EQ(__GFP_HARDWALL, 0x100000u);
  EXPECT_EQ(__GFP_THISNODE, 0x200000u);
  EXPECT_EQ(__GFP_ACCOUNT, 0x400000u);
  EXPECT_EQ(__GFP_ZEROTAGS, 0x800000u);
  EXPECT_EQ(__GFP_SKIP_ZERO, 0u);
  EXPECT_EQ(__GFP_SKIP_KASAN_POISON, 0u);
  EXPECT_EQ(__GFP_SKIP_KASAN_UNPOISON, 0u);
  EXPECT_EQ(__GFP_RECLAIM, 0xc00u);
  EXPECT_EQ(GFP_ZONEMASK, 0x0fu);
  EXPECT_EQ(GFP_MOVABLE_MASK, 0x18u);
  for (const auto& c : composites()) {
    const auto parsed = parse_gfp(c.name);
    ASSERT_TRUE(parsed.has_value()) << c.name;
    EXPECT_EQ(*parsed, c.mask) << c.name;
  }
  EXPECT_EQ(GFP_ATOMIC, 0xa20u);
  EXPECT_EQ(GFP_KERNEL, 0xcc0u);
  EXPECT_EQ(GFP_KERNEL_ACCOUNT, 0x400cc0u);
  EXPECT_EQ(GFP_HIGHUSER_MOVABLE, 0x100ccau);
  EXPECT_EQ(GFP_TRANSHUGE_LIGHT, 0x1c20cau);
  EXPECT_EQ(GFP_TRANSHUGE, 0x1c24cau);
}

TEST(FormatGfp, PrintsWhat61FtracePrints) {
  EXPECT_EQ(format_gfp(0), "none");
  EXPECT_EQ(format_gfp(0xcc0), "GFP_KERNEL");
  EXPECT_EQ(format_gfp(GFP_KERNEL | __GFP_ZERO), "GFP_KERNEL|__GFP_ZERO");
  EXPECT_EQ(format_gfp(0x140dca), "GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO");
  EXPECT_EQ(format_gfp(GFP_ATOMIC), "GFP_ATOMIC");
  EXPECT_EQ(format_gfp(GFP_KERNEL_ACCOUNT | __GFP_ZERO), "GFP_KERNEL_ACCOUNT|__GFP_ZERO");
  EXPECT_EQ(format_gfp(GFP_NOWAIT | __GFP_NOWARN), "GFP_NOWAIT|__GFP_NOWARN");
  EXPECT_EQ(format_gfp(GFP_KERNEL | 0x1000000), "GFP_KERNEL|0x1000000");
  EXPECT_EQ(format_gfp(0x1000000), "0x1000000");
  EXPECT_EQ(format_gfp(0x80000000u), "0x80000000");
  EXPECT_EQ(format_gfp(GFP_ATOMIC | __GFP_NOWARN), "GFP_ATOMIC|__GFP_NOWARN");
  EXPECT_EQ(format_gfp(GFP_ATOMIC | __GFP_NOWARN | __GFP_NOMEMALLOC),
            "GFP_ATOMIC|__GFP_NOWARN|__GFP_NOMEMALLOC");
  EXPECT_EQ(format_gfp(GFP_KERNEL | __GFP_COMP | __GFP_NOWARN | __GFP_NORETRY),
            "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP");
  EXPECT_EQ(format_gfp(GFP_KERNEL | __GFP_RECLAIMABLE), "GFP_KERNEL|__GFP_RECLAIMABLE");
  EXPECT_EQ(format_gfp(GFP_NOFS | __GFP_NOFAIL), "GFP_NOFS|__GFP_NOFAIL");
  EXPECT_EQ(format_gfp(GFP_USER | __GFP_MOVABLE), "GFP_USER|__GFP_MOVABLE");
  EXPECT_EQ(format_gfp(GFP_KERNEL | __GFP_DMA), "GFP_KERNEL|GFP_DMA");
  EXPECT_EQ(format_gfp(GFP_KERNEL | __GFP_DMA32 | __GFP_THISNODE),
            "GFP_KERNEL|GFP_DMA32|__GFP_THISNODE");
  EXPECT_EQ(format_gfp(__GFP_HIGH | __GFP_IO), "__GFP_HIGH|__GFP_IO");
  // The first matching name wins: the widest composite first.
  EXPECT_EQ(format_gfp(__GFP_RECLAIM), "GFP_NOIO");
  EXPECT_EQ(format_gfp(__GFP_DIRECT_RECLAIM), "__GFP_DIRECT_RECLAIM");
  EXPECT_EQ(format_gfp(__GFP_KSWAPD_RECLAIM), "GFP_NOWAIT");
  EXPECT_EQ(format_gfp(GFP_KERNEL | GFP_ATOMIC), "GFP_KERNEL|__GFP_HIGH|__GFP_ATOMIC");
  EXPECT_EQ(format_gfp(__GFP_ZEROTAGS), "__GFP_ZEROTAGS");
  EXPECT_EQ(format_gfp(__GFP_WRITE | 0x3000000), "__GFP_WRITE|0x3000000");
}

TEST(FormatGfp, EveryCompositeAndBit) {
  for (const auto& c : composites()) EXPECT_EQ(format_gfp(c.mask), c.name);
  for (const auto& b : bits()) EXPECT_EQ(format_gfp(b.mask), b.name);
}

TEST(ParseGfp, RoundTripsEveryCompositeAndBit) {
  std::vector<gfp_t> masks;
  for (const auto& c : composites()) masks.push_back(c.mask);
  for (const auto& b : bits()) masks.push_back(b.mask);
  // A few combinations, and every bit added to GFP_KERNEL.
  masks.push_back(0x140dca);
  masks.push_back(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
  masks.push_back(GFP_TRANSHUGE | __GFP_THISNODE);
  masks.push_back(GFP_KERNEL | 0x1000000);
  masks.push_back(0xffffffffu);
  for (const auto& b : bits()) masks.push_back(GFP_KERNEL | b.mask);
  for (gfp_t m : masks) {
    std::string err;
    const auto back = parse_gfp(format_gfp(m), &err);
    ASSERT_TRUE(back.has_value()) << format_gfp(m) << ": " << err;
    EXPECT_EQ(*back, m) << format_gfp(m);
  }
  // Every raw bit, including the ones without a name.
  for (unsigned bit = 0; bit < 32; ++bit) {
    const gfp_t m = gfp_t{1} << bit;
    const auto back = parse_gfp(format_gfp(m));
    ASSERT_TRUE(back.has_value()) << bit;
    EXPECT_EQ(*back, m) << format_gfp(m);
  }
}

TEST(ParseGfp, NamesNumbersAndOrder) {
  EXPECT_EQ(parse_gfp("none"), gfp_t{0});
  EXPECT_EQ(parse_gfp("GFP_KERNEL"), GFP_KERNEL);
  EXPECT_EQ(parse_gfp("__GFP_ZERO|GFP_KERNEL"), GFP_KERNEL | __GFP_ZERO);  // any order
  EXPECT_EQ(parse_gfp("GFP_KERNEL|GFP_KERNEL"), GFP_KERNEL);
  EXPECT_EQ(parse_gfp("0x140dca"), 0x140dcau);
  EXPECT_EQ(parse_gfp("0X140DCA"), 0x140dcau);
  EXPECT_EQ(parse_gfp("3264"), 0xcc0u);
  EXPECT_EQ(parse_gfp("0"), gfp_t{0});
  EXPECT_EQ(parse_gfp("GFP_KERNEL|0x100"), GFP_KERNEL | __GFP_ZERO);
  EXPECT_EQ(parse_gfp("0xffffffff"), 0xffffffffu);
  // Names format_gfp never prints on its own are still accepted.
  EXPECT_EQ(parse_gfp("__GFP_RECLAIM"), __GFP_RECLAIM);
  EXPECT_EQ(parse_gfp("__GFP_KSWAPD_RECLAIM"), __GFP_KSWAPD_RECLAIM);
}

TEST(ParseGfp, Errors) {
  const auto error_of = [](const char* text) {
    std::string err;
    const auto r = parse_gfp(text, &err);
    EXPECT_FALSE(r.has_value()) << text;
    return err;
  };
  EXPECT_EQ(error_of(""), "empty GFP mask");
  EXPECT_EQ(error_of("GFP_BOGUS"), "unknown GFP flag 'GFP_BOGUS'");
  EXPECT_EQ(error_of("GFP_KERNEL|__GFP_BOGUS"), "unknown GFP flag '__GFP_BOGUS'");
  EXPECT_EQ(error_of("gfp_kernel"), "unknown GFP flag 'gfp_kernel'");  // case-sensitive
  EXPECT_EQ(error_of("|GFP_KERNEL"), "empty flag in GFP mask");
  EXPECT_EQ(error_of("GFP_KERNEL||__GFP_ZERO"), "empty flag in GFP mask");
  EXPECT_EQ(error_of("0xZZ"), "bad number in GFP mask: 'ZZ'");
  EXPECT_EQ(error_of("12abc"), "bad number in GFP mask: '12abc'");
  EXPECT_EQ(error_of("0x100000000"), "bad number in GFP mask: '100000000'");
  EXPECT_EQ(error_of("none|GFP_KERNEL"), "unknown GFP flag 'none'");
  EXPECT_FALSE(parse_gfp("GFP_NOPE").has_value());  // no error pointer: still just nullopt
}

TEST(ParseGfp, TrailingBarIsAnError) {
  std::string err;
  EXPECT_FALSE(parse_gfp("GFP_KERNEL|", &err).has_value());
  EXPECT_EQ(err, "empty flag in GFP mask");
}

// ---------------------------------------------------------------- zones

TEST(GfpZone, EveryComposite) {
  struct Z {
    gfp_t gfp;
    zone_type zone;
    int mt;
  };
  const std::vector<std::pair<const char*, Z>> want = {
      {"GFP_ATOMIC", {GFP_ATOMIC, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_KERNEL", {GFP_KERNEL, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_KERNEL_ACCOUNT", {GFP_KERNEL_ACCOUNT, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_NOWAIT", {GFP_NOWAIT, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_NOIO", {GFP_NOIO, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_NOFS", {GFP_NOFS, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_USER", {GFP_USER, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_DMA", {GFP_DMA, ZONE_DMA, MIGRATE_UNMOVABLE}},
      {"GFP_DMA32", {GFP_DMA32, ZONE_DMA32, MIGRATE_UNMOVABLE}},
      // No ZONE_HIGHMEM on arm64: OPT_ZONE_HIGHMEM is ZONE_NORMAL.
      {"GFP_HIGHUSER", {GFP_HIGHUSER, ZONE_NORMAL, MIGRATE_UNMOVABLE}},
      {"GFP_HIGHUSER_MOVABLE", {GFP_HIGHUSER_MOVABLE, ZONE_MOVABLE, MIGRATE_MOVABLE}},
      {"GFP_TRANSHUGE_LIGHT", {GFP_TRANSHUGE_LIGHT, ZONE_MOVABLE, MIGRATE_MOVABLE}},
      {"GFP_TRANSHUGE", {GFP_TRANSHUGE, ZONE_MOVABLE, MIGRATE_MOVABLE}},
  };
  for (const auto& [name, w] : want) {
    EXPECT_TRUE(gfp_zone_valid(w.gfp)) << name;
    EXPECT_EQ(gfp_zone(w.gfp), w.zone) << name;
    EXPECT_EQ(gfp_migratetype(w.gfp), w.mt) << name;
  }
}

TEST(GfpZone, GfpZoneTable) {
  // GFP_ZONE_TABLE of include/linux/gfp.h, all valid zone-modifier combinations.
  EXPECT_EQ(gfp_zone(0), ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(__GFP_DMA), ZONE_DMA);
  EXPECT_EQ(gfp_zone(__GFP_HIGHMEM), ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(__GFP_DMA32), ZONE_DMA32);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE), ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE | __GFP_DMA), ZONE_DMA);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE | __GFP_HIGHMEM), ZONE_MOVABLE);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE | __GFP_DMA32), ZONE_DMA32);
  // Bits outside GFP_ZONEMASK do not matter.
  EXPECT_EQ(gfp_zone(GFP_KERNEL | __GFP_RECLAIMABLE | __GFP_ZERO), ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(GFP_KERNEL | __GFP_DMA32), ZONE_DMA32);
}

TEST(GfpZone, Migratetypes) {
  EXPECT_EQ(gfp_migratetype(0), MIGRATE_UNMOVABLE);
  EXPECT_EQ(gfp_migratetype(__GFP_MOVABLE), MIGRATE_MOVABLE);
  EXPECT_EQ(gfp_migratetype(__GFP_RECLAIMABLE), MIGRATE_RECLAIMABLE);
  EXPECT_EQ(gfp_migratetype(GFP_KERNEL | __GFP_RECLAIMABLE), MIGRATE_RECLAIMABLE);
  EXPECT_EQ(gfp_migratetype(GFP_USER | __GFP_MOVABLE), MIGRATE_MOVABLE);
  EXPECT_EQ(gfp_migratetype(GFP_ATOMIC | __GFP_HIGHMEM), MIGRATE_UNMOVABLE);
}

TEST(GfpZone, ValidityRejectsContradictions) {
  EXPECT_FALSE(gfp_zone_valid(__GFP_DMA | __GFP_DMA32));
  EXPECT_FALSE(gfp_zone_valid(GFP_KERNEL | __GFP_DMA | __GFP_DMA32));
  EXPECT_FALSE(gfp_zone_valid(__GFP_DMA | __GFP_HIGHMEM));
  EXPECT_FALSE(gfp_zone_valid(__GFP_DMA32 | __GFP_HIGHMEM));
  EXPECT_FALSE(gfp_zone_valid(__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM));
  EXPECT_FALSE(gfp_zone_valid(__GFP_MOVABLE | __GFP_DMA | __GFP_DMA32));
  EXPECT_FALSE(gfp_zone_valid(__GFP_MOVABLE | __GFP_RECLAIMABLE));
  EXPECT_FALSE(gfp_zone_valid(GFP_HIGHUSER_MOVABLE | __GFP_RECLAIMABLE));
  EXPECT_TRUE(gfp_zone_valid(0));
  EXPECT_TRUE(gfp_zone_valid(__GFP_DMA));
  EXPECT_TRUE(gfp_zone_valid(__GFP_DMA32 | __GFP_MOVABLE));
  EXPECT_TRUE(gfp_zone_valid(GFP_KERNEL | __GFP_RECLAIMABLE));
  EXPECT_TRUE(gfp_zone_valid(0xffffffffu & ~(__GFP_DMA | __GFP_DMA32 | __GFP_RECLAIMABLE)));
}

TEST(GfpZone, Names) {
  EXPECT_STREQ(zone_name(ZONE_DMA), "DMA");
  EXPECT_STREQ(zone_name(ZONE_DMA32), "DMA32");
  EXPECT_STREQ(zone_name(ZONE_NORMAL), "Normal");
  EXPECT_STREQ(zone_name(ZONE_MOVABLE), "Movable");
  EXPECT_STREQ(zone_name(MAX_NR_ZONES), "?");
  EXPECT_STREQ(zone_name(-1), "?");
  // As /proc/pagetypeinfo prints them.
  EXPECT_STREQ(migratetype_name(MIGRATE_UNMOVABLE), "Unmovable");
  EXPECT_STREQ(migratetype_name(MIGRATE_MOVABLE), "Movable");
  EXPECT_STREQ(migratetype_name(MIGRATE_RECLAIMABLE), "Reclaimable");
  EXPECT_STREQ(migratetype_name(MIGRATE_HIGHATOMIC), "HighAtomic");
  EXPECT_STREQ(migratetype_name(MIGRATE_CMA), "CMA");
  EXPECT_STREQ(migratetype_name(MIGRATE_ISOLATE), "Isolate");
  EXPECT_STREQ(migratetype_name(MIGRATE_TYPES), "?");
  EXPECT_EQ(MIGRATE_PCPTYPES, 3);
  EXPECT_EQ(MIGRATE_TYPES, 6);
}

TEST(Gfp, AllowBlocking) {
  EXPECT_TRUE(gfpflags_allow_blocking(GFP_KERNEL));
  EXPECT_TRUE(gfpflags_allow_blocking(GFP_NOIO));
  EXPECT_FALSE(gfpflags_allow_blocking(GFP_ATOMIC));
  EXPECT_FALSE(gfpflags_allow_blocking(GFP_NOWAIT));
  EXPECT_FALSE(gfpflags_allow_blocking(GFP_TRANSHUGE_LIGHT));
  EXPECT_TRUE(gfpflags_allow_blocking(GFP_TRANSHUGE));
}

}  // namespace
}  // namespace mmfuzz::mm
