# Shared by the local launchers (kafka-local.sh, kafka-cluster.sh, registry-local.sh): sourced,
# never run. Each launcher sets NAME (its log prefix) and HOST before sourcing this file.

die() { echo "$NAME: $*" >&2; exit 1; }
say() { echo "$NAME: $*" >&2; }

need_java() {   # need_java "Kafka 4.x": a JDK 17+ on PATH, or a message naming what needs it
  command -v java >/dev/null || die "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [[ "${major%%.*}" -ge 17 ]] 2>/dev/null || die "java $major found, $1 needs Java 17+ (set JAVA_HOME / PATH)"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

command_line() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || ps -o args= -p "$1" 2>/dev/null || true; }

pid_running() {   # pid_running PID_FILE PATTERN...: the file names a live process whose command
  # line holds every pattern (guards against a pid reused by another process)
  local file="$1" pid cmd pattern; shift
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(command_line "$pid")"
  for pattern in "$@"; do [[ "$cmd" == *"$pattern"* ]] || return 1; done
}

await_exec() {   # await_exec PID PATTERN: $! is a forked copy of the launcher until it execs
  # (nohup, then) java; until then a pid check would see the launcher's command line and call a
  # starting JVM dead
  local pid="$1" pattern="$2"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0   # exited: the readiness loop reports it
    [[ "$(command_line "$pid")" == *"$pattern"* ]] && return 0
    sleep 0.1
  done
}

await_ready() {   # await_ready WHAT LOG_FILE PID_FILE TIMEOUT ALIVE_CMD -- READY_CMD...: poll
  # READY_CMD until it succeeds; if ALIVE_CMD fails, die with the log's tail (the pid file
  # removed); after TIMEOUT seconds, print the log's tail and return 1 (the caller cleans up)
  local what="$1" log="$2" pid_file="$3" timeout="$4" alive="$5" t0=$SECONDS; shift 6
  until "$@"; do
    if ! $alive; then
      tail -n 40 "$log" >&2; rm -f "$pid_file"; die "$what exited during startup (log: $log)"
    fi
    if (( SECONDS - t0 >= timeout )); then tail -n 40 "$log" >&2; return 1; fi
    sleep 0.3
  done
}

stop_pid() {   # stop_pid PID_FILE SIGNAL: signal the pid, wait up to 30 s, then SIGKILL
  local file="$1" sig="$2" pid
  pid="$(cat "$file")"
  kill "-$sig" "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$file"
  echo "$pid"
}
