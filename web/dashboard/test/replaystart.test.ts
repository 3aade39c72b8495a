import { describe, expect, it } from "vitest";
import { planReplay, replayStartAnswer, replayStartRequest, replayStartTarget, type ReplayPlan } from "../src/market/replay";

// POST /api/replays (docs/PROTOCOL.md §2.4): what the Replay… form sends and how it reads the answer.

const now = Date.parse("2026-12-02T16:59:30.400Z");

describe("starting a replay in the feed: the request", () => {
  it("sends the window resolved to UTC, the speed, the session, and the token as a Bearer header", () => {
    const p = planReplay({ from: "-1m", to: "now", speed: 10, instruments: "", session: "r-0a1b2c3d" }, now) as ReplayPlan;
    const r = replayStartRequest(p, "tok.en.sig");
    expect(r.url).toBe("/api/replays");
    expect(r.init.method).toBe("POST");
    expect(r.init.headers).toEqual({ "content-type": "application/json", authorization: "Bearer tok.en.sig" });
    // No instruments: all (the field is left out).
    expect(JSON.parse(r.init.body)).toEqual({ from: "2026-12-02T16:58:30Z", to: "2026-12-02T16:59:30Z", speed: 10, session: "r-0a1b2c3d" });
  });
  it("names the instruments picked; speed 0 is as fast as possible; no token, no header", () => {
    const p = planReplay({ from: "16:00", to: "16:30:15", speed: 0, instruments: "synthetic:ACME, coinbase:BTC-USD", session: "btc" }, now) as ReplayPlan;
    const r = replayStartRequest(p, null);
    expect(r.init.headers).toEqual({ "content-type": "application/json" });
    expect(JSON.parse(r.init.body)).toEqual({ from: "2026-12-02T16:00:00Z", to: "2026-12-02T16:30:15Z", speed: 0, instruments: ["synthetic:ACME", "coinbase:BTC-USD"], session: "btc" });
  });
  it("leaves an empty session out (the feed makes one)", () => {
    const r = replayStartRequest({ fromMs: 0, toMs: 1000, speed: 1, instruments: [], session: "" }, "t");
    expect(JSON.parse(r.init.body)).toEqual({ from: "1970-01-01T00:00:00Z", to: "1970-01-01T00:00:01Z", speed: 1 });
  });
});

describe("starting a replay in the feed: the answer", () => {
  it("201: started, go to the answer's path with the token in the fragment", () => {
    const a = replayStartAnswer(201, '{"session":"r-0a1b2c3d","url":"/?replay=r-0a1b2c3d"}\n');
    expect(a).toEqual({ kind: "started", session: "r-0a1b2c3d", url: "/?replay=r-0a1b2c3d" });
    expect(replayStartTarget("http://127.0.0.1:8080", "/?replay=r-0a1b2c3d", "a.b.c")).toBe("http://127.0.0.1:8080/?replay=r-0a1b2c3d#token=a.b.c");
    expect(replayStartTarget("http://127.0.0.1:8080", "/?replay=x", null)).toBe("http://127.0.0.1:8080/?replay=x");
  });
  it("201: a url that is not a path on this origin is not followed (the session's own link instead)", () => {
    for (const url of ["https://evil.example/?replay=x", "//evil.example/", "javascript:alert(1)", "", 7]) {
      const a = replayStartAnswer(201, JSON.stringify({ session: "s-1", url }));
      expect(a).toEqual({ kind: "started", session: "s-1", url: "/?replay=s-1" });
    }
  });
  it("201 without a valid session id: refused, said", () => {
    const a = replayStartAnswer(201, "{}");
    expect(a.kind).toBe("refused");
    expect(a.kind === "refused" && a.message).toMatch(/without a session id/);
  });
  it("400: the feed's reason", () => {
    const a = replayStartAnswer(400, '{"code":"bad_request","message":"a window of 48h0m0s; at most 24h0m0s"}\n');
    expect(a).toEqual({ kind: "refused", status: 400, code: "bad_request", message: "Refused (400): a window of 48h0m0s; at most 24h0m0s" });
  });
  it("401: plain text body, sign in again", () => {
    const a = replayStartAnswer(401, "token expired\n");
    expect(a).toEqual({ kind: "refused", status: 401, code: "401", message: "Not signed in, or the token was refused (401): token expired. Sign in again." });
  });
  it("403: not entitled, with the feed's message", () => {
    const a = replayStartAnswer(403, '{"code":"not_entitled","message":"starting a replay session needs a token granted replay_control"}');
    expect(a).toEqual({ kind: "refused", status: 403, code: "not_entitled", message: "Not entitled (403): starting a replay session needs a token granted replay_control" });
  });
  it("409: the id is taken, pick another", () => {
    const a = replayStartAnswer(409, '{"code":"session_exists","message":"a replay session btc is running"}');
    expect(a).toEqual({ kind: "refused", status: 409, code: "session_exists", message: "a replay session btc is running (409): pick another session id." });
  });
  it("429: too many sessions, with Retry-After", () => {
    const body = '{"code":"too_many_sessions","message":"this feed runs 4 replay sessions, its most; one ends within 1h0m0s"}';
    expect(replayStartAnswer(429, body, "60")).toEqual({ kind: "refused", status: 429, code: "too_many_sessions", message: "this feed runs 4 replay sessions, its most; one ends within 1h0m0s (429); try again in 60 s." });
    expect(replayStartAnswer(429, body, null).kind === "refused" && (replayStartAnswer(429, body, null) as { message: string }).message).toBe("this feed runs 4 replay sessions, its most; one ends within 1h0m0s (429).");
    expect((replayStartAnswer(429, body, "Wed, 02 Dec 2026 17:00:00 GMT") as { message: string }).message).not.toMatch(/try again/);
  });
  it("501: not enabled, the command is the way", () => {
    const a = replayStartAnswer(501, '{"code":"not_enabled","message":"this feed does not start replay sessions (feed --replay-start); an operator runs: tickctl replay"}');
    expect(a).toEqual({ kind: "not_enabled", message: "This feed does not start replays (501)." });
    expect(replayStartAnswer(501, "404 page not found\n")).toEqual(a);
  });
  it("anything else: the status and the body's text", () => {
    expect(replayStartAnswer(503, "revocation list not loaded yet; retry shortly\n")).toEqual({ kind: "refused", status: 503, code: "503", message: "The feed did not start the replay (HTTP 503): revocation list not loaded yet; retry shortly" });
    expect(replayStartAnswer(502, "")).toEqual({ kind: "refused", status: 502, code: "502", message: "The feed did not start the replay (HTTP 502)" });
  });
});
