/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/signal.h"
#include "core/str.h"
#include "core/strv.h"
#include "t.h"

static void test_buf_bounded(void)
{
    struct buf b = BUF_INIT(8);

    ASSERT_OK(buf_puts(&b, "abcd"));
    ASSERT_OK(buf_appendf(&b, "%d", 123));
    ASSERT_STREQ(buf_str(&b), "abcd123");
    ASSERT_ERRNO(buf_puts(&b, "xy"), -ENOBUFS);
    ASSERT_STREQ(buf_str(&b), "abcd123"); /* unchanged on failure */
    buf_consume(&b, 4);
    ASSERT_STREQ(buf_str(&b), "123");
    buf_release(&b);
    ASSERT_STREQ(buf_str(&b), "");
}

static void test_parse_numbers(void)
{
    uint64_t v;
    int64_t i;

    ASSERT_OK(parse_u64("18446744073709551615", &v));
    ASSERT_TRUE(v == UINT64_MAX);
    ASSERT_ERRNO(parse_u64("18446744073709551616", &v), -ERANGE);
    ASSERT_ERRNO(parse_u64("-1", &v), -EINVAL);
    ASSERT_ERRNO(parse_u64("12x", &v), -EINVAL);
    ASSERT_ERRNO(parse_u64("", &v), -EINVAL);
    ASSERT_OK(parse_i64("-42", &i));
    ASSERT_EQ(i, -42);
    ASSERT_ERRNO(parse_uint_range("70000", 1, 65535, &v), -ERANGE);
}

static void test_parse_duration(void)
{
    uint64_t v;

    ASSERT_OK(parse_duration_usec("250ms", &v));
    ASSERT_EQ(v, 250000);
    ASSERT_OK(parse_duration_usec("5", &v));
    ASSERT_EQ(v, 5000000);
    ASSERT_OK(parse_duration_usec("1m30s", &v));
    ASSERT_EQ(v, 90000000);
    ASSERT_OK(parse_duration_usec("100us", &v));
    ASSERT_EQ(v, 100);
    ASSERT_ERRNO(parse_duration_usec("5x", &v), -EINVAL);
    ASSERT_ERRNO(parse_duration_usec("1m30", &v), -EINVAL);
    ASSERT_ERRNO(parse_duration_usec("ms", &v), -EINVAL);
}

static void test_parse_size_mode_bool(void)
{
    uint64_t v;
    unsigned m;
    bool b;

    ASSERT_OK(parse_size("64MiB", &v));
    ASSERT_EQ(v, 64 << 20);
    ASSERT_OK(parse_size("512k", &v));
    ASSERT_EQ(v, 512 << 10);
    ASSERT_ERRNO(parse_size("12 parsecs", &v), -EINVAL);
    ASSERT_OK(parse_mode("0600", &m));
    ASSERT_EQ(m, 0600);
    ASSERT_ERRNO(parse_mode("0800", &m), -EINVAL);
    ASSERT_OK(parse_bool("yes", &b));
    ASSERT_TRUE(b);
    ASSERT_ERRNO(parse_bool("maybe", &b), -EINVAL);
}

static void test_edit_distance(void)
{
    ASSERT_EQ(str_edit_distance("status", "stauts"), 1);
    ASSERT_EQ(str_edit_distance("down", "up"), 4);
    ASSERT_EQ(str_edit_distance("", "abc"), 3);
}

static void test_file_roundtrip(void)
{
    char dir[] = "/tmp/t_core.XXXXXX";
    char path[256];
    struct buf b = BUF_INIT(0);

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    (void)snprintf(path, sizeof path, "%s/a/b/c", dir);
    ASSERT_OK(mkdir_p(path, 0755));
    (void)snprintf(path, sizeof path, "%s/a/f", dir);
    ASSERT_OK(file_write_atomic(path, "line1\nline2\nline3\n", 18, 0600));
    ASSERT_OK(file_read_all(path, &b));
    ASSERT_STREQ(buf_str(&b), "line1\nline2\nline3\n");
    buf_reset(&b);
    ASSERT_OK(file_read_tail(path, 8, &b));
    ASSERT_STREQ(buf_str(&b), "line3\n");
    buf_release(&b);
    ASSERT_TRUE(file_is_executable("sh"));
    ASSERT_FALSE(file_is_executable("/nonexistent/binary"));
}

