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
  it("takes the feed's bars for 1s and 1m, aggregates for 5m and 1h", () => {
    const candles = [bar(1, 1, 1, 1, 1, 1, 1), bar(2, 2, 2, 2, 2, 1, 1), bar(0, 5, 6, 4, 5, 3), bar(60, 5, 7, 5, 6, 3)];
    const [s1, m1, m5, h1] = intervals;
    expect(barsOf(candles, s1!).length).toBe(2);
    expect(barsOf(candles, m1!).length).toBe(2);
    expect(barsOf(candles, m5!)).toMatchObject([{ startS: 0n, open: 5n, high: 7n, close: 6n, volume: 6n }]);
    expect(barsOf(candles, h1!).length).toBe(1);
  });
});
