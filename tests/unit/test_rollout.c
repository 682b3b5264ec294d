/* SPDX-License-Identifier: MIT */
/* test_rollout.c - the flag engine: bucketing vectors, cohort nesting, percentages, parsing
 * errors, normalization, every rule operator, kill switch, environments, shadow, segments,
 * contexts, OFREP rendering and evaluation counters. */
#include "t.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "metrics/metrics.h"
#include "rollout.h"
#include "rollout/rollout_int.h"

static struct rollout_flag *flag_ok(const char *json)
{
    struct rollout_flag *f = NULL;
    struct err e = ERR_INIT;
    int r = rollout_flag_parse(json, strlen(json), &f, &e);

    if (r < 0)
        T_FAIL("flag parse failed: %s (%s)", e.msg, json);
    return f;
}

/* The field an expected message "field 'x': ..." names ("" for other messages). */
static void field_of(const char *msg, char *buf, size_t n)
{
    const char *end;

    buf[0] = '\0';
    if (strncmp(msg, "field '", 7) == 0 && (end = strchr(msg + 7, '\'')) != NULL)
        (void)snprintf(buf, n, "%.*s", (int)(end - msg - 7), msg + 7);
}

static void flag_err(const char *json, int code, const char *msg)
{
    struct rollout_flag *f = NULL;
    struct err e = ERR_INIT;
    int r = rollout_flag_parse(json, strlen(json), &f, &e);
    char field[256];

    if (r >= 0)
        T_FAIL("parse of %s succeeded, expected '%s'", json, msg);
    ASSERT_ERRNO(r, code);
    ASSERT_CONTAINS(e.msg, msg);
    /* The field travels as data (struct err's field), the same path the message shows. */
    field_of(msg, field, sizeof field);
    ASSERT_STREQ(e.field, field);
}

/* A snapshot of one flag (plus optional segments) for env. */
static struct rollout_snapshot *snap1(const char *env, const char *flag_json,
                                      const char *segment_json)
{
    struct rollout_flag *f = flag_ok(flag_json);
    struct rollout_segment *seg = NULL;
    struct rollout_snapshot *s = NULL;
    struct err e = ERR_INIT;

    if (segment_json)
        ASSERT_OK(rollout_segment_parse(segment_json, strlen(segment_json), &seg, &e));
    if (rollout_snapshot_build(env, 1, &f, 1, &seg, seg ? 1 : 0, &s, &e) < 0)
        T_FAIL("build: %s", e.msg);
    rollout_flag_unref(f);
    rollout_segment_unref(seg);
    return s;
}

static const char *variant_for(const struct rollout_snapshot *s, const char *key,
                               const struct rollout_ctx *ctx)
{
    struct rollout_result res;
    int r = rollout_eval(s, key, ctx, ROLLOUT_TYPE_ANY, &res);

    if (r < 0)
        return rollout_error_name(res.error);
    return res.variant;
}

/* ===== Bucketing ===== */

static void test_bucket_vectors(void)
{
    json_error_t jerr;
    json_t *root =
            json_load_file(UT_SOURCE_DIR "/tests/unit/data/rollout/bucket_vectors.json", 0, &jerr);
    json_t *vecs, *v;
    size_t i, n = 0;

    if (!root)
        T_FAIL("cannot load vectors: %s", jerr.text);
    vecs = json_object_get(root, "vectors");
    json_array_foreach(vecs, i, v)
    {
        const char *salt = json_string_value(json_object_get(v, "salt"));
        const char *value = json_string_value(json_object_get(v, "value"));
        uint32_t hash = (uint32_t)json_integer_value(json_object_get(v, "hash"));
        uint32_t bucket = (uint32_t)json_integer_value(json_object_get(v, "bucket"));
        char input[512];
        int len = snprintf(input, sizeof input, "%s:%s", salt, value);

        ASSERT_EQ(rollout_murmur3_32(input, (size_t)len, 0), hash);
        ASSERT_EQ(rollout_bucket(salt, value), bucket);
        n++;
    }
    ASSERT_GE(n, 200);
    /* The spike's unleash-client figure, independent of our generator. */
    ASSERT_EQ(rollout_murmur3_32("spike-flag:user-1", 17, 0), 902997170u);
    json_decref(root);
}

static void test_streaming_hash_matches_oneshot(void)
{
    const char *text = "the quick brown fox jumps over the lazy dog";
    size_t len = strlen(text);

    for (size_t cut1 = 0; cut1 <= len; cut1 += 3)
        for (size_t cut2 = cut1; cut2 <= len; cut2 += 5) {
            struct mm3 m;

            rollout__mm3_init(&m, 7);
            rollout__mm3_update(&m, text, cut1);
            rollout__mm3_update(&m, text + cut1, cut2 - cut1);
            rollout__mm3_update(&m, text + cut2, len - cut2);
            ASSERT_EQ(rollout__mm3_final(&m), rollout_murmur3_32(text, len, 7));
        }
}

#define NEST_FLAG(stage_, canary_, partial_)                                  \
    "{\"key\":\"nest\",\"environments\":{\"production\":{\"stage\":\"" stage_ \
    "\",\"canary\":" canary_ ",\"partial\":" partial_ "}}}"

static void test_nesting_100k(void)
{
    struct rollout_snapshot *canary = snap1("production", NEST_FLAG("canary", "0.5", "20"), NULL);
    struct rollout_snapshot *partial = snap1("production", NEST_FLAG("partial", "0.5", "20"), NULL);
    struct rollout_snapshot *wider =
            snap1("production", NEST_FLAG("partial", "0.5", "37.125"), NULL);
    struct rollout_snapshot *full = snap1("production", NEST_FLAG("full", "0.5", "20"), NULL);
    unsigned n_canary = 0, n_partial = 0, n_wider = 0;

    for (unsigned i = 0; i < 100000; i++) {
        char tk[32];
        struct rollout_ctx ctx = ROLLOUT_CTX(tk, NULL, 0);
        bool in_c, in_p, in_w, in_f;

        (void)snprintf(tk, sizeof tk, "subject-%u", i);
        in_c = strcmp(variant_for(canary, "nest", &ctx), "candidate") == 0;
        in_p = strcmp(variant_for(partial, "nest", &ctx), "candidate") == 0;
        in_w = strcmp(variant_for(wider, "nest", &ctx), "candidate") == 0;
        in_f = strcmp(variant_for(full, "nest", &ctx), "candidate") == 0;
        if (in_c && !in_p)
            T_FAIL("%s in canary but not in partial", tk);
        if (in_p && !in_w)
            T_FAIL("%s in partial 20 %% but not in partial 37.125 %%", tk);
        if (!in_f)
            T_FAIL("%s not in full", tk);
        n_canary += in_c;
        n_partial += in_p;
        n_wider += in_w;
    }
    /* Binomial tolerances, about 5 sigma: 0.5 % of 1e5 -> 500 +- 111; 20 % -> 20000 +- 632. */
    ASSERT_GE(n_canary, 389);
    ASSERT_LE(n_canary, 611);
    ASSERT_GE(n_partial, 19368);
    ASSERT_LE(n_partial, 20632);
    ASSERT_GE(n_wider, 37125 - 764);
    ASSERT_LE(n_wider, 37125 + 764);
    rollout_snapshot_unref(canary);
    rollout_snapshot_unref(partial);
    rollout_snapshot_unref(wider);
    rollout_snapshot_unref(full);
}

