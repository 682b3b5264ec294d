#!/usr/bin/env bash
# The one place that lists what this project installs, by purpose.  Idempotent: installs only
# what is missing, so it is safe (and quick, ~0.1 s) to run before every `make up` / `make test`.
#
#   scripts/install-deps.sh [SET...]      install SET (default: runtime)
#   scripts/install-deps.sh --check SET   exit 1 and name what is missing, install nothing
#   scripts/install-deps.sh --list SET    print SET's Debian packages, one per line
#   scripts/install-deps.sh --tools-dir   print where the tools below go (infractl uses the same)
#
# Sets (each includes the ones before it):
#   build    the build toolchain and libraries only (a GPU host builds gpu_agent with it)
#            + librdkafka 2.12.1, built with CMake from the C sources the crate rdkafka-sys
#              vendors (infrastructure/librdkafka/Cargo.lock, fetched with cargo into the tools
#              dir's cache: offline afterwards), installed static into the tools dir; Debian 12's
#              2.0.2 can report undelivered messages as delivered (docs/drills.md)
#   runtime  build the programs and run the local stack            (make up)
#            + Patroni 4.1.5 from PyPI (infrastructure/patroni/requirements.txt: every
#              dependency pinned with its hash) in a virtual environment of Debian's
#              /usr/bin/python3 under the tools dir, its wheels cached there (offline afterwards)
#            + Apache Kafka 4.4.0 (KRaft) and the Prometheus JMX exporter agent from Maven
#              Central (infrastructure/kafka/pom.xml) into the tools dir, its local Maven
#              repository cached there (offline afterwards); a system user `kafka` runs them
#   tests    what `make test` calls besides that                    (make test)
#            + OpenTofu 1.12.6 built from the Go module proxy (scripts/install-tofu.sh, ~5 min
#              once, cached in the tools dir) for the Terraform checks
#            (npm packages the tests use are pinned in their package-lock.json and installed by
#            the test itself with `npm ci`, offline first: tests/grafana, tests/browser)
#   ci       format check, sanitizer and fuzzer runtimes            (.ci/run)
# (`make bench` needs the tests set: its load tool and peers' runtime are there.)
# scripts/check-deps.py (test check.deps) checks that every command and Python module the tests,
# scripts and the stack use comes from a package listed here (or from Debian's base system).
set -euo pipefail

# ---- runtime: the build toolchain and libraries we link, and the stack's real engines
build_pkgs=(build-essential cmake pkg-config
            libyaml-dev libjansson-dev libhiredis-dev libpq-dev libcurl4-openssl-dev
            libmicrohttpd-dev libsqlite3-dev
            libssl-dev zlib1g-dev libzstd-dev  # what our librdkafka build links (below)
            curl)  # its sources, where there is no cargo (below)
# infrastructure/local/stack.yml (each service names its package there too).  Patroni is not
# Debian's 3.0.2 (it can lose acknowledged writes after a leader freeze, fixed in 3.0.3) but
# 4.1.5 from PyPI, installed by install_patroni below; python3-venv builds its environment.
stack_pkgs=(etcd-server etcd-client postgresql-15 postgresql-client-15
            haproxy pgbouncer redis-server redis-sentinel redis-tools python3-venv
            pgbackrest)  # backups + WAL archiving of the Patroni cluster (docs/backups.md)

# Kafka: a JVM to run the brokers, Maven to fetch them (install_kafka below).
kafka_pkgs=(openjdk-17-jre-headless maven)

# Monitoring: Prometheus 2.42 (+ promtool), Alertmanager 0.25 (+ amtool) and the exporters.
monitoring_pkgs=(prometheus prometheus-alertmanager prometheus-node-exporter
                 prometheus-postgres-exporter prometheus-redis-exporter
                 prometheus-pgbouncer-exporter prometheus-blackbox-exporter)

