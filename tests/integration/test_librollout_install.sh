#!/usr/bin/env bash
# librollout as an installed library: `cmake --install` (what `make install PREFIX=...` runs)
# into a temporary prefix, then a small C program built against the INSTALLED header and
# libraries through pkg-config, dynamically and statically, evaluating flags from a bootstrap
# snapshot file.  Also: SONAME, librollout.so exports exactly include/rollout.h's functions,
# librollout.a defines no other global symbol.
# usage: test_librollout_install.sh BUILD_DIR CMAKE CC SOURCE_DIR [EXTRA_CFLAGS]
set -uo pipefail
build=$1 cmake=$2 cc=$3 src=$4 extra=${5-}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need_cmd pkg-config pkg-config
need_cmd nm binutils
need_cmd readelf binutils

tmp=$(mktemp -d /tmp/ut-librollout-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix" # pkg-config output is split at spaces: none here

"$cmake" --install "$build" --prefix "$prefix" --component rollout >"$tmp/install.log" 2>&1
rc=$?
ok "cmake --install --component rollout" test $rc -eq 0
((rc == 0)) || sed 's/^/# /' "$tmp/install.log"
for f in include/rollout.h lib/librollout.a lib/librollout.so lib/librollout.so.0 \
    lib/pkgconfig/rollout.pc; do
    ok "installed $f" test -e "$prefix/$f"
done
ok "nothing else installed" test "$(find "$prefix" -type f -o -type l | wc -l)" -eq 6

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
libdir=$(pkg-config --variable=libdir rollout)
ok "rollout.pc points at the prefix installed to" test "$libdir" = "$prefix/lib"
ok "SONAME is librollout.so.0" bash -c \
    "readelf -d '$prefix/lib/librollout.so' | grep -q 'Library soname: \[librollout.so.0\]'"

# The header's functions, from the preprocessed header (comments gone).
"$cc" -E -P -x c "$prefix/include/rollout.h" 2>/dev/null | grep -oE '\brollout_[a-z0-9_]+ *\(' |
    tr -d '( ' | sort -u >"$tmp/api"
nm -D --defined-only "$prefix/lib/librollout.so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
    sed 's/@.*//' | sort -u >"$tmp/so"
ok "header declares the API ($(wc -l <"$tmp/api") functions)" test "$(wc -l <"$tmp/api")" -gt 40
ok "librollout.so exports exactly the header's functions" diff "$tmp/api" "$tmp/so"
nm -g --defined-only "$prefix/lib/librollout.a" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/a"
ok "librollout.a defines no global symbol outside the header" diff "$tmp/api" "$tmp/a"

cat >"$tmp/snapshot.json" <<'JSON'
{"version": 7, "env": "production", "segments": [], "flags": [
  {"key": "new-checkout", "environments": {"production": {"stage": "full"}}},
  {"key": "dark-mode", "rules": [{"attribute": "plan", "op": "eq", "value": "pro", "variant": "candidate"}],
   "environments": {"production": {"stage": "off"}}},
  {"key": "killed", "environments": {"production": {"stage": "full", "kill": true}}},
  {"key": "price", "type": "number", "variants": {"control": 10, "candidate": 12.5},
   "environments": {"production": {"stage": "full"}}}]}
JSON
cat >"$tmp/prog.c" <<'C'
#include <rollout.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    struct rollout_client_options o = { .env = "production", .bootstrap_path = argv[1] };
    struct rollout_attr pro[] = { ROLLOUT_ATTR_STRING("plan", "pro") };
    struct rollout_ctx ctx_pro = ROLLOUT_CTX("user-1", pro, 1), ctx = ROLLOUT_CTX("user-2", NULL, 0);
    struct rollout_client_status st;
    struct rollout_snapshot *snap = NULL;
    struct rollout_result res;
    struct rollout_client *c;
    char variant[64];
    int r;

    if (argc != 2)
        return 2;
    r = rollout_client_new(&o, &c, NULL);
    if (r < 0) {
        fprintf(stderr, "rollout_client_new: %d\n", r);
        return 1;
    }
    rollout_client_status(c, &st);
    printf("version=%llu new-checkout=%d dark-mode(pro)=%d dark-mode=%d killed=%d missing=%d "
           "price=%g variant=%s\n",
           (unsigned long long)st.version, rollout_client_bool(c, "new-checkout", &ctx, false, NULL),
           rollout_client_bool(c, "dark-mode", &ctx_pro, false, NULL),
           rollout_client_bool(c, "dark-mode", &ctx, false, NULL),
           rollout_client_bool(c, "killed", &ctx, false, NULL),
           rollout_client_bool(c, "missing", &ctx, true, NULL),
           rollout_client_number(c, "price", &ctx, 0, NULL),
           rollout_client_variant(c, "dark-mode", &ctx_pro, variant, sizeof variant, "?", NULL));
    rollout_client_free(c);

    /* The engine directly: load, evaluate, bucket. */
    r = rollout_snapshot_load(argv[1], &snap, NULL);
    if (r < 0)
        return 1;
    r = rollout_eval(snap, "dark-mode", &ctx_pro, ROLLOUT_TYPE_BOOLEAN, &res);
    printf("eval=%d reason=%s flags=%zu bucket=%u\n", r, rollout_reason_name(res.reason),
           rollout_snapshot_n_flags(snap), (unsigned)rollout_bucket("spike-flag", "user-1"));
    rollout_snapshot_unref(snap);
    return 0;
}
C
want="version=7 new-checkout=1 dark-mode(pro)=1 dark-mode=0 killed=0 missing=1 price=12.5 variant=candidate
eval=0 reason=TARGETING_MATCH flags=4 bucket=21024"

