// The one Executor: runs Ops against a model with the checkers attached and
// yields a Verdict. Trace replay, tests, and later the fuzzers, properties
// and the shrinker all run Programs through it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "invariants/checker.h"
#include "mm/mm.h"
#include "program/program.h"

namespace mmfuzz::prog {

// CheckMode: program/header.h (a Program's header names it).

// The Executor's cuts, so that a Program cannot make the host allocate
// without bound: client accesses longer than kMaxAccess bytes are cut, and
// kmem_cache_alloc_bulk allocates at most kMaxBulk objects. The
// differential runner and the oracle cut alike.
inline constexpr std::uint64_t kMaxAccess = 1 << 20;
inline constexpr std::uint32_t kMaxBulk = 1024;

struct ExecOptions {
  CheckMode mode = CheckMode::incremental;
  std::uint64_t check_every = 0;  // full sweep every N ops (0: only at the end)
  std::string checks = "all";     // invariant selection (see `mmfuzz checks`)
  bool capture_stacks = true;
  bool report_leaks = false;
  std::size_t max_findings = 1000;  // kept with provenance; more are only counted
  // finish() sweeps everything once more. Fuzzers turn it off: a sweep costs
  // more than a whole 64-op Program, and the incremental checks cover the ops.
  bool final_sweep = true;
  bool record_misuse = true;  // off: misuse is not reported (fuzzers; see CheckOptions)
  // Off (fuzzers): a write the model's KASAN view refuses (out of bounds,
  // after free) is reported but not performed, so the bytes the allocator
  // keeps in free memory are never the Program's (vmalloc writes never get
  // past a fault anyway). The decoder already turns the
  // writes it knows are misuse into reads; this catches the ones it cannot
  // know, e.g. a stale handle whose address was reused and then freed.
  bool misuse_writes = true;
  // Remember which op allocated and last freed each handle, for the
  // findings' "Allocated by / Freed by" blocks (one Op copy per handle).
  bool provenance = true;
  // Post-conditions from reference models on every op's result (oracle.h).
  bool oracle = false;
};

// What the model did for the last op: the fidelity report compares it with
// what the trace says the kernel did.
struct OpResult {
  bool ran = false;     // false: the op named an unbound handle or cache and was skipped
  bool failed = false;  // an allocation returned NULL, or a write/read faulted or was refused
  std::uint64_t addr = 0;
  std::uint64_t pfn = mm::NO_PAGE;
  std::uint64_t bytes_alloc = 0;  // kmalloc / kmem_cache_alloc as the model traced it
  unsigned order = 0;             // first page allocation of the op
  int migratetype = -1;           // of that page allocation
  bool page_alloc = false;        // the op allocated pages
  bool blocked = false;           // mempool_alloc sleeps until a mempool_free wakes it
  bool misuse = false;            // the model reported the op as misuse (and may have refused it)
};

// An op of the Program and its index (one numbering: 0-based, as the ops run).
struct OpAt {
  std::uint64_t index = 0;
  Op op;
};

// What an op does to the handle it names (op_target()).
enum class HandleRole : std::uint8_t { use, alloc, free };
// The object, pages or area an op is about, if any: kfree's object,
// alloc_pages' pages, a write's handle. Cache and pool ops name none.
bool op_target(const Op& op, Space& space, Handle& h, HandleRole& role);

// A violation and the op after which it was seen.
struct Finding {
  inv::Violation violation;
  std::uint64_t op_index = 0;
  Op op;  // with its provenance (line, timestamp, CPU, pid/comm, call_site)
  // The object or pages that op names, in the Program's terms (for a
  // replayed trace: the trace's ptr or pfn), the model's address of it, and
  // the ops that allocated it and last freed it before this op: the
  // "Allocated by / Freed by" blocks of the report.
  Space space = Space::object;
  Handle handle = 0;             // 0: the op names none
  std::uint64_t model_addr = 0;  // the object's or area's address; the first pfn of pages
  std::optional<OpAt> allocated, freed;
  std::uint32_t nr_frees = 0;  // frees of it since that allocation
};

struct Verdict {
  std::vector<Finding> findings;
  std::uint64_t nr_violations = 0;  // including the ones past max_findings
  std::uint64_t ops = 0;
  std::uint64_t skipped_ops = 0;
  std::map<std::string, std::uint64_t> skip_reasons;  // why ops were skipped
  std::uint64_t full_sweeps = 0;
  bool ok() const { return nr_violations == 0; }
};

class Oracle;

class Executor : public mm::MmObserver {
 public:
  // Runs ops on `mm` (fresh or restored from a snapshot); strings resolve the
  // Ops' cache names, comms and call sites.
  Executor(mm::Mm& mm, const StringTable& strings, ExecOptions opts = {});
  ~Executor() override;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const OpResult& step(const Op& op);
  // A finding the ops' source raised about `op` (the trace family,
  // invariants/trace.h), not the model: reported through the checkers
  // (selection, cap, count) with the op's provenance, at the index of the
  // next op step() runs. wants(): whether one with this id would be kept
  // (checks on and selected); ask first and build nothing otherwise.
  bool wants(std::string_view id) const;
  void report(const Op& op, inv::Violation v);
  // Final full sweep (and leak report); the verdict of everything run so far.
  Verdict finish();
  // Boots a fresh model and runs a whole Program.
  static Verdict run(const Program& p, const mm::MmConfig& cfg, ExecOptions opts = {});

