/* SPDX-License-Identifier: MIT */
/* test_cfg.c - the YAML document tree (shapes, positions, rejections and limits), the typed
 * getters (each type's value and error text with file:line:col) and option tables (defaults,
 * required and unknown keys, limits, custom parsers). */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "core/strv.h"
#include "t.h"

static struct cfg_node *parse_ok(const char *text)
{
    struct cfg_node *root = NULL;
    struct err e = ERR_INIT;

    if (cfg_parse("t.yml", text, strlen(text), &root, &e) < 0)
        T_FAIL("parse failed: %u:%u %s", e.line, e.col, e.msg);
    return root;
}

static struct err parse_err(const char *text, size_t len)
{
    struct cfg_node *root = NULL;
    struct err e = ERR_INIT;
    int r = cfg_parse("t.yml", text, len, &root, &e);

    if (r != -EINVAL)
        T_FAIL("expected -EINVAL, got %d", r);
    if (root)
        T_FAIL("root returned on error");
    return e;
}

#define EXPECT_ERR(text_, line_, col_, frag_)             \
    do {                                                  \
        struct err e__ = parse_err(text_, strlen(text_)); \
        ASSERT_STREQ(e__.file, "t.yml");                  \
        ASSERT_CONTAINS(e__.msg, frag_);                  \
        ASSERT_EQ(e__.line, line_);                       \
        ASSERT_EQ(e__.col, col_);                         \
    } while (0)

static void test_tree(void)
{
    struct cfg_node *root = parse_ok("# comment\n"
                                     "b: 1\n"
                                     "a:\n"
                                     "  - x\n"
                                     "  - \"quoted\"\n"
                                     "  - {k: v}\n"
                                     "c: 'no'\n"
                                     "d:\n"
                                     "e: 0600\n");
    struct cfg_node *a, *m;

    ASSERT_EQ(root->type, CFG_NODE_MAP);
    ASSERT_EQ(root->line, 2);
    ASSERT_EQ(root->col, 1);
    ASSERT_EQ(root->n, 5);
    /* file order kept */
    ASSERT_STREQ(root->keys[0]->value, "b");
    ASSERT_STREQ(root->keys[1]->value, "a");
    ASSERT_STREQ(root->keys[4]->value, "e");
    ASSERT_EQ(root->keys[1]->line, 3);
    ASSERT_STREQ(cfg_map_get(root, "b")->value, "1");
    ASSERT_EQ(cfg_map_get(root, "b")->col, 4);
    ASSERT_TRUE(cfg_map_get(root, "zz") == NULL);
    ASSERT_EQ(cfg_map_key(root, "c")->line, 7);

    a = cfg_map_get(root, "a");
    ASSERT_EQ(a->type, CFG_NODE_SEQ);
    ASSERT_EQ(a->n, 3);
    ASSERT_EQ(a->line, 4);
    ASSERT_EQ(a->col, 3);
    ASSERT_STREQ(a->items[0]->value, "x");
    ASSERT_TRUE(a->items[0]->plain);
    ASSERT_STREQ(a->items[1]->value, "quoted");
    ASSERT_FALSE(a->items[1]->plain);
    ASSERT_EQ(a->items[1]->line, 5);
    ASSERT_EQ(a->items[1]->col, 5);
    m = a->items[2];
    ASSERT_EQ(m->type, CFG_NODE_MAP);
    ASSERT_STREQ(cfg_map_get(m, "k")->value, "v");
    ASSERT_EQ(cfg_map_get(m, "k")->col, 9);
    ASSERT_TRUE(cfg_map_get(a, "k") == NULL); /* not a map */

    ASSERT_STREQ(cfg_map_get(root, "c")->value, "no");
    ASSERT_FALSE(cfg_node_is_null(cfg_map_get(root, "c")));
    ASSERT_TRUE(cfg_node_is_null(cfg_map_get(root, "d")));
    ASSERT_STREQ(cfg_map_get(root, "e")->value, "0600"); /* no type resolution */
    ASSERT_EQ(cfg_map_get(root, "e")->len, 4);
    ASSERT_STREQ(cfg_node_type_to_string(CFG_NODE_SEQ), "list");
    ASSERT_TRUE(cfg_node_free(root) == NULL);
    ASSERT_TRUE(cfg_node_free(NULL) == NULL);
}

