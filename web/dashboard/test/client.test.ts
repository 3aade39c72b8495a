import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { beforeEach, describe, expect, it } from "vitest";
import {
  Channel,
  ClientMessageSchema,
  ServerFrameSchema,
  type ClientMessage,
} from "../src/gen/tickwire/v1/stream_pb";
import { checksum } from "../src/market/book";
import { FeedClient, backoff, backoffMax, backoffMin, reconnectable, subprotocol, type SocketLike } from "../src/net/client";

class FakeSocket implements SocketLike {
  binaryType: BinaryType = "blob";
  protocol = subprotocol;
  onopen: ((ev: Event) => unknown) | null = null;
  onclose: ((ev: CloseEvent) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent) => unknown) | null = null;
  sent: ClientMessage[] = [];
  closed = false;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}
  send(data: Uint8Array): void {
    this.sent.push(fromBinary(ClientMessageSchema, data));
  }
  close(): void {
    this.closed = true;
  }
  // Server side:
  open(): void {
    this.onopen?.({} as Event);
  }
  frame(init: MessageInitShape<typeof ServerFrameSchema>): void {
    const b = toBinary(ServerFrameSchema, create(ServerFrameSchema, init));
    this.onmessage?.({ data: b.slice().buffer } as MessageEvent);
  }
  drop(code: number, reason = ""): void {
    this.onclose?.({ code, reason } as CloseEvent);
  }
}

class FakeTimers {
  t = 1_000_000;
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
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const q = this.queue[0];
      if (!q || q.at > end) break;
      this.queue.shift();
      this.t = q.at;
      q.f();
    }
    this.t = end;
  }
}

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
    expect(client.subs.get("synthetic:ACME")!.replica.synced(Channel.BOOK)).toBe(false);
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
  });
});
