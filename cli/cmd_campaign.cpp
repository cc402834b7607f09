// mmfuzz campaign: a fuzz campaign over the fuzz targets. The work is done by
// ci/campaign.sh in the source tree (build, parallel fuzzing, corpus merge,
// crash deduplication and minimization, summary.md / junit.xml /
// results.sarif); this checks the flags and hands over to it.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "mm/planted.h"

#ifndef MMFUZZ_SOURCE_DIR
#define MMFUZZ_SOURCE_DIR "."
#endif

namespace mmfuzz::cli {
namespace {

const std::vector<std::string> kEngines = {"libfuzzer", "afl", "builtin"};
const std::vector<std::string> kTargets = {"page_alloc", "slub",       "slab",         "slob", "vm",
                                           "mm",         "trace_text", "program_text", "all"};
// Every planted defect of mm/planted.h (the self-test table covers the first five).
std::vector<std::string> plants() {
  std::vector<std::string> v;
  for (int d = 1; d < mm::kNrPlantedDefects; ++d)
    v.emplace_back(mm::planted_defect_name(static_cast<mm::PlantedDefect>(d)));
  return v;
}

struct CampaignOptions {
  std::string engine;
  std::vector<std::string> targets;
  unsigned time = 0, jobs = 0, prop_time = 0;
  std::string corpus, out, plant, expect, build_dir;
  bool no_build = false, no_minimize = false, update_corpus = false;
};

// The source tree the script lives in: $MMFUZZ_SOURCE_DIR, else the one this
// binary was built from.
std::string source_dir() {
  const char* env = std::getenv("MMFUZZ_SOURCE_DIR");
  return env != nullptr && *env != '\0' ? env : MMFUZZ_SOURCE_DIR;
}

int run_campaign(const CampaignOptions& o) {
  const std::string script = source_dir() + "/ci/campaign.sh";
  if (::access(script.c_str(), R_OK) != 0) {
    std::fprintf(stderr,
                 "mmfuzz: error: %s not found (mmfuzz campaign needs the source tree; set "
                 "MMFUZZ_SOURCE_DIR)\n",
                 script.c_str());
    return EXIT_USAGE;
  }
  std::vector<std::string> args = {"bash", script};
  const auto add = [&args](const char* flag, const std::string& value) {
    if (value.empty()) return;
    args.emplace_back(flag);
    args.push_back(value);
  };
  add("--engine", o.engine);
  std::string targets;
  for (const auto& t : o.targets) targets += (targets.empty() ? "" : ",") + t;
  add("--targets", targets);
  add("--time", o.time != 0 ? std::to_string(o.time) : "");
  add("--jobs", o.jobs != 0 ? std::to_string(o.jobs) : "");
  add("--corpus", o.corpus);
  add("--out", o.out);
  add("--plant", o.plant);
  add("--prop-time", o.prop_time != 0 ? std::to_string(o.prop_time) : "");
  add("--expect", o.expect);
  add("--build-dir", o.build_dir);
  if (o.no_build) args.emplace_back("--no-build");
  if (o.no_minimize) args.emplace_back("--no-minimize");
  if (o.update_corpus) args.emplace_back("--update-corpus");

  // The campaign shrinks crashes with this very binary (unless told another).
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0 && std::getenv("MMFUZZ_BIN") == nullptr) {
    self[n] = '\0';
    ::setenv("MMFUZZ_BIN", self, 1);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp("bash", argv.data());
  std::fprintf(stderr, "mmfuzz: error: cannot run bash %s: %s\n", script.c_str(),
               std::strerror(errno));
  return EXIT_USAGE;
}

}  // namespace

void register_campaign(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<CampaignOptions>();
  CLI::App* sub = app.add_subcommand(
      "campaign",
      "run a fuzz campaign (ci/campaign.sh): build, fuzz every target in parallel, merge the "
      "corpus, deduplicate and minimize crashes, write summary.md, junit.xml, results.sarif");
  sub->add_option("--engine", o->engine, "libfuzzer (default), afl or builtin (the plain driver)")
      ->check(CLI::IsMember(kEngines));
  sub->add_option("--targets", o->targets,
                  "targets, comma-separated: page_alloc slub slab slob vm mm trace_text "
                  "program_text, or all (default)")
      ->delimiter(',')
      ->check(CLI::IsMember(kTargets));
  sub->add_option("--time", o->time, "fuzzing time budget in seconds (default 60)")
      ->check(CLI::Range(1u, 100000000u));
  sub->add_option("--jobs", o->jobs, "cores to use (default: all)")->check(CLI::Range(1u, 4096u));
  sub->add_option("--corpus", o->corpus,
                  "corpus folder: seeds/<t>/, dict/<t>.dict, regressions/<t>/ (default corpus/)");
  sub->add_option("--out", o->out, "output folder (default campaign-out/)");
  sub->add_option("--prop-time", o->prop_time,
                  "then run the properties (mmfuzz prop) for this many seconds (default 0: not)")
      ->check(CLI::Range(0u, 100000000u));
  sub->add_option("--plant", o->plant, "planted defect to switch on (MMFUZZ_PLANT)")
      ->check(CLI::IsMember(plants()));
  sub->add_option("--expect", o->expect,
                  "self-test: exit 0 only if a crash whose signature contains this is found");
  sub->add_option("--build-dir", o->build_dir, "where the fuzz targets are built");
  sub->add_flag("--no-build", o->no_build, "use the fuzz targets already built");
  sub->add_flag("--no-minimize", o->no_minimize, "do not minimize crashes");
  sub->add_flag("--update-corpus", o->update_corpus,
                "merge new coverage back into <corpus>/seeds/<t>/");
  sub->footer(
      "Exit codes: 0 clean (with --expect: found), 1 a new violation (with --expect: not "
      "found), 2 bad usage or a build error.");
  sub->callback([o, &run] { run = [o] { return run_campaign(*o); }; });
}

}  // namespace mmfuzz::cli
