// Replay sessions (PROTOCOL.md §18): formatting of ReplayStatus for the banner, and the
// arithmetic of seeking. Times are Unix nanoseconds as bigint, as on the wire.

import { ReplayState, type ReplayStatus } from "@tickwire/client";

/** Speeds offered by the banner; 0 is "as fast as possible". */
export const replaySpeeds = [0.5, 1, 2, 5, 10, 0] as const;

const p2 = (n: number) => String(n).padStart(2, "0");

/** "2026-11-22 06:19:37.529 UTC" (ms: 3 digits, or none with ms = false); "—" for 0. */
export function formatUtc(ns: bigint, ms = true): string {
  if (ns <= 0n) return "—";
  const d = new Date(Number(ns / 1_000_000n));
  const date = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
  const time = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  return `${date} ${time}${ms ? `.${String(d.getUTCMilliseconds()).padStart(3, "0")}` : ""} UTC`;
}

/** The window, "2026-11-22 06:19:07 → 06:19:32 UTC" (the date once when both ends share it). */
export function formatWindow(fromNs: bigint, toNs: bigint): string {
  const a = formatUtc(fromNs, false);
  const b = formatUtc(toNs, false);
  if (a === "—" || b === "—") return `${a} → ${b}`;
  return a.slice(0, 10) === b.slice(0, 10) ? `${a.slice(0, -4)} → ${b.slice(11)}` : `${a.slice(0, -4)} → ${b}`;
}

export function stateLabel(s: ReplayState): string {
  switch (s) {
    case ReplayState.RUNNING:
      return "running";
    case ReplayState.PAUSED:
      return "paused";
    case ReplayState.FINISHED:
      return "finished";
    default:
      return "unknown";
  }
}

/** "max" for 0 (as fast as possible), else "0.5×", "1×", "10×". */
export function speedLabel(speed: number): string {
  if (!(speed > 0)) return "max";
  return `${Number(speed.toFixed(2))}×`;
}

/** Where the clock is in the window, 0..1. */
export function progress(st: Pick<ReplayStatus, "clockNs" | "fromNs" | "toNs">): number {
  const span = st.toNs - st.fromNs;
  if (span <= 0n) return 0;
  const done = st.clockNs - st.fromNs;
  if (done <= 0n) return 0;
  if (done >= span) return 1;
  return Number((done * 1_000_000n) / span) / 1_000_000;
}

/** "0:12 / 0:25": replay time elapsed in the window and its length (h:mm:ss past an hour). */
export function formatElapsed(st: Pick<ReplayStatus, "clockNs" | "fromNs" | "toNs">): string {
  const dur = (ns: bigint) => {
    const s = ns > 0n ? Number(ns / 1_000_000_000n) : 0;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}:${p2(m)}:${p2(s % 60)}` : `${m}:${p2(s % 60)}`;
  };
  const span = st.toNs - st.fromNs;
  let done = st.clockNs - st.fromNs;
  if (done > span) done = span;
  return `${dur(done)} / ${dur(span)}`;
}

/** The venue time at a fraction (0..1, clamped) of the window. */
export function seekAt(st: Pick<ReplayStatus, "fromNs" | "toNs">, fraction: number): bigint {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  return st.fromNs + ((st.toNs - st.fromNs) * BigInt(Math.round(f * 1_000_000))) / 1_000_000n;
}

/**
 * Parses what was typed into the seek box, as UTC: "HH:MM", "HH:MM:SS" or "HH:MM:SS.mmm" on the
 * day of the replay clock (or of the window start), or a full "YYYY-MM-DD HH:MM:SS" (also with
 * a "T" and a "Z"). Returns the time in Unix ns, or a message for a bad entry or one outside
 * the window.
 */
export function parseSeek(text: string, st: Pick<ReplayStatus, "clockNs" | "fromNs" | "toNs">): bigint | string {
  const s = text.trim().replace(/\s*UTC$/i, "").replace(/Z$/i, "");
  const m = /^(?:(\d{4})-(\d{2})-(\d{2})[T ])?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(s);
  if (!m) return "enter a UTC time like 06:19:30 or 2026-11-22 06:19:30";
  const [, y, mo, d, hh, mi, ss, frac] = m;
  let dayMs: number;
  if (y) {
    dayMs = Date.UTC(Number(y), Number(mo) - 1, Number(d));
  } else {
    const ref = new Date(Number((st.clockNs > 0n ? st.clockNs : st.fromNs) / 1_000_000n));
    dayMs = Date.UTC(ref.getUTCFullYear(), ref.getUTCMonth(), ref.getUTCDate());
  }
  const h = Number(hh);
  const min = Number(mi);
  const sec = Number(ss ?? "0");
  if (h > 23 || min > 59 || sec > 59) return "not a time of day";
  const ms = dayMs + ((h * 60 + min) * 60 + sec) * 1000 + Number((frac ?? "0").padEnd(3, "0"));
  const ns = BigInt(ms) * 1_000_000n;
  if (ns < st.fromNs || ns > st.toNs) return `outside the window (${formatWindow(st.fromNs, st.toNs)})`;
  return ns;
}

/**
 * The trades of a replay's replica that belong on screen at clockNs. The feed keeps an
 * instrument's trade history across a new epoch (right for live data); after a seek back, the
 * NEW_EPOCH snapshot therefore still holds trades of the old run that lie after the new clock,
 * and the new run replays them again as the clock passes. Display only (the replica stays as
 * the feed's): trades later than the clock are left out, and a trade seen twice (same time,
 * price, size and side) is shown once, as its newer copy.
 */
export function visibleTrades<T extends { venueTimeNs: bigint; trade?: { price: bigint; size: bigint; side: number } }>(trades: readonly T[], clockNs: bigint): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  for (let i = trades.length - 1; i >= 0; i--) {
    const r = trades[i]!;
    if (clockNs > 0n && r.venueTimeNs > clockNs) continue;
    const t = r.trade;
    const key = `${r.venueTimeNs}/${t?.price}/${t?.size}/${t?.side}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out.reverse();
}

