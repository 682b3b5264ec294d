/* SPDX-License-Identifier: MIT */
/* rx.c - a small regular-expression engine for targeting rules: patterns compile (at flag
 * parse time) to a Thompson NFA program, matching simulates all threads in lock step (Pike
 * VM without captures).  Time is O(pattern * input), no backtracking, so a hostile pattern
 * cannot stall evaluation; matching allocates nothing (state lives on the stack).
 *
 * Dialect (docs/flags.md 3.1): literals, '.', [...] / [^...] with ranges and escapes,
 * \d \w \s \D \W \S, \n \r \t, \<punct>, '^', '$', (...), '|', '*', '+', '?', {m}, {m,},
 * {m,n} with n <= 100.  Byte-oriented. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout_int.h"

#define RX_MAX_PROG   1024 /* instructions; bounds the matcher's stack use */
#define RX_MAX_REPEAT 100
#define RX_MAX_NODES  1024
#define RX_MAX_DEPTH  64 /* group nesting */

enum rx_opcode {
    RX_CHAR,  /* arg: byte */
    RX_ANY,   /* any byte */
    RX_CLASS, /* arg: class index */
    RX_SPLIT, /* x, y */
    RX_JMP,   /* x */
    RX_BOL,
    RX_EOL,
    RX_MATCH,
};

struct rx_inst {
    uint8_t op;
    uint8_t c;
    uint16_t x, y;
};

struct rx {
    struct rx_inst *prog;
    size_t n_prog;
    uint8_t (*classes)[32];
    size_t n_classes;
    bool anchored; /* starts with ^ in every alternative: only try position 0 */
    /* Fast paths: a pattern that is a plain literal (with optional ^ and $) is matched with
     * memcmp/memmem; otherwise a literal run every match must contain prefilters the NFA. */
    bool literal, lit_bol, lit_eol;
    char *lit; /* the literal or the required run; NULL when none */
    size_t lit_len;
};

/* ===== Parsing into an AST ===== */

enum node_type {
    N_EMPTY,
    N_CHAR,
    N_ANY,
    N_CLASS,
    N_BOL,
    N_EOL,
    N_CAT,
    N_ALT,
    N_REPEAT, /* a{min,max}; max = -1 for unbounded */
};

struct node {
    enum node_type type;
    int a, b; /* children */
    int min, max;
    uint8_t c;
    size_t cls;
};

struct parser {
    const char *s;
    size_t len, pos;
    struct node nodes[RX_MAX_NODES];
    int n_nodes;
    uint8_t (*classes)[32];
    size_t n_classes;
    unsigned depth;
    char *msg;
    size_t msg_n;
};

static int perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *ps, const char *fmt, ...)
{
    va_list ap;
    char m[160];

    va_start(ap, fmt);
    (void)vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (ps->msg && ps->msg_n)
        (void)snprintf(ps->msg, ps->msg_n, "%s at offset %zu", m, ps->pos);
    return -EINVAL;
}

static int new_node(struct parser *ps, enum node_type t)
{
    if (ps->n_nodes >= RX_MAX_NODES)
        return perr(ps, "pattern too complex");
    ps->nodes[ps->n_nodes] = (struct node){ .type = t, .a = -1, .b = -1 };
    return ps->n_nodes++;
}

static int new_class(struct parser *ps, const uint8_t bits[32])
{
    void *p = realloc(ps->classes, (ps->n_classes + 1) * sizeof *ps->classes);

    if (!p)
        return -ENOMEM;
    ps->classes = p;
    memcpy(ps->classes[ps->n_classes], bits, 32);
    return (int)ps->n_classes++;
}

static void bit_set(uint8_t bits[32], unsigned c)
{
    bits[c >> 3] = (uint8_t)(bits[c >> 3] | (1u << (c & 7)));
}

static void bits_range(uint8_t bits[32], unsigned lo, unsigned hi)
{
    for (unsigned c = lo; c <= hi; c++)
        bit_set(bits, c);
}

