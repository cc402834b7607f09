// The fuzzing core: snapshot restore is exact, decoding is total and
// deterministic, encode() round-trips, and the mutator keeps inputs valid.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fuzz/decoder.h"
#include "fuzz/harness.h"
#include "fuzz/mutator.h"
#include "mm/procfs/procfs.h"
#include "program/executor.h"
#include "program/text.h"

namespace mmfuzz::fuzz {
namespace {

std::vector<std::uint8_t> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::uint8_t> b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// Everything a Program can observe of a model, as text.
std::string state_of(const mm::Mm& m) {
  return mm::procfs::buddyinfo(m) + mm::procfs::pagetypeinfo(m) + mm::procfs::zoneinfo(m) +
         mm::procfs::meminfo(m) + mm::procfs::slabinfo(m) + mm::procfs::vmallocinfo(m);
}

struct RunResult {
  std::vector<std::uint64_t> results;  // addr / pfn / failed per op
  std::string state;
  std::uint64_t violations = 0;
};

RunResult run_on(mm::Mm& m, const prog::Program& p) {
  RunResult r;
  prog::Executor ex(m, p.strings, HarnessOptions::default_exec_options());
  for (const auto& op : p.ops) {
    const auto& res = ex.step(op);
    r.results.push_back(res.addr ^ (res.pfn << 1) ^ res.failed);
  }
  r.violations = ex.finish().nr_violations;
  r.state = state_of(m);
  return r;
}

class SnapshotTest : public ::testing::TestWithParam<const char*> {};

// A model restored from a snapshot after running other Programs behaves
// exactly like a freshly booted one: same results, same /proc views, and the
// RAM bytes and struct pages equal.
TEST_P(SnapshotTest, RestoredModelBehavesLikeAFreshBoot) {
  const TargetSpec& t = *find_target(GetParam());
  const mm::MmConfig cfg = target_config(t);
  mm::Mm snap(cfg), work(cfg);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 12; ++round) {
    const auto dirty = decode(random_bytes(rng, 600), t, DecodeTables::builtin());
    run_on(work, dirty.program);  // leave state behind
    work.restore_from(snap);
    const auto p = decode(random_bytes(rng, 600), t, DecodeTables::builtin());
    mm::Mm fresh(cfg);
    const RunResult a = run_on(work, p.program);
    const RunResult b = run_on(fresh, p.program);
    for (std::size_t i = 0; i < a.results.size(); ++i)
      ASSERT_EQ(a.results[i], b.results[i]) << "round " << round << " op " << i << ": "
                                            << prog::format_op(p.program.ops[i], p.program.strings);
    ASSERT_EQ(a.violations, b.violations) << "round " << round;
    ASSERT_EQ(a.state, b.state) << "round " << round;
    // Bytes and struct pages of all RAM.
    const mm::pfn_t first = work.ram.base() >> 12, end = work.ram.end() >> 12;
    for (mm::pfn_t pfn = first; pfn < end; ++pfn) {
      const auto x = work.ram.page_bytes(pfn), y = fresh.ram.page_bytes(pfn);
      ASSERT_TRUE(std::equal(x.begin(), x.end(), y.begin())) << "pfn " << pfn;
      ASSERT_EQ(0, std::memcmp(&work.pfn_to_page(pfn), &fresh.pfn_to_page(pfn), sizeof(mm::page)))
          << "struct page of pfn " << pfn << " round " << round;
    }
    work.restore_from(snap);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, SnapshotTest,
                         ::testing::Values("page_alloc", "slub", "slab", "slob", "vm", "mm"));

// The restore must fail loudly when it misses state: dirty the model behind
// restore's back (a page byte restore does not know was written is the
// worst case) and see the differential check above catch it.
TEST(Snapshot, RestoreCopiesWhatWasWritten) {
  const mm::MmConfig cfg = target_config(*find_target("slub"));
  mm::Mm snap(cfg), work(cfg);
  const mm::vaddr_t p = work.slab.kmalloc(64, mm::GFP_KERNEL);
  ASSERT_NE(p, 0u);
  const std::uint8_t x[4] = {1, 2, 3, 4};
  work.slab.write(p, x);
  EXPECT_NE(mm::procfs::slabinfo(work), mm::procfs::slabinfo(snap));
  work.restore_from(snap);
  EXPECT_EQ(mm::procfs::slabinfo(work), mm::procfs::slabinfo(snap));
  EXPECT_EQ(mm::procfs::buddyinfo(work), mm::procfs::buddyinfo(snap));
  EXPECT_EQ(work.ram.written_pages(), 0u);
  const mm::pfn_t pfn = work.virt_to_pfn(p);
  const auto a = work.ram.page_bytes(pfn), b = snap.ram.page_bytes(pfn);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
}

// Struct pages and page_owner records of RAM, byte for byte.
bool same_memmap(const mm::Mm& a, const mm::Mm& b) {
  const mm::pfn_t first = a.ram.base() >> a.profile.page_shift;
  const mm::pfn_t end = a.ram.end() >> a.profile.page_shift;
  for (mm::pfn_t pfn = first; pfn < end; ++pfn) {
    if (std::memcmp(&a.pfn_to_page(pfn), &b.pfn_to_page(pfn), sizeof(mm::page)) != 0) return false;
    const auto &x = a.page_alloc.owner(pfn), &y = b.page_alloc.owner(pfn);
    if (x.state != y.state || x.order != y.order || x.alloc_seq != y.alloc_seq) return false;
  }
  return true;
}

// Restore copies only the chunks of struct pages handed out writable since
// the last restore: each writable accessor must mark its page.
TEST(Snapshot, RestoreUndoesStructPageWritesThroughEveryAccessor) {
  const mm::MmConfig cfg = target_config(*find_target("page_alloc"));
  mm::Mm snap(cfg), work(cfg);
  work.restore_from(snap);  // clears the marks boot left
  ASSERT_TRUE(same_memmap(work, snap));
  const mm::pfn_t first = work.ram.base() >> work.profile.page_shift;
  const mm::pfn_t a = first + 1024, b = first + 2048;
  work.pfn_to_page(a).private_ = 7;                                      // Sparse::pfn_to_page
  work.sparse.link_to_page(work.sparse.pfn_to_link(b)).private_ = 9;     // link_to_page
  const mm::pfn_t got = work.page_alloc.alloc_pages(mm::GFP_KERNEL, 3);  // pg(), lists, owner
  ASSERT_NE(got, mm::NO_PAGE);
  work.page_alloc.__free_pages(got, 3);
  ASSERT_FALSE(same_memmap(work, snap));
  work.restore_from(snap);
  EXPECT_TRUE(same_memmap(work, snap));
  // The contract: a write around the accessors is not seen, and restore
  // leaves it (this is what the marks are for).
  (&work.pfn_to_page(a))[1u << mm::Sparse::kDirtyChunkShift].private_ = 11;  // the next chunk
  work.restore_from(snap);
  EXPECT_FALSE(same_memmap(work, snap));
}

TEST(Decoder, EveryInputDecodesDeterministically) {
  std::mt19937_64 rng(1);
  for (const auto& t : model_targets()) {
    EXPECT_TRUE(decode({}, t, DecodeTables::builtin()).program.ops.empty());
    for (int i = 0; i < 300; ++i) {
      const auto b = random_bytes(rng, rng() % 512);
      const auto d1 = decode(b, t, DecodeTables::builtin());
      const auto d2 = decode(b, t, DecodeTables::builtin());
      ASSERT_TRUE(d1.program == d2.program);
      ASSERT_EQ(d1.program.ops.size(), d1.misuse.size());
      for (const auto& op : d1.program.ops)
        ASSERT_TRUE(op.is<prog::Check>() || (t.op_mask >> static_cast<unsigned>(op.kind())) & 1)
            << t.name << ": " << prog::op_kind_name(op.kind());
    }
  }
}

// The kinds an op byte named before the typed arguments keep their bytes:
// the new kinds come after them (docs/fuzzing.md), so seeds decode as they
// did.
TEST(Decoder, OldKindsKeepTheirOpBytes) {
  using K = prog::OpKind;
  const std::vector<K> page = {K::alloc_pages, K::free_pages, K::split_page,     K::write,
                               K::read,        K::tick,       K::drain_all_pages};
  const std::vector<K> slab = {K::kmalloc,
                               K::kfree,
                               K::kmem_cache_create,
                               K::kmem_cache_alloc,
                               K::kmem_cache_free,
                               K::kmem_cache_shrink,
                               K::kmem_cache_destroy,
                               K::mempool_create,
                               K::mempool_alloc,
                               K::mempool_free,
                               K::mempool_destroy,
                               K::write,
                               K::read,
                               K::tick};
  const std::vector<K> vm = {K::vmalloc, K::vfree, K::vmap, K::vunmap, K::ioremap,
                             K::iounmap, K::write, K::read, K::tick};
  std::vector<K> mm;
  for (int k = 0; k <= static_cast<int>(K::drain_all_pages); ++k) mm.push_back(static_cast<K>(k));
  const std::map<std::string, std::vector<K>> old = {
      {"page_alloc", page}, {"slub", slab}, {"slab", slab}, {"slob", slab}, {"vm", vm}, {"mm", mm}};
  for (const auto& t : model_targets()) {
    const auto kinds = target_kinds(t);
    const auto& want = old.at(t.name);
    ASSERT_GT(kinds.size(), want.size()) << t.name;  // and new ones after them
    EXPECT_TRUE(std::equal(want.begin(), want.end(), kinds.begin())) << t.name;
  }
  EXPECT_GT(target_kinds(*find_target("mm")).size(), 31u);  // past one byte: the extension
}

// Two seeds of corpus/seeds, as they decoded before the typed arguments.
TEST(Decoder, SeedsDecodeAsBefore) {
  auto bodies = [](const prog::Program& p) {
    std::vector<std::string> v;
    for (const auto& op : p.ops) {
      const std::string line = prog::format_op(op, p.strings);
      v.push_back(line.substr(line.find(": ") + 2));
    }
    return v;
  };
  const std::vector<std::uint8_t> pages = {0x00, 0x00, 0x07, 0x00, 0x01, 0x05, 0x00, 0x01,
                                           0x05, 0x00, 0x00, 0x07, 0x00, 0x01, 0x05, 0x00,
                                           0x01, 0x05, 0x00, 0x00, 0x07, 0x00, 0x01, 0x05};
  const std::string nowarn = "__GFP_NOWARN|__GFP_NORETRY";
  const std::string small =
      "order=0 migratetype=-1 gfp_flags=GFP_KERNEL|" + nowarn + "|__GFP_RECLAIMABLE";
  const std::string comp = "order=1 migratetype=-1 gfp_flags=__GFP_IO|__GFP_FS|" + nowarn +
                           "|__GFP_COMP|__GFP_NOMEMALLOC|__GFP_RECLAIMABLE";
  std::vector<std::string> want;
  for (int i = 0; i < 8; ++i)
    want.push_back(fmt::format("mm_page_alloc: page=0000000000000000 pfn={:#x} {}",
                               0x1000 * (i + 1), i % 3 == 0 ? small : comp));
  EXPECT_EQ(bodies(decode(pages, *find_target("page_alloc"), DecodeTables::builtin()).program),
            want);
  const std::vector<std::uint8_t> vm = {0x0e, 0x00, 0x01, 0x0e, 0x01, 0x04, 0x14, 0x02, 0x00, 0xef,
                                        0x00, 0x00, 0x80, 0x40, 0x5a, 0x10, 0x03, 0x15, 0x02, 0x02,
                                        0xef, 0x00, 0xa0, 0x1f, 0xc8, 0x01, 0x00, 0x0f, 0x01, 0x0e,
                                        0x00, 0x05, 0x11, 0x01, 0x16, 0x0f, 0x00, 0x0f, 0x00};
  EXPECT_EQ(bodies(decode(vm, *find_target("mm"), DecodeTables::builtin()).program),
            (std::vector<std::string>{
                "mmfuzz_vmalloc: area=0x1 size=8192 api=vmalloc gfp_flags=none node=-1",
                "mmfuzz_vmalloc: area=0x2 size=100 api=vzalloc gfp_flags=none node=-1",
                "mmfuzz_write: area=0x1 offset=0 len=8192 byte=0x5a",
                "mmfuzz_vmap: area=0x3 pages=4",
                "mmfuzz_read: area=0x3 offset=4000 len=200",
                "mmfuzz_vfree: area=0x2",
                "mmfuzz_vmalloc: area=0x4 size=65536 api=vmalloc gfp_flags=none node=-1",
                "mmfuzz_vunmap: area=0x3",
                "mmfuzz_tick:",
                "mmfuzz_vfree: area=0x1",
                "mmfuzz_vfree: area=0x4",
            }));
}

// Random inputs reach every kind of every target (the mm target's last
// kinds through the extension byte), and the new kinds run.
TEST(Decoder, EveryKindOfATargetIsReached) {
  std::mt19937_64 rng(9);
  for (const auto& t : model_targets()) {
    std::set<prog::OpKind> seen;
    for (int i = 0; i < 400; ++i)
      for (const auto& op : decode(random_bytes(rng, 300), t, DecodeTables::builtin()).program.ops)
        seen.insert(op.kind());
    for (const prog::OpKind k : target_kinds(t))
      EXPECT_TRUE(seen.count(k)) << t.name << ": " << prog::op_kind_name(k);
  }
}

// Frees and accesses mostly hit live handles; some are misuse.
TEST(Decoder, HandlesHitLiveObjectsMostly) {
  std::mt19937_64 rng(2);
  std::size_t ops = 0, misuse = 0, skipped = 0;
  const TargetSpec& t = *find_target("mm");
  for (int i = 0; i < 40; ++i) {
    const auto d = decode(random_bytes(rng, 400), t, DecodeTables::builtin());
    ops += d.program.ops.size();
    for (const bool b : d.misuse) misuse += b;
    mm::Mm fresh(target_config(t));
    prog::Executor ex(fresh, d.program.strings, HarnessOptions::default_exec_options());
    for (const auto& op : d.program.ops) ex.step(op);
    skipped += ex.finish().skipped_ops;
  }
  ASSERT_GT(ops, 1000u);
  EXPECT_GT(misuse, ops / 50) << "misuse should happen some of the time";
  EXPECT_LT(misuse, ops / 3) << "most ops should be valid";
  EXPECT_LT(skipped, ops / 5) << "few ops should name nothing";
}

// encode(decode(b)) decodes to the same Program; a Program from a trace
// encodes to bytes that decode to it up to handle numbering and cache names.
TEST(Decoder, EncodeRoundTrips) {
  std::mt19937_64 rng(3);
  for (const auto& t : model_targets()) {
    for (int i = 0; i < 200; ++i) {
      const auto d = decode(random_bytes(rng, rng() % 600), t, DecodeTables::builtin());
      const auto bytes = encode(d.program, t, DecodeTables::builtin());
      const auto again = decode(bytes, t, DecodeTables::builtin());
      ASSERT_TRUE(again.program == d.program) << t.name << " input " << i << "\n"
                                              << prog::print_program(d.program) << "---\n"
                                              << prog::print_program(again.program);
    }
  }
}

TEST(Decoder, EncodesAProgramWrittenByHand) {
  const auto p = prog::parse_program(
      "# mmfuzz program v1\n"
      "kmalloc: call_site=0 ptr=0x10 bytes_req=100 bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1\n"
      "kmalloc: call_site=0 ptr=0x20 bytes_req=5000 bytes_alloc=0 gfp_flags=GFP_KERNEL node=-1\n"
      "kfree: call_site=0 ptr=0x10\n"
      "kfree: call_site=0 ptr=0x10\n"
      "kfree: call_site=0 ptr=0x20\n");
  const TargetSpec& t = *find_target("slub");
  const auto d = decode(encode(p, t, DecodeTables::builtin()), t, DecodeTables::builtin());
  ASSERT_EQ(d.program.ops.size(), 5u);
  EXPECT_EQ(d.program.ops[1].as<prog::Kmalloc>().size, 5000u);
  const prog::Handle h = d.program.ops[0].as<prog::Kmalloc>().obj;
  EXPECT_EQ(d.program.ops[2].as<prog::Kfree>().obj, h);
  EXPECT_EQ(d.program.ops[3].as<prog::Kfree>().obj, h);  // the double free survives
  EXPECT_TRUE(d.misuse[3]);
  EXPECT_FALSE(d.misuse[2]);
}

TEST(Mutator, KeepsInputsDecodableAndChangesThem) {
  std::mt19937_64 rng(4);
  const TargetSpec& t = *find_target("mm");
  std::size_t changed = 0;
  for (unsigned i = 0; i < 300; ++i) {
    auto b = random_bytes(rng, 200);
    b.resize(4096);
    const std::vector<std::uint8_t> before(b.begin(), b.begin() + 200);
    const std::size_t n = mutate(b.data(), 200, b.size(), i, t, DecodeTables::builtin(), nullptr);
    ASSERT_LE(n, b.size());
    const auto d = decode({b.data(), n}, t, DecodeTables::builtin());
    const auto d0 = decode(before, t, DecodeTables::builtin());
    changed += !(d.program == d0.program);
    std::vector<std::uint8_t> out(4096);
    const std::size_t m = cross_over(b.data(), n, before.data(), before.size(), out.data(),
                                     out.size(), i, t, DecodeTables::builtin());
    ASSERT_LE(m, out.size());
  }
  EXPECT_GT(changed, 200u);
}

// A violation in an input is a crash: the harness prints the signature
// line and the Program text, then calls the crash handler. A planted buddy
// bug makes random page-allocator inputs crash within a few hundred tries.
TEST(Harness, PlantedDefectCrashesWithReport) {
  if (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  HarnessOptions opts;
  opts.planted = "buddy_skip_merge";
  Harness h(*find_target("page_alloc"), opts);
  std::string report;
  Harness::set_crash_handler([&](const Outcome& o) { report = crash_report(o, "page_alloc"); });
  std::mt19937_64 rng(5);
  int tries = 0;
  for (; tries < 5000 && report.empty(); ++tries) {
    const auto b = random_bytes(rng, 512);
    testing::internal::CaptureStderr();
    h.test_one_input(b.data(), b.size());
    testing::internal::GetCapturedStderr();
  }
  Harness::set_crash_handler([](const Outcome&) { std::abort(); });
  ASSERT_FALSE(report.empty()) << "no crash in " << tries << " inputs";
  EXPECT_NE(report.find("MMFUZZ-SIGNATURE: buddy."), std::string::npos) << report;
  EXPECT_NE(report.find("==MMFUZZ== end program"), std::string::npos);
  // For programs, one last line of JSON: the crash findings as the report
  // writer makes them, with the same signatures as the lines for people.
  const auto jpos = report.rfind("\nMMFUZZ-JSON: ");
  ASSERT_NE(jpos, std::string::npos) << report;
  EXPECT_EQ(report.find("MMFUZZ-JSON: "), jpos + 1) << "more than one MMFUZZ-JSON line";
  const std::string jline = report.substr(jpos + 14);
  ASSERT_EQ(jline.find('\n'), jline.size() - 1) << "not the last line, or not one line";
  const nlohmann::json j = nlohmann::json::parse(jline);
  EXPECT_EQ(j["schema"], "mmfuzz-crash-1");
  EXPECT_EQ(j["target"], "page_alloc");
  ASSERT_FALSE(j["findings"].empty());
  for (const auto& sig : j["signatures"])
    EXPECT_NE(report.find("MMFUZZ-SIGNATURE: " + sig.get<std::string>() + "\n"), std::string::npos)
        << sig;
  const auto& f0 = j["findings"][0];
  EXPECT_EQ(f0["kind"], "invariant");
  EXPECT_EQ(f0["invariant"].get<std::string>().rfind("buddy.", 0), 0u) << f0["invariant"];
  EXPECT_EQ(f0["signature"], j["signatures"][0]);
  EXPECT_TRUE(f0["op"].contains("kind"));
  // The Program states the target's configuration and what it crashed with.
  const auto p0 = report.find("# mmfuzz program v2");
  const auto p1 = report.find("==MMFUZZ== end program");
  ASSERT_NE(p0, std::string::npos) << report;
  prog::Program p = prog::parse_program(report.substr(p0, p1 - p0));
  EXPECT_EQ(p.header.target, "page_alloc");
  EXPECT_EQ(p.header.machine, "fuzz");
  EXPECT_FALSE(p.header.slab_enabled);
  EXPECT_EQ(p.header.planted, mm::PlantedDefect::buddy_skip_merge);
  EXPECT_FALSE(p.header.record_misuse);
  EXPECT_FALSE(p.header.final_sweep);
  ASSERT_FALSE(p.header.expect.empty());
  EXPECT_TRUE(p.header.same_run(h.header()));
  // It reproduces on its own: on a harness without the plant, and through
  // the Executor configured by its header alone.
  Harness clean(*find_target("page_alloc"));
  EXPECT_TRUE(clean.run_program(p).crashed());
  const prog::Verdict v = prog::Executor::run(p, p.header.mm_config(), p.header.exec_options());
  for (const auto& sig : p.header.expect) {
    bool seen = false;
    for (const auto& f : v.findings) seen = seen || f.violation.signature() == sig;
    EXPECT_TRUE(seen) << sig;
  }
  // Without the defect the same ops are clean.
  p.header.planted = mm::PlantedDefect::none;
  EXPECT_FALSE(clean.run_program(p).crashed());
}

// A v2 Program runs under its header even on another target's harness; the
// harness's own planted defect overrides the header's and says so.
TEST(Harness, RunsAV2ProgramUnderItsHeader) {
  if (!mm::kPlantedDefects) GTEST_SKIP() << "built without MMFUZZ_PLANTED_DEFECTS";
  prog::Program p = prog::parse_program(
      "# mmfuzz program v2\n"
      "# target: page_alloc\n"
      "# machine: fuzz\n"
      "# slab: none\n"
      "# vmalloc: off\n"
      "# planted: buddy_skip_merge\n"
      "mmfuzz_alloc_pages: pfn=0x1 order=1 gfp_flags=GFP_KERNEL node=0 migratetype=-1\n"
      "mmfuzz_alloc_pages: pfn=0x2 order=1 gfp_flags=GFP_KERNEL node=0 migratetype=-1\n"
      "mm_page_free: page=0 pfn=0x1 order=1\n"
      "mm_page_free: page=0 pfn=0x2 order=1\n"
      "mmfuzz_check:\n");
  Harness slub(*find_target("slub"));
  const Outcome planted = slub.run_program(p);
  EXPECT_TRUE(planted.error.empty()) << planted.error;
  EXPECT_EQ(planted.header, nullptr);  // its own model, not the slub snapshot
  EXPECT_EQ(planted.program.header.planted, mm::PlantedDefect::buddy_skip_merge);
  EXPECT_TRUE(planted.overrides.empty());
  HarnessOptions none;
  none.planted = "none";
  Harness unplanted(*find_target("slub"), none);
  const Outcome o = unplanted.run_program(p);
  EXPECT_FALSE(o.crashed());
  ASSERT_EQ(o.overrides.size(), 1u);
  EXPECT_EQ(o.overrides[0], "MMFUZZ_PLANT none overrides the program's planted: buddy_skip_merge");
  // A bad header is no crash: the input does not run, Outcome::error says why.
  const std::string bad = "# mmfuzz program v2\n# slab: slub2\n";
  const Outcome b = slub.run({reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size()});
  EXPECT_FALSE(b.crashed());
  EXPECT_NE(b.error.find("slub2"), std::string::npos) << b.error;
}

// Each target's header is its machine: the 16 MiB fuzz machine, its
// allocator, vmalloc and checks; a Program printed with it reads back the same.
TEST(Harness, TargetHeadersDescribeTheTargets) {
  for (const auto& t : model_targets()) {
    const prog::ProgramHeader h = target_header(t);
    const mm::MmConfig c = target_config(t);
    EXPECT_EQ(h.target, t.name);
    EXPECT_EQ(c.machine.name, "fuzz");
    EXPECT_EQ(c.machine.ram_size, 16 * mm::SZ_1M);
    EXPECT_EQ(c.machine.cma_size, 0u);
    EXPECT_EQ(c.slab.enabled, t.slab_enabled);
    if (t.slab_enabled) {
      EXPECT_EQ(c.slab.variant, t.slab);
    }
    EXPECT_EQ(c.vmalloc, t.vmalloc);
    Harness harness(t);
    EXPECT_EQ(harness.header().checks, t.checks);
    EXPECT_FALSE(harness.header().record_misuse);
    prog::Program p;
    p.header = harness.header();
    EXPECT_TRUE(prog::parse_program(prog::print_program(p)).header.same_run(harness.header()))
        << t.name;
  }
}

// The machines an input may ask for (0xfe M): each boots what it says
// (zones across the DMA limit, two nodes, CMA), the decoded Program's header
// states it, encode() writes the prefix back, and a Program printed with the
// outcome's header replays on the same machine.
TEST(Harness, InputsPickTheirMachine) {
  const TargetSpec& t = *find_target("mm");
  const auto& tab = DecodeTables::builtin();
  ASSERT_GE(fuzz_machines().size(), 5u);
  std::mt19937_64 rng(7);
  Harness h(t);
  for (unsigned i = 0; i < fuzz_machines().size(); ++i) {
    const FuzzMachine& fm = fuzz_machines()[i];
    std::vector<std::uint8_t> in = random_bytes(rng, 300);
    in.insert(in.begin(), {kMachinePrefix, static_cast<std::uint8_t>(i + fuzz_machines().size())});
    const Decoded d = decode(in, t, tab);
    EXPECT_EQ(d.machine, i) << fm.name;
    EXPECT_EQ(fuzz_machine_of(d.program.header), i) << fm.name;
    const Decoded again = decode(encode(d.program, t, tab), t, tab);
    EXPECT_EQ(again.machine, i) << fm.name;
    EXPECT_EQ(again.program.ops.size(), d.program.ops.size()) << fm.name;

    const mm::MmConfig c = target_config(t, i);
    EXPECT_EQ(c.machine.ram_size, fm.ram) << fm.name;
    EXPECT_EQ(c.machine.ram_base, fm.ram_base) << fm.name;
    const mm::Mm m(c);
    const auto& nodes = m.page_alloc.node_data;
    ASSERT_EQ(nodes.size(), fm.nodes) << fm.name;
    int populated = 0;
    for (const auto& n : nodes)
      for (const auto& z : n.node_zones) populated += z.populated_zone();
    const bool across = fm.ram_base + fm.ram > (std::uint64_t{1} << 32);
    // Per node: DMA alone, or DMA and Normal when RAM crosses 4 GiB (with
    // two nodes the lower one is all DMA, the upper all Normal).
    EXPECT_EQ(populated, fm.nodes == 2 ? 2 : across ? 2 : 1) << fm.name;
    if (across) {
      EXPECT_TRUE(nodes.back().node_zones[mm::ZONE_NORMAL].populated_zone()) << fm.name;
      EXPECT_TRUE(nodes.front().node_zones[mm::ZONE_DMA].populated_zone()) << fm.name;
    }
    EXPECT_EQ(m.page_alloc.totalcma_pages, fm.cma >> 12) << fm.name;

    const Outcome o = h.run(in);
    ASSERT_NE(o.header, nullptr);
    EXPECT_EQ(fuzz_machine_of(*o.header), i) << fm.name;
    prog::Program p = o.program;
    p.header = *o.header;
    const prog::Program back = prog::parse_program(prog::print_program(p));
    EXPECT_TRUE(back.header.same_run(*o.header)) << fm.name;
    EXPECT_EQ(back.header.mm_config().machine.nr_nodes, fm.nodes) << fm.name;
    // The harness runs it on that machine's snapshot, with the same verdict.
    const Outcome r = h.run_program(back);
    EXPECT_EQ(r.header, o.header) << fm.name;
    EXPECT_EQ(r.verdict.findings.size(), o.verdict.findings.size()) << fm.name;
  }
  // No prefix: the first machine, and encode() adds none.
  const std::vector<std::uint8_t> plain = {0x01, 0x10, 0x02, 0x20};
  const Decoded d = decode(plain, t, tab);
  EXPECT_EQ(d.machine, 0u);
  const auto bytes = encode(d.program, t, tab);
  ASSERT_FALSE(bytes.empty());
  EXPECT_NE(bytes[0], kMachinePrefix);
}

TEST(Harness, UnknownPlantedDefectIsAConfigError) {
  HarnessOptions opts;
  opts.planted = "no_such_bug";
  EXPECT_THROW(Harness(*find_target("slub"), opts), mm::ConfigError);
}

}  // namespace
// corpus/regressions/slob/stale-free-then-write.program: a stale free frees
// another handle's object, which the Program then writes. With writes the
// model refuses performed anyway, the free block's header is overwritten and
// the sweep reports it; the harness drops the write and stays clean.
TEST(Harness, RefusedWritesDoNotCorruptFreeMemory) {
  std::ifstream in(std::string(MMFUZZ_SOURCE_DIR) +
                   "/corpus/regressions/slob/stale-free-then-write.program");
  ASSERT_TRUE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  prog::Program p = prog::parse_program(text, "stale-free-then-write.program");
  ASSERT_EQ(p.ops.size(), 8u);
  const TargetSpec& t = *find_target("slob");
  Harness safe(t);
  EXPECT_TRUE(p.header.same_run(safe.header()));  // the slob target's header
  EXPECT_FALSE(safe.run_program(p).crashed());
  // Its header decides, not the harness: misuse writes off even here.
  HarnessOptions raw;
  raw.exec.misuse_writes = true;
  Harness scribbling(t, raw);
  EXPECT_FALSE(scribbling.run_program(p).crashed());
  p.header.misuse_writes = true;
  for (Harness* h : {&safe, &scribbling}) {
    const Outcome o = h->run_program(p);
    ASSERT_TRUE(o.crashed());
    EXPECT_EQ(o.verdict.findings[o.crashes[0]].violation.invariant, "slab.counts");
  }
}

}  // namespace mmfuzz::fuzz
