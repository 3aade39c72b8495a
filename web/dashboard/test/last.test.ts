import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Channel, DeltaSchema, SnapshotSchema, StatsSchema, TradeRecordSchema, type Snapshot } from "@tickwire/client";
import { Store } from "../src/app/store";
import { lastOf, tapeEnds } from "../src/market/last";
import { FeedClient, Subscription } from "@tickwire/client";

// Issue 12: the chart's last price disagreed with the header and the tape. "last" is now one
// value (market/last.ts, Store.last) that every view paints; these pin what it is and when it
// moves. (The chart's own label, which painted the last visible bar's close an animation frame
// after the header, is off; the browser test samples the three on screen.)

const id = "synthetic:ACME";
const other = "synthetic:BOLT";
const t = { sentMs: 0, receivedMs: 0 };

const rec = (seq: bigint, price: bigint, history = false) => create(TradeRecordSchema, { seq, trade: { price, size: 1n, history } });
const stats = (last: bigint, tradeCount = 1n) => create(StatsSchema, { open: 800n, high: 900n, low: 700n, last, tradeCount });

function setup() {
  const client = new FeedClient({ url: "ws://x/ws", newSocket: () => ({}) as never });
  const store = new Store(client);
  store.setInstruments([{ id, venue: "synthetic", symbol: "ACME" } as never, { id: other, venue: "synthetic", symbol: "BOLT" } as never]);
  const sub = new Subscription(id);
  const sub2 = new Subscription(other);
  for (const [s, chs] of [
    [sub, [Channel.QUOTE, Channel.STATS, Channel.TRADES, Channel.CANDLES]],
    [sub2, [Channel.QUOTE, Channel.STATS]],
  ] as const) {
    for (const ch of chs) s.channels.add(ch);
    client.subs.set(s.id, s);
  }
  store.setFocus(id);
  return { store, sub, sub2 };
}

/** Applies a snapshot or a delta as the client does, and tells the store. */
function snapshot(store: Store, sub: Subscription, init: MessageInitShape<typeof SnapshotSchema>) {
  const s: Snapshot = create(SnapshotSchema, { epoch: 1n, seq: 10n, ...init });
  expect(sub.replica.applySnapshot(s)).toBe("ok");
  store.onSnapshot(sub.id, s.channel, s, sub, t);
}
function delta(store: Store, sub: Subscription, ch: Channel, seq: bigint, prevSeq: bigint, body: MessageInitShape<typeof DeltaSchema>["body"]) {
  const d = create(DeltaSchema, { epoch: 1n, seq, prevSeq, body });
  expect(sub.replica.applyDelta(d)).toBe("ok");
  store.onDelta(sub.id, ch, d, sub, t);
}