static void bits_invert(uint8_t bits[32])
{
    for (unsigned i = 0; i < 32; i++)
        bits[i] = (uint8_t)~bits[i];
}

/* \d \w \s (and negations) into bits; false when c is not a class escape. */
static bool class_escape(char c, uint8_t bits[32])
{
    uint8_t t[32] = { 0 };
    bool neg = c == 'D' || c == 'W' || c == 'S';

    switch (c) {
    case 'd':
    case 'D':
        bits_range(t, '0', '9');
        break;
    case 'w':
    case 'W':
        bits_range(t, '0', '9');
        bits_range(t, 'a', 'z');
        bits_range(t, 'A', 'Z');
        bit_set(t, '_');
        break;
    case 's':
    case 'S':
        bit_set(t, ' ');
        bits_range(t, '\t', '\r'); /* \t \n \v \f \r */
        break;
    default:
        return false;
    }
    if (neg)
        bits_invert(t);
    for (unsigned i = 0; i < 32; i++)
        bits[i] |= t[i];
    return true;
}

/* A single escaped byte: \n \r \t or any punctuation. -1 when not allowed. */
static int literal_escape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        break;
    }
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (unsigned char)c >= 0x80 || (unsigned char)c < 0x20)
        return -1;
    return (unsigned char)c;
}

static int parse_class(struct parser *ps)
{
    uint8_t bits[32] = { 0 };
    bool neg = false, first = true;
    int n, k;

    ps->pos++; /* '[' */
    if (ps->pos < ps->len && ps->s[ps->pos] == '^') {
        neg = true;
        ps->pos++;
    }
    for (;;) {
        int lo, hi;

        if (ps->pos >= ps->len)
            return perr(ps, "missing ']'");
        if (ps->s[ps->pos] == ']' && !first)
            break;
        first = false;
        if (ps->s[ps->pos] == '\\') {
            if (ps->pos + 1 >= ps->len)
                return perr(ps, "trailing '\\'");
            if (class_escape(ps->s[ps->pos + 1], bits)) {
                ps->pos += 2;
                continue;
            }
            lo = literal_escape(ps->s[ps->pos + 1]);
            if (lo < 0)
                return perr(ps, "unknown escape '\\%c'", ps->s[ps->pos + 1]);
            ps->pos += 2;
        } else {
            lo = (unsigned char)ps->s[ps->pos++];
        }
        hi = lo;
        if (ps->pos + 1 < ps->len && ps->s[ps->pos] == '-' && ps->s[ps->pos + 1] != ']') {
            ps->pos++;
            if (ps->s[ps->pos] == '\\') {
                if (ps->pos + 1 >= ps->len)
                    return perr(ps, "trailing '\\'");
                hi = literal_escape(ps->s[ps->pos + 1]);
                if (hi < 0)
                    return perr(ps, "bad range end '\\%c'", ps->s[ps->pos + 1]);
                ps->pos += 2;
            } else {
                hi = (unsigned char)ps->s[ps->pos++];
            }
            if (hi < lo)
                return perr(ps, "reversed range");
        }
        bits_range(bits, (unsigned)lo, (unsigned)hi);
    }
    ps->pos++; /* ']' */
    if (neg)
        bits_invert(bits);
    k = new_class(ps, bits);
    if (k < 0)
        return k;
    n = new_node(ps, N_CLASS);
    if (n < 0)
        return n;
    ps->nodes[n].cls = (size_t)k;
    return n;
}

static int parse_alt(struct parser *ps);

