import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { beforeEach, describe, expect, it } from "vitest";
import {
  Channel,
  ClientMessageSchema,
  ErrorCode,
  ServerFrameSchema,
  ServerMessageSchema,
  StreamState,
  type ClientMessage,
} from "../src/gen/tickwire/v1/stream_pb.js";
import { checksum } from "../src/book.js";
import {
  FeedClient,
  backoff,
  backoffMax,
  backoffMin,
  channelName,
  channelsOfMessage,
  subprotocol,
  type SocketLike,
} from "../src/client.js";
import { needsSignIn, reconnectable } from "../src/closes.js";
import { FakeSocket, FakeTimers } from "./fakes.js";

const bookLevels = { depth: 10, bids: [{ price: 100n, size: 5n }], asks: [{ price: 101n, size: 7n }] };
const bookSum = checksum(
  [{ price: 100n, size: 5n }],
  [{ price: 101n, size: 7n }],
);

describe("FeedClient", () => {
  let sockets: FakeSocket[];
  let timers: FakeTimers;
  let events: string[];
  let client: FeedClient;
  const sock = () => sockets[sockets.length - 1]!;
  const commands = (s: FakeSocket) => s.sent.map((m) => m.command.case);

  beforeEach(() => {
    sockets = [];
    timers = new FakeTimers();
    events = [];
    client = new FeedClient(
      {
        url: "ws://feed/ws",
        newSocket: (url, protocols) => {
          const s = new FakeSocket(url, protocols);
          sockets.push(s);
          return s;
        },
        timers,
        rand: () => 0.999999, // the longest wait, to check the bounds
      },
      {
        onState: (s) => events.push(`state:${s}`),
        onResync: (id, ch, why) => events.push(`resync:${id}:${ch}:${why}`),
        onDelta: (id, ch) => events.push(`delta:${id}:${ch}`),
        onSnapshot: (id, ch) => events.push(`snapshot:${id}:${ch}`),
        onInstrument: (info) => events.push(`instrument:${info.id}:${info.status}`),
      },
    );
  });

  function subscribeAndSnapshot() {
    client.subscribe(["synthetic:ACME"], [Channel.BOOK, Channel.QUOTE], 10);
    sock().frame({
      messages: [
        { kind: { case: "subscribed", value: { handle: 3, info: { id: "synthetic:ACME", priceScale: 2 }, channels: [Channel.BOOK], depth: 10, tradeHistory: 100, candleHistory: 300 } } },
        { kind: { case: "snapshot", value: { handle: 3, channel: Channel.BOOK, epoch: 1n, seq: 10n, checksum: bookSum, body: { case: "book", value: bookLevels } } } },
      ],
    });
  }

  const bookDelta = (seq: bigint, prevSeq: bigint, sum = bookSum) => ({
    kind: { case: "delta" as const, value: { handle: 3, epoch: 1n, seq, prevSeq, checksum: sum, body: { case: "book" as const, value: { depth: 10 } } } },
  });

  it("speaks the binary subprotocol and lists instruments on connect", () => {
    client.start();
    expect(sock().protocols).toEqual([subprotocol]);
    expect(sock().url).toBe("ws://feed/ws");
    sock().open();
    expect(sock().binaryType).toBe("arraybuffer");
    expect(commands(sock())).toEqual(["listInstruments"]);
    expect(events).toEqual(["state:connecting", "state:connected"]);
  });

  it("applies a snapshot then deltas by handle, and resyncs a gap exactly once", () => {
    client.start();
    sock().open();
    subscribeAndSnapshot();
    expect(commands(sock())).toEqual(["listInstruments", "subscribe"]);
    sock().frame({ messages: [bookDelta(11n, 10n), bookDelta(11n, 10n)] }); // second is stale
    expect(client.stats.stale).toBe(1);
    sock().frame({ messages: [bookDelta(14n, 13n), bookDelta(15n, 14n), bookDelta(16n, 15n)] });
    const resyncs = sock().sent.filter((m) => m.command.case === "resync");
    expect(resyncs.length).toBe(1);
    const r = resyncs[0]!.command;
    expect(r.case === "resync" && r.value.instrument).toBe("synthetic:ACME");
    expect(r.case === "resync" && r.value.channels).toEqual([Channel.BOOK]);
    expect(events.filter((e) => e.startsWith("resync"))).toEqual([`resync:synthetic:ACME:${Channel.BOOK}:gap`]);
    // The answer brings the stream back; the next break resyncs again.
    sock().frame({ messages: [{ kind: { case: "snapshot", value: { handle: 3, channel: Channel.BOOK, epoch: 1n, seq: 16n, checksum: bookSum, reason: 2, body: { case: "book", value: bookLevels } } } }] });
    sock().frame({ messages: [bookDelta(17n, 16n, bookSum ^ 1)] });
    expect(sock().sent.filter((m) => m.command.case === "resync").length).toBe(2);
    expect(client.stats.checksum).toBe(1);
  });

  it("takes an InstrumentUpdate (a halt) for the instrument its handle names, and no other", () => {
    client.start();
    sock().open();
    subscribeAndSnapshot();
    sock().frame({
      messages: [
        { kind: { case: "instrumentUpdate", value: { handle: 9, info: { id: "synthetic:ACME", status: 2 } } } }, // unknown handle
        { kind: { case: "instrumentUpdate", value: { handle: 3, info: { id: "synthetic:OTHER", status: 2 } } } }, // id mismatch
        { kind: { case: "instrumentUpdate", value: { handle: 3, info: { id: "synthetic:ACME", priceScale: 2, status: 2 } } } },
      ],
    });
    expect(events.filter((e) => e.startsWith("instrument"))).toEqual(["instrument:synthetic:ACME:2"]);
    expect(client.subs.get("synthetic:ACME")?.info?.status).toBe(2);
  });

  it("ignores deltas of an instrument it did not subscribe to, or before its snapshot", () => {
    client.start();
    sock().open();
    sock().frame({ messages: [bookDelta(11n, 10n)] });
    client.subscribe(["synthetic:ACME"], [Channel.BOOK]);
    sock().frame({ messages: [{ kind: { case: "subscribed", value: { handle: 3, info: { id: "synthetic:ACME" } } } }, bookDelta(11n, 10n)] });
    expect(events.filter((e) => e.startsWith("delta") || e.startsWith("resync"))).toEqual([]);
  });

  it("reconnects with backoff after the feed goes away and subscribes again", () => {
    client.start();
    sock().open();
    subscribeAndSnapshot();
    sock().drop(1001, "server shutting down");
    expect(client.state).toBe("disconnected");
    // The book is kept, to resume from, but it is not live: stale until the next connection.
    const s = client.subs.get("synthetic:ACME")!;
    expect(s.replica.synced(Channel.BOOK)).toBe(true);
    expect(s.inSync(Channel.BOOK)).toBe(false);
    expect([...s.stale].sort()).toEqual([Channel.QUOTE, Channel.BOOK]);
    expect(sockets.length).toBe(1);
    timers.advance(backoffMin * 2 - 1); // attempt 0 waits at most min*2 (rand=1 -> exactly that)
    expect(sockets.length).toBe(1);
    timers.advance(1);
    expect(sockets.length).toBe(2);
    sock().drop(1006); // refused while the feed restarts
    timers.advance(backoffMin * 4);
    expect(sockets.length).toBe(3);
    sock().open();
    expect(commands(sock())).toEqual(["listInstruments", "subscribe"]);
    const sub = sock().sent[1]!.command;
    expect(sub.case === "subscribe" && sub.value.instruments).toEqual(["synthetic:ACME"]);
    expect(sub.case === "subscribe" && sub.value.channels).toEqual([Channel.QUOTE, Channel.BOOK]);
    expect(sub.case === "subscribe" && sub.value.depth).toBe(10);
    // The book was in sync: resumed from its position. The quote never had its snapshot: not.
    expect(sub.case === "subscribe" && sub.value.resume.map((p) => [p.instrument, p.channel, p.epoch, p.seq])).toEqual([
      ["synthetic:ACME", Channel.BOOK, 1n, 10n],
    ]);
  });

  it("drops a silent connection after the heartbeat timeout", () => {
    client.start();
    sock().open();
    timers.advance(10_000);
    sock().frame({ messages: [{ kind: { case: "heartbeat", value: {} } }] });
    timers.advance(14_000);
    expect(client.state).toBe("connected");
    timers.advance(1_200);
    expect(client.state).toBe("disconnected");
    expect(sockets[0]!.closed).toBe(true);
  });

  it("stops on a close code that says not to reconnect", () => {
    client.start();
    sock().open();
    sock().drop(4500, "protocol error");
    expect(client.state).toBe("closed");
    timers.advance(60_000);
    expect(sockets.length).toBe(1);
  });
});

