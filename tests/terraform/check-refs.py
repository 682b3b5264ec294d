#!/usr/bin/python3
"""Static reference check of a Terraform/OpenTofu configuration (tests/terraform).

    check-refs.py DIR        DIR: the root module (infrastructure/terraform)

`tofu validate` would do this against the providers' schemas, which cannot be fetched on these
machines.  This check parses every .tf file of the root module and of each local module it calls
(a tokenizer for HCL's native syntax: comments, strings with ${...} / %{...} templates, heredocs,
brackets) and fails when:
  - var.X names no variable of its module, or a variable is declared and never used;
  - local.X names no local value, or a local value is never used;
  - TYPE.NAME, data.TYPE.NAME or module.NAME names no resource, data source or module call of
    its module (outputs included);
  - module.NAME.OUT names no output of the called module;
  - a module call passes an argument the module does not declare, or leaves out a variable
    that has no default;
  - count.* / each.* appear outside a block with count / for_each;
  - templatefile(PATH, VARS): the template is missing, uses a name VARS does not give, or VARS
    gives a name the template never uses (VARS is followed through merge(), object literals and
    var.X to the module's callers).
It does not know the provider's schema: attribute names of resources (aws_instance.x.foo) and
argument names inside resource blocks are not checked.  Exit 0 clean, 1 with findings, 2 usage.
"""
import os
import re
import sys

KEYWORDS = {"true", "false", "null", "for", "in", "if", "else", "endif", "endfor"}
META_ARGS = {"source", "version", "count", "for_each", "providers", "depends_on"}
BUILTIN_ROOTS = {"path", "terraform", "self"}


class ParseError(Exception):
    pass


# ---------------------------------------------------------------- tokenizer

