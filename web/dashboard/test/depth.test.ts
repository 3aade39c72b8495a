import { describe, expect, it } from "vitest";
import { depthCurve } from "../src/market/depth";

const l = (price: number, size: number) => ({ price: BigInt(price), size: BigInt(size) });

describe("depth curve", () => {
  it("cumulates each side from the best price outwards, exactly", () => {
    const c = depthCurve([l(100, 5), l(99, 3), l(97, 10)], [l(102, 4), l(103, 1)]);
    expect(c.bids).toEqual([
      { price: 100n, cum: 5n },
      { price: 99n, cum: 8n },
      { price: 97n, cum: 18n },
    ]);
    expect(c.asks).toEqual([
      { price: 102n, cum: 4n },
      { price: 103n, cum: 5n },
    ]);
    expect(c.max).toBe(18n);
    // mid 101; bids reach 4 below it, asks 2 above: drawn 97..105.
    expect([c.lo, c.hi]).toEqual([97n, 105n]);
  });

  it("rounds an odd mid's range outwards and skips empty levels", () => {
    const c = depthCurve([l(100, 1), l(99, 0), l(98, 2)], [l(101, 7)]);
    expect(c.bids.map((s) => s.cum)).toEqual([1n, 3n]);
    // mid 100.5, half-width 2.5 (bids): 98..103.
    expect([c.lo, c.hi]).toEqual([98n, 103n]);
    expect(c.max).toBe(7n);
  });

  it("keeps sizes past 2^53 exact; one side or none", () => {
    const big = 2n ** 60n;
    expect(depthCurve([{ price: 1n, size: big }, { price: 0n, size: 1n }], []).bids[1]!.cum).toBe(big + 1n);
    expect(depthCurve([], [l(5, 1), l(7, 1)])).toMatchObject({ lo: 5n, hi: 7n, max: 2n });
    expect(depthCurve([], [])).toEqual({ bids: [], asks: [], max: 0n });
  });
});
