#!/usr/bin/env bash
# bench-peers.sh (make bench-peers): Tickwire side by side with Centrifugo, measured by the
# project's load tool (cmd/loadgen, --target tickwire|centrifugo), alternating servers, on
# loopback; prints the ratio table of issue 13 (docs/BENCHMARKS.md, "Side by side with
# Centrifugo") with the commands used, and keeps every JSON report in $RESULTS.
#
#   S1: 1,000 clients x 100 instruments/channels, 10 subscribers each
#   S2: 5,000 clients x 100 instruments/channels, 50 subscribers each
#
# Both servers step through the same delivered rates (--delivered-steps), so p99, CPU per
# delivery and RSS compare at equal rates, and with the same unit of work: Tickwire's events are
# quotes that each make one quote delta per subscriber (--market quotes), as each Centrifugo
# publication is one message per subscriber; a step is sustained when >= 95 % is delivered, p99 <=
# $MAX_P99 and nothing is lost. Tickwire runs as `loadgen --spawn` (the feed, and NATS as its own
# process: server CPU and RSS = feed + NATS); Centrifugo v$CF_VERSION (memory engine, protobuf
# clients, history 100 as in ../shared/peers/cfload) is started here, fresh for every run. Both
# keep the same resume depth per channel (HISTORY): Centrifugo's history_size, the feed's
# --resume-history (in S1 and S2 an instrument has one stream, quotes, so the two count alike).
#
# Settings (environment):
#   RUNS=2                 runs per scenario and server (server order alternates run by run)
#   SCENARIOS="S1 S2"      which scenarios
#   SHORT=1                quick check: one run, S1 only, fewer and shorter steps
#   HOLD=3s WARMUP=1s      measured window and settling time per step
#   MAX_P99=500ms          the step rule's p99 bound (the reference harness's; the tool's own default is 50ms)
#   STEPS_S1, STEPS_S2     delivered updates/s per step, comma separated
#   DURATION=110           seconds a run may take; a soak (RSS over 10 minutes) is e.g. RUNS=1 SCENARIOS=S1
#                          HOLD=29s DURATION=660 STEPS_S1=150000,150001,... (20 steps: steps must increase)
#   QUIET_IDLE=85 QUIET_MAX=180   wait up to QUIET_MAX s for QUIET_IDLE % idle CPU before each run
#   RESULTS=dir            where reports go (default: outside the repo, in the cache folder)
#   CENTRIFUGO=path        a Centrifugo binary to use instead of building v$CF_VERSION
#   BENCH_TREE=worktree    measure this checkout as it is (default: HEAD, from a clean export)
#   EMBED=1                Tickwire as `make run` runs it: NATS inside the feed process (--feed-embed-nats),
#                          so server CPU and RSS are that one process's
#   HISTORY=100            resume depth per channel on both servers (Centrifugo history_size, feed
#                          --resume-history); cfload's 100. Before 3c66801 (2026-12-03 13:41 UTC) the feed kept
#                          its default 2048 against Centrifugo's 100
#   TW_FLAGS="..."         more load-tool flags for Tickwire's runs, e.g. a feed flag:
#                          TW_FLAGS=--feed-arg=--resume-history-bytes=65536
#
# Every run holds /tmp/tickwire-bench.lock (flock) while it runs, so measurements on this shared
# machine do not overlap; each hold is bounded (timeout). Only the processes this script started
# are stopped, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

CF_VERSION=6.9.1
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tickwire-peers
RUNS=${RUNS:-2}
SCENARIOS=${SCENARIOS:-S1 S2}
HOLD=${HOLD:-3s}
WARMUP=${WARMUP:-1s}
MAX_P99=${MAX_P99:-500ms}
STEPS_S1=${STEPS_S1:-20000,50000,100000,150000,200000,250000,300000,350000,400000,450000,500000}
STEPS_S2=${STEPS_S2:-20000,50000,100000,150000,200000,250000,300000,350000,400000,500000,600000,700000,800000}
HISTORY=${HISTORY:-100}
case "$HISTORY" in '' | *[!0-9]* | 0) echo "HISTORY=$HISTORY: want a positive count" >&2; exit 2 ;; esac
QUIET_IDLE=${QUIET_IDLE:-85}
QUIET_MAX=${QUIET_MAX:-180}
if [ "${SHORT:-0}" = 1 ]; then
  RUNS=1 SCENARIOS=S1 HOLD=2s STEPS_S1=20000,50000,100000
