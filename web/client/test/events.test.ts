// The bot API of FeedClient: onQuote, onBook, onTrade, onGap, onState, compact quotes, and the
// WebSocket constructor option, against a fake socket playing the feed.

import { describe, expect, it } from "vitest";
import { FeedClient, type ClientEvents, type Gap, type SocketLike } from "../src/client.js";
import { checksum, bookHash } from "../src/book.js";
import { formatDecimal } from "../src/decimal.js";
import { Channel, SnapshotReason } from "../src/gen/tickwire/v1/stream_pb.js";
import { FakeSocket, FakeTimers } from "./fakes.js";

const id = "synthetic:ACME";
const bids = [{ price: 10000n, size: 5n }];
const asks = [{ price: 10010n, size: 7n }];

function setup(events: ClientEvents, opts: { compactQuotes?: boolean } = {}) {
  const sockets: FakeSocket[] = [];
  const timers = new FakeTimers();
  const client = new FeedClient({ url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers, rand: () => 0, ...opts }, events);
  client.start();
  sockets[0]!.open();
  return { client, timers, sockets, sock: () => sockets.at(-1)! };
}

const subscribed = (handle: number, channels: Channel[], resumed: Channel[] = []) => ({
  kind: { case: "subscribed" as const, value: { handle, info: { id, priceScale: 2, sizeScale: 0 }, channels, depth: 10, resumed } },
});
const quoteSnap = (handle: number, seq: bigint, lastIngestTimeNs = 0n, reason = SnapshotReason.SUBSCRIBE) => ({
  kind: {
    case: "snapshot" as const,
    value: { handle, channel: Channel.QUOTE, epoch: 1n, seq, reason, lastIngestTimeNs, body: { case: "quote" as const, value: { bidPrice: 10000n, bidSize: 5n, askPrice: 10010n, askSize: 7n } } },
  },
});
const bookSnap = (handle: number, seq: bigint) => ({
  kind: {
    case: "snapshot" as const,
    value: { handle, channel: Channel.BOOK, epoch: 1n, seq, checksum: checksum(bids, asks), bookHash: bookHash(bids, asks), body: { case: "book" as const, value: { depth: 10, bids, asks } } },
  },
});
const quoteDelta = (handle: number, seq: bigint, prevSeq: bigint, bidPrice: bigint, ingestTimeNs = 0n) => ({
  kind: { case: "delta" as const, value: { handle, epoch: 1n, seq, prevSeq, ingestTimeNs, body: { case: "quote" as const, value: { bidPrice, bidSize: 5n, askPrice: 10010n, askSize: 7n } } } },
});
const tradeDelta = (handle: number, seq: bigint, prevSeq: bigint, price: bigint) => ({
  kind: { case: "delta" as const, value: { handle, epoch: 1n, seq, prevSeq, body: { case: "trade" as const, value: { price, size: 2n } } } },
});

