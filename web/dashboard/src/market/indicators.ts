// Chart overlays computed exactly from the bars: a simple moving average of closes and the
// volume-weighted average price per UTC day. Everything is bigint on the mantissas; a value is
// an exact fraction num/den of price mantissas (den > 0), turned into a float only for the chart
// series (toNumber) and into a decimal string by rounding (toMantissa).

import { divRound } from "@tickwire/client";
import { bucketOf } from "./candles";

/** What the indicators read of a bar (a Candle has these). */
export interface OHLCV {
  startS: bigint;
  high: bigint;
  low: bigint;
  close: bigint;
  volume: bigint;
}

/** One indicator value at a bar: num/den price mantissas, exact. */
export interface Point {
  startS: bigint;
  num: bigint;
  den: bigint;
}

/** Bars in the moving average. */
export const maBars = 20;

const day = 86_400;

/**
 * The simple moving average of closes over n bars at bar i (the n bars ending at i), or
 * undefined before there are n bars.
 */
export function smaAt(bars: readonly OHLCV[], i: number, n = maBars): Point | undefined {
  if (n <= 0 || i < n - 1 || i >= bars.length) return undefined;
  let sum = 0n;
  for (let k = i - n + 1; k <= i; k++) sum += bars[k]!.close;
  return { startS: bars[i]!.startS, num: sum, den: BigInt(n) };
}

/** The simple moving average of closes over n bars, from the n-th bar on (bars oldest first). */
export function sma(bars: readonly OHLCV[], n = maBars): Point[] {
  const out: Point[] = [];
  if (n <= 0) return out;
  let sum = 0n;
  for (let i = 0; i < bars.length; i++) {
    sum += bars[i]!.close;
    if (i >= n) sum -= bars[i - n]!.close;
    if (i >= n - 1) out.push({ startS: bars[i]!.startS, num: sum, den: BigInt(n) });
  }
  return out;
}

/**
 * The VWAP at every bar (oldest first): the sum of typical price (h+l+c)/3 times volume over the
 * sum of volume, over the bars of the same UTC day up to and including this one; it starts again
 * with each UTC day. A bar with no volume yet in its day has no value. Only the bars given count:
 * a day whose first bars were not loaded starts from the first one that was.
 */
export function vwap(bars: readonly OHLCV[]): Point[] {
  const out: Point[] = [];
  let dayS: bigint | undefined;
  let pv = 0n;
  let vol = 0n;
  for (const b of bars) {
    const d = bucketOf(b.startS, day);
    if (d !== dayS) {
      dayS = d;
      pv = 0n;
      vol = 0n;
    }
    pv += (b.high + b.low + b.close) * b.volume;
    vol += b.volume;
    if (vol > 0n) out.push({ startS: b.startS, num: pv, den: 3n * vol });
  }
  return out;
}

/** The VWAP at bar i alone (for one changed bar): the bars of its UTC day before it, and it. */
export function vwapAt(bars: readonly OHLCV[], i: number): Point | undefined {
  const b = bars[i];
  if (!b) return undefined;
  const d = bucketOf(b.startS, day);
  let k = i;
  while (k > 0 && bucketOf(bars[k - 1]!.startS, day) === d) k--;
  let pv = 0n;
  let vol = 0n;
  for (let j = k; j <= i; j++) {
    const x = bars[j]!;
    pv += (x.high + x.low + x.close) * x.volume;
    vol += x.volume;
  }
  return vol > 0n ? { startS: b.startS, num: pv, den: 3n * vol } : undefined;
}

/** The value as a mantissa at scale + extra decimals, rounded half away from zero. */
export function toMantissa(p: Point, extra = 0): bigint {
  return divRound(p.num * 10n ** BigInt(extra), p.den);
}

/** The value as a float for the chart (a coordinate, not a figure anyone reads exactly). */
export function toNumber(p: Point, scale: number): number {
  // Eight more decimals than the instrument's, then one float conversion.
  return Number(toMantissa(p, 8)) / 10 ** (scale + 8);
}
