// The client's copy of one instrument's streams, mirroring pkg/market.Replica in Go rule for rule
// (the shared vectors in testdata/replica_vectors.json hold both to it).
//
// Each (instrument, channel) is a stream with a position (epoch, seq). A snapshot replaces the
// stream and sets the position. A delta follows on from position p when it is in the same epoch
// and prev_seq <= p < seq; seq <= p is a redelivery (stale, ignored); anything else is a break:
// the stream is unsynced and refuses deltas until the next snapshot, and the client asks for a
// Resync of that channel once.

import { create } from "@bufbuild/protobuf";
import type { Quote } from "./gen/tickwire/v1/market_pb.js";
import { QuoteSchema } from "./gen/tickwire/v1/market_pb.js";
import type { Candle, CompactQuote, Delta, Snapshot, Stats, TradeRecord } from "./gen/tickwire/v1/stream_pb.js";
import { Channel, DeltaSchema, TradeRecordSchema } from "./gen/tickwire/v1/stream_pb.js";
import { Book, Side, bookHash } from "./book.js";

/**
 * What applying a message did: "ok" (applied), "stale" (already held: ignored, still in sync),
 * "gap" (a delta that does not follow on), "epoch" (a delta of another epoch), "checksum" (the
 * book differs from the feed's), "not_synced" (the stream waits for a snapshot), "bad_message"
 * (malformed). Every outcome but "ok" and "stale" leaves the stream unsynced.
 */
export type Outcome = "ok" | "stale" | "gap" | "epoch" | "checksum" | "not_synced" | "bad_message";

/** Outcomes after which the client must ask for a resync of the stream. */
export function needsResync(o: Outcome): boolean {
  return o === "gap" || o === "epoch" || o === "checksum";
}

/** Trades kept per instrument when Subscribed did not say (pkg/market.Config's default). */
export const defaultTradeHistory = 100;
/** Bars kept per interval when Subscribed did not say (pkg/market.Config's default). */
export const defaultCandleHistory = 300;

/** A stream's position (PROTOCOL.md §7.3): the epoch and seq of what was applied last. */
export interface Position {
  epoch: bigint;
  seq: bigint;
  /** Whether deltas follow on from here (false until a snapshot, and after a break). */
  synced: boolean;
}

/** The data channels, in the order of the Channel enum. */
export const dataChannels = [Channel.QUOTE, Channel.BOOK, Channel.TRADES, Channel.CANDLES, Channel.STATS] as const;

/** Whether ch is one of the five data channels. */
export function validChannel(ch: number): boolean {
  return ch >= Channel.QUOTE && ch <= Channel.STATS;
}

/** The channel a delta belongs to, from its body (UNSPECIFIED without one). */
export function channelOfDelta(d: Delta): Channel {
  switch (d.body.case) {
    case "quote":
      return Channel.QUOTE;
    case "book":
      return Channel.BOOK;
    case "trade":
      return Channel.TRADES;
    case "candles":
      return Channel.CANDLES;
    case "stats":
      return Channel.STATS;
  }
  return Channel.UNSPECIFIED;
}

const bodyOfChannel: Record<number, Snapshot["body"]["case"]> = {
  [Channel.QUOTE]: "quote",
  [Channel.BOOK]: "book",
  [Channel.TRADES]: "trades",
  [Channel.CANDLES]: "candles",
  [Channel.STATS]: "stats",
};

/** Orders candles by interval, then start (compareCandles in Go). */
export function compareCandles(a: Candle, b: Candle): number {
  if (a.intervalS !== b.intervalS) return a.intervalS - b.intervalS;
  return a.startS < b.startS ? -1 : a.startS > b.startS ? 1 : 0;
}

/**
 * One instrument's streams (quote, book, trades, candles, stats), rebuilt from snapshots and
 * deltas by the rule of PROTOCOL.md §7.4 and checked against the book checksum and full-depth
 * hash. FeedClient keeps one per subscription (Subscription.replica); read it, do not write it.
 */
