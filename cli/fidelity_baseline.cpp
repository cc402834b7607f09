#include "cli/fidelity_baseline.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace mmfuzz::cli {

namespace {
constexpr const char* kFormat = "mmfuzz-fidelity-1";
}  // namespace

nlohmann::json fidelity_baseline(const std::vector<trace::FidelityMetric>& fid,
                                 const std::string& source) {
  nlohmann::json m = nlohmann::json::object();
  for (const trace::FidelityMetric& f : fid)
    if (f.total) m[f.name] = {{"agree", f.agree}, {"total", f.total}, {"percent", f.percent()}};
  return {{"format", kFormat}, {"source", source}, {"metrics", m}};
}

nlohmann::json read_fidelity_baseline(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument("--fidelity-baseline: cannot read " + file);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument("--fidelity-baseline: " + file + " is not JSON");
  }
}

std::vector<std::string> below_baseline(const std::vector<trace::FidelityMetric>& fid,
                                        const nlohmann::json& baseline, const std::string& file) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("--fidelity-baseline: " + file + ": " + why);
  };
  if (!baseline.is_object() || baseline.value("format", "") != kFormat)
    throw bad(std::string("not a ") + kFormat + " document");
  if (!baseline.contains("metrics") || !baseline["metrics"].is_object())
    throw bad("no \"metrics\" object");
  std::vector<std::string> lines;
  for (const auto& [name, rec] : baseline["metrics"].items()) {
    if (!rec.is_object() || !rec.contains("agree") || !rec.contains("total") ||
        !rec["agree"].is_number_unsigned() || !rec["total"].is_number_unsigned() ||
        rec["agree"].get<std::uint64_t>() > rec["total"].get<std::uint64_t>() ||
        rec["total"].get<std::uint64_t>() == 0)
      throw bad("measure \"" + name + "\" needs agree <= total, total > 0");
    const std::string& wanted = name;  // clang 14: no structured binding in a lambda
    const auto it = std::find_if(fid.begin(), fid.end(),
                                 [&](const trace::FidelityMetric& f) { return f.name == wanted; });
    if (it == fid.end()) throw bad("unknown measure \"" + name + "\"");
    if (!it->total) continue;
    // agree/total < b_agree/b_total, in long double (counts below 2^53).
    const auto ba = rec["agree"].get<std::uint64_t>(), bt = rec["total"].get<std::uint64_t>();
    const long double now =
        static_cast<long double>(it->agree) / static_cast<long double>(it->total);
    const long double then = static_cast<long double>(ba) / static_cast<long double>(bt);
    if (now < then)
      lines.push_back(fmt::format(
          "{}: {:.2f}% agree ({} of {}), the baseline {:.2f}% ({} of {})", name, it->percent(),
          it->agree, it->total, 100.0 * static_cast<double>(ba) / static_cast<double>(bt), ba, bt));
  }
  return lines;
}

}  // namespace mmfuzz::cli
