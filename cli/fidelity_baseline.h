// Fidelity as a test oracle: `mmfuzz replay --fidelity-record FILE` writes
// how often the model did what a trace says the kernel did, per measure;
// `--fidelity-baseline FILE` fails the replay (exit 1) when a measure
// agrees less than the file records. ctest holds the bundled traces to
// their baselines, so a policy change that makes the model decide otherwise
// than the kernel (a size class, a slab order, a migratetype, a failure)
// fails CI even when every invariant holds.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trace/replay.h"

namespace mmfuzz::cli {

// The baseline document of a replay's measures (format mmfuzz-fidelity-1).
nlohmann::json fidelity_baseline(const std::vector<trace::FidelityMetric>& fid,
                                 const std::string& source);
// One line for each measure that agrees less than `baseline` records (a
// measure the replay did not compare is not judged). Throws
// std::invalid_argument ("FILE: ...", one line) on a malformed baseline.
std::vector<std::string> below_baseline(const std::vector<trace::FidelityMetric>& fid,
                                        const nlohmann::json& baseline, const std::string& file);
// Reads FILE (std::invalid_argument on a missing or malformed one).
nlohmann::json read_fidelity_baseline(const std::string& file);

}  // namespace mmfuzz::cli
