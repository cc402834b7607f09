#include "fuzz/mutator.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <variant>
#include <vector>

#include "mm/types.h"

namespace mmfuzz::fuzz {

using prog::Op;

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

// ---- change an argument: per kind where the tables say what is typical,
// by field name elsewhere ----

// A size class from the table that fits the kind (false: none does).
bool resample_size(prog::Kmalloc& a, Rng& r, const DecodeTables& tab) {
  a.size = tab.kmalloc_size[r.below(tab.kmalloc_size.size())];
  return true;
}
bool resample_size(prog::Krealloc& a, Rng& r, const DecodeTables& tab) {
  a.new_size = tab.kmalloc_size[r.below(tab.kmalloc_size.size())];
  return true;
}
bool resample_size(prog::Kvmalloc& a, Rng& r, const DecodeTables& tab) {
  const auto& t = r.one_in(2) ? tab.kmalloc_size : tab.vmalloc_size;
  a.size = t[r.below(t.size())];
  return true;
}
bool resample_size(prog::Vmalloc& a, Rng& r, const DecodeTables& tab) {
  a.size = tab.vmalloc_size[r.below(tab.vmalloc_size.size())];
  return true;
}
bool resample_size(prog::AllocPagesExact& a, Rng& r, const DecodeTables& tab) {
  a.size = tab.vmalloc_size[r.below(tab.vmalloc_size.size())];
  return true;
}
bool resample_size(prog::AllocPages& a, Rng& r, const DecodeTables& tab) {
  a.order = tab.order[r.below(tab.order.size())];
  return true;
}
bool resample_size(prog::FreePages& a, Rng& r, const DecodeTables& tab) {
  a.order = tab.order[r.below(tab.order.size())];
  return true;
}
template <class T>
bool resample_size(T&, Rng&, const DecodeTables&) {
  return false;
}

// The length-like argument of a kind, for boundary mutations (one past,
// one short).
template <class T>
std::uint64_t* size_field(T& a) {
  if constexpr (requires { a.len; })
    return &a.len;
  else if constexpr (requires { a.new_size; })
    return &a.new_size;
  else if constexpr (requires { a.nr_pages; })
    return &a.nr_pages;
  else if constexpr (requires { requires sizeof(a.size) == 8; })
    return &a.size;
  else
    return nullptr;
}

template <class T>
void nudge(T& a, Rng& r, bool boundary) {
  if constexpr (requires { a.nr; }) {
    a.nr = r.one_in(2) && a.nr ? a.nr - 1 : a.nr + 1;
  } else if constexpr (requires { a.new_min_nr; }) {
    a.new_min_nr = r.one_in(2) ? a.new_min_nr - 1 : a.new_min_nr + 1;
  } else if (std::uint64_t* s = size_field(a)) {
    if (boundary && r.one_in(2))
      *s = *s ? *s - 1 : 1;
    else
      *s += 1;
  }
}

template <class T>
void change_gfp(T& a, Rng& r, const DecodeTables& tab) {
  if constexpr (requires { a.gfp; }) {
    constexpr bool pages =
        std::is_same_v<T, prog::AllocPages> || std::is_same_v<T, prog::AllocPagesExact>;
    const auto& t = pages ? tab.page_gfp : tab.slab_gfp;
    a.gfp = t[r.below(t.size())];
  }
}

template <class T>
void change_offset(T& a, Rng& r) {
  if constexpr (requires { a.offset; }) a.offset += 8 * (1 + r.below(4));
  if constexpr (requires { a.byte; }) a.byte = static_cast<std::uint8_t>(r.s.next());
  if constexpr (requires { a.value; }) a.value = static_cast<std::uint32_t>(r.s.next());
  if constexpr (requires { a.api; }) {
    if (r.one_in(4)) a.api = static_cast<decltype(a.api)>(static_cast<unsigned>(a.api) + 1);
  }
}

void change_argument(Op& op, Rng& r, const DecodeTables& tab) {
  const std::size_t which = r.below(5);
  if (which == 0) {
    op.cpu = static_cast<std::int16_t>(op.cpu ^ 1);
    return;
  }
  std::visit(
      [&](auto& a) {
        switch (which) {
          case 1:  // a size class
            if (!resample_size(a, r, tab)) nudge(a, r, false);
            return;
          case 2:  // boundary sizes and offsets: one past, one short
            nudge(a, r, true);
            return;
          case 3:
            change_gfp(a, r, tab);
            return;
          default:
            change_offset(a, r);
            return;
        }
      },
      op.args);
}

// Moves a window's handles out of the way of the input it is spliced into.
void shift_handles(prog::OpArgs& args, std::uint64_t by) {
  std::visit(
      [by](auto& a) {
        auto shift = [by](prog::Handle& h) {
          if (h) h += by;
        };
        if constexpr (requires { a.obj; }) shift(a.obj);
        if constexpr (requires { a.page; }) shift(a.page);
        if constexpr (requires { a.area; }) shift(a.area);
        if constexpr (requires { a.pool; }) shift(a.pool);
        if constexpr (requires { a.h; }) shift(a.h);
      },
      args);
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
                 Op{.args = prog::Check{}});
      break;
  }
  // Now and then another machine: the same ops on zones, nodes or CMA.
  if (r.one_in(16))
    set_fuzz_machine(d.program.header, static_cast<unsigned>(r.below(fuzz_machines().size())));
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
    shift_handles(op.args, kShift);
    if (const prog::StrId name = prog::name_of(op.args))
      prog::set_name(op.args, a.program.strings.intern(b.program.strings.str(name)));
    window.push_back(op);
  }
  const std::size_t at = r.below(ops.size() + 1);
  ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(at), window.begin(), window.end());
  return emit(encode(a.program, t, tab), out, max_out);
}

}  // namespace mmfuzz::fuzz
