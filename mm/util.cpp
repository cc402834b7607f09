#include "mm/util.h"

#include <climits>
#include <string>

#include "mm/mm.h"

namespace mmfuzz::mm {

vaddr_t kvmalloc_node(Mm& mm, std::uint64_t size, gfp_t flags, int node) {
  // vmalloc's own allocations (page tables) are GFP_KERNEL: a mask without
  // reclaim, IO or FS gets the slab layer only.
  if ((flags & GFP_KERNEL) != GFP_KERNEL) return mm.slab.kmalloc_node(size, flags, node);
  const std::uint64_t page_size = mm.profile.page_size();
  gfp_t kmalloc_flags = flags;
  if (size > page_size) {
    // A physically contiguous block first, but quietly and without trying
    // hard: vmalloc is the fallback (and implements __GFP_NOFAIL).
    kmalloc_flags |= __GFP_NOWARN;
    if (!(kmalloc_flags & __GFP_RETRY_MAYFAIL)) kmalloc_flags |= __GFP_NORETRY;
    kmalloc_flags &= ~__GFP_NOFAIL;
  }
  const vaddr_t p = mm.slab.kmalloc_node(size, kmalloc_flags, node);
  // No vmalloc fallback for sub-page sizes.
  if (p || size <= page_size) return p;
  if (size > static_cast<std::uint64_t>(INT_MAX)) {
    // WARN_ON_ONCE(!(flags & __GFP_NOWARN)): no such sizes.
    if (!(flags & __GFP_NOWARN)) {
      Misuse m;
      m.kind = MisuseKind::kvmalloc_too_large;
      m.api = "kvmalloc_node";
      m.detail = "kvmalloc_node() of " + std::to_string(size) + " bytes: more than INT_MAX";
      mm.notify([&](MmObserver& o) { o.misuse(m); });
    }
    return 0;
  }
  return mm.vmalloc.__vmalloc_node(size, 1, flags, node, "kvmalloc_node");
}

void kvfree(Mm& mm, vaddr_t addr) {
  if (mm.vmalloc.is_vmalloc_addr(addr))
    mm.vmalloc.vfree(addr);
  else
    mm.slab.kfree(addr);
}

}  // namespace mmfuzz::mm
