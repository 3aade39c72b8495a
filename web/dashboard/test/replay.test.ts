import { describe, expect, it } from "vitest";
import { ReplayState } from "@tickwire/client";
import { controllersText, formatElapsed, formatUtc, formatWindow, mayControl, newSessionId, parseSeek, parseWhen, planReplay, progress, replayCommand, replayLink, seekAt, speedLabel, stateLabel, visibleCandles, visibleTrades } from "../src/market/replay";

const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;
const st = { fromNs: ns("2026-01-15T12:00:00Z"), toNs: ns("2026-01-15T12:00:40Z"), clockNs: ns("2026-01-15T12:00:10.250Z") };

describe("replay status formatting", () => {
  it("formats the replay clock as a UTC date-time", () => {
    expect(formatUtc(ns("2026-01-15T12:00:10.250Z"))).toBe("2026-01-15 12:00:10.250 UTC");
    expect(formatUtc(ns("2026-01-15T02:03:04.005Z"), false)).toBe("2026-01-15 02:03:04 UTC");
    expect(formatUtc(0n)).toBe("—");
  });
  it("formats the window, the date once when both ends share it", () => {
    expect(formatWindow(st.fromNs, st.toNs)).toBe("2026-01-15 12:00:00 → 12:00:40 UTC");
    expect(formatWindow(ns("2026-01-15T23:59:00Z"), ns("2026-01-16T00:01:00Z"))).toBe("2026-01-15 23:59:00 → 2026-01-16 00:01:00 UTC");
  });
  it("names states and speeds", () => {
    expect(stateLabel(ReplayState.RUNNING)).toBe("running");
    expect(stateLabel(ReplayState.PAUSED)).toBe("paused");
    expect(stateLabel(ReplayState.FINISHED)).toBe("finished");
    expect(stateLabel(ReplayState.UNSPECIFIED)).toBe("unknown");
    expect([0.5, 1, 2, 5, 10, 0].map(speedLabel)).toEqual(["0.5×", "1×", "2×", "5×", "10×", "max"]);
  });
  it("computes progress and elapsed time, clamped to the window", () => {
    expect(progress(st)).toBeCloseTo(0.25625, 6);
    expect(progress({ ...st, clockNs: 0n })).toBe(0);
    expect(progress({ ...st, clockNs: st.toNs + 5n })).toBe(1);
    expect(progress({ ...st, toNs: st.fromNs })).toBe(0);
    expect(formatElapsed(st)).toBe("0:10 / 0:40");
    expect(formatElapsed({ fromNs: 0n, toNs: 3_725_000_000_000n, clockNs: 3_725_000_000_000n })).toBe("1:02:05 / 1:02:05");
  });
  it("seeks by fraction of the window and by a typed UTC time", () => {
    expect(seekAt(st, 0)).toBe(st.fromNs);
    expect(seekAt(st, 0.5)).toBe(ns("2026-01-15T12:00:20Z"));
    expect(seekAt(st, 7)).toBe(st.toNs);
    expect(parseSeek("12:00:30", st)).toBe(ns("2026-01-15T12:00:30Z"));
    expect(parseSeek(" 12:00:30.5 UTC ", st)).toBe(ns("2026-01-15T12:00:30.500Z"));
    expect(parseSeek("2026-01-15T12:00:05Z", st)).toBe(ns("2026-01-15T12:00:05Z"));
    expect(parseSeek("2026-01-15 12:00", st)).toBe(st.fromNs);
    expect(parseSeek("13:00:00", st)).toMatch(/outside the window/);
    expect(parseSeek("noon", st)).toMatch(/UTC time/);
    expect(parseSeek("25:00", st)).toMatch(/not a time/);
  });
});

describe("replay display after a seek back", () => {
  const rec = (ms: number, price: bigint, seq: bigint) => ({ venueTimeNs: BigInt(ms) * 1_000_000n, seq, trade: { price, size: 1n, side: 1 } });
  it("leaves out trades after the clock and shows a replayed trade once (its newer copy)", () => {
    // The old run went to 9 s; the seek went back to 3 s; the new run replayed 3 s and 4 s again.
    const old = [rec(1000, 10n, 100n), rec(3000, 11n, 101n), rec(4000, 12n, 102n), rec(9000, 13n, 103n)];
    const fresh = [rec(3000, 11n, 3n), rec(4000, 12n, 4n)];
    const out = visibleTrades([...old, ...fresh], 4_500_000_000n);
    expect(out.map((r) => [Number(r.venueTimeNs / 1_000_000n), r.seq])).toEqual([
      [1000, 100n],
      [3000, 3n],
      [4000, 4n],
    ]);
    expect(visibleTrades(old, 0n)).toHaveLength(4); // no clock yet: everything
  });
  it("leaves out bars that start after the clock", () => {
    const bars = [{ startS: 10n }, { startS: 11n }, { startS: 19n }];
    expect(visibleCandles(bars, 11_500_000_000n)).toEqual([{ startS: 10n }, { startS: 11n }]);
    expect(visibleCandles(bars, 30_000_000_000n)).toBe(bars);
  });
});

