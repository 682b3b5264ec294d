/* SPDX-License-Identifier: MIT */
/* fuzz_topics_file.c - fuzz target: the topics file parser (kafka/topics_file.h) on arbitrary
 * input, then the disk fit check on whatever it accepts; every accepted spec must be one the
 * adapter accepts too (a name, partitions >= 1, a replication factor within the brokers). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kafka/topics_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kfk_topics_file *f = NULL;
    struct err e = ERR_INIT;
    uint64_t bytes;

    if (kfk_topics_file_parse("fuzz.yml", (const char *)data, size, "local", &f, &e) < 0)
        return 0;
    for (size_t i = 0; i < f->n_specs; i++) {
        const struct kfk_topic_spec *s = &f->specs[i];

        if (!s->name || !*s->name || s->partitions < 1 || s->replication_factor < 1 ||
            (unsigned)s->replication_factor > f->brokers)
            abort();
        for (size_t k = 0; k < s->n_configs; k++)
            if (!s->configs[k].key || !s->configs[k].value)
                abort();
    }
    if (kfk_topics_file_check_fit(f, &bytes, &e) == 0 && bytes > f->broker_storage)
        abort();
    kfk_topics_file_free(f);
    return 0;
}
