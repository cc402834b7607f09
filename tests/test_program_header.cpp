// Program headers (program/header.h): every key round-trips through the
// text, v1 and header-less texts read with the defaults, every bad header is
// a one-line error, and the header becomes the model and Executor options.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "program/executor.h"
#include "program/header.h"
#include "program/text.h"
#include "trace/source.h"

namespace mmfuzz::prog {
namespace {

constexpr const char* kOps =
    "kmalloc: call_site=0x0 ptr=0000000000000001 bytes_req=64 bytes_alloc=0 "
    "gfp_flags=GFP_KERNEL node=-1 accounted=false\n"
    "kfree: call_site=0x0 ptr=0000000000000001\n";

// A header with every key away from its default.
ProgramHeader every_key() {
  ProgramHeader h;
  h.version = 2;
  h.target = "vm";
  h.profile = "linux-5.10-arm64";
  h.machine = "small";
  h.machine_lines = {{"min_free_kbytes", "2048"}, {"name", "my box"}};
  h.ram = 32 * mm::SZ_1M;
  h.ram_base = 0x80000000;
  h.cpus = 4;
  h.nodes = 2;
  h.cma = 8 * mm::SZ_1M;
  h.slab = mm::SlabVariant::slab;
  h.slub_debug =
      mm::SLAB_CONSISTENCY_CHECKS | mm::SLAB_RED_ZONE | mm::SLAB_POISON | mm::SLAB_STORE_USER;
  h.kmalloc_min = 8;
  h.rodata_full = true;
  h.vmalloc = false;
  h.lazy_max_pages = 64;
  h.slab_nomerge = true;
  h.checks = "buddy.*,-buddy.coalesced";
  h.check = CheckMode::full;
  h.check_every = 100;
  h.final_sweep = false;
  h.record_misuse = false;
  h.misuse_writes = false;
  h.report_leaks = true;
  h.max_findings = 7;
  h.planted = mm::PlantedDefect::vfree_leaves_pte;
  h.expect = {"vmalloc.guard|vfree|vmalloc", "pgtable.free_page_mapped|vfree|pgtable"};
  return h;
}

Program with_header(const ProgramHeader& h) {
  Program p = parse_program(kOps);
  p.header = h;
  return p;
}

TEST(ProgramHeader, EveryKeyRoundTrips) {
  const ProgramHeader h = every_key();
  // Each field differs from the default, so a key the printer or the parser
  // dropped would show.
  const ProgramHeader d;
  EXPECT_NE(h.target, d.target);
  EXPECT_NE(h.profile, d.profile);
  EXPECT_NE(h.machine, d.machine);
  EXPECT_NE(h.machine_lines, d.machine_lines);
  EXPECT_NE(h.ram, d.ram);
  EXPECT_NE(h.ram_base, d.ram_base);
  EXPECT_NE(h.cpus, d.cpus);
  EXPECT_NE(h.nodes, d.nodes);
  EXPECT_NE(h.cma, d.cma);
  EXPECT_NE(h.slab, d.slab);
  EXPECT_NE(h.slub_debug, d.slub_debug);
  EXPECT_NE(h.kmalloc_min, d.kmalloc_min);
  EXPECT_NE(h.rodata_full, d.rodata_full);
  EXPECT_NE(h.vmalloc, d.vmalloc);
  EXPECT_NE(h.lazy_max_pages, d.lazy_max_pages);
  EXPECT_NE(h.slab_nomerge, d.slab_nomerge);
  EXPECT_NE(h.checks, d.checks);
  EXPECT_NE(h.check, d.check);
  EXPECT_NE(h.check_every, d.check_every);
  EXPECT_NE(h.final_sweep, d.final_sweep);
  EXPECT_NE(h.record_misuse, d.record_misuse);
  EXPECT_NE(h.misuse_writes, d.misuse_writes);
  EXPECT_NE(h.report_leaks, d.report_leaks);
  EXPECT_NE(h.max_findings, d.max_findings);
  EXPECT_NE(h.planted, d.planted);
  EXPECT_NE(h.expect, d.expect);

  const Program p = with_header(h);
  const std::string text = print_program(p);
  for (const char* key :
       {"target",         "profile",       "machine",      "machine_line", "ram",
        "ram_base",       "cpus",          "nodes",        "cma",          "slab",
        "slub_debug",     "slab_nomerge",  "kmalloc_min",  "rodata",       "vmalloc",
        "lazy_max_pages", "checks",        "check",        "check_every",  "final_sweep",
        "record_misuse",  "misuse_writes", "report_leaks", "max_findings", "planted",
        "expect"})
    EXPECT_NE(text.find(std::string("\n# ") + key + ": "), std::string::npos) << key << "\n"
                                                                              << text;
  EXPECT_EQ(text.rfind("# mmfuzz program v2\n", 0), 0u) << text;
  EXPECT_NE(text.find("# slub_debug: FZPU\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# machine_line: name = my box\n"), std::string::npos) << text;
  const Program q = parse_program(text);
  EXPECT_EQ(q.header, h);
  EXPECT_TRUE(q == p);
  EXPECT_EQ(print_program(q), text);
  // The ops start after the header.
  EXPECT_EQ(q.ops[0].line, 30u);
}

// Whatever a machine line makes the machine, the printed values read back
// (parse(print(p)) == p is fuzz_program_text's oracle).
TEST(ProgramHeader, MachineLinesRoundTripWhateverTheySet) {
  for (const char* ml : {"cpus = 0", "nodes = 0", "ram_size = 0", "ram_size = 64T", "name = x=y",
                         "name =", "device = 0x1000-0x1fff uart 0"}) {
    const Program p =
        parse_program("# mmfuzz program v2\n# machine_line: " + std::string(ml) + "\n" + kOps);
    const std::string text = print_program(p);
    EXPECT_EQ(parse_program(text).header, p.header) << ml << "\n" << text;
    EXPECT_EQ(print_program(parse_program(text)), text) << ml;
  }
}

TEST(ProgramHeader, BecomesTheModelAndExecutorOptions) {
  const ProgramHeader h = every_key();
  if (mm::kPlantedDefects) {
    const mm::MmConfig c = h.mm_config();
    EXPECT_EQ(c.profile, "linux-5.10-arm64");
    EXPECT_EQ(c.machine.name, "my box");
    EXPECT_EQ(c.machine.ram_size, 32 * mm::SZ_1M);
    EXPECT_EQ(c.machine.ram_base, 0x80000000u);
    EXPECT_EQ(c.machine.nr_cpus, 4u);
    EXPECT_EQ(c.machine.nr_nodes, 2u);
    EXPECT_EQ(c.machine.cma_size, 8 * mm::SZ_1M);
    EXPECT_EQ(c.machine.min_free_kbytes, 2048u);
    EXPECT_EQ(c.machine.initrd_size, 0u);  // the small machine's
    EXPECT_EQ(c.slab.variant, mm::SlabVariant::slab);
    EXPECT_EQ(c.slab.kmalloc_min_size, 8u);
    EXPECT_TRUE(c.rodata_full);
    EXPECT_FALSE(c.vmalloc);
    EXPECT_TRUE(c.slab.nomerge);
    EXPECT_EQ(c.planted, mm::PlantedDefect::vfree_leaves_pte);
  } else {
    EXPECT_THROW(h.mm_config(), mm::ConfigError);
  }
  const ExecOptions o = h.exec_options();
  EXPECT_EQ(o.mode, CheckMode::full);
  EXPECT_EQ(o.check_every, 100u);
  EXPECT_EQ(o.checks, "buddy.*,-buddy.coalesced");
  EXPECT_FALSE(o.final_sweep);
  EXPECT_FALSE(o.record_misuse);
  EXPECT_FALSE(o.misuse_writes);
  EXPECT_TRUE(o.report_leaks);
  EXPECT_EQ(o.max_findings, 7u);
  ProgramHeader back;
  back.set_exec_options(o);
  EXPECT_EQ(back.exec_options().checks, o.checks);
  EXPECT_EQ(back.max_findings, 7u);
}

TEST(ProgramHeader, AbsentKeysAreTheDefaultsMadeExplicit) {
  const Program p = parse_program(std::string("# mmfuzz program v2\n# machine: fuzz\n") + kOps);
  const ProgramHeader& h = p.header;
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.profile, mm::kDefaultProfile);
  EXPECT_EQ(h.ram, 16 * mm::SZ_1M);  // the fuzz machine's
  EXPECT_EQ(h.cma, 0u);
  EXPECT_EQ(h.cpus, 2u);
  EXPECT_EQ(h.slab, mm::SlabVariant::slub);  // the profile's
  EXPECT_EQ(h.kmalloc_min, 128u);
  EXPECT_EQ(h.checks, "all");
  EXPECT_TRUE(h.record_misuse);
  const mm::MmConfig c = h.mm_config();
  EXPECT_EQ(c.machine.name, "fuzz");
  EXPECT_EQ(c.machine.ram_size, 16 * mm::SZ_1M);
  // The same run as the header that spells every default out.
  ProgramHeader spelled = h;
  spelled.target = "slub";
  spelled.expect = {"x|y|z"};
  EXPECT_TRUE(h.same_run(spelled));
  spelled.checks = "slab.*";
  EXPECT_FALSE(h.same_run(spelled));
  EXPECT_EQ(header_value(h, "ram"), "16M");
  EXPECT_EQ(header_value(h, "slab"), "slub");
}

TEST(ProgramHeader, V1AndHeaderlessTextsReadWithTheDefaults) {
  const ProgramHeader d;
  for (const std::string& text :
       {std::string(kOps), "# mmfuzz program v1\n" + std::string(kOps),
        "# mmfuzz program\n" + std::string(kOps),
        // v1 has no keys: these are comments
        "# mmfuzz program v1\n# slab: slob\n# planted: nope\n" + std::string(kOps)}) {
    const Program p = parse_program(text);
    EXPECT_EQ(p.header, d) << text;
    EXPECT_EQ(p.ops.size(), 2u);
    const std::string printed = print_program(p);
    EXPECT_EQ(printed.find("# mmfuzz program v1\n"), 0u);
    EXPECT_EQ(printed.find("# slab"), std::string::npos);
  }
  // The defaults are replay's: the QEMU guest, every check, misuse reported.
  const mm::MmConfig c = d.mm_config();
  EXPECT_EQ(c.machine.name, "qemu-virt");
  EXPECT_EQ(c.machine.ram_size, mm::SZ_1G);
  EXPECT_FALSE(c.slab.variant.has_value());
  const ExecOptions o = d.exec_options();
  const ExecOptions e;
  EXPECT_EQ(o.mode, e.mode);
  EXPECT_EQ(o.checks, e.checks);
  EXPECT_EQ(o.final_sweep, e.final_sweep);
  EXPECT_EQ(o.record_misuse, e.record_misuse);
  EXPECT_EQ(o.misuse_writes, e.misuse_writes);
  EXPECT_EQ(o.max_findings, e.max_findings);
}

TEST(ProgramHeader, TheHeaderEndsAtTheFirstOtherLine) {
  const Program p = parse_program(
      "# a comment before the version line\n"
      "# mmfuzz program v2\n"
      "# slab: slob\n"
      "# found by hand: a comment now\n"
      "# slab: slub\n" +
      std::string(kOps));
  EXPECT_EQ(p.header.slab, mm::SlabVariant::slob);
  const Program q = parse_program("# mmfuzz program v2\n\n# slab: slob\n" + std::string(kOps));
  EXPECT_EQ(q.header.slab, mm::SlabVariant::slub);
  // Comments after the first op are not the header.
  const Program r = parse_program(std::string("# mmfuzz program v2\n") + kOps + "# slab: slob\n");
  EXPECT_EQ(r.header.slab, mm::SlabVariant::slub);
}

TEST(ProgramHeader, BadHeadersAreOneLineErrors) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"# profile: linux-4.4-x86", "unknown kernel profile"},
      {"# machine: pdp11", "unknown value 'pdp11'"},
      {"# machine_line: ram_size", "key = value"},
      {"# machine_line: warp = 9", "unknown machine key 'warp'"},
      {"# ram: 1X", "ram"},
      {"# ram_base: zz", "ram_base"},
      {"# cpus: 4097", "cpus"},
      {"# nodes: many", "nodes"},
      {"# cma: -1", "cma"},
      {"# slab: slub2", "unknown value 'slub2'"},
      {"# slub_debug: Q", "slub_debug"},
      {"# kmalloc_min: 12", "kmalloc_min"},
      {"# rodata: maybe", "rodata"},
      {"# vmalloc: yes", "want on or off"},
      {"# lazy_max_pages: 0", "lazy_max_pages"},
      {"# lazy_max_pages: many", "lazy_max_pages"},
      {"# checks: nosuch.invariant", "matches no invariant"},
      {"# check: sometimes", "unknown value 'sometimes'"},
      {"# check_every: -5", "check_every"},
      {"# final_sweep: 1", "final_sweep"},
      {"# record_misuse: true", "record_misuse"},
      {"# misuse_writes: no", "misuse_writes"},
      {"# report_leaks: ", "report_leaks"},
      {"# max_findings: lots", "max_findings"},
      {"# planted: no_such_bug", "unknown planted defect 'no_such_bug'"},
      {"# expect: ", "signature"},
      {"# target: Not A Name", "target"},
      {"# colour: blue", "unknown header key 'colour'"},
      {"# slab: slob\n# slab: slub", "given twice"},
  };
  for (const auto& [line, why] : bad) {
    const std::string text = "# mmfuzz program v2\n" + line + "\n" + kOps;
    try {
      parse_program(text, "bad.program");
      ADD_FAILURE() << "accepted: " << line;
    } catch (const trace::InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(why), std::string::npos) << line << " -> " << msg;
      EXPECT_EQ(msg.rfind("bad.program:", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(parse_program("# mmfuzz program v3\n"), trace::InputError);
}

TEST(ProgramHeader, PlantedDefectsNeedABuildWithThem) {
  ProgramHeader h;
  h.version = 2;
  h.planted = mm::PlantedDefect::buddy_skip_merge;
  // Parsing reads it in any build; booting it needs the defects compiled in.
  const Program p = parse_program(print_program(with_header(h)));
  EXPECT_EQ(p.header.planted, mm::PlantedDefect::buddy_skip_merge);
  if (mm::kPlantedDefects) {
    EXPECT_NO_THROW(p.header.mm_config());
  } else {
    try {
      p.header.mm_config();
      ADD_FAILURE() << "no error";
    } catch (const mm::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("MMFUZZ_PLANTED_DEFECTS"), std::string::npos);
    }
  }
}

// A Program run under its header alone gives the verdict its finder saw: a
// double free is misuse under replay's defaults, nothing with misuse off.
TEST(ProgramHeader, DecidesTheVerdict) {
  const std::string ops = std::string(kOps) + "kfree: call_site=0x0 ptr=0000000000000001\n";
  const Program v1 = parse_program("# mmfuzz program v1\n" + ops);
  EXPECT_FALSE(Executor::run(v1, v1.header.mm_config(), v1.header.exec_options()).findings.empty());
  const Program v2 =
      parse_program("# mmfuzz program v2\n# machine: fuzz\n# record_misuse: off\n" + ops);
  EXPECT_TRUE(Executor::run(v2, v2.header.mm_config(), v2.header.exec_options()).findings.empty());
}

}  // namespace
}  // namespace mmfuzz::prog
