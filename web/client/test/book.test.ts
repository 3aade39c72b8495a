import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Book, Side, bookHash, checksum, levelHash, levelHashOf, type Level } from "../src/book.js";
import { crc32 } from "../src/crc32.js";

// The checksum vectors shared with the Go book (pkg/book/testdata/checksum_vectors.json): levels
// are [price, size], or [price, size, venues] on a consolidated book.
type VectorLevel = [string, string] | [string, string, string];
interface Vector {
  name: string;
  bids: VectorLevel[];
  asks: VectorLevel[];
  checksum: number;
}
const file = JSON.parse(
  readFileSync(new URL("../../../pkg/book/testdata/checksum_vectors.json", import.meta.url), "utf8"),
) as { vectors: Vector[] };
const levels = (ls: VectorLevel[]): Level[] =>
  ls.map(([p, s, v]) => ({ price: BigInt(p), size: BigInt(s), venues: v === undefined ? 0 : Number(v) }));

describe("checksum vectors from pkg/book", () => {
  it("has vectors", () => expect(file.vectors.length).toBeGreaterThan(3));
  it("has consolidated vectors (levels with venues)", () =>
    expect(file.vectors.some((v) => [...v.bids, ...v.asks].some((l) => l.length === 3 && l[2] !== "0"))).toBe(true));
  for (const v of file.vectors) {
    it(v.name, () => {
      expect(checksum(levels(v.bids), levels(v.asks))).toBe(v.checksum);
      // The same through a Book built level by level, in reverse order: by set and by setLevel.
      const b = new Book();
      for (const l of levels(v.bids).reverse()) b.set(Side.Bid, l.price, l.size, l.venues);
      for (const l of levels(v.asks).reverse()) b.setLevel(Side.Ask, l);
      expect(b.checksum()).toBe(v.checksum);
      expect(b.bids).toEqual(levels(v.bids).slice(0, b.bids.length));
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
      { price: 102n, size: 7n, venues: 0 },
      { price: 100n, size: 1n, venues: 0 },
    ]);
    b.set(Side.Ask, 104n, -3n); // negative sizes never enter the book
    expect(b.asks.length).toBe(2);
    b.truncate(1);
    expect(b.bids.length).toBe(1);
    expect(b.asks).toEqual([{ price: 103n, size: 2n, venues: 0 }]);
  });

  it("replaces a level whole, venues included (as Go's SetLevel)", () => {
    const b = new Book();
    b.setLevel(Side.Bid, { price: 100n, size: 5n, venues: 3 });
    expect(b.bids).toEqual([{ price: 100n, size: 5n, venues: 3 }]);
    b.setLevel(Side.Bid, { price: 100n, size: 5n, venues: 1 }); // same size, other venues
    expect(b.bids).toEqual([{ price: 100n, size: 5n, venues: 1 }]);
    b.set(Side.Bid, 100n, 6n); // set without venues: 0, as Go's Set
    expect(b.bids).toEqual([{ price: 100n, size: 6n, venues: 0 }]);
    const l = { price: 101n, size: 2n, venues: 4 };
    b.setLevel(Side.Bid, l);
    l.size = 9n; // the book holds a copy
    expect(b.bids[0]).toEqual({ price: 101n, size: 2n, venues: 4 });
    b.setLevel(Side.Bid, { price: 101n, size: 0n, venues: 4 }); // size 0 removes, whatever venues
    expect(b.bids.map((x) => x.price)).toEqual([100n]);
  });
});

// The full-depth hash's vectors from docs/PROTOCOL.md 9.5 (pkg/book TestHashVectors in Go).
describe("full-depth book hash", () => {
  const l = (price: bigint, size: bigint, venues = 0): Level => ({ price, size, venues });
  it("matches the documented vectors", () => {
    expect(bookHash([], [])).toBe(0n);
    expect(bookHash([l(1000n, 20n)], [])).toBe(0xfa3a0a8ae3d50598n);
    expect(bookHash([l(1000n, 20n), l(999n, 11n)], [l(1001n, 5n)])).toBe(0x5ca4cac89f3810fdn);
    expect(bookHash([l(999n, 11n), l(1000n, 20n)], [l(1001n, 5n)])).toBe(0x5ca4cac89f3810fdn);
    // A consolidated book's levels: their venues count (pkg/book's "consolidated" vector).
    expect(bookHash([l(1000n, 20n, 1), l(999n, 11n, 3)], [l(1001n, 5n, 2)])).toBe(0x849208d9e2eca207n);
  });
  it("counts venues only when set", () => {
    expect(levelHashOf(Side.Bid, l(1000n, 20n))).toBe(levelHash(Side.Bid, 1000n, 20n));
    expect(levelHashOf(Side.Bid, { price: 1000n, size: 20n })).toBe(levelHash(Side.Bid, 1000n, 20n)); // absent is 0
    expect(levelHashOf(Side.Bid, l(1000n, 20n, 1))).not.toBe(levelHash(Side.Bid, 1000n, 20n));
    // The top bit of a uint32 is a venue like any other.
    expect(levelHashOf(Side.Ask, l(1000n, 20n, 0x80000000))).not.toBe(levelHashOf(Side.Ask, l(1000n, 20n, 1)));
  });
  it("tells the sides apart", () => {
    expect(levelHash(Side.Ask, 1000n, 20n)).not.toBe(levelHash(Side.Bid, 1000n, 20n));
    expect(bookHash([], [l(1000n, 20n)])).toBe(levelHash(Side.Ask, 1000n, 20n));
  });
});

// A consolidated level whose venues change at the same price and size is a change: the checksum
// and the full-depth hash both see it (Go's SetLevel, Diff and HashChange do).
describe("a venues-only change", () => {
  it("changes the checksum and the hash", () => {
    const b = new Book();
    b.setLevel(Side.Bid, { price: 3000000n, size: 5n, venues: 1 });
    b.setLevel(Side.Ask, { price: 3000001n, size: 2n, venues: 2 });
    const crc = b.checksum();
    const h = bookHash(b.bids, b.asks);
    b.setLevel(Side.Bid, { price: 3000000n, size: 5n, venues: 3 }); // a second venue joins, same total
    expect(b.checksum()).not.toBe(crc);
    expect(bookHash(b.bids, b.asks)).not.toBe(h);
    b.setLevel(Side.Bid, { price: 3000000n, size: 5n, venues: 1 }); // and leaves again
    expect(b.checksum()).toBe(crc);
    expect(bookHash(b.bids, b.asks)).toBe(h);
  });
  it("makes the checksum input 4 bytes longer per level with venues, none without", () => {
    // Venues 0 is the plain book: the same checksum as levels without the field.
    expect(checksum([{ price: 1n, size: 2n, venues: 0 }], [])).toBe(checksum([{ price: 1n, size: 2n }], []));
    // By hand: 2 count bytes, price, size, venues (uint32 LE), as pkg/book's appendLevel.
    const buf = new Uint8Array(2 + 20);
    const view = new DataView(buf.buffer);
    buf[0] = 0;
    buf[1] = 1;
    view.setBigInt64(2, 1000n, true);
    view.setBigInt64(10, 20n, true);
    view.setUint32(18, 0xdeadbeef, true);
    expect(checksum([{ price: 1000n, size: 20n, venues: 0xdeadbeef }], [])).toBe(crc32(buf));
  });
});
