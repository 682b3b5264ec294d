#!/usr/bin/python3
"""check-deps.py - every external command and Python module that the project's scripts, tests,
CI and local stack use must come from a Debian package that scripts/install-deps.sh lists (or
from Debian's base system: Essential or Priority required packages), so a brand-new machine
gets them from the install script rather than by luck of the image.

Shell files are parsed with shfmt's JSON syntax tree (a real parser, not a regex); the command
word of every call is taken, also inside $(...), pipelines, `bash -c '...'` strings, shell
heredocs, and the test helpers that take a command (ok DESC CMD..., retry SECS CMD...).
Python files (and Python heredocs) are scanned for imports, resolved with Debian's
/usr/bin/python3.  JavaScript test drivers (*.js, *.mjs) are scanned for the programs they name
by absolute path (e.g. playwright-core's executablePath: '/usr/bin/chromium').  Commands are resolved on the system PATH (not a user's ~/.pyenv or ~/go).

Usage: check-deps.py [--without PKG]... [REPO_ROOT]
       exit 0 = consistent, 1 = problems listed.  --without drops PKG from the lists, so a test
       can show that the check fails when a package the tests need is not listed.
"""
import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

ARGS = sys.argv[1:]
WITHOUT = set()
while len(ARGS) >= 2 and ARGS[0] == "--without":
    WITHOUT.add(ARGS[1])
    ARGS = ARGS[2:]
ROOT = os.path.abspath(ARGS[0] if ARGS else os.path.join(os.path.dirname(__file__), ".."))
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Commands used only when present, with the reason.
OPTIONAL = {"sudo": "install-deps.sh uses it only when it does not run as root"}

# Test helpers (tests/integration/lib.sh) and wrappers whose arguments hold a command:
# name -> number of leading arguments before the command word (None: skip options first).
WRAPPERS = {"ok": 1, "retry": 1, "timeout": None, "xargs": None, "exec": 0, "command": None,
            "nohup": 0, "env": None, "sudo": None, "nice": None, "setsid": None, "time": 0,
            "runuser": None, "stdbuf": None}


def repo_files(wanted):
    """Files of the checkout (no build trees, state dirs or node_modules) that wanted() takes."""
    out = []
    for d, _, names in os.walk(ROOT):
        rel = os.path.relpath(d, ROOT)
        if rel.startswith((".git", "build", ".infra", ".cache")) or "node_modules" in rel:
            continue
        # Scripts that run inside the compose services' images (their commands come with the
        # pinned image, not from this machine); compose.sh itself, one level up, runs here.
        if rel.startswith("infrastructure/compose/"):
            continue
        out += [os.path.join(d, n) for n in names if wanted(rel, n)]
    return sorted(out)


def sh_files():
    return repo_files(lambda rel, n: n.endswith(".sh") or (rel == ".ci" and not n.startswith(".")))


def py_files():
    return repo_files(lambda rel, n: n.endswith(".py"))


def js_files():
    return repo_files(lambda rel, n: n.endswith((".js", ".mjs")))


def shfmt_ast(text, where):
    r = subprocess.run(["shfmt", "--tojson"], input=text.encode(), capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"{where}: shfmt cannot parse it: {r.stderr.decode().strip()}")
    return json.loads(r.stdout)


def word_literal(w):
    """The word's text when it is made of literals and quoted literals only, else None."""
    if not w:
        return None
    s = ""
    for p in w.get("Parts", []):
        t = p.get("Type")
        if t in ("Lit", "SglQuoted"):
            s += p.get("Value", "")  # shfmt leaves out an empty one ('')
        elif t == "DblQuoted":
            inner = word_literal(p)
            if inner is None:
                return None
            s += inner
        else:
            return None
    return s


def word_text(w):
    """The word's text with every expansion replaced by 'X' (for suffix checks)."""
    s = ""
    for p in (w or {}).get("Parts", []):
        t = p.get("Type")
        if t in ("Lit", "SglQuoted"):
            s += p.get("Value", "")  # shfmt leaves out an empty value ('')
        elif t == "DblQuoted":
            s += word_text(p)
        else:
            s += "X"
    return s


