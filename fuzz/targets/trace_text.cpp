// Fuzz target: the text trace path of `mmfuzz replay` and `mmfuzz convert`.
//
// The bytes are a trace file. Plain text goes through an in-memory copy of
// open_event_source's text source (line splitting as LineReader does it,
// TextParser with its format detection); gzip and zstd input goes through
// open_event_source itself, over a memfd, so the decoders and their
// truncation checks run too. trace.dat input (its magic) is left out:
// libtracecmd is checked elsewhere.
//
// Per input, as a file is replayed: learn_cache_names (the first pass), then
// the events through replay's translation (a Replayer without a model, the
// way `mmfuzz convert` writes ops) and event_to_op. Oracles, besides "no
// crash, no hang, no unbounded memory":
// - every line parses the same twice in a row and after other lines (the
//   gfp cache and format detection must not change what a line means);
// - an InputError's message is one line;
// - the Program the translation made prints as a text that parses back to
//   the same ops (what `mmfuzz convert` writes, `mmfuzz replay` reads).
// Only trace::InputError is an expected outcome; anything else escaping is
// a bug and ends the process.
//
// The translation costs more than the parsing (under ASan a Replayer's
// start alone is four parses of a seed), so only every Nth input goes
// through it: those whose byte hash is 0 modulo N, the same input always
// the same way. N comes from MMFUZZ_REPLAY_SAMPLE (default 4; 1: every
// input, as the regression tests run it).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fuzz/targets/escaped.h"
#include "program/program.h"
#include "program/text.h"
#include "trace/event.h"
#include "trace/line_reader.h"
#include "trace/replay.h"
#include "trace/source.h"
#include "trace/text_parse.h"

namespace {

using namespace mmfuzz::trace;
using namespace mmfuzz::prog;

constexpr std::string_view kName = "<fuzz>";

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_trace_text: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// open_event_source's text source over bytes in memory: the same line
// splitting (at '\n', one trailing '\r' dropped, the last line may lack its
// newline, no line over kMaxLineBytes), the same checks and counts.
class MemorySource final : public EventSource {
 public:
  explicit MemorySource(std::string_view text) : text_(text) {}

  bool next(TraceEvent& ev) override {
    std::string_view line;
    while (next_line(line)) {
      ++stats_.lines;
      if (stats_.lines == 1 && line.substr(0, kTraceDatMagic.size()) == kTraceDatMagic)
        throw InputError(name_ + ": a compressed trace.dat: decompress it first");
      error_.clear();
      switch (parser_.parse(line, ev, &error_)) {
        case LineStatus::event:
          line_ = line_no_;
          ++stats_.events;
          if (ev.type == EventType::lost_events) {
            ++stats_.lost_markers;
            stats_.lost_events += ev.lost;
          }
          return true;
        case LineStatus::skipped:
          ++stats_.skipped;
          break;
        case LineStatus::malformed:
          ++stats_.malformed;
          if (stats_.warnings.size() < 10)
            stats_.warnings.push_back(name_ + ":" + std::to_string(line_no_) + ": " + error_);
          break;
      }
    }
    return false;
  }
  std::uint64_t line() const override { return line_; }
  std::uint64_t bytes_done() const override { return pos_; }
  std::uint64_t bytes_total() const override { return text_.size(); }
  const SourceStats& stats() const override { return stats_; }
  const std::string& name() const override { return name_; }
  SourceFormat format() const override { return SourceFormat::text; }
  TextFormat text_format() const override { return parser_.format(); }
  Compression compression() const override { return Compression::none; }
  bool program_text() const override { return parser_.program_text(); }

