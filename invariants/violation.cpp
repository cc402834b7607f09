#include "invariants/violation.h"

#include <fmt/format.h>

#include <boost/stacktrace.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mmfuzz::inv {

class HostStack {
 public:
  boost::stacktrace::stacktrace frames;
};

const char* kind_name(ViolationKind k) {
  return k == ViolationKind::misuse ? "misuse" : "invariant";
}

std::string Violation::signature() const {
  return invariant + "|" + op_name + "|" + subsystem;
}

void Violation::capture_stack() {
  auto s = std::make_shared<HostStack>();
  host_stack = std::move(s);
}

std::string Violation::host_stack_text() const {
  if (!host_stack) return {};
  std::ostringstream os;
  std::size_t i = 0;
  for (const auto& f : host_stack->frames) {
    std::string name = f.name();
    std::string file = f.source_file();
    os << fmt::format(" #{:<2} {}", i++, name.empty() ? "??" : name);
    if (!file.empty()) os << " (" << file << ":" << f.source_line() << ")";
    os << "\n";
  }
  return os.str();
}

std::string Violation::to_text(bool with_stack, std::string_view extra, bool with_history) const {
  std::string out = "==================================================================\n";
  out += title + "\n";
  for (const auto& d : details) out += d + "\n";
  for (const auto& h : with_history ? history : std::vector<HistoryEntry>{}) {
    out += h.op_index >= 0 ? fmt::format("{} at op #{}", h.event, h.op_index)
                           : fmt::format("{} before the first op", h.event);
    if (h.cpu >= 0) out += fmt::format(" on cpu {}", h.cpu);
    if (!h.call_site.empty()) out += " by " + h.call_site;
    if (!h.detail.empty()) out += ": " + h.detail;
    out += "\n";
  }
  out += extra;
  out += fmt::format("mmfuzz: {} {} ({}), ", kind_name(kind), invariant, subsystem);
  out += op_index >= 0 ? fmt::format("after op #{} ({})\n", op_index, op_name)
                       : fmt::format("outside any op ({})\n", op_name.empty() ? "-" : op_name);
  if (with_stack && host_stack) out += "host stack:\n" + host_stack_text();
  out += "==================================================================\n";
  return out;
}

nlohmann::json Violation::to_json(bool with_stack) const {
  nlohmann::json j;
  j["kind"] = kind_name(kind);
  j["invariant"] = invariant;
  j["subsystem"] = subsystem;
  j["signature"] = signature();
  j["title"] = title;
  j["details"] = details;
  j["op_index"] = op_index;
  j["op"] = op_name;
  j["pfns"] = pfns;
  j["addrs"] = addrs;
  if (!object.empty()) j["object"] = object;
  if (!cache.empty()) j["cache"] = cache;
  auto& h = j["history"] = nlohmann::json::array();
  for (const auto& e : history)
    h.push_back({{"event", e.event},
                 {"op_index", e.op_index},
                 {"cpu", e.cpu},
                 {"call_site", e.call_site},
                 {"detail", e.detail}});
  if (with_stack && host_stack) j["host_stack"] = host_stack_text();
  return j;
}

}  // namespace mmfuzz::inv
