// Basic types, kernel profiles and machine descriptions: parse_size,
// parse_number, profile_by_name, validate_machine, load_machine_file,
// cpu_to_node and node_memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/phys/machine.h"
#include "mm/profile.h"
#include "mm/types.h"

namespace mmfuzz::mm {
namespace {

// Runs f and returns the ConfigError message; fails the test if f does not
// throw ConfigError (any other exception propagates and fails the test too).
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

const KernelProfile& p61() {
  return profile_by_name("linux-6.1-arm64");
}

// ---------------------------------------------------------------- types

TEST(Types, HelpersMatchKernelDefinitions) {
  static_assert(round_up(4097, 4096) == 8192);
  static_assert(round_up(4096, 4096) == 4096);
  static_assert(round_down(8191, 4096) == 4096);
  static_assert(is_aligned(0x40000000, 2 * SZ_1M));
  static_assert(!is_aligned(0x40001000, 2 * SZ_1M));
  static_assert(fls64(0) == 0);
  static_assert(fls64(1) == 1);
  static_assert(fls64(0x80) == 8);
  static_assert(fls64(~std::uint64_t{0}) == 64);
  static_assert(rounddown_pow_of_two(0) == 0);
  static_assert(rounddown_pow_of_two(90) == 64);
  static_assert(rounddown_pow_of_two(64) == 64);
  EXPECT_EQ(int_sqrt(0), 0u);
  EXPECT_EQ(int_sqrt(1), 1u);
  EXPECT_EQ(int_sqrt(3), 1u);
  EXPECT_EQ(int_sqrt(4), 2u);
  EXPECT_EQ(int_sqrt(15), 3u);
  EXPECT_EQ(int_sqrt(16), 4u);
  // min_free_kbytes of the default guest: int_sqrt(lowmem_kbytes * 16).
  EXPECT_EQ(int_sqrt(1000000), 1000u);
  EXPECT_EQ(int_sqrt(999999), 999u);
  EXPECT_EQ(int_sqrt(~std::uint64_t{0}), 0xffffffffu);
  EXPECT_EQ(NO_PAGE, ~pfn_t{0});
  EXPECT_EQ(SZ_1G, 1073741824u);
}

TEST(ParseSize, AcceptsSuffixesHexAndPlainBytes) {
  EXPECT_EQ(parse_size("1G"), SZ_1G);
  EXPECT_EQ(parse_size("1g"), SZ_1G);
  EXPECT_EQ(parse_size("512M"), 512 * SZ_1M);
  EXPECT_EQ(parse_size("512m"), 512 * SZ_1M);
  EXPECT_EQ(parse_size("64k"), 64 * SZ_1K);
  EXPECT_EQ(parse_size("64K"), 64 * SZ_1K);
  EXPECT_EQ(parse_size("2T"), 2 * 1024 * SZ_1G);
  EXPECT_EQ(parse_size("1GB"), SZ_1G);
  EXPECT_EQ(parse_size("16MB"), 16 * SZ_1M);
  EXPECT_EQ(parse_size("0x40000000"), 0x40000000u);
  EXPECT_EQ(parse_size("0X1000"), 0x1000u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("0M"), 0u);
  // The largest value that does not overflow with a suffix.
  EXPECT_EQ(parse_size("17179869183G"), 17179869183ull * SZ_1G);
}

TEST(ParseSize, RejectsGarbageWithConfigError) {
  EXPECT_NE(config_error([] { parse_size(""); }).find("empty size"), std::string::npos);
  for (const char* bad : {"abc", "12Q", "1GiB", "M", "G", "-1", "1.5G", " 1G", "1G ", "0x", "0xg",
                          "1K2", "99999999999999999999", "+5"}) {
    const std::string msg = config_error([&] { parse_size(bad); });
    EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos)
        << "input '" << bad << "' gave: " << msg;
  }
  EXPECT_NE(config_error([] { parse_size("1GiB"); }).find("not a size"), std::string::npos);
  // 2^34 GiB is 2^64 bytes.
  EXPECT_NE(config_error([] { parse_size("17179869184G"); }).find("too large"), std::string::npos);
  EXPECT_NE(config_error([] { parse_size("99999999999999T"); }).find("too large"),
            std::string::npos);
}

TEST(ParseNumber, HexAndDecimal) {
  EXPECT_EQ(parse_number("0"), 0u);
  EXPECT_EQ(parse_number("42"), 42u);
  EXPECT_EQ(parse_number("0x1F"), 31u);
  EXPECT_EQ(parse_number("0X1f"), 31u);
  EXPECT_EQ(parse_number("0x7ac00000"), 0x7ac00000u);
  EXPECT_EQ(parse_number("18446744073709551615"), ~std::uint64_t{0});
  EXPECT_EQ(parse_number("0xffffffffffffffff"), ~std::uint64_t{0});
  // Leading zeros are decimal, not octal.
  EXPECT_EQ(parse_number("010"), 10u);
}

TEST(ParseNumber, RejectsGarbageWithConfigError) {
  for (const char* bad : {"", "0x", "12a", "0xg", "-5", "+5", " 7", "7 ", "1M", "0x1p3",
                          "18446744073709551616", "0x10000000000000000"}) {
    const std::string msg = config_error([&] { parse_number(bad); });
    EXPECT_EQ(msg, std::string("not a number: '") + bad + "'");
  }
}

TEST(ParseNumber, ConfigErrorIsARuntimeError) {
  try {
    parse_number("nope");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "not a number: 'nope'");
  }
}

