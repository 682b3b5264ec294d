# librdkafka as the target ut_rdkafka: the static 2.12.1 that scripts/install-deps.sh builds into
# the tools dir (from crates.io's rdkafka-sys, which vendors its sources), never Debian 12's 2.0.2:
# that one reports messages delivered which no broker wrote after a leader change, and its
# rd_kafka_query_watermark_offsets() waits without a deadline (docs/drills.md).
set(UT_RDKAFKA_VERSION 2.12.1)
execute_process(COMMAND ${PROJECT_SOURCE_DIR}/scripts/install-deps.sh --tools-dir
                OUTPUT_VARIABLE ut_tools_dir OUTPUT_STRIP_TRAILING_WHITESPACE)
set(UT_RDKAFKA_PREFIX "${ut_tools_dir}/librdkafka-${UT_RDKAFKA_VERSION}"
    CACHE PATH "where scripts/install-deps.sh installed librdkafka ${UT_RDKAFKA_VERSION}")
find_path(UT_RDKAFKA_INCLUDE_DIR librdkafka/rdkafka.h PATHS ${UT_RDKAFKA_PREFIX}/include
          NO_DEFAULT_PATH)
find_library(UT_RDKAFKA_LIBRARY NAMES librdkafka.a PATHS ${UT_RDKAFKA_PREFIX}/lib NO_DEFAULT_PATH)
if(NOT UT_RDKAFKA_INCLUDE_DIR OR NOT UT_RDKAFKA_LIBRARY)
    message(FATAL_ERROR "librdkafka ${UT_RDKAFKA_VERSION} is not installed in ${UT_RDKAFKA_PREFIX}: "
                        "run scripts/install-deps.sh build (it builds it in ~40 s)")
endif()
# The archive needs these, and its rdkafka-static.pc does not name them.
pkg_check_modules(RDKAFKA_DEPS REQUIRED IMPORTED_TARGET libssl libcrypto zlib libzstd)
find_package(Threads REQUIRED)
add_library(ut_rdkafka INTERFACE)
# Before /usr/include, where Debian's librdkafka-dev may have put 2.0.2's headers.
target_include_directories(ut_rdkafka SYSTEM BEFORE INTERFACE ${UT_RDKAFKA_INCLUDE_DIR})
target_compile_definitions(ut_rdkafka INTERFACE LIBRDKAFKA_STATICLIB)
target_link_libraries(ut_rdkafka INTERFACE ${UT_RDKAFKA_LIBRARY} PkgConfig::RDKAFKA_DEPS
                      Threads::Threads ${CMAKE_DL_LIBS} m rt)
message(STATUS "librdkafka: ${UT_RDKAFKA_LIBRARY}")