def tokenize(text, fname, line=1, template=False):
    """Tokens (kind, value, line).  kinds: id num str op nl.  A quoted string is one 'str' token
    whose value is its literal text when it has no template sequence; the expressions inside
    ${...} and %{...} follow it as tokens between ('op','(') and ('op',')') so that references
    in them are seen.  With template=True, text is a template body (a heredoc, a .tftpl)."""
    toks = []
    if template:
        _template(text, fname, line, toks)
        return toks
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            toks.append(("nl", "\n", line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ParseError(f"{fname}:{line}: unterminated /* comment")
            line += text.count("\n", i, j)
            i = j + 2
        elif c == '"':
            j, body = _quoted_end(text, i, fname, line)
            start = line
            if "${" in body.replace("$${", "") or "%{" in body.replace("%%{", ""):
                toks.append(("str", None, start))
                toks.append(("op", "(", start))
                _template(body, fname, start, toks)
                toks.append(("op", ")", start))
            else:
                toks.append(("str", body, start))
            line += body.count("\n")
            i = j
        elif text.startswith("<<", i) and re.match(r"<<-?[A-Za-z_]", text[i:i + 4]):
            m = re.match(r"<<-?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n", text[i:])
            if not m:
                raise ParseError(f"{fname}:{line}: bad heredoc")
            tag = m.group(1)
            body_start = i + m.end()
            end = re.compile(r"^[ \t]*" + re.escape(tag) + r"[ \t]*$", re.M).search(text, body_start)
            if not end:
                raise ParseError(f"{fname}:{line}: heredoc {tag} never ends")
            body = text[body_start:end.start()]
            toks.append(("str", None, line))
            toks.append(("op", "(", line))
            _template(body, fname, line + 1, toks)
            toks.append(("op", ")", line))
            line += text.count("\n", i, end.end())
            i = end.end()
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*").match(text, i)
            toks.append(("id", m.group(0), line))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?").match(text, i)
            toks.append(("num", m.group(0), line))
            i = m.end()
        else:
            for op in ("...", "=>", "==", "!=", "<=", ">=", "&&", "||", "::"):
                if text.startswith(op, i):
                    toks.append(("op", op, line))
                    i += len(op)
                    break
            else:
                if c not in "{}[]()=.,:?!<>+-*/%~":
                    raise ParseError(f"{fname}:{line}: unexpected character {c!r}")
                toks.append(("op", c, line))
                i += 1
    return toks


def _quoted_end(text, i, fname, line):
    """Index past the closing quote of the string at text[i] == '"', and its raw body."""
    j, depth = i + 1, 0
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if depth == 0 and c == "\n":
            raise ParseError(f"{fname}:{line}: unterminated string")
        if text.startswith("$${", j) or text.startswith("%%{", j):
            j += 3
            continue
        if text.startswith("${", j) or text.startswith("%{", j):
            depth += 1
            j += 2
            continue
        if depth and c == "{":
            depth += 1
        elif depth and c == "}":
            depth -= 1
        elif depth and c == '"':
            j, _ = _quoted_end(text, j, fname, line)
            continue
        elif not depth and c == '"':
            return j + 1, text[i + 1:j]
        j += 1
    raise ParseError(f"{fname}:{line}: unterminated string")


def _template(body, fname, line, toks):
    """The expressions of a template's ${...} and %{...} sequences, each in ( ... )."""
    i = 0
    while True:
        m = re.compile(r"(?<![$%])[$%]\{").search(body, i)
        if not m:
            return
        start = m.end()
        depth, j = 1, start
        while j < len(body) and depth:
            if body[j] == "{":
                depth += 1
            elif body[j] == "}":
                depth -= 1
            elif body[j] == '"':
                j, _ = _quoted_end(body, j, fname, line)
                continue
            j += 1
        if depth:
            raise ParseError(f"{fname}:{line + body.count(chr(10), 0, start)}: unterminated template sequence")
        inner = body[start:j - 1].strip().strip("~").strip()
        ln = line + body.count("\n", 0, start)
        if m.group(0) == "%{":
            d = re.match(r"(for)\s+(.*?)\s+in\s+(.*)$", inner, re.S)
            if d:
                toks.append(("op", "%for", ln))
                for name in d.group(2).split(","):
                    toks.append(("id", name.strip(), ln))
                inner = d.group(3)
            elif re.match(r"(if)\s", inner):
                inner = inner[2:]
            elif inner in ("else", "endif", "endfor"):
                inner = ""
            else:
                raise ParseError(f"{fname}:{ln}: unknown template directive %{{{inner}}}")
        toks.append(("op", "(", ln))
        toks.extend(t for t in tokenize(inner, fname, ln) if t[0] != "nl")
        toks.append(("op", ")", ln))
        i = j


# ---------------------------------------------------------------- body structure

OPEN, CLOSE = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}


def parse_body(toks, i, fname, top):
    """Items of a body until its closing brace (or the end at top level): attributes
    ('attr', name, tokens, line) and blocks ('block', type, labels, items, line)."""
    items = []
    while i < len(toks):
        kind, val, line = toks[i]
        if kind == "nl":
            i += 1
            continue
        if (kind, val) == ("op", "}"):
            if top:
                raise ParseError(f"{fname}:{line}: unexpected }}")
            return items, i + 1
        if kind != "id":
            raise ParseError(f"{fname}:{line}: expected an attribute or a block, got {val!r}")
        name = val
        i += 1
        if i < len(toks) and toks[i][:2] == ("op", "="):
            i += 1
            expr, depth = [], 0
            while i < len(toks):
                k, v, _ = toks[i]
                if k == "op" and v in OPEN:
                    depth += 1
                elif k == "op" and v in CLOSE:
                    if depth == 0:
                        break
                    depth -= 1
                elif k == "nl" and depth == 0:
                    break
                expr.append(toks[i])
                i += 1
            if depth:
                raise ParseError(f"{fname}:{line}: unbalanced brackets in {name}")
            if not expr:
                raise ParseError(f"{fname}:{line}: {name} = has no value")
            items.append(("attr", name, expr, line))
            continue
        labels = []
        while i < len(toks) and (toks[i][0] == "str" or toks[i][0] == "id"):
            if toks[i][0] == "str" and toks[i][1] is None:
                raise ParseError(f"{fname}:{line}: a block label cannot be a template")
            labels.append(toks[i][1])
            i += 1
        if i >= len(toks) or toks[i][:2] != ("op", "{"):
            raise ParseError(f"{fname}:{line}: expected {{ after {name} {' '.join(labels)}")
        body, i = parse_body(toks, i + 1, fname, False)
        items.append(("block", name, labels, body, line))
    if not top:
        raise ParseError(f"{fname}: a block is never closed")
    return items, i


# ---------------------------------------------------------------- references

def traversals(expr):
    """(root, parts, line, bound) for each reference in an expression; parts: attribute names and
    '[]' for an index.  Names bound by a for expression are left out; function calls too."""
    expr = [t for t in expr if t[0] != "nl"]
    out, scopes, i = [], [set()], 0
    while i < len(expr):
        k, v, line = expr[i]
        if k == "op" and v in OPEN:
            scopes.append(set())
            if i + 1 < len(expr) and expr[i + 1][:2] == ("id", "for"):
                j = i + 2
                while j < len(expr) and expr[j][:2] != ("id", "in"):
                    if expr[j][0] == "id":
                        scopes[-1].add(expr[j][1])
                    j += 1
                i = j + 1
                continue
        elif k == "op" and v in CLOSE:
            if len(scopes) > 1:
                scopes.pop()
        elif k == "op" and v == "%for":  # template for: names bound to the end of the template
            j = i + 1
            while j < len(expr) and expr[j][0] == "id":
                scopes[0].add(expr[j][1])
                j += 1
            i = j
            continue
        elif k == "id" and v not in KEYWORDS:
            prev = expr[i - 1] if i else None
            if prev and prev[:2] == ("op", "."):
                i += 1
                continue
            if i + 1 < len(expr) and expr[i + 1][:2] in (("op", "("), ("op", "::")):
                i += 1  # a function call
                continue
            # an object key: `key = value` or `key: value` inside { }
            nxt = expr[i + 1][:2] if i + 1 < len(expr) else None
            if nxt == ("op", "=") or (nxt == ("op", ":") and not _in_conditional(expr, i)):
                i += 1
                continue
            parts, j = [], i + 1
            while j < len(expr):
                if expr[j][:2] == ("op", ".") and j + 1 < len(expr) and expr[j + 1][0] in ("id", "num"):
                    parts.append(expr[j + 1][1])
                    j += 2
                elif expr[j][:2] == ("op", ".") and j + 1 < len(expr) and expr[j + 1][:2] == ("op", "*"):
                    parts.append("*")
                    j += 2
                elif expr[j][:2] == ("op", "["):
                    depth, j = 1, j + 1
                    while j < len(expr) and depth:
                        if expr[j][:2] == ("op", "["):
                            depth += 1
                        elif expr[j][:2] == ("op", "]"):
                            depth -= 1
                        j += 1
                    parts.append("[]")
                else:
                    break
            bound = any(v in s for s in scopes)
            out.append((v, parts, line, bound))
            # the index expressions hold references too: scan them by not skipping past
        i += 1
    return out


def _in_conditional(expr, i):
    """Whether the ':' after expr[i] belongs to a ? : conditional (a bare ident before ':')."""
    depth = 0
    for k, v, _ in reversed(expr[:i]):
        if k == "op" and v in CLOSE:
            depth += 1
        elif k == "op" and v in OPEN:
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and (k, v) == ("op", "?"):
            return True
    return False


# ---------------------------------------------------------------- modules

class Module:
    def __init__(self, path):
        self.path = path
        self.items = []  # (file, item)
        self.variables, self.var_default, self.locals, self.outputs = {}, {}, {}, {}
        self.resources, self.data, self.calls = {}, {}, {}
        files = sorted(f for f in os.listdir(path) if f.endswith(".tf"))
        if not files:
            raise ParseError(f"{path}: no .tf files")
        for f in files:
            fname = os.path.join(path, f)
            with open(fname, encoding="utf-8") as fh:
                body, _ = parse_body(tokenize(fh.read(), fname), 0, fname, True)
            for it in body:
                self.items.append((fname, it))
                self._declare(fname, it)

    def _declare(self, fname, it):
        if it[0] != "block":
            raise ParseError(f"{fname}:{it[3]}: attribute {it[1]} at the top level")
        _, typ, labels, body, line = it
        where = f"{fname}:{line}"
        want = {"variable": 1, "output": 1, "module": 1, "resource": 2, "data": 2, "locals": 0,
                "terraform": 0, "provider": 1, "moved": 0, "import": 0, "check": 1, "removed": 0}
        if typ not in want:
            raise ParseError(f"{where}: unknown top-level block {typ}")
        if len(labels) != want[typ]:
            raise ParseError(f"{where}: {typ} takes {want[typ]} label(s), has {len(labels)}")
        table = {"variable": self.variables, "output": self.outputs, "module": self.calls}.get(typ)
        if typ == "resource":
            table, key = self.resources, ".".join(labels)
        elif typ == "data":
            table, key = self.data, ".".join(labels)
        elif labels:
            key = labels[0]
        if typ == "locals":
            for a in body:
                if a[0] == "attr":
                    if a[1] in self.locals:
                        raise ParseError(f"{fname}:{a[3]}: local.{a[1]} declared twice")
                    self.locals[a[1]] = (fname, a)
            return
        if table is not None:
            if key in table:
                raise ParseError(f"{where}: {typ} {key} declared twice")
            table[key] = (fname, it)
        if typ == "variable":
            self.var_default[key] = any(a[0] == "attr" and a[1] == "default" for a in body)


def walk_exprs(items, ctx, parent=None):
    """(expr, ctx) for every attribute that holds references, ctx: {'count': bool, 'each': bool}
    of the enclosing resource/data/module block.  A variable's type constraint and lifecycle's
    ignore_changes hold bare names that are no references."""
    for it in items:
        if it[0] == "attr":
            if (parent, it[1]) not in (("variable", "type"), ("lifecycle", "ignore_changes")):
                yield it[2], ctx, it[1]
        else:
            inner = ctx
            if it[1] in ("resource", "data", "module"):
                names = {a[1] for a in it[3] if a[0] == "attr"}
                inner = {"count": "count" in names, "each": "for_each" in names}
            if it[1] == "dynamic":  # its iterator (the label, or `iterator = NAME`) is bound inside
                names = [a[2][0][1] for a in it[3] if a[0] == "attr" and a[1] == "iterator"]
                inner = dict(ctx, bound=set(ctx.get("bound", ())) | {names[0] if names else it[2][0]})
            yield from walk_exprs(it[3], inner, it[1])


def object_keys(expr, mod, callers, errs):
    """The keys an expression gives as an object: literals, merge(), var.X through callers.
    None when it cannot tell."""
    while expr and expr[0][0] == "nl":
        expr = expr[1:]
    while expr and expr[-1][0] == "nl":
        expr = expr[:-1]
    if not expr:
        return None
    if expr[0][:2] == ("op", "{") and expr[-1][:2] == ("op", "}"):
        keys, depth = set(), 0
        for j, (k, v, _) in enumerate(expr):
            if k == "op" and v in OPEN:
                depth += 1
            elif k == "op" and v in CLOSE:
                depth -= 1
            elif depth == 1 and k in ("id", "str") and j + 1 < len(expr) and \
                    expr[j + 1][:2] in (("op", "="), ("op", ":")) and \
                    (expr[j - 1][0] == "nl" or expr[j - 1][:2] in (("op", "{"), ("op", ","))):
                keys.add(v)
        return keys
    if expr[0][:2] == ("id", "merge") and expr[1][:2] == ("op", "("):
        keys, args, depth, cur = set(), [], 0, []
        for t in expr[2:-1]:
            if t[0] == "op" and t[1] in OPEN:
                depth += 1
            elif t[0] == "op" and t[1] in CLOSE:
                depth -= 1
            if depth == 0 and t[:2] == ("op", ","):
                args.append(cur)
                cur = []
            else:
                cur.append(t)
        if cur:
            args.append(cur)
        for a in args:
            k = object_keys(a, mod, callers, errs)
            if k is None:
                return None
            keys |= k
        return keys
    if [t[0] for t in expr] == ["id", "op", "id"] and expr[0][:2] == ("id", "var") and expr[1][:2] == ("op", "."):
        name, keys = expr[2][1], None
        for (cmod, call_items) in callers.get(mod.path, []):
            for a in call_items:
                if a[0] == "attr" and a[1] == name:
                    k = object_keys(a[2], cmod, callers, errs)
                    if k is None:
                        return None
                    keys = k if keys is None else keys & k
        return keys
    return None


def template_names(path):
    with open(path, encoding="utf-8") as fh:
        toks = tokenize(fh.read(), path, template=True)
    return {root for root, _, _, bound in traversals(toks) if not bound}


def check(root_dir):
    errs = []
    mods, callers, queue = {}, {}, [os.path.normpath(root_dir)]
    while queue:
        p = queue.pop()
        if p in mods:
            continue
        mods[p] = Module(p)
        for name, (fname, it) in mods[p].calls.items():
            src = [a for a in it[3] if a[0] == "attr" and a[1] == "source"]
            if not src or src[0][2][0][0] != "str" or src[0][2][0][1] is None:
                errs.append(f"{fname}:{it[4]}: module {name}: source must be a literal string")
                continue
            s = src[0][2][0][1]
            if not s.startswith(("./", "../")):
                continue  # a registry module: not checked here
            child = os.path.normpath(os.path.join(p, s))
            if not os.path.isdir(child):
                errs.append(f"{fname}:{it[4]}: module {name}: {s} is not a directory")
                continue
            callers.setdefault(child, []).append((mods[p], it[3]))
            queue.append(child)

    for p, m in mods.items():
        used_vars, used_locals = set(), set()
        for fname, it in m.items:
            for expr, ctx, attr in walk_exprs([it], {"count": False, "each": False}):
                for root, parts, line, bound in traversals(expr):
                    where = f"{fname}:{line}"
                    if bound or root in ctx.get("bound", ()):
                        continue
                    if root == "var":
                        used_vars.add(parts[0] if parts else "")
                        if not parts or parts[0] not in m.variables:
                            errs.append(f"{where}: var.{parts[0] if parts else ''} is not a declared variable")
                    elif root == "local":
                        used_locals.add(parts[0] if parts else "")
                        if not parts or parts[0] not in m.locals:
                            errs.append(f"{where}: local.{parts[0] if parts else ''} is not a declared local value")
                    elif root == "module":
                        if not parts or parts[0] not in m.calls:
                            errs.append(f"{where}: module.{parts[0] if parts else ''} is not a module call")
                            continue
                        cfile, cit = m.calls[parts[0]]
                        src = [a for a in cit[3] if a[0] == "attr" and a[1] == "source"]
                        child = os.path.normpath(os.path.join(p, src[0][2][0][1])) if src else None
                        outs = [x for x in parts[1:] if x != "[]"]
                        if child in mods and outs and outs[0] not in mods[child].outputs:
                            errs.append(f"{where}: module.{parts[0]}.{outs[0]}: {child} has no output {outs[0]}")
                    elif root == "data":
                        key = ".".join(parts[:2])
                        if key not in m.data:
                            errs.append(f"{where}: data.{key} is not a declared data source")
                    elif root in ("count", "each"):
                        if not ctx.get(root):
                            errs.append(f"{where}: {root}.{'.'.join(parts)} outside a block with "
                                        f"{'count' if root == 'count' else 'for_each'}")
                    elif root in BUILTIN_ROOTS:
                        pass
                    elif parts and parts[0] not in ("[]", "*") and "_" in root:
                        key = f"{root}.{parts[0]}"
                        if key not in m.resources:
                            errs.append(f"{where}: {key} is not a declared resource")
                    else:
                        errs.append(f"{where}: unknown name {root}")
                # templatefile(PATH, VARS)
                for j, t in enumerate(expr):
                    if t[:2] == ("id", "templatefile") and j + 1 < len(expr) and expr[j + 1][:2] == ("op", "("):
                        check_templatefile(expr, j, fname, m, callers, errs)
        for v, (fname, it) in m.variables.items():
            if v not in used_vars:
                errs.append(f"{fname}:{it[4]}: variable {v} is declared but never used")
        for v, (fname, a) in m.locals.items():
            if v not in used_locals:
                errs.append(f"{fname}:{a[3]}: local.{v} is declared but never used")
        # module calls against the called module's variables
        for name, (fname, it) in m.calls.items():
            src = [a for a in it[3] if a[0] == "attr" and a[1] == "source"]
            if not src or src[0][2][0][1] is None:
                continue
            child = os.path.normpath(os.path.join(p, src[0][2][0][1]))
            if child not in mods:
                continue
            given = {a[1] for a in it[3] if a[0] == "attr"} - META_ARGS
            for a in sorted(given - set(mods[child].variables)):
                errs.append(f"{fname}:{it[4]}: module {name}: {child} has no variable {a}")
            for v, has_default in mods[child].var_default.items():
                if not has_default and v not in given:
                    errs.append(f"{fname}:{it[4]}: module {name}: required variable {v} is not given")
    return errs, mods


def check_templatefile(expr, j, fname, m, callers, errs):
    line = expr[j][2]
    args, depth, cur = [], 0, []
    for t in expr[j + 2:]:
        if t[0] == "op" and t[1] in OPEN:
            depth += 1
        elif t[0] == "op" and t[1] in CLOSE:
            if depth == 0:
                break
            depth -= 1
        if depth == 0 and t[:2] == ("op", ","):
            args.append(cur)
            cur = []
        else:
            cur.append(t)
    args.append(cur)
    if len(args) != 2:
        errs.append(f"{fname}:{line}: templatefile takes 2 arguments")
        return
    path_expr = [t for t in args[0] if t[0] != "nl"]
    tpl = None
    # "${path.module}/x" or a var.X whose callers give "${path.module}/x"
    tpl_exprs = [(path_expr, m)]
    if len(path_expr) == 3 and path_expr[0][:2] == ("id", "var"):
        tpl_exprs = [(a[2], cm) for cm, items in callers.get(m.path, [])
                     for a in items if a[0] == "attr" and a[1] == path_expr[2][1]]
    for pe, pm in tpl_exprs:
        pe = [t for t in pe if t[0] != "nl"]
        # str(None) ( ( path . module ) ) ... : the template string's literal tail is lost in
        # tokens, so re-read it from the source line
        with open(fname if pm is m else _file_of(pm, pe), encoding="utf-8") as fh:
            src_line = fh.read().splitlines()[pe[0][2] - 1]
        mm = re.search(r'"\$\{path\.module\}/([^"]+)"', src_line)
        if not mm:
            errs.append(f"{fname}:{line}: templatefile path must be \"${{path.module}}/...\"")
            continue
        tpl = os.path.join(pm.path, mm.group(1))
        if not os.path.isfile(tpl):
            errs.append(f"{fname}:{line}: template {tpl} does not exist")
            continue
        try:
            used = template_names(tpl)
        except ParseError as e:
            errs.append(str(e))
            continue
        given = object_keys(args[1], m, callers, errs)
        if given is None:
            errs.append(f"{fname}:{line}: cannot tell which variables templatefile gives {tpl}")
            continue
        for n in sorted(used - given):
            errs.append(f"{tpl}: uses {n}, which templatefile ({fname}:{line}) does not give")
        for n in sorted(given - used):
            errs.append(f"{tpl}: never uses {n}, which templatefile ({fname}:{line}) gives")


def _file_of(mod, expr):
    line = expr[0][2]
    for fname, it in mod.items:
        if it[0] == "block" and it[1] == "module":
            for a in it[3]:
                if a[0] == "attr" and a[2] and a[2][0][2] == line:
                    return fname
    return mod.items[0][0]


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        errs, mods = check(sys.argv[1])
    except (ParseError, OSError) as e:
        print(f"check-refs: {e}")
        return 1
    for e in errs:
        print(f"check-refs: {e}")
    n_res = sum(len(m.resources) for m in mods.values())
    n_var = sum(len(m.variables) for m in mods.values())
    print(f"check-refs: {len(mods)} module(s), {n_res} resources, {n_var} variables: "
          f"{'clean' if not errs else f'{len(errs)} finding(s)'}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
