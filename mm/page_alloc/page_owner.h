// page_owner (CONFIG_PAGE_OWNER): who holds each allocated block. Kept for
// every allocation head and every head on a pcp list, so the model can tell
// a double free from a wrong-order free the way page_owner debugging does.
#pragma once

#include <cstdint>

#include "mm/types.h"

namespace mmfuzz::mm {

enum page_owner_state : std::uint8_t {
  PAGE_OWNER_NONE,       // not the head of a live block (free in the buddy, a tail, reserved)
  PAGE_OWNER_ALLOCATED,  // head of an allocation of 2^order pages
  PAGE_OWNER_PCP,        // head of a 2^order block on a per-CPU list
};

struct page_owner {
  std::uint32_t alloc_seq = 0;  // op sequence number at allocation
  std::uint32_t free_seq = 0;   // op sequence number at the last free
  std::uint32_t call_site = 0;  // interned call site of the allocation (0: none)
  gfp_t gfp_mask = 0;
  std::uint8_t order = 0;
  page_owner_state state = PAGE_OWNER_NONE;
  std::uint16_t cpu = 0;
};

}  // namespace mmfuzz::mm
