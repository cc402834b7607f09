// A plain main() for fuzz targets built without a fuzzing engine
// (MMFUZZ_FUZZ_ENGINE=driver, any compiler): ctest replays corpora with it,
// and the "builtin" campaign engine generates inputs with it.
//
//   fuzz_X [flags] [FILE|DIR ...]
//
// Replay (no -runs / -max_total_time): every FILE, and every regular file of
// every DIR (sorted), runs once through LLVMFuzzerTestOneInput; then
// "ran N inputs", exit 0.
//
// Generate (-runs=N and/or -max_total_time=S): a mutation loop without
// coverage feedback. The inputs given (or one empty input) seed a bounded
// pool; each step picks a pool entry, mutates it (the target's
// LLVMFuzzerCustomMutator if it has one, else the built-in byte mutator,
// which is also this driver's LLVMFuzzerMutate) and runs it. -seed=S makes
// the sequence deterministic (0 or none: a seed is picked and printed);
// -max_len=N (default 4096); -dict=FILE adds a libFuzzer/AFL dictionary's
// tokens to the byte mutator; -artifact_prefix=P says where a crashing
// input goes (P + "crash-<hash>").
//
// Other "-flag=value" arguments (libFuzzer's) are ignored with a warning.
// Bad values and missing files: one line on stderr, exit 2.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "mm/types.h"

extern "C" {
int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
__attribute__((weak)) std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                                          std::size_t max_size, unsigned seed);
__attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)(void));
std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);
}

namespace {

constexpr const char* kTag = "==mmfuzz-driver==";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "%s error: %s\n", kTag, msg.c_str());
  std::exit(2);
}

// ---- Random numbers: splitmix64, the same sequence everywhere ----

struct Rng : mmfuzz::mm::SplitMix64 {
  bool one_in(std::uint64_t n) { return below(n) == 0; }
};

Rng g_rng;
std::vector<std::string> g_dict;  // -dict tokens

// ---- The input being run, for the crash handlers ----

const std::uint8_t* volatile g_cur_data = nullptr;
volatile std::size_t g_cur_size = 0;
volatile bool g_generate = false;           // write artifacts (generate mode)
const char* volatile g_cur_file = nullptr;  // replay mode: the file being run
char g_artifact_prefix[4096] = "./";
volatile sig_atomic_t g_in_handler = 0;

constexpr int kCrashSignals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
struct sigaction g_old_actions[std::size(kCrashSignals)];

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}
void write_str(int fd, const char* s) {
  write_all(fd, s, std::strlen(s));
}

// Async-signal-safe: only open/write/close and plain computation.
void dump_current_input() {
  if (g_in_handler) return;
  g_in_handler = 1;
  if (!g_generate) {
    const char* f = g_cur_file;
    if (f != nullptr) {
      write_str(STDERR_FILENO, kTag);
      write_str(STDERR_FILENO, " crash while running ");
      write_str(STDERR_FILENO, f);
      write_str(STDERR_FILENO, "\n");
    }
    return;
  }
  const std::uint8_t* data = g_cur_data;
  const std::size_t size = g_cur_size;
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 0x100000001b3ull;
  char path[sizeof g_artifact_prefix + 32];
  std::size_t n = 0;
  for (const char* p = g_artifact_prefix; *p != '\0' && n < sizeof g_artifact_prefix; ++p)
    path[n++] = *p;
  for (const char* p = "crash-"; *p != '\0'; ++p) path[n++] = *p;
  for (int i = 15; i >= 0; --i) path[n++] = "0123456789abcdef"[(h >> (4 * i)) & 0xf];
  path[n] = '\0';
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    write_str(STDERR_FILENO, kTag);
    write_str(STDERR_FILENO, " cannot write crash input to ");
    write_str(STDERR_FILENO, path);
    write_str(STDERR_FILENO, "\n");
    return;
  }
  if (size > 0) write_all(fd, reinterpret_cast<const char*>(data), size);
  ::close(fd);
  write_str(STDERR_FILENO, kTag);
  write_str(STDERR_FILENO, " crash input written to ");
  write_str(STDERR_FILENO, path);
  write_str(STDERR_FILENO, "\n");
}

