// An instrument's last price: the one value the header, the watchlist, the tape and the chart's
// price label show as "last" (issue 12: the chart's label used to disagree with the header and the
// tape by a few ticks).
//
// The feed derives the trade, the bar's close and Stats.last from the same event, but they reach
// the screen on three streams, and the chart's own label came from lightweight-charts, which
// paints on its next animation frame (one frame after the header and the tape: 2-7 ticks on a
// busy market) and labels the last *visible* bar. So nothing on screen shows "last" from a bar or
// from the chart: every view asks this one rule, with the trades as the tape shows them.
//
// Trade.history (PROTOCOL.md §8.3) is the venue's tape from before ingest connected: shown on the
// tape, not counted in candles and stats, and not "last" while a live trade is known.

import type { Stats, TradeRecord } from "@tickwire/client";

export type LastSource = "trade" | "stats" | "history";

export interface Last {
  price: bigint;
  /**
   * trade: the newest live trade on the tape; stats: Stats.last (no live trade on the tape: an
   * instrument without the trades channel, the watchlist's); history: the newest trade from
   * before ingest connected, when no live trade is known at all.
   */
  source: LastSource;
  /** The trade's event seq (0 from stats): tells two trades at one price apart. */
  seq: bigint;
}

/** The newest and the newest live (not history) trades of a trade list, oldest first. */
export interface TapeEnds {
  live: TradeRecord | undefined;
  history: TradeRecord | undefined;
}

export function tapeEnds(trades: readonly TradeRecord[]): TapeEnds {
  let live: TradeRecord | undefined;
  let history: TradeRecord | undefined;
  for (let i = trades.length - 1; i >= 0 && !live; i--) {
    const r = trades[i]!;
    if (!r.trade) continue;
    if (!r.trade.history) live = r;
    else history ??= r;
  }
  return { live, history };
}

/**
 * The last price: the newest live trade on the tape; else Stats.last once the session has a
 * trade; else the newest history trade; else undefined.
 *
 * Live trades come first even when stats are newer (a trades stream resyncing behind the stats):
 * the price in the header is then the one on the tape, and the header says RESYNCING.
 */
export function lastOf(tape: TapeEnds | undefined, stats: Stats | undefined): Last | undefined {
  const live = tape?.live;
  if (live?.trade) return { price: live.trade.price, source: "trade", seq: live.seq };
  if (stats && stats.tradeCount > 0n) return { price: stats.last, source: "stats", seq: 0n };
  const h = tape?.history;
  if (h?.trade) return { price: h.trade.price, source: "history", seq: h.seq };
  return undefined;
}

export function sameLast(a: Last | undefined, b: Last | undefined): boolean {
  return a === b || (!!a && !!b && a.price === b.price && a.source === b.source && a.seq === b.seq);
}