describe("bot events", () => {
  it("onQuote, onBook and onTrade after each snapshot or delta applied, with exact prices", () => {
    const out: string[] = [];
    const updates: string[] = [];
    const { client, sock } = setup({
      onQuote: (i, q, sub, u) => {
        out.push(`quote ${i} ${formatDecimal(q.bidPrice, sub.info!.priceScale)} x ${formatDecimal(q.askPrice, sub.info!.priceScale)}`);
        updates.push(u.snapshot ? `snapshot ${u.snapshot.seq}` : `delta ${u.delta!.seq}`);
      },
      onBook: (i, b, _sub, u) => {
        out.push(`book ${i} ${b.bids.length}/${b.asks.length} best ${b.bids[0]?.price}`);
        updates.push(u.snapshot ? `snapshot ${u.snapshot.seq}` : `delta ${u.delta!.seq}`);
      },
      onTrade: (i, t, sub) => out.push(`trade ${i} ${formatDecimal(t.trade!.price, sub.info!.priceScale)} seq ${t.seq}`),
    });
    client.subscribe([id], [Channel.QUOTE, Channel.BOOK, Channel.TRADES], 10);
    sock().frame({ messages: [subscribed(1, [Channel.QUOTE, Channel.BOOK, Channel.TRADES]), quoteSnap(1, 5n), bookSnap(1, 5n)] });
    sock().frame({
      messages: [
        { kind: { case: "snapshot", value: { handle: 1, channel: Channel.TRADES, epoch: 1n, seq: 5n, body: { case: "trades", value: { trades: [{ trade: { price: 9990n, size: 1n }, seq: 4n }] } } } } },
        quoteDelta(1, 6n, 5n, 10001n),
        tradeDelta(1, 6n, 5n, 10005n),
      ],
    });
    expect(out).toEqual([
      "quote synthetic:ACME 100.00 x 100.10",
      "book synthetic:ACME 1/1 best 10000",
      "quote synthetic:ACME 100.01 x 100.10",
      "trade synthetic:ACME 100.05 seq 6", // the snapshot's trades are history, not events
    ]);
    expect(client.quote(id)?.bidPrice).toBe(10001n);
    expect(updates).toEqual(["snapshot 5", "snapshot 5", "delta 6"]);
    expect(client.book(id)?.asks[0]?.price).toBe(10010n);
    client.stop();
  });

  it("onGap on a break (once, with the Resync), and after a reconnect the feed could not resume", () => {
    const gaps: Gap[] = [];
    const states: string[] = [];
    const { client, timers, sock, sockets } = setup({ onGap: (g) => gaps.push(g), onState: (s) => states.push(s) });
    client.subscribe([id], [Channel.QUOTE]);
    sock().frame({ messages: [subscribed(1, [Channel.QUOTE]), quoteSnap(1, 5n)] });
    sock().frame({ messages: [quoteDelta(1, 9n, 8n, 10002n), quoteDelta(1, 10n, 9n, 10003n)] });
    expect(gaps).toEqual([{ instrument: id, channel: Channel.QUOTE, reason: "gap" }]);
    expect(sock().sent.filter((m) => m.command.case === "resync").length).toBe(1);
    sock().frame({ messages: [quoteSnap(1, 10n, 0n, SnapshotReason.RESYNC)] });
    // A lost connection, then a feed that no longer holds our position: HISTORY_GONE.
    sock().drop(1001, "server shutting down");
    expect(states.at(-1)).toBe("disconnected");
    timers.advance(1000);
    expect(sockets.length).toBe(2);
    sock().open();
    const sub = sock().sent.find((m) => m.command.case === "subscribe")!.command;
    expect(sub.case === "subscribe" && sub.value.resume).toEqual([expect.objectContaining({ instrument: id, channel: Channel.QUOTE, seq: 10n })]);
    sock().frame({ messages: [subscribed(2, [Channel.QUOTE]), quoteSnap(2, 40n, 0n, SnapshotReason.HISTORY_GONE)] });
    expect(gaps.slice(1)).toEqual([{ instrument: id, channel: Channel.QUOTE, reason: "history_gone" }]);
    // A resumed stream lost nothing: no gap.
    sock().drop(1001, "again");
    timers.advance(1000);
    sock().open();
    sock().frame({ messages: [subscribed(3, [Channel.QUOTE], [Channel.QUOTE]), quoteDelta(3, 41n, 40n, 10004n)] });
    expect(gaps.length).toBe(2);
    expect(client.quote(id)?.bidPrice).toBe(10004n);
    // Not resumed for another reason (a SUBSCRIBE snapshot for a position offered): a loss too.
    sock().drop(1006);
    timers.advance(1000);
    sock().open();
    sock().frame({ messages: [subscribed(4, [Channel.QUOTE]), quoteSnap(4, 50n, 0n, SnapshotReason.SUBSCRIBE)] });
    expect(gaps.slice(2)).toEqual([{ instrument: id, channel: Channel.QUOTE, reason: "not_resumed" }]);
    client.stop();
  });

  it("asks for compact quotes and expands them against the quote held", () => {
    const quotes: string[] = [];
    let delta: unknown;
    const { client, sock } = setup(
      { onQuote: (_i, q) => quotes.push(`${q.bidPrice}x${q.bidSize}/${q.askPrice}x${q.askSize}`), onDelta: (_i, _ch, d) => (delta = d) },
      { compactQuotes: true },
    );
    client.subscribe([id], [Channel.QUOTE, Channel.TRADES]);
    const sub = sock().sent.find((m) => m.command.case === "subscribe")!.command;
    expect(sub.case === "subscribe" && sub.value.compactQuotes).toBe(true);
    const ingest = 1_768_480_000_123_456_789n;
    sock().frame({ messages: [subscribed(1, [Channel.QUOTE, Channel.TRADES]), quoteSnap(1, 5n, ingest)] });
    sock().frame({
      messages: [
        { kind: { case: "compactQuote", value: { handle: 1, seq: 7n, seqStep: 2n, ingestTimeStepUs: 1500n, venueLagUs: 300n, bidPriceChange: 3n, askSizeChange: -2n } } },
      ],
    });
    expect(quotes).toEqual(["10000x5/10010x7", "10003x5/10010x5"]);
    expect(delta).toMatchObject({ seq: 7n, prevSeq: 5n, epoch: 1n, ingestTimeNs: (ingest / 1000n + 1500n) * 1000n, venueTimeNs: (ingest / 1000n + 1200n) * 1000n });
    expect(client.stats.compactQuotes).toBe(1);
    // A malformed one (step 0) is dropped.
    sock().frame({ messages: [{ kind: { case: "compactQuote", value: { handle: 1, seq: 13n, seqStep: 0n } } }] });
    expect(client.stats.decodeErrors).toBe(1);
    // One that does not follow on is a gap (and its numbers are not used).
    sock().frame({ messages: [{ kind: { case: "compactQuote", value: { handle: 1, seq: 12n, seqStep: 1n, bidPriceChange: 50n } } }] });
    expect(quotes.length).toBe(2);
    expect(sock().sent.filter((m) => m.command.case === "resync").length).toBe(1);
    // While it waits for the snapshot, compact quotes are dropped as deltas are.
    sock().frame({ messages: [{ kind: { case: "compactQuote", value: { handle: 1, seq: 13n, seqStep: 1n, bidPriceChange: 50n } } }] });
    expect(quotes.length).toBe(2);
    expect(client.stats.decodeErrors).toBe(1);
    client.stop();
  });
});

