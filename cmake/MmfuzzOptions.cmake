# Project-wide compile options, carried by the interface target mmfuzz_options.
add_library(mmfuzz_options INTERFACE)
target_compile_options(mmfuzz_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Wunused -Wconversion -Wsign-conversion
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough
  $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual>)
if(MMFUZZ_WERROR)
  target_compile_options(mmfuzz_options INTERFACE -Werror)
endif()
if(MMFUZZ_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_compile_options(mmfuzz_options INTERFACE ${_san})
  target_link_options(mmfuzz_options INTERFACE ${_san})
endif()
target_include_directories(mmfuzz_options INTERFACE ${PROJECT_SOURCE_DIR})
# lld links in about half GNU ld's time (1.9 s -> 0.95 s for an ASan test
# program; CI links some 60 programs in each of two builds).
include(CheckLinkerFlag)
check_linker_flag(CXX -fuse-ld=lld MMFUZZ_HAVE_LLD)
if(MMFUZZ_HAVE_LLD)
  target_link_options(mmfuzz_options INTERFACE -fuse-ld=lld)
endif()
# libFuzzer: coverage instrumentation everywhere, the fuzzer's main() only in
# the fuzz executables (fuzz/CMakeLists.txt).
if(MMFUZZ_FUZZ_ENGINE STREQUAL "libfuzzer")
  target_compile_options(mmfuzz_options INTERFACE -fsanitize=fuzzer-no-link)
endif()
# The checkers and the Executor compare every pfn, object and byte they
# sweep: traced, those comparisons were a quarter of a libFuzzer execution
# (bench/engine_compare.sh) and steer nothing an input decides. Their
# coverage counters stay.
function(mmfuzz_no_cmp_tracing target)
  if(MMFUZZ_FUZZ_ENGINE STREQUAL "libfuzzer")
    target_compile_options(${target} PRIVATE -fno-sanitize-coverage=trace-cmp)
  endif()
endfunction()
# Unity builds: a target's sources compiled eight to a translation unit, so
# the headers and templates they share (CLI11, nlohmann/json, fmt, the
# model's headers) are parsed and instantiated once per batch. CI builds
# everything twice from scratch; the command's 13 sources took 115 s of CPU
# one by one and 29 s as one unit. Sources must then not define the same
# name in their anonymous namespaces, and a using-directive at namespace
# scope reaches the sources after it (invariants/ qualifies vm_inv::kOverlap).
function(mmfuzz_unity target)
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
endfunction()
