// Seeded Program generators. `mmfuzz workload` writes its Programs here:
// a generator only appends ops (ProgramBuilder) and never runs the model, so
// the Program is a function of the options, the seed and a few facts about
// the machine, and replaying it (`mmfuzz replay`) runs exactly what ran.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "mm/mm.h"
#include "program/program.h"

namespace mmfuzz::prog {

// What a generator knows of the machine it writes for (from a booted model).
struct MachineFacts {
  unsigned nr_cpus = 2;
  unsigned nr_nodes = 1;
  std::uint64_t page_size = 4096;
  std::uint64_t totalram_pages = 0;
  unsigned max_order = 11;  // orders 0 .. max_order-1
  unsigned pageblock_order = 9;
  bool slab = true;
  bool vmalloc = true;
  std::uint64_t kmalloc_max_cache_size = 8192;
  std::uint64_t kmalloc_max_size = 4 << 20;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> devices;  // [start, end) ioremap can map
  // Free blocks per order after the boot, all zones (buddyinfo summed): a
  // generator can take exactly the free memory (see props' ballast).
  std::vector<std::uint64_t> free_blocks;

  static MachineFacts of(const mm::Mm& m);
};

struct WorkloadSpec {
  std::uint64_t ops = 20000;  // the workload's length in ops, before its teardown
  std::uint64_t seed = 1;
  unsigned slab_percent = 40;        // of the steps: kmalloc, caches, mempools
  unsigned vm_percent = 10;          // of the steps: vmalloc, vmap, ioremap
  std::uint64_t check_every = 1000;  // a full sweep (check op) every N ops; 0: none
};

// A seeded alloc/free workload over the page allocator (every order and GFP
// type, split_page, client writes, CPU switches, drains, ticks), the slab
// layer (kmalloc over every size class and GFP type; caches created, shrunk,
// destroyed and recreated; mempools; client writes and reads) and kernel VM
// (vmalloc family, vmap, ioremap, client writes and reads), ending with a
// teardown that frees everything. It keeps live memory under caps (3/4 of
// RAM in pages, 1/8 in slab bytes, 1/16 in vmalloc pages) so it exercises
// more than OOM. Same spec and facts: the same Program.
Program generate_workload(const WorkloadSpec& spec, const MachineFacts& m);

}  // namespace mmfuzz::prog