static int parse_atom(struct parser *ps)
{
    char c = ps->s[ps->pos];
    int n, k;

    switch (c) {
    case '(':
        if (++ps->depth > RX_MAX_DEPTH)
            return perr(ps, "groups nested too deeply");
        ps->pos++;
        n = parse_alt(ps);
        if (n < 0)
            return n;
        if (ps->pos >= ps->len || ps->s[ps->pos] != ')')
            return perr(ps, "missing ')'");
        ps->pos++;
        ps->depth--;
        return n;
    case '[':
        return parse_class(ps);
    case '.':
        ps->pos++;
        return new_node(ps, N_ANY);
    case '^':
        ps->pos++;
        return new_node(ps, N_BOL);
    case '$':
        ps->pos++;
        return new_node(ps, N_EOL);
    case '\\': {
        uint8_t bits[32] = { 0 };
        int lit;

        if (ps->pos + 1 >= ps->len)
            return perr(ps, "trailing '\\'");
        c = ps->s[ps->pos + 1];
        if (class_escape(c, bits)) {
            ps->pos += 2;
            k = new_class(ps, bits);
            if (k < 0)
                return k;
            n = new_node(ps, N_CLASS);
            if (n >= 0)
                ps->nodes[n].cls = (size_t)k;
            return n;
        }
        lit = literal_escape(c);
        if (lit < 0)
            return perr(ps, "unknown escape '\\%c'", c);
        ps->pos += 2;
        n = new_node(ps, N_CHAR);
        if (n >= 0)
            ps->nodes[n].c = (uint8_t)lit;
        return n;
    }
    case '*':
    case '+':
    case '?':
    case '{':
        return perr(ps, "nothing to repeat");
    case ')':
        return perr(ps, "unbalanced ')'");
    default:
        ps->pos++;
        n = new_node(ps, N_CHAR);
        if (n >= 0)
            ps->nodes[n].c = (uint8_t)c;
        return n;
    }
}

static bool parse_int(struct parser *ps, int *ret)
{
    int v = 0;
    size_t start = ps->pos;

    while (ps->pos < ps->len && ps->s[ps->pos] >= '0' && ps->s[ps->pos] <= '9') {
        v = v * 10 + (ps->s[ps->pos] - '0');
        if (v > 100000)
            return false;
        ps->pos++;
    }
    *ret = v;
    return ps->pos > start;
}

static int parse_repeat(struct parser *ps)
{
    int a = parse_atom(ps);

    while (a >= 0 && ps->pos < ps->len) {
        char c = ps->s[ps->pos];
        int min, max, n;

        if (c == '*') {
            min = 0;
            max = -1;
            ps->pos++;
        } else if (c == '+') {
            min = 1;
            max = -1;
            ps->pos++;
        } else if (c == '?') {
            min = 0;
            max = 1;
            ps->pos++;
        } else if (c == '{') {
            ps->pos++;
            if (!parse_int(ps, &min))
                return perr(ps, "bad repetition count");
            max = min;
            if (ps->pos < ps->len && ps->s[ps->pos] == ',') {
                ps->pos++;
                max = -1;
                if (ps->pos < ps->len && ps->s[ps->pos] != '}' && !parse_int(ps, &max))
                    return perr(ps, "bad repetition count");
            }
            if (ps->pos >= ps->len || ps->s[ps->pos] != '}')
                return perr(ps, "missing '}'");
            ps->pos++;
            if (min > RX_MAX_REPEAT || max > RX_MAX_REPEAT)
                return perr(ps, "repetition count over %d", RX_MAX_REPEAT);
            if (max >= 0 && max < min)
                return perr(ps, "repetition {%d,%d} has max < min", min, max);
        } else {
            break;
        }
        n = new_node(ps, N_REPEAT);
        if (n < 0)
            return n;
        ps->nodes[n].a = a;
        ps->nodes[n].min = min;
        ps->nodes[n].max = max;
        a = n;
    }
    return a;
}

static int parse_concat(struct parser *ps)
{
    int left = -1;

    while (ps->pos < ps->len && ps->s[ps->pos] != '|' && ps->s[ps->pos] != ')') {
        int r = parse_repeat(ps), n;

        if (r < 0)
            return r;
        if (left < 0) {
            left = r;
            continue;
        }
        n = new_node(ps, N_CAT);
        if (n < 0)
            return n;
        ps->nodes[n].a = left;
        ps->nodes[n].b = r;
        left = n;
    }
    return left >= 0 ? left : new_node(ps, N_EMPTY);
}

