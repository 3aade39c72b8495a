import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Book, Side, bookHash, checksum, levelHash, type Level } from "../src/book.js";
import { crc32 } from "../src/crc32.js";

// The checksum vectors shared with the Go book (pkg/book/testdata/checksum_vectors.json).
interface Vector {
  name: string;
  bids: [string, string][];
  asks: [string, string][];
  checksum: number;
}
const file = JSON.parse(
  readFileSync(new URL("../../../pkg/book/testdata/checksum_vectors.json", import.meta.url), "utf8"),
) as { vectors: Vector[] };
const levels = (ls: [string, string][]): Level[] => ls.map(([p, s]) => ({ price: BigInt(p), size: BigInt(s) }));

describe("checksum vectors from pkg/book", () => {
  it("has vectors", () => expect(file.vectors.length).toBeGreaterThan(3));
  for (const v of file.vectors) {
    it(v.name, () => {
      expect(checksum(levels(v.bids), levels(v.asks))).toBe(v.checksum);
      // The same through a Book built level by level, in reverse order.
      const b = new Book();
      for (const l of levels(v.bids).reverse()) b.set(Side.Bid, l.price, l.size);
      for (const l of levels(v.asks).reverse()) b.set(Side.Ask, l.price, l.size);
      expect(b.checksum()).toBe(v.checksum);
    });
  }
});

describe("crc32", () => {
  it("matches the IEEE check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});

describe("Book", () => {
  it("keeps sides sorted best first, removes on size 0, truncates", () => {
    const b = new Book();
    b.set(Side.Bid, 100n, 1n);
    b.set(Side.Bid, 102n, 2n);
    b.set(Side.Bid, 101n, 3n);
    b.set(Side.Ask, 105n, 1n);
    b.set(Side.Ask, 103n, 2n);
    expect(b.bids.map((l) => l.price)).toEqual([102n, 101n, 100n]);
    expect(b.asks.map((l) => l.price)).toEqual([103n, 105n]);
    b.set(Side.Bid, 101n, 0n);
    b.set(Side.Bid, 99n, 0n); // removing a missing level is a no-op
    b.set(Side.Bid, 102n, 7n);
    expect(b.bids).toEqual([
      { price: 102n, size: 7n },
      { price: 100n, size: 1n },
    ]);
    b.set(Side.Ask, 104n, -3n); // negative sizes never enter the book
    expect(b.asks.length).toBe(2);
    b.truncate(1);
    expect(b.bids.length).toBe(1);
    expect(b.asks).toEqual([{ price: 103n, size: 2n }]);
  });
});

// The full-depth hash's vectors from docs/PROTOCOL.md 9.5 (pkg/book TestHashVectors in Go).
describe("full-depth book hash", () => {
  const l = (price: bigint, size: bigint): Level => ({ price, size });
  it("matches the documented vectors", () => {
    expect(bookHash([], [])).toBe(0n);
    expect(bookHash([l(1000n, 20n)], [])).toBe(0xfa3a0a8ae3d50598n);
    expect(bookHash([l(1000n, 20n), l(999n, 11n)], [l(1001n, 5n)])).toBe(0x5ca4cac89f3810fdn);
    expect(bookHash([l(999n, 11n), l(1000n, 20n)], [l(1001n, 5n)])).toBe(0x5ca4cac89f3810fdn);
  });
  it("tells the sides apart", () => {
    expect(levelHash(Side.Ask, 1000n, 20n)).not.toBe(levelHash(Side.Bid, 1000n, 20n));
    expect(bookHash([], [l(1000n, 20n)])).toBe(levelHash(Side.Ask, 1000n, 20n));
  });
});
