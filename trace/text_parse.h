// Line parsers for the text forms of kmem traces: ftrace's trace and
// trace_pipe files (with or without the irq-flags columns, with the tgid
// option, 5.10 / 6.1 / current event formats), `trace-cmd report` and
// `perf script`. No allocation per line: events hold views into the line.
//
// What lands where in TraceEvent beyond the obvious same-named fields:
// - mm_page_alloc: failed = the kernel found no page (page NULL and pfn 0 in
//   the printed form, pfn -1 in trace-cmd's raw "[FAILED TO PARSE]" form).
// - rss_stat: name = type= (MM_ANONPAGES; 5.10's numeric member=), size =
//   size= in bytes, fields = the raw field text (mm_id=, curr=).
// - alloc_vmap_area: addr = va_start; purge_vmap_area_lazy: vstart = start,
//   vend = end, npurged = num_purged; free_vmap_area_noflush: addr = va_start.
// - lost_events: lost = 0 when the line gives no count ("[LOST EVENTS]").
// - marker: fields = the text written to trace_marker. A marker text
//   "mmfuzz_NAME: ..." is delivered as the mmfuzz_ext event NAME.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trace/event.h"

namespace mmfuzz::trace {

enum class TextFormat : std::uint8_t { unknown, ftrace, trace_cmd_report, perf_script };
const char* text_format_name(TextFormat f);

enum class LineStatus : std::uint8_t {
  event,      // ev holds a kmem event, a lost-events marker, a marker or an mmfuzz_* event
  skipped,    // a comment, header, blank line or an event that is not ours (counted)
  malformed,  // a kmem event whose fields do not parse; *error says why (one line)
};

class TextParser {
 public:
  // Parses one line without its newline. The format is detected from the
  // first line that is not a comment and kept from then on.
  LineStatus parse(std::string_view line, TraceEvent& ev, std::string* error);
  TextFormat format() const { return format_; }
  // A "# mmfuzz program" header was seen: every line is an op, taken literally.
  bool program_text() const { return program_text_; }
  // The "# mmfuzz program" line and the comment lines right after it, up to
  // the first other line: a Program's header (program/header.h reads it).
  const std::vector<std::string>& header_lines() const { return header_lines_; }

 private:
  // gfp_flags text -> mask, so each distinct string is parsed once.
  // Open addressing; bounded so hostile input cannot grow it without limit.
  struct GfpEntry {
    std::uint64_t hash = 0;
    std::string text;
    std::uint32_t gfp = 0;
    bool used = false;
  };
  bool lookup_gfp(std::string_view text, std::uint32_t& gfp, std::string* error);
  LineStatus parse_fields(std::string_view event, std::string_view payload, TraceEvent& ev,
                          std::string* error);

  TextFormat format_ = TextFormat::unknown;
  bool program_text_ = false;
  bool header_open_ = false;  // collecting header_lines_
  bool seen_line_ = false;    // a line that is not a comment was seen
  std::vector<std::string> header_lines_;
  std::vector<GfpEntry> gfp_cache_;
  std::size_t gfp_cache_used_ = 0;
};

}  // namespace mmfuzz::trace