/** The bars of a replay's replica up to the clock (see visibleTrades: after a seek back, the
 * old run's later bars are still held until the new run's replace them). */
export function visibleCandles<C extends { startS: bigint }>(candles: readonly C[], clockNs: bigint): readonly C[] {
  if (clockNs <= 0n) return candles;
  const s = clockNs / 1_000_000_000n;
  return candles.some((c) => c.startS > s) ? candles.filter((c) => c.startS <= s) : candles;
}

/** What the page knows of who is watching, for mayControl. */
export interface Viewer {
  /** Whether the feed said who is signed in (Authenticated); false: not signed in (an anonymous policy). */
  signedIn: boolean;
  /** Authenticated.subject. */
  subject: string;
  /** The token's payload grants replay_control (read for display only: readGrant). */
  replayControl: boolean;
}

/**
 * Whether this viewer may pause, seek and change the speed of the session (PROTOCOL.md §18): a
 * token granted replay_control, or a signed-in subject the session names in
 * ReplayStatus.controllers. false: watching only. undefined: not known (not signed in: what an
 * anonymous policy grants is not visible to the page; the feed's answer will tell). For display
 * only: the feed decides, and refuses a watcher's ReplayControl with NOT_ENTITLED.
 */
export function mayControl(st: Pick<ReplayStatus, "controllers"> | undefined, v: Viewer): boolean | undefined {
  if (v.replayControl) return true;
  if (!v.signedIn) return undefined;
  if (!st) return undefined;
  return st.controllers.includes(v.subject);
}

/** "alice, bob" or "tokens with replay_control only": who controls the session, for the watcher's note. */
export function controllersText(st: Pick<ReplayStatus, "controllers"> | undefined): string {
  const c = st?.controllers ?? [];
  return c.length > 0 ? `${c.join(", ")} (and tokens with replay_control)` : "tokens with replay_control only";
}

// Opening a replay from the dashboard (issue 12): the form asks the feed to start the session
// (POST /api/replays, when the feed allows it: feed --replay-start) and goes to it; the exact
// tickctl replay command and the link to watch it stay there as the alternative (a feed that
// does not start replays answers 501: an operator runs the command).

const sessionRe = /^[a-z0-9][a-z0-9-]{0,63}$/;
const instrumentRe = /^[^\s:,]+:[^\s,]+$/;

