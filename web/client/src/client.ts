// The feed connection: the TypeScript counterpart of pkg/client in Go, used by the dashboard
// and by Node.js bots.
//
// It keeps the desired subscriptions and one Replica per subscribed instrument, survives
// disconnects (reconnect with jittered exponential backoff, then subscribe again, resuming every
// stream that was in sync from its position: PROTOCOL.md §13.2), learns handles from Subscribed,
// and asks for a Resync of one channel of one instrument, once, when its chain or checksum
// breaks, exactly as the Go SDK (pkg/client: attach, detach, onSubscribed).
//
// While disconnected, every stream keeps its data and position but is stale (not in sync for
// the views). On reconnect, Subscribe carries a resume position for each stream that was in sync
// (not waiting for a snapshot); Subscribed.resumed names those the feed continues (their missed
// deltas follow, by the usual rule, from the kept position); every other channel waits for its
// snapshot (HISTORY_GONE, NEW_EPOCH or SUBSCRIBE), whatever replica of the feed answers.
//
// Entitlements (PROTOCOL.md §2.6): a stream the token does not cover is refused with
// ERROR_CODE_NOT_ENTITLED, and a refresh that narrows the grant ends streams with Unsubscribed
// (answering the Authenticate) and one such error. The client keeps those streams wanted but
// marks them not entitled (Subscription.denied) instead of forgetting them, so the views can say
// so; it does not ask for them again on that connection, except once after each refresh (a new
// grant may cover them). A connection closed for its credentials (4005 token expired, 4006
// token revoked, 4501 unauthorized) is not reconnected: the app asks its user to sign in
// (onSignInNeeded) and calls start again.
//
// It speaks the binary subprotocol "tickwire.v1.proto": one ServerFrame per WebSocket message,
// decoded with the TypeScript generated from proto/ (int64 arrives as bigint).
//
// What happens after a connection ends comes from one table (closes.ts, tested against
// proto/testdata/disconnects.json): "stop", "backoff" or "fresh_token". A connection the client
// closed itself (stop) is never reconnected, whatever its code.

import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { InstrumentInfo, Quote } from "./gen/tickwire/v1/market_pb.js";
import type { ReplayControl, ReplayStatus } from "./gen/tickwire/v1/replay_pb.js";
import {
  Channel,
  ClientMessageSchema,
  ErrorCode,
  ServerFrameSchema,
  SnapshotReason,
  StreamState,
  type CompactQuote,
  type Delta,
  type Error as FeedError,
  type ServerFrame,
  type Snapshot,
  type StreamStatus,
  type Subscribed,
  type TradeRecord,
  type Unsubscribed,
} from "./gen/tickwire/v1/stream_pb.js";
import type { Book } from "./book.js";
import { closeAction, handshakeAction, needsSignIn, reconnectable } from "./closes.js";
import { Replica, channelOfDelta, needsResync, validChannel, type Outcome } from "./replica.js";

/** The WebSocket subprotocol the client speaks: protobuf-encoded frames (PROTOCOL.md §3.1). */
export const subprotocol = "tickwire.v1.proto";

/**
 * Reconnect backoff floor, in ms (ClientOptions.backoffMin): as the Go SDK.
 */
export const backoffMin = 250;
/**
 * The default reconnect backoff cap, in ms (ClientOptions.backoffMax). The Go SDK waits up to
 * 30 s; a browser tab is one client watched by a person, not a fleet of bots, so the default cap
 * is 5 s: a restarted feed is back on screen within seconds, and a feed that is down for long
 * sees at most one attempt per tab every few seconds. Fleets of bots should pass 30000.
 */
export const backoffMax = 5000;
/** Three feed heartbeat intervals (5 s): a connection silent this long is dead. */
export const heartbeatTimeout = 15000;

/**
 * Bounds of one Subscribe: the feed takes at most 1000 instruments per command and closes the
 * connection (1009) on a message over 16 KiB, so long lists (and their resume positions) are
 * split well below that.
 */
export const maxSubscribeIds = 1000;
/** The bytes of one Subscribe the client aims to stay under (see maxSubscribeIds). */
export const maxSubscribeBytes = 12 * 1024;

/** A stream position for Subscribe.resume (StreamPosition). */
export interface ResumePosition {
  instrument: string;
  channel: Channel;
  epoch: bigint;
  seq: bigint;
}

/** One action of a ReplayControl: pause, resume, seekTimeNs or speed. */
export type ReplayAction = Exclude<ReplayControl["action"], { case: undefined }>;

/**
 * The wait before reconnect attempt n (0 for the first after a loss): uniform in
 * [min, min(max, min * 2^(n+1))], "full jitter" above a floor, as Options.backoff in Go.
 */
export function backoff(n: number, rand: () => number = Math.random, min = backoffMin, max = backoffMax): number {
  const ceil = n < 30 ? Math.min(max, min * 2 ** (n + 1)) : max;
  return min + Math.floor(rand() * (ceil - min + 1));
}

/** The channel names the feed uses in its messages (the token's "channels" claim). */
const channelNames: Record<string, Channel> = {
  quote: Channel.QUOTE,
  book: Channel.BOOK,
  trades: Channel.TRADES,
  candles: Channel.CANDLES,
  stats: Channel.STATS,
};

/** The channel's name as the feed and tokens spell it. */
export function channelName(ch: Channel): string {
  return Object.keys(channelNames).find((k) => channelNames[k] === ch) ?? `channel ${ch}`;
}

/**
 * The channels a NOT_ENTITLED error names ("not entitled to channels: trades, stats", as
 * PROTOCOL.md §2.6 writes it), or [] when the message names none.
 */
export function channelsOfMessage(msg: string): Channel[] {
  const m = /not entitled to channels?:\s*(.*)$/i.exec(msg);
  if (!m) return [];
  const out: Channel[] = [];
  for (const name of m[1]!.split(/[\s,]+/)) {
    const ch = channelNames[name.toLowerCase()];
    if (ch !== undefined && !out.includes(ch)) out.push(ch);
  }
  return out;
}

/** The symbol of a venue wildcard, "venue:*" (PROTOCOL.md §6.3); no instrument has it. */
export const venueWildcardSymbol = "*";

/**
 * The venue of a venue wildcard "venue:*" (a valid venue: 1..32 bytes of [a-z0-9_-]), or
 * undefined when id is not one. As wire.VenueWildcard in Go.
 */
export function venueWildcard(id: string): string | undefined {
  const i = id.indexOf(":");
  if (i < 0 || id.slice(i + 1) !== venueWildcardSymbol) return undefined;
  const venue = id.slice(0, i);
  return /^[a-z0-9_-]{1,32}$/.test(venue) ? venue : undefined;
}

/** The venue of an instrument id, "venue:symbol" (the part before the first colon). */
function venueOf(id: string): string {
  const i = id.indexOf(":");
  return i < 0 ? id : id.slice(0, i);
}

