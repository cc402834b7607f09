// Differential runs (program/differential.h): one Program under SLUB, SLAB
// and SLOB, or under the 6.1 and 5.10 profiles, compared on what callers
// see. Generated workloads agree; a broken configuration does not. And trace
// windows (trace/window.h): slices of the bundled real trace, run from a
// fresh model, agree with what the trace says the kernel did.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "mm/mm.h"
#include "program/differential.h"
#include "program/generate.h"
#include "program/text.h"
#include "shrink/regression.h"
#include "shrink/shrink.h"
#include "trace/source.h"
#include "trace/window.h"

using namespace mmfuzz;
using prog::DiffDim;
using prog::DiffMode;
using prog::Op;
using prog::Program;

namespace {

std::size_t dim(DiffDim d) {
  return static_cast<std::size_t>(d);
}

prog::ProgramHeader diff_header(DiffMode mode, const char* ram = "32M") {
  prog::ProgramHeader h;
  h.version = prog::kProgramVersion;
  h.machine = "small";
  std::string err;
  EXPECT_TRUE(prog::set_header_key(h, "ram", ram, &err)) << err;
  h.diff = mode;
  return h.resolved();
}

Program workload(const prog::ProgramHeader& h, std::uint64_t ops, std::uint64_t seed) {
  const mm::Mm m(h.mm_config());
  prog::WorkloadSpec spec;
  spec.ops = ops;
  spec.seed = seed;
  Program p = prog::generate_workload(spec, prog::MachineFacts::of(m));
  p.header = h;
  return p;
}

std::string stats_text(const prog::DiffRun& r) {
  std::string s;
  for (std::size_t d = 0; d < prog::kNrDiffDims; ++d)
    s += std::string(prog::diff_dim_name(static_cast<DiffDim>(d))) + " " +
         std::to_string(r.stats.compared[d]) + "/" +
         std::to_string(r.stats.compared[d] + r.stats.excluded[d]) + "  ";
  return s + "parted " + std::to_string(r.stats.parted);
}

// The lines of a Program text, as a Program (no header: the caller's).
Program ops(const prog::ProgramHeader& h, const std::vector<std::string>& lines) {
  std::string text = prog::print_header(h);
  for (const auto& l : lines)
    text += "           <...>-0       [000] .....     0.000000: " + l + "\n";
  return prog::parse_program(text);
}

// kmalloc, fill with 0xff, kfree, kzalloc (SLOB reuses the block), read.
const std::vector<std::string> kReusedKzalloc = {
    "kmalloc: call_site=0x0 ptr=0000000007000001 bytes_req=64 bytes_alloc=0 "
    "gfp_flags=GFP_KERNEL node=-1 accounted=false",
    "mmfuzz_write: ptr=0000000007000001 offset=0 len=64 byte=0xff",
    "kfree: call_site=0x0 ptr=0000000007000001",
    "kmalloc: call_site=0x0 ptr=0000000007000002 bytes_req=64 bytes_alloc=0 "
    "gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false",
    "mmfuzz_read: ptr=0000000007000002 offset=0 len=64",
    "kfree: call_site=0x0 ptr=0000000007000002",
};

// ---- the header key ----

TEST(DiffHeader, RoundTripsAndPrintsOnlyWhenSet) {
  for (const DiffMode m : {DiffMode::slab, DiffMode::profile}) {
    const prog::ProgramHeader h = diff_header(m);
    const std::string text = prog::print_header(h);
    EXPECT_NE(text.find(std::string("# diff: ") + prog::diff_mode_name(m) + "\n"),
              std::string::npos)
        << text;
    prog::ProgramHeader back;
    std::string err;
    std::vector<std::string> lines;
    for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
      lines.push_back(text.substr(at, nl - at));
    ASSERT_TRUE(prog::read_header(lines, back, &err)) << err;
    EXPECT_EQ(back, h);
    EXPECT_EQ(prog::header_value(h, "diff"), prog::diff_mode_name(m));
  }
  // Absent: no line, and the header reads back without it.
  const std::string plain = prog::print_header(diff_header(DiffMode::none));
  EXPECT_EQ(plain.find("# diff:"), std::string::npos);
  const Program p = prog::parse_program(plain + "# diff: none\n");
  EXPECT_EQ(p.header.diff, DiffMode::none);
}

TEST(DiffHeader, BadValueIsAOneLineError) {
  prog::ProgramHeader h;
  std::string err;
  EXPECT_FALSE(prog::set_header_key(h, "diff", "slub", &err));
  EXPECT_NE(err.find("unknown value 'slub' (values: none, slab, profile)"), std::string::npos)
      << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
  // Repeated, and `diff: slab` without a slab layer.
  EXPECT_THROW(prog::parse_program("# mmfuzz program v2\n# diff: slab\n# diff: slab\n"),
               trace::InputError);
  try {
    prog::parse_program("# mmfuzz program v2\n# slab: none\n# diff: slab\n");
    ADD_FAILURE() << "no error";
  } catch (const trace::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("slab is none"), std::string::npos) << e.what();
  }
}

