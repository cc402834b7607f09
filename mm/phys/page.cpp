#include "mm/phys/page.h"

namespace mmfuzz::mm {

const char* pageflag_name(unsigned bit) {
  static const char* const names[] = {
      "locked",    "referenced", "uptodate", "dirty",        "lru",     "active",     "workingset",
      "waiters",   "error",      "slab",     "owner_priv_1", "arch_1",  "reserved",   "private",
      "private_2", "writeback",  "head",     "mappedtodisk", "reclaim", "swapbacked", "unevictable",
      "mlocked",   "hwpoison",   "young",    "idle",         "arch_2",
  };
  return bit < sizeof(names) / sizeof(names[0]) ? names[bit] : "?";
}

}  // namespace mmfuzz::mm
