// mmfuzz workload: a seeded Program (program/generate.h) over the page
// allocator, the slab layer and kernel VM, run through the Executor with every
// check on. -o writes the Program; `mmfuzz replay` runs it again.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "program/executor.h"
#include "program/generate.h"
#include "program/report.h"
#include "program/text.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::prog;

struct WorkloadCliOptions {
  MachineOptions machine;
  WorkloadSpec spec;
  std::string checks = "all";
  std::string json, out;
  bool no_run = false, quiet = false;
};

// What the run did, by op kind.
struct RunStats {
  std::array<std::uint64_t, kNrOpKinds> ops{}, failed{};
  std::uint64_t peak_objects = 0, peak_page_allocs = 0, peak_areas = 0;
};

RunStats run_program(Executor& ex, const Program& p) {
  RunStats st;
  for (const Op& op : p.ops) {
    const OpResult& r = ex.step(op);
    const auto k = static_cast<std::size_t>(op.kind());
    ++st.ops[k];
    if (r.ran && r.failed) ++st.failed[k];
    st.peak_objects = std::max(st.peak_objects, ex.live_objects());
    st.peak_page_allocs = std::max(st.peak_page_allocs, ex.live_page_allocs());
    st.peak_areas = std::max(st.peak_areas, ex.live_areas());
  }
  return st;
}

// "kmalloc 3042 (2 failed) · kfree 2391 · ..." in op order, 96 columns.
std::string op_counts(const RunStats& st) {
  std::string out, line = " ";
  for (std::size_t k = 0; k < st.ops.size(); ++k) {
    if (!st.ops[k]) continue;
    std::string item = fmt::format(" {} {}", op_kind_name(static_cast<OpKind>(k)), st.ops[k]);
    if (st.failed[k]) item += fmt::format(" ({} failed)", st.failed[k]);
    if (line.size() + item.size() > 96) {
      out += line + "\n";
      line = " ";
    }
    line += item;
  }
  return out + line + "\n";
}

void print_summary(const WorkloadCliOptions& o, const mm::Mm& m, const Program& p,
                   const RunStats& st, const Verdict& vd) {
  std::printf(
      "workload: %zu ops (seed %llu, %u%% slab, %u%% vm) on %s, machine %s (%llu MiB, %u CPUs, "
      "%u nodes)\n",
      p.ops.size(), static_cast<unsigned long long>(o.spec.seed), o.spec.slab_percent,
      o.spec.vm_percent, m.profile.name.c_str(), m.machine.name.c_str(),
      static_cast<unsigned long long>(m.machine.ram_size >> 20), m.machine.nr_cpus,
      m.machine.nr_nodes);
  std::fputs(op_counts(st).c_str(), stdout);
  std::printf(
      "  %llu ops skipped (they named a failed allocation); peak live: %llu objects, %llu "
      "page allocations, %llu areas\n",
      static_cast<unsigned long long>(vd.skipped_ops),
      static_cast<unsigned long long>(st.peak_objects),
      static_cast<unsigned long long>(st.peak_page_allocs),
      static_cast<unsigned long long>(st.peak_areas));
  const auto& pa = m.page_alloc;
  std::printf("  page allocation failures: %llu, %llu of them warned\n",
              static_cast<unsigned long long>(pa.nr_alloc_failures),
              static_cast<unsigned long long>(pa.nr_alloc_warnings));
  for (std::size_t i = 0; i < std::min<std::size_t>(pa.alloc_warnings.size(), 3); ++i)
    std::printf("    op #%u: %s\n", pa.alloc_warnings[i].op_seq,
                mm::format_alloc_failure(pa.alloc_warnings[i]).c_str());
  std::printf("  checks '%s': incremental after every op, %llu full sweeps\n", o.checks.c_str(),
              static_cast<unsigned long long>(vd.full_sweeps));
  std::fputs(verdict_text(vd, p.strings).c_str(), stdout);
}

