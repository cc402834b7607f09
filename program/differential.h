// Differential runs: one Program under several configurations (`diff:` in
// its header, program/header.h), compared op by op on what a caller of the
// kernel API can see (docs/properties.md, "Differential properties").
//
// The configurations run in lockstep, each on its own model through the one
// Executor. After every op:
//   1. a finding of a configuration's own checkers (a model bug, or the
//      Program's misuse) ends the run: the first configuration's first;
//   2. else the op's results are compared; the first disagreement ends the
//      run as a Finding `diff.<dimension>` at that op.
// Compared: ran, failed, blocked (mempool), the bytes a read returned, the
// page order and migratetype of alloc_pages, and rules every allocator
// keeps (bytes_alloc >= size, ksize >= size). Not compared: addresses,
// pfns, bytes_alloc values, anything allocator geometry decides. An
// allocation failing for want of memory is legitimate: `failed` is judged
// only where memory is plentiful (plentiful() below); where the
// configurations legitimately part, the handle (cache, pool) is set aside
// until it is bound again.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mm/mm.h"
#include "program/executor.h"
#include "program/program.h"

namespace mmfuzz::prog {

// One configuration of a differential run.
struct DiffConfig {
  std::string name;      // "SLUB", "linux-5.10-arm64": what messages call it
  ProgramHeader header;  // the Program's, allocator or profile replaced, no diff
};

// The configurations h.diff names, h's own first (none: empty). Throws
// mm::ConfigError for a header that cannot be resolved.
std::vector<DiffConfig> diff_configs(const ProgramHeader& h);

// What is compared; a disagreement in dimension d is the finding diff.<d>.
enum class DiffDim : std::uint8_t {
  ran,          // the op ran (its handle, cache or pool was bound)
  failed,       // the allocation (or access, create, resize) failed
  blocked,      // mempool_alloc went to sleep
  contents,     // the bytes a read returned, where the Program defined them
  order,        // alloc_pages: the order of the pages handed out
  migratetype,  // alloc_pages: their migratetype (from the GFP mask)
  bytes_alloc,  // rule: an allocation's traced bytes_alloc >= its size
  ksize,        // rule: ksize() of an object >= its size
};
inline constexpr std::size_t kNrDiffDims = 8;
const char* diff_dim_name(DiffDim d);

struct DiffStats {
  std::uint64_t ops = 0;  // ops run under every configuration
  // Per dimension: comparisons made, and ones a rule set aside (memory not
  // plentiful, a handle the configurations bound differently, a read of
  // bytes the Program did not define).
  std::array<std::uint64_t, kNrDiffDims> compared{}, excluded{};
  std::uint64_t parted = 0;  // handles, caches and pools set aside when the runs parted
  // The op after which nothing more was compared (the Program misused
  // memory with checks off: each allocator corrupts its own way), and why.
  std::optional<std::uint64_t> stopped_at;
  std::string stopped_why;
};

// Memory is plentiful for a request when, before it, the zones the GFP mask
// allows hold a free block of `order` pages or larger (the free lists of
// the unmovable, movable and reclaimable types: no CMA, no atomic reserve,
// no pcp pages) and their free pages exceed the high watermarks by `pages`
// plus 1/16 of their managed pages. An allocation that fails then is a bug.
bool plentiful(const mm::Mm& m, Gfp gfp, unsigned order, std::uint64_t pages);

class Differential {
 public:
  // models[i] runs configs[i] (freshly booted or restored from a snapshot
  // of that configuration); the Program's strings name its caches.
  Differential(const std::vector<mm::Mm*>& models, const std::vector<DiffConfig>& configs,
               const StringTable& strings, bool capture_stacks = true);
  ~Differential();
  Differential(const Differential&) = delete;
  Differential& operator=(const Differential&) = delete;

  // Runs op under every configuration and compares. False once a finding
  // decided the run (finding()); later calls do nothing.
  bool step(const Op& op);
  // The final sweeps (each configuration's findings at the end).
  const std::optional<Finding>& finish();
  const std::optional<Finding>& finding() const { return finding_; }
  const DiffStats& stats() const { return stats_; }
  const std::vector<DiffConfig>& configs() const { return configs_; }
  // Configuration i's Executor and model (tests corrupt one on purpose).
  Executor& executor(std::size_t i) { return *ex_[i]; }
  mm::Mm& model(std::size_t i) { return *models_[i]; }

