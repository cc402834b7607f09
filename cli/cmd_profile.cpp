// mmfuzz profile: one pass over a trace makes its workload profile (sizes,
// GFP masks, lifetimes, cache and call-site rates, CPU spread, page orders and
// migrate types; phases, bursts, per-call-site tables, cache geometry,
// mempool use and vmalloc sizes) as JSON for the property generators
// (props/shape.h) and fuzz decoders;
// --kmem-stat also prints what `perf kmem stat --slab --page --caller` would.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "analysis/kmem_stat.h"
#include "analysis/workload_profile.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "mm/page_alloc/gfp.h"
#include "trace/source.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::trace;
using namespace mmfuzz::analysis;

struct ProfileCmdOptions {
  std::string trace, out;
  unsigned top = 32;
  bool strict = false, quiet = false, kmem_stat = false;
};

std::string percent(std::uint64_t part, std::uint64_t whole) {
  return whole ? fmt::format("{:.1f}%",
                             100.0 * static_cast<double>(part) / static_cast<double>(whole))
               : "0%";
}

// Fail before a long read, not after: the output's directory must exist.
void check_output_dir(const std::string& out) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(out).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw mm::ConfigError(fmt::format("cannot write '{}': no directory '{}'", out, dir.string()));
  if (fs::is_directory(out, ec))
    throw mm::ConfigError(fmt::format("cannot write '{}': it is a directory", out));
}

std::string summary(const ProfileData& d, const EventSource& src, const std::string& out) {
  std::string s = fmt::format("profile: {} -> {}: {} events over {:.3f} s on {} CPU{}", src.name(),
                              out, d.events, static_cast<double>(d.duration_ns()) / 1e9,
                              d.cpu_events.size(), d.cpu_events.size() == 1 ? "" : "s");
  s += fmt::format("; {} slab allocations ({} kmalloc, {} kmem_cache_alloc", d.slab_allocs(),
                   d.kmalloc_sizes.count, d.cache_sizes.count);
  if (!d.kmalloc_sizes.top.empty())
    s += fmt::format(", commonest kmalloc size {} B", d.kmalloc_sizes.top[0].value);
  if (!d.slab_gfp.empty())
    s += fmt::format(", {} {}", mm::format_gfp(static_cast<mm::gfp_t>(d.slab_gfp[0].value)),
                     percent(d.slab_gfp[0].weight, d.slab_allocs()));
  s += fmt::format("), {} freed ({} on another CPU), {} never freed, {} kfree(NULL), {} free-only",
                   d.slab_frees, percent(d.slab_cross_cpu_frees, d.slab_frees),
                   percent(d.slab_life.never_freed, d.slab_life.freed + d.slab_life.never_freed),
                   d.slab_null_frees, d.slab_free_only);
  s += fmt::format("; {} page allocations ({} order 0), {} failed, {} freed, {} free-only",
                   d.page_allocs, percent(d.orders.empty() ? 0 : d.orders[0], d.page_allocs),
                   d.page_failures, d.page_frees, d.page_free_only);
  const SourceStats& st = src.stats();
  s += fmt::format("; {} phases, {} bursts (mean {:.2f}, longest {}), {} caches with geometry",
                   d.phases.size(), d.bursts.runs,
                   d.bursts.runs
                       ? static_cast<double>(d.bursts.allocs) / static_cast<double>(d.bursts.runs)
                       : 0.0,
                   d.bursts.longest, d.cache_geometry.size());
  s += fmt::format("; {} mempools created, {} elements allocated", d.mempool.creates,
                   d.mempool.slab_allocs + d.mempool.kmalloc_allocs);
  s += fmt::format("; vmalloc sizes from {} ({} areas)",
                   d.vmalloc.source == "default" ? "the default table" : d.vmalloc.source,
                   d.vmalloc.areas);
  if (st.malformed) s += fmt::format("; {} malformed lines skipped", st.malformed);
  if (st.lost_events) s += fmt::format("; {} events lost by the tracer", st.lost_events);
  return s + ".\n";
}

int run_profile(const ProfileCmdOptions& o) {
  try {
    SourceOptions so;
    so.strict = o.strict;
    auto src = open_event_source(o.trace, so);
    check_output_dir(o.out);
    ProfileOptions po;
    po.top_n = o.top;
    // The trace's file name, not its path: the same profile wherever it is made.
    const std::string source =
        o.trace == "-" ? src->name() : std::filesystem::path(o.trace).filename().string();
    WorkloadProfile profile(source, po);
    KmemStat stat;
    TraceEvent ev;
    while (src->next(ev)) {
      profile.add(ev);
      if (o.kmem_stat) stat.add(ev);
    }
    profile.finish();
    write_file_atomic(o.out, profile.to_json().dump(2) + "\n");
    if (o.kmem_stat) std::fputs(stat.report(o.top).c_str(), stdout);
    if (!o.quiet) std::fputs(summary(profile.data(), *src, o.out).c_str(), stdout);
    return EXIT_OK;
  } catch (const InputError& e) {
    std::fprintf(stderr, "mmfuzz: error: %s\n", e.what());
    return EXIT_USAGE;
  }
}

}  // namespace

void register_profile(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<ProfileCmdOptions>();
  CLI::App* sub = app.add_subcommand(
      "profile",
      "make a trace's workload profile (JSON: sizes, GFP masks, lifetimes, rates, orders) for "
      "the generators; --kmem-stat prints perf kmem stat's tables too");
  sub->add_option("TRACE", opts->trace, "the trace ('-' for stdin)")->required();
  sub->add_option("-o,--output", opts->out, "the profile JSON to write")->required();
  sub->add_option("--top", opts->top,
                  "rows kept in the top-N tables (sizes, GFP masks, call sites) and printed by "
                  "--kmem-stat (default 32)")
      ->check(CLI::Range(1u, 100000u));
  sub->add_flag("--kmem-stat", opts->kmem_stat,
                "also print what `perf kmem stat --slab --page --caller` reports, and more");
  sub->add_flag("--strict", opts->strict, "a malformed kmem line is an error");
  sub->add_flag("--quiet", opts->quiet, "no summary (--kmem-stat still prints its report)");
  sub->callback([opts, &run] { run = [opts] { return run_profile(*opts); }; });
}

}  // namespace mmfuzz::cli
