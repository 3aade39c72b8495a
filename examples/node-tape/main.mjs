// node-tape: the trade tape of some instruments (every instrument the feed lists by default) as
// CSV on stdout, one row per trade as it happens; the counterpart of examples/tape in Go, with
// the same header and rows:
//
//   time,instrument,side,price,size,trade_id
//   2026-12-02T16:03:45.311967Z,synthetic:CORA,buy,225.55,0.4298,45
//
// time is the venue's time of the trade (Delta.venue_time_ns), RFC 3339 in UTC to the
// nanosecond with trailing zeros dropped (as Go's time.RFC3339Nano); side is the aggressor's, buy
// or sell ("" when the venue does not say); price and size are exact decimals at the
// instrument's scales (formatDecimal, never a float); trade_id is the venue's ("" when it gives
// none). Fields are quoted as Go's encoding/csv quotes them.
//
// It subscribes to the trades channel only. The snapshot's recent trades are not printed
// (--history prints them first); a trade marked history (a venue's recent trades, sent when the
// feed connected to it) is not new and is skipped. After a reconnect the client resumes the
// stream (the feed sends the trades missed) or gets a new snapshot: trades in a gap no resume
// covers are then missing, and the tape says so on stderr. Logs go to stderr, so stdout is only
// the CSV.
//
//   node main.mjs --url ws://127.0.0.1:8080/ws --token "$TICKWIRE_TOKEN" > trades.csv
//   node main.mjs --instruments synthetic:ACME --duration 60
//
// Flags: --url (default ws://127.0.0.1:8080/ws), --token (default $TICKWIRE_TOKEN), --instruments
// (comma-separated ids; default every instrument the feed lists), --history (print each
// snapshot's recent trades first), --duration <seconds> (then exit 0; default 0: until SIGINT or
// SIGTERM, which also exit 0).
//
// First: `make node-examples` (builds web/client, then npm ci here).

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { Channel, FeedClient, Side, SnapshotReason, formatDecimal } from "@tickwire/client";

const { values: flags } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
    token: { type: "string", default: process.env.TICKWIRE_TOKEN ?? "" },
    instruments: { type: "string", default: "" },
    history: { type: "boolean", default: false },
    duration: { type: "string", default: "0" },
  },
});
const duration = Number(flags.duration);
if (!Number.isFinite(duration) || duration < 0) {
  console.error(`node-tape: --duration ${flags.duration}: want seconds, 0 or more`);
  process.exit(2);
}
const wanted = flags.instruments.split(",").map((s) => s.trim()).filter(Boolean);

/** Unix nanoseconds as Go's time.RFC3339Nano in UTC: "2026-12-02T16:03:45.311967Z". */
function rfc3339Nano(ns) {
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

/** A CSV field as Go's encoding/csv writes it: quoted when it holds a comma, quote, CR or LF, or starts with a space. */
function csvField(f) {
  if (f === "") return f;
  if (f === "\\." || /[",\r\n]/.test(f) || /^\s/u.test(f)) return `"${f.replaceAll('"', '""')}"`;
  return f;
}

/** One CSV row of a trade of instrument id. */
function row(id, info, trade, venueTimeNs) {
  const side = trade.side === Side.BUY ? "buy" : trade.side === Side.SELL ? "sell" : "";
  return (
    [
      rfc3339Nano(venueTimeNs),
      id,
      side,
      formatDecimal(trade.price, info?.priceScale ?? 0),
      formatDecimal(trade.size, info?.sizeScale ?? 0),
      trade.tradeId,
    ]
      .map(csvField)
      .join(",") + "\n"
  );
}

const out = process.stdout;
out.write("time,instrument,side,price,size,trade_id\n");
const seen = new Set(); // instruments given a snapshot
let subscribed = wanted.length > 0;

const client = new FeedClient(
  { url: flags.url, token: () => flags.token || undefined, WebSocket, backoffMax: 30_000 },
  {
    onTrade(id, rec, sub) {
      // From a delta, in order: one row as soon as it happens.
      if (!rec.trade || rec.trade.history) return;
      out.write(row(id, sub.info, rec.trade, rec.venueTimeNs));
    },
    onSnapshot(id, ch, snap, sub) {
      if (ch !== Channel.TRADES) return;
      if (seen.has(id)) {
        // Not the first: a break or a reconnect the feed could not resume. The trades between
        // the last row and this snapshot were not sent as deltas.
        console.error(`node-tape: new snapshot of ${id} (${SnapshotReason[snap.reason]}): trades may be missing`);
      }
      seen.add(id);
      if (!flags.history || snap.body.case !== "trades") return;
      let rows = "";
      for (const r of snap.body.value.trades) if (r.trade) rows += row(id, sub.info, r.trade, r.venueTimeNs);
      out.write(rows);
    },
    onInstruments(list) {
      // Every instrument the feed lists (once; the subscriptions are kept across reconnects).
      if (subscribed) return;
      if (list.length === 0) {
        console.error("node-tape: the feed lists no instruments");
        return;
      }
      subscribed = true;
      client.subscribe(list.map((i) => i.id), [Channel.TRADES]);
    },
    onResync: (id, ch, why) => console.error(`node-tape: stream ${id} channel ${ch} broken (${why}), resyncing: trades may be missing`),
    onError: (e) => console.error(`node-tape: feed error ${e.code} ${e.instrument} ${e.message}`),
    onState: (state, detail) => {
      console.error(`node-tape: ${state}${detail ? ` (${detail})` : ""}`);
      if (state === "closed" && !stopping) {
        process.exitCode = 1;
        stop();
      }
    },
    onSignInNeeded: (code, reason) => console.error(`node-tape: the feed refused the token (${code} ${reason}); pass --token or TICKWIRE_TOKEN`),
  },
);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  client.stop();
  setTimeout(() => process.exit(), 1000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (duration > 0) setTimeout(stop, duration * 1000);

if (wanted.length > 0) client.subscribe(wanted, [Channel.TRADES]);
client.start();
