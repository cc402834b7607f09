// open_event_source: text traces through LineReader + TextParser, trace.dat
// through libtracecmd (tracedat.c).
#include "trace/source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <vector>

#include "mm/page_alloc/gfp.h"
#include "trace/line_reader.h"
#include "trace/tracedat.h"

namespace mmfuzz::trace {

namespace {

constexpr std::size_t kMaxQuoted = 200;  // chars of a bad line quoted in a message

// A line quoted in a one-line message: cut, control characters replaced.
std::string quote_line(std::string_view text) {
  std::string out;
  bool cut = false;
  if (text.size() > kMaxQuoted) {
    std::size_t n = kMaxQuoted;
    // Do not split a UTF-8 sequence.
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
    text = text.substr(0, n);
    cut = true;
  }
  out.reserve(text.size() + 3);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (cut) out += "...";
  return out;
}

// Both sources: counting, and the strict / lenient handling of bad events.
class SourceBase : public EventSource {
 public:
  SourceBase(std::string name, const SourceOptions& opts) : name_(std::move(name)), opts_(opts) {}
  const SourceStats& stats() const override { return stats_; }
  const std::string& name() const override { return name_; }

 protected:
  void count_event(const TraceEvent& ev) {
    ++stats_.events;
    if (ev.type == EventType::lost_events) {
      ++stats_.lost_markers;
      stats_.lost_events += ev.lost;
    }
  }
  // "FILE:LINE: reason: text": thrown under strict, else counted and kept.
  void malformed(std::uint64_t line, const std::string& reason, std::string_view text) {
    std::string msg = name_ + ":" + std::to_string(line) + ": " + reason + ": " + quote_line(text);
    if (opts_.strict) throw InputError(msg);
    ++stats_.malformed;
    if (stats_.warnings.size() < opts_.max_warnings_kept) stats_.warnings.push_back(std::move(msg));
  }

  std::string name_;
  SourceOptions opts_;
  SourceStats stats_;
};

// ---- Text ----

class TextSource final : public SourceBase {
 public:
  TextSource(std::unique_ptr<LineReader> reader, const SourceOptions& opts)
      : SourceBase(reader->name(), opts), reader_(std::move(reader)) {}

  bool next(TraceEvent& ev) override {
    std::string_view line;
    while (reader_->next(line)) {
      ++stats_.lines;
      if (stats_.lines == 1 && line.substr(0, kTraceDatMagic.size()) == kTraceDatMagic)
        throw InputError(name_ +
                         ": a compressed trace.dat: decompress it first (libtracecmd reads only "
                         "uncompressed files)");
      error_.clear();
      switch (parser_.parse(line, ev, &error_)) {
        case LineStatus::event:
          line_ = reader_->line_no();
          count_event(ev);
          return true;
        case LineStatus::skipped:
          ++stats_.skipped;
          if (header_lost(line, ev)) {
            line_ = reader_->line_no();
            count_event(ev);
            return true;
          }
          break;
        case LineStatus::malformed:
          malformed(reader_->line_no(), error_.empty() ? "malformed event" : error_, line);
          break;
      }
    }
    return false;
  }
  std::uint64_t line() const override { return line_; }
  bool interrupted() const override { return reader_->interrupted(); }
  std::uint64_t bytes_done() const override { return reader_->bytes_done(); }
  std::uint64_t bytes_total() const override { return reader_->bytes_total(); }
  SourceFormat format() const override { return SourceFormat::text; }
  TextFormat text_format() const override { return parser_.format(); }
  bool program_text() const override { return parser_.program_text(); }
  const std::vector<std::string>* header_lines() const override { return &parser_.header_lines(); }
  Compression compression() const override { return reader_->compression(); }

