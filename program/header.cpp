#include "program/header.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

#include "invariants/checker.h"
#include "program/executor.h"

namespace mmfuzz::prog {

namespace {

constexpr std::size_t kMaxHeaderLines = 1024;  // keys, machine lines and expected signatures

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Sizes as people write them: 16M, 1G, else bytes.
std::string format_size(std::uint64_t b) {
  if (b && b % mm::SZ_1G == 0) return fmt::format("{}G", b / mm::SZ_1G);
  if (b && b % mm::SZ_1M == 0) return fmt::format("{}M", b / mm::SZ_1M);
  if (b && b % mm::SZ_1K == 0) return fmt::format("{}K", b / mm::SZ_1K);
  return std::to_string(b);
}

bool parse_dec(std::string_view v, std::uint64_t max, std::uint64_t& out) {
  if (v.empty()) return false;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out, 10);
  return r.ec == std::errc{} && r.ptr == v.data() + v.size() && out <= max;
}

// Calls f(value) for mm's string parsers, which throw ConfigError.
template <class F>
bool mm_parse(std::string_view v, std::string* error, F&& f) {
  try {
    f(std::string(v));
    return true;
  } catch (const mm::ConfigError& e) {
    *error = e.what();
    return false;
  }
}

bool on_off(std::string_view v, bool& out, std::string* error) {
  if (v == "on" || v == "off") {
    out = v == "on";
    return true;
  }
  *error = fmt::format("want on or off, not '{}'", v);
  return false;
}

template <std::size_t N>
bool one_of(std::string_view v, const std::array<const char*, N>& names, std::size_t& out,
            std::string* error) {
  for (std::size_t i = 0; i < N; ++i)
    if (v == names[i]) {
      out = i;
      return true;
    }
  std::string list;
  for (const char* n : names) list += (list.empty() ? "" : ", ") + std::string(n);
  *error = fmt::format("unknown value '{}' (values: {})", v, list);
  return false;
}

// slub_debug= letters, in the kernel's order.
constexpr std::array<std::pair<char, mm::slab_flags_t>, 4> kDebugLetters = {{
    {'F', mm::SLAB_CONSISTENCY_CHECKS},
    {'Z', mm::SLAB_RED_ZONE},
    {'P', mm::SLAB_POISON},
    {'U', mm::SLAB_STORE_USER},
}};

std::string format_debug(mm::slab_flags_t f) {
  std::string s;
  for (const auto& [c, bit] : kDebugLetters)
    if (f & bit) s += c;
  return s.empty() ? "none" : s;
}

bool parse_debug(std::string_view v, mm::slab_flags_t& out, std::string* error) {
  out = 0;
  if (v == "none") return true;
  for (const char c : v) {
    bool known = false;
    for (const auto& [l, bit] : kDebugLetters)
      if (c == l) out |= bit, known = true;
    if (!known) {
      *error = fmt::format("'{}' is not none or slub_debug letters F, Z, P, U", v);
      return false;
    }
  }
  return !v.empty();
}

constexpr std::array<const char*, 3> kCheckModes = {"off", "incremental", "full"};
constexpr std::array<const char*, 4> kSlabs = {"slub", "slab", "slob", "none"};
constexpr std::array<const char*, 3> kDiffModes = {"none", "slab", "profile"};

bool printable(std::string_view v) {
  for (const char c : v)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

// ---- The keys: how each is set from its text and printed ----

using Setter = bool (*)(ProgramHeader&, std::string_view, std::string*);
using KeyPrinter = void (*)(const ProgramHeader&, std::string&);

struct Key {
  const char* name;
  bool repeat;  // may appear more than once (each adds a value)
  Setter set;
  KeyPrinter print;
};

void line(std::string& out, const char* key, std::string_view value) {
  out += fmt::format("# {}: {}\n", key, value);
}

// A fuzz target's name, or "prop:<property>" for a property's Program.
bool set_target(ProgramHeader& h, std::string_view v, std::string* error) {
  const std::string_view name = v.starts_with("prop:") ? v.substr(5) : v;
  const bool ok = !name.empty() && v.size() <= 64 &&
                  name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == v.npos;
  if (!ok) *error = fmt::format("'{}' is not a target name", v);
  h.target = v;
  return ok;
}

bool set_profile(ProgramHeader& h, std::string_view v, std::string* error) {
  h.profile = v;
  return mm_parse(v, error, [](const std::string& s) { mm::profile_by_name(s); });
}

bool set_machine(ProgramHeader& h, std::string_view v, std::string* error) {
  std::size_t i = 0;
  if (!one_of(v, std::to_array(kHeaderMachines), i, error)) return false;
  h.machine = kHeaderMachines[i];
  return true;
}

bool set_machine_line(ProgramHeader& h, std::string_view v, std::string* error) {
  const std::size_t eq = v.find('=');
  if (eq == v.npos) {
    *error = fmt::format("want 'key = value' (a machine file's line), not '{}'", v);
    return false;
  }
  mm::MachineLine l{std::string(trim(v.substr(0, eq))), std::string(trim(v.substr(eq + 1)))};
  mm::MachineConfig scratch = mm::default_machine();
  if (!printable(v) || !mm_parse(v, error, [&](const std::string&) {
        mm::apply_machine_line(scratch, l.key, l.value);
      })) {
    if (error->empty()) *error = "control characters in a machine line";
    return false;
  }
  h.machine_lines.push_back(std::move(l));
  return true;
}

template <std::optional<std::uint64_t> ProgramHeader::*F>
bool set_size(ProgramHeader& h, std::string_view v, std::string* error) {
  return mm_parse(v, error, [&](const std::string& s) { h.*F = mm::parse_size(s); });
}

bool set_ram_base(ProgramHeader& h, std::string_view v, std::string* error) {
  return mm_parse(v, error, [&](const std::string& s) { h.ram_base = mm::parse_number(s); });
}

template <std::optional<unsigned> ProgramHeader::*F>
bool set_count(ProgramHeader& h, std::string_view v, std::string* error) {
  std::uint64_t n = 0;
  // 0 parses (a machine line may say it); booting such a machine fails.
  if (!parse_dec(v, 4096, n)) {
    *error = fmt::format("want a count up to 4096, not '{}'", v);
    return false;
  }
  h.*F = static_cast<unsigned>(n);
  return true;
}

bool set_slab(ProgramHeader& h, std::string_view v, std::string* error) {
  std::size_t i = 0;
  if (!one_of(v, kSlabs, i, error)) return false;
  h.slab_enabled = i != 3;
  h.slab = h.slab_enabled ? mm::parse_slab_variant(v) : std::nullopt;
  return true;
}

bool set_slub_debug(ProgramHeader& h, std::string_view v, std::string* error) {
  return parse_debug(v, h.slub_debug, error);
}

bool set_kmalloc_min(ProgramHeader& h, std::string_view v, std::string* error) {
  std::uint64_t k = 0;
  if (!parse_dec(v, 128, k) || k < 8 || (k & (k - 1))) {
    *error = fmt::format("want 8, 16, 32, 64 or 128, not '{}'", v);
    return false;
  }
  h.kmalloc_min = static_cast<unsigned>(k);
  return true;
}

bool set_rodata(ProgramHeader& h, std::string_view v, std::string* error) {
  if (v != "on" && v != "full") {
    *error = fmt::format("want on or full, not '{}'", v);
    return false;
  }
  h.rodata_full = v == "full";
  return true;
}

template <bool ProgramHeader::*F>
bool set_flag(ProgramHeader& h, std::string_view v, std::string* error) {
  return on_off(v, h.*F, error);
}

bool set_checks(ProgramHeader& h, std::string_view v, std::string* error) {
  h.checks = v;
  return printable(v) &&
         mm_parse(v, error, [](const std::string& s) { inv::CheckSelection::parse(s); });
}

bool set_check(ProgramHeader& h, std::string_view v, std::string* error) {
  std::size_t i = 0;
  if (!one_of(v, kCheckModes, i, error)) return false;
  h.check = static_cast<CheckMode>(i);
  return true;
}

template <std::uint64_t ProgramHeader::*F>
bool set_u64(ProgramHeader& h, std::string_view v, std::string* error) {
  if (parse_dec(v, UINT64_MAX, h.*F)) return true;
  *error = fmt::format("want a number, not '{}'", v);
  return false;
}

bool set_lazy_max_pages(ProgramHeader& h, std::string_view v, std::string* error) {
  std::uint64_t n = 0;
  if (parse_dec(v, std::uint64_t{1} << 32, n) && n > 0) {
    h.lazy_max_pages = n;
    return true;
  }
  *error = fmt::format("want a number of pages from 1 to 2^32, not '{}'", v);
  return false;
}

bool set_planted(ProgramHeader& h, std::string_view v, std::string* error) {
  const auto d = mm::parse_planted_defect(v);
  if (!d) {
    std::string list;
    for (int i = 0; i < mm::kNrPlantedDefects; ++i)
      list +=
          (i ? ", " : "") + std::string(mm::planted_defect_name(static_cast<mm::PlantedDefect>(i)));
    *error = fmt::format("unknown planted defect '{}' (defects: {})", v, list);
    return false;
  }
  h.planted = *d;
  return true;
}

bool set_diff(ProgramHeader& h, std::string_view v, std::string* error) {
  std::size_t i = 0;
  if (!one_of(v, kDiffModes, i, error)) return false;
  h.diff = static_cast<DiffMode>(i);
  return true;
}

bool set_expect(ProgramHeader& h, std::string_view v, std::string* error) {
  if (v.empty() || v.size() > 256 || !printable(v)) {
    *error = "want a violation signature (invariant|op|subsystem)";
    return false;
  }
  h.expect.emplace_back(v);
  return true;
}

const std::array<Key, 27> kKeys = {{
    {"target", false, set_target,
     [](const ProgramHeader& h, std::string& o) {
       if (!h.target.empty()) line(o, "target", h.target);
     }},
    {"profile", false, set_profile,
     [](const ProgramHeader& h, std::string& o) { line(o, "profile", h.profile); }},
    {"machine", false, set_machine,
     [](const ProgramHeader& h, std::string& o) { line(o, "machine", h.machine); }},
    {"machine_line", true, set_machine_line,
     [](const ProgramHeader& h, std::string& o) {
       for (const auto& l : h.machine_lines)
         line(o, "machine_line", fmt::format("{} = {}", l.key, l.value));
     }},
    {"ram", false, set_size<&ProgramHeader::ram>,
     [](const ProgramHeader& h, std::string& o) { line(o, "ram", format_size(*h.ram)); }},
    {"ram_base", false, set_ram_base,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "ram_base", fmt::format("{:#x}", *h.ram_base));
     }},
    {"cpus", false, set_count<&ProgramHeader::cpus>,
     [](const ProgramHeader& h, std::string& o) { line(o, "cpus", std::to_string(*h.cpus)); }},
    {"nodes", false, set_count<&ProgramHeader::nodes>,
     [](const ProgramHeader& h, std::string& o) { line(o, "nodes", std::to_string(*h.nodes)); }},
    {"cma", false, set_size<&ProgramHeader::cma>,
     [](const ProgramHeader& h, std::string& o) { line(o, "cma", format_size(*h.cma)); }},
    {"slab", false, set_slab,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "slab", h.slab_enabled ? mm::slab_variant_name(*h.slab) : "none");
     }},
    {"slub_debug", false, set_slub_debug,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "slub_debug", format_debug(h.slub_debug));
     }},
    {"slab_nomerge", false, set_flag<&ProgramHeader::slab_nomerge>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "slab_nomerge", h.slab_nomerge ? "on" : "off");
     }},
    {"kmalloc_min", false, set_kmalloc_min,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "kmalloc_min", std::to_string(*h.kmalloc_min));
     }},
    {"rodata", false, set_rodata,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "rodata", h.rodata_full ? "full" : "on");
     }},
    {"vmalloc", false, set_flag<&ProgramHeader::vmalloc>,
     [](const ProgramHeader& h, std::string& o) { line(o, "vmalloc", h.vmalloc ? "on" : "off"); }},
    {"lazy_max_pages", false, set_lazy_max_pages,
     [](const ProgramHeader& h, std::string& o) {
       if (h.lazy_max_pages) line(o, "lazy_max_pages", std::to_string(*h.lazy_max_pages));
     }},
    {"checks", false, set_checks,
     [](const ProgramHeader& h, std::string& o) { line(o, "checks", h.checks); }},
    {"check", false, set_check,
     [](const ProgramHeader& h, std::string& o) { line(o, "check", check_mode_name(h.check)); }},
    {"check_every", false, set_u64<&ProgramHeader::check_every>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "check_every", std::to_string(h.check_every));
     }},
    {"final_sweep", false, set_flag<&ProgramHeader::final_sweep>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "final_sweep", h.final_sweep ? "on" : "off");
     }},
    {"record_misuse", false, set_flag<&ProgramHeader::record_misuse>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "record_misuse", h.record_misuse ? "on" : "off");
     }},
    {"misuse_writes", false, set_flag<&ProgramHeader::misuse_writes>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "misuse_writes", h.misuse_writes ? "on" : "off");
     }},
    {"report_leaks", false, set_flag<&ProgramHeader::report_leaks>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "report_leaks", h.report_leaks ? "on" : "off");
     }},
    // Printed only when on: headers from before the oracles read the same.
    {
        "oracle", false, set_flag<&ProgramHeader::oracle>,
        [](const ProgramHeader& h, std::string& o) {
          if (h.oracle) line(o, "oracle", "on");
        }},
    {"max_findings", false, set_u64<&ProgramHeader::max_findings>,
     [](const ProgramHeader& h, std::string& o) {
       line(o, "max_findings", std::to_string(h.max_findings));
     }},
    {"planted", false, set_planted,
     [](const ProgramHeader& h,
        std::string& o) { line(o, "planted", mm::planted_defect_name(h.planted)); }},
    {"diff", false, set_diff,
     [](const ProgramHeader& h, std::string& o) {
       if (h.diff != DiffMode::none) line(o, "diff", diff_mode_name(h.diff));
     }},
}};

