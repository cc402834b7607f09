# Reproduction (ctest -L reproduce): every failure a finder writes is a
# Program that `mmfuzz replay FILE` reproduces alone, with its signature
# (tests/cli/test_reproduce.sh): the regressions, every crash of the
# planted-defect self-test campaigns (selftest.cmake; this test runs after
# them and reads their output), and a short campaign without a plant.
# Included by fuzz/CMakeLists.txt (engine driver, tests on).
find_program(MMFUZZ_PYTHON3 python3)
if(NOT TARGET fuzz_slub OR NOT MMFUZZ_PYTHON3)
  return()
endif()
enable_testing()
add_test(NAME reproduce.programs
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/cli/test_reproduce.sh ${CMAKE_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/reproduce ${MMFUZZ_SELFTEST_OUT_DIRS})
set_tests_properties(reproduce.programs PROPERTIES LABELS reproduce TIMEOUT 300 COST 25)
if(MMFUZZ_SELFTEST_OUT_DIRS)
  set_tests_properties(reproduce.programs PROPERTIES FIXTURES_REQUIRED fuzz_selftest_out)
endif()
