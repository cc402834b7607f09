// The built-in decode tables: the workload profile of the bundled arm64 6.1
// boot trace (fuzz/default_profile.json; scripts/make_fuzz_seeds.sh
// regenerates it), compiled in so a fuzz target needs no files.
#include <nlohmann/json.hpp>

#include "analysis/workload_profile.h"
#include "fuzz/decoder.h"

namespace mmfuzz::fuzz {

namespace {
constexpr const char kDefaultProfile[] =
#include "default_profile.inc"
    ;
}  // namespace

const DecodeTables& DecodeTables::builtin() {
  static const DecodeTables t = [] {
    const auto prof = analysis::WorkloadProfile::from_json(nlohmann::json::parse(kDefaultProfile));
    return from_profile(prof);
  }();
  return t;
}

}  // namespace mmfuzz::fuzz
