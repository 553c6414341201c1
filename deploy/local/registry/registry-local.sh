#!/usr/bin/env bash
# Local Apicurio Registry 2.3.1 (H2 storage, a file by default) serving the Confluent Schema Registry API at
# http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v6, built once from Maven Central jars (pom.xml).
# Usage: deploy/local/registry/registry-local.sh {fetch|start|stop|restart|status|reset|run|url|logs [N]}
#
# Environment (all optional):
#   REGISTRY_PORT           HTTP port on 127.0.0.1 (default 8081)
#   REGISTRY_RUN_DIR        pid file and log (default <repo>/.registry-local)
#   REGISTRY_STORAGE        file (default: an H2 database in REGISTRY_DATA_DIR, kept across a
#                           stop/start, as a production registry keeps its schemas) or memory
#                           (forgotten at every stop: ids start again at 1)
#   REGISTRY_DATA_DIR       the file storage (default $REGISTRY_RUN_DIR/data); `reset` wipes it
#   REGISTRY_CACHE_DIR      build cache (default ${XDG_CACHE_HOME:-~/.cache}/timeback-relay/registry)
#   REGISTRY_START_TIMEOUT  seconds to wait for /health/ready (default 90)
#   REGISTRY_HEAP_OPTS, REGISTRY_JVM_OPTS
set -euo pipefail

APICURIO_VERSION=2.3.1.Final
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE_DIR="${REGISTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/timeback-relay/registry}"
# A change to the Maven project makes a new build directory (old ones stay until deleted).
BUILD_KEY="$(cat "$HERE/pom.xml" "$HERE"/src/main/java/timeback/registry/*.java \
  "$HERE"/src/main/resources/META-INF/*.properties | cksum | cut -d' ' -f1)"
BUILD_DIR="$CACHE_DIR/$APICURIO_VERSION-$BUILD_KEY"
RUNNER="$BUILD_DIR/registry-local-1-runner.jar"
RUN_DIR="${REGISTRY_RUN_DIR:-$ROOT/.registry-local}"
HOST=127.0.0.1
PORT="${REGISTRY_PORT:-8081}"
START_TIMEOUT="${REGISTRY_START_TIMEOUT:-90}"
HEAP_OPTS="${REGISTRY_HEAP_OPTS:--Xms64m -Xmx384m}"
JVM_OPTS="${REGISTRY_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
STORAGE="${REGISTRY_STORAGE:-file}"
DATA_DIR="${REGISTRY_DATA_DIR:-$RUN_DIR/data}"
PID_FILE="$RUN_DIR/registry.pid"
LOG_FILE="$RUN_DIR/registry.log"

NAME=registry-local
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

fetch() {
  [[ -f "$BUILD_DIR/.complete" ]] && return 0
  mkdir -p "$CACHE_DIR"
  # Two test workers starting at once build it once (the lock's fd closes with the subshell).
  ( if command -v flock >/dev/null; then flock 9; fi; build ) 9>"$CACHE_DIR/.build.lock"
}

build() {
  [[ -f "$BUILD_DIR/.complete" ]] && return 0
  need_java "the registry build"
  command -v mvn >/dev/null || die "mvn not found: install Apache Maven (e.g. apt-get install maven); it builds the registry from Maven Central jars"
  rm -rf "$BUILD_DIR"; mkdir -p "$BUILD_DIR"
  say "building Apicurio Registry $APICURIO_VERSION from Maven Central jars into $BUILD_DIR (once; a few minutes cold)"
  mvn -B -q -f "$HERE/pom.xml" package -Dregistry.build.dir="$BUILD_DIR" \
    || die "maven could not build the registry (is Maven Central reachable?)"
  [[ -f "$RUNNER" ]] || die "$RUNNER missing after the build"
  touch "$BUILD_DIR/.complete"
  say "built ($(find "$BUILD_DIR/lib" -name '*.jar' | wc -l) jars)"
}

