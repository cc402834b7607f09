// The /proc text views against the real arm64 6.1 guest's files: the layout
// must match byte for byte, the numbers only where the model reproduces the
// guest (geometry, watermarks, pcp sizing, iomem).
// GCC 12 at -O1 with the sanitizers reports -Wmaybe-uninitialized inside
// libstdc++'s std::function as std::regex's compiler uses it (a false
// positive in the library headers); silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <regex>
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

// ---- kernel_page_tables (ptdump) ----

std::vector<std::string> markers_of(const std::string& dump) {
  std::vector<std::string> out;
  for (const auto& l : split_lines(dump))
    if (l.rfind("---[ ", 0) == 0) out.push_back(l);
  return out;
}

// The lines between two marker headers.
std::vector<std::string> section(const std::string& dump, const std::string& from,
                                 const std::string& to) {
  std::vector<std::string> out;
  bool in = false;
  for (const auto& l : split_lines(dump)) {
    if (l == "---[ " + from + " ]---") {
      in = true;
    } else if (l == "---[ " + to + " ]---") {
      break;
    } else if (in) {
      out.push_back(l);
    }
  }
  return out;
}

// A range line: start, end, size and unit, level, attribute columns.
const std::regex kRangeLine(
    "0x([0-9a-f]{16})-0x([0-9a-f]{16})   ([ 0-9]{8}[0-9])([KMGTPE]) (PGD|PUD|PMD|PTE)(.*)");
// dump_prot(): every column of pte_bits, then the memory type.
const std::regex kProtColumns(
    " ( |F) (USR|   ) (ro|RW) (NX|x ) (SHD|   ) (AF|  ) (NG|  ) (CON|   ) (   |BLK) (UXN|   ) "
    "(GP|  )( (MEM/NORMAL|MEM/NORMAL-TAGGED|MEM/NORMAL-NC|DEVICE/nGnRnE|DEVICE/nGnRE))?");

struct RangeLine {
  std::uint64_t start = 0, end = 0, size = 0;  // size: what the size column says, in bytes
  std::string level, prot;
};

bool parse_range(const std::string& line, RangeLine* r) {
  std::smatch m;
  if (!std::regex_match(line, m, kRangeLine)) return false;
  r->start = std::stoull(m[1].str(), nullptr, 16);
  r->end = std::stoull(m[2].str(), nullptr, 16);
  const std::string units = "KMGTPE";
  const auto shift = 10 * (units.find(m[4].str()[0]) + 1);
  r->size = std::stoull(m[3].str()) << shift;
  r->level = m[5].str();
  r->prot = m[6].str();
  return true;
}

TEST(ProcfsPtdump, MarkersInKernelOrder) {
  Mm mm;
  const std::string dump = procfs::kernel_page_tables(mm);
  const std::vector<std::string> want = {
      "---[ Linear Mapping start ]---", "---[ Linear Mapping end ]---", "---[ Modules start ]---",
      "---[ Modules end ]---",          "---[ vmalloc() area ]---",     "---[ vmalloc() end ]---",
      "---[ Fixmap start ]---",         "---[ Fixmap end ]---",         "---[ PCI I/O start ]---",
      "---[ PCI I/O end ]---",          "---[ vmemmap start ]---",      "---[ vmemmap end ]---"};
  EXPECT_EQ(markers_of(dump), want) << dump;
  EXPECT_EQ(dump.rfind("---[ Linear Mapping start ]---\n", 0), 0u) << dump;
  // Markers at the same address print back to back (PAGE_END == MODULES_VADDR,
  // MODULES_END == VMALLOC_START).
  EXPECT_NE(dump.find("---[ Linear Mapping end ]---\n---[ Modules start ]---\n"),
            std::string::npos);
  EXPECT_NE(dump.find("---[ Modules end ]---\n---[ vmalloc() area ]---\n"), std::string::npos);
}

