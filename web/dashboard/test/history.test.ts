import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CandleSchema } from "@tickwire/client";
import { intervals } from "../src/market/candles";
import { HistoryError, candlesURL, fetchHistory, historyNote, historyWindow, mergeBars, parseCandleList } from "../src/market/history";

const [s1, m1, m5, h1] = intervals as [(typeof intervals)[0], (typeof intervals)[0], (typeof intervals)[0], (typeof intervals)[0]];
const bar = (start: number, close: number, iv = 300) =>
  create(CandleSchema, { intervalS: iv, startS: BigInt(start), open: 100n, high: 200n, low: 50n, close: BigInt(close), volume: 1n, tradeCount: 1 });

describe("candle history", () => {
  it("asks for up to 300 bars up to now; 1m only before the oldest live bar; none for 1s", () => {
    expect(historyWindow(s1, 10_000n, [])).toBeUndefined();
    // 300 bars: 299 before the current one, and the current one so far.
    expect(historyWindow(m5, 1_000_223n, [], 300)).toEqual({ fromS: 1_000_200n - 299n * 300n, toS: 1_000_224n, cutoffS: 1_000_200n });
    expect(historyWindow(h1, 7_300n, [], 300)).toEqual({ fromS: 7_200n - 299n * 3600n, toS: 7_301n, cutoffS: 7_200n });
    const live = [bar(600_000, 1, 60), bar(600_060, 1, 60)];
    expect(historyWindow(m1, 600_130n, live, 300)).toEqual({ fromS: 600_120n - 299n * 60n, toS: 600_000n, cutoffS: 600_120n });
    expect(historyWindow(m1, 600_130n, [], 300)).toEqual({ fromS: 600_120n - 299n * 60n, toS: 600_131n, cutoffS: 600_120n });
    // The feed holds all 300 1m bars: nothing older worth asking for within the cap.
    const full = Array.from({ length: 300 }, (_, i) => bar(600_120 - (299 - i) * 60, 1, 60));
    expect(historyWindow(m1, 600_130n, full, 300)).toBeUndefined();
    expect(historyWindow(m5, 0n, [])).toBeUndefined(); // no clock yet (a replay before its first status)
  });

  it("in a replay, asks for the 1s bars up to the replay clock (at most 300: the feed's scan window); live, none", () => {
    expect(historyWindow(s1, 10_000n, [], 300, false)).toBeUndefined();
    // 300 one-second bars: [clock - 299, clock + 1), the clock's second the current bar.
    expect(historyWindow(s1, 10_000n, [], 300, true)).toEqual({ fromS: 9_701n, toS: 10_001n, cutoffS: 10_000n });
    // Never more than the scan window, even when asked.
    expect(historyWindow(s1, 10_000n, [], 1000, true)).toEqual({ fromS: 9_701n, toS: 10_001n, cutoffS: 10_000n });
    // Only before the oldest live 1s bar.
    expect(historyWindow(s1, 10_000n, [bar(9_990, 1, 1)], 300, true)).toEqual({ fromS: 9_701n, toS: 9_990n, cutoffS: 10_000n });
    expect(historyWindow(s1, 10_000n, [bar(9_600, 1, 1)], 300, true)).toBeUndefined();
    expect(historyWindow(s1, 0n, [], 300, true)).toBeUndefined(); // no clock yet
    // Other intervals are the same in a replay.
    expect(historyWindow(m5, 1_000_223n, [], 300, true)).toEqual(historyWindow(m5, 1_000_223n, [], 300));
  });

  it("4h and 1D: 300 bars up to now, their buckets on UTC 4-hour and day boundaries", () => {
    const [, , , , h4, d1] = intervals;
    const now = 1_764_709_000n; // 2025-12-02 20:56:40 UTC
    expect(historyWindow(h4!, now, [], 300)).toEqual({ fromS: 1_764_705_600n - 299n * 14_400n, toS: now + 1n, cutoffS: 1_764_705_600n });
    expect(historyWindow(d1!, now, [], 300)).toEqual({ fromS: 1_764_633_600n - 299n * 86_400n, toS: now + 1n, cutoffS: 1_764_633_600n });
    expect(candlesURL("a:B", d1!, { fromS: 0n, toS: 86_400n, cutoffS: 0n })).toBe("/api/candles?instrument=a%3AB&interval=86400&from=0&to=86400");
  });

  it("builds the request URL in Unix seconds", () => {
    expect(candlesURL("coinbase:BTC-USD", m5, { fromS: 100n, toS: 400n, cutoffS: 400n })).toBe("/api/candles?instrument=coinbase%3ABTC-USD&interval=300&from=100&to=400");
  });

  it("merges by start: stored bars win before the cutoff, live bars from it on (the current bar)", () => {
    const hist = [bar(0, 1), bar(300, 2), bar(600, 3), bar(900, 4)]; // 900 was partial when asked
    const live = [bar(600, 30), bar(900, 40), bar(1200, 50)];
    const out = mergeBars(hist, live, 900n);
    expect(out.map((b) => [Number(b.startS), Number(b.close)])).toEqual([
      [0, 1],
      [300, 2],
      [600, 3],
      [900, 40],
      [1200, 50],
    ]);
    // Holes stay holes (the chart draws whitespace); a bar only one side has is kept.
    expect(mergeBars([bar(0, 1)], [bar(1500, 9)], 900n).map((b) => Number(b.startS))).toEqual([0, 1500]);
    expect(mergeBars([], live, 900n)).toEqual(live);
    expect(mergeBars(hist, [], 900n)).toEqual(hist);
  });

  it("parses the feed's protojson CandleList exactly (int64 as strings stay bigint)", () => {
    const json = {
      candles: [
        { intervalS: 300, startS: "1768480200", open: "9007199254740993", high: "9007199254740999", low: "9007199254740990", close: "9007199254740995", volume: "12", tradeCount: 3 },
        { intervalS: 300, startS: "1768479900", open: "1", high: "2", low: "1", close: "2", volume: "1", tradeCount: 1 },
        { intervalS: 60, startS: "1768480200", open: "1", high: "2", low: "1", close: "2", volume: "1", tradeCount: 1 },
      ],
    };
    const bars = parseCandleList(json, 300);
    expect(bars.map((b) => b.startS)).toEqual([1768479900n, 1768480200n]);
    expect(bars[1]!.close).toBe(9007199254740995n);
    expect(parseCandleList({}, 300)).toEqual([]);
  });

  it("turns 501, 400 and network failures into a short note", async () => {
    expect(historyNote(501, "candle history not enabled\n")).toMatch(/no stored history/);
    expect(historyNote(400, "feed: 20000 bars asked, at most 10000\n")).toBe("history refused: feed: 20000 bars asked, at most 10000");
    expect(historyNote(0, "")).toMatch(/network/);
    expect(historyNote(403, '{"code":"not_entitled","message":"not entitled to candles"}')).toBe("candles: not entitled (403)");
    // The feed's JSON error body (PROTOCOL.md §2.5): its message is the reason.
    expect(historyNote(400, '{"code":"too_many_bars","message":"the window holds 20000 bars of 60s; at most 10000"}\n')).toBe(
      "history refused: the window holds 20000 bars of 60s; at most 10000",
    );
    expect(historyNote(429, '{"code":"rate_limited","message":"more than 5 requests/s"}')).toBe("history busy, try again shortly (more than 5 requests/s)");
    expect(historyNote(503, "")).toBe("history busy, try again shortly");
    const w = { fromS: 0n, toS: 300n, cutoffS: 300n };
    const res = (status: number, body: string) => (async () => new Response(body, { status })) as typeof fetch;
    await expect(fetchHistory("x:Y", m5, w, undefined, res(501, "candle history not enabled"))).rejects.toMatchObject({ status: 501 });
    await expect(fetchHistory("x:Y", m5, w, undefined, res(400, "bad"))).rejects.toBeInstanceOf(HistoryError);
    const down = (async () => {
      throw new TypeError("fetch failed");
    }) as typeof fetch;
    await expect(fetchHistory("x:Y", m5, w, undefined, down)).rejects.toMatchObject({ status: 0 });
    const ok = await fetchHistory("x:Y", m5, w, undefined, res(200, JSON.stringify({ candles: [{ intervalS: 300, startS: "0", open: "1", high: "1", low: "1", close: "1", volume: "1", tradeCount: 1 }] })));
    expect(ok.length).toBe(1);
  });

  it("asks a busy feed again after its Retry-After, at most twice", async () => {
    const w = { fromS: 0n, toS: 300n, cutoffS: 300n };
    const okBody = JSON.stringify({ candles: [{ intervalS: 300, startS: "0", open: "1", high: "1", low: "1", close: "1", volume: "1", tradeCount: 1 }] });
    const busy = () => new Response('{"code":"busy","message":"4 candle requests already being answered"}', { status: 429, headers: { "retry-after": "0" } });
    const answers = (list: (() => Response)[]) => {
      let i = 0;
      const f = (async () => list[Math.min(i++, list.length - 1)]!()) as typeof fetch;
      return { f, calls: () => i };
    };
    const once = answers([busy, () => new Response(okBody, { status: 200 })]);
    expect((await fetchHistory("x:Y", m5, w, undefined, once.f)).length).toBe(1);
    expect(once.calls()).toBe(2);
    const always = answers([busy]);
    await expect(fetchHistory("x:Y", m5, w, undefined, always.f)).rejects.toMatchObject({ status: 429, note: "history busy, try again shortly (4 candle requests already being answered)" });
    expect(always.calls()).toBe(3);
    // No Retry-After, or a long one: no retry.
    const long = answers([() => new Response("", { status: 429, headers: { "retry-after": "60" } })]);
    await expect(fetchHistory("x:Y", m5, w, undefined, long.f)).rejects.toMatchObject({ status: 429 });
    expect(long.calls()).toBe(1);
  });
});