pid_alive() {   # the run-dir property tags our JVM (guards against pid reuse)
  pid_running "$PID_FILE" registry-local-1-runner.jar "-Dregistry.local.run-dir=$RUN_DIR"
}

ready() {   # Quarkus SmallRye Health: 200 and "UP" once storage and REST are up
  if command -v curl >/dev/null; then
    curl -fsS -m 2 "http://$HOST:$PORT/health/ready" 2>/dev/null | grep -q '"UP"'
  else
    python3 -c "import sys,urllib.request as u; sys.exit(0 if b'\"UP\"' in u.urlopen('http://$HOST:$PORT/health/ready', timeout=2).read() else 1)" 2>/dev/null
  fi
}

java_cmd() {   # sets JAVA_CMD; the run-dir property only tags the process for pid_alive; the
  # access log (a line per request in $LOG_FILE) shows operators and tests what clients asked
  export HTTP_PORT="$PORT"   # the app jar's own setting (%prod.quarkus.http.port=${HTTP_PORT:8080})
  export ENABLE_ACCESS_LOG="${ENABLE_ACCESS_LOG:-true}"
  case "$STORAGE" in   # its "in-memory" storage is H2, whose URL the app jar reads from this
    file)   mkdir -p "$DATA_DIR"; export REGISTRY_DATASOURCE_URL="jdbc:h2:file:$DATA_DIR/registry_db" ;;
    memory) export REGISTRY_DATASOURCE_URL="jdbc:h2:mem:registry_db" ;;
    *)      die "REGISTRY_STORAGE must be file or memory, not $STORAGE" ;;
  esac
  # shellcheck disable=SC2206
  JAVA_CMD=(java $HEAP_OPTS $JVM_OPTS "-Dquarkus.http.host=$HOST" "-Dquarkus.http.port=$PORT"
            "-Dregistry.local.run-dir=$RUN_DIR" -jar "$RUNNER")
}

start() {
  fetch
  if pid_alive; then say "already running (pid $(cat "$PID_FILE")) on $HOST:$PORT"; return 0; fi
  rm -f "$PID_FILE"
  port_open "$PORT" && die "port $HOST:$PORT is already in use by another process; set REGISTRY_PORT or stop it"
  mkdir -p "$RUN_DIR"
  local t0=$SECONDS
  java_cmd
  nohup "${JAVA_CMD[@]}" >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  await_exec "$!" registry-local-1-runner.jar
  await_ready registry "$LOG_FILE" "$PID_FILE" "$START_TIMEOUT" pid_alive -- ready \
    || { stop; die "not ready after ${START_TIMEOUT}s (log: $LOG_FILE)"; }
  say "Apicurio Registry ready at http://$HOST:$PORT/apis/ccompat/v6 ($STORAGE storage, pid $(cat "$PID_FILE"), $((SECONDS - t0))s)"
}

stop() {
  if ! pid_alive; then rm -f "$PID_FILE"; return 0; fi
  say "stopped (pid $(stop_pid "$PID_FILE" TERM))"
}

case "${1:-}" in
  fetch)   fetch ;;
  start)   start ;;
  stop)    stop ;;
  restart) stop; start ;;
  status)  if pid_alive; then echo "running pid $(cat "$PID_FILE") at http://$HOST:$PORT/apis/ccompat/v6"; else echo "stopped"; exit 3; fi ;;
  url)     echo "http://$HOST:$PORT/apis/ccompat/v6" ;;
  reset)   stop; rm -rf "$DATA_DIR" ;;
  run)     fetch; mkdir -p "$RUN_DIR"
           java_cmd; exec "${JAVA_CMD[@]}" ;;
  logs)    tail -n "${2:-100}" "$LOG_FILE" ;;
  *)       echo "usage: $0 {fetch|start|stop|restart|status|reset|run|url|logs [N]}" >&2; exit 2 ;;
esac
