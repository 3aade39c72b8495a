// The sign-in session: who is signed in, until when, and getting a fresh token in time.
//
// The feed closes a connection at its token's exp (4005) unless a fresh token for the same
// subject arrives before in an Authenticate, which the feed answers with Authenticated and the
// new expiry (PROTOCOL.md §2.6). A browser cannot mint tokens, so:
//
// - with a token endpoint (the operator's --dashboard-token-url, docs/OPERATIONS.md) the page
//   asks it for a fresh token some time before exp (refreshDelay: at 80% of the token's life, or
//   60 s before exp when that is sooner, never before half of it), presents it on the live
//   connection, and asks again a few times with backoff when that fails; then it warns;
// - without one it warns pasteLeadMs before exp (or at the same point, for a short token).
//
// The warning is a banner with a countdown and a field to paste a new token. After a close for
// the credentials (4005 expired, 4006 revoked, 4501) the page shows a sign-in form instead of
// reconnecting: the client does not reconnect then (needsSignIn), and signing in starts it
// again. With a token
// endpoint the page also asks it once by itself after such a close (the identity provider's
// session may still be good: a laptop that slept past exp); once, until the next sign-in.
//
// Tokens are never logged and never put in a URL; the host keeps them in session storage.

import { ErrorCode } from "@tickwire/client";
import type { ConnState, Timers } from "@tickwire/client";

/** Refresh at this share of the token's life... */
export const refreshShare = 0.8;
/** ...or this long before exp when that is sooner... */
export const refreshLeadMs = 60_000;
/** ...but never before this share of it (a 20 s token is refreshed after 10 s, not at once). */
export const refreshFloorShare = 0.5;
/** Without a token endpoint, the banner asks for a new token this long before exp. */
export const pasteLeadMs = 5 * 60_000;
/** Waits before the retries of a failed refresh; a retry that would not come before exp is not made. */
export const retryDelaysMs = [2_000, 5_000, 10_000];
/** A retry must leave at least this much of the token's life. */
export const retryMarginMs = 2_000;
/** How long a presented token may wait for the feed's answer before it counts as failed. */
export const answerTimeoutMs = 10_000;
/** How long the token endpoint may take. */
export const fetchTimeoutMs = 10_000;

/**
 * When to refresh a token that has lifeMs left: at 80% of that, or 60 s before its end when
 * that is sooner, but not before half of it.
 */
export function refreshDelay(lifeMs: number): number {
  if (lifeMs <= 0) return 0;
  return Math.max(lifeMs * refreshFloorShare, Math.min(lifeMs * refreshShare, lifeMs - refreshLeadMs));
}

/** When to show the paste banner without a token endpoint: pasteLeadMs before the end, or at refreshDelay if later. */
export function warnDelay(lifeMs: number): number {
  if (lifeMs <= 0) return 0;
  return Math.max(refreshDelay(lifeMs), lifeMs - pasteLeadMs);
}

/** Whether s looks like a JWT (three base64url parts): catches a paste of the wrong thing. */
export function looksLikeToken(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(s);
}

/** What the page reads from a token's payload (readGrant). */
export interface Grant {
  subject: string;
  /** tw.replay_control: may control any replay session (PROTOCOL.md §2.6). */
  replayControl: boolean;
}

/**
 * Reads a token's payload (the middle part of the JWT) without verifying anything: for display
 * only (the replay banner's "watching only"), never for a decision; the feed verifies the token
 * and enforces its grant. undefined: no token, or not a readable JWT.
 */
export function readGrant(token: string | null | undefined): Grant | undefined {
  const part = token?.split(".")[1];
  if (!part || !looksLikeToken(token!)) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const p: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (!p || typeof p !== "object") return undefined;
    const o = p as { sub?: unknown; tw?: { replay_control?: unknown } | null };
    return { subject: typeof o.sub === "string" ? o.sub : "", replayControl: o.tw?.replay_control === true };
  } catch {
    return undefined;
  }
}

/** "in 42 s", "in 5 min", "in 3 h 10 min": the time left, for people. */
export function formatLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Whether an Error answering an Authenticate refuses the token: UNAUTHENTICATED (a bad token,
 * another subject), or NOT_ENTITLED without an instrument (a replay watcher's token without the
 * replay right). A NOT_ENTITLED naming an instrument answers an accepted refresh whose grant is
 * narrower (the streams it ended): the token is in force.
 */
export function refusesToken(code: ErrorCode, instrument: string): boolean {
  return code === ErrorCode.UNAUTHENTICATED || (code === ErrorCode.NOT_ENTITLED && instrument === "");
}

/** A token endpoint's failure, with what to tell the user. */
export class TokenFetchError extends Error {}

/**
 * Asks the token endpoint for a fresh token: GET with the browser's cookies (the identity
 * provider's session), answered with JSON {"token": "..."} (or {"access_token": "..."}, as an
 * OAuth token response) or the token as plain text. Throws TokenFetchError.
 */
