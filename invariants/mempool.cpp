// mempool checks (mm/mempool.c of 6.1), run by SlabChecker in sweeps and
// after every op (a pass over the pools, no walk of memory):
//  slab.mempool  a live pool's reserve never holds more than min_nr
//                elements, and is short of min_nr only by the elements its
//                callers hold: mempool_free() refills the reserve before it
//                frees anything, so curr_nr + nr_out + shortfall >= min_nr
//                (mm/slab/mempool.h: the model's ledger of both).
#include <fmt/format.h>

#include "invariants/slab.h"
#include "mm/mm.h"

namespace mmfuzz::inv {

void check_mempools(const mm::Mm& m, Reporter& r) {
  using slab_inv::kMempool;
  const auto& pools = m.mempools;
  if (!pools.size() || !r.enabled(kMempool)) return;
  for (mm::mempool_id id = 1; id <= pools.size(); ++id) {
    const mm::mempool_t* p = pools.pool(id);
    if (!p || p->destroyed) continue;
    const char* kind = mm::mempool_kind_name(p->kind);
    if (p->curr_nr() > p->min_nr)
      slab_inv::bug(m, r, kMempool, mm::NO_PAGE,
                    fmt::format("mempool {} ({} pool): the reserve holds {} elements, min_nr is {}",
                                id, kind, p->curr_nr(), p->min_nr));
    if (p->nr_out < 0 || p->shortfall < 0 || p->curr_nr() + p->nr_out + p->shortfall < p->min_nr)
      slab_inv::bug(m, r, kMempool, mm::NO_PAGE,
                    fmt::format("mempool {} ({} pool): the reserve holds {} of min_nr {} elements, "
                                "but callers hold only {} (and {} could not be allocated): "
                                "an element came back without refilling the reserve",
                                id, kind, p->curr_nr(), p->min_nr, p->nr_out, p->shortfall));
  }
}

}  // namespace mmfuzz::inv
