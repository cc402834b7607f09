#include "props/builtin_profile.h"

#include <nlohmann/json.hpp>

// props/builtin_profile_data.c: the JSON file between these two symbols.
extern "C" const char mmfuzz_builtin_profile[];
extern "C" const char mmfuzz_builtin_profile_end[];

namespace mmfuzz::props {

std::string_view builtin_profile_json() {
  return {mmfuzz_builtin_profile,
          static_cast<std::size_t>(mmfuzz_builtin_profile_end - mmfuzz_builtin_profile)};
}

const analysis::WorkloadProfile& builtin_profile() {
  // A bad embedded document is a build defect: from_json throws on first use.
  static const analysis::WorkloadProfile p =
      analysis::WorkloadProfile::from_json(nlohmann::json::parse(builtin_profile_json()));
  return p;
}

}  // namespace mmfuzz::props