static void test_err_format(void)
{
    struct err e = ERR_INIT;
    char out[512];

    err_set_file(&e, "stack.yml");
    ASSERT_EQ(err_set(&e, -EINVAL, 12, 5, "unknown field '%s'", "prot"), -EINVAL);
    ASSERT_STREQ(err_format(&e, out, sizeof out), "stack.yml:12:5: unknown field 'prot'");
    ASSERT_STREQ(e.field, "");

    /* The field is data next to the message, and a later error does not inherit it. */
    err_set_field(&e, "rules[2].op");
    ASSERT_STREQ(e.field, "rules[2].op");
    ASSERT_STREQ(err_format(&e, out, sizeof out), "stack.yml:12:5: unknown field 'prot'");
    (void)err_set(&e, -EIO, 0, 0, "other");
    ASSERT_STREQ(e.field, "");
    err_set_field(&e, "x");
    err_set_field(&e, NULL);
    ASSERT_STREQ(e.field, "");
    err_set_field(NULL, "x");
}

static void test_strv(void)
{
    char a[] = "a", b[] = "bc";
    char *v[] = { a, b, NULL };
    char **c = strv_copy(v);

    ASSERT_EQ(strv_length(c), 2);
    ASSERT_TRUE(strv_contains(c, "bc"));
    ASSERT_FALSE(strv_contains(c, "b"));
    ASSERT_FALSE(strv_contains(NULL, "a"));
    ASSERT_STREQ(c[1], "bc");
    ASSERT_TRUE(c[1] != v[1]);
    ASSERT_TRUE(strv_free(c) == NULL);
    ASSERT_EQ(strv_length(NULL), 0);
    ASSERT_TRUE(strv_copy(NULL) == NULL);
}

/* RFC 4648 section 10 test vectors. */
static void test_base64(void)
{
    static const char *const vec[][2] = {
        { "", "" },
        { "f", "Zg==" },
        { "fo", "Zm8=" },
        { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" },
        { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
        { "/service/ultrathink/leader", "L3NlcnZpY2UvdWx0cmF0aGluay9sZWFkZXI=" },
    };
    struct buf b = BUF_INIT(0), small = BUF_INIT(3);

    for (size_t i = 0; i < ARRAY_SIZE(vec); i++) {
        buf_reset(&b);
        ASSERT_OK(buf_append_base64(&b, vec[i][0], strlen(vec[i][0])));
        ASSERT_STREQ(buf_str(&b), vec[i][1]);
    }
    ASSERT_ERRNO(buf_append_base64(&small, "foob", 4), -ENOBUFS);
    /* and back: every vector, padding optional; anything else refused, b left as it was */
    for (size_t i = 0; i < ARRAY_SIZE(vec); i++) {
        buf_reset(&b);
        ASSERT_OK(buf_append_unbase64(&b, vec[i][1]));
        ASSERT_EQ(b.len, strlen(vec[i][0]));
        ASSERT_STREQ(buf_str(&b), vec[i][0]);
    }
    buf_reset(&b);
    ASSERT_OK(buf_append_unbase64(&b, "Zm9vYg"));
    ASSERT_STREQ(buf_str(&b), "foob");
    ASSERT_ERRNO(buf_append_unbase64(&b, "Zm9v!g=="), -EINVAL);
    ASSERT_ERRNO(buf_append_unbase64(&b, "Zg=Zg"), -EINVAL);
    ASSERT_ERRNO(buf_append_unbase64(&b, "Zg==="), -EINVAL);
    ASSERT_STREQ(buf_str(&b), "foob");
    buf_release(&b);
    buf_release(&small);
}

/* The stop signals a configuration may name, both ways; nothing else. */
static void test_signal_names(void)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1, SIGUSR2 };
    int sig = -1;

    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        const char *name = signal_to_string(sigs[i]);

        ASSERT_TRUE(name != NULL);
        ASSERT_CONTAINS(SIGNAL_STOP_NAMES, name);
        ASSERT_OK(signal_from_string(name, &sig));
        ASSERT_EQ(sig, sigs[i]);
    }
    ASSERT_STREQ(signal_to_string(SIGTERM), "SIGTERM");
    ASSERT_TRUE(signal_to_string(SIGSEGV) == NULL);
    ASSERT_TRUE(signal_to_string(0) == NULL);
    sig = -1;
    ASSERT_ERRNO(signal_from_string("TERM", &sig), -EINVAL);
    ASSERT_ERRNO(signal_from_string("sigterm", &sig), -EINVAL);
    ASSERT_ERRNO(signal_from_string("SIGSEGV", &sig), -EINVAL);
    ASSERT_ERRNO(signal_from_string("", &sig), -EINVAL);
    ASSERT_EQ(sig, -1); /* untouched on error */
}

T_MAIN(T_CASE(test_base64), T_CASE(test_strv), T_CASE(test_buf_bounded), T_CASE(test_parse_numbers),
       T_CASE(test_parse_duration), T_CASE(test_parse_size_mode_bool), T_CASE(test_edit_distance),
       T_CASE(test_file_roundtrip), T_CASE(test_err_format), T_CASE(test_signal_names))
