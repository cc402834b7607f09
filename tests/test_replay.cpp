// Replay semantics on small hand-written traces (ftrace text, 6.1 format)
// with known results, and on the bundled real arm64 trace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

#include "mm/mm.h"
#include "program/executor.h"
#include "program/report.h"
#include "program/text.h"
#include "trace/line_reader.h"
#include "trace/replay.h"
#include "trace/source.h"

namespace mmfuzz::trace {
namespace {

using namespace mmfuzz::mm;

// A cache the replay's ops name, as the model laid it out (/proc/slabinfo's
// objsize, objperslab, pagesperslab).
struct CacheGeometry {
  unsigned size = 0, objperslab = 0, pagesperslab = 0;
  bool operator==(const CacheGeometry&) const = default;
};
std::ostream& operator<<(std::ostream& os, const CacheGeometry& g) {
  return os << g.size << " " << g.objperslab << " " << g.pagesperslab;
}

struct Result {
  ReplayStats stats;
  Verdict verdict;
  std::vector<FidelityMetric> fidelity;
  std::vector<Op> ops;
  std::uint64_t live_objects = 0, live_pages = 0;
  std::map<std::string, CacheGeometry> caches;  // by the name the ops use
  std::vector<std::string> alloc_caches;        // each kmem_cache_alloc's cache
  std::string fidelity_report;
};

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/mmfuzz-replay-XXXXXX";
    const int fd = mkstemp(tmpl);
    path_ = tmpl;
    const auto n = write(fd, text.data(), text.size());
    EXPECT_EQ(n, static_cast<ssize_t>(text.size()));
    close(fd);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Result replay_path(const std::string& path, ReplayOptions ro = {}, ExecOptions eo = {},
                   MmConfig cfg = {}) {
  Mm m(cfg);
  StringTable strings;
  Executor ex(m, strings, eo);
  auto src = open_event_source(path);
  std::optional<Replayer> rp;
  Result r;
  TraceEvent ev;
  while (src->next(ev)) {
    if (!rp) {
      ro.literal = src->program_text();
      rp.emplace(&ex, strings, ro);
      rp->sink = [&](const Op& op) { r.ops.push_back(op); };
    }
    rp->feed(ev, src->line());
  }
  if (!rp) rp.emplace(&ex, strings, ro);
  rp->finish();
  r.verdict = ex.finish();
  r.stats = rp->stats();
  r.fidelity = rp->fidelity();
  r.live_objects = ex.live_objects();
  r.live_pages = ex.live_page_allocs();
  r.fidelity_report = rp->fidelity_report();
  for (const Op& op : r.ops)
    if (const auto* c = op.get_if<prog::KmemCacheAlloc>()) {
      r.alloc_caches.push_back(strings.str(c->name));
      if (r.caches.count(strings.str(c->name))) continue;
      if (const kmem_cache* s = m.slab.cache(ex.cache_of(c->name))) {
        const SlabInfo si = m.slab.allocator->slabinfo(*s);
        r.caches[strings.str(c->name)] = {si.objsize, si.objperslab, si.pagesperslab};
      }
    }
  return r;
}

// Options with the first pass's cache names, as `mmfuzz replay` learns them.
ReplayOptions learned(const std::string& path, ReplayOptions ro = {}) {
  auto src = open_event_source(path);
  ro.cache_names = learn_cache_names(*src);
  return ro;
}

Result replay_text(const std::string& text, ReplayOptions ro = {}, ExecOptions eo = {}) {
  const TempFile f(text);
  return replay_path(f.path(), ro, eo);
}

// Both passes, as `mmfuzz replay FILE` runs them.
Result replay_text_two_pass(const std::string& text, ExecOptions eo = {}) {
  const TempFile f(text);
  return replay_path(f.path(), learned(f.path()), eo);
}

// One 6.1 ftrace line.
std::string line(int cpu, double ts, const std::string& event) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%12.6f", ts);
  return "          <idle>-0       [00" + std::to_string(cpu) + "] d.... " + buf + ": " + event +
         "\n";
}

std::string kmalloc(const char* ptr, int req, int alloc) {
  return std::string("kmalloc: call_site=f+0x10/0x20 ptr=") + ptr +
         " bytes_req=" + std::to_string(req) + " bytes_alloc=" + std::to_string(alloc) +
         " gfp_flags=GFP_KERNEL node=-1 accounted=false";
}
std::string kfree(const char* ptr) {
  return std::string("kfree: call_site=g+0x8/0x10 ptr=") + ptr;
}
std::string fmt_ptr(std::uint64_t p) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(p));
  return buf;
}

// The findings of one invariant.
std::vector<Finding> findings(const Result& r, const std::string& id) {
  std::vector<Finding> out;
  for (const Finding& f : r.verdict.findings)
    if (f.violation.invariant == id) out.push_back(f);
  return out;
}

std::uint64_t count(const Result& r, OpKind k) {
  std::uint64_t n = 0;
  for (const Op& op : r.ops) n += op.kind() == k;
  return n;
}