// "expect" is last and separate: it says what was seen, not how to run.
const Key kExpect = {"expect", true, set_expect, [](const ProgramHeader& h, std::string& o) {
                       for (const auto& s : h.expect) line(o, "expect", s);
                     }};

const Key* find_key(std::string_view name, std::size_t* index) {
  for (std::size_t i = 0; i < kKeys.size(); ++i)
    if (name == kKeys[i].name) return *index = i, &kKeys[i];
  if (name == kExpect.name) return *index = kKeys.size(), &kExpect;
  return nullptr;
}

std::string key_list() {
  std::string s;
  for (const Key& k : kKeys) s += std::string(k.name) + ", ";
  return s + kExpect.name;
}

// "# key: value" -> key, value. False for any other line.
bool split_key_line(std::string_view l, std::string_view& key, std::string_view& value) {
  l = trim(l);
  if (l.size() < 2 || l[0] != '#') return false;
  l = trim(l.substr(1));
  const std::size_t colon = l.find(':');
  if (colon == 0 || colon == l.npos) return false;
  key = l.substr(0, colon);
  if (key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != key.npos) return false;
  value = trim(l.substr(colon + 1));
  return true;
}

mm::MachineConfig named_machine(std::string_view name) {
  if (name == "qemu-virt") return mm::default_machine();
  mm::MachineConfig m = mm::small_machine(16 * mm::SZ_1M);
  if (name == "fuzz") m.name = "fuzz";
  return m;
}