static void test_fine_percentages(void)
{
    /* 0.001 % precision: the cohort is exactly the subjects with bucket < 1 (of 100000). */
    struct rollout_snapshot *s = snap1("production", NEST_FLAG("canary", "0.001", "0.001"), NULL);
    unsigned in = 0, expect = 0;

    for (unsigned i = 0; i < 300000; i++) {
        char tk[32];
        struct rollout_ctx ctx = ROLLOUT_CTX(tk, NULL, 0);

        (void)snprintf(tk, sizeof tk, "s%u", i);
        in += strcmp(variant_for(s, "nest", &ctx), "candidate") == 0;
        expect += rollout_bucket("nest", tk) < 1;
    }
    ASSERT_EQ(in, expect);
    ASSERT_GE(in, 1); /* 3 expected */
    ASSERT_LE(in, 12);
    rollout_snapshot_unref(s);
}

/* ===== Parsing ===== */

static void test_parse_errors_name_the_field(void)
{
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"x\",\"op\":\"eq\",\"value\":1,\"variant\":"
             "\"candidate\"},{\"attribute\":\"x\",\"op\":\"eq\",\"value\":1,\"variant\":"
             "\"candidate\"},{\"attribute\":\"x\",\"op\":\"eqq\",\"value\":1,\"variant\":"
             "\"candidate\"}]}",
             -EINVAL, "field 'rules[2].op': unknown operator 'eqq'");
    flag_err("{\"key\":\"a b\"}", -EINVAL, "field 'key': invalid key 'a b'");
    flag_err("{}", -EINVAL, "'key' is required");
    flag_err("{\"key\":\"a\",\"colour\":1}", -EINVAL, "field 'colour': unknown field");
    flag_err("{\"key\":\"a\",\"environments\":{\"production\":{\"canary\":0.0005}}}", -EINVAL,
             "field 'environments.production.canary': more precise than 0.001 %");
    flag_err("{\"key\":\"a\",\"environments\":{\"production\":{\"canary\":30,\"partial\":20}}}",
             -EINVAL, "field 'environments.production.canary': must not exceed partial");
    flag_err("{\"key\":\"a\",\"environments\":{\"production\":{\"partial\":101}}}", -EINVAL,
             "field 'environments.production.partial': must be within 0..100");
    flag_err("{\"key\":\"a\",\"environments\":{\"Prod\":{}}}", -EINVAL,
             "field 'environments.Prod': invalid environment name");
    flag_err("{\"key\":\"a\",\"environments\":{\"production\":{\"stage\":\"beta\"}}}", -EINVAL,
             "field 'environments.production.stage': must be one of");
    flag_err("{\"key\":\"a\",\"type\":\"string\"}", -EINVAL,
             "field 'variants': required for type 'string'");
    flag_err("{\"key\":\"a\",\"variants\":{\"control\":\"x\",\"candidate\":2}}", -EINVAL,
             "field 'variants.candidate': must be of type 'string', not a number");
    flag_err("{\"key\":\"a\",\"variants\":{\"off\":false,\"on\":true}}", -EINVAL,
             "field 'control': no variant named 'control' (the default)");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"semver_gt\",\"value\":"
             "\"1.2\",\"variant\":\"candidate\"}]}",
             -EINVAL, "field 'rules[0].value': invalid semantic version '1.2'");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"regex\",\"value\":"
             "\"ab)c\",\"variant\":\"candidate\"}]}",
             -EINVAL, "field 'rules[0].value': invalid regex: unbalanced ')' at offset 2");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"in\",\"value\":1,"
             "\"variant\":\"candidate\"}]}",
             -EINVAL, "field 'rules[0].value': 'in' takes 'values'");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"lt\",\"value\":\"3\","
             "\"variant\":\"candidate\"}]}",
             -EINVAL, "field 'rules[0].value': 'lt' needs a number");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"eq\",\"value\":1}]}", -EINVAL,
             "field 'rules[0]': an action is required");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"eq\",\"value\":1,"
             "\"variant\":\"blue\"}]}",
             -EINVAL, "field 'rules[0].variant': no variant named 'blue'");
    flag_err("{\"key\":\"a\",\"rules\":[{\"attribute\":\"v\",\"op\":\"eq\",\"valeu\":1,"
             "\"variant\":\"candidate\"}]}",
             -EINVAL, "field 'rules[0].valeu': unknown field");
    flag_err("{\"key\":\"a\",\"rules\":[{\"op\":\"in_segment\",\"segment\":\"b\",\"value\":1,"
             "\"variant\":\"candidate\"}]}",
             -EINVAL, "field 'rules[0].value': not allowed with 'in_segment'");
    flag_err("{\"key\":\"a\",", -EBADMSG, "invalid JSON");
    flag_err("{\"key\":\"a\",\"key\":\"b\"}", -EBADMSG, "duplicate");
}

static void test_syntax_error_position(void)
{
    struct rollout_flag *f = NULL;
    struct err e = ERR_INIT;
    const char *json = "{\n  \"key\": \"a\",\n  \"version\": 01\n}";

    ASSERT_ERRNO(rollout_flag_parse(json, strlen(json), &f, &e), -EBADMSG);
    ASSERT_EQ(e.line, 3);
    ASSERT_GE(e.col, 1);
}

static const char *full_flag =
        "{\"key\":\"pricing\",\"description\":\"new \\\"pricing\\\"\",\"version\":7,"
        "\"type\":\"string\",\"variants\":{\"old\":\"v1\",\"new\":\"v2\",\"exp\":\"v3\"},"
        "\"control\":\"old\",\"candidate\":\"new\",\"salt\":\"s1\",\"stickiness\":\"account\","
        "\"rules\":[{\"attribute\":\"email\",\"op\":\"regex\",\"value\":\"@corp\\\\.example$\","
        "\"variant\":\"exp\"},{\"attribute\":\"country\",\"op\":\"in\",\"values\":[\"US\",1,true],"
        "\"exclude\":true},{\"op\":\"in_segment\",\"segment\":\"beta\",\"variant\":\"new\"}],"
        "\"environments\":{\"staging\":{\"stage\":\"full\",\"kill\":false,\"shadow\":100,"
        "\"canary\":1,\"partial\":25},\"production\":{\"stage\":\"canary\",\"kill\":true,"
        "\"shadow\":12.5,\"canary\":0.001,\"partial\":99.999}}}";

