import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ReplayStatusSchema } from "@tickwire/client";
import { Channel, DeltaSchema, SnapshotSchema, SubscribedSchema } from "@tickwire/client";
import { Store, staleAfterMs } from "../src/app/store";
import { FeedClient, Subscription } from "@tickwire/client";
import { ladderStatus } from "../src/views/ladder";

const id = "synthetic:ACME";
const t = { sentMs: 0, receivedMs: 0 };

function setup(replay = false) {
  const client = new FeedClient({ url: "ws://x/ws", newSocket: () => ({}) as never });
  const store = new Store(client, { replay });
  store.setInstruments([{ id, venue: "synthetic", symbol: "ACME" } as never]);
  store.setFocus(id);
  const sub = new Subscription(id);
  return { store, sub };
}

const snap = (ch: Channel, reason: number) => create(SnapshotSchema, { channel: ch, reason, epoch: 1n, seq: 10n });
const quote = (venueMs = 0) => create(DeltaSchema, { epoch: 1n, seq: 11n, prevSeq: 10n, venueTimeNs: BigInt(venueMs) * 1_000_000n, body: { case: "quote", value: {} } });

describe("Store: resume, gaps and staleness", () => {
  it("a resumed instrument gets no gap marker; HISTORY_GONE and NEW_EPOCH get one each, not one per stream", () => {
    const { store, sub } = setup();
    store.onState("connected", "");
    store.onState("disconnected", "closed 1006");
    store.onState("connected", "");
    store.onSubscribed(id, create(SubscribedSchema, { info: { id }, channels: [Channel.QUOTE, Channel.BOOK], resumed: [Channel.QUOTE, Channel.BOOK] }), sub);
    store.onDelta(id, Channel.QUOTE, quote(), sub, t);
    expect(store.gapMarkers(id)).toBe(0);
    expect(store.markers.get(id)!.map((m) => `${m.kind}:${m.text}`)).toEqual(["conn:offline", "conn:back"]);

    for (const ch of [Channel.QUOTE, Channel.BOOK, Channel.TRADES]) store.onSnapshot(id, ch, snap(ch, 5 /* HISTORY_GONE */), sub, t);
    expect(store.gapMarkers(id)).toBe(1);
    for (const ch of [Channel.QUOTE, Channel.BOOK]) store.onSnapshot(id, ch, snap(ch, 4 /* NEW_EPOCH */), sub, t);
    expect(store.markers.get(id)!.filter((m) => m.kind === "gap").map((m) => m.text)).toEqual(["gap", "epoch"]);
    // Plain SUBSCRIBE snapshots (a first subscribe, or a channel without a position) are no gap.
    store.onSnapshot(id, Channel.STATS, snap(Channel.STATS, 1), sub, t);
    expect(store.gapMarkers(id)).toBe(2);
  });

  it("marks every instrument stale while disconnected, and fresh again on the next update", () => {
    const { store, sub } = setup();
    store.onState("connected", "");
    store.onDelta(id, Channel.QUOTE, quote(), sub, t);
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(false);
    store.onState("disconnected", "");
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(true);
    store.onState("connected", "");
    store.onDelta(id, Channel.QUOTE, quote(), sub, t); // a resumed quote's missed delta
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(false);
    store.checkStale(Date.now() + staleAfterMs + 1);
    expect(store.rows.get(id)!.stale).toBe(true);
  });

  it("in a replay, staleness runs on the replay clock: a paused replay is not stale, a fast one is judged in its own time", () => {
    const { store, sub } = setup(true);
    const t0 = Date.UTC(2026, 0, 15, 12, 0, 0);
    const status = (clockMs: number, generation = 1) =>
      create(ReplayStatusSchema, { session: "s1", state: 1, clockNs: BigInt(clockMs) * 1_000_000n, fromNs: BigInt(t0) * 1_000_000n, toNs: BigInt(t0 + 60_000) * 1_000_000n, generation });
    store.onState("connected", "");
    store.onReplayStatus(status(t0));
    store.onDelta(id, Channel.QUOTE, quote(t0 + 1000), sub, t);
    expect(store.replayClockMs).toBe(t0 + 1000); // events move the clock between statuses
    expect(store.pendingIngestMs.length).toBe(0); // no event-to-screen latency from historical times
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(false);
    // However long the wall clock waits (paused), the replay clock has not moved: not stale.
    store.onReplayStatus(status(t0 + 1000));
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(false);
    // 6 s of replay time without an update of this instrument: stale.
    store.onReplayStatus(status(t0 + 7000));
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(true);
    // A seek back (new generation): the clock goes back with it, markers of the old run go.
    store.addMarker(id, "gap", "gap");
    store.onReplayStatus(status(t0 + 2000, 2));
    expect(store.replayClockMs).toBe(t0 + 2000);
    expect(store.markers.size).toBe(0);
    expect(store.nowMs()).toBe(t0 + 2000);
    // ... and no row is stale while the new generation's snapshots are on their way (issue 12).
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(false);
    store.onReplayStatus(status(t0 + 8000, 2)); // 6 s of replay time without its quote: stale
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(true);
  });

  it("an instrument the token does not cover is not entitled, not stale; its repaint is asked for", () => {
    const { store } = setup();
    const client = store.client;
    client.subscribe([id], [Channel.QUOTE, Channel.STATS]); // not connected: kept as wanted
    store.onState("connected", "");
    store.checkStale();
    expect(store.rows.get(id)!.stale).toBe(true); // nothing came yet
    const sub = client.subs.get(id)!;
    sub.instrumentDenied = true; // as FeedClient.deny on NOT_ENTITLED
    store.dirtyRows.clear();
    store.chartReset = store.bookDirty = false;
    store.onNotEntitled(id);
    expect(store.rows.get(id)!.stale).toBe(false);
    expect(store.rowDenied(id)).toBe(true);
    expect(store.denied(id, Channel.BOOK)).toBe(true);
    expect(store.dirtyRows.has(id)).toBe(true);
    expect(store.bookDirty && store.chartReset).toBe(true); // the focused one's panels say so
    store.checkStale(Date.now() + staleAfterMs + 1);
    expect(store.rows.get(id)!.stale).toBe(false);
    // One channel refused: the row is not all denied.
    sub.instrumentDenied = false;
    sub.notEntitled.add(Channel.STATS);
    expect(store.rowDenied(id)).toBe(false);
    expect(store.denied(id, Channel.STATS)).toBe(true);
    sub.notEntitled.add(Channel.QUOTE);
    expect(store.rowDenied(id)).toBe(true);
  });

  it("StreamStatus AWAITING_SNAPSHOT: the row counts the waiting stream and the focused ladder repaints; the book snapshot ends it", () => {
    const { store, sub } = setup();
    store.onState("connected", "");
    store.dirtyRows.clear();
    store.bookDirty = false;
    sub.awaiting.set(Channel.BOOK, "the feed missed an event"); // as FeedClient.onStreamStatus
    store.onStreamStatus(id, Channel.BOOK, sub);
    expect(store.rows.get(id)!.awaiting).toBe(1);
    expect(store.dirtyRows.has(id)).toBe(true); // the row's WAIT badge
    expect(store.bookDirty).toBe(true); // the ladder's "awaiting snapshot"
    store.dirtyRows.clear();
    store.bookDirty = false;
    sub.awaiting.delete(Channel.BOOK); // as FeedClient.onSnapshot
    store.onSnapshot(id, Channel.BOOK, snap(Channel.BOOK, 2 /* RESYNC */), sub, t);
    expect(store.rows.get(id)!.awaiting).toBe(0);
    expect(store.dirtyRows.has(id)).toBe(true);
    expect(store.bookDirty).toBe(true);
  });
});

describe("ladderStatus", () => {
  it("says 'awaiting snapshot' (not live) while the feed waits, over 'not in sync'; not entitled wins", () => {
    expect(ladderStatus(50, true, false, undefined)).toMatchObject({ state: "live", label: "depth 50", note: "" });
    expect(ladderStatus(50, false, false, undefined)).toMatchObject({ state: "unsynced", label: "depth 50 · not in sync", note: "" });
    const w = ladderStatus(50, false, false, "the feed missed an event");
    expect(w).toMatchObject({ state: "awaiting", label: "depth 50 · awaiting snapshot", note: "awaiting snapshot · not live" });
    expect(w.title).toContain("the feed missed an event");
    expect(ladderStatus(50, false, true, "x")).toMatchObject({ state: "denied", note: "book: not entitled" });
  });
});
