#!/usr/bin/env bash
# Runs docker-compose (1.29, or the `docker compose` plugin) with the production -f file list,
# because docker-compose 1.29 has no `include:`.  docs/deploy-compose.md.
#
#   compose.sh [--part P]... [--role R --node N] [--gpu] [--test] [--] COMPOSE-ARGS...
#     --part P   timescale | kafka | redis | monitoring (repeatable); default: all four.
#                The base file docker-compose.yml is always first.
#     --role R --node N   host N (1, 2, ...) of role R (db, kafka, redis, monitoring) of a
#                several-host deployment, as infrastructure/topology.yml `hosts` places them:
#                that role's parts, and that host's services + node-exporter appended to the
#                command (up, always with --no-deps; ps, logs, stop, pull...).  Terraform's
#                bootstrap runs `compose.sh --role R --node N up -d --no-deps`; so does a
#                person, and the deploy scripts' inventory says the same (docs/deploy.md).
#     --gpu      enable profile gpu (gpu_agent; GPU hosts with the NVIDIA container runtime)
#     --test     add docker-compose-test.yml last (test-machine sizes)
#     --print    print the command instead of running it
#   Examples:
#     compose.sh config -q                         # validate the whole set
#     compose.sh up -d                             # one host, everything
#     compose.sh --part kafka up -d                # a Kafka host
#     compose.sh --part monitoring --gpu up -d     # monitoring + gpu_agent
#     compose.sh --role db --node 2 up -d --no-deps  # the second database host
# The project directory is infrastructure/ (relative paths, .env); COMPOSE_PROJECT_NAME
# defaults to ultrathink.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parts=() gpu=0 test=0 print=0 role="" node=""
while (($#)); do
    case $1 in
        --part)
            [[ $# -ge 2 ]] || { echo "compose.sh: --part needs a value" >&2; exit 2; }
            case $2 in
                timescale | kafka | redis | monitoring) parts+=("$2") ;;
                *) echo "compose.sh: unknown part '$2' (timescale, kafka, redis, monitoring)" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --role | --node)
            [[ $# -ge 2 ]] || { echo "compose.sh: $1 needs a value" >&2; exit 2; }
            if [[ $1 == --role ]]; then role=$2; else node=$2; fi
            shift 2 ;;
        --gpu) gpu=1; shift ;;
        --test) test=1; shift ;;
        --print) print=1; shift ;;
        --) shift; break ;;
        -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
services=()
if [[ -n $role || -n $node ]]; then
    [[ -n $role && $node =~ ^[1-9][0-9]*$ ]] || { echo "compose.sh: --role and --node N go together" >&2; exit 2; }
    # The host's parts and services from topology.yml (python3-yaml: cloud-init's own dependency).
    placement=$(/usr/bin/python3 - "$here/topology.yml" "$role" "$node" <<'PY'
import sys, yaml
hosts = yaml.safe_load(open(sys.argv[1]))["hosts"]
role, node = sys.argv[2], int(sys.argv[3])
h = hosts.get(role)
if h is None or not h.get("compose_parts"):
    sys.exit(f"compose.sh: no compose role {role!r} in topology.yml hosts "
             f"({', '.join(r for r, x in hosts.items() if x.get('compose_parts'))})")
if not 1 <= node <= h["count"]:
    sys.exit(f"compose.sh: role {role} has hosts 1..{h['count']}, not {node}")
print(" ".join(sorted(set(h["compose_parts"]) | {"monitoring"})))
print(" ".join(h["services"][node - 1] + ["node-exporter"]))
PY
    ) || exit 2
    read -r -a rparts <<<"${placement%%$'\n'*}"
    read -r -a services <<<"${placement#*$'\n'}"
    parts+=("${rparts[@]}")
    # `up` starts this host's services only: a dependency on another host (pg2 -> etcd1) is
    # already running there, and must not be started here as well.
    if [[ ${1:-} == up && " $* " != *" --no-deps "* ]]; then services=(--no-deps "${services[@]}"); fi
fi
((${#parts[@]})) || parts=(timescale kafka redis monitoring)
args=(--project-directory "$here" -f "$here/docker-compose.yml")
for p in timescale kafka redis monitoring; do # the documented order, each part once
    [[ " ${parts[*]} " == *" $p "* ]] && args+=(-f "$here/docker-compose-$p.yml")
done
((test)) && args+=(-f "$here/docker-compose-test.yml")
((gpu)) && args+=(--profile gpu)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-ultrathink}
if command -v docker-compose >/dev/null; then
    cmd=(docker-compose)
else
    cmd=(docker compose)
fi
if ((print)); then
    printf '%q ' "${cmd[@]}" "${args[@]}" "$@" "${services[@]}"
    echo
    exit 0
fi
exec "${cmd[@]}" "${args[@]}" "$@" "${services[@]}"