# shellcheck disable=SC2046,SC2086
"$cc" $extra -std=c17 -Wall -Werror -o "$tmp/prog_dyn" "$tmp/prog.c" $(pkg-config --cflags rollout) \
    $(pkg-config --libs rollout) -Wl,-rpath,"$libdir" >"$tmp/cc.log" 2>&1
rc=$?
ok "C program builds against the installed librollout.so (pkg-config)" test $rc -eq 0
((rc == 0)) || sed 's/^/# /' "$tmp/cc.log"
ok "it links librollout.so.0" bash -c "readelf -d '$tmp/prog_dyn' | grep -q 'NEEDED.*librollout.so.0'"
out=$("$tmp/prog_dyn" "$tmp/snapshot.json" 2>&1)
ok "dynamic: flags evaluated from the bootstrap snapshot" test "$out" = "$want"
[[ $out == "$want" ]] || diag "got: $out"

# Static librollout, shared system libraries (what a service does; `pkg-config --static` would
# want static libcurl and its whole chain): the archive in place of -lrollout, plus the
# packages rollout.pc names in Requires.private.
deps=$(pkg-config --print-requires-private rollout | tr '\n' ' ')
ok "rollout.pc requires jansson and libcurl (private)" test "$deps" = "jansson libcurl "
# shellcheck disable=SC2086
static_libs="$(pkg-config --libs $deps) -pthread -lm"
# shellcheck disable=SC2046,SC2086
"$cc" $extra -std=c17 -Wall -Werror -o "$tmp/prog_static" "$tmp/prog.c" \
    $(pkg-config --cflags rollout) "$libdir/librollout.a" $static_libs >"$tmp/cc.log" 2>&1
rc=$?
ok "C program builds against the installed librollout.a" test $rc -eq 0
((rc == 0)) || sed 's/^/# /' "$tmp/cc.log"
ok "it does not need librollout.so" bash -c \
    "test -x '$tmp/prog_static' && ! readelf -d '$tmp/prog_static' | grep -q librollout"
out=$("$tmp/prog_static" "$tmp/snapshot.json" 2>&1)
ok "static: flags evaluated from the bootstrap snapshot" test "$out" = "$want"
[[ $out == "$want" ]] || diag "got: $out"

t_done