TEST(ProcfsPtdump, HolesAreReportedAtTheLevelTheWalkFoundThem) {
  Mm mm;  // 1 GiB at 0x40000000: one PUD entry of linear map
  const std::string dump = procfs::kernel_page_tables(mm);
  // The rest of the first PGD entry's PUD table, then the empty PGD entries.
  EXPECT_TRUE(contains_line(dump, "0xffff000040000000-0xffff008000000000         511G PUD"))
      << dump;
  EXPECT_TRUE(contains_line(dump, "0xffff008000000000-0xffff800000000000      130560G PGD"))
      << dump;
  // The modules area: empty PMD entries of the kernel image's PMD table.
  const auto mods = section(dump, "Modules start", "Modules end");
  ASSERT_EQ(mods.size(), 1u) << dump;
  EXPECT_EQ(mods[0], "0xffff800000000000-0xffff800008000000         128M PMD");
}

TEST(ProcfsPtdump, Linux510HasBpfMarkersAndNoVmemmapEnd) {
  MmConfig cfg;
  cfg.profile = "linux-5.10-arm64";
  Mm mm(cfg);
  const std::string dump = procfs::kernel_page_tables(mm);
  // Seed 001's listing: BPF between the linear map and the modules; the
  // vmemmap end (-2M) lies inside the last PGD entry, so it is never crossed.
  const std::vector<std::string> want = {"---[ Linear Mapping start ]---",
                                         "---[ Linear Mapping end ]---",
                                         "---[ BPF start ]---",
                                         "---[ BPF end ]---",
                                         "---[ Modules start ]---",
                                         "---[ Modules end ]---",
                                         "---[ vmalloc() area ]---",
                                         "---[ vmalloc() end ]---",
                                         "---[ Fixmap start ]---",
                                         "---[ Fixmap end ]---",
                                         "---[ PCI I/O start ]---",
                                         "---[ PCI I/O end ]---",
                                         "---[ vmemmap start ]---"};
  EXPECT_EQ(markers_of(dump), want) << dump;
  const auto lines = split_lines(dump);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("-0x0000000000000000   "), std::string::npos) << lines.back();
}

TEST(ProcfsPtdump, EveryRangeLineHasTheKernelFormatAndTheRangesTile) {
  Mm mm;
  const std::string dump = procfs::kernel_page_tables(mm);
  std::uint64_t expect_start = mm.profile.page_offset;
  std::size_t ranges = 0;
  for (const auto& l : split_lines(dump)) {
    if (l.rfind("---[ ", 0) == 0) {
      EXPECT_EQ(l.substr(l.size() - 5), " ]---") << l;
      continue;
    }
    RangeLine r;
    ASSERT_TRUE(parse_range(l, &r)) << "bad line '" << l << "'";
    ++ranges;
    EXPECT_EQ(r.start, expect_start) << l;  // no gaps, no overlaps
    EXPECT_EQ(r.size, r.end - r.start) << "size column of " << l;
    if (!r.prot.empty()) {
      EXPECT_TRUE(std::regex_match(r.prot, kProtColumns)) << "'" << l << "'";
    }
    expect_start = r.end;
  }
  EXPECT_GT(ranges, 20u);
  EXPECT_EQ(expect_start, 0u) << "the walk must end at the top of the address space";
  // The final flush: the empty PGD entries above the vmemmap, 2 TiB.
  EXPECT_NE(dump.find("\n0xfffffe0000000000-0x0000000000000000           2T PGD\n"),
            std::string::npos)
      << dump;
}

TEST(ProcfsPtdump, SizeColumnPicksTheLargestExactUnit) {
  Mm mm;
  const std::string dump = procfs::kernel_page_tables(mm);
  bool saw_2m_pmd = false, saw_k = false;
  for (const auto& l : split_lines(dump)) {
    RangeLine r;
    if (!parse_range(l, &r)) continue;
    if (r.end - r.start == 0x200000 && r.level == "PMD") {
      saw_2m_pmd = true;
      EXPECT_NE(l.find("           2M PMD"), std::string::npos) << l;
    }
    // "%9lu%c": a size that is not a whole number of MiB stays in KiB.
    if ((r.end - r.start) % 0x100000) {
      saw_k = true;
      EXPECT_NE(l.find("K PTE"), std::string::npos) << l;
    }
  }
  EXPECT_TRUE(saw_2m_pmd) << dump;
  EXPECT_TRUE(saw_k) << dump;
  // 0xffff008000000000-0xffff800000000000 is 130560 GiB: not a whole TiB.
  EXPECT_NE(dump.find("0xffff008000000000-0xffff800000000000      130560G PGD\n"),
            std::string::npos)
      << dump;
}

