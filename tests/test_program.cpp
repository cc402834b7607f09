// Programs: the text form round-trips, and the Executor runs every op kind
// against the model and reports violations with the op and its provenance.
#include <gtest/gtest.h>

#include "mm/mm.h"
#include "program/build.h"
#include "program/executor.h"
#include "program/text.h"
#include "trace/source.h"

namespace mmfuzz::prog {

using namespace mmfuzz::trace;
namespace {

using namespace mmfuzz::mm;

Op make(OpKind k, std::uint64_t h = 0) {
  Op op;
  op.kind = k;
  op.h = h;
  return op;
}

// One op of every kind, with provenance on some.
Program every_kind() {
  Program p;
  auto& s = p.strings;
  Op a = make(OpKind::alloc_pages, 0x1000);
  a.order = 2;
  a.gfp = GFP_KERNEL;
  a.expect_mt = 0;
  a.cpu = 1;
  a.ts_ns = 1234567000;
  a.pid = 42;
  a.comm = s.intern("kworker/1:0");
  p.ops.push_back(a);
  Op an = make(OpKind::alloc_pages, 0x2000);
  an.node = 0;
  an.gfp = GFP_KERNEL | __GFP_ZERO;
  p.ops.push_back(an);
  Op sp = make(OpKind::split_page, 0x1000);
  p.ops.push_back(sp);
  Op f = make(OpKind::free_pages, 0x1001);
  p.ops.push_back(f);
  Op km = make(OpKind::kmalloc, 0xffff000012345678);
  km.size = 100;
  km.expect_bytes_alloc = 128;
  km.gfp = GFP_KERNEL_ACCOUNT;
  km.call_site = s.intern("alloc_thing+0x1c/0x40");
  km.ts_ns = 5000000001;  // needs nanoseconds
  p.ops.push_back(km);
  Op cc = make(OpKind::kmem_cache_create);
  cc.name = s.intern("test_cache");
  cc.size = 72;
  cc.arg = 8;
  cc.flags = SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT;
  cc.flags2 = kCtorFlag;
  cc.byte = 0x3c;
  p.ops.push_back(cc);
  Op ca = make(OpKind::kmem_cache_alloc, 7);
  ca.name = cc.name;
  ca.size = 72;
  ca.gfp = GFP_KERNEL;
  ca.node = 0;
  p.ops.push_back(ca);
  Op w = make(OpKind::write, 7);
  w.arg = 8;
  w.size = 16;
  w.byte = 0xab;
  p.ops.push_back(w);
  Op r = make(OpKind::read, 0x2000);
  r.space = Space::page;
  r.size = 64;
  p.ops.push_back(r);
  Op cf = make(OpKind::kmem_cache_free, 7);
  cf.name = cc.name;
  p.ops.push_back(cf);
  Op sh = make(OpKind::kmem_cache_shrink);
  sh.name = cc.name;
  p.ops.push_back(sh);
  Op mc = make(OpKind::mempool_create);
  mc.h2 = 3;
  mc.arg = 4;
  mc.byte = 1;
  mc.size = 256;
  mc.gfp = GFP_KERNEL;
  p.ops.push_back(mc);
  Op ma = make(OpKind::mempool_alloc, 9);
  ma.h2 = 3;
  ma.gfp = GFP_NOIO;
  p.ops.push_back(ma);
  Op mf = make(OpKind::mempool_free, 9);
  mf.h2 = 3;
  p.ops.push_back(mf);
  Op md = make(OpKind::mempool_destroy);
  md.h2 = 3;
  p.ops.push_back(md);
  Op vm = make(OpKind::vmalloc, 0x10);
  vm.size = 3 * 4096 + 5;
  vm.byte = 1;
  p.ops.push_back(vm);
  Op vw = make(OpKind::write, 0x10);
  vw.space = Space::area;
  vw.arg = 4096;
  vw.size = 100;
  vw.byte = 0x5a;
  p.ops.push_back(vw);
  p.ops.push_back(make(OpKind::vfree, 0x10));
  Op vp = make(OpKind::vmap, 0x20);
  vp.size = 4;
  p.ops.push_back(vp);
  p.ops.push_back(make(OpKind::vunmap, 0x20));
  Op io = make(OpKind::ioremap, 0x30);
  io.arg = 0x09000000;
  io.size = 0x1000;
  io.byte = 1;
  p.ops.push_back(io);
  p.ops.push_back(make(OpKind::iounmap, 0x30));
  Op kf = make(OpKind::kfree, 0xffff000012345678);
  kf.call_site = km.call_site;
  p.ops.push_back(kf);
  Op dd = make(OpKind::kmem_cache_destroy);
  dd.name = cc.name;
  p.ops.push_back(dd);
  p.ops.push_back(make(OpKind::tick));
  p.ops.push_back(make(OpKind::drain_all_pages));
  p.ops.push_back(make(OpKind::check));
  Op fr = make(OpKind::free_pages, 0x2000);
  p.ops.push_back(fr);
  return p;
}

TEST(ProgramText, EveryOpKindRoundTrips) {
  const Program p = every_kind();
  std::vector<bool> seen(kNrOpKinds);
  for (const Op& op : p.ops) seen[static_cast<std::size_t>(op.kind)] = true;
  for (int k = 0; k < kNrOpKinds; ++k)
    EXPECT_TRUE(seen[static_cast<std::size_t>(k)]) << op_kind_name(static_cast<OpKind>(k));
  const std::string text = print_program(p);
  const Program q = parse_program(text);
  ASSERT_EQ(q.ops.size(), p.ops.size());
  for (std::size_t i = 0; i < p.ops.size(); ++i)
    EXPECT_TRUE(q.ops[i].same_as(p.ops[i])) << "op " << i << ": " << format_op(p.ops[i], p.strings)
                                            << "\n  re-read as " << format_op(q.ops[i], q.strings);
  EXPECT_TRUE(q == p);
  // print(parse(print(p))) is the same text
  EXPECT_EQ(print_program(q), text);
  // Source lines: the header is line 1.
  EXPECT_EQ(q.ops[0].line, 2u);
}

TEST(ProgramText, RandomProgramsRoundTrip) {
  SplitMix64 rng{7};
  for (int round = 0; round < 50; ++round) {
    Program p;
    for (int i = 0; i < 200; ++i) {
      Op op;
      op.kind = static_cast<OpKind>(rng.below(kNrOpKinds));
      op.h = rng.below(4) ? rng.below(1000) + 1 : rng.next();
      op.cpu = static_cast<std::int16_t>(rng.below(8));
      op.ts_ns = rng.below(3) ? rng.next() % 100000000000000ull : 0;
      op.pid = static_cast<std::int32_t>(rng.below(100000));
      switch (op.kind) {
        case OpKind::alloc_pages:
          op.order = static_cast<std::uint8_t>(rng.below(11));
          op.gfp = static_cast<std::uint32_t>(rng.next()) & 0xffffffu;
          op.node = rng.below(2) ? -1 : 0;
          op.expect_mt = static_cast<std::int8_t>(rng.below(6)) - 1;
          break;
        case OpKind::free_pages:
          op.order = static_cast<std::uint8_t>(rng.below(11));
          break;
        case OpKind::kmalloc:
        case OpKind::kmem_cache_alloc:
          op.size = rng.below(1 << 20);
          op.expect_bytes_alloc = rng.below(1 << 20);
          op.gfp = static_cast<std::uint32_t>(rng.next()) & 0xffffffu;
          op.node = rng.below(2) ? -1 : 0;
          op.call_site = p.strings.intern(rng.below(2) ? "f+0x1/0x2" : "0xffff800008001234");
          if (op.kind == OpKind::kmem_cache_alloc)
            op.name = p.strings.intern("c" + std::to_string(rng.below(5)));
          break;
        case OpKind::kmem_cache_create:
          op.name = p.strings.intern("c" + std::to_string(rng.below(5)));
          op.size = rng.below(5000);
          op.arg = rng.below(2) ? 0 : 64;
          op.flags = rng.below(2) ? SLAB_POISON | SLAB_RED_ZONE : 0;
          break;
        case OpKind::kmem_cache_free:
        case OpKind::kmem_cache_shrink:
        case OpKind::kmem_cache_destroy:
          op.name = p.strings.intern("c" + std::to_string(rng.below(5)));
          break;
        case OpKind::mempool_create:
          op.h2 = rng.below(10);
          op.arg = rng.below(16);
          op.byte = static_cast<std::uint8_t>(rng.below(3));
          op.size = rng.below(4096);
          op.order = static_cast<std::uint8_t>(rng.below(3));
          break;
        case OpKind::mempool_alloc:
        case OpKind::mempool_free:
        case OpKind::mempool_destroy:
          op.h2 = rng.below(10);
          if (op.kind == OpKind::mempool_alloc) op.gfp = GFP_NOIO;
          if (op.kind == OpKind::mempool_destroy) op.h = 0;
          break;
        case OpKind::vmalloc:
          op.size = rng.below(1 << 22);
          op.byte = static_cast<std::uint8_t>(rng.below(4));
          op.node = rng.below(2) ? -1 : 0;
          break;
        case OpKind::vmap:
          op.size = rng.below(64);
          break;
        case OpKind::ioremap:
          op.arg = rng.next() >> 16;
          op.size = rng.below(1 << 16);
          op.byte = static_cast<std::uint8_t>(rng.below(3));
          break;
        case OpKind::write:
        case OpKind::read:
          op.space = static_cast<Space>(rng.below(3));
          op.arg = rng.below(8192);
          op.size = rng.below(8192);
          op.byte = static_cast<std::uint8_t>(rng.next());
          break;
        case OpKind::tick:
        case OpKind::drain_all_pages:
        case OpKind::check:
          op.h = 0;
          break;
        default:
          break;
      }
      // Kinds without an object, page or area handle.
      if (op.kind == OpKind::kmem_cache_create || op.kind == OpKind::kmem_cache_shrink ||
          op.kind == OpKind::kmem_cache_destroy || op.kind == OpKind::mempool_create ||
          op.kind == OpKind::mempool_destroy)
        op.h = 0;
      p.ops.push_back(op);
    }
    const Program q = parse_program(print_program(p));
    ASSERT_EQ(q.ops.size(), p.ops.size());
    for (std::size_t i = 0; i < p.ops.size(); ++i)
      ASSERT_TRUE(q.ops[i].same_as(p.ops[i]))
          << "round " << round << " op " << i << ": " << format_op(p.ops[i], p.strings)
          << "\n  re-read as " << format_op(q.ops[i], q.strings);
    ASSERT_TRUE(q == p) << "round " << round;
  }
}

TEST(ProgramText, BadLinesAreErrorsWithLineNumbers) {
  const std::string text = std::string(kProgramHeader) +
                           "\n"
                           "  <...>-0 [000] ..... 0.000000: mmfuzz_tick:\n"
                           "  <...>-0 [000] ..... 0.000000: mmfuzz_vmalloc: area=0x1 size=zz\n";
  try {
    parse_program(text, "p.trace");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("p.trace:3:"), std::string::npos) << what;
    EXPECT_NE(what.find("size"), std::string::npos) << what;
  }
  EXPECT_THROW(parse_program("  <...>-0 [000] ..... 0.0: mmfuzz_frobnicate: x=1\n"), InputError);
  EXPECT_THROW(parse_program("this is not a trace line\n"), InputError);
  // rss_stat is a kmem event but no op.
  EXPECT_THROW(parse_program("  sh-1 [000] ..... 1.000000: rss_stat: mm_id=1 curr=1 "
                             "type=MM_ANONPAGES size=4096B\n"),
               InputError);
}

// Found by fuzz_program_text: lines whose op the printed form could not
// carry (names ending in a separator, no name, a field the op does not use).
TEST(ProgramText, OddLinesRoundTrip) {
  const std::string h = std::string(kProgramHeader) + "\n";
  for (const std::string_view line : {
           // a name ending in '\r' (printed last: the line end dropped it)
           "kmem_cache_free: call_site=f ptr=1 name=names_cache\r size=1",
           // an extension event's name ending in a tab (trimmed when printed last)
           "mmfuzz_kmem_cache_shrink: name=fuzz_cache\t flags=0",
           // no name: printed as (null), read back as none
           "mmfuzz_kmem_cache_shrink: name=",
           "mmfuzz_kmem_cache_destroy: name=(null)",
           "mmfuzz_kmem_cache_create: name= size=8 align=0 flags=0 ctor=none",
           // mempool_free takes no GFP mask (and does not print one)
           "mmfuzz_mempool_free: pool=1 ptr=1 gfp_flags=5",
       }) {
    const Program p = parse_program(h + std::string(line) + "\n");
    ASSERT_EQ(p.ops.size(), 1u) << line;
    const std::string text = print_program(p);
    const Program q = parse_program(text);
    EXPECT_TRUE(q == p) << line << "\n  printed as " << text;
    EXPECT_EQ(print_program(q), text);
  }
  const Program p = parse_program(h + "mmfuzz_kmem_cache_shrink: name=fuzz_cache\t flags=0\n");
  EXPECT_EQ(p.strings.str(p.ops[0].name), "fuzz_cache");
  const Program n = parse_program(h + "mmfuzz_kmem_cache_destroy: name=(null)\n");
  EXPECT_EQ(n.ops[0].name, 0u);
}

MmConfig small_config() {
  MmConfig c;
  c.machine = small_machine();
  return c;
}

TEST(Executor, CleanProgramIsOk) {
  const Program p = every_kind();
  const Verdict v = Executor::run(p, small_config());
  for (const auto& f : v.findings) ADD_FAILURE() << f.violation.to_text(false);
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.ops, p.ops.size());
  EXPECT_EQ(v.skipped_ops, 0u);
  EXPECT_GE(v.full_sweeps, 2u);  // the check op and the final sweep
}

