// The replay's HTML report: document structure, escaping, self-containment,
// the Timeline's bound, edge cases and the atomic write.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/html_report.h"

namespace {

using mmfuzz::analysis::render_html_report;
using mmfuzz::analysis::ReportInfo;
using mmfuzz::analysis::Timeline;
using mmfuzz::analysis::TimelineSample;
using mmfuzz::analysis::ViolationMarker;
using mmfuzz::analysis::write_html_report;
namespace fs = std::filesystem;

std::size_t count(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t i = hay.find(needle); i != std::string_view::npos;
       i = hay.find(needle, i + needle.size()))
    ++n;
  return n;
}

// The n-th (0-based) <svg>...</svg> of the document, empty if there is none.
std::string_view nth_svg(std::string_view doc, std::size_t n) {
  std::size_t at = doc.find("<svg");
  for (std::size_t i = 0; i < n && at != std::string_view::npos; ++i) at = doc.find("<svg", at + 1);
  if (at == std::string_view::npos) return {};
  const std::size_t end = doc.find("</svg>", at);
  return end == std::string_view::npos ? std::string_view{} : doc.substr(at, end - at);
}

std::string_view legend_of(std::string_view svg) {
  const std::size_t at = svg.find("<g class=\"legend\">");
  return at == std::string_view::npos ? std::string_view{} : svg.substr(at);
}

bool is_void(std::string_view name) {
  return name == "meta" || name == "br" || name == "hr" || name == "img" || name == "link" ||
         name == "input";
}

