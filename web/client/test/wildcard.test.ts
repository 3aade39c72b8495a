// Venue wildcards ("venue:*", PROTOCOL.md §6.3) in FeedClient, as pkg/client in Go: instruments
// the feed subscribes through one get their own Subscription; on reconnect the instruments held
// go first with their positions, then the wildcard; unsubscribing the wildcard drops the venue.

import { beforeEach, describe, expect, it } from "vitest";
import { Channel, type Subscribe } from "../src/gen/tickwire/v1/stream_pb.js";
import { checksum } from "../src/book.js";
import { FeedClient, backoffMax, venueWildcard } from "../src/client.js";
import { FakeSocket, FakeTimers } from "./fakes.js";

const bookLevels = { depth: 10, bids: [{ price: 100n, size: 5n }], asks: [{ price: 101n, size: 7n }] };
const bookSum = checksum([{ price: 100n, size: 5n }], [{ price: 101n, size: 7n }]);
const BTC = "coinbase:BTC-USD";
const ETH = "coinbase:ETH-USD";
const SOL = "coinbase:SOL-USD";
const XBT = "kraken:XBT-USD";

describe("venueWildcard", () => {
  it("knows a wildcard by its symbol * and a valid venue", () => {
    expect(venueWildcard("coinbase:*")).toBe("coinbase");
    expect(venueWildcard("my_venue-2:*")).toBe("my_venue-2");
    for (const id of ["coinbase:BTC-USD", "coinbase:BTC*", "coinbase:**", ":*", "*", "Coinbase:*", "coin base:*", `${"v".repeat(33)}:*`]) {
      expect(venueWildcard(id), id).toBeUndefined();
    }
  });
});

