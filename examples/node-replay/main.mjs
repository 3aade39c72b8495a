// node-replay: watches a replay session, a stored window of the past re-streamed at a chosen
// speed (docs/PROTOCOL.md §18); the counterpart of examples/replay in Go, with the same lines. It
// prints each change of the session's status, then the replayed trades and quotes as they come,
// and exits 0 when the session is FINISHED:
//
//   status RUNNING clock 2026-12-02T16:15:40.873042762Z events 0 generation 1 speed 1 window 2026-12-02T16:15:40.873042762Z..2026-12-02T16:15:43.873042762Z
//   trade 2026-12-02T16:15:41.330596802Z synthetic:ACME buy 9.21 x 1.6773 id 1042
//   quote 2026-12-02T16:15:41.330596802Z synthetic:ACME bid 9.20 x 0.0180 ask 9.21 x 0.2687
//   status FINISHED clock 2026-12-02T16:15:43.873042762Z events 906 generation 1 speed 1 window ...
//   finished session last-minute: 906 events replayed; printed 74 trades and 236 quotes
//
// Times are the venue's times of the past window (Delta.venue_time_ns; RFC 3339 in UTC to the
// nanosecond, as Go's time.RFC3339Nano), not now; "-" for an empty side or an unknown aggressor.
// A status line is printed when the state, the generation (a seek) or the speed changes. After
// FINISHED it keeps printing until nothing has arrived for --linger (the last events can arrive
// just after the status that says they were all sent), then prints the summary and exits 0.
//
// What it shows:
//
// - A replay is watched over the same protocol as live data, on another URL,
//   ws://host/ws?replay=<session>: snapshots, deltas, positions and checksums work as live, so
//   the same FeedClient does it all.
// - The session's status comes as ReplayStatus messages (the onReplayStatus event): the latest
//   one on connecting, then every one the replayer publishes (every second and after a change).
// - A replay's instruments exist on the feed only once the replay has reached them, with their
//   reference data (the scales). So it subscribes once the feed lists them (listInstruments on
//   the replay connection, asked again every --list-interval until it does): those of
//   --instruments, or else those the session's status names.
//
//   bin/tickctl replay --from -2m --to -1m --speed 10 --session last-minute
//   node main.mjs --session last-minute --token "$TICKWIRE_TOKEN"
//
// Flags: --url (default ws://127.0.0.1:8080/ws, without ?replay=), --token (default
// $TICKWIRE_TOKEN; it needs the replay right), --session (required), --instruments
// (comma-separated ids; default every instrument the session replays), --linger <seconds>
// (default 0.3), --list-interval <seconds> (default 0.1), --duration <seconds> (stop after it,
// exit 0; default 0: until the session finishes, or SIGINT or SIGTERM, which also exit 0). It
// exits 1 when the feed refuses the connection for good (an unknown session: HTTP 404).
//
// First: `make node-examples` (builds web/client, then npm ci here).

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { Channel, FeedClient, ReplayState, Side, formatDecimal } from "@tickwire/client";

const { values: flags } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
    token: { type: "string", default: process.env.TICKWIRE_TOKEN ?? "" },
    session: { type: "string", default: "" },
    instruments: { type: "string", default: "" },
    linger: { type: "string", default: "0.3" },
    "list-interval": { type: "string", default: "0.1" },
    duration: { type: "string", default: "0" },
  },
});
function seconds(name, min) {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < min) {
    console.error(`node-replay: --${name} ${flags[name]}: want seconds, ${min} or more`);
    process.exit(2);
  }
  return v * 1000;
}
const lingerMs = seconds("linger", 0.001);
const listMs = seconds("list-interval", 0.001);
const durationMs = seconds("duration", 0);
if (!flags.session) {
  console.error("node-replay: --session is required");
  process.exit(2);
}
const session = flags.session;
const want = flags.instruments.split(",").map((s) => s.trim()).filter(Boolean); // []: the status's

/** Unix nanoseconds as Go's time.RFC3339Nano in UTC: "2026-12-02T16:15:41.330596802Z". */
function ts(ns) {
  let s = ns / 1_000_000_000n;
  let frac = ns % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    s -= 1n;
  }
  const base = new Date(Number(s) * 1000).toISOString().slice(0, 19);
  const digits = frac.toString().padStart(9, "0").replace(/0+$/, "");
  return `${base}${digits ? "." + digits : ""}Z`;
}