static void test_empty_and_scalar_documents(void)
{
    struct cfg_node *root = (struct cfg_node *)1;
    struct err e = ERR_INIT;

    ASSERT_OK(cfg_parse("t.yml", "", 0, &root, &e));
    ASSERT_TRUE(root == NULL);
    root = (struct cfg_node *)1;
    ASSERT_OK(cfg_parse("t.yml", "# only a comment\n", 17, &root, &e));
    ASSERT_TRUE(root == NULL);
    root = parse_ok("just text");
    ASSERT_EQ(root->type, CFG_NODE_SCALAR);
    ASSERT_STREQ(root->value, "just text");
    cfg_node_free(root);
    /* the input need not be NUL-terminated */
    ASSERT_OK(cfg_parse("t.yml", "a: bXXXX", 4, &root, &e));
    ASSERT_STREQ(cfg_map_get(root, "a")->value, "b");
    cfg_node_free(root);
}

static void test_syntax_errors(void)
{
    EXPECT_ERR("a: [1, 2\n", 2, 1, "YAML syntax error");
    EXPECT_ERR("a: b\n c: d\n", 2, 3, "YAML syntax error");
    EXPECT_ERR("a:\n\t- x\n", 2, 1, "YAML syntax error");
    EXPECT_ERR("a: \"unterminated\n", 2, 1, "YAML syntax error");
}

static void test_rejections(void)
{
    EXPECT_ERR("a: &x 1\nb: *x\n", 1, 4, "YAML anchors are not supported (anchor '&x')");
    EXPECT_ERR("a: &x [1]\n", 1, 4, "anchors are not supported");
    EXPECT_ERR("b: *x\n", 1, 4, "YAML aliases are not supported");
    EXPECT_ERR("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a' (lines 1 and 3)");
    EXPECT_ERR("top:\n  x: 1\n  y: 2\n  x: 3\n  y: 4\n", 4, 3, "duplicate key 'x' (lines 2 and 4)");
    EXPECT_ERR("? [a]\n: 1\n", 1, 3, "map keys must be strings, not a list");
    EXPECT_ERR("a: 1\n---\nb: 2\n", 2, 1, "multiple YAML documents");
    EXPECT_ERR("a: \"x\\0y\"\n", 1, 4, "NUL byte");
}

static void test_duplicate_keys_many(void)
{
    struct buf b = BUF_INIT(0);
    struct err e;

    /* beyond the quadratic range: still found, with both lines */
    for (unsigned i = 0; i < 5000; i++)
        ASSERT_OK(buf_appendf(&b, "k%u: %u\n", i, i));
    ASSERT_OK(buf_appendf(&b, "k4321: dup\n"));
    e = parse_err(b.data, b.len);
    ASSERT_CONTAINS(e.msg, "duplicate key 'k4321' (lines 4322 and 5001)");
    ASSERT_EQ(e.line, 5001);
    buf_release(&b);
}

static void test_limits(void)
{
    struct buf b = BUF_INIT(0);
    struct cfg_node *root = NULL;
    struct err e;

    /* depth 64 is fine, 65 is not */
    for (unsigned i = 0; i < CFG_MAX_DEPTH; i++)
        ASSERT_OK(buf_puts(&b, "["));
    for (unsigned i = 0; i < CFG_MAX_DEPTH; i++)
        ASSERT_OK(buf_puts(&b, "]"));
    root = parse_ok(b.data);
    cfg_node_free(root);
    buf_reset(&b);
    for (unsigned i = 0; i < CFG_MAX_DEPTH + 1; i++)
        ASSERT_OK(buf_puts(&b, "["));
    e = parse_err(b.data, b.len);
    ASSERT_CONTAINS(e.msg, "nesting deeper than 64 levels");
    ASSERT_EQ(e.line, 1);
    ASSERT_EQ(e.col, 65);
    buf_reset(&b);

    /* size */
    while (b.len <= CFG_MAX_BYTES)
        ASSERT_OK(buf_puts(&b, "# padding padding padding padding padding padding padding\n"));
    e = parse_err(b.data, b.len);
    ASSERT_CONTAINS(e.msg, "too large");
    buf_release(&b);
}

static void test_load_file(void)
{
    char path[] = "/tmp/ut-cfg-XXXXXX";
    int fd = mkstemp(path);
    struct cfg_node *root = NULL;
    struct err e = ERR_INIT;
    const char *text = "x:\n  y: [1, 2]\n  y: 3\n";

    ASSERT_GE(fd, 0);
    ASSERT_OK(fd_write_all(fd, text, strlen(text)));
    fd_close(fd);
    ASSERT_ERRNO(cfg_load_file(path, &root, &e), -EINVAL);
    ASSERT_STREQ(e.file, path);
    ASSERT_EQ(e.line, 3);
    ASSERT_EQ(e.col, 3);
    ASSERT_OK(file_write_atomic(path, "x: 1\n", 5, 0600));
    ASSERT_OK(cfg_load_file(path, &root, &e));
    ASSERT_STREQ(cfg_map_get(root, "x")->value, "1");
    cfg_node_free(root);
    ASSERT_OK(unlink(path));
    e = (struct err)ERR_INIT;
    ASSERT_ERRNO(cfg_load_file(path, &root, &e), -ENOENT);
    ASSERT_STREQ(e.file, path);
}

