// Event sources: LineReader (plain / gzip / zstd, stdin, bounded lines,
// damaged streams), the text source's counting and strictness, and the
// trace.dat reader checked against trace-cmd's own report of the same file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "trace/line_reader.h"
#include "trace/source.h"
#include "trace/text_parse.h"

namespace mmfuzz::trace {
namespace {

namespace fs = std::filesystem;

const std::string kTraces = MMFUZZ_TRACES_DIR;
const std::string kBootTrace = kTraces + "/arm64-6.1-boot-shell.trace.zst";
const std::string kTraceDat = kTraces + "/trace-cmd/arm64-6.1-small.trace.dat";
const std::string kReport = kTraces + "/trace-cmd/arm64-6.1-small.report.txt.zst";
const std::string kPerfSample = kTraces + "/trace-cmd/arm64-6.1-perf-script-sample.txt.zst";

// Lines of the boot trace (6.1 ftrace text), for small inputs.
const char* const kFtraceLines[] = {
    "# tracer: nop",
    "#",
    "          <idle>-0       [000] d....     0.000000: mm_page_alloc_zone_locked: "
    "page=fffffc545b0f9040 pfn=0x43e41 order=0 migratetype=0 percpu_refill=1",
    "          <idle>-0       [000] d....     0.000000: kmalloc: "
    "call_site=tracepoint_add_func+0x284/0x3b0 ptr=ffff1516c3e41380 bytes_req=64 "
    "bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false",
    "          <idle>-0       [000] d....     0.000000: kmem_cache_alloc: "
    "call_site=__trace_define_field+0x50/0xd0 ptr=ffff1516c3e40428 bytes_req=56 bytes_alloc=56 "
    "gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false",
};
// A kmalloc line whose ptr= does not parse, longer than the 200 characters
// a message quotes.
const std::string kBadKmalloc =
    "          <idle>-0       [000] d....     0.000001: kmalloc: "
    "call_site=a_function_name_long_enough_to_push_this_line_past_two_hundred_chars+0x1/0x2 "
    "ptr=zzzz bytes_req=64 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mmfuzz-src-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, std::string_view bytes) const {
    const std::string p = file(name);
    std::ofstream(p, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string gzip(std::string_view text) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(text.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string zstd(std::string_view text, bool checksum = false) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const std::size_t n = ZSTD_compress2(c, out.data(), out.size(), text.data(), text.size());
  ZSTD_freeCCtx(c);
  EXPECT_EQ(ZSTD_isError(n), 0u);
  out.resize(n);
  return out;
}

std::vector<std::string> read_lines(const std::string& path, Compression* comp = nullptr) {
  LineReader r(path);
  if (comp != nullptr) *comp = r.compression();
  std::vector<std::string> lines;
  std::string_view l;
  while (r.next(l)) {
    lines.emplace_back(l);
    EXPECT_EQ(r.line_no(), lines.size());
  }
  return lines;
}

// The InputError message of f(), "" if it did not throw one.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string drain_lines(const std::string& path) {
  return error_of([&] {
    LineReader r(path);
    std::string_view l;
    while (r.next(l)) {
    }
  });
}

std::string drain_source(const std::string& path) {
  return error_of([&] {
    auto src = open_event_source(path);
    TraceEvent ev;
    while (src->next(ev)) {
    }
  });
}

// A text of many lines of varied lengths (0 .. ~3000 bytes), ~6 MB: lines
// cross the 1 MiB read and decode chunks in every way.
std::string varied_text(std::vector<std::string>* lines) {
  std::string text;
  std::uint32_t x = 12345;
  for (int i = 0; text.size() < 6'000'000; ++i) {
    x = x * 1103515245u + 12345u;
    const std::size_t len = (x >> 8) % 3000;
    std::string line = std::to_string(i) + ":";
    line.append(len, static_cast<char>('a' + i % 26));
    text += line + "\n";
    lines->push_back(line);
  }
  return text;
}

// fd 0 replaced for the test's scope.
class StdinFrom {
 public:
  explicit StdinFrom(int fd) : saved_(::dup(STDIN_FILENO)) {
    ::dup2(fd, STDIN_FILENO);
    ::close(fd);
  }
  ~StdinFrom() {
    ::dup2(saved_, STDIN_FILENO);
    ::close(saved_);
  }
  StdinFrom(const StdinFrom&) = delete;
  StdinFrom& operator=(const StdinFrom&) = delete;