/**
 * A venue wildcard the client holds ("venue:*" in subscribe): what it asked for. Each instrument
 * the feed subscribes through it gets its own Subscription, with these channels and depth.
 */
export interface VenueWant {
  /** The channels of every subscribe of the wildcard so far. */
  readonly channels: Set<Channel>;
  /** The last subscribe's book depth. */
  depth: number;
}

/** Commands whose errors the client resolves later, by request id: what they asked for. */
interface SentCommand {
  kind: "subscribe" | "resync";
  ids: string[];
  channels: Channel[];
}
/** Bound of the commands remembered per connection (their errors come right after them). */
const maxRemembered = 256;

/**
 * The connection's state, as onState reports it: "connecting" (a WebSocket is opening),
 * "connected" (open: commands flow), "disconnected" (lost; a reconnect is scheduled) and
 * "closed" (stopped, or ended for good: not reconnecting on its own).
 */
export type ConnState = "connecting" | "connected" | "disconnected" | "closed";

/** The close event the client reads: the code and the reason (the browser's CloseEvent, ws's). */
export interface SocketCloseEvent {
  code: number;
  reason: string | { toString(): string };
}

/** A message event: data is an ArrayBuffer with binaryType "arraybuffer". */
export interface SocketMessageEvent {
  data: unknown;
}

/**
 * The part of a WebSocket the client uses: the browser's WebSocket and the `ws` package's both
 * have it. Tests plug in a fake through ClientOptions.newSocket.
 */