export async function fetchToken(url: string, fetchFn: typeof fetch = fetch, timeoutMs = fetchTimeoutMs): Promise<string> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let r: Response;
  let body: string;
  try {
    r = await fetchFn(url, {
      method: "GET",
      credentials: "include",
      cache: "no-store",
      headers: { accept: "application/json, text/plain" },
      signal: ctl.signal,
    });
    body = await r.text();
  } catch {
    throw new TokenFetchError(ctl.signal.aborted ? "the token endpoint did not answer" : "the token endpoint is unreachable");
  } finally {
    clearTimeout(timer);
  }
  if (r.status === 401 || r.status === 403) throw new TokenFetchError(`the token endpoint refused (${r.status}): sign in again`);
  if (!r.ok) throw new TokenFetchError(`the token endpoint failed (${r.status})`);
  let token = body.trim();
  if ((r.headers.get("content-type") ?? "").includes("json") || token.startsWith("{")) {
    try {
      const j: unknown = JSON.parse(token);
      const o = (j ?? {}) as { token?: unknown; access_token?: unknown };
      token = typeof o.token === "string" ? o.token : typeof o.access_token === "string" ? o.access_token : "";
    } catch {
      token = "";
    }
  }
  if (!looksLikeToken(token)) throw new TokenFetchError("the token endpoint answered no token");
  return token;
}

/** What the session needs from the page: the connection and the token store. */
export interface SessionHost {
  /** Sends Authenticate on the live connection; its request id, or 0 without a connection. */
  authenticate(token: string): number;
  /** Starts connecting again (after a close for the credentials). */
  reconnect(): void;
  /** Keeps the token for the next connections (session storage). */
  store(token: string): void;
  state(): ConnState;
}

/**
 * - none: not signed in (connecting, or an anonymous feed)
 * - ok: signed in; a refresh or a warning is scheduled (if the token expires)
 * - refreshing: asking the token endpoint, or waiting for the feed's answer, or between retries
 * - expiring: the banner: the token is running out and no fresh one came
 * - signin: the connection was closed for its credentials; the sign-in form
 */
export type SessionPhase = "none" | "ok" | "refreshing" | "expiring" | "signin";

export class Session {
  phase: SessionPhase = "none";
  subject = "";
  /** The token's exp as the feed said it (Unix ms), 0: none. */
  expiresMs = 0;
  /** Why the banner or the form is shown (a refusal, the endpoint's failure), for people. */
  reason = "";
  /** Why the connection was closed (the sign-in form's headline): "your token expired", the feed's reason. */
  signinReason = "";
  /** When the banner was first shown for the current token (Unix ms), 0: not shown. */
  warnedAtMs = 0;
  /** Tokens we presented (refreshes, pastes) that the feed accepted on a live connection. */
  refreshes = 0;
  /** Attempts of the current refresh. */
  attempts = 0;
  /** Bumped on every change, for the painter. */
  version = 0;

  private timer: unknown;
  /** Request id of the Authenticate carrying a token we presented, waiting for its answer. */
  private pendingId = 0;
  /** Whether the pending token came from the endpoint (a refresh) or from a person (a paste). */
  private pendingFromEndpoint = false;
  /** After a close for the credentials, the endpoint was asked once already. */
  private triedAfterClose = false;
  private refreshing = false;

  constructor(
    private readonly host: SessionHost,
    private readonly timers: Timers,
    /** Gets a fresh token from the operator's token endpoint; undefined: there is none. */
    readonly getToken?: () => Promise<string>,
  ) {}

  private changed(): void {
    this.version++;
  }

  /**
   * The feed accepted a token (Authenticated). A token from the endpoint that expires no later
   * than the one in force is no refresh (an endpoint handing out the same token again): that
   * counts as a failed attempt, or the page would ask again ever sooner before exp.
   */
  authenticated(subject: string, expiresMs: number, requestId: number): void {
    const ours = requestId !== 0 && requestId === this.pendingId;
    const noLater = ours && this.pendingFromEndpoint && expiresMs > 0 && expiresMs <= this.expiresMs;
    // A reconnect signing in with the token that is running out: the banner stays.
    if (!ours && this.phase === "expiring" && expiresMs === this.expiresMs && subject === this.subject) return;
    if (ours && !noLater) this.refreshes++;
    this.subject = subject;
    this.expiresMs = expiresMs;
    this.pendingId = 0;
    this.refreshing = false;
    this.triedAfterClose = false;
    this.timers.clearTimeout(this.timer);
    if (noLater) {
      this.failed("the token endpoint gave no later token");
      return;
    }
    this.phase = "ok";
    this.reason = "";
    this.warnedAtMs = 0;
    this.attempts = 0;
    this.schedule();
    this.changed();
  }