/* ===== Typed getters ===== */

/* One "a: VALUE" document and a context that reports into e. */
struct doc {
    struct cfg_node *root;
    const struct cfg_node *a; /* the value of key a */
    struct err e;
    struct cfg_ctx c;
};

static void doc_open(struct doc *d, const char *text)
{
    *d = (struct doc){ .e = ERR_INIT };
    d->root = parse_ok(text);
    d->a = cfg_map_get(d->root, "a");
    d->c = (struct cfg_ctx){ .file = "t.yml", .reterr = &d->e };
    ASSERT_TRUE(d->a != NULL);
}

static void doc_close(struct doc *d)
{
    d->root = cfg_node_free(d->root);
}

/* The last error as "file:line:col: message". */
static const char *doc_err(const struct doc *d)
{
    static char msg[600];

    ASSERT_EQ(d->e.code, -EINVAL);
    return err_format(&d->e, msg, sizeof msg);
}

/* Runs getter call_ on "a: text_" (in the caller's struct doc d) and expects the error want_,
 * with its position. */
#define EXPECT_GET_ERR(text_, call_, want_) \
    do {                                    \
        doc_open(&d, text_);                \
        ASSERT_ERRNO(call_, -EINVAL);       \
        ASSERT_STREQ(doc_err(&d), want_);   \
        doc_close(&d);                      \
    } while (0)

static int no_dollar(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    if (strchr(n->value, '$'))
        return cfg_error(c, n, "%s: no references here ('%s')", path, n->value);
    return 0;
}

static void test_get_strings(void)
{
    struct doc d;
    char *s = NULL;

    doc_open(&d, "a: hello\n");
    ASSERT_OK(cfg_get_str(&d.c, d.a, "a", 0, no_dollar, &s));
    ASSERT_STREQ(s, "hello");
    free(s);
    doc_close(&d);
    doc_open(&d, "a: ''\n");
    ASSERT_OK(cfg_get_str(&d.c, d.a, "a", CFG_F_EMPTY_OK, NULL, &s));
    ASSERT_STREQ(s, "");
    free(s);
    doc_close(&d);

    s = NULL;
    EXPECT_GET_ERR("a: ''\n", cfg_get_str(&d.c, d.a, "a", 0, NULL, &s),
                   "t.yml:1:4: a: must not be empty");
    EXPECT_GET_ERR("a: [x]\n", cfg_get_str(&d.c, d.a, "a", 0, NULL, &s),
                   "t.yml:1:4: a: expected a string, got a list");
    EXPECT_GET_ERR("a: {x: 1}\n", cfg_get_str(&d.c, d.a, "a", 0, NULL, &s),
                   "t.yml:1:4: a: expected a string, got a map");
    EXPECT_GET_ERR("b: 1\na:\n", cfg_get_str(&d.c, d.a, "a", CFG_F_EMPTY_OK, NULL, &s),
                   "t.yml:2:3: a: expected a string, got nothing (null)");
    EXPECT_GET_ERR("a: x${y}\n", cfg_get_str(&d.c, d.a, "a", 0, no_dollar, &s),
                   "t.yml:1:4: a: no references here ('x${y}')");
    ASSERT_TRUE(s == NULL); /* written on success only */

    doc_open(&d, "a: /srv/x\n");
    ASSERT_OK(cfg_get_abs_path(&d.c, d.a, "a", 0, no_dollar, &s));
    ASSERT_STREQ(s, "/srv/x");
    free(s);
    doc_close(&d);
    s = NULL;
    EXPECT_GET_ERR("a: rel/x\n", cfg_get_abs_path(&d.c, d.a, "a", 0, no_dollar, &s),
                   "t.yml:1:4: a: 'rel/x' is not an absolute path");
    /* absolute first, then the validator */
    EXPECT_GET_ERR("a: $x\n", cfg_get_abs_path(&d.c, d.a, "a", 0, no_dollar, &s),
                   "t.yml:1:4: a: '$x' is not an absolute path");
    EXPECT_GET_ERR("a: /$x\n", cfg_get_abs_path(&d.c, d.a, "a", 0, no_dollar, &s),
                   "t.yml:1:4: a: no references here ('/$x')");
    ASSERT_TRUE(s == NULL);
}

