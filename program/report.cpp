#include "program/report.h"

#include <fmt/format.h>

#include <algorithm>
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
std::string op_line(const Op& op, const StringTable& strings) {
  std::string s = format_op(op, strings);
  const std::size_t first = s.find_first_not_of(' ');
  return first == std::string::npos ? s : s.substr(first);
}

// Where an op came from. Only the provenance is read here; the op itself
// is shown as format_op prints it.
nlohmann::json op_json(std::uint64_t index, const Op& op, const StringTable& strings) {
  nlohmann::json j;
  j["index"] = index;
  j["kind"] = op_kind_name(op.kind());
  j["text"] = op_line(op, strings);
  j["line"] = op.line;
  j["ts_ns"] = op.ts_ns;
  j["cpu"] = op.cpu;
  j["pid"] = op.pid;
  j["comm"] = strings.str(op.comm);
  j["call_site"] = strings.str(op.call_site);
  return j;
}

// The event name format_op gives the op ("kmalloc" in "...: kmalloc: ...").
std::string_view event_of(std::string_view text) {
  const std::size_t ts = text.find("]");
  const std::size_t colon = ts == std::string_view::npos ? ts : text.find(": ", ts);
  if (colon == std::string_view::npos) return {};
  const std::size_t end = text.find(':', colon + 2);
  return end == std::string_view::npos ? std::string_view{}
                                       : text.substr(colon + 2, end - colon - 2);
}

// The op's line: the input's own text when it is that op's event (an op the
// replay implied, e.g. a cache's creation, keeps its own form).
std::string quoted_op(const Op& op, const StringTable& strings, const LineText& lines) {
  std::string mine = op_line(op, strings);
  const std::string* raw = lines && op.line ? lines(op.line) : nullptr;
  const std::string_view ev = event_of(mine);
  if (!raw || ev.empty() || raw->find(fmt::format(" {}: ", ev)) == std::string::npos) return mine;
  const std::size_t first = raw->find_first_not_of(' ');
  return first == std::string::npos ? mine : raw->substr(first);
}

// "  at op #N, trace line L: <the op's line>"
std::string at_line(std::uint64_t index, const Op& op, const StringTable& strings,
                    const LineText& lines) {
  std::string out = fmt::format("  at op #{}", index);
  if (op.line) out += fmt::format(", trace line {}", op.line);
  return out + ": " + quoted_op(op, strings, lines) + "\n";
}

// One block of the KASAN-style history: "Allocated by task sh-522 on cpu 1
// at 11.234567s:" and the op's line.
std::string op_block(const char* what, std::uint64_t index, const Op& op,
                     const StringTable& strings, const LineText& lines) {
  std::string head = what;
  if (op.comm) head += fmt::format(" by task {}-{}", strings.str(op.comm), op.pid);
  if (op.cpu >= 0) head += fmt::format(" on cpu {}", op.cpu);
  if (op.ts_ns)
    head += fmt::format(" at {}.{:06}s", op.ts_ns / 1000000000, op.ts_ns % 1000000000 / 1000);
  return head + ":\n" + at_line(index, op, strings, lines);
}

// The object or pages the finding is about, in the Program's (the trace's)
// terms: its address there and in the model, who allocated and freed it,
// and the faulting op.
std::string program_view(const Finding& f, const StringTable& strings, const LineText& lines) {
  std::string out;
  if (f.handle) {
    const std::string where = f.space == Space::page ? fmt::format("pfn {:#x}", f.model_addr)
                                                     : fmt::format("{:#x}", f.model_addr);
    out += fmt::format("{} {:#x} is {}\n", space_name(f.space), f.handle,
                       f.model_addr ? where + " in the model" : "not in the model");
    if (f.allocated)
      out += "\n" + op_block("Allocated", f.allocated->index, f.allocated->op, strings, lines);
    if (f.freed) {
      const char* what = f.nr_frees > 1 ? "Last freed" : "Freed";
      out += "\n" + op_block(what, f.freed->index, f.freed->op, strings, lines);
    }
    out += "\n";
  }
  return out + op_block("The faulting op,", f.op_index, f.op, strings, lines);
}

}  // namespace

std::string finding_text(const Finding& f, const StringTable& strings, bool with_stack,
                         const LineText& lines) {
  if (at_final_sweep(f)) {
    return f.violation.to_text(with_stack) +
           fmt::format("  at the final sweep, after {} ops\n", f.op_index);
  }
  // The model's own history of the object is replaced by the ops' when the
  // Executor knows them: one numbering, the trace's lines.
  return f.violation.to_text(with_stack, program_view(f, strings, lines), !f.allocated && !f.freed);
}

nlohmann::json finding_json(const Finding& f, const StringTable& strings, bool with_stack) {
  nlohmann::json j = f.violation.to_json(with_stack);
  j["op_index"] = f.op_index;
  if (at_final_sweep(f)) {
    j["op"] = {{"index", f.op_index}, {"kind", f.violation.op_name}};
    return j;
  }
  j["op"] = op_json(f.op_index, f.op, strings);
  if (f.handle) {
    nlohmann::json& t = j["target"];
    t["space"] = space_name(f.space);
    t["handle"] = f.handle;
    t["model"] = f.model_addr;
    t["allocated"] = f.allocated ? op_json(f.allocated->index, f.allocated->op, strings)
                                 : nlohmann::json(nullptr);
    t["freed"] = f.freed ? op_json(f.freed->index, f.freed->op, strings) : nlohmann::json(nullptr);
    t["frees"] = f.nr_frees;
  }
  return j;
}

std::string verdict_text(const Verdict& v, const StringTable& strings, std::size_t shown,
                         const LineText& lines) {
  std::string out;
  shown = std::min(shown, v.findings.size());
  if (shown)
    out += fmt::format("({} finding{} printed above as {} happened)\n", shown,
                       shown == 1 ? "" : "s", shown == 1 ? "it" : "they");
  for (std::size_t i = shown; i < v.findings.size(); ++i)
    out += finding_text(v.findings[i], strings, false, lines);
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
