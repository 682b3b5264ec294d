#!/usr/bin/env bash
# Backs up the PostgreSQL cluster with pgBackRest through `infractl backup` (docs/backups.md).
#
#   scripts/backup_database.sh [--type full|diff|incr] [INFRACTL OPTIONS...]
#   scripts/backup_database.sh list [--json]
#
# Arguments go to `infractl backup` as they are (default type: incr; a full one is made when
# the repository has none).  Unattended: exit 0 on success, 1 on failure, 2 on a usage error,
# 127 when no infractl is found (the message says what a host without one needs); metrics for
# node-exporter are written either way.  INFRACTL=/path/to/infractl overrides the lookup.
set -euo pipefail
# shellcheck source=scripts/infractl_locate.sh
. "$(dirname "${BASH_SOURCE[0]}")/infractl_locate.sh"
infractl_locate
exec "$INFRACTL" backup "$@"
