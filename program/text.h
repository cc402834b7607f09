// The text form of a Program: a replayable ftrace-style trace. Ops ftrace
// can show print as their kmem events (kmalloc, kfree, kmem_cache_alloc
// with the name= newer kernels print, kmem_cache_free, mm_page_alloc, mm_page_free); the rest
// as mmfuzz_* extension events. Handles print where the kernel prints
// pointers and pfns. The first line, "# mmfuzz program v2" (or v1), tells a
// reader to take every line literally (no replay heuristics); in v2 the
// "# key: value" lines after it say how to run it (program/header.h).
#pragma once

#include <string>
#include <string_view>

#include "program/program.h"
#include "trace/event.h"

namespace mmfuzz::prog {

inline constexpr std::string_view kProgramHeader = "# mmfuzz program v1";

// One line, without newline.
std::string format_op(const Op& op, const StringTable& strings);
// The header (print_header(p.header)), then one line per op.
std::string print_program(const Program& p);

// The Op a line of a Program text stands for. False (and *error, one line)
// when the event is not part of the op language or its fields are bad.
bool event_to_op(const trace::TraceEvent& ev, StringTable& strings, Op& op, std::string* error);

// Parses a Program text (the header is optional; without one, or with v1,
// p.header is the default). Throws InputError ("NAME:LINE: reason: text") on a
// line that is not an op or a bad header line.
Program parse_program(std::string_view text, const std::string& name = "<program>");
// Reads a Program text file (plain or compressed).
Program read_program(const std::string& path);

}  // namespace mmfuzz::prog