static void test_serialize_round_trip(void)
{
    struct rollout_flag *f = flag_ok(full_flag), *g;
    struct buf a = BUF_INIT(0), b = BUF_INIT(0), prod = BUF_INIT(0);

    ASSERT_OK(rollout_flag_serialize(f, NULL, &a));
    /* Environments come out sorted by name; otherwise the input is already normalized. */
    ASSERT_CONTAINS(buf_str(&a), "\"environments\":{\"production\":{\"stage\":\"canary\","
                                 "\"kill\":true,\"shadow\":12.5,\"canary\":0.001,"
                                 "\"partial\":99.999},\"staging\":");
    ASSERT_CONTAINS(buf_str(&a), "\"values\":[\"US\",1,true],\"exclude\":true}");
    g = flag_ok(buf_str(&a));
    ASSERT_OK(rollout_flag_serialize(g, NULL, &b));
    ASSERT_STREQ(buf_str(&a), buf_str(&b));
    ASSERT_OK(rollout_flag_serialize(f, "production", &prod));
    ASSERT_FALSE(strstr(buf_str(&prod), "staging"));
    ASSERT_EQ(rollout_flag_version(g), 7);
    rollout_flag_unref(g);
    g = rollout_flag_with_version(f, 8);
    ASSERT_EQ(rollout_flag_version(g), 8);
    ASSERT_EQ(rollout_flag_version(f), 7);
    rollout_flag_unref(g);
    rollout_flag_unref(f);
    buf_release(&a);
    buf_release(&b);
    buf_release(&prod);
}

static void test_defaults(void)
{
    struct rollout_flag *f = flag_ok("{\"key\":\"d\"}");
    struct buf a = BUF_INIT(0);

    ASSERT_OK(rollout_flag_serialize(f, NULL, &a));
    ASSERT_STREQ(buf_str(&a), "{\"key\":\"d\",\"description\":\"\",\"version\":0,\"type\":"
                              "\"boolean\",\"variants\":{\"control\":false,\"candidate\":true},"
                              "\"control\":\"control\",\"candidate\":\"candidate\",\"salt\":\"d\","
                              "\"stickiness\":\"targetingKey\",\"rules\":[],\"environments\":{}}");
    rollout_flag_unref(f);
    f = flag_ok("{\"key\":\"o\",\"variants\":{\"control\":{\"a\":[1,2]},\"candidate\":[0.1]},"
                "\"environments\":{\"staging\":{}}}");
    buf_reset(&a);
    ASSERT_OK(rollout_flag_serialize(f, NULL, &a));
    ASSERT_CONTAINS(buf_str(&a), "\"type\":\"object\",\"variants\":{\"control\":{\"a\":[1,2]},");
    ASSERT_CONTAINS(buf_str(&a), "\"staging\":{\"stage\":\"off\",\"kill\":false,\"shadow\":100,"
                                 "\"canary\":1,\"partial\":25}");
    rollout_flag_unref(f);
    buf_release(&a);
}

