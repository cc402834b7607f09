// The report writer (program/report.h): a Verdict with findings as text and
// as JSON, every field of the schema docs/replay.md describes; and findings
// raised outside the model (the trace family) through the Executor's
// checkers: selected, capped, with the op's provenance.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "invariants/trace.h"
#include "mm/mm.h"
#include "program/executor.h"
#include "program/report.h"
#include "program/text.h"

namespace mmfuzz::prog {
namespace {

// A double free on CPU 1 by cat-34 at text line 4, and a free of a handle
// never bound (skipped).
const char* const kDoubleFree =
    "# mmfuzz program v1\n"
    "  sh-12 [000] ..... 1.000000: kmalloc: call_site=f+0x1/0x2 ptr=0000000000000001 "
    "bytes_req=64 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false\n"
    "  sh-12 [000] ..... 1.000001: kfree: call_site=g+0x1/0x2 ptr=0000000000000001\n"
    "  cat-34 [001] ..... 1.000002: kfree: call_site=h+0x1/0x2 ptr=0000000000000001\n"
    "  cat-34 [001] ..... 1.000003: kfree: call_site=h+0x1/0x2 ptr=0000000000000009\n";

mm::MmConfig small() {
  mm::MmConfig c;
  c.machine = mm::small_machine();
  return c;
}

TEST(Report, VerdictJsonHasEveryField) {
  const Program p = parse_program(kDoubleFree);
  const Verdict v = Executor::run(p, small());
  ASSERT_FALSE(v.ok());
  // Through text, as a reader gets it.
  const nlohmann::json j = nlohmann::json::parse(dump_json(verdict_json(v, p.strings), 2));
  EXPECT_EQ(j["schema"], "mmfuzz-verdict-1");
  EXPECT_EQ(j["verdict"], "violations");
  EXPECT_EQ(j["violations_total"], v.nr_violations);
  EXPECT_EQ(j["ops"]["run"], 4);
  EXPECT_EQ(j["ops"]["skipped"], 1);
  EXPECT_EQ(j["ops"]["skip_reasons"]["kfree: unbound object handle"], 1);
  EXPECT_TRUE(j["full_sweeps"].is_number());
  EXPECT_EQ(j["counts"]["findings"], v.findings.size());
  EXPECT_EQ(j["counts"]["omitted"], 0);
  EXPECT_GE(j["counts"]["by_invariant"]["slab.double_free"], 1);
  EXPECT_GE(j["counts"]["by_kind"]["misuse"], 1);
  ASSERT_TRUE(j["findings"].is_array());
  ASSERT_FALSE(j["findings"].empty());
  // The ops' view first (trace.double_free), then the model's.
  EXPECT_EQ(j["findings"][0]["invariant"], "trace.double_free");
  ASSERT_GE(j["findings"].size(), 2u);
  const nlohmann::json& f = j["findings"][1];
  EXPECT_EQ(f["invariant"], "slab.double_free");
  EXPECT_EQ(f["kind"], "misuse");
  EXPECT_EQ(f["subsystem"], "slab");
  EXPECT_EQ(f["signature"], "slab.double_free|kfree|slab");
  EXPECT_TRUE(f["title"].is_string() && !f["title"].get<std::string>().empty());
  EXPECT_TRUE(f["details"].is_array());
  EXPECT_EQ(f["op_index"], 2);
  EXPECT_TRUE(f["addrs"].is_array());
  EXPECT_TRUE(f["pfns"].is_array());
  EXPECT_TRUE(f["history"].is_array());
  const nlohmann::json& op = f["op"];
  EXPECT_EQ(op["index"], 2);
  EXPECT_EQ(op["kind"], "kfree");
  EXPECT_EQ(op["line"], 4);
  EXPECT_EQ(op["ts_ns"], 1000002000);
  EXPECT_EQ(op["cpu"], 1);
  EXPECT_EQ(op["pid"], 34);
  EXPECT_EQ(op["comm"], "cat");
  EXPECT_EQ(op["call_site"], "h+0x1/0x2");
  EXPECT_NE(op["text"].get<std::string>().find("kfree: call_site=h+0x1/0x2"), std::string::npos)
      << op["text"];
  EXPECT_FALSE(j.contains("host_stack"));
}

TEST(Report, VerdictTextNamesTheOpAndTheVerdict) {
  const Program p = parse_program(kDoubleFree);
  const Verdict v = Executor::run(p, small());
  const std::string t = verdict_text(v, p.strings);
  EXPECT_NE(t.find("mmfuzz: misuse slab.double_free (slab)"), std::string::npos) << t;
  EXPECT_NE(t.find("  at op #2, trace line 4: cat-34"), std::string::npos) << t;
  EXPECT_NE(t.find("kfree: call_site=h+0x1/0x2 ptr=0000000000000001"), std::string::npos) << t;
  EXPECT_NE(t.find("verdict: VIOLATIONS ("), std::string::npos) << t;
  // Past max_findings: counted, not shown.
  ExecOptions eo;
  eo.max_findings = 0;
  const Verdict few = Executor::run(p, small(), eo);
  EXPECT_NE(verdict_text(few, p.strings).find("more violations not shown"), std::string::npos);
  EXPECT_EQ(verdict_json(few, p.strings)["counts"]["omitted"], few.nr_violations);
  const Verdict clean = Executor::run(parse_program("# mmfuzz program v1\n"), small());
  EXPECT_EQ(verdict_text(clean, p.strings), "verdict: clean (0 violations)\n");
  EXPECT_EQ(verdict_json(clean, p.strings)["verdict"], "clean");
}

TEST(Report, JsonOfBadBytesDoesNotThrow) {
  nlohmann::json j;
  j["comm"] = std::string("sh\xff\xfe");
  std::string s;
  ASSERT_NO_THROW(s = dump_json(j));
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_NE(s.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
}

// The trace family through the Executor's checkers: kept when selected, with
// the op's provenance; dropped when deselected or with checks off; capped
// per invariant like every other.
TEST(Report, TraceFindingsGoThroughTheCheckers) {
  const Program p = parse_program(kDoubleFree);
  const Op& op = p.ops[3];
  const char* id = inv::trace_finding_id(inv::TraceFinding::unknown_free);
  auto run = [&](const char* checks, CheckMode mode, unsigned n) {
    mm::Mm m(small());
    ExecOptions eo;
    eo.checks = checks;
    eo.mode = mode;
    Executor ex(m, p.strings, eo);
    for (unsigned i = 0; i < n; ++i)
      if (ex.wants(id))
        ex.report(op, inv::trace_violation(inv::TraceFinding::unknown_free, "kfree", 0x1000 + i));
    return ex.finish();
  };
  const Verdict on = run("trace.unknown_free", CheckMode::incremental, 1);
  ASSERT_EQ(on.findings.size(), 1u);
  const Finding& f = on.findings[0];
  EXPECT_EQ(f.violation.invariant, "trace.unknown_free");
  EXPECT_EQ(f.violation.kind, inv::ViolationKind::misuse);
  EXPECT_EQ(f.violation.signature(), "trace.unknown_free|kfree|trace");
  EXPECT_EQ(f.op.line, 5u);
  EXPECT_EQ(f.op_index, 0u);
  EXPECT_NE(finding_text(f, p.strings).find("BUG: trace: kfree() of 0x1000"), std::string::npos)
      << finding_text(f, p.strings);
  EXPECT_TRUE(run("all,-trace.*", CheckMode::incremental, 1).ok());
  EXPECT_TRUE(run("buddy.*", CheckMode::incremental, 1).ok());
  EXPECT_TRUE(run("all", CheckMode::off, 1).ok());
  const Verdict many = run("all", CheckMode::incremental, 200);
  EXPECT_EQ(many.nr_violations, 64u);  // the Executor's cap per invariant
}

TEST(Report, TraceIdsAreSelectable) {
  const auto ids = inv::all_invariant_ids();
  for (int k = 0; k < inv::kNrTraceFindings; ++k) {
    const std::string id = inv::trace_finding_id(static_cast<inv::TraceFinding>(k));
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
    EXPECT_FALSE(inv::invariant_description(id).empty()) << id;
    EXPECT_TRUE(inv::CheckSelection::parse(id).enabled(id));
  }
  const auto sel = inv::CheckSelection::parse("all,-trace.*");
  EXPECT_FALSE(sel.enabled("trace.unknown_free"));
  EXPECT_TRUE(sel.enabled("slab.double_free"));
  EXPECT_NO_THROW(inv::CheckSelection::parse("trace.*"));
}

}  // namespace
}  // namespace mmfuzz::prog
