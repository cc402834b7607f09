#include "analysis/html_report.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace mmfuzz::analysis {

void Timeline::add(TimelineSample s) {
  const std::size_t cap = std::max<std::size_t>(max_samples, 2);
  // An off-stride newest sample is only kept until a newer one arrives, so
  // the end of the trace is always on the plots.
  if (tail_pending && !samples.empty()) samples.pop_back();
  tail_pending = false;
  while (samples.size() >= cap) {
    // Keep samples 0, 2, 4, ...: exactly those whose add() number is a
    // multiple of the doubled stride. Starts at 1: self-move-assigning a
    // vector empties it.
    std::size_t w = 1;
    for (std::size_t r = 2; r < samples.size(); r += 2) samples[w++] = std::move(samples[r]);
    samples.resize(w);
    stride *= 2;
  }
  tail_pending = added % stride != 0;
  ++added;
  samples.push_back(std::move(s));
}

void ExtfragHistogram::add(std::uint64_t ts_ns, bool fragmenting, bool change_ownership) {
  if (total++ == 0) t0_ns = ts_ns;
  // Events a little out of order across CPUs land in the first bin.
  std::uint64_t i = ts_ns > t0_ns ? (ts_ns - t0_ns) / width_ns : 0;
  while (i >= kMaxBins) {
    // Merge neighbours: bin j of the doubled width holds old bins 2j, 2j+1.
    for (std::size_t j = 0; 2 * j < bins.size(); ++j) {
      ExtfragBin b = bins[2 * j];
      if (2 * j + 1 < bins.size()) {
        b.fragmenting += bins[2 * j + 1].fragmenting;
        b.other += bins[2 * j + 1].other;
        b.change_ownership += bins[2 * j + 1].change_ownership;
      }
      bins[j] = b;
    }
    bins.resize((bins.size() + 1) / 2);
    width_ns *= 2;
    i = (ts_ns - t0_ns) / width_ns;
  }
  if (bins.size() <= i) bins.resize(i + 1);
  ++(fragmenting ? bins[i].fragmenting : bins[i].other);
  if (change_ownership) ++bins[i].change_ownership;
}

namespace {

// SVG geometry (user units = CSS px at 100%).
constexpr double kWidth = 980;
constexpr double kHeight = 320;
constexpr double kLeft = 78;  // y tick labels
constexpr double kTop = 22;   // marker numbers
constexpr double kPlotW = 610;
constexpr double kPlotH = 246;
constexpr double kLegendX = kLeft + kPlotW + 70;  // after the right axis
constexpr std::size_t kMaxPoints = 2000;          // per series, whatever the Timeline holds
constexpr std::size_t kMaxMarkers = 500;          // violation lines per plot
constexpr std::size_t kMaxMarkerLabels = 30;      // numbered markers; more would overlap
constexpr std::size_t kTopCaches = 8;
constexpr std::size_t kLegendChars = 28;

// Escapes text for element content and attribute values. Control characters
// other than newline and tab are not allowed in HTML: they become '?'.
void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '\n':
      case '\t':
        out += c;
        break;
      case '\r':
        break;
      default:
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    }
  }
}

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_escaped(out, s);
  return out;
}

// At most max_chars characters, cut on a UTF-8 character boundary.
std::string shorten(std::string_view s, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) continue;
    if (++chars == max_chars) return std::string(s.substr(0, i)) + "\u2026";
  }
  return std::string(s);
}

double to_d(std::uint64_t v) {
  return static_cast<double>(v);
}

// v with at most `decimals` decimals, trailing zeros dropped.
std::string num(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// Coordinates: a tenth of a pixel is finer than any screen, and short.
std::string coord(double v) {
  return num(v, 1);
}

enum class Kind { bytes, pages, fraction };

struct Scale {
  double unit = 1;
  const char* suffix = "";
};

// The largest binary (bytes) or decimal (counts) unit not above v.
Scale scale_for(double v, Kind kind) {
  static constexpr std::array<const char*, 7> kBytes = {" B",   " KiB", " MiB", " GiB",
                                                        " TiB", " PiB", " EiB"};
  static constexpr std::array<const char*, 7> kCounts = {"", "k", "M", "G", "T", "P", "E"};
  const double base = kind == Kind::bytes ? 1024 : 1000;
  const auto& names = kind == Kind::bytes ? kBytes : kCounts;
  Scale s{1, names[0]};
  for (std::size_t i = 1; i < names.size() && v >= s.unit * base; ++i)
    s = {s.unit * base, names[i]};
  return s;
}

// "1.25 MiB", "12.3k pages", "0.42": three significant digits or so.
std::string human(double v, Kind kind) {
  if (kind == Kind::fraction) return num(v, 3);
  const Scale s = scale_for(v, kind);
  const double u = v / s.unit;
  const int dec = s.unit == 1 ? 0 : u < 10 ? 2 : u < 100 ? 1 : 0;
  return num(u, dec) + s.suffix + (kind == Kind::pages ? " pages" : "");
}

// 1, 2 or 5 times a power of ten, giving about `target` steps over span.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

// Decimals that show every multiple of a nice step.
int decimals_for(double step) {
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 9);
}

struct Tick {
  double v = 0;
  std::string label;
};

struct YAxis {
  double top = 1;
  std::vector<Tick> ticks;
};