TEST(Executor, DoubleFreeIsAViolationWithProvenance) {
  Program p;
  Op a = make(OpKind::kmalloc, 5);
  a.size = 64;
  a.gfp = GFP_KERNEL;
  p.ops.push_back(a);
  Op f = make(OpKind::kfree, 5);
  f.call_site = p.strings.intern("free_it+0x10/0x20");
  f.line = 77;
  f.cpu = 1;
  f.ts_ns = 2500000000;
  p.ops.push_back(f);
  p.ops.push_back(f);
  const Verdict v = Executor::run(p, small_config());
  ASSERT_FALSE(v.ok());
  ASSERT_FALSE(v.findings.empty());
  const Finding& x = v.findings.front();
  EXPECT_EQ(x.violation.invariant, "slab.double_free");
  EXPECT_EQ(x.op_index, 2u);
  EXPECT_EQ(x.op.line, 77u);
  EXPECT_EQ(x.op.cpu, 1);
  EXPECT_EQ(p.strings.str(x.op.call_site), "free_it+0x10/0x20");
}

// The builder hands out handles per space and writes ops the Executor runs
// as the kernel calls read: a kmem_cache round trip, a split, a double free.
TEST(ProgramBuilder, BuildsRunnableProgramsWithFreshHandles) {
  ProgramBuilder b;
  b.kmem_cache_create("test_cache", 96, 8, 0, std::uint8_t{0x5a});
  const Handle o = b.kmem_cache_alloc("test_cache", GFP_KERNEL);
  const Handle k = b.kmalloc(200, GFP_KERNEL);
  EXPECT_NE(o, k);
  b.write(Space::object, k, 0, 200, 0xaa);
  const Handle pg = b.alloc_pages(2, GFP_KERNEL);
  const Handle pg2 = b.alloc_pages(0, GFP_KERNEL);
  EXPECT_GE(pg2 - pg, kPageHandleStride);
  b.split_page(pg);
  for (Handle i = 0; i < 4; ++i) b.free_pages(pg + i, 0);
  b.free_pages(pg2, 0);
  b.set_cpu(1);
  b.kmem_cache_free("test_cache", o);
  EXPECT_EQ(b.last().cpu, 1);
  b.kfree(k);
  const Program clean = b.program();
  const Verdict v = Executor::run(clean, small_config());
  for (const auto& f : v.findings) ADD_FAILURE() << f.violation.to_text(false);
  EXPECT_EQ(v.skipped_ops, 0u);
  EXPECT_EQ(parse_program(print_program(clean)), clean);

  b.kfree(k);  // the second kfree is the Program's bug
  const Verdict bad = Executor::run(b.take(), small_config());
  ASSERT_FALSE(bad.findings.empty());
  EXPECT_EQ(bad.findings.front().violation.invariant, "slab.double_free");
}

