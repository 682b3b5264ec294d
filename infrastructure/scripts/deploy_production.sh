#!/usr/bin/env bash
# deploy_production.sh - deploys a release to production: push over ssh with docker-compose,
# then, with --canary, the flag's rollout in rolloutd's `production` environment as canary
# (5%) -> partial (50%) -> full, each stage watched for --bake seconds (default 300) and rolled
# back (stage off, else the kill switch; exit 4) as soon as a health check fails.  CI runs it
# with --canary on every push to `main` (.github/workflows/ci.yml, job deploy-production,
# behind the `production` environment's protection rules).  `--help` for the options,
# docs/deploy.md for the inventory and the whole pipeline.
#
#   deploy_production.sh --canary --inventory prod.inv --release v1.4.0 --flag model.v2
set -uo pipefail
# shellcheck source=infrastructure/scripts/deploy_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
DEPLOY_NAME=deploy_production.sh
deploy_defaults production
deploy_main "$@"
