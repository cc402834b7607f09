// The shrinker (shrink/): def-use edges, canonical arguments, renumbering,
// the goal, no slipping to another signature, and whole shrinks whose result
// is checked to be 1-minimal and to reproduce from its text alone.
#include <gtest/gtest.h>

#include <algorithm>

#include "mm/page_alloc/gfp.h"
#include "program/build.h"
#include "program/text.h"
#include "shrink/deps.h"
#include "shrink/runner.h"
#include "shrink/shrink.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::prog;
using namespace mmfuzz::shrink;
using mm::GFP_ATOMIC;
using mm::GFP_KERNEL;

ProgramHeader fuzz_header() {
  ProgramHeader h;
  h.version = kProgramVersion;
  h.machine = "fuzz";
  return h.resolved();
}

std::vector<std::string> sigs(const Verdict& v) {
  std::vector<std::string> out;
  for (const auto& f : v.findings) out.push_back(f.violation.signature());
  return out;
}

bool fires(const Program& p, const std::string& sig) {
  const auto s = sigs(run_fresh(p));
  return std::find(s.begin(), s.end(), sig) != s.end();
}

ShrinkResult shrink_all(Program p, const std::string& sig = "", unsigned jobs = 1) {
  std::uint64_t fail_op = 0;
  const Goal g = goal_for(p.header, run_fresh(p).findings, sig, &fail_op);
  ShrinkOptions o;
  o.jobs = jobs;
  return shrink::shrink(std::move(p), g, fail_op, o);
}

// No single op of `p` (with the ops that use what it binds) can go.
void expect_one_minimal(const Program& p, const std::string& sig) {
  const DepGraph g(p.ops);
  for (std::uint32_t i = 0; i < p.ops.size(); ++i) {
    std::vector<char> keep(p.ops.size(), 1);
    const std::uint32_t one[] = {i};
    g.remove_with_users(one, keep);
    Program q;
    q.header = p.header;
    q.strings = p.strings;
    for (std::size_t k = 0; k < p.ops.size(); ++k)
      if (keep[k]) q.ops.push_back(p.ops[k]);
    EXPECT_FALSE(fires(q, sig)) << "op " << i
                                << " is not needed: " << format_op(p.ops[i], p.strings);
  }
}

