import { describe, expect, it } from "vitest";
import {
  Session,
  TokenFetchError,
  fetchToken,
  formatLeft,
  looksLikeToken,
  readGrant,
  refreshDelay,
  refusesToken,
  warnDelay,
  type SessionHost,
} from "../src/app/session";
import { ErrorCode } from "@tickwire/client";
import type { ConnState } from "@tickwire/client";

const min = 60_000;
const tok = (n: number) => `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1${n}In0.sig${n}`;
/** Lets the session's promise chains (the token endpoint's answers) run. */
const flush = () => new Promise((r) => setTimeout(r, 0));

class FakeTimers {
  t = 1_700_000_000_000;
  queue: { at: number; f: () => void; id: number }[] = [];
  private id = 0;
  now = () => this.t;
  setTimeout = (f: () => void, ms: number) => {
    const id = ++this.id;
    this.queue.push({ at: this.t + ms, f, id });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.queue = this.queue.filter((q) => q.id !== h);
  };
  /** Runs what is due up to ms from now, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const q = this.queue[0];
      if (!q || q.at > end) break;
      this.queue.shift();
      this.t = q.at;
      q.f();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** A page: the connection's state, what was sent and stored. */
class Host implements SessionHost {
  conn: ConnState = "connected";
  sent: { id: number; token: string }[] = [];
  stored: string[] = [];
  reconnects = 0;
  private nextId = 10;
  authenticate(token: string): number {
    if (this.conn !== "connected") return 0;
    const id = this.nextId++;
    this.sent.push({ id, token });
    return id;
  }
  reconnect(): void {
    this.reconnects++;
    this.conn = "connecting";
  }
  store(token: string): void {
    this.stored.push(token);
  }
  state(): ConnState {
    return this.conn;
  }
}

describe("when to refresh", () => {
  it("at 80% of the life, or 60 s before exp when sooner, but not before half of it", () => {
    expect(refreshDelay(60 * min)).toBe(48 * min); // 80%
    expect(refreshDelay(24 * 60 * min)).toBe(1152 * min); // 19.2 h
    expect(refreshDelay(4 * min)).toBe(3 * min); // 60 s before (80% would be 3.2 min)
    expect(refreshDelay(2 * min)).toBe(1 * min);
    expect(refreshDelay(20_000)).toBe(10_000); // half: a short token is not refreshed at once
    expect(refreshDelay(0)).toBe(0);
    expect(refreshDelay(-5)).toBe(0);
  });

  it("without an endpoint, the banner 5 minutes before exp (or at the refresh point for a short token)", () => {
    expect(warnDelay(60 * min)).toBe(55 * min);
    expect(warnDelay(20_000)).toBe(10_000);
    expect(warnDelay(6 * min)).toBe(288_000); // the refresh point (80%: 4.8 min) is later than 1 min in
  });

  it("formats the time left and recognises a token", () => {
    expect(formatLeft(41_200)).toBe("42 s");
    expect(formatLeft(5 * min)).toBe("5 min");
    expect(formatLeft(190 * min)).toBe("3 h 10 min");
    expect(formatLeft(-1)).toBe("0 s");
    expect(looksLikeToken(tok(1))).toBe(true);
    expect(looksLikeToken("hello world")).toBe(false);
    expect(looksLikeToken("a.b")).toBe(false);
  });
});

describe("Session with a token endpoint", () => {
  function setup(answers: (() => Promise<string>)[]) {
    const timers = new FakeTimers();
    const host = new Host();
    let calls = 0;
    const getToken = () => {
      const a = answers[Math.min(calls, answers.length - 1)]!;
      calls++;
      return a();
    };
    const s = new Session(host, timers, getToken);
    return { timers, host, s, calls: () => calls };
  }

  it("refreshes in band before exp and again before the new exp, with no reconnect", async () => {
    const { timers, host, s, calls } = setup([async () => tok(2), async () => tok(3)]);
    s.authenticated("alice", timers.t + 20_000, 1);
    expect(s.phase).toBe("ok");
    await timers.advance(9_999);
    expect(calls()).toBe(0);
    await timers.advance(1);
    expect(calls()).toBe(1);
    expect(host.sent).toEqual([{ id: 10, token: tok(2) }]);
    expect(host.stored).toEqual([tok(2)]); // the next connection signs in with it
    const exp2 = timers.t + 20_000;
    s.authenticated("alice", exp2, 10);
    expect(s.refreshes).toBe(1);
    expect(s.expiresMs).toBe(exp2);
    await timers.advance(10_000);
    expect(calls()).toBe(2);
    expect(host.reconnects).toBe(0);
    expect(s.warnedAtMs).toBe(0);
  });

  it("retries a failing endpoint with backoff, then shows the banner before exp", async () => {
    const { timers, s, calls } = setup([() => Promise.reject(new TokenFetchError("the token endpoint is unreachable"))]);
    const exp = timers.t + 60 * min;
    s.authenticated("alice", exp, 1);
    await timers.advance(48 * min);
    expect(calls()).toBe(1);
    expect(s.phase).toBe("refreshing"); // no banner yet: a retry is coming
    await timers.advance(2_000);
    expect(calls()).toBe(2);
    await timers.advance(5_000);
    expect(calls()).toBe(3);
    await timers.advance(10_000);
    expect(calls()).toBe(4);
    expect(s.phase).toBe("expiring");
    expect(s.reason).toBe("the token endpoint is unreachable");
    expect(s.warnedAtMs).toBe(timers.t);
    expect(s.warnedAtMs).toBeLessThan(exp);
    await timers.advance(11 * min);
    expect(calls()).toBe(4); // no more on its own: the banner asks the user (or its button)
  });

  it("gives up early when a retry would not come before exp", async () => {
    const { timers, s, calls } = setup([() => Promise.reject(new TokenFetchError("down"))]);
    s.authenticated("alice", timers.t + 6_000, 1);
    await timers.advance(3_000);
    expect(calls()).toBe(1);
    expect(s.phase).toBe("expiring"); // 3 s + 2 s would leave less than 2 s
  });

  it("tells a refused refresh from an accepted one that narrowed the grant", () => {
    expect(refusesToken(ErrorCode.UNAUTHENTICATED, "")).toBe(true); // "refresh refused: subject_mismatch"
    expect(refusesToken(ErrorCode.NOT_ENTITLED, "")).toBe(true); // "refresh refused: the new token does not grant replay"
    expect(refusesToken(ErrorCode.NOT_ENTITLED, "v:C")).toBe(false); // "no longer entitled after the refresh"
    expect(refusesToken(ErrorCode.RATE_LIMITED, "")).toBe(false);
  });

  it("a refresh the feed refuses (Error answering the Authenticate) counts as a failure", async () => {
    const { timers, host, s, calls } = setup([async () => tok(2)]);
    s.authenticated("alice", timers.t + 60 * min, 1);
    await timers.advance(48 * min);
    const id = host.sent[0]!.id;
    expect(s.refused(999, "other")).toBe(false); // not ours
    expect(s.refused(id, "refresh refused: subject_mismatch")).toBe(true);
    expect(s.reason).toBe("refresh refused: subject_mismatch");
    expect(s.phase).toBe("refreshing");
    await timers.advance(2_000);
    expect(calls()).toBe(2);
  });

  it("an endpoint handing out a token that expires no later is no refresh: bounded attempts, then the banner", async () => {
    const { timers, host, s, calls } = setup([async () => tok(1)]);
    const exp = timers.t + 20_000;
    s.authenticated("alice", exp, 1);
    for (let i = 0; i < 40; i++) {
      await timers.advance(500);
      const last = host.sent.at(-1);
      if (last && last.id !== 0 && s.phase === "refreshing") s.authenticated("alice", exp, last.id); // the same exp again
    }
    expect(calls()).toBeLessThanOrEqual(3);
    expect(s.refreshes).toBe(0);
    expect(s.phase).toBe("expiring");
    expect(s.reason).toBe("the token endpoint gave no later token");
  });

  it("after a close for the credentials: the sign-in form, one try of the endpoint that reconnects, no loop", async () => {
    const { timers, host, s, calls } = setup([async () => tok(2)]);
    s.authenticated("alice", timers.t + 60 * min, 1);
    host.conn = "closed";
    s.closed(4005, "token expired");
    expect(s.phase).toBe("signin");
    expect(s.reason).toBe("your token expired");
    await flush();
    expect(calls()).toBe(1);
    expect(host.stored).toEqual([tok(2)]);
    expect(host.reconnects).toBe(1);
    // That token is refused too (4501): the form stays, and the endpoint is not asked again.
    host.conn = "closed";
    s.closed(4501, "unauthorized: wrong_audience");
    await timers.advance(60 * min);
    expect(calls()).toBe(1);
    expect(host.reconnects).toBe(1);
    expect(s.phase).toBe("signin");
    expect(s.reason).toBe("unauthorized: wrong_audience");
    // A pasted token starts a connection; its Authenticated ends the sign-in.
    expect(s.paste("not a token")).toMatch(/not a token/);
    expect(s.paste(` Bearer ${tok(5)} `)).toBe("");
    expect(host.stored.at(-1)).toBe(tok(5));
    expect(host.reconnects).toBe(2);
    s.authenticated("alice", timers.t + 60 * min, 0);
    expect(s.phase).toBe("ok");
  });

  it("a revoked token (4006): the sign-in form says so, and the endpoint is asked once", async () => {
    const { host, s, calls, timers } = setup([async () => tok(3)]);
    s.authenticated("alice", timers.t + 60 * min, 1);
    host.conn = "closed";
    s.closed(4006, "token revoked");
    expect(s.phase).toBe("signin");
    expect(s.signinReason).toBe("your token was revoked");
    await flush();
    expect(calls()).toBe(1);
    expect(host.reconnects).toBe(1);
  });
});

describe("readGrant: the token's payload, for display only", () => {
  const jwt = (payload: object) => `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.c2ln`;
  it("reads the subject and replay_control; anything unreadable is undefined", () => {
    expect(readGrant(jwt({ sub: "alice", tw: { replay: true, replay_control: true } }))).toEqual({ subject: "alice", replayControl: true });
    expect(readGrant(jwt({ sub: "bob", tw: { replay: true } }))).toEqual({ subject: "bob", replayControl: false });
    expect(readGrant(jwt({ sub: "zoë", tw: null }))).toEqual({ subject: "zoë", replayControl: false }); // UTF-8, base64url without padding
    expect(readGrant(jwt({ sub: "x", tw: { replay_control: "yes" } }))?.replayControl).toBe(false);
    for (const bad of [null, undefined, "", "garbage", "a.b", "a.!!!.c", `x.${Buffer.from("[1]").toString("base64url")}.y`, `x.${Buffer.from("not json").toString("base64url")}.y`]) {
      expect(readGrant(bad)?.replayControl ?? false).toBe(false);
    }
  });
});

describe("Session without a token endpoint", () => {
  it("shows the paste banner before exp; a pasted token is sent in band and, once accepted, hides it", async () => {
    const timers = new FakeTimers();
    const host = new Host();
    const s = new Session(host, timers);
    const exp = timers.t + 60 * min;
    s.authenticated("alice", exp, 1);
    await timers.advance(55 * min - 1);
    expect(s.phase).toBe("ok");
    await timers.advance(1);
    expect(s.phase).toBe("expiring");
    expect(s.reason).toBe("no token endpoint is configured");
    expect(s.warnedAtMs).toBe(exp - 5 * min);
    // A refused paste says why and keeps the banner.
    expect(s.paste(tok(7))).toBe("");
    const id = host.sent.at(-1)!.id;
    expect(s.refused(id, "refresh refused: bad_signature")).toBe(true);
    expect(s.phase).toBe("expiring");
    expect(s.reason).toBe("the pasted token was refused: refresh refused: bad_signature");
    // A good one.
    expect(s.paste(tok(8))).toBe("");
    s.authenticated("alice", timers.t + 60 * min, host.sent.at(-1)!.id);
    expect(s.phase).toBe("ok");
    expect(s.refreshes).toBe(1);
    expect(s.warnedAtMs).toBe(0);
    expect(host.reconnects).toBe(0);
  });

  it("keeps the banner when a reconnect signs in again with the token running out", async () => {
    const timers = new FakeTimers();
    const s = new Session(new Host(), timers);
    const exp = timers.t + 20_000;
    s.authenticated("alice", exp, 1);
    await timers.advance(10_000);
    expect(s.phase).toBe("expiring");
    s.authenticated("alice", exp, 3); // the same token on a new connection
    expect(s.phase).toBe("expiring");
  });

  it("no expiry (a feed without exp, or anonymous): nothing scheduled", async () => {
    const timers = new FakeTimers();
    const s = new Session(new Host(), timers);
    s.authenticated("", 0, 1);
    expect(timers.queue.length).toBe(0);
    expect(s.phase).toBe("ok");
  });
});

describe("fetchToken (the token endpoint's contract)", () => {
  const answer = (status: number, body: string, type = "text/plain") => {
    const seen: RequestInit[] = [];
    const f = (async (_url: string, init: RequestInit) => {
      seen.push(init);
      return new Response(body, { status, headers: { "content-type": type } });
    }) as unknown as typeof fetch;
    return { f, seen };
  };

  it("GETs with the browser's credentials and takes JSON {token}, {access_token} or text", async () => {
    const a = answer(200, JSON.stringify({ token: tok(1) }), "application/json");
    expect(await fetchToken("https://idp/t", a.f)).toBe(tok(1));
    expect(a.seen[0]).toMatchObject({ method: "GET", credentials: "include", cache: "no-store" });
    expect(await fetchToken("/t", answer(200, JSON.stringify({ access_token: tok(2), expires_in: 300 }), "application/json").f)).toBe(tok(2));
    expect(await fetchToken("/t", answer(200, `${tok(3)}\n`).f)).toBe(tok(3));
  });

  it("says why there is no token", async () => {
    await expect(fetchToken("/t", answer(401, "login required").f)).rejects.toThrow(/refused \(401\): sign in again/);
    await expect(fetchToken("/t", answer(500, "boom").f)).rejects.toThrow(/failed \(500\)/);
    await expect(fetchToken("/t", answer(200, "<html>login page</html>", "text/html").f)).rejects.toThrow(/no token/);
    await expect(fetchToken("/t", answer(200, "{}", "application/json").f)).rejects.toThrow(/no token/);
    const down = (async () => {
      throw new TypeError("Failed to fetch");
    }) as unknown as typeof fetch;
    await expect(fetchToken("/t", down)).rejects.toThrow(/unreachable/);
  });
});
