// The properties' own test: a property run on a model with a planted defect
// must fail, and its failure must be a Program that replays to the defect.
#pragma once

#include <functional>
#include <string_view>

#include "mm/mm.h"
#include "program/executor.h"

namespace mmfuzz::props {

// Runs `property` as RapidCheck would (fixed seed, 100 cases, shrinking) with
// MMFUZZ_PROP_OUT set, and expects: it fails; the failure text holds the
// whole saved Program and how to replay it; the saved Program, run by the
// Executor as its own header says (the machine of `cfg`), yields a violation
// of `invariant`.
void expect_failure_with_program(const std::function<void()>& property, const mm::MmConfig& cfg,
                                 std::string_view invariant);

}  // namespace mmfuzz::props
