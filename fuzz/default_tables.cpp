// The built-in decode tables: the workload profile of the bundled arm64 6.1
// boot trace, the one the property generators embed
// (corpus/profiles/arm64-6.1-boot-shell.profile.json, props/builtin_profile.h),
// so a fuzz target needs no files.
#include <cstdlib>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz/decoder.h"
#include "props/builtin_profile.h"

namespace mmfuzz::fuzz {

const DecodeTables& DecodeTables::builtin() {
  static const DecodeTables t = from_profile(props::builtin_profile());
  return t;
}

DecodeTables DecodeTables::from_env() {
  const char* path = std::getenv("MMFUZZ_PROFILE");
  if (!path || !*path) return builtin();
  std::ifstream in(path);
  if (!in) throw mm::ConfigError(std::string("MMFUZZ_PROFILE: cannot open ") + path);
  try {
    return from_profile(analysis::WorkloadProfile::from_json(nlohmann::json::parse(in)));
  } catch (const std::exception& e) {
    throw mm::ConfigError(std::string("MMFUZZ_PROFILE: ") + path + ": " + e.what());
  }
}

}  // namespace mmfuzz::fuzz
