// mempool: placeholder until it lands.
#include "mm/slab/mempool.h"

#include "mm/mm.h"

namespace mmfuzz::mm {

Mempools::Mempools(Mm& mm) : mm_(mm) {}
mempool_id Mempools::mempool_create(int, MempoolKind, cache_id, std::uint64_t, unsigned, gfp_t) {
  throw ConfigError("mempool is not built yet");
}
vaddr_t Mempools::mempool_alloc(mempool_id, gfp_t, MempoolWait*) {
  return 0;
}
void Mempools::mempool_free(mempool_id, vaddr_t) {}
int Mempools::mempool_resize(mempool_id, int) {
  return -22;
}
void Mempools::mempool_destroy(mempool_id) {}
std::vector<MempoolWait> Mempools::take_completed() {
  return std::move(completed_);
}

}  // namespace mmfuzz::mm
