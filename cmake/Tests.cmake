# Tests.cmake - what every ctest test of this project shares.
#
# A test that cannot run (a missing package, say) exits with 77 after printing why: ctest then
# reports it as "Skipped", never as "Passed" (tests/lib/t.h T_SKIP, tests/integration/lib.sh
# skip / need_cmd / skip_case).  .ci/run fails when any test was skipped, since CI installs
# everything (scripts/install-deps.sh ci).
set(UT_SKIP_CODE 77)

# Gives every test registered so far in the calling directory the skip code.  Call it at the
# end of each CMakeLists.txt that adds tests (set_tests_properties reaches only the current
# directory's tests before CMake 3.28).
function(ut_tests_skippable)
    get_property(tests DIRECTORY PROPERTY TESTS)
    if(tests)
        set_tests_properties(${tests} PROPERTIES SKIP_RETURN_CODE ${UT_SKIP_CODE})
    endif()
endfunction()

# ut_script_test(NAME SCRIPT LABEL TIMEOUT [ARG...]): registers the bash script SCRIPT of the
# calling directory as test NAME with its label and timeout (seconds); the script gets ARG...,
# or the source tree's root when none is given.  ut_tests_skippable() still gives it the skip code.
function(ut_script_test name script label timeout)
    set(args ${ARGN})
    if(NOT args)
        set(args ${PROJECT_SOURCE_DIR})
    endif()
    add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${script} ${args})
    set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout})
endfunction()

# ut_stack_test(NAME SCRIPT TIMEOUT [ARG...]): an integration test that uses the one local stack
# (or the machine's namespaces): ut_script_test with label integration, run alone (RUN_SERIAL).
function(ut_stack_test name script timeout)
    ut_script_test(${name} ${script} integration ${timeout} ${ARGN})
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
endfunction()
