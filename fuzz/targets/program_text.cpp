// Fuzz target: the Program text reader (prog::parse_program), the format
// reproducers, seeds and `mmfuzz convert` output are written in.
//
// Any input parses or is a trace::InputError with a one-line message. The
// oracle is the format's promise, parse(print(p)) == p (docs/program-format.md):
// a Program that parses prints as a text that parses back to an equal
// Program, and printing that again gives the same text. A difference ends
// the process with both forms of the first op that differs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz/targets/escaped.h"
#include "program/program.h"
#include "program/text.h"
#include "trace/source.h"

namespace {

using namespace mmfuzz::trace;
using namespace mmfuzz::prog;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_program_text: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

using mmfuzz::fuzz::escaped;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Program p;
  try {
    p = parse_program(text, "<fuzz>");
  } catch (const InputError& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos)
      fail("an InputError's message spans lines: " + escaped(e.what()));
    return 0;
  }
  const std::string printed = print_program(p);
  Program q;
  try {
    q = parse_program(printed, "<printed>");
  } catch (const InputError& e) {
    fail("a parsed Program prints as a text that does not parse: " + escaped(e.what()));
  }
  if (!(q == p)) {
    if (q.ops.size() != p.ops.size())
      fail("a parsed Program parses back with " + std::to_string(q.ops.size()) + " ops, not " +
           std::to_string(p.ops.size()));
    for (std::size_t i = 0; i < p.ops.size(); ++i) {
      const std::string a = format_op(p.ops[i], p.strings);
      const std::string b = format_op(q.ops[i], q.strings);
      if (!p.ops[i].same_as(q.ops[i]) || a != b)
        fail("op " + std::to_string(i) + " (input line " + std::to_string(p.ops[i].line) +
             ") changes in a round trip:\n  " + escaped(a) + "\n  " + escaped(b));
    }
    fail("a parsed Program changes in a round trip (its strings)");
  }
  if (print_program(q) != printed) fail("printing a Program twice gives two texts");
  return 0;
}