static int parse_alt(struct parser *ps)
{
    int left = parse_concat(ps);

    while (left >= 0 && ps->pos < ps->len && ps->s[ps->pos] == '|') {
        int r, n;

        ps->pos++;
        r = parse_concat(ps);
        if (r < 0)
            return r;
        n = new_node(ps, N_ALT);
        if (n < 0)
            return n;
        ps->nodes[n].a = left;
        ps->nodes[n].b = r;
        left = n;
    }
    return left;
}

/* ===== Code generation ===== */

struct emitter {
    const struct parser *ps;
    struct rx_inst prog[RX_MAX_PROG];
    size_t n;
    bool overflow;
};

static size_t emit(struct emitter *e, uint8_t op, uint8_t c, size_t x, size_t y)
{
    if (e->n >= RX_MAX_PROG) {
        e->overflow = true;
        return e->n;
    }
    e->prog[e->n] = (struct rx_inst){ .op = op, .c = c, .x = (uint16_t)x, .y = (uint16_t)y };
    return e->n++;
}

static void patch(struct emitter *e, size_t at, size_t x, size_t y)
{
    if (at < RX_MAX_PROG && !e->overflow) {
        e->prog[at].x = (uint16_t)x;
        e->prog[at].y = (uint16_t)y;
    }
}

static void gen(struct emitter *e, int id)
{
    const struct node *nd = &e->ps->nodes[id];
    size_t l1, l2;

    if (e->overflow)
        return;
    switch (nd->type) {
    case N_EMPTY:
        break;
    case N_CHAR:
        emit(e, RX_CHAR, nd->c, 0, 0);
        break;
    case N_ANY:
        emit(e, RX_ANY, 0, 0, 0);
        break;
    case N_CLASS:
        emit(e, RX_CLASS, 0, nd->cls, 0);
        break;
    case N_BOL:
        emit(e, RX_BOL, 0, 0, 0);
        break;
    case N_EOL:
        emit(e, RX_EOL, 0, 0, 0);
        break;
    case N_CAT:
        gen(e, nd->a);
        gen(e, nd->b);
        break;
    case N_ALT:
        l1 = emit(e, RX_SPLIT, 0, 0, 0);
        gen(e, nd->a);
        l2 = emit(e, RX_JMP, 0, 0, 0);
        patch(e, l1, l1 + 1, e->n);
        gen(e, nd->b);
        patch(e, l2, e->n, 0);
        break;
    case N_REPEAT:
        for (int i = 0; i < nd->min; i++)
            gen(e, nd->a);
        if (nd->max < 0) {
            /* L1: split L2, L3; L2: a; jmp L1; L3: */
            l1 = emit(e, RX_SPLIT, 0, 0, 0);
            gen(e, nd->a);
            emit(e, RX_JMP, 0, l1, 0);
            patch(e, l1, l1 + 1, e->n);
        } else {
            /* (a(a(a)?)?)? for max - min optional copies: each split skips to the end. */
            size_t splits[RX_MAX_REPEAT];
            int k = nd->max - nd->min;

            for (int i = 0; i < k; i++) {
                splits[i] = emit(e, RX_SPLIT, 0, 0, 0);
                gen(e, nd->a);
            }
            for (int i = 0; i < k; i++)
                patch(e, splits[i], splits[i] + 1, e->n);
        }
        break;
    }
}

/* Whether every path from the start must pass a '^' before consuming anything. */
static bool node_anchored(const struct parser *ps, int id)
{
    const struct node *nd = &ps->nodes[id];

    switch (nd->type) {
    case N_BOL:
        return true;
    case N_CAT:
        return node_anchored(ps, nd->a);
    case N_ALT:
        return node_anchored(ps, nd->a) && node_anchored(ps, nd->b);
    case N_REPEAT:
        return nd->min > 0 && node_anchored(ps, nd->a);
    default:
        return false;
    }
}