// ---------------------------------------------------------------- profiles

TEST(Profile, Linux61Arm64) {
  const KernelProfile& p = profile_by_name("linux-6.1-arm64");
  EXPECT_EQ(p.name, "linux-6.1-arm64");
  EXPECT_EQ(&p, &profile_by_name(kDefaultProfile));
  EXPECT_EQ(&p, &profile_by_name("linux-6.1-arm64"));  // one object, stable reference
  EXPECT_EQ(p.pcp, PcpModel::v6_1);
  EXPECT_EQ(p.page_shift, 12u);
  EXPECT_EQ(p.page_size(), 4096u);
  EXPECT_EQ(p.max_order, 11u);
  EXPECT_EQ(p.pageblock_order, 9u);
  EXPECT_EQ(p.pageblock_nr_pages(), 512u);
  EXPECT_EQ(p.section_size_bits, 27u);
  EXPECT_EQ(p.pfn_section_shift(), 15u);
  EXPECT_EQ(p.pages_per_section(), 32768u);
  EXPECT_EQ(p.max_numnodes(), 16u);
  EXPECT_EQ(p.zone_dma_bits, 32u);
  EXPECT_EQ(p.page_offset, 0xffff000000000000ull);
  EXPECT_EQ(p.vmemmap_start, 0xfffffc0000000000ull);
  EXPECT_EQ(p.struct_page_size, 64u);
  EXPECT_EQ(p.cma_size, 64 * SZ_1M);
  EXPECT_TRUE(p.thp);
  EXPECT_TRUE(p.init_on_alloc);
  EXPECT_FALSE(p.init_on_free);
  EXPECT_EQ(p.page_alloc_costly_order, 3u);
}

TEST(Profile, Linux510Arm64) {
  const KernelProfile& p = profile_by_name("linux-5.10-arm64");
  EXPECT_EQ(p.name, "linux-5.10-arm64");
  EXPECT_EQ(p.pcp, PcpModel::v5_10);
  EXPECT_EQ(p.section_size_bits, 30u);  // 1 GiB sections before 5.12
  EXPECT_EQ(p.pages_per_section(), 262144u);
  EXPECT_EQ(p.zone_dma_bits, 30u);
  EXPECT_EQ(p.max_order, 11u);
  EXPECT_EQ(p.pageblock_order, 9u);
  EXPECT_NE(&p, &profile_by_name("linux-6.1-arm64"));
}

TEST(Profile, NamesListsBoth) {
  const auto names = profile_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "linux-6.1-arm64");
  EXPECT_EQ(names[1], "linux-5.10-arm64");
  for (const auto& n : names) EXPECT_EQ(profile_by_name(n).name, n);
}