static void test_get_numbers(void)
{
    struct doc d;
    uint64_t u = 0;
    bool b = false;
    unsigned mode = 0;

    doc_open(&d, "a: yes\n");
    ASSERT_OK(cfg_get_bool(&d.c, d.a, "a", &b));
    ASSERT_TRUE(b);
    doc_close(&d);
    EXPECT_GET_ERR("a: maybe\n", cfg_get_bool(&d.c, d.a, "a", &b),
                   "t.yml:1:4: a: invalid boolean 'maybe' (true or false)");

    doc_open(&d, "a: 10\n");
    ASSERT_OK(cfg_get_uint(&d.c, d.a, "a", 1, 10, &u));
    ASSERT_EQ(u, 10);
    doc_close(&d);
    EXPECT_GET_ERR("a: 11\n", cfg_get_uint(&d.c, d.a, "a", 1, 10, &u),
                   "t.yml:1:4: a: 11 is out of range (1..10)");
    EXPECT_GET_ERR("a: 0\n", cfg_get_uint(&d.c, d.a, "a", 1, 10, &u),
                   "t.yml:1:4: a: 0 is out of range (1..10)");
    EXPECT_GET_ERR("a: 99999999999999999999999\n", cfg_get_uint(&d.c, d.a, "a", 1, 10, &u),
                   "t.yml:1:4: a: 99999999999999999999999 is out of range (1..10)");
    EXPECT_GET_ERR("a: -1\n", cfg_get_uint(&d.c, d.a, "a", 1, 10, &u),
                   "t.yml:1:4: a: invalid number '-1' (an integer from 1 to 10)");
    ASSERT_EQ(u, 10); /* untouched by the failures */

    doc_open(&d, "a: 1m30s\n");
    ASSERT_OK(cfg_get_duration(&d.c, d.a, "a", 50 * USEC_PER_MSEC, &u));
    ASSERT_EQ(u, 90 * USEC_PER_SEC);
    doc_close(&d);
    EXPECT_GET_ERR("a: soon\n", cfg_get_duration(&d.c, d.a, "a", 0, &u),
                   "t.yml:1:4: a: invalid duration 'soon' (e.g. 500ms, 2s, 1m30s)");
    EXPECT_GET_ERR("a: 10ms\n", cfg_get_duration(&d.c, d.a, "a", 50 * USEC_PER_MSEC, &u),
                   "t.yml:1:4: a: duration '10ms' is below the minimum of 50ms");

    doc_open(&d, "a: 10MiB\n");
    ASSERT_OK(cfg_get_size(&d.c, d.a, "a", 1024, &u));
    ASSERT_EQ(u, 10u << 20);
    doc_close(&d);
    EXPECT_GET_ERR("a: 10XB\n", cfg_get_size(&d.c, d.a, "a", 0, &u),
                   "t.yml:1:4: a: invalid size '10XB' (e.g. 10MiB)");
    EXPECT_GET_ERR("a: 512\n", cfg_get_size(&d.c, d.a, "a", 1024, &u),
                   "t.yml:1:4: a: invalid size '512' (at least 1KiB, e.g. 10MiB)");
    EXPECT_GET_ERR("a: 1k\n", cfg_get_size(&d.c, d.a, "a", 3u << 20, &u),
                   "t.yml:1:4: a: invalid size '1k' (at least 3MiB, e.g. 10MiB)");

    doc_open(&d, "a: '0600'\n");
    ASSERT_OK(cfg_get_mode(&d.c, d.a, "a", &mode));
    ASSERT_EQ(mode, 0600);
    doc_close(&d);
    EXPECT_GET_ERR("a: '0999'\n", cfg_get_mode(&d.c, d.a, "a", &mode),
                   "t.yml:1:4: a: invalid mode '0999' (an octal string such as \"0600\")");
}

