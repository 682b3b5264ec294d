#!/bin/bash
# First boot of an ultrathink host (cloud-init runcmd; infrastructure/terraform).  Reads
# /etc/ultrathink/node.env (role, node index, peers), then:
#   1. formats (once) and mounts the EBS data volume at $UT_DATA_DIR, if the role has one;
#   2. writes the environment's secrets from SSM Parameter Store /ultrathink/$UT_ENVIRONMENT/
#      to /etc/ultrathink/secrets.env (0600; NAME=value, the names of infrastructure/.env.example);
#   3. checks out the repository at $UT_REPO_REF in /opt/ultrathink;
#   4. runs its part: docker compose with the role's compose files (db, kafka, redis,
#      monitoring), or on the GPU servers builds the programs and enables our systemd units
#      (infrastructure/systemd: gpu_agent, rolloutd).
# Idempotent: a rerun (e.g. by hand after a failure) skips what is done.
set -euo pipefail
# shellcheck source=/dev/null
. /etc/ultrathink/node.env
log() { echo "ultrathink-bootstrap: $*" >&2; }
repo=/opt/ultrathink

# ---- 1. data volume: the EBS disk that is not the root disk (instance-store NVMe disks of GPU
# types are "Instance Storage", never "Elastic Block Store").  It is attached after the instance
# starts, so wait for it.
if [[ -n $UT_DATA_DIR ]] && ! mountpoint -q "$UT_DATA_DIR"; then
    root_disk=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")
    dev=""
    for _ in $(seq 300); do
        dev=$(lsblk -dnpo NAME,MODEL | awk -v root="/dev/$root_disk" \
            '$1 != root && /Elastic Block Store/ {print $1; exit}')
        [[ -n $dev ]] && break
        sleep 2
    done
    [[ -n $dev ]] || { log "no data volume appeared"; exit 1; }
    blkid "$dev" >/dev/null || mkfs.xfs -q -L ut-data "$dev"
    mkdir -p "$UT_DATA_DIR"
    grep -q "LABEL=ut-data" /etc/fstab ||
        echo "LABEL=ut-data $UT_DATA_DIR xfs defaults,noatime,nofail 0 2" >>/etc/fstab
    mount "$UT_DATA_DIR"
    log "data volume $dev mounted at $UT_DATA_DIR"
fi

# ---- 2. secrets (the instance role may read /ultrathink/$UT_ENVIRONMENT/* only)
if [[ ! -s /etc/ultrathink/secrets.env ]]; then
    command -v aws >/dev/null || snap install aws-cli --classic
    umask 077
    aws ssm get-parameters-by-path --region "$UT_REGION" --with-decryption \
        --path "/ultrathink/$UT_ENVIRONMENT/" --query 'Parameters[].[Name,Value]' --output text |
        while IFS=$'\t' read -r name value; do
            printf '%s=%s\n' "${name##*/}" "$value"
        done >/etc/ultrathink/secrets.env.new
    mv /etc/ultrathink/secrets.env.new /etc/ultrathink/secrets.env
    umask 022
fi

# ---- 3. the repository
if [[ ! -d $repo/.git ]]; then
    git clone --quiet "$UT_REPO_URL" "$repo"
fi
git -C "$repo" fetch --quiet --tags origin "$UT_REPO_REF"
git -C "$repo" checkout --quiet --detach FETCH_HEAD

# ---- 4. the role's part
case $UT_ROLE in
gpu)
    # Build the programs (scripts/install-deps.sh installs the build toolchain), install them
    # and our systemd units.
    "$repo/scripts/install-deps.sh" runtime
    cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$repo/build" -j "$(nproc)" --target gpu_agent rolloutd infractl
    install -m 0755 "$repo/build/gpu_agent" "$repo/build/rolloutd" "$repo/build/infractl" /usr/local/bin/
    install -d -m 0755 /etc/gpu_agent
    install -m 0644 "$repo/infrastructure/gpu/server$UT_NODE_INDEX.yml" /etc/gpu_agent/gpu_agent.yml
    if [[ ! -s /etc/gpu_agent/token ]]; then
        install -m 0600 /dev/null /etc/gpu_agent/token
        grep -E '^GPU_AGENT_TOKEN=' /etc/ultrathink/secrets.env | cut -d= -f2- >/etc/gpu_agent/token
    fi
    # rolloutd keeps its flags in PostgreSQL (through PgBouncer on every database node; LISTEN
    # directly through HAProxy's write port), the password in a credential file.
    db_pgbouncer="${UT_DB_IPS//,/:6432,}:6432"
    db_haproxy="${UT_DB_IPS//,/:5000,}:5000"
    cat >/etc/ultrathink/rolloutd.env <<ENV
ROLLOUTD_LISTEN=0.0.0.0:8090
ROLLOUTD_OPTS=--store postgres:postgresql://rolloutd@$db_pgbouncer/rolloutd?target_session_attrs=read-write --pg-listen postgresql://rolloutd@$db_haproxy/rolloutd --environments $UT_ENVIRONMENT
ENV
    install -m 0600 /dev/null /etc/ultrathink/rolloutd.pgpass
    grep -E '^ROLLOUTD_DB_PASSWORD=' /etc/ultrathink/secrets.env | cut -d= -f2- |
        sed 's/^/*:*:rolloutd:rolloutd:/' >/etc/ultrathink/rolloutd.pgpass
    install -m 0644 "$repo"/infrastructure/systemd/{gpu_agent,rolloutd}.service /etc/systemd/system/
    systemctl daemon-reload
    systemctl enable --now gpu_agent.service rolloutd.service
    ;;
db | kafka | redis | monitoring)
    systemctl enable --now docker
    files=()
    for f in $UT_COMPOSE_FILES; do files+=(-f "$repo/infrastructure/$f"); done
    # The compose files take the node's identity and peers (node.env) and the secrets.
    COMPOSE_PROFILES=$COMPOSE_PROFILES docker compose --project-name "ultrathink-$UT_ROLE" --project-directory "$repo/infrastructure" \
        --env-file /etc/ultrathink/node.env --env-file /etc/ultrathink/secrets.env \
        "${files[@]}" up --detach --wait --wait-timeout 600
    ;;
*)
    log "unknown role '$UT_ROLE'"
    exit 1
    ;;
esac
log "$UT_ROLE host $UT_NODE_NAME is up"