 private:
  // ftrace's header "# entries-in-buffer/entries-written: 900/1000": the
  // ring buffer overwrote the oldest 100 events. A lost-events marker for
  // the whole trace, before its first event.
  static bool header_lost(std::string_view line, TraceEvent& ev) {
    static constexpr std::string_view kKey = "# entries-in-buffer/entries-written:";
    if (line.substr(0, kKey.size()) != kKey) return false;
    unsigned long long in_buffer = 0, written = 0;
    const std::string rest(line.substr(kKey.size()));
    if (std::sscanf(rest.c_str(), " %llu/%llu", &in_buffer, &written) != 2 || written <= in_buffer)
      return false;
    ev = TraceEvent{};
    ev.type = EventType::lost_events;
    ev.cpu = -1;
    ev.lost = written - in_buffer;
    return true;
  }

  std::unique_ptr<LineReader> reader_;
  TextParser parser_;
  std::string error_;
  std::uint64_t line_ = 0;
};

// ---- trace.dat ----

class TraceDatSource final : public SourceBase {
 public:
  TraceDatSource(const std::string& path, std::string name, const SourceOptions& opts)
      : SourceBase(std::move(name), opts) {
    char err[256] = "";
    td_ = mmfuzz_td_open(path.c_str(), err, sizeof err);
    if (td_ == nullptr) throw InputError(name_ + ": " + err);
    // pageblock_order for the print format's fragmenting=: PMD_SHIFT -
    // PAGE_SHIFT = PAGE_SHIFT - 3 with 8-byte page table entries (9 for
    // 4 KiB pages); the binary record lacks it.
    int shift = 0;
    while ((1 << shift) < mmfuzz_td_page_size(td_) && shift < 30) ++shift;
    pageblock_order_ = shift > 3 ? static_cast<unsigned>(shift - 3) : 0;
  }
  ~TraceDatSource() override { mmfuzz_td_close(td_); }
  TraceDatSource(const TraceDatSource&) = delete;
  TraceDatSource& operator=(const TraceDatSource&) = delete;

  bool next(TraceEvent& ev) override {
    for (;;) {
      if (!held_) {
        char err[256] = "";
        const int rc = mmfuzz_td_next(td_, &rec_, err, sizeof err);
        if (rc < 0) throw InputError(name_ + ": " + err);
        if (rc == 0) return false;
        ++stats_.lines;
        ++record_;
        if (rec_.missed != 0) {
          // The ring buffer dropped events before this record: say so
          // first, deliver the record on the next call.
          held_ = true;
          ev = TraceEvent{};
          ev.type = EventType::lost_events;
          ev.cpu = rec_.cpu;
          ev.ts_ns = rec_.ts_ns;
          ev.lost = rec_.missed > 0 ? static_cast<std::uint64_t>(rec_.missed) : 0;
          count_event(ev);
          return true;
        }
      }
      held_ = false;
      std::string reason;
      switch (convert(ev, reason)) {
        case LineStatus::event:
          count_event(ev);
          return true;
        case LineStatus::skipped:
          ++stats_.skipped;
          break;
        case LineStatus::malformed:
          malformed(record_, reason, describe());
          break;
      }
    }
  }
  std::uint64_t line() const override { return record_; }
  std::uint64_t bytes_done() const override { return mmfuzz_td_bytes_done(td_); }
  std::uint64_t bytes_total() const override { return mmfuzz_td_bytes_total(td_); }
  SourceFormat format() const override { return SourceFormat::trace_dat; }
  TextFormat text_format() const override { return TextFormat::unknown; }
  Compression compression() const override { return Compression::none; }

 private:
  bool has(int f) const { return ((rec_.have >> f) & 1u) != 0; }
  std::uint64_t val(int f) const { return rec_.val[f]; }
  int ival(int f) const { return static_cast<int>(static_cast<std::int64_t>(rec_.val[f])); }

  LineStatus convert(TraceEvent& ev, std::string& reason);
  std::string_view call_site(std::uint64_t addr);
  std::string describe() const;