static void test_snapshot_document(void)
{
    const char *doc =
            "{\"version\":42,\"env\":\"production\",\"future\":1,\"segments\":[{\"key\":\"beta\","
            "\"conditions\":[{\"attribute\":\"beta\",\"op\":\"eq\",\"value\":true}]}],\"flags\":["
            "{\"key\":\"b\",\"environments\":{\"production\":{\"stage\":\"full\"}}},"
            "{\"key\":\"a\",\"unknown\":[],\"rules\":[{\"op\":\"in_segment\",\"segment\":\"beta\","
            "\"variant\":\"candidate\"}]}]}";
    struct rollout_snapshot *s = NULL, *t = NULL;
    struct buf a = BUF_INIT(0), b = BUF_INIT(0);
    struct err e = ERR_INIT;

    ASSERT_OK(rollout_snapshot_parse(doc, strlen(doc), &s, &e));
    ASSERT_EQ(rollout_snapshot_version(s), 42);
    ASSERT_STREQ(rollout_snapshot_env(s), "production");
    ASSERT_EQ(rollout_snapshot_n_flags(s), 2);
    ASSERT_STREQ(rollout_flag_key(rollout_snapshot_flag_at(s, 0)), "a");
    ASSERT_TRUE(rollout_snapshot_find(s, "b") != NULL);
    ASSERT_TRUE(rollout_snapshot_find(s, "c") == NULL);
    ASSERT_OK(rollout_snapshot_serialize(s, &a));
    ASSERT_FALSE(strchr(buf_str(&a), '\n'));
    ASSERT_OK(rollout_snapshot_parse(buf_str(&a), a.len, &t, &e));
    ASSERT_OK(rollout_snapshot_serialize(t, &b));
    ASSERT_STREQ(buf_str(&a), buf_str(&b));
    rollout_snapshot_unref(s);
    rollout_snapshot_unref(t);

    /* Errors carry the snapshot path. */
    doc = "{\"version\":1,\"env\":\"production\",\"flags\":[{\"key\":\"a\"},{\"key\":\"b\","
          "\"rules\":[{\"attribute\":\"x\",\"op\":\"eqq\",\"value\":1,\"variant\":\"control\"}]}]}";
    ASSERT_ERRNO(rollout_snapshot_parse(doc, strlen(doc), &s, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "field 'flags[1].rules[0].op': unknown operator 'eqq'");
    ASSERT_STREQ(e.field, "flags[1].rules[0].op");
    doc = "{\"version\":1,\"env\":\"production\",\"flags\":[{\"key\":\"a\",\"rules\":[{\"op\":"
          "\"in_segment\",\"segment\":\"nope\",\"variant\":\"control\"}]}]}";
    ASSERT_ERRNO(rollout_snapshot_parse(doc, strlen(doc), &s, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "flag 'a': field 'rules[0].segment': unknown segment 'nope'");
    ASSERT_STREQ(e.field, "rules[0].segment");
    doc = "{\"version\":1,\"env\":\"production\",\"flags\":[{\"key\":\"a\"},{\"key\":\"a\"}]}";
    ASSERT_ERRNO(rollout_snapshot_parse(doc, strlen(doc), &s, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "flag 'a': duplicate key");
    ASSERT_STREQ(e.field, "");
    doc = "{\"version\":1,\"flags\":[]}";
    ASSERT_ERRNO(rollout_snapshot_parse(doc, strlen(doc), &s, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "field 'env'");
    ASSERT_STREQ(e.field, "env");
    buf_release(&a);
    buf_release(&b);
}

/* ===== Operators ===== */

/* One rule pinning to candidate; stage off, so a non-match gives control. */
static bool rule_matches(const char *rule, const struct rollout_ctx *ctx)
{
    char json[1024];
    struct rollout_snapshot *s;
    bool m;

    (void)snprintf(json, sizeof json,
                   "{\"key\":\"r\",\"rules\":[{%s,\"variant\":\"candidate\"}],"
                   "\"environments\":{\"production\":{\"stage\":\"off\"}}}",
                   rule);
    s = snap1("production", json, NULL);
    m = strcmp(variant_for(s, "r", ctx), "candidate") == 0;
    rollout_snapshot_unref(s);
    return m;
}

static void test_operators(void)
{
    struct rollout_attr attrs[] = {
        ROLLOUT_ATTR_STRING("country", "DE"),
        ROLLOUT_ATTR_NUMBER("age", 33),
        ROLLOUT_ATTR_BOOL("beta", true),
        ROLLOUT_ATTR_STRING("score", "17.5"),
        ROLLOUT_ATTR_STRING("app", "2.3.0-rc.1"),
        ROLLOUT_ATTR_STRING("email", "ann@corp.example"),
        { .name = "nothing", .type = ROLLOUT_ATTR_NULL },
    };
    struct rollout_ctx ctx = ROLLOUT_CTX("user-42", attrs, ARRAY_SIZE(attrs));

    ASSERT_TRUE(rule_matches("\"attribute\":\"country\",\"op\":\"eq\",\"value\":\"DE\"", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"country\",\"op\":\"eq\",\"value\":\"de\"", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"age\",\"op\":\"eq\",\"value\":\"33\"", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"age\",\"op\":\"eq\",\"value\":33", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"beta\",\"op\":\"eq\",\"value\":true", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"targetingKey\",\"op\":\"eq\",\"value\":\"user-42\"",
                             &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"country\",\"op\":\"neq\",\"value\":\"FR\"", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"country\",\"op\":\"neq\",\"value\":\"DE\"", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"missing\",\"op\":\"neq\",\"value\":\"DE\"", &ctx));

    ASSERT_TRUE(rule_matches("\"attribute\":\"country\",\"op\":\"in\",\"values\":[\"FR\",\"DE\"]",
                             &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"country\",\"op\":\"in\",\"values\":[\"FR\",\"D\"]",
                              &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"age\",\"op\":\"in\",\"values\":[1,33,\"x\"]", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"beta\",\"op\":\"in\",\"values\":[true]", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"beta\",\"op\":\"in\",\"values\":[false]", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"missing\",\"op\":\"in\",\"values\":[\"\"]", &ctx));
    ASSERT_TRUE(
            rule_matches("\"attribute\":\"country\",\"op\":\"not_in\",\"values\":[\"FR\"]", &ctx));
    ASSERT_FALSE(
            rule_matches("\"attribute\":\"country\",\"op\":\"not_in\",\"values\":[\"DE\"]", &ctx));
    ASSERT_TRUE(
            rule_matches("\"attribute\":\"missing\",\"op\":\"not_in\",\"values\":[\"DE\"]", &ctx));

    ASSERT_TRUE(rule_matches("\"attribute\":\"age\",\"op\":\"lt\",\"value\":34", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"age\",\"op\":\"lt\",\"value\":33", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"age\",\"op\":\"lte\",\"value\":33", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"age\",\"op\":\"gt\",\"value\":32.5", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"age\",\"op\":\"gt\",\"value\":33", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"age\",\"op\":\"gte\",\"value\":33", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"score\",\"op\":\"gt\",\"value\":17", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"country\",\"op\":\"gt\",\"value\":0", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"nothing\",\"op\":\"lt\",\"value\":0", &ctx));

    ASSERT_TRUE(
            rule_matches("\"attribute\":\"app\",\"op\":\"semver_lt\",\"value\":\"2.3.0\"", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"app\",\"op\":\"semver_gt\",\"value\":\"2.3.0-rc.0\"",
                             &ctx));
    ASSERT_TRUE(rule_matches(
            "\"attribute\":\"app\",\"op\":\"semver_gt\",\"value\":\"2.3.0-beta.11\"", &ctx));
    ASSERT_FALSE(rule_matches(
            "\"attribute\":\"app\",\"op\":\"semver_gt\",\"value\":\"2.3.0-rc.1.1\"", &ctx));
    ASSERT_TRUE(rule_matches(
            "\"attribute\":\"app\",\"op\":\"semver_eq\",\"value\":\"v2.3.0-rc.1+b7\"", &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"app\",\"op\":\"semver_gte\",\"value\":\"2.3.0-rc.1\"",
                             &ctx));
    ASSERT_TRUE(rule_matches("\"attribute\":\"app\",\"op\":\"semver_lte\",\"value\":\"2.3.0-rc.1\"",
                             &ctx));
    ASSERT_FALSE(
            rule_matches("\"attribute\":\"app\",\"op\":\"semver_lte\",\"value\":\"2.2.99\"", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"country\",\"op\":\"semver_lt\",\"value\":\"9.0.0\"",
                              &ctx));

    ASSERT_TRUE(rule_matches(
            "\"attribute\":\"email\",\"op\":\"regex\",\"value\":\"@corp\\\\.example$\"", &ctx));
    ASSERT_FALSE(
            rule_matches("\"attribute\":\"email\",\"op\":\"regex\",\"value\":\"^corp\"", &ctx));
    ASSERT_FALSE(rule_matches("\"attribute\":\"age\",\"op\":\"regex\",\"value\":\"3\"", &ctx));
}

static bool rx(const char *pattern, const char *s)
{
    char msg[160];
    struct rx *r = NULL;
    bool m;

    if (rollout__rx_compile(pattern, strlen(pattern), &r, msg, sizeof msg) < 0)
        T_FAIL("regex '%s': %s", pattern, msg);
    m = rollout__rx_search(r, s, strlen(s));
    rollout__rx_free(r);
    return m;
}

static void test_regex_engine(void)
{
    char msg[160];
    struct rx *r = NULL;
    char big[20001];

    ASSERT_TRUE(rx("abc", "xxabcxx"));
    ASSERT_FALSE(rx("^abc", "xxabc"));
    ASSERT_TRUE(rx("^abc$", "abc"));
    ASSERT_FALSE(rx("^abc$", "abcd"));
    ASSERT_TRUE(rx("a.c", "a-c"));
    ASSERT_TRUE(rx("^a*$", ""));
    ASSERT_TRUE(rx("^(ab)+$", "ababab"));
    ASSERT_FALSE(rx("^(ab)+$", "ababa"));
    ASSERT_TRUE(rx("^colou?r$", "color"));
    ASSERT_TRUE(rx("^(cat|dog)s?$", "dogs"));
    ASSERT_FALSE(rx("^(cat|dog)s?$", "cow"));
    ASSERT_TRUE(rx("^[a-c]+[^0-9]$", "abcx"));
    ASSERT_FALSE(rx("^[a-c]+[^0-9]$", "abc5"));
    ASSERT_TRUE(rx("^\\d{3}-\\d{2,4}$", "123-4567"));
    ASSERT_FALSE(rx("^\\d{3}-\\d{2,4}$", "123-45678"));
    ASSERT_TRUE(rx("^x{2,}$", "xxxxx"));
    ASSERT_FALSE(rx("^x{2,}$", "x"));
    ASSERT_TRUE(rx("^\\w+@\\w+\\.com$", "a_1@b.com"));
    ASSERT_TRUE(rx("\\s", "a b"));
    ASSERT_FALSE(rx("\\S", "  "));
    ASSERT_TRUE(rx("[]a]", "]"));
    ASSERT_TRUE(rx("^[-a]+$", "-a-"));
    ASSERT_TRUE(rx("a|^b", "cb a"));
    ASSERT_TRUE(rx("(a|)$", "xyz"));
    ASSERT_TRUE(rx("^ü$", "ü")); /* bytes */
    /* Literal fast paths and the required-run prefilter. */
    ASSERT_TRUE(rx("example$", "a@example"));
    ASSERT_FALSE(rx("example$", "a@example.org"));
    ASSERT_FALSE(rx("example$", "ple"));
    ASSERT_TRUE(rx("^user-", "user-1"));
    ASSERT_FALSE(rx("^user-", "a user-1"));
    ASSERT_TRUE(rx("corp", "a@corp.x"));
    ASSERT_FALSE(rx("corp", "a@cor.p"));
    ASSERT_TRUE(rx("^x\\d+yz", "x12yz"));
    ASSERT_FALSE(rx("^x\\d+yz", "x12y"));
    ASSERT_FALSE(rx("^x\\d+yz", "xyz"));
    ASSERT_TRUE(rx("a$|b", "b--"));
    ASSERT_TRUE(rx("$", ""));
    /* Catastrophic for backtracking engines; linear here. */
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ASSERT_FALSE(rx("^(a+)+$b", big));
    ASSERT_FALSE(rx("(a|aa)*c", big));

    ASSERT_ERRNO(rollout__rx_compile("a(b", 3, &r, msg, sizeof msg), -EINVAL);
    ASSERT_CONTAINS(msg, "missing ')'");
    ASSERT_ERRNO(rollout__rx_compile("*a", 2, &r, msg, sizeof msg), -EINVAL);
    ASSERT_CONTAINS(msg, "nothing to repeat at offset 0");
    ASSERT_ERRNO(rollout__rx_compile("a{3,1}", 6, &r, msg, sizeof msg), -EINVAL);
    ASSERT_ERRNO(rollout__rx_compile("a{101}", 6, &r, msg, sizeof msg), -EINVAL);
    ASSERT_ERRNO(rollout__rx_compile("[z-a]", 5, &r, msg, sizeof msg), -EINVAL);
    ASSERT_ERRNO(rollout__rx_compile("\\q", 2, &r, msg, sizeof msg), -EINVAL);
    ASSERT_ERRNO(rollout__rx_compile("(a{100}){100}", 13, &r, msg, sizeof msg), -EINVAL);
    ASSERT_CONTAINS(msg, "too large");
}

static void test_semver_order(void)
{
    /* The precedence example of SemVer 2.0.0 section 11. */
    static const char *const order[] = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                         "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                         "1.0.0-rc.1",  "1.0.0",         "2.0.0",
                                         "2.1.0",       "2.1.1",         "10.0.0" };

    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        for (size_t j = 0; j < ARRAY_SIZE(order); j++) {
            struct semver a, b;
            int c;

            ASSERT_TRUE(rollout__semver_parse(order[i], strlen(order[i]), &a));
            ASSERT_TRUE(rollout__semver_parse(order[j], strlen(order[j]), &b));
            c = rollout__semver_cmp(&a, &b);
            if ((i < j && c >= 0) || (i == j && c != 0) || (i > j && c <= 0))
                T_FAIL("%s vs %s: %d", order[i], order[j], c);
        }
    {
        struct semver v;
        static const char *const bad[] = { "1.2",    "01.2.3", "1.2.3-",  "1.2.3-a..b",
                                           "1.2.3+", "a.b.c",  "1.2.3.4", "" };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
            if (rollout__semver_parse(bad[i], strlen(bad[i]), &v))
                T_FAIL("'%s' parsed as semver", bad[i]);
    }
}

/* ===== Stages, kill switch, environments, shadow ===== */

static const char *staged =
        "{\"key\":\"m\",\"type\":\"string\",\"variants\":{\"control\":\"v1\",\"candidate\":"
        "\"v2\"},\"rules\":[{\"attribute\":\"tier\",\"op\":\"eq\",\"value\":\"internal\","
        "\"variant\":\"candidate\"},{\"attribute\":\"country\",\"op\":\"eq\",\"value\":\"XX\","
        "\"exclude\":true}],\"environments\":{\"staging\":{\"stage\":\"full\"},"
        "\"production\":{\"stage\":\"shadow\",\"shadow\":50}},"
        "\"stickiness\":\"account\"}";

static void test_stages_and_shadow(void)
{
    struct rollout_snapshot *prod = snap1("production", staged, NULL);
    struct rollout_snapshot *stg = snap1("staging", staged, NULL);
    struct rollout_snapshot *dev = snap1("dev", staged, NULL);
    struct rollout_attr internal[] = { ROLLOUT_ATTR_STRING("tier", "internal") };
    struct rollout_attr excluded[] = { ROLLOUT_ATTR_STRING("country", "XX"),
                                       ROLLOUT_ATTR_STRING("account", "acc-1") };
    struct rollout_ctx none = ROLLOUT_CTX_INIT;
    struct rollout_result res;
    unsigned shadowed = 0;

    /* Staging: full, no key needed. */
    ASSERT_OK(rollout_eval(stg, "m", &none, ROLLOUT_TYPE_STRING, &res));
    ASSERT_STREQ(res.value->s, "v2");
    ASSERT_EQ(res.reason, ROLLOUT_REASON_STATIC);
    /* An environment the flag does not know: off. */
    ASSERT_OK(rollout_eval(dev, "m", &none, ROLLOUT_TYPE_STRING, &res));
    ASSERT_STREQ(res.variant, "control");
    ASSERT_EQ(res.reason, ROLLOUT_REASON_DISABLED);
    ASSERT_EQ(res.stage, ROLLOUT_STAGE_OFF);
    /* Production shadow: bucketing needs the stickiness attribute "account". */
    ASSERT_ERRNO(rollout_eval(prod, "m", &(struct rollout_ctx)ROLLOUT_CTX("tk-only", NULL, 0),
                              ROLLOUT_TYPE_STRING, &res),
                 -ENOKEY);
    ASSERT_EQ(res.error, ROLLOUT_ERROR_TARGETING_KEY_MISSING);
    ASSERT_TRUE(res.value == NULL);
    /* A pin rule needs no key. */
    ASSERT_OK(rollout_eval(prod, "m", &(struct rollout_ctx)ROLLOUT_CTX(NULL, internal, 1),
                           ROLLOUT_TYPE_STRING, &res));
    ASSERT_STREQ(res.value->s, "v2");
    ASSERT_EQ(res.reason, ROLLOUT_REASON_TARGETING_MATCH);
    ASSERT_FALSE(res.shadow);
    ASSERT_OK(rollout_eval(prod, "m", &(struct rollout_ctx)ROLLOUT_CTX(NULL, excluded, 2),
                           ROLLOUT_TYPE_STRING, &res));
    ASSERT_STREQ(res.variant, "control");
    ASSERT_FALSE(res.shadow);
    for (unsigned i = 0; i < 2000; i++) {
        char acc[32];
        struct rollout_attr a[] = { ROLLOUT_ATTR_STRING("account", acc) };

        (void)snprintf(acc, sizeof acc, "acc-%u", i);
        ASSERT_OK(rollout_eval(prod, "m", &(struct rollout_ctx)ROLLOUT_CTX(NULL, a, 1),
                               ROLLOUT_TYPE_STRING, &res));
        ASSERT_STREQ(res.value->s, "v1"); /* always control in shadow */
        ASSERT_EQ(res.reason, ROLLOUT_REASON_SPLIT);
        ASSERT_EQ(res.bucket, rollout_bucket("m", acc));
        ASSERT_EQ(res.shadow, res.bucket < 50000);
        if (res.shadow) {
            ASSERT_STREQ(res.shadow_value->s, "v2");
            ASSERT_STREQ(res.shadow_variant, "candidate");
            shadowed++;
        }
    }
    ASSERT_GE(shadowed, 850);
    ASSERT_LE(shadowed, 1150);
    /* Type and existence errors. */
    ASSERT_ERRNO(rollout_eval(prod, "m", &none, ROLLOUT_TYPE_BOOLEAN, &res), -EMEDIUMTYPE);
    ASSERT_EQ(res.error, ROLLOUT_ERROR_TYPE_MISMATCH);
    ASSERT_ERRNO(rollout_eval(prod, "nope", &none, ROLLOUT_TYPE_ANY, &res), -ENOENT);
    ASSERT_EQ(res.error, ROLLOUT_ERROR_FLAG_NOT_FOUND);
    ASSERT_EQ(res.reason, ROLLOUT_REASON_ERROR);
    rollout_snapshot_unref(prod);
    rollout_snapshot_unref(stg);
    rollout_snapshot_unref(dev);
}

static void test_kill_switch_wins(void)
{
    const char *json = "{\"key\":\"k\",\"rules\":[{\"attribute\":\"targetingKey\",\"op\":\"eq\","
                       "\"value\":\"vip\",\"variant\":\"candidate\"}],\"environments\":{"
                       "\"production\":{\"stage\":\"full\",\"kill\":true},\"staging\":{\"stage\":"
                       "\"full\"}}}";
    struct rollout_snapshot *prod = snap1("production", json, NULL);
    struct rollout_snapshot *stg = snap1("staging", json, NULL);
    struct rollout_ctx vip = ROLLOUT_CTX("vip", NULL, 0);
    struct rollout_result res;

    ASSERT_OK(rollout_eval(prod, "k", &vip, ROLLOUT_TYPE_BOOLEAN, &res));
    ASSERT_FALSE(res.value->b);
    ASSERT_TRUE(res.killed);
    ASSERT_EQ(res.reason, ROLLOUT_REASON_DISABLED);
    ASSERT_OK(rollout_eval(stg, "k", &vip, ROLLOUT_TYPE_BOOLEAN, &res));
    ASSERT_TRUE(res.value->b);
    ASSERT_EQ(res.reason, ROLLOUT_REASON_TARGETING_MATCH);
    rollout_snapshot_unref(prod);
    rollout_snapshot_unref(stg);
}

static void test_segments(void)
{
    const char *seg = "{\"key\":\"beta\",\"conditions\":[{\"attribute\":\"beta\",\"op\":\"eq\","
                      "\"value\":true},{\"attribute\":\"app\",\"op\":\"semver_gte\",\"value\":"
                      "\"2.0.0\"}]}";
    const char *json = "{\"key\":\"s\",\"rules\":[{\"op\":\"not_in_segment\",\"segment\":\"beta\","
                       "\"exclude\":true}],\"environments\":{\"production\":{\"stage\":\"full\"}}}";
    struct rollout_snapshot *s = snap1("production", json, seg);
    struct rollout_attr in[] = { ROLLOUT_ATTR_BOOL("beta", true),
                                 ROLLOUT_ATTR_STRING("app", "2.1.0") };
    struct rollout_attr old[] = { ROLLOUT_ATTR_BOOL("beta", true),
                                  ROLLOUT_ATTR_STRING("app", "1.9.0") };
    struct rollout_segment *bad = NULL;
    struct err e = ERR_INIT;
    const char *nested = "{\"key\":\"x\",\"conditions\":[{\"op\":\"in_segment\",\"segment\":"
                         "\"beta\"}]}";

    ASSERT_STREQ(variant_for(s, "s", &(struct rollout_ctx)ROLLOUT_CTX("u", in, 2)), "candidate");
    ASSERT_STREQ(variant_for(s, "s", &(struct rollout_ctx)ROLLOUT_CTX("u", old, 2)), "control");
    ASSERT_STREQ(variant_for(s, "s", &(struct rollout_ctx)ROLLOUT_CTX("u", NULL, 0)), "control");
    ASSERT_ERRNO(rollout_segment_parse(nested, strlen(nested), &bad, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "field 'conditions[0].op': segment tests are not allowed here");
    ASSERT_STREQ(e.field, "conditions[0].op");
    rollout_snapshot_unref(s);
}

static void test_stickiness_number(void)
{
    const char *json = "{\"key\":\"n\",\"stickiness\":\"account\",\"environments\":{"
                       "\"production\":{\"stage\":\"partial\",\"partial\":50}}}";
    struct rollout_snapshot *s = snap1("production", json, NULL);
    struct rollout_attr a[] = { ROLLOUT_ATTR_NUMBER("account", 12345) };
    struct rollout_result res;

    ASSERT_OK(rollout_eval(s, "n", &(struct rollout_ctx)ROLLOUT_CTX(NULL, a, 1), ROLLOUT_TYPE_ANY,
                           &res));
    ASSERT_EQ(res.bucket, rollout_bucket("n", "12345"));
    rollout_snapshot_unref(s);
}

/* ===== Contexts ===== */

static void test_ctx_parse(void)
{
    const char *json = "{\"targetingKey\":\"u-1\",\"plan\":\"pro\",\"age\":33,\"beta\":true,"
                       "\"tags\":[\"x\"],\"none\":null}";
    const char *body = "{\"context\":{\"targetingKey\":\"u-2\"}}";
    struct rollout_ctx ctx = ROLLOUT_CTX_INIT;
    struct err e = ERR_INIT;

    ASSERT_OK(rollout_ctx_parse(json, strlen(json), 0, &ctx, &e));
    ASSERT_STREQ(ctx.targeting_key, "u-1");
    ASSERT_EQ(ctx.n_attrs, 5);
    ASSERT_STREQ(ctx.attrs[0].name, "plan");
    ASSERT_STREQ(ctx.attrs[0].s, "pro");
    ASSERT_EQ(ctx.attrs[1].type, ROLLOUT_ATTR_NUMBER);
    ASSERT_EQ(ctx.attrs[1].n, 33);
    ASSERT_EQ(ctx.attrs[2].type, ROLLOUT_ATTR_BOOL);
    ASSERT_EQ(ctx.attrs[3].type, ROLLOUT_ATTR_OTHER);
    ASSERT_EQ(ctx.attrs[4].type, ROLLOUT_ATTR_NULL);
    rollout_ctx_release(&ctx);
    ASSERT_TRUE(ctx.owned == NULL);

    ASSERT_OK(rollout_ctx_parse(body, strlen(body), ROLLOUT_CTX_OFREP_BODY, &ctx, &e));
    ASSERT_STREQ(ctx.targeting_key, "u-2");
    ASSERT_EQ(ctx.n_attrs, 0);
    rollout_ctx_release(&ctx);
    ASSERT_OK(rollout_ctx_parse("{}", 2, ROLLOUT_CTX_OFREP_BODY, &ctx, &e));
    ASSERT_TRUE(ctx.targeting_key == NULL);
    rollout_ctx_release(&ctx);

    ASSERT_ERRNO(rollout_ctx_parse("{\"targetingKey\":1}", 18, 0, &ctx, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "field 'targetingKey': must be a string");
    ASSERT_STREQ(e.field, "targetingKey");
    ASSERT_ERRNO(rollout_ctx_parse("[1]", 3, 0, &ctx, &e), -EINVAL);
    ASSERT_STREQ(e.field, "");
    ASSERT_ERRNO(rollout_ctx_parse("{\"context\":3}", 13, ROLLOUT_CTX_OFREP_BODY, &ctx, &e),
                 -EINVAL);
    ASSERT_STREQ(e.field, "context");
    ASSERT_ERRNO(rollout_ctx_parse("{\"a\":", 5, 0, &ctx, &e), -EBADMSG);
    ASSERT_EQ(e.line, 1);
}

/* The fast path of rollout_ctx_parse() against the general parser: same return, same error
 * text, same context; and a few results spelled out. */
static void test_ctx_parse_fast_path(void)
{
    static const char *const docs[] = {
        "{\"context\":{\"targetingKey\":\"u-1\",\"plan\":\"pro\",\"n\":-0,\"r\":-0.0,\"b\":false}}",
        "{\"context\":{\"targetingKey\":\"a\\\"b\\\\c\\/d\\n\",\"s\":\"\\t\\b\\f\\r\"}}",
        " {\"context\" : { \"x\" : 123456789012345678 , \"y\" : 1.5e3 } } ",
        "{\"context\":{\"city\":\"Z\xc3\xbcrich\",\"e\":\"\xf0\x9f\x98\x80\"}}",
        "{\"context\":{}}",
        "{}",
        "{\"context\":null}",
        "{\"context\":{\"a\":1,\"a\":2}}",
        "{\"context\":{\"targetingKey\":\"a\",\"targetingKey\":\"a\"}}",
        "{\"context\":{\"a\":1},\"context\":{\"a\":1}}",
        "{\"context\":{\"a\":01}}",
        "{\"context\":{\"a\":1.}}",
        "{\"context\":{\"a\":\"\xc0\xaf\"}}",
        "{\"context\":{\"a\":\"\xed\xa0\x80\"}}",
        "{\"context\":{\"a\":\"\x01\"}}",
        "{\"context\":{\"a\":9223372036854775808}}",
        "{\"context\":{\"a\":1e999}}",
        "{\"context\":{\"a\":[1,{\"b\":1,\"b\":2}]}}",
        "{\"context\":{\"a\":1}} x",
        "{\"context\":{\"a\":1}",
        "{\"context\":{\"\":1}}",
        "{\"context\":{\"targetingKey\":7}}",
        "{\"context\":{\"a\":\"\\u0041\"}}",
        "{\"other\":1,\"context\":{\"a\":1}}",
        "[]",
        "{\"context\":{\"a\":tru}}",
        "{\"context\":{\"a\":\"x\\q\"}}",
    };
    struct rollout_ctx a = ROLLOUT_CTX_INIT, b = ROLLOUT_CTX_INIT;
    struct err ea = ERR_INIT, eb = ERR_INIT;

    for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
        for (unsigned flags = 0; flags <= ROLLOUT_CTX_OFREP_BODY; flags++) {
            int ra = rollout_ctx_parse(docs[i], strlen(docs[i]), flags, &a, &ea);
            int rb = rollout__ctx_parse_json(docs[i], strlen(docs[i]), flags, &b, &eb);

            ASSERT_EQ(ra, rb);
            if (ra < 0) {
                ASSERT_STREQ(ea.msg, eb.msg);
                continue;
            }
            ASSERT_TRUE((a.targeting_key == NULL) == (b.targeting_key == NULL));
            if (a.targeting_key)
                ASSERT_STREQ(a.targeting_key, b.targeting_key);
            ASSERT_EQ(a.n_attrs, b.n_attrs);
            for (size_t k = 0; k < a.n_attrs; k++) {
                ASSERT_STREQ(a.attrs[k].name, b.attrs[k].name);
                ASSERT_EQ(a.attrs[k].type, b.attrs[k].type);
                ASSERT_EQ(a.attrs[k].b, b.attrs[k].b);
                ASSERT_TRUE(memcmp(&a.attrs[k].n, &b.attrs[k].n, sizeof(double)) == 0);
                if (a.attrs[k].s)
                    ASSERT_STREQ(a.attrs[k].s, b.attrs[k].s);
                else
                    ASSERT_TRUE(b.attrs[k].s == NULL);
            }
            rollout_ctx_release(&a);
            rollout_ctx_release(&b);
        }
    }
    ASSERT_OK(rollout_ctx_parse(docs[1], strlen(docs[1]), ROLLOUT_CTX_OFREP_BODY, &a, &ea));
    ASSERT_STREQ(a.targeting_key, "a\"b\\c/d\n");
    ASSERT_STREQ(a.attrs[0].s, "\t\b\f\r");
    rollout_ctx_release(&a);
    ASSERT_OK(rollout_ctx_parse(docs[0], strlen(docs[0]), ROLLOUT_CTX_OFREP_BODY, &a, &ea));
    ASSERT_EQ(a.n_attrs, 4);
    ASSERT_TRUE(!signbit(a.attrs[1].n) && signbit(a.attrs[2].n)); /* -0 is an integer, -0.0 not */
    rollout_ctx_release(&a);
    ASSERT_ERRNO(rollout_ctx_parse(docs[7], strlen(docs[7]), ROLLOUT_CTX_OFREP_BODY, &a, &ea),
                 -EBADMSG);
    ASSERT_CONTAINS(ea.msg, "duplicate");
}

/* ===== OFREP and counters ===== */

static void test_ofrep_and_counters(void)
{
    struct rollout_snapshot *s = snap1("production", staged, NULL);
    struct rollout_attr a[] = { ROLLOUT_ATTR_STRING("account", "acc-3") };
    struct rollout_ctx ctx = ROLLOUT_CTX(NULL, a, 1);
    struct metrics_registry *reg = metrics_registry_new();
    static const char *const labels[] = { "flag", "variant", NULL };
    struct metrics_family *fam;
    struct rollout_result res;
    struct buf out = BUF_INIT(0);
    int status = 0;

    ASSERT_OK(rollout_eval(s, "m", &ctx, ROLLOUT_TYPE_ANY, &res));
    ASSERT_OK(rollout_ofrep_write_result("m", &res, &out, &status));
    ASSERT_EQ(status, 200);
    ASSERT_CONTAINS(buf_str(&out), "{\"key\":\"m\",\"value\":\"v1\",\"reason\":\"SPLIT\","
                                   "\"variant\":\"control\",\"metadata\":{\"version\":0,"
                                   "\"stage\":\"shadow\",\"shadow\":");
    buf_reset(&out);
    (void)rollout_eval(s, "missing", &ctx, ROLLOUT_TYPE_ANY, &res);
    ASSERT_OK(rollout_ofrep_write_result("missing", &res, &out, &status));
    ASSERT_EQ(status, 404);
    ASSERT_STREQ(buf_str(&out), "{\"key\":\"missing\",\"errorCode\":\"FLAG_NOT_FOUND\","
                                "\"errorDetails\":\"flag 'missing' not found\"}");
    buf_reset(&out);
    (void)rollout_eval(s, "m", &(struct rollout_ctx)ROLLOUT_CTX_INIT, ROLLOUT_TYPE_ANY, &res);
    ASSERT_OK(rollout_ofrep_write_result("m", &res, &out, &status));
    ASSERT_EQ(status, 400);
    ASSERT_CONTAINS(buf_str(&out), "\"errorCode\":\"TARGETING_KEY_MISSING\"");

    /* 1 + 10 control evaluations so far/now; errors are not counted. */
    for (int i = 0; i < 10; i++)
        ASSERT_OK(rollout_eval(s, "m", &ctx, ROLLOUT_TYPE_ANY, &res));
    ASSERT_EQ(rollout_snapshot_eval_count(s, "m", "control"), 11);
    ASSERT_EQ(rollout_snapshot_eval_count(s, "m", "candidate"), 0);
    ASSERT_OK(metrics_family_register(reg, METRICS_COUNTER, "rollout_evaluations_total", "h",
                                      labels, NULL, 0, &fam));
    ASSERT_OK(rollout_snapshot_export_counts(s, fam));
    ASSERT_OK(rollout_snapshot_export_counts(s, fam)); /* nothing new: no double counting */
    buf_reset(&out);
    ASSERT_OK(metrics_write_text(reg, &out));
    ASSERT_CONTAINS(buf_str(&out), "rollout_evaluations_total{flag=\"m\",variant=\"control\"} 11");
    metrics_registry_free(reg);
    buf_release(&out);
    rollout_snapshot_unref(s);
}

static void test_shadow_metrics(void)
{
    struct metrics_registry *reg = metrics_registry_new();
    struct rollout_shadow_metrics *m = NULL, *again = NULL;
    struct rollout_shadow *sh;
    struct buf out = BUF_INIT(0);

    ASSERT_OK(rollout_shadow_metrics_new(reg, &m));
    ASSERT_ERRNO(rollout_shadow_metrics_new(reg, &again), -EEXIST);
    sh = rollout_shadow_get(m, "model-v2");
    ASSERT_TRUE(sh == rollout_shadow_get(m, "model-v2"));
    rollout_shadow_record(sh, true, 2000, 5000000);
    rollout_shadow_record(sh, false, 3000, 4000);
    rollout_shadow_record(sh, true, 1000, 1000);
    ASSERT_OK(metrics_write_text(reg, &out));
    ASSERT_CONTAINS(buf_str(&out),
                    "rollout_shadow_comparisons_total{flag=\"model-v2\",outcome=\"agree\"} 2");
    ASSERT_CONTAINS(buf_str(&out),
                    "rollout_shadow_comparisons_total{flag=\"model-v2\",outcome=\"disagree\"} 1");
    ASSERT_CONTAINS(
            buf_str(&out),
            "rollout_shadow_duration_seconds_count{flag=\"model-v2\",path=\"candidate\"} 3");
    ASSERT_CONTAINS(buf_str(&out), "rollout_shadow_duration_seconds_bucket{flag=\"model-v2\","
                                   "path=\"candidate\",le=\"0.001\"} 2");
    rollout_shadow_metrics_free(m);
    metrics_registry_free(reg);
    buf_release(&out);
}

T_MAIN(T_CASE(test_bucket_vectors), T_CASE(test_streaming_hash_matches_oneshot),
       T_CASE(test_nesting_100k), T_CASE(test_fine_percentages),
       T_CASE(test_parse_errors_name_the_field), T_CASE(test_syntax_error_position),
       T_CASE(test_serialize_round_trip), T_CASE(test_defaults), T_CASE(test_snapshot_document),
       T_CASE(test_operators), T_CASE(test_regex_engine), T_CASE(test_semver_order),
       T_CASE(test_stages_and_shadow), T_CASE(test_kill_switch_wins), T_CASE(test_segments),
       T_CASE(test_stickiness_number), T_CASE(test_ctx_parse), T_CASE(test_ctx_parse_fast_path),
       T_CASE(test_ofrep_and_counters), T_CASE(test_shadow_metrics))