  mm::Mm& mm() { return mm_; }
  const OpResult& last() const { return res_; }
  std::uint64_t ops() const { return ops_; }
  std::uint64_t nr_violations() const { return nr_violations_; }
  const std::vector<Finding>& findings() const { return findings_; }
  const char* skip_reason() const { return skip_reason_; }
  // The bytes of the last write or read op (for a read: what it read), so
  // property generators can check them against their reference model.
  std::span<const std::uint8_t> last_access() const { return buf_; }

  // The live set, by handle space.
  std::uint64_t live_objects() const { return live_objects_; }
  std::uint64_t live_kmalloc_bytes() const { return live_kmalloc_bytes_; }
  std::uint64_t live_page_allocs() const { return live_pages_; }
  std::uint64_t live_areas() const { return live_areas_; }
  // The model cache an Op cache name resolves to (0: none yet).
  mm::cache_id cache_of(std::uint32_t name) const;

  // MmObserver: what the model did during the op.
  void mm_page_alloc(mm::pfn_t pfn, unsigned order, mm::gfp_t gfp, int mt) override;
  void kmalloc(mm::vaddr_t ptr, std::uint64_t bytes_req, std::uint64_t bytes_alloc, mm::gfp_t gfp,
               int node, bool accounted) override;
  void kmem_cache_alloc(mm::vaddr_t ptr, std::uint64_t bytes_req, std::uint64_t bytes_alloc,
                        mm::gfp_t gfp, int node, bool accounted) override;
  void misuse(const mm::Misuse&) override { res_.misuse = true; }

 private:
  friend class Oracle;
  enum class ObjKind : std::uint8_t { kmalloc, cache, pool, kvmalloc };
  struct Object {
    mm::vaddr_t addr = 0;
    std::uint64_t size = 0;
    mm::cache_id cache = 0;  // kmem_cache_alloc
    std::uint32_t pool = 0;  // mempool_alloc: the pool's model id
    ObjKind kind = ObjKind::kmalloc;
    bool live = false;
    bool vmalloc = false;       // kvmalloc fell back to vmalloc: accesses walk the page tables
    std::uint64_t ticket = 0;   // mempool_alloc asleep on this wait (0: none)
    bool free_refused = false;  // the model reported the last free (it may not have freed)
    std::uint32_t prov = 0;     // 1 + its index in provs_ (0: none yet)
  };
  struct Pages {
    mm::pfn_t pfn = mm::NO_PAGE;
    unsigned order = 0;
    bool live = false;
    std::uint32_t prov = 0;  // as Object::prov
  };
  struct Area {
    mm::vaddr_t addr = 0;
    std::uint64_t size = 0;
    std::uint8_t kind = 0;  // 0 vmalloc, 1 vmap, 2 ioremap
    bool live = false;
    std::vector<mm::pfn_t> pfns;  // vmap: the pages it allocated
    std::uint32_t prov = 0;       // as Object::prov
  };

  // Which op allocated a handle and which freed it last.
  struct Provenance {
    std::optional<OpAt> alloc, free;
    std::uint32_t frees = 0;
  };

