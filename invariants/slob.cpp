// SLOB structure checks: placeholder until the allocator lands.
#include "invariants/slab.h"

namespace mmfuzz::inv {

void check_slob(const mm::Mm&, Reporter&) {}

}  // namespace mmfuzz::inv