void write_json(const WorkloadCliOptions& o, const mm::Mm& m, const Program& p, const Verdict& vd) {
  nlohmann::json j = verdict_json(vd, p.strings);
  j["seed"] = o.spec.seed;
  j["profile"] = m.profile.name;
  if (!o.out.empty()) j["program"] = o.out;
  write_file_atomic(o.json, dump_json(j, 2) + "\n");
}

int run_workload(const WorkloadCliOptions& o) {
  // The header states the machine and checks it runs with: the file
  // replays alone (`mmfuzz replay FILE`).
  ProgramHeader h;
  o.machine.apply_to(h, nullptr);
  ExecOptions eo = h.exec_options();
  eo.checks = o.checks;
  h.set_exec_options(eo);
  h.version = prog::kProgramVersion;
  h = h.resolved();
  mm::Mm m(h.mm_config());
  Program p = generate_workload(o.spec, MachineFacts::of(m));
  p.header = h;
  Executor ex(m, p.strings, eo);  // checks the --checks selection before anything is written
  // Written before it runs: a crash still leaves the Program to replay.
  if (!o.out.empty()) write_file_atomic(o.out, print_program(p));
  if (o.no_run) {
    if (!o.quiet) std::printf("workload: %zu ops written to %s\n", p.ops.size(), o.out.c_str());
    return EXIT_OK;
  }
  const RunStats st = run_program(ex, p);
  const Verdict vd = ex.finish();
  std::string saved = o.out;
  if (!vd.ok() && saved.empty()) {
    saved = fmt::format("workload-seed{}.trace", o.spec.seed);
    write_file_atomic(saved, print_program(p));
  }
  if (!o.quiet) {
    print_summary(o, m, p, st, vd);
    if (!vd.ok())
      std::printf("the Program is %s; reproduce with: mmfuzz replay %s\n", saved.c_str(),
                  saved.c_str());
  }
  if (!o.json.empty()) write_json(o, m, p, vd);
  return vd.ok() ? EXIT_OK : EXIT_VIOLATIONS;
}

}  // namespace

void register_workload(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<WorkloadCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "workload",
      "generate a seeded alloc/free Program over the page allocator, the slab layer and kernel VM "
      "and run it with all checks");
  opts->machine.add_to(*sub);
  sub->add_option("--ops", opts->spec.ops,
                  "the workload's length in ops, before its teardown (default 20000)")
      ->check(CLI::Range(1ull, 100000000ull));
  sub->add_option("--seed", opts->spec.seed, "workload seed (default 1)");
  sub->add_option("--checks", opts->checks,
                  "invariants to check: globs, '-' excludes (default all; see mmfuzz checks)");
  sub->add_option("--full-every", opts->spec.check_every,
                  "a full invariant sweep (a check op in the Program) every N ops; 0: only at the "
                  "end (default 1000)");
  sub->add_option("--slab-percent", opts->spec.slab_percent,
                  "percentage of steps that go to the slab layer and mempools (default 40)")
      ->check(CLI::Range(0u, 100u));
  sub->add_option("--vm-percent", opts->spec.vm_percent,
                  "percentage of steps that go to vmalloc/vmap/ioremap (default 10)")
      ->check(CLI::Range(0u, 100u));
  CLI::Option* out =
      sub->add_option("-o,--output", opts->out,
                      "write the Program here (its header states the machine: mmfuzz replay FILE "
                      "runs it again); on violations without -o it goes to workload-seedN.trace");
  sub->add_flag("--no-run", opts->no_run, "only write the Program (needs -o)")->needs(out);
  sub->add_option("--json", opts->json, "write the verdict and violations as JSON to this file");
  sub->add_flag("-q,--quiet", opts->quiet, "print nothing; the exit code is the verdict");
  sub->callback([opts, &run] { run = [opts] { return run_workload(*opts); }; });
}

}  // namespace mmfuzz::cli