void crash_handler(int sig) {
  dump_current_input();
  // Back to the action before ours (the default, or a sanitizer's), then
  // the signal again: pending until we return (a fault re-faults).
  for (std::size_t i = 0; i < std::size(kCrashSignals); ++i)
    if (kCrashSignals[i] == sig) sigaction(sig, &g_old_actions[i], nullptr);
  raise(sig);
}

void sanitizer_death_callback() {
  dump_current_input();
}

void install_crash_handlers() {
  for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
    struct sigaction sa {};
    sa.sa_handler = crash_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(kCrashSignals[i], &sa, &g_old_actions[i]);
  }
  // A sanitizer report without abort_on_error exits without a signal.
  if (__sanitizer_set_death_callback != nullptr)
    __sanitizer_set_death_callback(sanitizer_death_callback);
}

void run_one(const std::uint8_t* data, std::size_t size) {
  g_cur_data = data;
  g_cur_size = size;
  LLVMFuzzerTestOneInput(data, size);
}

// ---- Flags ----

struct Flags {
  bool generate = false;
  std::uint64_t runs = 0;  // 0 with generate: until max_total_time
  bool has_runs = false;
  std::uint64_t max_total_time = 0;
  std::uint64_t seed = 0;
  std::size_t max_len = 4096;
  std::string artifact_prefix = "./";
  std::string dict;
  std::vector<std::string> paths;
};

std::uint64_t parse_u64(std::string_view flag, std::string_view v, std::uint64_t max) {
  std::uint64_t x = 0;
  if (v.empty() || v.size() > 20)
    usage_error("bad value for -" + std::string(flag) + ": '" + std::string(v) + "'");
  for (const char c : v) {
    if (c < '0' || c > '9' || x > (max - static_cast<std::uint64_t>(c - '0')) / 10)
      usage_error("bad value for -" + std::string(flag) + ": '" + std::string(v) + "'");
    x = x * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return x;
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.size() < 2 || a[0] != '-') {
      f.paths.emplace_back(a);
      continue;
    }
    std::string_view body = a.substr(a[1] == '-' ? 2 : 1);
    const std::size_t eq = body.find('=');
    const std::string_view name = body.substr(0, eq);
    const bool has_value = eq != std::string_view::npos;
    const std::string_view value = has_value ? body.substr(eq + 1) : std::string_view{};
    const auto need_value = [&] {
      if (!has_value) usage_error("flag -" + std::string(name) + " needs a value (-name=value)");
    };
    if (name == "runs") {
      need_value();
      // libFuzzer's -runs=-1: no limit.
      f.runs = value == "-1" ? 0 : parse_u64(name, value, UINT64_MAX);
      f.has_runs = value != "-1";
      f.generate = true;
    } else if (name == "max_total_time") {
      need_value();
      f.max_total_time = parse_u64(name, value, 100u * 365 * 24 * 3600);
      if (f.max_total_time > 0) f.generate = true;
    } else if (name == "seed") {
      need_value();
      f.seed = parse_u64(name, value, UINT32_MAX);
    } else if (name == "max_len") {
      need_value();
      f.max_len = static_cast<std::size_t>(parse_u64(name, value, std::size_t{1} << 30));
      if (f.max_len == 0) usage_error("bad value for -max_len: '0'");
    } else if (name == "artifact_prefix") {
      need_value();
      if (value.size() >= sizeof g_artifact_prefix) usage_error("-artifact_prefix is too long");
      f.artifact_prefix = value;
    } else if (name == "dict") {
      need_value();
      f.dict = value;
    } else {
      std::fprintf(stderr, "%s warning: ignoring flag %s\n", kTag, argv[i]);
    }
  }
  return f;
}