static void test_get_named(void)
{
    static const char *const policies[] = { "no", "on-failure", "always", NULL };
    static const char *const one[] = { "etcd", NULL };
    struct doc d;
    int i = -1, sig = 0;
    uint16_t port = 0;

    doc_open(&d, "a: always\n");
    ASSERT_OK(cfg_get_enum(&d.c, d.a, "a", "restart policy", policies, &i));
    ASSERT_EQ(i, 2);
    doc_close(&d);
    /* a name YAML 1.1 reads as a boolean is shown quoted, as it must be written */
    EXPECT_GET_ERR("a: sometimes\n", cfg_get_enum(&d.c, d.a, "a", "restart policy", policies, &i),
                   "t.yml:1:4: a: unknown restart policy 'sometimes' (\"no\", on-failure or "
                   "always)");
    EXPECT_GET_ERR("a: zk\n", cfg_get_enum(&d.c, d.a, "a", "lock type", one, &i),
                   "t.yml:1:4: a: unknown lock type 'zk' (etcd)");
    ASSERT_EQ(i, 2);

    doc_open(&d, "a: SIGINT\n");
    ASSERT_OK(cfg_get_signal(&d.c, d.a, "a", &sig));
    ASSERT_EQ(sig, SIGINT);
    doc_close(&d);
    EXPECT_GET_ERR("a: TERM\n", cfg_get_signal(&d.c, d.a, "a", &sig),
                   "t.yml:1:4: a: unknown signal 'TERM' (SIGTERM, SIGINT, SIGQUIT, SIGHUP, "
                   "SIGKILL, SIGUSR1 or SIGUSR2)");

    doc_open(&d, "a: 65535\n");
    ASSERT_OK(cfg_get_port(&d.c, d.a, "a", &port));
    ASSERT_EQ(port, 65535);
    doc_close(&d);
    EXPECT_GET_ERR("a: 0\n", cfg_get_port(&d.c, d.a, "a", &port),
                   "t.yml:1:4: a: invalid port '0' (1-65535)");
    EXPECT_GET_ERR("a: 70000\n", cfg_get_port(&d.c, d.a, "a", &port),
                   "t.yml:1:4: a: invalid port '70000' (1-65535)");
}

static void test_get_strv(void)
{
    struct doc d;
    char **v = NULL;

    doc_open(&d, "a: [x, '', \"y z\"]\n");
    ASSERT_OK(cfg_get_strv(&d.c, d.a, "a", CFG_F_EMPTY_OK, NULL, &v));
    ASSERT_EQ(strv_length(v), 3);
    ASSERT_STREQ(v[1], "");
    ASSERT_STREQ(v[2], "y z");
    v = strv_free(v);
    doc_close(&d);
    doc_open(&d, "a: []\n");
    ASSERT_OK(cfg_get_strv(&d.c, d.a, "a", 0, NULL, &v));
    ASSERT_TRUE(v != NULL && v[0] == NULL);
    v = strv_free(v);
    doc_close(&d);

    EXPECT_GET_ERR("a: []\n", cfg_get_strv(&d.c, d.a, "a", CFG_F_NONEMPTY, NULL, &v),
                   "t.yml:1:4: a: must not be an empty list");
    EXPECT_GET_ERR("a: x\n", cfg_get_strv(&d.c, d.a, "a", 0, NULL, &v),
                   "t.yml:1:4: a: expected a list, got a string");
    /* items are named by index, at their own position */
    EXPECT_GET_ERR("a: [x, '']\n", cfg_get_strv(&d.c, d.a, "a", 0, NULL, &v),
                   "t.yml:1:8: a[1]: must not be empty");
    EXPECT_GET_ERR("a:\n  - x\n  - [y]\n", cfg_get_strv(&d.c, d.a, "a", 0, NULL, &v),
                   "t.yml:3:5: a[1]: expected a string, got a list");
    EXPECT_GET_ERR("a: [x, $y]\n", cfg_get_strv(&d.c, d.a, "a", 0, no_dollar, &v),
                   "t.yml:1:8: a[1]: no references here ('$y')");
    ASSERT_TRUE(v == NULL);
}