export interface SocketLike {
  binaryType: string;
  readonly protocol: string;
  onopen: ((ev: unknown) => unknown) | null;
  onclose: ((ev: SocketCloseEvent) => unknown) | null;
  onerror: ((ev: unknown) => unknown) | null;
  onmessage: ((ev: SocketMessageEvent) => unknown) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/**
 * A WebSocket constructor: `globalThis.WebSocket` in browsers (and Node with
 * --experimental-websocket or Node 22+), or the `ws` package's `WebSocket` in Node 20.
 * Loosely typed so that both fit.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

/** Clock and timers, replaceable in tests. */
export interface Timers {
  /** Unix milliseconds. */
  now(): number;
  /** Runs f once after ms; returns a handle for clearTimeout. */
  setTimeout(f: () => void, ms: number): unknown;
  /** Cancels a setTimeout by its handle. */
  clearTimeout(h: unknown): void;
}

/** How FeedClient connects. Only url is required. */
export interface ClientOptions {
  /** The feed's WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws` (`?replay=<id>` for a replay). */
  url: string;
  /**
   * The signed token to present, asked for on every (re)connect and sent as the first command
   * (Authenticate: a browser cannot set the Authorization header). None: connect anonymously.
   */
  token?: () => string | null | undefined;
  /**
   * Whether token() gives a fresh token when asked again (it reads a file or asks a token
   * endpoint). Then a connection closed for an expired or revoked token (4005, 4006: action
   * "fresh_token") is reconnected with backoff, asking token() again. Default false: the client
   * stops and calls onSignInNeeded, and the app calls start once it has a new token.
   */
  freshTokens?: boolean;
  /**
   * The WebSocket constructor (default `globalThis.WebSocket`). Node 20 has none without
   * --experimental-websocket: pass the `ws` package's, `import { WebSocket } from "ws"`.
   */
  WebSocket?: WebSocketConstructor;
  /** Makes the socket (default: `new WebSocket(url, protocols)`); for tests. */
  newSocket?: (url: string, protocols: string[]) => SocketLike;
  /**
   * Ask for quote deltas in the compact form (Subscribe.compact_quotes, PROTOCOL.md §8.1.1): a
   * third of the bytes. The client expands each CompactQuote against the quote it holds and
   * hands onDelta/onQuote the Delta it stands for, as the Go SDK does.
   */
  compactQuotes?: boolean;
  /**
   * Keep the instrument list current (ListInstruments.watch, PROTOCOL.md §6.3): every
   * connection's ListInstruments asks the feed to tell of every instrument listed later, which
   * the client hands to onInstrumentListed (and a listed one's new reference data to
   * onInstrument, subscribed or not). Default false: the list as the feed had it at connect.
   */
  watchInstruments?: boolean;
  /** Reconnect backoff floor in ms (default backoffMin, 250). */
  backoffMin?: number;
  /** Reconnect backoff cap in ms (default backoffMax, 5000; the Go SDK uses 30000). */
  backoffMax?: number;
  /** Clock and timers (default Date.now and the global timers); for tests. */
  timers?: Timers;
  /** Uniform random numbers in [0, 1) for the backoff jitter (default Math.random). */
  rand?: () => number;
}

/**
 * What changed an instrument's quote or book (onQuote, onBook): a snapshot or a delta (a compact
 * quote arrives expanded), and when its frame was sent and received.
 */
export interface Update {
  /** The snapshot applied, or undefined for a delta. */
  snapshot: Snapshot | undefined;
  /** The delta applied (its ingest_time_ns gives the latency from ingest), or undefined for a snapshot. */
  delta: Delta | undefined;
  /** When the frame that carried it was sent and received. */
  times: FrameTimes;
}

/**
 * A break in a stream, or a stream that lost data across a reconnect (onGap). reason:
 * - "gap": a delta did not follow on (a missed delta); "epoch": a delta of another epoch;
 *   "checksum": the book differs from the feed's after a delta or snapshot (CRC32 or the
 *   full-depth hash). The client sent one Resync; the snapshot answering it follows.
 * - "history_gone", "new_epoch", "not_resumed": after a reconnect the feed did not continue the
 *   stream from the position held (its history no longer reaches back, a new epoch, or another
 *   reason such as a book the feed is rebuilding) and sent a snapshot instead: what happened in
 *   between was missed. A stream resumed (Subscribed.resumed) lost nothing and reports nothing.
 */
export interface Gap {
  instrument: string;
  channel: Channel;
  reason: "gap" | "epoch" | "checksum" | "history_gone" | "new_epoch" | "not_resumed";
}

/** Times of one frame, in Unix milliseconds (floats, for latency figures). */
export interface FrameTimes {
  /** When the feed wrote the frame (send_time_ns), or 0. */
  sentMs: number;
  /** When the browser decoded it. */
  receivedMs: number;
}

/**
 * What the client tells the app or bot. Every method runs synchronously inside the socket
 * callback, after the client's own state changed: read the subscription's replica there, do not
 * keep the objects handed (the book is the live one).
 */
export interface ClientEvents {
  /** The connection's state changed (its status): detail says why, for people. */
  onState?(state: ConnState, detail: string): void;
  /** The instrument list the feed sent on this connection (filtered by the token). */
  onInstruments?(list: InstrumentInfo[]): void;
  /**
   * The instrument's quote changed: from its snapshot or a delta (a compact one expanded). The
   * quote is the one the replica holds, in sync with the feed.
   */
  onQuote?(id: string, quote: Quote, sub: Subscription, u: Update): void;
  /**
   * The instrument's book changed and checks out (checksum and full-depth hash): a snapshot or
   * a delta was applied. book is the replica's live book (best first each side); copy what you keep.
   */
  onBook?(id: string, book: Book, sub: Subscription, u: Update): void;
  /**
   * A new trade, from a delta (live, in order). The trades a snapshot carries (recent history,
   * some marked history) are not replayed here: they are in sub.replica.trades.
   */
  onTrade?(id: string, trade: TradeRecord, sub: Subscription): void;
  /** A stream lost continuity (see Gap); the client already asked for what repairs it. */
  onGap?(gap: Gap): void;
  /** After the subscription took m in: m.resumed are the channels continued from a position. */
  onSubscribed?(id: string, m: Subscribed, sub: Subscription): void;
  /** A snapshot was applied (and checks out): the stream is in sync from it. */
  onSnapshot?(id: string, ch: Channel, snap: Snapshot, sub: Subscription, t: FrameTimes): void;
  /** A delta was applied (a compact quote arrives here expanded). */
  onDelta?(id: string, ch: Channel, d: Delta, sub: Subscription, t: FrameTimes): void;
  /** A break in a stream: a Resync for it was just sent (or will be, for a bad snapshot). */
  onResync?(id: string, ch: Channel, why: Outcome): void;
  /**
   * The feed says a stream of ours waits for a snapshot (StreamStatus AWAITING_SNAPSHOT: today a
   * book whose copy on the feed broke, PROTOCOL.md §6.6, §19). The stream keeps its state but is
   * not live (Subscription.awaiting) until its next snapshot, which the feed sends unasked.
   */
  onStreamStatus?(id: string, ch: Channel, st: StreamStatus, sub: Subscription): void;
  /** An Error message from the feed (answering a command: see its requestId and code). */
  onError?(e: FeedError): void;
  /**
   * New reference data of a subscribed instrument (a halt, a resumption, a close); with
   * ClientOptions.watchInstruments, of any instrument listed on this connection.
   */
  onInstrument?(info: InstrumentInfo): void;
  /**
   * With ClientOptions.watchInstruments: an instrument the feed listed after this connection's
   * list (a venue connected late, a consolidated instrument that started), within the token's
   * entitlements. Once per instrument and connection; one listed at the moment of the list may
   * come here just before the list that has it too (PROTOCOL.md §6.3).
   */
  onInstrumentListed?(info: InstrumentInfo): void;
  /** Only on a connection to a replay session (/ws?replay=<session>). */
  onReplayStatus?(st: ReplayStatus): void;
  /**
   * A ReplayControl of ours was refused with NOT_ENTITLED ("watching only: ..."): only the
   * session's controllers and tokens with replay_control control it (PROTOCOL.md §18).
   */
  onReplayControlRefused?(e: FeedError): void;
  /**
   * The feed accepted the token: who is signed in, and until when (Unix ms; 0: no expiry).
   * requestId is the Authenticate's (authenticate returns it).
   */
  onAuthenticated?(subject: string, expiresMs: number, requestId: number): void;
  /**
   * Streams of an instrument are not entitled: the channels named (all of the instrument's
   * when instrument is true). Sent on a refusal and when a refresh narrowed the grant.
   */
  onNotEntitled?(id: string, channels: Channel[], instrument: boolean): void;
  /**
   * The feed closed the connection for its credentials (4005, 4006, 4501: needsSignIn) and the
   * client does not reconnect (with freshTokens it does after 4005 and 4006, without calling
   * this): call start once there is a new token.
   */
  onSignInNeeded?(code: number, reason: string): void;
}

/** One instrument the client holds: what to ask for, and the replica. */
export class Subscription {
  /** The instrument's streams as the feed sent them: quote, book, trades, candles, stats. */
  readonly replica = new Replica();
  /** The instrument's reference data (scales, status), from Subscribed and InstrumentUpdate. */
  info: InstrumentInfo | undefined;
  /** Desired channels, by Channel value. */
  readonly channels = new Set<Channel>();
  /** The book depth asked for (0: the feed's smallest). */
  depth = 0;
  /** Channels with a Resync sent and no snapshot since. */
  readonly resync = new Set<Channel>();
  /**
   * Channels added by subscribe and not yet given a snapshot: deltas still in flight from an
   * earlier subscription of the channel must not be applied to its old state.
   */
  readonly await = new Set<Channel>();
  /**
   * Channels whose state was kept from a lost connection, to resume from: not in sync until the
   * next connection resumes them (Subscribed.resumed) or sends a snapshot.
   */
  readonly stale = new Set<Channel>();
  /** Resyncs asked for this instrument (breaks seen). */
  resyncs = 0;
  /**
   * Channels the feed said wait for a snapshot (StreamStatus AWAITING_SNAPSHOT), with its reason
   * for people: the state held is kept but is not live, until the stream's next snapshot (the
   * feed sends it unasked: no Resync from us). Per connection: a new Subscribed or a lost
   * connection clears it (the feed says it again after Subscribed if the stream still waits).
   */
  readonly awaiting = new Map<Channel, string>();
  /** The token does not cover the instrument: none of its channels is served. */
  instrumentDenied = false;
  /** Channels the token does not cover (refused, or ended by a refresh). */
  readonly notEntitled = new Set<Channel>();
  /** @param id the instrument id, "venue:symbol" */
  constructor(readonly id: string) {}

  /** In sync for the views: the replica follows the feed now (View.Streams[ch].Synced in Go). */
  inSync(ch: Channel): boolean {
    return this.replica.synced(ch) && !this.await.has(ch) && !this.stale.has(ch) && !this.awaiting.has(ch) && !this.denied(ch);
  }

  /** Whether the feed refused the channel (or the whole instrument) to this token. */
  denied(ch: Channel): boolean {
    return this.instrumentDenied || this.notEntitled.has(ch);
  }

  /** Whether every wanted channel is refused: nothing of the instrument will come. */
  allDenied(): boolean {
    if (this.instrumentDenied) return true;
    if (this.channels.size === 0) return false;
    for (const ch of this.channels) if (!this.notEntitled.has(ch)) return false;
    return true;
  }