describe("the WebSocket option", () => {
  it("constructs the socket with the constructor given (ws in Node), with the subprotocol", () => {
    const made: { url: string; protocols: unknown }[] = [];
    class MyWS extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols as string[]);
        made.push({ url, protocols });
      }
    }
    const client = new FeedClient({ url: "ws://x/ws", WebSocket: MyWS });
    client.start();
    expect(made).toEqual([{ url: "ws://x/ws", protocols: ["tickwire.v1.proto"] }]);
    client.stop();
  });

  it("without one and without globalThis.WebSocket, says what to pass and retries", () => {
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    delete g.WebSocket;
    try {
      const states: string[] = [];
      const client = new FeedClient({ url: "ws://x/ws", timers: new FakeTimers() }, { onState: (s, d) => states.push(`${s}: ${d}`) });
      client.start();
      expect(states.at(-1)).toMatch(/^disconnected: cannot connect: Error: no WebSocket: pass ClientOptions.WebSocket/);
      client.stop();
    } finally {
      if (saved !== undefined) g.WebSocket = saved;
    }
  });

  it("SocketLike fits the ws package's WebSocket", async () => {
    const { WebSocket } = await import("ws");
    const check = (s: InstanceType<typeof WebSocket>): SocketLike => s as unknown as SocketLike;
    expect(typeof check).toBe("function");
  });
});
