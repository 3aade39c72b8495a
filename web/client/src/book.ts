// An L2 order book on int64 mantissas (bigint), mirroring pkg/book in Go so that the dashboard
// holds exactly the levels the feed holds and computes the same checksum.

import { crc32 } from "./crc32.js";

/** One price level: int64 mantissas at the instrument's price and size scales. */
export interface Level {
  price: bigint;
  size: bigint;
  /**
   * Set only on a consolidated book: bit i is the instrument's i-th member venue quoting at this
   * price (InstrumentInfo.members; size is their total). 0 on every other book. A uint32.
   */
  venues: number;
}

/**
 * A level as the book's functions take it: venues may be left out (0), so `{ price, size }`
 * and the protocol's own Level message (from the feed) both fit.
 */
export type LevelInput = { readonly price: bigint; readonly size: bigint; readonly venues?: number };

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

  /**
   * Sets the level at price on a side: its size and venues (0 unless the book is consolidated)
   * replace the level's; size <= 0 removes it (as Go's Book.Set and Book.SetLevel).
   */
  set(side: Side, price: bigint, size: bigint, venues = 0): void {
    const levels = this.levels(side);
    const [i, found] = search(levels, side, price);
    if (size <= 0n) {
      if (found) levels.splice(i, 1);
      return;
    }
    const l: Level = { price, size, venues: venues >>> 0 };
    if (found) levels[i] = l;
    else levels.splice(i, 0, l);
  }

  /** set with a level: l replaces the level at l.price (size <= 0 removes it); l is copied. */
  setLevel(side: Side, l: LevelInput): void {
    this.set(side, l.price, l.size, l.venues ?? 0);
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
 * level as price then size, int64 little-endian two's complement, and, only on a level whose
 * venues is not 0 (a consolidated book), venues as a uint32 little-endian. Only the first
 * checksumDepth levels of each side count.
 */
export function checksum(bids: readonly LevelInput[], asks: readonly LevelInput[]): number {
  const nb = Math.min(bids.length, checksumDepth);
  const na = Math.min(asks.length, checksumDepth);
  let n = 2;
  for (let i = 0; i < na; i++) n += levelBytes(asks[i]!);
  for (let i = 0; i < nb; i++) n += levelBytes(bids[i]!);
  const buf = new Uint8Array(n);
  const view = new DataView(buf.buffer);
  buf[0] = na;
  buf[1] = nb;
  let off = 2;
  const put = (l: LevelInput) => {
    view.setBigInt64(off, BigInt.asIntN(64, l.price), true);
    view.setBigInt64(off + 8, BigInt.asIntN(64, l.size), true);
    off += 16;
    const v = venuesOf(l);
    if (v !== 0) {
      view.setUint32(off, v, true);
      off += 4;
    }
  };
  for (let i = 0; i < na; i++) put(asks[i]!);
  for (let i = 0; i < nb; i++) put(bids[i]!);
  return crc32(buf);
}

/** A level's venues as a uint32 (0 when absent). */
function venuesOf(l: LevelInput): number {
  return (l.venues ?? 0) >>> 0;
}

/** The bytes a level takes in the checksum input: 16, or 20 with venues. */
function levelBytes(l: LevelInput): number {
  return venuesOf(l) !== 0 ? 20 : 16;
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

/**
 * The hash of a level as bookHash counts it (book.LevelHashOf): levelHash(side, price, size)
 * when venues is 0 or absent, and mix64(levelHash(side, price, size) ^ venues) on a consolidated
 * book's level.
 */
export function levelHashOf(side: Side, l: LevelInput): bigint {
  const h = levelHash(side, l.price, l.size);
  const v = venuesOf(l);
  return v !== 0 ? mix64(h ^ BigInt(v)) : h;
}

/** The full-depth book hash: the sum of levelHashOf over every level, modulo 2^64 (book.Hash). */
export function bookHash(bids: readonly LevelInput[], asks: readonly LevelInput[]): bigint {
  let h = 0n;
  for (const l of bids) h += levelHashOf(Side.Bid, l);
  for (const l of asks) h += levelHashOf(Side.Ask, l);
  return h & M64;
}
