// The dashboard's state between the feed client and the views.
//
// Updates are applied to the replicas as they arrive (in FeedClient); the store only records what
// changed, as dirty flags, so that the views paint once per animation frame whatever the update
// rate (100 updates/s on each of 50 instruments is 5000 per second, 80 per frame).

import type { InstrumentInfo } from "@tickwire/client";
import type { ReplayStatus } from "@tickwire/client";
import { Channel, SnapshotReason, type Candle, type Delta, type Snapshot, type Subscribed, type TradeRecord } from "@tickwire/client";
import type { ConnState, FeedClient, FrameTimes, Subscription } from "@tickwire/client";
import { nsToMs } from "@tickwire/client";
import type { Outcome } from "@tickwire/client";
import { lastOf, sameLast, tapeEnds, type Last, type TapeEnds } from "../market/last";
import { visibleTrades } from "../market/replay";

/** An instrument with no quote or stats update for this long is marked stale. */
export const staleAfterMs = 5000;

/** Latency samples kept for the percentiles: a few seconds of updates at full rate. */
const latencySamples = 2048;

export interface Row {
  id: string;
  info: InstrumentInfo | undefined;
  /** Store clock (wall clock, or the replay clock in a replay) of the last quote or stats update, 0 before any. */
  lastUpdateMs: number;
  stale: boolean;
  /** Streams of this instrument with a resync in flight. */
  resyncing: number;
  /**
   * Streams of this instrument the feed stopped until their next snapshot (StreamStatus
   * AWAITING_SNAPSHOT: today the book, when the feed's copy of it broke).
   */
  awaiting: number;
  breaks: number;
}

export interface Marker {
  /** Unix seconds, by the store's clock (the replay clock in a replay). */
  timeS: number;
  text: string;
  /**
   * "gap": data was lost and replaced (a break and its resync, a HISTORY_GONE or NEW_EPOCH
   * snapshot); "conn": the connection went away or came back (nothing lost by itself).
   */
  kind: "gap" | "conn";
}

/** A ring of latency samples in milliseconds with percentiles. */
export class LatencyRing {
  private readonly buf = new Float64Array(latencySamples);
  private n = 0;
  private next = 0;
  add(ms: number): void {
    this.buf[this.next] = ms;
    this.next = (this.next + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
  }
  count(): number {
    return this.n;
  }
  /** The q-quantile (0..1) of the samples held, or NaN without any. */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const sorted = this.buf.slice(0, this.n).sort();
    return sorted[Math.min(this.n - 1, Math.floor(q * this.n))]!;
  }
}

export class Store {
  readonly rows = new Map<string, Row>();
  /** Instrument ids in display order (by id). */
  order: string[] = [];
  focus: string | undefined;
  conn: ConnState = "disconnected";
  connDetail = "";
  /** Wall-clock ms when the connection was lost, for the "disconnected for" figure. */
  lostAtMs = 0;
  /**
   * Instruments the trader removed from the watchlist (kept in localStorage by the watchlist):
   * listed only by its Hidden filter, still subscribed (restoring one shows it at once).
   */
  readonly hidden = new Set<string>();

  // Dirty flags, cleared by the painter.
  readonly dirtyRows = new Set<string>();
  listDirty = true;
  bookDirty = false;
  tapeDirty = false;
  headerDirty = false;
  statusDirty = true;
  /** The focused instrument's candles need a full redraw (a snapshot: open, resync, reconnect). */
  chartReset = false;
  /** Bars of the focused instrument changed by deltas since the last paint, in arrival order. */
  chartBars: Candle[] = [];
  markersDirty = false;

  /**
   * The newest (live and history) trades of the focused instrument as the tape last painted
   * them: "last" on every view follows the tape, so the header, the watchlist row and the
   * chart's label never show a trade the tape does not (yet) show (see last()).
   */
  private tape: TapeEnds | undefined;
  /** The focused instrument's last as last painted (onTapePainted compares with it). */
  private focusLast: Last | undefined;

  /** Gap, resync and reconnect markers per instrument, for the chart. */
  readonly markers = new Map<string, Marker[]>();

  /** Ingest times (Unix ms) of the deltas applied since the last paint: event-to-screen latency. */
  pendingIngestMs: number[] = [];
  /** Event (ingest) to screen, measured at paint. */
  readonly toScreen = new LatencyRing();
  /** Feed send (frame send_time_ns) to the browser decoding it. */
  readonly feedToBrowser = new LatencyRing();
  updates = 0;

