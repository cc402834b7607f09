#include "props/runner.h"

#include <fmt/format.h>
#include <rapidcheck.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "program/text.h"
#include "props/rc_program.h"
#include "shrink/shrink.h"

namespace mmfuzz::props {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// RapidCheck's own printing is replaced by the runner's lines.
struct QuietListener : rc::detail::TestListener {
  std::function<void()> on_case;
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {
    if (on_case) on_case();
  }
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
};

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void write_atomic(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path().empty() ? fs::path(".") : path.parent_path());
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

std::string file_name(const std::string& prop, const std::string& sig, std::uint64_t seed) {
  std::string s = prop + "-" + sig.substr(0, sig.find('|')) + "-" + fmt::format("{:x}", seed);
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return s + ".program";
}

// The example database: saved counterexamples of this property, replayed
// first. One that still fails is the property's failure; a Program saved
// with a planted defect runs only when that defect is planted again.
bool replay_saved(const PropertySpec& spec, const PropOptions& o, PropResult& r) {
  std::error_code ec;
  if (!fs::is_directory(o.corpus, ec)) return false;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(o.corpus, ec))
    if (e.path().extension() == ".program") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    prog::Program p = prog::read_program(f.string());
    if (p.header.target != "prop:" + spec.name || p.header.planted != o.planted) continue;
    ++r.replayed;
    CaseRunner runner(p.header);
    const auto findings = runner.run(p, nullptr);
    if (findings.empty()) continue;
    r.failed = true;
    r.signature = findings[0].violation.signature();
    r.title = findings[0].violation.title;
    r.program = f.string();
    r.ops_found = r.ops_rc = r.ops_shrunk = p.ops.size();
    return true;
  }
  return false;
}

// Shrinks RapidCheck's counterexample further and writes it.
void save_failure(const PropertySpec& spec, const PropOptions& o, prog::Program p,
                  const std::vector<prog::Finding>& findings, PropResult& r) {
  r.ops_rc = p.ops.size();
  p.header.expect = {r.signature};
  if (o.shrink) {
    std::uint64_t fail_op = 0;
    const shrink::Goal goal = shrink::goal_for(p.header, findings, r.signature, &fail_op);
    shrink::ShrinkOptions so;
    so.seconds = 30;
    shrink::ShrinkResult sr = shrink::shrink(std::move(p), goal, fail_op, so);
    p = std::move(sr.program);
  }
  r.ops_shrunk = p.ops.size();
  const fs::path path = fs::path(o.corpus) / file_name(spec.name, r.signature, r.seed);
  write_atomic(path, prog::print_program(p));
  r.program = path.string();
}

struct Batch {
  const PropertySpec& spec;
  const PropOptions& o;
  PropResult& r;
  CaseRunner runner;
  Shape shape;
  std::string goal;  // the first failure's signature: shrinks must keep it
  prog::Program failing;
  std::vector<prog::Finding> findings;

  Batch(const PropertySpec& s, const PropOptions& opt, PropResult& res)
      : spec(s),
        o(opt),
        r(res),
        runner(header_of(s, opt)),
        shape(shape_for(s, opt.gen, opt.profile)) {}

  static prog::ProgramHeader header_of(const PropertySpec& s, const PropOptions& o) {
    prog::ProgramHeader h = s.header;
    h.planted = o.planted;
    return h;
  }

  // Runs one RapidCheck batch; true when it failed.
  bool run(std::uint64_t seed, std::uint64_t cases, const std::function<void()>& on_case) {
    const rc::Gen<prog::Program> gen = gen_program(
        [this](std::uint64_t s, std::size_t ops) {
          return generate_case(spec, shape, s, ops, o.planted);
        },
        o.max_size);
    const auto property = [this, &gen] {
      const prog::Program p = *gen;
      auto f = runner.run(p, &r.reach);
      ++r.executions;
      r.ops += p.ops.size();
      if (f.empty()) return;
      const std::string sig = f[0].violation.signature();
      if (goal.empty()) goal = sig, r.ops_found = p.ops.size();
      if (sig != goal) return;  // another bug: not a shrink of this one
      failing = p;
      findings = std::move(f);
      RC_FAIL(findings[0].violation.title);
    };
    rc::detail::TestParams params;
    params.seed = seed;
    params.maxSuccess = static_cast<int>(cases);
    params.maxSize = rc::kNominalSize;
    QuietListener listener;
    listener.on_case = on_case;
    rc::detail::TestMetadata md{spec.name, spec.description};
    const rc::detail::TestResult res =
        rc::detail::checkProperty(rc::detail::toProperty(property), md, params, listener);
    rc::detail::SuccessResult ok;
    if (res.match(ok)) {
      r.cases += static_cast<std::uint64_t>(ok.numSuccess);
      return false;
    }
    rc::detail::FailureResult fail;
    if (!res.match(fail)) throw std::runtime_error("RapidCheck gave up or failed to run");
    r.cases += static_cast<std::uint64_t>(fail.numSuccess);
    return true;
  }
};

