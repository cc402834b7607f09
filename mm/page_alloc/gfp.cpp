#include "mm/page_alloc/gfp.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace mmfuzz::mm {
namespace {

struct GfpName {
  gfp_t mask;
  const char* name;
};

// __def_gfpflag_names of 6.1, in its order: composites first, so the widest
// match wins.
constexpr GfpName kGfpNames[] = {
    {GFP_TRANSHUGE, "GFP_TRANSHUGE"},
    {GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"},
    {GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"},
    {GFP_HIGHUSER, "GFP_HIGHUSER"},
    {GFP_USER, "GFP_USER"},
    {GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"},
    {GFP_KERNEL, "GFP_KERNEL"},
    {GFP_NOFS, "GFP_NOFS"},
    {GFP_ATOMIC, "GFP_ATOMIC"},
    {GFP_NOIO, "GFP_NOIO"},
    {GFP_NOWAIT, "GFP_NOWAIT"},
    {GFP_DMA, "GFP_DMA"},
    {__GFP_HIGHMEM, "__GFP_HIGHMEM"},
    {GFP_DMA32, "GFP_DMA32"},
    {__GFP_HIGH, "__GFP_HIGH"},
    {__GFP_ATOMIC, "__GFP_ATOMIC"},
    {__GFP_IO, "__GFP_IO"},
    {__GFP_FS, "__GFP_FS"},
    {__GFP_NOWARN, "__GFP_NOWARN"},
    {__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"},
    {__GFP_NOFAIL, "__GFP_NOFAIL"},
    {__GFP_NORETRY, "__GFP_NORETRY"},
    {__GFP_COMP, "__GFP_COMP"},
    {__GFP_ZERO, "__GFP_ZERO"},
    {__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"},
    {__GFP_MEMALLOC, "__GFP_MEMALLOC"},
    {__GFP_HARDWALL, "__GFP_HARDWALL"},
    {__GFP_THISNODE, "__GFP_THISNODE"},
    {__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"},
    {__GFP_MOVABLE, "__GFP_MOVABLE"},
    {__GFP_ACCOUNT, "__GFP_ACCOUNT"},
    {__GFP_WRITE, "__GFP_WRITE"},
    {__GFP_RECLAIM, "__GFP_RECLAIM"},
    {__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"},
    {__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"},
    {__GFP_ZEROTAGS, "__GFP_ZEROTAGS"},
};

}  // namespace

std::string format_gfp(gfp_t gfp) {
  if (gfp == 0) return "none";
  std::string out;
  for (const auto& n : kGfpNames) {
    if ((gfp & n.mask) == n.mask) {
      if (!out.empty()) out += '|';
      out += n.name;
      gfp &= ~n.mask;
      if (gfp == 0) break;
    }
  }
  if (gfp) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%x", gfp);
    if (!out.empty()) out += '|';
    out += buf;
  }
  return out;
}

std::optional<gfp_t> parse_gfp(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<gfp_t> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty GFP mask");
  if (text == "none") return gfp_t{0};
  if (text.back() == '|') return fail("empty flag in GFP mask");
  gfp_t gfp = 0;
  while (!text.empty()) {
    auto bar = text.find('|');
    std::string_view tok = text.substr(0, bar);
    text = bar == std::string_view::npos ? std::string_view{} : text.substr(bar + 1);
    if (tok.empty()) return fail("empty flag in GFP mask");
    if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
      int base = 10;
      if (tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
        tok.remove_prefix(2);
        base = 16;
      }
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v, base);
      if (ec != std::errc() || p != tok.data() + tok.size() || v > 0xffffffffu)
        return fail("bad number in GFP mask: '" + std::string(tok) + "'");
      gfp |= static_cast<gfp_t>(v);
      continue;
    }
    bool found = false;
    for (const auto& n : kGfpNames) {
      if (tok == n.name) {
        gfp |= n.mask;
        found = true;
        break;
      }
    }
    if (!found) return fail("unknown GFP flag '" + std::string(tok) + "'");
  }
  return gfp;
}

const char* zone_name(int zone) {
  static const char* const names[] = {"DMA", "DMA32", "Normal", "Movable"};
  return zone >= 0 && zone < MAX_NR_ZONES ? names[zone] : "?";
}

const char* migratetype_name(int mt) {
  static const char* const names[] = {"Unmovable",  "Movable", "Reclaimable",
                                      "HighAtomic", "CMA",     "Isolate"};
  return mt >= 0 && mt < MIGRATE_TYPES ? names[mt] : "?";
}

}  // namespace mmfuzz::mm
