#!/usr/bin/env bash
# The production shape on one machine (`make cluster`): 3 nats-server nodes (JetStream, one
# cluster, the event stream at R3), ingest for the synthetic market (2 processes holding a lease,
# one active and one standby, when bin/ingest has --lease), 3 feed replicas, and HAProxy in front
# of the feeds. Prints the dashboard URL through HAProxy. Ctrl-C (or SIGTERM) stops everything
# gracefully, in order: ingest, feeds, HAProxy, NATS.
#
#   scripts/cluster.sh [up]         start the cluster and watch it until Ctrl-C
#   scripts/cluster.sh status       each process of the running cluster: pid, alive or not
#   scripts/cluster.sh kill NAME [SIG]   send SIG (default KILL) to one process (chaos)
#   scripts/cluster.sh start NAME   start one process again, from its recorded command
#
# Names: nats-1..3, ingest-1..2, feed-1..3, haproxy. Everything lives in .data/cluster/
# (CLUSTER_DIR; the subcommands need the same):
#   nats-N/       each node's JetStream store
#   auth/         NATS users' passwords (generated once, mode 0600; nats-server gets them from
#                 its environment, the other processes read their own file)
#   feed-hs256.key  the feeds' shared token key (generated once): a token works on every replica
#   logs/NAME.log each process's output (appended; a line marks each start)
#   procs/NAME.cmd  the exact command of each process (a bash script: cd, environment, exec);
#                 procs/NAME.pid its running pid. A chaos tool kills a process by pid and starts it
#                 again with `scripts/cluster.sh start NAME` (or `bash procs/NAME.cmd &`).
#   cluster.env   the addresses (sourceable): LB_URL, NATS_URLS, FEED_N_URL, ...
# While the cluster runs, a process that exits is reported (name, status, log tail) and the rest
# keep running (that is the point of a cluster); one restarted is reported too. A process that
# dies during start-up stops the whole run.
#
# Settings (environment):
#   CLUSTER_DIR         where everything lives (.data/cluster; relative to the repository)
#   PORTS=fixed|random  fixed (default): the ports below; random: free ports picked now
#   CLUSTER_HOST        address every listener binds (127.0.0.1)
#   LB_PORT (8180), LB_STATS_PORT (8404)       HAProxy: clients; stats page, /healthz, /metrics
#   FEED_PORTS ("8181 8182 8183"), FEED_ADMIN_PORTS ("9181 9182 9183")
#   NATS_PORTS ("4231 4232 4233"), NATS_CLUSTER_PORTS ("6231 6232 6233"),
#   NATS_HTTP_PORTS ("8231 8232 8233"), INGEST_METRICS_PORTS ("9111 9112")
#   INSTRUMENTS (50), RATE (1000 events/s), STREAM_MAX_AGE (2h), STREAM_MAX_BYTES (1 GiB, per
#   node), LEASE_TTL (5s), DURATION (0: until Ctrl-C; else seconds, then a graceful stop),
#   FRESH=1 (delete the NATS stores first: an empty stream)
# Needs bin/ (make build, make feed-ui for the dashboard), bin/nats-server (make cluster builds
# it from tools/go.mod) and HAProxy (Debian: sudo apt-get install -y haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DIR=${CLUSTER_DIR:-.data/cluster}
LOGS=$DIR/logs
PROCS=$DIR/procs
AUTH=$DIR/auth
KEY=$DIR/feed-hs256.key
USERS=(ingest feed tickctl admin consolidator)
NAMES=(nats-1 nats-2 nats-3 ingest-1 ingest-2 feed-1 feed-2 feed-3 haproxy)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