TEST(DiffConfigs, TheHeadersOwnConfigurationFirst) {
  prog::ProgramHeader h = diff_header(DiffMode::slab);
  h.slab = mm::SlabVariant::slob;
  h.expect = {"x|y|z"};
  const auto c = prog::diff_configs(h);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].name, "SLOB");
  EXPECT_EQ(c[1].name, "SLUB");
  EXPECT_EQ(c[2].name, "SLAB");
  EXPECT_EQ(c[2].header.slab, mm::SlabVariant::slab);
  for (const auto& x : c) {
    EXPECT_EQ(x.header.diff, DiffMode::none);
    EXPECT_TRUE(x.header.expect.empty());
    EXPECT_EQ(x.header.machine, "small");
  }
  const auto p = prog::diff_configs(diff_header(DiffMode::profile, "64M"));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "linux-6.1-arm64");
  EXPECT_EQ(p[1].name, "linux-5.10-arm64");
  EXPECT_EQ(p[1].header.profile, "linux-5.10-arm64");
  EXPECT_TRUE(prog::diff_configs(diff_header(DiffMode::none)).empty());
}

// ---- correct configurations agree ----

// Each dimension was compared, not only set aside: the agreement means
// something.
void expect_compared(const prog::DiffRun& r, bool blocked) {
  for (const DiffDim d : {DiffDim::ran, DiffDim::failed, DiffDim::contents, DiffDim::order,
                          DiffDim::migratetype, DiffDim::bytes_alloc, DiffDim::ksize})
    EXPECT_GT(r.stats.compared[dim(d)], 0u) << prog::diff_dim_name(d);
  if (blocked) {
    EXPECT_GT(r.stats.compared[dim(DiffDim::blocked)], 0u);
  }
  EXPECT_FALSE(r.stats.stopped_at) << r.stats.stopped_why;
}

TEST(Differential, GeneratedWorkloadsAgreeAcrossSlabAllocators) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const Program p = workload(diff_header(DiffMode::slab), 4000, seed);
    const prog::DiffRun r = prog::run_differential_full(p, false);
    EXPECT_FALSE(r.finding) << "seed " << seed << ": " << r.finding->violation.to_text();
    EXPECT_EQ(r.configs, (std::vector<std::string>{"SLUB", "SLAB", "SLOB"}));
    EXPECT_EQ(r.stats.ops, p.ops.size());
    expect_compared(r, true);
    std::printf("slab seed %llu: %s\n", static_cast<unsigned long long>(seed),
                stats_text(r).c_str());
  }
}

