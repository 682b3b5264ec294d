/* SPDX-License-Identifier: MIT */
/* model_int.h - what the flag model's parsers (condition.c, segment.c, flag.c) share: JSON input
 * helpers that report the field's path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct err;
struct jpath;
struct json_t;

#define ROLLOUT_DESCRIPTION_MAX 1024

/* "an object", "a string", ... for messages about a value of the wrong type. */
const char *rollout__json_kind(struct json_t *j);

/* In strict mode, -EINVAL naming the first member of obj that is in neither known nor extra
 * (NULL-terminated lists; extra may be NULL); 0 otherwise. */
int rollout__check_members(struct json_t *obj, bool strict, const char *const *known,
                           const char *const *extra, struct jpath *p, struct err *reterr);

/* Optional string member name, min..max bytes, copied into *ret (caller frees); *ret stays
 * untouched when the member is absent.  -EINVAL (not a string, too short), -E2BIG (too long),
 * -ENOMEM. */
int rollout__get_string(struct json_t *obj, const char *name, size_t min, size_t max, char **ret,
                        struct jpath *p, struct err *reterr);

/* The required "key" member: 1..ROLLOUT_KEY_MAX bytes of A-Z a-z 0-9 . _ - (*ret is set, for the
 * caller to free, even when the key is invalid). */
int rollout__get_key(struct json_t *obj, char **ret, struct jpath *p, struct err *reterr);
