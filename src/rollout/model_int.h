/* SPDX-License-Identifier: MIT */
/* model_int.h - what the flag model's parsers (condition.c, segment.c, flag.c) share: JSON input
 * helpers that report the field's path, and the lifecycle common to flags and segments (struct
 * def_head: allocation with the "key"/"description" head both start with, its release and
 * serialization; the document parse).  Reference counting is rollout_int.h's
 * ROLLOUT__DEFINE_REF_UNREF.
 *
 * Errors go to a struct err through rollout__field_err(): the message names the path and
 * err->field holds it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct def_head;
struct err;
struct jpath;
struct json_t;

/* "an object", "a string", ... for messages about a value of the wrong type. */
const char *rollout__json_kind(struct json_t *j);

/* 0 when obj is an object and (in strict mode) each of its members is in known or extra
 * (NULL-terminated lists; extra may be NULL).  Otherwise -EINVAL: "must be an object, not ...",
 * or "unknown field" naming the first other member. */
int rollout__check_object(struct json_t *obj, bool strict, const char *const *known,
                          const char *const *extra, struct jpath *p, struct err *reterr);

/* Optional string member name, min..max bytes, copied into *ret (caller frees); *ret stays
 * untouched when the member is absent.  -EINVAL (not a string, too short), -E2BIG (too long),
 * -ENOMEM. */
int rollout__get_string(struct json_t *obj, const char *name, size_t min, size_t max, char **ret,
                        struct jpath *p, struct err *reterr);

/* Allocates a definition of size bytes (zeroed; it starts with struct def_head) holding one
 * reference, and parses its head from obj: obj must be an object whose members are all in
 * known (strict mode), with a valid "key" (required) and an optional "description" ("" when
 * absent).  0 with *ret set (the caller converts it to its type and fills the rest), or
 * -EINVAL, -E2BIG, -ENOMEM with nothing allocated. */
int rollout__def_new(size_t size, struct json_t *obj, bool strict, const char *const *known,
                     struct jpath *p, struct def_head **ret, struct err *reterr);

/* Frees what h owns (NULL-safe), not h itself: the type's free function calls it. */
void rollout__def_head_release(struct def_head *h);

/* Writes `{"key":<key>,"description":<description>` (no closing brace): the normalized form
 * of the head. */
int rollout__def_head_write(struct buf *out, const struct def_head *h);

/* Builds a definition from obj (a json_t *) at path p into ret (a struct rollout_flag ** or
 * struct rollout_segment **). */
typedef int (*rollout__def_from_json_fn)(void *obj, struct jpath *p, void *ret, struct err *reterr);

/* Parses a definition document of at most ROLLOUT_FLAG_JSON_MAX bytes with from_json: what
 * rollout_flag_parse() and rollout_segment_parse() share.  Errors as rollout__json_load() and
 * from_json. */
int rollout__def_parse(const char *json, size_t len, rollout__def_from_json_fn from_json, void *ret,
                       struct err *reterr);