YAxis y_axis(double max, Kind kind) {
  YAxis a;
  if (kind == Kind::fraction) {
    for (int i = 0; i <= 4; ++i) a.ticks.push_back({i / 4.0, num(i / 4.0, 2)});
    return a;
  }
  const Scale s = scale_for(max, kind);
  const double m = max / s.unit;
  double step = m > 0 ? nice_step(m, 5) : 1;
  if (s.unit == 1) step = std::max(step, 1.0);  // whole bytes and pages
  const double top = std::max(step, std::ceil(m / step - 1e-9) * step);
  const int dec = decimals_for(step);
  for (int i = 0; i <= 20; ++i) {
    const double v = i * step;
    if (v > top * (1 + 1e-9)) break;
    a.ticks.push_back({v * s.unit, i == 0 ? "0" : num(v, dec) + s.suffix});
  }
  a.top = top * s.unit;
  return a;
}

// x is trace seconds, or the event index when every sample carries the same
// timestamp (a trace without usable time, or a single sample).
struct XAxis {
  bool by_time = true;
  double lo = 0, hi = 1;
  std::vector<Tick> ticks;
  std::string label;

  double of(std::uint64_t ts_ns, std::uint64_t event) const {
    return by_time ? to_d(ts_ns) * 1e-9 : to_d(event);
  }
  double px(double x) const { return kLeft + (x - lo) / (hi - lo) * kPlotW; }
};

XAxis x_axis(const Timeline& tl) {
  XAxis a;
  const auto distinct_ts = [](const auto& v) {
    return std::any_of(v.begin(), v.end(), [&](const auto& e) { return e.ts_ns != v[0].ts_ns; });
  };
  a.by_time = tl.samples.empty() ? distinct_ts(tl.violations) : distinct_ts(tl.samples);
  a.lo = std::numeric_limits<double>::infinity();
  a.hi = -a.lo;
  const auto extend = [&](double x) {
    a.lo = std::min(a.lo, x);
    a.hi = std::max(a.hi, x);
  };
  for (const auto& s : tl.samples) extend(a.of(s.ts_ns, s.event));
  for (const auto& v : tl.violations) extend(a.of(v.ts_ns, v.event));
  for (const auto& m : tl.markers) extend(a.of(m.ts_ns, m.event));
  if (a.by_time && !tl.extfrag.bins.empty()) {
    const auto& h = tl.extfrag;
    extend(to_d(h.t0_ns) * 1e-9);
    extend(to_d(h.t0_ns + h.bins.size() * h.width_ns) * 1e-9);
  }
  if (a.lo > a.hi) a.lo = a.hi = 0;
  if (!(a.hi > a.lo)) {
    const double c = a.lo;
    a.lo = c >= 1 ? c - 1 : 0;
    a.hi = c + 1;
  }
  double step = nice_step(a.hi - a.lo, 6);
  Scale s;
  if (!a.by_time) {
    step = std::max(step, 1.0);
    s = scale_for(a.hi, Kind::pages);
  }
  const int dec = decimals_for(step / s.unit);
  const double first = std::ceil(a.lo / step - 1e-9) * step;
  for (int i = 0; i <= 20; ++i) {
    const double v = first + i * step;
    if (v > a.hi + step * 1e-9) break;
    a.ticks.push_back({v, v == 0 ? "0" : num(v / s.unit, dec) + s.suffix});
  }
  a.label = a.by_time               ? "trace time (s)"
            : tl.samples.size() < 2 ? "events replayed"
                                    : "events replayed (the samples' timestamps are all equal)";
  return a;
}

// The samples drawn, at most kMaxPoints, and their x pixel positions. One
// sample becomes a short flat segment so that it shows.
struct Plotted {
  std::vector<std::size_t> src;  // sample index per point
  std::vector<std::string> x;    // formatted x pixel per point
};

Plotted plotted(const Timeline& tl, const XAxis& xa) {
  Plotted p;
  const std::size_t n = tl.samples.size();
  if (n == 0) return p;
  const std::size_t stride = (n + kMaxPoints - 1) / kMaxPoints;
  for (std::size_t i = 0; i < n; i += stride) p.src.push_back(i);
  if (p.src.back() != n - 1) p.src.push_back(n - 1);  // keep the end
  for (const std::size_t i : p.src) {
    const auto& s = tl.samples[i];
    p.x.push_back(coord(xa.px(xa.of(s.ts_ns, s.event))));
  }
  if (n == 1) {
    const auto& s = tl.samples[0];
    const double x = xa.px(xa.of(s.ts_ns, s.event));
    p.src = {0, 0};
    p.x = {coord(std::max(kLeft, x - 4)), coord(std::min(kLeft + kPlotW, x + 4))};
  }
  return p;
}

struct Series {
  std::string name;     // legend
  std::string tooltip;  // <title>
  std::string color;
  std::vector<double> v;      // drawn value per sample
  double peak = 0, last = 0;  // shown in the tooltip and the stats table
  bool area = false;          // filled down to the baseline
  bool stacked = false;       // an opaque band of a stack
  bool dashed = false, right_axis = false;
};

// Path data through the points; the middle points of flat runs are dropped
// (lossless, and all-zero series shrink to two points). An area is closed
// down to the baseline.
std::string path_d(const Plotted& p, const std::vector<std::string>& y, bool area) {
  std::string d;
  const std::size_t n = y.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && i + 1 < n && y[i] == y[i - 1] && y[i] == y[i + 1]) continue;
    d += d.empty() ? 'M' : ' ';
    d += p.x[i];
    d += ',';
    d += y[i];
  }
  if (area && n > 0) {
    const std::string base = coord(kTop + kPlotH);
    d += fmt::format(" {},{} {},{}Z", p.x[n - 1], base, p.x[0], base);
  }
  return d;
}