TEST(Replay, CleanKmallocPairs) {
  std::string t = "# tracer: nop\n";
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(1, 1.1, kmalloc("ffff000001000080", 200, 256));
  t += line(0, 1.2, kfree("ffff000001000000"));
  t += line(0, 1.3, kfree("0000000000000000"));  // kfree(NULL)
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_EQ(r.stats.events, 4u);
  EXPECT_EQ(r.stats.kfree_null, 1u);
  EXPECT_EQ(count(r, OpKind::kmalloc), 2u);
  EXPECT_EQ(count(r, OpKind::kfree), 1u);
  EXPECT_EQ(r.live_objects, 1u);
  // The model's kmalloc-128 and kmalloc-256: size classes agree.
  EXPECT_EQ(r.fidelity[0].total, 2u);
  EXPECT_EQ(r.fidelity[0].agree, 2u);
}

TEST(Replay, DoubleFreeInTheTraceIsAViolation) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.1, kfree("ffff000001000000"));
  t += line(1, 1.2, kfree("ffff000001000000"));
  const Result r = replay_text(t);
  EXPECT_EQ(r.stats.double_frees, 1u);
  ASSERT_FALSE(r.verdict.ok());
  // The trace's view and the model's (SLUB's report) of the same free.
  const auto slab = findings(r, "slab.double_free");
  ASSERT_FALSE(slab.empty());
  EXPECT_EQ(slab.front().op.line, 3u);
  EXPECT_EQ(slab.front().op.cpu, 1);
  const auto tr = findings(r, "trace.double_free");
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr.front().op.line, 3u);
  EXPECT_EQ(tr.front().op_index, slab.front().op_index);
  ExecOptions eo;
  eo.checks = "all,-slab.*";
  const Result only = replay_text(t, {}, eo);
  ASSERT_EQ(only.verdict.findings.size(), 1u);
  EXPECT_EQ(only.verdict.findings[0].violation.invariant, "trace.double_free");
}

TEST(Replay, UnknownFreesAreCountedOrStrictViolations) {
  std::string t;
  t += line(0, 1.0, kfree("ffff000001000040"));  // allocated before tracing began
  t += line(0, 1.1,
            "kmem_cache_free: call_site=mas_destroy+0x1/0x2 ptr=ffff000001000100 name=maple_node");
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_EQ(r.stats.unknown_frees, 2u);
  EXPECT_EQ(r.stats.unknown_bulk_frees, 1u);
  EXPECT_EQ(count(r, OpKind::kfree), 0u);
  ReplayOptions ro;
  ro.strict_frees = true;
  const Result s = replay_text(t, ro);
  // The maple_node free is a bulk allocation's: not flagged even so. The
  // finding comes through the Executor's checkers, like every other.
  ASSERT_EQ(s.verdict.findings.size(), 1u);
  ASSERT_EQ(s.verdict.nr_violations, 1u);
  const Finding& f = s.verdict.findings[0];
  EXPECT_EQ(f.violation.invariant, "trace.unknown_free");
  EXPECT_EQ(f.violation.kind, inv::ViolationKind::misuse);
  EXPECT_EQ(f.violation.subsystem, "trace");
  EXPECT_EQ(f.violation.signature(), "trace.unknown_free|kfree|trace");
  ASSERT_EQ(f.violation.addrs.size(), 1u);
  EXPECT_EQ(f.violation.addrs[0], 0xffff000001000040u);
  EXPECT_EQ(f.op.line, 1u);
  EXPECT_EQ(f.op.ts_ns, 1000000000u);
}

// --checks selects the trace family like any other: deselected, a trace that
// breaks --strict-frees on purpose is clean; selected alone, it is found with
// no model checker running.
TEST(Replay, TraceFindingsFollowTheSelection) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(1, 1.1, kfree("ffff000001000040"));  // never allocated
  ReplayOptions ro;
  ro.strict_frees = true;
  ExecOptions eo;
  eo.checks = "all,-trace.*";
  const Result off = replay_text(t, ro, eo);
  EXPECT_EQ(off.stats.unknown_frees, 1u);  // the trace's view still counts it
  EXPECT_TRUE(off.verdict.ok());
  eo.checks = "trace.unknown_free";
  const Result alone = replay_text(t, ro, eo);
  ASSERT_EQ(findings(alone, "trace.unknown_free").size(), 1u);
  EXPECT_EQ(findings(alone, "trace.unknown_free")[0].op.cpu, 1);
  eo.checks = "all";
  eo.mode = prog::CheckMode::off;  // no checkers: no reports of any family
  EXPECT_TRUE(replay_text(t, ro, eo).verdict.ok());
}

// A trace full of unknown frees: capped per invariant like every other
// report, not one finding per free.
TEST(Replay, TraceFindingsAreCapped) {
  std::string t;
  for (unsigned i = 0; i < 200; ++i)
    t += line(0, 1.0 + static_cast<double>(i) * 1e-6,
              kfree(fmt_ptr(0xffff000001000000u + 64u * i).c_str()));
  ReplayOptions ro;
  ro.strict_frees = true;
  const Result r = replay_text(t, ro);
  EXPECT_EQ(r.stats.unknown_frees, 200u);
  EXPECT_EQ(findings(r, "trace.unknown_free").size(), 64u);
  EXPECT_EQ(r.verdict.nr_violations, 64u);
}

TEST(Replay, InvalidFreeOfAnObjectInteriorIsReported) {
  // The trace frees a pointer inside a live object: the model's kfree sees
  // a pointer that is no object start. The trace has never allocated it,
  // so it is an unknown free in the trace's view: only --strict-frees judges it.
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.1, kfree("ffff000001000008"));
  const Result r = replay_text(t);
  EXPECT_EQ(r.stats.unknown_frees, 1u);
  EXPECT_TRUE(r.verdict.ok());
}

