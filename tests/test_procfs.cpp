// The /proc text views against the real arm64 6.1 guest's files: the layout
// must match byte for byte, the numbers only where the model reproduces the
// guest (geometry, watermarks, pcp sizing, iomem).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "mm/mm.h"
#include "mm/procfs/procfs.h"

namespace mmfuzz::mm {
namespace {

const std::string kProcDir = std::string(MMFUZZ_GUESTS_DIR) + "/arm64-6.1-boot-shell.proc/";

std::string read_real(const std::string& name) {
  std::ifstream in(kProcDir + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << kProcDir + name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  for (char c : text) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  EXPECT_TRUE(cur.empty()) << "text does not end in a newline: '" << cur << "'";
  return lines;
}

// A number of a line and the columns it occupies.
struct Number {
  std::size_t begin = 0, end = 0;
  std::string digits;
};

// The line with each decimal number and the spaces before it replaced by one
// '#' (with a ' ' kept when there were spaces): the fixed text of the layout.
std::string shape(const std::string& line, std::vector<Number>* numbers = nullptr) {
  std::string out;
  std::size_t i = 0;
  while (i < line.size()) {
    std::size_t j = i;
    while (j < line.size() && line[j] == ' ') ++j;
    if (j < line.size() && std::isdigit(static_cast<unsigned char>(line[j]))) {
      std::size_t k = j;
      while (k < line.size() && std::isdigit(static_cast<unsigned char>(line[k]))) ++k;
      if (j > i) out += ' ';
      out += '#';
      if (numbers) numbers->push_back({j, k, line.substr(j, k - j)});
      i = k;
    } else {
      out.append(line, i, j - i + (j < line.size() ? 1 : 0));
      i = j + 1;
    }
  }
  return out;
}

// Same fixed text, and every number anchored where the real one is: its first
// column (left-aligned, after a "%-12s " label) or its last (right-aligned
// "%6lu" fields). A different field width or padding moves both.
void expect_same_layout(const std::string& model_line, const std::string& real_line,
                        const std::string& where) {
  std::vector<Number> mn, rn;
  const std::string ms = shape(model_line, &mn), rs = shape(real_line, &rn);
  ASSERT_EQ(ms, rs) << where << "\n model: '" << model_line << "'\n real:  '" << real_line << "'";
  ASSERT_EQ(mn.size(), rn.size()) << where;
  for (std::size_t i = 0; i < mn.size(); ++i)
    EXPECT_TRUE(mn[i].begin == rn[i].begin || mn[i].end == rn[i].end)
        << where << " number " << i << " misaligned\n model: '" << model_line << "'\n real:  '"
        << real_line << "'";
}

void expect_same_layout_all(const std::string& model, const std::string& real,
                            const std::string& file) {
  const auto ml = split_lines(model), rl = split_lines(real);
  ASSERT_EQ(ml.size(), rl.size()) << file << "\n--- model ---\n"
                                  << model << "--- real ---\n"
                                  << real;
  for (std::size_t i = 0; i < ml.size(); ++i)
    expect_same_layout(ml[i], rl[i], file + ":" + std::to_string(i + 1));
}

bool contains_line(const std::string& text, const std::string& line) {
  const auto lines = split_lines(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::size_t count_prefix(const std::string& text, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& l : split_lines(text)) n += l.rfind(prefix, 0) == 0;
  return n;
}

// The zoneinfo block of one zone: from its "Node N, zone NAME" line up to the
// next zone's header.
std::string zone_block(const std::string& zoneinfo, int nid, const char* zone) {
  char header[64];
  std::snprintf(header, sizeof header, "Node %d, zone %8s\n", nid, zone);
  const std::size_t b = zoneinfo.find(header);
  if (b == std::string::npos) return {};
  const std::size_t e = zoneinfo.find("Node ", b + 1);
  return zoneinfo.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

// ---- buddyinfo ----

TEST(ProcfsBuddyinfo, LayoutMatchesRealGuest) {
  Mm mm;
  const std::string model = procfs::buddyinfo(mm);
  expect_same_layout_all(model, read_real("buddyinfo"), "buddyinfo");
}

TEST(ProcfsBuddyinfo, PrintsNrFreePerOrder) {
  Mm mm;
  const zone& dma = mm.page_alloc.node_data[0].node_zones[ZONE_DMA];
  std::string expect = "Node 0, zone      DMA ";
  for (unsigned o = 0; o < mm.page_alloc.max_order(); ++o) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%6llu ",
                  static_cast<unsigned long long>(dma.free_area_[o].nr_free));
    expect += buf;
  }
  EXPECT_EQ(procfs::buddyinfo(mm), expect + "\n");
}

TEST(ProcfsBuddyinfo, TwoNodesOneLinePerNode) {
  MmConfig cfg;
  cfg.machine.nr_nodes = 2;
  Mm mm(cfg);
  const std::string text = procfs::buddyinfo(mm);
  const auto lines = split_lines(text);
  ASSERT_EQ(lines.size(), 2u) << text;
  EXPECT_EQ(lines[0].rfind("Node 0, zone ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("Node 1, zone ", 0), 0u) << lines[1];
  // Each line is laid out like the real single-node one.
  const std::string real = split_lines(read_real("buddyinfo"))[0];
  for (const auto& l : lines) EXPECT_EQ(shape(l), shape(real)) << l;
}

// ---- pagetypeinfo ----

TEST(ProcfsPagetypeinfo, LayoutMatchesRealGuest) {
  Mm mm;
  expect_same_layout_all(procfs::pagetypeinfo(mm), read_real("pagetypeinfo"), "pagetypeinfo");
}

TEST(ProcfsPagetypeinfo, GeometryAndCmaBlocks) {
  Mm mm;
  const std::string text = procfs::pagetypeinfo(mm);
  const auto lines = split_lines(text);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "Page block order: 9");
  EXPECT_EQ(lines[1], "Pages per block:  512");
  // The 64 MiB CMA area is 32 pageblocks of 2 MiB, as on the guest.
  const std::string& counts = lines.back();
  ASSERT_EQ(counts.rfind("Node 0, zone      DMA ", 0), 0u) << counts;
  std::istringstream in(counts.substr(std::string("Node 0, zone      DMA ").size()));
  std::vector<std::uint64_t> per_type;
  for (std::uint64_t v; in >> v;) per_type.push_back(v);
  ASSERT_EQ(per_type.size(), static_cast<std::size_t>(MIGRATE_TYPES)) << counts;
  EXPECT_EQ(per_type[MIGRATE_CMA], 32u);
  EXPECT_EQ(per_type[MIGRATE_ISOLATE], 0u);
  EXPECT_EQ(per_type[MIGRATE_HIGHATOMIC], 0u);
  // Every pageblock of the 1 GiB zone is counted once.
  std::uint64_t total = 0;
  for (auto v : per_type) total += v;
  EXPECT_EQ(total, 262144u / 512u);
}

TEST(ProcfsPagetypeinfo, FreeCountsMatchFreeLists) {
  Mm mm;
  const zone& dma = mm.page_alloc.node_data[0].node_zones[ZONE_DMA];
  const auto lines = split_lines(procfs::pagetypeinfo(mm));
  // Line 5 onwards: one line per migratetype.
  ASSERT_GE(lines.size(), 4u + MIGRATE_TYPES);
  std::uint64_t sum = 0;
  for (int mt = 0; mt < MIGRATE_TYPES; ++mt) {
    const std::string& l = lines[4 + static_cast<std::size_t>(mt)];
    char prefix[80];
    std::snprintf(prefix, sizeof prefix, "Node    0, zone      DMA, type %12s ",
                  migratetype_name(mt));
    ASSERT_EQ(l.rfind(prefix, 0), 0u) << l;
    std::istringstream in(l.substr(std::string(prefix).size()));
    for (unsigned o = 0; o < mm.page_alloc.max_order(); ++o) {
      std::uint64_t v = 0;
      ASSERT_TRUE(in >> v) << l;
      EXPECT_EQ(v, mm.page_alloc.list_length(
                       dma.free_area_[o].free_list[static_cast<std::size_t>(mt)], 1u << 20))
          << l;
      sum += v << o;
    }
  }
  // Pages on pcp lists are not free to the zone: the buddy free lists are
  // all NR_FREE_PAGES counts.
  EXPECT_EQ(sum, static_cast<std::uint64_t>(dma.zone_page_state(NR_FREE_PAGES)));
}

TEST(ProcfsPagetypeinfo, LongFreeListPrintsOverflowMarker) {
  Mm mm;
  // Take every movable page, then give back every other one: the freed pages
  // cannot merge, so the movable order-0 list grows past the kernel's cap.
  std::vector<pfn_t> pfns;
  for (;;) {
    const pfn_t pfn = mm.page_alloc.alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 0);
    if (pfn == NO_PAGE) break;
    pfns.push_back(pfn);
  }
  ASSERT_GT(pfns.size(), 200000u);
  std::sort(pfns.begin(), pfns.end());
  for (pfn_t pfn : pfns)
    if (pfn % 2 == 0) mm.page_alloc.__free_pages(pfn, 0);
  mm.page_alloc.drain_all_pages();
  const zone& dma = mm.page_alloc.node_data[0].node_zones[ZONE_DMA];
  ASSERT_GE(mm.page_alloc.list_length(dma.free_area_[0].free_list[MIGRATE_MOVABLE], 100000),
            100000u);

  const auto lines = split_lines(procfs::pagetypeinfo(mm));
  const std::string& movable = lines[4 + MIGRATE_MOVABLE];
  EXPECT_EQ(movable.rfind("Node    0, zone      DMA, type      Movable >100000 ", 0), 0u)
      << movable;
  // The other orders of that line keep their plain "%6lu " fields.
  EXPECT_EQ(movable.find('>', movable.find('>') + 1), std::string::npos) << movable;
}

// ---- zoneinfo ----

TEST(ProcfsZoneinfo, LayoutMatchesRealGuest) {
  Mm mm;
  // Same zones, same CPUs: the same number of lines as the guest.
  expect_same_layout_all(procfs::zoneinfo(mm), read_real("zoneinfo"), "zoneinfo");
}

TEST(ProcfsZoneinfo, ReproducesGuestSizingAndWatermarks) {
  Mm mm;
  const std::string text = procfs::zoneinfo(mm);
  const std::string dma = zone_block(text, 0, "DMA");
  ASSERT_FALSE(dma.empty()) << text;
  for (const char* line :
       {"        min      5632", "        low      7040", "        high     8448",
        "        spanned  262144", "        present  262144", "        cma      16384",
        "        boost    0", "        protection: (0, 0, 0, 0)", "  vm stats threshold: 16",
        "  node_unreclaimable:  0", "  start_pfn:           262144", "    cpu: 0", "    cpu: 1"})
    EXPECT_TRUE(contains_line(dma, line)) << "missing '" << line << "' in\n" << dma;
  EXPECT_EQ(count_prefix(dma, "              high:  3520"), 2u) << dma;
  EXPECT_EQ(count_prefix(dma, "              batch: 63"), 2u) << dma;
  EXPECT_EQ(count_prefix(dma, "  vm stats threshold: 16"), 2u) << dma;
  // Per-node stats once, in the first populated zone only.
  EXPECT_EQ(count_prefix(text, "  per-node stats"), 1u);
  EXPECT_NE(dma.find("  per-node stats\n"), std::string::npos);
}

TEST(ProcfsZoneinfo, EmptyZonesStopAfterProtection) {
  Mm mm;
  const std::string text = procfs::zoneinfo(mm);
  for (const char* name : {"DMA32", "Normal", "Movable"}) {
    const std::string b = zone_block(text, 0, name);
    const auto lines = split_lines(b);
    ASSERT_EQ(lines.size(), 11u) << b;
    EXPECT_EQ(lines[1], "  pages free     0");
    EXPECT_EQ(lines.back(), "        protection: (0, 0, 0, 0)");
  }
}

TEST(ProcfsZoneinfo, FreeAndManagedFollowTheModel) {
  Mm mm;
  const zone& z = mm.page_alloc.node_data[0].node_zones[ZONE_DMA];
  const std::string dma = zone_block(procfs::zoneinfo(mm), 0, "DMA");
  EXPECT_TRUE(
      contains_line(dma, "  pages free     " + std::to_string(z.zone_page_state(NR_FREE_PAGES))))
      << dma;
  EXPECT_TRUE(contains_line(dma, "        managed  " + std::to_string(z.managed_pages))) << dma;
  EXPECT_TRUE(
      contains_line(dma, "      nr_free_pages " + std::to_string(z.zone_page_state(NR_FREE_PAGES))))
      << dma;
}

TEST(ProcfsZoneinfo, SlabBytesPrintInPages) {
  Mm mm;
  mm.page_alloc.node_data[0].vm_stat[NR_SLAB_RECLAIMABLE_B] = 2090 * 4096;
  mm.page_alloc.node_data[0].vm_stat[NR_SLAB_UNRECLAIMABLE_B] = 2108 * 4096;
  const std::string text = procfs::zoneinfo(mm);
  EXPECT_TRUE(contains_line(text, "      nr_slab_reclaimable 2090")) << text;
  EXPECT_TRUE(contains_line(text, "      nr_slab_unreclaimable 2108")) << text;
}

TEST(ProcfsZoneinfo, Linux510PcpSizing) {
  MmConfig cfg;
  cfg.profile = "linux-5.10-arm64";
  Mm mm(cfg);
  const std::string text = procfs::zoneinfo(mm);
  // 5.10 zone_batchsize(): min(managed / 1024, 1 MiB of pages) / 4 = 61,
  // rounddown_pow_of_two(61 + 30) - 1 = 63; pageset high is 6 * batch.
  EXPECT_GE(count_prefix(text, "              batch: 63"), 2u) << text;
  EXPECT_GE(count_prefix(text, "              high:  378"), 2u) << text;
  EXPECT_EQ(count_prefix(text, "              batch: "),
            count_prefix(text, "              batch: 63"))
      << text;
  EXPECT_EQ(count_prefix(text, "              high:  "),
            count_prefix(text, "              high:  378"))
      << text;
}

TEST(ProcfsZoneinfo, TwoNodesEachPrintAllZones) {
  MmConfig cfg;
  cfg.machine.nr_nodes = 2;
  Mm mm(cfg);
  const std::string text = procfs::zoneinfo(mm);
  EXPECT_EQ(count_prefix(text, "Node 0, zone "), static_cast<std::size_t>(MAX_NR_ZONES));
  EXPECT_EQ(count_prefix(text, "Node 1, zone "), static_cast<std::size_t>(MAX_NR_ZONES));
  EXPECT_EQ(count_prefix(text, "  per-node stats"), 2u);
}

// ---- meminfo ----

TEST(ProcfsMeminfo, LinesMatchRealLabelsInKernelOrder) {
  Mm mm;
  const auto model = split_lines(procfs::meminfo(mm));
  const auto real = split_lines(read_real("meminfo"));
  // The model prints a subset of the guest's lines (only what it keeps state
  // for), so match each line to the guest's line with the same label.
  const std::vector<std::string> expected_labels = {
      "MemTotal:",     "MemFree:",     "MemAvailable:", "Slab:",
      "SReclaimable:", "SUnreclaim:",  "KernelStack:",  "PageTables:",
      "VmallocTotal:", "VmallocUsed:", "CmaTotal:",     "CmaFree:"};
  ASSERT_EQ(model.size(), expected_labels.size()) << procfs::meminfo(mm);
  std::size_t last_real = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const std::string label = model[i].substr(0, model[i].find(':') + 1);
    EXPECT_EQ(label, expected_labels[i]);
    auto it = std::find_if(real.begin(), real.end(),
                           [&](const std::string& l) { return l.rfind(label, 0) == 0; });
    ASSERT_NE(it, real.end()) << label;
    const auto pos = static_cast<std::size_t>(it - real.begin());
    if (i > 0) {
      EXPECT_GT(pos, last_real) << label << " out of the kernel's order";
    }
    last_real = pos;
    expect_same_layout(model[i], *it, "meminfo " + label);
  }
}

TEST(ProcfsMeminfo, VmallocTotalFollowsTheProfile) {
  MmConfig cfg;
  cfg.profile = "linux-5.10-arm64";
  Mm mm(cfg);
  // seed 001's vmalloc() area: 0xffff800010000000-0xfffffdffbfff0000
  EXPECT_TRUE(contains_line(procfs::meminfo(mm), "VmallocTotal:   135290159040 kB"))
      << procfs::meminfo(mm);
}

TEST(ProcfsMeminfo, ValuesTheModelReproduces) {
  Mm mm;
  const std::string text = procfs::meminfo(mm);
  EXPECT_TRUE(contains_line(text, "CmaTotal:          65536 kB")) << text;
  EXPECT_TRUE(contains_line(text, "VmallocTotal:   133143592960 kB")) << text;
  EXPECT_TRUE(contains_line(text, "VmallocUsed:           0 kB")) << text;
  char buf[64];
  std::snprintf(buf, sizeof buf, "MemTotal:       %8llu kB",
                static_cast<unsigned long long>(mm.page_alloc.totalram_pages * 4));
  EXPECT_TRUE(contains_line(text, buf)) << text;
  const zone& z = mm.page_alloc.node_data[0].node_zones[ZONE_DMA];
  std::snprintf(buf, sizeof buf, "MemFree:        %8llu kB",
                static_cast<unsigned long long>(z.zone_page_state(NR_FREE_PAGES) * 4));
  EXPECT_TRUE(contains_line(text, buf)) << text;
  std::snprintf(buf, sizeof buf, "CmaFree:        %8llu kB",
                static_cast<unsigned long long>(z.zone_page_state(NR_FREE_CMA_PAGES) * 4));
  EXPECT_TRUE(contains_line(text, buf)) << text;
}

TEST(ProcfsMeminfo, MemAvailableFollowsSiMemAvailable) {
  Mm mm;
  auto& pgdat = mm.page_alloc.node_data[0];
  const zone& z = pgdat.node_zones[ZONE_DMA];
  pgdat.vm_stat[NR_ACTIVE_FILE] = 3000;
  pgdat.vm_stat[NR_INACTIVE_FILE] = 1000;
  pgdat.vm_stat[NR_SLAB_RECLAIMABLE_B] = 2000 * 4096;
  pgdat.vm_stat[NR_SLAB_UNRECLAIMABLE_B] = 500 * 4096;
  pgdat.vm_stat[NR_KERNEL_STACK_KB] = 808;
  pgdat.vm_stat[NR_PAGETABLE] = 9;
  const long low = static_cast<long>(z.low_wmark_pages());  // 7040: more than half of either
  const long expect = z.zone_page_state(NR_FREE_PAGES) -
                      static_cast<long>(mm.page_alloc.totalreserve_pages) +
                      (4000 - std::min(2000L, low)) + (2000 - std::min(1000L, low));
  const std::string text = procfs::meminfo(mm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "MemAvailable:   %8ld kB", expect * 4);
  EXPECT_TRUE(contains_line(text, buf)) << text;
  EXPECT_TRUE(contains_line(text, "Slab:              10000 kB")) << text;
  EXPECT_TRUE(contains_line(text, "SReclaimable:       8000 kB")) << text;
  EXPECT_TRUE(contains_line(text, "SUnreclaim:         2000 kB")) << text;
  EXPECT_TRUE(contains_line(text, "KernelStack:         808 kB")) << text;
  EXPECT_TRUE(contains_line(text, "PageTables:           36 kB")) << text;
}

// ---- iomem ----

bool is_late_reserved(const std::string& line) {
  // "  7fc0a000-7fd8afff : reserved": the firmware/early reservations at the
  // top of RAM, which memblock merges in the model but the guest kept apart.
  if (line.rfind("  ", 0) != 0 || line.find(" : reserved") == std::string::npos) return false;
  return std::stoull(line.substr(2, line.find('-') - 2), nullptr, 16) >= 0x7fc00000ull;
}

TEST(ProcfsIomem, MatchesRealGuestExceptMergedReservations) {
  Mm mm;
  const auto model = split_lines(procfs::iomem(mm));
  const auto real = split_lines(read_real("iomem"));
  std::vector<std::string> m2, r2;
  std::copy_if(model.begin(), model.end(), std::back_inserter(m2),
               [](auto& l) { return !is_late_reserved(l); });
  std::copy_if(real.begin(), real.end(), std::back_inserter(r2),
               [](auto& l) { return !is_late_reserved(l); });
  EXPECT_EQ(m2, r2);
  EXPECT_EQ(real.size() - r2.size(), 6u);  // guards the filter itself
  EXPECT_GE(model.size() - m2.size(), 1u);
  // The merged ranges cover exactly what the guest's split ones cover: each
  // real range lies inside a model range.
  for (const auto& r : real) {
    if (!is_late_reserved(r)) continue;
    const auto rs = std::stoull(r.substr(2, 8), nullptr, 16),
               re = std::stoull(r.substr(11, 8), nullptr, 16);
    bool covered = false;
    for (const auto& l : model) {
      if (!is_late_reserved(l)) continue;
      const auto ls = std::stoull(l.substr(2, 8), nullptr, 16),
                 le = std::stoull(l.substr(11, 8), nullptr, 16);
      covered |= ls <= rs && re <= le;
    }
    EXPECT_TRUE(covered) << r;
  }
}

TEST(ProcfsIomem, FormatsDepthAndWideAddresses) {
  Mm mm;
  mm.iomem = {{0x9000000, 0x9000fff, "pl011@9000000", 0},
              {0x9000000, 0x9000fff, "9000000.pl011 pl011@9000000", 1},
              {0x8000000000, 0xffffffffff, "pcie@10000000", 0},
              {0x1000, 0x1fff, "deep", 2}};
  EXPECT_EQ(procfs::iomem(mm),
            "09000000-09000fff : pl011@9000000\n"
            "  09000000-09000fff : 9000000.pl011 pl011@9000000\n"
            "8000000000-ffffffffff : pcie@10000000\n"
            "    00001000-00001fff : deep\n");
}

}  // namespace
}  // namespace mmfuzz::mm
