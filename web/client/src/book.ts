// An L2 order book on int64 mantissas (bigint), mirroring pkg/book in Go so that the dashboard
// holds exactly the levels the feed holds and computes the same checksum.

import { crc32 } from "./crc32.js";

/** One price level: int64 mantissas at the instrument's price and size scales. */
export interface Level {
  price: bigint;
  size: bigint;
}

/** Bid or ask. A plain object rather than an enum: erasable syntax, no runtime surprises. */
export const Side = { Bid: 0, Ask: 1 } as const;
/** Side.Bid or Side.Ask. */
export type Side = (typeof Side)[keyof typeof Side];

/** Levels per side the checksum covers (book.ChecksumDepth in Go). */
export const checksumDepth = 10;

/** An L2 order book on int64 mantissas, as Go's pkg/book: sorted levels per side, set by price. */
export class Book {
  /** Highest price first. Read-only outside this class. */
  bids: Level[] = [];
  /** Lowest price first. Read-only outside this class. */
  asks: Level[] = [];

  /** The levels of one side, best first. */
  levels(side: Side): Level[] {
    return side === Side.Bid ? this.bids : this.asks;
  }

  /** Empties both sides. */
  reset(): void {
    this.bids = [];
    this.asks = [];
  }

  /** Sets the size at price on a side; size <= 0 removes the level (as Go's Book.Set). */
  set(side: Side, price: bigint, size: bigint): void {
    const levels = this.levels(side);
    const [i, found] = search(levels, side, price);
    if (size <= 0n) {
      if (found) levels.splice(i, 1);
      return;
    }
    if (found) levels[i]!.size = size;
    else levels.splice(i, 0, { price, size });
  }

  /** Keeps at most depth levels per side. */
  truncate(depth: number): void {
    const d = Math.max(depth, 0);
    if (this.bids.length > d) this.bids.length = d;
    if (this.asks.length > d) this.asks.length = d;
  }

  /** The checksum of the top `depth` levels per side (at most checksumDepth). */
  checksum(depth = checksumDepth): number {
    const k = Math.min(depth, checksumDepth);
    return checksum(this.bids.slice(0, k), this.asks.slice(0, k));
  }
}

/** Where price is, or would be inserted, on a side, and whether it is there (binary search). */
function search(levels: Level[], side: Side, price: bigint): [number, boolean] {
  let lo = 0;
  let hi = levels.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const p = levels[mid]!.price;
    const before = side === Side.Bid ? p > price : p < price;
    if (before) lo = mid + 1;
    else hi = mid;
  }
  return [lo, lo < levels.length && levels[lo]!.price === price];
}

/**
 * The book checksum (docs/PROTOCOL.md): CRC-32 IEEE of one byte with the number of ask levels,
 * one byte with the number of bid levels, then the asks best first and the bids best first, each
 * level as price then size, int64 little-endian two's complement. Only the first checksumDepth
 * levels of each side count.
 */
export function checksum(bids: readonly Level[], asks: readonly Level[]): number {
  const nb = Math.min(bids.length, checksumDepth);
  const na = Math.min(asks.length, checksumDepth);
  const buf = new Uint8Array(2 + 16 * (na + nb));
  const view = new DataView(buf.buffer);
  buf[0] = na;
  buf[1] = nb;
  let off = 2;
  const put = (l: Level) => {
    view.setBigInt64(off, BigInt.asIntN(64, l.price), true);
    view.setBigInt64(off + 8, BigInt.asIntN(64, l.size), true);
    off += 16;
  };
  for (let i = 0; i < na; i++) put(asks[i]!);
  for (let i = 0; i < nb; i++) put(bids[i]!);
  return crc32(buf);
}

const M64 = (1n << 64n) - 1n;
const bidSalt = 0x9e3779b97f4a7c15n;
const askSalt = 0xc2b2ae3d27d4eb4fn;

function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

/** One level's hash in the full-depth book hash (docs/PROTOCOL.md 9.5; book.LevelHash in Go). */
export function levelHash(side: Side, price: bigint, size: bigint): bigint {
  const salt = side === Side.Bid ? bidSalt : askSalt;
  return mix64(mix64((BigInt.asUintN(64, price) + salt) & M64) ^ BigInt.asUintN(64, size));
}

/** The full-depth book hash: the sum of levelHash over every level, modulo 2^64 (book.Hash). */
export function bookHash(bids: readonly Level[], asks: readonly Level[]): bigint {
  let h = 0n;
  for (const l of bids) h += levelHash(Side.Bid, l.price, l.size);
  for (const l of asks) h += levelHash(Side.Ask, l.price, l.size);
  return h & M64;
}