TEST(Replay, BatchedFreesAndPcpEventsAreNotAllocations) {
  std::string t;
  t += line(0, 1.0,
            "mm_page_alloc_zone_locked: page=fffffc0000040000 pfn=0x41000 order=0 migratetype=0 "
            "percpu_refill=1");
  t += line(0, 1.0,
            "mm_page_alloc: page=fffffc0000040000 pfn=0x41000 order=0 migratetype=0 "
            "gfp_flags=GFP_KERNEL");
  t += line(0, 1.1, "mm_page_free: page=fffffc0000040000 pfn=0x41000 order=0");
  t += line(0, 1.1, "mm_page_free_batched: page=fffffc0000040000 pfn=0x41000 order=0");
  t += line(0, 1.2, "mm_page_pcpu_drain: page=fffffc0000040000 pfn=0x41000 order=0 migratetype=0");
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_EQ(count(r, OpKind::alloc_pages), 1u);
  EXPECT_EQ(count(r, OpKind::free_pages), 1u);
  EXPECT_EQ(r.stats.unknown_page_frees, 0u);
  EXPECT_EQ(r.live_pages, 0u);
}

TEST(Replay, LargeKmallocPagesBelongToTheKmalloc) {
  // kmalloc above 8 KiB: an mm_page_alloc then the kmalloc; kfree then mm_page_free.
  std::string t;
  t += line(0, 1.0,
            "mm_page_alloc: page=fffffc0000040000 pfn=0x41000 order=2 migratetype=0 "
            "gfp_flags=GFP_KERNEL|__GFP_COMP");
  t += line(0, 1.0, kmalloc("ffff000001000000", 10000, 16384));
  t += line(0, 1.1, kfree("ffff000001000000"));
  t += line(0, 1.1, "mm_page_free: page=fffffc0000040000 pfn=0x41000 order=2");
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_EQ(r.stats.absorbed_large_kmalloc, 1u);
  EXPECT_EQ(count(r, OpKind::alloc_pages), 0u);
  EXPECT_EQ(count(r, OpKind::free_pages), 0u);
  EXPECT_EQ(r.stats.unknown_page_frees, 0u);
  // The model's kmalloc_large also takes an order-2 page.
  EXPECT_EQ(r.fidelity[2].total, 1u);
  EXPECT_EQ(r.fidelity[2].agree, 1u);
}

TEST(Replay, SlabPagesAreRecognizedOnceTheLinearMapIsLearned) {
  // 20 slab pages, each followed by its first object: ptr = PA + offset.
  const std::uint64_t offset = 0xffff151680000000ull;
  std::string t;
  for (int i = 0; i < 20; ++i) {
    const std::uint64_t pfn = 0x43e40 + static_cast<std::uint64_t>(i);
    char a[256], k[256];
    std::snprintf(a, sizeof a,
                  "mm_page_alloc: page=fffffc545b0f9040 pfn=%#llx order=0 migratetype=0 "
                  "gfp_flags=__GFP_NOWARN|__GFP_NORETRY",
                  static_cast<unsigned long long>(pfn));
    std::snprintf(k, sizeof k,
                  "kmem_cache_alloc: call_site=d_alloc+0x1/0x2 ptr=%llx bytes_req=192 "
                  "bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true",
                  static_cast<unsigned long long>(offset + (pfn << 12) + 0x40));
    t += line(0, 1.0 + i * 0.001, a);
    t += line(0, 1.0 + i * 0.001, k);
  }
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_TRUE(r.stats.linear_map_learned);
  EXPECT_EQ(r.stats.linear_map_offset, offset);
  // The pages seen after learning are the slab's; the first ones (voting)
  // replay as plain page allocations.
  EXPECT_GE(r.stats.absorbed_slab_pages, 1u);
  EXPECT_EQ(r.stats.absorbed_slab_pages + count(r, OpKind::alloc_pages), 20u);
  EXPECT_EQ(r.stats.caches_created, 1u);
}

TEST(Replay, TailFreesOfASplitAllocationSplitIt) {
  std::string t;
  t += line(0, 1.0,
            "mm_page_alloc: page=fffffc0000040000 pfn=0x41000 order=2 migratetype=0 "
            "gfp_flags=GFP_KERNEL");
  t += line(0, 1.1, "mm_page_free: page=fffffc0000040000 pfn=0x41003 order=0");
  t += line(0, 1.2, "mm_page_free: page=fffffc0000040000 pfn=0x41000 order=0");
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_EQ(r.stats.splits, 1u);
  EXPECT_EQ(count(r, OpKind::split_page), 1u);
  EXPECT_EQ(r.live_pages, 2u);
}

TEST(Replay, TicksFollowTraceTime) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 4.5, kfree("ffff000001000000"));
  const Result r = replay_text(t);
  EXPECT_EQ(r.stats.ticks, 3u);  // at 2.0, 3.0, 4.0
  EXPECT_TRUE(r.verdict.ok());
}

TEST(Replay, LostEventsMakeLaterSecondFreesUnknown) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.1, kfree("ffff000001000000"));
  t += "CPU:0 [LOST 12 EVENTS]\n";
  t += line(0, 1.2, kfree("ffff000001000000"));  // its kmalloc may have been lost
  const Result r = replay_text(t);
  EXPECT_EQ(r.stats.lost_markers, 1u);
  EXPECT_EQ(r.stats.lost_events, 12u);
  EXPECT_EQ(r.stats.double_frees, 0u);
  EXPECT_TRUE(r.verdict.ok());
}