fi
RESULTS=${RESULTS:-$CACHE/results/$(date -u +%Y%m%dT%H%M%SZ)}
LOCK=/tmp/tickwire-bench.lock
mkdir -p "$RESULTS"

# The processes this script started and has not stopped yet: the load tool (through timeout,
# which passes the signal on; the tool stops the feed and NATS it spawned) and Centrifugo.
lg_pid="" cf_pid=""
cleanup() {
  for p in $lg_pid $cf_pid; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------------
CENTRIFUGO=${CENTRIFUGO:-$CACHE/bin/centrifugo}
if [ ! -x "$CENTRIFUGO" ]; then
  echo "building Centrifugo v$CF_VERSION into $CACHE/bin (about 20 minutes on 2 cores)"
  mkdir -p "$CACHE/bin"
  GOBIN="$CACHE/bin" go install "github.com/centrifugal/centrifugo/v6@v$CF_VERSION"
fi
cf_version=$(go version -m "$CENTRIFUGO" 2>/dev/null | awk '$1 == "mod" {print $2, $3}' || true)
echo "centrifugo: $CENTRIFUGO ($cf_version)"
# What is measured: the committed tree (HEAD), built from a clean export, so that uncommitted
# work in this checkout is not measured by accident; BENCH_TREE=worktree measures the checkout.
BIN_DIR="$RESULTS/bin"
if [ "${BENCH_TREE:-head}" = worktree ]; then
  go build -o "$BIN_DIR/" ./cmd/feed ./cmd/loadgen
  rev="$(git rev-parse --short HEAD) + uncommitted changes"
else
  src=$(mktemp -d)
  git archive HEAD | tar -x -C "$src"
  (cd "$src" && go build -o "$BIN_DIR/" ./cmd/feed ./cmd/loadgen)
  rm -rf "$src"
  rev=$(git rev-parse --short HEAD)
fi
echo "tickwire: $rev (feed and loadgen in $BIN_DIR)" | tee "$RESULTS/commands.txt"
ulimit -n "$(ulimit -Hn)"

# --- helpers -------------------------------------------------------------------------------
# The benchmark lock is held on fd 9 around each run (when flock exists); children get fd 9 closed.
exec 9>"$LOCK"
lock() { if command -v flock >/dev/null; then flock 9; fi; }
unlock() { if command -v flock >/dev/null; then flock -u 9; fi; }

# wait_quiet TAG: wait until the CPUs are QUIET_IDLE % idle over 3 s (at most QUIET_MAX s);
# records the idle % seen in $RESULTS/TAG.idle either way.
wait_quiet() {
  local t=0 idle=0
  while [ "$t" -lt "$QUIET_MAX" ]; do
    idle=$(vmstat -n 1 4 | tail -3 | awk '{s+=$15} END{print int(s/3)}')
    [ "$idle" -ge "$QUIET_IDLE" ] && break
    t=$((t + 4))
  done
  echo "$idle" > "$RESULTS/$1.idle"
  if [ "$idle" -ge "$QUIET_IDLE" ]; then echo "  quiet: idle $idle % after ${t} s"; else echo "  NOT quiet after ${QUIET_MAX} s: idle $idle % (measuring anyway, recorded)"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

shape() { # scenario -> loadgen shape flags
  case "$1" in
    S1) echo "--clients 1000 --instruments 100 --subscribers 10 --delivered-steps $STEPS_S1" ;;
    S2) echo "--clients 5000 --instruments 100 --subscribers 50 --delivered-steps $STEPS_S2" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

DURATION=${DURATION:-110} # seconds a run may take (--duration); raise it with HOLD for a soak
common="--mode step --warmup $WARMUP --hold $HOLD --duration ${DURATION}s --max-p99 $MAX_P99"
RUN_TIMEOUT=$((DURATION + 60)) # seconds: --duration plus setup and stopping; keeps each lock hold bounded

run_tickwire() { # tag scenario
  local embed=""
  [ "${EMBED:-0}" = 1 ] && embed="--feed-embed-nats"
  local cmd="$BIN_DIR/loadgen --spawn $embed --feed-arg=--resume-history=$HISTORY ${TW_FLAGS:-} --feed-bin $BIN_DIR/feed --market quotes $(shape "$2") $common --json $RESULTS/$1.json"
  echo "$cmd" | tee -a "$RESULTS/commands.txt"
  timeout "$RUN_TIMEOUT" $cmd 9>&- > "$RESULTS/$1.log" 2>&1 &
  wait_loadgen "$1"
}

# wait_loadgen TAG: wait for the load tool started last (in the background, so that a signal
# to this script is handled at once rather than after the run).
wait_loadgen() {
  lg_pid=$!
  local rc=0
  wait "$lg_pid" || rc=$?
  lg_pid=""
  [ "$rc" = 0 ] || echo "  run failed (exit $rc): see $RESULTS/$1.log"
}

run_centrifugo() { # tag scenario
  local port conf cmd
  port=$(free_port)
  conf="$RESULTS/$1.centrifugo.json"
  cat > "$conf" <<EOF
{
  "log": {"level": "error"},
  "http_server": {"address": "127.0.0.1", "port": $port},
  "usage_stats": {"disabled": true},
  "engine": {"type": "memory"},
  "client": {"token": {"hmac_secret_key": "bench-hmac-secret-not-for-production"}, "allowed_origins": ["http://127.0.0.1:$port"]},
  "http_api": {"key": "bench-api-key"},
  "channel": {"namespaces": [{"name": "md", "history_size": $HISTORY, "history_ttl": "300s", "force_recovery": true, "allow_subscribe_for_client": true}]}
}
EOF
  "$CENTRIFUGO" -c "$conf" 9>&- > "$RESULTS/$1.centrifugo.log" 2>&1 &
  cf_pid=$!
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "$CENTRIFUGO -c $conf   # pid $cf_pid" >> "$RESULTS/commands.txt"
  cmd="$BIN_DIR/loadgen --target centrifugo --centrifugo-url ws://127.0.0.1:$port/connection/websocket --centrifugo-api http://127.0.0.1:$port/api --centrifugo-pid $cf_pid $(shape "$2") $common --json $RESULTS/$1.json"
  echo "CENTRIFUGO_API_KEY=bench-api-key CENTRIFUGO_TOKEN_SECRET=bench-hmac-secret-not-for-production $cmd" | tee -a "$RESULTS/commands.txt"
  CENTRIFUGO_API_KEY=bench-api-key CENTRIFUGO_TOKEN_SECRET=bench-hmac-secret-not-for-production \
    timeout "$RUN_TIMEOUT" $cmd 9>&- > "$RESULTS/$1.log" 2>&1 &
  wait_loadgen "$1"
  kill "$cf_pid" 2>/dev/null || true
  wait "$cf_pid" 2>/dev/null || true
  cf_pid=""
}

# --- runs: alternate the servers, run by run -----------------------------------------------
echo "results: $RESULTS"
for run in $(seq "$RUNS"); do
  for sc in $SCENARIOS; do
    order="tickwire centrifugo"
    [ $((run % 2)) = 0 ] && order="centrifugo tickwire"
    for srv in $order; do
      tag="$sc-$srv-$run"
      echo "== $tag ($(date -u +%H:%M:%S))"
      lock
      wait_quiet "$tag"
      "run_$srv" "$tag" "$sc"
      unlock
      grep -h "SUMMARY highest\|SUMMARY: no step" "$RESULTS/$tag.log" | sed 's/^/  /' || true
    done
  done
done

# --- the ratio table -----------------------------------------------------------------------
python3 - "$RESULTS" "${EMBED:-0}" "$HISTORY" <<'EOF' | tee "$RESULTS/ratios.md"
import json, glob, os, statistics, sys
R = sys.argv[1]
def load(sc, srv):
    out = []
    for p in sorted(glob.glob(f"{R}/{sc}-{srv}-*.json")):
        if p.endswith(".centrifugo.json"):
            continue
        try:
            rep = json.load(open(p))
        except Exception:
            continue
        tag = os.path.basename(p)[:-5]
        try:
            rep["_idle"] = int(open(f"{R}/{tag}.idle").read())
        except Exception:
            rep["_idle"] = None
        out.append(rep)
    return out
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def server_cpu(s):  # cores: the feed and its NATS, or Centrifugo
    return s["feed_cpu_cores"] + s.get("nats_cpu_cores", 0)
def server_rss(s):
    return s["feed_rss_max_bytes"] + s.get("nats_rss_bytes", 0)
def best(rep):
    b = rep.get("highest_sustained")
    return b["delivered_updates_per_s"] if b else 0
def why_stopped(rep):  # why stepping ended: a marker on the run's max
    last = rep["steps"][-1] if rep["steps"] else None
    if not last:
        return "?"
    if last["sustained"] and last["publisher_limited"]:
        return "p"  # the publisher fell short of the rate: a lower bound
    if last["sustained"]:
        return "c"  # the schedule's last step was sustained: a lower bound
    return ""
def by_rate(reps):
    rates = {}
    for rep in reps:
        for s in rep["steps"]:
            rates.setdefault(s.get("target_delivered_per_s", 0), []).append(s)
    return rates
def k(x): return f"{x/1000:.0f} k" if x >= 1000 else f"{x:.0f}"
def ratio(a, b): return f"{a/b:.2f}x" if a and b else "-"
print("| scenario | measure | Tickwire | Centrifugo | Tickwire / Centrifugo |")
print("|---|---|---|---|---|")
for sc in ["S1", "S2"]:
    tw, cf = load(sc, "tickwire"), load(sc, "centrifugo")
    if not tw or not cf:
        continue
    btw, bcf = [best(r) for r in tw], [best(r) for r in cf]
    runs = lambda reps: ", ".join(k(best(r)) + why_stopped(r) for r in reps)
    print(f"| {sc} | max sustained delivered/s (runs) | **{k(med(btw))}** ({runs(tw)}) | **{k(med(bcf))}** ({runs(cf)}) | **{ratio(med(btw), med(bcf))}** |")
    rt, rc = by_rate(tw), by_rate(cf)
    for rate in sorted(set(rt) & set(rc)):
        if not rate:
            continue
        st, sc_ = rt[rate], rc[rate]
        p99t = med([s["latency"]["p99_ns"] / 1e6 for s in st]); p99c = med([s["latency"]["p99_ns"] / 1e6 for s in sc_])
        okt = sum(s["sustained"] for s in st); okc = sum(s["sustained"] for s in sc_)
        # The feed's own measure of the part through NATS (publish to applied), where it has one.
        applyt = med([s["ingest_to_apply"]["p99_ns"] / 1e6 for s in st if s.get("ingest_to_apply", {}).get("p99_ns")])
        via = f"; to the feed {applyt:.1f}" if applyt else ""
        print(f"| {sc} | {k(rate)}/s: p99 ms (sustained in runs{via and '; to the feed: from publish to the feed applying it'}) | {p99t:.1f} ({okt}/{len(st)}{via}) | {p99c:.1f} ({okc}/{len(sc_)}) | {ratio(p99t, p99c)} |")
        cput = med([server_cpu(s) * 1e6 / s["delivered_updates_per_s"] for s in st if s["delivered_updates_per_s"]])
        feedt = med([s["feed_cpu_cores"] * 1e6 / s["delivered_updates_per_s"] for s in st if s["delivered_updates_per_s"]])
        cpuc = med([server_cpu(s) * 1e6 / s["delivered_updates_per_s"] for s in sc_ if s["delivered_updates_per_s"]])
        print(f"| {sc} | {k(rate)}/s: server CPU-us per delivery | {cput:.2f} (feed alone {feedt:.2f}) | {cpuc:.2f} | {ratio(cput, cpuc)} (feed alone {ratio(feedt, cpuc)}) |")
        rsst = med([server_rss(s) / 2**20 for s in st]); rssc = med([server_rss(s) / 2**20 for s in sc_])
        print(f"| {sc} | {k(rate)}/s: server RSS MiB (max in step) | {rsst:.0f} | {rssc:.0f} | {ratio(rsst, rssc)} |")
    it = med([r["setup"].get("feed_rss_per_conn_bytes") for r in tw]); ic = med([r["setup"].get("feed_rss_per_conn_bytes") for r in cf])
    if it and ic:
        print(f"| {sc} | idle RSS per connection KiB (after subscribing) | {it/1024:.1f} | {ic/1024:.1f} | {ratio(it, ic)} |")
    idle = [r["_idle"] for r in tw + cf if r["_idle"] is not None]
    if idle:
        print(f"| {sc} | machine idle % before each run | {', '.join(str(r['_idle']) for r in tw)} | {', '.join(str(r['_idle']) for r in cf)} | |")
print()
print("Runs marked p ended on a step the publisher could not reach (within 5 %), c on the schedule's last step: lower bounds.")
shape = "the feed with NATS inside it (EMBED=1)" if sys.argv[2] == "1" else "Tickwire's feed + its NATS (own process)"
print(f"Medians over runs. Server = {shape}, or Centrifugo; RSS under load includes NATS;")
print("idle RSS per connection is the feed's alone (NATS does not grow with connections).")
print(f"Resume depth per channel on both servers: {sys.argv[3]} (Centrifugo history_size, the feed's --resume-history).")
EOF
echo
echo "commands: $RESULTS/commands.txt"
echo "reports:  $RESULTS/*.json (logs: *.log)"