  void exec(const Op& op);
  void collect(const Op& op);  // the engine's new violations become findings at `op`
  void attach_provenance(Finding& f) const;
  void note_provenance(const Op& op);
  std::uint64_t model_addr(Space space, Handle h) const;
  // The handle record's provenance slot (nullptr: no record).
  std::uint32_t* prov_slot(Space space, Handle h);
  const Provenance* provenance_of(Space space, Handle h) const;
  void in_program_terms(inv::Violation& v, const Op& op) const;
  std::string cache_name_of(const Object& o) const;
  void report_leaks();
  bool skip(const char* why) {
    skip_reason_ = why;
    res_.ran = false;
    return false;
  }
  // Handle tables: the bound record (nullptr after skip()), and rebinding
  // with the live counts kept.
  Object* bound_object(Handle h);
  Pages* bound_pages(Handle h);
  Area* bound_area(Handle h);
  void bind_object(Handle h, const Object& o);
  void kill_object(Object& o);
  Object* freed_object(Handle h, const char* call);
  void freed_again(Handle h, const Object& o, const char* call);
  // An allocation names a handle still live: its free is missing.
  void allocated_again(Space space, Handle h, const char* call);
  // A value no kernel produces (trace.invalid).
  void invalid(const char* call, Handle h, const std::string& why);
  std::size_t nr_reports() const { return engine_ ? engine_->violations().size() : 0; }
  void bind_pages(Handle h, const Pages& p);
  void bind_area(Handle h, Area a);
  void kill_area(Area& a);
  std::uint32_t bound_pool(Handle pool);  // the model's mempool id (0 after skip())
  void wake_mempool_sleepers();
  void access(Space space, Handle h, std::uint64_t offset, std::uint64_t len, bool is_write,
              std::uint8_t byte);

  // One function per op kind (exec_page.cpp, exec_slab.cpp, exec_vm.cpp).
  void run(const AllocPages& a);
  void run(const FreePages& a);
  void run(const SplitPage& a);
  void run(const GetPage& a);
  void run(const PutPage& a);
  void run(const AllocPagesExact& a);
  void run(const FreePagesExact& a);
  void run(const Kmap& a);
  void run(const Kunmap& a);
  void run(const DrainAllPages& a);
  void run(const Kmalloc& a);
  void run(const Kfree& a);
  void run(const KfreeSensitive& a);
  void run(const Krealloc& a);
  void run(const KmemCacheCreate& a);
  void run(const KmemCacheAlloc& a);
  void run(const KmemCacheFree& a);
  void run(const KmemCacheAllocBulk& a);
  void run(const KmemCacheFreeBulk& a);
  void run(const KmemCacheShrink& a);
  void run(const KmemCacheDestroy& a);
  void run(const Kvmalloc& a);
  void run(const Kvfree& a);
  void run(const MempoolCreate& a);
  void run(const MempoolAlloc& a);
  void run(const MempoolFree& a);
  void run(const MempoolResize& a);
  void run(const MempoolDestroy& a);
  void run(const Vmalloc& a);
  void run(const Vfree& a);
  void run(const Vmap& a);
  void run(const Vunmap& a);
  void run(const Ioremap& a);
  void run(const Iounmap& a);
  void run(const IoRead& a);
  void run(const IoWrite& a);
  void run(const Write& a);
  void run(const Read& a);
  void run(const Tick& a);
  void run(const Check& a);

  mm::Mm& mm_;
  const StringTable& strings_;
  ExecOptions opts_;
  std::unique_ptr<inv::CheckEngine> engine_;
  std::unique_ptr<Oracle> oracle_;
  std::size_t seen_violations_ = 0;
  std::vector<Finding> findings_;
  std::uint64_t nr_violations_ = 0;
  std::uint64_t ops_ = 0;
  std::uint64_t skipped_ = 0;
  std::map<std::string, std::uint64_t> skip_reasons_;
  OpResult res_;
  bool in_op_ = false;
  const char* skip_reason_ = "";
  std::vector<std::uint8_t> buf_;
  std::vector<mm::vaddr_t> bulk_;  // kmem_cache_{alloc,free}_bulk's array

  std::unordered_map<Handle, Object> objects_;
  std::unordered_map<Handle, Pages> pages_;
  std::unordered_map<Handle, Area> areas_;
  std::unordered_map<Handle, std::uint32_t> pools_;  // handle -> mempool_id
  // mempool_alloc callers asleep: wait ticket -> object handle.
  std::unordered_map<std::uint64_t, Handle> sleepers_;
  // Sleepers whose handle the Program freed while they slept: the task frees
  // the element as soon as it has it (its ops come in its own order).
  std::unordered_set<std::uint64_t> free_on_wake_;
  std::unordered_map<std::uint32_t, mm::cache_id> caches_;  // name id -> cache
  // Per handle record (Object::prov): no map of its own, so the history
  // costs an Op copy per allocation and free, not a hash-node allocation.
  // A deque: growing never copies the records (a vector's regrowth copied
  // tens of MB of them, 9 % of a replay).
  std::deque<Provenance> provs_;
  std::uint64_t live_objects_ = 0, live_kmalloc_bytes_ = 0, live_pages_ = 0, live_areas_ = 0;
};

}  // namespace mmfuzz::prog
