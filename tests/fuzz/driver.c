/* SPDX-License-Identifier: MIT */
/* driver.c - replays every file of a corpus directory through LLVMFuzzerTestOneInput(), for
 * builds without libFuzzer (ctest runs it on tests/fuzz/corpus/<target>).  A libFuzzer build
 * defines UT_LIBFUZZER and gets its own main(). */
#ifndef UT_LIBFUZZER

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/fd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    struct dirent *de;
    unsigned ran = 0;
    DIR *d;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    while ((de = readdir(d))) {
        struct buf b = BUF_INIT(16u * 1024u * 1024u);
        char path[4096];
        int r;

        if (de->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name) >= sizeof path)
            continue;
        r = file_read_all(path, &b);
        if (r < 0) {
            fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-r));
            closedir(d);
            return 1;
        }
        (void)LLVMFuzzerTestOneInput((const uint8_t *)(b.data ? b.data : ""), b.len);
        buf_release(&b);
        ran++;
    }
    closedir(d);
    printf("replayed %u inputs\n", ran);
    return ran ? 0 : 1;
}

#endif
