#!/usr/bin/env bash
# Runs the whole system on one machine: feed with an embedded NATS server (JetStream stored in
# .data/nats) and ingest with a synthetic market. Ctrl-C stops both gracefully.
# NATS refuses anonymous clients: the feed generates its users' passwords into .data/nats-auth
# (mode 0600, once, reused after) and ingest (and tickctl) read theirs from there.
# Clients need a token: a development HS256 key is generated into .data/feed-hs256.key (0600,
# once), and a development token signed with it (every instrument and channel, replay, 24 h) is
# handed to the browser in the fragment of the printed dashboard URL (#token=..., which the
# browser never sends; the dashboard moves it to session storage). Bots:
#   TICKWIRE_TOKEN=$(bin/tickctl token --key-file .data/feed-hs256.key --sub me) bin/tickctl tail
# The first three tickers (ACME, BOLT, CORA) also trade on a second synthetic venue, synthetic-b,
# around the same prices, and a third process (ingest --source consolidated, NATS user
# consolidator) merges both venues into consolidated:ACME, consolidated:BOLT, consolidated:CORA.
# Settings: FEED_LISTEN (127.0.0.1:8080), ADMIN_LISTEN (127.0.0.1:9102: the feed's /metrics),
# NATS_LISTEN (127.0.0.1:4222), INSTRUMENTS (50, at least 3), RATE (2000).
set -euo pipefail
cd "$(dirname "$0")/.."

FEED_LISTEN=${FEED_LISTEN:-127.0.0.1:8080}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:9102}
NATS_LISTEN=${NATS_LISTEN:-127.0.0.1:4222}
INSTRUMENTS=${INSTRUMENTS:-50}
RATE=${RATE:-2000}
mkdir -p .data
KEY=.data/feed-hs256.key
TOKEN=$(bin/tickctl token --key-file "$KEY" --new-key --sub dev --instruments '*' --replay-control --ttl 24h)

bin/feed --listen "$FEED_LISTEN" --admin-listen "$ADMIN_LISTEN" \
  --embed-nats --nats-listen "$NATS_LISTEN" --nats-data-dir .data/nats --nats-auth-dir .data/nats-auth \
  --auth-hs256-key-file "$KEY" --replay-start &
feed_pid=$!
bin/ingest --nats-url "nats://$NATS_LISTEN" --nats-auth-dir .data/nats-auth --source synthetic \
  --synthetic-instruments "$INSTRUMENTS" --synthetic-rate "$RATE" --metrics-listen 127.0.0.1:9101 \
  --synthetic-venues synthetic,synthetic-b --synthetic-cross-listed 3 &
ingest_pid=$!
consolidate=()
for t in ACME BOLT CORA; do consolidate+=(--consolidate "consolidated:$t=synthetic:$t,synthetic-b:$t"); done
bin/ingest --nats-url "nats://$NATS_LISTEN" --nats-auth-dir .data/nats-auth --nats-user consolidator \
  --source consolidated "${consolidate[@]}" --metrics-listen 127.0.0.1:9103 &
consolidated_pid=$!

# After the feed's own banner: the URL that signs this browser in (valid 24 h; run again for a new one).
( sleep 2; printf '\n  Sign the dashboard in (development token, 24 h):\n  http://%s/#token=%s\n\n' "$FEED_LISTEN" "$TOKEN" >&2 ) &

stop() {
  trap - INT TERM
  kill -TERM "$ingest_pid" "$consolidated_pid" 2>/dev/null || true
  wait "$ingest_pid" "$consolidated_pid" 2>/dev/null || true
  kill -TERM "$feed_pid" 2>/dev/null || true
  wait "$feed_pid" 2>/dev/null || true
}
trap stop INT TERM

# Whichever process ends first ends the run.
status=0
wait -n "$feed_pid" "$ingest_pid" "$consolidated_pid" || status=$?
stop
exit "$status"