  /** The channels to ask the feed for: wanted and not refused. */
  askable(): Channel[] {
    return this.instrumentDenied ? [] : [...this.channels].filter((ch) => !this.notEntitled.has(ch)).sort((a, b) => a - b);
  }
}

/**
 * The feed connection. `start()` connects and keeps reconnecting (jittered backoff) until
 * `stop()` or a close that must not be retried; `subscribe()` says what to follow, sent now and
 * again (with resume positions) on every reconnect. Events go to the ClientEvents given.
 *
 * ```ts
 * const client = new FeedClient({ url, token: () => token, WebSocket }, {
 *   onQuote: (id, q, sub) => console.log(id, formatDecimal(q.bidPrice, sub.info?.priceScale ?? 0)),
 * });
 * client.subscribe(["synthetic:ACME"], [Channel.QUOTE]);
 * client.start();
 * ```
 */
export class FeedClient {
  /**
   * Every instrument wanted, by id, with its replica and stream flags: those named, and those
   * the feed subscribed through a venue wildcard (each from its Subscribed on).
   */
  readonly subs = new Map<string, Subscription>();
  /** The venue wildcards held ("venue:*" in subscribe), by venue. */
  readonly venues = new Map<string, VenueWant>();
  /** The connection's state (onState reports each change). */
  state: ConnState = "disconnected";
  /** Counters (frames, deltas, gaps, resyncs, reconnects, ...), for status displays and logs. */
  readonly stats = {
    frames: 0,
    bytes: 0,
    deltas: 0,
    snapshots: 0,
    stale: 0,
    gaps: 0,
    checksum: 0,
    epochs: 0,
    resyncs: 0,
    connects: 0,
    decodeErrors: 0,
    /** Compact quotes expanded and applied (ClientOptions.compactQuotes). */
    compactQuotes: 0,
    /** Streams continued from their position after a reconnect, without a snapshot. */
    resumed: 0,
    /** Snapshots that replaced a stream because the feed could not continue it on resume. */
    historyGone: 0,
    /** Snapshots of a new epoch (continuity lost upstream, or a replay seek). */
    newEpochs: 0,
    serverErrors: 0,
    /** StreamStatus AWAITING_SNAPSHOT received: streams the feed stopped until a snapshot. */
    awaiting: 0,
  };
  /** Whether the last connection attempt got as far as the WebSocket opening. */
  opened = false;
  /**
   * Channels the token lacks for every instrument (a Subscribe's channels were refused with
   * NOT_ENTITLED): not asked for again until a refresh or a new connection. For the views.
   */
  readonly deniedChannels = new Set<Channel>();

  private readonly opts: Required<Omit<ClientOptions, "WebSocket">>;
  private sock: SocketLike | undefined;
  private byHandle = new Map<number, Subscription>();
  private attempt = 0;
  private gotFrame = false;
  private retryTimer: unknown;
  private deadTimer: unknown;
  private lastFrameAt = 0;
  private stopped = false;
  private nextId = 1;
  /** Subscribe and Resync commands of this connection by request id, newest last. */
  private sent = new Map<number, SentCommand>();
  /** Authenticate commands of this connection: a reply to one of them answers a sign-in or refresh. */
  private authIds = new Set<number>();
  /** Whether this connection got an Authenticated: a later one answers a refresh. */
  private signedIn = false;
  /** Instruments the feed listed on this connection (the list is filtered by the token). */
  private listed: Set<string> | undefined;
  /** Instruments handed to onInstrumentListed on this connection (ListInstruments.watch). */
  private announced = new Set<string>();
  /** ReplayControl commands of this connection by request id (a NOT_ENTITLED answering one: watching only). */
  private replayIds = new Set<number>();
  /** The HTTP status a refused handshake answered (ws reports it; browsers do not), or 0. */
  private handshakeStatus = 0;

  constructor(
    opts: ClientOptions,
    private readonly ev: ClientEvents = {},
  ) {
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.opts = {
      newSocket: (url, protocols) => {
        if (!WS) throw new Error("no WebSocket: pass ClientOptions.WebSocket (Node 20: the ws package's WebSocket)");
        return new WS(url, protocols) as SocketLike;
      },
      timers: {
        now: () => Date.now(),
        setTimeout: (f, ms) => setTimeout(f, ms),
        clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      },
      rand: Math.random,
      token: () => undefined,
      freshTokens: false,
      compactQuotes: false,
      watchInstruments: false,
      backoffMin,
      backoffMax,
      ...opts,
    };
  }

  /** Connects, and keeps reconnecting until stop (or a close that must not be retried). */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  /**
   * Closes the connection (1000) and does not reconnect. Subscriptions and their data are kept:
   * start connects again and resumes them.
   */
  stop(): void {
    this.stopped = true;
    this.opts.timers.clearTimeout(this.retryTimer);
    this.opts.timers.clearTimeout(this.deadTimer);
    this.sock?.close(1000, "");
    this.setState("closed", "stopped");
  }

  /**
   * Adds channels of instruments to the desired subscriptions (sent now if connected, and on
   * every reconnect). Channels already held are kept; with the book, depth replaces its depth.
   *
   * An id may be a venue wildcard, "venue:*" (venueWildcard): every instrument of the venue the
   * token entitles, those the feed lists now and those it lists later (PROTOCOL.md §6.3). The
   * wildcard is held in venues; each instrument the feed subscribes through it (its Subscribed)
   * becomes a Subscription of its own, with the wildcard's channels and depth, and the same
   * events as a named one. On a reconnect the instruments held go first, with their resume
   * positions, then the wildcard: the feed leaves the instruments it just resumed as they are
   * and subscribes the venue's others (those listed while disconnected).
   */
  subscribe(ids: string[], channels: Channel[], depth = 0): void {
    // Channels the token lacks, and instruments it does not cover, are not asked for again:
    // they are wanted (and shown as not entitled) until a refresh or a new connection.
    const ask = channels.filter((ch) => !this.deniedChannels.has(ch));
    const askIds: string[] = [];
    for (const id of ids) {
      const venue = venueWildcard(id);
      if (venue !== undefined) {
        let w = this.venues.get(venue);
        if (!w) this.venues.set(venue, (w = { channels: new Set(), depth: 0 }));
        for (const ch of channels) w.channels.add(ch);
        w.depth = depth;
        askIds.push(id);
        continue;
      }
      let s = this.subs.get(id);
      if (!s) {
        s = new Subscription(id);
        this.subs.set(id, s);
      }
      for (const ch of channels) {
        if (!s.channels.has(ch)) {
          s.channels.add(ch);
          s.await.add(ch);
        }
        if (this.deniedChannels.has(ch)) this.deny(s, [ch]);
      }
      if (channels.includes(Channel.BOOK)) s.depth = depth;
      if (!s.instrumentDenied) askIds.push(id);
    }
    if (ask.length > 0) this.sendSubscribe(askIds, ask, depth, []);
  }

  /** The quote held for an instrument, or undefined before its first quote snapshot. */
  quote(id: string): Quote | undefined {
    const s = this.subs.get(id);
    return s && s.replica.pos[Channel.QUOTE]!.seq > 0n ? s.replica.quote : undefined;
  }

  /** The book held for an instrument (the replica's live book), or undefined when not subscribed. */
  book(id: string): Book | undefined {
    return this.subs.get(id)?.replica.book;
  }

