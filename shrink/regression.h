// A shrunk Program as a GoogleTest regression test: dropping the source in
// tests/regressions/ adds it (a CMake glob picks it up).
#pragma once

#include <string>

#include "program/program.h"

namespace mmfuzz::shrink {

// A test named `name` (made an identifier) that runs `p` from its text under
// its header and asserts that p.header.expect[0] fires; skipped when the
// build lacks the header's planted defect. `origin` says where it came from.
std::string gtest_source(const prog::Program& p, const std::string& name,
                         const std::string& origin);

}  // namespace mmfuzz::shrink