TEST(Replay, DoubleAllocationInTheTraceIsAFinding) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.1, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.2, kfree("ffff000001000000"));
  // No events lost: the trace shows every free, so the second allocation of
  // a live pointer is the kernel's (or the trace's) bug, found by the
  // Executor at that op with the first allocation as its history.
  const Result s = replay_text(t);
  EXPECT_EQ(s.stats.double_allocs, 1u);
  const auto f = findings(s, "trace.double_alloc");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(s.verdict.nr_violations, 1u);
  EXPECT_EQ(f[0].op.line, 2u);
  EXPECT_EQ(f[0].op_index, 1u);
  EXPECT_EQ(f[0].violation.signature(), "trace.double_alloc|kmalloc|trace");
  ASSERT_TRUE(f[0].allocated);
  EXPECT_EQ(f[0].allocated->op.line, 1u);
  EXPECT_EQ(f[0].allocated->index, 0u);
  EXPECT_FALSE(f[0].freed);
  EXPECT_EQ(s.live_objects, 0u);
  // After lost events the free may be among them: it runs, no finding.
  const Result l = replay_text("CPU:0 [LOST 3 EVENTS]\n" + t);
  EXPECT_EQ(l.stats.double_allocs, 1u);
  EXPECT_TRUE(l.verdict.ok());
}

TEST(Replay, PageDoubleAllocationUnderStrictFrees) {
  std::string t;
  const std::string alloc =
      "mm_page_alloc: page=fffffc0000040000 pfn=0x41000 order=0 migratetype=0 "
      "gfp_flags=GFP_KERNEL";
  t += line(0, 1.0, alloc);
  t += line(1, 1.1, alloc);
  ReplayOptions ro;
  ro.strict_frees = true;
  const Result s = replay_text(t, ro);
  EXPECT_EQ(s.stats.page_double_allocs, 1u);
  const auto f = findings(s, "trace.page_double_alloc");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].op.line, 2u);
  ASSERT_EQ(f[0].violation.pfns.size(), 1u);
  EXPECT_EQ(f[0].violation.pfns[0], 0x41000u);
  // After lost events the missing free may be among them: no finding.
  const Result lost =
      replay_text(line(0, 0.5, kfree("0000000000000000")) + "CPU:0 [LOST 3 EVENTS]\n" + t, ro);
  EXPECT_EQ(lost.stats.page_double_allocs, 1u);
  EXPECT_TRUE(lost.verdict.ok());
}

TEST(Replay, ProgramTextReplaysLiterally) {
  Program p;
  p.ops.push_back(Op{.args = prog::Kmalloc{.obj = 1, .size = 64, .gfp = GFP_KERNEL}});
  p.ops.push_back(Op{.args = prog::Kfree{1}});
  p.ops.push_back(Op{.args = prog::Kfree{1}});
  const Result r = replay_text(print_program(p));
  ASSERT_EQ(r.ops.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(r.ops[i].same_as(p.ops[i])) << i;
  ASSERT_EQ(r.verdict.findings.size(), 2u);
  EXPECT_EQ(r.verdict.findings[0].violation.invariant, "trace.double_free");
  EXPECT_EQ(r.verdict.findings[1].violation.invariant, "slab.double_free");
}

TEST(Replay, ConvertedTraceReplaysToTheSameOps) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(1, 1.5,
            "kmem_cache_alloc: call_site=d_alloc+0x1/0x2 ptr=ffff000001100000 bytes_req=192 "
            "bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true");
  t += line(0, 2.5, kfree("ffff000001000000"));
  t += line(1, 2.6, "kmem_cache_free: call_site=d_free+0x1/0x2 ptr=ffff000001100000 name=dentry");
  const Result r = replay_text(t);
  Program p;
  // The ops carry string ids of the replay's table: rebuild them by text.
  const TempFile f(t);
  {
    Mm m;
    Executor ex(m, p.strings);
    Replayer rp(&ex, p.strings);
    rp.sink = [&](const Op& op) { p.ops.push_back(op); };
    auto src = open_event_source(f.path());
    TraceEvent ev;
    while (src->next(ev)) rp.feed(ev, src->line());
    rp.finish();
  }
  const Result again = replay_text(print_program(p));
  ASSERT_EQ(again.ops.size(), r.ops.size());
  for (std::size_t i = 0; i < r.ops.size(); ++i) EXPECT_TRUE(again.ops[i].same_as(r.ops[i])) << i;
  EXPECT_TRUE(again.verdict.ok());
}

// ---- traces recorded after boot: caches the trace shows, not the model's ----

// The fidelity metric whose name starts with `prefix`.
const FidelityMetric& metric(const Result& r, const std::string& prefix) {
  for (const auto& m : r.fidelity)
    if (m.name.rfind(prefix, 0) == 0) return m;
  static const FidelityMetric none;
  ADD_FAILURE() << "no metric " << prefix;
  return none;
}
const char* const kObjectSize = "kmem_cache object size";

std::string cache_alloc(const char* site, const std::string& ptr, int req, int alloc) {
  return std::string("kmem_cache_alloc: call_site=") + site + " ptr=" + ptr +
         " bytes_req=" + std::to_string(req) + " bytes_alloc=" + std::to_string(alloc) +
         " gfp_flags=GFP_KERNEL node=-1 accounted=false";
}
std::string cache_free(const char* site, const std::string& ptr, const char* name) {
  return std::string("kmem_cache_free: call_site=") + site + " ptr=" + ptr + " name=" + name;
}

