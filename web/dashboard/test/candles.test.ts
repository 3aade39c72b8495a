import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CandleSchema } from "@tickwire/client";
import { aggregate, barsOf, bucketOf, intervals } from "../src/market/candles";

const bar = (start: number, o: number, h: number, l: number, c: number, v: number, iv = 60) =>
  create(CandleSchema, {
    intervalS: iv,
    startS: BigInt(start),
    open: BigInt(o),
    high: BigInt(h),
    low: BigInt(l),
    close: BigInt(c),
    volume: BigInt(v),
    tradeCount: 1,
  });

describe("candles", () => {
  it("buckets by floor division", () => {
    expect(bucketOf(599n, 300)).toBe(300n);
    expect(bucketOf(600n, 300)).toBe(600n);
    expect(bucketOf(-1n, 300)).toBe(-300n);
  });
  it("aggregates 1 min bars into 5 min bars exactly", () => {
    const out = aggregate(
      [bar(300, 10, 12, 9, 11, 5), bar(360, 11, 15, 11, 14, 7), bar(540, 14, 14, 8, 9, 1), bar(600, 9, 9, 9, 9, 2)],
      300,
    );
    expect(out.length).toBe(2);
    expect(out[0]).toMatchObject({ intervalS: 300, startS: 300n, open: 10n, high: 15n, low: 8n, close: 9n, volume: 13n, tradeCount: 3 });
    expect(out[1]).toMatchObject({ startS: 600n, open: 9n, close: 9n, volume: 2n });
  });
  it("offers 4h and 1D, built live from the 1m bars on UTC 4-hour and day boundaries", () => {
    const [, , , , h4, d1] = intervals;
    expect(intervals.map((i) => i.label)).toEqual(["1s", "1m", "5m", "1h", "4h", "1D"]);
    expect([h4!.seconds, h4!.source, d1!.seconds, d1!.source]).toEqual([14_400, 60, 86_400, 60]);
    expect(d1!.note).toMatch(/what the feed's candle store holds/);
    // 86_340: the day's last minute; 86_400 the next day, 4h bucket 86_400; 100_740 still in it.
    const candles = [bar(86_340, 10, 11, 9, 10, 1), bar(86_400, 20, 25, 19, 21, 2), bar(100_740, 21, 30, 18, 22, 3), bar(100_800, 22, 22, 22, 22, 4)];
    expect(barsOf(candles, h4!)).toMatchObject([
      { startS: 72_000n, open: 10n, close: 10n, volume: 1n },
      { startS: 86_400n, open: 20n, high: 30n, low: 18n, close: 22n, volume: 5n },
      { startS: 100_800n, volume: 4n },
    ]);
    expect(barsOf(candles, d1!)).toMatchObject([
      { startS: 0n, open: 10n, close: 10n, volume: 1n },
      { startS: 86_400n, open: 20n, high: 30n, low: 18n, close: 22n, volume: 9n, tradeCount: 3 },
    ]);
  });
  it("takes the feed's bars for 1s and 1m, aggregates for 5m and 1h", () => {
    const candles = [bar(1, 1, 1, 1, 1, 1, 1), bar(2, 2, 2, 2, 2, 1, 1), bar(0, 5, 6, 4, 5, 3), bar(60, 5, 7, 5, 6, 3)];
    const [s1, m1, m5, h1] = intervals;
    expect(barsOf(candles, s1!).length).toBe(2);
    expect(barsOf(candles, m1!).length).toBe(2);
    expect(barsOf(candles, m5!)).toMatchObject([{ startS: 0n, open: 5n, high: 7n, close: 6n, volume: 6n }]);
    expect(barsOf(candles, h1!).length).toBe(1);
  });
});
