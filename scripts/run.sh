#!/usr/bin/env bash
# Runs the whole system on one machine: feed with an embedded NATS server (JetStream stored in
# .data/nats) and ingest with a synthetic market. Ctrl-C stops both gracefully.
# NATS refuses anonymous clients: the feed generates its users' passwords into .data/nats-auth
# (mode 0600, once, reused after) and ingest (and tickctl) read theirs from there.
# Settings: FEED_LISTEN (127.0.0.1:8080), ADMIN_LISTEN (127.0.0.1:9102: the feed's /metrics),
# NATS_LISTEN (127.0.0.1:4222), INSTRUMENTS (50), RATE (2000).
set -euo pipefail
cd "$(dirname "$0")/.."

FEED_LISTEN=${FEED_LISTEN:-127.0.0.1:8080}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:9102}
NATS_LISTEN=${NATS_LISTEN:-127.0.0.1:4222}
INSTRUMENTS=${INSTRUMENTS:-50}
RATE=${RATE:-2000}
mkdir -p .data

bin/feed --listen "$FEED_LISTEN" --admin-listen "$ADMIN_LISTEN" \
  --embed-nats --nats-listen "$NATS_LISTEN" --nats-data-dir .data/nats --nats-auth-dir .data/nats-auth &
feed_pid=$!
bin/ingest --nats-url "nats://$NATS_LISTEN" --nats-auth-dir .data/nats-auth --source synthetic \
  --synthetic-instruments "$INSTRUMENTS" --synthetic-rate "$RATE" --metrics-listen 127.0.0.1:9101 &
ingest_pid=$!

stop() {
  trap - INT TERM
  kill -TERM "$ingest_pid" 2>/dev/null || true
  wait "$ingest_pid" 2>/dev/null || true
  kill -TERM "$feed_pid" 2>/dev/null || true
  wait "$feed_pid" 2>/dev/null || true
}
trap stop INT TERM

# Whichever process ends first ends the run.
status=0
wait -n "$feed_pid" "$ingest_pid" || status=$?
stop
exit "$status"
