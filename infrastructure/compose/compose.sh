#!/usr/bin/env bash
# Runs docker-compose (1.29, or the `docker compose` plugin) with the production -f file list,
# because docker-compose 1.29 has no `include:`.  docs/deploy-compose.md.
#
#   compose.sh [--part P]... [--gpu] [--test] [--] COMPOSE-ARGS...
#     --part P   timescale | kafka | redis | monitoring (repeatable); default: all four.
#                The base file docker-compose.yml is always first.
#     --gpu      enable profile gpu (gpu_agent; GPU hosts with the NVIDIA container runtime)
#     --test     add docker-compose-test.yml last (test-machine sizes)
#     --print    print the command instead of running it
#   Examples:
#     compose.sh config -q                         # validate the whole set
#     compose.sh up -d                             # one host, everything
#     compose.sh --part kafka up -d                # a Kafka host
#     compose.sh --part monitoring --gpu up -d     # monitoring + gpu_agent
# The project directory is infrastructure/ (relative paths, .env); COMPOSE_PROJECT_NAME
# defaults to ultrathink.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parts=() gpu=0 test=0 print=0
while (($#)); do
    case $1 in
        --part)
            [[ $# -ge 2 ]] || { echo "compose.sh: --part needs a value" >&2; exit 2; }
            case $2 in
                timescale | kafka | redis | monitoring) parts+=("$2") ;;
                *) echo "compose.sh: unknown part '$2' (timescale, kafka, redis, monitoring)" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --gpu) gpu=1; shift ;;
        --test) test=1; shift ;;
        --print) print=1; shift ;;
        --) shift; break ;;
        -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
((${#parts[@]})) || parts=(timescale kafka redis monitoring)
args=(--project-directory "$here" -f "$here/docker-compose.yml")
for p in "${parts[@]}"; do args+=(-f "$here/docker-compose-$p.yml"); done
((test)) && args+=(-f "$here/docker-compose-test.yml")
((gpu)) && args+=(--profile gpu)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-ultrathink}
if command -v docker-compose >/dev/null; then
    cmd=(docker-compose)
else
    cmd=(docker compose)
fi
if ((print)); then
    printf '%q ' "${cmd[@]}" "${args[@]}" "$@"
    echo
    exit 0
fi
exec "${cmd[@]}" "${args[@]}" "$@"