std::string text_el(double x, double y, std::string_view anchor, std::string_view text,
                    std::string_view extra = {}) {
  return fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\"{}>{}</text>\n", coord(x), coord(y),
                     anchor, extra, esc(text));
}

// Stacked bars over x ranges (the extfrag histogram).
struct BarSeries {
  std::string name, color;
  std::vector<double> v;  // per bar
};
struct Bars {
  std::vector<std::pair<double, double>> x;  // [x0, x1) per bar, in x-axis units
  std::vector<BarSeries> stack;              // bottom first
};

struct PlotSpec {
  std::string aria;
  std::string y_label;
  Kind kind = Kind::bytes;
  bool log_y = false;  // log10(1 + v): every order of magnitude shows
  Bars bars;
  std::vector<Series> series;             // in drawing order
  std::vector<std::size_t> legend_order;  // indices into series
  std::string right_label;                // non-empty: a 0..1 axis on the right
  std::string empty_note;                 // drawn when there is nothing to plot
};

// A log axis: 0, then powers of ten up to the first at or above max;
// labelled every other power when there are many.
YAxis log_y_axis(double max) {
  YAxis a;
  int k_top = 1;
  while (std::pow(10.0, k_top) < max && k_top < 30) ++k_top;
  a.top = std::pow(10.0, k_top);
  a.ticks.push_back({0, "0"});
  const int step = k_top > 10 ? 2 : 1;
  for (int k = 0; k <= k_top; ++k) {
    const double v = std::pow(10.0, k);
    const Scale sc = scale_for(v, Kind::pages);
    a.ticks.push_back({v, (k_top - k) % step ? "" : num(v / sc.unit, 0) + sc.suffix});
  }
  return a;
}

double max_value(const PlotSpec& spec) {
  double max = 0;
  for (const auto& s : spec.series)
    if (!s.right_axis)
      for (const double v : s.v) max = std::max(max, v);
  for (std::size_t i = 0; i < spec.bars.x.size(); ++i) {
    double sum = 0;
    for (const auto& b : spec.bars.stack) sum += b.v[i];
    max = std::max(max, sum);
  }
  return max;
}

void render_bars(std::string& out, const Bars& bars, const XAxis& xa,
                 const std::function<double(double)>& py) {
  out += "<g class=\"bars\">\n";
  for (std::size_t i = 0; i < bars.x.size(); ++i) {
    const double x0 = xa.px(bars.x[i].first), x1 = xa.px(bars.x[i].second);
    double base = 0;
    for (const BarSeries& b : bars.stack) {
      if (b.v[i] <= 0) continue;
      const double y0 = py(base), y1 = py(base + b.v[i]);
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {} "
          "(t={}..{} s)</title></rect>\n",
          coord(x0), coord(y1), coord(std::max(0.6, x1 - x0)), coord(y0 - y1), b.color, esc(b.name),
          num(b.v[i], 0), num(bars.x[i].first, 3), num(bars.x[i].second, 3));
      base += b.v[i];
    }
  }
  out += "</g>\n";
}

// The trace's markers: a dashed blue line each, labelled along the line
// when there are few enough to read.
void render_trace_marks(std::string& out, const XAxis& xa, const Timeline& tl) {
  if (tl.markers.empty()) return;
  const double bottom = kTop + kPlotH;
  out += "<g class=\"tmarks\">\n";
  const std::size_t n = std::min(tl.markers.size(), kMaxMarkers);
  for (std::size_t i = 0; i < n; ++i) {
    const TraceMarker& m = tl.markers[i];
    const double x = xa.px(xa.of(m.ts_ns, m.event));
    out += fmt::format(
        "<g class=\"tmark\"><title>M{} {} (t={} s, event {})</title><line x1=\"{}\" y1=\"{}\" "
        "x2=\"{}\" y2=\"{}\" stroke=\"#1c6dd0\" stroke-width=\"1\" stroke-dasharray=\"4 3\"/>",
        i + 1, esc(m.text), num(to_d(m.ts_ns) * 1e-9, 6), m.event, coord(x), kTop, coord(x),
        bottom);
    if (tl.markers.size() <= kMaxMarkerLabels)
      out += text_el(x + 3, kTop + 4, "start", fmt::format("M{} {}", i + 1, shorten(m.text, 36)),
                     fmt::format(" class=\"tlabel\" fill=\"#1c6dd0\" font-size=\"9\" "
                                 "transform=\"rotate(90 {} {})\"",
                                 coord(x + 3), coord(kTop + 4)));
    out += "</g>\n";
  }
  out += "</g>\n";
}

