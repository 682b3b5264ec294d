#!/usr/bin/env bash
# .github/workflows/ci.yml under actionlint (built from the Go module proxy by
# scripts/install-actionlint.sh; it runs shellcheck on every `run:` block too), plus this
# project's own rules actionlint has no opinion on: every action pinned to a commit SHA, least
# privilege (`permissions: contents: read` at the top, no job widening it), concurrency groups,
# the deploy jobs behind their environments and branches.  Then broken copies must fail: an
# undefined job in `needs`, untrusted `${{ github.event.pull_request.title }}` in a run
# script, a shellcheck finding in a run script, an action pinned by a moving tag.
# No Go and no cached actionlint: skipped (exit 77) with the reason, never passed.
# Usage: test_actionlint.sh SOURCE_DIR
# The bash -c checks below expand $0, $1... in the inner shell, on purpose.
# shellcheck disable=SC2016
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd shellcheck shellcheck # actionlint skips its shellcheck rule silently without it
need_cmd python3 python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/install-deps.sh tests)"
WF=$SRC/.github/workflows/ci.yml

if ! actionlint=$("$SRC/scripts/install-actionlint.sh" 2>"${TMPDIR:-/tmp}/install-actionlint.$$.log"); then
    reason=$(tail -1 "${TMPDIR:-/tmp}/install-actionlint.$$.log")
    rm -f "${TMPDIR:-/tmp}/install-actionlint.$$.log"
    skip "actionlint cannot be built here: $reason"
fi
rm -f "${TMPDIR:-/tmp}/install-actionlint.$$.log"
diag "$("$actionlint" -version | head -1) at $actionlint, $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

tmp=$(mktemp -d /tmp/ut-actionlint-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# lint FILE: actionlint's findings as diagnostics; its exit status.
lint() {
    local rc
    "$actionlint" -no-color "$1" >"$tmp/lint.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/lint.out"
    return $rc
}
ok "actionlint .github/workflows/ci.yml (with shellcheck on the run scripts)" lint "$WF"

# policy FILE: the rules of this project, in Python (PyYAML; `on` is read as True).
cat >"$tmp/policy.py" <<'PY'
import re, sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
bad = []
if wf.get("permissions") != {"contents": "read"}:
    bad.append("top-level permissions must be exactly {contents: read}, not %r" % wf.get("permissions"))
if not wf.get("concurrency", {}).get("group"):
    bad.append("no workflow concurrency group")
jobs = wf.get("jobs", {})
for name, job in jobs.items():
    perms = job.get("permissions")
    # The images job alone may push packages (GHCR with the job's token), nothing else.
    allowed = {"contents": "read", "packages": "write"} if name == "images" else None
    if perms is not None and perms != allowed and any(v == "write" for v in (perms.values() if isinstance(perms, dict) else [perms])):
        bad.append(f"job {name}: asks for write permissions {perms!r}")
    if "timeout-minutes" not in job:
        bad.append(f"job {name}: no timeout-minutes")
    for step in job.get("steps", []):
        uses = step.get("uses")
        if uses and not uses.startswith("./") and not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses):
            bad.append(f"job {name}: '{uses}' is not pinned to a commit SHA")
want = {"deploy-staging": ("staging", "refs/heads/develop"),
        "deploy-production": ("production", "refs/heads/main")}
for name, (env, ref) in want.items():
    job = jobs.get(name)
    if job is None:
        bad.append(f"no job {name}"); continue
    e = job.get("environment")
    if (e.get("name") if isinstance(e, dict) else e) != env:
        bad.append(f"job {name}: environment must be {env} (its protection rules), not {e!r}")
    if ref not in str(job.get("if", "")) or "push" not in str(job.get("if", "")):
        bad.append(f"job {name}: must run only on a push to {ref}, if: {job.get('if')!r}")
    if not job.get("concurrency", {}).get("group") or job["concurrency"].get("cancel-in-progress") is not False:
        bad.append(f"job {name}: needs its own concurrency group with cancel-in-progress: false")
    if "integration" not in job.get("needs", []):
        bad.append(f"job {name}: must need the integration tests")
img = jobs.get("images", {})
img_runs = " ".join(str(st.get("run", "")) for st in img.get("steps", []))
if "github.sha" not in str(img) or "docker push" not in img_runs:
    bad.append("job images: must build and push images tagged with github.sha")
for st in img.get("steps", []):
    if "docker push" in str(st.get("run", "")) and ("push" not in str(st.get("if", "")) or "pull_request" in str(st.get("if", ""))):
        bad.append("job images: pushes outside a push event: if: %r" % st.get("if"))