export class Replica {
  /** Trades kept; 0 means defaultTradeHistory. From Subscribed. */
  tradeHistory = 0;
  /** Bars kept per interval; 0 means defaultCandleHistory. From Subscribed. */
  candleHistory = 0;

  /** By Channel value; index 0 unused. */
  readonly pos: Position[] = Array.from({ length: 6 }, () => ({ epoch: 0n, seq: 0n, synced: false }));

  /** The book stream's depth per side (from its snapshot). */
  depth = 0;
  /** The quote (empty until the quote stream's first snapshot). */
  quote: Quote = create(QuoteSchema);
  /** The L2 book at `depth` levels per side. */
  readonly book = new Book();
  /** Recent trades, oldest first, at most tradeHistory. */
  trades: TradeRecord[] = [];
  /** Bars of every interval, sorted by (interval, start), at most candleHistory per interval. */
  candles: Candle[] = [];
  /** Session statistics (undefined until the stats stream's first snapshot). */
  stats: Stats | undefined;
  /**
   * The ingest time (Unix ns) of the quote stream's latest update: the snapshot's
   * last_ingest_time_ns, then each delta's. The base of a CompactQuote.
   */
  quoteIngestNs = 0n;

  /** Whether the stream follows the feed (a snapshot applied, no break since). */
  synced(ch: Channel): boolean {
    return validChannel(ch) && this.pos[ch]!.synced;
  }

  /** Marks a stream as lost (the connection dropped): deltas are refused until a snapshot. */
  unsync(ch: Channel): void {
    if (validChannel(ch)) this.pos[ch]!.synced = false;
  }

  /**
   * Replaces a stream with a snapshot and sets its position: "ok", "checksum" (a book snapshot
   * that contradicts its own checksum or hash: still unsynced) or "bad_message".
   */
  applySnapshot(snap: Snapshot): Outcome {
    const ch = snap.channel;
    if (!validChannel(ch) || snap.body.case === undefined || bodyOfChannel[ch] !== snap.body.case) {
      return "bad_message";
    }
    const p = this.pos[ch]!;
    p.synced = false;
    const b = snap.body;
    switch (b.case) {
      case "quote":
        this.quote = b.value;
        this.quoteIngestNs = snap.lastIngestTimeNs;
        break;
      case "book":
        this.depth = b.value.depth;
        this.book.reset();
        for (const l of b.value.bids) this.book.setLevel(Side.Bid, l);
        for (const l of b.value.asks) this.book.setLevel(Side.Ask, l);
        this.book.truncate(this.depth);
        if (this.book.checksum(this.depth) !== snap.checksum) return "checksum";
        // The full-depth hash (PROTOCOL 9.5); 0: an older server, or an empty book.
        if (snap.bookHash !== 0n && bookHash(this.book.bids, this.book.asks) !== snap.bookHash) return "checksum";
        break;
      case "trades":
        this.trades = b.value.trades.slice();
        this.trimTrades();
        break;
      case "candles":
        this.candles = b.value.candles.slice().sort(compareCandles); // Array.sort is stable
        this.trimCandles();
        break;
      case "stats":
        this.stats = b.value;
        break;
    }
    p.epoch = snap.epoch;
    p.seq = snap.seq;
    p.synced = true;
    return "ok";
  }