// 64 MiB: the 5.10 profile's 1 GiB sections need a 16 MiB memmap.
TEST(Differential, GeneratedWorkloadsAgreeAcrossProfiles) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const Program p = workload(diff_header(DiffMode::profile, "64M"), 4000, seed);
    const prog::DiffRun r = prog::run_differential_full(p, false);
    EXPECT_FALSE(r.finding) << "seed " << seed << ": " << r.finding->violation.to_text();
    expect_compared(r, true);
    std::printf("profile seed %llu: %s\n", static_cast<unsigned long long>(seed),
                stats_text(r).c_str());
  }
}

TEST(Differential, WithoutTheKeyNothingRuns) {
  const Program p = workload(diff_header(DiffMode::none), 100, 1);
  EXPECT_FALSE(prog::run_differential(p));
  EXPECT_EQ(prog::run_differential_full(p).stats.ops, 0u);
}

// ---- a broken configuration disagrees ----

// A Differential over freshly booted models the test owns.
struct Lockstep {
  explicit Lockstep(const Program& p) : configs(prog::diff_configs(p.header)) {
    for (const auto& c : configs) {
      models.push_back(std::make_unique<mm::Mm>(c.header.mm_config()));
      ptrs.push_back(models.back().get());
    }
    d = std::make_unique<prog::Differential>(ptrs, configs, p.strings, false);
  }
  std::vector<prog::DiffConfig> configs;
  std::vector<std::unique_ptr<mm::Mm>> models;
  std::vector<mm::Mm*> ptrs;
  std::unique_ptr<prog::Differential> d;
};

TEST(Differential, CorruptedBytesInOneConfigurationAreDiffContents) {
  const Program p = ops(diff_header(DiffMode::slab),
                        {"kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=64 bytes_alloc=0 "
                         "gfp_flags=GFP_KERNEL node=-1 accounted=false",
                         "mmfuzz_write: ptr=0000000000000001 offset=0 len=64 byte=0x5a",
                         "mmfuzz_read: ptr=0000000000000001 offset=0 len=64"});
  Lockstep l(p);
  ASSERT_TRUE(l.d->step(p.ops[0]));
  const mm::vaddr_t obj = l.d->executor(1).last().addr;
  ASSERT_TRUE(l.d->step(p.ops[1]));
  // SLAB's copy of byte 10 changes behind the Program's back.
  const std::uint8_t bad[1] = {0x00};
  l.d->model(1).ram.write(l.d->model(1).__pa(obj + 10), bad);
  EXPECT_FALSE(l.d->step(p.ops[2]));
  ASSERT_TRUE(l.d->finding());
  const auto& v = l.d->finding()->violation;
  EXPECT_EQ(v.signature(), "diff.contents|read|diff");
  EXPECT_EQ(l.d->finding()->op_index, 2u);
  EXPECT_NE(v.title.find("op 2 read(object 0x1, 64 bytes at 0): SLUB read 0x5a at offset 10, SLAB "
                         "read 0x00 at offset 10, SLOB read 0x5a at offset 10"),
            std::string::npos)
      << v.title;
  // Untouched, the same Program agrees.
  EXPECT_FALSE(prog::run_differential(p));
}

TEST(Differential, AnAllocatorFailingWithPlentyOfMemoryIsDiffFailed) {
  const Program p = ops(diff_header(DiffMode::slab),
                        {"kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=96 bytes_alloc=0 "
                         "gfp_flags=GFP_KERNEL node=-1 accounted=false"});
  Lockstep l(p);
  // SLAB loses its kmalloc caches: kmalloc() returns NULL with memory to spare.
  for (auto& type : l.d->model(1).slab.kmalloc_caches) type.fill(0);
  EXPECT_FALSE(l.d->step(p.ops[0]));
  ASSERT_TRUE(l.d->finding());
  const auto& v = l.d->finding()->violation;
  EXPECT_EQ(v.signature(), "diff.failed|kmalloc|diff");
  EXPECT_NE(v.title.find("op 0 kmalloc(96): SLUB succeeded, SLAB failed, SLOB succeeded"),
            std::string::npos)
      << v.title;
  EXPECT_NE(v.to_text().find("memory was plentiful under SLAB"), std::string::npos);
}