  /**
   * The feed refused a token we presented on a live connection (Error UNAUTHENTICATED or
   * NOT_ENTITLED answering its Authenticate); the current token stays in force until its exp.
   * Returns whether requestId was one of ours.
   */
  refused(requestId: number, message: string): boolean {
    if (requestId === 0 || requestId !== this.pendingId) return false;
    this.pendingId = 0;
    this.timers.clearTimeout(this.timer);
    if (this.pendingFromEndpoint) {
      this.failed(message);
    } else {
      this.reason = `the pasted token was refused: ${message}`;
      this.phase = this.phase === "signin" ? "signin" : "expiring";
      if (this.warnedAtMs === 0) this.warnedAtMs = this.timers.now();
      this.schedule();
    }
    this.changed();
    return true;
  }

  /**
   * The connection was closed for its credentials (4005 expired, 4006 revoked, 4501): ask for a
   * sign-in. After 4006 the token in hand is refused for good; the endpoint may still hand out a
   * newer one (a subject's revocation spares tokens issued after it: PROTOCOL.md §2.6).
   */
  closed(code: number, reason: string): void {
    // A fetch from the endpoint still in flight goes on: its token starts a new connection.
    this.timers.clearTimeout(this.timer);
    this.pendingId = 0;
    this.phase = "signin";
    this.reason = this.signinReason =
      code === 4005 ? "your token expired" : code === 4006 ? "your token was revoked" : reason || "the feed refused the token";
    this.changed();
    if (this.getToken && !this.triedAfterClose) {
      this.triedAfterClose = true;
      void this.fromEndpoint();
    }
  }

  /** A token pasted by the user: checked for shape, then presented. Returns an error for people, or "". */
  paste(raw: string): string {
    const token = raw.trim().replace(/^Bearer\s+/i, "");
    if (!looksLikeToken(token)) return "that is not a token (a JWT: three parts separated by dots)";
    this.present(token, false);
    return "";
  }

  /** Asks the token endpoint now (the banner's and the form's button). */
  retry(): void {
    if (!this.getToken || this.refreshing) return;
    this.attempts = 0;
    void this.fromEndpoint();
  }

  /** Hands a token to the connection: in band on a live one, else for the next one. */
  private present(token: string, fromEndpoint: boolean): void {
    this.host.store(token);
    this.pendingFromEndpoint = fromEndpoint;
    const st = this.host.state();
    if (st === "connected") {
      this.pendingId = this.host.authenticate(token);
      if (this.pendingId !== 0) {
        // No answer in time counts as a failure (the connection may be going).
        this.timers.clearTimeout(this.timer);
        this.timer = this.timers.setTimeout(() => {
          if (this.pendingId === 0) return;
          this.pendingId = 0;
          if (fromEndpoint) this.failed("the feed did not answer the refresh");
        }, answerTimeoutMs);
        return;
      }
    }
    // Not connected: the next connection signs in with it. After a close for the credentials
    // nothing is connecting: start again.
    this.pendingId = 0;
    if (st === "closed") this.host.reconnect();
  }

  /** Schedules the refresh (with an endpoint) or the banner (without) for the current token. */
  private schedule(): void {
    this.timers.clearTimeout(this.timer);
    if (this.expiresMs <= 0 || this.phase === "signin") return;
    const life = this.expiresMs - this.timers.now();
    if (this.getToken) {
      if (this.phase === "expiring") return; // the banner is up; its button asks again
      this.timer = this.timers.setTimeout(() => void this.fromEndpoint(), refreshDelay(life));
    } else if (this.phase !== "expiring") {
      this.timer = this.timers.setTimeout(() => this.warn("no token endpoint is configured"), warnDelay(life));
    }
  }

  /** One attempt at getting a token from the endpoint and presenting it. */
  private async fromEndpoint(): Promise<void> {
    if (!this.getToken || this.refreshing) return;
    this.refreshing = true;
    this.attempts++;
    if (this.phase === "ok") this.phase = "refreshing";
    this.changed();
    let token: string;
    try {
      token = await this.getToken();
    } catch (e) {
      this.refreshing = false;
      this.failed(e instanceof Error ? e.message : String(e));
      return;
    }
    this.refreshing = false;
    this.present(token, true);
    this.changed();
  }

  /** A refresh attempt failed: retry after a while if that still comes before exp, else warn. */
  private failed(why: string): void {
    this.reason = why;
    if (this.phase === "signin") {
      this.changed();
      return;
    }
    const wait = retryDelaysMs[this.attempts - 1];
    if (wait !== undefined && this.timers.now() + wait < this.expiresMs - retryMarginMs) {
      this.phase = "refreshing";
      this.timers.clearTimeout(this.timer);
      this.timer = this.timers.setTimeout(() => void this.fromEndpoint(), wait);
    } else {
      this.warn(why);
    }
    this.changed();
  }

  private warn(why: string): void {
    if (this.phase === "signin") return;
    this.phase = "expiring";
    this.reason = why;
    if (this.warnedAtMs === 0) this.warnedAtMs = this.timers.now();
    this.changed();
  }
}
