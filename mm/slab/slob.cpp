// SLOB (mm/slob.c): placeholder until it lands.
#include "mm/mm.h"

namespace mmfuzz::mm {

std::unique_ptr<SlabAllocator> make_slob(Slab&) {
  throw ConfigError("--slab slob: the SLOB allocator is not built yet");
}

}  // namespace mmfuzz::mm
