// mmfuzz convert: a trace in any input format becomes a Program text (corpus
// seeds, reproducers). The translation is replay's own, run on a model with
// the checks off so that caches the model already has are not created again:
// replaying the Program gives the same ops as replaying the trace.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "cli/commands.h"
#include "cli/options.h"
#include "program/text.h"
#include "trace/replay.h"
#include "trace/source.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::trace;
using namespace mmfuzz::prog;

struct ConvertOptions {
  MachineOptions machine;
  std::string trace, out;
  bool strict = false, quiet = false;
  std::uint64_t tick_ms = 1000;
  std::uint64_t max_ops = 0;
};

// The output file: written to a temporary name beside it, renamed at the end,
// removed on any error (never a half-written Program).
class AtomicOut {
 public:
  explicit AtomicOut(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmpXXXXXX") {
    const int fd = mkstemp(tmp_.data());
    if (fd < 0)
      throw mm::ConfigError(fmt::format("{}: cannot create: {}", path_, std::strerror(errno)));
    f_ = fdopen(fd, "w");
  }
  ~AtomicOut() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  void write(const std::string& s) {
    if (std::fwrite(s.data(), 1, s.size(), f_) != s.size())
      throw mm::ConfigError(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }
  void commit() {
    const bool ok = std::fflush(f_) == 0 && std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      std::remove(tmp_.c_str());
      throw mm::ConfigError(fmt::format("{}: cannot write: {}", path_, std::strerror(errno)));
    }
  }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

int run_convert(const ConvertOptions& o) {
  SourceOptions so;
  so.strict = o.strict;
  std::unique_ptr<EventSource> src;
  try {
    src = open_event_source(o.trace, so);
  } catch (const InputError& e) {
    throw mm::ConfigError(e.what());
  }
  TraceEvent ev;
  bool more = false;
  try {
    more = src->next(ev);  // past a Program's header
  } catch (const InputError& e) {
    throw mm::ConfigError(e.what());
  }
  // The output states the model it was translated on: the input Program's
  // header (a trace has none) with the flags on top, and replay's checks.
  ProgramHeader header = program_header(*src, o.machine, "convert", nullptr);
  header.version = kProgramVersion;
  std::unordered_map<std::string, std::string> names;
  if (o.trace != "-" && !src->program_text()) {
    auto first_pass = open_event_source(o.trace, so);
    names = learn_cache_names(*first_pass);
  }
  const mm::MmConfig cfg = header.mm_config();
  mm::Mm m(cfg);
  StringTable strings;
  ExecOptions eo;
  eo.mode = CheckMode::off;
  Executor ex(m, strings, eo);
  ReplayOptions ro;
  ro.tick_ns = o.tick_ms * 1000000;
  ro.cache_names = std::move(names);
  ro.page_shift = m.profile.page_shift;
  ro.max_order = m.page_alloc.max_order();
  if (m.slab.initialized()) ro.kmalloc_max_cache_size = m.slab.kmalloc_max_cache_size();
  AtomicOut out(o.out);
  out.write(print_header(header));
  out.write(fmt::format("# converted from {} by mmfuzz convert\n", src->name()));
  std::optional<Replayer> rp;
  std::uint64_t ops = 0;
  std::string buf;
  try {
    for (; more; more = src->next(ev)) {
      if (!rp) {
        ro.literal = src->program_text();
        rp.emplace(&ex, strings, ro);
        rp->sink = [&](const Op& op) {
          if (o.max_ops && ops >= o.max_ops) return;
          ++ops;
          buf += format_op(op, strings);
          buf += '\n';
          if (buf.size() > (1 << 20)) {
            out.write(buf);
            buf.clear();
          }
        };
      }
      rp->feed(ev, src->line());
      if (o.max_ops && ops >= o.max_ops) break;
    }
    if (rp) rp->finish();
  } catch (const InputError& e) {
    throw mm::ConfigError(e.what());
  }
  out.write(buf);
  out.commit();
  if (!o.quiet)
    std::printf("convert: %s -> %s: %llu events, %llu ops\n", src->name().c_str(), o.out.c_str(),
                static_cast<unsigned long long>(rp ? rp->stats().events : 0),
                static_cast<unsigned long long>(ops));
  return EXIT_OK;
}

}  // namespace

void register_convert(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand(
      "convert",
      "turn a trace into a Program text (a replayable trace of ops: seeds, reproducers)");
  sub->add_option("TRACE", opts->trace, "the trace ('-' for stdin)")->required();
  sub->add_option("-o,--output", opts->out, "the Program text to write")->required();
  opts->machine.add_to(*sub);
  sub->add_flag("--strict", opts->strict, "a malformed kmem line is an error");
  sub->add_option("--tick-ms", opts->tick_ms, "trace time between timer ticks (default 1000)")
      ->check(CLI::Range(1ull, 3600000ull));
  sub->add_option("--max-ops", opts->max_ops, "stop after this many ops (a window for seeds)");
  sub->add_flag("--quiet", opts->quiet, "print nothing");
  sub->callback([opts, &run] { run = [opts] { return run_convert(*opts); }; });
}

}  // namespace mmfuzz::cli