void render_plot(std::string& out, const PlotSpec& spec, const XAxis& xa, const Plotted& pts,
                 const Timeline& tl) {
  const double bottom = kTop + kPlotH;
  const double right = kLeft + kPlotW;
  const double max = max_value(spec);
  const YAxis ya = spec.log_y ? log_y_axis(max) : y_axis(max, spec.kind);
  const auto py = [&](double v, double top) {
    const double f =
        spec.log_y && top > 1 ? std::log10(1 + std::max(v, 0.0)) / std::log10(1 + top) : v / top;
    return bottom - std::clamp(f, 0.0, 1.0) * kPlotH;
  };

  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" "
      "height=\"{1}\" role=\"img\" aria-label=\"{2}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n",
      kWidth, kHeight, esc(spec.aria));
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fbfbfb\" stroke=\"#999\"/>\n",
      kLeft, kTop, kPlotW, kPlotH);

  // Grid and tick labels.
  out += "<g class=\"axes\" fill=\"#333\">\n";
  for (const Tick& t : ya.ticks) {
    const double y = py(t.v, ya.top);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e2e2e2\"/>\n",
                       kLeft, coord(y), right, coord(y));
    if (!t.label.empty()) out += text_el(kLeft - 5, y + 4, "end", t.label);
  }
  for (const Tick& t : xa.ticks) {
    const double x = xa.px(t.v);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e2e2e2\"/>\n",
                       coord(x), kTop, coord(x), bottom);
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#999\"/>\n",
                       coord(x), bottom, bottom + 4);
    out += text_el(x, bottom + 16, "middle", t.label);
  }
  if (!spec.right_label.empty()) {
    for (const Tick& t : y_axis(1, Kind::fraction).ticks)
      out += text_el(right + 5, py(t.v, 1) + 4, "start", t.label);
    out += text_el(right + 40, kTop + kPlotH / 2, "middle", spec.right_label,
                   fmt::format(" transform=\"rotate(90 {} {})\"", right + 40, kTop + kPlotH / 2));
  }
  out += text_el(kLeft + kPlotW / 2, bottom + 34, "middle", xa.label);
  out += text_el(16, kTop + kPlotH / 2, "middle", spec.y_label,
                 fmt::format(" transform=\"rotate(-90 16 {})\"", kTop + kPlotH / 2));
  out += "</g>\n";

  if (!spec.bars.x.empty())
    render_bars(out, spec.bars, xa, [&](double v) { return py(v, ya.top); });
  if ((pts.src.empty() || spec.series.empty()) && spec.bars.x.empty() && !spec.empty_note.empty())
    out += text_el(kLeft + kPlotW / 2, kTop + kPlotH / 2, "middle", spec.empty_note,
                   " fill=\"#777\" font-size=\"14\"");

  // Series. An area gets a translucent fill unless it is part of a stack.
  std::vector<std::string> ys;
  for (const Series& s : spec.series) {
    if (pts.src.empty()) break;
    ys.clear();
    for (const std::size_t i : pts.src) ys.push_back(coord(py(s.v[i], s.right_axis ? 1 : ya.top)));
    out += fmt::format("<g class=\"series\"><title>{}</title>\n", esc(s.tooltip));
    if (s.stacked) {
      // Opaque: each band covers the ones above it down to the baseline.
      out += fmt::format("<path d=\"{}\" fill=\"{}\" stroke=\"none\"/>\n", path_d(pts, ys, true),
                         s.color);
    } else {
      const std::string d = path_d(pts, ys, false);
      if (s.area)
        out += fmt::format("<path d=\"{}\" fill=\"{}\" fill-opacity=\"0.25\" stroke=\"none\"/>\n",
                           path_d(pts, ys, true), s.color);
      // A white halo keeps lines readable over the stacked areas.
      if (s.right_axis)
        out +=
            fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"#fff\" stroke-width=\"3.5\"/>\n", d);
      out += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"{}/>\n", d,
                         s.color, s.dashed ? " stroke-dasharray=\"5 3\"" : "");
    }
    out += "</g>\n";
  }

  // Violation markers: a red line, and a wide invisible one to hover.
  if (!tl.violations.empty()) {
    out += "<g class=\"violations\">\n";
    const std::size_t n = std::min(tl.violations.size(), kMaxMarkers);
    for (std::size_t i = 0; i < n; ++i) {
      const ViolationMarker& v = tl.violations[i];
      const std::string x = coord(xa.px(xa.of(v.ts_ns, v.event)));
      out += fmt::format(
          "<g class=\"vmark\"><title>#{} {}: {} (t={} s, event {})</title>"
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#d00\" stroke-width=\"1.5\"/>"
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"transparent\" "
          "stroke-width=\"8\"/>",
          i + 1, esc(v.id), esc(v.title), num(to_d(v.ts_ns) * 1e-9, 6), v.event, x, kTop, x, bottom,
          x, kTop, x, bottom);
      if (tl.violations.size() <= kMaxMarkerLabels)
        out += fmt::format(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#d00\" "
            "font-size=\"10\">{}</text>",
            x, kTop - 5, i + 1);
      out += "</g>\n";
    }
    out += "</g>\n";
  }

  render_trace_marks(out, xa, tl);

  // Legend.
  out += "<g class=\"legend\">\n";
  const double row = spec.legend_order.empty()
                         ? 16
                         : std::min(16.0, kPlotH / static_cast<double>(spec.legend_order.size()));
  double y = kTop;
  for (const std::size_t i : spec.legend_order) {
    const Series& s = spec.series[i];
    out += fmt::format("<g transform=\"translate({},{})\"><title>{}</title>", kLegendX, coord(y),
                       esc(s.tooltip));
    if (s.area)
      out += fmt::format("<rect width=\"12\" height=\"10\" fill=\"{}\"/>", s.color);
    else
      out += fmt::format(
          "<line x1=\"0\" y1=\"5\" x2=\"14\" y2=\"5\" stroke=\"{}\" "
          "stroke-width=\"2\"{}/>",
          s.color, s.dashed ? " stroke-dasharray=\"4 2\"" : "");
    out +=
        fmt::format("<text x=\"18\" y=\"9\">{}</text></g>\n", esc(shorten(s.name, kLegendChars)));
    y += row;
  }
  for (const BarSeries& b : spec.bars.stack) {
    out += fmt::format(
        "<g transform=\"translate({},{})\"><rect width=\"12\" height=\"10\" fill=\"{}\"/><text "
        "x=\"18\" y=\"9\">{}</text></g>\n",
        kLegendX, coord(y), b.color, esc(shorten(b.name, kLegendChars)));
    y += 16;
  }
  if (!tl.markers.empty()) {
    out += fmt::format(
        "<g transform=\"translate({},{})\"><title>trace markers</title><line x1=\"7\" y1=\"0\" "
        "x2=\"7\" y2=\"10\" stroke=\"#1c6dd0\" stroke-dasharray=\"3 2\"/><text x=\"18\" "
        "y=\"9\">trace marker</text></g>\n",
        kLegendX, coord(y));
    y += 16;
  }
  if (!tl.violations.empty())
    out += fmt::format(
        "<g transform=\"translate({},{})\"><title>violations</title><line x1=\"7\" y1=\"0\" "
        "x2=\"7\" y2=\"10\" stroke=\"#d00\" stroke-width=\"2\"/><text x=\"18\" "
        "y=\"9\">violation</text></g>\n",
        kLegendX, coord(y));
  out += "</g>\n</svg>\n";
}

