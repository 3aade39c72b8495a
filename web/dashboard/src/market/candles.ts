// Candle intervals offered by the chart. The feed keeps 1 s and 1 min bars (Config.CandleIntervals);
// the live 5 min, 1 h, 4 h and 1 day bars are built here by aggregating the 1 min bars. Older bars
// of 1 m, 5 m, 1 h, 4 h and 1 D come from the feed's candle store (GET /api/candles,
// market/history.ts; 14400 and 86400 divide a day, so the store serves them). In a replay the 1 s
// bars before the replay clock come from the feed's event store (interval=1, at most 300).

import { create } from "@bufbuild/protobuf";
import { CandleSchema, type Candle } from "@tickwire/client";

export interface Interval {
  label: string;
  seconds: number;
  /** The feed's interval the bars come from. */
  source: number;
  note: string;
}

export const intervals: Interval[] = [
  { label: "1s", seconds: 1, source: 1, note: "1-second bars from the feed (the last 5 minutes it keeps)" },
  { label: "1m", seconds: 60, source: 60, note: "1-minute bars from the feed; older ones from its stored history" },
  { label: "5m", seconds: 300, source: 60, note: "5-minute bars: history from the feed's store (/api/candles); the current bar built live from the feed's 1-minute bars" },
  { label: "1h", seconds: 3600, source: 60, note: "1-hour bars: history from the feed's store (/api/candles); the current bar built live from the feed's 1-minute bars" },
  { label: "4h", seconds: 14_400, source: 60, note: "4-hour bars: history from the feed's store (/api/candles, 24 hours by default); the current bar built live from the feed's 1-minute bars" },
  {
    label: "1D",
    seconds: 86_400,
    source: 60,
    note: "1-day bars (UTC days): shows what the feed's candle store holds (24 hours by default, --candle-store-span), so the first day is usually partial; the current bar built live from the feed's 1-minute bars",
  },
];

/** The bucket start of a bar start for an interval (floor division, exact for negative times). */
export function bucketOf(startS: bigint, seconds: number): bigint {
  const iv = BigInt(seconds);
  const q = startS / iv;
  return (startS % iv !== 0n && startS < 0n ? q - 1n : q) * iv;
}

/**
 * Folds source bars (sorted by start, one interval) into bars of `seconds`: open of the first,
 * close of the last, high and low over all, volumes and trade counts summed. Exact: bigint.
 */
export function aggregate(bars: readonly Candle[], seconds: number): Candle[] {
  const out: Candle[] = [];
  let cur: Candle | undefined;
  for (const b of bars) {
    const start = bucketOf(b.startS, seconds);
    if (!cur || cur.startS !== start) {
      cur = create(CandleSchema, {
        intervalS: seconds,
        startS: start,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
        tradeCount: b.tradeCount,
      });
      out.push(cur);
      continue;
    }
    if (b.high > cur.high) cur.high = b.high;
    if (b.low < cur.low) cur.low = b.low;
    cur.close = b.close;
    cur.volume += b.volume;
    cur.tradeCount += b.tradeCount;
  }
  return out;
}

/** The bars of one interval from a replica's candles (sorted by interval, then start). */
export function barsOf(candles: readonly Candle[], iv: Interval): Candle[] {
  const src = candles.filter((c) => c.intervalS === iv.source);
  return iv.seconds === iv.source ? src : aggregate(src, iv.seconds);
}
