// Test doubles for FeedClient: a WebSocket whose server side the test plays, and timers that
// run when the test advances the clock.

import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { ClientMessageSchema, ServerFrameSchema, type ClientMessage } from "../src/gen/tickwire/v1/stream_pb.js";
import { subprotocol, type SocketLike } from "../src/client.js";

export class FakeSocket implements SocketLike {
  binaryType = "blob";
  protocol = subprotocol;
  onopen: SocketLike["onopen"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  onmessage: SocketLike["onmessage"] = null;
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
    this.onopen?.({});
  }
  frame(init: MessageInitShape<typeof ServerFrameSchema>): void {
    const b = toBinary(ServerFrameSchema, create(ServerFrameSchema, init));
    this.onmessage?.({ data: b.slice().buffer });
  }
  drop(code: number, reason = ""): void {
    this.onclose?.({ code, reason });
  }
}

export class FakeTimers {
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

