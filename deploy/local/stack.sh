#!/usr/bin/env bash
# Local fraudmesh stack without Docker: a real single-node Apache Kafka (KRaft,
# combined broker+controller, jars from Maven Central) and a real Redis, both
# bound to 127.0.0.1 and run as plain background processes.
#
# Usage: bash deploy/local/stack.sh <command>
#   up      fetch jars if needed, render configs, format storage once, start
#           whatever is not running, wait until both answer (idempotent)
#   down    stop what `up` started (pidfiles), SIGTERM then SIGKILL (idempotent)
#   status  one line per component; exit 0 if both run, 3 otherwise
#   jars    fetch the Kafka jars with Maven, only if missing or pom.xml changed
#   logs    print the log file paths
#
# Environment (defaults):
#   FRAUDMESH_STACK_DIR    <repo>/.stack  state: jars, data, logs, pidfiles
#   KAFKA_PORT             19092          broker (PLAINTEXT) listener
#   KAFKA_CONTROLLER_PORT  19093          KRaft controller listener
#   REDIS_PORT             16379
#   KAFKA_HEAP             "-Xms256m -Xmx1g"
#   KAFKA_START_TIMEOUT    90   seconds;  REDIS_START_TIMEOUT 15;  STOP_TIMEOUT 30
#   JAVA_HOME              optional; otherwise `java` from PATH
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"

STATE="${FRAUDMESH_STACK_DIR:-$REPO_ROOT/.stack}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${REDIS_PORT:-16379}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx1g}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-15}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

# Sources (in the repo).
POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_SERVER_TEMPLATE="$SCRIPT_DIR/kafka/server.properties.in"
KAFKA_LOG4J_TEMPLATE="$SCRIPT_DIR/kafka/log4j2.properties.in"
REDIS_CONF="$SCRIPT_DIR/redis.conf"

say() { printf '%s\n' "$*"; }
warn() { printf 'stack.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'stack.sh: error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- settings --

# Absolute and canonical: the path is part of the argv that identifies our processes.
STATE="$(realpath -m -- "$STATE")"
# The path ends up in server.properties (log.dirs is a comma-separated list).
if [[ "$STATE" =~ [[:space:],\\] ]]; then
  die "FRAUDMESH_STACK_DIR must not contain whitespace, commas or backslashes: '$STATE'"
fi

check_port() { # name value
  if ! [[ "$2" =~ ^[0-9]+$ ]] || ((10#$2 < 1 || 10#$2 > 65535)); then
    die "$1 must be a TCP port number (1-65535), got '$2'"
  fi
  printf -v "$1" '%d' "$((10#$2))" # drop leading zeros
}
check_port KAFKA_PORT "$KAFKA_PORT"
check_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
check_port REDIS_PORT "$REDIS_PORT"
if ((KAFKA_PORT == KAFKA_CONTROLLER_PORT || KAFKA_PORT == REDIS_PORT || KAFKA_CONTROLLER_PORT == REDIS_PORT)); then
  die "KAFKA_PORT ($KAFKA_PORT), KAFKA_CONTROLLER_PORT ($KAFKA_CONTROLLER_PORT) and REDIS_PORT ($REDIS_PORT) must all differ"
fi
for _t in KAFKA_START_TIMEOUT REDIS_START_TIMEOUT STOP_TIMEOUT; do
  [[ "${!_t}" =~ ^[0-9]+$ ]] || die "$_t must be a whole number of seconds, got '${!_t}'"
done
unset _t

# State layout.
KAFKA_DIR="$STATE/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_JARS_STAMP="$KAFKA_LIBS/.pom.sha256"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
KAFKA_LOG="$KAFKA_LOGS/server.log"
KAFKA_STDOUT="$KAFKA_LOGS/stdout.log"
REDIS_DIR="$STATE/redis"
REDIS_DATA="$REDIS_DIR/data"
REDIS_LOGS="$REDIS_DIR/logs"
REDIS_LOG="$REDIS_LOGS/redis.log"
REDIS_STDOUT="$REDIS_LOGS/stdout.log"
RUN_DIR="$STATE/run"
KAFKA_PIDFILE="$RUN_DIR/kafka.pid"
REDIS_PIDFILE="$RUN_DIR/redis.pid"

# ----------------------------------------------------------------- helpers --

LOCKED=0
take_lock() {
  # Serialise up/down/jars on the same state dir (e.g. `make -j`).
  ((LOCKED)) && return 0
  mkdir -p "$RUN_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>>"$RUN_DIR/stack.lock"
    if ! flock -n 9; then
      say "waiting for another stack.sh working on $STATE (lock $RUN_DIR/stack.lock)..."
      flock -w 300 9 || die "another stack.sh is still busy with $STATE after 300s (lock $RUN_DIR/stack.lock)"
    fi
  fi
  LOCKED=1
}

# The argv of a live process, one argument per line; fails if it is gone.
proc_args() {
  local args
  args="$({ tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  [[ -n "$args" ]] || return 1 # zombie or kernel thread
  printf '%s\n' "$args"
}

# Is <pid> the <component> that this script starts for this state dir?
# Checked on the exact arguments, never on a process name.
is_ours() { # component pid
  local args
  [[ "$2" =~ ^[0-9]+$ ]] || return 1
  args="$(proc_args "$2")" || return 1
  case "$1" in
    kafka) grep -qxF -- "$KAFKA_CONF" <<<"$args" ;;
    redis) grep -qxF -- "$REDIS_CONF" <<<"$args" && grep -qxF -- "$REDIS_DATA" <<<"$args" ;;
    *) return 1 ;;
  esac
}