mm::MachineConfig machine_of(const ProgramHeader& h) {
  mm::MachineConfig m = named_machine(h.machine);
  mm::apply_machine_lines(m, h.machine_lines);
  if (h.ram) m.ram_size = *h.ram;
  if (h.ram_base) m.ram_base = *h.ram_base;
  if (h.cpus) m.nr_cpus = *h.cpus;
  if (h.nodes) m.nr_nodes = *h.nodes;
  if (h.cma) m.cma_size = *h.cma;
  return m;
}

}  // namespace

const char* diff_mode_name(DiffMode m) {
  const auto i = static_cast<std::size_t>(m);
  return i < kDiffModes.size() ? kDiffModes[i] : "?";
}

mm::MmConfig ProgramHeader::mm_config() const {
  if (planted != mm::PlantedDefect::none && !mm::kPlantedDefects)
    throw mm::ConfigError(fmt::format(
        "planted defect '{}' needs a build with MMFUZZ_PLANTED_DEFECTS=ON (the default preset)",
        mm::planted_defect_name(planted)));
  mm::MmConfig c;
  c.profile = profile;
  c.machine = machine_of(*this);
  c.slab.enabled = slab_enabled;
  c.slab.variant = slab;
  c.slab.debug_flags = slub_debug;
  c.slab.nomerge = slab_nomerge;
  c.slab.kmalloc_min_size = kmalloc_min;
  c.rodata_full = rodata_full;
  c.vmalloc = vmalloc;
  c.lazy_max_pages = lazy_max_pages;
  c.planted = planted;
  return c;
}