  mmfuzz_td* td_ = nullptr;
  mmfuzz_td_record rec_{};
  bool held_ = false;  // rec_ still to be delivered (after a lost-events marker)
  std::uint64_t record_ = 0;
  unsigned pageblock_order_ = 9;
  std::vector<EventType> types_;  // by rec_.slot; none for events we skip
  std::vector<bool> typed_;
  std::unordered_map<std::uint64_t, std::string> call_sites_;
  std::string call_site_buf_, name_buf_, fields_buf_;
};

// The record in the "text" part of a message about it.
std::string TraceDatSource::describe() const {
  std::string s = rec_.system != nullptr ? rec_.system : "?";
  s += ":";
  s += rec_.event != nullptr ? rec_.event : "?";
  s += " cpu=" + std::to_string(rec_.cpu) + " ts_ns=" + std::to_string(rec_.ts_ns);
  return s;
}

std::string_view TraceDatSource::call_site(std::uint64_t addr) {
  // Call sites repeat: format each once (bounded; beyond, a scratch buffer).
  constexpr std::size_t kMaxCached = 1 << 16;
  if (const auto it = call_sites_.find(addr); it != call_sites_.end()) return it->second;
  char buf[320];
  const char* fn = nullptr;
  std::uint64_t off = 0;
  if (mmfuzz_td_function(td_, addr, &fn, &off) != 0)
    std::snprintf(buf, sizeof buf, "%.256s+0x%" PRIx64, fn, off);  // as ftrace's %pS, no /size
  else
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, addr);
  if (call_sites_.size() < kMaxCached) return call_sites_.emplace(addr, buf).first->second;
  call_site_buf_ = buf;
  return call_site_buf_;
}

LineStatus TraceDatSource::convert(TraceEvent& ev, std::string& reason) {
  ev = TraceEvent{};
  if (rec_.system == nullptr || rec_.event == nullptr) {
    // Every event id in a sound file has its format there.
    reason = rec_.event_id < 0 ? "record shorter than its header"
                               : "record of event id " + std::to_string(rec_.event_id) +
                                     ", which has no format in the file";
    return LineStatus::malformed;
  }
  if (rec_.slot >= types_.size()) {
    types_.resize(rec_.slot + 1, EventType::none);
    typed_.resize(rec_.slot + 1, false);
  }
  if (!typed_[rec_.slot]) {
    const std::string_view sys = rec_.system;
    const std::string_view name = rec_.event;
    EventType t = EventType::none;
    if (sys == "ftrace" && name == "print")
      t = EventType::marker;
    else if (sys == "kmem" || sys == "vmalloc")
      t = event_type_from_name(name);
    types_[rec_.slot] = t;
    typed_[rec_.slot] = true;
  }
  const EventType type = types_[rec_.slot];
  if (type == EventType::none) return LineStatus::skipped;

  ev.type = type;
  ev.cpu = rec_.cpu;
  ev.pid = rec_.pid;
  ev.ts_ns = rec_.ts_ns;
  if (rec_.comm != nullptr) ev.comm = rec_.comm;
  const std::string_view str = (rec_.flags & MMFUZZ_TD_HAS_STR) != 0
                                   ? std::string_view(rec_.str, rec_.str_len)
                                   : std::string_view();

  // Required fields; the first missing one makes the record malformed.
  const auto need = [&](std::initializer_list<int> fields) {
    for (const int f : fields) {
      if (has(f)) continue;
      reason = std::string(rec_.event) + ": missing field " + mmfuzz_td_field_name(f);
      return false;
    }
    return true;
  };

  switch (type) {
    case EventType::marker: {
      // The text written to trace_marker, as the text parser gives it:
      // trimmed, and "mmfuzz_NAME: fields" as an extension event.
      std::string_view text = str;
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
      while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
      if (text.substr(0, 7) == "mmfuzz_") {
        const std::size_t c = text.find(':');
        if (c != std::string_view::npos && c > 7 && text.substr(0, c).find(' ') == text.npos &&
            (c + 1 == text.size() || text[c + 1] == ' ')) {
          ev.type = EventType::mmfuzz_ext;
          ev.ext_name = text.substr(7, c - 7);
          std::string_view rest = text.substr(c + 1);
          while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
          ev.fields = rest;
          return LineStatus::event;
        }
      }
      ev.fields = text;
      return LineStatus::event;
    }
    case EventType::kmalloc:
    case EventType::kmalloc_node:
    case EventType::kmem_cache_alloc:
    case EventType::kmem_cache_alloc_node:
      if (!need({MMFUZZ_TD_PTR, MMFUZZ_TD_BYTES_REQ, MMFUZZ_TD_BYTES_ALLOC, MMFUZZ_TD_GFP_FLAGS}))
        return LineStatus::malformed;
      ev.bytes_req = val(MMFUZZ_TD_BYTES_REQ);
      ev.bytes_alloc = val(MMFUZZ_TD_BYTES_ALLOC);
      ev.gfp = static_cast<std::uint32_t>(val(MMFUZZ_TD_GFP_FLAGS));
      ev.has_gfp = true;
      if (has(MMFUZZ_TD_NODE)) ev.node = ival(MMFUZZ_TD_NODE);
      if (has(MMFUZZ_TD_ACCOUNTED))
        ev.accounted = val(MMFUZZ_TD_ACCOUNTED) != 0;
      else if ((rec_.flags & MMFUZZ_TD_PRINT_HAS_ACCOUNTED) != 0)
        ev.accounted = (ev.gfp & mm::__GFP_ACCOUNT) != 0;  // 6.1 kmalloc computes it in print
      [[fallthrough]];
    case EventType::kfree:
    case EventType::kmem_cache_free:
      if (!need({MMFUZZ_TD_PTR})) return LineStatus::malformed;
      ev.ptr = val(MMFUZZ_TD_PTR);
      if (has(MMFUZZ_TD_CALL_SITE)) ev.call_site = call_site(val(MMFUZZ_TD_CALL_SITE));
      ev.name = str;
      return LineStatus::event;
    case EventType::mm_page_alloc:
      if (!need({MMFUZZ_TD_PFN, MMFUZZ_TD_ORDER, MMFUZZ_TD_GFP_FLAGS}))
        return LineStatus::malformed;
      ev.pfn = val(MMFUZZ_TD_PFN);
      // A failed allocation stores pfn -1 (page NULL).
      if (ev.pfn == ~std::uint64_t{0} || ev.pfn == 0xffffffffu) {
        ev.failed = true;
        ev.pfn = 0;
      }
      ev.order = static_cast<unsigned>(val(MMFUZZ_TD_ORDER));
      ev.gfp = static_cast<std::uint32_t>(val(MMFUZZ_TD_GFP_FLAGS));
      ev.has_gfp = true;
      if (has(MMFUZZ_TD_MIGRATETYPE)) ev.migratetype = ival(MMFUZZ_TD_MIGRATETYPE);
      return LineStatus::event;
    case EventType::mm_page_free:
    case EventType::mm_page_free_batched:
    case EventType::mm_page_alloc_zone_locked:
    case EventType::mm_page_pcpu_drain:
      // mm_page_free_batched has no order field: always 0.
      if (!need({MMFUZZ_TD_PFN}) ||
          (type != EventType::mm_page_free_batched && !need({MMFUZZ_TD_ORDER})))
        return LineStatus::malformed;
      ev.pfn = val(MMFUZZ_TD_PFN);
      if (has(MMFUZZ_TD_ORDER)) ev.order = static_cast<unsigned>(val(MMFUZZ_TD_ORDER));
      if (has(MMFUZZ_TD_MIGRATETYPE)) ev.migratetype = ival(MMFUZZ_TD_MIGRATETYPE);
      if (has(MMFUZZ_TD_PERCPU_REFILL)) ev.percpu_refill = val(MMFUZZ_TD_PERCPU_REFILL) != 0;
      return LineStatus::event;
    case EventType::mm_page_alloc_extfrag:
      if (!need({MMFUZZ_TD_PFN, MMFUZZ_TD_ALLOC_ORDER, MMFUZZ_TD_FALLBACK_ORDER,
                 MMFUZZ_TD_ALLOC_MIGRATETYPE, MMFUZZ_TD_FALLBACK_MIGRATETYPE}))
        return LineStatus::malformed;
      ev.pfn = val(MMFUZZ_TD_PFN);
      ev.alloc_order = static_cast<unsigned>(val(MMFUZZ_TD_ALLOC_ORDER));
      ev.fallback_order = static_cast<unsigned>(val(MMFUZZ_TD_FALLBACK_ORDER));
      ev.alloc_migratetype = ival(MMFUZZ_TD_ALLOC_MIGRATETYPE);
      ev.fallback_migratetype = ival(MMFUZZ_TD_FALLBACK_MIGRATETYPE);
      if (has(MMFUZZ_TD_CHANGE_OWNERSHIP))
        ev.change_ownership = val(MMFUZZ_TD_CHANGE_OWNERSHIP) != 0;
      if ((rec_.flags & MMFUZZ_TD_PRINT_HAS_FRAGMENTING) != 0)
        ev.fragmenting = ev.fallback_order < pageblock_order_;
      return LineStatus::event;
    case EventType::rss_stat: {
      if (!need({MMFUZZ_TD_SIZE})) return LineStatus::malformed;
      ev.size = val(MMFUZZ_TD_SIZE);
      // As the text parser gives it: name = type= (the print format's
      // symbols of member), fields = the printed field text.
      static constexpr const char* kMembers[] = {"MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS",
                                                 "MM_SHMEMPAGES"};
      const std::int64_t member = has(MMFUZZ_TD_MEMBER) ? ival(MMFUZZ_TD_MEMBER) : -1;
      if (member >= 0 && member < 4)
        name_buf_ = kMembers[member];
      else
        name_buf_ = std::to_string(member);
      char buf[160];
      std::snprintf(buf, sizeof buf, "mm_id=%u curr=%d type=%s size=%" PRId64 "B",
                    static_cast<unsigned>(val(MMFUZZ_TD_MM_ID)), ival(MMFUZZ_TD_CURR),
                    name_buf_.c_str(), static_cast<std::int64_t>(ev.size));
      fields_buf_ = buf;
      ev.name = name_buf_;
      ev.fields = fields_buf_;
      return LineStatus::event;
    }
    case EventType::alloc_vmap_area:
      if (!need({MMFUZZ_TD_ADDR, MMFUZZ_TD_SIZE})) return LineStatus::malformed;
      ev.addr = val(MMFUZZ_TD_ADDR);
      ev.size = val(MMFUZZ_TD_SIZE);
      ev.align = val(MMFUZZ_TD_ALIGN);
      ev.vstart = val(MMFUZZ_TD_VSTART);
      ev.vend = val(MMFUZZ_TD_VEND);
      ev.failed = val(MMFUZZ_TD_FAILED) != 0;
      return LineStatus::event;
    case EventType::free_vmap_area_noflush:
      if (!need({MMFUZZ_TD_VA_START})) return LineStatus::malformed;
      ev.addr = val(MMFUZZ_TD_VA_START);
      ev.nr_lazy = val(MMFUZZ_TD_NR_LAZY);
      ev.nr_lazy_max = val(MMFUZZ_TD_NR_LAZY_MAX);
      return LineStatus::event;
    case EventType::purge_vmap_area_lazy:
      if (!need({MMFUZZ_TD_START, MMFUZZ_TD_END})) return LineStatus::malformed;
      ev.vstart = val(MMFUZZ_TD_START);
      ev.vend = val(MMFUZZ_TD_END);
      ev.npurged = val(MMFUZZ_TD_NPURGED);
      return LineStatus::event;
    default:
      return LineStatus::skipped;
  }
}

}  // namespace

std::unique_ptr<EventSource> open_event_source(const std::string& path, const SourceOptions& opts) {
  auto reader = std::make_unique<LineReader>(path);
  if (reader->head().substr(0, kTraceDatMagic.size()) != kTraceDatMagic)
    return std::make_unique<TextSource>(std::move(reader), opts);
  // libtracecmd opens the file by name and seeks: standard input works only
  // when it is a regular file, reopened through /proc.
  std::string dat_path = path;
  if (path == "-") {
    struct stat st {};
    if (::fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode))
      throw InputError(reader->name() +
                       ": a trace.dat cannot be read from a pipe; give its path instead");
    dat_path = "/proc/self/fd/0";
  }
  std::string name = reader->name();
  reader.reset();
  return std::make_unique<TraceDatSource>(dat_path, std::move(name), opts);
}

}  // namespace mmfuzz::trace
