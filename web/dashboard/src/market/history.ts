// Candle history for the chart: GET /api/candles (PROTOCOL.md §2.4) builds bars of any interval
// from the feed's stored trades, so 5 m, 1 h, 4 h and 1 D bars (and 1 m bars older than the feed
// keeps in memory) are backfilled from the store and merged with the live bars of the replica; in
// a replay, so are the 1 s bars before the replay clock (from the event store, §2.5).
//
// The merge is by bar start: before the cutoff (the start of the bar that was current when the
// history was asked for) the stored bars are complete and win; from the cutoff on, the live bars
// win (the current bar keeps changing, and the history only had part of it). A request covers
// at most historyBars bars, the current one included.

import { fromJson } from "@bufbuild/protobuf";
import { CandleListSchema, type Candle } from "@tickwire/client";
import { bucketOf, type Interval } from "./candles";

/** Bars asked for per request: a screenful and then some; the feed allows 10,000. */
export const historyBars = 300;

export interface HistoryWindow {
  /** [fromS, toS) in Unix seconds, as sent. */
  fromS: bigint;
  toS: bigint;
  /** Bars starting before this come from the history; from it on, from the live bars. */
  cutoffS: bigint;
}

/** The most 1 s bars the feed reads from its event store for one request (--candles-max-scan-window: 5 min). */
export const maxScanBars = 300;

/**
 * The window of history worth asking for, or undefined.
 *
 * nowS is the clock (the replay clock in a replay); live are the replica's bars of the interval
 * (barsOf), oldest first. For an interval the feed keeps itself (1 m, and 1 s in a replay) only
 * the part before the oldest live bar is asked for.
 *
 * 1 s bars: none live (the feed keeps 5 minutes of them and the store has nothing the replica
 * lacks at that scale). In a replay (replay = true) a page that joins a session has no 1 s bars
 * before the replay clock, so the window ending at the clock is asked for: the feed reads those
 * from its event store, at most maxScanBars of them (its scan window).
 */
export function historyWindow(iv: Interval, nowS: bigint, live: readonly Candle[], bars = historyBars, replay = false): HistoryWindow | undefined {
  if (nowS <= 0n) return undefined;
  if (iv.seconds < 60) {
    if (!replay) return undefined;
    bars = Math.min(bars, maxScanBars);
  }
  const step = BigInt(iv.seconds);
  const cutoffS = bucketOf(nowS, iv.seconds);
  const fromS = cutoffS - BigInt(bars - 1) * step;
  // Up to now: the current bar is asked for too, and stands in until live bars cover it. At 1 s
  // the current bar is the clock's second: asked up to the clock, a window of exactly `bars` bars.
  let toS = iv.seconds < 60 ? cutoffS + step : nowS + 1n;
  if (iv.source === iv.seconds && live.length > 0 && live[0]!.startS < toS) toS = live[0]!.startS;
  if (toS <= fromS) return undefined;
  return { fromS, toS, cutoffS };
}

/** The URL of a history request. */
export function candlesURL(instrument: string, iv: Interval, w: HistoryWindow): string {
  const q = new URLSearchParams({ instrument, interval: String(iv.seconds), from: String(w.fromS), to: String(w.toS) });
  return `/api/candles?${q.toString()}`;
}

/** Parses a protojson CandleList, keeping only well-formed bars of the interval, oldest first. */
export function parseCandleList(json: unknown, intervalS: number): Candle[] {
  const list = fromJson(CandleListSchema, json as never, { ignoreUnknownFields: true });
  return list.candles
    .filter((c) => c.intervalS === intervalS && c.high >= c.low)
    .sort((a, b) => (a.startS < b.startS ? -1 : a.startS > b.startS ? 1 : 0));
}

/**
 * Merges history and live bars of one interval (each oldest first): one bar per start, history
 * before cutoffS when it has the bar, live otherwise; live from cutoffS on.
 */
export function mergeBars(history: readonly Candle[], live: readonly Candle[], cutoffS: bigint): Candle[] {
  const out: Candle[] = [];
  let i = 0;
  let j = 0;
  while (i < history.length || j < live.length) {
    const h = history[i];
    const l = live[j];
    if (h && (!l || h.startS < l.startS)) {
      out.push(h);
      i++;
    } else if (l && (!h || l.startS < h.startS)) {
      out.push(l);
      j++;
    } else {
      // Both have the bar.
      out.push(h!.startS < cutoffS ? h! : l!);
      i++;
      j++;
    }
  }
  return out;
}

/** A failed history request, with a short note for the chart. */
export class HistoryError extends Error {
  constructor(
    readonly status: number,
    readonly note: string,
  ) {
    super(note);
  }
}

/**
 * The reason in an error body: the message of the feed's JSON error (`{"code", "message"}`,
 * PROTOCOL.md §2.5), else the body's first line.
 */
export function errorReason(body: string): string {
  const text = body.trim();
  try {
    const e: unknown = JSON.parse(text);
    if (e && typeof e === "object" && typeof (e as { message?: unknown }).message === "string") {
      return (e as { message: string }).message.slice(0, 120);
    }
  } catch {
    // not JSON: a plain-text body
  }
  return text.split("\n")[0]!.slice(0, 120);
}

/** The note shown for a failed request: what it means for the chart, in a few words. */
export function historyNote(status: number, body: string): string {
  const reason = errorReason(body);
  switch (status) {
    case 0:
      return "history unavailable (network)";
    case 404:
    case 501:
      return "no stored history on this feed: live bars only";
    case 400:
      return `history refused: ${reason || "bad request"}`;
    case 401:
      return "history: not signed in (401)";
    case 403:
      return "candles: not entitled (403)";
    case 429:
    case 503:
      return `history busy, try again shortly${reason ? ` (${reason})` : ""}`;
    default:
      return `history failed (${status}${reason ? `: ${reason}` : ""})`;
  }
}

/** Retries of a request the feed answered 429 or 503 (busy) with a Retry-After of at most maxRetryWaitS. */
export const busyRetries = 2;
const maxRetryWaitS = 5;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

/**
 * Fetches the history of one instrument and interval; throws HistoryError (or AbortError). A
 * busy feed (429, 503 with a short Retry-After) is asked again after the wait it names, up to
 * busyRetries times.
 */
export async function fetchHistory(
  instrument: string,
  iv: Interval,
  w: HistoryWindow,
  signal?: AbortSignal,
  fetchFn: typeof fetch = fetch,
): Promise<Candle[]> {
  let r: Response;
  for (let attempt = 0; ; attempt++) {
    try {
      r = await fetchFn(candlesURL(instrument, iv, w), { signal, headers: { accept: "application/json" } });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new HistoryError(0, historyNote(0, ""));
    }
    const wait = Number(r.headers.get("retry-after") ?? "");
    if ((r.status === 429 || r.status === 503) && attempt < busyRetries && wait >= 0 && wait <= maxRetryWaitS && r.headers.has("retry-after")) {
      await r.body?.cancel().catch(() => {});
      await sleep(wait * 1000, signal);
      continue;
    }
    break;
  }
  if (!r.ok) throw new HistoryError(r.status, historyNote(r.status, await r.text().catch(() => "")));
  try {
    return parseCandleList(await r.json(), iv.seconds);
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new HistoryError(r.status, "history unreadable");
  }
}