pid_of() { [ -s "$PROCS/$1.pid" ] && cat "$PROCS/$1.pid" || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
known() { [ -f "$PROCS/$1.cmd" ]; }

# Start NAME from its recorded command, in its own session (a terminal's Ctrl-C reaches this
# script only, which then stops the processes in order), its output appended to its log.
launch() {
  local name=$1
  known "$name" || die "no recorded command for $name ($PROCS/$name.cmd)"
  setsid bash "$PROCS/$name.cmd" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PROCS/$name.pid"
}

# Subcommands on a running cluster.
case "${1:-up}" in
  up) ;;
  status)
    for n in "${NAMES[@]}"; do
      known "$n" || continue
      if alive "$n"; then echo "$n pid $(pid_of "$n") running"; else echo "$n (pid $(pid_of "$n")) not running"; fi
    done
    # Each stream as its leader sees it: the followers current (caught up) or not, and their lag.
    [ -f "$DIR/cluster.env" ] && (. "$DIR/cluster.env"; python3 - "$NATS_1_HTTP" "$NATS_2_HTTP" "$NATS_3_HTTP" <<'EOF2'
import json, sys, urllib.request
for base in sys.argv[1:]:
    try:
        name = json.load(urllib.request.urlopen(base + "/varz", timeout=2))["server_name"]
        jsz = json.load(urllib.request.urlopen(base + "/jsz?streams=true&config=true", timeout=2))
    except Exception as e:
        print(f"{base}: no answer ({e})"); continue
    for a in jsz.get("account_details") or []:
        for s in a.get("stream_detail") or []:
            c = s.get("cluster") or {}
            if c.get("leader") != name: continue
            rs = ", ".join(f'{r["name"]} {"current" if r.get("current") else "NOT current"} lag {r.get("lag", 0)}' for r in c.get("replicas") or [])
            print(f'stream {s["name"]} R{(s.get("config") or {}).get("num_replicas")}: leader {name}, {rs or "no followers"}; last seq {s["state"]["last_seq"]}')
EOF2
    ) || true
    exit 0 ;;
  kill)
    n=${2:?usage: cluster.sh kill NAME [SIGNAL]}; sig=${3:-KILL}
    alive "$n" || die "$n is not running"
    kill -s "$sig" "$(pid_of "$n")"; say "sent SIG$sig to $n (pid $(pid_of "$n"))"
    exit 0 ;;
  start)
    n=${2:?usage: cluster.sh start NAME}
    alive "$n" && die "$n is running (pid $(pid_of "$n"))"
    launch "$n"; say "started $n (pid $(pid_of "$n")), log $LOGS/$n.log"
    exit 0 ;;
  *) die "unknown command $1 (up, status, kill NAME [SIG], start NAME)" ;;
esac

# --- prerequisites, before anything starts -------------------------------------------------
for b in nats-server feed ingest tickctl; do
  [ -x "bin/$b" ] || die "bin/$b is missing: run make cluster (it builds bin/ and bin/nats-server)"
done
command -v haproxy >/dev/null || die "HAProxy is not installed. On Debian/Ubuntu: sudo apt-get install -y haproxy (2.4 or later)"
command -v curl >/dev/null || die "curl is not installed (the start-up checks use it): sudo apt-get install -y curl"
for n in "${NAMES[@]}"; do
  if alive "$n"; then die "a cluster is running already ($n is pid $(pid_of "$n")): stop it first (Ctrl-C where it runs)"; fi
done

HOST=${CLUSTER_HOST:-127.0.0.1}
INSTRUMENTS=${INSTRUMENTS:-50}
RATE=${RATE:-1000}
STREAM_MAX_AGE=${STREAM_MAX_AGE:-2h}
STREAM_MAX_BYTES=${STREAM_MAX_BYTES:-1073741824}
LEASE_TTL=${LEASE_TTL:-5s}
DURATION=${DURATION:-0}

if [ "${PORTS:-fixed}" = random ]; then
  read -r -a P < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(19)]
