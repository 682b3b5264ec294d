# shellcheck shell=bash
# Sourced by scripts/backup_database.sh and scripts/restore_database.sh: sets INFRACTL to the
# infractl to run, or explains what a host without one needs and exits 127.
#   1. $INFRACTL when set (an absolute path to the binary);
#   2. infractl on PATH;
#   3. build/infractl of the checkout these scripts live in (`make build`).
infractl_locate() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [[ -n ${INFRACTL:-} ]]; then
        [[ -x $INFRACTL ]] || { echo "$0: INFRACTL=$INFRACTL is not an executable" >&2; exit 127; }
    elif type -P infractl >/dev/null; then
        INFRACTL=$(type -P infractl)
    elif [[ -x $here/build/infractl ]]; then
        INFRACTL=$here/build/infractl
    else
        cat >&2 <<MSG
$0: infractl not found (not in \$INFRACTL, not on PATH, not in $here/build).
  Build it: make build (in the checkout), or set INFRACTL=/path/to/infractl.
  infractl reads the stack file (-f, default infrastructure/local/stack.yml of its checkout) and
  the state directory (--state-dir, default .infra of its checkout) to find pgBackRest's
  configuration; pass both through this script's arguments when they live elsewhere.
  Without infractl, pgBackRest itself does the same work, as the postgres user:
    pgbackrest --config=STATE/pgbackrest/pgbackrest.conf --stanza=ultrathink --type=full backup
    pgbackrest --config=STATE/pgbackrest/pgbackrest.conf --stanza=ultrathink --pg1-path=DIR \\
        --type=time "--target=TIME" --target-action=promote --archive-mode=off restore
  (docs/backups.md: the scratch instance's settings that infractl restore adds).
MSG
        exit 127
    fi
}