/* Flattens the top-level concatenation into nodes (in order); false when it has too many. */
static bool flatten_cat(const struct parser *ps, int id, int *out, size_t *n, size_t max)
{
    const struct node *nd = &ps->nodes[id];

    if (nd->type == N_CAT)
        return flatten_cat(ps, nd->a, out, n, max) && flatten_cat(ps, nd->b, out, n, max);
    if (*n >= max)
        return false;
    out[(*n)++] = id;
    return true;
}

static int analyze_literals(const struct parser *ps, int root, struct rx *rx)
{
    int seq[RX_MAX_NODES];
    size_t n = 0, first = 0, last, best_start = 0, best_len = 0;

    if (!flatten_cat(ps, root, seq, &n, RX_MAX_NODES) || !n)
        return 0;
    rx->lit_bol = ps->nodes[seq[0]].type == N_BOL;
    rx->lit_eol = n > 1 && ps->nodes[seq[n - 1]].type == N_EOL;
    first = rx->lit_bol ? 1 : 0;
    last = rx->lit_eol ? n - 1 : n;
    /* Longest run of plain characters; the whole middle when everything is one. */
    for (size_t i = first; i < last;) {
        size_t j = i;

        while (j < last && ps->nodes[seq[j]].type == N_CHAR)
            j++;
        if (j - i > best_len) {
            best_start = i;
            best_len = j - i;
        }
        i = j == i ? i + 1 : j;
    }
    if (!best_len)
        return 0;
    rx->literal = best_start == first && best_len == last - first;
    rx->lit = malloc(best_len);
    if (!rx->lit)
        return -ENOMEM;
    for (size_t i = 0; i < best_len; i++)
        rx->lit[i] = (char)ps->nodes[seq[best_start + i]].c;
    rx->lit_len = best_len;
    return 0;
}

int rollout__rx_compile(const char *pattern, size_t len, struct rx **ret, char *msg, size_t n)
{
    struct parser *ps = calloc(1, sizeof *ps);
    struct emitter *e = calloc(1, sizeof *e);
    struct rx *rx = NULL;
    int root, r;

    if (!ps || !e) {
        r = -ENOMEM;
        goto out;
    }
    ps->s = pattern;
    ps->len = len;
    ps->msg = msg;
    ps->msg_n = n;
    if (memchr(pattern, '\0', len)) {
        r = perr(ps, "NUL byte in pattern");
        goto out;
    }
    root = parse_alt(ps);
    if (root < 0) {
        r = root;
        goto out;
    }
    if (ps->pos < ps->len) { /* only a stray ')' stops the top level early */
        r = perr(ps, "unbalanced ')'");
        goto out;
    }
    e->ps = ps;
    gen(e, root);
    emit(e, RX_MATCH, 0, 0, 0);
    if (e->overflow) {
        ps->pos = len;
        r = perr(ps, "pattern too large (over %d instructions)", RX_MAX_PROG);
        goto out;
    }
    rx = calloc(1, sizeof *rx);
    if (!rx) {
        r = -ENOMEM;
        goto out;
    }
    rx->prog = malloc(e->n * sizeof *rx->prog);
    if (!rx->prog) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(rx->prog, e->prog, e->n * sizeof *rx->prog);
    rx->n_prog = e->n;
    rx->classes = ps->classes;
    rx->n_classes = ps->n_classes;
    ps->classes = NULL;
    rx->anchored = node_anchored(ps, root);
    r = analyze_literals(ps, root, rx);
    if (r < 0)
        goto out;
    *ret = rx;
    rx = NULL;
    r = 0;
out:
    if (ps)
        free(ps->classes);
    free(ps);
    free(e);
    rollout__rx_free(rx);
    return r;
}

