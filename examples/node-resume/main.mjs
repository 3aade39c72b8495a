// node-resume: holds quote and book subscriptions across lost connections and feed restarts,
// and reports what each reconnect cost: which streams resumed without a snapshot, and which got
// a new one; the counterpart of examples/resume in Go, with the same lines (stdout):
//
//   connected #1
//   snapshot synthetic:ACME quote SUBSCRIBE at 1796227417/10363
//   snapshot synthetic:ACME book SUBSCRIBE at 1796227417/10363
//   disconnected: closed 1001: server shutting down; retry in 0.3 s
//   reconnected #2 after 1.312s
//   resumed synthetic:ACME quote from 1796227417/10501 without a snapshot
//   resumed synthetic:ACME book from 1796227417/10499 without a snapshot
//   snapshot synthetic:BOLT book HISTORY_GONE at 1796227417/11020 (after reconnect #2)
//   summary connects=2 resumed=3 snapshots_after_reconnect=1 gaps=0 checksum_failures=0 resyncs=0
//
// One line per connect, per stream resumed and per snapshot (and per resync, "resync ID
// channel: why"); the summary on exit (SIGINT, SIGTERM, --duration: exit 0; the feed ending the
// connection for good: exit 1).
//
// What it shows (docs/PROTOCOL.md §13):
//
// - FeedClient reconnects on its own, with jittered exponential backoff, and sends every
//   subscription again. For each stream that was in sync it sends its position (epoch, seq) in
//   Subscribe.resume: it kept the replica across the disconnect.
// - The feed answers each instrument with Subscribed, whose resumed field lists the channels it
//   resumed: for those it sends only the deltas missed since the position, then live ones, and
//   no snapshot. Every other channel gets a new snapshot, whose reason says why (HISTORY_GONE:
//   the feed no longer holds every delta since the position; NEW_EPOCH: the instrument's
//   sequence started over). A feed restarted on the same store rebuilds the same state and
//   history from it, so a bot usually resumes everything.
// - All of that is visible from the events alone: onState for the connection, onSubscribed for
//   Subscribed.resumed (the position resumed from is the one the replica still holds,
//   sub.replica.pos), onSnapshot for the snapshots; FeedClient.stats counts it (connects,
//   resumed, snapshots, gaps, checksum, resyncs).
//
//   node main.mjs --url ws://127.0.0.1:8080/ws --token "$TICKWIRE_TOKEN" --instruments synthetic:ACME,synthetic:BOLT
//   # then restart the feed (Ctrl-C "make run" and start it again): it reports the reconnect
//
// Flags: --url (default ws://127.0.0.1:8080/ws), --token (default $TICKWIRE_TOKEN), --instruments
// (comma-separated ids; default every instrument the feed lists), --depth (book depth per side,
// default 10), --duration <seconds> (default 0: until SIGINT or SIGTERM).
//
// First: `make node-examples` (builds web/client, then npm ci here).

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { Channel, FeedClient, SnapshotReason, channelName } from "@tickwire/client";

const { values: flags } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
    token: { type: "string", default: process.env.TICKWIRE_TOKEN ?? "" },
    instruments: { type: "string", default: "" },
    depth: { type: "string", default: "10" },
    duration: { type: "string", default: "0" },
  },
});
function num(name, min) {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < min) {
    console.error(`node-resume: --${name} ${flags[name]}: want a number, ${min} or more`);
    process.exit(2);
  }
  return v;
}
const depth = Math.floor(num("depth", 0));
const duration = num("duration", 0);
const wanted = flags.instruments.split(",").map((s) => s.trim()).filter(Boolean);
const channels = [Channel.QUOTE, Channel.BOOK];

/** Milliseconds as Go prints a time.Duration rounded to the millisecond: "312ms", "1.312s", "1m2.5s". */
function goDuration(ms) {
  ms = Math.round(ms);
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const secs = (s) => `${(s / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;
  if (ms < 60_000) return secs(ms);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  return `${h > 0 ? `${h}h` : ""}${m}m${secs(ms % 60_000)}`;
}

const say = (line) => process.stdout.write(line + "\n");
let connects = 0;
let lost = Date.now(); // when the last connection was lost
let renewed = 0; // snapshots after a reconnect
let subscribed = wanted.length > 0;

const client = new FeedClient(
  { url: flags.url, token: () => flags.token || undefined, WebSocket, backoffMax: 30_000 },
  {
    onState(state, detail) {
      if (state === "connected") {
        connects++;
        say(connects === 1 ? "connected #1" : `reconnected #${connects} after ${goDuration(Date.now() - lost)}`);
        return;
      }
      if (state === "connecting") return;
      if (state === "disconnected") {
        lost = Date.now();
        say(`disconnected: ${detail}`);
        return;
      }
      // closed: by us (stopping), or by the feed for good.
      if (!stopping) {
        console.error(`node-resume: closed (${detail})`);
        process.exitCode = 1;
        stop();
      }
    },
    onInstruments(list) {
      // Every instrument the feed lists, subscribed once: the client sends it again, with resume
      // positions, on every reconnect.
      if (subscribed) return;
      if (list.length === 0) {
        console.error("node-resume: the feed lists no instruments");
        return;
      }
      subscribed = true;
      client.subscribe(list.map((i) => i.id), channels, depth);
    },
    // The streams the feed resumed: Subscribed.resumed lists their channels. The position they
    // resumed from is the one the client held, still in the replica.
    onSubscribed(id, m, sub) {
      for (const ch of m.channels) {
        if (!m.resumed.includes(ch)) continue;
        const p = sub.replica.pos[ch];
        say(`resumed ${id} ${channelName(ch)} from ${p.epoch}/${p.seq} without a snapshot`);
      }
    },
    // Every snapshot: the first ones of a subscription, and after a reconnect those of the
    // streams the feed could not resume.
    onSnapshot(id, ch, snap) {
      const reason = SnapshotReason[snap.reason] ?? String(snap.reason);
      if (connects > 1) {
        renewed++;
        say(`snapshot ${id} ${channelName(ch)} ${reason} at ${snap.epoch}/${snap.seq} (after reconnect #${connects})`);
        return;
      }
      say(`snapshot ${id} ${channelName(ch)} ${reason} at ${snap.epoch}/${snap.seq}`);
    },
    onResync: (id, ch, why) => say(`resync ${id} ${channelName(ch)}: ${why}`),
    onError: (e) => console.error(`node-resume: feed error ${e.code} ${e.instrument} ${e.message}`),
    onSignInNeeded: (code, reason) => console.error(`node-resume: the feed refused the token (${code} ${reason}); pass --token or TICKWIRE_TOKEN`),
  },
);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  client.stop();
  const st = client.stats;
  say(
    `summary connects=${st.connects} resumed=${st.resumed} snapshots_after_reconnect=${renewed} gaps=${st.gaps} ` +
      `checksum_failures=${st.checksum} resyncs=${st.resyncs}`,
  );
  setTimeout(() => process.exit(), 1000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (duration > 0) setTimeout(stop, duration * 1000);

if (wanted.length > 0) client.subscribe(wanted, channels, depth);
client.start();
