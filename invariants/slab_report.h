// Reports of slab-layer problems in the kernel's own styles: KASAN for bad
// accesses and frees, SLUB debug ("BUG kmalloc-128 (Not tainted): Right
// Redzone overwritten" with the slab, object and red zone dumps), and the
// WARN()s of slab_common for API misuse.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "invariants/violation.h"
#include "mm/observer.h"

namespace mmfuzz::mm {
class Mm;
struct kmem_cache;
}  // namespace mmfuzz::mm

namespace mmfuzz::inv {

// A misuse report of the slab layer (slab.* and kasan.* kinds).
Violation slab_misuse_violation(const mm::Mm& mm, const mm::Misuse& m);

// SLUB's "BUG <cache> (Not tainted): <what>" report of one object.
Violation slub_object_violation(const mm::Mm& mm, const mm::kmem_cache& s, std::uint64_t slab,
                                std::uint64_t object, ViolationKind kind, std::string invariant,
                                std::string what, std::vector<std::string> lines);

// print_trailer(): tracks, slab info, the object and its red zones in hex.
std::vector<std::string> slub_trailer(const mm::Mm& mm, const mm::kmem_cache& s, std::uint64_t slab,
                                      std::uint64_t object);
// print_hex_dump(DUMP_PREFIX_ADDRESS, 16 bytes a line, with ASCII).
std::vector<std::string> hex_dump(const mm::Mm& mm, const char* prefix, std::uint64_t addr,
                                  std::uint64_t len);
// The object's allocation and free history from the slab shadow.
std::vector<HistoryEntry> object_history(const mm::Mm& mm, std::uint64_t addr);

}  // namespace mmfuzz::inv
