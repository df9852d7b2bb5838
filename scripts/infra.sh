#!/usr/bin/env bash
# Install (if needed) and run, on loopback only, the real brokers the
# test-suite needs: Kafka (single-node KRaft, from Maven Central jars),
# Redis and PostgreSQL (Debian packages). Idempotent; `stop` stops only what
# this script started.
#
# Usage:
#   scripts/infra.sh start        ensure installed + running; prints env exports on stdout
#   scripts/infra.sh stop         stop what this script started (data is kept)
#   scripts/infra.sh status       show what is running
#   scripts/infra.sh env          print `export CSMS_TEST_...=...` lines (for eval)
#   scripts/infra.sh kafka-stop   SIGKILL the Kafka broker, wait for its ports to close
#   scripts/infra.sh kafka-start  start the Kafka broker again (same data), wait until ready
#   scripts/infra.sh clean        stop, then delete the state dir (not the jar cache)
#
#   eval "$(scripts/infra.sh start)"   # then run the tests
#
# Progress goes to stderr (prefixed "infra:"); stdout carries only the exports.
#
# Environment:
#   CSMS_INFRA_CACHE   jar cache, kept across runs   (default ~/.cache/csms-infra)
#   CSMS_INFRA_STATE   data dirs, pid files, logs    (default /tmp/csms-infra)
#   CSMS_INFRA_KAFKA_PORT (19092), CSMS_INFRA_KAFKA_CONTROLLER_PORT (19093),
#   CSMS_INFRA_REDIS_PORT (16379)
#   CSMS_INFRA_KAFKA_START_TIMEOUT  seconds a broker start may take (180)
#   CSMS_INFRA_KAFKA_MAX_PARTITIONS a cold `start` wipes the broker's data when it
#       holds more partition directories than this (3000): topics that killed test
#       or benchmark runs left behind, which the broker would load one by one
#       (about 200 per second) before it answers. The broker here is test
#       infrastructure; `kafka-start` (after `kafka-stop`) always keeps the data.
#   PostgreSQL uses the newest installed Debian cluster "main" (port from
#   pg_lsclusters, normally 5432).
#
# Bring your own brokers (e.g. Docker, a dev cluster): when set, the
# corresponding broker is neither installed, started nor stopped, and the value
# is passed through as-is:
#   CSMS_INFRA_USE_EXISTING_KAFKA=host:port          -> CSMS_TEST_KAFKA_BOOTSTRAP
#   CSMS_INFRA_USE_EXISTING_REDIS=redis://host:port/0 -> CSMS_TEST_REDIS_URL
#   CSMS_INFRA_USE_EXISTING_POSTGRES=postgresql+asyncpg://u:p@host:port/db
#                                                     -> CSMS_TEST_DATABASE_URL
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CSMS_INFRA_CACHE:-${HOME:-/root}/.cache/csms-infra}"
STATE="${CSMS_INFRA_STATE:-/tmp/csms-infra}"

KAFKA_VERSION=4.1.1
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_LIBS_MARKER="$KAFKA_HOME/.libs-complete"
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_LOG4J="$SCRIPT_DIR/kafka/log4j2.yaml"
KAFKA_PORT="${CSMS_INFRA_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${CSMS_INFRA_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_DIR="$STATE/kafka"
KAFKA_DATA="$STATE/kafka-data"
KAFKA_PID="$STATE/kafka.pid"
KAFKA_LOG="$STATE/kafka.log"
KAFKA_START_TIMEOUT="${CSMS_INFRA_KAFKA_START_TIMEOUT:-180}"
KAFKA_MAX_PARTITIONS="${CSMS_INFRA_KAFKA_MAX_PARTITIONS:-3000}"

REDIS_PORT="${CSMS_INFRA_REDIS_PORT:-16379}"
REDIS_DIR="$STATE/redis"
REDIS_PID="$STATE/redis.pid"
REDIS_LOG="$STATE/redis.log"

PG_MARKER="$STATE/postgres.started-by-infra"
PG_USER=csms
PG_PASSWORD=csms
PG_TEST_DB=csms_test
PG_MAX_CONNECTIONS=1000

