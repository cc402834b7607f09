#include "mm/mm.h"
#include "mm/procfs/procfs.h"

namespace mmfuzz::mm::procfs {

std::string buddyinfo(const Mm& /*mm*/) { return {}; }  // TODO(procfs helper)

}  // namespace mmfuzz::mm::procfs