struct rx *rollout__rx_free(struct rx *rx)
{
    if (rx) {
        free(rx->lit);
        free(rx->prog);
        free(rx->classes);
        free(rx);
    }
    return NULL;
}

/* ===== Matching ===== */

struct thread_list {
    uint16_t pc[RX_MAX_PROG];
    size_t n;
};

/* Adds pc and everything reachable through jumps, splits and satisfied assertions; marks
 * (generation numbers) keep each pc once per step.  Returns true when MATCH is reachable. */
static bool add_thread(const struct rx *rx, struct thread_list *l, uint32_t *marks, uint32_t gen,
                       size_t pc0, size_t pos, size_t len)
{
    uint16_t stack[2 * RX_MAX_PROG + 2]; /* each pc expands once per step: <= 2 pushes */
    size_t sp = 0;
    bool matched = false;

    stack[sp++] = (uint16_t)pc0;
    while (sp) {
        size_t pc = stack[--sp];
        const struct rx_inst *in;

        if (marks[pc] == gen)
            continue;
        marks[pc] = gen;
        in = &rx->prog[pc];
        switch (in->op) {
        case RX_JMP:
            stack[sp++] = in->x;
            break;
        case RX_SPLIT:
            stack[sp++] = in->y;
            stack[sp++] = in->x;
            break;
        case RX_BOL:
            if (pos == 0)
                stack[sp++] = (uint16_t)(pc + 1);
            break;
        case RX_EOL:
            if (pos == len)
                stack[sp++] = (uint16_t)(pc + 1);
            break;
        case RX_MATCH:
            matched = true;
            break;
        default:
            l->pc[l->n++] = (uint16_t)pc;
            break;
        }
    }
    return matched;
}

static bool inst_accepts(const struct rx *rx, const struct rx_inst *in, unsigned char c)
{
    switch (in->op) {
    case RX_CHAR:
        return in->c == c;
    case RX_ANY:
        return true;
    case RX_CLASS:
        return rx->classes[in->x][c >> 3] & (1u << (c & 7));
    default:
        return false;
    }
}

bool rollout__rx_search(const struct rx *rx, const char *s, size_t len)
{
    struct thread_list lists[2];
    uint32_t marks[RX_MAX_PROG];
    struct thread_list *cur = &lists[0], *next = &lists[1];
    uint32_t gen = 1;

    if (rx->literal) {
        if (len < rx->lit_len)
            return false;
        if (rx->lit_bol && rx->lit_eol)
            return len == rx->lit_len && memcmp(s, rx->lit, len) == 0;
        if (rx->lit_bol)
            return memcmp(s, rx->lit, rx->lit_len) == 0;
        if (rx->lit_eol)
            return memcmp(s + len - rx->lit_len, rx->lit, rx->lit_len) == 0;
        return memmem(s, len, rx->lit, rx->lit_len) != NULL;
    }
    if (rx->lit && !memmem(s, len, rx->lit, rx->lit_len))
        return false; /* every match contains this run */
    memset(marks, 0, rx->n_prog * sizeof marks[0]);
    cur->n = 0;
    if (add_thread(rx, cur, marks, gen, 0, 0, len))
        return true;
    for (size_t pos = 0; pos < len; pos++) {
        unsigned char c = (unsigned char)s[pos];
        struct thread_list *t;

        gen++;
        next->n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            const struct rx_inst *in = &rx->prog[cur->pc[i]];

            if (inst_accepts(rx, in, c) &&
                add_thread(rx, next, marks, gen, (size_t)cur->pc[i] + 1, pos + 1, len))
                return true;
        }
        /* Unanchored search: a new attempt starts at every position. */
        if (!rx->anchored && add_thread(rx, next, marks, gen, 0, pos + 1, len))
            return true;
        if (!next->n && rx->anchored)
            return false;
        t = cur;
        cur = next;
        next = t;
    }
    return false;
}