# ---- tests: tools the integration tests and their checks call
test_pkgs=(curl jq procps iproute2 sqlite3 python3 python3-yaml
           python3-celery python3-redis  # gpu_failover: real Celery workers, Redis broker
           shfmt                         # check.deps parses our shell scripts with it
           wrk                           # make bench (OFREP load); check.deps checks bench too
           kcat openjdk-17-jre-headless maven  # kafka_adapter: a real 3-node Kafka from its jars
           docker-compose                # compose files validated offline (config -q), no engine
           systemd                       # systemd-analyze verify / security of our units
           shellcheck                    # the deploy scripts and every infrastructure script
           chromium                      # rolloutd's /ui in a real browser (tests/browser)
           nftables)                     # partition / host-death drills (scripts/drill-netns.sh)
# The OpenFeature SDK test runs on node; Debian's nodejs + npm unless a node with npm (an
# image's nodesource build, which bundles npm) is already there.
command -v npm >/dev/null || test_pkgs+=(nodejs npm)

# ---- ci: .ci/run's checks
ci_pkgs=(clang-format clang libclang-rt-14-dev git
         lcov)  # scripts/coverage.sh (the GitHub workflow's coverage report)

# Where installed tools live: readable by the service users (the checkout may sit under /root,
# mode 700).  $UT_TOOLS_DIR wins; infractl computes the same default (${tools_dir} in stacks).
tools_dir() {
    if [[ -n ${UT_TOOLS_DIR:-} ]]; then
        echo "$UT_TOOLS_DIR"
    elif [[ $(id -u) -eq 0 ]]; then
        echo /opt/ultrathink-infra
    else
        echo "${HOME}/.local/share/ultrathink-infra"
    fi
}

PATRONI_VERSION=4.1.5
# Patroni in $TOOLS/patroni-$PATRONI_VERSION (a venv of Debian's python3: the postgres user
# cannot run a CPython under /root), from wheels cached in $TOOLS/cache/pip.  Idempotent.
install_patroni() {
    local tools venv cache req stamp
    tools=$(tools_dir)
    venv=$tools/patroni-$PATRONI_VERSION
    cache=$tools/cache/pip
    req=$(cd "$(dirname "$0")/.." && pwd)/infrastructure/patroni/requirements.txt
    # Done when the venv was built from this very requirements file (its hash is kept there).
    stamp=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ -x $venv/bin/patroni && $(cat "$venv/.requirements.sha256" 2>/dev/null) == "$stamp" ]]; then
        return 0
    fi
    [[ $mode == check ]] && { echo "install-deps: Patroni $PATRONI_VERSION is not installed in $venv" >&2; return 1; }
    echo "install-deps: installing Patroni $PATRONI_VERSION into $venv" >&2
    mkdir -p "$cache"
    chmod 755 "$tools"
    # Fetch only what the cache lacks (a second machine with the cache needs no network).
    if ! /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --require-hashes --no-index --find-links "$cache" -d "$cache" -r "$req" >/dev/null 2>&1; then
        /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps \
            --require-hashes -d "$cache" -r "$req" || {
            echo "install-deps: cannot download Patroni $PATRONI_VERSION from PyPI (pinned in $req); nothing installed" >&2
            return 1
        }
    fi
    rm -rf "$venv"
    if ! { /usr/bin/python3 -m venv "$venv" &&
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
            --no-index --find-links "$cache" -r "$req" 2> >(grep -v DEPRECATION >&2); }; then
        rm -rf "$venv"
        echo "install-deps: installing Patroni $PATRONI_VERSION into $venv failed" >&2
        return 1
    fi
    echo "$stamp" >"$venv/.requirements.sha256"
    chmod -R a+rX "$tools"
    "$venv/bin/patroni" --version >&2
}