static void test_errors_and_paths(void)
{
    struct err e = ERR_INIT;
    struct cfg_ctx c = { .file = "f.yml", .reterr = &e };
    struct cfg_node *root = parse_ok("services:\n  pg1:\n    helthcheck: 1\n    xyzzy: 2\n");
    const struct cfg_node *svc = cfg_map_get(cfg_map_get(root, "services"), "pg1");
    static const char *const keys[] = { "command", "healthcheck", "user", NULL };
    char path[CFG_PATH_MAX], msg[600], longkey[300];

    ASSERT_STREQ(cfg_path_join(path, "", "a"), "a");
    ASSERT_STREQ(cfg_path_join(path, "a.b", "c"), "a.b.c");
    ASSERT_STREQ(cfg_path_index(path, "a.b", 3), "a.b[3]");
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    cfg_path_join(path, "a", longkey);
    ASSERT_EQ(strlen(path), CFG_PATH_MAX - 1);
    ASSERT_TRUE(str_endswith(path, "..."));

    ASSERT_ERRNO(cfg_error(&c, NULL, "the file is %s", "empty"), -EINVAL);
    ASSERT_STREQ(err_format(&e, msg, sizeof msg), "f.yml: the file is empty");
    ASSERT_ERRNO(cfg_error_at(&c, 7, 9, "x"), -EINVAL);
    ASSERT_STREQ(err_format(&e, msg, sizeof msg), "f.yml:7:9: x");
    ASSERT_ERRNO(cfg_missing(&c, cfg_map_key(root, "services"), "services.pg1", "command"),
                 -EINVAL);
    ASSERT_STREQ(err_format(&e, msg, sizeof msg),
                 "f.yml:1:1: missing required field 'services.pg1.command'");

    ASSERT_ERRNO(cfg_check_keys(&c, svc, "services.pg1", keys), -EINVAL);
    ASSERT_STREQ(err_format(&e, msg, sizeof msg),
                 "f.yml:3:5: unknown field 'services.pg1.helthcheck' (did you mean "
                 "'healthcheck'?)");
    ASSERT_ERRNO(cfg_unknown_key(&c, svc->keys[1], "services.pg1", keys), -EINVAL);
    ASSERT_STREQ(err_format(&e, msg, sizeof msg), "f.yml:4:5: unknown field 'services.pg1.xyzzy'");
    c.key_noun = "key";
    ASSERT_ERRNO(cfg_unknown_key(&c, svc->keys[0], "", keys), -EINVAL);
    ASSERT_STREQ(e.msg, "unknown key 'helthcheck' (did you mean 'healthcheck'?)");
    ASSERT_ERRNO(cfg_missing(&c, svc, "", "command"), -EINVAL);
    ASSERT_STREQ(e.msg, "missing required key 'command'");

    ASSERT_OK(cfg_expect(&c, svc, "x", CFG_NODE_MAP));
    ASSERT_STREQ(cfg_node_describe(svc), "a map");
    ASSERT_STREQ(cfg_node_describe(svc->items[0]), "a string");
    c.reterr = NULL; /* errors may go nowhere */
    ASSERT_ERRNO(cfg_expect(&c, svc, "x", CFG_NODE_SEQ), -EINVAL);
    cfg_node_free(root);
}

/* ===== Option tables ===== */

enum demo_color {
    DEMO_RED,
    DEMO_GREEN,
    DEMO_BLUE,
    _DEMO_COLOR_MAX,
};

struct demo_inner {
    unsigned retries;
    uint64_t every_usec;
};

struct demo {
    char *name, *dir, *note;
    bool on;
    unsigned count, mode;
    uint64_t every_usec, size;
    enum demo_color color;
    char **args;
    int sig;
    uint16_t port;
    struct demo_inner inner;
    unsigned inner_seen;
};

static const char *const demo_colors[] = { "red", "green", "blue", NULL };

#define INNER(key_, type_, field_) CFG_OPT(struct demo_inner, key_, type_, field_)
static const struct cfg_option inner_opts[] = {
    { INNER("retries", CFG_UINT, retries), .default_value = "3", .min = 1, .max = 5 },
    { INNER("every", CFG_DURATION, every_usec), .default_value = "2s", .min = USEC_PER_SEC },
    { .key = NULL },
};

/* A nested map with a table of its own; counts its calls in the parent. */
static int parse_inner(const struct cfg_ctx *c, const struct cfg_node *key,
                       const struct cfg_node *v, const char *path, void *field)
{
    struct demo *d = field;

    ASSERT_STREQ(key->value, "inner");
    d->inner_seen++;
    return cfg_parse_section(c, v, path, key, inner_opts, &d->inner);
}

#define DEMO(key_, type_, field_) CFG_OPT(struct demo, key_, type_, field_)
static const struct cfg_option demo_opts[] = {
    { DEMO("name", CFG_STR, name), .flags = CFG_F_REQUIRED, .validate = no_dollar },
    { DEMO("dir", CFG_ABS_PATH, dir), .default_value = "/var/lib/demo" },
    { DEMO("note", CFG_STR, note), .flags = CFG_F_EMPTY_OK },
    { DEMO("on", CFG_BOOL, on), .default_value = "true" },
    { DEMO("count", CFG_UINT, count), .default_value = "7", .max = 100 },
    { DEMO("every", CFG_DURATION, every_usec), .default_value = "1s", .min = 100 * USEC_PER_MSEC },
    { DEMO("size", CFG_SIZE, size), .default_value = "10MiB", .min = 1024 },
    { DEMO("mode", CFG_MODE, mode), .default_value = "0644" },
    { DEMO("color", CFG_ENUM, color), .default_value = "green", .what = "color",
      .names = demo_colors },
    { DEMO("args", CFG_STRV, args), .default_value = "PING", .flags = CFG_F_NONEMPTY },
    { DEMO("signal", CFG_SIGNAL, sig), .default_value = "SIGTERM" },
    { DEMO("port", CFG_PORT, port), .default_value = "8080" },
    { .key = "inner", .type = CFG_CUSTOM, .parse = parse_inner },
    { .key = NULL },
};

