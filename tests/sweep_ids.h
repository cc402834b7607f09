// Test helper: the invariant ids one full sweep of a model reports (a set:
// a sweep may report one id several times), and their texts if asked.
#pragma once

#include <set>
#include <string>

#include "invariants/checker.h"
#include "mm/mm.h"

namespace mmfuzz::testing {

using Ids = std::set<std::string>;

inline Ids sweep_ids(mm::Mm& mm, std::string* text = nullptr) {
  inv::CheckOptions o;
  o.capture_stacks = false;
  inv::CheckEngine e(mm, o);
  e.full_sweep();
  Ids s;
  for (const auto& v : e.violations()) {
    s.insert(v.invariant);
    if (text) *text += v.to_text(false);
  }
  return s;
}

}  // namespace mmfuzz::testing
