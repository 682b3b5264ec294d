/* SPDX-License-Identifier: MIT */
/* drill_html.c - drill reports as one self-contained HTML page: per run an SVG timeline of
 * acknowledged writes per 100 ms with the fault, resume and heal marks, and its figures.  No
 * scripts, no external resources: the file opens anywhere. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/str.h"
#include "drill_report.h"

#define W      960.0 /* plot width, px */
#define H      120.0 /* plot height, px */
#define LEFT   40.0
#define BOTTOM 20.0

/* Text into HTML: &, <, >, " escaped. */
static void put_text(FILE *f, const char *s)
{
    for (; s && *s; s++)
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void mark(FILE *f, double at_ms, double end_ms, const char *color, const char *label)
{
    double x;

    if (at_ms < 0 || end_ms <= 0)
        return;
    x = LEFT + at_ms / end_ms * W;
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"2\"/>"
            "<text x=\"%.1f\" y=\"12\" fill=\"%s\" font-size=\"11\">%s %.1f s</text>\n",
            x, x, H, color, x + 3, color, label, at_ms / 1000.0);
}

static void timeline(FILE *f, json_t *tl)
{
    json_t *bins = json_object_get(tl, "acks_per_100ms"), *b;
    double end = num(tl, "end_ms"), peak = 1, bw;
    size_t i, n = json_array_size(bins);

    if (n == 0 || end <= 0) {
        fputs("<p>(no timeline recorded)</p>\n", f);
        return;
    }
    json_array_foreach(bins, i, b)
    {
        if ((double)json_integer_value(b) > peak)
            peak = (double)json_integer_value(b);
    }
    bw = W * (DRILL_BIN_USEC / 1000.0) / end;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n",
            LEFT + W + 10, H + BOTTOM);
    fprintf(f,
            "<text x=\"0\" y=\"10\" font-size=\"10\">%.0f</text>"
            "<text x=\"0\" y=\"%.0f\" font-size=\"10\">0</text>\n",
            peak, H);
    json_array_foreach(bins, i, b)
    {
        double v = (double)json_integer_value(b), h = v / peak * (H - 16);

        if (v > 0)
            fprintf(f,
                    "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#4a7bd0\">"
                    "<title>%.1f s: %.0f acks</title></rect>\n",
                    LEFT + (double)i * bw, H - h, bw > 1.5 ? bw - 0.5 : bw, h,
                    (double)i * DRILL_BIN_USEC / 1e6, v);
    }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#888\"/>\n", LEFT, H,
            LEFT + W, H);
    for (double s = 0; s * 1000.0 <= end; s += end > 60000 ? 10 : end > 20000 ? 5 : 1)
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\">%.0fs</text>\n",
                LEFT + s * 1000.0 / end * W, H + 14, s);
    mark(f, num(tl, "fault_ms"), end, "#d03030", "fault");
    mark(f, num(tl, "resume_ms"), end, "#e08000", "resume");
    mark(f, num(tl, "heal_ms"), end, "#209040", "healed");
    fputs("</svg>\n", f);
}

static void run_figures(FILE *f, json_t *run)
{
    const char *key;
    json_t *v;

    fprintf(f, "<p>victim <b>");
    put_text(f, json_string_value(json_object_get(run, "victim")));
    fprintf(f, "</b> &rarr; <b>");
    put_text(f, json_string_value(json_object_get(
                        run, json_object_get(run, "new_leader") ? "new_leader" : "old_leader")));
    fprintf(f, "</b>; write gap <b>%.0f ms</b>; healed %s after %.1f s; %s", num(run, "gap_ms"),
            json_is_true(json_object_get(run, "healed")) ? "yes" : "NO",
            num(run, "heal_ms") / 1000.0,
            json_is_true(json_object_get(run, "passed")) ? "passed" : "<b>FAILED</b>");
    json_object_foreach(run, key, v)
    {
        if (json_is_object(v) && json_object_get(v, "acked"))
            fprintf(f, "; %s: acked %lld, unknown %lld, lost <b>%lld</b>, duplicates %lld", key,
                    json_integer_value(json_object_get(v, "acked")),
                    json_integer_value(json_object_get(v, "unknown")),
                    json_integer_value(json_object_get(v, "lost")),
                    json_integer_value(json_object_get(v, "duplicates")));
    }
    if (json_object_get(run, "lost") && json_is_integer(json_object_get(run, "lost")))
        fprintf(f, "; acked %lld, lost <b>%lld</b>",
                json_integer_value(json_object_get(run, "acked")),
                json_integer_value(json_object_get(run, "lost")));
    if (json_string_length(json_object_get(run, "note"))) {
        fputs("; ", f);
        put_text(f, json_string_value(json_object_get(run, "note")));
    }
    fputs("</p>\n", f);
}

int drill_html_write(const char *path, void *docs_)
{
    json_t *docs = docs_, *doc, *run;
    size_t i, k;
    FILE *f = fopen(path, "we");
    int r = 0;

    if (!f)
        return -errno;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>infractl drill</title>"
          "<style>body{font-family:sans-serif;margin:1em 2em}h2{margin-top:1.5em}"
          "p{margin:.2em 0 .6em}</style></head><body>\n<h1>infractl drill</h1>\n"
          "<p>Bars: acknowledged writes per 100 ms.  Red: fault; orange: SIGCONT; green: the "
          "cluster whole again.  The write gap is the longest time without an acknowledgement "
          "from the last one before the fault.</p>\n",
          f);
    json_array_foreach(docs, i, doc)
    {
        json_t *g = json_object_get(doc, "gap_ms");

        fputs("<h2>", f);
        put_text(f, json_string_value(json_object_get(doc, "cluster")));
        fputs(" &mdash; ", f);
        put_text(f, json_string_value(json_object_get(doc, "fault")));
        fprintf(f,
                "</h2>\n<p>%zu runs; write gap ms min %.0f / median %.0f / p95 %.0f / max "
                "%.0f; %s</p>\n",
                json_array_size(json_object_get(doc, "runs")), num(g, "min"), num(g, "median"),
                num(g, "p95"), num(g, "max"),
                json_is_true(json_object_get(doc, "passed")) ? "passed" : "<b>FAILED</b>");
        json_array_foreach(json_object_get(doc, "runs"), k, run)
        {
            fprintf(f, "<h3>run %zu</h3>\n", k + 1);
            run_figures(f, run);
            timeline(f, json_object_get(run, "timeline"));
        }
    }
    fputs("</body></html>\n", f);
    if (ferror(f))
        r = -EIO;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}
