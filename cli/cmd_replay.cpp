// mmfuzz replay: the main job. Replays recorded kmem traces (ftrace text,
// trace-cmd report, perf script, trace.dat, Program texts; plain, gzip or
// zstd; "-" for stdin) through the Executor with the checkers attached, and
// reports the verdict, the trace's view, fidelity and the final state.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

#include "analysis/html_report.h"
#include "analysis/kmem_stat.h"
#include "cli/commands.h"
#include "cli/fidelity_baseline.h"
#include "cli/options.h"
#include "invariants/checker.h"
#include "mm/procfs/procfs.h"
#include "program/differential.h"
#include "program/report.h"
#include "program/text.h"
#include "trace/line_reader.h"
#include "trace/replay.h"
#include "trace/source.h"

extern "C" const char mmfuzz_default_trace[];
extern "C" const char mmfuzz_default_trace_end[];

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::trace;
using namespace mmfuzz::prog;
using namespace mmfuzz::analysis;

struct ReplayCliOptions {
  MachineOptions machine;
  std::vector<std::string> traces;
  std::string check;  // empty: the Program's (incremental)
  std::optional<std::uint64_t> check_every;
  std::string checks;  // empty: the Program's (all)
  std::string json, report_dir;
  bool strict = false, strict_frees = false, stat = false, quiet = false, progress = false;
  bool one_pass = false;
  bool leaks = false;
  std::string display_name;  // the embedded default's name
  std::uint64_t tick_ms = 1000;
  unsigned top = 20;
  std::string stat_sort;  // perf kmem's -s keys
  bool stat_caller = false, stat_alloc = false;
  std::string fidelity_baseline, fidelity_record;  // cli/fidelity_baseline.h
  nlohmann::json baseline;                         // read before the replay
};

// What --stat, --stat-sort, --stat-caller, --stat-alloc and --top ask of
// the perf kmem stat tables.
StatReportOptions stat_options(const ReplayCliOptions& o) {
  StatReportOptions ro;
  ro.top_n = o.top;
  if (!o.stat_sort.empty()) ro.sort = parse_stat_sort(o.stat_sort);
  ro.caller = o.stat_caller;
  ro.alloc = o.stat_alloc;
  return ro;
}