log() { printf 'infra: %s\n' "$*" >&2; }
die() { printf 'infra: ERROR: %s\n' "$*" >&2; exit 1; }

# ----------------------------------------------------------------- helpers --

port_open() { # port -> 0 if something accepts TCP connections on 127.0.0.1:port
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

pid_alive() { # a zombie counts as dead: our daemons are reparented to PID 1,
    # which may reap late (here ~2 s) or never (a container without an init)
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

read_pid() { [[ -s "$1" ]] && tr -dc '0-9' <"$1" || true; }

cmdline_has() { # pid needle
    [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

lock_state() { # serialise concurrent invocations on the same state dir
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock 9
}

APT_UPDATED=0
apt_install() { # packages...
    [[ $EUID -eq 0 ]] || die "need root to apt-get install $*"
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_packages() {
    local pkgs=()
    if [[ -z "${CSMS_INFRA_USE_EXISTING_REDIS:-}" ]]; then
        command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server)
    fi
    if [[ -z "${CSMS_INFRA_USE_EXISTING_POSTGRES:-}" ]]; then
        dpkg -s postgresql >/dev/null 2>&1 || pkgs+=(postgresql)
    fi
    if [[ -z "${CSMS_INFRA_USE_EXISTING_KAFKA:-}" ]]; then
        command -v java >/dev/null || pkgs+=(default-jre-headless)
        # maven is only needed to fill the jar cache
        if [[ ! -f "$KAFKA_LIBS_MARKER" ]] && ! command -v mvn >/dev/null; then
            pkgs+=(maven)
        fi
    fi
    if ((${#pkgs[@]})); then
        apt_install "${pkgs[@]}"
    fi
}

# ------------------------------------------------------------------- kafka --

kafka_java() { # java options for both the broker and the CLI tools
    printf '%s\n' -Djava.awt.headless=true "-Dlog4j2.configurationFile=$KAFKA_LOG4J" \
        -cp "$KAFKA_LIBS/*"
}

java_check() { # kafka 4 needs Java 17+
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
    [[ "${v%%.*}" =~ ^[0-9]+$ && "${v%%.*}" -ge 17 ]] \
        || die "kafka $KAFKA_VERSION needs Java 17+, found '${v:-none}' ($(command -v java || echo 'no java'))"
}

kafka_ensure_libs() {
    if [[ -f "$KAFKA_LIBS_MARKER" && -d "$KAFKA_LIBS" ]]; then
        return
    fi
    command -v mvn >/dev/null || die "mvn not found"
    log "downloading Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
    local t0=$SECONDS tmp="$KAFKA_HOME/libs.tmp.$$"
    mkdir -p "$KAFKA_HOME"
    rm -rf "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_HOME/mvn.log" 2>&1; then
        tail -n 40 "$KAFKA_HOME/mvn.log" >&2
        rm -rf "$tmp"
        die "maven could not fetch the kafka jars (full output: $KAFKA_HOME/mvn.log)"
    fi
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar "$tmp"/log4j-slf4j2-impl-*.jar >/dev/null \
        || die "maven did not produce the expected jars in $tmp"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    ls "$KAFKA_LIBS" >"$KAFKA_LIBS_MARKER"
    log "kafka jars ready ($(wc -l <"$KAFKA_LIBS_MARKER") jars, $((SECONDS - t0)) s)"
}

kafka_running_pid() { # prints the pid of our broker if it runs
    local pid
    pid="$(read_pid "$KAFKA_PID")"
    if pid_alive "$pid" && cmdline_has "$pid" "kafka.Kafka" && cmdline_has "$pid" "$KAFKA_DIR/server.properties"; then
        echo "$pid"
    fi
}

kafka_write_config() {
    mkdir -p "$KAFKA_DIR"
    cat >"$KAFKA_DIR/server.properties" <<EOF
# generated by scripts/infra.sh - single-node KRaft broker+controller for tests
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL (kafka-stop) the restarted controller keeps the dead broker's
# registration until its session expires (default 9 s) before it lets the new
# incarnation in: a shorter session makes kafka-start much faster.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
EOF
}

kafka_format_if_needed() {
    # A --standalone format records the controller endpoint in the metadata
    # log: if the ports changed since the last format, start from scratch.
    local ports="$KAFKA_PORT $KAFKA_CONTROLLER_PORT"
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
        if [[ "$(cat "$KAFKA_DIR/formatted-ports" 2>/dev/null || true)" == "$ports" ]]; then
            return
        fi
        log "kafka ports changed: wiping $KAFKA_DATA"
        rm -rf "$KAFKA_DATA"
    fi
    local opts cluster_id=""
    mapfile -t opts < <(kafka_java)
    # same format as `kafka.tools.StorageTool random-uuid` (base64url of 16
    # random bytes, no padding, not starting with '-') without a 1.5 s JVM run
    until [[ "$cluster_id" =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{21}$ ]]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    log "formatting kafka storage $KAFKA_DATA (cluster id $cluster_id)"
    java "${opts[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
        -c "$KAFKA_DIR/server.properties" >>"$KAFKA_LOG" 2>&1 \
        || die "kafka storage format failed (see $KAFKA_LOG)"
    echo "$ports" >"$KAFKA_DIR/formatted-ports"
}

kafka_wipe_litter() { # a cold start: drop the data of a broker loaded with old topics
    [[ -d "$KAFKA_DATA" ]] || return 0
    local dirs
    dirs="$(find "$KAFKA_DATA" -mindepth 1 -maxdepth 1 -type d -name '*-[0-9]*' | wc -l)"
    if ((dirs > KAFKA_MAX_PARTITIONS)); then
        log "kafka: $dirs partition directories in $KAFKA_DATA (over $KAFKA_MAX_PARTITIONS, CSMS_INFRA_KAFKA_MAX_PARTITIONS): wiping it, a fresh broker starts in seconds"
        rm -rf "$KAFKA_DATA"
    fi
}

kafka_start() { # cold|warm: a cold start may wipe litter (kafka_wipe_litter)
    local mode="${1:-warm}"
    if [[ -n "${CSMS_INFRA_USE_EXISTING_KAFKA:-}" ]]; then
        log "kafka: using existing $CSMS_INFRA_USE_EXISTING_KAFKA"
        return
    fi
    local pid
    pid="$(kafka_running_pid)"
    if [[ -n "$pid" ]] && port_open "$KAFKA_PORT"; then
        log "kafka: already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
        return
    fi
    if [[ -n "$pid" ]]; then
        # our process but not listening: starting up, or wedged - wait for it
        kafka_wait_ready "$pid" 0 && return
        log "kafka: pid $pid is not healthy, killing it"
        kafka_kill
    fi
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        port_open "$p" && die "port $p is in use by another process ($(ss -Hltnp "sport = :$p" 2>/dev/null | grep -o 'users:.*' || echo '?')); stop it, choose CSMS_INFRA_KAFKA_PORT/CSMS_INFRA_KAFKA_CONTROLLER_PORT, or set CSMS_INFRA_USE_EXISTING_KAFKA"
    done
    java_check
    kafka_ensure_libs
    mkdir -p "$STATE"
    [[ -f "$KAFKA_LOG" ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"
    : >"$KAFKA_LOG"
    kafka_write_config
    [[ "$mode" == cold ]] && kafka_wipe_litter
    kafka_format_if_needed
    local opts t0=$SECONDS
    mapfile -t opts < <(kafka_java)
    log "kafka: starting broker on 127.0.0.1:$KAFKA_PORT (log $KAFKA_LOG)"
    rm -f "$KAFKA_PID" # a dead broker's pid must not pass for the new one's
    # setsid: own session, so the broker outlives the caller's process group.
    # The inner shell writes its own pid and execs java, so the pid is java's.
    # 9>&-: the daemon must not inherit (and hold) the state-dir lock.
    # shellcheck disable=SC2016  # $$ and $0 are for the inner shell
    setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$KAFKA_PID" \
        java -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError "${opts[@]}" \
        kafka.Kafka "$KAFKA_DIR/server.properties" \
        </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
    local i
    for ((i = 0; i < 300; i++)); do
        [[ -s "$KAFKA_PID" ]] && break
        sleep 0.1
    done
    pid="$(read_pid "$KAFKA_PID")"
    if ! kafka_wait_ready "$pid" 1; then
        log "kafka: not ready after ${KAFKA_START_TIMEOUT}s; last log lines:"
        tail -n 30 "$KAFKA_LOG" >&2 || true
        die "kafka did not become ready within ${KAFKA_START_TIMEOUT}s (CSMS_INFRA_KAFKA_START_TIMEOUT; log $KAFKA_LOG)"
    fi
    log "kafka: ready (pid $pid, $((SECONDS - t0)) s)"
}

kafka_wait_ready() { # pid verbose -> 0 when the port accepts connections and the broker says it started
    local pid=$1 verbose=$2 deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! pid_alive "$pid"; then
            if ((verbose)); then
                log "kafka: broker process $pid exited; last log lines:"
                tail -n 30 "$KAFKA_LOG" >&2 || true
            fi
            return 1
        fi
        # the listener socket is bound before request processing is enabled:
        # also wait for the "Kafka Server started" line of KafkaRaftServer
        if port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null; then
            return 0
        fi
        sleep 0.25
    done
    return 1
}

kafka_kill() { # SIGKILL our broker and wait until its ports are closed
    local pid
    pid="$(kafka_running_pid)"
    if [[ -n "$pid" ]]; then
        log "kafka: SIGKILL pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        while pid_alive "$pid"; do sleep 0.1; done
    else
        log "kafka: not running (nothing started by this script)"
    fi
    rm -f "$KAFKA_PID"
    kafka_wait_ports_closed
}

kafka_wait_ports_closed() {
    local deadline=$((SECONDS + 30))
    while port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; do
        ((SECONDS < deadline)) || die "kafka ports $KAFKA_PORT/$KAFKA_CONTROLLER_PORT still open (another process?)"
        sleep 0.1
    done
}

kafka_stop_graceful() {
    [[ -n "${CSMS_INFRA_USE_EXISTING_KAFKA:-}" ]] && return
    local pid
    pid="$(kafka_running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$KAFKA_PID"
        return
    fi
    log "kafka: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if pid_alive "$pid"; then
        log "kafka: still alive after 30 s, SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while pid_alive "$pid"; do sleep 0.1; done
    fi
    rm -f "$KAFKA_PID"
}

# ------------------------------------------------------------------- redis --

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" == PONG ]]; }

redis_running_pid() {
    local pid
    pid="$(read_pid "$REDIS_PID")"
    if pid_alive "$pid" && cmdline_has "$pid" "redis-server"; then echo "$pid"; fi
}

redis_start() {
    if [[ -n "${CSMS_INFRA_USE_EXISTING_REDIS:-}" ]]; then
        log "redis: using existing $CSMS_INFRA_USE_EXISTING_REDIS"
        return
    fi
    local pid
    pid="$(redis_running_pid)"
    if redis_ping; then
        if [[ -n "$pid" ]]; then
            log "redis: already running (pid $pid, 127.0.0.1:$REDIS_PORT)"
        else
            log "redis: something already answers PING on 127.0.0.1:$REDIS_PORT (not started by this script; reusing it, stop will not touch it)"
        fi
        return
    fi
    port_open "$REDIS_PORT" && die "port $REDIS_PORT is in use by something that is not redis; set CSMS_INFRA_REDIS_PORT"
    mkdir -p "$REDIS_DIR"
    rm -f "$REDIS_PID"
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --dir "$REDIS_DIR" \
        --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" >&2 9>&-
    local deadline=$((SECONDS + 20))
    until redis_ping; do
        ((SECONDS < deadline)) || die "redis did not answer PING (see $REDIS_LOG)"
        sleep 0.1
    done
    log "redis: ready (pid $(read_pid "$REDIS_PID"))"
}

redis_stop() {
    [[ -n "${CSMS_INFRA_USE_EXISTING_REDIS:-}" ]] && return
    local pid
    pid="$(redis_running_pid)"
    if [[ -n "$pid" ]]; then
        log "redis: stopping pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 15))
        while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$REDIS_PID"
}

# -------------------------------------------------------------- postgresql --

PG_VERSION="" PG_CLUSTER=main PG_PORT=5432

pg_detect() { # sets PG_VERSION / PG_PORT from the installed clusters (no-op if none)
    PG_VERSION=""
    if [[ -d /etc/postgresql ]]; then
        # shellcheck disable=SC2010  # entries are version numbers
        PG_VERSION="$(ls /etc/postgresql 2>/dev/null | grep -E '^[0-9.]+$' | sort -V | tail -n1 || true)"
    fi
    if [[ -n "$PG_VERSION" && -f "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf" ]]; then
        PG_PORT="$(pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" 2>/dev/null | awk '{print $3}')"
        PG_PORT="${PG_PORT:-5432}"
    else
        PG_VERSION=""
    fi
}

pg_online() { [[ "$(pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" 2>/dev/null | awk '{print $4}')" == online* ]]; }

as_postgres() { # run a command as the postgres OS user, from a readable cwd
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -n -u postgres -- "$@")
    fi
}

pg_start() {
    if [[ -n "${CSMS_INFRA_USE_EXISTING_POSTGRES:-}" ]]; then
        log "postgres: using existing $CSMS_INFRA_USE_EXISTING_POSTGRES"
        return
    fi
    pg_detect
    if [[ -z "$PG_VERSION" ]]; then
        local v
        # shellcheck disable=SC2012  # entries are version numbers
        v="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n1 || true)"
        [[ -n "$v" ]] || die "postgresql is not installed (no /usr/lib/postgresql/*)"
        log "postgres: creating cluster $v/$PG_CLUSTER"
        pg_createcluster "$v" "$PG_CLUSTER" >&2 9>&-
        pg_detect
        [[ -n "$PG_VERSION" ]] || die "could not create a postgres cluster"
    fi
    if pg_online; then
        log "postgres: cluster $PG_VERSION/$PG_CLUSTER already running (port $PG_PORT)"
    else
        log "postgres: starting cluster $PG_VERSION/$PG_CLUSTER (port $PG_PORT)"
        pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start >&2 9>&-
        mkdir -p "$STATE"
        echo "$PG_VERSION $PG_CLUSTER" >"$PG_MARKER"
    fi
    pg_wait_ready
    pg_ensure_connections
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE csms OWNER $PG_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'csms') \gexec
SELECT 'CREATE DATABASE $PG_TEST_DB OWNER $PG_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_TEST_DB') \gexec
SQL
    log "postgres: ready (role $PG_USER, databases csms and $PG_TEST_DB)"
}

pg_wait_ready() {
    local deadline=$((SECONDS + 60))
    until pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1; do
        ((SECONDS < deadline)) || die "postgres not ready on 127.0.0.1:$PG_PORT"
        sleep 0.2
    done
}

pg_ensure_connections() {
    # Every test cluster and benchmark runs several processes with connection pools,
    # side by side: the default 100 connections run out (TooManyConnectionsError).
    local current
    current="$(as_postgres psql -X -At -p "$PG_PORT" -d postgres -c 'SHOW max_connections')"
    if ((current < PG_MAX_CONNECTIONS)); then
        log "postgres: max_connections $current -> $PG_MAX_CONNECTIONS (restart)"
        as_postgres psql -X -q -p "$PG_PORT" -d postgres \
            -c "ALTER SYSTEM SET max_connections = $PG_MAX_CONNECTIONS" >&2
        pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" restart >&2 9>&-
        pg_wait_ready
    fi
}

pg_stop() {
    [[ -n "${CSMS_INFRA_USE_EXISTING_POSTGRES:-}" ]] && return
    if [[ ! -f "$PG_MARKER" ]]; then
        log "postgres: not started by this script, leaving it alone"
        return
    fi
    local v c
    read -r v c <"$PG_MARKER"
    if [[ "$(pg_lsclusters -h "$v" "$c" 2>/dev/null | awk '{print $4}')" == online* ]]; then
        log "postgres: stopping cluster $v/$c"
        pg_ctlcluster --skip-systemctl-redirect "$v" "$c" stop -m fast >&2
    fi
    rm -f "$PG_MARKER"
}

# --------------------------------------------------------------------- env --

print_env() {
    local kafka redis db
    kafka="${CSMS_INFRA_USE_EXISTING_KAFKA:-127.0.0.1:$KAFKA_PORT}"
    redis="${CSMS_INFRA_USE_EXISTING_REDIS:-redis://127.0.0.1:$REDIS_PORT/0}"
    if [[ -n "${CSMS_INFRA_USE_EXISTING_POSTGRES:-}" ]]; then
        db="$CSMS_INFRA_USE_EXISTING_POSTGRES"
    else
        command -v pg_lsclusters >/dev/null && pg_detect
        db="postgresql+asyncpg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_TEST_DB"
    fi
    printf 'export CSMS_TEST_KAFKA_BOOTSTRAP=%q\n' "$kafka"
    printf 'export CSMS_TEST_REDIS_URL=%q\n' "$redis"
    printf 'export CSMS_TEST_DATABASE_URL=%q\n' "$db"
}

status() {
    local rc=0 pid
    if [[ -n "${CSMS_INFRA_USE_EXISTING_KAFKA:-}" ]]; then
        echo "kafka:    existing $CSMS_INFRA_USE_EXISTING_KAFKA"
    else
        pid="$(kafka_running_pid)"
        if [[ -n "$pid" ]] && port_open "$KAFKA_PORT"; then
            echo "kafka:    running  pid $pid  127.0.0.1:$KAFKA_PORT  (log $KAFKA_LOG)"
        elif [[ -n "$pid" ]]; then
            echo "kafka:    starting pid $pid  (port $KAFKA_PORT not open yet)"; rc=1
        else
            echo "kafka:    stopped"; rc=1
        fi
    fi
    if [[ -n "${CSMS_INFRA_USE_EXISTING_REDIS:-}" ]]; then
        echo "redis:    existing $CSMS_INFRA_USE_EXISTING_REDIS"
    else
        pid="$(redis_running_pid)"
        if redis_ping; then
            if [[ -n "$pid" ]]; then
                echo "redis:    running  pid $pid  127.0.0.1:$REDIS_PORT"
            else
                echo "redis:    running  127.0.0.1:$REDIS_PORT  (not started by this script)"
            fi
        else
            echo "redis:    stopped"; rc=1
        fi
    fi
    if [[ -n "${CSMS_INFRA_USE_EXISTING_POSTGRES:-}" ]]; then
        echo "postgres: existing $CSMS_INFRA_USE_EXISTING_POSTGRES"
    else
        if command -v pg_lsclusters >/dev/null; then pg_detect; fi
        if [[ -n "$PG_VERSION" ]] && pg_online && pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1; then
            echo "postgres: running  cluster $PG_VERSION/$PG_CLUSTER  127.0.0.1:$PG_PORT$([[ -f "$PG_MARKER" ]] && echo '  (started by this script)' || echo '  (not started by this script)')"
        else
            echo "postgres: stopped"; rc=1
        fi
    fi
    return $rc
}

# -------------------------------------------------------------------- main --

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

cmd="${1:-}"
case "$cmd" in
start)
    lock_state
    t0=$SECONDS
    ensure_packages
    redis_start
    pg_start
    kafka_start cold
    log "all up ($((SECONDS - t0)) s)"
    print_env
    ;;
stop)
    lock_state
    kafka_stop_graceful
    redis_stop
    pg_stop
    log "stopped"
    ;;
clean)
    lock_state
    kafka_stop_graceful
    redis_stop
    pg_stop
    log "removing $STATE"
    rm -rf "$STATE"
    ;;
status) status ;;
env) print_env ;;
kafka-stop)
    [[ -z "${CSMS_INFRA_USE_EXISTING_KAFKA:-}" ]] || die "kafka-stop: CSMS_INFRA_USE_EXISTING_KAFKA is set, not ours to kill"
    lock_state
    kafka_kill
    ;;
kafka-start)
    [[ -z "${CSMS_INFRA_USE_EXISTING_KAFKA:-}" ]] || die "kafka-start: CSMS_INFRA_USE_EXISTING_KAFKA is set"
    lock_state
    kafka_start
    ;;
-h | --help | help) usage ;;
*) usage ;;
esac
