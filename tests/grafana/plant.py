#!/usr/bin/python3
"""plant.py SRC DEST CODE - writes DEST: the dashboard SRC changed by the Python statement CODE,
for the tests' planted errors.  CODE sees `d` (the dashboard) and `panel(i)` (the i-th panel that
is not a row, rows' own panels not counted)."""
import json
import sys

src, dest, code = sys.argv[1:4]
d = json.load(open(src, encoding="utf-8"))
panels = [p for p in d["panels"] if p["type"] != "row"]


def panel(i):
    return panels[i]


exec(code)
with open(dest, "w", encoding="utf-8") as f:
    json.dump(d, f, indent=2)
