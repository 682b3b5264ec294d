# shellcheck shell=bash
# deploy_lib.sh - what deploy_staging.sh and deploy_production.sh share (sourced, not run).
#
# A deploy is: pre-flight health check -> push the release to every host of the inventory
# (the repository's infrastructure/ tree as a release directory, then `docker-compose pull` and
# `up -d` over ssh) -> drive the flag's rollout through rolloutd with infractl (canary ->
# partial -> full, each stage watched for --bake seconds) -> roll back (stage off, else kill)
# as soon as a health check fails.  docs/deploy.md describes the inventory and the pipeline.
#
# Exit codes (deploy_main): 0 deployed; 1 failed before or while changing anything (named);
# 2 usage; 4 unhealthy: rolled back; 5 unhealthy and the rollback FAILED (act now).

DEPLOY_STARTED=$(date +%s)
DEPLOY_NAME=deploy

log() { echo "$DEPLOY_NAME: [$(($(date +%s) - DEPLOY_STARTED))s] $*" >&2; }
die() {
    echo "$DEPLOY_NAME: error: $*" >&2
    exit 1
}
usage_error() {
    echo "$DEPLOY_NAME: $*" >&2
    echo "Try '$DEPLOY_NAME --help'." >&2
    exit 2
}

# run COMMAND...: runs it, or with --dry-run prints it (quoted, copy-pastable) and runs nothing.
run() {
    if ((DRY_RUN)); then
        printf '%s: dry-run: would run:' "$DEPLOY_NAME" >&2
        printf ' %q' "$@" >&2
        printf '\n' >&2
        return 0
    fi
    "$@"
}

# ---- options -----------------------------------------------------------------------------
deploy_defaults() { # deploy_defaults ENV
    ENVIRONMENT=$1
    INVENTORY=${DEPLOY_INVENTORY:-}
    RELEASE=${DEPLOY_RELEASE:-}
    FLAG=""
    CANARY=0
    PLAN=${DEPLOY_PLAN:-}
    CANARY_PERCENT=5
    PARTIAL_PERCENT=50
    BAKE=300
    INTERVAL=15
    DRY_RUN=0
    PUSH=1
    CHECKS="alerts,status"
    INFRACTL=${INFRACTL:-}
    SSH=${DEPLOY_SSH:-ssh}
    # Where our images are (CI pushes REGISTRY/NAME:COMMIT): passed to the hosts' compose.
    REGISTRY=${ULTRATHINK_REGISTRY:-}
    # Extra ssh options (-i KEY, -o UserKnownHostsFile=...), split on blanks.
    read -r -a SSH_OPTS <<<"${DEPLOY_SSH_OPTIONS:-}"
    # Inventory settings (KEY=VALUE lines of the inventory file), with their defaults.
    DEPLOY_DIR=/srv/ultrathink
    COMPOSE=compose/compose.sh
    PROJECT=ultrathink
    ENV_FILES=""
    HOSTS=()
    HOST_ARGS=()
}

