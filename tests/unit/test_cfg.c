/* SPDX-License-Identifier: MIT */
/* test_cfg.c - the YAML document tree: shapes, positions, rejections and limits. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
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

T_MAIN(T_CASE(test_tree), T_CASE(test_empty_and_scalar_documents), T_CASE(test_syntax_errors),
       T_CASE(test_rejections), T_CASE(test_duplicate_keys_many), T_CASE(test_limits),
       T_CASE(test_load_file))