  /** A replay session (/?replay=<session>): its last status, and the replay clock. */
  readonly replay: boolean;
  replayStatus: ReplayStatus | undefined;
  /**
   * The replay clock in Unix ms: the newest of the last status's clock_ns and the venue times
   * of the deltas applied since (the status comes once a second; the events in between move
   * the clock too). Reset to the status clock on a seek (a new generation).
   */
  replayClockMs = 0;
  replayDirty = true;
  /** A problem with the replay session, in words (no such session, NOT_REPLAY, ...). */
  replayError = "";

  constructor(
    readonly client: FeedClient,
    opts: { replay?: boolean } = {},
  ) {
    this.replay = !!opts.replay;
  }

  /** Hides an instrument from the watchlist (on) or restores it; returns whether that changed anything. */
  setHidden(id: string, on: boolean): boolean {
    if (this.hidden.has(id) === on) return false;
    if (on) this.hidden.add(id);
    else this.hidden.delete(id);
    this.listDirty = true;
    this.dirtyRows.add(id);
    if (id === this.focus) this.headerDirty = true;
    return true;
  }

  /** The store's clock, Unix ms: the wall clock live, the replay clock in a replay. */
  nowMs(): number {
    return this.replay ? this.replayClockMs : Date.now();
  }

  onReplayStatus(st: ReplayStatus): void {
    const prev = this.replayStatus;
    this.replayStatus = st;
    const clock = nsToMs(st.clockNs);
    if (prev && st.generation !== prev.generation) {
      // A seek: a new epoch for every stream, and a clock that may have gone back. The
      // markers of the old run describe another time line.
      this.replayClockMs = clock;
      this.markers.clear();
      this.markersDirty = true;
      this.chartReset = true;
      this.tapeDirty = true;
      // Staleness restarts at the new clock: the new generation's snapshots take a moment (the
      // replayer first reads its lookback), and rows are not stale meanwhile (issue 12: every
      // row showed STALE after a seek); one without a quote for 5 s of replay time becomes so.
      for (const r of this.rows.values()) r.lastUpdateMs = clock;
    } else {
      this.replayClockMs = Math.max(this.replayClockMs, clock);
    }
    this.replayError = "";
    this.replayDirty = true;
    this.statusDirty = true;
  }

  /**
   * The one "last" of an instrument, for every view that shows it (market/last.ts): the focused
   * instrument's from the trades the tape shows, then its stats; the others' from their stats.
   */
  last(id: string | undefined): Last | undefined {
    const sub = this.sub(id);
    const stats = sub && !sub.denied(Channel.STATS) ? sub.replica.stats : undefined;
    return lastOf(id !== undefined && id === this.focus ? this.tape : undefined, stats);
  }

  /**
   * The trades the tape shows for the focused instrument: none when the token does not cover
   * them, or while their stream waits for its first snapshot (trades kept from an earlier focus
   * of the instrument are from the past, and would be "last" everywhere); in a replay, none
   * later than the replay clock (visibleTrades).
   */
  tapeTrades(): readonly TradeRecord[] {
    const sub = this.sub(this.focus);
    if (!sub || sub.denied(Channel.TRADES) || sub.await.has(Channel.TRADES)) return [];
    const trades = sub.replica.trades;
    return this.replay ? visibleTrades(trades, BigInt(Math.floor(this.replayClockMs)) * 1_000_000n) : trades;
  }

  /**
   * The painter painted the focused instrument's tape with these trades (tapeTrades). When that moves its
   * last, the header and its watchlist row are painted in the same frame (the chart's label is
   * set every frame).
   */
  onTapePainted(trades: readonly TradeRecord[]): void {
    this.tape = tapeEnds(trades);
    const last = this.last(this.focus);
    if (sameLast(last, this.focusLast)) return;
    this.focusLast = last;
    this.headerDirty = true;
    if (this.focus) this.dirtyRows.add(this.focus);
  }

  sub(id: string | undefined): Subscription | undefined {
    return id === undefined ? undefined : this.client.subs.get(id);
  }

  /** Whether the token does not cover this channel of the instrument (the feed refused it). */
  denied(id: string | undefined, ch: Channel): boolean {
    return !!this.sub(id)?.denied(ch);
  }

  /** Whether nothing of the instrument is served to this token (every wanted channel refused). */
  rowDenied(id: string | undefined): boolean {
    return !!this.sub(id)?.allDenied();
  }