  /**
   * Applies a delta to its stream. "stale": already held, nothing changed, still synced.
   * "not_synced", "epoch", "gap": does not follow on, nothing changed, now unsynced.
   * "checksum": applied, but the book differs from the server's; unsynced.
   */
  applyDelta(d: Delta): Outcome {
    const ch = channelOfDelta(d);
    if (ch === Channel.UNSPECIFIED) return "bad_message";
    const p = this.pos[ch]!;
    if (!p.synced) return "not_synced";
    if (d.epoch !== p.epoch) {
      p.synced = false;
      return "epoch";
    }
    if (d.seq <= p.seq) return "stale";
    if (d.prevSeq > p.seq) {
      p.synced = false;
      return "gap";
    }
    const b = d.body;
    switch (b.case) {
      case "quote":
        this.quote = b.value;
        this.quoteIngestNs = d.ingestTimeNs;
        break;
      case "book":
        for (const l of b.value.bids) this.book.setLevel(Side.Bid, l);
        for (const l of b.value.asks) this.book.setLevel(Side.Ask, l);
        this.book.truncate(this.depth);
        if (this.book.checksum(this.depth) !== d.checksum ||
          (d.bookHash !== 0n && bookHash(this.book.bids, this.book.asks) !== d.bookHash)) {
          p.synced = false;
          return "checksum";
        }
        break;
      case "trade":
        this.trades.push(create(TradeRecordSchema, { trade: b.value, seq: d.seq, venueTimeNs: d.venueTimeNs }));
        this.trimTrades();
        break;
      case "candles":
        for (const c of b.value.candles) this.upsertCandle(c);
        this.trimCandles();
        break;
      case "stats":
        this.stats = b.value;
        break;
    }
    p.seq = d.seq;
    return "ok";
  }

  /**
   * The quote Delta a CompactQuote stands for, against the quote and ingest time held
   * (PROTOCOL.md §8.1.1; Go's Replica.ExpandCompactQuote). Apply it with applyDelta, which
   * checks that it follows on. "not_synced": the quote stream waits for a snapshot (drop it, as
   * a delta); "bad_message": a seq_step of 0 or past seq.
   */
  expandCompactQuote(c: CompactQuote): Delta | "not_synced" | "bad_message" {
    const p = this.pos[Channel.QUOTE]!;
    if (!p.synced) return "not_synced";
    if (c.seqStep === 0n || c.seqStep > c.seq) return "bad_message";
    const ingestUs = floorDiv(this.quoteIngestNs, 1000n) + c.ingestTimeStepUs;
    const q = this.quote;
    return create(DeltaSchema, {
      handle: c.handle,
      epoch: p.epoch,
      seq: c.seq,
      prevSeq: c.seq - c.seqStep,
      ingestTimeNs: i64(ingestUs * 1000n),
      venueTimeNs: i64((ingestUs - c.venueLagUs) * 1000n),
      body: {
        case: "quote",
        value: create(QuoteSchema, {
          bidPrice: i64(q.bidPrice + c.bidPriceChange),
          bidSize: i64(q.bidSize + c.bidSizeChange),
          askPrice: i64(q.askPrice + c.askPriceChange),
          askSize: i64(q.askSize + c.askSizeChange),
        }),
      },
    });
  }

  private upsertCandle(c: Candle): void {
    const cs = this.candles;
    // Bars arrive at the end almost always: check there before searching.
    let lo = 0;
    let hi = cs.length;
    if (hi > 0 && compareCandles(cs[hi - 1]!, c) < 0) lo = hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareCandles(cs[mid]!, c) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo < cs.length && compareCandles(cs[lo]!, c) === 0) cs[lo] = c;
    else cs.splice(lo, 0, c);
  }

  private trimTrades(): void {
    const n = this.tradeHistory > 0 ? this.tradeHistory : defaultTradeHistory;
    const extra = this.trades.length - n;
    if (extra > 0) this.trades.splice(0, extra);
  }

  /** Keeps the newest candleHistory bars of each interval. */
  private trimCandles(): void {
    const n = this.candleHistory > 0 ? this.candleHistory : defaultCandleHistory;
    const cs = this.candles;
    const out: Candle[] = [];
    for (let i = 0; i < cs.length; ) {
      let j = i;
      while (j < cs.length && cs[j]!.intervalS === cs[i]!.intervalS) j++;
      for (let k = Math.max(i, j - n); k < j; k++) out.push(cs[k]!);
      i = j;
    }
    if (out.length !== cs.length) this.candles = out;
  }
}

/** int64 arithmetic wraps, as in Go. */
function i64(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

/** a / b rounded toward minus infinity (Go's floorDiv in pkg/market). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}
