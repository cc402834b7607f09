// Event sources: a trace file (plain, gzip or zstd, told apart by magic;
// "-" for standard input) parsed line by line, or trace-cmd's binary
// trace.dat read through libtracecmd. Streaming: memory does not grow with
// the trace length.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "trace/event.h"
#include "trace/text_parse.h"

namespace mmfuzz::trace {

// A bad input: missing file, corrupt or truncated compressed stream, a
// malformed line under --strict. what() is one line: "FILE:LINE: reason: text".
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Compression : std::uint8_t { none, gzip, zstd };
enum class SourceFormat : std::uint8_t { text, trace_dat };

struct SourceOptions {
  bool strict = false;  // a malformed kmem line is an InputError (else a counted warning)
  std::size_t max_warnings_kept = 10;  // first warnings kept for the report
};

struct SourceStats {
  std::uint64_t lines = 0;      // text lines read (trace.dat: records)
  std::uint64_t events = 0;     // events delivered
  std::uint64_t skipped = 0;    // lines that are no kmem events (comments, other events)
  std::uint64_t malformed = 0;  // malformed kmem lines (warnings)
  std::uint64_t lost_markers = 0;
  std::uint64_t lost_events = 0;      // sum of the markers' counts
  std::vector<std::string> warnings;  // the first malformed lines, "FILE:LINE: reason: text"
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // The next event; false at the end. Throws InputError.
  virtual bool next(TraceEvent& ev) = 0;
  // The input ended early: a signal interrupted its read (read_interrupted()).
  virtual bool interrupted() const { return false; }
  // 1-based line (text) or record number (trace.dat) of the last event.
  virtual std::uint64_t line() const = 0;
  // Progress: input bytes consumed and the input's size (0 when unknown, stdin).
  virtual std::uint64_t bytes_done() const = 0;
  virtual std::uint64_t bytes_total() const = 0;
  virtual const SourceStats& stats() const = 0;
  virtual const std::string& name() const = 0;  // the path, "<stdin>" for "-"
  virtual SourceFormat format() const = 0;
  virtual TextFormat text_format() const = 0;  // unknown for trace.dat
  virtual Compression compression() const = 0;
  // A Program text (its "# mmfuzz program" header was read): replay literally.
  virtual bool program_text() const { return false; }
  // Its header lines (TextParser::header_lines()); known once next() returned.
  virtual const std::vector<std::string>* header_lines() const { return nullptr; }
};

// Opens a trace; throws InputError ("FILE: No such file or directory").
std::unique_ptr<EventSource> open_event_source(const std::string& path,
                                               const SourceOptions& opts = {});

}  // namespace mmfuzz::trace
