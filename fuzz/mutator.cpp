#include "fuzz/mutator.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::fuzz {

using prog::Op;
using prog::OpKind;

namespace {

struct Rng {
  mm::SplitMix64 s;
  explicit Rng(unsigned seed) { s.s = seed; }
  std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(s.next() % n) : 0; }
  bool one_in(unsigned n) { return below(n) == 0; }
};

// A fresh op: random bytes decoded after the Program's own bytes give an op
// that refers to the Program's live handles.
std::vector<std::uint8_t> random_op_bytes(Rng& r) {
  std::vector<std::uint8_t> b(12);
  for (auto& x : b) x = static_cast<std::uint8_t>(r.s.next());
  return b;
}

void change_argument(Op& op, Rng& r, const DecodeTables& tab) {
  switch (r.below(5)) {
    case 0:
      op.cpu = static_cast<std::int16_t>(op.cpu ^ 1);
      return;
    case 1:
      if (op.kind == OpKind::kmalloc)
        op.size = tab.kmalloc_size[r.below(tab.kmalloc_size.size())];
      else if (op.kind == OpKind::alloc_pages || op.kind == OpKind::free_pages)
        op.order = tab.order[r.below(tab.order.size())];
      else if (op.kind == OpKind::vmalloc)
        op.size = tab.vmalloc_size[r.below(tab.vmalloc_size.size())];
      else
        op.size = op.size + 1;
      return;
    case 2:  // boundary sizes and offsets: one past, one short
      if (r.one_in(2))
        op.size = op.size ? op.size - 1 : 1;
      else
        op.size += 1;
      return;
    case 3:
      if (op.kind == OpKind::alloc_pages)
        op.gfp = tab.page_gfp[r.below(tab.page_gfp.size())];
      else
        op.gfp = tab.slab_gfp[r.below(tab.slab_gfp.size())];
      return;
    default:
      op.arg += 8 * (1 + r.below(4));
      op.byte = static_cast<std::uint8_t>(r.s.next());
      return;
  }
}

std::size_t emit(const std::vector<std::uint8_t>& bytes, std::uint8_t* out, std::size_t max) {
  const std::size_t n = std::min(bytes.size(), max);
  if (n) std::memcpy(out, bytes.data(), n);
  return n;
}

}  // namespace

std::size_t mutate(std::uint8_t* data, std::size_t size, std::size_t max_size, unsigned seed,
                   const TargetSpec& t, const DecodeTables& tab, ByteMutator bytes) {
  Rng r(seed);
  if (bytes && r.one_in(4)) return bytes(data, size, max_size);
  Decoded d = decode({data, size}, t, tab);
  auto& ops = d.program.ops;
  const std::size_t n = ops.size();
  // Mostly the five structural mutations; now and then a full `check`.
  switch (n ? (r.one_in(24) ? 5 : r.below(5)) : 0) {
    case 0: {  // insert a fresh op (decoded in the context of the ops before it)
      const std::size_t at = r.below(n + 1);
      std::vector<Op> head(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(at));
      prog::Program pre;
      pre.ops = head;
      pre.strings = d.program.strings;
      std::vector<std::uint8_t> b = encode(pre, t, tab);
      const auto extra = random_op_bytes(r);
      b.insert(b.end(), extra.begin(), extra.end());
      Decoded grown = decode(b, t, tab);
      if (grown.program.ops.size() > at) {
        ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(at), grown.program.ops[at]);
        d.program.strings = grown.program.strings;
      }
      break;
    }
    case 1: {  // delete one op or a run
      const std::size_t at = r.below(n);
      const std::size_t len = r.one_in(3) ? 1 + r.below(std::min<std::size_t>(8, n - at)) : 1;
      ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(at),
                ops.begin() + static_cast<std::ptrdiff_t>(at + len));
      break;
    }
    case 2: {  // duplicate an op (a second free is a double free)
      const Op op = ops[r.below(n)];
      ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(r.below(n + 1)), op);
      break;
    }
    case 3: {  // move an op elsewhere (a free before its allocation is dropped)
      const std::size_t from = r.below(n);
      const Op op = ops[from];
      ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(from));
      ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(r.below(n)), op);
      break;
    }
    case 4:
      change_argument(ops[r.below(n)], r, tab);
      break;
    default:  // a check now: sweeps are cheap to ask for, expensive to do always
      ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(r.below(n + 1)),
                 Op{.kind = OpKind::check});
      break;
  }
  const auto out = encode(d.program, t, tab);
  if (out.empty() && bytes) return bytes(data, size, max_size);
  return emit(out, data, max_size);
}

std::size_t cross_over(const std::uint8_t* d1, std::size_t s1, const std::uint8_t* d2,
                       std::size_t s2, std::uint8_t* out, std::size_t max_out, unsigned seed,
                       const TargetSpec& t, const DecodeTables& tab) {
  Rng r(seed);
  Decoded a = decode({d1, s1}, t, tab);
  Decoded b = decode({d2, s2}, t, tab);
  auto& ops = a.program.ops;
  if (b.program.ops.empty()) return emit(encode(a.program, t, tab), out, max_out);
  // Splice a window of b into a. b's handles move out of a's way; the
  // encoder drops the window's ops whose allocations were left behind.
  const std::size_t from = r.below(b.program.ops.size());
  const std::size_t len = 1 + r.below(std::min<std::size_t>(32, b.program.ops.size() - from));
  constexpr std::uint64_t kShift = std::uint64_t{1} << 40;
  std::vector<Op> window;
  for (std::size_t i = from; i < from + len; ++i) {
    Op op = b.program.ops[i];
    if (op.h) op.h += kShift;
    if (op.h2) op.h2 += kShift;
    if (op.name) op.name = a.program.strings.intern(b.program.strings.str(op.name));
    window.push_back(op);
  }
  const std::size_t at = r.below(ops.size() + 1);
  ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(at), window.begin(), window.end());
  return emit(encode(a.program, t, tab), out, max_out);
}

}  // namespace mmfuzz::fuzz
