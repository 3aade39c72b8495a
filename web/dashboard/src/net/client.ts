// The feed connection: the dashboard's counterpart of pkg/client in Go.
//
// It keeps the desired subscriptions and one Replica per subscribed instrument, survives
// disconnects (reconnect with jittered exponential backoff, then subscribe again and rebuild
// every replica from fresh snapshots), learns handles from Subscribed, and asks for a Resync of
// one channel of one instrument, once, when its chain or checksum breaks, exactly as the Go SDK.
//
// It speaks the binary subprotocol "tickwire.v1.proto": one ServerFrame per WebSocket message,
// decoded with the TypeScript generated from proto/ (int64 arrives as bigint).

import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { InstrumentInfo } from "../gen/tickwire/v1/market_pb";
import {
  Channel,
  ClientMessageSchema,
  ServerFrameSchema,
  type Delta,
  type Error as FeedError,
  type ServerFrame,
  type Snapshot,
  type Subscribed,
} from "../gen/tickwire/v1/stream_pb";
import { Replica, channelOfDelta, dataChannels, needsResync, type Outcome } from "../market/replica";

export const subprotocol = "tickwire.v1.proto";

/**
 * Reconnect backoff. The Go SDK waits 250 ms to 30 s; a browser tab is one client watched by a
 * person, not a fleet of bots, so the cap is 5 s: a restarted feed is back on screen within
 * seconds, and a feed that is down for long sees at most one attempt per tab every few seconds.
 */
export const backoffMin = 250;
export const backoffMax = 5000;
/** Three feed heartbeat intervals (5 s): a connection silent this long is dead. */
export const heartbeatTimeout = 15000;

/**
 * The wait before reconnect attempt n (0 for the first after a loss): uniform in
 * [min, min(max, min * 2^(n+1))], "full jitter" above a floor, as Options.backoff in Go.
 */
export function backoff(n: number, rand: () => number = Math.random, min = backoffMin, max = backoffMax): number {
  const ceil = n < 30 ? Math.min(max, min * 2 ** (n + 1)) : max;
  return min + Math.floor(rand() * (ceil - min + 1));
}

/** WebSocket close codes after which a client must not reconnect on its own (wire.Reconnectable). */
export function reconnectable(code: number): boolean {
  if (code === 1000 || code === 1009) return false;
  return !(code >= 4500 && code <= 4999);
}

export type ConnState = "connecting" | "connected" | "disconnected" | "closed";