// Per-series peak and last value, readable without the plot.
void render_stats(std::string& out, const PlotSpec& spec) {
  if (spec.series.empty()) return;
  out += "<table class=\"stats\"><tr><th>series</th><th>peak</th><th>last</th></tr>\n";
  for (const std::size_t i : spec.legend_order) {
    const Series& s = spec.series[i];
    const Kind k = s.right_axis ? Kind::fraction : spec.kind;
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", esc(s.name),
                       human(s.peak, k), human(s.last, k));
  }
  out += "</table>\n";
}

// Order 0 (amber) to the highest order (dark purple): viridis, its yellow
// darkened to show as a line on white.
std::string order_color(std::size_t order, std::size_t n) {
  static constexpr std::array<std::array<double, 3>, 5> kStops = {
      {{222, 170, 0}, {94, 201, 98}, {33, 145, 140}, {59, 82, 139}, {68, 1, 84}}};
  const double t = n > 1 ? to_d(order) / to_d(n - 1) * 4 : 0;
  const auto k = std::min<std::size_t>(static_cast<std::size_t>(t), 3);
  const double f = t - to_d(k);
  std::array<int, 3> c{};
  for (std::size_t j = 0; j < 3; ++j)
    c[j] = static_cast<int>(std::lround(kStops[k][j] + (kStops[k + 1][j] - kStops[k][j]) * f));
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

void finish(Series& s, Kind kind, const std::vector<double>& raw) {
  for (const double v : raw) s.peak = std::max(s.peak, v);
  s.last = raw.empty() ? 0 : raw.back();
  s.tooltip = fmt::format("{}: peak {}, last {}", s.name, human(s.peak, kind), human(s.last, kind));
}

PlotSpec buddy_plot(const Timeline& tl) {
  PlotSpec p;
  p.aria = "free pages per order over trace time";
  p.y_label = "free pages (log scale)";
  p.kind = Kind::pages;
  p.log_y = true;
  p.empty_note = "no samples";
  p.right_label = "unusable free space index, order 3";
  std::size_t orders = 0;
  for (const auto& s : tl.samples) orders = std::max(orders, s.free_pages_per_order.size());
  const std::size_t n = tl.samples.size();
  const auto pages = [&](std::size_t i, std::size_t o) {
    const auto& f = tl.samples[i].free_pages_per_order;
    return o < f.size() ? to_d(f[o]) : 0.0;
  };
  // One line per order on a log scale: a stack on a linear scale lets the
  // highest order (most of the free pages) hide every other.
  std::vector<double> cum(n, 0.0);
  std::vector<Series> lines(orders);
  for (std::size_t o = 0; o < orders; ++o) {
    Series& s = lines[o];
    s.name = fmt::format("order {}", o);
    s.color = order_color(o, orders);
    s.v.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      s.v[i] = pages(i, o);
      cum[i] += s.v[i];
    }
    finish(s, Kind::pages, s.v);
  }
  for (std::size_t o = orders; o-- > 0;) p.series.push_back(std::move(lines[o]));
  if (orders > 0) {
    // The kernel's unusable_free_index(): 0 when nothing is free.
    Series idx;
    idx.name = "unusable index (order 3)";
    idx.color = "#111";
    idx.right_axis = true;
    idx.v.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      double small = 0;
      for (std::size_t o = 0; o < std::min<std::size_t>(orders, 3); ++o) small += pages(i, o);
      idx.v[i] = cum[i] > 0 ? small / cum[i] : 0;
    }
    finish(idx, Kind::fraction, idx.v);
    p.series.push_back(std::move(idx));
    p.legend_order.push_back(p.series.size() - 1);
  }
  for (std::size_t i = 0; i < orders; ++i) p.legend_order.push_back(i);
  if (n > 0 && orders == 0) p.empty_note = "no buddy data";
  return p;
}