LIBRDKAFKA_VERSION=2.12.1
# librdkafka's build: static (the programs carry it; nothing to find at run time), position-
# independent (our executables are PIE), with TLS, zlib and zstd; lz4 from its own tree; no
# Cyrus SASL (GSSAPI) and no libcurl (OIDC).  Part of the stamp: a change rebuilds it.
librdkafka_cmake=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_LIBDIR=lib
                  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DRDKAFKA_BUILD_STATIC=ON
                  -DRDKAFKA_BUILD_EXAMPLES=OFF -DRDKAFKA_BUILD_TESTS=OFF
                  -DWITH_SSL=ON -DWITH_ZLIB=ON -DWITH_ZSTD=ON -DENABLE_LZ4_EXT=OFF
                  -DWITH_SASL=OFF -DWITH_CURL=OFF)
# Prints the librdkafka source tree of the crate rdkafka-sys that MANIFEST's Cargo.lock pins,
# fetched into CACHE once: with cargo (it comes with this machine kind, rustup's in ~/.cargo/bin;
# bookworm's cargo 0.66 predates the sparse crates.io index), else, where there is no cargo (a
# debian:12 CI container), the .crate file from crates.io, checked against Cargo.lock's sha256.
librdkafka_source() {
    local cache=$1 manifest=$2 cargo version sum crate dir
    cargo=$(type -P cargo || echo "$HOME/.cargo/bin/cargo")
    if [[ -x $cargo ]]; then
        # Offline first: a cached crate needs no network.  --locked: exactly Cargo.lock's.
        if ! CARGO_HOME=$cache/cargo "$cargo" fetch --locked --offline --manifest-path "$manifest/Cargo.toml" >/dev/null 2>&1 &&
            ! CARGO_HOME=$cache/cargo "$cargo" fetch --locked --manifest-path "$manifest/Cargo.toml" >&2; then
            echo "install-deps: cannot fetch rdkafka-sys (pinned in $manifest/Cargo.lock) from crates.io; nothing installed" >&2
            return 1
        fi
        dir=$(ls -d "$cache"/cargo/registry/src/*/rdkafka-sys-*+"$LIBRDKAFKA_VERSION" 2>/dev/null | head -1)
    else
        version=$(awk '$0 == "name = \"rdkafka-sys\"" {f = 1; next} f && /^version/ {gsub(/"/, "", $3); print $3; exit}' "$manifest/Cargo.lock")
        sum=$(awk '$0 == "name = \"rdkafka-sys\"" {f = 1; next} f && /^checksum/ {gsub(/"/, "", $3); print $3; exit}' "$manifest/Cargo.lock")
        crate=$cache/crates/rdkafka-sys-$version.crate
        mkdir -p "$cache/crates"
        if [[ ! -f $crate ]] && ! curl -fsSL --retry 3 -o "$crate.part" \
            "https://static.crates.io/crates/rdkafka-sys/rdkafka-sys-${version/+/%2B}.crate"; then
            rm -f "$crate.part"
            echo "install-deps: no cargo, and cannot download rdkafka-sys $version from crates.io; nothing installed" >&2
            return 1
        fi
        [[ -f $crate ]] || mv "$crate.part" "$crate"
        if [[ $(sha256sum "$crate" | cut -d' ' -f1) != "$sum" ]]; then
            rm -f "$crate"
            echo "install-deps: rdkafka-sys $version does not match the sha256 in $manifest/Cargo.lock; removed, nothing installed" >&2
            return 1
        fi
        dir=$cache/crates/rdkafka-sys-$version
        [[ -d $dir ]] || tar -xzf "$crate" -C "$cache/crates"
    fi
    [[ -f $dir/librdkafka/CMakeLists.txt ]] || {
        echo "install-deps: rdkafka-sys in $cache has no librdkafka $LIBRDKAFKA_VERSION tree; nothing installed" >&2
        return 1
    }
    echo "$dir/librdkafka"
}

# librdkafka in $TOOLS/librdkafka-$LIBRDKAFKA_VERSION (include/, lib/librdkafka.a), built from
# the crate rdkafka-sys (its librdkafka/ directory), fetched by the pinned Cargo.lock into
# $TOOLS/cache (a second run needs no network).  Idempotent.
install_librdkafka() {
    local tools dest manifest stamp src stage log
    tools=$(tools_dir)
    dest=$tools/librdkafka-$LIBRDKAFKA_VERSION
    manifest=$(cd "$(dirname "$0")/.." && pwd)/infrastructure/librdkafka
    stamp=$( (cat "$manifest/Cargo.toml" "$manifest/Cargo.lock"; echo "${librdkafka_cmake[*]}") | sha256sum | cut -d' ' -f1)
    if [[ -f $dest/lib/librdkafka.a && $(cat "$dest/.build.sha256" 2>/dev/null) == "$stamp" ]]; then
        return 0
    fi
    [[ $mode == check ]] && { echo "install-deps: librdkafka $LIBRDKAFKA_VERSION is not installed in $dest" >&2; return 1; }
    echo "install-deps: building librdkafka $LIBRDKAFKA_VERSION into $dest (sources: crates.io rdkafka-sys, ~40 s)" >&2
    mkdir -p "$tools/cache"
    chmod 755 "$tools"
    src=$(librdkafka_source "$tools/cache" "$manifest") || return 1
    stage=$(mktemp -d)
    log=$stage/build.log
    if ! { cmake -S "$src" -B "$stage/build" -DCMAKE_INSTALL_PREFIX="$dest" "${librdkafka_cmake[@]}" &&
        cmake --build "$stage/build" -j"$(nproc)" &&
        DESTDIR=$stage/root cmake --install "$stage/build"; } >"$log" 2>&1; then
        tail -20 "$log" >&2
        echo "install-deps: building librdkafka $LIBRDKAFKA_VERSION failed (log above); nothing installed" >&2
        rm -rf "$stage"
        return 1
    fi
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    mv "$stage/root$dest" "$dest"
    rm -rf "$stage"
    echo "$stamp" >"$dest/.build.sha256"
    chmod -R a+rX "$tools"
    echo "install-deps: librdkafka $(sed -n 's/^Version: //p' "$dest/lib/pkgconfig/rdkafka-static.pc") in $dest" >&2
}

KAFKA_VERSION=4.4.0
# Kafka's jars in $TOOLS/kafka-$KAFKA_VERSION/libs, resolved by Maven from Maven Central into a
# local repository in $TOOLS/cache/m2 (a second run works offline).  Idempotent.
install_kafka() {
    local tools dest m2 pom stamp log
    tools=$(tools_dir)
    dest=$tools/kafka-$KAFKA_VERSION
    m2=$tools/cache/m2
    pom=$(cd "$(dirname "$0")/.." && pwd)/infrastructure/kafka/pom.xml
    stamp=$(cat "$pom" "$(dirname "$pom")/tools-log4j2.xml" | sha256sum | cut -d' ' -f1)
    if [[ -d $dest/libs && $(cat "$dest/.pom.sha256" 2>/dev/null) == "$stamp" ]]; then
        return 0
    fi
    [[ $mode == check ]] && { echo "install-deps: Kafka $KAFKA_VERSION is not installed in $dest" >&2; return 1; }
    echo "install-deps: installing Kafka $KAFKA_VERSION into $dest (Maven Central)" >&2
    mkdir -p "$m2"
    chmod 755 "$tools"
    rm -rf "$dest.new"
    log=$(mktemp)
    # Offline first: a cached repository needs no network.
    if ! mvn -q -o -B -f "$pom" -Dmaven.repo.local="$m2" dependency:copy-dependencies \
        -DoutputDirectory="$dest.new/libs" >"$log" 2>&1 &&
        ! mvn -q -B -f "$pom" -Dmaven.repo.local="$m2" dependency:copy-dependencies \
            -DoutputDirectory="$dest.new/libs" >"$log" 2>&1; then
        grep -E "ERROR|Could not" "$log" | head -5 >&2
        echo "install-deps: cannot fetch Kafka $KAFKA_VERSION (org.apache.kafka:kafka_2.13:$KAFKA_VERSION and the jars of $pom) from Maven Central; the stack's kafka services cannot start (start the others: infractl up --detach --wait SERVICE...)" >&2
        rm -rf "$dest.new" "$log"
        return 1
    fi
    rm -f "$log"
    mkdir -p "$dest.new/config"
    cp "$(dirname "$pom")/tools-log4j2.xml" "$dest.new/config/"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    echo "$stamp" >"$dest/.pom.sha256"
    chmod -R a+rX "$tools"
    echo "install-deps: Kafka $KAFKA_VERSION: $(find "$dest/libs" -name '*.jar' | wc -l) jars" >&2
}

# The unprivileged user the brokers run as (Debian has no kafka package to create one).
ensure_kafka_user() {
    id kafka >/dev/null 2>&1 && return 0
    [[ $mode == check ]] && { echo "install-deps: user kafka is missing" >&2; return 1; }
    $SUDO useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin kafka
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

want=()
tools=0    # Patroni, Kafka (runtime and above)
rdkafka=0  # librdkafka (build and above)
tofu=0     # OpenTofu for the Terraform checks (tests and above)
add_set() {
    case $1 in
    build) want+=("${build_pkgs[@]}"); rdkafka=1 ;;
    runtime) add_set build; want+=("${stack_pkgs[@]}" "${kafka_pkgs[@]}" "${monitoring_pkgs[@]}"); tools=1 ;;
    tests) add_set runtime; want+=("${test_pkgs[@]}"); tofu=1 ;;
    ci | all) add_set tests; want+=("${ci_pkgs[@]}") ;;
    bench) add_set tests ;;
    --with-tests) add_set tests ;; # the old spelling
    *) echo "install-deps: unknown set '$1' (build, runtime, tests, ci, all)" >&2; usage ;;
    esac
}

mode=install
case ${1:-} in
--check) mode=check; shift ;;
--list) mode=list; shift ;;
--tools-dir) tools_dir; exit 0 ;;
-h | --help) usage ;;
esac
(($# == 0)) && set -- runtime
for s in "$@"; do add_set "$s"; done
mapfile -t want < <(printf '%s\n' "${want[@]}" | awk '!seen[$0]++')

if [[ $mode == list ]]; then
    printf '%s\n' "${want[@]}"
    exit 0
fi

# One dpkg-query for all of them: "name<TAB>status" for the installed ones.
declare -A installed=()
while IFS=$'\t' read -r name status; do
    [[ $status == "install ok installed" ]] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package}\t${Status}\n' "${want[@]}" 2>/dev/null || true)
missing=()
for p in "${want[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
# What comes from the other registries, once the Debian packages are there.
install_tools() {
    if ((rdkafka)); then install_librdkafka || return 1; fi
    if ((tools)); then install_patroni && install_kafka && ensure_kafka_user || return 1; fi
    if ((tofu)); then
        if [[ $mode == check ]]; then
            "$(dirname "$0")/install-tofu.sh" --check
        else
            "$(dirname "$0")/install-tofu.sh"
        fi
    fi
}
if ((${#missing[@]} == 0)); then
    install_tools
    exit
fi
if [[ $mode == check ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run scripts/install-deps.sh $*)" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || {
        echo "install-deps: missing ${missing[*]}: run as root or install sudo" >&2
        exit 1
    }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's packages try to start their services through invoke-rc.d; we supervise our own
# instances on other ports, so keep the packaged daemons from starting during install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
    $SUDO chmod 755 $policy
    created_policy=1
fi
trap '[[ $created_policy == 1 ]] && $SUDO rm -f $policy' EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${#missing[@]} package(s)" >&2
install_tools
