// The built-in workload profile: the bundled arm64 6.1 boot-and-shell
// trace's (corpus/profiles/arm64-6.1-boot-shell.profile.json), embedded in
// the library at build time so that generators shaped by it run wherever
// the binary does. tests/test_props_gen.cpp recomputes it from the trace;
// corpus/README.md says how to regenerate it.
#pragma once

#include <string_view>

#include "analysis/workload_profile.h"

namespace mmfuzz::props {

inline constexpr std::string_view kBuiltinProfileFile = "arm64-6.1-boot-shell.profile.json";

// The embedded JSON document, as checked in.
std::string_view builtin_profile_json();
// The profile it holds, parsed once (thread-safe).
const analysis::WorkloadProfile& builtin_profile();

}  // namespace mmfuzz::props
