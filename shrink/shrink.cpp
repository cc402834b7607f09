#include "shrink/shrink.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "program/text.h"
#include "shrink/deps.h"

namespace mmfuzz::shrink {

using namespace mmfuzz::prog;

Goal goal_for(const ProgramHeader& h, const std::vector<Finding>& findings,
              const std::string& signature, std::uint64_t* fail_op) {
  if (findings.empty()) throw ShrinkError("the input fires no violation: nothing to shrink");
  const auto seen = [&](const std::string& s) {
    return std::any_of(findings.begin(), findings.end(),
                       [&](const Finding& f) { return f.violation.signature() == s; });
  };
  std::string sig = signature;
  if (sig.empty())
    for (const auto& e : h.expect)
      if (seen(e)) {
        sig = e;
        break;
      }
  if (sig.empty()) sig = findings.front().violation.signature();
  if (!seen(sig)) {
    std::string list;
    for (const auto& f : findings)
      if (list.find(f.violation.signature()) == std::string::npos)
        list += (list.empty() ? "" : ", ") + f.violation.signature();
    throw ShrinkError(fmt::format("signature {} does not fire (the input fires {})", sig, list));
  }
  Goal g;
  g.signature = sig;
  for (const auto& f : findings) {
    const std::string s = f.violation.signature();
    if (s == sig) {
      if (fail_op) *fail_op = f.op_index;
      break;
    }
    g.allowed_before.insert(s);
  }
  return g;
}

namespace {

using Clock = std::chrono::steady_clock;

// A candidate: ops under a header, either all of `ops` or the ones `idx` picks.
struct Candidate {
  ProgramHeader header;
  std::vector<Op> ops;             // owned (small candidates)
  std::span<const Op> base;        // or a large base ...
  std::vector<std::uint32_t> idx;  // ... and the indices run
  bool indexed = false;
  std::size_t size() const { return indexed ? idx.size() : ops.size(); }
};

class Shrinker {
 public:
  Shrinker(Program& p, const Goal& goal, const ShrinkOptions& o)
      : p_(p), goal_(goal), o_(o), start_(Clock::now()) {
    const unsigned jobs = std::max(1u, o.jobs);
    for (unsigned i = 0; i < jobs; ++i) runners_.emplace_back(p.strings);
  }