TEST(Profile, UnknownNameThrowsWithKnownList) {
  EXPECT_EQ(config_error([] { profile_by_name("linux-4.19-arm64"); }),
            "unknown kernel profile 'linux-4.19-arm64' (known: linux-6.1-arm64, linux-5.10-arm64)");
  EXPECT_EQ(config_error([] { profile_by_name(""); }),
            "unknown kernel profile '' (known: linux-6.1-arm64, linux-5.10-arm64)");
  // Names are exact.
  EXPECT_THROW(profile_by_name("LINUX-6.1-ARM64"), ConfigError);
  EXPECT_THROW(profile_by_name("linux-6.1-arm64 "), ConfigError);
}

TEST(Profile, MmWithUnknownProfileThrows) {
  MmConfig cfg;
  cfg.profile = "linux-9.9-riscv";
  const std::string msg = config_error([&] { Mm mm(cfg); });
  EXPECT_NE(msg.find("unknown kernel profile 'linux-9.9-riscv'"), std::string::npos);
  EXPECT_NE(msg.find("linux-5.10-arm64"), std::string::npos);
}

// ---------------------------------------------------------------- machine

TEST(Machine, DefaultIsTheRecordedQemuVirtGuest) {
  const MachineConfig m = default_machine();
  EXPECT_EQ(m.name, "qemu-virt");
  EXPECT_EQ(m.ram_base, 0x40000000u);
  EXPECT_EQ(m.ram_size, SZ_1G);
  EXPECT_EQ(m.ram_end(), 0x80000000u);
  EXPECT_EQ(m.nr_cpus, 2u);
  EXPECT_EQ(m.nr_nodes, 1u);
  EXPECT_TRUE(m.holes.empty());
  EXPECT_EQ(m.kernel_start(), 0x40210000u);
  // QEMU: initrd at ram_base + min(ram_size / 2, 128 MiB), DTB at the next 2 MiB.
  EXPECT_EQ(m.initrd_start(), 0x48000000u);
  EXPECT_EQ(m.dtb_start(), 0x48200000u);
  EXPECT_FALSE(m.cma_size.has_value());
  EXPECT_FALSE(m.min_free_kbytes.has_value());
  ASSERT_EQ(m.early_allocs.size(), 8u);
  std::uint64_t early = 0;
  for (const auto& a : m.early_allocs) early += a.size;
  EXPECT_EQ(early, 4 * SZ_1M);  // 7fc00000-7fffffff of the guest's iomem
  EXPECT_EQ(m.devices.size(), 9u);
  EXPECT_NO_THROW(validate_machine(m, p61()));
  EXPECT_NO_THROW(validate_machine(m, profile_by_name("linux-5.10-arm64")));
}

TEST(Machine, InitrdPlacementFollowsRamSize) {
  MachineConfig m = default_machine();
  m.ram_size = 64 * SZ_1M;
  EXPECT_EQ(m.initrd_start(), m.ram_base + 32 * SZ_1M);
  EXPECT_EQ(m.dtb_start(), m.ram_base + 34 * SZ_1M);  // 32M + 0xf6800, rounded to 2 MiB
  m.ram_size = 4 * SZ_1G;
  EXPECT_EQ(m.initrd_start(), m.ram_base + 128 * SZ_1M);
  m.initrd_size = 0;
  EXPECT_EQ(m.dtb_start(), m.ram_base + 128 * SZ_1M);
}

TEST(MachineValidation, TooSmallRam) {
  MachineConfig m = default_machine();
  m.ram_size = 32 * SZ_1M;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "RAM of 32 MiB cannot hold the kernel image, initrd and DTB (34 MiB needed)");
  m.ram_size = 0;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "each of the 1 nodes needs at least 4 MiB");
  m.ram_size = 4 * SZ_1M;
  EXPECT_NE(config_error([&] { validate_machine(m, p61()); }).find("cannot hold the kernel image"),
            std::string::npos);
}

