// mmfuzz shrink: any failure (a recorded trace, a Program, a fuzz input) to
// a minimal Program that `mmfuzz replay` reproduces alone with the same
// signature; optionally a GoogleTest regression test of it.
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/options.h"
#include "fuzz/harness.h"
#include "program/program.h"
#include "program/report.h"
#include "program/text.h"
#include "shrink/regression.h"
#include "shrink/shrink.h"
#include "trace/replay.h"
#include "trace/source.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::prog;
using mmfuzz::shrink::Goal;

struct ShrinkCliOptions {
  std::string input, out, target, signature, gtest, json;
  double time = 0;
  unsigned jobs = 0;
  bool quiet = false;
};

std::atomic<bool> g_stop{false};

// What the input is, as a Program, with the run that decides the goal.
struct Input {
  Program program;
  std::vector<Finding> findings;  // of the input as replay (or the fuzz target) ran it
  std::string signature;          // the default goal (empty: the first finding's)
  bool traced = false;            // findings come from replaying a trace
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw mm::ConfigError(fmt::format("{}: {}", path, std::strerror(errno)));
  return {std::istreambuf_iterator<char>(f), {}};
}

// Standard input as a file the readers can open twice (memfd).
std::string stdin_path() {
  const int fd = memfd_create("stdin", MFD_CLOEXEC);
  if (fd < 0) throw mm::ConfigError(std::string("memfd_create: ") + std::strerror(errno));
  char buf[1 << 16];
  for (ssize_t n; (n = read(STDIN_FILENO, buf, sizeof buf)) != 0;) {
    if (n < 0) throw mm::ConfigError(std::string("stdin: ") + std::strerror(errno));
    if (write(fd, buf, static_cast<std::size_t>(n)) != n)
      throw mm::ConfigError(std::string("stdin: ") + std::strerror(errno));
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

// A fuzz target's input: decoded and run as the target runs it.
Input fuzz_input(const std::string& path, const std::string& target) {
  const fuzz::TargetSpec* t = fuzz::find_target(target);
  if (!t) throw mm::ConfigError(fmt::format("--target {}: no such fuzz target", target));
  const std::string bytes = read_bytes(path);
  fuzz::Harness h(*t);
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  fuzz::Outcome o = h.run({data, bytes.size()});
  if (!o.error.empty()) throw mm::ConfigError(fmt::format("{}: {}", path, o.error));
  if (!o.crashed())
    throw mm::ConfigError(fmt::format("{}: does not crash fuzz target {}", path, target));
  Input in;
  in.program = std::move(o.program);
  if (o.header) in.program.header = *o.header;
  in.program.header.target = target;
  in.program.header.version = kProgramVersion;
  in.signature = o.verdict.findings[o.crashes.front()].violation.signature();
  return in;
}

// A recorded trace, replayed as `mmfuzz replay` does; its ops (what the
// replay inferred made explicit) become the Program.
Input trace_input(const std::string& path, trace::EventSource& src, trace::TraceEvent& ev,
                  bool more) {
  using namespace mmfuzz::trace;
  ProgramHeader header = program_header(src, MachineOptions{}, "shrink", nullptr);
  header.version = kProgramVersion;
  header = header.resolved();
  SourceOptions quiet;
  auto first_pass = open_event_source(path, quiet);
  ReplayOptions ro;
  ro.cache_names = learn_cache_names(*first_pass);
  mm::Mm m(header.mm_config());
  Input in;
  in.program.header = header;
  Executor ex(m, in.program.strings, header.exec_options());
  ro.page_shift = m.profile.page_shift;
  ro.max_order = m.page_alloc.max_order();
  if (m.slab.initialized()) ro.kmalloc_max_cache_size = m.slab.kmalloc_max_cache_size();
  Replayer rp(&ex, in.program.strings, ro);
  rp.sink = [&](const Op& op) { in.program.ops.push_back(op); };
  for (; more; more = src.next(ev)) rp.feed(ev, src.line());
  rp.finish();
  const Verdict v = ex.finish();
  if (!v.findings.empty()) in.signature = v.findings.front().violation.signature();
  in.findings = v.findings;
  in.traced = true;
  return in;
}

Input load(const ShrinkCliOptions& o, const std::string& path) {
  if (!o.target.empty()) return fuzz_input(path, o.target);
  trace::SourceOptions so;
  auto src = trace::open_event_source(path, so);
  trace::TraceEvent ev;
  const bool more = src->next(ev);
  if (!src->program_text()) return trace_input(path, *src, ev, more);
  Input in;
  in.program = read_program(path);
  if (in.program.header.version < kProgramVersion) {
    in.program.header = ProgramHeader{}.resolved();  // v1: replay's defaults
    in.program.header.version = kProgramVersion;
  }
  return in;
}

std::string origin_name(const ShrinkCliOptions& o) {
  std::string s = o.input;
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string result_text(const Program& p, const std::string& origin, std::size_t before) {
  std::string text = print_header(p.header);
  text += fmt::format("# shrunk from {} by mmfuzz shrink: {} -> {} ops\n", origin, before,
                      p.ops.size());
  for (const Op& op : p.ops) text += format_op(op, p.strings) + "\n";
  return text;
}

void on_sigint(int) {
  g_stop = true;
}

int run_shrink(const ShrinkCliOptions& o) {
  const std::string path = o.input == "-" ? stdin_path() : o.input;
  const std::string out =
      !o.out.empty() ? o.out : (o.input == "-" ? "stdin" : o.input) + ".min.program";
  const std::string origin = origin_name(o);
  Input in;
  try {
    in = load(o, path);
  } catch (const trace::InputError& e) {
    throw mm::ConfigError(e.what());
  }
  // A trace's replay ran its Program form op for op (findings at the same
  // op indices); a Program or a fuzz input runs once here, as replay runs it.
  if (!in.traced) in.findings = shrink::run_fresh(in.program).findings;
  std::string sig = o.signature.empty() ? in.signature : o.signature;
  std::uint64_t fail_op = 0;
  Goal goal;
  try {
    goal = shrink::goal_for(in.program.header, in.findings, sig, &fail_op);
  } catch (const shrink::ShrinkError& e) {
    throw mm::ConfigError(fmt::format("{}: {}", o.input, e.what()));
  }
  sig = goal.signature;

  const bool tty = !o.quiet && isatty(STDERR_FILENO);
  const std::size_t before = in.program.ops.size();
  shrink::ShrinkOptions so;
  so.jobs = o.jobs ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  so.seconds = o.time;
  so.stop = &g_stop;
  auto last_write = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  so.on_better = [&](const Program& p) {
    // The best so far on disk, at most twice a second (and at the end).
    const auto now = std::chrono::steady_clock::now();
    if (now - last_write < std::chrono::milliseconds(500)) return;
    last_write = now;
    write_file_atomic(out, result_text(p, origin, before));
  };
  if (tty)
    so.on_progress = [](std::size_t ops, std::uint64_t cands) {
      std::fprintf(stderr, "\r  shrink: %zu ops left, %llu candidates   ", ops,
                   static_cast<unsigned long long>(cands));
    };
  g_stop = false;
  auto old = std::signal(SIGINT, on_sigint);
  shrink::ShrinkResult r;
  try {
    r = shrink::shrink(std::move(in.program), goal, fail_op, so);
  } catch (const shrink::ShrinkError& e) {
    throw mm::ConfigError(fmt::format("{}: {}", o.input, e.what()));
  }
  std::signal(SIGINT, old);
  if (tty) std::fputs("\r\033[K", stderr);

  // The result, re-read from its text and re-run from scratch.
  const std::string text = result_text(r.program, origin, before);
  const Program again = parse_program(text, out);
  const Verdict v = shrink::run_fresh(again);
  const auto hit = std::find_if(v.findings.begin(), v.findings.end(),
                                [&](const Finding& f) { return f.violation.signature() == sig; });
  if (hit == v.findings.end())
    throw mm::ConfigError(fmt::format("internal: the shrunk Program does not fire {}", sig));
  write_file_atomic(out, text);
  if (!o.gtest.empty()) {
    std::string name = o.gtest.substr(o.gtest.find_last_of('/') + 1);
    name = name.substr(0, name.find('.'));
    // The input's file name only: the test names nothing outside the repository.
    const std::string from = origin.substr(origin.find_last_of('/') + 1);
    write_file_atomic(o.gtest, shrink::gtest_source(again, name, from));
  }
  const auto& st = r.stats;
  if (!o.quiet) {
    std::printf("%s\n", finding_text(*hit, again.strings, true).c_str());
    for (const auto& p : st.passes) std::printf("  %s\n", p.c_str());
    if (st.stopped) std::printf("  stopped early (--time or Ctrl-C): the best so far\n");
    std::printf("wrote %s%s%s\n", out.c_str(), o.gtest.empty() ? "" : " and ", o.gtest.c_str());
  }
  std::printf("shrink: %zu ops -> %zu ops in %.2f s, %llu candidates (%llu cached), signature %s\n",
              before, again.ops.size(), st.seconds, static_cast<unsigned long long>(st.candidates),
              static_cast<unsigned long long>(st.cached), sig.c_str());
  if (!o.json.empty()) {
    nlohmann::json j = {{"schema", "mmfuzz-shrink-1"},
                        {"input", o.input},
                        {"output", out},
                        {"ops_before", before},
                        {"ops_after", again.ops.size()},
                        {"seconds", st.seconds},
                        {"candidates", st.candidates},
                        {"cached", st.cached},
                        {"stopped", st.stopped},
                        {"signature", sig},
                        {"passes", st.passes},
                        {"finding", finding_json(*hit, again.strings, true)}};
    write_file_atomic(o.json, dump_json(j, 2) + "\n");
  }
  return EXIT_OK;
}

}  // namespace

void register_shrink(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<ShrinkCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "shrink",
      "reduce a failure (a trace, a Program, or a fuzz input with --target) to a minimal "
      "Program that `mmfuzz replay` reproduces alone with the same signature");
  sub->add_option("INPUT", opts->input, "trace, Program text or fuzz input ('-': stdin)")
      ->required();
  sub->add_option("-o,--output", opts->out, "the minimal Program (default: INPUT.min.program)");
  sub->add_option("--signature", opts->signature,
                  "the failure to keep (default: the input's first; a Program's first expected)");
  sub->add_option("--target", opts->target,
                  "INPUT is a fuzz input (bytes) of this fuzz target: page_alloc, slub, slab, "
                  "slob, vm, mm");
  sub->add_option("--time", opts->time, "stop after S seconds with the best so far")
      ->check(CLI::PositiveNumber);
  sub->add_option("--jobs", opts->jobs, "candidates run in parallel (default: all cores)")
      ->check(CLI::Range(1u, 1024u));
  sub->add_option("--gtest", opts->gtest,
                  "also write a GoogleTest regression test (drop it in tests/regressions/)");
  sub->add_option("--json", opts->json, "write the summary and the finding as JSON");
  sub->add_flag("--quiet", opts->quiet, "print only the summary line");
  sub->callback([opts, &run] { run = [opts] { return run_shrink(*opts); }; });
}

}  // namespace mmfuzz::cli
