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

// One op of every kind, with provenance on some. The Program is clean: the
// Executor runs every op and the checkers find nothing.
Program every_kind() {
  Program p;
  auto& s = p.strings;
  auto add = [&p](OpArgs a) { p.ops.push_back(Op{.args = a}); };
  p.ops.push_back(
      Op{.args = AllocPages{.page = 0x1000, .order = 2, .expect_mt = 0, .gfp = GFP_KERNEL},
         .cpu = 1,
         .pid = 42,
         .comm = s.intern("kworker/1:0"),
         .ts_ns = 1234567000});
  add(AllocPages{.page = 0x2000, .gfp = GFP_KERNEL | __GFP_ZERO, .node = 0});
  add(SplitPage{0x1000});
  add(FreePages{.page = 0x1001});
  add(GetPage{0x1002});
  add(PutPage{0x1002});  // the split's reference stays
  add(FreePages{.page = 0x1002, .by_addr = true});
  add(PutPage{0x1003});  // the last reference: freed
  add(AllocPagesExact{.page = 0x3000, .size = 3 * 4096 + 100, .gfp = GFP_KERNEL});
  add(FreePagesExact{.page = 0x3000, .size = 3 * 4096 + 100});
  add(Kmap{0x1000, KmapApi::kmap});
  add(Kmap{0x1000, KmapApi::kmap_local_page});
  add(Kmap{0x2000, KmapApi::kmap_atomic});
  add(Kunmap{0x2000, KunmapApi::kunmap_atomic});
  add(Kunmap{0x1000, KunmapApi::kunmap_local});
  add(Kunmap{0x1000, KunmapApi::kunmap});
  const StrId site = s.intern("alloc_thing+0x1c/0x40");
  p.ops.push_back(Op{.args = Kmalloc{.obj = 0xffff000012345678,
                                     .size = 100,
                                     .gfp = GFP_KERNEL_ACCOUNT,
                                     .expect_bytes_alloc = 128},
                     .call_site = site,
                     .ts_ns = 5000000001});                       // needs nanoseconds
  add(Krealloc{.obj = 0x40, .new_size = 50, .gfp = GFP_KERNEL});  // krealloc(NULL)
  add(Krealloc{.obj = 0x40, .new_size = 300, .gfp = GFP_KERNEL});
  add(KfreeSensitive{0x40});
  add(Kvmalloc{.obj = 0x41, .size = 3 * 4096, .gfp = GFP_KERNEL});
  add(Kvfree{0x41});
  const StrId cache = s.intern("test_cache");
  add(KmemCacheCreate{.name = cache,
                      .flags = SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT,
                      .size = 72,
                      .align = 8,
                      .ctor = true,
                      .ctor_fill = 0x3c});
  add(KmemCacheAlloc{.obj = 7, .name = cache, .gfp = GFP_KERNEL, .node = 0, .bytes_req = 72});
  add(Write{.h = 7, .offset = 8, .len = 16, .byte = 0xab});
  add(Read{.h = 0x2000, .len = 64, .space = Space::page});
  add(KmemCacheFree{.obj = 7, .name = cache});
  add(KmemCacheAllocBulk{.obj = 0x50, .name = cache, .gfp = GFP_KERNEL, .nr = 3});
  add(KmemCacheFreeBulk{.obj = 0x50, .name = cache, .nr = 3});
  add(KmemCacheShrink{cache});
  add(MempoolCreate{
      .pool = 3, .min_nr = 4, .kind = PoolKind::kmalloc, .gfp = GFP_KERNEL, .size = 256});
  add(MempoolAlloc{.obj = 9, .pool = 3, .gfp = GFP_NOIO});
  add(MempoolFree{.obj = 9, .pool = 3});
  add(MempoolResize{.pool = 3, .new_min_nr = 6});
  add(MempoolDestroy{3});
  add(Vmalloc{.area = 0x10, .size = 3 * 4096 + 5, .api = VmallocApi::vzalloc});
  add(Write{.h = 0x10, .offset = 4096, .len = 100, .space = Space::area, .byte = 0x5a});
  add(Vfree{0x10});
  add(Vmap{.area = 0x20, .nr_pages = 4});
  add(Vunmap{0x20});
  add(Ioremap{.area = 0x30, .phys = 0x09000000, .size = 0x1000, .api = IoremapApi::ioremap_wc});
  add(IoWrite{.area = 0x30, .offset = 0x38, .value = 0x70, .api = IoWriteApi::writel});
  add(IoRead{.area = 0x30, .offset = 0x38, .api = IoReadApi::ioread32});
  add(Iounmap{0x30});
  p.ops.push_back(Op{.args = Kfree{0xffff000012345678}, .call_site = site});
  add(KmemCacheDestroy{cache});
  add(Tick{});
  add(DrainAllPages{});
  add(Check{});
  add(FreePages{.page = 0x2000});
  return p;
}

