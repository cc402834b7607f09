// mmfuzz workload: a short built-in, seeded alloc/free workload over the whole
// page allocator API with every check on. It stands in for `mmfuzz replay`
// until Programs and trace replay land.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "invariants/checker.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::mm;

struct WorkloadOptions {
  MachineOptions machine;
  std::uint64_t ops = 20000;
  std::uint64_t seed = 1;
  std::string checks = "all";
  std::uint64_t full_every = 1000;
  std::string json;
  bool quiet = false;
};

using Rng = SplitMix64;

struct Live {
  pfn_t pfn;
  unsigned order;
  bool compound;
};

struct Stats {
  std::uint64_t allocs = 0, alloc_failures = 0, capped = 0, frees = 0, splits = 0, exacts = 0,
                refs = 0, cpu_switches = 0, drains = 0, ticks = 0, peak_live_pages = 0;
};

int run_workload(const WorkloadOptions& o) {
  const MmConfig cfg = o.machine.to_config();
  Mm m(cfg);
  inv::CheckOptions co;
  co.checks = o.checks;
  co.full_every = o.full_every;
  inv::CheckEngine engine(m, co);
  Rng rng{o.seed};
  std::vector<Live> live;
  std::uint64_t live_pages = 0;
  Stats st;
  static const gfp_t kGfps[] = {GFP_KERNEL,
                                GFP_KERNEL_ACCOUNT,
                                GFP_ATOMIC,
                                GFP_NOWAIT,
                                GFP_NOIO,
                                GFP_NOFS,
                                GFP_USER,
                                GFP_HIGHUSER_MOVABLE,
                                GFP_KERNEL | __GFP_RECLAIMABLE,
                                GFP_DMA | GFP_KERNEL,
                                GFP_DMA32 | GFP_KERNEL,
                                GFP_KERNEL | __GFP_COMP,
                                GFP_KERNEL | __GFP_ZERO,
                                GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN};
  const std::uint64_t cap_pages = m.page_alloc.totalram_pages * 3 / 4;
  auto drop = [&](std::size_t k) {
    const Live l = live[k];
    live[k] = live.back();
    live.pop_back();
    live_pages -= std::uint64_t{1} << l.order;
    return l;
  };
  for (std::uint64_t i = 0; i < o.ops; ++i) {
    const std::uint64_t dice = rng.below(100);
    std::string name;
    m.op_seq = static_cast<std::uint32_t>(i + 1);
    if (dice < 45 || live.empty()) {
      unsigned order = 0;
      const std::uint64_t r = rng.below(100);
      if (r >= 70)
        order =
            r < 90 ? 1 + static_cast<unsigned>(rng.below(3)) : static_cast<unsigned>(rng.below(11));
      gfp_t gfp = kGfps[rng.below(sizeof kGfps / sizeof kGfps[0])];
      if (rng.below(50) == 0) {
        order = m.profile.pageblock_order;
        gfp = GFP_TRANSHUGE_LIGHT;
      }
      name = "alloc_pages";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      // Keep a quarter of RAM free so the workload exercises more than OOM.
      const bool over_cap = live_pages + (std::uint64_t{1} << order) > cap_pages;
      const pfn_t p = over_cap ? NO_PAGE : m.page_alloc.alloc_pages(gfp, order);
      ++st.allocs;
      if (over_cap) {
        ++st.capped;
      } else if (p == NO_PAGE) {
        ++st.alloc_failures;
      } else {
        live.push_back({p, order, order && (gfp & __GFP_COMP)});
        live_pages += std::uint64_t{1} << order;
        st.peak_live_pages = std::max(st.peak_live_pages, live_pages);
      }
    } else if (dice < 80) {
      const Live l = drop(rng.below(live.size()));
      name = "__free_pages";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      if (rng.below(4) == 0) {
        name = "free_pages";
        m.page_alloc.free_pages(m.page_address(l.pfn), l.order);
      } else {
        m.page_alloc.__free_pages(l.pfn, l.order);
      }
      ++st.frees;
    } else if (dice < 84) {
      name = "split_page";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      const std::size_t k = rng.below(live.size());
      if (live[k].order && !live[k].compound) {
        const Live l = drop(k);
        m.page_alloc.split_page(l.pfn, l.order);
        for (pfn_t p = l.pfn; p < l.pfn + (pfn_t{1} << l.order); ++p) live.push_back({p, 0, false});
        live_pages += std::uint64_t{1} << l.order;
        ++st.splits;
      }
    } else if (dice < 87) {
      name = "alloc_pages_exact";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      const std::uint64_t size = 1 + rng.below(64 * m.profile.page_size());
      const vaddr_t va = m.page_alloc.alloc_pages_exact(size, GFP_KERNEL);
      if (va) m.page_alloc.free_pages_exact(va, size);
      ++st.exacts;
    } else if (dice < 91) {
      name = "get_page";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      const Live& l = live[rng.below(live.size())];
      m.page_alloc.get_page(l.pfn);
      m.page_alloc.put_page(l.pfn);
      ++st.refs;
    } else if (dice < 96) {
      name = "switch_cpu";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      m.set_cpu(static_cast<int>(rng.below(m.nr_cpus())));
      ++st.cpu_switches;
    } else if (dice < 98) {
      name = "drain_all_pages";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      m.page_alloc.drain_all_pages();
      ++st.drains;
    } else {
      name = "tick";
      engine.begin_op(static_cast<std::int64_t>(i), name);
      m.tick();
      ++st.ticks;
    }
    engine.end_op();
  }
  engine.begin_op(static_cast<std::int64_t>(o.ops), "teardown");
  for (const auto& l : live) m.page_alloc.__free_pages(l.pfn, l.order);
  m.page_alloc.drain_all_pages();
  engine.end_op();
  engine.finish();

  const auto& v = engine.violations();
  if (!o.quiet) {
    std::printf("workload: %llu ops on %s, machine %s (%llu MiB, %u CPUs, %u nodes), seed %llu\n",
                static_cast<unsigned long long>(o.ops), m.profile.name.c_str(),
                m.machine.name.c_str(), static_cast<unsigned long long>(m.machine.ram_size >> 20),
                m.machine.nr_cpus, m.machine.nr_nodes, static_cast<unsigned long long>(o.seed));
    std::printf(
        "  allocations %llu (%llu failed, %llu skipped at the live-set cap), frees %llu, splits "
        "%llu,\n"
        "  exact %llu, get/put %llu, cpu switches %llu, drains %llu, ticks %llu, peak %llu pages "
        "live\n",
        static_cast<unsigned long long>(st.allocs),
        static_cast<unsigned long long>(st.alloc_failures),
        static_cast<unsigned long long>(st.capped), static_cast<unsigned long long>(st.frees),
        static_cast<unsigned long long>(st.splits), static_cast<unsigned long long>(st.exacts),
        static_cast<unsigned long long>(st.refs), static_cast<unsigned long long>(st.cpu_switches),
        static_cast<unsigned long long>(st.drains), static_cast<unsigned long long>(st.ticks),
        static_cast<unsigned long long>(st.peak_live_pages));
    const auto& pa = m.page_alloc;
    std::printf("  page allocation failures: %llu, %llu of them warned\n",
                static_cast<unsigned long long>(pa.nr_alloc_failures),
                static_cast<unsigned long long>(pa.nr_alloc_warnings));
    for (std::size_t i = 0; i < std::min<std::size_t>(pa.alloc_warnings.size(), 3); ++i)
      std::printf("    op #%u: %s\n", pa.alloc_warnings[i].op_seq,
                  format_alloc_failure(pa.alloc_warnings[i]).c_str());
    std::printf("  checks '%s': incremental after every op, %llu full sweeps\n", o.checks.c_str(),
                static_cast<unsigned long long>(engine.nr_sweeps()));
    for (const auto& x : v) std::fputs(x.to_text().c_str(), stdout);
    std::printf("verdict: %s (%zu violation%s)\n", v.empty() ? "clean" : "VIOLATIONS", v.size(),
                v.size() == 1 ? "" : "s");
  }
  if (!o.json.empty()) {
    nlohmann::json j;
    j["verdict"] = v.empty() ? "clean" : "violations";
    j["ops"] = o.ops;
    j["seed"] = o.seed;
    j["profile"] = m.profile.name;
    j["full_sweeps"] = engine.nr_sweeps();
    j["violations"] = nlohmann::json::array();
    for (const auto& x : v) j["violations"].push_back(x.to_json());
    write_file_atomic(o.json, j.dump(2) + "\n");
  }
  return v.empty() ? EXIT_OK : EXIT_VIOLATIONS;
}

}  // namespace

void register_workload(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<WorkloadOptions>();
  CLI::App* sub = app.add_subcommand(
      "workload", "run a seeded alloc/free workload over the page allocator with all checks");
  opts->machine.add_to(*sub);
  sub->add_option("--ops", opts->ops, "number of operations (default 20000)")
      ->check(CLI::Range(1ull, 100000000ull));
  sub->add_option("--seed", opts->seed, "workload seed (default 1)");
  sub->add_option("--checks", opts->checks,
                  "invariants to check: globs, '-' excludes (default all; see mmfuzz checks)");
  sub->add_option("--full-every", opts->full_every,
                  "full invariant sweep every N ops; 0: only at the end (default 1000)");
  sub->add_option("--json", opts->json, "write the verdict and violations as JSON to this file");
  sub->add_flag("--quiet", opts->quiet, "print nothing; the exit code is the verdict");
  sub->callback([opts, &run] { run = [opts] { return run_workload(*opts); }; });
}

}  // namespace mmfuzz::cli