describe("FeedClient resume (PROTOCOL.md §13.2, pkg/client attach/detach/onSubscribed)", () => {
  let sockets: FakeSocket[];
  let timers: FakeTimers;
  let events: string[];
  let client: FeedClient;
  const sock = () => sockets[sockets.length - 1]!;
  const id = "synthetic:ACME";

  beforeEach(() => {
    sockets = [];
    timers = new FakeTimers();
    events = [];
    client = new FeedClient(
      {
        url: "ws://feed/ws",
        newSocket: (url, protocols) => {
          const s = new FakeSocket(url, protocols);
          sockets.push(s);
          return s;
        },
        timers,
        rand: () => 0,
      },
      {
        onResync: (i, ch, why) => events.push(`resync:${ch}:${why}`),
        onDelta: (i, ch, d) => events.push(`delta:${ch}:${d.seq}`),
        onSnapshot: (i, ch, snap) => events.push(`snapshot:${ch}:${snap.reason}:${snap.seq}`),
        onSubscribed: (i, m) => events.push(`subscribed:${m.handle}:resumed=${m.resumed.join(",")}`),
        onStreamStatus: (i, ch, st) => events.push(`status:${i}:${ch}:${st.state}:${st.reason}`),
      },
    );
  });

  const subscribed = (handle: number, resumed: Channel[]) => ({
    kind: { case: "subscribed" as const, value: { handle, info: { id }, channels: [Channel.QUOTE, Channel.BOOK], depth: 10, resumed } },
  });
  const bookSnap = (handle: number, epoch: bigint, seq: bigint, reason = 1) => ({
    kind: { case: "snapshot" as const, value: { handle, channel: Channel.BOOK, epoch, seq, checksum: bookSum, reason, body: { case: "book" as const, value: bookLevels } } },
  });
  const quoteSnap = (handle: number, epoch: bigint, seq: bigint, reason = 1) => ({
    kind: { case: "snapshot" as const, value: { handle, channel: Channel.QUOTE, epoch, seq, reason, body: { case: "quote" as const, value: { bidPrice: 100n, askPrice: 101n } } } },
  });
  const bookDelta = (handle: number, epoch: bigint, seq: bigint, prevSeq: bigint) => ({
    kind: { case: "delta" as const, value: { handle, epoch, seq, prevSeq, checksum: bookSum, body: { case: "book" as const, value: { depth: 10 } } } },
  });
  const quoteDelta = (handle: number, epoch: bigint, seq: bigint, prevSeq: bigint) => ({
    kind: { case: "delta" as const, value: { handle, epoch, seq, prevSeq, body: { case: "quote" as const, value: { bidPrice: 99n, askPrice: 101n } } } },
  });

  /** Connected, subscribed to quote and book of ACME, both in sync at (1, 10). */
  function synced(): void {
    client.start();
    sock().open();
    client.subscribe([id], [Channel.QUOTE, Channel.BOOK], 10);
    sock().frame({ messages: [subscribed(3, []), quoteSnap(3, 1n, 10n), bookSnap(3, 1n, 10n)] });
    events.length = 0;
  }

  /** The connection drops and the next one opens; returns the Subscribe it sent. */
  function reconnect() {
    sock().drop(1006);
    timers.advance(backoffMax);
    sock().open();
    const subs = sock().sent.filter((m) => m.command.case === "subscribe");
    expect(subs.length).toBe(1);
    const c = subs[0]!.command;
    if (c.case !== "subscribe") throw new Error("not a subscribe");
    return c.value;
  }

  it("resumes every stream in sync: resumed channels get no snapshot and go on from the kept position", () => {
    synced();
    const cmd = reconnect();
    expect(cmd.resume.map((p) => [p.instrument, p.channel, p.epoch, p.seq])).toEqual([
      [id, Channel.QUOTE, 1n, 10n],
      [id, Channel.BOOK, 1n, 10n],
    ]);
    const s = client.subs.get(id)!;
    expect(s.inSync(Channel.BOOK)).toBe(false); // stale until the feed answers
    // The feed resumes both under a new handle: the missed deltas, then live ones. No snapshot.
    sock().frame({ messages: [subscribed(9, [Channel.QUOTE, Channel.BOOK]), bookDelta(3, 1n, 12n, 10n), bookDelta(9, 1n, 12n, 10n), bookDelta(9, 1n, 14n, 12n), quoteDelta(9, 1n, 13n, 10n)] });
    expect(events).toEqual([`subscribed:9:resumed=${Channel.QUOTE},${Channel.BOOK}`, `delta:${Channel.BOOK}:12`, `delta:${Channel.BOOK}:14`, `delta:${Channel.QUOTE}:13`]);
    expect(client.stats.resumed).toBe(2);
    expect(client.stats.snapshots).toBe(2); // the two of the first subscribe only
    expect(s.inSync(Channel.BOOK) && s.inSync(Channel.QUOTE)).toBe(true);
    expect(s.stale.size).toBe(0);
    expect(s.replica.pos[Channel.BOOK]!.seq).toBe(14n);
    // A break after resuming is still a break: one Resync.
    sock().frame({ messages: [bookDelta(9, 1n, 20n, 18n)] });
    expect(sock().sent.filter((m) => m.command.case === "resync").length).toBe(1);
  });

  it("a channel the feed cannot resume waits for its snapshot (HISTORY_GONE), which replaces the kept state", () => {
    synced();
    reconnect();
    sock().frame({ messages: [subscribed(9, [Channel.QUOTE]), quoteDelta(9, 1n, 11n, 10n), bookDelta(9, 1n, 12n, 10n)] });
    const s = client.subs.get(id)!;
    // The book delta does not count as following on from the kept book: the snapshot is coming.
    expect(events).toEqual([`subscribed:9:resumed=${Channel.QUOTE}`, `delta:${Channel.QUOTE}:11`]);
    expect(s.inSync(Channel.BOOK)).toBe(false);
    expect(s.await.has(Channel.BOOK)).toBe(true);
    sock().frame({ messages: [bookSnap(9, 1n, 5000n, 5 /* HISTORY_GONE */), bookDelta(9, 1n, 5001n, 4000n)] });
    expect(events.slice(2)).toEqual([`snapshot:${Channel.BOOK}:5:5000`, `delta:${Channel.BOOK}:5001`]);
    expect(client.stats.historyGone).toBe(1);
    expect(s.inSync(Channel.BOOK)).toBe(true);
    expect(events.some((e) => e.startsWith("resync"))).toBe(false);
  });

  it("a new epoch on resume: NEW_EPOCH snapshots replace, deltas of the new epoch follow on", () => {
    synced();
    reconnect();
    sock().frame({ messages: [subscribed(9, []), quoteSnap(9, 2n, 3n, 4), bookSnap(9, 2n, 3n, 4), bookDelta(9, 2n, 4n, 1n)] });
    expect(client.stats.newEpochs).toBe(2);
    expect(client.stats.resumed).toBe(0);
    expect(client.subs.get(id)!.replica.pos[Channel.BOOK]).toEqual({ epoch: 2n, seq: 4n, synced: true });
  });

  it("does not resume a stream that was waiting for a resync when the connection dropped", () => {
    synced();
    sock().frame({ messages: [bookDelta(3, 1n, 14n, 12n)] }); // a gap: Resync sent
    expect(events).toEqual([`resync:${Channel.BOOK}:gap`]);
    const cmd = reconnect();
    expect(cmd.resume.map((p) => p.channel)).toEqual([Channel.QUOTE]);
    expect(client.subs.get(id)!.resync.size).toBe(0); // asked again by the new Subscribe, not by a Resync
  });

  it("resumes again after a second drop before the feed answered (positions kept, not lost)", () => {
    synced();
    reconnect();
    const cmd = reconnect();
    expect(cmd.resume.map((p) => p.seq)).toEqual([10n, 10n]);
  });

  const awaitingStatus = (handle: number, channel = Channel.BOOK, state = StreamState.AWAITING_SNAPSHOT) => ({
    kind: { case: "streamStatus" as const, value: { handle, channel, state, reason: "the feed missed an event of this instrument" } },
  });

  it("StreamStatus AWAITING_SNAPSHOT: the book is kept but not live, no Resync is sent, and the next book snapshot (RESYNC, unasked) ends the wait", () => {
    synced();
    const s = client.subs.get(id)!;
    const sentBefore = sock().sent.length;
    sock().frame({ messages: [awaitingStatus(3)] });
    expect(events).toEqual([`status:${id}:${Channel.BOOK}:${StreamState.AWAITING_SNAPSHOT}:the feed missed an event of this instrument`]);
    expect(s.awaiting.get(Channel.BOOK)).toBe("the feed missed an event of this instrument");
    expect(s.inSync(Channel.BOOK)).toBe(false); // not live
    expect(s.inSync(Channel.QUOTE)).toBe(true); // the other streams are untouched
    expect(s.replica.book.bids.map((l) => l.price)).toEqual([100n]); // the last book is kept, to show dimmed
    expect(sock().sent.length).toBe(sentBefore); // the feed sends the snapshot on its own: no Resync
    expect(client.stats.awaiting).toBe(1);
    // A quote snapshot does not end the book's wait; the book's RESYNC snapshot does.
    sock().frame({ messages: [quoteSnap(3, 1n, 20n, 2)] });
    expect(s.inSync(Channel.BOOK)).toBe(false);
    sock().frame({ messages: [bookSnap(3, 1n, 20n, 2 /* RESYNC */)] });
    expect(s.awaiting.size).toBe(0);
    expect(s.inSync(Channel.BOOK)).toBe(true);
    sock().frame({ messages: [bookDelta(3, 1n, 21n, 20n)] });
    expect(events.at(-1)).toBe(`delta:${Channel.BOOK}:21`);
  });

  it("StreamStatus for another handle, a channel not held, or a state it does not know changes nothing", () => {
    synced();
    sock().frame({ messages: [awaitingStatus(9), awaitingStatus(3, Channel.TRADES), awaitingStatus(3, Channel.BOOK, StreamState.UNSPECIFIED)] });
    expect(events).toEqual([]);
    expect(client.subs.get(id)!.inSync(Channel.BOOK)).toBe(true);
  });

  it("a book awaiting its snapshot when the connection drops is not resumed; the next connection says the wait again after Subscribed", () => {
    synced();
    sock().frame({ messages: [awaitingStatus(3)] });
    const cmd = reconnect();
    // The feed's copy missed an event after our position: it cannot continue us from it.
    expect(cmd.resume.map((p) => p.channel)).toEqual([Channel.QUOTE]);
    const s = client.subs.get(id)!;
    expect(s.awaiting.size).toBe(0); // per connection
    expect(s.replica.book.bids.map((l) => l.price)).toEqual([100n]); // still kept
    sock().frame({ messages: [subscribed(9, [Channel.QUOTE]), awaitingStatus(9)] });
    expect(s.awaiting.has(Channel.BOOK)).toBe(true);
    expect(s.inSync(Channel.BOOK)).toBe(false);
    sock().frame({ messages: [bookSnap(9, 1n, 30n, 1 /* SUBSCRIBE, when the feed's book is whole */)] });
    expect(s.inSync(Channel.BOOK)).toBe(true);
  });

  it("splits a long Subscribe below 1000 instruments and 16 KiB, each with its own positions", () => {
    client.start();
    sock().open();
    const ids = Array.from({ length: 2500 }, (_, i) => `venue-with-a-long-name:SYMBOL-${String(i).padStart(5, "0")}`);
    client.subscribe(ids, [Channel.QUOTE, Channel.STATS]);
    const handles = new Map<string, number>();
    const frames: MessageInitShape<typeof ServerMessageSchema>[] = [];
    ids.forEach((inst, i) => {
      handles.set(inst, i + 1);
      frames.push({ kind: { case: "subscribed", value: { handle: i + 1, info: { id: inst }, channels: [Channel.QUOTE, Channel.STATS] } } });
      frames.push({ kind: { case: "snapshot", value: { handle: i + 1, channel: Channel.QUOTE, epoch: 7n, seq: 123456789n, body: { case: "quote", value: {} } } } });
      frames.push({ kind: { case: "snapshot", value: { handle: i + 1, channel: Channel.STATS, epoch: 7n, seq: 123456789n, body: { case: "stats", value: {} } } } });
    });
    sock().frame({ messages: frames });
    sock().drop(1006);
    timers.advance(backoffMax);
    sock().open();
    const subs = sock().sent.filter((m) => m.command.case === "subscribe");
    expect(subs.length).toBeGreaterThan(2);
    let n = 0;
    let positions = 0;
    for (const m of subs) {
      if (m.command.case !== "subscribe") continue;
      const v = m.command.value;
      expect(v.instruments.length).toBeLessThanOrEqual(1000);
      expect(toBinary(ClientMessageSchema, m).length).toBeLessThan(16 * 1024);
      const mine = new Set(v.instruments);
      for (const p of v.resume) expect(mine.has(p.instrument)).toBe(true);
      n += v.instruments.length;
      positions += v.resume.length;
    }
    expect(n).toBe(2500);
    expect(positions).toBe(5000);
  });

  it("sends ReplayControl and hands ReplayStatus to the app", () => {
    const got: string[] = [];
    const c = new FeedClient(
      { url: "ws://feed/ws?replay=s1", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sock()), timers },
      { onReplayStatus: (st) => got.push(`${st.session}:${st.state}:${st.clockNs}`) },
    );
    expect(c.replayControl({ case: "pause", value: true })).toBe(false); // not connected yet
    c.start();
    sock().open();
    expect(c.replayControl({ case: "speed", value: 0 })).toBe(true);
    expect(c.replayControl({ case: "seekTimeNs", value: 1768480000000000000n })).toBe(true);
    const rc = sock().sent.filter((m) => m.command.case === "replayControl").map((m) => (m.command.case === "replayControl" ? m.command.value.action : undefined));
    expect(rc).toEqual([
      { case: "speed", value: 0 },
      { case: "seekTimeNs", value: 1768480000000000000n },
    ]);
    sock().frame({ messages: [{ kind: { case: "replayStatus", value: { session: "s1", state: 2, clockNs: 5n } } }] });
    expect(got).toEqual(["s1:2:5"]);
  });
});