TEST(Executor, UnboundHandlesAreSkippedNotRun) {
  Program p;
  p.ops.push_back(make(OpKind::kfree, 99));
  p.ops.push_back(make(OpKind::free_pages, 99));
  p.ops.push_back(make(OpKind::vfree, 99));
  Op ca = make(OpKind::kmem_cache_alloc, 1);
  ca.name = p.strings.intern("no_such_cache");
  p.ops.push_back(ca);
  const Verdict v = Executor::run(p, small_config());
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.skipped_ops, 4u);
}

TEST(Executor, MisuseThroughEachSubsystemIsReported) {
  struct Case {
    const char* id;
    std::vector<Op> ops;
  };
  Op km = make(OpKind::kmalloc, 1);
  km.size = 24;
  km.gfp = GFP_KERNEL;
  Op oob = make(OpKind::write, 1);
  oob.arg = 20;
  oob.size = 8;
  Op ap = make(OpKind::alloc_pages, 2);
  ap.gfp = GFP_KERNEL;
  Op fp = make(OpKind::free_pages, 2);
  Op vm = make(OpKind::vmalloc, 3);
  vm.size = 4096;
  Op guard = make(OpKind::write, 3);
  guard.space = Space::area;
  guard.arg = 4096;
  guard.size = 1;
  Op io = make(OpKind::ioremap, 4);
  io.arg = 0x40000000;  // RAM
  io.size = 0x1000;
  const std::vector<Case> cases = {
      {"kasan.out_of_bounds", {km, oob}},
      {"page_alloc.double_free", {ap, fp, fp}},
      {"vm.fault", {vm, guard}},
      {"vmalloc.double_free", {vm, make(OpKind::vfree, 3), make(OpKind::vfree, 3)}},
      {"ioremap.ram", {io}},
  };
  for (const auto& c : cases) {
    Program p;
    p.ops = c.ops;
    const Verdict v = Executor::run(p, small_config());
    ASSERT_FALSE(v.findings.empty()) << c.id;
    EXPECT_EQ(v.findings.front().violation.invariant, c.id);
  }
}