TEST(Replay, ACacheTheModelHasWithAnotherSizeTakesTheTracesGeometry) {
  // struct kmem_cache ends in node[nr_node_ids]: a 16-node kernel's is 336
  // bytes, 384 with SLAB_HWCACHE_ALIGN; the model's boot cache holds 256.
  // A cache made before tracing with a constructor: sock_inode_cache's
  // 768-byte objects are 832 apart (free pointer after the object, 64-byte
  // alignment), 19 to an order-2 slab in the kernel's slabinfo.
  std::string t;
  t += line(0, 1.0, cache_alloc("create_cache+0x5c/0x1d0", fmt_ptr(0xffff000002000000), 336, 384));
  t += line(0, 1.1,
            cache_alloc("sock_alloc_inode+0x2c/0x80", fmt_ptr(0xffff000002100000), 768, 832));
  t += line(0, 1.2,
            cache_free("kmem_cache_release+0x1c/0x28", fmt_ptr(0xffff000002000000), "kmem_cache"));
  t += line(
      0, 1.3,
      cache_free("sock_free_inode+0x1c/0x28", fmt_ptr(0xffff000002100000), "sock_inode_cache"));
  const Result r = replay_text_two_pass(t);
  EXPECT_TRUE(r.verdict.ok());
  const FidelityMetric& m = metric(r, kObjectSize);
  EXPECT_EQ(m.total, 2u);
  EXPECT_EQ(m.agree, 2u) << r.fidelity_report;
  EXPECT_EQ(r.caches.at("kmem_cache").size, 384u);
  EXPECT_EQ(r.caches.at("sock_inode_cache"), (CacheGeometry{832, 19, 4}));
  // The report says which cache the model had with another size.
  ASSERT_EQ(r.stats.caches_regeometried.size(), 1u);
  EXPECT_NE(r.stats.caches_regeometried[0].find("kmem_cache: model 256, trace 384 (line 1)"),
            std::string::npos)
      << r.stats.caches_regeometried[0];
  EXPECT_NE(r.fidelity_report.find("caches whose size in the model is not the trace's: 1"),
            std::string::npos)
      << r.fidelity_report;
  // Both objects were freed to the caches they came from.
  EXPECT_EQ(r.live_objects, 0u);
}

// mempool_alloc_slab allocates from whatever cache the mempool was made
// with (bio-192, biovec-64, biovec-max, and biovec-16, merged into
// maple_node: the same s->size as bio-192, another object_size).
std::string mempool_trace() {
  struct Obj {
    std::uint64_t ptr;
    int req, alloc;
    const char* name;
  };
  const Obj objs[] = {{0xffff000003000000, 192, 256, "bio-192"},
                      {0xffff000003100000, 1024, 1024, "biovec-64"},
                      {0xffff000003200000, 4096, 4096, "biovec-max"},
                      {0xffff000003300000, 256, 256, "maple_node"},
                      {0xffff000003000100, 192, 256, "bio-192"}};
  std::string t;
  double ts = 1.0;
  for (const Obj& o : objs)
    t += line(0, ts += 0.01,
              cache_alloc("mempool_alloc_slab+0x24/0x30", fmt_ptr(o.ptr), o.req, o.alloc));
  for (const Obj& o : objs)
    t += line(0, ts += 0.01, cache_free("mempool_free_slab+0x1c/0x28", fmt_ptr(o.ptr), o.name));
  return t;
}

TEST(Replay, ACallSiteServingSeveralCachesIsResolvedPerObject) {
  const Result r = replay_text_two_pass(mempool_trace());
  EXPECT_TRUE(r.verdict.ok());
  // The caches the allocations went to, in order: the frees' names.
  const std::vector<std::string> expect = {"bio-192", "biovec-64", "biovec-max", "maple_node",
                                           "bio-192"};
  EXPECT_EQ(r.alloc_caches, expect);
  EXPECT_EQ(r.caches.at("biovec-max"), (CacheGeometry{4096, 8, 8}));
  EXPECT_EQ(r.caches.at("biovec-64"), (CacheGeometry{1024, 16, 4}));
  EXPECT_EQ(r.caches.at("bio-192"), (CacheGeometry{256, 16, 1}));
  const FidelityMetric& m = metric(r, kObjectSize);
  EXPECT_EQ(m.total, 5u);
  EXPECT_EQ(m.agree, 5u) << r.fidelity_report;
  EXPECT_EQ(r.live_objects, 0u);
}

TEST(Replay, OnePassUsesACallSitesCacheOnlyForObjectsOfItsSize) {
  // Without the first pass a call site's cache is learned from its frees
  // (mempool_free_slab names bio-192 first); a call site that has shown
  // objects of several sizes does not put a later object in it, while
  // __d_alloc (one size) does use dentry.
  std::string t = mempool_trace();
  double ts = 2.0;
  t += line(1, ts += 0.01,
            cache_alloc("mempool_alloc_slab+0x24/0x30", fmt_ptr(0xffff000003400000), 4096, 4096));
  t += line(1, ts += 0.01,
            cache_alloc("__d_alloc+0x3c/0x1b0", fmt_ptr(0xffff000003500000), 192, 192));
  t += line(1, ts += 0.01, cache_free("__d_free+0x1c/0x28", fmt_ptr(0xffff000003500000), "dentry"));
  t += line(1, ts += 0.01,
            cache_alloc("__d_alloc+0x3c/0x1b0", fmt_ptr(0xffff000003600000), 192, 192));
  const Result r = replay_text(t);
  EXPECT_TRUE(r.verdict.ok());
  const FidelityMetric& m = metric(r, kObjectSize);
  EXPECT_EQ(m.total, 8u);
  EXPECT_EQ(m.agree, 8u) << r.fidelity_report;
  ASSERT_EQ(r.alloc_caches.size(), 8u);
  EXPECT_EQ(r.alloc_caches[5], "trace-4096");
  EXPECT_EQ(r.alloc_caches[7], "dentry");
  EXPECT_EQ(r.caches.count("bio-192"), 0u);
}

