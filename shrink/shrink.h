// The one Shrinker: reduces a failing Program to a minimal one that fires
// the same signature alone (docs/shrinking.md). Structure-aware: removing an
// op removes the ops that use what it bound; a long trace is first sliced to
// the failing op's history. Candidates run in parallel on models restored
// from a snapshot and are cached by content; a candidate that fires another
// signature first is rejected, so the result never slips to another bug.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "program/executor.h"
#include "program/program.h"
#include "shrink/runner.h"

namespace mmfuzz::shrink {

// An input the shrinker cannot work on (no violation, an unknown signature).
struct ShrinkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The goal for a Program whose run gave `findings`: `signature` (empty: the
// header's first expected signature when the run shows it, else the first
// finding's) and what may fire before it. `fail_op` is the op index of its
// first finding (ops after it cannot matter). Throws ShrinkError.
Goal goal_for(const prog::ProgramHeader& h, const std::vector<prog::Finding>& findings,
              const std::string& signature, std::uint64_t* fail_op);

struct ShrinkOptions {
  unsigned jobs = 1;
  double seconds = 0;                       // time bound (0: none); the best so far is the result
  const std::atomic<bool>* stop = nullptr;  // set (SIGINT): stop with the best so far
  // Called with each smaller Program that fires (the CLI keeps it on disk).
  std::function<void(const prog::Program&)> on_better;
  // Ops left and candidates tried, now and then (a terminal's progress line).
  std::function<void(std::size_t ops, std::uint64_t candidates)> on_progress;
};

struct ShrinkStats {
  std::size_t ops_before = 0, ops_after = 0;
  std::uint64_t candidates = 0;  // run
  std::uint64_t cached = 0;      // answered by the cache
  double seconds = 0;
  bool stopped = false;             // the time bound or a stop request cut it short
  std::vector<std::string> passes;  // "slice: 327007 -> 3 ops", ...
};

struct ShrinkResult {
  prog::Program program;
  ShrinkStats stats;
};

// Shrinks `p` (which fires `goal` with its first such finding at op
// `fail_op`). The result's header states the goal as its only expectation.
ShrinkResult shrink(prog::Program p, const Goal& goal, std::uint64_t fail_op,
                    const ShrinkOptions& o = {});

// The canonical forms a shrinker tries for one op (each a copy with one
// field moved toward its canonical value): smaller sizes, order 0,
// GFP_KERNEL, node -1, CPU 0, access length 1, no expectations.
std::vector<prog::Op> simpler_ops(const prog::Op& op);
// Handles renumbered 1, 2, ... per space in order of first appearance
// (blocks kept for bulk allocations and split pages).
std::vector<prog::Op> renumbered(const std::vector<prog::Op>& ops);

}  // namespace mmfuzz::shrink