TEST(ProcfsPtdump, LinearMapBlocksAndReadOnlyTextAlias) {
  Mm mm;
  ASSERT_FALSE(mm.config.rodata_full);
  const std::string dump = procfs::kernel_page_tables(mm);
  const auto lm = section(dump, "Linear Mapping start", "Linear Mapping end");
  ASSERT_FALSE(lm.empty()) << dump;
  // pgprot_tagged(PAGE_KERNEL) or PAGE_KERNEL, as PMD blocks, KPTI's nG.
  const std::regex block(
      "0x[0-9a-f]{16}-0x[0-9a-f]{16} +[0-9]+[KMG] PMD       RW NX SHD AF NG (CON|   ) BLK UXN    "
      "MEM/NORMAL(-TAGGED)?");
  std::size_t blocks = 0;
  for (const auto& l : lm) blocks += std::regex_match(l, block);
  EXPECT_GE(blocks, 2u) << dump;
  EXPECT_TRUE(
      contains_line(dump,
                    "0xffff000000000000-0xffff000000200000           2M PMD       RW NX SHD "
                    "AF NG     BLK UXN    MEM/NORMAL") ||
      contains_line(dump,
                    "0xffff000000000000-0xffff000000200000           2M PMD       RW NX SHD "
                    "AF NG     BLK UXN    MEM/NORMAL-TAGGED"))
      << dump;
  // mark_linear_text_alias_ro(): the alias of [_stext, __init_begin) is
  // read-only, non-executable and never contiguous.
  const std::uint64_t alias = mm.__va(mm.kimage.code_start);
  const std::uint64_t alias_end = mm.__va(mm.kimage.init_start);
  std::uint64_t ro_bytes = 0;
  for (const auto& l : lm) {
    RangeLine r;
    ASSERT_TRUE(parse_range(l, &r)) << l;
    const bool ro = r.prot.find(" ro NX SHD AF NG ") != std::string::npos;
    if (ro) {
      EXPECT_GE(r.start, alias) << l;
      EXPECT_LE(r.end, alias_end) << l;
      EXPECT_EQ(r.prot.find("CON"), std::string::npos) << l;
      ro_bytes += r.end - r.start;
    }
  }
  EXPECT_EQ(ro_bytes, alias_end - alias) << dump;
}

TEST(ProcfsPtdump, RodataFullMapsTheLinearMapByPages) {
  MmConfig cfg;
  cfg.rodata_full = true;
  Mm mm(cfg);
  const std::string dump = procfs::kernel_page_tables(mm);
  const auto lm = section(dump, "Linear Mapping start", "Linear Mapping end");
  ASSERT_FALSE(lm.empty()) << dump;
  std::uint64_t rw_pages = 0;
  for (const auto& l : lm) {
    RangeLine r;
    ASSERT_TRUE(parse_range(l, &r)) << l;
    if (r.prot.find(" RW ") == std::string::npos) continue;
    // The banks: NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS.
    EXPECT_EQ(r.level, "PTE") << l;
    EXPECT_EQ(r.prot.find("BLK"), std::string::npos) << l;
    EXPECT_EQ(r.prot.find("CON"), std::string::npos) << l;
    rw_pages += (r.end - r.start) >> 12;
  }
  const std::uint64_t alias_pages = (mm.kimage.init_start - mm.kimage.code_start) >> 12;
  EXPECT_EQ(rw_pages + alias_pages, mm.machine.ram_size >> 12) << dump;
  // The default (rodata=on) dump of the same machine does have blocks there.
  Mm on;
  const auto lm_on =
      section(procfs::kernel_page_tables(on), "Linear Mapping start", "Linear Mapping end");
  std::size_t blk = 0;
  for (const auto& l : lm_on)
    blk += l.find(" RW NX SHD AF NG") != std::string::npos && l.find(" BLK ") != std::string::npos;
  EXPECT_GT(blk, 0u);
}