describe("who controls a replay session (PROTOCOL.md §18)", () => {
  const status = { controllers: ["alice", "ops"] };
  const viewer = (subject: string, replayControl = false, signedIn = true) => ({ subject, replayControl, signedIn });
  it("a subject among the controllers, or a token granted replay_control, controls; any other signed-in viewer watches only", () => {
    expect(mayControl(status, viewer("alice"))).toBe(true);
    expect(mayControl(status, viewer("bob"))).toBe(false);
    expect(mayControl(status, viewer("bob", true))).toBe(true);
    expect(mayControl({ controllers: [] }, viewer("alice"))).toBe(false);
    expect(mayControl({ controllers: [] }, viewer("", true))).toBe(true);
    expect(mayControl(status, viewer(""))).toBe(false); // a token without a subject is named by no one
  });
  it("is not known before the first status or without a sign-in (an anonymous policy's grant is not visible)", () => {
    expect(mayControl(undefined, viewer("alice"))).toBeUndefined();
    expect(mayControl(status, viewer("", false, false))).toBeUndefined();
  });
  it("names the controllers for the watcher", () => {
    expect(controllersText(status)).toBe("alice, ops (and tokens with replay_control)");
    expect(controllersText({ controllers: [] })).toBe("tokens with replay_control only");
  });
});

describe("opening a replay from the dashboard: the tickctl command and the link", () => {
  const now = Date.parse("2026-12-02T17:00:30.400Z");
  it("reads relative, time-of-day and full UTC times", () => {
    expect(parseWhen("-2m", now)).toBe(now - 120_000);
    expect(parseWhen("-1h30m", now)).toBe(now - 5_400_000);
    expect(parseWhen("-90s", now)).toBe(now - 90_000);
    expect(parseWhen("now", now)).toBe(now);
    expect(parseWhen("16:58:30", now)).toBe(Date.parse("2026-12-02T16:58:30Z"));
    expect(parseWhen("17:05", now)).toBe(Date.parse("2026-12-01T17:05:00Z")); // still to come today: yesterday
    expect(parseWhen("2026-12-01 09:00:00 UTC", now)).toBe(Date.parse("2026-12-01T09:00:00Z"));
    expect(parseWhen("2026-12-01T09:00:00.5Z", now)).toBe(Date.parse("2026-12-01T09:00:00.500Z"));
    expect(parseWhen("yesterday", now)).toMatch(/a time like/);
    expect(parseWhen("25:00", now)).toBe("not a time of day");
  });
  it("checks the form and gives the exact command with the window in UTC, and the link", () => {
    const p = planReplay({ from: "-2m", to: "-1m", speed: 10, instruments: "", session: "r-0a1b2c3d" }, now);
    if (typeof p === "string") throw new Error(p);
    expect(p).toEqual({ fromMs: Date.parse("2026-12-02T16:58:30Z"), toMs: Date.parse("2026-12-02T16:59:30Z"), speed: 10, instruments: [], session: "r-0a1b2c3d" });
    expect(replayCommand(p, "http://127.0.0.1:8080", "dev")).toBe(
      "tickctl replay --from 2026-12-02T16:58:30Z --to 2026-12-02T16:59:30Z --speed 10 --session r-0a1b2c3d --controller dev --feed-url http://127.0.0.1:8080",
    );
    expect(replayLink("http://127.0.0.1:8080", "r-0a1b2c3d")).toBe("http://127.0.0.1:8080/?replay=r-0a1b2c3d");
    const q = planReplay({ from: "16:00", to: "", speed: 0, instruments: "coinbase:BTC-USD, synthetic:ACME", session: "btc" }, now);
    if (typeof q === "string") throw new Error(q);
    expect(q.toMs).toBe(Date.parse("2026-12-02T17:00:30Z")); // empty: now
    expect(replayCommand(q, "https://feed.example", "o'brien")).toContain("--speed 0 --session btc --instrument coinbase:BTC-USD,synthetic:ACME --controller 'o'\\''brien' --feed-url https://feed.example");
  });
  it("says what is wrong", () => {
    const f = { from: "-1m", to: "-2m", speed: 1, instruments: "", session: "s" };
    expect(planReplay(f, now)).toBe("to must be after from");
    expect(planReplay({ ...f, from: "+1m", to: "+2m" }, now)).toMatch(/^from: in the future/);
    expect(planReplay({ ...f, to: "now", instruments: "BTC-USD" }, now)).toMatch(/not venue:SYMBOL/);
    expect(planReplay({ ...f, to: "now", session: "Bad_Id" }, now)).toMatch(/^session:/);
    expect(planReplay({ ...f, from: "x" }, now)).toMatch(/^from:/);
  });
  it("makes session ids like tickctl's", () => {
    expect(newSessionId()).toMatch(/^r-[0-9a-f]{8}$/);
  });
});
