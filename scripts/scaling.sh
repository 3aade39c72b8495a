#!/usr/bin/env bash
# The feed-replica scaling curve (docs/SCALING.md): one synthetic ingest at a fixed event rate
# into NATS JetStream, N feed replicas reading the whole stream with no clients, and the CPU time
# of every process over a fixed window, read from /proc/<pid>/stat (utime + stime). Each
# replica's CPU per second should stay flat as replicas are added (they share nothing but NATS);
# NATS's grows by one consumer per replica.
#
#   scripts/scaling.sh                 N = 0 1 2 3 feeds, 3 rounds, single NATS node
#   FEEDS="1 3" RUNS=5 scripts/scaling.sh
#   NATS_NODES=3 FEEDS="0 1" scripts/scaling.sh    3-node NATS cluster, stream at R3
#
# Settings (environment): FEEDS ("0 1 2 3"), RUNS (3 rounds; each round runs every N in turn, so
# slow drifts of a shared machine spread over all N), RATE (2000 events/s), INSTRUMENTS (1000),
# WARMUP (10 s after every feed is ready), WINDOW (30 s measured), NATS_NODES (1 or 3),
# REPLICAS (stream replicas; default NATS_NODES), FEED_ARGS (extra feed flags), BIN (bin: feed,
# ingest, nats-server; `make build` and `make bin/nats-server`), OUT (a file for the per-run
# rows, TSV; default a temp file, printed at the end), KEEP=1 (keep the run directories).
# Everything listens on 127.0.0.1 at free ports; only the processes this script starts are
# stopped, by pid; each run is bounded (start-up 60 s at most, then WARMUP + WINDOW).
#
# Output: one row per run and process kind, then per N the medians over the rounds:
#   feed_cores   CPU seconds per second of each feed (mean over the N feeds of that run)
#   feed_us_ev   feed CPU per event it applied (tickwire_feed_events_total), microseconds
#   nats_cores   CPU seconds per second of the NATS node(s) (sum over nodes)
#   nats_us_ev   NATS CPU per event published, microseconds
#   ingest_cores the publisher's CPU seconds per second (its own cost, for scale)
# With NATS_NODES=3 each run also prints (stderr) the node leading each stream and the node
# holding each feed's consumer, from the nodes' /jsz.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

FEEDS=${FEEDS:-0 1 2 3}
RUNS=${RUNS:-3}
RATE=${RATE:-2000}
INSTRUMENTS=${INSTRUMENTS:-1000}
WARMUP=${WARMUP:-10}
WINDOW=${WINDOW:-30}
NATS_NODES=${NATS_NODES:-1}
REPLICAS=${REPLICAS:-$NATS_NODES}
BIN=${BIN:-bin}
FEED_ARGS=${FEED_ARGS:-}
OUT=${OUT:-$(mktemp /tmp/scaling.XXXXXX.tsv)}
USERS=(ingest feed tickctl admin consolidator)
TCK=$(getconf CLK_TCK)

for b in feed ingest nats-server; do
  [ -x "$BIN/$b" ] || { echo "scaling: $BIN/$b is missing (make build; make bin/nats-server)" >&2; exit 1; }
done
case $NATS_NODES in 1|3) ;; *) echo "scaling: NATS_NODES must be 1 or 3" >&2; exit 1;; esac

say() { printf 'scaling: %s\n' "$*" >&2; }

