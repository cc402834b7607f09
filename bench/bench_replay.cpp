// Trace replay throughput (trace/replay.h through the Executor), the way
// `mmfuzz replay` wires it (cli/cmd_replay.cpp). DESIGN budget: >= 3 M
// events/s with all incremental checks on.
//
// The real trace corpus/traces/arm64-6.1-boot-shell.trace.zst (423,632
// events, 68 MB of text) is decompressed once to a plain temp file, so zstd
// is not timed (BM_Replay/incremental_zst reads the .zst directly). Per
// iteration the model boot (mm::Mm, 1 GiB default machine), the Executor and
// Replayer construction and the model's destruction run with the timer
// paused; the timed part opens the trace, parses every line, feeds the
// Replayer, and runs Replayer::finish and Executor::finish (the final full
// sweep). The learn_cache_names first pass is done once at setup and timed
// on its own as BM_LearnCacheNames. One item = one trace event.
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mm/mm.h"
#include "program/executor.h"
#include "trace/replay.h"
#include "trace/source.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::trace;
using namespace mmfuzz::prog;

const char* const kTraceZst = MMFUZZ_TRACES_DIR "/arm64-6.1-boot-shell.trace.zst";

// The decompressed trace in a temp file, removed at exit; empty path on
// failure (with the reason in `error`).
class PlainTrace {
 public:
  PlainTrace() {
    std::ifstream in(kTraceZst, std::ios::binary);
    const std::string raw{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (raw.empty()) {
      error_ = std::string(kTraceZst) + ": missing or empty";
      return;
    }
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/mmfuzz-bench-replay.XXXXXX";
    const int fd = mkstemp(tmpl.data());
    if (fd < 0) {
      error_ = "cannot create a temp file in " + tmpl;
      return;
    }
    path_ = tmpl;
    ZSTD_DStream* ds = ZSTD_createDStream();
    ZSTD_inBuffer zin{raw.data(), raw.size(), 0};
    std::vector<char> buf(ZSTD_DStreamOutSize());
    std::size_t r = 1;
    while (zin.pos < zin.size) {
      ZSTD_outBuffer out{buf.data(), buf.size(), 0};
      r = ZSTD_decompressStream(ds, &out, &zin);
      if (ZSTD_isError(r)) {
        error_ = std::string(kTraceZst) + ": " + ZSTD_getErrorName(r);
        break;
      }
      if (write(fd, buf.data(), out.pos) != static_cast<ssize_t>(out.pos)) {
        error_ = "short write to " + path_;
        break;
      }
      bytes_ += out.pos;
    }
    ZSTD_freeDStream(ds);
    close(fd);
    if (error_.empty() && r != 0) error_ = std::string(kTraceZst) + ": truncated zstd stream";
  }
  ~PlainTrace() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  PlainTrace(const PlainTrace&) = delete;
  PlainTrace& operator=(const PlainTrace&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  std::string path_, error_;
  std::uint64_t bytes_ = 0;
};

const PlainTrace& plain_trace() {
  static const PlainTrace t;
  return t;
}

// The first pass of cmd_replay, once (outside every timed loop).
const std::unordered_map<std::string, std::string>& cache_names() {
  static const std::unordered_map<std::string, std::string> names = [] {
    auto src = open_event_source(plain_trace().path());
    return learn_cache_names(*src);
  }();
  return names;
}

// One replay per iteration, on a freshly booted default model.
void BM_Replay(benchmark::State& state, CheckMode mode, std::uint64_t check_every, bool zst,
               bool provenance = true) {
  const PlainTrace& plain = plain_trace();
  if (!plain.ok()) {
    state.SkipWithError(plain.error().c_str());
    return;
  }
  const std::string path = zst ? kTraceZst : plain.path();
  const auto& names = cache_names();
  const mm::MmConfig cfg;  // what `mmfuzz replay` boots without machine options
  ExecOptions eo;
  eo.mode = mode;
  eo.check_every = check_every;
  eo.provenance = provenance;

  std::uint64_t events = 0, ops = 0, violations = 0, sweeps = 0, live = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto m = std::make_unique<mm::Mm>(cfg);
    auto strings = std::make_unique<StringTable>();
    auto ex = std::make_unique<Executor>(*m, *strings, eo);
    ReplayOptions ro;
    ro.cache_names = names;
    ro.page_shift = m->profile.page_shift;
    ro.max_order = m->page_alloc.max_order();
    if (m->slab.initialized()) ro.kmalloc_max_cache_size = m->slab.kmalloc_max_cache_size();
    auto rp = std::make_unique<Replayer>(ex.get(), *strings, std::move(ro));
    state.ResumeTiming();

    auto src = open_event_source(path);
    TraceEvent ev;
    while (src->next(ev)) rp->feed(ev, src->line());
    rp->finish();
    const Verdict vd = ex->finish();

    state.PauseTiming();
    events += rp->stats().events;
    ops += vd.ops;
    violations += vd.nr_violations;  // the trace family included
    sweeps += vd.full_sweeps;
    live += ex->live_objects();
    rp.reset();
    src.reset();
    ex.reset();
    m.reset();
    state.ResumeTiming();
  }
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  if (!zst) state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(plain.bytes()));
  state.counters["events"] = static_cast<double>(events) / n;
  state.counters["ops"] = static_cast<double>(ops) / n;
  state.counters["violations"] = static_cast<double>(violations) / n;
  state.counters["full_sweeps"] = static_cast<double>(sweeps) / n;
  state.counters["live_objects"] = static_cast<double>(live) / n;
  state.SetLabel("item = trace event");
}

// ~0.5-2 s per replay: a few iterations, not min-time driven.
BENCHMARK_CAPTURE(BM_Replay, off, CheckMode::off, 0, false)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_Replay, incremental, CheckMode::incremental, 0, false)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_Replay, full10k, CheckMode::full, 10000, false)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
// Without the findings' history (who allocated and freed each handle): its cost.
BENCHMARK_CAPTURE(BM_Replay, incremental_noprov, CheckMode::incremental, 0, false, false)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
// The same incremental replay reading the .zst directly (streaming zstd timed).
BENCHMARK_CAPTURE(BM_Replay, incremental_zst, CheckMode::incremental, 0, true)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

// The first pass alone: which cache each 6.1 kmem_cache_alloc call site uses.
void BM_LearnCacheNames(benchmark::State& state) {
  const PlainTrace& plain = plain_trace();
  if (!plain.ok()) {
    state.SkipWithError(plain.error().c_str());
    return;
  }
  std::uint64_t events = 0, sites = 0;
  for (auto _ : state) {
    auto src = open_event_source(plain.path());
    const auto names = learn_cache_names(*src);
    events += src->stats().events;
    sites += names.size();
  }
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(plain.bytes()));
  state.counters["events"] = static_cast<double>(events) / n;
  state.counters["call_sites"] = static_cast<double>(sites) / n;
  state.SetLabel("item = trace event");
}
BENCHMARK(BM_LearnCacheNames)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