PlotSpec slab_plot(const Timeline& tl) {
  static constexpr std::array<const char*, kTopCaches> kColors = {
      "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7"};
  PlotSpec p;
  p.aria = "slab memory per cache over trace time";
  p.y_label = "slab memory";
  p.kind = Kind::bytes;
  p.empty_note = "no samples";
  const std::size_t n = tl.samples.size();
  std::map<std::uint32_t, std::uint64_t> peak;
  for (const auto& s : tl.samples)
    for (const auto& [cache, bytes] : s.slab_bytes) {
      auto& pk = peak[cache];
      pk = std::max(pk, bytes);
    }
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ranked;
  for (const auto& [cache, pk] : peak)
    if (pk > 0) ranked.emplace_back(pk, cache);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  const std::size_t top = std::min(ranked.size(), kTopCaches);
  std::map<std::uint32_t, std::size_t> rank;
  for (std::size_t r = 0; r < top; ++r) rank[ranked[r].second] = r;

  std::vector<std::vector<double>> v(top, std::vector<double>(n, 0.0));
  std::vector<double> other(n, 0.0), total(n, 0.0);
  bool any_total = false;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& s = tl.samples[i];
    for (const auto& [cache, bytes] : s.slab_bytes) {
      const auto it = rank.find(cache);
      (it == rank.end() ? other[i] : v[it->second][i]) += to_d(bytes);
    }
    total[i] = to_d(s.slab_bytes_total);
    any_total = any_total || s.slab_bytes_total > 0;
  }
  for (std::size_t r = 0; r < top; ++r) {
    const std::uint32_t c = ranked[r].second;
    Series s;
    s.name = c < tl.caches.size() ? tl.caches[c] : fmt::format("cache #{}", c);
    s.color = kColors[r];
    s.v = std::move(v[r]);
    finish(s, Kind::bytes, s.v);
    p.series.push_back(std::move(s));
  }
  if (ranked.size() > top) {
    Series s;
    s.name = fmt::format("other ({} caches)", ranked.size() - top);
    s.color = "#aaa";
    s.v = std::move(other);
    finish(s, Kind::bytes, s.v);
    p.series.push_back(std::move(s));
  }
  if (any_total) {
    Series s;
    s.name = "all slab memory";
    s.color = "#333";
    s.dashed = true;
    s.v = std::move(total);
    finish(s, Kind::bytes, s.v);
    p.series.push_back(std::move(s));
  }
  for (std::size_t i = 0; i < p.series.size(); ++i) p.legend_order.push_back(i);
  if (n > 0 && p.series.empty()) p.empty_note = "no slab memory";
  return p;
}

PlotSpec kmalloc_plot(const Timeline& tl) {
  PlotSpec p;
  p.aria = "live kmalloc bytes over trace time";
  p.y_label = "live kmalloc bytes (requested)";
  p.kind = Kind::bytes;
  p.empty_note = "no samples";
  Series s;
  s.name = "live kmalloc bytes";
  s.color = "#4e79a7";
  s.area = true;
  for (const auto& x : tl.samples) s.v.push_back(to_d(x.live_kmalloc_bytes));
  finish(s, Kind::bytes, s.v);
  p.series.push_back(std::move(s));
  p.legend_order.push_back(0);
  return p;
}

void pre_or_note(std::string& out, std::string_view text) {
  if (text.empty()) {
    out += "<p><em>(not available)</em></p>\n";
    return;
  }
  out += "<pre>";
  append_escaped(out, text);
  out += "</pre>\n";
}

PlotSpec extfrag_plot(const Timeline& tl, const XAxis& xa) {
  PlotSpec p;
  p.aria = "mm_page_alloc_extfrag events over trace time";
  p.y_label = "extfrag events per bin";
  p.kind = Kind::pages;
  const ExtfragHistogram& h = tl.extfrag;
  if (h.bins.empty()) {
    p.empty_note = "no mm_page_alloc_extfrag events";
    return p;
  }
  if (!xa.by_time) {
    p.empty_note = "extfrag events are binned by trace time, which this trace lacks";
    return p;
  }
  p.bars.stack = {{"fragmenting fallback", "#d6604d", {}}, {"other fallback", "#92c5de", {}}};
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    const double x0 = to_d(h.t0_ns + i * h.width_ns) * 1e-9;
    p.bars.x.emplace_back(x0, x0 + to_d(h.width_ns) * 1e-9);
    p.bars.stack[0].v.push_back(to_d(h.bins[i].fragmenting));
    p.bars.stack[1].v.push_back(to_d(h.bins[i].other));
  }
  return p;
}

// Horizontal bars: bytes allocated per call site, requested bytes inside.
void render_top_callsites(std::string& out, const std::vector<ReportInfo::Callsite>& rows) {
  constexpr double kRow = 20, kNameW = 330, kBarW = 420;
  const double h = kTop + kRow * to_d(rows.size()) + 10;
  double max = 1;
  for (const auto& r : rows) max = std::max(max, to_d(r.bytes_alloc));
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" "
      "height=\"{1}\" role=\"img\" aria-label=\"top call sites by bytes allocated\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      kWidth, coord(h));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const double y = kTop + kRow * to_d(i);
    const double wa = to_d(r.bytes_alloc) / max * kBarW, wr = to_d(r.bytes_req) / max * kBarW;
    out += fmt::format(
        "<g class=\"callsite\"><title>{}: {} allocated, {} requested, {} hits</title>", esc(r.name),
        human(to_d(r.bytes_alloc), Kind::bytes), human(to_d(r.bytes_req), Kind::bytes), r.hit);
    out += text_el(kNameW - 6, y + 13, "end", shorten(r.name, 48));
    out += fmt::format(
        "<rect x=\"{0}\" y=\"{1}\" width=\"{2}\" height=\"15\" fill=\"#a0cbe8\"/><rect "
        "x=\"{0}\" y=\"{1}\" width=\"{3}\" height=\"15\" fill=\"#4e79a7\"/>",
        kNameW, coord(y), coord(std::max(wa, 0.5)), coord(std::max(wr, 0.5)));
    out += text_el(kNameW + std::max(wa, 0.5) + 5, y + 12, "start",
                   fmt::format("{} ({} hits)", human(to_d(r.bytes_alloc), Kind::bytes), r.hit));
    out += "</g>\n";
  }
  out += text_el(kNameW, 14, "start", "dark: bytes requested \u00b7 light: bytes allocated");
  out += "</svg>\n";
}