describe("last: one value for the header, the tape, the watchlist and the chart's label", () => {
  it("is the newest live trade; a history trade after it is on the tape but is not last", () => {
    const trades = [rec(1n, 700n, true), rec(5n, 850n), rec(6n, 860n), rec(7n, 990n, true)];
    expect(tapeEnds(trades)).toEqual({ live: trades[2], history: trades[3] });
    expect(lastOf(tapeEnds(trades), stats(860n))).toEqual({ price: 860n, source: "trade", seq: 6n });
    // A trades stream behind the stats: the tape's trade, the one on screen next to it.
    expect(lastOf(tapeEnds(trades), stats(870n))).toMatchObject({ price: 860n, source: "trade" });
  });

  it("comes from Stats.last without live trades on the tape, and from a history trade only when no live trade is known", () => {
    const hist = [rec(1n, 700n, true), rec(2n, 710n, true)];
    expect(lastOf(undefined, stats(854n))).toEqual({ price: 854n, source: "stats", seq: 0n });
    expect(lastOf(tapeEnds(hist), stats(854n))).toMatchObject({ price: 854n, source: "stats" });
    expect(lastOf(tapeEnds(hist), stats(0n, 0n))).toEqual({ price: 710n, source: "history", seq: 2n });
    expect(lastOf(tapeEnds([]), create(StatsSchema))).toBeUndefined();
    expect(lastOf(undefined, undefined)).toBeUndefined();
  });

  it("moves for the focused instrument only when the tape is painted, header and watchlist row with it; the bars play no part", () => {
    const { store, sub, sub2 } = setup();
    snapshot(store, sub, { channel: Channel.TRADES, body: { case: "trades", value: { trades: [rec(9n, 850n)] } } });
    snapshot(store, sub, { channel: Channel.STATS, body: { case: "stats", value: stats(850n) } });
    // The bars say 854 (another source, or behind/ahead): never what "last" shows.
    snapshot(store, sub, { channel: Channel.CANDLES, body: { case: "candles", value: { candles: [{ intervalS: 1, startS: 100n, open: 850n, high: 854n, low: 850n, close: 854n }] } } });
    store.onTapePainted(sub.replica.trades);
    expect(store.last(id)).toEqual({ price: 850n, source: "trade", seq: 9n });

    // A trade and its stats arrive; until the tape shows it, nothing else does either.
    store.headerDirty = false;
    store.dirtyRows.clear();
    delta(store, sub, Channel.TRADES, 11n, 9n, { case: "trade", value: { price: 857n, size: 1n } });
    delta(store, sub, Channel.STATS, 11n, 10n, { case: "stats", value: stats(857n) });
    expect(store.last(id)?.price).toBe(850n);
    store.headerDirty = false;
    store.dirtyRows.clear();
    store.onTapePainted(sub.replica.trades);
    expect(store.last(id)).toEqual({ price: 857n, source: "trade", seq: 11n });
    expect(store.headerDirty).toBe(true);
    expect([...store.dirtyRows]).toEqual([id]);

    // A history trade appended after it: shown on the tape, last stays the live trade.
    delta(store, sub, Channel.TRADES, 12n, 11n, { case: "trade", value: { price: 700n, size: 1n, history: true } });
    store.headerDirty = false;
    store.onTapePainted(sub.replica.trades);
    expect(store.last(id)?.price).toBe(857n);
    expect(store.headerDirty).toBe(false);

    // Another instrument (no trades channel): its stats.
    snapshot(store, sub2, { channel: Channel.STATS, body: { case: "stats", value: stats(1234n) } });
    expect(store.last(other)).toEqual({ price: 1234n, source: "stats", seq: 0n });

    // A new focus: stats until its tape is painted, then its trades.
    store.setFocus(other);
    expect(store.last(other)?.price).toBe(1234n);
    expect(store.last(id)).toEqual({ price: 857n, source: "stats", seq: 0n });
  });

  it("trades kept from an earlier focus are not shown, nor last, until the new subscription's snapshot", () => {
    const { store, sub } = setup();
    snapshot(store, sub, { channel: Channel.TRADES, body: { case: "trades", value: { trades: [rec(9n, 700n)] } } });
    snapshot(store, sub, { channel: Channel.STATS, body: { case: "stats", value: stats(850n) } });
    store.onTapePainted(store.tapeTrades());
    expect(store.last(id)?.price).toBe(700n);
    // Focus moves away and back: the trades stream is asked for again and waits for its snapshot.
    store.setFocus(other);
    sub.await.add(Channel.TRADES);
    store.setFocus(id);
    expect(store.tapeTrades()).toEqual([]);
    store.onTapePainted(store.tapeTrades());
    expect(store.last(id)).toMatchObject({ price: 850n, source: "stats" });
    sub.await.delete(Channel.TRADES); // the client does, on the snapshot
    snapshot(store, sub, { channel: Channel.TRADES, body: { case: "trades", value: { trades: [rec(9n, 700n), rec(20n, 851n)] } } });
    store.onTapePainted(store.tapeTrades());
    expect(store.last(id)).toMatchObject({ price: 851n, source: "trade" });
    sub.notEntitled.add(Channel.TRADES);
    expect(store.tapeTrades()).toEqual([]);
  });

  it("a token without stats: the tape's trade; without trades either, nothing", () => {
    const { store, sub } = setup();
    snapshot(store, sub, { channel: Channel.STATS, body: { case: "stats", value: stats(850n) } });
    sub.notEntitled.add(Channel.STATS);
    expect(store.last(id)).toBeUndefined();
    snapshot(store, sub, { channel: Channel.TRADES, body: { case: "trades", value: { trades: [rec(9n, 852n)] } } });
    store.onTapePainted(sub.replica.trades);
    expect(store.last(id)?.price).toBe(852n);
  });
});
