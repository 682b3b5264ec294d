# Embed.cmake - compiles files into a program as byte arrays (for rolloutd's /ui page).
#
#   ut_embed_files(OUT_C HEADER TYPE SYMBOL FILE...)
#
# generates OUT_C at build time (cmake -P cmake/embed_files.cmake; regenerated when a FILE or the
# script changes) with
#
#   #include "HEADER"
#   const struct TYPE SYMBOL[] = { { "name", data, len, "\"etag\"" }, ... };  (sorted by name)
#   const size_t SYMBOL_count = N;
#
# HEADER defines struct TYPE as { const char *name; const unsigned char *data; size_t len;
# const char *etag; } and declares both symbols.  name is the file's base name; etag is a quoted
# strong ETag (the first 16 hex digits of the file's SHA-256).  Add OUT_C to the program's sources.
set(UT_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_files.cmake)

function(ut_embed_files out_c header type symbol)
    set(files ${ARGN})
    list(LENGTH files n)
    if(n EQUAL 0)
        message(FATAL_ERROR "ut_embed_files(${symbol}): no files")
    endif()
    list(SORT files)
    string(REPLACE ";" "|" files_arg "${files}")
    add_custom_command(
        OUTPUT ${out_c}
        COMMAND ${CMAKE_COMMAND} -DOUT=${out_c} -DHEADER=${header} -DTYPE=${type}
                -DSYMBOL=${symbol} "-DFILES=${files_arg}" -P ${UT_EMBED_SCRIPT}
        DEPENDS ${files} ${UT_EMBED_SCRIPT}
        COMMENT "Embedding ${n} files as ${symbol}"
        VERBATIM)
endfunction()