// Failing for want of memory is no bug: the configurations part, the handle
// is set aside, and its later ops (which run in some configurations only)
// compare nothing.
TEST(Differential, AConfigurationOutOfMemoryPartsWithoutAFinding) {
  prog::ProgramHeader h = diff_header(DiffMode::slab);
  h.check = prog::CheckMode::off;  // the test allocates behind the checkers
  // 16 KiB: new pages in every allocator (SLOB's boot pages have room for less).
  const Program p = ops(h, {"kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=16384 "
                            "bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false",
                            "mmfuzz_write: ptr=0000000000000001 offset=0 len=64 byte=0x5a",
                            "mmfuzz_read: ptr=0000000000000001 offset=0 len=64",
                            "kfree: call_site=0x0 ptr=0000000000000001"});
  Lockstep l(p);
  mm::PageAlloc& pa = l.d->model(2).page_alloc;  // SLOB's machine runs dry
  while (pa.alloc_pages(mm::GFP_ATOMIC, 0) != mm::NO_PAGE) {
  }
  for (const Op& op : p.ops) EXPECT_TRUE(l.d->step(op));
  EXPECT_FALSE(l.d->finish());
  const prog::DiffStats& s = l.d->stats();
  EXPECT_EQ(s.parted, 1u);
  EXPECT_EQ(s.excluded[dim(DiffDim::failed)], 1u);  // the kmalloc
  EXPECT_EQ(s.excluded[dim(DiffDim::ran)], 3u);     // the write, read and kfree
  EXPECT_TRUE(l.d->executor(2).last().ran == false);
}

TEST(Differential, PlantedSlobZeroShortIsDiffContents) {
  if (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  prog::ProgramHeader h = diff_header(DiffMode::slab);
  EXPECT_FALSE(prog::run_differential(ops(h, kReusedKzalloc)));
  h.planted = mm::PlantedDefect::slob_zero_short;
  const auto f = prog::run_differential(ops(h, kReusedKzalloc));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->violation.signature(), "diff.contents|read|diff");
  EXPECT_EQ(f->op_index, 4u);
  EXPECT_NE(f->violation.title.find("SLUB read 0x00 at offset 56, SLAB read 0x00 at offset 56, "
                                    "SLOB read 0xff at offset 56"),
            std::string::npos)
      << f->violation.title;
  // The invariants alone see nothing: SLOB by itself is clean (without
  // the contents oracle, which knows what kzalloc promises).
  h.diff = DiffMode::none;
  h.slab = mm::SlabVariant::slob;
  const Program alone = ops(h, kReusedKzalloc);
  EXPECT_TRUE(prog::Executor::run(alone, h.mm_config(), h.exec_options()).ok());
  h.oracle = true;
  const prog::Verdict o = prog::Executor::run(alone, h.mm_config(), h.exec_options());
  ASSERT_FALSE(o.findings.empty());
  EXPECT_EQ(o.findings.front().violation.invariant, "oracle.contents");
}

// A configuration's own checkers still report: the first configuration's
// first finding, naming the configuration.
TEST(Differential, ACheckerFindingOfAConfigurationIsTheFinding) {
  const Program p = ops(
      diff_header(DiffMode::slab),
      {"kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=64 bytes_alloc=0 "
       "gfp_flags=GFP_KERNEL node=-1 accounted=false",
       "kfree: call_site=0x0 ptr=0000000000000001", "kfree: call_site=0x0 ptr=0000000000000001"});
  const auto f = prog::run_differential(p);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->violation.signature(), "trace.double_free|kfree|trace");
  EXPECT_EQ(f->op_index, 2u);
  EXPECT_NE(f->violation.to_text().find("found under SLUB (configuration 1 of 3)"),
            std::string::npos);
}