TEST(ProcfsPtdump, ShowsVmallocAndIoremapMappings) {
  Mm mm;
  const vaddr_t v = mm.vmalloc.vmalloc(3 * 4096);
  ASSERT_NE(v, 0u);
  const vaddr_t io = mm.vmalloc.ioremap(0x09000000, 0x1000);
  ASSERT_NE(io, 0u);
  const std::string dump = procfs::kernel_page_tables(mm);
  char want[160];
  std::snprintf(want, sizeof want,
                "0x%016llx-0x%016llx          12K PTE       RW NX SHD AF NG         UXN    "
                "MEM/NORMAL",
                static_cast<unsigned long long>(v), static_cast<unsigned long long>(v + 3 * 4096));
  EXPECT_TRUE(contains_line(dump, want)) << want << "\n" << dump;
  bool device = false;
  for (const auto& l : section(dump, "vmalloc() area", "vmalloc() end")) {
    RangeLine r;
    if (parse_range(l, &r) && r.start <= (io & ~0xfffull) && (io & ~0xfffull) < r.end)
      device = r.prot.find(" DEVICE/nGnRE") != std::string::npos;
  }
  EXPECT_TRUE(device) << dump;
  // vfree() unmaps at once (the TLB flush waits for the purge).
  mm.vmalloc.vfree(v);
  EXPECT_FALSE(contains_line(procfs::kernel_page_tables(mm), want));
}

// ---- vmallocinfo ----

std::string hexrange(std::uint64_t a, std::uint64_t b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "0x%016llx-0x%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

TEST(ProcfsVmallocinfo, BootListsTheKernelImageSegments) {
  Mm mm;
  const auto lines = split_lines(procfs::vmallocinfo(mm));
  ASSERT_EQ(mm.pgtable.kimage_segments.size(), 5u);
  ASSERT_EQ(lines.size(), 5u) << procfs::vmallocinfo(mm);
  const std::regex re(
      "0x[0-9a-f]{16}-0x[0-9a-f]{16} [ 0-9]{6,}[0-9] paging_init "
      "phys=0x[0-9a-f]{16} vmap");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& s = mm.pgtable.kimage_segments[i];
    EXPECT_TRUE(std::regex_match(lines[i], re)) << lines[i];
    char want[160];
    // Only vmlinux_data has a guard page (map_kernel_segment()).
    const std::uint64_t size = s.size + (std::string_view(s.name) == "vmlinux_data" ? 4096 : 0);
    std::snprintf(want, sizeof want, "%s %7lld paging_init phys=0x%016llx vmap",
                  hexrange(s.va, s.va + size).c_str(), static_cast<long long>(size),
                  static_cast<unsigned long long>(s.pa));
    EXPECT_EQ(lines[i], want) << s.name;
  }
}

TEST(ProcfsVmallocinfo, VmallocLineWithGuardPagePagesAndNode) {
  Mm mm;
  const vaddr_t v = mm.vmalloc.vmalloc(3 * 4096);
  ASSERT_NE(v, 0u);
  const std::string text = procfs::vmallocinfo(mm);
  EXPECT_TRUE(contains_line(text, hexrange(v, v + 16384) + "   16384 vmalloc pages=3 vmalloc N0=3"))
      << text;
  // The caller column is the call site when the executor sets one.
  mm.call_site = 7;
  const vaddr_t w = mm.vmalloc.vmalloc(4096);
  ASSERT_NE(w, 0u);
  EXPECT_TRUE(contains_line(procfs::vmallocinfo(mm),
                            hexrange(w, w + 8192) + "    8192 call_site#7 pages=1 vmalloc N0=1"))
      << procfs::vmallocinfo(mm);
}

TEST(ProcfsVmallocinfo, LargePageArrayIsVmalloced) {
  Mm mm;
  const vaddr_t v = mm.vmalloc.vmalloc(600 * 4096);  // 4800-byte page array
  ASSERT_NE(v, 0u);
  const std::string text = procfs::vmallocinfo(mm);
  EXPECT_TRUE(contains_line(
      text, hexrange(v, v + 601 * 4096) + " 2461696 vmalloc pages=600 vmalloc vpages N0=600"))
      << text;
  // The array itself: two pages plus the guard.
  EXPECT_NE(text.find("   12288 vmalloc pages=2 vmalloc N0=2\n"), std::string::npos) << text;
}