pidfile_of() {
  case "$1" in
    kafka) printf '%s\n' "$KAFKA_PIDFILE" ;;
    redis) printf '%s\n' "$REDIS_PIDFILE" ;;
  esac
}

# Print the pid of our running <component>. With "clean", remove a stale pidfile.
running_pid() { # component [clean]
  local pidfile pid=""
  pidfile="$(pidfile_of "$1")"
  [[ -f "$pidfile" ]] || return 1
  read -r pid <"$pidfile" || true
  if is_ours "$1" "$pid"; then
    printf '%s\n' "$pid"
    return 0
  fi
  if [[ "${2:-}" == clean ]]; then
    printf '%s: removing stale pidfile %s (pid %s is not our %s)\n' "$1" "$pidfile" "'$pid'" "$1" >&2
    rm -f "$pidfile"
  fi
  return 1
}

have_ss() { command -v ss >/dev/null 2>&1; }

# Does anything listen on <port> (any local address)?
port_in_use() {
  if have_ss; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    port_accepts "$1"
  fi
}

# Does 127.0.0.1:<port> accept a TCP connection?
port_accepts() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash, on purpose
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

# pid of a process listening on <port>, if ss can tell.
port_holder() {
  have_ss || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

require_port_free() { # component port envvar
  local holder who=""
  port_in_use "$2" || return 0
  holder="$(port_holder "$2")"
  if [[ -n "$holder" ]]; then
    if is_ours "$1" "$holder"; then
      die "port $2 ($3) is held by pid $holder, which is a $1 started from $STATE whose pidfile is gone; stop it yourself (kill $holder) and run 'up' again"
    fi
    who=" by pid $holder ($(proc_args "$holder" | tr '\n' ' ' | cut -c1-120))"
  fi
  die "port $2 ($3) is already in use${who}, not by a $1 of this stack; not starting $1. Stop that process or pick another port with $3=<port>"
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Print (to stderr) the last <lines> lines of <file> written after byte <offset>.
tail_log() { # file [lines] [offset]
  local n="${2:-40}" from="${3:-0}" text
  (("$(file_size "$1")" < from)) && from=0 # rolled over meanwhile
  text="$(tail -c +"$((from + 1))" "$1" 2>/dev/null | tail -n "$n")" || true
  if [[ -n "$text" ]]; then
    printf -- '----- last %s lines of %s -----\n%s\n-----\n' "$n" "$1" "$text" >&2
  else
    printf -- '----- nothing new in %s -----\n' "$1" >&2
  fi
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Render a @PLACEHOLDER@ template to <out>.new (caller moves it into place).
render() { # template out
  local content
  content="$(<"$1")"
  content="${content//@KAFKA_PORT@/"$KAFKA_PORT"}"
  content="${content//@KAFKA_CONTROLLER_PORT@/"$KAFKA_CONTROLLER_PORT"}"
  content="${content//@DATA_DIR@/"$KAFKA_DATA"}"
  content="${content//@LOG_DIR@/"$KAFKA_LOGS"}"
  if [[ "$content" =~ @[A-Z_]+@ ]]; then
    die "$1: unknown placeholder ${BASH_REMATCH[0]}"
  fi
  printf '%s\n' "$content" >"$2.new"
}

# Render both Kafka configs. A running Kafka keeps the files it started with:
# if they would change (ports, template edits), tell the user to restart.
render_kafka_configs() { # running(0|1)
  local pair tmpl out changed=()
  for pair in "$KAFKA_SERVER_TEMPLATE:$KAFKA_CONF" "$KAFKA_LOG4J_TEMPLATE:$KAFKA_LOG4J"; do
    tmpl="${pair%%:*}"
    out="${pair#*:}"
    render "$tmpl" "$out"
    if cmp -s "$out.new" "$out"; then
      rm -f "$out.new"
    elif (($1)); then
      rm -f "$out.new"
      changed+=("$out")
    else
      mv -f "$out.new" "$out"
    fi
  done
  if ((${#changed[@]})); then
    die "kafka is running with an older config (${changed[*]}); ports or templates changed. Run 'stack.sh down' then 'stack.sh up'"
  fi
}

java_major() {
  local v
  v="$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([0-9][0-9]*\).*/\1/p' | head -n1)"
  printf '%s\n' "${v:-0}"
}

# ---------------------------------------------------------------- commands --

cmd_jars() {
  local want tmp
  take_lock
  [[ -f "$POM" ]] || die "missing $POM"
  want="$(sha256_of "$POM")"
  if [[ -f "$KAFKA_JARS_STAMP" && "$(<"$KAFKA_JARS_STAMP")" == "$want" ]] &&
    compgen -G "$KAFKA_LIBS/kafka_*.jar" >/dev/null; then
    say "kafka jars: up to date ($KAFKA_LIBS)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found; it is needed once to fetch the Kafka jars (apt-get install -y maven)"
  mkdir -p "$KAFKA_DIR"
  tmp="$KAFKA_DIR/libs.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  say "kafka jars: fetching with Maven into $KAFKA_LIBS (first time takes about a minute)..."
  if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_DIR/mvn.log" 2>&1; then
    tail_log "$KAFKA_DIR/mvn.log"
    rm -rf "$tmp"
    die "Maven could not fetch the Kafka jars (full output: $KAFKA_DIR/mvn.log)"
  fi
  compgen -G "$tmp/kafka_*.jar" >/dev/null || die "Maven ran but no kafka_*.jar landed in $tmp"
  # A running JVM keeps its jars open, so swapping the directory is safe on Linux.
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  printf '%s\n' "$want" >"$KAFKA_JARS_STAMP"
  say "kafka jars: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$KAFKA_LIBS" | cut -f1)"
  if running_pid kafka >/dev/null; then
    warn "kafka is running with the previous jars; run 'stack.sh down' then 'stack.sh up' to use the new ones"
  fi
}

format_kafka_storage() {
  local id out
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  if [[ -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
    id="$(<"$KAFKA_CLUSTER_ID_FILE")"
  else
    out="$("$JAVA" -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      kafka.tools.StorageTool random-uuid 2>&1)" || die "kafka StorageTool random-uuid failed: $out"
    id="$(printf '%s\n' "$out" | tail -n1 | tr -d '[:space:]')"
    printf '%s\n' "$id" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "bad Kafka cluster id '$id' (from $KAFKA_CLUSTER_ID_FILE?)"
  say "kafka: formatting storage in $KAFKA_DATA (cluster id $id)"
  if ! "$JAVA" -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    kafka.tools.StorageTool format -t "$id" -c "$KAFKA_CONF" --standalone \
    >"$KAFKA_LOGS/format.log" 2>&1; then
    tail_log "$KAFKA_LOGS/format.log"
    die "formatting Kafka storage failed"
  fi
}

start_kafka() {
  local heap=() major pid
  read -r -a heap <<<"$KAFKA_HEAP"
  major="$(java_major)"
  ((major >= 17)) || die "Kafka 4 needs Java 17 or newer; '$JAVA' is version '$major'"
  format_kafka_storage
  printf '\n===== %s stack.sh: starting kafka =====\n' "$(date '+%F %T')" >>"$KAFKA_STDOUT"
  (
    cd "$KAFKA_DIR"
    exec setsid nohup "$JAVA" "${heap[@]}" \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
      -XX:ErrorFile="$KAFKA_LOGS/hs_err_pid%p.log" \
      -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      -Dlog4j2.shutdownHookEnabled=false \
      -cp "$KAFKA_LIBS/*" \
      kafka.Kafka "$KAFKA_CONF" 9>&- # do not inherit the stack.sh lock
  ) </dev/null >>"$KAFKA_STDOUT" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$KAFKA_PIDFILE"
  say "kafka: started (pid $pid), waiting up to ${KAFKA_START_TIMEOUT}s..."
}

start_redis() {
  local pid
  printf '\n===== %s stack.sh: starting redis =====\n' "$(date '+%F %T')" >>"$REDIS_STDOUT"
  (
    cd "$REDIS_DATA"
    exec setsid nohup redis-server "$REDIS_CONF" \
      --port "$REDIS_PORT" \
      --dir "$REDIS_DATA" \
      --logfile "$REDIS_LOG" \
      --pidfile "$REDIS_PIDFILE" 9>&- # do not inherit the stack.sh lock
  ) </dev/null >>"$REDIS_STDOUT" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$REDIS_PIDFILE"
  say "redis: started (pid $pid)"
}

# Has "Kafka Server started" been logged past byte <offset> of server.log?
kafka_logged_started() { # offset
  local from="$1"
  (("$(file_size "$KAFKA_LOG")" < from)) && from=0 # rolled over meanwhile
  # (no grep -q: with pipefail, an early exit would SIGPIPE tail)
  tail -c +"$((from + 1))" "$KAFKA_LOG" 2>/dev/null | grep -F "Kafka Server started" >/dev/null
}

wait_kafka() { # pid fresh(0|1) server.log-offset stdout.log-offset
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while :; do
    if ! is_ours kafka "$1"; then
      # Just forked, not yet exec'd into java: its arguments are still the subshell's.
      if kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); then sleep 0.05; continue; fi
      rm -f "$KAFKA_PIDFILE"
      tail_log "$KAFKA_LOG" 40 "$3"
      tail_log "$KAFKA_STDOUT" 40 "$4"
      die "kafka (pid $1) exited during startup; see the logs above ('stack.sh down' stops whatever did start)"
    fi
    if port_accepts "$KAFKA_PORT" && { (($2 == 0)) || kafka_logged_started "$3"; }; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$KAFKA_LOG" 40 "$3"
      tail_log "$KAFKA_STDOUT" 20 "$4"
      die "kafka (pid $1) not ready on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s; it is still running ('stack.sh down' stops it)"
    fi
    sleep 0.5
  done
}

redis_pong() {
  [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

wait_redis() { # pid redis.log-offset stdout.log-offset
  local deadline=$((SECONDS + REDIS_START_TIMEOUT))
  while :; do
    if ! is_ours redis "$1"; then
      # Just forked, not yet exec'd into redis-server: its arguments are still the subshell's.
      if kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); then sleep 0.05; continue; fi
      rm -f "$REDIS_PIDFILE"
      tail_log "$REDIS_LOG" 40 "$2"
      tail_log "$REDIS_STDOUT" 40 "$3"
      die "redis (pid $1) exited during startup; see the logs above"
    fi
    redis_pong && return 0
    if ((SECONDS >= deadline)); then
      tail_log "$REDIS_LOG" 40 "$2"
      tail_log "$REDIS_STDOUT" 20 "$3"
      die "redis (pid $1) did not answer PING on 127.0.0.1:$REDIS_PORT within ${REDIS_START_TIMEOUT}s; it is still running ('stack.sh down' stops it)"
    fi
    sleep 0.2
  done
}

# Does our running redis use REDIS_PORT? (argv: ... --port <n> ...)
redis_uses_port() { # pid
  proc_args "$1" | awk -v p="$REDIS_PORT" 'prev == "--port" && $0 == p { f = 1 } { prev = $0 } END { exit !f }'
}

cmd_up() {
  local t0="${EPOCHREALTIME//[!0-9]/}" kafka_pid="" redis_pid="" kafka_fresh=0 redis_fresh=0
  local klog_at=0 kout_at=0 rlog_at=0 rout_at=0
  take_lock

  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need Java 17+; apt-get install -y openjdk-17-jre-headless)"
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found; install it with: apt-get install -y redis-server"
  command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found; install it with: apt-get install -y redis-tools"
  [[ -f "$REDIS_CONF" ]] || die "missing $REDIS_CONF"

  cmd_jars
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS" "$REDIS_DATA" "$REDIS_LOGS" "$RUN_DIR"

  kafka_pid="$(running_pid kafka clean)" || kafka_pid=""
  redis_pid="$(running_pid redis clean)" || redis_pid=""
  render_kafka_configs "$([[ -n "$kafka_pid" ]] && echo 1 || echo 0)"
  if [[ -n "$redis_pid" ]] && ! redis_uses_port "$redis_pid"; then
    die "redis (pid $redis_pid) is running on another port than REDIS_PORT=$REDIS_PORT; run 'stack.sh down' then 'stack.sh up'"
  fi

  # Check every port we are about to bind before starting anything.
  if [[ -z "$kafka_pid" ]]; then
    require_port_free kafka "$KAFKA_PORT" KAFKA_PORT
    require_port_free kafka "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  fi
  [[ -n "$redis_pid" ]] || require_port_free redis "$REDIS_PORT" REDIS_PORT

  if [[ -n "$kafka_pid" ]]; then
    say "kafka: already running (pid $kafka_pid)"
  else
    klog_at="$(file_size "$KAFKA_LOG")"
    kout_at="$(file_size "$KAFKA_STDOUT")"
    start_kafka
    kafka_pid="$(<"$KAFKA_PIDFILE")"
    kafka_fresh=1
  fi
  if [[ -n "$redis_pid" ]]; then
    say "redis: already running (pid $redis_pid)"
  else
    rlog_at="$(file_size "$REDIS_LOG")"
    rout_at="$(file_size "$REDIS_STDOUT")"
    start_redis
    redis_pid="$(<"$REDIS_PIDFILE")"
    redis_fresh=1
  fi

  wait_redis "$redis_pid" "$rlog_at" "$rout_at"
  ((redis_fresh)) && say "redis: ready on 127.0.0.1:$REDIS_PORT"
  wait_kafka "$kafka_pid" "$kafka_fresh" "$klog_at" "$kout_at"
  ((kafka_fresh)) && say "kafka: ready on 127.0.0.1:$KAFKA_PORT"
  t0=$((${EPOCHREALTIME//[!0-9]/} - t0))
  say "stack up in $((t0 / 1000000)).$((t0 / 100000 % 10))s: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

stop_one() { # component
  local pid pidfile waited=0 limit
  pidfile="$(pidfile_of "$1")"
  if ! pid="$(running_pid "$1" clean)"; then
    rm -f "$pidfile"
    say "$1: not running"
    return 0
  fi
  say "$1: stopping pid $pid (SIGTERM)..."
  kill -TERM "$pid" 2>/dev/null || true
  limit=$((STOP_TIMEOUT * 4))
  while is_ours "$1" "$pid" && ((waited < limit)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  if is_ours "$1" "$pid"; then
    warn "$1 (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    waited=0
    while is_ours "$1" "$pid" && ((waited < 40)); do
      sleep 0.25
      waited=$((waited + 1))
    done
    is_ours "$1" "$pid" && die "$1 (pid $pid) survived SIGKILL"
  fi
  rm -f "$pidfile"
  say "$1: stopped"
}

cmd_down() {
  local port holder
  take_lock
  stop_one kafka
  stop_one redis
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$REDIS_PORT"; do
    if port_in_use "$port"; then
      holder="$(port_holder "$port")"
      warn "port $port still has a listener${holder:+ (pid $holder)}; it was not started by this stack ($STATE), left alone"
    fi
  done
}

status_line() { # component port address data log
  local comp="$1" port="$2" addr="$3" data="$4" log="$5" pid state note=""
  if pid="$(running_pid "$comp")"; then
    state=running
    case "$comp" in
      kafka) port_accepts "$port" || note="  (not accepting connections yet)" ;;
      redis) redis_pong || note="  (not answering PING)" ;;
    esac
  else
    state=stopped
    pid=-
    if port_in_use "$port"; then note="  (port $port is in use by another process)"; fi
  fi
  printf '%-5s  %-7s  pid=%-7s  addr=%s  data=%s  log=%s%s\n' "$comp" "$state" "$pid" "$addr" "$data" "$log" "$note"
  [[ "$state" == running ]]
}

cmd_status() {
  local rc=0
  status_line kafka "$KAFKA_PORT" "127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)" "$KAFKA_DATA" "$KAFKA_LOG" || rc=3
  status_line redis "$REDIS_PORT" "127.0.0.1:$REDIS_PORT" "$REDIS_DATA" "$REDIS_LOG" || rc=3
  return "$rc"
}

cmd_logs() {
  say "kafka  $KAFKA_LOG"
  say "kafka  $KAFKA_STDOUT"
  say "redis  $REDIS_LOG"
  say "redis  $REDIS_STDOUT"
}

usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    jars) cmd_jars ;;
    logs) cmd_logs ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