// Misuse with checks off: each allocator corrupts its own way, so nothing
// after it is compared.
TEST(Differential, NothingIsComparedAfterUncheckedMisuse) {
  prog::ProgramHeader h = diff_header(DiffMode::slab);
  h.check = prog::CheckMode::off;
  const Program p = ops(
      h, {"kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=64 "
          "bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false",
          "kfree: call_site=0x0 ptr=0000000000000001", "kfree: call_site=0x0 ptr=0000000000000001",
          "kmalloc: call_site=0x0 ptr=0000000000000002 bytes_req=64 "
          "bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1 accounted=false"});
  const prog::DiffRun r = prog::run_differential_full(p);
  EXPECT_FALSE(r.finding);
  ASSERT_TRUE(r.stats.stopped_at);
  EXPECT_EQ(*r.stats.stopped_at, 2u);
  EXPECT_EQ(r.stats.stopped_why, "a free of a freed handle");
  EXPECT_EQ(r.stats.excluded[dim(DiffDim::ran)], 1u);  // the last kmalloc
}

TEST(Differential, AProfileThatCannotBootIsAConfigError) {
  const Program p = workload(diff_header(DiffMode::profile, "16M"), 10, 1);
  EXPECT_THROW(prog::run_differential(p), mm::ConfigError);
}

// ---- shrinking a disagreement ----