void kmem_stat_section(std::string& out, const ReportInfo& info) {
  out += "<section id=\"kmem-stat\">\n<h2>perf kmem stat</h2>\n";
  out +=
      "<figure id=\"top-callsites\">\n<figcaption><strong>Top call sites</strong> by bytes "
      "allocated (kmalloc and kmem_cache_alloc, from the trace).</figcaption>\n";
  if (info.top_callsites.empty())
    out += "<p><em>(no slab allocations)</em></p>\n";
  else
    render_top_callsites(out, info.top_callsites);
  out += "</figure>\n";
  out += fmt::format(
      "<div id=\"live-callsites\">\n<h3>Live objects by call site</h3>\n<p>{} objects, {} "
      "still allocated at the end of the trace; the cache is the one the trace named, else the "
      "one the call site's objects were freed to.</p>\n",
      info.live_objects, human(to_d(info.live_bytes), Kind::bytes));
  if (!info.live_by_callsite.empty()) {
    out +=
        "<table class=\"stats\"><tr><th>call site</th><th>cache</th><th>objects</th>"
        "<th>bytes</th></tr>\n";
    for (const auto& r : info.live_by_callsite)
      out +=
          fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", esc(r.call_site),
                      esc(r.cache), r.objects, human(to_d(r.bytes_alloc), Kind::bytes));
    out += "</table>\n";
  }
  out += "</div>\n<h3>Tables</h3>\n<div id=\"stat-tables\">\n";
  pre_or_note(out, info.kmem_stat);
  out += "</div>\n</section>\n";
}

void markers_table(std::string& out, const Timeline& tl) {
  out += "<div id=\"trace-markers\">\n<h3>Trace markers</h3>\n";
  if (tl.markers.empty()) {
    out += "<p>The trace has no markers (tracing_mark_write).</p>\n</div>\n";
    return;
  }
  out += "<table>\n<tr><th>#</th><th>t (s)</th><th>event</th><th>text</th></tr>\n";
  for (std::size_t i = 0; i < tl.markers.size(); ++i) {
    const TraceMarker& m = tl.markers[i];
    out += fmt::format("<tr><td>M{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", i + 1,
                       num(to_d(m.ts_ns) * 1e-9, 6), m.event, esc(m.text));
  }
  out += "</table>\n</div>\n";
}

