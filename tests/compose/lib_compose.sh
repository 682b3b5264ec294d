# shellcheck shell=bash
# Shared by the compose tests (sourced): the -f lists users run, and docker-compose offline.
# INFRA must be set (the infrastructure directory being checked).

# The combinations documented in docs/deploy-compose.md (compose/compose.sh builds the same).
# NAME|FILES (relative to INFRA, base first)|PROFILE
# shellcheck disable=SC2034  # read by the tests that source this file
COMBOS=(
    "base|docker-compose.yml|"
    "timescale|docker-compose.yml docker-compose-timescale.yml|"
    "kafka|docker-compose.yml docker-compose-kafka.yml|"
    "redis|docker-compose.yml docker-compose-redis.yml|"
    "monitoring|docker-compose.yml docker-compose-monitoring.yml|"
    "monitoring+gpu|docker-compose.yml docker-compose-monitoring.yml|gpu"
    "all|docker-compose.yml docker-compose-timescale.yml docker-compose-kafka.yml docker-compose-redis.yml docker-compose-monitoring.yml|"
    "all+gpu|docker-compose.yml docker-compose-timescale.yml docker-compose-kafka.yml docker-compose-redis.yml docker-compose-monitoring.yml|gpu"
    "all+test|docker-compose.yml docker-compose-timescale.yml docker-compose-kafka.yml docker-compose-redis.yml docker-compose-monitoring.yml docker-compose-test.yml|"
)

# dc DIR ENVFILE FILES PROFILE ARGS...: docker-compose on DIR's files, settings from ENVFILE
# only (a developer's own infrastructure/.env must not change the verdict), no engine needed.
dc() {
    local dir=$1 envfile=$2 files=$3 profile=$4 f
    shift 4
    local args=(--project-directory "$dir" --env-file "$envfile")
    for f in $files; do args+=(-f "$dir/$f"); done
    [[ -n $profile ]] && args+=(--profile "$profile")
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" COMPOSE_PROJECT_NAME=ultrathink \
        docker-compose "${args[@]}" "$@"
}