TEST(Executor, ChecksOffReportsNothing) {
  Program p;
  Op a = make(OpKind::kmalloc, 5);
  a.size = 64;
  p.ops.push_back(a);
  p.ops.push_back(make(OpKind::kfree, 5));
  p.ops.push_back(make(OpKind::kfree, 5));
  ExecOptions o;
  o.mode = CheckMode::off;
  EXPECT_TRUE(Executor::run(p, small_config(), o).ok());
  o.mode = CheckMode::full;
  EXPECT_FALSE(Executor::run(p, small_config(), o).ok());
}

TEST(Executor, HandleZeroAllocationsLeaveNothingBehind) {
  // Handle 0: the trace saw the allocation fail; whatever the model
  // allocates is given back at once.
  Mm m(small_config());
  StringTable st;
  Executor ex(m, st);
  Op a = make(OpKind::kmalloc, 0);
  a.size = 64;
  a.gfp = GFP_KERNEL;
  EXPECT_FALSE(ex.step(a).failed);
  Op p = make(OpKind::alloc_pages, 0);
  p.gfp = GFP_KERNEL;
  p.order = 3;
  const OpResult& r = ex.step(p);
  EXPECT_FALSE(r.failed);
  const pfn_t pfn = r.pfn;
  EXPECT_EQ(ex.live_objects(), 0u);
  EXPECT_EQ(ex.live_page_allocs(), 0u);
  // The model's block went back: after a drain it is free in the buddy lists.
  m.page_alloc.drain_all_pages();
  EXPECT_TRUE(m.page_alloc.is_free_buddy_page(pfn));
  const Verdict v = ex.finish();
  EXPECT_TRUE(v.ok());
}

