// mmfuzz prop: the properties (props/property.h) outside GoogleTest, from a
// printed seed; failures shrunk to Programs `mmfuzz replay` reproduces.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>

#include "analysis/workload_profile.h"
#include "cli/commands.h"
#include "props/runner.h"

namespace mmfuzz::cli {
namespace {

using namespace mmfuzz::props;

struct PropCliOptions {
  std::vector<std::string> names;
  std::string generator = "shaped";
  std::string profile;
  std::string seed;
  std::uint64_t runs = 0;
  double time = 0;
  std::size_t max_size = 200;
  unsigned jobs = 1;
  std::string corpus = "corpus/regressions/props";
  std::string out;
  std::string plant;
  std::string emit;
  bool list = false, no_shrink = false;
};

void print_result(const PropResult& r, std::uint64_t max_size, const std::string& gen) {
  if (!r.error.empty()) {
    std::printf("ERROR %-14s %s\n", r.name.c_str(), r.error.c_str());
    return;
  }
  if (!r.failed) {
    std::printf("ok    %-14s %6llu cases  %7llu ops  %5.1f s%s\n", r.name.c_str(),
                static_cast<unsigned long long>(r.cases), static_cast<unsigned long long>(r.ops),
                r.seconds,
                r.replayed ? fmt::format("  ({} saved replayed)", r.replayed).c_str() : "");
    return;
  }
  std::printf("FAIL  %-14s %s\n      %s\n", r.name.c_str(), r.signature.c_str(), r.title.c_str());
  if (r.batches)
    std::printf(
        "      after %llu cases; found at %zu ops, RapidCheck shrank it to %zu, the shrinker to "
        "%zu\n      again: mmfuzz prop %s --seed %llu --runs %llu --max-size %llu --generator "
        "%s\n",
        static_cast<unsigned long long>(r.cases), r.ops_found, r.ops_rc, r.ops_shrunk,
        r.name.c_str(), static_cast<unsigned long long>(r.seed),
        static_cast<unsigned long long>(r.runs), static_cast<unsigned long long>(max_size),
        gen.c_str());
  else
    std::printf("      a saved counterexample still fails\n");
  std::printf("      reproducer: %s\n      replay: mmfuzz replay %s\n", r.program.c_str(),
              r.program.c_str());
}

int run_prop_checked(const PropCliOptions& c) {
  if (c.list) {
    for (const PropertySpec& p : all_properties())
      std::printf("%-14s %s\n", p.name.c_str(), p.description.c_str());
    return EXIT_OK;
  }
  for (const std::string& n : c.names)
    if (!find_property(n)) {
      std::string known;
      for (const PropertySpec& q : all_properties()) known += (known.empty() ? "" : ", ") + q.name;
      throw std::invalid_argument(fmt::format("unknown property '{}' (properties: {})", n, known));
    }
  PropOptions o;
  std::optional<analysis::WorkloadProfile> profile;
  if (!c.profile.empty()) {
    std::ifstream in(c.profile);
    if (!in) throw std::invalid_argument("--profile: cannot read " + c.profile);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
      throw std::invalid_argument("--profile: " + c.profile + " is not JSON");
    }
    profile = analysis::WorkloadProfile::from_json(j);
    o.profile = &profile->data();
  }
  o.names = c.names;
  o.gen = c.generator == "uniform" ? GenKind::uniform : GenKind::shaped;
  o.runs = c.runs;
  o.seconds = c.time;
  o.max_size = c.max_size;
  o.jobs = c.jobs;
  o.corpus = c.corpus;
  o.out = c.out;
  o.shrink = !c.no_shrink;
  o.progress = ::isatty(2) && c.jobs <= 1;
  if (!c.plant.empty()) {
    const auto d = mm::parse_planted_defect(c.plant);
    if (!d) throw std::invalid_argument("unknown planted defect '" + c.plant + "'");
    if (*d != mm::PlantedDefect::none && !mm::kPlantedDefects)
      throw std::invalid_argument("this build has no planted defects (MMFUZZ_PLANTED_DEFECTS)");
    o.planted = *d;
  }
  if (c.seed.empty()) {
    o.seed = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  } else {
    std::size_t end = 0;
    o.seed = std::stoull(c.seed, &end, 0);
    if (end != c.seed.size()) throw std::invalid_argument("--seed: not a number: " + c.seed);
  }
  std::printf("mmfuzz prop: seed %llu, generator %s (%s), max size %zu ops%s\n",
              static_cast<unsigned long long>(o.seed), gen_kind_name(o.gen),
              o.gen == GenKind::uniform ? "flat tables"
              : c.profile.empty()       ? "built-in profile of the bundled trace"
                                        : c.profile.c_str(),
              o.max_size,
              o.planted != mm::PlantedDefect::none
                  ? fmt::format(", planted {}", mm::planted_defect_name(o.planted)).c_str()
                  : "");
  std::fflush(stdout);
  if (!c.emit.empty()) {
    std::size_t n = 0;
    try {
      n = emit_cases(o, c.emit);
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      throw std::invalid_argument("--emit: cannot write into " + c.emit + ": " + e.what());
    }
    std::printf("wrote %zu Programs into %s (not run)\n", n, c.emit.c_str());
    return EXIT_OK;
  }
  const std::vector<PropResult> results = run_properties(o);
  bool failed = false;
  for (const PropResult& r : results) {
    print_result(r, o.max_size, gen_kind_name(o.gen));
    failed = failed || r.failed;
  }
  if (!o.out.empty()) write_summary(o.out, o, results);
  return failed ? EXIT_VIOLATIONS : EXIT_OK;
}

int run_prop(const PropCliOptions& c) {
  try {
    return run_prop_checked(c);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mmfuzz: error: %s\n", e.what());
    return EXIT_USAGE;
  } catch (const std::out_of_range&) {
    std::fprintf(stderr, "mmfuzz: error: --seed: out of range: %s\n", c.seed.c_str());
    return EXIT_USAGE;
  }
}

}  // namespace