std::string with_commas(std::uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

// Progress on a terminal: events, rate, percent of the file, ETA.
class Progress {
 public:
  explicit Progress(bool on) : on_(on), start_(Clock::now()), last_(start_) {}
  void update(const EventSource& src, std::uint64_t events) {
    if (!on_ || (events & 0x3fff)) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(events) / secs : 0;
    std::string line =
        fmt::format("\r  {} events  {:.0f}k events/s", with_commas(events), rate / 1000);
    if (src.bytes_total()) {
      const double frac =
          static_cast<double>(src.bytes_done()) / static_cast<double>(src.bytes_total());
      line += fmt::format("  {:.0f}%", 100 * frac);
      if (frac > 0.01) line += fmt::format("  ETA {:.0f}s", secs / frac - secs);
    }
    std::fputs((line + "   ").c_str(), stderr);
    shown_ = true;
  }
  void done() {
    if (shown_) std::fputs("\r\033[K", stderr);
  }
  // Off the terminal's line before something else prints; back at the next update.
  void clear() {
    done();
    shown_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool on_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

std::string type_counts(const ReplayStats& st) {
  std::vector<std::pair<std::uint64_t, const char*>> v;
  for (int t = 1; t < kNrEventTypes; ++t)
    if (st.by_type[t]) v.emplace_back(st.by_type[t], event_type_name(static_cast<EventType>(t)));
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::string out;
  std::size_t col = 0;
  for (const auto& [n, name] : v) {
    std::string item = fmt::format("{} {}", name, with_commas(n));
    if (col && col + item.size() + 3 > 96) {
      out += "\n";
      col = 0;
    }
    out += col ? " · " : "    ";
    out += item;
    col += item.size() + 3;
  }
  return out + "\n";
}

// /proc/slabinfo of the final state: the header and the caches that hold
// memory, largest first (all of them with --top 0).
std::string slabinfo_top(const mm::Mm& m, unsigned top) {
  const std::string all = mm::procfs::slabinfo(m);
  std::vector<std::string> head, rows;
  std::size_t pos = 0;
  while (pos < all.size()) {
    const std::size_t nl = all.find('\n', pos);
    std::string line = all.substr(pos, nl - pos);
    pos = nl == std::string::npos ? all.size() : nl + 1;
    (line.rfind('#', 0) == 0 || line.rfind("slabinfo", 0) == 0 ? head : rows).push_back(line);
  }
  auto mem = [](const std::string& l) {
    // <active_objs> <num_objs> <objsize>: num_objs * objsize
    unsigned long long a = 0, n = 0, sz = 0;
    char name[128];
    if (std::sscanf(l.c_str(), "%127s %llu %llu %llu", name, &a, &n, &sz) != 4) return 0ull;
    return n * sz;
  };
  rows.erase(std::remove_if(rows.begin(), rows.end(), [&](auto& l) { return mem(l) == 0; }),
             rows.end());
  std::stable_sort(rows.begin(), rows.end(), [&](auto& a, auto& b) { return mem(a) > mem(b); });
  std::string out;
  for (const auto& l : head) out += l + "\n";
  const std::size_t n = top ? std::min<std::size_t>(top, rows.size()) : rows.size();
  for (std::size_t i = 0; i < n; ++i) out += rows[i] + "\n";
  if (n < rows.size())
    out += fmt::format("# ... {} more caches (--top 0 shows all)\n", rows.size() - n);
  return out;
}

TimelineSample sample(const mm::Mm& m, const Executor& ex, std::uint64_t ts, std::uint64_t events,
                      Timeline& tl, std::unordered_map<std::string, std::uint32_t>& cache_ix) {
  TimelineSample s;
  s.ts_ns = ts;
  s.event = events;
  s.free_pages_per_order.assign(m.page_alloc.max_order(), 0);
  for (const auto& pgdat : m.page_alloc.node_data)
    for (const auto& z : pgdat.node_zones)
      for (unsigned o = 0; o < m.page_alloc.max_order(); ++o)
        s.free_pages_per_order[o] += z.free_area_[o].nr_free << o;
  s.live_kmalloc_bytes = ex.live_kmalloc_bytes();
  if (m.slab.initialized()) {
    for (const auto& c : m.slab.caches) {
      if (!c) continue;
      const mm::SlabInfo si = m.slab.allocator->slabinfo(*c);
      const std::uint64_t bytes = si.num_slabs * si.pagesperslab * m.profile.page_size();
      if (!bytes) continue;
      s.slab_bytes_total += bytes;
      auto [it, added] = cache_ix.emplace(c->name, static_cast<std::uint32_t>(tl.caches.size()));
      if (added) tl.caches.push_back(c->name);
      s.slab_bytes.emplace_back(it->second, bytes);
    }
  }
  return s;
}

// The run configuration: the Program's header (a trace has none: the
// defaults), the flags on top, each override reported on stderr.
ProgramHeader run_header(const ReplayCliOptions& o, const EventSource& src) {
  std::vector<std::string> notes;
  ProgramHeader h = program_header(src, o.machine, "replay", &notes);
  const auto note = [&](const char* flag, const std::string& given, const char* key, auto&& set) {
    const std::string before = header_value(h, key);
    set();
    if (h.version >= 2 && header_value(h, key) != before)
      std::fprintf(stderr, "mmfuzz replay: %s %s overrides the program's %s: %s\n", flag,
                   given.c_str(), key, before.c_str());
  };
  if (!o.check.empty())
    note("--check", o.check, "check", [&] {
      h.check = o.check == "off"    ? CheckMode::off
                : o.check == "full" ? CheckMode::full
                                    : CheckMode::incremental;
    });
  if (o.check_every)
    note("--check-every", std::to_string(*o.check_every), "check_every",
         [&] { h.check_every = *o.check_every; });
  else if (!o.check.empty() && h.check == CheckMode::full && !h.check_every)
    h.check_every = 10000;  // --check full: a sweep every 10,000 ops unless told
  if (!o.checks.empty()) note("--checks", o.checks, "checks", [&] { h.checks = o.checks; });
  // Leaks are off unless asked for: by --leaks, or by naming slab.leak.
  if (o.leaks || o.checks.find("slab.leak") != std::string::npos)
    note("--leaks", "", "report_leaks", [&] { h.report_leaks = true; });
  return h;
}

// One finished replay, as the text report, the JSON and the HTML report
// read it.
struct ReplayView {
  const ProgramHeader& header;
  const ExecOptions& eo;
  const mm::Mm& m;
  const Executor& ex;
  const Replayer& rp;
  const StringTable& strings;
  const Verdict& vd;
  const ReplayStats& st;
  const SourceStats& ss;
  const std::optional<KmemStat>& kstat;
  std::string name, format, comp, fidelity, slabinfo, buddyinfo;
  double secs = 0;
  std::vector<std::string> sigs;                       // distinct signatures seen
  std::vector<std::pair<std::string, bool>> expected;  // the header's, and whether seen
  bool interrupted = false;                            // a signal ended the reading
  std::size_t shown = 0;                               // findings printed as they happened
  LineText lines;  // the trace's own text of the findings' lines (a text file's)
};

// The kernel-style text report on stdout.
void print_replay(const ReplayCliOptions& o, const ReplayView& r) {
  const auto& [header, eo, m, ex, rp, strings, vd, st, ss, kstat] =
      std::tie(r.header, r.eo, r.m, r.ex, r.rp, r.strings, r.vd, r.st, r.ss, r.kstat);
  const auto& [name, format, comp, fidelity, slabinfo, buddyinfo] =
      std::tie(r.name, r.format, r.comp, r.fidelity, r.slabinfo, r.buddyinfo);
  const auto& [secs, sigs, expected] = std::tie(r.secs, r.sigs, r.expected);
  std::printf("mmfuzz replay: %s (%s%s)\n", name.c_str(), format.c_str(), comp.c_str());
  if (header.version >= 2)
    std::printf("  program header v%d%s%s, planted defect %s\n", header.version,
                header.target.empty() ? "" : ", target ", header.target.c_str(),
                mm::planted_defect_name(header.planted));
  std::printf(
      "  model %s, machine %s (%llu MiB, %u CPUs), slab %s, checks %s%s\n", m.profile.name.c_str(),
      m.machine.name.c_str(), static_cast<unsigned long long>(m.machine.ram_size >> 20),
      m.machine.nr_cpus, m.slab.initialized() ? mm::slab_variant_name(m.slab.variant) : "none",
      check_mode_name(eo.mode),
      eo.check_every ? fmt::format(", full sweep every {} ops", eo.check_every).c_str() : "");
  std::printf(
      "events: %s over %.1f s of trace time (%s lines; %s skipped, %s malformed, %s lost)\n",
      with_commas(st.events).c_str(), secs, with_commas(ss.lines).c_str(),
      with_commas(ss.skipped).c_str(), with_commas(ss.malformed).c_str(),
      with_commas(st.lost_events).c_str());
  std::fputs(type_counts(st).c_str(), stdout);
  for (const auto& w : ss.warnings) std::printf("  warning: %s\n", w.c_str());
  std::printf("ops: %s run (%s skipped), %s ticks, %s caches created\n",
              with_commas(vd.ops).c_str(), with_commas(vd.skipped_ops).c_str(),
              with_commas(st.ticks).c_str(), with_commas(st.caches_created).c_str());
  std::printf(
      "trace view: kfree(NULL) %s · frees of objects allocated before tracing or untraced %s "
      "(%s in bulk caches) · page frees of pages allocated before tracing %s\n"
      "  double allocations %s · double frees %s · slab pages %s and large kmalloc pages %s "
      "left to the model's allocator · split_page %s\n",
      with_commas(st.kfree_null).c_str(), with_commas(st.unknown_frees).c_str(),
      with_commas(st.unknown_bulk_frees).c_str(), with_commas(st.unknown_page_frees).c_str(),
      with_commas(st.double_allocs + st.page_double_allocs).c_str(),
      with_commas(st.double_frees).c_str(), with_commas(st.absorbed_slab_pages).c_str(),
      with_commas(st.absorbed_large_kmalloc).c_str(), with_commas(st.splits).c_str());
  if (st.linear_map_learned)
    std::printf("  linear map: ptr = PA + %#llx (learned from slab pages)\n",
                static_cast<unsigned long long>(st.linear_map_offset));
  for (std::size_t i = 0; i < std::min<std::size_t>(st.anomaly_examples.size(), 5); ++i)
    std::printf("  %s\n", st.anomaly_examples[i].c_str());
  std::printf(
      "live at the end: %s objects (%s kmalloc bytes requested), %s page allocations, %s "
      "vmalloc areas\n",
      with_commas(ex.live_objects()).c_str(), with_commas(ex.live_kmalloc_bytes()).c_str(),
      with_commas(ex.live_page_allocs()).c_str(), with_commas(ex.live_areas()).c_str());
  std::printf("fidelity (what the trace says the kernel did, against the model):\n%s",
              fidelity.c_str());
  if (kstat && o.stat)
    std::printf("\nperf kmem stat --slab --page --caller%s (from the trace):\n%s\n",
                o.stat_alloc ? " --alloc" : "", kstat->report(stat_options(o)).c_str());
  std::printf("\n/proc/slabinfo (model, end of replay):\n%s", slabinfo.c_str());
  std::printf("\n/proc/buddyinfo (model, end of replay):\n%s\n", buddyinfo.c_str());
  // The findings, the signatures and the expected ones, then the verdict line.
  if (r.interrupted)
    std::printf("interrupted after %s event%s: the report covers what was read\n",
                with_commas(st.events).c_str(), st.events == 1 ? "" : "s");
  const std::string text = verdict_text(vd, strings, r.shown, r.lines);
  const std::size_t vline = text.rfind("verdict: ");
  std::fputs(text.substr(0, vline).c_str(), stdout);
  for (const auto& sg : sigs) std::printf("signature: %s\n", sg.c_str());
  for (const auto& [e, seen] : expected)
    std::printf("expected signature %s: %s\n", e.c_str(), seen ? "seen" : "NOT SEEN");
  // The way to a reproducer (docs/shrinking.md); stdin and the embedded
  // trace have no file to name.
  if (!sigs.empty() && o.display_name.empty() && name != "<stdin>")
    std::printf("shrink it: mmfuzz shrink '%s' --signature '%s'\n", name.c_str(), sigs[0].c_str());
  std::fputs(text.substr(vline).c_str(), stdout);
}

// The replay's JSON: the verdict's fields (report.h), then the replay's own.
nlohmann::json replay_json(const ReplayCliOptions& o, const ReplayView& r) {
  const auto& [header, eo, m, ex, rp, strings, vd, st, ss, kstat] =
      std::tie(r.header, r.eo, r.m, r.ex, r.rp, r.strings, r.vd, r.st, r.ss, r.kstat);
  const auto& [name, format, sigs, expected] = std::tie(r.name, r.format, r.sigs, r.expected);
  nlohmann::json j = verdict_json(vd, strings);
  j["trace"] = name;
  j["format"] = format;
  j["profile"] = m.profile.name;
  j["slab"] = m.slab.initialized() ? mm::slab_variant_name(m.slab.variant) : "none";
  j["check"] = check_mode_name(eo.mode);
  j["header"] = {{"version", header.version},
                 {"target", header.target},
                 {"machine", header_value(header, "machine")},
                 {"planted", mm::planted_defect_name(header.planted)}};
  j["signatures"] = sigs;
  j["interrupted"] = r.interrupted;
  j["expect"] = nlohmann::json::array();
  for (const auto& [e, seen] : expected) j["expect"].push_back({{"signature", e}, {"seen", seen}});
  j["events"] = st.events;
  nlohmann::json bytype = nlohmann::json::object();
  for (int t = 1; t < kNrEventTypes; ++t)
    if (st.by_type[t]) bytype[event_type_name(static_cast<EventType>(t))] = st.by_type[t];
  j["events_by_type"] = bytype;
  j["lines"] = {{"total", ss.lines}, {"skipped", ss.skipped}, {"malformed", ss.malformed}};
  j["lost"] = {{"markers", st.lost_markers}, {"events", st.lost_events}};
  j["ops"]["ticks"] = st.ticks;
  j["trace_view"] = {{"kfree_null", st.kfree_null},
                     {"unknown_frees", st.unknown_frees},
                     {"unknown_bulk_frees", st.unknown_bulk_frees},
                     {"unknown_page_frees", st.unknown_page_frees},
                     {"double_allocs", st.double_allocs + st.page_double_allocs},
                     {"double_frees", st.double_frees},
                     {"absorbed_slab_pages", st.absorbed_slab_pages},
                     {"absorbed_large_kmalloc", st.absorbed_large_kmalloc},
                     {"splits", st.splits}};
  j["live"] = {{"objects", ex.live_objects()},
               {"kmalloc_bytes", ex.live_kmalloc_bytes()},
               {"page_allocations", ex.live_page_allocs()},
               {"vmalloc_areas", ex.live_areas()}};
  nlohmann::json fid = nlohmann::json::array();
  for (const auto& f : rp.fidelity()) {
    nlohmann::json d = nlohmann::json::array();
    for (const auto& [k, x] : f.disagreements)
      d.push_back({{"trace", x.trace_value},
                   {"model", x.model_value},
                   {"count", x.count},
                   {"example", x.example}});
    fid.push_back(
        {{"metric", f.name}, {"agree", f.agree}, {"total", f.total}, {"disagreements", d}});
  }
  j["fidelity"] = fid;
  if (kstat && o.stat) j["stat"] = kstat->to_json(stat_options(o));
  return j;
}

// The perf kmem stat part of the HTML report: the tables, the top call
// sites, the live objects by call site, and the trace's markers and extfrag
// events for the plots.
void add_stat_to_report(const ReplayCliOptions& o, const KmemStat& k, ReportInfo& info,
                        Timeline& tl) {
  StatReportOptions ro = stat_options(o);
  ro.caller = true;
  info.kmem_stat = k.report(ro);
  StatSort by_bytes;
  by_bytes.slab = {SlabSortKey::bytes, SlabSortKey::hit};
  const auto cs = k.callsites(by_bytes.slab);
  for (std::size_t i = 0; i < std::min<std::size_t>(cs.size(), 15); ++i)
    info.top_callsites.push_back({cs[i].call_site, cs[i].bytes_alloc, cs[i].bytes_req, cs[i].hit});
  const auto live = k.live_by_callsite();
  for (std::size_t i = 0; i < std::min<std::size_t>(live.size(), 30); ++i)
    info.live_by_callsite.push_back(
        {live[i].call_site, live[i].cache, live[i].objects, live[i].bytes_alloc});
  info.live_objects = k.slab().live_objects;
  info.live_bytes = k.slab().live_bytes_alloc;
  tl.markers = k.markers();
  tl.extfrag = k.extfrag();
}

// The self-contained HTML report under --report DIR.
void write_replay_report(const ReplayCliOptions& o, const ReplayView& r, const Timeline& tl) {
  const auto& [eo, m, ex, strings, vd, st] = std::tie(r.eo, r.m, r.ex, r.strings, r.vd, r.st);
  const auto& [name, format, comp, fidelity, slabinfo, buddyinfo] =
      std::tie(r.name, r.format, r.comp, r.fidelity, r.slabinfo, r.buddyinfo);
  const std::uint64_t nr_violations = vd.nr_violations;
  ReportInfo info;
  info.title = "mmfuzz replay: " + name;
  info.verdict = nr_violations ? fmt::format("{} violations", nr_violations) : "clean";
  info.summary = {
      {"trace", name + " (" + format + comp + ")"},
      {"model", fmt::format("{}, {} MiB, {} CPUs, slab {}", m.profile.name,
                            m.machine.ram_size >> 20, m.machine.nr_cpus,
                            m.slab.initialized() ? mm::slab_variant_name(m.slab.variant) : "none")},
      {"events", with_commas(st.events)},
      {"ops run", with_commas(vd.ops)},
      {"checks", check_mode_name(eo.mode)},
      {"live objects at the end", with_commas(ex.live_objects())},
      {"unknown frees", with_commas(st.unknown_frees)},
      {"lost events", with_commas(st.lost_events)}};
  info.slabinfo = slabinfo;
  info.buddyinfo = buddyinfo;
  for (const auto& f : vd.findings)
    info.violation_reports.push_back(finding_text(f, strings, false, r.lines));
  info.fidelity = fidelity;
  Timeline marked = tl;
  if (r.kstat) add_stat_to_report(o, *r.kstat, info, marked);
  try {
    write_html_report(o.report_dir, info, marked);
  } catch (const std::exception& e) {
    throw mm::ConfigError(std::string("--report: ") + e.what());
  }
}

// The text of the lines the findings quote (their ops, allocations and
// frees), read back from the trace file: one more pass, only when there are
// findings.
std::shared_ptr<std::unordered_map<std::uint64_t, std::string>> finding_lines(
    const std::string& path, const Verdict& vd) {
  auto out = std::make_shared<std::unordered_map<std::uint64_t, std::string>>();
  for (const auto& f : vd.findings)
    for (const Op* op :
         {&f.op, f.allocated ? &f.allocated->op : nullptr, f.freed ? &f.freed->op : nullptr})
      if (op && op->line) out->emplace(op->line, std::string());
  if (out->empty()) return out;
  std::size_t found = 0;
  LineReader reader(path);
  std::string_view line;
  while (found < out->size() && reader.next(line))
    if (const auto it = out->find(reader.line_no()); it != out->end()) {
      it->second = line;
      ++found;
    }
  return out;
}

bool regular_file(const std::string& path) {
  struct stat st {};
  return path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A Program whose header says `diff:` runs under every configuration it
// names, compared op by op (program/differential.h): its verdict is the
// first disagreement (diff.*) or the first finding of a configuration's own
// checkers.
int replay_diff(const ReplayCliOptions& o, EventSource& src, TraceEvent& ev, bool more,
                const ProgramHeader& header, nlohmann::json& jout) {
  if (!o.report_dir.empty())
    throw mm::ConfigError(
        fmt::format("--report: {}: a differential run (diff: {}) has no HTML report", src.name(),
                    diff_mode_name(header.diff)));
  Program p;
  p.header = header;
  ReplayOptions ro;
  ro.literal = true;
  Replayer rp(nullptr, p.strings, ro);
  rp.sink = [&](const Op& op) { p.ops.push_back(op); };
  for (; more && !read_interrupted(); more = src.next(ev)) rp.feed(ev, src.line());
  rp.finish();
  const DiffRun r = run_differential_full(p);
  Verdict vd;
  if (r.finding) vd.findings.push_back(*r.finding);
  vd.nr_violations = vd.findings.size();
  vd.ops = r.stats.ops;
  std::vector<std::string> sigs;
  for (const auto& f : vd.findings) sigs.push_back(f.violation.signature());
  std::vector<std::pair<std::string, bool>> expected;
  for (const auto& e : header.expect)
    expected.emplace_back(e, std::find(sigs.begin(), sigs.end(), e) != sigs.end());
  const std::string name = o.display_name.empty() ? src.name() : o.display_name;
  std::string configs, compared;
  for (const auto& c : r.configs) configs += (configs.empty() ? "" : ", ") + c;
  for (std::size_t d = 0; d < kNrDiffDims; ++d)
    compared += fmt::format("{}{} {}/{}", d ? " · " : "", diff_dim_name(static_cast<DiffDim>(d)),
                            r.stats.compared[d], r.stats.compared[d] + r.stats.excluded[d]);
  if (!o.quiet) {
    std::printf("mmfuzz replay: %s (mmfuzz program, differential: diff %s)\n", name.c_str(),
                diff_mode_name(header.diff));
    std::printf("  configurations: %s; machine %s, planted defect %s, checks %s\n", configs.c_str(),
                header.machine.c_str(), mm::planted_defect_name(header.planted),
                check_mode_name(header.check));
    std::printf("ops: %s run under every configuration\n", with_commas(r.stats.ops).c_str());
    std::printf("compared (made/considered): %s; %s handles, caches or pools set aside\n",
                compared.c_str(), with_commas(r.stats.parted).c_str());
    if (r.stats.stopped_at)
      std::printf("  nothing compared after op %s: %s\n", with_commas(*r.stats.stopped_at).c_str(),
                  r.stats.stopped_why.c_str());
    const std::string text = verdict_text(vd, p.strings);
    const std::size_t vline = text.rfind("verdict: ");
    std::fputs(text.substr(0, vline).c_str(), stdout);
    for (const auto& sg : sigs) std::printf("signature: %s\n", sg.c_str());
    for (const auto& [e, seen] : expected)
      std::printf("expected signature %s: %s\n", e.c_str(), seen ? "seen" : "NOT SEEN");
    if (!sigs.empty() && o.display_name.empty() && name != "<stdin>")
      std::printf("shrink it: mmfuzz shrink '%s' --signature '%s'\n", name.c_str(),
                  sigs[0].c_str());
    std::fputs(text.substr(vline).c_str(), stdout);
  }
  nlohmann::json j = verdict_json(vd, p.strings);
  j["trace"] = name;
  j["format"] = "mmfuzz program";
  j["diff"] = diff_mode_name(header.diff);
  j["configurations"] = r.configs;
  nlohmann::json cmp = nlohmann::json::object(), exc = nlohmann::json::object();
  for (std::size_t d = 0; d < kNrDiffDims; ++d) {
    cmp[diff_dim_name(static_cast<DiffDim>(d))] = r.stats.compared[d];
    exc[diff_dim_name(static_cast<DiffDim>(d))] = r.stats.excluded[d];
  }
  j["compared"] = cmp;
  j["excluded"] = exc;
  j["signatures"] = sigs;
  j["expect"] = nlohmann::json::array();
  for (const auto& [e, seen] : expected) j["expect"].push_back({{"signature", e}, {"seen", seen}});
  jout.push_back(j);
  return vd.nr_violations ? EXIT_VIOLATIONS : EXIT_OK;
}

int replay_one(const ReplayCliOptions& o, const std::string& path, nlohmann::json& jout) {
  SourceOptions so;
  so.strict = o.strict;
  std::unique_ptr<EventSource> src = open_event_source(path, so);
  TraceEvent ev;
  bool more = src->next(ev);  // past a Program's header
  const ProgramHeader header = run_header(o, *src);
  if (header.diff != DiffMode::none) return replay_diff(o, *src, ev, more, header, jout);
  std::unordered_map<std::string, std::string> names;
  const bool live = !regular_file(path);  // stdin, a pipe: no second reading
  if (!live && !o.one_pass && !src->program_text()) {
    // A first pass names the caches of 6.1's unnamed kmem_cache_alloc events.
    SourceOptions quiet;
    auto first_pass = open_event_source(path, quiet);
    names = learn_cache_names(*first_pass);
  }

  const mm::MmConfig cfg = header.mm_config();
  mm::Mm m(cfg);
  StringTable strings;
  const ExecOptions eo = header.exec_options();
  Executor ex(m, strings, eo);
  ReplayOptions ro;
  ro.strict_frees = o.strict_frees;
  ro.cache_names = std::move(names);
  ro.tick_ns = o.tick_ms * 1000000;
  ro.page_shift = m.profile.page_shift;
  ro.max_order = m.page_alloc.max_order();
  if (m.slab.initialized()) ro.kmalloc_max_cache_size = m.slab.kmalloc_max_cache_size();
  std::optional<Replayer> rp;
  std::optional<KmemStat> kstat;
  if (o.stat || !o.report_dir.empty()) {  // the report always has the stat tables
    KmemStatOptions ko;
    ko.page_size = m.profile.page_size();
    ko.kmalloc_max_cache_size = ro.kmalloc_max_cache_size;
    ko.per_pointer = o.stat_alloc;
    ko.cache_names = ro.cache_names;  // places live objects by call site
    kstat.emplace(std::move(ko));
  }
  Timeline tl;
  std::unordered_map<std::string, std::uint32_t> cache_ix;
  const bool timeline = !o.report_dir.empty();
  std::size_t marked = 0;
  Progress progress(o.progress);

  ro.literal = src->program_text();
  // Live: each finding prints as it happens (a pipe never reaches its end).
  std::size_t shown = 0;
  const auto show_new = [&] {
    if (!live || o.quiet || ex.findings().size() == shown) return;
    progress.clear();
    for (; shown < ex.findings().size(); ++shown)
      std::fputs(finding_text(ex.findings()[shown], strings).c_str(), stdout);
    std::fflush(stdout);
  };
  for (; more && !read_interrupted(); more = src->next(ev)) {
    if (!rp) rp.emplace(&ex, strings, ro);
    if (kstat) kstat->add(ev);
    rp->feed(ev, src->line());
    show_new();
    const std::uint64_t n = rp->stats().events;
    progress.update(*src, n);
    if (timeline) {
      if (n % 1000 == 0) tl.add(sample(m, ex, ev.ts_ns, n, tl, cache_ix));
      for (; marked < ex.findings().size(); ++marked)
        tl.violations.push_back({ev.ts_ns, n, ex.findings()[marked].violation.invariant,
                                 ex.findings()[marked].violation.title});
    }
  }
  if (!rp) rp.emplace(&ex, strings, ro);
  const bool interrupted = read_interrupted() || src->interrupted();
  if (!interrupted && rp->stats().events == 0 && !src->program_text())
    throw mm::ConfigError("no kmem events in " +
                          (o.display_name.empty() ? src->name() : o.display_name));
  rp->finish();
  progress.done();
  const Verdict vd = ex.finish();
  const ReplayStats& st = rp->stats();
  const SourceStats& ss = src->stats();
  if (timeline) {
    tl.add(sample(m, ex, st.last_ts, st.events, tl, cache_ix));
    for (; marked < vd.findings.size(); ++marked)
      tl.violations.push_back({st.last_ts, st.events, vd.findings[marked].violation.invariant,
                               vd.findings[marked].violation.title});
  }

  const std::uint64_t nr_violations = vd.nr_violations;

  const std::string fidelity = rp->fidelity_report(5);
  const std::string name = o.display_name.empty() ? src->name() : o.display_name;
  const std::string slabinfo = m.slab.initialized() ? slabinfo_top(m, o.top) : "";
  const std::string buddyinfo = mm::procfs::buddyinfo(m);
  const double secs =
      st.last_ts > st.first_ts ? static_cast<double>(st.last_ts - st.first_ts) / 1e9 : 0.0;
  const std::string format =
      src->format() == SourceFormat::trace_dat
          ? "trace.dat"
          : (rp->stats().events && ro.literal ? "mmfuzz program"
                                              : text_format_name(src->text_format()));
  const char* comp = src->compression() == Compression::zstd   ? ", zstd"
                     : src->compression() == Compression::gzip ? ", gzip"
                                                               : "";
  // Distinct signatures, and the ones the Program's finder saw (# expect:).
  std::vector<std::string> sigs;
  for (const auto& f : vd.findings)
    if (std::find(sigs.begin(), sigs.end(), f.violation.signature()) == sigs.end())
      sigs.push_back(f.violation.signature());
  std::vector<std::pair<std::string, bool>> expected;
  for (const auto& e : header.expect)
    expected.emplace_back(e, std::find(sigs.begin(), sigs.end(), e) != sigs.end());
  ReplayView view{header, eo,    m,        ex,          *rp,   strings,  vd,       st,
                  ss,     kstat, name,     format,      comp,  fidelity, slabinfo, buddyinfo,
                  secs,   sigs,  expected, interrupted, shown, {}};
  if (!live && !vd.findings.empty() && src->format() != SourceFormat::trace_dat) {
    const auto text = finding_lines(path, vd);
    view.lines = [text](std::uint64_t l) -> const std::string* {
      const auto it = text->find(l);
      return it == text->end() || it->second.empty() ? nullptr : &it->second;
    };
  }
  if (!o.quiet) print_replay(o, view);
  jout.push_back(replay_json(o, view));
  if (!o.report_dir.empty()) write_replay_report(o, view, tl);
  if (!o.fidelity_record.empty())
    write_file_atomic(o.fidelity_record,
                      dump_json(fidelity_baseline(rp->fidelity(), name), 2) + "\n");
  bool below = false;
  if (!o.fidelity_baseline.empty() && !interrupted)
    for (const std::string& l : below_baseline(rp->fidelity(), o.baseline, o.fidelity_baseline)) {
      std::fprintf(stderr, "mmfuzz replay: fidelity below its baseline (%s): %s\n",
                   o.fidelity_baseline.c_str(), l.c_str());
      below = true;
    }
  return nr_violations || below ? EXIT_VIOLATIONS : EXIT_OK;
}

// An output path must be writable before a long replay starts, not after:
// a file is tried by creating its temporary (write_file_atomic's), a
// directory is made and a file tried in it.
void check_output(const std::string& path, const char* flag, bool dir) {
  if (path.empty()) return;
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !dir && S_ISDIR(st.st_mode))
    throw mm::ConfigError(fmt::format("{} {}: is a directory", flag, path));
  if (exists && dir && !S_ISDIR(st.st_mode))
    throw mm::ConfigError(fmt::format("{} {}: not a directory", flag, path));
  if (dir && !exists && ::mkdir(path.c_str(), 0777) != 0)
    throw mm::ConfigError(fmt::format("{} {}: {}", flag, path, std::strerror(errno)));
  const std::string probe = dir ? path + "/.mmfuzz-probe" : path + ".tmp";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EEXIST)
    throw mm::ConfigError(fmt::format("{} {}: {}", flag, path, std::strerror(errno)));
  if (fd >= 0) {
    ::close(fd);
    ::unlink(probe.c_str());
  }
}

// SIGINT/SIGTERM end the reading (trace::read_interrupted()); the replay
// then reports what it read. A second one kills as usual.
extern "C" void on_stop_signal(int sig) {
  if (read_interrupted()) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  read_interrupted() = 1;
}

class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked read() returns EINTR
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// The embedded default trace as a file the readers can open (twice: the
// cache-name pass and the replay): a memfd, named by /proc/self/fd/N.
std::string embedded_trace_path() {
  const int fd = memfd_create(MMFUZZ_DEFAULT_TRACE_NAME, MFD_CLOEXEC);
  if (fd < 0) throw mm::ConfigError(std::string("memfd_create: ") + std::strerror(errno));
  const char* p = mmfuzz_default_trace;
  while (p < mmfuzz_default_trace_end) {
    const ssize_t n = write(fd, p, static_cast<std::size_t>(mmfuzz_default_trace_end - p));
    if (n <= 0) throw mm::ConfigError(std::string("embedded trace: ") + std::strerror(errno));
    p += n;
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

int run_replay(ReplayCliOptions o) {
  if (o.traces.empty()) {
    o.traces.push_back(embedded_trace_path());
    o.display_name = "embedded " MMFUZZ_DEFAULT_TRACE_NAME;
  }
  if (std::count(o.traces.begin(), o.traces.end(), "-") > 1)
    throw mm::ConfigError("standard input ('-') can be replayed only once");
  o.progress = !o.quiet && isatty(STDERR_FILENO);
  // A bad selection is an error before any trace is read.
  if (!o.checks.empty()) inv::CheckSelection::parse(o.checks);
  check_output(o.json, "--json", false);
  check_output(o.report_dir, "--report", true);
  check_output(o.fidelity_record, "--fidelity-record", false);
  if ((!o.fidelity_baseline.empty() || !o.fidelity_record.empty()) && o.traces.size() != 1)
    throw mm::ConfigError("--fidelity-baseline and --fidelity-record take one trace");
  if (!o.fidelity_baseline.empty()) {
    try {
      o.baseline = read_fidelity_baseline(o.fidelity_baseline);
      below_baseline(trace::fidelity_metrics(), o.baseline, o.fidelity_baseline);  // malformed?
    } catch (const std::invalid_argument& e) {
      throw mm::ConfigError(e.what());
    }
  }
  nlohmann::json all = nlohmann::json::array();
  int rc = EXIT_OK;
  const StopSignals signals;
  try {
    for (const auto& t : o.traces) {
      rc = std::max(rc, replay_one(o, t, all));
      if (read_interrupted()) break;
      if (!o.quiet && o.traces.size() > 1) std::printf("\n");
    }
  } catch (const InputError& e) {
    throw mm::ConfigError(e.what());
  }
  if (!o.json.empty())
    write_file_atomic(o.json, dump_json(all.size() == 1 ? all[0] : all, 2) + "\n");
  return rc;
}

}  // namespace

void register_replay(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<ReplayCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "replay",
      "replay kmem traces (ftrace, trace-cmd report or trace.dat, perf script, Program text; "
      "plain, gzip or zstd; '-' for stdin) through the model with every check on");
  sub->add_option("TRACE", opts->traces,
                  "trace files (default: the embedded real arm64 6.1 boot+shell trace)");
  opts->machine.add_to(*sub);
  sub->add_option("--check", opts->check,
                  "incremental (default), full or off; this and the options below override a "
                  "Program's header (reported on stderr)")
      ->check(CLI::IsMember({"incremental", "full", "off"}));
  sub->add_option("--check-every", opts->check_every,
                  "full invariant sweep every N ops (default: only at the end; 10000 with --check "
                  "full)");
  sub->add_option("--checks", opts->checks,
                  "invariants to check: globs, '-' excludes (default: the Program's, else all; "
                  "see mmfuzz checks)");
  sub->add_option("--json", opts->json, "write the verdict, statistics and violations as JSON");
  sub->add_option("--report", opts->report_dir,
                  "write a self-contained HTML report with plots to DIR/index.html");
  sub->add_flag("--strict", opts->strict, "a malformed kmem line is an error (default: a warning)");
  sub->add_flag("--strict-frees", opts->strict_frees,
                "the trace must show every allocation and free: a free of a pointer it never "
                "allocated, or an allocation of one still allocated, is a violation (trace.*)");
  sub->add_flag("--leaks", opts->leaks,
                "at the end, report the objects still allocated (slab.leak), grouped by call "
                "site and cache with their first and last allocation lines, as kmemleak lists "
                "suspects");
  sub->add_flag("--stat", opts->stat,
                "add what `perf kmem stat --slab --page --caller` reports, from the trace");
  sub->add_option("--stat-sort", opts->stat_sort,
                  "sort the --stat tables by perf kmem's keys, largest first: slab ptr, callsite, "
                  "hit, bytes, frag, pingpong; page page, callsite, hit, bytes, order, migtype, "
                  "gfp (default frag,hit,bytes and bytes,hit; implies --stat)")
      ->check(
          [](const std::string& keys) {
            try {
              parse_stat_sort(keys);
              return std::string();
            } catch (const std::invalid_argument& e) {
              return std::string(e.what());
            }
          },
          "KEYS");
  sub->add_flag("--stat-caller", opts->stat_caller,
                "add perf kmem's --caller table for pages (implies --stat)");
  sub->add_flag("--stat-alloc", opts->stat_alloc,
                "add perf kmem's --alloc tables: per pointer and per pfn (implies --stat)");
  sub->add_option("--tick-ms", opts->tick_ms,
                  "trace time between timer ticks (kswapd, cache_reap, lazy purge; default 1000)")
      ->check(CLI::Range(1ull, 3600000ull));
  sub->add_flag("--one-pass", opts->one_pass,
                "no first pass to learn the cache names 6.1's kmem_cache_alloc does not print "
                "(stdin is always one pass)");
  sub->add_option("--top", opts->top, "rows of the slabinfo and stat tables (0: all; default 20)");
  sub->add_flag("--quiet", opts->quiet, "print nothing; the exit code is the verdict");
  sub->add_option("--fidelity-baseline", opts->fidelity_baseline,
                  "exit 1 when a fidelity measure agrees less than this file records (written by "
                  "--fidelity-record): a policy regression");
  sub->add_option("--fidelity-record", opts->fidelity_record,
                  "write the replay's fidelity measures as a baseline file");
  sub->callback([opts, &run] {
    if (opts->stat_caller || opts->stat_alloc || !opts->stat_sort.empty()) opts->stat = true;
    run = [opts] { return run_replay(*opts); };
  });
}

}  // namespace mmfuzz::cli
