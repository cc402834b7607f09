# The fuzzing self-test: every planted defect (mm/planted.h) must be found by
# a short campaign of the builtin engine (the plain driver) on the target that
# can reach it. One ctest per defect, label fuzz-selftest:
#   ctest --preset default -L fuzz-selftest
# Each runs ci/campaign.sh --expect, which stops at the first crash whose
# signature (from the crash report's MMFUZZ-JSON line) contains the expected
# part and exits 0; 1 when the time
# runs out without it. Its reproducer.program is what `mmfuzz shrink` made
# of the crash (reproduce.programs replays it alone). Included by fuzz/CMakeLists.txt (engine driver, tests on).
if(NOT MMFUZZ_PLANTED_DEFECTS)
  return()
endif()

# The top level enables testing only after adding this folder.
enable_testing()

set(MMFUZZ_SELFTEST_TIME 20 CACHE STRING "seconds each planted-defect self-test campaign may fuzz")

# defect, the target that reaches it, the signature parts the checkers
# report it under (comma-separated: any one is enough). Without the plant the
# same campaigns find none of them.
set(MMFUZZ_SELFTEST_TABLE
    "buddy_skip_merge         page_alloc buddy.coalesced"
    "slub_freelist_off_by_one slub       slab.freeptr,slab.freelist"
    "redzone_not_rearmed      slub       slab.rearm,slab.redzone"
    "vmalloc_no_guard         vm         vmalloc.guard"
    "vfree_leaves_pte         vm         pgtable.free_page_mapped,vmalloc.guard")

find_program(MMFUZZ_PYTHON3 python3)
foreach(row IN LISTS MMFUZZ_SELFTEST_TABLE)
  separate_arguments(fields UNIX_COMMAND "${row}")
  list(GET fields 0 defect)
  list(GET fields 1 target)
  list(GET fields 2 expect)
  if(NOT TARGET fuzz_${target} OR NOT MMFUZZ_PYTHON3)
    continue()
  endif()
  add_test(NAME fuzz.selftest.${defect}
           COMMAND bash ${PROJECT_SOURCE_DIR}/ci/campaign.sh
                   --engine builtin --no-build --build-dir ${CMAKE_BINARY_DIR}
                   --corpus ${PROJECT_SOURCE_DIR}/corpus
                   --targets ${target} --plant ${defect} --expect ${expect}
                   --time ${MMFUZZ_SELFTEST_TIME} --jobs 1 --seed 1
                   --mmfuzz $<TARGET_FILE:mmfuzz>
                   --out ${CMAKE_BINARY_DIR}/selftest/${defect})
  # Their crash folders are what reproduce.programs replays (reproduce.cmake).
  set_tests_properties(fuzz.selftest.${defect} PROPERTIES
                       LABELS fuzz-selftest
                       TIMEOUT 240
                       FIXTURES_SETUP fuzz_selftest_out)
  list(APPEND MMFUZZ_SELFTEST_OUT_DIRS ${CMAKE_BINARY_DIR}/selftest/${defect})
endforeach()

# ci/campaign.py takes our crash reports' findings from their MMFUZZ-JSON
# line (and sanitizer reports from their text): a crash made on purpose.
if(TARGET fuzz_page_alloc AND MMFUZZ_PYTHON3)
  add_test(NAME fuzz.campaign_reads_findings
           COMMAND ${MMFUZZ_PYTHON3} ${PROJECT_SOURCE_DIR}/ci/test_campaign.py
                   $<TARGET_FILE:fuzz_page_alloc>)
  set_tests_properties(fuzz.campaign_reads_findings PROPERTIES TIMEOUT 120 COST 22)
endif()