TEST(Executor, ResultsCarryWhatTheModelDid) {
  Mm m(small_config());
  StringTable st;
  Executor ex(m, st);
  Op a = make(OpKind::kmalloc, 1);
  a.size = 100;
  a.gfp = GFP_KERNEL;
  const OpResult& r = ex.step(a);
  EXPECT_TRUE(r.ran);
  EXPECT_EQ(r.bytes_alloc, m.slab.ksize(r.addr));
  EXPECT_EQ(ex.live_kmalloc_bytes(), 100u);
  Op p = make(OpKind::alloc_pages, 2);
  p.gfp = GFP_KERNEL | __GFP_RECLAIMABLE;
  p.order = 1;
  const OpResult& rp = ex.step(p);
  EXPECT_TRUE(rp.page_alloc);
  EXPECT_EQ(rp.order, 1u);
  EXPECT_EQ(rp.migratetype, MIGRATE_RECLAIMABLE);
  Op s = make(OpKind::split_page, 2);
  ex.step(s);
  EXPECT_EQ(ex.live_page_allocs(), 2u);
  Op f = make(OpKind::free_pages, 3);  // the tail, now its own page
  ex.step(f);
  EXPECT_EQ(ex.live_page_allocs(), 1u);
  EXPECT_TRUE(ex.finish().ok());
}

