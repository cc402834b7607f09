// Text views of the model in the kernel's own formats (fs/proc, mm/vmstat.c,
// kernel/resource.c), so they can be diffed against a real guest's files.
#pragma once

#include <string>

namespace mmfuzz::mm {
class Mm;
}

namespace mmfuzz::mm::procfs {

std::string buddyinfo(const Mm& mm);     // /proc/buddyinfo
std::string pagetypeinfo(const Mm& mm);  // /proc/pagetypeinfo
std::string zoneinfo(const Mm& mm);      // /proc/zoneinfo
std::string meminfo(const Mm& mm);       // /proc/meminfo (the lines the model knows)
std::string iomem(const Mm& mm);         // /proc/iomem
std::string slabinfo(const Mm& mm);      // /proc/slabinfo (version 2.1)
std::string slabtop(const Mm& mm);       // slabtop -o
std::string vmallocinfo(const Mm& mm);   // /proc/vmallocinfo
std::string vmstat(const Mm& mm);        // /proc/vmstat (with the model's event counters)
// /sys/kernel/debug/kernel_page_tables (CONFIG_PTDUMP_DEBUGFS)
std::string kernel_page_tables(const Mm& mm);

}  // namespace mmfuzz::mm::procfs