free_ports() { # free_ports N: N free TCP ports on 127.0.0.1
  python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

cpu_ticks() { # utime + stime of pid $1, in clock ticks (fields 14 and 15 after the comm)
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $(( ${12} + ${13} ))
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

metric() { # metric URL NAME: the value of an unlabelled metric (0 if absent)
  curl -fsS --max-time 5 "$1/metrics" 2>/dev/null | awk -v n="$2" '$1 == n {print $2; f=1} END {if (!f) print 0}'
}

PIDS=()
RUNDIR=""
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
  if [ -n "$RUNDIR" ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$RUNDIR"; fi
  RUNDIR=""
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

wait_url() { # wait_url URL SECONDS PID: until URL answers 2xx, the process dies, or time is up
  local deadline=$((SECONDS + $2))
  until curl -fsS --max-time 2 "$1" >/dev/null 2>&1; do
    kill -0 "$3" 2>/dev/null || { say "pid $3 exited while waiting for $1"; return 1; }
    [ "$SECONDS" -ge "$deadline" ] && { say "$1 not ready within $2 s"; return 1; }
    sleep 0.3
  done
}

# run_one N ROUND: one measured run with N feeds; appends its rows to $OUT.
run_one() {
  local n=$1 round=$2 i
  RUNDIR=$(mktemp -d /tmp/scaling-run.XXXXXX)
  local auth=$RUNDIR/auth; mkdir -p "$auth" "$RUNDIR/logs"; chmod 700 "$auth"
  local -a env=()
  for u in "${USERS[@]}"; do
    (umask 077; printf 'tw%s\n' "$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)" >"$auth/$u.password")
    env+=("TICKWIRE_NATS_$(echo "$u" | tr a-z A-Z)_PASSWORD=$(cat "$auth/$u.password")")
  done
  cp deploy/nats/tickwire-auth.conf "$RUNDIR/tickwire-auth.conf"
  read -r -a P < <(free_ports $((3 * NATS_NODES + 2 * n + 1)))
  local -a nats_pids=() feed_pids=() feed_admin=()
  local urls="" routes=""
  for ((i = 0; i < NATS_NODES; i++)); do
    urls+="${urls:+,}nats://127.0.0.1:${P[3*i]}"
    routes+="${routes:+, }nats://127.0.0.1:${P[3*i+2]}"
  done
  for ((i = 0; i < NATS_NODES; i++)); do
    local conf=$RUNDIR/nats-$i.conf
    {
      echo "server_name: scaling-$i"
      echo "listen: 127.0.0.1:${P[3*i]}"
      echo "http: 127.0.0.1:${P[3*i+1]}"
      echo "include ./tickwire-auth.conf"
      echo "jetstream { store_dir: \"$RUNDIR/nats-$i\" }"
      echo "max_payload: 1MB"
      if [ "$NATS_NODES" -gt 1 ]; then
        echo "cluster { name: scaling, listen: 127.0.0.1:${P[3*i+2]}, routes: [$routes] }"
      fi
    } >"$conf"
    env "${env[@]}" "$BIN/nats-server" -c "$conf" >"$RUNDIR/logs/nats-$i.log" 2>&1 &
    nats_pids+=($!); PIDS+=($!)
  done
  for ((i = 0; i < NATS_NODES; i++)); do
    wait_url "http://127.0.0.1:${P[3*i+1]}/healthz" 60 "${nats_pids[i]}" || return 1
  done
  local base=$((3 * NATS_NODES))
  local imetrics=127.0.0.1:${P[base + 2 * n]}
  "$BIN/ingest" --nats-url "$urls" --nats-auth-dir "$auth" --source synthetic \
    --synthetic-instruments "$INSTRUMENTS" --synthetic-rate "$RATE" --stream-replicas "$REPLICAS" \
    --metrics-listen "$imetrics" --log-level warn >"$RUNDIR/logs/ingest.log" 2>&1 &
  local ingest_pid=$!; PIDS+=($ingest_pid)
  wait_url "http://$imetrics/healthz" 60 "$ingest_pid" || return 1
  sleep 1
  for ((i = 0; i < n; i++)); do
    local listen=127.0.0.1:${P[base + 2*i]} admin=127.0.0.1:${P[base + 2*i + 1]}
    # shellcheck disable=SC2086
    "$BIN/feed" --listen "$listen" --admin-listen "$admin" --nats-url "$urls" --nats-auth-dir "$auth" \
      --auth-disabled --stream-replicas "$REPLICAS" --log-level warn $FEED_ARGS >"$RUNDIR/logs/feed-$i.log" 2>&1 &
    feed_pids+=($!); PIDS+=($!); feed_admin+=("http://$admin")
    wait_url "http://$listen/readyz" 60 "${feed_pids[i]}" || return 1
  done
  sleep "$WARMUP"

  # The window: CPU ticks of every process, the ingest's and each feed's event counters.
  local -a c0=() c1=() e0=() e1=()
  local all=("${nats_pids[@]}" "$ingest_pid" "${feed_pids[@]}")
  local ie0 ie1 t0 t1
  ie0=$(metric "http://$imetrics" tickwire_ingest_events_total)
  for ((i = 0; i < n; i++)); do e0+=("$(metric "${feed_admin[i]}" tickwire_feed_events_total)"); done
  t0=$(date +%s.%N)
  for p in "${all[@]}"; do c0+=("$(cpu_ticks "$p")"); done
  sleep "$WINDOW"
  for p in "${all[@]}"; do c1+=("$(cpu_ticks "$p")"); done
  t1=$(date +%s.%N)
  ie1=$(metric "http://$imetrics" tickwire_ingest_events_total)
  for ((i = 0; i < n; i++)); do e1+=("$(metric "${feed_admin[i]}" tickwire_feed_events_total)"); done
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ "$NATS_NODES" -gt 1 ]; then # where the stream's leader and each feed's consumer live
    local hp=()
    for ((i = 0; i < NATS_NODES; i++)); do hp+=("http://127.0.0.1:${P[3*i+1]}"); done
    python3 - "${hp[@]}" <<'PY' >&2 || true
import json, sys, urllib.request
streams, cons = {}, {}
for i, base in enumerate(sys.argv[1:]):
    with urllib.request.urlopen(base + "/jsz?accounts=true&streams=true&consumers=true", timeout=5) as r:
        j = json.load(r)
    for acc in j.get("account_details") or []:
        for sd in acc.get("stream_detail") or []:
            ld = (sd.get("cluster") or {}).get("leader")
            if ld: streams[sd["name"]] = ld
            for cd in sd.get("consumer_detail") or []:
                cl = (cd.get("cluster") or {}).get("leader")
                if cl: cons[(sd["name"], cd["name"])] = cl
print("scaling: stream leaders: " + ", ".join("%s on %s" % kv for kv in sorted(streams.items())))
print("scaling: consumer leaders: " + ", ".join("%s/%s on %s" % (s, c[:8], l) for (s, c), l in sorted(cons.items())))
PY
  fi

  for ((i = 0; i < ${#all[@]}; i++)); do
    [ "${c0[i]}" -ge 0 ] && [ "${c1[i]}" -ge 0 ] || { say "a process exited during the window (pid ${all[i]})"; return 1; }
  done
  # kind index ticks events rss
  local k=0
  for ((i = 0; i < NATS_NODES; i++, k++)); do
    printf '%s\t%s\t%s\tnats\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$round" "$load" "$i" "$t0" "$t1" $((c1[k] - c0[k])) \
      "$(python3 -c "print(int(float('$ie1') - float('$ie0')))")" "$(rss_kib "${all[k]}")" >>"$OUT"
  done
  printf '%s\t%s\t%s\tingest\t0\t%s\t%s\t%s\t%s\t%s\n' "$n" "$round" "$load" "$t0" "$t1" $((c1[k] - c0[k])) \
    "$(python3 -c "print(int(float('$ie1') - float('$ie0')))")" "$(rss_kib "$ingest_pid")" >>"$OUT"
  k=$((k + 1))
  for ((i = 0; i < n; i++, k++)); do
    printf '%s\t%s\t%s\tfeed\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$round" "$load" "$i" "$t0" "$t1" $((c1[k] - c0[k])) \
      "$(python3 -c "print(int(float('${e1[i]}') - float('${e0[i]}')))")" "$(rss_kib "${feed_pids[i]}")" >>"$OUT"
  done
}

say "feeds: $FEEDS; $RUNS rounds; $RATE events/s over $INSTRUMENTS instruments; NATS nodes $NATS_NODES (stream R$REPLICAS); warm-up ${WARMUP}s, window ${WINDOW}s"
say "binaries: $(cd "$BIN" && pwd); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$OUT"
for round in $(seq 1 "$RUNS"); do
  for n in $FEEDS; do
    say "round $round: $n feed(s)"
    if ! run_one "$n" "$round"; then
      say "run failed (logs below); going on"
      tail -n 5 "$RUNDIR"/logs/*.log >&2 || true
    fi
    cleanup
  done
done

python3 - "$OUT" "$TCK" <<'EOF'
import sys, statistics as st
path, tck = sys.argv[1], int(sys.argv[2])
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
# n round load kind idx t0 t1 ticks events rss_kib
runs = {}
for n, rnd, load, kind, idx, t0, t1, ticks, ev, rss in rows:
    w = float(t1) - float(t0)
    r = runs.setdefault((int(n), int(rnd)), {"load": load, "w": w, "nats": [], "ingest": [], "feed": []})
    r[kind].append((int(ticks) / tck, int(ev), int(rss)))
print("\nper run (CPU from /proc/<pid>/stat utime+stime over the window; cores = CPU s per s)")
print("%-5s %-5s %-16s %-7s %-10s %-11s %-11s %-10s %-24s %-10s %s" % (
    "feeds", "round", "load 1/5/15", "window", "events/s", "nats_cores", "nats_us_ev", "ingest_cores", "feed_cores each", "feed_us_ev", "feed RSS MiB"))
per_n = {}
for (n, rnd), r in sorted(runs.items()):
    w = r["w"]
    ev = r["ingest"][0][1]
    nats = sum(c for c, _, _ in r["nats"])
    ing = r["ingest"][0][0]
    fc = [c / w for c, _, _ in r["feed"]]
    fus = [c / e * 1e6 if e else float("nan") for c, e, _ in r["feed"]]
    rss = [m / 1024 for _, _, m in r["feed"]]
    print("%-5d %-5d %-16s %-7.1f %-10.0f %-11.3f %-11.1f %-12.3f %-24s %-10s %s" % (
        n, rnd, r["load"], w, ev / w, nats / w, nats / ev * 1e6 if ev else float("nan"), ing / w,
        " ".join("%.3f" % c for c in fc) or "-", " ".join("%.1f" % u for u in fus) or "-",
        " ".join("%.0f" % m for m in rss) or "-"))
    d = per_n.setdefault(n, {"ev": [], "nats": [], "nats_us": [], "ing": [], "feed": [], "feed_us": [], "rss": []})
    d["ev"].append(ev / w); d["nats"].append(nats / w); d["ing"].append(ing / w)
    d["nats_us"].append(nats / ev * 1e6 if ev else float("nan"))
    if fc:
        d["feed"].append(st.mean(fc)); d["feed_us"].append(st.mean(fus)); d["rss"].append(st.mean(rss))
med = lambda xs: st.median(xs) if xs else float("nan")
print("\nmedians over the rounds")
print("%-5s %-5s %-10s %-11s %-11s %-12s %-15s %-10s %s" % ("feeds", "runs", "events/s", "nats_cores", "nats_us_ev", "ingest_cores", "feed_cores/feed", "feed_us_ev", "feed RSS MiB"))
for n, d in sorted(per_n.items()):
    print("%-5d %-5d %-10.0f %-11.3f %-11.1f %-12.3f %-15.3f %-10.1f %.0f" % (
        n, len(d["ev"]), med(d["ev"]), med(d["nats"]), med(d["nats_us"]), med(d["ing"]), med(d["feed"]), med(d["feed_us"]), med(d["rss"])))
EOF
say "per-run rows: $OUT"
