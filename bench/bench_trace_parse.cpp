// Text-trace line parser (trace/text_parse.h) throughput. DESIGN budget:
// >= 500 MB/s of ftrace text. The traces are decompressed and split into
// lines once, outside the timed loops; an iteration parses every line.
#include <benchmark/benchmark.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "trace/text_parse.h"

namespace {

using namespace mmfuzz::trace;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The whole file, zstd-decompressed if it ends in .zst; empty on failure.
std::string load(const std::string& path) {
  std::string raw = read_file(path);
  if (path.size() < 4 || path.compare(path.size() - 4, 4, ".zst") != 0) return raw;
  std::string out;
  ZSTD_DStream* ds = ZSTD_createDStream();
  ZSTD_inBuffer in{raw.data(), raw.size(), 0};
  std::vector<char> buf(ZSTD_DStreamOutSize());
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    const std::size_t r = ZSTD_decompressStream(ds, &o, &in);
    if (ZSTD_isError(r)) {
      out.clear();
      break;
    }
    out.append(buf.data(), o.pos);
  }
  ZSTD_freeDStream(ds);
  return out;
}

struct Corpus {
  std::string text;
  std::vector<std::string_view> lines;
};

Corpus make_corpus(const std::vector<std::string>& candidates) {
  Corpus c;
  for (const std::string& p : candidates) {
    c.text = load(p);
    if (!c.text.empty()) break;
  }
  std::string_view t = c.text;
  while (!t.empty()) {
    const std::size_t nl = t.find('\n');
    c.lines.push_back(t.substr(0, nl));
    if (nl == std::string_view::npos) break;
    t.remove_prefix(nl + 1);
  }
  return c;
}

const Corpus& ftrace_corpus() {
  static const Corpus c = make_corpus({MMFUZZ_TRACES_DIR "/arm64-6.1-boot-shell.trace.zst"});
  return c;
}
const Corpus& report_corpus() {
  static const Corpus c =
      make_corpus({MMFUZZ_TRACES_DIR "/trace-cmd/arm64-6.1-small.report.txt.zst"});
  return c;
}
const Corpus& perf_corpus() {
  static const Corpus c =
      make_corpus({MMFUZZ_TRACES_DIR "/trace-cmd/arm64-6.1-perf-script-sample.txt.zst"});
  return c;
}

void run(benchmark::State& state, const Corpus& c) {
  if (c.lines.empty()) {
    state.SkipWithError("trace not found");
    return;
  }
  std::uint64_t events = 0, malformed = 0;
  for (auto _ : state) {
    TextParser parser;
    TraceEvent ev;
    std::string err;
    for (std::string_view line : c.lines) {
      const LineStatus s = parser.parse(line, ev, &err);
      events += s == LineStatus::event;
      malformed += s == LineStatus::malformed;
      benchmark::DoNotOptimize(ev);
    }
  }
  const auto it = static_cast<std::int64_t>(state.iterations());
  state.SetBytesProcessed(it * static_cast<std::int64_t>(c.text.size()));
  state.SetItemsProcessed(it * static_cast<std::int64_t>(c.lines.size()));
  const double n = static_cast<double>(state.iterations());
  state.counters["events"] = static_cast<double>(events) / n;
  state.counters["malformed"] = static_cast<double>(malformed) / n;
  state.SetLabel("item = line");
}

// The embedded 6.1 ftrace trace: 68 MB, 423,632 events.
void BM_ParseFtrace(benchmark::State& state) {
  run(state, ftrace_corpus());
}
BENCHMARK(BM_ParseFtrace)->Unit(benchmark::kMillisecond);

// trace-cmd report of the second recording: 130,467 events.
void BM_ParseTraceCmdReport(benchmark::State& state) {
  run(state, report_corpus());
}
BENCHMARK(BM_ParseTraceCmdReport)->Unit(benchmark::kMillisecond);

// The first 3,000 lines of perf script.
void BM_ParsePerfScript(benchmark::State& state) {
  run(state, perf_corpus());
}
BENCHMARK(BM_ParsePerfScript)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