// A small well-formedness check: every element opened is closed, in order
// (so every <svg> has its </svg> and every <section> its </section>); void
// elements and self-closing SVG elements (<line .../>) open nothing; a '<'
// that starts no tag (unescaped text) is an error.
::testing::AssertionResult balanced(const std::string& doc) {
  std::vector<std::string> open;
  std::size_t i = 0;
  while ((i = doc.find('<', i)) != std::string::npos) {
    if (doc.compare(i, 4, "<!--") == 0) {
      i = doc.find("-->", i);
      if (i == std::string::npos) return ::testing::AssertionFailure() << "unterminated comment";
      continue;
    }
    const std::size_t end = doc.find('>', i);
    if (end == std::string::npos)
      return ::testing::AssertionFailure() << "unterminated tag at " << i;
    if (doc.compare(i, 2, "<!") == 0) {  // <!DOCTYPE html>
      i = end + 1;
      continue;
    }
    std::string_view tag(doc.data() + i + 1, end - i - 1);
    const bool closing = !tag.empty() && tag.front() == '/';
    if (closing) tag.remove_prefix(1);
    std::size_t len = 0;
    while (len < tag.size() && std::isalnum(static_cast<unsigned char>(tag[len]))) ++len;
    const std::string name(tag.substr(0, len));
    if (name.empty()) return ::testing::AssertionFailure() << "stray '<' at " << i;
    if (closing) {
      if (open.empty() || open.back() != name)
        return ::testing::AssertionFailure()
               << "</" << name << "> at " << i << " closes "
               << (open.empty() ? std::string("nothing") : "<" + open.back() + ">");
      open.pop_back();
    } else if (tag.back() != '/' && !is_void(name)) {
      open.push_back(name);
    }
    i = end + 1;
    if (name == "style" && !closing) i = doc.find("</style>", i);  // CSS is not markup
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  return ::testing::AssertionSuccess();
}

// The timeline's plots: free pages, slab, kmalloc, extfrag; each carries the
// violation and trace-marker lines.
constexpr std::size_t kPlots = 4;

// The checks every document must pass, whatever the data.
void expect_valid(const std::string& doc) {
  EXPECT_TRUE(balanced(doc));
  EXPECT_EQ(doc.rfind("<!DOCTYPE html>", 0), 0u);
  // The plots, and the top call sites' bars when there are call sites.
  const std::size_t svgs = kPlots + (doc.find("aria-label=\"top call sites") != std::string::npos);
  EXPECT_EQ(count(doc, "<svg"), svgs);
  EXPECT_EQ(count(doc, "</svg>"), svgs);
  EXPECT_EQ(count(doc, "<section"), count(doc, "</section>"));
  EXPECT_NE(doc.find("</footer>"), std::string::npos);
  EXPECT_NE(doc.find("mmfuzz"), std::string::npos);
  // Numbers that went wrong.
  for (std::size_t p = 0; p < svgs; ++p) {
    EXPECT_EQ(nth_svg(doc, p).find("nan"), std::string_view::npos) << p;
    EXPECT_EQ(nth_svg(doc, p).find("inf"), std::string_view::npos) << p;
  }
  // Self-contained: nothing is loaded. The SVG namespace is a name, not a
  // reference.
  std::string rest = doc;
  const std::string xmlns = "xmlns=\"http://www.w3.org/2000/svg\"";
  for (std::size_t at; (at = rest.find(xmlns)) != std::string::npos;) rest.erase(at, xmlns.size());
  for (const char* bad : {"http://", "https://", "src=", "<script", "<link", "@import", "url("})
    EXPECT_EQ(rest.find(bad), std::string::npos) << bad;
}

TimelineSample sample(std::uint64_t i) {
  TimelineSample s;
  s.ts_ns = 1'000'000'000 + i * 10'000'000;  // 1 s + 10 ms per sample
  s.event = i * 100;
  s.free_pages_per_order = {100 + i, 50, 20 + i % 7, 8, 4, 2, 1, 0, 0, 0, 1};
  s.live_kmalloc_bytes = 4096 * i;
  s.slab_bytes_total = 65536 * (i + 1);
  return s;
}

ReportInfo info_for(std::size_t violations) {
  ReportInfo info;
  info.title = "mmfuzz replay: test.trace";
  info.verdict = violations ? std::to_string(violations) + " violations" : "clean";
  info.summary = {{"events", "1234"}, {"profile", "x86_64"}};
  info.slabinfo = "slabinfo - version: 2.1\nkmalloc-64 10 64 ...\n";
  info.buddyinfo = "Node 0, zone   Normal   1 2 3\n";
  info.fidelity = "all events replayed\n";
  for (std::size_t i = 0; i < violations; ++i)
    info.violation_reports.push_back("BUG: KASAN: use-after-free in foo+0x10/0x20\n");
  return info;
}

// Ten caches; cache c peaks at (c + 1) MiB, so caches 2..9 are the top 8.
Timeline ten_caches(std::size_t samples) {
  Timeline tl;
  for (int c = 0; c < 10; ++c)
    tl.caches.push_back(std::string("cache_") + static_cast<char>('a' + c));
  for (std::uint64_t i = 0; i < samples; ++i) {
    TimelineSample s = sample(i);
    for (std::uint32_t c = 0; c < 10; ++c)
      s.slab_bytes.emplace_back(c, (c + 1) * (1u << 20) * (i + 1) / samples);
    tl.add(std::move(s));
  }
  return tl;
}

TEST(HtmlReport, StructureAndLegendNamesTheTopCaches) {
  const Timeline tl = ten_caches(50);
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  const std::string_view legend = legend_of(nth_svg(doc, 1));
  ASSERT_FALSE(legend.empty());
  for (int c = 2; c < 10; ++c) {
    const std::string name = std::string(">cache_") + static_cast<char>('a' + c) + "<";
    EXPECT_NE(legend.find(name), std::string_view::npos) << name;
  }
  // The two smallest are summed as "other".
  EXPECT_EQ(legend.find(">cache_a<"), std::string_view::npos);
  EXPECT_EQ(legend.find(">cache_b<"), std::string_view::npos);
  EXPECT_NE(legend.find("other (2 caches)"), std::string_view::npos);
  // Orders 0..10 and the fragmentation index in the first plot's legend.
  const std::string_view buddy = legend_of(nth_svg(doc, 0));
  EXPECT_NE(buddy.find(">order 0<"), std::string_view::npos);
  EXPECT_NE(buddy.find(">order 10<"), std::string_view::npos);
  EXPECT_NE(buddy.find("unusable index (order 3)"), std::string_view::npos);
  // Every series has a tooltip.
  EXPECT_GE(count(doc, "<g class=\"series\"><title>"), 11u + 1u + 10u + 1u);
  // Sections and the green verdict.
  for (const char* id :
       {"summary", "timeline", "kmem-stat", "violations", "fidelity", "final-state"})
    EXPECT_NE(doc.find(std::string("<section id=\"") + id + "\">"), std::string::npos) << id;
  for (const char* id : {"plot-1", "plot-2", "plot-3", "plot-4", "trace-markers", "top-callsites",
                         "live-callsites", "stat-tables"})
    EXPECT_NE(doc.find(std::string(" id=\"") + id + "\">"), std::string::npos) << id;
  EXPECT_NE(doc.find("class=\"verdict ok\">clean<"), std::string::npos);
  EXPECT_NE(doc.find("<th>profile</th><td>x86_64</td>"), std::string::npos);
  EXPECT_NE(doc.find("kmalloc-64 10 64"), std::string::npos);
  EXPECT_NE(doc.find("trace time (s)"), std::string::npos);
}

TEST(HtmlReport, ViolationMarkersOnEveryPlotOnlyWhenThereAreViolations) {
  Timeline tl = ten_caches(20);
  const std::string clean = render_html_report(info_for(0), tl);
  EXPECT_EQ(count(clean, "class=\"vmark\""), 0u);
  EXPECT_EQ(clean.find("#d00"), std::string::npos);

  tl.violations.push_back({1'050'000'000, 500, "slab.use_after_free", "object freed twice"});
  tl.violations.push_back({1'100'000'000, 1000, "buddy.double_free", "page freed twice"});
  const std::string doc = render_html_report(info_for(2), tl);
  expect_valid(doc);
  EXPECT_EQ(count(doc, "class=\"vmark\""), 2u * kPlots);
  for (std::size_t p = 0; p < kPlots; ++p) {
    const std::string_view svg = nth_svg(doc, p);
    EXPECT_EQ(count(svg, "class=\"vmark\"><title>#1 slab.use_after_free"), 1u) << p;
    EXPECT_EQ(count(svg, "class=\"vmark\"><title>#2 buddy.double_free"), 1u) << p;
  }
  EXPECT_NE(doc.find("class=\"verdict bad\">2 violations<"), std::string::npos);
  EXPECT_EQ(count(doc, "<pre class=\"violation\""), 2u);
}

TEST(HtmlReport, EscapesEverythingItDidNotWrite) {
  Timeline tl;
  tl.caches = {"<script>alert(1)</script>", "a\"b'c&d"};
  for (std::uint64_t i = 0; i < 5; ++i) {
    TimelineSample s = sample(i);
    s.slab_bytes = {{0, 4096 * (i + 1)}, {1, 8192}};
    tl.add(std::move(s));
  }
  tl.violations.push_back({1'020'000'000, 7, "<id>", "title </svg> & more"});
  ReportInfo info = info_for(1);
  info.title = "<b>title</b>";
  info.summary.emplace_back("<k>", "<v>");
  info.violation_reports = {"BUG: <script>x</script>\n"};
  info.slabinfo = "</pre><script>";
  const std::string doc = render_html_report(info, tl);
  expect_valid(doc);
  EXPECT_NE(doc.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(doc.find("a&quot;b&#39;c&amp;d"), std::string::npos);
  EXPECT_NE(doc.find("&lt;id&gt;: title &lt;/svg&gt; &amp; more"), std::string::npos);
  EXPECT_NE(doc.find("<h1>&lt;b&gt;title&lt;/b&gt;</h1>"), std::string::npos);
  EXPECT_EQ(doc.find("<b>"), std::string::npos);
  EXPECT_EQ(doc.find("<k>"), std::string::npos);
  EXPECT_EQ(count(doc, "</pre>"), 1u + 1u + 1u + 1u);  // report, fidelity, slabinfo, buddyinfo
}

TEST(HtmlReport, ZeroAndOneSampleDocumentsAreValid) {
  const Timeline empty;
  const std::string none = render_html_report(ReportInfo{}, empty);
  expect_valid(none);
  EXPECT_EQ(count(none, "no samples"), 3u);
  EXPECT_EQ(count(none, "<path"), 0u);
  EXPECT_NE(none.find("<title>mmfuzz report</title>"), std::string::npos);

  // Violations but no samples: still markers, on an event axis.
  Timeline marks;
  marks.violations.push_back({5, 3, "x.y", "z"});
  const std::string only_marks = render_html_report(ReportInfo{}, marks);
  expect_valid(only_marks);
  EXPECT_EQ(count(only_marks, "class=\"vmark\""), kPlots);
  EXPECT_NE(only_marks.find("class=\"verdict bad\""), std::string::npos);

  Timeline one;
  one.add(sample(3));
  const std::string doc = render_html_report(info_for(0), one);
  expect_valid(doc);
  EXPECT_EQ(count(doc, "no samples"), 0u);
  // One sample is drawn as a short segment: every path has two points.
  EXPECT_GE(count(doc, "<path d=\"M"), 11u + 1u + 1u);
  EXPECT_EQ(count(doc, "<path d=\"M1"), 0u);  // x is inside the plot (78..688), not 1xxx
  EXPECT_NE(doc.find("events replayed"), std::string::npos);
}

TEST(HtmlReport, EqualTimestampsUseTheEventIndexAndZeroSeriesDraw) {
  Timeline tl;
  for (std::uint64_t i = 0; i < 10; ++i) {
    TimelineSample s;
    s.ts_ns = 42;
    s.event = i * 1000;
    s.free_pages_per_order.assign(11, 0);
    tl.add(std::move(s));
  }
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  EXPECT_NE(doc.find("events replayed"), std::string::npos);
  EXPECT_EQ(doc.find("trace time (s)"), std::string::npos);
  EXPECT_NE(doc.find(">8k<"), std::string::npos);  // an x tick at event 8000
  // All-zero series are flat lines on the baseline: two points each.
  const std::string_view kmalloc = nth_svg(doc, 2);
  EXPECT_NE(kmalloc.find("<path d=\"M78,268 688,268\""), std::string_view::npos);
  EXPECT_NE(doc.find("no slab memory"), std::string::npos);
}

TEST(HtmlReport, HugeValuesUseBinaryUnits) {
  Timeline tl;
  for (std::uint64_t i = 0; i < 4; ++i) {
    TimelineSample s = sample(i);
    s.live_kmalloc_bytes = UINT64_MAX / 4 * i;                // up to ~12 EiB
    s.slab_bytes_total = (std::uint64_t{3} << 30) * (i + 1);  // up to 12 GiB
    s.free_pages_per_order = {UINT64_MAX / 64, 1};
    tl.add(std::move(s));
  }
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  EXPECT_NE(nth_svg(doc, 2).find(" EiB</text>"), std::string_view::npos);
  EXPECT_NE(nth_svg(doc, 1).find(" GiB</text>"), std::string_view::npos);
  EXPECT_NE(nth_svg(doc, 0).find("P</text>"), std::string_view::npos);  // pages: decimal units
  EXPECT_EQ(doc.find("e+"), std::string::npos);                         // no exponents
}

TEST(HtmlReport, FragmentationIndexIsTheShareOfFreePagesBelowOrder3) {
  Timeline tl;
  TimelineSample a = sample(0);
  a.free_pages_per_order = {10, 20, 40, 0, 0};  // all below order 3: index 1
  TimelineSample b = sample(1);
  b.free_pages_per_order = {1, 1, 2, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16};  // 4/28
  tl.add(a);
  tl.add(b);
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  EXPECT_NE(doc.find("<tr><td>unusable index (order 3)</td><td>1</td><td>0.143</td></tr>"),
            std::string::npos);
  EXPECT_NE(doc.find(">order 16<"), std::string::npos);  // as many orders as the data has
}

TEST(HtmlReport, PointsPerSeriesAreBounded) {
  Timeline tl;
  tl.max_samples = 100'000;  // the renderer caps what it draws on its own
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    TimelineSample s = sample(i);
    s.live_kmalloc_bytes = (i * 7919) % 10'007;  // never flat
    tl.add(std::move(s));
  }
  ASSERT_EQ(tl.samples.size(), 10'000u);
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  const std::string_view kmalloc = nth_svg(doc, 2);
  const std::size_t at = kmalloc.find("<path d=\"M");
  ASSERT_NE(at, std::string_view::npos);
  const std::string_view d = kmalloc.substr(at, kmalloc.find('"', at + 9) - at);
  EXPECT_GE(count(d, ","), 1000u);
  EXPECT_LE(count(d, ","), 2003u);  // 2001 points and the two baseline corners
  EXPECT_LT(doc.size(), 1'500'000u);
}

// The y pixel of the first point of the series whose tooltip starts with
// `name` in `svg`; -1 if there is none.
double first_y(std::string_view svg, std::string_view name) {
  const std::size_t at = svg.find(std::string("<g class=\"series\"><title>") + std::string(name));
  if (at == std::string_view::npos) return -1;
  const std::size_t d = svg.find("<path d=\"M", at);
  const std::size_t comma = svg.find(',', d);
  const std::size_t end = svg.find_first_of(" \"", comma);
  return std::stod(std::string(svg.substr(comma + 1, end - comma - 1)));
}

TEST(HtmlReport, FreePagesUseALogScaleSoEveryOrderShows) {
  Timeline tl;
  for (std::uint64_t i = 0; i < 5; ++i) {
    TimelineSample s = sample(i);
    s.free_pages_per_order = {5, 50, 0, 0, 0, 0, 0, 0, 0, 0, 1'000'000};
    tl.add(std::move(s));
  }
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  const std::string_view buddy = nth_svg(doc, 0);
  constexpr double kBottom = 22 + 246;
  // Linear, 5 of a million pages would sit 0.001 px above the baseline;
  // log10(1 + 5) / log10(1 + 10^6) of the height is 32 px.
  const double y0 = first_y(buddy, "order 0:"), y1 = first_y(buddy, "order 1:"),
               y10 = first_y(buddy, "order 10:");
  EXPECT_NEAR(kBottom - y0, 246 * std::log10(6.0) / std::log10(1e6 + 1), 0.2);
  EXPECT_LT(y1, y0 - 20);  // ten times more is a visible step up
  EXPECT_NEAR(y10, 22, 0.2);
  EXPECT_DOUBLE_EQ(first_y(buddy, "order 2:"), kBottom);  // none free: on the baseline
  for (const char* tick : {">1<", ">10<", ">100<", ">1k<", ">10k<", ">100k<", ">1M<"})
    EXPECT_NE(buddy.find(tick), std::string_view::npos) << tick;
  EXPECT_NE(doc.find("free pages (log scale)"), std::string::npos);
}

TEST(HtmlReport, TraceMarkersAreLabelledLinesAcrossEveryPlot) {
  Timeline tl = ten_caches(20);
  tl.markers.push_back({1'050'000'000, 500, "ktrace phase: P1 a: page-cache fill"});
  tl.markers.push_back({1'150'000'000, 1500, "phase <2> & more"});
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  EXPECT_EQ(count(doc, "class=\"tmark\""), 2u * kPlots);
  for (std::size_t p = 0; p < kPlots; ++p) {
    const std::string_view svg = nth_svg(doc, p);
    EXPECT_EQ(count(svg, "<title>M1 ktrace phase: P1 a: page-cache fill (t=1.05 s"), 1u) << p;
    EXPECT_EQ(count(svg, ">M1 ktrace phase: P1 a: page-cache fill<"), 1u) << p;  // the label
    EXPECT_EQ(count(svg, ">M2 phase &lt;2&gt; &amp; more<"), 1u) << p;
    EXPECT_NE(legend_of(svg).find(">trace marker<"), std::string_view::npos) << p;
  }
  // The markers' table.
  const std::size_t table = doc.find("<div id=\"trace-markers\">");
  ASSERT_NE(table, std::string::npos);
  EXPECT_NE(doc.find("<tr><td>M2</td><td>1.15</td><td>1500</td><td>phase &lt;2&gt; &amp; "
                     "more</td></tr>",
                     table),
            std::string::npos);
  // No markers: no lines, and the table says so.
  const std::string none = render_html_report(info_for(0), ten_caches(20));
  EXPECT_EQ(count(none, "class=\"tmark\""), 0u);
  EXPECT_NE(none.find("The trace has no markers"), std::string::npos);
}

TEST(HtmlReport, ManyMarkersAreLinesWithoutLabels) {
  Timeline tl = ten_caches(20);
  for (std::uint64_t i = 0; i < 40; ++i)
    tl.markers.push_back({1'000'000'000 + i * 1'000'000, i, "m" + std::to_string(i)});
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  EXPECT_EQ(count(doc, "class=\"tmark\""), 40u * kPlots);
  EXPECT_EQ(count(doc, "class=\"tlabel\""), 0u);
}

TEST(HtmlReport, ExtfragEventsAreBarsOverTraceTime) {
  Timeline tl = ten_caches(20);
  tl.extfrag.add(1'050'000'000, true, false);
  tl.extfrag.add(1'050'100'000, true, true);
  tl.extfrag.add(1'100'000'000, false, false);
  const std::string doc = render_html_report(info_for(0), tl);
  expect_valid(doc);
  const std::string_view svg = nth_svg(doc, 3);
  EXPECT_NE(svg.find("aria-label=\"mm_page_alloc_extfrag events"), std::string_view::npos);
  EXPECT_EQ(count(svg, "<rect x="), 2u + 1u);  // two bars and the plot's frame
  EXPECT_NE(svg.find("<title>fragmenting fallback: 2 (t=1.05..1.051 s)</title>"),
            std::string_view::npos);
  EXPECT_NE(svg.find("<title>other fallback: 1 (t=1.1..1.101 s)</title>"), std::string_view::npos);
  EXPECT_NE(legend_of(svg).find(">fragmenting fallback<"), std::string_view::npos);
  EXPECT_NE(doc.find("3 in all"), std::string::npos);
  // None: a note instead.
  const std::string none = render_html_report(info_for(0), ten_caches(20));
  EXPECT_NE(nth_svg(none, 3).find("no mm_page_alloc_extfrag events"), std::string_view::npos);
}

TEST(HtmlReport, KmemStatSectionHasTopCallsitesLiveObjectsAndTables) {
  ReportInfo info = info_for(0);
  info.kmem_stat =
      " Callsite                           | Total_alloc/Per |\nSUMMARY (SLAB allocator)\n";
  info.top_callsites = {{"load_elf_binary+0x1c/0x90", 4 << 20, 3 << 20, 12},
                        {"<evil>", 1024, 512, 2}};
  info.live_by_callsite = {{"alloc_inode+0x20/0x80", "shmem_inode_cache", 3, 1920}};
  info.live_objects = 3;
  info.live_bytes = 1920;
  const std::string doc = render_html_report(info, ten_caches(10));
  expect_valid(doc);
  const std::string_view bars = nth_svg(doc, kPlots);
  EXPECT_NE(bars.find("aria-label=\"top call sites by bytes allocated\""), std::string_view::npos);
  EXPECT_EQ(count(bars, "<g class=\"callsite\">"), 2u);
  EXPECT_NE(bars.find(">load_elf_binary+0x1c/0x90<"), std::string_view::npos);
  EXPECT_NE(bars.find(">4 MiB (12 hits)<"), std::string_view::npos);
  EXPECT_NE(bars.find("&lt;evil&gt;"), std::string_view::npos);
  EXPECT_EQ(doc.find("<evil>"), std::string::npos);
  // The biggest bar is full width (420 px); the other is a quarter of a percent of it.
  EXPECT_NE(bars.find("width=\"420\" height=\"15\" fill=\"#a0cbe8\""), std::string_view::npos);
  EXPECT_NE(doc.find("<tr><td>alloc_inode+0x20/0x80</td><td>shmem_inode_cache</td><td>3</td>"
                     "<td>1.88 KiB</td></tr>"),
            std::string::npos);
  const std::size_t tables = doc.find("<div id=\"stat-tables\">");
  ASSERT_NE(tables, std::string::npos);
  EXPECT_NE(doc.find("SUMMARY (SLAB allocator)", tables), std::string::npos);
  // Without the stat: the section stays, and says so.
  const std::string bare = render_html_report(info_for(0), ten_caches(10));
  EXPECT_NE(bare.find("<section id=\"kmem-stat\">"), std::string::npos);
  EXPECT_NE(bare.find("(no slab allocations)"), std::string::npos);
}

TEST(Timeline, StaysBoundedKeepsTheEndsAndStaysEven) {
  Timeline tl;
  constexpr std::uint64_t kN = 1'000'000;
  for (std::uint64_t i = 0; i < kN; ++i) {
    TimelineSample s;
    s.ts_ns = i * 1000;
    s.event = i;
    tl.add(std::move(s));
    ASSERT_LE(tl.samples.size(), tl.max_samples) << i;
  }
  ASSERT_GE(tl.samples.size(), tl.max_samples / 2);
  EXPECT_EQ(tl.samples.front().ts_ns, 0u);
  EXPECT_EQ(tl.samples.back().ts_ns, (kN - 1) * 1000);
  // Evenly spaced, but for the newest sample.
  const std::uint64_t gap = tl.samples[1].event - tl.samples[0].event;
  EXPECT_GE(gap, kN / tl.max_samples);
  for (std::size_t i = 1; i + 1 < tl.samples.size(); ++i)
    ASSERT_EQ(tl.samples[i].event - tl.samples[i - 1].event, gap) << i;
  EXPECT_GT(tl.samples.back().event, tl.samples[tl.samples.size() - 2].event);
  EXPECT_LE(tl.samples.back().event - tl.samples[tl.samples.size() - 2].event, gap);
}

TEST(Timeline, SmallBoundsEveryCount) {
  for (std::size_t cap : {0u, 1u, 2u, 3u, 10u}) {
    for (std::uint64_t n = 1; n <= 100; ++n) {
      Timeline tl;
      tl.max_samples = cap;
      for (std::uint64_t i = 0; i < n; ++i) {
        TimelineSample s;
        s.event = i;
        tl.add(std::move(s));
      }
      ASSERT_LE(tl.samples.size(), std::max<std::size_t>(cap, 2)) << cap << " " << n;
      ASSERT_EQ(tl.samples.front().event, 0u) << cap << " " << n;
      ASSERT_EQ(tl.samples.back().event, n - 1) << cap << " " << n;
      for (std::size_t i = 1; i < tl.samples.size(); ++i)
        ASSERT_LT(tl.samples[i - 1].event, tl.samples[i].event) << cap << " " << n;
    }
  }
}

class HtmlReportWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("mmfuzz-html-") + t->name() + "-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static std::vector<std::string> names(const fs::path& d) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(d)) v.push_back(e.path().filename().string());
    return v;
  }
  fs::path dir_;
};

TEST_F(HtmlReportWrite, CreatesTheDirectoryAndOnlyIndexHtml) {
  const Timeline tl = ten_caches(10);
  const fs::path out = dir_ / "a" / "b";
  write_html_report(out.string(), info_for(0), tl);
  EXPECT_EQ(names(out), std::vector<std::string>{"index.html"});
  EXPECT_EQ(slurp(out / "index.html"), render_html_report(info_for(0), tl));
  // Again, over the old file.
  write_html_report(out.string(), info_for(1), tl);
  EXPECT_EQ(names(out), std::vector<std::string>{"index.html"});
  EXPECT_EQ(slurp(out / "index.html"), render_html_report(info_for(1), tl));
  const auto perms = fs::status(out / "index.html").permissions();
  EXPECT_NE(perms & fs::perms::others_read, fs::perms::none);
}

TEST_F(HtmlReportWrite, FailsCleanlyUnderARegularFile) {
  const fs::path file = dir_ / "file";
  std::ofstream(file) << "keep";
  const fs::path out = file / "report";
  try {
    write_html_report(out.string(), info_for(0), Timeline{});
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find(out.string()), std::string::npos) << what;
  }
  EXPECT_EQ(slurp(file), "keep");
  EXPECT_EQ(names(dir_), std::vector<std::string>{"file"});
}

// The rename fails (index.html is a directory): the temp file goes too.
TEST_F(HtmlReportWrite, FailsCleanlyWhenTheRenameFails) {
  fs::create_directories(dir_ / "index.html" / "x");
  EXPECT_THROW(write_html_report(dir_.string(), info_for(0), Timeline{}), std::runtime_error);
  EXPECT_EQ(names(dir_), std::vector<std::string>{"index.html"});
  EXPECT_TRUE(fs::is_directory(dir_ / "index.html"));
}

}  // namespace
