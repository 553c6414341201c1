#!/usr/bin/env bash
# A local secured, replicated Kafka 4.x cluster (KRaft): 3 combined broker+controller nodes on
# 127.0.0.1, from the same Maven Central jars as kafka-local.sh. Production's shape, on loopback:
#
#   PLAINTEXT  admin listener (tests' own admin, inter-broker); its ANONYMOUS principal is a super user
#   SASL_SSL   SCRAM-SHA-512 (and -256), server certificate with SAN 127.0.0.1/localhost;
#              SCRAM-SHA-256 sessions last KAFKA_CLUSTER_SHA256_REAUTH_MS (connections.max.reauth.ms:
#              a client that does not log in again within it is disconnected), SHA-512 ones forever
#   SSL        mutual TLS: client certificates required, principal = the certificate's DN
#   ACLs on (StandardAuthorizer, deny by default); topics RF 3, min.insync.replicas=2
#
# Usage: deploy/local/kafka/kafka-cluster.sh {start [N]|stop [N]|kill N|restart|status|reset|logs N [LINES]|env}
#   start     start every node (or node N); formats storage, makes certificates, users, topics, ACLs
#   stop      SIGTERM every node (or node N);  kill N: SIGKILL node N (failure trials)
#   env       print the relay's settings files (written to $KAFKA_RUN_DIR/relay-*.env)
#
# Certificates, keystores and passwords are generated into $KAFKA_RUN_DIR at the first start
# (never committed). Environment (all optional):
#   KAFKA_RUN_DIR                      run directory (default <repo>/.kafka-cluster)
#   KAFKA_CLUSTER_PLAINTEXT_PORTS      3 comma-separated ports (default 19092,19192,19292)
#   KAFKA_CLUSTER_SASL_PORTS           SASL_SSL ports           (default 19093,19193,19293)
#   KAFKA_CLUSTER_SSL_PORTS            mTLS ports               (default 19094,19194,19294)
#   KAFKA_CLUSTER_CONTROLLER_PORTS     KRaft controller ports   (default 19095,19195,19295)
#   KAFKA_CLUSTER_TOPICS               input topics, comma-separated (default timeback.activity)
#   KAFKA_CLUSTER_DLQ                  dead-letter topic (default timeback.activity.dlq)
#   KAFKA_CLUSTER_GROUP                the relay's consumer group (default timeback-relay)
#   KAFKA_CLUSTER_PARTITIONS           partitions per topic (default 3)
#   KAFKA_CLUSTER_SHA256_REAUTH_MS     session lifetime of SCRAM-SHA-256 logins (default 10000; 0: none)
#   KAFKA_HEAP_OPTS (default -Xms128m -Xmx384m per node), KAFKA_JVM_OPTS, KAFKA_START_TIMEOUT (120),
#   KAFKA_VERSION, KAFKA_CACHE_DIR (as kafka-local.sh), KAFKA_PYTHON (python with confluent-kafka)
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE_DIR="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/timeback-relay/kafka}"
LIB_DIR="$CACHE_DIR/$KAFKA_VERSION/lib"
RUN_DIR="${KAFKA_RUN_DIR:-$ROOT/.kafka-cluster}"
TLS_DIR="$RUN_DIR/tls"
HOST=127.0.0.1
NODES=(1 2 3)
IFS=, read -r -a PLAIN_PORTS <<<"${KAFKA_CLUSTER_PLAINTEXT_PORTS:-19092,19192,19292}"
IFS=, read -r -a SASL_PORTS <<<"${KAFKA_CLUSTER_SASL_PORTS:-19093,19193,19293}"
IFS=, read -r -a SSL_PORTS <<<"${KAFKA_CLUSTER_SSL_PORTS:-19094,19194,19294}"
IFS=, read -r -a CTRL_PORTS <<<"${KAFKA_CLUSTER_CONTROLLER_PORTS:-19095,19195,19295}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -Djava.awt.headless=true}"
LOG4J_OPTS="-Dlog4j2.configurationFile=$HERE/log4j2.properties"
PYTHON="${KAFKA_PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON=python3
ADMIN="$HERE/cluster_admin.py"

NAME=kafka-cluster
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

