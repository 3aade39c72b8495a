// node-book: keeps a local L2 order book of one or more instruments with @tickwire/client and
// proves, as it goes, that it is the feed's book; the counterpart of examples/book in Go, with
// the same output. Every --interval it prints, per instrument:
//
//   book synthetic:ACME depth 10 at 1796227417/5123 synced
//     1  bid 9.18 x 0.0269  ask 9.21 x 0.9289
//     2  bid 9.17 x 1.2000  ask 9.22 x 0.5000
//
// (levels best first; "-" for a side with no level there; "stale" instead of "synced" while the
// book waits for a snapshot after a break, or for a connection; "book ID waiting for its
// snapshot" before its first), then one line of counters over every instrument:
//
//   integrity snapshots=3 deltas=1200 checksum_ok=1203 hash_ok=1203 recheck_failures=0 checksum_failures=0 gaps=0 epoch_changes=0 resyncs=0
//
// The client checks each book update (the CRC32 of the top 10 levels a side and the full-depth
// hash, docs/PROTOCOL.md §9) and resyncs a stream that breaks; onBook is called only for updates
// that check out. This program recomputes both with the package's checksum() and bookHash()
// after every update (checksum_ok, hash_ok; a hash of 0 is not sent by older servers and not
// checked) to show what a client must compute; recheck_failures counts disagreements.
// checksum_failures, gaps, epoch_changes and resyncs are the client's own counters
// (FeedClient.stats), each a break it repaired with a Resync. The last block, printed on exit,
// says "integrity final".
//
//   node main.mjs --url ws://127.0.0.1:8080/ws --token "$TICKWIRE_TOKEN" --instruments synthetic:ACME --depth 50 --levels 3 --duration 10
//
// Flags: --url (default ws://127.0.0.1:8080/ws), --token (default $TICKWIRE_TOKEN), --instruments
// (comma-separated ids; default every instrument the feed lists), --depth (book depth per side,
// default 10), --levels (levels printed per side, default 5), --interval <seconds> (default 1),
// --duration <seconds> (then exit 0; default 0: until SIGINT or SIGTERM, which also exit 0).
//
// First: cd web/client && npm ci && npm run build (or `make node-examples`), then npm ci here.

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { Channel, FeedClient, bookHash, checksum, formatDecimal } from "@tickwire/client";

const { values: flags } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
    token: { type: "string", default: process.env.TICKWIRE_TOKEN ?? "" },
    instruments: { type: "string", default: "" },
    depth: { type: "string", default: "10" },
    levels: { type: "string", default: "5" },
    interval: { type: "string", default: "1" },
    duration: { type: "string", default: "0" },
  },
});
function num(name, min) {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < min) {
    console.error(`node-book: --${name} ${flags[name]}: want a number, ${min} or more`);
    process.exit(2);
  }
  return v;
}
const depth = Math.floor(num("depth", 0));
const levels = Math.floor(num("levels", 1));
const interval = num("interval", 0.01);
const duration = num("duration", 0);

let ids = flags.instruments.split(",").map((s) => s.trim()).filter(Boolean);
const counts = { snapshots: 0, deltas: 0, crcOK: 0, hashOK: 0, recheck: 0 };

const client = new FeedClient(
  { url: flags.url, token: () => flags.token || undefined, WebSocket, backoffMax: 30_000 },
  {
    onBook(id, book, _sub, u) {
      // Recompute what the client has just verified.
      const m = u.snapshot ?? u.delta;
      if (u.snapshot) counts.snapshots++;
      else counts.deltas++;
      const crc = checksum(book.bids, book.asks);
      if (crc === m.checksum) counts.crcOK++;
      else {
        counts.recheck++;
        console.error(`node-book: checksum differs on ${id}: have ${crc}, the feed ${m.checksum}`);
      }
      if (m.bookHash !== 0n) {
        const h = bookHash(book.bids, book.asks);
        if (h === m.bookHash) counts.hashOK++;
        else {
          counts.recheck++;
          console.error(`node-book: full-depth hash differs on ${id}: have ${h}, the feed ${m.bookHash}`);
        }
      }
    },
    onInstruments(list) {
      if (ids.length > 0) return;
      if (list.length === 0) {
        console.error("node-book: the feed lists no instruments");
        return;
      }
      ids = list.map((i) => i.id);
      client.subscribe(ids, [Channel.BOOK], depth);
    },
    onGap: (g) => console.error(`node-book: ${g.reason} on ${g.instrument}: resyncing`),
    onError: (e) => console.error(`node-book: feed error ${e.code} ${e.instrument} ${e.message}`),
    onState: (state, detail) => {
      console.error(`node-book: ${state}${detail ? ` (${detail})` : ""}`);
      if (state === "closed" && !stopping) {
        process.exitCode = 1;
        stop();
      }
    },
    onSignInNeeded: (code, reason) => console.error(`node-book: the feed refused the token (${code} ${reason}); pass --token or TICKWIRE_TOKEN`),
  },
);

/** "price x size" of the i-th level of a side, or "-" past its end. */
function level(side, i, info) {
  const l = side[i];
  if (!l) return "-";
  return `${formatDecimal(l.price, info.priceScale)} x ${formatDecimal(l.size, info.sizeScale)}`;
}

function printBooks(final) {
  let out = "";
  for (const id of ids) {
    const s = client.subs.get(id);
    const pos = s?.replica.pos[Channel.BOOK];
    if (!s || !s.info || !pos || pos.epoch === 0n) {
      out += `book ${id} waiting for its snapshot\n`;
      continue;
    }
    const r = s.replica;
    out += `book ${id} depth ${r.depth} at ${pos.epoch}/${pos.seq} ${s.inSync(Channel.BOOK) ? "synced" : "stale"}\n`;
    const n = Math.min(levels, Math.max(r.book.bids.length, r.book.asks.length));
    for (let i = 0; i < n; i++) out += `  ${i + 1}  bid ${level(r.book.bids, i, s.info)}  ask ${level(r.book.asks, i, s.info)}\n`;
  }
  const st = client.stats;
  out +=
    `integrity ${final ? "final " : ""}snapshots=${counts.snapshots} deltas=${counts.deltas} checksum_ok=${counts.crcOK} hash_ok=${counts.hashOK} ` +
    `recheck_failures=${counts.recheck} checksum_failures=${st.checksum} gaps=${st.gaps} epoch_changes=${st.epochs} resyncs=${st.resyncs}\n`;
  process.stdout.write(out);
}

const ticker = setInterval(() => printBooks(false), interval * 1000);
let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  client.stop();
  printBooks(true);
  setTimeout(() => process.exit(), 1000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (duration > 0) setTimeout(stop, duration * 1000);

if (ids.length > 0) client.subscribe(ids, [Channel.BOOK], depth);
client.start();
