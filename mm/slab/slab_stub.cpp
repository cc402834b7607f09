// Placeholders until SLAB and SLOB land: choosing them is a clear error.
#include "mm/mm.h"

namespace mmfuzz::mm {

std::unique_ptr<SlabAllocator> make_slab(Slab&) {
  throw ConfigError("--slab slab: the SLAB allocator is not built yet");
}
std::unique_ptr<SlabAllocator> make_slob(Slab&) {
  throw ConfigError("--slab slob: the SLOB allocator is not built yet");
}

}  // namespace mmfuzz::mm