class ShellScan:
    def __init__(self):
        self.calls = []      # (command, file, line)
        self.functions = set()
        self.py_snippets = []  # (text, file, line)

    def scan_text(self, text, where, line0=0):
        tree = shfmt_ast(text, where)
        self.walk(tree, where, line0)

    def walk(self, node, where, line0):
        if isinstance(node, list):
            for x in node:
                self.walk(x, where, line0)
            return
        if not isinstance(node, dict):
            return
        t = node.get("Type")
        if t == "FuncDecl":
            self.functions.add(node["Name"]["Value"])
        if "Cmd" in node and isinstance(node.get("Redirs"), list):
            self.heredocs(node, where, line0)
        if t == "CallExpr" and node.get("Args"):
            self.call(node["Args"], where, line0 + node["Pos"]["Line"])
        for k, v in node.items():
            if k in ("Pos", "End"):
                continue
            self.walk(v, where, line0)

    def call(self, args, where, line):
        words = [word_literal(a) for a in args]
        i = 0
        while i < len(words):
            w = words[i]
            if w is None:
                return
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w):  # env VAR=x CMD
                i += 1
                continue
            self.calls.append((w, where, line))
            if w in ("bash", "sh") and "-c" in words[i + 1:]:
                k = words.index("-c", i + 1)
                if k + 1 < len(words) and words[k + 1]:
                    self.scan_text(words[k + 1], where, line - 1)
                return
            if w not in WRAPPERS:
                return
            skip = WRAPPERS[w]
            i += 1
            if skip is None:  # options (and timeout's duration) first
                while i < len(words) and words[i] is not None and (
                        words[i].startswith("-") or re.match(r"^[0-9.]+[smh]?$", words[i])
                        or (w == "env" and "=" in words[i])):
                    i += 1
            else:
                i += skip

    def heredocs(self, stmt, where, line0):
        cmd = stmt.get("Cmd") or {}
        args = [word_literal(a) for a in cmd.get("Args", [])] if cmd.get("Type") == "CallExpr" else []
        for r in stmt.get("Redirs", []):
            if not r.get("Hdoc"):
                continue
            body = "".join(p.get("Value", "") for p in r["Hdoc"].get("Parts", [])
                           if p.get("Type") == "Lit")
            targets = [word_text(x.get("Word")) for x in stmt["Redirs"] if x is not r]
            line = line0 + r["Pos"]["Line"]
            prog = (args[0] if args else "") or ""
            if prog.endswith(("python3", "python")) or any(x.endswith(".py") for x in targets):
                self.py_snippets.append((body, where, line))
            elif prog in ("bash", "sh") or any(x.endswith(".sh") for x in targets):
                self.scan_text(body, where, line)


def makefile_recipes(path):
    """Recipe lines of a Makefile as shell text, make variables replaced by a word."""
    lines, out, i = open(path).read().splitlines(), [], 0
    while i < len(lines):
        if lines[i].startswith("\t"):
            s = lines[i][1:].lstrip("@-+")
            while s.endswith("\\") and i + 1 < len(lines):
                i += 1
                s = s[:-1] + " " + lines[i].strip()
            s = re.sub(r"\$\(([A-Z_]+)\)", r"MAKEVAR_\1", s).replace("$$", "$")
            out.append(s)
        i += 1
    return "\n".join(out)


def stack_commands(path):
    """command[0] of every service of a stack file, with its line."""
    out = []
    lines = open(path).read().splitlines()
    for n, l in enumerate(lines, 1):
        m = re.match(r"^    command:\s*\[([^,\]]+)", l)  # a service's own command
        if not m and re.match(r"^    command:\s*$", l) and n < len(lines):
            m = re.match(r"^\s+-\s*(\S+)", lines[n])
        if m:
            out.append((m.group(1).strip().strip('"'), path, n))
    return out


def dpkg_owner(path):
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")):
            if p.startswith(a):
                cands.append(b + p[len(a):])
            elif p.startswith(b):
                cands.append(a + p[len(b):])
    for p in cands:
        r = subprocess.run(["dpkg-query", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].split(",")[0].strip()
    return None


def base_system(pkg, cache={}):
    if pkg not in cache:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Essential} ${Priority}", pkg],
                           capture_output=True, text=True)
        cache[pkg] = r.returncode == 0 and (r.stdout.startswith("yes") or
                                            r.stdout.endswith("required"))
    return cache[pkg]


def listed_packages():
    """The packages install-deps.sh lists (every set) and everything they depend on."""
    r = subprocess.run([os.path.join(ROOT, "scripts/install-deps.sh"), "--list", "all"],
                       capture_output=True, text=True, check=True)
    pkgs = set(r.stdout.split()) | {"nodejs", "npm"}  # listed when no node with npm is there
    pkgs -= WITHOUT
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                       + sorted(pkgs), capture_output=True, text=True)
    closure = {l.strip() for l in r.stdout.splitlines() if l and not l[0].isspace()}
    return pkgs | {p.split(":")[0] for p in closure if not p.startswith("<")} - WITHOUT