  /**
   * Drops channels of instruments; an instrument left with none is forgotten with its replica.
   *
   * A venue wildcard "venue:*" drops the channels from the wildcard (the wildcard itself when
   * none are left) and from every instrument of the venue held, named or subscribed through the
   * wildcard, as the feed does (PROTOCOL.md §6.3).
   */
  unsubscribe(ids: string[], channels: Channel[]): void {
    const held: string[] = [];
    for (const id of ids) {
      const venue = venueWildcard(id);
      if (venue !== undefined) {
        const w = this.venues.get(venue);
        let found = w !== undefined;
        if (w) {
          for (const ch of channels) w.channels.delete(ch);
          if (w.channels.size === 0) this.venues.delete(venue);
        }
        for (const s of [...this.subs.values()]) {
          if (venueOf(s.id) !== venue) continue;
          found = true;
          this.drop(s, channels);
        }
        if (found) held.push(id);
        continue;
      }
      const s = this.subs.get(id);
      if (!s) continue;
      // The feed holds none of the instrument's streams when the token does not cover it.
      if (channels.some((ch) => s.channels.has(ch) && !s.denied(ch))) held.push(id);
      this.drop(s, channels);
    }
    if (held.length > 0) this.send({ command: { case: "unsubscribe", value: { instruments: held, channels } } });
  }

  /** Drops channels of a subscription; one left with none is forgotten with its replica. */
  private drop(s: Subscription, channels: Channel[]): void {
    for (const ch of channels) {
      s.notEntitled.delete(ch);
      s.channels.delete(ch);
      s.await.delete(ch);
      s.resync.delete(ch);
      s.stale.delete(ch);
      s.awaiting.delete(ch);
      s.replica.unsync(ch);
    }
    if (s.channels.size === 0) this.subs.delete(s.id);
  }

  /**
   * Asks for the instrument list (answered by onInstruments); sent on every connect anyway. With
   * ClientOptions.watchInstruments it also asks to be told of later listings (onInstrumentListed).
   */
  listInstruments(): void {
    this.send({ id: this.nextId++, command: { case: "listInstruments", value: { watch: !!this.opts.watchInstruments } } });
  }

  /**
   * Presents a token (Authenticate): on connect, and again with a fresh token before the current
   * one expires (the feed closes the connection at exp with 4005). Returns the command's request
   * id (the Authenticated or Error answering it carries it), or 0 without a connection: the next
   * connection asks opts.token.
   */
  authenticate(token: string): number {
    const id = this.nextId++;
    if (!this.send({ id, command: { case: "authenticate", value: { token } } })) return 0;
    this.authIds.add(id);
    return id;
  }

  /**
   * Sends a ReplayControl (only meaningful on a replay session's connection; a live feed answers
   * NOT_REPLAY). Returns false when there is no connection to send it on.
   */
  replayControl(action: ReplayAction): boolean {
    const id = this.nextId++;
    if (!this.send({ id, command: { case: "replayControl", value: { action } } })) return false;
    this.replayIds.add(id);
    if (this.replayIds.size > maxRemembered) this.replayIds.delete(this.replayIds.values().next().value!);
    return true;
  }

  private setState(s: ConnState, detail: string): void {
    this.state = s;
    this.ev.onState?.(s, detail);
  }

  private send(m: MessageInitShape<typeof ClientMessageSchema>): boolean {
    if (!this.sock || this.state !== "connected") return false; // the next connection gets the desired state
    this.sock.send(toBinary(ClientMessageSchema, create(ClientMessageSchema, m)));
    return true;
  }

  /**
   * Sends Subscribe for ids (sorted by the caller if it cares), in commands of at most
   * maxSubscribeIds instruments and about maxSubscribeBytes, each with the resume positions of
   * its own instruments (a position for an instrument not in the command is MALFORMED).
   */
  private sendSubscribe(ids: string[], channels: Channel[], depth: number, resume: ResumePosition[]): void {
    if (ids.length === 0 || !this.sock || this.state !== "connected") return;
    const byId = new Map<string, ResumePosition[]>();
    for (const p of resume) {
      let l = byId.get(p.instrument);
      if (!l) byId.set(p.instrument, (l = []));
      l.push(p);
    }
    let chunk: string[] = [];
    let pos: ResumePosition[] = [];
    let bytes = 64;
    const flush = () => {
      if (chunk.length === 0) return;
      const id = this.remember({ kind: "subscribe", ids: chunk, channels });
      const compactQuotes = this.opts.compactQuotes && channels.includes(Channel.QUOTE);
      this.send({ id, command: { case: "subscribe", value: { instruments: chunk, channels, depth, resume: pos, compactQuotes } } });
      chunk = [];
      pos = [];
      bytes = 64;
    };
    for (const id of ids) {
      const ps = byId.get(id) ?? [];
      // An id costs its length and a tag; a position its id again and up to ~30 bytes of numbers.
      const cost = id.length + 3 + ps.length * (id.length + 32);
      if (chunk.length > 0 && (chunk.length >= maxSubscribeIds || bytes + cost > maxSubscribeBytes)) flush();
      chunk.push(id);
      pos = pos.concat(ps);
      bytes += cost;
    }
    flush();
  }

  /** Gives a command a request id and remembers what it asked for, to read its errors by. */
  private remember(c: SentCommand): number {
    const id = this.nextId++;
    this.sent.set(id, c);
    if (this.sent.size > maxRemembered) this.sent.delete(this.sent.keys().next().value!);
    return id;
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState("connecting", this.attempt > 0 ? `attempt ${this.attempt + 1}` : "");
    let sock: SocketLike;
    try {
      sock = this.opts.newSocket(this.opts.url, [subprotocol]);
    } catch (e) {
      this.lost(`cannot connect: ${String(e)}`, 1006);
      return;
    }
    this.sock = sock;
    this.gotFrame = false;
    this.opened = false;
    this.sent.clear();
    this.authIds.clear();
    this.signedIn = false;
    this.listed = undefined;
    this.announced.clear();
    this.replayIds.clear();
    this.handshakeStatus = 0;
    sock.binaryType = "arraybuffer";
    sock.onopen = () => {
      if (this.sock !== sock) return;
      this.opened = true;
      this.stats.connects++;
      this.lastFrameAt = this.opts.timers.now();
      this.armDeadTimer();
      this.setState("connected", "");
      const token = this.opts.token?.();
      if (token) this.authenticate(token); // first: every other command waits for it
      this.resubscribeAll();
    };
    sock.onmessage = (e) => {
      if (this.sock !== sock) return;
      this.onFrame(e.data);
    };
    sock.onclose = (e) => {
      if (this.sock !== sock) return;
      const reason = String(e.reason ?? "");
      this.lost(reason ? `closed ${e.code}: ${reason}` : `closed ${e.code}`, e.code);
    };
    sock.onerror = (e) => {
      // A close event follows every error; it decides what happens next. ws (Node) says why a
      // handshake was refused ("Unexpected server response: 401"); a browser never does.
      if (this.sock !== sock || this.opened) return;
      const m = /Unexpected server response: (\d{3})/.exec(String((e as { message?: unknown } | null)?.message ?? ""));
      if (m) this.handshakeStatus = Number(m[1]);
    };
  }

