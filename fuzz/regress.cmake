# Fuzz regression tests (ctest -L fuzz-regression), for the driver engine:
# every seed and every minimized crash replayed through its target, and a
# short deterministic generate run of the parser targets.
#
#   mmfuzz_fuzz_replay_test(<target> <dir> [NAME <test name>])
#
# runs every regular file of <dir> once through <target> (fuzz_trace_text
# or trace_text; nothing is registered when the target is not built). The
# test is called fuzz.<target>.<last folder of dir's parent> unless NAME
# says otherwise: corpus/regressions/slub -> fuzz.slub.regressions.

# The top level enables testing after adding this folder: enable it here.
enable_testing()

set(MMFUZZ_CORPUS_DIR ${PROJECT_SOURCE_DIR}/corpus)
set(MMFUZZ_FUZZ_ARTIFACTS ${CMAKE_CURRENT_BINARY_DIR}/artifacts/)
# Every input through every path (fuzz_trace_text samples its replay pass).
set(MMFUZZ_FUZZ_TEST_ENV MMFUZZ_REPLAY_SAMPLE=1)
file(MAKE_DIRECTORY ${MMFUZZ_FUZZ_ARTIFACTS})

function(_mmfuzz_fuzz_exe target out_exe out_short)
  if(TARGET ${target})
    set(exe ${target})
  elseif(TARGET fuzz_${target})
    set(exe fuzz_${target})
  else()
    set(${out_exe} "" PARENT_SCOPE)
    return()
  endif()
  string(REGEX REPLACE "^fuzz_" "" short ${exe})
  set(${out_exe} ${exe} PARENT_SCOPE)
  set(${out_short} ${short} PARENT_SCOPE)
endfunction()

function(mmfuzz_fuzz_replay_test target dir)
  cmake_parse_arguments(ARG "" "NAME" "" ${ARGN})
  _mmfuzz_fuzz_exe(${target} exe short)
  if(NOT exe)
    return()
  endif()
  if(NOT IS_ABSOLUTE ${dir})
    set(dir ${PROJECT_SOURCE_DIR}/${dir})
  endif()
  if(NOT IS_DIRECTORY ${dir})
    return()  # e.g. no regression found yet (git keeps no empty folder)
  endif()
  if(ARG_NAME)
    set(name ${ARG_NAME})
  else()
    get_filename_component(parent ${dir} DIRECTORY)
    get_filename_component(kind ${parent} NAME)
    set(name fuzz.${short}.${kind})
  endif()
  add_test(NAME ${name} COMMAND ${exe} ${dir})
  set_tests_properties(${name} PROPERTIES LABELS fuzz-regression TIMEOUT 300
                       PASS_REGULAR_EXPRESSION "ran [0-9]+ inputs"
                       ENVIRONMENT "${MMFUZZ_FUZZ_TEST_ENV}")
endfunction()

# A short generate-mode run: fixed seed, the target's dictionary, its seeds
# and regressions as the starting pool. Any crash fails it (the input lands
# in the build folder's fuzz/artifacts/).
function(mmfuzz_fuzz_generate_test target runs)
  _mmfuzz_fuzz_exe(${target} exe short)
  if(NOT exe)
    return()
  endif()
  set(inputs)
  foreach(d seeds/${short} regressions/${short})
    if(IS_DIRECTORY ${MMFUZZ_CORPUS_DIR}/${d})
      list(APPEND inputs ${MMFUZZ_CORPUS_DIR}/${d})
    endif()
  endforeach()
  set(dict)
  if(EXISTS ${MMFUZZ_CORPUS_DIR}/dict/${short}.dict)
    set(dict -dict=${MMFUZZ_CORPUS_DIR}/dict/${short}.dict)
  endif()
  add_test(NAME fuzz.${short}.generate
           COMMAND ${exe} -runs=${runs} -max_total_time=120 -seed=1 -max_len=4096 ${dict}
                   -artifact_prefix=${MMFUZZ_FUZZ_ARTIFACTS}${short}- ${inputs})
  set_tests_properties(fuzz.${short}.generate PROPERTIES LABELS fuzz-regression TIMEOUT 300
                       ENVIRONMENT "${MMFUZZ_FUZZ_TEST_ENV}")
endfunction()

# Under ASan an input costs ~10x; the default run generates 20x as many.
if(MMFUZZ_SANITIZE)
  set(MMFUZZ_GENERATE_RUNS 1000)
else()
  set(MMFUZZ_GENERATE_RUNS 20000)
endif()
foreach(t trace_text program_text)
  if(TARGET fuzz_${t})
    mmfuzz_fuzz_replay_test(fuzz_${t} corpus/seeds/${t})
    mmfuzz_fuzz_replay_test(fuzz_${t} corpus/regressions/${t})
    mmfuzz_fuzz_generate_test(fuzz_${t} ${MMFUZZ_GENERATE_RUNS})
  endif()
endforeach()

# The driver's contract: a bad flag value or a missing input is exit 2.
if(TARGET fuzz_program_text)
  add_test(NAME fuzz.driver.bad_flag
           COMMAND sh -c "\"$0\" -runs=many; test $? -eq 2" $<TARGET_FILE:fuzz_program_text>)
  add_test(NAME fuzz.driver.missing_input
           COMMAND sh -c "\"$0\" \"$1\"; test $? -eq 2" $<TARGET_FILE:fuzz_program_text>
                   ${MMFUZZ_CORPUS_DIR}/no-such-input)
  set_tests_properties(fuzz.driver.bad_flag fuzz.driver.missing_input
                       PROPERTIES LABELS fuzz-regression)
endif()

# The dictionaries follow the parsers' tables (scripts/make_dicts.py).
find_program(MMFUZZ_PYTHON3 python3)
if(MMFUZZ_PYTHON3)
  add_test(NAME fuzz.dicts_up_to_date
           COMMAND ${MMFUZZ_PYTHON3} ${PROJECT_SOURCE_DIR}/scripts/make_dicts.py --check)
  set_tests_properties(fuzz.dicts_up_to_date PROPERTIES LABELS fuzz-regression)
endif()
