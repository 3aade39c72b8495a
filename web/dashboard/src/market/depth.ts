// The depth chart's figures: the cumulative size from the best price outwards on each side of a
// book, exact (bigint mantissas), and the price range to draw them over. The view (views/depth.ts)
// turns them into canvas coordinates, the only floats.

/** A book level as the depth chart reads it (the replica's BookLevel has these). */
export interface DepthLevel {
  price: bigint;
  size: bigint;
}

/** One step of the curve: at price, the size of every level from the best price to this one. */
export interface DepthStep {
  price: bigint;
  cum: bigint;
}

export interface DepthCurve {
  /** Best bid first (prices falling). */
  bids: DepthStep[];
  /** Best ask first (prices rising). */
  asks: DepthStep[];
  /** The larger of the two sides' totals: the top of the chart. */
  max: bigint;
  /**
   * The prices drawn, [lo, hi]: symmetric about the mid (the farther side's last level sets the
   * half-width) so both sides' slopes compare; undefined for an empty book.
   */
  lo?: bigint;
  hi?: bigint;
}

/** Cumulates each side (levels best first, as the replica keeps them); levels of size 0 are skipped. */
export function depthCurve(bids: readonly DepthLevel[], asks: readonly DepthLevel[]): DepthCurve {
  const side = (levels: readonly DepthLevel[]): DepthStep[] => {
    const out: DepthStep[] = [];
    let cum = 0n;
    for (const l of levels) {
      if (l.size <= 0n) continue;
      cum += l.size;
      out.push({ price: l.price, cum });
    }
    return out;
  };
  const b = side(bids);
  const a = side(asks);
  const tb = b[b.length - 1]?.cum ?? 0n;
  const ta = a[a.length - 1]?.cum ?? 0n;
  const curve: DepthCurve = { bids: b, asks: a, max: tb > ta ? tb : ta };
  const b0 = b[0];
  const a0 = a[0];
  const bl = b[b.length - 1];
  const al = a[a.length - 1];
  if (b0 && a0 && bl && al) {
    // Mid times 2, to stay in integers: half-widths are compared doubled too.
    const mid2 = b0.price + a0.price;
    const wb = mid2 - 2n * bl.price;
    const wa = 2n * al.price - mid2;
    const w = wb > wa ? wb : wa;
    // lo/hi rounded outwards to whole mantissas.
    curve.lo = floorDiv(mid2 - w, 2n);
    curve.hi = -floorDiv(-(mid2 + w), 2n);
  } else if (bl && b0) {
    curve.lo = bl.price;
    curve.hi = b0.price;
  } else if (al && a0) {
    curve.lo = a0.price;
    curve.hi = al.price;
  }
  return curve;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