  /** A heartbeat timer: no frame (the feed heartbeats every 5 s) for heartbeatTimeout = dead. */
  private armDeadTimer(): void {
    const t = this.opts.timers;
    t.clearTimeout(this.deadTimer);
    const wait = this.lastFrameAt + heartbeatTimeout - t.now();
    this.deadTimer = t.setTimeout(() => {
      if (t.now() - this.lastFrameAt >= heartbeatTimeout) {
        const s = this.sock;
        this.lost(`nothing received for ${heartbeatTimeout / 1000} s`, 1006);
        s?.close(4002, "heartbeat timeout");
      } else {
        this.armDeadTimer();
      }
    }, Math.max(wait, 100));
  }

  /**
   * The connection is gone (detach in Go): streams in sync keep their state and position, to
   * resume from on the next connection, and are stale until then; streams that were waiting for
   * a resync wait for a snapshot.
   */
  private lost(why: string, code: number): void {
    const t = this.opts.timers;
    t.clearTimeout(this.deadTimer);
    if (this.sock) {
      this.sock.onopen = this.sock.onclose = this.sock.onmessage = this.sock.onerror = null;
    }
    this.sock = undefined;
    this.byHandle.clear();
    for (const s of this.subs.values()) {
      for (const ch of s.resync) s.replica.unsync(ch);
      s.resync.clear();
      s.stale.clear();
      // A stream the feed stopped is not offered for resume: the feed's own copy missed an event
      // after our position, so it cannot continue us from it. Its book stays (dimmed) until the
      // next connection's snapshot. The wait itself is per connection: the next one says it again.
      for (const ch of s.awaiting.keys()) s.replica.unsync(ch);
      s.awaiting.clear();
      for (const ch of s.channels) s.stale.add(ch);
    }
    // A connection we closed ourselves (stop) is not reconnected, whatever its code.
    if (this.stopped) return;
    if (!this.opened && this.handshakeStatus > 0) {
      // The handshake was refused: the table's handshake_statuses.
      why = `handshake refused: HTTP ${this.handshakeStatus}`;
      if (handshakeAction(this.handshakeStatus) === "stop") {
        this.setState("closed", `${why} (not reconnecting)`);
        return;
      }
    } else if (needsSignIn(code) && !(this.opts.freshTokens && closeAction(code) === "fresh_token")) {
      this.setState("closed", why);
      this.ev.onSignInNeeded?.(code, reasonOf(why));
      return;
    } else if (!reconnectable(code)) {
      this.setState("closed", `${why} (not reconnecting)`);
      return;
    }
    if (this.gotFrame) this.attempt = 0;
    const wait = backoff(this.attempt, this.opts.rand, this.opts.backoffMin, this.opts.backoffMax);
    this.attempt++;
    this.setState("disconnected", `${why}; retry in ${(wait / 1000).toFixed(1)} s`);
    this.retryTimer = t.setTimeout(() => this.connect(), wait);
  }