TEST(Replay, FidelityExamplesQuoteTheTraceLine) {
  // No SLUB layout has 100-byte objects: the model's size disagrees, and
  // the example is the line itself, with no name= the trace lacks.
  const std::string event =
      cache_alloc("odd_alloc+0x10/0x20", fmt_ptr(0xffff000004000000), 100, 100);
  const std::string text = line(0, 1.0, event);
  const Result r = replay_text_two_pass(text);
  const FidelityMetric& m = metric(r, kObjectSize);
  ASSERT_EQ(m.disagreements.size(), 1u);
  const auto& d = m.disagreements.begin()->second;
  EXPECT_EQ(d.trace_value, "100");
  EXPECT_EQ(d.model_value, "104");
  const std::string quoted = text.substr(text.find_first_not_of(' '));
  EXPECT_EQ(d.example, "line 1: " + quoted.substr(0, quoted.size() - 1));
  EXPECT_EQ(d.example.find("name="), std::string::npos);
}

// The bundled trace from line `from` on: a trace begun after boot, whose
// caches exist before its first event.
std::string bundled_trace_from(std::uint64_t from) {
  LineReader in(std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst");
  std::string out = "# tracer: nop\n";
  std::string_view l;
  while (in.next(l))
    if (in.line_no() >= from) out.append(l).push_back('\n');
  return out;
}

TEST(Replay, ATraceBegunAfterBootKeepsItsFidelity) {
  // From line 30,000 on (25 s after boot): sock_alloc_inode's objects (a
  // constructor: 768 bytes, 832 apart; never freed in the trace, so in a
  // stand-in named by their size) and mempool_alloc_slab's 256/384 objects
  // come from caches the trace never saw created.
  ExecOptions eo;
  eo.check_every = 1000000;
  const Result r = replay_text_two_pass(bundled_trace_from(30000), eo);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_GT(r.stats.caches_created, 30u);
  const FidelityMetric& size = metric(r, kObjectSize);
  EXPECT_GT(size.total, 100000u);
  EXPECT_EQ(size.agree, size.total) << r.fidelity_report;
  EXPECT_EQ(metric(r, "kmalloc size class").percent(), 100.0) << r.fidelity_report;
  EXPECT_EQ(metric(r, "mm_page_alloc migratetype").percent(), 100.0) << r.fidelity_report;
  EXPECT_EQ(r.caches.at("trace-832"), (CacheGeometry{832, 19, 4}));
}

TEST(Replay, PressureTraceObjectSizesAgree) {
  // A 6.1 guest under reclaim, traced from 6.2 s after boot (903,178 events).
  const std::string path = std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-pressure.trace.zst";
  ExecOptions eo;
  eo.check_every = 1000000;
  const Result r = replay_path(path, learned(path), eo);
  EXPECT_TRUE(r.verdict.ok());
  const FidelityMetric& size = metric(r, kObjectSize);
  EXPECT_EQ(size.total, 48246u);
  EXPECT_GE(size.percent(), 99.9) << r.fidelity_report;
  EXPECT_EQ(metric(r, "kmalloc size class").percent(), 100.0) << r.fidelity_report;
  EXPECT_EQ(metric(r, "mm_page_alloc migratetype").percent(), 100.0) << r.fidelity_report;
  // objsize, objperslab, pagesperslab of the guest's /proc/slabinfo, read
  // before tracing began.
  const std::map<std::string, CacheGeometry> kernel = {{"sock_inode_cache", {832, 19, 4}},
                                                       {"skbuff_fclone_cache", {512, 16, 2}},
                                                       {"skbuff_head_cache", {256, 16, 1}},
                                                       {"bio-192", {256, 16, 1}},
                                                       {"biovec-max", {4096, 8, 8}},
                                                       {"biovec-64", {1024, 16, 4}},
                                                       {"biovec-128", {2048, 16, 8}},
                                                       {"TCPv6", {2496, 13, 8}},
                                                       {"TCP", {2304, 14, 8}},
                                                       {"task_struct", {4160, 7, 8}},
                                                       {"signal_cache", {1152, 14, 4}},
                                                       {"radix_tree_node", {584, 14, 2}},
                                                       {"dentry", {192, 21, 1}},
                                                       {"anon_vma", {104, 39, 1}},
                                                       {"maple_node", {256, 16, 1}},
                                                       {"inode_cache", {640, 12, 2}}};
  for (const auto& [name, g] : kernel) {
    const auto it = r.caches.find(name);
    if (it == r.caches.end()) {
      ADD_FAILURE() << name << " not replayed";
      continue;
    }
    EXPECT_EQ(it->second, g) << name;
  }
}

TEST(Replay, RealArm64TraceIsClean) {
  ExecOptions eo;
  eo.check_every = 50000;
  const Result r =
      replay_path(std::string(MMFUZZ_TRACES_DIR) + "/arm64-6.1-boot-shell.trace.zst", {}, eo);
  for (std::size_t i = 0; i < std::min<std::size_t>(r.verdict.findings.size(), 3); ++i)
    ADD_FAILURE() << r.verdict.findings[i].violation.to_text(false);
  EXPECT_TRUE(r.verdict.ok());
  EXPECT_EQ(r.stats.by_type[static_cast<int>(EventType::kmem_cache_alloc)], 129807u);
  EXPECT_EQ(r.stats.by_type[static_cast<int>(EventType::mm_page_alloc)], 43892u);
  EXPECT_EQ(r.stats.kfree_null, 5784u);
  EXPECT_TRUE(r.stats.linear_map_learned);
  EXPECT_EQ(r.stats.double_frees, 0u);
  EXPECT_EQ(r.verdict.skipped_ops, 0u);
  for (const auto& [why, n] : r.verdict.skip_reasons) ADD_FAILURE() << why << ": " << n;
}

// ---- every bug class a kmem trace shows, in the trace's terms ----

std::string page_alloc_line(const char* pfn, int order, const char* gfp) {
  return std::string("mm_page_alloc: page=0000000000000000 pfn=") + pfn +
         " order=" + std::to_string(order) + " migratetype=0 gfp_flags=" + gfp;
}
std::string page_free_line(const char* pfn, int order) {
  return std::string("mm_page_free: page=0000000000000000 pfn=") + pfn +
         " order=" + std::to_string(order);
}

TEST(ReplayBugs, DoubleFreeNamesTheTraceLinesOfAllocationFreeAndFault) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(1, 1.1, kfree("ffff000001000000"));
  t += line(0, 1.2, kmalloc("ffff000001000100", 64, 128));
  t += line(1, 1.3, kfree("ffff000001000000"));
  const Result r = replay_text(t);
  const auto f = findings(r, "trace.double_free");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].handle, 0xffff000001000000u);  // the trace's address
  EXPECT_NE(f[0].model_addr, 0u);
  EXPECT_NE(f[0].model_addr, f[0].handle);
  ASSERT_TRUE(f[0].allocated && f[0].freed);
  EXPECT_EQ(f[0].allocated->op.line, 1u);
  EXPECT_EQ(f[0].freed->op.line, 2u);
  EXPECT_EQ(f[0].op.line, 4u);
  // One numbering: the op indices are the ops' places in the Program.
  EXPECT_EQ(f[0].allocated->index, 0u);
  EXPECT_EQ(f[0].freed->index, 1u);
  EXPECT_EQ(f[0].op_index, 3u);
  EXPECT_EQ(r.ops[f[0].op_index].line, 4u);
  // The model's own report speaks of the same ops and tasks.
  const auto s = findings(r, "slab.double_free");
  ASSERT_EQ(s.size(), 1u);
  const std::string text = s[0].violation.to_text(false);
  EXPECT_EQ(text.find("call_site#"), std::string::npos) << text;
  EXPECT_EQ(text.find("mmfuzz/0"), std::string::npos) << text;
}