TEST(ProgramText, EveryOpKindRoundTrips) {
  const Program p = every_kind();
  std::vector<bool> seen(kNrOpKinds);
  for (const Op& op : p.ops) seen[static_cast<std::size_t>(op.kind())] = true;
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

// The lines of the ops that existed before typed arguments print as they
// always did: Program files and corpus/regressions stay readable and equal.
TEST(ProgramText, OldOpsPrintAsBefore) {
  const std::string h = std::string(kProgramHeader) + "\n";
  for (const std::string_view line : {
           "mm_page_alloc: page=0000000000000000 pfn=0x1000 order=2 migratetype=0 "
           "gfp_flags=GFP_KERNEL",
           "mmfuzz_alloc_pages: pfn=0x2000 order=0 gfp_flags=GFP_KERNEL|__GFP_ZERO node=0 "
           "migratetype=-1",
           "mm_page_free: page=0000000000000000 pfn=0x1001 order=0",
           "mmfuzz_split_page: pfn=0x1000",
           "kmalloc: call_site=alloc_thing+0x1c/0x40 ptr=ffff000012345678 bytes_req=100 "
           "bytes_alloc=128 gfp_flags=GFP_KERNEL_ACCOUNT node=-1 accounted=true",
           "kfree: call_site=0x0 ptr=0000000000000001",
           "mmfuzz_kmem_cache_create: name=c size=72 align=8 flags=SLAB_HWCACHE_ALIGN ctor=0x3c",
           "kmem_cache_alloc: call_site=0x0 ptr=0000000000000007 name=c bytes_req=72 "
           "bytes_alloc=0 gfp_flags=GFP_KERNEL node=0 accounted=false",
           "kmem_cache_free: call_site=0x0 ptr=0000000000000007 name=c",
           "mmfuzz_kmem_cache_shrink: name=c",
           "mmfuzz_kmem_cache_destroy: name=c",
           "mmfuzz_mempool_create: pool=3 min_nr=4 kind=kmalloc name=(null) size=256 order=0 "
           "gfp_flags=GFP_KERNEL",
           "mmfuzz_mempool_alloc: pool=3 ptr=0000000000000009 gfp_flags=GFP_NOIO",
           "mmfuzz_mempool_free: pool=3 ptr=0000000000000009",
           "mmfuzz_mempool_destroy: pool=3",
           "mmfuzz_vmalloc: area=0x10 size=12293 api=vzalloc gfp_flags=none node=-1",
           "mmfuzz_vfree: area=0x10",
           "mmfuzz_vmap: area=0x20 pages=4",
           "mmfuzz_vunmap: area=0x20",
           "mmfuzz_ioremap: area=0x30 phys=0x9000000 size=4096 api=ioremap_wc",
           "mmfuzz_iounmap: area=0x30",
           "mmfuzz_write: area=0x10 offset=4096 len=100 byte=0x5a",
           "mmfuzz_tick:",
           "mmfuzz_drain_all_pages:",
           "mmfuzz_check:",
       }) {
    const Program p = parse_program(h + std::string(line) + "\n");
    ASSERT_EQ(p.ops.size(), 1u) << line;
    const std::string text = format_op(p.ops[0], p.strings);
    EXPECT_EQ(text.substr(text.find(": ") + 2), line);
  }
  // A read's byte= (printed before reads lost it) is read and ignored.
  const Program r = parse_program(h + "mmfuzz_read: pfn=0x2000 offset=0 len=64 byte=0x00\n");
  EXPECT_EQ(r.ops[0].as<Read>(), (Read{.h = 0x2000, .len = 64, .space = Space::page}));
}

template <class E>
constexpr unsigned nr_apis(E) {
  if constexpr (std::is_same_v<E, VmallocApi>) return 4;
  if constexpr (std::is_same_v<E, IoReadApi> || std::is_same_v<E, IoWriteApi>) return 6;
  return 3;
}

// Random arguments for every field an op kind has (by the field names of
// program/ops.h), within what the text form carries.
void randomize(Op& op, SplitMix64& rng, StringTable& st) {
  auto handle = [&rng] { return rng.below(4) ? rng.below(1000) + 1 : rng.next(); };
  auto u8 = [&rng](std::uint64_t n) { return static_cast<std::uint8_t>(rng.below(n)); };
  std::visit(
      [&](auto& a) {
        if constexpr (requires { a.obj; }) a.obj = handle();
        if constexpr (requires { a.page; }) a.page = handle();
        if constexpr (requires { a.area; }) a.area = handle();
        if constexpr (requires { a.pool; }) a.pool = rng.below(10);
        if constexpr (requires { a.space; }) a.space = static_cast<Space>(rng.below(3));
        if constexpr (requires { a.h; }) a.h = handle();
        if constexpr (requires { a.offset; }) a.offset = rng.below(8192);
        if constexpr (requires { a.len; }) a.len = rng.below(8192);
        if constexpr (requires { a.byte; }) a.byte = u8(256);
        if constexpr (requires { a.gfp; })
          a.gfp = static_cast<std::uint32_t>(rng.next()) & 0xffffffu;
        if constexpr (requires { a.node; }) a.node = rng.below(2) ? -1 : 0;
        if constexpr (requires { a.order; }) a.order = u8(11);
        if constexpr (requires { a.size; }) a.size = rng.below(1 << 22);
        if constexpr (requires { a.new_size; }) a.new_size = rng.below(1 << 20);
        if constexpr (requires { a.nr_pages; }) a.nr_pages = rng.below(64);
        if constexpr (requires { a.nr; }) a.nr = static_cast<std::uint32_t>(rng.below(40));
        if constexpr (requires { a.name; }) a.name = st.intern("c" + std::to_string(rng.below(5)));
        if constexpr (requires { a.api; })
          a.api = static_cast<decltype(a.api)>(rng.below(nr_apis(a.api)));
        if constexpr (requires { a.expect_mt; })
          a.expect_mt = static_cast<std::int8_t>(rng.below(6)) - 1;
        if constexpr (requires { a.expect_bytes_alloc; }) a.expect_bytes_alloc = rng.below(1 << 20);
        if constexpr (requires { a.bytes_req; }) a.bytes_req = rng.below(1 << 20);
        if constexpr (requires { a.by_addr; }) a.by_addr = rng.below(2);
        if constexpr (requires { a.align; }) a.align = rng.below(2) ? 0 : 64;
        if constexpr (requires { a.flags; })
          a.flags = rng.below(2) ? SLAB_POISON | SLAB_RED_ZONE : 0;
        if constexpr (requires { a.ctor; }) {
          a.ctor = rng.below(2);
          a.ctor_fill = a.ctor ? u8(256) : 0;
        }
        if constexpr (requires { a.min_nr; }) a.min_nr = static_cast<std::int32_t>(rng.below(16));
        if constexpr (requires { a.kind; }) a.kind = static_cast<PoolKind>(rng.below(3));
        if constexpr (requires { a.new_min_nr; })
          a.new_min_nr = static_cast<std::int32_t>(rng.below(20)) - 4;
        if constexpr (requires { a.phys; }) a.phys = rng.next() >> 16;
        if constexpr (requires { a.value; }) a.value = static_cast<std::uint32_t>(rng.next());
      },
      op.args);
  // Call sites print on the kernel's kmem events only.
  if (op.is<Kmalloc>() || op.is<Kfree>() || op.is<KmemCacheAlloc>() || op.is<KmemCacheFree>())
    op.call_site = st.intern(rng.below(2) ? "f+0x1/0x2" : "0xffff800008001234");
}

template <std::size_t... I>
OpArgs args_of_kind(std::size_t k, std::index_sequence<I...>) {
  static const OpArgs kDefaults[] = {OpArgs{std::in_place_index<I>}...};
  return kDefaults[k];
}

TEST(ProgramText, RandomProgramsRoundTrip) {
  SplitMix64 rng{7};
  for (int round = 0; round < 50; ++round) {
    Program p;
    for (int i = 0; i < 200; ++i) {
      Op op{.args = args_of_kind(rng.below(kNrOpKinds), std::make_index_sequence<kNrOpKinds>{})};
      op.cpu = static_cast<std::int16_t>(rng.below(8));
      op.ts_ns = rng.below(3) ? rng.next() % 100000000000000ull : 0;
      op.pid = static_cast<std::int32_t>(rng.below(100000));
      randomize(op, rng, p.strings);
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
  EXPECT_EQ(p.strings.str(p.ops[0].as<KmemCacheShrink>().name), "fuzz_cache");
  const Program n = parse_program(h + "mmfuzz_kmem_cache_destroy: name=(null)\n");
  EXPECT_EQ(n.ops[0].as<KmemCacheDestroy>().name, 0u);
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
  p.ops.push_back(Op{.args = Kmalloc{.obj = 5, .size = 64, .gfp = GFP_KERNEL}});
  const Op f{.args = Kfree{5},
             .cpu = 1,
             .call_site = p.strings.intern("free_it+0x10/0x20"),
             .ts_ns = 2500000000,
             .line = 77};
  p.ops.push_back(f);
  p.ops.push_back(f);
  const Verdict v = Executor::run(p, small_config());
  ASSERT_FALSE(v.ok());
  // The ops' own view (a freed handle freed again), then the model's.
  ASSERT_EQ(v.findings.size(), 2u);
  EXPECT_EQ(v.findings[0].violation.invariant, "trace.double_free");
  EXPECT_EQ(v.findings[1].violation.invariant, "slab.double_free");
  for (const Finding& x : v.findings) {
    EXPECT_EQ(x.op_index, 2u);
    EXPECT_EQ(x.op.line, 77u);
    EXPECT_EQ(x.op.cpu, 1);
    EXPECT_EQ(p.strings.str(x.op.call_site), "free_it+0x10/0x20");
  }
}

// A free the model refused (kfree of a vmalloc address) left the object
// allocated: freeing it properly afterwards is no double free.
TEST(Executor, FreeAfterARefusedFreeIsNoDoubleFree) {
  Program p;
  // Above kmalloc's largest size: kvmalloc falls back to vmalloc.
  p.ops.push_back(Op{.args = Kvmalloc{.obj = 2, .size = 5 << 20, .gfp = GFP_KERNEL}});
  p.ops.push_back(Op{.args = Kfree{2}});   // refused: a vmalloc address
  p.ops.push_back(Op{.args = Kvfree{2}});  // the right free
  const Verdict v = Executor::run(p, small_config());
  std::vector<std::string> ids;
  for (const Finding& f : v.findings) ids.push_back(f.violation.invariant);
  EXPECT_EQ(ids, std::vector<std::string>{"slab.invalid_free"});
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
  ASSERT_EQ(bad.findings.size(), 2u);
  EXPECT_EQ(bad.findings[0].violation.invariant, "trace.double_free");
  EXPECT_EQ(bad.findings[1].violation.invariant, "slab.double_free");
}

TEST(Executor, UnboundHandlesAreSkippedNotRun) {
  Program p;
  p.ops.push_back(Op{.args = Kfree{99}});
  p.ops.push_back(Op{.args = FreePages{.page = 99}});
  p.ops.push_back(Op{.args = Vfree{99}});
  p.ops.push_back(Op{.args = KmemCacheAlloc{.obj = 1, .name = p.strings.intern("no_such_cache")}});
  p.ops.push_back(Op{.args = Kvfree{99}});
  p.ops.push_back(Op{.args = PutPage{99}});
  p.ops.push_back(Op{.args = Kmap{99}});
  p.ops.push_back(Op{.args = IoRead{.area = 99}});
  p.ops.push_back(Op{.args = MempoolResize{.pool = 99, .new_min_nr = 1}});
  const Verdict v = Executor::run(p, small_config());
  EXPECT_EQ(v.skipped_ops, 9u);
  // The frees of a handle no op bound are frees of a pointer never
  // allocated; the other ops are only skipped.
  ASSERT_EQ(v.findings.size(), 2u);
  EXPECT_EQ(v.findings[0].violation.signature(), "trace.unknown_free|kfree|trace");
  EXPECT_EQ(v.findings[1].violation.signature(), "trace.unknown_free|kvfree|trace");
  EXPECT_EQ(v.findings[1].op_index, 4u);
}

TEST(Executor, MisuseThroughEachSubsystemIsReported) {
  struct Case {
    const char* id;
    std::vector<Op> ops;
  };
  const Op km{.args = Kmalloc{.obj = 1, .size = 24, .gfp = GFP_KERNEL}};
  const Op oob{.args = Write{.h = 1, .offset = 20, .len = 8}};
  const Op ap{.args = AllocPages{.page = 2, .gfp = GFP_KERNEL}};
  const Op fp{.args = FreePages{.page = 2}};
  const Op vm{.args = Vmalloc{.area = 3, .size = 4096}};
  const Op guard{.args = Write{.h = 3, .offset = 4096, .len = 1, .space = Space::area}};
  const Op io{.args = Ioremap{.area = 4, .phys = 0x40000000, .size = 0x1000}};  // RAM
  const Op vf{.args = Vfree{3}};
  const std::vector<Case> cases = {
      {"kasan.out_of_bounds", {km, oob}},
      {"page_alloc.double_free", {ap, fp, fp}},
      {"vm.fault", {vm, guard}},
      {"vmalloc.double_free", {vm, vf, vf}},
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
  p.ops.push_back(Op{.args = Kmalloc{.obj = 5, .size = 64}});
  p.ops.push_back(Op{.args = Kfree{5}});
  p.ops.push_back(Op{.args = Kfree{5}});
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
  EXPECT_FALSE(ex.step(Op{.args = Kmalloc{.obj = 0, .size = 64, .gfp = GFP_KERNEL}}).failed);
  const OpResult& r = ex.step(Op{.args = AllocPages{.page = 0, .order = 3, .gfp = GFP_KERNEL}});
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
  const OpResult& r = ex.step(Op{.args = Kmalloc{.obj = 1, .size = 100, .gfp = GFP_KERNEL}});
  EXPECT_TRUE(r.ran);
  EXPECT_EQ(r.bytes_alloc, m.slab.ksize(r.addr));
  EXPECT_EQ(ex.live_kmalloc_bytes(), 100u);
  const OpResult& rp =
      ex.step(Op{.args = AllocPages{.page = 2, .order = 1, .gfp = GFP_KERNEL | __GFP_RECLAIMABLE}});
  EXPECT_TRUE(rp.page_alloc);
  EXPECT_EQ(rp.order, 1u);
  EXPECT_EQ(rp.migratetype, MIGRATE_RECLAIMABLE);
  ex.step(Op{.args = SplitPage{2}});
  EXPECT_EQ(ex.live_page_allocs(), 2u);
  ex.step(Op{.args = FreePages{.page = 3}});  // the tail, now its own page
  EXPECT_EQ(ex.live_page_allocs(), 1u);
  EXPECT_TRUE(ex.finish().ok());
}

// Client accesses: a read gives back the bytes it read; one that faults (the
// guard page) or that KASAN refuses (past the object) has failed.
TEST(Executor, AccessResultsCarryTheBytesAndFaults) {
  Mm m(small_config());
  StringTable st;
  Executor ex(m, st);
  ASSERT_FALSE(ex.step(Op{.args = Vmalloc{.area = 1, .size = 4096}}).failed);
  const Op w{.args = Write{.h = 1, .offset = 100, .len = 8, .space = Space::area, .byte = 0x5c}};
  EXPECT_FALSE(ex.step(w).failed);
  const Op r{.args = Read{.h = 1, .offset = 104, .len = 4, .space = Space::area}};
  EXPECT_FALSE(ex.step(r).failed);
  ASSERT_EQ(ex.last_access().size(), 4u);
  for (const auto b : ex.last_access()) EXPECT_EQ(b, 0x5c);
  const Op guard{.args = Read{.h = 1, .offset = 4096, .len = 4, .space = Space::area}};
  EXPECT_TRUE(ex.step(guard).failed);
  ex.step(Op{.args = Kmalloc{.obj = 2, .size = 24, .gfp = GFP_KERNEL}});
  EXPECT_FALSE(ex.step(Op{.args = Read{.h = 2, .len = 24}}).failed);
  EXPECT_TRUE(ex.step(Op{.args = Read{.h = 2, .offset = 20, .len = 8}}).failed);
  EXPECT_EQ(ex.nr_violations(), 2u);  // vm.fault and kasan.out_of_bounds
}

}  // namespace
}  // namespace mmfuzz::prog
