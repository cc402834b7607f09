// seq_printf() into a std::string, for the /proc views.
#pragma once

#include <string>

namespace mmfuzz::mm::procfs {

__attribute__((format(printf, 2, 3))) void seq_printf(std::string& m, const char* fmt, ...);

}  // namespace mmfuzz::mm::procfs
