#include "program/report.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "program/text.h"

namespace mmfuzz::prog {

namespace {

// Executor::finish() reports the final sweep's violations at a pseudo-op.
bool at_final_sweep(const Finding& f) {
  return f.violation.op_name == "finish";
}

// The op as its trace line, without the column padding.
std::string op_line(const Finding& f, const StringTable& strings) {
  std::string s = format_op(f.op, strings);
  const std::size_t first = s.find_first_not_of(' ');
  return first == std::string::npos ? s : s.substr(first);
}

// Where the op came from. Only the provenance is read here; the op itself
// is shown as format_op prints it.
nlohmann::json op_json(const Finding& f, const StringTable& strings) {
  nlohmann::json j;
  j["index"] = f.op_index;
  j["kind"] = at_final_sweep(f) ? f.violation.op_name : op_kind_name(f.op.kind());
  if (at_final_sweep(f)) return j;
  j["text"] = op_line(f, strings);
  j["line"] = f.op.line;
  j["ts_ns"] = f.op.ts_ns;
  j["cpu"] = f.op.cpu;
  j["pid"] = f.op.pid;
  j["comm"] = strings.str(f.op.comm);
  j["call_site"] = strings.str(f.op.call_site);
  return j;
}

}  // namespace

std::string finding_text(const Finding& f, const StringTable& strings, bool with_stack) {
  std::string out = f.violation.to_text(with_stack);
  if (at_final_sweep(f))
    return out + fmt::format("  at the final sweep, after {} ops\n", f.op_index);
  out += fmt::format("  at op #{}", f.op_index);
  if (f.op.line) out += fmt::format(", trace line {}", f.op.line);
  return out + ": " + op_line(f, strings) + "\n";
}

nlohmann::json finding_json(const Finding& f, const StringTable& strings, bool with_stack) {
  nlohmann::json j = f.violation.to_json(with_stack);
  j["op_index"] = f.op_index;
  j["op"] = op_json(f, strings);
  return j;
}

std::string verdict_text(const Verdict& v, const StringTable& strings) {
  std::string out;
  for (const Finding& f : v.findings) out += finding_text(f, strings);
  if (v.nr_violations > v.findings.size())
    out += fmt::format("... {} more violations not shown\n", v.nr_violations - v.findings.size());
  out += fmt::format("verdict: {} ({} violation{})\n", v.ok() ? "clean" : "VIOLATIONS",
                     v.nr_violations, v.nr_violations == 1 ? "" : "s");
  return out;
}

nlohmann::json verdict_json(const Verdict& v, const StringTable& strings) {
  nlohmann::json j;
  j["schema"] = "mmfuzz-verdict-1";
  j["verdict"] = v.ok() ? "clean" : "violations";
  j["violations_total"] = v.nr_violations;
  nlohmann::json findings = nlohmann::json::array();
  std::map<std::string, std::uint64_t> by_invariant;
  std::map<std::string, std::uint64_t> by_kind;
  for (const Finding& f : v.findings) {
    findings.push_back(finding_json(f, strings));
    ++by_invariant[f.violation.invariant];
    ++by_kind[inv::kind_name(f.violation.kind)];
  }
  j["findings"] = std::move(findings);
  const std::uint64_t kept = v.findings.size();
  j["counts"] = {{"findings", kept},
                 {"omitted", v.nr_violations > kept ? v.nr_violations - kept : 0},
                 {"by_invariant", by_invariant},
                 {"by_kind", by_kind}};
  j["ops"] = {{"run", v.ops}, {"skipped", v.skipped_ops}, {"skip_reasons", v.skip_reasons}};
  j["full_sweeps"] = v.full_sweeps;
  return j;
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mmfuzz::prog
