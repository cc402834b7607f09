#include "trace/window.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "mm/mm.h"
#include "program/text.h"

namespace mmfuzz::trace {

namespace {

// The creates of the caches alive when the window starts, in Program order.
std::vector<std::size_t> live_creates(const Program& whole, std::size_t offset) {
  std::unordered_map<prog::StrId, std::size_t> last;
  for (std::size_t i = 0; i < offset; ++i) {
    if (const auto* c = whole.ops[i].get_if<prog::KmemCacheCreate>()) last[c->name] = i;
    if (const auto* d = whole.ops[i].get_if<prog::KmemCacheDestroy>()) last.erase(d->name);
  }
  std::vector<std::size_t> out;
  for (const auto& [name, i] : last) out.push_back(i);
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t disagreements(const std::vector<FidelityMetric>& m) {
  std::uint64_t n = 0;
  for (const auto& x : m) n += x.total - x.agree;
  return n;
}

}  // namespace

WindowResult check_trace_window(const Program& whole, std::size_t offset, std::size_t n) {
  WindowResult r;
  r.offset = std::min(offset, whole.ops.size());
  r.n = std::min(n, whole.ops.size() - r.offset);
  r.metrics = fidelity_metrics();
  mm::Mm m(whole.header.mm_config());
  ExecOptions eo = whole.header.exec_options();
  eo.mode = prog::CheckMode::off;
  eo.final_sweep = false;
  eo.provenance = false;
  Executor ex(m, whole.strings, eo);
  for (const std::size_t i : live_creates(whole, r.offset)) {
    ex.step(whole.ops[i]);
    ++r.prefix_ops;
  }
  const std::uint64_t large_above =
      m.slab.initialized() ? m.slab.kmalloc_max_cache_size() : ~std::uint64_t{0};
  for (std::size_t i = r.offset; i < r.offset + r.n; ++i) {
    const Op& op = whole.ops[i];
    const OpResult& res = ex.step(op);
    if (!res.ran) {
      ++r.skipped;
      continue;
    }
    ++r.ran;
    // A kmalloc above the largest kmalloc cache: the trace's bytes_alloc is
    // its pages (PAGE_SIZE << order).
    unsigned large = ~0u;
    if (const auto* k = op.get_if<prog::Kmalloc>(); k && k->expect_bytes_alloc > large_above)
      large = mm::fls64((k->expect_bytes_alloc - 1) >> m.profile.page_shift);
    const std::uint64_t before = disagreements(r.metrics);
    const auto example = [&] {
      std::string line = prog::format_op(op, whole.strings);
      line.erase(0, line.find_first_not_of(' '));
      return fmt::format("op {}{}: {}", i, op.line ? fmt::format(" (line {})", op.line) : "", line);
    };
    measure_fidelity(r.metrics, op, res, large, example);
    if (r.first_op || disagreements(r.metrics) == before) continue;
    r.first_op = i;
    for (const auto& x : r.metrics)
      for (const auto& [k, d] : x.disagreements)
        r.first = fmt::format("{}: trace {}, model {}: {}", x.name, d.trace_value, d.model_value,
                              example());
  }
  return r;
}

}  // namespace mmfuzz::trace