/** The part of the browser's WebSocket the client uses, so tests can plug in a fake. */
export interface SocketLike {
  binaryType: BinaryType;
  readonly protocol: string;
  onopen: ((ev: Event) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export interface Timers {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
}

export interface ClientOptions {
  url: string;
  newSocket?: (url: string, protocols: string[]) => SocketLike;
  timers?: Timers;
  rand?: () => number;
}

/** Times of one frame, in Unix milliseconds (floats, for latency figures). */
export interface FrameTimes {
  /** When the feed wrote the frame (send_time_ns), or 0. */
  sentMs: number;
  /** When the browser decoded it. */
  receivedMs: number;
}

/** What the client tells the app. Every method runs synchronously inside the socket callback. */
export interface ClientEvents {
  onState?(state: ConnState, detail: string): void;
  onInstruments?(list: InstrumentInfo[]): void;
  onSubscribed?(id: string, m: Subscribed): void;
  onSnapshot?(id: string, ch: Channel, snap: Snapshot, sub: Subscription, t: FrameTimes): void;
  onDelta?(id: string, ch: Channel, d: Delta, sub: Subscription, t: FrameTimes): void;
  /** A break in a stream: a Resync for it was just sent (or will be, for a bad snapshot). */
  onResync?(id: string, ch: Channel, why: Outcome): void;
  onError?(e: FeedError): void;
}

/** One instrument the client holds: what to ask for, and the replica. */
export class Subscription {
  readonly replica = new Replica();
  info: InstrumentInfo | undefined;
  /** Desired channels, by Channel value. */
  readonly channels = new Set<Channel>();
  depth = 0;
  /** Channels with a Resync sent and no snapshot since. */
  readonly resync = new Set<Channel>();
  /**
   * Channels added by subscribe and not yet given a snapshot: deltas still in flight from an
   * earlier subscription of the channel must not be applied to its old state.
   */
  readonly await = new Set<Channel>();
  resyncs = 0;
  constructor(readonly id: string) {}
}

export class FeedClient {
  readonly subs = new Map<string, Subscription>();
  state: ConnState = "disconnected";
  /** Counters for the status bar. */
  readonly stats = { frames: 0, bytes: 0, deltas: 0, snapshots: 0, stale: 0, gaps: 0, checksum: 0, epochs: 0, resyncs: 0, connects: 0, decodeErrors: 0 };

  private readonly opts: Required<ClientOptions>;
  private sock: SocketLike | undefined;
  private byHandle = new Map<number, Subscription>();
  private attempt = 0;
  private gotFrame = false;
  private retryTimer: unknown;
  private deadTimer: unknown;
  private lastFrameAt = 0;
  private stopped = false;
  private nextId = 1;

  constructor(
    opts: ClientOptions,
    private readonly ev: ClientEvents = {},
  ) {
    this.opts = {
      newSocket: (url, protocols) => new WebSocket(url, protocols) as SocketLike,
      timers: {
        now: () => Date.now(),
        setTimeout: (f, ms) => setTimeout(f, ms),
        clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      },
      rand: Math.random,
      ...opts,
    };
  }

  /** Connects, and keeps reconnecting until stop. */
  start(): void {
    this.stopped = false;
    this.connect();
  }

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
   */
  subscribe(ids: string[], channels: Channel[], depth = 0): void {
    for (const id of ids) {
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
      }
      if (channels.includes(Channel.BOOK)) s.depth = depth;
    }
    if (ids.length > 0) this.send({ command: { case: "subscribe", value: { instruments: ids, channels, depth } } });
  }

  /** Drops channels of instruments; an instrument left with none is forgotten with its replica. */
  unsubscribe(ids: string[], channels: Channel[]): void {
    const held: string[] = [];
    for (const id of ids) {
      const s = this.subs.get(id);
      if (!s) continue;
      held.push(id);
      for (const ch of channels) {
        s.channels.delete(ch);
        s.await.delete(ch);
        s.resync.delete(ch);
        s.replica.unsync(ch);
      }
      if (s.channels.size === 0) this.subs.delete(id);
    }
    if (held.length > 0) this.send({ command: { case: "unsubscribe", value: { instruments: held, channels } } });
  }

  listInstruments(): void {
    this.send({ id: this.nextId++, command: { case: "listInstruments", value: {} } });
  }

  private setState(s: ConnState, detail: string): void {
    this.state = s;
    this.ev.onState?.(s, detail);
  }

  private send(m: MessageInitShape<typeof ClientMessageSchema>): void {
    if (!this.sock || this.state !== "connected") return; // the next connection gets the desired state
    this.sock.send(toBinary(ClientMessageSchema, create(ClientMessageSchema, m)));
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
    sock.binaryType = "arraybuffer";
    sock.onopen = () => {
      if (this.sock !== sock) return;
      this.stats.connects++;
      this.lastFrameAt = this.opts.timers.now();
      this.armDeadTimer();
      this.setState("connected", "");
      this.resubscribeAll();
    };
    sock.onmessage = (e) => {
      if (this.sock !== sock) return;
      this.onFrame(e.data);
    };
    sock.onclose = (e) => {
      if (this.sock !== sock) return;
      this.lost(e.reason ? `closed ${e.code}: ${e.reason}` : `closed ${e.code}`, e.code);
    };
    sock.onerror = () => {
      // A close event follows every error; it decides what happens next.
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

  /** The connection is gone: every stream waits for a snapshot from the next one. */
  private lost(why: string, code: number): void {
    const t = this.opts.timers;
    t.clearTimeout(this.deadTimer);
    if (this.sock) {
      this.sock.onopen = this.sock.onclose = this.sock.onmessage = this.sock.onerror = null;
    }
    this.sock = undefined;
    this.byHandle.clear();
    for (const s of this.subs.values()) {
      for (const ch of dataChannels) s.replica.unsync(ch);
      s.resync.clear();
    }
    if (this.stopped) return;
    if (!reconnectable(code)) {
      this.setState("closed", `${why} (not reconnecting)`);
      return;
    }
    if (this.gotFrame) this.attempt = 0;
    const wait = backoff(this.attempt, this.opts.rand);
    this.attempt++;
    this.setState("disconnected", `${why}; retry in ${(wait / 1000).toFixed(1)} s`);
    this.retryTimer = t.setTimeout(() => this.connect(), wait);
  }

  private resubscribeAll(): void {
    this.listInstruments();
    // One Subscribe per (channels, depth) group, as the Go SDK's attach.
    const groups = new Map<string, { ids: string[]; channels: Channel[]; depth: number }>();
    for (const s of this.subs.values()) {
      const channels = [...s.channels].sort((a, b) => a - b);
      const key = `${channels.join(",")}/${s.depth}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { ids: [], channels, depth: s.depth }));
      g.ids.push(s.id);
    }
    for (const g of groups.values()) {
      g.ids.sort();
      this.send({ command: { case: "subscribe", value: { instruments: g.ids, channels: g.channels, depth: g.depth } } });
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
        case "subscribed":
          this.onSubscribed(m.kind.value);
          break;
        case "instrumentList":
          this.ev.onInstruments?.(m.kind.value.instruments);
          break;
        case "error":
          if (m.kind.value.code === 2 /* UNKNOWN_INSTRUMENT */ && m.kind.value.instrument) {
            // It would be asked for again on every reconnect.
            this.subs.delete(m.kind.value.instrument);
          }
          this.ev.onError?.(m.kind.value);
          break;
        default:
          // Heartbeat, Pong, Unsubscribed: any frame already proved the connection alive.
          break;
      }
    }
  }

  private onSubscribed(m: Subscribed): void {
    const id = m.info?.id;
    if (!id) return;
    const s = this.subs.get(id);
    if (!s) return;
    this.byHandle.set(m.handle, s);
    s.info = m.info;
    // Trim history exactly as the server does, so the replica equals a fresh snapshot.
    s.replica.tradeHistory = m.tradeHistory;
    s.replica.candleHistory = m.candleHistory;
    this.ev.onSubscribed?.(id, m);
  }

  private lookup(handle: number, ch: Channel): Subscription | undefined {
    const s = this.byHandle.get(handle);
    return s && s.channels.has(ch) ? s : undefined;
  }

  private onSnapshot(snap: Snapshot, t: FrameTimes): void {
    const s = this.lookup(snap.handle, snap.channel);
    if (!s) return;
    const out = s.replica.applySnapshot(snap);
    if (out === "ok") {
      s.resync.delete(snap.channel);
      s.await.delete(snap.channel);
      this.stats.snapshots++;
      this.ev.onSnapshot?.(s.id, snap.channel, snap, s, t);
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

  private onDelta(d: Delta, t: FrameTimes): void {
    const ch = channelOfDelta(d);
    const s = this.lookup(d.handle, ch);
    if (!s || s.await.has(ch)) return;
    const out = s.replica.applyDelta(d);
    switch (out) {
      case "ok":
        this.stats.deltas++;
        this.ev.onDelta?.(s.id, ch, d, s, t);
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

  private resync(id: string, ch: Channel, why: Outcome): void {
    this.stats.resyncs++;
    this.send({ command: { case: "resync", value: { instrument: id, channels: [ch] } } });
    this.ev.onResync?.(id, ch, why);
  }
}

/** Unix nanoseconds (bigint) to Unix milliseconds (float: sub-ms precision kept for latency). */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}