for list in PLAIN_PORTS SASL_PORTS SSL_PORTS CTRL_PORTS; do
  declare -n ports="$list"
  [[ ${#ports[@]} -eq 3 ]] || die "$list: 3 comma-separated ports are needed, got '${ports[*]}'"
done

node_dir() { echo "$RUN_DIR/node-$1"; }
pid_file() { echo "$(node_dir "$1")/kafka.pid"; }
log_file() { echo "$(node_dir "$1")/server.log"; }
bootstrap() { local i out=(); for i in "${NODES[@]}"; do out+=("$HOST:$(port "$1" "$i")"); done; (IFS=,; echo "${out[*]}"); }
port() { declare -n arr="$1"; echo "${arr[$(( $2 - 1 ))]}"; }
secret() { od -An -N18 -tx1 /dev/urandom | tr -d ' \n'; }

# -- secrets and certificates (once per run directory) ------------------------------------------

make_secrets() {
  [[ -f "$RUN_DIR/secrets.env" ]] && return 0
  mkdir -p "$RUN_DIR"
  umask 077
  cat >"$RUN_DIR/secrets.env" <<EOF
STORE_PASSWORD=$(secret)
RELAY_SCRAM_PASSWORD=$(secret)
OPERATOR_SCRAM_PASSWORD=$(secret)
CLIENT_KEY_PASSWORD=$(secret)
EOF
}

# sign NAME SUBJECT EXT: a key and a certificate signed by the local CA
sign() {
  local name="$1" subject="$2" ext="$3"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$TLS_DIR/$name.key" -subj "$subject" \
      -out "$TLS_DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
      -CAcreateserial -days 30 -sha256 -out "$TLS_DIR/$name.pem" -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$TLS_DIR/$name.csr"
}

make_certificates() {
  [[ -f "$TLS_DIR/.complete" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  command -v keytool >/dev/null || die "keytool not found (it comes with the JDK)"
  rm -rf "$TLS_DIR"; mkdir -p "$TLS_DIR"
  # shellcheck disable=SC1091
  . "$RUN_DIR/secrets.env"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 -subj "/CN=timeback-relay local CA" \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  # One server certificate for the three nodes: they all listen on 127.0.0.1.
  sign broker "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
  openssl pkcs12 -export -in "$TLS_DIR/broker.pem" -inkey "$TLS_DIR/broker.key" -certfile "$TLS_DIR/ca.pem" \
      -name broker -out "$TLS_DIR/broker.p12" -passout "pass:$STORE_PASSWORD"
  keytool -importcert -noprompt -alias ca -file "$TLS_DIR/ca.pem" -keystore "$TLS_DIR/truststore.p12" \
      -storetype PKCS12 -storepass "$STORE_PASSWORD" >/dev/null 2>&1
  # The relay's client certificate (principal User:CN=relay-mtls); its key is encrypted (PKCS#8).
  sign relay-mtls "/CN=relay-mtls" "extendedKeyUsage=clientAuth"
  openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$TLS_DIR/relay-mtls.key" -out "$TLS_DIR/relay-mtls.enc.key" \
      -passout "pass:$CLIENT_KEY_PASSWORD"
  mv "$TLS_DIR/relay-mtls.enc.key" "$TLS_DIR/relay-mtls.key"
  rm -f "$TLS_DIR/broker.key" "$TLS_DIR/ca.srl"
  touch "$TLS_DIR/.complete"
}

write_relay_env() {
  # shellcheck disable=SC1091
  . "$RUN_DIR/secrets.env"
  local topics="${KAFKA_CLUSTER_TOPICS:-timeback.activity}" dlq="${KAFKA_CLUSTER_DLQ:-timeback.activity.dlq}"
  local group="${KAFKA_CLUSTER_GROUP:-timeback-relay}"
  local common="RELAY_TOPICS=$topics
RELAY_DLQ_TOPIC=$dlq
RELAY_GROUP_ID=$group
RELAY_KAFKA_SSL_CA_FILE=$TLS_DIR/ca.pem"
  cat >"$RUN_DIR/relay-scram.env" <<EOF
RELAY_KAFKA_BOOTSTRAP=$(bootstrap SASL_PORTS)
RELAY_KAFKA_SECURITY_PROTOCOL=SASL_SSL
RELAY_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
RELAY_KAFKA_SASL_USERNAME=relay
RELAY_KAFKA_SASL_PASSWORD=$RELAY_SCRAM_PASSWORD
$common
EOF
  cat >"$RUN_DIR/relay-mtls.env" <<EOF
RELAY_KAFKA_BOOTSTRAP=$(bootstrap SSL_PORTS)
RELAY_KAFKA_SECURITY_PROTOCOL=SSL
RELAY_KAFKA_SSL_CERT_FILE=$TLS_DIR/relay-mtls.pem
RELAY_KAFKA_SSL_KEY_FILE=$TLS_DIR/relay-mtls.key
RELAY_KAFKA_SSL_KEY_PASSWORD=$CLIENT_KEY_PASSWORD
$common
EOF
  cat >"$RUN_DIR/operator-scram.env" <<EOF
RELAY_KAFKA_BOOTSTRAP=$(bootstrap SASL_PORTS)
RELAY_KAFKA_SECURITY_PROTOCOL=SASL_SSL
RELAY_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
RELAY_KAFKA_SASL_USERNAME=relay-operator
RELAY_KAFKA_SASL_PASSWORD=$OPERATOR_SCRAM_PASSWORD
$common
EOF
  echo "PLAINTEXT_BOOTSTRAP=$(bootstrap PLAIN_PORTS)" >"$RUN_DIR/admin.env"
}

# -- nodes --------------------------------------------------------------------------------------

write_config() {
  local i="$1" dir voters="" n
  dir="$(node_dir "$i")"
  for n in "${NODES[@]}"; do voters+="${voters:+,}$n@$HOST:$(port CTRL_PORTS "$n")"; done
  # shellcheck disable=SC1091
  . "$RUN_DIR/secrets.env"
  mkdir -p "$dir/data"
  local p s t c
  p="$(port PLAIN_PORTS "$i")"; s="$(port SASL_PORTS "$i")"; t="$(port SSL_PORTS "$i")"; c="$(port CTRL_PORTS "$i")"
  local scram_module="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  cat >"$dir/server.properties" <<PROPS
# generated by deploy/local/kafka/kafka-cluster.sh: edit the script, not this file
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$p,SASL_SSL://$HOST:$s,SSL://$HOST:$t,CONTROLLER://$HOST:$c
advertised.listeners=PLAINTEXT://$HOST:$p,SASL_SSL://$HOST:$s,SSL://$HOST:$t
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
# ACLs: deny unless granted; the loopback admin listener (ANONYMOUS) and inter-broker are super users
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram_module
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram_module
# a password rotated while clients run: their sessions end within this (tests/reliability/test_scram_rotation.py)
listener.name.sasl_ssl.scram-sha-256.connections.max.reauth.ms=${KAFKA_CLUSTER_SHA256_REAUTH_MS:-10000}
listener.name.ssl.ssl.client.auth=required
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/truststore.p12
ssl.truststore.password=$STORE_PASSWORD
log.dirs=$dir/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
message.max.bytes=4194304
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
PROPS
}

format_storage() {
  local i="$1" dir; dir="$(node_dir "$i")"
  [[ -f "$dir/data/meta.properties" ]] && return 0
  # shellcheck disable=SC1091
  . "$RUN_DIR/secrets.env"
  local cid; cid="$(cat "$RUN_DIR/cluster.id")"
  # SCRAM users go into the metadata log at format time (every node is a controller).
  # shellcheck disable=SC2086
  java -Xmx256m $LOG4J_OPTS -cp "$LIB_DIR/*" kafka.tools.StorageTool format --cluster-id "$cid" \
      --config "$dir/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=relay,password=$RELAY_SCRAM_PASSWORD]" \
      --add-scram "SCRAM-SHA-256=[name=relay,password=$RELAY_SCRAM_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=relay-operator,password=$OPERATOR_SCRAM_PASSWORD]" \
      >>"$dir/format.log" 2>&1 \
    || { tail -n 30 "$dir/format.log" >&2; die "node $i: storage format failed (log: $dir/format.log)"; }
}

pid_alive() {   # node N's pid file points at its live kafka.Kafka JVM
  pid_running "$(pid_file "$1")" kafka.Kafka "$(node_dir "$1")/server.properties"
}

launch() {
  local i="$1"
  if pid_alive "$i"; then return 0; fi
  rm -f "$(pid_file "$i")"
  local p
  for p in "$(port PLAIN_PORTS "$i")" "$(port SASL_PORTS "$i")" "$(port SSL_PORTS "$i")" "$(port CTRL_PORTS "$i")"; do
    port_open "$p" && die "node $i: port $HOST:$p is already in use; set the KAFKA_CLUSTER_*_PORTS"
  done
  write_config "$i"
  format_storage "$i"
  # shellcheck disable=SC2086
  nohup java $HEAP_OPTS $JVM_OPTS $LOG4J_OPTS -cp "$LIB_DIR/*" \
      kafka.Kafka "$(node_dir "$i")/server.properties" >"$(log_file "$i")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$i")"
  await_exec "$!" kafka.Kafka
}

wait_ready() {   # a node opens its client ports once it is unfenced and serving
  local i="$1"
  await_ready "node $i" "$(log_file "$i")" "$(pid_file "$i")" "$START_TIMEOUT" "pid_alive $i" \
      -- ports_open "$(port PLAIN_PORTS "$i")" "$(port SASL_PORTS "$i")" \
    || die "node $i not ready after ${START_TIMEOUT}s"
}

ports_open() { local p; for p in "$@"; do port_open "$p" || return 1; done; }

start() {
  "$HERE/kafka-local.sh" fetch
  make_secrets
  make_certificates
  [[ -f "$RUN_DIR/cluster.id" ]] || "$PYTHON" -c 'import base64,uuid
while (s := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(s)' >"$RUN_DIR/cluster.id"
  write_relay_env
  local targets=("$@") i t0=$SECONDS
  [[ $# -gt 0 ]] || targets=("${NODES[@]}")
  for i in "${targets[@]}"; do launch "$i"; done   # together: a quorum needs a majority up
  for i in "${targets[@]}"; do wait_ready "$i"; done
  if [[ $# -eq 0 ]]; then
    "$PYTHON" "$ADMIN" --bootstrap "$(bootstrap PLAIN_PORTS)" grant \
        --topics "${KAFKA_CLUSTER_TOPICS:-timeback.activity}" --dlq "${KAFKA_CLUSTER_DLQ:-timeback.activity.dlq}" \
        --group "${KAFKA_CLUSTER_GROUP:-timeback-relay}" --partitions "${KAFKA_CLUSTER_PARTITIONS:-3}" \
      || die "creating the topics and ACLs failed"
  fi
  say "ready in $((SECONDS - t0))s: SASL_SSL $(bootstrap SASL_PORTS), mTLS $(bootstrap SSL_PORTS), admin $(bootstrap PLAIN_PORTS)"
  say "relay settings: $RUN_DIR/relay-scram.env, $RUN_DIR/relay-mtls.env"
}

signal_node() {   # signal_node N SIGNAL: signal node N and wait for it to exit
  local i="$1" sig="$2" pid
  pid_alive "$i" || { rm -f "$(pid_file "$i")"; return 0; }
  pid="$(stop_pid "$(pid_file "$i")" "$sig")"
  say "node $i stopped ($sig, pid $pid)"
}

stop() {
  local targets=("$@") i pids=()
  [[ $# -gt 0 ]] || targets=("${NODES[@]}")
  # Stop in parallel: a controlled shutdown of the last nodes waits for a quorum otherwise.
  for i in "${targets[@]}"; do signal_node "$i" TERM & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i"; done
}

status() {
  local i rc=0
  for i in "${NODES[@]}"; do
    if pid_alive "$i"; then echo "node $i running pid $(cat "$(pid_file "$i")") admin $HOST:$(port PLAIN_PORTS "$i") sasl_ssl $HOST:$(port SASL_PORTS "$i") ssl $HOST:$(port SSL_PORTS "$i")"
    else echo "node $i stopped"; rc=3; fi
  done
  return $rc
}

check_node() { [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"; }

case "${1:-}" in
  start)   shift; for n in "$@"; do check_node "$n"; done; start "$@" ;;
  stop)    shift; for n in "$@"; do check_node "$n"; done; stop "$@" ;;
  kill)    check_node "${2:-}"; signal_node "$2" KILL ;;
  restart) stop; start ;;
  status)  status ;;
  reset)   stop; rm -rf "$RUN_DIR" ;;
  logs)    check_node "${2:-}"; tail -n "${3:-100}" "$(log_file "$2")" ;;
  env)     cat "$RUN_DIR/relay-scram.env" "$RUN_DIR/relay-mtls.env" ;;
  *)       echo "usage: $0 {start [N]|stop [N]|kill N|restart|status|reset|logs N [LINES]|env}" >&2; exit 2 ;;
esac