// ---- Dictionaries (libFuzzer / AFL format: [name=]"token", # comments) ----

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string> read_dict(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage_error(path + ": cannot read dictionary: " + std::strerror(errno));
  std::vector<std::string> out;
  std::string line;
  std::size_t line_no = 0;
  const auto bad = [&](const char* why) {
    usage_error(path + ":" + std::to_string(line_no) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view l = line;
    while (!l.empty() && (l.back() == ' ' || l.back() == '\t' || l.back() == '\r'))
      l.remove_suffix(1);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (l.empty() || l.front() == '#') continue;
    const std::size_t q = l.find('"');
    if (q == std::string_view::npos || l.size() < q + 2 || l.back() != '"')
      bad("not a dictionary entry (expected \"token\")");
    const std::string_view body = l.substr(q + 1, l.size() - q - 2);
    std::string tok;
    for (std::size_t i = 0; i < body.size(); ++i) {
      const char c = body[i];
      if (c != '\\') {
        tok.push_back(c);
        continue;
      }
      if (++i == body.size()) bad("a backslash ends the token");
      const char n = body[i];
      if (n == '\\' || n == '"') {
        tok.push_back(n);
      } else if (n == 'x' && i + 2 < body.size() && hex_value(body[i + 1]) >= 0 &&
                 hex_value(body[i + 2]) >= 0) {
        tok.push_back(static_cast<char>(hex_value(body[i + 1]) * 16 + hex_value(body[i + 2])));
        i += 2;
      } else {
        bad("bad escape in token");
      }
    }
    if (!tok.empty()) out.push_back(std::move(tok));
  }
  return out;
}

// ---- Inputs ----

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error(path + ": " + std::strerror(errno));
  std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  if (in.bad()) usage_error(path + ": read error");
  return data;
}

// FILEs as given, DIRs as their regular files (sorted, not recursive).
std::vector<std::string> expand_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) usage_error(p + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
      files.push_back(p);
      continue;
    }
    DIR* d = ::opendir(p.c_str());
    if (d == nullptr) usage_error(p + ": " + std::strerror(errno));
    std::vector<std::string> in_dir;
    while (const dirent* e = ::readdir(d)) {
      const std::string child = p + (p.back() == '/' ? "" : "/") + e->d_name;
      struct stat cst {};
      if (::stat(child.c_str(), &cst) == 0 && S_ISREG(cst.st_mode)) in_dir.push_back(child);
    }
    ::closedir(d);
    std::sort(in_dir.begin(), in_dir.end());
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  return files;
}

// ---- The built-in byte mutator ----