TEST(ReplayBugs, ReportTextHasTheKasanBlocks) {
  const TempFile f(line(0, 1.0, kmalloc("ffff000001000000", 64, 128)) +
                   line(1, 1.1, kfree("ffff000001000000")) +
                   line(1, 1.3, kfree("ffff000001000000")));
  Mm m;
  StringTable strings;
  Executor ex(m, strings);
  Replayer rp(&ex, strings);
  auto src = open_event_source(f.path());
  TraceEvent ev;
  while (src->next(ev)) rp.feed(ev, src->line());
  rp.finish();
  const Verdict v = ex.finish();
  ASSERT_FALSE(v.findings.empty());
  const std::string text = prog::finding_text(v.findings[0], strings);
  EXPECT_NE(text.find("ptr 0xffff000001000000 is 0x"), std::string::npos) << text;
  EXPECT_NE(text.find("Allocated by task <idle>-0 on cpu 0 at 1.000000s:\n  at op #0, trace line "
                      "1: "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Freed by task <idle>-0 on cpu 1 at 1.100000s:\n  at op #1, trace line 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("The faulting op, by task <idle>-0 on cpu 1 at 1.300000s:\n  at op #2, "
                      "trace line 3: "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("call_site=f+0x10/0x20"), std::string::npos) << text;
}

TEST(ReplayBugs, WrongCacheFreeIsReportedWithTheAllocation) {
  std::string t;
  t += line(0, 1.0,
            "kmem_cache_alloc: call_site=d_alloc+0x10/0x20 ptr=ffff000001000000 name=dentry "
            "bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false");
  t += line(0, 1.1,
            "kmem_cache_alloc: call_site=alloc_file+0x10/0x20 ptr=ffff000002000000 name=filp "
            "bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 accounted=false");
  t += line(0, 1.2, "kmem_cache_free: call_site=dput+0x10/0x20 ptr=ffff000001000000 name=filp");
  const Result r = replay_text_two_pass(t);
  const auto f = findings(r, "slab.wrong_cache");
  ASSERT_EQ(f.size(), 1u) << r.verdict.nr_violations;
  ASSERT_TRUE(f[0].allocated);
  EXPECT_EQ(f[0].allocated->op.line, 1u);
  EXPECT_EQ(f[0].op.line, 3u);
}

TEST(ReplayBugs, CompoundPageFreedWithASmallerOrderIsOneReportAndNoSplit) {
  std::string t;
  t += line(0, 1.0, page_alloc_line("0x41000", 2, "GFP_KERNEL|__GFP_COMP"));
  t += line(0, 1.1, page_free_line("0x41000", 0));
  ReplayOptions ro;
  ro.window = 0;
  const Result r = replay_text(t, ro);
  EXPECT_EQ(r.stats.splits, 0u);
  ASSERT_EQ(r.verdict.nr_violations, 1u);
  const Finding& f = r.verdict.findings[0];
  EXPECT_EQ(f.violation.invariant, "page_alloc.wrong_order");
  ASSERT_TRUE(f.allocated);
  EXPECT_EQ(f.allocated->op.line, 1u);
  EXPECT_EQ(f.handle, 0x41000u);
  // Not compound: split_page() is untraced, the split is inferred, no report.
  std::string plain;
  plain += line(0, 1.0, page_alloc_line("0x41000", 2, "GFP_KERNEL"));
  plain += line(0, 1.1, page_free_line("0x41000", 0));
  const Result p = replay_text(plain, ro);
  EXPECT_EQ(p.stats.splits, 1u);
  EXPECT_TRUE(p.verdict.ok());
}

TEST(ReplayBugs, ValuesNoKernelProducesAreInvalid) {
  std::string t;
  t += line(0, 1.0, page_alloc_line("0x41000", 99, "GFP_KERNEL"));
  t += line(0, 1.1, page_free_line("0x52000", 40));
  t += line(0, 1.2, kmalloc("ffff000001000000", 8388608, 8388608));
  const Result r = replay_text(t);
  const auto f = findings(r, "trace.invalid");
  ASSERT_EQ(f.size(), 3u) << r.verdict.nr_violations;
  EXPECT_EQ(f[0].op.line, 1u);
  EXPECT_EQ(f[1].op.line, 2u);
  EXPECT_EQ(f[2].op.line, 3u);
  EXPECT_EQ(f[2].violation.signature(), "trace.invalid|kmalloc|trace");
  EXPECT_EQ(r.stats.unknown_page_frees, 0u);  // not a page from before tracing
  EXPECT_EQ(r.verdict.nr_violations, 3u);
  // A failed allocation of that order is the caller's WARN, as the kernel gives it.
  const Result w = replay_text(line(0, 1.0,
                                    "mm_page_alloc: page=0000000000000000 pfn=0x0 order=12 "
                                    "migratetype=0 gfp_flags=GFP_KERNEL"));
  EXPECT_EQ(findings(w, "trace.invalid").size(), 0u);
}

TEST(ReplayBugs, UnknownFreeUnderStrictFreesReproducesFromTheProgram) {
  const std::string t =
      line(0, 1.0, kmalloc("ffff000001000000", 64, 128)) + line(0, 1.1, kfree("ffff0000deadbe00"));
  EXPECT_TRUE(replay_text(t).verdict.ok());
  ReplayOptions ro;
  ro.strict_frees = true;
  const Result r = replay_text(t, ro);
  const auto f = findings(r, "trace.unknown_free");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].op.line, 2u);
  EXPECT_EQ(f[0].op_index, 1u);
  // The recorded Program alone gives the same finding.
  Program p;
  p.ops = r.ops;
  const Verdict v = Executor::run(p, MmConfig{});
  ASSERT_EQ(v.findings.size(), 1u);
  EXPECT_EQ(v.findings[0].violation.signature(), "trace.unknown_free|kfree|trace");
}