static void demo_release(struct demo *d)
{
    free(d->name);
    free(d->dir);
    free(d->note);
    strv_free(d->args);
    *d = (struct demo){ .color = DEMO_RED };
}

/* Parses the map under "demo:" in text into *d; returns the result, error in *e. */
static int demo_parse(const char *text, struct demo *d, struct err *e, const char *noun)
{
    struct cfg_node *root = parse_ok(text);
    struct cfg_ctx c = { .file = "t.yml", .reterr = e, .key_noun = noun };
    int r;

    cfg_set_defaults(inner_opts, &d->inner);
    r = cfg_parse_section(&c, cfg_map_get(root, "demo"), "demo", cfg_map_key(root, "demo"),
                          demo_opts, d);
    cfg_node_free(root);
    return r;
}

#define EXPECT_DEMO_ERR(text_, want_)                                \
    do {                                                             \
        struct demo d__ = { .color = DEMO_RED };                     \
        struct err de__ = ERR_INIT;                                  \
        char m__[600];                                               \
        ASSERT_ERRNO(demo_parse(text_, &d__, &de__, NULL), -EINVAL); \
        ASSERT_STREQ(err_format(&de__, m__, sizeof m__), want_);     \
        demo_release(&d__);                                          \
    } while (0)

static void test_option_table(void)
{
    struct demo d = { .color = DEMO_RED };
    struct err e = ERR_INIT;

    ASSERT_OK(demo_parse("demo:\n  name: n\n  dir: /srv\n  note: ''\n  on: off\n  count: 0\n"
                         "  every: 250ms\n  size: 1KiB\n  mode: '0600'\n  color: blue\n"
                         "  args: [a, b]\n  signal: SIGHUP\n  port: 1\n"
                         "  inner: {retries: 5}\n",
                         &d, &e, NULL));
    ASSERT_STREQ(d.name, "n");
    ASSERT_STREQ(d.dir, "/srv");
    ASSERT_STREQ(d.note, "");
    ASSERT_FALSE(d.on);
    ASSERT_EQ(d.count, 0);
    ASSERT_EQ(d.every_usec, 250 * USEC_PER_MSEC);
    ASSERT_EQ(d.size, 1024);
    ASSERT_EQ(d.mode, 0600);
    ASSERT_EQ(d.color, DEMO_BLUE);
    ASSERT_STREQ(d.args[1], "b");
    ASSERT_EQ(d.sig, SIGHUP);
    ASSERT_EQ(d.port, 1);
    ASSERT_EQ(d.inner_seen, 1);
    ASSERT_EQ(d.inner.retries, 5);
    ASSERT_EQ(d.inner.every_usec, 2 * USEC_PER_SEC); /* the nested table's default */
    demo_release(&d);

    /* Absent keys get their defaults, through the same getters; no default leaves the field. */
    ASSERT_OK(demo_parse("demo: {name: n}\n", &d, &e, NULL));
    ASSERT_STREQ(d.dir, "/var/lib/demo");
    ASSERT_TRUE(d.note == NULL);
    ASSERT_TRUE(d.on);
    ASSERT_EQ(d.count, 7);
    ASSERT_EQ(d.every_usec, USEC_PER_SEC);
    ASSERT_EQ(d.size, 10u << 20);
    ASSERT_EQ(d.mode, 0644);
    ASSERT_EQ(d.color, DEMO_GREEN);
    ASSERT_EQ(strv_length(d.args), 1);
    ASSERT_STREQ(d.args[0], "PING");
    ASSERT_EQ(d.sig, SIGTERM);
    ASSERT_EQ(d.port, 8080);
    ASSERT_EQ(d.inner_seen, 0);
    ASSERT_EQ(d.inner.retries, 3);
    demo_release(&d);

    /* Defaults alone; a value already there is replaced (and freed: see ASan). */
    d.dir = xstrdup("/old");
    cfg_set_defaults(demo_opts, &d);
    ASSERT_STREQ(d.dir, "/var/lib/demo");
    ASSERT_TRUE(d.name == NULL); /* required: no default */
    ASSERT_EQ(d.color, DEMO_GREEN);
    demo_release(&d);
}

