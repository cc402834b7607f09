// mmfuzz: the command-line front door.
#include <cstdio>
#include <exception>
#include <functional>

#include "cli/commands.h"
#include "mm/types.h"

int main(int argc, char** argv) {
  using namespace mmfuzz::cli;
  CLI::App app{
      "mmfuzz: trace-driven fuzzing and property testing of a model of the Linux kernel memory "
      "manager"};
  app.set_version_flag("--version", "mmfuzz 0.1.0");
  app.footer(
      "Examples:\n"
      "  mmfuzz info --view meminfo,slabinfo      the model's /proc views\n"
      "  mmfuzz info --vmallocinfo                /proc/vmallocinfo\n"
      "  mmfuzz info --ptdump --rodata full       kernel_page_tables, linear map by pages\n"
      "  mmfuzz workload --ops 100000 --seed 7    a checked workload\n"
      "  mmfuzz campaign --engine afl --time 300  a fuzz campaign (ci/campaign.sh)\n"
      "  mmfuzz shrink crash --target slub        a crash to a minimal Program\n"
      "  mmfuzz prop --time 60                    the properties, shaped by the real trace\n"
      "Exit codes: 0 clean, 1 violations found, 2 bad usage or input.");
  app.require_subcommand(1);
  std::function<int()> run;
  register_replay(app, run);
  register_info(app, run);
  register_workload(app, run);
  register_checks(app, run);
  register_convert(app, run);
  register_profile(app, run);
  register_campaign(app, run);
  register_shrink(app, run);
  register_prop(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mmfuzz: %s (see mmfuzz --help)\n", e.what());
    return EXIT_USAGE;
  }
  try {
    return run ? run() : EXIT_USAGE;
  } catch (const mmfuzz::mm::ConfigError& e) {
    std::fprintf(stderr, "mmfuzz: error: %s\n", e.what());
    return EXIT_USAGE;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mmfuzz: internal error: %s\n", e.what());
    return EXIT_USAGE;
  }
}