TEST(ReplayBugs, LeaksAreGroupedByCallSiteAndCacheWithTheirLines) {
  std::string t;
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.1, kmalloc("ffff000001000080", 64, 128));
  t += line(0, 1.2, kmalloc("ffff000001000100", 64, 128));
  t += line(0, 1.3, kfree("ffff000001000080"));
  ExecOptions eo;
  EXPECT_TRUE(replay_text(t, {}, eo).verdict.ok());  // off unless asked for
  eo.report_leaks = true;
  const Result r = replay_text(t, {}, eo);
  const auto f = findings(r, "slab.leak");
  ASSERT_EQ(f.size(), 1u);
  const auto& v = f[0].violation;
  EXPECT_NE(v.title.find("2 objects (128 bytes)"), std::string::npos) << v.title;
  ASSERT_GE(v.details.size(), 3u);
  EXPECT_EQ(v.details[0], "unreferenced: 2 objects (128 bytes) of kmalloc-128 from f+0x10/0x20");
  EXPECT_NE(v.details[1].find("first: op #0, trace line 1:"), std::string::npos) << v.details[1];
  EXPECT_NE(v.details[2].find("last: op #2, trace line 3:"), std::string::npos) << v.details[2];
}

TEST(ReplayBugs, HeaderOverwrittenEventsCountAsLost) {
  std::string t = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 900/1000   #P:2\n#\n";
  t += line(0, 1.0, kmalloc("ffff000001000000", 64, 128));
  t += line(0, 1.1, kmalloc("ffff000001000000", 64, 128));
  const Result r = replay_text(t);
  EXPECT_EQ(r.stats.lost_events, 100u);
  EXPECT_EQ(r.stats.lost_markers, 1u);
  EXPECT_TRUE(r.verdict.ok());  // the missing free may be among the lost
}

}  // namespace
}  // namespace mmfuzz::trace