describe("backoff", () => {
  it("stays within [min, min(max, min*2^(n+1))]", () => {
    expect(backoff(0, () => 0)).toBe(backoffMin);
    expect(backoff(0, () => 0.999999)).toBe(backoffMin * 2);
    expect(backoff(3, () => 0.999999)).toBe(Math.min(backoffMax, backoffMin * 16));
    expect(backoff(50, () => 0.999999)).toBe(backoffMax);
  });
  it("knows which close codes to retry", () => {
    expect(reconnectable(1001)).toBe(true);
    expect(reconnectable(1006)).toBe(true);
    expect(reconnectable(4000)).toBe(true);
    expect(reconnectable(1000)).toBe(false);
    expect(reconnectable(4500)).toBe(false);
    expect(reconnectable(1002)).toBe(false);
    expect(reconnectable(1007)).toBe(false);
    expect(reconnectable(1011)).toBe(true);
    expect(reconnectable(4004)).toBe(true);
    expect(reconnectable(4005)).toBe(true); // token expired: reconnect with a fresh token
    expect(reconnectable(4501)).toBe(false); // unauthorized: fix the token first
  });
});

describe("FeedClient sign-in (PROTOCOL.md, Authentication)", () => {
  it("sends Authenticate with the current token first on every connect, and reports Authenticated", () => {
    const sockets: FakeSocket[] = [];
    const timers = new FakeTimers();
    let token = "t1";
    const signedIn: string[] = [];
    const signIn: string[] = [];
    const client = new FeedClient(
      {
        url: "ws://feed/ws",
        newSocket: (url, protocols) => {
          const s = new FakeSocket(url, protocols);
          sockets.push(s);
          return s;
        },
        timers,
        token: () => token,
      },
      {
        onAuthenticated: (sub, exp, id) => signedIn.push(`${sub}:${exp}:${id}`),
        onSignInNeeded: (code, reason) => signIn.push(`${code}:${reason}`),
      },
    );
    client.start();
    sockets[0]!.open();
    expect(sockets[0]!.url).toBe("ws://feed/ws"); // never in the URL
    expect(sockets[0]!.sent.map((m) => m.command.case)).toEqual(["authenticate", "listInstruments"]);
    expect(sockets[0]!.sent[0]!.command.value).toMatchObject({ token: "t1" });
    const authId = sockets[0]!.sent[0]!.id;
    expect(authId).toBeGreaterThan(0);
    sockets[0]!.frame({ messages: [{ kind: { case: "authenticated", value: { requestId: authId, subject: "dev", expiresAtNs: 5_000_000_000n } } }] });
    expect(signedIn).toEqual([`dev:5000:${authId}`]);
    // A refresh on the live connection: the id comes back to match the answer.
    const refreshId = client.authenticate("t1b");
    expect(refreshId).toBeGreaterThan(authId);
    expect(sockets[0]!.sent.at(-1)).toMatchObject({ id: refreshId, command: { case: "authenticate", value: { token: "t1b" } } });

    // Closed for the credentials (expired): no reconnect of its own, not even after a minute;
    // the app is told, and start() connects again with whatever token it has then.
    sockets[0]!.drop(4005, "token expired");
    expect(client.state).toBe("closed");
    expect(signIn).toEqual(["4005:token expired"]);
    timers.advance(60_000);
    expect(sockets.length).toBe(1);
    token = "t2";
    client.start();
    sockets[1]!.open();
    expect(sockets[1]!.sent[0]!.command).toMatchObject({ case: "authenticate", value: { token: "t2" } });
    // A refused sign-in (4501) is the same: no loop.
    sockets[1]!.drop(4501, "unauthorized: bad_signature");
    timers.advance(60_000);
    expect(sockets.length).toBe(2);
    expect(signIn).toEqual(["4005:token expired", "4501:unauthorized: bad_signature"]);
    expect(client.authenticate("t3")).toBe(0); // no connection: nothing sent
    client.stop();
  });

  it("a revoked token (4006) leads to the sign-in form like 4005 and 4501: no reconnect with it", () => {
    expect([4005, 4006, 4501].map(needsSignIn)).toEqual([true, true, true]);
    expect([1000, 1001, 1006, 4000, 4004, 4500, 4502].map(needsSignIn)).toEqual([false, false, false, false, false, false, false]);
    const sockets: FakeSocket[] = [];
    const timers = new FakeTimers();
    const signIn: string[] = [];
    const states: string[] = [];
    const client = new FeedClient(
      { url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers, token: () => "revoked" },
      { onSignInNeeded: (code, reason) => signIn.push(`${code}:${reason}`), onState: (st) => states.push(st) },
    );
    client.start();
    sockets[0]!.open();
    sockets[0]!.drop(4006, "token revoked");
    expect(client.state).toBe("closed");
    expect(signIn).toEqual(["4006:token revoked"]);
    // The same token would get 401 revoked on every attempt: none is made, not even after a minute.
    timers.advance(60_000);
    expect(sockets.length).toBe(1);
    expect(states.at(-1)).toBe("closed");
  });
});