deploy_usage() { # deploy_usage: the help text of the calling script
    cat <<EOF
Usage: $DEPLOY_NAME [OPTIONS]

Deploys a release to the $ENVIRONMENT hosts of an inventory with docker-compose over ssh, then
rolls a feature flag out through rolloutd (infractl flags stage), watching health after each
stage and rolling back when it fails.

  --inventory FILE      hosts and settings (default \$DEPLOY_INVENTORY); see docs/deploy.md
  --release VERSION     what to deploy: a git commit/tag of this repository (default HEAD,
                        or \$DEPLOY_RELEASE); the hosts get its tree, compose gets
                        ULTRATHINK_VERSION=COMMIT (the tag of our images)
  --flag KEY            the rolloutd flag that gates the release; without it only the push
                        and one health check run
  --canary              canary -> partial -> full (default: straight to full)
  --plan FILE           with --canary: hand the rollout to rolloutd's controller instead: start
                        this rollout plan (infrastructure/rollouts/*.yml, docs/rollouts.md;
                        default \$DEPLOY_PLAN) and wait for its outcome; rolloutd promotes on
                        its Prometheus analyses and rolls back itself; --checks still run every
                        --interval and abort the plan when they fail
  --canary-percent P    canary cohort (default 5); must not exceed the flag's partial %
  --partial-percent P   partial cohort (default 50); must be >= the canary %
  --bake SECONDS        how long each stage is watched before the next (default $BAKE)
  --interval SECONDS    time between health checks while baking (default $INTERVAL)
  --checks LIST         health checks: alerts,status (default); alerts = \`infractl alerts\`
                        (Alertmanager: exit 4 = something active); status = \`infractl status
                        --json\` (our supervisor's hosts; leave it out for compose-only hosts)
  --no-push             skip the push (roll the flag only)
  --infractl PATH       infractl to use (default \$INFRACTL, else infractl on PATH, else
                        build/infractl of this checkout)
  --dry-run             print every command that would change something, run none
  -h, --help            this text

ssh: \$DEPLOY_SSH_OPTIONS adds options (-i KEY -o UserKnownHostsFile=FILE); BatchMode is on.
Images: \$ULTRATHINK_REGISTRY (e.g. ghcr.io/OWNER/ultrathink, where CI pushed NAME:COMMIT) is
passed to compose on the hosts; unset, the hosts' .env decides (default: built on the host).
rolloutd and Alertmanager: ROLLOUTD_URL / ROLLOUTD_TOKEN (or --token-file through
ROLLOUTD_TOKEN_FILE) and INFRACTL_ALERTMANAGER_URL, from the environment or the inventory.

Exit: 0 deployed; 1 failed (what failed is named; nothing rolled out yet, or the rollout
could not continue); 2 usage; 4 unhealthy: rolled back; 5 unhealthy and the rollback failed.
EOF
}

is_percent() { [[ $1 =~ ^(100|[0-9]{1,2})(\.[0-9]{1,3})?$ ]] && awk -v p="$1" 'BEGIN{exit !(p<=100)}'; }
is_seconds() { [[ $1 =~ ^[0-9]+$ ]]; }

deploy_parse() { # deploy_parse "$@"
    while (($#)); do
        case $1 in
        -h | --help) deploy_usage; exit 0 ;;
        --inventory | --release | --flag | --canary-percent | --partial-percent | --bake | \
            --interval | --checks | --infractl | --plan)
            (($# >= 2)) || usage_error "option $1 needs a value"
            case $1 in
            --inventory) INVENTORY=$2 ;;
            --release) RELEASE=$2 ;;
            --flag) FLAG=$2 ;;
            --canary-percent) CANARY_PERCENT=$2 ;;
            --partial-percent) PARTIAL_PERCENT=$2 ;;
            --bake) BAKE=$2 ;;
            --interval) INTERVAL=$2 ;;
            --checks) CHECKS=$2 ;;
            --infractl) INFRACTL=$2 ;;
            --plan) PLAN=$2 ;;
            esac
            shift 2
            ;;
        --canary) CANARY=1; shift ;;
        --no-push) PUSH=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        *) usage_error "unknown argument '$1'" ;;
        esac
    done
    is_percent "$CANARY_PERCENT" || usage_error "--canary-percent: '$CANARY_PERCENT' is not a percentage 0..100 (at most 3 decimals)"
    is_percent "$PARTIAL_PERCENT" || usage_error "--partial-percent: '$PARTIAL_PERCENT' is not a percentage 0..100 (at most 3 decimals)"
    awk -v c="$CANARY_PERCENT" -v p="$PARTIAL_PERCENT" 'BEGIN{exit !(c<=p)}' ||
        usage_error "--canary-percent $CANARY_PERCENT exceeds --partial-percent $PARTIAL_PERCENT (rolloutd keeps the canary inside partial)"
    is_seconds "$BAKE" || usage_error "--bake: '$BAKE' is not a whole number of seconds"
    is_seconds "$INTERVAL" || usage_error "--interval: '$INTERVAL' is not a whole number of seconds"
    local c
    IFS=, read -r -a _checks <<<"$CHECKS"
    for c in "${_checks[@]}"; do
        [[ $c == alerts || $c == status ]] || usage_error "--checks: unknown check '$c' (alerts, status)"
    done
    [[ -z $REGISTRY || $REGISTRY =~ ^[a-z0-9][a-z0-9._:/-]*$ ]] || usage_error "ULTRATHINK_REGISTRY: '$REGISTRY' is not a registry path (lower case, [a-z0-9._:/-])"
    [[ -z $FLAG || $FLAG =~ ^[A-Za-z0-9._-]{1,128}$ ]] || usage_error "--flag: '$FLAG' is not a flag key ([A-Za-z0-9._-]{1,128})"
    if [[ -n $PLAN ]]; then
        ((CANARY)) || usage_error "--plan needs --canary (a plan is a canary rollout)"
        [[ -n $FLAG ]] || usage_error "--plan needs --flag"
        [[ -r $PLAN ]] || usage_error "--plan $PLAN: cannot read it"
    fi
    ((PUSH == 0)) || [[ -n $INVENTORY ]] || usage_error "no inventory: give --inventory FILE (or \$DEPLOY_INVENTORY), or --no-push"
}

# ---- inventory ---------------------------------------------------------------------------
# Lines (`#` comments; parsed, never sourced):
#   KEY=VALUE   DEPLOY_DIR (default /srv/ultrathink), COMPOSE (the compose command run in the
#               release's infrastructure/, default compose/compose.sh), PROJECT (default
#               ultrathink), ENV_FILES (absolute paths on the hosts, each passed as
#               --env-file), ROLLOUTD_URL, ROLLOUTD_TOKEN_FILE, INFRACTL_ALERTMANAGER_URL
#   HOST [COMPOSE_PROJECT_NAME=P] [COMPOSE_PROFILES=A,B] [ARG...]
#               [USER@]HOST, then what this host runs: ARGs go to COMPOSE before the
#               subcommand (compose.sh: --part timescale|kafka|redis|monitoring, --gpu; or
#               -f FILE ...); none: everything.
load_inventory() {
    local file=$1 n=0 line key value host w args
    [[ -r $file ]] || die "inventory $file: cannot read it"
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line%%#*}
        line=${line#"${line%%[![:space:]]*}"}
        line=${line%"${line##*[![:space:]]}"}
        [[ -z $line ]] && continue
        if [[ $line =~ ^([A-Z_]+)=(.*)$ ]]; then
            key=${BASH_REMATCH[1]}
            value=${BASH_REMATCH[2]}
            case $key in
            DEPLOY_DIR | COMPOSE | PROJECT | ENV_FILES) printf -v "$key" '%s' "$value" ;;
            ROLLOUTD_URL | ROLLOUTD_TOKEN_FILE | INFRACTL_ALERTMANAGER_URL)
                [[ -n ${!key:-} ]] || export "$key=$value" ;; # the environment wins
            *) die "inventory $file:$n: unknown setting '$key' (DEPLOY_DIR, COMPOSE, PROJECT, ENV_FILES, ROLLOUTD_URL, ROLLOUTD_TOKEN_FILE, INFRACTL_ALERTMANAGER_URL)" ;;
            esac
            continue
        fi
        read -r host value <<<"$line"
        [[ $host =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:_-]+$ ]] || die "inventory $file:$n: '$host' is not a host ([USER@]HOST)"
        args=""
        for w in $value; do
            # Words reach a remote shell: a plain charset only, no way out of infrastructure/.
            [[ $w =~ ^[A-Za-z0-9._,/=-]+$ && $w != *..* && $w != /* ]] ||
                die "inventory $file:$n: '$w' is not a compose argument this script passes on ([A-Za-z0-9._,/=-], relative, no ..)"
            args+=" $w"
        done
        HOSTS+=("$host")
        HOST_ARGS+=("${args# }")
    done <"$file"
    ((${#HOSTS[@]})) || die "inventory $file: no hosts"
    [[ $DEPLOY_DIR =~ ^/[A-Za-z0-9._/-]+$ ]] || die "inventory $file: DEPLOY_DIR must be an absolute path ([A-Za-z0-9._/-]), not '$DEPLOY_DIR'"
    [[ $PROJECT =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "inventory $file: PROJECT '$PROJECT' is not a compose project name"
    [[ $COMPOSE =~ ^[A-Za-z0-9._/\ -]+$ ]] || die "inventory $file: COMPOSE '$COMPOSE' has characters this script does not pass to a remote shell"
    for w in $ENV_FILES; do
        [[ $w =~ ^/[A-Za-z0-9._/-]+$ ]] || die "inventory $file: ENV_FILES: '$w' is not an absolute path"
    done
}

# ---- infractl ----------------------------------------------------------------------------
find_infractl() {
    if [[ -z $INFRACTL ]]; then
        if type -P infractl >/dev/null; then
            INFRACTL=infractl
        else
            INFRACTL=$REPO/build/infractl
        fi
    fi
    ((DRY_RUN)) && return 0
    command -v "$INFRACTL" >/dev/null || die "infractl not found ('$INFRACTL'): build it (make build) or pass --infractl PATH"
}

# ix ARGS...: infractl with the rolloutd options from the environment/inventory.
ix() { "$INFRACTL" "$@"; }
flags_args() {
    FLAGS_ARGS=()
    [[ -n ${ROLLOUTD_URL:-} ]] && FLAGS_ARGS+=(--url "$ROLLOUTD_URL")
    [[ -n ${ROLLOUTD_TOKEN_FILE:-} ]] && FLAGS_ARGS+=(--token-file "$ROLLOUTD_TOKEN_FILE")
    return 0
}

# healthy: every check of --checks passes; prints why not (and returns 1) otherwise.
healthy() {
    local c rc out
    for c in "${_checks[@]}"; do
        case $c in
        alerts)
            out=$(ix alerts 2>&1)
            rc=$?
            case $rc in
            0) ;;
            4) log "health: alerts active (infractl alerts exit 4):"
               printf '%s\n' "$out" | sed 's/^/    /' >&2
               return 1 ;;
            3) log "health: Alertmanager does not answer (infractl alerts exit 3): cannot tell, counted unhealthy"
               return 1 ;;
            *) log "health: infractl alerts failed (exit $rc): $out"
               return 1 ;;
            esac ;;
        status)
            out=$(ix status --json 2>&1)
            rc=$?
            case $rc in
            0) ;;
            4) log "health: a service is not up or a cluster is degraded (infractl status exit 4)"
               printf '%s\n' "$out" | jq -r '.clusters[]? | select(.degraded) | "    \(.name): \(.problems | join("; "))"' >&2 2>/dev/null || true
               return 1 ;;
            3) log "health: the stack is not running (infractl status exit 3)"
               return 1 ;;
            *) log "health: infractl status failed (exit $rc)"
               return 1 ;;
            esac ;;
        esac
    done
    return 0
}

# bake STAGE: health checks every --interval for --bake seconds (at least one check).
bake() {
    local stage=$1 end=$(($(date +%s) + BAKE)) n=0
    while :; do
        n=$((n + 1))
        healthy || { log "$stage: unhealthy at check $n"; return 1; }
        (($(date +%s) >= end)) && break
        sleep "$INTERVAL"
    done
    log "$stage: healthy ($n check(s) over ${BAKE}s)"
}

# ---- push --------------------------------------------------------------------------------
# Each host gets the release's tree (git archive of the commit: the compose files, their
# configs and the build contexts of our images) as DEPLOY_DIR/releases/COMMIT; `current` is
# switched to it, DEPLOY_DIR/.env (settings, kept on the host) is linked into its
# infrastructure/, then COMPOSE pulls and starts the host's part with ULTRATHINK_VERSION=COMMIT
# (images of ours that no registry has are built there by `up`).  Earlier releases stay for a
# switch back by hand.  Secrets never travel: they are files on the host (.env.example).
remote_script() { # remote_script INDEX: the shell text run on host INDEX
    local i=$1 w exports="" args="" envs=""
    for w in ${HOST_ARGS[$i]}; do
        case $w in
        COMPOSE_PROJECT_NAME=* | COMPOSE_PROFILES=*) exports+=" $w" ;;
        *) args+=" $w" ;;
        esac
    done
    [[ $exports == *COMPOSE_PROJECT_NAME=* ]] || exports=" COMPOSE_PROJECT_NAME=$PROJECT$exports"
    [[ -z $REGISTRY ]] || exports+=" ULTRATHINK_REGISTRY=$REGISTRY"
    for w in $ENV_FILES; do envs+=" --env-file $w"; done
    # The rest runs on the host: its $d and $r are the remote shell's (SC2016 is intended).
    # shellcheck disable=SC2016
    printf '%s' "set -eu; d=$DEPLOY_DIR; r=$RELEASE_COMMIT"'; mkdir -p "$d/releases/$r"; tar -x -C "$d/releases/$r"; ln -sfn "releases/$r" "$d/current"; if [ -f "$d/.env" ]; then ln -sfn "$d/.env" "$d/current/infrastructure/.env"; fi; cd "$d/current/infrastructure"; export ULTRATHINK_VERSION="$r"'"$exports; $COMPOSE$args$envs pull --ignore-pull-failures; $COMPOSE$args$envs up -d --remove-orphans"
}

push_release() {
    local i host remote archive=$DEPLOY_TMP/release.tar
    if ((DRY_RUN)); then
        log "dry-run: would archive the tree of $RELEASE ($RELEASE_COMMIT)"
    else
        git -C "$REPO" archive --format=tar "$RELEASE_COMMIT" >"$archive" ||
            die "git archive of $RELEASE ($RELEASE_COMMIT) failed"
    fi
    for i in "${!HOSTS[@]}"; do
        host=${HOSTS[$i]}
        remote=$(remote_script "$i")
        log "push: $host: release $RELEASE ($RELEASE_COMMIT)${HOST_ARGS[$i]:+, $COMPOSE ${HOST_ARGS[$i]}}"
        if ((DRY_RUN)); then
            echo "$DEPLOY_NAME: dry-run: would run: $SSH ${SSH_OPTS[*]:+${SSH_OPTS[*]} }-o BatchMode=yes $host '$remote' <release.tar" >&2
        elif ! "$SSH" "${SSH_OPTS[@]}" -o BatchMode=yes "$host" "$remote" <"$archive"; then
            die "push to $host failed (ssh, or $COMPOSE on the host: see above); hosts before it run release $RELEASE, it and those after it do not"
        fi
    done
    log "push: ${#HOSTS[@]} host(s) run release $RELEASE"
}

# ---- rollout -----------------------------------------------------------------------------
# stage STAGE [PERCENT]
stage() {
    local args=(flags "${FLAGS_ARGS[@]}" stage "$FLAG" "$1" --env "$ENVIRONMENT")
    [[ -n ${2:-} ]] && args+=(--percent "$2")
    log "rollout: $FLAG -> $1${2:+ $2%} in $ENVIRONMENT"
    if ((DRY_RUN)); then
        run "$INFRACTL" "${args[@]}"
        return 0
    fi
    ix "${args[@]}" >&2
}

rollback() { # rollback WHY: stage off, else the kill switch; exit 4, or 5 if both failed
    log "ROLLBACK: $1"
    if ix flags "${FLAGS_ARGS[@]}" stage "$FLAG" off --env "$ENVIRONMENT" >&2; then
        log "rolled back: $FLAG is off in $ENVIRONMENT (control for everyone)"
        exit 4
    fi
    log "stage off failed: pulling the kill switch"
    if ix flags "${FLAGS_ARGS[@]}" kill "$FLAG" --env "$ENVIRONMENT" >&2; then
        log "rolled back: $FLAG is killed in $ENVIRONMENT (lift it with: infractl flags kill $FLAG --env $ENVIRONMENT --off)"
        exit 4
    fi
    echo "$DEPLOY_NAME: error: ROLLBACK FAILED: $FLAG may still serve the candidate in $ENVIRONMENT; run: infractl flags kill $FLAG --env $ENVIRONMENT" >&2
    exit 5
}

# Before changing anything: the flag exists, is not killed, and the canary fits its partial.
check_flag() {
    local json rc partial killed
    ((DRY_RUN)) && return 0
    json=$(ix flags "${FLAGS_ARGS[@]}" --json get "$FLAG" 2>&1)
    rc=$?
    case $rc in
    0) ;;
    3) die "rolloutd is unreachable (infractl flags get exit 3): $json" ;;
    *) die "flag $FLAG: infractl flags get failed (exit $rc): $json (create it first: infractl flags create $FLAG --variants control,candidate)" ;;
    esac
    partial=$(jq -r --arg e "$ENVIRONMENT" '.environments[$e].partial // 25' <<<"$json") ||
        die "flag $FLAG: rolloutd's answer is not the flag JSON: $json"
    killed=$(jq -r --arg e "$ENVIRONMENT" '.environments[$e].kill // false' <<<"$json")
    [[ $killed == true ]] && die "flag $FLAG is killed in $ENVIRONMENT: lift the kill switch first (infractl flags kill $FLAG --env $ENVIRONMENT --off)"
    if ((CANARY)) && ! awk -v c="$CANARY_PERCENT" -v p="$partial" 'BEGIN{exit !(c<=p)}'; then
        die "flag $FLAG: --canary-percent $CANARY_PERCENT exceeds its partial percentage $partial in $ENVIRONMENT (rolloutd: canary must not exceed partial); use --canary-percent <= $partial"
    fi
}

# rollout_plan: rolloutd's controller runs the plan (promotion on its analyses, rollback on a
# failed one); here we wait for the outcome, and abort the plan when our own checks fail.
# Exit 4 when rolloutd rolled back (or the plan was aborted/failed/paused: a paused plan needs a
# person, so the deploy gives it back to the last safe stage rather than wait).
rollout_plan() {
    local json rc state step stage pct reason seen="" errors=0
    log "rollout: $FLAG by plan $PLAN in $ENVIRONMENT (rolloutd's controller analyses, promotes and rolls back)"
    ix rollout "${FLAGS_ARGS[@]}" start "$FLAG" --plan "$PLAN" --env "$ENVIRONMENT" >/dev/null ||
        die "infractl rollout start failed (see above); nothing was rolled out"
    while :; do
        json=$(ix rollout "${FLAGS_ARGS[@]}" --json status "$FLAG" 2>&1)
        rc=$?
        if ((rc != 0)); then
            errors=$((errors + 1))
            log "cannot read the rollout (infractl rollout status exit $rc): $json"
            ((errors < 3)) || rollback "rolloutd does not answer about the rollout"
            sleep "$INTERVAL"
            continue
        fi
        errors=0
        state=$(jq -r .state <<<"$json")
        step=$(jq -r .step <<<"$json")
        stage=$(jq -r '.steps[.step].stage' <<<"$json")
        pct=$(jq -r '.steps[.step].percent' <<<"$json")
        reason=$(jq -r .reason <<<"$json")
        if [[ "$state $step" != "$seen" ]]; then
            log "rollout: $state, step $step ($stage $pct%): $reason"
            seen="$state $step"
        fi
        case $state in
        succeeded) return 0 ;;
        rolled_back | aborted | failed)
            log "ROLLED BACK by rolloutd ($state): $reason"
            wait_applied
            exit 4 ;;
        paused)
            abort_plan "the plan paused: $reason" ;;
        esac
        healthy || abort_plan "unhealthy during step $step ($stage $pct%)"
        sleep "$INTERVAL"
    done
}

abort_plan() { # abort_plan WHY: rolloutd rolls back to the last safe stage; exit 4 (else rollback)
    log "ABORT: $1"
    ix rollout "${FLAGS_ARGS[@]}" abort "$FLAG" >/dev/null || rollback "infractl rollout abort failed"
    wait_applied
    log "rolled back: rolloutd aborted the plan and returned $FLAG to its last safe stage in $ENVIRONMENT"
    exit 4
}

# wait_applied: rolloutd stores a rollback before it changes the flag (then sets applied); wait
# until the flag has changed, so that exit 4 means rolled back.  60 s, else our own rollback.
wait_applied() {
    local i
    for ((i = 0; i < 120; i++)); do
        [[ $(ix rollout "${FLAGS_ARGS[@]}" --json status "$FLAG" 2>/dev/null | jq -r .applied) == true ]] && return 0
        sleep 0.5
    done
    rollback "rolloutd did not apply its rollback within 60 s"
}

rollout() {
    if [[ -n $PLAN ]]; then
        rollout_plan
        bake "full" || rollback "full unhealthy"
        return 0
    fi
    if ((CANARY)); then
        stage canary "$CANARY_PERCENT" || rollback "infractl flags stage canary failed"
        bake "canary $CANARY_PERCENT%" || rollback "canary $CANARY_PERCENT% unhealthy"
        stage partial "$PARTIAL_PERCENT" || rollback "infractl flags stage partial failed"
        bake "partial $PARTIAL_PERCENT%" || rollback "partial $PARTIAL_PERCENT% unhealthy"
    fi
    stage full || rollback "infractl flags stage full failed"
    bake "full" || rollback "full unhealthy"
}

# ---- main --------------------------------------------------------------------------------
deploy_main() { # deploy_main "$@" (after deploy_defaults)
    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    DEPLOY_TMP=$(mktemp -d "${TMPDIR:-/tmp}/deploy-XXXXXX")
    # shellcheck disable=SC2064 # expanded now, on purpose
    trap "rm -rf '$DEPLOY_TMP'" EXIT
    deploy_parse "$@"
    [[ -n $INVENTORY ]] && load_inventory "$INVENTORY"
    [[ -n $RELEASE ]] || RELEASE=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) ||
        die "no --release given and $REPO is not a git checkout"
    RELEASE_COMMIT=$(git -C "$REPO" rev-parse --verify --quiet "$RELEASE^{commit}") ||
        die "release '$RELEASE' is not a commit of $REPO (git rev-parse)"
    find_infractl
    flags_args
    [[ -n ${ROLLOUTD_TOKEN:-} ]] && export ROLLOUTD_TOKEN
    command -v jq >/dev/null || ((DRY_RUN)) || die "jq is not installed (Debian package jq)"
    log "$ENVIRONMENT: release $RELEASE ($RELEASE_COMMIT)${FLAG:+, flag $FLAG}$( ((CANARY)) && if [[ -n $PLAN ]]; then echo ", plan $PLAN"; else echo ", canary $CANARY_PERCENT% -> partial $PARTIAL_PERCENT% -> full"; fi)$( ((DRY_RUN)) && echo ' [dry-run]')"

    if ((DRY_RUN)); then
        log "dry-run: would check health first: ${CHECKS//,/, }"
    else
        healthy || die "not deploying: $ENVIRONMENT is unhealthy before the deploy (see above)"
        log "pre-flight: healthy"
    fi
    [[ -n $FLAG ]] && check_flag
    if ((PUSH)); then push_release; else log "push: skipped (--no-push)"; fi
    if [[ -z $FLAG ]]; then
        if ((DRY_RUN)); then log "dry-run: would check health once (no --flag: nothing to roll out)"; else
            healthy || die "release $RELEASE pushed but $ENVIRONMENT is unhealthy (no --flag: nothing to roll back; earlier releases under $DEPLOY_DIR/releases)"
        fi
        log "done: release $RELEASE on $ENVIRONMENT (no flag rolled out)"
        return 0
    fi
    if ((DRY_RUN)) && [[ -n $PLAN ]]; then
        run "$INFRACTL" rollout "${FLAGS_ARGS[@]}" start "$FLAG" --plan "$PLAN" --env "$ENVIRONMENT"
        log "dry-run: would wait for the plan's outcome (checks every ${INTERVAL}s: ${CHECKS//,/, }); rolled back, aborted or paused: exit 4"
        return 0
    fi
    if ((DRY_RUN)); then
        if ((CANARY)); then
            stage canary "$CANARY_PERCENT"
            log "dry-run: would watch canary for ${BAKE}s (checks every ${INTERVAL}s: ${CHECKS//,/, })"
            stage partial "$PARTIAL_PERCENT"
            log "dry-run: would watch partial for ${BAKE}s"
        fi
        stage full
        log "dry-run: would watch full for ${BAKE}s; on any failed check: infractl flags stage $FLAG off --env $ENVIRONMENT (else kill), exit 4"
        return 0
    fi
    rollout
    log "done: $FLAG is full in $ENVIRONMENT with release $RELEASE"
}