def builtins():
    r = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], capture_output=True, text=True)
    return set(r.stdout.split())


def python_imports(text):
    mods = set()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return mods
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            mods |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            mods.add(n.module.split(".")[0])
    return mods


def python_module_origin(mod):
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import importlib.util,sys; s=importlib.util.find_spec(sys.argv[1]);"
                        "print(s.origin if s and s.origin else ('' if s else '-'))", mod],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "-"


def main():
    problems = []
    listed = listed_packages()
    known = builtins()
    scan = ShellScan()
    for f in sh_files():
        scan.scan_text(open(f).read(), os.path.relpath(f, ROOT))
    scan.scan_text(makefile_recipes(os.path.join(ROOT, "Makefile")), "Makefile")
    calls = list(scan.calls)
    for f in py_files():  # the programs our Python scripts run through subprocess
        for n, line in enumerate(open(f), 1):
            for m in re.finditer(r"subprocess\.\w+\(\s*\[\s*\"([^\"]+)\"", line):
                calls.append((m.group(1), os.path.relpath(f, ROOT), n))
    for f in js_files():  # programs a node script starts by path (a browser, say)
        for n, line in enumerate(open(f), 1):
            for m in re.finditer(r"['\"`](/(?:usr/)?s?bin/[A-Za-z0-9._+-]+)['\"`]", line):
                calls.append((m.group(1), os.path.relpath(f, ROOT), n))
    for f in (os.path.join(ROOT, "infrastructure/local/stack.yml"),):
        calls += [(c, os.path.relpath(f, ROOT), n) for c, _, n in stack_commands(f)]

    seen = {}
    for cmd, where, line in calls:
        if (cmd in known or cmd in scan.functions or cmd in OPTIONAL or cmd.startswith(("$", "MAKEVAR_", "./", "../"))
                or "${" in cmd or cmd in WRAPPERS and cmd in known):
            continue
        if "/" in cmd and not cmd.startswith("/"):
            continue  # a path inside the checkout or the build tree
        seen.setdefault(cmd, (where, line))
    for cmd, (where, line) in sorted(seen.items()):
        path = cmd if cmd.startswith("/") else shutil.which(cmd, path=SYSTEM_PATH)
        if not path or not os.path.exists(path):
            problems.append(f"{where}:{line}: command '{cmd}' is not installed on this machine "
                            f"and no package of scripts/install-deps.sh provides it")
            continue
        if path.startswith(ROOT):
            continue
        pkg = dpkg_owner(path)
        if pkg is None:
            problems.append(f"{where}:{line}: command '{cmd}' ({path}) belongs to no Debian "
                            f"package: it came with this machine, a new one will not have it")
        elif pkg not in listed and not base_system(pkg):
            problems.append(f"{where}:{line}: command '{cmd}' comes from Debian package '{pkg}', "
                            f"which scripts/install-deps.sh does not list")

    snippets = [(open(f).read(), os.path.relpath(f, ROOT), 1) for f in py_files()
                if "node_modules" not in f] + scan.py_snippets
    stdlib = set(sys.stdlib_module_names)
    mods = {}
    for text, where, line in snippets:
        for m in python_imports(text):
            mods.setdefault(m, (where, line))
    local = {os.path.splitext(os.path.basename(f))[0] for f in py_files()} | {"tasks"}
    for m, (where, line) in sorted(mods.items()):
        if m in stdlib or m in local:
            continue
        origin = python_module_origin(m)
        if origin == "-":
            problems.append(f"{where}:{line}: Python module '{m}' is not importable by "
                            f"/usr/bin/python3 and no package of scripts/install-deps.sh "
                            f"provides it")
            continue
        pkg = dpkg_owner(origin) if origin else None
        if pkg is None:
            problems.append(f"{where}:{line}: Python module '{m}' ({origin or 'namespace'}) "
                            f"belongs to no Debian package")
        elif pkg not in listed and not base_system(pkg):
            problems.append(f"{where}:{line}: Python module '{m}' comes from Debian package "
                            f"'{pkg}', which scripts/install-deps.sh does not list")

    for p in problems:
        print(p)
    print(f"# {len(seen)} commands, {len(mods)} Python modules checked; "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