TEST(MachineValidation, RamGeometry) {
  MachineConfig m = default_machine();
  m.ram_base = 0x40100000;  // 1 MiB aligned only
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "ram_base must be 2 MiB aligned");
  m = default_machine();
  m.ram_size = SZ_1G + 2 * SZ_1M;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "ram size must be a multiple of 4 MiB (a MAX_ORDER block)");
  m = default_machine();
  m.ram_base = (std::uint64_t{1} << 48) - 512 * SZ_1M;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "RAM ends beyond the 48-bit physical address space");
  m = default_machine();
  m.ram_base = ~std::uint64_t{0} - 2 * SZ_1M + 1;  // 2 MiB aligned, wraps around
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "RAM ends beyond the 48-bit physical address space");
}

TEST(MachineValidation, CpusAndNodes) {
  MachineConfig m = default_machine();
  m.nr_cpus = 0;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "cpus must be 1..256 (NR_CPUS)");
  m.nr_cpus = 257;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "cpus must be 1..256 (NR_CPUS)");
  m.nr_cpus = 256;
  EXPECT_NO_THROW(validate_machine(m, p61()));

  m = default_machine();
  m.nr_nodes = 0;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "nodes must be 1..16 (CONFIG_NODES_SHIFT)");
  m.nr_nodes = 17;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "nodes must be 1..16 (CONFIG_NODES_SHIFT)");
  m.nr_nodes = 16;
  EXPECT_NO_THROW(validate_machine(m, p61()));
  m.ram_size = 60 * SZ_1M;  // 3.75 MiB per node
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "each of the 16 nodes needs at least 4 MiB");
}

TEST(MachineValidation, Holes) {
  MachineConfig m = default_machine();
  m.holes = {{0x30000000, 0x30100000}};  // below RAM
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "hole outside RAM");
  m.holes = {{0x7ff00000, 0x80100000}};  // runs past the end of RAM
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "hole outside RAM");
  m.holes = {{0x3ff00000, 0x40100000}};  // starts below RAM
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "hole outside RAM");
  m.holes = {{0x50000800, 0x50100000}};
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "hole not page aligned");
  m.holes = {{0x50000000, 0x50100800}};
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }), "hole not page aligned");
  m.holes = {{0x41000000, 0x41100000}};  // inside the kernel image
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "a hole overlaps the kernel image, initrd or DTB");
  m.holes = {{0x48000000, 0x48001000}};  // the initrd
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "a hole overlaps the kernel image, initrd or DTB");
  m.holes = {{0x48200000, 0x48201000}};  // the DTB
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "a hole overlaps the kernel image, initrd or DTB");
  m.holes = {{0x50000000, 0x58000000}, {0x7f000000, 0x80000000}};
  EXPECT_NO_THROW(validate_machine(m, p61()));
}

TEST(MachineValidation, KernelImageAlignment) {
  MachineConfig m = default_machine();
  m.kernel_code_size += 0x800;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "kernel image sections must be page aligned");
  m = default_machine();
  m.kernel_offset = 0x210100;
  EXPECT_EQ(config_error([&] { validate_machine(m, p61()); }),
            "kernel image sections must be page aligned");
}

TEST(MachineValidation, MmConstructorRejectsBadMachinesWithoutCrashing) {
  const auto bad = [](auto edit) {
    MmConfig cfg;
    edit(cfg.machine);
    return config_error([&] { Mm mm(cfg); });
  };
  EXPECT_EQ(bad([](MachineConfig& m) { m.nr_cpus = 0; }), "cpus must be 1..256 (NR_CPUS)");
  EXPECT_EQ(bad([](MachineConfig& m) { m.ram_base = 0x40100000; }),
            "ram_base must be 2 MiB aligned");
  EXPECT_EQ(bad([](MachineConfig& m) { m.nr_nodes = 17; }),
            "nodes must be 1..16 (CONFIG_NODES_SHIFT)");
  EXPECT_EQ(bad([](MachineConfig& m) {
              m.holes = {{0x90000000, 0x90001000}};
            }),
            "hole outside RAM");
  EXPECT_NE(bad([](MachineConfig& m) { m.ram_size = 16 * SZ_1M; }).find("cannot hold"),
            std::string::npos);
}

