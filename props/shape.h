// Shape: the sampler tables a Program generator (props/generate.h) draws
// from. shape_of() makes them from a trace's workload profile, so generated
// traffic looks like the trace's: its op mix and phases, bursts, sizes and
// GFP masks per call site, caches with the trace's geometry, lifetimes, CPU
// spread, page orders and migrate types, vmalloc sizes, mempool use.
// uniform_shape() fills the same tables flat, for comparison. What comes
// from the profile and what is fixed: docs/properties.md.
//
// A Shape is plain data: a function of its inputs, printed by describe().
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/workload_profile.h"
#include "program/generate.h"

namespace mmfuzz::props {

using analysis::Weighted;

// The op families a generator allocates in.
enum class Family : std::uint8_t { kmalloc, cache, page, vmalloc, mempool };
inline constexpr std::size_t kNrFamilies = 5;
const char* family_name(Family f);

// A distribution over integers: weighted rows, heaviest first, or, with no
// rows, uniform over [lo, hi] (hi 0 in a lifetime: the Program's length).
// log2: a row's value k stands for [2^(k-1), 2^k) (k 0: 0), drawn
// uniformly inside.
struct Dist {
  std::vector<Weighted> rows;
  std::uint64_t lo = 0, hi = 0;
  bool log2 = false;
  bool upper = false;           // log2 rows of sizes: k stands for (2^(k-1), 2^k] (k 0: 1)
  std::uint64_t total() const;  // the rows' weight (0 for a uniform range)
  // The mean of the values drawn (log2 rows at their bucket's middle).
  double mean() const;
  bool operator==(const Dist&) const = default;
};

// One window of the Program, in order: its share of the ops, the
// allocations' family mix, and the allocations that live to the teardown
// (growth: many; steady churn: few).
struct Phase {
  std::uint64_t weight = 1;
  std::array<std::uint64_t, kNrFamilies> mix{};
  double slab_never_freed = 0;  // kmalloc, caches, mempools, vmalloc
  double page_never_freed = 0;
  bool operator==(const Phase&) const = default;
};

// A call site kmalloc or kmem_cache_alloc traffic comes from.
struct Site {
  std::string name;
  Family family = Family::kmalloc;  // kmalloc or cache
  std::uint64_t weight = 0;
  Dist sizes;             // kmalloc: bytes requested (empty: the shape's kmalloc_sizes)
  Dist gfp;               // empty: the shape's slab_gfp
  int cache = -1;         // cache family: index in Shape::caches
  bool kvmalloc = false;  // kvmalloc_node's: kvmalloc / kvfree
  bool operator==(const Site&) const = default;
};

// A kmem cache the generator creates on first use (kmem_cache_create
// arguments) and its share of the cache allocations outside the sites.
struct CacheSpec {
  std::string name;
  std::uint64_t size = 0, align = 0;
  std::uint32_t flags = 0;  // SLAB_*
  std::uint64_t weight = 0;
  bool ctor = false;  // a constructor (filling objects with 0x00)
  bool operator==(const CacheSpec&) const = default;
};

// Lifetimes of the allocations freed before the teardown, in ops: the
// drawn value times scale (trace events to ops), at least 1.
struct Lifetime {
  Dist dist;
  double scale = 1.0;
  double never_freed = 0;  // the whole trace's (the phases' vary around it)
  // The share of allocations that die with the allocation before them (the
  // trace's consecutive frees of allocations born together).
  double cohort = 0;
  bool operator==(const Lifetime&) const = default;
};

struct MempoolShape {
  Dist min_nr;
  Dist sizes;                            // element bytes of slab and kmalloc pools
  std::array<std::uint64_t, 3> kinds{};  // PoolKind slab, kmalloc, pages
  Dist page_orders;                      // pages pools' order
  unsigned max_pools = 3;
  bool operator==(const MempoolShape&) const = default;
};

struct Shape {
  std::string name;
  // Family weights over the whole trace, and per phase.
  std::array<std::uint64_t, kNrFamilies> family_weights{};
  std::vector<Phase> phases;
  unsigned family_floor_percent = 3;  // every allowed family gets at least this share
  Dist bursts;                        // allocations in a run from one site (log2)
  unsigned max_burst = 32;
  // Locality: distinct call sites per analysis::kSiteWindow slab
  // allocations (0: none, every allocation draws from all sites).
  double sites_per_window = 0;
  // Slab.
  std::vector<Site> sites;
  std::uint64_t other_kmalloc_weight = 0, other_cache_weight = 0;  // traffic outside the sites
  Dist kmalloc_sizes;                                              // the top sizes
  Dist kmalloc_size_tail;  // every size the trace shows, by log2 bucket (tempered Programs)
  Dist slab_gfp;
  std::vector<CacheSpec> caches;
  // Residents: a cache the Program creates first gets 1 .. resident_slabs
  // slabs' worth of long-lived objects (0: none), of which resident_freed
  // die during the Program.
  double resident_slabs = 0;
  double resident_freed = 0;
  Lifetime slab_life, page_life;
  // CPUs.
  Dist cpus;
  double cross_cpu_free = 0;       // slab frees on another CPU than the allocation's
  double page_cross_cpu_free = 0;  // page frees likewise
  // Pages: the order, then the migrate type, then a GFP mask giving it.
  Dist page_bursts;  // page allocations in a run on one CPU (log2)
  unsigned max_page_burst = 64;
  Dist orders;
  Dist migratetypes;
  std::array<Dist, 3> page_gfp_by_mt;  // MIGRATE_UNMOVABLE, MOVABLE, RECLAIMABLE
  // Kernel VM and mempools.
  Dist vmalloc_pages;
  MempoolShape mempool;
  // Machine ops, not from the profile: per mille of the steps, and a full
  // check every check_every ops.
  // Temperatures: each Program draws one and raises the weights of its
  // vocabulary tables (sizes, caches, sites, GFP masks, orders, migrate
  // types, vmalloc sizes, pools) to 1/T: T 1 is the trace's frequencies,
  // larger T flatter over the same rows, so that rows a real workload shows
  // rarely (large kmalloc, high orders) come up in short Programs.
  std::vector<double> temperatures = {1.0};
  unsigned tick_per_mille = 8, drain_per_mille = 6, shrink_per_mille = 6;
  std::uint64_t check_every = 100;
  bool operator==(const Shape&) const = default;
};

// The profile's shape on machine m (its CPUs, orders and kmalloc sizes bound
// the tables).
Shape shape_of(const analysis::ProfileData& p, const prog::MachineFacts& m);
// Flat tables in the same vocabulary: sizes uniform over
// 1..kmalloc_max_cache_size (at most 2 pages), orders uniform, GFP masks uniform over a fixed
// list, lifetimes uniform, CPUs uniform, one phase with every family alike.
Shape uniform_shape(const prog::MachineFacts& m);
// A few lines for people: the shape's phases, families and tables' heads.
std::string describe(const Shape& s);

}  // namespace mmfuzz::props
