// FeedClient in Node.js with the ws package's WebSocket, over a real TCP connection to a ws
// server that plays the feed (protobuf frames, the binary subprotocol): the handshake, Authenticate,
// subscribe, snapshot and delta, a close with 4000 and the resume that follows, a refused
// handshake (HTTP 401: stop) and stop().

import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { FeedClient, subprotocol } from "../src/client.js";
import { formatDecimal } from "../src/decimal.js";
import { Channel, ClientMessageSchema, ServerFrameSchema, SnapshotReason, type ClientMessage } from "../src/gen/tickwire/v1/stream_pb.js";

type Frame = MessageInitShape<typeof ServerFrameSchema>;

const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.terminate();
    await new Promise((r) => s.close(r));
  }
});

/** A ws server on a free loopback port; onMessage gets each decoded command and a send function. */
async function feed(opts: { refuse?: number; onMessage?: (m: ClientMessage, send: (f: Frame) => void, conn: number, close: (code: number) => void) => void }) {
  let conns = 0;
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (ps) => (ps.has(subprotocol) ? subprotocol : false),
    verifyClient: opts.refuse ? (_info, cb) => cb(false, opts.refuse, "unauthorized: bad_signature") : undefined,
  });
  servers.push(wss);
  await new Promise((r) => wss.once("listening", r));
  wss.on("connection", (ws) => {
    const n = ++conns;
    const send = (f: Frame) => ws.send(toBinary(ServerFrameSchema, create(ServerFrameSchema, f)));
    ws.on("message", (data: Buffer) => opts.onMessage?.(fromBinary(ClientMessageSchema, new Uint8Array(data)), send, n, (code) => ws.close(code, "test")));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`, conns: () => conns };
}

function until(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (f() ? resolve() : Date.now() > end ? reject(new Error("timed out")) : setTimeout(tick, 5));
    tick();
  });
}

describe("FeedClient over ws (Node.js)", () => {
  it("signs in, subscribes, follows quotes, and resumes after the feed closes with 4000", async () => {
    const commands: string[] = [];
    const f = await feed({
      onMessage: (m, send, conn, close) => {
        commands.push(`${conn}:${m.command.case}`);
        if (m.command.case === "authenticate") {
          send({ messages: [{ kind: { case: "authenticated", value: { requestId: m.id, subject: m.command.value.token } } }] });
        }
        if (m.command.case === "subscribe") {
          const resumed = m.command.value.resume.length > 0;
          const quote = (bid: bigint) => ({ bidPrice: bid, bidSize: 3n, askPrice: 10010n, askSize: 4n });
          send({
            messages: [
              { kind: { case: "subscribed", value: { requestId: m.id, handle: conn, info: { id: "synthetic:ACME", priceScale: 2 }, channels: [Channel.QUOTE], resumed: resumed ? [Channel.QUOTE] : [] } } },
              ...(resumed ? [] : [{ kind: { case: "snapshot" as const, value: { handle: conn, channel: Channel.QUOTE, epoch: 7n, seq: 1n, reason: SnapshotReason.SUBSCRIBE, body: { case: "quote" as const, value: quote(10000n) } } } }]),
            ],
          });
          const seq = resumed ? 3n : 2n;
          send({ messages: [{ kind: { case: "delta", value: { handle: conn, epoch: 7n, seq, prevSeq: seq - 1n, body: { case: "quote", value: quote(10000n + seq) } } } }] });
          if (conn === 1) close(4000);
        }
      },
    });
    const lines: string[] = [];
    const states: string[] = [];
    const client = new FeedClient(
      { url: f.url, WebSocket, token: () => "bot-1", backoffMin: 10, backoffMax: 20 },
      {
        onState: (s) => states.push(s),
        onAuthenticated: (sub) => lines.push(`signed in as ${sub}`),
        onQuote: (id, q, sub) => lines.push(`${id} ${formatDecimal(q.bidPrice, sub.info?.priceScale ?? 0)}`),
      },
    );
    client.subscribe(["synthetic:ACME"], [Channel.QUOTE]);
    client.start();
    await until(() => lines.length >= 5).catch(() => undefined);
    client.stop();
    expect(lines).toEqual([
      "signed in as bot-1",
      "synthetic:ACME 100.00",
      "synthetic:ACME 100.02",
      "signed in as bot-1",
      // resumed from seq 2: no snapshot, the next delta follows on
      "synthetic:ACME 100.03",
    ]);
    expect(commands.slice(0, 3)).toEqual(["1:authenticate", "1:listInstruments", "1:subscribe"]);
    expect(f.conns()).toBe(2);
    expect(states).toContain("disconnected");
    expect(client.stats.resumed).toBe(1);
    await until(() => client.state === "closed");
  });

  it("stops after a handshake refused with 401 (ws reports the status)", async () => {
    const f = await feed({ refuse: 401 });
    const states: string[] = [];
    const client = new FeedClient({ url: f.url, WebSocket, backoffMin: 10, backoffMax: 20 }, { onState: (s, d) => states.push(`${s}: ${d}`) });
    client.start();
    await until(() => client.state === "closed");
    await new Promise((r) => setTimeout(r, 100));
    expect(states.at(-1)).toBe("closed: handshake refused: HTTP 401 (not reconnecting)");
    expect(states.filter((s) => s.startsWith("connecting")).length).toBe(1);
  });

  it("retries a handshake refused with 503", async () => {
    const f = await feed({ refuse: 503 });
    const states: string[] = [];
    const client = new FeedClient({ url: f.url, WebSocket, backoffMin: 10, backoffMax: 20 }, { onState: (s, d) => states.push(`${s}: ${d}`) });
    client.start();
    await until(() => states.filter((s) => s.startsWith("connecting")).length >= 3);
    client.stop();
    expect(states).toContain("disconnected: handshake refused: HTTP 503; retry in 0.0 s");
  });
});