// One mutation; SIZE_MAX when the kind drawn does not apply to this input.
std::size_t try_mutate(std::uint8_t* data, std::size_t size, std::size_t max_size) {
  static constexpr std::uint8_t kInteresting[] = {'0', '1', '9', ' ', '\n', '=', ':', '-',
                                                  '|', 'x', 'f', '[', ']',  '.', 0,   0xff};
  switch (g_rng.below(10)) {
    case 0:  // flip a bit
      if (size == 0) break;
      data[g_rng.below(size)] ^= static_cast<std::uint8_t>(1u << g_rng.below(8));
      return size;
    case 1:  // a random byte
      if (size == 0) break;
      data[g_rng.below(size)] = static_cast<std::uint8_t>(g_rng.next());
      return size;
    case 2:  // an interesting byte
      if (size == 0) break;
      data[g_rng.below(size)] = kInteresting[g_rng.below(std::size(kInteresting))];
      return size;
    case 3: {  // insert a few bytes
      if (size >= max_size) break;
      const std::size_t n = std::min<std::size_t>(1 + g_rng.below(4), max_size - size);
      const std::size_t at = g_rng.below(size + 1);
      std::memmove(data + at + n, data + at, size - at);
      for (std::size_t i = 0; i < n; ++i)
        data[at + i] = g_rng.one_in(2) ? kInteresting[g_rng.below(std::size(kInteresting))]
                                       : static_cast<std::uint8_t>(g_rng.next());
      return size + n;
    }
    case 4: {  // erase a run
      if (size <= 1) break;
      const std::size_t at = g_rng.below(size);
      const std::size_t n = 1 + g_rng.below(std::min<std::size_t>(size - at, 16));
      std::memmove(data + at, data + at + n, size - at - n);
      return size - n;
    }
    case 5: {  // copy a run over another place
      if (size < 2) break;
      const std::size_t from = g_rng.below(size);
      const std::size_t to = g_rng.below(size);
      const std::size_t n = 1 + g_rng.below(std::min<std::size_t>(size - std::max(from, to), 32));
      std::memmove(data + to, data + from, n);
      return size;
    }
    case 6: {  // insert a copy of a run (lines repeat in traces)
      if (size == 0 || size >= max_size) break;
      const std::size_t from = g_rng.below(size);
      std::size_t n = 1 + g_rng.below(std::min<std::size_t>(size - from, 128));
      n = std::min(n, max_size - size);
      const std::size_t at = g_rng.below(size + 1);
      std::vector<std::uint8_t> run(data + from, data + from + n);
      std::memmove(data + at + n, data + at, size - at);
      std::memcpy(data + at, run.data(), n);
      return size + n;
    }
    case 7:
    case 8: {  // a dictionary token, inserted or written over
      if (g_dict.empty()) break;
      const std::string& t = g_dict[g_rng.below(g_dict.size())];
      if (g_rng.one_in(2) && size + t.size() <= max_size) {
        const std::size_t at = g_rng.below(size + 1);
        std::memmove(data + at + t.size(), data + at, size - at);
        std::memcpy(data + at, t.data(), t.size());
        return size + t.size();
      }
      if (t.size() > size) break;
      std::memcpy(data + g_rng.below(size - t.size() + 1), t.data(), t.size());
      return size;
    }
    case 9: {  // change a decimal number's digits
      if (size == 0) break;
      const std::size_t at = g_rng.below(size);
      std::size_t i = at;
      while (i < size && !(data[i] >= '0' && data[i] <= '9')) ++i;
      if (i == size) break;
      const int pick = static_cast<int>(g_rng.below(4));
      if (pick == 0)
        data[i] = '0';
      else if (pick == 1)
        data[i] = '9';
      else
        data[i] = static_cast<std::uint8_t>('0' + g_rng.below(10));
      return size;
    }
  }
  return SIZE_MAX;
}

std::size_t mutate_once(std::uint8_t* data, std::size_t size, std::size_t max_size) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    const std::size_t n = try_mutate(data, size, max_size);
    if (n != SIZE_MAX) return n;
  }
  // Nothing applied (an empty input, no dictionary): a random byte.
  if (size < max_size) {
    data[size] = static_cast<std::uint8_t>(g_rng.next());
    return size + 1;
  }
  return size > 0 ? size - 1 : 0;
}

}  // namespace

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size,
                                        std::size_t max_size) {
  if (max_size == 0) return 0;
  size = std::min(size, max_size);
  return mutate_once(data, size, max_size);
}

// The file being replayed (null while generating): a target tells a bad
// input file (a usage error) from a bad generated input (fuzzing).
extern "C" const char* mmfuzz_driver_current_file() {
  return g_generate ? nullptr : g_cur_file;
}