for name in want:
    if "images" not in jobs.get(name, {}).get("needs", []):
        bad.append(f"job {name}: must need images (it deploys their tags)")
    if "ULTRATHINK_REGISTRY" not in " ".join(str(st.get("run", "")) for st in jobs.get(name, {}).get("steps", [])):
        bad.append(f"job {name}: does not pass the images' registry (ULTRATHINK_REGISTRY)")
if "--canary" not in " ".join(s.get("run", "") for s in jobs.get("deploy-production", {}).get("steps", [])):
    bad.append("job deploy-production: does not run deploy_production.sh --canary")
if jobs.get("integration", {}).get("needs") not in ("build", ["build"]):
    bad.append("job integration: must need build")
if "make up" not in " ".join(s.get("run", "") for s in jobs.get("integration", {}).get("steps", [])):
    bad.append("job integration: does not bring the stack up with make up")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
policy() {
    local rc
    /usr/bin/python3 "$tmp/policy.py" "$1" >"$tmp/policy.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/policy.out"
    return $rc
}
ok "ci.yml follows the project's rules (SHA pins, least privilege, concurrency, environments, branches)" policy "$WF"

# ---- broken copies must fail
cp "$WF" "$tmp/needs.yml"
sed -i '0,/needs: \[build, sanitizers, integration, images\]/s//needs: [build, sanitizers, integration, images, lint]/' "$tmp/needs.yml"
ok "a copy whose deploy job needs an undefined job 'lint' fails actionlint, naming it" \
    bash -c '! "$1" -no-color "$0" >"$0.out" 2>&1 && grep -q "needs job \"lint\" which does not exist" "$0.out"' "$tmp/needs.yml" "$actionlint"

cp "$WF" "$tmp/untrusted.yml"
python3 - "$tmp/untrusted.yml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("      - name: format check\n",
              "      - name: greet\n        run: echo \"building ${{ github.event.pull_request.title }}\"\n"
              "      - name: format check\n", 1)
open(p, "w").write(s)
PY
ok "a copy with \${{ github.event.pull_request.title }} in a run script fails (untrusted input)" \
    bash -c '! "$1" -no-color "$0" >"$0.out" 2>&1 && grep -q "potentially untrusted" "$0.out"' "$tmp/untrusted.yml" "$actionlint"

cp "$WF" "$tmp/shellcheck.yml"
sed -i '0,/run: scripts\/check-banned.sh/s//run: cd $GITHUB_WORKSPACE \&\& scripts\/check-banned.sh/' "$tmp/shellcheck.yml"
ok "a copy with an unquoted \$GITHUB_WORKSPACE in a run script fails (shellcheck SC2086 via actionlint)" \
    bash -c '! "$1" -no-color "$0" >"$0.out" 2>&1 && grep -q "SC2086" "$0.out"' "$tmp/shellcheck.yml" "$actionlint"

cp "$WF" "$tmp/tag.yml"
sed -i '0,/uses: actions\/checkout@[0-9a-f]*/s//uses: actions\/checkout@v4/' "$tmp/tag.yml"
ok "a copy with actions/checkout@v4 (a moving tag) fails the pinning rule" \
    bash -c '! /usr/bin/python3 "$1" "$0" >"$0.out" 2>&1 && grep -q "checkout@v4.* is not pinned" "$0.out"' "$tmp/tag.yml" "$tmp/policy.py"

cp "$WF" "$tmp/perms.yml"
sed -i '0,/^  contents: read$/s//  contents: write/' "$tmp/perms.yml"
cp "$WF" "$tmp/pkgs.yml"
python3 - "$tmp/pkgs.yml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("    container: debian:12\n    timeout-minutes: 60\n", "    container: debian:12\n    timeout-minutes: 60\n    permissions:\n      contents: read\n      packages: write\n", 1)
open(p, "w").write(s)
PY
ok "a copy giving the build job packages: write fails the least-privilege rule (images alone may)" \
    bash -c '! /usr/bin/python3 "$1" "$0" >"$0.out" 2>&1 && grep -q "job build: asks for write" "$0.out"' "$tmp/pkgs.yml" "$tmp/policy.py"
cp "$WF" "$tmp/prpush.yml"
python3 - "$tmp/prpush.yml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"(      - name: push \(main, develop\)\n        if: ).*\n", r"\1${{ github.event_name == 'pull_request' }}\n", s, count=1)
open(p, "w").write(s)
PY
ok "a copy pushing images from pull requests fails" \
    bash -c '! /usr/bin/python3 "$1" "$0" >"$0.out" 2>&1 && grep -q "pushes outside a push event" "$0.out"' "$tmp/prpush.yml" "$tmp/policy.py"

ok "a copy with contents: write at the top fails the least-privilege rule" \
    bash -c '! /usr/bin/python3 "$1" "$0" >/dev/null 2>&1' "$tmp/perms.yml" "$tmp/policy.py"
t_done