ExecOptions ProgramHeader::exec_options() const {
  ExecOptions o;
  o.mode = check;
  o.check_every = check_every;
  o.checks = checks;
  o.final_sweep = final_sweep;
  o.record_misuse = record_misuse;
  o.misuse_writes = misuse_writes;
  o.report_leaks = report_leaks;
  o.oracle = oracle;
  o.max_findings = static_cast<std::size_t>(max_findings);
  return o;
}

void ProgramHeader::set_exec_options(const ExecOptions& o) {
  check = o.mode;
  check_every = o.check_every;
  checks = o.checks;
  final_sweep = o.final_sweep;
  record_misuse = o.record_misuse;
  misuse_writes = o.misuse_writes;
  report_leaks = o.report_leaks;
  oracle = o.oracle;
  max_findings = o.max_findings;
}

ProgramHeader ProgramHeader::resolved() const {
  if (diff == DiffMode::slab && !slab_enabled)
    throw mm::ConfigError("header diff: slab compares slab allocators, and slab is none");
  ProgramHeader r = *this;
  const mm::KernelProfile& p = mm::profile_by_name(profile);
  const mm::MachineConfig m = machine_of(*this);
  r.ram = m.ram_size;
  r.ram_base = m.ram_base;
  r.cpus = m.nr_cpus;
  r.nodes = m.nr_nodes;
  r.cma = m.cma_size.value_or(p.cma_size);
  r.slab = slab_enabled ? std::optional(slab.value_or(p.slab)) : std::nullopt;
  r.kmalloc_min = kmalloc_min.value_or(p.kmalloc_min_align);
  return r;
}