// Client accesses: a read gives back the bytes it read; one that faults (the
// guard page) or that KASAN refuses (past the object) has failed.
TEST(Executor, AccessResultsCarryTheBytesAndFaults) {
  Mm m(small_config());
  StringTable st;
  Executor ex(m, st);
  Op vm = make(OpKind::vmalloc, 1);
  vm.size = 4096;
  ASSERT_FALSE(ex.step(vm).failed);
  Op w = make(OpKind::write, 1);
  w.space = Space::area;
  w.arg = 100;
  w.size = 8;
  w.byte = 0x5c;
  EXPECT_FALSE(ex.step(w).failed);
  Op r = make(OpKind::read, 1);
  r.space = Space::area;
  r.arg = 104;
  r.size = 4;
  EXPECT_FALSE(ex.step(r).failed);
  ASSERT_EQ(ex.last_access().size(), 4u);
  for (const auto b : ex.last_access()) EXPECT_EQ(b, 0x5c);
  Op guard = r;
  guard.arg = 4096;
  EXPECT_TRUE(ex.step(guard).failed);
  Op km = make(OpKind::kmalloc, 2);
  km.size = 24;
  km.gfp = GFP_KERNEL;
  ex.step(km);
  Op in = make(OpKind::read, 2);
  in.size = 24;
  EXPECT_FALSE(ex.step(in).failed);
  Op oob = in;
  oob.arg = 20;
  oob.size = 8;
  EXPECT_TRUE(ex.step(oob).failed);
  EXPECT_EQ(ex.nr_violations(), 2u);  // vm.fault and kasan.out_of_bounds
}

}  // namespace
}  // namespace mmfuzz::prog
