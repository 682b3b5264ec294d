# Picky warnings (curl's PickyWarnings list, CONVENTIONS.md), applied PRIVATE per target.
set(UT_WARNINGS
    -Wall -Wextra -Wpedantic -Wformat=2 -Wformat-security -Wshadow -Wstrict-prototypes
    -Wold-style-definition -Wmissing-prototypes -Wmissing-declarations -Wpointer-arith
    -Wcast-qual -Wcast-align -Wwrite-strings -Wundef -Wvla -Wnull-dereference
    -Wimplicit-fallthrough -Wdouble-promotion -Wsign-compare -Wredundant-decls
    -Werror=implicit-function-declaration -Werror=incompatible-pointer-types -fno-common
    -fstack-protector-strong)
if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    list(APPEND UT_WARNINGS -Wmissing-variable-declarations)
endif()
if(UT_WERROR)
    list(APPEND UT_WARNINGS -Werror)
endif()

function(ut_warnings target)
    target_compile_options(${target} PRIVATE ${UT_WARNINGS})
endfunction()