for s in ss: s.bind(("'"$HOST"'", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
  NATS_PORTS="${P[*]:0:3}"; NATS_CLUSTER_PORTS="${P[*]:3:3}"; NATS_HTTP_PORTS="${P[*]:6:3}"
  FEED_PORTS="${P[*]:9:3}"; FEED_ADMIN_PORTS="${P[*]:12:3}"; INGEST_METRICS_PORTS="${P[*]:15:2}"
  LB_PORT=${P[17]}; LB_STATS_PORT=${P[18]}
fi
read -r -a NATS_PORT <<<"${NATS_PORTS:-4231 4232 4233}"
read -r -a NATS_CLUSTER_PORT <<<"${NATS_CLUSTER_PORTS:-6231 6232 6233}"
read -r -a NATS_HTTP_PORT <<<"${NATS_HTTP_PORTS:-8231 8232 8233}"
read -r -a FEED_PORT <<<"${FEED_PORTS:-8181 8182 8183}"
read -r -a FEED_ADMIN_PORT <<<"${FEED_ADMIN_PORTS:-9181 9182 9183}"
read -r -a INGEST_METRICS_PORT <<<"${INGEST_METRICS_PORTS:-9111 9112}"
LB_PORT=${LB_PORT:-8180}
LB_STATS_PORT=${LB_STATS_PORT:-8404}

# Every port free now, or a clear refusal naming it.
busy=$(python3 - "$HOST" "${NATS_PORT[@]}" "${NATS_CLUSTER_PORT[@]}" "${NATS_HTTP_PORT[@]}" \
  "${FEED_PORT[@]}" "${FEED_ADMIN_PORT[@]}" "${INGEST_METRICS_PORT[@]}" "$LB_PORT" "$LB_STATS_PORT" <<'EOF'
import socket, sys
host, busy = sys.argv[1], []
for p in sys.argv[2:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try: s.bind((host, int(p)))
    except OSError: busy.append(p)
    s.close()
print(" ".join(busy))
EOF
)
[ -z "$busy" ] || die "port(s) $busy on $HOST in use: free them, set the *_PORT(S) settings, or PORTS=random"

# Two ingest processes hold the lease "synthetic" (one publishes, the other stands by and takes
# over within about LEASE_TTL when the holder dies). A bin/ingest older than --lease (stale bin/):
# one ingest, said at start.
if bin/ingest --help 2>/dev/null | grep -q -- '--lease'; then
  INGESTS=(ingest-1 ingest-2)
else
  INGESTS=(ingest-1)
fi

mkdir -p "$LOGS" "$PROCS"
rm -f "$PROCS"/*.pid "$PROCS"/*.cmd
if [ "${FRESH:-0}" = 1 ]; then rm -rf "$DIR"/nats-1 "$DIR"/nats-2 "$DIR"/nats-3; fi

# --- secrets: NATS passwords and the token key (generated once, reused after) -----------------
mkdir -p "$AUTH"; chmod 700 "$AUTH"
for u in "${USERS[@]}"; do
  f=$AUTH/$u.password
  if [ ! -s "$f" ]; then
    # Letters and digits, starting with a letter: nats-server reads an environment variable's
    # value as config (deploy/nats/cluster/nats.conf), where a leading digit or - means a number.
    (umask 077; printf 'tw%s\n' "$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)" >"$f")
  fi
  chmod 600 "$f"
done
TOKEN=$(bin/tickctl token --key-file "$KEY" --new-key --sub dev --instruments '*' --replay-control --ttl 24h)

NATS_URLS=""
ROUTES=""
for i in 0 1 2; do
  NATS_URLS+="${NATS_URLS:+,}nats://$HOST:${NATS_PORT[i]}"
  ROUTES+="${ROUTES:+, }nats://$HOST:${NATS_CLUSTER_PORT[i]}"
done
LB_URL=http://$HOST:$LB_PORT
STATS_URL=http://$HOST:$LB_STATS_PORT

# record NAME ENV... -- CMD ARGS...: write procs/NAME.cmd, the process's exact start command.
record() {
  local name=$1; shift
  {
    echo "#!/usr/bin/env bash"
    echo "# $name of make cluster (scripts/cluster.sh). Start again: scripts/cluster.sh start $name"
    echo "cd $(printf %q "$ROOT")"
    while [ "$1" != -- ]; do echo "export $1"; shift; done
    shift
    echo "echo \"== \$(date -u +%FT%TZ) start $name (pid \$\$)\""
    printf 'exec'; printf ' %q' "$@"; echo
  } >"$PROCS/$name.cmd"
}

pwenv() { # the environment line that hands nats-server user $1's password from its file
  local up; up=$(echo "$1" | tr a-z A-Z)
  echo "TICKWIRE_NATS_${up}_PASSWORD=\$(cat $(printf %q "$AUTH/$1.password"))"
}

for i in 0 1 2; do
  n=$((i + 1))
  env=(NATS_SERVER_NAME=nats-$n "NATS_LISTEN=$HOST:${NATS_PORT[i]}" "NATS_HTTP=$HOST:${NATS_HTTP_PORT[i]}"
    NATS_CLUSTER_NAME=tickwire "NATS_CLUSTER_LISTEN=$HOST:${NATS_CLUSTER_PORT[i]}"
    "NATS_ROUTES=$(printf %q "[$ROUTES]")" "NATS_STORE_DIR=$(printf %q "$(cd "$DIR" && pwd)/nats-$n")")
  # (absolute: nats-server reads a value that starts with "." as a number)
  for u in "${USERS[@]}"; do env+=("$(pwenv "$u")"); done
  record "nats-$n" "${env[@]}" -- bin/nats-server -c deploy/nats/cluster/nats.conf
done

stream_flags=(--stream-replicas 3 --stream-max-age "$STREAM_MAX_AGE" --stream-max-bytes "$STREAM_MAX_BYTES")
for i in "${!INGESTS[@]}"; do
  lease=()
  [ "${#INGESTS[@]}" -gt 1 ] && lease=(--lease synthetic --lease-ttl "$LEASE_TTL")
  record "${INGESTS[i]}" -- bin/ingest --nats-url "$NATS_URLS" --nats-auth-dir "$AUTH" --source synthetic \
    --synthetic-instruments "$INSTRUMENTS" --synthetic-rate "$RATE" \
    --metrics-listen "$HOST:${INGEST_METRICS_PORT[i]}" "${stream_flags[@]}" "${lease[@]}"
done

for i in 0 1 2; do
  # Behind HAProxy every client comes from one address: the per-address limits are HAProxy's.
  record "feed-$((i + 1))" -- bin/feed --listen "$HOST:${FEED_PORT[i]}" --admin-listen "$HOST:${FEED_ADMIN_PORT[i]}" \
    --public-url "$LB_URL" --nats-url "$NATS_URLS" --nats-auth-dir "$AUTH" --auth-hs256-key-file "$KEY" \
    "${stream_flags[@]}" --revocation-replicas 3 --replay-start \
    --max-conns-per-ip=-1 --candles-rate=-1
done

record haproxy "LB_BIND=$HOST:$LB_PORT" "LB_STATS_BIND=$HOST:$LB_STATS_PORT" \
  "LB_FEED_1=$HOST:${FEED_PORT[0]}" "LB_FEED_2=$HOST:${FEED_PORT[1]}" "LB_FEED_3=$HOST:${FEED_PORT[2]}" -- \
  haproxy -db -f deploy/haproxy/haproxy.cfg

{
  echo "LB_URL=$LB_URL"; echo "LB_STATS_URL=$STATS_URL/"; echo "NATS_URLS=$NATS_URLS"
  for i in 0 1 2; do
    n=$((i + 1))
    echo "NATS_${n}_URL=nats://$HOST:${NATS_PORT[i]}"; echo "NATS_${n}_HTTP=http://$HOST:${NATS_HTTP_PORT[i]}"
    echo "FEED_${n}_URL=http://$HOST:${FEED_PORT[i]}"; echo "FEED_${n}_ADMIN=http://$HOST:${FEED_ADMIN_PORT[i]}"
  done
  for i in "${!INGESTS[@]}"; do echo "INGEST_$((i + 1))_METRICS=http://$HOST:${INGEST_METRICS_PORT[i]}"; done
  echo "NATS_AUTH_DIR=$AUTH"; echo "KEY_FILE=$KEY"
} >"$DIR/cluster.env"

# --- stop, in order ------------------------------------------------------------------------
stopping=0
# stop_procs SIGNAL SECONDS NAME...: signal them, wait up to SECONDS for all to exit, then KILL.
stop_procs() {
  local sig=$1 secs=$2; shift 2
  local n p left deadline=$((SECONDS + secs))
  for n in "$@"; do alive "$n" && kill -s "$sig" "$(pid_of "$n")" 2>/dev/null || true; done
  while :; do
    left=()
    for n in "$@"; do alive "$n" && left+=("$n"); done
    [ "${#left[@]}" -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      for n in "${left[@]}"; do
        p=$(pid_of "$n"); say "$n (pid $p) still running after ${secs}s: killing it"; kill -KILL "$p" 2>/dev/null || true
      done
      return 0
    fi
    sleep 0.2
  done
}
stop_all() {
  trap - INT TERM
  [ "$stopping" = 1 ] && return; stopping=1
  say "stopping: ingest, then feeds, then haproxy, then NATS"
  stop_procs TERM 10 "${INGESTS[@]}"
  stop_procs TERM 15 feed-1 feed-2 feed-3
  stop_procs USR1 5 haproxy # soft stop: finish what is open (the feeds closed theirs)
  stop_procs TERM 10 nats-3 nats-2 nats-1
  local n ok=1
  for n in "${NAMES[@]}"; do
    if alive "$n"; then say "$n (pid $(pid_of "$n")) did not exit"; ok=0; fi
  done
  [ "$ok" = 1 ] && say "every process exited"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

tail_log() { say "last lines of $LOGS/$1.log:"; tail -n 15 "$LOGS/$1.log" | sed 's/^/    /' >&2; }

# wait_for NAME SECONDS DESCRIPTION CMD...: until CMD succeeds; the run ends if NAME dies or time runs out.
wait_for() {
  local name=$1 secs=$2 what=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then say "$name exited during start-up"; tail_log "$name"; stop_all; exit 1; fi
    if [ "$SECONDS" -ge "$deadline" ]; then say "$name: $what not within ${secs}s"; tail_log "$name"; stop_all; exit 1; fi
    sleep 0.5
  done
}

# --- start ---------------------------------------------------------------------------------
say "starting 3 NATS nodes (client ports ${NATS_PORT[*]}, routes ${NATS_CLUSTER_PORT[*]}), data in $DIR/nats-N"
for n in 1 2 3; do launch "nats-$n"; done
for i in 0 1 2; do
  # Healthy in clustered JetStream: routes up, the meta group has a leader and this node is current.
  wait_for "nats-$((i + 1))" 60 "JetStream healthy" curl -fsS "http://$HOST:${NATS_HTTP_PORT[i]}/healthz"
done
meta_leader() { curl -fsS "http://$HOST:${NATS_HTTP_PORT[0]}/jsz" | python3 -c 'import json,sys; l=json.load(sys.stdin)["meta_cluster"].get("leader",""); print(l); sys.exit(0 if l else 1)'; }
wait_for nats-1 30 "a JetStream meta leader" meta_leader
say "NATS cluster formed, JetStream meta leader $(meta_leader)"
# After a restart, each stored stream (events, checkpoints, revocations) elects its own leader a
# little later: until then a feed cannot read its checkpoints (and replays the whole stream).
streams_led() { curl -fsS "http://$HOST:${NATS_HTTP_PORT[0]}/jsz?streams=true" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ss = [s for a in d.get("account_details") or [] for s in a.get("stream_detail") or []]
sys.exit(0 if all((s.get("cluster") or {}).get("leader") for s in ss) else 1)'; }
wait_for nats-1 30 "a leader for every stored stream" streams_led

# The event stream at R3 (the admin role; the same limits as ingest and feed pass, so nothing
# warns). Retried: just after an election the API can refuse for a moment.
for try in $(seq 1 20); do
  if out=$(bin/tickctl --nats-url "$NATS_URLS" --nats-user admin --nats-auth-dir "$AUTH" stream \
    --replicas 3 --max-age "$STREAM_MAX_AGE" --max-bytes "$STREAM_MAX_BYTES" 2>&1); then break; fi
  [ "$try" = 20 ] && { say "could not create the event stream: $out"; stop_all; exit 1; }
  sleep 1
done
say "$out"

say "starting ${#INGESTS[@]} ingest (${INGESTS[*]}): synthetic, $INSTRUMENTS instruments, $RATE events/s"
[ "${#INGESTS[@]}" = 1 ] && say "NOTE: bin/ingest has no --lease (rebuild: make build): one ingest, no standby"
# One of each kind first: processes starting at once race to create the JetStream buckets and
# streams they share (the lease bucket, the revocation bucket, the checkpoint stream), and the
# one that loses can exit.
ingest_role() { curl -fsS "http://$HOST:${INGEST_METRICS_PORT[$1]}/healthz" 2>/dev/null | grep -q "$2"; }
launch "${INGESTS[0]}"
if [ "${#INGESTS[@]}" -gt 1 ]; then
  wait_for "${INGESTS[0]}" 30 "the lease (/healthz: ok active)" ingest_role 0 active
  launch "${INGESTS[1]}"
  wait_for "${INGESTS[1]}" 30 "standing by (/healthz: ok standby)" ingest_role 1 standby
fi
say "starting 3 feeds (ports ${FEED_PORT[*]}, admin ${FEED_ADMIN_PORT[*]})"
launch feed-1
wait_for feed-1 120 "ready (/readyz)" curl -fsS "http://$HOST:${FEED_PORT[0]}/readyz"
launch feed-2
launch feed-3
for i in 1 2; do
  wait_for "feed-$((i + 1))" 120 "ready (/readyz)" curl -fsS "http://$HOST:${FEED_PORT[i]}/readyz"
done
for n in "${INGESTS[@]}"; do alive "$n" || { say "$n exited during start-up"; tail_log "$n"; stop_all; exit 1; }; done
launch haproxy
wait_for haproxy 20 "serving /readyz through HAProxy" curl -fsS "$LB_URL/readyz"

{
  printf '\n  Tickwire cluster up (%ss). Dashboard through HAProxy (development token, 24 h):\n' "$SECONDS"
  printf '  %s/#token=%s\n\n' "$LB_URL" "$TOKEN"
  printf '  HAProxy stats: %s/   (health %s/healthz, metrics %s/metrics)\n' "$STATS_URL" "$STATS_URL" "$STATS_URL"
  printf '  %-9s %-8s %s\n' process pid ports
  for i in 0 1 2; do
    printf '  %-9s %-8s client %s, cluster %s, monitor http://%s:%s\n' "nats-$((i + 1))" "$(pid_of "nats-$((i + 1))")" \
      "${NATS_PORT[i]}" "${NATS_CLUSTER_PORT[i]}" "$HOST" "${NATS_HTTP_PORT[i]}"
  done
  for i in "${!INGESTS[@]}"; do
    role=$(curl -fsS "http://$HOST:${INGEST_METRICS_PORT[i]}/healthz" 2>/dev/null | sed 's/^ok //') || role=""
    printf '  %-9s %-8s metrics http://%s:%s/metrics %s\n' "${INGESTS[i]}" "$(pid_of "${INGESTS[i]}")" "$HOST" "${INGEST_METRICS_PORT[i]}" "${role:+($role)}"
  done
  for i in 0 1 2; do
    printf '  %-9s %-8s http://%s:%s (admin %s)\n' "feed-$((i + 1))" "$(pid_of "feed-$((i + 1))")" "$HOST" "${FEED_PORT[i]}" "${FEED_ADMIN_PORT[i]}"
  done
  printf '  %-9s %-8s %s -> feeds %s\n' haproxy "$(pid_of haproxy)" "$LB_URL" "${FEED_PORT[*]}"
  printf '\n  Logs: %s/NAME.log   Addresses: %s/cluster.env   Chaos: scripts/cluster.sh kill|start NAME\n' "$LOGS" "$DIR"
  printf '  Bots: TICKWIRE_TOKEN=$(bin/tickctl token --key-file %s --sub me) bin/tickctl tail --url ws://%s:%s/ws\n' "$KEY" "$HOST" "$LB_PORT"
  printf '  Stream: bin/tickctl --nats-url %s --nats-auth-dir %s stream\n' "$NATS_URLS" "$AUTH"
  printf '  Ctrl-C stops everything.\n\n'
} >&2

# --- watch ---------------------------------------------------------------------------------
declare -A seen # name -> the pid last seen running ("" once reported gone)
for n in "${NAMES[@]}"; do known "$n" && seen[$n]=$(pid_of "$n"); done
started=$SECONDS
while :; do
  for n in "${!seen[@]}"; do
    p=$(pid_of "$n")
    if alive "$n"; then
      [ "${seen[$n]}" != "$p" ] && { say "$n running again (pid $p)"; seen[$n]=$p; }
    elif [ -n "${seen[$n]}" ]; then
      st=0; wait "$p" 2>/dev/null || st=$?
      case $st in
        127) how="exited" ;;                 # not our child (restarted by someone else): status unknown
        0) how="exited with status 0" ;;
        *) if [ "$st" -gt 128 ]; then how="killed by signal $((st - 128))"; else how="exited with status $st"; fi ;;
      esac
      say "$n (pid $p) $how; the others keep running. Restart: scripts/cluster.sh start $n"
      tail_log "$n"
      seen[$n]=""
    fi
  done
  if [ "$DURATION" != 0 ] && [ $((SECONDS - started)) -ge "$DURATION" ]; then
    say "DURATION ${DURATION}s reached"; stop_all; exit 0
  fi
  sleep 1 & wait $! || true
done