bool ProgramHeader::same_run(const ProgramHeader& o) const {
  ProgramHeader a = resolved(), b = o.resolved();
  a.version = b.version = kProgramVersion;
  a.target.clear(), b.target.clear();
  a.expect.clear(), b.expect.clear();
  return a == b;
}

std::string print_header(const ProgramHeader& h) {
  if (h.version < 2) return std::string(kProgramMagic) + " v1\n";
  const ProgramHeader r = h.resolved();
  std::string out = fmt::format("{} v{}\n", kProgramMagic, kProgramVersion);
  for (const Key& k : kKeys) k.print(r, out);
  kExpect.print(r, out);
  return out;
}

bool set_header_key(ProgramHeader& h, std::string_view key, std::string_view value,
                    std::string* error) {
  std::size_t index = 0;
  const Key* k = find_key(key, &index);
  if (!k) {
    *error = fmt::format("unknown header key '{}' (keys: {})", key, key_list());
    return false;
  }
  std::string why;
  if (k->set(h, value, &why)) return true;
  *error = fmt::format("header {}: {}", key, why.empty() ? "bad value" : why);
  return false;
}

bool HeaderParser::feed(std::string_view l) {
  if (!error_.empty()) return false;
  if (state_ == State::before) {
    const std::string_view t = trim(l);
    if (!t.starts_with(kProgramMagic)) return true;  // a comment before the version line
    const std::string_view v = trim(t.substr(kProgramMagic.size()));
    std::uint64_t n = 1;
    if (v.size() > 1 && v[0] == 'v' && !parse_dec(v.substr(1), 1000, n)) n = 1;
    if (n > kProgramVersion) {
      error_ =
          fmt::format("Program text version {}: this mmfuzz reads v1 and v{}", v, kProgramVersion);
      return false;
    }
    h_.version = n >= 2 ? 2 : 1;
    state_ = h_.version == 2 ? State::keys : State::after;
    return true;
  }
  if (state_ == State::after) return true;
  std::string_view key, value;
  if (!split_key_line(l, key, value)) {
    state_ = State::after;  // the first other line ends the header
    return true;
  }
  std::size_t index = 0;
  const Key* k = find_key(key, &index);
  if (k && !k->repeat && (seen_keys_ >> index & 1)) {
    error_ = fmt::format("header key '{}' given twice", key);
    return false;
  }
  seen_keys_ |= std::uint64_t{1} << index;
  if (h_.machine_lines.size() + h_.expect.size() >= kMaxHeaderLines) {
    error_ = fmt::format("header longer than {} lines", kMaxHeaderLines);
    return false;
  }
  return set_header_key(h_, key, value, &error_);
}

bool HeaderParser::finish(ProgramHeader& out) {
  if (!error_.empty()) return false;
  try {
    out = h_.version >= 2 ? h_.resolved() : h_;
    return true;
  } catch (const mm::ConfigError& e) {
    error_ = e.what();
    return false;
  }
}

std::string header_value(const ProgramHeader& h, std::string_view key) {
  std::size_t index = 0;
  const Key* k = find_key(key, &index);
  if (!k) return {};
  std::string text, out;
  k->print(h.resolved(), text);
  // "# key: value\n" lines (several for keys that repeat): "value, value"
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t colon = text.find(": ", pos);
    const std::size_t nl = text.find('\n', pos);
    if (colon == std::string::npos || nl == std::string::npos) break;
    out += (out.empty() ? "" : ", ") + text.substr(colon + 2, nl - colon - 2);
    pos = nl + 1;
  }
  return out;
}

bool read_header(const std::vector<std::string>& lines, ProgramHeader& out, std::string* error) {
  HeaderParser p;
  for (const auto& l : lines)
    if (!p.feed(l)) break;
  if (p.finish(out)) return true;
  *error = p.error();
  return false;
}

}  // namespace mmfuzz::prog
