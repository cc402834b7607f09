// mmfuzz prop's parts: RapidCheck's shrinks of a Program never leave an op
// naming a handle nothing bound; runs are reproducible from their seed; a
// planted defect fails the property with a reproducer that replays alone.
#include <gtest/gtest.h>

#include <filesystem>

#include "program/executor.h"
#include "program/text.h"
#include "props/property.h"
#include "props/rc_program.h"
#include "props/runner.h"
#include "shrink/runner.h"

namespace {

using namespace mmfuzz;
using namespace mmfuzz::props;

TEST(PropRunner, ShrinksTakeTheUsersOfWhatTheyRemoveAlong) {
  const PropertySpec& spec = *find_property("mm");
  const prog::Program p =
      generate_case(spec, shape_for(spec, GenKind::shaped), 7, 120, mm::PlantedDefect::none);
  const prog::Verdict whole = prog::Executor::run(p, p.header.mm_config(), p.header.exec_options());
  ASSERT_EQ(whole.skipped_ops, 0u) << "the generated Program itself skips ops";
  std::size_t n = 0;
  for (const prog::Program& c : rc::Seq<prog::Program>(shrink_program(p))) {
    ASSERT_LT(c.ops.size(), p.ops.size());
    const prog::Verdict v = prog::Executor::run(c, c.header.mm_config(), c.header.exec_options());
    EXPECT_EQ(v.skipped_ops, 0u) << "candidate " << n << " names an unbound handle";
    if (++n == 40) break;
  }
  EXPECT_GT(n, 0u);
}

TEST(PropRunner, BatchSeedsAreTheSeedThenMixed) {
  EXPECT_EQ(batch_seed(42, 0), 42u);
  EXPECT_EQ(batch_seed(42, 1), batch_seed(42, 1));
  EXPECT_NE(batch_seed(42, 1), batch_seed(42, 2));
  EXPECT_NE(batch_seed(42, 1), 42u);
}

TEST(PropRunner, SameSeedSameRun) {
  PropOptions o;
  o.names = {"slub"};
  o.seed = 99;
  o.runs = 15;
  o.corpus = ::testing::TempDir() + "/prop-same-seed";
  const auto a = run_properties(o), b = run_properties(o);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_FALSE(a[0].failed) << a[0].signature << a[0].error;
  EXPECT_EQ(a[0].ops, b[0].ops);
  EXPECT_EQ(a[0].cases, 15u);
}

TEST(PropRunner, APlantedDefectFailsWithAReproducerThatReplaysAlone) {
  if (!mm::kPlantedDefects) GTEST_SKIP() << "built without planted defects";
  PropOptions o;
  o.names = {"vmalloc"};
  o.seed = 3;
  o.runs = 100;
  o.planted = mm::PlantedDefect::vmalloc_no_guard;
  o.corpus = ::testing::TempDir() + "/prop-planted";
  std::filesystem::remove_all(o.corpus);
  const auto r = run_properties(o);
  ASSERT_TRUE(r[0].failed);
  ASSERT_FALSE(r[0].program.empty());
  EXPECT_LE(r[0].ops_shrunk, r[0].ops_rc);
  EXPECT_LE(r[0].ops_rc, r[0].ops_found);
  const prog::Program p = prog::read_program(r[0].program);
  const prog::Verdict v = shrink::run_fresh(p);
  ASSERT_FALSE(v.findings.empty());
  EXPECT_EQ(v.findings[0].violation.signature(), r[0].signature);
}

}  // namespace