  ShrinkStats stats;
  bool out_of_time() const {
    if (o_.stop && o_.stop->load()) return true;
    return o_.seconds > 0 && elapsed() > o_.seconds;
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // Phase 1 on the whole (truncated) Program: the failing op's history alone,
  // else the last ops before it with their history, in growing windows.
  void slice(std::uint64_t fail_op);
  // Phase 2 on a small Program, to a fixpoint: smaller machine, ddmin
  // removal to 1-minimality, canonical arguments, renumbered handles.
  void minimize();

 private:
  // The first of `cs` that fires (in order), -1 for none.
  int first_firing(std::vector<Candidate>& cs);
  Outcome test(Runner& r, const Candidate& c) {
    return r.run(c.header, c.indexed ? c.base : std::span<const Op>(c.ops),
                 c.indexed ? &c.idx : nullptr, goal_);
  }
  void accept(std::vector<Op> ops, const ProgramHeader* h, const char* pass);
  Candidate small(std::vector<Op> ops) const { return {p_.header, std::move(ops), {}, {}, false}; }
  bool try_header();
  bool ddmin();
  bool simplify_args();
  bool canonical_provenance();
  bool renumber();
  void progress() {
    if (o_.on_progress) o_.on_progress(p_.ops.size(), stats.candidates);
  }

  Program& p_;
  const Goal& goal_;
  const ShrinkOptions& o_;
  Clock::time_point start_;
  std::vector<Runner> runners_;
  std::unordered_map<std::string, Outcome> cache_;  // by Program text (small candidates)
};

int Shrinker::first_firing(std::vector<Candidate>& cs) {
  std::vector<Outcome> res(cs.size(), Outcome::clean);
  std::vector<std::string> keys(cs.size());
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < cs.size(); ++i) {
    if (!cs[i].indexed && cs[i].ops.size() <= 4096) {
      keys[i] = print_header(cs[i].header);
      for (const Op& op : cs[i].ops) {
        keys[i] += format_op(op, p_.strings);
        keys[i] += fmt::format(" {}\n", op.cpu);
      }
      if (const auto it = cache_.find(keys[i]); it != cache_.end()) {
        ++stats.cached;
        res[i] = it->second;
        if (res[i] == Outcome::fires) break;  // the first that fires decides
        continue;
      }
    }
    todo.push_back(i);
  }
  // Only candidates before the first cached hit can change the answer.
  const auto hit = std::find(res.begin(), res.end(), Outcome::fires);
  const std::size_t limit = static_cast<std::size_t>(hit - res.begin());
  todo.erase(std::remove_if(todo.begin(), todo.end(), [&](std::size_t i) { return i > limit; }),
             todo.end());
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> ran{0};
  std::atomic<std::size_t> best{limit};  // the lowest index known to fire
  auto work = [&](Runner& r) {
    for (std::size_t k; (k = next.fetch_add(1)) < todo.size();) {
      const std::size_t i = todo[k];
      if (i > best.load()) continue;
      res[i] = test(r, cs[i]);
      ++ran;
      if (res[i] == Outcome::fires) {
        std::size_t b = best.load();
        while (i < b && !best.compare_exchange_weak(b, i)) {
        }
      }
    }
  };
  if (runners_.size() == 1 || todo.size() == 1) {
    work(runners_[0]);
  } else {
    std::vector<std::thread> ts;
    for (std::size_t t = 1; t < std::min(runners_.size(), todo.size()); ++t)
      ts.emplace_back(work, std::ref(runners_[t]));
    work(runners_[0]);
    for (auto& t : ts) t.join();
  }
  stats.candidates += ran.load();
  for (const std::size_t i : todo)
    if (i <= best.load() && !keys[i].empty()) cache_.emplace(std::move(keys[i]), res[i]);
  progress();
  const std::size_t b = std::min(best.load(), limit);
  return b < cs.size() && res[b] == Outcome::fires ? static_cast<int>(b) : -1;
}

void Shrinker::accept(std::vector<Op> ops, const ProgramHeader* h, const char* pass) {
  const std::size_t before = p_.ops.size();
  p_.ops = std::move(ops);
  if (h) p_.header = *h;
  if (before != p_.ops.size() || h)
    stats.passes.push_back(fmt::format("{}: {} -> {} ops", pass, before, p_.ops.size()));
  if (o_.on_better) o_.on_better(p_);
}

void Shrinker::slice(std::uint64_t fail_op) {
  if (fail_op + 1 < p_.ops.size()) {
    p_.ops.resize(fail_op + 1);  // ops after the failing one cannot matter
    stats.passes.push_back(fmt::format("truncate: {} -> {} ops", stats.ops_before, p_.ops.size()));
  }
  const std::size_t n = p_.ops.size();
  if (n <= 64 || fail_op >= n) return;
  const DepGraph g(p_.ops);
  const auto k = static_cast<std::uint32_t>(n - 1);
  // The failing op, the histories of the bindings it uses, and what those
  // need bound.
  std::vector<char> history(n, 0);
  history[k] = 1;
  for (const std::uint32_t d : g.parents(k)) {
    history[d] = 1;
    // A cache's history is every object of it: only its create is needed.
    if (p_.ops[d].is<KmemCacheCreate>()) continue;
    for (const std::uint32_t u : g.users(d))
      if (u < k) history[u] = 1;
  }
  std::vector<Candidate> cs;
  auto add = [&](std::vector<char> in) {
    g.add_parents(in);
    Candidate c{p_.header, {}, p_.ops, {}, true};
    for (std::uint32_t i = 0; i < n; ++i)
      if (in[i]) c.idx.push_back(i);
    cs.push_back(std::move(c));
  };
  add(history);
  for (std::uint64_t w = 32; w < n; w *= 4) {
    std::vector<char> in = history;
    std::fill(in.end() - static_cast<std::ptrdiff_t>(w), in.end(), 1);
    add(std::move(in));
  }
  add(std::vector<char>(n, 1));  // everything up to the failing op
  // Smallest first; in batches, so a history that fires costs one run.
  const std::size_t batch = std::max<std::size_t>(1, runners_.size());
  for (std::size_t from = 0; from < cs.size() && !out_of_time(); from += batch) {
    std::vector<Candidate> part(
        cs.begin() + static_cast<std::ptrdiff_t>(from),
        cs.begin() + static_cast<std::ptrdiff_t>(std::min(cs.size(), from + batch)));
    const int i = first_firing(part);
    if (i < 0) continue;
    std::vector<Op> ops;
    for (const std::uint32_t x : part[static_cast<std::size_t>(i)].idx) ops.push_back(p_.ops[x]);
    accept(std::move(ops), nullptr, from + static_cast<std::size_t>(i) == 0 ? "slice" : "window");
    return;
  }
  if (!out_of_time())
    throw ShrinkError(
        fmt::format("the input's Program form does not fire {} (a gap in the trace's translation)",
                    goal_.signature));
}

bool Shrinker::try_header() {
  std::vector<Candidate> cs;
  auto add = [&](const char* machine, bool one_cpu) {
    ProgramHeader h = p_.header;
    if (machine && h.machine != machine) {
      h.machine = machine;
      h.ram.reset();
      h.ram_base.reset();
      h.cma.reset();
      h.nodes.reset();
      h.cpus.reset();
      h.machine_lines.clear();
    } else if (machine) {
      return;
    }
    if (one_cpu) h.cpus = 1;
    try {
      h = h.resolved();
    } catch (const mm::ConfigError&) {
      return;
    }
    if (h.same_run(p_.header)) return;
    cs.push_back({h, p_.ops, {}, {}, false});
  };
  add("fuzz", true);
  add("fuzz", false);
  add("small", true);
  add("small", false);
  add(nullptr, true);
  const int i = first_firing(cs);
  if (i < 0) return false;
  const ProgramHeader h = cs[static_cast<std::size_t>(i)].header;
  accept(p_.ops, &h, "machine");
  return true;
}

// ddmin over the ops, each chunk removed with the ops that use what it
// binds; at the finest granularity this is 1-minimality.
bool Shrinker::ddmin() {
  bool changed = false;
  std::size_t chunks = 2;
  while (p_.ops.size() > 1 && !out_of_time()) {
    const std::size_t n = p_.ops.size();
    chunks = std::min(chunks, n);
    const DepGraph g(p_.ops);
    std::vector<Candidate> cs;
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t lo = n * c / chunks, hi = n * (c + 1) / chunks;
      std::vector<std::uint32_t> removed;
      for (std::size_t i = lo; i < hi; ++i) removed.push_back(static_cast<std::uint32_t>(i));
      std::vector<char> keep(n, 1);
      g.remove_with_users(removed, keep);
      std::vector<Op> ops;
      for (std::size_t i = 0; i < n; ++i)
        if (keep[i]) ops.push_back(p_.ops[i]);
      if (ops.empty()) continue;
      cs.push_back(small(std::move(ops)));
    }
    const int i = first_firing(cs);
    if (i >= 0) {
      accept(std::move(cs[static_cast<std::size_t>(i)].ops), nullptr, "ddmin");
      chunks = std::max<std::size_t>(chunks - 1, 2);
      changed = true;
      continue;
    }
    if (chunks >= n) break;  // 1-minimal
    chunks = std::min(n, chunks * 2);
  }
  return changed;
}

bool Shrinker::simplify_args() {
  bool changed = false;
  for (std::size_t i = 0; i < p_.ops.size() && !out_of_time(); ++i) {
    for (int round = 0; round < 64 && !out_of_time(); ++round) {
      std::vector<Candidate> cs;
      for (Op& v : simpler_ops(p_.ops[i])) {
        std::vector<Op> ops = p_.ops;
        ops[i] = v;
        cs.push_back(small(std::move(ops)));
      }
      const int k = first_firing(cs);
      if (k < 0) break;
      accept(std::move(cs[static_cast<std::size_t>(k)].ops), nullptr, "arguments");
      changed = true;
    }
  }
  return changed;
}

// Provenance carries meaning only when the model uses it: the CPU (pcp
// lists, per-CPU slabs). The rest (timestamps, lines, tasks, call sites) is
// dropped when the failure does not depend on it.
bool Shrinker::canonical_provenance() {
  std::vector<Op> bare = p_.ops;
  bool any = false;
  for (Op& op : bare) {
    any |= op.ts_ns || op.line || op.pid || op.comm || op.call_site;
    op.ts_ns = op.line = 0;
    op.pid = 0;
    op.comm = op.call_site = 0;
  }
  std::vector<Op> cpu0 = bare;
  bool cpus = false;
  for (Op& op : cpu0) {
    cpus |= op.cpu != 0;
    op.cpu = 0;
  }
  if (!any && !cpus) return false;
  std::vector<Candidate> cs;
  if (cpus) cs.push_back(small(cpu0));
  if (any) cs.push_back(small(bare));
  const int k = first_firing(cs);
  if (k < 0) return false;
  accept(std::move(cs[static_cast<std::size_t>(k)].ops), nullptr, "provenance");
  return true;
}

bool Shrinker::renumber() {
  std::vector<Op> r = renumbered(p_.ops);
  bool same = true;
  for (std::size_t i = 0; i < r.size() && same; ++i) same = r[i].args == p_.ops[i].args;
  if (same) return false;
  std::vector<Candidate> cs;
  cs.push_back(small(std::move(r)));
  if (first_firing(cs) < 0) return false;
  accept(std::move(cs[0].ops), nullptr, "renumber");
  return true;
}

void Shrinker::minimize() {
  if (!out_of_time()) try_header();
  for (int round = 0; round < 4 && !out_of_time(); ++round) {
    bool changed = ddmin();
    changed |= canonical_provenance();
    changed |= simplify_args();
    if (!changed) break;
  }
  if (!out_of_time()) renumber();
}

}  // namespace

ShrinkResult shrink(Program p, const Goal& goal, std::uint64_t fail_op, const ShrinkOptions& o) {
  ShrinkResult r;
  p.header.version = kProgramVersion;
  p.header.expect = {goal.signature};
  {
    Shrinker s(p, goal, o);
    s.stats.ops_before = p.ops.size();
    s.slice(fail_op);
    s.minimize();
    s.stats.stopped = s.out_of_time();
    s.stats.seconds = s.elapsed();
    r.stats = std::move(s.stats);
  }
  r.stats.ops_after = p.ops.size();
  r.program = std::move(p);
  return r;
}

}  // namespace mmfuzz::shrink
