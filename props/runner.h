// `mmfuzz prop`: runs properties outside GoogleTest. Each property replays
// its saved counterexamples first (the example database), then runs
// RapidCheck batches of generated Programs from a printed seed; the first
// failure is shrunk by RapidCheck (ops removed with their users) and then by
// the Shrinker, and written as a self-describing Program that `mmfuzz
// replay` reproduces alone. Properties run in parallel in forked workers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mm/planted.h"
#include "props/property.h"

namespace mmfuzz::props {

struct PropOptions {
  std::vector<std::string> names;  // empty: every property
  GenKind gen = GenKind::shaped;
  // The profile the shaped generator follows (null: the built-in one).
  const analysis::ProfileData* profile = nullptr;
  std::uint64_t runs = 0;  // cases per property; 0: 100, or as many as --time allows
  std::uint64_t seed = 0;
  double seconds = 0;  // time budget of the whole run (0: none)
  std::size_t max_size = 200;
  unsigned jobs = 1;
  std::string corpus = "corpus/regressions/props";  // read first, failures written here
  std::string out;                                  // summary.md and junit.xml (optional)
  mm::PlantedDefect planted = mm::PlantedDefect::none;
  bool shrink = true;
  bool progress = false;  // a progress line on stderr
};

struct PropResult {
  std::string name;
  std::string generator;
  std::uint64_t cases = 0;       // generated Programs that passed
  std::uint64_t executions = 0;  // Programs run, shrinking included
  std::uint64_t ops = 0;         // ops run
  std::uint64_t batches = 0;
  std::uint64_t replayed = 0;  // saved counterexamples replayed first
  double seconds = 0;
  bool failed = false;
  std::string signature, title;
  std::uint64_t seed = 0;  // the batch seed that reproduces it (--seed)
  std::uint64_t runs = 0;  // with --runs
  std::size_t ops_found = 0, ops_rc = 0, ops_shrunk = 0;
  std::string program;  // the reproducer written (or the saved one that still fails)
  std::string error;    // the worker could not run it (crash, exception)
  Reach reach;
};

// Runs them; the results in property order. Throws std::invalid_argument
// (one line) for an unknown property name.
std::vector<PropResult> run_properties(const PropOptions& o);

// Writes the Programs the generator gives each selected property for
// seeds batch_seed(o.seed, i), i < o.runs (default 100), at o.max_size ops,
// into dir as <property>-<generator>-<i>.program, without running them;
// returns how many.
std::size_t emit_cases(const PropOptions& o, const std::string& dir);

// The seed of batch b of a run started with `seed` (batch 0: seed itself).
std::uint64_t batch_seed(std::uint64_t seed, std::uint64_t b);

void write_summary(const std::string& dir, const PropOptions& o,
                   const std::vector<PropResult>& results);

}  // namespace mmfuzz::props
