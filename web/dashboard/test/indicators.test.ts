import { describe, expect, it } from "vitest";
import { sma, smaAt, toMantissa, toNumber, vwap, vwapAt, type OHLCV } from "../src/market/indicators";

const b = (startS: number, high: number, low: number, close: number, volume: number): OHLCV => ({
  startS: BigInt(startS),
  high: BigInt(high),
  low: BigInt(low),
  close: BigInt(close),
  volume: BigInt(volume),
});

describe("moving average", () => {
  it("is the mean of the last n closes, exact, from the n-th bar on", () => {
    // closes 10, 11, 13, 16, 20 (mantissas); n = 3: (10+11+13)/3 = 34/3, (11+13+16)/3 = 40/3, (13+16+20)/3 = 49/3.
    const bars = [b(0, 10, 10, 10, 1), b(60, 11, 11, 11, 1), b(120, 13, 13, 13, 1), b(180, 16, 16, 16, 1), b(240, 20, 20, 20, 1)];
    expect(sma(bars, 3)).toEqual([
      { startS: 120n, num: 34n, den: 3n },
      { startS: 180n, num: 40n, den: 3n },
      { startS: 240n, num: 49n, den: 3n },
    ]);
    expect(smaAt(bars, 4, 3)).toEqual({ startS: 240n, num: 49n, den: 3n });
    expect(smaAt(bars, 1, 3)).toBeUndefined();
    // 49/3 = 16.333… → 16.33 at two more decimals (1633), rounded half away from zero: 40/3 → 1333.
    expect(toMantissa({ startS: 0n, num: 49n, den: 3n }, 2)).toBe(1633n);
    expect(toMantissa({ startS: 0n, num: 50n, den: 3n }, 2)).toBe(1667n);
    expect(toNumber({ startS: 0n, num: 49n, den: 3n }, 2)).toBeCloseTo(0.163333333, 8);
  });

  it("over 20 bars by default: closes 1..25 give 10.5 at bar 20, then +1 a bar", () => {
    const bars = Array.from({ length: 25 }, (_, i) => b(i * 60, i + 1, i + 1, i + 1, 1));
    const out = sma(bars);
    expect(out.length).toBe(6);
    // (1+…+20)/20 = 210/20 = 10.5; the last: (6+…+25)/20 = 310/20 = 15.5.
    expect(out[0]).toEqual({ startS: 19n * 60n, num: 210n, den: 20n });
    expect(out[5]).toEqual({ startS: 24n * 60n, num: 310n, den: 20n });
    expect(toMantissa(out[0]!, 1)).toBe(105n);
    for (let i = 19; i < 25; i++) expect(smaAt(bars, i)).toEqual(out[i - 19]);
  });

  it("keeps mantissas past 2^53 exact", () => {
    const big = 2n ** 60n + 1n;
    const bars = [{ startS: 0n, high: big, low: big, close: big, volume: 1n }, { startS: 1n, high: big, low: big, close: big + 2n, volume: 1n }];
    expect(sma(bars, 2)).toEqual([{ startS: 1n, num: 2n * big + 2n, den: 2n }]);
    expect(toMantissa(sma(bars, 2)[0]!)).toBe(big + 1n);
  });
});

describe("VWAP", () => {
  it("weights the typical price (h+l+c)/3 by volume, cumulative within the UTC day", () => {
    // Bar 1: tp = (12+9+10)/3 = 31/3, v 2 → pv 62/3. Bar 2: tp = (15+11+13)/3 = 13, v 1 → pv 13.
    // After bar 1: 31/3 = 10.333…; after bar 2: (62/3 + 13) / 3 = (62+39)/9 = 101/9 = 11.222…
    const bars = [b(0, 12, 9, 10, 2), b(60, 15, 11, 13, 1)];
    const out = vwap(bars);
    expect(out).toEqual([
      { startS: 0n, num: 62n, den: 6n },
      { startS: 60n, num: 101n, den: 9n },
    ]);
    expect(toMantissa(out[0]!, 3)).toBe(10333n);
    expect(toMantissa(out[1]!, 3)).toBe(11222n);
    expect(vwapAt(bars, 1)).toEqual(out[1]);
  });

  it("starts again at each UTC day; bars without volume carry no value until the day has some", () => {
    const bars = [
      b(86_280, 10, 10, 10, 5), // day 0: 10
      b(86_340, 20, 20, 20, 5), // day 0: (50+100)/10 = 15
      b(86_400, 30, 30, 30, 0), // day 1, no volume yet: none
      b(86_460, 31, 28, 31, 4), // day 1: tp 30, v 4: 30
      b(86_520, 40, 40, 40, 1), // day 1: (120+40)/5 = 32
    ];
    const out = vwap(bars);
    expect(out.map((p) => [Number(p.startS), Number(toMantissa(p))])).toEqual([
      [86_280, 10],
      [86_340, 15],
      [86_460, 30],
      [86_520, 32],
    ]);
    expect(vwapAt(bars, 2)).toBeUndefined();
    for (const [i, j] of [[0, 0], [1, 1], [3, 2], [4, 3]] as const) expect(vwapAt(bars, i)).toEqual(out[j]);
  });

  it("on 1D bars each bar is its own day: its typical price", () => {
    const bars = [b(0, 30, 10, 20, 7), b(86_400, 40, 20, 33, 1)];
    // (30+10+20)/3 = 20; (40+20+33)/3 = 31.
    expect(vwap(bars).map((p) => toMantissa(p))).toEqual([20n, 31n]);
  });
});