TEST(MachineValidation, TightRamEitherBootsOrThrowsConfigError) {
  // Machines that pass validation but have too little room for the early
  // allocations or the memmap must fail with ConfigError, never crash.
  for (const std::uint64_t mib : {40u, 44u, 48u, 56u}) {
    MmConfig cfg;
    cfg.machine.ram_size = mib * SZ_1M;
    cfg.machine.initrd_size = 0;
    cfg.machine.early_allocs = {{8 * SZ_1M, false}};
    ASSERT_NO_THROW(validate_machine(cfg.machine, p61()));
    if (mib == 40) {
      // 34 MiB of kernel image leave less than 6 MiB above it.
      EXPECT_EQ(config_error([&] { Mm mm(cfg); }), "RAM too small for the early boot allocations");
      continue;
    }
    Mm mm(cfg);
    EXPECT_TRUE(mm.booted());
    EXPECT_EQ(mm.page_alloc.totalram_pages,
              mm.page_alloc.node_data[0].node_zones[ZONE_DMA].managed_pages);
    EXPECT_GT(mm.page_alloc.totalram_pages, 1000u);
    // The 64 MiB CMA area does not fit: boot goes on without it.
    EXPECT_EQ(mm.page_alloc.cma.count, 0u);
    bool logged = false;
    for (const auto& l : mm.boot_log) logged |= l == "cma: Failed to reserve 64 MiB";
    EXPECT_TRUE(logged) << mib;
  }
}

