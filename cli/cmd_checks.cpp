// mmfuzz checks: list the invariants and misuse classes --checks can select.
#include <cstdio>

#include "cli/commands.h"
#include "invariants/checker.h"

namespace mmfuzz::cli {

void register_checks(CLI::App& app, std::function<int()>& run) {
  CLI::App* sub =
      app.add_subcommand("checks", "list the invariants and misuse reports --checks selects from");
  sub->callback([&run] {
    run = [] {
      for (const auto& id : inv::all_invariant_ids())
        std::printf("%-32s %s\n", id.c_str(), inv::invariant_description(id).c_str());
      return EXIT_OK;
    };
  });
}

}  // namespace mmfuzz::cli