  /** Streams of an instrument were refused or ended for the token, or are served again: repaint them. */
  onNotEntitled(id: string): void {
    const r = this.rows.get(id);
    if (r) {
      r.resyncing = this.sub(id)?.resync.size ?? 0;
      if (r.stale && this.rowDenied(id)) r.stale = false; // not entitled, not stale
    }
    this.dirtyRows.add(id);
    this.listDirty = true;
    if (id === this.focus) {
      this.bookDirty = this.tapeDirty = this.headerDirty = this.markersDirty = true;
      this.chartReset = true;
    }
    this.statusDirty = true;
  }

  setInstruments(list: InstrumentInfo[]): string[] {
    const added: string[] = [];
    for (const info of list) {
      let r = this.rows.get(info.id);
      if (!r) {
        r = { id: info.id, info, lastUpdateMs: 0, stale: false, resyncing: 0, awaiting: 0, breaks: 0 };
        this.rows.set(info.id, r);
        added.push(info.id);
      } else {
        r.info = info;
      }
      this.dirtyRows.add(info.id);
    }
    if (added.length > 0) {
      this.order = [...this.rows.keys()].sort();
      this.listDirty = true;
    }
    return added;
  }

  onState(s: ConnState, detail: string): void {
    if (s !== "connected" && this.conn === "connected") {
      this.lostAtMs = Date.now();
      if (this.focus) this.addMarker(this.focus, "offline", "conn");
    }
    if (s === "connected" && this.lostAtMs > 0 && this.focus) this.addMarker(this.focus, "back", "conn");
    if (s === "connected") this.lostAtMs = 0;
    this.conn = s;
    this.connDetail = detail;
    this.statusDirty = true;
    this.headerDirty = true;
    this.bookDirty = true; // the ladder shows a book kept from a lost connection as not in sync
    this.replayDirty = true;
  }

  onSubscribed(id: string, m: Subscribed, sub: Subscription): void {
    // A Subscribed for an instrument without reference data yet carries only the id.
    if (m.info && m.info.venue !== "") this.setInstruments([m.info]);
    this.syncAwaiting(id, sub);
    if (m.resumed.length > 0) {
      // Resumed streams are live again from where they were; their missed deltas follow.
      this.dirtyRows.add(id);
      if (id === this.focus) this.bookDirty = this.headerDirty = this.tapeDirty = true;
      this.statusDirty = true;
    }
  }

  private touch(id: string, ch: Channel): void {
    const r = this.rows.get(id);
    if (!r) return;
    if (ch === Channel.QUOTE || ch === Channel.STATS) {
      r.lastUpdateMs = Math.max(r.lastUpdateMs, this.nowMs());
      if (r.stale) {
        r.stale = false;
        this.listDirty = true; // the stale filter may change
      }
      this.dirtyRows.add(id);
    }
    if (id === this.focus) {
      switch (ch) {
        case Channel.BOOK:
          this.bookDirty = true;
          break;
        case Channel.TRADES:
          this.tapeDirty = true;
          break;
        case Channel.QUOTE:
        case Channel.STATS:
          this.headerDirty = true;
          break;
      }
    }
  }

  onSnapshot(id: string, ch: Channel, snap: Snapshot, sub: Subscription, t: FrameTimes): void {
    this.touch(id, ch);
    // What happened between the kept position and this snapshot is not delivered: a gap on the
    // chart, as for a resync. One marker per instrument, not one per stream. In a replay a new
    // epoch is a seek (the banner shows it, and the chart is redrawn from the new time): no gap.
    if (snap.reason === SnapshotReason.HISTORY_GONE || (snap.reason === SnapshotReason.NEW_EPOCH && !this.replay)) {
      this.addMarker(id, snap.reason === SnapshotReason.HISTORY_GONE ? "gap" : "epoch", "gap");
    }
    this.noteFrame(t);
    const r = this.rows.get(id);
    if (r) {
      if (r.awaiting !== sub.awaiting.size) {
        // The snapshot that ends a wait: the row's marker and the ladder's note go.
        this.dirtyRows.add(id);
        if (id === this.focus) this.bookDirty = this.headerDirty = true;
      }
      r.resyncing = sub.resync.size;
      r.awaiting = sub.awaiting.size;
    }
    if (id === this.focus && ch === Channel.CANDLES) {
      this.chartReset = true;
      this.chartBars = [];
    }
    if (snap.reason !== SnapshotReason.SUBSCRIBE) {
      this.statusDirty = true;
      this.headerDirty = true;
    }
  }