static void test_option_table_errors(void)
{
    struct demo d = { .color = DEMO_RED };
    struct err e = ERR_INIT;

    /* required: reported at `at` (the key naming the map) */
    EXPECT_DEMO_ERR("x: 1\ndemo:\n  port: 1\n", "t.yml:2:1: missing required field 'demo.name'");
    /* unknown keys first, with the closest key suggested */
    EXPECT_DEMO_ERR("demo:\n  name: n\n  port: 0\n  colour: red\n",
                    "t.yml:4:3: unknown field 'demo.colour' (did you mean 'color'?)");
    EXPECT_DEMO_ERR("demo:\n  name: n\n  frobnicate: 1\n",
                    "t.yml:3:3: unknown field 'demo.frobnicate'");
    ASSERT_ERRNO(demo_parse("demo:\n  nam: n\n", &d, &e, "key"), -EINVAL);
    ASSERT_STREQ(e.msg, "unknown key 'demo.nam' (did you mean 'name'?)");
    demo_release(&d);
    /* types, limits and validators, each named by its path */
    EXPECT_DEMO_ERR("demo: [1]\n", "t.yml:1:7: demo: expected a map, got a list");
    EXPECT_DEMO_ERR("demo:\n  name: [n]\n", "t.yml:2:9: demo.name: expected a string, got a list");
    EXPECT_DEMO_ERR("demo:\n  name: $n\n", "t.yml:2:9: demo.name: no references here ('$n')");
    EXPECT_DEMO_ERR("demo: {name: n, dir: srv}\n",
                    "t.yml:1:22: demo.dir: 'srv' is not an absolute path");
    EXPECT_DEMO_ERR("demo: {name: n, count: 101}\n",
                    "t.yml:1:24: demo.count: 101 is out of range (0..100)");
    EXPECT_DEMO_ERR("demo: {name: n, every: 10ms}\n",
                    "t.yml:1:24: demo.every: duration '10ms' is below the minimum of 100ms");
    EXPECT_DEMO_ERR("demo: {name: n, size: 1000}\n",
                    "t.yml:1:23: demo.size: invalid size '1000' (at least 1KiB, e.g. 10MiB)");
    EXPECT_DEMO_ERR("demo: {name: n, color: red2}\n",
                    "t.yml:1:24: demo.color: unknown color 'red2' (red, green or blue)");
    EXPECT_DEMO_ERR("demo: {name: n, args: []}\n",
                    "t.yml:1:23: demo.args: must not be an empty list");
    EXPECT_DEMO_ERR(
            "demo: {name: n, signal: 9}\n",
            "t.yml:1:25: demo.signal: unknown signal '9' (SIGTERM, SIGINT, SIGQUIT, SIGHUP, "
            "SIGKILL, SIGUSR1 or SIGUSR2)");
    EXPECT_DEMO_ERR("demo: {name: n, on: 2}\n",
                    "t.yml:1:21: demo.on: invalid boolean '2' (true or false)");
    /* a custom parser's nested table names the whole path */
    EXPECT_DEMO_ERR("demo:\n  name: n\n  inner:\n    retries: 9\n",
                    "t.yml:4:14: demo.inner.retries: 9 is out of range (1..5)");
    EXPECT_DEMO_ERR("demo:\n  name: n\n  inner: {tries: 2}\n",
                    "t.yml:3:11: unknown field 'demo.inner.tries' (did you mean 'retries'?)");
}

/* cfg_apply_options() leaves the key check to the caller: one map read by several tables. */
static void test_apply_options(void)
{
    struct cfg_node *root = parse_ok("m: {retries: 2, name: x, every: 5s}\n");
    struct err e = ERR_INIT;
    struct cfg_ctx c = { .file = "t.yml", .reterr = &e };
    struct demo_inner in = { 0 };

    ASSERT_ERRNO(cfg_parse_section(&c, cfg_map_get(root, "m"), "m", NULL, inner_opts, &in),
                 -EINVAL);
    ASSERT_STREQ(e.msg, "unknown field 'm.name'");
    ASSERT_EQ(e.line, 1);
    ASSERT_EQ(e.col, 17);
    ASSERT_OK(cfg_apply_options(&c, cfg_map_get(root, "m"), "m", NULL, inner_opts, &in));
    ASSERT_EQ(in.retries, 2);
    ASSERT_EQ(in.every_usec, 5 * USEC_PER_SEC);
    cfg_node_free(root);
}

T_MAIN(T_CASE(test_tree), T_CASE(test_empty_and_scalar_documents), T_CASE(test_syntax_errors),
       T_CASE(test_rejections), T_CASE(test_duplicate_keys_many), T_CASE(test_limits),
       T_CASE(test_load_file), T_CASE(test_get_strings), T_CASE(test_get_numbers),
       T_CASE(test_get_named), T_CASE(test_get_strv), T_CASE(test_errors_and_paths),
       T_CASE(test_option_table), T_CASE(test_option_table_errors), T_CASE(test_apply_options))