namespace {

int replay(const std::vector<std::string>& files) {
  std::size_t n = 0;
  for (const std::string& f : files) {
    std::vector<std::uint8_t> data = read_file(f);
    g_cur_file = f.c_str();
    run_one(data.data(), data.size());
    ++n;
  }
  g_cur_file = nullptr;
  std::printf("ran %zu inputs\n", n);
  return 0;
}

int generate(const Flags& fl, const std::vector<std::string>& files) {
  g_generate = true;
  std::uint64_t seed = fl.seed;
  if (seed == 0) {
    seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           (static_cast<std::uint64_t>(::getpid()) << 32);
    seed = (seed ^ (seed >> 32)) & 0xffffffffu;
    if (seed == 0) seed = 1;
  }
  std::fprintf(stderr, "%s seed: %llu\n", kTag, static_cast<unsigned long long>(seed));
  g_rng.s = seed;

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::uint64_t execs = 0;
  const auto done = [&] {
    if (fl.has_runs && execs >= fl.runs) return true;
    return fl.max_total_time > 0 && (execs & 63) == 0 &&
           elapsed() >= static_cast<double>(fl.max_total_time);
  };

  // The seeds run as they are, then go into the pool cut to max_len. The
  // pool keeps every seed and up to kWalk mutants (random replacement), so
  // mutations can stack over steps.
  constexpr std::size_t kWalk = 256;
  std::vector<std::vector<std::uint8_t>> seeds, walk;
  for (const std::string& f : files) {
    std::vector<std::uint8_t> data = read_file(f);
    run_one(data.data(), data.size());
    ++execs;
    if (data.size() > fl.max_len) data.resize(fl.max_len);
    seeds.push_back(std::move(data));
  }
  if (seeds.empty()) {
    std::vector<std::uint8_t> empty;
    run_one(empty.data(), 0);
    ++execs;
    seeds.emplace_back();
  }

  std::vector<std::uint8_t> buf(fl.max_len);
  while (!done()) {
    // Half the time a seed, half the time a mutant kept from earlier steps.
    const std::size_t total = seeds.size() + walk.size();
    const std::size_t pick = walk.empty() || g_rng.one_in(2)
                                 ? g_rng.below(seeds.size())
                                 : seeds.size() + g_rng.below(walk.size());
    const std::vector<std::uint8_t>& base =
        pick < seeds.size() ? seeds[pick] : walk[pick - seeds.size()];
    std::size_t size = std::min(base.size(), fl.max_len);
    if (size > 0) std::memcpy(buf.data(), base.data(), size);
    if (g_rng.one_in(16) && total > 1) {
      // Splice: a head of this input and a tail of another.
      const std::size_t other = g_rng.below(total);
      const std::vector<std::uint8_t>& o =
          other < seeds.size() ? seeds[other] : walk[other - seeds.size()];
      const std::size_t cut = size == 0 ? 0 : g_rng.below(size + 1);
      const std::size_t from = o.empty() ? 0 : g_rng.below(o.size());
      const std::size_t n = std::min(o.size() - from, fl.max_len - cut);
      if (n > 0) std::memcpy(buf.data() + cut, o.data() + from, n);
      size = cut + n;
    }
    if (LLVMFuzzerCustomMutator != nullptr) {
      size = LLVMFuzzerCustomMutator(buf.data(), size, fl.max_len,
                                     static_cast<unsigned>(g_rng.next()));
      size = std::min(size, fl.max_len);
    } else {
      const std::size_t rounds = 1 + g_rng.below(5);  // libFuzzer's -mutate_depth
      for (std::size_t r = 0; r < rounds; ++r) size = mutate_once(buf.data(), size, fl.max_len);
    }
    // Run a copy of exactly the input's length: reads past its end are the
    // target's bugs, and a sanitizer sees them only then.
    std::vector<std::uint8_t> input(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(size));
    run_one(input.data(), input.size());
    ++execs;
    if (g_rng.one_in(8)) {
      if (walk.size() < kWalk)
        walk.push_back(std::move(input));
      else
        walk[g_rng.below(kWalk)] = std::move(input);
    }
  }
  const double t = elapsed();
  std::fprintf(stderr, "%s %llu execs in %.1f s (%.0f exec/s)\n", kTag,
               static_cast<unsigned long long>(execs), t,
               t > 0 ? static_cast<double>(execs) / t : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags fl = parse_flags(argc, argv);
  std::snprintf(g_artifact_prefix, sizeof g_artifact_prefix, "%s", fl.artifact_prefix.c_str());
  if (!fl.dict.empty()) g_dict = read_dict(fl.dict);
  const std::vector<std::string> files = expand_paths(fl.paths);
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  install_crash_handlers();
  return fl.generate ? generate(fl, files) : replay(files);
}
