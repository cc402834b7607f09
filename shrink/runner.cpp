#include "shrink/runner.h"

#include "program/differential.h"

namespace mmfuzz::shrink {

using namespace mmfuzz::prog;

namespace {

// Decides on the findings from index `from` on (in the order found).
bool decide(const std::vector<Finding>& f, std::size_t from, const Goal& goal, Outcome& out) {
  for (std::size_t i = from; i < f.size(); ++i) {
    const std::string sig = f[i].violation.signature();
    if (sig == goal.signature) {
      out = Outcome::fires;
      return true;
    }
    if (!goal.allowed_before.count(sig)) {
      out = Outcome::other;
      return true;
    }
  }
  return false;
}

// The header with what only names or expects the run dropped: the key of a
// booted model.
std::string model_key(const ProgramHeader& h) {
  ProgramHeader k = h;
  k.expect.clear();
  k.target.clear();
  return print_header(k);
}

}  // namespace

Runner::Model* Runner::model(const ProgramHeader& h) {
  auto [it, added] = models_.try_emplace(model_key(h));
  Model& m = it->second;
  if (added) {
    try {
      const mm::MmConfig cfg = h.mm_config();
      m.snap = std::make_unique<mm::Mm>(cfg);
      m.work = std::make_unique<mm::Mm>(cfg);
    } catch (const mm::ConfigError&) {
      m.snap.reset();  // this header cannot boot: every candidate under it is clean
    }
  }
  if (!m.snap) return nullptr;
  if (m.dirty) m.work->restore_from(*m.snap);
  m.dirty = true;
  return &m;
}

// A differential run (the header's `diff:`): every configuration on its own
// restored model, in lockstep; its one finding decides.
Outcome Runner::run_diff(const ProgramHeader& h, std::span<const Op> base,
                         const std::vector<std::uint32_t>* idx, const Goal& goal) {
  std::vector<DiffConfig> configs;
  try {
    configs = diff_configs(h);
  } catch (const mm::ConfigError&) {
    return Outcome::clean;
  }
  std::vector<mm::Mm*> models;
  for (const DiffConfig& c : configs) {
    Model* m = model(c.header);
    if (!m) return Outcome::clean;
    models.push_back(m->work.get());
  }
  Differential d(models, configs, strings_, false);
  const std::size_t n = idx ? idx->size() : base.size();
  for (std::size_t i = 0; i < n && d.step(base[idx ? (*idx)[i] : i]); ++i) {
  }
  Outcome out = Outcome::clean;
  if (const auto& f = d.finish()) decide({*f}, 0, goal, out);
  return out;
}

Outcome Runner::run(const ProgramHeader& h, std::span<const Op> base,
                    const std::vector<std::uint32_t>* idx, const Goal& goal) {
  if (h.diff != DiffMode::none) return run_diff(h, base, idx, goal);
  Model* m = model(h);
  if (!m) return Outcome::clean;
  ExecOptions eo = h.exec_options();
  eo.capture_stacks = false;  // the final run captures them
  Executor ex(*m->work, strings_, eo);
  Outcome out = Outcome::clean;
  const std::size_t n = idx ? idx->size() : base.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t seen = ex.findings().size();
    ex.step(base[idx ? (*idx)[i] : i]);
    if (ex.findings().size() != seen && decide(ex.findings(), seen, goal, out)) return out;
  }
  const std::size_t seen = ex.findings().size();
  const Verdict v = ex.finish();
  decide(v.findings, seen, goal, out);
  return out;
}

Verdict run_fresh(const Program& p) {
  if (p.header.diff == DiffMode::none)
    return Executor::run(p, p.header.mm_config(), p.header.exec_options());
  const DiffRun r = run_differential_full(p);
  Verdict v;
  if (r.finding) v.findings.push_back(*r.finding);
  v.nr_violations = v.findings.size();
  v.ops = r.stats.ops;
  return v;
}

}  // namespace mmfuzz::shrink
