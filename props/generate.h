// Programs shaped by a Shape (props/shape.h): a trace-shaped or uniform
// workload the property runner executes and its oracles judge.
//
// A generator only appends ops (ProgramBuilder) and never runs the model:
// the Program is a function of the shape, the machine facts and the
// options, and the same inputs give the same Program text.
//
// What a generated Program does, step by step (docs/properties.md):
//  - Its ops split into the shape's phases in order; each step allocates in
//    a family drawn from the phase's mix (restricted by the focus), or, now
//    and then, ticks, drains the pcp lists or shrinks a cache; a check op
//    every Shape::check_every ops.
//  - kmalloc and cache allocations come in bursts from one call site (its
//    own sizes and GFP masks); caches are created on first use with the
//    trace's names and geometry; pages get the trace's orders and a GFP mask
//    of the trace's migrate type; vmalloc areas the trace's sizes; mempools
//    are created (over a cache, kmalloc or pages) and used.
//  - Every allocation gets a lifetime: it lives to the teardown with the
//    phase's never-freed fraction, else it is freed after a lifetime drawn
//    from the shape's, on another CPU with the cross-CPU fraction.
//  - With accesses, a write of one byte pattern over the allocation (at
//    most 2 pages of it) follows the allocation and a read of the same bytes
//    precedes its free: an oracle checks the read gives the written bytes.
//  - The live set stays under caps (1/2 of RAM in pages, 1/8 in slab bytes,
//    1/16 in vmalloc pages): past one, the allocation due to be freed first
//    is freed early.
//  - With teardown, everything is freed at the end (objects, pools, caches,
//    areas, pages), then drain_all_pages.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "program/generate.h"
#include "program/program.h"
#include "props/builtin_profile.h"
#include "props/shape.h"

namespace mmfuzz::props {

// Which op families a Program allocates in: page (alloc_pages), slab
// (kmalloc, kvmalloc, kmem caches), mempool (pools and what they need),
// vm (vmalloc, vmap, ioremap).
enum class Focus : std::uint8_t { all, page, slab, mempool, vm };
const char* focus_name(Focus f);
std::optional<Focus> focus_from_name(std::string_view name);
bool focus_allows(Focus f, Family fam);

struct GenOptions {
  std::uint64_t seed = 1;
  std::size_t ops = 200;  // ops before the teardown
  Focus focus = Focus::all;
  bool accesses = true;  // client writes after alloc and reads before free
  bool teardown = true;
  // Memory pressure: first take every block the boot left free
  // (MachineFacts::free_blocks), held to the teardown, so the last ones fail
  // at the zone's watermark and the workload runs there: slow path,
  // failures, ALLOC_HARDER, mempool reserves lent.
  bool ballast = false;
};

prog::Program generate(const Shape& s, const prog::MachineFacts& m, const GenOptions& o);

}  // namespace mmfuzz::props