TEST(ShrinkDeps, UsersFollowTheirBinding) {
  ProgramBuilder b;
  const Handle x = b.kmalloc(64, GFP_KERNEL);            // 0
  const Handle y = b.kmalloc(64, GFP_KERNEL);            // 1
  b.kfree(x);                                            // 2
  b.write(Space::object, y, 0, 8, 1);                    // 3
  b.kfree(y);                                            // 4
  b.kmem_cache_create("c", 32, 0, 0);                    // 5
  const Handle z = b.kmem_cache_alloc("c", GFP_KERNEL);  // 6
  b.kmem_cache_free("c", z);                             // 7
  const Handle pg = b.alloc_pages(2, GFP_KERNEL);        // 8
  b.split_page(pg);                                      // 9
  b.free_pages(pg + 1, 0);                               // 10
  const Program p = b.take();
  const DepGraph g(p.ops);
  const auto users = [&](std::uint32_t i) {
    const auto s = g.users(i);
    return std::vector<std::uint32_t>(s.begin(), s.end());
  };
  EXPECT_EQ(users(0), (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(users(1), (std::vector<std::uint32_t>{3, 4}));
  EXPECT_EQ(users(5), (std::vector<std::uint32_t>{6, 7}));
  EXPECT_EQ(users(6), (std::vector<std::uint32_t>{7}));
  EXPECT_EQ(users(8), (std::vector<std::uint32_t>{9}));
  EXPECT_EQ(users(9), (std::vector<std::uint32_t>{10}));  // the tail page
  // Removing a cache's create removes its objects and their frees.
  std::vector<char> keep(p.ops.size(), 1);
  const std::uint32_t create[] = {5};
  g.remove_with_users(create, keep);
  EXPECT_EQ(std::count(keep.begin(), keep.end(), 0), 3);
  EXPECT_FALSE(keep[6] || keep[7]);
  // A set closed under parents skips no op.
  std::vector<char> in(p.ops.size(), 0);
  in[10] = 1;
  g.add_parents(in);
  EXPECT_TRUE(in[8] && in[9]);
  EXPECT_FALSE(in[0]);
}

TEST(ShrinkArgs, SimplerOpsMoveTowardCanonicalValues) {
  const Op op{.args = Kmalloc{.obj = 3, .size = 100, .gfp = GFP_ATOMIC, .node = 0}, .cpu = 1};
  const std::vector<Op> v = simpler_ops(op);
  auto has = [&](auto pred) { return std::any_of(v.begin(), v.end(), pred); };
  EXPECT_TRUE(has([](const Op& o) { return o.cpu == 0 && o.as<Kmalloc>().size == 100; }));
  EXPECT_TRUE(has([](const Op& o) { return o.as<Kmalloc>().size == 1; }));
  EXPECT_TRUE(has([](const Op& o) { return o.as<Kmalloc>().size == 51; }));  // halfway
  EXPECT_TRUE(has([](const Op& o) { return o.as<Kmalloc>().gfp == GFP_KERNEL; }));
  EXPECT_TRUE(has([](const Op& o) { return o.as<Kmalloc>().node == -1; }));
  // Each variant changes one thing and never the handle.
  for (const Op& o : v) EXPECT_EQ(o.as<Kmalloc>().obj, 3u);
  EXPECT_TRUE(simpler_ops(Op{.args = Kfree{3}}).empty());
}

TEST(ShrinkArgs, RenumberingKeepsBlocks) {
  std::vector<Op> ops;
  ops.push_back(Op{.args = KmemCacheAllocBulk{.obj = 100, .name = 1, .nr = 3}});
  ops.push_back(Op{.args = Kmalloc{.obj = 7, .size = 8}});
  ops.push_back(Op{.args = KmemCacheFree{.obj = 102, .name = 1}});
  ops.push_back(Op{.args = AllocPages{.page = 4096, .order = 1}});
  ops.push_back(Op{.args = SplitPage{4096}});
  ops.push_back(Op{.args = FreePages{.page = 4097}});
  ops.push_back(Op{.args = Write{.h = 7, .len = 1}});
  const std::vector<Op> r = renumbered(ops);
  EXPECT_EQ(r[0].as<KmemCacheAllocBulk>().obj, 1u);
  EXPECT_EQ(r[1].as<Kmalloc>().obj, 4u);  // after the bulk block 1..3
  EXPECT_EQ(r[2].as<KmemCacheFree>().obj, 3u);
  EXPECT_EQ(r[3].as<AllocPages>().page, 1u);
  EXPECT_EQ(r[5].as<FreePages>().page, 2u);  // the tail page stays page+1
  EXPECT_EQ(r[6].as<Write>().h, 4u);
}

TEST(ShrinkGoal, BadGoalsAreErrors) {
  EXPECT_THROW(goal_for(fuzz_header(), {}, "", nullptr), ShrinkError);
  ProgramBuilder b;
  const Handle x = b.kmalloc(16, GFP_KERNEL);
  b.kfree(x);
  b.kfree(x);
  Program p = b.take();
  p.header = fuzz_header();
  const Verdict v = run_fresh(p);
  EXPECT_THROW(goal_for(p.header, v.findings, "no.such|kfree|slab", nullptr), ShrinkError);
  std::uint64_t at = 0;
  const Goal g = goal_for(p.header, v.findings, "slab.double_free|kfree|slab", &at);
  EXPECT_EQ(at, 2u);
  EXPECT_EQ(g.allowed_before, (std::set<std::string>{"trace.double_free|kfree|trace"}));
}

// A candidate that fires another signature first is another bug.
TEST(ShrinkRunner, AnotherSignatureFirstIsRejected) {
  ProgramBuilder b;
  const Handle x = b.kmalloc(16, GFP_KERNEL);
  b.kfree(x);
  b.kfree(x);
  Program p = b.take();
  p.header = fuzz_header();
  Runner r(p.strings);
  EXPECT_EQ(r.run(p.header, p.ops, nullptr, Goal{"kasan.out_of_bounds|write|kasan", {}}),
            Outcome::other);
  EXPECT_EQ(r.run(p.header, p.ops, nullptr, Goal{"trace.double_free|kfree|trace", {}}),
            Outcome::fires);
  // Restored from the snapshot between runs: the same answer again.
  EXPECT_EQ(r.run(p.header, p.ops, nullptr, Goal{"trace.double_free|kfree|trace", {}}),
            Outcome::fires);
  EXPECT_EQ(r.run(p.header, std::span<const Op>(p.ops).first(2), nullptr,
                  Goal{"trace.double_free|kfree|trace", {}}),
            Outcome::clean);
}

// Noise around an out-of-bounds write: the write and its object remain,
// the write one byte long, the object small.
Program oob_with_noise() {
  ProgramBuilder b;
  std::vector<Handle> live;
  for (int i = 0; i < 40; ++i) {
    b.set_cpu(i % 2);
    live.push_back(b.kmalloc(static_cast<std::uint64_t>(16 + i * 8), GFP_KERNEL));
    if (i % 3 == 0) b.kfree(live[static_cast<std::size_t>(i / 2)]);
  }
  b.kmem_cache_create("noise", 48, 0, 0);
  const Handle n = b.kmem_cache_alloc("noise", GFP_KERNEL);
  const Handle obj = b.kmalloc(100, GFP_ATOMIC);
  b.write(Space::object, obj, 0, 100, 0x11);
  b.kmem_cache_free("noise", n);
  b.write(Space::object, obj, 96, 16, 0x22);  // 12 bytes past the end
  for (int i = 0; i < 10; ++i) b.kfree(live[static_cast<std::size_t>(i)]);
  Program p = b.take();
  p.header = fuzz_header();
  return p;
}

TEST(Shrink, NoiseGoesAndArgumentsBecomeCanonical) {
  const Program p = oob_with_noise();
  const std::string sig = "kasan.out_of_bounds|write|kasan";
  ASSERT_TRUE(fires(p, sig));
  const ShrinkResult r = shrink_all(p);
  ASSERT_EQ(r.program.ops.size(), 2u) << print_program(r.program);
  const Program& q = r.program;
  ASSERT_TRUE(q.ops[0].is<Kmalloc>());
  ASSERT_TRUE(q.ops[1].is<Write>());
  EXPECT_EQ(q.ops[0].as<Kmalloc>().gfp, GFP_KERNEL);
  EXPECT_EQ(q.ops[0].as<Kmalloc>().obj, 1u);
  EXPECT_EQ(q.ops[1].as<Write>().len, 1u);
  EXPECT_LE(q.ops[0].as<Kmalloc>().size, 8u);  // the smallest kmalloc that still overflows
  EXPECT_EQ(q.header.expect, std::vector<std::string>{sig});
  EXPECT_EQ(r.stats.ops_before, p.ops.size());
  EXPECT_EQ(r.stats.ops_after, 2u);
  // Alone, from its text.
  EXPECT_TRUE(fires(parse_program(print_program(q)), sig));
  expect_one_minimal(q, sig);
}

TEST(Shrink, KeepsTheGivenSignatureNotAnEarlierOne) {
  ProgramBuilder b;
  const Handle x = b.kmalloc(16, GFP_KERNEL);
  b.kfree(x);
  b.kfree(x);  // an earlier, other bug
  const Handle y = b.kmalloc(16, GFP_KERNEL);
  b.write(Space::object, y, 16, 4, 1);
  Program p = b.take();
  p.header = fuzz_header();
  const std::string sig = "kasan.out_of_bounds|write|kasan";
  const ShrinkResult r = shrink_all(p, sig);
  ASSERT_EQ(r.program.ops.size(), 2u) << print_program(r.program);
  EXPECT_EQ(sigs(run_fresh(r.program)), std::vector<std::string>{sig});
}

// The failing op's own history is not enough: handle 2's kfree is a double
// free only because a stale kfree of handle 1 freed the object 2 reuses.
// The slice does not fire; a window of the ops before it does.
TEST(Shrink, AWindowWhenTheHistoryAloneDoesNotFire) {
  ProgramBuilder b;
  for (int i = 0; i < 80; ++i) b.kfree(b.kmalloc(512, GFP_KERNEL));  // noise, another cache
  const Handle x = b.kmalloc(64, GFP_KERNEL);
  b.kfree(x);
  const Handle y = b.kmalloc(64, GFP_KERNEL);  // x's object again
  b.kfree(x);                                  // frees y's object
  b.kfree(y);
  Program p = b.take();
  p.header = fuzz_header();
  const std::string sig = "slab.double_free|kfree|slab";
  const ShrinkResult r = shrink_all(p, sig);
  const auto& passes = r.stats.passes;
  EXPECT_TRUE(std::any_of(passes.begin(), passes.end(),
                          [](const std::string& s) { return s.rfind("window", 0) == 0; }))
      << "passes: " << ::testing::PrintToString(passes);
  // The kfree of the stale handle (the trace.double_free the input fired
  // first, so allowed) then fires the model's double free itself: 3 ops.
  EXPECT_EQ(r.program.ops.size(), 3u) << print_program(r.program);
  EXPECT_TRUE(fires(r.program, sig));
  expect_one_minimal(r.program, sig);
}

TEST(Shrink, TheResultDoesNotDependOnTheJobs) {
  const Program p = oob_with_noise();
  const ShrinkResult one = shrink_all(p, "", 1);
  const ShrinkResult four = shrink_all(p, "", 4);
  EXPECT_EQ(print_program(one.program), print_program(four.program));
}

TEST(Shrink, StopsWithTheBestSoFar) {
  const Program p = oob_with_noise();
  std::uint64_t fail_op = 0;
  const Goal g = goal_for(p.header, run_fresh(p).findings, "", &fail_op);
  std::atomic<bool> stop{true};
  ShrinkOptions o;
  o.stop = &stop;
  const ShrinkResult r = shrink::shrink(p, g, fail_op, o);
  EXPECT_TRUE(r.stats.stopped);
  EXPECT_LE(r.program.ops.size(), fail_op + 1);  // truncated at least
  EXPECT_TRUE(fires(r.program, g.signature));
}

}  // namespace