  onDelta(id: string, ch: Channel, d: Delta, _sub: Subscription, t: FrameTimes): void {
    this.updates++;
    // In a replay the events' venue times are the replay clock (the status lags by up to 1 s).
    if (this.replay && d.venueTimeNs > 0n) this.replayClockMs = Math.max(this.replayClockMs, nsToMs(d.venueTimeNs));
    this.touch(id, ch);
    this.noteFrame(t);
    // A replayed event's ingest time is historical: no event-to-screen latency in a replay.
    if (d.ingestTimeNs > 0n && !this.replay) this.pendingIngestMs.push(nsToMs(d.ingestTimeNs));
    if (id === this.focus && ch === Channel.CANDLES && d.body.case === "candles" && !this.chartReset) {
      for (const c of d.body.value.candles) this.chartBars.push(c);
    }
  }

  private noteFrame(t: FrameTimes): void {
    if (t.sentMs > 0) this.feedToBrowser.add(t.receivedMs - t.sentMs);
  }

  /**
   * The feed stopped a stream of the instrument until its next snapshot (StreamStatus
   * AWAITING_SNAPSHOT): the ladder says "awaiting snapshot" over the last book, dimmed, and the
   * watchlist row carries a WAIT badge, until the snapshot (onSnapshot).
   */
  onStreamStatus(id: string, ch: Channel, sub: Subscription): void {
    this.syncAwaiting(id, sub);
    if (id === this.focus && ch === Channel.BOOK) this.bookDirty = true;
    this.statusDirty = true;
  }

  /** The row's count of waiting streams follows the subscription's; repaints what shows it. */
  private syncAwaiting(id: string, sub: Subscription): void {
    const r = this.rows.get(id);
    if (!r || r.awaiting === sub.awaiting.size) return;
    r.awaiting = sub.awaiting.size;
    this.dirtyRows.add(id);
    if (id === this.focus) this.bookDirty = this.headerDirty = true;
  }

  onResync(id: string, ch: Channel, why: Outcome): void {
    const r = this.rows.get(id);
    if (r) {
      r.breaks++;
      r.resyncing = this.sub(id)?.resync.size ?? 0;
      this.dirtyRows.add(id);
    }
    // Short: the marker's text sits on the chart next to the newest bar.
    const what = ch === Channel.BOOK ? "book" : ch === Channel.CANDLES ? "bars" : ch === Channel.TRADES ? "trades" : ch === Channel.QUOTE ? "quote" : "stats";
    this.addMarker(id, `${why === "checksum" ? "cksum" : why} ${what}`, "gap");
    this.statusDirty = true;
    this.headerDirty = true;
  }

  addMarker(id: string, text: string, kind: Marker["kind"]): void {
    let list = this.markers.get(id);
    if (!list) this.markers.set(id, (list = []));
    const timeS = Math.floor(this.nowMs() / 1000);
    // The same event on several streams of the instrument (a new epoch snapshots all five) is one mark.
    if (list.some((m) => m.text === text && m.timeS >= timeS - 1)) return;
    list.push({ timeS, text, kind });
    if (list.length > 50) list.shift();
    if (id === this.focus) this.markersDirty = true;
  }

  /** Gap markers (data lost) of an instrument. */
  gapMarkers(id: string | undefined): number {
    return id === undefined ? 0 : (this.markers.get(id) ?? []).filter((m) => m.kind === "gap").length;
  }

  setFocus(id: string): void {
    if (id === this.focus) return;
    this.focus = id;
    this.tape = undefined; // until the tape shows this instrument's trades
    this.focusLast = undefined;
    this.bookDirty = this.tapeDirty = this.headerDirty = this.markersDirty = true;
    this.chartReset = true;
    this.chartBars = [];
    this.listDirty = true;
  }

  /**
   * Marks instruments stale (or fresh again) by the store's clock (nowMs(): the replay clock in
   * a replay, so a paused replay is not stale and a fast one is judged in its own time); run a
   * few times a second.
   */
  checkStale(now: number = this.nowMs()): void {
    for (const r of this.rows.values()) {
      // An instrument the token does not cover gets no updates: it is not entitled, not stale.
      const stale = !this.rowDenied(r.id) && (this.conn !== "connected" || r.lastUpdateMs === 0 || now - r.lastUpdateMs > staleAfterMs);
      if (stale !== r.stale) {
        r.stale = stale;
        this.dirtyRows.add(r.id);
        this.listDirty = true;
        if (r.id === this.focus) this.headerDirty = true;
      }
    }
  }
}