TEST(MachineValidation, InitrdOverlappingTheKernelImageIsNeverFreed) {
  // On 64 MiB QEMU's rule puts the initrd at RAM + 32 MiB, inside the 34 MiB
  // kernel image. Real QEMU moves it above the image (image_high_addr); the
  // kernel would never hand out its own .data. The model must either reject
  // the machine or keep those pages reserved.
  MmConfig cfg;
  cfg.machine.ram_size = 64 * SZ_1M;
  cfg.machine.cma_size = 0;
  cfg.machine.early_allocs.clear();
  ASSERT_LT(cfg.machine.initrd_start(), cfg.machine.kernel_start() + 0x2000000);
  try {
    Mm mm(cfg);
    const pfn_t first = cfg.machine.initrd_start() >> 12;
    const pfn_t last = (cfg.machine.kernel_start() + 0x2000000 - 1) >> 12;
    for (pfn_t pfn = first; pfn <= last; ++pfn) {
      ASSERT_TRUE(PageReserved(mm.pfn_to_page(pfn)))
          << "kernel .data page " << std::hex << pfn << " was freed as initrd memory";
    }
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("initrd"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- machine files

class MachineFile : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& p : files_) std::filesystem::remove(p);
  }
  std::string write(const std::string& text) {
    const auto dir = std::filesystem::temp_directory_path();
    const std::string path = (dir / ("mmfuzz-machine-" + std::to_string(::getpid()) + "-" +
                                     std::to_string(files_.size()) + ".machine"))
                                 .string();
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  // The ConfigError of loading `text`, with the file's path replaced by "FILE".
  std::string load_error(const std::string& text) {
    const std::string path = write(text);
    std::string msg = config_error([&] { load_machine_file(path); });
    if (msg.compare(0, path.size(), path) == 0) msg = "FILE" + msg.substr(path.size());
    return msg;
  }

 private:
  std::vector<std::string> files_;
};

TEST_F(MachineFile, GoodFile) {
  const std::string path = write(
      "# a two-node test machine\n"
      "\n"
      "name = testbox\n"
      "ram=512M\n"
      "cpus = 4\n"
      "nodes = 2   # trailing comment\n"
      "hole = 0x50000000-0x500fffff\n"
      "hole = 0x58000000+2M\n"
      "\thole\t=\t0x5f000000 + 0x100000\t\n"
      "cma = 16M\n"
      "min_free_kbytes = 4096\n");
  const MachineConfig m = load_machine_file(path);
  EXPECT_EQ(m.name, "testbox");
  EXPECT_EQ(m.ram_size, 512 * SZ_1M);
  EXPECT_EQ(m.nr_cpus, 4u);
  EXPECT_EQ(m.nr_nodes, 2u);
  ASSERT_EQ(m.holes.size(), 3u);
  EXPECT_EQ(m.holes[0].start, 0x50000000u);
  EXPECT_EQ(m.holes[0].end, 0x50100000u);  // END is inclusive in the file
  EXPECT_EQ(m.holes[1].start, 0x58000000u);
  EXPECT_EQ(m.holes[1].end, 0x58200000u);
  EXPECT_EQ(m.holes[2].start, 0x5f000000u);
  EXPECT_EQ(m.holes[2].size(), SZ_1M);
  ASSERT_TRUE(m.cma_size.has_value());
  EXPECT_EQ(*m.cma_size, 16 * SZ_1M);
  ASSERT_TRUE(m.min_free_kbytes.has_value());
  EXPECT_EQ(*m.min_free_kbytes, 4096u);
  // Everything else is the default machine.
  const MachineConfig d = default_machine();
  EXPECT_EQ(m.ram_base, d.ram_base);
  EXPECT_EQ(m.kernel_offset, d.kernel_offset);
  EXPECT_EQ(m.initrd_size, d.initrd_size);
  EXPECT_EQ(m.early_allocs.size(), d.early_allocs.size());
  EXPECT_EQ(m.devices.size(), d.devices.size());
  EXPECT_NO_THROW(validate_machine(m, p61()));

  // And it boots: two nodes of 256 MiB, the holes cut out of node 1.
  MmConfig cfg;
  cfg.machine = m;
  Mm mm(cfg);
  ASSERT_TRUE(mm.booted());
  EXPECT_EQ(mm.nr_cpus(), 4u);
  EXPECT_EQ(mm.cpu_to_node(0), 0);
  EXPECT_EQ(mm.cpu_to_node(1), 0);
  EXPECT_EQ(mm.cpu_to_node(2), 1);
  EXPECT_EQ(mm.cpu_to_node(3), 1);
  ASSERT_EQ(mm.page_alloc.node_data.size(), 2u);
  EXPECT_EQ(mm.memblock.memory.total_size(), 512 * SZ_1M - 4 * SZ_1M);
  EXPECT_FALSE(mm.memblock.is_memory(0x50000000));
  EXPECT_FALSE(mm.memblock.is_memory(0x500ff000));
  EXPECT_TRUE(mm.memblock.is_memory(0x50100000));
  EXPECT_FALSE(mm.memblock.is_memory(0x581ff000));
  EXPECT_EQ(mm.page_alloc.cma.count, 16 * SZ_1M / 4096);
  EXPECT_EQ(mm.page_alloc.min_free_kbytes, 4096u);
  // The hole pages have a memmap (their section is present) but are reserved.
  const pfn_t hole_pfn = 0x50000000 >> 12;
  ASSERT_TRUE(mm.pfn_valid(hole_pfn));
  EXPECT_TRUE(PageReserved(mm.pfn_to_page(hole_pfn)));
  EXPECT_FALSE(mm.page_alloc.is_free_buddy_page(hole_pfn));
}

TEST_F(MachineFile, DeviceAndEarlyAllocLinesReplaceTheDefaults) {
  const MachineConfig m =
      load_machine_file(write("device = 0x09000000-0x09000fff uart@9000000\n"
                              "device_child = 0x09000000-0x09000fff 9000000.uart\n"
                              "device = 0x0a000000+4K rtc\n"
                              "early_alloc = 64K\n"
                              "early_alloc = 0x2000 freed\n"));
  ASSERT_EQ(m.devices.size(), 3u);
  EXPECT_EQ(m.devices[0].name, "uart@9000000");
  EXPECT_EQ(m.devices[0].start, 0x09000000u);
  EXPECT_EQ(m.devices[0].end, 0x09000fffu);
  EXPECT_EQ(m.devices[0].depth, 0);
  EXPECT_EQ(m.devices[1].depth, 1);
  EXPECT_EQ(m.devices[2].name, "rtc");
  EXPECT_EQ(m.devices[2].end, 0x0a000fffu);
  ASSERT_EQ(m.early_allocs.size(), 2u);
  EXPECT_EQ(m.early_allocs[0].size, 64 * SZ_1K);
  EXPECT_FALSE(m.early_allocs[0].freed);
  EXPECT_EQ(m.early_allocs[1].size, 0x2000u);
  EXPECT_TRUE(m.early_allocs[1].freed);

  const MachineConfig none = load_machine_file(write("devices = none\nearly_allocs = none\n"));
  EXPECT_TRUE(none.devices.empty());
  EXPECT_TRUE(none.early_allocs.empty());
}

TEST_F(MachineFile, EmptyFileIsTheDefaultMachine) {
  const MachineConfig m = load_machine_file(write("# nothing\n\n   \n"));
  const MachineConfig d = default_machine();
  EXPECT_EQ(m.name, d.name);
  EXPECT_EQ(m.ram_size, d.ram_size);
  EXPECT_EQ(m.nr_cpus, d.nr_cpus);
  EXPECT_EQ(m.early_allocs.size(), d.early_allocs.size());
}

TEST_F(MachineFile, BadLinesReportFileAndLine) {
  EXPECT_EQ(load_error("ram = 512M\nram 512M\n"), "FILE:2: expected 'key = value'");
  EXPECT_EQ(load_error("# c\n\nfoo = 1\n"), "FILE:3: unknown machine key 'foo'");
  EXPECT_EQ(load_error("ram = lots\n"),
            "FILE:1: not a size: 'lots' (use e.g. 1G, 512M, 64K or a byte count)");
  EXPECT_EQ(load_error("cpus = 4\ncpus = 5000\n"), "FILE:2: cpus out of range: 5000");
  EXPECT_EQ(load_error("nodes = two\n"), "FILE:1: not a number: 'two'");
  EXPECT_EQ(load_error("hole = 0x5000\n"),
            "FILE:1: expected START-END or START+SIZE, got '0x5000'");
  EXPECT_EQ(load_error("hole = 0x6000-0x5000\n"), "FILE:1: range end below start: '0x6000-0x5000'");
  EXPECT_EQ(load_error("early_alloc = 64K sometimes\n"),
            "FILE:1: early_alloc takes SIZE [freed], got '64K sometimes'");
  EXPECT_EQ(load_error("\n\n\n\ndevice = 0x1000-0x1fff\n"),
            "FILE:5: device takes START-END NAME, got '0x1000-0x1fff'");
  EXPECT_EQ(load_error("early_allocs = some\n"), "FILE:1: unknown machine key 'early_allocs'");
}

TEST_F(MachineFile, MissingFile) {
  const std::string path = "/nonexistent/dir/mmfuzz.machine";
  EXPECT_EQ(config_error([&] { load_machine_file(path); }),
            "cannot open machine file '/nonexistent/dir/mmfuzz.machine'");
}

TEST_F(MachineFile, ParsesButValidationRejects) {
  // The loader only parses; validate_machine judges.
  const MachineConfig m = load_machine_file(write("ram = 16M\n"));
  EXPECT_EQ(m.ram_size, 16 * SZ_1M);
  EXPECT_THROW(validate_machine(m, p61()), ConfigError);
}

// ---------------------------------------------------------------- topology

TEST(Topology, CpuToNodeSpreadsCpusInContiguousBlocks) {
  MachineConfig m = default_machine();
  EXPECT_EQ(cpu_to_node(m, 0), 0);
  EXPECT_EQ(cpu_to_node(m, 1), 0);
  m.nr_nodes = 2;
  EXPECT_EQ(cpu_to_node(m, 0), 0);
  EXPECT_EQ(cpu_to_node(m, 1), 1);
  m.nr_cpus = 4;
  const std::vector<int> four = {0, 0, 1, 1};
  for (unsigned c = 0; c < 4; ++c) EXPECT_EQ(cpu_to_node(m, c), four[c]) << "cpu " << c;
  m.nr_cpus = 3;
  const std::vector<int> three = {0, 0, 1};
  for (unsigned c = 0; c < 3; ++c) EXPECT_EQ(cpu_to_node(m, c), three[c]) << "cpu " << c;
  m.nr_cpus = 8;
  m.nr_nodes = 3;
  const std::vector<int> eight = {0, 0, 0, 1, 1, 1, 2, 2};
  for (unsigned c = 0; c < 8; ++c) EXPECT_EQ(cpu_to_node(m, c), eight[c]) << "cpu " << c;
}

TEST(Topology, NodeMemoryEqualSharesAligned) {
  MachineConfig m = default_machine();
  auto nodes = node_memory(m, p61());
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_EQ(nodes[0].size(), 1u);
  EXPECT_EQ(nodes[0][0].start, 0x40000000u);
  EXPECT_EQ(nodes[0][0].end, 0x80000000u);

  m.nr_nodes = 2;
  nodes = node_memory(m, p61());
  ASSERT_EQ(nodes.size(), 2u);
  ASSERT_EQ(nodes[0].size(), 1u);
  ASSERT_EQ(nodes[1].size(), 1u);
  EXPECT_EQ(nodes[0][0].start, 0x40000000u);
  EXPECT_EQ(nodes[0][0].end, 0x60000000u);
  EXPECT_EQ(nodes[1][0].start, 0x60000000u);
  EXPECT_EQ(nodes[1][0].end, 0x80000000u);

  // 1 GiB over 3 nodes: 340 MiB shares (4 MiB aligned), the last node gets the rest.
  m.nr_nodes = 3;
  nodes = node_memory(m, p61());
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0][0].size(), 340 * SZ_1M);
  EXPECT_EQ(nodes[1][0].start, nodes[0][0].end);
  EXPECT_EQ(nodes[1][0].size(), 340 * SZ_1M);
  EXPECT_EQ(nodes[2][0].start, nodes[1][0].end);
  EXPECT_EQ(nodes[2][0].end, 0x80000000u);
  EXPECT_EQ(nodes[2][0].size(), 344 * SZ_1M);
}