PropResult run_one(const PropertySpec& spec, const PropOptions& o, double budget,
                   const std::function<void(const PropResult&)>& progress) {
  PropResult r;
  r.name = spec.name;
  r.generator = gen_kind_name(o.gen);
  const auto t0 = Clock::now();
  if (replay_saved(spec, o, r)) {
    r.seconds = since(t0);
    return r;
  }
  Batch batch(spec, o, r);
  const std::uint64_t per_batch = o.runs ? o.runs : budget > 0 ? 10 : 100;
  for (std::uint64_t b = 0;; ++b) {
    const std::uint64_t seed = batch_seed(o.seed, b);
    ++r.batches;
    if (batch.run(seed, per_batch, [&] {
          if (progress) progress(r);
        })) {
      r.failed = true;
      r.seed = seed;
      r.runs = per_batch;
      r.signature = batch.goal;
      r.title = batch.findings[0].violation.title;
      save_failure(spec, o, batch.failing, batch.findings, r);
      break;
    }
    if (o.runs || budget <= 0 || since(t0) >= budget) break;
  }
  r.seconds = since(t0);
  return r;
}

nlohmann::json to_json(const PropResult& r) {
  return {{"name", r.name},         {"generator", r.generator},
          {"cases", r.cases},       {"executions", r.executions},
          {"ops", r.ops},           {"batches", r.batches},
          {"replayed", r.replayed}, {"seconds", r.seconds},
          {"failed", r.failed},     {"signature", r.signature},
          {"title", r.title},       {"seed", r.seed},
          {"runs", r.runs},         {"ops_found", r.ops_found},
          {"ops_rc", r.ops_rc},     {"ops_shrunk", r.ops_shrunk},
          {"program", r.program},   {"error", r.error},
          {"reach", r.reach}};
}

PropResult from_json(const nlohmann::json& j) {
  PropResult r;
  j.at("name").get_to(r.name);
  j.at("generator").get_to(r.generator);
  j.at("cases").get_to(r.cases);
  j.at("executions").get_to(r.executions);
  j.at("ops").get_to(r.ops);
  j.at("batches").get_to(r.batches);
  j.at("replayed").get_to(r.replayed);
  j.at("seconds").get_to(r.seconds);
  j.at("failed").get_to(r.failed);
  j.at("signature").get_to(r.signature);
  j.at("title").get_to(r.title);
  j.at("seed").get_to(r.seed);
  j.at("runs").get_to(r.runs);
  j.at("ops_found").get_to(r.ops_found);
  j.at("ops_rc").get_to(r.ops_rc);
  j.at("ops_shrunk").get_to(r.ops_shrunk);
  j.at("program").get_to(r.program);
  j.at("error").get_to(r.error);
  j.at("reach").get_to(r.reach);
  return r;
}

PropResult guarded(const PropertySpec& spec, const PropOptions& o, double budget,
                   const std::function<void(const PropResult&)>& progress) {
  try {
    return run_one(spec, o, budget, progress);
  } catch (const std::exception& e) {
    PropResult r;
    r.name = spec.name;
    r.generator = gen_kind_name(o.gen);
    r.failed = true;
    r.error = e.what();
    return r;
  }
}

// Workers: each a forked process running every jobs-th property and writing
// its results as JSON lines to a file the parent reads after it exits. A
// worker that dies (the model aborted) fails its properties.
std::vector<PropResult> run_forked(const std::vector<const PropertySpec*>& specs,
                                   const PropOptions& o, double budget) {
  const unsigned jobs = std::min<unsigned>(o.jobs, static_cast<unsigned>(specs.size()));
  const fs::path dir = fs::temp_directory_path() / fmt::format("mmfuzz-prop-{}", ::getpid());
  fs::create_directories(dir);
  std::vector<pid_t> pids;
  for (unsigned w = 0; w < jobs; ++w) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      std::ofstream out(dir / fmt::format("{}.jsonl", w));
      for (std::size_t i = w; i < specs.size(); i += jobs)
        out << to_json(guarded(*specs[i], o, budget, {})).dump() << "\n" << std::flush;
      std::_Exit(0);
    }
    pids.push_back(pid);
  }
  std::map<std::string, PropResult> done;
  for (unsigned w = 0; w < jobs; ++w) {
    int status = 0;
    ::waitpid(pids[w], &status, 0);
    std::ifstream in(dir / fmt::format("{}.jsonl", w));
    for (std::string line; std::getline(in, line);) {
      const PropResult r = from_json(nlohmann::json::parse(line));
      done[r.name] = r;
    }
    for (std::size_t i = w; i < specs.size(); i += jobs)
      if (!done.count(specs[i]->name)) {
        PropResult& r = done[specs[i]->name];
        r.name = specs[i]->name;
        r.failed = true;
        r.error = fmt::format("worker died ({})",
                              WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                                  : fmt::format("exit {}", WEXITSTATUS(status)));
      }
  }
  fs::remove_all(dir);
  std::vector<PropResult> out;
  for (const PropertySpec* s : specs) out.push_back(done[s->name]);
  return out;
}

}  // namespace