describe("FeedClient venue wildcards", () => {
  let sockets: FakeSocket[];
  let timers: FakeTimers;
  let events: string[];
  let client: FeedClient;
  const sock = () => sockets[sockets.length - 1]!;

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
        onSubscribed: (id, m) => events.push(`subscribed:${id}:${m.handle}:resumed=${m.resumed.join(",")}`),
        onSnapshot: (id, ch, snap) => events.push(`snapshot:${id}:${ch}:${snap.seq}`),
        onQuote: (id, q) => events.push(`quote:${id}:${q.bidPrice}`),
        onBook: (id) => events.push(`book:${id}`),
        onDelta: (id, ch, d) => events.push(`delta:${id}:${ch}:${d.seq}`),
        onGap: (g) => events.push(`gap:${g.instrument}:${g.channel}:${g.reason}`),
      },
    );
  });

  const subscribed = (id: string, handle: number, resumed: Channel[] = [], channels = [Channel.QUOTE, Channel.BOOK]) => ({
    kind: { case: "subscribed" as const, value: { handle, info: { id, priceScale: 2 }, channels, depth: 10, resumed } },
  });
  const quoteSnap = (handle: number, seq: bigint) => ({
    kind: { case: "snapshot" as const, value: { handle, channel: Channel.QUOTE, epoch: 1n, seq, reason: 1, body: { case: "quote" as const, value: { bidPrice: 100n, bidSize: 1n, askPrice: 101n, askSize: 1n } } } },
  });
  const bookSnap = (handle: number, seq: bigint) => ({
    kind: { case: "snapshot" as const, value: { handle, channel: Channel.BOOK, epoch: 1n, seq, checksum: bookSum, reason: 1, body: { case: "book" as const, value: bookLevels } } },
  });
  const quoteDelta = (handle: number, seq: bigint, prevSeq: bigint) => ({
    kind: { case: "delta" as const, value: { handle, epoch: 1n, seq, prevSeq, body: { case: "quote" as const, value: { bidPrice: 99n, bidSize: 1n, askPrice: 101n, askSize: 1n } } } },
  });
  const subscribes = (s: FakeSocket): Subscribe[] =>
    s.sent.flatMap((m) => (m.command.case === "subscribe" ? [m.command.value] : []));

  /** Connected, holding coinbase:* (quote and book, depth 10): BTC and ETH subscribed through it and in sync at (1, 10). */
  function holdVenue(): void {
    client.start();
    sock().open();
    client.subscribe(["coinbase:*"], [Channel.QUOTE, Channel.BOOK], 10);
    sock().frame({
      messages: [subscribed(BTC, 4), quoteSnap(4, 10n), bookSnap(4, 10n), subscribed(ETH, 5), quoteSnap(5, 10n), bookSnap(5, 10n)],
    });
  }

  /** The connection drops and the next one opens. */
  function reconnect(): void {
    sock().drop(1006);
    timers.advance(backoffMax);
    sock().open();
  }

  it("sends the wildcard as it is and holds it, not an instrument", () => {
    client.start();
    sock().open();
    client.subscribe(["coinbase:*", XBT], [Channel.QUOTE, Channel.BOOK], 10);
    const [cmd] = subscribes(sock());
    expect(cmd!.instruments).toEqual(["coinbase:*", XBT]);
    expect(cmd!.depth).toBe(10);
    expect([...client.venues.keys()]).toEqual(["coinbase"]);
    expect([...client.venues.get("coinbase")!.channels].sort()).toEqual([Channel.QUOTE, Channel.BOOK].sort());
    expect([...client.subs.keys()]).toEqual([XBT]); // no Subscription named "coinbase:*"
  });

  it("gives each instrument the feed subscribes through the wildcard its own replica and events", () => {
    holdVenue();
    expect([...client.subs.keys()].sort()).toEqual([BTC, ETH]);
    const btc = client.subs.get(BTC)!;
    expect([...btc.channels].sort()).toEqual([Channel.QUOTE, Channel.BOOK].sort());
    expect(btc.depth).toBe(10);
    expect(btc.info?.priceScale).toBe(2);
    expect(btc.inSync(Channel.QUOTE) && btc.inSync(Channel.BOOK)).toBe(true);
    expect(events).toEqual([
      `subscribed:${BTC}:4:resumed=`,
      `snapshot:${BTC}:${Channel.QUOTE}:10`,
      `quote:${BTC}:100`,
      `snapshot:${BTC}:${Channel.BOOK}:10`,
      `book:${BTC}`,
      `subscribed:${ETH}:5:resumed=`,
      `snapshot:${ETH}:${Channel.QUOTE}:10`,
      `quote:${ETH}:100`,
      `snapshot:${ETH}:${Channel.BOOK}:10`,
      `book:${ETH}`,
    ]);
    events.length = 0;
    // Deltas by handle, per instrument.
    sock().frame({ messages: [quoteDelta(5, 11n, 10n), quoteDelta(4, 11n, 10n)] });
    expect(events).toEqual([`delta:${ETH}:${Channel.QUOTE}:11`, `quote:${ETH}:99`, `delta:${BTC}:${Channel.QUOTE}:11`, `quote:${BTC}:99`]);
    events.length = 0;
    // An instrument listed later: its Subscribed comes unasked (the wildcard's request id).
    sock().frame({ messages: [subscribed(SOL, 6), quoteDelta(6, 3n, 2n), quoteSnap(6, 3n)] });
    expect(client.subs.get(SOL)?.inSync(Channel.QUOTE)).toBe(true);
    expect(events).toEqual([`subscribed:${SOL}:6:resumed=`, `snapshot:${SOL}:${Channel.QUOTE}:3`, `quote:${SOL}:100`]);
    // Another venue's instrument, not held: nothing.
    events.length = 0;
    sock().frame({ messages: [subscribed(XBT, 7), quoteSnap(7, 3n)] });
    expect(client.subs.has(XBT)).toBe(false);
    expect(events).toEqual([]);
  });

  it("on reconnect sends the instruments held with their positions first, then the wildcard; resumed ones get no snapshot", () => {
    holdVenue();
    client.subscribe([XBT], [Channel.QUOTE]);
    sock().frame({ messages: [subscribed(XBT, 7, [], [Channel.QUOTE]), quoteSnap(7, 20n)] });
    events.length = 0;
    reconnect();
    const cmds = subscribes(sock());
    expect(cmds.map((c) => c.instruments)).toEqual([[BTC, ETH], [XBT], ["coinbase:*"]]);
    expect(cmds[0]!.resume.map((p) => [p.instrument, p.channel, p.seq])).toEqual([
      [BTC, Channel.QUOTE, 10n],
      [BTC, Channel.BOOK, 10n],
      [ETH, Channel.QUOTE, 10n],
      [ETH, Channel.BOOK, 10n],
    ]);
    expect(cmds[0]!.depth).toBe(10);
    expect(cmds[2]!.resume).toEqual([]);
    expect([...cmds[2]!.channels].sort()).toEqual([Channel.QUOTE, Channel.BOOK].sort());
    expect(cmds[2]!.depth).toBe(10);
    // The commands go out in that order: the instruments before the wildcard.
    const order = sock().sent.map((m) => (m.command.case === "subscribe" ? m.command.value.instruments.join(",") : m.command.case));
    expect(order.indexOf("coinbase:*")).toBeGreaterThan(order.indexOf(`${BTC},${ETH}`));
    // The feed resumes BTC and ETH (left as they are by the wildcard), and subscribes SOL,
    // listed while disconnected.
    sock().frame({
      messages: [
        subscribed(BTC, 8, [Channel.QUOTE, Channel.BOOK]),
        subscribed(ETH, 9, [Channel.QUOTE, Channel.BOOK]),
        subscribed(XBT, 10, [Channel.QUOTE], [Channel.QUOTE]),
        quoteDelta(8, 11n, 10n),
        subscribed(SOL, 11),
        quoteSnap(11, 5n),
      ],
    });
    expect(client.stats.resumed).toBe(5);
    expect(events.filter((e) => e.startsWith("snapshot:"))).toEqual([`snapshot:${SOL}:${Channel.QUOTE}:5`]);
    expect(events.filter((e) => e.startsWith("gap:"))).toEqual([]);
    expect(client.subs.get(BTC)!.inSync(Channel.QUOTE)).toBe(true);
    expect(client.subs.get(BTC)!.replica.pos[Channel.QUOTE]!.seq).toBe(11n);
    expect(client.subs.get(ETH)!.inSync(Channel.BOOK)).toBe(true);
  });

  it("unsubscribing the wildcard drops it and the venue's instruments, named or not", () => {
    holdVenue();
    client.subscribe([XBT], [Channel.QUOTE]);
    client.unsubscribe(["coinbase:*"], [Channel.QUOTE, Channel.BOOK]);
    const un = sock().sent.filter((m) => m.command.case === "unsubscribe").map((m) => m.command.value);
    expect(un).toEqual([expect.objectContaining({ instruments: ["coinbase:*"], channels: [Channel.QUOTE, Channel.BOOK] })]);
    expect(client.venues.size).toBe(0);
    expect([...client.subs.keys()]).toEqual([XBT]);
    // A Subscribed of the venue still in flight is not taken in.
    sock().frame({ messages: [subscribed(SOL, 6), quoteSnap(6, 3n)] });
    expect(client.subs.has(SOL)).toBe(false);
    // Nor asked for again.
    reconnect();
    expect(subscribes(sock()).map((c) => c.instruments)).toEqual([[XBT]]);
  });

  it("unsubscribing some channels of the wildcard keeps the others, for it and its instruments", () => {
    holdVenue();
    client.unsubscribe(["coinbase:*"], [Channel.QUOTE]);
    expect([...client.venues.get("coinbase")!.channels]).toEqual([Channel.BOOK]);
    expect([...client.subs.get(BTC)!.channels]).toEqual([Channel.BOOK]);
    expect(client.subs.get(BTC)!.inSync(Channel.BOOK)).toBe(true);
    reconnect();
    const cmds = subscribes(sock());
    expect(cmds.map((c) => [c.instruments, c.channels])).toEqual([
      [[BTC, ETH], [Channel.BOOK]],
      [["coinbase:*"], [Channel.BOOK]],
    ]);
  });

  it("unsubscribing a wildcard not held and no instrument of its venue sends nothing", () => {
    client.start();
    sock().open();
    client.subscribe([XBT], [Channel.QUOTE]);
    client.unsubscribe(["coinbase:*"], [Channel.QUOTE]);
    expect(sock().sent.filter((m) => m.command.case === "unsubscribe")).toEqual([]);
  });
});
