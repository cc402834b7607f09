// Kernel-style descriptions of pages for reports: dump_page() lines and the
// page_owner history.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "invariants/violation.h"

namespace mmfuzz::mm {
class Mm;
}

namespace mmfuzz::inv {

std::vector<std::string> dump_page(const mm::Mm& mm, std::uint64_t pfn);
std::vector<HistoryEntry> page_history(const mm::Mm& mm, std::uint64_t pfn);
// A violation about one page, with its dump and history filled in.
Violation page_violation(const mm::Mm& mm, ViolationKind kind, std::string invariant,
                         std::string title, std::uint64_t pfn, std::vector<std::string> details);

}  // namespace mmfuzz::inv
