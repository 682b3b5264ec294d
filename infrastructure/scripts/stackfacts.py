# SPDX-License-Identifier: MIT
# stackfacts.py - the small readers check-local-stack.py and check-topology.py share: the
# strings of a parsed YAML tree and the keys of a Java .properties file.  Imported from the
# scripts' own folder (Python puts it first on sys.path).


def strings(x):
    """Every string (and number, as text) anywhere in a parsed YAML/JSON value."""
    if isinstance(x, str):
        yield x
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield str(x)
    elif isinstance(x, list):
        for i in x:
            yield from strings(i)
    elif isinstance(x, dict):
        for v in x.values():
            yield from strings(v)


def properties(text):
    """key -> value of a .properties text (comments '#'/'!' and lines without '=' skipped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out
