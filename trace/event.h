// One kmem trace event as the parsers deliver it, whatever the source
// (ftrace text, trace-cmd report, perf script, trace.dat). Field names are
// the tracepoints' own (include/trace/events/kmem.h, vmalloc.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mmfuzz::trace {

enum class EventType : std::uint8_t {
  none,  // not a kmem event (counted and skipped)
  kmalloc,
  kmalloc_node,  // kernels before 6.1 (node= present)
  kmem_cache_alloc,
  kmem_cache_alloc_node,
  kfree,
  kmem_cache_free,
  mm_page_alloc,
  mm_page_free,
  mm_page_free_batched,
  mm_page_alloc_zone_locked,
  mm_page_pcpu_drain,
  mm_page_alloc_extfrag,
  rss_stat,
  // include/trace/events/vmalloc.h (6.3+)
  alloc_vmap_area,
  free_vmap_area_noflush,
  purge_vmap_area_lazy,
  // "CPU:N [LOST M EVENTS]" (ftrace) / "CPU N: lost M events" forms
  lost_events,
  // tracing_mark_write / print lines: phase markers
  marker,
  // mmfuzz_*: the Program text form's extension events
  mmfuzz_ext,
};
inline constexpr int kNrEventTypes = static_cast<int>(EventType::mmfuzz_ext) + 1;
const char* event_type_name(EventType t);
// The EventType of a tracepoint name ("kmalloc", "mm_page_alloc"); none if
// it is not one we read.
EventType event_type_from_name(std::string_view name);

// Views point into the line the parser was given: valid until the next line.
struct TraceEvent {
  EventType type = EventType::none;
  // The common columns.
  std::string_view comm;
  int pid = -1;
  int cpu = -1;
  std::uint64_t ts_ns = 0;  // timestamp in nanoseconds (microsecond traces: * 1000)
  // Slab events.
  std::string_view call_site;  // "tracepoint_add_func+0x284/0x3b0" or "0xffff8000081a2b3c"
  std::uint64_t ptr = 0;       // 0 for "(nil)" / 0000000000000000
  std::uint64_t bytes_req = 0;
  std::uint64_t bytes_alloc = 0;
  std::uint32_t gfp = 0;
  bool has_gfp = false;
  int node = -1;
  bool accounted = false;
  std::string_view
      name;  // kmem_cache_free name= (6.1+), kmem_cache_alloc name= (kernels from 2025 on)
  // Page events.
  std::uint64_t pfn = 0;
  unsigned order = 0;
  int migratetype = -1;
  bool percpu_refill = false;
  // mm_page_alloc_extfrag
  unsigned alloc_order = 0, fallback_order = 0;
  int alloc_migratetype = -1, fallback_migratetype = -1;
  bool fragmenting = false, change_ownership = false;
  // vmalloc events: alloc_vmap_area(addr, size, align, vstart, vend, failed),
  // free_vmap_area_noflush(va_start, nr_lazy, nr_lazy_max),
  // purge_vmap_area_lazy(start, end, npurged).
  std::uint64_t addr = 0, size = 0, align = 0, vstart = 0, vend = 0;
  bool failed = false;
  std::uint64_t nr_lazy = 0, nr_lazy_max = 0, npurged = 0;
  // lost_events: how many were lost on `cpu`.
  std::uint64_t lost = 0;
  // marker: the text; mmfuzz_ext: the event name after "mmfuzz_" and the raw
  // "key=value ..." field text.
  std::string_view ext_name;
  std::string_view fields;
  // The line as read, without leading blanks and line end (text sources;
  // empty from trace.dat): what the fidelity report quotes.
  std::string_view text;
};

// A failed mm_page_alloc: 6.1 prints one with pfn=0 (the binary record has
// -1); no page allocator hands out pfn 0 (reserved on x86, no RAM there on
// arm64).
inline bool page_alloc_failed(const TraceEvent& ev) {
  return ev.failed || ev.pfn == 0 || ev.pfn == ~std::uint64_t{0};
}

// Where an event or an Op came from (trace provenance).
struct SourcePos {
  std::string file;
  std::uint64_t line = 0;  // 1-based; 0 unknown
};

}  // namespace mmfuzz::trace