  /**
   * Gives a new connection every subscription (attach in Go): one Subscribe per (channels,
   * depth) group, with a resume position for every stream still in sync (held when the last
   * connection dropped and not waiting for a snapshot), sorted by instrument then channel; the
   * instruments of venue wildcards among them. Then one Subscribe per venue wildcard, after the
   * instruments: the feed leaves those it just resumed as they are (no second snapshot) and
   * subscribes the venue's others.
   */
  private resubscribeAll(): void {
    this.listInstruments();
    const groups = new Map<string, { ids: string[]; channels: Channel[]; depth: number; resume: ResumePosition[] }>();
    for (const s of this.subs.values()) {
      const channels = [...s.channels].sort((a, b) => a - b);
      const key = `${channels.join(",")}/${s.depth}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { ids: [], channels, depth: s.depth, resume: [] }));
      g.ids.push(s.id);
      for (const ch of channels) {
        if (s.replica.synced(ch) && !s.await.has(ch)) {
          const p = s.replica.pos[ch]!;
          g.resume.push({ instrument: s.id, channel: ch, epoch: p.epoch, seq: p.seq });
        }
      }
    }
    for (const g of groups.values()) {
      g.ids.sort();
      g.resume.sort((a, b) => (a.instrument < b.instrument ? -1 : a.instrument > b.instrument ? 1 : a.channel - b.channel));
      this.sendSubscribe(g.ids, g.channels, g.depth, g.resume);
    }
    for (const venue of [...this.venues.keys()].sort()) {
      const w = this.venues.get(venue)!;
      const channels = [...w.channels].sort((a, b) => a - b);
      if (channels.length > 0) this.sendSubscribe([`${venue}:${venueWildcardSymbol}`], channels, w.depth, []);
    }
  }

  private onFrame(data: unknown): void {
    const received = this.opts.timers.now();
    this.lastFrameAt = received;
    this.gotFrame = true;
    this.stats.frames++;
    if (!(data instanceof ArrayBuffer)) {
      this.stats.decodeErrors++;
      return;
    }
    this.stats.bytes += data.byteLength;
    let f: ServerFrame;
    try {
      f = fromBinary(ServerFrameSchema, new Uint8Array(data));
    } catch {
      // Dropping the frame is safe: a lost snapshot or delta shows up as a gap and is resynced.
      this.stats.decodeErrors++;
      return;
    }
    const t: FrameTimes = { sentMs: f.sendTimeNs > 0n ? nsToMs(f.sendTimeNs) : 0, receivedMs: received };
    for (const m of f.messages) {
      switch (m.kind.case) {
        case "snapshot":
          this.onSnapshot(m.kind.value, t);
          break;
        case "delta":
          this.onDelta(m.kind.value, t);
          break;
        case "compactQuote":
          this.onCompactQuote(m.kind.value, t);
          break;
        case "subscribed":
          this.onSubscribed(m.kind.value);
          break;
        case "instrumentList":
          if (!this.listed) this.listed = new Set(m.kind.value.instruments.map((i) => i.id));
          else for (const i of m.kind.value.instruments) this.listed.add(i.id);
          this.ev.onInstruments?.(m.kind.value.instruments);
          break;
        case "unsubscribed":
          this.onUnsubscribed(m.kind.value);
          break;
        case "error":
          this.stats.serverErrors++;
          if (m.kind.value.code === ErrorCode.UNKNOWN_INSTRUMENT && m.kind.value.instrument) {
            // It would be asked for again on every reconnect.
            this.subs.delete(m.kind.value.instrument);
          }
          if (m.kind.value.code === ErrorCode.NOT_ENTITLED) {
            if (this.replayIds.has(m.kind.value.requestId)) this.ev.onReplayControlRefused?.(m.kind.value);
            else this.onNotEntitled(m.kind.value);
          }
          this.ev.onError?.(m.kind.value);
          break;
        case "streamStatus":
          this.onStreamStatus(m.kind.value);
          break;
        case "replayStatus":
          this.ev.onReplayStatus?.(m.kind.value);
          break;
        case "authenticated": {
          const a = m.kind.value;
          const refresh = this.signedIn;
          this.signedIn = true;
          this.ev.onAuthenticated?.(a.subject, a.expiresAtNs > 0n ? nsToMs(a.expiresAtNs) : 0, a.requestId);
          if (refresh) this.askDeniedAgain();
          break;
        }
        case "instrumentUpdate": {
          // Ours only if the handle names the same instrument (handles are per connection).
          const u = m.kind.value;
          const s = this.byHandle.get(u.handle);
          if (s && u.info && u.info.id === s.id) {
            s.info = u.info;
            this.ev.onInstrument?.(u.info);
          } else if (this.opts.watchInstruments && u.info?.id) {
            this.onListing(u.info);
          }
          break;
        }
        default:
          // Heartbeat, Pong: any frame already proved the connection alive.
          break;
      }
    }
  }

  /**
   * An InstrumentUpdate of ListInstruments.watch for an instrument we do not hold: a new listing
   * (not in this connection's list, or before it) or new reference data of a listed one.
   */
  private onListing(info: InstrumentInfo): void {
    if (this.listed?.has(info.id) || this.announced.has(info.id)) {
      this.ev.onInstrument?.(info);
      return;
    }
    // Possibly before this connection's list (which then has it too): announced once anyway.
    this.announced.add(info.id);
    this.listed?.add(info.id);
    this.ev.onInstrumentListed?.(info);
  }

  private onSubscribed(m: Subscribed): void {
    const id = m.info?.id;
    if (!id) return;
    let s = this.subs.get(id);
    const w = this.venues.get(venueOf(id));
    if (!s && w) {
      // An instrument of a venue wildcard: held from now on, with the wildcard's channels.
      s = new Subscription(id);
      for (const ch of w.channels) s.channels.add(ch);
      s.depth = w.depth;
      this.subs.set(id, s);
    }
    if (!s) return;
    this.byHandle.set(m.handle, s);
    s.info = m.info;
    // Granted: whatever was refused before (another token, a narrower grant) is served now.
    const granted = m.channels.filter((ch) => s.denied(ch));
    for (const ch of m.channels) this.deniedChannels.delete(ch);
    s.instrumentDenied = false;
    for (const ch of m.channels) s.notEntitled.delete(ch);
    if (granted.length > 0) this.ev.onNotEntitled?.(id, [], false);
    // Channels not resumed get a snapshot next: until then their deltas are not ours to apply.
    for (const ch of m.channels) {
      if (!m.resumed.includes(ch) && validChannel(ch)) s.await.add(ch);
    }
    // Resumed channels continue from the kept position: their missed deltas follow.
    for (const ch of m.resumed) s.stale.delete(ch);
    // A new handle: a stream that still waits is said again, right after this Subscribed.
    for (const ch of m.channels) s.awaiting.delete(ch);
    this.stats.resumed += m.resumed.length;
    // Trim history exactly as the server does, so the replica equals a fresh snapshot.
    s.replica.tradeHistory = m.tradeHistory;
    s.replica.candleHistory = m.candleHistory;
    this.ev.onSubscribed?.(id, m, s);
  }

  private lookup(handle: number, ch: Channel): Subscription | undefined {
    const s = this.byHandle.get(handle);
    return s && s.channels.has(ch) ? s : undefined;
  }

  private onSnapshot(snap: Snapshot, t: FrameTimes): void {
    const s = this.lookup(snap.handle, snap.channel);
    if (!s) return;
    // Held across a reconnect, in sync, and offered for resume: a snapshot instead means a loss.
    const wasHeld = s.stale.has(snap.channel) && s.replica.synced(snap.channel);
    const out = s.replica.applySnapshot(snap);
    if (out === "ok") {
      s.resync.delete(snap.channel);
      s.await.delete(snap.channel);
      s.stale.delete(snap.channel);
      s.awaiting.delete(snap.channel); // the snapshot ends the wait (RESYNC, or SUBSCRIBE)
      this.stats.snapshots++;
      if (snap.reason === SnapshotReason.HISTORY_GONE) this.stats.historyGone++;
      if (snap.reason === SnapshotReason.NEW_EPOCH) this.stats.newEpochs++;
      this.ev.onSnapshot?.(s.id, snap.channel, snap, s, t);
      // A stream held across a reconnect that the feed did not continue: data was missed. (A
      // break on a live connection was reported when it was found, with its Resync.)
      if (wasHeld) {
        const reason = snap.reason === SnapshotReason.HISTORY_GONE ? "history_gone" : snap.reason === SnapshotReason.NEW_EPOCH ? "new_epoch" : "not_resumed";
        this.ev.onGap?.({ instrument: s.id, channel: snap.channel, reason });
      }
      this.changed(s, snap.channel, { snapshot: snap, delta: undefined, times: t });
      return;
    }
    if (out !== "checksum") {
      this.stats.decodeErrors++;
      return;
    }
    // A snapshot that contradicts its own checksum: ask again, even if it answered a Resync.
    this.stats.checksum++;
    s.resync.add(snap.channel);
    s.resyncs++;
    this.resync(s.id, snap.channel, out);
  }

  /** The bot events of an applied snapshot or delta. */
  private changed(s: Subscription, ch: Channel, u: Update): void {
    if (ch === Channel.QUOTE) this.ev.onQuote?.(s.id, s.replica.quote, s, u);
    else if (ch === Channel.BOOK) this.ev.onBook?.(s.id, s.replica.book, s, u);
    else if (ch === Channel.TRADES && u.delta?.body.case === "trade") {
      const tr = s.replica.trades[s.replica.trades.length - 1];
      if (tr) this.ev.onTrade?.(s.id, tr, s);
    }
  }

  /**
   * A CompactQuote: expanded against the quote held (PROTOCOL.md §8.1.1), then handled as the
   * Delta it stands for. One that comes while the stream waits for a snapshot is dropped, as a
   * delta would be.
   */
  private onCompactQuote(c: CompactQuote, t: FrameTimes): void {
    const s = this.lookup(c.handle, Channel.QUOTE);
    if (!s || s.await.has(Channel.QUOTE)) return;
    const d = s.replica.expandCompactQuote(c);
    if (d === "not_synced") return;
    if (d === "bad_message") {
      this.stats.decodeErrors++;
      return;
    }
    this.stats.compactQuotes++;
    this.onDelta(d, t);
  }

  private onDelta(d: Delta, t: FrameTimes): void {
    const ch = channelOfDelta(d);
    const s = this.lookup(d.handle, ch);
    if (!s || s.await.has(ch)) return;
    const out = s.replica.applyDelta(d);
    switch (out) {
      case "ok":
        this.stats.deltas++;
        this.ev.onDelta?.(s.id, ch, d, s, t);
        this.changed(s, ch, { snapshot: undefined, delta: d, times: t });
        return;
      case "stale":
        this.stats.stale++;
        return;
      case "not_synced": // waiting for a snapshot: the first after subscribing, or a resync's
        return;
      case "bad_message":
        this.stats.decodeErrors++;
        return;
      case "gap":
        this.stats.gaps++;
        break;
      case "epoch":
        this.stats.epochs++;
        break;
      case "checksum":
        this.stats.checksum++;
        break;
    }
    if (!needsResync(out)) return;
    // The stream is broken. Ask once; its deltas are refused (not_synced) until the snapshot.
    if (s.resync.has(ch)) return;
    s.resync.add(ch);
    s.resyncs++;
    this.resync(s.id, ch, out);
  }

  /**
   * StreamStatus (PROTOCOL.md §6.6): AWAITING_SNAPSHOT stops the stream until its next snapshot,
   * which the feed sends on its own once its copy is whole again (so no Resync: it would only
   * cost snapshot budget). The state held stays, marked not live. Other states (none today,
   * or a newer feed's) are ignored.
   */
  private onStreamStatus(st: StreamStatus): void {
    if (st.state !== StreamState.AWAITING_SNAPSHOT) return;
    const s = this.lookup(st.handle, st.channel);
    if (!s || s.denied(st.channel)) return;
    s.awaiting.set(st.channel, st.reason || "the feed waits for a fresh snapshot");
    this.stats.awaiting++;
    this.ev.onStreamStatus?.(s.id, st.channel, st, s);
  }

  private resync(id: string, ch: Channel, why: Outcome): void {
    this.stats.resyncs++;
    const rid = this.remember({ kind: "resync", ids: [id], channels: [ch] });
    this.send({ id: rid, command: { case: "resync", value: { instrument: id, channels: [ch] } } });
    this.ev.onResync?.(id, ch, why);
    if (why === "gap" || why === "epoch" || why === "checksum") this.ev.onGap?.({ instrument: id, channel: ch, reason: why });
  }

  /**
   * Marks channels of an instrument not entitled (all of them with instrument): the replica
   * stops following them (nothing more comes) and nothing waits for their snapshots.
   */
  private deny(s: Subscription, channels: Channel[], instrument = false): void {
    let changed = instrument && !s.instrumentDenied;
    if (instrument) s.instrumentDenied = true;
    const chans = instrument ? [...s.channels] : channels.filter((ch) => s.channels.has(ch));
    for (const ch of chans) {
      if (!instrument && !s.notEntitled.has(ch)) {
        s.notEntitled.add(ch);
        changed = true;
      }
      s.await.delete(ch);
      s.resync.delete(ch);
      s.stale.delete(ch);
      s.awaiting.delete(ch);
      s.replica.unsync(ch);
    }
    if (changed) this.ev.onNotEntitled?.(s.id, chans, instrument);
  }

  /**
   * ERROR_CODE_NOT_ENTITLED, read by the command it answers (PROTOCOL.md §2.6): a Subscribe's
   * refused channels come as one error without an instrument; its refused instruments as one
   * error naming the first (and the count, when more). The others of a count are those of the
   * command the feed did not list on this connection: its list is filtered by the same grant,
   * and ids it does not know at all are UNKNOWN_INSTRUMENT, not this. An error answering an
   * Authenticate (a refresh that narrowed the grant) is left to its Unsubscribed replies, which
   * name each stream ended; errors of other commands (replay control) concern no stream.
   */
  private onNotEntitled(e: FeedError): void {
    if (this.authIds.has(e.requestId)) return;
    const c = this.sent.get(e.requestId);
    if (!c) return;
    const named = channelsOfMessage(e.message).filter((ch) => c.channels.includes(ch));
    if (!e.instrument || named.length > 0) {
      // Channels, for every instrument of the command. A message naming none: all of them
      // (a Subscribed granting some clears those).
      const chans = named.length > 0 ? named : c.channels;
      if (c.kind === "subscribe" && !e.instrument) for (const ch of chans) this.deniedChannels.add(ch);
      for (const id of e.instrument ? [e.instrument] : c.ids) {
        const s = this.subs.get(id);
        if (s) this.deny(s, chans);
      }
      return;
    }
    const ids = new Set([e.instrument]);
    if (c.kind === "subscribe" && c.ids.length > 1 && /^\d+ /.test(e.message) && this.listed) {
      for (const id of c.ids) if (!this.listed.has(id)) ids.add(id);
    }
    for (const id of ids) {
      const s = this.subs.get(id);
      if (s) this.deny(s, [], true);
    }
  }

  /**
   * Unsubscribed answering an Authenticate: the refresh's grant no longer covers these
   * streams, which the feed ended. (Replies to our own Unsubscribe need nothing: the channels
   * are already dropped.)
   */
  private onUnsubscribed(u: Unsubscribed): void {
    if (!this.authIds.has(u.requestId)) return;
    const s = this.byHandle.get(u.handle);
    if (s) this.deny(s, u.channels);
  }

  /**
   * After a refresh: the new grant may cover what the old one did not. Asks once for every
   * refused stream (grouped as resubscribeAll does); what is still refused is refused again.
   */
  private askDeniedAgain(): void {
    this.deniedChannels.clear();
    const groups = new Map<string, { ids: string[]; channels: Channel[]; depth: number }>();
    for (const s of this.subs.values()) {
      const channels = (s.instrumentDenied ? [...s.channels] : [...s.notEntitled].filter((ch) => s.channels.has(ch))).sort((a, b) => a - b);
      if (channels.length === 0) continue;
      for (const ch of channels) s.await.add(ch);
      const depth = channels.includes(Channel.BOOK) ? s.depth : 0;
      const key = `${channels.join(",")}/${depth}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { ids: [], channels, depth }));
      g.ids.push(s.id);
    }
    for (const g of groups.values()) this.sendSubscribe(g.ids.sort(), g.channels, g.depth, []);
  }
}

/** The close reason in a lost() description ("closed 4501: unauthorized: expired"), or it whole. */
function reasonOf(why: string): string {
  const m = /^closed \d+: (.*)$/.exec(why);
  return m ? m[1]! : why;
}

/** Unix nanoseconds (bigint) to Unix milliseconds (float: sub-ms precision kept for latency). */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}