std::uint64_t batch_seed(std::uint64_t seed, std::uint64_t b) {
  if (b == 0) return seed;
  std::uint64_t z = seed + b * 0x9e3779b97f4a7c15ULL;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<const PropertySpec*> selected(const std::vector<std::string>& names) {
  std::vector<const PropertySpec*> specs;
  for (const std::string& n : names) {
    const PropertySpec* p = find_property(n);
    if (!p) {
      std::string known;
      for (const PropertySpec& q : all_properties()) known += (known.empty() ? "" : ", ") + q.name;
      throw std::invalid_argument(fmt::format("unknown property '{}' (properties: {})", n, known));
    }
    specs.push_back(p);
  }
  if (specs.empty())
    for (const PropertySpec& p : all_properties()) specs.push_back(&p);
  return specs;
}

std::size_t emit_cases(const PropOptions& o, const std::string& dir) {
  const std::uint64_t runs = o.runs ? o.runs : 100;
  std::size_t n = 0;
  for (const PropertySpec* p : selected(o.names)) {
    const Shape shape = shape_for(*p, o.gen, o.profile);
    for (std::uint64_t i = 0; i < runs; ++i, ++n)
      write_atomic(
          fs::path(dir) / fmt::format("{}-{}-{:04}.program", p->name, gen_kind_name(o.gen), i),
          prog::print_program(
              generate_case(*p, shape, batch_seed(o.seed, i), o.max_size, o.planted)));
  }
  return n;
}

std::vector<PropResult> run_properties(const PropOptions& o) {
  {  // RapidCheck announces its configuration on first use: not ours to print.
    std::streambuf* err = std::cerr.rdbuf(nullptr);
    rc::detail::configuration();
    std::cerr.rdbuf(err);
  }
  const std::vector<const PropertySpec*> specs = selected(o.names);
  const unsigned jobs =
      std::max(1u, std::min<unsigned>(o.jobs, static_cast<unsigned>(specs.size())));
  // Each property gets an equal share of the budget on its worker.
  const double budget = o.seconds > 0 ? o.seconds * jobs / static_cast<double>(specs.size()) : 0;
  if (jobs > 1) return run_forked(specs, o, budget);
  std::vector<PropResult> out;
  for (const PropertySpec* s : specs) {
    out.push_back(guarded(*s, o, budget, [&](const PropResult& r) {
      if (o.progress)
        std::fprintf(stderr, "\r\033[Kprop %s: %llu cases", r.name.c_str(),
                     static_cast<unsigned long long>(r.cases + 1));
    }));
    if (o.progress) std::fprintf(stderr, "\r\033[K");
  }
  return out;
}

void write_summary(const std::string& dir, const PropOptions& o,
                   const std::vector<PropResult>& results) {
  std::string md = fmt::format(
      "# mmfuzz prop\n\nseed {} · generator {} · max size {} ops{}\n\n"
      "| property | cases | Programs run | ops | seconds | result | reproducer |\n"
      "|---|---:|---:|---:|---:|---|---|\n",
      o.seed, gen_kind_name(o.gen), o.max_size,
      o.planted != mm::PlantedDefect::none
          ? fmt::format(" · planted {}", mm::planted_defect_name(o.planted))
          : "");
  std::string xml;
  unsigned failures = 0;
  double total = 0;
  for (const PropResult& r : results) {
    const std::string result = !r.error.empty() ? "error: " + r.error
                               : r.failed       ? "FAIL `" + r.signature + "`"
                                                : "pass";
    md += fmt::format("| {} | {} | {} | {} | {:.1f} | {} | {} |\n", r.name, r.cases, r.executions,
                      r.ops, r.seconds, result, r.program.empty() ? "" : "`" + r.program + "`");
    failures += r.failed;
    total += r.seconds;
    xml += fmt::format("  <testcase classname=\"mmfuzz.prop\" name=\"{}\" time=\"{:.3f}\">\n",
                       r.name, r.seconds);
    if (r.failed) {
      std::string msg = r.error.empty() ? r.signature + ": " + r.title : r.error;
      for (const auto& [from, to] : {std::pair{'&', "&amp;"}, {'<', "&lt;"}, {'"', "&quot;"}}) {
        std::string esc;
        for (char c : msg) esc += c == from ? std::string(to) : std::string(1, c);
        msg = esc;
      }
      xml += fmt::format("    <failure message=\"{}\">reproduce: mmfuzz replay {}</failure>\n", msg,
                         r.program);
    }
    xml += "  </testcase>\n";
  }
  // The allocator states each property reached (the model's event counters,
  // summed over its Programs), for comparing generators (bench/prop_compare.sh).
  nlohmann::json reach = nlohmann::json::object();
  for (const PropResult& r : results)
    reach[r.name] = {{"seconds", r.seconds}, {"executions", r.executions}, {"ops", r.ops},
                     {"failed", r.failed},   {"signature", r.signature},   {"events", r.reach}};
  write_atomic(fs::path(dir) / "reach.json", reach.dump(1) + "\n");
  write_atomic(fs::path(dir) / "summary.md", md);
  write_atomic(fs::path(dir) / "junit.xml",
               fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite "
                           "name=\"mmfuzz-prop\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n{}"
                           "</testsuite>\n",
                           results.size(), failures, total, xml));
}

}  // namespace mmfuzz::props