 private:
  int saved_;
};

// ---- LineReader ----

TEST(LineReader, PlainLinesAndProgress) {
  TempDir d;
  const std::string p = d.write("t.txt", "a\nbb\n\nccc\n");
  LineReader r(p);
  EXPECT_EQ(r.compression(), Compression::none);
  EXPECT_EQ(r.name(), p);
  EXPECT_EQ(r.bytes_total(), 10u);
  std::vector<std::string> got;
  std::string_view l;
  while (r.next(l)) got.emplace_back(l);
  EXPECT_EQ(got, (std::vector<std::string>{"a", "bb", "", "ccc"}));
  EXPECT_EQ(r.line_no(), 4u);
  EXPECT_EQ(r.bytes_done(), 10u);
  EXPECT_FALSE(r.next(l));  // stays at the end
}

TEST(LineReader, LastLineWithoutNewlineAndEmptyFiles) {
  TempDir d;
  EXPECT_EQ(read_lines(d.write("a", "a\nb")), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(read_lines(d.write("b", "")), std::vector<std::string>{});
  EXPECT_EQ(read_lines(d.write("c", "\n")), std::vector<std::string>{""});
  EXPECT_EQ(read_lines(d.write("d", "x")), std::vector<std::string>{"x"});
}

TEST(LineReader, CrLf) {
  TempDir d;
  // Only a '\r' before the '\n' goes; one inside a line stays.
  EXPECT_EQ(read_lines(d.write("a", "a\r\nb\r\n\r\nc\r")),
            (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(read_lines(d.write("b", "x\ry\r\n")), std::vector<std::string>{"x\ry"});
}

TEST(LineReader, GzipAndConcatenatedMembers) {
  TempDir d;
  Compression c = Compression::none;
  EXPECT_EQ(read_lines(d.write("t.gz", gzip("one\ntwo\n")), &c),
            (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(c, Compression::gzip);
  // gzip a b > c: the members' texts run on (a line may span them).
  EXPECT_EQ(read_lines(d.write("t2.gz", gzip("one\ntw") + gzip("o\nthree\n"))),
            (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(read_lines(d.write("t3.gz", gzip("x\n") + gzip("") + gzip("y"))),
            (std::vector<std::string>{"x", "y"}));
}

TEST(LineReader, ZstdAndMultipleFrames) {
  TempDir d;
  Compression c = Compression::none;
  EXPECT_EQ(read_lines(d.write("t.zst", zstd("one\ntwo\n")), &c),
            (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(c, Compression::zstd);
  EXPECT_EQ(read_lines(d.write("t2.zst", zstd("one\ntw") + zstd("o\nthree\n", true))),
            (std::vector<std::string>{"one", "two", "three"}));
}

TEST(LineReader, MagicWinsOverExtension) {
  TempDir d;
  Compression c = Compression::none;
  EXPECT_EQ(read_lines(d.write("gz-named.zst", gzip("g\n")), &c), std::vector<std::string>{"g"});
  EXPECT_EQ(c, Compression::gzip);
  EXPECT_EQ(read_lines(d.write("zst-named.txt", zstd("z\n")), &c), std::vector<std::string>{"z"});
  EXPECT_EQ(c, Compression::zstd);
  EXPECT_EQ(read_lines(d.write("plain.gz", "p\n"), &c), std::vector<std::string>{"p"});
  EXPECT_EQ(c, Compression::none);
  EXPECT_EQ(read_lines(d.write("plain.zst", "q"), &c), std::vector<std::string>{"q"});
  EXPECT_EQ(c, Compression::none);
}

TEST(LineReader, LargeInputsAcrossChunks) {
  TempDir d;
  std::vector<std::string> want;
  const std::string text = varied_text(&want);
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"big.txt", text}, {"big.txt.gz", gzip(text)}, {"big.txt.zst", zstd(text)}}) {
    SCOPED_TRACE(name);
    const std::string p = d.write(name, bytes);
    LineReader r(p);
    std::size_t i = 0;
    std::uint64_t last_done = 0;
    std::string_view l;
    bool same = true;
    while (r.next(l)) {
      if (i >= want.size() || l != want[i]) same = false;
      ++i;
      EXPECT_GE(r.bytes_done(), last_done);
      last_done = r.bytes_done();
    }
    EXPECT_TRUE(same);
    EXPECT_EQ(i, want.size());
    EXPECT_EQ(r.bytes_done(), bytes.size());
    EXPECT_EQ(r.bytes_total(), bytes.size());
  }
}

TEST(LineReader, LineLengthLimit) {
  TempDir d;
  const std::string max(kMaxLineBytes, 'x');
  // Exactly 1 MiB is fine, with "\n", "\r\n" or at the end of the file.
  EXPECT_EQ(read_lines(d.write("ok1", "a\n" + max + "\nb\n")).at(1).size(), kMaxLineBytes);
  EXPECT_EQ(read_lines(d.write("ok2", "a\n" + max + "\r\nb\n")).at(1).size(), kMaxLineBytes);
  EXPECT_EQ(read_lines(d.write("ok3", max)).at(0).size(), kMaxLineBytes);
  // One byte more is an error naming the line, terminated or not, whatever
  // the compression.
  const std::string over = "a\n" + max + "y\nb\n";
  const std::string p = d.write("long.txt", over);
  EXPECT_EQ(drain_lines(p), p + ":2: line longer than 1 MiB");
  const std::string pz = d.write("long.zst", zstd(over));
  EXPECT_EQ(drain_lines(pz), pz + ":2: line longer than 1 MiB");
  const std::string pg = d.write("long.gz", gzip("a\nb\n" + max + max));
  EXPECT_EQ(drain_lines(pg), pg + ":3: line longer than 1 MiB");
  // No newline at all for 3 MiB: the reader stops at its bound.
  const std::string pn = d.write("nonl", std::string(3 * kMaxLineBytes, 'z'));
  EXPECT_EQ(drain_lines(pn), pn + ":1: line longer than 1 MiB");
}

TEST(LineReader, TruncatedZstd) {
  TempDir d;
  std::vector<std::string> unused;
  const std::string full = zstd(varied_text(&unused));
  for (const std::size_t keep :
       {full.size() - 1, full.size() / 2, std::size_t{4}, std::size_t{9}}) {
    SCOPED_TRACE(keep);
    const std::string p = d.write("t.zst", full.substr(0, keep));
    EXPECT_EQ(drain_lines(p), p + ": truncated zstd stream (ended inside a frame)");
  }
  // A complete frame, then a cut one.
  const std::string two = zstd("a\n") + zstd("b\nc\n").substr(0, 8);
  const std::string p2 = d.write("t2.zst", two);
  EXPECT_EQ(drain_lines(p2), p2 + ": truncated zstd stream (ended inside a frame)");
}

TEST(LineReader, TruncatedGzip) {
  TempDir d;
  std::vector<std::string> unused;
  const std::string full = gzip(varied_text(&unused));
  // Without the trailer's length, without the CRC too, in the middle, in the
  // header.
  for (const std::size_t keep :
       {full.size() - 1, full.size() - 4, full.size() - 8, full.size() / 2, std::size_t{5}}) {
    SCOPED_TRACE(keep);
    const std::string p = d.write("t.gz", full.substr(0, keep));
    EXPECT_EQ(drain_lines(p), p + ": truncated gzip stream (ended inside a member)");
  }
  const std::string p2 = d.write("t2.gz", gzip("a\n") + gzip("b\n").substr(0, 12));
  EXPECT_EQ(drain_lines(p2), p2 + ": truncated gzip stream (ended inside a member)");
}

TEST(LineReader, CorruptData) {
  TempDir d;
  std::vector<std::string> unused;
  const std::string text = varied_text(&unused);
  std::string g = gzip(text);
  g[g.size() - 6] = static_cast<char>(g[g.size() - 6] ^ 0x55);  // the CRC
  const std::string pg = d.write("crc.gz", g);
  EXPECT_EQ(drain_lines(pg), pg + ": corrupt gzip data (incorrect data check)");
  // Compression method 9 does not exist.
  const std::string pg2 = d.write("junk.gz", std::string("\x1f\x8b\x09\x00", 4) + "nonsense!");
  EXPECT_NE(drain_lines(pg2).find(pg2 + ": corrupt gzip data ("), std::string::npos);
  // Trailing junk after a member is not silently dropped.
  const std::string pg3 = d.write("tail.gz", gzip("a\n") + "junk after the member");
  EXPECT_NE(drain_lines(pg3).find(pg3 + ": corrupt gzip data ("), std::string::npos);

  std::string z = zstd(text, /*checksum=*/true);
  z[z.size() - 2] = static_cast<char>(z[z.size() - 2] ^ 0x55);  // the content checksum
  const std::string pz = d.write("sum.zst", z);
  EXPECT_EQ(drain_lines(pz), pz + ": corrupt zstd data (Restored data doesn't match checksum)");
  const std::string pz2 =
      d.write("junk.zst", std::string("\x28\xb5\x2f\xfd", 4) + "nonsense bytes");
  EXPECT_NE(drain_lines(pz2).find(pz2 + ": corrupt zstd data ("), std::string::npos);
}

TEST(LineReader, MissingFileAndDirectory) {
  TempDir d;
  const std::string missing = d.file("trace.txt");
  EXPECT_EQ(drain_lines(missing), missing + ": No such file or directory");
  EXPECT_EQ(drain_source(missing), missing + ": No such file or directory");
  const std::string dir = d.file("dir");
  fs::create_directory(dir);
  EXPECT_EQ(drain_lines(dir), dir + ": Is a directory");
  EXPECT_EQ(drain_source(dir), dir + ": Is a directory");
}

// Root ignores permission bits: then a child drops to "nobody" to try.
TEST(LineReader, PermissionDenied) {
  TempDir d;
  const std::string locked = d.write("locked.txt", "x\n");
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(d.file(""), fs::perms::all);
  if (::geteuid() != 0) {
    fs::permissions(locked, fs::perms::none);
    EXPECT_EQ(drain_lines(locked), locked + ": Permission denied");
    return;
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg = "cannot drop privileges";
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) msg = drain_lines(locked);
    if (::write(fds[1], msg.data(), msg.size()) < 0) ::_exit(2);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    msg.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(msg, locked + ": Permission denied");
}

TEST(LineReader, StandardInputFromAPipe) {
  std::vector<std::string> want;
  const std::string text = varied_text(&want);
  for (const bool compressed : {false, true}) {
    SCOPED_TRACE(compressed);
    const std::string bytes = compressed ? zstd(text) : text;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    // The writer feeds the pipe in pieces while the reader reads.
    std::thread writer([fd = fds[1], &bytes] {
      std::size_t off = 0;
      while (off < bytes.size()) {
        const std::size_t n = std::min<std::size_t>(bytes.size() - off, 70'000);
        const ssize_t w = ::write(fd, bytes.data() + off, n);
        if (w <= 0) break;
        off += static_cast<std::size_t>(w);
      }
      ::close(fd);
    });
    std::size_t n = 0;
    bool same = true;
    {
      StdinFrom in(fds[0]);
      LineReader r("-");
      EXPECT_EQ(r.name(), "<stdin>");
      EXPECT_EQ(r.compression(), compressed ? Compression::zstd : Compression::none);
      std::string_view l;
      while (r.next(l)) {
        if (n >= want.size() || l != want[n]) same = false;
        ++n;
      }
      EXPECT_EQ(r.bytes_total(), 0u);  // a pipe has no size
      EXPECT_EQ(r.bytes_done(), bytes.size());
    }
    writer.join();
    EXPECT_TRUE(same);
    EXPECT_EQ(n, want.size());
  }
}

// ---- The text source ----

std::string join_lines(std::initializer_list<std::string> lines) {
  std::string s;
  for (const std::string& l : lines) s += l + "\n";
  return s;
}

TEST(TextSource, CountsLinesEventsAndSkips) {
  TempDir d;
  const std::string p = d.write(
      "t.txt", join_lines({kFtraceLines[0], kFtraceLines[1], kFtraceLines[2], kFtraceLines[3],
                           "          <idle>-0       [000] d....     0.000002: sched_switch: x=1",
                           kFtraceLines[4]}));
  auto src = open_event_source(p);
  EXPECT_EQ(src->format(), SourceFormat::text);
  EXPECT_EQ(src->name(), p);
  TraceEvent ev;
  std::vector<std::pair<EventType, std::uint64_t>> got;
  while (src->next(ev)) got.emplace_back(ev.type, src->line());
  EXPECT_EQ(got, (std::vector<std::pair<EventType, std::uint64_t>>{
                     {EventType::mm_page_alloc_zone_locked, 3},
                     {EventType::kmalloc, 4},
                     {EventType::kmem_cache_alloc, 6}}));
  EXPECT_EQ(src->text_format(), TextFormat::ftrace);
  EXPECT_EQ(src->stats().lines, 6u);
  EXPECT_EQ(src->stats().events, 3u);
  EXPECT_EQ(src->stats().skipped, 3u);  // two comments, sched_switch
  EXPECT_EQ(src->stats().malformed, 0u);
  EXPECT_EQ(src->compression(), Compression::none);
}

TEST(TextSource, MalformedLinesLenientAndStrict) {
  TempDir d;
  const std::string p =
      d.write("bad.txt", join_lines({kFtraceLines[0], kFtraceLines[3], kBadKmalloc, kFtraceLines[4],
                                     kBadKmalloc, kBadKmalloc, kBadKmalloc}));
  const std::string first_warning =
      p + ":3: kmalloc: bad ptr= value 'zzzz': " + kBadKmalloc.substr(0, 200) + "...";
  {
    SourceOptions opts;
    opts.max_warnings_kept = 2;
    auto src = open_event_source(p, opts);
    TraceEvent ev;
    int events = 0;
    while (src->next(ev)) ++events;
    EXPECT_EQ(events, 2);
    EXPECT_EQ(src->stats().malformed, 4u);
    ASSERT_EQ(src->stats().warnings.size(), 2u);
    EXPECT_EQ(src->stats().warnings[0], first_warning);
    EXPECT_EQ(src->stats().warnings[1].substr(0, p.size() + 3), p + ":5:");
  }
  {
    SourceOptions opts;
    opts.strict = true;
    auto src = open_event_source(p, opts);
    TraceEvent ev;
    ASSERT_TRUE(src->next(ev));  // line 2
    EXPECT_EQ(error_of([&] { src->next(ev); }), first_warning);
  }
}

TEST(TextSource, QuotedLinesAreOneLineAndCut) {
  TempDir d;
  // A control character in a bad line does not break the one-line message.
  std::string bad = kBadKmalloc;
  bad.replace(bad.find("a_function"), 1, "\x1b");
  const std::string p = d.write("ctl.txt", bad + "\n");
  SourceOptions opts;
  opts.strict = true;
  const std::string msg = error_of([&] {
    auto src = open_event_source(p, opts);
    TraceEvent ev;
    while (src->next(ev)) {
    }
  });
  EXPECT_EQ(msg.find('\x1b'), std::string::npos);
  EXPECT_NE(msg.find("call_site=?_function"), std::string::npos);
  EXPECT_EQ(msg.size(), (p + ":1: kmalloc: bad ptr= value 'zzzz': ").size() + 200 + 3);
}

TEST(TextSource, LostEventsAreCountedAndDelivered) {
  TempDir d;
  const std::string p =
      d.write("lost.txt", join_lines({kFtraceLines[3], "CPU:1 [LOST 42 EVENTS]", kFtraceLines[4],
                                      "CPU:0 [LOST EVENTS]", "CPU:1 [LOST 8 EVENTS]"}));
  auto src = open_event_source(p);
  TraceEvent ev;
  std::vector<std::tuple<EventType, int, std::uint64_t>> got;
  while (src->next(ev)) got.emplace_back(ev.type, ev.cpu, ev.lost);
  EXPECT_EQ(got, (std::vector<std::tuple<EventType, int, std::uint64_t>>{
                     {EventType::kmalloc, 0, 0},
                     {EventType::lost_events, 1, 42},
                     {EventType::kmem_cache_alloc, 0, 0},
                     {EventType::lost_events, 0, 0},
                     {EventType::lost_events, 1, 8}}));
  EXPECT_EQ(src->stats().lost_markers, 3u);
  EXPECT_EQ(src->stats().lost_events, 50u);
  EXPECT_EQ(src->stats().events, 5u);
}

TEST(TextSource, StandardInput) {
  const std::string text = join_lines({kFtraceLines[2], kFtraceLines[3]});
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  StdinFrom in(fds[0]);
  auto src = open_event_source("-");
  EXPECT_EQ(src->name(), "<stdin>");
  TraceEvent ev;
  int n = 0;
  while (src->next(ev)) ++n;
  EXPECT_EQ(n, 2);
  EXPECT_EQ(src->bytes_total(), 0u);
}

// The embedded trace (README: 423,632 entries, nothing lost). Every entry is
// delivered: 423,625 kmem events of the 11 types plus 7 tracing_mark_write
// phase markers; the 12 "#" header lines are the only skipped lines.
TEST(TextSource, EmbeddedBootTraceReadsFully) {
  auto src = open_event_source(kBootTrace);
  EXPECT_EQ(src->compression(), Compression::zstd);
  std::map<EventType, std::uint64_t> n;
  TraceEvent ev;
  while (src->next(ev)) n[ev.type]++;
  const std::map<EventType, std::uint64_t> want = {
      {EventType::kmem_cache_alloc, 129'807},
      {EventType::kmem_cache_free, 93'744},
      {EventType::mm_page_alloc, 43'892},
      {EventType::mm_page_free, 37'480},
      {EventType::mm_page_alloc_zone_locked, 29'279},
      {EventType::kmalloc, 24'101},
      {EventType::mm_page_free_batched, 21'015},
      {EventType::kfree, 17'548},
      {EventType::mm_page_pcpu_drain, 15'945},
      {EventType::rss_stat, 10'801},
      {EventType::mm_page_alloc_extfrag, 13},
      {EventType::marker, 7},
  };
  EXPECT_EQ(n, want);
  const SourceStats& st = src->stats();
  EXPECT_EQ(st.events, 423'632u);
  EXPECT_EQ(st.lines, 423'644u);
  EXPECT_EQ(st.skipped, 12u);
  EXPECT_EQ(st.malformed, 0u);
  EXPECT_EQ(st.lost_markers, 0u);
  EXPECT_EQ(src->text_format(), TextFormat::ftrace);
  EXPECT_EQ(src->bytes_done(), src->bytes_total());
  EXPECT_EQ(src->bytes_total(), fs::file_size(kBootTrace));
}

// perf script: 3,000 lines, every one a kmem event.
TEST(TextSource, PerfScriptSample) {
  auto src = open_event_source(kPerfSample);
  TraceEvent ev;
  std::uint64_t n = 0;
  while (src->next(ev)) ++n;
  EXPECT_EQ(src->text_format(), TextFormat::perf_script);
  EXPECT_EQ(src->stats().lines, 3000u);
  EXPECT_EQ(n, 3000u);
  EXPECT_EQ(src->stats().malformed, 0u);
}

// ---- trace.dat ----

TEST(TraceDat, CountsOfTheSmallTrace) {
  auto src = open_event_source(kTraceDat);
  EXPECT_EQ(src->format(), SourceFormat::trace_dat);
  EXPECT_EQ(src->text_format(), TextFormat::unknown);
  std::map<EventType, std::uint64_t> n;
  TraceEvent ev;
  std::uint64_t last_ts = 0;
  bool ordered = true;
  while (src->next(ev)) {
    n[ev.type]++;
    if (ev.ts_ns < last_ts) ordered = false;
    last_ts = ev.ts_ns;
  }
  EXPECT_TRUE(ordered);
  // report-stat.txt: 25,656 + 104,811 records, all kmem but 6 markers.
  const std::map<EventType, std::uint64_t> want = {
      {EventType::kfree, 5'136},
      {EventType::kmalloc, 3'272},
      {EventType::kmem_cache_alloc, 37'047},
      {EventType::kmem_cache_free, 39'031},
      {EventType::mm_page_alloc, 12'246},
      {EventType::mm_page_alloc_extfrag, 3},
      {EventType::mm_page_alloc_zone_locked, 3'858},
      {EventType::mm_page_free, 13'064},
      {EventType::mm_page_free_batched, 7'071},
      {EventType::mm_page_pcpu_drain, 3'982},
      {EventType::rss_stat, 5'751},
      {EventType::marker, 6},
  };
  EXPECT_EQ(n, want);
  EXPECT_EQ(src->stats().events, 130'467u);
  EXPECT_EQ(src->stats().lines, 130'467u);
  EXPECT_EQ(src->line(), 130'467u);
  EXPECT_EQ(src->stats().skipped, 0u);
  EXPECT_EQ(src->stats().malformed, 0u);
  EXPECT_EQ(src->bytes_done(), fs::file_size(kTraceDat));
  EXPECT_EQ(src->bytes_total(), fs::file_size(kTraceDat));
}

// Every event against trace-cmd's report of the same file (parsed by the
// text parser; the report prints microseconds and raw fields for mm_page_*).
TEST(TraceDat, EqualsTheTraceCmdReport) {
  auto dat = open_event_source(kTraceDat);
  auto rep = open_event_source(kReport);
  TraceEvent a, b;
  std::uint64_t n = 0, mismatches = 0;
  while (dat->next(a)) {
    ASSERT_TRUE(rep->next(b)) << "report ends at event " << n;
    ++n;
    // Views die with the next event: compare now, report a few.
    const auto check = [&](bool ok, const char* what) {
      if (ok) return;
      if (++mismatches <= 10)
        ADD_FAILURE() << "event " << n << " (" << event_type_name(a.type) << ", report line "
                      << rep->line() << "): " << what << " differs";
    };
    check(a.type == b.type, "type");
    check(a.cpu == b.cpu, "cpu");
    check(a.pid == b.pid, "pid");
    check(a.comm == b.comm, "comm");
    check((a.ts_ns + 500) / 1000 == b.ts_ns / 1000, "ts");  // the report rounds to µs
    check(a.call_site == b.call_site, "call_site");
    check(a.ptr == b.ptr, "ptr");
    check(a.bytes_req == b.bytes_req, "bytes_req");
    check(a.bytes_alloc == b.bytes_alloc, "bytes_alloc");
    check(a.gfp == b.gfp && a.has_gfp == b.has_gfp, "gfp");
    check(a.node == b.node, "node");
    check(a.accounted == b.accounted, "accounted");
    check(a.name == b.name, "name");
    check(a.pfn == b.pfn, "pfn");
    check(a.order == b.order, "order");
    check(a.migratetype == b.migratetype, "migratetype");
    check(a.percpu_refill == b.percpu_refill, "percpu_refill");
    check(a.failed == b.failed, "failed");
    check(a.alloc_order == b.alloc_order && a.fallback_order == b.fallback_order &&
              a.alloc_migratetype == b.alloc_migratetype &&
              a.fallback_migratetype == b.fallback_migratetype && a.fragmenting == b.fragmenting &&
              a.change_ownership == b.change_ownership,
          "extfrag fields");
    check(a.size == b.size, "size");
    check(a.fields == b.fields, "fields");
  }
  EXPECT_FALSE(rep->next(b));
  EXPECT_EQ(n, 130'467u);
  EXPECT_EQ(mismatches, 0u);
}

// A few events spelled out, so a shared misreading cannot hide.
TEST(TraceDat, FirstEvents) {
  auto src = open_event_source(kTraceDat);
  TraceEvent ev;
  ASSERT_TRUE(src->next(ev));
  EXPECT_EQ(ev.type, EventType::kmem_cache_alloc);
  EXPECT_EQ(ev.comm, "workload");
  EXPECT_EQ(ev.pid, 108);
  EXPECT_EQ(ev.cpu, 0);
  EXPECT_EQ(ev.ts_ns, 5'526'684'560u);
  EXPECT_EQ(ev.call_site, "getname_flags.part.0+0x3c");
  EXPECT_EQ(ev.ptr, 0xffff0cc5c267c000u);
  EXPECT_EQ(ev.bytes_req, 4096u);
  EXPECT_EQ(ev.bytes_alloc, 4096u);
  EXPECT_EQ(ev.gfp, 0xcc0u);  // GFP_KERNEL
  EXPECT_EQ(ev.node, -1);
  EXPECT_FALSE(ev.accounted);
  ASSERT_TRUE(src->next(ev));
  EXPECT_EQ(ev.type, EventType::mm_page_alloc);
  EXPECT_EQ(ev.comm, "trace-cmd");
  EXPECT_EQ(ev.cpu, 1);
  EXPECT_EQ(ev.pfn, 0x41e73u);
  EXPECT_EQ(ev.order, 0u);
  EXPECT_EQ(ev.gfp, 0x140ccau);
  EXPECT_EQ(ev.migratetype, 1);
  ASSERT_TRUE(src->next(ev));
  EXPECT_EQ(ev.type, EventType::kmalloc);
  EXPECT_EQ(ev.call_site, "alloc_bprm+0x38");
  EXPECT_EQ(ev.bytes_req, 416u);
  EXPECT_EQ(ev.gfp, 0xdc0u);  // GFP_KERNEL|__GFP_ZERO
  // The markers' text.
  std::vector<std::string> markers;
  while (src->next(ev))
    if (ev.type == EventType::marker) markers.emplace_back(ev.fields);
  ASSERT_EQ(markers.size(), 6u);
  EXPECT_EQ(markers[0], "ktrace2 phase: start");
  EXPECT_EQ(markers[1], "ktrace2 phase: create 100 small files");
}

TEST(TraceDat, DamagedFilesAreInputErrors) {
  TempDir d;
  const std::string dat = read_file(kTraceDat);
  for (const std::size_t keep : {std::size_t{100} << 10, std::size_t{1} << 20, dat.size() - 5000,
                                 std::size_t{10}, std::size_t{40}}) {
    SCOPED_TRACE(keep);
    const std::string p = d.write("cut.dat", dat.substr(0, keep));
    const std::string msg = drain_source(p);
    EXPECT_EQ(msg.substr(0, p.size() + 2), p + ": ");
    EXPECT_NE(msg.find("trace.dat"), std::string::npos) << msg;
  }
  std::string garbage = dat.substr(0, 10);
  std::uint32_t x = 7;
  while (garbage.size() < 200'000) {
    x = x * 1103515245u + 12345u;
    garbage.push_back(static_cast<char>(x >> 16));
  }
  const std::string pg = d.write("garbage.dat", garbage);
  EXPECT_NE(drain_source(pg).find(pg + ": unsupported trace.dat version"), std::string::npos);
  garbage.replace(10, 2, std::string("7\0", 2));
  const std::string pg7 = d.write("garbage7.dat", garbage);
  EXPECT_EQ(drain_source(pg7),
            pg7 + ": corrupt or truncated trace.dat (libtracecmd cannot open it)");
}

// A damaged compressed chunk of CPU data: libtracecmd just stops that CPU;
// the reader notices the CPU's records end short of its data.
TEST(TraceDat, DamagedCpuDataIsAnInputError) {
  TempDir d;
  std::string dat = read_file(kTraceDat);
  // Inside CPU 1's compressed data (checked: it opens, then a chunk fails).
  dat[700'000] = static_cast<char>(dat[700'000] ^ 0x5a);
  const std::string p = d.write("bad.dat", dat);
  const std::string msg = drain_source(p);
  EXPECT_NE(msg.find(p + ": corrupt trace.dat: CPU "), std::string::npos) << msg;
}

// trace-cmd convert --file-version 6 writes the uncompressed v6 layout; ""
// when trace-cmd is not installed. cpu_offsets: where each CPU's data
// starts, from convert's output ("CPU0 data recorded at offset=0x1f6000").
std::string convert_v6(const TempDir& d, std::vector<std::uint64_t>* cpu_offsets) {
  const std::string out = d.file("v6.dat");
  const std::string cmd = "trace-cmd convert --file-version 6 --compression none -i '" + kTraceDat +
                          "' -o '" + out + "' 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned cpu = 0;
    unsigned long long off = 0;
    if (std::sscanf(line, "CPU%u data recorded at offset=0x%llx", &cpu, &off) == 2)
      cpu_offsets->push_back(off);
  }
  if (::pclose(f) != 0 || !fs::exists(out)) return "";
  return out;
}

// A truncated v6 file makes libtracecmd 3.1.6 crash in tracecmd_close();
// the reader must refuse it first.
TEST(TraceDat, TruncatedVersion6) {
  TempDir d;
  std::vector<std::uint64_t> cpu_off;
  const std::string v6 = convert_v6(d, &cpu_off);
  if (v6.empty()) GTEST_SKIP() << "trace-cmd is not installed";
  {
    auto src = open_event_source(v6);
    TraceEvent ev;
    std::uint64_t n = 0;
    while (src->next(ev)) ++n;
    EXPECT_EQ(n, 130'467u);
  }
  const std::string full = read_file(v6);
  // Cut inside CPU 1's data, inside CPU 0's, inside the kallsyms.
  for (const std::size_t cut : {std::size_t{1}, std::size_t{5000}, full.size() / 2,
                                full.size() - 3'000'000, full.size() - 1'000'000}) {
    SCOPED_TRACE(cut);
    const std::string p = d.write("cut6.dat", full.substr(0, full.size() - cut));
    const std::string msg = drain_source(p);
    EXPECT_NE(msg.find(p + ": truncated trace.dat"), std::string::npos) << msg;
  }
}

// The ring buffer marks dropped events in a sub-buffer's header: the commit
// word (after the u64 time stamp) has RB_MISSED_EVENTS (bit 31) and, when
// the count is stored after the page's data, RB_MISSED_STORED (bit 30).
// Marked pages of a v6 copy give lost-events markers before their first
// record.
TEST(TraceDat, LostEventsFromPageHeaders) {
  TempDir d;
  std::vector<std::uint64_t> cpu_off;
  const std::string v6 = convert_v6(d, &cpu_off);
  if (v6.empty()) GTEST_SKIP() << "trace-cmd is not installed";
  ASSERT_EQ(cpu_off.size(), 2u);
  std::string bytes = read_file(v6);
  const auto mark = [&](std::uint64_t page, bool stored, std::uint64_t count) {
    std::uint64_t commit = 0;
    std::memcpy(&commit, bytes.data() + page + 8, 8);
    const std::uint64_t size = commit & 0xfffffff;
    commit |= std::uint64_t{1} << 31;
    if (stored) {
      commit |= std::uint64_t{1} << 30;
      std::memcpy(bytes.data() + page + 16 + size, &count, 8);
    }
    std::memcpy(bytes.data() + page + 8, &commit, 8);
  };
  mark(cpu_off[0] + 4096, true, 77);      // CPU 0's second page: 77 lost
  mark(cpu_off[1] + 2 * 4096, false, 0);  // CPU 1's third: some lost
  const std::string p = d.write("lost.dat", bytes);
  auto src = open_event_source(p);
  TraceEvent ev;
  std::vector<std::pair<int, std::uint64_t>> lost;
  std::uint64_t n = 0;
  int expect_cpu = -1;
  while (src->next(ev)) {
    ++n;
    if (expect_cpu >= 0) {
      EXPECT_EQ(ev.cpu, expect_cpu);  // the record the marker precedes
      expect_cpu = -1;
    }
    if (ev.type == EventType::lost_events) {
      lost.emplace_back(ev.cpu, ev.lost);
      expect_cpu = ev.cpu;
    }
  }
  std::sort(lost.begin(), lost.end());
  EXPECT_EQ(lost, (std::vector<std::pair<int, std::uint64_t>>{{0, 77}, {1, 0}}));
  EXPECT_EQ(n, 130'469u);
  EXPECT_EQ(src->stats().events, 130'469u);
  EXPECT_EQ(src->stats().lines, 130'467u);
  EXPECT_EQ(src->stats().lost_markers, 2u);
  EXPECT_EQ(src->stats().lost_events, 77u);
}

TEST(TraceDat, StandardInput) {
  // Redirected from the file: read through /proc/self/fd/0.
  {
    const int fd = ::open(kTraceDat.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    StdinFrom in(fd);
    auto src = open_event_source("-");
    EXPECT_EQ(src->format(), SourceFormat::trace_dat);
    EXPECT_EQ(src->name(), "<stdin>");
    TraceEvent ev;
    std::uint64_t n = 0;
    while (src->next(ev)) ++n;
    EXPECT_EQ(n, 130'467u);
  }
  // From a pipe: refused with a reason.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string head = read_file(kTraceDat).substr(0, 4096);
  ASSERT_EQ(::write(fds[1], head.data(), head.size()), static_cast<ssize_t>(head.size()));
  ::close(fds[1]);
  StdinFrom in(fds[0]);
  EXPECT_EQ(drain_source("-"),
            "<stdin>: a trace.dat cannot be read from a pipe; give its path instead");
}

TEST(TraceDat, CompressedTraceDatIsNamed) {
  TempDir d;
  const std::string p = d.write("t.dat.zst", zstd(read_file(kTraceDat).substr(0, 100'000)));
  EXPECT_EQ(drain_source(p),
            p + ": a compressed trace.dat: decompress it first (libtracecmd reads only "
                "uncompressed files)");
}

}  // namespace
}  // namespace mmfuzz::trace
