#include "props/rc_program.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "shrink/deps.h"

namespace mmfuzz::prog {
void showValue(const Program& p, std::ostream& os) {
  os << "a Program of " << p.ops.size() << " ops";
}
}  // namespace mmfuzz::prog

namespace mmfuzz::props {

namespace {

// p without ops [start, start + len) and the ops that use what they bound.
prog::Program without(const prog::Program& p, const shrink::DepGraph& g, std::uint32_t start,
                      std::uint32_t len) {
  std::vector<char> keep(p.ops.size(), 1);
  std::vector<std::uint32_t> removed(len);
  for (std::uint32_t i = 0; i < len; ++i) removed[i] = start + i;
  g.remove_with_users(removed, keep);
  prog::Program out;
  out.header = p.header;
  out.strings = p.strings;
  for (std::size_t i = 0; i < p.ops.size(); ++i)
    if (keep[i]) out.ops.push_back(p.ops[i]);
  return out;
}

}  // namespace

rc::Seq<prog::Program> shrink_program(const prog::Program& p) {
  const auto n = static_cast<std::uint32_t>(p.ops.size());
  if (n == 0) return rc::Seq<prog::Program>();
  std::vector<std::pair<std::uint32_t, std::uint32_t>> chunks;
  for (std::uint32_t len = std::max(n / 2, 1u);; len /= 2) {
    for (std::uint32_t s = 0; s < n; s += len) chunks.emplace_back(s, std::min(len, n - s));
    if (len == 1) break;
  }
  auto base = std::make_shared<const prog::Program>(p);
  auto graph = std::make_shared<const shrink::DepGraph>(base->ops);
  return rc::seq::map(rc::seq::fromContainer(std::move(chunks)),
                      [base, graph](const std::pair<std::uint32_t, std::uint32_t>& c) {
                        return without(*base, *graph, c.first, c.second);
                      });
}

rc::Gen<prog::Program> gen_program(MakeProgram make, std::size_t max_ops) {
  return rc::Gen<prog::Program>(
      [make = std::move(make), max_ops](const rc::Random& random, int size) {
        rc::Random r = random;
        const std::uint64_t seed = r.next();
        const std::size_t ops = std::max<std::size_t>(
            1, max_ops * static_cast<std::size_t>(std::max(size, 0)) / rc::kNominalSize);
        return rc::shrinkable::shrinkRecur(make(seed, ops), &shrink_program);
      });
}

}  // namespace mmfuzz::props