/** A random session id like tickctl's default: "r-" and 8 hex digits. */
export function newSessionId(rand: () => number = Math.random): string {
  let s = "r-";
  for (let i = 0; i < 8; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

/**
 * A time typed into the form, in Unix ms: relative to now with a sign ("-2m", "-1h30m", "-90s",
 * as tickctl takes them), "now", a UTC time of day ("16:58" or "16:58:30", today; yesterday if
 * that is still to come), or a UTC date and time ("2026-12-02 16:58:30", also with a "T" and a
 * "Z"). A message for anything else.
 */
export function parseWhen(text: string, nowMs: number): number | string {
  const s = text.trim().replace(/\s*UTC$/i, "");
  if (/^now$/i.test(s)) return nowMs;
  const rel = /^([+-])((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$/.exec(s);
  if (rel) {
    let ms = 0;
    for (const [, n, u] of rel[2]!.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) ms += Number(n) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[u as "h" | "m" | "s" | "ms"];
    return nowMs + (rel[1] === "-" ? -ms : ms);
  }
  const m = /^(?:(\d{4})-(\d{2})-(\d{2})[T ])?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z?$/i.exec(s);
  if (!m) return 'a time like -2m, -1h30m, now, 16:58:30 or 2026-12-02 16:58:30 (UTC)';
  const [, y, mo, d, hh, mi, ss, frac] = m;
  if (Number(hh) > 23 || Number(mi) > 59 || Number(ss ?? 0) > 59) return "not a time of day";
  const tod = ((Number(hh) * 60 + Number(mi)) * 60 + Number(ss ?? 0)) * 1000 + Number((frac ?? "0").padEnd(3, "0"));
  if (y) return Date.UTC(Number(y), Number(mo) - 1, Number(d)) + tod;
  const n = new Date(nowMs);
  const today = Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate()) + tod;
  return today > nowMs ? today - 86_400_000 : today;
}

/** What the form asks for, as typed. */
export interface ReplayFormInput {
  from: string;
  to: string;
  speed: number;
  /** Comma- or space-separated instrument ids; empty: all. */
  instruments: string;
  session: string;
}

/** A replay to start: the window in Unix ms (whole seconds), speed, instruments, session. */
export interface ReplayPlan {
  fromMs: number;
  toMs: number;
  speed: number;
  instruments: string[];
  session: string;
}

/** Checks the form and resolves its times against now; a message for the first problem. */
export function planReplay(f: ReplayFormInput, nowMs: number): ReplayPlan | string {
  const from = parseWhen(f.from, nowMs);
  if (typeof from === "string") return `from: ${from}`;
  const to = f.to.trim() === "" ? nowMs : parseWhen(f.to, nowMs);
  if (typeof to === "string") return `to: ${to}`;
  const fromMs = Math.floor(from / 1000) * 1000;
  const toMs = Math.floor(to / 1000) * 1000;
  if (fromMs > nowMs) return "from: in the future (a replay plays stored events)";
  if (toMs <= fromMs) return "to must be after from";
  if (!(f.speed >= 0 && f.speed <= 10000)) return "speed: 0 (as fast as possible) to 10000";
  const instruments = f.instruments.split(/[\s,]+/).filter((x) => x !== "");
  const bad = instruments.find((x) => !instrumentRe.test(x));
  if (bad !== undefined) return `instruments: "${bad}" is not venue:SYMBOL`;
  const session = f.session.trim();
  if (!sessionRe.test(session)) return "session: lower-case letters, digits and dashes (up to 64), starting with a letter or digit";
  return { fromMs, toMs, speed: f.speed, instruments, session };
}

/** "2026-12-02T16:58:30Z": RFC3339 as tickctl takes it. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

/** Quotes a shell word when it needs it. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that starts the replay (run by an operator, or anyone with tickctl and NATS
 * access), with the window resolved to absolute UTC times so that it replays what was picked
 * whenever it is run. The signed-in subject is named a controller, so its opener may pause,
 * seek and change the speed even without replay_control.
 */
export function replayCommand(p: ReplayPlan, feedOrigin: string, controller = ""): string {
  const args = ["tickctl", "replay", "--from", rfc3339(p.fromMs), "--to", rfc3339(p.toMs), "--speed", String(p.speed), "--session", p.session];
  if (p.instruments.length > 0) args.push("--instrument", p.instruments.join(","));
  if (controller !== "") args.push("--controller", controller);
  args.push("--feed-url", feedOrigin);
  return args.map(shellWord).join(" ");
}

/** The dashboard's link to watch the session. */
export function replayLink(origin: string, session: string): string {
  return `${origin}/?replay=${encodeURIComponent(session)}`;
}

/** The path of POST /api/replays (docs/PROTOCOL.md §2.4). */
export const replayStartPath = "/api/replays";

/** The JSON body of POST /api/replays: the window as RFC 3339 UTC; instruments only when some are picked. */
export interface ReplayStartBody {
  from: string;
  to: string;
  speed: number;
  instruments?: string[];
  session?: string;
}

/** The request that starts the planned replay in the feed, with the page's token as a Bearer header. */
export function replayStartRequest(p: ReplayPlan, token: string | null): { url: string; init: { method: "POST"; headers: Record<string, string>; body: string } } {
  const body: ReplayStartBody = { from: rfc3339(p.fromMs), to: rfc3339(p.toMs), speed: p.speed };
  if (p.instruments.length > 0) body.instruments = p.instruments;
  if (p.session !== "") body.session = p.session;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  return { url: replayStartPath, init: { method: "POST", headers, body: JSON.stringify(body) } };
}

/**
 * The feed's answer to POST /api/replays: started (go to url: a path on this origin), not
 * enabled (501: the feed does not start replays; the command is the way), or refused (the
 * message to show in the form).
 */
export type ReplayStartAnswer =
  | { kind: "started"; session: string; url: string }
  | { kind: "not_enabled"; message: string }
  | { kind: "refused"; status: number; code: string; message: string };

/** Reads the answer: its status, its body as text, its Retry-After header (429). */
export function replayStartAnswer(status: number, body: string, retryAfter: string | null = null): ReplayStartAnswer {
  let json: { session?: unknown; url?: unknown; code?: unknown; message?: unknown } = {};
  try {
    const v: unknown = JSON.parse(body);
    if (v && typeof v === "object") json = v as typeof json;
  } catch {
    // 401 and the like answer plain text
  }
  const str = (v: unknown) => (typeof v === "string" ? v : "");
  const text = (str(json.message) || body.trim()).slice(0, 300);
  const code = str(json.code); // the /api error body: {"code", "message"} (PROTOCOL.md §2.4)
  if (status === 201) {
    const session = str(json.session);
    if (!sessionRe.test(session)) return { kind: "refused", status, code: "bad_answer", message: `the feed answered 201 without a session id: ${body.trim().slice(0, 120)}` };
    // Only a path on this origin is followed; anything else, the session's own link.
    const u = str(json.url);
    const url = /^\/(?!\/)[^\s#]*$/.test(u) ? u : `/?replay=${encodeURIComponent(session)}`;
    return { kind: "started", session, url };
  }
  // 501's message says what the form says next (an operator runs tickctl replay): not repeated.
  if (status === 501) return { kind: "not_enabled", message: "This feed does not start replays (501)." };
  let message: string;
  switch (status) {
    case 400:
      message = `Refused (400): ${text || "bad request"}`;
      break;
    case 401:
      message = `Not signed in, or the token was refused (401)${text ? `: ${text}` : ""}. Sign in again.`;
      break;
    case 403:
      message = `Not entitled (403): ${text || "this token may not start replays"}`;
      break;
    case 409:
      message = `${text || "that session id is taken"} (409): pick another session id.`;
      break;
    case 429: {
      const s = Number(retryAfter);
      message = `${text || "too many replay sessions"} (429)${retryAfter !== null && retryAfter.trim() !== "" && Number.isFinite(s) && s > 0 ? `; try again in ${s} s` : ""}.`;
      break;
    }
    default:
      message = `The feed did not start the replay (HTTP ${status})${text ? `: ${text}` : ""}`;
  }
  return { kind: "refused", status, code: code || String(status), message };
}

/**
 * Where the page goes once the feed started the session: the answer's path on this origin,
 * with the page's token handed over in the fragment (#token=..., as `make run` prints it; the
 * page stores it and strips it from the address bar at once, and a browser never sends a
 * fragment), so that the replay page signs in as this one did even where session storage is
 * off (the token then lives in the page's memory only).
 */
export function replayStartTarget(origin: string, url: string, token: string | null): string {
  return `${origin}${url}${token ? `#token=${encodeURIComponent(token)}` : ""}`;
}