/** A number as Go's %g prints a float64: "1", "0.5", "1e+06". */
function g(v) {
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const [mant, e] = v.toExponential().split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  return String(v);
}

/** "price x size" at the scales, or "-" for an empty side. */
function side(price, size, info) {
  if (size === 0n) return "-";
  return `${formatDecimal(price, info?.priceScale ?? 0)} x ${formatDecimal(size, info?.sizeScale ?? 0)}`;
}

const url = new URL(flags.url);
url.searchParams.set("replay", session);

let prev; // the last status
let finished = false;
let last = Date.now(); // when the last message arrived
let events = 0n;
let trades = 0;
let quotes = 0;
let sessionInstruments = [];
let subscribed = false;
let listing = false; // a listInstruments is on its way

const client = new FeedClient(
  { url: url.toString(), token: () => flags.token || undefined, WebSocket, backoffMax: 30_000 },
  {
    onReplayStatus(st) {
      last = Date.now();
      events = st.events;
      if (st.instruments.length > 0) sessionInstruments = [...st.instruments];
      if (!prev || prev.state !== st.state || prev.generation !== st.generation || prev.speed !== st.speed) {
        process.stdout.write(
          `status ${ReplayState[st.state] ?? st.state} clock ${ts(st.clockNs)} events ${st.events} generation ${st.generation} ` +
            `speed ${g(st.speed)} window ${ts(st.fromNs)}..${ts(st.toNs)}\n`,
        );
      }
      prev = st;
      if (st.state === ReplayState.FINISHED && !finished) {
        finished = true;
        waitQuiet();
      }
    },
    onInstruments(list) {
      listing = false;
      if (subscribed) return;
      const ids = want.length > 0 ? want : sessionInstruments;
      const listed = new Set(list.map((i) => i.id));
      if (ids.length > 0 && ids.every((id) => listed.has(id))) {
        subscribed = true;
        clearInterval(lister);
        client.subscribe(ids, [Channel.QUOTE, Channel.TRADES]);
      }
    },
    onSnapshot() {
      last = Date.now();
    },
    onDelta(id, _ch, d, sub) {
      // A replayed trade or quote, at its venue time in the window.
      last = Date.now();
      const info = sub.info;
      if (d.body.case === "trade") {
        const t = d.body.value;
        const aggressor = t.side === Side.BUY ? "buy" : t.side === Side.SELL ? "sell" : "-";
        trades++;
        process.stdout.write(`trade ${ts(d.venueTimeNs)} ${id} ${aggressor} ${side(t.price, t.size, info)} id ${t.tradeId}\n`);
      } else if (d.body.case === "quote") {
        const q = d.body.value;
        quotes++;
        process.stdout.write(`quote ${ts(d.venueTimeNs)} ${id} bid ${side(q.bidPrice, q.bidSize, info)} ask ${side(q.askPrice, q.askSize, info)}\n`);
      }
    },
    onState: (state, detail) => {
      if (state === "connected") listing = false;
      console.error(`node-replay: ${state}${detail ? ` (${detail})` : ""}`);
      // Refused for good: an unknown session (HTTP 404), a token without the replay right, ...
      if (state === "closed" && !stopping) {
        process.exitCode = 1;
        stop();
      }
    },
    onError: (e) => console.error(`node-replay: feed error ${e.code} ${e.instrument} ${e.message}`),
    onSignInNeeded: (code, reason) => console.error(`node-replay: the feed refused the token (${code} ${reason}); pass --token or TICKWIRE_TOKEN`),
  },
);

// Until the feed lists the instruments to watch: ask again every --list-interval.
const lister = setInterval(() => {
  const ids = want.length > 0 ? want : sessionInstruments;
  if (subscribed || listing || ids.length === 0 || client.state !== "connected") return;
  listing = true;
  client.listInstruments();
}, listMs);

/** FINISHED: wait for the stream to go quiet, then print the summary and stop. */
function waitQuiet() {
  const tick = setInterval(() => {
    if (Date.now() - last < lingerMs) return;
    clearInterval(tick);
    stop();
    process.stdout.write(`finished session ${session}: ${events} events replayed; printed ${trades} trades and ${quotes} quotes\n`);
  }, lingerMs / 4);
}

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(lister);
  client.stop();
  setTimeout(() => process.exit(), 1000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (durationMs > 0) setTimeout(stop, durationMs).unref();

client.start();
