// node-quotes: a minimal Tickwire bot in Node.js, the counterpart of examples/quotes in Go. It
// connects to a feed, subscribes to the quote channel of some instruments (every instrument the
// feed lists by default) and prints one line per quote change, with prices and sizes at each
// instrument's exact precision and the latency from ingest:
//
//   16:03:45.145 synthetic:ACME           bid 9.19 x 1.4341  ask 9.21 x 0.9289  latency 1.04ms
//
// ("-" for an empty side; "snapshot" instead of the latency for the first quote, and for the
// snapshot after a gap). Connection states, gaps and feed errors go to stderr.
//
//   node main.mjs --url ws://127.0.0.1:8080/ws --token "$TICKWIRE_TOKEN" --instruments synthetic:ACME,synthetic:BOLT --duration 10
//
// Flags: --url (default ws://127.0.0.1:8080/ws), --token (default $TICKWIRE_TOKEN), --instruments
// (comma-separated ids; default every instrument the feed lists), --duration <seconds> (stop
// after it, exit 0; default 0: until SIGINT or SIGTERM, which also exit 0), --compact (ask for
// compact quotes). It reconnects on its own (jittered backoff, resume) when the feed restarts.
//
// First: cd web/client && npm ci && npm run build (or `make client`), then npm ci here.

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { Channel, FeedClient, formatDecimal, nsToMs } from "@tickwire/client";

const { values: flags } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
    token: { type: "string", default: process.env.TICKWIRE_TOKEN ?? "" },
    instruments: { type: "string", default: "" },
    duration: { type: "string", default: "0" },
    compact: { type: "boolean", default: false },
  },
});
const duration = Number(flags.duration);
if (!Number.isFinite(duration) || duration < 0) {
  console.error(`node-quotes: --duration ${flags.duration}: want seconds, 0 or more`);
  process.exit(2);
}
const wanted = flags.instruments.split(",").map((s) => s.trim()).filter(Boolean);

/** The wall clock in Unix ms, with sub-ms precision (for the latency). */
const nowMs = () => performance.timeOrigin + performance.now();

/** "HH:MM:SS.mmm", local time. */
function clock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** "price x size" at the instrument's scales, or "-" for an empty side. */
function side(price, size, info) {
  if (size === 0n) return "-";
  return `${formatDecimal(price, info?.priceScale ?? 0)} x ${formatDecimal(size, info?.sizeScale ?? 0)}`;
}

let subscribed = wanted.length > 0;
const client = new FeedClient(
  {
    url: flags.url,
    token: () => flags.token || undefined,
    WebSocket,
    backoffMax: 30_000,
    compactQuotes: flags.compact,
  },
  {
    onQuote(id, q, sub, u) {
      const now = nowMs();
      let tail = "snapshot";
      if (u.delta) {
        const ms = u.delta.ingestTimeNs > 0n ? now - nsToMs(u.delta.ingestTimeNs) : 0;
        tail = `latency ${ms.toFixed(2)}ms`;
      }
      process.stdout.write(
        `${clock(now)} ${id.padEnd(24)} bid ${side(q.bidPrice, q.bidSize, sub.info)}  ask ${side(q.askPrice, q.askSize, sub.info)}  ${tail}\n`,
      );
    },
    onInstruments(list) {
      // Every instrument the feed lists (once; the subscriptions are kept across reconnects).
      if (subscribed) return;
      if (list.length === 0) {
        console.error("node-quotes: the feed lists no instruments");
        return;
      }
      subscribed = true;
      console.error(`node-quotes: subscribing to ${list.length} instruments`);
      client.subscribe(list.map((i) => i.id), [Channel.QUOTE]);
    },
    onGap: (g) => console.error(`node-quotes: ${g.reason} on ${g.instrument} (channel ${g.channel}): resyncing`),
    onError: (e) => console.error(`node-quotes: feed error ${e.code} ${e.instrument} ${e.message}`),
    onState: (state, detail) => {
      console.error(`node-quotes: ${state}${detail ? ` (${detail})` : ""}`);
      // Closed by the feed for good (a close code or handshake refusal that must not be retried).
      if (state === "closed" && !stopping) {
        process.exitCode = 1;
        stop();
      }
    },
    onSignInNeeded: (code, reason) => console.error(`node-quotes: the feed refused the token (${code} ${reason}); pass --token or TICKWIRE_TOKEN`),
  },
);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  client.stop();
  // The close handshake takes a round trip; do not wait for a feed that does not answer.
  setTimeout(() => process.exit(), 1000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (duration > 0) setTimeout(stop, duration * 1000);

if (wanted.length > 0) client.subscribe(wanted, [Channel.QUOTE]);
client.start();
