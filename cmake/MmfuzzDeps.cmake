# Every dependency comes from Debian's packages (scripts/deps.sh installs them).
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS stacktrace_backtrace)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# trace.dat: libtracefs's header is not valid C++, so trace/tracedat.c reads it.
pkg_check_modules(TRACECMD REQUIRED IMPORTED_TARGET libtracecmd libtracefs libtraceevent)
# `mmfuzz prop` runs RapidCheck properties, so the tool needs it too.
find_package(rapidcheck REQUIRED)
if(MMFUZZ_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(MMFUZZ_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
