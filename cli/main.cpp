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
  app.require_subcommand(1);
  std::function<int()> run;
  register_info(app, run);
  register_workload(app, run);
  register_checks(app, run);
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