 private:
  struct View;
  struct Shape;
  struct CacheView {
    std::uint64_t size = 0;  // what the Program's kmem_cache_create asked for
    bool parted = false;     // the configurations hold different caches by this name
  };
  struct PoolView {
    PoolKind kind = PoolKind::kmalloc;
    std::uint64_t size = 0;  // kmalloc pools: the element size
    std::uint8_t order = 0;  // page pools
    StrId cache = 0;         // slab pools
    bool parted = false;     // its reserve may differ between the configurations
  };
  struct Key {
    Space space;
    Handle h;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return std::hash<std::uint64_t>{}(k.h * 4 + static_cast<std::uint64_t>(k.space));
    }
  };
  enum class Part : std::uint8_t { same, parted, found };

  Shape shape_of(const Op& op) const;
  bool plentiful_for(const Op& op, const Shape& s, std::size_t i) const;
  std::uint64_t cache_size(StrId name) const;  // the smallest object size of the configurations
  bool checker_finding();
  void compare(const Op& op, const Shape& s, const std::vector<bool>& plenty);
  Part compare_outcome(const Op& op, const Shape& s, const std::vector<bool>& plenty);
  bool compare_access(const Op& op, const Shape& s);
  bool compare_contents(const Op& op, const Shape& s, const View& v);
  bool compare_rules(const Op& op, const Shape& s);
  bool compare_pages(const Op& op);
  void update(const Op& op, const Shape& s, bool parted);
  void update_alloc(const Op& op, const Shape& s, bool parted);
  void update_krealloc(const Krealloc& a, bool parted);
  void update_use(const Op& op, const Shape& s);
  bool names_parted(const Shape& s) const;
  void disagree(const Op& op, DiffDim d, std::string what, std::vector<std::string> details = {});
  // "SLUB x, SLAB y, SLOB z" with value(i) per configuration.
  template <class F>
  std::string per_config(F&& value) const;
  View& view(Space space, Handle h);
  const View* find(Space space, Handle h) const;
  std::string describe(const Op& op) const;
  void misuse(const char* why) {
    if (misused_) return;
    misused_ = true;
    stats_.stopped_at = index_;
    stats_.stopped_why = why;
  }
  void count(DiffDim d, bool compared) {
    ++(compared ? stats_.compared : stats_.excluded)[static_cast<std::size_t>(d)];
  }

  std::vector<DiffConfig> configs_;
  std::vector<mm::Mm*> models_;
  std::vector<std::unique_ptr<Executor>> ex_;
  const StringTable& strings_;
  std::vector<OpResult> res_;                     // the op's result per configuration
  std::vector<std::vector<std::uint8_t>> bytes_;  // what a read op read, per configuration
  std::unordered_map<Key, View, KeyHash> views_;
  std::unordered_map<StrId, CacheView> caches_;  // caches the Program created
  std::unordered_map<Handle, PoolView> pools_;
  // The Program misused memory (a write out of bounds or after free, a
  // double free) and checks did not stop it: each allocator corrupts its
  // own way, so nothing after it is compared.
  bool misused_ = false;
  std::uint64_t index_ = 0;
  bool finished_ = false;
  std::optional<Finding> finding_;
  DiffStats stats_;
};

struct DiffRun {
  std::optional<Finding> finding;
  DiffStats stats;
  std::vector<std::string> configs;  // their names, in order
};

// Boots each configuration of p.header.diff and runs p differentially.
// Throws mm::ConfigError (a configuration that cannot boot).
DiffRun run_differential_full(const Program& p, bool capture_stacks = true);
// The finding of a differential run of p under its header's `diff:` (none
// when the configurations agree and no checker fired). A header without
// `diff:` runs nothing and returns none.
std::optional<Finding> run_differential(const Program& p);

}  // namespace mmfuzz::prog
