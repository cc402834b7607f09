#include "trace/event.h"

#include <array>

namespace mmfuzz::trace {

namespace {
constexpr std::array<const char*, kNrEventTypes> kEventNames = {
    "none",
    "kmalloc",
    "kmalloc_node",
    "kmem_cache_alloc",
    "kmem_cache_alloc_node",
    "kfree",
    "kmem_cache_free",
    "mm_page_alloc",
    "mm_page_free",
    "mm_page_free_batched",
    "mm_page_alloc_zone_locked",
    "mm_page_pcpu_drain",
    "mm_page_alloc_extfrag",
    "rss_stat",
    "alloc_vmap_area",
    "free_vmap_area_noflush",
    "purge_vmap_area_lazy",
    "lost_events",
    "marker",
    "mmfuzz_ext",
};
}  // namespace

const char* event_type_name(EventType t) {
  const auto i = static_cast<std::size_t>(t);
  return i < kEventNames.size() ? kEventNames[i] : "?";
}

EventType event_type_from_name(std::string_view name) {
  // The tracepoints with payloads we read; lost_events, marker and
  // mmfuzz_ext are recognized by the line parsers, not by name.
  for (int i = 1; i <= static_cast<int>(EventType::purge_vmap_area_lazy); ++i)
    if (name == kEventNames[static_cast<std::size_t>(i)]) return static_cast<EventType>(i);
  return EventType::none;
}

}  // namespace mmfuzz::trace