TEST(Differential, ShrinksToTheDisagreementKeepingTheKey) {
  if (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  prog::ProgramHeader h = diff_header(DiffMode::slab);
  h.planted = mm::PlantedDefect::slob_zero_short;
  // The pattern after 600 ops of a generated workload, spliced in as text.
  const std::string text = prog::print_program(workload(h, 1200, 5));
  std::string pattern, spliced;
  for (const auto& l : kReusedKzalloc)
    pattern += "           <...>-0       [000] .....     0.000000: " + l + "\n";
  std::size_t n = 0;
  for (std::size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    if (n++ == 600) spliced += pattern;
    spliced += text.substr(pos, nl + 1 - pos);
    if (text[pos] == '#') --n;
  }
  const Program p = prog::parse_program(spliced);
  const prog::Verdict v = shrink::run_fresh(p);
  ASSERT_EQ(v.findings.size(), 1u);
  std::uint64_t fail_op = 0;
  const shrink::Goal goal = shrink::goal_for(p.header, v.findings, "", &fail_op);
  EXPECT_EQ(goal.signature, "diff.contents|read|diff");
  EXPECT_EQ(fail_op, 604u);
  shrink::ShrinkOptions so;
  so.jobs = 2;
  const shrink::ShrinkResult r = shrink::shrink(p, goal, fail_op, so);
  EXPECT_LE(r.program.ops.size(), 5u);
  EXPECT_EQ(r.program.header.diff, DiffMode::slab);
  const Program again = prog::parse_program(prog::print_program(r.program));
  const prog::Verdict w = shrink::run_fresh(again);
  ASSERT_EQ(w.findings.size(), 1u);
  EXPECT_EQ(w.findings[0].violation.signature(), goal.signature);
  // What a `--gtest` regression test of it runs.
  const std::string shrunk = prog::print_program(r.program);
  const shrink::RegressionRun rr = shrink::run_regression(shrunk.c_str(), "diff");
  EXPECT_EQ(rr.signatures, std::vector<std::string>{goal.signature});
}

// ---- trace windows ----

// The bundled real trace as its Program form, replayed as `mmfuzz replay`
// and `mmfuzz convert` read it.
const Program& bundled_trace() {
  static const Program whole = [] {
    const std::string path = std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst";
    Program p;
    p.header.version = prog::kProgramVersion;
    p.header.slab_nomerge = true;
    p.header = p.header.resolved();
    trace::ReplayOptions ro;
    {
      auto first = trace::open_event_source(path);
      ro.cache_names = trace::learn_cache_names(*first);
    }
    mm::Mm m(p.header.mm_config());
    prog::ExecOptions eo;
    eo.mode = prog::CheckMode::off;
    prog::Executor ex(m, p.strings, eo);
    ro.page_shift = m.profile.page_shift;
    ro.max_order = m.page_alloc.max_order();
    ro.kmalloc_max_cache_size = m.slab.kmalloc_max_cache_size();
    trace::Replayer rp(&ex, p.strings, ro);
    rp.sink = [&](const Op& op) { p.ops.push_back(op); };
    auto src = trace::open_event_source(path);
    trace::TraceEvent ev;
    while (src->next(ev)) rp.feed(ev, src->line());
    rp.finish();
    return p;
  }();
  return whole;
}

TEST(TraceWindow, BundledTraceWindowsAgreeOnBytesAllocOrderAndMigratetype) {
  const Program& whole = bundled_trace();
  ASSERT_GT(whole.ops.size(), 200000u);
  constexpr std::size_t kWindow = 20000;
  for (const std::size_t at : {std::size_t{0}, std::size_t{50000}, std::size_t{120000},
                               whole.ops.size() / 2, whole.ops.size() - kWindow}) {
    const trace::WindowResult r = trace::check_trace_window(whole, at, kWindow);
    EXPECT_TRUE(r.agrees()) << "window at " << at << ": " << r.first;
    std::string line = "window at " + std::to_string(at) + ":";
    for (const auto id : {trace::kKmallocSize, trace::kCacheSize, trace::kLargeOrder,
                          trace::kPageMigratetype, trace::kAllocFailure}) {
      const trace::FidelityMetric& m = r.metric(id);
      EXPECT_EQ(m.agree, m.total) << m.name << " at " << at;
      line += " " + std::to_string(m.agree) + "/" + std::to_string(m.total);
    }
    EXPECT_GT(r.metric(trace::kCacheSize).total + r.metric(trace::kKmallocSize).total, 1000u);
    EXPECT_GT(r.metric(trace::kPageMigratetype).total, 0u);
    std::printf(
        "%s (kmalloc, kmem_cache, large order, migratetype, failure; %llu ran, %llu "
        "skipped, %llu cache creates first)\n",
        line.c_str(), static_cast<unsigned long long>(r.ran),
        static_cast<unsigned long long>(r.skipped), static_cast<unsigned long long>(r.prefix_ops));
  }
}

// A trace that says something else than the model does: the window names
// the first op where they part.
TEST(TraceWindow, AWrongExpectationIsTheFirstDisagreement) {
  Program whole = bundled_trace();
  std::size_t at = 0;
  for (std::size_t i = 60000; i < whole.ops.size(); ++i)
    if (auto* k = whole.ops[i].get_if<prog::Kmalloc>(); k && k->obj && k->expect_bytes_alloc) {
      k->expect_bytes_alloc += 8;
      at = i;
      break;
    }
  ASSERT_NE(at, 0u);
  const trace::WindowResult r = trace::check_trace_window(whole, 60000, 10000);
  ASSERT_FALSE(r.agrees());
  EXPECT_EQ(*r.first_op, at);
  EXPECT_EQ(r.metric(trace::kKmallocSize).total - r.metric(trace::kKmallocSize).agree, 1u);
  EXPECT_NE(r.first.find("kmalloc size class (bytes_alloc): trace "), std::string::npos) << r.first;
}

// Caches created before the window are created first, so the window's
// kmem_cache_allocs run instead of being skipped.
TEST(TraceWindow, CachesCreatedBeforeTheWindowComeFirst) {
  const Program& whole = bundled_trace();
  const trace::WindowResult r = trace::check_trace_window(whole, 150000, 5000);
  EXPECT_GT(r.prefix_ops, 10u);
  EXPECT_GT(r.metric(trace::kCacheSize).total, 1000u);
}

}  // namespace
