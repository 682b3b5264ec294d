#!/usr/bin/env bash
# deploy_staging.sh - deploys a release to staging: push over ssh with docker-compose, then the
# flag's rollout in rolloutd's `staging` environment (straight to full unless --canary), rolled
# back when a health check fails.  CI runs it on every push to `develop`
# (.github/workflows/ci.yml, job deploy-staging).  `--help` for the options, docs/deploy.md for
# the inventory and the whole pipeline.
#
#   deploy_staging.sh --inventory staging.inv --release "$GITHUB_SHA" --flag model.v2 --bake 60
set -uo pipefail
# shellcheck source=infrastructure/scripts/deploy_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
DEPLOY_NAME=deploy_staging.sh
deploy_defaults staging
BAKE=60
INTERVAL=10
deploy_main "$@"