describe("FeedClient entitlements (PROTOCOL.md §2.6: NOT_ENTITLED)", () => {
  let sockets: FakeSocket[];
  let client: FeedClient;
  let denied: string[];
  let replayRefused: string[];
  const sock = () => sockets[sockets.length - 1]!;
  const subscribes = (s: FakeSocket) =>
    s.sent.flatMap((m) => (m.command.case === "subscribe" ? [{ id: m.id, ids: m.command.value.instruments, channels: m.command.value.channels }] : []));
  const err = (requestId: number, message: string, instrument = "") => ({
    kind: { case: "error" as const, value: { requestId, code: ErrorCode.NOT_ENTITLED, message, instrument } },
  });
  const subscribed = (requestId: number, handle: number, id: string, channels: Channel[]) => ({
    kind: { case: "subscribed" as const, value: { requestId, handle, info: { id }, channels } },
  });

  beforeEach(() => {
    sockets = [];
    denied = [];
    replayRefused = [];
    client = new FeedClient(
      {
        url: "ws://feed/ws",
        newSocket: (url, protocols) => {
          const s = new FakeSocket(url, protocols);
          sockets.push(s);
          return s;
        },
        timers: new FakeTimers(),
        token: () => "tok",
      },
      {
        onNotEntitled: (id, chs, whole) => denied.push(`${id}:${whole ? "all" : chs.map(channelName).join(",") || "granted"}`),
        onReplayControlRefused: (e) => replayRefused.push(`${e.requestId}:${e.message}`),
      },
    );
    client.start();
    sock().open();
  });

  it("reads the channel names of a refusal", () => {
    expect(channelsOfMessage("not entitled to channels: trades, stats")).toEqual([Channel.TRADES, Channel.STATS]);
    expect(channelsOfMessage("not entitled to channels: book")).toEqual([Channel.BOOK]);
    expect(channelsOfMessage("not entitled")).toEqual([]);
    expect(channelName(Channel.CANDLES)).toBe("candles");
  });

  it("a refused channel (no instrument in the error) is marked on the command's instruments and not asked again", () => {
    client.subscribe(["v:A"], [Channel.BOOK, Channel.TRADES], 20);
    const [cmd] = subscribes(sock());
    expect(cmd!.id).toBeGreaterThan(0); // errors are matched to the command by its id
    sock().frame({ messages: [err(cmd!.id, "not entitled to channels: book"), subscribed(cmd!.id, 1, "v:A", [Channel.TRADES])] });
    const a = client.subs.get("v:A")!;
    expect(a.denied(Channel.BOOK)).toBe(true);
    expect(a.denied(Channel.TRADES)).toBe(false);
    expect(a.allDenied()).toBe(false);
    expect(a.inSync(Channel.BOOK)).toBe(false);
    expect(a.await.has(Channel.BOOK)).toBe(false); // nothing waits for a snapshot that will not come
    expect([...client.deniedChannels]).toEqual([Channel.BOOK]);
    expect(denied).toEqual(["v:A:book"]);
    // The next instrument's book is not asked for (it would be refused again): marked at once.
    client.subscribe(["v:B"], [Channel.BOOK, Channel.TRADES], 20);
    expect(subscribes(sock()).at(-1)).toMatchObject({ ids: ["v:B"], channels: [Channel.TRADES] });
    expect(client.subs.get("v:B")!.denied(Channel.BOOK)).toBe(true);
    // Leaving A asks the feed to drop its trades only (it never held A's book).
    client.unsubscribe(["v:A"], [Channel.BOOK, Channel.TRADES]);
    const un = sock().sent.at(-1)!;
    expect(un.command.case === "unsubscribe" && un.command.value.instruments).toEqual(["v:A"]);
  });

  it("a refused instrument stays, marked not entitled, and is not asked again on that connection", () => {
    client.subscribe(["v:A", "v:X"], [Channel.QUOTE, Channel.STATS]);
    const [cmd] = subscribes(sock());
    sock().frame({ messages: [err(cmd!.id, "not entitled", "v:X"), subscribed(cmd!.id, 1, "v:A", [Channel.QUOTE, Channel.STATS])] });
    const x = client.subs.get("v:X")!;
    expect(x).toBeDefined(); // kept, so the watchlist can say why it is empty
    expect(x.allDenied()).toBe(true);
    expect(x.denied(Channel.QUOTE)).toBe(true);
    expect(client.subs.get("v:A")!.allDenied()).toBe(false);
    expect(denied).toEqual(["v:X:all"]);
    const n = subscribes(sock()).length;
    client.subscribe(["v:X"], [Channel.BOOK, Channel.TRADES]); // focusing it
    expect(subscribes(sock()).length).toBe(n);
    // An unknown instrument is still forgotten (it would be asked again on every reconnect).
    sock().frame({ messages: [{ kind: { case: "error", value: { requestId: cmd!.id, code: ErrorCode.UNKNOWN_INSTRUMENT, message: "unknown instrument", instrument: "v:A" } } }] });
    expect(client.subs.has("v:A")).toBe(false);
  });

  it("a count of refused instruments names the first: the rest are those of the command the feed did not list", () => {
    sock().frame({ messages: [{ kind: { case: "instrumentList", value: { instruments: [{ id: "v:A" }] } } }] });
    client.subscribe(["v:A", "v:X", "v:Y"], [Channel.QUOTE]);
    const [cmd] = subscribes(sock());
    sock().frame({ messages: [err(cmd!.id, "2 instruments not entitled, first v:X", "v:X"), subscribed(cmd!.id, 1, "v:A", [Channel.QUOTE])] });
    expect(["v:A", "v:X", "v:Y"].map((id) => client.subs.get(id)!.allDenied())).toEqual([false, true, true]);
  });

  it("an error of another command (replay control) marks nothing; a refused ReplayControl is told as such", () => {
    client.subscribe(["v:A"], [Channel.QUOTE]);
    client.replayControl({ case: "pause", value: true });
    const rc = sock().sent.at(-1)!;
    sock().frame({ messages: [err(rc.id, "watching only: not a controller of session s1")] });
    expect(client.subs.get("v:A")!.denied(Channel.QUOTE)).toBe(false);
    expect(client.deniedChannels.size).toBe(0);
    expect(denied).toEqual([]);
    expect(replayRefused).toEqual([`${rc.id}:watching only: not a controller of session s1`]);
    // A NOT_ENTITLED answering a Subscribe is not one.
    client.subscribe(["v:B"], [Channel.QUOTE]);
    const [, sub] = subscribes(sock());
    sock().frame({ messages: [err(sub!.id, "1 instruments not entitled, first v:B", "v:B")] });
    expect(replayRefused).toHaveLength(1);
  });

  it("a refresh that narrows the grant: the streams it ended (Unsubscribed answering the Authenticate) are not entitled; what was refused is asked once again", () => {
    sock().frame({ messages: [{ kind: { case: "authenticated", value: { requestId: sock().sent[0]!.id, subject: "u", expiresAtNs: 9n } } }] });
    client.subscribe(["v:A", "v:B"], [Channel.QUOTE, Channel.BOOK], 10);
    const [cmd] = subscribes(sock());
    sock().frame({ messages: [subscribed(cmd!.id, 1, "v:A", [Channel.QUOTE, Channel.BOOK]), subscribed(cmd!.id, 2, "v:B", [Channel.QUOTE, Channel.BOOK])] });
    const auth = client.authenticate("narrower");
    // The feed's order: the error, the Authenticated, then the owners' Unsubscribed.
    sock().frame({
      messages: [
        err(auth, "no longer entitled after the refresh", "v:B"),
        { kind: { case: "authenticated", value: { requestId: auth, subject: "u", expiresAtNs: 10n } } },
        { kind: { case: "unsubscribed", value: { requestId: auth, handle: 2, channels: [Channel.QUOTE, Channel.BOOK] } } },
        { kind: { case: "unsubscribed", value: { requestId: auth, handle: 1, channels: [Channel.BOOK] } } },
      ],
    });
    const a = client.subs.get("v:A")!;
    const b = client.subs.get("v:B")!;
    expect(b.allDenied()).toBe(true);
    expect(a.denied(Channel.BOOK)).toBe(true);
    expect(a.denied(Channel.QUOTE)).toBe(false);
    // Our own Unsubscribe's reply is not a refusal.
    client.unsubscribe(["v:A"], [Channel.QUOTE]);
    client.subscribe(["v:A"], [Channel.QUOTE]);
    sock().frame({ messages: [{ kind: { case: "unsubscribed", value: { requestId: 0, handle: 1, channels: [Channel.QUOTE] } } }] });
    expect(a.denied(Channel.QUOTE)).toBe(false);
    // The next refresh asks once for what was refused, and a grant clears the marks.
    const before = subscribes(sock()).length;
    const auth2 = client.authenticate("wider");
    sock().frame({ messages: [{ kind: { case: "authenticated", value: { requestId: auth2, subject: "u", expiresAtNs: 11n } } }] });
    const again = subscribes(sock()).slice(before);
    expect(again.map((c) => [c.ids, c.channels])).toEqual([
      [["v:A"], [Channel.BOOK]],
      [["v:B"], [Channel.QUOTE, Channel.BOOK]],
    ]);
    sock().frame({ messages: [subscribed(again[1]!.id, 2, "v:B", [Channel.QUOTE, Channel.BOOK])] });
    expect(b.allDenied()).toBe(false);
    expect(b.await.has(Channel.BOOK)).toBe(true); // its snapshot comes next
    expect(denied.at(-1)).toBe("v:B:granted");
  });
});