constexpr std::string_view kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1040px;
padding:0 16px 24px;color:#222;background:#fff;line-height:1.4}
header{border-bottom:2px solid #ddd;margin-bottom:8px}
h1{font-size:1.35em;margin:16px 0 4px;word-break:break-all}
h2{font-size:1.15em;border-bottom:1px solid #eee;margin-top:28px}
h3{font-size:1em;margin:16px 0 4px}
.verdict{display:inline-block;font-weight:bold;padding:2px 10px;border-radius:4px;color:#fff}
.ok{background:#2b8a3e}.bad{background:#c92a2a}
nav a{margin-right:12px}
table{border-collapse:collapse;font-size:0.92em}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
table.stats{margin:4px 0 0}
table.stats td:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}
figure{margin:16px 0}
figcaption{font-size:0.92em;color:#444;margin:2px 0 6px;max-width:980px}
svg{max-width:100%;height:auto;display:block}
pre{background:#f6f6f6;border:1px solid #e4e4e4;padding:8px;overflow-x:auto;font-size:0.85em;
line-height:1.3}
pre.violation{border-left:4px solid #c92a2a}
footer{margin-top:32px;border-top:1px solid #ddd;font-size:0.85em;color:#666;padding-top:6px}
)";

}  // namespace

std::string render_html_report(const ReportInfo& info, const Timeline& tl) {
  const bool clean = tl.violations.empty() && info.violation_reports.empty();
  const std::string title = info.title.empty() ? "mmfuzz report" : info.title;
  const std::string verdict =
      info.verdict.empty() ? (clean ? "clean" : "violations") : info.verdict;
  std::string out;
  out.reserve(64 * 1024);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n", esc(title), kStyle);

  out += fmt::format(
      "<header>\n<h1>{}</h1>\n<p>Verdict: <span class=\"verdict {}\">{}</span></p>\n</header>\n",
      esc(title), clean ? "ok" : "bad", esc(verdict));
  out +=
      "<nav><a href=\"#summary\">Summary</a><a href=\"#timeline\">Timeline</a>"
      "<a href=\"#trace-markers\">Markers</a><a href=\"#kmem-stat\">perf kmem stat</a>"
      "<a href=\"#violations\">Violations</a><a href=\"#fidelity\">Fidelity</a>"
      "<a href=\"#final-state\">Final state</a></nav>\n<main>\n";

  out += "<section id=\"summary\">\n<h2>Summary</h2>\n";
  if (info.summary.empty()) {
    out += "<p><em>(none)</em></p>\n";
  } else {
    out += "<table>\n";
    for (const auto& [k, v] : info.summary)
      out += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v));
    out += "</table>\n";
  }
  out += "</section>\n";

  // Plots.
  const XAxis xa = x_axis(tl);
  const Plotted pts = plotted(tl, xa);
  out += "<section id=\"timeline\">\n<h2>Timeline</h2>\n";
  if (tl.samples.empty()) {
    out += "<p>No samples were taken.</p>\n";
  } else {
    const auto& a = tl.samples.front();
    const auto& b = tl.samples.back();
    out += fmt::format("<p>{} samples from t = {} s (event {}) to t = {} s (event {}).{}</p>\n",
                       tl.samples.size(), num(to_d(a.ts_ns) * 1e-9, 6), a.event,
                       num(to_d(b.ts_ns) * 1e-9, 6), b.event,
                       xa.by_time || tl.samples.size() < 2
                           ? ""
                           : " All samples carry the same timestamp: x is the event "
                             "index.");
  }
  if (tl.violations.size() > kMaxMarkers)
    out += fmt::format("<p>The plots mark the first {} of {} violations.</p>\n", kMaxMarkers,
                       tl.violations.size());
  const std::array<std::pair<PlotSpec, std::string>, 4> plots = {{
      {buddy_plot(tl),
       "Free pages in the buddy free lists by order, summed over zones, one line per order on a "
       "log scale so that every order shows. The black line (right axis) is the unusable free "
       "space index for order 3, as "
       "in /sys/kernel/debug/extfrag/unusable_index: the fraction of free pages that sit in "
       "blocks smaller than order 3 and so cannot serve an order-3 allocation. 0 means all free "
       "memory is in blocks of order 3 or more; 1 means it is all fragmented into smaller "
       "blocks (also 1 when MAX_ORDER is 3 or less)."},
      {slab_plot(tl),
       "Slab memory per cache: the 8 caches with the highest peak, the rest summed as "
       "\u201cother\u201d, and (dashed) all slab memory."},
      {kmalloc_plot(tl), "Requested bytes of live kmalloc objects."},
      {extfrag_plot(tl, xa),
       fmt::format("mm_page_alloc_extfrag events (allocations that fell back to another "
                   "migratetype's pageblock) per {} s bin, {} in all; red ones fragment "
                   "(fallback_order below pageblock_order).",
                   num(to_d(tl.extfrag.width_ns) * 1e-9, 6), tl.extfrag.total)},
  }};
  for (std::size_t i = 0; i < plots.size(); ++i) {
    const auto& [spec, caption] = plots[i];
    out += fmt::format(
        "<figure id=\"plot-{}\">\n<figcaption><strong>{}.</strong> {}{}{}</figcaption>\n", i + 1,
        i + 1, esc(caption),
        tl.violations.empty() ? "" : " Red lines: violations (hover for the id).",
        tl.markers.empty() ? "" : " Dashed blue lines: the trace's markers (M1, M2, ...).");
    render_plot(out, spec, xa, pts, tl);
    if (!tl.samples.empty()) render_stats(out, spec);
    out += "</figure>\n";
  }
  markers_table(out, tl);
  out += "</section>\n";
  kmem_stat_section(out, info);

  // Violations.
  out += fmt::format("<section id=\"violations\">\n<h2>Violations ({})</h2>\n",
                     std::max(tl.violations.size(), info.violation_reports.size()));
  if (clean) out += "<p>No violations.</p>\n";
  if (!tl.violations.empty()) {
    out += "<table>\n<tr><th>#</th><th>id</th><th>t (s)</th><th>event</th><th>title</th></tr>\n";
    const std::size_t n = std::min(tl.violations.size(), kMaxMarkers);
    for (std::size_t i = 0; i < n; ++i) {
      const ViolationMarker& v = tl.violations[i];
      out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                         i + 1, esc(v.id), num(to_d(v.ts_ns) * 1e-9, 6), v.event, esc(v.title));
    }
    out += "</table>\n";
    if (tl.violations.size() > n)
      out += fmt::format("<p>\u2026 and {} more.</p>\n", tl.violations.size() - n);
  }
  for (std::size_t i = 0; i < info.violation_reports.size(); ++i) {
    out += fmt::format("<pre class=\"violation\" id=\"violation-{}\">", i + 1);
    append_escaped(out, info.violation_reports[i]);
    out += "</pre>\n";
  }
  out += "</section>\n";

  out += "<section id=\"fidelity\">\n<h2>Fidelity</h2>\n";
  pre_or_note(out, info.fidelity);
  out += "</section>\n";

  out += "<section id=\"final-state\">\n<h2>Final state</h2>\n<h3>/proc/slabinfo</h3>\n";
  pre_or_note(out, info.slabinfo);
  out += "<h3>/proc/buddyinfo</h3>\n";
  pre_or_note(out, info.buddyinfo);
  out += "</section>\n</main>\n";

  out +=
      "<footer>Generated by mmfuzz, a userspace model of the Linux kernel memory manager driven "
      "by kmem traces. This file is self-contained: it loads nothing.</footer>\n"
      "</body>\n</html>\n";
  return out;
}

namespace {

[[noreturn]] void write_failed(const std::string& target, const std::string& why) {
  throw std::runtime_error(fmt::format("cannot write HTML report '{}': {}", target, why));
}

}  // namespace

void write_html_report(const std::string& dir, const ReportInfo& info, const Timeline& tl) {
  namespace fs = std::filesystem;
  const std::string doc = render_html_report(info, tl);
  const fs::path d(dir.empty() ? "." : dir);
  const std::string target = (d / "index.html").string();
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) write_failed(target, ec.message());
  // The temp file lives in DIR so that rename() cannot cross filesystems.
  const std::string tmpl = (d / ".index.html.XXXXXX").string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) write_failed(target, std::error_code(errno, std::generic_category()).message());
  const std::string tmp(name.data());
  int err = 0;
  const char* p = doc.data();
  std::size_t left = doc.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  // mkstemp() makes the file 0600; a report is for reading.
  if (err == 0 && ::fchmod(fd, 0644) != 0) err = errno;
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && std::rename(tmp.c_str(), target.c_str()) != 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    write_failed(target, std::error_code(err, std::generic_category()).message());
  }
}

}  // namespace mmfuzz::analysis