void register_prop(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<PropCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "prop",
      "run the properties (RapidCheck, Programs shaped by the bundled trace's profile) through "
      "the Executor with the reference-model oracles on; failures shrink to Programs in "
      "corpus/regressions/props/ that `mmfuzz replay` reproduces");
  sub->add_option("names", o->names, "properties to run (default: all; --list names them)");
  sub->add_flag("--list", o->list, "list the properties and exit");
  sub->add_option("--generator", o->generator, "shaped (default: by the trace profile) or uniform")
      ->check(CLI::IsMember({"shaped", "uniform"}));
  sub->add_option("--profile", o->profile,
                  "the shaped generator follows this profile (`mmfuzz profile -o FILE`; default: "
                  "the bundled trace's, built in)");
  sub->add_option("--seed", o->seed, "seed of the first batch (default: random, printed)");
  sub->add_option("--runs", o->runs, "cases per property (default 100, or as --time allows)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100000000}));
  sub->add_option("--time", o->time, "time budget in seconds for the whole run")
      ->check(CLI::Range(0.001, 1e8));
  sub->add_option("--max-size", o->max_size, "most ops in one generated Program (default 200)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  sub->add_option("--jobs", o->jobs, "properties run in parallel (forked workers; default 1)")
      ->check(CLI::Range(1u, 4096u));
  sub->add_option("--corpus", o->corpus,
                  "saved counterexamples: replayed first, new ones written here (default "
                  "corpus/regressions/props)");
  sub->add_option("--out", o->out, "write summary.md and junit.xml into this folder");
  sub->add_option("--plant", o->plant, "planted defect to switch on (self-test builds)");
  sub->add_option("--emit", o->emit,
                  "write the Programs the generator gives (--runs per property, default 100) "
                  "into this folder instead of running them");
  sub->add_flag("--no-shrink", o->no_shrink, "keep RapidCheck's counterexample unshrunk");
  sub->footer("Exit codes: 0 every property holds, 1 a property failed, 2 bad usage.");
  sub->callback([o, &run] { run = [o] { return run_prop(*o); }; });
}

}  // namespace mmfuzz::cli
