/* SPDX-License-Identifier: MIT */
/* fuzz_stack.c - fuzz target: stack_parse() (and so cfg_parse()) on arbitrary bytes; a
 * parsed stack is also walked through start order and resolve to reach those paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "stack/stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_secret(const char *name, void *userdata)
{
    (void)userdata;
    return strlen(name) % 2 ? "odd" : NULL; /* exercise both found and missing */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stack_vars vars = { .state_dir = "/var/lib/fuzz", .secret = fuzz_secret };
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    size_t *order;

    if (stack_parse("fuzz.yml", (const char *)data, size, &s, &e) < 0) {
        if (!e.msg[0])
            abort(); /* every parse error must say something */
        return 0;
    }
    order = calloc(s->n_services, sizeof *order);
    if (order) {
        stack_start_order(s, order);
        free(order);
    }
    e = (struct err)ERR_INIT;
    if (stack_resolve(s, &vars, &e) < 0 && !e.msg[0])
        abort();
    stack_free(s);
    return 0;
}
