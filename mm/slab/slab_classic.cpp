// SLAB (mm/slab.c): placeholder until it lands.
#include "mm/mm.h"

namespace mmfuzz::mm {

std::unique_ptr<SlabAllocator> make_slab(Slab&) {
  throw ConfigError("--slab slab: the SLAB allocator is not built yet");
}

}  // namespace mmfuzz::mm
