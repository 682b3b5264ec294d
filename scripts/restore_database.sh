#!/usr/bin/env bash
# Point-in-time restore of the PostgreSQL cluster into a scratch directory, through
# `infractl restore` (docs/backups.md).  Never touches the live cluster.
#
#   scripts/restore_database.sh --to 'YYYY-MM-DD HH:MM:SS+00' --into DIR [--port P] [--json]
#
# Starts a scratch postgres on 127.0.0.1:P (default 5440) in DIR once recovery reached the
# target.  Exit 0 restored, 1 failed or refused (a DIR that is not empty or is live, a target
# before the oldest backup or in the future), 2 usage, 127 when no infractl is found (the
# message says what a host without one needs).  INFRACTL=/path/to/infractl overrides the lookup.
set -euo pipefail
# shellcheck source=scripts/infractl_locate.sh
. "$(dirname "${BASH_SOURCE[0]}")/infractl_locate.sh"
infractl_locate
exec "$INFRACTL" restore "$@"