 private:
  bool next_line(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const std::size_t nl = text_.find('\n', pos_);
    const std::size_t end = nl == std::string_view::npos ? text_.size() : nl;
    std::size_t len = end - pos_;
    line = text_.substr(pos_, len);
    pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    ++line_no_;
    if (len > 0 && line[len - 1] == '\r') line.remove_suffix(1), --len;
    if (len > kMaxLineBytes)
      throw InputError(name_ + ":" + std::to_string(line_no_) + ": line longer than 1 MiB");
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::uint64_t line_no_ = 0, line_ = 0;
  std::string name_{kName};
  TextParser parser_;
  std::string error_;
  SourceStats stats_;
};

bool same_event(const TraceEvent& a, const TraceEvent& b) {
  return a.type == b.type && a.comm == b.comm && a.pid == b.pid && a.cpu == b.cpu &&
         a.ts_ns == b.ts_ns && a.call_site == b.call_site && a.ptr == b.ptr &&
         a.bytes_req == b.bytes_req && a.bytes_alloc == b.bytes_alloc && a.gfp == b.gfp &&
         a.has_gfp == b.has_gfp && a.node == b.node && a.accounted == b.accounted &&
         a.name == b.name && a.pfn == b.pfn && a.order == b.order &&
         a.migratetype == b.migratetype && a.percpu_refill == b.percpu_refill &&
         a.alloc_order == b.alloc_order && a.fallback_order == b.fallback_order &&
         a.alloc_migratetype == b.alloc_migratetype &&
         a.fallback_migratetype == b.fallback_migratetype && a.fragmenting == b.fragmenting &&
         a.change_ownership == b.change_ownership && a.addr == b.addr && a.size == b.size &&
         a.align == b.align && a.vstart == b.vstart && a.vend == b.vend && a.failed == b.failed &&
         a.nr_lazy == b.nr_lazy && a.nr_lazy_max == b.nr_lazy_max && a.npurged == b.npurged &&
         a.lost == b.lost && a.ext_name == b.ext_name && a.fields == b.fields;
}

// Each line parsed by a parser that has seen every line before it, twice in
// a row, and by a parser that reads the lines backwards (another format
// detection, another gfp cache history): the same status, event and reason.
void check_line_consistency(std::string_view text) {
  struct Parsed {
    std::string_view line;
    LineStatus status;
    TraceEvent ev;
    std::string error;
  };
  std::vector<Parsed> lines;
  TextParser forward;
  TraceEvent again;
  std::string error;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    Parsed& p = lines.emplace_back();
    p.line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    p.status = forward.parse(p.line, p.ev, &p.error);
    error.clear();
    const LineStatus st = forward.parse(p.line, again, &error);
    if (st != p.status || !same_event(p.ev, again) || error != p.error)
      fail("line " + std::to_string(lines.size()) + " parses differently a second time");
    if (p.status == LineStatus::malformed && p.error.find('\n') != std::string::npos)
      fail("a malformed line's reason spans lines");
  }
  TextParser backward;
  for (std::size_t i = lines.size(); i-- > 0;) {
    error.clear();
    const LineStatus st = backward.parse(lines[i].line, again, &error);
    if (st != lines[i].status || !same_event(lines[i].ev, again) || error != lines[i].error)
      fail("line " + std::to_string(i + 1) + " parses differently after other lines");
  }
}

using mmfuzz::fuzz::escaped;

// What `mmfuzz convert` writes must read back as the same ops: the printed
// text of the translation's Program parses, and prints the same again. (The
// text is compared, not the Ops: the translation may leave fields an op
// kind does not use set, and the text does not carry them.)
void check_round_trip(const Program& p) {
  const std::string text = print_program(p);
  Program q;
  try {
    q = parse_program(text, "<printed>");
  } catch (const InputError& e) {
    fail("a converted Program does not parse back: " + escaped(e.what()));
  }
  if (q.ops.size() != p.ops.size())
    fail("a converted Program parses back with " + std::to_string(q.ops.size()) + " ops, not " +
         std::to_string(p.ops.size()));
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    const std::string a = format_op(p.ops[i], p.strings);
    const std::string b = format_op(q.ops[i], q.strings);
    if (a != b)
      fail("op " + std::to_string(i) + " of a converted Program changes in a round trip:\n  " +
           escaped(a) + "\n  " + escaped(b));
  }
}

// The replay translation, as `mmfuzz convert` runs it (without a model).
void replay_pass(EventSource& src, std::unordered_map<std::string, std::string> names) {
  Program prog;
  ReplayOptions ro;
  ro.cache_names = std::move(names);
  std::optional<Replayer> rp;
  StringTable scratch;
  TraceEvent ev;
  std::string error;
  while (src.next(ev)) {
    Op op;
    error.clear();
    // As a Program text reader takes the line (literal replay).
    if (!event_to_op(ev, scratch, op, &error) && error.find('\n') != std::string::npos)
      fail("event_to_op's reason spans lines");
    if (!rp) {
      ro.literal = src.program_text();
      rp.emplace(nullptr, prog.strings, ro);
      rp->sink = [&prog](const Op& o) { prog.ops.push_back(o); };
    }
    rp->feed(ev, src.line());
  }
  if (rp) {
    rp->finish();
    (void)rp->fidelity_report();
  }
  check_round_trip(prog);
}

void check_error(const InputError& e) {
  if (std::string_view(e.what()).find('\n') != std::string_view::npos)
    fail("an InputError's message spans lines: " + escaped(e.what()));
}

// gzip / zstd input: open_event_source over a memfd, one pass (as for
// standard input: no first pass).
void run_compressed(const std::uint8_t* data, std::size_t size) {
  static int fd = -1;
  if (fd < 0) fd = memfd_create("mmfuzz-fuzz-trace", MFD_CLOEXEC);
  if (fd < 0) return;
  if (ftruncate(fd, 0) != 0) return;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t w = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (w <= 0) return;
    done += static_cast<std::size_t>(w);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    auto src = open_event_source(path);
    if (src->format() != SourceFormat::text) fail("compressed input opened as trace.dat");
    replay_pass(*src, {});
  } catch (const InputError& e) {
    check_error(e);
  }
}

std::uint64_t g_replay_sample = 4;

std::uint64_t input_hash(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* v = std::getenv("MMFUZZ_REPLAY_SAMPLE")) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (end == v || *end != '\0' || n == 0) {
      std::fprintf(stderr, "fuzz_trace_text: MMFUZZ_REPLAY_SAMPLE must be a positive number\n");
      std::exit(2);
    }
    g_replay_sample = n;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.substr(0, kTraceDatMagic.size()) == kTraceDatMagic) return 0;  // libtracecmd's
  if (bytes.substr(0, 2) == std::string_view("\x1f\x8b", 2) ||
      bytes.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    run_compressed(data, size);
    return 0;
  }
  check_line_consistency(bytes);
  if (input_hash(bytes) % g_replay_sample != 0) return 0;
  try {
    MemorySource first(bytes);
    auto names = learn_cache_names(first);
    MemorySource src(bytes);
    replay_pass(src, std::move(names));
  } catch (const InputError& e) {
    check_error(e);
  }
  return 0;
}
