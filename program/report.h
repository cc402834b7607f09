// The one report writer for Findings and Verdicts, whatever found them (the
// checkers, the model's misuse reports, the trace family): kernel-style text
// and JSON. `mmfuzz replay`, the fuzz harness's crash report and through it
// the campaign all print with it. The JSON schema is in docs/replay.md
// ("Findings"). Ops show only as format_op() prints them.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "program/executor.h"
#include "program/program.h"

namespace mmfuzz::prog {

// The input's own text of a line (a recorded trace's), when the caller can
// give it: the report quotes it instead of the op as format_op prints it
// (which has no page= pointer and names the cache a 6.1 allocation only
// implies). nullptr: not known.
using LineText = std::function<const std::string*(std::uint64_t line)>;

// The violation's kernel-style report, then the op it was seen at: "  at op
// #N, trace line L: <the op's line>" (or the final sweep's).
std::string finding_text(const Finding& f, const StringTable& strings, bool with_stack = false,
                         const LineText& lines = {});
// invariant, kind, subsystem, signature, title, details, op_index, op {index,
// kind, text, line, ts_ns, cpu, pid, comm, call_site}, pfns, addrs, object,
// cache, history (and host_stack with_stack).
nlohmann::json finding_json(const Finding& f, const StringTable& strings, bool with_stack = false);

// Every finding kept, "... N more" for the ones past ExecOptions::max_findings,
// then "verdict: clean (0 violations)" or "verdict: VIOLATIONS (N violations)".
// `shown`: the first findings, already printed as they happened (a live
// replay), are left out and counted.
std::string verdict_text(const Verdict& v, const StringTable& strings, std::size_t shown = 0,
                         const LineText& lines = {});
// schema, verdict, violations_total, findings, counts {findings, omitted,
// by_invariant, by_kind}, ops {run, skipped, skip_reasons}, full_sweeps.
nlohmann::json verdict_json(const Verdict& v, const StringTable& strings);

// JSON text that never throws: bytes that are not UTF-8 (a fuzzed cache name
// or comm) become U+FFFD. indent < 0: one line.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace mmfuzz::prog