TEST(Topology, NodeMemoryCutsHoles) {
  MachineConfig m = default_machine();
  m.nr_nodes = 2;
  m.holes = {
      {0x40000000, 0x40200000},  // start of node 0
      {0x50000000, 0x50100000},  // middle of node 0
      {0x5ff00000, 0x60100000},  // straddles the node boundary
      {0x7ff00000, 0x80000000},  // end of node 1
  };
  const auto nodes = node_memory(m, p61());
  ASSERT_EQ(nodes.size(), 2u);
  ASSERT_EQ(nodes[0].size(), 2u);
  EXPECT_EQ(nodes[0][0].start, 0x40200000u);
  EXPECT_EQ(nodes[0][0].end, 0x50000000u);
  EXPECT_EQ(nodes[0][1].start, 0x50100000u);
  EXPECT_EQ(nodes[0][1].end, 0x5ff00000u);
  ASSERT_EQ(nodes[1].size(), 1u);
  EXPECT_EQ(nodes[1][0].start, 0x60100000u);
  EXPECT_EQ(nodes[1][0].end, 0x7ff00000u);
  std::uint64_t total = 0, holes = 0;
  for (const auto& n : nodes)
    for (const auto& r : n) total += r.size();
  for (const auto& h : m.holes) holes += h.size();
  EXPECT_EQ(total, m.ram_size - holes);
}

TEST(Topology, WholeNodeHoleLeavesTheNodeEmpty) {
  MachineConfig m = default_machine();
  m.nr_nodes = 2;
  m.holes = {{0x60000000, 0x80000000}};
  const auto nodes = node_memory(m, p61());
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].size(), 1u);
  EXPECT_TRUE(nodes[1].empty());
}

}  // namespace
}  // namespace mmfuzz::mm
