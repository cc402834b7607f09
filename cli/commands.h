#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mmfuzz::cli {

// Exit codes of every subcommand.
inline constexpr int EXIT_OK = 0;
inline constexpr int EXIT_VIOLATIONS = 1;
inline constexpr int EXIT_USAGE = 2;

// Each registers its subcommand and sets `run` when it is chosen.
void register_info(CLI::App& app, std::function<int()>& run);
void register_workload(CLI::App& app, std::function<int()>& run);
void register_checks(CLI::App& app, std::function<int()>& run);
void register_replay(CLI::App& app, std::function<int()>& run);
void register_convert(CLI::App& app, std::function<int()>& run);
void register_profile(CLI::App& app, std::function<int()>& run);
void register_campaign(CLI::App& app, std::function<int()>& run);
void register_shrink(CLI::App& app, std::function<int()>& run);
void register_prop(CLI::App& app, std::function<int()>& run);

}  // namespace mmfuzz::cli