TEST(ProcfsVmallocinfo, NumaCountsPerNode) {
  MmConfig cfg;
  cfg.machine.nr_nodes = 2;
  Mm mm(cfg);
  const vaddr_t v = mm.vmalloc.vmalloc_node(2 * 4096, 1);
  ASSERT_NE(v, 0u);
  const std::string text = procfs::vmallocinfo(mm);
  EXPECT_TRUE(contains_line(text, hexrange(v, v + 12288) + "   12288 vmalloc pages=2 vmalloc N1=2"))
      << text;
}

TEST(ProcfsVmallocinfo, IoremapShowsPhysAndFlag) {
  Mm mm;
  const vaddr_t io = mm.vmalloc.ioremap(0x09000000, 0x1000);
  ASSERT_NE(io, 0u);
  const std::string text = procfs::vmallocinfo(mm);
  EXPECT_TRUE(contains_line(
      text, hexrange(io, io + 8192) + "    8192 ioremap phys=0x0000000009000000 ioremap"))
      << text;
  // vmap(): no pages= (only VM_MAP_PUT_PAGES keeps them), no NUMA counts.
  const pfn_t p = mm.page_alloc.alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, NO_PAGE);
  const pfn_t pages[] = {p};
  const vaddr_t m = mm.vmalloc.vmap(pages);
  ASSERT_NE(m, 0u);
  EXPECT_TRUE(contains_line(procfs::vmallocinfo(mm), hexrange(m, m + 8192) + "    8192 vmap vmap"))
      << procfs::vmallocinfo(mm);
}

TEST(ProcfsVmallocinfo, FreedAreasAreUnpurgedUntilThePurge) {
  Mm mm;
  const vaddr_t v = mm.vmalloc.vmalloc(3 * 4096);
  ASSERT_NE(v, 0u);
  mm.vmalloc.vfree(v);
  std::string text = procfs::vmallocinfo(mm);
  EXPECT_TRUE(contains_line(text, hexrange(v, v + 16384) + "   16384 unpurged vm_area")) << text;
  EXPECT_EQ(text.find(" vmalloc pages=3"), std::string::npos) << text;
  // After the busy areas.
  EXPECT_GT(text.find("unpurged"), text.rfind("paging_init"));
  mm.vmalloc.purge_vmap_area_lazy();
  text = procfs::vmallocinfo(mm);
  EXPECT_EQ(text.find("unpurged"), std::string::npos) << text;
  EXPECT_EQ(split_lines(text).size(), 5u) << text;
}

TEST(ProcfsVmallocinfo, AdjacentLazyAreasMergeAsInThePurgeTree) {
  Mm mm;
  const vaddr_t a = mm.vmalloc.vmalloc(4096);
  const vaddr_t b = mm.vmalloc.vmalloc(4096);
  ASSERT_EQ(b, a + 8192);  // lowest fit: right after a's guard page
  mm.vmalloc.vfree(a);
  mm.vmalloc.vfree(b);
  const std::string text = procfs::vmallocinfo(mm);
  EXPECT_TRUE(contains_line(text, hexrange(a, a + 16384) + "   16384 unpurged vm_area")) << text;
  EXPECT_EQ(count_prefix(text, "0x"), 6u) << text;
}

TEST(ProcfsMeminfo, VmallocUsedCountsVmallocPages) {
  Mm mm;
  const vaddr_t v = mm.vmalloc.vmalloc(3 * 4096);
  ASSERT_NE(v, 0u);
  EXPECT_TRUE(contains_line(procfs::meminfo(mm), "VmallocUsed:          12 kB"))
      << procfs::meminfo(mm);
  mm.vmalloc.vfree(v);
  EXPECT_TRUE(contains_line(procfs::meminfo(mm), "VmallocUsed:           0 kB"))
      << procfs::meminfo(mm);
}

}  // namespace
}  // namespace mmfuzz::mm
